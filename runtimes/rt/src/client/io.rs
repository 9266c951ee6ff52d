//! One connection's IO: the transports a [`Connector`] opens, the core's h1 client
//! connection over one of them ([`Conn`]), and the steps every exchange is made of (write
//! out, read the next event, under the request's deadlines).

use super::config::ClientError;
use super::request::Outgoing;
use crate::io::{Read, Write};
use crate::runtime::{poll_once, BoxFuture, Rt, Runtime, Timer};
use crate::runtime::{MaybeSend, MaybeSync};
use crate::transport::{Input, Step, Transport};
use http::{Request, StatusCode};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::{ready, Poll};
use std::time::Duration;
use tether_core::h1::{ClientConnection, ClientConnectionConfig, ClientEvent};
use tether_core::pool::Origin;
use tether_core::time::RequestTimer;

/// A transport: plain TCP, or TLS over it, as this crate's [`Read`] and [`Write`] (each
/// runtime adapter wraps its streams).
pub trait Io: Read + Write + Unpin + MaybeSend {}
impl<T: Read + Write + Unpin + MaybeSend> Io for T {}

/// How an adapter opens connections: DNS, TCP, and TLS for `https`/`wss` origins. The
/// client calls it once per new pooled connection (under the `sock_connect` timeout) and
/// once per WebSocket.
pub trait Connector: MaybeSend + MaybeSync + 'static {
    /// Opens a transport to `origin`. Failures are [`ClientError::Dns`],
    /// [`ClientError::Connect`] or [`ClientError::Tls`].
    fn connect(&self, origin: &Origin) -> BoxFuture<Result<Box<dyn Io>, ClientError>>;

    /// For proxies: a plain connection to `host:port` (the proxy). The default says the
    /// adapter cannot ([`ClientError::Connect`] with `ErrorKind::Unsupported`).
    fn connect_plain(&self, host: &str, port: u16) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let _ = (host, port);
        Box::pin(async { Err(ClientError::Connect(unsupported())) })
    }

    /// For `socks5://` proxies: the address of `host:port`, resolved by the client.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<Result<std::net::SocketAddr, ClientError>> {
        let _ = (host, port);
        Box::pin(async { Err(ClientError::Dns(unsupported())) })
    }

    /// For proxies: TLS to `host` over a transport already open (to an `https://` proxy, or
    /// through a tunnel to an `https`/`wss` origin).
    fn start_tls(
        &self,
        io: Box<dyn Io>,
        host: &str,
    ) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let _ = (io, host);
        Box::pin(async { Err(ClientError::Connect(unsupported())) })
    }
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this runtime adapter cannot connect through proxies",
    )
}

/// Size of a connection's read buffer.
const READ_BUFFER: usize = 16 * 1024;

/// How long a request with `Expect: 100-continue` waits for the server's word before
/// sending its body anyway.
const CONTINUE_PATIENCE: Duration = Duration::from_secs(1);

/// One open HTTP connection.
pub(super) struct Conn {
    /// The clock the core's inputs and outputs are stamped with.
    rt: Rt,
    /// The stream, with its read buffer (one per connection, not in the request's futures,
    /// where it would be zeroed on every read and copied whenever a future is moved).
    pub(super) transport: Transport<Box<dyn Io>>,
    pub(super) http: ClientConnection,
    /// The sleep of the requests' deadlines, kept armed across requests: the next request's
    /// later deadline reuses it instead of registering a new timer (see [`Timer`]).
    sleep: Timer,
}

impl Conn {
    /// Whether another request may use this connection: the core says so, and nothing of
    /// the last request is still unwritten (a body cut short by an early answer: the
    /// server may be discarding it, or waiting for it, and the next request would follow).
    pub(super) fn is_reusable(&self) -> bool {
        self.http.is_reusable() && !self.transport.has_output()
    }

    /// Whether the peer closed (or wrote to, or broke) this idle connection: one read
    /// polled, which the runtime answers from its readiness state without a system call
    /// when nothing arrived.
    pub(super) async fn closed_while_idle(&mut self) -> bool {
        let mut read = pin!(self.transport.read());
        poll_once(&mut read).await.is_some()
    }

