use super::*;
use crate::runtime::test_support::TokioIo;
use futures_sink::Sink;
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tether_core::ws::{accept, ClientHandshake, DeflateConfig, ProtocolErrorKind, WsConfig};
use tokio::io::{
    duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf,
};
use tokio::time::timeout;

fn core_now() -> tether_core::time::Instant {
    crate::runtime::test_support::rt().now()
}

fn spawn<IO>(io: IO, ws: CoreWebSocket, trailing: Bytes) -> WebSocket
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    super::spawn(
        &crate::runtime::test_support::rt(),
        TokioIo(io),
        ws,
        trailing,
    )
}

/// Turns a hang into a failure.
async fn within<F: Future>(future: F) -> F::Output {
    timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}

fn config() -> WsConfig {
    let mut config = WsConfig::default();
    config.deflate = None;
    config
}

fn mask_keys() -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut state: u32 = 0x9E37_79B9;
    move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state.to_be_bytes()
    }
}

fn client_on<IO>(io: IO, config: WsConfig) -> WebSocket
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ws = CoreWebSocket::client(config, None, core_now(), mask_keys());
    spawn(io, ws, Bytes::new())
}

fn server_on<IO>(io: IO, config: WsConfig) -> WebSocket
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    spawn(
        io,
        CoreWebSocket::server(config, None, core_now()),
        Bytes::new(),
    )
}

/// A client and a server pump wired to each other.
fn pair() -> (WebSocket, WebSocket) {
    let (a, b) = duplex(64 * 1024);
    (client_on(a, config()), server_on(b, config()))
}

/// A payload with some structure but no long repeats.
fn pattern(len: usize) -> Bytes {
    let mut state = 12_345u32;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Reads one frame written by a client (masked) from a raw transport: (opcode, payload).
async fn read_client_frame(raw: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    raw.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0x80, "client frames are masked");
    let len = match head[1] & 0x7F {
        126 => usize::from(raw.read_u16().await.unwrap()),
        127 => raw.read_u64().await.unwrap() as usize,
        n => usize::from(n),
    };
    let mut mask = [0u8; 4];
    raw.read_exact(&mut mask).await.unwrap();
    let mut payload = vec![0u8; len];
    raw.read_exact(&mut payload).await.unwrap();
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    (head[0] & 0x0F, payload)
}

/// A client whose peer reads nothing until the test reads `raw`: a 1 KiB pipe and a 4 KiB
/// write buffer, so sends of 1000 bytes start waiting after four to eight.
fn stalled_client() -> (WebSocket, DuplexStream) {
    let (a, raw) = duplex(1024);
    let mut config = config();
    config.write_buffer = 4096;
    (client_on(a, config), raw)
}

/// Reads the client's 1000-byte binary frames up to the text frame "after"; returns how
/// many came before it.
async fn frames_before_after(raw: &mut DuplexStream) -> usize {
    let mut frames = 0;
    loop {
        let (opcode, payload) = read_client_frame(raw).await;
        if opcode == 0x1 {
            assert_eq!(payload, b"after");
            return frames;
        }
        assert_eq!((opcode, payload.len()), (0x2, 1000));
        frames += 1;
    }
}

/// Reads until EOF; returns how many bytes came.
async fn read_to_eof(raw: &mut DuplexStream) -> usize {
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).await.unwrap();
    rest.len()
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync + Unpin + 'static>() {}
    check::<WebSocket>();
    check::<WsSender>();
    check::<WsReceiver>();
    check::<WeakWsSender>();
    check::<WsError>();
}

