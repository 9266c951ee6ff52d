//! The HTTP/1.1 server side every runtime adapter shares: [`ServerConfig`], and
//! [`Service`], an application ready to serve connections.
//!
//! The adapter accepts connections and hands each one, as any tokio-IO stream (other
//! runtimes' streams through a compat wrapper), to [`Service::serve_connection`]: the loop
//! that pumps the core's [`ServerConnection`]. It only does IO: every protocol decision
//! (framing, keep-alive, limits, 100-continue, error answers, head/idle/body timeouts) comes
//! from the core, and the loop sleeps until `poll_timeout()` and calls `handle_timeout(now)`.

use crate::app::{run_setups, run_teardowns, App, Router, Teardown};
use crate::body::{Body, BodyError, Request, Response, ResponseBody, Upgrade};
use crate::jobs::{Scheduler, SchedulerConfig};
use crate::runtime::{poll_once, BoxFuture, Rt, Timer};
use crate::websocket;
use bytes::Bytes;
use futures_util::future::CatchUnwind;
use futures_util::FutureExt;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_core::h1::{ServerConnection, ServerConnectionConfig as CoreConfig, ServerEvent};
use tether_core::ws::WsConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

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
    /// completion (the adapter's `shield` runs work that must finish even when this is on).
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

/// An application ready to serve connections: its setups have run, its scheduler is open.
/// Cheap to clone.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Runs the application's setup steps in order and opens its job scheduler on `rt`. A
    /// failing setup undoes those already done and is returned.
    pub async fn start(app: App, config: ServerConfig, rt: Rt) -> Result<Service, String> {
        let (router, setups) = app.into_parts();
        let router = Arc::new(router);
        let teardowns = run_setups(setups, router.state.clone()).await?;
        let scheduler = Scheduler::new(config.jobs.clone(), rt.clone());
        Ok(Service {
            shared: Arc::new(Shared {
                ws_config: Arc::new(config.websocket.clone()),
                rt,
                router,
                scheduler,
                config,
                websockets: Mutex::new(Vec::new()),
                teardowns: Mutex::new(teardowns),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// The job scheduler handlers reach through [`Request::scheduler`].
    pub fn scheduler(&self) -> &Scheduler {
        &self.shared.scheduler
    }

    /// Serves one connection until it ends. When `stop` turns `true` the connection
    /// finishes the request in flight (if any) and closes; a WebSocket upgraded from it
    /// lives on as its own task (see [`Service::close_websockets`]).
    pub async fn serve_connection<IO>(&self, io: IO, stop: watch::Receiver<bool>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve_connection(io, self.shared.clone(), stop).await;
    }

    /// Closes every open WebSocket with 1001 (going away) and waits until they are closed.
    pub async fn close_websockets(&self) {
        self.shared.close_websockets().await;
    }

    /// The end of a graceful shutdown, once the connections are done: closes the scheduler
    /// (running jobs get its close timeout), then runs the teardowns in reverse order.
    pub async fn finish(&self) {
        self.shared.scheduler.close().await;
        let teardowns = self
            .shared
            .teardowns
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default();
        run_teardowns(teardowns).await;
    }
}

struct Shared {
    rt: Rt,
    /// `config.websocket`, shared with every request.
    ws_config: Arc<WsConfig>,
    router: Arc<Router>,
    scheduler: Scheduler,
    config: ServerConfig,
    /// Open WebSockets, held weakly, to close with 1001 at shutdown.
    websockets: Mutex<Vec<websocket::WeakWsSender>>,
    /// The setups' teardowns, run by [`Service::finish`].
    teardowns: Mutex<Vec<Teardown>>,
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

/// The handler of the current request, polled by the connection's own task (no task per
/// request); a panic becomes a 500.
type Running = CatchUnwind<AssertUnwindSafe<BoxFuture<Response>>>;

/// Pumps one connection: socket bytes into the core, events to handlers, responses back.
async fn serve_connection<IO>(mut io: IO, shared: Arc<Shared>, stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let rt = shared.rt.clone();
    let mut conn = ServerConnection::new(shared.config.http.clone(), rt.now());
    let mut buf = vec![0u8; 16 * 1024];
    let mut body_tx: Option<mpsc::Sender<Result<Bytes, BodyError>>> = None;
    let mut held: Option<Bytes> = None;
    let mut running: Option<Running> = None;
    let mut streaming: Option<mpsc::Receiver<Bytes>> = None;
    let mut upgrade: Option<Box<Upgrade>> = None;
    let mut peer_gone = false;
    let mut timer = Timer::default();
    let mut stopping = *stop.borrow();
    if stopping {
        conn.shutdown();
    }
    let mut stop_watch = stop.clone();
    let stop_signal = async move {
        let _ = stop_watch.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop_signal);
    loop {
        // Events, unless the handler has not taken the last body piece yet (backpressure).
        while held.is_none() {
            let Some(event) = conn.poll_event() else {
                break;
            };
            match event {
                ServerEvent::Request { head, body } => {
                    let body = if !body.is_empty() {
                        let (tx, body) = Body::channel(8);
                        body_tx = Some(tx);
                        body
                    } else {
                        Body::empty()
                    };
                    let request = Request::new(
                        head,
                        body,
                        shared.router.state.clone(),
                        shared.scheduler.clone(),
                        shared.ws_config.clone(),
                    );
                    let mut handler =
                        AssertUnwindSafe(shared.router.dispatch(request)).catch_unwind();
                    // Most handlers answer at once: take the answer now, and write it with
                    // this turn's flush, instead of a turn of the select below.
                    match poll_once(&mut handler).await {
                        Some(done) => (streaming, upgrade) = respond(&mut conn, done),
                        None => running = Some(handler),
                    }
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
                    if flush(&rt, &mut conn, &mut io).await.is_err() {
                        return;
                    }
                    if let Some((negotiated, tx)) = upgrade.take().map(|boxed| *boxed) {
                        let core = tether_core::ws::WebSocket::server(
                            shared.config.websocket.clone(),
                            negotiated.deflate,
                            rt.now(),
                        );
                        let socket = websocket::spawn(&rt, io, core, trailing);
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
        if flush(&rt, &mut conn, &mut io).await.is_err() {
            peer_gone = true;
        }
        if conn.is_closed() && !shared.config.cancel_on_disconnect {
            // The connection is over (EOF, a protocol error answered, a timeout) but the
            // handler runs to completion by default, still owned by this task (which the
            // server waits for, and cuts at the shutdown timeout).
            if let Some(handler) = running.take() {
                let _ = handler.await;
            }
        }
        if conn.is_closed() || (peer_gone && running.is_none() && streaming.is_none()) {
            // Dropping `running` here cancels the handler (`cancel_on_disconnect`).
            let _ = io.shutdown().await;
            return;
        }
        if peer_gone && shared.config.cancel_on_disconnect {
            return;
        }
        let deadline = conn.poll_timeout();
        let reading = conn.wants_input() && held.is_none() && !peer_gone;
        tokio::select! {
            read = io.read(&mut buf), if reading => match read {
                // The core turns EOF into Closed, or an incomplete-message error mid-request;
                // for handler cancellation, EOF means the client has gone.
                Ok(0) | Err(_) => {
                    conn.handle_eof();
                    if shared.config.cancel_on_disconnect {
                        peer_gone = true;
                    }
                }
                Ok(n) => conn.handle_input(rt.now(), &buf[..n]),
            },
            permit = reserve(&body_tx), if held.is_some() => {
                if let (Some(permit), Some(data)) = (permit, held.take()) {
                    permit.send(Ok(data));
                } else {
                    held = None;
                }
            }
            done = poll_running(&mut running) => {
                running = None;
                (streaming, upgrade) = respond(&mut conn, done);
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
            () = timer.sleep_until(&*rt, deadline), if deadline.is_some() => {
                conn.handle_timeout(rt.now());
            }
            () = &mut stop_signal, if !stopping => {
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

async fn poll_running(running: &mut Option<Running>) -> std::thread::Result<Response> {
    match running {
        Some(handler) => handler.await,
        None => std::future::pending().await,
    }
}

async fn next_piece(streaming: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match streaming {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends what the handler returned (a 500 if it panicked); returns the streamed body to
/// pump, and the upgrade to complete once the core hands the transport over.
fn respond(
    conn: &mut ServerConnection,
    done: std::thread::Result<Response>,
) -> (Option<mpsc::Receiver<Bytes>>, Option<Box<Upgrade>>) {
    match done {
        Ok(mut response) => {
            let upgrade = response.upgrade.take();
            let switching = upgrade.is_some();
            (start_response(conn, response, switching), upgrade)
        }
        Err(_) => {
            let response = Response::status(http::StatusCode::INTERNAL_SERVER_ERROR);
            (start_response(conn, response, false), None)
        }
    }
}

/// Sends a handler's response head (and whole body); returns the stream to pump for a
/// streamed body.
fn start_response(
    conn: &mut ServerConnection,
    response: Response,
    switching: bool,
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
    if switching {
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

async fn flush<W: AsyncWrite + Unpin>(
    rt: &Rt,
    conn: &mut ServerConnection,
    writer: &mut W,
) -> io::Result<()> {
    // One clock read per flush: on some hosts reading the clock is a system call.
    let now = rt.now();
    while let Some(bytes) = conn.poll_transmit(now) {
        writer.write_all(&bytes).await?;
    }
    Ok(())
}
