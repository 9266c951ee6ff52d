//! TLS for the client (`https://`, `wss://`).
//!
//! Built on rustls with the *ring* crypto provider, behind the default-on cargo feature `tls`.
//! By default servers are verified against Mozilla's root certificates (`webpki-roots`,
//! compiled in; the system store is not read). [`TlsConfig::with_root_certificates`] trusts
//! other roots instead (a private CA, a test CA), and [`TlsConfig::with_rustls`] takes a whole
//! [`rustls::ClientConfig`].
//!
//! The rustls crate is re-exported as [`rustls`] so that its types
//! (`CertificateDer`, `ClientConfig`) can be named without depending on the same version by
//! hand.
//!
//! Built without the `tls` feature, [`TlsConfig`] has no settings and every TLS connection
//! attempt fails with [`ClientError::Tls`].

use tether_rt::client::{ClientError, Io};
use tokio::net::TcpStream;

/// The rustls crate this adapter is built with, to name its types.
#[cfg(feature = "tls")]
pub use ::rustls;
#[cfg(feature = "tls")]
pub(crate) use enabled::connect;
#[cfg(feature = "tls")]
pub use enabled::TlsConfig;

#[cfg(not(feature = "tls"))]
pub(crate) use disabled::connect;
#[cfg(not(feature = "tls"))]
pub use disabled::TlsConfig;

#[cfg(feature = "tls")]
mod enabled {
    use super::*;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{CertificateError, RootCertStore};
    use std::fmt;
    use std::sync::{Arc, OnceLock};
    use tokio_rustls::TlsConnector;

    /// The one protocol the client speaks on a TLS connection.
    const ALPN_HTTP11: &[u8] = b"http/1.1";

    /// TLS settings of a [`Client`](crate::Client).
    ///
    /// The rustls configuration is built once, on the first TLS connection, and shared by
    /// every clone of the `TlsConfig` (and so by every clone of the client); it holds the TLS
    /// session cache, so reconnections to a server resume their sessions.
    #[derive(Clone)]
    #[non_exhaustive]
    pub struct TlsConfig {
        inner: Arc<Inner>,
    }

    struct Inner {
        roots: Roots,
        /// The built configuration, or why it cannot be built (a bad root certificate).
        built: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    }

    enum Roots {
        /// Mozilla's roots (`webpki-roots`).
        Webpki,
        /// Only these roots.
        Custom(Vec<CertificateDer<'static>>),
        /// A configuration given whole.
        Rustls,
    }

    impl Default for TlsConfig {
        /// Verifies servers against Mozilla's root certificates (`webpki-roots`).
        fn default() -> TlsConfig {
            TlsConfig::from_roots(Roots::Webpki)
        }
    }

    impl TlsConfig {
        fn from_roots(roots: Roots) -> TlsConfig {
            TlsConfig {
                inner: Arc::new(Inner {
                    roots,
                    built: OnceLock::new(),
                }),
            }
        }

        /// Trusts exactly these root certificates (DER), instead of Mozilla's: for a
        /// private CA, or a CA made by a test. A certificate that cannot be parsed makes
        /// every TLS connection fail with [`ClientError::Tls`] saying so.
        pub fn with_root_certificates(certs: Vec<CertificateDer<'static>>) -> TlsConfig {
            TlsConfig::from_roots(Roots::Custom(certs))
        }

        /// Uses `config` as it is: roots, client certificates, verifier, versions, all of
        /// it. Its ALPN list should be empty or offer `http/1.1`: a connection on which the
        /// server picks another protocol is closed with [`ClientError::Tls`], since the
        /// client speaks only HTTP/1.1.
        pub fn with_rustls(config: Arc<rustls::ClientConfig>) -> TlsConfig {
            let tls = TlsConfig::from_roots(Roots::Rustls);
            let _ = tls.inner.built.set(Ok(config));
            tls
        }

