//! Shared machinery of the tether-core fuzz targets.
//!
//! Every target runs the same byte stream through a connection twice: once whole and once cut
//! into pieces chosen by the fuzzer ([`split`]), with a fake clock advancing a few
//! milliseconds per piece. Both runs drive the connection the same way (drain `poll_event`,
//! answer what needs answering, drain `poll_transmit`, `handle_timeout`), record the events
//! in a normalized form ([`Norm`], adjacent `Data` merged) and must agree. Along the way the
//! [`Recorder`] checks the invariants that hold for any input: a bounded number of events,
//! nothing after `Error`/`Closed`/`Upgraded`, no empty `Data`, error offsets within the bytes
//! received, and a closed connection once EOF has been handled.
//!
//! The WebSocket targets (`ws_frames`, `ws_conn`) have their own driver and checks in [`ws`]:
//! events are whole messages, so whole and split runs must give exactly the same events.
//! `ws_structured` generates mostly-valid peer frame sequences ([`wsgen`]) and checks the
//! decoded messages against them ([`wsstructured`]); `ws_differential` decodes the same bytes
//! with tungstenite and compares ([`wsdiff`]).
//! `ws_extensions` fuzzes the permessage-deflate negotiation of the handshake ([`extensions`]);
//! `ws_handshake` the rest of the opening handshake, both sides against a reference reading of
//! RFC 6455 §4 ([`handshake`]).
//! `proxy_connect` and `proxy_socks5` feed arbitrary proxy answers to the client's proxy
//! handshakes (`proxy.rs`).
//! `auth_challenge` parses arbitrary `WWW-Authenticate` values: the encoding of what parses
//! parses back the same, and accepted Digest challenges are answered (its own file only).
//! `h1_structured` generates request and response sequences ([`h1gen`]) and checks them
//! through the same machinery plus body bounds and an encode -> parse round trip
//! ([`structured`]); `h1_differential` compares tether's request framing with an RFC 9112
//! reference model ([`oracle`], compared in [`differential`]).
//!
//! `request_timer` drives the client's request deadlines against a model of their rules
//! ([`timer`]).
//!
//! `app_template` is a starting point for users: it drives a server connection the way an
//! application does, with a small handler, and reads the output back with [`read_responses`]
//! (`wire.rs`) to check that every request got exactly one well-framed response.

mod chunked;
mod client;
pub mod differential;
mod extensions;
pub mod h1gen;
pub mod handshake;
pub mod oracle;
mod proxy;
mod record;
pub mod reencode;
mod server;
mod split;
pub mod structured;
pub mod timer;
mod wire;
pub mod ws;
pub mod wsdiff;
pub mod wsgen;
pub mod wsstructured;

pub use chunked::{chunked_lenient, chunked_strict, Chunked};
pub use client::{check_client, ClientDriver, ClientRequest};
pub use extensions::{check_extensions, extensions_config};
pub use proxy::{check_proxy, Outcome};
pub use record::{assert_same, fields, without_continue, Fields, Norm, Recorder};
pub use server::{check_server, ServerDriver};
pub use split::{event_limit, split, whole, Clock, Piece};
pub use wire::{has_token, read_responses, WireResponse};
