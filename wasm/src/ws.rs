//! WebSockets of both roles as the JS side holds them: one handle, its sender (sends and
//! closes may run while a receive waits) and its receiver (taken out while a receive runs).

use crate::errors;
use crate::outbox::{self, ErrorInfo, Out, WsMessage};
use futures_util::{FutureExt, Sink};
use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tether_rt::websocket::{Message, WsReceiver, WsSender};
use tether_rt::WebSocket;

/// Most messages one receive hands over (those already waiting behind the first).
const BURST_MESSAGES: usize = 64;
/// Most bytes one receive hands over, beyond its first message.
const BURST_BYTES: usize = 256 * 1024;

struct Handle {
    sender: WsSender,
    receiver: Option<WsReceiver>,
}

thread_local! {
    static SOCKETS: RefCell<HashMap<u32, Handle>> = RefCell::new(HashMap::new());
}

/// Registers an open WebSocket; the completion of the operation that opened it.
pub(crate) fn opened(op: u32, socket: WebSocket, protocol: Option<String>) -> Out {
    let id = register(socket);
    Out::WsOpen {
        op,
        id,
        protocol,
        extensions: None,
    }
}

/// Registers an open WebSocket: its handle.
pub(crate) fn register(socket: WebSocket) -> u32 {
    let (sender, receiver) = socket.split();
    let id = outbox::new_handle();
    SOCKETS.with(|s| {
        s.borrow_mut().insert(
            id,
            Handle {
                sender,
                receiver: Some(receiver),
            },
        )
    });
    id
}

fn sender(id: u32) -> Option<WsSender> {
    SOCKETS.with(|s| s.borrow().get(&id).map(|h| h.sender.clone()))
}

fn unknown(op: u32) -> Out {
    Out::Failed {
        op,
        error: ErrorInfo::new("WS_CLOSED", "the WebSocket is closed"),
    }
}

/// The next message, with those already waiting behind it (`WsMessages`), or the end
/// (`WsClosed`). Pings and pongs are answered and counted by the connection itself; they
/// are not messages here.
pub(crate) fn recv(id: u32, op: u32) {
    let receiver = SOCKETS.with(|s| s.borrow_mut().get_mut(&id).and_then(|h| h.receiver.take()));
    outbox::start(op, async move {
        let Some(mut receiver) = receiver else {
            return Out::Failed {
                op,
                error: ErrorInfo::new("WS_BUSY", "a receive is already waiting on this WebSocket"),
            };
        };
        let out = loop {
            match receiver.recv().await {
                Some(Message::Text(text)) => break burst(op, &mut receiver, WsMessage::Text(text)),
                Some(Message::Binary(data)) => {
                    break burst(op, &mut receiver, WsMessage::Binary(data))
                }
                Some(_) => continue,
                None => {
                    let reason = receiver.closed().await;
                    break Out::WsClosed {
                        op,
                        closed: errors::closed(&reason),
                    };
                }
            }
        };
        SOCKETS.with(|s| {
            if let Some(handle) = s.borrow_mut().get_mut(&id) {
                handle.receiver = Some(receiver);
            }
        });
        out
    });
}

/// `first`, and the messages already received behind it (bounded), without waiting.
fn burst(op: u32, receiver: &mut WsReceiver, first: WsMessage) -> Out {
    let mut messages = vec![first];
    let mut bytes = 0;
    while messages.len() < BURST_MESSAGES && bytes < BURST_BYTES {
        // Polled once: a message that is not there yet stays in the channel.
        match receiver.recv().now_or_never() {
            Some(Some(Message::Text(text))) => {
                bytes += text.len();
                messages.push(WsMessage::Text(text));
            }
            Some(Some(Message::Binary(data))) => {
                bytes += data.len();
                messages.push(WsMessage::Binary(data));
            }
            Some(Some(_)) => continue,
            // The end, or nothing yet: the next receive sees it.
            Some(None) | None => break,
        }
    }
    Out::WsMessages { op, messages }
}

/// Queues a message at once if the connection has room: `Ok(true)`; `Ok(false)` when it
/// is full (send through [`send`], which waits); an error if it is closing or closed. A
/// message queued this way goes out in order; a failure to send it (the connection ended
/// first) is reported by the next send, as with any buffered sender.
pub(crate) fn send_now(
    id: u32,
    text: Option<String>,
    binary: Option<Vec<u8>>,
) -> Result<bool, ErrorInfo> {
    SOCKETS.with(|s| {
        let mut sockets = s.borrow_mut();
        let Some(handle) = sockets.get_mut(&id) else {
            return Err(ErrorInfo::new("WS_CLOSED", "the WebSocket is closed"));
        };
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut handle.sender).poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => return Err(errors::ws(&error)),
            Poll::Pending => return Ok(false),
        }
        let message = match (text, binary) {
            (Some(text), _) => Message::Text(text),
            (None, data) => Message::Binary(data.unwrap_or_default().into()),
        };
        Pin::new(&mut handle.sender)
            .start_send(message)
            .map(|()| true)
            .map_err(|error| errors::ws(&error))
    })
}

/// Sends a text (`text`) or binary message; `Done` once queued for the connection.
pub(crate) fn send(id: u32, op: u32, text: Option<String>, binary: Option<Vec<u8>>) {
    let sender = sender(id);
    outbox::start(op, async move {
        let Some(sender) = sender else {
            return unknown(op);
        };
        let sent = match (text, binary) {
            (Some(text), _) => sender.send_text(text).await,
            (None, Some(data)) => sender.send_binary(data).await,
            (None, None) => sender.send_binary(Vec::new()).await,
        };
        match sent {
            Ok(()) => Out::Done { op },
            Err(error) => Out::Failed {
                op,
                error: errors::ws(&error),
            },
        }
    });
}

/// Sends a ping with `payload` (at most 125 bytes).
pub(crate) fn ping(id: u32, op: u32, payload: Vec<u8>) {
    let sender = sender(id);
    outbox::start(op, async move {
        let Some(sender) = sender else {
            return unknown(op);
        };
        match sender.send_ping(payload).await {
            Ok(()) => Out::Done { op },
            Err(error) => Out::Failed {
                op,
                error: errors::ws(&error),
            },
        }
    });
}

/// Starts the close handshake and waits for its end: `WsClosed` with the final reason.
pub(crate) fn close(id: u32, op: u32, code: u16, reason: String) {
    let sender = sender(id);
    outbox::start(op, async move {
        let Some(sender) = sender else {
            return unknown(op);
        };
        if let Err(error) = sender.close(code, &reason).await {
            if !matches!(error, tether_rt::websocket::WsError::Closed(_)) {
                return Out::Failed {
                    op,
                    error: errors::ws(&error),
                };
            }
        }
        let reason = sender.closed().await;
        Out::WsClosed {
            op,
            closed: errors::closed(&reason),
        }
    });
}

/// The JS side dropped its WebSocket: the connection closes with 1001 (going away).
pub(crate) fn drop_handle(id: u32) {
    let handle = SOCKETS.with(|s| s.borrow_mut().remove(&id));
    drop(handle);
}

/// WebSockets open (for the tests' leak checks).
pub(crate) fn open() -> usize {
    SOCKETS.with(|s| s.borrow().len())
}
