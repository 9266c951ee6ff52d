//! The `blocking_server` and `blocking_client` examples of `tether-core` (the core driven
//! with `std::net` and no async runtime), run as a user would (`cargo run --example`):
//! the server against curl and Python `websockets`, the client against that server, the tokio
//! demo, and a server that cuts its response short.

#[path = "../../runtimes/tokio/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::thread;
use std::time::Duration;
use tether_tests::{all_echoed, curl, peers_dir, python_with, run_json, TokioServer};

/// `cargo run -q -p tether-core --example NAME -- ARGS`.
fn example(name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["run", "-q", "-p", "tether-core", "--example", name, "--"])
        .args(args);
    command
}

/// The `blocking_server` example on a free port; killed when dropped.
struct BlockingServer {
    child: Child,
    addr: SocketAddr,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl BlockingServer {
    fn start() -> BlockingServer {
        let mut child = example("blocking_server", &["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("cargo run");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|addr| addr.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server printed {line:?} instead of `listening on http://ADDR`");
        };
        BlockingServer {
            child,
            addr,
            _stdout: stdout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for BlockingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl saw: the response heads (`-D`, so interim `100 Continue` included) and the
/// body.
struct Fetched {
    heads: String,
    body: Vec<u8>,
}

/// `curl -sS -D <heads> ARGS` with `stdin` fed from a thread (so a large upload and a large
/// answer cannot block each other). `None` when curl is missing and peers are optional.
fn curl_fetch(args: &[&str], stdin: Vec<u8>) -> Option<Fetched> {
    let curl = curl()?;
    let mut child = Command::new(curl)
        .args(["-sS", "--max-time", "20", "-D", "/dev/stderr"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run curl");
    let mut input = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let heads = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {args:?} failed: {heads}");
    Some(Fetched {
        heads,
        body: out.stdout,
    })
}

#[test]
fn curl_gets_hello_404_and_405() {
    let server = BlockingServer::start();
    let Some(hello) = curl_fetch(&[&server.url("/")], Vec::new()) else {
        return;
    };
    assert_eq!(hello.body, b"Hello, World!");
    assert!(
        hello.heads.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        hello.heads
    );
    assert!(
        hello
            .heads
            .contains("content-type: text/plain; charset=utf-8\r\n"),
        "{}",
        hello.heads
    );

    let missing = curl_fetch(&[&server.url("/nothing/here")], Vec::new()).unwrap();
    assert!(
        missing.heads.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{}",
        missing.heads
    );
    assert!(missing.body.is_empty());

    let wrong = curl_fetch(&["-X", "DELETE", &server.url("/")], Vec::new()).unwrap();
    assert!(
        wrong
            .heads
            .starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{}",
        wrong.heads
    );
    assert!(
        wrong.heads.contains("allow: GET, HEAD\r\n"),
        "{}",
        wrong.heads
    );
}

#[test]
fn curl_chunked_upload_is_echoed_byte_for_byte() {
    let server = BlockingServer::start();
    // 300 kB covering every byte value, uploaded chunked (curl reads stdin as it goes).
    let upload: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let Some(echo) = curl_fetch(
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Content-Type: application/x-tether-test",
            "--data-binary",
            "@-",
            &server.url("/echo"),
        ],
        upload.clone(),
    ) else {
        return;
    };
    assert!(echo.heads.contains("HTTP/1.1 200 OK\r\n"), "{}", echo.heads);
    assert!(
        echo.heads
            .contains("content-type: application/x-tether-test\r\n"),
        "{}",
        echo.heads
    );
    assert!(
        echo.heads.contains("content-length: 300000\r\n"),
        "{}",
        echo.heads
    );
    assert!(echo.body == upload, "the echo differs from the upload");
}

#[test]
fn curl_reads_a_chunked_stream() {
    let server = BlockingServer::start();
    let Some(stream) = curl_fetch(&[&server.url("/stream?n=3")], Vec::new()) else {
        return;
    };
    assert_eq!(stream.body, b"line 0\nline 1\nline 2\n");
    assert!(
        stream.heads.contains("transfer-encoding: chunked\r\n"),
        "{}",
        stream.heads
    );
}

#[test]
fn a_declared_body_over_the_limit_is_refused_with_413() {
    let server = BlockingServer::start();
    let mut socket = TcpStream::connect(server.addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{answer}"
    );
    assert!(answer.contains("connection: close\r\n"), "{answer}");
}

#[test]
fn websockets_client_echo_through_the_blocking_server() {
    let Some(python) = python_with("websockets") else {
        return;
    };
    let server = BlockingServer::start();
    for compression in [true, false] {
        let mut command = Command::new(&python);
        command
            .arg(peers_dir().join("ws_client.py"))
            .arg(format!("ws://{}/ws", server.addr));
        if !compression {
            command.arg("--no-compression");
        }
        let result = run_json(command);
        all_echoed(&result);
        assert_eq!(result["subprotocol"], "echo", "{result}");
        let extensions = result["extensions"].as_array().expect("extensions");
        assert_eq!(
            extensions.iter().any(|e| e == "PerMessageDeflate"),
            compression,
            "{result}"
        );
        assert_eq!(result["pong"], true, "{result}");
        assert_eq!(result["close_code"], 1000, "{result}");
    }
}

/// Runs the `blocking_client` example.
fn client(args: &[&str]) -> (Output, String, String) {
    let out = example("blocking_client", args)
        .output()
        .expect("cargo run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// The client gives up on `/slow?ms=3000` after 200 ms without a byte, saying which
/// timeout fired, and prints nothing on stdout.
fn assert_read_timeout(url: &str) {
    let (out, stdout, stderr) = client(&[url, "--read-ms", "200"]);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("socket read timeout"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}

/// The client's output with its `date:` line (which must be there) taken out.
fn without_date(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.split('\n').collect();
    let dates = lines.iter().filter(|l| l.starts_with("date: ")).count();
    assert_eq!(dates, 1, "one Date field: {stdout}");
    lines
        .into_iter()
        .filter(|l| !l.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_blocking_client_against_the_blocking_server() {
    let server = BlockingServer::start();
    let (out, stdout, stderr) = client(&[&server.url("/"), "--total-ms", "5000"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        without_date(&stdout),
        "HTTP/1.1 200 OK\ncontent-type: text/plain; charset=utf-8\ncontent-length: 13\n\n\
         Hello, World!"
    );

    let (out, stdout, stderr) = client(&[&server.url("/stream?n=2"), "--read-ms", "5000"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        without_date(&stdout),
        "HTTP/1.1 200 OK\ncontent-type: text/plain; charset=utf-8\n\
         transfer-encoding: chunked\n\nline 0\nline 1\n"
    );

    assert_read_timeout(&server.url("/slow?ms=3000"));
    let (out, _, stderr) = client(&[&server.url("/slow?ms=3000"), "--total-ms", "300"]);
    assert!(!out.status.success());
    assert!(stderr.contains("total timeout"), "{stderr}");

    // Within its limits, the slow answer comes.
    let (out, stdout, stderr) = client(&[&server.url("/slow?ms=100"), "--read-ms", "5000"]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.ends_with("\n\nwaited 100 ms"), "{stdout}");
}

#[test]
fn the_blocking_client_against_the_tokio_demo() {
    let server = TokioServer::start(demo::app(), demo::config());
    let (out, stdout, stderr) = client(&[&server.url("/"), "--total-ms", "5000"]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("HTTP/1.1 200 OK\n"), "{stdout}");
    assert!(stdout.contains("content-length: 13\n"), "{stdout}");
    assert!(stdout.ends_with("\n\nHello, World!"), "{stdout}");

    let (out, stdout, stderr) = client(&[&server.url("/stream?n=2"), "--read-ms", "5000"]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("HTTP/1.1 200 OK\n"), "{stdout}");
    assert!(stdout.contains("transfer-encoding: chunked\n"), "{stdout}");
    assert!(stdout.ends_with("\n\nline 0\nline 1\n"), "{stdout}");

    assert_read_timeout(&server.url("/slow?ms=3000"));
}

#[test]
fn the_blocking_client_fails_on_a_response_cut_short() {
    // A server that promises more than it sends, then closes: once with a length, once
    // with chunks that never end.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answers: [&[u8]; 2] = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ];
    let server = thread::spawn(move || {
        for answer in answers {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request);
            socket.write_all(answer).unwrap();
        }
    });
    for _ in 0..2 {
        let (out, stdout, stderr) = client(&[&format!("http://{addr}/"), "--total-ms", "5000"]);
        assert!(!out.status.success(), "{stdout}");
        assert!(stdout.is_empty(), "a short body was printed: {stdout}");
        assert!(stderr.contains("error: bad response"), "{stderr}");
    }
    server.join().unwrap();
}
