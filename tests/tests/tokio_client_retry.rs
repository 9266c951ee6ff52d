//! The client's one safe retry: an idempotent request that fails on a reused (stale)
//! connection before any response byte is sent again on a fresh one; a POST is not. And a
//! connection seen closed while idle is not reused at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tether_tokio::{Client, ClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers one request per connection as if keep-alive, then drops the
/// connection (the race a pooled client must survive). Returns its port and accept count.
async fn one_shot_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                // Dropping the stream closes it: the client's pooled copy is now stale.
            });
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_requests_retry_once_on_a_stale_connection() {
    let (port, accepted) = one_shot_server().await;
    let url = format!("http://127.0.0.1:{port}/");
    let client = Client::default();
    let mut first = client.get(&url).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "ok");
    assert_eq!(client.pool_stats(&url).unwrap().idle, 1, "kept for reuse");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = client
        .get(&url)
        .send()
        .await
        .expect("retried on a fresh connection");
    assert_eq!(second.text().await.unwrap(), "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// The first request on each connection is answered; the second is read and the connection
/// dropped without an answer (the server may have acted on it). Returns its port.
async fn answers_once_then_drops_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                for answer in [true, false] {
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    if answer {
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        let _ = stream.write_all(ok).await;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_not_retried() {
    let port = answers_once_then_drops_server().await;
    let url = format!("http://127.0.0.1:{port}/");
    let client = Client::default();
    let mut first = client.get(&url).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "ok");
    let result = client.post(&url).body("data").send().await;
    assert!(
        matches!(result, Err(ClientError::Protocol(_) | ClientError::Io(_))),
        "{result:?}"
    );
    assert_eq!(client.pool_stats(&url).unwrap().in_use, 0);
}

/// A connection the server closed while it sat idle is not handed out: the POST goes on a
/// fresh one (curl's and undici's check before reuse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_while_idle_is_not_reused_for_a_post() {
    let (port, accepted) = one_shot_server().await;
    let url = format!("http://127.0.0.1:{port}/");
    let client = Client::default();
    let mut first = client.get(&url).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "ok");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut response = client.post(&url).body("data").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
