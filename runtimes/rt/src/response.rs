//! What handlers return: [`Response`], a head and a whole or streamed body, and the
//! [`BodySender`] of a streamed one.

use crate::websocket::WebSocket;
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::SinkExt;
use http::header::{HeaderValue, IntoHeaderName};
use http::{HeaderMap, StatusCode};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tether_core::ws as core_ws;

/// Hands the upgraded transport to a waiting WebSocket handler.
pub(crate) type UpgradeTx = oneshot::Sender<WebSocket>;

/// An accepted upgrade, for the connection task to complete once the `101` is out.
pub(crate) type Upgrade = (core_ws::Negotiated, UpgradeTx);

/// How a response body is produced.
pub(crate) enum ResponseBody {
    Empty,
    Full(Bytes),
    Stream(StreamedBody),
}

/// The source of a streamed body, as the connection pumps it.
pub(crate) enum StreamedBody {
    /// The receiving end of a [`BodySender`].
    Channel {
        rx: mpsc::Receiver<Bytes>,
        aborted: Arc<AtomicBool>,
    },
    /// An `http_body::Body` (a tower service's response, `Response::from_http`).
    #[cfg(feature = "tower")]
    Frames(crate::tower::Frames),
}

/// What a streamed body yields next.
pub(crate) enum Piece {
    Data(Bytes),
    /// The body is complete.
    End,
    /// The body is complete and ends with these trailer fields.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    Trailers(HeaderMap),
    /// The source failed or gave up ([`BodySender::abort`]): the body must not look
    /// complete.
    Aborted,
}

impl StreamedBody {
    pub(crate) fn poll_piece(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Piece> {
        use futures_util::StreamExt;
        match self {
            StreamedBody::Channel { rx, aborted } => {
                rx.poll_next_unpin(cx).map(|piece| match piece {
                    Some(data) => Piece::Data(data),
                    None if aborted.load(Ordering::Acquire) => Piece::Aborted,
                    None => Piece::End,
                })
            }
            #[cfg(feature = "tower")]
            StreamedBody::Frames(frames) => frames.poll_piece(cx),
        }
    }
}

/// A response, as a handler returns it.
///
/// ```
/// use http::{header, HeaderValue, StatusCode};
/// use tether_rt::Response;
///
/// let ok = Response::text("hello");
/// let created = Response::empty(StatusCode::CREATED)
///     .header(header::LOCATION, HeaderValue::from_static("/items/7"));
/// assert_eq!(created.status(), StatusCode::CREATED);
/// # let _ = ok;
/// ```
pub struct Response {
    pub(crate) head: http::response::Parts,
    pub(crate) body: ResponseBody,
    /// The upgrade of a `101` the handler got from
    /// [`Request::websocket`](crate::Request::websocket). A middleware that replaces the
    /// response drops it, and the handler's [`PendingWebSocket`](crate::PendingWebSocket)
    /// ends.
    pub(crate) upgrade: Option<Box<Upgrade>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.head.status)
            .finish_non_exhaustive()
    }
}

/// Writes the pieces of a streamed response body; dropping it (every clone) ends the body,
/// complete; [`BodySender::abort`] ends it as failed.
#[derive(Debug, Clone)]
pub struct BodySender {
    tx: mpsc::Sender<Bytes>,
    aborted: Arc<AtomicBool>,
}

/// The client is gone: a streamed response body cannot be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection of this response is closed")]
pub struct ResponseClosed;

impl BodySender {
    /// Sends a piece; waits while the client is slower than the handler (backpressure).
    /// `Err` when the connection is gone. (Clone the sender to send from several places.)
    pub async fn send(&mut self, piece: impl Into<Bytes>) -> Result<(), ResponseClosed> {
        self.tx.send(piece.into()).await.map_err(|_| ResponseClosed)
    }

    /// Gives up on the body (the data source failed): the connection is closed after the
    /// pieces already sent, without the end of the body, so the client sees a body that
    /// failed rather than a shorter one. Ends the body for every clone of this sender.
    pub fn abort(mut self) {
        self.aborted.store(true, Ordering::Release);
        self.tx.close_channel();
    }
}

impl Response {
    fn with_body(status: StatusCode, body: ResponseBody) -> Response {
        let (mut head, ()) = http::Response::new(()).into_parts();
        head.status = status;
        Response {
            head,
            body,
            upgrade: None,
        }
    }

