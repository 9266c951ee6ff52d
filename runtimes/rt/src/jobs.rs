//! Supervised background jobs: the Rust counterpart of Python's `aiojobs`.
//!
//! A bare `spawn` is "fire and forget" in the worst sense: if the task
//! fails nobody hears about it, if it panics the panic sits in a `JoinHandle`
//! that was dropped, and at shutdown the task is either leaked or killed at a
//! random point. A [`Scheduler`] fixes the three problems:
//!
//! * **No lost errors.** Every job that fails (returns `Err(e)`) or panics is
//!   reported to the scheduler's error handler ([`Scheduler::set_error_handler`],
//!   by default a line on stderr), exactly once, whether or not anybody awaits
//!   its [`Job`] handle. Somebody who does await [`Job::wait`] gets the same
//!   [`JobError`] as well. (This differs on purpose from `aiojobs`, which only
//!   calls its exception handler for jobs nobody waits for: reporting always
//!   means an error can never fall between the two paths, for instance when a
//!   `wait()` future is dropped half-way.) Cancellation is not an error and is
//!   never reported to the handler.
//! * **Bounded concurrency.** At most [`SchedulerConfig::limit`] jobs run at
//!   once; further jobs wait in a FIFO pending queue of at most
//!   [`SchedulerConfig::pending_limit`] entries, and start in the order they
//!   were spawned as running ones end. When the queue is full,
//!   [`Scheduler::spawn`] waits for room (backpressure, first come first
//!   served) and [`Scheduler::try_spawn`] fails with [`SpawnError::Full`].
//! * **Orderly shutdown.** [`Scheduler::close`] stops accepting jobs, cancels
//!   the pending ones at once (like `aiojobs`: they never started, so nothing
//!   is interrupted half-way), gives the running ones
//!   [`SchedulerConfig::close_timeout`] to end by themselves, then cancels
//!   what is left and waits until it is gone. When `close` returns, every
//!   job's future has been dropped: nothing the jobs owned is still alive.
//!
//! Panics are caught inside the job's task (by the same guard as
//! [`Task`](crate::Task)'s) and never reach the caller of `spawn`, nor the
//! runtime; a panic while a job's future is dropped, after it ended or when it
//! is cancelled, is reported as [`JobError::Panicked`] too. A job's error is
//! kept whole as the source of [`JobError::Failed`].
//!
//! Dropping a [`Job`] handle does **not** cancel the job: it stays
//! supervised by the scheduler. Dropping every
//! [`Scheduler`] handle does not cancel anything either: running and pending
//! jobs still run to completion and still report their errors; call
//! [`Scheduler::close`] for an orderly stop.
//!
//! Cancelling a job (by [`Job::close`] or at the end of the close timeout)
//! has the effect of `JoinHandle::abort`: the job's future is dropped at the
//! `.await` where it is suspended and never polled again. Like any async
//! cancellation it cannot interrupt a job that blocks its thread without
//! yielding.
//!
//! The scheduler is runtime-free: jobs are started with the [`Runtime`]'s
//! `spawn`, the close timeout is measured with its `now` and `sleep_until`,
//! and nothing needs threads (it runs on a single-threaded host such as
//! WebAssembly).
//!
//! [`Runtime`]: crate::Runtime
//!
//! ```no_run
//! # async fn demo() {
//! use tether_rt::jobs::{Scheduler, SchedulerConfig};
//! # let rt: tether_rt::Rt = unimplemented!();
//!
//! // Runtime adapters hand you one tied to their runtime (their `jobs::scheduler(config)`).
//! let scheduler = Scheduler::new(SchedulerConfig::default().with_limit(10), rt);
//! scheduler.set_error_handler(|err| eprintln!("background: {err}"));
//! let job = scheduler
//!     .spawn(async { Ok::<_, std::io::Error>(42) })
//!     .await
//!     .expect("scheduler is open");
//! assert_eq!(job.wait().await.ok(), Some(42));
//! let summary = scheduler.close().await;
//! println!("{} finished, {} cancelled", summary.finished, summary.cancelled());
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::runtime::{
    drop_quietly, panic_message, AbortFlag, BoxFuture, Guarded, MaybeSend, Rt, TaskError,
};
use event_listener::Event;
use futures_channel::oneshot;
use futures_util::future::{self, Either};
use futures_util::task::AtomicWaker;
use tether_core::time::Instant;

/// The target of the scheduler's span and events: a `job` span (its id, a child of the
/// spawner's span) around each job's future and its events: `debug` when it is spawned,
/// finishes or is cancelled (whether it had started, whether the scheduler was closing),
/// `warn` when it fails or panics (the application's fault, not a peer's; reported to the
/// error handler too). Without a subscriber the span is disabled and the future unwrapped.
pub(crate) const JOBS: &str = "tether::jobs";

/// Settings of a [`Scheduler`].
///
/// The struct is `#[non_exhaustive]`: start from [`SchedulerConfig::default`]
/// and adjust it with the `with_*` methods.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How many jobs may run at once; `None` means no limit (and then no job
    /// ever waits in the pending queue). Default: `Some(100)`. A limit of
    /// `Some(0)` would never run anything and is treated as `Some(1)`.
    pub limit: Option<usize>,
    /// How many jobs may wait in the pending queue while `limit` jobs run.
    /// `0` means no queue: a job is accepted only if it can start at once.
    /// Ignored when `limit` is `None`. Default: 10 000.
    pub pending_limit: usize,
    /// How long [`Scheduler::close`] lets running jobs end by themselves
    /// before it cancels them. Default: 10 seconds.
    pub close_timeout: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            limit: Some(100),
            pending_limit: 10_000,
            close_timeout: Duration::from_secs(10),
        }
    }
}

impl SchedulerConfig {
    /// Sets [`limit`](Self::limit): a number, or `None` for no limit.
    #[must_use]
    pub fn with_limit(mut self, limit: impl Into<Option<usize>>) -> Self {
        self.limit = limit.into();
        self
    }

    /// Sets [`pending_limit`](Self::pending_limit).
    #[must_use]
    pub fn with_pending_limit(mut self, pending_limit: usize) -> Self {
        self.pending_limit = pending_limit;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    #[must_use]
    pub fn with_close_timeout(mut self, close_timeout: Duration) -> Self {
        self.close_timeout = close_timeout;
        self
    }
}

/// Identifier of a job, unique within its [`Scheduler`] (numbered from 1 in
/// spawn order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(u64);

impl JobId {
    /// The number behind the id.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The error a job returned, shared by every copy of its [`JobError::Failed`].
pub type JobFailure = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a job produced no value.
///
/// Its `Display` names the job and what went wrong, including the `Display` of a failed
/// job's own error, which is also its [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum JobError {
    /// The job returned `Err(e)`. `source` is `e` (converted with
    /// `Into<Box<dyn Error + Send + Sync>>`): a typed error is recovered with
    /// `source.downcast_ref::<E>()` (or through [`std::error::Error::source`]); a `String`
    /// or `&str` error keeps its text, as `source.to_string()`.
    Failed {
        /// The job.
        id: JobId,
        /// The job's error.
        source: JobFailure,
    },
    /// The job panicked (while being polled, or while its future was dropped).
    Panicked {
        /// The job.
        id: JobId,
        /// The panic message (`&str` or `String` payload), or a placeholder
        /// for other payloads.
        message: String,
    },
    /// The job was cancelled: by [`Job::close`], by [`Scheduler::close`], or
    /// because the runtime running it shut down.
    Cancelled {
        /// The job.
        id: JobId,
    },
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Failed { id, source } => write!(f, "job {id} failed: {source}"),
            JobError::Panicked { id, message } => write!(f, "job {id} panicked: {message}"),
            JobError::Cancelled { id } => write!(f, "job {id} was cancelled"),
        }
    }
}

impl std::error::Error for JobError {
    /// A failed job's own error (not the `Arc` around it, so that `downcast_ref` finds the
    /// job's error type).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JobError::Failed { source, .. } => Some(&**source),
            JobError::Panicked { .. } | JobError::Cancelled { .. } => None,
        }
    }
}

