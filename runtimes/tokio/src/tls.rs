//! TLS for the client (`https://`, `wss://`).
//!
//! Not built yet: every TLS connection attempt fails with [`ClientError::Tls`].

use crate::client::{ClientError, Io};
use tokio::net::TcpStream;

/// TLS settings of a [`Client`](crate::Client).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TlsConfig {}

/// Wraps `tcp` in TLS for `host`.
pub(crate) async fn connect(
    _tcp: TcpStream,
    _host: &str,
    _config: &TlsConfig,
) -> Result<Box<dyn Io>, ClientError> {
    Err(ClientError::Tls("TLS is not built yet".into()))
}
