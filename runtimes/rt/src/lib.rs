//! # tether-rt
//!
//! What tether's runtime adapters share. The protocol lives in [`tether_core`]; the adapters
//! (`tether-tokio`, `tether-async-std` for async-std and smol, WebAssembly hosts next) own
//! sockets, timers and tasks. Between the two sit the async loops that pump a core state
//! machine over a transport, and the application model they serve. They are written once,
//! here, against a small [`Runtime`] (now, sleep until, spawn, wall clock, randomness) and
//! two IO traits of this crate ([`io::Read`], [`io::Write`]), with runtime-free channels:
//! this crate depends on no runtime, and builds for `wasm32-unknown-unknown`. Each adapter
//! stays a few hundred lines of stream glue, accept loops and connects.
//!
//! * [`Service`]: an [`App`] ready to serve; [`Service::serve_connection`] pumps the core's
//!   HTTP/1.1 server connection for one accepted transport.
//! * [`App`], [`Request`], [`Response`], [`Body`]: routes, typed state, middlewares,
//!   setup/teardown contexts (aiohttp's `web.Application`).
//! * [`Client`]: the pooled HTTP client (aiohttp's `ClientSession`) over the core's h1
//!   client connection, timeouts and pool; the adapter gives it a [`Connector`].
//! * [`websocket`]: the WebSocket pump and its [`WebSocket`] handle (Stream/Sink).
//! * [`jobs`]: the supervised job scheduler (aiojobs).
//! * `tower` (feature `tower`): tower services and axum routers as an app's fallback;
//!   `axum` (feature `axum`): the WebSocket extractor for such a router.
//! * [`runtime`]: the [`Runtime`] an adapter implements, and [`Task`], a joinable,
//!   abortable task built on it; [`io`]: the stream traits an adapter implements.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod app;
#[cfg(feature = "axum")]
pub mod axum;
mod body;
pub mod client;
mod connection;
pub mod io;
pub mod jobs;
mod queue;
mod request;
mod response;
mod router;
pub mod runtime;
mod service;
mod sync;
#[cfg(feature = "tower")]
pub mod tower;
mod transport;
pub mod websocket;

pub use app::{App, BoxError, CleanupError, Next, StartError, Teardown, TeardownFailure};
pub use body::{Body, BodyError};
pub use client::{Client, ClientConfig, ClientError, ClientResponse, Connector};
pub use request::{ConnectionInfo, PendingWebSocket, Request};
pub use response::{BodySender, Response, ResponseClosed};
pub use router::{Params, RouteError};
pub use runtime::{BoxFuture, MaybeSend, MaybeSync, Rt, Runtime, Task, TaskError};
pub use service::{ServerConfig, Service};
pub use websocket::WebSocket;

/// Built for `wasm32` only (by `scripts/wasm-check.sh`): on a single-threaded host, what this
/// crate runs need not be `Send`. A handler, a task and a job here hold an `Rc` across an
/// `.await`, which a threaded host would refuse to compile.
#[cfg(target_arch = "wasm32")]
#[allow(dead_code)]
mod single_threaded_host {
    use std::rc::Rc;

    async fn yield_once(local: &Rc<u32>) -> u32 {
        std::future::ready(()).await;
        **local
    }

    fn handlers_tasks_and_jobs_need_not_be_send(rt: crate::Rt, scheduler: crate::jobs::Scheduler) {
        let _app = crate::App::new().route(http::Method::GET, "/", |_req: crate::Request| async {
            let local = Rc::new(7);
            let n = yield_once(&local).await;
            crate::Response::text(n.to_string())
        });
        let _task = crate::Task::spawn(&*rt, async {
            let local = Rc::new(1);
            yield_once(&local).await
        });
        let _job = scheduler.try_spawn(async {
            let local = Rc::new(2);
            Ok::<_, std::io::Error>(yield_once(&local).await)
        });
    }
}
