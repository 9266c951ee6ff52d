//! permessage-deflate (RFC 7692): negotiation and per-message compression.
//!
//! # Negotiation
//!
//! * A client offers [`client_offer`] in `Sec-WebSocket-Extensions` and checks the server's
//!   answer with [`client_accept`].
//! * A server picks the first acceptable offer with [`server_negotiate`] and sends the
//!   returned value back.
//!
//! The compressor (miniz_oxide, through flate2's pure-Rust backend) always uses a 32 KiB
//! (2^15) LZ77 window and cannot be told to use a smaller one. Its decompressor accepts any
//! window up to 2^15. Hence the window-bits policy:
//!
//! * `server_max_window_bits` limits the *server's* compressor. A server declines an offer that
//!   asks for less than 15 (RFC 7692 §7.1.2.1 lets it decline); a client accepts any value
//!   in 8..=15 in a response, since that only constrains the peer.
//! * `client_max_window_bits` limits the *client's* compressor. A client built here does not
//!   offer it, because offering it promises to honour a value below 15, which it could not: a
//!   server that insists on a smaller client window then declines the extension instead of
//!   making the client fail the whole connection. A response that nevertheless carries it is
//!   accepted only with the value 15 (a limit that changes nothing). A server accepts offers with
//!   or without it (the value, if any, is a promise about the client's own window, which the
//!   decompressor handles whatever it is) and never puts it in its response.
//!
//! # Compression
//!
//! [`Deflater`] compresses whole outgoing messages (raw DEFLATE, sync flush, trailing
//! `00 00 ff ff` removed, RFC 7692 §7.2.1). [`Inflater`] decompresses incoming messages frame
//! by frame in bounded steps, so a small compressed frame can never make it produce more than
//! the caller's limit (plus one byte) of output.
//!
//! Which side uses which flag: a client compresses with
//! `Deflater::new(level, params.client_no_context_takeover)` and decompresses with
//! `Inflater::new(params.server_no_context_takeover)`; a server the other way round.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension token.
const EXTENSION_NAME: &str = "permessage-deflate";

/// Parameter names (RFC 7692 §7.1).
const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// The largest LZ77 window, and the only one our compressor uses.
const MAX_WINDOW_BITS: u8 = 15;

/// The tail a sync flush ends with; removed by the sender, appended by the receiver.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Largest slice of output the decompressor may write per step (bounded so that the
/// output limit is checked often and memory never runs ahead of it).
const INFLATE_STEP: usize = 32 * 1024;

/// Smallest such slice.
const INFLATE_MIN_STEP: usize = 256;

/// What we are willing to use, as client (what we offer) or server (what we accept).
///
/// Client side: the `*_no_context_takeover` flags are put in the offer. Server side: a flag set
/// here is put in every response (the server always may do so, RFC 7692 §7.1.1); a flag that
/// is clear is still agreed to when the client's offer asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Ask (client) / agree or impose (server) that the server resets its compression context
    /// after every message. Saves the client from keeping the server's window between
    /// messages, at the cost of compression ratio. Default `false`.
    pub server_no_context_takeover: bool,
    /// Promise (client) / ask (server) that the client resets its compression context after
    /// every message. Default `false`.
    pub client_no_context_takeover: bool,
    /// Compression level 0..=9 for messages we send (0 = stored blocks only, 9 = smallest).
    /// Values above 9 are treated as 9. Default 6.
    pub level: u32,
    /// Messages we send with fewer payload bytes than this are sent uncompressed (RSV1 clear;
    /// RFC 7692 lets a sender leave any message uncompressed). Default 64: below that,
    /// DEFLATE output (whose literals cost 8 or 9 bits each and whose short inputs rarely
    /// contain matches) is seldom smaller than the input, so compressing costs CPU for
    /// nothing. Uncompressed messages do not touch the compression context.
    pub min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            level: 6,
            min_size: 64,
        }
    }
}

