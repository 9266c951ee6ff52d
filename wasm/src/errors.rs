//! The typed errors of `tether-rt` as the JS side's error classes see them: a stable
//! `code` per kind (the class), the message, and the status or close code that goes with
//! it. The codes are the contract with `js/errors.js`.

use crate::outbox::{Closed, ErrorInfo};
use tether_core::time::TimeoutKind;
use tether_core::ws::CloseReason;
use tether_rt::websocket::WsError;
use tether_rt::{BodyError, ClientError};

/// A client request's (or WebSocket handshake's) failure.
pub(crate) fn client(error: &ClientError) -> ErrorInfo {
    let code = match error {
        ClientError::Timeout(TimeoutKind::Total) => "TOTAL_TIMEOUT",
        ClientError::Timeout(TimeoutKind::Connect) => "CONNECT_TIMEOUT",
        ClientError::Timeout(TimeoutKind::SockConnect) => "SOCK_CONNECT_TIMEOUT",
        ClientError::Timeout(TimeoutKind::SockRead) => "SOCK_READ_TIMEOUT",
        ClientError::Timeout(_) => "TIMEOUT",
        ClientError::InvalidUrl { .. } => "INVALID_URL",
        ClientError::InvalidHeader { .. } => "INVALID_HEADER",
        ClientError::Dns(_) => "DNS",
        ClientError::Connect(_) => "CONNECT",
        ClientError::Tls(_) => "TLS",
        ClientError::Io(_) => "CONNECTION",
        ClientError::Protocol(_) => "PROTOCOL",
        ClientError::BodyTooLarge(_) => "BODY_TOO_LARGE",
        ClientError::TooManyRedirects(_) => "TOO_MANY_REDIRECTS",
        ClientError::Closed => "CLIENT_CLOSED",
        ClientError::WebSocket(_) => "WS_HANDSHAKE",
        _ => "CLIENT",
    };
    let status = match error {
        ClientError::Protocol(e) => e.remote().map(|r| r.status().as_u16()),
        _ => None,
    };
    ErrorInfo {
        code,
        message: full_message(error),
        status,
    }
}

/// A request body that could not be read to its end.
pub(crate) fn body(error: &BodyError) -> ErrorInfo {
    let (code, status) = match error {
        BodyError::Protocol(e) => ("PROTOCOL", e.remote().map(|r| r.status().as_u16())),
        BodyError::ConnectionLost => ("CONNECTION", None),
        BodyError::Shutdown => ("SHUTDOWN", None),
        _ => ("CONNECTION", None),
    };
    ErrorInfo {
        code,
        message: full_message(error),
        status,
    }
}

/// A WebSocket send or close that could not be made.
pub(crate) fn ws(error: &WsError) -> ErrorInfo {
    match error {
        WsError::Closed(reason) => ErrorInfo {
            code: "WS_CLOSED",
            message: error.to_string(),
            status: reason.as_ref().map(CloseReason::code),
        },
        _ => ErrorInfo::new("WS_INVALID", error.to_string()),
    }
}

/// How a WebSocket ended.
pub(crate) fn closed(reason: &CloseReason) -> Closed {
    let (how, text) = match reason {
        CloseReason::ByPeer { reason, .. } => ("peer", reason.clone()),
        CloseReason::ByUs { reason, .. } => ("us", reason.clone()),
        CloseReason::ProtocolError(e) => ("protocol-error", e.to_string()),
        CloseReason::PingTimeout => ("ping-timeout", String::new()),
        CloseReason::CloseTimeout => ("close-timeout", String::new()),
        CloseReason::IdleTimeout => ("idle-timeout", String::new()),
        CloseReason::TransportClosed => ("transport-closed", String::new()),
        _ => ("transport-closed", String::new()),
    };
    Closed {
        code: reason.code(),
        reason: text,
        clean: reason.is_clean(),
        how,
    }
}

/// The error and its sources, `: `-joined (what a log line wants).
fn full_message(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
