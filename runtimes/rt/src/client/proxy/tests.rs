//! Proxy URLs, `NO_PROXY` with curl's rules, the environment, and a tunnel opened over an
//! in-memory pipe to a scripted proxy.

use super::*;
use crate::io::{Read, Write};
use crate::runtime::test_support::{rt, TokioIo};
use std::collections::HashMap;
use tether_core::proxy::ProxyError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn proxy_urls() {
    let proxy = Proxy::parse("http://us%40er:p%3Ass@Proxy.Example:3128/").unwrap();
    assert_eq!(proxy.scheme(), ProxyScheme::Http);
    assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
    assert_eq!(proxy.credentials(), Some(("us@er", "p:ss")));
    assert!(
        !format!("{proxy:?}").contains("p:ss"),
        "no password in Debug"
    );

    let defaults = [
        ("proxy.example", ProxyScheme::Http, 80),
        ("https://proxy.example", ProxyScheme::Https, 443),
        ("socks5://proxy.example", ProxyScheme::Socks5, 1080),
        ("SOCKS5H://proxy.example", ProxyScheme::Socks5h, 1080),
    ];
    for (url, scheme, port) in defaults {
        let proxy = Proxy::parse(url).unwrap();
        assert_eq!((proxy.scheme(), proxy.port()), (scheme, port), "{url}");
        assert_eq!(proxy.credentials(), None);
    }
    let v6 = Proxy::parse("socks5://[::1]:9050").unwrap();
    assert_eq!((v6.host(), v6.port()), ("::1", 9050));
    assert_eq!(v6.to_string(), "socks5://[::1]:9050");

    assert_eq!(
        Proxy::parse("ftp://proxy"),
        Err(ProxyUrlError::UnsupportedScheme("ftp".into()))
    );
    for bad in ["http://", "http://:80", "http://[::1", "http://::1:80"] {
        assert_eq!(Proxy::parse(bad), Err(ProxyUrlError::Malformed), "{bad}");
    }
    for bad in ["http://p:0", "http://p:65536", "http://p:x"] {
        assert_eq!(Proxy::parse(bad), Err(ProxyUrlError::InvalidPort), "{bad}");
    }
    assert_eq!(
        Proxy::parse("http://%ff:x@p"),
        Err(ProxyUrlError::InvalidCredentials)
    );
}

#[test]
fn no_proxy_follows_curl() {
    let list = NoProxy::parse(" .example.com, localhost ,10.0.0.0/8, ::1, [fd00::]/8, other:8080");
    for direct in [
        "example.com",
        "api.example.com",
        "API.Example.COM.",
        "localhost",
        "10.1.2.3",
        "::1",
        "[::1]",
        "fd12::1",
        "other",
    ] {
        assert!(list.matches(direct), "{direct}");
    }
    for proxied in [
        "notexample.com",
        "example.org",
        "localhost.localdomain",
        "11.0.0.1",
        "::2",
        "fe80::1",
    ] {
        assert!(!list.matches(proxied), "{proxied}");
    }
    assert!(NoProxy::parse("*").matches("anything"));
    assert!(!NoProxy::parse("").matches("anything"));
    assert!(NoProxy::parse("192.168.1.7").matches("192.168.1.7"));
    assert!(!NoProxy::parse("192.168.1.7").matches("192.168.1.8"));
}

