//! # tether-tokio
//!
//! The tokio adapter of tether: it does the IO and nothing else. Every protocol decision and
//! every timeout comes from [`tether_core`]; the tasks here read sockets into the core's
//! state machines, write out what they produce, and sleep until their deadlines.
//!
//! * [`Server`] and [`App`]: routes, typed state, middlewares, setup/teardown contexts,
//!   graceful shutdown, a [`jobs::Scheduler`] for supervised background work.
//! * [`WebSocket`]: the WebSocket object handlers get from [`Request::websocket`].
//! * [`Client`]: a pooled HTTP client with aiohttp's four timeouts, redirects and
//!   `ws_connect` (plain `http://`/`ws://` for now).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod app;
mod body;
mod client;
mod clock;
pub mod jobs;
mod server;
pub mod tls;
pub mod websocket;

pub use app::{App, BoxFuture, Next, Teardown};
pub use body::{Body, BodyError, BodySender, PendingWebSocket, Request, Response};
pub use client::{Client, ClientConfig, ClientError, RequestBuilder, Response as ClientResponse};
pub use server::{shield, Server, ServerConfig, ShutdownHandle};
pub use websocket::WebSocket;
