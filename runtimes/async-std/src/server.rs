//! The server: binds and accepts with async-net, and hands each connection to the shared
//! [`Service`](tether_rt::Service), which pumps the core's server connection; the order of a
//! graceful shutdown, and the signals that start one.

use crate::runtime::Spawner;
use async_io::Timer;
use async_lock::Semaphore;
use async_net::TcpListener;
use event_listener::Event;
use futures_util::future::{self, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_rt::{App, CleanupError, ConnectionInfo, ServerConfig, Service, StartError, Task};

/// A shutdown request: a flag, and the server waiting for it.
#[derive(Debug, Default)]
struct Stop {
    requested: AtomicBool,
    event: Event,
}

impl Stop {
    fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    async fn wait(&self) {
        loop {
            if self.requested.load(Ordering::SeqCst) {
                return;
            }
            let listener = self.event.listen();
            // Requested between the check and the listening: seen here.
            if self.requested.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

/// Triggers a graceful shutdown of a running server.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    stop: Arc<Stop>,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown: stop accepting, finish in-flight requests, close idle
    /// connections and WebSockets (1001), close the job scheduler, run the teardowns. Also
    /// works before the server runs (it then stops at once).
    pub fn shutdown(&self) {
        self.stop.request();
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
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    stop: Arc<Stop>,
    spawner: Spawner,
}

impl Server {
    /// Binds `addr` (the only IO before `serve`). Its tasks run on the default
    /// [`Spawner`] unless [`Server::with_spawner`] says otherwise.
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr).await?,
            config,
            stop: Arc::default(),
            spawner: Spawner::default(),
        })
    }

    /// Runs its connections, WebSockets and jobs on `spawner`'s executor.
    pub fn with_spawner(mut self, spawner: Spawner) -> Server {
        self.spawner = spawner;
        self
    }

    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to stop it gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stop: self.stop.clone(),
        }
    }

    /// Serves `app` until a shutdown: await the returned [`Serve`] to run it, after
    /// choosing what else starts a graceful shutdown
    /// ([`Serve::with_graceful_shutdown`]; the [`ShutdownHandle`] always does).
    ///
    /// ```no_run
    /// # async fn demo(server: tether_async_std::Server) -> Result<(), tether_async_std::ServeError> {
    /// let app = tether_async_std::App::new();
    /// server
    ///     .serve(app)
    ///     .with_graceful_shutdown(tether_async_std::shutdown_signal())
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

/// `work`'s output, or `None` if `stop` completes first (`stop` is polled first).
async fn unless<T>(stop: impl Future, work: impl Future<Output = T>) -> Option<T> {
    match future::select(pin!(stop), pin!(work)).await {
        Either::Left(_) => None,
        Either::Right((output, _)) => Some(output),
    }
}

