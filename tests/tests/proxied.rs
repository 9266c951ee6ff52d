//! tether behind real proxies: curl reaches the tokio server through tinyproxy and squid
//! (plain requests in absolute form and `CONNECT` tunnels, with Basic authentication; squid
//! also as an HTTPS proxy, TLS to the proxy) and through Dante (SOCKS5 with
//! username/password, local and proxy-side name resolution). This shows the proxies the
//! client's proxy tests use are set up as those tests expect.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use std::process::Command;
use tether_tests::proxies::{
    dante, squid, squid_with, tinyproxy, SquidAuth, HTTP_PROXY_USER, SOCKS_USER,
};
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

/// Through squid's `http_port` and its `https_port` (an HTTPS proxy, whose certificate is
/// the origin's, for `localhost`): absolute-form requests and `CONNECT` tunnels, to the
/// plain origin and, in a tunnel, to the TLS one (TLS inside TLS).
#[test]
fn curl_reaches_tether_through_squid() {
    let origins = origins();
    let (Some(proxy), Some(_)) = (squid(true, Some(&origins.pki)), curl()) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tether-squid-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = origins.pki.write(&dir, "curl");
    let ca = files.ca.to_string_lossy().into_owned();
    let plain = origins.plain.url("/");
    let secure = format!("https://localhost:{}/", origins.tls.addr.port());
    let (user, password) = HTTP_PROXY_USER;
    let tls_port = proxy.tls_addr.expect("an https_port").port();
    let proxy_ca = vec!["--proxy-cacert".to_string(), ca.clone()];
    for (scheme, host, extra) in [
        ("http", proxy.addr.to_string(), vec![]),
        ("https", format!("localhost:{tls_port}"), proxy_ca),
    ] {
        let via = |credentials: &str| {
            let url = format!("{scheme}://{credentials}{host}");
            [vec!["-x".to_string(), url], extra.clone()].concat()
        };
        let (anonymous, wrong) = (via(""), via(&format!("{user}:wrong@")));
        assert_eq!(fetch(&anonymous, &plain).0, "407", "{scheme} proxy");
        assert_eq!(fetch(&wrong, &plain).0, "407", "{scheme} proxy");
        let authorized = via(&format!("{user}:{password}@"));
        let (code, body) = fetch(&authorized, &plain);
        assert_eq!((code.as_str(), body.as_str()), ("200", "Hello, World!"));
        // Through a CONNECT tunnel, to the plain origin and to the TLS one.
        let tunnel = [authorized.clone(), vec!["-p".into()]].concat();
        let (code, body) = fetch(&tunnel, &plain);
        assert_eq!((code.as_str(), body.as_str()), ("200", "Hello, World!"));
        let tls = [authorized, vec!["--cacert".into(), ca.clone()]].concat();
        let (code, body) = fetch(&tls, &secure);
        assert_eq!((code.as_str(), body.as_str()), ("200", "Hello, World!"));
    }
    let _ = std::fs::remove_dir_all(&dir);
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

// ---- tether's own client through the same proxies ----

use std::sync::Arc;
use std::time::Duration;
use tether_tests::pki::{pki, Pki};
use tether_tokio::auth::{Authenticator, DigestAuth};
use tether_tokio::proxy::{Proxy, ProxyError, Socks5Reply};
use tether_tokio::tls::{ServerTls, TlsConfig};
use tether_tokio::websocket::Message;
use tether_tokio::{Client, ClientConfig, ClientError, Server};

/// The demo over plain HTTP and over TLS (for `localhost`), and a client through `proxy`
/// trusting the TLS one's CA.
struct Origins {
    plain: TokioServer,
    tls: TokioServer,
    ca: rustls::pki_types::CertificateDer<'static>,
    /// The TLS one's certificates, which an HTTPS proxy on loopback serves too.
    pki: Pki,
}

fn origins() -> Origins {
    let pki = pki(&["localhost"]);
    let tls = ServerTls::from_der(pki.chain.clone(), pki.key.clone_key()).unwrap();
    Origins {
        plain: TokioServer::start(demo::app(), demo::config()),
        tls: TokioServer::start_on(demo::app(), move || async move {
            Server::bind("127.0.0.1:0".parse().unwrap(), demo::config())
                .await
                .unwrap()
                .tls(tls)
        }),
        ca: pki.ca.clone(),
        pki,
    }
}

fn client_via(proxy: &str, ca: &rustls::pki_types::CertificateDer<'static>) -> Client {
    let mut config = ClientConfig::default().proxy(Proxy::parse(proxy).unwrap());
    config.timeouts.sock_connect = Some(Duration::from_secs(2));
    Client::with_tls(config, TlsConfig::with_root_certificates(vec![ca.clone()]))
}

/// A POST body, GETs, https, and a WebSocket over wss, all through `proxy`; then the pool
/// holds only idle connections, one per route where the proxy keeps connections open
/// (`keeps_plain`: tinyproxy closes a client's connection after each forwarded response,
/// squid keeps it; tunnels stay).
async fn exercise(client: &Client, origins: &Origins, keeps_plain: bool) {
    // The POST first, on a new connection: a POST is not retried on a reused connection
    // that the proxy closed under it (it may have been received).
    let body = vec![9u8; 200_000];
    let mut echoed = client
        .post(&origins.plain.url("/echo"))
        .body(body.clone())
        .send()
        .await
        .expect("POST through the proxy");
    assert_eq!(echoed.bytes().await.unwrap(), body);
    let plain = origins.plain.url("/");
    for _ in 0..2 {
        let mut response = client
            .get(&plain)
            .send()
            .await
            .expect("http through the proxy");
        assert_eq!(response.text().await.unwrap(), "Hello, World!");
    }
    let secure = format!("https://localhost:{}/", origins.tls.addr.port());
    for _ in 0..2 {
        let mut response = client
            .get(&secure)
            .send()
            .await
            .expect("https through the proxy");
        assert_eq!(response.text().await.unwrap(), "Hello, World!");
    }
    let ws = format!("wss://localhost:{}/ws", origins.tls.addr.port());
    let (mut socket, protocol) = client.ws_connect(&ws, &["echo"]).await.expect("wss");
    assert_eq!(protocol.as_deref(), Some("echo"));
    socket.send_text("through the proxy").await.unwrap();
    assert_eq!(
        socket.recv().await,
        Some(Message::Text("through the proxy".into()))
    );
    socket.close(1000, "done").await.unwrap();
    while socket.recv().await.is_some() {}
    let stats = client.pool_stats(&secure).expect("a pooled route");
    assert_eq!((stats.idle, stats.in_use), (1, 0), "one tunnel, reused");
    let stats = client.pool_stats(&plain).expect("a pooled route");
    assert_eq!(stats.in_use, 0);
    if keeps_plain {
        assert_eq!(stats.idle, 1, "one connection, reused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_through_tinyproxy() {
    let Some(proxy) = tinyproxy(true) else {
        return;
    };
    let origins = origins();
    let (user, password) = HTTP_PROXY_USER;
    let client = client_via(
        &format!("http://{user}:{password}@{}", proxy.addr),
        &origins.ca,
    );
    exercise(&client, &origins, false).await;

    // Wrong credentials: the proxy's refusal (tinyproxy answers wrong credentials with 401,
    // missing ones with 407), as the response of a plain request (the forward proxy's
    // answer is the response) and as a typed error for a tunnel (the CONNECT refused).
    let wrong = client_via(&format!("http://{user}:wrong@{}", proxy.addr), &origins.ca);
    let response = wrong.get(&origins.plain.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    drop(response);
    let secure = format!("https://localhost:{}/", origins.tls.addr.port());
    match wrong.get(&secure).send().await {
        Err(ClientError::Proxy(ProxyError::Refused { status, .. })) => assert_eq!(status, 401),
        other => panic!("{other:?}"),
    }
    let anonymous = client_via(&format!("http://{}", proxy.addr), &origins.ca);
    match anonymous.get(&secure).send().await {
        Err(ClientError::Proxy(ProxyError::Refused { status, headers })) => {
            assert_eq!(status, 407);
            assert!(headers.contains_key("proxy-authenticate"), "{headers:?}");
        }
        other => panic!("{other:?}"),
    }
    let stats = wrong.pool_stats(&secure).unwrap_or_default();
    assert_eq!(stats.in_use, 0, "no pool slot leaked");
}

/// Through squid as an HTTP proxy and as an HTTPS one (`https://` proxy URL: TLS to the
/// proxy, trusted through the same test CA, then forwarded requests and `CONNECT` tunnels
/// inside that TLS). Wrong credentials: squid's 407 as the response of a plain request, and
/// as a typed error for a tunnel, with the challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_through_squid() {
    let origins = origins();
    let Some(proxy) = squid(true, Some(&origins.pki)) else {
        return;
    };
    let (user, password) = HTTP_PROXY_USER;
    let tls_port = proxy.tls_addr.expect("an https_port").port();
    let plain = origins.plain.url("/");
    let secure = format!("https://localhost:{}/", origins.tls.addr.port());
    for (scheme, host) in [
        ("http", proxy.addr.to_string()),
        ("https", format!("localhost:{tls_port}")),
    ] {
        let via = format!("{scheme}://{host}");
        let client = client_via(&format!("{scheme}://{user}:{password}@{host}"), &origins.ca);
        exercise(&client, &origins, true).await;

        let wrong = client_via(&format!("{scheme}://{user}:wrong@{host}"), &origins.ca);
        let response = wrong.get(&plain).send().await.unwrap();
        assert_eq!(response.status(), 407, "{via}");
        assert!(response.headers().contains_key("proxy-authenticate"));
        drop(response);
        match wrong.get(&secure).send().await {
            Err(ClientError::Proxy(ProxyError::Refused { status, headers })) => {
                assert_eq!(status, 407, "{via}");
                assert!(headers.contains_key("proxy-authenticate"), "{headers:?}");
            }
            other => panic!("{via}: {other:?}\n{}", proxy.log()),
        }
        for url in [&plain, &secure] {
            let stats = wrong.pool_stats(url).unwrap_or_default();
            assert_eq!(stats.in_use, 0, "no pool slot leaked ({via}, {url})");
        }
    }
}

/// squid asking for Digest (its `digest_file_auth`), answered by a `DigestAuth` set on the
/// proxy: the forwarded requests' `407` and the `CONNECT` tunnels' `407` (answered on a new
/// connection), over plain HTTP and to squid's `https_port`; a wrong password is the 407
/// response, or the typed refusal of the tunnel, and leaks no pool slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_answers_squids_digest_challenges() {
    let origins = origins();
    let Some(proxy) = squid_with(SquidAuth::Digest, Some(&origins.pki)) else {
        return;
    };
    let (user, password) = HTTP_PROXY_USER;
    let tls_port = proxy.tls_addr.expect("an https_port").port();
    let plain = origins.plain.url("/");
    let secure = format!("https://localhost:{}/", origins.tls.addr.port());
    for url in [
        proxy.addr.to_string(),
        format!("https://localhost:{tls_port}"),
    ] {
        let digest: Arc<dyn Authenticator> = Arc::new(DigestAuth::new(user, password));
        let proxied = Proxy::parse(&url).unwrap().with_auth(digest);
        let mut config = ClientConfig::default().proxy(proxied);
        config.timeouts.sock_connect = Some(Duration::from_secs(5));
        let tls = TlsConfig::with_root_certificates(vec![origins.ca.clone()]);
        let client = Client::with_tls(config, tls);
        exercise(&client, &origins, true).await;

        let wrong: Arc<dyn Authenticator> = Arc::new(DigestAuth::new(user, "wrong"));
        let wrong_proxy = Proxy::parse(&url).unwrap().with_auth(wrong);
        let tls = TlsConfig::with_root_certificates(vec![origins.ca.clone()]);
        let wrong = Client::with_tls(ClientConfig::default().proxy(wrong_proxy), tls);
        let response = wrong.get(&plain).send().await.unwrap();
        assert_eq!(response.status(), 407, "{url}: {}", proxy.log());
        drop(response);
        match wrong.get(&secure).send().await {
            Err(ClientError::Proxy(ProxyError::Refused { status, .. })) => {
                assert_eq!(status, 407, "{url}")
            }
            other => panic!("{url}: {other:?}"),
        }
        for target in [&plain, &secure] {
            let stats = wrong.pool_stats(target).unwrap_or_default();
            assert_eq!(stats.in_use, 0, "no pool slot leaked ({url}, {target})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_through_dante() {
    let Some(proxy) = dante(true) else {
        return;
    };
    let origins = origins();
    let (user, password) = SOCKS_USER;
    for scheme in ["socks5", "socks5h"] {
        let url = format!("{scheme}://{user}:{password}@{}", proxy.addr);
        exercise(&client_via(&url, &origins.ca), &origins, true).await;
    }
    let wrong = client_via(
        &format!("socks5h://{user}:wrong@{}", proxy.addr),
        &origins.ca,
    );
    let url = origins.plain.url("/");
    match wrong.get(&url).send().await {
        Err(ClientError::Proxy(ProxyError::AuthenticationFailed { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(wrong.pool_stats(&url).unwrap_or_default().in_use, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_stalls_or_closes_is_a_typed_error() {
    let origins = origins();
    let url = origins.plain.url("/");
    // Accepts and never answers: the sock_connect timeout covers the handshake.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_addr = stalled.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            held.push(socket);
        }
    });
    // Reads the greeting and closes.
    let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing_addr = closing.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = closing.accept().await {
            let mut greeting = [0u8; 3];
            let _ = tokio::io::AsyncReadExt::read_exact(&mut socket, &mut greeting).await;
        }
    });
    let client = client_via(&format!("socks5://{stalled_addr}"), &origins.ca);
    let started = std::time::Instant::now();
    match client.get(&url).send().await {
        Err(ClientError::Timeout(kind)) => {
            assert_eq!(kind, tether_core::time::TimeoutKind::SockConnect)
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(client.pool_stats(&url).unwrap_or_default().in_use, 0);
    let client = client_via(&format!("socks5://{closing_addr}"), &origins.ca);
    match client.get(&url).send().await {
        Err(ClientError::Proxy(ProxyError::Closed)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(client.pool_stats(&url).unwrap_or_default().in_use, 0);
}

/// A proxy that cannot reach the target refuses, and the refusal is typed: Dante's SOCKS5
/// reply "connection refused" (RFC 1928 §6, `X'05'`) for a closed port, with local and
/// proxy-side resolution; tinyproxy's and squid's non-2xx answer to the `CONNECT`, with its
/// status. A plain request forwarded to the closed port gets the proxy's error response,
/// which is the answer (the proxy, not the origin, sent it). No pool slot is left in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_cannot_reach_the_target_refuses_with_a_typed_error() {
    let origins = origins();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let plain = format!("http://127.0.0.1:{closed}/");
    let secure = format!("https://localhost:{closed}/");
    if let Some(proxy) = dante(true) {
        let (user, password) = SOCKS_USER;
        for scheme in ["socks5", "socks5h"] {
            let client = client_via(
                &format!("{scheme}://{user}:{password}@{}", proxy.addr),
                &origins.ca,
            );
            for url in [&plain, &secure] {
                match client.get(url).send().await {
                    Err(ClientError::Proxy(ProxyError::Socks5(reply))) => {
                        assert_eq!(reply, Socks5Reply::ConnectionRefused, "{scheme} {url}")
                    }
                    other => panic!("{scheme} {url}: {other:?}\n{}", proxy.log()),
                }
                assert_eq!(client.pool_stats(url).unwrap_or_default().in_use, 0);
            }
        }
    }
    let (user, password) = HTTP_PROXY_USER;
    let http_proxies = [("tinyproxy", tinyproxy(true)), ("squid", squid(true, None))];
    for (name, proxy) in http_proxies {
        let Some(proxy) = proxy else {
            continue;
        };
        let client = client_via(
            &format!("http://{user}:{password}@{}", proxy.addr),
            &origins.ca,
        );
        match client.get(&secure).send().await {
            Err(ClientError::Proxy(ProxyError::Refused { status, .. })) => {
                assert!(status.is_server_error(), "{name}: {status}")
            }
            other => panic!("{name}: {other:?}\n{}", proxy.log()),
        }
        let response = client.get(&plain).send().await.expect("the proxy's answer");
        assert!(response.status().is_server_error(), "{name}: {response:?}");
        drop(response);
        for url in [&plain, &secure] {
            let stats = client.pool_stats(url).unwrap_or_default();
            assert_eq!(stats.in_use, 0, "no pool slot leaked ({name}, {url})");
        }
    }
}

/// The async-std/smol adapter's client through Dante too (same shared layer, its own
/// connector: TCP, resolution and TLS over the tunnel from async-net and futures-rustls).
#[test]
fn the_smol_client_through_dante() {
    let Some(proxy) = dante(true) else {
        return;
    };
    let origins = origins();
    let (user, password) = SOCKS_USER;
    let via = Proxy::parse(&format!("socks5://{user}:{password}@{}", proxy.addr)).unwrap();
    let client = tether_async_std::Client::with_spawner(
        ClientConfig::default().proxy(via),
        tether_async_std::tls::TlsConfig::with_root_certificates(vec![origins.ca.clone()]),
        tether_async_std::Spawner::smol(),
    );
    smol::block_on(async {
        let secure = format!("https://localhost:{}/", origins.tls.addr.port());
        for url in [origins.plain.url("/"), secure] {
            let mut response = client.get(&url).send().await.expect("through Dante");
            assert_eq!(response.text().await.unwrap(), "Hello, World!");
        }
    });
}

/// A request or a WebSocket that names its own proxy, on a client with none (aiohttp's
/// per-request `proxy=`): aiohttp's redirect chain (absolute paths, relative paths, full
/// URLs) through tinyproxy, Dante, squid and squid's HTTPS port, and a wss WebSocket
/// through each. Nothing is pooled on the direct route; a request whose named proxy closes
/// fails with the proxy's error, which shows the named proxy is the one used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_websockets_name_their_own_proxy() {
    let origins = origins();
    let (Some(http_proxy), Some(socks), Some(squid)) = (
        tinyproxy(true),
        dante(true),
        squid(true, Some(&origins.pki)),
    ) else {
        return;
    };
    let Some(peer) = tether_tests::client_suite::peer_aiohttp_server() else {
        return;
    };
    let direct = Client::with_tls(
        ClientConfig::default(),
        TlsConfig::with_root_certificates(vec![origins.ca.clone()]),
    );
    let (user, password) = HTTP_PROXY_USER;
    let (socks_user, socks_password) = SOCKS_USER;
    let squid_tls = squid.tls_addr.expect("an https_port").port();
    let proxies = [
        format!("http://{user}:{password}@{}", http_proxy.addr),
        format!("socks5h://{socks_user}:{socks_password}@{}", socks.addr),
        format!("http://{user}:{password}@{}", squid.addr),
        format!("https://{user}:{password}@localhost:{squid_tls}"),
    ];
    let chain = peer.url("/redirect/6");
    for url in &proxies {
        let proxy = Proxy::parse(url).unwrap();
        let mut response = direct
            .get(&chain)
            .proxy(proxy.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("redirects through {url}: {e:?}"));
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "final");
        let ws = format!("wss://localhost:{}/ws", origins.tls.addr.port());
        let (mut socket, protocol) = direct
            .ws(&ws)
            .protocol("echo")
            .proxy(proxy)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("wss through {url}: {e:?}"));
        assert_eq!(protocol.as_deref(), Some("echo"));
        socket.send_text("named proxy").await.unwrap();
        assert_eq!(
            socket.recv().await,
            Some(Message::Text("named proxy".into()))
        );
        socket.close(1000, "done").await.unwrap();
        while socket.recv().await.is_some() {}
    }
    let stats = direct.pool_stats(&chain).unwrap_or_default();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "nothing went direct");

    let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing_addr = closing.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = closing.accept().await {
            drop(socket);
        }
    });
    let named = Proxy::parse(&format!("socks5://{closing_addr}")).unwrap();
    match direct.get(&chain).proxy(named).send().await {
        Err(ClientError::Proxy(ProxyError::Closed)) => {}
        other => panic!("{other:?}"),
    }
}
