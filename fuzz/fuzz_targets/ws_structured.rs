//! Structure-aware WebSocket input: a generated sequence of peer frames (fragmented,
//! compressed under every negotiated parameter, control frames between the pieces, faults
//! now and then; see `tether_fuzz::wsgen`), rendered, maybe mutated byte by byte, then run
//! whole and split. Unmutated, the events must be exactly the generated messages, and
//! canonical frames must re-encode to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|scenario: tether_fuzz::wsgen::Scenario| {
    tether_fuzz::wsstructured::check_structured(&scenario);
});