    /// A connection over `stream`; `absolute_form` for one to an HTTP forward proxy.
    pub(super) fn new(rt: Rt, stream: Box<dyn Io>, absolute_form: bool) -> Conn {
        let mut config = ClientConnectionConfig::default();
        config.absolute_form = absolute_form;
        Conn {
            rt,
            transport: Transport::new(stream, READ_BUFFER, READ_BUFFER),
            http: ClientConnection::new(config),
            sleep: Timer::default(),
        }
    }

    /// Writes out everything the core has to send, within `timer`'s deadlines.
    pub(super) async fn flush(&mut self, timer: &mut RequestTimer) -> Result<(), ClientError> {
        let Conn {
            rt,
            transport,
            http,
            sleep,
        } = self;
        let now = rt.now();
        transport.queue_from(|| http.poll_transmit(now));
        with_deadline(&**rt, sleep, timer, transport.flush())
            .await?
            .map_err(ClientError::Io)
    }

    /// The next event of the connection, reading as needed, within `timer`'s deadlines.
    pub(super) async fn next_event(
        &mut self,
        timer: &mut RequestTimer,
    ) -> Result<ClientEvent, ClientError> {
        let Conn {
            rt,
            transport,
            http,
            sleep,
        } = self;
        let read = async {
            loop {
                if let Some(event) = http.poll_event() {
                    return Ok(event);
                }
                match transport.read().await {
                    Input::Eof => http.handle_eof(),
                    Input::Data(n) => http.handle_input(rt.now(), transport.received(n)),
                    Input::Failed(e) => return Err(ClientError::Io(e)),
                }
            }
        };
        with_deadline(&**rt, sleep, timer, read).await?
    }

