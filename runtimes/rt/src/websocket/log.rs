//! What a WebSocket session tells `tracing` (target `tether::websocket`): a `websocket`
//! span for the session (role, subprotocol, compression), and at its end one `debug` event
//! with the messages received and sent, the close code and who ended it; a peer's protocol
//! error at `debug` with its typed kind (never `error`: a peer's bad input is not ours).
//! The counts are plain additions; without a subscriber the span is disabled and nothing
//! else is made.

use tether_core::ws::{CloseReason, Role};

/// The target of the sessions' spans and events.
pub(crate) const TARGET: &str = "tether::websocket";

/// The span of one session, entered by its pump.
pub(super) fn session_span(
    role: Role,
    subprotocol: Option<&str>,
    compressed: bool,
) -> tracing::Span {
    let role = match role {
        Role::Server => "server",
        Role::Client => "client",
    };
    tracing::debug_span!(
        target: TARGET,
        "websocket",
        role,
        subprotocol,
        compression = compressed
    )
}

/// Who or what ended a session.
fn closed_by(reason: &CloseReason) -> &'static str {
    match reason {
        CloseReason::ByUs { .. } => "us",
        CloseReason::ByPeer { .. } => "peer",
        CloseReason::PingTimeout => "heartbeat timeout",
        CloseReason::CloseTimeout => "close timeout",
        CloseReason::IdleTimeout => "idle timeout",
        CloseReason::ProtocolError(_) => "protocol error",
        CloseReason::TransportClosed => "transport closed",
        _ => "other",
    }
}

/// The session is over.
pub(super) fn session_end(reason: &CloseReason, messages_in: u64, messages_out: u64) {
    if let CloseReason::ProtocolError(error) = reason {
        tracing::debug!(
            target: TARGET,
            kind = ?error.kind(),
            offset = error.offset(),
            code = error.close_code(),
            %error,
            "protocol error"
        );
    }
    tracing::debug!(
        target: TARGET,
        closed_by = closed_by(reason),
        code = reason.code(),
        clean = reason.is_clean(),
        messages_in,
        messages_out,
        "websocket closed"
    );
}
