//! WebSocket connections over any transport and runtime: a thin driver around the sans-IO
//! [`tether_core::ws::WebSocket`].
//!
//! [`spawn`] moves a core connection and its socket into a task (the *pump*) and returns the
//! application's [`WebSocket`] handle. Every protocol decision (framing, masking, compression,
//! pongs, the close handshake, heartbeat and timeouts) stays in the core; the pump only moves
//! bytes between the socket and the core, runs the core's timer, and talks to the application
//! over channels:
//!
//! * incoming messages go through a bounded channel of [`WsConfig::message_buffer`]
//!   messages;
//! * sends are commands over a bounded queue, each answered once the core has accepted
//!   (or refused) the message, so errors like "the connection is closing" reach the caller;
//! * the final [`CloseReason`] is published in a shared slot, readable from every handle.
//!
//! Received messages go through this crate's `queue` (no allocation per message), commands
//! through a `futures-channel` queue, and the slot is this crate's `sync::watch`: no runtime,
//! no threads assumed.
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
//! * **Sending.** The pump takes new commands only while less than
//!   [`WsConfig::write_buffer`] bytes wait to be written, so `send_*().await` waits when the
//!   peer does not read. A peer that
//!   reads nothing and sends nothing is caught by the core's heartbeat (when configured).
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

use crate::io::{Read, Write};
use crate::queue::{self, QueueReceiver, QueueSender, TrySendError};
use crate::runtime::{sleep_until, MaybeSend, Rt, Timer};
use crate::sync::{watch, WatchReceiver, WatchSender};
use crate::transport::{Input, Step, Transport};
use bytes::Bytes;
use event_listener::{Event, EventListener};
use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use futures_sink::Sink;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tether_core::ws::{code, CloseReason, LocalError, WebSocket as CoreWebSocket, WsEvent};

/// How many send commands may wait for the pump.
const COMMAND_CAPACITY: usize = 32;
/// Most commands handled in one go before the pump looks at the transport again.
const COMMAND_BATCH: usize = 32;
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
    /// `Sink::start_send` was called without a successful `poll_ready` and the command
    /// channel was full. Nothing was sent.
    #[error("Sink::start_send without poll_ready")]
    SinkNotReady,
}

impl WsError {
    /// The core's refusal as the caller sees it: "closing" is [`WsError::Closed`].
    fn from_local(error: LocalError) -> WsError {
        match error {
            LocalError::Closed => WsError::Closed(None),
            error => WsError::Local(error),
        }
    }
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
    let config = ws.config();
    let (message_tx, message_rx) = queue::bounded(config.message_buffer.max(1));
    let write_buffer = config.write_buffer.max(1);
    let close_linger = config.close_linger;
    let (command_tx, command_rx) = commands();
    let (status_tx, status_rx) = watch(Status::default());
    let pump = Pump {
        rt: rt.clone(),
        ws,
        transport: Transport::new(io, READ_START, READ_MAX),
        commands: command_rx,
        commands_open: true,
        messages: Some(message_tx),
        pending: None,
        status: status_tx,
        write_buffer,
        close_linger,
    };
    rt.spawn(Box::pin(pump.run(trailing)));
    WebSocket {
        sender: WsSender::new(command_tx.clone(), status_rx.clone()),
        receiver: WsReceiver {
            messages: message_rx,
            status: status_rx,
            _keep_open: command_tx,
        },
    }
}

/// The application's side of a WebSocket connection driven by [`spawn`].
///
/// Receive with [`recv`](WebSocket::recv) or as a [`Stream`] of [`Message`]s; send with the
/// `send_*` methods or as a [`Sink`] of [`Message`]s. [`split`](WebSocket::split) gives
/// separate halves (the [`WsSender`] can be cloned), e.g. for an echo loop.
/// [`WsSender::downgrade`] gives a handle that does not keep the connection alive, e.g. for a
/// server to close its connections with 1001 at shutdown.
///
/// Dropping every handle (this one, its halves and their clones; weak handles do not count)
/// without closing makes the connection close with 1000.
#[derive(Debug)]
pub struct WebSocket {
    sender: WsSender,
    receiver: WsReceiver,
}

impl WebSocket {
    /// The next message, or `None` once the connection is over and every message received
    /// before the end has been returned; [`close_reason`](WebSocket::close_reason) then says
    /// why it ended. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Message> {
        self.receiver.recv().await
    }

    /// Sends a message (a [`Message::Ping`] sends a ping, a [`Message::Pong`] an unsolicited
    /// pong). See [`WsSender::send_message`].
    pub async fn send_message(&self, message: Message) -> Result<(), WsError> {
        self.sender.send_message(message).await
    }

    /// Sends a text message.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), WsError> {
        self.sender.send_text(text).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), WsError> {
        self.sender.send_binary(data).await
    }

    /// Sends a ping (at most 125 bytes); the peer's pong arrives as [`Message::Pong`].
    pub async fn send_ping(&self, payload: impl Into<Bytes>) -> Result<(), WsError> {
        self.sender.send_ping(payload).await
    }

    /// Sends an unsolicited pong (at most 125 bytes), e.g. as a one-way heartbeat.
    pub async fn send_pong(&self, payload: impl Into<Bytes>) -> Result<(), WsError> {
        self.sender.send_pong(payload).await
    }

    /// Starts the close handshake. See [`WsSender::close`].
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), WsError> {
        self.sender.close(code, reason).await
    }

    /// Starts the close handshake with 1001 ("going away"), e.g. at server shutdown.
    pub async fn close_going_away(&self) -> Result<(), WsError> {
        self.sender.close_going_away().await
    }

    /// Why the connection ended, once it has (`None` while it is open or closing).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.receiver.close_reason()
    }

    /// Waits until the connection is over and its transport shut down; returns why it
    /// ended. Messages received before the end may still be waiting in
    /// [`recv`](WebSocket::recv).
    pub async fn closed(&self) -> CloseReason {
        self.receiver.closed().await
    }

    /// Another sender for this connection.
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }

    /// Splits into a sending half (cloneable) and a receiving half.
    pub fn split(self) -> (WsSender, WsReceiver) {
        (self.sender, self.receiver)
    }
}

impl Stream for WebSocket {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.get_mut().receiver).poll_next(cx)
    }
}

impl Sink<Message> for WebSocket {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.get_mut().sender).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        Pin::new(&mut self.get_mut().sender).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.get_mut().sender).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.get_mut().sender).poll_close(cx)
    }
}

/// The sending half of a [`WebSocket`]; clone it to send from several tasks.
///
/// A send returns once the connection has accepted the message: it is then queued and
/// written in order in the background. Dropping a send future after it started may or may
/// not send the message.
///
/// As a [`Sink`]: `poll_flush` waits until the connection has accepted every message sent
/// so far (reporting the first refusal), `poll_close` starts the close handshake with 1000
/// (succeeding if the connection is already closing or over).
pub struct WsSender {
    commands: Arc<Commands>,
    status: WatchReceiver<Status>,
    /// State of the [`Sink`] implementation. In a mutex only so that the sender is `Sync`;
    /// the sink methods reach it through `get_mut`, without locking.
    sink: Mutex<SinkState>,
}

impl Clone for WsSender {
    fn clone(&self) -> WsSender {
        WsSender::new(self.commands.clone(), self.status.clone())
    }
}

