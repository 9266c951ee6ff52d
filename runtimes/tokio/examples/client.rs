//! Fetches a URL with the pooled client and prints status, headers and body.
//!
//! ```text
//! cargo run -p tether-tokio --example client -- http://127.0.0.1:8080/ [--total-ms N] [--read-ms N]
//! cargo run -p tether-tokio --example client -- https://example.com/ --proxy socks5h://127.0.0.1:1080
//! cargo run -p tether-tokio --example client -- https://example.com/ --proxy-from-env
//! cargo run -p tether-tokio --example client -- http://127.0.0.1:8080/private --digest user:password
//! cargo run -p tether-tokio --example client -- https://api.example.com/ --bearer TOKEN
//! ```

use std::sync::Arc;
use std::time::Duration;
use tether_core::time::ClientTimeouts;
use tether_tokio::auth::{Authenticator, BasicAuth, BearerAuth, DigestAuth};
use tether_tokio::proxy::Proxy;
use tether_tokio::{Client, ClientConfig};

const USAGE: &str = "usage: client URL [--total-ms N] [--read-ms N] [--connect-ms N] \
     [--sock-connect-ms N] [--proxy URL | --proxy-from-env] \
     [--basic USER:PASSWORD | --digest USER:PASSWORD | --bearer TOKEN]";

fn fail(message: &str) -> ! {
    eprintln!("error: {message}\n{USAGE}");
    std::process::exit(2);
}

/// `USER:PASSWORD` (the password may hold colons) for `--basic` and `--digest`.
fn credentials(flag: &str, value: Option<String>) -> (String, String) {
    let value = value.unwrap_or_else(|| fail(&format!("{flag} needs USER:PASSWORD")));
    match value.split_once(':') {
        Some((user, password)) => (user.to_owned(), password.to_owned()),
        None => fail(&format!("{flag} needs USER:PASSWORD")),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut timeouts = ClientTimeouts::default();
    let mut config = ClientConfig::default();
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| -> Option<Duration> {
            args.next()?.parse().ok().map(Duration::from_millis)
        };
        match arg.as_str() {
            "--total-ms" => timeouts = timeouts.with_total(value(&mut args)),
            "--read-ms" => timeouts = timeouts.with_sock_read(value(&mut args)),
            "--connect-ms" => timeouts = timeouts.with_connect(value(&mut args)),
            "--sock-connect-ms" => timeouts = timeouts.with_sock_connect(value(&mut args)),
            "--proxy" => match args.next().as_deref().map(Proxy::parse) {
                Some(Ok(proxy)) => config = config.proxy(proxy),
                Some(Err(e)) => fail(&format!("--proxy: {e}")),
                None => fail("--proxy needs a URL"),
            },
            "--proxy-from-env" => config = config.proxy_from_env(),
            "--basic" => {
                let (user, password) = credentials("--basic", args.next());
                config = config.auth(Arc::new(BasicAuth::new(&user, &password)));
            }
            "--digest" => {
                let (user, password) = credentials("--digest", args.next());
                config = config.auth(Arc::new(DigestAuth::new(&user, &password)));
            }
            "--bearer" => {
                let token = args
                    .next()
                    .unwrap_or_else(|| fail("--bearer needs a token"));
                let auth: Arc<dyn Authenticator> = match BearerAuth::new(&token) {
                    Ok(auth) => Arc::new(auth),
                    Err(e) => fail(&format!("--bearer: {e}")),
                };
                config = config.auth(auth);
            }
            flag if flag.starts_with("--") => fail(&format!("unknown option {flag}")),
            _ => url = Some(arg),
        }
    }
    let Some(url) = url else { fail("no URL") };
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
