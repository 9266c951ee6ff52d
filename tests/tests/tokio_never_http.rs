//! Bytes that can never be HTTP, sent to tether's tokio server: binary garbage and a real TLS
//! ClientHello (rustls's) on the plain-HTTP port. Both are answered `400` and the connection
//! closed at once, not held open until the 30 s head timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_tests::TokioServer;
use tether_tokio::{App, Response, ServerConfig};

fn server() -> TokioServer {
    let app = App::new().route(http::Method::GET, "/", |_req| async {
        Response::text("hello")
    });
    TokioServer::start(app, ServerConfig::default())
}

/// Sends `bytes` (no end of head, no EOF) and reads until the server closes. Returns what
/// came back and how long after the write the close came.
fn send_and_read_to_close(addr: SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let mut socket = TcpStream::connect(addr).unwrap();
    // Far longer than the bound checked, far shorter than the head timeout.
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.write_all(bytes).unwrap();
    let sent = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A reset after the answer (the server closed with our bytes unread) also ends it.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close: {e} (got {:?})", String::from_utf8_lossy(&answer)),
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        sent.elapsed(),
    )
}

/// 4 KiB from a fixed xorshift sequence.
fn random_bytes() -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The first flight of a real TLS client (rustls), as it would reach an HTTP port.
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = "example.com".try_into().unwrap();
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    tls.write_tls(&mut hello).unwrap();
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
    hello
}

#[test]
fn garbage_and_a_tls_client_hello_get_400_and_a_close_at_once() {
    let server = server();
    for (what, bytes) in [
        ("4 KiB of random bytes", random_bytes()),
        ("a TLS ClientHello", client_hello()),
    ] {
        let (answer, took) = send_and_read_to_close(server.addr, &bytes);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{what}: {answer:?}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{what}: {answer:?}"
        );
        assert!(
            took < Duration::from_millis(100),
            "{what}: answered and closed after {took:?}"
        );
    }
    // The server keeps serving.
    let (answer, _) = send_and_read_to_close(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    server.stop().unwrap();
}
