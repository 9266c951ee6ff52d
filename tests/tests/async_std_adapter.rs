//! `tether-async-std` over real sockets, each test under async-std's executor and under
//! smol's: the demo app against curl and the adapter's own client (HTTP, a `sock_read`
//! timeout, a WebSocket echo), a graceful shutdown that waits for a request in flight, the
//! shutdown timeout cutting what does not finish; and the `demo` example run as a user would, stopped with SIGTERM. TLS: the client through a
//! rustls proxy (run on tokio, a peer here) with a CA made by the test (rcgen).

#[path = "../../runtimes/async-std/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use tether_async_std::tls::TlsConfig;
use tether_async_std::websocket::Message;
use tether_async_std::TlsError;
use tether_async_std::{
    App, Client, ClientConfig, ClientError, Request, Response, ServeError, Server, ServerConfig,
    ShutdownHandle, Spawner, Teardown,
};
use tether_core::time::{ClientTimeouts, TimeoutKind};
use tether_tests::curl;

/// The executor a test runs on: async-std's, or a smol executor run by the test's threads.
#[derive(Clone)]
enum Exec {
    AsyncStd,
    Smol(Arc<smol::Executor<'static>>),
}

impl Exec {
    fn spawner(&self) -> Spawner {
        match self {
            Exec::AsyncStd => Spawner::async_std(),
            Exec::Smol(executor) => Spawner::executor(executor.clone()),
        }
    }

    /// Runs `future` to its end on this thread, running the executor's tasks meanwhile.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        match self {
            Exec::AsyncStd => async_std::task::block_on(future),
            Exec::Smol(executor) => smol::block_on(executor.run(future)),
        }
    }
}

/// Each test, once per executor.
macro_rules! on_both_executors {
    ($($test:ident),* $(,)?) => {
        mod async_std_executor {
            $(#[test]
            fn $test() {
                super::$test(super::Exec::AsyncStd)
            })*
        }
        mod smol_executor {
            $(#[test]
            fn $test() {
                super::$test(super::Exec::Smol(std::sync::Arc::new(smol::Executor::new())))
            })*
        }
    };
}

on_both_executors!(
    curl_gets_and_echoes_a_chunked_body,
    the_client_round_trips_times_out_and_echoes_websocket_messages,
    a_graceful_shutdown_waits_for_the_request_in_flight_and_runs_the_teardown,
    the_shutdown_timeout_cuts_a_request_and_a_websocket_that_do_not_finish,
    https_and_wss_through_rustls_with_a_test_ca,
    a_tower_service_is_served_on_this_executor,
);

/// A server running on its own thread, on the test's executor.
struct Running {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    done: mpsc::Receiver<Result<(), ServeError>>,
}

