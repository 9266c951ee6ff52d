//! The benchmark's axum hello router on `axum::serve` (hyper), axum's defaults.

use tether_axum_tests::{addr_argument, hello_router};

#[tokio::main]
async fn main() {
    let addr = addr_argument("axum_hello_hyper");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
    println!("axum::serve listening on http://{addr}");
    if let Err(e) = axum::serve(listener, hello_router()).await {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
