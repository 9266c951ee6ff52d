//! The `axum` example's router, unchanged, served by tether (`App::fallback_service`, feature `tower`):
//! path and query extractors, JSON, state, a streamed body, server-sent events, and
//! tower-http's compression and trace layers, exercised by curl and Python's aiohttp; and
//! what tether adds around it: a slowloris cut at the head timeout while the router keeps
//! serving, and a graceful shutdown that lets an in-flight handler finish.

#[path = "../examples/axum/app.rs"]
mod app;

use app::router;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use tether_tests::{curl, peers_dir, python_with, run_json, TokioServer};
use tether_tokio::{App, ServerConfig};

fn serve(config: ServerConfig) -> TokioServer {
    TokioServer::start(App::new().fallback_service(router()), config)
}

/// One request on a fresh connection, `Connection: close`; everything the server sent.
fn raw_exchange(server: &TokioServer, request: &str) -> String {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn an_axum_router_runs_unchanged_for_curl() {
    let Some(curl) = curl() else { return };
    let server = serve(ServerConfig::default());
    let run = |args: &[&str]| {
        let out = Command::new(&curl)
            .args(["-s", "-S", "--max-time", "10"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&[&server.url("/users/3?greeting=hey")]), "hey, user 3");
    let posted = run(&[
        "-H",
        "content-type: application/json",
        "--data",
        r#"{"a":[1,2]}"#,
        &server.url("/json"),
    ]);
    let posted: serde_json::Value = serde_json::from_str(&posted).unwrap();
    assert_eq!(posted["got"]["a"][1], 2);
    assert_eq!(posted["count"], 1);
    // tower-http's compression layer, decoded by curl.
    let compressed = run(&["-i", "--compressed", &server.url("/hello")]).to_ascii_lowercase();
    assert!(
        compressed.contains("content-encoding: gzip"),
        "{compressed}"
    );
    assert!(
        compressed.ends_with("hello from axum, served by tether, compressed by tower-http"),
        "{compressed}"
    );
    assert_eq!(run(&[&server.url("/stream")]), "piece 0;piece 1;piece 2;");
    // The router's own 404, not tether's.
    let missing = run(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &server.url("/nope"),
    ]);
    assert_eq!(missing, "404");
    server.stop().unwrap();
}

#[test]
fn an_axum_router_runs_unchanged_for_aiohttp() {
    let Some(python) = python_with("aiohttp") else {
        return;
    };
    let server = serve(ServerConfig::default());
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("aiohttp_client.py"))
        .arg(server.url(""));
    let got = run_json(command);
    assert_eq!(got["user"], serde_json::json!([200, "hi, user 7"]));
    assert_eq!(got["json"][0][1]["got"]["n"], 1);
    assert_eq!(got["json"][0][1]["count"], 1);
    assert_eq!(got["json"][1][1]["count"], 2);
    assert_eq!(
        got["stream"],
        serde_json::json!([200, "piece 0;piece 1;piece 2;", "chunked"])
    );
    assert_eq!(got["sse"][0], 200);
    assert_eq!(got["sse"][1], "text/event-stream");
    assert_eq!(
        got["sse"][2],
        serde_json::json!(["event 0", "event 1", "event 2"])
    );
    assert_eq!(
        got["gzip"],
        serde_json::json!([
            200,
            "gzip",
            "hello from axum, served by tether, compressed by tower-http"
        ])
    );
    assert_eq!(got["missing"], 404);
    server.stop().unwrap();
}

#[test]
fn a_slowloris_is_cut_at_the_head_timeout_while_the_router_serves() {
    let mut config = ServerConfig::default();
    config.http.timeouts.head = Some(Duration::from_secs(1));
    let server = serve(config);
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // While the slow client trickles its head, others are served.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        let _ = slow.write_all(b"X-Trickle: 1\r\n");
        let answer = raw_exchange(
            &server,
            "GET /users/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(answer.ends_with("hello, user 1"), "{answer}");
    }
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).unwrap();
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "cut after {elapsed:?}"
    );
    server.stop().unwrap();
}

#[test]
fn a_graceful_shutdown_lets_an_in_flight_axum_handler_finish() {
    let server = serve(ServerConfig::default());
    let addr = server.addr;
    let in_flight = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    });
    // The handler is sleeping when the shutdown starts.
    std::thread::sleep(Duration::from_millis(200));
    server.stop().unwrap();
    let answer = in_flight.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("connection: close\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("finished"), "{answer}");
}

#[test]
fn the_axum_example_serves_and_stops_gracefully_on_sigterm() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "-q", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .args(["--example", "axum", "--", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cargo run --example axum");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    let addr: std::net::SocketAddr = first
        .rsplit("http://")
        .next()
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /users/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("hello, user 5"), "{answer}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "the example exited with {status}");
}

#[test]
fn an_axum_204_goes_out_without_framing() {
    // axum's router sets `Content-Length: 0` on it (from the body's size hint); a 204 may
    // not carry one, and tether's core would refuse the head (a 500 before the fix).
    let router = axum::Router::new().route(
        "/gone",
        axum::routing::delete(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let server = TokioServer::start(App::new().fallback_service(router), ServerConfig::default());
    let answer = raw_exchange(
        &server,
        "DELETE /gone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 204 No Content\r\n"),
        "{answer}"
    );
    assert!(
        !answer.to_ascii_lowercase().contains("content-length"),
        "{answer}"
    );
    server.stop().unwrap();
}
