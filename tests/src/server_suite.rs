//! The server behaviour suite, written once and run against every driver (tokio,
//! async-std, smol...): each driver's test file calls [`server_suite!`](crate::server_suite)
//! with a function that starts its demo application (the endpoint contract of the README)
//! with a given configuration. The scenarios talk to it over real sockets, with raw bytes,
//! curl, Python h11/aiohttp/websockets and Node ws, so a driver that differs in any
//! observable byte fails the same assertion as the others.

use crate::{all_echoed, curl, node_with, peers_dir, python_with, run_json};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use tether_rt::ServerConfig;

/// A running demo server of some driver.
pub trait DemoServer {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
    /// A function that starts its graceful shutdown (callable from another thread).
    fn shutdown_trigger(&self) -> Box<dyn Fn() + Send>;
    /// Waits (up to 40 s) for the server to end; its error, as text, if it failed.
    fn finished(self: Box<Self>) -> Result<(), String>;

    /// `http://addr` + `path`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// Shuts down gracefully and waits for the end.
    fn stop(self: Box<Self>) -> Result<(), String> {
        (self.shutdown_trigger())();
        self.finished()
    }
}

/// Starts a driver's demo application with a configuration.
pub type Start = fn(ServerConfig) -> Box<dyn DemoServer>;

/// The demo's configuration: the defaults, and a WebSocket heartbeat every 15 s.
pub fn demo_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.websocket.heartbeat = Some(Duration::from_secs(15));
    config
}

impl DemoServer for crate::TokioServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn shutdown_trigger(&self) -> Box<dyn Fn() + Send> {
        let handle = self.shutdown.clone();
        Box::new(move || handle.shutdown())
    }

    fn finished(self: Box<Self>) -> Result<(), String> {
        crate::TokioServer::finished(*self).map_err(|e| e.to_string())
    }
}

/// One `#[test]` per scenario of the suite, for the driver `start` starts.
#[macro_export]
macro_rules! server_suite {
    ($start:expr) => {
        $crate::server_suite!(@tests $start;
            endpoints_with_curl, routing_errors, error_answers_over_raw_sockets,
            slowloris_is_cut_while_others_are_served, thousand_concurrent_keep_alive_connections,
            graceful_shutdown_loses_no_accepted_response, python_clients, node_ws_client,
            heartbeat_detects_a_peer_that_stops_answering, shutdown_closes_websockets_with_1001,
            aiohttp_http_client, pipelined_requests_are_answered_in_order,
            continue_is_sent_only_when_the_body_is_read, idle_keep_alive_connections_are_closed);
    };
    (@tests $start:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::server_suite::$name($start);
            }
        )*
    };
}

