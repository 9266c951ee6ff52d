//! How sends reach the pump: the *outbox*, shared by the application's handles and the pump.
//!
//! A send is checked first (what the protocol refuses whatever the connection's state:
//! oversized control payloads, close codes that may not be sent), then queued under a short
//! lock, and the pump is woken. The pump takes everything queued in one go and hands it to
//! the core in order. A send thus costs a lock and at most one wake-up: no allocation, no
//! answer to wait for, and every error is known before it returns.
//!
//! The outbox stops taking messages (sends fail with `Closed`) once a close is queued, once
//! the pump sees that the core's close handshake has started (the peer's close), and when the
//! pump ends or is dropped. A message queued just before the peer's close arrives is
//! accepted and then dropped by the core, exactly as if it had been written and the peer had
//! stopped reading: WebSocket never promised delivery.
//!
//! Backpressure is counted in bytes: a send waits while the bytes queued here and those the
//! pump has yet to write (which it publishes after every turn) reach the connection's
//! `write_buffer`.

use bytes::Bytes;
use event_listener::{Event, EventListener};
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use tether_core::ws::{is_valid_on_wire, LocalError};

use super::conn::DirectSend;
use super::Message;

/// Largest ping or pong payload (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest close reason: a control payload less the two bytes of the code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// What the application asks of the connection.
#[derive(Debug)]
pub(super) enum Op {
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

impl Op {
    /// Payload bytes, what backpressure counts.
    fn len(&self) -> usize {
        match self {
            Op::Text(text) => text.len(),
            Op::Binary(data) | Op::Ping(data) | Op::Pong(data) => data.len(),
            Op::Close(_, reason) => reason.len() + 2,
        }
    }

    /// What the core would refuse in any state, checked before queuing.
    fn check(&self) -> Result<(), LocalError> {
        match self {
            Op::Ping(payload) | Op::Pong(payload) if payload.len() > MAX_CONTROL_PAYLOAD => {
                Err(LocalError::ControlPayloadTooLong)
            }
            Op::Close(code, _) if !is_valid_on_wire(*code) => {
                Err(LocalError::InvalidCloseCode(*code))
            }
            Op::Close(_, reason) if reason.len() > MAX_CLOSE_REASON => {
                Err(LocalError::ControlPayloadTooLong)
            }
            _ => Ok(()),
        }
    }
}

/// Why the outbox refused a send.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The connection is closing or over.
    Closed,
    /// The protocol does not allow it.
    Local(LocalError),
}

/// The queue of sends (see the module docs).
pub(super) struct Outbox {
    queue: Mutex<Queue>,
    /// Mirrors `Queue::open` for checks without the lock.
    open: AtomicBool,
    /// Bytes queued, counted until the pump has handed them to its write queue and
    /// published [`unwritten`](Outbox::unwritten).
    queued: AtomicUsize,
    /// Bytes the pump has yet to write, as of its last turn.
    unwritten: AtomicUsize,
    /// Sends wait while `queued + unwritten` reaches this.
    write_buffer: usize,
    /// Notified when there is room again, and when the outbox closes.
    room: Event,
    /// A sender found no room since the last notification: the pump notifies `room` only
    /// then, not on every turn.
    full_seen: AtomicBool,
    /// The pump's waker, and whether it has something to look at.
    pump: AtomicWaker,
    pump_woken: AtomicBool,
    /// Every strong handle is gone: the pump closes the connection with 1000.
    handles_gone: AtomicBool,
    /// The way around the pump (`conn`), set once the pump exists.
    direct: OnceLock<Weak<dyn DirectSend>>,
}

struct Queue {
    ops: VecDeque<Op>,
    /// Bytes of `ops`.
    bytes: usize,
    open: bool,
}

impl Outbox {
    pub(super) fn new(write_buffer: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue {
                ops: VecDeque::new(),
                bytes: 0,
                open: true,
            }),
            open: AtomicBool::new(true),
            queued: AtomicUsize::new(0),
            unwritten: AtomicUsize::new(0),
            write_buffer,
            room: Event::new(),
            full_seen: AtomicBool::new(false),
            pump: AtomicWaker::new(),
            pump_woken: AtomicBool::new(false),
            handles_gone: AtomicBool::new(false),
            direct: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; recover anyway rather than spread a panic.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ---- the application's side ----

    /// Whether a send would be taken without waiting.
    pub(super) fn has_room(&self) -> bool {
        let backlog = self.queued.load(Ordering::SeqCst) + self.unwritten.load(Ordering::SeqCst);
        backlog < self.write_buffer
    }

