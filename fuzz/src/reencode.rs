//! Encode → parse → encode: every request tether's server role accepts, written out again
//! by tether's client role, parses back to the same request (method, target, fields in
//! order, body, trailers), and writing that out gives the very same bytes. The same for
//! responses the client role accepts, written out by the server role. A difference would
//! mean the encoder and the parser disagree on some field, target or framing: what a proxy
//! built on tether would forward is not what it received.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use tether_core::h1::{
    ClientConnection, ClientConnectionConfig, ClientEvent, ServerConnection,
    ServerConnectionConfig, ServerEvent,
};
use tether_core::time::Instant;

/// One message as a role read it, whole.
#[derive(Debug, Clone)]
pub struct Whole<H> {
    /// The head.
    pub head: H,
    /// Every `Data` event, joined.
    pub body: Vec<u8>,
    /// The trailer section of a chunked body.
    pub trailers: Option<HeaderMap>,
}

/// One request as the server role read it.
pub type WholeRequest = Whole<Request<()>>;
/// One final response as the client role read it.
pub type WholeResponse = Whole<Response<()>>;

/// Joins a connection's head, `Data` and `End` events into whole messages.
struct Assembler<H> {
    current: Option<Whole<H>>,
    done: Vec<Whole<H>>,
}

impl<H> Assembler<H> {
    fn new() -> Assembler<H> {
        Assembler {
            current: None,
            done: Vec::new(),
        }
    }

    fn head(&mut self, head: H) {
        self.current = Some(Whole {
            head,
            body: Vec::new(),
            trailers: None,
        });
    }

    fn data(&mut self, data: &[u8]) {
        if let Some(message) = self.current.as_mut() {
            message.body.extend_from_slice(data);
        }
    }

    /// The current message ends; `false` if none had begun.
    fn end(&mut self, trailers: Option<HeaderMap>) -> bool {
        let Some(mut message) = self.current.take() else {
            return false;
        };
        message.trailers = trailers;
        self.done.push(message);
        true
    }
}

/// The requests the server role reads from `bytes` in full, answering each with a 404 so
/// that pipelined ones follow; a request the input cuts short or that fails is left out.
pub fn parse_requests(bytes: &[u8]) -> Vec<WholeRequest> {
    let mut conn = ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO);
    conn.handle_input(Instant::ZERO, bytes);
    conn.handle_eof();
    let mut requests = Assembler::new();
    while let Some(event) = conn.poll_event() {
        match event {
            ServerEvent::Request { head, .. } => requests.head(head),
            ServerEvent::Data(data) => requests.data(&data),
            ServerEvent::End { trailers } => {
                if !requests.end(trailers) {
                    continue;
                }
                let response = Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .header("content-length", "0")
                    .body(())
                    .expect("valid response");
                if conn.send_response(&response).is_err() || conn.send_end(None).is_err() {
                    break;
                }
            }
            _ => {}
        }
        while conn.poll_transmit(Instant::ZERO).is_some() {}
    }
    requests.done
}

/// `request` written by a fresh client connection (in absolute form if its target has a
/// scheme), or `None` if the client cannot send it: an HTTP/1.0 request without `Host`,
/// which the client (always HTTP/1.1) may not send.
pub fn encode_request(request: &WholeRequest) -> Option<Vec<u8>> {
    let mut config = ClientConnectionConfig::default();
    config.absolute_form = request.head.uri().scheme().is_some();
    let mut conn = ClientConnection::new(config);
    if let Err(error) = conn.send_request(&request.head) {
        assert!(
            request.head.version() == Version::HTTP_10
                && !request.head.headers().contains_key("host"),
            "the client refuses a request the server accepted: {error}\n{request:?}"
        );
        return None;
    }
    if !request.body.is_empty() {
        conn.send_data(Bytes::copy_from_slice(&request.body))
            .expect("the body the server read fits its framing");
    }
    conn.send_end(request.trailers.as_ref())
        .expect("the request ends where the server's did");
    let mut out = Vec::new();
    while let Some(bytes) = conn.poll_transmit(Instant::ZERO) {
        out.extend_from_slice(&bytes);
    }
    Some(out)
}

