//! Tests of the per-message codec: RFC 7692 vectors, context takeover, window sizes,
//! limits, bad input, and round-trip properties.

use super::*;
use proptest::prelude::*;

const LIMIT: usize = 1 << 20;

fn inflate_message(inflater: &mut Inflater, frames: &[&[u8]]) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    for frame in frames {
        inflater.push(frame, &mut out, LIMIT)?;
    }
    inflater.finish(&mut out, LIMIT)?;
    Ok(out)
}

fn deflate_message(deflater: &mut Deflater, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    deflater.compress(payload, &mut out);
    out
}

const HELLO: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
const HELLO_AGAIN: &[u8] = &[0xf2, 0x00, 0x11, 0x00, 0x00];

#[test]
fn rfc7692_vectors() {
    // §7.2.3.1 and §7.2.3.2: "Hello" twice with context takeover.
    let mut inflater = Inflater::new(false, 15);
    assert_eq!(
        inflate_message(&mut inflater, &[HELLO]).as_deref(),
        Ok(&b"Hello"[..])
    );
    assert_eq!(
        inflate_message(&mut inflater, &[HELLO_AGAIN]).as_deref(),
        Ok(&b"Hello"[..])
    );
    // §7.2.3.1 fragmented over three frames and an empty one.
    let mut inflater = Inflater::new(false, 15);
    assert_eq!(
        inflate_message(
            &mut inflater,
            &[&HELLO[..2], &[], &HELLO[2..3], &HELLO[3..]]
        )
        .as_deref(),
        Ok(&b"Hello"[..])
    );
    // §7.2.3.3: a stored block.
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(
        inflate_message(&mut Inflater::new(false, 15), &[&stored]).as_deref(),
        Ok(&b"Hello"[..])
    );
    // §7.2.3.5: two DEFLATE blocks in one message.
    let two = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(
        inflate_message(&mut Inflater::new(false, 15), &[&two]).as_deref(),
        Ok(&b"Hello"[..])
    );
}

#[test]
fn deflater_matches_rfc_vectors() {
    let mut deflater = Deflater::new(6, false, 15);
    assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO);
    assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO_AGAIN);
    // Without context takeover every message starts afresh.
    let mut deflater = Deflater::new(6, true, 15);
    assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO);
    assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO);
}

#[test]
fn bfinal_message_ends_the_stream() {
    // §7.2.3.4: a final block followed by a padding byte.
    let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    let mut inflater = Inflater::new(false, 15);
    assert_eq!(
        inflate_message(&mut inflater, &[&bfinal]).as_deref(),
        Ok(&b"Hello"[..])
    );
    // Bytes after the final block in the same message are ignored.
    assert_eq!(
        inflate_message(&mut inflater, &[&bfinal[..6], &bfinal[6..], b"junk"]).as_deref(),
        Ok(&b"Hello"[..])
    );
    // The next message starts a new stream.
    assert_eq!(
        inflate_message(&mut inflater, &[HELLO]).as_deref(),
        Ok(&b"Hello"[..])
    );
    assert_eq!(
        inflate_message(&mut inflater, &[HELLO_AGAIN]).as_deref(),
        Ok(&b"Hello"[..])
    );
    // Without a padding byte too (zlib's Z_FINISH output).
    assert_eq!(
        inflate_message(&mut inflater, &[&bfinal[..7]]).as_deref(),
        Ok(&b"Hello"[..])
    );
    assert_eq!(
        inflate_message(&mut inflater, &[HELLO]).as_deref(),
        Ok(&b"Hello"[..])
    );
}

#[test]
fn empty_messages() {
    let mut deflater = Deflater::new(6, false, 15);
    let empty = deflate_message(&mut deflater, b"");
    assert_eq!(empty, [0x00]);
    let mut inflater = Inflater::new(false, 15);
    assert_eq!(inflate_message(&mut inflater, &[&empty]), Ok(Vec::new()));
    // An empty compressed payload is an empty message and leaves the context alone.
    assert_eq!(inflate_message(&mut inflater, &[]), Ok(Vec::new()));
    assert_eq!(inflate_message(&mut inflater, &[&[], &[]]), Ok(Vec::new()));
    let hello = deflate_message(&mut deflater, b"Hello");
    assert_eq!(
        inflate_message(&mut inflater, &[&hello]).as_deref(),
        Ok(&b"Hello"[..])
    );
    let hello = deflate_message(&mut deflater, b"Hello");
    assert_eq!(hello, HELLO_AGAIN);
    assert_eq!(
        inflate_message(&mut inflater, &[&hello]).as_deref(),
        Ok(&b"Hello"[..])
    );
}

