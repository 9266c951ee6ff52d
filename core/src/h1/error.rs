//! Errors of the HTTP/1.1 state machines, split by who is to blame.
//!
//! [`RemoteError`]: the peer broke the protocol or a limit. It carries a typed
//! [`RemoteErrorKind`], the offset in the received byte stream where the problem was found, and
//! the status a server should answer ([`RemoteError::status`]).
//!
//! [`LocalError`]: we (the code driving the connection) misused the API, for example sending
//! a body on a `204` or more bytes than the declared `Content-Length`.

use http::StatusCode;

/// Any error of an HTTP/1.1 connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer violated HTTP/1.1 or one of our limits.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The API was used in a way the protocol does not allow.
    #[error(transparent)]
    Local(#[from] LocalError),
}

impl Error {
    /// The remote error, if the peer is to blame.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            Error::Remote(e) => Some(e),
            Error::Local(_) => None,
        }
    }
}

/// The peer violated HTTP/1.1 or exceeded a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer error at byte {offset}: {kind}")]
pub struct RemoteError {
    kind: RemoteErrorKind,
    offset: u64,
}

impl RemoteError {
    pub(crate) fn new(kind: RemoteErrorKind, offset: u64) -> RemoteError {
        RemoteError { kind, offset }
    }

    /// What was wrong.
    pub fn kind(&self) -> RemoteErrorKind {
        self.kind
    }

    /// Offset in the connection's received byte stream (counting from the first byte ever
    /// received) where the problem was found: the offending byte or element where the parser
    /// can tell, otherwise the start of the message head it was parsing.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The status a server should answer with (the same as [`RemoteErrorKind::status`]).
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

/// What the peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteErrorKind {
    // ---- message head ----
    /// The message head (start line and fields) is larger than `Limits::max_head_size`.
    #[error("message head too large")]
    HeadTooLarge,
    /// More header fields than `Limits::max_headers`.
    #[error("too many header fields")]
    TooManyHeaders,
    /// The request-target is longer than `Limits::max_target_len`.
    #[error("request-target too long")]
    TargetTooLong,
    /// The method is not a valid token.
    #[error("invalid method")]
    InvalidMethod,
    /// The request-target is malformed or not allowed for the method.
    #[error("invalid request-target")]
    InvalidTarget,
    /// The request line is malformed (not `method SP target SP HTTP/x.y`).
    #[error("malformed request line")]
    InvalidRequestLine,
    /// The start line names an HTTP version other than 1.0 and 1.1 (505 for requests).
    #[error("unsupported or malformed HTTP version")]
    InvalidVersion,
    /// The status code is not three digits, or the status line is malformed.
    #[error("invalid status line")]
    InvalidStatus,
    /// A field name is empty or contains bytes outside `token`, or whitespace precedes the colon.
    #[error("invalid header field name")]
    InvalidHeaderName,
    /// A field value contains a forbidden byte (control characters, bare CR).
    #[error("invalid header field value")]
    InvalidHeaderValue,
    /// A field line is folded over several lines (obs-fold), which RFC 9112 §5.2 forbids.
    #[error("obsolete line folding")]
    ObsFold,
    /// A CR not followed by LF, or other line-ending damage.
    #[error("invalid line ending")]
    InvalidLineEnding,
    /// An HTTP/1.1 request without a `Host` field.
    #[error("missing Host header")]
    MissingHost,
    /// More than one `Host` field.
    #[error("more than one Host header")]
    MultipleHost,
    /// A `Host` value that is not a valid authority.
    #[error("invalid Host header")]
    InvalidHost,
    // ---- framing ----
    /// Both `Content-Length` and `Transfer-Encoding` in a request (a smuggling vector).
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// A CONNECT request declaring content (`Transfer-Encoding`, or a `Content-Length` other
    /// than 0): RFC 9110 §9.3.6 says it has none, while RFC 9112 §6.3 would frame the
    /// declared body, so a proxy and a server could disagree on where the next request starts.
    #[error("CONNECT request with content")]
    ContentOnConnect,
    /// `Content-Length` is not plain digits, or overflows.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// A line of a request head ended in a bare LF (RFC 9112 §2.2); refused unless
    /// [`Leniency::bare_lf`](super::Leniency::bare_lf).
    #[error("bare LF line end")]
    BareLineFeed,
    /// `Content-Length` given more than once in a request, even with the same value;
    /// refused unless [`Leniency::duplicate_content_length`](super::Leniency::duplicate_content_length).
    #[error("duplicate Content-Length")]
    DuplicateContentLength,
    /// An `Expect` other than `100-continue` (417); refused unless
    /// [`Leniency::unknown_expectation`](super::Leniency::unknown_expectation).
    #[error("unsupported expectation")]
    UnsupportedExpectation,
    /// Several `Content-Length` values that differ.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// `Transfer-Encoding` whose final coding is not `chunked`, or a malformed list.
    #[error("invalid Transfer-Encoding")]
    InvalidTransferEncoding,
    /// A transfer coding we do not implement (anything but `chunked`).
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// `Transfer-Encoding` in an HTTP/1.0 message.
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    TransferEncodingInHttp10,
    /// The body is larger than `Limits::max_body_size`.
    #[error("body too large")]
    BodyTooLarge,
    // ---- chunked coding ----
    /// A chunk-size line that is not hex digits followed by an optional extension and CRLF.
    #[error("invalid chunk size line")]
    InvalidChunkSize,
    /// A chunk size that does not fit in 64 bits.
    #[error("chunk size overflows")]
    ChunkSizeOverflow,
    /// A bare LF where a chunk line or a trailer field line must end in CRLF.
    #[error("bare LF in chunk line")]
    BareLfInChunk,
    /// Chunk data not followed by exactly CRLF.
    #[error("chunk data not followed by CRLF")]
    InvalidChunkTerminator,
    /// Chunk extensions add up to more than `Limits::max_chunk_ext_size` in one body.
    #[error("chunk extensions too large")]
    ChunkExtensionTooLarge,
    /// The trailer section is larger than `Limits::max_trailer_size` (or has too many fields).
    #[error("trailer section too large")]
    TrailersTooLarge,
    /// The trailer section is malformed.
    #[error("invalid trailer section")]
    InvalidTrailers,
    // ---- connection ----
    /// The connection ended in the middle of a message.
    #[error("connection closed in the middle of a message")]
    IncompleteMessage,
    /// The server closed the connection before sending any byte of a response.
    #[error("connection closed before a response arrived")]
    ClosedBeforeResponse,
    /// A `101 Switching Protocols` that was not asked for, or a response without a request.
    #[error("unexpected response")]
    UnexpectedResponse,
    /// The request head did not arrive within the head timeout.
    #[error("request head timed out")]
    HeadTimeout,
    /// No byte of the request body arrived within the body read timeout.
    #[error("request body timed out")]
    BodyTimeout,
}

