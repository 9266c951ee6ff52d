//! WebSocket frame codec: tether against `tungstenite`'s frame codec, on the same bytes.
//!
//! One binary frame (FIN set, no RSV bits) with a 16 B, 1 KiB or 64 KiB payload, so the
//! three length encodings (7-bit, 16-bit, 64-bit) are all covered. Three operations:
//!
//! * `decode`: a masked client frame as a server sees it: parse the header from the front
//!   of the buffer, then unmask the payload in place (it toggles between masked and plain
//!   from one iteration to the next, which costs the same either way).
//!   - tether: `frame::decode_header` (with every RFC 6455 rule: reserved bits and opcodes,
//!     mask required, minimal length, size limit) and `frame::apply_mask` (eight bytes at a
//!     time).
//!   - tungstenite: `FrameHeader::parse` on a `Cursor<&[u8]>` (its public API, as its own
//!     `FrameCodec` calls it) and its `apply_mask` (four bytes at a time, on aligned
//!     words). That function is private to tungstenite (`protocol::frame::mask`), so
//!     [`tungstenite_apply_mask`] below is a verbatim copy of it.
//! * `encode_server`: an unmasked frame into a reused output buffer: header, then payload.
//! * `encode_client`: the same with a mask key: header, payload, then the payload is masked
//!   in the output buffer.
//!   - tether: `frame::encode_header` into a `BytesMut`, `put_slice`, `frame::apply_mask`
//!     on the copied bytes: exactly what `WebSocket` does for a masked frame.
//!   - tungstenite: `FrameHeader::format` into a `Vec<u8>`, `extend_from_slice`, its
//!     `apply_mask` on the copied bytes: exactly the body of its `Frame::format_into_buf`,
//!     which its `FrameCodec` uses to send (it is `pub(crate)`; the public `Frame::format`
//!     would allocate a second copy of a masked payload, so it is not used).
//!
//! Fairness: both sides work on the same wire bytes, in buffers allocated once outside the
//! timed code (no allocation or extra copy on either side: one payload copy per encode, as
//! a frame must be written somewhere, none per decode), with the same fixed mask key (no
//! random number generator on either side). Each side's buffer starts at the same offset
//! from a cache line (decode: on a cache line; encode: wherever the allocator put
//! tungstenite's `Vec`, tether's `BytesMut` moved to match), since where a 64 KiB copy or
//! mask starts changes its speed by up to a third, which would otherwise decide the ratio.
//! Note the sides do not check the same things: tether's header decoder enforces every
//! RFC 6455 header rule and the size limit; tungstenite's only rejects reserved opcodes
//! (it checks the rest later, in its `WebSocket`). The server encode copies the payload on
//! both sides; tether's `WebSocket` itself does not copy payloads of 1 KiB and more. Each routine is `#[inline(never)]`, and the
//! codec functions it calls are compiled into this benchmark on both sides (tungstenite's
//! are generic or `#[inline]`), so both get the same inlining opportunities.
//!
//! tether's frame layer is crate-private (`tether_core::ws` exports only the connection),
//! so its source file, `core/src/ws/frame.rs` (with the error types it needs,
//! `core/src/ws/error.rs`), is compiled into this benchmark with `#[path]`: the very code
//! the `WebSocket` connection runs, unchanged.
//!
//! After criterion's groups, `main` times the same routines itself (median of interleaved
//! batches) and prints a table and `ratio tether/tungstenite (...)` lines: tether's
//! throughput over tungstenite's (tungstenite time / tether time), so more than 1.0x means
//! tether is faster; the target is at least 1.0x.
//!
//! Run with `cargo bench -p tether-core --bench ws_frames`.

#[allow(dead_code)]
#[path = "../src/ws/error.rs"]
mod error;
#[allow(dead_code)]
#[path = "../src/ws/frame.rs"]
mod frame;

mod batches;

use batches::{batch_size, measuring, median, time_loop, BATCHES, BATCH_TARGET};
use bytes::{Buf, BufMut, BytesMut};
use criterion::{criterion_group, Criterion, Throughput};
use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;
use tungstenite::protocol::frame::coding::{Data, OpCode as TOpCode};
use tungstenite::protocol::frame::FrameHeader as TFrameHeader;

/// Payload sizes benchmarked: (label, bytes).
const SIZES: [(&str, usize); 3] = [("16B", 16), ("1KiB", 1024), ("64KiB", 64 * 1024)];

