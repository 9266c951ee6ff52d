//! Structure-aware WebSocket input: frame sequences as a peer would send them.
//!
//! A [`Scenario`] (built by `arbitrary`) is a list of data messages and control frames:
//! messages cut into continuation frames with control frames between the pieces, text that
//! is valid UTF-8 or carries a bad sequence (possibly split across pieces), payloads long
//! enough for 16- and 64-bit lengths, messages compressed with permessage-deflate under the
//! negotiated parameters, masking as the role requires, and now and then a fault (RSV bits,
//! a reserved opcode, the wrong masking, a non-minimal length, a broken fragment order, an
//! invalid close code, an over-long control frame). [`Scenario::frames`] renders it into
//! [`WireFrame`]s and [`render`] into bytes; [`expect`] says what the connection must report
//! for those frames, computed from the structure and not from the bytes.

use arbitrary::Arbitrary;
use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};
use tether_core::ws::{is_valid_on_wire, CloseReason, DeflateParams, WsConfig, WsEvent};

/// Most items in one scenario (keeps runs short).
const MAX_ITEMS: usize = 24;

/// `max_frame_size` and `max_message_size` of the small-limits setup.
pub const SMALL_LIMITS: (usize, usize) = (1024, 2048);

/// What a peer sends, and to whom.
#[derive(Debug, Clone, Arbitrary)]
pub struct Scenario {
    /// The connection under test is the client (so the peer's frames are unmasked).
    pub client: bool,
    /// permessage-deflate, with these parameters, was negotiated.
    pub deflate: Option<GenDeflate>,
    /// Use [`SMALL_LIMITS`] instead of the defaults.
    pub small_limits: bool,
    /// Seed of the split into pieces.
    pub seed: u8,
    /// The messages and control frames, in order.
    pub items: Vec<Item>,
    /// Byte-level changes to the rendering.
    pub mutations: Vec<Mutation>,
}

/// Negotiated permessage-deflate parameters; window sizes are taken modulo 8, plus 8.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct GenDeflate {
    /// `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover`.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits` (8..=15 after the modulo).
    pub server_bits: u8,
    /// `client_max_window_bits` (8..=15 after the modulo).
    pub client_bits: u8,
}

impl GenDeflate {
    /// The parameters as the core takes them.
    pub fn params(&self) -> DeflateParams {
        let mut p = DeflateParams::default();
        p.server_no_context_takeover = self.server_no_context_takeover;
        p.client_no_context_takeover = self.client_no_context_takeover;
        p.server_max_window_bits = 8 + self.server_bits % 8;
        p.client_max_window_bits = 8 + self.client_bits % 8;
        p
    }
}

/// One thing the peer sends.
#[derive(Debug, Clone, Arbitrary)]
pub enum Item {
    /// A data message.
    Message(GenMessage),
    /// A control frame between messages.
    Control(GenControl),
}

/// A data message, possibly fragmented, compressed, with control frames between its pieces.
#[derive(Debug, Clone, Arbitrary)]
pub struct GenMessage {
    /// Text rather than binary.
    pub text: bool,
    /// The payload.
    pub body: Body,
    /// Compress it (only when deflate was negotiated).
    pub compress: bool,
    /// Where the (compressed) payload is cut into frames, taken modulo its length + 1.
    pub cuts: Vec<u16>,
    /// Control frames sent after the piece of that index (modulo the number of pieces).
    pub controls: Vec<(u8, GenControl)>,
    /// A fault in one of its frames (index modulo the number of frames).
    pub fault: Option<(u8, FrameFault)>,
}

/// A message payload.
#[derive(Debug, Clone, Arbitrary)]
pub enum Body {
    /// Any valid UTF-8 (mixed widths).
    Chars(String),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    /// Valid UTF-8 around one bad sequence.
    BadUtf8(String, BadUtf8, String),
    /// `n` repetitions of a short text: long payloads (16- and 64-bit lengths).
    Repeat(LongLen, String),
}

/// Lengths that need the extended length fields.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum LongLen {
    /// Just over the 7-bit limit.
    Short126,
    /// Near the 16-bit limit.
    Max16,
    /// Just over the 16-bit limit (64-bit length).
    Over16,
}