impl std::fmt::Debug for WsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsSender")
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

impl WsSender {
    fn new(commands: Arc<Commands>, status: WatchReceiver<Status>) -> WsSender {
        WsSender {
            commands,
            status,
            sink: Mutex::new(SinkState::default()),
        }
    }

    /// Sends a message: text, binary, a ping or an unsolicited pong (control payloads at most
    /// 125 bytes). Returns once the connection has queued it; fails with
    /// [`WsError::Closed`] when the connection is closing or over, with [`WsError::Local`]
    /// when the protocol does not allow it.
    pub async fn send_message(&self, message: Message) -> Result<(), WsError> {
        self.request(Op::from(message)).await
    }

    /// Sends a text message.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), WsError> {
        self.request(Op::Text(text.into())).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), WsError> {
        self.request(Op::Binary(data.into())).await
    }

    /// Sends a ping (at most 125 bytes); the peer's pong arrives as [`Message::Pong`].
    pub async fn send_ping(&self, payload: impl Into<Bytes>) -> Result<(), WsError> {
        self.request(Op::Ping(payload.into())).await
    }

    /// Sends an unsolicited pong (at most 125 bytes), e.g. as a one-way heartbeat.
    pub async fn send_pong(&self, payload: impl Into<Bytes>) -> Result<(), WsError> {
        self.request(Op::Pong(payload.into())).await
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes). Returns once
    /// the close frame is queued; messages the peer sends meanwhile are still received, and
    /// [`closed`](WsSender::closed) tells when (and how) the handshake ended. Fails with
    /// [`WsError::Closed`] if the connection is already closing or over.
    ///
    /// The peer's answer is read like any other input: if the application leaves
    /// [`message_buffer`](tether_core::ws::WsConfig::message_buffer) messages unread (and
    /// keeps the receiver), the answer waits behind them and the handshake may end as
    /// [`CloseReason::CloseTimeout`].
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), WsError> {
        self.request(Op::Close(code, reason.to_owned())).await
    }

    /// Starts the close handshake with 1001 ("going away"), e.g. at server shutdown.
    pub async fn close_going_away(&self) -> Result<(), WsError> {
        self.close(code::GOING_AWAY, "going away").await
    }

    /// Why the connection ended, once it has (`None` while it is open or closing).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.status.with(|s| s.reason.clone())
    }

    /// Waits until the connection is over and its transport shut down; returns why it ended.
    pub async fn closed(&self) -> CloseReason {
        wait_closed(&self.status).await
    }

    /// A handle that does not keep the connection alive, e.g. for a server's list of
    /// connections to close at shutdown.
    pub fn downgrade(&self) -> WeakWsSender {
        WeakWsSender {
            commands: Arc::downgrade(&self.commands),
            status: self.status.clone(),
        }
    }

    /// Sends one command and waits for the pump's answer.
    async fn request(&self, op: Op) -> Result<(), WsError> {
        let (ack, answer) = oneshot::channel();
        if self.commands.send(Command { op, ack }).await.is_err() {
            return Err(closed_error(&self.status));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(closed_error(&self.status)))
    }
}

impl Drop for WsSender {
    fn drop(&mut self) {
        let state = self.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        if state.reserved {
            // A place `poll_ready` reserved and `start_send` never used.
            self.commands.room.release();
        }
    }
}

impl Sink<Message> for WsSender {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        let state = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Poll::Ready(Err(error)) = poll_acks(&mut state.acks, cx, false, &this.status) {
            return Poll::Ready(Err(error));
        }
        this.commands
            .poll_reserve(state, cx)
            .map_err(|()| closed_error(&this.status))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        let this = self.get_mut();
        let state = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !std::mem::take(&mut state.reserved) && !this.commands.room.try_reserve() {
            return Err(WsError::SinkNotReady);
        }
        let (ack, answer) = oneshot::channel();
        let command = Command {
            op: Op::from(item),
            ack,
        };
        if this.commands.send_reserved(command).is_err() {
            return Err(closed_error(&this.status));
        }
        state.acks.push_back(answer);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        let state = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        poll_acks(&mut state.acks, cx, true, &this.status)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        let state = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        ready!(poll_acks(&mut state.acks, cx, true, &this.status))?;
        loop {
            if state.closed {
                return Poll::Ready(Ok(()));
            }
            if let Some(answer) = state.close_answer.as_mut() {
                let result = ready!(Pin::new(answer).poll(cx));
                state.close_answer = None;
                state.closed = true;
                return Poll::Ready(match result {
                    Ok(Err(WsError::Closed(_))) | Ok(Ok(())) | Err(_) => Ok(()),
                    Ok(Err(error)) => Err(error),
                });
            }
            if ready!(this.commands.poll_reserve(state, cx)).is_err() {
                // The pump is gone: the connection is over already.
                state.closed = true;
                continue;
            }
            state.reserved = false;
            let (ack, answer) = oneshot::channel();
            let command = Command {
                op: Op::Close(code::NORMAL, String::new()),
                ack,
            };
            match this.commands.send_reserved(command) {
                Ok(()) => state.close_answer = Some(answer),
                Err(_) => state.closed = true,
            }
        }
    }
}

/// A [`WsSender`] that does not keep the connection alive: when the application drops every
/// other handle, the connection closes (with 1000) as if this one did not exist.
///
/// Made by [`WsSender::downgrade`]; a server can keep one per connection to close them all
/// with 1001 at shutdown and wait for them to end.
#[derive(Clone)]
pub struct WeakWsSender {
    commands: Weak<Commands>,
    status: WatchReceiver<Status>,
}

impl std::fmt::Debug for WeakWsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakWsSender")
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

impl WeakWsSender {
    /// A sender, if the application still holds a handle of the connection.
    pub fn upgrade(&self) -> Option<WsSender> {
        let commands = self.commands.upgrade()?;
        Some(WsSender::new(commands, self.status.clone()))
    }

    /// Starts the close handshake with 1001 ("going away") if the application still holds a
    /// handle (otherwise the connection is closing already). See [`WsSender::close`].
    pub async fn close_going_away(&self) -> Result<(), WsError> {
        match self.upgrade() {
            Some(sender) => sender.close_going_away().await,
            None => Err(closed_error(&self.status)),
        }
    }

    /// Why the connection ended, once it has (`None` while it is open or closing).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.status.with(|s| s.reason.clone())
    }

    /// Waits until the connection is over and its transport shut down; returns why it ended.
    pub async fn closed(&self) -> CloseReason {
        wait_closed(&self.status).await
    }
}

/// The receiving half of a [`WebSocket`].
///
/// Dropping it while senders live makes the connection discard incoming messages (the
/// connection keeps answering pings and completing the close handshake).
pub struct WsReceiver {
    messages: QueueReceiver<Message>,
    status: WatchReceiver<Status>,
    /// Keeps the command channel open, so that the pump closes the connection only when
    /// every handle, senders and receiver, is gone. Never used to send.
    _keep_open: Arc<Commands>,
}

impl std::fmt::Debug for WsReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsReceiver")
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

impl WsReceiver {
    /// The next message, or `None` once the connection is over and every message received
    /// before the end has been returned; [`close_reason`](WsReceiver::close_reason) then says
    /// why it ended. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Message> {
        poll_fn(|cx| self.messages.poll_recv(cx)).await
    }

    /// Why the connection ended, once it has (`None` while it is open or closing).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.status.with(|s| s.reason.clone())
    }

    /// Waits until the connection is over and its transport shut down; returns why it ended.
    pub async fn closed(&self) -> CloseReason {
        wait_closed(&self.status).await
    }
}

