//! TLS for the client (`https://`, `wss://`), and for the server (`ServerTls`, given to
//! `Server::tls`; the handshake deadline and certificate reload are described there).
//!
//! Built on rustls with the *ring* crypto provider, behind the default-on cargo feature `tls`.
//! The client's settings are the shared layer's [`TlsConfig`]: by default servers are
//! verified against Mozilla's root certificates (`webpki-roots`, compiled in; the system
//! store is not read). [`TlsConfig::with_root_certificates`] trusts other roots instead (a
//! private CA, a test CA), and [`TlsConfig::with_rustls`] takes a whole
//! [`rustls::ClientConfig`]. This adapter runs the handshake with tokio-rustls.
//!
//! The rustls crate is re-exported as [`rustls`] so that its types
//! (`CertificateDer`, `ClientConfig`) can be named without depending on the same version by
//! hand.
//!
//! Built without the `tls` feature, [`TlsConfig`] has no settings and every TLS connection
//! attempt fails with [`ClientError::Tls`]`(`[`TlsError::Unavailable`]`)`.
//!
//! Failures are [`ClientError::Tls`] with a [`TlsError`] saying whose fault it is: the
//! settings ([`TlsError::Config`], its source a [`TlsConfigError`]), the URL's host
//! ([`TlsError::InvalidServerName`]) or the server ([`TlsError::Handshake`], its source the
//! [`rustls::Error`] itself, so that certificate problems can be matched:
//! `rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)`).

pub use tether_rt::client::TlsConfig;
use tether_rt::client::{ClientError, Io};
// Named by the docs above; used by the code only without the `tls` feature.
#[allow(unused_imports)]
use tether_rt::client::TlsError;

/// The rustls crate this adapter is built with, to name its types.
#[cfg(feature = "tls")]
pub use ::rustls;
#[cfg(feature = "tls")]
pub use server::{ServerTls, ServerTlsError};
#[cfg(feature = "tls")]
pub use tether_rt::client::tls::TlsConfigError;

#[cfg(feature = "tls")]
mod server;

/// TLS with `host` over `io`, with tokio-rustls.
#[cfg(feature = "tls")]
pub(crate) async fn connect<S>(
    io: S,
    host: &str,
    config: &TlsConfig,
) -> Result<Box<dyn Io>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tether_rt::client::tls::{check_alpn, handshake_error, server_name};
    let connector = tokio_rustls::TlsConnector::from(config.client_config()?);
    let stream = connector
        .connect(server_name(host)?, io)
        .await
        .map_err(|e| handshake_error(host, e))?;
    check_alpn(host, stream.get_ref().1.alpn_protocol())?;
    Ok(Box::new(crate::TokioIo(stream)))
}

/// Fails: built without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) async fn connect<S>(
    _io: S,
    _host: &str,
    _config: &TlsConfig,
) -> Result<Box<dyn Io>, ClientError> {
    Err(TlsError::Unavailable.into())
}
