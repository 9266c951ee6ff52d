//! The tokio `App` over real sockets: typed state, middlewares, setup/teardown contexts,
//! handler cancellation and `shield`, the job scheduler at shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_tests::TokioServer;
use tether_tokio::{shield, App, Next, Request, Response, ServerConfig, Teardown};

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

fn run(app: App, config: ServerConfig) -> TokioServer {
    TokioServer::start(app, config)
}

struct Hits(AtomicUsize);

#[test]
fn state_middleware_and_params() {
    let app = App::new()
        .state(Hits(AtomicUsize::new(0)))
        .middleware(|req: Request, next: Next| async move {
            if req.headers().contains_key("x-deny") {
                return Response::status(http::StatusCode::FORBIDDEN);
            }
            req.state::<Hits>()
                .unwrap()
                .0
                .fetch_add(1, Ordering::SeqCst);
            next.run(req).await.header("x-wrapped", "yes")
        })
        .route(
            http::Method::GET,
            "/users/{id}/posts/{post}",
            |req: Request| async move {
                let hits = req.state::<Hits>().unwrap().0.load(Ordering::SeqCst);
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

fn step(
    log: &Arc<Mutex<Vec<String>>>,
    name: &'static str,
    fail: bool,
) -> impl FnOnce(Arc<http::Extensions>) -> tether_tokio::BoxFuture<Result<Teardown, String>>
       + Send
       + 'static {
    let log = log.clone();
    move |_state| {
        Box::pin(async move {
            log.lock().unwrap().push(format!("setup {name}"));
            if fail {
                return Err(format!("{name} broke"));
            }
            let log = log.clone();
            let teardown: Teardown = Box::pin(async move {
                log.lock().unwrap().push(format!("teardown {name}"));
            });
            Ok(teardown)
        })
    }
}

#[test]
fn cleanup_contexts_run_in_order_and_undo_in_reverse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let app = App::new()
        .cleanup_ctx("db", step(&log, "db", false))
        .cleanup_ctx("cache", step(&log, "cache", false))
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

    // A failing setup undoes what was done and the server does not start.
    let log = Arc::new(Mutex::new(Vec::new()));
    let app = App::new()
        .cleanup_ctx("db", step(&log, "db", false))
        .cleanup_ctx("broken", step(&log, "broken", true))
        .cleanup_ctx("never", step(&log, "never", false));
    let result = run(app, ServerConfig::default()).finished();
    assert!(result.unwrap_err().contains("broken broke"));
    assert_eq!(
        *log.lock().unwrap(),
        ["setup db", "setup broken", "teardown db"]
    );
}

/// Counts handlers that ran to their end.
struct Finished(AtomicUsize);

fn slow_app() -> App {
    App::new()
        .state(Finished(AtomicUsize::new(0)))
        .route(http::Method::GET, "/slow", |req: Request| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            req.state::<Finished>()
                .unwrap()
                .0
                .fetch_add(1, Ordering::SeqCst);
            Response::text("done")
        })
        .route(http::Method::GET, "/shielded", |req: Request| async move {
            let finished = req.state::<Finished>().map(|_| ());
            let _ = finished;
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
        })
        .route(http::Method::GET, "/count", |req: Request| async move {
            Response::text(
                req.state::<Finished>()
                    .unwrap()
                    .0
                    .load(Ordering::SeqCst)
                    .to_string(),
            )
        })
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
