//! The demo's endpoints served with `std::net` and one thread per connection, driving
//! `tether-core`'s state machines directly: no async runtime at all.
//!
//! ```text
//! cargo run -p tether-core --example blocking_server -- --addr 127.0.0.1:8080
//! ```
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /` | `200 text/plain` `Hello, World!` |
//! | `POST /echo` | the request body, byte for byte, with the same `Content-Type` |
//! | `GET /stream?n=N` | a chunked `text/plain` body of N lines `line {i}` |
//! | `GET /slow?ms=N` | `waited N ms`, after N ms |
//! | `GET /ws` | WebSocket echo (subprotocols `echo`, `chat`), heartbeat every 15 s, permessage-deflate when offered |
//!
//! Anything else is `404`, a known path with another method `405`. Everything HTTP itself
//! decides (keep-alive, pipelining, `100 Continue`, the 1 MiB body limit and its `413`, the
//! head and idle deadlines and their `408`, every `400`) is the core's: this file moves bytes
//! between sockets and the state machines, turns the host clock into the core's `Instant`,
//! and sleeps until the deadlines the core names.
//!
//! Left out on purpose, to stay short: graceful shutdown (Ctrl-C kills the process and cuts
//! open connections), TLS, and a cap on the number of connection threads.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;
use tether_core::h1::{RequestBody, ServerConnection, ServerConnectionConfig, ServerEvent};
use tether_core::time::Instant;
use tether_core::ws::{self, Negotiated, WebSocket, WsConfig, WsEvent};

/// A write that makes no progress for this long ends the connection. The core's deadlines
/// cover a peer that does not send; a blocking socket needs its own bound for one that does
/// not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The host clock as the core sees it: time since one origin, fixed once for the process.
/// The core only ever compares and adds instants, so any monotonic clock does.
fn now() -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    Instant::from_duration(ORIGIN.get_or_init(std::time::Instant::now).elapsed())
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a blocking read brought.
enum Input {
    /// This many bytes, at the front of the buffer.
    Data(usize),
    /// The peer closed its sending side.
    Eof,
    /// Nothing: the read timed out (a deadline may have come) or a signal interrupted it.
    Nothing,
}

/// Reads once, waiting no later than `deadline` (`None`: until something arrives).
fn read_until(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> io::Result<Input> {
    // A zero timeout means "block forever" to the OS, so std refuses it: wait at least 1 ms.
    let wait = deadline.map(|t| {
        t.saturating_duration_since(now())
            .max(Duration::from_millis(1))
    });
    stream.set_read_timeout(wait)?;
    match stream.read(buf) {
        Ok(0) => Ok(Input::Eof),
        Ok(n) => Ok(Input::Data(n)),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
            ) =>
        {
            Ok(Input::Nothing)
        }
        Err(e) => Err(e),
    }
}

/// Ends a connection whose last bytes have been written: shut our sending side, then read
/// (and drop) what the peer still sends for a moment. Closing with unread input makes the
/// kernel send a reset, which can destroy a response the client has not read yet.
fn close_gracefully(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// An API misuse reported by the core: a bug in this file, so the connection ends.
fn misuse(error: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(error)
}

/// The value of `key` in the query string, as a number.
fn query_number(head: &Request<()>, key: &str) -> Option<u64> {
    head.uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))?
        .parse()
        .ok()
}

/// The WebSocket settings: a ping after 15 s of silence (the connection ends if nothing
/// answers within half of that), permessage-deflate accepted when offered (the default).
fn ws_config() -> WsConfig {
    let mut config = WsConfig::default();
    config.heartbeat = Some(Duration::from_secs(15));
    config
}

/// What the request being read is owed, once the core has said enough about it.
enum Owed {
    /// Nothing (no request, or it has been answered).
    Nothing,
    /// `POST /echo`: the body so far, answered at `End`.
    Echo {
        content_type: HeaderValue,
        body: Vec<u8>,
    },
    /// `GET /slow`: the answer is due at `due`; until then the connection sleeps no later.
    Slow { due: Instant, ms: u64 },
    /// `GET /ws`, accepted: the `101` is queued and `Upgraded` comes next.
    WebSocket(Negotiated),
}

/// One HTTP/1.1 connection: the socket, the core's state machine, and what we owe.
struct Connection {
    stream: TcpStream,
    peer: Option<SocketAddr>,
    conn: ServerConnection,
    owed: Owed,
}

impl Connection {
    /// Serves the connection until it closes, or until it becomes a WebSocket.
    fn run(mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // 1. The deadlines that have come: the core's (head, keep-alive idle, body read)
            //    and ours (a `/slow` answer). An early `handle_timeout` would be a no-op; we
            //    call it only when due to keep the contract visible.
            let t = now();
            if self
                .conn
                .poll_timeout()
                .is_some_and(|deadline| deadline <= t)
            {
                self.conn.handle_timeout(t);
            }
            if let Owed::Slow { due, ms } = self.owed {
                if due <= t {
                    self.owed = Owed::Nothing;
                    let text = format!("waited {ms} ms");
                    self.respond(StatusCode::OK, Some(text_plain()), Bytes::from(text))?;
                }
            }

            // 2. Every event the core has. Polling for body events is also what sends an
            //    owed `100 Continue`, and what brings the next pipelined request once the
            //    current response is complete.
            while let Some(event) = self.conn.poll_event() {
                match event {
                    ServerEvent::Request { head, body } => self.on_request(head, body)?,
                    ServerEvent::Data(data) => {
                        if let Owed::Echo { body, .. } = &mut self.owed {
                            body.extend_from_slice(&data);
                        }
                    }
                    ServerEvent::End { .. } => {
                        if let Owed::Echo { content_type, body } = &mut self.owed {
                            let content_type = content_type.clone();
                            let body = Bytes::from(std::mem::take(body));
                            self.owed = Owed::Nothing;
                            self.respond(StatusCode::OK, Some(content_type), body)?;
                        }
                    }
                    ServerEvent::Upgraded { trailing } => {
                        let Owed::WebSocket(negotiated) =
                            std::mem::replace(&mut self.owed, Owed::Nothing)
                        else {
                            return Ok(()); // we never switch protocols otherwise
                        };
                        self.flush()?; // the `101`, before any WebSocket frame
                        return websocket(self.stream, negotiated, trailing);
                    }
                    ServerEvent::Error(error) => {
                        // The core has queued the answer (400, 408, 413, ...) if one was
                        // owed; what is left is to send it and close.
                        if let Some(peer) = self.peer {
                            eprintln!("{peer}: {error}");
                        }
                        self.owed = Owed::Nothing;
                    }
                    // `Closed` (the peer left between requests) and any later event kind:
                    // nothing to do, `is_closed` says when to stop.
                    _ => {}
                }
            }

            // 3. The bytes to send, in order.
            self.flush()?;

            // 4. Finished: every byte handed out and no more HTTP will happen.
            if self.conn.is_closed() {
                close_gracefully(self.stream);
                return Ok(());
            }

            // 5. Sleep until input arrives or the earliest deadline comes.
            let deadline = earliest(self.conn.poll_timeout(), self.owed.due());
            if self.conn.wants_input() {
                match read_until(&mut self.stream, &mut buf, deadline)? {
                    // The core copies the bytes into its own buffer: `buf` is ours again.
                    Input::Data(n) => self.conn.handle_input(now(), &buf[..n]),
                    Input::Eof => self.conn.handle_eof(),
                    Input::Nothing => {}
                }
            } else if let Some(deadline) = deadline {
                // After EOF, or with enough unread input buffered (pipelined requests behind
                // a `/slow` one): nothing to read, only a deadline to wait for.
                thread::sleep(deadline.saturating_duration_since(now()));
            } else {
                // No input wanted and nothing to wait for: nothing more can happen.
                return Ok(());
            }
        }
    }

    /// A request head: answer at once, or remember what it is owed.
    fn on_request(&mut self, head: Request<()>, body: RequestBody) -> io::Result<()> {
        let get = matches!(*head.method(), Method::GET | Method::HEAD);
        match head.uri().path() {
            "/" if get => {
                let hello = Bytes::from_static(b"Hello, World!");
                self.respond(StatusCode::OK, Some(text_plain()), hello)
            }
            "/echo" if head.method() == Method::POST => {
                let content_type = head.headers().get(header::CONTENT_TYPE).cloned();
                // The core has already refused a declared length over the body limit (413),
                // so this capacity is bounded.
                let capacity = body.length().unwrap_or(0) as usize;
                self.owed = Owed::Echo {
                    content_type: content_type
                        .unwrap_or(HeaderValue::from_static("application/octet-stream")),
                    body: Vec::with_capacity(capacity),
                };
                Ok(())
            }
            "/stream" if get => self.stream_lines(query_number(&head, "n").unwrap_or(10)),
            "/slow" if get => {
                let ms = query_number(&head, "ms").unwrap_or(1000);
                let due = now() + Duration::from_millis(ms.min(60_000));
                self.owed = Owed::Slow { due, ms };
                Ok(())
            }
            "/ws" if head.method() == Method::GET && !body.is_empty() => {
                // An upgrade switches protocols right after the head: no body allowed.
                self.respond(StatusCode::BAD_REQUEST, None, Bytes::new())
            }
            "/ws" if head.method() == Method::GET => {
                match ws::accept(&head, &["echo", "chat"], &ws_config()) {
                    Ok((switching, negotiated)) => {
                        self.conn.send_response(&switching).map_err(misuse)?;
                        self.owed = Owed::WebSocket(negotiated);
                        Ok(())
                    }
                    // Not a valid upgrade: 400, or 426 for another protocol version.
                    Err(refusal) => {
                        self.conn
                            .send_response(&refusal.response())
                            .map_err(misuse)?;
                        self.conn.send_end(None).map_err(misuse)
                    }
                }
            }
            "/" | "/stream" | "/slow" => self.method_not_allowed("GET, HEAD"),
            "/echo" => self.method_not_allowed("POST"),
            "/ws" => self.method_not_allowed("GET"),
            _ => self.respond(StatusCode::NOT_FOUND, None, Bytes::new()),
        }
    }

    /// A complete response with a `Content-Length`. Answering before the request body has
    /// been read is fine: the core skips a body already received, or closes the connection.
    fn respond(
        &mut self,
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    ) -> io::Result<()> {
        let mut response = Response::new(());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Some(content_type) = content_type {
            headers.insert(header::CONTENT_TYPE, content_type);
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        self.conn.send_response(&dated(response)).map_err(misuse)?;
        if !body.is_empty() {
            self.conn.send_data(body).map_err(misuse)?;
        }
        self.conn.send_end(None).map_err(misuse)
    }

    fn method_not_allowed(&mut self, allow: &'static str) -> io::Result<()> {
        let response = Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, allow)
            .header(header::CONTENT_LENGTH, 0)
            .body(())
            .map_err(misuse)?;
        self.conn.send_response(&dated(response)).map_err(misuse)?;
        self.conn.send_end(None).map_err(misuse)
    }

    /// `n` lines. No `Content-Length`: the core frames the body as chunked for HTTP/1.1
    /// clients and as ending with the connection for HTTP/1.0 ones.
    fn stream_lines(&mut self, n: u64) -> io::Result<()> {
        let mut response = Response::new(());
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, text_plain());
        self.conn.send_response(&dated(response)).map_err(misuse)?;
        for i in 0..n {
            self.conn
                .send_data(Bytes::from(format!("line {i}\n")))
                .map_err(misuse)?;
            if i % 256 == 255 {
                self.flush()?; // a long stream goes out as it is made, not all at the end
            }
        }
        self.conn.send_end(None).map_err(misuse)
    }

    /// Writes out everything the core has queued, oldest first.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(bytes) = self.conn.poll_transmit(now()) {
            self.stream.write_all(&bytes)?;
        }
        Ok(())
    }
}

impl Owed {
    /// Our own deadline, if we have one.
    fn due(&self) -> Option<Instant> {
        match self {
            Owed::Slow { due, .. } => Some(*due),
            _ => None,
        }
    }
}

fn text_plain() -> HeaderValue {
    HeaderValue::from_static("text/plain; charset=utf-8")
}

/// The `/ws` echo over the same socket, after the `101`: the same loop with a
/// `WebSocket` instead of a `ServerConnection`. The core answers pings, echoes the peer's
/// close, pings on the heartbeat and ends a connection that stops answering.
fn websocket(mut stream: TcpStream, negotiated: Negotiated, trailing: Bytes) -> io::Result<()> {
    let mut socket = WebSocket::server(ws_config(), negotiated.deflate, now());
    // Frames the client sent right behind its upgrade request came with the HTTP bytes.
    socket.handle_input(now(), &trailing);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let t = now();
        if socket.poll_timeout().is_some_and(|deadline| deadline <= t) {
            socket.handle_timeout(t);
        }
        while let Some(event) = socket.poll_event() {
            let sent = match event {
                WsEvent::Text(text) => socket.send_text(&text),
                WsEvent::Binary(data) => socket.send_binary(data),
                WsEvent::Closed(_reason) => {
                    // The last event. Send what the core still has (the echo of the peer's
                    // close frame, or ours on a protocol error), then close.
                    while let Some(bytes) = socket.poll_transmit(now()) {
                        stream.write_all(&bytes)?;
                    }
                    close_gracefully(stream);
                    return Ok(());
                }
                // Pings are answered by the core; pongs only feed the heartbeat.
                _ => Ok(()),
            };
            sent.map_err(misuse)?;
        }
        while let Some(bytes) = socket.poll_transmit(now()) {
            stream.write_all(&bytes)?;
        }
        match read_until(&mut stream, &mut buf, socket.poll_timeout())? {
            Input::Data(n) => socket.handle_input(now(), &buf[..n]),
            // Reported as `Closed(TransportClosed)` once buffered frames are decoded.
            Input::Eof => socket.handle_eof(),
            Input::Nothing => {}
        }
    }
}

fn parse_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8080".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: blocking_server [--addr HOST:PORT])"
                ))
            }
        }
    }
    addr.parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))
}

fn main() {
    now(); // fixes the clock's origin
    let addr = match parse_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    println!("listening on http://{local}");
    let _ = io::stdout().flush();

    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors, for instance: wait a little rather than spin.
                eprintln!("accept: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let spawned = thread::Builder::new().spawn(move || {
            let _ = stream.set_nodelay(true);
            if stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
                return;
            }
            let connection = Connection {
                peer: stream.peer_addr().ok(),
                stream,
                conn: ServerConnection::new(ServerConnectionConfig::default(), now()),
                owed: Owed::Nothing,
            };
            // A socket error (reset, write timeout) just ends the connection.
            let _ = connection.run();
        });
        if let Err(e) = spawned {
            eprintln!("cannot start a connection thread: {e}");
        }
    }
}

/// `response` with a `Date` field from the system clock: an origin server with a clock must
/// send one (RFC 9110 §6.6.1); the core has no clock, so the host adds it.
fn dated(mut response: Response<()>) -> Response<()> {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    if let Ok(value) = HeaderValue::try_from(date) {
        response.headers_mut().insert(header::DATE, value);
    }
    response
}
