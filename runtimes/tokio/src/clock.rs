//! The core's clock from tokio's, and the [`Runtime`] the shared loops of `tether-rt` run on:
//! one process-wide origin, so core instants and tokio instants convert both ways (and
//! tokio's paused test time drives the core too).

use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tether_core::time::Instant as CoreInstant;
use tether_rt::{BoxFuture, Rt, Runtime};
use tokio::runtime::Handle;
use tokio::time::Instant;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Now, as the core counts time, on the clock every task of this crate uses. Build core
/// state machines you hand to this crate (e.g. to [`websocket::spawn`](crate::websocket::spawn))
/// with it.
pub fn now() -> CoreInstant {
    CoreInstant::from_duration(origin().elapsed())
}

/// A core deadline as a tokio instant (for `sleep_until`).
pub(crate) fn to_tokio(deadline: CoreInstant) -> Instant {
    let since = deadline.duration_since_origin();
    // Far-future deadlines are capped: a year is forever for a connection.
    origin() + since.min(Duration::from_secs(365 * 24 * 3600))
}

/// tokio as the shared loops see it: its timer, and tasks on the current runtime (or, from
/// outside one, on the last runtime this handle was used in).
struct Tokio {
    handle: OnceLock<Handle>,
}

impl Runtime for Tokio {
    fn now(&self) -> CoreInstant {
        now()
    }

    fn sleep_until(&self, deadline: CoreInstant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(to_tokio(deadline)))
    }

    fn spawn(&self, task: BoxFuture<()>) {
        // Detached on purpose: every task started here reports its own end (a connection,
        // a WebSocket pump, a scheduler job, the client's idle reaper).
        let handle = match Handle::try_current() {
            Ok(current) => {
                self.handle.get_or_init(|| current.clone());
                current
            }
            Err(_) => self
                .handle
                .get()
                .cloned()
                .expect("tether-tokio: spawning outside a tokio runtime"),
        };
        drop(handle.spawn(task));
    }

    fn unix_time(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn fill_random(&self, dest: &mut [u8]) {
        // The OS's generator; should it ever fail, the masks must still be unpredictable
        // enough to stop cache poisoning (RFC 6455 §10.3): fall back to hashed state.
        if getrandom::fill(dest).is_err() {
            use std::hash::{BuildHasher, Hasher};
            for chunk in dest.chunks_mut(8) {
                let hasher = std::collections::hash_map::RandomState::new().build_hasher();
                let value = hasher.finish();
                chunk.copy_from_slice(&value.to_ne_bytes()[..chunk.len()]);
            }
        }
    }
}

/// The shared loops' view of tokio. May be made outside a runtime (a client built before
/// one starts); tasks are spawned on the runtime current at the time.
pub(crate) fn runtime() -> Rt {
    let _ = origin();
    let handle = OnceLock::new();
    if let Ok(current) = Handle::try_current() {
        let _ = handle.set(current);
    }
    Arc::new(Tokio { handle })
}
