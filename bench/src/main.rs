//! # tether-bench
//!
//! Requests per second of tether's pooled [`tether_tokio::Client`] against hyper-util's
//! pooled legacy client (`hyper_util::client::legacy::Client` over `HttpConnector`, with
//! `Full<Bytes>` request bodies), both talking HTTP/1.1 with keep-alive to the same local
//! server and both reading the whole response body of every request.
//!
//! Setup (see `BENCHMARKS.md`):
//!
//! * The server runs on its own OS thread with its own current-thread tokio runtime (one
//!   thread does all the server work). By default it is a hyper 1.x `server::conn::http1`
//!   server answering `Hello, World!` (13 bytes, `text/plain`) to every request, keep-alive
//!   on; `--server tether` uses `tether_tokio::Server` with a one-route `App` instead.
//! * The clients run on a second, multi-thread tokio runtime (`--client-workers`, default 1).
//!   Every scenario is spawned as a task on it, so the request loop runs on a worker thread.
//! * Threads are pinned (`--layout`): `1 CPU` puts the server and the client threads on
//!   CPU 0 (the rate is then bounded by the CPU time a request costs, server and client
//!   together); `2 CPUs` puts the server on CPU 1 and the clients on CPU 0 (sequential is
//!   then bounded by the cross-CPU wake-up latency, concurrent by the busier side). Left to
//!   the OS, the placement changes from run to run and moves the sequential rate five-fold
//!   on a small VM.
//! * Scenarios: `sequential` (one request at a time, N = 30 000 after a 2 000-request
//!   warm-up) and `concurrent` (16 tasks sharing one client, N = 100 000 in all, after a
//!   warm-up that opens the 16 connections). Each is timed by wall clock and run 5 times per
//!   client (a fresh client each time, the order of the two clients alternating); the
//!   median counts. A full run takes about a minute and a half on 2 cores; `--quick` is a
//!   smoke run (N = 5 000 / 10 000, one run) of a few seconds.
//! * Besides requests/s, each run reports the client thread's CPU time per request
//!   (`CLOCK_THREAD_CPUTIME_ID`) and its heap allocations per request (a counting global
//!   allocator, per thread). With one client worker, all client work (hyper-util's
//!   connection tasks included) runs on that thread; these two figures are much steadier
//!   than requests/s when other work shares the machine.
//!
//! The other binaries (`src/bin/`): `hyper_hello`, the hyper server of the server load
//! benchmark (`scripts/bench-server.sh`); and for the WebSocket benchmark
//! (`scripts/bench-ws.sh`), the echo servers `ws_echo_tether`, `ws_echo_fastwebsockets` and
//! `ws_echo_tungstenite`, and their load client `ws_load`.
//!
//! Run it with `cargo run --release -p tether-bench -- [options]` (or
//! `scripts/bench-client.sh [options]`); `--help` lists the options.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_core::time::ClientTimeouts;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The body every request gets back.
const HELLO: &[u8] = b"Hello, World!";

/// Which server the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerKind {
    Hyper,
    Tether,
}

/// Where the server and client threads run (pinned with `sched_setaffinity`).
///
/// On a small VM the OS otherwise places the two threads on one CPU or on two from run to
/// run, and that alone moves the sequential rate five-fold (a cross-CPU wake-up per request
/// costs tens of microseconds there), drowning the difference between the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Server and client threads all on CPU 0: the rate is bounded by the CPU time one
    /// request costs on both sides (the server's share being the same for both clients).
    Shared,
    /// Server on CPU 1, client threads on CPU 0: sequential is bounded by the wake-up
    /// latency between CPUs, concurrent by the busier side (usually the client).
    Split,
    /// No pinning: wherever the OS puts the threads (noisy, bimodal).
    Free,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Shared => "1 CPU",
            Layout::Split => "2 CPUs",
            Layout::Free => "unpinned",
        }
    }

    /// The CPUs of the server thread and of the client threads.
    fn cpus(self) -> (Option<usize>, Option<usize>) {
        match self {
            Layout::Shared => (Some(0), Some(0)),
            Layout::Split => (Some(1), Some(0)),
            Layout::Free => (None, None),
        }
    }
}

