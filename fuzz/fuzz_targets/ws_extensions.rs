//! permessage-deflate negotiation through the public handshake: fuzzer-made
//! `Sec-WebSocket-Extensions` offers (server side) and answers (client side), with both sides'
//! window sizes and context-takeover settings picked by the first byte (see
//! `tether_fuzz::extensions_config`). Whatever is agreed must stay inside the settings and
//! carry compressed messages both ways.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    tether_fuzz::check_extensions(input);
});
