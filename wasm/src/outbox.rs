//! What the module has for JavaScript, taken in one pull after each `run`: completions of
//! operations (each started with an id the JS side chose and holds a promise for) and
//! server events (a request arrived). Nothing here calls into JavaScript; the conversion
//! to JS values happens in the pull ([`crate::js`]).

use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

/// A typed error for the JS side: `code` picks the error class, `message` is for people,
/// `status` carries an HTTP status or a close code where one belongs to the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) status: Option<u16>,
}

impl ErrorInfo {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            code,
            message: message.into(),
            status: None,
        }
    }
}

/// A header list as the JS side sees it: names and values as strings (a value's bytes
/// mapped one to one onto characters, as `Headers` and Node do for Latin-1).
pub(crate) type HeaderList = Vec<(String, String)>;

/// How a WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    pub(crate) code: u16,
    pub(crate) reason: String,
    pub(crate) clean: bool,
    /// `peer`, `us`, `protocol-error`, `ping-timeout`, `close-timeout`, `idle-timeout` or
    /// `transport-closed`.
    pub(crate) how: &'static str,
}

/// A WebSocket message for JavaScript.
#[derive(Debug)]
pub(crate) enum WsMessage {
    Text(String),
    Binary(Bytes),
}

/// An entry for JavaScript.
#[derive(Debug)]
pub(crate) enum Out {
    /// An operation finished with nothing to return.
    Done { op: u32 },
    /// An operation failed.
    Failed { op: u32, error: ErrorInfo },
    /// A client request got its response head; its body is read through `id`.
    Response {
        op: u32,
        id: u32,
        status: u16,
        headers: HeaderList,
    },
    /// A piece of a body (`None`: the body ended, complete).
    Chunk { op: u32, data: Option<Bytes> },
    /// A whole body.
    Body { op: u32, data: Bytes },
    /// A WebSocket is open.
    WsOpen {
        op: u32,
        id: u32,
        protocol: Option<String>,
        extensions: Option<String>,
    },
    /// WebSocket messages: the one a receive waited for, and those already behind it (one
    /// completion for a burst).
    WsMessages { op: u32, messages: Vec<WsMessage> },
    /// A WebSocket is over.
    WsClosed { op: u32, closed: Closed },
    /// A server started (`id`: its handle).
    ServerStarted { op: u32, id: u32 },
    /// A request reached a server.
    Request {
        server: u32,
        id: u32,
        method: String,
        target: String,
        headers: HeaderList,
        peer: Option<String>,
    },
}

thread_local! {
    static OUTBOX: RefCell<Vec<Out>> = const { RefCell::new(Vec::new()) };
    static RUNNING: RefCell<HashMap<u32, AbortHandle>> = RefCell::new(HashMap::new());
}

/// Queues an entry for the next pull.
pub(crate) fn push(out: Out) {
    OUTBOX.with(|o| o.borrow_mut().push(out));
}

/// Everything queued, in order.
pub(crate) fn take() -> Vec<Out> {
    OUTBOX.with(|o| std::mem::take(&mut *o.borrow_mut()))
}

/// Runs operation `op` as a task; its result is queued when it ends. [`cancel`] drops it
/// (and so whatever it holds: a request in flight, a connection) without a completion.
pub(crate) fn start(op: u32, work: impl Future<Output = Out> + 'static) {
    let (handle, registration) = AbortHandle::new_pair();
    RUNNING.with(|r| r.borrow_mut().insert(op, handle));
    crate::executor::spawn(Box::pin(async move {
        if let Ok(out) = Abortable::new(work, registration).await {
            push(out);
        }
        let _ = RUNNING.try_with(|r| r.borrow_mut().remove(&op));
    }));
}

/// Drops operation `op` if it is still running (an `AbortSignal`, a dropped stream).
pub(crate) fn cancel(op: u32) {
    if let Some(handle) = RUNNING.with(|r| r.borrow_mut().remove(&op)) {
        handle.abort();
    }
}

/// The completion of a body write: `Done` once the piece was taken, or `Failed` with
/// `code` when nothing takes that body any more.
pub(crate) fn written(op: u32, sent: bool, code: &'static str, message: &str) -> Out {
    if sent {
        Out::Done { op }
    } else {
        Out::Failed {
            op,
            error: ErrorInfo::new(code, message),
        }
    }
}

/// The failure of a read of a body that was already read whole, or given up.
pub(crate) fn body_used(op: u32) -> Out {
    Out::Failed {
        op,
        error: ErrorInfo::new("BODY_USED", "the body was already read or dropped"),
    }
}

/// Operations running (for the tests' leak checks).
pub(crate) fn running() -> usize {
    RUNNING.with(|r| r.borrow().len())
}

/// A header map as the JS side sees it.
pub(crate) fn header_list(headers: &http::HeaderMap) -> HeaderList {
    headers
        .iter()
        .map(|(name, value)| {
            let value = value.as_bytes().iter().map(|&b| b as char).collect();
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// Ids for the handles the JS side holds (responses, streams, WebSockets, requests).
pub(crate) fn new_handle() -> u32 {
    thread_local!(static NEXT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    NEXT.with(|n| {
        n.set(n.get().wrapping_add(1).max(1));
        n.get()
    })
}