/// Pins the calling thread to `cpu`; false if that failed (then it runs unpinned).
#[cfg(target_os = "linux")]
fn pin_to_cpu(cpu: usize) -> bool {
    extern "C" {
        // glibc/musl: `int sched_setaffinity(pid_t, size_t, const cpu_set_t *)`.
        fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
    }
    // A `cpu_set_t`: 1024 bits.
    let mut mask = [0u64; 16];
    if cpu >= 1024 {
        return false;
    }
    mask[cpu / 64] |= 1 << (cpu % 64);
    // SAFETY: `mask` is a valid, initialised 128-byte CPU set that outlives the call, and
    // pid 0 is the calling thread.
    unsafe { sched_setaffinity(0, std::mem::size_of_val(&mask), mask.as_ptr()) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn pin_to_cpu(_cpu: usize) -> bool {
    false
}

/// The global allocator: the system's, counting the allocations of each thread (so the
/// client thread's allocations per request can be told apart from the server's).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: a thread being torn down may still free and allocate.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

/// Allocations (including reallocations) made by the calling thread so far.
fn thread_allocations() -> u64 {
    ALLOCATIONS.try_with(std::cell::Cell::get).unwrap_or(0)
}

// SAFETY: every call is passed on unchanged to `System`, which upholds the contract.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's guarantees about `layout` are passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: as for `alloc`.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// CPU time the calling thread has used (user and system), where the OS tells.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_time() -> Option<Duration> {
    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable `struct timespec` for the duration of the call.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) } == 0;
    let secs = u64::try_from(time.tv_sec).ok()?;
    let nanos = u32::try_from(time.tv_nsec).ok()?;
    ok.then(|| Duration::new(secs, nanos))
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

fn pin(cpu: Option<usize>, what: &str) {
    if let Some(cpu) = cpu {
        if !pin_to_cpu(cpu) {
            eprintln!("tether-bench: could not pin the {what} to CPU {cpu}; it runs unpinned");
        }
    }
}

/// The client being measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Tether,
    Hyper,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Tether => "tether",
            Which::Hyper => "hyper-util",
        }
    }
}

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    sequential: u64,
    concurrent: u64,
    tasks: u64,
    warmup: u64,
    runs: usize,
    client_workers: usize,
    server: ServerKind,
    /// A server already running elsewhere, instead of one started in this process.
    server_addr: Option<std::net::SocketAddr>,
    only: Option<Which>,
    tether_timeouts: bool,
    layouts: Vec<Layout>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sequential: 30_000,
            concurrent: 100_000,
            tasks: 16,
            warmup: 2_000,
            runs: 5,
            client_workers: 1,
            server: ServerKind::Hyper,
            server_addr: None,
            only: None,
            tether_timeouts: true,
            layouts: vec![Layout::Shared, Layout::Split],
        }
    }
}

const USAGE: &str = "\
tether-bench: requests/s of tether's Client vs hyper-util's legacy Client

usage: tether-bench [options]
  --quick              a smoke run: N 5000 / 10000, warm-up 500, 1 run (later options win)
  --sequential N       requests of the sequential scenario (default 30000; 0 skips it)
  --concurrent N       requests of the concurrent scenario, in all (default 100000; 0 skips it)
  --tasks N            tasks of the concurrent scenario, sharing one client (default 16)
  --warmup N           warm-up requests before each timed run (default 2000)
  --runs N             timed runs per scenario and client; the median counts (default 5)
  --client-workers N   worker threads of the clients' runtime (default 1)
  --layout L           shared|split|free|both: server and clients pinned to CPU 0 (shared),
                       server on CPU 1 and clients on CPU 0 (split), unpinned (free);
                       default both = shared then split
  --server hyper|tether  the server both clients talk to (default hyper)
  --server-addr ADDR   talk to a server already running at ADDR (e.g. the hyper_hello binary)
                       instead of starting one in this process; it must answer GET / with
                       200 and `Hello, World!` (used by bench-client.sh --callgrind)
  --only tether|hyper  measure one client only (for profiling)
  --tether-no-timeouts   tether with ClientTimeouts::NONE instead of its default (300 s total)
  -h, --help           this text";

