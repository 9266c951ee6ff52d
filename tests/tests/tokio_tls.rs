//! `https://` and `wss://` in the client, against a local rustls server with a CA made by
//! the test (rcgen): a trusted chain works, an unknown issuer and a wrong name fail with
//! `ClientError::Tls(TlsError::Handshake)` whose source is rustls's own certificate error,
//! and a server that never finishes the handshake trips the `sock_connect` timeout (which
//! covers TLS).
//!
//! The TLS server terminates TLS and forwards the bytes to the demo app served by
//! `tether-tokio`, so HTTP and WebSocket are the real thing behind it.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_core::time::{ClientTimeouts, TimeoutKind};
use tether_tests::pki::{pki, Pki};
use tether_tests::TokioServer;
use tether_tokio::tls::{TlsConfig, TlsConfigError};
use tether_tokio::websocket::Message;
use tether_tokio::{Client, ClientConfig, ClientError, TlsError};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Terminates TLS with `pki` and forwards every connection to `backend`.
async fn tls_proxy(pki: &Pki, backend: SocketAddr) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

fn trusting(ca: &CertificateDer<'static>) -> Client {
    Client::with_tls(
        ClientConfig::default(),
        TlsConfig::with_root_certificates(vec![ca.clone()]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_with_a_trusted_ca() {
    let demo = TokioServer::start(demo::app(), demo::config());
    let pki = pki(&["localhost"]);
    let proxy = tls_proxy(&pki, demo.addr).await;
    let client = trusting(&pki.ca);
    let url = format!("https://localhost:{}/", proxy.port());
    for _ in 0..3 {
        let mut response = client.get(&url).send().await.expect("https GET");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "Hello, World!");
    }
    let stats = client.pool_stats(&url).unwrap();
    assert_eq!(
        (stats.idle, stats.in_use),
        (1, 0),
        "one TLS connection, reused"
    );

    let big = vec![7u8; 300_000];
    let mut echoed = client
        .post(&format!("https://localhost:{}/echo", proxy.port()))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.bytes().await.unwrap(), big);

    let (mut ws, protocol) = client
        .ws_connect(&format!("wss://localhost:{}/ws", proxy.port()), &["echo"])
        .await
        .expect("wss connect");
    assert_eq!(protocol.as_deref(), Some("echo"));
    ws.send_text("over TLS").await.unwrap();
    assert_eq!(ws.recv().await, Some(Message::Text("over TLS".into())));
    ws.close(1000, "done").await.unwrap();
    while ws.recv().await.is_some() {}
    assert_eq!(ws.closed().await.code(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_issuer_is_refused() {
    let demo = TokioServer::start(demo::app(), demo::config());
    let pki = pki(&["localhost"]);
    let proxy = tls_proxy(&pki, demo.addr).await;
    // Mozilla's roots do not include the test's CA.
    let client = Client::default();
    let result = client
        .get(&format!("https://localhost:{}/", proxy.port()))
        .send()
        .await;
    match &result {
        Err(ClientError::Tls(TlsError::Handshake { host, source })) => {
            assert_eq!(host, "localhost");
            assert!(
                matches!(
                    source.downcast_ref::<rustls::Error>(),
                    Some(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer
                    ))
                ),
                "{source:?}"
            );
        }
        other => panic!("expected a TLS handshake error, got {other:?}"),
    }
    let message = result.unwrap_err().to_string();
    assert!(message.contains("UnknownIssuer"), "{message}");
    let stats = client
        .pool_stats(&format!("https://localhost:{}/", proxy.port()))
        .unwrap();
    assert_eq!(
        (stats.idle, stats.in_use, stats.opening),
        (0, 0, 0),
        "nothing leaked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let demo = TokioServer::start(demo::app(), demo::config());
    let pki = pki(&["example.test"]);
    let proxy = tls_proxy(&pki, demo.addr).await;
    let client = trusting(&pki.ca);
    let result = client
        .get(&format!("https://localhost:{}/", proxy.port()))
        .send()
        .await;
    match &result {
        Err(ClientError::Tls(TlsError::Handshake { source, .. })) => assert!(
            matches!(
                source.downcast_ref::<rustls::Error>(),
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{source:?}"
        ),
        other => panic!("expected a TLS handshake error, got {other:?}"),
    }
    let message = result.unwrap_err().to_string();
    assert!(message.contains("not valid for"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_trips_sock_connect() {
    // Accepts TCP and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let pki = pki(&["localhost"]);
    let client = trusting(&pki.ca);
    let timeouts = ClientTimeouts::default().with_sock_connect(Some(Duration::from_millis(300)));
    let started = Instant::now();
    let result = client
        .get(&format!("https://localhost:{port}/"))
        .timeouts(timeouts)
        .send()
        .await;
    assert!(
        matches!(result, Err(ClientError::Timeout(TimeoutKind::SockConnect))),
        "{result:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300), "not early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_root_certificate_is_a_tls_error() {
    let client = Client::with_tls(
        ClientConfig::default(),
        TlsConfig::with_root_certificates(vec![CertificateDer::from(b"not DER".to_vec())]),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let result = client
        .get(&format!("https://localhost:{port}/"))
        .send()
        .await;
    match &result {
        Err(ClientError::Tls(TlsError::Config(source))) => assert!(
            matches!(
                source.downcast_ref::<TlsConfigError>(),
                Some(TlsConfigError::InvalidRootCertificate { index: 0, .. })
            ),
            "{source:?}"
        ),
        other => panic!("expected a TLS configuration error, got {other:?}"),
    }
    let message = result.unwrap_err().to_string();
    assert!(message.contains("invalid root certificate #0"), "{message}");
}
