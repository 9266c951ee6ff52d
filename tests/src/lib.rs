//! Cross-crate and interop test support: a plain blocking-loop driver of the sans-IO core
//! (the "user's own event loop" case), and helpers to find the real peers the test script
//! installs (curl, Python h11 and websockets, Node ws).

use bytes::Bytes;
use http::{Request, Response};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;
use tether_core::h1::{ServerConnection, ServerConnectionConfig, ServerEvent};
use tether_core::time::Instant;

pub mod auth_servers;
pub mod client_suite;
pub mod daemons;
pub mod pki;
pub mod proxies;
pub mod server_suite;
pub mod ws;

/// The host clock, turned into the core's `Instant` (nanoseconds since the first call).
pub fn now() -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    Instant::from_duration(origin.elapsed())
}

/// A request as the test application sees it: head and whole body.
pub type FullRequest = (Request<()>, Vec<u8>);

/// What the test application answers: a head and the body pieces to send.
pub struct Reply {
    /// The response head.
    pub head: Response<()>,
    /// Body pieces, each sent with `send_data`.
    pub body: Vec<Bytes>,
}

/// The demo-like routes the interop tests rely on.
pub fn demo_app(request: &FullRequest) -> Reply {
    let (head, body) = request;
    let path = head.uri().path();
    match (head.method().as_str(), path) {
        ("GET" | "HEAD", "/") => Reply {
            head: Response::builder()
                .header("content-type", "text/plain")
                .header("content-length", "13")
                .body(())
                .unwrap(),
            body: vec![Bytes::from_static(b"Hello, World!")],
        },
        ("POST", "/echo") => {
            let mut b = Response::builder().header("content-length", body.len());
            if let Some(ct) = head.headers().get("content-type") {
                b = b.header("content-type", ct);
            }
            Reply {
                head: b.body(()).unwrap(),
                body: vec![Bytes::from(body.clone())],
            }
        }
        ("GET", "/stream") => {
            let n: usize = head
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("n="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(3);
            Reply {
                // No length: chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0.
                head: Response::builder()
                    .header("content-type", "text/plain")
                    .body(())
                    .unwrap(),
                body: (0..n).map(|i| Bytes::from(format!("line {i}\n"))).collect(),
            }
        }
        _ => Reply {
            head: Response::builder()
                .status(404)
                .header("content-length", "0")
                .body(())
                .unwrap(),
            body: vec![],
        },
    }
}

/// Drives one server connection over a blocking socket until it closes.
///
/// The whole driving contract in one loop: feed input (or EOF), drain events, answer
/// complete requests, write out `poll_transmit`, and sleep no longer than `poll_timeout`.
pub fn serve_connection(
    mut stream: TcpStream,
    config: ServerConnectionConfig,
    app: fn(&FullRequest) -> Reply,
) {
    let mut conn = ServerConnection::new(config, now());
    let mut current: Option<FullRequest> = None;
    let mut upgrade = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                ServerEvent::Request { head, .. } if ws::wants_upgrade(&head) => {
                    upgrade = Some(ws::answer_upgrade(&mut conn, &head));
                }
                ServerEvent::Upgraded { trailing } => {
                    if let Some(Some(negotiated)) = upgrade.take() {
                        flush(&mut conn, &mut stream);
                        ws::echo(stream, negotiated, &trailing);
                    }
                    return;
                }
                ServerEvent::Request { head, .. } => current = Some((head, Vec::new())),
                ServerEvent::Data(data) => {
                    if let Some((_, body)) = current.as_mut() {
                        body.extend_from_slice(&data);
                    }
                }
                ServerEvent::End { .. } => {
                    if let Some(request) = current.take() {
                        let reply = app(&request);
                        conn.send_response(&reply.head).expect("valid response");
                        for piece in reply.body {
                            conn.send_data(piece).expect("valid body");
                        }
                        conn.send_end(None).expect("valid end");
                    }
                }
                _ => {}
            }
        }
        if !flush(&mut conn, &mut stream) {
            return;
        }
        if conn.is_closed() {
            let _ = stream.shutdown(Shutdown::Write);
            // Drain what the client still sends so our close does not reset the connection
            // before it reads the last response (a short lingering close).
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            return;
        }
        let wait = conn.poll_timeout().map(|t| {
            t.saturating_duration_since(now())
                .max(Duration::from_millis(1))
        });
        let _ = stream.set_read_timeout(wait);
        if !conn.wants_input() {
            // EOF seen (or a backlog waits) and every event is answered: this synchronous
            // app has nothing left to do on this connection.
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => conn.handle_eof(),
            Ok(n) => conn.handle_input(now(), &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout(now())
            }
            Err(_) => return,
        }
    }
}

/// Writes out everything the connection has to send; `false` if the peer is gone.
fn flush(conn: &mut ServerConnection, stream: &mut TcpStream) -> bool {
    while let Some(bytes) = conn.poll_transmit(now()) {
        if stream.write_all(&bytes).is_err() {
            return false;
        }
    }
    true
}

