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

#[path = "../peer_server.rs"]
mod peer_server;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error;

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
    let addr = peer_server::addr_argument("ws_echo_tungstenite", "127.0.0.1:8092");
    peer_server::accept_loop(
        addr,
        "tokio-tungstenite echo",
        ("ws", "/"),
        |stream| async move {
            let _ = session(stream).await;
        },
    )
    .await;
}
