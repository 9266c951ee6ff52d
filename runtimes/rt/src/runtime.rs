//! What a runtime adapter gives the shared loops: the time, a timer and a way to start
//! tasks. Everything else (channels, IO traits) is runtime-free.
//!
//! The tokio adapter implements [`Runtime`] in a dozen lines; an async-std/smol adapter does
//! the same with `async-io`'s timer and its executor, a WebAssembly host with its own.

use futures_util::future::{AbortHandle, Abortable};
use futures_util::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tether_core::time::Instant;
use tokio::sync::oneshot;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The services of an async runtime that the shared loops need.
///
/// Time is the core's [`Instant`]: the adapter picks an origin and a monotonic clock, and
/// converts deadlines back to its own timer.
pub trait Runtime: Send + Sync + 'static {
    /// Now, as the core counts time.
    fn now(&self) -> Instant;
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;
    /// Runs `task` to its end in the background. Tasks never outlive what owns them: every
    /// task started here is tied to a connection, a WebSocket or a scheduler job that ends
    /// it.
    fn spawn(&self, task: BoxFuture<()>);
}

/// A shared handle to the runtime.
pub type Rt = Arc<dyn Runtime>;

/// Sleeps until `deadline`, or forever without one.
pub async fn sleep_until(rt: &dyn Runtime, deadline: Option<Instant>) {
    match deadline {
        Some(at) => rt.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A timer that follows a changing deadline cheaply: the runtime's sleep is made anew only
/// when the deadline moves earlier. A deadline that moves later (a keep-alive or heartbeat
/// deadline pushed back on every message) keeps the sleep already armed, which then
/// completes early, once: the caller's `handle_timeout(now)` finds nothing due and the next
/// call arms the real deadline. So callers must treat a completion as "check now", which
/// is what every state machine's `handle_timeout` does.
#[derive(Default)]
pub(crate) struct Timer {
    armed: Option<(Instant, BoxFuture<()>)>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("deadline", &self.armed.as_ref().map(|(at, _)| *at))
            .finish()
    }
}

impl Timer {
    /// Completes at `deadline` or earlier (see above; never without a deadline).
    /// Cancel-safe: dropped before it completes, the sleep stays armed for the next call.
    pub(crate) async fn sleep_until(&mut self, rt: &dyn Runtime, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            self.armed = None;
            return std::future::pending().await;
        };
        match &self.armed {
            Some((at, _)) if *at <= deadline => {}
            _ => self.armed = Some((deadline, rt.sleep_until(deadline))),
        }
        if let Some((_, sleep)) = &mut self.armed {
            sleep.await;
        }
        self.armed = None;
    }
}

/// Polls `future` once, in the caller's task context (so a `Pending` future still wakes the
/// caller): its output if it is ready at once. For fast paths that skip setting up timers or
/// select loops when the work is already done.
pub(crate) async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match Pin::new(&mut *future).poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// How a [`Task`] ended without a value.
#[derive(Debug)]
pub enum TaskError {
    /// It panicked; the panic's payload.
    Panicked(Box<dyn Any + Send>),
    /// It was aborted.
    Cancelled,
}

/// A task whose end is awaited: its output, its panic, or its cancellation. Dropping the
/// handle does not stop the task; [`Task::abort`] does.
#[derive(Debug)]
pub struct Task<T> {
    result: oneshot::Receiver<std::thread::Result<T>>,
    abort: AbortHandle,
}

impl<T: Send + 'static> Task<T> {
    /// Starts `future` on `rt`.
    pub fn spawn<F>(rt: &dyn Runtime, future: F) -> Task<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (abort, registration) = AbortHandle::new_pair();
        let (tx, result) = oneshot::channel();
        let guarded = Abortable::new(AssertUnwindSafe(future).catch_unwind(), registration);
        rt.spawn(Box::pin(async move {
            if let Ok(outcome) = guarded.await {
                let _ = tx.send(outcome);
            }
        }));
        Task { result, abort }
    }

    /// Stops the task at its next await point (its future is dropped).
    pub fn abort(&self) {
        self.abort.abort();
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.result).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(value))) => Poll::Ready(Ok(value)),
            Poll::Ready(Ok(Err(panic))) => Poll::Ready(Err(TaskError::Panicked(panic))),
            Poll::Ready(Err(_)) => Poll::Ready(Err(TaskError::Cancelled)),
        }
    }
}

/// A tokio-backed runtime for the unit tests of this crate (the real adapters live in their
/// own crates).
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use std::sync::OnceLock;
    use std::time::Duration;

    struct TokioForTests;

    fn origin() -> tokio::time::Instant {
        static ORIGIN: OnceLock<tokio::time::Instant> = OnceLock::new();
        *ORIGIN.get_or_init(tokio::time::Instant::now)
    }

    impl Runtime for TokioForTests {
        fn now(&self) -> Instant {
            Instant::from_duration(origin().elapsed())
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
            let since = deadline
                .duration_since_origin()
                .min(Duration::from_secs(365 * 24 * 3600));
            Box::pin(tokio::time::sleep_until(origin() + since))
        }

        fn spawn(&self, task: BoxFuture<()>) {
            tokio::spawn(task);
        }
    }

    /// The test runtime (call inside a tokio runtime).
    pub(crate) fn rt() -> Rt {
        let _ = origin();
        Arc::new(TokioForTests)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::rt;
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_gives_its_value_its_panic_or_its_cancellation() {
        let rt = rt();
        assert_eq!(Task::spawn(&*rt, async { 7 }).await.unwrap(), 7);
        let panicked = Task::spawn(&*rt, async {
            if true {
                panic!("boom");
            }
        })
        .await;
        assert!(matches!(panicked, Err(TaskError::Panicked(_))));
        let stuck = Task::spawn(&*rt, std::future::pending::<()>());
        stuck.abort();
        assert!(matches!(stuck.await, Err(TaskError::Cancelled)));
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_until_follows_the_runtime_clock() {
        let rt = rt();
        let start = rt.now();
        sleep_until(&*rt, Some(start + Duration::from_secs(30))).await;
        assert!(rt.now().saturating_duration_since(start) >= Duration::from_secs(30));
    }
}
