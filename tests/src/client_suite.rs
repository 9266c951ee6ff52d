//! The client behaviour suite, written once and run against every driver (tokio,
//! async-std, smol...): the pooled [`tether_rt::Client`] as each runtime adapter builds it
//! (its own DNS, TCP and TLS `Connector`, its own timer and tasks), against the demo
//! server (bodies of every kind, streaming, the pool, WebSocket), against small servers
//! written to misbehave (ones that stall, trickle or count connections, for the four
//! timeouts and the pool's limits), and against servers we did not write (Python aiohttp:
//! bodies, redirect rules, a WebSocket with heartbeat and compression; Node `ws`: deflate,
//! pings, both closes).
//!
//! Nothing here but the client belongs to a runtime: the misbehaving servers are
//! `std::net` sockets on threads, the demo server is a black box on its own thread (the
//! driver says how to start one), time is measured with [`std::time::Instant`], and every
//! sleep, task and timeout inside a scenario goes through the [`ClientDriver`].
//!
//! # Plugging in a driver
//!
//! A driver is one test file holding a `static` [`ClientDriver`] and one call of
//! [`client_suite!`](crate::client_suite!), which emits one `#[test]` per scenario. Each
//! scenario is a `pub fn name(driver: &'static ClientDriver)` of this module that runs its
//! async body with `driver.block_on`. For an async-std adapter, say
//! (`tests/tests/async_std_client.rs`, assuming its `Client` converts into
//! `tether_rt::Client` as tokio's does; smol's is the same with `smol::block_on`,
//! `smol::spawn(task).detach()` and `smol::Timer::after`):
//!
//! ```ignore
//! #[path = "../../runtimes/tokio/examples/demo/app.rs"]
//! #[allow(dead_code)]
//! mod demo;
//!
//! use tether_tests::client_suite::ClientDriver;
//! use tether_tests::server_suite::DemoServer;
//!
//! fn demo_server(config: tether_rt::ServerConfig) -> Box<dyn DemoServer> {
//!     // Any driver's demo will do: the client only sees its bytes.
//!     Box::new(tether_tests::TokioServer::start(demo::app(), config))
//! }
//!
//! static DRIVER: ClientDriver = ClientDriver {
//!     client: |config| tether_async_std::Client::new(config).into(),
//!     block_on: |body| async_std::task::block_on(body),
//!     spawn: |task| drop(async_std::task::spawn(task)),
//!     sleep: |duration| Box::pin(async_std::task::sleep(duration)),
//!     demo: demo_server,
//! };
//!
//! tether_tests::client_suite!(DRIVER);
//! ```
//!
//! `client` must build the adapter's own client (so its connector and runtime are the ones
//! tested) and hand over the `tether_rt::Client` inside it. `demo` has the type of the
//! server suite's [`Start`], so a driver's `start` from its server suite file fits too. `block_on` must run the body
//! to its end on the runtime the client's tasks use, and let a panic of the body fail the
//! test. `spawn` starts a detached task that may run on another thread; the suite wraps it
//! to join or abort it ([`ClientDriver::spawn`]). Tests that only make sense on one
//! runtime stay in that driver's file, outside the macro.

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{AbortHandle, Either};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tether_core::pool::PoolConfig;
use tether_core::time::{ClientTimeouts, TimeoutKind};
use tether_core::ws::{CloseReason, DeflateConfig, WsConfig};
use tether_rt::client::{HeaderError, UrlError};
use tether_rt::websocket::Message;
use tether_rt::{Client, ClientConfig, ClientError, WebSocket};

use crate::server_suite::{demo_config, DemoServer, Start};
use crate::{node_with, peers_dir, python_with, PeerServer};

/// A boxed, sendable future (the driver's currency).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the suite needs from a runtime to test its client. Plain data: a driver is a
/// `static` of this (see the [module documentation](self)).
#[derive(Debug, Clone, Copy)]
pub struct ClientDriver {
    /// The adapter's client with `config`, as the runtime-neutral client inside it.
    pub client: fn(ClientConfig) -> Client,
    /// Runs a scenario's body to its end (a panic in it fails the test).
    pub block_on: fn(BoxFuture<()>),
    /// Starts a detached task on the runtime (called from within `block_on`).
    pub spawn: fn(BoxFuture<()>),
    /// A future that completes after the duration, on the runtime's timer.
    pub sleep: fn(Duration) -> BoxFuture<()>,
    /// Starts the demo application (the endpoint contract of the README) with a
    /// configuration, on any server: it runs on its own threads, outside `block_on`.
    pub demo: Start,
}

