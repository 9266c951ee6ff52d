//! The HTTP/1.1 server side every runtime adapter shares: [`ServerConfig`], and
//! [`Service`], an application ready to serve connections, with the stages of its
//! shutdown.
//!
//! The adapter accepts connections and hands each one, as a stream implementing this
//! crate's [`Read`](crate::io::Read) and [`Write`](crate::io::Write) (a few lines of glue
//! per runtime), to [`Service::serve_connection`], the loop that pumps the core's server
//! connection (see `connection.rs`).

use crate::app::{run_teardowns, App, CleanupError, Routes, StartError, Teardown};
use crate::connection;
use crate::io::{Read, Write};
use crate::jobs::{Scheduler, SchedulerConfig};
use crate::request::ConnectionInfo;
use crate::runtime::MaybeSend;
use crate::runtime::Rt;
use crate::sync::{watch, WatchSender};
use crate::websocket;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_core::h1::ServerConnectionConfig;
use tether_core::ws::WsConfig;

/// Server settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// HTTP/1.1 limits and deadlines, applied by the core: head 30 s, keep-alive 75 s, body
    /// read 30 s, request body limit 1 MiB (413 beyond).
    pub http: ServerConnectionConfig,
    /// WebSocket settings for upgrades (heartbeat, limits, permessage-deflate).
    pub websocket: WsConfig,
    /// Connections served at once; more wait in the listen backlog. Default 10 000.
    pub max_connections: usize,
    /// How long a graceful shutdown waits for in-flight requests. Default 30 s.
    pub shutdown_timeout: Duration,
    /// Cancel a handler when its client disconnects. Default `false`: handlers run to
    /// completion (`shield` runs work that must finish even when this is on).
    pub cancel_on_disconnect: bool,
    /// The job scheduler handlers reach through
    /// [`Request::scheduler`](crate::Request::scheduler).
    pub jobs: SchedulerConfig,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            http: ServerConnectionConfig::default(),
            websocket: WsConfig::default(),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(30),
            cancel_on_disconnect: false,
            jobs: SchedulerConfig::default(),
        }
    }
}

/// How far the shutdown of a [`Service`] has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Running,
    /// Finish the request in flight, then close; take no new ones.
    Draining,
    /// The shutdown timeout ran out: end now (request bodies fail with `Shutdown`).
    Abort,
}

/// An application ready to serve connections: its setups have run, its scheduler is open.
/// Cheap to clone.
///
/// An adapter's server: [`Service::start`], then [`Service::serve_connection`] per
/// accepted connection until [`Service::stopping`] resolves; then
/// [`Service::close_websockets`], wait for the connections (up to the shutdown timeout,
/// then [`Service::abort`]), and [`Service::finish`].
pub struct Service<S = ()> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Service<S> {
    fn clone(&self) -> Self {
        Service {
            shared: self.shared.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Service<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Service<S> {
    /// Runs the application's setup steps in order and opens its job scheduler on `rt`. A
    /// route that could not be added, or a failing setup (whose earlier steps are undone),
    /// is returned.
    pub async fn start(
        app: App<S>,
        config: ServerConfig,
        rt: Rt,
    ) -> Result<Service<S>, StartError> {
        let (routes, teardowns) = app.start().await?;
        let scheduler = Scheduler::new(config.jobs.clone(), rt.clone());
        let (stage, _) = watch(Stage::Running);
        Ok(Service {
            shared: Arc::new(Shared {
                ws_config: Arc::new(config.websocket.clone()),
                rt,
                routes,
                scheduler,
                config,
                stage,
                websockets: Mutex::new(Vec::new()),
                teardowns: Mutex::new(teardowns),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// The job scheduler handlers reach through
    /// [`Request::scheduler`](crate::Request::scheduler).
    pub fn scheduler(&self) -> &Scheduler {
        &self.shared.scheduler
    }

    /// Serves one connection until it ends. Once [`Service::shutdown`] is called, the
    /// connection finishes the request in flight (if any) and closes; after
    /// [`Service::abort`] it ends at once. A WebSocket upgraded from it lives on as its own
    /// task (see [`Service::close_websockets`]).
    pub async fn serve_connection<IO>(&self, io: IO, info: ConnectionInfo)
    where
        IO: Read + Write + Unpin + MaybeSend + 'static,
    {
        connection::serve(io, self.shared.clone(), info).await;
    }

    /// Starts the graceful shutdown: connections finish their request in flight and close;
    /// idle ones close now.
    pub fn shutdown(&self) {
        self.shared
            .stage
            .send_if_modified(|stage| raise(stage, Stage::Draining));
    }

    /// Ends every connection now (the shutdown timeout ran out): their handlers are
    /// dropped, request bodies being read fail with
    /// [`BodyError::Shutdown`](crate::BodyError::Shutdown).
    pub fn abort(&self) {
        self.shared
            .stage
            .send_if_modified(|stage| raise(stage, Stage::Abort));
    }

    /// Resolves once [`Service::shutdown`] (or [`Service::abort`]) was called: the accept
    /// loop's signal to stop.
    pub async fn stopping(&self) {
        let mut stage = self.shared.stage.subscribe();
        let _ = stage.wait_for(|stage| *stage != Stage::Running).await;
    }

    /// Closes every open WebSocket with 1001 (going away) and waits until they are closed.
    pub async fn close_websockets(&self) {
        self.shared.close_websockets().await;
    }

    /// The end of a graceful shutdown, once the connections are done: closes the scheduler
    /// (running jobs get its close timeout), then runs the teardowns in reverse order (all
    /// of them; the failures are returned together).
    pub async fn finish(&self) -> Result<(), CleanupError> {
        self.shared.scheduler.close().await;
        let teardowns = self
            .shared
            .teardowns
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default();
        run_teardowns(teardowns).await
    }
}

fn raise(stage: &mut Stage, to: Stage) -> bool {
    if *stage < to {
        *stage = to;
        true
    } else {
        false
    }
}

/// What every connection of a service shares.
pub(crate) struct Shared<S> {
    pub(crate) rt: Rt,
    /// `config.websocket`, shared with every request.
    pub(crate) ws_config: Arc<WsConfig>,
    pub(crate) routes: Arc<Routes<S>>,
    pub(crate) scheduler: Scheduler,
    pub(crate) config: ServerConfig,
    pub(crate) stage: WatchSender<Stage>,
    /// Open WebSockets, held weakly, to close with 1001 at shutdown.
    websockets: Mutex<Vec<websocket::WeakWsSender>>,
    /// The setups' teardowns, run by [`Service::finish`].
    teardowns: Mutex<Vec<(String, Teardown)>>,
}

impl<S> Shared<S> {
    pub(crate) fn track(&self, socket: &websocket::WebSocket) {
        if let Ok(mut list) = self.websockets.lock() {
            list.retain(|weak| weak.close_reason().is_none());
            list.push(socket.sender().downgrade());
        }
    }

    async fn close_websockets(&self) {
        let sockets = self
            .websockets
            .lock()
            .map(|mut list| std::mem::take(&mut *list));
        let closing = sockets
            .unwrap_or_default()
            .into_iter()
            .map(|weak| async move {
                let _ = weak.close_going_away().await;
                weak.closed().await;
            });
        futures_util::future::join_all(closing).await;
    }
}
