//! The server: accept loop, one task per connection pumping the core's
//! [`ServerConnection`], graceful shutdown.
//!
//! The connection task only does IO: every protocol decision (framing, keep-alive,
//! limits, 100-continue, error answers, head/idle/body timeouts) comes from the core; the
//! task sleeps until `poll_timeout()` and calls `handle_timeout(now)`.

use crate::app::{run_setups, run_teardowns, App, Router};
use crate::body::{Body, BodyError, Request, Response, ResponseBody, UpgradeSlot, UpgradeTx};
use crate::clock::{core_now, to_tokio};
use crate::jobs::{Scheduler, SchedulerConfig};
use crate::websocket;
use bytes::Bytes;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tether_core::h1::{ServerConfig as CoreConfig, ServerConnection, ServerEvent};
use tether_core::ws::WsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// Server settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// HTTP/1.1 limits and deadlines, applied by the core. The tokio defaults: head 30 s,
    /// keep-alive 75 s, body read 30 s, request body limit 1 MiB (413 beyond).
    pub http: CoreConfig,
    /// WebSocket settings for upgrades (heartbeat, limits, permessage-deflate).
    pub websocket: WsConfig,
    /// Connections served at once; more wait in the listen backlog. Default 10 000.
    pub max_connections: usize,
    /// How long a graceful shutdown waits for in-flight requests. Default 30 s.
    pub shutdown_timeout: Duration,
    /// Cancel a handler when its client disconnects. Default `false`: handlers run to
    /// completion (use [`shield`] for work that must finish even when this is on).
    pub cancel_on_disconnect: bool,
    /// The job scheduler handlers reach through [`Request::scheduler`].
    pub jobs: SchedulerConfig,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            http: CoreConfig::default(),
            websocket: WsConfig::default(),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(30),
            cancel_on_disconnect: false,
            jobs: SchedulerConfig::default(),
        }
    }
}

/// Triggers a graceful shutdown of a running server.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown: stop accepting, finish in-flight requests, close idle
    /// connections and WebSockets (1001), close the job scheduler, run the teardowns.
    pub fn shutdown(&self) {
        let _ = self.tx.send(true);
    }
}