impl JobError {
    /// The job the error is about.
    pub fn id(&self) -> JobId {
        match self {
            JobError::Failed { id, .. }
            | JobError::Panicked { id, .. }
            | JobError::Cancelled { id } => *id,
        }
    }
}

/// Why a job could not be spawned. The job's future is dropped unpolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The scheduler is closed (or closing).
    #[error("the job scheduler is closed")]
    Closed,
    /// `limit` jobs run and the pending queue is full ([`Scheduler::try_spawn`] only).
    #[error("the job scheduler's pending queue is full")]
    Full,
}

/// What [`Scheduler::close`] did. Only jobs still alive (running or pending)
/// when `close` was first called are counted.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseSummary {
    /// Running jobs that ended by themselves during the close timeout,
    /// whatever their result.
    pub finished: usize,
    /// How many of the `finished` jobs failed or panicked (each was reported
    /// to the error handler).
    pub failed: usize,
    /// Running jobs cancelled: still running when the close timeout expired
    /// (or closed with [`Job::close`] meanwhile).
    pub aborted: usize,
    /// Pending jobs dropped without ever having started.
    pub cancelled_pending: usize,
}

impl CloseSummary {
    /// All cancelled jobs: `aborted + cancelled_pending`.
    pub fn cancelled(&self) -> usize {
        self.aborted + self.cancelled_pending
    }
}

type ErrorHandler = Arc<dyn Fn(JobError) + Send + Sync + 'static>;

/// Spawns and supervises background jobs.
///
/// Cheap to clone (an `Arc` inside): every clone is the same scheduler. See
/// the [module documentation](self) for the guarantees.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Scheduler")
            .field("config", &self.shared.config)
            .field("active", &st.running.len())
            .field("pending", &st.pending.len())
            .field("closed", &st.closed)
            .finish()
    }
}

impl Scheduler {
    /// Creates a scheduler whose jobs run on `rt`. No IO happens and no task
    /// is spawned until a job is.
    pub fn new(config: SchedulerConfig, rt: Rt) -> Scheduler {
        let mut config = config;
        config.limit = config.limit.map(|limit| limit.max(1));
        let room = config
            .limit
            .map(|limit| Room::new(limit.saturating_add(config.pending_limit)));
        let handler: ErrorHandler =
            Arc::new(|err: JobError| eprintln!("tether: unhandled background {err}"));
        Scheduler {
            shared: Arc::new(Shared {
                rt,
                config,
                room,
                state: Mutex::new(State {
                    closed: false,
                    next_id: 0,
                    running: HashMap::new(),
                    pending: VecDeque::new(),
                    dispatching: false,
                    dropping: 0,
                    close_deadline: None,
                    summary: CloseSummary::default(),
                }),
                handler: RwLock::new(handler),
                idle: Event::new(),
            }),
        }
    }

    /// The settings in force (with `limit: Some(0)` normalised to `Some(1)`).
    pub fn config(&self) -> &SchedulerConfig {
        &self.shared.config
    }

    /// Replaces the error handler. It receives every [`JobError::Failed`] and
    /// [`JobError::Panicked`], exactly once per job, whether or not the job's
    /// handle is awaited. It runs on the job's task right after the job ends,
    /// so it must be quick and must not block; if it panics, the panic is
    /// caught and the error printed to stderr instead. The default handler
    /// prints the error, with the job id, to stderr.
    pub fn set_error_handler(&self, handler: impl Fn(JobError) + Send + Sync + 'static) {
        let handler: ErrorHandler = Arc::new(handler);
        let old = std::mem::replace(
            &mut *self
                .shared
                .handler
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            handler,
        );
        drop(old);
    }

    /// Spawns a job.
    ///
    /// If `limit` jobs are running, the job waits in the pending queue and
    /// starts, in FIFO order, when a running one ends. If the queue is full
    /// too, this waits until there is room (backpressure; waiting spawners
    /// are served first come first served), and fails with
    /// [`SpawnError::Closed`] if the scheduler closes meanwhile. Dropping the
    /// returned future before it completes drops `job` unstarted.
    ///
    /// The job's error becomes the source of its [`JobError::Failed`]: any
    /// `std::error::Error + Send + Sync` (recovered with `downcast_ref`), or a `String` or
    /// `&str` message.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the scheduler is closed, or closes while
    /// this waits for room.
    pub async fn spawn<F, T, E>(&self, job: F) -> Result<Job<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + MaybeSend + 'static,
        T: MaybeSend + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + MaybeSend + 'static,
    {
        if self.is_closed() {
            return Err(SpawnError::Closed);
        }
        let permit = match &self.shared.room {
            Some(room) => Some(room.acquire().await?),
            None => None,
        };
        self.shared.admit(job, permit)
    }

    /// Like [`spawn`](Self::spawn), but fails at once with
    /// [`SpawnError::Full`] instead of waiting for room in the pending queue.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Full`] if `limit` jobs run and the pending queue is
    /// full; [`SpawnError::Closed`] if the scheduler is closed.
    ///
    /// # Panics
    ///
    /// As [`spawn`](Self::spawn).
    pub fn try_spawn<F, T, E>(&self, job: F) -> Result<Job<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + MaybeSend + 'static,
        T: MaybeSend + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + MaybeSend + 'static,
    {
        if self.is_closed() {
            return Err(SpawnError::Closed);
        }
        let permit = match &self.shared.room {
            Some(room) => Some(room.try_acquire()?),
            None => None,
        };
        self.shared.admit(job, permit)
    }

    /// Closes the scheduler and returns what became of the jobs.
    ///
    /// In order: new spawns fail with [`SpawnError::Closed`] (including
    /// spawns waiting for room); pending jobs are cancelled at once (they
    /// never started); running jobs get
    /// [`close_timeout`](SchedulerConfig::close_timeout) (counted from the
    /// first call) to end by themselves; those still running are then
    /// cancelled, and `close` waits until they are gone. When it returns, no
    /// job's future is alive and the error handler has seen every failure.
    ///
    /// Calling it again, or concurrently, waits for the same shutdown and
    /// returns the same summary. If the `close` future is dropped early, the
    /// scheduler stays closed and a later call finishes the job, keeping the
    /// original deadline. Calling it from inside one of the scheduler's own
    /// jobs makes that job wait for itself until it is cancelled.
    ///
    /// # Panics
    ///
    /// If jobs are still running and the runtime's
    /// [`sleep_until`](crate::Runtime::sleep_until) panics (for instance, an
    /// adapter whose timer needs its event loop, called outside of it): the
    /// close timeout needs the runtime's timer.
    pub async fn close(&self) -> CloseSummary {
        self.shared.close_jobs().await
    }

    /// Jobs currently running (started and not yet ended).
    pub fn active_count(&self) -> usize {
        self.shared.lock().running.len()
    }

