//! A template for fuzzing your own use of the core: a `ServerConnection` driven the way an
//! application drives it, with a small handler (routes by path, echoes a body, answers 404,
//! 405 and 413). Copy this file, replace the part marked "Your handler here", keep the
//! driver and the checks.
//!
//! Checked for any input: no panic; every request gets exactly one response, in order, and
//! the next request only comes once the previous one is answered; the bytes written parse as
//! well-framed responses carrying the statuses and bodies the handler chose (plus at most one
//! error response the core queues itself after `Error`); nothing follows a response that
//! closes the connection, and requests that ask for the connection to close get such a
//! response; after EOF the connection is closed and quiet.
//!
//! Input: one byte seeding the split (bit 7: a clock that jumps past the timeouts), then the
//! bytes the client sends.

#![no_main]

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use tether_core::h1::{
    GeneratedFields, RequestBody, ServerConnection, ServerConnectionConfig, ServerEvent,
};
use tether_core::time::Instant;
use tether_fuzz::{has_token, read_responses, split, Clock};

// ======================================================================================
// Your handler here. Replace `MAX_BODY`, `on_head` and `handle` with your application's.
// ======================================================================================

/// The largest request body the application reads; past it, the answer is `413`.
const MAX_BODY: usize = 1024;

/// What the application answers.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// Send `Content-Length`; otherwise the core frames the body (chunked for HTTP/1.1
    /// clients, delimited by closing the connection for HTTP/1.0 ones).
    length: bool,
}

impl Reply {
    fn new(status: StatusCode, body: &'static str) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
            length: true,
        }
    }
}

/// Called when a request head arrives. `Some` answers at once, before the body is read.
fn on_head(_req: &Request<()>, body: RequestBody) -> Option<Reply> {
    match body.length() {
        Some(n) if n > MAX_BODY as u64 => {
            Some(Reply::new(StatusCode::PAYLOAD_TOO_LARGE, "too large\n"))
        }
        _ => None,
    }
}

/// Called when the whole request has arrived (its body is at most `MAX_BODY` bytes).
fn handle(req: &Request<()>, body: &[u8]) -> Reply {
    let method = req.method();
    if *method == Method::CONNECT {
        // Any 2xx to CONNECT would switch protocols: this application does not tunnel.
        return Reply::new(StatusCode::METHOD_NOT_ALLOWED, "no tunnels\n");
    }
    let allowed = match req.uri().path() {
        "/" if *method == Method::GET || *method == Method::HEAD => {
            return Reply::new(StatusCode::OK, "hello\n");
        }
        "/echo" if *method == Method::POST || *method == Method::PUT => {
            let mut reply = Reply::new(StatusCode::OK, "");
            reply.body = Bytes::copy_from_slice(body);
            reply.length = false;
            if let Some(kind) = req.headers().get(CONTENT_TYPE) {
                reply.headers.insert(CONTENT_TYPE, kind.clone());
            }
            return reply;
        }
        "/close" if *method == Method::GET => {
            let mut reply = Reply::new(StatusCode::OK, "bye\n");
            reply
                .headers
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return reply;
        }
        "/empty" if *method == Method::GET || *method == Method::DELETE => {
            let mut reply = Reply::new(StatusCode::NO_CONTENT, "");
            reply.length = false;
            return reply;
        }
        "/" | "/close" => "GET, HEAD",
        "/echo" => "POST, PUT",
        "/empty" => "GET, DELETE",
        _ => return Reply::new(StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut reply = Reply::new(StatusCode::METHOD_NOT_ALLOWED, "");
    reply
        .headers
        .insert(ALLOW, HeaderValue::from_static(allowed));
    reply
}

// ======================================================================================
// The driver and the checks: what any application wants to hold.
// ======================================================================================

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    let clock = if seed & 0x80 != 0 {
        Clock::Jumpy
    } else {
        Clock::Gentle
    };
    let mut app = App::new();
    for piece in split(seed, data, clock) {
        app.now = app
            .now
            .saturating_add(Duration::from_millis(piece.advance_ms));
        app.conn.handle_input(app.now, piece.bytes);
        app.step();
    }
    app.check_wire(false);
    app.conn.handle_eof();
    app.step();
    app.check_wire(true);
});

/// The request being read.
struct Current {
    head: Request<()>,
    body: Vec<u8>,
    answered: bool,
    /// The request asks for the connection to close after its response.
    wants_close: bool,
}

/// A response the application sent.
struct Sent {
    status: StatusCode,
    body: Bytes,
    head_request: bool,
    wants_close: bool,
    /// How many requests had been reported when it was sent.
    requests: usize,
}

struct App {
    conn: ServerConnection,
    now: Instant,
    wire: Vec<u8>,
    current: Option<Current>,
    sent: Vec<Sent>,
    requests: usize,
    /// `Closed` or `Error` was reported: nothing may follow.
    ended: bool,
    /// `Error` was reported: `Some(true)` when a response was owed then, and the core must
    /// queue one itself; `Some(false)` when the current request had been answered, and the
    /// core may still queue one: after an early answer it skips the buffered rest of the
    /// body without events, and the error may be about the next request, which it answers.
    error_owed: Option<bool>,
}

