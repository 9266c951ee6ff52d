//! What a runtime adapter gives the shared loops: the time, a timer and a way to start
//! tasks. Everything else (channels, IO traits) is runtime-free.
//!
//! An adapter implements [`Runtime`] in a dozen lines over its runtime's timer and executor
//! (an async-std/smol adapter with `async-io`'s timer, a WebAssembly host with its own).
//! Nothing here needs threads or an OS clock: time is the runtime's [`Runtime::now`].

use futures_channel::oneshot;
use futures_util::task::AtomicWaker;
use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tether_core::time::Instant;

/// `Send` where the host has threads; nothing on `wasm32`, where a WebAssembly host runs
/// everything on one thread and futures may hold values that cannot cross threads (a
/// JavaScript socket, an `Rc`). Every bound of this crate on the futures and streams it runs
/// is `MaybeSend`, so native adapters keep their `Send` checks at no cost and a single-threaded
/// host needs none.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` where the host has threads; nothing on `wasm32` (see above).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` where the host has threads; nothing on `wasm32` (see [`MaybeSend`]).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` where the host has threads; nothing on `wasm32` (see [`MaybeSend`]).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A boxed future: sendable where the host has threads, not necessarily on a single-threaded
/// WebAssembly host (see [`MaybeSend`]).
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A boxed future: sendable where the host has threads, not necessarily on a single-threaded
/// WebAssembly host (see [`MaybeSend`]).
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// The services of an async runtime that the shared loops need.
///
/// Time is the core's [`Instant`]: the adapter picks an origin and a monotonic clock, and
/// converts deadlines back to its own timer.
///
/// The runtime itself is `Send + Sync` on every host (a WebAssembly host's is a handle to
/// functions of the JavaScript side, which holds no value bound to a thread); what it runs
/// need not be, where the host is single-threaded ([`BoxFuture`], [`MaybeSend`]).
pub trait Runtime: Send + Sync + 'static {
    /// Now, as the core counts time.
    fn now(&self) -> Instant;
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;
    /// Runs `task` to its end in the background. Tasks never outlive what owns them: every
    /// task started here is tied to a connection, a WebSocket or a scheduler job that ends
    /// it.
    fn spawn(&self, task: BoxFuture<()>);
    /// The wall clock, as the time since the Unix epoch: for the `Date` header of responses
    /// (the host's clock; there is no OS clock on some hosts, e.g. WebAssembly).
    fn unix_time(&self) -> std::time::Duration;
    /// Fills `dest` with random bytes from a strong source (WebSocket masking keys and
    /// `Sec-WebSocket-Key`, RFC 6455 §5.3 and §4.1).
    fn fill_random(&self, dest: &mut [u8]);
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
    /// It panicked, while being polled or while its future was dropped; the panic's
    /// payload.
    Panicked(Box<dyn Any + Send>),
    /// It was aborted, or the runtime dropped it unfinished (e.g. while shutting down).
    Cancelled,
}

/// The abort switch of a [`Guarded`] future: once thrown, the future is dropped at its next
/// poll, which the switch wakes.
#[derive(Debug, Default)]
pub(crate) struct AbortFlag {
    aborted: AtomicBool,
    waker: AtomicWaker,
}

impl AbortFlag {
    /// Asks the guarded future to stop (idempotent).
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

/// The one panic and cancellation guard of this crate: a [`Task`] runs its future in one,
/// the job scheduler each job, and a server connection can poll its handler in one in
/// place. It polls `F` catching panics, stops it when its [`AbortFlag`] is thrown, and drops
/// `F` as soon as it ends (finished, panicked or aborted), catching a panic of that drop
/// too. Its output says which: `Ok(value)`, [`TaskError::Panicked`] (in a poll, or in the
/// drop that followed; a panic in the drop of an already panicked future is ignored) or
/// [`TaskError::Cancelled`]. Dropped unfinished, it drops `F` and swallows a panic of that
/// drop; call [`Guarded::cancel`] first to see it.
pub(crate) struct Guarded<F> {
    future: Option<F>,
    abort: Option<Arc<AbortFlag>>,
}

impl<F> std::fmt::Debug for Guarded<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("running", &self.future.is_some())
            .field("abort", &self.abort)
            .finish()
    }
}

