//! Request-head parsing: tether's `ServerConnection` against bare `httparse`.
//!
//! Two requests: a typical browser GET (Chrome headers, about 400 bytes) and a minimal GET.
//! Three ways to parse each:
//!
//! * `httparse`: `httparse::Request::parse` into 100 stack header slots, the floor any
//!   `httparse`-based server stands on.
//! * `tether_parse`: bytes fed to a fresh `ServerConnection`, then `poll_event` until the
//!   `Request` and its `End`. Making the connection (before) and dropping it and the request
//!   (after) are not timed.
//! * `tether_keepalive`: one connection reused the way a keep-alive server drives it:
//!   bytes in, `Request`, `End`, a prebuilt `200` with `content-length: 0`, `send_end`,
//!   `poll_transmit` drained. Everything, drops included, is timed.
//! * `httparse_to_http` (reference, not part of the ratio): the least any parser must do to
//!   hand out the same `http::Request<()>`: copy the bytes into a `Bytes`, `httparse`, then
//!   `Method`, `Uri`, and a `HeaderMap` of `Bytes`-sharing values, in safe code, with none of
//!   tether's checks or state. It shows how much of tether's time the `http` types take.
//!   Dropping the request is not timed, as for `tether_parse`.
//!
//! After criterion's groups, `main` times the same routines itself (median of interleaved
//! batches) and prints `ratio tether/httparse (...)` lines: httparse time / tether parse time,
//! so 1.0x means as fast as bare httparse and the target is at least 0.8x.
//!
//! Run with `cargo bench -p tether-core --bench h1_parse`.

mod batches;

use batches::{batch_size, measuring, median, time_loop, BATCHES, BATCH_TARGET};
use bytes::Bytes;
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant as StdInstant};
use tether_core::h1::{ServerConnection, ServerConnectionConfig, ServerEvent};
use tether_core::time::Instant;

/// A `fetch()` from Chrome 124 on Linux, with a session cookie.
const BROWSER_GET: &[u8] = b"GET /feed?p=2 HTTP/1.1\r\n\
Host: example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: */*\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Dest: empty\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: sid=3f2a9c1e\r\n\
\r\n";

const MINIMAL_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// The requests benchmarked: (label, bytes, header count).
const CASES: [(&str, &[u8], usize); 2] = [
    ("browser GET", BROWSER_GET, 11),
    ("minimal GET", MINIMAL_GET, 1),
];

const EXPECTED_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

/// Header slots for the httparse baseline, as many as tether's default `max_headers`.
const HTTPARSE_SLOTS: usize = 100;

fn now() -> Instant {
    Instant::from_millis(1)
}

// ---- the routines, shared by criterion and the summary ----

/// Baseline: bare `httparse` into stack slots; returns the head length.
#[inline(never)]
fn httparse_parse(bytes: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; HTTPARSE_SLOTS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => {
            black_box(&req);
            len
        }
        other => panic!("httparse: {other:?}"),
    }
}

/// Reference: bytes to `http::Request<()>` the cheapest safe way, without tether.
#[inline(never)]
fn httparse_to_http(bytes: &[u8]) -> Request<()> {
    fn range(base: &[u8], part: &[u8]) -> std::ops::Range<usize> {
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        start..start + part.len()
    }
    let buf = Bytes::copy_from_slice(bytes);
    let mut slots = [const { MaybeUninit::uninit() }; HTTPARSE_SLOTS];
    let mut req = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(_)) = req.parse_with_uninit_headers(&buf, &mut slots) else {
        panic!("httparse_to_http: incomplete");
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes()).expect("method");
    let uri =
        Uri::from_maybe_shared(buf.slice(range(&buf, req.path.unwrap_or_default().as_bytes())))
            .expect("uri");
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).expect("name");
        let value = HeaderValue::from_maybe_shared(buf.slice(range(&buf, h.value))).expect("value");
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
}

fn new_connection() -> ServerConnection {
    ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO)
}

