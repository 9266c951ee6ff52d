//! Pool rules, one test each, and a model-based property test over random operation
//! sequences with random time steps.

use super::*;
use proptest::prelude::*;

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn origin(n: u8) -> Origin {
    Origin::new("http", &format!("host{n}.example"), 80)
}

fn config(limit: Option<usize>, per_host: Option<usize>) -> PoolConfig {
    PoolConfig {
        limit,
        limit_per_host: per_host,
        ..PoolConfig::default()
    }
}

fn events(pool: &mut Pool) -> Vec<PoolEvent> {
    std::iter::from_fn(|| pool.poll_event()).collect()
}

fn open(pool: &mut Pool, o: &Origin, now: Instant) -> ConnId {
    match pool.acquire(o, now).unwrap() {
        Acquire::Ready(Grant::Open(id)) => {
            pool.opened(id).unwrap();
            id
        }
        other => panic!("expected a new connection, got {other:?}"),
    }
}

#[test]
fn origins() {
    let uri: Uri = "https://Example.COM/path".parse().unwrap();
    let o = Origin::from_uri(&uri).unwrap();
    assert_eq!(
        (o.scheme(), o.host(), o.port()),
        ("https", "example.com", 443)
    );
    assert_eq!(o, Origin::new("HTTPS", "example.com", 443));
    assert_ne!(o.clone(), o.via_proxy("proxy:3128"));
    assert_eq!(
        Origin::from_uri(&"ws://a/".parse().unwrap())
            .unwrap()
            .port(),
        80
    );
    assert!(Origin::from_uri(&"/relative".parse().unwrap()).is_none());
}

#[test]
fn reuse_is_freshest_first() {
    let mut pool = Pool::new(PoolConfig::default());
    let o = origin(1);
    let a = open(&mut pool, &o, ms(0));
    let b = open(&mut pool, &o, ms(0));
    pool.release(a, true, None, ms(10)).unwrap();
    pool.release(b, true, None, ms(20)).unwrap();
    assert_eq!(
        pool.acquire(&o, ms(30)).unwrap(),
        Acquire::Ready(Grant::Reuse(b))
    );
    assert_eq!(
        pool.acquire(&o, ms(30)).unwrap(),
        Acquire::Ready(Grant::Reuse(a))
    );
    let stats = pool.stats(&o);
    assert_eq!(
        (stats.idle, stats.in_use, stats.opening, stats.waiting),
        (0, 2, 0, 0)
    );
}

#[test]
fn idle_connections_expire() {
    let mut pool = Pool::new(PoolConfig::default());
    let o = origin(1);
    let a = open(&mut pool, &o, ms(0));
    pool.release(a, true, None, ms(1_000)).unwrap();
    assert_eq!(pool.poll_timeout(), Some(ms(16_000)), "15 s keep-alive");
    pool.handle_timeout(ms(15_999));
    assert!(events(&mut pool).is_empty());
    // Never handed out after its life, even if the timer has not been handled yet.
    let Acquire::Ready(Grant::Open(_)) = pool.acquire(&o, ms(16_000)).unwrap() else {
        panic!("expired connection reused")
    };
    assert_eq!(events(&mut pool), [PoolEvent::Close(a)]);
}

#[test]
fn server_keep_alive_hint_shortens_idle_life() {
    let mut pool = Pool::new(PoolConfig::default());
    let o = origin(1);
    let a = open(&mut pool, &o, ms(0));
    pool.release(a, true, Some(Duration::from_secs(5)), ms(0))
        .unwrap();
    assert_eq!(
        pool.poll_timeout(),
        Some(ms(4_000)),
        "5 s hint less 1 s margin"
    );
    pool.handle_timeout(ms(4_000));
    assert_eq!(events(&mut pool), [PoolEvent::Close(a)]);
    let b = open(&mut pool, &o, ms(0));
    pool.release(b, true, Some(Duration::from_secs(1)), ms(0))
        .unwrap();
    assert_eq!(
        events(&mut pool),
        [PoolEvent::Close(b)],
        "too short to reuse safely"
    );
    let value = HeaderValue::from_static("timeout=5, max=1000");
    assert_eq!(keep_alive_timeout(&value), Some(Duration::from_secs(5)));
    assert_eq!(keep_alive_timeout(&HeaderValue::from_static("max=3")), None);
}

