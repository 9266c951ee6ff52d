//! The connection loop in process, over an in-memory pipe: every way a request body can end
//! early reaches the handler as an error with its cause, whatever the handler's pace (fast,
//! slow, or only after the connection has ended), repeated to cover the races; and
//! `100 Continue` goes out exactly when the handler asks for the body.

use super::*;
use crate::runtime::test_support::{rt, TokioIo};
use crate::{App, ServerConfig, Service};
use http::StatusCode;
use std::sync::Mutex;
use std::time::Duration;
use tether_core::h1::RemoteErrorKind;
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How a handler reads its body.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// `bytes()` at once.
    Fast,
    /// By `chunk()`, pausing after each piece (the upload outruns it).
    Slow,
    /// Nothing until the connection has had time to end, then `bytes()`.
    Late,
}

/// What a handler saw of its body: the bytes, or the error.
type Seen = Result<usize, BodyError>;

fn body_app(pace: Pace, seen: UnboundedSender<Seen>) -> App<UnboundedSender<Seen>> {
    App::with_state(seen).route(
        http::Method::POST,
        "/upload",
        move |mut req: Request<UnboundedSender<Seen>>| async move {
            let outcome = match pace {
                Pace::Fast => req.body().bytes().await.map(|b| b.len()),
                Pace::Late => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    req.body().bytes().await.map(|b| b.len())
                }
                Pace::Slow => {
                    let mut total = 0;
                    loop {
                        match req.body().chunk().await {
                            Some(Ok(piece)) => total += piece.len(),
                            Some(Err(e)) => break Err(e),
                            None => break Ok(total),
                        }
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                }
            };
            let _ = req.state().send(outcome);
            Response::empty(StatusCode::OK)
        },
    )
}

/// Starts a service and one connection to it; the client's end of the pipe.
pub(super) async fn connect<S: Send + Sync + 'static>(
    app: App<S>,
    config: ServerConfig,
) -> (DuplexStream, Service<S>, tokio::task::JoinHandle<()>) {
    let service = Service::start(app, config, rt()).await.expect("start");
    let (client, server) = duplex(64 * 1024);
    let serving = service.clone();
    let task = tokio::spawn(async move {
        serving
            .serve_connection(TokioIo(server), ConnectionInfo::default())
            .await
    });
    (client, service, task)
}