/// Parse only: feeds `bytes` to `conn` and takes the `Request` and `End` events.
#[inline(never)]
fn tether_parse(conn: &mut ServerConnection, bytes: &[u8]) -> Request<()> {
    conn.handle_input(now(), bytes);
    let Some(ServerEvent::Request { head: request, .. }) = conn.poll_event() else {
        panic!("tether: no request");
    };
    let Some(ServerEvent::End { trailers: None }) = conn.poll_event() else {
        panic!("tether: no end");
    };
    request
}

/// One keep-alive cycle on a reused connection: request in, empty `200` out.
#[inline(never)]
fn tether_cycle(conn: &mut ServerConnection, bytes: &[u8], response: &Response<()>) -> usize {
    let request = tether_parse(conn, bytes);
    black_box(&request);
    drop(request);
    conn.send_response(response).expect("send_response");
    conn.send_end(None).expect("send_end");
    let mut written = 0;
    while let Some(out) = conn.poll_transmit(now()) {
        written += black_box(out).len();
    }
    written
}

fn empty_ok() -> Response<()> {
    Response::builder()
        .status(200)
        .header("content-length", "0")
        .body(())
        .expect("response")
}

/// Checks every routine on every case once before anything is timed.
fn check_cases() {
    assert!(
        (380..=420).contains(&BROWSER_GET.len()),
        "browser GET is {} bytes, want 380..=420",
        BROWSER_GET.len()
    );
    let response = empty_ok();
    for (label, bytes, fields) in CASES {
        assert_eq!(
            httparse_parse(bytes),
            bytes.len(),
            "{label}: httparse length"
        );

        let reference = httparse_to_http(bytes);
        assert_eq!(
            reference.headers().len(),
            fields,
            "{label}: reference header count"
        );

        let mut conn = new_connection();
        let request = tether_parse(&mut conn, bytes);
        assert_eq!(
            request.headers(),
            reference.headers(),
            "{label}: tether headers"
        );
        assert_eq!(request.uri(), reference.uri(), "{label}: tether target");
        assert_eq!(
            request.headers().len(),
            fields,
            "{label}: tether header count"
        );
        assert_eq!(request.method(), http::Method::GET, "{label}");
        drop(request);

        let mut conn = new_connection();
        for _ in 0..3 {
            conn.handle_input(now(), bytes);
            assert!(matches!(
                conn.poll_event(),
                Some(ServerEvent::Request { .. })
            ));
            assert!(matches!(conn.poll_event(), Some(ServerEvent::End { .. })));
            assert!(conn.poll_event().is_none());
            conn.send_response(&response).unwrap();
            conn.send_end(None).unwrap();
            let mut wire = Vec::new();
            while let Some(out) = conn.poll_transmit(now()) {
                wire.extend_from_slice(&out);
            }
            assert_eq!(wire, EXPECTED_RESPONSE, "{label}: response bytes");
            assert!(
                conn.is_idle() && !conn.is_closed(),
                "{label}: connection not reusable"
            );
        }
        assert_eq!(
            tether_cycle(&mut conn, bytes, &response),
            EXPECTED_RESPONSE.len()
        );
    }
}

// ---- criterion ----

fn bench_parse(c: &mut Criterion) {
    check_cases();
    let response = empty_ok();
    for (label, bytes, _) in CASES {
        let mut group = c.benchmark_group(format!("h1_parse/{}", label.replace(' ', "_")));
        group
            .throughput(Throughput::Bytes(bytes.len() as u64))
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(50);

        group.bench_function("httparse", |b| b.iter(|| httparse_parse(black_box(bytes))));

        group.bench_function("tether_parse", |b| {
            b.iter_batched(
                new_connection,
                |mut conn| {
                    let request = tether_parse(&mut conn, black_box(bytes));
                    (conn, request)
                },
                BatchSize::SmallInput,
            );
        });

        group.bench_function("tether_keepalive", |b| {
            let mut conn = new_connection();
            b.iter(|| tether_cycle(&mut conn, black_box(bytes), &response));
        });

        group.bench_function("httparse_to_http", |b| {
            b.iter_with_large_drop(|| httparse_to_http(black_box(bytes)));
        });

        group.finish();
    }
}