/// A bound server; [`Server::serve`] runs it.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Server {
    /// Binds `addr` (the only IO before `serve`).
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let (tx, _) = watch::channel(false);
        Ok(Server {
            listener,
            config,
            shutdown: Arc::new(tx),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to stop it gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            tx: self.shutdown.clone(),
        }
    }

    /// Runs the application until a shutdown (the handle, or SIGINT/SIGTERM when
    /// `on_signals` is set), then shuts down gracefully. Fails if a setup step fails.
    pub async fn serve(self, app: App, on_signals: bool) -> Result<(), String> {
        let (router, setups) = app.into_parts();
        let router = Arc::new(router);
        let teardowns = run_setups(setups, router.state.clone()).await?;
        let scheduler = Scheduler::new(self.config.jobs.clone());
        if on_signals {
            let handle = self.shutdown_handle();
            tokio::spawn(async move {
                wait_for_signal().await;
                handle.shutdown();
            });
        }
        let shared = Arc::new(Shared {
            router,
            scheduler: scheduler.clone(),
            config: self.config.clone(),
            websockets: std::sync::Mutex::new(Vec::new()),
        });
        let permits = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let mut connections = JoinSet::new();
        let mut stop = self.shutdown.subscribe();
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Ok(permit) = permit else { break };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stop.wait_for(|s| *s) => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                // Resource exhaustion (EMFILE...): back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            let stop = self.shutdown.subscribe();
            connections.spawn(async move {
                serve_connection(stream, shared, stop).await;
                drop(permit);
            });
            // Reap finished connection tasks as we go.
            while connections.try_join_next().is_some() {}
        }
        drop(self.listener);
        // In-flight requests get the shutdown timeout; then the rest are cut.
        let deadline = tokio::time::sleep(self.config.shutdown_timeout);
        tokio::pin!(deadline);
        tokio::select! {
            _ = shared.close_websockets() => {}
            _ = &mut deadline => {}
        }
        loop {
            tokio::select! {
                next = connections.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    connections.abort_all();
                    while connections.join_next().await.is_some() {}
                    break;
                }
            }
        }
        scheduler.close().await;
        run_teardowns(teardowns).await;
        Ok(())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Work that must finish even if the caller is cancelled (a handler aborted because its
/// client left): it runs in its own task, and the caller awaits it.
pub async fn shield<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match tokio::spawn(future).await {
        Ok(output) => output,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

struct Shared {
    router: Arc<Router>,
    scheduler: Scheduler,
    config: ServerConfig,
    /// Open WebSockets, held weakly, to close with 1001 at shutdown.
    websockets: std::sync::Mutex<Vec<websocket::WeakWsSender>>,
}

impl Shared {
    fn track(&self, socket: &websocket::WebSocket) {
        if let Ok(mut list) = self.websockets.lock() {
            list.retain(|weak| weak.close_reason().is_none());
            list.push(socket.sender().downgrade());
        }
    }

    /// Closes every open WebSocket with 1001 (going away) and waits until they are closed.
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

/// A handler running for the current request.
struct Running {
    task: JoinHandle<Response>,
    upgrade: UpgradeSlot,
}

/// Pumps one connection: socket bytes into the core, events to handlers, responses back.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conn = ServerConnection::new(shared.config.http.clone(), core_now());
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = vec![0u8; 16 * 1024];
    let mut body_tx: Option<mpsc::Sender<Result<Bytes, BodyError>>> = None;
    let mut held: Option<Bytes> = None;
    let mut running: Option<Running> = None;
    let mut streaming: Option<mpsc::Receiver<Bytes>> = None;
    let mut upgrade: Option<(tether_core::ws::Negotiated, UpgradeTx)> = None;
    let mut peer_gone = false;
    let mut stopping = *stop.borrow();
    if stopping {
        conn.shutdown();
    }
    loop {
        // Events, unless the handler has not taken the last body piece yet (backpressure).
        while held.is_none() {
            let Some(event) = conn.poll_event() else {
                break;
            };
            match event {
                ServerEvent::Request(head) => {
                    let (tx, body) = Body::channel(8);
                    body_tx = Some(tx);
                    let slot = UpgradeSlot::default();
                    let request = Request::new(
                        head,
                        body,
                        shared.router.state.clone(),
                        shared.scheduler.clone(),
                        shared.config.websocket.clone(),
                        slot.clone(),
                    );
                    let router = shared.router.clone();
                    running = Some(Running {
                        task: tokio::spawn(async move { router.dispatch(request).await }),
                        upgrade: slot,
                    });
                }
                ServerEvent::Data(data) => {
                    if let Some(tx) = &body_tx {
                        if let Err(mpsc::error::TrySendError::Full(Ok(data))) =
                            tx.try_send(Ok(data))
                        {
                            held = Some(data);
                        }
                    }
                }
                ServerEvent::End { .. } => body_tx = None,
                ServerEvent::Upgraded { trailing } => {
                    if flush(&mut conn, &mut writer).await.is_err() {
                        return;
                    }
                    if let (Some((negotiated, tx)), Ok(stream)) =
                        (upgrade.take(), reader.reunite(writer))
                    {
                        let core = tether_core::ws::WebSocket::server(
                            shared.config.websocket.clone(),
                            negotiated.deflate,
                            core_now(),
                        );
                        let socket = websocket::spawn(stream, core, trailing);
                        shared.track(&socket);
                        if *stop.borrow() {
                            let _ = socket.close_going_away().await;
                        }
                        let _ = tx.send(socket);
                    }
                    return;
                }
                ServerEvent::Closed => peer_gone = true,
                ServerEvent::Error(e) => {
                    if let Some(tx) = body_tx.take() {
                        let _ = tx.try_send(Err(BodyError::Protocol(e)));
                    }
                }
                _ => {}
            }
        }
        if flush(&mut conn, &mut writer).await.is_err() {
            peer_gone = true;
        }
        if conn.is_closed() || (peer_gone && running.is_none() && streaming.is_none()) {
            if let Some(run) = running.take() {
                if shared.config.cancel_on_disconnect {
                    run.task.abort();
                }
            }
            let _ = writer.shutdown().await;
            return;
        }
        if peer_gone && shared.config.cancel_on_disconnect {
            if let Some(run) = running.take() {
                run.task.abort();
            }
            return;
        }
        let deadline = conn.poll_timeout().map(to_tokio);
        let reading = conn.wants_input() && held.is_none() && !peer_gone;
        tokio::select! {
            read = reader.read(&mut buf), if reading => match read {
                // The core turns EOF into Closed, or an incomplete-message error mid-request;
                // for handler cancellation, EOF means the client has gone.
                Ok(0) | Err(_) => {
                    conn.handle_eof();
                    if shared.config.cancel_on_disconnect {
                        peer_gone = true;
                    }
                }
                Ok(n) => conn.handle_input(core_now(), &buf[..n]),
            },
            permit = reserve(&body_tx), if held.is_some() => {
                if let (Some(permit), Some(data)) = (permit, held.take()) {
                    permit.send(Ok(data));
                } else {
                    held = None;
                }
            }
            done = poll_running(&mut running) => {
                let slot = running.take().map(|run| run.upgrade);
                match done {
                    Ok(response) => {
                        if response.switching {
                            upgrade = slot.and_then(|slot| slot.lock().ok()?.take());
                        }
                        streaming = start_response(&mut conn, response);
                    }
                    Err(_) => {
                        let response = Response::status(http::StatusCode::INTERNAL_SERVER_ERROR);
                        streaming = start_response(&mut conn, response);
                    }
                }
            }
            piece = next_piece(&mut streaming) => match piece {
                Some(piece) => {
                    let _ = conn.send_data(piece);
                }
                None => {
                    streaming = None;
                    let _ = conn.send_end(None);
                }
            },
            _ = sleep_until(deadline) => conn.handle_timeout(core_now()),
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.shutdown();
            }
        }
    }
}

async fn reserve(
    tx: &Option<mpsc::Sender<Result<Bytes, BodyError>>>,
) -> Option<mpsc::Permit<'_, Result<Bytes, BodyError>>> {
    match tx {
        Some(tx) => tx.reserve().await.ok(),
        None => None,
    }
}

