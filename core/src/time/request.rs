//! aiohttp's four client timeouts, as deadlines of one request.
//!
//! | timeout | covers | default |
//! |---|---|---|
//! | `total` | the whole operation: getting a connection, sending, reading the response to its end | 300 s |
//! | `connect` | getting a connection: waiting for a pool slot *and* opening a new one | off |
//! | `sock_connect` | opening one new connection (TCP, and TLS where the adapter adds it) | off |
//! | `sock_read` | the longest gap between two reads of response bytes (from the request being sent) | off |
//!
//! The adapter reports each phase change to a [`RequestTimer`] and sleeps until its
//! `poll_timeout`; `handle_timeout` says which timeout fired.

use super::Instant;
use core::time::Duration;

/// The four timeouts; `None` disables one. Build per-request overrides from the session's
/// defaults with the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTimeouts {
    /// The whole operation. Default 300 s.
    pub total: Option<Duration>,
    /// Getting a connection, pool wait included. Default off.
    pub connect: Option<Duration>,
    /// Opening one new connection. Default off.
    pub sock_connect: Option<Duration>,
    /// The longest gap between reads of response bytes. Default off.
    pub sock_read: Option<Duration>,
}

impl Default for ClientTimeouts {
    fn default() -> ClientTimeouts {
        ClientTimeouts {
            total: Some(Duration::from_secs(300)),
            connect: None,
            sock_connect: None,
            sock_read: None,
        }
    }
}

impl ClientTimeouts {
    /// No timeouts at all.
    pub const NONE: ClientTimeouts = ClientTimeouts {
        total: None,
        connect: None,
        sock_connect: None,
        sock_read: None,
    };

    /// These timeouts with `total` replaced.
    pub fn with_total(mut self, total: Option<Duration>) -> ClientTimeouts {
        self.total = total;
        self
    }

    /// These timeouts with `connect` replaced.
    pub fn with_connect(mut self, connect: Option<Duration>) -> ClientTimeouts {
        self.connect = connect;
        self
    }

    /// These timeouts with `sock_connect` replaced.
    pub fn with_sock_connect(mut self, sock_connect: Option<Duration>) -> ClientTimeouts {
        self.sock_connect = sock_connect;
        self
    }

    /// These timeouts with `sock_read` replaced.
    pub fn with_sock_read(mut self, sock_read: Option<Duration>) -> ClientTimeouts {
        self.sock_read = sock_read;
        self
    }
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The whole operation took too long.
    #[error("total timeout")]
    Total,
    /// Getting a connection (pool wait included) took too long.
    #[error("connect timeout")]
    Connect,
    /// Opening a new connection took too long.
    #[error("socket connect timeout")]
    SockConnect,
    /// Too long without response bytes.
    #[error("socket read timeout")]
    SockRead,
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestPhase {
    /// Waiting for a connection from the pool (or for a slot to open one).
    Acquiring,
    /// Opening a new connection.
    Connecting,
    /// Writing the request.
    Sending,
    /// Waiting for and reading the response.
    Receiving,
    /// Finished, or a timeout fired: no deadlines.
    Done,
}

/// The deadlines of one request, in the core's deadline convention.
#[derive(Debug, Clone)]
pub struct RequestTimer {
    timeouts: ClientTimeouts,
    phase: RequestPhase,
    total: Option<Instant>,
    connect: Option<Instant>,
    sock_connect: Option<Instant>,
    sock_read: Option<Instant>,
    fired: Option<TimeoutKind>,
}

impl RequestTimer {
    /// A request that starts at `now` by asking the pool for a connection: `total` and
    /// `connect` start running.
    pub fn new(timeouts: ClientTimeouts, now: Instant) -> RequestTimer {
        RequestTimer {
            timeouts,
            phase: RequestPhase::Acquiring,
            total: timeouts.total.map(|d| now + d),
            connect: timeouts.connect.map(|d| now + d),
            sock_connect: None,
            sock_read: None,
            fired: None,
        }
    }

    /// The phase the request is in.
    pub fn phase(&self) -> RequestPhase {
        self.phase
    }

    /// The timeout that fired, if one did.
    pub fn fired(&self) -> Option<TimeoutKind> {
        self.fired
    }

    /// The pool said to open a new connection, at `now`: `sock_connect` starts (within
    /// `connect`, which keeps running).
    pub fn connecting(&mut self, now: Instant) {
        if self.phase == RequestPhase::Acquiring {
            self.phase = RequestPhase::Connecting;
            self.sock_connect = self.timeouts.sock_connect.map(|d| now + d);
        }
    }

