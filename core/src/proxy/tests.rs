//! The proxy handshakes against a test-side proxy written from the RFCs: every rule, every
//! reply code, byte-split invariance, and requests decoded back to what was asked.

use super::*;
use crate::time::Instant;
use http::HeaderMap;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

fn at(ms: u64) -> Instant {
    Instant::from_duration(Duration::from_millis(ms))
}

/// Feeds `answer` to a handshake in pieces cut at `cuts`, writing what it sends into `sent`.
trait Drive {
    fn transmit(&mut self) -> Option<Bytes>;
    fn input(&mut self, data: &[u8]);
    fn event(&mut self) -> Option<ProxyEvent>;
}

impl Drive for ConnectTunnel {
    fn transmit(&mut self) -> Option<Bytes> {
        self.poll_transmit(at(0))
    }
    fn input(&mut self, data: &[u8]) {
        self.handle_input(at(0), data)
    }
    fn event(&mut self) -> Option<ProxyEvent> {
        self.poll_event()
    }
}

impl Drive for Socks5Handshake {
    fn transmit(&mut self) -> Option<Bytes> {
        self.poll_transmit(at(0))
    }
    fn input(&mut self, data: &[u8]) {
        self.handle_input(at(0), data)
    }
    fn event(&mut self) -> Option<ProxyEvent> {
        self.poll_event()
    }
}

/// Runs `machine` against `answer` split at `cuts`: everything it sent, and its one event.
/// Input that arrives after the event is the driver's to read from the socket; it is added
/// to the event's leftover, so that any split gives the same result.
fn run(machine: &mut impl Drive, answer: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<ProxyEvent>) {
    let mut sent = Vec::new();
    let mut event = None;
    let mut after = Vec::new();
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (answer.len() + 1)).collect();
    points.push(answer.len());
    points.sort_unstable();
    for point in points {
        while let Some(bytes) = machine.transmit() {
            sent.extend_from_slice(&bytes);
        }
        if event.is_some() {
            after.extend_from_slice(&answer[last..point]);
        } else {
            machine.input(&answer[last..point]);
        }
        last = point;
        if let Some(e) = machine.event() {
            assert!(event.is_none(), "one event only");
            event = Some(e);
        }
    }
    while let Some(bytes) = machine.transmit() {
        sent.extend_from_slice(&bytes);
    }
    assert!(machine.event().is_none(), "one event only");
    if let Some(ProxyEvent::Established { leftover }) = &mut event {
        let mut all = leftover.to_vec();
        all.extend_from_slice(&after);
        *leftover = Bytes::from(all);
    }
    (sent, event)
}

fn established(leftover: &[u8]) -> Option<ProxyEvent> {
    Some(ProxyEvent::Established {
        leftover: Bytes::copy_from_slice(leftover),
    })
}

// ---- CONNECT ----

#[test]
fn connect_sends_the_authority_form_with_host_and_the_callers_fields() {
    let mut fields = HeaderMap::new();
    fields.insert(
        http::header::PROXY_AUTHORIZATION,
        basic_credentials("aladdin", "opensesame"),
    );
    let mut tunnel = ConnectTunnel::new("example.com", 443, &fields, None);
    let (sent, event) = run(
        &mut tunnel,
        b"HTTP/1.1 200 Connection established\r\n\r\n",
        &[],
    );
    assert_eq!(
        String::from_utf8(sent).unwrap(),
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
         proxy-authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n\r\n"
    );
    assert_eq!(event, established(b""));
}

