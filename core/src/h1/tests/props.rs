//! Properties: byte-split invariance, encode-then-parse round trips, pipelining.

use super::support::{awaiting_response, client_run, fields, pieces, Ev, Server};
use crate::h1::{
    ClientConnection, ClientConnectionConfig, ClientEvent, ServerConnection,
    ServerConnectionConfig, ServerEvent,
};
use crate::time::Instant;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use proptest::prelude::*;

/// A message body and how it is framed on the wire.
#[derive(Debug, Clone)]
struct Body {
    /// The body, as the pieces the sender writes (chunk sizes when chunked).
    pieces: Vec<Vec<u8>>,
    chunked: bool,
    trailers: Vec<(String, String)>,
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        self.pieces.concat()
    }
}

fn token() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,11}"
}

fn header_value() -> impl Strategy<Value = String> {
    // Visible ASCII with inner spaces; no leading or trailing whitespace.
    "[!-~]([ !-~]{0,20}[!-~])?"
}

fn extra_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (token().prop_map(|t| format!("x-{t}")), header_value()),
        0..6,
    )
}

fn body() -> impl Strategy<Value = Body> {
    let pieces = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..5);
    (
        pieces,
        any::<bool>(),
        prop::collection::vec(
            (token().prop_map(|t| format!("t-{t}")), header_value()),
            0..3,
        ),
    )
        .prop_map(|(pieces, chunked, trailers)| Body {
            pieces,
            chunked,
            trailers: if chunked { trailers } else { Vec::new() },
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::OPTIONS),
        "[A-Z]{3,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn target() -> impl Strategy<Value = String> {
    (
        "(/[a-zA-Z0-9._~%-]{0,12}){1,4}",
        prop::option::of("[a-z0-9=&]{0,16}"),
    )
        .prop_map(|(path, query)| match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        })
}

fn trailer_map(trailers: &[(String, String)]) -> Option<HeaderMap> {
    if trailers.is_empty() {
        return None;
    }
    let mut map = HeaderMap::new();
    for (n, v) in trailers {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    Some(map)
}

fn framing_header(body: &Body) -> (&'static str, String) {
    if body.chunked {
        ("transfer-encoding", "chunked".into())
    } else {
        ("content-length", body.bytes().len().to_string())
    }
}

/// A request as a client would send it.
#[derive(Debug, Clone)]
struct Req {
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Req {
    fn head(&self) -> Request<()> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.target.as_str())
            .header("host", "example.com");
        for (n, v) in &self.headers {
            b = b.header(n, v);
        }
        let (n, v) = framing_header(&self.body);
        b.header(n, v).body(()).unwrap()
    }

    /// Encodes through a client connection.
    fn encode(&self) -> Vec<u8> {
        let mut conn = ClientConnection::new(ClientConnectionConfig::default());
        conn.send_request(&self.head()).unwrap();
        for piece in &self.body.pieces {
            conn.send_data(Bytes::from(piece.clone())).unwrap();
        }
        conn.send_end(trailer_map(&self.body.trailers).as_ref())
            .unwrap();
        let mut wire = Vec::new();
        while let Some(b) = conn.poll_transmit(Instant::ZERO) {
            wire.extend_from_slice(&b);
        }
        wire
    }

    /// The events a server should report for it.
    fn expected(&self) -> Vec<Ev> {
        let head = self.head();
        let mut events = vec![Ev::Head(super::support::request_line(&head))];
        if !self.body.bytes().is_empty() {
            events.push(Ev::Data(self.body.bytes()));
        }
        events.push(Ev::End(self.body.trailers.clone()));
        events
    }
}

fn request() -> impl Strategy<Value = Req> {
    (method(), target(), extra_headers(), body()).prop_map(|(method, target, headers, body)| Req {
        method,
        target,
        headers,
        body,
    })
}

/// Random cut points into an input of `len` bytes.
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4096, 0..40).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

