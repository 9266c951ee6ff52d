//! A server may answer before it has read a request's body, and stop reading (413 for a body
//! too large, 401/407 challenges): the client reads while it writes (RFC 9112 §9.5), so it
//! gets that answer instead of waiting forever for socket buffer space, and does not reuse
//! the connection (the rest of its body was never read).

use std::time::Duration;
use tether_tokio::{Client, ClientConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_before_the_body_is_read_is_the_response() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/upload", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!")
            .await
            .unwrap();
        // Never reads the body; holds the connection open.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    });
    let mut config = ClientConfig::default();
    config.timeouts.total = Some(Duration::from_secs(10));
    let client = Client::new(config);
    let body = vec![7u8; 32 << 20];
    let mut response = client
        .post(&url)
        .body(body)
        .send()
        .await
        .expect("the early answer");
    assert_eq!(response.status(), 413);
    assert_eq!(response.text().await.unwrap(), "big!");
    let stats = client.pool_stats(&url).unwrap();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "not kept for reuse");
    server.abort();
}
