//! The `ws_handshake` checks: the opening handshake (RFC 6455 §4) on generated upgrade
//! requests and `101` answers, edited field by field.
//!
//! * **Server** ([`accept`]): its verdict is the one a reference reading of RFC 6455 §4.2.1
//!   gives ([`server_verdict`]): accept, 400, or 426 for the version. An accepted request
//!   gets a `101` with the upgrade fields, the accept key of the request's key, a subprotocol
//!   both sides named (the server's first choice among those offered) or none, and
//!   compression only if configured. A refusal's response carries its status (426 with
//!   `Sec-WebSocket-Version: 13`) and an empty body.
//! * **Round trip:** an unedited request is accepted, and the client accepts the unedited
//!   answer with the same subprotocol and compression.
//! * **Client** ([`ClientHandshake::validate`]): on the edited answer, its verdict is the
//!   reference reading of §4.1's checks ([`client_verdict`]); what it accepts names only
//!   what was offered.
//!
//! Two choices of tether's are the reference's too, because the RFC leaves them open:
//! `Upgrade` and `Connection` are read as lists that must contain the token (RFC 9110 §7.8
//! makes both lists, although §4.1 speaks of "a value"), and the checks run in the RFC's
//! order, so an input that breaks several rules is refused for the first.

use arbitrary::Arbitrary;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use tether_core::ws::handshake::accept_key;
use tether_core::ws::{accept, ClientHandshake, HandshakeError, Negotiated, WsConfig};

use crate::extensions_config;
use crate::h1gen::pick;
use crate::oracle::is_tchar;

/// Subprotocol names, the last three of which are not tokens.
const PROTOCOLS: [&str; 8] = [
    "chat",
    "superchat",
    "graphql-ws",
    "v2.bookings.example.net",
    "MQTT",
    "a,b",
    "a b",
    "",
];

/// Values edits put in fields: the right ones, near misses, lists.
const WORDS: [&str; 20] = [
    "websocket",
    "WebSocket",
    "websocket, h2c",
    "h2c",
    "Upgrade",
    "keep-alive, Upgrade",
    "keep-alive",
    "upgrades",
    "13",
    "8",
    "13, 8",
    "13,",
    "",
    "chat",
    "chat, superchat",
    "unknown",
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "x-webkit-deflate-frame",
    "dGhlIHNhbXBsZSBub25jZQ==",
];

/// One generated handshake: both sides' settings and the edits made on the way.
#[derive(Debug, Clone, Arbitrary)]
pub struct HandshakeCase {
    /// The client's 16 random key bytes.
    pub key: [u8; 16],
    /// Subprotocols the client offers (indices into [`PROTOCOLS`]).
    pub offered: Vec<u8>,
    /// Subprotocols the server speaks, in order of preference.
    pub supported: Vec<u8>,
    /// The client's permessage-deflate settings (see [`extensions_config`]), if any.
    pub client_deflate: Option<u8>,
    /// The server's.
    pub server_deflate: Option<u8>,
    /// Edits of the upgrade request.
    pub request_edits: Vec<Edit>,
    /// Edits of the server's answer (of a template `101` if the server refused).
    pub response_edits: Vec<Edit>,
}

/// A handshake field an edit touches.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Field {
    /// `Upgrade`.
    Upgrade,
    /// `Connection`.
    Connection,
    /// `Sec-WebSocket-Key`.
    Key,
    /// `Sec-WebSocket-Version`.
    Version,
    /// `Sec-WebSocket-Protocol`.
    Protocol,
    /// `Sec-WebSocket-Extensions`.
    Extensions,
    /// `Sec-WebSocket-Accept`.
    Accept,
}

impl Field {
    fn name(self) -> HeaderName {
        HeaderName::from_static(match self {
            Field::Upgrade => "upgrade",
            Field::Connection => "connection",
            Field::Key => "sec-websocket-key",
            Field::Version => "sec-websocket-version",
            Field::Protocol => "sec-websocket-protocol",
            Field::Extensions => "sec-websocket-extensions",
            Field::Accept => "sec-websocket-accept",
        })
    }
}

