//! The sans-IO HTTP/1.1 core, driven by a plain blocking loop, against peers we did not
//! write: curl and Python's h11 as clients of our server, h11 as a server for our client.

use bytes::Bytes;
use http::Request;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tether_core::h1::{
    ClientConnection, ClientConnectionConfig, ClientEvent, ServerConnectionConfig,
};
use tether_core::time::Instant;
use tether_tests::{curl, demo_app, peers_dir, python_with, TestServer};

fn server() -> TestServer {
    TestServer::start(ServerConnectionConfig::default(), demo_app)
}

fn run_curl(args: &[&str]) -> Option<String> {
    let curl = curl()?;
    let out = Command::new(curl)
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn curl_get_and_keep_alive() {
    let s = server();
    let root = s.url("/");
    // Three URLs in one curl run share one connection when keep-alive works.
    let Some(out) = run_curl(&[&root, &root, &root, "-w", " connects=%{num_connects}\n"]) else {
        return;
    };
    assert_eq!(out.matches("Hello, World!").count(), 3, "{out}");
    let connects: Vec<&str> = out.matches("connects=").collect();
    assert_eq!(connects.len(), 3);
    assert!(
        out.contains("connects=1") && out.matches("connects=0").count() == 2,
        "{out}"
    );
}

#[test]
fn curl_echo_bodies() {
    let s = server();
    let echo = s.url("/echo");
    let big: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let path = std::env::temp_dir().join(format!("tether-echo-{}.txt", std::process::id()));
    std::fs::write(&path, &big).unwrap();
    let file_arg = format!("@{}", path.display());
    let Some(out) = run_curl(&[
        "--data-binary",
        &file_arg,
        "-H",
        "content-type: text/x-test",
        &echo,
    ]) else {
        return;
    };
    assert_eq!(out, big, "Content-Length upload");
    let chunked = run_curl(&[
        "--data-binary",
        &file_arg,
        "-H",
        "transfer-encoding: chunked",
        &echo,
    ])
    .unwrap();
    assert_eq!(chunked, big, "chunked upload");
    let expect = run_curl(&[
        "--data-binary",
        &file_arg,
        "-H",
        "expect: 100-continue",
        &echo,
    ])
    .unwrap();
    assert_eq!(expect, big, "upload after 100 Continue");
    let _ = std::fs::remove_file(path);
}

#[test]
fn curl_streams_and_http10() {
    let s = server();
    let Some(out) = run_curl(&["-i", &s.url("/stream?n=4")]) else {
        return;
    };
    assert!(out.contains("transfer-encoding: chunked"), "{out}");
    assert!(out.ends_with("line 0\nline 1\nline 2\nline 3\n"), "{out}");
    let old = run_curl(&["-i", "--http1.0", &s.url("/stream?n=2")]).unwrap();
    assert!(!old.contains("chunked"), "{old}");
    assert!(old.contains("connection: close"), "{old}");
    assert!(old.ends_with("line 0\nline 1\n"), "{old}");
    let head = run_curl(&["-I", &s.url("/")]).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("content-length: 13"));
}

#[test]
fn curl_sees_the_right_error_statuses() {
    let s = server();
    let long = s.url(&format!("/{}", "a".repeat(9000)));
    let Some(code) = run_curl(&["-o", "/dev/null", "-w", "%{http_code}", &long]) else {
        return;
    };
    assert_eq!(code, "414");
    let big_header = format!("x-big: {}", "b".repeat(20_000));
    let code = run_curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &big_header,
        &s.url("/"),
    ])
    .unwrap();
    assert_eq!(code, "431");
    let code = run_curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "transfer-encoding: gzip, chunked",
        "--data-binary",
        "x",
        &s.url("/echo"),
    ])
    .unwrap();
    assert_eq!(code, "501");
}