    /// Jobs waiting in the pending queue.
    pub fn pending_count(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

/// Handle of one job: await its result with [`wait`](Self::wait), or cancel
/// it with [`close`](Self::close).
///
/// Dropping the handle does **not** cancel the job: it is supervised by the
/// scheduler, which still reports its errors.
pub struct Job<T> {
    id: JobId,
    rx: oneshot::Receiver<Result<T, JobError>>,
    ctl: Arc<JobCtl>,
    shared: Arc<Shared>,
}

impl<T> fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> Job<T> {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Waits for the job's output: `Ok(value)`, or [`JobError::Failed`] with
    /// the job's error, [`JobError::Panicked`] with the panic message, or
    /// [`JobError::Cancelled`]. Failures and panics are also reported to the
    /// scheduler's error handler, whether or not anybody waits.
    pub async fn wait(self) -> Result<T, JobError> {
        let Job { id, rx, .. } = self;
        match rx.await {
            Ok(outcome) => outcome,
            // The sender is only dropped unsent if the job's task was leaked
            // (e.g. `mem::forget` of a runtime): the job will never end.
            Err(_) => Err(JobError::Cancelled { id }),
        }
    }

    /// Cancels the job, if it has not ended yet, and waits until it is gone:
    /// a running job's future is dropped at its current `.await` (like
    /// `JoinHandle::abort`), a pending job is removed from the queue without
    /// ever starting. Cancellation is not reported to the error handler.
    pub async fn close(self) {
        let Job {
            id,
            rx,
            ctl,
            shared,
        } = self;
        ctl.cancel();
        let removed = {
            let mut st = shared.lock();
            let removed = match st.pending.iter().position(|job| job.id == id) {
                Some(index) => st.pending.remove(index),
                None => None,
            };
            if removed.is_some() {
                st.dropping += 1;
            }
            removed
        };
        // Dropping an unstarted job reports it as cancelled (outside the lock).
        if let Some(job) = removed {
            drop(job);
            shared.dropped(1);
        }
        let _ = rx.await;
    }

    /// Whether the job has ended (finished, failed, panicked or was
    /// cancelled), so that [`wait`](Self::wait) returns without waiting.
    pub fn is_finished(&self) -> bool {
        self.ctl.done.load(Ordering::Acquire)
    }
}

// ---------------------------------------------------------------------------
// Internals.

struct Shared {
    /// Where jobs run, and the clock of the close timeout.
    rt: Rt,
    /// Normalised settings.
    config: SchedulerConfig,
    /// Room for `limit + pending_limit` accepted jobs; `None` without limit.
    /// Each accepted job holds one permit until it ends.
    room: Option<Arc<Room>>,
    state: Mutex<State>,
    handler: RwLock<ErrorHandler>,
    /// Notified whenever the scheduler becomes idle ([`State::is_idle`]).
    idle: Event,
}

struct State {
    closed: bool,
    next_id: u64,
    /// Started jobs (from the moment they are taken from the queue).
    running: HashMap<JobId, Arc<JobCtl>>,
    pending: VecDeque<PendingJob>,
    /// Someone is in [`Shared::dispatch`]; others leave the work to it (this
    /// keeps FIFO order and avoids recursion when a spawned task is dropped
    /// synchronously by a runtime that is shutting down).
    dispatching: bool,
    /// Unstarted jobs taken from `pending` and being dropped outside the lock
    /// (by `close` or [`Job::close`]): the scheduler is not idle until their
    /// futures are gone and their ends counted.
    dropping: usize,
    /// Deadline of the close timeout, once `close` was called (`Some(None)`:
    /// the timeout is too large to represent, wait forever).
    close_deadline: Option<Option<Instant>>,
    /// Counted once closed.
    summary: CloseSummary,
}

impl State {
    /// No job is running, pending, or being dropped unstarted.
    fn is_idle(&self) -> bool {
        self.running.is_empty() && self.pending.is_empty() && self.dropping == 0
    }
}

struct PendingJob {
    id: JobId,
    ctl: Arc<JobCtl>,
    /// The job's [`JobTask`], spawned as it is when the job starts.
    task: BoxFuture<()>,
}

/// Per-job abort switch and completion flag, shared by the job's task, its
/// handle and the scheduler.
struct JobCtl {
    abort: Arc<AbortFlag>,
    done: AtomicBool,
}

impl JobCtl {
    fn new() -> Self {
        JobCtl {
            abort: Arc::new(AbortFlag::default()),
            done: AtomicBool::new(false),
        }
    }

    fn cancel(&self) {
        self.abort.abort();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts a job (its room permit already taken): queues it and lets the
    /// dispatcher start it if there is a free slot.
    fn admit<F, T, E>(
        self: &Arc<Self>,
        job: F,
        permit: Option<RoomPermit>,
    ) -> Result<Job<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + MaybeSend + 'static,
        T: MaybeSend + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + MaybeSend + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let ctl = Arc::new(JobCtl::new());
        let mut st = self.lock();
        if st.closed {
            drop(st);
            return Err(SpawnError::Closed);
        }
        st.next_id += 1;
        let id = JobId(st.next_id);
        let job: BoxFuture<Result<T, JobFailure>> =
            Box::pin(async move { job.await.map_err(|err| JobFailure::from(err.into())) });
        // The job runs in a span of its own when someone listens (no wrapper otherwise).
        let span = tracing::debug_span!(target: JOBS, "job", id = id.0);
        let job = if span.is_disabled() {
            job
        } else {
            use tracing::Instrument;
            Box::pin(job.instrument(span.clone()))
        };
        span.in_scope(|| tracing::debug!(target: JOBS, "job spawned"));
        let task = JobTask {
            run: Guarded::with_abort(job, Arc::clone(&ctl.abort)),
            fin: Some(Finisher {
                shared: Arc::clone(self),
                id,
                ctl: Arc::clone(&ctl),
                tx,
                permit,
                span,
            }),
        };
        st.pending.push_back(PendingJob {
            id,
            ctl: Arc::clone(&ctl),
            task: Box::pin(task),
        });
        drop(st);
        self.dispatch();
        Ok(Job {
            id,
            rx,
            ctl,
            shared: Arc::clone(self),
        })
    }

    /// Starts pending jobs, in FIFO order, while there are free slots.
    fn dispatch(&self) {
        let mut st = self.lock();
        if st.dispatching {
            // The active dispatcher re-checks after each start.
            return;
        }
        st.dispatching = true;
        loop {
            let full = self
                .config
                .limit
                .is_some_and(|limit| st.running.len() >= limit);
            if full || st.pending.is_empty() {
                break;
            }
            let Some(job) = st.pending.pop_front() else {
                break;
            };
            st.running.insert(job.id, job.ctl);
            // Never spawn under the lock: a shutting-down runtime drops the
            // task (and runs its finaliser, which locks) synchronously.
            // Detached: the task reports its own end.
            drop(st);
            self.rt.spawn(job.task);
            st = self.lock();
        }
        st.dispatching = false;
    }

    fn report(&self, err: JobError) {
        let handler = Arc::clone(&self.handler.read().unwrap_or_else(PoisonError::into_inner));
        let for_handler = err.clone();
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || handler(for_handler))) {
            eprintln!(
                "tether: the job error handler panicked ({}) while handling: {err}",
                panic_message(payload)
            );
        }
    }

    fn is_idle(&self) -> bool {
        self.lock().is_idle()
    }

    /// `count` unstarted jobs taken from the queue have been dropped.
    fn dropped(&self, count: usize) {
        let idle = {
            let mut st = self.lock();
            st.dropping -= count;
            st.is_idle()
        };
        if idle {
            self.idle.notify(usize::MAX);
        }
    }

    async fn wait_idle(&self) {
        loop {
            // Listen first, then check: a change between the two still wakes
            // the listener.
            let listener = self.idle.listen();
            if self.is_idle() {
                return;
            }
            listener.await;
        }
    }

    /// The shutdown. Every call (concurrent, or after a dropped one) runs it:
    /// the steps are idempotent, the deadline is the first call's, and the
    /// summary is final once the scheduler is closed and idle, so every call
    /// returns the same one.
    async fn close_jobs(&self) -> CloseSummary {
        let (unstarted, deadline) = {
            let mut st = self.lock();
            st.closed = true;
            let timeout = self.config.close_timeout;
            let deadline = *st
                .close_deadline
                .get_or_insert_with(|| self.rt.now().checked_add(timeout));
            let unstarted = std::mem::take(&mut st.pending);
            st.dropping += unstarted.len();
            (unstarted, deadline)
        };
        if let Some(room) = &self.room {
            room.close();
        }
        // Each dropped job reports itself cancelled and counts in the summary.
        let count = unstarted.len();
        if count > 0 {
            drop(unstarted);
            self.dropped(count);
        }
        if self.is_idle() {
            // Nothing runs: no timer needed (nor a runtime with one).
            return self.lock().summary;
        }
        let graceful = match deadline {
            Some(deadline) => {
                let idle = std::pin::pin!(self.wait_idle());
                match future::select(idle, self.rt.sleep_until(deadline)).await {
                    Either::Left(((), _)) => true,
                    Either::Right(((), _)) => false,
                }
            }
            None => {
                self.wait_idle().await;
                true
            }
        };
        if !graceful {
            let left: Vec<Arc<JobCtl>> = self.lock().running.values().cloned().collect();
            for ctl in left {
                ctl.cancel();
            }
            self.wait_idle().await;
        }
        self.lock().summary
    }
}