impl Stream for WsReceiver {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().messages.poll_recv(cx)
    }
}

// ---- shared plumbing ----

/// What the pump publishes about the end of the connection.
#[derive(Debug, Clone, Default)]
struct Status {
    /// The final reason, as soon as the core reports it.
    reason: Option<CloseReason>,
    /// The transport is shut down and dropped.
    finished: bool,
}

/// What the application asks of the pump.
#[derive(Debug)]
enum Op {
    Text(String),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(u16, String),
}

impl From<Message> for Op {
    fn from(message: Message) -> Op {
        match message {
            Message::Text(text) => Op::Text(text),
            Message::Binary(data) => Op::Binary(data),
            Message::Ping(payload) => Op::Ping(payload),
            Message::Pong(payload) => Op::Pong(payload),
        }
    }
}

/// One request and where to answer it.
#[derive(Debug)]
struct Command {
    op: Op,
    ack: oneshot::Sender<Result<(), WsError>>,
}

type Answer = oneshot::Receiver<Result<(), WsError>>;

/// The [`Sink`] side of a [`WsSender`].
#[derive(Default)]
struct SinkState {
    /// `poll_ready` reserved a place in the command queue for `start_send`.
    reserved: bool,
    /// Waiting for a place in the command queue.
    waiting: Option<EventListener>,
    /// Answers to messages sent, oldest first.
    acks: VecDeque<Answer>,
    /// The answer to the close command of `poll_close`.
    close_answer: Option<Answer>,
    /// `poll_close` has completed.
    closed: bool,
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

/// Collects the answers that have arrived, oldest first; stops at the first refusal. With
/// `all`, waits for every answer.
fn poll_acks(
    acks: &mut VecDeque<Answer>,
    cx: &mut Context<'_>,
    all: bool,
    status: &WatchReceiver<Status>,
) -> Poll<Result<(), WsError>> {
    while let Some(answer) = acks.front_mut() {
        match Pin::new(answer).poll(cx) {
            Poll::Pending if all => return Poll::Pending,
            Poll::Pending => break,
            Poll::Ready(result) => {
                acks.pop_front();
                result.unwrap_or_else(|_| Err(closed_error(status)))?;
            }
        }
    }
    Poll::Ready(Ok(()))
}

// ---- the command queue ----

/// The command queue, bounded at [`COMMAND_CAPACITY`] like a semaphore: a sender reserves a
/// place (waiting while the queue is full), then queues its command; the pump gives the place
/// back when it takes the command. So a `send_*` future dropped while it waits leaves nothing
/// queued, and the queue never grows past the bound.
///
/// The strong handles share it: when the last one is dropped, so is the queue's only sender,
/// and the pump sees the end of the queue. A [`WeakWsSender`] holds it weakly.
struct Commands {
    queue: mpsc::UnboundedSender<Command>,
    room: Arc<Room>,
}

/// The places in the command queue.
#[derive(Default)]
struct Room {
    /// Places reserved: commands queued and not yet taken, and reservations not yet used.
    taken: AtomicUsize,
    /// Notified when a place frees up in a full queue (the only time anyone waits), and when
    /// the pump is gone.
    freed: Event,
}

impl Room {
    fn try_reserve(&self) -> bool {
        self.taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |taken| {
                (taken < COMMAND_CAPACITY).then_some(taken + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        if self.taken.fetch_sub(1, Ordering::SeqCst) == COMMAND_CAPACITY {
            self.freed.notify(usize::MAX);
        }
    }
}

/// The pump's end of the command queue: taking a command gives its place back.
struct CommandReceiver {
    queue: mpsc::UnboundedReceiver<Command>,
    room: Arc<Room>,
}

fn commands() -> (Arc<Commands>, CommandReceiver) {
    let (tx, rx) = mpsc::unbounded();
    let room = Arc::new(Room::default());
    let commands = Commands {
        queue: tx,
        room: room.clone(),
    };
    (Arc::new(commands), CommandReceiver { queue: rx, room })
}

impl Commands {
    /// Queues `command` once there is a place for it; gives it back when the pump is gone.
    async fn send(&self, command: Command) -> Result<(), Command> {
        loop {
            if self.room.try_reserve() {
                break;
            }
            if self.queue.is_closed() {
                return Err(command);
            }
            // Listen, then check again: a place freed in between is not missed.
            let freed = self.room.freed.listen();
            if self.room.try_reserve() {
                break;
            }
            if self.queue.is_closed() {
                return Err(command);
            }
            freed.await;
        }
        self.send_reserved(command)
    }

    /// Queues `command` in a place reserved for it.
    fn send_reserved(&self, command: Command) -> Result<(), Command> {
        self.queue.unbounded_send(command).map_err(|error| {
            self.room.release();
            error.into_inner()
        })
    }

    /// Reserves a place for the sink's next command; `Err` when the pump is gone.
    fn poll_reserve(&self, state: &mut SinkState, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        loop {
            if state.reserved || self.room.try_reserve() {
                state.reserved = true;
                state.waiting = None;
                return Poll::Ready(Ok(()));
            }
            if self.queue.is_closed() {
                state.waiting = None;
                return Poll::Ready(Err(()));
            }
            match &mut state.waiting {
                // Listen, then check again (next turn).
                None => state.waiting = Some(self.room.freed.listen()),
                Some(freed) => {
                    ready!(Pin::new(freed).poll(cx));
                    state.waiting = None;
                }
            }
        }
    }
}

impl CommandReceiver {
    /// The next command; `None` once every handle is gone.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        let command = ready!(Pin::new(&mut self.queue).poll_next(cx));
        if command.is_some() {
            self.room.release();
        }
        Poll::Ready(command)
    }

    /// The next command if one is queued.
    fn try_recv(&mut self) -> Option<Command> {
        let command = self.queue.try_recv().ok()?;
        self.room.release();
        Some(command)
    }

    /// Refuses further commands (those queued can still be taken) and wakes every sender
    /// waiting for a place.
    fn close(&mut self) {
        self.queue.close();
        self.room.freed.notify(usize::MAX);
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        // Also when the pump is dropped unfinished (its runtime shut down).
        self.close();
    }
}

// ---- the pump ----

/// The task that owns the core connection and the transport.
struct Pump<IO> {
    rt: Rt,
    ws: CoreWebSocket,
    transport: Transport<IO>,
    commands: CommandReceiver,
    /// False once every handle is gone.
    commands_open: bool,
    /// `None` once the application dropped the receiver: messages are discarded.
    messages: Option<QueueSender<Message>>,
    /// A message waiting for room in the message channel; no more events are decoded (and
    /// nothing is read) until it is delivered.
    pending: Option<Message>,
    status: WatchSender<Status>,
    /// New commands wait while at least this many bytes wait to be written (the config's
    /// `write_buffer`).
    write_buffer: usize,
    /// How long the final flush and shutdown may take (the config's `close_linger`).
    close_linger: Duration,
}

/// What the pump waits for in one turn of its loop.
#[derive(Clone, Copy)]
struct Wants {
    /// Reading and writing (reading only if `read`).
    step: bool,
    read: bool,
    /// Room for the pending message.
    deliver: bool,
    /// A command.
    command: bool,
    /// The core's deadline.
    timeout: bool,
}

/// What came of one wait of the pump: every source that was ready, handled in this order.
#[derive(Default)]
struct Woken {
    step: Option<Step>,
    /// The pending message was handed over (`true`), or the receiver is gone (`false`).
    delivered: Option<bool>,
    /// A command, or `None` once every handle is gone.
    command: Option<Option<Command>>,
    timeout: bool,
}

impl Woken {
    fn is_empty(&self) -> bool {
        self.step.is_none() && self.delivered.is_none() && self.command.is_none() && !self.timeout
    }
}

/// Hands the pending message over once there is room; `Ready(false)` when the receiver is
/// gone. The message is taken only together with the room for it.
fn poll_deliver(
    messages: &mut Option<QueueSender<Message>>,
    pending: &mut Option<Message>,
    cx: &mut Context<'_>,
) -> Poll<bool> {
    let Some(messages) = messages else {
        return Poll::Ready(false);
    };
    if ready!(messages.poll_ready(cx)).is_err() {
        return Poll::Ready(false);
    }
    match pending.take() {
        Some(message) => Poll::Ready(messages.send(message).is_ok()),
        None => Poll::Ready(true),
    }
}

impl<IO: Read + Write + Unpin> Pump<IO> {
    async fn run(mut self, trailing: Bytes) {
        let rt = self.rt.clone();
        self.ws.handle_input(rt.now(), &trailing);
        let mut timer = Timer::default();
        let reason = loop {
            if let Some(reason) = self.step() {
                break reason;
            }
            let read = self.pending.is_none() && self.ws.wants_input();
            let deadline = self.ws.poll_timeout();
            let wants = Wants {
                step: read || self.transport.has_output(),
                read,
                deliver: self.pending.is_some(),
                command: self.commands_open && self.transport.queued() < self.write_buffer,
                timeout: deadline.is_some(),
            };
            if !(wants.step || wants.deliver || wants.command || wants.timeout) {
                // Unreachable (an open connection always waits for input or a deadline); end
                // rather than spin.
                self.ws.handle_eof();
                continue;
            }
            let woken = self.wait(wants, &mut timer, deadline).await;
            if let Some(step) = woken.step {
                match step {
                    Step::Input(Input::Data(n)) => {
                        self.ws.handle_input(rt.now(), self.transport.received(n));
                    }
                    Step::Input(Input::Eof | Input::Failed(_)) => self.ws.handle_eof(),
                    Step::Flushed => {}
                    // The transport is dead; it discards output from now on.
                    Step::WriteFailed => self.ws.handle_eof(),
                }
            }
            if woken.delivered == Some(false) {
                // The receiver is gone: discard from now on.
                self.messages = None;
                self.pending = None;
            }
            if let Some(command) = woken.command {
                self.on_command(command);
            }
            if woken.timeout {
                self.ws.handle_timeout(rt.now());
            }
        };
        self.finish(reason).await;
    }

