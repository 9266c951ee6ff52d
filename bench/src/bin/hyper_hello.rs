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

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, World!";

fn parse_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8081".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: hyper_hello [--addr HOST:PORT])"
                ))
            }
        }
    }
    addr.parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))
}

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
    println!("hyper hello listening on http://{local}");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Resource exhaustion (EMFILE...): back off instead of spinning, like the demo.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // The demo sets TCP_NODELAY on accepted connections; so does this peer.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
