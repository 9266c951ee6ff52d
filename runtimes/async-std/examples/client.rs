//! Fetches a URL with the pooled client and prints status, headers and body.
//!
//! ```text
//! cargo run -p tether-async-std --example async_std_client -- http://127.0.0.1:8080/ [--total-ms N] [--read-ms N]
//! ```

use std::time::Duration;
use tether_async_std::{Client, ClientConfig};
use tether_core::time::ClientTimeouts;

fn main() {
    async_std::task::block_on(run());
}

async fn run() {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut timeouts = ClientTimeouts::default();
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| -> Option<Duration> {
            args.next()?.parse().ok().map(Duration::from_millis)
        };
        match arg.as_str() {
            "--total-ms" => timeouts = timeouts.with_total(value(&mut args)),
            "--read-ms" => timeouts = timeouts.with_sock_read(value(&mut args)),
            "--connect-ms" => timeouts = timeouts.with_connect(value(&mut args)),
            "--sock-connect-ms" => timeouts = timeouts.with_sock_connect(value(&mut args)),
            _ => url = Some(arg),
        }
    }
    let Some(url) = url else {
        eprintln!(
            "usage: client URL [--total-ms N] [--read-ms N] [--connect-ms N] [--sock-connect-ms N]"
        );
        std::process::exit(2);
    };
    let mut config = ClientConfig::default();
    config.timeouts = timeouts;
    let client = Client::new(config);
    let mut response = match client.get(&url).send().await {
        Ok(response) => response,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("{:?} {}", response.version(), response.status());
    for (name, value) in response.headers() {
        println!("{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    println!();
    match response.text().await {
        Ok(body) => print!("{body}"),
        Err(e) => {
            eprintln!("error reading the body: {e}");
            std::process::exit(1);
        }
    }
    client.close().await;
}
