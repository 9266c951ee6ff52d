//! tether-core against tungstenite on the same bytes: raw (first byte even) or a generated
//! uncompressed frame sequence (odd). Same messages, same close, same acceptance, except the
//! strictness differences documented in `tether_fuzz::wsdiff::compare`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    tether_fuzz::wsdiff::check_differential(input);
});
