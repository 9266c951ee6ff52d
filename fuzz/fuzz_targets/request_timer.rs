//! The client's request deadlines (`tether_core::time::RequestTimer`) under arbitrary step
//! sequences: connecting, connected, retrying, sent, reads, paused and resumed reading, done
//! and timer wake-ups at arbitrary times, compared after every step with a model written
//! from the documented rules (`fuzz/src/timer.rs`). Input: `arbitrary` bytes for the four
//! timeouts and the steps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::timer::{check_timer, TimerInput};

fuzz_target!(|input: TimerInput| {
    check_timer(&input);
});
