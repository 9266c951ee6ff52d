//! The client: [`tether_rt::Client`] with async-net's DNS and TCP, async-io's timer, and
//! TLS through rustls ([`crate::tls`]).

use crate::runtime::Spawner;
use crate::tls::TlsConfig;
use async_net::TcpStream;
use http::Method;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tether_core::pool::PoolStats;
use tether_rt::client::{
    ClientConfig, ClientError, Io, RequestBuilder, SocketConnector, Sockets, WsRequest,
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
        let connector = Arc::new(SocketConnector::new(NetSockets, tls));
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

/// DNS and TCP from async-net, TLS from futures-rustls.
struct NetSockets;

impl Sockets for NetSockets {
    fn lookup(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { async_net::resolve((host.as_str(), port)).await })
    }

    fn tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Io>>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(crate::FuturesIo(stream)) as Box<dyn Io>)
        })
    }

    fn tls(
        &self,
        io: Box<dyn Io>,
        host: String,
        config: TlsConfig,
    ) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        Box::pin(async move { crate::tls::connect(crate::io::RtIo(io), &host, &config).await })
    }
}
