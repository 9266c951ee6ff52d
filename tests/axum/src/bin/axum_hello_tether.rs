//! The benchmark's axum hello router on tether (`App::fallback_service`), default settings:
//! head, keep-alive and body deadlines on, `Date` on every response.

use tether_axum_tests::{addr_argument, hello_router};
use tether_tokio::{App, Server, ServerConfig};

#[tokio::main]
async fn main() {
    let addr = addr_argument("axum_hello_tether");
    let server = Server::bind(addr, ServerConfig::default())
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
    println!("axum on tether listening on http://{addr}");
    if let Err(e) = server
        .serve(App::new().fallback_service(hello_router()))
        .await
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
