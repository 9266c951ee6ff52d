//! The pool, driven: the core's [`Pool`](tether_core::pool::Pool) decides which connection a
//! request uses, who waits and what closes; this module carries out its decisions (hands
//! idle connections out, opens new ones, wakes waiters, expires idle connections in one
//! background task) and makes sure every connection it hands out is accounted for exactly
//! once, however the request ends ([`Lease`] and the guards).

use super::config::ClientError;
use super::io::{with_deadline, Conn};
use super::log;
use super::proxy::route::Route;
use super::request::RequestBody;
use super::response::ClientResponse;
use super::Client;
use crate::runtime::{sleep_until, Timer};
use futures_channel::oneshot;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::task::AtomicWaker;
use http::Request;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tether_core::pool::{self, Acquire, ConnId, Grant, PoolEvent, WaiterId};
use tether_core::time::{Instant, RequestTimer};

impl Client {
    /// One request/response exchange on a pooled connection, with one retry on a fresh
    /// connection when a reused one turns out stale.
    pub(super) async fn exchange(
        &self,
        route: &Route,
        head: &Request<()>,
        body: &mut RequestBody,
        timer: &mut RequestTimer,
        retries: &mut usize,
    ) -> Result<ClientResponse, ClientError> {
        let mut retried = false;
        let trace = log::enabled();
        loop {
            let Some(outgoing) = body.attempt() else {
                return Err(ClientError::Io(io::Error::other(
                    "a streamed body cannot be sent twice",
                )));
            };
            let mut lease = self.acquire(route, timer).await?;
            timer.connected();
            let sending = trace.then(|| self.now());
            let mut response_started = false;
            match lease
                .conn()
                .send_request(head, outgoing, timer, &mut response_started)
                .await
            {
                Ok(response_head) => {
                    let first_byte = sending.map(|at| self.now().saturating_duration_since(at));
                    log::response_head(response_head.status(), first_byte);
                    lease.keep_alive = response_head
                        .headers()
                        .get("keep-alive")
                        .and_then(pool::keep_alive_timeout);
                    return Ok(ClientResponse::new(self, response_head, lease, timer));
                }
                Err(e) => {
                    let reused = lease.reused;
                    drop(lease);
                    let stale = matches!(e, ClientError::Io(_) | ClientError::Protocol(_));
                    if stale
                        && !body.is_spent()
                        && !retried
                        && pool::may_retry(reused, response_started, head.method())
                    {
                        retried = true;
                        *retries += 1;
                        log::retry(&e, reused);
                        timer.retrying(self.now());
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    pub(super) fn drain_pool_events(&self) {
        let events: Vec<PoolEvent> = match self.shared.pool.lock() {
            Ok(mut pool) => std::iter::from_fn(|| pool.poll_event()).collect(),
            Err(_) => return,
        };
        for event in events {
            match event {
                PoolEvent::Granted { waiter, grant } => {
                    let tx = self
                        .shared
                        .waiters
                        .lock()
                        .ok()
                        .and_then(|mut w| w.remove(&waiter));
                    if let Some(tx) = tx {
                        if tx.send(grant).is_err() {
                            // The waiter is gone: its grant goes back to the pool.
                            self.cancel_wait(waiter);
                        }
                    }
                }
                PoolEvent::Close(id) => {
                    if let Ok(mut idle) = self.shared.idle.lock() {
                        idle.remove(&id); // dropping the stream closes it
                    }
                }
                PoolEvent::Refused(waiter) => {
                    if let Ok(mut waiters) = self.shared.waiters.lock() {
                        waiters.remove(&waiter); // the dropped sender wakes it with Closed
                    }
                }
                _ => {}
            }
        }
    }

    /// A waiter gives up: whatever it was granted and has not used goes back to the pool.
    fn cancel_wait(&self, waiter: WaiterId) {
        if let Ok(mut pool) = self.shared.pool.lock() {
            let _ = pool.cancel_wait(waiter, self.now());
        }
        self.drain_pool_events();
    }

    /// Keeps one task that expires idle connections on the pool's deadlines.
    fn ensure_reaper(&self) {
        let Ok(mut reaper) = self.shared.reaper.lock() else {
            return;
        };
        if reaper.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let wake = self.shared.reaper_wake.clone();
        let rt = self.shared.rt.clone();
        let (abort, registration) = AbortHandle::new_pair();
        *reaper = Some(abort);
        let task = Abortable::new(
            async move {
                loop {
                    let Some(shared) = weak.upgrade() else { return };
                    // Read and noted under the pool's lock, where releases compare with it.
                    let next = shared.pool.lock().ok().and_then(|pool| {
                        let next = pool.poll_timeout();
                        wake.sleeping_until(next);
                        next
                    });
                    // Only the weak reference is held while sleeping: the client can go away.
                    drop(shared);
                    // A wake-up sent since the deadline was read is kept: it ends this sleep.
                    let mut sleep = pin!(sleep_until(&*rt, next));
                    poll_fn(|cx| match wake.poll_woken(cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => sleep.as_mut().poll(cx),
                    })
                    .await;
                    let Some(shared) = weak.upgrade() else { return };
                    if let Ok(mut pool) = shared.pool.lock() {
                        pool.handle_timeout(shared.rt.now());
                    }
                    Client { shared }.drain_pool_events();
                }
            },
            registration,
        );
        self.shared.rt.spawn(Box::pin(async move {
            let _ = task.await;
        }));
    }

    /// A connection along `route`: reused, newly opened, or after a wait.
    async fn acquire(&self, route: &Route, timer: &mut RequestTimer) -> Result<Lease, ClientError> {
        self.ensure_reaper();
        let trace = log::enabled();
        let mut waited = None;
        let answer = self
            .shared
            .pool
            .lock()
            .map_err(|_| ClientError::Closed)?
            .acquire(&route.origin, self.now())
            .map_err(|_| ClientError::Closed)?;
        self.drain_pool_events();
        let grant = match answer {
            Acquire::Ready(grant) => grant,
            Acquire::Wait(waiter) => {
                let waiting = trace.then(|| self.now());
                let (tx, rx) = oneshot::channel();
                if let Ok(mut waiters) = self.shared.waiters.lock() {
                    waiters.insert(waiter, tx);
                }
                // A grant may have been issued before the sender was registered.
                self.drain_pool_events();
                let guard = WaitGuard {
                    client: self,
                    waiter,
                };
                let grant = with_deadline(&*self.shared.rt, &mut Timer::default(), timer, rx)
                    .await?
                    .map_err(|_| ClientError::Closed)?;
                std::mem::forget(guard);
                waited = waiting.map(|at| self.now().saturating_duration_since(at));
                grant
            }
        };
        match grant {
            Grant::Reuse(id) => {
                let conn = self
                    .shared
                    .idle
                    .lock()
                    .ok()
                    .and_then(|mut idle| idle.remove(&id));
                // A connection the server (or a proxy such as tinyproxy, which closes after
                // each response without saying so) closed while it was idle is not handed
                // out: a request that is not idempotent could not be retried on it.
                let conn = match conn {
                    Some(mut conn) => {
                        if conn.closed_while_idle().await {
                            conn.transport.shutdown().await;
                            None
                        } else {
                            Some(conn)
                        }
                    }
                    None => None,
                };
                match conn {
                    Some(conn) => {
                        log::connection(true, waited, None);
                        Ok(Lease::new(self, id, conn, true))
                    }
                    None => {
                        // Closed under us or by the peer: release it as broken and open anew.
                        self.release(id, None, false, None);
                        Box::pin(self.acquire(route, timer)).await
                    }
                }
            }
            Grant::Open(id) => {
                let connecting = self.now();
                timer.connecting(connecting);
                // Dropped (the request was cancelled) or failed: the slot is given back.
                let opening = OpeningGuard { client: self, id };
                let stream = with_deadline(
                    &*self.shared.rt,
                    &mut Timer::default(),
                    timer,
                    super::proxy::route::open(&*self.shared.rt, &*self.shared.connector, route),
                )
                .await??;
                std::mem::forget(opening);
                let connect = trace.then(|| self.now().saturating_duration_since(connecting));
                log::connection(false, waited, connect);
                if let Ok(mut pool) = self.shared.pool.lock() {
                    let _ = pool.opened(id);
                }
                self.drain_pool_events();
                Ok(Lease::new(
                    self,
                    id,
                    Box::new(Conn::new(
                        self.shared.rt.clone(),
                        stream,
                        route.is_forwarding(),
                    )),
                    false,
                ))
            }
        }
    }

    /// Gives a connection back: kept idle if `conn` is reusable, else closed.
    fn release(
        &self,
        id: ConnId,
        conn: Option<Box<Conn>>,
        reusable_hint: bool,
        keep_alive: Option<Duration>,
    ) {
        let reusable = reusable_hint && conn.as_ref().is_some_and(|c| c.is_reusable());
        if let (true, Some(conn)) = (reusable, conn) {
            if let Ok(mut idle) = self.shared.idle.lock() {
                idle.insert(id, conn);
            }
        }
        let mut earlier_deadline = false;
        if let Ok(mut pool) = self.shared.pool.lock() {
            let _ = pool.release(id, reusable, keep_alive, self.now());
            earlier_deadline = reusable && self.shared.reaper_wake.sleeps_past(pool.poll_timeout());
        }
        if earlier_deadline {
            // The reaper sleeps past the pool's next deadline (this connection's idle
            // expiry): wake it to sleep until that one instead. A later deadline, the usual
            // case, needs no wake-up: the reaper wakes at its own, finds nothing due yet,
            // and sleeps again until the next.
            self.shared.reaper_wake.wake();
        }
        self.drain_pool_events();
    }
}

/// Wakes the idle reaper, its one waiter, under any executor: a wake-up sent while the
/// reaper is not waiting is kept for its next wait, so none is lost between its reading the
/// pool's next deadline and its going to sleep. No allocation, no lock.
pub(super) struct ReaperWake {
    /// Woken and not yet seen by the reaper.
    pending: AtomicBool,
    waker: AtomicWaker,
    /// The deadline the reaper sleeps until, in nanoseconds of the core's clock (`u64::MAX`
    /// for none); written and read under the pool's lock.
    sleeping_until: AtomicU64,
}

impl Default for ReaperWake {
    fn default() -> ReaperWake {
        ReaperWake {
            pending: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            sleeping_until: AtomicU64::new(u64::MAX),
        }
    }
}

impl ReaperWake {
    fn nanos(deadline: Option<Instant>) -> u64 {
        deadline.map_or(u64::MAX, |at| {
            u64::try_from(at.duration_since_origin().as_nanos()).unwrap_or(u64::MAX)
        })
    }

    /// The reaper is about to sleep until `deadline`.
    fn sleeping_until(&self, deadline: Option<Instant>) {
        self.sleeping_until
            .store(Self::nanos(deadline), Ordering::Relaxed);
    }

    /// Whether the reaper sleeps past `deadline` (it is before the reaper's own).
    fn sleeps_past(&self, deadline: Option<Instant>) -> bool {
        deadline.is_some() && Self::nanos(deadline) < self.sleeping_until.load(Ordering::Relaxed)
    }

    /// Ends the reaper's current or next wait.
    fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once woken since the last time it was; takes the wake-up.
    fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake-up between the check and the registration found no waker to wake.
        if self.pending.swap(false, Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A connection in use by one request. However the request ends (read to its end, failed,
/// or dropped mid-way by a cancelled task), the pool hears of it exactly once.
pub(super) struct Lease {
    client: Client,
    id: ConnId,
    /// Boxed: a connection's state is large, and a lease moves (into the response, back to
    /// the pool) with every request.
    conn: Option<Box<Conn>>,
    /// Whether it came from the idle set (a stale-connection retry is allowed only then).
    reused: bool,
    /// The server's `Keep-Alive: timeout=N`: how long it keeps the connection open idle.
    keep_alive: Option<Duration>,
}

impl Lease {
    fn new(client: &Client, id: ConnId, conn: Box<Conn>, reused: bool) -> Lease {
        Lease {
            client: client.clone(),
            id,
            conn: Some(conn),
            reused,
            keep_alive: None,
        }
    }

    pub(super) fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until given back")
    }

    /// The exchange ended cleanly: back to the pool if the connection allows reuse.
    pub(super) fn give_back(mut self) {
        let conn = self.conn.take();
        self.client.release(self.id, conn, true, self.keep_alive);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.conn.take().is_some() {
            // Not given back: the exchange failed or was abandoned. Closed, never reused.
            self.client.release(self.id, None, false, None);
        }
    }
}

/// Gives a slot back to the pool if opening a connection fails or is abandoned.
struct OpeningGuard<'a> {
    client: &'a Client,
    id: ConnId,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.client.shared.pool.lock() {
            let _ = pool.open_failed(self.id, self.client.now());
        }
        self.client.drain_pool_events();
    }
}

/// Gives up a pool wait if the request is dropped or times out while waiting.
struct WaitGuard<'a> {
    client: &'a Client,
    waiter: WaiterId,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.client.shared.waiters.lock() {
            waiters.remove(&self.waiter);
        }
        self.client.cancel_wait(self.waiter);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, Reply};
    use super::*;
    use crate::client::ClientConfig;
    use tether_core::time::{ClientTimeouts, TimeoutKind};

    const URL: &str = "http://example.test/";
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    fn limited(limit: usize) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.pool.limit = Some(limit);
        config
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (client, server) =
            testing::client(ClientConfig::default(), |_| Reply::Send(OK.to_vec()));
        for _ in 0..5 {
            let mut response = client.get(URL).send().await.unwrap();
            assert_eq!(response.text().await.unwrap(), "ok");
        }
        assert_eq!(server.connections(), 1);
        assert_eq!(server.requests().len(), 5);
    }

    #[tokio::test]
    async fn requests_over_the_limit_wait_for_a_connection() {
        let (client, server) = testing::client(limited(2), |_| Reply::Send(OK.to_vec()));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.get(URL).send().await?.text().await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "ok");
        }
        assert!(server.connections() <= 2, "{}", server.connections());
        let stats = client.pool_stats(URL).unwrap();
        assert_eq!((stats.in_use, stats.opening, stats.waiting), (0, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_times_out_leaves_the_queue() {
        // The one connection is held by a response nobody reads.
        let (client, _server) = testing::client(limited(1), |_| {
            Reply::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf".to_vec())
        });
        let held = client.get(URL).send().await.unwrap();
        let timeouts = ClientTimeouts::NONE.with_connect(Some(Duration::from_millis(200)));
        let result = client.get(URL).timeouts(timeouts).send().await;
        assert!(
            matches!(result, Err(ClientError::Timeout(TimeoutKind::Connect))),
            "{result:?}"
        );
        let stats = client.pool_stats(URL).unwrap();
        assert_eq!((stats.in_use, stats.waiting), (1, 0));
        drop(held);
        assert_eq!(client.pool_stats(URL).unwrap(), Default::default());
    }

    #[tokio::test]
    async fn a_failed_connect_gives_its_slot_back() {
        let (client, server) = testing::refusing(limited(1));
        for _ in 0..3 {
            let result = client.get(URL).send().await;
            assert!(matches!(result, Err(ClientError::Connect(_))), "{result:?}");
        }
        assert_eq!(server.connections(), 3);
        assert_eq!(client.pool_stats(URL).unwrap(), Default::default());
    }

    #[tokio::test]
    async fn a_stale_connection_is_retried_once_for_an_idempotent_request() {
        // Each connection answers one request, then closes: the pooled copy goes stale.
        let (client, server) = testing::client(ClientConfig::default(), |_| {
            Reply::SendAndClose(OK.to_vec())
        });
        let mut first = client.get(URL).send().await.unwrap();
        assert_eq!(first.text().await.unwrap(), "ok");
        server.wait_closed(1).await;
        let mut second = client.get(URL).send().await.expect("retried");
        assert_eq!(second.text().await.unwrap(), "ok");
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn a_post_the_server_may_have_received_is_not_retried() {
        // The first request on each connection is answered; the second is read, and the
        // connection closed without an answer: it may have been acted on.
        let requests = std::sync::atomic::AtomicUsize::new(0);
        let (client, server) = testing::client(ClientConfig::default(), move |_| {
            match requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Reply::Send(OK.to_vec()),
                _ => Reply::Close,
            }
        });
        let mut first = client.get(URL).send().await.unwrap();
        assert_eq!(first.text().await.unwrap(), "ok");
        let result = client.post(URL).body("data").send().await;
        assert!(
            matches!(result, Err(ClientError::Io(_) | ClientError::Protocol(_))),
            "{result:?}"
        );
        assert_eq!(server.connections(), 1, "not sent again");
        assert_eq!(client.pool_stats(URL).unwrap().in_use, 0);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_not_used_even_for_a_post() {
        let (client, server) = testing::client(ClientConfig::default(), |_| {
            Reply::SendAndClose(OK.to_vec())
        });
        client.get(URL).send().await.unwrap().text().await.unwrap();
        server.wait_closed(1).await;
        let mut response = client.post(URL).body("data").send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
        assert_eq!(server.connections(), 2, "a fresh connection");
    }

    #[tokio::test]
    async fn close_closes_idle_connections_and_refuses_new_requests() {
        let (client, server) =
            testing::client(ClientConfig::default(), |_| Reply::Send(OK.to_vec()));
        client.get(URL).send().await.unwrap().text().await.unwrap();
        assert_eq!(client.pool_stats(URL).unwrap().idle, 1);
        client.close().await;
        assert_eq!(client.pool_stats(URL).unwrap().idle, 0);
        server.wait_closed(1).await;
        assert!(matches!(
            client.get(URL).send().await,
            Err(ClientError::Closed)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_expire_with_the_keepalive_timeout() {
        let mut config = ClientConfig::default();
        config.pool.keepalive_timeout = Some(Duration::from_secs(2));
        let (client, server) = testing::client(config, |_| Reply::Send(OK.to_vec()));
        client.get(URL).send().await.unwrap().text().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(client.pool_stats(URL).unwrap().idle, 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(client.pool_stats(URL).unwrap().idle, 0, "expired");
        server.wait_closed(1).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_reaper_follows_deadlines_that_move_later_and_earlier() {
        let mut config = ClientConfig::default();
        config.pool.keepalive_timeout = Some(Duration::from_secs(10));
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = answered.clone();
        let (client, server) = testing::client(config, move |_| {
            // The third answer asks for a short idle life: an earlier deadline than the
            // reaper sleeps until.
            if count.fetch_add(1, Ordering::SeqCst) == 2 {
                Reply::Send(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=3\r\n\r\nok"
                        .to_vec(),
                )
            } else {
                Reply::Send(OK.to_vec())
            }
        });
        let idle = || client.pool_stats(URL).unwrap().idle;
        client.get(URL).send().await.unwrap().text().await.unwrap();
        // Reused 4 s later: its idle deadline moves from 10 s to 14 s.
        tokio::time::sleep(Duration::from_secs(4)).await;
        client.get(URL).send().await.unwrap().text().await.unwrap();
        tokio::time::sleep(Duration::from_millis(9_500)).await;
        assert_eq!(idle(), 1, "not expired at 13.5 s, past the first deadline");
        // Reused at 13.5 s with a 3 s hint (less a second of margin): expires at 15.5 s,
        // before the 23.5 s the keep-alive timeout would give.
        client.get(URL).send().await.unwrap().text().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(idle(), 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(idle(), 0, "expired at its earlier deadline");
        server.wait_closed(1).await;
        assert_eq!(answered.load(Ordering::SeqCst), 3);
    }
}
