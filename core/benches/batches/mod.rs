//! The timing both benchmarks' own summaries share: interleaved batches, each sized to take
//! about [`BATCH_TARGET`], and the median of [`BATCHES`] of them. Included by each bench
//! with `mod batches;` (a directory, so cargo does not take it for a bench of its own).

use std::time::{Duration, Instant};

/// Batches per measurement; the median batch is reported.
pub const BATCHES: usize = 21;
/// Wall time a batch aims for.
pub const BATCH_TARGET: Duration = Duration::from_millis(10);

/// Runs `routine` `n` times; the wall time it took.
pub fn time_loop(n: usize, mut routine: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        routine();
    }
    start.elapsed()
}

/// How many iterations fill about `BATCH_TARGET`, judged from a short trial, kept within
/// `min..=max`.
pub fn batch_size(timed: &mut impl FnMut(usize) -> Duration, min: usize, max: usize) -> usize {
    timed(1_000); // warm up
    let per_iter = timed(10_000).as_secs_f64() / 10_000.0;
    ((BATCH_TARGET.as_secs_f64() / per_iter) as usize).clamp(min, max)
}

/// The median of `samples`.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Whether criterion is measuring, as opposed to smoke-testing (`cargo test --benches`, or
/// `--test`), listing (`--list`) or profiling (`--profile-time`): only then is the summary
/// worth its seconds.
pub fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}