/// Runs the check on every request the server role accepts from `bytes`.
pub fn check_reencode_requests(bytes: &[u8]) {
    for request in parse_requests(bytes) {
        let Some(first) = encode_request(&request) else {
            continue;
        };
        let again = parse_requests(&first);
        let [reparsed] = &again[..] else {
            panic!(
                "the encoding of one request parses as {} requests\nencoding: {:?}\nrequest: {request:?}",
                again.len(),
                String::from_utf8_lossy(&first)
            );
        };
        let mut expected = request.clone();
        // The client speaks HTTP/1.1 only, which needs a `Host`: an HTTP/1.0 request without
        // one gets it from the target's authority (CONNECT, absolute form), userinfo left out.
        if expected.head.version() == Version::HTTP_10
            && !expected.head.headers().contains_key("host")
        {
            let authority = expected
                .head
                .uri()
                .authority()
                .map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_owned());
            if let Some(host) = authority.and_then(|a| http::HeaderValue::try_from(a).ok()) {
                expected.head.headers_mut().append("host", host);
            }
        }
        *expected.head.version_mut() = Version::HTTP_11;
        let same = reparsed.head.method() == expected.head.method()
            && reparsed.head.uri() == expected.head.uri()
            && reparsed.head.version() == expected.head.version()
            && reparsed.head.headers() == expected.head.headers()
            && reparsed.body == expected.body
            && reparsed.trailers == expected.trailers;
        assert!(
            same,
            "encode -> parse changed the request\nencoding: {:?}\nbefore: {expected:?}\nafter: {reparsed:?}",
            String::from_utf8_lossy(&first)
        );
        let second = encode_request(reparsed).expect("the client sent it once");
        assert_eq!(
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&second),
            "encode -> parse -> encode is not the identity"
        );
    }
}

fn get() -> Request<()> {
    Request::get("/")
        .header("host", "h")
        .body(())
        .expect("valid request")
}

/// The final responses a client that sends `GET /` (and another after each reusable
/// response) reads from `bytes` in full; interim responses are skipped, and one the input
/// cuts short or that fails is left out.
pub fn parse_responses(bytes: &[u8]) -> Vec<WholeResponse> {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let send = |conn: &mut ClientConnection| {
        conn.send_request(&get()).is_ok() && conn.send_end(None).is_ok()
    };
    send(&mut conn);
    conn.handle_input(Instant::ZERO, bytes);
    conn.handle_eof();
    let mut responses = Assembler::new();
    while let Some(event) = conn.poll_event() {
        match event {
            ClientEvent::Response(head) => responses.head(head),
            ClientEvent::Data(data) => responses.data(&data),
            ClientEvent::End { trailers } => {
                if responses.end(trailers) && !send(&mut conn) {
                    break;
                }
            }
            _ => {}
        }
        while conn.poll_transmit(Instant::ZERO).is_some() {}
    }
    responses.done
}

/// `response` written by a fresh server connection as its answer to `GET /`, or `None`
/// where the server role may not send what the client role reads anyway: framing fields on
/// a 204 (RFC 9110 §8.6), or a `Transfer-Encoding` whose last coding is not `chunked` or
/// that comes with a `Content-Length` (RFC 9112 §6.1, §6.3: a client reads such a body to
/// the end of the connection, or by the chunked coding; a sender must not write it).
pub fn encode_response(response: &WholeResponse) -> Option<Vec<u8>> {
    let mut conn = ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO);
    conn.handle_input(Instant::ZERO, b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
    while conn.poll_event().is_some() {}
    if let Err(error) = conn.send_response(&response.head) {
        assert!(
            only_readable(&response.head),
            "the server refuses a response the client accepted: {error}\n{response:?}"
        );
        return None;
    }
    if !response.body.is_empty() {
        conn.send_data(Bytes::copy_from_slice(&response.body))
            .expect("the body the client read fits its framing");
    }
    conn.send_end(response.trailers.as_ref())
        .expect("the response ends where the client's did");
    let mut out = Vec::new();
    while let Some(bytes) = conn.poll_transmit(Instant::ZERO) {
        out.extend_from_slice(&bytes);
    }
    Some(out)
}

/// Whether `head`'s framing is one a client must read but a server must not write.
fn only_readable(head: &Response<()>) -> bool {
    let headers = head.headers();
    let has_length = headers.contains_key("content-length");
    let mut codings = Vec::new();
    for value in headers.get_all("transfer-encoding") {
        let text = String::from_utf8_lossy(value.as_bytes());
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            codings.push(coding.to_ascii_lowercase());
        }
    }
    let has_te = headers.contains_key("transfer-encoding");
    (head.status() == StatusCode::NO_CONTENT && (has_length || has_te))
        || (has_te && (has_length || codings.last().map(String::as_str) != Some("chunked")))
}