    /// Waits until there is room for a send; `Err` once the outbox is closed. `listener`
    /// keeps the caller's place between polls (drop it to stop waiting).
    pub(super) fn poll_room(
        &self,
        listener: &mut Option<EventListener>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Refusal>> {
        loop {
            if !self.open.load(Ordering::Acquire) {
                *listener = None;
                return Poll::Ready(Err(Refusal::Closed));
            }
            if self.has_room() {
                *listener = None;
                return Poll::Ready(Ok(()));
            }
            match listener {
                // Listen, say so, then check again: room the pump makes in between is
                // either seen here or notified (both sides use sequentially consistent
                // order for `unwritten`/`queued` and `full_seen`).
                None => {
                    *listener = Some(self.room.listen());
                    self.full_seen.store(true, Ordering::SeqCst);
                }
                Some(waiting) => {
                    ready!(Pin::new(waiting).poll(cx));
                    *listener = None;
                }
            }
        }
    }

    /// Lets sends skip the pump when it is idle (see `conn`).
    pub(super) fn set_direct(&self, direct: Weak<dyn DirectSend>) {
        let _ = self.direct.set(direct);
    }

    /// Sends `op` (whether or not there is room: the caller waited for it, or it is a
    /// close): straight to the connection when the pump is idle, else queued for the pump.
    pub(super) fn push(&self, op: Op) -> Result<(), Refusal> {
        op.check().map_err(Refusal::Local)?;
        if !self.open.load(Ordering::Acquire) {
            return Err(Refusal::Closed);
        }
        // A close always goes through the queue: it closes the outbox and starts the pump's
        // close timer.
        let op = match self.direct.get().and_then(Weak::upgrade) {
            Some(direct) if !matches!(op, Op::Close(..)) => match direct.send_now(op) {
                Ok(()) => return Ok(()),
                Err(op) => op,
            },
            _ => op,
        };
        let len = op.len();
        {
            let mut queue = self.lock();
            if !queue.open {
                return Err(Refusal::Closed);
            }
            if matches!(op, Op::Close(..)) {
                queue.open = false;
                self.open.store(false, Ordering::Release);
            }
            queue.ops.push_back(op);
            queue.bytes += len;
            self.queued.fetch_add(len, Ordering::SeqCst);
        }
        self.wake_pump();
        Ok(())
    }

    /// The last strong handle is gone.
    pub(super) fn release_handles(&self) {
        self.handles_gone.store(true, Ordering::Release);
        self.wake_pump();
    }

    /// Whether sends wait in the queue.
    pub(super) fn has_queued(&self) -> bool {
        !self.lock().ops.is_empty()
    }

    pub(super) fn wake_pump(&self) {
        // A pump already woken and not yet looking will see this too.
        if !self.pump_woken.swap(true, Ordering::AcqRel) {
            self.pump.wake();
        }
    }

    // ---- the pump's side ----

    /// Ready when a send or the last handle's drop woke the pump since it last looked.
    pub(super) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.pump.register(cx.waker());
        if self.pump_woken.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Moves everything queued into `batch` (empty), oldest first; returns the bytes taken,
    /// for [`settle`](Outbox::settle) once they are in the write queue.
    pub(super) fn take(&self, batch: &mut VecDeque<Op>) -> usize {
        let mut queue = self.lock();
        std::mem::swap(&mut queue.ops, batch);
        std::mem::take(&mut queue.bytes)
    }

    /// After a turn: `unwritten` bytes wait to be written, and the `taken` bytes of the last
    /// [`take`](Outbox::take) are among them (or written). Wakes senders if there is room.
    pub(super) fn settle(&self, taken: usize, unwritten: usize) {
        self.unwritten.store(unwritten, Ordering::SeqCst);
        if taken > 0 {
            self.queued.fetch_sub(taken, Ordering::SeqCst);
        }
        if self.has_room() && self.full_seen.swap(false, Ordering::SeqCst) {
            self.room.notify(usize::MAX);
        }
    }

    /// Whether every strong handle is gone.
    pub(super) fn handles_gone(&self) -> bool {
        self.handles_gone.load(Ordering::Acquire)
    }

    /// Takes no more sends (the close handshake has started, or the pump ends); wakes every
    /// sender waiting for room. Returns what was still queued.
    pub(super) fn close(&self) -> VecDeque<Op> {
        let ops = {
            let mut queue = self.lock();
            queue.open = false;
            self.open.store(false, Ordering::Release);
            queue.bytes = 0;
            std::mem::take(&mut queue.ops)
        };
        self.room.notify(usize::MAX);
        ops
    }
}

/// The strong handles' share of a connection: the pump closes the connection (with 1000)
/// when the last one is dropped.
pub(super) struct Handles {
    outbox: Arc<Outbox>,
}

impl Handles {
    pub(super) fn new(outbox: Arc<Outbox>) -> Handles {
        Handles { outbox }
    }

    pub(super) fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        self.outbox.release_handles();
    }
}