    /// Waits until at least one of the sources in `wants` is ready, and takes what each
    /// ready one has. Every source is polled on every wake-up (in a fixed order), so a busy
    /// one cannot starve the others.
    async fn wait(
        &mut self,
        wants: Wants,
        timer: &mut Timer,
        deadline: Option<tether_core::time::Instant>,
    ) -> Woken {
        let Pump {
            rt,
            transport,
            commands,
            messages,
            pending,
            ..
        } = self;
        // Both are cancel-safe: dropped unfinished, they lose nothing.
        let mut step = pin!(transport.step(wants.read));
        let mut sleep = pin!(timer.sleep_until(&**rt, deadline));
        poll_fn(|cx| {
            let mut woken = Woken::default();
            if wants.step {
                if let Poll::Ready(step) = step.as_mut().poll(cx) {
                    woken.step = Some(step);
                }
            }
            if wants.deliver {
                if let Poll::Ready(delivered) = poll_deliver(messages, pending, cx) {
                    woken.delivered = Some(delivered);
                }
            }
            if wants.command {
                if let Poll::Ready(command) = commands.poll_recv(cx) {
                    woken.command = Some(command);
                }
            }
            if wants.timeout && sleep.as_mut().poll(cx).is_ready() {
                woken.timeout = true;
            }
            if woken.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(woken)
            }
        })
        .await
    }

    /// Delivers events and queues output; returns the final reason when the connection is
    /// over.
    fn step(&mut self) -> Option<CloseReason> {
        if let Some(reason) = self.deliver_events() {
            return Some(reason);
        }
        self.collect_transmits();
        if self.pending.is_some() && self.ws.is_closed() {
            // The core ended (a timeout) while the application is behind: the only event
            // left is the final one, and the end must not wait for the application.
            while let Some(event) = self.ws.poll_event() {
                if let WsEvent::Closed(reason) = event {
                    return Some(reason);
                }
            }
        }
        None
    }

