//! The load client of the WebSocket benchmark (`scripts/bench-ws.sh`, see BENCHMARKS.md):
//! round trips per second against a WebSocket echo server, and idle connections for the
//! memory-per-connection measurement.
//!
//! ```text
//! ws_load [--addr HOST:PORT] [--connections C] [--size BYTES] [--duration S] [--warmup S]
//!         [--server-pid PID]
//! ws_load --idle N [--addr HOST:PORT] [--hold S]
//! ws_load --check [--addr HOST:PORT] [--size BYTES]
//! ```
//!
//! It is deliberately small, so that nearly all the CPU of a round trip is the server's:
//! one thread (a current-thread tokio runtime), plain TCP, no WebSocket library. Each
//! connection does the HTTP upgrade itself (`GET /` with the fixed `Sec-WebSocket-Key` of
//! RFC 6455's example; it wants `101` and the matching `Sec-WebSocket-Accept`), then keeps
//! exactly one message in flight: it writes one binary frame of `--size` bytes (FIN set,
//! masked as a client must be, but with the key 0,0,0,0 so the payload goes out as it is,
//! the frame built once), reads the whole echoed frame (unmasked, 7/16/64-bit lengths),
//! checks that it is a binary frame of the same length (and, for each connection's first
//! echo, the same bytes), and starts over. A ping from the server gets its pong.
//!
//! * Load (the default): `--connections` (16) connections, a `--warmup` (1 s), then the
//!   measured `--duration` (10 s). It prints one line of `key=value` fields, e.g.
//!   `ws_load connections=16 size=16 duration_s=10.000 messages=1234567 messages_per_s=123456.7
//!   server_cpu_s=9.98 client_cpu_s=6.10 errors=0`: the round trips completed in the
//!   measured window and per second, the server's CPU seconds over the same window
//!   (utime+stime of `/proc/PID/stat`, all its threads; only with `--server-pid`) and this
//!   client's. Exits 1 if any connection failed.
//! * `--idle N`: opens N connections (at most 128 handshakes at a time), sends nothing,
//!   prints `ws_load idle ready connections=N`, then holds them until its standard input
//!   closes or, with `--hold S`, for S seconds; then it closes them and exits. Pings from
//!   the server (a heartbeat) are answered meanwhile.
//! * `--check`: one connection; a text message (UTF-8, masked with a non-zero key) and a
//!   binary one of `--size` bytes must come back byte for byte. Exits 0 and prints
//!   `ws_load check ok` if so: the benchmark script's readiness probe.

use std::net::SocketAddr;
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The handshake key of RFC 6455's example (section 1.3) and the accept value it implies.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// How long a handshake (or the whole `--check`) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Load,
    Idle(usize),
    Check,
}

#[derive(Debug)]
struct Options {
    mode: Mode,
    addr: SocketAddr,
    connections: usize,
    size: usize,
    duration: Duration,
    warmup: Duration,
    server_pid: Option<u32>,
    hold: Option<Duration>,
}

const USAGE: &str = "\
usage: ws_load [--addr HOST:PORT] [--connections C] [--size BYTES] [--duration S]
               [--warmup S] [--server-pid PID]
       ws_load --idle N [--addr HOST:PORT] [--hold S]
       ws_load --check [--addr HOST:PORT] [--size BYTES]

  --addr HOST:PORT   the echo server (127.0.0.1:8090)
  --connections C    connections, each with one message in flight (16)
  --size BYTES       payload of each binary message (16)
  --duration S       measured seconds (10; fractions allowed)
  --warmup S         unmeasured seconds before (1; 0 for none)
  --server-pid PID   also report that process's CPU seconds over the measured window
  --idle N           open N connections, send nothing, hold them until stdin closes
  --hold S           with --idle: hold for S seconds instead of until stdin closes
  --check            one text and one binary message must come back intact
  -h, --help         this text";

fn parse_seconds(flag: &str, value: Option<String>) -> Result<Duration, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    let seconds: f64 = value
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{flag}: not a number of seconds: {value:?}"))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{flag}: out of range: {value:?}"))
}