#[test]
fn compress_appends() {
    let mut deflater = Deflater::new(9, false, 15);
    let mut out = b"head".to_vec();
    deflater.compress(b"Hello", &mut out);
    assert_eq!(&out[..4], b"head");
    assert_eq!(&out[4..], HELLO);
}

/// Deterministic pseudo-random (incompressible) bytes.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn compressor_output_in_pieces_equals_one_shot() {
    // Incompressible data makes compress() grow `out` several times; the stream must be
    // exactly what one call with ample room produces (no fallback, no extra blocks).
    for (i, len) in [1, 63, 64, 1000, 40_000, 200_000].into_iter().enumerate() {
        let payload = noise(len, 0x9e37_79b9_7f4a_7c15 + i as u64);
        let mut reference = Compress::new(Compression::new(6), false);
        let mut expected = Vec::with_capacity(2 * len + 1024);
        let status = reference.compress_vec(&payload, &mut expected, FlushCompress::Sync);
        assert_eq!(status.ok(), Some(Status::Ok));
        assert!(expected.ends_with(&SYNC_TAIL));
        expected.truncate(expected.len() - SYNC_TAIL.len());
        let mut deflater = Deflater::new(6, false, 15);
        let mut out = Vec::new();
        deflater.compress(&payload, &mut out);
        assert_eq!(out, expected, "len {len}");
    }
    // Compressible text really is compressed.
    let text = b"the quick brown fox jumps over the lazy dog. ".repeat(5000);
    for len in [300, 1000, text.len()] {
        let out = deflate_message(&mut Deflater::new(6, true, 15), &text[..len]);
        assert!(out.len() < len / 2, "len {len}: {} bytes", out.len());
    }
}

#[test]
fn levels_round_trip() {
    let payload: Vec<u8> = (0..20_000u32)
        .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
        .collect();
    for level in [0, 1, 5, 9, 10, u32::MAX] {
        let mut deflater = Deflater::new(level, false, 15);
        let mut inflater = Inflater::new(false, 15);
        for _ in 0..3 {
            let c = deflate_message(&mut deflater, &payload);
            assert_eq!(
                inflate_message(&mut inflater, &[&c]).as_deref(),
                Ok(&payload[..])
            );
        }
    }
}

#[test]
fn stored_fallback_keeps_the_stream_valid() {
    let big: Vec<u8> = (0..150_000u32).map(|i| (i * 7 % 13) as u8).collect();
    let mut deflater = Deflater::new(6, false, 15);
    let mut inflater = Inflater::new(false, 15);
    let first = deflate_message(&mut deflater, &big);
    assert!(first.len() < big.len() / 10);
    assert_eq!(
        inflate_message(&mut inflater, &[&first]).as_deref(),
        Ok(&big[..])
    );
    // What compress() does when the compressor fails: stored blocks, then a reset.
    let mut stored = Vec::new();
    write_stored(&big, &mut stored);
    deflater.compress.reset();
    assert_eq!(stored.len(), big.len() + 3 * 5 + 1);
    assert_eq!(
        inflate_message(&mut inflater, &[&stored]).as_deref(),
        Ok(&big[..])
    );
    let mut empty = Vec::new();
    write_stored(b"", &mut empty);
    assert_eq!(inflate_message(&mut inflater, &[&empty]), Ok(Vec::new()));
    let third = deflate_message(&mut deflater, &big);
    assert_eq!(
        inflate_message(&mut inflater, &[&third]).as_deref(),
        Ok(&big[..])
    );
}