/// The client's mask key, the same for both libraries (the one of RFC 6455 §5.7).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What a server enforces: masked frames, no extension, tether's default frame limit.
const SERVER_RULES: frame::DecodeRules = frame::DecodeRules {
    expect_masked: true,
    allow_rsv1: false,
    max_frame_size: 16 << 20,
};

/// A payload of `len` bytes that is not all one value.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

fn tether_header(len: usize, mask: Option<[u8; 4]>) -> frame::FrameHeader {
    frame::FrameHeader {
        fin: true,
        rsv1: false,
        opcode: frame::OpCode::Binary,
        mask,
        len: len as u64,
    }
}

fn tungstenite_header(mask: Option<[u8; 4]>) -> TFrameHeader {
    TFrameHeader {
        is_final: true,
        opcode: TOpCode::Data(Data::Binary),
        mask,
        ..TFrameHeader::default()
    }
}

/// tungstenite 0.30's `protocol::frame::mask::apply_mask` (= `apply_mask_fast32`), copied
/// verbatim because tungstenite does not export it.
#[inline]
fn tungstenite_apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    #[inline]
    fn apply_mask_fallback(buf: &mut [u8], mask: [u8; 4]) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= mask[i & 3];
        }
    }

    let mask_u32 = u32::from_ne_bytes(mask);

    // SAFETY: any bit pattern is a valid `u32` (as in tungstenite).
    let (prefix, words, suffix) = unsafe { buf.align_to_mut::<u32>() };
    apply_mask_fallback(prefix, mask);
    let head = prefix.len() & 3;
    let mask_u32 = if head > 0 {
        if cfg!(target_endian = "big") {
            mask_u32.rotate_left(8 * head as u32)
        } else {
            mask_u32.rotate_right(8 * head as u32)
        }
    } else {
        mask_u32
    };
    for word in words.iter_mut() {
        *word ^= mask_u32;
    }
    apply_mask_fallback(suffix, mask_u32.to_ne_bytes());
}

// ---- the routines, shared by criterion and the summary ----

/// Server-side decode with tether: header, then the payload unmasked in place. Returns the
/// payload length.
#[inline(never)]
fn tether_decode(buf: &mut [u8]) -> usize {
    let (header, at) = frame::decode_header(buf, &SERVER_RULES, 0)
        .expect("tether: valid frame")
        .expect("tether: whole header");
    let payload = &mut buf[at..at + header.len as usize];
    if let Some(mask) = header.mask {
        frame::apply_mask(payload, mask, 0);
    }
    payload.len()
}

/// Server-side decode with tungstenite: header, then the payload unmasked in place.
#[inline(never)]
fn tungstenite_decode(buf: &mut [u8]) -> usize {
    let mut cursor = Cursor::new(&*buf);
    let (mut header, len) = TFrameHeader::parse(&mut cursor)
        .expect("tungstenite: valid frame")
        .expect("tungstenite: whole header");
    let at = cursor.position() as usize;
    let payload = &mut buf[at..at + len as usize];
    if let Some(mask) = header.mask.take() {
        tungstenite_apply_mask(payload, mask);
    }
    payload.len()
}

/// Encodes one frame with tether into `out` (cleared first); returns the frame length.
#[inline(never)]
fn tether_encode(out: &mut BytesMut, payload: &[u8], mask: Option<[u8; 4]>) -> usize {
    out.clear();
    frame::encode_header(out, &tether_header(payload.len(), mask));
    let start = out.len();
    out.put_slice(payload);
    if let Some(mask) = mask {
        frame::apply_mask(&mut out[start..], mask, 0);
    }
    out.len()
}

/// Encodes one frame with tungstenite into `out` (cleared first), as
/// `Frame::format_into_buf` does; returns the frame length.
#[inline(never)]
fn tungstenite_encode(out: &mut Vec<u8>, payload: &[u8], mask: Option<[u8; 4]>) -> usize {
    out.clear();
    tungstenite_header(mask)
        .format(payload.len() as u64, out)
        .expect("tungstenite: format into a Vec");
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        tungstenite_apply_mask(&mut out[start..], mask);
    }
    out.len()
}

/// One benchmark case: a payload, its masked wire frame, and reusable output buffers.
struct Case {
    label: &'static str,
    payload: Vec<u8>,
    /// The masked client frame, decoded in place (each side gets its own copy).
    wire: Vec<u8>,
}

