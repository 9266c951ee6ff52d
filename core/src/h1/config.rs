//! Limits and timeouts, with defaults a server operator would expect.

use core::time::Duration;

/// Caps on every size the peer controls. Each one, when exceeded, is a typed
/// [`RemoteErrorKind`](super::RemoteErrorKind) carrying the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Start line plus header fields, in bytes (431 when exceeded). Default 16 KiB, like
    /// Node.js and h11.
    pub max_head_size: usize,
    /// Number of header fields (431). Also caps trailer fields. Default 100, like hyper.
    pub max_headers: usize,
    /// Length of the request-target (414). Default 8 KiB, like Apache and nginx.
    pub max_target_len: usize,
    /// Total bytes of chunk extensions in one body (400). Default 16 KiB, like hyper.
    pub max_chunk_ext_size: usize,
    /// Bytes of the trailer section (400). Default 16 KiB.
    pub max_trailer_size: usize,
    /// Bytes of one message body (413), declared or received. Default for servers 1 MiB
    /// (aiohttp's `client_max_size`); clients default to no limit, since they stream.
    pub max_body_size: u64,
}

impl Limits {
    /// The server defaults.
    pub const fn server() -> Limits {
        Limits {
            max_head_size: 16 * 1024,
            max_headers: 100,
            max_target_len: 8 * 1024,
            max_chunk_ext_size: 16 * 1024,
            max_trailer_size: 16 * 1024,
            max_body_size: 1024 * 1024,
        }
    }

    /// The client defaults: as a server's, but with no body limit (response bodies are
    /// streamed; a client that buffers sets its own).
    pub const fn client() -> Limits {
        Limits {
            max_body_size: u64::MAX,
            ..Limits::server()
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::server()
    }
}

/// Deadlines of a server connection. `None` disables one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerTimeouts {
    /// The whole request head must arrive within this time (slowloris defence). It runs from
    /// the connection's start for the first request and from a request's first byte for the
    /// next ones. On expiry: `408` if a request had begun, then close. Default 30 s.
    pub head: Option<Duration>,
    /// How long a keep-alive connection may sit idle between a response and the next
    /// request's first byte. On expiry: close quietly. Default 75 s.
    pub keep_alive: Option<Duration>,
    /// The longest gap between two reads of request body bytes, counted only while the
    /// connection is waiting for the peer (not while the application is busy). On expiry:
    /// `408` if no response has started, then close. Default 30 s.
    pub body_read: Option<Duration>,
}

impl Default for ServerTimeouts {
    fn default() -> ServerTimeouts {
        ServerTimeouts {
            head: Some(Duration::from_secs(30)),
            keep_alive: Some(Duration::from_secs(75)),
            body_read: Some(Duration::from_secs(30)),
        }
    }
}

/// Request syntax a server refuses by default although the RFCs allow accepting it, because
/// a front proxy and a back server that disagree on it disagree on where a message ends
/// (request smuggling). Each field turns one refusal off, for servers that must accept old or
/// sloppy clients; all are `false` by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leniency {
    /// Accept a bare LF as a line end in the request head. RFC 9112 §2.2 lets a recipient
    /// accept it; a proxy that does not (and treats the LF as part of a line) sees a
    /// different head, and a header hidden that way can carry its own framing. Refused with
    /// `400` ([`BareLineFeed`](super::RemoteErrorKind::BareLineFeed)) by default.
    pub bare_lf: bool,
    /// Accept a `Content-Length` repeated (as several fields or a list) when every value is
    /// the same, as one. RFC 9110 §8.6 allows merging; a proxy that takes the first field
    /// while we take the last is one edit away from smuggling. Refused with `400`
    /// ([`DuplicateContentLength`](super::RemoteErrorKind::DuplicateContentLength)) by
    /// default; differing values are refused either way.
    pub duplicate_content_length: bool,
    /// Ignore an `Expect` naming anything but `100-continue`. RFC 9110 §10.1.1 lets a
    /// server answer `417`; ignoring it means a client that waits for the expectation's
    /// answer and a proxy that does not disagree about when the body comes. Refused with
    /// `417` ([`UnsupportedExpectation`](super::RemoteErrorKind::UnsupportedExpectation)) by
    /// default.
    pub unknown_expectation: bool,
}

/// Configuration of a [`ServerConnection`](super::ServerConnection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConnectionConfig {
    /// Size limits.
    pub limits: Limits,
    /// Deadlines.
    pub timeouts: ServerTimeouts,
    /// What is refused by default and may be accepted (all strict by default).
    pub leniency: Leniency,
}

/// Configuration of a [`ClientConnection`](super::ClientConnection).
///
/// A client is lenient where browsers and curl are, since refusing a server's response
/// helps nobody: bare LF line ends and a `Content-Length` repeated with the same value are
/// accepted (differing values, `Content-Length` with `Transfer-Encoding` in HTTP/1.0, and
/// everything that makes the end of a message ambiguous are still errors).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConnectionConfig {
    /// Size limits for responses.
    pub limits: Limits,
    /// Send request targets in absolute form (`GET http://host/path HTTP/1.1`), as a request
    /// to an HTTP forward proxy must be (RFC 9112 §3.2.2); userinfo is never sent. Default:
    /// origin form (`GET /path`).
    pub absolute_form: bool,
}

impl Default for ClientConnectionConfig {
    fn default() -> ClientConnectionConfig {
        ClientConnectionConfig {
            limits: Limits::client(),
            absolute_form: false,
        }
    }
}