#[test]
fn invalid_data() {
    // BTYPE = 11 is reserved.
    let mut inflater = Inflater::new(false, 15);
    let mut out = Vec::new();
    assert_eq!(
        inflater.push(&[0xff, 0xff, 0xff], &mut out, LIMIT),
        Err(InflateError::Invalid)
    );
    // The inflater stays failed.
    assert_eq!(
        inflater.push(HELLO, &mut out, LIMIT),
        Err(InflateError::Invalid)
    );
    assert_eq!(inflater.finish(&mut out, LIMIT), Err(InflateError::Invalid));
    // Stored block with LEN != !NLEN, detected in finish or push.
    let mut inflater = Inflater::new(false, 15);
    assert_eq!(
        inflate_message(&mut inflater, &[&[0x00, 0x05, 0x00, 0x00, 0x00, b'x']]),
        Err(InflateError::Invalid)
    );
    // Random garbage never panics.
    for seed in 0..200u32 {
        let garbage: Vec<u8> = (0..64u32)
            .map(|i| (seed.wrapping_mul(2654435761) ^ i.wrapping_mul(40503)) as u8)
            .collect();
        let _ = inflate_message(&mut Inflater::new(false, 15), &[&garbage]);
    }
}

#[test]
fn compression_bomb_is_stopped_early() {
    let zeros = vec![0u8; 10_000_000];
    let bomb = deflate_message(&mut Deflater::new(9, false, 15), &zeros);
    assert!(bomb.len() < 20_000, "bomb is {} bytes", bomb.len());
    for limit in [0, 1, 1000, 65_536, 1 << 20] {
        for frame_size in [bomb.len(), 100, 7] {
            let mut inflater = Inflater::new(false, 15);
            let mut out = Vec::new();
            let mut result = Ok(());
            for frame in bomb.chunks(frame_size) {
                result = inflater.push(frame, &mut out, limit);
                assert!(out.len() <= limit + 1, "limit {limit}: {} bytes", out.len());
                if result.is_err() {
                    break;
                }
            }
            if result.is_ok() {
                result = inflater.finish(&mut out, limit);
            }
            assert_eq!(result, Err(InflateError::TooLarge), "limit {limit}");
            assert!(out.len() <= limit + 1);
            assert!(out.capacity() <= (limit + 1).max(INFLATE_STEP) * 2 + 64);
        }
    }
}

#[test]
fn limit_is_exact() {
    let payload = vec![b'a'; 100_000];
    let compressed = deflate_message(&mut Deflater::new(6, true, 15), &payload);
    let mut out = Vec::new();
    assert_eq!(
        inflate_message_limited(&compressed, &mut out, payload.len()),
        Ok(())
    );
    assert_eq!(out, payload);
    assert_eq!(
        inflate_message_limited(&compressed, &mut Vec::new(), payload.len() - 1),
        Err(InflateError::TooLarge)
    );
    // The limit counts what `out` already holds.
    let mut out = vec![0; 10];
    assert_eq!(
        inflate_message_limited(&compressed, &mut out, payload.len() + 9),
        Err(InflateError::TooLarge)
    );
    assert_eq!(out.len(), payload.len() + 10);
}

fn inflate_message_limited(
    compressed: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), InflateError> {
    let mut inflater = Inflater::new(true, 15);
    inflater.push(compressed, out, limit)?;
    inflater.finish(out, limit)
}

#[test]
fn no_context_takeover_inflater_rejects_back_references_gracefully() {
    // The second "Hello" refers to the first: decoded without the context it is not
    // "Hello" (the window starts empty), but nothing panics.
    let mut inflater = Inflater::new(true, 15);
    assert_eq!(
        inflate_message(&mut inflater, &[HELLO]).as_deref(),
        Ok(&b"Hello"[..])
    );
    let second = inflate_message(&mut inflater, &[HELLO_AGAIN]);
    assert_ne!(second.as_deref(), Ok(&b"Hello"[..]));
}

/// A text with matches at every distance up to `span` bytes back.
fn far_matches(span: usize) -> Vec<u8> {
    let block = noise(span, 7);
    let mut out = block.clone();
    out.extend_from_slice(&block);
    out.extend_from_slice(&block);
    out
}

#[test]
fn every_window_round_trips() {
    for bits in 9..=15u8 {
        // Matches well inside the window (zlib keeps 262 bytes of look-ahead out of it).
        let payload = far_matches(1 << (bits - 2));
        let mut deflater = Deflater::new(6, false, bits);
        let compressed = deflate_message(&mut deflater, &payload);
        assert!(
            compressed.len() < payload.len() / 2,
            "window {bits} found no matches"
        );
        let mut inflater = Inflater::new(false, bits);
        assert_eq!(
            inflate_message(&mut inflater, &[&compressed]).as_deref(),
            Ok(&payload[..]),
            "window {bits}"
        );
        // The next message refers into the previous one, inside the window.
        let again = deflate_message(&mut deflater, &payload);
        assert!(again.len() <= compressed.len(), "window {bits}");
        assert_eq!(
            inflate_message(&mut inflater, &[&again]).as_deref(),
            Ok(&payload[..]),
            "window {bits}, second message"
        );
    }
}