/// A value an edit writes.
#[derive(Debug, Clone, Arbitrary)]
pub enum Value {
    /// One of [`WORDS`].
    Word(u8),
    /// Any bytes (skipped unless they make a valid field value).
    Bytes(Vec<u8>),
    /// The base64 of these bytes (a key of the wrong length unless there are 16).
    Base64(Vec<u8>),
    /// The accept key of the base64 of these bytes.
    AcceptOf(Vec<u8>),
    /// The field's current first value with spaces and a tab around it.
    Padded,
}

/// One change to a head.
#[derive(Debug, Clone, Arbitrary)]
pub enum Edit {
    /// Removes every line of the field.
    Remove(Field),
    /// Adds a line.
    Append(Field, Value),
    /// Replaces every line with one.
    Replace(Field, Value),
    /// Sets the request's method (GET, POST, HEAD, CONNECT, or the extension method `get`).
    Method(u8),
    /// Sets the version (HTTP/1.1, HTTP/1.0, HTTP/0.9).
    Version(u8),
    /// Sets the response's status (101, 200, 400, 426, 302).
    Status(u8),
}

/// `token` of RFC 9110 §5.6.2, which a subprotocol name is (RFC 6455 §4.1).
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Value {
    fn render(&self, headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
        match self {
            Value::Word(i) => Some(HeaderValue::from_static(pick(&WORDS, *i))),
            Value::Bytes(bytes) => HeaderValue::from_bytes(bytes).ok(),
            Value::Base64(bytes) => HeaderValue::from_str(&base64(bytes)).ok(),
            Value::AcceptOf(bytes) => {
                HeaderValue::from_str(&accept_key(base64(bytes).as_bytes())).ok()
            }
            Value::Padded => {
                let current = headers.get(name)?.to_str().ok()?;
                HeaderValue::from_str(&format!("  {current}\t")).ok()
            }
        }
    }
}

/// The head parts edits change: a request's or a response's.
struct Head<'a> {
    headers: &'a mut HeaderMap,
    version: &'a mut Version,
    method: Option<&'a mut Method>,
    status: Option<&'a mut StatusCode>,
}

fn apply(mut head: Head<'_>, edits: &[Edit]) {
    for edit in edits.iter().take(8) {
        match edit {
            Edit::Remove(field) => {
                head.headers.remove(field.name());
            }
            Edit::Append(field, value) => {
                let name = field.name();
                if let Some(value) = value.render(head.headers, &name) {
                    head.headers.append(name, value);
                }
            }
            Edit::Replace(field, value) => {
                let name = field.name();
                if let Some(value) = value.render(head.headers, &name) {
                    head.headers.insert(name, value);
                }
            }
            Edit::Method(i) => {
                if let Some(method) = head.method.as_deref_mut() {
                    *method = Method::from_bytes(pick(
                        &[&b"GET"[..], b"POST", b"HEAD", b"CONNECT", b"get"],
                        *i,
                    ))
                    .expect("a valid method");
                }
            }
            Edit::Version(i) => {
                *head.version = pick(&[Version::HTTP_11, Version::HTTP_10, Version::HTTP_09], *i);
            }
            Edit::Status(i) => {
                if let Some(status) = head.status.as_deref_mut() {
                    *status = StatusCode::from_u16(pick(&[101, 200, 400, 426, 302], *i))
                        .expect("a valid status");
                }
            }
        }
    }
}

/// How a handshake ended, in the reference's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Accepted,
    /// Refused with 400 (server) / a failed handshake (client), for this rule.
    Refused(&'static str),
    /// Refused with 426 for the version.
    WrongVersion,
}

/// The trimmed values of every line of a field (RFC 9110 §5.5: whitespace around a value
/// is not part of it); lines that are not visible ASCII count as empty.
fn field_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim_matches([' ', '\t'])
                .to_owned()
        })
        .collect()
}

/// The elements of a comma-separated list field (RFC 9110 §5.6.1), empty ones dropped.
fn list_elements(headers: &HeaderMap, name: &str) -> Vec<String> {
    let mut elements = Vec::new();
    for value in headers.get_all(name) {
        // A line of obs-text is one element that matches nothing.
        let text = value.to_str().unwrap_or("\u{fffd}");
        for element in text.split(',') {
            let element = element.trim_matches([' ', '\t']);
            if !element.is_empty() {
                elements.push(element.to_owned());
            }
        }
    }
    elements
}

