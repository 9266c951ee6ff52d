//! Generated HTTP/1.1 request sequences (server role) and response sequences (client role),
//! mostly valid, with smuggling-relevant twists and a few byte mutations, through the
//! whole-vs-split machinery; plus body bounds and, unmutated, an exact round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::h1gen::Structured;

fuzz_target!(|input: Structured| {
    tether_fuzz::structured::check_structured(&input);
});
