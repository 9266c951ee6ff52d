//! `axum::WebSocketUpgrade` in a tower service behind `App::fallback_service`, over the
//! in-memory connection, against a client WebSocket of this crate: the handshake with a
//! subprotocol and permessage-deflate, echo both ways, the refusals, a shutdown's 1001, and
//! the sessions that must never start (the connection ends first, a layer replaced the
//! `101`).

use super::tests::{connect, exchange};
use crate::axum::{UpgradeRejection, WebSocketUpgrade};
use crate::runtime::test_support::{rt, TokioIo};
use crate::websocket::{self, Message, WebSocket};
use crate::{App, Body, ServerConfig};
use axum_core::extract::FromRequestParts;
use axum_core::response::IntoResponse;
use bytes::Bytes;
use http::StatusCode;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tether_core::ws::{
    ClientHandshake, CloseReason, DeflateConfig, HandshakeError, Negotiated,
    WebSocket as CoreWebSocket, WsConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Turns a hang into a failure.
async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}

/// What became of a session's callback.
#[derive(Default)]
struct Session {
    started: AtomicBool,
    ended: AtomicBool,
    /// The callback (run or not) is gone.
    dropped: AtomicBool,
}

/// Sets `dropped` when the callback that holds it is dropped.
struct DropFlag(Arc<Session>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

/// A service whose every request goes through the extractor: an echo session with the
/// subprotocols `echo` and `chat`; `status` replaces the `101` (a layer that rewrites it).
fn echo_app(session: Arc<Session>, status: Option<StatusCode>) -> App<()> {
    App::new().fallback_service(tower::service_fn(move |request: http::Request<Body>| {
        let session = session.clone();
        async move {
            let (mut parts, _body) = request.into_parts();
            let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(upgrade) => upgrade.protocols(["echo", "chat"]),
                Err(rejection) => return Ok::<_, Infallible>(rejection.into_response()),
            };
            assert_eq!(upgrade.selected_protocol(), Some("echo"));
            let flag = DropFlag(session.clone());
            let mut response = upgrade.on_upgrade(move |mut socket: WebSocket| async move {
                let _flag = flag;
                session.started.store(true, Ordering::SeqCst);
                while let Some(message) = socket.recv().await {
                    let reply = match message {
                        Message::Text(text) => Message::Text(text),
                        Message::Binary(data) => Message::Binary(data),
                        _ => continue,
                    };
                    if socket.send_message(reply).await.is_err() {
                        break;
                    }
                }
                session.ended.store(true, Ordering::SeqCst);
            });
            // As axum's router does to every response with an exact size hint.
            response.headers_mut().insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_static("0"),
            );
            if let Some(status) = status {
                *response.status_mut() = status;
            }
            Ok(response)
        }
    }))
}

fn deflating() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.websocket.deflate = Some(DeflateConfig::default());
    config
}

/// The opening handshake of a client offering `chat, echo` and permessage-deflate: its
/// request, and what checks the answer.
fn client_handshake(config: &WsConfig) -> (ClientHandshake, String) {
    let uri = "ws://example.test/ws".parse().unwrap();
    let (handshake, request) =
        ClientHandshake::new(&uri, [7; 16], &["chat", "echo"], config).expect("a valid handshake");
    let mut text = format!(
        "GET {} HTTP/1.1\r\nHost: example.test\r\n",
        request.uri().path()
    );
    for (name, value) in request.headers() {
        text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    text.push_str("\r\n");
    (handshake, text)
}

/// Reads a response head; the head as text, and the bytes that followed it.
async fn read_head(client: &mut DuplexStream) -> (String, Bytes) {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = Bytes::copy_from_slice(&received[end + 4..]);
            return (
                String::from_utf8_lossy(&received[..end + 4]).into_owned(),
                rest,
            );
        }
        let n = within(client.read(&mut buffer)).await.unwrap();
        assert!(
            n > 0,
            "the head ends: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    }
}

/// A response head as `http` types, for the client handshake to check.
fn parse_head(head: &str) -> http::Response<()> {
    let mut lines = head.split("\r\n").filter(|line| !line.is_empty());
    let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
    let mut response = http::Response::builder().status(status);
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        response = response.header(name.trim(), value.trim());
    }
    response.body(()).unwrap()
}