/// A task started with [`ClientDriver::spawn`]: joined for its output, or aborted.
/// Dropping it leaves the task running.
#[must_use = "join it, or its panic goes unseen"]
pub struct Spawned<T> {
    output: oneshot::Receiver<std::thread::Result<Option<T>>>,
    abort: AbortHandle,
}

impl<T: Send + 'static> Spawned<T> {
    /// Waits for the task's end: its output, or `None` if it was aborted.
    ///
    /// # Panics
    ///
    /// With the task's panic, or if the driver dropped the task before it ended.
    pub async fn join(self) -> Option<T> {
        match self.output.await {
            Ok(Ok(output)) => output,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(oneshot::Canceled) => panic!("the driver dropped a task before it ended"),
        }
    }

    /// Stops the task at its next poll. Its future is dropped before [`Spawned::join`]
    /// returns.
    pub fn abort(&self) {
        self.abort.abort();
    }
}

impl ClientDriver {
    /// Runs `body` with [`ClientDriver::block_on`].
    pub fn run(&self, body: impl Future<Output = ()> + Send + 'static) {
        (self.block_on)(Box::pin(body));
    }

    /// The driver's client with the default configuration changed by `edit`.
    pub fn client_with(&self, edit: impl FnOnce(&mut ClientConfig)) -> Client {
        let mut config = ClientConfig::default();
        edit(&mut config);
        (self.client)(config)
    }

    /// The driver's client with the default configuration.
    pub fn default_client(&self) -> Client {
        self.client_with(|_| {})
    }

    /// Sleeps on the driver's timer.
    pub fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        (self.sleep)(duration)
    }

    /// Runs `future` as a task of the driver: a panic in it is caught and raised again by
    /// [`Spawned::join`], so assertions inside tasks fail the test.
    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Spawned<T> {
        let (future, abort) = futures_util::future::abortable(future);
        let (tx, output) = oneshot::channel();
        (self.spawn)(Box::pin(async move {
            // The task's future is dropped as its `await` ends, before the output is sent:
            // a joined task has released what it held.
            let result = AssertUnwindSafe(async move { future.await.ok() })
                .catch_unwind()
                .await;
            let _ = tx.send(result);
        }));
        Spawned { output, abort }
    }

    /// `future`'s output, or `None` if `limit` passes first (the future is then dropped).
    pub async fn timeout<F: Future>(&self, limit: Duration, future: F) -> Option<F::Output> {
        let future = std::pin::pin!(future);
        match futures_util::future::select(future, self.sleep(limit)).await {
            Either::Left((output, _)) => Some(output),
            Either::Right(_) => None,
        }
    }
}

/// One `#[test]` per scenario of the suite, for the driver `$driver` (a `static`
/// [`ClientDriver`](crate::client_suite::ClientDriver)).
#[macro_export]
macro_rules! client_suite {
    ($driver:expr) => {
        $crate::client_suite!(@tests $driver;
            get_reads_status_version_headers_and_body_and_reuses_the_connection,
            bodies_from_bytes_text_form_json_and_streams_are_echoed,
            a_body_over_the_server_limit_gets_413_without_being_sent_under_expect,
            query_parameters_and_streaming_by_chunk,
            head_and_bodyless_responses_return_their_connection_at_once,
            the_body_limit_is_a_typed_error_and_the_connection_is_not_reused,
            responses_dropped_early_leak_nothing,
            close_refuses_new_requests_and_closes_idle_connections,
            bad_urls_and_unreachable_hosts_are_typed_errors,
            websocket_client_against_the_demo_with_stream_and_sink,
            a_refused_websocket_upgrade_is_a_handshake_error,
            a_silent_server_trips_sock_read_and_not_early,
            a_body_that_stalls_after_the_head_trips_sock_read_while_reading,
            sock_read_resets_on_every_read_and_total_still_bounds_a_trickle,
            per_request_timeouts_override_the_clients,
            connect_timeout_covers_the_wait_for_an_exhausted_pool,
            a_hundred_concurrent_requests_never_open_more_than_the_limit,
            waiters_that_give_up_leak_nothing,
            idle_connections_expire_after_the_keepalive_timeout,
            a_servers_keep_alive_hint_shortens_the_idle_life,
            default_headers_user_agent_query_and_credentials_across_origins,
            sock_read_does_not_count_the_applications_own_pauses,
            dropping_the_client_closes_its_idle_connections,
            headers_that_cannot_be_sent_fail_the_request_before_it_goes_out,
            redirect_locations_resolve_as_rfc_3986_says,
            aiohttp_content_length_and_chunked_bodies,
            aiohttp_redirects_follow_the_method_rules,
            aiohttp_websocket_with_heartbeat_and_compression,
            node_ws_server_with_deflate_pings_and_both_closes);
    };
    (@tests $driver:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::client_suite::$name(&$driver);
            }
        )*
    };
}

