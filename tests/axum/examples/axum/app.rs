//! The axum application of the example, as `axum::serve` would run it: path and query
//! extractors, JSON with shared state, a streamed body, server-sent events, a slow route,
//! tower-http's compression and trace layers; and a WebSocket echo, whose one change is the
//! extractor: tether's `WebSocketUpgrade` in place of axum's (which needs hyper's upgrades).
//! The tests serve the same router.

use axum::extract::{Json, Path, Query, State};
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tether_tokio::axum::WebSocketUpgrade;
use tether_tokio::websocket::{Message, WebSocket};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

/// What the handlers share.
#[derive(Clone, Default)]
pub struct AppState {
    posts: Arc<AtomicUsize>,
}

async fn user(Path(id): Path<u32>, Query(query): Query<HashMap<String, String>>) -> String {
    let greeting = query.get("greeting").map_or("hello", String::as_str);
    format!("{greeting}, user {id}")
}

async fn echo_json(
    State(state): State<AppState>,
    Json(value): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let count = state.posts.fetch_add(1, Ordering::SeqCst) + 1;
    Json(serde_json::json!({ "got": value, "count": count }))
}

async fn streamed() -> axum::body::Body {
    let pieces = stream::unfold(0, |i| async move {
        if i == 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok::<_, Infallible>(format!("piece {i};")), i + 1))
    });
    // Fused: tower-http's compression polls a body once more after its end, which an
    // `unfold` stream does not allow (it panics).
    axum::body::Body::from_stream(pieces.fuse())
}

async fn events() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(stream::iter(
        (0..3).map(|i| Ok(Event::default().data(format!("event {i}")))),
    ))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(600)).await;
    "finished"
}

/// `GET /ws`: a WebSocket echo of text and binary messages, with the subprotocols `echo` and
/// `chat` (in that order of preference); permessage-deflate, heartbeat and limits are the
/// server's (`ServerConfig::websocket`).
async fn websocket(upgrade: WebSocketUpgrade) -> axum::response::Response {
    upgrade.protocols(["echo", "chat"]).on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(message) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(text),
            Message::Binary(data) => Message::Binary(data),
            // Pings are answered by the connection itself.
            _ => continue,
        };
        if socket.send_message(reply).await.is_err() {
            break;
        }
    }
}

/// The router.
pub fn router() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async { "hello from axum, served by tether, compressed by tower-http" }),
        )
        .route("/users/{id}", get(user))
        .route("/json", post(echo_json))
        .route("/stream", get(streamed))
        .route("/sse", get(events))
        .route("/slow", get(slow))
        .route("/ws", get(websocket))
        .with_state(AppState::default())
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}