/// Sends raw bytes, returns everything read until the server closes or 5 s pass.
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn curl_out(args: &[&str]) -> Option<String> {
    let out = Command::new(curl()?)
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn endpoints_with_curl(start: Start) {
    let d = start(demo_config());
    let Some(root) = curl_out(&["-i", &d.url("/")]) else {
        return;
    };
    assert!(root.starts_with("HTTP/1.1 200 OK\r\n"), "{root}");
    assert!(root.contains("content-type: text/plain"));
    let date = root
        .lines()
        .find_map(|line| line.strip_prefix("date: "))
        .expect("a Date header");
    assert!(
        date.len() == 29 && date.ends_with(" GMT"),
        "IMF-fixdate: {date:?}"
    );
    assert!(root.ends_with("\r\n\r\nHello, World!"));
    let big: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let path = std::env::temp_dir().join(format!("tether-demo-{}.txt", std::process::id()));
    std::fs::write(&path, &big).unwrap();
    let file = format!("@{}", path.display());
    let echoed = curl_out(&[
        "--data-binary",
        &file,
        "-H",
        "content-type: text/x-demo",
        &d.url("/echo"),
    ])
    .unwrap();
    assert_eq!(echoed, big);
    let chunked = curl_out(&[
        "--data-binary",
        &file,
        "-H",
        "transfer-encoding: chunked",
        &d.url("/echo"),
    ])
    .unwrap();
    assert_eq!(chunked, big);
    let headers = curl_out(&[
        "-s",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--data-binary",
        "x",
        "-H",
        "content-type: text/x-demo",
        &d.url("/echo"),
    ])
    .unwrap();
    assert!(headers.contains("content-type: text/x-demo"), "{headers}");
    let streamed = curl_out(&["-i", &d.url("/stream?n=5")]).unwrap();
    assert!(
        streamed.contains("transfer-encoding: chunked"),
        "{streamed}"
    );
    assert!(streamed.ends_with("line 0\nline 1\nline 2\nline 3\nline 4\n"));
    let started = Instant::now();
    let slow = curl_out(&[&d.url("/slow?ms=300")]).unwrap();
    assert_eq!(slow, "waited 300 ms");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Keep-alive: three requests, one connection.
    let root_url = d.url("/");
    let reuse = curl_out(&[&root_url, &root_url, &root_url, "-w", "[%{num_connects}]"]).unwrap();
    assert_eq!(reuse.matches("[0]").count(), 2, "{reuse}");
    let _ = std::fs::remove_file(path);
    d.stop().expect("clean shutdown");
}

pub fn routing_errors(start: Start) {
    let d = start(demo_config());
    let missing = raw(
        d.addr(),
        b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    let wrong = raw(
        d.addr(),
        b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        wrong.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{wrong}"
    );
    assert!(wrong.contains("allow: GET, HEAD\r\n"), "{wrong}");
    d.stop().expect("clean shutdown");
}

pub fn error_answers_over_raw_sockets(start: Start) {
    let d = start(demo_config());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
            "400",
        ),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".to_vec(),
            "413",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000)).into_bytes(),
            "414",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
                "b".repeat(20_000)
            )
            .into_bytes(),
            "431",
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            "501",
        ),
        (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
                .to_vec(),
            "426",
        ),
    ];
    for (request, status) in cases {
        let answer = raw(d.addr(), &request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status}: {answer}"
        );
    }
    // A chunked body over the limit is cut off with 413 too.
    let mut chunked =
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(b"8000\r\n");
        chunked.extend(std::iter::repeat_n(b'z', 0x8000));
        chunked.extend_from_slice(b"\r\n");
    }
    let answer = raw(d.addr(), &chunked);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    d.stop().expect("clean shutdown");
}

