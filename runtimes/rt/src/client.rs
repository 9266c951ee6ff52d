//! The HTTP client (aiohttp's `ClientSession`): pooled keep-alive connections, the four
//! timeouts, redirects, and WebSocket connections, all decided by the core (`h1` client
//! connection, `pool`, `time::RequestTimer`); this module moves the bytes, over transports a
//! runtime adapter's [`Connector`] opens, with the adapter's [`Runtime`] for time and the one
//! background task (the idle reaper).

use crate::runtime::{poll_once, sleep_until, BoxFuture, Rt, Runtime};
use crate::websocket::{self, WebSocket};
use bytes::{Bytes, BytesMut};
use futures_util::future::{AbortHandle, Abortable};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_core::h1::{ClientConnection, ClientConnectionConfig as H1Config, ClientEvent};
use tether_core::pool::{
    self, Acquire, ConnId, Grant, Origin, Pool, PoolConfig, PoolEvent, PoolStats, WaiterId,
};
use tether_core::time::{ClientTimeouts, RequestTimer, TimeoutKind};
use tether_core::ws::{ClientHandshake, WsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// What went wrong with a request. Never a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// One of the four timeouts fired.
    #[error("{0}")]
    Timeout(TimeoutKind),
    /// The URL cannot be requested (not absolute, not http/ws, bad characters).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// Resolving the host failed.
    #[error("DNS lookup failed: {0}")]
    Dns(io::Error),
    /// Opening the connection failed.
    #[error("connect failed: {0}")]
    Connect(io::Error),
    /// Reading or writing the connection failed.
    #[error("connection error: {0}")]
    Io(io::Error),
    /// The server broke HTTP/1.1 (the core's typed error).
    #[error("protocol error: {0}")]
    Protocol(#[from] tether_core::h1::Error),
    /// The response body is larger than the client's limit.
    #[error("response body over {0} bytes")]
    BodyTooLarge(usize),
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// The WebSocket handshake failed.
    #[error("WebSocket handshake failed: {0}")]
    WebSocket(#[from] tether_core::ws::HandshakeError),
    /// A JSON body could not be encoded or decoded (the `json` feature).
    #[error("JSON error: {0}")]
    Json(String),
    /// The TLS handshake failed, or TLS is not available.
    #[error("TLS error: {0}")]
    Tls(String),
}

/// Client settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The four timeouts (aiohttp's defaults: total 300 s, the others off).
    pub timeouts: ClientTimeouts,
    /// Pool limits and keep-alive (100 in all, unlimited per host, 15 s idle).
    pub pool: PoolConfig,
    /// Headers added to every request that does not set them.
    pub default_headers: HeaderMap,
    /// The `User-Agent`.
    pub user_agent: String,
    /// Redirects followed (0: none). Default 10.
    pub max_redirects: usize,
    /// Largest body `bytes()`/`text()` will collect. Default 64 MiB.
    pub max_body_size: usize,
    /// WebSocket settings for `ws_connect`.
    pub websocket: WsConfig,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            timeouts: ClientTimeouts::default(),
            pool: PoolConfig::default(),
            default_headers: HeaderMap::new(),
            user_agent: concat!("tether/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_redirects: 10,
            max_body_size: 64 << 20,
            websocket: WsConfig::default(),
        }
    }
}

/// A transport: plain TCP, or TLS over it, as tokio IO (other runtimes' streams through a
/// compat wrapper).
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// How an adapter opens connections: DNS, TCP, and TLS for `https`/`wss` origins. The
/// client calls it once per new pooled connection (under the `sock_connect` timeout) and
/// once per WebSocket.
pub trait Connector: Send + Sync + 'static {
    /// Opens a transport to `origin`. Failures are [`ClientError::Dns`],
    /// [`ClientError::Connect`] or [`ClientError::Tls`].
    fn connect(&self, origin: &Origin) -> BoxFuture<Result<Box<dyn Io>, ClientError>>;
}

/// One open HTTP connection.
struct Conn {
    /// The clock the core's inputs and outputs are stamped with.
    rt: Rt,
    stream: Box<dyn Io>,
    http: ClientConnection,
    /// The read buffer, one per connection (not in the request's futures, where it would be
    /// zeroed on every read and copied whenever a future is moved).
    buf: Box<[u8]>,
}

/// Size of a connection's read buffer.
const READ_BUFFER: usize = 16 * 1024;

impl Conn {
    fn new(rt: Rt, stream: Box<dyn Io>) -> Conn {
        Conn {
            rt,
            stream,
            http: ClientConnection::new(H1Config::default()),
            buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
        }
    }
}