async fn poll_running(running: &mut Option<Running>) -> Result<Response, tokio::task::JoinError> {
    match running {
        Some(run) => (&mut run.task).await,
        None => std::future::pending().await,
    }
}

async fn next_piece(streaming: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match streaming {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends a handler's response head (and whole body); returns the stream to pump for a
/// streamed body.
fn start_response(
    conn: &mut ServerConnection,
    response: Response,
) -> Option<mpsc::Receiver<Bytes>> {
    let mut head = http::Response::from_parts(response.head, ());
    head.headers_mut()
        .entry(http::header::DATE)
        .or_insert_with(http_date);
    if conn.send_response(&head).is_err() {
        // The core refused the head (e.g. a 204 with a body length): answer 500 instead.
        let fallback = http::Response::builder()
            .status(500)
            .header("content-length", "0")
            .body(())
            .unwrap_or_default();
        if conn.send_response(&fallback).is_ok() {
            let _ = conn.send_end(None);
        }
        return None;
    }
    if response.switching {
        return None;
    }
    match response.body {
        ResponseBody::Empty => {
            let _ = conn.send_end(None);
            None
        }
        ResponseBody::Full(bytes) => {
            let _ = conn.send_data(bytes);
            let _ = conn.send_end(None);
            None
        }
        ResponseBody::Stream(rx) => Some(rx),
    }
}

/// The current time as an HTTP date, formatted at most once a second per thread (an origin
/// server with a clock must send `Date`, RFC 9110 §6.6.1).
fn http_date() -> http::HeaderValue {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHE: RefCell<Option<(u64, http::HeaderValue)>> = const { RefCell::new(None) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        match &*cache {
            Some((at, value)) if *at == second => value.clone(),
            _ => {
                let value = http::HeaderValue::try_from(httpdate::fmt_http_date(now)).unwrap_or(
                    http::HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
                );
                *cache = Some((second, value.clone()));
                value
            }
        }
    })
}

async fn flush(
    conn: &mut ServerConnection,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
) -> io::Result<()> {
    while let Some(bytes) = conn.poll_transmit(core_now()) {
        writer.write_all(&bytes).await?;
    }
    Ok(())
}
