//! The HTTP client (aiohttp's `ClientSession`): pooled keep-alive connections, the four
//! timeouts, redirects, and WebSocket connections, all decided by the core (`h1` client
//! connection, `pool`, `time::RequestTimer`); this module moves the bytes, over transports a
//! runtime adapter's [`Connector`] opens, with the adapter's [`Runtime`](crate::Runtime) for
//! time and the one background task (the idle reaper).
//!
//! * [`Client`]: the pool and its settings ([`ClientConfig`]); cheap to clone.
//! * [`RequestBuilder`]: URL, query, header fields, body; [`RequestBuilder::send`] follows
//!   redirects (targets resolved as RFC 3986 §5.2 says) and returns a [`ClientResponse`],
//!   whose body is read by chunk or whole.
//! * [`WsRequest`]: a WebSocket's opening handshake.
//! * [`ClientError`]: every failure, typed: the URL ([`UrlError`]), a header
//!   ([`HeaderError`]), TLS ([`TlsError`]), timeouts, IO, the protocol.

mod auth;
mod config;
mod io;
mod log;
mod pool;
mod proxy;
mod redirect;
mod request;
mod response;
#[cfg(feature = "tower")]
mod service;
mod sockets;
#[cfg(test)]
mod testing;
pub mod tls;
mod ws;

pub use auth::{
    AuthError, AuthFuture, AuthRequest, AuthResponse, AuthTarget, Authenticator, BasicAuth,
    BearerAuth, DigestAuth, Retry,
};
pub use config::{ClientConfig, ClientError, HeaderError, TlsError, UrlError};
pub use io::{Connector, Io};
pub use log::{tls_handshake, tls_timing_wanted};
pub use proxy::{open_tunnel, NoProxy, Proxy, ProxyScheme, ProxySettings, ProxyUrlError};
pub use request::{BodyStream, RequestBuilder};
pub use response::ClientResponse;
pub use sockets::{SocketConnector, Sockets};
pub use tls::TlsConfig;
pub use ws::WsRequest;

use crate::runtime::Rt;
use crate::websocket::WebSocket;
use futures_channel::oneshot;
use futures_util::future::AbortHandle;
use http::header::HeaderValue;
use http::Method;
use io::Conn;
use pool::ReaperWake;
/// Maps keyed by our own ids, with a fast seeded hash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::{Arc, Mutex};
use tether_core::pool::{ConnId, Grant, Origin, Pool, PoolStats, WaiterId};

/// What every clone of a [`Client`] shares.
struct Shared {
    rt: Rt,
    /// `config.user_agent` as a header value, made once (`None`: it cannot be one, and every
    /// request fails saying so).
    user_agent: Option<HeaderValue>,
    connector: Arc<dyn Connector>,
    config: ClientConfig,
    pool: Mutex<Pool>,
    /// Idle connections the pool may hand out again.
    idle: Mutex<HashMap<ConnId, Box<Conn>>>,
    /// Requests waiting for a pool grant.
    waiters: Mutex<HashMap<WaiterId, oneshot::Sender<Grant>>>,
    /// Expires idle connections; aborted when the client goes away.
    reaper: Mutex<Option<AbortHandle>>,
    /// Wakes the reaper when a connection turns idle (the pool's next deadline may be
    /// earlier than the one it sleeps until).
    reaper_wake: Arc<ReaperWake>,
}

impl Shared {
    /// The `User-Agent` value, or why the configured one cannot be sent.
    fn user_agent(&self) -> Result<HeaderValue, ClientError> {
        match &self.user_agent {
            Some(value) => Ok(value.clone()),
            None => HeaderValue::try_from(self.config.user_agent.as_str()).map_err(|e| {
                ClientError::InvalidHeader {
                    name: http::header::USER_AGENT.as_str().to_owned(),
                    source: e.into(),
                }
            }),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(mut reaper) = self.reaper.lock() {
            if let Some(task) = reaper.take() {
                task.abort();
            }
        }
    }
}

/// A pooled HTTP client. Building it does no IO; connections open on first use. Clone it
/// freely (one pool behind every clone); reuse one for many requests.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client with `config`, opening connections with `connector` and running its one
    /// background task (expiring idle connections) on `rt`. No IO.
    pub fn new(config: ClientConfig, rt: Rt, connector: Arc<dyn Connector>) -> Client {
        let pool = Pool::new(config.pool.clone());
        Client {
            shared: Arc::new(Shared {
                user_agent: HeaderValue::try_from(config.user_agent.as_str()).ok(),
                rt,
                connector,
                config,
                pool: Mutex::new(pool),
                idle: Mutex::new(HashMap::default()),
                waiters: Mutex::new(HashMap::default()),
                reaper: Mutex::new(None),
                reaper_wake: Arc::default(),
            }),
        }
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// Now, on the runtime's clock.
    fn now(&self) -> tether_core::time::Instant {
        self.shared.rt.now()
    }

    /// Whether [`Client::close`] was called.
    fn is_closed(&self) -> bool {
        self.shared.pool.lock().map_or(true, |p| p.is_closed())
    }

    /// Starts a request.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// `POST url`.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Pool counts for the origin of `url` (idle, in use, opening, waiting).
    pub fn pool_stats(&self, url: &str) -> Option<PoolStats> {
        let origin = Origin::from_uri(&url.parse().ok()?)?;
        // Keyed as requests are: through the proxy the settings name for it.
        let route = proxy::route::Route::new(&self.shared.config.proxy, None, origin);
        Some(self.shared.pool.lock().ok()?.stats(&route.origin))
    }

    /// Closes idle connections and refuses new requests. Responses being read finish.
    pub async fn close(&self) {
        let ids = match self.shared.pool.lock() {
            Ok(mut pool) => pool.close(),
            Err(_) => return,
        };
        let conns: Vec<Box<Conn>> = match self.shared.idle.lock() {
            Ok(mut idle) => ids.iter().filter_map(|id| idle.remove(id)).collect(),
            Err(_) => Vec::new(),
        };
        self.drain_pool_events();
        for mut conn in conns {
            conn.transport.shutdown().await;
        }
    }

    /// Connects a WebSocket to `url` (`ws://` or `wss://`), offering `protocols`, with the
    /// client's WebSocket settings. Returns the socket and the subprotocol the server chose.
    /// [`Client::ws`] sets headers and per-connection settings.
    pub async fn ws_connect(
        &self,
        url: &str,
        protocols: &[&str],
    ) -> Result<(WebSocket, Option<String>), ClientError> {
        let mut request = self.ws(url);
        for protocol in protocols {
            request = request.protocol(protocol);
        }
        request.connect().await
    }

    /// Starts a WebSocket connection to `url` (`ws://` or `wss://`): set subprotocols,
    /// headers and settings, then [`WsRequest::connect`].
    pub fn ws(&self, url: &str) -> WsRequest {
        WsRequest::new(self.clone(), url)
    }
}