/// Waits for every connection task to end.
async fn drain(connections: &mut FuturesUnordered<Task<()>>) {
    while connections.next().await.is_some() {}
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
    let Server {
        listener,
        config,
        stop,
        spawner,
    } = server;
    let rt = spawner.runtime();
    let service = Service::start(app, config.clone(), rt.clone()).await?;
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut connections = FuturesUnordered::new();
    let mut stopping = pin!(async {
        future::select(pin!(stop.wait()), &mut signal).await;
    });
    loop {
        let Some(permit) = unless(stopping.as_mut(), permits.acquire_arc()).await else {
            break;
        };
        let Some(accepted) = unless(stopping.as_mut(), listener.accept()).await else {
            break;
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Resource exhaustion (EMFILE...): back off instead of spinning.
            Err(_) => {
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let info = ConnectionInfo::new(Some(peer), stream.local_addr().ok());
        let service = service.clone();
        connections.push(Task::spawn(&*rt, async move {
            service
                .serve_connection(crate::FuturesIo(stream), info)
                .await;
            drop(permit);
        }));
        // Reap finished connection tasks as we go.
        while let Some(Some(_)) = connections.next().now_or_never() {}
    }
    drop(listener);
    service.shutdown();
    // In-flight requests get the shutdown timeout; then the rest are cut. (A fresh timer
    // for each wait: an async-io timer that has fired never fires again.)
    let deadline = Instant::now().checked_add(config.shutdown_timeout);
    let timeout = || deadline.map_or_else(Timer::never, Timer::at);
    unless(timeout(), service.close_websockets()).await;
    if unless(timeout(), drain(&mut connections)).await.is_none() {
        // Connections end at once (their request bodies fail with `Shutdown`); aborting
        // the tasks is the backstop for a handler that never yields.
        service.abort();
        let grace = Timer::after(Duration::from_millis(100));
        if unless(grace, drain(&mut connections)).await.is_none() {
            for task in Pin::new(&mut connections).iter_pin_mut() {
                task.abort();
            }
            drain(&mut connections).await;
        }
    }
    service.finish().await?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (only Ctrl-C off Unix): pass it to
/// [`Serve::with_graceful_shutdown`]. The signals are watched from this call on (through
/// `async-signal`), so one that arrives before the server polls the future is not lost.
/// Never completes where they cannot be watched.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use async_signal::{Signal, Signals};
    #[cfg(unix)]
    let watched = [Signal::Term, Signal::Int];
    #[cfg(not(unix))]
    let watched = [Signal::Int];
    let signals = Signals::new(watched);
    async move {
        if let Ok(mut signals) = signals {
            if let Some(Ok(_)) = signals.next().await {
                return;
            }
        }
        std::future::pending().await
    }
}

/// Work that must finish even if the caller is cancelled (a handler dropped because its
/// client left): it runs in its own task on the default [`Spawner`], and the caller awaits
/// it. See [`tether_rt::runtime::shield`].
///
/// # Panics
///
/// If `future` panics (its panic is re-raised here), or if the executor drops the task
/// before `future` ends.
pub async fn shield<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tether_rt::runtime::shield(&*Spawner::default().runtime(), future).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    use tether_rt::{Request, Response};

    /// Reads until `ok` ends what was read (the end of the test app's response).
    async fn read_response(stream: &mut async_net::TcpStream) -> String {
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed early: {:?}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(answer).unwrap()
    }

    #[test]
    fn max_connections_holds_back_the_next_connection_until_one_ends() {
        async_std::task::block_on(async {
            let mut config = ServerConfig::default();
            config.max_connections = 1;
            let server = Server::bind("127.0.0.1:0".parse().unwrap(), config)
                .await
                .unwrap();
            let addr = server.local_addr().unwrap();
            let handle = server.shutdown_handle();
            let app = App::new().route(http::Method::GET, "/", |_req: Request| async {
                Response::text("ok")
            });
            let serving = async_std::task::spawn(server.serve(app).into_future());
            let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
            let mut first = async_net::TcpStream::connect(addr).await.unwrap();
            first.write_all(request).await.unwrap();
            assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));
            // The kernel accepts the second connection; the server leaves it waiting while
            // the first (kept alive) holds the only place.
            let mut second = async_net::TcpStream::connect(addr).await.unwrap();
            second.write_all(request).await.unwrap();
            let waiting = Duration::from_millis(300);
            let early = async_std::future::timeout(waiting, read_response(&mut second)).await;
            assert!(early.is_err(), "served beyond max_connections: {early:?}");
            drop(first);
            assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));
            handle.shutdown();
            serving.await.unwrap();
        });
    }

    #[test]
    fn a_shutdown_asked_before_serving_stops_at_once() {
        smol::block_on(async {
            let server = Server::bind("127.0.0.1:0".parse().unwrap(), ServerConfig::default())
                .await
                .unwrap()
                .with_spawner(Spawner::from_fn(|task| smol::spawn(task).detach()));
            server.shutdown_handle().shutdown();
            server.serve(App::new()).await.unwrap();
        });
    }
}