/// Invalid UTF-8 sequences.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum BadUtf8 {
    /// A byte that never occurs.
    Ff,
    /// An overlong `/`.
    Overlong,
    /// A UTF-16 surrogate.
    Surrogate,
    /// Above U+10FFFF.
    TooHigh,
    /// A lone continuation byte.
    LoneContinuation,
    /// A 3-byte character cut short (followed by what follows, or by the end).
    Truncated,
}

impl BadUtf8 {
    fn bytes(self) -> &'static [u8] {
        match self {
            BadUtf8::Ff => &[0xFF],
            BadUtf8::Overlong => &[0xC0, 0xAF],
            BadUtf8::Surrogate => &[0xED, 0xA0, 0x80],
            BadUtf8::TooHigh => &[0xF4, 0x90, 0x80, 0x80],
            BadUtf8::LoneContinuation => &[0x80],
            BadUtf8::Truncated => &[0xE2, 0x82],
        }
    }
}

/// A control frame.
#[derive(Debug, Clone, Arbitrary)]
pub enum GenControl {
    /// A ping (payload cut to 125 bytes unless `oversize`).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame.
    Close(GenClose),
    /// A ping or pong (`pong`) of 126 + `extra` bytes: too long for a control frame.
    Oversized {
        /// Pong rather than ping.
        pong: bool,
        /// Bytes over 125, minus one.
        extra: u8,
    },
}

/// A close frame's payload.
#[derive(Debug, Clone, Arbitrary)]
pub enum GenClose {
    /// No payload.
    Empty,
    /// A lone byte (invalid).
    OneByte(u8),
    /// A code from [`CLOSE_CODES`] (index modulo its length) or any code, and a reason.
    Code {
        /// Index into [`CLOSE_CODES`], or any `u16` when `raw`.
        code: u16,
        /// Use `code` as is.
        raw: bool,
        /// The reason.
        reason: Reason,
    },
}

/// A close reason.
#[derive(Debug, Clone, Arbitrary)]
pub enum Reason {
    /// Valid UTF-8, cut so that the payload fits 125 bytes.
    Text(String),
    /// Bytes that are not UTF-8.
    Bad(BadUtf8),
    /// 124 bytes: one too many for a control frame.
    TooLong,
}

/// Close codes worth trying: valid, reserved, reporting-only, out of range.
pub const CLOSE_CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1014, 1015, 999, 2999, 3000, 4999,
];

/// A fault put into one frame.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum FrameFault {
    /// RSV2 set.
    Rsv2,
    /// RSV3 set.
    Rsv3,
    /// RSV1 set (meaningless without deflate, and on continuation frames).
    Rsv1,
    /// RSV1 cleared (a compressed message then reads as uncompressed).
    NoRsv1,
    /// Masked when it must not be, or the other way round.
    WrongMask,
    /// A reserved opcode (3-7, 0xB-0xF, by the value modulo 10).
    ReservedOpcode(u8),
    /// The length in a longer field than needed.
    NonMinimalLength,
    /// FIN cleared on the last frame (the message never ends) or set early.
    FlipFin,
    /// The opcode of a first frame on a continuation frame, or the other way round.
    SwapOpcode,
}

/// Byte-level changes, positions modulo the length.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Mutation {
    /// Flip one bit.
    Flip(u16, u8),
    /// Overwrite one byte.
    Set(u16, u8),
    /// Remove up to `n` bytes.
    Delete(u16, u8),
    /// Insert one byte.
    Insert(u16, u8),
    /// Cut the input there.
    Truncate(u16),
}

/// One frame as written, before masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// FIN.
    pub fin: bool,
    /// RSV1-3 as bits 2, 1, 0.
    pub rsv: u8,
    /// The opcode (reserved ones included).
    pub opcode: u8,
    /// Masking key, when masked.
    pub mask: Option<[u8; 4]>,
    /// Encode the length in a longer field than needed.
    pub long_len: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
    /// For frames of a compressed message: the whole message, decompressed.
    pub plain: Option<Bytes>,
    /// The last frame of its message as generated (before any FIN fault).
    pub last_of_message: bool,
    /// Its message has a [`FrameFault`].
    pub faulty_message: bool,
}

impl WireFrame {
    fn control(opcode: u8, payload: Vec<u8>) -> WireFrame {
        WireFrame {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            long_len: false,
            payload,
            plain: None,
            last_of_message: true,
            faulty_message: false,
        }
    }
}