fn parse_count(flag: &str, value: Option<String>) -> Result<usize, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: not a whole number: {value:?}"))
}

/// `Ok(None)` for `--help`.
fn parse_options() -> Result<Option<Options>, String> {
    let mut options = Options {
        mode: Mode::Load,
        addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
        connections: 16,
        size: 16,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        server_pid: None,
        hold: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let addr = args.next().ok_or("--addr needs a value")?;
                options.addr = addr
                    .parse()
                    .map_err(|e| format!("bad address {addr:?}: {e}"))?;
            }
            "--connections" => options.connections = parse_count(&arg, args.next())?,
            "--size" => options.size = parse_count(&arg, args.next())?,
            "--duration" => options.duration = parse_seconds(&arg, args.next())?,
            "--warmup" => options.warmup = parse_seconds(&arg, args.next())?,
            "--server-pid" => {
                let pid = parse_count(&arg, args.next())?;
                options.server_pid =
                    Some(u32::try_from(pid).map_err(|_| "--server-pid: too large")?);
            }
            "--idle" => options.mode = Mode::Idle(parse_count(&arg, args.next())?),
            "--hold" => options.hold = Some(parse_seconds(&arg, args.next())?),
            "--check" => options.mode = Mode::Check,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if options.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if options.duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    Ok(Some(options))
}

fn io_error(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// One frame as a client sends it: FIN, `opcode`, the mask bit and `key`, `payload` masked.
fn client_frame(opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// The payload of the benchmark's messages: a pattern, so that a mixed-up echo shows.
fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Reads server frames off a connection, into one buffer that grows to the largest frame.
struct FrameReader {
    buf: Vec<u8>,
    /// Where the unread bytes start and end.
    start: usize,
    end: usize,
}

impl FrameReader {
    /// `leftover`: bytes already read past the handshake.
    fn new(leftover: &[u8], capacity: usize) -> FrameReader {
        let mut buf = vec![0; capacity.max(leftover.len()).max(4096)];
        buf[..leftover.len()].copy_from_slice(leftover);
        FrameReader {
            buf,
            start: 0,
            end: leftover.len(),
        }
    }

    /// Reads until `n` unread bytes are buffered.
    async fn fill(&mut self, stream: &mut TcpStream, n: usize) -> std::io::Result<()> {
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n, 0);
            }
        }
        while self.end - self.start < n {
            let read = stream.read(&mut self.buf[self.end..]).await?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.end += read;
        }
        Ok(())
    }

    /// The next whole frame: its first byte (FIN, RSV, opcode) and where its payload is in
    /// `buf` (valid until the next read).
    async fn next(&mut self, stream: &mut TcpStream) -> std::io::Result<(u8, Range<usize>)> {
        self.fill(stream, 2).await?;
        let (b0, b1) = (self.buf[self.start], self.buf[self.start + 1]);
        if b1 & 0x80 != 0 {
            return Err(io_error("the server masked a frame"));
        }
        let (header, len) = match b1 & 0x7F {
            126 => {
                self.fill(stream, 4).await?;
                let s = self.start;
                (
                    4,
                    u64::from(u16::from_be_bytes([self.buf[s + 2], self.buf[s + 3]])),
                )
            }
            127 => {
                self.fill(stream, 10).await?;
                let s = self.start;
                let mut len = [0; 8];
                len.copy_from_slice(&self.buf[s + 2..s + 10]);
                (10, u64::from_be_bytes(len))
            }
            n => (2, u64::from(n)),
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= 1 << 30)
            .ok_or_else(|| io_error(format!("frame of {len} bytes")))?;
        self.fill(stream, header + len).await?;
        let payload = self.start + header..self.start + header + len;
        self.start = payload.end;
        if self.start == self.end {
            // All read: the next frame starts at the front (the payload stays where it is
            // until then).
            self.start = 0;
            self.end = 0;
        }
        Ok((b0, payload))
    }

    /// Reads the next data frame (answering pings, skipping pongs); fails on a close or a
    /// fragment. Returns the opcode and where the payload is.
    async fn next_message(
        &mut self,
        stream: &mut TcpStream,
    ) -> std::io::Result<(u8, Range<usize>)> {
        loop {
            let (b0, payload) = self.next(stream).await?;
            match b0 & 0x0F {
                OP_PING => {
                    let pong = client_frame(OP_PONG, &self.buf[payload], [0; 4]);
                    stream.write_all(&pong).await?;
                }
                OP_PONG => {}
                OP_CLOSE => {
                    let reason = &self.buf[payload];
                    return Err(io_error(format!("the server closed: {reason:?}")));
                }
                _ if b0 & 0x80 == 0 => return Err(io_error("a fragmented message")),
                opcode => return Ok((opcode, payload)),
            }
        }
    }
}