    /// Hands events to the application until one has to wait for room.
    fn deliver_events(&mut self) -> Option<CloseReason> {
        while self.pending.is_none() {
            let message = match self.ws.poll_event()? {
                WsEvent::Closed(reason) => return Some(reason),
                WsEvent::Text(text) => Message::Text(text),
                WsEvent::Binary(data) => Message::Binary(data),
                WsEvent::Ping(payload) => Message::Ping(payload),
                WsEvent::Pong(payload) => Message::Pong(payload),
                _ => continue,
            };
            let Some(messages) = &mut self.messages else {
                continue;
            };
            match messages.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    // Pings and pongs are notifications: they never hold up the connection.
                    if !message.is_control() {
                        self.pending = Some(message);
                    }
                }
                Err(TrySendError::Closed(_)) => self.messages = None,
            }
        }
        None
    }

    /// Queues what the core has to send.
    fn collect_transmits(&mut self) {
        let now = self.rt.now();
        let ws = &mut self.ws;
        self.transport.queue_from(|| ws.poll_transmit(now));
    }

    fn on_command(&mut self, command: Option<Command>) {
        let Some(command) = command else {
            // Every handle is gone: close (if not closing already) and finish.
            self.commands_open = false;
            let _ = self.ws.close(self.rt.now(), Some(code::NORMAL), "");
            return;
        };
        self.execute(command);
        for _ in 1..COMMAND_BATCH {
            self.collect_transmits();
            if self.transport.queued() >= self.write_buffer {
                break;
            }
            match self.commands.try_recv() {
                Some(command) => self.execute(command),
                None => break,
            }
        }
    }

    fn execute(&mut self, Command { op, ack }: Command) {
        let result = match op {
            Op::Text(text) => self.ws.send_text(&text),
            Op::Binary(data) => self.ws.send_binary(data),
            Op::Ping(payload) => self.ws.send_ping(payload),
            Op::Pong(payload) => self.ws.send_pong(payload),
            Op::Close(code, reason) => self.ws.close(self.rt.now(), Some(code), &reason),
        };
        // The caller may have stopped waiting.
        let _ = ack.send(result.map_err(WsError::from_local));
    }

    /// After the final event: refuse further commands, flush and shut down the transport,
    /// report the end, deliver a message still waiting, and let the handles see the end.
    async fn finish(mut self, reason: CloseReason) {
        self.status.send_modify(|s| s.reason = Some(reason.clone()));
        self.commands.close();
        while let Some(command) = self.commands.try_recv() {
            let _ = command.ack.send(Err(WsError::Closed(Some(reason.clone()))));
        }
        self.collect_transmits();
        if !self.transport.write_failed() {
            // After an abnormal end the peer is unresponsive or gone: write nothing more.
            let abnormal = matches!(
                reason,
                CloseReason::PingTimeout | CloseReason::CloseTimeout | CloseReason::TransportClosed
            );
            if abnormal {
                self.transport.discard_output();
            }
            let mut linger = pin!(sleep_until(
                &*self.rt,
                Some(self.rt.now() + self.close_linger)
            ));
            let mut shutdown = pin!(self.transport.shutdown());
            poll_fn(|cx| {
                if shutdown.as_mut().poll(cx).is_ready() || linger.as_mut().poll(cx).is_ready() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
        drop(self.transport);
        self.status.send_modify(|s| s.finished = true);
        if let (Some(message), Some(mut messages)) = (self.pending.take(), self.messages.take()) {
            // Waits for the application to make room, or to drop the receiver.
            if poll_fn(|cx| messages.poll_ready(cx)).await.is_ok() {
                let _ = messages.send(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::TokioIo;
    use futures_util::{SinkExt, StreamExt};
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tether_core::ws::{accept, ClientHandshake, DeflateConfig, ProtocolErrorKind, WsConfig};
    use tokio::io::{
        duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf,
    };
    use tokio::time::timeout;

    fn core_now() -> tether_core::time::Instant {
        crate::runtime::test_support::rt().now()
    }

    fn spawn<IO>(io: IO, ws: CoreWebSocket, trailing: Bytes) -> WebSocket
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        super::spawn(
            &crate::runtime::test_support::rt(),
            TokioIo(io),
            ws,
            trailing,
        )
    }

    /// Turns a hang into a failure.
    async fn within<F: Future>(future: F) -> F::Output {
        timeout(Duration::from_secs(10), future)
            .await
            .expect("timed out")
    }

    fn config() -> WsConfig {
        let mut config = WsConfig::default();
        config.deflate = None;
        config
    }

    fn mask_keys() -> impl FnMut() -> [u8; 4] + Send + 'static {
        let mut state: u32 = 0x9E37_79B9;
        move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_be_bytes()
        }
    }

    fn client_on<IO>(io: IO, config: WsConfig) -> WebSocket
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let ws = CoreWebSocket::client(config, None, core_now(), mask_keys());
        spawn(io, ws, Bytes::new())
    }

    fn server_on<IO>(io: IO, config: WsConfig) -> WebSocket
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        spawn(
            io,
            CoreWebSocket::server(config, None, core_now()),
            Bytes::new(),
        )
    }

    /// A client and a server pump wired to each other.
    fn pair() -> (WebSocket, WebSocket) {
        let (a, b) = duplex(64 * 1024);
        (client_on(a, config()), server_on(b, config()))
    }

    /// A payload with some structure but no long repeats.
    fn pattern(len: usize) -> Bytes {
        let mut state = 12_345u32;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            })
            .collect::<Vec<u8>>()
            .into()
    }

    /// Reads one frame written by a client (masked) from a raw transport: (opcode, payload).
    async fn read_client_frame(raw: &mut DuplexStream) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        raw.read_exact(&mut head).await.unwrap();
        assert_eq!(head[1] & 0x80, 0x80, "client frames are masked");
        let len = match head[1] & 0x7F {
            126 => usize::from(raw.read_u16().await.unwrap()),
            127 => raw.read_u64().await.unwrap() as usize,
            n => usize::from(n),
        };
        let mut mask = [0u8; 4];
        raw.read_exact(&mut mask).await.unwrap();
        let mut payload = vec![0u8; len];
        raw.read_exact(&mut payload).await.unwrap();
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        (head[0] & 0x0F, payload)
    }

    /// Reads until EOF; returns how many bytes came.
    async fn read_to_eof(raw: &mut DuplexStream) -> usize {
        let mut rest = Vec::new();
        raw.read_to_end(&mut rest).await.unwrap();
        rest.len()
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync + Unpin + 'static>() {}
        check::<WebSocket>();
        check::<WsSender>();
        check::<WsReceiver>();
        check::<WeakWsSender>();
        check::<WsError>();
    }

    #[tokio::test]
    async fn messages_both_ways() {
        let (mut client, mut server) = pair();
        client.send_text("hello").await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("hello".into()))
        );
        server.send_binary(&b"\x00\x01\x02"[..]).await.unwrap();
        assert_eq!(
            within(client.recv()).await,
            Some(Message::Binary(Bytes::from_static(b"\x00\x01\x02")))
        );
        client.send_text("").await.unwrap();
        assert_eq!(within(server.recv()).await, Some(Message::Text("".into())));

        // 1 MiB each way at the same time, through a 64 KiB pipe.
        let big = pattern(1 << 20);
        let (sent_by_client, sent_by_server) = within(async {
            tokio::join!(
                client.send_binary(big.clone()),
                server.send_binary(big.clone())
            )
        })
        .await;
        sent_by_client.unwrap();
        sent_by_server.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Binary(big.clone()))
        );
        assert_eq!(within(client.recv()).await, Some(Message::Binary(big)));
        let text = "é".repeat(300_000);
        server.send_text(text.clone()).await.unwrap();
        assert_eq!(within(client.recv()).await, Some(Message::Text(text)));
        assert_eq!(client.close_reason(), None);
    }

    #[tokio::test]
    async fn ping_and_pong() {
        let (mut client, mut server) = pair();
        client.send_ping(&b"are you there"[..]).await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Ping(Bytes::from_static(b"are you there")))
        );
        assert_eq!(
            within(client.recv()).await,
            Some(Message::Pong(Bytes::from_static(b"are you there")))
        );
        server
            .send_message(Message::Pong(Bytes::from_static(b"beat")))
            .await
            .unwrap();
        assert_eq!(
            within(client.recv()).await,
            Some(Message::Pong(Bytes::from_static(b"beat")))
        );
        assert_eq!(
            client.send_ping(vec![0u8; 126]).await,
            Err(WsError::Local(LocalError::ControlPayloadTooLong))
        );
    }

    #[tokio::test]
    async fn close_handshake() {
        let (mut client, mut server) = pair();
        client.send_text("last words").await.unwrap();
        client.close(1000, "bye").await.unwrap();
        // Closing: refused (the reason is known only if the handshake is already over).
        assert!(matches!(
            client.send_text("too late").await,
            Err(WsError::Closed(_))
        ));
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("last words".into()))
        );
        assert_eq!(within(server.recv()).await, None);
        let by_peer = CloseReason::ByPeer {
            code: Some(1000),
            reason: "bye".into(),
        };
        assert_eq!(server.close_reason(), Some(by_peer.clone()));
        assert_eq!(within(server.closed()).await, by_peer);

        assert_eq!(within(client.recv()).await, None);
        let by_us = CloseReason::ByUs {
            code: Some(1000),
            reason: String::new(),
        };
        assert_eq!(client.close_reason(), Some(by_us.clone()));
        assert_eq!(within(client.closed()).await, by_us);
        assert!(by_us.is_clean());

        // After the end: typed errors, no hang.
        assert_eq!(
            client.send_text("x").await,
            Err(WsError::Closed(Some(by_us.clone())))
        );
        assert_eq!(
            server.close(1000, "again").await,
            Err(WsError::Closed(Some(by_peer)))
        );
        assert_eq!(within(client.recv()).await, None);
    }

    #[tokio::test]
    async fn invalid_close_is_refused_locally() {
        let (client, mut server) = pair();
        assert_eq!(
            client.close(1005, "").await,
            Err(WsError::Local(LocalError::InvalidCloseCode(1005)))
        );
        assert_eq!(
            client.close(1000, &"r".repeat(124)).await,
            Err(WsError::Local(LocalError::ControlPayloadTooLong))
        );
        // Still open.
        client.send_text("still here").await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("still here".into()))
        );
    }

    #[tokio::test]
    async fn stream_and_sink() {
        let (client, server) = pair();
        let (server_tx, mut server_rx) = server.split();
        // Echo with the Stream and Sink halves.
        let echo = tokio::spawn(async move {
            let mut server_tx = server_tx;
            while let Some(message) = server_rx.next().await {
                if !message.is_control() {
                    SinkExt::send(&mut server_tx, message).await.unwrap();
                }
            }
            server_rx.close_reason()
        });
        let (mut client_tx, mut client_rx) = client.split();
        let outgoing: Vec<Message> = (0..100)
            .map(|i| {
                if i % 2 == 0 {
                    Message::Text(format!("message {i}"))
                } else {
                    Message::Binary(pattern(i * 100))
                }
            })
            .collect();
        let mut source = futures_util::stream::iter(outgoing.clone().into_iter().map(Ok));
        within(client_tx.send_all(&mut source)).await.unwrap();
        let echoed: Vec<Message> = within(client_rx.by_ref().take(100).collect()).await;
        assert_eq!(echoed, outgoing);
        // Sink::close starts the close handshake with 1000.
        within(SinkExt::close(&mut client_tx)).await.unwrap();
        assert_eq!(within(client_rx.next()).await, None);
        assert_eq!(
            within(echo).await.unwrap(),
            Some(CloseReason::ByPeer {
                code: Some(1000),
                reason: String::new()
            })
        );
        // Closing again is fine; sending is not.
        within(SinkExt::close(&mut client_tx)).await.unwrap();
        let mut other = client_tx.clone();
        assert!(matches!(
            within(SinkExt::send(&mut other, Message::from("late"))).await,
            Err(WsError::Closed(Some(CloseReason::ByUs { .. })))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn echo_on_many_threads() {
        let (client, server) = pair();
        let (server_tx, mut server_rx) = server.split();
        let echo = tokio::spawn(async move {
            while let Some(message) = server_rx.recv().await {
                if !message.is_control() && server_tx.send_message(message).await.is_err() {
                    break;
                }
            }
            server_rx.closed().await
        });
        let (client_tx, mut client_rx) = client.split();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let tx = client_tx.clone();
                tokio::spawn(async move {
                    for i in 0..250 {
                        tx.send_text(format!("{w}:{i}:{}", "x".repeat(i * 7)))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        let mut next = [0usize; 4];
        for _ in 0..1000 {
            let Some(Message::Text(text)) = within(client_rx.recv()).await else {
                panic!("expected text");
            };
            let mut parts = text.splitn(3, ':');
            let w: usize = parts.next().unwrap().parse().unwrap();
            let i: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(i, next[w], "per-sender order");
            assert_eq!(parts.next().unwrap().len(), i * 7);
            next[w] += 1;
        }
        for writer in writers {
            within(writer).await.unwrap();
        }
        client_tx.close(1000, "done").await.unwrap();
        assert_eq!(within(client_rx.recv()).await, None);
        assert!(within(echo).await.unwrap().is_clean());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn more_senders_than_places_in_the_queue() {
        let (client, mut server) = pair();
        let senders = 3 * COMMAND_CAPACITY;
        // Twice as many tasks as senders: some share a sender, so they wait for a place
        // through the same handle.
        let writers: Vec<_> = (0..senders)
            .map(|_| client.sender())
            .flat_map(|tx| {
                let tx = Arc::new(tx);
                [tx.clone(), tx]
            })
            .enumerate()
            .map(|(w, tx)| {
                tokio::spawn(async move {
                    for i in 0..40 {
                        tx.send_text(format!("{w}:{i}")).await.unwrap();
                    }
                })
            })
            .collect();
        let mut next = vec![0usize; 2 * senders];
        for _ in 0..40 * 2 * senders {
            let Some(Message::Text(text)) = within(server.recv()).await else {
                panic!("expected text");
            };
            let (w, i) = text.split_once(':').unwrap();
            let (w, i): (usize, usize) = (w.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[w], "per-task order");
            next[w] += 1;
        }
        for writer in writers {
            within(writer).await.unwrap();
        }
    }

    #[tokio::test]
    async fn transport_dropped() {
        let (a, b) = duplex(64 * 1024);
        let mut client = client_on(a, config());
        drop(b);
        assert_eq!(within(client.recv()).await, None);
        assert_eq!(client.close_reason(), Some(CloseReason::TransportClosed));
        assert_eq!(within(client.closed()).await, CloseReason::TransportClosed);
        assert!(matches!(
            client.send_text("x").await,
            Err(WsError::Closed(Some(CloseReason::TransportClosed)))
        ));
    }

    #[tokio::test]
    async fn transport_dropped_while_open() {
        let (a, mut raw) = duplex(64 * 1024);
        let mut client = client_on(a, config());
        raw.write_all(b"\x81\x02hi").await.unwrap();
        assert_eq!(
            within(client.recv()).await,
            Some(Message::Text("hi".into()))
        );
        // Half a frame, then the peer vanishes.
        raw.write_all(b"\x81\x05hel").await.unwrap();
        drop(raw);
        assert_eq!(within(client.recv()).await, None);
        assert_eq!(client.close_reason(), Some(CloseReason::TransportClosed));
        assert_eq!(within(client.closed()).await, CloseReason::TransportClosed);
    }

    #[tokio::test]
    async fn trailing_bytes_come_first() {
        let (a, mut raw) = duplex(64 * 1024);
        let ws = CoreWebSocket::client(config(), None, core_now(), mask_keys());
        let mut client = spawn(a, ws, Bytes::from_static(b"\x81\x05early\x81"));
        raw.write_all(b"\x04late").await.unwrap();
        assert_eq!(
            within(client.recv()).await,
            Some(Message::Text("early".into()))
        );
        assert_eq!(
            within(client.recv()).await,
            Some(Message::Text("late".into()))
        );
    }

    #[tokio::test]
    async fn protocol_error_sends_close_and_ends() {
        let (a, mut raw) = duplex(64 * 1024);
        let mut client = client_on(a, config());
        // A reserved opcode.
        raw.write_all(b"\x83\x00").await.unwrap();
        assert_eq!(within(client.recv()).await, None);
        match client.close_reason() {
            Some(CloseReason::ProtocolError(error)) => {
                assert_eq!(error.kind(), ProtocolErrorKind::ReservedOpcode)
            }
            other => panic!("unexpected {other:?}"),
        }
        let (opcode, payload) = within(read_client_frame(&mut raw)).await;
        assert_eq!((opcode, &payload[..]), (0x8, &b"\x03\xea"[..])); // close 1002
        assert_eq!(within(read_to_eof(&mut raw)).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_ping_timeout() {
        let (a, mut raw) = duplex(64 * 1024);
        let mut config = config();
        config.heartbeat = Some(Duration::from_secs(1));
        let start = tokio::time::Instant::now();
        let client = client_on(a, config);
        // Nobody answers: a ping after 1 s, the end half a second later.
        assert_eq!(within(client.closed()).await, CloseReason::PingTimeout);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_millis(1600),
            "{elapsed:?}"
        );
        assert_eq!(client.close_reason(), Some(CloseReason::PingTimeout));
        // The heartbeat ping went out; then the write side was shut down.
        let (opcode, payload) = within(read_client_frame(&mut raw)).await;
        assert_eq!((opcode, payload.len()), (0x9, 8));
        assert_eq!(within(read_to_eof(&mut raw)).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_keeps_a_live_connection() {
        let (a, b) = duplex(64 * 1024);
        let mut config = config();
        config.heartbeat = Some(Duration::from_secs(1));
        let client = client_on(a, config);
        let mut server = server_on(b, self::config());
        // The server's pump answers the pings, even though its application reads late.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(client.close_reason(), None);
        let mut pings = 0;
        while let Ok(Some(message)) = timeout(Duration::from_millis(1), server.recv()).await {
            assert!(matches!(message, Message::Ping(_)));
            pings += 1;
        }
        assert!((5..=10).contains(&pings), "{pings}");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_while_the_application_is_behind() {
        let (a, mut raw) = duplex(64 * 1024);
        let mut config = config();
        config.heartbeat = Some(Duration::from_secs(1));
        let mut client = client_on(a, config);
        for i in 0..40u8 {
            raw.write_all(&[0x82, 0x01, i]).await.unwrap();
        }
        // The application reads nothing; the peer goes silent: the connection still ends.
        assert_eq!(within(client.closed()).await, CloseReason::PingTimeout);
        let mut received = Vec::new();
        while let Some(message) = within(client.recv()).await {
            received.push(message);
        }
        // In order, then the end: what did not fit was never decoded.
        let message_buffer = WsConfig::default().message_buffer;
        assert!(received.len() > message_buffer && received.len() < 40);
        for (i, message) in received.iter().enumerate() {
            assert_eq!(message, &Message::Binary(Bytes::from(vec![i as u8])));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn message_buffer_from_the_config() {
        for (message_buffer, held) in [(0, 1), (3, 3)] {
            let (a, mut raw) = duplex(64 * 1024);
            let mut config = config();
            config.heartbeat = Some(Duration::from_secs(1));
            config.message_buffer = message_buffer;
            let mut client = client_on(a, config);
            for i in 0..10u8 {
                raw.write_all(&[0x82, 0x01, i]).await.unwrap();
            }
            assert_eq!(within(client.closed()).await, CloseReason::PingTimeout);
            let mut received = Vec::new();
            while let Some(message) = within(client.recv()).await {
                received.push(message);
            }
            // The channel held `held` (0 counts as 1), one more waited in the pump; the rest
            // was never decoded.
            assert_eq!(received.len(), held + 1, "message_buffer {message_buffer}");
            for (i, message) in received.iter().enumerate() {
                assert_eq!(message, &Message::Binary(Bytes::from(vec![i as u8])));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn write_buffer_from_the_config() {
        let (a, mut raw) = duplex(1024);
        let mut config = config();
        config.write_buffer = 4096;
        let client = client_on(a, config);
        // The peer reads nothing: sends are taken until 4 KiB wait (a frame is 1008 bytes,
        // and the pipe holds 1 KiB more).
        let payload = Bytes::from(vec![7u8; 1000]);
        let mut accepted = 0;
        loop {
            let send = client.send_binary(payload.clone());
            if timeout(Duration::from_millis(100), send).await.is_err() {
                break;
            }
            accepted += 1;
            assert!(accepted <= 8, "sends never wait");
        }
        assert!(accepted >= 4, "{accepted}");
        // Once the peer reads, sending goes on; everything arrives in order.
        let reader = tokio::spawn(async move {
            let mut frames = 0;
            loop {
                let (opcode, payload) = read_client_frame(&mut raw).await;
                if opcode == 0x1 {
                    assert_eq!(payload, b"after");
                    return frames;
                }
                assert_eq!((opcode, payload.len()), (0x2, 1000));
                frames += 1;
            }
        });
        within(client.send_text("after")).await.unwrap();
        let frames = within(reader).await.unwrap();
        // The send that timed out may or may not have been taken.
        assert!(
            frames == accepted || frames == accepted + 1,
            "{frames} {accepted}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sink_waits_while_the_command_queue_is_full() {
        let (a, mut raw) = duplex(1024);
        let mut config = config();
        config.write_buffer = 4096;
        let (mut tx, _rx) = client_on(a, config).split();
        // The peer reads nothing: the pump takes messages until 4 KiB wait, then the command
        // queue takes COMMAND_CAPACITY more, and the sink waits.
        let payload = Message::Binary(Bytes::from(vec![7u8; 1000]));
        let mut fed = 0;
        while let Ok(result) = timeout(Duration::from_millis(100), tx.feed(payload.clone())).await {
            result.unwrap();
            fed += 1;
            assert!(fed <= COMMAND_CAPACITY + 8, "the sink never waits");
        }
        assert!(fed >= COMMAND_CAPACITY + 4, "{fed}");
        assert_eq!(
            Pin::new(&mut tx).start_send(payload.clone()),
            Err(WsError::SinkNotReady)
        );
        // Once the peer reads, everything goes out in order.
        let reader = tokio::spawn(async move {
            let mut frames = 0;
            loop {
                let (opcode, payload) = read_client_frame(&mut raw).await;
                if opcode == 0x1 {
                    assert_eq!(payload, b"after");
                    return frames;
                }
                assert_eq!((opcode, payload.len()), (0x2, 1000));
                frames += 1;
            }
        });
        within(SinkExt::send(&mut tx, Message::from("after")))
            .await
            .unwrap();
        assert_eq!(within(reader).await.unwrap(), fed);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_sends_do_not_pile_up() {
        let (a, mut raw) = duplex(1024);
        let mut config = config();
        config.write_buffer = 4096;
        let client = client_on(a, config);
        // The peer reads nothing: once the pump stops taking commands, every send times out.
        // Those that got a place in the command queue stay queued; the others leave nothing.
        let payload = Bytes::from(vec![7u8; 1000]);
        let mut answered = 0;
        for _ in 0..100 {
            let send = client.send_binary(payload.clone());
            if timeout(Duration::from_millis(10), send).await.is_ok() {
                answered += 1;
            }
        }
        assert!(answered < 10, "{answered}");
        let reader = tokio::spawn(async move {
            let mut frames = 0;
            loop {
                let (opcode, payload) = read_client_frame(&mut raw).await;
                if opcode == 0x1 {
                    return frames;
                }
                assert_eq!((opcode, payload.len()), (0x2, 1000));
                frames += 1;
            }
        });
        within(client.send_text("after")).await.unwrap();
        assert_eq!(within(reader).await.unwrap(), answered + COMMAND_CAPACITY);
    }

    #[tokio::test(start_paused = true)]
    async fn close_linger_from_the_config() {
        let (a, mut raw) = duplex(1024);
        let mut config = config();
        config.close_linger = Duration::from_secs(2);
        let client = client_on(a, config);
        client.send_binary(vec![1u8; 100_000]).await.unwrap();
        // The peer closes but reads nothing: the close answer cannot be written. The end
        // waits the linger, then drops the transport anyway.
        raw.write_all(b"\x88\x02\x03\xe8").await.unwrap();
        let start = tokio::time::Instant::now();
        assert_eq!(
            within(client.closed()).await,
            CloseReason::ByPeer {
                code: Some(1000),
                reason: String::new()
            }
        );
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2100),
            "{elapsed:?}"
        );
        // Dropped: the peer reads what fit in the pipe, then EOF.
        assert!(within(read_to_eof(&mut raw)).await <= 1024);
    }

    #[tokio::test]
    async fn slow_application_gets_everything_in_order() {
        let (mut client, server) = pair();
        let count = 500;
        let sender = server.sender();
        let producer = tokio::spawn(async move {
            for i in 0..count {
                sender.send_text(format!("{i}")).await.unwrap();
            }
        });
        // Let the pumps fill every buffer while the client reads nothing; it can still send.
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.send_text("meanwhile").await.unwrap();
        let mut server = server;
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("meanwhile".into()))
        );
        for i in 0..count {
            assert_eq!(
                within(client.recv()).await,
                Some(Message::Text(format!("{i}")))
            );
        }
        within(producer).await.unwrap();
    }

    #[tokio::test]
    async fn dropping_every_handle_closes() {
        let (a, b) = duplex(64 * 1024);
        let client = client_on(a, config());
        let mut server = server_on(b, config());
        let (tx, rx) = client.split();
        let tx2 = tx.clone();
        drop(tx);
        drop(rx);
        // A sender is left: still open.
        tx2.send_text("from the last sender").await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("from the last sender".into()))
        );
        drop(tx2);
        assert_eq!(within(server.recv()).await, None);
        assert_eq!(
            server.close_reason(),
            Some(CloseReason::ByPeer {
                code: Some(1000),
                reason: String::new()
            })
        );
    }

    #[tokio::test]
    async fn dropped_handles_pump_exits() {
        let (a, mut raw) = duplex(64 * 1024);
        let client = client_on(a, config());
        drop(client);
        let (opcode, payload) = within(read_client_frame(&mut raw)).await;
        assert_eq!((opcode, &payload[..]), (0x8, &b"\x03\xe8"[..])); // close 1000
        raw.write_all(b"\x88\x02\x03\xe8").await.unwrap();
        // The pump shut down its write side and dropped the socket.
        assert_eq!(within(read_to_eof(&mut raw)).await, 0);
        assert!(raw.write_all(b"\x81\x00").await.is_err());
    }

    #[tokio::test]
    async fn receiver_dropped_keeps_the_connection_going() {
        let (client, mut server) = pair();
        let (tx, rx) = client.split();
        drop(rx);
        for i in 0..100 {
            server.send_text(format!("ignored {i}")).await.unwrap();
        }
        server.send_ping(&b"p"[..]).await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Pong(Bytes::from_static(b"p")))
        );
        tx.send_text("still sending").await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("still sending".into()))
        );
    }

    #[tokio::test]
    async fn server_shutdown_goes_away() {
        let (mut client, server) = pair();
        let shutdown_handle = server.sender();
        within(shutdown_handle.close_going_away()).await.unwrap();
        assert_eq!(within(client.recv()).await, None);
        assert_eq!(
            client.close_reason(),
            Some(CloseReason::ByPeer {
                code: Some(1001),
                reason: "going away".into()
            })
        );
        let reason = within(shutdown_handle.closed()).await;
        assert_eq!(reason.code(), 1001);
        assert!(matches!(reason, CloseReason::ByUs { .. }));
        drop(server);
    }

    #[tokio::test]
    async fn weak_sender_does_not_keep_the_connection() {
        let (client, mut server) = pair();
        let weak = client.sender().downgrade();
        let sender = weak.upgrade().expect("alive");
        sender.send_text("via upgrade").await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("via upgrade".into()))
        );
        drop(sender);
        drop(client);
        assert!(weak.upgrade().is_none());
        assert_eq!(within(server.recv()).await, None);
        assert_eq!(
            within(weak.closed()).await,
            CloseReason::ByUs {
                code: Some(1000),
                reason: String::new()
            }
        );
        assert!(matches!(
            weak.close_going_away().await,
            Err(WsError::Closed(Some(_)))
        ));

        // Server shutdown through weak handles.
        let (mut client, server) = pair();
        let weak = server.sender().downgrade();
        within(weak.close_going_away()).await.unwrap();
        assert_eq!(within(client.recv()).await, None);
        assert_eq!(client.close_reason().map(|r| r.code()), Some(1001));
        assert_eq!(within(weak.closed()).await.code(), 1001);
        drop(server);
    }

    /// Counts the bytes written through it.
    struct Counting<T> {
        inner: T,
        written: Arc<AtomicUsize>,
    }

    impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
        }
    }

    impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
            this.written.fetch_add(n, Ordering::Relaxed);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn deflate_through_the_handshake() {
        let mut config = WsConfig::default();
        config.deflate = Some(DeflateConfig::default());
        let uri = "ws://example.test/chat".parse().unwrap();
        let (handshake, request) = ClientHandshake::new(&uri, [7; 16], &[], &config).unwrap();
        let (response, server_negotiated) = accept(&request, &[], &config).unwrap();
        let client_negotiated = handshake.validate(&response).unwrap();
        assert!(client_negotiated.deflate.is_some());
        assert!(server_negotiated.deflate.is_some());

        let (a, b) = duplex(64 * 1024);
        let client_wrote = Arc::new(AtomicUsize::new(0));
        let server_wrote = Arc::new(AtomicUsize::new(0));
        let a = Counting {
            inner: a,
            written: client_wrote.clone(),
        };
        let b = Counting {
            inner: b,
            written: server_wrote.clone(),
        };
        let now = core_now();
        let client =
            CoreWebSocket::client(config.clone(), client_negotiated.deflate, now, mask_keys());
        let server = CoreWebSocket::server(config, server_negotiated.deflate, now);
        let mut client = spawn(a, client, Bytes::new());
        let mut server = spawn(b, server, Bytes::new());

        let text = "all work and no play makes jack a dull boy. ".repeat(5_000);
        client.send_text(text.clone()).await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text(text.clone()))
        );
        let data = Bytes::from(vec![0x5A; 300_000]);
        server.send_binary(data.clone()).await.unwrap();
        assert_eq!(within(client.recv()).await, Some(Message::Binary(data)));
        // Small messages skip compression but still pass.
        client.send_text("tiny").await.unwrap();
        assert_eq!(
            within(server.recv()).await,
            Some(Message::Text("tiny".into()))
        );
        let client_bytes = client_wrote.load(Ordering::Relaxed);
        let server_bytes = server_wrote.load(Ordering::Relaxed);
        assert!(
            client_bytes < text.len() / 20,
            "client wrote {client_bytes}"
        );
        assert!(server_bytes < 300_000 / 20, "server wrote {server_bytes}");

        client.close(1000, "done").await.unwrap();
        assert_eq!(within(server.recv()).await, None);
        assert_eq!(within(client.recv()).await, None);
        assert!(client.close_reason().is_some_and(|r| r.is_clean()));
    }
}