/// Bytes that look like HTTP, with damage: a valid request with random edits, or noise.
fn hostile_input() -> impl Strategy<Value = Vec<u8>> {
    let damaged = (
        request(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    )
        .prop_map(|(req, edits)| {
            let mut wire = req.encode();
            for (at, byte) in edits {
                if !wire.is_empty() {
                    let i = at.index(wire.len());
                    wire[i] = byte;
                }
            }
            wire
        });
    let alphabet = prop::sample::select(&b"GET / HTTP/1.1\r\n:;, \tHost0123456789abcdefchunkedTransfer-EncodingContent-Length\x00\xff"[..]);
    prop_oneof![damaged, prop::collection::vec(alphabet, 0..300)]
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// (a) Any split of the input gives the same events and the same bytes out (server).
    #[test]
    fn server_split_invariance(input in hostile_input(), cuts in cuts()) {
        let whole = Server::run_split(&input, &[]);
        let split = Server::run_split(&input, &cuts);
        prop_assert_eq!(&whole, &split);
        let one_by_one: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(&whole, &Server::run_split(&input, &one_by_one));
    }

    /// (a) Any split of the response gives the same events (client).
    #[test]
    fn client_split_invariance(
        response in prop_oneof![
            response().prop_map(|r| r.encode(&Method::GET).0),
            hostile_input(),
        ],
        cuts in cuts(),
        method in prop_oneof![Just(Method::GET), Just(Method::HEAD), Just(Method::POST)],
    ) {
        let request = Request::builder().method(method).uri("http://x/").body(()).unwrap();
        let whole = client_run(&request, &response, &[]);
        let split = client_run(&request, &response, &cuts);
        prop_assert_eq!(whole, split);
    }

    /// (b) A request encoded by the client parses back to the same thing on the server.
    #[test]
    fn request_round_trip(req in request(), cuts in cuts()) {
        let wire = req.encode();
        let mut server = Server::new();
        server.auto_respond = false;
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
            let cut = cut.clamp(last, wire.len());
            server.feed(&wire[last..cut]);
            last = cut;
        }
        prop_assert_eq!(server.events, req.expected());
    }

    /// (b) A response encoded by the server parses back to the same thing on the client.
    #[test]
    fn response_round_trip(res in response(), cuts in cuts()) {
        let (wire, expected) = res.encode(&Method::GET);
        let request = Request::get("http://x/").body(()).unwrap();
        let mut events = client_run(&request, &wire, &cuts);
        if events.last() == Some(&Ev::Closed) {
            events.pop();
        }
        prop_assert_eq!(events, expected);
    }

    /// (c) Pipelined requests, split anywhere, are all served in order with their bodies.
    #[test]
    fn pipelined_sequences(reqs in prop::collection::vec(request(), 1..6), cuts in cuts()) {
        let wire: Vec<u8> = reqs.iter().flat_map(Req::encode).collect();
        let (events, out) = Server::run_split(&wire, &cuts);
        let mut expected: Vec<Ev> = reqs.iter().flat_map(Req::expected).collect();
        expected.push(Ev::Closed);
        prop_assert_eq!(events, expected);
        let answers = String::from_utf8_lossy(&out).matches("HTTP/1.1 200 OK").count();
        prop_assert_eq!(answers, reqs.len());
    }
}

/// A response as a server would send it.
#[derive(Debug, Clone)]
struct Res {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Res {
    /// Encodes through a server connection answering a `method` request; returns the wire and
    /// the events a client should see.
    fn encode(&self, method: &Method) -> (Vec<u8>, Vec<Ev>) {
        let mut conn = ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO);
        let request = format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.handle_input(Instant::ZERO, request.as_bytes());
        while let Some(ev) = conn.poll_event() {
            assert!(matches!(
                ev,
                ServerEvent::Request { .. } | ServerEvent::End { .. }
            ));
        }
        let mut b = Response::builder().status(self.status);
        for (n, v) in &self.headers {
            b = b.header(n, v);
        }
        let (n, v) = framing_header(&self.body);
        let head = b.header(n, v).body(()).unwrap();
        conn.send_response(&head).unwrap();
        for piece in &self.body.pieces {
            conn.send_data(Bytes::from(piece.clone())).unwrap();
        }
        conn.send_end(trailer_map(&self.body.trailers).as_ref())
            .unwrap();
        let mut wire = Vec::new();
        while let Some(b) = conn.poll_transmit(Instant::ZERO) {
            wire.extend_from_slice(&b);
        }
        let mut expected_head = Response::new(());
        *expected_head.status_mut() = StatusCode::from_u16(self.status).unwrap();
        *expected_head.headers_mut() = head.headers().clone();
        let mut events = vec![Ev::Head(super::support::response_line(&expected_head))];
        if !self.body.bytes().is_empty() {
            events.push(Ev::Data(self.body.bytes()));
        }
        events.push(Ev::End(self.body.trailers.clone()));
        (wire, events)
    }
}