impl<F> Guarded<F> {
    /// Guards `future`, without an abort switch (it still can be [cancelled](Self::cancel)).
    /// For a future polled in place, such as a server connection's handler.
    pub(crate) fn new(future: F) -> Self {
        Guarded {
            future: Some(future),
            abort: None,
        }
    }

    /// Guards `future`, stopping it when `abort` is thrown.
    pub(crate) fn with_abort(future: F, abort: Arc<AbortFlag>) -> Self {
        Guarded {
            future: Some(future),
            abort: Some(abort),
        }
    }

    /// Drops the future now, if it is still there: [`TaskError::Cancelled`], or
    /// [`TaskError::Panicked`] if its drop panicked.
    pub(crate) fn cancel(&mut self) -> TaskError {
        match self.future.take().and_then(drop_catching) {
            Some(payload) => TaskError::Panicked(payload),
            None => TaskError::Cancelled,
        }
    }
}

impl<F: Future + Unpin> Future for Guarded<F> {
    type Output = Result<F::Output, TaskError>;

    /// Panics if polled again after it returned `Ready`.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(abort) = &this.abort {
            abort.waker.register(cx.waker());
            if abort.is_aborted() {
                return Poll::Ready(Err(this.cancel()));
            }
        }
        let future = this
            .future
            .as_mut()
            .expect("Guarded polled after completion");
        match panic::catch_unwind(AssertUnwindSafe(|| Pin::new(future).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => match this.future.take().and_then(drop_catching) {
                None => Poll::Ready(Ok(value)),
                Some(payload) => {
                    drop_quietly(value);
                    Poll::Ready(Err(TaskError::Panicked(payload)))
                }
            },
            Err(payload) => {
                forget_panic(this.future.take().and_then(drop_catching));
                Poll::Ready(Err(TaskError::Panicked(payload)))
            }
        }
    }
}

impl<F> Drop for Guarded<F> {
    fn drop(&mut self) {
        if let TaskError::Panicked(payload) = self.cancel() {
            forget_panic(Some(payload));
        }
    }
}

/// Drops `value`, returning the panic payload if its drop panicked.
fn drop_catching<X>(value: X) -> Option<Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(move || drop(value))).err()
}

/// Drops `value`, ignoring a panic of its drop.
pub(crate) fn drop_quietly<X>(value: X) {
    forget_panic(drop_catching(value));
}

/// Disposes of a panic payload nobody will see; a payload whose own drop panics is leaked
/// rather than unwinding further.
fn forget_panic(payload: Option<Box<dyn Any + Send>>) {
    if let Some(again) = payload.and_then(drop_catching) {
        std::mem::forget(again);
    }
}

/// The message of a panic: its `&str` or `String` payload, or a placeholder for others. The
/// payload is dropped (a payload whose drop panics is leaked).
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    forget_panic(Some(payload));
    message
}

/// A task whose end is awaited: its output, its panic, or its cancellation.
///
/// Its future runs in the crate's panic guard: a panic, while it is polled or while it is
/// dropped after it ended or was aborted, is caught and never reaches the runtime; the
/// handle gets its payload. There is no `detach`: dropping the handle does not stop the
/// task (it runs to its end, unobserved); [`Task::abort`] does.
#[derive(Debug)]
pub struct Task<T> {
    result: oneshot::Receiver<Result<T, TaskError>>,
    abort: Arc<AbortFlag>,
}

impl<T: MaybeSend + 'static> Task<T> {
    /// Starts `future` on `rt`.
    pub fn spawn<F>(rt: &dyn Runtime, future: F) -> Task<T>
    where
        F: Future<Output = T> + MaybeSend + 'static,
    {
        let abort = Arc::new(AbortFlag::default());
        let guarded = Guarded::with_abort(Box::pin(future), Arc::clone(&abort));
        let (tx, result) = oneshot::channel();
        rt.spawn(Box::pin(async move {
            if let Err(unobserved) = tx.send(guarded.await) {
                drop_quietly(unobserved);
            }
        }));
        Task { result, abort }
    }
}