struct Shared {
    rt: Rt,
    /// `config.user_agent` as a header value, made once.
    user_agent: HeaderValue,
    connector: Arc<dyn Connector>,
    config: ClientConfig,
    pool: Mutex<Pool>,
    /// Idle connections the pool may hand out again.
    idle: Mutex<HashMap<ConnId, Conn>>,
    /// Requests waiting for a pool grant.
    waiters: Mutex<HashMap<WaiterId, oneshot::Sender<Grant>>>,
    /// Expires idle connections; aborted when the client goes away.
    reaper: Mutex<Option<AbortHandle>>,
    /// Wakes the reaper when a connection turns idle (the pool's next deadline may be
    /// earlier than the one it sleeps until).
    reaper_wake: Arc<tokio::sync::Notify>,
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
                user_agent: header_value(&config.user_agent),
                rt,
                connector,
                config,
                pool: Mutex::new(pool),
                idle: Mutex::new(HashMap::new()),
                waiters: Mutex::new(HashMap::new()),
                reaper: Mutex::new(None),
                reaper_wake: Arc::new(tokio::sync::Notify::new()),
            }),
        }
    }

    /// Now, on the runtime's clock.
    fn now(&self) -> tether_core::time::Instant {
        self.shared.rt.now()
    }

    /// Starts a request.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method,
            url: url.to_owned(),
            headers: HeaderMap::new(),
            body: RequestBody::Empty,
            timeouts: self.shared.config.timeouts,
            expect_continue: false,
            follow_redirects: true,
        }
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
        Some(self.shared.pool.lock().ok()?.stats(&origin))
    }

    /// Closes idle connections and refuses new requests. Responses being read finish.
    pub async fn close(&self) {
        let ids = match self.shared.pool.lock() {
            Ok(mut pool) => pool.close(),
            Err(_) => return,
        };
        let conns: Vec<Conn> = match self.shared.idle.lock() {
            Ok(mut idle) => ids.iter().filter_map(|id| idle.remove(id)).collect(),
            Err(_) => Vec::new(),
        };
        self.drain_pool_events();
        for mut conn in conns {
            let _ = conn.stream.shutdown().await;
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
        WsRequest {
            client: self.clone(),
            url: url.to_owned(),
            protocols: Vec::new(),
            headers: HeaderMap::new(),
            config: self.shared.config.websocket.clone(),
            timeouts: self.shared.config.timeouts,
        }
    }

    /// The opening handshake of a WebSocket on a connection of its own (never pooled).
    async fn ws_handshake(
        &self,
        ws: WsRequest,
    ) -> Result<(WebSocket, Option<String>), ClientError> {
        let url = &ws.url;
        let uri: Uri = url
            .parse()
            .map_err(|_| ClientError::InvalidUrl(url.to_owned()))?;
        let origin =
            Origin::from_uri(&uri).ok_or_else(|| ClientError::InvalidUrl(url.to_owned()))?;
        let mut timer = RequestTimer::new(ws.timeouts, self.now());
        let protocols: Vec<&str> = ws.protocols.iter().map(String::as_str).collect();
        let (handshake, mut request) =
            ClientHandshake::new(&uri, random_key(), &protocols, &ws.config)?;
        add_headers(
            request.headers_mut(),
            &self.shared,
            &ws.headers,
            is_handshake_header,
        );
        timer.connecting(self.now());
        let stream = with_deadline(
            &*self.shared.rt,
            &mut timer,
            self.shared.connector.connect(&origin),
        )
        .await??;
        timer.connected();
        let mut conn = Conn::new(self.shared.rt.clone(), stream);
        conn.http.send_request(&request)?;
        conn.http.send_end(None)?;
        with_deadline(&*self.shared.rt, &mut timer, flush(&mut conn)).await??;
        timer.sent(self.now());
        let mut response = None;
        loop {
            match with_deadline(&*self.shared.rt, &mut timer, next_event(&mut conn)).await?? {
                ClientEvent::Response(head) => response = Some(head),
                ClientEvent::Upgraded { trailing } => {
                    let Some(head) = response else {
                        return Err(ClientError::Closed);
                    };
                    let negotiated = handshake.validate(&head)?;
                    let core = tether_core::ws::WebSocket::client(
                        ws.config.clone(),
                        negotiated.deflate,
                        self.now(),
                        mask_keys(),
                    );
                    return Ok((
                        websocket::spawn(&self.shared.rt, conn.stream, core, trailing),
                        negotiated.protocol,
                    ));
                }
                ClientEvent::End { .. } | ClientEvent::Closed => {
                    let status = response
                        .map(|r| r.status())
                        .unwrap_or(StatusCode::BAD_GATEWAY);
                    return Err(tether_core::ws::HandshakeError::NotSwitching(status).into());
                }
                ClientEvent::Error(e) => return Err(e.into()),
                _ => timer.read(self.now()),
            }
        }
    }

    fn drain_pool_events(&self) {
        let events: Vec<PoolEvent> = match self.shared.pool.lock() {
            Ok(mut pool) => std::iter::from_fn(|| pool.poll_event()).collect(),
            Err(_) => return,
        };
        for event in events {
            match event {
                PoolEvent::Granted { waiter, grant } => {
                    let tx = self
                        .shared
                        .waiters
                        .lock()
                        .ok()
                        .and_then(|mut w| w.remove(&waiter));
                    if let Some(tx) = tx {
                        if tx.send(grant).is_err() {
                            // The waiter is gone: its grant goes back to the pool.
                            self.cancel_wait(waiter);
                        }
                    }
                }
                PoolEvent::Close(id) => {
                    if let Ok(mut idle) = self.shared.idle.lock() {
                        idle.remove(&id); // dropping the stream closes it
                    }
                }
                PoolEvent::Refused(waiter) => {
                    if let Ok(mut waiters) = self.shared.waiters.lock() {
                        waiters.remove(&waiter); // the dropped sender wakes it with Closed
                    }
                }
                _ => {}
            }
        }
    }

    /// A waiter gives up: whatever it was granted and has not used goes back to the pool.
    fn cancel_wait(&self, waiter: WaiterId) {
        if let Ok(mut pool) = self.shared.pool.lock() {
            let _ = pool.cancel_wait(waiter, self.now());
        }
        self.drain_pool_events();
    }

    /// Keeps one task that expires idle connections on the pool's deadlines.
    fn ensure_reaper(&self) {
        let Ok(mut reaper) = self.shared.reaper.lock() else {
            return;
        };
        if reaper.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let wake = self.shared.reaper_wake.clone();
        let rt = self.shared.rt.clone();
        let (abort, registration) = AbortHandle::new_pair();
        *reaper = Some(abort);
        let task = Abortable::new(
            async move {
                loop {
                    let Some(shared) = weak.upgrade() else { return };
                    let next = shared.pool.lock().ok().and_then(|p| p.poll_timeout());
                    let woken = wake.notified();
                    // Only the weak reference is held while sleeping: the client can go away.
                    drop(shared);
                    tokio::select! {
                        _ = sleep_until(&*rt, next) => {}
                        _ = woken => {}
                    }
                    let Some(shared) = weak.upgrade() else { return };
                    if let Ok(mut pool) = shared.pool.lock() {
                        pool.handle_timeout(shared.rt.now());
                    }
                    Client { shared }.drain_pool_events();
                }
            },
            registration,
        );
        self.shared.rt.spawn(Box::pin(async move {
            let _ = task.await;
        }));
    }

    /// A connection for `origin`: reused, newly opened, or after a wait.
    async fn acquire(
        &self,
        origin: &Origin,
        timer: &mut RequestTimer,
    ) -> Result<Lease, ClientError> {
        self.ensure_reaper();
        let answer = self
            .shared
            .pool
            .lock()
            .map_err(|_| ClientError::Closed)?
            .acquire(origin, self.now())
            .map_err(|_| ClientError::Closed)?;
        self.drain_pool_events();
        let grant = match answer {
            Acquire::Ready(grant) => grant,
            Acquire::Wait(waiter) => {
                let (tx, rx) = oneshot::channel();
                if let Ok(mut waiters) = self.shared.waiters.lock() {
                    waiters.insert(waiter, tx);
                }
                // A grant may have been issued before the sender was registered.
                self.drain_pool_events();
                let guard = WaitGuard {
                    client: self,
                    waiter,
                };
                let grant = with_deadline(&*self.shared.rt, timer, rx)
                    .await?
                    .map_err(|_| ClientError::Closed)?;
                std::mem::forget(guard);
                grant
            }
        };
        match grant {
            Grant::Reuse(id) => {
                let conn = self
                    .shared
                    .idle
                    .lock()
                    .ok()
                    .and_then(|mut idle| idle.remove(&id));
                match conn {
                    Some(conn) => Ok(Lease::new(self, id, conn, true)),
                    None => {
                        // Closed under us: release it as broken and open anew.
                        self.release(id, None, false, None);
                        Box::pin(self.acquire(origin, timer)).await
                    }
                }
            }
            Grant::Open(id) => {
                timer.connecting(self.now());
                // Dropped (the request was cancelled) or failed: the slot is given back.
                let opening = OpeningGuard { client: self, id };
                let stream = with_deadline(
                    &*self.shared.rt,
                    timer,
                    self.shared.connector.connect(origin),
                )
                .await??;
                std::mem::forget(opening);
                if let Ok(mut pool) = self.shared.pool.lock() {
                    let _ = pool.opened(id);
                }
                self.drain_pool_events();
                Ok(Lease::new(
                    self,
                    id,
                    Conn::new(self.shared.rt.clone(), stream),
                    false,
                ))
            }
        }
    }

    /// Gives a connection back: kept idle if `conn` is reusable, else closed.
    fn release(
        &self,
        id: ConnId,
        conn: Option<Conn>,
        reusable_hint: bool,
        keep_alive: Option<Duration>,
    ) {
        let reusable = reusable_hint && conn.as_ref().is_some_and(|c| c.http.is_reusable());
        if let (true, Some(conn)) = (reusable, conn) {
            if let Ok(mut idle) = self.shared.idle.lock() {
                idle.insert(id, conn);
            }
        }
        if let Ok(mut pool) = self.shared.pool.lock() {
            let _ = pool.release(id, reusable, keep_alive, self.now());
        }
        if reusable {
            // After the pool has the connection's idle deadline.
            self.shared.reaper_wake.notify_one();
        }
        self.drain_pool_events();
    }
}

