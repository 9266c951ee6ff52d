//! The axum hello-world router of the benchmark (`scripts/bench-server.sh --axum`), served by
//! tether (`axum_hello_tether`) and by axum's own `axum::serve` (`axum_hello_hyper`). The
//! axum example and its tests are in `examples/` and `tests/`.

use axum::routing::get;
use axum::Router;

/// `GET /`: `Hello, World!` as `text/plain; charset=utf-8`, the same answer as the demo's
/// and the hyper hello-world's in the other comparison.
pub fn hello_router() -> Router {
    Router::new().route("/", get(|| async { "Hello, World!" }))
}

/// The `--addr HOST:PORT` argument (default `127.0.0.1:3000`); exits with a usage line on a
/// bad one.
pub fn addr_argument(name: &str) -> std::net::SocketAddr {
    let mut args = std::env::args().skip(1);
    let text = match (args.next().as_deref(), args.next()) {
        (None, _) => "127.0.0.1:3000".to_owned(),
        (Some("--addr"), Some(addr)) => addr,
        _ => {
            eprintln!("usage: {name} [--addr HOST:PORT]");
            std::process::exit(2);
        }
    };
    text.parse().unwrap_or_else(|_| {
        eprintln!("{name}: not an address: {text}");
        std::process::exit(2);
    })
}
