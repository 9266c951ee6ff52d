//! The tokio server: binds, accepts, and hands each connection to the shared
//! [`Service`](tether_rt::Service), which pumps the core's server connection; the order of a
//! graceful shutdown, and the signals that start one.

use crate::clock::runtime;
use crate::listener::{Accepted, Listener};
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tether_rt::{App, CleanupError, ConnectionInfo, ServerConfig, Service, StartError};
use tokio::io::{AsyncRead, AsyncWrite};
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
        // `send_replace` stores the value even before the server subscribes.
        self.tx.send_replace(true);
    }
}

/// Why a server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The application could not start (a bad route, a failed setup step); nothing was
    /// served.
    #[error("the application could not start")]
    Start(#[from] StartError),
    /// The server ran and shut down, but teardowns failed (every teardown ran).
    #[error("shutdown: {0}")]
    Cleanup(#[from] CleanupError),
}

/// A bound server; [`Server::serve`] runs it.
///
/// It listens on TCP ([`Server::bind`], or a listener you bound: [`Server::from_tcp`]) or on
/// a Unix domain socket ([`Server::bind_unix`], [`Server::from_unix`]), and terminates TLS
/// itself if given [`Server::tls`] (feature `tls`).
#[derive(Debug)]
pub struct Server {
    listener: Listener,
    config: ServerConfig,
    shutdown: Arc<watch::Sender<bool>>,
    tls: Tls,
}

/// The TLS settings a server terminates TLS with, if any (nothing without the `tls`
/// feature).
#[derive(Debug, Clone, Default)]
struct Tls(#[cfg(feature = "tls")] Option<crate::tls::ServerTls>);

impl Server {
    /// Binds `addr` (the only IO before `serve`).
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server::from_tcp(listener, config))
    }

    /// Serves on a TCP listener bound elsewhere: port 0 chosen before the server is made,
    /// options set on the socket, or a socket inherited from systemd (socket activation:
    /// `std::net::TcpListener::from(OwnedFd)`, set non-blocking, then
    /// `TcpListener::from_std`).
    pub fn from_tcp(listener: TcpListener, config: ServerConfig) -> Server {
        Server::new(Listener::Tcp(listener), config)
    }

    /// Binds a Unix domain socket at `path`. A socket file left by a server that has gone is
    /// replaced; one with a live server behind it is an `AddrInUse` error. The file is
    /// removed when the server stops. Connections have no peer address
    /// ([`ConnectionInfo`] is empty).
    #[cfg(unix)]
    pub async fn bind_unix(
        path: impl AsRef<std::path::Path>,
        config: ServerConfig,
    ) -> io::Result<Server> {
        let listener = Listener::bind_unix(path.as_ref().to_path_buf()).await?;
        Ok(Server::new(listener, config))
    }

    /// Serves on a Unix domain socket bound elsewhere (its file is left alone).
    #[cfg(unix)]
    pub fn from_unix(listener: tokio::net::UnixListener, config: ServerConfig) -> Server {
        Server::new(
            Listener::Unix {
                listener,
                created: None,
            },
            config,
        )
    }

    fn new(listener: Listener, config: ServerConfig) -> Server {
        let (tx, _) = watch::channel(false);
        Server {
            listener,
            config,
            shutdown: Arc::new(tx),
            tls: Tls::default(),
        }
    }

    /// Terminates TLS on every connection (`https://`, `wss://`) with `tls`: its
    /// certificate, ALPN `http/1.1`, and a deadline for the handshake, past which the
    /// connection is closed.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Server {
        self.tls = Tls(Some(tls));
        self
    }

    /// Where it listens (an error for a Unix domain socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to stop it gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            tx: self.shutdown.clone(),
        }
    }

    /// Serves `app` until a shutdown: await the returned [`Serve`] to run it, after
    /// choosing what else starts a graceful shutdown
    /// ([`Serve::with_graceful_shutdown`]; the [`ShutdownHandle`] always does).
    ///
    /// ```no_run
    /// # async fn demo(server: tether_tokio::Server) -> Result<(), tether_tokio::ServeError> {
    /// let app = tether_tokio::App::new();
    /// server
    ///     .serve(app)
    ///     .with_graceful_shutdown(tether_tokio::shutdown_signal())
    ///     .await
    /// # }
    /// ```
    pub fn serve<S: Send + Sync + 'static>(self, app: App<S>) -> Serve<S> {
        Serve {
            server: self,
            app,
            signal: Box::pin(std::future::pending()),
        }
    }
}

