//! WebSocket connection and handshake: RFC 6455 rules, heartbeat, close handshake, and an
//! in-memory client/server pair driven by fake time.

use super::*;
use crate::time::Instant;
use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, StatusCode, Uri};
use proptest::prelude::*;
use std::time::Duration;

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn plain() -> WsConfig {
    WsConfig {
        deflate: None,
        ..WsConfig::default()
    }
}

/// Counter-based mask keys: deterministic, different per frame.
fn keys() -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut n = 0x1234_5678u32;
    move || {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12345);
        n.to_be_bytes()
    }
}

/// A frame as a client would put it on the wire (masked with a fixed key).
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = BytesMut::new();
    out.put_u8(b0);
    match payload.len() {
        n if n < 126 => out.put_u8(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.put_u8(0x80 | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(0x80 | 127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out.to_vec()
}

fn events(ws: &mut WebSocket) -> Vec<WsEvent> {
    std::iter::from_fn(|| ws.poll_event()).collect()
}

fn wire(ws: &mut WebSocket) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = ws.poll_transmit(Instant::ZERO) {
        out.extend_from_slice(&b);
    }
    out
}

fn server() -> WebSocket {
    WebSocket::server(plain(), None, ms(0))
}

fn feed(ws: &mut WebSocket, bytes: &[u8]) -> Vec<WsEvent> {
    ws.handle_input(ms(0), bytes);
    events(ws)
}

fn protocol_error(events: &[WsEvent]) -> ProtocolErrorKind {
    match events.last() {
        Some(WsEvent::Closed(CloseReason::ProtocolError(e))) => e.kind(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn text_and_binary_messages() {
    let mut ws = server();
    let mut input = client_frame(0x81, b"Hello");
    input.extend(client_frame(0x82, &[0, 1, 2]));
    assert_eq!(
        feed(&mut ws, &input),
        [
            WsEvent::Text("Hello".into()),
            WsEvent::Binary(Bytes::from_static(&[0, 1, 2]))
        ]
    );
}

#[test]
fn fragments_with_a_ping_between() {
    let mut ws = server();
    let mut input = client_frame(0x01, b"Hel");
    input.extend(client_frame(0x89, b"p1"));
    input.extend(client_frame(0x00, b"l"));
    input.extend(client_frame(0x80, b"o"));
    let evs = feed(&mut ws, &input);
    assert_eq!(
        evs,
        [
            WsEvent::Ping(Bytes::from_static(b"p1")),
            WsEvent::Text("Hello".into())
        ]
    );
    assert_eq!(wire(&mut ws), b"\x8a\x02p1", "the pong goes out unmasked");
}

#[test]
fn every_ping_gets_its_own_pong_in_order_even_if_nobody_reads() {
    let mut ws = server();
    ws.handle_input(ms(0), &client_frame(0x89, b"first"));
    ws.handle_input(ms(0), &client_frame(0x89, b"second"));
    ws.handle_input(ms(0), &client_frame(0x89, b""));
    // The application has not polled any event yet; decoding happens when it does, so the
    // adapter's drain of poll_event is what turns pings into pongs.
    let evs = events(&mut ws);
    assert_eq!(evs.len(), 3);
    assert_eq!(
        wire(&mut ws),
        b"\x8a\x05first\x8a\x06second\x8a\x00",
        "one pong per ping, with its payload, in order"
    );
}

#[test]
fn pongs_coalesce_only_past_the_backlog() {
    let mut ws = server();
    let payload = |i: usize| format!("{i:0>125}").into_bytes();
    let pings = PONG_BACKLOG / 125 + 10;
    let mut input = Vec::new();
    for i in 0..pings {
        input.extend(client_frame(0x89, &payload(i)));
    }
    assert_eq!(feed(&mut ws, &input).len(), pings);
    let out = wire(&mut ws);
    let pongs: Vec<&[u8]> = out.chunks(127).map(|frame| &frame[2..]).collect();
    assert!(out.chunks(127).all(|frame| frame[..2] == [0x8a, 125]));
    // Older pongs were dropped once the backlog filled; the latest ping is always answered
    // and what is answered stays in order.
    assert!(pongs.len() < pings && pongs.len() * 125 <= PONG_BACKLOG);
    assert_eq!(pongs.last().copied(), Some(&payload(pings - 1)[..]));
    let first: usize = std::str::from_utf8(pongs[0]).unwrap().parse().unwrap();
    let answered: Vec<Vec<u8>> = (first..pings).map(payload).collect();
    assert_eq!(
        pongs,
        answered.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );

    // Read in smaller batches (a transmit between them), nothing coalesces.
    let mut ws = server();
    let mut out = Vec::new();
    for i in 0..pings {
        feed(&mut ws, &client_frame(0x89, &payload(i)));
        out.extend(wire(&mut ws));
    }
    assert_eq!(out.len(), pings * 127);
}

#[test]
fn pongs_keep_their_place_before_later_frames() {
    // A ping, then the application sends a message, then the peer closes: the pong owed
    // goes first, then the message, then the close echo.
    let mut ws = server();
    assert_eq!(
        feed(&mut ws, &client_frame(0x89, b"p")),
        [WsEvent::Ping(Bytes::from_static(b"p"))]
    );
    ws.send_text("after").unwrap();
    let mut close = client_frame(0x89, b"q");
    close.extend(client_frame(0x88, &[0x03, 0xe8]));
    let evs = feed(&mut ws, &close);
    assert!(matches!(evs.last(), Some(WsEvent::Closed(_))), "{evs:?}");
    assert_eq!(
        wire(&mut ws),
        b"\x8a\x01p\x81\x05after\x8a\x01q\x88\x02\x03\xe8"
    );
}

#[test]
fn peer_close_is_echoed_and_final() {
    let mut ws = server();
    let mut input = client_frame(0x88, b"\x03\xe9going");
    input.extend(client_frame(0x81, b"after close"));
    let evs = feed(&mut ws, &input);
    assert_eq!(
        evs,
        [WsEvent::Closed(CloseReason::ByPeer {
            code: Some(1001),
            reason: "going".into()
        })]
    );
    assert_eq!(wire(&mut ws), b"\x88\x02\x03\xe9");
    assert!(ws.is_closed());
    assert!(ws.poll_event().is_none(), "nothing after the final event");
    assert_eq!(ws.send_text("late"), Err(LocalError::Closed));
    let mut ws = server();
    let evs = feed(&mut ws, &client_frame(0x88, b""));
    assert_eq!(
        evs[0],
        WsEvent::Closed(CloseReason::ByPeer {
            code: None,
            reason: String::new()
        })
    );
    assert_eq!(wire(&mut ws), b"\x88\x00");
    if let WsEvent::Closed(reason) = &evs[0] {
        assert_eq!(reason.code(), 1005);
    }
}

#[test]
fn our_close_waits_for_the_answer() {
    let mut ws = server();
    ws.close(ms(100), Some(1000), "bye").unwrap();
    assert_eq!(wire(&mut ws), b"\x88\x05\x03\xe8bye");
    assert_eq!(ws.poll_timeout(), Some(ms(10_100)));
    assert_eq!(ws.close(ms(100), None, ""), Err(LocalError::Closed));
    // Messages still arrive until the peer's close.
    let mut input = client_frame(0x81, b"last");
    input.extend(client_frame(0x88, b"\x03\xe8"));
    let evs = feed(&mut ws, &input);
    assert_eq!(
        evs,
        [
            WsEvent::Text("last".into()),
            WsEvent::Closed(CloseReason::ByUs {
                code: Some(1000),
                reason: String::new()
            })
        ]
    );
    assert!(wire(&mut ws).is_empty(), "no second close frame");
    assert!(ws.is_closed());
}

#[test]
fn close_timeout() {
    let mut ws = server();
    ws.close(ms(0), Some(1000), "").unwrap();
    wire(&mut ws);
    ws.handle_timeout(ms(9_999));
    assert!(ws.poll_event().is_none());
    ws.handle_timeout(ms(10_000));
    assert_eq!(
        events(&mut ws),
        [WsEvent::Closed(CloseReason::CloseTimeout)]
    );
    assert!(ws.is_closed());
}

#[test]
fn invalid_close_frames() {
    for (payload, kind, code) in [
        (
            &b"\x03"[..],
            ProtocolErrorKind::InvalidClosePayload,
            1002u16,
        ),
        (b"\x03\xed", ProtocolErrorKind::InvalidCloseCode, 1002), // 1005
        (b"\x03\xee", ProtocolErrorKind::InvalidCloseCode, 1002), // 1006
        (b"\x03\xf7", ProtocolErrorKind::InvalidCloseCode, 1002), // 1015
        (b"\x03\xe7", ProtocolErrorKind::InvalidCloseCode, 1002), // 999
        (b"\x07\xd0", ProtocolErrorKind::InvalidCloseCode, 1002), // 2000
        (b"\x03\xe8\xff", ProtocolErrorKind::InvalidCloseReason, 1007),
    ] {
        let mut ws = server();
        let evs = feed(&mut ws, &client_frame(0x88, payload));
        assert_eq!(protocol_error(&evs), kind, "{payload:?}");
        let out = wire(&mut ws);
        assert_eq!(&out[..4], &[0x88, 0x02, (code >> 8) as u8, code as u8]);
    }
}

#[test]
fn protocol_violations_fail_with_their_code() {
    let cases: Vec<(Vec<u8>, ProtocolErrorKind)> = vec![
        (b"\x81\x05Hello".to_vec(), ProtocolErrorKind::UnmaskedFrame),
        (client_frame(0x83, b""), ProtocolErrorKind::ReservedOpcode),
        (client_frame(0xC1, b"x"), ProtocolErrorKind::ReservedBits),
        (
            client_frame(0x00, b"x"),
            ProtocolErrorKind::UnexpectedContinuation,
        ),
        (
            [client_frame(0x01, b"a"), client_frame(0x81, b"b")].concat(),
            ProtocolErrorKind::ExpectedContinuation,
        ),
        (
            client_frame(0x09, b""),
            ProtocolErrorKind::FragmentedControlFrame,
        ),
        (
            client_frame(0x89, &[0; 126]),
            ProtocolErrorKind::ControlFrameTooLong,
        ),
        (client_frame(0x81, b"\xff"), ProtocolErrorKind::InvalidUtf8),
    ];
    for (input, kind) in cases {
        let mut ws = server();
        let evs = feed(&mut ws, &input);
        assert_eq!(protocol_error(&evs), kind);
        let out = wire(&mut ws);
        assert_eq!(out[0], 0x88, "a close frame is sent");
        let code = u16::from_be_bytes([out[2], out[3]]);
        assert_eq!(code, kind.close_code());
        assert!(ws.is_closed());
    }
}

#[test]
fn invalid_utf8_fails_at_the_first_bad_byte_mid_message() {
    let mut ws = server();
    // First fragment of a text message: valid "ok", then an invalid byte; FIN not set and
    // the rest never comes. The error must not wait for the end of the message.
    let evs = feed(&mut ws, &client_frame(0x01, b"ok\xc0\xaf"));
    assert_eq!(protocol_error(&evs), ProtocolErrorKind::InvalidUtf8);
    if let Some(WsEvent::Closed(CloseReason::ProtocolError(e))) = evs.last() {
        assert_eq!(e.offset(), 6 + 2, "header (2 + 4 mask) + 2 valid bytes");
    }
    // Even within one frame that is still arriving.
    let mut ws = server();
    let frame = client_frame(0x81, &[b'a', b'b', 0xff, b'c', b'd', b'e', b'f', b'g']);
    let evs = feed(&mut ws, &frame[..9]);
    assert_eq!(protocol_error(&evs), ProtocolErrorKind::InvalidUtf8);
    // A character split across fragments is fine.
    let mut ws = server();
    let euro = "€".as_bytes();
    let input = [
        client_frame(0x01, &euro[..1]),
        client_frame(0x80, &euro[1..]),
    ]
    .concat();
    assert_eq!(feed(&mut ws, &input), [WsEvent::Text("€".into())]);
    // But a text message ending mid-character is not.
    let mut ws = server();
    let evs = feed(&mut ws, &client_frame(0x81, &euro[..2]));
    assert_eq!(protocol_error(&evs), ProtocolErrorKind::InvalidUtf8);
}

#[test]
fn size_limits() {
    let config = WsConfig {
        max_frame_size: 100,
        max_message_size: 150,
        ..plain()
    };
    let mut ws = WebSocket::server(config.clone(), None, ms(0));
    // A declared length over the limit fails on the header alone.
    let header_only = &client_frame(0x82, &[0; 101])[..8];
    let evs = feed(&mut ws, header_only);
    assert_eq!(protocol_error(&evs), ProtocolErrorKind::FrameTooLarge);
    assert_eq!(&wire(&mut ws)[..4], b"\x88\x02\x03\xf1");
    // A huge 64-bit length, too.
    let mut ws = WebSocket::server(config.clone(), None, ms(0));
    let evs = feed(
        &mut ws,
        &[0x82, 0xFF, 0, 0, 0x10, 0, 0, 0, 0, 0, 1, 2, 3, 4],
    );
    assert_eq!(protocol_error(&evs), ProtocolErrorKind::FrameTooLarge);
    // Fragments adding up past the message limit.
    let mut ws = WebSocket::server(config, None, ms(0));
    let input = [client_frame(0x02, &[0; 100]), client_frame(0x80, &[0; 51])].concat();
    let evs = feed(&mut ws, &input);
    assert_eq!(protocol_error(&evs), ProtocolErrorKind::MessageTooLarge);
}

#[test]
fn transport_end_without_close() {
    let mut ws = server();
    ws.handle_input(ms(0), &client_frame(0x81, b"hi")[..4]);
    ws.handle_eof();
    let evs = events(&mut ws);
    assert_eq!(evs, [WsEvent::Closed(CloseReason::TransportClosed)]);
    if let WsEvent::Closed(r) = &evs[0] {
        assert_eq!(r.code(), 1006);
        assert!(!r.is_clean());
    }
    assert!(wire(&mut ws).is_empty());
    assert!(ws.is_closed());
}

#[test]
fn client_masks_and_server_does_not() {
    let mut client = WebSocket::client(plain(), None, ms(0), || [9, 8, 7, 6]);
    client.send_text("abc").unwrap();
    let out = wire(&mut client);
    assert_eq!(&out[..6], &[0x81, 0x83, 9, 8, 7, 6]);
    assert_eq!(&out[6..], &[b'a' ^ 9, b'b' ^ 8, b'c' ^ 7]);
    let mut srv = server();
    srv.send_binary(Bytes::from_static(b"xyz")).unwrap();
    assert_eq!(wire(&mut srv), b"\x82\x03xyz");
    // A masked frame from a server is an error for the client.
    let evs = {
        client.handle_input(ms(0), &client_frame(0x81, b"x"));
        events(&mut client)
    };
    assert_eq!(protocol_error(&evs), ProtocolErrorKind::MaskedFrame);
}

#[test]
fn streamed_sending_and_local_errors() {
    let mut ws = server();
    ws.send_fragment(MessageKind::Text, Bytes::from_static(b"he"), false)
        .unwrap();
    assert!(
        ws.send_text("x").is_err(),
        "no whole message inside a streamed one"
    );
    assert!(ws
        .send_fragment(MessageKind::Binary, Bytes::new(), true)
        .is_err());
    ws.send_ping(Bytes::from_static(b"p")).unwrap();
    ws.send_fragment(MessageKind::Text, Bytes::from_static(b"llo"), true)
        .unwrap();
    assert_eq!(wire(&mut ws), b"\x01\x02he\x89\x01p\x80\x03llo");
    assert_eq!(
        ws.send_ping(Bytes::from(vec![0; 126])),
        Err(LocalError::ControlPayloadTooLong)
    );
    assert_eq!(
        ws.close(ms(0), Some(1005), ""),
        Err(LocalError::InvalidCloseCode(1005))
    );
    assert_eq!(
        ws.close(ms(0), Some(1000), &"r".repeat(124)),
        Err(LocalError::ControlPayloadTooLong)
    );
}

fn heartbeat_config() -> WsConfig {
    WsConfig {
        heartbeat: Some(Duration::from_millis(1000)),
        ..plain()
    }
}

#[test]
fn heartbeat_pings_then_times_out() {
    let mut ws = WebSocket::server(heartbeat_config(), None, ms(0));
    assert_eq!(ws.poll_timeout(), Some(ms(1000)));
    ws.handle_timeout(ms(999));
    assert!(wire(&mut ws).is_empty());
    ws.handle_timeout(ms(1000));
    let ping = wire(&mut ws);
    assert_eq!(ping[0], 0x89, "a ping");
    assert_eq!(
        ws.poll_timeout(),
        Some(ms(1500)),
        "pong timeout defaults to half"
    );
    ws.handle_timeout(ms(1500));
    let evs = events(&mut ws);
    assert_eq!(evs, [WsEvent::Closed(CloseReason::PingTimeout)]);
    if let WsEvent::Closed(r) = &evs[0] {
        assert_eq!(r.code(), 1006);
    }
    assert!(ws.is_closed());
}

#[test]
fn heartbeat_any_byte_is_life() {
    let mut ws = WebSocket::server(heartbeat_config(), None, ms(0));
    ws.handle_timeout(ms(1000));
    wire(&mut ws);
    // A big frame trickles in: its bytes keep the connection alive though no pong comes.
    let big = client_frame(0x82, &vec![7u8; 10_000]);
    let mut t = 1000;
    for piece in big.chunks(1000) {
        t += 400;
        ws.handle_input(ms(t), piece);
        ws.handle_timeout(ms(t));
        assert!(
            ws.poll_timeout().unwrap() > ms(t),
            "no deadline in the past"
        );
    }
    let evs = events(&mut ws);
    assert!(
        matches!(&evs[..], [WsEvent::Binary(b)] if b.len() == 10_000),
        "{evs:?}"
    );
    assert_eq!(
        ws.poll_timeout(),
        Some(ms(t + 1000)),
        "next ping after a quiet interval"
    );
}

#[test]
fn idle_timeout_closes_with_1001() {
    let config = WsConfig {
        idle_timeout: Some(Duration::from_secs(5)),
        ..plain()
    };
    let mut ws = WebSocket::server(config, None, ms(0));
    ws.handle_input(ms(3000), &client_frame(0x81, b"x"));
    assert_eq!(ws.poll_timeout(), Some(ms(8000)));
    ws.handle_timeout(ms(8000));
    assert_eq!(wire(&mut ws), b"\x88\x0e\x03\xe9idle timeout");
    let evs = events(&mut ws);
    assert_eq!(evs.last(), Some(&WsEvent::Closed(CloseReason::IdleTimeout)));
}

// ---- handshake ----

#[test]
fn rfc_accept_key() {
    assert_eq!(
        accept_key_of("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

fn accept_key_of(key: &str) -> String {
    handshake::accept_key(key.as_bytes())
}

fn upgrade_request() -> Request<()> {
    Request::get("/chat")
        .header("host", "server.example.com")
        .header("upgrade", "websocket")
        .header("connection", "keep-alive, Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat, superchat")
        .body(())
        .unwrap()
}

#[test]
fn server_accepts_a_valid_upgrade() {
    let (response, negotiated) =
        accept(&upgrade_request(), &["superchat", "chat"], &plain()).unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "superchat",
        "server preference"
    );
    assert_eq!(negotiated.protocol.as_deref(), Some("superchat"));
    let (response, negotiated) = accept(&upgrade_request(), &["other"], &plain()).unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    assert_eq!(negotiated.protocol, None);
}

#[test]
fn server_refusals() {
    let edit = |f: &dyn Fn(&mut Request<()>)| {
        let mut r = upgrade_request();
        f(&mut r);
        accept(&r, &[], &plain()).unwrap_err()
    };
    let e = edit(&|r| {
        r.headers_mut()
            .insert("sec-websocket-version", "8".parse().unwrap());
    });
    assert_eq!(e, HandshakeError::UnsupportedVersion);
    let refusal = e.response();
    assert_eq!(refusal.status(), 426);
    assert_eq!(refusal.headers()["sec-websocket-version"], "13");
    let bad: Vec<HandshakeError> = vec![
        edit(&|r| *r.method_mut() = http::Method::POST),
        edit(&|r| *r.version_mut() = http::Version::HTTP_10),
        edit(&|r| {
            r.headers_mut().remove("upgrade");
        }),
        edit(&|r| {
            r.headers_mut()
                .insert("connection", "keep-alive".parse().unwrap());
        }),
        edit(&|r| {
            r.headers_mut()
                .insert("sec-websocket-key", "c2hvcnQ=".parse().unwrap());
        }),
        edit(&|r| {
            r.headers_mut().remove("sec-websocket-key");
        }),
        edit(&|r| {
            r.headers_mut()
                .insert("sec-websocket-key", "not base64!!".parse().unwrap());
        }),
    ];
    for e in bad {
        assert!(matches!(e, HandshakeError::BadRequest(_)), "{e:?}");
        assert_eq!(e.status(), 400);
    }
    let missing_version = edit(&|r| {
        r.headers_mut().remove("sec-websocket-version");
    });
    assert_eq!(missing_version.status(), 426);
}

#[test]
fn client_handshake_round_trip_with_deflate() {
    let uri: Uri = "ws://example.com:9000/chat?room=1".parse().unwrap();
    let config = WsConfig::default();
    let (client, request) = ClientHandshake::new(&uri, [7; 16], &["chat"], &config).unwrap();
    assert_eq!(request.headers()["sec-websocket-version"], "13");
    assert!(request.headers().contains_key("sec-websocket-extensions"));
    let (response, server_side) = accept(&request, &["chat"], &config).unwrap();
    let client_side = client.validate(&response).unwrap();
    assert_eq!(client_side, server_side);
    assert!(client_side.deflate.is_some());
    assert_eq!(client_side.protocol.as_deref(), Some("chat"));
}

#[test]
fn client_rejects_bad_answers() {
    let uri: Uri = "ws://example.com/".parse().unwrap();
    let (client, request) = ClientHandshake::new(&uri, [1; 16], &["a"], &plain()).unwrap();
    let (good, _) = accept(&request, &["a"], &plain()).unwrap();
    assert!(client.validate(&good).is_ok());
    let mut bad = good.clone();
    bad.headers_mut()
        .insert("sec-websocket-accept", "AAAA".parse().unwrap());
    assert_eq!(client.validate(&bad), Err(HandshakeError::BadAccept));
    let mut bad = good.clone();
    bad.headers_mut()
        .insert("sec-websocket-protocol", "b".parse().unwrap());
    assert_eq!(
        client.validate(&bad),
        Err(HandshakeError::UnofferedProtocol)
    );
    let mut bad = good.clone();
    bad.headers_mut().insert(
        "sec-websocket-extensions",
        "permessage-deflate".parse().unwrap(),
    );
    assert_eq!(
        client.validate(&bad),
        Err(HandshakeError::UnofferedExtension)
    );
    // An extensions field of empty list elements names no extension (RFC 9110 §5.6.1.2);
    // found by the ws_handshake fuzz target.
    for empty in [",", " , ,\t", ""] {
        let mut answer = good.clone();
        answer
            .headers_mut()
            .insert("sec-websocket-extensions", empty.parse().unwrap());
        assert!(client.validate(&answer).is_ok(), "{empty:?}");
    }
    let mut bad = good.clone();
    bad.headers_mut().insert(
        "sec-websocket-extensions",
        ", permessage-deflate".parse().unwrap(),
    );
    assert_eq!(
        client.validate(&bad),
        Err(HandshakeError::UnofferedExtension)
    );
    let mut bad = good.clone();
    bad.headers_mut().remove("upgrade");
    assert_eq!(
        client.validate(&bad),
        Err(HandshakeError::MissingUpgradeHeaders)
    );
    let mut bad = good;
    *bad.status_mut() = StatusCode::FORBIDDEN;
    assert_eq!(
        client.validate(&bad),
        Err(HandshakeError::NotSwitching(StatusCode::FORBIDDEN))
    );
    let bad_uri: Uri = "ftp://example.com/".parse().unwrap();
    assert!(ClientHandshake::new(&bad_uri, [0; 16], &[], &plain()).is_err());
}

// ---- an in-memory pair with fake time ----

/// A client and a server wired to each other; time moves only when the test says.
struct Pair {
    client: WebSocket,
    server: WebSocket,
    now: Instant,
    client_events: Vec<WsEvent>,
    server_events: Vec<WsEvent>,
}

impl Pair {
    fn new(config: WsConfig, deflate: Option<DeflateParams>) -> Pair {
        Pair {
            client: WebSocket::client(config.clone(), deflate, ms(0), keys()),
            server: WebSocket::server(config, deflate, ms(0)),
            now: ms(0),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    /// Moves bytes both ways until nothing moves, cutting each transmission at `cut`.
    fn pump(&mut self, cut: usize) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(b) = self.client.poll_transmit(Instant::ZERO) {
                for piece in b.chunks(cut.max(1)) {
                    self.server.handle_input(self.now, piece);
                }
                moved = true;
            }
            while let Some(b) = self.server.poll_transmit(Instant::ZERO) {
                for piece in b.chunks(cut.max(1)) {
                    self.client.handle_input(self.now, piece);
                }
                moved = true;
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
                moved = true;
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("pump did not settle");
    }

    /// Advances time to the earlier deadline of the two and handles it.
    fn step_time(&mut self) {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        if let Some(t) = next {
            self.now = self.now.max(t);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    ClientText(String),
    ClientBinary(Vec<u8>),
    ServerText(String),
    ServerBinary(Vec<u8>),
    ClientPing(Vec<u8>),
    ServerStream(Vec<Vec<u8>>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        "\\PC{0,200}".prop_map(Op::ClientText),
        prop::collection::vec(any::<u8>(), 0..3000).prop_map(Op::ClientBinary),
        "\\PC{0,200}".prop_map(Op::ServerText),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..70_000),
            prop::collection::vec(Just(b'z'), 0..70_000)
        ]
        .prop_map(Op::ServerBinary),
        prop::collection::vec(any::<u8>(), 0..125).prop_map(Op::ClientPing),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..500), 1..4)
            .prop_map(Op::ServerStream),
    ]
}

/// What our client and our server agree on, the client offering `client` and the server
/// configured with `server`; `None` if the server declines.
fn agree(client: &DeflateConfig, server: &DeflateConfig) -> Option<DeflateParams> {
    let offer = deflate::client_offer(client);
    let (params, answer) = deflate::server_negotiate(server, &[offer.as_str()])?;
    assert_eq!(
        deflate::client_accept(client, &[answer.as_str()]),
        Ok(Some(params))
    );
    Some(params)
}

fn deflate_config(
    server_bits: u8,
    client_bits: Option<u8>,
    server_nct: bool,
    client_nct: bool,
) -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        ..DeflateConfig::default()
    }
}

/// Negotiated parameters over random flags and window sizes (2^8 asked of the server is
/// declined, hence the 9 at the bottom).
fn deflate_params() -> impl Strategy<Value = Option<DeflateParams>> {
    let client_bits = prop_oneof![Just(None), (9u8..=15).prop_map(Some)];
    prop::option::of((
        any::<bool>(),
        any::<bool>(),
        9u8..=15,
        client_bits,
        9u8..=15,
    ))
    .prop_map(|settings| {
        settings.map(|(server_nct, client_nct, server_bits, client_bits, cap)| {
            let client = deflate_config(server_bits, client_bits, server_nct, client_nct);
            let server = deflate_config(cap, Some(cap), false, false);
            agree(&client, &server).expect("own offer accepted")
        })
    })
}

/// Text repeating every 3000 bytes and bytes repeating every 5000: compressible, with
/// matches further back than the small windows reach.
fn window_message(len: usize, text: bool) -> WsEvent {
    if text {
        let unit: String = (0..).map(|i| format!("{i} ünïcödé ✓ ")).take(200).collect();
        let unit = &unit.as_bytes()[..3000];
        let mut bytes: Vec<u8> = unit.iter().copied().cycle().take(len).collect();
        while std::str::from_utf8(&bytes).is_err() {
            bytes.pop();
        }
        WsEvent::Text(String::from_utf8(bytes).unwrap())
    } else {
        let unit: Vec<u8> = (0..5000u32).map(|i| (i * i / 7) as u8).collect();
        WsEvent::Binary(
            unit.iter()
                .copied()
                .cycle()
                .take(len)
                .collect::<Vec<u8>>()
                .into(),
        )
    }
}

/// Our client against our server over every window size each side can be asked for and
/// every way to offer the client's, the flags varied along: messages of 0 B, 16 B and
/// 64 KiB, text and binary, fragmented and not, both ways (and 1 MiB for every eighth
/// combination, to keep the debug build quick).
#[test]
fn every_window_pair_carries_every_message_size() {
    let config = WsConfig {
        deflate: Some(DeflateConfig {
            min_size: 0,
            ..DeflateConfig::default()
        }),
        max_message_size: 2 << 20,
        ..WsConfig::default()
    };
    let client_offers = [
        None,
        Some(15),
        Some(9),
        Some(10),
        Some(11),
        Some(12),
        Some(13),
        Some(14),
    ];
    let mut combination = 0;
    for server_bits in 8..=15u8 {
        for client_bits in client_offers {
            let flags = (
                combination % 4 == 1 || combination % 4 == 3,
                combination % 4 >= 2,
            );
            let client = deflate_config(server_bits, client_bits, flags.0, flags.1);
            let server = deflate_config(15 - combination % 3, Some(12), false, false);
            let params = agree(&client, &server);
            if server_bits == 8 {
                assert_eq!(params, None, "2^8 cannot be honoured: declined");
                combination += 1;
                continue;
            }
            let params = params.expect("accepted");
            let mut sizes = vec![0, 16, 64 << 10];
            if combination % 8 == 0 {
                sizes.push(1 << 20);
            }
            let mut pair = Pair::new(config.clone(), Some(params));
            let mut expected = Vec::new();
            for (i, &len) in sizes.iter().enumerate() {
                for text in [false, true] {
                    let message = window_message(len, text);
                    let data = match &message {
                        WsEvent::Text(t) => Bytes::from(t.clone()),
                        WsEvent::Binary(b) => b.clone(),
                        _ => unreachable!(),
                    };
                    let kind = if text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    };
                    // Every other message in three fragments.
                    if (i + usize::from(text)) % 2 == 1 && data.len() >= 3 {
                        let third = data.len() / 3;
                        for (k, (from, to)) in
                            [(0, third), (third, 2 * third), (2 * third, data.len())]
                                .into_iter()
                                .enumerate()
                        {
                            let piece = data.slice(from..to);
                            pair.client
                                .send_fragment(kind, piece.clone(), k == 2)
                                .unwrap();
                            pair.server.send_fragment(kind, piece, k == 2).unwrap();
                        }
                    } else {
                        match kind {
                            MessageKind::Text => {
                                pair.client
                                    .send_text(std::str::from_utf8(&data).unwrap())
                                    .unwrap();
                                pair.server
                                    .send_text(std::str::from_utf8(&data).unwrap())
                                    .unwrap();
                            }
                            MessageKind::Binary => {
                                pair.client.send_binary(data.clone()).unwrap();
                                pair.server.send_binary(data).unwrap();
                            }
                        }
                    }
                    expected.push(message);
                    pair.pump(usize::MAX);
                }
            }
            assert_eq!(pair.server_events, expected, "{params:?}");
            assert_eq!(pair.client_events, expected, "{params:?}");
            combination += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random messages both ways, pings, then a close: everything arrives intact and in
    /// order, and both ends finish cleanly with one final event each.
    #[test]
    fn pair_exchanges_messages_and_closes(
        ops in prop::collection::vec(op(), 0..12),
        cut in 1usize..5000,
        deflate in deflate_params(),
        close_by_client in any::<bool>(),
    ) {
        let mut pair = Pair::new(WsConfig::default(), deflate);
        let mut to_server = Vec::new();
        let mut to_client = Vec::new();
        for op in &ops {
            match op.clone() {
                Op::ClientText(t) => { pair.client.send_text(&t).unwrap(); to_server.push(WsEvent::Text(t)); }
                Op::ClientBinary(b) => { pair.client.send_binary(b.clone().into()).unwrap(); to_server.push(WsEvent::Binary(b.into())); }
                Op::ServerText(t) => { pair.server.send_text(&t).unwrap(); to_client.push(WsEvent::Text(t)); }
                Op::ServerBinary(b) => { pair.server.send_binary(b.clone().into()).unwrap(); to_client.push(WsEvent::Binary(b.into())); }
                Op::ClientPing(p) => {
                    pair.client.send_ping(p.clone().into()).unwrap();
                    to_server.push(WsEvent::Ping(p.into()));
                }
                Op::ServerStream(pieces) => {
                    let last = pieces.len() - 1;
                    for (i, p) in pieces.iter().enumerate() {
                        pair.server.send_fragment(MessageKind::Binary, p.clone().into(), i == last).unwrap();
                    }
                    to_client.push(WsEvent::Binary(pieces.concat().into()));
                }
            }
            pair.pump(cut);
        }
        let now = pair.now;
        if close_by_client {
            pair.client.close(now, Some(1000), "done").unwrap();
        } else {
            pair.server.close(now, Some(4000), "app").unwrap();
        }
        pair.pump(cut);
        let pongs: Vec<WsEvent> = pair.client_events.iter().filter(|e| matches!(e, WsEvent::Pong(_))).cloned().collect();
        let client_msgs: Vec<WsEvent> = pair.client_events.iter().filter(|e| !matches!(e, WsEvent::Pong(_))).cloned().collect();
        let (client_final, server_final) = if close_by_client {
            (CloseReason::ByUs { code: Some(1000), reason: String::new() },
             CloseReason::ByPeer { code: Some(1000), reason: "done".into() })
        } else {
            (CloseReason::ByPeer { code: Some(4000), reason: "app".into() },
             CloseReason::ByUs { code: Some(4000), reason: String::new() })
        };
        to_client.push(WsEvent::Closed(client_final));
        to_server.push(WsEvent::Closed(server_final));
        prop_assert_eq!(client_msgs, to_client);
        prop_assert_eq!(&pair.server_events, &to_server);
        // Every ping got its pong (pings are answered one by one here, nothing coalesces).
        let pings = to_server.iter().filter(|e| matches!(e, WsEvent::Ping(_))).count();
        prop_assert_eq!(pongs.len(), pings);
        prop_assert!(pair.client.is_closed() && pair.server.is_closed());
    }

    /// Any split of the same bytes gives the same events on the server.
    #[test]
    fn split_invariance(ops in prop::collection::vec(op(), 0..8), cuts in prop::collection::vec(0usize..20_000, 0..30), deflate in deflate_params()) {
        let mut client = WebSocket::client(WsConfig::default(), deflate, ms(0), keys());
        for op in ops {
            match op {
                Op::ClientText(t) | Op::ServerText(t) => client.send_text(&t).unwrap(),
                Op::ClientBinary(b) | Op::ServerBinary(b) => client.send_binary(b.into()).unwrap(),
                Op::ClientPing(p) => client.send_ping(p.into()).unwrap(),
                Op::ServerStream(pieces) => {
                    let last = pieces.len() - 1;
                    for (i, p) in pieces.into_iter().enumerate() {
                        client.send_fragment(MessageKind::Text, p.into(), i == last).unwrap();
                    }
                }
            }
        }
        client.close(ms(0), Some(1000), "").unwrap();
        let input = wire(&mut client);
        let run = |cuts: &[usize]| {
            let mut ws = WebSocket::server(WsConfig::default(), deflate, ms(0));
            let mut evs = Vec::new();
            let mut last = 0;
            let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
            cuts.sort_unstable();
            for &c in cuts.iter().chain(std::iter::once(&input.len())) {
                ws.handle_input(ms(0), &input[last..c]);
                evs.extend(events(&mut ws));
                last = c;
            }
            ws.handle_eof();
            evs.extend(events(&mut ws));
            (evs, wire(&mut ws))
        };
        let whole = run(&[]);
        prop_assert_eq!(&whole, &run(&cuts));
        prop_assert!(matches!(whole.0.last(), Some(WsEvent::Closed(_))));
        prop_assert_eq!(whole.0.iter().filter(|e| matches!(e, WsEvent::Closed(_))).count(), 1);
    }
}

#[test]
fn pair_heartbeat_keeps_a_live_peer_and_detects_a_dead_one() {
    let config = WsConfig {
        heartbeat: Some(Duration::from_secs(1)),
        ..plain()
    };
    let mut pair = Pair::new(config, None);
    // Ten quiet seconds: pings go out, the peer's automatic pongs keep both alive.
    for _ in 0..20 {
        pair.step_time();
        pair.pump(7);
    }
    assert!(pair.now >= ms(10_000));
    assert!(!pair.server.is_closed() && !pair.client.is_closed());
    assert!(pair
        .server_events
        .iter()
        .any(|e| matches!(e, WsEvent::Pong(_))));
    // Now the client stops answering (its bytes are dropped): the server gives up.
    for _ in 0..10 {
        pair.step_time();
        while pair.client.poll_transmit(Instant::ZERO).is_some() {}
        while let Some(b) = pair.server.poll_transmit(Instant::ZERO) {
            pair.client.handle_input(pair.now, &b);
        }
        while let Some(e) = pair.server.poll_event() {
            pair.server_events.push(e);
        }
        while pair.client.poll_event().is_some() {}
    }
    assert_eq!(
        pair.server_events.last(),
        Some(&WsEvent::Closed(CloseReason::PingTimeout))
    );
}

/// Regressions the fuzzer found: error offsets and kinds must not depend on the split.
#[test]
fn fuzz_regressions_error_offsets() {
    let run = |input: &[u8], cuts: &[usize], deflate: Option<DeflateParams>| {
        let mut ws = WebSocket::server(plain(), deflate, ms(0));
        let mut last = 0;
        let mut evs = Vec::new();
        for &c in cuts.iter().chain(std::iter::once(&input.len())) {
            ws.handle_input(ms(0), &input[last..c]);
            evs.extend(events(&mut ws));
            last = c;
        }
        evs
    };
    // A bad character split across pieces is reported where it starts.
    let input = [0x81, 0x82, 0, 0, 0, 0, 0xe5, 0x6c];
    let cuts: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run(&input, &[], None), run(&input, &cuts, None));
    if let Some(WsEvent::Closed(CloseReason::ProtocolError(e))) = run(&input, &cuts, None).last() {
        assert_eq!((e.kind(), e.offset()), (ProtocolErrorKind::InvalidUtf8, 6));
    }
    // Compressed frames are inflated whole: same error, same place, whatever the split.
    let config = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let offer = deflate::client_offer(&config);
    let params = deflate::server_negotiate(&config, &[offer.as_str()]).map(|(p, _)| p);
    let input = [0xc1, 0xe8, 0x04, 0x0b, 0x0b, 0x0b, 0xfe, 0x00, 0x7e, 0x0b];
    assert_eq!(run(&input, &[], params), run(&input, &[8], params));
    let input = [0xc1, 0xc5, 0x1f, 0x00, 0x65, 0x12, 0x65, 0xfd, 0x12];
    assert_eq!(run(&input, &[], params), run(&input, &[3, 7, 8], params));
}

#[test]
fn driver_settings_are_carried_for_the_driver() {
    let defaults = WsConfig::default();
    assert_eq!(defaults.message_buffer, 32);
    assert_eq!(defaults.write_buffer, 1 << 20);
    assert_eq!(defaults.close_linger, Duration::from_secs(5));
    let config = WsConfig {
        message_buffer: 4,
        write_buffer: 4096,
        close_linger: Duration::from_millis(250),
        ..plain()
    };
    let ws = WebSocket::server(config.clone(), None, ms(0));
    assert_eq!(ws.config(), &config);
}

#[test]
fn a_second_accept_field_is_refused_even_when_equal() {
    let uri: Uri = "ws://example.com/".parse().unwrap();
    let (client, request) = ClientHandshake::new(&uri, [3; 16], &[], &plain()).unwrap();
    let (good, _) = accept(&request, &[], &plain()).unwrap();
    let mut twice = good.clone();
    let value = good.headers()["sec-websocket-accept"].clone();
    twice.headers_mut().append("sec-websocket-accept", value);
    assert_eq!(client.validate(&twice), Err(HandshakeError::BadAccept));
}

#[test]
fn whitespace_around_values_is_not_part_of_them() {
    let uri: Uri = "ws://example.com/".parse().unwrap();
    let (client, mut request) = ClientHandshake::new(&uri, [4; 16], &[], &plain()).unwrap();
    request.headers_mut().insert(
        "sec-websocket-version",
        http::HeaderValue::from_static(" 13\t"),
    );
    let (mut response, _) = accept(&request, &[], &plain()).unwrap();
    let padded = format!(
        " {} ",
        response.headers()["sec-websocket-accept"].to_str().unwrap()
    );
    response
        .headers_mut()
        .insert("sec-websocket-accept", padded.parse().unwrap());
    assert!(client.validate(&response).is_ok());
}

#[test]
fn subprotocol_names_must_be_tokens() {
    let uri: Uri = "ws://example.com/".parse().unwrap();
    for name in ["a,b", "a b", "", "\"q\"", "x;y"] {
        assert_eq!(
            ClientHandshake::new(&uri, [5; 16], &["chat", name], &plain()).err(),
            Some(HandshakeError::BadRequest("invalid subprotocol name")),
            "{name:?}"
        );
    }
    // A server never picks a name it could not send back as one.
    let (_, request) = ClientHandshake::new(&uri, [5; 16], &["a", "b"], &plain()).unwrap();
    let (response, negotiated) = accept(&request, &["a,b", "b"], &plain()).unwrap();
    assert_eq!(negotiated.protocol.as_deref(), Some("b"));
    assert_eq!(response.headers()["sec-websocket-protocol"], "b");
}

#[test]
fn a_line_of_obs_text_still_counts() {
    let uri: Uri = "ws://example.com/".parse().unwrap();
    let (client, request) = ClientHandshake::new(&uri, [6; 16], &["a"], &plain()).unwrap();
    let opaque = http::HeaderValue::from_bytes(b"\xe9t\xe9").unwrap();
    let mut two_keys = request.clone();
    two_keys
        .headers_mut()
        .append("sec-websocket-key", opaque.clone());
    assert!(matches!(
        accept(&two_keys, &["a"], &plain()),
        Err(HandshakeError::BadRequest(_))
    ));
    let (mut response, _) = accept(&request, &["a"], &plain()).unwrap();
    response
        .headers_mut()
        .insert("sec-websocket-protocol", opaque);
    assert_eq!(
        client.validate(&response),
        Err(HandshakeError::UnofferedProtocol)
    );
}
