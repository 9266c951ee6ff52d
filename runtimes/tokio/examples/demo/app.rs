//! The demo application, shared by the demo binary and the tests that run it in-process.

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tether_tokio::websocket::Message;
use tether_tokio::{App, Request, Response, ServerConfig};

/// Shared state: what the demo has served.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    websockets: AtomicU64,
}

async fn hello(_req: Request) -> Response {
    Response::text("Hello, World!")
}

async fn echo(mut req: Request) -> Response {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    match req.body().bytes().await {
        Ok(body) => Response::bytes(&content_type, body),
        // The core has already answered a body it refused (413, 400); nothing reaches the
        // client from here, but a handler must return something.
        Err(_) => Response::status(http::StatusCode::BAD_REQUEST),
    }
}

async fn stream(req: Request) -> Response {
    let n: usize = req.query("n").and_then(|n| n.parse().ok()).unwrap_or(10);
    let (response, body) = Response::stream("text/plain; charset=utf-8");
    let job = async move {
        for i in 0..n {
            body.send(format!("line {i}\n"))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    };
    if req.scheduler().spawn(job).await.is_err() {
        return Response::status(http::StatusCode::SERVICE_UNAVAILABLE);
    }
    response
}

async fn slow(req: Request) -> Response {
    let ms: u64 = req.query("ms").and_then(|n| n.parse().ok()).unwrap_or(1000);
    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    Response::text(format!("waited {ms} ms"))
}

async fn websocket(mut req: Request) -> Response {
    let (response, pending) = match req.websocket(&["echo", "chat"]) {
        Ok(accepted) => accepted,
        Err(refusal) => return refusal,
    };
    if let Some(counters) = req.state::<Counters>() {
        counters.websockets.fetch_add(1, Ordering::Relaxed);
    }
    let session = async move {
        let Some(socket) = pending.await else {
            return Ok(());
        };
        let (mut sink, mut stream) = socket.split();
        while let Some(message) = stream.next().await {
            let reply = match message {
                Message::Text(text) => Message::Text(text),
                Message::Binary(data) => Message::Binary(data),
                _ => continue,
            };
            if sink.send(reply).await.is_err() {
                break;
            }
        }
        Ok::<_, String>(())
    };
    match req.scheduler().spawn(session).await {
        Ok(_) => response,
        Err(_) => Response::status(http::StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The demo's routes, state, middleware and setup/teardown context.
pub fn app() -> App {
    App::new()
        .state(Counters::default())
        .middleware(|req: Request, next: tether_tokio::Next| async move {
            if let Some(counters) = req.state::<Counters>() {
                counters.requests.fetch_add(1, Ordering::Relaxed);
            }
            next.run(req).await
        })
        .cleanup_ctx("counters", |state| async move {
            let counters = state.get::<Arc<Counters>>().cloned();
            let teardown: tether_tokio::Teardown = Box::pin(async move {
                if let Some(c) = counters {
                    println!(
                        "served {} requests and {} WebSocket sessions",
                        c.requests.load(Ordering::Relaxed),
                        c.websockets.load(Ordering::Relaxed)
                    );
                }
            });
            Ok(teardown)
        })
        .route(http::Method::GET, "/", hello)
        .route(http::Method::POST, "/echo", echo)
        .route(http::Method::GET, "/stream", stream)
        .route(http::Method::GET, "/slow", slow)
        .route(http::Method::GET, "/ws", websocket)
}

/// The demo's server settings: the defaults (head 30 s, keep-alive 75 s, body limit 1 MiB),
/// and a WebSocket heartbeat every 15 s.
pub fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.websocket.heartbeat = Some(Duration::from_secs(15));
    config
}
