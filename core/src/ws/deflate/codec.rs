//! The per-message codec: [`Deflater`] for the messages we send, [`Inflater`] for those we
//! receive, each with the LZ77 window and context-takeover rule negotiated for its direction.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{MAX_WINDOW_BITS, MIN_CODEC_WINDOW_BITS, SYNC_TAIL};

/// Largest slice of output the decompressor may write per step (bounded so that the
/// output limit is checked often and memory never runs ahead of it).
const INFLATE_STEP: usize = 32 * 1024;

/// Smallest such slice.
const INFLATE_MIN_STEP: usize = 256;

/// The window bits zlib can use for a negotiated `bits`: 9..=15. Only callers that may use a
/// larger window than negotiated pass values below 9 (an inflater: a larger window reads
/// anything a smaller one wrote).
fn codec_window_bits(bits: u8) -> u8 {
    bits.clamp(MIN_CODEC_WINDOW_BITS, MAX_WINDOW_BITS)
}

/// Compresses the whole messages we send.
///
/// Infallible by construction: should the compressor ever report an error (it cannot, for the
/// way it is driven here), the message is emitted as DEFLATE stored blocks instead and the
/// compressor is reset, which keeps the stream valid for the peer whatever its context.
pub(crate) struct Deflater {
    compress: Compress,
    no_context_takeover: bool,
    window_bits: u8,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor at `level` (0..=9, higher values count as 9) whose back-references reach
    /// at most 2^`window_bits` bytes (9..=15; negotiation never settles on 8 for a side we
    /// compress, and other values are clamped), and that resets its context after every
    /// message if `no_context_takeover`.
    pub(crate) fn new(level: u32, no_context_takeover: bool, window_bits: u8) -> Deflater {
        let window_bits = codec_window_bits(window_bits);
        Deflater {
            compress: Compress::new_with_window_bits(
                Compression::new(level.min(9)),
                false,
                window_bits,
            ),
            no_context_takeover,
            window_bits,
        }
    }

    /// Appends the compressed form of `payload` (one complete message) to `out`: raw
    /// DEFLATE ending in a sync flush, with the trailing `00 00 ff ff` removed
    /// (RFC 7692 §7.2.1). The result is never empty: an empty payload becomes `00`.
    pub(crate) fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        if payload.is_empty() {
            // An empty stored block without its LEN/NLEN: carries nothing, leaves the
            // compressor (whose output already ended at a byte-aligned block boundary) as is.
            out.push(0x00);
            return;
        }
        if self.try_compress(payload, out, start) {
            out.truncate(out.len() - SYNC_TAIL.len());
            if self.no_context_takeover {
                self.compress.reset();
            }
        } else {
            out.truncate(start);
            self.compress.reset();
            write_stored(payload, out);
        }
    }

    /// Runs the compressor over `payload` with a sync flush. `true` if it succeeded and the
    /// output (from `start` on) ends with the sync tail.
    fn try_compress(&mut self, payload: &[u8], out: &mut Vec<u8>, start: usize) -> bool {
        // DEFLATE expands incompressible data by a few bytes per block; anything beyond this
        // bound would mean the compressor misbehaves (and guarantees the loop ends).
        let max_output = payload.len() + payload.len() / 8 + 1024;
        out.reserve(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve((input.len() / 2).max(1024));
            }
            let spare = out.capacity() - out.len();
            let (in_before, out_before) = (self.compress.total_in(), self.compress.total_out());
            match self.compress.compress_vec(input, out, FlushCompress::Sync) {
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) | Err(_) => return false,
            }
            let consumed = self.compress.total_in().wrapping_sub(in_before);
            let produced = self.compress.total_out().wrapping_sub(out_before);
            let Some(rest) = usize::try_from(consumed).ok().and_then(|n| input.get(n..)) else {
                return false;
            };
            input = rest;
            let filled = usize::try_from(produced).is_ok_and(|n| n >= spare);
            if input.is_empty() && !filled {
                break;
            }
            if (consumed == 0 && produced == 0) || out.len() - start > max_output {
                return false; // no progress, or runaway output: never spin
            }
        }
        out.len() >= start + SYNC_TAIL.len() && out.ends_with(&SYNC_TAIL)
    }
}

/// Appends `payload` as non-final stored blocks followed by the first byte of an empty stored
/// block (whose `00 00 ff ff` the receiver appends). Valid after any byte-aligned block
/// boundary, whatever the receiver's window holds.
fn write_stored(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + payload.len() / 0xffff * 5 + 6);
    for chunk in payload.chunks(0xffff) {
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(0x00); // BFINAL = 0, BTYPE = 00, padding
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0x00);
}

/// Why decompressing a received message failed; either way the connection must be failed
/// (1009 Message Too Big or 1007 Invalid Frame Payload Data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InflateError {
    /// The decompressed message would exceed the size limit.
    #[error("decompressed message exceeds the size limit")]
    TooLarge,
    /// The compressed data is not valid DEFLATE.
    #[error("invalid compressed data")]
    Invalid,
}

