//! The module's own executor: one thread, tasks in a slab, a queue of woken tasks.
//!
//! JavaScript calls [`run`] (through the module's `run` export) after it has handed in
//! input or a timer has fired; `run` polls woken tasks until none is left or the budget is
//! spent, and never calls back into JavaScript. Wakers only push a task's id on the queue,
//! so waking from inside a poll (or from an input call) is cheap and re-entrancy free.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A task: a future the executor owns until it completes.
type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// One slot of the slab.
enum Slot {
    Free,
    /// Waiting to be polled (or woken).
    Idle(LocalFuture, Arc<TaskWaker>),
    /// Being polled right now (taken out so the task may spawn others).
    Running,
}

/// What a task's waker holds: where the task is, and whether it is already queued.
struct TaskWaker {
    slot: usize,
    generation: u64,
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

/// Woken tasks, in wake order: (slot, generation). A generation that no longer matches
/// its slot is a finished task's late wake and is skipped.
#[derive(Default)]
struct ReadyQueue(Mutex<VecDeque<(usize, u64)>>);

impl ReadyQueue {
    fn push(&self, entry: (usize, u64)) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(entry);
    }

    fn pop(&self) -> Option<(usize, u64)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ready.push((self.slot, self.generation));
        }
    }
}

#[derive(Default)]
struct Executor {
    slots: RefCell<Vec<Slot>>,
    generations: RefCell<Vec<u64>>,
    free: RefCell<Vec<usize>>,
    ready: Arc<ReadyQueue>,
    live: RefCell<usize>,
    /// Polls made since the instance started (for the benchmarks' per-request counts).
    polls: std::cell::Cell<u64>,
}

thread_local! {
    static EXECUTOR: Executor = Executor::default();
}

/// Starts `task`; it is first polled by the next [`run`].
pub(crate) fn spawn(task: LocalFuture) {
    EXECUTOR.with(|ex| {
        let slot = ex.free.borrow_mut().pop().unwrap_or_else(|| {
            ex.slots.borrow_mut().push(Slot::Free);
            ex.generations.borrow_mut().push(0);
            ex.slots.borrow().len() - 1
        });
        let generation = {
            let mut generations = ex.generations.borrow_mut();
            generations[slot] += 1;
            generations[slot]
        };
        let waker = Arc::new(TaskWaker {
            slot,
            generation,
            queued: AtomicBool::new(true),
            ready: ex.ready.clone(),
        });
        ex.slots.borrow_mut()[slot] = Slot::Idle(task, waker);
        ex.ready.push((slot, generation));
        *ex.live.borrow_mut() += 1;
    });
}

/// Polls woken tasks, at most `budget` polls. `true` if woken tasks are left (the host
/// should call again soon, after letting its own IO run).
pub(crate) fn run(budget: usize) -> bool {
    EXECUTOR.with(|ex| {
        for _ in 0..budget {
            let Some((slot, generation)) = ex.ready.pop() else {
                return false;
            };
            if ex.generations.borrow().get(slot) != Some(&generation) {
                continue;
            }
            let taken = std::mem::replace(&mut ex.slots.borrow_mut()[slot], Slot::Running);
            let Slot::Idle(mut future, waker) = taken else {
                // Already finished (a stale entry): put back what was there.
                ex.slots.borrow_mut()[slot] = taken;
                continue;
            };
            waker.queued.store(false, Ordering::Release);
            ex.polls.set(ex.polls.get() + 1);
            let as_waker = Waker::from(waker.clone());
            let poll = future.as_mut().poll(&mut Context::from_waker(&as_waker));
            match poll {
                Poll::Pending => ex.slots.borrow_mut()[slot] = Slot::Idle(future, waker),
                Poll::Ready(()) => {
                    ex.slots.borrow_mut()[slot] = Slot::Free;
                    ex.generations.borrow_mut()[slot] += 1;
                    ex.free.borrow_mut().push(slot);
                    *ex.live.borrow_mut() -= 1;
                    // Dropped outside every borrow: a drop may wake or spawn.
                    drop(future);
                }
            }
        }
        !ex.ready.is_empty()
    })
}

/// Whether woken tasks wait to be polled.
pub(crate) fn has_ready() -> bool {
    EXECUTOR.with(|ex| !ex.ready.is_empty())
}

/// Polls made since the instance started.
pub(crate) fn polls() -> u64 {
    EXECUTOR.with(|ex| ex.polls.get())
}

/// How many tasks are alive (for the host's statistics and the tests).
pub(crate) fn live_tasks() -> usize {
    EXECUTOR.with(|ex| *ex.live.borrow())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn tasks_run_when_woken_and_are_freed_when_done() {
        let (tx, rx) = futures_channel::oneshot::channel::<u32>();
        let seen = Rc::new(Cell::new(0));
        let seen2 = seen.clone();
        spawn(Box::pin(async move {
            seen2.set(rx.await.unwrap());
        }));
        let before = live_tasks();
        assert!(!run(100));
        assert_eq!(seen.get(), 0);
        tx.send(7).unwrap();
        assert!(!run(100));
        assert_eq!(seen.get(), 7);
        assert_eq!(live_tasks(), before - 1);
    }

    #[test]
    fn a_task_may_spawn_and_the_budget_is_honoured() {
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        spawn(Box::pin(async move {
            for _ in 0..3 {
                let c = c.clone();
                spawn(Box::pin(async move { c.set(c.get() + 1) }));
            }
        }));
        assert!(run(1));
        assert!(!run(100));
        assert_eq!(count.get(), 3);
    }
}
