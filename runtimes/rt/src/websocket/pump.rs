//! The pump: the task that owns the core connection and the transport.

use super::conn::{Conn, DirectSend, Shared};
use super::outbox::{Op, Outbox};
use super::{Message, Status};
use crate::io::{Read, Write};
use crate::queue::{QueueSender, TrySendError};
use crate::runtime::MaybeSend;
use crate::runtime::{sleep_until, Rt, Timer};
use crate::sync::WatchSender;
use crate::transport::{Input, Step, Transport};
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tether_core::time::Instant;
use tether_core::ws::{code, CloseReason, WebSocket as CoreWebSocket, WsEvent};

pub(super) struct Pump<IO> {
    rt: Rt,
    /// The core connection and the socket, shared with senders that skip the pump.
    shared: Arc<Shared<IO>>,
    outbox: Arc<Outbox>,
    /// The sends of this turn, taken from the outbox (kept to reuse its allocation).
    batch: VecDeque<Op>,
    /// Bytes of the sends taken and not yet settled with the outbox.
    taken: usize,
    /// False once every handle is gone (and the connection told to close).
    handles_open: bool,
    /// False once the outbox is closed to new sends.
    outbox_open: bool,
    /// `None` once the application dropped the receiver: messages are discarded.
    messages: Option<QueueSender<Message>>,
    /// A message waiting for room in the message queue; no more events are decoded (and
    /// nothing is read) until it is delivered.
    pending: Option<Message>,
    status: WatchSender<Status>,
    /// How long the final flush and shutdown may take (the config's `close_linger`).
    close_linger: Duration,
    /// Messages (text and binary) received, for the session's end event.
    received: u64,
    _close_on_drop: CloseOnDrop,
}

/// What the pump waits for in one turn of its loop.
#[derive(Clone, Copy)]
struct Wants {
    /// Reading and writing (reading only if `read`).
    step: bool,
    read: bool,
    /// Room for the pending message.
    deliver: bool,
    /// A send, or the last handle's drop.
    outbox: bool,
    /// The core's deadline.
    timeout: bool,
}

/// What came of one wait of the pump: every source that was ready, handled in this order.
#[derive(Default)]
struct Woken {
    step: Option<Step>,
    /// The pending message was handed over (`true`), or the receiver is gone (`false`).
    delivered: Option<bool>,
    outbox: bool,
    timeout: bool,
}