fn list_has(headers: &HeaderMap, name: &str, token: &str) -> bool {
    list_elements(headers, name)
        .iter()
        .any(|e| e.eq_ignore_ascii_case(token))
}

/// Whether `key` is the base64 of 16 bytes (RFC 6455 §4.1 item 7): 22 characters of the
/// base64 alphabet, the last one carrying only 2 bits, then `==` (RFC 4648 §3.5: the
/// unused bits must be zero).
fn is_sixteen_byte_base64(key: &str) -> bool {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = key.as_bytes();
    bytes.len() == 24
        && bytes.ends_with(b"==")
        && bytes[..22]
            .iter()
            .all(|&b| ALPHABET.as_bytes().contains(&b))
        && ALPHABET
            .find(char::from(bytes[21]))
            .is_some_and(|i| i & 0xf == 0)
}

/// RFC 6455 §4.2.1, read item by item. `Host` (item 2) is left to the HTTP/1.1 layer, which
/// refuses a request without one before the handshake sees it; `Origin` (item 7) is the
/// application's to judge.
pub fn server_verdict(request: &Request<()>) -> Verdict {
    let headers = request.headers();
    // Item 1: an HTTP/1.1 or higher GET request.
    if request.method().as_str() != "GET" {
        return Verdict::Refused("method");
    }
    if request.version() < Version::HTTP_11 {
        return Verdict::Refused("version");
    }
    // Items 3 and 4.
    if !list_has(headers, "upgrade", "websocket") {
        return Verdict::Refused("upgrade");
    }
    if !list_has(headers, "connection", "upgrade") {
        return Verdict::Refused("connection");
    }
    // Item 6, and §4.4: any version but 13 gets 426.
    if field_values(headers, "sec-websocket-version") != ["13"] {
        return Verdict::WrongVersion;
    }
    // Item 5.
    match &field_values(headers, "sec-websocket-key")[..] {
        [key] if is_sixteen_byte_base64(key) => Verdict::Accepted,
        _ => Verdict::Refused("key"),
    }
}

fn verdict_of_server(result: &Result<(Response<()>, Negotiated), HandshakeError>) -> Verdict {
    match result {
        Ok(_) => Verdict::Accepted,
        Err(HandshakeError::UnsupportedVersion) => Verdict::WrongVersion,
        Err(HandshakeError::BadRequest(why)) => Verdict::Refused(why),
        Err(other) => panic!("the server side failed with a client-side error: {other:?}"),
    }
}

/// RFC 6455 §4.1's checks of the server's answer ("the client MUST..."), in order; the
/// extensions answer beyond "none unless offered" is `ws_extensions`' to check.
pub fn client_verdict(
    response: &Response<()>,
    key: &str,
    offered: &[&str],
    offered_deflate: bool,
) -> Verdict {
    let headers = response.headers();
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Verdict::Refused("status");
    }
    if !list_has(headers, "upgrade", "websocket") || !list_has(headers, "connection", "upgrade") {
        return Verdict::Refused("upgrade fields");
    }
    if field_values(headers, "sec-websocket-accept") != [accept_key(key.as_bytes())] {
        return Verdict::Refused("accept");
    }
    match &list_elements(headers, "sec-websocket-protocol")[..] {
        [] => {}
        [one] if offered.contains(&one.as_str()) => {}
        _ => return Verdict::Refused("protocol"),
    }
    if !offered_deflate
        && field_values(headers, "sec-websocket-extensions")
            .iter()
            .any(|v| {
                v.split(',')
                    .any(|e| !e.trim_matches([' ', '\t']).is_empty())
            })
    {
        return Verdict::Refused("extensions");
    }
    Verdict::Accepted
}

