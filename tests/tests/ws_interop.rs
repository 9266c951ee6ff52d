//! The sans-IO WebSocket core (handshake through the h1 connections, then the frame
//! connection) against peers we did not write: Python `websockets` and `aiohttp` and Node
//! `ws` as clients of our echo, and our client against a `websockets` server.

use bytes::Bytes;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use tether_core::h1::ServerConnectionConfig;
use tether_core::ws::{CloseReason, WsConfig, WsEvent};
use tether_tests::{
    all_echoed, demo_app, node_with, peers_dir, python_with, run_json, ws, TestServer,
};

fn server() -> TestServer {
    TestServer::start(ServerConnectionConfig::default(), demo_app)
}

fn python_client(args: &[&str]) -> Option<Value> {
    let python = python_with("websockets")?;
    let s = server();
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("ws_client.py"))
        .arg(format!("ws://{}/ws", s.addr))
        .args(args);
    Some(run_json(command))
}

#[test]
fn websockets_client_with_compression() {
    let Some(result) = python_client(&[]) else {
        return;
    };
    all_echoed(&result);
    assert_eq!(result["subprotocol"], "echo");
    assert_eq!(result["extensions"][0], "PerMessageDeflate", "{result}");
    assert_eq!(result["pong"], true);
    assert_eq!(result["close_code"], 1000);
}

#[test]
fn websockets_client_without_compression() {
    let Some(result) = python_client(&["--no-compression"]) else {
        return;
    };
    all_echoed(&result);
    assert_eq!(result["extensions"].as_array().map(Vec::len), Some(0));
    assert_eq!(result["close_code"], 1000);
}

#[test]
fn aiohttp_client_with_heartbeat_and_compression() {
    if python_with("aiohttp").is_none() {
        return;
    }
    let Some(result) = python_client(&["--aiohttp"]) else {
        return;
    };
    all_echoed(&result);
    assert_eq!(result["compress"], 15, "{result}");
    assert_eq!(result["close_code"], 1000);
}

#[test]
fn node_ws_client() {
    let Some((node, modules)) = node_with("ws") else {
        return;
    };
    let s = server();
    for deflate in [false, true] {
        let mut command = Command::new(&node);
        command
            .env("NODE_PATH", &modules)
            .arg(peers_dir().join("ws_client.cjs"))
            .arg(format!("ws://{}/ws", s.addr));
        if deflate {
            command.arg("--deflate");
        }
        let result = run_json(command);
        all_echoed(&result);
        assert_eq!(result["protocol"], "echo");
        assert_eq!(result["pong"], "ping!");
        assert_eq!(result["close_code"], 1000);
        let extensions = result["extensions"].as_str().unwrap_or_default();
        assert_eq!(
            extensions.contains("permessage-deflate"),
            deflate,
            "{result}"
        );
    }
}

#[test]
fn bad_version_is_refused_with_426() {
    use std::io::{Read, Write};
    let s = server();
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
        )
        .unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{answer}"
    );
    assert!(answer.contains("sec-websocket-version: 13\r\n"), "{answer}");
}

struct PythonServer(Child, u16);

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn websockets_server() -> Option<PythonServer> {
    let python = python_with("websockets")?;
    let mut child = Command::new(python)
        .arg(peers_dir().join("ws_server.py"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start websockets server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("port");
    Some(PythonServer(child, port))
}

#[test]
fn our_client_against_websockets_server() {
    let Some(server) = websockets_server() else {
        return;
    };
    for compression in [true, false] {
        let mut config = WsConfig::default();
        if !compression {
            config.deflate = None;
        }
        let (mut socket, negotiated, stream, trailing) =
            ws::connect(server.1, "/", &["echo"], &config).expect("handshake");
        assert_eq!(negotiated.protocol.as_deref(), Some("echo"));
        assert_eq!(negotiated.deflate.is_some(), compression);
        let big = "q".repeat(300_000);
        let sent = vec![
            WsEvent::Text("hello".into()),
            WsEvent::Binary(Bytes::from(vec![1u8; 100_000])),
            WsEvent::Text(big.clone()),
        ];
        socket.send_text("hello").unwrap();
        socket.send_binary(Bytes::from(vec![1u8; 100_000])).unwrap();
        socket.send_text(&big).unwrap();
        socket.send_ping(Bytes::from_static(b"hb")).unwrap();
        let mut received = Vec::new();
        let mut pongs = 0;
        let reason = ws::drive(stream, socket, &trailing, |socket, event| match event {
            WsEvent::Pong(p) => {
                assert_eq!(&p[..], b"hb");
                pongs += 1;
            }
            WsEvent::Text(_) | WsEvent::Binary(_) => {
                received.push(event.clone());
                if received.len() == sent.len() {
                    socket.send_text("close-me").unwrap();
                }
            }
            _ => {}
        });
        assert_eq!(received, sent);
        assert_eq!(pongs, 1);
        assert_eq!(
            reason,
            CloseReason::ByPeer {
                code: Some(4001),
                reason: "asked to".into()
            }
        );
    }
}
