//! Client connection: request encoding, response framing by method and status, reuse.

use super::support::{awaiting_response, client_run, first_error, Ev};
use crate::h1::{
    ClientConnection, ClientConnectionConfig, ClientEvent, LocalError, RemoteErrorKind as K,
};
use crate::time::Instant;
use bytes::Bytes;
use http::{HeaderMap, Method, Request};

fn get() -> Request<()> {
    Request::get("http://example.com/").body(()).unwrap()
}

fn req(method: Method) -> Request<()> {
    Request::builder()
        .method(method)
        .uri("http://example.com/")
        .body(())
        .unwrap()
}

fn wire(conn: &mut ClientConnection) -> String {
    let mut out = Vec::new();
    while let Some(b) = conn.poll_transmit(Instant::ZERO) {
        out.extend_from_slice(&b);
    }
    String::from_utf8(out).unwrap()
}

fn events(conn: &mut ClientConnection) -> Vec<Ev> {
    let mut all = Vec::new();
    while let Some(ev) = conn.poll_event() {
        all.push(super::support::client_ev(ev));
    }
    all
}

#[test]
fn request_encoding() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let request = Request::post("http://user:pw@example.com:8080/p?q=1")
        .header("content-length", "5")
        .header("x-a", "1")
        .body(())
        .unwrap();
    conn.send_request(&request).unwrap();
    conn.send_data(Bytes::from_static(b"hello")).unwrap();
    conn.send_end(None).unwrap();
    assert_eq!(
        wire(&mut conn),
        "POST /p?q=1 HTTP/1.1\r\nhost: example.com:8080\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello"
    );
}

#[test]
fn absolute_form_for_a_forward_proxy_without_userinfo() {
    let mut conn = ClientConnection::new(config_absolute());
    let request = Request::get("http://user:pw@example.com:8080/p?q=1")
        .body(())
        .unwrap();
    conn.send_request(&request).unwrap();
    conn.send_end(None).unwrap();
    assert_eq!(
        wire(&mut conn),
        "GET http://example.com:8080/p?q=1 HTTP/1.1\r\nhost: example.com:8080\r\n\r\n"
    );
    // A request without a scheme and authority stays in origin form.
    let mut conn = ClientConnection::new(config_absolute());
    let request = Request::get("/only-a-path")
        .header("host", "h")
        .body(())
        .unwrap();
    conn.send_request(&request).unwrap();
    assert!(wire(&mut conn).starts_with("GET /only-a-path HTTP/1.1\r\n"));
}

fn config_absolute() -> ClientConnectionConfig {
    ClientConnectionConfig {
        absolute_form: true,
        ..ClientConnectionConfig::default()
    }
}

#[test]
fn chunked_request_with_trailers() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let request = Request::put("/upload")
        .header("host", "h")
        .header("transfer-encoding", "chunked")
        .body(())
        .unwrap();
    conn.send_request(&request).unwrap();
    conn.send_data(Bytes::from_static(b"abc")).unwrap();
    let mut trailers = HeaderMap::new();
    trailers.insert("x-md5", "00".parse().unwrap());
    conn.send_end(Some(&trailers)).unwrap();
    assert_eq!(
        wire(&mut conn),
        "PUT /upload HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-md5: 00\r\n\r\n"
    );
}

#[test]
fn request_targets() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let connect = Request::connect("example.com:443").body(()).unwrap();
    conn.send_request(&connect).unwrap();
    assert!(wire(&mut conn)
        .starts_with("CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n"));

    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let options = Request::options("*").header("host", "x").body(()).unwrap();
    conn.send_request(&options).unwrap();
    assert!(wire(&mut conn).starts_with("OPTIONS * HTTP/1.1\r\n"));
}

#[test]
fn request_misuse() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let no_host = Request::get("/").body(()).unwrap();
    assert!(matches!(
        conn.send_request(&no_host),
        Err(crate::h1::Error::Local(LocalError::InvalidHead(_)))
    ));
    conn.send_request(&get()).unwrap();
    assert_eq!(
        conn.send_data(Bytes::from_static(b"x")),
        Err(LocalError::BodyNotAllowed.into()),
        "a request without Content-Length or chunked has no body"
    );
    assert!(conn.send_request(&get()).is_err(), "no pipelining");
}

#[test]
fn content_length_response_and_reuse() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    for _ in 0..3 {
        conn.send_request(&get()).unwrap();
        conn.send_end(None).unwrap();
        wire(&mut conn);
        conn.handle_input(
            Instant::ZERO,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        );
        let evs = events(&mut conn);
        assert_eq!(evs[1..], [Ev::Data(b"abc".to_vec()), Ev::End(vec![])]);
        assert!(conn.is_reusable());
    }
}

