//! Connection-pool bookkeeping, without IO: which connection a request may use, when to
//! open one, who waits, and which connections to close.
//!
//! The pool decides; the adapter dials, closes and wakes tasks. Every operation is one
//! synchronous method call, so the state can never be left half-updated by a cancelled task
//! (the root of aiohttp's pool deadlocks and leaks, aiohttp#9670, httpcore#830).
//!
//! # Driving contract
//!
//! * [`Pool::acquire`] answers at once: reuse this idle connection, open a new one (a slot is
//!   reserved for it), or wait (a [`WaiterId`]).
//! * The adapter reports what happened: [`Pool::opened`], [`Pool::open_failed`],
//!   [`Pool::release`] (reusable or not), [`Pool::cancel_wait`] (a waiter gave up).
//! * After any call, drain [`Pool::poll_event`]: grants for waiters, connections to close,
//!   waiters refused because the pool closed. Sleep until [`Pool::poll_timeout`] and call
//!   [`Pool::handle_timeout`] to expire idle connections.
//!
//! # Rules
//!
//! * Open connections (idle + in use + opening) never exceed `limit`, nor `limit_per_host`
//!   for one origin.
//! * Idle connections are reused freshest first, and never after their idle life: the
//!   shorter of `keepalive_timeout` and the server's `Keep-Alive: timeout=` hint (less a
//!   second of margin), so a connection the server has dropped is not handed out.
//! * Waiters of one origin are served first come, first served, and as soon as capacity
//!   exists; at the global limit an idle connection of another origin is closed to make room.

use crate::time::Instant;
use core::time::Duration;
use http::{HeaderValue, Method, Uri};
use std::borrow::Cow;
use std::collections::VecDeque;

/// A map with a fast, randomly seeded hash (origins and ids are hashed several times per
/// request; SipHash cost more than the pool's own work).
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Where connections go: scheme, host and port, and the proxy in between if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Lowercase; the usual schemes without an allocation.
    scheme: Cow<'static, str>,
    host: String,
    port: u16,
    proxy: Option<String>,
}

impl Origin {
    /// An origin; scheme and host are compared case-insensitively.
    pub fn new(scheme: &str, host: &str, port: u16) -> Origin {
        const KNOWN: [&str; 4] = ["http", "https", "ws", "wss"];
        let scheme = match KNOWN
            .iter()
            .find(|known| known.eq_ignore_ascii_case(scheme))
        {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(scheme.to_ascii_lowercase()),
        };
        Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            proxy: None,
        }
    }

    /// The origin of an absolute URI, with the scheme's default port (80 for http and ws,
    /// 443 for https and wss) when none is given.
    pub fn from_uri(uri: &Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?;
        let port = uri.port_u16().or(match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        })?;
        Some(Origin::new(scheme, uri.host()?, port))
    }

    /// The same origin reached through `proxy` (connections through different proxies are
    /// not interchangeable).
    pub fn via_proxy(mut self, proxy: &str) -> Origin {
        self.proxy = Some(proxy.to_ascii_lowercase());
        self
    }

    /// The scheme, lowercase.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, lowercase.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Pool settings, with aiohttp's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Open connections in all (`None`: unlimited). Default 100.
    pub limit: Option<usize>,
    /// Open connections per origin (`None`: unlimited). Default unlimited.
    pub limit_per_host: Option<usize>,
    /// How long an idle connection may wait for reuse (`None`: no limit). Default 15 s.
    pub keepalive_timeout: Option<Duration>,
    /// Never reuse a connection. Default off.
    pub force_close: bool,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            limit: Some(100),
            limit_per_host: None,
            keepalive_timeout: Some(Duration::from_secs(15)),
            force_close: false,
        }
    }
}

/// A connection the pool knows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

/// A request waiting for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(u64);

/// What a request may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Use this idle connection (now in use).
    Reuse(ConnId),
    /// Open a new connection; this id holds its slot. Report `opened` or `open_failed`.
    Open(ConnId),
}

/// The answer to [`Pool::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// Go ahead.
    Ready(Grant),
    /// Wait for a [`PoolEvent::Granted`] with this id (or give up with `cancel_wait`).
    Wait(WaiterId),
}

/// Something the adapter must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A waiter may go ahead.
    Granted {
        /// Who waited.
        waiter: WaiterId,
        /// What it may do.
        grant: Grant,
    },
    /// Close this connection (expired, not reusable, making room, or the pool closed).
    Close(ConnId),
    /// The pool closed while this waiter waited: it gets no connection.
    Refused(WaiterId),
}

