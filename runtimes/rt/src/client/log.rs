//! What a client request tells `tracing` (target `tether::client`, all at `debug`): a
//! `request` span (method, origin), and in it how the connection was had (reused from the
//! pool or new, the time waiting for a pool slot, the connect time), each retry on a fresh
//! connection, the time to the response head, each redirect followed, and the final
//! status with the redirects and retries it took. The clock is read for them only when
//! someone listens ([`enabled`]); otherwise the span is disabled and the events are one
//! interest check each.

use super::config::ClientError;
use http::{Method, StatusCode};
use std::fmt;
use std::time::Duration;
use tether_core::pool::Origin;

/// The target of the client's spans and events.
pub(crate) const TARGET: &str = "tether::client";

/// Whether the client's events are wanted (the timings are measured only then).
pub(super) fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

/// The span of one request (redirects and retries included); `origin` is recorded once the
/// URL is parsed ([`record_origin`]).
pub(super) fn request_span(method: &Method) -> tracing::Span {
    tracing::debug_span!(
        target: TARGET,
        "request",
        %method,
        origin = tracing::field::Empty
    )
}

/// Records the origin a request goes to (again after a redirect to another origin).
pub(super) fn record_origin(span: &tracing::Span, origin: &Origin) {
    if !span.is_disabled() {
        span.record("origin", tracing::field::display(Show(origin)));
    }
}

/// An origin as `scheme://host:port`, written without an allocation.
struct Show<'a>(&'a Origin);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.0;
        if origin.host().contains(':') {
            write!(
                f,
                "{}://[{}]:{}",
                origin.scheme(),
                origin.host(),
                origin.port()
            )
        } else {
            write!(
                f,
                "{}://{}:{}",
                origin.scheme(),
                origin.host(),
                origin.port()
            )
        }
    }
}

fn micros(duration: Option<Duration>) -> Option<u64> {
    duration.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The request has a connection: `reused` from the pool or newly opened (in
/// `connect`), after `waited` for a pool slot (when it had to wait).
pub(super) fn connection(reused: bool, waited: Option<Duration>, connect: Option<Duration>) {
    tracing::debug!(
        target: TARGET,
        reused,
        wait_micros = micros(waited),
        connect_micros = micros(connect),
        "connection"
    );
}

/// An attempt failed on a connection that may have been stale; the request goes again on a
/// fresh one.
pub(super) fn retry(error: &ClientError, reused: bool) {
    tracing::debug!(target: TARGET, %error, reused, "retrying on a new connection");
}

/// The response head arrived, `first_byte` after the request started going out.
pub(super) fn response_head(status: StatusCode, first_byte: Option<Duration>) {
    tracing::debug!(
        target: TARGET,
        status = status.as_u16(),
        ttfb_micros = micros(first_byte),
        "response head"
    );
}

/// A redirect is followed to `location`.
pub(super) fn redirect(status: StatusCode, location: &str) {
    tracing::debug!(target: TARGET, status = status.as_u16(), location, "redirect");
}

/// A challenge (`status`: 401) is answered by sending the request again with credentials.
pub(super) fn auth_retry(status: StatusCode) {
    tracing::debug!(target: TARGET, status = status.as_u16(), "authentication retry");
}

/// For a runtime adapter's [`Connector`](super::Connector): whether a TLS handshake's time
/// is wanted (someone listens to the client's events). Read the clock for it only then.
pub fn tls_timing_wanted() -> bool {
    enabled()
}

/// For a runtime adapter's [`Connector`](super::Connector): a TLS handshake took `duration`
/// and succeeded (`ok`) or not. A `debug` event `tls handshake` on target `tether::client`,
/// in the span of the request that opens the connection.
pub fn tls_handshake(duration: Duration, ok: bool) {
    tracing::debug!(
        target: TARGET,
        tls_micros = micros(Some(duration)),
        ok,
        "tls handshake"
    );
}

/// The request failed (its error is also the caller's).
pub(super) fn failed(error: &ClientError) {
    tracing::debug!(target: TARGET, %error, "request failed");
}

/// The request's outcome: the final response's status, after `redirects` and `retries`.
pub(super) fn done(status: StatusCode, redirects: usize, retries: usize) {
    tracing::debug!(
        target: TARGET,
        status = status.as_u16(),
        redirects,
        retries,
        "response"
    );
}