/// The driver's demo server with the demo's configuration.
fn demo(driver: &ClientDriver) -> Box<dyn DemoServer> {
    (driver.demo)(demo_config())
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

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

// ---- against the demo server ----------------------------------------------------------

pub fn get_reads_status_version_headers_and_body_and_reuses_the_connection(
    driver: &'static ClientDriver,
) {
    let server = demo(driver);
    let url = server.url("/");
    driver.run(async move {
        let client = driver.default_client();
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
    });
}

pub fn bodies_from_bytes_text_form_json_and_streams_are_echoed(driver: &'static ClientDriver) {
    let server = demo(driver);
    let url = server.url("/echo");
    driver.run(async move {
        let client = driver.default_client();

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
    });
}

pub fn a_body_over_the_server_limit_gets_413_without_being_sent_under_expect(
    driver: &'static ClientDriver,
) {
    let server = demo(driver);
    let url = server.url("/echo");
    driver.run(async move {
        let client = driver.default_client();
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
    });
}

pub fn query_parameters_and_streaming_by_chunk(driver: &'static ClientDriver) {
    let server = demo(driver);
    let url = server.url("/stream");
    driver.run(async move {
        let client = driver.default_client();
        let mut response = client
            .get(&url)
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
    });
}

pub fn head_and_bodyless_responses_return_their_connection_at_once(driver: &'static ClientDriver) {
    let server = demo(driver);
    let url = server.url("/");
    driver.run(async move {
        let client = driver.default_client();
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
    });
}

pub fn the_body_limit_is_a_typed_error_and_the_connection_is_not_reused(
    driver: &'static ClientDriver,
) {
    let server = demo(driver);
    let url = server.url("/stream?n=1000");
    driver.run(async move {
        let client = driver.client_with(|c| c.max_body_size = 1000);
        let mut response = client.get(&url).send().await.unwrap();
        let result = response.bytes().await;
        assert!(
            matches!(result, Err(ClientError::BodyTooLarge(1000))),
            "{result:?}"
        );
        drop(response);
        let stats = client.pool_stats(&url).unwrap();
        assert_eq!((stats.idle, stats.in_use), (0, 0), "half-read: closed");
    });
}

pub fn responses_dropped_early_leak_nothing(driver: &'static ClientDriver) {
    let server = demo(driver);
    let url = server.url("/stream?n=100000");
    let root = server.url("/");
    driver.run(async move {
        let client = driver.client_with(|c| c.pool.limit = Some(4));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let client = client.clone();
            let url = url.clone();
            tasks.push(driver.spawn(async move {
                let mut response = client.get(&url).send().await.unwrap();
                assert!(response.chunk().await.unwrap().is_some());
                // dropped with most of the body unread
            }));
        }
        for task in tasks {
            task.join().await.unwrap();
        }
        let stats = client.pool_stats(&url).unwrap();
        assert_eq!(
            stats,
            Default::default(),
            "nothing idle, used, opening or waiting"
        );
        // And the pool still works.
        let mut response = client.get(&root).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "Hello, World!");
    });
}

pub fn close_refuses_new_requests_and_closes_idle_connections(driver: &'static ClientDriver) {
    let server = demo(driver);
    let url = server.url("/");
    let ws_url = server.url("/ws");
    driver.run(async move {
        let client = driver.default_client();
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
            client.ws_connect(&ws_url, &[]).await,
            Err(ClientError::Closed)
        ));
    });
}

pub fn bad_urls_and_unreachable_hosts_are_typed_errors(driver: &'static ClientDriver) {
    driver.run(async move {
        let client = driver.default_client();
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
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
    });
}

