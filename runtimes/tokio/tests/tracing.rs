//! What the server tells a `tracing` subscriber, over a real socket. A test binary of its
//! own: `tracing` caches per call site whether anyone listens, so a subscriber installed
//! for one test while other tests of the same process run without one is racy; here one
//! subscriber is installed for the whole process.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tether_tokio::websocket::Message;
use tether_tokio::{App, Client, ClientConfig, Request, Response, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

/// Every event (debug and up) as text, for the whole process.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        #[derive(Clone)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buffer
    })
}

fn captured_text() -> String {
    String::from_utf8(captured().lock().unwrap().clone()).unwrap()
}

/// The captured lines that contain `filter`, once `done` holds for them (within 5 s).
async fn lines_once(filter: &str, done: impl Fn(&[&str]) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = captured_text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(filter)).collect();
        if done(&lines) {
            return lines.into_iter().map(str::to_owned).collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not logged in time; lines with {filter}:\n{}",
            lines.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Serves `app` on a free port until the returned handle's shutdown.
async fn serve(
    app: App,
) -> (
    SocketAddr,
    tether_tokio::ShutdownHandle,
    tokio::task::JoinHandle<()>,
) {
    serve_with(app, ServerConfig::default()).await
}

/// [`serve`] with `config`.
async fn serve_with(
    app: App,
    config: ServerConfig,
) -> (
    SocketAddr,
    tether_tokio::ShutdownHandle,
    tokio::task::JoinHandle<()>,
) {
    let server = Server::bind(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.shutdown_handle();
    let task = tokio::spawn(async move { server.serve(app).await.unwrap() });
    (addr, handle, task)
}

#[tokio::test]
async fn requests_protocol_errors_and_the_end_of_a_connection_are_traced() {
    let _ = captured();
    let app = App::new().route(
        http::Method::GET,
        "/users/{id}",
        |req: Request| async move { Response::text(format!("user {}", req.param("id").unwrap())) },
    );
    let (addr, shutdown, server) = serve(app).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let local = client.local_addr().unwrap();
    client
        .write_all(
            b"GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /bad\0target HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
        .await
        .expect("the server closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).contains("HTTP/1.1 400 "));
    // The connection's end is logged when its task is over; the graceful shutdown waits
    // for every connection.
    shutdown.shutdown();
    server.await.unwrap();

    let text = captured_text();
    let peer = format!("peer={local}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&peer)).collect();
    let access: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("tether::access"))
        .collect();
    assert_eq!(access.len(), 2, "{text}");
    assert!(
        access[0].contains("method=GET path=/users/7 status=200"),
        "{text}"
    );
    assert!(access[1].contains("path=/nowhere status=404"), "{text}");
    assert!(access.iter().all(|l| l.contains("micros=")), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("protocol error")),
        "{text}"
    );
    assert!(
        access
            .iter()
            .all(|l| l.contains("bytes_in=0") && l.contains("bytes_out=")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("DEBUG")
            && l.contains("protocol error")
            && l.contains("kind=")
            && l.contains("status=400")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("connection closed")
            && l.contains("requests=2")
            && l.contains("reason=\"protocol error\"")),
        "{text}"
    );
    assert!(
        !text.contains("ERROR"),
        "a peer's bad input is not an error of ours: {text}"
    );
}

#[tokio::test]
async fn access_events_count_the_body_bytes_and_the_end_says_why() {
    let _ = captured();
    let app = App::new()
        .route(
            http::Method::POST,
            "/bytes/echo",
            |mut req: Request| async move {
                let body = req.body().bytes().await.unwrap();
                Response::text(format!("{}!", String::from_utf8_lossy(&body)))
            },
        )
        .route(
            http::Method::GET,
            "/bytes/stream",
            |_req: Request| async move {
                let (response, mut sender) =
                    Response::stream(http::HeaderValue::from_static("text/plain"));
                tokio::spawn(async move {
                    for piece in ["abc", "defg", "hi"] {
                        sender.send(piece).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
                response
            },
        );
    let mut config = ServerConfig::default();
    config.http.timeouts.keep_alive = Some(Duration::from_millis(200));
    let (addr, shutdown, server) = serve_with(app, config).await;

    // Two requests, then silence until the keep-alive timeout closes the connection.
    let mut client = TcpStream::connect(addr).await.unwrap();
    let local = client.local_addr().unwrap();
    client
        .write_all(b"POST /bytes/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        .await
        .unwrap();
    client
        .write_all(b"GET /bytes/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
        .await
        .expect("the keep-alive timeout closed the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("hello world!"), "{answer}");

    // One that asks for the connection to close after it.
    let mut closing = TcpStream::connect(addr).await.unwrap();
    let closing_local = closing.local_addr().unwrap();
    closing
        .write_all(b"POST /bytes/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let mut answer = Vec::new();
    closing.read_to_end(&mut answer).await.unwrap();

    let peer = format!("peer={local}");
    let lines = lines_once(&peer, |lines| {
        lines.iter().any(|l| l.contains("connection closed"))
    })
    .await;
    let text = lines.join("\n");
    assert!(
        lines.iter().any(|l| l.contains("tether::access")
            && l.contains("path=/bytes/echo status=200")
            && l.contains("bytes_in=11 bytes_out=12")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("tether::access")
            && l.contains("path=/bytes/stream status=200")
            && l.contains("bytes_in=0 bytes_out=9")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("connection closed")
            && l.contains("requests=2")
            && l.contains("reason=\"keep-alive timeout\"")),
        "{text}"
    );

    let peer = format!("peer={closing_local}");
    let lines = lines_once(&peer, |lines| {
        lines.iter().any(|l| l.contains("connection closed"))
    })
    .await;
    let text = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tether::access") && l.contains("bytes_in=3 bytes_out=4")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("connection closed")
            && l.contains("requests=1")
            && l.contains("reason=\"not kept alive\"")),
        "{text}"
    );
    shutdown.shutdown();
    server.await.unwrap();
}

#[tokio::test]
async fn a_websocket_session_reports_its_end_on_both_sides() {
    let _ = captured();
    let app = App::new().route(http::Method::GET, "/ws", |mut req: Request| async move {
        let (response, pending) = match req.websocket(&["trace-proto"]) {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal,
        };
        let session = async move {
            let Some(mut socket) = pending.await else {
                return Ok(());
            };
            while let Some(message) = socket.recv().await {
                if let Message::Text(text) = message {
                    socket.send_text(text).await?;
                }
            }
            Ok::<_, tether_tokio::websocket::WsError>(())
        };
        match req.scheduler().spawn(session).await {
            Ok(_) => response,
            Err(_) => Response::empty(http::StatusCode::SERVICE_UNAVAILABLE),
        }
    });
    let (addr, shutdown, server) = serve(app).await;
    let client = Client::new(ClientConfig::default());
    let (mut ws, protocol) = client
        .ws_connect(&format!("ws://{addr}/ws"), &["trace-proto"])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("trace-proto"));
    for text in ["one", "two"] {
        ws.send_text(text).await.unwrap();
        assert_eq!(ws.recv().await, Some(Message::Text(text.into())));
    }
    ws.close(4000, "done").await.unwrap();
    assert_eq!(ws.closed().await.code(), 4000);

    let lines = lines_once("trace-proto", |lines| {
        lines
            .iter()
            .filter(|l| l.contains("websocket closed"))
            .count()
            == 2
    })
    .await;
    let text = lines.join("\n");
    let client_end = lines
        .iter()
        .find(|l| l.contains("websocket closed") && l.contains("role=\"client\""))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        client_end.contains("compression=true")
            && client_end
                .contains("closed_by=\"us\" code=4000 clean=true messages_in=2 messages_out=2"),
        "{text}"
    );
    let server_end = lines
        .iter()
        .find(|l| l.contains("websocket closed") && l.contains("role=\"server\""))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        server_end.contains("connection{peer=")
            && server_end
                .contains("closed_by=\"peer\" code=4000 clean=true messages_in=2 messages_out=2"),
        "{text}"
    );
    assert!(lines.iter().all(|l| !l.contains("ERROR")), "{text}");
    client.close().await;
    shutdown.shutdown();
    server.await.unwrap();
}

#[tokio::test]
async fn client_requests_show_a_new_connection_then_a_reused_one() {
    let _ = captured();
    let app = App::new().route(http::Method::GET, "/hello", |_req: Request| async move {
        Response::text("hello")
    });
    let (addr, shutdown, server) = serve(app).await;
    let client = Client::new(ClientConfig::default());
    let url = format!("http://{addr}/hello");
    for _ in 0..2 {
        let mut response = client.get(&url).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "hello");
    }

    let origin = format!("origin=http://{addr}");
    let lines = lines_once(&origin, |lines| {
        lines
            .iter()
            .filter(|l| l.contains(" response ") || l.ends_with(" response"))
            .count()
            >= 2
    })
    .await;
    let text = lines.join("\n");
    let connections: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("tether::client") && l.contains(" connection "))
        .collect();
    assert_eq!(connections.len(), 2, "{text}");
    assert!(
        connections[0].contains("request{method=GET")
            && connections[0].contains("reused=false")
            && connections[0].contains("connect_micros="),
        "{text}"
    );
    assert!(
        connections[1].contains("reused=true") && !connections[1].contains("connect_micros="),
        "{text}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("response head") && l.contains("status=200 ttfb_micros="))
            .count(),
        2,
        "{text}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("status=200 redirects=0 retries=0"))
            .count(),
        2,
        "{text}"
    );
    client.close().await;
    shutdown.shutdown();
    server.await.unwrap();
}

#[tokio::test]
async fn scheduler_jobs_report_a_failure_and_a_cancellation_at_close() {
    let _ = captured();
    let run = async {
        let scheduler = tether_tokio::jobs::scheduler(
            tether_tokio::jobs::SchedulerConfig::default()
                .with_close_timeout(Duration::from_millis(50)),
        );
        scheduler.set_error_handler(|_| {});
        let failing = scheduler
            .spawn(async { Err::<(), _>("the disk is full") })
            .await
            .unwrap();
        assert!(failing.wait().await.is_err());
        let _forever = scheduler
            .spawn(std::future::pending::<Result<(), std::io::Error>>())
            .await
            .unwrap();
        // Let the job start before the close.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let summary = scheduler.close().await;
        assert_eq!(summary.aborted, 1);
    };
    run.instrument(tracing::info_span!("jobs_tracing_test"))
        .await;

    let lines = lines_once("jobs_tracing_test", |lines| {
        lines.iter().any(|l| l.contains("job cancelled"))
    })
    .await;
    let text = lines.join("\n");
    assert_eq!(
        lines.iter().filter(|l| l.contains("job spawned")).count(),
        2,
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("WARN")
            && l.contains("job{id=1}")
            && l.contains("job failed")
            && l.contains("error=the disk is full")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("DEBUG")
            && l.contains("job{id=2}")
            && l.contains("job cancelled")
            && l.contains("started=true closing=true")),
        "{text}"
    );
}
