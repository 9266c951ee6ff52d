//! What the benchmark's servers share (each binary in `src/bin/` includes this file with
//! `#[path]`): the `--addr HOST:PORT` argument, and for the peer servers a tokio accept loop
//! set up the way tether's server is (`TCP_NODELAY`, a back-off when accepting fails), so
//! that the comparison measures the protocol code and not the listener.

#![allow(dead_code)] // each binary uses its part

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// The `--addr HOST:PORT` argument (or `default`); exits with status 2 and a usage line
/// naming `program` on anything else.
pub fn addr_argument(program: &str, default: &str) -> SocketAddr {
    let parsed = (|| {
        let mut args = std::env::args().skip(1);
        let mut addr = default.to_owned();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--addr" => addr = args.next().ok_or("--addr needs a value")?,
                other => {
                    return Err(format!(
                        "unknown argument {other:?} (usage: {program} [--addr HOST:PORT])"
                    ))
                }
            }
        }
        addr.parse::<SocketAddr>()
            .map_err(|e| format!("bad address {addr:?}: {e}"))
    })();
    parsed.unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    })
}

/// Listens on `addr` (exits with status 1 if it cannot), prints `{what} listening on
/// {scheme}://{address}{path}`, and serves every accepted connection with `serve` in a task
/// of its own.
pub async fn accept_loop<F, Fut>(addr: SocketAddr, what: &str, url: (&str, &str), serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    let (scheme, path) = url;
    println!("{what} listening on {scheme}://{local}{path}");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Resource exhaustion (EMFILE...): back off instead of spinning, like tether.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // tether sets TCP_NODELAY on accepted connections; so do the peers.
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream));
    }
}
