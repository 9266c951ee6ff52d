//! A WebSocket echo server on tether's tokio server, measured against fastwebsockets and
//! tokio-tungstenite in the WebSocket benchmark (`scripts/bench-ws.sh`, see BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p tether-bench --bin ws_echo_tether -- --addr 127.0.0.1:18090
//! ```
//!
//! `GET /` is the only route: `req.websocket(&[])` accepts the upgrade (no subprotocol), and
//! the session, a supervised job on the server's scheduler, echoes every text and binary
//! message (`Message::Text` back as text, `Message::Binary` as binary) until the peer
//! closes. Pings are answered by the connection itself.
//!
//! The settings are the defaults, safety on: UTF-8 checked for text, 16 MiB frames, 64 MiB
//! messages, the HTTP head and keep-alive deadlines, permessage-deflate accepted when offered
//! (the load client does not offer it), plus a heartbeat every 30 s (a ping after 30 s of
//! silence, 15 s for the pong). Two capacity settings are lifted so that every connection
//! is served like the peers serve it (they have no such caps): `jobs.limit` (default 100
//! sessions running at once, the rest queued) is off, and `max_connections` (default
//! 10 000) is 1 000 000, which the idle-memory run (`scripts/bench-ws.sh --idle N`) needs
//! for N near or above 10 000. Same runtime as the others: `#[tokio::main]` (multi-thread;
//! the benchmark script sets `TOKIO_WORKER_THREADS=1`). Stop it with Ctrl-C or SIGTERM: it
//! shuts down gracefully.

#[path = "../peer_server.rs"]
mod peer_server;

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tether_tokio::jobs::SchedulerConfig;
use tether_tokio::websocket::{Message, WsError};
use tether_tokio::{shutdown_signal, App, Request, Response, Server, ServerConfig};

async fn echo(mut req: Request) -> Response {
    let (response, pending) = match req.websocket(&[]) {
        Ok(accepted) => accepted,
        Err(refusal) => return refusal,
    };
    let session = async move {
        let Some(socket) = pending.await else {
            return Ok(());
        };
        let (mut sink, mut stream) = socket.split();
        while let Some(message) = stream.next().await {
            let reply = match message {
                Message::Text(text) => Message::Text(text),
                Message::Binary(data) => Message::Binary(data),
                _ => continue,
            };
            if sink.send(reply).await.is_err() {
                break;
            }
        }
        Ok::<_, WsError>(())
    };
    match req.scheduler().spawn(session).await {
        Ok(_) => response,
        Err(_) => Response::empty(http::StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The defaults, a 30 s heartbeat, and no cap on sessions or connections (see the module
/// docs).
fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.websocket.heartbeat = Some(Duration::from_secs(30));
    config.jobs = SchedulerConfig::default().with_limit(None);
    config.max_connections = 1_000_000;
    config
}

#[tokio::main]
async fn main() {
    let addr = peer_server::addr_argument("ws_echo_tether", "127.0.0.1:8090");
    let app = App::new().route(http::Method::GET, "/", echo);
    let server = match Server::bind(addr, config()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = server.local_addr().unwrap_or(addr);
    println!("tether echo listening on ws://{local}/");
    let served = server
        .serve(app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Err(e) = served {
        // The error and its causes, outermost first.
        let mut line = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            line.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        eprintln!("{line}");
        std::process::exit(1);
    }
}