#[test]
fn connect_brackets_an_ipv6_target_and_refuses_a_bad_one() {
    let mut tunnel = ConnectTunnel::new("::1", 8443, &HeaderMap::new(), None);
    let sent = tunnel.poll_transmit(at(0)).unwrap();
    assert!(sent.starts_with(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"));
    for bad in ["", "a b", "x/y", "user@host"] {
        let mut tunnel = ConnectTunnel::new(bad, 80, &HeaderMap::new(), None);
        assert_eq!(tunnel.poll_transmit(at(0)), None, "{bad:?}");
        assert_eq!(
            tunnel.poll_event(),
            Some(ProxyEvent::Failed(ProxyError::InvalidTarget))
        );
    }
}

#[test]
fn connect_keeps_the_bytes_after_the_head_and_ignores_a_2xx_framing() {
    // RFC 9110 §9.3.6: a client MUST ignore Content-Length / Transfer-Encoding in a 2xx.
    let answer =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n\x16\x03\x03tls";
    let mut tunnel = ConnectTunnel::new("example.com", 443, &HeaderMap::new(), None);
    let (_, event) = run(&mut tunnel, answer, &[]);
    assert_eq!(event, established(b"\x16\x03\x03tls"));
}

#[test]
fn connect_refusals_carry_the_status_and_the_proxys_fields() {
    let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
        Proxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Length: 3\r\n\r\nno!";
    let mut tunnel = ConnectTunnel::new("example.com", 443, &HeaderMap::new(), None);
    match run(&mut tunnel, answer, &[]).1 {
        Some(ProxyEvent::Failed(ProxyError::Refused { status, headers })) => {
            assert_eq!(status, 407);
            assert_eq!(headers["proxy-authenticate"], "Basic realm=\"proxy\"");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_malformed_answers_closes_and_deadlines_are_typed() {
    let mut tunnel = ConnectTunnel::new("example.com", 443, &HeaderMap::new(), None);
    let (_, event) = run(&mut tunnel, b"SSH-2.0-OpenSSH\r\n\r\n", &[]);
    assert!(matches!(
        event,
        Some(ProxyEvent::Failed(ProxyError::Malformed {
            reason: MalformedReason::InvalidHttp,
            ..
        }))
    ));

    let mut tunnel = ConnectTunnel::new("example.com", 443, &HeaderMap::new(), None);
    let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
    while huge.len() <= 17 * 1024 {
        huge.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let (_, event) = run(&mut tunnel, &huge, &[]);
    assert!(matches!(
        event,
        Some(ProxyEvent::Failed(ProxyError::Malformed {
            reason: MalformedReason::HeadTooLarge,
            ..
        }))
    ));

    let mut tunnel = ConnectTunnel::new("example.com", 443, &HeaderMap::new(), None);
    tunnel.handle_input(at(0), b"HTTP/1.1 200 OK\r\n");
    tunnel.handle_eof();
    assert_eq!(
        tunnel.poll_event(),
        Some(ProxyEvent::Failed(ProxyError::Closed))
    );
    assert_eq!(tunnel.poll_event(), None);

    let mut tunnel = ConnectTunnel::new("example.com", 443, &HeaderMap::new(), Some(at(500)));
    assert_eq!(tunnel.poll_timeout(), Some(at(500)));
    tunnel.handle_timeout(at(499));
    assert_eq!(tunnel.poll_event(), None);
    tunnel.handle_timeout(at(500));
    assert_eq!(
        tunnel.poll_event(),
        Some(ProxyEvent::Failed(ProxyError::TimedOut))
    );
    assert_eq!(tunnel.poll_timeout(), None);
}

// ---- SOCKS5 ----

/// A SOCKS5 success reply binding `addr`.
fn reply_ok(addr: SocketAddr) -> Vec<u8> {
    let mut out = vec![5, 0, 0];
    match addr {
        SocketAddr::V4(a) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// What a proxy decodes from a CONNECT request: the target.
fn decode_request(bytes: &[u8]) -> Socks5Target {
    assert_eq!(&bytes[..3], &[5, 1, 0]);
    let port = |rest: &[u8]| u16::from_be_bytes([rest[0], rest[1]]);
    match bytes[3] {
        1 => {
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            assert_eq!(bytes.len(), 10);
            Socks5Target::Ip(SocketAddr::new(ip.into(), port(&bytes[8..])))
        }
        4 => {
            let octets: [u8; 16] = bytes[4..20].try_into().unwrap();
            assert_eq!(bytes.len(), 22);
            Socks5Target::Ip(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                port(&bytes[20..]),
            ))
        }
        3 => {
            let n = usize::from(bytes[4]);
            assert_eq!(bytes.len(), 5 + n + 2);
            let name = String::from_utf8(bytes[5..5 + n].to_vec()).unwrap();
            Socks5Target::Domain(name, port(&bytes[5 + n..]))
        }
        other => panic!("address type {other}"),
    }
}

#[test]
fn socks5_without_credentials_offers_no_auth_then_connects() {
    let target = Socks5Target::Domain("example.com".into(), 443);
    let mut handshake = Socks5Handshake::new(&target, None, None);
    let mut answer = vec![5, 0];
    answer.extend(reply_ok("10.0.0.1:1080".parse().unwrap()));
    answer.extend_from_slice(b"first bytes");
    let (sent, event) = run(&mut handshake, &answer, &[]);
    assert_eq!(&sent[..3], &[5, 1, 0]);
    assert_eq!(decode_request(&sent[3..]), target);
    assert_eq!(event, established(b"first bytes"));
}

#[test]
fn socks5_with_credentials_authenticates_per_rfc_1929() {
    let target = Socks5Target::Ip("[2001:db8::7]:8080".parse().unwrap());
    let credentials = Socks5Credentials::new("user", "pässword").unwrap();
    let mut handshake = Socks5Handshake::new(&target, Some(credentials), None);
    let mut answer = vec![5, 2, 1, 0];
    answer.extend(reply_ok("[::1]:9".parse().unwrap()));
    let (sent, event) = run(&mut handshake, &answer, &[]);
    assert_eq!(
        &sent[..4],
        &[5, 2, 0, 2],
        "offers none and username/password"
    );
    let password = "pässword".as_bytes();
    let mut auth = vec![1, 4];
    auth.extend_from_slice(b"user");
    auth.push(password.len() as u8);
    auth.extend_from_slice(password);
    assert_eq!(&sent[4..4 + auth.len()], &auth[..]);
    assert_eq!(decode_request(&sent[4 + auth.len()..]), target);
    assert_eq!(event, established(b""));
}

#[test]
fn socks5_every_reply_code_is_typed() {
    for code in 1..=255u8 {
        let target = Socks5Target::Ip("192.0.2.1:80".parse().unwrap());
        let mut handshake = Socks5Handshake::new(&target, None, None);
        let (_, event) = run(&mut handshake, &[5, 0, 5, code, 0, 1], &[]);
        let expected = Socks5Reply::from_code(code).unwrap();
        assert_eq!(expected.code(), code);
        assert_eq!(
            event,
            Some(ProxyEvent::Failed(ProxyError::Socks5(expected)))
        );
    }
    assert_eq!(
        Socks5Reply::from_code(5),
        Some(Socks5Reply::ConnectionRefused)
    );
    assert_eq!(Socks5Reply::from_code(0x09), Some(Socks5Reply::Other(9)));
}

#[test]
fn socks5_refusals_and_broken_answers_are_typed() {
    let target = Socks5Target::Domain("example.com".into(), 80);
    let failed = |answer: &[u8], credentials: Option<Socks5Credentials>| {
        let mut handshake = Socks5Handshake::new(&target, credentials, None);
        match run(&mut handshake, answer, &[]).1 {
            Some(ProxyEvent::Failed(error)) => error,
            other => panic!("{other:?}"),
        }
    };
    let creds = || Some(Socks5Credentials::new("u", "p").unwrap());
    assert_eq!(failed(&[5, 0xFF], None), ProxyError::NoAcceptableMethod);
    assert_eq!(
        failed(&[5, 2, 1, 1], creds()),
        ProxyError::AuthenticationFailed { status: 1 }
    );
    let malformed = |error: ProxyError| match error {
        ProxyError::Malformed { reason, offset } => (reason, offset),
        other => panic!("{other:?}"),
    };
    // Username/password chosen though not offered.
    assert_eq!(
        malformed(failed(&[5, 2], None)),
        (MalformedReason::UnofferedMethod, 1)
    );
    assert_eq!(
        malformed(failed(&[4, 0], None)),
        (MalformedReason::WrongVersion, 0)
    );
    assert_eq!(
        malformed(failed(&[5, 2, 5, 0], creds())),
        (MalformedReason::WrongVersion, 2)
    );
    assert_eq!(
        malformed(failed(&[5, 0, 5, 0, 1, 1, 0, 0, 0, 0, 0, 0], None)),
        (MalformedReason::InvalidReply, 4)
    );
    assert_eq!(
        malformed(failed(&[5, 0, 5, 0, 0, 9], None)),
        (MalformedReason::InvalidReply, 5)
    );
    // A domain reply is read to its end.
    let mut handshake = Socks5Handshake::new(&target, None, None);
    let (_, event) = run(
        &mut handshake,
        b"\x05\x00\x05\x00\x00\x03\x04host\x00\x50rest",
        &[],
    );
    assert_eq!(event, established(b"rest"));
}

#[test]
fn socks5_arguments_the_protocol_cannot_carry_are_refused() {
    assert_eq!(
        Socks5Credentials::new("", "p"),
        Err(ProxyError::InvalidCredentials)
    );
    assert_eq!(
        Socks5Credentials::new("u", vec![b'p'; 256]),
        Err(ProxyError::InvalidCredentials)
    );
    for name in [String::new(), "a".repeat(256)] {
        let mut handshake = Socks5Handshake::new(&Socks5Target::Domain(name, 80), None, None);
        assert_eq!(handshake.poll_transmit(at(0)), None);
        assert_eq!(
            handshake.poll_event(),
            Some(ProxyEvent::Failed(ProxyError::InvalidTarget))
        );
    }
}

#[test]
fn socks5_eof_and_deadline() {
    let target = Socks5Target::Domain("example.com".into(), 80);
    let mut handshake = Socks5Handshake::new(&target, None, Some(at(10)));
    handshake.handle_input(at(1), &[5]);
    handshake.handle_eof();
    assert_eq!(
        handshake.poll_event(),
        Some(ProxyEvent::Failed(ProxyError::Closed))
    );
    let mut handshake = Socks5Handshake::new(&target, None, Some(at(10)));
    handshake.handle_timeout(at(10));
    assert_eq!(
        handshake.poll_event(),
        Some(ProxyEvent::Failed(ProxyError::TimedOut))
    );
    // Nothing after the outcome.
    handshake.handle_input(at(11), &[5, 0]);
    assert_eq!(handshake.poll_transmit(at(11)), None);
    assert_eq!(handshake.poll_event(), None);
}

fn socks5_target() -> impl Strategy<Value = Socks5Target> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| Socks5Target::Ip(SocketAddr::new(
            Ipv4Addr::from(ip).into(),
            port
        ))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| Socks5Target::Ip(SocketAddr::new(
            Ipv6Addr::from(ip).into(),
            port
        ))),
        ("[a-z0-9.-]{1,255}", any::<u16>())
            .prop_map(|(name, port)| Socks5Target::Domain(name, port)),
    ]
}

proptest! {
    /// However the answer is split, the same bytes go out and the same event comes.
    #[test]
    fn socks5_is_split_invariant_and_requests_round_trip(
        target in socks5_target(),
        auth in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..32),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let credentials = auth.then(|| Socks5Credentials::new("user", "secret").unwrap());
        let mut answer = if auth { vec![5, 2, 1, 0] } else { vec![5, 0] };
        answer.extend(reply_ok("127.0.0.1:1080".parse().unwrap()));
        answer.extend_from_slice(&tail);
        let whole = run(&mut Socks5Handshake::new(&target, credentials.clone(), None), &answer, &[]);
        let split = run(&mut Socks5Handshake::new(&target, credentials, None), &answer, &cuts);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole.1, established(&tail));
        let request_at = if auth { 4 + 3 + 4 + 6 } else { 3 };
        prop_assert_eq!(decode_request(&whole.0[request_at..]), target);
    }

    /// Any bytes from a CONNECT proxy, however split: the same outcome, never a panic.
    #[test]
    fn connect_is_split_invariant_on_any_answer(
        answer in proptest::collection::vec(any::<u8>(), 0..256),
        status in 100u16..600,
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut framed = format!("HTTP/1.1 {status} X\r\nVia: p\r\n\r\n").into_bytes();
        framed.extend_from_slice(&answer);
        for input in [&answer[..], &framed[..]] {
            let whole = run(&mut ConnectTunnel::new("h", 1, &HeaderMap::new(), None), input, &[]);
            let split = run(&mut ConnectTunnel::new("h", 1, &HeaderMap::new(), None), input, &cuts);
            prop_assert_eq!(whole, split);
        }
    }

    /// A CONNECT request decodes (with httparse, as a proxy would) to the asked target.
    #[test]
    fn connect_requests_round_trip(host in "[a-z][a-z0-9-]{0,30}(\\.[a-z0-9-]{1,20}){0,3}", port in any::<u16>()) {
        let mut tunnel = ConnectTunnel::new(&host, port, &HeaderMap::new(), None);
        let sent = tunnel.poll_transmit(at(0)).unwrap();
        let mut fields = [httparse::EMPTY_HEADER; 4];
        let mut request = httparse::Request::new(&mut fields);
        prop_assert!(request.parse(&sent).unwrap().is_complete());
        prop_assert_eq!(request.method, Some("CONNECT"));
        let authority = format!("{host}:{port}");
        prop_assert_eq!(request.path, Some(authority.as_str()));
        prop_assert_eq!(request.headers[0].value, authority.as_bytes());
    }
}
