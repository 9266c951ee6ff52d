//! The client's settings ([`ClientConfig`]) and what can go wrong ([`ClientError`] and the
//! typed reasons behind its variants).

use http::header::{HeaderMap, InvalidHeaderName, InvalidHeaderValue};
use std::error::Error as StdError;
use std::io;
use tether_core::pool::PoolConfig;
use tether_core::time::{ClientTimeouts, TimeoutKind};
use tether_core::ws::WsConfig;

use super::auth::Authenticator;
use super::proxy::{Proxy, ProxySettings};
use std::sync::Arc;

/// Client settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The four timeouts (aiohttp's defaults: total 300 s, the others off).
    pub timeouts: ClientTimeouts,
    /// Pool limits and keep-alive (100 in all, unlimited per host, 15 s idle).
    pub pool: PoolConfig,
    /// Headers added to every request that does not set them.
    pub default_headers: HeaderMap,
    /// The `User-Agent`. Text that cannot be a header value fails every request with
    /// [`ClientError::InvalidHeader`].
    pub user_agent: String,
    /// Redirects followed (0: none). Default 10.
    pub max_redirects: usize,
    /// Largest body `bytes()`/`text()` will collect. Default 64 MiB.
    pub max_body_size: usize,
    /// WebSocket settings for `ws_connect`.
    pub websocket: WsConfig,
    /// The proxies requests go through (none by default; the environment is read only by
    /// [`ClientConfig::proxy_from_env`]).
    pub proxy: ProxySettings,
    /// Authenticates every request that does not name its own authenticator, for the
    /// origin the request started at (never across a redirect to another origin).
    pub auth: Option<Arc<dyn Authenticator>>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            timeouts: ClientTimeouts::default(),
            pool: PoolConfig::default(),
            default_headers: HeaderMap::new(),
            user_agent: concat!("tether/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_redirects: 10,
            max_body_size: 64 << 20,
            websocket: WsConfig::default(),
            proxy: ProxySettings::default(),
            auth: None,
        }
    }
}

impl ClientConfig {
    /// Reads the proxies from the environment as curl does (`http_proxy`, `https_proxy`,
    /// `all_proxy`, `no_proxy`; see [`ProxySettings::from_env`]). Never done unless asked.
    pub fn proxy_from_env(mut self) -> ClientConfig {
        self.proxy = ProxySettings::from_env();
        self
    }

    /// Authenticates requests with `auth` ([`BasicAuth`](super::BasicAuth),
    /// [`BearerAuth`](super::BearerAuth), [`DigestAuth`](super::DigestAuth) or your own).
    pub fn auth(mut self, auth: Arc<dyn Authenticator>) -> ClientConfig {
        self.auth = Some(auth);
        self
    }

    /// Sends every request through `proxy` (see [`ProxySettings`] for one per scheme and
    /// exceptions).
    pub fn proxy(mut self, proxy: Proxy) -> ClientConfig {
        self.proxy = ProxySettings::all(proxy);
        self
    }
}

