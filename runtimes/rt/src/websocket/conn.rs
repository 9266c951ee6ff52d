//! The core connection and its transport, behind one lock shared by the pump and the
//! senders.
//!
//! The pump is the only reader and runs the timers; it takes the lock for each step. A
//! send may skip the pump: when the lock is free, nothing waits in the outbox and nothing
//! waits to be written, the sender hands its message to the core and writes the frame itself,
//! without waiting (a would-block leaves the bytes queued and wakes the pump to finish). An
//! echo then costs one wake-up of the pump (for the input) instead of two. Otherwise the send
//! goes through the outbox as before, so the order of a task's sends is kept.
//!
//! Writing from the sender uses a no-op waker. That is safe because it happens only while the
//! pump is not waiting to write (nothing was queued), and whenever the write stops short the
//! pump is woken and writes with its own waker.

use super::outbox::{Op, Outbox};
use crate::io::{Read, Write};
use crate::runtime::{MaybeSend, MaybeSync, Rt};
use crate::transport::Transport;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};
use tether_core::time::Instant;
use tether_core::ws::WebSocket as CoreWebSocket;

/// The core connection and the socket.
pub(super) struct Conn<IO> {
    pub(super) ws: CoreWebSocket,
    pub(super) transport: Transport<IO>,
    /// Messages (text and binary) handed to the core, for the session's end event.
    pub(super) sent: u64,
}

impl<IO: Read + Write + Unpin> Conn<IO> {
    /// Hands a send to the core. A refusal can only be "closing" (everything else was
    /// checked when the send was made): the message raced with the peer's close and is
    /// dropped (see the outbox's docs).
    pub(super) fn execute(&mut self, op: Op, now: Instant) {
        let message = match op {
            Op::Text(text) => self.ws.send_text(&text),
            Op::Binary(data) => self.ws.send_binary(data),
            Op::Ping(payload) => return drop(self.ws.send_ping(payload)),
            Op::Pong(payload) => return drop(self.ws.send_pong(payload)),
            Op::Close(code, reason) => return drop(self.ws.close(now, Some(code), &reason)),
        };
        self.sent += u64::from(message.is_ok());
    }

    /// Queues what the core has to send.
    pub(super) fn collect_transmits(&mut self, now: Instant) {
        let Conn { ws, transport, .. } = self;
        transport.queue_from(|| ws.poll_transmit(now));
    }
}

/// What the pump and the senders share.
pub(super) struct Shared<IO> {
    conn: Mutex<Conn<IO>>,
    outbox: Arc<Outbox>,
    rt: Rt,
}

impl<IO> Shared<IO> {
    pub(super) fn new(
        ws: CoreWebSocket,
        transport: Transport<IO>,
        outbox: Arc<Outbox>,
        rt: Rt,
    ) -> Shared<IO> {
        Shared {
            conn: Mutex::new(Conn {
                ws,
                transport,
                sent: 0,
            }),
            outbox,
            rt,
        }
    }

    /// The connection, for the pump. Nothing panics while holding the lock; recover from a
    /// poisoned one anyway rather than spread a panic.
    pub(super) fn lock(&self) -> MutexGuard<'_, Conn<IO>> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A send that skips the pump when it can (see the module docs).
pub(super) trait DirectSend: MaybeSend + MaybeSync {
    /// Hands `op` to the core and writes it without waiting; gives it back when the pump
    /// has to take it (the connection is busy, or sends or bytes wait already).
    fn send_now(&self, op: Op) -> Result<(), Op>;
}

impl<IO: Read + Write + Unpin + MaybeSend> DirectSend for Shared<IO> {
    fn send_now(&self, op: Op) -> Result<(), Op> {
        let mut conn = match self.conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(op),
        };
        if conn.transport.has_output() || conn.transport.write_failed() || self.outbox.has_queued()
        {
            return Err(op);
        }
        let now = self.rt.now();
        conn.execute(op, now);
        conn.collect_transmits(now);
        let mut cx = Context::from_waker(Waker::noop());
        let done = matches!(conn.transport.poll_write(&mut cx), Poll::Ready(Ok(())));
        self.outbox.settle(0, conn.transport.queued());
        drop(conn);
        if !done {
            // Would block, or failed: the pump takes over (with its own waker).
            self.outbox.wake_pump();
        }
        Ok(())
    }
}
