//! What a served connection tells `tracing`: a `connection` span (the peer), an access
//! event per request at `info` (target `tether::access`: method, path, status, time to the
//! response head, request and response body bytes), protocol errors at `debug` with their
//! typed kind, and a `debug` event when the connection ends with the number of requests it
//! served and why it ended. With no subscriber interested, the per-request cost is one
//! `enabled!` check and a few tests of an empty `Option`.

use crate::response::{Response, ResponseBody};
use crate::runtime::{Runtime, TaskError};
use http::{Method, StatusCode};
use tether_core::h1::{Error, RemoteErrorKind};
use tether_core::time::Instant;

/// The target of the access events (filter on it: `RUST_LOG=tether::access=info`).
pub(crate) const ACCESS: &str = "tether::access";

/// The target of the connection's span and its other events.
pub(crate) const SERVER: &str = "tether::server";

/// The span every event of one connection is in.
pub(crate) fn connection_span(peer: Option<std::net::SocketAddr>) -> tracing::Span {
    match peer {
        Some(peer) => tracing::debug_span!(target: SERVER, "connection", %peer),
        None => tracing::debug_span!(target: SERVER, "connection"),
    }
}

/// The access entry of the request being answered (`None`: nobody listens). The event goes
/// out once the request and the response are both complete, or, for a request that was
/// answered, when the entry is dropped first (the connection ended; the counts say how far
/// the bodies got).
#[derive(Default)]
pub(crate) struct Access(Option<Entry>);

struct Entry {
    method: Method,
    path: String,
    started: Instant,
    /// The status and the time to the response head, once answered.
    answered: Option<(StatusCode, u128)>,
    /// Request body bytes received.
    bytes_in: u64,
    /// Response body bytes handed to the connection (none for a response to `HEAD`).
    bytes_out: u64,
    request_done: bool,
    response_done: bool,
}

impl Access {
    /// A request arrived at `now`: starts its entry, if access events are wanted.
    pub(crate) fn start(&mut self, method: &Method, path: &str, now: Instant) {
        self.0 = tracing::enabled!(target: ACCESS, tracing::Level::INFO).then(|| Entry {
            method: method.clone(),
            path: path.to_owned(),
            started: now,
            answered: None,
            bytes_in: 0,
            bytes_out: 0,
            request_done: false,
            response_done: false,
        });
    }

    /// `n` bytes of the request body arrived.
    pub(crate) fn received(&mut self, n: usize) {
        if let Some(entry) = &mut self.0 {
            entry.bytes_in += n as u64;
        }
    }

    /// The request (its body) is complete.
    pub(crate) fn request_ended(&mut self) {
        if let Some(entry) = &mut self.0 {
            entry.request_done = true;
            self.emit_if_complete();
        }
    }

    /// The handler's answer (`done`) goes to the connection; the clock is read only when an
    /// entry is kept.
    pub(crate) fn answered(&mut self, done: &Result<Response, TaskError>, rt: &dyn Runtime) {
        let Some(entry) = &mut self.0 else {
            return;
        };
        let micros = rt
            .now()
            .saturating_duration_since(entry.started)
            .as_micros();
        let (status, whole) = match done {
            Ok(response) if response.upgrade.is_some() => (response.status(), true),
            Ok(response) => match &response.body {
                ResponseBody::Empty => (response.status(), true),
                ResponseBody::Full(bytes) => {
                    if entry.method != Method::HEAD {
                        entry.bytes_out += bytes.len() as u64;
                    }
                    (response.status(), true)
                }
                ResponseBody::Stream(_) => (response.status(), false),
            },
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, true),
        };
        entry.answered = Some((status, micros));
        entry.response_done = whole;
        self.emit_if_complete();
    }

    /// `n` bytes of a streamed response body went to the connection.
    pub(crate) fn sent(&mut self, n: usize) {
        if let Some(entry) = &mut self.0 {
            if entry.method != Method::HEAD {
                entry.bytes_out += n as u64;
            }
        }
    }

    /// The streamed response body ended.
    pub(crate) fn response_ended(&mut self) {
        if let Some(entry) = &mut self.0 {
            entry.response_done = true;
            self.emit_if_complete();
        }
    }

    fn emit_if_complete(&mut self) {
        if self
            .0
            .as_ref()
            .is_some_and(|e| e.request_done && e.response_done)
        {
            // Dropping the entry emits it.
            self.0 = None;
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some((status, micros)) = self.answered {
            tracing::info!(
                target: ACCESS,
                method = %self.method,
                path = %self.path,
                status = status.as_u16(),
                micros,
                bytes_in = self.bytes_in,
                bytes_out = self.bytes_out,
                "request"
            );
        }
    }
}