#[test]
fn chunked_response_with_trailers() {
    let evs = client_run(
        &get(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n",
        &[],
    );
    assert_eq!(
        evs[1..],
        [
            Ev::Data(b"hi".to_vec()),
            Ev::End(vec![("x-t".into(), "1".into())]),
            Ev::Closed
        ]
    );
}

#[test]
fn close_delimited_response() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    conn.send_request(&get()).unwrap();
    conn.send_end(None).unwrap();
    wire(&mut conn);
    conn.handle_input(Instant::ZERO, b"HTTP/1.1 200 OK\r\n\r\nall of ");
    let evs = events(&mut conn);
    assert_eq!(evs.len(), 2);
    conn.handle_input(Instant::ZERO, b"this");
    conn.handle_eof();
    let evs = events(&mut conn);
    assert_eq!(evs, [Ev::Data(b"this".to_vec()), Ev::End(vec![])]);
    assert!(!conn.is_reusable());
    assert!(conn.is_closed());
}

#[test]
fn bodiless_responses() {
    let cases: &[(Method, &[u8])] = &[
        (
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        ),
        (Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            Method::GET,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
        ),
        (
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
    ];
    for (method, response) in cases {
        let mut conn = ClientConnection::new(ClientConnectionConfig::default());
        conn.send_request(&req(method.clone())).unwrap();
        conn.send_end(None).unwrap();
        conn.handle_input(Instant::ZERO, response);
        let evs = events(&mut conn);
        assert_eq!(evs.len(), 2, "{method} {evs:?}");
        assert_eq!(evs[1], Ev::End(vec![]));
        assert!(conn.is_reusable(), "{method}");
    }
}

#[test]
fn interim_responses() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let put = Request::put("http://x/")
        .header("expect", "100-continue")
        .header("content-length", "2")
        .body(())
        .unwrap();
    conn.send_request(&put).unwrap();
    assert!(conn.is_waiting_for_continue());
    conn.handle_input(
        Instant::ZERO,
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
    );
    let evs = events(&mut conn);
    assert!(matches!(&evs[0], Ev::Head(h) if h.starts_with("1xx 103")));
    assert!(conn.is_waiting_for_continue(), "103 is not 100");
    conn.handle_input(Instant::ZERO, b"HTTP/1.1 100 Continue\r\n\r\n");
    events(&mut conn);
    assert!(!conn.is_waiting_for_continue());
    conn.send_data(Bytes::from_static(b"ok")).unwrap();
    conn.send_end(None).unwrap();
    conn.handle_input(
        Instant::ZERO,
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    );
    let evs = events(&mut conn);
    assert!(matches!(&evs[0], Ev::Head(h) if h.starts_with("201")));
    assert!(conn.is_reusable());
}

#[test]
fn final_response_before_request_body_ends_reuse() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let put = Request::put("http://x/")
        .header("content-length", "100")
        .body(())
        .unwrap();
    conn.send_request(&put).unwrap();
    conn.handle_input(
        Instant::ZERO,
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
    );
    let evs = events(&mut conn);
    assert_eq!(evs.last(), Some(&Ev::End(vec![])));
    assert!(!conn.is_reusable());
}

#[test]
fn upgrade_accepted() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let ws = Request::get("http://x/chat")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(())
        .unwrap();
    conn.send_request(&ws).unwrap();
    conn.send_end(None).unwrap();
    wire(&mut conn);
    conn.handle_input(Instant::ZERO, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00");
    let evs = events(&mut conn);
    assert!(matches!(&evs[0], Ev::Head(h) if h.starts_with("101")));
    assert_eq!(evs[1], Ev::Upgraded(b"\x81\x00".to_vec()));
    assert!(!conn.is_reusable());
    assert!(conn.is_closed());
}

#[test]
fn upgrade_refused_is_an_ordinary_response() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let ws = Request::get("http://x/chat")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(())
        .unwrap();
    conn.send_request(&ws).unwrap();
    conn.send_end(None).unwrap();
    conn.handle_input(
        Instant::ZERO,
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n",
    );
    let evs = events(&mut conn);
    assert_eq!(evs.last(), Some(&Ev::End(vec![])));
    assert!(conn.is_reusable());
}

#[test]
fn unsolicited_101_is_an_error() {
    let evs = client_run(&get(), b"HTTP/1.1 101 Switching Protocols\r\n\r\n", &[]);
    assert_eq!(first_error(&evs), Some(K::UnexpectedResponse));
}