/// Decompresses the messages we receive, frame by frame, with a hard limit on output.
///
/// A peer may end a message's DEFLATE data with a final block (BFINAL = 1, RFC 7692 §7.2.3.4)
/// instead of a sync flush. That ends the DEFLATE stream: bytes after the final block in the
/// same message (such as the padding byte of §7.2.3.4) are ignored, the tail is not appended,
/// and the decompressor starts a new stream with an empty window at the next message whatever
/// the context-takeover setting (a stream that has ended has no window left to take over, and
/// a zlib-based sender must reset its compressor after finishing the stream).
///
/// A compressed message with an empty payload decompresses to an empty message without
/// touching the context.
///
/// After an error the `Inflater` is unusable: every further call returns the same error.
pub(crate) struct Inflater {
    decompress: Decompress,
    no_context_takeover: bool,
    window_bits: u8,
    /// Some compressed byte of the current message has been fed.
    fed: bool,
    /// The current message contained a final block.
    stream_ended: bool,
    failed: Option<InflateError>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("window_bits", &self.window_bits)
            .field("stream_ended", &self.stream_ended)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decompressor for a peer that compresses with a window of 2^`window_bits` bytes
    /// (8 becomes 9, the smallest zlib has, which reads everything a 256-byte window writes)
    /// that starts every message with an empty window if `no_context_takeover` (the peer
    /// promised not to refer to earlier messages), and keeps the window across messages
    /// otherwise.
    ///
    /// zlib-rs keeps a 32 KiB window for decompression whatever size it is given, so a
    /// smaller negotiated window saves the peer memory, not us, and a peer that reaches
    /// further back than it agreed is decoded rather than caught; memory stays bounded by the
    /// output limit either way.
    pub(crate) fn new(no_context_takeover: bool, window_bits: u8) -> Inflater {
        let window_bits = codec_window_bits(window_bits);
        Inflater {
            decompress: Decompress::new_with_window_bits(false, window_bits),
            no_context_takeover,
            window_bits,
            fed: false,
            stream_ended: false,
            failed: None,
        }
    }

    /// Feeds compressed bytes of the current message (one frame's payload); the decompressed
    /// bytes are appended to `out`.
    ///
    /// Fails with [`InflateError::TooLarge`] as soon as `out.len()` exceeds
    /// `max_message_size`: output is produced in steps no larger than the room left under the
    /// limit plus one byte, so `out` never grows beyond `max_message_size + 1`, however
    /// compressible the input. Pass the buffer holding the message so far to bound the whole
    /// message. Fails with [`InflateError::Invalid`] on corrupt data.
    pub(crate) fn push(
        &mut self,
        compressed: &[u8],
        out: &mut Vec<u8>,
        max_message_size: usize,
    ) -> Result<(), InflateError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if !compressed.is_empty() {
            self.fed = true;
        }
        self.inflate(compressed, out, max_message_size)
            .inspect_err(|&error| self.failed = Some(error))
    }

    /// Ends the current message: feeds the `00 00 ff ff` tail (RFC 7692 §7.2.2), appends the
    /// remaining output to `out` under the same limit as [`Inflater::push`], and resets the
    /// context if `no_context_takeover` (or if the message ended the DEFLATE stream).
    pub(crate) fn finish(
        &mut self,
        out: &mut Vec<u8>,
        max_message_size: usize,
    ) -> Result<(), InflateError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.fed {
            self.inflate(&SYNC_TAIL, out, max_message_size)
                .inspect_err(|&error| self.failed = Some(error))?;
        }
        if self.no_context_takeover || self.stream_ended {
            self.decompress.reset(false);
            // reset() keeps the window size this decompressor was made with.
        }
        self.fed = false;
        self.stream_ended = false;
        Ok(())
    }

    /// Decompresses all of `input` and everything pending, in bounded steps.
    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        max_message_size: usize,
    ) -> Result<(), InflateError> {
        // Start with room for a typical expansion of this input and double while the
        // decompressor fills it, so small messages do not pay for big steps.
        let mut step_hint = input
            .len()
            .saturating_mul(4)
            .clamp(INFLATE_MIN_STEP, INFLATE_STEP);
        loop {
            if self.stream_ended {
                // Bytes after the final block are ignored (see the type's documentation).
                return Ok(());
            }
            // At most one byte over the limit, so that exceeding it is detected.
            let room = max_message_size.saturating_sub(out.len()).saturating_add(1);
            let step = room.min(step_hint);
            let start = out.len();
            out.resize(start + step, 0);
            let (in_before, out_before) = (self.decompress.total_in(), self.decompress.total_out());
            let result = self.decompress.decompress(
                input,
                out.get_mut(start..).unwrap_or_default(),
                FlushDecompress::None,
            );
            let consumed = self.decompress.total_in().wrapping_sub(in_before);
            let produced = usize::try_from(self.decompress.total_out().wrapping_sub(out_before))
                .ok()
                .filter(|&n| n <= step);
            out.truncate(start + produced.unwrap_or(0));
            let produced = produced.ok_or(InflateError::Invalid)?;
            match result {
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) => self.stream_ended = true,
                Err(_) => return Err(InflateError::Invalid),
            }
            input = usize::try_from(consumed)
                .ok()
                .and_then(|n| input.get(n..))
                .ok_or(InflateError::Invalid)?;
            if produced > 0 && out.len() > max_message_size {
                return Err(InflateError::TooLarge);
            }
            if consumed == 0 && produced == 0 {
                if input.is_empty() || self.stream_ended {
                    return Ok(()); // drained
                }
                return Err(InflateError::Invalid); // no progress with input left: never spin
            }
            if produced == step {
                step_hint = step_hint.saturating_mul(2).min(INFLATE_STEP);
            }
        }
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