/// Reads what the server sends until it closes (or `limit` passes).
async fn read_all(client: &mut DuplexStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, client.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn next_seen(seen: &mut UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the handler reported within 10 s")
        .expect("the handler reported")
}

fn protocol_kind(seen: &Seen) -> Option<RemoteErrorKind> {
    match seen {
        Err(BodyError::Protocol(e)) => e.remote().map(|r| r.kind()),
        _ => None,
    }
}

/// The head of a chunked upload and eight chunks of 16 KiB (128 KiB), not yet ended.
fn chunked_upload() -> Vec<u8> {
    let mut request =
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..8 {
        request.extend_from_slice(b"4000\r\n");
        request.extend_from_slice(&[b'y'; 0x4000]);
        request.extend_from_slice(b"\r\n");
    }
    request
}

const RUNS: usize = 200;
const PACES: [Pace; 3] = [Pace::Fast, Pace::Slow, Pace::Late];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_body_is_read_whole_at_every_pace() {
    for pace in PACES {
        for _ in 0..RUNS / 4 {
            let (tx, mut seen) = unbounded_channel();
            let (mut client, _service, _task) =
                connect(body_app(pace, tx), ServerConfig::default()).await;
            let body = vec![b'x'; 300_000];
            client
                .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n")
                .await
                .unwrap();
            client.write_all(&body).await.unwrap();
            assert_eq!(next_seen(&mut seen).await, Ok(300_000), "{pace:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eof_mid_body_is_an_error_at_every_pace() {
    // The case of the report: 116 KB of a declared 900 KB, then the client closes.
    for pace in PACES {
        for run in 0..RUNS {
            let (tx, mut seen) = unbounded_channel();
            let (mut client, _service, _task) =
                connect(body_app(pace, tx), ServerConfig::default()).await;
            client
                .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n")
                .await
                .unwrap();
            client.write_all(&vec![b'x'; 116_000]).await.unwrap();
            client.shutdown().await.unwrap();
            let outcome = next_seen(&mut seen).await;
            assert_eq!(
                protocol_kind(&outcome),
                Some(RemoteErrorKind::IncompleteMessage),
                "{pace:?} run {run}: {outcome:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunk_is_an_error_at_every_pace() {
    for pace in PACES {
        for run in 0..RUNS {
            let (tx, mut seen) = unbounded_channel();
            let (mut client, _service, _task) =
                connect(body_app(pace, tx), ServerConfig::default()).await;
            let mut request = chunked_upload();
            request.extend_from_slice(b"zz\r\n");
            client.write_all(&request).await.unwrap();
            let outcome = next_seen(&mut seen).await;
            assert_eq!(
                protocol_kind(&outcome),
                Some(RemoteErrorKind::InvalidChunkSize),
                "{pace:?} run {run}: {outcome:?}"
            );
            assert!(read_all(&mut client, Duration::from_secs(5))
                .await
                .starts_with("HTTP/1.1 400 "));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_is_an_error_at_every_pace() {
    let mut config = ServerConfig::default();
    config.http.limits.max_body_size = 100_000;
    for pace in PACES {
        for run in 0..RUNS {
            let (tx, mut seen) = unbounded_channel();
            let (mut client, _service, _task) = connect(body_app(pace, tx), config.clone()).await;
            let request = chunked_upload();
            // The server may answer 413 and close before the client has written it all.
            let _ = client.write_all(&request).await;
            let outcome = next_seen(&mut seen).await;
            assert_eq!(
                protocol_kind(&outcome),
                Some(RemoteErrorKind::BodyTooLarge),
                "{pace:?} run {run}: {outcome:?}"
            );
            assert!(read_all(&mut client, Duration::from_secs(5))
                .await
                .starts_with("HTTP/1.1 413 "));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_deadline_is_an_error_at_every_pace() {
    let mut config = ServerConfig::default();
    config.http.timeouts.body_read = Some(Duration::from_millis(30));
    for pace in PACES {
        for run in 0..RUNS / 4 {
            let (tx, mut seen) = unbounded_channel();
            let (mut client, _service, _task) = connect(body_app(pace, tx), config.clone()).await;
            client
                .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n")
                .await
                .unwrap();
            client.write_all(&[b'z'; 20_000]).await.unwrap();
            // ... and nothing more: the client stalls with the connection open.
            let outcome = next_seen(&mut seen).await;
            assert_eq!(
                protocol_kind(&outcome),
                Some(RemoteErrorKind::BodyTimeout),
                "{pace:?} run {run}: {outcome:?}"
            );
            assert!(read_all(&mut client, Duration::from_secs(5))
                .await
                .starts_with("HTTP/1.1 408 "));
        }
    }
}

/// An app whose handler hands its body to a task of its own (as a handler that stores an
/// upload in the background does), reports that it has, and never answers: the body's
/// reader outlives the connection's task.
fn detached_reader_app(pace: Pace, seen: UnboundedSender<Seen>) -> App<UnboundedSender<Seen>> {
    App::with_state(seen).route(
        http::Method::POST,
        "/upload",
        move |mut req: Request<UnboundedSender<Seen>>| async move {
            let seen = req.state().clone();
            let mut body = std::mem::take(req.body());
            // An `Ok(usize::MAX)` first says "the reader has started".
            let _ = seen.send(Ok(usize::MAX));
            tokio::spawn(async move {
                let outcome = match pace {
                    Pace::Fast => body.bytes().await.map(|b| b.len()),
                    Pace::Late => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        body.bytes().await.map(|b| b.len())
                    }
                    Pace::Slow => {
                        let mut total = 0;
                        loop {
                            match body.chunk().await {
                                Some(Ok(piece)) => total += piece.len(),
                                Some(Err(e)) => break Err(e),
                                None => break Ok(total),
                            }
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                    }
                };
                let _ = seen.send(outcome);
            });
            std::future::pending::<Response>().await
        },
    )
}

/// Sends the head and part of a 900 KB upload, and waits until the handler has started.
async fn start_upload(client: &mut DuplexStream, seen: &mut UnboundedReceiver<Seen>) {
    client
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n")
        .await
        .unwrap();
    client.write_all(&vec![b'x'; 30_000]).await.unwrap();
    assert_eq!(next_seen(seen).await, Ok(usize::MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_abort_is_shutdown_at_every_pace() {
    for pace in PACES {
        for run in 0..RUNS {
            let (tx, mut seen) = unbounded_channel();
            let (mut client, service, task) =
                connect(detached_reader_app(pace, tx), ServerConfig::default()).await;
            start_upload(&mut client, &mut seen).await;
            // A graceful shutdown lets the request go on; the abort (the shutdown timeout
            // ran out) ends it.
            service.shutdown();
            if run % 2 == 0 {
                tokio::task::yield_now().await;
            }
            service.abort();
            let outcome = tokio::time::timeout(Duration::from_secs(10), seen.recv()).await;
            let outcome = match outcome {
                Ok(outcome) => outcome.expect("the handler reported"),
                Err(_) => panic!(
                    "{pace:?} run {run}: no outcome in 10 s; connection task finished: {}",
                    task.is_finished()
                ),
            };
            assert_eq!(
                outcome,
                Err(BodyError::Shutdown),
                "{pace:?} run {run}: {outcome:?}"
            );
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("the connection ended")
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_task_that_ends_is_connection_lost_at_every_pace() {
    for pace in PACES {
        for run in 0..RUNS {
            let (tx, mut seen) = unbounded_channel();
            let (mut client, _service, task) =
                connect(detached_reader_app(pace, tx), ServerConfig::default()).await;
            start_upload(&mut client, &mut seen).await;
            if run % 2 == 0 {
                tokio::task::yield_now().await;
            }
            // The task ends for a reason of its own (here: dropped).
            task.abort();
            let outcome = next_seen(&mut seen).await;
            assert_eq!(
                outcome,
                Err(BodyError::ConnectionLost),
                "{pace:?} run {run}: {outcome:?}"
            );
        }
    }
}

/// An app whose `/put` handler logs when it asks for the body, and echoes the body's length
/// (or answers at once, without reading, when `read` is false).
fn continue_app(read: bool, delay: Duration, log: Arc<Mutex<Vec<&'static str>>>) -> App<()> {
    App::new().route(http::Method::PUT, "/put", move |mut req: Request| {
        let log = log.clone();
        async move {
            tokio::time::sleep(delay).await;
            if !read {
                return Response::empty(StatusCode::CREATED);
            }
            log.lock().unwrap().push("handler asks");
            match req.body().bytes().await {
                Ok(body) => Response::text(body.len().to_string()),
                Err(_) => Response::empty(StatusCode::BAD_REQUEST),
            }
        }
    })
}

const EXPECTING: &[u8] =
    b"PUT /put HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";

#[tokio::test]
async fn continue_is_sent_when_the_handler_asks_for_the_body() {
    for delay in [Duration::ZERO, Duration::from_millis(30)] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (mut client, _service, _task) = connect(
            continue_app(true, delay, log.clone()),
            ServerConfig::default(),
        )
        .await;
        client.write_all(EXPECTING).await.unwrap();
        let mut interim = [0u8; 25];
        client.read_exact(&mut interim).await.unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        log.lock().unwrap().push("client got 100");
        assert_eq!(*log.lock().unwrap(), ["handler asks", "client got 100"]);
        client.write_all(b"hello").await.unwrap();
        let mut head = vec![0u8; 12];
        client.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
}

#[tokio::test]
async fn no_continue_for_a_handler_that_answers_without_the_body() {
    // At once, and after not being ready on its first poll.
    for delay in [Duration::ZERO, Duration::from_millis(30)] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (mut client, _service, _task) =
            connect(continue_app(false, delay, log), ServerConfig::default()).await;
        client.write_all(EXPECTING).await.unwrap();
        let answer = read_all(&mut client, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 201 "), "{delay:?}: {answer}");
        assert!(!answer.contains("100 Continue"), "{delay:?}: {answer}");
        // The client never sent the body: the connection cannot be reused, and closes.
        assert!(answer.contains("connection: close"), "{delay:?}: {answer}");
    }
}

#[tokio::test]
async fn the_core_says_whether_a_request_has_a_body() {
    let app = App::new().route(http::Method::POST, "/", |mut req: Request| async move {
        Response::text(format!("{:?}", req.body().bytes().await.map(|b| b.len())))
    });
    let (mut client, _service, _task) = connect(app, ServerConfig::default()).await;
    // `Content-Length: 00` is an empty body: the core frames it, not a header lookup.
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(answer.ends_with("Ok(0)"), "{answer}");
}

/// One request on its own connection; the whole answer.
pub(super) async fn exchange<S: Send + Sync + 'static>(app: App<S>, request: &str) -> String {
    let (mut client, _service, _task) = connect(app, ServerConfig::default()).await;
    client.write_all(request.as_bytes()).await.unwrap();
    read_all(&mut client, Duration::from_secs(5)).await
}

fn routed_app() -> App<()> {
    App::new()
        .route(http::Method::GET, "/users/{id}", |req: Request| async move {
            Response::text(format!("user {}", req.param("id").unwrap()))
        })
        .route(http::Method::GET, "/users/me", |_req: Request| async {
            Response::text("me")
        })
        .route(http::Method::POST, "/users/{id}", |_req: Request| async {
            Response::empty(StatusCode::CREATED)
        })
        .route(http::Method::GET, "/files/{*path}", |req: Request| async move {
            Response::text(req.param("path").unwrap().to_owned())
        })
}

#[tokio::test]
async fn the_app_routes_through_the_router() {
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // A literal route beside a parameter: each is reached (registration order aside).
    assert!(exchange(routed_app(), &get("/users/me"))
        .await
        .ends_with("\r\n\r\nme"));
    assert!(exchange(routed_app(), &get("/users/7"))
        .await
        .ends_with("\r\n\r\nuser 7"));
    // Parameters are percent-decoded; a catch-all takes the rest of the path.
    assert!(exchange(routed_app(), &get("/users/J%C3%BCrgen%20K"))
        .await
        .ends_with("\r\n\r\nuser Jürgen K"));
    assert!(exchange(routed_app(), &get("/files/a/b%2Fc.txt"))
        .await
        .ends_with("\r\n\r\na/b/c.txt"));
    // A parameter that is not UTF-8 once decoded is the client's fault.
    assert!(exchange(routed_app(), &get("/users/%FF"))
        .await
        .starts_with("HTTP/1.1 400 "));
    // 404 for an unknown path, 405 with `Allow` for a known one.
    assert!(exchange(routed_app(), &get("/nowhere"))
        .await
        .starts_with("HTTP/1.1 404 "));
    let put = "PUT /users/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let refused = exchange(routed_app(), put).await;
    assert!(refused.starts_with("HTTP/1.1 405 "), "{refused}");
    assert!(refused.contains("allow: GET, HEAD, POST\r\n"), "{refused}");
}

#[tokio::test]
async fn head_is_served_by_the_get_route_without_the_body() {
    let answer = exchange(
        routed_app(),
        "HEAD /users/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // The GET answer's length, and no body.
    assert!(answer.contains("content-length: 6\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
}

/// A streamed response whose handler gives up (`BodySender::abort`) ends the connection after
/// the pieces already sent and without the body's last chunk: the client cannot take the
/// shorter body for the whole. A sender dropped instead ends the body, complete.
#[tokio::test]
async fn an_aborted_streamed_response_never_ends_as_complete() {
    let app = App::new().route(http::Method::GET, "/{how}", |req: Request| async move {
        let abort = req.param("how") == Some("abort");
        let (response, mut body) = Response::stream(http::HeaderValue::from_static("text/plain"));
        tokio::spawn(async move {
            body.send("first piece").await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            if abort {
                body.abort();
            }
        });
        response
    });
    let aborted = exchange(app, "GET /abort HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(aborted.contains("transfer-encoding: chunked"), "{aborted}");
    assert!(aborted.ends_with("b\r\nfirst piece\r\n"), "{aborted:?}");

    let app = App::new().route(http::Method::GET, "/{how}", |_req: Request| async move {
        let (response, mut body) = Response::stream(http::HeaderValue::from_static("text/plain"));
        tokio::spawn(async move { body.send("first piece").await.unwrap() });
        response
    });
    let (mut client, _service, _task) = connect(app, ServerConfig::default()).await;
    client
        .write_all(b"GET /end HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let complete = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(
        complete.ends_with("b\r\nfirst piece\r\n0\r\n\r\n"),
        "{complete:?}"
    );
}