/// A connection in use by one request. However the request ends (read to its end, failed,
/// or dropped mid-way by a cancelled task), the pool hears of it exactly once.
struct Lease {
    client: Client,
    id: ConnId,
    conn: Option<Conn>,
    /// Whether it came from the idle set (a stale-connection retry is allowed only then).
    reused: bool,
    /// The server's `Keep-Alive: timeout=N`: how long it keeps the connection open idle.
    keep_alive: Option<Duration>,
}

impl Lease {
    fn new(client: &Client, id: ConnId, conn: Conn, reused: bool) -> Lease {
        Lease {
            client: client.clone(),
            id,
            conn: Some(conn),
            reused,
            keep_alive: None,
        }
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until given back")
    }

    /// The exchange ended cleanly: back to the pool if the connection allows reuse.
    fn give_back(mut self) {
        let conn = self.conn.take();
        self.client.release(self.id, conn, true, self.keep_alive);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.conn.take().is_some() {
            // Not given back: the exchange failed or was abandoned. Closed, never reused.
            self.client.release(self.id, None, false, None);
        }
    }
}

/// Gives a slot back to the pool if opening a connection fails or is abandoned.
struct OpeningGuard<'a> {
    client: &'a Client,
    id: ConnId,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.client.shared.pool.lock() {
            let _ = pool.open_failed(self.id, self.client.now());
        }
        self.client.drain_pool_events();
    }
}

