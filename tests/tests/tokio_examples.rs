//! The `client` and `ws_client` examples, run as a user would (`cargo run --example`),
//! against the demo app.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use tether_tests::TokioServer;

/// `cargo run -q -p tether-tokio --example NAME -- ARGS` with `stdin` as its input.
fn run_example(name: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "tether-tokio", "--example", name, "--"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo run");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_client_example_prints_status_headers_and_body() {
    let server = TokioServer::start(demo::app(), demo::config());
    let out = run_example("client", &[&server.url("/"), "--total-ms", "5000"], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("HTTP/1.1 200 OK\n"), "{stdout}");
    assert!(stdout.contains("content-length: 13\n"), "{stdout}");
    assert!(stdout.ends_with("\n\nHello, World!"), "{stdout}");

    // A timeout is reported as such, with a failing exit status.
    let out = run_example(
        "client",
        &[&server.url("/slow?ms=3000"), "--read-ms", "200"],
        "",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("socket read timeout"), "{stderr}");
}

#[test]
fn the_client_example_goes_through_a_proxy() {
    let Some(proxy) = tether_tests::proxies::dante(true) else {
        return;
    };
    let server = TokioServer::start(demo::app(), demo::config());
    let (user, password) = tether_tests::proxies::SOCKS_USER;
    let via = format!("socks5h://{user}:{password}@{}", proxy.addr);
    let url = format!("http://localhost:{}/", server.addr.port());
    let out = run_example("client", &[&url, "--proxy", &via], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with("\n\nHello, World!"), "{stdout}");
    // A proxy URL that cannot be used is said so.
    let out = run_example("client", &[&url, "--proxy", "ftp://proxy"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unsupported proxy scheme"), "{stderr}");
}

#[test]
fn the_client_example_authenticates() {
    use tether_tests::auth_servers::{apache_digest, DIGEST_USER, HELLO};
    let Some(server) = apache_digest() else {
        return;
    };
    let url = server.url("/private/hello.txt");
    let (user, password) = DIGEST_USER;
    let right = format!("{user}:{password}");
    let out = run_example("client", &[&url, "--digest", &right], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(stdout.starts_with("HTTP/1.1 200 OK\n"), "{stdout}");
    assert!(stdout.ends_with(&format!("\n\n{HELLO}")), "{stdout}");
    // A wrong password: Apache's 401 is the answer, printed as any response.
    let wrong = format!("{user}:not it");
    let out = run_example("client", &[&url, "--digest", &wrong], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("HTTP/1.1 401 Unauthorized\n"),
        "{stdout}"
    );
    // Basic is not what Apache asks for here: sent, refused, and the 401 printed.
    let out = run_example("client", &[&url, "--basic", &right], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("HTTP/1.1 401 Unauthorized\n"),
        "{stdout}"
    );
    // Bad flags are said so.
    let out = run_example("client", &[&url, "--digest", "no-colon"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--digest needs USER:PASSWORD"), "{stderr}");
    let out = run_example("client", &[&url, "--bearer", "line\nbreak"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--bearer"), "{stderr}");
}

#[test]
fn the_ws_client_example_echoes_stdin_lines() {
    let server = TokioServer::start(demo::app(), demo::config());
    let url = server.url("/ws").replace("http://", "ws://");
    let out = run_example("ws_client", &[&url], "first line\nsecond line\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout, "first line\nsecond line\n", "{stderr}");
    assert!(stderr.contains("subprotocol: Some(\"echo\")"), "{stderr}");
    assert!(stderr.contains("closed: Some(ByUs"), "{stderr}");
}

#[test]
fn the_demo_shuts_down_gracefully_on_sigterm_and_runs_its_teardown() {
    use std::io::{BufRead, BufReader, Read};
    let mut demo = Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "tether-tokio", "--example", "demo", "--"])
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo run");
    let mut stdout = BufReader::new(demo.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let addr = url.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("Hello, World!"), "{answer}");

    let killed = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = demo.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(
        rest.contains("served 1 requests and 0 WebSocket sessions"),
        "{rest}"
    );
}