/// What went wrong with a request. Never a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// One of the four timeouts fired.
    #[error("{0}")]
    Timeout(TimeoutKind),
    /// The URL cannot be requested: the request's own, or a redirect's target.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (or as resolved, for a redirect).
        url: String,
        /// Why it cannot be requested.
        #[source]
        reason: UrlError,
    },
    /// A header set on the request (or the client's `user_agent`) cannot be sent.
    #[error("invalid header {name:?}: {source}")]
    InvalidHeader {
        /// The header's name, as given.
        name: String,
        /// What is wrong with the name or the value.
        #[source]
        source: HeaderError,
    },
    /// Resolving the host failed.
    #[error("DNS lookup failed: {0}")]
    Dns(#[source] io::Error),
    /// Opening the connection failed.
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    /// Reading or writing the connection failed.
    #[error("connection error: {0}")]
    Io(#[source] io::Error),
    /// The server broke HTTP/1.1 (the core's typed error).
    #[error("protocol error: {0}")]
    Protocol(#[from] tether_core::h1::Error),
    /// The response body is larger than the client's limit.
    #[error("response body over {0} bytes")]
    BodyTooLarge(usize),
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// The request's own body failed before it was sent (an `http_body::Body` handed to the
    /// client as a tower service); nothing was sent.
    #[error("the request body failed: {0}")]
    RequestBody(#[source] crate::app::BoxError),
    /// The WebSocket handshake failed.
    #[error("WebSocket handshake failed: {0}")]
    WebSocket(#[from] tether_core::ws::HandshakeError),
    /// A JSON body could not be encoded or decoded.
    #[cfg(feature = "json")]
    #[error("JSON error: {0}")]
    Json(#[source] serde_json::Error),
    /// TLS could not be set up for an `https://` or `wss://` connection.
    #[error("TLS error: {0}")]
    Tls(#[from] TlsError),
    /// The proxy refused the tunnel (its status and fields, or its SOCKS5 reply), rejected
    /// the credentials, broke its protocol or closed during the handshake.
    #[error("proxy error: {0}")]
    Proxy(#[from] tether_core::proxy::ProxyError),
    /// The authenticator could not authorize the request (a token refresh failed, a Digest
    /// challenge it cannot answer).
    #[error("authentication failed: {0}")]
    Auth(#[from] super::auth::AuthError),
}

/// Why a URL cannot be requested (the source of [`ClientError::InvalidUrl`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// It is not a URI at all (bad characters, a bad port...).
    #[error(transparent)]
    Parse(#[from] http::uri::InvalidUri),
    /// It has no scheme or no host (`/path`, `example.com`).
    #[error("not an absolute URL")]
    NotAbsolute,
    /// The scheme is not one this kind of request speaks: `http` and `https` for requests
    /// (and their redirects), those and `ws`/`wss` for WebSockets.
    #[error("unsupported scheme {scheme:?}")]
    UnsupportedScheme {
        /// The scheme, as given.
        scheme: String,
    },
}

/// What is wrong with a header (the source of [`ClientError::InvalidHeader`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The name is not a header name (empty, spaces, non-token characters).
    #[error(transparent)]
    Name(#[from] InvalidHeaderName),
    /// The value cannot be sent (control characters such as CR or LF).
    #[error(transparent)]
    Value(#[from] InvalidHeaderValue),
}

/// Why TLS could not be set up (the source of [`ClientError::Tls`]). Runtime-neutral: the
/// adapter's TLS library's own errors are the sources, to be downcast (with the tokio
/// adapter, `rustls::Error`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The client's TLS settings cannot be used (a root certificate that does not parse):
    /// every TLS connection fails the same way until they are fixed.
    #[error("unusable settings: {0}")]
    Config(#[source] Box<dyn StdError + Send + Sync>),
    /// The host cannot be checked against a certificate (neither a DNS name nor an IP
    /// address).
    #[error("{host:?} is not a valid server name")]
    InvalidServerName {
        /// The host, as in the URL.
        host: String,
    },
    /// The handshake failed: the server's certificate was refused (an unknown issuer, another
    /// name, expired), the server broke TLS, or the connection failed mid-way. The source is
    /// the TLS library's error, or an [`io::Error`] for the connection.
    #[error("handshake with {host} failed: {source}")]
    Handshake {
        /// The host the handshake was with.
        host: String,
        /// Why it failed.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The server chose an application protocol (ALPN) other than HTTP/1.1, the only one the
    /// client speaks.
    #[error("{host} chose the application protocol {protocol:?}, not http/1.1")]
    UnexpectedProtocol {
        /// The host.
        host: String,
        /// The protocol it chose (`h2` in practice; ALPN identifiers are bytes, shown as
        /// text with any invalid UTF-8 replaced).
        protocol: String,
    },
    /// TLS is not available: the adapter was built without it.
    #[error("not available in this build")]
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HeaderValue};

    #[test]
    fn the_defaults_are_aiohttps() {
        let config = ClientConfig::default();
        assert_eq!(config.max_redirects, 10);
        assert_eq!(config.max_body_size, 64 << 20);
        assert!(config.user_agent.starts_with("tether/"));
        assert!(config.default_headers.is_empty());
        assert!(HeaderValue::try_from(&config.user_agent).is_ok());
    }

    #[test]
    fn url_and_header_errors_keep_their_typed_sources() {
        let bad = "http://a b/".parse::<http::Uri>().unwrap_err();
        let error = ClientError::InvalidUrl {
            url: "http://a b/".into(),
            reason: bad.into(),
        };
        let source = StdError::source(&error).unwrap();
        assert!(matches!(
            source.downcast_ref::<UrlError>(),
            Some(UrlError::Parse(_))
        ));
        assert!(error
            .to_string()
            .starts_with("invalid URL \"http://a b/\": "));

        let error = ClientError::InvalidHeader {
            name: "x-bad".into(),
            source: HeaderValue::try_from("a\r\nb").unwrap_err().into(),
        };
        let source = StdError::source(&error).unwrap();
        assert!(matches!(
            source.downcast_ref::<HeaderError>(),
            Some(HeaderError::Value(_))
        ));
        assert!(error.to_string().starts_with("invalid header \"x-bad\": "));
        let name = HeaderName::try_from("bad name").unwrap_err();
        assert!(matches!(HeaderError::from(name), HeaderError::Name(_)));

        let error = ClientError::InvalidUrl {
            url: "ftp://x/".into(),
            reason: UrlError::UnsupportedScheme {
                scheme: "ftp".into(),
            },
        };
        assert_eq!(
            error.to_string(),
            "invalid URL \"ftp://x/\": unsupported scheme \"ftp\""
        );
    }

    #[test]
    fn a_tls_handshake_error_keeps_the_tls_librarys_error_as_its_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("unknown issuer")]
        struct LibraryError;
        let error = ClientError::from(TlsError::Handshake {
            host: "example.test".into(),
            source: Box::new(LibraryError),
        });
        assert_eq!(
            error.to_string(),
            "TLS error: handshake with example.test failed: unknown issuer"
        );
        let tls = StdError::source(&error).unwrap();
        let library = tls.source().unwrap();
        assert!(library.downcast_ref::<LibraryError>().is_some());
        match error {
            ClientError::Tls(TlsError::Handshake { source, .. }) => {
                assert!(source.downcast_ref::<LibraryError>().is_some())
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "json")]
    #[test]
    fn a_json_error_is_serde_jsons() {
        let error = ClientError::Json(serde_json::from_str::<u8>("x").unwrap_err());
        let source = StdError::source(&error).unwrap();
        assert!(source.downcast_ref::<serde_json::Error>().is_some());
    }
}
