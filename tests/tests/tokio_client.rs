//! The tokio `Client` against the demo server (bodies of every kind, streaming, the pool,
//! WebSocket) and against small servers written to misbehave: ones that stall, trickle or
//! count connections, for the four timeouts and the pool's limits.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_core::pool::PoolConfig;
use tether_core::time::{ClientTimeouts, TimeoutKind};
use tether_core::ws::{DeflateConfig, WsConfig};
use tether_tests::TokioServer;
use tether_tokio::websocket::Message;
use tether_tokio::{Client, ClientConfig, ClientError, HeaderError, UrlError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn demo() -> TokioServer {
    TokioServer::start(demo::app(), demo::config())
}

fn client_with(edit: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut config = ClientConfig::default();
    edit(&mut config);
    Client::new(config)
}

/// Asserts that no connection of `url`'s origin is in use, being opened or waited for.
fn assert_nothing_held(client: &Client, url: &str) {
    let stats = client.pool_stats(url).unwrap();
    assert_eq!(
        (stats.in_use, stats.opening, stats.waiting),
        (0, 0, 0),
        "{stats:?}"
    );
}

// ---- against the demo server ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reads_status_version_headers_and_body_and_reuses_the_connection() {
    let server = demo();
    let client = Client::default();
    let url = server.url("/");
    for _ in 0..5 {
        let mut response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_11);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/plain; charset=utf-8"
        );
        assert_eq!(response.text().await.unwrap(), "Hello, World!");
    }
    let stats = client.pool_stats(&url).unwrap();
    assert_eq!((stats.idle, stats.in_use), (1, 0), "one connection, reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_from_bytes_text_form_json_and_streams_are_echoed() {
    let server = demo();
    let client = Client::default();
    let url = server.url("/echo");

    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let mut response = client.post(&url).body(bytes.clone()).send().await.unwrap();
    assert_eq!(response.bytes().await.unwrap(), bytes);

    let mut response = client.post(&url).text("héllo").send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "héllo");

    let mut response = client
        .post(&url)
        .form(&[("name", "a b&c"), ("x", "1=2")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(response.text().await.unwrap(), "name=a+b%26c&x=1%3D2");

    let value = serde_json::json!({"list": [1, 2, 3], "text": "ü"});
    let mut response = client
        .post(&url)
        .json(&value)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), value);

    let pieces: Vec<Bytes> = (0..50)
        .map(|i| Bytes::from(format!("piece {i};")))
        .collect();
    let expected: String = (0..50).map(|i| format!("piece {i};")).collect();
    let mut response = client
        .post(&url)
        .header("content-type", "text/plain")
        .body_stream(futures_util::stream::iter(pieces))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), expected);

    let mut response = client
        .post(&url)
        .body("with expect")
        .expect_continue()
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "with expect");
    assert_nothing_held(&client, &url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_server_limit_gets_413_without_being_sent_under_expect() {
    let server = demo();
    let client = Client::default();
    let url = server.url("/echo");
    let mut response = client
        .post(&url)
        .body(vec![b'x'; 2 << 20])
        .expect_continue()
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let _ = response.bytes().await;
    assert_nothing_held(&client, &url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameters_and_streaming_by_chunk() {
    let server = demo();
    let client = Client::default();
    let mut response = client
        .get(&server.url("/stream"))
        .query(&[("n", "2000")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["transfer-encoding"].to_str().unwrap(),
        "chunked"
    );
    let mut text = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks += 1;
        text.extend_from_slice(&chunk);
    }
    assert!(chunks > 1, "delivered piece by piece");
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text.lines().count(), 2000);
    assert_eq!(text.lines().last(), Some("line 1999"));
    assert_eq!(response.chunk().await.unwrap(), None, "stays ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_bodyless_responses_return_their_connection_at_once() {
    let server = demo();
    let client = Client::default();
    let url = server.url("/");
    let response = client
        .request(http::Method::HEAD, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "13");
    // Never read: the connection is already back.
    let stats = client.pool_stats(&url).unwrap();
    assert_eq!((stats.idle, stats.in_use), (1, 0));
    drop(response);
    let mut again = client.get(&url).send().await.unwrap();
    assert_eq!(again.text().await.unwrap(), "Hello, World!");
    assert_eq!(client.pool_stats(&url).unwrap().idle, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_is_a_typed_error_and_the_connection_is_not_reused() {
    let server = demo();
    let client = client_with(|c| c.max_body_size = 1000);
    let url = server.url("/stream?n=1000");
    let mut response = client.get(&url).send().await.unwrap();
    let result = response.bytes().await;
    assert!(
        matches!(result, Err(ClientError::BodyTooLarge(1000))),
        "{result:?}"
    );
    drop(response);
    let stats = client.pool_stats(&url).unwrap();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "half-read: closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_dropped_early_leak_nothing() {
    let server = demo();
    let client = client_with(|c| c.pool.limit = Some(4));
    let url = server.url("/stream?n=100000");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut response = client.get(&url).send().await.unwrap();
            assert!(response.chunk().await.unwrap().is_some());
            // dropped with most of the body unread
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = client.pool_stats(&url).unwrap();
    assert_eq!(
        stats,
        Default::default(),
        "nothing idle, used, opening or waiting"
    );
    // And the pool still works.
    let mut response = client.get(&server.url("/")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "Hello, World!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_refuses_new_requests_and_closes_idle_connections() {
    let server = demo();
    let client = Client::default();
    let url = server.url("/");
    let mut response = client.get(&url).send().await.unwrap();
    response.bytes().await.unwrap();
    assert_eq!(client.pool_stats(&url).unwrap().idle, 1);
    client.close().await;
    assert_eq!(client.pool_stats(&url).unwrap().idle, 0);
    assert!(matches!(
        client.get(&url).send().await,
        Err(ClientError::Closed)
    ));
    assert!(matches!(
        client.ws_connect(&server.url("/ws"), &[]).await,
        Err(ClientError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_unreachable_hosts_are_typed_errors() {
    let client = Client::default();
    for url in ["not a url", "/relative", "ftp://example.com/", "mailto:x@y"] {
        let result = client.get(url).send().await;
        assert!(
            matches!(&result, Err(ClientError::InvalidUrl { url: given, .. }) if given == url),
            "{url}: {result:?}"
        );
    }
    let result = client.get("ftp://example.com/").send().await;
    assert!(
        matches!(
            &result,
            Err(ClientError::InvalidUrl { reason: UrlError::UnsupportedScheme { scheme }, .. })
                if scheme == "ftp"
        ),
        "{result:?}"
    );
    let result = client.get("/relative").send().await;
    assert!(
        matches!(
            result,
            Err(ClientError::InvalidUrl {
                reason: UrlError::NotAbsolute,
                ..
            })
        ),
        "{result:?}"
    );
    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = client
        .get(&format!("http://127.0.0.1:{port}/"))
        .send()
        .await;
    assert!(matches!(result, Err(ClientError::Connect(_))), "{result:?}");
    let result = client
        .get("http://no-such-host.invalid/")
        .timeouts(ClientTimeouts::default().with_total(Some(Duration::from_secs(20))))
        .send()
        .await;
    assert!(matches!(result, Err(ClientError::Dns(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_against_the_demo_with_stream_and_sink() {
    let server = demo();
    let mut config = WsConfig::default();
    config.deflate = Some(DeflateConfig::default());
    config.heartbeat = Some(Duration::from_millis(100));
    let client = Client::default();
    let (mut ws, protocol) = client
        .ws(&server.url("/ws"))
        .protocol("chat")
        .protocol("echo")
        .header("origin", "http://example.test")
        .config(config)
        .connect()
        .await
        .unwrap();
    assert_eq!(
        protocol.as_deref(),
        Some("echo"),
        "the server picks by its own preference"
    );
    ws.send(Message::Text("one".into())).await.unwrap();
    ws.send(Message::Binary(Bytes::from(vec![1u8; 200_000])))
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Some(Message::Text("one".into())));
    assert_eq!(
        next_data(&mut ws).await,
        Some(Message::Binary(Bytes::from(vec![1u8; 200_000])))
    );
    // Heartbeat pings go out every 100 ms and the demo answers: still alive later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ws.send_text("still here").await.unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Some(Message::Text("still here".into()))
    );
    ws.close(1000, "bye").await.unwrap();
    assert_eq!(next_data(&mut ws).await, None);
    assert_eq!(ws.closed().await.code(), 1000);
}

/// The next text or binary message, skipping the pongs that answer our heartbeat.
async fn next_data(ws: &mut tether_tokio::WebSocket) -> Option<Message> {
    loop {
        match ws.next().await? {
            message if message.is_control() => continue,
            message => return Some(message),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_websocket_upgrade_is_a_handshake_error() {
    let server = demo();
    let result = Client::default().ws_connect(&server.url("/"), &[]).await;
    assert!(
        matches!(result, Err(ClientError::WebSocket(_))),
        "{result:?}"
    );
}

// ---- servers that misbehave -------------------------------------------------------------

/// How a test server answers each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers.
    Silent,
    /// Sends the head of a 10-byte body, then stalls.
    HeadThenStall,
    /// Sends a 20-byte body one byte every `gap`.
    Trickle { gap: Duration },
    /// Sends the head and half of an 11-byte body, then the rest after `gap`.
    TwoParts { gap: Duration },
    /// Answers `ok` after `delay`, keep-alive.
    Answer { delay: Duration },
    /// Answers `ok` with `Keep-Alive: timeout=2`, then closes the connection after 2 s idle
    /// (as servers that send the hint do).
    AnswerWithKeepAliveHint,
}

/// Counts of a test server's connections.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
}

async fn misbehaving_server(behaviour: Behaviour) -> (String, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counts = shared.clone();
            counts.accepted.fetch_add(1, Ordering::SeqCst);
            let open = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
            counts.max_open.fetch_max(open, Ordering::SeqCst);
            tokio::spawn(async move {
                serve(stream, behaviour).await;
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, counts)
}

/// Serves requests (heads only, no bodies) on one connection until the client goes away.
async fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    loop {
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        seen.drain(..end);
        match behaviour {
            Behaviour::Silent => {
                // Hold the connection until the client closes it.
                let _ = stream.read(&mut buf).await;
                return;
            }
            Behaviour::HeadThenStall => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
                    .await;
                let _ = stream.read(&mut buf).await;
                return;
            }
            Behaviour::Trickle { gap } => {
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                for _ in 0..20 {
                    tokio::time::sleep(gap).await;
                    if stream.write_all(b"x").await.is_err() {
                        return;
                    }
                }
            }
            Behaviour::AnswerWithKeepAliveHint => {
                let reply =
                    b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=2\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(reply).await.is_err() {
                    return;
                }
                match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            Behaviour::TwoParts { gap } => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                tokio::time::sleep(gap).await;
                if stream.write_all(b" world").await.is_err() {
                    return;
                }
            }
            Behaviour::Answer { delay } => {
                tokio::time::sleep(delay).await;
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

/// Runs `send` and `bytes` with `timeouts`; returns the timeout that fired (or `None` if the
/// request succeeded) and how long it took.
async fn fetch(url: &str, timeouts: ClientTimeouts) -> (Option<TimeoutKind>, Duration) {
    let client = Client::default();
    let started = Instant::now();
    let result = async {
        let mut response = client.get(url).timeouts(timeouts).send().await?;
        response.bytes().await
    }
    .await;
    let kind = match result {
        Ok(_) => None,
        Err(ClientError::Timeout(kind)) => Some(kind),
        Err(other) => panic!("unexpected error {other:?}"),
    };
    (kind, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_trips_sock_read_and_not_early() {
    let (url, _) = misbehaving_server(Behaviour::Silent).await;
    let timeouts = ClientTimeouts::default().with_sock_read(ms(300));
    let (kind, took) = fetch(&url, timeouts).await;
    assert_eq!(kind, Some(TimeoutKind::SockRead));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // The same server with only `total` set: total fires instead.
    let timeouts = ClientTimeouts::NONE.with_total(ms(300));
    let (kind, took) = fetch(&url, timeouts).await;
    assert_eq!(kind, Some(TimeoutKind::Total));
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_after_the_head_trips_sock_read_while_reading() {
    let (url, _) = misbehaving_server(Behaviour::HeadThenStall).await;
    let client = Client::default();
    let timeouts = ClientTimeouts::default().with_sock_read(ms(300));
    let mut response = client.get(&url).timeouts(timeouts).send().await.unwrap();
    assert_eq!(response.status(), 200, "the head arrives in time");
    let started = Instant::now();
    let result = response.bytes().await;
    assert!(
        matches!(result, Err(ClientError::Timeout(TimeoutKind::SockRead))),
        "{result:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    drop(response);
    assert_nothing_held(&client, &url);
    assert_eq!(client.pool_stats(&url).unwrap().idle, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sock_read_resets_on_every_read_and_total_still_bounds_a_trickle() {
    // 20 bytes, one every 50 ms: about 1 s in all, never more than ~50 ms between reads.
    let (url, _) = misbehaving_server(Behaviour::Trickle {
        gap: Duration::from_millis(50),
    })
    .await;
    let timeouts = ClientTimeouts::default().with_sock_read(ms(400));
    let (kind, took) = fetch(&url, timeouts).await;
    assert_eq!(kind, None, "sock_read never fires on a live trickle");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let timeouts = ClientTimeouts::default()
        .with_sock_read(ms(400))
        .with_total(ms(500));
    let (kind, took) = fetch(&url, timeouts).await;
    assert_eq!(kind, Some(TimeoutKind::Total));
    assert!(took >= Duration::from_millis(500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_timeouts_override_the_clients() {
    let (url, _) = misbehaving_server(Behaviour::Answer {
        delay: Duration::from_millis(300),
    })
    .await;
    let client = client_with(|c| c.timeouts = c.timeouts.with_sock_read(ms(100)));
    let result = client.get(&url).send().await;
    assert!(
        matches!(result, Err(ClientError::Timeout(TimeoutKind::SockRead))),
        "{result:?}"
    );
    let mut response = client
        .get(&url)
        .timeouts(ClientTimeouts::default())
        .send()
        .await
        .expect("the override has no sock_read");
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_covers_the_wait_for_an_exhausted_pool() {
    let (url, _) = misbehaving_server(Behaviour::Silent).await;
    let client = client_with(|c| c.pool.limit = Some(1));
    // The only connection is taken by a request the server never answers.
    let holder = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move { client.get(&url).send().await })
    };
    while client.pool_stats(&url).unwrap().in_use == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let result = client
        .get(&url)
        .timeouts(ClientTimeouts::default().with_connect(ms(300)))
        .send()
        .await;
    assert!(
        matches!(result, Err(ClientError::Timeout(TimeoutKind::Connect))),
        "{result:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        client.pool_stats(&url).unwrap().waiting,
        0,
        "the waiter left"
    );
    // `total` covers the pool wait too.
    let result = client
        .get(&url)
        .timeouts(ClientTimeouts::NONE.with_total(ms(200)))
        .send()
        .await;
    assert!(
        matches!(result, Err(ClientError::Timeout(TimeoutKind::Total))),
        "{result:?}"
    );
    holder.abort();
    let _ = holder.await;
    assert_nothing_held(&client, &url);
}

/// Sends `n` GETs to `url` at once and checks that each is answered `ok`.
async fn all_answer_ok(client: &Client, url: &str, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move { client.get(&url).send().await?.text().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_requests_never_open_more_than_the_limit() {
    let (url, counts) = misbehaving_server(Behaviour::Answer {
        delay: Duration::from_millis(5),
    })
    .await;
    let client = client_with(|c| c.pool.limit = Some(10));
    all_answer_ok(&client, &url, 100).await;
    assert!(counts.max_open.load(Ordering::SeqCst) <= 10);
    assert!(
        counts.accepted.load(Ordering::SeqCst) <= 10,
        "connections were reused, not reopened"
    );
    let stats = client.pool_stats(&url).unwrap();
    assert_eq!((stats.in_use, stats.opening, stats.waiting), (0, 0, 0));
    assert!(stats.idle <= 10 && stats.idle >= 1, "{stats:?}");
    // limit_per_host works the same way.
    let (url, counts) = misbehaving_server(Behaviour::Answer {
        delay: Duration::from_millis(5),
    })
    .await;
    let client = client_with(|c| {
        c.pool = PoolConfig::default();
        c.pool.limit_per_host = Some(3);
    });
    all_answer_ok(&client, &url, 30).await;
    assert!(counts.max_open.load(Ordering::SeqCst) <= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_that_give_up_leak_nothing() {
    let (url, _) = misbehaving_server(Behaviour::Answer {
        delay: Duration::from_millis(200),
    })
    .await;
    let client = client_with(|c| c.pool.limit = Some(1));
    let mut dropped = Vec::new();
    for _ in 0..10 {
        let client = client.clone();
        let url = url.clone();
        // Each gives up after 50 ms, most of them while waiting for the one connection.
        dropped.push(tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(50), client.get(&url).send()).await;
        }));
    }
    for task in dropped {
        task.await.unwrap();
    }
    assert_nothing_held(&client, &url);
    let mut response = client
        .get(&url)
        .send()
        .await
        .expect("the pool still serves");
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_expire_after_the_keepalive_timeout() {
    let (url, counts) = misbehaving_server(Behaviour::Answer {
        delay: Duration::ZERO,
    })
    .await;
    let client = client_with(|c| c.pool.keepalive_timeout = Some(Duration::from_millis(200)));
    client.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(client.pool_stats(&url).unwrap().idle, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        client.pool_stats(&url).unwrap().idle,
        0,
        "expired and closed"
    );
    // The server sees the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counts.open.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_keep_alive_hint_shortens_the_idle_life() {
    let (url, counts) = misbehaving_server(Behaviour::AnswerWithKeepAliveHint).await;
    // The client would keep it 15 s; the server said 2 s, so the client keeps it 1 s (a
    // second's margin, so it is never reused just as the server closes it).
    let client = Client::default();
    client.get(&url).send().await.unwrap().text().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.pool_stats(&url).unwrap().idle, 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        client.pool_stats(&url).unwrap().idle,
        0,
        "dropped before the server does"
    );
    let mut response = client.get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 2);
}

/// A server that records each request head it gets and answers `ok`, or a 302 to
/// `redirect_to` for paths starting with `/redirect`.
async fn recording_server(
    redirect_to: Option<String>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            let redirect_to = redirect_to.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                loop {
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
                    seen.drain(..end);
                    let redirect = head
                        .split(' ')
                        .nth(1)
                        .unwrap_or("")
                        .starts_with("/redirect");
                    record.lock().unwrap().push(head);
                    let reply = match (&redirect_to, redirect) {
                        (Some(to), true) => format!(
                            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n"
                        ),
                        _ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned(),
                    };
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, heads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_headers_user_agent_query_and_credentials_across_origins() {
    let (other, other_heads) = recording_server(None).await;
    let (url, heads) = recording_server(Some(format!("{other}/landed"))).await;
    let client = client_with(|c| {
        c.user_agent = "tether-test/1".into();
        c.default_headers
            .insert("x-default", http::HeaderValue::from_static("yes"));
    });
    let mut response = client
        .get(&format!("{url}/first?a=1#fragment"))
        .query(&[("b", "two words"), ("c", "ü")])
        .header("authorization", "Bearer secret")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .header("x-default", "overridden")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.contains("\r\nx-multi: one\r\nx-multi: two\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nx-default: overridden\r\n"), "{head}");
    assert!(!head.contains("x-default: yes"), "{head}");
    assert!(
        head.starts_with("get /first?a=1&b=two+words&c=%c3%bc http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nuser-agent: tether-test/1\r\n"), "{head}");
    assert!(
        head.contains("\r\nauthorization: bearer secret\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nhost: {}\r\n", &url[7..])),
        "{head}"
    );

    // Redirected to another origin: the credentials stay behind, the rest goes along.
    let mut response = client
        .get(&format!("{url}/redirect"))
        .header("authorization", "Bearer secret")
        .header("cookie", "session=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    let landed = other_heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(landed.starts_with("get /landed http/1.1\r\n"), "{landed}");
    assert!(!landed.contains("authorization"), "{landed}");
    assert!(!landed.contains("cookie"), "{landed}");
    assert!(landed.contains("\r\nx-default: yes\r\n"), "{landed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sock_read_does_not_count_the_applications_own_pauses() {
    // The server pauses 400 ms mid-body; the application takes 350 ms over the first piece,
    // so it waits only ~50 ms for the rest: well within a 300 ms `sock_read`.
    let (url, _) = misbehaving_server(Behaviour::TwoParts {
        gap: Duration::from_millis(400),
    })
    .await;
    let client = Client::default();
    let timeouts = ClientTimeouts::default().with_sock_read(ms(300));
    let mut response = client.get(&url).timeouts(timeouts).send().await.unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"hello");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let rest = response.bytes().await.expect("no sock_read timeout");
    assert_eq!(&rest[..], b" world");
    // Without the application's pause, the same server gap trips it.
    let mut response = client.get(&url).timeouts(timeouts).send().await.unwrap();
    let result = response.bytes().await;
    assert!(
        matches!(result, Err(ClientError::Timeout(TimeoutKind::SockRead))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_closes_its_idle_connections() {
    let (url, counts) = misbehaving_server(Behaviour::Answer {
        delay: Duration::ZERO,
    })
    .await;
    let client = Client::default();
    client.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        counts.open.load(Ordering::SeqCst),
        1,
        "kept alive while the client lives"
    );
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        counts.open.load(Ordering::SeqCst),
        0,
        "closed with the client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_cannot_be_sent_fail_the_request_before_it_goes_out() {
    let (url, heads) = recording_server(None).await;
    let client = Client::default();
    let result = client
        .get(&url)
        .header("x-split", "one\r\nx-injected: two")
        .send()
        .await;
    assert!(
        matches!(
            &result,
            Err(ClientError::InvalidHeader { name, source: HeaderError::Value(_) })
                if name == "x-split"
        ),
        "{result:?}"
    );
    let result = client.get(&url).header("bad name", "v").send().await;
    assert!(
        matches!(
            result,
            Err(ClientError::InvalidHeader {
                source: HeaderError::Name(_),
                ..
            })
        ),
        "{result:?}"
    );
    let agent = client_with(|c| c.user_agent = "agent\n".into());
    let result = agent.get(&url).send().await;
    assert!(
        matches!(&result, Err(ClientError::InvalidHeader { name, .. }) if name == "user-agent"),
        "{result:?}"
    );
    let result = client
        .ws(&url.replace("http", "ws"))
        .header("origin", "a\0b")
        .connect()
        .await;
    assert!(
        matches!(&result, Err(ClientError::InvalidHeader { name, .. }) if name == "origin"),
        "{result:?}"
    );
    assert!(heads.lock().unwrap().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_locations_resolve_as_rfc_3986_says() {
    // A network-path reference (`//host:port/path`) keeps the scheme and changes the
    // authority; a query-only one (`?q`) keeps the path.
    let (other, other_heads) = recording_server(None).await;
    let authority = other.strip_prefix("http:").unwrap().to_owned();
    let (url, _) = recording_server(Some(format!("{authority}/landed?via=network-path#f"))).await;
    let mut response = client_with(|_| {})
        .get(&format!("{url}/redirect"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    let landed = other_heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        landed.starts_with("get /landed?via=network-path http/1.1\r\n"),
        "{landed}"
    );

    let (url, heads) = recording_server(Some("?from=redirect".to_owned())).await;
    // The server redirects every `/redirect...` again, so this ends at the limit.
    let result = Client::default()
        .get(&format!("{url}/redirect/page"))
        .send()
        .await;
    assert!(
        matches!(result, Err(ClientError::TooManyRedirects(10))),
        "{result:?}"
    );
    let heads = heads.lock().unwrap();
    assert!(
        heads[1]
            .to_ascii_lowercase()
            .starts_with("get /redirect/page?from=redirect http/1.1\r\n"),
        "{}",
        heads[1]
    );
}