pub fn slowloris_is_cut_while_others_are_served(start: Start) {
    let mut config = demo_config();
    config.http.timeouts.head = Some(Duration::from_millis(500));
    let d = start(config);
    let mut slow = TcpStream::connect(d.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Others are served meanwhile.
    for _ in 0..5 {
        let ok = raw(
            d.addr(),
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(ok.ends_with("Hello, World!"));
    }
    // Trickle one byte at a time; the head deadline does not move.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    for byte in b"X-Slow: 1" {
        std::thread::sleep(Duration::from_millis(100));
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
    }
    while let Ok(n) = slow.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    d.stop().expect("clean shutdown");
}

pub fn thousand_concurrent_keep_alive_connections(start: Start) {
    let d = start(demo_config());
    let addr = d.addr();
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                // 125 connections per thread, all open at once, each used for 3 requests.
                let mut conns: Vec<TcpStream> = (0..125)
                    .map(|_| TcpStream::connect(addr).unwrap())
                    .collect();
                for round in 0..3 {
                    for c in &mut conns {
                        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    }
                    for c in &mut conns {
                        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        let mut got = Vec::new();
                        let mut buf = [0u8; 512];
                        while !got.ends_with(b"Hello, World!") {
                            let n = c.read(&mut buf).unwrap_or(0);
                            assert!(n > 0, "connection closed in round {round}");
                            got.extend_from_slice(&buf[..n]);
                        }
                        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    d.stop().expect("clean shutdown");
}

pub fn graceful_shutdown_loses_no_accepted_response(start: Start) {
    let d = start(demo_config());
    let addr = d.addr();
    // Requests in flight (slow ones) when the shutdown starts all get their answer.
    let clients: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                raw(
                    addr,
                    format!("GET /slow?ms={} HTTP/1.1\r\nHost: x\r\n\r\n", 200 + i * 10).as_bytes(),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    d.stop().expect("clean shutdown");
    for c in clients {
        let answer = c.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("connection: close\r\n"), "{answer}");
        assert!(answer.contains("waited "), "{answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // And nothing listens any more.
    assert!(
        TcpStream::connect(addr).is_err()
            || raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_empty()
    );
}

pub fn python_clients(start: Start) {
    let Some(python) = python_with("websockets") else {
        return;
    };
    if python_with("aiohttp").is_none() || python_with("h11").is_none() {
        return;
    }
    let d = start(demo_config());
    let ws_url = format!("ws://{}/ws", d.addr());
    for args in [&[][..], &["--no-compression"], &["--aiohttp"]] {
        let mut command = Command::new(&python);
        command
            .arg(peers_dir().join("ws_client.py"))
            .arg(&ws_url)
            .args(args);
        let result = run_json(command);
        all_echoed(&result);
        assert_eq!(result["close_code"], 1000, "{args:?}: {result}");
    }
    let mut command = Command::new(&python);
    command
        .arg(peers_dir().join("h11_client.py"))
        .arg(d.addr().port().to_string())
        .args([
            "get",
            "head",
            "echo-length",
            "echo-chunked",
            "missing",
            "get",
        ]);
    let results = run_json(command);
    assert_eq!(results[0]["body"], "Hello, World!");
    assert_eq!(results[2]["body"].as_str().unwrap().len(), 100_000);
    assert_eq!(results[4]["status"], 404);
    d.stop().expect("clean shutdown");
}

pub fn node_ws_client(start: Start) {
    let Some((node, modules)) = node_with("ws") else {
        return;
    };
    let d = start(demo_config());
    for deflate in [false, true] {
        let mut command = Command::new(&node);
        command
            .env("NODE_PATH", &modules)
            .arg(peers_dir().join("ws_client.cjs"))
            .arg(format!("ws://{}/ws", d.addr()));
        if deflate {
            command.arg("--deflate");
        }
        let result = run_json(command);
        all_echoed(&result);
        assert_eq!(result["close_code"], 1000);
    }
    d.stop().expect("clean shutdown");
}

pub fn heartbeat_detects_a_peer_that_stops_answering(start: Start) {
    let mut config = demo_config();
    config.websocket.heartbeat = Some(Duration::from_millis(300));
    let d = start(config);
    let mut stream = TcpStream::connect(d.addr()).unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    // Read the 101, then the server's pings, never answering; the server must give up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!("server did not close a dead peer: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    let frames = &seen[seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(frames.first(), Some(&0x89), "a ping came first");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    d.stop().expect("clean shutdown");
}

pub fn shutdown_closes_websockets_with_1001(start: Start) {
    let d = start(demo_config());
    let (mut socket, _, stream, trailing) = crate::ws::connect(
        d.addr().port(),
        "/ws",
        &["echo"],
        &tether_core::ws::WsConfig::default(),
    )
    .expect("handshake");
    socket.send_text("before shutdown").unwrap();
    let shutdown = d.shutdown_trigger();
    let mut echoed = false;
    let reason = crate::ws::drive(stream, socket, &trailing, |_, event| {
        if let tether_core::ws::WsEvent::Text(t) = event {
            assert_eq!(t, "before shutdown");
            echoed = true;
            shutdown();
        }
    });
    assert!(echoed);
    assert_eq!(reason.code(), 1001, "{reason:?}");
    assert!(reason.is_clean());
    d.finished().expect("clean shutdown");
}

pub fn aiohttp_http_client(start: Start) {
    let Some(python) = python_with("aiohttp") else {
        return;
    };
    let d = start(demo_config());
    let script = r#"
import asyncio, json, sys
import aiohttp

async def main():
    base = sys.argv[1]
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        out = {}
        async with s.get(base + "/") as r:
            out["root"] = [r.status, r.headers["Content-Type"], await r.text()]
        body = bytes(range(256)) * 2000
        async with s.post(base + "/echo", data=body, headers={"Content-Type": "application/x-bin"}) as r:
            out["echo"] = [r.status, r.headers["Content-Type"], (await r.read()) == body]
        async def gen():
            for i in range(50):
                yield b"piece %d;" % i
        async with s.post(base + "/echo", data=gen()) as r:
            out["chunked"] = (await r.read()).decode()
        async with s.get(base + "/stream?n=20") as r:
            out["stream"] = [r.headers.get("Transfer-Encoding"), (await r.text()).count("\n")]
        try:
            async with s.get(base + "/slow?ms=2000", timeout=aiohttp.ClientTimeout(total=0.3)) as r:
                out["slow"] = "answered"
        except asyncio.TimeoutError:
            out["slow"] = "timeout"
        async with s.get(base + "/") as r:
            out["after_timeout"] = await r.text()
        print(json.dumps(out))

asyncio.run(main())
"#;
    let out = Command::new(python)
        .args(["-c", script, &d.url("")])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["root"][0], 200);
    assert_eq!(result["root"][2], "Hello, World!");
    assert_eq!(
        result["echo"],
        serde_json::json!([200, "application/x-bin", true])
    );
    let expected: String = (0..50).map(|i| format!("piece {i};")).collect();
    assert_eq!(result["chunked"], expected);
    assert_eq!(result["stream"], serde_json::json!(["chunked", 20]));
    assert_eq!(result["slow"], "timeout");
    assert_eq!(result["after_timeout"], "Hello, World!");
    d.stop().expect("clean shutdown");
}

/// Reads from `stream` until `done` says the bytes so far are complete (or 5 s pass).
fn read_until(stream: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&got) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

pub fn pipelined_requests_are_answered_in_order(start: Start) {
    let d = start(demo_config());
    let mut stream = TcpStream::connect(d.addr()).unwrap();
    // Three requests in one write, a chunked upload among them.
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n\
              GET /stream?n=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let all = read_until(&mut stream, |_| false);
    let hello = all.find("Hello, World!").expect("first answer");
    let echo = all.find("\r\n\r\nhello world").expect("second answer");
    let first_line = all
        .find("line 0\n")
        .unwrap_or_else(|| panic!("third answer: {all}"));
    let second_line = all
        .find("line 1\n")
        .unwrap_or_else(|| panic!("its second line: {all}"));
    assert!(
        hello < echo && echo < first_line && first_line < second_line,
        "{all}"
    );
    assert!(all.ends_with("0\r\n\r\n"), "the chunked body ends: {all}");
    assert_eq!(all.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{all}");
    d.stop().expect("clean shutdown");
}

pub fn continue_is_sent_only_when_the_body_is_read(start: Start) {
    let d = start(demo_config());
    // `/echo` reads its body: `100 Continue` first, then the echo.
    let mut stream = TcpStream::connect(d.addr()).unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let interim = read_until(&mut stream, |got| got.ends_with(b"\r\n\r\n"));
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").unwrap();
    let answer = read_until(&mut stream, |got| got.ends_with(b"hello"));
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    // `/` never reads a body: no `100`, the answer, and the connection closes.
    let answer = raw(
        d.addr(),
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    d.stop().expect("clean shutdown");
}

pub fn idle_keep_alive_connections_are_closed(start: Start) {
    let mut config = demo_config();
    config.http.timeouts.keep_alive = Some(Duration::from_millis(300));
    let d = start(config);
    let mut stream = TcpStream::connect(d.addr()).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answered = Instant::now();
    // The answer, then the end of the stream once the connection sat idle.
    let all = read_until(&mut stream, |_| false);
    assert!(
        all.starts_with("HTTP/1.1 200 OK\r\n") && all.ends_with("Hello, World!"),
        "{all}"
    );
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(250), "{idle:?}");
    assert!(idle < Duration::from_secs(3), "{idle:?}");
    d.stop().expect("clean shutdown");
}
