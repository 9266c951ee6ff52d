//! TLS for the client (`https://`, `wss://`).
//!
//! Built on rustls (through futures-rustls) with the *ring* crypto provider, behind the default-on cargo feature `tls`.
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
//! attempt fails with [`ClientError::Tls`]`(`[`TlsError::Unavailable`]`)`.
//!
//! Failures are [`ClientError::Tls`] with a [`TlsError`] saying whose fault it is: the
//! settings ([`TlsError::Config`], its source a [`TlsConfigError`]), the URL's host
//! ([`TlsError::InvalidServerName`]) or the server ([`TlsError::Handshake`], its source the
//! [`rustls::Error`] itself, so that certificate problems can be matched:
//! `rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)`).

use tether_rt::client::{ClientError, Io, TlsError};

/// The rustls crate this adapter is built with, to name its types.
#[cfg(feature = "tls")]
pub use ::rustls;
#[cfg(feature = "tls")]
pub(crate) use enabled::connect;
#[cfg(feature = "tls")]
pub use enabled::{TlsConfig, TlsConfigError};

#[cfg(not(feature = "tls"))]
pub(crate) use disabled::connect;
#[cfg(not(feature = "tls"))]
pub use disabled::TlsConfig;

#[cfg(feature = "tls")]
mod enabled {
    use super::*;
    use futures_rustls::TlsConnector;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::RootCertStore;
    use std::fmt;
    use std::sync::{Arc, OnceLock};

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
        built: OnceLock<Result<Arc<rustls::ClientConfig>, TlsConfigError>>,
    }

    enum Roots {
        /// Mozilla's roots (`webpki-roots`).
        Webpki,
        /// Only these roots.
        Custom(Vec<CertificateDer<'static>>),
        /// A configuration given whole.
        Rustls(Arc<rustls::ClientConfig>),
    }

    /// Why a [`TlsConfig`] cannot be used: the source of [`TlsError::Config`].
    #[derive(Debug, Clone, thiserror::Error)]
    #[non_exhaustive]
    pub enum TlsConfigError {
        /// A certificate given to [`TlsConfig::with_root_certificates`] cannot be a root.
        #[error("invalid root certificate #{index}: {source}")]
        InvalidRootCertificate {
            /// Its place in the list, from 0.
            index: usize,
            /// What rustls found wrong with it.
            #[source]
            source: rustls::Error,
        },
        /// rustls refused the configuration.
        #[error("cannot configure TLS: {0}")]
        Rustls(#[source] rustls::Error),
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
        /// every TLS connection fail with [`TlsError::Config`]
        /// ([`TlsConfigError::InvalidRootCertificate`]).
        pub fn with_root_certificates(certs: Vec<CertificateDer<'static>>) -> TlsConfig {
            TlsConfig::from_roots(Roots::Custom(certs))
        }

        /// Uses `config` as it is: roots, client certificates, verifier, versions, all of
        /// it. Its ALPN list should be empty or offer `http/1.1`: a connection on which the
        /// server picks another protocol is closed with [`TlsError::UnexpectedProtocol`],
        /// since the client speaks only HTTP/1.1.
        pub fn with_rustls(config: Arc<rustls::ClientConfig>) -> TlsConfig {
            TlsConfig::from_roots(Roots::Rustls(config))
        }

        /// The rustls configuration, built on first use.
        fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
            self.inner
                .built
                .get_or_init(|| build(&self.inner.roots))
                .clone()
                .map_err(|e| TlsError::Config(Box::new(e)))
        }
    }

    impl fmt::Debug for TlsConfig {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let roots = match &self.inner.roots {
                Roots::Webpki => "webpki-roots".to_owned(),
                Roots::Custom(certs) => format!("{} custom root certificate(s)", certs.len()),
                Roots::Rustls(_) => "a rustls ClientConfig".to_owned(),
            };
            f.debug_struct("TlsConfig")
                .field("roots", &roots)
                .finish_non_exhaustive()
        }
    }

    fn build(roots: &Roots) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
        let store = match roots {
            Roots::Webpki => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Roots::Custom(certs) => {
                let mut store = RootCertStore::empty();
                for (index, cert) in certs.iter().enumerate() {
                    store.add(cert.clone()).map_err(|source| {
                        TlsConfigError::InvalidRootCertificate { index, source }
                    })?;
                }
                store
            }
            Roots::Rustls(config) => return Ok(config.clone()),
        };
        // The provider is named rather than taken from the process default, so that another
        // crate enabling a second rustls provider cannot make this ambiguous.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?
            .with_root_certificates(store)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }

    /// Wraps `tcp` in TLS for `host` (SNI and certificate name; an IP address is checked
    /// against the certificate's IP addresses).
    pub(crate) async fn connect<S>(
        tcp: S,
        host: &str,
        config: &TlsConfig,
    ) -> Result<Box<dyn Io>, ClientError>
    where
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
    {
        let client_config = config.client_config()?;
        // `Uri::host` keeps the brackets of an IPv6 literal.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let name =
            ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::InvalidServerName {
                host: host.to_owned(),
            })?;
        let stream = TlsConnector::from(client_config)
            .connect(name, tcp)
            .await
            .map_err(|e| TlsError::Handshake {
                host: host.to_owned(),
                source: handshake_source(e),
            })?;
        if let Some(protocol) = stream.get_ref().1.alpn_protocol() {
            if protocol != ALPN_HTTP11 {
                return Err(TlsError::UnexpectedProtocol {
                    host: host.to_owned(),
                    protocol: String::from_utf8_lossy(protocol).into_owned(),
                }
                .into());
            }
        }
        Ok(Box::new(crate::FuturesIo(stream)))
    }

    /// futures-rustls reports rustls's own errors inside an `io::Error`: taken out, so that
    /// they can be matched (a refused certificate, an alert); other failures (the
    /// connection reset mid-handshake) stay `io::Error`s.
    fn handshake_source(error: std::io::Error) -> Box<dyn std::error::Error + Send + Sync> {
        match error.downcast::<rustls::Error>() {
            Ok(tls) => Box::new(tls),
            Err(io) => Box::new(io),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_bad_root_certificate_is_a_typed_configuration_error() {
            let config =
                TlsConfig::with_root_certificates(vec![CertificateDer::from(b"not DER".to_vec())]);
            match config.client_config() {
                Err(TlsError::Config(source)) => {
                    let error = source.downcast_ref::<TlsConfigError>().unwrap();
                    assert!(matches!(
                        error,
                        TlsConfigError::InvalidRootCertificate { index: 0, .. }
                    ));
                }
                other => panic!("{other:?}"),
            }
            assert!(TlsConfig::default().client_config().is_ok());
        }

        #[test]
        fn rustls_errors_come_out_of_their_io_error() {
            let wrapped = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            );
            let source = handshake_source(wrapped);
            assert_eq!(
                source.downcast_ref::<rustls::Error>(),
                Some(&rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            );
            let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            let source = handshake_source(reset);
            assert_eq!(
                source.downcast_ref::<std::io::Error>().map(|e| e.kind()),
                Some(std::io::ErrorKind::ConnectionReset)
            );
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
    pub(crate) async fn connect<S>(
        _tcp: S,
        _host: &str,
        _config: &TlsConfig,
    ) -> Result<Box<dyn Io>, ClientError> {
        Err(TlsError::Unavailable.into())
    }
}
