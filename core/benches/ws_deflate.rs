//! permessage-deflate through the WebSocket connection: the cost of sending a compressed
//! message and of receiving one, for 16 B, 1 KiB and 64 KiB of JSON-like text.
//!
//! * `compress`: a client `send_binary` + draining `poll_transmit` (compress, frame, mask).
//! * `inflate`: a server `handle_input` of one compressed client frame + `poll_event`
//!   (unmask, inflate, hand out the message).
//!
//! Both sides negotiate no context takeover, so every message is compressed and inflated
//! on its own (the per-message cost, independent of what came before) and the receiving side
//! can take the same frame again and again. `min_size` is 0 so that 16 B messages are
//! compressed too. The numbers in BENCHMARKS.md compare flate2's miniz_oxide backend with its
//! zlib-rs backend on this benchmark.
//!
//! Run with `cargo bench -p tether-core --bench ws_deflate`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use tether_core::time::Instant;
use tether_core::ws::{DeflateConfig, DeflateParams, WebSocket, WsConfig, WsEvent};

/// JSON-like text: records with varying numbers and repeated keys, as an API would send.
fn payload(len: usize) -> Bytes {
    let mut out = String::new();
    let mut i = 0u64;
    while out.len() < len {
        out.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"score\":{},\"tags\":[\"a\",\"b{}\"]}},",
            i * 7 % 1000,
            i * 7919 % 100_003,
            i % 13
        ));
        i += 1;
    }
    out.truncate(len);
    Bytes::from(out)
}

fn config() -> WsConfig {
    let mut deflate = DeflateConfig::default();
    deflate.min_size = 0;
    deflate.server_no_context_takeover = true;
    deflate.client_no_context_takeover = true;
    let mut config = WsConfig::default();
    config.deflate = Some(deflate);
    config.heartbeat = None;
    config.max_message_size = 1 << 20;
    config
}

fn params() -> DeflateParams {
    let mut params = DeflateParams::default();
    params.server_no_context_takeover = true;
    params.client_no_context_takeover = true;
    params
}

fn client() -> WebSocket {
    let mut key = 0x1234_5678u32;
    WebSocket::client(config(), Some(params()), Instant::ZERO, move || {
        key = key.rotate_left(5) ^ 0x9e37_79b9;
        key.to_be_bytes()
    })
}

/// Sends `message` and returns the bytes written.
fn send(ws: &mut WebSocket, message: &Bytes) -> Vec<u8> {
    ws.send_binary(message.clone()).expect("send");
    let mut wire = Vec::new();
    while let Some(bytes) = ws.poll_transmit(Instant::ZERO) {
        wire.extend_from_slice(&bytes);
    }
    wire
}

fn bench_deflate(c: &mut Criterion) {
    for (label, len) in [("16B", 16), ("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let message = payload(len);
        let mut group = c.benchmark_group(format!("ws_deflate/{label}"));
        group.throughput(Throughput::Bytes(len as u64));

        let mut sender = client();
        let frame = send(&mut sender, &message);
        assert_eq!(frame[0] & 0x40, 0x40, "compressed (RSV1)");

        group.bench_function("compress", |b| {
            b.iter(|| black_box(send(&mut sender, black_box(&message))))
        });

        let mut receiver = WebSocket::server(config(), Some(params()), Instant::ZERO);
        receiver.handle_input(Instant::ZERO, &frame);
        assert_eq!(
            receiver.poll_event(),
            Some(WsEvent::Binary(message.clone()))
        );
        group.bench_function("inflate", |b| {
            b.iter_batched_ref(
                || frame.clone(),
                |wire| {
                    receiver.handle_input(Instant::ZERO, wire);
                    black_box(receiver.poll_event())
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench_deflate);
criterion_main!(benches);
