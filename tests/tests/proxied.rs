//! tether behind real proxies: curl reaches the tokio server through tinyproxy (plain
//! requests in absolute form and `CONNECT` tunnels, with Basic authentication) and through
//! Dante (SOCKS5 with username/password, local and proxy-side name resolution). This shows
//! the proxies the client's proxy tests use are set up as those tests expect.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use std::process::Command;
use tether_tests::proxies::{dante, tinyproxy, HTTP_PROXY_USER, SOCKS_USER};
use tether_tests::{curl, TokioServer};

/// curl's status code and body for `url` with `args`.
fn fetch(args: &[String], url: &str) -> (String, String) {
    let curl = curl().expect("curl");
    let out = Command::new(curl)
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

#[test]
fn curl_reaches_tether_through_tinyproxy_with_basic_auth() {
    let (Some(proxy), Some(_)) = (tinyproxy(true), curl()) else {
        return;
    };
    let server = TokioServer::start(demo::app(), demo::config());
    let url = server.url("/");
    let (user, password) = HTTP_PROXY_USER;
    let anonymous = format!("http://{}", proxy.addr);
    let authorized = format!("http://{user}:{password}@{}", proxy.addr);
    assert_eq!(fetch(&["-x".into(), anonymous], &url).0, "407");
    let (code, body) = fetch(&["-x".into(), authorized.clone()], &url);
    assert_eq!((code.as_str(), body.as_str()), ("200", "Hello, World!"));
    // Through a CONNECT tunnel.
    let (code, body) = fetch(&["-p".into(), "-x".into(), authorized], &url);
    assert_eq!((code.as_str(), body.as_str()), ("200", "Hello, World!"));
    server.stop().unwrap();
}

#[test]
fn curl_reaches_tether_through_dante_with_username_and_password() {
    let (Some(proxy), Some(_)) = (dante(true), curl()) else {
        return;
    };
    let server = TokioServer::start(demo::app(), demo::config());
    let (user, password) = SOCKS_USER;
    let socks = format!("{user}:{password}@{}", proxy.addr);
    let (code, body) = fetch(&["--socks5".into(), socks.clone()], &server.url("/"));
    assert_eq!((code.as_str(), body.as_str()), ("200", "Hello, World!"));
    let by_name = format!("http://localhost:{}/", server.addr.port());
    let (code, _) = fetch(&["--socks5-hostname".into(), socks], &by_name);
    assert_eq!(code, "200");
    let wrong = format!("{user}:wrong@{}", proxy.addr);
    let (code, _) = fetch(&["--socks5".into(), wrong], &server.url("/"));
    assert_eq!(code, "000", "refused by the proxy");
    server.stop().unwrap();
}
