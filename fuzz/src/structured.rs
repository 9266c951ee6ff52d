//! The checks of `h1_structured`: a generated sequence ([`h1gen`](crate::h1gen)) goes
//! through the whole-vs-split machinery (so every invariant of `h1_server`/`h1_client`
//! holds), the body bytes its events describe are checked against the declared framing,
//! and when no mutation touched it, the parsed messages must be exactly the generated ones
//! (an encode -> parse round trip).

use crate::client::{check_client, ClientRequest};
use crate::differential::{run_tether, SeenEnd};
use crate::h1gen::{
    asks_upgrade, mutate, render_requests, render_responses, ExpectedRequest, ExpectedResponse,
    Structured,
};
use crate::record::{Fields, Norm};
use crate::server::check_server;

/// Runs one structured input.
pub fn check_structured(input: &Structured) {
    match input {
        Structured::Server {
            seed,
            requests,
            mutations,
        } => {
            let (rendered, expected) = render_requests(requests);
            let mut bytes = rendered.clone();
            mutate(&mut bytes, mutations);
            let (whole, _) = check_server(*seed, &bytes);
            check_request_bodies(&whole.rec.events);
            check_client_frames_alike(&bytes);
            crate::reencode::check_reencode_requests(&bytes);
            if bytes == rendered {
                round_trip_requests(&bytes, &expected);
            }
        }
        Structured::Client {
            seed,
            head,
            responses,
            mutations,
        } => {
            let (rendered, expected) = render_responses(responses, *head);
            let mut bytes = rendered.clone();
            mutate(&mut bytes, mutations);
            let first = if *head {
                ClientRequest::Head
            } else if asks_upgrade(responses, *head) {
                ClientRequest::Upgrade
            } else {
                ClientRequest::Get
            };
            let events = check_client(first, *seed, &bytes);
            if first == ClientRequest::Get {
                crate::reencode::check_reencode_responses(&bytes);
            }
            check_response_bodies(&events, *head);
            if bytes == rendered {
                round_trip_responses(&events, &expected);
            }
        }
    }
}

