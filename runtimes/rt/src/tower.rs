//! Serving `tower` services (an axum `Router`, a `tower::ServiceBuilder` stack) with
//! tether's server (feature `tower`).
//!
//! [`App::fallback_service`] hands every request that no route of the app matches to a
//! `tower::Service<http::Request<Body>>`; with no routes, that is every request. The service
//! runs inside tether's connection handling, so it gets what the server gives an [`App`]:
//! the head timeout against slowloris, the keep-alive and body deadlines, the limits with
//! their answers, handlers that run to completion when the client leaves, and a graceful
//! shutdown that waits for them.
//!
//! * The request body is tether's [`Body`], which implements `http_body::Body`; the
//!   connection's addresses are in the request's extensions as a [`ConnectionInfo`](crate::ConnectionInfo).
//! * The response body may be any `http_body::Body` whose data is a `Buf`: its frames are
//!   written as they come (chunked, or with `Content-Length` when its size hint is exact),
//!   trailers included; a body that fails ends the connection without the body's end, so the
//!   client cannot take it for complete.
//! * A service error, or a service that is not ready because it failed, is answered `500`.
//!
//! What a service cannot do here: upgrade the connection through hyper's `OnUpgrade`
//! (axum's own `WebSocketUpgrade` extractor needs it, and refuses every upgrade on tether).
//! For WebSockets, take `tether_rt::axum::WebSocketUpgrade` in the axum handler instead
//! (feature `axum`), or use an [`App`] route and
//! [`Request::websocket`](crate::Request::websocket).

use crate::app::{App, BoxError};
use crate::body::{Body, BodyError};
use crate::request::Request;
use crate::response::{Piece, Response, ResponseBody, StreamedBody};
use crate::runtime::MaybeSend;
use bytes::{Buf, Bytes};
use http::StatusCode;
use http_body::{Frame, SizeHint};
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower_service::Service;

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|piece| piece.map(|piece| piece.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.is_empty_body()
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_empty_body() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

/// A response body's frames, as the connection pulls them.
pub(crate) struct Frames {
    body: Pin<Box<dyn FrameSource>>,
    exact_len: Option<u64>,
}

impl Frames {
    /// The body's length, when its size hint is exact.
    pub(crate) fn exact_len(&self) -> Option<u64> {
        self.exact_len
    }

    /// The next piece. A body that panics is a body that failed (the connection ends
    /// without the body's end), as a handler that panics is a `500`: the connection's task
    /// survives it.
    pub(crate) fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<Piece> {
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.poll_frames(cx)));
        polled.unwrap_or_else(|_| {
            tracing::debug!("a service's response body panicked");
            Poll::Ready(Piece::Aborted)
        })
    }

    fn poll_frames(&mut self, cx: &mut Context<'_>) -> Poll<Piece> {
        loop {
            let frame = match self.body.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Piece::End),
                Poll::Ready(Some(Err(error))) => {
                    tracing::debug!(%error, "a service's response body failed");
                    return Poll::Ready(Piece::Aborted);
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match frame {
                FrameKind::Data(data) if data.is_empty() => continue,
                FrameKind::Data(data) => return Poll::Ready(Piece::Data(data)),
                FrameKind::Trailers(trailers) => return Poll::Ready(Piece::Trailers(trailers)),
            }
        }
    }
}

/// One frame, with the data as `Bytes`.
enum FrameKind {
    Data(Bytes),
    Trailers(http::HeaderMap),
}

/// Any `http_body::Body`, with its data and error types erased.
trait FrameSource: MaybeSend {
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<FrameKind, BoxError>>>;
}

impl<B> FrameSource for B
where
    B: http_body::Body + MaybeSend,
    B::Error: Into<BoxError>,
{
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<FrameKind, BoxError>>> {
        http_body::Body::poll_frame(self, cx).map(|frame| {
            frame.map(|frame| match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(mut data) => Ok(FrameKind::Data(data.copy_to_bytes(data.remaining()))),
                    Err(frame) => Ok(frame
                        .into_trailers()
                        .map(FrameKind::Trailers)
                        .unwrap_or(FrameKind::Data(Bytes::new()))),
                },
                Err(error) => Err(error.into()),
            })
        })
    }
}

