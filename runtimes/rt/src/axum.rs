//! WebSockets in an axum router served by tether (feature `axum`).
//!
//! axum's own `WebSocketUpgrade` switches the connection through hyper's upgrade machinery
//! (`hyper::upgrade::OnUpgrade` in the request's extensions). tether's server has no hyper
//! inside, so behind [`App::fallback_service`](crate::App::fallback_service) that extractor
//! refuses every upgrade (`426`, "no upgrade state was present"). [`WebSocketUpgrade`] here is its counterpart on tether's own
//! upgrade, with the same shape: take it as an argument of an axum handler, choose the
//! subprotocols, and return what [`WebSocketUpgrade::on_upgrade`] gives.
//!
//! ```
//! use tether_rt::axum::WebSocketUpgrade;
//! use tether_rt::websocket::Message;
//!
//! // In the router: `.route("/ws", axum::routing::get(echo))`.
//! async fn echo(upgrade: WebSocketUpgrade) -> axum_core::response::Response {
//!     upgrade
//!         .protocols(["echo", "chat"])
//!         .on_upgrade(|mut socket| async move {
//!             while let Some(message) = socket.recv().await {
//!                 let reply = match message {
//!                     Message::Text(text) => Message::Text(text),
//!                     Message::Binary(data) => Message::Binary(data),
//!                     _ => continue,
//!                 };
//!                 if socket.send_message(reply).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         })
//! }
//! ```
//!
//! What the socket gets is what an [`App`](crate::App) route's
//! [`Request::websocket`](crate::Request::websocket) gets, because it is the same path: the
//! handshake is the core's ([`tether_core::ws::accept`]), the `101` is completed by the
//! connection with the server's [`WsConfig`] (heartbeat, limits, permessage-deflate when
//! negotiated), and the socket is one of the server's, closed with 1001 by a graceful
//! shutdown.
//!
//! The callback is a job of the server's [scheduler](crate::jobs::Scheduler), not a detached
//! task: it starts once the connection has switched (never, if the connection ends first or
//! the `101` is replaced on its way out), a panic in it is reported, and the scheduler's
//! close at the end of a shutdown waits for it (and cancels it after its close timeout). The
//! scheduler's [`limit`](crate::jobs::SchedulerConfig::limit) therefore bounds the sessions
//! that run at once, as for the jobs an App route spawns.

use crate::jobs::Scheduler;
use crate::request::PendingWebSocket;
use crate::response::Upgrade;
use crate::websocket::WebSocket;
use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use tether_core::ws::{self as core_ws, HandshakeError, Negotiated, WsConfig};

/// What the extractor needs from the server, in the extensions of every request with an
/// `Upgrade` field that [`Request::into_http`](crate::Request::into_http) makes: two
/// reference-counted handles, moved there, not copied.
#[derive(Clone)]
pub(crate) struct UpgradeContext {
    ws_config: Arc<WsConfig>,
    scheduler: Scheduler,
}

impl UpgradeContext {
    pub(crate) fn new(ws_config: Arc<WsConfig>, scheduler: Scheduler) -> UpgradeContext {
        UpgradeContext {
            ws_config,
            scheduler,
        }
    }
}

/// The upgrade of a `101` made by [`WebSocketUpgrade::on_upgrade`], on its way through the
/// router's layers to [`Response::from_http`](crate::Response::from_http) in an extension
/// only this crate can name. Extensions must be `Clone`; clones share the one upgrade, and
/// the first to take it has it.
#[derive(Clone)]
struct SwitchTo(Arc<Mutex<Option<Box<Upgrade>>>>);

/// Takes the upgrade out of a service's response head, for the connection to complete as it
/// does for an App route's `101`. A response whose status is no longer `101` (a layer
/// replaced it) switches nothing: its upgrade is dropped, and the session never starts.
pub(crate) fn take_upgrade(head: &mut http::response::Parts) -> Option<Box<Upgrade>> {
    let switch = head.extensions.remove::<SwitchTo>()?;
    if head.status != StatusCode::SWITCHING_PROTOCOLS {
        return None;
    }
    let upgrade = switch
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    upgrade
}

