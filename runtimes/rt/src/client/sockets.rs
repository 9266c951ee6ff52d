//! The [`Connector`] of the adapters that own their sockets (tokio, async-std/smol): DNS,
//! TCP to the first address that accepts, and TLS for `https`/`wss`, written once over the
//! three things a runtime has to supply ([`Sockets`]).

use super::config::ClientError;
use super::io::{Connector, Io};
use super::log::{tls_handshake, tls_timing_wanted};
use super::tls::TlsConfig;
use crate::runtime::{BoxFuture, MaybeSend, MaybeSync};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tether_core::pool::Origin;

/// What a runtime gives a [`SocketConnector`]: name resolution, TCP, and a TLS handshake
/// over an open transport.
pub trait Sockets: MaybeSend + MaybeSync + 'static {
    /// Every address of `host:port`, in the resolver's order.
    fn lookup(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;

    /// A TCP connection to `addr` (with Nagle's algorithm off: the client writes whole
    /// messages).
    fn tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Io>>>;

    /// TLS with `host` over `io`, as `config` says: with rustls, the adapter's wrapper
    /// of it for its IO traits, and [`tls`](super::tls)'s helpers for the rest. Fails with
    /// [`ClientError::Tls`].
    fn tls(
        &self,
        io: Box<dyn Io>,
        host: String,
        config: TlsConfig,
    ) -> BoxFuture<Result<Box<dyn Io>, ClientError>>;
}

/// A [`Connector`] made of a runtime's [`Sockets`] and the client's TLS settings.
pub struct SocketConnector<S> {
    sockets: Arc<S>,
    tls: TlsConfig,
}

impl<S: Sockets> SocketConnector<S> {
    /// A connector over `sockets`, verifying servers as `tls` says.
    pub fn new(sockets: S, tls: TlsConfig) -> SocketConnector<S> {
        SocketConnector {
            sockets: Arc::new(sockets),
            tls,
        }
    }
}

/// The first address of `host:port` that accepts, in the resolver's order.
async fn connect_host<S: Sockets>(
    sockets: &S,
    host: String,
    port: u16,
) -> Result<Box<dyn Io>, ClientError> {
    let addrs = sockets.lookup(host, port).await.map_err(ClientError::Dns)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match sockets.tcp(addr).await {
            Ok(io) => return Ok(io),
            Err(e) => last = e,
        }
    }
    Err(ClientError::Connect(last))
}

/// TLS over `io`, timed for the request's span when someone listens.
async fn timed_tls<S: Sockets>(
    sockets: &S,
    io: Box<dyn Io>,
    host: String,
    tls: TlsConfig,
) -> Result<Box<dyn Io>, ClientError> {
    let started = tls_timing_wanted().then(std::time::Instant::now);
    let stream = sockets.tls(io, host, tls).await;
    if let Some(started) = started {
        tls_handshake(started.elapsed(), stream.is_ok());
    }
    stream
}

impl<S: Sockets> Connector for SocketConnector<S> {
    fn connect(&self, origin: &Origin) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let (sockets, tls) = (self.sockets.clone(), self.tls.clone());
        let origin = origin.clone();
        Box::pin(async move {
            let host = origin.host().to_owned();
            let tcp = connect_host(&*sockets, host.clone(), origin.port()).await?;
            match origin.scheme() {
                "https" | "wss" => timed_tls(&*sockets, tcp, host, tls).await,
                _ => Ok(tcp),
            }
        })
    }

    fn connect_plain(&self, host: &str, port: u16) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let sockets = self.sockets.clone();
        let host = host.to_owned();
        Box::pin(async move { connect_host(&*sockets, host, port).await })
    }

    fn resolve(&self, host: &str, port: u16) -> BoxFuture<Result<SocketAddr, ClientError>> {
        let lookup = self.sockets.lookup(host.to_owned(), port);
        Box::pin(async move {
            lookup
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
        let (sockets, tls) = (self.sockets.clone(), self.tls.clone());
        let host = host.to_owned();
        Box::pin(async move { timed_tls(&*sockets, io, host, tls).await })
    }
}
