//! Driving a `ClientConnection`: a first request, the response pieces, another `GET` after
//! every `End` the connection allows.

use crate::record::{assert_same, error_norm, fields, Norm, Recorder};
use crate::split::{event_limit, split, whole, Clock, Piece};
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use http::Request;
use tether_core::h1::{ClientConnection, ClientConnectionConfig, ClientEvent, Error};
use tether_core::time::Instant;

/// The requests a client fuzz run can start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRequest {
    /// `GET /`.
    Get,
    /// `HEAD /`.
    Head,
    /// `POST /upload` with `content-length: 5`.
    Post,
    /// `CONNECT example.com:443`.
    Connect,
    /// `GET /chat` asking for a WebSocket upgrade.
    Upgrade,
    /// Chunked `POST /upload` with `expect: 100-continue`.
    PostContinue,
}

impl ClientRequest {
    /// Picks a request from a byte.
    pub fn from_byte(b: u8) -> ClientRequest {
        match b % 6 {
            0 => ClientRequest::Get,
            1 => ClientRequest::Head,
            2 => ClientRequest::Post,
            3 => ClientRequest::Connect,
            4 => ClientRequest::Upgrade,
            _ => ClientRequest::PostContinue,
        }
    }

    fn head(self) -> Request<()> {
        let builder = match self {
            ClientRequest::Get => Request::get("http://example.com/"),
            ClientRequest::Head => Request::head("http://example.com/"),
            ClientRequest::Post => {
                Request::post("http://example.com/upload").header(CONTENT_LENGTH, "5")
            }
            ClientRequest::Connect => Request::connect("example.com:443"),
            ClientRequest::Upgrade => Request::get("http://example.com/chat")
                .header(UPGRADE, "websocket")
                .header(CONNECTION, "upgrade")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("sec-websocket-version", "13"),
            ClientRequest::PostContinue => Request::post("http://example.com/upload")
                .header(TRANSFER_ENCODING, "chunked")
                .header("expect", "100-continue"),
        };
        builder.body(()).expect("valid request head")
    }

    fn body(self) -> Option<Bytes> {
        match self {
            ClientRequest::Post | ClientRequest::PostContinue => Some(Bytes::from_static(b"hello")),
            _ => None,
        }
    }
}

/// Drives a [`ClientConnection`]: sends a request, feeds the response pieces, sends another
/// `GET` after every `End` the connection allows, records events.
#[derive(Debug)]
pub struct ClientDriver {
    conn: ClientConnection,
    fed: u64,
    /// What the events were.
    pub rec: Recorder,
    /// Everything `poll_transmit` handed out.
    pub wire: Vec<u8>,
}

impl ClientDriver {
    /// A connection with the default configuration that has sent `first`.
    pub fn new(first: ClientRequest, event_limit: usize) -> ClientDriver {
        let mut driver = ClientDriver {
            conn: ClientConnection::new(ClientConnectionConfig::default()),
            fed: 0,
            rec: Recorder::new(event_limit),
            wire: Vec::new(),
        };
        if let Err(e) = driver.send(first) {
            panic!("first request {first:?} failed: {e}");
        }
        driver.step();
        driver
    }

