//! Driving a `ServerConnection`: feeding pieces, answering every request, recording.

use crate::record::{assert_same, error_norm, fields, fnv, without_continue, Norm, Recorder};
use crate::split::{event_limit, split, whole, Clock, Piece, GENTLE_CAP_MS};
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use tether_core::h1::{GeneratedFields, ServerConnection, ServerConnectionConfig, ServerEvent};
use tether_core::time::Instant;

/// How the response to one request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `content-length: 0`.
    Empty,
    /// `content-length: 5`, body `hello`.
    Hello,
    /// `transfer-encoding: chunked` (none for HTTP/1.0: close-delimited), body `hello`.
    Chunked,
    /// As `Chunked`, with a trailer field where the framing allows.
    ChunkedTrailers,
    /// `204` without framing headers.
    NoContent,
    /// `content-length: 0` and `connection: close`.
    Close,
}

/// Our answer to one request, a pure function of the request and its index (so it is the
/// same in every run).
#[derive(Debug, Clone)]
struct Plan {
    framing: Framing,
    status: StatusCode,
    /// Send the head as soon as the request head arrives (the end waits for `End`).
    early: bool,
    /// Try `101` (upgrade) or `200` (CONNECT) at `End`.
    switch: bool,
    connect: bool,
    http10: bool,
    head_request: bool,
    head_sent: bool,
    /// Send the head the adapters' way: `send_response_with` writing the `Date` and a
    /// known length itself ([`GeneratedFields`]) instead of taking them from the map.
    generated: bool,
}

/// The `Date` a generated head carries.
static DATE: HeaderValue = HeaderValue::from_static("Tue, 01 Dec 2026 06:00:00 GMT");

impl Plan {
    fn new(req: &Request<()>, index: u64) -> Plan {
        let h = fnv(&[
            req.method().as_str().as_bytes(),
            req.uri().to_string().as_bytes(),
            &index.to_le_bytes(),
        ]);
        let connect = *req.method() == Method::CONNECT;
        let may_switch = connect || req.headers().contains_key(UPGRADE);
        let framing = match h % 8 {
            0 | 1 => Framing::Empty,
            2 => Framing::Hello,
            3 | 4 => Framing::Chunked,
            5 if !connect => Framing::NoContent,
            5 => Framing::Empty,
            6 => Framing::ChunkedTrailers,
            _ => Framing::Close,
        };
        let status = if connect {
            // Any 2xx to CONNECT switches protocols; the plain answer must be something else.
            StatusCode::FORBIDDEN
        } else if framing == Framing::NoContent {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        Plan {
            framing,
            status,
            early: !may_switch && (h >> 3) & 1 == 1,
            switch: may_switch && (h >> 4) & 1 == 1,
            connect,
            http10: req.version() == Version::HTTP_10,
            head_request: *req.method() == Method::HEAD,
            head_sent: false,
            generated: (h >> 5) & 1 == 1,
        }
    }

    /// The head, and the length for [`GeneratedFields`] to write instead of a
    /// `Content-Length` in the map (when `generated`).
    fn head(&self) -> (Response<()>, Option<u64>) {
        let mut builder = Response::builder().status(self.status);
        let mut length = None;
        match self.framing {
            Framing::Empty | Framing::Hello if self.generated => {
                length = Some(if self.framing == Framing::Hello { 5 } else { 0 });
            }
            Framing::Empty => builder = builder.header(CONTENT_LENGTH, "0"),
            Framing::Hello => builder = builder.header(CONTENT_LENGTH, "5"),
            Framing::Chunked | Framing::ChunkedTrailers if !self.http10 => {
                builder = builder.header(TRANSFER_ENCODING, "chunked")
            }
            Framing::Chunked | Framing::ChunkedTrailers | Framing::NoContent => {}
            Framing::Close if self.generated => {
                length = Some(0);
                builder = builder.header(CONNECTION, "close")
            }
            Framing::Close => {
                builder = builder
                    .header(CONTENT_LENGTH, "0")
                    .header(CONNECTION, "close")
            }
        }
        (builder.body(()).expect("valid response head"), length)
    }

    fn switch_head(&self) -> Response<()> {
        if self.connect {
            Response::builder().status(StatusCode::OK).body(())
        } else {
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(UPGRADE, "websocket")
                .header(CONNECTION, "upgrade")
                .body(())
        }
        .expect("valid response head")
    }

    fn body(&self) -> Option<Bytes> {
        match self.framing {
            Framing::Hello | Framing::Chunked | Framing::ChunkedTrailers => {
                Some(Bytes::from_static(b"hello"))
            }
            _ => None,
        }
    }

    fn trailers(&self) -> Option<HeaderMap> {
        if self.framing == Framing::ChunkedTrailers && !self.http10 && !self.head_request {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", "1".parse().expect("valid value"));
            Some(trailers)
        } else {
            None
        }
    }
}

/// Drives a [`ServerConnection`]: feeds pieces, answers every request, records events.
#[derive(Debug)]
pub struct ServerDriver {
    conn: ServerConnection,
    clock: Clock,
    now_ms: u64,
    fed: u64,
    requests: u64,
    plan: Option<Plan>,
    /// What the events were.
    pub rec: Recorder,
    /// Everything `poll_transmit` handed out.
    pub wire: Vec<u8>,
}

impl ServerDriver {
    /// A connection with the default configuration, started at time zero.
    pub fn new(clock: Clock, event_limit: usize) -> ServerDriver {
        ServerDriver {
            conn: ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO),
            clock,
            now_ms: 0,
            fed: 0,
            requests: 0,
            plan: None,
            rec: Recorder::new(event_limit),
            wire: Vec::new(),
        }
    }