/// A blocking test server on 127.0.0.1, one thread per connection.
pub struct TestServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl TestServer {
    /// Starts serving `app` with `config` on a free port (threads end with the test process).
    pub fn start(config: ServerConnectionConfig, app: fn(&FullRequest) -> Reply) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                thread::spawn(move || serve_connection(stream, config, app));
            }
        });
        TestServer { addr }
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// Whether missing peers fail the test (set by the README's test command) or skip it.
fn peers_required() -> bool {
    std::env::var_os("TETHER_REQUIRE_PEERS").is_some()
}

fn have(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The Python interpreter with the peers installed (`TETHER_PYTHON`, else `python3`), if it
/// can import `module`. Without it the test is skipped, or fails under the test script.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let python = std::env::var_os("TETHER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    if have(&python, &["-c", &format!("import {module}")]) {
        return Some(python);
    }
    assert!(
        !peers_required(),
        "python module {module} missing: run scripts/test.sh, which installs the peers"
    );
    eprintln!("skipping: python module {module} not installed (scripts/test.sh installs it)");
    None
}

/// `curl`, if installed. Without it the test is skipped, or fails under the test script.
pub fn curl() -> Option<PathBuf> {
    let curl = PathBuf::from("curl");
    if have(&curl, &["--version"]) {
        return Some(curl);
    }
    assert!(
        !peers_required(),
        "curl missing: run scripts/test.sh, which installs it"
    );
    eprintln!("skipping: curl not installed (scripts/test.sh installs it)");
    None
}

/// The directory of Python peer scripts (`tests/peers`).
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// `node` and the `NODE_PATH` holding the npm peers (`target/peers-node`), if `module` is
/// installed there. Without it the test is skipped, or fails under the test script.
pub fn node_with(module: &str) -> Option<(PathBuf, PathBuf)> {
    let modules =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers-node/node_modules");
    let node = PathBuf::from("node");
    if modules.join(module).is_dir() && have(&node, &["--version"]) {
        return Some((node, modules));
    }
    assert!(
        !peers_required(),
        "node module {module} missing: run scripts/test.sh, which installs the peers"
    );
    eprintln!("skipping: node module {module} not installed (scripts/test.sh installs it)");
    None
}

/// Runs a peer that prints JSON on success; fails the test with its output otherwise.
pub fn run_json(mut command: Command) -> serde_json::Value {
    let out = command.output().expect("run peer");
    assert!(
        out.status.success(),
        "peer failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("peer prints JSON")
}

/// Checks a WebSocket peer's report: every message came back as sent.
pub fn all_echoed(result: &serde_json::Value) {
    let echoed = result["echoed"].as_array().expect("echoed");
    assert!(
        !echoed.is_empty() && echoed.iter().all(|e| e == true),
        "{result}"
    );
}

/// A `tether-tokio` server running an app on its own runtime thread.
pub struct TokioServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its graceful-shutdown trigger.
    pub shutdown: tether_tokio::ShutdownHandle,
    /// What `serve` returned, once it has.
    pub done: std::sync::mpsc::Receiver<Result<(), tether_tokio::ServeError>>,
}

impl TokioServer {
    /// Serves `app` with `config` on a free port.
    pub fn start<S: Send + Sync + 'static>(
        app: tether_tokio::App<S>,
        config: tether_tokio::ServerConfig,
    ) -> TokioServer {
        TokioServer::start_on(app, move || async move {
            tether_tokio::Server::bind("127.0.0.1:0".parse().unwrap(), config)
                .await
                .expect("bind")
        })
    }

    /// Serves `app` on the server `make` returns (made on the server's own runtime: a TLS
    /// server, a listener bound by the test, a Unix domain socket). `addr` is `0.0.0.0:0`
    /// for a server without an IP address.
    pub fn start_on<S, F, Fut>(app: tether_tokio::App<S>, make: F) -> TokioServer
    where
        S: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = tether_tokio::Server>,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = make().await;
                let addr = server
                    .local_addr()
                    .unwrap_or_else(|_| "0.0.0.0:0".parse().unwrap());
                tx.send((addr, server.shutdown_handle())).unwrap();
                let _ = done_tx.send(server.serve(app).await);
            });
        });
        let (addr, shutdown) = rx.recv().expect("server started");
        TokioServer {
            addr,
            shutdown,
            done,
        }
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Shuts down gracefully and returns what `serve` returned.
    pub fn stop(self) -> Result<(), tether_tokio::ServeError> {
        self.shutdown.shutdown();
        self.finished()
    }

    /// Waits (up to 40 s) for `serve` to return.
    ///
    /// # Panics
    ///
    /// If it has not returned by then.
    pub fn finished(self) -> Result<(), tether_tokio::ServeError> {
        self.done
            .recv_timeout(Duration::from_secs(40))
            .expect("the server did not finish within 40 s")
    }
}

/// A peer server process (Python or Node) that prints its port on its first line; killed
/// when dropped.
pub struct PeerServer {
    child: std::process::Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl PeerServer {
    /// Starts `command` and reads the port it prints.
    pub fn start(mut command: Command) -> PeerServer {
        use std::io::BufRead;
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the peer server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read the peer's port");
        let port = match line.trim().parse() {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the peer server printed {line:?} instead of its port");
            }
        };
        PeerServer { child, port }
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
