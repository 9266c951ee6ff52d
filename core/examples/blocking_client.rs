//! Fetches one `http://` URL over a blocking `std::net` socket, driving `tether-core`'s
//! `ClientConnection` directly, with aiohttp's four client timeouts as the core's
//! `RequestTimer` deadlines: no async runtime at all.
//!
//! ```text
//! cargo run -p tether-core --example blocking_client -- http://127.0.0.1:8080/stream?n=3 \
//!     [--total-ms N] [--connect-ms N] [--sock-connect-ms N] [--read-ms N]
//! ```
//!
//! It prints the status line, the header fields one per line, a blank line, then the body.
//! The whole response is read before anything is printed, so a response that ends early is
//! an error (on stderr, with a failing exit status), never a short body. A timeout is
//! reported by name (`error: socket read timeout`).
//!
//! Left out on purpose: TLS (`https://` needs a TLS library; `tether-tokio`'s client has one),
//! redirects (a `3xx` is printed as it is), connection reuse. Name resolution goes through
//! the system resolver, which cannot be interrupted: the timeouts are checked when it
//! returns.

use http::{Request, Response, Uri};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;
use tether_core::h1::{ClientConnection, ClientConnectionConfig, ClientEvent};
use tether_core::time::{ClientTimeouts, Instant, RequestTimer, TimeoutKind};

/// The body is held in memory until its end, so it gets a limit (the core checks it, as it
/// arrives and before anything is set aside for a declared length).
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// The host clock as the core sees it: time since one origin, fixed once for the process.
fn now() -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    Instant::from_duration(ORIGIN.get_or_init(std::time::Instant::now).elapsed())
}

/// Why the fetch failed.
enum Failure {
    /// Bad command line (exit status 2).
    Usage(String),
    /// One of the four timeouts fired.
    Timeout(TimeoutKind),
    /// Anything else: the network, or a response that broke HTTP or ended early.
    Other(String),
}

/// How long a blocking call may wait for the timer's next deadline (`None`: no deadline).
/// At least 1 ms: std refuses a zero socket timeout.
fn wait(timer: &RequestTimer) -> Option<Duration> {
    timer.poll_timeout().map(|t| {
        t.saturating_duration_since(now())
            .max(Duration::from_millis(1))
    })
}

/// Whether an IO error is a socket timeout (the OS says `WouldBlock` or `TimedOut`).
fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// The timeout that has fired by now, if any, as a failure.
fn check(timer: &mut RequestTimer) -> Result<(), Failure> {
    match timer.handle_timeout(now()) {
        Some(kind) => Err(Failure::Timeout(kind)),
        None => Ok(()),
    }
}

/// Maps an IO error: a timeout the timer confirms is reported as that timeout.
fn io_failure(timer: &mut RequestTimer, doing: &str, e: io::Error) -> Failure {
    if let Err(timeout) = check(timer) {
        return timeout;
    }
    Failure::Other(format!("{doing}: {e}"))
}

fn parse_args() -> Result<(Uri, ClientTimeouts), Failure> {
    let usage = "usage: blocking_client http://HOST[:PORT]/PATH [--total-ms N] [--connect-ms N] \
                 [--sock-connect-ms N] [--read-ms N]";
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut timeouts = ClientTimeouts::default();
    while let Some(arg) = args.next() {
        if !arg.starts_with("--") {
            url = Some(arg);
            continue;
        }
        let ms: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Failure::Usage(format!("{arg} needs a number of milliseconds")))?;
        let value = Some(Duration::from_millis(ms));
        timeouts = match arg.as_str() {
            "--total-ms" => timeouts.with_total(value),
            "--connect-ms" => timeouts.with_connect(value),
            "--sock-connect-ms" => timeouts.with_sock_connect(value),
            "--read-ms" => timeouts.with_sock_read(value),
            _ => return Err(Failure::Usage(format!("unknown flag {arg}\n{usage}"))),
        };
    }
    let url = url.ok_or_else(|| Failure::Usage(usage.to_owned()))?;
    let uri: Uri = url
        .parse()
        .map_err(|e| Failure::Usage(format!("bad URL {url:?}: {e}")))?;
    match uri.scheme_str() {
        Some("http") => Ok((uri, timeouts)),
        Some("https") => Err(Failure::Usage(
            "https:// needs TLS, which this example leaves out (tether-tokio's client has it)"
                .into(),
        )),
        _ => Err(Failure::Usage(format!("not an http:// URL: {url}"))),
    }
}

