//! WebSocket connections over any transport and runtime: a thin driver around the sans-IO
//! [`tether_core::ws::WebSocket`].
//!
//! [`spawn`] moves a core connection and its socket into a task (the *pump*) and returns the
//! application's [`WebSocket`] handle. Every protocol decision (framing, masking, compression,
//! pongs, the close handshake, heartbeat and timeouts) stays in the core; the pump only moves
//! bytes between the socket and the core, runs the core's timer, and hands messages over:
//!
//! * incoming messages go through a bounded queue of [`WsConfig::message_buffer`]
//!   messages (this crate's `queue`: no allocation per message);
//! * sends go through an *outbox* shared with the pump (`outbox`): a send is checked
//!   (control payload sizes, close codes, whether the connection still takes messages),
//!   then, when the pump is idle and nothing waits to be written, handed to the core and
//!   written by the sender itself (`conn`: the core and the socket sit behind one lock);
//!   otherwise it is queued and the pump woken, which takes everything queued in one go. A
//!   send costs no allocation and no answer from the pump, and its errors are known before
//!   it returns;
//! * the final [`CloseReason`] is published in a shared slot (this crate's `sync::watch`),
//!   readable from every handle.
//!
//! No runtime, no threads assumed.
//!
//! # Backpressure
//!
//! * **Receiving.** When the application does not keep up and the message channel is full,
//!   the pump stops reading from the socket (TCP flow control then slows the peer down), while
//!   it keeps writing and keeps running the core's timers. Pings and pongs never block: when
//!   the channel is full they are not reported to the application (the core has queued the
//!   pong already). Note that while the pump does not read, the peer's pings are not decoded,
//!   so they are not answered either: a peer with a heartbeat may end a connection whose
//!   application stopped reading for longer than its pong timeout. That is the intended
//!   consequence of backpressure; keep receiving (or drop the [`WsReceiver`], after which
//!   incoming messages are discarded) to avoid it.
//! * **Sending.** A send waits while at least [`WsConfig::write_buffer`] bytes wait, in the
//!   outbox and in the pump's write queue together, so `send_*().await` waits when the peer
//!   does not read. A peer that reads nothing and sends nothing is caught by the core's
//!   heartbeat (when configured).
//!
//! # Ending
//!
//! Every connection ends with one [`CloseReason`]. The pump then flushes what is left to
//! write (within [`WsConfig::close_linger`]; nothing more after an abnormal end), shuts down
//! the write side, drops the socket, and only then
//! reports the end: [`WebSocket::closed`] resolves and, once the buffered messages are
//! consumed, [`WebSocket::recv`] returns `None`. EOF and IO errors end the connection as
//! [`CloseReason::TransportClosed`]. When the application drops every handle without closing,
//! the pump starts the close handshake with 1000 itself and ends when it completes (or the
//! core's close timeout passes); no task outlives its connection.
//!
//! # Notes
//!
//! * Settings: the pump reads its buffer sizes and linger from the [`WsConfig`] the core
//!   connection was made with ([`CoreWebSocket::config`]).
//! * Time: the pump feeds the core instants from the [`Runtime`](crate::Runtime)'s clock. Core connections
//!   handed to [`spawn`] must be created with that clock's `now()`.
//! * The inherent `close(code, reason)` takes precedence over `futures_util::SinkExt::close`;
//!   call `SinkExt::close(&mut sender)` for the sink's (which closes with 1000). Sending a
//!   [`Message`] without the sink is [`WsSender::send_message`] (named so as not to shadow
//!   `SinkExt::send`).
//!
//! [`WsConfig`]: tether_core::ws::WsConfig
//! [`WsConfig::message_buffer`]: tether_core::ws::WsConfig::message_buffer
//! [`WsConfig::write_buffer`]: tether_core::ws::WsConfig::write_buffer
//! [`WsConfig::close_linger`]: tether_core::ws::WsConfig::close_linger
//! [`CoreWebSocket::config`]: tether_core::ws::WebSocket::config

mod conn;
mod handle;
mod log;
mod outbox;
mod pump;
#[cfg(test)]
mod tests;

pub use handle::{WeakWsSender, WebSocket, WsReceiver, WsSender};

use crate::io::{Read, Write};
use crate::queue;
use crate::runtime::{MaybeSend, Rt};
use crate::sync::{watch, WatchReceiver};
use crate::transport::Transport;
use bytes::Bytes;
use outbox::{Handles, Outbox};
use pump::Pump;
use std::sync::Arc;
use tether_core::ws::{CloseReason, LocalError, WebSocket as CoreWebSocket};

