//! The JS `Client`: `tether-rt`'s pooled client over host sockets. Requests, their
//! response bodies and their streamed request bodies are handles the JS side holds by id.

use crate::errors;
use crate::outbox::{self, ErrorInfo, Out};
use crate::settings::{ClientSettings, Timeouts};
use crate::socket::{self, ConnectFailure};
use crate::ws;
use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::SinkExt;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use tether_core::pool::Origin;
use tether_rt::client::Io;
use tether_rt::runtime::BoxFuture;
use tether_rt::{Client, ClientError, ClientResponse, Connector};

thread_local! {
    static CLIENTS: RefCell<HashMap<u32, Client>> = RefCell::new(HashMap::new());
    /// Responses whose bodies are still to be read. A read takes the response out for the
    /// time it runs, so a cancelled read drops it (and its connection).
    static RESPONSES: RefCell<HashMap<u32, ClientResponse>> = RefCell::new(HashMap::new());
    /// Streamed request bodies still being written.
    static UPLOADS: RefCell<HashMap<u32, mpsc::Sender<Bytes>>> = RefCell::new(HashMap::new());
}

/// Opens connections through the host: `connect` actions, TLS included for `https`/`wss`
/// (with the TLS settings the host keeps for client `client`).
struct HostConnector {
    client: u32,
}

impl Connector for HostConnector {
    fn connect(&self, origin: &Origin) -> BoxFuture<Result<Box<dyn Io>, ClientError>> {
        let tls = matches!(origin.scheme(), "https" | "wss");
        let socket = socket::connect(origin.host(), origin.port(), tls, self.client);
        Box::pin(async move {
            match socket.opened().await {
                Ok(()) => Ok(Box::new(socket) as Box<dyn Io>),
                Err((failure, message)) => {
                    let error = io::Error::other(message);
                    Err(match failure {
                        ConnectFailure::Dns => ClientError::Dns(error),
                        ConnectFailure::Connect => ClientError::Connect(error),
                        ConnectFailure::Tls => ClientError::Connect(io::Error::other(format!(
                            "TLS handshake failed: {error}"
                        ))),
                    })
                }
            }
        })
    }
}

/// `new Client(settings)`: its handle.
pub(crate) fn create(settings: &str) -> Result<u32, ErrorInfo> {
    let config = ClientSettings::parse(settings)?.config();
    let id = outbox::new_handle();
    let client = Client::new(
        config,
        crate::host::runtime(),
        Arc::new(HostConnector { client: id }),
    );
    CLIENTS.with(|c| c.borrow_mut().insert(id, client));
    Ok(id)
}

fn client(id: u32) -> Result<Client, ErrorInfo> {
    CLIENTS
        .with(|c| c.borrow().get(&id).cloned())
        .ok_or_else(|| ErrorInfo::new("CLIENT_CLOSED", "the client is closed"))
}

/// A request's body, as the JS side gives it.
pub(crate) enum RequestBody {
    None,
    Bytes(Vec<u8>),
    /// Pieces written later through the returned upload handle.
    Stream,
}

/// What a request is, apart from its body.
pub(crate) struct RequestSpec {
    pub(crate) method: String,
    pub(crate) url: String,
    /// Names and values, alternating.
    pub(crate) headers: Vec<String>,
    /// Per-request timeouts (JSON, as in the client's settings; empty: the client's).
    pub(crate) timeouts: String,
    pub(crate) follow_redirects: bool,
}

/// Starts a request as operation `op`; completes with `Response` (or `Failed`). Returns
/// the upload handle of a streamed body (0 without one).
pub(crate) fn request(
    client_id: u32,
    op: u32,
    spec: RequestSpec,
    body: RequestBody,
) -> Result<u32, ErrorInfo> {
    let client = client(client_id)?;
    let method = http::Method::from_bytes(spec.method.as_bytes())
        .map_err(|e| ErrorInfo::new("INVALID_METHOD", e.to_string()))?;
    let mut builder = client
        .request(method, &spec.url)
        .follow_redirects(spec.follow_redirects);
    for pair in spec.headers.chunks(2) {
        if let [name, value] = pair {
            builder = builder.header(name, value);
        }
    }
    if !spec.timeouts.is_empty() {
        let timeouts: Timeouts = serde_json::from_str(&spec.timeouts)
            .map_err(|e| ErrorInfo::new("INVALID_SETTINGS", e.to_string()))?;
        builder = builder.timeouts(timeouts.apply(client.config().timeouts));
    }
    let mut upload = 0;
    builder = match body {
        RequestBody::None => builder,
        RequestBody::Bytes(bytes) => builder.body(bytes),
        RequestBody::Stream => {
            // One piece in flight: the JS side awaits each write before taking the next
            // piece from its iterable (backpressure end to end).
            let (tx, rx) = mpsc::channel(0);
            upload = outbox::new_handle();
            UPLOADS.with(|u| u.borrow_mut().insert(upload, tx));
            builder.body_stream(rx)
        }
    };
    outbox::start(op, async move {
        match builder.send().await {
            Ok(response) => {
                let id = outbox::new_handle();
                let status = response.status().as_u16();
                let headers = outbox::header_list(response.headers());
                RESPONSES.with(|r| r.borrow_mut().insert(id, response));
                Out::Response {
                    op,
                    id,
                    status,
                    headers,
                }
            }
            Err(error) => Out::Failed {
                op,
                error: errors::client(&error),
            },
        }
    });
    Ok(upload)
}

