//! The opening handshake (RFC 6455 §4), on `http` heads that travel through the h1
//! connections: the client builds the upgrade request and checks the `101`; the server checks
//! the request and builds the `101` (or learns what to refuse with).

use super::config::WsConfig;
use super::deflate::{self, DeflateNegotiationError, DeflateParams};
use crate::syntax::{is_token, trim_ows};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use sha1::{Digest, Sha1};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const SEC_WEBSOCKET_KEY: &str = "sec-websocket-key";
const SEC_WEBSOCKET_ACCEPT: &str = "sec-websocket-accept";
const SEC_WEBSOCKET_VERSION: &str = "sec-websocket-version";
const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";
const SEC_WEBSOCKET_EXTENSIONS: &str = "sec-websocket-extensions";

/// What the handshake settled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Negotiated {
    /// The subprotocol both sides agreed on.
    pub protocol: Option<String>,
    /// permessage-deflate parameters, if compression was agreed.
    pub deflate: Option<DeflateParams>,
}

/// A refused or failed handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request is not a WebSocket upgrade we can accept; the string names the rule.
    #[error("not a valid WebSocket upgrade request: {0}")]
    BadRequest(&'static str),
    /// The client wants a protocol version other than 13 (answer 426 with
    /// `Sec-WebSocket-Version: 13`).
    #[error("unsupported WebSocket version")]
    UnsupportedVersion,
    /// The URI cannot be used for a WebSocket (not ws/wss/http/https, or no host).
    #[error("invalid WebSocket URI")]
    InvalidUri,
    /// The server answered with this status instead of `101`.
    #[error("server answered {0} instead of 101")]
    NotSwitching(StatusCode),
    /// The `101` lacks `Upgrade: websocket` or `Connection: upgrade`.
    #[error("101 response without the upgrade headers")]
    MissingUpgradeHeaders,
    /// `Sec-WebSocket-Accept` is missing or does not match our key.
    #[error("wrong Sec-WebSocket-Accept")]
    BadAccept,
    /// The server chose a subprotocol we did not offer, or several.
    #[error("server chose a subprotocol we did not offer")]
    UnofferedProtocol,
    /// The server's extensions answer is not acceptable.
    #[error(transparent)]
    Extensions(#[from] DeflateNegotiationError),
    /// The server named extensions although we offered none.
    #[error("server enabled an extension we did not offer")]
    UnofferedExtension,
}

impl HandshakeError {
    /// The status a server answers a refused request with: 426 for the version, else 400.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The refusal response head (with `Sec-WebSocket-Version: 13` on a 426, and an empty
    /// body), for a server to send.
    pub fn response(&self) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        if self.status() == StatusCode::UPGRADE_REQUIRED {
            headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        response
    }
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    BASE64.encode(sha.finalize())
}

/// What a field line that is not visible ASCII (obs-text) reads as: a value nothing
/// matches, so that it still counts (a second `Sec-WebSocket-Key`, an unknown subprotocol)
/// rather than vanishing.
const OPAQUE: &str = "\u{fffd}";

/// The list elements of every `name` field, without the whitespace around them; empty
/// elements (`a,,b`, a lone `,`) name nothing and are skipped.
fn tokens<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or(OPAQUE))
        .flat_map(|v| v.split(','))
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// Every `name` field's value, without the whitespace around it (which is not part of a
/// field value, RFC 9110 §5.5, though a programmatically built `HeaderValue` may hold it).
fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().map_or(OPAQUE, trim_ows))
        .collect()
}

/// The client side of the handshake: remembers what it offered to check the answer.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    expected_accept: String,
    protocols: Vec<String>,
    config: WsConfig,
}

