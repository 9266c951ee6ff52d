//! The demo application, shared by the demo binary and the tests that run it in-process.

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tether_async_std::websocket::Message;
use tether_async_std::{App, Request, Response, ServerConfig, Teardown};

/// What the demo has served: its application state.
#[derive(Default)]
pub struct Counters {
    requests: AtomicU64,
    websockets: AtomicU64,
}

/// The demo's handlers see its state.
type DemoRequest = Request<Arc<Counters>>;

async fn hello(_req: DemoRequest) -> Response {
    Response::text("Hello, World!")
}

async fn echo(mut req: DemoRequest) -> Response {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(http::HeaderValue::from_static("application/octet-stream"));
    match req.body().bytes().await {
        Ok(body) => Response::bytes(content_type, body),
        // The core has already answered a body it refused (413, 400, 408); nothing reaches
        // the client from here, but a handler must return something.
        Err(_) => Response::empty(http::StatusCode::BAD_REQUEST),
    }
}

async fn stream(req: DemoRequest) -> Response {
    let n: usize = req.query("n").and_then(|n| n.parse().ok()).unwrap_or(10);
    let (response, mut body) =
        Response::stream(http::HeaderValue::from_static("text/plain; charset=utf-8"));
    let job = async move {
        for i in 0..n {
            body.send(format!("line {i}\n")).await?;
        }
        Ok::<_, tether_async_std::ResponseClosed>(())
    };
    if req.scheduler().spawn(job).await.is_err() {
        return Response::empty(http::StatusCode::SERVICE_UNAVAILABLE);
    }
    response
}

async fn slow(req: DemoRequest) -> Response {
    let ms: u64 = req.query("ms").and_then(|n| n.parse().ok()).unwrap_or(1000);
    // async-io's timer: the same under async-std's executor and smol's.
    async_io::Timer::after(Duration::from_millis(ms.min(60_000))).await;
    Response::text(format!("waited {ms} ms"))
}

async fn websocket(mut req: DemoRequest) -> Response {
    let (response, pending) = match req.websocket(&["echo", "chat"]) {
        Ok(accepted) => accepted,
        Err(refusal) => return refusal,
    };
    req.state().websockets.fetch_add(1, Ordering::Relaxed);
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
        Ok::<_, tether_async_std::websocket::WsError>(())
    };
    match req.scheduler().spawn(session).await {
        Ok(_) => response,
        Err(_) => Response::empty(http::StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The demo's routes, state, middleware and setup/teardown context.
pub fn app() -> App<Arc<Counters>> {
    App::with_state(Arc::new(Counters::default()))
        .middleware(
            |req: DemoRequest, next: tether_async_std::Next<Arc<Counters>>| async move {
                req.state().requests.fetch_add(1, Ordering::Relaxed);
                next.run(req).await
            },
        )
        .cleanup_ctx("counters", |state: Arc<Counters>| async move {
            let counters = state.clone();
            let teardown = Teardown::new(async move {
                println!(
                    "served {} requests and {} WebSocket sessions",
                    counters.requests.load(Ordering::Relaxed),
                    counters.websockets.load(Ordering::Relaxed)
                );
                Ok(())
            });
            Ok((state, teardown))
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