impl App {
    fn new() -> App {
        App {
            conn: ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO),
            now: Instant::ZERO,
            wire: Vec::new(),
            current: None,
            sent: Vec::new(),
            requests: 0,
            ended: false,
            error_owed: None,
        }
    }

    /// The driving contract: deadlines, then every event, then every output byte.
    fn step(&mut self) {
        self.conn.handle_timeout(self.now);
        while let Some(event) = self.conn.poll_event() {
            assert!(!self.ended, "event after Closed/Error: {event:?}");
            self.on_event(event);
        }
        while let Some(bytes) = self.conn.poll_transmit(self.now) {
            assert!(!bytes.is_empty(), "empty transmit");
            self.wire.extend_from_slice(&bytes);
        }
    }

    fn on_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Request { head, body } => {
                if let Some(previous) = &self.current {
                    assert!(
                        previous.answered,
                        "a new request before the previous answer"
                    );
                }
                self.requests += 1;
                let wants_close = asks_to_close(&head);
                let early = on_head(&head, body);
                self.current = Some(Current {
                    head,
                    body: Vec::new(),
                    answered: false,
                    wants_close,
                });
                if let Some(reply) = early {
                    self.respond(reply);
                }
            }
            ServerEvent::Data(data) => {
                assert!(!data.is_empty(), "empty Data event");
                let current = self.current.as_mut().expect("Data without a request");
                if current.answered {
                    return;
                }
                current.body.extend_from_slice(&data);
                if current.body.len() > MAX_BODY {
                    self.respond(Reply::new(StatusCode::PAYLOAD_TOO_LARGE, "too large\n"));
                }
            }
            ServerEvent::End { .. } => {
                let current = self.current.take().expect("End without a request");
                if !current.answered {
                    let reply = handle(&current.head, &current.body);
                    self.current = Some(current);
                    self.respond(reply);
                    self.current = None;
                }
            }
            ServerEvent::Closed => {
                self.ended = true;
                if let Some(current) = &self.current {
                    assert!(current.answered, "Closed while a request is unanswered");
                }
            }
            ServerEvent::Error(_) => {
                self.ended = true;
                self.error_owed = Some(self.current.as_ref().is_none_or(|c| !c.answered));
            }
            ServerEvent::Upgraded { .. } => panic!("upgraded, but the handler never switches"),
            other => panic!("unknown server event {other:?}"),
        }
    }

    /// Sends a whole response to the current request; the core must accept it.
    fn respond(&mut self, reply: Reply) {
        let current = self.current.as_mut().expect("a request to answer");
        assert!(!current.answered, "a second response to one request");
        current.answered = true;
        let mut response = Response::builder()
            .status(reply.status)
            .body(())
            .expect("valid response");
        *response.headers_mut() = reply.headers;
        // As the adapters do: the Date and a known length written by the core
        // (`GeneratedFields`), not inserted into the map.
        let date = HeaderValue::from_static("Tue, 01 Dec 2026 06:00:00 GMT");
        let mut generated = GeneratedFields::new().date(&date);
        if reply.length {
            generated = generated.content_length(reply.body.len() as u64);
        }
        if let Err(e) = self.conn.send_response_with(&response, generated) {
            panic!("send_response refused {response:?}: {e}");
        }
        if !reply.body.is_empty() {
            if let Err(e) = self.conn.send_data(reply.body.clone()) {
                panic!("send_data refused: {e}");
            }
        }
        if let Err(e) = self.conn.send_end(None) {
            panic!("send_end refused: {e}");
        }
        let head_request = *current.head.method() == Method::HEAD;
        let no_body = head_request || reply.status == StatusCode::NO_CONTENT;
        self.sent.push(Sent {
            status: reply.status,
            body: if no_body { Bytes::new() } else { reply.body },
            head_request,
            wants_close: current.wants_close,
            requests: self.requests,
        });
    }

    /// Reads the output back and checks it against what was sent; `eof`: after EOF and the
    /// last drain.
    fn check_wire(&self, eof: bool) {
        let sent = &self.sent;
        let last_is_head = self
            .current
            .as_ref()
            .is_some_and(|c| *c.head.method() == Method::HEAD);
        let responses = read_responses(&self.wire, |i| {
            sent.get(i).map_or(last_is_head, |s| s.head_request)
        });
        assert!(
            responses.len() >= sent.len(),
            "{} responses sent, {} on the wire",
            sent.len(),
            responses.len()
        );
        for (i, (ours, wire)) in sent.iter().zip(&responses).enumerate() {
            assert_eq!(wire.status, ours.status.as_u16(), "status of response {i}");
            assert_eq!(wire.body, ours.body, "body of response {i}");
            if ours.wants_close {
                assert!(
                    wire.close,
                    "request {i} asked to close; response {i} does not"
                );
            }
            if wire.close {
                assert_eq!(
                    self.requests, ours.requests,
                    "a request was reported after response {i} closed the connection"
                );
                assert_eq!(i + 1, responses.len(), "output after a closing response");
            }
        }
        match responses.len() - sent.len() {
            0 => assert_ne!(
                self.error_owed,
                Some(true),
                "Error with a response owed, and the core queued none"
            ),
            1 => {
                assert!(self.error_owed.is_some(), "a response nobody sent");
                let status = responses[sent.len()].status;
                assert!(status >= 400, "the core's own response is {status}");
            }
            n => panic!("{n} responses on the wire that nobody sent"),
        }
        if responses.last().is_some_and(|r| r.close) {
            assert!(
                self.conn.is_closed(),
                "a closing response is out, but the connection is not closed"
            );
        }
        if eof {
            assert!(self.conn.is_closed(), "not closed after EOF and a drain");
            assert!(!self.conn.wants_input(), "closed, but still wants input");
        }
    }
}

/// Whether a request asks for its response to close the connection: `Connection: close`,
/// or HTTP/1.0 without `Connection: keep-alive`.
fn asks_to_close(req: &Request<()>) -> bool {
    let connection = |token| {
        req.headers()
            .get_all(CONNECTION)
            .iter()
            .any(|v| has_token(v.as_bytes(), token))
    };
    connection("close") || (req.version() == Version::HTTP_10 && !connection("keep-alive"))
}