impl ClientHandshake {
    /// Builds the upgrade request for `uri` (`ws://`, `wss://`, or `http(s)://`), with the
    /// key made from 16 random bytes of the host's, the `protocols` to offer (in order of
    /// preference; each must be a token) and permessage-deflate if `config.deflate` is
    /// set. Add headers (Origin, cookies, auth) to the request as needed before sending it.
    pub fn new(
        uri: &Uri,
        key: [u8; 16],
        protocols: &[&str],
        config: &WsConfig,
    ) -> Result<(ClientHandshake, Request<()>), HandshakeError> {
        match uri.scheme_str() {
            Some("ws" | "wss" | "http" | "https") => {}
            _ => return Err(HandshakeError::InvalidUri),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(HandshakeError::InvalidUri);
        }
        let key = BASE64.encode(key);
        let mut request = Request::new(());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let key_value = HeaderValue::from_str(&key).map_err(|_| HandshakeError::InvalidUri)?;
        headers.insert(SEC_WEBSOCKET_KEY, key_value);
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        // A subprotocol name must be a token (RFC 6455 §4.1): anything else could not be
        // told apart in the comma-separated list.
        if !protocols.iter().all(|p| is_token(p.as_bytes())) {
            return Err(HandshakeError::BadRequest("invalid subprotocol name"));
        }
        if !protocols.is_empty() {
            let list = HeaderValue::from_str(&protocols.join(", "))
                .map_err(|_| HandshakeError::BadRequest("invalid subprotocol name"))?;
            headers.insert(SEC_WEBSOCKET_PROTOCOL, list);
        }
        if let Some(deflate) = &config.deflate {
            let offer = HeaderValue::from_str(&deflate::client_offer(deflate))
                .map_err(|_| HandshakeError::BadRequest("invalid extension offer"))?;
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, offer);
        }
        let handshake = ClientHandshake {
            expected_accept: accept_key(key.as_bytes()),
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            config: config.clone(),
        };
        Ok((handshake, request))
    }

    /// Checks the server's answer (RFC 6455 §4.1): `101`, the upgrade headers, the accept
    /// key, and that the subprotocol and extensions are among those offered.
    pub fn validate(&self, response: &Response<()>) -> Result<Negotiated, HandshakeError> {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::NotSwitching(response.status()));
        }
        let headers = response.headers();
        if !has_token(headers, "upgrade", "websocket")
            || !has_token(headers, "connection", "upgrade")
        {
            return Err(HandshakeError::MissingUpgradeHeaders);
        }
        // Exactly one field line with our value: a second one, even equal, is a list.
        if values(headers, SEC_WEBSOCKET_ACCEPT) != [self.expected_accept.as_str()] {
            return Err(HandshakeError::BadAccept);
        }
        let chosen: Vec<&str> = tokens(headers, SEC_WEBSOCKET_PROTOCOL).collect();
        let protocol = match chosen[..] {
            [] => None,
            [one] if self.protocols.iter().any(|p| p == one) => Some(one.to_owned()),
            _ => return Err(HandshakeError::UnofferedProtocol),
        };
        let extensions = values(headers, SEC_WEBSOCKET_EXTENSIONS);
        let deflate = match &self.config.deflate {
            Some(config) => deflate::client_accept(config, &extensions)?,
            // Empty list elements (`,`) name nothing (RFC 9110 §5.6.1.2).
            None if tokens(headers, SEC_WEBSOCKET_EXTENSIONS).next().is_some() => {
                return Err(HandshakeError::UnofferedExtension)
            }
            None => None,
        };
        Ok(Negotiated { protocol, deflate })
    }
}

/// The server side: checks an upgrade request (RFC 6455 §4.2.1) and builds the `101`.
///
/// `protocols` are the subprotocols the server speaks, in order of preference; the first
/// one the client also offered is chosen (names that are not tokens never are). On
/// refusal, answer with [`HandshakeError::response`].
pub fn accept(
    request: &Request<()>,
    protocols: &[&str],
    config: &WsConfig,
) -> Result<(Response<()>, Negotiated), HandshakeError> {
    let headers = request.headers();
    if request.method() != Method::GET {
        return Err(HandshakeError::BadRequest("method must be GET"));
    }
    if request.version() < Version::HTTP_11 {
        return Err(HandshakeError::BadRequest("HTTP/1.1 or later required"));
    }
    if !has_token(headers, "upgrade", "websocket") {
        return Err(HandshakeError::BadRequest("missing Upgrade: websocket"));
    }
    if !has_token(headers, "connection", "upgrade") {
        return Err(HandshakeError::BadRequest("missing Connection: upgrade"));
    }
    let version = values(headers, SEC_WEBSOCKET_VERSION);
    if version != ["13"] {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = match values(headers, SEC_WEBSOCKET_KEY)[..] {
        [key] => key,
        _ => {
            return Err(HandshakeError::BadRequest(
                "need exactly one Sec-WebSocket-Key",
            ))
        }
    };
    match BASE64.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => {
            return Err(HandshakeError::BadRequest(
                "Sec-WebSocket-Key is not 16 bytes in base64",
            ))
        }
    }

    let offered: Vec<&str> = tokens(headers, SEC_WEBSOCKET_PROTOCOL).collect();
    let protocol = protocols
        .iter()
        .find(|p| is_token(p.as_bytes()) && offered.contains(p))
        .map(|p| p.to_string());
    let deflate = config.deflate.as_ref().and_then(|deflate| {
        deflate::server_negotiate(deflate, &values(headers, SEC_WEBSOCKET_EXTENSIONS))
    });

    let mut response = Response::new(());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let out = response.headers_mut();
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = HeaderValue::from_str(&accept_key(key.as_bytes()))
        .map_err(|_| HandshakeError::BadRequest("invalid key"))?;
    out.insert(SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(protocol) = &protocol {
        // A token is always a valid field value.
        let value = HeaderValue::from_str(protocol)
            .map_err(|_| HandshakeError::BadRequest("invalid subprotocol name"))?;
        out.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    let deflate = match deflate {
        Some((params, answer)) => match HeaderValue::from_str(&answer) {
            Ok(value) => {
                out.insert(SEC_WEBSOCKET_EXTENSIONS, value);
                Some(params)
            }
            Err(_) => None,
        },
        None => None,
    };
    Ok((response, Negotiated { protocol, deflate }))
}
