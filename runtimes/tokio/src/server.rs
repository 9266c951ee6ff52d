//! The tokio server: binds, accepts, and hands each connection to the shared
//! [`Service`](tether_rt::Service), which pumps the core's server connection; signals and
//! the order of a graceful shutdown.

use crate::clock::runtime;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tether_rt::{App, ServerConfig, Service};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Triggers a graceful shutdown of a running server.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown: stop accepting, finish in-flight requests, close idle
    /// connections and WebSockets (1001), close the job scheduler, run the teardowns.
    pub fn shutdown(&self) {
        let _ = self.tx.send(true);
    }
}

/// A bound server; [`Server::serve`] runs it.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Server {
    /// Binds `addr` (the only IO before `serve`).
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let (tx, _) = watch::channel(false);
        Ok(Server {
            listener,
            config,
            shutdown: Arc::new(tx),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to stop it gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            tx: self.shutdown.clone(),
        }
    }

    /// Runs the application until a shutdown (the handle, or SIGINT/SIGTERM when
    /// `on_signals` is set), then shuts down gracefully. Fails if a setup step fails.
    pub async fn serve(self, app: App, on_signals: bool) -> Result<(), String> {
        let service = Service::start(app, self.config.clone(), runtime()).await?;
        if on_signals {
            let handle = self.shutdown_handle();
            tokio::spawn(async move {
                wait_for_signal().await;
                handle.shutdown();
            });
        }
        let permits = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let mut connections = JoinSet::new();
        let mut stop = self.shutdown.subscribe();
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Ok(permit) = permit else { break };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stop.wait_for(|s| *s) => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                // Resource exhaustion (EMFILE...): back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            let stop = self.shutdown.subscribe();
            connections.spawn(async move {
                service.serve_connection(stream, stop).await;
                drop(permit);
            });
            // Reap finished connection tasks as we go.
            while connections.try_join_next().is_some() {}
        }
        drop(self.listener);
        // In-flight requests get the shutdown timeout; then the rest are cut.
        let deadline = tokio::time::sleep(self.config.shutdown_timeout);
        tokio::pin!(deadline);
        tokio::select! {
            _ = service.close_websockets() => {}
            _ = &mut deadline => {}
        }
        loop {
            tokio::select! {
                next = connections.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    connections.abort_all();
                    while connections.join_next().await.is_some() {}
                    break;
                }
            }
        }
        service.finish().await;
        Ok(())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Work that must finish even if the caller is cancelled (a handler aborted because its
/// client left): it runs in its own task on the current tokio runtime, and the caller awaits
/// it. See [`tether_rt::runtime::shield`].
///
/// # Panics
///
/// If `future` panics (its panic is re-raised here), outside a tokio runtime, or if the
/// runtime shuts down before `future` ends.
pub async fn shield<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tether_rt::runtime::shield(&*crate::clock::runtime(), future).await
}
