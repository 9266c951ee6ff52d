//! TLS for the server (`https://`, `wss://`): [`ServerTls`], given to
//! [`Server::tls`](crate::Server::tls).
//!
//! The server speaks HTTP/1.1 only, so it offers ALPN `http/1.1` and nothing else (a client
//! that insists on `h2` alone is refused by the handshake, RFC 7301 §3.2). The handshake runs
//! in the connection's task under its own deadline ([`ServerTls::handshake_timeout`]): a client
//! that opens a connection and stalls the handshake holds a connection slot only that long,
//! as a slowloris does with the head timeout.
//!
//! The certificate can be replaced while the server runs ([`ServerTls::reload`] re-reads the
//! PEM files, [`ServerTls::replace`] takes a new rustls configuration): connections accepted
//! afterwards use the new one, open ones keep theirs.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// The one protocol the server speaks on a TLS connection.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// How long a TLS handshake may take by default (aiohttp has none; nginx's
/// `ssl_handshake_timeout` is 60 s; a handshake on a live network takes milliseconds).
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS settings: its certificate and key, and the handshake deadline. Cheap to
/// clone; clones share the certificate, so a reload through one is seen by all.
#[derive(Clone)]
pub struct ServerTls {
    shared: Arc<Shared>,
    handshake_timeout: Duration,
}

struct Shared {
    /// The configuration new connections get.
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// The PEM files it was read from, for [`ServerTls::reload`].
    files: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.shared.files)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a [`ServerTls`] could not be made or reloaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerTlsError {
    /// A PEM file could not be read or holds no valid PEM section of the expected kind.
    #[error("cannot read {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong (the file is missing, or not PEM).
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    /// rustls refused the certificate and key (e.g. a key that does not match it).
    #[error("cannot configure TLS: {0}")]
    Rustls(#[source] rustls::Error),
    /// [`ServerTls::reload`] on settings not made from files.
    #[error("these TLS settings were not read from files")]
    NotFromFiles,
}

impl ServerTls {
    /// Reads the certificate chain (leaf first) and the private key (PKCS#8, PKCS#1 or SEC1)
    /// from PEM files, e.g. what certbot writes (`fullchain.pem`, `privkey.pem`).
    pub fn from_pem_files(
        certificates: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ServerTls, ServerTlsError> {
        let files = (
            certificates.as_ref().to_path_buf(),
            key.as_ref().to_path_buf(),
        );
        let config = read_files(&files.0, &files.1)?;
        Ok(ServerTls::new(config, Some(files)))
    }

    /// Uses a certificate chain (leaf first) and its private key given as DER.
    pub fn from_der(
        certificates: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ServerTls, ServerTlsError> {
        Ok(ServerTls::new(configure(certificates, key)?, None))
    }

    /// Uses a whole rustls configuration (client certificates, a certificate resolver per
    /// name, session tickets...). Its ALPN list is replaced by `http/1.1`, the only protocol
    /// the server speaks.
    pub fn from_rustls(config: rustls::ServerConfig) -> ServerTls {
        ServerTls::new(with_alpn(config), None)
    }

    fn new(config: rustls::ServerConfig, files: Option<(PathBuf, PathBuf)>) -> ServerTls {
        ServerTls {
            shared: Arc::new(Shared {
                current: RwLock::new(Arc::new(config)),
                files,
            }),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// How long a client has to complete the TLS handshake once connected (default 10 s);
    /// past it the connection is closed.
    pub fn handshake_timeout(mut self, timeout: Duration) -> ServerTls {
        self.handshake_timeout = timeout;
        self
    }

    /// Reads the PEM files again (a renewed certificate): connections accepted from now on
    /// use it. On an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), ServerTlsError> {
        let Some((certificates, key)) = &self.shared.files else {
            return Err(ServerTlsError::NotFromFiles);
        };
        let config = read_files(certificates, key)?;
        self.install(config);
        Ok(())
    }

    /// Replaces the configuration (ALPN set to `http/1.1`): connections accepted from now on
    /// use it.
    pub fn replace(&self, config: rustls::ServerConfig) {
        self.install(with_alpn(config));
    }

    fn install(&self, config: rustls::ServerConfig) {
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(config);
    }

    /// The acceptor for a connection accepted now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        TlsAcceptor::from(current.clone())
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

fn read_files(certificates: &Path, key: &Path) -> Result<rustls::ServerConfig, ServerTlsError> {
    let pem_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServerTlsError::Pem { path, source }
    };
    let chain = CertificateDer::pem_file_iter(certificates)
        .map_err(pem_error(certificates))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(certificates))?;
    if chain.is_empty() {
        return Err(ServerTlsError::NoCertificate(certificates.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
    configure(chain, key)
}

fn configure(
    certificates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, ServerTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ServerTlsError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(ServerTlsError::Rustls)?;
    Ok(with_alpn(config))
}

fn with_alpn(mut config: rustls::ServerConfig) -> rustls::ServerConfig {
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    config
}