/// Connects and upgrades; returns the stream and any bytes read past the `101`'s head.
async fn open(addr: SocketAddr) -> std::io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io_error(format!(
                "connection closed during the handshake: {:?}",
                String::from_utf8_lossy(&head)
            )));
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 16 * 1024 {
            return Err(io_error("handshake response head over 16 KiB"));
        }
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(io_error(format!("no 101: {status:?}")));
    }
    let accept = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim())
    });
    if accept != Some(ACCEPT) {
        return Err(io_error(format!("bad Sec-WebSocket-Accept: {accept:?}")));
    }
    let leftover = head[end..].to_vec();
    Ok((stream, leftover))
}

/// `utime + stime` of a process, in clock ticks (all its threads).
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after `(comm)`: state is field 3, utime and stime fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails, Linux's usual value).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One connection of the load: one message in flight until `stop`.
async fn load_connection(
    addr: SocketAddr,
    payload: Arc<Vec<u8>>,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (mut stream, leftover) = tokio::time::timeout(HANDSHAKE_TIMEOUT, open(addr))
        .await
        .map_err(|_| io_error("handshake timed out"))??;
    let frame = client_frame(OP_BINARY, &payload, [0; 4]);
    let mut reader = FrameReader::new(&leftover, payload.len() + 16);
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(&frame).await?;
        let (opcode, echoed) = reader.next_message(&mut stream).await?;
        let echoed = &reader.buf[echoed];
        if opcode != OP_BINARY || echoed.len() != payload.len() {
            return Err(io_error(format!(
                "sent a binary message of {} bytes, got opcode {opcode:#x} with {} bytes",
                payload.len(),
                echoed.len()
            )));
        }
        if first {
            if echoed != payload.as_slice() {
                return Err(io_error("the echo differs from the message sent"));
            }
            first = false;
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn load(options: &Options) -> ExitCode {
    let payload = Arc::new(pattern(options.size));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let (payload, done, stop, errors) =
            (payload.clone(), done.clone(), stop.clone(), errors.clone());
        let addr = options.addr;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = load_connection(addr, payload, done, stop).await {
                eprintln!("ws_load: connection failed: {e}");
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(options.warmup).await;
    let server_pid = options.server_pid.map(|pid| pid.to_string());
    let server0 = server_pid.as_deref().and_then(cpu_ticks);
    let client0 = cpu_ticks("self");
    let count0 = done.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(options.duration).await;
    let count1 = done.load(Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let client1 = cpu_ticks("self");
    let server1 = server_pid.as_deref().and_then(cpu_ticks);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    let tck = clock_ticks_per_second();
    let seconds = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", b.saturating_sub(a) as f64 / tck),
        _ => "NA".to_owned(),
    };
    let messages = count1 - count0;
    let errors = errors.load(Ordering::Relaxed);
    let mut line = format!(
        "ws_load connections={} size={} duration_s={elapsed:.3} messages={messages} \
         messages_per_s={:.1}",
        options.connections,
        options.size,
        messages as f64 / elapsed
    );
    if options.server_pid.is_some() {
        line.push_str(&format!(" server_cpu_s={}", seconds(server0, server1)));
    }
    line.push_str(&format!(
        " client_cpu_s={} errors={errors}",
        seconds(client0, client1)
    ));
    println!("{line}");
    if errors > 0 || messages == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Holds one idle connection: answers pings, ends at EOF or an error.
async fn idle_connection(mut stream: TcpStream, leftover: Vec<u8>) {
    let mut reader = FrameReader::new(&leftover, 256);
    while reader.next_message(&mut stream).await.is_ok() {}
}

async fn idle(options: &Options, n: usize) -> ExitCode {
    let mut opening = tokio::task::JoinSet::new();
    let mut opened = Vec::with_capacity(n);
    let mut next = 0;
    let started = Instant::now();
    while opened.len() < n {
        while next < n && opening.len() < 128 {
            let addr = options.addr;
            opening.spawn(async move { tokio::time::timeout(HANDSHAKE_TIMEOUT, open(addr)).await });
            next += 1;
        }
        match opening.join_next().await {
            Some(Ok(Ok(Ok(connection)))) => opened.push(connection),
            Some(Ok(Ok(Err(e)))) => {
                eprintln!("ws_load: connection {} failed: {e}", opened.len() + 1);
                return ExitCode::FAILURE;
            }
            Some(Ok(Err(_))) => {
                eprintln!("ws_load: connection {} timed out", opened.len() + 1);
                return ExitCode::FAILURE;
            }
            Some(Err(e)) => {
                eprintln!("ws_load: {e}");
                return ExitCode::FAILURE;
            }
            None => break,
        }
    }
    let holders: Vec<_> = opened
        .into_iter()
        .map(|(stream, leftover)| tokio::spawn(idle_connection(stream, leftover)))
        .collect();
    println!(
        "ws_load idle ready connections={n} open_s={:.2}",
        started.elapsed().as_secs_f64()
    );
    match options.hold {
        Some(hold) => tokio::time::sleep(hold).await,
        None => {
            // Until standard input closes (or fails).
            let mut stdin = tokio::io::stdin();
            let mut sink = [0u8; 256];
            while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    }
    let lost = holders.iter().filter(|h| h.is_finished()).count();
    for holder in holders {
        holder.abort();
    }
    if lost > 0 {
        eprintln!("ws_load: {lost} of {n} idle connections ended early");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn check(options: &Options) -> std::io::Result<()> {
    let (mut stream, leftover) = open(options.addr).await?;
    let mut reader = FrameReader::new(&leftover, options.size + 16);
    let text = "tether ✓ echo — ünïcödé";
    stream
        .write_all(&client_frame(
            OP_TEXT,
            text.as_bytes(),
            [0x37, 0xfa, 0x21, 0x3d],
        ))
        .await?;
    let (opcode, echoed) = reader.next_message(&mut stream).await?;
    let echoed = &reader.buf[echoed];
    if opcode != OP_TEXT || echoed != text.as_bytes() {
        return Err(io_error(format!(
            "text echo: opcode {opcode:#x}, {:?}",
            String::from_utf8_lossy(echoed)
        )));
    }
    let payload = pattern(options.size);
    stream
        .write_all(&client_frame(OP_BINARY, &payload, [0; 4]))
        .await?;
    let (opcode, echoed) = reader.next_message(&mut stream).await?;
    let echoed = &reader.buf[echoed];
    if opcode != OP_BINARY || echoed != payload.as_slice() {
        return Err(io_error(format!(
            "binary echo: opcode {opcode:#x}, {} bytes (sent {})",
            echoed.len(),
            payload.len()
        )));
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ws_load: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match options.mode {
            Mode::Load => load(&options).await,
            Mode::Idle(n) => idle(&options, n).await,
            Mode::Check => match tokio::time::timeout(HANDSHAKE_TIMEOUT, check(&options)).await {
                Ok(Ok(())) => {
                    println!("ws_load check ok");
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => {
                    eprintln!("ws_load check failed: {e}");
                    ExitCode::FAILURE
                }
                Err(_) => {
                    eprintln!("ws_load check timed out");
                    ExitCode::FAILURE
                }
            },
        }
    })
}
