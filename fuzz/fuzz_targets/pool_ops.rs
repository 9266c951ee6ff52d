//! Connection-pool bookkeeping under arbitrary operation sequences: acquire, opened,
//! open failed, release (reusable or not, with Keep-Alive hints), a second release, a waiter
//! giving up, time passing, closing the pool. `check_schedule` (the same checker the
//! model-based proptest uses) asserts the pool's invariants after every step: limits never
//! exceeded, no waiter while capacity exists, no expired idle connection handed out, a second
//! release refused, and nothing open once the pool is closed and everything is given back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use tether_core::pool::model::{check_schedule, Op};
use tether_core::pool::PoolConfig;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, rest @ ..] = data else {
        return;
    };
    let mut config = PoolConfig::default();
    config.limit = (a & 7 != 0).then_some(usize::from(a & 7));
    config.limit_per_host = (b & 3 != 0).then_some(usize::from(b & 3));
    config.keepalive_timeout =
        (c & 0x80 == 0).then(|| Duration::from_millis(u64::from(c & 0x7f) * 250));
    config.force_close = a & 0x80 != 0;
    let ops: Vec<Op> = rest
        .chunks(3)
        .map(|op| {
            let [kind, x, y] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
            let pick = usize::from(x);
            match kind % 8 {
                0 | 1 => Op::Acquire(x % 4),
                2 => Op::Opened(pick),
                3 => Op::OpenFailed(pick),
                4 => Op::Release {
                    pick,
                    reusable: y & 1 == 0,
                    hint: (y & 2 != 0).then_some(y >> 3),
                },
                5 => Op::ReleaseAgain(pick),
                6 => Op::Cancel(pick),
                _ if x == 0xff => Op::Close,
                _ => Op::Advance(u16::from_be_bytes([x, y]) % 20_000),
            }
        })
        .collect();
    check_schedule(config, &ops);
});
