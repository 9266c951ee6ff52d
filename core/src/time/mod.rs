//! Time as the core sees it: an [`Instant`] the host builds from its own clock.
//!
//! The core never reads a clock (WebAssembly hosts have no `std::time::Instant::now()`,
//! and deterministic tests and fuzzers need fake time). The host picks an origin, for example
//! the moment its event loop started, and hands the core `Instant::from_nanos(elapsed)`.
//! Only differences between instants matter, so any monotonic clock will do.
//!
//! # Deadline conventions
//!
//! Every state machine in the core that can time out follows the same two-method contract,
//! taken from quinn-proto:
//!
//! * `poll_timeout(&self) -> Option<Instant>`: the earliest instant at which the machine
//!   wants to be woken, or `None` if it waits for nothing. The answer changes after every input
//!   or command, so drivers ask again each time round their loop and re-arm one timer.
//! * `handle_timeout(&mut self, now: Instant)`: tells the machine that `now` has come. It acts
//!   on every deadline that is due (`deadline <= now`) and ignores the others, so an early or
//!   repeated call is harmless.
//!
//! Inputs that carry a `now` (received bytes, timeouts) must never go backwards in time.
//!
//! [`RequestTimer`] applies aiohttp's four client timeouts (`total`, `connect`,
//! `sock_connect`, `sock_read`) to one request as deadlines.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

mod request;

pub use request::{ClientTimeouts, RequestPhase, RequestTimer, TimeoutKind};

/// A point on the host's monotonic clock, in nanoseconds since an origin the host chose.
///
/// Arithmetic saturates instead of overflowing: `Instant::MAX` stands for "never".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The host's origin.
    pub const ZERO: Instant = Instant { nanos: 0 };
    /// The latest representable instant (about 584 years after the origin).
    pub const MAX: Instant = Instant { nanos: u64::MAX };

    /// The instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant { nanos }
    }

    /// The instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// The instant `since_origin` after the origin (saturating).
    pub fn from_duration(since_origin: Duration) -> Instant {
        Instant {
            nanos: u64::try_from(since_origin.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Time since the origin.
    pub const fn duration_since_origin(self) -> Duration {
        Duration::from_nanos(self.nanos)
    }

    /// How long after `earlier` this instant is, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// `self + duration`, or `None` if that is past [`Instant::MAX`].
    pub fn checked_add(self, duration: Duration) -> Option<Instant> {
        let add = u64::try_from(duration.as_nanos()).ok()?;
        self.nanos.checked_add(add).map(Instant::from_nanos)
    }

    /// `self + duration`, clamped to [`Instant::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Instant {
        self.checked_add(duration).unwrap_or(Instant::MAX)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: a deadline too far away becomes [`Instant::MAX`].
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturating at the origin.
    fn sub(self, rhs: Duration) -> Instant {
        let sub = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant::from_nanos(self.nanos.saturating_sub(sub))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Same as [`Instant::saturating_duration_since`].
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// A deadline: an instant and what it is for.
///
/// State machines keep the deadlines they have armed as `Option<Deadline<K>>` (or a small
/// table of them) and answer `poll_timeout` with the earliest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline<K> {
    pub(crate) at: Instant,
    pub(crate) kind: K,
}

impl<K: Copy> Deadline<K> {
    /// A deadline `after` past `now`, or `None` when `after` is `None` (timeout disabled).
    pub(crate) fn after(now: Instant, after: Option<Duration>, kind: K) -> Option<Deadline<K>> {
        after.map(|d| Deadline { at: now + d, kind })
    }

    /// Whether the deadline has come at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(1_500);
        assert_eq!(t.as_nanos(), 1_500_000_000);
        assert_eq!(t + Duration::from_millis(500), Instant::from_millis(2_000));
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(t - Duration::from_secs(10), Instant::ZERO);
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(
            Instant::from_duration(Duration::from_secs(3)),
            Instant::from_millis(3_000)
        );
        assert_eq!(Instant::from_duration(Duration::MAX), Instant::MAX);
        let mut u = t;
        u += Duration::from_nanos(1);
        assert_eq!(u.as_nanos(), 1_500_000_001);
    }

    #[test]
    fn ordering_and_differences() {
        let a = Instant::from_millis(10);
        let b = Instant::from_millis(25);
        assert!(a < b);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(15));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(b - a, Duration::from_millis(15));
        assert_eq!(b.duration_since_origin(), Duration::from_millis(25));
    }

    #[test]
    fn deadlines() {
        let now = Instant::from_millis(100);
        assert_eq!(Deadline::after(now, None, ()), None);
        let d = Deadline::after(now, Some(Duration::from_millis(50)), ()).unwrap();
        assert!(!d.is_due(Instant::from_millis(149)));
        assert!(d.is_due(Instant::from_millis(150)));
    }
}