pub fn websocket_client_against_the_demo_with_stream_and_sink(driver: &'static ClientDriver) {
    let server = demo(driver);
    let url = server.url("/ws");
    driver.run(async move {
        let mut config = WsConfig::default();
        config.deflate = Some(DeflateConfig::default());
        config.heartbeat = Some(Duration::from_millis(100));
        let client = driver.default_client();
        let (mut ws, protocol) = client
            .ws(&url)
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
        driver.sleep(Duration::from_millis(500)).await;
        ws.send_text("still here").await.unwrap();
        assert_eq!(
            next_data(&mut ws).await,
            Some(Message::Text("still here".into()))
        );
        ws.close(1000, "bye").await.unwrap();
        assert_eq!(next_data(&mut ws).await, None);
        assert_eq!(ws.closed().await.code(), 1000);
    });
}

/// The next text or binary message, skipping the pongs that answer our heartbeat.
async fn next_data(ws: &mut WebSocket) -> Option<Message> {
    loop {
        match ws.next().await? {
            message if message.is_control() => continue,
            message => return Some(message),
        }
    }
}

pub fn a_refused_websocket_upgrade_is_a_handshake_error(driver: &'static ClientDriver) {
    let server = demo(driver);
    let url = server.url("/");
    driver.run(async move {
        let result = driver.default_client().ws_connect(&url, &[]).await;
        assert!(
            matches!(result, Err(ClientError::WebSocket(_))),
            "{result:?}"
        );
    });
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

/// Accepts connections on 127.0.0.1 (a thread, ending with the test process) and runs
/// `serve` on a thread of its own for each; returns the listener's `http://addr` and its
/// connection counts (a connection is open until `serve` returns and drops it).
fn thread_server(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> (String, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        while let Ok((stream, _)) = listener.accept() {
            let counts = shared.clone();
            counts.accepted.fetch_add(1, Ordering::SeqCst);
            let open = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
            counts.max_open.fetch_max(open, Ordering::SeqCst);
            let serve = serve.clone();
            thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                serve(stream);
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, counts)
}

/// A server answering as `behaviour` says; returns its `http://addr/` and its counts.
fn misbehaving_server(behaviour: Behaviour) -> (String, Arc<Counts>) {
    let (url, counts) = thread_server(move |stream| serve(stream, behaviour));
    (url + "/", counts)
}

/// Reads until `seen` holds a whole request head, and takes it out; `None` once the
/// client went away.
fn next_head(stream: &mut TcpStream, seen: &mut Vec<u8>) -> Option<String> {
    let mut buf = [0u8; 8192];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
    seen.drain(..end);
    Some(head)
}

/// Serves requests (heads only, no bodies) on one connection until the client goes away.
fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    while next_head(&mut stream, &mut seen).is_some() {
        match behaviour {
            Behaviour::Silent => {
                // Hold the connection until the client closes it.
                let _ = stream.read(&mut buf);
                return;
            }
            Behaviour::HeadThenStall => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
                let _ = stream.read(&mut buf);
                return;
            }
            Behaviour::Trickle { gap } => {
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n")
                    .is_err()
                {
                    return;
                }
                for _ in 0..20 {
                    thread::sleep(gap);
                    if stream.write_all(b"x").is_err() {
                        return;
                    }
                }
            }
            Behaviour::AnswerWithKeepAliveHint => {
                let reply =
                    b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=2\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(reply).is_err() {
                    return;
                }
                // Idle for 2 s: close (the timeout holds for this read only).
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                match stream.read(&mut buf) {
                    Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                    _ => return,
                }
                let _ = stream.set_read_timeout(None);
            }
            Behaviour::TwoParts { gap } => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello";
                if stream.write_all(head).is_err() {
                    return;
                }
                thread::sleep(gap);
                if stream.write_all(b" world").is_err() {
                    return;
                }
            }
            Behaviour::Answer { delay } => {
                thread::sleep(delay);
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Runs `send` and `bytes` with `timeouts` on a new client; returns the timeout that fired
/// (or `None` if the request succeeded) and how long it took.
async fn fetch(
    driver: &ClientDriver,
    url: &str,
    timeouts: ClientTimeouts,
) -> (Option<TimeoutKind>, Duration) {
    let client = driver.default_client();
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

pub fn a_silent_server_trips_sock_read_and_not_early(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, _) = misbehaving_server(Behaviour::Silent);
        let timeouts = ClientTimeouts::default().with_sock_read(ms(300));
        let (kind, took) = fetch(driver, &url, timeouts).await;
        assert_eq!(kind, Some(TimeoutKind::SockRead));
        assert!(took >= Duration::from_millis(300), "{took:?}");
        // The same server with only `total` set: total fires instead.
        let timeouts = ClientTimeouts::NONE.with_total(ms(300));
        let (kind, took) = fetch(driver, &url, timeouts).await;
        assert_eq!(kind, Some(TimeoutKind::Total));
        assert!(took >= Duration::from_millis(300), "{took:?}");
    });
}

pub fn a_body_that_stalls_after_the_head_trips_sock_read_while_reading(
    driver: &'static ClientDriver,
) {
    driver.run(async move {
        let (url, _) = misbehaving_server(Behaviour::HeadThenStall);
        let client = driver.default_client();
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
    });
}

pub fn sock_read_resets_on_every_read_and_total_still_bounds_a_trickle(
    driver: &'static ClientDriver,
) {
    driver.run(async move {
        // 20 bytes, one every 50 ms: about 1 s in all, never more than ~50 ms between reads.
        let (url, _) = misbehaving_server(Behaviour::Trickle {
            gap: Duration::from_millis(50),
        });
        let timeouts = ClientTimeouts::default().with_sock_read(ms(400));
        let (kind, took) = fetch(driver, &url, timeouts).await;
        assert_eq!(kind, None, "sock_read never fires on a live trickle");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        let timeouts = ClientTimeouts::default()
            .with_sock_read(ms(400))
            .with_total(ms(500));
        let (kind, took) = fetch(driver, &url, timeouts).await;
        assert_eq!(kind, Some(TimeoutKind::Total));
        assert!(took >= Duration::from_millis(500), "{took:?}");
    });
}

pub fn per_request_timeouts_override_the_clients(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, _) = misbehaving_server(Behaviour::Answer {
            delay: Duration::from_millis(300),
        });
        let client = driver.client_with(|c| c.timeouts = c.timeouts.with_sock_read(ms(100)));
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
    });
}