impl Case {
    fn new(label: &'static str, len: usize) -> Case {
        let payload = payload(len);
        let mut out = BytesMut::new();
        tether_encode(&mut out, &payload, Some(MASK));
        Case {
            label,
            payload,
            wire: out.to_vec(),
        }
    }

    /// Output buffers sized for the frame, so that no timed call allocates, and starting at
    /// the same offset from a cache line: tungstenite's `Vec` where the allocator put it,
    /// tether's `BytesMut` moved to match.
    fn buffers(&self) -> (BytesMut, Vec<u8>) {
        let cap = self.wire.len() + 16;
        let theirs = Vec::with_capacity(cap);
        (buffer_at(cap, phase(theirs.as_ptr())), theirs)
    }

    /// A copy of the wire frame starting on a cache line, as a freshly read frame would.
    fn wire_copy(&self) -> BytesMut {
        let mut buf = buffer_at(self.wire.len(), 0);
        buf.extend_from_slice(&self.wire);
        buf
    }
}

/// Where `ptr` sits in its 64-byte cache line.
fn phase(ptr: *const u8) -> usize {
    ptr as usize % 64
}

/// An empty buffer with room for `cap` bytes whose first byte is `phase` bytes into a
/// cache line. Where a buffer starts decides whether the vector loads and stores of
/// `memcpy` and of masking straddle cache lines, which changes their speed by up to a third:
/// both sides get the same placement, so that this does not decide the ratio.
fn buffer_at(cap: usize, at: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(cap + 64);
    let pad = (64 + at - phase(buf.as_ptr())) % 64;
    buf.put_bytes(0, pad);
    buf.advance(pad);
    assert_eq!(phase(buf.as_ptr()), at);
    assert!(buf.capacity() >= cap);
    buf
}

fn cases() -> Vec<Case> {
    SIZES
        .iter()
        .map(|&(label, len)| Case::new(label, len))
        .collect()
}

/// Checks that both codecs agree on every case before anything is timed.
fn check_cases(cases: &[Case]) {
    for case in cases {
        let label = case.label;
        let len = case.payload.len();
        let (mut ours, mut theirs) = case.buffers();
        assert_eq!(
            phase(ours.as_ptr()),
            phase(theirs.as_ptr()),
            "{label}: placement"
        );
        for mask in [None, Some(MASK)] {
            let n = tether_encode(&mut ours, &case.payload, mask);
            let m = tungstenite_encode(&mut theirs, &case.payload, mask);
            assert_eq!((n, &ours[..]), (m, &theirs[..]), "{label}: encoders differ");
        }
        assert_eq!(&ours[..], &case.wire[..], "{label}: masked wire frame");
        let header_len = case.wire.len() - len;
        assert_eq!(
            header_len,
            match len {
                0..=125 => 6,
                126..=0xFFFF => 8,
                _ => 14,
            },
            "{label}: header length"
        );
        for decode in [tether_decode, tungstenite_decode] {
            let mut buf = case.wire_copy();
            assert_eq!(decode(&mut buf), len, "{label}: decoded length");
            assert_eq!(&buf[header_len..], &case.payload[..], "{label}: unmasked");
            assert_eq!(decode(&mut buf), len, "{label}: decoded length");
            assert_eq!(&buf[..], &case.wire[..], "{label}: masked again");
        }
        // The capacity set aside is enough: nothing timed allocates or moves.
        let before = (ours.as_ptr(), theirs.as_ptr());
        tether_encode(&mut ours, &case.payload, Some(MASK));
        tungstenite_encode(&mut theirs, &case.payload, Some(MASK));
        assert_eq!(
            (ours.as_ptr(), theirs.as_ptr()),
            before,
            "{label}: reallocated"
        );
    }
}

// ---- criterion ----

