//! The core's clock from the monotonic clock, async-io's timers, and the [`Spawner`] that
//! starts tasks on the executor in use: together, the [`Runtime`] the shared loops of
//! `tether-rt` run on.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tether_core::time::Instant as CoreInstant;
use tether_rt::{BoxFuture, Rt, Runtime};

#[cfg(not(any(feature = "async-std", feature = "smol")))]
compile_error!("tether-async-std needs an executor: enable the feature `async-std` or `smol`");

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

/// How this crate starts its tasks (connections, WebSocket pumps, scheduler jobs, the
/// client's idle reaper): a function that runs a future to its end in the background on an
/// executor. async-io gives sockets and timers to any executor, so only this is chosen.
///
/// [`Spawner::default`] is async-std's executor with the feature `async-std` (on by default),
/// else smol's global executor. A [`Server`](crate::Server) or [`Client`](crate::Client) made
/// without one uses the default; [`Server::with_spawner`](crate::Server::with_spawner) and
/// [`Client::with_spawner`](crate::Client::with_spawner) choose another. The crate's free
/// functions ([`shield`](crate::shield), [`jobs::scheduler`](crate::jobs::scheduler),
/// [`websocket::spawn`](crate::websocket::spawn)) use the default; with another executor,
/// call their `tether-rt` versions with [`Spawner::runtime`], e.g.
/// `tether_rt::runtime::shield(&*spawner.runtime(), work)`.
#[derive(Clone)]
pub struct Spawner {
    spawn: Arc<dyn Fn(BoxFuture<()>) + Send + Sync>,
}

impl Spawner {
    /// Spawns with `spawn`, which must run the future to its end (detached: every task
    /// started here reports its own end).
    pub fn from_fn(spawn: impl Fn(BoxFuture<()>) + Send + Sync + 'static) -> Spawner {
        Spawner {
            spawn: Arc::new(spawn),
        }
    }

    /// async-std's executor (`async_std::task::spawn`).
    #[cfg(feature = "async-std")]
    pub fn async_std() -> Spawner {
        // Dropping async-std's `JoinHandle` detaches the task.
        Spawner::from_fn(|task| drop(async_std::task::spawn(task)))
    }

    /// smol's global executor (`smol::spawn`, threads started on first use).
    #[cfg(feature = "smol")]
    pub fn smol() -> Spawner {
        Spawner::from_fn(|task| smol::spawn(task).detach())
    }

    /// This executor: its tasks run while someone runs it (`executor.run(..)`, on one or
    /// more threads).
    #[cfg(feature = "smol")]
    pub fn executor(executor: Arc<smol::Executor<'static>>) -> Spawner {
        Spawner::from_fn(move |task| executor.spawn(task).detach())
    }

    /// The [`Runtime`] of `tether-rt` on this spawner and async-io's timers, for code
    /// written against `tether-rt` directly.
    pub fn runtime(&self) -> Rt {
        let _ = origin();
        Arc::new(AsyncIo {
            spawner: self.clone(),
        })
    }
}

impl Default for Spawner {
    /// async-std's executor with the feature `async-std`, else smol's global executor.
    fn default() -> Spawner {
        #[cfg(feature = "async-std")]
        return Spawner::async_std();
        #[cfg(all(feature = "smol", not(feature = "async-std")))]
        return Spawner::smol();
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}

/// async-io's timers and a [`Spawner`], as the shared loops see them.
struct AsyncIo {
    spawner: Spawner,
}

impl Runtime for AsyncIo {
    fn now(&self) -> CoreInstant {
        now()
    }

    fn sleep_until(&self, deadline: CoreInstant) -> BoxFuture<()> {
        // Far-future deadlines are capped: a year is forever for a connection.
        let since = deadline
            .duration_since_origin()
            .min(Duration::from_secs(365 * 24 * 3600));
        let timer = async_io::Timer::at(origin() + since);
        Box::pin(async move {
            timer.await;
        })
    }

    fn spawn(&self, task: BoxFuture<()>) {
        (self.spawner.spawn)(task);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_follow_the_core_clock_and_tasks_run_on_each_executor() {
        // The default (async-std's executor), and a smol executor run by this test.
        let executor = Arc::new(smol::Executor::new());
        let on_executor = executor.clone();
        let spawners = [
            Spawner::default(),
            Spawner::from_fn(move |task| on_executor.spawn(task).detach()),
        ];
        for spawner in spawners {
            let rt = spawner.runtime();
            let ran = smol::block_on(executor.run(async {
                let start = rt.now();
                rt.sleep_until(start + Duration::from_millis(20)).await;
                assert!(rt.now().saturating_duration_since(start) >= Duration::from_millis(20));
                // A deadline that has passed completes at once.
                rt.sleep_until(start).await;
                tether_rt::Task::spawn(&*rt, async { 7 }).await.ok()
            }));
            assert_eq!(ran, Some(7), "{spawner:?}");
        }
        let rt = Spawner::default().runtime();
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        rt.fill_random(&mut a);
        rt.fill_random(&mut b);
        assert_ne!(a, b);
        assert!(rt.unix_time() > Duration::from_secs(1_600_000_000));
    }
}