/// The room for accepted jobs (`limit + pending_limit` places): a counting
/// semaphore that serves waiting spawners first come first served (a place
/// given back goes straight to the oldest waiter, never to a newcomer nor to
/// `try_acquire`) and that can be closed, which fails every waiter.
struct Room {
    state: Mutex<RoomState>,
}

struct RoomState {
    /// Places nobody holds. Zero whenever somebody waits.
    free: usize,
    closed: bool,
    /// Spawners waiting for a place, oldest first.
    waiters: VecDeque<Arc<RoomWaiter>>,
}

/// One spawner waiting in [`RoomState::waiters`].
#[derive(Default)]
struct RoomWaiter {
    /// A place was handed to it (set under the room's lock, as it leaves the
    /// queue).
    granted: AtomicBool,
    waker: AtomicWaker,
}

/// A place in the [`Room`], given back when dropped.
struct RoomPermit {
    room: Arc<Room>,
}

impl Drop for RoomPermit {
    fn drop(&mut self) {
        self.room.release();
    }
}

impl Room {
    fn new(places: usize) -> Arc<Room> {
        Arc::new(Room {
            state: Mutex::new(RoomState {
                free: places,
                closed: false,
                waiters: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn permit(self: &Arc<Self>) -> RoomPermit {
        RoomPermit {
            room: Arc::clone(self),
        }
    }

    /// A place now, or [`SpawnError::Full`] / [`SpawnError::Closed`].
    fn try_acquire(self: &Arc<Self>) -> Result<RoomPermit, SpawnError> {
        let mut st = self.lock();
        if st.closed {
            Err(SpawnError::Closed)
        } else if st.free > 0 {
            st.free -= 1;
            Ok(self.permit())
        } else {
            Err(SpawnError::Full)
        }
    }

    /// Waits for a place, in turn; [`SpawnError::Closed`] if the room is (or
    /// gets) closed first. Dropped while it waits, it leaves the queue (and
    /// passes on a place it was handed meanwhile).
    fn acquire(self: &Arc<Self>) -> Acquire<'_> {
        Acquire {
            room: self,
            waiter: None,
        }
    }

    /// Fails every waiter and every later acquisition. Places still held are
    /// given back as usual.
    fn close(&self) {
        let waiters = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.waiters)
        };
        for waiter in waiters {
            waiter.waker.wake();
        }
    }

    /// Gives a place back: to the oldest waiter if there is one.
    fn release(&self) {
        let next = {
            let mut st = self.lock();
            let next = st.waiters.pop_front();
            match &next {
                Some(waiter) => waiter.granted.store(true, Ordering::Release),
                None => st.free += 1,
            }
            next
        };
        if let Some(waiter) = next {
            waiter.waker.wake();
        }
    }
}

/// The future of [`Room::acquire`].
struct Acquire<'a> {
    room: &'a Arc<Room>,
    /// Its place in the queue, once it waits.
    waiter: Option<Arc<RoomWaiter>>,
}

impl Future for Acquire<'_> {
    type Output = Result<RoomPermit, SpawnError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // Register before looking: a grant or a close after the look wakes
        // this waker.
        if let Some(waiter) = &this.waiter {
            waiter.waker.register(cx.waker());
        }
        let mut st = this.room.lock();
        if let Some(waiter) = &this.waiter {
            if waiter.granted.load(Ordering::Acquire) {
                drop(st);
                this.waiter = None;
                return Poll::Ready(Ok(this.room.permit()));
            }
            if st.closed {
                // `close` emptied the queue.
                drop(st);
                this.waiter = None;
                return Poll::Ready(Err(SpawnError::Closed));
            }
            return Poll::Pending;
        }
        if st.closed {
            return Poll::Ready(Err(SpawnError::Closed));
        }
        if st.free > 0 {
            st.free -= 1;
            drop(st);
            return Poll::Ready(Ok(this.room.permit()));
        }
        let waiter = Arc::new(RoomWaiter::default());
        waiter.waker.register(cx.waker());
        st.waiters.push_back(Arc::clone(&waiter));
        drop(st);
        this.waiter = Some(waiter);
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let granted = {
            let mut st = self.room.lock();
            let granted = waiter.granted.load(Ordering::Acquire);
            if !granted {
                st.waiters.retain(|other| !Arc::ptr_eq(other, &waiter));
            }
            granted
        };
        if granted {
            // Handed a place it will not use: pass it on.
            self.room.release();
        }
    }
}

/// Tells `tracing` how a job ended (see [`JOBS`]).
fn log_outcome<T>(outcome: &Result<T, JobError>, started: bool, closing: bool) {
    match outcome {
        Ok(_) => tracing::debug!(target: JOBS, "job finished"),
        Err(JobError::Failed { source, .. }) => {
            tracing::warn!(target: JOBS, error = %source, "job failed");
        }
        Err(JobError::Panicked { message, .. }) => {
            tracing::warn!(target: JOBS, panic = %message, "job panicked");
        }
        Err(JobError::Cancelled { .. }) => {
            tracing::debug!(target: JOBS, started, closing, "job cancelled");
        }
    }
}

/// The future of a job's task: the job in the crate's panic and abort guard
/// ([`Guarded`]), and the report of its outcome, exactly once (also when
/// dropped unfinished: cancelled, or never started).
struct JobTask<T> {
    run: Guarded<BoxFuture<Result<T, JobFailure>>>,
    fin: Option<Finisher<T>>,
}

struct Finisher<T> {
    shared: Arc<Shared>,
    id: JobId,
    ctl: Arc<JobCtl>,
    tx: oneshot::Sender<Result<T, JobError>>,
    permit: Option<RoomPermit>,
    /// The job's span (disabled when nobody listens), for the event of its end.
    span: tracing::Span,
}

impl<T> JobTask<T> {
    fn finish(&mut self, outcome: Result<Result<T, JobFailure>, TaskError>) {
        if let Some(fin) = self.fin.take() {
            let id = fin.id;
            fin.finish(match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(source)) => Err(JobError::Failed { id, source }),
                Err(TaskError::Panicked(payload)) => Err(JobError::Panicked {
                    id,
                    message: panic_message(payload),
                }),
                Err(TaskError::Cancelled) => Err(JobError::Cancelled { id }),
            });
        }
    }
}

impl<T> Future for JobTask<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.fin.is_none() {
            return Poll::Ready(());
        }
        let outcome = std::task::ready!(Pin::new(&mut this.run).poll(cx));
        this.finish(outcome);
        Poll::Ready(())
    }
}

impl<T> Drop for JobTask<T> {
    fn drop(&mut self) {
        // Unfinished: cancelled while pending, or the task was dropped by a
        // runtime shutting down.
        if self.fin.is_some() {
            let cancelled = self.run.cancel();
            self.finish(Err(cancelled));
        }
    }
}

