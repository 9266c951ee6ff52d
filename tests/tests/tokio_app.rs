//! The tokio `App` over real sockets: typed state, middlewares, setup/teardown contexts,
//! handler cancellation and `shield`, the job scheduler at shutdown.

use http::HeaderValue;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_tests::TokioServer;
use tether_tokio::{
    shield, App, BoxError, Next, Request, Response, ServeError, ServerConfig, StartError, Teardown,
};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn run<S: Send + Sync + 'static>(app: App<S>, config: ServerConfig) -> TokioServer {
    TokioServer::start(app, config)
}

struct Hits(AtomicUsize);

#[test]
fn state_middleware_and_params() {
    let app = App::with_state(Hits(AtomicUsize::new(0)))
        .middleware(|req: Request<Hits>, next: Next<Hits>| async move {
            if req.headers().contains_key("x-deny") {
                return Response::empty(http::StatusCode::FORBIDDEN);
            }
            req.state().0.fetch_add(1, Ordering::SeqCst);
            next.run(req)
                .await
                .header("x-wrapped", HeaderValue::from_static("yes"))
        })
        .route(
            http::Method::GET,
            "/users/{id}/posts/{post}",
            |req: Request<Hits>| async move {
                let hits = req.state().0.load(Ordering::SeqCst);
                Response::text(format!(
                    "{} {} {hits}",
                    req.param("id").unwrap(),
                    req.param("post").unwrap()
                ))
            },
        );
    let server = run(app, ServerConfig::default());
    let addr = server.addr;
    let first = get(addr, "/users/7/posts/42");
    assert!(first.contains("x-wrapped: yes"), "{first}");
    assert!(first.ends_with("7 42 1"), "{first}");
    assert!(get(addr, "/users/8/posts/1").ends_with("8 1 2"));
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /users/1/posts/1 HTTP/1.1\r\nHost: x\r\nX-Deny: 1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut denied = String::new();
    s.read_to_string(&mut denied).unwrap();
    assert!(denied.starts_with("HTTP/1.1 403 "), "{denied}");
    server.stop().unwrap();
}

/// A setup error of the test's own type.
#[derive(Debug, thiserror::Error)]
#[error("{0} broke")]
struct Broke(&'static str);

/// A setup step that logs, fails when asked, and whose teardown logs (and fails when asked).
fn step(
    log: &Arc<Mutex<Vec<String>>>,
    name: &'static str,
    fail_setup: bool,
    fail_teardown: bool,
) -> impl FnOnce(()) -> tether_tokio::BoxFuture<Result<((), Teardown), BoxError>> + Send + 'static {
    let log = log.clone();
    move |state| {
        Box::pin(async move {
            log.lock().unwrap().push(format!("setup {name}"));
            if fail_setup {
                return Err(Broke(name).into());
            }
            let log = log.clone();
            let teardown = Teardown::new(async move {
                log.lock().unwrap().push(format!("teardown {name}"));
                if fail_teardown {
                    return Err(Broke(name).into());
                }
                Ok(())
            });
            Ok((state, teardown))
        })
    }
}

#[test]
fn cleanup_contexts_run_in_order_and_undo_in_reverse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let app = App::new()
        .cleanup_ctx("db", step(&log, "db", false, false))
        .cleanup_ctx("cache", step(&log, "cache", false, false))
        .route(http::Method::GET, "/", |_req: Request| async {
            Response::text("ok")
        });
    let server = run(app, ServerConfig::default());
    let addr = server.addr;
    assert!(get(addr, "/").ends_with("ok"));
    assert_eq!(*log.lock().unwrap(), ["setup db", "setup cache"]);
    server.stop().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["setup db", "setup cache", "teardown cache", "teardown db"]
    );

    // A failing setup undoes what was done, the server does not start, and the step's own
    // error is the source.
    let log = Arc::new(Mutex::new(Vec::new()));
    let app = App::new()
        .cleanup_ctx("db", step(&log, "db", false, false))
        .cleanup_ctx("broken", step(&log, "broken", true, false))
        .cleanup_ctx("never", step(&log, "never", false, false));
    let error = run(app, ServerConfig::default()).finished().unwrap_err();
    let ServeError::Start(StartError::Setup { name, source }) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(name, "broken");
    assert_eq!(source.downcast_ref::<Broke>().unwrap().0, "broken");
    assert_eq!(
        *log.lock().unwrap(),
        ["setup db", "setup broken", "teardown db"]
    );
}

#[test]
fn a_failing_teardown_is_reported_and_the_others_still_run() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let app = App::new()
        .cleanup_ctx("db", step(&log, "db", false, false))
        .cleanup_ctx("cache", step(&log, "cache", false, true))
        .cleanup_ctx("queue", step(&log, "queue", false, false));
    let error = run(app, ServerConfig::default()).stop().unwrap_err();
    let ServeError::Cleanup(cleanup) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(cleanup.failures.len(), 1);
    assert_eq!(cleanup.failures[0].name, "cache");
    assert!(cleanup.failures[0].error.downcast_ref::<Broke>().is_some());
    assert_eq!(
        *log.lock().unwrap(),
        [
            "setup db",
            "setup cache",
            "setup queue",
            "teardown queue",
            "teardown cache",
            "teardown db"
        ]
    );
}

