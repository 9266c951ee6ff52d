//! # tether-core
//!
//! The sans-IO heart of tether: pure state machines for HTTP/1.1 and WebSocket
//! that take bytes in and give events out, take commands and give bytes to send, and name the
//! deadlines they need. They never touch a socket, a clock, a thread or a random number
//! generator, so the same core runs under tokio, async-std/smol, a WebAssembly host, a plain
//! blocking loop, or a fuzzer.
//!
//! * [`time`]: the core's own [`time::Instant`] and the `poll_timeout`/`handle_timeout`
//!   deadline convention.
//! * [`h1`]: HTTP/1.1 server and client connections.
//! * [`ws`]: WebSocket handshake and connection, with heartbeat and permessage-deflate.
//! * [`pool`]: connection-pool bookkeeping for clients; [`time::RequestTimer`]: aiohttp's
//!   four client timeouts as deadlines.
//!
//! Every state machine follows one driving contract (after quinn-proto): getters;
//! `handle_*` for inputs (received bytes, EOF, timeouts); commands (`send_*`); and `poll_*`
//! for outputs (`poll_event`, `poll_transmit`, `poll_timeout`). After any input or command,
//! drain the `poll_*` outputs.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod h1;
mod output;
pub mod pool;
pub mod time;
pub mod ws;