fn parse_args() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--quick" => {
                options.sequential = 5_000;
                options.concurrent = 10_000;
                options.warmup = 500;
                options.runs = 1;
            }
            "--sequential" => options.sequential = number(&value(&arg)?)?,
            "--concurrent" => options.concurrent = number(&value(&arg)?)?,
            "--tasks" => options.tasks = number(&value(&arg)?)?.max(1),
            "--warmup" => options.warmup = number(&value(&arg)?)?,
            "--runs" => options.runs = number(&value(&arg)?)?.max(1) as usize,
            "--layout" => {
                options.layouts = match value(&arg)?.as_str() {
                    "shared" => vec![Layout::Shared],
                    "split" => vec![Layout::Split],
                    "free" => vec![Layout::Free],
                    "both" => vec![Layout::Shared, Layout::Split],
                    other => return Err(format!("unknown layout {other:?}")),
                }
            }
            "--client-workers" => options.client_workers = number(&value(&arg)?)?.max(1) as usize,
            "--server" => {
                options.server = match value(&arg)?.as_str() {
                    "hyper" => ServerKind::Hyper,
                    "tether" => ServerKind::Tether,
                    other => return Err(format!("unknown server {other:?}")),
                }
            }
            "--server-addr" => {
                let text = value(&arg)?;
                options.server_addr = Some(
                    text.parse()
                        .map_err(|_| format!("not an address: {text:?}"))?,
                );
            }
            "--only" => {
                options.only = match value(&arg)?.as_str() {
                    "tether" => Some(Which::Tether),
                    "hyper" | "hyper-util" => Some(Which::Hyper),
                    other => return Err(format!("unknown client {other:?}")),
                }
            }
            "--tether-no-timeouts" => options.tether_timeouts = false,
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(options)
}

fn number(text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {text:?}"))
}

/// A client under test: one pool, cloned into every task.
#[derive(Clone)]
enum AnyClient {
    Tether(tether_tokio::Client),
    Hyper(hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>),
}

impl AnyClient {
    fn new(which: Which, options: &Options) -> AnyClient {
        match which {
            Which::Tether => {
                let mut config = tether_tokio::ClientConfig::default();
                if !options.tether_timeouts {
                    config.timeouts = ClientTimeouts::NONE;
                }
                AnyClient::Tether(tether_tokio::Client::new(config))
            }
            Which::Hyper => {
                let mut connector = HttpConnector::new();
                // tether sets TCP_NODELAY on its connections; do the same here.
                connector.set_nodelay(true);
                AnyClient::Hyper(
                    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .build(connector),
                )
            }
        }
    }

    /// One GET, reading the whole body; fails unless it is 200 with the expected body.
    async fn get(&self, url: &Target) -> Result<(), String> {
        let (status, body) = match self {
            AnyClient::Tether(client) => {
                let mut response = client
                    .get(&url.text)
                    .send()
                    .await
                    .map_err(|e| format!("tether: {e}"))?;
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| format!("tether body: {e}"))?;
                (response.status(), body)
            }
            AnyClient::Hyper(client) => {
                let request = http::Request::get(url.uri.clone())
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| format!("hyper request: {e}"))?;
                let response = client
                    .request(request)
                    .await
                    .map_err(|e| format!("hyper-util: {e}"))?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("hyper-util body: {e}"))?
                    .to_bytes();
                (status, body)
            }
        };
        if status != http::StatusCode::OK || body.as_ref() != HELLO {
            return Err(format!("unexpected answer: {status}, {} bytes", body.len()));
        }
        Ok(())
    }
}

/// The URL, parsed once for hyper and kept as text for tether.
struct Target {
    text: String,
    uri: http::Uri,
}

/// `n` requests one after the other.
async fn sequential(client: &AnyClient, url: &Target, n: u64) -> Result<(), String> {
    for _ in 0..n {
        client.get(url).await?;
    }
    Ok(())
}