pub fn connect_timeout_covers_the_wait_for_an_exhausted_pool(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, _) = misbehaving_server(Behaviour::Silent);
        let client = driver.client_with(|c| c.pool.limit = Some(1));
        // The only connection is taken by a request the server never answers.
        let holder = {
            let client = client.clone();
            let url = url.clone();
            driver.spawn(async move {
                let _ = client.get(&url).send().await;
            })
        };
        while client.pool_stats(&url).unwrap().in_use == 0 {
            driver.sleep(Duration::from_millis(5)).await;
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
        assert_eq!(holder.join().await, None, "aborted, not answered");
        assert_nothing_held(&client, &url);
    });
}

/// Sends `n` GETs to `url` at once, each in its own task, and checks that each is
/// answered `ok`.
async fn all_answer_ok(driver: &ClientDriver, client: &Client, url: &str, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            driver.spawn(async move {
                let mut response = client.get(&url).send().await.unwrap();
                assert_eq!(response.text().await.unwrap(), "ok");
            })
        })
        .collect();
    for task in tasks {
        task.join().await.unwrap();
    }
}

pub fn a_hundred_concurrent_requests_never_open_more_than_the_limit(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, counts) = misbehaving_server(Behaviour::Answer {
            delay: Duration::from_millis(5),
        });
        let client = driver.client_with(|c| c.pool.limit = Some(10));
        all_answer_ok(driver, &client, &url, 100).await;
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
        });
        let client = driver.client_with(|c| {
            c.pool = PoolConfig::default();
            c.pool.limit_per_host = Some(3);
        });
        all_answer_ok(driver, &client, &url, 30).await;
        assert!(counts.max_open.load(Ordering::SeqCst) <= 3);
    });
}

pub fn waiters_that_give_up_leak_nothing(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, _) = misbehaving_server(Behaviour::Answer {
            delay: Duration::from_millis(200),
        });
        let client = driver.client_with(|c| c.pool.limit = Some(1));
        let mut dropped = Vec::new();
        for _ in 0..10 {
            let client = client.clone();
            let url = url.clone();
            // Each gives up after 50 ms, most of them while waiting for the one connection.
            dropped.push(driver.spawn(async move {
                let _ = driver
                    .timeout(Duration::from_millis(50), client.get(&url).send())
                    .await;
            }));
        }
        for task in dropped {
            task.join().await.unwrap();
        }
        assert_nothing_held(&client, &url);
        let mut response = client
            .get(&url)
            .send()
            .await
            .expect("the pool still serves");
        assert_eq!(response.text().await.unwrap(), "ok");
    });
}