/// Gives up a pool wait if the request is dropped or times out while waiting.
struct WaitGuard<'a> {
    client: &'a Client,
    waiter: WaiterId,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.client.shared.waiters.lock() {
            waiters.remove(&self.waiter);
        }
        self.client.cancel_wait(self.waiter);
    }
}

/// A streamed request body: pieces sent with chunked transfer coding.
pub type BodyStream = std::pin::Pin<Box<dyn futures_core::Stream<Item = Bytes> + Send>>;

/// A request body.
enum RequestBody {
    Empty,
    Full(Bytes),
    /// A stream can be sent once: no retry, no redirect that repeats the body.
    Stream(Option<BodyStream>),
}

/// What one attempt sends.
enum Outgoing {
    Empty,
    Full(Bytes),
    Stream(BodyStream),
}

impl RequestBody {
    /// The body for one more attempt, or `None` if it cannot be sent again.
    fn attempt(&mut self) -> Option<Outgoing> {
        match self {
            RequestBody::Empty => Some(Outgoing::Empty),
            RequestBody::Full(bytes) => Some(Outgoing::Full(bytes.clone())),
            RequestBody::Stream(stream) => stream.take().map(Outgoing::Stream),
        }
    }
}

/// A WebSocket connection being set up ([`Client::ws`]).
pub struct WsRequest {
    client: Client,
    url: String,
    protocols: Vec<String>,
    headers: HeaderMap,
    config: WsConfig,
    timeouts: ClientTimeouts,
}

impl std::fmt::Debug for WsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsRequest")
            .field("url", &self.url)
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

impl WsRequest {
    /// Offers a subprotocol (in order of preference).
    pub fn protocol(mut self, protocol: &str) -> WsRequest {
        self.protocols.push(protocol.to_owned());
        self
    }