impl<T> Finisher<T> {
    fn finish(self, outcome: Result<T, JobError>) {
        let Finisher {
            shared,
            id,
            ctl,
            tx,
            permit,
            span,
        } = self;
        // 1. Report before the job stops counting, so that `close` returning
        //    implies the handler saw everything.
        if let Err(err) = &outcome {
            if !matches!(err, JobError::Cancelled { .. }) {
                shared.report(err.clone());
            }
        }
        // 2. Bookkeeping.
        let (idle, started) = {
            let mut st = shared.lock();
            // Started: taken from the pending queue into `running`.
            let started = st.running.remove(&id).is_some();
            span.in_scope(|| log_outcome(&outcome, started, st.closed));
            if st.closed {
                let summary = &mut st.summary;
                match &outcome {
                    Ok(_) => summary.finished += 1,
                    Err(JobError::Cancelled { .. }) if started => summary.aborted += 1,
                    Err(JobError::Cancelled { .. }) => summary.cancelled_pending += 1,
                    Err(_) => {
                        summary.finished += 1;
                        summary.failed += 1;
                    }
                }
            }
            (st.is_idle(), started)
        };
        // 3. Free the room and the slot.
        drop(permit);
        if started {
            shared.dispatch();
        }
        if idle {
            shared.idle.notify(usize::MAX);
        }
        // 4. Deliver the outcome to the handle, if anybody still holds it.
        ctl.done.store(true, Ordering::Release);
        if let Err(unsent) = tx.send(outcome) {
            drop_quietly(unsent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::rt;
    use futures_util::FutureExt;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::sync::watch;

    type Res<T> = Result<T, String>;

    /// A [`JobError`] as plain, comparable data: its kind, its job and its text
    /// (a failure's source as its `Display`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Plain {
        Failed { id: JobId, message: String },
        Panicked { id: JobId, message: String },
        Cancelled { id: JobId },
    }

    fn plain(err: &JobError) -> Plain {
        match err {
            JobError::Failed { id, source } => Plain::Failed {
                id: *id,
                message: source.to_string(),
            },
            JobError::Panicked { id, message } => Plain::Panicked {
                id: *id,
                message: message.clone(),
            },
            JobError::Cancelled { id } => Plain::Cancelled { id: *id },
        }
    }

    /// A job's outcome with its error as [`Plain`].
    fn outcome<T>(result: Result<T, JobError>) -> Result<T, Plain> {
        result.map_err(|err| plain(&err))
    }

    /// A door jobs wait at until it is opened.
    struct Gate(watch::Sender<bool>);

    impl Gate {
        fn new() -> Arc<Gate> {
            Arc::new(Gate(watch::channel(false).0))
        }
        fn open(&self) {
            self.0.send_replace(true);
        }
        async fn wait(&self) {
            let mut rx = self.0.subscribe();
            let _ = rx.wait_for(|open| *open).await;
        }
    }

    fn recorder(s: &Scheduler) -> Arc<Mutex<Vec<JobError>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        s.set_error_handler(move |err| sink.lock().unwrap().push(err));
        seen
    }

    fn gated(gate: &Arc<Gate>) -> impl Future<Output = Res<()>> + Send + 'static {
        let gate = Arc::clone(gate);
        async move {
            gate.wait().await;
            Ok(())
        }
    }