/// A server about to serve an application; await it to run (see [`Server::serve`]).
#[must_use = "a server does nothing until awaited"]
pub struct Serve<S> {
    server: Server,
    app: App<S>,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl<S> std::fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Serve<S> {
    /// Starts a graceful shutdown when `signal` completes (e.g. [`shutdown_signal`]). The
    /// future is polled by the server itself: no task is left behind.
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Serve<S>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.signal = Box::pin(signal);
        self
    }
}

impl<S: Send + Sync + 'static> IntoFuture for Serve<S> {
    type Output = Result<(), ServeError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<(), ServeError>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self))
    }
}

/// Accepts until a shutdown, then: close WebSockets (1001), let in-flight requests finish
/// within the shutdown timeout (then abort the rest), close the job scheduler, run the
/// teardowns.
async fn run<S: Send + Sync + 'static>(serve: Serve<S>) -> Result<(), ServeError> {
    let Serve {
        server,
        app,
        mut signal,
    } = serve;
    let config = server.config.clone();
    let service = Service::start(app, config.clone(), runtime()).await?;
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut handle = server.shutdown.subscribe();
    let stop = async {
        tokio::select! {
            _ = handle.wait_for(|stop| *stop) => {}
            () = &mut signal => {}
        }
    };
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            () = &mut stop => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = server.listener.accept() => accepted,
            () = &mut stop => break,
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            // Resource exhaustion (EMFILE...): back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = service.clone();
        let tls = server.tls.clone();
        connections.spawn(async move {
            match accepted {
                Accepted::Tcp(stream, info) => serve_stream(&service, stream, info, tls).await,
                #[cfg(unix)]
                Accepted::Unix(stream) => {
                    serve_stream(&service, stream, ConnectionInfo::default(), tls).await;
                }
            }
            drop(permit);
        });
        // Reap finished connection tasks as we go.
        while connections.try_join_next().is_some() {}
    }
    drop(server.listener);
    service.shutdown();
    // In-flight requests get the shutdown timeout; then the rest are cut.
    let deadline = tokio::time::sleep(config.shutdown_timeout);
    tokio::pin!(deadline);
    tokio::select! {
        () = service.close_websockets() => {}
        () = &mut deadline => {}
    }
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                // Connections end at once (their request bodies fail with `Shutdown`);
                // aborting the tasks is the backstop for a handler that never yields.
                service.abort();
                let grace = tokio::time::sleep(Duration::from_millis(100));
                tokio::pin!(grace);
                loop {
                    tokio::select! {
                        next = connections.join_next() => if next.is_none() { break },
                        () = &mut grace => {
                            connections.abort_all();
                            while connections.join_next().await.is_some() {}
                            break;
                        }
                    }
                }
                break;
            }
        }
    }
    service.finish().await?;
    Ok(())
}

/// Serves one accepted connection, over TLS if the server has it.
async fn serve_stream<S, IO>(service: &Service<S>, stream: IO, info: ConnectionInfo, tls: Tls)
where
    S: Send + Sync + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tls")]
    if let Tls(Some(tls)) = tls {
        return serve_tls(service, stream, info, &tls).await;
    }
    #[cfg(not(feature = "tls"))]
    let Tls() = tls;
    service.serve_connection(crate::TokioIo(stream), info).await;
}

/// Serves one connection over TLS: the handshake first, under its deadline (a client that
/// stalls it is cut, as the head timeout cuts a slowloris) and given up at once when the
/// server shuts down (no request has started).
#[cfg(feature = "tls")]
async fn serve_tls<S, IO>(
    service: &Service<S>,
    stream: IO,
    info: ConnectionInfo,
    tls: &crate::tls::ServerTls,
) where
    S: Send + Sync + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = tokio::time::timeout(tls.timeout(), tls.acceptor().accept(stream));
    let outcome = tokio::select! {
        outcome = handshake => outcome,
        () = service.stopping() => return,
    };
    match outcome {
        Ok(Ok(stream)) => service.serve_connection(crate::TokioIo(stream), info).await,
        Ok(Err(error)) => {
            tracing::debug!(peer = ?info.peer, %error, "TLS handshake failed");
        }
        Err(_) => {
            tracing::debug!(peer = ?info.peer, "TLS handshake timed out");
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM: pass it to [`Serve::with_graceful_shutdown`].
/// Never completes where the signals cannot be watched.
pub async fn shutdown_signal() {
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
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