/// Runs every check on one case.
pub fn check_handshake(case: &HandshakeCase) {
    let uri = Uri::from_static("ws://example.com/chat");
    let names = |indices: &[u8]| -> Vec<&'static str> {
        indices
            .iter()
            .take(6)
            .map(|&i| pick(&PROTOCOLS, i))
            .collect()
    };
    // Each side's settings: permessage-deflate as its byte says, or none.
    let config = |byte: Option<u8>| {
        byte.map_or_else(
            || {
                let mut plain = WsConfig::default();
                plain.deflate = None;
                plain
            },
            extensions_config,
        )
    };
    let (mut offered, supported) = (names(&case.offered), names(&case.supported));
    let (client_config, server_config) = (config(case.client_deflate), config(case.server_deflate));

    // The client refuses names that are not tokens, and only those.
    let built = ClientHandshake::new(&uri, case.key, &offered, &client_config);
    assert_eq!(
        built.is_err(),
        !offered.iter().all(|p| is_token(p)),
        "offered {offered:?}: {:?}",
        built.as_ref().err()
    );
    offered.retain(|p| is_token(p));
    let (client, request) = ClientHandshake::new(&uri, case.key, &offered, &client_config)
        .expect("token names are accepted");
    let key = base64(&case.key);
    assert_eq!(request.headers()["sec-websocket-key"], key.as_str());

    // Round trip, unedited.
    let (response, negotiated) =
        accept(&request, &supported, &server_config).expect("an unedited request is accepted");
    assert_eq!(
        client.validate(&response).as_ref(),
        Ok(&negotiated),
        "both sides agree on what was negotiated"
    );
    let chosen = supported
        .iter()
        .find(|p| is_token(p) && offered.contains(p));
    assert_eq!(negotiated.protocol.as_deref(), chosen.copied());

    // The server on the edited request.
    let (mut parts, ()) = request.into_parts();
    apply(
        Head {
            headers: &mut parts.headers,
            version: &mut parts.version,
            method: Some(&mut parts.method),
            status: None,
        },
        &case.request_edits,
    );
    let request = Request::from_parts(parts, ());
    let result = accept(&request, &supported, &server_config);
    let expected = server_verdict(&request);
    let got = verdict_of_server(&result);
    let same = match (expected, got) {
        (Verdict::Refused(_), Verdict::Refused(_)) => true,
        (a, b) => a == b,
    };
    assert!(
        same,
        "server: reference {expected:?}, tether {got:?}\nrequest: {request:?}"
    );
    let answer = match result {
        Ok((response, negotiated)) => {
            check_accepted(
                &request,
                &response,
                &negotiated,
                &offered_tokens(&request),
                &supported,
                &server_config,
            );
            response
        }
        Err(error) => {
            check_refusal(&error);
            template_answer(&key)
        }
    };

    // The client on the edited answer.
    let (mut parts, ()) = answer.into_parts();
    apply(
        Head {
            headers: &mut parts.headers,
            version: &mut parts.version,
            method: None,
            status: Some(&mut parts.status),
        },
        &case.response_edits,
    );
    let answer = Response::from_parts(parts, ());
    let result = client.validate(&answer);
    let expected = client_verdict(&answer, &key, &offered, client_config.deflate.is_some());
    match (&result, expected) {
        (Ok(negotiated), Verdict::Accepted) => {
            if let Some(protocol) = &negotiated.protocol {
                assert!(offered.contains(&protocol.as_str()));
            }
            assert!(negotiated.deflate.is_none() || client_config.deflate.is_some());
        }
        // The extensions answer may still be refused when compression was offered.
        (Err(HandshakeError::Extensions(_)), Verdict::Accepted) => {
            assert!(client_config.deflate.is_some())
        }
        (Err(_), Verdict::Refused(_)) => {}
        (result, expected) => {
            panic!("client: reference {expected:?}, tether {result:?}\nanswer: {answer:?}")
        }
    }
}

/// The subprotocols a request offers, as the server reads them.
fn offered_tokens(request: &Request<()>) -> Vec<String> {
    list_elements(request.headers(), "sec-websocket-protocol")
}

