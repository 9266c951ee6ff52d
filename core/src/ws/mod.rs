//! Sans-IO WebSocket (RFC 6455) with permessage-deflate (RFC 7692).
//!
//! * [`handshake`]: the opening handshake on `http` heads that travel through the
//!   [`h1`](crate::h1) connections ([`ClientHandshake`], [`accept`]).
//! * [`WebSocket`]: the connection after the handshake, one type for both roles: frames in,
//!   [`WsEvent`]s out (whole messages, pings, pongs, and one final [`WsEvent::Closed`]);
//!   messages in, frames out; heartbeat and close deadlines through
//!   `poll_timeout`/`handle_timeout`.
//!
//! The core has no entropy: the client's `Sec-WebSocket-Key` bytes and its frame mask keys
//! come from the host.

mod close;
mod config;
mod connection;
mod deflate;
mod error;
mod frame;
pub mod handshake;
mod utf8;

pub use close::{code, is_valid_on_wire};
pub use config::WsConfig;
pub use connection::{CloseReason, MaskKeys, MessageKind, Role, WebSocket, WsEvent, PONG_BACKLOG};
pub use deflate::{DeflateConfig, DeflateNegotiationError, DeflateParams};
pub use error::{LocalError, ProtocolError, ProtocolErrorKind};
pub use handshake::{accept, ClientHandshake, HandshakeError, Negotiated};

#[cfg(test)]
mod tests;