    /// A connection is ready (opened, or reused from the pool): `connect` and
    /// `sock_connect` stop; the request is being sent.
    pub fn connected(&mut self) {
        if matches!(
            self.phase,
            RequestPhase::Acquiring | RequestPhase::Connecting
        ) {
            self.phase = RequestPhase::Sending;
            self.connect = None;
            self.sock_connect = None;
        }
    }

    /// A retry on a fresh connection after a stale pooled one failed: back to getting a
    /// connection, with `connect` running anew from `now` (`total` keeps running).
    pub fn retrying(&mut self, now: Instant) {
        if self.phase != RequestPhase::Done {
            self.phase = RequestPhase::Acquiring;
            self.connect = self.timeouts.connect.map(|d| now + d);
            self.sock_connect = None;
            self.sock_read = None;
        }
    }

    /// The request has been written, at `now`: `sock_read` starts (waiting for the first
    /// response byte counts as a gap).
    pub fn sent(&mut self, now: Instant) {
        if self.phase == RequestPhase::Sending {
            self.phase = RequestPhase::Receiving;
            self.sock_read = self.timeouts.sock_read.map(|d| now + d);
        }
    }

    /// Response bytes arrived at `now`: `sock_read` starts over.
    pub fn read(&mut self, now: Instant) {
        if self.phase == RequestPhase::Receiving {
            self.sock_read = self.timeouts.sock_read.map(|d| now + d);
        }
    }

    /// The application stopped reading (backpressure): the gap is ours, not the server's,
    /// so `sock_read` stops until `read_resumed`.
    pub fn read_paused(&mut self) {
        self.sock_read = None;
    }

    /// The application reads again, at `now`.
    pub fn read_resumed(&mut self, now: Instant) {
        self.read(now);
    }

    /// The response was read to its end (or the request was abandoned): no more deadlines.
    pub fn done(&mut self) {
        self.phase = RequestPhase::Done;
        self.total = None;
        self.connect = None;
        self.sock_connect = None;
        self.sock_read = None;
    }

    /// The earliest deadline in force.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.total, self.connect, self.sock_connect, self.sock_read]
            .into_iter()
            .flatten()
            .min()
    }

