//! The one place this crate touches a transport: [`Transport`] reads into a buffer of its
//! own and writes out what a core state machine handed over (`poll_transmit`), oldest first.
//!
//! The server connection, the client connection and the WebSocket pump all drive their core
//! through it, so reading, writing, flushing, backpressure and shutdown behave the same in
//! the three, and a runtime adapter only has to supply a stream.

use crate::io::{Read, Write};
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The most queued pieces one vectored write takes (Linux takes up to 1024).
const MAX_WRITE_SLICES: usize = 64;

/// What a read gave.
#[derive(Debug)]
pub(crate) enum Input {
    /// This many bytes, in [`Transport::received`].
    Data(usize),
    /// The peer closed its sending side.
    Eof,
    /// Reading failed.
    Failed(io::Error),
}

/// What one [`Transport::step`] did.
#[derive(Debug)]
pub(crate) enum Step {
    /// Something was read (or the read side ended).
    Input(Input),
    /// Everything queued is written and flushed.
    Flushed,
    /// Writing failed; what was queued is dropped, and later output is discarded.
    WriteFailed,
}

/// A transport with its read buffer and its queue of bytes to write.
#[derive(Debug)]
pub(crate) struct Transport<IO> {
    io: IO,
    buf: Vec<u8>,
    /// The read buffer doubles, up to this, while reads fill it.
    max_read: usize,
    out: VecDeque<Bytes>,
    queued: usize,
    /// Bytes were written since the last flush.
    needs_flush: bool,
    /// Writing failed: output is discarded.
    write_failed: bool,
}

impl<IO: Read + Write + Unpin> Transport<IO> {
    /// A transport reading `read` bytes at a time (growing up to `max_read` while reads fill
    /// the buffer).
    pub(crate) fn new(io: IO, read: usize, max_read: usize) -> Transport<IO> {
        Transport {
            io,
            buf: vec![0; read.max(1)],
            max_read: max_read.max(read),
            out: VecDeque::new(),
            queued: 0,
            needs_flush: false,
            write_failed: false,
        }
    }

    /// The bytes of the last `Input::Data(n)`.
    pub(crate) fn received(&self, n: usize) -> &[u8] {
        &self.buf[..n]
    }

    /// Queues bytes to write (nothing after a write failed).
    pub(crate) fn queue(&mut self, bytes: Bytes) {
        if !self.write_failed && !bytes.is_empty() {
            self.queued += bytes.len();
            self.out.push_back(bytes);
        }
    }

    /// Queues everything `next` hands out (a core's `poll_transmit`).
    pub(crate) fn queue_from(&mut self, mut next: impl FnMut() -> Option<Bytes>) {
        while let Some(bytes) = next() {
            self.queue(bytes);
        }
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Whether bytes wait to be written or flushed.
    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty() || self.needs_flush
    }

    /// Whether a write has failed.
    pub(crate) fn write_failed(&self) -> bool {
        self.write_failed
    }

    /// Drops what is queued (the peer is gone or unresponsive: nothing more is written).
    pub(crate) fn discard_output(&mut self) {
        self.out.clear();
        self.queued = 0;
        self.needs_flush = false;
    }