    /// Adds a header to the upgrade request (`Origin`, `Authorization`, cookies...). Invalid
    /// names or values, and the handshake's own headers, are ignored.
    pub fn header(mut self, name: &str, value: &str) -> WsRequest {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.append(name, value);
        }
        self
    }

    /// Settings of this connection (permessage-deflate offer, heartbeat, size limits,
    /// close timeout), instead of the client's `websocket` settings.
    pub fn config(mut self, config: WsConfig) -> WsRequest {
        self.config = config;
        self
    }

    /// Timeouts of the handshake (connect, `sock_read` for the 101, total), instead of the
    /// client's. They end with the handshake; the open socket has the heartbeat and idle
    /// timeout of its [`WsConfig`] instead.
    pub fn timeouts(mut self, timeouts: ClientTimeouts) -> WsRequest {
        self.timeouts = timeouts;
        self
    }

    /// Connects and completes the opening handshake. Returns the socket and the subprotocol
    /// the server chose.
    pub async fn connect(self) -> Result<(WebSocket, Option<String>), ClientError> {
        let client = self.client.clone();
        if client.shared.pool.lock().map_or(true, |p| p.is_closed()) {
            return Err(ClientError::Closed);
        }
        client.ws_handshake(self).await
    }
}

/// Headers the WebSocket handshake sets itself.
fn is_handshake_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("sec-websocket-")
        || name == "upgrade"
        || name == "connection"
        || name == "host"
}

/// A request being built.
pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: RequestBody,
    timeouts: ClientTimeouts,
    expect_continue: bool,
    follow_redirects: bool,
}

impl RequestBuilder {
    /// Adds a header (invalid names or values are ignored).
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.append(name, value);
        }
        self
    }

    /// Adds query parameters to the URL (form-encoded, after any query it already has).
    pub fn query(mut self, params: &[(&str, &str)]) -> RequestBuilder {
        if params.is_empty() {
            return self;
        }
        // A fragment is never sent.
        let base = self.url.split('#').next().unwrap_or_default().to_owned();
        let encoded = form_urlencoded(params);
        let separator = match base.find('?') {
            None => "?",
            Some(at) if at + 1 == base.len() || base.ends_with('&') => "",
            Some(_) => "&",
        };
        self.url = format!("{base}{separator}{encoded}");
        self
    }

    /// The body (sent with `Content-Length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> RequestBuilder {
        self.body = RequestBody::Full(body.into());
        self
    }

    /// A text body (`text/plain; charset=utf-8` unless a Content-Type is set).
    pub fn text(self, text: impl Into<String>) -> RequestBuilder {
        self.with_type("text/plain; charset=utf-8")
            .body(Bytes::from(text.into()))
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(self, fields: &[(&str, &str)]) -> RequestBuilder {
        self.with_type("application/x-www-form-urlencoded")
            .body(Bytes::from(form_urlencoded(fields)))
    }

    /// A JSON body (`application/json`), with the `json` feature.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(
        self,
        value: &T,
    ) -> Result<RequestBuilder, ClientError> {
        let bytes = serde_json::to_vec(value).map_err(|e| ClientError::Json(e.to_string()))?;
        Ok(self.with_type("application/json").body(Bytes::from(bytes)))
    }

    /// A streamed body, sent with `Transfer-Encoding: chunked` as the pieces come (with
    /// backpressure: the next piece is taken once the last is written). Sent once: no
    /// retry, and a 307/308 redirect is returned instead of followed.
    pub fn body_stream(
        mut self,
        stream: impl futures_core::Stream<Item = Bytes> + Send + 'static,
    ) -> RequestBuilder {
        self.body = RequestBody::Stream(Some(Box::pin(stream)));
        self
    }

    /// Sends `Expect: 100-continue` and holds the body back until the server says
    /// `100 Continue` (or one second passes); a final answer instead (e.g. 401, 413) is
    /// returned without sending the body.
    pub fn expect_continue(mut self) -> RequestBuilder {
        self.expect_continue = true;
        self
    }

    /// Whether to follow redirects (default: yes, up to the client's `max_redirects`).
    pub fn follow_redirects(mut self, follow: bool) -> RequestBuilder {
        self.follow_redirects = follow;
        self
    }

    fn with_type(mut self, content_type: &'static str) -> RequestBuilder {
        self.headers
            .entry(http::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static(content_type));
        self
    }

    /// Timeouts for this request, overriding the client's.
    pub fn timeouts(mut self, timeouts: ClientTimeouts) -> RequestBuilder {
        self.timeouts = timeouts;
        self
    }

    /// Sends the request and reads the response head (following redirects).
    pub async fn send(self) -> Result<Response, ClientError> {
        let client = self.client.clone();
        let max_redirects = if self.follow_redirects {
            client.shared.config.max_redirects
        } else {
            0
        };
        let mut timer = RequestTimer::new(self.timeouts, client.now());
        let mut method = self.method;
        let mut url = self.url;
        let mut body = self.body;
        let mut headers = self.headers;
        if self.expect_continue {
            headers.insert(
                http::header::EXPECT,
                HeaderValue::from_static("100-continue"),
            );
        }
        let mut previous_origin: Option<Origin> = None;
        for redirects in 0..=max_redirects {
            // A fragment is never sent.
            let uri: Uri = url
                .split('#')
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|_| ClientError::InvalidUrl(url.clone()))?;
            let origin =
                Origin::from_uri(&uri).ok_or_else(|| ClientError::InvalidUrl(url.clone()))?;
            if let Some(previous) = previous_origin.replace(origin.clone()) {
                if previous != origin {
                    // Credentials are for the origin they were given to.
                    for name in CREDENTIAL_HEADERS {
                        headers.remove(name);
                    }
                }
            }
            let head = build_head(&client.shared, &method, &uri, &headers, &body)?;
            let mut response = client
                .exchange(&origin, &head, &mut body, &mut timer)
                .await?;
            let Some(next) = redirect_target(&response, &uri) else {
                return Ok(response);
            };
            if max_redirects == 0 {
                return Ok(response);
            }
            if redirects == max_redirects {
                return Err(ClientError::TooManyRedirects(redirects));
            }
            let status = response.status();
            let to_get = (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                    && method == Method::POST);
            if to_get {
                method = Method::GET;
                body = RequestBody::Empty;
                headers.remove(http::header::CONTENT_TYPE);
                headers.remove(http::header::EXPECT);
            } else if matches!(body, RequestBody::Stream(None)) {
                // 307/308 repeat the body, and a stream cannot be sent twice.
                return Ok(response);
            }
            response.discard().await?;
            timer.retrying(client.now());
            url = next;
        }
        Err(ClientError::TooManyRedirects(max_redirects))
    }
}