/// The peer's compressor: raw DEFLATE with the negotiated window, sync flush.
struct PeerDeflater {
    compress: Compress,
    no_context_takeover: bool,
}

impl PeerDeflater {
    /// For a window of 2^`bits`. No zlib-family deflater compresses with 2^8 (zlib itself
    /// silently uses 2^9), so for 8 the peer writes stored blocks only: no back-references,
    /// valid for any window.
    fn new(no_context_takeover: bool, bits: u8) -> PeerDeflater {
        let level = if bits < 9 {
            Compression::none()
        } else {
            Compression::new(6)
        };
        PeerDeflater {
            compress: Compress::new_with_window_bits(level, false, bits.max(9)),
            no_context_takeover,
        }
    }

    /// One message's payload, with the trailing `00 00 ff ff` removed (RFC 7692 §7.2.1).
    fn message(&mut self, data: &[u8]) -> Vec<u8> {
        if data.is_empty() {
            // A sync flush without new input writes nothing after an earlier flush; an empty
            // stored block's first byte is the short form RFC 7692 §7.2.3.6 shows.
            return vec![0x00];
        }
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate never fails here");
            input = &input[(self.compress.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush tail");
        out.truncate(out.len() - 4);
        if self.no_context_takeover {
            self.compress.reset();
        }
        out
    }
}

/// Deterministic filler for the long bodies.
fn repeat(len: LongLen, unit: &str) -> Vec<u8> {
    let n = match len {
        LongLen::Short126 => 126,
        LongLen::Max16 => 0xFFFF,
        LongLen::Over16 => 0x1_0001,
    };
    let unit = if unit.is_empty() { "ab" } else { unit };
    let mut out = unit.repeat(n / unit.len() + 1).into_bytes();
    // Cut on a character boundary at or after `n`.
    let mut end = n;
    while !unit.is_char_boundary(end % unit.len()) {
        end += 1;
    }
    out.truncate(end);
    out
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Chars(s) => s.as_bytes().to_vec(),
            Body::Bytes(b) => b.clone(),
            Body::BadUtf8(a, bad, b) => [a.as_bytes(), bad.bytes(), b.as_bytes()].concat(),
            Body::Repeat(len, unit) => repeat(*len, unit),
        }
    }
}

impl GenClose {
    fn payload(&self) -> Vec<u8> {
        match self {
            GenClose::Empty => Vec::new(),
            GenClose::OneByte(b) => vec![*b],
            GenClose::Code { code, raw, reason } => {
                let code = if *raw {
                    *code
                } else {
                    CLOSE_CODES[usize::from(*code) % CLOSE_CODES.len()]
                };
                let mut out = code.to_be_bytes().to_vec();
                match reason {
                    Reason::Text(s) => {
                        let mut end = s.len().min(123);
                        while !s.is_char_boundary(end) {
                            end -= 1;
                        }
                        out.extend_from_slice(&s.as_bytes()[..end]);
                    }
                    Reason::Bad(bad) => out.extend_from_slice(bad.bytes()),
                    Reason::TooLong => out.extend_from_slice(&[b'x'; 124]),
                }
                out
            }
        }
    }
}

impl GenControl {
    fn frame(&self) -> WireFrame {
        match self {
            GenControl::Ping(p) => WireFrame::control(0x9, p[..p.len().min(125)].to_vec()),
            GenControl::Pong(p) => WireFrame::control(0xA, p[..p.len().min(125)].to_vec()),
            GenControl::Close(c) => WireFrame::control(0x8, c.payload()),
            GenControl::Oversized { pong, extra } => WireFrame::control(
                if *pong { 0xA } else { 0x9 },
                vec![b'o'; 126 + usize::from(*extra)],
            ),
        }
    }
}

impl Scenario {
    /// The connection's configuration and negotiated compression.
    pub fn setup(&self) -> crate::ws::WsSetup {
        let mut config = WsConfig::default();
        if self.small_limits {
            (config.max_frame_size, config.max_message_size) = SMALL_LIMITS;
        }
        let deflate = self.deflate.map(|d| d.params());
        if deflate.is_none() {
            config.deflate = None;
        }
        crate::ws::WsSetup {
            client: self.client,
            config,
            deflate,
        }
    }

