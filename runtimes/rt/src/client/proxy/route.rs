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

use super::{open_tunnel, Proxy, ProxyScheme};
use crate::client::config::{ClientConfig, ClientError};
use crate::client::io::{Connector, Io};
use crate::runtime::Runtime;
use http::HeaderValue;
use tether_core::pool::Origin;

/// The proxy `config` sends requests to `origin` through, if any.
fn proxy_for<'a>(config: &'a ClientConfig, origin: &Origin) -> Option<&'a Proxy> {
    config.proxy.proxy_for(origin.scheme(), origin.host())
}

/// `origin` as the pool knows it: marked with its proxy, if it has one.
pub(crate) fn routed(config: &ClientConfig, origin: Origin) -> Origin {
    match proxy_for(config, &origin) {
        Some(proxy) => {
            let key = proxy.to_string();
            origin.via_proxy(&key)
        }
        None => origin,
    }
}

/// Whether requests to `origin` go to a forward proxy (absolute form), and the
/// `Proxy-Authorization` they carry then.
pub(crate) fn forwarding(config: &ClientConfig, origin: &Origin) -> Option<Option<HeaderValue>> {
    let proxy = proxy_for(config, origin)?;
    let forward = origin.scheme() == "http"
        && matches!(proxy.scheme(), ProxyScheme::Http | ProxyScheme::Https);
    forward.then(|| {
        proxy
            .credentials()
            .map(|(user, password)| tether_core::proxy::basic_credentials(user, password))
    })
}

/// Opens a transport to `origin`, through its proxy if it has one.
pub(crate) async fn open(
    rt: &dyn Runtime,
    connector: &dyn Connector,
    config: &ClientConfig,
    origin: &Origin,
) -> Result<Box<dyn Io>, ClientError> {
    let Some(proxy) = proxy_for(config, origin) else {
        return connector.connect(origin).await;
    };
    let mut io = connector.connect_plain(proxy.host(), proxy.port()).await?;
    if proxy.scheme() == ProxyScheme::Https {
        io = connector.start_tls(io, proxy.host()).await?;
    }
    if forwarding(config, origin).is_some() {
        return Ok(io);
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
    let tunnel = open_tunnel(rt, io, proxy, bare, origin.port(), resolved).await?;
    match origin.scheme() {
        "https" | "wss" => connector.start_tls(tunnel, host).await,
        _ => Ok(tunnel),
    }
}
