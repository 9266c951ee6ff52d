//! The WebSocket frame decoder through the public API: arbitrary bytes fed to a server
//! (masked-frame rules) or a client (unmasked rules), with or without permessage-deflate
//! (negotiated through the public handshake), with default or small size limits, whole and
//! in fuzzer-chosen pieces. Input: a 6-byte header (see `tether_fuzz::ws::frames_setup`:
//! flags, split seed, `max_frame_size`, `max_message_size`), then the peer's bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((header, data)) = input.split_first_chunk::<6>() else {
        return;
    };
    let setup = tether_fuzz::ws::frames_setup(header);
    tether_fuzz::ws::check_frames(&setup, header[1], data);
});
