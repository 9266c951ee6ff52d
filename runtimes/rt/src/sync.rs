//! A runtime-free `watch`: one value, many readers that wait for it to change. Built on a
//! mutex and `event-listener` (what the smol ecosystem's primitives use), so it works under
//! any executor and on hosts without threads.

use event_listener::{Event, EventListener};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

struct Shared<T> {
    /// The value and how many times it changed.
    value: Mutex<(T, u64)>,
    /// The count of changes again, readable without the lock (the fast path of
    /// [`WatchReceiver::poll_changed`], polled on every turn of a connection's loop).
    version: AtomicU64,
    changed: Event,
    /// The sender is gone: the value will not change any more.
    closed: AtomicBool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, (T, u64)> {
        self.value
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The sender was dropped: no change will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// Changes the value.
pub(crate) struct WatchSender<T> {
    shared: Arc<Shared<T>>,
}

/// Reads the value and waits for changes.
pub(crate) struct WatchReceiver<T> {
    shared: Arc<Shared<T>>,
    /// The version last seen.
    seen: u64,
    /// Kept between polls of [`WatchReceiver::poll_changed`], so a loop that polls it on
    /// every turn registers once, not once a turn.
    listener: Option<EventListener>,
}

impl<T> Clone for WatchReceiver<T> {
    fn clone(&self) -> Self {
        WatchReceiver {
            shared: self.shared.clone(),
            seen: self.seen,
            listener: None,
        }
    }
}

/// A watched value starting at `initial`.
pub(crate) fn watch<T>(initial: T) -> (WatchSender<T>, WatchReceiver<T>) {
    let shared = Arc::new(Shared {
        value: Mutex::new((initial, 0)),
        version: AtomicU64::new(0),
        changed: Event::new(),
        closed: AtomicBool::new(false),
    });
    (
        WatchSender {
            shared: shared.clone(),
        },
        WatchReceiver {
            shared,
            seen: 0,
            listener: None,
        },
    )
}

impl<T> WatchSender<T> {
    /// Changes the value in place if `change` says it did; wakes the readers then.
    pub(crate) fn send_if_modified(&self, change: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = {
            let mut guard = self.shared.lock();
            let modified = change(&mut guard.0);
            if modified {
                guard.1 += 1;
                self.shared.version.store(guard.1, Ordering::Release);
            }
            modified
        };
        if modified {
            self.shared.changed.notify(usize::MAX);
        }
        modified
    }

    /// Changes the value in place and wakes the readers.
    pub(crate) fn send_modify(&self, change: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            change(value);
            true
        });
    }

    /// A new reader that has seen the current value.
    pub(crate) fn subscribe(&self) -> WatchReceiver<T> {
        let seen = self.shared.lock().1;
        WatchReceiver {
            shared: self.shared.clone(),
            seen,
            listener: None,
        }
    }
}

impl<T> Drop for WatchSender<T> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.changed.notify(usize::MAX);
    }
}

impl<T: Clone> WatchReceiver<T> {
    /// The current value (marked as seen).
    pub(crate) fn borrow_and_update(&mut self) -> T {
        let guard = self.shared.lock();
        self.seen = guard.1;
        guard.0.clone()
    }
}

impl<T> WatchReceiver<T> {
    /// Reads the current value.
    pub(crate) fn with<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.shared.lock().0)
    }

    /// Ready once the value changed from the one last seen (which it marks as seen), or the
    /// sender is gone.
    pub(crate) fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        loop {
            let version = self.shared.version.load(Ordering::Acquire);
            if version != self.seen {
                self.seen = version;
                self.listener = None;
                return Poll::Ready(Ok(()));
            }
            if self.shared.closed.load(Ordering::Acquire) {
                self.listener = None;
                return Poll::Ready(Err(Closed));
            }
            match &mut self.listener {
                // Listen first, then check again (the loop), so no change is missed.
                None => self.listener = Some(self.shared.changed.listen()),
                // Always polled, never assumed armed: a listener can have been notified by
                // a change already seen (its notification raced with the version read
                // above), and a notified listener is not notified again by the next
                // change. Skipping this poll lost that next change.
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
            }
        }
    }

    /// Waits until `ready` holds for the value (at once if it does); `Err` if the sender is
    /// gone first.
    pub(crate) async fn wait_for(&mut self, ready: impl Fn(&T) -> bool) -> Result<(), Closed> {
        loop {
            let listener = self.shared.changed.listen();
            {
                let guard = self.shared.lock();
                self.seen = guard.1;
                if ready(&guard.0) {
                    return Ok(());
                }
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(Closed);
            }
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn readers_see_changes_and_the_end() {
        let (tx, mut rx) = watch(1);
        assert!(
            std::future::poll_fn(|cx| rx.poll_changed(cx))
                .now_or_never()
                .is_none(),
            "nothing changed yet"
        );
        tx.send_modify(|v| *v = 2);
        assert_eq!(
            std::future::poll_fn(|cx| rx.poll_changed(cx)).now_or_never(),
            Some(Ok(()))
        );
        assert_eq!(rx.borrow_and_update(), 2);
        assert!(!tx.send_if_modified(|_| false));
        assert!(std::future::poll_fn(|cx| rx.poll_changed(cx))
            .now_or_never()
            .is_none());
        let mut late = tx.subscribe();
        assert!(late.wait_for(|v| *v == 2).now_or_never() == Some(Ok(())));
        drop(tx);
        assert_eq!(
            std::future::poll_fn(|cx| rx.poll_changed(cx)).now_or_never(),
            Some(Err(Closed))
        );
        assert_eq!(late.wait_for(|v| *v == 3).now_or_never(), Some(Err(Closed)));
    }

    #[test]
    fn a_waiting_reader_is_woken() {
        let (tx, mut rx) = watch(false);
        let waiting = std::thread::spawn(move || {
            assert_eq!(futures_executor_lite(rx.wait_for(|v| *v)), Ok(()));
            rx.with(|v| *v)
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        tx.send_modify(|v| *v = true);
        assert!(waiting.join().unwrap());
    }

    /// The race behind a connection that never saw its abort: a change's notification
    /// arrives after its reader has already seen the change and listens again; the next
    /// change must still wake the reader.
    #[test]
    fn a_change_after_a_late_notification_still_wakes_the_reader() {
        use std::sync::atomic::AtomicUsize;
        use std::task::{Wake, Waker};
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (tx, mut rx) = watch(0);
        // The change's value and version, its notification held back.
        tx.shared.lock().0 = 1;
        tx.shared.lock().1 = 1;
        tx.shared.version.store(1, Ordering::Release);
        assert_eq!(rx.poll_changed(&mut cx), Poll::Ready(Ok(())));
        assert_eq!(rx.poll_changed(&mut cx), Poll::Pending);
        // The late notification wakes the reader, which finds nothing new.
        tx.shared.changed.notify(usize::MAX);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_changed(&mut cx), Poll::Pending);
        // The next change wakes it again.
        tx.send_modify(|v| *v = 2);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "the second change was lost"
        );
        assert_eq!(rx.poll_changed(&mut cx), Poll::Ready(Ok(())));
        assert_eq!(rx.borrow_and_update(), 2);
    }

    /// Blocks the thread on `future` (the crate has no executor of its own).
    fn futures_executor_lite<F: std::future::Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Thread(std::thread::Thread);
        impl Wake for Thread {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Thread(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }
}