/// A request body the server role accepted is framed the same by the client role: its
/// framing fields (`Content-Length`, `Transfer-Encoding`) and the very bytes after its head,
/// sent as the response to a `GET`, give the client the same body, and an `End`. The two
/// roles share the body decoder, but not the code that decides the framing from the fields.
pub fn check_client_frames_alike(bytes: &[u8]) {
    let run = run_tether(bytes, true);
    let mut start = 0;
    for seen in &run.requests {
        let Some(end) = seen.end else { break };
        let mut message = &bytes[start..end];
        start = end;
        // Empty lines before a request line are ignored (RFC 9112 §2.2), not part of it.
        while let Some(rest) = message
            .strip_prefix(b"\r\n")
            .or_else(|| message.strip_prefix(b"\n"))
        {
            message = rest;
        }
        if seen.method == "CONNECT" || seen.method == "HEAD" {
            continue;
        }
        let Some(head_len) = message.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
        for line in message[..head_len].split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            if name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(b"transfer-encoding")
            {
                response.extend_from_slice(line);
                response.extend_from_slice(b"\r\n");
            }
        }
        response.extend_from_slice(b"\r\n");
        response.extend_from_slice(&message[head_len + 4..]);
        let events = check_client(ClientRequest::Get, 0, &response);
        let mut body = Vec::new();
        let mut ended = false;
        for event in &events {
            match event {
                Norm::Data(data) if !ended => body.extend_from_slice(data),
                Norm::End { .. } => {
                    ended = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(
            ended,
            "the client role did not finish a body the server accepted: {events:?}"
        );
        assert_eq!(
            body, seen.body,
            "the client role framed a body the server accepted differently"
        );
    }
}

/// The body length the fields declare without `Transfer-Encoding`: the `Content-Length`
/// (every value the same), or `None` when it is chunked or unparsable.
fn declared_length(headers: &Fields) -> Option<Option<u64>> {
    let mut length = None;
    for (name, value) in headers {
        if name == "transfer-encoding" {
            return None;
        }
        if name == "content-length" {
            for item in value.split(|&b| b == b',') {
                let n: u64 = std::str::from_utf8(item).ok()?.trim().parse().ok()?;
                if length.is_some_and(|l| l != n) {
                    return None;
                }
                length = Some(n);
            }
        }
    }
    Some(length)
}

/// Asserts, message by message, that the `Data` total never exceeds the allowed length
/// and equals it at `End`.
fn check_bounded(events: &[Norm], bound_of: impl Fn(&Norm, usize) -> Option<Option<u64>>) {
    let mut bound: Option<u64> = None;
    let mut total = 0u64;
    let mut index = 0;
    for event in events {
        match event {
            Norm::Request { .. } | Norm::Response { .. } => {
                bound = bound_of(event, index).map(|b| b.unwrap_or(0));
                total = 0;
                index += 1;
            }
            Norm::Data(data) => {
                total += data.len() as u64;
                if let Some(bound) = bound {
                    assert!(
                        total <= bound,
                        "{total} body bytes, framing allows {bound}\nevents: {events:#?}"
                    );
                }
            }
            Norm::End { .. } => {
                if let Some(bound) = bound {
                    assert_eq!(
                        total, bound,
                        "body ended after {total} bytes, framing says {bound}\nevents: {events:#?}"
                    );
                }
                bound = None;
            }
            _ => {}
        }
    }
}

/// Request bodies: `Content-Length` (0 without one, and always for CONNECT).
fn check_request_bodies(events: &[Norm]) {
    check_bounded(events, |event, _| match event {
        Norm::Request { method, .. } if method == "CONNECT" => Some(Some(0)),
        Norm::Request { headers, .. } => declared_length(headers).map(|l| l.or(Some(0))),
        _ => None,
    });
}

/// Response bodies: none for 204, 304 and the answer to HEAD; else `Content-Length`
/// (close-delimited and chunked ones are not bounded here).
fn check_response_bodies(events: &[Norm], head: bool) {
    check_bounded(events, |event, index| match event {
        Norm::Response { status, .. } if *status == 204 || *status == 304 => Some(Some(0)),
        Norm::Response { status: 101, .. } => None,
        Norm::Response { .. } if head && index == 0 => Some(Some(0)),
        Norm::Response { headers, .. } => declared_length(headers).filter(Option::is_some),
        _ => None,
    });
}

/// The unmutated request stream parses as generated, up to the first request that must be
/// refused (which is) or that ends the connection (after which nothing is read).
pub fn round_trip_requests(bytes: &[u8], expected: &[ExpectedRequest]) {
    let tether = run_tether(bytes, true);
    let report = || format!("expected: {expected:#?}\ntether: {tether:#?}");
    for (i, e) in expected.iter().enumerate() {
        if !e.valid {
            assert!(
                tether.requests.len() == i && matches!(tether.end, SeenEnd::Error(_)),
                "request {i} must be refused at its head\n{}",
                report()
            );
            return;
        }
        let Some(seen) = tether.requests.get(i) else {
            panic!("request {i} missing\n{}", report());
        };
        let same = seen.method == e.method
            && seen.target == e.target
            && seen.http10 == e.http10
            && seen.fields == e.fields
            && seen.body == e.body
            && seen.trailers == Some(e.trailers)
            && seen.end == Some(e.end);
        assert!(same, "request {i} does not round-trip\n{}", report());
        if !e.persistent {
            assert!(
                tether.requests.len() == i + 1 && tether.end == SeenEnd::Quiet,
                "nothing may be read after request {i}\n{}",
                report()
            );
            return;
        }
    }
    assert!(
        tether.requests.len() == expected.len() && tether.end == SeenEnd::Closed,
        "clean end expected\n{}",
        report()
    );
}

/// The unmutated response stream parses as generated: interim statuses, final status,
/// field count, body and trailers of each response, in order.
pub fn round_trip_responses(events: &[Norm], expected: &[ExpectedResponse]) {
    let mut seen = events.iter().filter(|e| !matches!(e, Norm::Note(_)));
    for (i, e) in expected.iter().enumerate() {
        let mut next = || seen.next().cloned();
        for &status in &e.interim {
            assert!(
                matches!(next(), Some(Norm::Informational { status: s, .. }) if s == status),
                "response {i}: interim {status} expected\nevents: {events:#?}"
            );
        }
        if e.refused {
            assert!(
                matches!(next(), Some(Norm::RemoteError { .. })),
                "response {i}: must be refused: {e:?}\nevents: {events:#?}"
            );
            assert!(
                seen.all(|e| matches!(e, Norm::Closed)),
                "nothing read after a refused response\nevents: {events:#?}"
            );
            return;
        }
        let head_ok = matches!(next(), Some(Norm::Response { status, headers, .. })
            if status == e.status && headers.len() == e.fields);
        assert!(
            head_ok,
            "response {i}: head differs from {e:?}\nevents: {events:#?}"
        );
        if let Some(tunnel) = &e.switched {
            assert_eq!(
                next(),
                Some(Norm::Upgraded(tunnel.clone())),
                "response {i}: the bytes after a 101 are handed over\nevents: {events:#?}"
            );
            assert_eq!(seen.next(), None, "nothing after Upgraded");
            return;
        }
        let mut event = next();
        if !e.body.is_empty() {
            assert_eq!(
                event,
                Some(Norm::Data(e.body.clone())),
                "response {i}: body"
            );
            event = next();
        }
        let trailers_ok = match &event {
            Some(Norm::End { trailers }) => {
                trailers.as_ref().map_or(0, Vec::len) == e.trailers.unwrap_or(0)
            }
            _ => false,
        };
        assert!(
            trailers_ok,
            "response {i}: End expected\nevents: {events:#?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h1gen::{
        GenBody, GenChunk, GenConnection, GenField, GenHost, GenRequest, GenResponse, GenTarget,
        Twist, Word,
    };

    fn request(method: u8, body: GenBody, twist: Option<Twist>) -> GenRequest {
        GenRequest {
            method,
            target: GenTarget::Natural(Word(b"abc".to_vec())),
            http10: false,
            host: GenHost::Plain,
            connection: GenConnection::Absent,
            expect_continue: false,
            extra: vec![GenField {
                name: 1,
                value: Word(b"zz".to_vec()),
            }],
            body,
            twist,
        }
    }

    fn chunked() -> GenBody {
        GenBody::Chunked {
            chunks: vec![
                GenChunk {
                    data: b"hello".to_vec(),
                    ext: Some((Word(b"a".to_vec()), Word(b"b".to_vec()))),
                    upper: true,
                    zeros: 2,
                },
                GenChunk {
                    data: vec![0; 26],
                    ext: None,
                    upper: false,
                    zeros: 0,
                },
            ],
            trailers: vec![GenField {
                name: 2,
                value: Word(b"t".to_vec()),
            }],
        }
    }

    #[test]
    fn pipelined_requests_round_trip() {
        let requests = vec![
            request(2, GenBody::Length(b"abc".to_vec()), None),
            request(3, chunked(), None),
            request(1, GenBody::None, None),
            request(6, GenBody::None, None),
            request(5, GenBody::Length(Vec::new()), None),
        ];
        for seed in [0, 1, 7, 200] {
            check_structured(&Structured::Server {
                seed,
                requests: requests.clone(),
                mutations: Vec::new(),
            });
        }
    }

    /// Every twist makes its request refused, whatever framing it is rendered with, and
    /// a request queued behind it is never read.
    #[test]
    fn every_twist_is_refused() {
        use Twist::*;
        let twists = [
            DuplicateContentLength,
            ConflictingContentLength,
            ContentLengthList,
            SignedContentLength,
            ContentLengthWithChunked,
            GzipThenChunked,
            ChunkedThenGzip,
            Identity,
            ChunkedTwice,
            ObsFold,
            SpaceBeforeColon,
            BareLf,
            UnknownExpect,
        ];
        for twist in twists {
            for body in [
                GenBody::None,
                GenBody::Length(b"GET / HTTP/1.1\r\n\r\n".to_vec()),
                chunked(),
            ] {
                let requests = vec![
                    request(2, body, Some(twist)),
                    request(0, GenBody::None, None),
                ];
                let (bytes, expected) = render_requests(&requests);
                assert!(!expected[0].valid);
                round_trip_requests(&bytes, &expected);
                crate::differential::check_differential(&bytes);
            }
        }
    }

    #[test]
    fn connect_with_content_is_refused() {
        let requests = vec![request(
            6,
            GenBody::Length(b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
            None,
        )];
        let (bytes, expected) = render_requests(&requests);
        assert!(!expected[0].valid);
        round_trip_requests(&bytes, &expected);
    }

    #[test]
    fn responses_round_trip() {
        let response = |status, body, connection| GenResponse {
            interim: 3,
            status,
            http10: false,
            connection,
            extra: vec![],
            body,
            twist: None,
        };
        let responses = vec![
            response(0, GenBody::Length(b"hi".to_vec()), GenConnection::KeepAlive),
            response(1, chunked(), GenConnection::Absent),
            response(
                2,
                GenBody::Length(b"ignored".to_vec()),
                GenConnection::Absent,
            ),
            response(
                5,
                GenBody::Length(b"ignored".to_vec()),
                GenConnection::Absent,
            ),
            response(
                6,
                GenBody::UntilClose(b"rest".to_vec()),
                GenConnection::Absent,
            ),
        ];
        for head in [false, true] {
            check_structured(&Structured::Client {
                seed: 3,
                head,
                responses: responses.clone(),
                mutations: Vec::new(),
            });
        }
    }

    /// Every twist, on a response with the body it fits, followed by a plain response: the
    /// client frames it, frames it and stops, or refuses it, as `Twist::response_outcome`
    /// says; the unmutated run is checked event by event.
    #[test]
    fn every_twist_on_a_response_has_its_outcome() {
        use Twist::*;
        let response = |body, twist| GenResponse {
            interim: 0,
            status: 0,
            http10: false,
            connection: GenConnection::Absent,
            extra: vec![],
            body,
            twist,
        };
        let expected_after = |twist| {
            let responses = vec![
                response(
                    match twist {
                        ContentLengthWithChunked
                        | GzipThenChunked
                        | ChunkedThenGzip
                        | ChunkedTwice
                        | Identity => chunked(),
                        _ => GenBody::Length(b"twisted".to_vec()),
                    },
                    Some(twist),
                ),
                response(GenBody::Length(b"next".to_vec()), None),
            ];
            let (_, expected) = render_responses(&responses, false);
            for seed in [0, 7] {
                check_structured(&Structured::Client {
                    seed,
                    head: false,
                    responses: responses.clone(),
                    mutations: Vec::new(),
                });
            }
            expected
        };
        // (twist, responses read: 2 when the connection goes on, refused)
        let outcomes = [
            (DuplicateContentLength, 2, false),
            (ContentLengthList, 2, false),
            (GzipThenChunked, 2, false),
            (BareLf, 2, false),
            (UnknownExpect, 2, false),
            (ContentLengthWithChunked, 1, false),
            (Identity, 1, false),
            (ConflictingContentLength, 1, true),
            (SignedContentLength, 1, true),
            (ChunkedTwice, 1, true),
            (SpaceBeforeColon, 1, true),
            (ChunkedThenGzip, 1, true),
            (ObsFold, 1, true),
        ];
        for (twist, read, refused) in outcomes {
            let expected = expected_after(twist);
            assert_eq!(expected.len(), read, "{twist:?}");
            assert_eq!(expected[0].refused, refused, "{twist:?}");
        }
    }

    /// A `101` to an upgrade request ends HTTP: what follows it (here the bytes of two more
    /// responses) is handed over as it came, after the interim responses and the 101's head.
    #[test]
    fn a_switch_hands_over_the_bytes_after_it() {
        let response = |connection, body| GenResponse {
            interim: 3,
            status: 0,
            http10: false,
            connection,
            extra: vec![GenField {
                name: 2,
                value: Word(b"id".to_vec()),
            }],
            body,
            twist: None,
        };
        let responses = vec![
            response(GenConnection::Upgrade, GenBody::None),
            response(GenConnection::Upgrade, GenBody::Length(b"x".to_vec())),
            response(GenConnection::Absent, chunked()),
        ];
        assert!(asks_upgrade(&responses, false));
        assert!(!asks_upgrade(&responses, true));
        let (bytes, expected) = render_responses(&responses, false);
        assert_eq!(expected.len(), 1);
        let tunnel = expected[0].switched.as_ref().expect("a 101");
        assert!(tunnel.starts_with(b"HTTP/1.1 100 Continue"));
        assert!(bytes.ends_with(tunnel));
        for seed in [0, 3, 99] {
            check_structured(&Structured::Client {
                seed,
                head: false,
                responses: responses.clone(),
                mutations: Vec::new(),
            });
        }
    }

    /// The rarer valid `Host` shapes are accepted and the invalid ones refused, by tether
    /// and by the reference model alike.
    #[test]
    fn unusual_hosts_are_accepted_and_invalid_ones_refused() {
        for i in 0..=255u8 {
            for host in [GenHost::Unusual(i), GenHost::Invalid(i)] {
                let mut first = request(0, GenBody::None, None);
                first.host = host;
                let requests = vec![first, request(0, GenBody::None, None)];
                let (bytes, expected) = render_requests(&requests);
                assert_eq!(expected[0].valid, matches!(host, GenHost::Unusual(_)));
                round_trip_requests(&bytes, &expected);
                crate::differential::check_differential(&bytes);
            }
        }
    }

    /// Found by h1_structured: the empty lines a server skips before a request line had
    /// been taken for the end of the request's head.
    #[test]
    fn empty_lines_before_a_request_are_not_its_head() {
        check_client_frames_alike(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n\r\nPOST /x HTTP/1.0\r\nHost: a\r\n\r\n",
        );
        check_client_frames_alike(b"\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    }

    #[test]
    fn bodies_the_server_accepts_are_framed_alike_by_the_client() {
        check_client_frames_alike(
            b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
              4;ext=1\r\nwiki\r\n0\r\nT: 1\r\n\r\n\
              PUT /b HTTP/1.1\r\nHost: h\r\ncontent-length: 005\r\n\r\nhello\
              GET /c HTTP/1.1\r\nHost: h\r\n\r\n",
        );
    }
}
