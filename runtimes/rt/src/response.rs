//! What handlers return: [`Response`], a head and a whole or streamed body, and the
//! [`BodySender`] of a streamed one.

use crate::websocket::WebSocket;
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::SinkExt;
use http::header::{HeaderValue, IntoHeaderName};
use http::{HeaderMap, StatusCode};
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

/// The receiving end of a streamed body, as the connection pumps it.
pub(crate) struct StreamedBody {
    rx: mpsc::Receiver<Bytes>,
    aborted: Arc<AtomicBool>,
}

/// What a streamed body yields next.
pub(crate) enum Piece {
    Data(Bytes),
    /// Every sender is gone: the body is complete.
    End,
    /// A sender gave up ([`BodySender::abort`]): the body must not look complete.
    Aborted,
}

impl StreamedBody {
    pub(crate) fn poll_piece(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Piece> {
        use futures_util::StreamExt;
        self.rx.poll_next_unpin(cx).map(|piece| match piece {
            Some(data) => Piece::Data(data),
            None if self.aborted.load(Ordering::Acquire) => Piece::Aborted,
            None => Piece::End,
        })
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

/// A `Content-Length` value; small lengths come from a table made once, so the common
/// short answer allocates nothing for it.
fn content_length(n: usize) -> HeaderValue {
    const TABLE: usize = 1024;
    static SMALL: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    if n >= TABLE {
        return HeaderValue::from(n);
    }
    let table = SMALL.get_or_init(|| {
        // One string holds every decimal from 0 to TABLE - 1; each value is a static slice.
        let digits: &'static str = Box::leak(
            (0..TABLE)
                .map(|i| i.to_string())
                .collect::<String>()
                .into_boxed_str(),
        );
        let mut at = 0;
        (0..TABLE)
            .map(|i| {
                let len = i.to_string().len();
                let value = HeaderValue::from_static(&digits[at..at + len]);
                at += len;
                value
            })
            .collect()
    });
    table[n].clone()
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
    fn with_body(status: StatusCode, body: ResponseBody, length: Option<usize>) -> Response {
        let (mut head, ()) = http::Response::new(()).into_parts();
        head.status = status;
        if let Some(n) = length {
            head.headers
                .insert(http::header::CONTENT_LENGTH, content_length(n));
        }
        Response {
            head,
            body,
            upgrade: None,
        }
    }

    /// A response with `status` and no body (`Content-Length: 0`, except for the statuses
    /// that never carry one: 1xx, 204 and 304).
    pub fn empty(status: StatusCode) -> Response {
        let bodiless = status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        Response::with_body(status, ResponseBody::Empty, (!bodiless).then_some(0))
    }

    /// `200` with a `text/plain; charset=utf-8` body.
    pub fn text(text: impl Into<String>) -> Response {
        Response::bytes(
            HeaderValue::from_static("text/plain; charset=utf-8"),
            Bytes::from(text.into()),
        )
    }

    /// `200` with a body of the given content type.
    pub fn bytes(content_type: HeaderValue, body: impl Into<Bytes>) -> Response {
        let body: Bytes = body.into();
        let length = body.len();
        let mut response =
            Response::with_body(StatusCode::OK, ResponseBody::Full(body), Some(length));
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
        let body = StreamedBody {
            rx,
            aborted: aborted.clone(),
        };
        let mut response = Response::with_body(StatusCode::OK, ResponseBody::Stream(body), None);
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

    /// The header fields.
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
    fn content_lengths_from_the_table_and_beyond() {
        for n in [
            0,
            1,
            9,
            10,
            13,
            99,
            100,
            512,
            1023,
            1024,
            1025,
            65_536,
            usize::MAX,
        ] {
            assert_eq!(content_length(n).to_str().unwrap(), n.to_string());
        }
    }

    #[test]
    fn constructors_set_status_length_and_type() {
        let text = Response::text("hi");
        assert_eq!(text.status(), StatusCode::OK);
        assert_eq!(text.headers()["content-length"], "2");
        assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
        let empty = Response::empty(StatusCode::NO_CONTENT);
        assert_eq!(empty.status(), StatusCode::NO_CONTENT);
        assert!(empty.headers().get("content-length").is_none());
        assert_eq!(
            Response::empty(StatusCode::NOT_FOUND).headers()["content-length"],
            "0"
        );
        let (streamed, _sender) = Response::stream(HeaderValue::from_static("text/csv"));
        assert!(streamed.headers().get("content-length").is_none());
        let moved = Response::empty(StatusCode::OK)
            .with_status(StatusCode::FOUND)
            .header(http::header::LOCATION, HeaderValue::from_static("/next"));
        assert_eq!(moved.status(), StatusCode::FOUND);
        assert_eq!(moved.headers()["location"], "/next");
    }
}
