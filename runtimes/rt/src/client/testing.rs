//! A client without sockets, for the unit tests: a [`Connector`] that opens in-memory pipes
//! (`tokio::io::duplex`) to a scripted server task, which records each request and answers
//! it as the test says.

use super::{Client, ClientConfig, ClientError, Connector, Io};
use crate::runtime::test_support::rt;
use crate::runtime::BoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_core::pool::Origin;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Notify;

/// What the server does with a request.
pub(super) enum Reply {
    /// Writes these bytes and waits for the next request on the connection.
    Send(Vec<u8>),
    /// Writes these bytes and closes the connection.
    SendAndClose(Vec<u8>),
    /// Closes the connection without a word.
    Close,
}

type Answer = dyn Fn(&str) -> Reply + Send + Sync;

#[derive(Default)]
struct State {
    /// Connections opened (or refused).
    connections: AtomicUsize,
    /// Connections closed, by either side.
    closed: AtomicUsize,
    /// Each request, head and body, as text.
    requests: Mutex<Vec<String>>,
    changed: Notify,
}

/// The scripted server's side of the test: what it saw.
#[derive(Clone)]
pub(super) struct Server {
    state: Arc<State>,
}

impl Server {
    /// Connections the client opened (or tried to).
    pub(super) fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The requests received so far, in order.
    pub(super) fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until `n` connections have closed (panics after 10 s).
    pub(super) async fn wait_closed(&self, n: usize) {
        let wait = async {
            loop {
                let changed = self.state.changed.notified();
                if self.state.closed.load(Ordering::SeqCst) >= n {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("connections closed in time");
    }
}

struct Pipes {
    state: Arc<State>,
    /// `None`: every connection is refused.
    answer: Option<Arc<Answer>>,
}

impl Connector for Pipes {
    fn connect(&self, _origin: &Origin) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        self.state.connections.fetch_add(1, Ordering::SeqCst);
        let Some(answer) = self.answer.clone() else {
            let refused = std::io::ErrorKind::ConnectionRefused.into();
            return Box::pin(async move { Err(ClientError::Connect(refused)) });
        };
        let (client, server) = tokio::io::duplex(64 * 1024);
        let state = self.state.clone();
        tokio::spawn(async move {
            serve(server, &*answer, &state).await;
            state.closed.fetch_add(1, Ordering::SeqCst);
            state.changed.notify_waiters();
        });
        Box::pin(async move {
            Ok(Box::new(crate::runtime::test_support::TokioIo(client)) as Box<dyn Io>)
        })
    }
}

/// A client whose every connection is served by `answer`.
pub(super) fn client(
    config: ClientConfig,
    answer: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> (Client, Server) {
    with_connector(config, Some(Arc::new(answer)))
}

/// A client whose every connection is refused.
pub(super) fn refusing(config: ClientConfig) -> (Client, Server) {
    with_connector(config, None)
}

fn with_connector(config: ClientConfig, answer: Option<Arc<Answer>>) -> (Client, Server) {
    let state = Arc::new(State::default());
    let pipes = Pipes {
        state: state.clone(),
        answer,
    };
    (Client::new(config, rt(), Arc::new(pipes)), Server { state })
}

/// Serves requests on one connection until either side closes it.
async fn serve(mut stream: DuplexStream, answer: &Answer, state: &State) {
    let mut seen = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut seen).await else {
            return;
        };
        let reply = answer(&request);
        state.requests.lock().unwrap().push(request);
        state.changed.notify_waiters();
        match reply {
            Reply::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::SendAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
            Reply::Close => return,
        }
    }
}

/// The next request (head, and a body framed by `Content-Length` or chunked), or `None` at
/// the end of the connection.
async fn read_request(stream: &mut DuplexStream, seen: &mut Vec<u8>) -> Option<String> {
    let head_end = loop {
        if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, seen).await?;
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
    let length = head.lines().find_map(|line| {
        let value = line.strip_prefix("content-length:")?;
        value.trim().parse::<usize>().ok()
    });
    let end = if head.contains("\r\ntransfer-encoding: chunked\r\n") {
        loop {
            if let Some(at) = seen[head_end..].windows(5).position(|w| w == b"0\r\n\r\n") {
                break head_end + at + 5;
            }
            read_more(stream, seen).await?;
        }
    } else {
        let end = head_end + length.unwrap_or(0);
        while seen.len() < end {
            read_more(stream, seen).await?;
        }
        end
    };
    let request = String::from_utf8_lossy(&seen[..end]).into_owned();
    seen.drain(..end);
    Some(request)
}

async fn read_more(stream: &mut DuplexStream, seen: &mut Vec<u8>) -> Option<()> {
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            seen.extend_from_slice(&buf[..n]);
            Some(())
        }
    }
}
