//! # tether-tokio
//!
//! The tokio adapter of tether: it does the IO and nothing else. Every protocol decision and
//! every timeout comes from [`tether_core`]; the loops that pump the core's connections are
//! shared with the other runtime adapters in [`tether_rt`]; this crate gives them tokio's
//! sockets, timer and tasks.
//!
//! * [`Server`] and [`App`]: routes, typed state, middlewares, setup/teardown contexts,
//!   graceful shutdown ([`Serve::with_graceful_shutdown`], [`shutdown_signal`]), a
//!   [`jobs::Scheduler`] for supervised background work.
//! * [`WebSocket`]: the WebSocket object handlers get from [`Request::websocket`], and
//!   [`tether_rt::Client::ws_connect`] returns.
//! * [`Client`]: a pooled HTTP client with aiohttp's four timeouts, redirects, TLS
//!   ([`tls`]) and `ws_connect`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod clock;
mod io;
mod listener;
mod server;
pub mod tls;

pub use client::Client;
pub use clock::now;
pub use io::TokioIo;
pub use server::{shield, shutdown_signal, Serve, ServeError, Server, ShutdownHandle};
pub use tether_rt::client::{
    BodyStream, ClientConfig, ClientError, ClientResponse, HeaderError, RequestBuilder, TlsError,
    UrlError, WsRequest,
};
pub use tether_rt::{
    App, Body, BodyError, BodySender, BoxError, BoxFuture, CleanupError, ConnectionInfo, Next,
    Params, PendingWebSocket, Request, Response, ResponseClosed, RouteError, ServerConfig,
    StartError, Teardown, TeardownFailure, WebSocket,
};

/// Authentication for the client: an [`auth::Authenticator`] in `ClientConfig::auth` or
/// per request (`RequestBuilder::auth`, `WsRequest::auth`); Basic, Bearer (with a shared
/// refresh) and Digest come with it. Failures are `ClientError::Auth`.
pub mod auth {
    pub use tether_core::auth::{Challenge, DigestAlgorithm, DigestError};
    pub use tether_rt::client::{
        AuthError, AuthFuture, AuthRequest, AuthResponse, AuthTarget, Authenticator, BasicAuth,
        BearerAuth, DigestAuth, Retry,
    };
}

/// Proxies for the client: [`proxy::ProxySettings`] in `ClientConfig::proxy`, and the
/// errors a proxy's answer becomes ([`proxy::ProxyError`] in `ClientError::Proxy`).
pub mod proxy {
    pub use tether_core::proxy::{MalformedReason, ProxyError, Socks5Reply};
    pub use tether_rt::client::{NoProxy, Proxy, ProxyScheme, ProxySettings, ProxyUrlError};
}

/// WebSockets in an axum router served by this adapter (feature `axum`): see
/// [`tether_rt::axum`]. axum's own `WebSocketUpgrade` needs hyper's upgrades, which tether
/// does not have; this one uses tether's.
#[cfg(feature = "axum")]
pub mod axum {
    pub use tether_rt::axum::{UpgradeRejection, WebSocketUpgrade};
}

/// Supervised background jobs (aiojobs): see [`tether_rt::jobs`].
pub mod jobs {
    pub use tether_rt::jobs::*;

    /// A scheduler whose jobs run on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn scheduler(config: SchedulerConfig) -> Scheduler {
        Scheduler::new(config, crate::clock::runtime())
    }
}

/// WebSocket connections: see [`tether_rt::websocket`].
pub mod websocket {
    pub use tether_rt::websocket::{
        Message, WeakWsSender, WebSocket, WsError, WsReceiver, WsSender,
    };

    use bytes::Bytes;
    use tether_core::ws::WebSocket as CoreWebSocket;
    use tokio::io::{AsyncRead, AsyncWrite};

    /// Drives a core WebSocket over `io` in a task on the current tokio runtime; returns the
    /// application's handle. Build `ws` with [`crate::now`]. `trailing`: bytes already read
    /// past the handshake.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn<IO>(io: IO, ws: CoreWebSocket, trailing: Bytes) -> WebSocket
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tether_rt::websocket::spawn(&crate::clock::runtime(), crate::TokioIo(io), ws, trailing)
    }
}
