//! What handlers get: [`Request`], the head, the path parameters, the application state,
//! the addresses of the connection and a streaming body; and [`PendingWebSocket`].

use crate::body::Body;
use crate::jobs::Scheduler;
use crate::response::{Response, ResponseBody, Upgrade};
use crate::router::Params;
use crate::websocket::WebSocket;
use futures_channel::oneshot;
use http::{HeaderMap, Method, Uri, Version};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tether_core::ws::{self as core_ws, WsConfig};

/// The addresses of a served connection, as the adapter accepted it (`None` where the
/// transport has none, e.g. an in-memory pipe or a JavaScript host that does not say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// Our address the peer connected to.
    pub local: Option<SocketAddr>,
}

impl ConnectionInfo {
    /// A connection between `peer` and `local`.
    pub fn new(peer: Option<SocketAddr>, local: Option<SocketAddr>) -> ConnectionInfo {
        ConnectionInfo { peer, local }
    }
}

/// A request, as a handler gets it. `S` is the application's state (see
/// [`App::with_state`](crate::App::with_state)).
pub struct Request<S = ()> {
    /// Boxed: a request moves through middlewares and handlers, and a pointer moves cheaply.
    inner: Box<RequestParts<S>>,
}

struct RequestParts<S> {
    head: http::request::Parts,
    params: Params,
    body: Body,
    state: Arc<S>,
    connection: ConnectionInfo,
    scheduler: Scheduler,
    ws_config: Arc<WsConfig>,
}

impl<S> std::fmt::Debug for Request<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.inner.head.method)
            .field("uri", &self.inner.head.uri)
            .finish_non_exhaustive()
    }
}

/// What the connection gives every request besides its head and body.
pub(crate) struct RequestContext<S> {
    pub(crate) state: Arc<S>,
    pub(crate) connection: ConnectionInfo,
    pub(crate) scheduler: Scheduler,
    pub(crate) ws_config: Arc<WsConfig>,
}

impl<S> Request<S> {
    pub(crate) fn new(head: http::Request<()>, body: Body, context: &RequestContext<S>) -> Self {
        let (head, ()) = head.into_parts();
        Request {
            inner: Box::new(RequestParts {
                head,
                params: Params::default(),
                body,
                state: context.state.clone(),
                connection: context.connection,
                scheduler: context.scheduler.clone(),
                ws_config: context.ws_config.clone(),
            }),
        }
    }

    /// The request as an `http::Request` with its body, for code written against the `http`
    /// types (a tower service: `App::fallback_service`, feature `tower`).
    /// The connection's addresses go along in the extensions as a [`ConnectionInfo`]; the
    /// route's parameters and the state stay behind. With the feature `axum`, a request that
    /// carries an `Upgrade` field also takes what the `axum::WebSocketUpgrade` extractor
    /// needs to accept it (the WebSocket settings in force and the scheduler its session
    /// runs on); other requests pay nothing for it.
    pub fn into_http(self) -> http::Request<Body> {
        let RequestParts {
            mut head,
            body,
            connection,
            #[cfg(feature = "axum")]
            scheduler,
            #[cfg(feature = "axum")]
            ws_config,
            ..
        } = *self.inner;
        head.extensions.insert(connection);
        #[cfg(feature = "axum")]
        if head.headers.contains_key(http::header::UPGRADE) {
            head.extensions
                .insert(crate::axum::UpgradeContext::new(ws_config, scheduler));
        }
        http::Request::from_parts(head, body)
    }

    pub(crate) fn set_params(&mut self, params: Params) {
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

    /// A `{name}` or `{*name}` parameter of the matched route, percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.inner.params.get(name)
    }

    /// Every parameter of the matched route.
    pub fn params(&self) -> &Params {
        &self.inner.params
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

    /// The application's state.
    pub fn state(&self) -> &S {
        &self.inner.state
    }

    /// The application's state, shared (to move into a job or a WebSocket session).
    pub fn state_arc(&self) -> Arc<S> {
        self.inner.state.clone()
    }

    /// The peer's address, when the transport has one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.connection.peer
    }

    /// Our address the peer connected to, when the transport has one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.connection.local
    }

    /// The server's job scheduler, to start background work that is supervised (errors
    /// reported, closed at shutdown) instead of fire-and-forget.
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The body. Reading it sends `100 Continue` to a client that waits for one.
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
                let (upgrade, pending) = PendingWebSocket::accepted(negotiated);
                let (head, ()) = response.into_parts();
                Ok((
                    Response {
                        head,
                        body: ResponseBody::Empty,
                        upgrade: Some(upgrade),
                    },
                    pending,
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

impl PendingWebSocket {
    /// The upgrade for a `101` to carry to the connection, and the WebSocket it gives once
    /// the connection has switched.
    pub(crate) fn accepted(negotiated: core_ws::Negotiated) -> (Box<Upgrade>, PendingWebSocket) {
        let (tx, rx) = oneshot::channel();
        (Box::new((negotiated, tx)), PendingWebSocket { rx })
    }
}

impl Future for PendingWebSocket {
    type Output = Option<WebSocket>;
    /// `None` if the connection ended before the switch.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WebSocket>> {
        Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}
