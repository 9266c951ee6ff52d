//! Comparing tether's server framing with the [`oracle`](crate::oracle).
//!
//! Tether reads the input with a plain driver that answers every complete request with
//! `404` and `content-length: 0` (never switching protocols, never closing on its own), so
//! the only things that end the connection are the requests themselves. The input is run
//! whole, and once more a byte at a time: then the number of bytes fed when `End` arrives
//! is exactly where tether thinks the message ends (it reports `End` as soon as the last
//! byte of a message is in), which is compared with the oracle's boundary.

use crate::oracle::{self, End, Framing};
use http::{Response, StatusCode};
use tether_core::h1::{RemoteErrorKind, ServerConnection, ServerConnectionConfig, ServerEvent};
use tether_core::time::Instant;

/// A request as tether reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// `Uri` as displayed.
    pub target: String,
    /// Whether it was HTTP/1.0.
    pub http10: bool,
    /// Number of header fields.
    pub fields: usize,
    /// Data events, joined.
    pub body: Vec<u8>,
    /// Trailer fields, once `End` came.
    pub trailers: Option<usize>,
    /// Bytes fed when `End` came (exact only when fed a byte at a time).
    pub end: Option<usize>,
}

/// How tether's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeenEnd {
    /// A `Closed` event (EOF between requests).
    Closed,
    /// No final event: the connection stopped after a response (not persistent).
    Quiet,
    /// An `Error` event.
    Error(RemoteErrorKind),
}

/// Everything tether reported for one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TetherRun {
    /// The requests, in order.
    pub requests: Vec<Seen>,
    /// How it ended.
    pub end: SeenEnd,
}

/// Runs `input` through a default server connection, whole or a byte at a time.
pub fn run_tether(input: &[u8], bytewise: bool) -> TetherRun {
    let mut conn = ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO);
    let mut run = TetherRun {
        requests: Vec::new(),
        end: SeenEnd::Quiet,
    };
    let pieces: Vec<&[u8]> = if bytewise {
        input.chunks(1).collect()
    } else {
        vec![input]
    };
    let mut fed = 0;
    for piece in pieces {
        conn.handle_input(Instant::ZERO, piece);
        fed += piece.len();
        drain(&mut conn, &mut run, fed);
    }
    conn.handle_eof();
    drain(&mut conn, &mut run, fed);
    assert!(conn.is_closed(), "server not closed after EOF: {run:?}");
    run
}

fn drain(conn: &mut ServerConnection, run: &mut TetherRun, fed: usize) {
    while let Some(event) = conn.poll_event() {
        match event {
            ServerEvent::Request { head, .. } => run.requests.push(Seen {
                method: head.method().to_string(),
                target: head.uri().to_string(),
                http10: head.version() == http::Version::HTTP_10,
                fields: head.headers().len(),
                body: Vec::new(),
                trailers: None,
                end: None,
            }),
            ServerEvent::Data(data) => {
                let seen = run.requests.last_mut().expect("Data before a Request");
                seen.body.extend_from_slice(&data);
            }
            ServerEvent::End { trailers } => {
                let seen = run.requests.last_mut().expect("End before a Request");
                seen.trailers = Some(trailers.map_or(0, |t| t.len()));
                seen.end = Some(fed);
                let response = Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .header("content-length", "0")
                    .body(())
                    .expect("valid response");
                conn.send_response(&response).expect("response accepted");
                conn.send_end(None).expect("response ended");
            }
            ServerEvent::Closed => run.end = SeenEnd::Closed,
            ServerEvent::Error(error) => {
                let kind = error.remote().expect("only remote errors").kind();
                run.end = SeenEnd::Error(kind);
            }
            other => panic!("unexpected server event {other:?}"),
        }
    }
    while conn.poll_transmit(Instant::ZERO).is_some() {}
}