    fn forever(tracker: &Arc<()>) -> impl Future<Output = Res<()>> + Send + 'static {
        let tracker = Arc::clone(tracker);
        async move {
            let _tracker = tracker;
            std::future::pending::<()>().await;
            Ok(())
        }
    }

    fn panics_with_str() -> Res<()> {
        panic!("static message")
    }

    fn panics_with_u32() -> Res<()> {
        std::panic::panic_any(17u32)
    }

    /// Panics with a formatted (`String`) payload.
    fn explode<X>(n: u32) -> X {
        panic!("formatted {n}")
    }

    fn config(limit: usize) -> SchedulerConfig {
        SchedulerConfig::default().with_limit(limit)
    }

    #[test]
    fn config_defaults_and_builders() {
        let c = SchedulerConfig::default();
        assert_eq!(c.limit, Some(100));
        assert_eq!(c.pending_limit, 10_000);
        assert_eq!(c.close_timeout, Duration::from_secs(10));
        let c = c
            .with_limit(None)
            .with_pending_limit(0)
            .with_close_timeout(Duration::from_millis(5));
        assert_eq!(c.limit, None);
        assert_eq!(c.pending_limit, 0);
        assert_eq!(c.close_timeout, Duration::from_millis(5));
        assert_eq!(config(7).limit, Some(7));
        // No runtime needed to build one; a zero limit becomes one.
        let s = Scheduler::new(config(0), rt());
        assert_eq!(s.config().limit, Some(1));
        assert_eq!(
            (s.active_count(), s.pending_count(), s.is_closed()),
            (0, 0, false)
        );
        assert!(format!("{s:?}").contains("Scheduler"));
    }

    #[test]
    fn closing_an_idle_scheduler_needs_no_runtime() {
        let s = Scheduler::new(SchedulerConfig::default(), rt());
        let summary = s.close().now_or_never();
        assert_eq!(summary, Some(CloseSummary::default()));
        assert!(s.is_closed());
    }

    #[test]
    fn futures_and_handles_are_send() {
        fn assert_send<X: Send>(_: &X) {}
        let s = Scheduler::new(SchedulerConfig::default(), rt());
        let fut = s.spawn(async { Res::Ok(1u8) });
        assert_send(&fut);
        assert_send(&s.close());
        drop(fut);
    }

    #[tokio::test(start_paused = true)]
    async fn limit_is_respected_current_thread() {
        let s = Scheduler::new(config(3), rt());
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for i in 0..20u64 {
            let (now, max) = (Arc::clone(&now), Arc::clone(&max));
            let job = s
                .spawn(async move {
                    let n = now.fetch_add(1, SeqCst) + 1;
                    max.fetch_max(n, SeqCst);
                    tokio::time::sleep(Duration::from_millis(10 + i % 3)).await;
                    now.fetch_sub(1, SeqCst);
                    Res::Ok(i)
                })
                .await
                .unwrap();
            jobs.push(job);
            assert!(s.active_count() <= 3);
        }
        assert_eq!((s.active_count(), s.pending_count()), (3, 17));
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(outcome(job.wait().await), Ok(i as u64));
        }
        assert_eq!(max.load(SeqCst), 3);
        assert_eq!((s.active_count(), s.pending_count()), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn limit_is_respected_multi_thread() {
        let s = Scheduler::new(config(4).with_pending_limit(16), rt());
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let tracker = Arc::new(());
        let mut jobs = Vec::new();
        for i in 0..200usize {
            let (now, max, tracker) = (Arc::clone(&now), Arc::clone(&max), Arc::clone(&tracker));
            // 200 jobs through a queue of 16: also exercises spawn's waiting.
            let job = s
                .spawn(async move {
                    let _tracker = tracker;
                    let n = now.fetch_add(1, SeqCst) + 1;
                    max.fetch_max(n, SeqCst);
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    tokio::time::sleep(Duration::from_micros(100)).await;
                    now.fetch_sub(1, SeqCst);
                    if i % 10 == 0 {
                        return Err(format!("job {i} says no"));
                    }
                    Ok(i)
                })
                .await
                .unwrap();
            jobs.push(job);
        }
        let mut failed = 0;
        for (i, job) in jobs.into_iter().enumerate() {
            match job.wait().await {
                Ok(v) => assert_eq!(v, i),
                Err(JobError::Failed { source, .. }) => {
                    assert_eq!(source.to_string(), format!("job {i} says no"));
                    failed += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(failed, 20);
        assert!(
            max.load(SeqCst) <= 4,
            "max concurrency {}",
            max.load(SeqCst)
        );
        assert!(max.load(SeqCst) >= 1);
        let summary = s.close().await;
        assert_eq!(summary, CloseSummary::default());
        assert_eq!(Arc::strong_count(&tracker), 1);
    }

    #[tokio::test]
    async fn no_limit_runs_everything_at_once() {
        let s = Scheduler::new(
            SchedulerConfig::default()
                .with_limit(None)
                .with_pending_limit(0),
            rt(),
        );
        let gate = Gate::new();
        let jobs: Vec<_> = (0..50)
            .map(|_| s.try_spawn(gated(&gate)).unwrap())
            .collect();
        assert_eq!((s.active_count(), s.pending_count()), (50, 0));
        gate.open();
        for job in jobs {
            job.wait().await.unwrap();
        }
        assert_eq!(s.active_count(), 0);
    }

    #[tokio::test]
    async fn pending_jobs_start_in_fifo_order() {
        for limit in [1, 2] {
            let s = Scheduler::new(config(limit), rt());
            let gate = Gate::new();
            let order = Arc::new(Mutex::new(Vec::new()));
            let blockers: Vec<_> = (0..limit)
                .map(|_| s.try_spawn(gated(&gate)).unwrap())
                .collect();
            let mut jobs = Vec::new();
            for i in 0..10 {
                let order = Arc::clone(&order);
                jobs.push(
                    s.spawn(async move {
                        order.lock().unwrap().push(i);
                        tokio::task::yield_now().await;
                        Res::Ok(())
                    })
                    .await
                    .unwrap(),
                );
            }
            assert_eq!((s.active_count(), s.pending_count()), (limit, 10));
            assert!(order.lock().unwrap().is_empty());
            gate.open();
            for job in blockers.into_iter().chain(jobs) {
                job.wait().await.unwrap();
            }
            assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
        }
    }

    #[tokio::test]
    async fn try_spawn_fails_when_queue_is_full() {
        let s = Scheduler::new(config(1).with_pending_limit(2), rt());
        let gate = Gate::new();
        let running = s.try_spawn(gated(&gate)).unwrap();
        let first_pending = s.try_spawn(gated(&gate)).unwrap();
        let _second_pending = s.try_spawn(gated(&gate)).unwrap();
        assert_eq!((s.active_count(), s.pending_count()), (1, 2));
        assert_eq!(s.try_spawn(gated(&gate)).unwrap_err(), SpawnError::Full);
        // `spawn` would wait instead.
        assert!(s.spawn(gated(&gate)).now_or_never().is_none());
        // Cancelling a pending job makes room.
        first_pending.close().await;
        assert_eq!(s.pending_count(), 1);
        let third = s.try_spawn(gated(&gate)).unwrap();
        assert_eq!(s.try_spawn(gated(&gate)).unwrap_err(), SpawnError::Full);
        gate.open();
        running.wait().await.unwrap();
        third.wait().await.unwrap();

        // pending_limit 0: no queue at all.
        let s = Scheduler::new(config(1).with_pending_limit(0), rt());
        let gate = Gate::new();
        let _running = s.try_spawn(gated(&gate)).unwrap();
        assert_eq!(s.try_spawn(gated(&gate)).unwrap_err(), SpawnError::Full);
    }

    #[tokio::test]
    async fn spawn_waits_for_room() {
        let s = Scheduler::new(config(1).with_pending_limit(0), rt());
        let gate = Gate::new();
        let first_done = Arc::new(AtomicBool::new(false));
        let first = s
            .spawn({
                let (gate, done) = (Arc::clone(&gate), Arc::clone(&first_done));
                async move {
                    gate.wait().await;
                    done.store(true, SeqCst);
                    Res::Ok(1)
                }
            })
            .await
            .unwrap();
        let saw_first_done = Arc::new(AtomicBool::new(false));
        let mut second = std::pin::pin!(s.spawn({
            let (first_done, saw) = (Arc::clone(&first_done), Arc::clone(&saw_first_done));
            async move {
                saw.store(first_done.load(SeqCst), SeqCst);
                Res::Ok(2)
            }
        }));
        for _ in 0..5 {
            assert!(second.as_mut().now_or_never().is_none());
            tokio::task::yield_now().await;
        }
        assert_eq!((s.active_count(), s.pending_count()), (1, 0));
        gate.open();
        let second = second.await.unwrap();
        assert_eq!(outcome(second.wait().await), Ok(2));
        assert!(saw_first_done.load(SeqCst));
        assert_eq!(outcome(first.wait().await), Ok(1));
    }

    #[tokio::test]
    async fn error_handler_sees_failures_and_panics_of_unawaited_jobs() {
        let s = Scheduler::new(config(5), rt());
        let seen = recorder(&s);
        drop(
            s.try_spawn(async { Res::<()>::Err("boom".into()) })
                .unwrap(),
        );
        drop(s.try_spawn(async { panics_with_str() }).unwrap());
        drop(s.try_spawn(async { explode::<Res<()>>(7) }).unwrap());
        drop(s.try_spawn(async { Res::Ok(5) }).unwrap());
        drop(s.try_spawn(async { panics_with_u32() }).unwrap());
        let summary = s.close().await;
        assert_eq!(summary.finished, 5);
        assert_eq!(summary.failed, 4);
        assert_eq!(summary.cancelled(), 0);
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_by_key(JobError::id);
        let ids: Vec<u64> = seen.iter().map(|e| e.id().as_u64()).collect();
        assert_eq!(ids, [1, 2, 3, 5]);
        assert_eq!(
            plain(&seen[0]),
            Plain::Failed {
                id: JobId(1),
                message: "boom".into()
            }
        );
        assert_eq!(
            plain(&seen[1]),
            Plain::Panicked {
                id: JobId(2),
                message: "static message".into()
            }
        );
        assert_eq!(
            plain(&seen[2]),
            Plain::Panicked {
                id: JobId(3),
                message: "formatted 7".into()
            }
        );
        assert_eq!(
            plain(&seen[3]),
            Plain::Panicked {
                id: JobId(5),
                message: "non-string panic payload".into()
            }
        );
        assert_eq!(seen[0].to_string(), "job 1 failed: boom");
        assert_eq!(seen[1].to_string(), "job 2 panicked: static message");
    }

    #[tokio::test]
    async fn awaited_errors_reach_both_the_waiter_and_the_handler_once() {
        let s = Scheduler::new(SchedulerConfig::default(), rt());
        let seen = recorder(&s);
        let failing = s
            .spawn(async { Res::<()>::Err("bad".into()) })
            .await
            .unwrap();
        let id = failing.id();
        let expected = Plain::Failed {
            id,
            message: "bad".into(),
        };
        assert_eq!(outcome(failing.wait().await), Err(expected.clone()));
        // The handler ran before the waiter was woken.
        let handled: Vec<Plain> = seen.lock().unwrap().iter().map(plain).collect();
        assert_eq!(handled, [expected]);
        s.close().await;
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_job_keeps_its_error_as_the_source() {
        use std::error::Error as _;
        use std::io;
        let s = Scheduler::new(SchedulerConfig::default(), rt());
        let seen = recorder(&s);
        let job = s
            .spawn(async { Err::<(), _>(io::Error::new(io::ErrorKind::NotFound, "no such file")) })
            .await
            .unwrap();
        let err = job.wait().await.unwrap_err();
        let JobError::Failed { id, source } = &err else {
            panic!("not a failure: {err:?}");
        };
        assert_eq!(*id, JobId(1));
        let typed = source
            .downcast_ref::<io::Error>()
            .expect("the job's io::Error");
        assert_eq!(typed.kind(), io::ErrorKind::NotFound);
        // The same error through the standard error chain.
        let chained = err.source().expect("a source");
        assert_eq!(
            chained.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::NotFound)
        );
        assert_eq!(err.to_string(), "job 1 failed: no such file");
        // The handler got the very same error.
        let handled = seen.lock().unwrap()[0].clone();
        match handled {
            JobError::Failed { source: other, .. } => assert!(Arc::ptr_eq(source, &other)),
            other => panic!("{other:?}"),
        }

        // `String` and `&str` errors keep their text.
        let job = s
            .spawn(async { Err::<(), _>(format!("bad input {}", 7)) })
            .await
            .unwrap();
        match job.wait().await {
            Err(JobError::Failed { source, .. }) => assert_eq!(source.to_string(), "bad input 7"),
            other => panic!("{other:?}"),
        }
        let job = s
            .spawn(async { Err::<(), _>("static text") })
            .await
            .unwrap();
        let err = job.wait().await.unwrap_err();
        assert_eq!(err.to_string(), "job 3 failed: static text");
        assert_eq!(err.source().unwrap().to_string(), "static text");
        assert_eq!(seen.lock().unwrap().len(), 3);
        s.close().await;
    }

    /// Panics when dropped.
    struct PanicOnDrop;

    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop boom");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_while_a_job_is_dropped_is_reported() {
        let s = Scheduler::new(config(1).with_close_timeout(Duration::from_secs(1)), rt());
        let seen = recorder(&s);
        // Running, then cancelled by close.
        let running = s
            .spawn(async {
                let _bomb = PanicOnDrop;
                std::future::pending::<()>().await;
                Res::Ok(())
            })
            .await
            .unwrap();
        // Pending, dropped unstarted: its future owns the bomb.
        let bomb = PanicOnDrop;
        let pending = s
            .spawn(async move {
                let _bomb = bomb;
                Res::Ok(())
            })
            .await
            .unwrap();
        tokio::task::yield_now().await;
        let summary = s.close().await;
        assert_eq!(summary.cancelled(), 0);
        assert_eq!(summary.failed, 2);
        for job in [running, pending] {
            let id = job.id();
            assert_eq!(
                outcome(job.wait().await),
                Err(Plain::Panicked {
                    id,
                    message: "drop boom".into()
                })
            );
        }
        let mut handled: Vec<Plain> = seen.lock().unwrap().iter().map(plain).collect();
        handled.sort_by_key(|p| match p {
            Plain::Failed { id, .. } | Plain::Panicked { id, .. } | Plain::Cancelled { id } => *id,
        });
        assert_eq!(
            handled,
            [
                Plain::Panicked {
                    id: JobId(1),
                    message: "drop boom".into()
                },
                Plain::Panicked {
                    id: JobId(2),
                    message: "drop boom".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_does_not_break_the_scheduler() {
        let s = Scheduler::new(SchedulerConfig::default(), rt());
        s.set_error_handler(|_| panic!("handler bug"));
        let job = s.spawn(async { Res::<()>::Err("x".into()) }).await.unwrap();
        assert!(matches!(job.wait().await, Err(JobError::Failed { .. })));
        let ok = s.spawn(async { Res::Ok(1) }).await.unwrap();
        assert_eq!(outcome(ok.wait().await), Ok(1));
        assert_eq!(s.close().await.cancelled(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_returns_every_kind_of_outcome() {
        let s = Scheduler::new(config(4).with_close_timeout(Duration::from_secs(1)), rt());
        let seen = recorder(&s);
        let ok = s.spawn(async { Res::Ok(42) }).await.unwrap();
        let failed = s
            .spawn(async { Res::<i32>::Err("nope".into()) })
            .await
            .unwrap();
        let panicked = s
            .spawn(async {
                tokio::task::yield_now().await;
                explode::<Res<i32>>(3)
            })
            .await
            .unwrap();
        assert_eq!(outcome(ok.wait().await), Ok(42));
        assert_eq!(
            outcome(failed.wait().await),
            Err(Plain::Failed {
                id: JobId(2),
                message: "nope".into()
            })
        );
        assert_eq!(
            outcome(panicked.wait().await),
            Err(Plain::Panicked {
                id: JobId(3),
                message: "formatted 3".into()
            })
        );

        // Cancelled: a running job aborted by close, a pending one dropped.
        let s2 = Scheduler::new(config(1).with_close_timeout(Duration::from_secs(1)), rt());
        let tracker = Arc::new(());
        let running = s2.spawn(forever(&tracker)).await.unwrap();
        let pending = s2.spawn(forever(&tracker)).await.unwrap();
        assert!(!running.is_finished() && !pending.is_finished());
        let summary = s2.close().await;
        assert_eq!(
            summary,
            CloseSummary {
                finished: 0,
                failed: 0,
                aborted: 1,
                cancelled_pending: 1
            }
        );
        assert!(running.is_finished() && pending.is_finished());
        assert_eq!(
            outcome(running.wait().await),
            Err(Plain::Cancelled { id: JobId(1) })
        );
        assert_eq!(
            outcome(pending.wait().await),
            Err(Plain::Cancelled { id: JobId(2) })
        );
        assert_eq!(Arc::strong_count(&tracker), 1);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn job_close_cancels_running_and_pending_jobs() {
        let s = Scheduler::new(config(1), rt());
        let seen = recorder(&s);
        let tracker = Arc::new(());
        let running = s.spawn(forever(&tracker)).await.unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let pending = s
            .spawn({
                let ran = Arc::clone(&ran);
                async move {
                    ran.store(true, SeqCst);
                    Res::Ok(())
                }
            })
            .await
            .unwrap();
        tokio::task::yield_now().await;
        assert_eq!(Arc::strong_count(&tracker), 2);
        assert_eq!((s.active_count(), s.pending_count()), (1, 1));

        // A pending job goes away at once and never runs.
        pending.close().await;
        assert_eq!((s.active_count(), s.pending_count()), (1, 0));
        assert!(!ran.load(SeqCst));

        // A running job is cancelled; its future (and the Arc) is gone after.
        running.close().await;
        assert_eq!(Arc::strong_count(&tracker), 1);
        assert_eq!((s.active_count(), s.pending_count()), (0, 0));

        // Closing a job that already ended is harmless.
        let done = s.spawn(async { Res::Ok(()) }).await.unwrap();
        while !done.is_finished() {
            tokio::task::yield_now().await;
        }
        done.close().await;
        assert!(
            seen.lock().unwrap().is_empty(),
            "cancellation is not an error"
        );
        assert_eq!(s.close().await, CloseSummary::default());
    }

    #[tokio::test(start_paused = true)]
    async fn close_waits_for_running_jobs() {
        let s = Scheduler::new(config(4), rt());
        let done = Arc::new(AtomicBool::new(false));
        let job = s
            .spawn({
                let done = Arc::clone(&done);
                async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    done.store(true, SeqCst);
                    Res::Ok("done")
                }
            })
            .await
            .unwrap();
        let start = tokio::time::Instant::now();
        let summary = s.close().await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(6),
            "{elapsed:?}"
        );
        assert!(done.load(SeqCst));
        assert_eq!(
            summary,
            CloseSummary {
                finished: 1,
                ..CloseSummary::default()
            }
        );
        assert_eq!(outcome(job.wait().await), Ok("done"));
        assert!(s.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn close_aborts_jobs_still_running_after_the_timeout() {
        let s = Scheduler::new(config(2).with_close_timeout(Duration::from_secs(10)), rt());
        let seen = recorder(&s);
        let tracker = Arc::new(());
        let short = s
            .spawn({
                let tracker = Arc::clone(&tracker);
                async move {
                    let _tracker = tracker;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Res::<()>::Err("late failure".into())
                }
            })
            .await
            .unwrap();
        let completed = Arc::new(AtomicBool::new(false));
        let long = s
            .spawn({
                let (tracker, completed) = (Arc::clone(&tracker), Arc::clone(&completed));
                async move {
                    let _tracker = tracker;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    completed.store(true, SeqCst);
                    Res::Ok(())
                }
            })
            .await
            .unwrap();
        let queued = s.spawn(forever(&tracker)).await.unwrap();
        assert_eq!((s.active_count(), s.pending_count()), (2, 1));

        let start = tokio::time::Instant::now();
        let summary = s.close().await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(10) && elapsed < Duration::from_secs(11),
            "{elapsed:?}"
        );
        assert_eq!(
            summary,
            CloseSummary {
                finished: 1,
                failed: 1,
                aborted: 1,
                cancelled_pending: 1
            }
        );
        assert_eq!(summary.cancelled(), 2);
        assert!(!completed.load(SeqCst));
        assert_eq!(Arc::strong_count(&tracker), 1);
        assert_eq!((s.active_count(), s.pending_count()), (0, 0));
        assert!(matches!(short.wait().await, Err(JobError::Failed { .. })));
        assert!(matches!(long.wait().await, Err(JobError::Cancelled { .. })));
        assert!(matches!(
            queued.wait().await,
            Err(JobError::Cancelled { .. })
        ));
        assert_eq!(seen.lock().unwrap().len(), 1);

        // Later and concurrent calls return the same summary.
        let other = s.clone();
        let (a, b) = tokio::join!(s.close(), other.close());
        assert_eq!((a, b), (summary, summary));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_close_calls_share_one_shutdown() {
        let s = Scheduler::new(config(2).with_close_timeout(Duration::from_secs(3)), rt());
        let tracker = Arc::new(());
        for _ in 0..3 {
            drop(s.spawn(forever(&tracker)).await.unwrap());
        }
        let (a, b) = tokio::join!(s.close(), s.close());
        assert_eq!(
            a,
            CloseSummary {
                aborted: 2,
                cancelled_pending: 1,
                ..CloseSummary::default()
            }
        );
        assert_eq!(a, b);
        assert_eq!(Arc::strong_count(&tracker), 1);
    }

    #[tokio::test]
    async fn spawn_after_close_fails() {
        let s = Scheduler::new(SchedulerConfig::default(), rt());
        assert_eq!(s.close().await, CloseSummary::default());
        assert!(s.is_closed());
        assert_eq!(
            s.spawn(async { Res::Ok(()) }).await.unwrap_err(),
            SpawnError::Closed
        );
        assert_eq!(
            s.try_spawn(async { Res::Ok(()) }).unwrap_err(),
            SpawnError::Closed
        );
        assert_eq!(
            SpawnError::Closed.to_string(),
            "the job scheduler is closed"
        );
    }

    #[tokio::test]
    async fn waiting_spawners_get_room_in_turn_and_a_dropped_one_passes_it_on() {
        let s = Scheduler::new(config(1).with_pending_limit(0), rt());
        let gate = Gate::new();
        let first = s.try_spawn(gated(&gate)).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let job = |name: &'static str| {
            let order = Arc::clone(&order);
            async move {
                order.lock().unwrap().push(name);
                Res::Ok(name)
            }
        };
        let mut a = Box::pin(s.spawn(job("a")));
        let mut b = Box::pin(s.spawn(job("b")));
        let mut c = Box::pin(s.spawn(job("c")));
        for waiting in [a.as_mut(), b.as_mut(), c.as_mut()] {
            assert!(waiting.now_or_never().is_none());
        }
        // b leaves the queue while it waits.
        drop(b);
        gate.open();
        first.wait().await.unwrap();
        // The place went to a, the oldest waiter: not to a newcomer.
        assert_eq!(s.try_spawn(job("late")).unwrap_err(), SpawnError::Full);
        // a leaves without using it: it goes on to c, not to a newcomer.
        drop(a);
        assert_eq!(s.try_spawn(job("late")).unwrap_err(), SpawnError::Full);
        let c = c.await.unwrap();
        assert_eq!(outcome(c.wait().await), Ok("c"));
        // Free again.
        let late = s.try_spawn(job("late")).unwrap();
        assert_eq!(outcome(late.wait().await), Ok("late"));
        assert_eq!(*order.lock().unwrap(), ["c", "late"]);
        assert_eq!(s.close().await, CloseSummary::default());
    }

    #[tokio::test(start_paused = true)]
    async fn a_spawn_waiting_for_room_fails_when_the_scheduler_closes() {
        let s = Scheduler::new(
            config(1)
                .with_pending_limit(0)
                .with_close_timeout(Duration::from_secs(1)),
            rt(),
        );
        let tracker = Arc::new(());
        let _running = s.spawn(forever(&tracker)).await.unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let waiter = tokio::spawn({
            let (s, ran) = (s.clone(), Arc::clone(&ran));
            async move {
                s.spawn(async move {
                    ran.store(true, SeqCst);
                    Res::Ok(())
                })
                .await
                .map(|job| job.id())
            }
        });
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        let summary = s.close().await;
        assert_eq!(waiter.await.unwrap(), Err(SpawnError::Closed));
        assert!(!ran.load(SeqCst));
        assert_eq!(summary.aborted, 1);
        assert_eq!(Arc::strong_count(&tracker), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_job_task_is_left_after_close() {
        let s = Scheduler::new(config(10).with_close_timeout(Duration::from_secs(2)), rt());
        let tracker = Arc::new(());
        let mut kept = Vec::new();
        for i in 0..50u64 {
            let tracker = Arc::clone(&tracker);
            let job = s
                .spawn(async move {
                    let _tracker = tracker;
                    match i % 3 {
                        0 => tokio::time::sleep(Duration::from_millis(100 * i)).await,
                        1 => std::future::pending::<()>().await,
                        _ => tokio::task::yield_now().await,
                    }
                    Res::Ok(i)
                })
                .await
                .unwrap();
            if i % 2 == 0 {
                kept.push(job);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let summary = s.close().await;
        assert_eq!(Arc::strong_count(&tracker), 1);
        assert_eq!((s.active_count(), s.pending_count()), (0, 0));
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            0
        );
        assert!(summary.finished + summary.cancelled() <= 50);
        assert!(summary.aborted > 0 && summary.cancelled_pending > 0);
        for job in kept {
            assert!(job.is_finished());
        }
    }

    #[test]
    fn runtime_shutdown_cancels_jobs_without_recursion() {
        let s = Scheduler::new(config(1).with_pending_limit(20_000), rt());
        let seen = recorder(&s);
        let tracker = Arc::new(());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let jobs: Vec<_> = rt.block_on(async {
            let jobs: Vec<_> = (0..10_000)
                .map(|_| s.try_spawn(forever(&tracker)).unwrap())
                .collect();
            tokio::task::yield_now().await;
            jobs
        });
        assert_eq!((s.active_count(), s.pending_count()), (1, 9_999));
        // Dropping the runtime drops the running task; each pending job is
        // then started on the dead runtime and dropped at once.
        drop(rt);
        assert_eq!(Arc::strong_count(&tracker), 1);
        assert_eq!((s.active_count(), s.pending_count()), (0, 0));
        assert!(jobs.iter().all(Job::is_finished));
        assert!(seen.lock().unwrap().is_empty());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for job in jobs {
                assert!(matches!(job.wait().await, Err(JobError::Cancelled { .. })));
            }
            assert_eq!(s.close().await, CloseSummary::default());
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_closes_on_threads_return_only_when_all_is_gone() {
        for _ in 0..20 {
            // No grace: the running job is cancelled at once, while another
            // closer may still be dropping the pending ones.
            let s = Scheduler::new(
                config(1)
                    .with_pending_limit(5_000)
                    .with_close_timeout(Duration::ZERO),
                rt(),
            );
            let tracker = Arc::new(());
            for _ in 0..2_000 {
                drop(s.try_spawn(forever(&tracker)).unwrap());
            }
            tokio::task::yield_now().await;
            let closers: Vec<_> = (0..3)
                .map(|_| {
                    let (s, tracker) = (s.clone(), Arc::downgrade(&tracker));
                    tokio::spawn(async move {
                        let summary = s.close().await;
                        (summary, std::sync::Weak::strong_count(&tracker))
                    })
                })
                .collect();
            for closer in closers {
                let (summary, alive) = closer.await.unwrap();
                assert_eq!(
                    summary,
                    CloseSummary {
                        aborted: 1,
                        cancelled_pending: 1_999,
                        ..CloseSummary::default()
                    }
                );
                assert_eq!(alive, 1, "job futures alive after close returned");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn multi_thread_close_with_cancellations_leaves_nothing() {
        let s = Scheduler::new(
            config(8)
                .with_pending_limit(100)
                .with_close_timeout(Duration::from_millis(50)),
            rt(),
        );
        let seen = recorder(&s);
        let tracker = Arc::new(());
        let mut to_close = Vec::new();
        for i in 0..100u32 {
            let tracker = Arc::clone(&tracker);
            let job = s
                .try_spawn(async move {
                    let _tracker = tracker;
                    tokio::task::yield_now().await;
                    match i % 4 {
                        0 => std::future::pending::<()>().await,
                        1 => return Err(format!("failure {i}")),
                        2 => panic!("panic {i}"),
                        _ => {}
                    }
                    Ok(i)
                })
                .unwrap();
            if i % 5 == 0 {
                to_close.push(job);
            }
        }
        let closers: Vec<_> = to_close
            .into_iter()
            .map(|job| tokio::spawn(job.close()))
            .collect();
        let summary = s.close().await;
        for closer in closers {
            closer.await.unwrap();
        }
        assert_eq!(Arc::strong_count(&tracker), 1);
        assert_eq!((s.active_count(), s.pending_count()), (0, 0));
        let errors = seen.lock().unwrap().len();
        // Every failure or panic reported once (some may be cancelled first).
        assert!(errors <= 50);
        let mut ids: Vec<_> = seen.lock().unwrap().iter().map(JobError::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), errors);
        assert!(summary.finished + summary.cancelled() <= 100);
    }
}
