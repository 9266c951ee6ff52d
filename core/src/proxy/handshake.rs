//! Either handshake behind one type, for drivers that pick the proxy kind at run time (the
//! client's connector, the fuzzer): the same driving contract, delegated.

use super::{ConnectTunnel, ProxyEvent, Socks5Handshake};
use crate::time::Instant;
use bytes::Bytes;

/// A proxy handshake of either kind, driven exactly as the machine it holds.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyHandshake {
    /// HTTP `CONNECT`.
    Connect(ConnectTunnel),
    /// SOCKS5.
    Socks5(Socks5Handshake),
}

impl From<ConnectTunnel> for ProxyHandshake {
    fn from(machine: ConnectTunnel) -> ProxyHandshake {
        ProxyHandshake::Connect(machine)
    }
}

impl From<Socks5Handshake> for ProxyHandshake {
    fn from(machine: Socks5Handshake) -> ProxyHandshake {
        ProxyHandshake::Socks5(machine)
    }
}

impl ProxyHandshake {
    /// The next bytes to write to the proxy.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        match self {
            ProxyHandshake::Connect(m) => m.poll_transmit(now),
            ProxyHandshake::Socks5(m) => m.poll_transmit(now),
        }
    }

    /// Bytes the proxy sent, received at `now`.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        match self {
            ProxyHandshake::Connect(m) => m.handle_input(now, data),
            ProxyHandshake::Socks5(m) => m.handle_input(now, data),
        }
    }

    /// The proxy closed its sending side.
    pub fn handle_eof(&mut self) {
        match self {
            ProxyHandshake::Connect(m) => m.handle_eof(),
            ProxyHandshake::Socks5(m) => m.handle_eof(),
        }
    }

    /// The handshake's deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            ProxyHandshake::Connect(m) => m.handle_timeout(now),
            ProxyHandshake::Socks5(m) => m.handle_timeout(now),
        }
    }

    /// The handshake's deadline, if it has one and has not ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ProxyHandshake::Connect(m) => m.poll_timeout(),
            ProxyHandshake::Socks5(m) => m.poll_timeout(),
        }
    }

    /// How the handshake ended, once.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        match self {
            ProxyHandshake::Connect(m) => m.poll_event(),
            ProxyHandshake::Socks5(m) => m.poll_event(),
        }
    }
}
