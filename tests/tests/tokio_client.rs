//! The client behaviour suite (`tether_tests::client_suite`) against the tokio driver:
//! `tether_tokio::Client` (tokio's DNS and TCP, rustls, tokio's timer and tasks) on a
//! multi-thread runtime with two workers, the demo server being the tokio demo
//! application. Below the suite, what only the tokio adapter has.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use std::time::Duration;
use tether_rt::{BoxFuture, ClientConfig};
use tether_tests::client_suite::ClientDriver;
use tether_tests::server_suite::DemoServer;
use tether_tests::TokioServer;

fn client(config: ClientConfig) -> tether_rt::Client {
    tether_tokio::Client::new(config).into()
}

/// Like `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`: a runtime per test.
fn block_on(body: BoxFuture<()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(body);
}

fn spawn(task: BoxFuture<()>) {
    drop(tokio::spawn(task));
}

fn sleep(duration: Duration) -> BoxFuture<()> {
    Box::pin(tokio::time::sleep(duration))
}

fn demo_server(config: tether_tokio::ServerConfig) -> Box<dyn DemoServer> {
    Box::new(TokioServer::start(demo::app(), config))
}

static DRIVER: ClientDriver = ClientDriver {
    client,
    block_on,
    spawn,
    sleep,
    demo: demo_server,
};

tether_tests::client_suite!(DRIVER);

// ---- the tokio adapter's own surface ----------------------------------------------------

/// The suite drives the `tether_rt::Client` inside `tether_tokio::Client`; this checks that
/// the wrapper's own methods reach the same pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_client_is_the_shared_client_behind_its_own_methods() {
    let server = TokioServer::start(demo::app(), demo::config());
    let client = tether_tokio::Client::default();
    let url = server.url("/");
    let response = client
        .request(http::Method::HEAD, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let mut response = client
        .post(&server.url("/echo"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "x");
    let (ws, protocol) = client
        .ws_connect(&server.url("/ws"), &["echo"])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("echo"));
    ws.close(1000, "bye").await.unwrap();
    let shared: tether_rt::Client = client.clone().into();
    assert_eq!(shared.pool_stats(&url), client.pool_stats(&url));
    assert_eq!(client.pool_stats(&url).unwrap().idle, 1);
    client.close().await;
    assert_eq!(shared.pool_stats(&url).unwrap().idle, 0);
    assert!(matches!(
        shared.get(&url).send().await,
        Err(tether_tokio::ClientError::Closed)
    ));
}
