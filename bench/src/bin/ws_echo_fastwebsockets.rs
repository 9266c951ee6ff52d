//! A WebSocket echo server on fastwebsockets (hyper 1.x for the upgrade), a peer of the
//! tether echo server in the WebSocket benchmark (`scripts/bench-ws.sh`, see BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p tether-bench --bin ws_echo_fastwebsockets -- --addr 127.0.0.1:18091
//! ```
//!
//! Every request, whatever its path, is upgraded with `fastwebsockets::upgrade::upgrade`
//! (a request that is not a valid upgrade gets `400`), served by
//! `hyper::server::conn::http1` with upgrades on, one task per connection. The socket is
//! wrapped in a `FragmentCollector`, so whole messages (not frames) are echoed, and text
//! messages are checked to be UTF-8; every text and binary message goes back as it came.
//! Automatic pongs and automatic close replies are on (the defaults), as is the default
//! message size limit (64 MiB). Same runtime as the others: `#[tokio::main]` (multi-thread;
//! the benchmark script sets `TOKIO_WORKER_THREADS=1`).

#[path = "../peer_server.rs"]
mod peer_server;

use bytes::Bytes;
use fastwebsockets::upgrade::{upgrade, UpgradeFut};
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

/// Echoes every text and binary message until the peer closes (the close reply is
/// automatic) or the connection fails.
async fn session(upgraded: UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(upgraded.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            OpCode::Close => return Ok(()),
            // Pings are answered by the collector itself; pongs need nothing.
            _ => {}
        }
    }
}

async fn handle(
    mut req: Request<hyper::body::Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    match upgrade(&mut req) {
        Ok((response, upgraded)) => {
            tokio::spawn(async move {
                let _ = session(upgraded).await;
            });
            Ok(response)
        }
        Err(_) => {
            let mut response = Response::new(Empty::new());
            *response.status_mut() = StatusCode::BAD_REQUEST;
            Ok(response)
        }
    }
}

#[tokio::main]
async fn main() {
    let addr = peer_server::addr_argument("ws_echo_fastwebsockets", "127.0.0.1:8091");
    peer_server::accept_loop(
        addr,
        "fastwebsockets echo",
        ("ws", "/"),
        |stream| async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .with_upgrades()
                .await;
        },
    )
    .await;
}
