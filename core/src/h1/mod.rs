//! Sans-IO HTTP/1.1 (RFC 9110, RFC 9112) for both roles.
//!
//! [`ServerConnection`] and [`ClientConnection`] turn received bytes into events
//! ([`ServerEvent`], [`ClientEvent`]) with `http` crate heads and `bytes::Bytes` bodies, and
//! turn commands (`send_response`, `send_data`, `send_end`...) into bytes to write. They
//! never do IO and never read a clock.
//!
//! Parsing is strict where laxity enables request smuggling: see [`RemoteErrorKind`] for
//! every rejection, each with the status a server should answer. Every size the peer
//! controls is capped by [`Limits`].

mod body;
mod client;
mod config;
mod encode;
mod error;
mod events;
mod generated;
mod head;
mod host;

pub(crate) use host::is_valid_host;
mod recv;
mod server;
mod start_line;

pub use client::ClientConnection;
pub use config::{
    ClientConnectionConfig, Leniency, Limits, ServerConnectionConfig, ServerTimeouts,
};
pub use error::{Error, LocalError, RemoteError, RemoteErrorKind};
pub use events::{ClientEvent, RequestBody, ServerEvent};
pub use generated::GeneratedFields;
pub use server::ServerConnection;

#[cfg(test)]
mod tests;