/// Writes a piece of a streamed request body; completes once it was taken.
pub(crate) fn upload_write(upload: u32, op: u32, piece: Vec<u8>) {
    let sender = UPLOADS.with(|u| u.borrow().get(&upload).cloned());
    outbox::start(op, async move {
        let sent = match sender {
            Some(mut sender) => sender.send(Bytes::from(piece)).await.is_ok(),
            None => false,
        };
        outbox::written(
            op,
            sent,
            "REQUEST_CLOSED",
            "the request no longer takes its body",
        )
    });
}

/// Ends a streamed request body (the last, empty chunk goes out).
pub(crate) fn upload_end(upload: u32) {
    UPLOADS.with(|u| u.borrow_mut().remove(&upload));
}

/// Reads the next piece of a response body: `Chunk` (`None` at its end) or `Failed`.
pub(crate) fn response_read(id: u32, op: u32) {
    let response = RESPONSES.with(|r| r.borrow_mut().remove(&id));
    outbox::start(op, async move {
        let Some(mut response) = response else {
            return outbox::body_used(op);
        };
        match response.chunk().await {
            Ok(Some(piece)) => {
                RESPONSES.with(|r| r.borrow_mut().insert(id, response));
                Out::Chunk {
                    op,
                    data: Some(piece),
                }
            }
            Ok(None) => Out::Chunk { op, data: None },
            Err(error) => Out::Failed {
                op,
                error: errors::client(&error),
            },
        }
    });
}

/// Reads a whole response body (up to the client's `maxBodySize`): `Body` or `Failed`.
pub(crate) fn response_bytes(id: u32, op: u32) {
    let response = RESPONSES.with(|r| r.borrow_mut().remove(&id));
    outbox::start(op, async move {
        let Some(mut response) = response else {
            return outbox::body_used(op);
        };
        match response.bytes().await {
            Ok(data) => Out::Body { op, data },
            Err(error) => Out::Failed {
                op,
                error: errors::client(&error),
            },
        }
    });
}

/// The JS side is done with a response: an unread body closes its connection.
pub(crate) fn response_drop(id: u32) {
    let response = RESPONSES.with(|r| r.borrow_mut().remove(&id));
    drop(response);
}

/// Opens a WebSocket as operation `op`: `WsOpen` or `Failed`.
pub(crate) fn ws_connect(
    client_id: u32,
    op: u32,
    url: &str,
    protocols: Vec<String>,
    headers: Vec<String>,
) -> Result<(), ErrorInfo> {
    let client = client(client_id)?;
    let mut request = client.ws(url);
    for protocol in &protocols {
        request = request.protocol(protocol);
    }
    for pair in headers.chunks(2) {
        if let [name, value] = pair {
            request = request.header(name, value);
        }
    }
    outbox::start(op, async move {
        match request.connect().await {
            Ok((socket, protocol)) => ws::opened(op, socket, protocol),
            Err(error) => Out::Failed {
                op,
                error: errors::client(&error),
            },
        }
    });
    Ok(())
}

/// Pool statistics of one origin: `[idle, inUse, opening, waiting]`.
pub(crate) fn pool_stats(client_id: u32, url: &str) -> Option<[u32; 4]> {
    let stats = client(client_id).ok()?.pool_stats(url)?;
    Some([stats.idle, stats.in_use, stats.opening, stats.waiting].map(|n| n as u32))
}

/// Closes a client: idle connections close, new requests fail with `CLIENT_CLOSED`.
pub(crate) fn close(client_id: u32, op: u32) {
    let client = CLIENTS.with(|c| c.borrow_mut().remove(&client_id));
    outbox::start(op, async move {
        if let Some(client) = client {
            client.close().await;
        }
        Out::Done { op }
    });
}
