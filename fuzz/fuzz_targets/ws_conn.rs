//! A WebSocket connection (heartbeat on, idle/pong/close timeouts from the input) fed
//! arbitrary bytes in fuzzer-chosen pieces with a jumpy clock, interleaved with application
//! commands (sends, close, time jumps) whose results are checked; its output must decode in a
//! peer into exactly the messages sent. The same bytes, time frozen and without commands,
//! must give the same events whole and split.
//!
//! Input: flags (see `tether_fuzz::ws::conn_setup`), timing (bit 6: walk the deadlines before
//! EOF), split seed, command count `n`, `2n` command bytes (`tether_fuzz::ws::Command`), then
//! the peer's bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::ws::{check_conn, conn_setup, Command};

fuzz_target!(|input: &[u8]| {
    let [flags, timing, seed, n, rest @ ..] = input else {
        return;
    };
    let split_at = rest.len().min(2 * usize::from(*n));
    let (commands, data) = rest.split_at(split_at);
    let setup = conn_setup(*flags, *timing);
    check_conn(
        &setup,
        *seed,
        &Command::decode_all(commands),
        timing & 0x40 != 0,
        data,
    );
});
