//! Sockets the host owns and feeds: the module keeps each one's received bytes and pending
//! output, and tasks read and write them through [`HostSocket`] (`tether-rt`'s `Read` and
//! `Write`). JavaScript moves the bytes: it hands received data in (`socket_data`, one copy
//! into the module) and takes each socket's pending output as one merged `Uint8Array` per
//! flush (one copy out, never a view of the module's memory), and it opens, ends and
//! destroys sockets when the module asks it to (the actions of [`take_actions`]).

use bytes::{Buf, Bytes};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tether_rt::io::{Read, Write};

/// Output a socket may hold before writers wait for the host to take it.
const WRITE_LIMIT: usize = 64 * 1024;

/// Received bytes a socket may hold unread before the host is told to stop reading it (a
/// peer must not fill the module's memory faster than the loops consume it).
const READ_LIMIT: usize = 64 * 1024;

/// Why the host could not open a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    /// The name did not resolve.
    Dns,
    /// The TCP connection failed (refused, unreachable...).
    Connect,
    /// The TLS handshake failed.
    Tls,
}

#[derive(Debug)]
enum Opening {
    Pending,
    Open,
    Failed(ConnectFailure, String),
}

/// How reading ended.
#[derive(Debug, Clone)]
enum ReadEnd {
    Eof,
    Failed(io::ErrorKind, String),
}

#[derive(Debug)]
struct Socket {
    opening: Opening,
    inbound: VecDeque<Bytes>,
    read_end: Option<ReadEnd>,
    read_waker: Option<Waker>,
    /// Bytes in `inbound`.
    buffered: usize,
    /// The host was told to stop reading; it is told to resume once `inbound` drains.
    reading_paused: bool,
    outbound: Vec<u8>,
    write_waker: Option<Waker>,
    /// The host's socket buffers are full: it takes no output until it says `drained`.
    paused: bool,
    end_requested: bool,
    end_sent: bool,
    dropped: bool,
}

impl Socket {
    fn new(opening: Opening) -> Socket {
        Socket {
            opening,
            inbound: VecDeque::new(),
            read_end: None,
            read_waker: None,
            buffered: 0,
            reading_paused: false,
            outbound: Vec::new(),
            write_waker: None,
            paused: false,
            end_requested: false,
            end_sent: false,
            dropped: false,
        }
    }

    fn wake_all(&mut self) {
        if let Some(waker) = self.read_waker.take() {
            waker.wake();
        }
        if let Some(waker) = self.write_waker.take() {
            waker.wake();
        }
    }
}

/// A request to open a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectRequest {
    pub(crate) socket: u32,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    /// The client asking (the host keeps per-client TLS settings: roots, verification).
    pub(crate) client: u32,
}

/// What the host must do with its sockets, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Open a connection (then `socket_connected` or `socket_connect_failed`).
    Connect(ConnectRequest),
    /// Write these bytes.
    Write(u32, Vec<u8>),
    /// End the write side once what was written is out.
    End(u32),
    /// The module is done with the socket: end what was ended, destroy the rest.
    Close(u32),
    /// Read again (after `socket_data` said to stop).
    Resume(u32),
}