/// Headers dropped when a redirect leads to another origin.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::COOKIE,
    http::header::PROXY_AUTHORIZATION,
];

/// `name=value` pairs, `application/x-www-form-urlencoded`, joined by `&` (query strings and
/// form bodies).
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
        .collect();
    encoded.join("&")
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Fills a request head's fields: the user agent and the client's default headers, then the
/// request's `own` fields, which replace those of the same name with every value kept.
/// Fields already in `out` whose names are `reserved` (a WebSocket handshake's own) stay.
fn add_headers(
    out: &mut HeaderMap,
    shared: &Shared,
    own: &HeaderMap,
    reserved: fn(&HeaderName) -> bool,
) {
    if !reserved(&http::header::USER_AGENT) {
        out.insert(http::header::USER_AGENT, shared.user_agent.clone());
    }
    for name in shared.config.default_headers.keys() {
        if !out.contains_key(name) {
            for value in shared.config.default_headers.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
    }
    for name in own.keys() {
        if !reserved(name) {
            out.remove(name);
        }
    }
    for (name, value) in own {
        if !reserved(name) {
            out.append(name.clone(), value.clone());
        }
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static("tether"))
}

fn build_head(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &RequestBody,
) -> Result<Request<()>, ClientError> {
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(ClientError::InvalidUrl(format!(
            "{uri} (only http:// and https://)"
        )));
    }
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    add_headers(request.headers_mut(), shared, headers, |_| false);
    let out = request.headers_mut();
    match body {
        RequestBody::Empty => {}
        RequestBody::Full(bytes) => {
            out.insert(http::header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        RequestBody::Stream(_) => {
            out.insert(
                http::header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
    }
    Ok(request)
}

fn redirect_target(response: &Response, base: &Uri) -> Option<String> {
    if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
        return None;
    }
    let location = response
        .headers()
        .get(http::header::LOCATION)?
        .to_str()
        .ok()?;
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_owned());
    }
    let authority = base.authority()?;
    let scheme = base.scheme_str()?;
    if location.starts_with('/') {
        Some(format!("{scheme}://{authority}{location}"))
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        Some(format!("{scheme}://{authority}{dir}{location}"))
    }
}

impl Client {
    /// One request/response exchange on a pooled connection, with one retry on a fresh
    /// connection when a reused one turns out stale.
    async fn exchange(
        &self,
        origin: &Origin,
        head: &Request<()>,
        body: &mut RequestBody,
        timer: &mut RequestTimer,
    ) -> Result<Response, ClientError> {
        let mut retried = false;
        loop {
            let Some(outgoing) = body.attempt() else {
                return Err(ClientError::Io(io::Error::other(
                    "a streamed body cannot be sent twice",
                )));
            };
            let mut lease = self.acquire(origin, timer).await?;
            timer.connected();
            let mut response_started = false;
            match self
                .start(lease.conn(), head, outgoing, timer, &mut response_started)
                .await
            {
                Ok(response_head) => {
                    lease.keep_alive = response_head
                        .headers()
                        .get("keep-alive")
                        .and_then(pool::keep_alive_timeout);
                    let mut response = Response {
                        head: response_head,
                        client: self.clone(),
                        pending: lease.conn().http.poll_event(),
                        lease: Some(lease),
                        timer: {
                            // Paused until the application asks for the body.
                            let mut timer = timer.clone();
                            timer.read_paused();
                            timer
                        },
                        done: false,
                    };
                    if matches!(response.pending, Some(ClientEvent::End { .. })) {
                        // No body (HEAD, 204, 304, `Content-Length: 0`): the connection goes
                        // back at once, even if the body is never asked for.
                        response.pending = None;
                        response.finish();
                    }
                    return Ok(response);
                }
                Err(e) => {
                    let reused = lease.reused;
                    drop(lease);
                    let stale = matches!(e, ClientError::Io(_) | ClientError::Protocol(_));
                    let resendable = !matches!(body, RequestBody::Stream(None));
                    if stale
                        && resendable
                        && !retried
                        && pool::may_retry(reused, response_started, head.method())
                    {
                        retried = true;
                        timer.retrying(self.now());
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Writes the request (holding the body back for `Expect: 100-continue`) and reads up
    /// to the final response head.
    async fn start(
        &self,
        conn: &mut Conn,
        head: &Request<()>,
        body: Outgoing,
        timer: &mut RequestTimer,
        response_started: &mut bool,
    ) -> Result<http::Response<()>, ClientError> {
        conn.http.send_request(head)?;
        with_deadline(&*self.shared.rt, timer, flush(conn)).await??;
        if conn.http.is_waiting_for_continue() {
            let wait = wait_for_continue(conn, response_started);
            let patience = self.now() + Duration::from_secs(1);
            let waited = tokio::select! {
                waited = with_deadline(&*self.shared.rt, timer, wait) => Ok(waited),
                () = self.shared.rt.sleep_until(patience) => Err(()),
            };
            match waited {
                // A final answer before the body: return it; the body is never sent.
                Ok(Ok(Ok(Some(final_head)))) => return Ok(final_head),
                Ok(Ok(Ok(None))) | Err(_) => {}
                Ok(Ok(Err(e))) | Ok(Err(e)) => return Err(e),
            }
        }
        match body {
            Outgoing::Empty => {}
            Outgoing::Full(bytes) => conn.http.send_data(bytes)?,
            Outgoing::Stream(mut stream) => {
                use futures_util::StreamExt;
                while let Some(piece) = stream.next().await {
                    conn.http.send_data(piece)?;
                    with_deadline(&*self.shared.rt, timer, flush(conn)).await??;
                }
            }
        }
        conn.http.send_end(None)?;
        with_deadline(&*self.shared.rt, timer, flush(conn)).await??;
        timer.sent(self.now());
        loop {
            let event = with_deadline(&*self.shared.rt, timer, next_event(conn)).await??;
            match event {
                ClientEvent::Informational(_) => *response_started = true,
                ClientEvent::Response(head) => return Ok(head),
                ClientEvent::Error(e) => return Err(e.into()),
                ClientEvent::Closed => {
                    return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                _ => {}
            }
            timer.read(self.now());
        }
    }
}

/// Waits for `100 Continue` (`None`) or a final response head (`Some`).
async fn wait_for_continue(
    conn: &mut Conn,
    response_started: &mut bool,
) -> Result<Option<http::Response<()>>, ClientError> {
    loop {
        match next_event(conn).await? {
            ClientEvent::Informational(head) => {
                *response_started = true;
                if head.status() == StatusCode::CONTINUE {
                    return Ok(None);
                }
            }
            ClientEvent::Response(head) => return Ok(Some(head)),
            ClientEvent::Error(e) => return Err(e.into()),
            _ => return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into())),
        }
    }
}

/// A response: head first; the body is read with [`Response::bytes`], [`Response::text`] or
/// [`Response::chunk`]. Read to its end, its connection goes back to the pool; dropped early,
/// the connection is closed (a half-read connection is never reused).
pub struct Response {
    head: http::Response<()>,
    client: Client,
    /// The connection, until the body has ended.
    lease: Option<Lease>,
    timer: RequestTimer,
    done: bool,
    /// An event already parsed from the bytes that came with the head.
    pending: Option<ClientEvent>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.head.status())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.head.status()
    }

    /// The version.
    pub fn version(&self) -> http::Version {
        self.head.version()
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// The next piece of the body; `None` at its end (the connection is then back in the
    /// pool).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let event = match self.pending.take() {
            Some(event) => event,
            None => {
                let Some(lease) = self.lease.as_mut() else {
                    return Ok(None);
                };
                // `sock_read` runs only while the application waits for the body: the time
                // it spends between two calls is not the server's gap.
                self.timer.read_resumed(self.client.now());
                let event = with_deadline(
                    &*self.client.shared.rt,
                    &mut self.timer,
                    next_event(lease.conn()),
                )
                .await??;
                self.timer.read_paused();
                event
            }
        };
        match event {
            ClientEvent::Data(data) => Ok(Some(data)),
            ClientEvent::End { .. } => {
                self.finish();
                Ok(None)
            }
            ClientEvent::Error(e) => Err(e.into()),
            _ => Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into())),
        }
    }

    /// The whole body (up to the client's `max_body_size`).
    pub async fn bytes(&mut self) -> Result<Bytes, ClientError> {
        let limit = self.client.shared.config.max_body_size;
        let mut all = BytesMut::new();
        while let Some(piece) = self.chunk().await? {
            if all.len() + piece.len() > limit {
                return Err(ClientError::BodyTooLarge(limit));
            }
            all.extend_from_slice(&piece);
        }
        Ok(all.freeze())
    }

    /// The body as text, decoded by the Content-Type's charset (UTF-8 by default;
    /// ISO-8859-1/Latin-1 understood; invalid sequences replaced).
    pub async fn text(&mut self) -> Result<String, ClientError> {
        let latin1 = self
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("charset=")))
            .is_some_and(|c| {
                let c = c.trim_matches('"').to_ascii_lowercase();
                c == "iso-8859-1" || c == "latin1" || c == "latin-1"
            });
        let bytes = self.bytes().await?;
        Ok(if latin1 {
            bytes.iter().map(|&b| b as char).collect()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    /// The body parsed as JSON, with the `json` feature.
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, ClientError> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Json(e.to_string()))
    }

    /// The body has ended: the connection goes back to the pool.
    fn finish(&mut self) {
        self.done = true;
        self.timer.done();
        if let Some(lease) = self.lease.take() {
            lease.give_back();
        }
    }

    /// Reads and drops the rest of the body (so the connection can be reused).
    async fn discard(&mut self) -> Result<(), ClientError> {
        while self.chunk().await?.is_some() {}
        Ok(())
    }
}

