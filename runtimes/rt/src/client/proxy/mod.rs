//! Proxies for the client: which proxy a URL goes through ([`ProxySettings`], by scheme,
//! with `NO_PROXY` exceptions, from the environment only when asked), what a proxy URL
//! says ([`Proxy`]), and the handshake that opens a tunnel through it ([`open_tunnel`],
//! driving the core's `CONNECT` and SOCKS5 state machines over any transport).

mod handshake;
mod no_proxy;
pub(crate) mod route;

pub use handshake::open_tunnel;
pub use no_proxy::NoProxy;

use super::auth::Authenticator;
use http::HeaderValue;
use percent_encoding::percent_decode_str;
use std::fmt;
use std::sync::Arc;
use tether_core::proxy::basic_credentials;

/// How the client talks to a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// An HTTP proxy over plain TCP: `http` requests in absolute form, anything else
    /// through a `CONNECT` tunnel.
    Http,
    /// An HTTP proxy reached over TLS.
    Https,
    /// SOCKS5, the client resolving the target's name.
    Socks5,
    /// SOCKS5, the proxy resolving the target's name.
    Socks5h,
}

impl ProxyScheme {
    fn default_port(self) -> u16 {
        match self {
            ProxyScheme::Http => 80,
            ProxyScheme::Https => 443,
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => 1080,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }
}

/// A proxy: its scheme, address and credentials, from a URL such as
/// `http://user:pass@proxy:3128` or `socks5h://proxy` (the port defaults to 80, 443 or 1080;
/// percent-encoded credentials are decoded).
///
/// Cheap to clone (its parts are shared), so a request that names its own proxy costs no
/// copies.
#[derive(Clone)]
pub struct Proxy {
    parts: Arc<ProxyParts>,
}

/// Two proxies are the same if their URLs are (password included) and they use the same
/// authenticator, if any.
impl PartialEq for Proxy {
    fn eq(&self, other: &Proxy) -> bool {
        self.parts.pool_key == other.parts.pool_key
            && self.parts.credentials == other.parts.credentials
    }
}

impl Eq for Proxy {}

impl std::hash::Hash for Proxy {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts.pool_key.hash(state);
        self.parts.credentials.hash(state);
    }
}

/// What a proxy URL says, and what requests through it need, worked out once.
#[derive(Clone)]
struct ProxyParts {
    scheme: ProxyScheme,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
    /// How the pool tells connections through this proxy apart: its URL without password.
    pool_key: String,
    /// The credentials as a Basic `Proxy-Authorization` value.
    authorization: Option<HeaderValue>,
    /// Answers the proxy's `407` challenges instead (Digest, say), if set.
    auth: Option<Arc<dyn Authenticator>>,
}

impl fmt::Debug for Proxy {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("scheme", &self.scheme())
            .field("host", &self.host())
            .field("port", &self.port())
            .field("user", &self.credentials().map(|(user, _)| user))
            .finish()
    }
}

/// Why a proxy URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// Not `scheme://[user[:password]@]host[:port][/]`.
    #[error("not a proxy URL")]
    Malformed,
    /// A scheme other than `http`, `https`, `socks5` and `socks5h`.
    #[error("unsupported proxy scheme {0:?}")]
    UnsupportedScheme(String),
    /// The port is not a number from 1 to 65535.
    #[error("invalid port")]
    InvalidPort,
    /// The credentials do not decode to UTF-8.
    #[error("invalid credentials encoding")]
    InvalidCredentials,
}

