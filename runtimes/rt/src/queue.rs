//! A bounded queue from one producer to one consumer, with no allocation per item: a
//! `VecDeque` behind a mutex and one waker per side. The WebSocket pump hands received
//! messages to the application through it (a general-purpose channel allocates a node per
//! message and spins on its lock-free queue, which showed in the echo benchmark).
//!
//! Runtime-free, like [`crate::sync`]: it works under any executor and on hosts without
//! threads.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// Waits for an item (or the end).
    receiver_waker: Option<Waker>,
    /// Waits for room (or the receiver's end).
    sender_waker: Option<Waker>,
    sender_alive: bool,
    receiver_alive: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps `waker` in `slot`, cloning only when it would wake another task.
fn store(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(stored) if stored.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Why [`QueueSender::try_send`] gave an item back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError<T> {
    /// The queue is full.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// The producing end. Dropping it ends the queue: the receiver gets what is queued, then
/// `None`.
pub(crate) struct QueueSender<T> {
    shared: Arc<Shared<T>>,
}

/// The consuming end. Dropping it discards what is queued and refuses further items.
pub(crate) struct QueueReceiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue holding at most `capacity` items (at least one).
pub(crate) fn bounded<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            receiver_waker: None,
            sender_waker: None,
            sender_alive: true,
            receiver_alive: true,
        }),
    });
    (
        QueueSender {
            shared: shared.clone(),
        },
        QueueReceiver { shared },
    )
}

impl<T> QueueSender<T> {
    /// `Ready(Ok)` when an item fits, `Ready(Err)` when the receiver is gone; otherwise
    /// waits for room.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut state = self.shared.lock();
        if !state.receiver_alive {
            return Poll::Ready(Err(()));
        }
        if state.items.len() < state.capacity {
            return Poll::Ready(Ok(()));
        }
        store(&mut state.sender_waker, cx.waker());
        Poll::Pending
    }

    /// Queues `item` if it fits now.
    pub(crate) fn try_send(&mut self, item: T) -> Result<(), TrySendError<T>> {
        let state = self.shared.lock();
        if !state.receiver_alive {
            return Err(TrySendError::Closed(item));
        }
        if state.items.len() >= state.capacity {
            return Err(TrySendError::Full(item));
        }
        push(state, item);
        Ok(())
    }

    /// Queues `item` (call after `poll_ready` said it fits); gives it back when the receiver
    /// is gone.
    pub(crate) fn send(&mut self, item: T) -> Result<(), T> {
        let state = self.shared.lock();
        if !state.receiver_alive {
            return Err(item);
        }
        push(state, item);
        Ok(())
    }
}

/// Queues `item` under the lock, then wakes the receiver outside it.
fn push<T>(mut state: MutexGuard<'_, State<T>>, item: T) {
    state.items.push_back(item);
    let waker = state.receiver_waker.take();
    drop(state);
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_alive = false;
        let waker = state.receiver_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> QueueReceiver<T> {
    /// The next item; `Ready(None)` once the sender is gone and the queue is empty.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        if let Some(item) = state.items.pop_front() {
            let waker = state.sender_waker.take();
            drop(state);
            if let Some(waker) = waker {
                waker.wake();
            }
            return Poll::Ready(Some(item));
        }
        if !state.sender_alive {
            return Poll::Ready(None);
        }
        store(&mut state.receiver_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_alive = false;
        let items = std::mem::take(&mut state.items);
        let waker = state.sender_waker.take();
        drop(state);
        // Items are dropped outside the lock (their drop may do anything).
        drop(items);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn bounded_in_order_with_backpressure_and_both_ends() {
        let (mut tx, mut rx) = bounded::<u32>(2);
        for i in 0..2 {
            poll_fn(|cx| tx.poll_ready(cx)).await.unwrap();
            tx.send(i).unwrap();
        }
        // Full: the sender waits until the receiver takes one.
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(tx.poll_ready(&mut cx).is_pending());
        assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
        assert_eq!(poll_fn(|cx| rx.poll_recv(cx)).await, Some(0));
        assert!(tx.poll_ready(&mut cx).is_ready());
        tx.send(2).unwrap();
        // The sender's end: what is queued still arrives, then None.
        drop(tx);
        assert_eq!(poll_fn(|cx| rx.poll_recv(cx)).await, Some(1));
        assert_eq!(poll_fn(|cx| rx.poll_recv(cx)).await, Some(2));
        assert_eq!(poll_fn(|cx| rx.poll_recv(cx)).await, None);

        // The receiver's end: the sender is told, and its item comes back.
        let (mut tx, rx) = bounded::<u32>(0);
        assert!(tx.poll_ready(&mut cx).is_ready());
        drop(rx);
        assert_eq!(tx.poll_ready(&mut cx), Poll::Ready(Err(())));
        assert_eq!(tx.send(7), Err(7));
        assert_eq!(tx.try_send(8), Err(TrySendError::Closed(8)));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send_from_another_task() {
        let (mut tx, mut rx) = bounded::<&str>(1);
        let receiver = tokio::spawn(async move { poll_fn(|cx| rx.poll_recv(cx)).await });
        tokio::task::yield_now().await;
        tx.send("hello").unwrap();
        assert_eq!(receiver.await.unwrap(), Some("hello"));
    }
}
