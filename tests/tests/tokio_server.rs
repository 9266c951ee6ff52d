//! The server behaviour suite (`tether_tests::server_suite`) against the tokio driver
//! running the tokio demo application.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use tether_tests::server_suite::DemoServer;
use tether_tests::TokioServer;

fn start(config: tether_tokio::ServerConfig) -> Box<dyn DemoServer> {
    Box::new(TokioServer::start(demo::app(), config))
}

tether_tests::server_suite!(start);