impl Proxy {
    /// Parses a proxy URL. A URL without a scheme is taken as `http://`, as curl does.
    pub fn parse(url: &str) -> Result<Proxy, ProxyUrlError> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_string(), url),
        };
        let scheme = match scheme.as_str() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            _ => return Err(ProxyUrlError::UnsupportedScheme(scheme)),
        };
        // The authority ends at the first `/` (a trailing path is ignored, as curl does).
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let credentials = userinfo
            .map(|userinfo| {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |part: &str| {
                    percent_decode_str(part)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| ProxyUrlError::InvalidCredentials)
                };
                Ok::<_, ProxyUrlError>((decode(user)?, decode(password)?))
            })
            .transpose()?;
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(ProxyUrlError::Malformed);
        }
        let mut parts = ProxyParts {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(scheme.default_port()),
            authorization: credentials
                .as_ref()
                .map(|(user, password)| basic_credentials(user, password)),
            credentials,
            pool_key: String::new(),
            auth: None,
        };
        parts.pool_key = parts.to_string();
        Ok(Proxy {
            parts: Arc::new(parts),
        })
    }

    /// How the client talks to it.
    pub fn scheme(&self) -> ProxyScheme {
        self.parts.scheme
    }

    /// Its host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.parts.host
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.parts.port
    }

    /// The user name and password from the URL's userinfo, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.parts
            .credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// The same proxy, authenticated by `auth` instead of Basic credentials from its URL:
    /// `auth` sets the `Proxy-Authorization` of each `CONNECT` and forwarded request, and
    /// answers the proxy's `407` (a tunnel refused with 407 is opened again, on a new
    /// connection, once). Connections through it are pooled apart from those through the
    /// same proxy with other credentials.
    pub fn with_auth(self, auth: Arc<dyn Authenticator>) -> Proxy {
        let mut parts = (*self.parts).clone();
        parts.pool_key = format!("{parts}#auth{:p}", Arc::as_ptr(&auth));
        parts.authorization = None;
        parts.auth = Some(auth);
        Proxy {
            parts: Arc::new(parts),
        }
    }

    /// The authenticator that answers this proxy's challenges, if one was set.
    pub(crate) fn auth(&self) -> Option<&Arc<dyn Authenticator>> {
        self.parts.auth.as_ref()
    }

    /// The key that keeps the pool's connections through this proxy apart from others.
    pub(crate) fn pool_key(&self) -> &str {
        &self.parts.pool_key
    }

    /// The credentials as a Basic `Proxy-Authorization` value, if there are any.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.parts.authorization.as_ref()
    }
}

impl fmt::Display for Proxy {
    /// The proxy's URL with its user but never its password: `socks5h://user@proxy:1080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts.fmt(f)
    }
}

impl fmt::Display for ProxyParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(hostport: &str) -> Result<(&str, Option<u16>), ProxyUrlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(ProxyUrlError::Malformed)?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or(ProxyUrlError::Malformed)?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err(ProxyUrlError::Malformed),
            None => (hostport, None),
        }
    };
    let port = port
        .map(|port| match port.parse::<u16>() {
            Ok(0) | Err(_) => Err(ProxyUrlError::InvalidPort),
            Ok(port) => Ok(port),
        })
        .transpose()?;
    Ok((host, port))
}

/// Which proxy each request goes through: one per URL scheme (`http`/`ws` use the `http`
/// one, `https`/`wss` the `https` one), a fallback for all, and the hosts that go direct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxySettings {
    /// For `http://` and `ws://` URLs.
    pub http: Option<Proxy>,
    /// For `https://` and `wss://` URLs.
    pub https: Option<Proxy>,
    /// For URLs whose scheme has no proxy of its own.
    pub all: Option<Proxy>,
    /// Hosts reached directly.
    pub no_proxy: NoProxy,
}

impl ProxySettings {
    /// Every request through `proxy`.
    pub fn all(proxy: Proxy) -> ProxySettings {
        ProxySettings {
            all: Some(proxy),
            ..ProxySettings::default()
        }
    }

    /// The settings curl reads from the environment: `http_proxy`, `https_proxy`,
    /// `all_proxy` and `no_proxy`, lowercase first, then uppercase. `HTTP_PROXY` in
    /// uppercase is not read while `REQUEST_METHOD` is set (a CGI program, where a request's
    /// `Proxy:` header arrives as `HTTP_PROXY`: "httpoxy"), as Go's `net/http` does. A
    /// variable that does not parse is ignored.
    pub fn from_env() -> ProxySettings {
        ProxySettings::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxySettings {
        let cgi = lookup("REQUEST_METHOD").is_some();
        let read = |lower: &str, upper: &str, upper_allowed: bool| {
            let value = lookup(lower)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| upper_allowed.then(|| lookup(upper)).flatten())
                .filter(|v| !v.trim().is_empty())?;
            Proxy::parse(&value).ok()
        };
        ProxySettings {
            http: read("http_proxy", "HTTP_PROXY", !cgi),
            https: read("https_proxy", "HTTPS_PROXY", true),
            all: read("all_proxy", "ALL_PROXY", true),
            no_proxy: lookup("no_proxy")
                .or_else(|| lookup("NO_PROXY"))
                .map(|list| NoProxy::parse(&list))
                .unwrap_or_default(),
        }
    }

    /// The proxy for a request to `scheme://host`, if any.
    pub fn proxy_for(&self, scheme: &str, host: &str) -> Option<&Proxy> {
        let by_scheme = match scheme {
            "http" | "ws" => self.http.as_ref(),
            "https" | "wss" => self.https.as_ref(),
            _ => None,
        };
        let proxy = by_scheme.or(self.all.as_ref())?;
        (!self.no_proxy.matches(host)).then_some(proxy)
    }
}

#[cfg(test)]
mod tests;
