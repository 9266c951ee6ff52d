//! The client: [`tether_rt::Client`] with async-net's DNS and TCP, async-io's timer, and
//! TLS through rustls ([`crate::tls`]).

use crate::runtime::Spawner;
use crate::tls::TlsConfig;
use async_net::TcpStream;
use http::Method;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tether_core::pool::{Origin, PoolStats};
use tether_rt::client::{
    tls_handshake, tls_timing_wanted, ClientConfig, ClientError, Connector, Io, RequestBuilder,
    WsRequest,
};
use tether_rt::{BoxFuture, WebSocket};

/// A pooled HTTP client: a [`tether_rt::Client`] that opens connections with async-net's
/// DNS and TCP and rustls's TLS, and keeps its idle connections on async-io's timer.
/// Building it does no IO; connections open on first use. Clone it freely (one pool behind
/// every clone); reuse one for many requests.
#[derive(Debug, Clone)]
pub struct Client {
    inner: tether_rt::Client,
}

impl Client {
    /// A client with `config`, verifying servers against Mozilla's roots.
    pub fn new(config: ClientConfig) -> Client {
        Client::with_tls(config, TlsConfig::default())
    }

    /// A client with `config` and these TLS settings (a private CA, a rustls configuration).
    pub fn with_tls(config: ClientConfig, tls: TlsConfig) -> Client {
        Client::with_spawner(config, tls, Spawner::default())
    }

    /// A client with `config` and these TLS settings whose tasks (the idle reaper,
    /// WebSocket pumps) run on `spawner`'s executor.
    pub fn with_spawner(config: ClientConfig, tls: TlsConfig, spawner: Spawner) -> Client {
        let connector = Arc::new(NetConnector { tls });
        Client {
            inner: tether_rt::Client::new(config, spawner.runtime(), connector),
        }
    }

    /// Starts a request: set the query, header fields and body on the
    /// [`RequestBuilder`], then [`RequestBuilder::send`] it.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.inner.get(url)
    }

    /// `POST url`.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.inner.post(url)
    }

    /// Starts a WebSocket connection to `url` (`ws://` or `wss://`): set subprotocols,
    /// header fields and settings on the [`WsRequest`], then [`WsRequest::connect`].
    pub fn ws(&self, url: &str) -> WsRequest {
        self.inner.ws(url)
    }

    /// Connects a WebSocket to `url` (`ws://` or `wss://`), offering `protocols`, with the
    /// client's WebSocket settings. Returns the socket and the subprotocol the server chose.
    /// [`Client::ws`] sets header fields and per-connection settings.
    pub async fn ws_connect(
        &self,
        url: &str,
        protocols: &[&str],
    ) -> Result<(WebSocket, Option<String>), ClientError> {
        self.inner.ws_connect(url, protocols).await
    }

    /// Pool counts for the origin of `url` (idle, in use, opening, waiting); `None` if
    /// `url` has no origin.
    pub fn pool_stats(&self, url: &str) -> Option<PoolStats> {
        self.inner.pool_stats(url)
    }

    /// Closes idle connections and refuses new requests. Responses being read finish.
    pub async fn close(&self) {
        self.inner.close().await
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new(ClientConfig::default())
    }
}

impl From<Client> for tether_rt::Client {
    /// The runtime-neutral client behind it, for code written against [`tether_rt`].
    fn from(client: Client) -> tether_rt::Client {
        client.inner
    }
}

/// DNS and TCP from async-net, TLS from rustls.
struct NetConnector {
    tls: TlsConfig,
}

impl Connector for NetConnector {
    fn connect(&self, origin: &Origin) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let origin = origin.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connect_tcp(&origin).await?;
            match origin.scheme() {
                "https" | "wss" => {
                    // The handshake's time, for the request's span, when someone listens.
                    let started = tls_timing_wanted().then(std::time::Instant::now);
                    let stream = crate::tls::connect(tcp, origin.host(), &tls).await;
                    if let Some(started) = started {
                        tls_handshake(started.elapsed(), stream.is_ok());
                    }
                    stream
                }
                _ => Ok(Box::new(crate::FuturesIo(tcp)) as Box<dyn Io>),
            }
        })
    }

    fn connect_plain(&self, host: &str, port: u16) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let host = host.to_owned();
        Box::pin(async move {
            let tcp = connect_host(&host, port).await?;
            Ok(Box::new(crate::FuturesIo(tcp)) as Box<dyn Io>)
        })
    }

    fn resolve(&self, host: &str, port: u16) -> BoxFuture<Result<SocketAddr, ClientError>> {
        let host = host.to_owned();
        Box::pin(async move {
            async_net::resolve((host.as_str(), port))
                .await
                .map_err(ClientError::Dns)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    ClientError::Dns(io::Error::new(io::ErrorKind::NotFound, "no address"))
                })
        })
    }

    fn start_tls(
        &self,
        io: Box<dyn Io>,
        host: &str,
    ) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let host = host.to_owned();
        let tls = self.tls.clone();
        Box::pin(async move {
            let started = tls_timing_wanted().then(std::time::Instant::now);
            let stream = crate::tls::connect(crate::io::RtIo(io), &host, &tls).await;
            if let Some(started) = started {
                tls_handshake(started.elapsed(), stream.is_ok());
            }
            stream
        })
    }
}

/// The first address of `origin` that accepts, in the resolver's order.
async fn connect_tcp(origin: &Origin) -> Result<TcpStream, ClientError> {
    connect_host(origin.host(), origin.port()).await
}

/// The first address of `host:port` that accepts, in the resolver's order.
async fn connect_host(host: &str, port: u16) -> Result<TcpStream, ClientError> {
    let addrs = async_net::resolve((host, port))
        .await
        .map_err(ClientError::Dns)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(ClientError::Connect(last))
}
