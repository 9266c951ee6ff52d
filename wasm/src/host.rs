//! The module's side of the host: the clock JavaScript sets before each `run`, the timers
//! tasks sleep on (JavaScript arms one real timer at the earliest of them), the random
//! source, and the [`Runtime`] that hands all of it to `tether-rt`'s loops.
//!
//! State lives in thread-locals: a WebAssembly instance has one thread and its own memory,
//! so "per thread" is "per instance", and the runtime handle itself holds nothing.

use crate::executor;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tether_core::time::Instant;
use tether_rt::runtime::{BoxFuture, Rt, Runtime};

thread_local! {
    /// Monotonic time, from the host's `performance.now()`.
    static NOW: Cell<Instant> = const { Cell::new(Instant::from_nanos(0)) };
    /// Wall-clock time since the Unix epoch, from the host's `Date.now()`.
    static UNIX: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// Sleeping tasks by deadline (the key's second half makes entries unique).
    static TIMERS: RefCell<BTreeMap<(Instant, u64), Waker>> = const { RefCell::new(BTreeMap::new()) };
    static NEXT_TIMER: Cell<u64> = const { Cell::new(0) };
    static RNG: RefCell<Option<ChaCha20Rng>> = const { RefCell::new(None) };
}

/// Seeds the random source (masking keys, `Sec-WebSocket-Key`) with host entropy.
pub(crate) fn seed(entropy: &[u8]) {
    let mut seed = [0u8; 32];
    for (i, byte) in entropy.iter().enumerate() {
        seed[i % 32] ^= byte;
    }
    RNG.with(|rng| *rng.borrow_mut() = Some(ChaCha20Rng::from_seed(seed)));
}

/// Sets the clocks (milliseconds, as `performance.now()` and `Date.now()` give them) and
/// wakes every timer that is due. Time never goes backwards here, whatever the host says.
pub(crate) fn set_clock(monotonic_ms: f64, unix_ms: f64) {
    let nanos = if monotonic_ms.is_finite() && monotonic_ms > 0.0 {
        (monotonic_ms * 1e6) as u64
    } else {
        0
    };
    let now = Instant::from_nanos(nanos).max(NOW.with(Cell::get));
    NOW.with(|cell| cell.set(now));
    if unix_ms.is_finite() && unix_ms > 0.0 {
        UNIX.with(|cell| cell.set(Duration::from_micros((unix_ms * 1e3) as u64)));
    }
    let due: Vec<Waker> = TIMERS.with(|timers| {
        let mut timers = timers.borrow_mut();
        let later = timers.split_off(&(now, u64::MAX));
        std::mem::replace(&mut *timers, later)
            .into_values()
            .collect()
    });
    due.into_iter().for_each(Waker::wake);
}

/// Now, as the core counts time.
pub(crate) fn now() -> Instant {
    NOW.with(Cell::get)
}

/// The earliest deadline a task sleeps until, in the host's milliseconds.
pub(crate) fn next_deadline_ms() -> Option<f64> {
    TIMERS.with(|timers| {
        let timers = timers.borrow();
        let ((at, _), _) = timers.first_key_value()?;
        Some(at.as_nanos() as f64 / 1e6)
    })
}

/// How many sleeps are armed (for the tests' leak checks).
pub(crate) fn armed_timers() -> usize {
    TIMERS.with(|timers| timers.borrow().len())
}

/// A sleep until a deadline on the host's clock.
struct Sleep {
    deadline: Instant,
    key: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if now() >= self.deadline {
            self.disarm();
            return Poll::Ready(());
        }
        let key = *self.key.get_or_insert_with(|| {
            NEXT_TIMER.with(|next| {
                next.set(next.get() + 1);
                next.get()
            })
        });
        let entry = (self.deadline, key);
        TIMERS.with(|timers| timers.borrow_mut().insert(entry, cx.waker().clone()));
        Poll::Pending
    }
}

impl Sleep {
    fn disarm(&mut self) {
        if let Some(key) = self.key.take() {
            let entry = (self.deadline, key);
            // `try_with`: the thread-local may be gone while the instance shuts down.
            let _ = TIMERS.try_with(|timers| timers.borrow_mut().remove(&entry));
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// The runtime `tether-rt` runs on inside the module. It holds nothing: everything is in
/// this instance's thread-locals.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostRuntime;

impl Runtime for HostRuntime {
    fn now(&self) -> Instant {
        now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(Sleep {
            deadline,
            key: None,
        })
    }

    fn spawn(&self, task: BoxFuture<()>) {
        executor::spawn(task);
    }

    fn unix_time(&self) -> Duration {
        UNIX.with(Cell::get)
    }

    fn fill_random(&self, dest: &mut [u8]) {
        RNG.with(|rng| {
            let mut rng = rng.borrow_mut();
            // The JS side seeds before anything runs; a missing seed is our bug, and a
            // fixed stream would make masks predictable, so refuse loudly.
            let rng = rng
                .as_mut()
                .expect("the host seeds the random source first");
            rng.fill_bytes(dest);
        });
    }
}

/// The shared handle the loops take.
pub(crate) fn runtime() -> Rt {
    Arc::new(HostRuntime)
}
