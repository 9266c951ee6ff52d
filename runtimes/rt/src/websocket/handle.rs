//! The application's handles of a connection: [`WebSocket`], its halves [`WsSender`] and
//! [`WsReceiver`], and the [`WeakWsSender`].

use super::outbox::{Handles, Op, Refusal};
use super::{closed_error, wait_closed, Message, Status, WsError};
use crate::queue::QueueReceiver;
use crate::sync::WatchReceiver;
use bytes::Bytes;
use event_listener::EventListener;
use futures_core::Stream;
use futures_sink::Sink;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use tether_core::ws::{code, CloseReason};

/// The application's side of a WebSocket connection driven by [`spawn`](super::spawn).
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
    pub(super) fn new(
        handles: Arc<Handles>,
        messages: QueueReceiver<Message>,
        status: WatchReceiver<Status>,
    ) -> WebSocket {
        WebSocket {
            sender: WsSender::new(handles.clone(), status.clone()),
            receiver: WsReceiver {
                messages,
                status,
                _keep_open: handles,
            },
        }
    }

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
/// A send returns once the connection has queued the message; it is then written in order
/// in the background. A send waits only while the connection's write buffer is full (the
/// peer does not read); dropping a waiting send leaves nothing queued.
///
/// As a [`Sink`]: `start_send` queues the message (or reports the refusal), so `poll_flush`
/// has nothing to wait for; `poll_close` starts the close handshake with 1000 (succeeding if
/// the connection is already closing or over).
pub struct WsSender {
    handles: Arc<Handles>,
    status: WatchReceiver<Status>,
    /// State of the [`Sink`] implementation. In a mutex only so that the sender is `Sync`;
    /// the sink methods reach it through `get_mut`, without locking.
    sink: Mutex<SinkState>,
}

/// The [`Sink`] side of a [`WsSender`].
#[derive(Default)]
struct SinkState {
    /// `poll_ready` found room for the next `start_send`.
    ready: bool,
    /// Waiting for room.
    waiting: Option<EventListener>,
    /// `poll_close` has completed.
    closed: bool,
}

impl Clone for WsSender {
    fn clone(&self) -> WsSender {
        WsSender::new(self.handles.clone(), self.status.clone())
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
    fn new(handles: Arc<Handles>, status: WatchReceiver<Status>) -> WsSender {
        WsSender {
            handles,
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
        // A close does not wait for room: it is small, and it is how a stuck peer is left.
        self.push(Op::Close(code, reason.to_owned()))
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
            handles: Arc::downgrade(&self.handles),
            status: self.status.clone(),
        }
    }

    /// Waits for room, then queues `op`.
    async fn request(&self, op: Op) -> Result<(), WsError> {
        let outbox = self.handles.outbox();
        let mut waiting = None;
        poll_fn(|cx| outbox.poll_room(&mut waiting, cx))
            .await
            .map_err(|refusal| self.refused(refusal))?;
        self.push(op)
    }

    fn push(&self, op: Op) -> Result<(), WsError> {
        let outbox = self.handles.outbox();
        outbox.push(op).map_err(|refusal| self.refused(refusal))
    }

    fn refused(&self, refusal: Refusal) -> WsError {
        match refusal {
            Refusal::Closed => closed_error(&self.status),
            Refusal::Local(error) => WsError::Local(error),
        }
    }
}

impl Sink<Message> for WsSender {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        let state = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        let outbox = this.handles.outbox();
        if let Err(refusal) = ready!(outbox.poll_room(&mut state.waiting, cx)) {
            return Poll::Ready(Err(this.refused(refusal)));
        }
        state.ready = true;
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        let this = self.get_mut();
        let state = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !std::mem::take(&mut state.ready) && !this.handles.outbox().has_room() {
            return Err(WsError::SinkNotReady);
        }
        this.push(Op::from(item))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        // Every message is queued (or refused) by `start_send` already.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        let state = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !std::mem::replace(&mut state.closed, true) {
            // Closing or over already counts as closed; 1000 with no reason is always valid.
            let _ = this.push(Op::Close(code::NORMAL, String::new()));
        }
        Poll::Ready(Ok(()))
    }
}

/// A [`WsSender`] that does not keep the connection alive: when the application drops every
/// other handle, the connection closes (with 1000) as if this one did not exist.
///
/// Made by [`WsSender::downgrade`]; a server can keep one per connection to close them all
/// with 1001 at shutdown and wait for them to end.
#[derive(Clone)]
pub struct WeakWsSender {
    handles: Weak<Handles>,
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
        let handles = self.handles.upgrade()?;
        Some(WsSender::new(handles, self.status.clone()))
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
    /// Counts as a strong handle, so that the pump closes the connection only when every
    /// handle, senders and receiver, is gone. Never used to send.
    _keep_open: Arc<Handles>,
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