    /// The frames, in order; `seed` also makes the masking keys.
    pub fn frames(&self) -> Vec<WireFrame> {
        let params = self.deflate.map(|d| d.params());
        // The peer compresses what it sends: as the client's peer it is the server.
        let mut deflater = params.map(|p| {
            if self.client {
                PeerDeflater::new(p.server_no_context_takeover, p.server_max_window_bits)
            } else {
                PeerDeflater::new(p.client_no_context_takeover, p.client_max_window_bits)
            }
        });
        let mut frames = Vec::new();
        for item in self.items.iter().take(MAX_ITEMS) {
            match item {
                Item::Control(c) => frames.push(c.frame()),
                Item::Message(m) => message_frames(m, deflater.as_mut(), &mut frames),
            }
        }
        let mut keys = crate::ws::mask_keys(u32::from(self.seed).wrapping_mul(0x0101_0101) ^ 7);
        for f in &mut frames {
            // The peer masks when it is the client; a wrong-mask fault already flipped this.
            let masked = f.mask.is_some() != !self.client;
            f.mask = masked.then(&mut keys);
        }
        frames
    }
}

/// Renders one message into frames (appended to `out`). Frames that carry a wrong-mask fault
/// get a placeholder mask here, which [`Scenario::frames`] reads as "flip the masking".
fn message_frames(
    m: &GenMessage,
    mut deflater: Option<&mut PeerDeflater>,
    out: &mut Vec<WireFrame>,
) {
    let plain = m.body.bytes();
    let (payload, compressed) = match deflater.as_deref_mut() {
        Some(d) if m.compress => (d.message(&plain), true),
        _ => (plain.clone(), false),
    };
    let mut cuts: Vec<usize> = m
        .cuts
        .iter()
        .take(8)
        .map(|&c| usize::from(c) % (payload.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for c in cuts.into_iter().chain([payload.len()]) {
        pieces.push(payload[from..c].to_vec());
        from = c;
    }
    let n = pieces.len();
    let plain = compressed.then(|| Bytes::from(plain));
    let first = out.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        out.push(WireFrame {
            fin: i + 1 == n,
            rsv: if compressed && i == 0 { 4 } else { 0 },
            opcode: match (i, m.text) {
                (0, true) => 1,
                (0, false) => 2,
                _ => 0,
            },
            mask: None,
            long_len: false,
            payload: piece,
            plain: plain.clone(),
            last_of_message: i + 1 == n,
            faulty_message: m.fault.is_some(),
        });
        for (_, c) in m
            .controls
            .iter()
            .take(4)
            .filter(|(at, _)| usize::from(*at) % n == i)
        {
            if i + 1 < n {
                out.push(c.frame());
            }
        }
    }
    if let Some((at, fault)) = m.fault {
        let data: Vec<usize> = (first..out.len()).filter(|&i| out[i].opcode <= 2).collect();
        let f = &mut out[data[usize::from(at) % data.len()]];
        match fault {
            FrameFault::Rsv2 => f.rsv |= 2,
            FrameFault::Rsv3 => f.rsv |= 1,
            FrameFault::Rsv1 => f.rsv |= 4,
            FrameFault::NoRsv1 => {
                f.rsv &= !4;
                // The receiver does not inflate this message, so its window lacks what the
                // peer's compressor just added: the peer starts over, or its next messages
                // could point at bytes the receiver never saw.
                if let Some(d) = deflater.filter(|_| f.plain.is_some()) {
                    d.compress.reset();
                }
            }
            FrameFault::WrongMask => f.mask = Some([0; 4]),
            FrameFault::ReservedOpcode(op) => {
                f.opcode = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15][usize::from(op) % 10]
            }
            FrameFault::NonMinimalLength => f.long_len = true,
            FrameFault::FlipFin => f.fin = !f.fin,
            FrameFault::SwapOpcode => f.opcode = if f.opcode == 0 { 2 } else { 0 },
        }
    }
}