/// Negotiated permessage-deflate parameters of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// Base-2 logarithm of the largest LZ77 window the server compresses with (8..=15;
    /// 15 when not negotiated).
    pub server_max_window_bits: u8,
    /// Base-2 logarithm of the largest LZ77 window the client compresses with (8..=15;
    /// 15 when not negotiated).
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// Context takeover on both sides, 32 KiB windows: what `permessage-deflate` without
    /// parameters means.
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// Why a client rejects the server's `Sec-WebSocket-Extensions` response (the client must then
/// fail the WebSocket connection, RFC 6455 §9.1, RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateNegotiationError {
    /// A header value does not follow the extension list grammar (RFC 6455 §9.1).
    #[error("malformed Sec-WebSocket-Extensions header")]
    Malformed,
    /// The server accepted an extension the client did not offer.
    #[error("server accepted an extension that was not offered")]
    UnexpectedExtension,
    /// The server accepted permessage-deflate more than once.
    #[error("server accepted permessage-deflate more than once")]
    DuplicateExtension,
    /// The response carries a parameter permessage-deflate does not define.
    #[error("unknown permessage-deflate parameter")]
    UnknownParameter,
    /// The response carries the same parameter twice.
    #[error("duplicate permessage-deflate parameter {param}")]
    DuplicateParameter {
        /// The repeated parameter.
        param: &'static str,
    },
    /// A parameter has a missing, unexpected or out-of-range value.
    #[error("invalid value for permessage-deflate parameter {param}")]
    InvalidValue {
        /// The parameter whose value is invalid.
        param: &'static str,
    },
    /// The server asks the client to compress with a window smaller than 2^15, which the
    /// compressor cannot do.
    #[error("server requires client_max_window_bits={bits}, only 15 is supported")]
    UnsupportedClientMaxWindowBits {
        /// The requested base-2 logarithm of the window.
        bits: u8,
    },
}

/// The value a client puts in `Sec-WebSocket-Extensions`, e.g.
/// `permessage-deflate; server_no_context_takeover`.
///
/// `client_max_window_bits` is deliberately not offered (see the module documentation).
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(EXTENSION_NAME);
    if config.server_no_context_takeover {
        offer.push_str("; ");
        offer.push_str(SERVER_NO_CONTEXT_TAKEOVER);
    }
    if config.client_no_context_takeover {
        offer.push_str("; ");
        offer.push_str(CLIENT_NO_CONTEXT_TAKEOVER);
    }
    offer
}

/// Client: validates the server's `Sec-WebSocket-Extensions` values (every field value of the
/// response, each possibly holding several comma-separated extensions) against the offer made
/// with [`client_offer`] for the same `config`.
///
/// Returns `Ok(None)` when the server did not accept permessage-deflate, `Ok(Some(params))`
/// when it did with parameters we can honour. Every error means the connection must be
/// failed: a malformed value, any extension other than permessage-deflate (only that one was
/// offered), permessage-deflate listed twice, an unknown or repeated parameter, a bad value, or
/// `client_max_window_bits` below 15.
///
/// Lenient points, both allowed by RFC 7692: a response without `server_no_context_takeover`
/// although we asked for it is accepted (we can decompress with context takeover, so the
/// returned params say `false`); `client_max_window_bits=15` is accepted although we did not
/// offer the parameter, since it constrains nothing. `client_no_context_takeover` in the params
/// is `true` if the server asked for it or our config promised it.
pub(crate) fn client_accept(
    config: &DeflateConfig,
    response_values: &[&str],
) -> Result<Option<DeflateParams>, DeflateNegotiationError> {
    let mut accepted: Option<DeflateParams> = None;
    for value in response_values {
        for element in split_outside_quotes(value, b',') {
            if trim_ows(element).is_empty() {
                continue; // empty list elements are allowed (RFC 9110 §5.6.1)
            }
            let extension = parse_extension(element).ok_or(DeflateNegotiationError::Malformed)?;
            if !extension.name.eq_ignore_ascii_case(EXTENSION_NAME) {
                return Err(DeflateNegotiationError::UnexpectedExtension);
            }
            if accepted.is_some() {
                return Err(DeflateNegotiationError::DuplicateExtension);
            }
            let p = parse_params(&extension.params, Side::Response)?;
            let client_max_window_bits = match p.client_max_window_bits {
                None => MAX_WINDOW_BITS,
                Some(Some(MAX_WINDOW_BITS)) => MAX_WINDOW_BITS,
                Some(Some(bits)) => {
                    return Err(DeflateNegotiationError::UnsupportedClientMaxWindowBits { bits })
                }
                // parse_params rejects a valueless client_max_window_bits in a response.
                Some(None) => {
                    return Err(DeflateNegotiationError::InvalidValue {
                        param: CLIENT_MAX_WINDOW_BITS,
                    })
                }
            };
            accepted = Some(DeflateParams {
                server_no_context_takeover: p.server_no_context_takeover,
                client_no_context_takeover: p.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits: p.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
                client_max_window_bits,
            });
        }
    }
    Ok(accepted)
}

