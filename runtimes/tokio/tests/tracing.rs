//! What the server tells a `tracing` subscriber, over a real socket. A test binary of its
//! own: `tracing` caches per call site whether anyone listens, so a subscriber installed
//! for one test while other tests of the same process run without one is racy; here one
//! subscriber is installed for the whole process.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tether_tokio::{App, Request, Response, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Serves `app` on a free port until the returned handle's shutdown.
async fn serve(
    app: App,
) -> (
    SocketAddr,
    tether_tokio::ShutdownHandle,
    tokio::task::JoinHandle<()>,
) {
    let server = Server::bind(([127, 0, 0, 1], 0).into(), ServerConfig::default())
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
        lines
            .iter()
            .any(|l| l.contains("connection closed") && l.contains("requests=2")),
        "{text}"
    );
    assert!(
        !text.contains("ERROR"),
        "a peer's bad input is not an error of ours: {text}"
    );
}