/// Tether errors the oracle does not model: its configured size limits (which RFC 9110
/// lets a server enforce with 413/414/431 or 400), and URI grammar finer than the oracle's
/// rough request-target forms. Tether may reject a message the oracle accepts only with one
/// of these. (`Host` is not among them: the oracle checks it by RFC 3986's grammar.)
const TOLERATED: [RemoteErrorKind; 7] = [
    RemoteErrorKind::HeadTooLarge,
    RemoteErrorKind::TooManyHeaders,
    RemoteErrorKind::TargetTooLong,
    RemoteErrorKind::BodyTooLarge,
    RemoteErrorKind::ChunkExtensionTooLarge,
    RemoteErrorKind::TrailersTooLarge,
    RemoteErrorKind::InvalidTarget,
];

/// Frames `input` with the oracle and with tether and asserts that they agree: every
/// message both accept has the same method, version, field count, body, trailers and end;
/// tether accepts nothing the oracle rejects; tether rejects a message the oracle accepts
/// only for a [`TOLERATED`] reason. Returns the oracle's framing.
pub fn check_differential(input: &[u8]) -> Framing {
    let framing = oracle::frame_requests(input);
    let whole = run_tether(input, false);
    let bytewise = run_tether(input, true);
    let without_ends = |run: &TetherRun| {
        let mut run = run.clone();
        run.requests.iter_mut().for_each(|r| r.end = None);
        run
    };
    assert_eq!(
        without_ends(&whole),
        without_ends(&bytewise),
        "tether: whole and byte-at-a-time runs differ"
    );
    let tether = bytewise;
    let report = || {
        format!(
            "input: {:?}\noracle: {framing:#?}\ntether: {tether:#?}",
            String::from_utf8_lossy(input)
        )
    };
    for (i, expected) in framing.messages.iter().enumerate() {
        let Some(seen) = tether.requests.get(i).filter(|s| s.end.is_some()) else {
            match tether.end {
                SeenEnd::Error(kind) if TOLERATED.contains(&kind) => return framing,
                _ => panic!(
                    "tether rejects message {i}, which the oracle accepts\n{}",
                    report()
                ),
            }
        };
        let same = seen.method == expected.method
            && seen.http10 == (expected.minor == 0)
            && seen.fields == expected.fields
            && seen.body == expected.body
            && seen.trailers == Some(expected.trailers)
            && seen.end == Some(expected.end);
        assert!(same, "message {i} framed differently\n{}", report());
    }
    let n = framing.messages.len();
    match &framing.end {
        End::Eof => {
            assert!(
                tether.requests.len() == n && tether.end == SeenEnd::Closed,
                "oracle: clean end after {n} messages\n{}",
                report()
            );
        }
        End::Closed => {
            assert!(
                tether.requests.len() == n && tether.end == SeenEnd::Quiet,
                "oracle: connection closed after {n} messages\n{}",
                report()
            );
        }
        End::Rejected { .. } | End::Incomplete { .. } => {
            let accepted = tether.requests.get(n).is_some_and(|s| s.end.is_some());
            assert!(
                !accepted && tether.requests.len() <= n + 1,
                "tether accepts message {n}, which the oracle refuses\n{}",
                report()
            );
            assert!(
                matches!(tether.end, SeenEnd::Error(_)),
                "tether does not reject message {n}\n{}",
                report()
            );
        }
    }
    framing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_on_pipelined_requests() {
        let input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n\
\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
        let framing = check_differential(input);
        assert_eq!(framing.messages.len(), 3);
        assert_eq!(framing.end, End::Eof);
    }

    /// One input per refusal rule of the oracle, each with a smuggled request behind it.
    #[test]
    fn agrees_on_smuggling_shapes() {
        let smuggled = "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
        let heads = [
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 35\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\nContent-Length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\n\r\n",
        ];
        for head in heads {
            let input = format!("{head}{smuggled}");
            let framing = check_differential(input.as_bytes());
            assert!(
                framing.messages.is_empty() && matches!(framing.end, End::Rejected { .. }),
                "{head:?}: {framing:?}"
            );
        }
    }
}
