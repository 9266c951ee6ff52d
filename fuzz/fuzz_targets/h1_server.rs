//! A server connection fed arbitrary bytes: whole, in fuzzer-chosen pieces, and with a clock
//! that jumps past the deadlines. Input: one byte seeding the split, then the byte stream.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    tether_fuzz::check_server(seed, data);
});