/// Server: picks the first acceptable permessage-deflate offer among the client's
/// `Sec-WebSocket-Extensions` values (each possibly holding several comma-separated offers)
/// and returns the negotiated params with the response value to send, e.g.
/// `permessage-deflate; server_no_context_takeover`.
///
/// Offers of other extensions are ignored. A permessage-deflate offer is declined (and the next
/// one tried) when it is malformed, has an unknown or repeated parameter or a bad value, or asks
/// for `server_max_window_bits` below 15 (our compressor always uses a 32 KiB window). Returns
/// `None` when no offer is acceptable: the connection then runs without compression.
pub(crate) fn server_negotiate(
    config: &DeflateConfig,
    offer_values: &[&str],
) -> Option<(DeflateParams, String)> {
    offer_values
        .iter()
        .flat_map(|value| split_outside_quotes(value, b','))
        .find_map(|element| server_try_offer(config, element))
}

/// One offer: `Some` if it is a permessage-deflate offer we accept.
fn server_try_offer(config: &DeflateConfig, element: &str) -> Option<(DeflateParams, String)> {
    let extension = parse_extension(element)?;
    if !extension.name.eq_ignore_ascii_case(EXTENSION_NAME) {
        return None;
    }
    let p = parse_params(&extension.params, Side::Offer).ok()?;
    if matches!(p.server_max_window_bits, Some(bits) if bits < MAX_WINDOW_BITS) {
        return None; // cannot be honoured: decline this offer (RFC 7692 §7.1.2.1)
    }
    let params = DeflateParams {
        server_no_context_takeover: p.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: MAX_WINDOW_BITS,
        client_max_window_bits: p
            .client_max_window_bits
            .flatten()
            .unwrap_or(MAX_WINDOW_BITS),
    };
    let mut response = String::from(EXTENSION_NAME);
    if params.server_no_context_takeover {
        response.push_str("; ");
        response.push_str(SERVER_NO_CONTEXT_TAKEOVER);
    }
    if params.client_no_context_takeover {
        response.push_str("; ");
        response.push_str(CLIENT_NO_CONTEXT_TAKEOVER);
    }
    if p.server_max_window_bits.is_some() {
        // RFC 7692 §7.1.2.1: accepting an offer with this parameter means echoing it with the
        // same or a smaller value; only 15 gets here.
        response.push_str("; ");
        response.push_str(SERVER_MAX_WINDOW_BITS);
        response.push_str("=15");
    }
    Some((params, response))
}

// ---------------------------------------------------------------------------------------------
// Header grammar (RFC 6455 §9.1 with RFC 9110 lists, tokens and quoted strings).

/// One parsed list element: `token *( OWS ";" OWS param )`.
#[derive(Debug)]
struct Extension<'a> {
    name: &'a str,
    params: Vec<Param<'a>>,
}

/// `token [ OWS "=" OWS ( token / quoted-string ) ]`, value unquoted.
#[derive(Debug)]
struct Param<'a> {
    name: &'a str,
    value: Option<String>,
}

/// Splits at `sep` bytes that are not inside a quoted string. An unterminated quoted string
/// runs to the end (and then fails to parse as a value).
fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == sep {
            // `sep` is ASCII, so these indices are char boundaries.
            parts.push(s.get(start..i).unwrap_or(""));
            start = i + 1;
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

/// Strips optional whitespace (SP / HTAB) from both ends.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Parses a complete `quoted-string` and returns its unescaped content.
fn parse_quoted_string(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut value = Vec::with_capacity(inner.len());
    let mut bytes = inner.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                let escaped = bytes.next()?;
                if !matches!(escaped, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff) {
                    return None;
                }
                value.push(escaped);
            }
            // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => value.push(b),
            // An unescaped '"' inside, or a control character.
            _ => return None,
        }
    }
    // Only ASCII backslashes were removed from valid UTF-8, so this cannot fail.
    String::from_utf8(value).ok()
}