        /// The rustls configuration, built on first use.
        fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
            self.inner
                .built
                .get_or_init(|| build(&self.inner.roots))
                .clone()
                .map_err(ClientError::Tls)
        }
    }

    impl fmt::Debug for TlsConfig {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let roots = match &self.inner.roots {
                Roots::Webpki => "webpki-roots".to_owned(),
                Roots::Custom(certs) => format!("{} custom root certificate(s)", certs.len()),
                Roots::Rustls => "a rustls ClientConfig".to_owned(),
            };
            f.debug_struct("TlsConfig")
                .field("roots", &roots)
                .finish_non_exhaustive()
        }
    }

    fn build(roots: &Roots) -> Result<Arc<rustls::ClientConfig>, String> {
        let store = match roots {
            Roots::Webpki => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Roots::Custom(certs) => {
                let mut store = RootCertStore::empty();
                for (i, cert) in certs.iter().enumerate() {
                    store
                        .add(cert.clone())
                        .map_err(|e| format!("invalid root certificate #{i}: {e}"))?;
                }
                store
            }
            // Set at construction; never built.
            Roots::Rustls => return Err("no rustls configuration".to_owned()),
        };
        // The provider is named rather than taken from the process default, so that another
        // crate enabling a second rustls provider cannot make this ambiguous.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot configure TLS: {e}"))?
            .with_root_certificates(store)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }

    /// Wraps `tcp` in TLS for `host` (SNI and certificate name; an IP address is checked
    /// against the certificate's IP addresses).
    pub(crate) async fn connect(
        tcp: TcpStream,
        host: &str,
        config: &TlsConfig,
    ) -> Result<Box<dyn Io>, ClientError> {
        let client_config = config.client_config()?;
        // `Uri::host` keeps the brackets of an IPv6 literal.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|_| ClientError::Tls(format!("{host:?} is not a valid TLS server name")))?;
        let stream = TlsConnector::from(client_config)
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls(describe(&e, host)))?;
        if let Some(protocol) = stream.get_ref().1.alpn_protocol() {
            if protocol != ALPN_HTTP11 {
                return Err(ClientError::Tls(format!(
                    "{host} chose the application protocol {:?}, not http/1.1",
                    String::from_utf8_lossy(protocol)
                )));
            }
        }
        Ok(Box::new(stream))
    }

    /// A handshake failure in words, certificate problems first.
    fn describe(error: &std::io::Error, host: &str) -> String {
        let Some(tls) = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return format!("handshake with {host} failed: {error}");
        };
        match tls {
            rustls::Error::InvalidCertificate(cert) => {
                let why = match cert {
                    CertificateError::UnknownIssuer => {
                        "unknown issuer: the certificate is not signed by a trusted root".to_owned()
                    }
                    CertificateError::NotValidForName => {
                        format!("the certificate is not valid for {host}")
                    }
                    CertificateError::Expired => "the certificate has expired".to_owned(),
                    CertificateError::NotValidYet => "the certificate is not valid yet".to_owned(),
                    CertificateError::Revoked => "the certificate is revoked".to_owned(),
                    CertificateError::BadSignature => "bad certificate signature".to_owned(),
                    CertificateError::BadEncoding => "badly encoded certificate".to_owned(),
                    other => other.to_string(),
                };
                format!("certificate verify failed for {host}: {why}")
            }
            other => format!("handshake with {host} failed: {other}"),
        }
    }
}

#[cfg(not(feature = "tls"))]
mod disabled {
    use super::*;

    /// TLS settings of a [`Client`](crate::Client). Built without the `tls` feature: none.
    #[derive(Debug, Clone, Default)]
    #[non_exhaustive]
    pub struct TlsConfig {}

    /// Fails: built without the `tls` feature.
    pub(crate) async fn connect(
        _tcp: TcpStream,
        _host: &str,
        _config: &TlsConfig,
    ) -> Result<Box<dyn Io>, ClientError> {
        Err(ClientError::Tls("built without the tls feature".into()))
    }
}
