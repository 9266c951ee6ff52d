//! Tether's request framing against the RFC 9112 reference model (`oracle.rs`). The first
//! byte picks the mode: even, the rest is raw request bytes; odd, the rest is a structured
//! request sequence (`h1gen.rs`), rendered and mutated.

#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tether_fuzz::h1gen::{mutate, render_requests, GenRequest, Mutation};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        tether_fuzz::differential::check_differential(rest);
        return;
    }
    let mut u = Unstructured::new(rest);
    let Ok((requests, mutations)) = <(Vec<GenRequest>, Vec<Mutation>)>::arbitrary(&mut u) else {
        return;
    };
    let (mut bytes, _) = render_requests(&requests);
    mutate(&mut bytes, &mutations);
    tether_fuzz::differential::check_differential(&bytes);
});