#[tokio::test]
async fn messages_both_ways() {
    let (mut client, mut server) = pair();
    client.send_text("hello").await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("hello".into()))
    );
    server.send_binary(&b"\x00\x01\x02"[..]).await.unwrap();
    assert_eq!(
        within(client.recv()).await,
        Some(Message::Binary(Bytes::from_static(b"\x00\x01\x02")))
    );
    client.send_text("").await.unwrap();
    assert_eq!(within(server.recv()).await, Some(Message::Text("".into())));

    // 1 MiB each way at the same time, through a 64 KiB pipe.
    let big = pattern(1 << 20);
    let (sent_by_client, sent_by_server) = within(async {
        tokio::join!(
            client.send_binary(big.clone()),
            server.send_binary(big.clone())
        )
    })
    .await;
    sent_by_client.unwrap();
    sent_by_server.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Binary(big.clone()))
    );
    assert_eq!(within(client.recv()).await, Some(Message::Binary(big)));
    let text = "é".repeat(300_000);
    server.send_text(text.clone()).await.unwrap();
    assert_eq!(within(client.recv()).await, Some(Message::Text(text)));
    assert_eq!(client.close_reason(), None);
}

#[tokio::test]
async fn ping_and_pong() {
    let (mut client, mut server) = pair();
    client.send_ping(&b"are you there"[..]).await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Ping(Bytes::from_static(b"are you there")))
    );
    assert_eq!(
        within(client.recv()).await,
        Some(Message::Pong(Bytes::from_static(b"are you there")))
    );
    server
        .send_message(Message::Pong(Bytes::from_static(b"beat")))
        .await
        .unwrap();
    assert_eq!(
        within(client.recv()).await,
        Some(Message::Pong(Bytes::from_static(b"beat")))
    );
    assert_eq!(
        client.send_ping(vec![0u8; 126]).await,
        Err(WsError::Local(LocalError::ControlPayloadTooLong))
    );
}

#[tokio::test]
async fn close_handshake() {
    let (mut client, mut server) = pair();
    client.send_text("last words").await.unwrap();
    client.close(1000, "bye").await.unwrap();
    // Closing: refused (the reason is known only if the handshake is already over).
    assert!(matches!(
        client.send_text("too late").await,
        Err(WsError::Closed(_))
    ));
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("last words".into()))
    );
    assert_eq!(within(server.recv()).await, None);
    let by_peer = CloseReason::ByPeer {
        code: Some(1000),
        reason: "bye".into(),
    };
    assert_eq!(server.close_reason(), Some(by_peer.clone()));
    assert_eq!(within(server.closed()).await, by_peer);

    assert_eq!(within(client.recv()).await, None);
    let by_us = CloseReason::ByUs {
        code: Some(1000),
        reason: String::new(),
    };
    assert_eq!(client.close_reason(), Some(by_us.clone()));
    assert_eq!(within(client.closed()).await, by_us);
    assert!(by_us.is_clean());

    // After the end: typed errors, no hang.
    assert_eq!(
        client.send_text("x").await,
        Err(WsError::Closed(Some(by_us.clone())))
    );
    assert_eq!(
        server.close(1000, "again").await,
        Err(WsError::Closed(Some(by_peer)))
    );
    assert_eq!(within(client.recv()).await, None);
}

#[tokio::test]
async fn invalid_close_is_refused_locally() {
    let (client, mut server) = pair();
    assert_eq!(
        client.close(1005, "").await,
        Err(WsError::Local(LocalError::InvalidCloseCode(1005)))
    );
    assert_eq!(
        client.close(1000, &"r".repeat(124)).await,
        Err(WsError::Local(LocalError::ControlPayloadTooLong))
    );
    // Still open.
    client.send_text("still here").await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("still here".into()))
    );
}

