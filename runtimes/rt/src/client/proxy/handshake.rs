//! Opening a tunnel through a proxy over a transport the adapter connected (to the proxy,
//! and over TLS for an `https://` proxy): the core's `CONNECT` or SOCKS5 machine, driven
//! until it says how it ended. Runtime-neutral; the caller's `sock_connect` timeout covers
//! it, as it covers the TCP connect and the TLS handshake.

use super::{Proxy, ProxyScheme};
use crate::client::io::Io;
use crate::io::{Read, Write};
use crate::runtime::Runtime;
use crate::transport::{Input, Transport};
use bytes::Bytes;
use http::HeaderValue;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tether_core::proxy::{
    ConnectTunnel, ProxyError, ProxyEvent, ProxyHandshake, Socks5Credentials, Socks5Handshake,
    Socks5Target,
};

/// Buffer for the proxy's answers (a `CONNECT` answer head is at most 16 KiB).
const READ_BUFFER: usize = 4 * 1024;

/// Opens a tunnel to `host:port` through `proxy` over `io`, a transport connected to the
/// proxy (over TLS for an `https://` proxy): `CONNECT` with the proxy URL's credentials as
/// Basic `Proxy-Authorization`, or SOCKS5 with them as RFC 1929 username/password.
/// `resolved` is the target's address, which `socks5://` sends (the client resolves; without
/// it `host` must be an IP address); `socks5h://` and HTTP proxies send the name. Returns
/// the tunnel, which yields whatever the proxy already sent past its answer first.
///
/// No deadline of its own: run it under the one that covers connecting (the client's
/// `sock_connect`).
pub async fn open_tunnel(
    rt: &dyn Runtime,
    io: Box<dyn Io>,
    proxy: &Proxy,
    host: &str,
    port: u16,
    resolved: Option<SocketAddr>,
) -> Result<Box<dyn Io>, ProxyError> {
    let authorization = proxy.authorization().cloned();
    open_tunnel_with(rt, io, proxy, authorization, host, port, resolved).await
}

/// [`open_tunnel`], with `authorization` as the `CONNECT`'s `Proxy-Authorization` (an
/// authenticator's answer) instead of the proxy URL's Basic credentials.
pub(crate) async fn open_tunnel_with(
    rt: &dyn Runtime,
    io: Box<dyn Io>,
    proxy: &Proxy,
    authorization: Option<HeaderValue>,
    host: &str,
    port: u16,
    resolved: Option<SocketAddr>,
) -> Result<Box<dyn Io>, ProxyError> {
    let mut handshake = handshake_for(proxy, authorization, host, port, resolved)?;
    let mut transport = Transport::new(io, READ_BUFFER, READ_BUFFER);
    let leftover = loop {
        let now = rt.now();
        if let Some(event) = handshake.poll_event() {
            // A tunnel's last messages may still be due (see the core's `proxy` module).
            transport.queue_from(|| handshake.poll_transmit(now));
            match event {
                ProxyEvent::Established { leftover } => {
                    transport.flush().await.map_err(|_| ProxyError::Closed)?;
                    break leftover;
                }
                ProxyEvent::Failed(error) => return Err(error),
                _ => return Err(ProxyError::Closed),
            }
        }
        transport.queue_from(|| handshake.poll_transmit(now));
        if transport.flush().await.is_err() {
            handshake.handle_eof();
            continue;
        }
        match transport.read().await {
            Input::Data(n) => {
                let now = rt.now();
                let data = transport.received(n).to_vec();
                handshake.handle_input(now, &data);
            }
            Input::Eof | Input::Failed(_) => handshake.handle_eof(),
        }
    };
    let io = transport.into_inner();
    Ok(if leftover.is_empty() {
        io
    } else {
        Box::new(Prefixed {
            prefix: leftover,
            inner: io,
        })
    })
}

/// The core's handshake for `proxy`'s scheme, to `host:port`; a `CONNECT` carries
/// `authorization`.
fn handshake_for(
    proxy: &Proxy,
    authorization: Option<HeaderValue>,
    host: &str,
    port: u16,
    resolved: Option<SocketAddr>,
) -> Result<ProxyHandshake, ProxyError> {
    Ok(match proxy.scheme() {
        ProxyScheme::Http | ProxyScheme::Https => {
            let mut fields = http::HeaderMap::new();
            if let Some(value) = authorization {
                fields.insert(http::header::PROXY_AUTHORIZATION, value);
            }
            ConnectTunnel::new(host, port, &fields, None).into()
        }
        scheme @ (ProxyScheme::Socks5 | ProxyScheme::Socks5h) => {
            let target = match (scheme, resolved) {
                (ProxyScheme::Socks5, Some(address)) => Socks5Target::Ip(address),
                (ProxyScheme::Socks5, None) => match host.parse() {
                    Ok(ip) => Socks5Target::Ip(SocketAddr::new(ip, port)),
                    Err(_) => return Err(ProxyError::InvalidTarget),
                },
                _ => Socks5Target::Domain(host.to_string(), port),
            };
            let credentials = proxy
                .credentials()
                .map(|(user, password)| Socks5Credentials::new(user, password))
                .transpose()?;
            Socks5Handshake::new(&target, credentials, None).into()
        }
    })
}

/// A transport with bytes already received in front of it.
struct Prefixed {
    prefix: Bytes,
    inner: Box<dyn Io>,
}

impl Read for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.prefix.is_empty() {
            let n = buf.len().min(self.prefix.len());
            buf[..n].copy_from_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