#[test]
fn not_reusable_and_force_close() {
    let mut pool = Pool::new(PoolConfig::default());
    let o = origin(1);
    let a = open(&mut pool, &o, ms(0));
    pool.release(a, false, None, ms(0)).unwrap();
    assert_eq!(events(&mut pool), [PoolEvent::Close(a)]);
    let mut pool = Pool::new(PoolConfig {
        force_close: true,
        ..PoolConfig::default()
    });
    let b = open(&mut pool, &o, ms(0));
    pool.release(b, true, None, ms(0)).unwrap();
    assert_eq!(events(&mut pool), [PoolEvent::Close(b)]);
    assert_eq!(pool.total_stats().open(), 0);
}

#[test]
fn double_release_is_an_error() {
    let mut pool = Pool::new(PoolConfig::default());
    let a = open(&mut pool, &origin(1), ms(0));
    pool.release(a, true, None, ms(0)).unwrap();
    assert_eq!(pool.release(a, true, None, ms(0)), Err(PoolError::NotInUse));
    pool.release(a, false, None, ms(0)).unwrap_err();
    assert_eq!(pool.total_stats().open(), 1);
}

#[test]
fn waiters_are_served_in_order_as_soon_as_capacity_exists() {
    let mut pool = Pool::new(config(Some(1), None));
    let o = origin(1);
    let a = open(&mut pool, &o, ms(0));
    let Acquire::Wait(w1) = pool.acquire(&o, ms(0)).unwrap() else {
        panic!()
    };
    let Acquire::Wait(w2) = pool.acquire(&o, ms(0)).unwrap() else {
        panic!()
    };
    pool.release(a, true, None, ms(5)).unwrap();
    assert_eq!(
        events(&mut pool),
        [PoolEvent::Granted {
            waiter: w1,
            grant: Grant::Reuse(a)
        }]
    );
    pool.release(a, false, None, ms(6)).unwrap();
    let evs = events(&mut pool);
    assert_eq!(evs[0], PoolEvent::Close(a));
    let PoolEvent::Granted {
        waiter,
        grant: Grant::Open(b),
    } = evs[1]
    else {
        panic!("{evs:?}")
    };
    assert_eq!(waiter, w2);
    pool.opened(b).unwrap();
    assert_eq!(pool.stats(&o).waiting, 0);
}

#[test]
fn another_origins_idle_connection_makes_room() {
    let mut pool = Pool::new(config(Some(2), None));
    let (x, y) = (origin(1), origin(2));
    let a = open(&mut pool, &x, ms(0));
    let b = open(&mut pool, &x, ms(0));
    pool.release(a, true, None, ms(1)).unwrap();
    // y is at the global limit, but x has an idle connection: close it, open for y.
    let Acquire::Ready(Grant::Open(c)) = pool.acquire(&y, ms(2)).unwrap() else {
        panic!()
    };
    assert_eq!(events(&mut pool), [PoolEvent::Close(a)]);
    pool.opened(c).unwrap();
    // And for a waiter: y waits at the limit; when x releases b to idle, it makes room.
    let Acquire::Wait(w) = pool.acquire(&y, ms(3)).unwrap() else {
        panic!()
    };
    pool.release(b, true, None, ms(4)).unwrap();
    let evs = events(&mut pool);
    assert_eq!(evs[0], PoolEvent::Close(b));
    assert!(matches!(evs[1], PoolEvent::Granted { waiter, grant: Grant::Open(_) } if waiter == w));
    assert!(pool.total_stats().open() <= 2);
}

#[test]
fn per_host_limit() {
    let mut pool = Pool::new(config(None, Some(1)));
    let (x, y) = (origin(1), origin(2));
    let a = open(&mut pool, &x, ms(0));
    let Acquire::Wait(_) = pool.acquire(&x, ms(0)).unwrap() else {
        panic!()
    };
    // Another origin is not held up by x's waiter.
    open(&mut pool, &y, ms(0));
    pool.release(a, true, None, ms(1)).unwrap();
    assert!(
        matches!(events(&mut pool)[..], [PoolEvent::Granted { grant: Grant::Reuse(id), .. }] if id == a)
    );
}

