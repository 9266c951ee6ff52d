//! What handlers see and return: [`Request`] (head, path parameters, state, a streaming
//! body) and [`Response`] (head and a whole or streamed body).

use crate::jobs::Scheduler;
use crate::websocket::WebSocket;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tether_core::ws::{self as core_ws, WsConfig};
use tokio::sync::{mpsc, oneshot};

/// Why a request body could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The peer broke the protocol or a limit (the server has answered it already, e.g. 413).
    #[error("bad request body: {0}")]
    Protocol(tether_core::h1::Error),
    /// The connection ended before the body did.
    #[error("connection closed before the body ended")]
    Closed,
}

/// A request body, streamed: pieces arrive as the peer sends them, with backpressure (the
/// server stops reading from the socket while the handler does not take them).
#[derive(Debug)]
pub struct Body {
    rx: Option<mpsc::Receiver<Result<Bytes, BodyError>>>,
}

impl Body {
    pub(crate) fn channel(capacity: usize) -> (mpsc::Sender<Result<Bytes, BodyError>>, Body) {
        let (tx, rx) = mpsc::channel(capacity);
        (tx, Body { rx: Some(rx) })
    }

    /// An empty body.
    pub fn empty() -> Body {
        Body { rx: None }
    }

    /// The next piece, `None` at the end.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, BodyError>> {
        let rx = self.rx.as_mut()?;
        let next = rx.recv().await;
        if next.is_none() {
            self.rx = None;
        }
        next
    }

    /// The whole body (its size is capped by the server's body limit, 413 beyond).
    pub async fn bytes(&mut self) -> Result<Bytes, BodyError> {
        let mut all = BytesMut::new();
        while let Some(piece) = self.chunk().await {
            let piece = piece?;
            if all.is_empty() {
                all = BytesMut::from(piece);
            } else {
                all.extend_from_slice(&piece);
            }
        }
        Ok(all.freeze())
    }
}

/// Hands the upgraded transport to a waiting WebSocket handler.
pub(crate) type UpgradeTx = oneshot::Sender<WebSocket>;

/// An accepted upgrade, for the connection task to complete once the `101` is out.
pub(crate) type Upgrade = (core_ws::Negotiated, UpgradeTx);

/// A request, as a handler gets it.
pub struct Request {
    /// Boxed: a request moves through middlewares and handlers, and a pointer moves cheaply.
    inner: Box<RequestParts>,
}

struct RequestParts {
    head: http::request::Parts,
    params: HashMap<String, String>,
    body: Body,
    state: Arc<http::Extensions>,
    scheduler: Scheduler,
    ws_config: Arc<WsConfig>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.inner.head.method)
            .field("uri", &self.inner.head.uri)
            .finish_non_exhaustive()
    }
}

impl Request {
    pub(crate) fn new(
        head: http::Request<()>,
        body: Body,
        state: Arc<http::Extensions>,
        scheduler: Scheduler,
        ws_config: Arc<WsConfig>,
    ) -> Request {
        let (head, ()) = head.into_parts();
        Request {
            inner: Box::new(RequestParts {
                head,
                params: HashMap::new(),
                body,
                state,
                scheduler,
                ws_config,
            }),
        }
    }

    pub(crate) fn set_params(&mut self, params: HashMap<String, String>) {
        self.inner.params = params;
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.inner.head.method
    }

    /// The target URI.
    pub fn uri(&self) -> &Uri {
        &self.inner.head.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.inner.head.version
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.head.headers
    }

