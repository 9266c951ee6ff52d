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
//! * [`proxy`]: the client's handshakes with HTTP `CONNECT` and SOCKS5 proxies.
//! * [`auth`]: HTTP authentication for clients: challenge parsing, Basic and Digest
//!   credentials.
//! * [`pool`]: connection-pool bookkeeping for clients; [`time::RequestTimer`]: aiohttp's
//!   four client timeouts as deadlines.
//!
//! Every state machine follows one driving contract (after quinn-proto): getters;
//! `handle_*` for inputs; commands (`send_*`, and `shutdown`/`close` to end); and `poll_*`
//! for outputs. After any input or command, drain `poll_event`, then `poll_transmit`, then
//! sleep until `poll_timeout`. The same signatures in every role:
//!
//! | method | meaning |
//! |---|---|
//! | `handle_input(now, &[u8])` | bytes received at `now` |
//! | `handle_eof()` | the peer closed its sending side |
//! | `handle_timeout(now)` | a deadline may have passed (early calls are no-ops) |
//! | `poll_event()` | the next event, `None` when input or a command is needed |
//! | `poll_transmit(now)` | the next bytes to write; `now` is when they leave |
//! | `poll_timeout()` | the earliest deadline, if any |

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod h1;
mod output;
pub mod pool;
pub mod proxy;
mod syntax;
pub mod time;
pub mod ws;