impl Woken {
    fn is_empty(&self) -> bool {
        self.step.is_none() && self.delivered.is_none() && !self.outbox && !self.timeout
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

impl<IO: Read + Write + Unpin + MaybeSend + 'static> Pump<IO> {
    pub(super) fn new(
        rt: Rt,
        ws: CoreWebSocket,
        transport: Transport<IO>,
        outbox: Arc<Outbox>,
        messages: QueueSender<Message>,
        status: WatchSender<Status>,
        close_linger: Duration,
    ) -> Pump<IO> {
        let shared = Arc::new(Shared::new(ws, transport, outbox.clone(), rt.clone()));
        outbox.set_direct(Arc::downgrade(&shared) as Weak<dyn DirectSend>);
        Pump {
            rt,
            shared,
            _close_on_drop: CloseOnDrop(outbox.clone()),
            outbox,
            batch: VecDeque::new(),
            taken: 0,
            handles_open: true,
            outbox_open: true,
            messages: Some(messages),
            pending: None,
            status,
            close_linger,
            received: 0,
        }
    }

    pub(super) async fn run(mut self, trailing: Bytes) {
        let rt = self.rt.clone();
        let shared = self.shared.clone();
        shared.lock().ws.handle_input(rt.now(), &trailing);
        let mut timer = Timer::default();
        let mut now = rt.now();
        let reason = loop {
            let (wants, deadline) = {
                let mut conn = shared.lock();
                if let Some(reason) = self.step(&mut conn, now) {
                    break reason;
                }
                let read = self.pending.is_none() && conn.ws.wants_input();
                let deadline = conn.ws.poll_timeout();
                let wants = Wants {
                    step: read || conn.transport.has_output(),
                    read,
                    deliver: self.pending.is_some(),
                    outbox: self.handles_open || self.outbox_open,
                    timeout: deadline.is_some(),
                };
                if !(wants.step || wants.deliver || wants.outbox || wants.timeout) {
                    // Unreachable (an open connection always waits for input or a
                    // deadline); end rather than spin.
                    conn.ws.handle_eof();
                    continue;
                }
                (wants, deadline)
            };
            let woken = self.wait(wants, &mut timer, deadline).await;
            now = rt.now();
            let mut conn = shared.lock();
            let Conn { ws, transport, .. } = &mut *conn;
            if let Some(step) = woken.step {
                match step {
                    Step::Input(Input::Data(n)) => ws.handle_input(now, transport.received(n)),
                    Step::Input(Input::Eof | Input::Failed(_)) => ws.handle_eof(),
                    // Absorbed by `wait`, and a failed write is checked just below.
                    Step::Flushed | Step::WriteFailed => {}
                }
            }
            if transport.write_failed() {
                // The transport is dead (our write or a sender's); it discards output from
                // now on.
                ws.handle_eof();
            }
            if woken.delivered == Some(false) {
                // The receiver is gone: discard from now on.
                self.messages = None;
                self.pending = None;
            }
            if woken.outbox {
                self.take_sends(&mut conn, now);
            }
            if woken.timeout || deadline.is_some_and(|deadline| deadline <= now) {
                conn.ws.handle_timeout(now);
            }
        };
        self.finish(reason).await;
    }

    /// Waits until at least one of the sources in `wants` is ready, and takes what each
    /// ready one has. Every source is polled on every wake-up (in a fixed order), so a busy
    /// one cannot starve the others.
    async fn wait(&mut self, wants: Wants, timer: &mut Timer, deadline: Option<Instant>) -> Woken {
        let Pump {
            rt,
            shared,
            outbox,
            messages,
            pending,
            ..
        } = self;
        // Cancel-safe: dropped unfinished, the sleep stays armed in `timer`.
        let mut sleep = pin!(timer.sleep_until(&**rt, deadline));
        poll_fn(|cx| {
            let mut woken = Woken::default();
            if wants.step {
                let mut conn = shared.lock();
                let transport = &mut conn.transport;
                loop {
                    match transport.poll_step(cx, wants.read) {
                        Poll::Ready(Step::Flushed) => {
                            // Everything is written: tell waiting senders, then go on
                            // waiting (for input, if reading) without a turn of the loop.
                            outbox.settle(0, transport.queued());
                            if !wants.read {
                                break;
                            }
                        }
                        Poll::Ready(step) => {
                            woken.step = Some(step);
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            if wants.deliver {
                if let Poll::Ready(delivered) = poll_deliver(messages, pending, cx) {
                    woken.delivered = Some(delivered);
                }
            }
            if wants.outbox && outbox.poll_woken(cx).is_ready() {
                woken.outbox = true;
            }
            if !woken.is_empty() {
                // The deadline is checked against the clock after the wait; the sleep only
                // has to wake an idle pump. Not polling it on busy turns saves the timer's
                // bookkeeping on every message.
                return Poll::Ready(woken);
            }
            if wants.timeout && sleep.as_mut().poll(cx).is_ready() {
                woken.timeout = true;
                return Poll::Ready(woken);
            }
            Poll::Pending
        })
        .await
    }

    /// Delivers events, queues output and tells the outbox where things stand; returns the
    /// final reason when the connection is over.
    fn step(&mut self, conn: &mut Conn<IO>, now: Instant) -> Option<CloseReason> {
        if let Some(reason) = self.deliver_events(&mut conn.ws) {
            return Some(reason);
        }
        conn.collect_transmits(now);
        if self.outbox_open && !conn.ws.is_open() {
            // The close handshake has started: sends from now on would be refused.
            self.outbox_open = false;
            self.outbox.close();
        }
        self.outbox
            .settle(std::mem::take(&mut self.taken), conn.transport.queued());
        if self.pending.is_some() && conn.ws.is_closed() {
            // The core ended (a timeout) while the application is behind: the only event
            // left is the final one, and the end must not wait for the application.
            while let Some(event) = conn.ws.poll_event() {
                if let WsEvent::Closed(reason) = event {
                    return Some(reason);
                }
            }
        }
        None
    }

    /// Hands events to the application until one has to wait for room.
    fn deliver_events(&mut self, ws: &mut CoreWebSocket) -> Option<CloseReason> {
        while self.pending.is_none() {
            let message = match ws.poll_event()? {
                WsEvent::Closed(reason) => return Some(reason),
                WsEvent::Text(text) => {
                    self.received += 1;
                    Message::Text(text)
                }
                WsEvent::Binary(data) => {
                    self.received += 1;
                    Message::Binary(data)
                }
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

    /// Hands the queued sends to the core, in order; closes with 1000 once every handle is
    /// gone.
    fn take_sends(&mut self, conn: &mut Conn<IO>, now: Instant) {
        self.taken += self.outbox.take(&mut self.batch);
        for op in self.batch.drain(..) {
            conn.execute(op, now);
        }
        if self.handles_open && self.outbox.handles_gone() {
            // Every handle is gone: close (if not closing already) and finish.
            self.handles_open = false;
            let _ = conn.ws.close(now, Some(code::NORMAL), "");
        }
    }

    /// After the final event: refuse further sends, flush and shut down the transport,
    /// report the end, deliver a message still waiting, and let the handles see the end.
    async fn finish(mut self, reason: CloseReason) {
        self.status.send_modify(|s| s.reason = Some(reason.clone()));
        // Sends still queued come too late: the connection is over.
        drop(self.outbox.close());
        let write_failed = {
            let mut conn = self.shared.lock();
            conn.collect_transmits(self.rt.now());
            conn.transport.write_failed()
        };
        if !write_failed {
            // After an abnormal end the peer is unresponsive or gone: write nothing more.
            let abnormal = matches!(
                reason,
                CloseReason::PingTimeout | CloseReason::CloseTimeout | CloseReason::TransportClosed
            );
            if abnormal {
                self.shared.lock().transport.discard_output();
            }
            let mut linger = pin!(sleep_until(
                &*self.rt,
                Some(self.rt.now() + self.close_linger)
            ));
            let shared = &self.shared;
            poll_fn(|cx| {
                let shut = shared.lock().transport.poll_shutdown(cx).is_ready();
                if shut || linger.as_mut().poll(cx).is_ready() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
        let sent = self.shared.lock().sent;
        super::log::session_end(&reason, self.received, sent);
        // The socket goes with the last reference to the connection: this one (a sender that
        // got past the outbox just before it closed may hold another for the length of a
        // write).
        drop(self.shared);
        self.status.send_modify(|s| s.finished = true);
        if let (Some(message), Some(mut messages)) = (self.pending.take(), self.messages.take()) {
            // Waits for the application to make room, or to drop the receiver.
            if poll_fn(|cx| messages.poll_ready(cx)).await.is_ok() {
                let _ = messages.send(message);
            }
        }
    }
}

/// Closes the outbox when the pump is dropped, also unfinished (its runtime shut down), so
/// that senders waiting for room do not wait forever.
struct CloseOnDrop(Arc<Outbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        drop(self.0.close());
    }
}
