//! The tokio `Client` against servers we did not write: Python aiohttp (Content-Length and
//! chunked bodies, redirect chains and the method rules, a WebSocket with aiohttp's heartbeat
//! and compression) and Node `ws` (a WebSocket server with permessage-deflate that pings).

use bytes::Bytes;
use futures_util::StreamExt;
use std::process::Command;
use std::time::Duration;
use tether_core::ws::{CloseReason, DeflateConfig, WsConfig};
use tether_tests::{node_with, peers_dir, python_with, PeerServer};
use tether_tokio::websocket::Message;
use tether_tokio::{Client, ClientConfig, ClientError, WebSocket};

fn aiohttp_server() -> Option<PeerServer> {
    let python = python_with("aiohttp")?;
    let mut command = Command::new(python);
    command.arg(peers_dir().join("client_aiohttp_server.py"));
    Some(PeerServer::start(command))
}

fn node_ws_server() -> Option<PeerServer> {
    let (node, modules) = node_with("ws")?;
    let mut command = Command::new(node);
    command
        .env("NODE_PATH", modules)
        .arg(peers_dir().join("client_ws_server.cjs"));
    Some(PeerServer::start(command))
}

fn compressing() -> WsConfig {
    let mut config = WsConfig::default();
    config.deflate = Some(DeflateConfig::default());
    config
}

/// The next text or binary message (pings and pongs skipped).
async fn next_data(ws: &mut WebSocket) -> Option<Message> {
    loop {
        match ws.next().await? {
            message if message.is_control() => continue,
            message => return Some(message),
        }
    }
}

async fn info(ws: &mut WebSocket) -> serde_json::Value {
    ws.send_text("info").await.unwrap();
    match next_data(ws).await {
        Some(Message::Text(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected JSON, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiohttp_content_length_and_chunked_bodies() {
    let Some(server) = aiohttp_server() else {
        return;
    };
    let client = Client::default();
    let expected: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..3 {
        let mut response = client.get(&server.url("/cl")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-length"], "100000");
        assert_eq!(response.bytes().await.unwrap(), expected);
    }
    let mut response = client
        .get(&server.url("/chunked"))
        .query(&[("n", "3000")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut lines = 0;
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    assert_eq!(lines, 3000);
    assert!(rest.ends_with(b"line 2999\n"));
    let stats = client.pool_stats(&server.url("/")).unwrap();
    assert_eq!(
        (stats.idle, stats.in_use),
        (1, 0),
        "aiohttp kept one connection alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiohttp_redirects_follow_the_method_rules() {
    let Some(server) = aiohttp_server() else {
        return;
    };
    let client = Client::default();
    // Absolute paths, relative paths and full URLs, five hops.
    let mut response = client.get(&server.url("/redirect/5")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "final");

    let response = client
        .get(&server.url("/redirect/5"))
        .follow_redirects(false)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "4");
    drop(response); // unread body: its connection is closed

    // 303 turns a POST into a GET without a body; 307 repeats the POST and its body.
    let mut response = client
        .post(&server.url("/see-other"))
        .text("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "GET 0 -");
    let mut response = client
        .post(&server.url("/temporary"))
        .text("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        "POST 3 text/plain; charset=utf-8"
    );

    // A loop ends after 10 redirects; a lower limit ends sooner.
    let result = client.get(&server.url("/loop")).send().await;
    assert!(
        matches!(result, Err(ClientError::TooManyRedirects(10))),
        "{result:?}"
    );
    let strict = Client::new({
        let mut config = ClientConfig::default();
        config.max_redirects = 2;
        config
    });
    let result = strict.get(&server.url("/redirect/5")).send().await;
    assert!(
        matches!(result, Err(ClientError::TooManyRedirects(2))),
        "{result:?}"
    );
    let stats = client.pool_stats(&server.url("/")).unwrap();
    assert_eq!((stats.in_use, stats.waiting), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiohttp_websocket_with_heartbeat_and_compression() {
    let Some(server) = aiohttp_server() else {
        return;
    };
    let client = Client::default();
    let (mut ws, protocol) = client
        .ws(&server.url("/ws").replace("http://", "ws://"))
        .protocol("echo")
        .config(compressing())
        .connect()
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("echo"));
    let info = info(&mut ws).await;
    assert_eq!(info["protocol"], "echo", "{info}");
    assert!(
        info["compress"].as_u64().is_some_and(|bits| bits > 0),
        "compression agreed: {info}"
    );
    let text = "compressible ".repeat(50_000);
    ws.send_text(text.clone()).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(Message::Text(text)));
    let binary = Bytes::from((0..1_000_000u32).map(|i| (i % 7) as u8).collect::<Vec<_>>());
    ws.send_binary(binary.clone()).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(Message::Binary(binary)));

    // aiohttp pings every 0.2 s and closes if no pong comes: we answer on our own, so the
    // socket is alive a second later even though nothing read in between.
    tokio::time::sleep(Duration::from_secs(1)).await;
    ws.send_text("alive?").await.unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Some(Message::Text("alive?".into()))
    );

    ws.send_text("close-me").await.unwrap();
    assert_eq!(next_data(&mut ws).await, None);
    match ws.closed().await {
        CloseReason::ByPeer { code, reason } => {
            assert_eq!(code, Some(4001));
            assert_eq!(reason, "asked to");
        }
        other => panic!("expected the peer's close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_server_with_deflate_pings_and_both_closes() {
    let Some(server) = node_ws_server() else {
        return;
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let client = Client::default();
    for deflate in [true, false] {
        let mut config = compressing();
        if !deflate {
            config.deflate = None;
        }
        let (mut ws, protocol) = client
            .ws(&url)
            .protocol("echo")
            .config(config)
            .connect()
            .await
            .unwrap();
        assert_eq!(protocol.as_deref(), Some("echo"));
        for i in 0..50 {
            ws.send_text(format!("message {i}")).await.unwrap();
        }
        for i in 0..50 {
            assert_eq!(
                next_data(&mut ws).await,
                Some(Message::Text(format!("message {i}")))
            );
        }
        let info = info(&mut ws).await;
        assert_eq!(info["protocol"], "echo", "{info}");
        assert_eq!(
            info["pong"], "srv",
            "our automatic pong answered ws's ping: {info}"
        );
        let extensions = info["extensions"].to_string();
        assert_eq!(
            extensions.contains("permessage-deflate"),
            deflate,
            "{extensions}"
        );
        if deflate {
            ws.send_text("close-me").await.unwrap();
            assert_eq!(next_data(&mut ws).await, None);
            assert_eq!(ws.closed().await.code(), 4001);
        } else {
            ws.close(1000, "done").await.unwrap();
            assert_eq!(next_data(&mut ws).await, None);
            assert!(matches!(
                ws.closed().await,
                CloseReason::ByUs {
                    code: Some(1000),
                    ..
                }
            ));
        }
    }
}