    /// Feeds every piece, then EOF; checks the end state and returns the recorder and wire.
    pub fn run(clock: Clock, pieces: &[Piece<'_>], event_limit: usize) -> ServerDriver {
        let mut driver = ServerDriver::new(clock, event_limit);
        for piece in pieces {
            driver.feed(piece);
        }
        driver.finish();
        driver
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.now_ms)
    }

    /// Feeds one piece at the clock's next reading, then drains.
    pub fn feed(&mut self, piece: &Piece<'_>) {
        self.now_ms += piece.advance_ms;
        if self.clock == Clock::Gentle {
            self.now_ms = self.now_ms.min(GENTLE_CAP_MS);
        }
        if self.rec.is_terminal() {
            self.rec.after_upgrade(piece.bytes);
        }
        self.conn.handle_input(self.now(), piece.bytes);
        self.fed += piece.bytes.len() as u64;
        self.step();
    }

    /// EOF, a last drain, and the end-state checks.
    pub fn finish(&mut self) {
        self.conn.handle_eof();
        self.step();
        assert!(
            self.conn.is_closed(),
            "server connection not closed after EOF and a full drain\nevents: {:#?}",
            self.rec.events
        );
        assert!(!self.conn.wants_input(), "closed server still wants input");
        // Nothing is left to time out.
        self.conn.handle_timeout(Instant::MAX);
        if let Some(event) = self.conn.poll_event() {
            panic!("server event after close: {event:?}");
        }
        if let Some(bytes) = self.conn.poll_transmit(Instant::MAX) {
            panic!("server output after close: {bytes:?}");
        }
    }

    fn step(&mut self) {
        let now = self.now();
        self.conn.handle_timeout(now);
        while let Some(event) = self.conn.poll_event() {
            self.on_event(event);
        }
        while let Some(bytes) = self.conn.poll_transmit(now) {
            assert!(!bytes.is_empty(), "empty transmit");
            self.wire.extend_from_slice(&bytes);
        }
        if self.rec.is_terminal() {
            assert!(
                self.conn.is_closed(),
                "server not closed after a final event and a drain: {:?}",
                self.rec.events.last()
            );
        }
    }

    fn on_event(&mut self, event: ServerEvent) {
        let fed = self.fed;
        match event {
            ServerEvent::Request { head: req, .. } => {
                self.rec.record(
                    Norm::Request {
                        method: req.method().to_string(),
                        uri: req.uri().to_string(),
                        version: format!("{:?}", req.version()),
                        headers: fields(req.headers()),
                    },
                    fed,
                );
                let mut plan = Plan::new(&req, self.requests);
                self.requests += 1;
                if plan.early {
                    self.send_head(&mut plan);
                }
                self.plan = Some(plan);
            }
            ServerEvent::Data(data) => self.rec.record(Norm::Data(data.to_vec()), fed),
            ServerEvent::End { trailers } => {
                self.rec.record(
                    Norm::End {
                        trailers: trailers.as_ref().map(fields),
                    },
                    fed,
                );
                let Some(mut plan) = self.plan.take() else {
                    panic!("End without a Request");
                };
                self.respond(&mut plan);
            }
            ServerEvent::Upgraded { trailing } => {
                self.rec.record(Norm::Upgraded(trailing.to_vec()), fed)
            }
            ServerEvent::Closed => self.rec.record(Norm::Closed, fed),
            ServerEvent::Error(error) => self.rec.record(error_norm(&error), fed),
            other => panic!("unknown server event {other:?}"),
        }
    }