    /// A `{name}` segment of the matched route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.inner.params.get(name).map(String::as_str)
    }

    /// A query parameter (first occurrence, not percent-decoded).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.uri()
            .query()?
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The application's state of type `T` (see [`App::state`](crate::App::state)).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.state.get::<Arc<T>>().map(|arc| arc.as_ref())
    }

    /// The server's job scheduler, to start background work that is supervised (errors
    /// reported, closed at shutdown) instead of fire-and-forget.
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The body.
    pub fn body(&mut self) -> &mut Body {
        &mut self.inner.body
    }

    /// Accepts a WebSocket upgrade with `protocols` (in preference order): the response to
    /// return (`101`), and the connection, which resolves once the server has switched.
    /// A request that is not a valid upgrade gets its refusal (400, or 426 for the version).
    // The refusal is a whole `Response` by design: the handler returns it as it is.
    #[allow(clippy::result_large_err)]
    pub fn websocket(
        &mut self,
        protocols: &[&str],
    ) -> Result<(Response, PendingWebSocket), Response> {
        let head = http::Request::from_parts(self.inner.head.clone(), ());
        match core_ws::accept(&head, protocols, &self.inner.ws_config) {
            Ok((response, negotiated)) => {
                let (tx, rx) = oneshot::channel();
                let (head, ()) = response.into_parts();
                Ok((
                    Response {
                        head,
                        body: ResponseBody::Empty,
                        upgrade: Some(Box::new((negotiated, tx))),
                    },
                    PendingWebSocket { rx },
                ))
            }
            Err(refusal) => {
                let (head, ()) = refusal.response().into_parts();
                Err(Response {
                    head,
                    body: ResponseBody::Empty,
                    upgrade: None,
                })
            }
        }
    }

    /// The WebSocket settings in force (heartbeat, limits, compression).
    pub fn websocket_config(&self) -> &WsConfig {
        &self.inner.ws_config
    }
}

/// A WebSocket that becomes ready once the server has sent the `101` and switched.
#[derive(Debug)]
pub struct PendingWebSocket {
    rx: oneshot::Receiver<WebSocket>,
}

impl Future for PendingWebSocket {
    type Output = Option<WebSocket>;
    /// `None` if the connection ended before the switch.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WebSocket>> {
        Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}

/// How a response body is produced.
pub(crate) enum ResponseBody {
    Empty,
    Full(Bytes),
    Stream(mpsc::Receiver<Bytes>),
}

/// A response, as a handler returns it.
pub struct Response {
    pub(crate) head: http::response::Parts,
    pub(crate) body: ResponseBody,
    /// The upgrade of a `101` the handler got from [`Request::websocket`]. A middleware
    /// that replaces the response drops it, and the handler's [`PendingWebSocket`] ends.
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

/// Writes the pieces of a streamed response body; dropping it ends the body.
#[derive(Debug, Clone)]
pub struct BodySender {
    tx: mpsc::Sender<Bytes>,
}

impl BodySender {
    /// Sends a piece; waits while the client is slower than the handler (backpressure).
    /// `Err` when the connection is gone.
    pub async fn send(&self, piece: impl Into<Bytes>) -> Result<(), BodyError> {
        self.tx
            .send(piece.into())
            .await
            .map_err(|_| BodyError::Closed)
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

    /// An empty response with `status`.
    pub fn status(status: StatusCode) -> Response {
        Response::with_body(status, ResponseBody::Empty, Some(0))
    }

    /// `200` with a `text/plain; charset=utf-8` body.
    pub fn text(text: impl Into<String>) -> Response {
        let body = Bytes::from(text.into());
        let length = body.len();
        let mut response =
            Response::with_body(StatusCode::OK, ResponseBody::Full(body), Some(length));
        response.head.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    /// `200` with a body of the given content type.
    pub fn bytes(content_type: &str, body: impl Into<Bytes>) -> Response {
        let body: Bytes = body.into();
        let length = body.len();
        Response::with_body(StatusCode::OK, ResponseBody::Full(body), Some(length))
            .header("content-type", content_type)
    }

    /// `200` with a body streamed by the returned sender (chunked for HTTP/1.1 clients).
    pub fn stream(content_type: &str) -> (Response, BodySender) {
        let (tx, rx) = mpsc::channel(16);
        let response = Response::with_body(StatusCode::OK, ResponseBody::Stream(rx), None)
            .header("content-type", content_type);
        (response, BodySender { tx })
    }

    /// This response with a header set (invalid names or values are ignored).
    pub fn header(mut self, name: &str, value: &str) -> Response {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.head.headers.insert(name, value);
        }
        self
    }

    /// This response with another status.
    pub fn with_status(mut self, status: StatusCode) -> Response {
        self.head.status = status;
        self
    }

    /// The status.
    pub fn status_code(&self) -> StatusCode {
        self.head.status
    }

    /// The header fields.
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
}
