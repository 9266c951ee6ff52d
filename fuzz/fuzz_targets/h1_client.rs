//! A client connection that sent a request (method chosen by the input) fed an arbitrary
//! response stream, whole and in fuzzer-chosen pieces; after every reusable `End` it sends
//! another `GET`. Input: one byte choosing the first request, one seeding the split, then the
//! server's bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::ClientRequest;

fuzz_target!(|input: &[u8]| {
    let [first, seed, data @ ..] = input else {
        return;
    };
    tether_fuzz::check_client(ClientRequest::from_byte(*first), *seed, data);
});