    fn send_head(&mut self, plan: &mut Plan) {
        let (head, length) = plan.head();
        let mut generated = GeneratedFields::new();
        if plan.generated {
            generated = generated.date(&DATE);
        }
        if let Some(length) = length {
            generated = generated.content_length(length);
        }
        if let Err(e) = self.conn.send_response_with(&head, generated) {
            panic!("send_response({head:?}) failed: {e} (plan {plan:?})");
        }
        plan.head_sent = true;
    }

    /// Completes the response once the request is complete.
    fn respond(&mut self, plan: &mut Plan) {
        if !plan.head_sent {
            if plan.switch {
                match self.conn.send_response(&plan.switch_head()) {
                    Ok(()) => {
                        self.rec.record(Norm::Note("switched".into()), self.fed);
                        return;
                    }
                    Err(e) => self
                        .rec
                        .record(Norm::Note(format!("switch refused: {e}")), self.fed),
                }
            }
            self.send_head(plan);
        }
        if let Some(body) = plan.body() {
            if let Err(e) = self.conn.send_data(body) {
                panic!("send_data failed: {e} (plan {plan:?})");
            }
        }
        if let Err(e) = self.conn.send_end(plan.trailers().as_ref()) {
            panic!("send_end failed: {e} (plan {plan:?})");
        }
    }
}

/// Runs `data` through a server whole and in the pieces `seed` picks, checks that both agree
/// (events and response bytes), and also runs it with a jumpy clock for the timeout paths.
/// Returns both runs, whole then split, for target-specific checks.
pub fn check_server(seed: u8, data: &[u8]) -> (ServerDriver, ServerDriver) {
    let limit = event_limit(data.len());
    let whole_run = ServerDriver::run(Clock::Gentle, &whole(data), limit);
    let split_run = ServerDriver::run(Clock::Gentle, &split(seed, data, Clock::Gentle), limit);
    ServerDriver::run(Clock::Jumpy, &split(seed, data, Clock::Jumpy), limit);
    assert_same(
        "server events",
        &whole_run.rec.events,
        &split_run.rec.events,
    );
    assert_eq!(
        without_continue(&whole_run.wire),
        without_continue(&split_run.wire),
        "server output differs between whole and split runs\nevents: {:#?}",
        whole_run.rec.events
    );
    if let Some(Norm::Upgraded(trailing)) = whole_run.rec.events.last() {
        assert!(
            data.ends_with(trailing),
            "Upgraded trailing bytes are not the tail of the input"
        );
    }
    check_output(&whole_run);
    (whole_run, split_run)
}

/// When the client closed cleanly between requests (so every response is complete) and
/// nothing switched protocols, the bytes written are a well-framed response stream with one
/// final response per request: the generated `Content-Length` and `Date` included.
fn check_output(run: &ServerDriver) {
    let clean = matches!(run.rec.events.last(), Some(Norm::Closed))
        && !run
            .rec
            .events
            .iter()
            .any(|e| matches!(e, Norm::Note(note) if note == "switched"));
    if !clean {
        return;
    }
    let heads: Vec<bool> = run
        .rec
        .events
        .iter()
        .filter_map(|e| match e {
            Norm::Request { method, .. } => Some(method == "HEAD"),
            _ => None,
        })
        .collect();
    let responses = crate::wire::read_responses(&run.wire, |i| heads.get(i) == Some(&true));
    assert_eq!(
        responses.len(),
        heads.len(),
        "one response per request\nevents: {:#?}",
        run.rec.events
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_well_framed_both_ways_of_writing_heads() {
        let mut data = Vec::new();
        for i in 0..32 {
            let method = if i % 3 == 0 { "HEAD" } else { "GET" };
            data.extend_from_slice(format!("{method} /{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        }
        let (whole, _) = check_server(0, &data);
        assert!(matches!(whole.rec.events.last(), Some(Norm::Closed)));
        let wire = String::from_utf8_lossy(&whole.wire);
        // Both kinds of head were written: generated (with the Date) and from the map.
        let generated = wire.matches("date: Tue, 01 Dec 2026").count();
        assert!(
            generated > 0 && generated < 32,
            "{generated} generated heads"
        );
    }

    #[test]
    fn pipelined_requests_agree() {
        let data = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /x HTTP/1.1\r\nHost: a\r\n\
Content-Length: 3\r\n\r\nabcGET /y HTTP/1.0\r\n\r\n";
        for seed in 0..=255 {
            let (whole, _) = check_server(seed, data);
            assert!(matches!(
                whole.rec.events.first(),
                Some(Norm::Request { .. })
            ));
        }
    }
}