fn response() -> impl Strategy<Value = Res> {
    (
        prop_oneof![Just(200u16), Just(201), Just(404), Just(500), 200u16..600],
        extra_headers(),
        body(),
    )
        .prop_filter("statuses with bodies", |(s, _, _)| *s != 204 && *s != 304)
        .prop_map(|(status, headers, body)| Res {
            status,
            headers,
            body,
        })
}

#[test]
fn trailers_round_trip_through_client_events() {
    let res = Res {
        status: 200,
        headers: vec![],
        body: Body {
            pieces: vec![b"abc".to_vec()],
            chunked: true,
            trailers: vec![("t-x".into(), "1".into())],
        },
    };
    let (wire, expected) = res.encode(&Method::GET);
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    conn.send_request(&Request::get("http://x/").body(()).unwrap())
        .unwrap();
    conn.send_end(None).unwrap();
    conn.handle_input(Instant::ZERO, &wire);
    let mut got = Vec::new();
    while let Some(ev) = conn.poll_event() {
        if let ClientEvent::End { trailers } = &ev {
            assert_eq!(
                fields(trailers.as_ref().unwrap()),
                [("t-x".to_string(), "1".to_string())]
            );
        }
        got.push(super::support::client_ev(ev));
    }
    assert_eq!(got, expected);
}

/// Random bytes whose start line goes wrong somewhere: the bytes, and the length of the
/// shortest prefix that is already invalid.
fn never_http(request: bool) -> impl Strategy<Value = (Vec<u8>, usize)> {
    let judge = move |bytes: &[u8]| {
        if request {
            crate::h1::start_line::request_line(bytes)
        } else {
            crate::h1::start_line::status_line(bytes)
        }
    };
    let starts: &[&[u8]] = if request {
        &[b"", b"GET /", b"POST /x HT", b"\r\nOPTIONS * HTTP/1.1\r"]
    } else {
        &[b"", b"HTTP/1.1 2", b"\r\nHTTP/1.0 "]
    };
    let start = prop::sample::select(starts).prop_map(<[u8]>::to_vec);
    (start, prop::collection::vec(any::<u8>(), 1..4096)).prop_filter_map(
        "a start line that never goes wrong",
        move |(mut bytes, noise)| {
            bytes.extend_from_slice(&noise);
            let bad = (1..=bytes.len())
                .find(|&n| judge(&bytes[..n]) == crate::h1::start_line::StartLine::Invalid)?;
            Some((bytes, bad))
        },
    )
}

proptest! {
    /// Bytes that can never start a request line are answered with an error status and
    /// the connection closes as soon as the first impossible byte is in, for any split,
    /// without waiting for the end of the head, EOF or a timeout.
    #[test]
    fn server_refuses_never_http_at_once((input, bad) in never_http(true), cuts in cuts()) {
        let mut s = Server::new();
        for (piece, end) in pieces(&input, &cuts) {
            s.feed(piece);
            if end >= bad {
                break;
            }
        }
        prop_assert!(matches!(s.events.first(), Some(Ev::Error(..))), "{:?}", s.events);
        let wire = s.wire_str();
        prop_assert!(wire.starts_with("HTTP/1.1 400 ") || wire.starts_with("HTTP/1.1 505 "), "{}", wire);
        prop_assert!(!s.conn.wants_input());
    }

    /// The same on the client for a status line.
    #[test]
    fn client_fails_never_http_at_once((input, bad) in never_http(false), cuts in cuts()) {
        let request = Request::builder().uri("http://x/").body(()).unwrap();
        let mut conn = awaiting_response(&request);
        let mut failed = false;
        for (piece, end) in pieces(&input, &cuts) {
            conn.handle_input(Instant::ZERO, piece);
            while let Some(event) = conn.poll_event() {
                failed |= matches!(event, ClientEvent::Error(_));
            }
            if end >= bad {
                break;
            }
        }
        prop_assert!(failed);
    }
}
