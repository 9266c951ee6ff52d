//! The request body a handler reads: [`Body`], fed by the connection through a
//! [`BodyWriter`].
//!
//! The hand-off is one small shared state, not a channel whose sender can vanish: the
//! connection records how the body ended (complete, or an error with its cause) in the same
//! place as the pieces, so a reader can never mistake a failure for the end. If the writer
//! is dropped before it says how the body ended (its connection task ended for any reason),
//! the drop itself records an error. Only a body the core reported complete ends with
//! `None`.

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Why a request body could not be read to its end. A body that ends early is always one of
/// these, never a shorter success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The peer broke the protocol, a limit or a deadline while sending the body: a
    /// malformed chunk, the body limit (`413`), the body read timeout (`408`), or the
    /// connection closed mid-body. The core's typed error says which; the server has
    /// already answered it where a response was still owed.
    #[error("request body failed: {0}")]
    Protocol(tether_core::h1::Error),
    /// The connection ended before the body did (the transport failed, or the connection
    /// was dropped).
    #[error("the connection ended before the request body did")]
    ConnectionLost,
    /// The server shut down (its shutdown timeout ran out) before the body ended.
    #[error("the server shut down before the request body ended")]
    Shutdown,
}

/// How many body bytes may wait for the handler before the connection stops reading
/// (backpressure). At least one piece always fits.
const BUFFERED_BYTES: usize = 64 * 1024;