/// Waits (up to 5 s) until the server has no open connection.
async fn until_all_closed(driver: &ClientDriver, counts: &Counts) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        driver.sleep(Duration::from_millis(10)).await;
    }
}

pub fn idle_connections_expire_after_the_keepalive_timeout(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, counts) = misbehaving_server(Behaviour::Answer {
            delay: Duration::ZERO,
        });
        let client =
            driver.client_with(|c| c.pool.keepalive_timeout = Some(Duration::from_millis(200)));
        client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(client.pool_stats(&url).unwrap().idle, 1);
        driver.sleep(Duration::from_millis(500)).await;
        assert_eq!(
            client.pool_stats(&url).unwrap().idle,
            0,
            "expired and closed"
        );
        // The server sees the close.
        until_all_closed(driver, &counts).await;
        assert_eq!(counts.open.load(Ordering::SeqCst), 0);
    });
}

pub fn a_servers_keep_alive_hint_shortens_the_idle_life(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, counts) = misbehaving_server(Behaviour::AnswerWithKeepAliveHint);
        // The client would keep it 15 s; the server said 2 s, so the client keeps it 1 s (a
        // second's margin, so it is never reused just as the server closes it).
        let client = driver.default_client();
        client.get(&url).send().await.unwrap().text().await.unwrap();
        driver.sleep(Duration::from_millis(300)).await;
        assert_eq!(client.pool_stats(&url).unwrap().idle, 1);
        driver.sleep(Duration::from_millis(900)).await;
        assert_eq!(
            client.pool_stats(&url).unwrap().idle,
            0,
            "dropped before the server does"
        );
        let mut response = client.get(&url).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
        assert_eq!(counts.accepted.load(Ordering::SeqCst), 2);
    });
}

