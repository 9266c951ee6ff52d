//! The demo server: HTTP and WebSocket endpoints on 127.0.0.1:8080 (`--addr` to change).
//!
//! ```text
//! cargo run --release -p tether-tokio --example demo -- --addr 127.0.0.1:8080
//! ```
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /` | `200 text/plain` `Hello, World!` |
//! | `POST /echo` | the request body, byte for byte, with the same `Content-Type` |
//! | `GET /stream?n=N` | a chunked `text/plain` body of N lines |
//! | `GET /slow?ms=N` | answers after N ms |
//! | `GET /ws` | WebSocket echo with a heartbeat; permessage-deflate when offered |
//!
//! It uses the application state (request counters), a setup/teardown context (the counters
//! are reported at shutdown) and the job scheduler (each WebSocket session is a supervised
//! job, closed at shutdown). Stop it with Ctrl-C: it shuts down gracefully.
//!
//! It logs through `tracing` on stderr, filtered by `RUST_LOG` (default `info`: an access
//! line per request, target `tether::access`; `RUST_LOG=debug` adds connections and
//! protocol errors; `RUST_LOG=warn` for none).

mod app;

use std::net::SocketAddr;
use tether_tokio::{shutdown_signal, Server};

fn parse_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8080".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: demo [--addr HOST:PORT])"
                ))
            }
        }
    }
    addr.parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let addr = match parse_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let app = app::app();
    let server = match Server::bind(addr, app::config()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = server.local_addr().unwrap_or(addr);
    println!("tether demo listening on http://{local} (WebSocket: ws://{local}/ws)");
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
