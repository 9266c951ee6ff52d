//! The tokio server running the demo application, over real sockets, against clients we did
//! not write (curl, Python h11/aiohttp/websockets, Node ws) and raw sockets for the error
//! answers, slowloris, load, graceful shutdown and the WebSocket heartbeat.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use tether_tests::{all_echoed, curl, node_with, peers_dir, python_with, run_json, TokioServer};

type Demo = TokioServer;

fn demo() -> Demo {
    Demo::start(demo::app(), demo::config())
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

#[test]
fn endpoints_with_curl() {
    let d = demo();
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
    d.stop().unwrap();
}

#[test]
fn routing_errors() {
    let d = demo();
    let missing = raw(
        d.addr,
        b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    let wrong = raw(
        d.addr,
        b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        wrong.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{wrong}"
    );
    assert!(wrong.contains("allow: GET, HEAD\r\n"), "{wrong}");
    d.stop().unwrap();
}

#[test]
fn error_answers_over_raw_sockets() {
    let d = demo();
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
        let answer = raw(d.addr, &request);
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
    let answer = raw(d.addr, &chunked);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    d.stop().unwrap();
}

#[test]
fn slowloris_is_cut_while_others_are_served() {
    let mut config = demo::config();
    config.http.timeouts.head = Some(Duration::from_millis(500));
    let d = Demo::start(demo::app(), config);
    let mut slow = TcpStream::connect(d.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Others are served meanwhile.
    for _ in 0..5 {
        let ok = raw(
            d.addr,
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
    d.stop().unwrap();
}

#[test]
fn thousand_concurrent_keep_alive_connections() {
    let d = demo();
    let addr = d.addr;
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
    d.stop().unwrap();
}

#[test]
fn graceful_shutdown_loses_no_accepted_response() {
    let d = demo();
    let addr = d.addr;
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
    d.stop().unwrap();
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

#[test]
fn python_clients() {
    let Some(python) = python_with("websockets") else {
        return;
    };
    if python_with("aiohttp").is_none() || python_with("h11").is_none() {
        return;
    }
    let d = demo();
    let ws_url = format!("ws://{}/ws", d.addr);
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
        .arg(d.addr.port().to_string())
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
    d.stop().unwrap();
}

#[test]
fn node_ws_client() {
    let Some((node, modules)) = node_with("ws") else {
        return;
    };
    let d = demo();
    for deflate in [false, true] {
        let mut command = Command::new(&node);
        command
            .env("NODE_PATH", &modules)
            .arg(peers_dir().join("ws_client.cjs"))
            .arg(format!("ws://{}/ws", d.addr));
        if deflate {
            command.arg("--deflate");
        }
        let result = run_json(command);
        all_echoed(&result);
        assert_eq!(result["close_code"], 1000);
    }
    d.stop().unwrap();
}

#[test]
fn heartbeat_detects_a_peer_that_stops_answering() {
    let mut config = demo::config();
    config.websocket.heartbeat = Some(Duration::from_millis(300));
    let d = Demo::start(demo::app(), config);
    let mut stream = TcpStream::connect(d.addr).unwrap();
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
    d.stop().unwrap();
}

#[test]
fn shutdown_closes_websockets_with_1001() {
    let d = demo();
    let (mut socket, _, stream, trailing) = tether_tests::ws::connect(
        d.addr.port(),
        "/ws",
        &["echo"],
        &tether_core::ws::WsConfig::default(),
    )
    .expect("handshake");
    socket.send_text("before shutdown").unwrap();
    let shutdown = d.shutdown.clone();
    let mut echoed = false;
    let reason = tether_tests::ws::drive(stream, socket, &trailing, |_, event| {
        if let tether_core::ws::WsEvent::Text(t) = event {
            assert_eq!(t, "before shutdown");
            echoed = true;
            shutdown.shutdown();
        }
    });
    assert!(echoed);
    assert_eq!(reason.code(), 1001, "{reason:?}");
    assert!(reason.is_clean());
    d.done
        .recv_timeout(Duration::from_secs(20))
        .expect("server ended")
        .unwrap();
}

#[test]
fn aiohttp_http_client() {
    let Some(python) = python_with("aiohttp") else {
        return;
    };
    let d = demo();
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
    d.stop().unwrap();
}