/// `n` requests in all from `tasks` tasks sharing `client`.
async fn concurrent(
    client: &AnyClient,
    url: &Arc<Target>,
    n: u64,
    tasks: u64,
) -> Result<(), String> {
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        // Spread the remainder so exactly n requests are made.
        let share = n / tasks + u64::from(task < n % tasks);
        let client = client.clone();
        let url = url.clone();
        set.spawn(async move { sequential(&client, &url, share).await });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| format!("task failed: {e}"))??;
    }
    Ok(())
}

/// A scenario.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    Sequential,
    Concurrent,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Sequential => "sequential",
            Scenario::Concurrent => "concurrent",
        }
    }
}

/// One timed run with a fresh client: warm-up (untimed), then `n` requests. Requests/s.
async fn timed_run(
    which: Which,
    scenario: Scenario,
    url: Arc<Target>,
    options: Options,
) -> Result<Measured, String> {
    let client = AnyClient::new(which, &options);
    let n = match scenario {
        Scenario::Sequential => options.sequential,
        Scenario::Concurrent => options.concurrent,
    };
    let start = match scenario {
        Scenario::Sequential => {
            sequential(&client, &url, options.warmup.max(1)).await?;
            let start = (Instant::now(), thread_cpu_time(), thread_allocations());
            sequential(&client, &url, n).await?;
            start
        }
        Scenario::Concurrent => {
            // Warm up with the same number of tasks so every connection is open.
            let warmup = options.warmup.max(options.tasks);
            concurrent(&client, &url, warmup, options.tasks).await?;
            let start = (Instant::now(), thread_cpu_time(), thread_allocations());
            concurrent(&client, &url, n, options.tasks).await?;
            start
        }
    };
    let elapsed = start.0.elapsed();
    // With one worker thread every client task (and hyper-util's connection tasks) ran on
    // this thread, so its CPU clock is the clients' whole CPU cost; with more, it is not.
    let one_thread = options.client_workers == 1;
    let cpu = match (start.1, thread_cpu_time()) {
        (Some(before), Some(after)) if one_thread => Some(after.saturating_sub(before)),
        _ => None,
    };
    let allocations = thread_allocations() - start.2;
    Ok(Measured {
        rate: n as f64 / elapsed.as_secs_f64(),
        cpu_us: cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / n as f64),
        allocations: one_thread.then(|| allocations as f64 / n as f64),
    })
}

/// One timed run's result.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Requests per second, by wall clock.
    rate: f64,
    /// CPU time of the client thread per request, in microseconds (one worker only).
    cpu_us: Option<f64>,
    /// Heap allocations of the client thread per request (one worker only).
    allocations: Option<f64>,
}

/// Starts the server on its own thread and current-thread runtime; its address.
fn start_server(kind: ServerKind, cpu: Option<usize>) -> Result<SocketAddr, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || {
            pin(cpu, "server thread");
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = tx.send(Err(format!("server runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                match kind {
                    ServerKind::Hyper => {
                        let listener = match TcpListener::bind(loopback).await {
                            Ok(listener) => listener,
                            Err(e) => {
                                let _ = tx.send(Err(format!("bind: {e}")));
                                return;
                            }
                        };
                        let _ = tx.send(listener.local_addr().map_err(|e| e.to_string()));
                        hyper_server(listener).await;
                    }
                    ServerKind::Tether => {
                        let config = tether_tokio::ServerConfig::default();
                        let server = match tether_tokio::Server::bind(loopback, config).await {
                            Ok(server) => server,
                            Err(e) => {
                                let _ = tx.send(Err(format!("bind: {e}")));
                                return;
                            }
                        };
                        let _ = tx.send(server.local_addr().map_err(|e| e.to_string()));
                        let app = tether_tokio::App::new().route(
                            http::Method::GET,
                            "/",
                            |_req: tether_tokio::Request| async {
                                tether_tokio::Response::bytes(
                                    http::HeaderValue::from_static("text/plain"),
                                    HELLO,
                                )
                            },
                        );
                        if let Err(e) = server.serve(app).await {
                            eprintln!("tether server: {e}");
                        }
                    }
                }
            });
        })
        .map_err(|e| format!("server thread: {e}"))?;
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("server did not start: {e}"))?
}