impl Running {
    fn start<S: Send + Sync + 'static>(exec: &Exec, app: App<S>) -> Running {
        Running::start_with(exec, app, demo::config())
    }

    fn start_with<S: Send + Sync + 'static>(
        exec: &Exec,
        app: App<S>,
        config: ServerConfig,
    ) -> Running {
        let (started, addr) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let exec = exec.clone();
        thread::spawn(move || {
            let spawner = exec.spawner();
            exec.block_on(async move {
                let server = Server::bind("127.0.0.1:0".parse().unwrap(), config)
                    .await
                    .expect("bind")
                    .with_spawner(spawner);
                started
                    .send((server.local_addr().unwrap(), server.shutdown_handle()))
                    .unwrap();
                let _ = done_tx.send(server.serve(app).await);
            })
        });
        let (addr, shutdown) = addr.recv().expect("the server started");
        Running {
            addr,
            shutdown,
            done,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Shuts down gracefully; what `serve` returned.
    fn stop(self) -> Result<(), ServeError> {
        self.shutdown.shutdown();
        self.done
            .recv_timeout(Duration::from_secs(40))
            .expect("the server did not finish within 40 s")
    }
}

fn curl_out(curl: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(curl)
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn curl_gets_and_echoes_a_chunked_body(exec: Exec) {
    let Some(curl) = curl() else {
        return;
    };
    let server = Running::start(&exec, demo::app());
    let root = curl_out(&curl, &["-i", &server.url("/")]);
    assert!(root.starts_with("HTTP/1.1 200 OK\r\n"), "{root}");
    assert!(root.contains("content-type: text/plain"), "{root}");
    assert!(root.ends_with("\r\n\r\nHello, World!"), "{root}");

    let body: String = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let path = std::env::temp_dir().join(format!(
        "tether-async-std-{}-{:?}.txt",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::write(&path, &body).unwrap();
    let echoed = curl_out(
        &curl,
        &[
            "-i",
            "--data-binary",
            &format!("@{}", path.display()),
            "-H",
            "transfer-encoding: chunked",
            "-H",
            "content-type: text/x-test",
            &server.url("/echo"),
        ],
    );
    let _ = std::fs::remove_file(&path);
    let (head, echoed_body) = echoed.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-type: text/x-test"), "{head}");
    assert!(echoed_body == body, "{} bytes back", echoed_body.len());
    server.stop().unwrap();
}

/// A tower service behind `App::fallback_service` (feature `tower`), next to a route of the
/// app: the request in `http` types with tether's `Body`, a `String` response body.
fn a_tower_service_is_served_on_this_executor(exec: Exec) {
    let Some(curl) = curl() else {
        return;
    };
    let service = tower::service_fn(
        |request: http::Request<tether_async_std::Body>| async move {
            let (head, mut body) = request.into_parts();
            let received = body.bytes().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(http::Response::new(format!(
                "{} {} {} bytes",
                head.method,
                head.uri.path(),
                received.len()
            )))
        },
    );
    let app = App::new()
        .route(http::Method::GET, "/own", |_req: Request| async {
            Response::text("the app's route")
        })
        .fallback_service(service);
    let server = Running::start(&exec, app);
    let posted = curl_out(
        &curl,
        &["--data-binary", "0123456789", &server.url("/any/path")],
    );
    assert_eq!(posted, "POST /any/path 10 bytes");
    assert_eq!(curl_out(&curl, &[&server.url("/own")]), "the app's route");
    server.stop().unwrap();
}

fn the_client_round_trips_times_out_and_echoes_websocket_messages(exec: Exec) {
    let server = Running::start(&exec, demo::app());
    let mut config = ClientConfig::default();
    config.timeouts = ClientTimeouts::default().with_sock_read(Some(Duration::from_millis(200)));
    let client = Client::with_spawner(config, TlsConfig::default(), exec.spawner());
    exec.block_on(async {
        let mut hello = client.get(&server.url("/")).send().await.unwrap();
        assert_eq!(hello.status(), 200);
        assert_eq!(hello.text().await.unwrap(), "Hello, World!");

        let mut echoed = client
            .post(&server.url("/echo"))
            .header("content-type", "application/x-test")
            .body("round trip")
            .send()
            .await
            .unwrap();
        assert_eq!(echoed.status(), 200);
        assert_eq!(echoed.headers()["content-type"], "application/x-test");
        assert_eq!(echoed.text().await.unwrap(), "round trip");

        let started = Instant::now();
        let slow = client.get(&server.url("/slow?ms=3000")).send().await;
        assert!(
            matches!(slow, Err(ClientError::Timeout(TimeoutKind::SockRead))),
            "{slow:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{started:?}");

        let url = server.url("/ws").replace("http://", "ws://");
        let (mut socket, protocol) = client.ws_connect(&url, &["chat"]).await.unwrap();
        assert_eq!(protocol.as_deref(), Some("chat"));
        socket.send_text("over async-io").await.unwrap();
        match socket.recv().await {
            Some(Message::Text(text)) => assert_eq!(text, "over async-io"),
            other => panic!("{other:?}"),
        }
        socket.send_binary(vec![1u8, 2, 3]).await.unwrap();
        match socket.recv().await {
            Some(Message::Binary(data)) => assert_eq!(&data[..], [1, 2, 3]),
            other => panic!("{other:?}"),
        }
        socket.close(1000, "done").await.unwrap();
        client.close().await;
    });
    server.stop().unwrap();
}

fn a_graceful_shutdown_waits_for_the_request_in_flight_and_runs_the_teardown(exec: Exec) {
    let torn_down = Arc::new(AtomicBool::new(false));
    let flag = torn_down.clone();
    let app = demo::app().cleanup_ctx("flag", move |state| async move {
        let teardown = Teardown::new(async move {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        Ok((state, teardown))
    });
    let server = Running::start(&exec, app);
    let addr = server.addr;
    let started = Instant::now();
    let in_flight = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    });
    // The request is in its handler by now.
    thread::sleep(Duration::from_millis(100));
    server.stop().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "serve returned before the request in flight finished"
    );
    assert!(torn_down.load(Ordering::SeqCst), "the teardown ran");
    let answer = in_flight.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.ends_with("waited 300 ms"), "{answer}");
}

/// Sends `request` on a new connection and reads until the server closes it (or 10 s).
fn exchange(addr: SocketAddr, request: &[u8]) -> thread::JoinHandle<String> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request).unwrap();
    thread::spawn(move || {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
}

fn the_shutdown_timeout_cuts_a_request_and_a_websocket_that_do_not_finish(exec: Exec) {
    let mut config = demo::config();
    config.shutdown_timeout = Duration::from_millis(300);
    config.jobs = config.jobs.with_close_timeout(Duration::from_millis(200));
    let server = Running::start_with(&exec, demo::app(), config);
    let slow = exchange(
        server.addr,
        b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    // A WebSocket peer that never answers the server's close (whose close timeout is 10 s).
    let silent = exchange(
        server.addr,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    server.stop().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the shutdown took {:?}",
        stopping.elapsed()
    );
    let slow = slow.join().unwrap();
    assert!(!slow.contains("waited"), "{slow}");
    let silent = silent.join().unwrap();
    assert!(silent.starts_with("HTTP/1.1 101 "), "{silent}");
}

/// A TLS proxy in front of `backend` with a server certificate for `localhost` from a CA made
/// here: its address and the CA's certificate. It runs on its own tokio runtime, a peer
/// like curl.
fn tls_proxy(backend: SocketAddr) -> (SocketAddr, CertificateDer<'static>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    (addr, ca.der().clone())
}

fn https_and_wss_through_rustls_with_a_test_ca(exec: Exec) {
    let server = Running::start(&exec, demo::app());
    let (proxy, ca) = tls_proxy(server.addr);
    let https = format!("https://localhost:{}", proxy.port());
    let tls = TlsConfig::with_root_certificates(vec![ca]);
    let client = Client::with_spawner(ClientConfig::default(), tls, exec.spawner());
    let untrusting = Client::with_spawner(
        ClientConfig::default(),
        TlsConfig::default(),
        exec.spawner(),
    );
    exec.block_on(async {
        let mut hello = client.get(&format!("{https}/")).send().await.unwrap();
        assert_eq!(hello.status(), 200);
        assert_eq!(hello.text().await.unwrap(), "Hello, World!");

        let wss = format!("wss://localhost:{}/ws", proxy.port());
        let (mut socket, _) = client.ws_connect(&wss, &["echo"]).await.unwrap();
        socket.send_text("over TLS").await.unwrap();
        match socket.recv().await {
            Some(Message::Text(text)) => assert_eq!(text, "over TLS"),
            other => panic!("{other:?}"),
        }
        socket.close(1000, "done").await.unwrap();

        // Mozilla's roots do not know the test's CA.
        match untrusting.get(&format!("{https}/")).send().await {
            Err(ClientError::Tls(TlsError::Handshake { source, .. })) => assert_eq!(
                source.downcast_ref::<rustls::Error>(),
                Some(&rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            other => panic!("{other:?}"),
        }
        client.close().await;
    });
    server.stop().unwrap();
}

#[test]
fn the_demo_example_serves_and_shuts_down_gracefully_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut demo = Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "tether-async-std",
            "--example",
            "async_std_demo",
            "--",
        ])
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo run");
    let mut stdout = BufReader::new(demo.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("tether demo listening on http://"),
        "{line:?}"
    );
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let addr = url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("Hello, World!"), "{answer}");

    let killed = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = demo.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(
        rest.contains("served 1 requests and 0 WebSocket sessions"),
        "{rest}"
    );
}
