//! # tether-async-std
//!
//! The async-std and smol adapter of tether: it does the IO and nothing else. Every protocol
//! decision and every timeout comes from [`tether_core`]; the loops that pump the core's
//! connections are shared with the other runtime adapters in [`tether_rt`]; this crate gives
//! them sockets, timers and tasks. Its API mirrors `tether-tokio`'s, name for name: switching
//! runtime is changing the import.
//!
//! * [`Server`] and [`App`]: routes, typed state, middlewares, setup/teardown contexts,
//!   graceful shutdown ([`Serve::with_graceful_shutdown`], [`shutdown_signal`]), a
//!   [`jobs::Scheduler`] for supervised background work.
//! * [`WebSocket`]: the WebSocket object handlers get from [`Request::websocket`], and
//!   [`Client::ws_connect`] returns.
//! * [`Client`]: a pooled HTTP client with aiohttp's four timeouts, redirects, TLS
//!   ([`tls`]) and `ws_connect`.
//!
//! ## async-std or smol
//!
//! async-std is discontinued (RUSTSEC-2025-0052); smol is its successor. Both run on the same
//! runtime-neutral pieces, and so does this crate: sockets from `async-net`, timers from
//! `async-io` (one reactor, driven by whichever executor is in use), streams through the
//! `futures-io` traits ([`FuturesIo`]), signals through `async-signal`. The only thing that
//! depends on the executor is where tasks are spawned: a [`Spawner`], chosen when a
//! [`Server`] or [`Client`] is made.
//!
//! * Feature `async-std` (default): [`Spawner::default`] is `async_std::task::spawn`.
//! * Feature `smol`: `Spawner::smol` (smol's global executor, the default when
//!   `async-std` is off) and `Spawner::executor` (an executor you run yourself).
//!
//! A new project should take smol: `tether-async-std = { default-features = false,
//! features = ["smol", "tls"] }`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod io;
mod runtime;
mod server;
pub mod tls;

pub use client::Client;
pub use io::FuturesIo;
pub use runtime::{now, Spawner};
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

/// WebSockets in an axum router served by this adapter (feature `axum`): see
/// [`tether_rt::axum`]. axum's own `WebSocketUpgrade` needs hyper's upgrades, which tether
/// does not have; this one uses tether's.
#[cfg(feature = "axum")]
pub mod axum {
    pub use tether_rt::axum::{UpgradeRejection, WebSocketUpgrade};
}

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

/// Supervised background jobs (aiojobs): see [`tether_rt::jobs`].
pub mod jobs {
    pub use tether_rt::jobs::*;

    /// A scheduler whose jobs run on the default [`Spawner`](crate::Spawner) (for another,
    /// `Scheduler::new(config, spawner.runtime())`).
    pub fn scheduler(config: SchedulerConfig) -> Scheduler {
        Scheduler::new(config, crate::Spawner::default().runtime())
    }
}

/// WebSocket connections: see [`tether_rt::websocket`].
pub mod websocket {
    pub use tether_rt::websocket::{
        Message, WeakWsSender, WebSocket, WsError, WsReceiver, WsSender,
    };

    use bytes::Bytes;
    use futures_io::{AsyncRead, AsyncWrite};
    use tether_core::ws::WebSocket as CoreWebSocket;

    /// Drives a core WebSocket over `io` in a task on the default
    /// [`Spawner`](crate::Spawner); returns the application's handle. Build `ws` with
    /// [`crate::now`]. `trailing`: bytes already read past the handshake.
    pub fn spawn<IO>(io: IO, ws: CoreWebSocket, trailing: Bytes) -> WebSocket
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let rt = crate::Spawner::default().runtime();
        tether_rt::websocket::spawn(&rt, crate::FuturesIo(io), ws, trailing)
    }
}