impl RemoteErrorKind {
    /// The status a server should answer a request with this problem.
    pub fn status(self) -> StatusCode {
        use RemoteErrorKind::*;
        match self {
            HeadTooLarge | TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            TargetTooLong => StatusCode::URI_TOO_LONG,
            InvalidVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedExpectation => StatusCode::EXPECTATION_FAILED,
            HeadTimeout | BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The API was used in a way HTTP/1.1 does not allow. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The call does not fit the connection's state (e.g. a response before any request,
    /// body data before a head, anything after the connection closed).
    #[error("cannot {action} now: {state}")]
    WrongState {
        /// What was attempted.
        action: &'static str,
        /// Why it is not possible.
        state: &'static str,
    },
    /// This message cannot carry a body (HEAD response, 1xx, 204, 304, a request without
    /// `Content-Length` or chunked `Transfer-Encoding`).
    #[error("this message has no body")]
    BodyNotAllowed,
    /// More body bytes than the declared `Content-Length`.
    #[error("body longer than its Content-Length")]
    BodyTooLong,
    /// The message ended with fewer body bytes than the declared `Content-Length`.
    #[error("body shorter than its Content-Length")]
    BodyTooShort,
    /// Trailers on a message that is not chunked.
    #[error("trailers need chunked Transfer-Encoding")]
    TrailersNotAllowed,
    /// The head cannot be sent as given; the string names the rule.
    #[error("invalid message head: {0}")]
    InvalidHead(&'static str),
}

impl LocalError {
    pub(crate) const fn state(action: &'static str, state: &'static str) -> LocalError {
        LocalError::WrongState { action, state }
    }
}