    /// Writes the request (holding the body back for `Expect: 100-continue`) and reads up
    /// to the final response head. `response_started`: set once the server has said
    /// anything (an informational response), after which a failure is not retried.
    pub(super) async fn send_request(
        &mut self,
        head: &Request<()>,
        body: Outgoing,
        timer: &mut RequestTimer,
        response_started: &mut bool,
    ) -> Result<http::Response<()>, ClientError> {
        let rt = self.rt.clone();
        self.http.send_request(head)?;
        self.flush(timer).await?;
        if self.http.is_waiting_for_continue() {
            let patience = rt.now() + CONTINUE_PATIENCE;
            let waited = {
                let mut wait = pin!(self.wait_for_continue(timer, response_started));
                let mut patience_over = rt.sleep_until(patience);
                // The server's word first: an answer ready when the patience runs out wins.
                poll_fn(|cx| match wait.as_mut().poll(cx) {
                    Poll::Ready(waited) => Poll::Ready(Ok(waited)),
                    Poll::Pending => patience_over.as_mut().poll(cx).map(Err),
                })
                .await
            };
            match waited {
                // A final answer before the body: return it; the body is never sent.
                Ok(Ok(Some(final_head))) => return Ok(final_head),
                Ok(Ok(None)) | Err(_) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
        match body {
            Outgoing::Empty => {}
            Outgoing::Full(bytes) => self.http.send_data(bytes)?,
            Outgoing::Stream(mut stream) => {
                use futures_util::StreamExt;
                while let Some(piece) = stream.next().await {
                    self.http.send_data(piece)?;
                    if let Some(early) = self.flush_watching(timer, response_started).await? {
                        return Ok(early);
                    }
                }
            }
        }
        self.http.send_end(None)?;
        if let Some(early) = self.flush_watching(timer, response_started).await? {
            return Ok(early);
        }
        timer.sent(rt.now());
        loop {
            match self.next_event(timer).await? {
                ClientEvent::Informational(_) => *response_started = true,
                ClientEvent::Response(head) => return Ok(head),
                ClientEvent::Error(e) => return Err(e.into()),
                ClientEvent::Closed => return Err(unexpected_eof()),
                _ => {}
            }
            timer.read(rt.now());
        }
    }

    /// Writes what the core has to send while reading what the server says: a server may
    /// answer (401, 407, 413) before it has read the whole body, and stop reading it; a
    /// client that only wrote would wait for buffer space forever (RFC 9112 §9.5: a client
    /// watches for a response while it sends). Returns that final response head, if one
    /// came before the writing ended; the connection is then not reused (its request was
    /// not finished). A write that fails still lets the answer already sent be read.
    async fn flush_watching(
        &mut self,
        timer: &mut RequestTimer,
        response_started: &mut bool,
    ) -> Result<Option<http::Response<()>>, ClientError> {
        let Conn {
            rt,
            transport,
            http,
            sleep,
        } = self;
        transport.queue_from(|| http.poll_transmit(rt.now()));
        let mut write_failed = false;
        let work = poll_fn(|cx| loop {
            while let Some(event) = http.poll_event() {
                match event {
                    ClientEvent::Informational(_) => *response_started = true,
                    ClientEvent::Response(head) => return Poll::Ready(Ok(Some(head))),
                    ClientEvent::Error(e) => return Poll::Ready(Err(e.into())),
                    ClientEvent::Closed => return Poll::Ready(Err(unexpected_eof())),
                    _ => {}
                }
            }
            let input = if write_failed {
                ready!(transport.poll_read(cx))
            } else if !transport.has_output() {
                return Poll::Ready(Ok(None));
            } else {
                match ready!(transport.poll_step(cx, true)) {
                    Step::Flushed => return Poll::Ready(Ok(None)),
                    Step::WriteFailed => {
                        write_failed = true;
                        continue;
                    }
                    Step::Input(input) => input,
                }
            };
            match input {
                Input::Data(n) => http.handle_input(rt.now(), transport.received(n)),
                Input::Eof => http.handle_eof(),
                Input::Failed(e) => return Poll::Ready(Err(ClientError::Io(e))),
            }
        });
        with_deadline(&**rt, sleep, timer, work).await?
    }

    /// Waits for `100 Continue` (`None`) or a final response head (`Some`).
    async fn wait_for_continue(
        &mut self,
        timer: &mut RequestTimer,
        response_started: &mut bool,
    ) -> Result<Option<http::Response<()>>, ClientError> {
        loop {
            match self.next_event(timer).await? {
                ClientEvent::Informational(head) => {
                    *response_started = true;
                    if head.status() == StatusCode::CONTINUE {
                        return Ok(None);
                    }
                }
                ClientEvent::Response(head) => return Ok(Some(head)),
                ClientEvent::Error(e) => return Err(e.into()),
                _ => return Err(unexpected_eof()),
            }
        }
    }
}

/// The connection ended where the exchange needed more.
pub(super) fn unexpected_eof() -> ClientError {
    ClientError::Io(io::ErrorKind::UnexpectedEof.into())
}

/// Runs `future` until the request's earliest deadline; on expiry, the timeout that fired.
/// `sleep` is the timer to wait on (a connection's, kept armed across its requests, or a
/// fresh one).
pub(super) async fn with_deadline<F: Future>(
    rt: &dyn Runtime,
    sleep: &mut Timer,
    timer: &mut RequestTimer,
    future: F,
) -> Result<F::Output, ClientError> {
    let mut future = pin!(future);
    // Most steps (a write the socket buffer takes, a read of bytes already there) finish on
    // the first poll: no timer is involved.
    if let Some(output) = poll_once(&mut future).await {
        return Ok(output);
    }
    loop {
        let Some(deadline) = timer.poll_timeout() else {
            return Ok(future.await);
        };
        // May complete before `deadline` (an earlier one still armed): then nothing is due
        // and the loop waits again.
        let mut expiry = pin!(sleep.sleep_until(rt, Some(deadline)));
        // Biased: the work first, the timer only while the work is pending (work that is
        // done when its deadline passes is not a timeout).
        let output = poll_fn(|cx| match future.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => expiry.as_mut().poll(cx).map(|()| None),
        })
        .await;
        match output {
            Some(output) => return Ok(output),
            None => {
                if let Some(kind) = timer.handle_timeout(rt.now()) {
                    return Err(ClientError::Timeout(kind));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::rt;
    use bytes::Bytes;
    use tether_core::time::{ClientTimeouts, TimeoutKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    fn conn() -> (Conn, DuplexStream) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        (
            Conn::new(
                rt(),
                Box::new(crate::runtime::test_support::TokioIo(client)),
                false,
            ),
            server,
        )
    }

    fn get() -> Request<()> {
        Request::builder()
            .uri("http://example.test/x")
            .header("host", "example.test")
            .body(())
            .unwrap()
    }

    /// A 4-byte upload with `Expect: 100-continue`.
    fn upload(method: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri("http://example.test/upload")
            .header("host", "example.test")
            .header("expect", "100-continue")
            .header("content-length", "4")
            .body(())
            .unwrap()
    }

    fn body() -> Outgoing {
        Outgoing::Full(Bytes::from_static(b"body"))
    }

    /// Reads from `server` until the end of a request head; returns it.
    async fn read_head(server: &mut DuplexStream) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = server.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request head ended early");
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(seen).unwrap()
    }

    #[tokio::test]
    async fn a_request_goes_out_and_its_response_comes_back_event_by_event() {
        let (mut conn, mut server) = conn();
        let mut timer = RequestTimer::new(ClientTimeouts::default(), rt().now());
        let mut started = false;
        server
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        let head = conn
            .send_request(&get(), Outgoing::Empty, &mut timer, &mut started)
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert!(!started, "no informational response");
        assert!(read_head(&mut server)
            .await
            .starts_with("GET /x HTTP/1.1\r\n"));
        assert!(
            matches!(conn.next_event(&mut timer).await.unwrap(), ClientEvent::Data(d) if d == "ok")
        );
        assert!(matches!(
            conn.next_event(&mut timer).await.unwrap(),
            ClientEvent::End { .. }
        ));
        assert!(conn.http.is_reusable());
    }

    #[tokio::test]
    async fn a_connection_that_ends_before_the_head_is_an_unexpected_eof() {
        let (mut conn, server) = conn();
        drop(server);
        let mut timer = RequestTimer::new(ClientTimeouts::default(), rt().now());
        let result = conn
            .send_request(&get(), Outgoing::Empty, &mut timer, &mut false)
            .await;
        assert!(matches!(result, Err(ClientError::Io(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_final_answer_to_expect_continue_keeps_the_body_back() {
        let (mut conn, mut server) = conn();
        let head = upload("POST");
        let mut timer = RequestTimer::new(ClientTimeouts::default(), rt().now());
        let mut started = false;
        let exchange = conn.send_request(&head, body(), &mut timer, &mut started);
        let server_side = async {
            let request = read_head(&mut server).await;
            server
                .write_all(b"HTTP/1.1 417 Expectation Failed\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            (request, server)
        };
        let (answer, (request, mut server)) = tokio::join!(exchange, server_side);
        assert_eq!(answer.unwrap().status(), 417);
        assert!(request.ends_with("\r\n\r\n"));
        drop(conn);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the body was never sent: {rest:?}");
    }

    #[tokio::test]
    async fn a_hundred_continue_lets_the_body_go() {
        let (mut conn, mut server) = conn();
        let head = upload("PUT");
        let mut timer = RequestTimer::new(ClientTimeouts::default(), rt().now());
        let mut started = false;
        let exchange = conn.send_request(&head, body(), &mut timer, &mut started);
        let server_side = async {
            read_head(&mut server).await;
            server
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .unwrap();
            let mut body = [0u8; 4];
            server.read_exact(&mut body).await.unwrap();
            server
                .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            body
        };
        let (answer, body) = tokio::join!(exchange, server_side);
        assert_eq!(answer.unwrap().status(), 201);
        assert_eq!(&body, b"body");
        assert!(started, "the 100 counts as the response having started");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_trips_sock_read() {
        let (mut conn, _server) = conn();
        let timeouts = ClientTimeouts::NONE.with_sock_read(Some(Duration::from_millis(300)));
        let mut timer = RequestTimer::new(timeouts, rt().now());
        timer.connected();
        let result = conn
            .send_request(&get(), Outgoing::Empty, &mut timer, &mut false)
            .await;
        assert!(
            matches!(result, Err(ClientError::Timeout(TimeoutKind::SockRead))),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_deadline_passes_through_what_is_ready_and_times_out_what_is_not() {
        let rt = rt();
        let timeouts = ClientTimeouts::NONE.with_total(Some(Duration::from_secs(5)));
        let mut timer = RequestTimer::new(timeouts, rt.now());
        assert_eq!(
            with_deadline(&*rt, &mut Timer::default(), &mut timer, async { 7 })
                .await
                .unwrap(),
            7
        );
        let result = with_deadline(
            &*rt,
            &mut Timer::default(),
            &mut timer,
            std::future::pending::<()>(),
        )
        .await;
        assert!(matches!(
            result,
            Err(ClientError::Timeout(TimeoutKind::Total))
        ));
        // Without any deadline, the future is simply awaited.
        let mut timer = RequestTimer::new(ClientTimeouts::NONE, rt.now());
        let late = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "late"
        };
        assert_eq!(
            with_deadline(&*rt, &mut Timer::default(), &mut timer, late)
                .await
                .unwrap(),
            "late"
        );
    }
}