/// Opens the connection within `connect` and `sock_connect` (and `total`).
fn connect(uri: &Uri, timer: &mut RequestTimer) -> Result<TcpStream, Failure> {
    let host = uri.host().unwrap_or_default();
    // An IPv6 literal keeps its brackets in the URI.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    // There is no pool here: the request goes straight to opening a connection.
    timer.connecting(now());
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Failure::Other(format!("cannot resolve {host}: {e}")))?
        .collect();
    check(timer)?;
    let mut last_error = None;
    for addr in addrs {
        let attempt = match wait(timer) {
            Some(limit) => TcpStream::connect_timeout(&addr, limit),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                // If the deadline came, that timeout is the answer, whatever address is next.
                check(timer)?;
                last_error = Some(format!("cannot connect to {addr}: {e}"));
            }
        }
    }
    Err(Failure::Other(
        last_error.unwrap_or_else(|| format!("{host} has no address")),
    ))
}

/// Sends a GET for `uri` and reads the whole response.
fn fetch(uri: &Uri, timeouts: ClientTimeouts) -> Result<(Response<()>, Vec<u8>), Failure> {
    // `total` and `connect` start now.
    let mut timer = RequestTimer::new(timeouts, now());
    let mut stream = connect(uri, &mut timer)?;
    timer.connected();
    let _ = stream.set_nodelay(true);

    let mut config = ClientConnectionConfig::default();
    config.limits.max_body_size = MAX_BODY;
    let mut conn = ClientConnection::new(config);
    let request = Request::get(uri.clone())
        .header("user-agent", "tether-blocking-client")
        .body(())
        .map_err(|e| Failure::Usage(format!("bad request: {e}")))?;
    // The core writes the request line with the path and adds `Host` from the URI.
    let sent = conn
        .send_request(&request)
        .and_then(|()| conn.send_end(None));
    sent.map_err(|e| Failure::Usage(format!("cannot send that request: {e}")))?;
    while let Some(bytes) = conn.poll_transmit(now()) {
        let written = stream
            .set_write_timeout(wait(&timer))
            .and_then(|()| stream.write_all(&bytes));
        written.map_err(|e| io_failure(&mut timer, "sending the request", e))?;
    }
    // `sock_read` starts: waiting for the first byte of the answer counts as a gap.
    timer.sent(now());

    let mut head = None;
    let mut body = Vec::new();
    let mut eof = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                // `100 Continue`, `103 Early Hints`: not the answer yet.
                ClientEvent::Informational(_) => {}
                ClientEvent::Response(response) => head = Some(response),
                ClientEvent::Data(data) => body.extend_from_slice(&data),
                ClientEvent::End { .. } => {
                    timer.done();
                    let head = head.ok_or_else(|| Failure::Other("no response head".into()))?;
                    return Ok((head, body));
                }
                // Malformed, over a limit, or cut short (EOF before the declared length or
                // the last chunk): the core says so, with the byte offset.
                ClientEvent::Error(e) => return Err(Failure::Other(format!("bad response: {e}"))),
                ClientEvent::Closed => {
                    return Err(Failure::Other(
                        "the server closed the connection without answering".into(),
                    ))
                }
                other => return Err(Failure::Other(format!("unexpected {other:?}"))),
            }
        }
        if eof {
            // The core reports every way a response ends after EOF; this is a safety net.
            return Err(Failure::Other("the response ended early".into()));
        }
        check(&mut timer)?;
        stream
            .set_read_timeout(wait(&timer))
            .map_err(|e| Failure::Other(e.to_string()))?;
        match stream.read(&mut buf) {
            Ok(0) => {
                eof = true;
                conn.handle_eof();
            }
            Ok(n) => {
                let t = now();
                timer.read(t); // `sock_read` starts over
                conn.handle_input(t, &buf[..n]); // copied: `buf` is ours again
            }
            // The deadline came (reported at the top of the loop), or a signal.
            Err(e) if timed_out(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(&mut timer, "reading the response", e)),
        }
    }
}

fn print(head: &Response<()>, body: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{:?} {}", head.version(), head.status())?;
    for (name, value) in head.headers() {
        out.write_all(name.as_str().as_bytes())?;
        out.write_all(b": ")?;
        out.write_all(value.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")?;
    out.write_all(body)?;
    out.flush()
}

fn main() {
    now(); // fixes the clock's origin
    let result = parse_args().and_then(|(uri, timeouts)| fetch(&uri, timeouts));
    match result {
        Ok((head, body)) => {
            if let Err(e) = print(&head, &body) {
                eprintln!("error: cannot print the response: {e}");
                std::process::exit(1);
            }
        }
        Err(Failure::Usage(message)) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
        Err(Failure::Timeout(kind)) => {
            eprintln!("error: {kind}");
            std::process::exit(1);
        }
        Err(Failure::Other(message)) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}
