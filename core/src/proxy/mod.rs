//! Client handshakes with proxies, sans-IO: the HTTP `CONNECT` tunnel ([`ConnectTunnel`],
//! RFC 9110 §9.3.6) and SOCKS5 ([`Socks5Handshake`], RFC 1928, with username/password per
//! RFC 1929), and [`ProxyHandshake`], either of them behind one type.
//!
//! Both follow the core's driving contract: `poll_transmit` for the bytes to write,
//! `handle_input`/`handle_eof` for what the proxy sent, `poll_timeout`/`handle_timeout` for
//! the handshake's deadline, and `poll_event` for the outcome, exactly once:
//! [`ProxyEvent::Established`] with the bytes that already belong to the tunnel, or
//! [`ProxyEvent::Failed`] with a typed [`ProxyError`]. After `Established`, drain
//! `poll_transmit` once more (a proxy that answers before our last message was written still
//! gets it), then the socket is the tunnel's; after `Failed`, nothing is sent and the socket
//! is to be closed. The machine takes no input after its outcome.

mod connect;
mod error;
mod handshake;
mod socks5;

pub use crate::auth::basic_credentials;
pub use connect::ConnectTunnel;
pub use error::{MalformedReason, ProxyError, Socks5Reply};
pub use handshake::ProxyHandshake;
pub use socks5::{Socks5Credentials, Socks5Handshake, Socks5Target};

use bytes::Bytes;

/// How a proxy handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyEvent {
    /// The tunnel is open. `leftover` is what the proxy sent after its answer: the first
    /// bytes from the target, to be read before anything else from the socket.
    Established {
        /// Bytes received after the handshake.
        leftover: Bytes,
    },
    /// The proxy refused, broke the protocol, closed, or the deadline passed.
    Failed(ProxyError),
}

/// The part every handshake shares: the bytes to send, what was received so far, the
/// deadline and the outcome.
#[derive(Debug, Default)]
struct Progress {
    /// What is to be written, in order.
    outbox: bytes::BytesMut,
    inbox: bytes::BytesMut,
    deadline: Option<crate::time::Instant>,
    outcome: Option<ProxyEvent>,
    /// The outcome was handed out: nothing more happens.
    finished: bool,
}

impl Progress {
    fn is_done(&self) -> bool {
        self.outcome.is_some() || self.finished
    }

    fn send(&mut self, message: &[u8]) {
        self.outbox.extend_from_slice(message);
    }

    fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.outbox.is_empty()).then(|| self.outbox.split().freeze())
    }

    fn fail(&mut self, error: ProxyError) {
        if !self.is_done() {
            self.outbox.clear();
            self.outcome = Some(ProxyEvent::Failed(error));
        }
    }

    fn establish(&mut self, consumed: usize) {
        let _ = self.inbox.split_to(consumed);
        let leftover = self.inbox.split().freeze();
        self.outcome = Some(ProxyEvent::Established { leftover });
    }

    fn poll_event(&mut self) -> Option<ProxyEvent> {
        let event = self.outcome.take();
        if event.is_some() {
            self.finished = true;
        }
        event
    }

    fn handle_timeout(&mut self, now: crate::time::Instant) {
        if self.deadline.is_some_and(|at| now >= at) {
            self.fail(ProxyError::TimedOut);
        }
    }

    fn poll_timeout(&self) -> Option<crate::time::Instant> {
        if self.is_done() {
            None
        } else {
            self.deadline
        }
    }
}

#[cfg(test)]
mod tests;
