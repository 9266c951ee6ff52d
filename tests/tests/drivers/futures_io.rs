//! The async-std and smol drivers of the behaviour suites: `tether-async-std`'s demo
//! application served, and its client built, on either executor.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use tether_async_std::{ServeError, Server, ServerConfig, ShutdownHandle, Spawner};
use tether_tests::server_suite::DemoServer;

/// An executor: where tasks start, and how a thread waits for a future.
pub struct Executor {
    /// Where the adapter's tasks start.
    pub spawner: fn() -> Spawner,
    /// Runs a future to its end on the calling thread.
    pub block_on: fn(tether_rt::BoxFuture<()>),
}

/// async-std's executor.
#[allow(dead_code)] // Each test file uses one of the two.
pub const ASYNC_STD: Executor = Executor {
    spawner: Spawner::async_std,
    block_on: |future| async_std::task::block_on(future),
};

/// smol's global executor.
#[allow(dead_code)] // Each test file uses one of the two.
pub const SMOL: Executor = Executor {
    spawner: Spawner::smol,
    block_on: |future| smol::block_on(future),
};

/// The async-std adapter's demo application, served on its own thread.
struct Running {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    done: mpsc::Receiver<Result<(), ServeError>>,
}

impl DemoServer for Running {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn shutdown_trigger(&self) -> Box<dyn Fn() + Send> {
        let handle = self.shutdown.clone();
        Box::new(move || handle.shutdown())
    }

    fn finished(self: Box<Self>) -> Result<(), String> {
        self.done
            .recv_timeout(Duration::from_secs(40))
            .expect("the server did not finish within 40 s")
            .map_err(|e| e.to_string())
    }
}

/// Serves the demo application with `config` on `executor`.
pub fn start_demo(executor: &'static Executor, config: ServerConfig) -> Box<dyn DemoServer> {
    let (started, addr) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        (executor.block_on)(Box::pin(async move {
            let server = Server::bind("127.0.0.1:0".parse().unwrap(), config)
                .await
                .expect("bind")
                .with_spawner((executor.spawner)());
            started
                .send((server.local_addr().unwrap(), server.shutdown_handle()))
                .unwrap();
            let _ = done_tx.send(server.serve(super::demo::app()).await);
        }))
    });
    let (addr, shutdown) = addr.recv().expect("the server started");
    Box::new(Running {
        addr,
        shutdown,
        done,
    })
}
