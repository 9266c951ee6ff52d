//! The tokio server's own listeners: TLS termination (`Server::tls`) against curl, aiohttp
//! and Node `ws` with a CA made by the test; a stalled TLS handshake cut at its deadline
//! while others are served; a certificate reloaded from its files and seen by the next
//! connection; a Unix domain socket served to curl; a TCP listener bound by the user.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tether_tests::pki::pki;
use tether_tests::{all_echoed, curl, node_with, peers_dir, python_with, run_json, TokioServer};
use tether_tokio::tls::{ServerTls, ServerTlsError, TlsConfig};
use tether_tokio::{Client, ClientConfig, ClientError, Server, TlsError};
use tokio::io::AsyncReadExt;

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo app over TLS on a free port of 127.0.0.1.
fn tls_server(tls: ServerTls) -> TokioServer {
    TokioServer::start_on(demo::app(), move || async move {
        Server::bind("127.0.0.1:0".parse().unwrap(), demo::config())
            .await
            .expect("bind")
            .tls(tls)
    })
}

fn trusting(ca: &rustls::pki_types::CertificateDer<'static>) -> Client {
    Client::with_tls(
        ClientConfig::default(),
        TlsConfig::with_root_certificates(vec![ca.clone()]),
    )
}

#[test]
fn curl_aiohttp_and_node_ws_over_tls() {
    let dir = scratch("tls-peers");
    let pki = pki(&["localhost", "127.0.0.1"]);
    let files = pki.write(&dir, "server");
    let tls = ServerTls::from_pem_files(&files.chain, &files.key).expect("PEM files");
    let server = tls_server(tls);
    let base = format!("https://127.0.0.1:{}", server.addr.port());

    if let Some(curl) = curl() {
        // curl offers h2 and http/1.1; the server picks http/1.1.
        let out = Command::new(curl)
            .args(["-sS", "-v", "--http2", "--cacert"])
            .arg(&files.ca)
            .arg(format!("{base}/"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, World!");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("ALPN") && l.contains("accepted") && l.contains("http/1.1")),
            "{stderr}"
        );
    }
    if let Some(python) = python_with("aiohttp") {
        let mut command = Command::new(python);
        command
            .arg(peers_dir().join("tls_client.py"))
            .arg(&base)
            .arg(&files.ca);
        let result = run_json(command);
        assert_eq!(result["hello"], serde_json::json!([200, "Hello, World!"]));
        assert_eq!(result["echo"], serde_json::json!([200, true]));
        assert_eq!(result["protocol"], "echo");
        assert_eq!(result["ws"], "over TLS");
        assert_eq!(result["close_code"], 1000);
    }
    if let Some((node, modules)) = node_with("ws") {
        let mut command = Command::new(node);
        command
            .env("NODE_PATH", &modules)
            .env("NODE_EXTRA_CA_CERTS", &files.ca)
            .arg(peers_dir().join("ws_client.cjs"))
            .arg(format!("wss://127.0.0.1:{}/ws", server.addr.port()))
            .arg("--deflate");
        let result = run_json(command);
        all_echoed(&result);
        assert_eq!(result["protocol"], "echo");
        assert_eq!(result["close_code"], 1000);
    }
    server.stop().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_cut_while_others_are_served() {
    let pki = pki(&["localhost"]);
    let tls = ServerTls::from_der(pki.chain.clone(), pki.key.clone_key())
        .unwrap()
        .handshake_timeout(Duration::from_millis(400));
    let server = tls_server(tls);
    let started = Instant::now();
    // One client sends nothing, one sends half a TLS record header and stops.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut partial, &[0x16, 0x03, 0x01])
        .await
        .unwrap();
    // Meanwhile others are served.
    let client = trusting(&pki.ca);
    let url = format!("https://localhost:{}/", server.addr.port());
    for _ in 0..3 {
        let mut response = client.get(&url).send().await.expect("https GET");
        assert_eq!(response.text().await.unwrap(), "Hello, World!");
    }
    for stalled in [&mut silent, &mut partial] {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut byte))
            .await
            .expect("the stalled handshake was cut");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "cut by the handshake deadline, not before: {:?}",
        started.elapsed()
    );
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_certificate_is_used_by_the_next_connection() {
    let dir = scratch("tls-reload");
    let (old, new) = (pki(&["localhost"]), pki(&["localhost"]));
    let files = old.write(&dir, "live");
    let tls = ServerTls::from_pem_files(&files.chain, &files.key).unwrap();
    let server = tls_server(tls.clone());
    let url = format!("https://localhost:{}/", server.addr.port());

    let trusts_old = trusting(&old.ca);
    let mut response = trusts_old.get(&url).send().await.expect("old certificate");
    assert_eq!(response.text().await.unwrap(), "Hello, World!");
    let refused = trusting(&new.ca).get(&url).send().await;
    assert!(
        matches!(refused, Err(ClientError::Tls(TlsError::Handshake { .. }))),
        "{refused:?}"
    );

    // A broken file is refused and the certificate in use stays.
    std::fs::write(&files.key, "not a key").unwrap();
    assert!(matches!(tls.reload(), Err(ServerTlsError::Pem { .. })));
    let mut response = trusting(&old.ca).get(&url).send().await.expect("kept");
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;

    // The renewed certificate is written over the files and reloaded.
    new.write(&dir, "live");
    tls.reload().expect("reload");
    let mut response = trusting(&new.ca)
        .get(&url)
        .send()
        .await
        .expect("new certificate");
    assert_eq!(response.text().await.unwrap(), "Hello, World!");
    let refused = trusting(&old.ca).get(&url).send().await;
    assert!(
        matches!(refused, Err(ClientError::Tls(TlsError::Handshake { .. }))),
        "{refused:?}"
    );
    // A connection opened before the reload keeps its session.
    let mut response = trusts_old
        .get(&url)
        .send()
        .await
        .expect("pooled connection");
    assert_eq!(response.text().await.unwrap(), "Hello, World!");
    server.stop().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn a_unix_socket_is_served_to_curl_and_removed_at_the_end() {
    let dir = scratch("unix");
    let path = dir.join("tether.sock");
    // A socket file left by a server that is gone is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let bound = path.clone();
    let server = TokioServer::start_on(demo::app(), move || async move {
        Server::bind_unix(&bound, demo::config())
            .await
            .expect("bind the socket")
    });
    // A live one is not.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let second = runtime.block_on(Server::bind_unix(&path, demo::config()));
    assert_eq!(
        second.unwrap_err().kind(),
        std::io::ErrorKind::AddrInUse,
        "a second server on a live socket"
    );
    if let Some(curl) = curl() {
        for target in ["/", "/stream"] {
            let out = Command::new(&curl)
                .args(["-sS", "--unix-socket"])
                .arg(&path)
                .arg(format!("http://localhost{target}"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.stdout.is_empty());
        }
    }
    server.stop().unwrap();
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_listener_bound_by_the_user_is_served() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = TokioServer::start_on(demo::app(), move || async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        Server::from_tcp(listener, demo::config())
    });
    assert_eq!(server.addr, addr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut response = Client::default()
            .get(&format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "Hello, World!");
    });
    server.stop().unwrap();
}
