//! A WebSocket echo server on tokio-tungstenite, a peer of the tether echo server in the
//! WebSocket benchmark (`scripts/bench-ws.sh`, see BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p tether-bench --bin ws_echo_tungstenite -- --addr 127.0.0.1:18092
//! ```
//!
//! Every accepted connection does the handshake with `tokio_tungstenite::accept_async`
//! (default `WebSocketConfig`: 64 MiB messages, 16 MiB frames, UTF-8 checked for text) in
//! its own task, then every text and binary message goes back as it came (`send`, which
//! flushes). Pings are answered and a close is echoed by tungstenite itself. Same runtime as
//! the others: `#[tokio::main]` (multi-thread; the benchmark script sets
//! `TOKIO_WORKER_THREADS=1`).

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Error;

fn parse_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8092".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: ws_echo_tungstenite [--addr HOST:PORT])"
                ))
            }
        }
    }
    addr.parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))
}

/// Handshake, then echo every text and binary message until the peer closes or the
/// connection fails.
async fn session(stream: TcpStream) -> Result<(), Error> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(message) = ws.next().await {
        // Pings are answered and a close echoed by tungstenite itself, on the next read or
        // send; text and binary messages go back as they came.
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let addr = match parse_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    println!("tokio-tungstenite echo listening on ws://{local}/");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Resource exhaustion (EMFILE...): back off instead of spinning, like tether.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // tether sets TCP_NODELAY on accepted connections; so does this peer.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = session(stream).await;
        });
    }
}