    /// Writes what is queued and flushes. Cancel-safe: what is not written stays queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write(cx)).await
    }

    /// Reads once. Cancel-safe.
    pub(crate) async fn read(&mut self) -> Input {
        poll_fn(|cx| self.poll_read(cx)).await
    }

    /// Writes (while there is output) and reads (if `reading`) in one poll, until one of
    /// them has something to say; never ready with neither to do. Polled by loops that wait
    /// on other sources too.
    pub(crate) fn poll_step(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<Step> {
        if self.has_output() {
            match self.poll_write(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(Step::Flushed),
                Poll::Ready(Err(_)) => return Poll::Ready(Step::WriteFailed),
                Poll::Pending => {}
            }
        }
        if reading {
            if let Poll::Ready(input) = self.poll_read(cx) {
                return Poll::Ready(Step::Input(input));
            }
        }
        Poll::Pending
    }

    /// Flushes what is queued and shuts down the write side (errors ignored: the
    /// connection is ending either way).
    pub(crate) async fn shutdown(&mut self) {
        poll_fn(|cx| self.poll_shutdown(cx)).await
    }

    /// [`shutdown`](Transport::shutdown) as a poll.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.poll_write(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(()),
            Poll::Ready(Ok(())) => Pin::new(&mut self.io).poll_shutdown(cx).map(|_| ()),
        }
    }

    /// The transport itself, for another protocol (after an upgrade); flush first.
    pub(crate) fn into_inner(self) -> IO {
        self.io
    }

    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Input> {
        match Pin::new(&mut self.io).poll_read(cx, &mut self.buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Input::Failed(e)),
            Poll::Ready(Ok(n)) => {
                if n == 0 {
                    return Poll::Ready(Input::Eof);
                }
                if n == self.buf.len() && self.buf.len() < self.max_read {
                    // Reads fill the buffer: the peer sends fast, read more at a time (the
                    // bytes just read stay where they are).
                    let grown = (self.buf.len() * 2).min(self.max_read);
                    self.buf.resize(grown, 0);
                }
                Poll::Ready(Input::Data(n))
            }
        }
    }

    /// Writes what is queued and flushes; `Ready(Ok)` once all is out.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_failed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        while !self.out.is_empty() {
            match self.poll_write_some(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.needs_flush = true;
                    self.consume(n);
                }
                // A zero-length write of a non-empty buffer, or an error: the transport is
                // dead.
                Poll::Ready(Ok(_)) => return Poll::Ready(Err(self.fail(None))),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.fail(Some(e)))),
            }
        }
        if self.needs_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.fail(Some(e)))),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// One write of the front of the queue: as many queued pieces as one `writev` takes when
    /// the stream writes vectored (a frame's header and payload, a response head and its
    /// body), else the first piece.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let io = Pin::new(&mut self.io);
        if self.out.len() > 1 && io.is_write_vectored() {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
            let mut count = 0;
            for (slice, piece) in slices.iter_mut().zip(&self.out) {
                *slice = IoSlice::new(piece);
                count += 1;
            }
            io.poll_write_vectored(cx, &slices[..count])
        } else {
            let front = self.out.front().map_or(&[][..], |b| &b[..]);
            io.poll_write(cx, front)
        }
    }

    /// Drops the first `n` bytes of the queue, which were written.
    fn consume(&mut self, mut n: usize) {
        self.queued = self.queued.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                return;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.out.pop_front();
        }
    }

    fn fail(&mut self, error: Option<io::Error>) -> io::Error {
        self.write_failed = true;
        self.discard_output();
        error.unwrap_or_else(|| io::ErrorKind::WriteZero.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::TokioIo;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_in_order_and_reads_with_a_growing_buffer() {
        let (ours, mut theirs) = duplex(1024);
        let mut transport = Transport::new(TokioIo(ours), 4, 16);
        transport.queue(Bytes::from_static(b"hello "));
        transport.queue(Bytes::new());
        transport.queue_from({
            let mut left = vec![Bytes::from_static(b"world")];
            move || left.pop()
        });
        assert_eq!(transport.queued(), 11);
        transport.flush().await.unwrap();
        assert!(!transport.has_output());
        let mut got = [0u8; 11];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");

        theirs.write_all(b"0123456789abcdef").await.unwrap();
        let mut read = Vec::new();
        while read.len() < 16 {
            match transport.read().await {
                Input::Data(n) => read.extend_from_slice(transport.received(n)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(read, b"0123456789abcdef");
        assert!(transport.buf.len() > 4 && transport.buf.len() <= 16);
        drop(theirs);
        assert!(matches!(transport.read().await, Input::Eof));
    }

    #[tokio::test]
    async fn step_writes_while_it_reads_and_reports_a_dead_peer() {
        let (ours, mut theirs) = duplex(8);
        let mut transport = Transport::new(TokioIo(ours), 64, 64);
        // More than the pipe holds: the write waits until the peer reads, while a read can
        // still complete.
        transport.queue(Bytes::from(vec![b'x'; 32]));
        theirs.write_all(b"ping").await.unwrap();
        match poll_fn(|cx| transport.poll_step(cx, true)).await {
            Step::Input(Input::Data(n)) => assert_eq!(transport.received(n), b"ping"),
            other => panic!("{other:?}"),
        }
        let mut sink = vec![0u8; 32];
        let (stepped, read) = tokio::join!(
            poll_fn(|cx| transport.poll_step(cx, false)),
            theirs.read_exact(&mut sink)
        );
        assert!(matches!(stepped, Step::Flushed), "{stepped:?}");
        assert!(!transport.has_output());
        read.unwrap();
        drop(theirs);
        transport.queue(Bytes::from_static(b"lost"));
        assert!(matches!(
            poll_fn(|cx| transport.poll_step(cx, false)).await,
            Step::WriteFailed
        ));
        assert!(transport.write_failed() && !transport.has_output());
        transport.queue(Bytes::from_static(b"discarded"));
        assert_eq!(transport.queued(), 0);
    }

    /// A stream that writes vectored, takes at most `limit` bytes per call, and records
    /// what each call took.
    struct VectoredSink {
        limit: usize,
        calls: Vec<Vec<u8>>,
    }

    impl crate::io::Write for VectoredSink {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut call = Vec::new();
            for buf in bufs {
                let room = self.limit - call.len();
                call.extend_from_slice(&buf[..buf.len().min(room)]);
            }
            let n = call.len();
            self.calls.push(call);
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl crate::io::Read for VectoredSink {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_vectored_stream_gets_the_queue_in_one_write_and_partial_writes_resume() {
        let pieces = [&b"head"[..], b"", b"payload", b"tail"];
        for (limit, expected) in [
            (100, vec![&b"headpayloadtail"[..]]),
            (6, vec![b"headpa", b"yloadt", b"ail"]),
        ] {
            let sink = VectoredSink {
                limit,
                calls: Vec::new(),
            };
            let mut transport = Transport::new(sink, 16, 16);
            for piece in pieces {
                transport.queue(Bytes::from_static(piece));
            }
            transport.flush().await.unwrap();
            assert_eq!(transport.queued(), 0);
            assert!(!transport.has_output());
            let calls = transport.into_inner().calls;
            assert_eq!(calls, expected, "limit {limit}");
        }
    }
}
