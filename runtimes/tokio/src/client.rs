//! The client on tokio: [`tether_rt::Client`] with tokio's DNS, TCP and timer, and TLS
//! through rustls ([`crate::tls`]).

use crate::clock::runtime;
use crate::tls::TlsConfig;
use std::io;
use std::ops::Deref;
use std::sync::Arc;
use tether_core::pool::Origin;
use tether_rt::client::{ClientConfig, ClientError, Connector, Io};
use tether_rt::BoxFuture;
use tokio::net::TcpStream;

/// A pooled HTTP client on tokio: a [`tether_rt::Client`] (every method is there) that
/// opens connections with tokio and rustls. Building it does no IO; connections open on
/// first use. Clone it freely (one pool behind every clone); reuse one for many requests.
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
        Client {
            inner: tether_rt::Client::new(config, runtime(), Arc::new(TokioConnector { tls })),
        }
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new(ClientConfig::default())
    }
}

impl Deref for Client {
    type Target = tether_rt::Client;

    fn deref(&self) -> &tether_rt::Client {
        &self.inner
    }
}

/// DNS and TCP from tokio, TLS from rustls.
struct TokioConnector {
    tls: TlsConfig,
}

impl Connector for TokioConnector {
    fn connect(&self, origin: &Origin) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let origin = origin.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connect_tcp(&origin).await?;
            match origin.scheme() {
                "https" | "wss" => crate::tls::connect(tcp, origin.host(), &tls).await,
                _ => Ok(Box::new(tcp) as Box<dyn Io>),
            }
        })
    }
}

/// The first address of `origin` that accepts, in the resolver's order.
async fn connect_tcp(origin: &Origin) -> Result<TcpStream, ClientError> {
    let addrs: Vec<_> = tokio::net::lookup_host((origin.host(), origin.port()))
        .await
        .map_err(ClientError::Dns)?
        .collect();
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