/// Runs `future` until the request's earliest deadline; on expiry, the timeout that fired.
async fn with_deadline<F: Future>(
    rt: &dyn Runtime,
    timer: &mut RequestTimer,
    future: F,
) -> Result<F::Output, ClientError> {
    tokio::pin!(future);
    // Most steps (a write the socket buffer takes, a read of bytes already there) finish on
    // the first poll: no timer is made for them.
    if let Some(output) = poll_once(&mut future).await {
        return Ok(output);
    }
    loop {
        let Some(deadline) = timer.poll_timeout() else {
            return Ok(future.await);
        };
        tokio::select! {
            biased;
            output = &mut future => return Ok(output),
            _ = rt.sleep_until(deadline) => {
                if let Some(kind) = timer.handle_timeout(rt.now()) {
                    return Err(ClientError::Timeout(kind));
                }
            }
        }
    }
}

async fn flush(conn: &mut Conn) -> Result<(), ClientError> {
    let now = conn.rt.now();
    while let Some(bytes) = conn.http.poll_transmit(now) {
        conn.stream
            .write_all(&bytes)
            .await
            .map_err(ClientError::Io)?;
    }
    Ok(())
}

/// The next event of the connection, reading as needed.
async fn next_event(conn: &mut Conn) -> Result<ClientEvent, ClientError> {
    loop {
        if let Some(event) = conn.http.poll_event() {
            return Ok(event);
        }
        match conn.stream.read(&mut conn.buf).await {
            Ok(0) => conn.http.handle_eof(),
            Ok(n) => conn.http.handle_input(conn.rt.now(), &conn.buf[..n]),
            Err(e) => return Err(ClientError::Io(e)),
        }
    }
}

/// Process-wide randomness from the standard library's randomly seeded hasher (the core
/// has none; this avoids a dependency for mask keys and handshake keys).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

fn random_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&random_u64().to_ne_bytes());
    key[8..].copy_from_slice(&random_u64().to_ne_bytes());
    key
}

fn mask_keys() -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut pool = 0u64;
    let mut left = 0;
    move || {
        if left == 0 {
            pool = random_u64();
            left = 2;
        }
        left -= 1;
        let key = (pool as u32).to_ne_bytes();
        pool >>= 32;
        key
    }
}