/// A connection pool as "Safe aiohttp" wants one: made without IO, opened by a setup
/// step, closed by its teardown.
#[derive(Default)]
struct Pool {
    open: std::sync::atomic::AtomicBool,
    queries: AtomicUsize,
}

/// The application's state: what it was built with, and what setups added.
struct AppState {
    name: &'static str,
    pool: Arc<Pool>,
    motd: String,
}

#[test]
fn setups_add_to_the_typed_state_that_handlers_read() {
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let closed_flag = closed.clone();
    let app = App::with_state(AppState {
        name: "demo",
        pool: Arc::new(Pool::default()),
        motd: String::new(),
    })
    .cleanup_ctx("pool", move |state: AppState| async move {
        // Opening the resource is the setup's IO; it is stored for handlers and closed by
        // the teardown.
        tokio::time::sleep(Duration::from_millis(10)).await;
        state.pool.open.store(true, Ordering::SeqCst);
        let pool = state.pool.clone();
        let teardown = Teardown::new(async move {
            pool.open.store(false, Ordering::SeqCst);
            closed_flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        Ok((state, teardown))
    })
    .cleanup_ctx("motd", |mut state: AppState| async move {
        state.motd = format!("welcome to {}", state.name);
        Ok((state, Teardown::nothing()))
    })
    .route(
        http::Method::GET,
        "/",
        |req: Request<AppState>| async move {
            let state = req.state();
            assert!(
                state.pool.open.load(Ordering::SeqCst),
                "opened before serving"
            );
            state.pool.queries.fetch_add(1, Ordering::SeqCst);
            Response::text(format!(
                "{} ({} queries)",
                state.motd,
                state.pool.queries.load(Ordering::SeqCst)
            ))
        },
    );
    let server = run(app, ServerConfig::default());
    assert!(get(server.addr, "/").ends_with("welcome to demo (1 queries)"));
    assert!(get(server.addr, "/").ends_with("welcome to demo (2 queries)"));
    server.stop().unwrap();
    assert!(
        closed.load(Ordering::SeqCst),
        "the teardown closed the pool"
    );
}

#[test]
fn conflicting_routes_fail_at_start() {
    let app = App::new()
        .route(http::Method::GET, "/users/{id}", |_req: Request| async {
            Response::text("by id")
        })
        .route(http::Method::GET, "/users/{name}", |_req: Request| async {
            Response::text("by name")
        });
    let error = run(app, ServerConfig::default()).finished().unwrap_err();
    assert!(
        matches!(error, ServeError::Start(StartError::Route(_))),
        "{error:?}"
    );
}

#[test]
fn requests_carry_the_connection_addresses() {
    let app = App::new().route(http::Method::GET, "/whoami", |req: Request| async move {
        Response::text(format!(
            "{} {}",
            req.peer_addr().unwrap(),
            req.local_addr().unwrap()
        ))
    });
    let server = run(app, ServerConfig::default());
    let mut s = TcpStream::connect(server.addr).unwrap();
    let ours = s.local_addr().unwrap();
    write!(
        s,
        "GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.ends_with(&format!("{ours} {}", server.addr)), "{out}");
    server.stop().unwrap();
}

/// Counts handlers that ran to their end.
struct Finished(AtomicUsize);

fn slow_app() -> App<Finished> {
    App::with_state(Finished(AtomicUsize::new(0)))
        .route(
            http::Method::GET,
            "/slow",
            |req: Request<Finished>| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                req.state().0.fetch_add(1, Ordering::SeqCst);
                Response::text("done")
            },
        )
        .route(
            http::Method::GET,
            "/shielded",
            |_req: Request<Finished>| async move {
                // Work that must finish even if this handler is cancelled.
                let counter = Arc::new(AtomicUsize::new(0));
                let c = counter.clone();
                SHIELDED.store(0, Ordering::SeqCst);
                shield(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    c.fetch_add(1, Ordering::SeqCst);
                    SHIELDED.fetch_add(1, Ordering::SeqCst);
                })
                .await;
                Response::text("shielded")
            },
        )
        .route(
            http::Method::GET,
            "/count",
            |req: Request<Finished>| async move {
                Response::text(req.state().0.load(Ordering::SeqCst).to_string())
            },
        )
}

static SHIELDED: AtomicUsize = AtomicUsize::new(0);

/// Sends a request and disconnects at once.
fn hit_and_run(addr: SocketAddr, path: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(s);
}

#[test]
fn handlers_run_to_completion_by_default() {
    let server = run(slow_app(), ServerConfig::default());
    let addr = server.addr;
    hit_and_run(addr, "/slow");
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        get(addr, "/count").ends_with("\r\n\r\n1"),
        "the handler finished although its client left"
    );
    server.stop().unwrap();
}

#[test]
fn cancel_on_disconnect_and_shield() {
    let mut config = ServerConfig::default();
    config.cancel_on_disconnect = true;
    let server = run(slow_app(), config);
    let addr = server.addr;
    hit_and_run(addr, "/slow");
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        get(addr, "/count").ends_with("\r\n\r\n0"),
        "the handler was cancelled"
    );
    hit_and_run(addr, "/shielded");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        SHIELDED.load(Ordering::SeqCst),
        1,
        "shielded work finished anyway"
    );
    server.stop().unwrap();
}