#[test]
fn connect_tunnel() {
    let connect = Request::connect("example.com:443").body(()).unwrap();
    let evs = client_run(
        &connect,
        b"HTTP/1.1 200 Connection Established\r\n\r\ntls",
        &[],
    );
    assert!(matches!(&evs[0], Ev::Head(h) if h.starts_with("200")));
    assert_eq!(evs[1], Ev::Upgraded(b"tls".to_vec()));
    let evs = client_run(
        &connect,
        b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 1\r\n\r\nx",
        &[],
    );
    assert_eq!(evs[1], Ev::Data(b"x".to_vec()));
}

#[test]
fn reuse_rules() {
    let cases: &[(&[u8], bool)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        // Transfer-Encoding wins over Content-Length, and the connection is not reused.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            false,
        ),
    ];
    for &(response, reusable) in cases {
        let mut conn = ClientConnection::new(ClientConnectionConfig::default());
        conn.send_request(&get()).unwrap();
        conn.send_end(None).unwrap();
        conn.handle_input(Instant::ZERO, response);
        let evs = events(&mut conn);
        assert_eq!(evs.last(), Some(&Ev::End(vec![])), "{evs:?}");
        assert_eq!(
            conn.is_reusable(),
            reusable,
            "{}",
            String::from_utf8_lossy(response)
        );
    }
    // Our own Connection: close.
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    let close = Request::get("http://x/")
        .header("connection", "close")
        .body(())
        .unwrap();
    conn.send_request(&close).unwrap();
    conn.send_end(None).unwrap();
    conn.handle_input(
        Instant::ZERO,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    events(&mut conn);
    assert!(!conn.is_reusable());
    assert!(conn.send_request(&get()).is_err());
}

#[test]
fn transfer_coding_not_chunked_reads_to_eof() {
    let evs = client_run(
        &get(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw",
        &[],
    );
    assert_eq!(evs[1..], [Ev::Data(b"raw".to_vec()), Ev::End(vec![])]);
}

#[test]
fn malformed_responses() {
    let cases: &[(&[u8], K)] = &[
        (b"", K::ClosedBeforeResponse),
        (b"HTTP/1.1 200", K::IncompleteMessage),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            K::IncompleteMessage,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            K::ConflictingContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n",
            K::InvalidContentLength,
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            K::TransferEncodingInHttp10,
        ),
        (b"HTTP/1.1 2000 OK\r\n\r\n", K::InvalidStatus),
        (b"HTTP/1.1 099 Low\r\n\r\n", K::InvalidStatus),
        (b"HTTP/2 200 OK\r\n\r\n", K::InvalidVersion),
        (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", K::ObsFold),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            K::InvalidChunkSize,
        ),
    ];
    for &(response, kind) in cases {
        let evs = client_run(&get(), response, &[]);
        assert_eq!(
            first_error(&evs),
            Some(kind),
            "{:?} -> {evs:?}",
            String::from_utf8_lossy(response)
        );
    }
}

#[test]
fn idle_connection_events() {
    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    conn.handle_eof();
    assert!(matches!(conn.poll_event(), Some(ClientEvent::Closed)));
    assert!(conn.is_closed());
    assert!(!conn.is_reusable());

    let mut conn = ClientConnection::new(ClientConnectionConfig::default());
    conn.handle_input(Instant::ZERO, b"HTTP/1.1 408 Request Timeout\r\n\r\n");
    let evs = events(&mut conn);
    assert_eq!(first_error(&evs), Some(K::UnexpectedResponse));
    assert!(!conn.is_reusable());
}

#[test]
fn response_body_limit() {
    let mut config = ClientConnectionConfig::default();
    config.limits.max_body_size = 4;
    let mut conn = ClientConnection::new(config);
    conn.send_request(&get()).unwrap();
    conn.send_end(None).unwrap();
    conn.handle_input(Instant::ZERO, b"HTTP/1.1 200 OK\r\n\r\n12345");
    let evs = events(&mut conn);
    assert_eq!(first_error(&evs), Some(K::BodyTooLarge));
}

#[test]
fn a_response_that_can_never_be_http_fails_at_once() {
    for input in [
        &b"\x16\x03\x03\x00\x02\x02\x28"[..],
        b"<html>",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 2x",
    ] {
        // No end of head and no EOF.
        let mut conn = awaiting_response(&get());
        conn.handle_input(Instant::ZERO, input);
        let events = events(&mut conn);
        assert!(
            matches!(events.first(), Some(Ev::Error(..))),
            "{:?}: {events:?}",
            String::from_utf8_lossy(input)
        );
    }
}