    /// Sends `first`, feeds every piece, then EOF; checks the end state.
    pub fn run(first: ClientRequest, pieces: &[Piece<'_>], event_limit: usize) -> ClientDriver {
        let mut driver = ClientDriver::new(first, event_limit);
        for piece in pieces {
            driver.feed(piece);
        }
        driver.finish();
        driver
    }

    fn send(&mut self, request: ClientRequest) -> Result<(), Error> {
        self.conn.send_request(&request.head())?;
        if let Some(body) = request.body() {
            self.conn.send_data(body)?;
        }
        self.conn.send_end(None)
    }

    /// Feeds one piece, then drains.
    pub fn feed(&mut self, piece: &Piece<'_>) {
        if self.rec.is_terminal() {
            self.rec.after_upgrade(piece.bytes);
        }
        self.conn.handle_input(Instant::ZERO, piece.bytes);
        self.fed += piece.bytes.len() as u64;
        self.step();
    }

    /// EOF, a last drain, and the end-state checks.
    pub fn finish(&mut self) {
        self.conn.handle_eof();
        self.step();
        assert!(
            self.conn.is_closed(),
            "client connection not closed after EOF and a full drain\nevents: {:#?}",
            self.rec.events
        );
        assert!(
            !self.conn.is_reusable(),
            "closed client claims to be reusable"
        );
        if let Some(event) = self.conn.poll_event() {
            panic!("client event after close: {event:?}");
        }
    }

    fn step(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.on_event(event);
        }
        while let Some(bytes) = self.conn.poll_transmit(Instant::ZERO) {
            assert!(!bytes.is_empty(), "empty transmit");
            self.wire.extend_from_slice(&bytes);
        }
        if self.rec.is_terminal() {
            assert!(
                self.conn.is_closed(),
                "client not closed after a final event and a drain: {:?}",
                self.rec.events.last()
            );
        }
    }

    fn on_event(&mut self, event: ClientEvent) {
        let fed = self.fed;
        match event {
            ClientEvent::Informational(res) => self.rec.record(
                Norm::Informational {
                    status: res.status().as_u16(),
                    version: format!("{:?}", res.version()),
                    headers: fields(res.headers()),
                },
                fed,
            ),
            ClientEvent::Response(res) => self.rec.record(
                Norm::Response {
                    status: res.status().as_u16(),
                    version: format!("{:?}", res.version()),
                    headers: fields(res.headers()),
                },
                fed,
            ),
            ClientEvent::Data(data) => self.rec.record(Norm::Data(data.to_vec()), fed),
            ClientEvent::End { trailers } => {
                self.rec.record(
                    Norm::End {
                        trailers: trailers.as_ref().map(fields),
                    },
                    fed,
                );
                // `is_reusable` also wants an empty receive buffer, which depends on the
                // split; whether `send_request` is accepted must not.
                let reusable = self.conn.is_reusable();
                match self.send(ClientRequest::Get) {
                    Ok(()) => self.rec.record(Norm::Note("next GET sent".into()), fed),
                    Err(e) => {
                        assert!(!reusable, "is_reusable() but send_request failed: {e}");
                        self.rec
                            .record(Norm::Note(format!("next GET refused: {e}")), fed);
                    }
                }
            }
            ClientEvent::Upgraded { trailing } => {
                self.rec.record(Norm::Upgraded(trailing.to_vec()), fed)
            }
            ClientEvent::Closed => self.rec.record(Norm::Closed, fed),
            ClientEvent::Error(error) => self.rec.record(error_norm(&error), fed),
            other => panic!("unknown client event {other:?}"),
        }
    }
}

/// Runs the response bytes `data` through a client that sent `first`, whole and in the
/// pieces `seed` picks, and checks that both agree (events and request bytes). Returns the
/// events of the whole run.
pub fn check_client(first: ClientRequest, seed: u8, data: &[u8]) -> Vec<Norm> {
    let limit = event_limit(data.len());
    let whole_run = ClientDriver::run(first, &whole(data), limit);
    let split_run = ClientDriver::run(first, &split(seed, data, Clock::Gentle), limit);
    assert_same(
        "client events",
        &whole_run.rec.events,
        &split_run.rec.events,
    );
    assert_eq!(
        whole_run.wire, split_run.wire,
        "client output differs between whole and split runs"
    );
    if let Some(Norm::Upgraded(trailing)) = whole_run.rec.events.last() {
        assert!(
            data.ends_with(trailing),
            "Upgraded trailing bytes are not the tail of the input"
        );
    }
    whole_run.rec.events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_responses_agree() {
        let data = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n";
        for seed in 0..=255 {
            check_client(ClientRequest::Get, seed, data);
        }
    }
}