thread_local! {
    static SOCKETS: RefCell<HashMap<u32, Socket>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
    static CONNECTS: RefCell<Vec<ConnectRequest>> = const { RefCell::new(Vec::new()) };
    /// Sockets with something for the host (output, an end, a close), in order, once each.
    static DIRTY: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Sockets the host should read again.
    static RESUMES: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

fn new_id() -> u32 {
    NEXT_ID.with(|next| {
        // Ids are never reused while the instance lives (u32: four billion sockets).
        next.set(next.get().wrapping_add(1).max(1));
        next.get()
    })
}

/// Notes that socket `id` has something for the host. `try_with`: a socket may be dropped
/// while the instance's thread-locals are being torn down.
fn mark_dirty(id: u32) {
    let _ = DIRTY.try_with(|dirty| {
        let mut dirty = dirty.borrow_mut();
        if !dirty.contains(&id) {
            dirty.push(id);
        }
    });
}

fn with_socket<R>(id: u32, f: impl FnOnce(&mut Socket) -> R) -> Option<R> {
    SOCKETS.with(|sockets| sockets.borrow_mut().get_mut(&id).map(f))
}

/// A socket the host has accepted (a server connection): open from the start.
pub(crate) fn accepted() -> HostSocket {
    let id = new_id();
    SOCKETS.with(|s| s.borrow_mut().insert(id, Socket::new(Opening::Open)));
    HostSocket { id }
}

/// Asks the host to open a connection; the socket is usable once [`HostSocket::opened`]
/// says so. Dropping it before then makes the host abandon the attempt.
pub(crate) fn connect(host: &str, port: u16, tls: bool, client: u32) -> HostSocket {
    let id = new_id();
    SOCKETS.with(|s| s.borrow_mut().insert(id, Socket::new(Opening::Pending)));
    CONNECTS.with(|c| {
        c.borrow_mut().push(ConnectRequest {
            socket: id,
            host: host.to_owned(),
            port,
            tls,
            client,
        })
    });
    HostSocket { id }
}

// ---- input from the host ----

/// The connection is open (TLS included).
pub(crate) fn connected(id: u32) {
    with_socket(id, |s| {
        s.opening = Opening::Open;
        s.wake_all();
    });
}

/// The connection could not be opened.
pub(crate) fn connect_failed(id: u32, failure: ConnectFailure, message: String) {
    with_socket(id, |s| {
        s.opening = Opening::Failed(failure, message);
        s.wake_all();
    });
}

/// Bytes received. `false`: stop reading this socket until a `Resume` action.
pub(crate) fn data(id: u32, bytes: Vec<u8>) -> bool {
    with_socket(id, |s| {
        if s.read_end.is_none() && !bytes.is_empty() {
            s.buffered += bytes.len();
            s.inbound.push_back(Bytes::from(bytes));
            if let Some(waker) = s.read_waker.take() {
                waker.wake();
            }
        }
        s.reading_paused = s.buffered >= READ_LIMIT;
        !s.reading_paused
    })
    .unwrap_or(true)
}

/// The peer ended its side.
pub(crate) fn eof(id: u32) {
    with_socket(id, |s| {
        s.read_end.get_or_insert(ReadEnd::Eof);
        s.wake_all();
    });
}

/// The socket failed (reset, a TLS alert...): reads and writes fail from now on.
pub(crate) fn failed(id: u32, message: String) {
    with_socket(id, |s| {
        s.read_end = Some(ReadEnd::Failed(io::ErrorKind::ConnectionReset, message));
        s.outbound.clear();
        s.wake_all();
    });
}

/// The host's buffers are full (`paused`) or have drained.
pub(crate) fn set_paused(id: u32, paused: bool) {
    with_socket(id, |s| {
        s.paused = paused;
        if !paused {
            if let Some(waker) = s.write_waker.take() {
                waker.wake();
            }
        }
    });
    if !paused {
        mark_dirty(id);
    }
}

/// Everything the host has to do, in order: connects first, then each socket's output,
/// end and close.
pub(crate) fn take_actions() -> Vec<Action> {
    let mut actions: Vec<Action> = CONNECTS
        .with(|c| std::mem::take(&mut *c.borrow_mut()))
        .into_iter()
        .map(Action::Connect)
        .collect();
    actions.extend(
        RESUMES
            .with(|r| std::mem::take(&mut *r.borrow_mut()))
            .into_iter()
            .map(Action::Resume),
    );
    let dirty = DIRTY.with(|d| std::mem::take(&mut *d.borrow_mut()));
    SOCKETS.with(|sockets| {
        let mut sockets = sockets.borrow_mut();
        for id in dirty {
            let Some(s) = sockets.get_mut(&id) else {
                continue;
            };
            if !s.paused && !s.outbound.is_empty() {
                actions.push(Action::Write(id, std::mem::take(&mut s.outbound)));
                if let Some(waker) = s.write_waker.take() {
                    waker.wake();
                }
            }
            if s.end_requested && !s.end_sent && s.outbound.is_empty() {
                s.end_sent = true;
                actions.push(Action::End(id));
            }
            if s.dropped && (s.outbound.is_empty() || s.read_end.is_some()) {
                sockets.remove(&id);
                actions.push(Action::Close(id));
            }
        }
    });
    actions
}

/// Open sockets (for the tests' leak checks).
pub(crate) fn open_sockets() -> usize {
    SOCKETS.with(|s| s.borrow().len())
}

/// One host socket, as the loops read and write it. Dropping it closes the socket.
#[derive(Debug)]
pub(crate) struct HostSocket {
    id: u32,
}

impl HostSocket {
    /// Waits until the host has opened the connection.
    pub(crate) async fn opened(&self) -> Result<(), (ConnectFailure, String)> {
        std::future::poll_fn(|cx| {
            with_socket(self.id, |s| match &s.opening {
                Opening::Open => Poll::Ready(Ok(())),
                Opening::Failed(failure, message) => Poll::Ready(Err((*failure, message.clone()))),
                Opening::Pending => {
                    s.write_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .unwrap_or(Poll::Ready(Err((
                ConnectFailure::Connect,
                "socket gone".into(),
            ))))
        })
        .await
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the host closed this socket")
}

impl Read for HostSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        with_socket(self.id, |s| {
            if let Some(front) = s.inbound.front_mut() {
                let n = front.len().min(buf.len());
                buf[..n].copy_from_slice(&front[..n]);
                front.advance(n);
                if front.is_empty() {
                    s.inbound.pop_front();
                }
                s.buffered -= n;
                if s.reading_paused && s.buffered < READ_LIMIT / 2 {
                    s.reading_paused = false;
                    RESUMES.with(|r| r.borrow_mut().push(self.id));
                }
                return Poll::Ready(Ok(n));
            }
            match &s.read_end {
                Some(ReadEnd::Eof) => Poll::Ready(Ok(0)),
                Some(ReadEnd::Failed(kind, message)) => {
                    Poll::Ready(Err(io::Error::new(*kind, message.clone())))
                }
                None => {
                    s.read_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .unwrap_or_else(|| Poll::Ready(Err(gone())))
    }
}

impl Write for HostSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Every buffer is appended to the socket's outbound bytes at once, so a frame's header
    /// and payload reach the host as one write.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        let polled = with_socket(id, |s| {
            if let Some(ReadEnd::Failed(kind, message)) = &s.read_end {
                return Poll::Ready(Err(io::Error::new(*kind, message.clone())));
            }
            if s.end_requested {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "write after end",
                )));
            }
            if s.outbound.len() >= WRITE_LIMIT {
                s.write_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let mut written = 0;
            for buf in bufs {
                s.outbound.extend_from_slice(buf);
                written += buf.len();
            }
            Poll::Ready(Ok(written))
        })
        .unwrap_or_else(|| Poll::Ready(Err(gone())));
        if matches!(polled, Poll::Ready(Ok(_))) {
            mark_dirty(id);
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        with_socket(self.id, |s| {
            if let Some(ReadEnd::Failed(kind, message)) = &s.read_end {
                return Poll::Ready(Err(io::Error::new(*kind, message.clone())));
            }
            if s.outbound.is_empty() && !s.paused {
                Poll::Ready(Ok(()))
            } else {
                s.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .unwrap_or_else(|| Poll::Ready(Err(gone())))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let id = self.id;
        with_socket(id, |s| s.end_requested = true);
        mark_dirty(id);
        Poll::Ready(Ok(()))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        let id = self.id;
        let _ = SOCKETS.try_with(|sockets| {
            if let Some(s) = sockets.borrow_mut().get_mut(&id) {
                s.dropped = true;
            }
        });
        mark_dirty(id);
    }
}

impl HostSocket {
    /// The id the host knows this socket by.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    fn cx_poll<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        let waker = Waker::from(Arc::new(Noop));
        f(&mut Context::from_waker(&waker))
    }

    #[test]
    fn output_is_merged_per_flush_and_ends_follow_it() {
        let mut socket = accepted();
        let id = socket.id();
        for piece in [&b"GET / "[..], b"HTTP/1.1\r\n", b"\r\n"] {
            let polled = cx_poll(|cx| Pin::new(&mut socket).poll_write(cx, piece));
            assert!(matches!(polled, Poll::Ready(Ok(_))));
        }
        assert!(cx_poll(|cx| Pin::new(&mut socket).poll_flush(cx)).is_pending());
        assert_eq!(
            take_actions(),
            vec![Action::Write(id, b"GET / HTTP/1.1\r\n\r\n".to_vec())]
        );
        assert!(matches!(
            cx_poll(|cx| Pin::new(&mut socket).poll_shutdown(cx)),
            Poll::Ready(Ok(()))
        ));
        drop(socket);
        assert_eq!(take_actions(), vec![Action::End(id), Action::Close(id)]);
        assert!(take_actions().is_empty());
    }

    #[test]
    fn a_full_inbound_buffer_pauses_reading_until_drained() {
        let mut socket = accepted();
        let id = socket.id();
        assert!(data(id, vec![0; READ_LIMIT - 1]));
        assert!(!data(id, vec![0; 10]));
        let mut buf = vec![0u8; READ_LIMIT];
        let _ = cx_poll(|cx| Pin::new(&mut socket).poll_read(cx, &mut buf));
        assert_eq!(take_actions(), vec![Action::Resume(id)]);
    }

    #[test]
    fn reads_see_data_then_the_end_and_paused_output_waits() {
        let mut socket = accepted();
        let id = socket.id();
        assert!(data(id, b"hello".to_vec()));
        eof(id);
        let mut buf = [0u8; 3];
        let mut read = |socket: &mut HostSocket| match cx_poll(|cx| {
            Pin::new(&mut *socket).poll_read(cx, &mut buf)
        }) {
            Poll::Ready(Ok(n)) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(read(&mut socket), 3);
        assert_eq!(read(&mut socket), 2);
        assert_eq!(read(&mut socket), 0);
        set_paused(id, true);
        let _ = cx_poll(|cx| Pin::new(&mut socket).poll_write(cx, b"x"));
        assert!(take_actions().is_empty());
        set_paused(id, false);
        assert_eq!(take_actions(), vec![Action::Write(id, b"x".to_vec())]);
    }
}