/// The bytes of `frames`.
pub fn render(frames: &[WireFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.push(u8::from(f.fin) << 7 | (f.rsv & 7) << 4 | (f.opcode & 0xF));
        let mask_bit = if f.mask.is_some() { 0x80 } else { 0 };
        let len = f.payload.len();
        if len < 126 && !f.long_len {
            out.push(mask_bit | len as u8);
        } else if len <= 0xFFFF && !(f.long_len && len >= 126) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        match f.mask {
            Some(m) => {
                out.extend_from_slice(&m);
                out.extend(f.payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
            }
            None => out.extend_from_slice(&f.payload),
        }
    }
    out
}

/// Applies the mutations (at most 8) to `data`.
pub fn mutate(data: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations.iter().take(8) {
        let at = |p: u16, len: usize| usize::from(p) % len.max(1);
        match *m {
            Mutation::Flip(p, bit) if !data.is_empty() => {
                let i = at(p, data.len());
                data[i] ^= 1 << (bit % 8);
            }
            Mutation::Set(p, b) if !data.is_empty() => {
                let i = at(p, data.len());
                data[i] = b;
            }
            Mutation::Delete(p, n) if !data.is_empty() => {
                let i = at(p, data.len());
                let end = (i + usize::from(n % 16) + 1).min(data.len());
                data.drain(i..end);
            }
            Mutation::Insert(p, b) => {
                let i = at(p, data.len() + 1);
                data.insert(i, b);
            }
            Mutation::Truncate(p) => {
                let i = at(p, data.len() + 1);
                data.truncate(i);
            }
            _ => {}
        }
    }
}

/// How the connection must end for a frame sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedEnd {
    /// The peer's close frame, with this code and reason.
    Closed(Option<u16>, String),
    /// A protocol error with this close code.
    Error(u16),
    /// A protocol error of any code, after which only pings and pongs may have been
    /// reported: a compressed message too large or not UTF-8 fails at whichever of its
    /// frames decompresses to the bad part, which depends on the compressor's flushing.
    /// A close frame sent between its pieces may come first, so the peer's close is
    /// accepted too.
    SomeError,
    /// Anything after the events: a fault made the rest depend on how DEFLATE decoders treat
    /// bytes that were not compressed, or on a compressed message cut short.
    Unknown,
    /// EOF without a close frame.
    TransportClosed,
}

/// What the connection reports for `frames`, as [`expect`] predicts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The events before the end.
    pub events: Vec<WsEvent>,
    /// The end.
    pub end: ExpectedEnd,
    /// The number of frames read (the rest comes after the end).
    pub frames_read: usize,
}

