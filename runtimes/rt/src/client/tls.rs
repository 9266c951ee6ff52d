//! The client's TLS settings ([`TlsConfig`]) and the steps of a TLS connection that do not
//! depend on the runtime: the server name, the handshake's errors, the ALPN check. Each
//! adapter runs the handshake itself, with the rustls wrapper of its IO traits
//! (tokio-rustls, futures-rustls).
//!
//! Built on rustls with the *ring* crypto provider, behind the cargo feature `tls`. By
//! default servers are verified against Mozilla's root certificates (`webpki-roots`,
//! compiled in; the system store is not read). `TlsConfig::with_root_certificates` trusts
//! other roots instead (a private CA, a test CA), and `TlsConfig::with_rustls` takes a whole
//! `rustls::ClientConfig`. Built without the feature, [`TlsConfig`] has no settings and the
//! adapters fail every TLS connection with [`TlsError::Unavailable`].
//!
//! Failures are [`ClientError::Tls`](super::ClientError::Tls) with a [`TlsError`] saying
//! whose fault it is: the settings ([`TlsError::Config`], its source a `TlsConfigError`),
//! the URL's host ([`TlsError::InvalidServerName`]) or the server ([`TlsError::Handshake`],
//! its source the `rustls::Error` itself, so that certificate problems can be matched).

#[allow(unused_imports)] // named by the docs; used by the code only with the `tls` feature
use super::TlsError;

#[cfg(feature = "tls")]
pub use enabled::*;

#[cfg(not(feature = "tls"))]
pub use disabled::TlsConfig;

#[cfg(feature = "tls")]
mod enabled {
    use super::TlsError;
    /// The rustls crate the client is built with, to name its types.
    pub use ::rustls;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::RootCertStore;
    use std::fmt;
    use std::sync::{Arc, OnceLock};

    /// The one protocol the client speaks on a TLS connection.
    pub const ALPN_HTTP11: &[u8] = b"http/1.1";

    /// TLS settings of a client.
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

        /// The rustls configuration, built on first use, for an adapter's handshake.
        pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
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

    /// The name to send (SNI) and check the certificate against, for the host of a URL: a
    /// DNS name, or an IP address (checked against the certificate's IP addresses).
    pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
        // `Uri::host` keeps the brackets of an IPv6 literal.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::InvalidServerName {
            host: host.to_owned(),
        })
    }

    /// A failed handshake with `host`. The rustls IO wrappers report rustls's own errors
    /// inside an `io::Error`: taken out, so that they can be matched (a refused
    /// certificate, an alert); other failures (the connection reset mid-handshake) stay
    /// `io::Error`s.
    pub fn handshake_error(host: &str, error: std::io::Error) -> TlsError {
        let source: Box<dyn std::error::Error + Send + Sync> =
            match error.downcast::<rustls::Error>() {
                Ok(tls) => Box::new(tls),
                Err(io) => Box::new(io),
            };
        TlsError::Handshake {
            host: host.to_owned(),
            source,
        }
    }

    /// Refuses a connection on which the server chose (ALPN) a protocol other than
    /// HTTP/1.1; none chosen is fine.
    pub fn check_alpn(host: &str, chosen: Option<&[u8]>) -> Result<(), TlsError> {
        match chosen {
            Some(protocol) if protocol != ALPN_HTTP11 => Err(TlsError::UnexpectedProtocol {
                host: host.to_owned(),
                protocol: String::from_utf8_lossy(protocol).into_owned(),
            }),
            _ => Ok(()),
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
            let source = |error: TlsError| match error {
                TlsError::Handshake { host, source } => {
                    assert_eq!(host, "example.com");
                    source
                }
                other => panic!("{other:?}"),
            };
            let wrapped = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            );
            let tls = source(handshake_error("example.com", wrapped));
            assert_eq!(
                tls.downcast_ref::<rustls::Error>(),
                Some(&rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            );
            let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            let io = source(handshake_error("example.com", reset));
            assert_eq!(
                io.downcast_ref::<std::io::Error>().map(|e| e.kind()),
                Some(std::io::ErrorKind::ConnectionReset)
            );
        }

        #[test]
        fn server_names_and_alpn() {
            assert!(server_name("example.com").is_ok());
            assert!(server_name("[::1]").is_ok());
            assert!(server_name("127.0.0.1").is_ok());
            assert!(matches!(
                server_name("exa mple"),
                Err(TlsError::InvalidServerName { .. })
            ));
            assert!(check_alpn("h", None).is_ok());
            assert!(check_alpn("h", Some(b"http/1.1")).is_ok());
            assert!(matches!(
                check_alpn("h", Some(b"h2")),
                Err(TlsError::UnexpectedProtocol { protocol, .. }) if protocol == "h2"
            ));
        }
    }
}

#[cfg(not(feature = "tls"))]
mod disabled {
    /// TLS settings of a client. Built without the `tls` feature: none, and every TLS
    /// connection fails with [`TlsError::Unavailable`](super::TlsError::Unavailable).
    #[derive(Debug, Clone, Default)]
    #[non_exhaustive]
    pub struct TlsConfig {}
}