/// An axum extractor that accepts a WebSocket upgrade on tether's server: axum's
/// `WebSocketUpgrade`, which needs hyper's upgrades, made for tether (see the
/// [module](self) docs).
///
/// Extracting it checks the request with the core's handshake rules; a request that is not
/// a valid upgrade is refused with an [`UpgradeRejection`]. Then
/// [`protocols`](Self::protocols) chooses the subprotocol, and
/// [`on_upgrade`](Self::on_upgrade) gives the `101` to return and runs the session once
/// the connection has switched.
pub struct WebSocketUpgrade {
    /// The request's head, kept to choose a subprotocol from the client's offer.
    head: http::Request<()>,
    context: UpgradeContext,
    /// The `101` and what it agrees on (subprotocol, permessage-deflate).
    accepted: http::Response<()>,
    negotiated: Negotiated,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("uri", self.head.uri())
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}

impl WebSocketUpgrade {
    /// The subprotocols this route speaks, in order of preference: the first one the client
    /// also offered is chosen and named in the `101`. Without a call, or when the client
    /// offered none of them, no subprotocol is chosen.
    #[must_use]
    pub fn protocols<I>(mut self, protocols: I) -> WebSocketUpgrade
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let protocols: Vec<I::Item> = protocols.into_iter().collect();
        let names: Vec<&str> = protocols.iter().map(AsRef::as_ref).collect();
        // The same request passed the same check when it was extracted; only the choice of
        // subprotocol differs.
        if let Ok((accepted, negotiated)) =
            core_ws::accept(&self.head, &names, &self.context.ws_config)
        {
            self.accepted = accepted;
            self.negotiated = negotiated;
        }
        self
    }

    /// The subprotocol chosen (see [`protocols`](Self::protocols)), if any.
    pub fn selected_protocol(&self) -> Option<&str> {
        self.negotiated.protocol.as_deref()
    }

    /// The `101` to return from the handler, and the session: once tether's connection has
    /// sent it and switched, `callback` runs with the [`WebSocket`], as a job of the server's
    /// scheduler (see the [module](self) docs). If the connection ends before it switches,
    /// `callback` is dropped without running.
    ///
    /// When the scheduler takes no more jobs (it is closed by a shutdown, or its pending
    /// queue is full), the answer is `503 Service Unavailable` instead, and nothing switches.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (upgrade, pending) = PendingWebSocket::accepted(self.negotiated);
        let session = async move {
            if let Some(socket) = pending.await {
                callback(socket).await;
            }
            Ok::<(), Infallible>(())
        };
        if let Err(error) = self.context.scheduler.try_spawn(session) {
            tracing::debug!(%error, "no job for a WebSocket session; answering 503");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let (head, ()) = self.accepted.into_parts();
        let mut response = Response::from_parts(head, Body::empty());
        response
            .extensions_mut()
            .insert(SwitchTo(Arc::new(Mutex::new(Some(upgrade)))));
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<WebSocketUpgrade, UpgradeRejection> {
        let mut head = http::Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = parts.uri.clone();
        *head.version_mut() = parts.version;
        *head.headers_mut() = parts.headers.clone();
        let Some(context) = parts.extensions.get::<UpgradeContext>().cloned() else {
            // tether's server gives the context to every request with an `Upgrade` field, so
            // the core refuses this one (with the reason and the status the server would
            // answer), unless it did not come through tether's server at all.
            return Err(match core_ws::accept(&head, &[], &WsConfig::default()) {
                Err(refused) => UpgradeRejection::Refused(refused),
                Ok(_) => UpgradeRejection::NotServedByTether,
            });
        };
        let (accepted, negotiated) = core_ws::accept(&head, &[], &context.ws_config)?;
        Ok(WebSocketUpgrade {
            head,
            context,
            accepted,
            negotiated,
        })
    }
}

/// Why [`WebSocketUpgrade`] could not be extracted. As a response (it is the extractor's
/// rejection), it is the answer tether's server gives such a request anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeRejection {
    /// Not a WebSocket upgrade the core accepts (not a `GET`, not HTTP/1.1, no
    /// `Upgrade: websocket` or `Connection: upgrade`, a bad `Sec-WebSocket-Key`, another
    /// version). Answered as [`HandshakeError::response`] says: `400`, or `426` with
    /// `Sec-WebSocket-Version: 13` for another version.
    #[error(transparent)]
    Refused(#[from] HandshakeError),
    /// A valid upgrade request that did not come through tether's server (`App::fallback_service`
    /// of a tether adapter), so nothing can switch its connection: a setup error of the
    /// server, answered `500`.
    #[error(
        "this WebSocket upgrade did not come through tether's server, which alone can switch it"
    )]
    NotServedByTether,
}

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        match self {
            UpgradeRejection::Refused(refused) => {
                let (head, ()) = refused.response().into_parts();
                Response::from_parts(head, Body::empty())
            }
            UpgradeRejection::NotServedByTether => {
                tracing::debug!("{self}; answering 500");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