/// The state the connection and the handler share.
#[derive(Debug, Default)]
struct Shared {
    pieces: VecDeque<Bytes>,
    buffered: usize,
    /// How the body ended: `Ok` complete, `Err` failed. Set once.
    end: Option<Result<(), BodyError>>,
    /// The reader has asked for the body (the signal for `100 Continue`).
    wanted: bool,
    /// The reader is gone: pieces are discarded.
    reader_gone: bool,
    /// The reader has seen the end (its error, or `None`).
    finished: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Shared {
    /// Whether another piece may be queued: the reader is gone (pieces are discarded), or
    /// less than the bound waits (at least one piece always fits).
    fn has_room(&self) -> bool {
        self.reader_gone || self.pieces.is_empty() || self.buffered < BUFFERED_BYTES
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Nothing panics while holding the lock; recover the data if something ever did.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(waker) = waker.take() {
        waker.wake();
    }
}

/// A request body, streamed: pieces arrive as the peer sends them, with backpressure (the
/// server stops reading from the socket while the handler does not take them).
///
/// Read it with [`Body::chunk`], [`Body::bytes`], or as a [`Stream`]. Asking for the body
/// is what sends `100 Continue` to a client that asked for one; a handler that answers
/// without reading the body never sends it (the connection then closes after the response,
/// RFC 9110 §10.1.1).
#[derive(Debug, Default)]
pub struct Body {
    shared: Option<Arc<Mutex<Shared>>>,
}

/// The connection's end of a [`Body`].
#[derive(Debug)]
pub(crate) struct BodyWriter {
    shared: Arc<Mutex<Shared>>,
}

impl Body {
    /// A body the connection feeds through the returned writer.
    pub(crate) fn channel() -> (BodyWriter, Body) {
        let shared = Arc::new(Mutex::new(Shared::default()));
        (
            BodyWriter {
                shared: shared.clone(),
            },
            Body {
                shared: Some(shared),
            },
        )
    }

    /// An empty body.
    pub fn empty() -> Body {
        Body { shared: None }
    }

    /// The next piece; `None` once the body is complete; `Err` (once, then `None`) if it
    /// ended early.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, BodyError>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// The whole body (its size is capped by the server's body limit, 413 beyond).
    pub async fn bytes(&mut self) -> Result<Bytes, BodyError> {
        let mut all = BytesMut::new();
        while let Some(piece) = self.chunk().await {
            let piece = piece?;
            if all.is_empty() {
                all = BytesMut::from(piece);
            } else {
                all.extend_from_slice(&piece);
            }
        }
        Ok(all.freeze())
    }

    /// Whether this is a body with nothing in it (made by [`Body::empty`]).
    #[cfg(feature = "tower")]
    pub(crate) fn is_empty_body(&self) -> bool {
        self.shared.is_none()
    }

    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BodyError>>> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(None);
        };
        let mut state = lock(shared);
        if !state.wanted {
            state.wanted = true;
            wake(&mut state.writer);
        }
        if let Some(piece) = state.pieces.pop_front() {
            state.buffered -= piece.len();
            wake(&mut state.writer);
            return Poll::Ready(Some(Ok(piece)));
        }
        if state.finished {
            return Poll::Ready(None);
        }
        match &state.end {
            Some(Ok(())) => {
                state.finished = true;
                Poll::Ready(None)
            }
            Some(Err(error)) => {
                let error = error.clone();
                state.finished = true;
                Poll::Ready(Some(Err(error)))
            }
            None => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Stream for Body {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            let mut state = lock(shared);
            state.reader_gone = true;
            state.pieces.clear();
            state.buffered = 0;
            wake(&mut state.writer);
        }
    }
}

impl BodyWriter {
    /// Whether the reader has asked for the body, or is gone; otherwise the waker is kept
    /// to be woken when it asks.
    pub(crate) fn poll_wanted(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.shared);
        if state.wanted || state.reader_gone {
            Poll::Ready(())
        } else {
            state.writer = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Whether the reader has asked for the body or is gone.
    pub(crate) fn is_wanted(&self) -> bool {
        let state = lock(&self.shared);
        state.wanted || state.reader_gone
    }

    /// Ready when another piece fits (or the reader is gone: pieces are then discarded).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.shared);
        if state.has_room() {
            Poll::Ready(())
        } else {
            state.writer = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Whether another piece fits now.
    pub(crate) fn has_room(&self) -> bool {
        let state = lock(&self.shared);
        state.has_room()
    }

    /// Queues a piece (call after [`has_room`](Self::has_room) or `poll_ready`; a piece
    /// beyond the bound is still kept: nothing is ever dropped for lack of room).
    pub(crate) fn push(&self, piece: Bytes) {
        let mut state = lock(&self.shared);
        if state.reader_gone || state.end.is_some() {
            return;
        }
        state.buffered += piece.len();
        state.pieces.push_back(piece);
        wake(&mut state.reader);
    }

    /// The core reported the body complete.
    pub(crate) fn finish(self) {
        self.end(Ok(()));
    }

    /// The body ended early, with its cause.
    pub(crate) fn fail(self, error: BodyError) {
        self.end(Err(error));
    }

    fn end(&self, end: Result<(), BodyError>) {
        let mut state = lock(&self.shared);
        if state.end.is_none() {
            state.end = Some(end);
        }
        wake(&mut state.reader);
    }
}

impl Drop for BodyWriter {
    /// A writer dropped before `finish` or `fail` (its connection ended, for any reason)
    /// ends the body with an error: the reader never sees a truncated body as complete.
    fn drop(&mut self) {
        self.end(Err(BodyError::ConnectionLost));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        futures_util::FutureExt::now_or_never(future).expect("ready")
    }

    #[test]
    fn pieces_then_the_end() {
        let (writer, mut body) = Body::channel();
        writer.push(Bytes::from_static(b"ab"));
        writer.push(Bytes::from_static(b"cd"));
        writer.finish();
        assert_eq!(block_on(body.bytes()).unwrap(), "abcd");
        assert!(block_on(body.chunk()).is_none());
    }

    #[test]
    fn an_error_after_pieces_is_seen_after_them_and_only_once() {
        let (writer, mut body) = Body::channel();
        writer.push(Bytes::from_static(b"ab"));
        writer.fail(BodyError::Shutdown);
        assert_eq!(block_on(body.chunk()).unwrap().unwrap(), "ab");
        assert_eq!(block_on(body.chunk()), Some(Err(BodyError::Shutdown)));
        assert_eq!(block_on(body.chunk()), None);
    }

    #[test]
    fn a_dropped_writer_is_an_error_never_the_end() {
        let (writer, mut body) = Body::channel();
        writer.push(Bytes::from_static(b"partial"));
        drop(writer);
        assert_eq!(block_on(body.bytes()), Err(BodyError::ConnectionLost));
    }

    #[test]
    fn the_first_cause_wins() {
        let (writer, body) = Body::channel();
        writer.end(Err(BodyError::Shutdown));
        drop(writer);
        let all: Vec<_> = block_on(body.collect::<Vec<_>>());
        assert_eq!(all, vec![Err(BodyError::Shutdown)]);
    }

    #[test]
    fn backpressure_keeps_every_piece() {
        let (writer, mut body) = Body::channel();
        let piece = Bytes::from(vec![7u8; 40 * 1024]);
        assert!(writer.has_room());
        writer.push(piece.clone());
        assert!(writer.has_room());
        writer.push(piece.clone());
        assert!(!writer.has_room(), "80 KiB buffered is over the bound");
        assert!(!writer.is_wanted());
        assert_eq!(block_on(body.chunk()).unwrap().unwrap().len(), piece.len());
        assert!(writer.is_wanted());
        assert!(writer.has_room());
    }

    #[test]
    fn a_gone_reader_discards() {
        let (writer, body) = Body::channel();
        drop(body);
        assert!(writer.has_room() && writer.is_wanted());
        writer.push(Bytes::from_static(b"x"));
        writer.finish();
    }

    #[test]
    fn an_empty_body_ends_at_once() {
        let mut body = Body::empty();
        assert_eq!(block_on(body.bytes()).unwrap(), "");
    }

    /// How the writer ends a body in the model below.
    #[derive(Debug, Clone, Copy)]
    enum Ending {
        Finish,
        Fail,
        Drop,
    }

    proptest::proptest! {
        /// Any interleaving of pieces, reader polls and the writer's end: the reader gets
        /// every piece in order, then exactly the end the writer gave (`None` only for a
        /// finished body), then nothing.
        #[test]
        fn the_hand_off_never_loses_the_end(
            steps in proptest::collection::vec(proptest::option::of(1usize..50_000), 0..40),
            ending_at in 0usize..40,
            ending in proptest::sample::select(vec![Ending::Finish, Ending::Fail, Ending::Drop]),
        ) {
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            let (writer, mut body) = Body::channel();
            let mut writer = Some(writer);
            let mut sent = Vec::new();
            let mut got = Vec::new();
            let mut end = None;
            let mut read = |body: &mut Body, got: &mut Vec<u8>, end: &mut Option<_>| {
                if let Poll::Ready(next) = body.poll_chunk(&mut cx) {
                    match next {
                        // After its end, a body only says `None`.
                        None if end.is_some() => {}
                        Some(Ok(piece)) if end.is_none() => got.extend_from_slice(&piece),
                        other => {
                            proptest::prop_assert!(end.is_none(), "after the end: {other:?}");
                            *end = Some(other);
                        }
                    }
                }
                Ok(())
            };
            for (i, step) in steps.iter().enumerate() {
                if i == ending_at {
                    match (writer.take(), ending) {
                        (Some(w), Ending::Finish) => w.finish(),
                        (Some(w), Ending::Fail) => w.fail(BodyError::Shutdown),
                        (w, _) => drop(w),
                    }
                }
                match (step, &writer) {
                    (Some(len), Some(w)) => {
                        let piece = vec![(i % 251) as u8; *len];
                        sent.extend_from_slice(&piece);
                        w.push(Bytes::from(piece));
                    }
                    _ => read(&mut body, &mut got, &mut end)?,
                }
            }
            let ended = writer.is_none();
            drop(writer);
            while end.is_none() {
                read(&mut body, &mut got, &mut end)?;
            }
            proptest::prop_assert_eq!(&got, &sent);
            let expected = match (ended, ending) {
                (true, Ending::Finish) => None,
                (true, Ending::Fail) => Some(Err(BodyError::Shutdown)),
                _ => Some(Err(BodyError::ConnectionLost)),
            };
            proptest::prop_assert_eq!(end, Some(expected));
            proptest::prop_assert!(block_on(body.chunk()).is_none());
        }
    }
}