    /// A response with `status` and no body (`Content-Length: 0`, except for the statuses
    /// that never carry one: 1xx, 204 and 304).
    pub fn empty(status: StatusCode) -> Response {
        Response::with_body(status, ResponseBody::Empty)
    }

    /// `200` with a `text/plain; charset=utf-8` body: a `String`, or a `&'static str`
    /// (sent without a copy).
    pub fn text(text: impl Into<Cow<'static, str>>) -> Response {
        let body = match text.into() {
            Cow::Borrowed(text) => Bytes::from_static(text.as_bytes()),
            Cow::Owned(text) => Bytes::from(text),
        };
        Response::bytes(HeaderValue::from_static("text/plain; charset=utf-8"), body)
    }

    /// `200` with a body of the given content type.
    pub fn bytes(content_type: HeaderValue, body: impl Into<Bytes>) -> Response {
        let mut response = Response::with_body(StatusCode::OK, ResponseBody::Full(body.into()));
        response
            .head
            .headers
            .insert(http::header::CONTENT_TYPE, content_type);
        response
    }

    /// `200` with a body streamed by the returned sender (chunked for HTTP/1.1 clients,
    /// close-delimited for HTTP/1.0 ones). The body ends when every sender is dropped.
    pub fn stream(content_type: HeaderValue) -> (Response, BodySender) {
        let (tx, rx) = mpsc::channel(16);
        let aborted = Arc::new(AtomicBool::new(false));
        let body = StreamedBody::Channel {
            rx,
            aborted: aborted.clone(),
        };
        let mut response = Response::with_body(StatusCode::OK, ResponseBody::Stream(body));
        response
            .head
            .headers
            .insert(http::header::CONTENT_TYPE, content_type);
        (response, BodySender { tx, aborted })
    }

    /// This response with a header field set (replacing any of the same name). Names are
    /// `http::header` constants or static strings; values are checked when made
    /// (`HeaderValue::from_static`, `HeaderValue::try_from`), so nothing is dropped here.
    pub fn header(mut self, name: impl IntoHeaderName, value: HeaderValue) -> Response {
        self.head.headers.insert(name, value);
        self
    }

    /// This response with another status.
    pub fn with_status(mut self, status: StatusCode) -> Response {
        self.head.status = status;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The length of the body, when it is known in full (not streamed): what the
    /// `Content-Length` the connection sends will say, unless the header fields set one
    /// themselves. `None` for a streamed body, and for an empty one on the statuses that
    /// never carry a body (1xx, 204, 304).
    pub fn body_len(&self) -> Option<u64> {
        match &self.body {
            ResponseBody::Empty => {
                let status = self.head.status;
                let bodiless = status.is_informational()
                    || status == StatusCode::NO_CONTENT
                    || status == StatusCode::NOT_MODIFIED;
                (!bodiless).then_some(0)
            }
            ResponseBody::Full(bytes) => Some(bytes.len() as u64),
            #[cfg(feature = "tower")]
            ResponseBody::Stream(StreamedBody::Frames(frames)) => frames.exact_len(),
            ResponseBody::Stream(_) => None,
        }
    }

    /// The header fields (without the `Content-Length` of a body known in full and the
    /// `Date`: the connection writes those, see [`Response::body_len`]).
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The header fields, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.head.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_status_length_and_type() {
        let text = Response::text("hi");
        assert_eq!(text.status(), StatusCode::OK);
        assert_eq!(text.body_len(), Some(2));
        assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
        let empty = Response::empty(StatusCode::NO_CONTENT);
        assert_eq!(empty.status(), StatusCode::NO_CONTENT);
        assert_eq!(empty.body_len(), None);
        assert_eq!(Response::empty(StatusCode::NOT_FOUND).body_len(), Some(0));
        let (streamed, _sender) = Response::stream(HeaderValue::from_static("text/csv"));
        assert_eq!(streamed.body_len(), None);
        let moved = Response::empty(StatusCode::OK)
            .with_status(StatusCode::FOUND)
            .header(http::header::LOCATION, HeaderValue::from_static("/next"));
        assert_eq!(moved.status(), StatusCode::FOUND);
        assert_eq!(moved.headers()["location"], "/next");
    }
}
