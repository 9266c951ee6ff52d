//! A reference check of the pool's rules over a schedule of operations, shared by the
//! model-based property test and the `pool_ops` fuzz target (built with `--cfg fuzzing`).

use super::*;

/// One step of a random schedule.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    Acquire(u8),
    Opened(usize),
    OpenFailed(usize),
    Release {
        pick: usize,
        reusable: bool,
        hint: Option<u8>,
    },
    ReleaseAgain(usize),
    Cancel(usize),
    Advance(u16),
    Close,
}

/// What the test knows the adapter holds: connections being opened or in use, waiters,
/// and released ids (to release again).
#[derive(Default)]
struct Holder {
    opening: Vec<ConnId>,
    in_use: Vec<ConnId>,
    waiting: Vec<WaiterId>,
    released: Vec<ConnId>,
    /// For each idle connection: when it must stop being handed out.
    idle_until: HashMap<ConnId, Option<Instant>>,
}

fn pick<T: Copy>(items: &mut Vec<T>, i: usize) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items.swap_remove(i % items.len()))
    }
}

/// Runs a schedule and checks every invariant after every step. Shared with the fuzz target.
pub fn check_schedule(config: PoolConfig, ops: &[Op]) {
    let mut pool = Pool::new(config.clone());
    let mut held = Holder::default();
    let mut now = Instant::ZERO;
    let origins: Vec<Origin> = (0..4)
        .map(|n| Origin::new("http", &format!("host{n}.example"), 80))
        .collect();
    for op in ops {
        match *op {
            Op::Acquire(o) => match pool.acquire(&origins[o as usize], now) {
                Ok(Acquire::Ready(grant)) => take_grant(&mut held, grant, now),
                Ok(Acquire::Wait(w)) => held.waiting.push(w),
                Err(e) => assert!(pool.is_closed() && e == PoolError::Closed),
            },
            Op::Opened(i) => {
                if let Some(id) = pick(&mut held.opening, i) {
                    pool.opened(id).unwrap();
                    if !pool.is_closed() {
                        held.in_use.push(id);
                    }
                }
            }
            Op::OpenFailed(i) => {
                if let Some(id) = pick(&mut held.opening, i) {
                    pool.open_failed(id, now).unwrap();
                }
            }
            Op::Release {
                pick: i,
                reusable,
                hint,
            } => {
                if let Some(id) = pick(&mut held.in_use, i) {
                    let hint = hint.map(|h| Duration::from_secs(u64::from(h)));
                    pool.release(id, reusable, hint, now).unwrap();
                    held.released.push(id);
                    let life = match (config.keepalive_timeout, hint) {
                        (Some(k), Some(h)) => Some(k.min(h.saturating_sub(HINT_MARGIN))),
                        (None, Some(h)) => Some(h.saturating_sub(HINT_MARGIN)),
                        (k, None) => k,
                    };
                    held.idle_until.insert(id, life.map(|d| now + d));
                }
            }
            Op::ReleaseAgain(i) => {
                if !held.released.is_empty() {
                    let id = held.released[i % held.released.len()];
                    if !held.in_use.contains(&id) {
                        assert!(
                            pool.release(id, true, None, now).is_err(),
                            "second release accepted"
                        );
                    }
                }
            }
            Op::Cancel(i) => {
                if let Some(w) = pick(&mut held.waiting, i) {
                    pool.cancel_wait(w, now).unwrap();
                }
            }
            Op::Advance(step) => {
                now += Duration::from_millis(u64::from(step));
                pool.handle_timeout(now);
            }
            Op::Close => {
                pool.close();
            }
        }
        while let Some(event) = pool.poll_event() {
            match event {
                PoolEvent::Granted { waiter, grant } => {
                    let at = held.waiting.iter().position(|&w| w == waiter);
                    assert!(at.is_some(), "grant for a waiter nobody has");
                    held.waiting.swap_remove(at.unwrap_or(0));
                    take_grant(&mut held, grant, now);
                }
                PoolEvent::Close(id) => {
                    assert!(!held.in_use.contains(&id), "closing a connection in use");
                    held.idle_until.remove(&id);
                }
                PoolEvent::Refused(waiter) => held.waiting.retain(|&w| w != waiter),
            }
        }
        check_invariants(&pool, &config, &origins, &held);
    }
    // Closing the pool and finishing what is held leaves nothing open.
    pool.close();
    for id in held.opening.drain(..) {
        pool.opened(id).unwrap();
    }
    for id in held.in_use.drain(..) {
        pool.release(id, true, None, now).unwrap();
    }
    while pool.poll_event().is_some() {}
    let total = pool.total_stats();
    assert_eq!((total.open(), total.waiting), (0, 0), "{total:?}");
}

fn take_grant(held: &mut Holder, grant: Grant, now: Instant) {
    match grant {
        Grant::Open(id) => held.opening.push(id),
        Grant::Reuse(id) => {
            if let Some(Some(until)) = held.idle_until.get(&id) {
                assert!(*until > now, "expired idle connection handed out");
            }
            held.in_use.push(id);
        }
    }
}

fn check_invariants(pool: &Pool, config: &PoolConfig, origins: &[Origin], held: &Holder) {
    let total = pool.total_stats();
    if let Some(limit) = config.limit {
        assert!(total.open() <= limit, "over the limit: {total:?}");
    }
    assert_eq!(total.opening, held.opening.len());
    assert_eq!(total.in_use, held.in_use.len());
    assert_eq!(total.waiting, held.waiting.len());
    let idle_anywhere = total.idle > 0;
    for o in origins {
        let s = pool.stats(o);
        if let Some(per_host) = config.limit_per_host {
            assert!(s.open() <= per_host, "over the per-host limit: {s:?}");
        }
        if s.waiting > 0 {
            let host_room = config.limit_per_host.is_none_or(|l| s.open() < l);
            let global_room = config.limit.is_none_or(|l| total.open() < l);
            assert!(
                s.idle == 0,
                "waiting while an idle connection exists: {s:?}"
            );
            assert!(
                !(host_room && global_room),
                "waiting while there is room: {s:?} {total:?}"
            );
            let other_idle = idle_anywhere && total.idle > s.idle;
            assert!(
                !(host_room && other_idle),
                "waiting while another origin idles: {total:?}"
            );
        }
    }
}
