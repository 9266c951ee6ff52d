//! A hyper 1.x hello-world server, the peer of the tether demo's `GET /` in the server load
//! benchmark (`scripts/bench-server.sh`, see BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p tether-bench --bin hyper_hello -- --addr 127.0.0.1:8081
//! ```
//!
//! Every request, whatever its method and path, gets `200` with `Hello, World!` and the
//! same headers as the demo (`content-type: text/plain; charset=utf-8`, `content-length`,
//! and hyper's own `date`). Connections are served with `hyper::server::conn::http1`
//! (keep-alive on, the default), one task per connection, on the same runtime as the demo:
//! `#[tokio::main]` (multi-thread; the benchmark script sets `TOKIO_WORKER_THREADS=1`).

#[path = "../peer_server.rs"]
mod peer_server;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

const BODY: &[u8] = b"Hello, World!";

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() {
    let addr = peer_server::addr_argument("hyper_hello", "127.0.0.1:8081");
    peer_server::accept_loop(addr, "hyper hello", ("http", ""), |stream| async move {
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service_fn(hello))
            .await;
    })
    .await;
}
