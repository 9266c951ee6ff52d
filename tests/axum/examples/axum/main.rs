//! An axum router served by tether: axum's routing and extractors, tether's connection
//! handling (head timeout, keep-alive and body deadlines, limits, graceful shutdown).
//!
//! ```text
//! cargo run --manifest-path tests/axum/Cargo.toml --example axum -- --addr 127.0.0.1:3000
//! curl 'http://127.0.0.1:3000/users/7?greeting=hi'
//! ```
//!
//! Ctrl-C (or SIGTERM) stops it gracefully: requests in flight are answered first.

mod app;

use tether_tokio::{shutdown_signal, App, Server, ServerConfig};

#[tokio::main]
async fn main() {
    let addr = tether_axum_tests::addr_argument("axum");
    let server = match Server::bind(addr, ServerConfig::default()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "axum on tether listening on http://{}",
        server.local_addr().unwrap_or(addr)
    );
    let app = App::new().fallback_service(app::router());
    if let Err(e) = server
        .serve(app)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
