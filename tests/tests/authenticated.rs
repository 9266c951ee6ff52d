//! The client's authenticators against servers we did not write: Digest against Apache
//! httpd's `mod_auth_digest` (MD5, a nonce lifetime that makes nonces go stale) and lighttpd's
//! `mod_auth` (SHA-256 and MD5), directly and through tinyproxy and Dante; the shared bearer
//! refresh against an aiohttp server with 50 concurrent requests; a WebSocket handshake
//! authenticated against aiohttp.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tether_tests::auth_servers::{apache_digest, lighttpd_digest, DIGEST_USER, HELLO};
use tether_tests::proxies::{dante, tinyproxy, HTTP_PROXY_USER, SOCKS_USER};
use tether_tokio::auth::{Authenticator, BasicAuth, BearerAuth, DigestAuth};
use tether_tokio::proxy::Proxy;
use tether_tokio::{Client, ClientConfig};

fn digest() -> Arc<dyn Authenticator> {
    let (user, password) = DIGEST_USER;
    Arc::new(DigestAuth::new(user, password))
}

/// GETs `url` twice and POSTs a body to `echo` (when given) with `client`, all answered 200
/// with the right content.
async fn fetch_protected(client: &Client, url: &str, echo: Option<&str>) {
    for _ in 0..2 {
        let mut response = client.get(url).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.text().await.unwrap(), HELLO);
    }
    if let Some(echo) = echo {
        let mut response = client
            .post(echo)
            .text("replayed after the challenge")
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200, "{echo}");
        assert_eq!(
            response.text().await.unwrap(),
            "replayed after the challenge"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_md5_against_apache() {
    let Some(apache) = apache_digest() else {
        return;
    };
    let client = Client::new(ClientConfig::default().auth(digest()));
    let private = apache.url("/private/hello.txt");
    fetch_protected(&client, &private, Some(&apache.url("/private/echo"))).await;
    // A wrong password: answered once more, then the 401 is the response.
    let wrong: Arc<dyn Authenticator> = Arc::new(DigestAuth::new(DIGEST_USER.0, "wrong"));
    let response = client.get(&private).auth(wrong).send().await.unwrap();
    assert_eq!(response.status(), 401, "{}", apache.log());
    // Without an authenticator: the challenge itself.
    let plain = Client::new(ClientConfig::default());
    let response = plain.get(&private).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Digest "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_nonce_from_apache_is_answered_again() {
    let Some(apache) = apache_digest() else {
        return;
    };
    let client = Client::new(ClientConfig::default().auth(digest()));
    let stale = apache.url("/stale/hello.txt");
    let mut response = client.get(&stale).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
    // The nonce expires after a second: the next answer is refused as stale, then
    // answered with the new nonce.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut response = client.get(&stale).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", apache.log());
    assert_eq!(response.text().await.unwrap(), HELLO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_sha256_and_md5_against_lighttpd() {
    for algorithm in ["SHA-256", "MD5"] {
        let Some(lighttpd) = lighttpd_digest(algorithm) else {
            return;
        };
        let client = Client::new(ClientConfig::default().auth(digest()));
        fetch_protected(&client, &lighttpd.url("/private/hello.txt"), None).await;
        let plain = Client::new(ClientConfig::default());
        let response = plain
            .get(&lighttpd.url("/private/hello.txt"))
            .send()
            .await
            .unwrap();
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(&format!("algorithm={algorithm}"))
                || challenge.contains(&format!("algorithm=\"{algorithm}\"")),
            "{challenge}"
        );
    }
}

/// Digest and Basic to the origin with each proxy's own credentials: the two kinds of
/// authentication do not mix. tinyproxy closes a client connection after each forwarded
/// response without saying so; a POST (not retried on a reused connection that may have
/// delivered it) is sent through Dante's tunnels only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_through_tinyproxy_and_dante() {
    let (Some(apache), Some(http_proxy), Some(socks)) =
        (apache_digest(), tinyproxy(true), dante(true))
    else {
        return;
    };
    let (user, password) = HTTP_PROXY_USER;
    let (socks_user, socks_password) = SOCKS_USER;
    let echo = apache.url("/private/echo");
    for (proxy, echo) in [
        (
            format!("http://{user}:{password}@{}", http_proxy.addr),
            None,
        ),
        (
            format!("socks5h://{socks_user}:{socks_password}@{}", socks.addr),
            Some(echo.as_str()),
        ),
    ] {
        let config = ClientConfig::default()
            .proxy(Proxy::parse(&proxy).unwrap())
            .auth(digest());
        let client = Client::new(config);
        let private = apache.url("/private/hello.txt");
        fetch_protected(&client, &private, echo).await;
        // Basic to Apache's Digest realm is refused, whatever the proxy.
        let basic: Arc<dyn Authenticator> = Arc::new(BasicAuth::new(user, password));
        let response = client.get(&private).auth(basic).send().await.unwrap();
        assert_eq!(response.status(), 401, "{proxy}");
    }
}

/// Basic through each proxy, both ways an authenticator can serve: to the origin (aiohttp
/// decodes it) through tinyproxy and Dante, and to tinyproxy itself (its Basic check) as the
/// proxy's authenticator, for forwarded requests and `CONNECT` tunnels alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_through_tinyproxy_and_dante() {
    let (Some(http_proxy), Some(socks)) = (tinyproxy(true), dante(true)) else {
        return;
    };
    let Some(peer) = tether_tests::client_suite::peer_aiohttp_server() else {
        return;
    };
    let (user, password) = HTTP_PROXY_USER;
    let (socks_user, socks_password) = SOCKS_USER;
    let proxy_basic: Arc<dyn Authenticator> = Arc::new(BasicAuth::new(user, password));
    let proxies = [
        Proxy::parse(&http_proxy.addr.to_string())
            .unwrap()
            .with_auth(proxy_basic),
        Proxy::parse(&format!(
            "socks5h://{socks_user}:{socks_password}@{}",
            socks.addr
        ))
        .unwrap(),
    ];
    let url = peer.url("/basic");
    for proxy in proxies {
        let origin_basic: Arc<dyn Authenticator> = Arc::new(BasicAuth::new("alice", "s3cret"));
        let config = ClientConfig::default()
            .proxy(proxy.clone())
            .auth(origin_basic);
        let client = Client::new(config);
        for _ in 0..2 {
            let mut response = client.get(&url).send().await.expect("through the proxy");
            assert_eq!(response.status(), 200, "{proxy}");
            assert_eq!(response.text().await.unwrap(), "basic ok");
        }
        let wrong: Arc<dyn Authenticator> = Arc::new(BasicAuth::new("alice", "wrong"));
        let response = client.get(&url).auth(wrong).send().await.unwrap();
        assert_eq!(response.status(), 401, "{proxy}");
    }
}