/// A misuse of the pool's API, reported instead of corrupting its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool is closed: no new connections.
    #[error("the pool is closed")]
    Closed,
    /// No such connection (never given out, or already closed).
    #[error("unknown connection")]
    UnknownConnection,
    /// The connection is not in use (for example a second release).
    #[error("connection not in use")]
    NotInUse,
    /// The connection is not being opened.
    #[error("connection not being opened")]
    NotOpening,
    /// No such waiter (never waited, already served and using its grant, or gone).
    #[error("unknown waiter")]
    UnknownWaiter,
}

/// Counts for one origin (or all), for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Idle connections ready for reuse.
    pub idle: usize,
    /// Connections in use.
    pub in_use: usize,
    /// Connections being opened.
    pub opening: usize,
    /// Requests waiting.
    pub waiting: usize,
}

impl PoolStats {
    /// Open connections: idle, in use and being opened.
    pub fn open(&self) -> usize {
        self.idle + self.in_use + self.opening
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    InUse,
    Idle { expires: Option<Instant> },
}

#[derive(Debug)]
struct Conn {
    origin: Origin,
    state: State,
    /// The waiter this connection was granted to and who has not used it yet.
    granted_to: Option<WaiterId>,
    /// When it stops being reusable, kept while it is lent out unused.
    idle_expires: Option<Instant>,
}

#[derive(Debug)]
struct Waiter {
    id: WaiterId,
    origin: Origin,
}

/// The pool: pure bookkeeping, see the module documentation.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    conns: HashMap<ConnId, Conn>,
    /// Idle connections per origin, freshest last.
    idle: HashMap<Origin, Vec<ConnId>>,
    /// Open connections per origin.
    open_per_origin: HashMap<Origin, usize>,
    open_total: usize,
    /// Waiters in arrival order (so per origin too).
    waiters: VecDeque<Waiter>,
    /// Grants given to waiters that have not used them yet.
    granted: HashMap<WaiterId, Grant>,
    events: VecDeque<PoolEvent>,
    next_id: u64,
    closed: bool,
}

/// Margin taken off a server's `Keep-Alive: timeout=` so we stop reusing before it closes.
const HINT_MARGIN: Duration = Duration::from_secs(1);