/// First size of the read buffer. It doubles up to [`READ_MAX`] while reads fill it, so
/// idle connections stay small.
const READ_START: usize = 4 * 1024;
/// Largest transport read.
const READ_MAX: usize = 64 * 1024;

// ---- public types ----

/// A WebSocket message, received or to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping. Received pings are answered by the connection itself.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
}

impl Message {
    /// Whether this is a ping or a pong.
    pub fn is_control(&self) -> bool {
        matches!(self, Message::Ping(_) | Message::Pong(_))
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Message {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(Bytes::from(data))
    }
}

/// Why a send (or close) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The connection is closing or over: nothing was sent. Carries the final reason once it
    /// is known (`None` while our close handshake is still under way).
    #[error("the WebSocket connection is closing or closed ({0:?})")]
    Closed(Option<CloseReason>),
    /// The protocol does not allow this send (control payload over 125 bytes, a close code
    /// that may not be sent, ...). Nothing was sent; the connection is unaffected.
    #[error(transparent)]
    Local(LocalError),
    /// `Sink::start_send` was called without a successful `poll_ready` while the connection
    /// had no room (its write buffer full). Nothing was sent.
    #[error("Sink::start_send without poll_ready")]
    SinkNotReady,
}

/// Drives a core WebSocket over `io` in a spawned task; returns the application's handle.
///
/// `trailing`: bytes already read past the handshake; they are fed to the core first. The
/// task owns the socket: it reads (only while the core wants input and the application has
/// room for messages), writes everything the core produces (pongs go out even if the
/// application never reads), runs the core's timers, and ends after the final close event:
/// it flushes, shuts down the write side and drops the socket. EOF and IO errors end the
/// connection as [`CloseReason::TransportClosed`], so the task never hangs on a dead peer.
///
/// The transport is any stream with this crate's [`Read`] and [`Write`] (each runtime
/// adapter wraps its own); the task runs on `rt`. Its buffer sizes and linger are those of
/// the core connection's config
/// ([`message_buffer`](tether_core::ws::WsConfig::message_buffer),
/// [`write_buffer`](tether_core::ws::WsConfig::write_buffer),
/// [`close_linger`](tether_core::ws::WsConfig::close_linger)).
pub fn spawn<IO>(rt: &Rt, io: IO, ws: CoreWebSocket, trailing: Bytes) -> WebSocket
where
    IO: Read + Write + Unpin + MaybeSend + 'static,
{
    spawn_session(rt, io, ws, trailing, None)
}

/// [`spawn`], with the subprotocol the handshake settled for the session's span.
pub(crate) fn spawn_session<IO>(
    rt: &Rt,
    io: IO,
    ws: CoreWebSocket,
    trailing: Bytes,
    subprotocol: Option<&str>,
) -> WebSocket
where
    IO: Read + Write + Unpin + MaybeSend + 'static,
{
    let span = log::session_span(ws.role(), subprotocol, ws.is_compressed());
    let config = ws.config();
    let (message_tx, message_rx) = queue::bounded(config.message_buffer.max(1));
    let outbox = Arc::new(Outbox::new(config.write_buffer.max(1)));
    let close_linger = config.close_linger;
    let (status_tx, status_rx) = watch(Status::default());
    let pump = Pump::new(
        rt.clone(),
        ws,
        Transport::new(io, READ_START, READ_MAX),
        outbox.clone(),
        message_tx,
        status_tx,
        close_linger,
    );
    if span.is_disabled() {
        rt.spawn(Box::pin(pump.run(trailing)));
    } else {
        use tracing::Instrument;
        rt.spawn(Box::pin(pump.run(trailing).instrument(span)));
    }
    WebSocket::new(Arc::new(Handles::new(outbox)), message_rx, status_rx)
}

/// What the pump publishes about the end of the connection.
#[derive(Debug, Clone, Default)]
struct Status {
    /// The final reason, as soon as the core reports it.
    reason: Option<CloseReason>,
    /// The transport is shut down and dropped.
    finished: bool,
}

fn closed_error(status: &WatchReceiver<Status>) -> WsError {
    WsError::Closed(status.with(|s| s.reason.clone()))
}

/// Waits for the pump to finish. If it never does because its runtime shut down under it,
/// the end counts as [`CloseReason::TransportClosed`].
async fn wait_closed(status: &WatchReceiver<Status>) -> CloseReason {
    let mut status = status.clone();
    // An error means the pump is gone without finishing (its runtime shut down).
    let _ = status.wait_for(|s| s.finished).await;
    let reason = status.with(|s| s.reason.clone());
    reason.unwrap_or(CloseReason::TransportClosed)
}