#[tokio::test]
async fn stream_and_sink() {
    let (client, server) = pair();
    let (server_tx, mut server_rx) = server.split();
    // Echo with the Stream and Sink halves.
    let echo = tokio::spawn(async move {
        let mut server_tx = server_tx;
        while let Some(message) = server_rx.next().await {
            if !message.is_control() {
                SinkExt::send(&mut server_tx, message).await.unwrap();
            }
        }
        server_rx.close_reason()
    });
    let (mut client_tx, mut client_rx) = client.split();
    let outgoing: Vec<Message> = (0..100)
        .map(|i| {
            if i % 2 == 0 {
                Message::Text(format!("message {i}"))
            } else {
                Message::Binary(pattern(i * 100))
            }
        })
        .collect();
    let mut source = futures_util::stream::iter(outgoing.clone().into_iter().map(Ok));
    within(client_tx.send_all(&mut source)).await.unwrap();
    let echoed: Vec<Message> = within(client_rx.by_ref().take(100).collect()).await;
    assert_eq!(echoed, outgoing);
    // Sink::close starts the close handshake with 1000.
    within(SinkExt::close(&mut client_tx)).await.unwrap();
    assert_eq!(within(client_rx.next()).await, None);
    assert_eq!(
        within(echo).await.unwrap(),
        Some(CloseReason::ByPeer {
            code: Some(1000),
            reason: String::new()
        })
    );
    // Closing again is fine; sending is not.
    within(SinkExt::close(&mut client_tx)).await.unwrap();
    let mut other = client_tx.clone();
    assert!(matches!(
        within(SinkExt::send(&mut other, Message::from("late"))).await,
        Err(WsError::Closed(Some(CloseReason::ByUs { .. })))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_on_many_threads() {
    let (client, server) = pair();
    let (server_tx, mut server_rx) = server.split();
    let echo = tokio::spawn(async move {
        while let Some(message) = server_rx.recv().await {
            if !message.is_control() && server_tx.send_message(message).await.is_err() {
                break;
            }
        }
        server_rx.closed().await
    });
    let (client_tx, mut client_rx) = client.split();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let tx = client_tx.clone();
            tokio::spawn(async move {
                for i in 0..250 {
                    tx.send_text(format!("{w}:{i}:{}", "x".repeat(i * 7)))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut next = [0usize; 4];
    for _ in 0..1000 {
        let Some(Message::Text(text)) = within(client_rx.recv()).await else {
            panic!("expected text");
        };
        let mut parts = text.splitn(3, ':');
        let w: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(i, next[w], "per-sender order");
        assert_eq!(parts.next().unwrap().len(), i * 7);
        next[w] += 1;
    }
    for writer in writers {
        within(writer).await.unwrap();
    }
    client_tx.close(1000, "done").await.unwrap();
    assert_eq!(within(client_rx.recv()).await, None);
    assert!(within(echo).await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_senders_than_places_in_the_queue() {
    let (client, mut server) = pair();
    let senders = 96;
    // Twice as many tasks as senders: some share a sender, so they wait for a place
    // through the same handle.
    let writers: Vec<_> = (0..senders)
        .map(|_| client.sender())
        .flat_map(|tx| {
            let tx = Arc::new(tx);
            [tx.clone(), tx]
        })
        .enumerate()
        .map(|(w, tx)| {
            tokio::spawn(async move {
                for i in 0..40 {
                    tx.send_text(format!("{w}:{i}")).await.unwrap();
                }
            })
        })
        .collect();
    let mut next = vec![0usize; 2 * senders];
    for _ in 0..40 * 2 * senders {
        let Some(Message::Text(text)) = within(server.recv()).await else {
            panic!("expected text");
        };
        let (w, i) = text.split_once(':').unwrap();
        let (w, i): (usize, usize) = (w.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[w], "per-task order");
        next[w] += 1;
    }
    for writer in writers {
        within(writer).await.unwrap();
    }
}

#[tokio::test]
async fn transport_dropped() {
    let (a, b) = duplex(64 * 1024);
    let mut client = client_on(a, config());
    drop(b);
    assert_eq!(within(client.recv()).await, None);
    assert_eq!(client.close_reason(), Some(CloseReason::TransportClosed));
    assert_eq!(within(client.closed()).await, CloseReason::TransportClosed);
    assert!(matches!(
        client.send_text("x").await,
        Err(WsError::Closed(Some(CloseReason::TransportClosed)))
    ));
}

#[tokio::test]
async fn transport_dropped_while_open() {
    let (a, mut raw) = duplex(64 * 1024);
    let mut client = client_on(a, config());
    raw.write_all(b"\x81\x02hi").await.unwrap();
    assert_eq!(
        within(client.recv()).await,
        Some(Message::Text("hi".into()))
    );
    // Half a frame, then the peer vanishes.
    raw.write_all(b"\x81\x05hel").await.unwrap();
    drop(raw);
    assert_eq!(within(client.recv()).await, None);
    assert_eq!(client.close_reason(), Some(CloseReason::TransportClosed));
    assert_eq!(within(client.closed()).await, CloseReason::TransportClosed);
}

#[tokio::test]
async fn trailing_bytes_come_first() {
    let (a, mut raw) = duplex(64 * 1024);
    let ws = CoreWebSocket::client(config(), None, core_now(), mask_keys());
    let mut client = spawn(a, ws, Bytes::from_static(b"\x81\x05early\x81"));
    raw.write_all(b"\x04late").await.unwrap();
    assert_eq!(
        within(client.recv()).await,
        Some(Message::Text("early".into()))
    );
    assert_eq!(
        within(client.recv()).await,
        Some(Message::Text("late".into()))
    );
}

#[tokio::test]
async fn protocol_error_sends_close_and_ends() {
    let (a, mut raw) = duplex(64 * 1024);
    let mut client = client_on(a, config());
    // A reserved opcode.
    raw.write_all(b"\x83\x00").await.unwrap();
    assert_eq!(within(client.recv()).await, None);
    match client.close_reason() {
        Some(CloseReason::ProtocolError(error)) => {
            assert_eq!(error.kind(), ProtocolErrorKind::ReservedOpcode)
        }
        other => panic!("unexpected {other:?}"),
    }
    let (opcode, payload) = within(read_client_frame(&mut raw)).await;
    assert_eq!((opcode, &payload[..]), (0x8, &b"\x03\xea"[..])); // close 1002
    assert_eq!(within(read_to_eof(&mut raw)).await, 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_ping_timeout() {
    let (a, mut raw) = duplex(64 * 1024);
    let mut config = config();
    config.heartbeat = Some(Duration::from_secs(1));
    let start = tokio::time::Instant::now();
    let client = client_on(a, config);
    // Nobody answers: a ping after 1 s, the end half a second later.
    assert_eq!(within(client.closed()).await, CloseReason::PingTimeout);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_millis(1600),
        "{elapsed:?}"
    );
    assert_eq!(client.close_reason(), Some(CloseReason::PingTimeout));
    // The heartbeat ping went out; then the write side was shut down.
    let (opcode, payload) = within(read_client_frame(&mut raw)).await;
    assert_eq!((opcode, payload.len()), (0x9, 8));
    assert_eq!(within(read_to_eof(&mut raw)).await, 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_keeps_a_live_connection() {
    let (a, b) = duplex(64 * 1024);
    let mut config = config();
    config.heartbeat = Some(Duration::from_secs(1));
    let client = client_on(a, config);
    let mut server = server_on(b, self::config());
    // The server's pump answers the pings, even though its application reads late.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(client.close_reason(), None);
    let mut pings = 0;
    while let Ok(Some(message)) = timeout(Duration::from_millis(1), server.recv()).await {
        assert!(matches!(message, Message::Ping(_)));
        pings += 1;
    }
    assert!((5..=10).contains(&pings), "{pings}");
}

#[tokio::test(start_paused = true)]
async fn timeout_while_the_application_is_behind() {
    let (a, mut raw) = duplex(64 * 1024);
    let mut config = config();
    config.heartbeat = Some(Duration::from_secs(1));
    let mut client = client_on(a, config);
    for i in 0..40u8 {
        raw.write_all(&[0x82, 0x01, i]).await.unwrap();
    }
    // The application reads nothing; the peer goes silent: the connection still ends.
    assert_eq!(within(client.closed()).await, CloseReason::PingTimeout);
    let mut received = Vec::new();
    while let Some(message) = within(client.recv()).await {
        received.push(message);
    }
    // In order, then the end: what did not fit was never decoded.
    let message_buffer = WsConfig::default().message_buffer;
    assert!(received.len() > message_buffer && received.len() < 40);
    for (i, message) in received.iter().enumerate() {
        assert_eq!(message, &Message::Binary(Bytes::from(vec![i as u8])));
    }
}

#[tokio::test(start_paused = true)]
async fn message_buffer_from_the_config() {
    for (message_buffer, held) in [(0, 1), (3, 3)] {
        let (a, mut raw) = duplex(64 * 1024);
        let mut config = config();
        config.heartbeat = Some(Duration::from_secs(1));
        config.message_buffer = message_buffer;
        let mut client = client_on(a, config);
        for i in 0..10u8 {
            raw.write_all(&[0x82, 0x01, i]).await.unwrap();
        }
        assert_eq!(within(client.closed()).await, CloseReason::PingTimeout);
        let mut received = Vec::new();
        while let Some(message) = within(client.recv()).await {
            received.push(message);
        }
        // The channel held `held` (0 counts as 1), one more waited in the pump; the rest
        // was never decoded.
        assert_eq!(received.len(), held + 1, "message_buffer {message_buffer}");
        for (i, message) in received.iter().enumerate() {
            assert_eq!(message, &Message::Binary(Bytes::from(vec![i as u8])));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn write_buffer_from_the_config() {
    let (client, mut raw) = stalled_client();
    // The peer reads nothing: sends are taken until 4 KiB wait (a frame is 1008 bytes,
    // and the pipe holds 1 KiB more).
    let payload = Bytes::from(vec![7u8; 1000]);
    let mut accepted = 0;
    loop {
        let send = client.send_binary(payload.clone());
        if timeout(Duration::from_millis(100), send).await.is_err() {
            break;
        }
        accepted += 1;
        assert!(accepted <= 8, "sends never wait");
    }
    assert!(accepted >= 4, "{accepted}");
    // Once the peer reads, sending goes on; everything arrives in order.
    let reader = tokio::spawn(async move { frames_before_after(&mut raw).await });
    within(client.send_text("after")).await.unwrap();
    let frames = within(reader).await.unwrap();
    // The send that timed out may or may not have been taken.
    assert!(
        frames == accepted || frames == accepted + 1,
        "{frames} {accepted}"
    );
}

#[tokio::test(start_paused = true)]
async fn sink_waits_while_the_write_buffer_is_full() {
    let (client, mut raw) = stalled_client();
    let (mut tx, _rx) = client.split();
    // The peer reads nothing: the sink takes messages until 4 KiB wait (a frame is 1008
    // bytes, and the pipe holds 1 KiB more), then waits.
    let payload = Message::Binary(Bytes::from(vec![7u8; 1000]));
    let mut fed = 0;
    while let Ok(result) = timeout(Duration::from_millis(100), tx.feed(payload.clone())).await {
        result.unwrap();
        fed += 1;
        assert!(fed <= 8, "the sink never waits");
    }
    assert!(fed >= 4, "{fed}");
    assert_eq!(
        Pin::new(&mut tx).start_send(payload.clone()),
        Err(WsError::SinkNotReady)
    );
    // Once the peer reads, everything goes out in order.
    let reader = tokio::spawn(async move { frames_before_after(&mut raw).await });
    within(SinkExt::send(&mut tx, Message::from("after")))
        .await
        .unwrap();
    assert_eq!(within(reader).await.unwrap(), fed);
}

#[tokio::test(start_paused = true)]
async fn cancelled_sends_leave_nothing_queued() {
    let (client, mut raw) = stalled_client();
    // The peer reads nothing: once 4 KiB wait, every send waits and times out, leaving
    // nothing behind; only the sends that returned are written.
    let payload = Bytes::from(vec![7u8; 1000]);
    let mut answered = 0;
    for _ in 0..100 {
        let send = client.send_binary(payload.clone());
        if timeout(Duration::from_millis(10), send).await.is_ok() {
            answered += 1;
        }
    }
    assert!((4..10).contains(&answered), "{answered}");
    let reader = tokio::spawn(async move { frames_before_after(&mut raw).await });
    within(client.send_text("after")).await.unwrap();
    assert_eq!(within(reader).await.unwrap(), answered);
}

#[tokio::test(start_paused = true)]
async fn close_linger_from_the_config() {
    let (a, mut raw) = duplex(1024);
    let mut config = config();
    config.close_linger = Duration::from_secs(2);
    let client = client_on(a, config);
    client.send_binary(vec![1u8; 100_000]).await.unwrap();
    // The peer closes but reads nothing: the close answer cannot be written. The end
    // waits the linger, then drops the transport anyway.
    raw.write_all(b"\x88\x02\x03\xe8").await.unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(
        within(client.closed()).await,
        CloseReason::ByPeer {
            code: Some(1000),
            reason: String::new()
        }
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2100),
        "{elapsed:?}"
    );
    // Dropped: the peer reads what fit in the pipe, then EOF.
    assert!(within(read_to_eof(&mut raw)).await <= 1024);
}

#[tokio::test]
async fn slow_application_gets_everything_in_order() {
    let (mut client, server) = pair();
    let count = 500;
    let sender = server.sender();
    let producer = tokio::spawn(async move {
        for i in 0..count {
            sender.send_text(format!("{i}")).await.unwrap();
        }
    });
    // Let the pumps fill every buffer while the client reads nothing; it can still send.
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.send_text("meanwhile").await.unwrap();
    let mut server = server;
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("meanwhile".into()))
    );
    for i in 0..count {
        assert_eq!(
            within(client.recv()).await,
            Some(Message::Text(format!("{i}")))
        );
    }
    within(producer).await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_closes() {
    let (a, b) = duplex(64 * 1024);
    let client = client_on(a, config());
    let mut server = server_on(b, config());
    let (tx, rx) = client.split();
    let tx2 = tx.clone();
    drop(tx);
    drop(rx);
    // A sender is left: still open.
    tx2.send_text("from the last sender").await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("from the last sender".into()))
    );
    drop(tx2);
    assert_eq!(within(server.recv()).await, None);
    assert_eq!(
        server.close_reason(),
        Some(CloseReason::ByPeer {
            code: Some(1000),
            reason: String::new()
        })
    );
}

#[tokio::test]
async fn dropped_handles_pump_exits() {
    let (a, mut raw) = duplex(64 * 1024);
    let client = client_on(a, config());
    drop(client);
    let (opcode, payload) = within(read_client_frame(&mut raw)).await;
    assert_eq!((opcode, &payload[..]), (0x8, &b"\x03\xe8"[..])); // close 1000
    raw.write_all(b"\x88\x02\x03\xe8").await.unwrap();
    // The pump shut down its write side and dropped the socket.
    assert_eq!(within(read_to_eof(&mut raw)).await, 0);
    assert!(raw.write_all(b"\x81\x00").await.is_err());
}

#[tokio::test]
async fn receiver_dropped_keeps_the_connection_going() {
    let (client, mut server) = pair();
    let (tx, rx) = client.split();
    drop(rx);
    for i in 0..100 {
        server.send_text(format!("ignored {i}")).await.unwrap();
    }
    server.send_ping(&b"p"[..]).await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Pong(Bytes::from_static(b"p")))
    );
    tx.send_text("still sending").await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("still sending".into()))
    );
}

#[tokio::test]
async fn server_shutdown_goes_away() {
    let (mut client, server) = pair();
    let shutdown_handle = server.sender();
    within(shutdown_handle.close_going_away()).await.unwrap();
    assert_eq!(within(client.recv()).await, None);
    assert_eq!(
        client.close_reason(),
        Some(CloseReason::ByPeer {
            code: Some(1001),
            reason: "going away".into()
        })
    );
    let reason = within(shutdown_handle.closed()).await;
    assert_eq!(reason.code(), 1001);
    assert!(matches!(reason, CloseReason::ByUs { .. }));
    drop(server);
}

#[tokio::test]
async fn weak_sender_does_not_keep_the_connection() {
    let (client, mut server) = pair();
    let weak = client.sender().downgrade();
    let sender = weak.upgrade().expect("alive");
    sender.send_text("via upgrade").await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("via upgrade".into()))
    );
    drop(sender);
    drop(client);
    assert!(weak.upgrade().is_none());
    assert_eq!(within(server.recv()).await, None);
    assert_eq!(
        within(weak.closed()).await,
        CloseReason::ByUs {
            code: Some(1000),
            reason: String::new()
        }
    );
    assert!(matches!(
        weak.close_going_away().await,
        Err(WsError::Closed(Some(_)))
    ));

    // Server shutdown through weak handles.
    let (mut client, server) = pair();
    let weak = server.sender().downgrade();
    within(weak.close_going_away()).await.unwrap();
    assert_eq!(within(client.recv()).await, None);
    assert_eq!(client.close_reason().map(|r| r.code()), Some(1001));
    assert_eq!(within(weak.closed()).await.code(), 1001);
    drop(server);
}

/// Counts the bytes written through it.
struct Counting<T> {
    inner: T,
    written: Arc<AtomicUsize>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.written.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn deflate_through_the_handshake() {
    let mut config = WsConfig::default();
    config.deflate = Some(DeflateConfig::default());
    let uri = "ws://example.test/chat".parse().unwrap();
    let (handshake, request) = ClientHandshake::new(&uri, [7; 16], &[], &config).unwrap();
    let (response, server_negotiated) = accept(&request, &[], &config).unwrap();
    let client_negotiated = handshake.validate(&response).unwrap();
    assert!(client_negotiated.deflate.is_some());
    assert!(server_negotiated.deflate.is_some());

    let (a, b) = duplex(64 * 1024);
    let client_wrote = Arc::new(AtomicUsize::new(0));
    let server_wrote = Arc::new(AtomicUsize::new(0));
    let a = Counting {
        inner: a,
        written: client_wrote.clone(),
    };
    let b = Counting {
        inner: b,
        written: server_wrote.clone(),
    };
    let now = core_now();
    let client = CoreWebSocket::client(config.clone(), client_negotiated.deflate, now, mask_keys());
    let server = CoreWebSocket::server(config, server_negotiated.deflate, now);
    let mut client = spawn(a, client, Bytes::new());
    let mut server = spawn(b, server, Bytes::new());

    let text = "all work and no play makes jack a dull boy. ".repeat(5_000);
    client.send_text(text.clone()).await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text(text.clone()))
    );
    let data = Bytes::from(vec![0x5A; 300_000]);
    server.send_binary(data.clone()).await.unwrap();
    assert_eq!(within(client.recv()).await, Some(Message::Binary(data)));
    // Small messages skip compression but still pass.
    client.send_text("tiny").await.unwrap();
    assert_eq!(
        within(server.recv()).await,
        Some(Message::Text("tiny".into()))
    );
    let client_bytes = client_wrote.load(Ordering::Relaxed);
    let server_bytes = server_wrote.load(Ordering::Relaxed);
    assert!(
        client_bytes < text.len() / 20,
        "client wrote {client_bytes}"
    );
    assert!(server_bytes < 300_000 / 20, "server wrote {server_bytes}");

    client.close(1000, "done").await.unwrap();
    assert_eq!(within(server.recv()).await, None);
    assert_eq!(within(client.recv()).await, None);
    assert!(client.close_reason().is_some_and(|r| r.is_clean()));
}

#[tokio::test(start_paused = true)]
async fn a_send_waiting_for_room_fails_when_the_connection_ends() {
    let (client, raw) = stalled_client();
    // The peer reads nothing: sends are taken until 4 KiB wait, then one waits for room.
    let payload = Bytes::from(vec![7u8; 1000]);
    let waiting = loop {
        let sender = client.sender();
        let data = payload.clone();
        let mut send = tokio::spawn(async move { sender.send_binary(data).await });
        if timeout(Duration::from_millis(100), &mut send)
            .await
            .is_err()
        {
            break send;
        }
    };
    // The peer goes away: the waiting send is refused, it does not hang.
    drop(raw);
    assert!(matches!(
        within(waiting).await.unwrap(),
        Err(WsError::Closed(_))
    ));
    assert_eq!(within(client.closed()).await, CloseReason::TransportClosed);
}
