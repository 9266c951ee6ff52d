//! The WebSocket opening handshake (RFC 6455 §4) on generated upgrade requests and `101`
//! answers, edited field by field: both sides' verdicts must be those of a reference reading
//! of the RFC, what they accept must name only what was offered, and an unedited handshake
//! must agree on both sides (see `tether_fuzz::handshake`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::handshake::{check_handshake, HandshakeCase};

fuzz_target!(|case: HandshakeCase| {
    check_handshake(&case);
});