/// Parses one non-empty list element; `None` if it is malformed.
fn parse_extension(element: &str) -> Option<Extension<'_>> {
    let mut parts = split_outside_quotes(element, b';').into_iter();
    let name = trim_ows(parts.next()?);
    if !is_token(name) {
        return None;
    }
    let mut params = Vec::new();
    for part in parts {
        let part = trim_ows(part);
        let (name, value) = match part.split_once('=') {
            None => (part, None),
            Some((name, value)) => {
                let name = trim_ows(name);
                let value = trim_ows(value);
                let value = if value.starts_with('"') {
                    parse_quoted_string(value)?
                } else if is_token(value) {
                    value.to_owned()
                } else {
                    return None;
                };
                (name, Some(value))
            }
        };
        if !is_token(name) {
            return None;
        }
        params.push(Param { name, value });
    }
    Some(Extension { name, params })
}

// ---------------------------------------------------------------------------------------------
// permessage-deflate parameters.

/// Whether parameters come from a client offer or a server response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Offer,
    Response,
}

/// The parameters of one offer or response, checked for syntax, duplicates and ranges.
#[derive(Debug, Default)]
struct PmdParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (only valid in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

/// `1*DIGIT` without leading zeros, in 8..=15 (RFC 7692 §7.1.2).
fn parse_window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + (d - b'0')),
        _ => None,
    }
}

