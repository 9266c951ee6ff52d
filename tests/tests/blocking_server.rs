//! The server behaviour suite (`tether_tests::server_suite`) against the blocking example
//! (`core/examples/blocking_server.rs`: `std::net` and a thread per connection driving the
//! core directly), for the scenarios that apply to it: it serves the demo's endpoints with
//! the core's default limits and deadlines, and has no configuration and no graceful
//! shutdown (stopping it ends the process). Left out: the scenarios that set short
//! deadlines (slowloris, heartbeat, idle keep-alive) and the two graceful-shutdown ones.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tether_tests::server_suite::DemoServer;

/// The blocking example, run as a user would.
struct BlockingServer {
    addr: SocketAddr,
    child: Arc<Mutex<Child>>,
}

impl DemoServer for BlockingServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn shutdown_trigger(&self) -> Box<dyn Fn() + Send> {
        let child = self.child.clone();
        Box::new(move || {
            let _ = child.lock().unwrap().kill();
        })
    }

    fn finished(self: Box<Self>) -> Result<(), String> {
        // Killed on purpose: it has no graceful shutdown to report on.
        self.child
            .lock()
            .unwrap()
            .wait()
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl Drop for BlockingServer {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn start(_config: tether_rt::ServerConfig) -> Box<dyn DemoServer> {
    let mut child = Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "tether-core",
            "--example",
            "blocking_server",
            "--",
        ])
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cargo run");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the server's first line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("the server printed {line:?}"));
    Box::new(BlockingServer {
        addr,
        child: Arc::new(Mutex::new(child)),
    })
}

tether_tests::server_suite!(@tests start;
    endpoints_with_curl, routing_errors, error_answers_over_raw_sockets,
    thousand_concurrent_keep_alive_connections, python_clients, node_ws_client,
    aiohttp_http_client, pipelined_requests_are_answered_in_order,
    continue_is_sent_only_when_the_body_is_read);
