//! The `axum` example's WebSocket route (`GET /ws`, tether's `axum::WebSocketUpgrade`,
//! feature `axum`) against peers we did not write: Python's `websockets` and aiohttp and
//! Node's `ws` echo text and binary messages through it, with the subprotocol `echo` and
//! with or without permessage-deflate; requests that are not valid upgrades get the core's
//! refusal; and a graceful shutdown closes an open socket with 1001.

#[path = "../examples/axum/app.rs"]
mod app;

use app::router;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tether_tests::{all_echoed, node_with, peers_dir, python_with, run_json, TokioServer};
use tether_tokio::{App, ServerConfig};

fn serve() -> TokioServer {
    TokioServer::start(
        App::new().fallback_service(router()),
        ServerConfig::default(),
    )
}

fn ws_url(server: &TokioServer) -> String {
    format!("ws://{}/ws", server.addr)
}

/// `tests/peers/ws_client.py` (websockets, or aiohttp with `--aiohttp`) against the route.
fn python_client(module: &str, args: &[&str]) -> Option<serde_json::Value> {
    let python = python_with(module)?;
    let server = serve();
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("ws_client.py"))
        .arg(ws_url(&server))
        .args(args);
    let result = run_json(command);
    server.stop().unwrap();
    Some(result)
}

#[test]
fn websockets_echoes_through_the_axum_route_with_deflate() {
    let Some(result) = python_client("websockets", &[]) else {
        return;
    };
    all_echoed(&result);
    assert_eq!(result["subprotocol"], "echo", "{result}");
    assert_eq!(result["extensions"][0], "PerMessageDeflate", "{result}");
    assert_eq!(result["pong"], true, "{result}");
    assert_eq!(result["close_code"], 1000, "{result}");
}

#[test]
fn websockets_echoes_through_the_axum_route_without_deflate() {
    let Some(result) = python_client("websockets", &["--no-compression"]) else {
        return;
    };
    all_echoed(&result);
    assert_eq!(result["subprotocol"], "echo", "{result}");
    assert_eq!(
        result["extensions"].as_array().map(Vec::len),
        Some(0),
        "{result}"
    );
    assert_eq!(result["close_code"], 1000, "{result}");
}

#[test]
fn aiohttp_echoes_through_the_axum_route_past_its_heartbeat() {
    let Some(result) = python_client("aiohttp", &["--aiohttp"]) else {
        return;
    };
    all_echoed(&result);
    assert_eq!(result["subprotocol"], "echo", "{result}");
    assert_eq!(result["compress"], 15, "{result}");
    assert_eq!(result["close_code"], 1000, "{result}");
}

#[test]
fn node_ws_echoes_through_the_axum_route() {
    let Some((node, modules)) = node_with("ws") else {
        return;
    };
    let server = serve();
    for deflate in [false, true] {
        let mut command = Command::new(&node);
        command
            .env("NODE_PATH", &modules)
            .arg(peers_dir().join("ws_client.cjs"))
            .arg(ws_url(&server));
        if deflate {
            command.arg("--deflate");
        }
        let result = run_json(command);
        all_echoed(&result);
        assert_eq!(result["protocol"], "echo", "{result}");
        assert_eq!(result["pong"], "ping!", "{result}");
        assert_eq!(result["close_code"], 1000, "{result}");
        let extensions = result["extensions"].as_str().unwrap_or_default();
        assert_eq!(
            extensions.contains("permessage-deflate"),
            deflate,
            "{result}"
        );
    }
    server.stop().unwrap();
}

/// One request on a fresh connection; everything the server sent until it closed.
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
fn requests_that_are_not_valid_upgrades_are_refused_as_tether_refuses_them() {
    let server = serve();
    let plain = raw_exchange(
        &server,
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(plain.starts_with("HTTP/1.1 400 "), "{plain}");
    let upgrade = |version: &str, key: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
        )
    };
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let old = raw_exchange(&server, &upgrade("8", key));
    assert!(old.starts_with("HTTP/1.1 426 "), "{old}");
    assert!(
        old.to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n"),
        "{old}"
    );
    let bad_key = raw_exchange(&server, &upgrade("13", "not-a-key"));
    assert!(bad_key.starts_with("HTTP/1.1 400 "), "{bad_key}");
    // The router itself still serves, on the same server.
    let hello = raw_exchange(
        &server,
        "GET /users/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(hello.ends_with("hello, user 2"), "{hello}");
    server.stop().unwrap();
}

/// A `websockets` client that echoes one message, says `open`, then reports how the server
/// closed the connection.
const WAIT_FOR_CLOSE: &str = r#"
import asyncio, json, sys
import websockets

async def main():
    async with websockets.connect(sys.argv[1], subprotocols=["echo"]) as ws:
        await ws.send("before shutdown")
        echoed = await ws.recv()
        print("open", flush=True)
        try:
            await asyncio.wait_for(ws.recv(), 20)
            ended = "got a message"
        except websockets.ConnectionClosed:
            ended = "closed"
        print(json.dumps({"echoed": echoed, "ended": ended, "close_code": ws.close_code,
                          "close_reason": ws.close_reason}))

asyncio.run(main())
"#;

#[test]
fn a_graceful_shutdown_closes_an_axum_websocket_with_1001() {
    let Some(python) = python_with("websockets") else {
        return;
    };
    let server = serve();
    let mut child = Command::new(python)
        .args(["-c", WAIT_FOR_CLOSE])
        .arg(ws_url(&server))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    assert_eq!(first, "open");
    let started = Instant::now();
    server.shutdown.shutdown();
    let report = lines.next().expect("the report").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "python exited with {status}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["echoed"], "before shutdown", "{report}");
    assert_eq!(report["ended"], "closed", "{report}");
    assert_eq!(report["close_code"], 1001, "{report}");
    // The session ended with its socket: the server is done long before its 30 s timeout.
    server.finished().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