impl<T> Task<T> {
    /// Stops the task at its next await point: its future is dropped, and the handle gets
    /// [`TaskError::Cancelled`] (or [`TaskError::Panicked`] if that drop panicked). No effect
    /// on a task that has ended.
    pub fn abort(&self) {
        self.abort.abort();
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.result).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            // The runtime dropped the task before it ended.
            Poll::Ready(Err(_)) => Poll::Ready(Err(TaskError::Cancelled)),
        }
    }
}

/// Runs `future` as its own [`Task`] on `rt` and waits for its output: work that must finish
/// even if the caller is cancelled (a handler dropped because its client left). The task is
/// started when this is first polled; from then on, dropping this future does not stop it.
/// A panic of `future` is re-raised here with [`std::panic::resume_unwind`].
///
/// # Panics
///
/// If `future` panics (with its payload), or if the runtime drops the task before it ends
/// (it is shutting down).
pub async fn shield<F>(rt: &dyn Runtime, future: F) -> F::Output
where
    F: Future + MaybeSend + 'static,
    F::Output: MaybeSend + 'static,
{
    match Task::spawn(rt, future).await {
        Ok(output) => output,
        Err(TaskError::Panicked(payload)) => panic::resume_unwind(payload),
        Err(TaskError::Cancelled) => panic!("shield: the runtime dropped the shielded task"),
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

        fn unix_time(&self) -> Duration {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
        }

        fn fill_random(&self, dest: &mut [u8]) {
            // Tests need distinct values, not secrecy: the standard library's randomly
            // seeded hasher over a counter.
            use std::hash::{BuildHasher, Hasher};
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            for chunk in dest.chunks_mut(8) {
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
                chunk.copy_from_slice(&hasher.finish().to_ne_bytes()[..chunk.len()]);
            }
        }
    }

    /// A tokio stream as this crate's [`Read`](crate::io::Read) and
    /// [`Write`](crate::io::Write).
    #[derive(Debug)]
    pub(crate) struct TokioIo<T>(pub(crate) T);

    impl<T: tokio::io::AsyncRead + Unpin> crate::io::Read for TokioIo<T> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            let mut buf = tokio::io::ReadBuf::new(buf);
            match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
    }

    impl<T: tokio::io::AsyncWrite + Unpin> crate::io::Write for TokioIo<T> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
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
    use futures_util::FutureExt;
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

    /// Panics when dropped.
    struct PanicOnDrop;

    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop boom");
        }
    }

    /// Ready at once with 5; its drop panics.
    struct ReadyThenBoom(PanicOnDrop);

    impl Future for ReadyThenBoom {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            Poll::Ready(5)
        }
    }

    fn message(err: TaskError) -> String {
        match err {
            TaskError::Panicked(payload) => panic_message(payload),
            TaskError::Cancelled => panic!("cancelled, not panicked"),
        }
    }

    #[tokio::test]
    async fn a_task_reports_a_panic_of_its_future_s_drop() {
        let rt = rt();
        // After it finished: the value is lost, the panic reported.
        let done = Task::spawn(&*rt, ReadyThenBoom(PanicOnDrop)).await;
        assert_eq!(message(done.unwrap_err()), "drop boom");
        // When it is aborted.
        let (started_tx, started) = oneshot::channel();
        let task = Task::spawn(&*rt, async move {
            let _bomb = PanicOnDrop;
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
        });
        started.await.unwrap();
        task.abort();
        assert_eq!(message(task.await.unwrap_err()), "drop boom");
    }

    #[tokio::test]
    async fn abort_drops_a_running_task_s_future_and_dropping_the_handle_does_not() {
        let rt = rt();
        let tracker = Arc::new(());
        let (started_tx, started) = oneshot::channel();
        let held = Arc::clone(&tracker);
        let task = Task::spawn(&*rt, async move {
            let _held = held;
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
        });
        started.await.unwrap();
        assert_eq!(Arc::strong_count(&tracker), 2);
        task.abort();
        task.abort();
        assert!(matches!(task.await, Err(TaskError::Cancelled)));
        assert_eq!(Arc::strong_count(&tracker), 1);

        let (tx, rx) = oneshot::channel();
        drop(Task::spawn(&*rt, async move {
            tokio::task::yield_now().await;
            let _ = tx.send(9);
        }));
        assert_eq!(rx.await, Ok(9), "a dropped handle leaves its task running");
    }

    #[test]
    fn a_task_dropped_by_its_runtime_is_cancelled() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tracker = Arc::new(());
        let held = Arc::clone(&tracker);
        let task = {
            let _inside = runtime.enter();
            Task::spawn(&*rt(), async move {
                let _held = held;
                std::future::pending::<()>().await;
            })
        };
        runtime.block_on(tokio::task::yield_now());
        assert_eq!(Arc::strong_count(&tracker), 2, "the task has started");
        drop(runtime);
        assert_eq!(Arc::strong_count(&tracker), 1);
        assert!(matches!(
            task.now_or_never(),
            Some(Err(TaskError::Cancelled))
        ));
    }

    #[tokio::test]
    async fn guarded_in_place_catches_panics_and_can_be_cancelled() {
        assert_eq!(Guarded::new(Box::pin(async { 3 })).await.unwrap(), 3);
        let panicked = Guarded::new(Box::pin(async {
            if true {
                panic!("in place");
            }
        }))
        .await;
        assert_eq!(message(panicked.unwrap_err()), "in place");
        let caught = Guarded::new(ReadyThenBoom(PanicOnDrop)).await;
        assert_eq!(message(caught.unwrap_err()), "drop boom");

        // Cancelled in place: the future is dropped, a panic of that drop returned.
        let mut bomb = Guarded::new(Box::pin(async {
            let _bomb = PanicOnDrop;
            std::future::pending::<()>().await;
        }));
        assert!(poll_once(&mut bomb).await.is_none());
        assert_eq!(message(bomb.cancel()), "drop boom");
        assert!(matches!(bomb.cancel(), TaskError::Cancelled));
        // Dropped unfinished: the panic of the drop does not escape.
        let mut bomb = Guarded::new(Box::pin(async {
            let _bomb = PanicOnDrop;
            std::future::pending::<()>().await;
        }));
        assert!(poll_once(&mut bomb).await.is_none());
        drop(bomb);

        // An abort switch thrown while it waits wakes it and stops it.
        let abort = Arc::new(AbortFlag::default());
        let mut stuck = Guarded::with_abort(Box::pin(std::future::pending::<()>()), abort.clone());
        assert!(poll_once(&mut stuck).await.is_none());
        let thrower = tokio::spawn(async move { abort.abort() });
        assert!(matches!(stuck.await, Err(TaskError::Cancelled)));
        thrower.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shield_finishes_when_its_caller_is_dropped() {
        let rt = rt();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let caller = tokio::spawn({
            let (rt, done) = (rt.clone(), Arc::clone(&done));
            async move {
                shield(&*rt, async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                    "finished"
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        assert!(!done.load(std::sync::atomic::Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
        // Awaited, it gives the output.
        assert_eq!(shield(&*rt, async { 11 }).await, 11);
    }

    #[tokio::test]
    async fn shield_re_raises_a_panic() {
        let rt = rt();
        let caught = AssertUnwindSafe(shield(&*rt, async {
            if true {
                panic!("shielded boom");
            }
        }))
        .catch_unwind()
        .await;
        assert_eq!(panic_message(caught.unwrap_err()), "shielded boom");
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_until_follows_the_runtime_clock() {
        let rt = rt();
        let start = rt.now();
        sleep_until(&*rt, Some(start + Duration::from_secs(30))).await;
        assert!(rt.now().saturating_duration_since(start) >= Duration::from_secs(30));
    }
}
