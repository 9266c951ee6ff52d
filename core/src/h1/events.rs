//! What the connections report, one event at a time, through `poll_event`.

use super::error::Error;
use bytes::Bytes;
use http::{HeaderMap, Request, Response};

/// An event on a [`ServerConnection`](super::ServerConnection).
///
/// A request arrives as `Request`, then zero or more `Data`, then `End`. Data boundaries carry
/// no meaning: the same bytes may arrive in different pieces.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A request head, and what its framing says of the body that follows. Answer it with
    /// `send_response` (after any `send_informational`).
    Request {
        /// The request line and header fields.
        head: Request<()>,
        /// Whether a body follows and how long it is, as the core framed it (RFC 9112 §6.3).
        body: RequestBody,
    },
    /// A piece of the request body.
    Data(Bytes),
    /// The request is complete, with the trailer fields of a chunked body, if any.
    End {
        /// Trailer fields (only for chunked bodies that had some).
        trailers: Option<HeaderMap>,
    },
    /// We answered an upgrade with `101` (or a CONNECT with `2xx`): the connection now speaks
    /// another protocol. `trailing` holds the bytes already received after the request; hand
    /// them, and the transport, to that protocol. Drain `poll_transmit` first.
    Upgraded {
        /// Bytes received past the request, belonging to the new protocol.
        trailing: Bytes,
    },
    /// The peer closed the connection cleanly between requests. Nothing follows.
    Closed,
    /// The peer broke the protocol or a limit, or a deadline passed. Where a response was
    /// still owed, the core has queued the answer (`400`, `408`, `413`, `431`...) with
    /// `Connection: close`. Nothing follows; drain `poll_transmit` and close.
    Error(Error),
}

/// The body a request announced, as the core framed it: adapters never re-read
/// `Content-Length` or `Transfer-Encoding` to learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestBody {
    /// No body (no framing headers, or `Content-Length: 0`): `End` follows at once.
    Empty,
    /// Exactly this many bytes (more than zero).
    Length(u64),
    /// A chunked body of unknown length.
    Chunked,
}

impl RequestBody {
    /// Whether no body follows.
    pub fn is_empty(self) -> bool {
        self == RequestBody::Empty
    }

    /// The length, when the framing declares it (`Some(0)` for no body).
    pub fn length(self) -> Option<u64> {
        match self {
            RequestBody::Empty => Some(0),
            RequestBody::Length(n) => Some(n),
            RequestBody::Chunked => None,
        }
    }
}

/// An event on a [`ClientConnection`](super::ClientConnection).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An interim `1xx` response (other than `101`), such as `100 Continue` or `103`.
    Informational(Response<()>),
    /// The final response head (also `101`, or a `2xx` to CONNECT, before `Upgraded`).
    Response(Response<()>),
    /// A piece of the response body.
    Data(Bytes),
    /// The response is complete. Ask `is_reusable` whether another request may follow.
    End {
        /// Trailer fields (only for chunked bodies that had some).
        trailers: Option<HeaderMap>,
    },
    /// The server accepted the upgrade (`101`) or CONNECT (`2xx`): the connection now speaks
    /// another protocol; `trailing` holds the bytes already received after the response head.
    Upgraded {
        /// Bytes received past the response head, belonging to the new protocol.
        trailing: Bytes,
    },
    /// The server closed the connection while no request was outstanding.
    Closed,
    /// The server broke the protocol or a limit. Nothing follows.
    Error(Error),
}
