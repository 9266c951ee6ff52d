//! The JS `Server`: `tether-rt`'s service (the core's limits and deadlines, keep-alive,
//! graceful shutdown) on sockets the host accepts. Each request goes to JavaScript as an
//! event; the handler's answer comes back through `respond`, `accept_websocket`, and the
//! writes of a streamed response body.

use crate::errors;
use crate::host;
use crate::outbox::{self, ErrorInfo, Out};
use crate::settings::ServerSettings;
use crate::socket;
use crate::ws;
use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::StatusCode;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;
use tether_rt::runtime::Runtime;
use tether_rt::{App, BodySender, ConnectionInfo, Request, Response, Service};

/// Connections of one server still being served, and who waits for them to end.
#[derive(Default)]
struct Tracker {
    open: Cell<usize>,
    waiters: RefCell<Vec<Waker>>,
}

impl Tracker {
    fn ended(&self) {
        self.open.set(self.open.get() - 1);
        self.waiters.borrow_mut().drain(..).for_each(Waker::wake);
    }

    async fn all_ended(&self) {
        std::future::poll_fn(|cx| {
            if self.open.get() == 0 {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

struct Server {
    service: Service,
    connections: Rc<Tracker>,
}

thread_local! {
    static SERVERS: RefCell<HashMap<u32, Server>> = RefCell::new(HashMap::new());
    /// Requests waiting for the handler's answer.
    static REPLIES: RefCell<HashMap<u32, oneshot::Sender<Response>>> = RefCell::new(HashMap::new());
    /// Requests whose bodies the JS side may still read (taken out while a read runs).
    static REQUESTS: RefCell<HashMap<u32, Request>> = RefCell::new(HashMap::new());
    /// Streamed response bodies being written.
    static DOWNLOADS: RefCell<HashMap<u32, BodySender>> = RefCell::new(HashMap::new());
}

/// Starts a server as operation `op`: `ServerStarted` with its handle.
pub(crate) fn create(op: u32, settings: &str) -> Result<(), ErrorInfo> {
    let config = ServerSettings::parse(settings)?.config();
    outbox::start(op, async move {
        let id = outbox::new_handle();
        let app = App::new().middleware(move |request, _next| to_js(id, request));
        match Service::start(app, config, host::runtime()).await {
            Ok(service) => {
                let server = Server {
                    service,
                    connections: Rc::default(),
                };
                SERVERS.with(|s| s.borrow_mut().insert(id, server));
                Out::ServerStarted { op, id }
            }
            Err(error) => Out::Failed {
                op,
                error: ErrorInfo::new("SERVER_START", error.to_string()),
            },
        }
    });
    Ok(())
}

/// Removes a request's reply slot when its handler future ends, answered or not.
struct ReplySlot(u32);

impl Drop for ReplySlot {
    fn drop(&mut self) {
        let _ = REPLIES.try_with(|r| r.borrow_mut().remove(&self.0));
    }
}

/// The one "handler" of a JS server: hand the request to JavaScript, wait for its answer.
async fn to_js(server: u32, request: Request) -> Response {
    let id = outbox::new_handle();
    let (reply, answer) = oneshot::channel();
    let event = Out::Request {
        server,
        id,
        method: request.method().as_str().to_owned(),
        target: request.uri().to_string(),
        headers: outbox::header_list(request.headers()),
        peer: request.peer_addr().map(|a| a.to_string()),
    };
    REPLIES.with(|r| r.borrow_mut().insert(id, reply));
    REQUESTS.with(|r| r.borrow_mut().insert(id, request));
    outbox::push(event);
    let _slot = ReplySlot(id);
    // The JS side dropped the request without answering (its handler threw and the glue
    // failed to answer, or the instance is going away): a 500, never a hang.
    answer
        .await
        .unwrap_or_else(|_| Response::empty(StatusCode::INTERNAL_SERVER_ERROR))
}

/// A handler's answer, as the JS side gives it.
pub(crate) enum Answer {
    Bytes(Vec<u8>),
    /// Pieces written later through the returned download handle.
    Stream,
}

/// Answers request `id`. Returns the download handle of a streamed body (0 without one).
pub(crate) fn respond(
    id: u32,
    status: u16,
    headers: Vec<String>,
    answer: Answer,
) -> Result<u32, ErrorInfo> {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| {
            ErrorInfo::new("INVALID_STATUS", format!("{status} is not a final status"))
        })?;
    let mut fields = Vec::with_capacity(headers.len() / 2);
    let mut content_type = HeaderValue::from_static("application/octet-stream");
    for pair in headers.chunks(2) {
        let [name, value] = pair else { continue };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ErrorInfo::new("INVALID_HEADER", format!("{name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| ErrorInfo::new("INVALID_HEADER", format!("{name}: {e}")))?;
        // Framing is the core's: a body's length or coding given by the handler is ignored.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        if name == CONTENT_TYPE {
            content_type = value;
            continue;
        }
        fields.push((name, value));
    }
    let Some(reply) = REPLIES.with(|r| r.borrow_mut().remove(&id)) else {
        return Err(ErrorInfo::new(
            "REQUEST_GONE",
            "this request was answered, or its connection is gone",
        ));
    };
    let (mut response, download) = match answer {
        Answer::Bytes(body)
            if body.is_empty()
                && !headers
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case("content-type")) =>
        {
            (Response::empty(status), 0)
        }
        Answer::Bytes(body) => (Response::bytes(content_type, body), 0),
        Answer::Stream => {
            let (response, sender) = Response::stream(content_type);
            let handle = outbox::new_handle();
            DOWNLOADS.with(|d| d.borrow_mut().insert(handle, sender));
            (response, handle)
        }
    };
    response = response.with_status(status);
    for (name, value) in fields {
        response.headers_mut().append(name, value);
    }
    if reply.send(response).is_err() {
        DOWNLOADS.with(|d| d.borrow_mut().remove(&download));
        return Err(ErrorInfo::new(
            "REQUEST_GONE",
            "the connection of this request is gone",
        ));
    }
    Ok(download)
}

/// Accepts a WebSocket upgrade of request `id` as operation `op`: `WsOpen` once the
/// server has switched, or `Failed` with the refusal's status (400, 426) after it was sent.
pub(crate) fn accept_websocket(id: u32, op: u32, protocols: Vec<String>) -> Result<(), ErrorInfo> {
    let gone = || {
        ErrorInfo::new(
            "REQUEST_GONE",
            "this request was answered, or its connection is gone",
        )
    };
    let mut request = REQUESTS
        .with(|r| r.borrow_mut().remove(&id))
        .ok_or_else(gone)?;
    let reply = REPLIES
        .with(|r| r.borrow_mut().remove(&id))
        .ok_or_else(gone)?;
    let offered: Vec<&str> = protocols.iter().map(String::as_str).collect();
    match request.websocket(&offered) {
        Ok((response, pending)) => {
            let protocol = response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let extensions = response
                .headers()
                .get("sec-websocket-extensions")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let _ = reply.send(response);
            outbox::start(op, async move {
                match pending.await {
                    Some(socket) => Out::WsOpen {
                        op,
                        id: ws::register(socket),
                        protocol,
                        extensions,
                    },
                    None => Out::Failed {
                        op,
                        error: ErrorInfo::new(
                            "CONNECTION",
                            "the connection ended before the switch",
                        ),
                    },
                }
            });
        }
        Err(refusal) => {
            let status = refusal.status().as_u16();
            let _ = reply.send(refusal);
            outbox::push(Out::Failed {
                op,
                error: ErrorInfo {
                    code: "WS_UPGRADE_REFUSED",
                    message: format!("not a valid WebSocket upgrade (answered {status})"),
                    status: Some(status),
                },
            });
        }
    }
    Ok(())
}

/// Reads the next piece of a request body: `Chunk` (`None` at its end) or `Failed`.
pub(crate) fn request_read(id: u32, op: u32, whole: bool) {
    let request = REQUESTS.with(|r| r.borrow_mut().remove(&id));
    outbox::start(op, async move {
        let Some(mut request) = request else {
            return outbox::body_used(op);
        };
        if whole {
            return match request.body().bytes().await {
                Ok(data) => Out::Body { op, data },
                Err(error) => Out::Failed {
                    op,
                    error: errors::body(&error),
                },
            };
        }
        match request.body().chunk().await {
            Some(Ok(piece)) => {
                REQUESTS.with(|r| r.borrow_mut().insert(id, request));
                Out::Chunk {
                    op,
                    data: Some(piece),
                }
            }
            None => Out::Chunk { op, data: None },
            Some(Err(error)) => Out::Failed {
                op,
                error: errors::body(&error),
            },
        }
    });
}

/// The JS side is done with a request (its handler ended): an unread body is dropped.
pub(crate) fn request_drop(id: u32) {
    let request = REQUESTS.with(|r| r.borrow_mut().remove(&id));
    drop(request);
}

/// Writes a piece of a streamed response body; `Done` once taken (backpressure), or
/// `Failed` (`RESPONSE_CLOSED`) when the client is gone.
pub(crate) fn download_write(handle: u32, op: u32, piece: Vec<u8>) {
    let sender = DOWNLOADS.with(|d| d.borrow().get(&handle).cloned());
    outbox::start(op, async move {
        let sent = match sender {
            Some(mut sender) => sender.send(Bytes::from(piece)).await.is_ok(),
            None => false,
        };
        outbox::written(
            op,
            sent,
            "RESPONSE_CLOSED",
            "the connection of this response is closed",
        )
    });
}

/// Ends a streamed response body, complete.
pub(crate) fn download_end(handle: u32) {
    let sender = DOWNLOADS.with(|d| d.borrow_mut().remove(&handle));
    drop(sender);
}

/// Abandons a streamed response body: the client sees the body fail, never a shorter one.
pub(crate) fn download_abort(handle: u32) {
    if let Some(sender) = DOWNLOADS.with(|d| d.borrow_mut().remove(&handle)) {
        sender.abort();
    }
}

/// Serves a connection the host accepted; the id of its socket.
pub(crate) fn accept(server: u32, peer: &str) -> Result<u32, ErrorInfo> {
    let (service, connections) = SERVERS
        .with(|s| {
            s.borrow()
                .get(&server)
                .map(|s| (s.service.clone(), s.connections.clone()))
        })
        .ok_or_else(|| ErrorInfo::new("SERVER_CLOSED", "the server is closed"))?;
    let socket = socket::accepted();
    let id = socket.id();
    let info = ConnectionInfo::new(peer.parse().ok(), None);
    connections.open.set(connections.open.get() + 1);
    crate::executor::spawn(Box::pin(async move {
        service.serve_connection(socket, info).await;
        connections.ended();
    }));
    Ok(id)
}

/// Graceful close as operation `op`: no new requests, in-flight ones finish (up to the
/// shutdown timeout, then they are cut), WebSockets get 1001, teardowns run; `Done`.
pub(crate) fn close(server: u32, op: u32) {
    let entry = SERVERS.with(|s| s.borrow_mut().remove(&server));
    outbox::start(op, async move {
        let Some(Server {
            service,
            connections,
        }) = entry
        else {
            return Out::Done { op };
        };
        let rt = host::HostRuntime;
        let deadline = rt.now().saturating_add(service.config().shutdown_timeout);
        service.shutdown();
        {
            let sockets = pin!(service.close_websockets());
            let timer = rt.sleep_until(deadline);
            let _ = select(sockets, timer).await;
        }
        let ended = {
            let all = pin!(connections.all_ended());
            matches!(select(all, rt.sleep_until(deadline)).await, Either::Left(_))
        };
        if !ended {
            service.abort();
            let grace = rt.now().saturating_add(Duration::from_millis(100));
            let all = pin!(connections.all_ended());
            let _ = select(all, rt.sleep_until(grace)).await;
        }
        match service.finish().await {
            Ok(()) => Out::Done { op },
            Err(error) => Out::Failed {
                op,
                error: ErrorInfo::new("CLEANUP", error.to_string()),
            },
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Action;

    fn turn() -> (Vec<Action>, Vec<Out>) {
        crate::host::set_clock(1.0, 1.7e12);
        while crate::executor::run(1000) {}
        (socket::take_actions(), outbox::take())
    }

    #[test]
    fn a_request_body_read_from_another_task_reaches_the_handler() {
        crate::host::seed(&[7; 32]);
        create(1, "{}").unwrap();
        let (_, events) = turn();
        let Some(Out::ServerStarted { id: server, .. }) = events.into_iter().next() else {
            panic!("not started")
        };
        let socket = accept(server, "127.0.0.1:1").unwrap();
        assert!(socket::data(
            socket,
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\n".to_vec()
        ));
        let (_, events) = turn();
        let Some(Out::Request { id, .. }) = events.into_iter().next() else {
            panic!("no request")
        };
        request_read(id, 2, true);
        assert!(turn().1.is_empty());
        assert!(socket::data(socket, b"data".to_vec()));
        let (_, events) = turn();
        match events.as_slice() {
            [Out::Body { op: 2, data }] => assert_eq!(&data[..], b"data"),
            other => panic!("{other:?}"),
        }
        respond(id, 201, vec![], Answer::Bytes(b"ok".to_vec())).unwrap();
        let (actions, _) = turn();
        match actions.as_slice() {
            [Action::Write(s, bytes)] if *s == socket => {
                let text = String::from_utf8_lossy(bytes);
                assert!(text.starts_with("HTTP/1.1 201 Created\r\n"), "{text}");
                assert!(text.ends_with("\r\n\r\nok"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Serves `n` keep-alive requests on one in-module socket, with no JavaScript between
/// them: what the module's server path costs by itself (test builds: the JS benchmark
/// times it to tell the module's cost from the boundary's).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn request_loop(n: u32) {
    let turn = || {
        crate::host::set_clock(1.0, 1.7e12);
        while crate::executor::run(1000) {}
        let mut actions = socket::take_actions();
        let mut events = outbox::take();
        let encoded = crate::wire::encode(false, None, &mut actions, &mut events);
        (events, encoded)
    };
    let _ = create(u32::MAX, "{}");
    let (events, _) = turn();
    let Some(Out::ServerStarted { id: server, .. }) = events.into_iter().next() else {
        return;
    };
    let Ok(socket) = accept(server, "127.0.0.1:1") else {
        return;
    };
    for _ in 0..n {
        socket::data(socket, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec());
        let (events, _) = turn();
        let Some(Out::Request { id, .. }) = events.into_iter().next() else {
            return;
        };
        let headers = vec!["content-type".into(), "text/plain".into()];
        let _ = respond(id, 200, headers, Answer::Bytes(b"hi".to_vec()));
        let _ = turn();
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p tether-wasm -- --ignored --nocapture per_request`: the cost
    /// of one keep-alive request through the module's server path, natively (no JS).
    #[test]
    #[ignore]
    fn per_request_cost_natively() {
        crate::host::seed(&[1; 32]);
        let n = 100_000;
        let started = std::time::Instant::now();
        request_loop(n);
        eprintln!("{:?} per request", started.elapsed() / n);
    }
}