/// 50 requests meet an expired token at once; one refresh (which rotates the server's token,
/// so a second refresh would break the first's token) serves them all. (A request that
/// starts after the refresh has ended sends the new token at once: the server counts one
/// 401 per request at most.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_share_one_bearer_refresh() {
    let Some(peer) = tether_tests::client_suite::peer_aiohttp_server() else {
        return;
    };
    let refreshes = Arc::new(AtomicUsize::new(0));
    let (counted, rotate) = (refreshes.clone(), peer.url("/bearer/rotate"));
    let token_client = Client::new(ClientConfig::default());
    let bearer = Arc::new(
        BearerAuth::refreshing(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let (client, rotate) = (token_client.clone(), rotate.clone());
            async move {
                // Slow, as a token endpoint is: every request meets the old token first.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut response = client.post(&rotate).send().await?;
                response.text().await
            }
        })
        .with_token("fresh-0")
        .unwrap(),
    );
    let client = Client::new(ClientConfig::default().auth(bearer.clone()));
    let url = peer.url("/bearer");
    let requests = (0..50).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let mut response = client.get(&url).send().await?;
            Ok::<_, tether_tokio::ClientError>((response.status(), response.text().await?))
        })
    });
    for answer in futures_util::future::join_all(requests).await {
        let (status, text) = answer.unwrap().unwrap();
        assert_eq!((status.as_u16(), text.as_str()), (200, "bearer ok"));
    }
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(bearer.refreshes(), 1);
    let mut stats = client.get(&peer.url("/bearer/stats")).send().await.unwrap();
    let stats: serde_json::Value = serde_json::from_str(&stats.text().await.unwrap()).unwrap();
    assert_eq!(stats["ok"], 50);
    let unauthorized = stats["unauthorized"].as_u64().unwrap();
    assert!((1..=50).contains(&unauthorized), "{stats}");
}
