//! Helpers: drive a connection with input pieces and collect comparable events.

use crate::h1::{ClientConnection, ClientEvent, RemoteErrorKind, ServerConnection, ServerEvent};
use crate::time::Instant;
use bytes::Bytes;
use http::{HeaderMap, Request, Response};

/// An event in a form that can be compared: heads as strings, adjacent data merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    Head(String),
    Data(Vec<u8>),
    End(Vec<(String, String)>),
    Upgraded(Vec<u8>),
    Closed,
    Error(RemoteErrorKind, u64),
    LocalError,
}

pub(crate) fn fields(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub(crate) fn request_line(r: &Request<()>) -> String {
    format!(
        "{} {} {:?} {:?}",
        r.method(),
        r.uri(),
        r.version(),
        fields(r.headers())
    )
}

pub(crate) fn response_line(r: &Response<()>) -> String {
    format!(
        "{} {:?} {:?}",
        r.status().as_u16(),
        r.version(),
        fields(r.headers())
    )
}

fn push(events: &mut Vec<Ev>, ev: Ev) {
    if let (Some(Ev::Data(prev)), Ev::Data(more)) = (events.last_mut(), &ev) {
        prev.extend_from_slice(more);
        return;
    }
    if matches!(ev, Ev::Data(ref d) if d.is_empty()) {
        return;
    }
    events.push(ev);
}

fn error_ev(e: &crate::h1::Error) -> Ev {
    match e.remote() {
        Some(r) => Ev::Error(r.kind(), r.offset()),
        None => Ev::LocalError,
    }
}

pub(crate) fn server_ev(ev: ServerEvent) -> Ev {
    match ev {
        ServerEvent::Request { head: r, .. } => Ev::Head(request_line(&r)),
        ServerEvent::Data(d) => Ev::Data(d.to_vec()),
        ServerEvent::End { trailers } => Ev::End(trailers.as_ref().map(fields).unwrap_or_default()),
        ServerEvent::Upgraded { trailing } => Ev::Upgraded(trailing.to_vec()),
        ServerEvent::Closed => Ev::Closed,
        ServerEvent::Error(e) => error_ev(&e),
    }
}

pub(crate) fn client_ev(ev: ClientEvent) -> Ev {
    match ev {
        ClientEvent::Informational(r) => Ev::Head(format!("1xx {}", response_line(&r))),
        ClientEvent::Response(r) => Ev::Head(response_line(&r)),
        ClientEvent::Data(d) => Ev::Data(d.to_vec()),
        ClientEvent::End { trailers } => Ev::End(trailers.as_ref().map(fields).unwrap_or_default()),
        ClientEvent::Upgraded { trailing } => Ev::Upgraded(trailing.to_vec()),
        ClientEvent::Closed => Ev::Closed,
        ClientEvent::Error(e) => error_ev(&e),
    }
}

/// A server test harness: answers each request with a fixed small response once its body
/// is complete, so pipelined requests proceed.
pub(crate) struct Server {
    pub(crate) conn: ServerConnection,
    pub(crate) events: Vec<Ev>,
    pub(crate) wire: Vec<u8>,
    pub(crate) now: Instant,
    pub(crate) auto_respond: bool,
    answered_pending: bool,
}

impl Server {
    pub(crate) fn new() -> Server {
        Server::with(crate::h1::ServerConnectionConfig::default())
    }

    pub(crate) fn with(config: crate::h1::ServerConnectionConfig) -> Server {
        Server {
            conn: ServerConnection::new(config, Instant::ZERO),
            events: Vec::new(),
            wire: Vec::new(),
            now: Instant::ZERO,
            auto_respond: true,
            answered_pending: false,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) -> &mut Self {
        self.conn.handle_input(self.now, data);
        self.drain();
        self
    }

    pub(crate) fn eof(&mut self) -> &mut Self {
        self.conn.handle_eof();
        self.drain();
        self
    }

    pub(crate) fn drain(&mut self) {
        for _ in 0..10_000 {
            let Some(ev) = self.conn.poll_event() else {
                break;
            };
            let done = matches!(ev, ServerEvent::End { .. });
            push(&mut self.events, server_ev(ev));
            if done && self.auto_respond {
                self.answered_pending = true;
            }
            if self.answered_pending {
                self.answered_pending = false;
                let res = Response::builder()
                    .header("content-length", "2")
                    .body(())
                    .unwrap();
                self.conn.send_response(&res).unwrap();
                self.conn.send_data(Bytes::from_static(b"ok")).unwrap();
                self.conn.send_end(None).unwrap();
            }
        }
        while let Some(b) = self.conn.poll_transmit(self.now) {
            self.wire.extend_from_slice(&b);
        }
    }

    /// Answers the current request with an empty `status` response (`Content-Length: 0`),
    /// whatever its body's state, then drains.
    pub(crate) fn answer_empty(&mut self, status: u16) {
        let res = Response::builder()
            .status(status)
            .header("content-length", "0")
            .body(())
            .unwrap();
        self.conn.send_response(&res).unwrap();
        self.conn.send_end(None).unwrap();
        self.drain();
    }

    pub(crate) fn wire_str(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }

    /// The events from feeding `input` in `pieces` (cut points), then EOF.
    pub(crate) fn run_split(input: &[u8], cuts: &[usize]) -> (Vec<Ev>, Vec<u8>) {
        let mut s = Server::new();
        for (piece, _) in pieces(input, cuts) {
            s.feed(piece);
        }
        s.eof();
        (s.events, s.wire)
    }
}

/// `input` cut at `cuts` (sorted; out-of-range cuts are clamped), every byte in exactly one
/// piece: each piece with the offset just past it.
pub(crate) fn pieces<'a>(
    input: &'a [u8],
    cuts: &'a [usize],
) -> impl Iterator<Item = (&'a [u8], usize)> + 'a {
    let mut last = 0;
    cuts.iter()
        .copied()
        .chain(std::iter::once(input.len()))
        .map(move |cut| {
            let start = last;
            last = cut.clamp(start, input.len());
            (&input[start..last], last)
        })
}

/// A client that sent `request` (and ended it), its bytes written: waiting for the response.
pub(crate) fn awaiting_response(request: &Request<()>) -> ClientConnection {
    let mut conn = ClientConnection::new(Default::default());
    conn.send_request(request).unwrap();
    conn.send_end(None).unwrap();
    while conn.poll_transmit(Instant::ZERO).is_some() {}
    conn
}

/// The first error event's kind, if any.
pub(crate) fn first_error(events: &[Ev]) -> Option<RemoteErrorKind> {
    events.iter().find_map(|e| match e {
        Ev::Error(k, _) => Some(*k),
        _ => None,
    })
}

/// Runs a server over `input` (whole, then EOF) and returns its events and the bytes it wrote.
pub(crate) fn serve(input: &[u8]) -> (Vec<Ev>, String) {
    let mut s = Server::new();
    s.feed(input).eof();
    let wire = s.wire_str();
    (s.events, wire)
}

/// A client that sent `request` (and ended it), fed `input` in pieces split at `cuts`, then EOF.
pub(crate) fn client_run(request: &Request<()>, input: &[u8], cuts: &[usize]) -> Vec<Ev> {
    let mut conn = awaiting_response(request);
    let mut events = Vec::new();
    let drain = |conn: &mut ClientConnection, events: &mut Vec<Ev>| {
        while let Some(ev) = conn.poll_event() {
            push(events, client_ev(ev));
        }
    };
    for (piece, _) in pieces(input, cuts) {
        conn.handle_input(Instant::ZERO, piece);
        drain(&mut conn, &mut events);
    }
    conn.handle_eof();
    drain(&mut conn, &mut events);
    events
}