#[test]
fn the_environment_as_curl_reads_it() {
    let env = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxySettings::from_lookup(move |name| map.get(name).cloned())
    };
    let settings = env(&[
        ("http_proxy", "http://lower:3128"),
        ("HTTP_PROXY", "http://upper:3128"),
        ("HTTPS_PROXY", "http://secure:3128"),
        ("ALL_PROXY", "socks5h://fallback"),
        ("NO_PROXY", "internal.example"),
    ]);
    let host = |scheme: &str, host: &str| {
        settings
            .proxy_for(scheme, host)
            .map(|p| p.host().to_string())
    };
    assert_eq!(host("http", "a.example").as_deref(), Some("lower"));
    assert_eq!(host("ws", "a.example").as_deref(), Some("lower"));
    assert_eq!(host("wss", "a.example").as_deref(), Some("secure"));
    assert_eq!(host("ftp", "a.example").as_deref(), Some("fallback"));
    assert_eq!(host("https", "db.internal.example"), None);

    // Uppercase HTTP_PROXY is read, except in a CGI program (httpoxy).
    let upper = env(&[("HTTP_PROXY", "http://upper:1")]);
    assert_eq!(upper.proxy_for("http", "x").map(Proxy::host), Some("upper"));
    let cgi = env(&[("HTTP_PROXY", "http://upper:1"), ("REQUEST_METHOD", "GET")]);
    assert_eq!(cgi.proxy_for("http", "x"), None);
    // Empty and unparsable values are ignored.
    let broken = env(&[("http_proxy", ""), ("https_proxy", "gopher://x")]);
    assert_eq!(broken, ProxySettings::default());
}

/// A scripted proxy on the other end of a pipe: reads until `expect` has arrived, then
/// answers `answer`; returns what it read.
async fn scripted_proxy(
    mut end: tokio::io::DuplexStream,
    expect: usize,
    answer: &'static [u8],
) -> (Vec<u8>, tokio::io::DuplexStream) {
    let mut got = vec![0; expect];
    end.read_exact(&mut got).await.unwrap();
    end.write_all(answer).await.unwrap();
    (got, end)
}

#[tokio::test]
async fn a_connect_tunnel_keeps_what_the_target_sent_first() {
    let (ours, theirs) = tokio::io::duplex(4096);
    let request = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
        proxy-authorization: Basic dTpw\r\n\r\n";
    let proxy_side = tokio::spawn(scripted_proxy(
        theirs,
        request.len(),
        b"HTTP/1.1 200 OK\r\n\r\nhello from the target",
    ));
    let proxy = Proxy::parse("http://u:p@proxy:3128").unwrap();
    let rt = rt();
    let mut tunnel = open_tunnel(
        &*rt,
        Box::new(TokioIo(ours)),
        &proxy,
        "example.com",
        443,
        None,
    )
    .await
    .expect("tunnel");
    let (got, mut theirs) = proxy_side.await.unwrap();
    assert_eq!(got, request);
    let mut first = vec![0; 21];
    let mut filled = 0;
    while filled < first.len() {
        filled += std::future::poll_fn(|cx| {
            std::pin::Pin::new(&mut tunnel).poll_read(cx, &mut first[filled..])
        })
        .await
        .unwrap();
    }
    assert_eq!(first, b"hello from the target");
    // The tunnel writes through.
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut tunnel).poll_write(cx, b"ping"))
        .await
        .unwrap();
    let mut ping = [0; 4];
    theirs.read_exact(&mut ping).await.unwrap();
    assert_eq!(&ping, b"ping");
}

#[tokio::test]
async fn socks5_refusals_are_typed_errors() {
    let (ours, theirs) = tokio::io::duplex(4096);
    // Greeting (3 bytes), then the request for 192.0.2.1:80 (10 bytes).
    let proxy_side = tokio::spawn(async move {
        let (_, mut end) = scripted_proxy(theirs, 3, b"\x05\x00").await;
        let mut request = [0; 10];
        end.read_exact(&mut request).await.unwrap();
        end.write_all(b"\x05\x05\x00\x01\0\0\0\0\0\0")
            .await
            .unwrap();
        request
    });
    let proxy = Proxy::parse("socks5://proxy").unwrap();
    let rt = rt();
    let outcome = open_tunnel(&*rt, Box::new(TokioIo(ours)), &proxy, "192.0.2.1", 80, None).await;
    assert!(matches!(
        outcome,
        Err(ProxyError::Socks5(
            tether_core::proxy::Socks5Reply::ConnectionRefused
        ))
    ));
    assert_eq!(
        proxy_side.await.unwrap(),
        *b"\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50"
    );
}