/// Why a connection ended, as far as the loop can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer closed its side between requests (or went away).
    PeerClosed,
    /// Nothing arrived within the keep-alive idle timeout after a request.
    KeepAliveTimeout,
    /// No request (head) arrived in time: before the first request, or a head that came
    /// too slowly.
    HeadTimeout,
    /// A request body came too slowly.
    BodyTimeout,
    /// The peer broke the protocol or a limit (the `protocol error` event says how).
    ProtocolError,
    /// The response was the last: keep-alive off (`Connection: close`, HTTP/1.0, an unread
    /// body).
    NotKeptAlive,
    /// A graceful shutdown of the server.
    Shutdown,
    /// The end of a shutdown: connections still busy are cut.
    Aborted,
    /// Writing to the peer failed.
    WriteFailed,
    /// A streamed response body failed; the connection ends without the body's end.
    ResponseAborted,
    /// The connection became a WebSocket.
    Upgraded,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::PeerClosed => "peer closed",
            End::KeepAliveTimeout => "keep-alive timeout",
            End::HeadTimeout => "head timeout",
            End::BodyTimeout => "body timeout",
            End::ProtocolError => "protocol error",
            End::NotKeptAlive => "not kept alive",
            End::Shutdown => "shutdown",
            End::Aborted => "aborted",
            End::WriteFailed => "write failed",
            End::ResponseAborted => "response aborted",
            End::Upgraded => "upgraded",
        }
    }
}

/// Counts a connection's requests and reports its end when dropped (however the serving
/// loop ends), with the first cause of the end it was told.
#[derive(Default)]
pub(crate) struct ConnectionLog {
    requests: u64,
    end: Option<End>,
}

impl ConnectionLog {
    pub(crate) fn request(&mut self) {
        self.requests += 1;
    }

    /// The connection is ending because of `end` (the first cause given is kept).
    pub(crate) fn ending(&mut self, end: End) {
        self.end.get_or_insert(end);
    }

    /// An idle connection's deadline closed it: before any request, the head timeout; after
    /// one, the keep-alive timeout.
    pub(crate) fn idle_timeout(&mut self) {
        self.ending(if self.requests == 0 {
            End::HeadTimeout
        } else {
            End::KeepAliveTimeout
        });
    }

    /// A protocol error of the peer (or a deadline): not ours, so `debug`, never `error`.
    pub(crate) fn protocol_error(&mut self, error: &Error) {
        let kind = error.remote().map(|remote| remote.kind());
        self.ending(match kind {
            Some(RemoteErrorKind::HeadTimeout) => End::HeadTimeout,
            Some(RemoteErrorKind::BodyTimeout) => End::BodyTimeout,
            _ => End::ProtocolError,
        });
        match error.remote() {
            Some(remote) => tracing::debug!(
                target: SERVER,
                kind = ?remote.kind(),
                offset = remote.offset(),
                status = remote.status().as_u16(),
                %error,
                "protocol error"
            ),
            None => tracing::debug!(target: SERVER, %error, "protocol error"),
        }
    }
}

impl Drop for ConnectionLog {
    fn drop(&mut self) {
        // Nothing told: the service was already aborted when the connection came.
        let reason = self.end.unwrap_or(End::Aborted).as_str();
        tracing::debug!(
            target: SERVER,
            requests = self.requests,
            reason,
            "connection closed"
        );
    }
}