/// A hyper 1.x HTTP/1.1 server (keep-alive on) answering `Hello, World!`; runs forever.
async fn hyper_server(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request: http::Request<hyper::body::Incoming>| async {
                let mut response = http::Response::new(Full::new(Bytes::from_static(HELLO)));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// `23456.7` as `23,457`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn client_runtime(workers: usize, cpu: Option<usize>) -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("bench-client")
        .on_thread_start(move || pin(cpu, "client thread"))
        .enable_all()
        .build()
        .map_err(|e| format!("client runtime: {e}"))
}

fn run(options: Options) -> Result<(), String> {
    let clients: Vec<Which> = match options.only {
        Some(which) => vec![which],
        None => vec![Which::Tether, Which::Hyper],
    };
    println!(
        "tether-bench: server {} (own thread, current-thread runtime); clients on a \
         {}-worker runtime; {} runs per scenario, median; warm-up {} requests; tether timeouts {}",
        match options.server {
            ServerKind::Hyper => "hyper 1.x http1",
            ServerKind::Tether => "tether_tokio::Server",
        },
        options.client_workers,
        options.runs,
        options.warmup,
        if options.tether_timeouts {
            "default (300 s total)"
        } else {
            "none"
        },
    );

    let mut scenarios = Vec::new();
    if options.sequential > 0 {
        scenarios.push(Scenario::Sequential);
    }
    if options.concurrent > 0 {
        scenarios.push(Scenario::Concurrent);
    }

    let mut rows = Vec::new();
    for &layout in &options.layouts {
        let (server_cpu, client_cpu) = layout.cpus();
        // A server and a client runtime per layout, pinned from their first instruction;
        // the previous layout's server stays idle in `accept`.
        let addr = match options.server_addr {
            Some(addr) => addr,
            None => start_server(options.server, server_cpu)?,
        };
        pin(client_cpu, "main thread");
        let text = format!("http://{addr}/");
        let uri: http::Uri = text.parse().map_err(|e| format!("url: {e}"))?;
        let url = Arc::new(Target { text, uri });
        let runtime = client_runtime(options.client_workers, client_cpu)?;
        println!(
            "layout {}: server at {addr} on CPU {}, clients on CPU {}",
            layout.name(),
            server_cpu.map_or("any".to_owned(), |c| c.to_string()),
            client_cpu.map_or("any".to_owned(), |c| c.to_string()),
        );
        for &scenario in &scenarios {
            let mut results: Vec<Vec<Measured>> = vec![Vec::new(); clients.len()];
            for run in 0..options.runs {
                // Alternate which client goes first, so drift on the VM hits both alike.
                let mut order: Vec<usize> = (0..clients.len()).collect();
                if run % 2 == 1 {
                    order.reverse();
                }
                for index in order {
                    let which = clients[index];
                    let task =
                        runtime.spawn(timed_run(which, scenario, url.clone(), options.clone()));
                    let measured = runtime
                        .block_on(task)
                        .map_err(|e| format!("run failed: {e}"))??;
                    println!(
                        "  {:<8} {:<10} run {}/{} {:<10} {:>9} req/s {}{}",
                        layout.name(),
                        scenario.name(),
                        run + 1,
                        options.runs,
                        which.name(),
                        thousands(measured.rate),
                        measured
                            .cpu_us
                            .map_or(String::new(), |cpu| format!("{cpu:>6.2} us CPU/req")),
                        measured
                            .allocations
                            .map_or(String::new(), |a| format!(", {a:>5.1} allocs/req")),
                    );
                    results[index].push(measured);
                }
            }
            rows.push(Row {
                layout,
                scenario,
                results,
            });
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
    // The server threads end with the process.
    println!();
    print_summary(&options, &clients, &rows);
    Ok(())
}

/// The runs of one layout and scenario, per client.
struct Row {
    layout: Layout,
    scenario: Scenario,
    results: Vec<Vec<Measured>>,
}

impl Row {
    fn label(&self, options: &Options) -> String {
        match self.scenario {
            Scenario::Sequential => {
                format!(
                    "{}, sequential (N={})",
                    self.layout.name(),
                    options.sequential
                )
            }
            Scenario::Concurrent => format!(
                "{}, {} tasks (N={})",
                self.layout.name(),
                options.tasks,
                options.concurrent
            ),
        }
    }

    /// The median rate of client `index`.
    fn rate(&self, index: usize) -> f64 {
        median(self.results[index].iter().map(|m| m.rate).collect())
    }

    /// The median client CPU time per request of client `index`, if measured.
    fn cpu(&self, index: usize) -> Option<f64> {
        let cpu: Option<Vec<f64>> = self.results[index].iter().map(|m| m.cpu_us).collect();
        cpu.filter(|cpu| !cpu.is_empty()).map(median)
    }

    /// The median allocations per request of client `index`, if counted.
    fn allocations(&self, index: usize) -> Option<f64> {
        let counts: Option<Vec<f64>> = self.results[index].iter().map(|m| m.allocations).collect();
        counts.filter(|c| !c.is_empty()).map(median)
    }

    /// The lowest and highest rate of client `index`.
    fn spread(&self, index: usize) -> String {
        let rates = self.results[index].iter().map(|m| m.rate);
        let min = rates.clone().fold(f64::INFINITY, f64::min);
        let max = rates.fold(0.0, f64::max);
        format!("{}-{}", thousands(min), thousands(max))
    }
}

/// The table (Markdown) and one line per row with the spread of the runs.
fn print_summary(options: &Options, clients: &[Which], rows: &[Row]) {
    let fixed = |value: Option<f64>, places: usize| {
        value.map_or("-".to_owned(), |value| format!("{value:.places$}"))
    };
    if clients.len() != 2 {
        for row in rows {
            println!(
                "{}: {} {} req/s (runs {}), client CPU {} us/req, {} allocs/req",
                row.label(options),
                clients[0].name(),
                thousands(row.rate(0)),
                row.spread(0),
                fixed(row.cpu(0), 2),
                fixed(row.allocations(0), 1),
            );
        }
        return;
    }
    println!(
        "Medians of {} runs. CPU and allocs: the client thread's CPU time (us) and heap \
         allocations per request, tether / hyper-util.",
        options.runs
    );
    println!();
    println!(
        "| {:<30} | {:>12} | {:>16} | {:>17} | {:>13} | {:>13} |",
        "scenario",
        "tether req/s",
        "hyper-util req/s",
        "tether/hyper-util",
        "CPU us/req",
        "allocs/req"
    );
    println!(
        "|{:-<32}|{:->14}|{:->18}|{:->19}|{:->15}|{:->15}|",
        "", "", "", "", "", ""
    );
    for row in rows {
        println!(
            "| {:<30} | {:>12} | {:>16} | {:>16.2}x | {:>13} | {:>13} |",
            row.label(options),
            thousands(row.rate(0)),
            thousands(row.rate(1)),
            row.rate(0) / row.rate(1),
            format!("{} / {}", fixed(row.cpu(0), 2), fixed(row.cpu(1), 2)),
            format!(
                "{} / {}",
                fixed(row.allocations(0), 1),
                fixed(row.allocations(1), 1)
            ),
        );
    }
    println!();
    for row in rows {
        // Runs are paired (same round, back to back): the per-round ratios show the noise.
        let ratios: Vec<f64> = row.results[0]
            .iter()
            .zip(&row.results[1])
            .map(|(t, h)| t.rate / h.rate)
            .collect();
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<8} {:<10}: runs tether {}, hyper-util {} req/s; per-round ratio {:.2}-{:.2}x",
            row.layout.name(),
            row.scenario.name(),
            row.spread(0),
            row.spread(1),
            min,
            max
        );
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