/// Connects a client WebSocket to `app` through the extractor's route.
async fn open(
    app: App<()>,
    config: ServerConfig,
) -> (WebSocket, Negotiated, crate::Service<()>, String) {
    let client_config = WsConfig::default();
    let (handshake, request) = client_handshake(&client_config);
    let (mut client, service, _task) = connect(app, config).await;
    client.write_all(request.as_bytes()).await.unwrap();
    let (head, trailing) = read_head(&mut client).await;
    let negotiated = handshake
        .validate(&parse_head(&head))
        .unwrap_or_else(|e| panic!("{e}: {head}"));
    let mut keys = 0x9E37_79B9u32;
    let core = CoreWebSocket::client(client_config, negotiated.deflate, rt().now(), move || {
        keys = keys.rotate_left(5) ^ 0x0123_4567;
        keys.to_be_bytes()
    });
    let socket = websocket::spawn(&rt(), TokioIo(client), core, trailing);
    (socket, negotiated, service, head)
}

#[tokio::test]
async fn an_upgrade_through_the_extractor_echoes_with_subprotocol_and_deflate() {
    let session = Arc::new(Session::default());
    let (mut socket, negotiated, _service, head) =
        open(echo_app(session.clone(), None), deflating()).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(negotiated.protocol.as_deref(), Some("echo"));
    assert!(negotiated.deflate.is_some(), "{head}");
    let text = "compressible text, ".repeat(2_000);
    socket.send_text(text.clone()).await.unwrap();
    assert_eq!(within(socket.recv()).await, Some(Message::Text(text)));
    let data = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    socket.send_binary(data.clone()).await.unwrap();
    assert_eq!(within(socket.recv()).await, Some(Message::Binary(data)));
    assert!(session.started.load(Ordering::SeqCst));
    socket.close(1000, "done").await.unwrap();
    assert_eq!(within(socket.recv()).await, None);
    assert!(socket
        .close_reason()
        .is_some_and(|reason| reason.is_clean()));
    within(async {
        while !session.ended.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_shutdown_closes_the_session_with_1001_and_waits_for_it() {
    let session = Arc::new(Session::default());
    let (mut socket, _, service, _) = open(echo_app(session.clone(), None), deflating()).await;
    socket.send_text("before").await.unwrap();
    assert_eq!(
        within(socket.recv()).await,
        Some(Message::Text("before".into()))
    );
    service.shutdown();
    within(service.close_websockets()).await;
    assert_eq!(within(socket.recv()).await, None);
    assert!(
        matches!(
            socket.close_reason(),
            Some(CloseReason::ByPeer {
                code: Some(1001),
                ..
            })
        ),
        "{:?}",
        socket.close_reason()
    );
    // The session is the scheduler's: its end is awaited by the shutdown's finish.
    within(service.finish()).await.unwrap();
    assert!(session.ended.load(Ordering::SeqCst));
    assert!(session.dropped.load(Ordering::SeqCst));
}

/// Waits until the session's callback is dropped; whether it ran.
async fn dropped(session: &Session) -> bool {
    within(async {
        while !session.dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    session.started.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_connection_that_ends_before_the_switch_never_starts_the_session() {
    let session = Arc::new(Session::default());
    let (_, request) = client_handshake(&WsConfig::default());
    let (mut client, _service, task) = connect(echo_app(session.clone(), None), deflating()).await;
    client.write_all(request.as_bytes()).await.unwrap();
    drop(client);
    within(task).await.unwrap();
    assert!(!dropped(&session).await, "the callback did not run");
}

#[tokio::test]
async fn a_layer_that_replaces_the_101_switches_nothing() {
    let session = Arc::new(Session::default());
    let (_, request) = client_handshake(&WsConfig::default());
    let app = echo_app(session.clone(), Some(StatusCode::FORBIDDEN));
    let (mut client, _service, _task) = connect(app, deflating()).await;
    client.write_all(request.as_bytes()).await.unwrap();
    let (head, _) = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(!dropped(&session).await, "the callback did not run");
    // The connection goes on as HTTP.
    client
        .write_all(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[tokio::test]
async fn requests_that_are_not_valid_upgrades_get_the_cores_refusal() {
    let app = || echo_app(Arc::new(Session::default()), None);
    let plain = exchange(
        app(),
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    assert_eq!(plain.matches("content-length: 0\r\n").count(), 1, "{plain}");
    let upgrade = |method: &str, version: &str| {
        format!(
            "{method} /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\r\n"
        )
    };
    let old = exchange(app(), &upgrade("GET", "8")).await;
    assert!(old.starts_with("HTTP/1.1 426"), "{old}");
    assert!(old.contains("sec-websocket-version: 13\r\n"), "{old}");
    let posted = exchange(app(), &upgrade("POST", "13")).await;
    assert!(posted.starts_with("HTTP/1.1 400"), "{posted}");
    let bad_key = upgrade("GET", "13").replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
    let bad_key = exchange(app(), &bad_key).await;
    assert!(bad_key.starts_with("HTTP/1.1 400"), "{bad_key}");
}

#[tokio::test]
async fn outside_tethers_server_the_extractor_says_so() {
    let parts = |upgrade: bool| {
        let mut request = http::Request::get("/ws").header("host", "x");
        if upgrade {
            request = request
                .header("upgrade", "websocket")
                .header("connection", "upgrade")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("sec-websocket-version", "13");
        }
        request.body(()).unwrap().into_parts().0
    };
    let rejection = WebSocketUpgrade::from_request_parts(&mut parts(true), &())
        .await
        .unwrap_err();
    assert_eq!(rejection, UpgradeRejection::NotServedByTether);
    assert_eq!(
        rejection.into_response().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let rejection = WebSocketUpgrade::from_request_parts(&mut parts(false), &())
        .await
        .unwrap_err();
    assert!(
        matches!(
            rejection,
            UpgradeRejection::Refused(HandshakeError::BadRequest(_))
        ),
        "{rejection:?}"
    );
    assert_eq!(rejection.into_response().status(), StatusCode::BAD_REQUEST);
}

/// Another connection to a running service; the client's end.
fn another_connection(service: &crate::Service<()>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let serving = service.clone();
    tokio::spawn(async move {
        serving
            .serve_connection(TokioIo(server), crate::ConnectionInfo::default())
            .await
    });
    client
}

#[tokio::test]
async fn a_scheduler_without_room_answers_503_and_switches_nothing() {
    let session = Arc::new(Session::default());
    let mut config = deflating();
    config.jobs = crate::jobs::SchedulerConfig::default()
        .with_limit(1)
        .with_pending_limit(0);
    let (mut first, _, service, _) = open(echo_app(session.clone(), None), config).await;
    first.send_text("the one session").await.unwrap();
    assert!(within(first.recv()).await.is_some());
    let (_, request) = client_handshake(&WsConfig::default());
    let mut second = another_connection(&service);
    second.write_all(request.as_bytes()).await.unwrap();
    let (head, _) = read_head(&mut second).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    // The refused session's callback is gone (the running one holds its own flag).
    within(async {
        while !session.dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Once the first session ends, its place is free again.
    first.close(1000, "done").await.unwrap();
    assert_eq!(within(first.recv()).await, None);
    within(async {
        loop {
            let mut third = another_connection(&service);
            third.write_all(request.as_bytes()).await.unwrap();
            let (head, _) = read_head(&mut third).await;
            if head.starts_with("HTTP/1.1 101") {
                break;
            }
            assert!(head.starts_with("HTTP/1.1 503"), "{head}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