#[test]
fn h11_client_accepts_our_responses() {
    let Some(python) = python_with("h11") else {
        return;
    };
    let s = server();
    let scenarios = [
        "get",
        "head",
        "echo-length",
        "echo-chunked",
        "stream",
        "missing",
        "get",
    ];
    let out = Command::new(python)
        .arg(peers_dir().join("h11_client.py"))
        .arg(s.addr.port().to_string())
        .args(scenarios)
        .output()
        .expect("run h11 client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), scenarios.len());
    let body = |i: usize| results[i]["body"].as_str().unwrap().to_owned();
    assert_eq!(results[0]["status"], 200);
    assert_eq!(body(0), "Hello, World!");
    assert_eq!(body(1), "", "HEAD has no body");
    assert_eq!(body(2), "x".repeat(100_000));
    let echoed_type = results[2]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "content-type" && h[1] == "application/x-test");
    assert!(echoed_type, "echo keeps the Content-Type");
    assert_eq!(body(3), format!("abc{}e", "d".repeat(5000)));
    let lines: String = (0..50).map(|i| format!("line {i}\n")).collect();
    assert_eq!(body(4), lines);
    assert_eq!(results[5]["status"], 404);
    assert_eq!(body(6), "Hello, World!", "all on one kept-alive connection");
}

struct PythonServer {
    child: Child,
    port: u16,
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn h11_server() -> Option<PythonServer> {
    let python = python_with("h11")?;
    let mut child = Command::new(python)
        .arg(peers_dir().join("h11_server.py"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start h11 server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("port");
    Some(PythonServer { child, port })
}

/// One request on a blocking socket through our client connection; returns the events.
fn exchange(stream: &mut TcpStream, conn: &mut ClientConnection, path: &str) -> Vec<ClientEvent> {
    let request = Request::get(format!("http://127.0.0.1{path}"))
        .body(())
        .unwrap();
    conn.send_request(&request).unwrap();
    conn.send_end(None).unwrap();
    while let Some(bytes) = conn.poll_transmit(Instant::ZERO) {
        stream.write_all(&bytes).unwrap();
    }
    let mut events = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        while let Some(event) = conn.poll_event() {
            let end = matches!(event, ClientEvent::End { .. } | ClientEvent::Error(_));
            events.push(event);
            if end {
                return events;
            }
        }
        match stream.read(&mut buf).unwrap() {
            0 => conn.handle_eof(),
            n => conn.handle_input(Instant::ZERO, &buf[..n]),
        }
    }
}

fn body_of(events: &[ClientEvent]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in events {
        if let ClientEvent::Data(d) = e {
            body.extend_from_slice(d);
        }
    }
    body
}

#[test]
fn our_client_against_h11_server() {
    let Some(server) = h11_server() else {
        return;
    };
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());

    let events = exchange(&mut stream, &mut conn, "/length");
    assert!(matches!(&events[0], ClientEvent::Response(r) if r.status() == 200));
    assert_eq!(body_of(&events), b"hello world");
    assert!(conn.is_reusable());

    let events = exchange(&mut stream, &mut conn, "/chunked");
    assert_eq!(body_of(&events), b"chunk-one,chunk-two");
    let Some(ClientEvent::End {
        trailers: Some(trailers),
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    assert_eq!(trailers["x-trailer"], "done");
    assert!(conn.is_reusable());

    let events = exchange(&mut stream, &mut conn, "/early-hints");
    assert!(matches!(&events[0], ClientEvent::Informational(r) if r.status() == 103));
    assert!(matches!(&events[1], ClientEvent::Response(r) if r.status() == 200));
    assert_eq!(body_of(&events), b"ok");

    let events = exchange(&mut stream, &mut conn, "/no-content");
    assert!(matches!(&events[0], ClientEvent::Response(r) if r.status() == 204));
    assert!(conn.is_reusable());

    let events = exchange(&mut stream, &mut conn, "/close");
    assert_eq!(body_of(&events), b"bye");
    assert!(!conn.is_reusable());
    assert!(conn.is_closed());
    // A chunked upload h11 must accept, on a fresh connection.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let upload = Request::post("http://127.0.0.1/length")
        .header("transfer-encoding", "chunked")
        .body(())
        .unwrap();
    conn.send_request(&upload).unwrap();
    conn.send_data(Bytes::from_static(b"part one")).unwrap();
    conn.send_end(None).unwrap();
    while let Some(bytes) = conn.poll_transmit(Instant::ZERO) {
        stream.write_all(&bytes).unwrap();
    }
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !matches!(got.last(), Some(ClientEvent::End { .. })) {
        let n = stream.read(&mut buf).unwrap();
        conn.handle_input(Instant::ZERO, &buf[..n]);
        while let Some(e) = conn.poll_event() {
            got.push(e);
        }
    }
    assert_eq!(body_of(&got), b"hello world");
}