impl Pool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Pool {
        Pool {
            config,
            conns: HashMap::default(),
            idle: HashMap::default(),
            open_per_origin: HashMap::default(),
            open_total: 0,
            waiters: VecDeque::new(),
            granted: HashMap::default(),
            events: VecDeque::new(),
            next_id: 0,
            closed: false,
        }
    }

    // ---- getters ----

    /// Counts for one origin.
    pub fn stats(&self, origin: &Origin) -> PoolStats {
        let mut stats = PoolStats {
            waiting: self.waiters.iter().filter(|w| w.origin == *origin).count(),
            ..PoolStats::default()
        };
        for conn in self.conns.values().filter(|c| c.origin == *origin) {
            count(&mut stats, conn.state);
        }
        stats
    }

    /// Counts for the whole pool.
    pub fn total_stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            waiting: self.waiters.len(),
            ..PoolStats::default()
        };
        for conn in self.conns.values() {
            count(&mut stats, conn.state);
        }
        stats
    }

    /// Whether [`Pool::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // ---- commands and inputs ----

    /// A request for `origin` wants a connection at `now`.
    pub fn acquire(&mut self, origin: &Origin, now: Instant) -> Result<Acquire, PoolError> {
        if self.closed {
            return Err(PoolError::Closed);
        }
        self.expire(now);
        let queued = self.waiters.iter().any(|w| w.origin == *origin);
        if !queued {
            if let Some(grant) = self.try_grant(origin, now) {
                return Ok(Acquire::Ready(grant));
            }
        }
        let id = WaiterId(self.fresh_id());
        self.waiters.push_back(Waiter {
            id,
            origin: origin.clone(),
        });
        Ok(Acquire::Wait(id))
    }

    /// A connection being opened is ready (now in use by whoever opened it).
    pub fn opened(&mut self, id: ConnId) -> Result<(), PoolError> {
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(PoolError::UnknownConnection)?;
        if conn.state != State::Opening {
            return Err(PoolError::NotOpening);
        }
        conn.state = State::InUse;
        if let Some(waiter) = conn.granted_to.take() {
            self.granted.remove(&waiter);
        }
        if self.closed {
            self.forget(id);
            self.events.push_back(PoolEvent::Close(id));
        }
        Ok(())
    }

    /// Opening a connection failed: its slot is free again.
    pub fn open_failed(&mut self, id: ConnId, now: Instant) -> Result<(), PoolError> {
        let conn = self.conns.get(&id).ok_or(PoolError::UnknownConnection)?;
        if conn.state != State::Opening {
            return Err(PoolError::NotOpening);
        }
        if let Some(waiter) = conn.granted_to {
            self.granted.remove(&waiter);
        }
        self.forget(id);
        self.serve_waiters(now);
        Ok(())
    }

    /// A request is done with a connection at `now`. `reusable`: the exchange ended cleanly
    /// and the connection may carry another (a response read to its end, keep-alive agreed);
    /// `keep_alive_hint`: the server's `Keep-Alive: timeout=`, see [`keep_alive_timeout`].
    /// A second release of the same connection is an error, not a double count.
    pub fn release(
        &mut self,
        id: ConnId,
        reusable: bool,
        keep_alive_hint: Option<Duration>,
        now: Instant,
    ) -> Result<(), PoolError> {
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(PoolError::UnknownConnection)?;
        if conn.state != State::InUse {
            return Err(PoolError::NotInUse);
        }
        if let Some(waiter) = conn.granted_to.take() {
            self.granted.remove(&waiter);
        }
        let life = match (self.config.keepalive_timeout, keep_alive_hint) {
            (Some(ours), Some(hint)) => Some(ours.min(hint.saturating_sub(HINT_MARGIN))),
            (None, Some(hint)) => Some(hint.saturating_sub(HINT_MARGIN)),
            (ours, None) => ours,
        };
        let keep =
            reusable && !self.config.force_close && !self.closed && life != Some(Duration::ZERO);
        if keep {
            conn.state = State::Idle {
                expires: life.map(|d| now + d),
            };
            let origin = conn.origin.clone();
            self.idle.entry(origin).or_default().push(id);
        } else {
            self.forget(id);
            self.events.push_back(PoolEvent::Close(id));
        }
        self.serve_waiters(now);
        Ok(())
    }

    /// A waiter gives up (its request was dropped or timed out). If it had already been
    /// granted a connection or a slot it has not used, that goes back to the pool and on to
    /// the next waiter: nothing it was about to be given leaks.
    pub fn cancel_wait(&mut self, waiter: WaiterId, now: Instant) -> Result<(), PoolError> {
        if let Some(at) = self.waiters.iter().position(|w| w.id == waiter) {
            self.waiters.remove(at);
            return Ok(());
        }
        match self
            .granted
            .remove(&waiter)
            .ok_or(PoolError::UnknownWaiter)?
        {
            Grant::Reuse(id) => self.unuse(id),
            Grant::Open(id) => self.forget(id),
        }
        self.serve_waiters(now);
        Ok(())
    }

    /// Closes the pool: no new acquires; waiters are refused; idle connections are returned
    /// to close now. Connections in use, being opened, or granted and not yet used are closed
    /// when released, opened, or given back.
    pub fn close(&mut self) -> Vec<ConnId> {
        self.closed = true;
        for waiter in std::mem::take(&mut self.waiters) {
            self.events.push_back(PoolEvent::Refused(waiter.id));
        }
        let mut closing: Vec<ConnId> = self.idle.values().flatten().copied().collect();
        closing.sort_unstable();
        for &id in &closing {
            self.forget(id);
        }
        closing
    }

    /// Expires idle connections whose life has ended by `now` (as `Close` events).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    // ---- outputs ----

    /// The next thing to act on.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PoolEvent> {
        self.events.pop_front()
    }

    /// When the next idle connection expires.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|c| match c.state {
                State::Idle { expires } => expires,
                _ => None,
            })
            .min()
    }

    // ---- internals ----

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn open_for(&self, origin: &Origin) -> usize {
        self.open_per_origin.get(origin).copied().unwrap_or(0)
    }

    fn below(limit: Option<usize>, n: usize) -> bool {
        limit.is_none_or(|limit| n < limit)
    }

    /// Serves `origin` now if it can: its freshest idle connection, else a new slot (closing
    /// another origin's oldest idle connection at the global limit).
    fn try_grant(&mut self, origin: &Origin, now: Instant) -> Option<Grant> {
        while let Some(id) = self.idle.get_mut(origin).and_then(Vec::pop) {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            let State::Idle { expires } = conn.state else {
                continue;
            };
            if expires.is_some_and(|t| t <= now) {
                // Past its idle life: never handed out.
                self.forget(id);
                self.events.push_back(PoolEvent::Close(id));
                continue;
            }
            conn.idle_expires = expires;
            conn.state = State::InUse;
            return Some(Grant::Reuse(id));
        }
        if !Self::below(self.config.limit_per_host, self.open_for(origin)) {
            return None;
        }
        if !Self::below(self.config.limit, self.open_total) {
            let victim = self.oldest_idle_elsewhere(origin)?;
            self.forget(victim);
            self.events.push_back(PoolEvent::Close(victim));
        }
        let id = ConnId(self.fresh_id());
        self.conns.insert(
            id,
            Conn {
                origin: origin.clone(),
                state: State::Opening,
                granted_to: None,
                idle_expires: None,
            },
        );
        *self.open_per_origin.entry(origin.clone()).or_default() += 1;
        self.open_total += 1;
        Some(Grant::Open(id))
    }

    /// The idle connection of another origin that was released first.
    fn oldest_idle_elsewhere(&self, origin: &Origin) -> Option<ConnId> {
        self.idle
            .iter()
            .filter(|(o, _)| *o != origin)
            .filter_map(|(_, ids)| ids.first())
            .min_by_key(|id| match self.conns.get(id).map(|c| c.state) {
                Some(State::Idle { expires }) => expires.unwrap_or(Instant::MAX),
                _ => Instant::MAX,
            })
            .copied()
    }

    /// Grants waiting requests whatever capacity now exists, in arrival order.
    fn serve_waiters(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let mut i = 0;
        while i < self.waiters.len() {
            let origin = self.waiters[i].origin.clone();
            let earlier_same_origin = self.waiters.iter().take(i).any(|w| w.origin == origin);
            if earlier_same_origin {
                i += 1;
                continue;
            }
            match self.try_grant(&origin, now) {
                Some(grant) => {
                    let Some(waiter) = self.waiters.remove(i) else {
                        break;
                    };
                    let id = match grant {
                        Grant::Reuse(id) | Grant::Open(id) => id,
                    };
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.granted_to = Some(waiter.id);
                    }
                    self.granted.insert(waiter.id, grant);
                    self.events.push_back(PoolEvent::Granted {
                        waiter: waiter.id,
                        grant,
                    });
                }
                None => i += 1,
            }
        }
    }

    /// Puts a connection granted but never used back among the idle ones, as the freshest,
    /// with the idle deadline it had.
    fn unuse(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.granted_to = None;
        if self.closed {
            self.forget(id);
            self.events.push_back(PoolEvent::Close(id));
            return;
        }
        conn.state = State::Idle {
            expires: conn.idle_expires,
        };
        let origin = conn.origin.clone();
        self.idle.entry(origin).or_default().push(id);
    }

    /// Closes idle connections whose life ended by `now`.
    fn expire(&mut self, now: Instant) {
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Idle { expires: Some(t) } if t <= now))
            .map(|(&id, _)| id)
            .collect();
        let mut expired = expired;
        expired.sort_unstable();
        for id in expired {
            self.forget(id);
            self.events.push_back(PoolEvent::Close(id));
        }
        if !self.events.is_empty() {
            self.serve_waiters(now);
        }
    }

    /// Drops a connection from every count.
    fn forget(&mut self, id: ConnId) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        if let State::Idle { .. } = conn.state {
            if let Some(ids) = self.idle.get_mut(&conn.origin) {
                ids.retain(|&other| other != id);
                if ids.is_empty() {
                    self.idle.remove(&conn.origin);
                }
            }
        }
        if let Some(n) = self.open_per_origin.get_mut(&conn.origin) {
            *n -= 1;
            if *n == 0 {
                self.open_per_origin.remove(&conn.origin);
            }
        }
        self.open_total -= 1;
    }
}

fn count(stats: &mut PoolStats, state: State) {
    match state {
        State::Opening => stats.opening += 1,
        State::InUse => stats.in_use += 1,
        State::Idle { .. } => stats.idle += 1,
    }
}

/// The `timeout=` of a `Keep-Alive` response header (`timeout=5, max=100`), for
/// [`Pool::release`].
pub fn keep_alive_timeout(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    text.split(',').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("timeout") {
            return None;
        }
        let secs: u64 = value.trim().trim_matches('"').parse().ok()?;
        Some(Duration::from_secs(secs))
    })
}

/// Whether a request that failed may be sent once more on a fresh connection: it went out on
/// a reused (possibly stale) connection, no byte of a response arrived, and its method is
/// idempotent, so the server cannot have acted on it twice in a way that matters.
pub fn may_retry(reused: bool, response_started: bool, method: &Method) -> bool {
    reused && !response_started && method.is_idempotent()
}

#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod model;
#[cfg(test)]
mod tests;