#[test]
fn the_compressor_never_reaches_beyond_its_window() {
    // Repeats 4 KiB apart: a 2^15 compressor finds them, a 2^9 one must not.
    let payload = far_matches(4096);
    let wide = deflate_message(&mut Deflater::new(6, false, 15), &payload);
    let narrow = deflate_message(&mut Deflater::new(6, false, 9), &payload);
    assert!(wide.len() < payload.len() / 2, "{}", wide.len());
    assert!(narrow.len() > payload.len() * 9 / 10, "{}", narrow.len());
}

#[test]
fn window_bits_outside_what_zlib_has_are_clamped() {
    // 8 (valid in RFC 7692) and nonsense values never panic; 8 behaves as 9.
    for bits in [0u8, 8, 16, 255] {
        let mut deflater = Deflater::new(6, false, bits);
        let payload = far_matches(300);
        let compressed = deflate_message(&mut deflater, &payload);
        let mut inflater = Inflater::new(false, bits);
        assert_eq!(
            inflate_message(&mut inflater, &[&compressed]).as_deref(),
            Ok(&payload[..]),
            "{bits}"
        );
    }
}

#[test]
fn no_context_takeover_with_a_small_window() {
    // Resetting a decompressor whose window is not the default one rebuilds it: exercise that.
    let payload = far_matches(200);
    let mut deflater = Deflater::new(6, true, 9);
    let mut inflater = Inflater::new(true, 9);
    for _ in 0..3 {
        let compressed = deflate_message(&mut deflater, &payload);
        assert_eq!(
            inflate_message(&mut inflater, &[&compressed]).as_deref(),
            Ok(&payload[..])
        );
    }
}

// ---- property tests -------------------------------------------------------------------

/// Messages of 0..5000 bytes: random, or runs from a tiny alphabet (highly compressible).
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..5000),
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0u8)], 0..5000),
        (any::<u8>(), 0..5000usize).prop_map(|(b, n)| vec![b; n]),
        proptest::collection::vec(
            proptest::sample::select(b"the quick brown fox ".to_vec()),
            0..5000
        ),
    ]
}

/// Splits `data` at the given (sorted, deduplicated) cut points.
fn frames<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut frames = Vec::new();
    let mut start = 0;
    for p in points {
        frames.push(&data[start..p]);
        start = p;
    }
    frames.push(&data[start..]);
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip(
        messages in proptest::collection::vec(
            (message(), proptest::collection::vec(any::<usize>(), 0..6)),
            1..6,
        ),
        level in 0u32..=9,
        // (sender resets, receiver resets); a receiver may reset only if the sender does.
        takeover in prop_oneof![Just((false, false)), Just((true, false)), Just((true, true))],
        // (sender's window, receiver's window): the receiver's is never smaller.
        windows in (8u8..=15).prop_flat_map(|sender| (Just(sender), sender..=15)),
    ) {
        let mut deflater = Deflater::new(level, takeover.0, windows.0);
        let mut inflater = Inflater::new(takeover.1, windows.1);
        for (payload, cuts) in &messages {
            let compressed = deflate_message(&mut deflater, payload);
            prop_assert!(!compressed.is_empty());
            let frames = frames(&compressed, cuts);
            let decompressed = inflate_message(&mut inflater, &frames);
            prop_assert_eq!(decompressed.as_deref(), Ok(&payload[..]));
        }
    }

    #[test]
    fn arbitrary_input_never_panics(
        frames in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300),
            0..4,
        ),
        limit in 0usize..10_000,
        takeover in any::<bool>(),
        window in 8u8..=15,
    ) {
        let mut inflater = Inflater::new(takeover, window);
        let mut out = Vec::new();
        for frame in &frames {
            if inflater.push(frame, &mut out, limit).is_err() {
                break;
            }
        }
        let _ = inflater.finish(&mut out, limit);
        prop_assert!(out.len() <= limit + 1);
    }
}