/// The message being reassembled in [`expect`].
struct Pending {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// Predicts the events of a connection (role `client`, compression `deflate`, limits from
/// `config`) reading `frames` then EOF, from RFC 6455 and RFC 7692: the order in which
/// tether-core checks a frame's header fields decides only between codes that are all 1002,
/// except for the frame size (1009), checked last as the core does.
pub fn expect(frames: &[WireFrame], client: bool, deflate: bool, config: &WsConfig) -> Expected {
    let mut events = Vec::new();
    let mut pending: Option<Pending> = None;
    for (i, f) in frames.iter().enumerate() {
        let done = |events: Vec<WsEvent>, end| Expected {
            events,
            end,
            frames_read: i + 1,
        };
        let control = f.opcode >= 8;
        let len = f.payload.len();
        let header_ok = f.rsv & 3 == 0
            && (f.rsv & 4 == 0 || deflate)
            && matches!(f.opcode, 0 | 1 | 2 | 8 | 9 | 10)
            && f.mask.is_some() != client
            && !(control && (!f.fin || f.rsv != 0))
            && !(f.long_len && len <= 0xFFFF)
            && !(control && len > 125);
        if !header_ok {
            return done(events, ExpectedEnd::Error(1002));
        }
        if len > config.max_frame_size {
            return done(events, ExpectedEnd::Error(1009));
        }
        if control {
            match f.opcode {
                9 => events.push(WsEvent::Ping(f.payload.clone().into())),
                10 => events.push(WsEvent::Pong(f.payload.clone().into())),
                _ => {
                    let end = match &f.payload[..] {
                        [] => ExpectedEnd::Closed(None, String::new()),
                        [_] => ExpectedEnd::Error(1002),
                        [hi, lo, reason @ ..] => {
                            let code = u16::from_be_bytes([*hi, *lo]);
                            match std::str::from_utf8(reason) {
                                _ if !is_valid_on_wire(code) => ExpectedEnd::Error(1002),
                                Ok(r) => ExpectedEnd::Closed(Some(code), r.to_owned()),
                                Err(_) => ExpectedEnd::Error(1007),
                            }
                        }
                    };
                    return done(events, end);
                }
            }
            continue;
        }
        let rsv1 = f.rsv & 4 != 0;
        match (f.opcode, &pending) {
            (0, None) => return done(events, ExpectedEnd::Error(1002)),
            (0, Some(_)) if rsv1 => return done(events, ExpectedEnd::Error(1002)),
            (0, Some(_)) => {}
            (_, Some(_)) => return done(events, ExpectedEnd::Error(1002)),
            (op, None) => {
                if rsv1 {
                    // A compressed message whose content fails a check fails at a frame
                    // that cannot be predicted (see [`ExpectedEnd::SomeError`]).
                    let Some(plain) = f.plain.as_deref() else {
                        return done(events, ExpectedEnd::Unknown);
                    };
                    let utf8_bad = op == 1 && std::str::from_utf8(plain).is_err();
                    if plain.len() > config.max_message_size || utf8_bad {
                        let end = if f.faulty_message {
                            ExpectedEnd::Unknown
                        } else {
                            ExpectedEnd::SomeError
                        };
                        return done(events, end);
                    }
                }
                pending = Some(Pending {
                    text: op == 1,
                    compressed: rsv1,
                    data: Vec::new(),
                });
            }
        }
        let Some(p) = pending.as_mut() else {
            unreachable!("a message is in progress")
        };
        if p.compressed {
            // Content checked when the message started; the payload is compressed bytes.
        } else {
            if p.data.len() + len > config.max_message_size {
                return done(events, ExpectedEnd::Error(1009));
            }
            p.data.extend_from_slice(&f.payload);
            if p.text {
                if let Err(e) = std::str::from_utf8(&p.data) {
                    if e.error_len().is_some() {
                        return done(events, ExpectedEnd::Error(1007));
                    }
                }
            }
        }
        if f.fin {
            let Some(p) = pending.take() else {
                unreachable!("a message is in progress")
            };
            if p.compressed && !f.last_of_message {
                return done(events, ExpectedEnd::Unknown);
            }
            let data = if p.compressed {
                f.plain.clone().unwrap_or_default().to_vec()
            } else {
                p.data
            };
            events.push(if p.text {
                match String::from_utf8(data) {
                    Ok(s) => WsEvent::Text(s),
                    Err(_) => return done(events, ExpectedEnd::Error(1007)),
                }
            } else {
                WsEvent::Binary(data.into())
            });
        }
    }
    Expected {
        events,
        end: ExpectedEnd::TransportClosed,
        frames_read: frames.len(),
    }
}

/// Checks the events of a run over unmutated frames against [`expect`].
pub fn assert_expected(got: &[WsEvent], expected: &Expected) {
    let (last, before) = got.split_last().expect("a run ends with Closed");
    let WsEvent::Closed(reason) = last else {
        panic!("last event is not Closed: {last:?}");
    };
    let ok = match &expected.end {
        ExpectedEnd::Unknown => before.starts_with(&expected.events),
        ExpectedEnd::SomeError => {
            before.starts_with(&expected.events)
                && before[expected.events.len()..]
                    .iter()
                    .all(|e| matches!(e, WsEvent::Ping(_) | WsEvent::Pong(_)))
                && matches!(
                    reason,
                    CloseReason::ProtocolError(_) | CloseReason::ByPeer { .. }
                )
        }
        end => {
            before == expected.events
                && match (end, reason) {
                    (
                        ExpectedEnd::Closed(code, text),
                        CloseReason::ByPeer { code: c, reason: r },
                    ) => code == c && text == r,
                    (ExpectedEnd::Error(code), CloseReason::ProtocolError(e)) => {
                        e.close_code() == *code
                    }
                    (ExpectedEnd::TransportClosed, CloseReason::TransportClosed) => true,
                    _ => false,
                }
        }
    };
    assert!(
        ok,
        "events differ from the generated sequence\nexpected: {:#?}\ngot: {got:#?}",
        expected
    );
}

/// No `Text` or `Binary` event comes after a `Closed` one (nor any event at all).
pub fn assert_no_data_after_close(events: &[WsEvent]) {
    if let Some(at) = events.iter().position(|e| matches!(e, WsEvent::Closed(_))) {
        assert_eq!(at + 1, events.len(), "events after Closed: {events:?}");
    }
}