/// Runs the check on every final response a client that sent `GET`s accepts from `bytes`.
/// A response framed by the connection's close comes back chunked (the server's choice
/// for a body of unknown length on a persistent connection), with that one field added.
pub fn check_reencode_responses(bytes: &[u8]) {
    for response in parse_responses(bytes) {
        if response.head.status() == StatusCode::SWITCHING_PROTOCOLS {
            continue;
        }
        let Some(first) = encode_response(&response) else {
            continue;
        };
        let again = parse_responses(&first);
        let [reparsed] = &again[..] else {
            panic!(
                "the encoding of one response parses as {} responses\nencoding: {:?}\nresponse: {response:?}",
                again.len(),
                String::from_utf8_lossy(&first)
            );
        };
        let mut expected = response.clone();
        *expected.head.version_mut() = Version::HTTP_11;
        let headers = expected.head.headers_mut();
        let bodiless = matches!(response.head.status().as_u16(), 204 | 304);
        if !bodiless
            && !headers.contains_key("content-length")
            && !headers.contains_key("transfer-encoding")
        {
            headers.append(
                "transfer-encoding",
                http::HeaderValue::from_static("chunked"),
            );
            if expected.trailers.is_none() {
                expected.trailers = Some(HeaderMap::new());
            }
        }
        let same = reparsed.head.status() == expected.head.status()
            && reparsed.head.version() == expected.head.version()
            && reparsed.head.headers() == expected.head.headers()
            && reparsed.body == expected.body
            && reparsed.trailers.as_ref().filter(|t| !t.is_empty())
                == expected.trailers.as_ref().filter(|t| !t.is_empty());
        assert!(
            same,
            "encode -> parse changed the response\nencoding: {:?}\nbefore: {expected:?}\nafter: {reparsed:?}",
            String::from_utf8_lossy(&first)
        );
        let second = encode_response(reparsed).expect("the server sent it once");
        assert_eq!(
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&second),
            "encode -> parse -> encode is not the identity"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_of_every_framing_reencode() {
        check_reencode_requests(
            b"POST http://example.com/a?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc\
              PUT /b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked\r\n\r\n\
              4;ext=1\r\nwiki\r\n0\r\nT: 1\r\n\r\n\
              OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n\
              GET /c HTTP/1.0\r\nHost: h\r\n\r\n",
        );
        assert_eq!(
            parse_requests(
                b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\
                  GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
            )
            .len(),
            2
        );
    }

    #[test]
    fn responses_of_every_framing_reencode() {
        check_reencode_responses(
            b"HTTP/1.1 100 Continue\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nhi\
              HTTP/1.1 404 Nope\r\nTransfer-Encoding: chunked\r\n\r\n3;e\r\nabc\r\n0\r\nT: 1\r\n\r\n\
              HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n\
              HTTP/1.1 204 No Content\r\n\r\n\
              HTTP/1.0 200 OK\r\n\r\nuntil the end",
        );
        assert_eq!(
            parse_responses(
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\nx"
            )
            .len(),
            2
        );
    }

    /// Found by `h1_structured`: the client gives an HTTP/1.0 request without `Host` the
    /// one HTTP/1.1 needs, from the target.
    #[test]
    fn an_http10_request_without_host_gets_one_from_its_target() {
        for input in [
            &b"CONNECT example.com:443 HTTP/1.0\r\n\r\n"[..],
            b"GET http://example.org:8080/x HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(parse_requests(input).len(), 1);
            check_reencode_requests(input);
        }
        // Found next: a target authority the server accepted but a Host it refuses; the
        // server now refuses the target (`a_target_authority_must_be_a_valid_host_and_port`).
        let input = b"POST http://example.:com/dt HTTP/1.0\r\n\r\n";
        assert!(parse_requests(input).is_empty());
        check_reencode_requests(input);
    }

    /// Found by `h1_structured`: a response the client reads to the end of the connection
    /// (`Transfer-Encoding` without `chunked` last), which no server may write.
    #[test]
    fn responses_only_a_client_may_read_are_skipped() {
        let input = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: c(unked\r\n\r\nto the end";
        let responses = parse_responses(input);
        assert_eq!(responses.len(), 1);
        assert!(encode_response(&responses[0]).is_none());
        check_reencode_responses(input);
        let both =
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert!(encode_response(&parse_responses(both)[0]).is_none());
    }

    #[test]
    fn an_http10_request_without_host_is_skipped() {
        let requests = parse_requests(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(requests.len(), 1);
        assert!(encode_request(&requests[0]).is_none());
    }
}