    /// Reports the timeout that fired by `now`, if any; the request is then done. When
    /// several are due, the one that names the phase best wins: `sock_connect` over
    /// `connect` over `total`, and `sock_read` over `total`. Early calls return `None`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<TimeoutKind> {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        let kind = if due(self.sock_connect) {
            TimeoutKind::SockConnect
        } else if due(self.connect) {
            TimeoutKind::Connect
        } else if due(self.sock_read) {
            TimeoutKind::SockRead
        } else if due(self.total) {
            TimeoutKind::Total
        } else {
            return None;
        };
        self.done();
        self.fired = Some(kind);
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn all(total: u64, connect: u64, sock_connect: u64, sock_read: u64) -> ClientTimeouts {
        ClientTimeouts {
            total: Some(Duration::from_millis(total)),
            connect: Some(Duration::from_millis(connect)),
            sock_connect: Some(Duration::from_millis(sock_connect)),
            sock_read: Some(Duration::from_millis(sock_read)),
        }
    }

    #[test]
    fn defaults_are_aiohttps() {
        let t = ClientTimeouts::default();
        assert_eq!(t.total, Some(Duration::from_secs(300)));
        assert_eq!((t.connect, t.sock_connect, t.sock_read), (None, None, None));
    }

    #[test]
    fn total_covers_the_pool_wait() {
        let mut r = RequestTimer::new(
            ClientTimeouts::default().with_total(Some(Duration::from_millis(100))),
            ms(0),
        );
        assert_eq!(r.poll_timeout(), Some(ms(100)));
        assert_eq!(r.handle_timeout(ms(99)), None);
        assert_eq!(r.handle_timeout(ms(100)), Some(TimeoutKind::Total));
        assert_eq!(r.phase(), RequestPhase::Done);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn connect_covers_pool_wait_and_opening_but_not_reading() {
        let timeouts = all(10_000, 100, 1_000, 1_000);
        // Fires while waiting in the pool.
        let mut r = RequestTimer::new(timeouts, ms(0));
        assert_eq!(r.handle_timeout(ms(100)), Some(TimeoutKind::Connect));
        // Fires while opening, counted from the start of the wait.
        let mut r = RequestTimer::new(timeouts, ms(0));
        r.connecting(ms(60));
        assert_eq!(r.poll_timeout(), Some(ms(100)));
        assert_eq!(r.handle_timeout(ms(100)), Some(TimeoutKind::Connect));
        // Not once connected.
        let mut r = RequestTimer::new(timeouts, ms(0));
        r.connected();
        r.sent(ms(10));
        assert_eq!(r.handle_timeout(ms(500)), None);
    }

    #[test]
    fn sock_connect_only_while_opening() {
        let timeouts = all(10_000, 5_000, 100, 1_000);
        let mut r = RequestTimer::new(timeouts, ms(0));
        assert_eq!(
            r.poll_timeout(),
            Some(ms(5_000)),
            "not while waiting in the pool"
        );
        r.connecting(ms(1_000));
        assert_eq!(r.poll_timeout(), Some(ms(1_100)));
        assert_eq!(r.handle_timeout(ms(1_100)), Some(TimeoutKind::SockConnect));
        // A reused connection never starts it.
        let mut r = RequestTimer::new(timeouts, ms(0));
        r.connected();
        r.sent(ms(0));
        assert_eq!(r.poll_timeout(), Some(ms(1_000)), "sock_read");
    }

    #[test]
    fn sock_read_resets_on_every_read() {
        let timeouts = all(60_000, 5_000, 1_000, 100);
        let mut r = RequestTimer::new(timeouts, ms(0));
        r.connecting(ms(0));
        assert_eq!(
            r.poll_timeout(),
            Some(ms(1_000)),
            "sock_read not before sending"
        );
        r.connected();
        r.sent(ms(50));
        assert_eq!(r.poll_timeout(), Some(ms(150)));
        for t in (100..5_000).step_by(90) {
            r.read(ms(t));
            assert_eq!(r.handle_timeout(ms(t)), None);
        }
        // A paused reader is not the server's fault.
        r.read_paused();
        assert_eq!(r.poll_timeout(), Some(ms(60_000)));
        r.read_resumed(ms(30_000));
        assert_eq!(r.handle_timeout(ms(30_100)), Some(TimeoutKind::SockRead));
    }

    #[test]
    fn each_fires_in_its_phase_only() {
        let timeouts = all(1_000, 100, 50, 30);
        let phases = [
            RequestPhase::Acquiring,
            RequestPhase::Connecting,
            RequestPhase::Receiving,
        ];
        for phase in phases {
            let mut r = RequestTimer::new(timeouts, ms(0));
            if phase != RequestPhase::Acquiring {
                r.connecting(ms(0));
            }
            if phase == RequestPhase::Receiving {
                r.connected();
                r.sent(ms(0));
            }
            let fired = r.handle_timeout(ms(10_000));
            let expected = match phase {
                RequestPhase::Acquiring => TimeoutKind::Connect,
                RequestPhase::Connecting => TimeoutKind::SockConnect,
                _ => TimeoutKind::SockRead,
            };
            assert_eq!(fired, Some(expected), "{phase:?}");
        }
        let mut r = RequestTimer::new(timeouts, ms(0));
        r.connected();
        r.sent(ms(0));
        r.done();
        assert_eq!(r.handle_timeout(ms(10_000)), None, "nothing after the end");
    }

    #[test]
    fn overrides_win_over_defaults() {
        let session = ClientTimeouts::default().with_sock_read(Some(Duration::from_secs(5)));
        let request = session
            .with_sock_read(None)
            .with_total(Some(Duration::from_millis(10)));
        assert_eq!(request.sock_read, None);
        let mut r = RequestTimer::new(request, ms(0));
        r.connected();
        r.sent(ms(0));
        assert_eq!(r.handle_timeout(ms(10)), Some(TimeoutKind::Total));
        assert_eq!(ClientTimeouts::NONE.total, None);
    }

    #[test]
    fn retry_restarts_connect_not_total() {
        let timeouts = all(1_000, 100, 50, 30);
        let mut r = RequestTimer::new(timeouts, ms(0));
        r.connected();
        r.sent(ms(10));
        r.retrying(ms(20));
        assert_eq!(r.phase(), RequestPhase::Acquiring);
        assert_eq!(r.poll_timeout(), Some(ms(120)));
        r.connecting(ms(30));
        r.connected();
        r.sent(ms(40));
        r.read(ms(990));
        assert_eq!(r.handle_timeout(ms(1_000)), Some(TimeoutKind::Total));
    }
}