fn bench_frames(c: &mut Criterion) {
    let cases = cases();
    check_cases(&cases);
    for case in &cases {
        let payload = &case.payload[..];
        let mut group = c.benchmark_group(format!("ws_decode/{}", case.label));
        group
            .throughput(Throughput::Bytes(payload.len() as u64))
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(30);
        let mut buf = case.wire_copy();
        group.bench_function("tether", |b| {
            b.iter(|| tether_decode(black_box(&mut buf[..])))
        });
        let mut buf = case.wire_copy();
        group.bench_function("tungstenite", |b| {
            b.iter(|| tungstenite_decode(black_box(&mut buf[..])))
        });
        group.finish();

        for (name, mask) in [("server", None), ("client", Some(MASK))] {
            let mut group = c.benchmark_group(format!("ws_encode_{name}/{}", case.label));
            group
                .throughput(Throughput::Bytes(payload.len() as u64))
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1))
                .sample_size(30);
            let (mut ours, mut theirs) = case.buffers();
            group.bench_function("tether", |b| {
                b.iter(|| tether_encode(black_box(&mut ours), black_box(payload), mask))
            });
            group.bench_function("tungstenite", |b| {
                b.iter(|| tungstenite_encode(black_box(&mut theirs), black_box(payload), mask))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench_frames);

// ---- the summary ----

/// The operations, in table order.
const OPERATIONS: [&str; 3] = ["decode", "encode_server", "encode_client"];

/// Nanoseconds per call of tether's and tungstenite's routine for one operation, from
/// interleaved batches.
fn measure_pair(
    mut ours: impl FnMut(usize) -> Duration,
    mut theirs: impl FnMut(usize) -> Duration,
) -> (f64, f64) {
    let sizes = [
        batch_size(&mut ours, 100, 10_000_000),
        batch_size(&mut theirs, 100, 10_000_000),
    ];
    let mut samples: [Vec<f64>; 2] = Default::default();
    for _ in 0..BATCHES {
        let elapsed = [ours(sizes[0]), theirs(sizes[1])];
        for ((samples, elapsed), n) in samples.iter_mut().zip(elapsed).zip(sizes) {
            samples.push(elapsed.as_secs_f64() * 1e9 / n as f64);
        }
    }
    let [ours, theirs] = samples.map(median);
    (ours, theirs)
}

/// (tether ns, tungstenite ns) for each operation of `case`.
fn measure(case: &Case) -> [(f64, f64); 3] {
    let payload = &case.payload[..];
    let (mut buf_ours, mut buf_theirs) = (case.wire_copy(), case.wire_copy());
    let decode = measure_pair(
        |n| {
            time_loop(n, || {
                _ = black_box(tether_decode(black_box(&mut buf_ours[..])))
            })
        },
        |n| {
            time_loop(n, || {
                _ = black_box(tungstenite_decode(black_box(&mut buf_theirs[..])))
            })
        },
    );
    let encode = |mask| {
        let (mut ours, mut theirs) = case.buffers();
        measure_pair(
            |n| {
                time_loop(n, || {
                    _ = black_box(tether_encode(
                        black_box(&mut ours),
                        black_box(payload),
                        mask,
                    ))
                })
            },
            |n| {
                time_loop(n, || {
                    _ = black_box(tungstenite_encode(
                        black_box(&mut theirs),
                        black_box(payload),
                        mask,
                    ))
                })
            },
        )
    };
    [decode, encode(None), encode(Some(MASK))]
}

fn summary() {
    let cases = cases();
    let results: Vec<_> = cases.iter().map(|case| (case, measure(case))).collect();
    let gib_s = |len: usize, ns: f64| len as f64 / ns * 1e9 / f64::from(1 << 30);
    println!();
    println!(
        "summary: median of {BATCHES} interleaved batches of ~{BATCH_TARGET:?} each; \
         GiB/s of payload; ratio = tungstenite time / tether time (>1: tether faster)"
    );
    println!(
        "  {:<14} {:>6} {:>11} {:>8} {:>11} {:>8} {:>7}",
        "operation", "size", "tether ns", "GiB/s", "tungst. ns", "GiB/s", "ratio"
    );
    for (i, op) in OPERATIONS.iter().enumerate() {
        for (case, timings) in &results {
            let len = case.payload.len();
            let (ours, theirs) = timings[i];
            println!(
                "  {op:<14} {:>6} {ours:>11.1} {:>8.2} {theirs:>11.1} {:>8.2} {:>6.2}x",
                case.label,
                gib_s(len, ours),
                gib_s(len, theirs),
                theirs / ours,
            );
        }
    }
    for (i, op) in OPERATIONS.iter().enumerate() {
        for (case, timings) in &results {
            let (ours, theirs) = timings[i];
            println!(
                "ratio tether/tungstenite ({op} {}): {:.2}x (tether {ours:.1} ns, \
                 tungstenite {theirs:.1} ns)",
                case.label,
                theirs / ours,
            );
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if measuring() {
        summary();
    }
}