#[test]
fn a_waiter_that_gives_up_leaks_nothing() {
    let mut pool = Pool::new(config(Some(1), None));
    let o = origin(1);
    let a = open(&mut pool, &o, ms(0));
    let Acquire::Wait(w1) = pool.acquire(&o, ms(0)).unwrap() else {
        panic!()
    };
    let Acquire::Wait(w2) = pool.acquire(&o, ms(0)).unwrap() else {
        panic!()
    };
    // w1 gives up before anything frees: nothing changes.
    pool.cancel_wait(w1, ms(1)).unwrap();
    assert_eq!(pool.total_stats().open(), 1);
    // a is released and granted to w2, which gives up before using it: a goes back idle.
    pool.release(a, true, None, ms(2)).unwrap();
    assert_eq!(
        events(&mut pool),
        [PoolEvent::Granted {
            waiter: w2,
            grant: Grant::Reuse(a)
        }]
    );
    pool.cancel_wait(w2, ms(3)).unwrap();
    let stats = pool.stats(&o);
    assert_eq!((stats.idle, stats.in_use, stats.waiting), (1, 0, 0));
    assert_eq!(pool.cancel_wait(w2, ms(3)), Err(PoolError::UnknownWaiter));
    // A granted slot given back is free again.
    let b = open(&mut pool, &origin(2), ms(4)); // makes room by closing a
    let Acquire::Wait(w3) = pool.acquire(&o, ms(5)).unwrap() else {
        panic!()
    };
    pool.release(b, false, None, ms(6)).unwrap();
    let granted = events(&mut pool);
    assert!(
        matches!(granted.last(), Some(PoolEvent::Granted { waiter, grant: Grant::Open(_) }) if *waiter == w3)
    );
    pool.cancel_wait(w3, ms(7)).unwrap();
    assert_eq!(pool.total_stats().open(), 0);
}

#[test]
fn closing_the_pool() {
    let mut pool = Pool::new(config(Some(2), None));
    let o = origin(1);
    let a = open(&mut pool, &o, ms(0));
    let b = open(&mut pool, &o, ms(0));
    let Acquire::Wait(w) = pool.acquire(&origin(9), ms(0)).unwrap() else {
        panic!("expected to wait at the limit")
    };
    pool.release(a, true, None, ms(1)).unwrap();
    // a idled, which made room for w: a closes, w may open.
    let evs = events(&mut pool);
    let Some(&PoolEvent::Granted {
        waiter,
        grant: Grant::Open(c),
    }) = evs.last()
    else {
        panic!("{evs:?}")
    };
    assert_eq!(waiter, w);
    let Acquire::Wait(w2) = pool.acquire(&o, ms(2)).unwrap() else {
        panic!()
    };
    assert!(pool.close().is_empty(), "nothing idle");
    assert!(pool.is_closed());
    assert_eq!(events(&mut pool), [PoolEvent::Refused(w2)]);
    assert_eq!(pool.acquire(&o, ms(3)), Err(PoolError::Closed));
    pool.release(b, true, None, ms(3)).unwrap();
    assert_eq!(
        events(&mut pool),
        [PoolEvent::Close(b)],
        "in use: closed at release"
    );
    pool.opened(c).unwrap();
    assert_eq!(
        events(&mut pool),
        [PoolEvent::Close(c)],
        "opening: closed when ready"
    );
    assert_eq!(pool.total_stats().open(), 0);

    let mut pool = Pool::new(PoolConfig::default());
    let d = open(&mut pool, &o, ms(0));
    pool.release(d, true, None, ms(0)).unwrap();
    assert_eq!(pool.close(), [d], "idle connections are returned to close");
    assert_eq!(pool.total_stats().open(), 0);
}

#[test]
fn stale_retry_rule() {
    assert!(may_retry(true, false, &Method::GET));
    assert!(may_retry(true, false, &Method::PUT));
    assert!(
        !may_retry(false, false, &Method::GET),
        "a fresh connection is not stale"
    );
    assert!(
        !may_retry(true, true, &Method::GET),
        "the server started answering"
    );
    assert!(!may_retry(true, false, &Method::POST), "not idempotent");
}

// ---- the model-based property test ----

use super::model::{check_schedule, Op};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::Acquire),
        3 => any::<usize>().prop_map(Op::Opened),
        1 => any::<usize>().prop_map(Op::OpenFailed),
        4 => (any::<usize>(), any::<bool>(), prop::option::of(0u8..30)).prop_map(|(pick, reusable, hint)| Op::Release { pick, reusable, hint }),
        1 => any::<usize>().prop_map(Op::ReleaseAgain),
        1 => any::<usize>().prop_map(Op::Cancel),
        2 => (0u16..20_000).prop_map(Op::Advance),
        1 => Just(Op::Close),
    ]
}

fn pool_config() -> impl Strategy<Value = PoolConfig> {
    (
        prop::option::of(1usize..6),
        prop::option::of(1usize..4),
        prop::option::of(0u64..30_000),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(limit, per_host, keepalive, force_close)| PoolConfig {
            limit,
            limit_per_host: per_host,
            keepalive_timeout: keepalive.map(Duration::from_millis),
            force_close,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn model_based(config in pool_config(), ops in prop::collection::vec(op(), 0..120)) {
        check_schedule(config, &ops);
    }
}
