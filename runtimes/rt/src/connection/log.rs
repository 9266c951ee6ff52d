//! What a served connection tells `tracing`: a `connection` span (the peer), an access
//! event per request at `info` (target `tether::access`: method, path, status, time to the
//! response head), protocol errors at `debug` with their typed error, and a `debug` event
//! when the connection ends with the number of requests it served. With no subscriber
//! interested, the per-request cost is one `enabled!` check.

use http::{Method, StatusCode};
use tether_core::h1::Error;
use tether_core::time::Instant;

/// The target of the access events (filter on it: `RUST_LOG=tether::access=info`).
pub(crate) const ACCESS: &str = "tether::access";

/// The span every event of one connection is in.
pub(crate) fn connection_span(peer: Option<std::net::SocketAddr>) -> tracing::Span {
    match peer {
        Some(peer) => tracing::debug_span!("connection", %peer),
        None => tracing::debug_span!("connection"),
    }
}

/// A request being answered, for its access event; made only when someone listens.
pub(crate) struct AccessEntry {
    method: Method,
    path: String,
    started: Instant,
}

impl AccessEntry {
    /// Starts an entry for a request that arrived at `now`, if access events are wanted.
    pub(crate) fn start(method: &Method, path: &str, now: Instant) -> Option<AccessEntry> {
        tracing::enabled!(target: ACCESS, tracing::Level::INFO).then(|| AccessEntry {
            method: method.clone(),
            path: path.to_owned(),
            started: now,
        })
    }

    /// The response head for the request was handed to the connection at `now`.
    pub(crate) fn answered(self, status: StatusCode, now: Instant) {
        let micros = now.saturating_duration_since(self.started).as_micros();
        tracing::info!(
            target: ACCESS,
            method = %self.method,
            path = %self.path,
            status = status.as_u16(),
            micros,
            "request"
        );
    }
}

/// Counts a connection's requests and reports its end when dropped (however the serving
/// loop ends).
#[derive(Default)]
pub(crate) struct ConnectionLog {
    requests: u64,
}

impl ConnectionLog {
    pub(crate) fn request(&mut self) {
        self.requests += 1;
    }

    /// A protocol error of the peer (or a deadline): not ours, so `debug`, never `error`.
    pub(crate) fn protocol_error(&self, error: &Error) {
        tracing::debug!(%error, "protocol error");
    }
}

impl Drop for ConnectionLog {
    fn drop(&mut self) {
        tracing::debug!(requests = self.requests, "connection closed");
    }
}