fn check_accepted(
    request: &Request<()>,
    response: &Response<()>,
    negotiated: &Negotiated,
    offered: &[String],
    supported: &[&str],
    config: &WsConfig,
) {
    let headers = response.headers();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(list_has(headers, "upgrade", "websocket"));
    assert!(list_has(headers, "connection", "upgrade"));
    let key = &field_values(request.headers(), "sec-websocket-key")[0];
    assert_eq!(
        field_values(headers, "sec-websocket-accept"),
        [accept_key(key.as_bytes())]
    );
    // The server's first choice among the names offered, and that name in the answer.
    let chosen = supported
        .iter()
        .find(|p| is_token(p) && offered.iter().any(|o| o == *p));
    assert_eq!(negotiated.protocol.as_deref(), chosen.copied());
    assert_eq!(
        list_elements(headers, "sec-websocket-protocol"),
        chosen
            .map(|c| c.to_string())
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert!(negotiated.deflate.is_none() || config.deflate.is_some());
    assert_eq!(
        negotiated.deflate.is_some(),
        headers.contains_key("sec-websocket-extensions")
    );
}

fn check_refusal(error: &HandshakeError) {
    let response = error.response();
    assert_eq!(response.status(), error.status());
    assert!(matches!(response.status().as_u16(), 400 | 426));
    assert_eq!(
        response.status() == StatusCode::UPGRADE_REQUIRED,
        response
            .headers()
            .get("sec-websocket-version")
            .is_some_and(|v| v == "13")
    );
    assert_eq!(response.headers()["content-length"], "0");
}

/// A `101` the client would accept, for the response edits when the server refused.
fn template_answer(key: &str) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("connection", HeaderValue::from_static("Upgrade"));
    headers.insert(
        "sec-websocket-accept",
        HeaderValue::from_str(&accept_key(key.as_bytes())).expect("base64 is a field value"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case() -> HandshakeCase {
        HandshakeCase {
            key: *b"the sample nonce",
            offered: vec![0, 1],
            supported: vec![1, 0],
            client_deflate: Some(0),
            server_deflate: Some(0x30),
            request_edits: Vec::new(),
            response_edits: Vec::new(),
        }
    }

    #[test]
    fn base64_matches_the_rfc_example() {
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert!(is_sixteen_byte_base64("dGhlIHNhbXBsZSBub25jZQ=="));
        // Non-zero unused bits, a wrong length, a foreign character.
        assert!(!is_sixteen_byte_base64("dGhlIHNhbXBsZSBub25jZR=="));
        assert!(!is_sixteen_byte_base64("Zm9v"));
        assert!(!is_sixteen_byte_base64("dGhlIHNhbXBsZSBub25jZ-=="));
    }

    #[test]
    fn an_unedited_handshake_agrees() {
        check_handshake(&case());
    }

    #[test]
    fn every_single_edit_agrees_with_the_reference() {
        let fields = [
            Field::Upgrade,
            Field::Connection,
            Field::Key,
            Field::Version,
            Field::Protocol,
            Field::Extensions,
            Field::Accept,
        ];
        let mut edits = vec![
            Edit::Method(1),
            Edit::Method(4),
            Edit::Version(1),
            Edit::Status(1),
        ];
        for field in fields {
            edits.push(Edit::Remove(field));
            edits.push(Edit::Append(field, Value::Padded));
            edits.push(Edit::Replace(field, Value::Padded));
            edits.push(Edit::Replace(field, Value::Base64(vec![1; 15])));
            edits.push(Edit::Replace(
                field,
                Value::AcceptOf(b"the sample nonce".to_vec()),
            ));
            edits.push(Edit::Replace(field, Value::Bytes(b"\xff".to_vec())));
            for word in 0..WORDS.len() as u8 {
                edits.push(Edit::Replace(field, Value::Word(word)));
                edits.push(Edit::Append(field, Value::Word(word)));
            }
        }
        for edit in edits {
            for deflate in [None, Some(0)] {
                let mut case = case();
                case.client_deflate = deflate;
                case.request_edits = vec![edit.clone()];
                case.response_edits = vec![edit.clone()];
                check_handshake(&case);
            }
        }
    }

    #[test]
    fn names_that_are_not_tokens_are_refused_by_the_client() {
        let mut case = case();
        case.offered = vec![0, 5, 6, 7];
        case.supported = vec![5, 6, 0];
        check_handshake(&case);
    }
}