/// A server that records each request head it gets and answers `ok`, or a 302 to
/// `redirect_to` for paths starting with `/redirect`. Returns its `http://addr` (no
/// slash) and the heads.
fn recording_server(redirect_to: Option<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let record = heads.clone();
    let (url, _) = thread_server(move |mut stream| {
        let mut seen = Vec::new();
        while let Some(head) = next_head(&mut stream, &mut seen) {
            let redirect = head
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .starts_with("/redirect");
            record.lock().unwrap().push(head);
            let reply = match (&redirect_to, redirect) {
                (Some(to), true) => {
                    format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
                }
                _ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned(),
            };
            if stream.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
    (url, heads)
}

pub fn default_headers_user_agent_query_and_credentials_across_origins(
    driver: &'static ClientDriver,
) {
    driver.run(async move {
        let (other, other_heads) = recording_server(None);
        let (url, heads) = recording_server(Some(format!("{other}/landed")));
        let client = driver.client_with(|c| {
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
    });
}

pub fn sock_read_does_not_count_the_applications_own_pauses(driver: &'static ClientDriver) {
    driver.run(async move {
        // The server pauses 400 ms mid-body; the application takes 350 ms over the first
        // piece, so it waits only ~50 ms for the rest: well within a 300 ms `sock_read`.
        let (url, _) = misbehaving_server(Behaviour::TwoParts {
            gap: Duration::from_millis(400),
        });
        let client = driver.default_client();
        let timeouts = ClientTimeouts::default().with_sock_read(ms(300));
        let mut response = client.get(&url).timeouts(timeouts).send().await.unwrap();
        let first = response.chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"hello");
        driver.sleep(Duration::from_millis(350)).await;
        let rest = response.bytes().await.expect("no sock_read timeout");
        assert_eq!(&rest[..], b" world");
        // Without the application's pause, the same server gap trips it.
        let mut response = client.get(&url).timeouts(timeouts).send().await.unwrap();
        let result = response.bytes().await;
        assert!(
            matches!(result, Err(ClientError::Timeout(TimeoutKind::SockRead))),
            "{result:?}"
        );
    });
}

pub fn dropping_the_client_closes_its_idle_connections(driver: &'static ClientDriver) {
    driver.run(async move {
        let (url, counts) = misbehaving_server(Behaviour::Answer {
            delay: Duration::ZERO,
        });
        let client = driver.default_client();
        client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(
            counts.open.load(Ordering::SeqCst),
            1,
            "kept alive while the client lives"
        );
        drop(client);
        until_all_closed(driver, &counts).await;
        assert_eq!(
            counts.open.load(Ordering::SeqCst),
            0,
            "closed with the client"
        );
    });
}

pub fn headers_that_cannot_be_sent_fail_the_request_before_it_goes_out(
    driver: &'static ClientDriver,
) {
    driver.run(async move {
        let (url, heads) = recording_server(None);
        let client = driver.default_client();
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
        let agent = driver.client_with(|c| c.user_agent = "agent\n".into());
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
    });
}

pub fn redirect_locations_resolve_as_rfc_3986_says(driver: &'static ClientDriver) {
    driver.run(async move {
        // A network-path reference (`//host:port/path`) keeps the scheme and changes the
        // authority; a query-only one (`?q`) keeps the path.
        let (other, other_heads) = recording_server(None);
        let authority = other.strip_prefix("http:").unwrap().to_owned();
        let (url, _) = recording_server(Some(format!("{authority}/landed?via=network-path#f")));
        let mut response = driver
            .default_client()
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

        let (url, heads) = recording_server(Some("?from=redirect".to_owned()));
        // The server redirects every `/redirect...` again, so this ends at the limit.
        let result = driver
            .default_client()
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
    });
}

// ---- against servers we did not write: Python aiohttp and Node ws ----

/// The aiohttp test server (`tests/peers/client_aiohttp_server.py`), if Python with aiohttp is
/// there.
pub fn peer_aiohttp_server() -> Option<PeerServer> {
    let python = python_with("aiohttp")?;
    let mut command = Command::new(python);
    command.arg(peers_dir().join("client_aiohttp_server.py"));
    Some(PeerServer::start(command))
}

fn peer_node_ws_server() -> Option<PeerServer> {
    let (node, modules) = node_with("ws")?;
    let mut command = Command::new(node);
    command
        .env("NODE_PATH", modules)
        .arg(peers_dir().join("client_ws_server.cjs"));
    Some(PeerServer::start(command))
}

fn peer_compressing() -> WsConfig {
    let mut config = WsConfig::default();
    config.deflate = Some(DeflateConfig::default());
    config
}

/// The next text or binary message (pings and pongs skipped).
async fn peer_next_data(ws: &mut WebSocket) -> Option<Message> {
    loop {
        match ws.next().await? {
            message if message.is_control() => continue,
            message => return Some(message),
        }
    }
}

async fn peer_info(ws: &mut WebSocket) -> serde_json::Value {
    ws.send_text("info").await.unwrap();
    match peer_next_data(ws).await {
        Some(Message::Text(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected JSON, got {other:?}"),
    }
}

pub fn aiohttp_content_length_and_chunked_bodies(driver: &'static ClientDriver) {
    driver.run(async move {
        let Some(server) = peer_aiohttp_server() else {
            return;
        };
        let client = driver.default_client();
        let expected: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..3 {
            let mut response = client.get(&server.url("/cl")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-length"], "100000");
            assert_eq!(response.bytes().await.unwrap(), expected);
        }
        let mut response = client
            .get(&server.url("/chunked"))
            .query(&[("n", "3000")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["transfer-encoding"], "chunked");
        let mut lines = 0;
        let mut rest = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            rest.extend_from_slice(&chunk);
            lines += chunk.iter().filter(|&&b| b == b'\n').count();
        }
        assert_eq!(lines, 3000);
        assert!(rest.ends_with(b"line 2999\n"));
        let stats = client.pool_stats(&server.url("/")).unwrap();
        assert_eq!(
            (stats.idle, stats.in_use),
            (1, 0),
            "aiohttp kept one connection alive"
        );
    });
}

pub fn aiohttp_redirects_follow_the_method_rules(driver: &'static ClientDriver) {
    driver.run(async move {
        let Some(server) = peer_aiohttp_server() else {
            return;
        };
        let client = driver.default_client();
        // Absolute paths, relative paths and full URLs, five hops.
        let mut response = client.get(&server.url("/redirect/5")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "final");

        let response = client
            .get(&server.url("/redirect/5"))
            .follow_redirects(false)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()["location"], "4");
        drop(response); // unread body: its connection is closed

        // 303 turns a POST into a GET without a body; 307 repeats the POST and its body.
        let mut response = client
            .post(&server.url("/see-other"))
            .text("abc")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "GET 0 -");
        let mut response = client
            .post(&server.url("/temporary"))
            .text("abc")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.text().await.unwrap(),
            "POST 3 text/plain; charset=utf-8"
        );

        // A loop ends after 10 redirects; a lower limit ends sooner.
        let result = client.get(&server.url("/loop")).send().await;
        assert!(
            matches!(result, Err(ClientError::TooManyRedirects(10))),
            "{result:?}"
        );
        let strict = (driver.client)({
            let mut config = ClientConfig::default();
            config.max_redirects = 2;
            config
        });
        let result = strict.get(&server.url("/redirect/5")).send().await;
        assert!(
            matches!(result, Err(ClientError::TooManyRedirects(2))),
            "{result:?}"
        );
        let stats = client.pool_stats(&server.url("/")).unwrap();
        assert_eq!((stats.in_use, stats.waiting), (0, 0));
    });
}

pub fn aiohttp_websocket_with_heartbeat_and_compression(driver: &'static ClientDriver) {
    driver.run(async move {
        let Some(server) = peer_aiohttp_server() else {
            return;
        };
        let client = driver.default_client();
        let (mut ws, protocol) = client
            .ws(&server.url("/ws").replace("http://", "ws://"))
            .protocol("echo")
            .config(peer_compressing())
            .connect()
            .await
            .unwrap();
        assert_eq!(protocol.as_deref(), Some("echo"));
        let peer_info = peer_info(&mut ws).await;
        assert_eq!(peer_info["protocol"], "echo", "{peer_info}");
        assert!(
            peer_info["compress"].as_u64().is_some_and(|bits| bits > 0),
            "compression agreed: {peer_info}"
        );
        let text = "compressible ".repeat(50_000);
        ws.send_text(text.clone()).await.unwrap();
        assert_eq!(peer_next_data(&mut ws).await, Some(Message::Text(text)));
        let binary = Bytes::from((0..1_000_000u32).map(|i| (i % 7) as u8).collect::<Vec<_>>());
        ws.send_binary(binary.clone()).await.unwrap();
        assert_eq!(peer_next_data(&mut ws).await, Some(Message::Binary(binary)));

        // aiohttp pings every 0.2 s and closes if no pong comes: we answer on our own, so the
        // socket is alive a second later even though nothing read in between.
        driver.sleep(Duration::from_secs(1)).await;
        ws.send_text("alive?").await.unwrap();
        assert_eq!(
            peer_next_data(&mut ws).await,
            Some(Message::Text("alive?".into()))
        );

        ws.send_text("close-me").await.unwrap();
        assert_eq!(peer_next_data(&mut ws).await, None);
        match ws.closed().await {
            CloseReason::ByPeer { code, reason } => {
                assert_eq!(code, Some(4001));
                assert_eq!(reason, "asked to");
            }
            other => panic!("expected the peer's close, got {other:?}"),
        }
    });
}

pub fn node_ws_server_with_deflate_pings_and_both_closes(driver: &'static ClientDriver) {
    driver.run(async move {
        let Some(server) = peer_node_ws_server() else {
            return;
        };
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let client = driver.default_client();
        for deflate in [true, false] {
            let mut config = peer_compressing();
            if !deflate {
                config.deflate = None;
            }
            let (mut ws, protocol) = client
                .ws(&url)
                .protocol("echo")
                .config(config)
                .connect()
                .await
                .unwrap();
            assert_eq!(protocol.as_deref(), Some("echo"));
            for i in 0..50 {
                ws.send_text(format!("message {i}")).await.unwrap();
            }
            for i in 0..50 {
                assert_eq!(
                    peer_next_data(&mut ws).await,
                    Some(Message::Text(format!("message {i}")))
                );
            }
            let peer_info = peer_info(&mut ws).await;
            assert_eq!(peer_info["protocol"], "echo", "{peer_info}");
            assert_eq!(
                peer_info["pong"], "srv",
                "our automatic pong answered ws's ping: {peer_info}"
            );
            let extensions = peer_info["extensions"].to_string();
            assert_eq!(
                extensions.contains("permessage-deflate"),
                deflate,
                "{extensions}"
            );
            if deflate {
                ws.send_text("close-me").await.unwrap();
                assert_eq!(peer_next_data(&mut ws).await, None);
                assert_eq!(ws.closed().await.code(), 4001);
            } else {
                ws.close(1000, "done").await.unwrap();
                assert_eq!(peer_next_data(&mut ws).await, None);
                assert!(matches!(
                    ws.closed().await,
                    CloseReason::ByUs {
                        code: Some(1000),
                        ..
                    }
                ));
            }
        }
    });
}