fn parse_params(params: &[Param<'_>], side: Side) -> Result<PmdParams, DeflateNegotiationError> {
    use DeflateNegotiationError::{DuplicateParameter, InvalidValue, UnknownParameter};
    let mut out = PmdParams::default();
    for param in params {
        let value = param.value.as_deref();
        let is = |known: &str| param.name.eq_ignore_ascii_case(known);
        if is(SERVER_NO_CONTEXT_TAKEOVER) {
            set_flag(
                &mut out.server_no_context_takeover,
                SERVER_NO_CONTEXT_TAKEOVER,
                value,
            )?;
        } else if is(CLIENT_NO_CONTEXT_TAKEOVER) {
            set_flag(
                &mut out.client_no_context_takeover,
                CLIENT_NO_CONTEXT_TAKEOVER,
                value,
            )?;
        } else if is(SERVER_MAX_WINDOW_BITS) {
            let param = SERVER_MAX_WINDOW_BITS;
            if out.server_max_window_bits.is_some() {
                return Err(DuplicateParameter { param });
            }
            let bits = value.and_then(parse_window_bits);
            out.server_max_window_bits = Some(bits.ok_or(InvalidValue { param })?);
        } else if is(CLIENT_MAX_WINDOW_BITS) {
            let param = CLIENT_MAX_WINDOW_BITS;
            if out.client_max_window_bits.is_some() {
                return Err(DuplicateParameter { param });
            }
            out.client_max_window_bits = Some(match value {
                Some(value) => Some(parse_window_bits(value).ok_or(InvalidValue { param })?),
                // Valueless only in an offer (RFC 7692 §7.1.2.2).
                None if side == Side::Offer => None,
                None => return Err(InvalidValue { param }),
            });
        } else {
            return Err(UnknownParameter);
        }
    }
    Ok(out)
}

/// Records a valueless flag parameter.
fn set_flag(
    flag: &mut bool,
    param: &'static str,
    value: Option<&str>,
) -> Result<(), DeflateNegotiationError> {
    if *flag {
        return Err(DeflateNegotiationError::DuplicateParameter { param });
    }
    if value.is_some() {
        return Err(DeflateNegotiationError::InvalidValue { param });
    }
    *flag = true;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Compression.

/// Compresses the whole messages we send.
///
/// Infallible by construction: should the compressor ever report an error (it cannot, for the
/// way it is driven here), the message is emitted as DEFLATE stored blocks instead and the
/// compressor is reset, which keeps the stream valid for the peer whatever its context.
pub(crate) struct Deflater {
    compress: Compress,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor at `level` (0..=9, higher values count as 9) that resets its context after
    /// every message if `no_context_takeover`.
    pub(crate) fn new(level: u32, no_context_takeover: bool) -> Deflater {
        Deflater {
            compress: Compress::new(Compression::new(level.min(9)), false),
            no_context_takeover,
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
            .field("stream_ended", &self.stream_ended)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decompressor that starts every message with an empty window if
    /// `no_context_takeover` (the peer promised not to refer to earlier messages), and keeps
    /// the window across messages otherwise.
    pub(crate) fn new(no_context_takeover: bool) -> Inflater {
        Inflater {
            decompress: Decompress::new(false),
            no_context_takeover,
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- negotiation: client ------------------------------------------------------------

    fn config(server_nct: bool, client_nct: bool) -> DeflateConfig {
        DeflateConfig {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            ..DeflateConfig::default()
        }
    }

    fn params(
        server_nct: bool,
        client_nct: bool,
        server_bits: u8,
        client_bits: u8,
    ) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }
    }

    fn accept(values: &[&str]) -> Result<Option<DeflateParams>, DeflateNegotiationError> {
        client_accept(&DeflateConfig::default(), values)
    }

    #[test]
    fn defaults() {
        let c = DeflateConfig::default();
        assert_eq!((c.level, c.min_size), (6, 64));
        assert!(!c.server_no_context_takeover && !c.client_no_context_takeover);
        assert_eq!(DeflateParams::default(), params(false, false, 15, 15));
    }

    #[test]
    fn offer_values() {
        assert_eq!(client_offer(&config(false, false)), "permessage-deflate");
        assert_eq!(
            client_offer(&config(true, false)),
            "permessage-deflate; server_no_context_takeover"
        );
        assert_eq!(
            client_offer(&config(false, true)),
            "permessage-deflate; client_no_context_takeover"
        );
        assert_eq!(
            client_offer(&config(true, true)),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn client_accepts_valid_responses() {
        assert_eq!(accept(&[]), Ok(None));
        assert_eq!(accept(&[""]), Ok(None));
        assert_eq!(accept(&[" , ,"]), Ok(None));
        let plain = Ok(Some(DeflateParams::default()));
        assert_eq!(accept(&["permessage-deflate"]), plain);
        assert_eq!(accept(&["PerMessage-Deflate"]), plain);
        assert_eq!(accept(&["", " ,permessage-deflate, "]), plain);
        assert_eq!(
            accept(&["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]),
            Ok(Some(params(true, true, 15, 15)))
        );
        assert_eq!(
            accept(&["permessage-deflate;Server_No_Context_Takeover"]),
            Ok(Some(params(true, false, 15, 15)))
        );
        for bits in 8..=15u8 {
            assert_eq!(
                accept(&[&format!(
                    "permessage-deflate; server_max_window_bits={bits}"
                )]),
                Ok(Some(params(false, false, bits, 15)))
            );
        }
        assert_eq!(
            accept(&[
                "permessage-deflate ;\tserver_max_window_bits = 9 ; client_max_window_bits=15 "
            ]),
            Ok(Some(params(false, false, 9, 15)))
        );
        // Quoted values must still be 1*DIGIT (RFC 7692 §7.1).
        assert_eq!(
            accept(&["permessage-deflate; server_max_window_bits=\"12\""]),
            Ok(Some(params(false, false, 12, 15)))
        );
        assert_eq!(
            accept(&["permessage-deflate; server_max_window_bits=\"1\\2\""]),
            Ok(Some(params(false, false, 12, 15)))
        );
    }

    #[test]
    fn client_context_takeover_mapping() {
        // We promised client_no_context_takeover: keep it even if the server does not echo it.
        assert_eq!(
            client_accept(&config(false, true), &["permessage-deflate"]),
            Ok(Some(params(false, true, 15, 15)))
        );
        // We asked for server_no_context_takeover and the server ignored it: we can still
        // decompress with context takeover, so that is what the params say.
        assert_eq!(
            client_accept(&config(true, false), &["permessage-deflate"]),
            Ok(Some(params(false, false, 15, 15)))
        );
        // The server may impose either flag unasked.
        assert_eq!(
            client_accept(
                &config(false, false),
                &["permessage-deflate; client_no_context_takeover"]
            ),
            Ok(Some(params(false, true, 15, 15)))
        );
    }

    #[test]
    fn client_rejects_invalid_responses() {
        use DeflateNegotiationError::*;
        let cases: &[(&[&str], DeflateNegotiationError)] = &[
            (&["x-webkit-deflate-frame"], UnexpectedExtension),
            (&["permessage-deflate, foo"], UnexpectedExtension),
            (
                &["permessage-deflate, permessage-deflate"],
                DuplicateExtension,
            ),
            (
                &["permessage-deflate", "permessage-deflate"],
                DuplicateExtension,
            ),
            (&["permessage-deflate; foo"], UnknownParameter),
            (&["permessage-deflate; foo=1"], UnknownParameter),
            (
                &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
                DuplicateParameter {
                    param: SERVER_NO_CONTEXT_TAKEOVER,
                },
            ),
            (
                &["permessage-deflate; server_max_window_bits=10; SERVER_MAX_WINDOW_BITS=10"],
                DuplicateParameter {
                    param: SERVER_MAX_WINDOW_BITS,
                },
            ),
            (
                &["permessage-deflate; server_no_context_takeover=1"],
                InvalidValue {
                    param: SERVER_NO_CONTEXT_TAKEOVER,
                },
            ),
            (
                &["permessage-deflate; client_no_context_takeover=\"\""],
                InvalidValue {
                    param: CLIENT_NO_CONTEXT_TAKEOVER,
                },
            ),
            (
                &["permessage-deflate; server_max_window_bits"],
                InvalidValue {
                    param: SERVER_MAX_WINDOW_BITS,
                },
            ),
            (
                &["permessage-deflate; client_max_window_bits"],
                InvalidValue {
                    param: CLIENT_MAX_WINDOW_BITS,
                },
            ),
            (
                &["permessage-deflate; client_max_window_bits=10"],
                UnsupportedClientMaxWindowBits { bits: 10 },
            ),
            (
                &["permessage-deflate; client_max_window_bits=8"],
                UnsupportedClientMaxWindowBits { bits: 8 },
            ),
            (
                &["permessage-deflate; client_max_window_bits=16"],
                InvalidValue {
                    param: CLIENT_MAX_WINDOW_BITS,
                },
            ),
            (&["permessage-deflate;"], Malformed),
            (
                &["permessage-deflate; ;server_no_context_takeover"],
                Malformed,
            ),
            (&["permessage-deflate; server_max_window_bits="], Malformed),
            (
                &["permessage-deflate; server_max_window_bits=\"10"],
                Malformed,
            ),
            (
                &["permessage-deflate; server_max_window_bits=1 0"],
                Malformed,
            ),
            (&["permessage-deflate; =10"], Malformed),
            (&["\"permessage-deflate\""], Malformed),
            (&["permessage deflate"], Malformed),
            (&["permessage-deflate; a\u{0}b"], Malformed),
        ];
        for (values, error) in cases {
            assert_eq!(accept(values), Err(*error), "{values:?}");
        }
        for bad in [
            "7",
            "16",
            "08",
            "010",
            "+9",
            "9.0",
            "abc",
            "\"\"",
            "\" 9\"",
            "99999999999999999999",
        ] {
            let value = format!("permessage-deflate; server_max_window_bits={bad}");
            assert_eq!(
                accept(&[&value]),
                Err(InvalidValue {
                    param: SERVER_MAX_WINDOW_BITS
                }),
                "{value}"
            );
        }
    }

    // ---- negotiation: server ------------------------------------------------------------

    fn negotiate(values: &[&str]) -> Option<(DeflateParams, String)> {
        server_negotiate(&DeflateConfig::default(), values)
    }

    fn response(p: DeflateParams, r: &str) -> Option<(DeflateParams, String)> {
        Some((p, r.to_owned()))
    }

    #[test]
    fn server_accepts_offers() {
        let plain = response(DeflateParams::default(), "permessage-deflate");
        assert_eq!(negotiate(&[]), None);
        assert_eq!(negotiate(&[""]), None);
        assert_eq!(negotiate(&["permessage-deflate"]), plain);
        assert_eq!(negotiate(&["Permessage-Deflate"]), plain);
        assert_eq!(
            negotiate(&["permessage-deflate; client_max_window_bits"]),
            plain
        );
        assert_eq!(
            negotiate(&["permessage-deflate; client_max_window_bits=15"]),
            plain
        );
        assert_eq!(
            negotiate(&["permessage-deflate; client_max_window_bits=10"]),
            response(params(false, false, 15, 10), "permessage-deflate")
        );
        assert_eq!(
            negotiate(&["permessage-deflate; client_max_window_bits=\"9\""]),
            response(params(false, false, 15, 9), "permessage-deflate")
        );
        assert_eq!(
            negotiate(&["permessage-deflate; server_max_window_bits=15"]),
            response(
                DeflateParams::default(),
                "permessage-deflate; server_max_window_bits=15"
            )
        );
        assert_eq!(
            negotiate(&["permessage-deflate; server_no_context_takeover"]),
            response(
                params(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover"
            )
        );
        assert_eq!(
            negotiate(&["permessage-deflate; client_no_context_takeover"]),
            response(
                params(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover"
            )
        );
    }

    #[test]
    fn server_falls_back_and_skips() {
        // server_max_window_bits < 15 cannot be honoured: declined, next offer taken.
        assert_eq!(
            negotiate(&["permessage-deflate; server_max_window_bits=10, permessage-deflate"]),
            response(DeflateParams::default(), "permessage-deflate")
        );
        assert_eq!(
            negotiate(&["permessage-deflate; server_max_window_bits=10"]),
            None
        );
        // Fallback across header values, unknown extensions ignored (even with quoted commas).
        assert_eq!(
            negotiate(&[
                "x-webkit-deflate-frame; a=\"x,y\"",
                "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
                "permessage-deflate; client_no_context_takeover; client_max_window_bits",
            ]),
            response(
                params(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover"
            )
        );
        // Invalid offers are declined, not errors.
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=yes",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=\"\"",
            "permessage-deflate; client_max_window_bits=\"1",
            "permessage-deflate;",
            "\"permessage-deflate\"",
        ] {
            assert_eq!(negotiate(&[bad]), None, "{bad}");
            assert_eq!(
                negotiate(&[bad, "permessage-deflate; server_no_context_takeover"]),
                response(
                    params(true, false, 15, 15),
                    "permessage-deflate; server_no_context_takeover"
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn server_config_flags() {
        assert_eq!(
            server_negotiate(&config(true, true), &["permessage-deflate"]),
            response(
                params(true, true, 15, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            )
        );
        assert_eq!(
            server_negotiate(
                &config(false, true),
                &["permessage-deflate; server_max_window_bits=15"]
            ),
            response(
                params(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=15"
            )
        );
    }

    #[test]
    fn client_and_server_agree() {
        for client_flags in [(false, false), (true, false), (false, true), (true, true)] {
            for server_flags in [(false, false), (true, false), (false, true), (true, true)] {
                let client = config(client_flags.0, client_flags.1);
                let server = config(server_flags.0, server_flags.1);
                let offer = client_offer(&client);
                let (server_params, answer) =
                    server_negotiate(&server, &[&offer]).expect("our offer is acceptable");
                let client_params = client_accept(&client, &[&answer]);
                assert_eq!(
                    client_params,
                    Ok(Some(server_params)),
                    "{offer} -> {answer}"
                );
                assert_eq!(
                    server_params.server_no_context_takeover,
                    client_flags.0 || server_flags.0
                );
                assert_eq!(
                    server_params.client_no_context_takeover,
                    client_flags.1 || server_flags.1
                );
            }
        }
    }

    // ---- compression ----------------------------------------------------------------------

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
        let mut inflater = Inflater::new(false);
        assert_eq!(
            inflate_message(&mut inflater, &[HELLO]).as_deref(),
            Ok(&b"Hello"[..])
        );
        assert_eq!(
            inflate_message(&mut inflater, &[HELLO_AGAIN]).as_deref(),
            Ok(&b"Hello"[..])
        );
        // §7.2.3.1 fragmented over three frames and an empty one.
        let mut inflater = Inflater::new(false);
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
            inflate_message(&mut Inflater::new(false), &[&stored]).as_deref(),
            Ok(&b"Hello"[..])
        );
        // §7.2.3.5: two DEFLATE blocks in one message.
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(
            inflate_message(&mut Inflater::new(false), &[&two]).as_deref(),
            Ok(&b"Hello"[..])
        );
    }

    #[test]
    fn deflater_matches_rfc_vectors() {
        let mut deflater = Deflater::new(6, false);
        assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO);
        assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO_AGAIN);
        // Without context takeover every message starts afresh.
        let mut deflater = Deflater::new(6, true);
        assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO);
        assert_eq!(deflate_message(&mut deflater, b"Hello"), HELLO);
    }

    #[test]
    fn bfinal_message_ends_the_stream() {
        // §7.2.3.4: a final block followed by a padding byte.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut inflater = Inflater::new(false);
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
        let mut deflater = Deflater::new(6, false);
        let empty = deflate_message(&mut deflater, b"");
        assert_eq!(empty, [0x00]);
        let mut inflater = Inflater::new(false);
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
        let mut deflater = Deflater::new(9, false);
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
            let mut deflater = Deflater::new(6, false);
            let mut out = Vec::new();
            deflater.compress(&payload, &mut out);
            assert_eq!(out, expected, "len {len}");
        }
        // Compressible text really is compressed.
        let text = b"the quick brown fox jumps over the lazy dog. ".repeat(5000);
        for len in [300, 1000, text.len()] {
            let out = deflate_message(&mut Deflater::new(6, true), &text[..len]);
            assert!(out.len() < len / 2, "len {len}: {} bytes", out.len());
        }
    }

    #[test]
    fn levels_round_trip() {
        let payload: Vec<u8> = (0..20_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        for level in [0, 1, 5, 9, 10, u32::MAX] {
            let mut deflater = Deflater::new(level, false);
            let mut inflater = Inflater::new(false);
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
        let mut deflater = Deflater::new(6, false);
        let mut inflater = Inflater::new(false);
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
        let mut inflater = Inflater::new(false);
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
        let mut inflater = Inflater::new(false);
        assert_eq!(
            inflate_message(&mut inflater, &[&[0x00, 0x05, 0x00, 0x00, 0x00, b'x']]),
            Err(InflateError::Invalid)
        );
        // Random garbage never panics.
        for seed in 0..200u32 {
            let garbage: Vec<u8> = (0..64u32)
                .map(|i| (seed.wrapping_mul(2654435761) ^ i.wrapping_mul(40503)) as u8)
                .collect();
            let _ = inflate_message(&mut Inflater::new(false), &[&garbage]);
        }
    }

    #[test]
    fn compression_bomb_is_stopped_early() {
        let zeros = vec![0u8; 10_000_000];
        let bomb = deflate_message(&mut Deflater::new(9, false), &zeros);
        assert!(bomb.len() < 20_000, "bomb is {} bytes", bomb.len());
        for limit in [0, 1, 1000, 65_536, 1 << 20] {
            for frame_size in [bomb.len(), 100, 7] {
                let mut inflater = Inflater::new(false);
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
        let compressed = deflate_message(&mut Deflater::new(6, true), &payload);
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
        let mut inflater = Inflater::new(true);
        inflater.push(compressed, out, limit)?;
        inflater.finish(out, limit)
    }

    #[test]
    fn no_context_takeover_inflater_rejects_back_references_gracefully() {
        // The second "Hello" refers to the first: decoded without the context it is not
        // "Hello" (the window starts empty), but nothing panics.
        let mut inflater = Inflater::new(true);
        assert_eq!(
            inflate_message(&mut inflater, &[HELLO]).as_deref(),
            Ok(&b"Hello"[..])
        );
        let second = inflate_message(&mut inflater, &[HELLO_AGAIN]);
        assert_ne!(second.as_deref(), Ok(&b"Hello"[..]));
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

    /// Header values assembled from the pieces of the grammar, to reach deep into the parser.
    fn header_fragments() -> impl Strategy<Value = String> {
        let piece = proptest::sample::select(vec![
            "permessage-deflate",
            "PERMESSAGE-DEFLATE",
            "x-foo",
            SERVER_NO_CONTEXT_TAKEOVER,
            CLIENT_NO_CONTEXT_TAKEOVER,
            SERVER_MAX_WINDOW_BITS,
            CLIENT_MAX_WINDOW_BITS,
            ";",
            ",",
            "=",
            "\"",
            "\\",
            " ",
            "\t",
            "8",
            "10",
            "15",
            "16",
            "é",
        ]);
        proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
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
        ) {
            let mut deflater = Deflater::new(level, takeover.0);
            let mut inflater = Inflater::new(takeover.1);
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
        ) {
            let mut inflater = Inflater::new(takeover);
            let mut out = Vec::new();
            for frame in &frames {
                if inflater.push(frame, &mut out, limit).is_err() {
                    break;
                }
            }
            let _ = inflater.finish(&mut out, limit);
            prop_assert!(out.len() <= limit + 1);
        }

        #[test]
        fn header_parsing_never_panics(
            values in proptest::collection::vec(
                prop_oneof![".{0,80}", header_fragments()],
                0..3,
            ),
        ) {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let _ = client_accept(&DeflateConfig::default(), &values);
            if let Some((params, answer)) = server_negotiate(&DeflateConfig::default(), &values) {
                // The client's own window is not echoed; everything else must agree.
                let expected = DeflateParams { client_max_window_bits: 15, ..params };
                prop_assert_eq!(
                    client_accept(&DeflateConfig::default(), &[&answer]),
                    Ok(Some(expected))
                );
            }
        }
    }
}
