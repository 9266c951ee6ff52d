//! The core's clock from tokio's: one process-wide origin, so core instants and tokio
//! instants convert both ways (and tokio's paused test time drives the core too).

use std::sync::OnceLock;
use std::time::Duration;
use tether_core::time::Instant as CoreInstant;
use tokio::time::Instant;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Now, as the core counts time.
pub(crate) fn core_now() -> CoreInstant {
    CoreInstant::from_duration(origin().elapsed())
}

/// A core deadline as a tokio instant (for `sleep_until`).
pub(crate) fn to_tokio(deadline: CoreInstant) -> Instant {
    let since = deadline.duration_since_origin();
    // Far-future deadlines are capped: a year is forever for a connection.
    origin() + since.min(Duration::from_secs(365 * 24 * 3600))
}