criterion_group!(benches, bench_parse);

// ---- the summary ----

/// Nanoseconds per iteration of each routine for one case, from interleaved batches.
struct Timings {
    httparse: f64,
    parse: f64,
    keepalive: f64,
    reference: f64,
}

/// Times `n` parses on fresh connections; making and dropping them is outside the clock.
fn time_parse(bytes: &[u8], n: usize) -> Duration {
    let mut conns: Vec<ServerConnection> = (0..n).map(|_| new_connection()).collect();
    let mut requests = Vec::with_capacity(n);
    let start = StdInstant::now();
    for conn in &mut conns {
        requests.push(tether_parse(black_box(conn), black_box(bytes)));
    }
    let elapsed = start.elapsed();
    black_box(&requests);
    elapsed
}

/// Times `n` reference parses; dropping the requests is outside the clock, as for tether.
fn time_reference(bytes: &[u8], n: usize) -> Duration {
    let mut requests = Vec::with_capacity(n);
    let start = StdInstant::now();
    for _ in 0..n {
        requests.push(httparse_to_http(black_box(bytes)));
    }
    let elapsed = start.elapsed();
    black_box(&requests);
    elapsed
}

fn measure(bytes: &[u8]) -> Timings {
    let response = empty_ok();
    let mut conn = new_connection();
    let mut httparse = |n| time_loop(n, || _ = black_box(httparse_parse(black_box(bytes))));
    let mut parse = |n| time_parse(bytes, n);
    let mut keepalive = |n| {
        time_loop(n, || {
            black_box(tether_cycle(&mut conn, black_box(bytes), &response));
        })
    };
    let mut reference = |n| time_reference(bytes, n);
    let sizes = [
        batch_size(&mut httparse, 1_000, 1_000_000),
        batch_size(&mut parse, 1_000, 1_000_000),
        batch_size(&mut keepalive, 1_000, 1_000_000),
        batch_size(&mut reference, 1_000, 1_000_000),
    ];
    let mut samples: [Vec<f64>; 4] = Default::default();
    for _ in 0..BATCHES {
        let elapsed = [
            httparse(sizes[0]),
            parse(sizes[1]),
            keepalive(sizes[2]),
            reference(sizes[3]),
        ];
        for ((samples, elapsed), n) in samples.iter_mut().zip(elapsed).zip(sizes) {
            samples.push(elapsed.as_secs_f64() * 1e9 / n as f64);
        }
    }
    let [httparse, parse, keepalive, reference] = samples.map(median);
    Timings {
        httparse,
        parse,
        keepalive,
        reference,
    }
}

fn summary() {
    let results: Vec<_> = CASES
        .iter()
        .map(|&(label, bytes, _)| (label, bytes.len(), measure(bytes)))
        .collect();
    println!();
    println!("summary: median of {BATCHES} interleaved batches of ~{BATCH_TARGET:?} each");
    let mib_s = |len: usize, ns: f64| len as f64 / ns * 1e9 / (1024.0 * 1024.0);
    for (label, len, t) in &results {
        println!("  {label} ({len} bytes):");
        for (what, ns) in [
            ("httparse (baseline)", t.httparse),
            ("tether parse only", t.parse),
            ("tether keep-alive cycle", t.keepalive),
            ("httparse_to_http (reference)", t.reference),
        ] {
            println!("    {what:<30} {ns:>7.0} ns {:>7.0} MiB/s", mib_s(*len, ns));
        }
    }
    for (label, _, t) in &results {
        println!(
            "ratio tether/httparse ({label}): {:.2}x (tether {:.0} ns, httparse {:.0} ns; \
             keep-alive cycle {:.2}x, {:.0} ns; httparse_to_http reference {:.2}x, {:.0} ns)",
            t.httparse / t.parse,
            t.parse,
            t.httparse,
            t.httparse / t.keepalive,
            t.keepalive,
            t.httparse / t.reference,
            t.reference,
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if measuring() {
        summary();
    }
}