impl Response {
    /// A response from an `http::Response` whose body is any `http_body::Body` (what tower
    /// services and axum handlers return). The body is written as its frames come; with an
    /// exact size hint it is sent with `Content-Length`, else chunked (close-delimited for
    /// HTTP/1.0 clients); the body of a 1xx, 204 or 304 is dropped unread. With the feature
    /// `axum`, the `101` of `axum::WebSocketUpgrade::on_upgrade` brings its upgrade along,
    /// which the connection completes as for [`Request::websocket`](crate::Request::websocket).
    pub fn from_http<B>(response: http::Response<B>) -> Response
    where
        B: http_body::Body + MaybeSend + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut head, body) = response.into_parts();
        // The `101` of an axum handler that took `axum::WebSocketUpgrade` carries its
        // upgrade, which the connection completes as an App route's.
        #[cfg(feature = "axum")]
        let upgrade = crate::axum::take_upgrade(&mut head);
        #[cfg(not(feature = "axum"))]
        let upgrade = None;
        let exact_len = body.size_hint().exact();
        // A 1xx (the `101` of an upgrade), 204 or 304 never carries a body, whatever the
        // body says of itself: a layer's wrapper of an empty body may not say it has ended,
        // and framing it (`Content-Length: 0`) would make the core refuse the head.
        let status = head.status;
        let never_a_body = status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        if status.is_informational() || status == StatusCode::NO_CONTENT {
            // Nor any framing field (RFC 9110 §8.6, RFC 9112 §6.1), which the core refuses on
            // these: axum's router sets `Content-Length` from an exact size hint on every
            // response, a 204 and the `101` of a WebSocket upgrade included.
            head.headers.remove(http::header::CONTENT_LENGTH);
            head.headers.remove(http::header::TRANSFER_ENCODING);
        }
        let body = if never_a_body || (exact_len == Some(0) && body.is_end_stream()) {
            ResponseBody::Empty
        } else {
            ResponseBody::Stream(StreamedBody::Frames(Frames {
                body: Box::pin(body),
                exact_len,
            }))
        };
        Response {
            head,
            body,
            upgrade,
        }
    }
}

impl<S: Send + Sync + 'static> App<S> {
    /// Hands every request no route matches to `service` (with no routes: every request),
    /// after the app's middlewares: an axum `Router`, or any `tower::Service` of
    /// `http::Request<Body>` whose response body is an `http_body::Body`. See the
    /// [module](crate::tower) docs for what the service gets.
    ///
    /// ```
    /// use tether_rt::{App, Body};
    ///
    /// let hello = tower::service_fn(|_request: http::Request<Body>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
    /// });
    /// let app = App::new().fallback_service(hello);
    /// # let _ = app;
    /// ```
    pub fn fallback_service<Svc, B>(self, service: Svc) -> App<S>
    where
        Svc: Service<http::Request<Body>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        Svc::Future: MaybeSend + 'static,
        Svc::Error: Into<BoxError>,
        B: http_body::Body + MaybeSend + 'static,
        B::Error: Into<BoxError>,
    {
        self.set_fallback(move |request: Request<S>| {
            let mut service = service.clone();
            async move {
                let request = request.into_http();
                if let Err(error) = poll_fn(|cx| service.poll_ready(cx)).await {
                    return service_failed(error.into());
                }
                match service.call(request).await {
                    Ok(response) => Response::from_http(response),
                    Err(error) => service_failed(error.into()),
                }
            }
        })
    }
}

fn service_failed(error: BoxError) -> Response {
    tracing::debug!(%error, "the service failed; answering 500");
    Response::empty(StatusCode::INTERNAL_SERVER_ERROR)
}
