//! How a connection to an origin is opened: directly, or through the proxy the client's
//! settings name for it. The pool keys connections by origin *and* proxy (with its user),
//! so a connection is only reused for the same route.
//!
//! * `http://` through an HTTP(S) proxy: one connection to the proxy, requests in absolute
//!   form with `Proxy-Authorization` (a forward proxy, RFC 9112 §3.2.2).
//! * anything else through an HTTP(S) proxy (`https`, `ws`, `wss`): a `CONNECT` tunnel,
//!   then TLS to the origin inside it for `https`/`wss`.
//! * through SOCKS5: a tunnel, then TLS inside it for `https`/`wss`.
//!
//! An `https://` proxy is reached over TLS first. All of it runs under the caller's
//! `sock_connect` deadline, as a direct connection's DNS, TCP and TLS do.

use super::handshake::open_tunnel_with;
use super::{open_tunnel, Proxy, ProxyScheme, ProxySettings};
use crate::client::auth::{self, AuthResponse, AuthTarget, Authenticator, Retry};
use crate::client::config::ClientError;
use crate::client::io::{Connector, Io};
use crate::client::request::MAX_AUTH_RETRIES;
use crate::runtime::Runtime;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use std::sync::Arc;
use tether_core::pool::Origin;
use tether_core::proxy::ProxyError;

/// Where requests to one origin go, decided once per origin a request visits: the origin as
/// the pool keys it (marked with its proxy), and the proxy.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The pool's key: the origin, marked with the proxy if there is one.
    pub(crate) origin: Origin,
    proxy: Option<Proxy>,
}

impl Route {
    /// The route to `origin`: through `chosen`, the proxy a request named for itself, or
    /// else the one the client's `settings` give it.
    pub(crate) fn new(settings: &ProxySettings, chosen: Option<&Proxy>, origin: Origin) -> Route {
        let proxy = match chosen {
            Some(proxy) => Some(proxy),
            None => settings.proxy_for(origin.scheme(), origin.host()),
        };
        Route::through(proxy.cloned(), origin)
    }

    /// The route to `origin` through `proxy` (or direct).
    pub(crate) fn through(proxy: Option<Proxy>, origin: Origin) -> Route {
        let origin = match &proxy {
            Some(proxy) => origin.via_proxy(proxy.pool_key()),
            None => origin,
        };
        Route { origin, proxy }
    }

    /// Whether requests go to a forward proxy (in absolute form) rather than through a
    /// tunnel or direct.
    pub(crate) fn is_forwarding(&self) -> bool {
        self.proxy.as_ref().is_some_and(|proxy| {
            self.origin.scheme() == "http"
                && matches!(proxy.scheme(), ProxyScheme::Http | ProxyScheme::Https)
        })
    }

    /// The authenticator of the forward proxy requests go to, if it has one.
    pub(crate) fn forward_auth(&self) -> Option<&Arc<dyn Authenticator>> {
        match &self.proxy {
            Some(proxy) if self.is_forwarding() => proxy.auth(),
            _ => None,
        }
    }

    /// The `Proxy-Authorization` a forwarded request carries, if any.
    pub(crate) fn forward_authorization(&self) -> Option<&HeaderValue> {
        match &self.proxy {
            Some(proxy) if self.is_forwarding() => proxy.authorization(),
            _ => None,
        }
    }
}

/// Opens a transport along `route`: to its origin, through its proxy if it has one.
pub(crate) async fn open(
    rt: &dyn Runtime,
    connector: &dyn Connector,
    route: &Route,
) -> Result<Box<dyn Io>, ClientError> {
    let origin = &route.origin;
    let Some(proxy) = &route.proxy else {
        return connector.connect(origin).await;
    };
    if route.is_forwarding() {
        return connect_to_proxy(connector, proxy).await;
    }
    // `Origin` keeps an IPv6 host in brackets; the handshakes want it bare.
    let host = origin.host();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let resolved = match proxy.scheme() {
        ProxyScheme::Socks5 if bare.parse::<std::net::IpAddr>().is_err() => {
            Some(connector.resolve(bare, origin.port()).await?)
        }
        _ => None,
    };
    let tunnel = match proxy.auth() {
        Some(auth)
            if proxy.scheme() != ProxyScheme::Socks5 && proxy.scheme() != ProxyScheme::Socks5h =>
        {
            authenticated_tunnel(rt, connector, proxy, &**auth, bare, origin.port()).await?
        }
        _ => {
            let io = connect_to_proxy(connector, proxy).await?;
            open_tunnel(rt, io, proxy, bare, origin.port(), resolved).await?
        }
    };
    match origin.scheme() {
        "https" | "wss" => connector.start_tls(tunnel, host).await,
        _ => Ok(tunnel),
    }
}

/// A connection to `proxy` itself: TCP, then TLS for an `https://` proxy.
async fn connect_to_proxy(
    connector: &dyn Connector,
    proxy: &Proxy,
) -> Result<Box<dyn Io>, ClientError> {
    let io = connector.connect_plain(proxy.host(), proxy.port()).await?;
    match proxy.scheme() {
        ProxyScheme::Https => connector.start_tls(io, proxy.host()).await,
        _ => Ok(io),
    }
}

/// A `CONNECT` tunnel to `host:port` whose `Proxy-Authorization` `auth` gives; a `407`
/// it can answer is answered on a new connection to the proxy (proxies close the one they
/// refused on), as a request is sent again after a `401`.
async fn authenticated_tunnel(
    rt: &dyn Runtime,
    connector: &dyn Connector,
    proxy: &Proxy,
    auth: &dyn Authenticator,
    host: &str,
    port: u16,
) -> Result<Box<dyn Io>, ClientError> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let target: Uri = authority
        .parse()
        .map_err(|_| ClientError::Proxy(ProxyError::InvalidTarget))?;
    let mut retries = 0;
    loop {
        let mut fields = HeaderMap::new();
        let target_kind = AuthTarget::Proxy;
        auth::authorize(
            auth,
            rt,
            &Method::CONNECT,
            &target,
            target_kind,
            &mut fields,
        )
        .await?;
        let sent = fields.remove(http::header::PROXY_AUTHORIZATION);
        let io = connect_to_proxy(connector, proxy).await?;
        match open_tunnel_with(rt, io, proxy, sent.clone(), host, port, None).await {
            Err(ProxyError::Refused { status, headers })
                if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED
                    && retries < MAX_AUTH_RETRIES =>
            {
                let answer = AuthResponse {
                    uri: &target,
                    status,
                    headers: &headers,
                    sent: sent.as_ref(),
                    target: target_kind,
                    retries,
                };
                if auth.challenged(&answer).await? == Retry::No {
                    return Err(ProxyError::Refused { status, headers }.into());
                }
                retries += 1;
            }
            opened => return Ok(opened?),
        }
    }
}
