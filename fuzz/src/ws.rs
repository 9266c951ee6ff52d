//! Driving a `WebSocket`: feeding pieces, moving the clock, issuing application commands,
//! recording events and checking what it sends.
//!
//! Besides the per-event invariants ([`WsRecorder`]: bounded, at most one `Closed` and nothing
//! after it, sizes within the limits), the [`WsDriver`] parses everything the connection
//! writes back into frames ([`OutFrame`]) and checks it: well-formed frames for our role, a
//! pong for the latest ping, exactly the close frame the end of the connection calls for
//! (ours, the echo of the peer's, the one of a protocol error or of the idle timeout) and no
//! data after it, and every deadline in the future once `handle_timeout` returned. Optionally
//! the output is fed to a peer of the other role, which must decode it without an error into
//! exactly the messages that were sent ([`WsDriver::check_loopback`]).

use crate::split::{Clock, Piece};
use bytes::Bytes;
use core::time::Duration;
use http::Uri;
use tether_core::time::Instant;
use tether_core::ws::{
    accept, is_valid_on_wire, ClientHandshake, CloseReason, DeflateConfig, DeflateParams,
    LocalError, MessageKind, WebSocket, WsConfig, WsEvent,
};

/// Close code sent on an idle timeout, and its reason.
const IDLE_CLOSE: (u16, &str) = (1001, "idle timeout");

/// Most `poll_transmit` results one drain may hand out before it counts as a runaway loop.
const TRANSMIT_LIMIT: usize = 100_000;

/// Most deadlines [`WsDriver::linger`] may walk through before the connection must be over.
const LINGER_STEPS: usize = 8;

/// Which end the fuzzed connection plays, and how it was set up.
#[derive(Debug, Clone)]
pub struct WsSetup {
    /// Client (unmasked input, masked output) rather than server.
    pub client: bool,
    /// The connection's configuration (also used for the handshake).
    pub config: WsConfig,
    /// permessage-deflate as negotiated through the public handshake, if asked for.
    pub deflate: Option<DeflateParams>,
}

impl WsSetup {
    /// A setup for the given role; with `deflate`, permessage-deflate is negotiated through
    /// `ClientHandshake::new` + `accept` (+ `validate` for the client) with the given
    /// no-context-takeover flags and `min_size`; without, `config.deflate` is cleared.
    pub fn new(
        client: bool,
        config: WsConfig,
        deflate: bool,
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
        min_size: usize,
    ) -> WsSetup {
        Self::with_windows(
            client,
            config,
            deflate,
            server_no_context_takeover,
            client_no_context_takeover,
            min_size,
            0,
        )
    }

    /// [`WsSetup::new`] with the window sizes both sides use picked by the low four bits of
    /// `windows`: bits 0-1 `server_max_window_bits` 15, 13, 11 or 9; bits 2-3
    /// `client_max_window_bits` offered without a value, not offered, 9 or 12.
    pub fn with_windows(
        client: bool,
        mut config: WsConfig,
        deflate: bool,
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
        min_size: usize,
        windows: u8,
    ) -> WsSetup {
        if !deflate {
            config.deflate = None;
            return WsSetup {
                client,
                config,
                deflate: None,
            };
        }
        let mut dc = DeflateConfig::default();
        dc.server_no_context_takeover = server_no_context_takeover;
        dc.client_no_context_takeover = client_no_context_takeover;
        dc.min_size = min_size;
        dc.server_max_window_bits = 15 - 2 * (windows & 3);
        dc.client_max_window_bits =
            [Some(15), None, Some(9), Some(12)][usize::from(windows >> 2 & 3)];
        config.deflate = Some(dc);
        let params = negotiate(&config);
        WsSetup {
            client,
            config,
            deflate: Some(params),
        }
    }

    /// The connection under test, started at time zero.
    pub fn connection(&self) -> WebSocket {
        if self.client {
            WebSocket::client(
                self.config.clone(),
                self.deflate,
                Instant::ZERO,
                mask_keys(0x1234_5678),
            )
        } else {
            WebSocket::server(self.config.clone(), self.deflate, Instant::ZERO)
        }
    }

    /// A peer of the other role with the same compression, default limits and no deadlines.
    fn peer(&self) -> WebSocket {
        let mut config = WsConfig::default();
        config.deflate = self.config.deflate.clone();
        if self.client {
            WebSocket::server(config, self.deflate, Instant::ZERO)
        } else {
            WebSocket::client(config, self.deflate, Instant::ZERO, mask_keys(0x9abc_def0))
        }
    }
}

/// Runs the opening handshake between a client and a server that both use `config`; both
/// must agree on the (present) permessage-deflate parameters.
fn negotiate(config: &WsConfig) -> DeflateParams {
    let uri = Uri::from_static("ws://example.com/chat");
    let (client, request) =
        ClientHandshake::new(&uri, [7; 16], &[], config).expect("client handshake request");
    let (response, server_side) = accept(&request, &[], config).expect("server accepts");
    let client_side = client.validate(&response).expect("client accepts the 101");
    assert_eq!(
        server_side.deflate, client_side.deflate,
        "client and server negotiated different deflate parameters"
    );
    server_side
        .deflate
        .expect("permessage-deflate offered and accepted by the same config")
}

/// Deterministic mask keys, different per frame.
pub fn mask_keys(seed: u32) -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut n = seed;
    move || {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12345);
        n.to_be_bytes()
    }
}

/// Collects events and checks the per-event invariants.
#[derive(Debug)]
pub struct WsRecorder {
    /// The events, in order.
    pub events: Vec<WsEvent>,
    limit: usize,
    max_message: usize,
}

impl WsRecorder {
    /// A recorder allowing at most `limit` events, messages of at most `max_message` bytes.
    pub fn new(limit: usize, max_message: usize) -> WsRecorder {
        WsRecorder {
            events: Vec::new(),
            limit,
            max_message,
        }
    }

    /// The final event's reason, once recorded.
    pub fn closed(&self) -> Option<&CloseReason> {
        match self.events.last() {
            Some(WsEvent::Closed(reason)) => Some(reason),
            _ => None,
        }
    }

    /// Records one event; `fed` is the number of input bytes fed so far.
    pub fn record(&mut self, event: WsEvent, fed: u64) {
        assert!(
            self.events.len() < self.limit,
            "more than {} events (runaway event loop?); last: {event:?}",
            self.limit
        );
        assert!(
            self.closed().is_none(),
            "event after Closed: {event:?}\nevents so far: {:?}",
            self.events
        );
        match &event {
            WsEvent::Text(text) => assert!(
                text.len() <= self.max_message,
                "text message of {} bytes over the {} limit",
                text.len(),
                self.max_message
            ),
            WsEvent::Binary(data) => assert!(
                data.len() <= self.max_message,
                "binary message of {} bytes over the {} limit",
                data.len(),
                self.max_message
            ),
            WsEvent::Ping(p) | WsEvent::Pong(p) => {
                assert!(p.len() <= 125, "control payload of {} bytes", p.len())
            }
            WsEvent::Closed(CloseReason::ProtocolError(e)) => {
                assert!(
                    e.offset() <= fed,
                    "protocol error at offset {} past the {fed} bytes received: {e}",
                    e.offset()
                );
                assert!(matches!(e.close_code(), 1002 | 1007 | 1009));
            }
            WsEvent::Closed(CloseReason::ByPeer { code, .. } | CloseReason::ByUs { code, .. }) => {
                if let Some(code) = code {
                    assert!(is_valid_on_wire(*code), "peer close code {code} accepted");
                }
            }
            _ => {}
        }
        self.events.push(event);
    }
}

/// One frame the connection wrote, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFrame {
    /// FIN.
    pub fin: bool,
    /// RSV1 (compressed).
    pub rsv1: bool,
    /// The opcode.
    pub opcode: u8,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// Parses one frame of our own output from the front of `buf`: its length and the frame, or
/// `None` when `buf` holds only part of one. Panics on anything our encoder must not write.
fn parse_out_frame(buf: &[u8], client: bool, deflate: bool) -> Option<(usize, OutFrame)> {
    let [b0, b1, ..] = *buf else {
        return None;
    };
    assert_eq!(b0 & 0x30, 0, "RSV2/RSV3 set in our frame {b0:#04x}");
    let rsv1 = b0 & 0x40 != 0;
    let opcode = b0 & 0x0F;
    assert!(
        matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10),
        "reserved opcode {opcode:#x} in our output"
    );
    let masked = b1 & 0x80 != 0;
    assert_eq!(
        masked, client,
        "our frame masked: {masked}, client role: {client}"
    );
    let (len, mut at) = match b1 & 0x7F {
        126 => {
            let b = buf.get(2..4)?;
            let len = u64::from(u16::from_be_bytes([b[0], b[1]]));
            assert!(len >= 126, "non-minimal 16-bit length {len} in our output");
            (len, 4)
        }
        127 => {
            let b = buf.get(2..10)?;
            let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
            assert!(len > 0xFFFF && len >> 63 == 0, "bad 64-bit length {len}");
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let fin = b0 & 0x80 != 0;
    if opcode >= 8 {
        assert!(fin, "our control frame without FIN");
        assert!(!rsv1, "our control frame with RSV1");
        assert!(len <= 125, "our control frame of {len} bytes");
    }
    if rsv1 {
        assert!(deflate, "RSV1 without permessage-deflate");
        assert!(opcode != 0, "RSV1 on a continuation frame");
    }
    let mask = if masked {
        let m = buf.get(at..at + 4)?;
        at += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    let len = usize::try_from(len).expect("frame length fits");
    let payload = buf.get(at..at + len)?;
    let payload = match mask {
        Some(m) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ m[i % 4])
            .collect(),
        None => payload.to_vec(),
    };
    Some((
        at + len,
        OutFrame {
            fin,
            rsv1,
            opcode,
            payload,
        },
    ))
}

/// An application command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `send_text` of that many bytes of mixed-width UTF-8.
    Text(usize),
    /// `send_binary` of that many bytes (compressible or not).
    Binary(usize, bool),
    /// `send_ping` with that many bytes.
    Ping(usize),
    /// `send_pong` with that many bytes.
    Pong(usize),
    /// `send_fragment`.
    Fragment {
        /// Text rather than binary.
        text: bool,
        /// Last piece.
        fin: bool,
        /// Bytes (UTF-8 for text).
        len: usize,
    },
    /// `close(now, code, reason)` with a reason of that many bytes.
    Close(Option<u16>, usize),
    /// Let this much time pass without input, then handle what is due.
    Advance(u64),
    /// Jump to the next deadline, if any, and handle it.
    NextDeadline,
}

/// A command and when to issue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// What to do.
    pub op: Op,
    /// Issue it right after the next event, before the rest of the events are drained and
    /// before the output is (for sends and close; others run between pieces).
    pub mid_drain: bool,
}

/// Close codes a command may use, valid on the wire or not.
const CLOSE_CODES: [Option<u16>; 16] = [
    None,
    Some(1000),
    Some(1001),
    Some(1002),
    Some(1003),
    Some(1005),
    Some(1006),
    Some(1015),
    Some(999),
    Some(3000),
    Some(4999),
    Some(5000),
    Some(1011),
    Some(2999),
    Some(1007),
    Some(1000),
];

impl Command {
    /// Decodes a command from two input bytes: the low three bits of `op` pick the command,
    /// bit 3 asks for mid-drain, the high nibble and `arg` are its parameters.
    pub fn decode(op: u8, arg: u8) -> Command {
        let p = op >> 4;
        let a = usize::from(arg);
        let op_kind = match op & 7 {
            0 => Op::Text(a),
            1 => Op::Binary(a << (p & 7), p & 8 == 0),
            2 => Op::Ping(a),
            3 => Op::Pong(a),
            4 => Op::Fragment {
                text: p & 1 != 0,
                fin: p & 2 != 0,
                len: a << (p >> 2),
            },
            5 => Op::Close(CLOSE_CODES[usize::from(p)], a),
            6 => Op::Advance((u64::from(arg) + 1) * [1, 10, 100, 1000][usize::from(p & 3)]),
            _ => Op::NextDeadline,
        };
        Command {
            op: op_kind,
            mid_drain: op & 8 != 0,
        }
    }

    /// Decodes pairs of bytes.
    pub fn decode_all(bytes: &[u8]) -> Vec<Command> {
        bytes
            .chunks_exact(2)
            .map(|pair| Command::decode(pair[0], pair[1]))
            .collect()
    }
}

/// Mixed-width UTF-8 of at most `len` bytes (as long as char boundaries allow).
fn text(len: usize) -> String {
    const PATTERN: &str = "héllo wörld € 😀 abc ";
    let mut out = String::with_capacity(len);
    for c in PATTERN.chars().cycle() {
        if out.len() + c.len_utf8() > len {
            break;
        }
        out.push(c);
    }
    out
}

/// `len` bytes, repetitive or not.
fn binary(len: usize, compressible: bool) -> Bytes {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|i| {
            if compressible {
                (i % 7) as u8
            } else {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            }
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Drives a [`WebSocket`]: feeds pieces, runs commands, records events and output.
pub struct WsDriver {
    setup: WsSetup,
    ws: WebSocket,
    clock: Option<Clock>,
    now_ms: u64,
    fed: u64,
    /// What the events were.
    pub rec: WsRecorder,
    /// Everything `poll_transmit` handed out.
    pub wire: Vec<u8>,
    /// `wire` parsed into frames (always whole after a full drain).
    pub frames: Vec<OutFrame>,
    parsed: usize,
    /// What `close()` was accepted with, if it was.
    our_close: Option<(Option<u16>, String)>,
    /// The kind of the streamed message we are sending.
    sending: Option<MessageKind>,
    /// Complete messages we sent, as the peer must see them.
    sent: Vec<WsEvent>,
    /// The streamed message being sent.
    fragments: Vec<u8>,
    /// Payloads of the pings received while open in the current drain, in arrival order.
    owed_pongs: Vec<Bytes>,
    /// Commands issued during the current drain (the close frame of an error then need not
    /// come first).
    commands_in_drain: usize,
}

impl std::fmt::Debug for WsDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsDriver")
            .field("ws", &self.ws)
            .field("now_ms", &self.now_ms)
            .field("fed", &self.fed)
            .field("events", &self.rec.events)
            .finish_non_exhaustive()
    }
}

impl WsDriver {
    /// A connection for `setup` at time zero; `clock: None` freezes time (piece advances are
    /// ignored), else it moves as the pieces say.
    pub fn new(setup: WsSetup, clock: Option<Clock>, event_limit: usize) -> WsDriver {
        let ws = setup.connection();
        let rec = WsRecorder::new(event_limit, setup.config.max_message_size);
        WsDriver {
            setup,
            ws,
            clock,
            now_ms: 0,
            fed: 0,
            rec,
            wire: Vec::new(),
            frames: Vec::new(),
            parsed: 0,
            our_close: None,
            sending: None,
            sent: Vec::new(),
            fragments: Vec::new(),
            owed_pongs: Vec::new(),
            commands_in_drain: 0,
        }
    }

    /// Feeds every piece (before piece `i`, command `i` runs), then the remaining commands,
    /// optionally walks the deadlines, then EOF; checks the end state.
    pub fn run(
        setup: WsSetup,
        clock: Option<Clock>,
        pieces: &[Piece<'_>],
        commands: &[Command],
        linger: bool,
        event_limit: usize,
    ) -> WsDriver {
        let mut driver = WsDriver::new(setup, clock, event_limit);
        let mut commands = commands.iter();
        for piece in pieces {
            let pending = commands.next();
            driver.feed(piece, pending);
        }
        for command in commands {
            driver.between(command);
        }
        if linger {
            driver.linger();
        }
        driver.finish();
        driver
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.now_ms)
    }

    fn is_over(&self) -> bool {
        self.our_close.is_some() || self.rec.closed().is_some()
    }

    /// Feeds one piece at the clock's next reading, with `command` issued before it (or
    /// after its first event, when it asks for mid-drain), then drains.
    pub fn feed(&mut self, piece: &Piece<'_>, command: Option<&Command>) {
        if self.clock.is_some() {
            self.now_ms += piece.advance_ms;
        }
        // The timer fires before the bytes that arrive late are read.
        self.step(None);
        let mut mid = None;
        if let Some(command) = command {
            if command.mid_drain && command.is_send() {
                mid = Some(command);
            } else {
                self.between(command);
            }
        }
        self.ws.handle_input(self.now(), piece.bytes);
        self.fed += piece.bytes.len() as u64;
        self.step(mid);
    }

    /// Runs a command between pieces, then drains.
    fn between(&mut self, command: &Command) {
        match command.op {
            Op::Advance(ms) => self.now_ms += ms,
            Op::NextDeadline => {
                if let Some(t) = self.ws.poll_timeout() {
                    self.now_ms = self.now_ms.max(t.as_nanos().div_ceil(1_000_000));
                }
            }
            _ => self.send(&command.op),
        }
        self.step(None);
    }

    /// Walks the deadlines without input: with a heartbeat the connection must end within a
    /// few of them.
    pub fn linger(&mut self) {
        for _ in 0..LINGER_STEPS {
            let Some(t) = self.ws.poll_timeout() else {
                break;
            };
            self.now_ms = self.now_ms.max(t.as_nanos().div_ceil(1_000_000));
            self.step(None);
        }
        if self.setup.config.heartbeat.is_some() || self.our_close.is_some() {
            assert!(
                self.rec.closed().is_some(),
                "not over after {LINGER_STEPS} deadlines without input (heartbeat {:?}, close \
                 sent: {}): {:?}, next deadline {:?}",
                self.setup.config.heartbeat,
                self.our_close.is_some(),
                self.ws,
                self.ws.poll_timeout()
            );
        }
    }

    /// EOF, a last drain, and the end-state checks.
    pub fn finish(&mut self) {
        self.ws.handle_eof();
        self.step(None);
        let Some(reason) = self.rec.closed().cloned() else {
            panic!(
                "no Closed after EOF and a full drain\nevents: {:#?}",
                self.rec.events
            );
        };
        let closes = self
            .rec
            .events
            .iter()
            .filter(|e| matches!(e, WsEvent::Closed(_)));
        assert_eq!(closes.count(), 1, "more than one Closed");
        assert!(
            self.ws.is_closed(),
            "not closed after the final event and a full drain: {:?}",
            self.ws
        );
        assert!(!self.ws.wants_input(), "closed connection wants input");
        assert_eq!(self.ws.poll_timeout(), None, "deadline after the end");
        // Nothing moves any more.
        self.ws.handle_input(self.now(), b"\x81\x80\0\0\0\0");
        self.ws.handle_timeout(Instant::MAX);
        if let Some(event) = self.ws.poll_event() {
            panic!("event after the final Closed: {event:?}");
        }
        if let Some(bytes) = self.ws.poll_transmit(self.now()) {
            panic!("output after the end: {bytes:?}");
        }
        assert_eq!(self.ws.send_text("late"), Err(LocalError::Closed));
        assert_eq!(
            self.ws.close(self.now(), Some(1000), ""),
            Err(LocalError::Closed)
        );
        self.check_close_frames(&reason);
    }

    /// Handles due deadlines, drains events (running `mid` after the first), drains output.
    fn step(&mut self, mut mid: Option<&Command>) {
        let now = self.now();
        if self.ws.poll_timeout().is_some_and(|t| t <= now) {
            self.ws.handle_timeout(now);
            if let Some(t) = self.ws.poll_timeout() {
                assert!(
                    t > now,
                    "poll_timeout() = {t:?} right after handle_timeout({now:?}): {:?}",
                    self.ws
                );
            }
            // What the timer queued (a ping, an idle close) goes out first.
            self.drain_transmit();
        }
        self.owed_pongs.clear();
        self.commands_in_drain = 0;
        while let Some(event) = self.ws.poll_event() {
            if let WsEvent::Ping(payload) = &event {
                if !self.is_over() {
                    self.owed_pongs.push(payload.clone());
                }
            }
            let error = match &event {
                WsEvent::Closed(reason) => {
                    self.owed_pongs.clear();
                    match reason {
                        CloseReason::ProtocolError(e) => Some(e.close_code()),
                        _ => None,
                    }
                }
                _ => None,
            };
            self.rec.record(event, self.fed);
            if let Some(code) = error {
                if self.our_close.is_none() && self.commands_in_drain == 0 {
                    self.check_error_close(code);
                }
            }
            if let Some(command) = mid.take() {
                self.commands_in_drain += 1;
                self.send(&command.op);
            }
        }
        if let Some(command) = mid {
            // No event came: issue it anyway.
            self.send(&command.op);
        }
        let first_new = self.drain_transmit();
        assert_eq!(
            self.ws.is_closed(),
            self.rec.closed().is_some(),
            "is_closed() disagrees with the events after a full drain: {:?}",
            self.rec.events.last()
        );
        if self.ws.is_closed() {
            assert!(!self.ws.wants_input(), "closed connection wants input");
        }
        // Every ping gets its own pong, in arrival order. Pongs the application sent itself
        // may sit between them, so the pings' payloads must be a subsequence of the pongs.
        let owed = std::mem::take(&mut self.owed_pongs);
        let mut pongs = self.frames[first_new..].iter().filter(|f| f.opcode == 0xA);
        for payload in &owed {
            assert!(
                pongs.any(|f| f.payload == payload[..]),
                "no pong, in order, for the ping {payload:?} (pings {owed:?})"
            );
        }
    }

    /// The close frame of a protocol error is the next frame written after the pongs owed
    /// for pings decoded before the error (they keep their place in the output). Masking per
    /// role is checked by `parse_out_frame`.
    fn check_error_close(&mut self, code: u16) {
        let first_new = self.drain_transmit();
        let new = &self.frames[first_new..];
        let Some(close) = new.iter().find(|f| f.opcode != 0xA) else {
            panic!("protocol error ({code}) but only pongs (if anything) were written: {new:?}");
        };
        assert_eq!(
            close.opcode, 0x8,
            "protocol error ({code}): the first frame after the owed pongs is not a close: {close:?}"
        );
        assert_eq!(
            close.payload,
            code.to_be_bytes(),
            "close frame of a protocol error has the wrong payload"
        );
    }

    /// Drains `poll_transmit` and parses what came out; returns the index of the first new
    /// frame.
    fn drain_transmit(&mut self) -> usize {
        let first_new = self.frames.len();
        let mut pops = 0;
        while let Some(bytes) = self.ws.poll_transmit(self.now()) {
            assert!(!bytes.is_empty(), "empty transmit");
            pops += 1;
            assert!(pops <= TRANSMIT_LIMIT, "runaway poll_transmit");
            self.wire.extend_from_slice(&bytes);
        }
        let client = self.setup.client;
        let deflate = self.setup.deflate.is_some();
        while let Some((len, frame)) = parse_out_frame(&self.wire[self.parsed..], client, deflate) {
            self.parsed += len;
            self.frames.push(frame);
        }
        assert_eq!(
            self.parsed,
            self.wire.len(),
            "output drained mid-frame: {:02x?}",
            &self.wire[self.parsed..]
        );
        first_new
    }

    /// Runs a send or close command, checking its result against what the API promises.
    fn send(&mut self, op: &Op) {
        let over = self.is_over();
        let closed = |expected: Result<(), LocalError>| {
            if over {
                Err(LocalError::Closed)
            } else {
                expected
            }
        };
        let in_order = |sending: Option<MessageKind>, kind: Option<MessageKind>| match sending {
            None => Ok(()),
            Some(current) if Some(current) == kind => Ok(()),
            Some(_) => Err(LocalError::FragmentOrder("")),
        };
        match *op {
            Op::Text(len) => {
                let t = text(len);
                let got = self.ws.send_text(&t);
                same(&got, &closed(in_order(self.sending, None)), op);
                if got.is_ok() {
                    self.sent.push(WsEvent::Text(t));
                }
            }
            Op::Binary(len, compressible) => {
                let b = binary(len, compressible);
                let got = self.ws.send_binary(b.clone());
                same(&got, &closed(in_order(self.sending, None)), op);
                if got.is_ok() {
                    self.sent.push(WsEvent::Binary(b));
                }
            }
            Op::Ping(len) | Op::Pong(len) => {
                let payload = binary(len, true);
                let got = if matches!(op, Op::Ping(_)) {
                    self.ws.send_ping(payload)
                } else {
                    self.ws.send_pong(payload)
                };
                let expected = if len > 125 {
                    Err(LocalError::ControlPayloadTooLong)
                } else {
                    Ok(())
                };
                same(&got, &closed(expected), op);
            }
            Op::Fragment {
                text: is_text,
                fin,
                len,
            } => {
                let kind = if is_text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let data = if is_text {
                    Bytes::from(text(len))
                } else {
                    binary(len, len % 2 == 0)
                };
                let got = self.ws.send_fragment(kind, data.clone(), fin);
                same(&got, &closed(in_order(self.sending, Some(kind))), op);
                if got.is_ok() {
                    self.fragments.extend_from_slice(&data);
                    self.sending = Some(kind);
                    if fin {
                        let message = std::mem::take(&mut self.fragments);
                        self.sent.push(match kind {
                            MessageKind::Text => WsEvent::Text(
                                String::from_utf8(message).expect("fragments are whole UTF-8"),
                            ),
                            MessageKind::Binary => WsEvent::Binary(message.into()),
                        });
                        self.sending = None;
                    }
                }
            }
            Op::Close(code, reason_len) => {
                let reason = "r".repeat(reason_len);
                let got = self.ws.close(self.now(), code, &reason);
                let expected = match code {
                    Some(c) if !is_valid_on_wire(c) => Err(LocalError::InvalidCloseCode(c)),
                    Some(_) if reason_len > 123 => Err(LocalError::ControlPayloadTooLong),
                    Some(_) => Ok(()),
                    None => Ok(()),
                };
                same(&got, &closed(expected), op);
                if got.is_ok() {
                    let reason = if code.is_some() {
                        reason
                    } else {
                        String::new()
                    };
                    self.our_close = Some((code, reason));
                    self.owed_pongs.clear();
                }
            }
            Op::Advance(_) | Op::NextDeadline => {}
        }
    }

    /// Exactly the close frame the end calls for was sent, and no data after it.
    fn check_close_frames(&self, reason: &CloseReason) {
        let expected: Option<(Option<u16>, String)> = match (&self.our_close, reason) {
            (Some(ours), _) => Some(ours.clone()),
            (None, CloseReason::ProtocolError(e)) => Some((Some(e.close_code()), String::new())),
            (None, CloseReason::IdleTimeout) => Some((Some(IDLE_CLOSE.0), IDLE_CLOSE.1.to_owned())),
            (None, CloseReason::ByPeer { code, .. }) => Some((*code, String::new())),
            (None, CloseReason::PingTimeout | CloseReason::TransportClosed) => None,
            (None, other) => panic!("{other:?} although we never sent a close frame"),
        };
        match reason {
            CloseReason::ByUs { .. } | CloseReason::CloseTimeout => {
                assert!(self.our_close.is_some(), "{reason:?} without our close")
            }
            CloseReason::ByPeer { .. } | CloseReason::PingTimeout => assert!(
                self.our_close.is_none(),
                "{reason:?} after we sent a close frame"
            ),
            CloseReason::IdleTimeout => assert!(
                self.setup.config.idle_timeout.is_some(),
                "idle timeout without one configured"
            ),
            _ => {}
        }
        let closes: Vec<(usize, &OutFrame)> = self
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.opcode == 8)
            .collect();
        let sent: Vec<(Option<u16>, String)> = closes
            .iter()
            .map(|(_, f)| match &f.payload[..] {
                [] => (None, String::new()),
                [hi, lo, reason @ ..] => (
                    Some(u16::from_be_bytes([*hi, *lo])),
                    String::from_utf8(reason.to_vec()).expect("our close reason is UTF-8"),
                ),
                bad => panic!("our close frame has the payload {bad:02x?}"),
            })
            .collect();
        assert_eq!(
            sent,
            expected.into_iter().collect::<Vec<_>>(),
            "close frames sent vs expected for {reason:?}"
        );
        if let Some((at, _)) = closes.first() {
            if let Some(after) = self.frames[at + 1..].iter().find(|f| f.opcode != 0xA) {
                panic!("frame after our close frame: {after:?}");
            }
        }
    }

    /// Feeds everything written to a peer of the other role: it must decode without an
    /// error into exactly the messages sent, and end with our close frame, if any.
    pub fn check_loopback(&self) {
        let mut peer = self.setup.peer();
        peer.handle_input(Instant::ZERO, &self.wire);
        peer.handle_eof();
        let mut messages = Vec::new();
        let mut end = None;
        let mut n = 0;
        while let Some(event) = peer.poll_event() {
            n += 1;
            assert!(n <= self.frames.len() + 1, "peer: runaway events");
            match event {
                WsEvent::Text(_) | WsEvent::Binary(_) => messages.push(event),
                WsEvent::Closed(reason) => end = Some(reason),
                _ => {}
            }
        }
        match end {
            Some(CloseReason::ProtocolError(e)) => panic!(
                "the peer rejects our output: {e}\nframes: {:?}",
                self.frames
            ),
            Some(CloseReason::ByPeer { code, reason }) => {
                let ours = self.frames.iter().find(|f| f.opcode == 8);
                assert!(ours.is_some(), "the peer saw a close we did not send");
                if let Some(ours) = ours {
                    let mut payload = code.map(u16::to_be_bytes).map_or(vec![], |b| b.to_vec());
                    payload.extend_from_slice(reason.as_bytes());
                    assert_eq!(payload, ours.payload, "peer saw another close payload");
                }
            }
            Some(CloseReason::TransportClosed) => assert!(
                !self.frames.iter().any(|f| f.opcode == 8),
                "the peer missed our close frame"
            ),
            other => panic!("peer ended with {other:?}"),
        }
        if messages != self.sent {
            panic!(
                "the peer decoded other messages than we sent\nsent: {:?}\ngot: {:?}",
                self.sent, messages
            );
        }
    }
}

impl Command {
    /// Whether the command is a send or close (may run mid-drain).
    fn is_send(&self) -> bool {
        !matches!(self.op, Op::Advance(_) | Op::NextDeadline)
    }
}

/// Compares a command's result with the expected one (`FragmentOrder` by variant only).
fn same(got: &Result<(), LocalError>, expected: &Result<(), LocalError>, op: &Op) {
    let ok = match (got, expected) {
        (Err(LocalError::FragmentOrder(_)), Err(LocalError::FragmentOrder(_))) => true,
        _ => got == expected,
    };
    assert!(ok, "{op:?}: got {got:?}, expected {expected:?}");
}

/// Configuration and flags from the header of a `ws_frames` input (6 bytes).
///
/// Byte 0: bit 0 client role, bit 1 deflate, bit 2 server_no_context_takeover, bit 3
/// client_no_context_takeover, bit 4 small limits, bits 5-7 the window sizes (bits 0-2 of
/// `windows` in [`WsSetup::with_windows`]); byte 1 seeds the split; bytes 2-3 and 4-5
/// (little-endian) are `max_frame_size` and `max_message_size` when bit 4 is set.
pub fn frames_setup(header: &[u8; 6]) -> WsSetup {
    let flags = header[0];
    let mut config = WsConfig::default();
    if flags & 0x10 != 0 {
        config.max_frame_size = usize::from(u16::from_le_bytes([header[2], header[3]]));
        config.max_message_size = usize::from(u16::from_le_bytes([header[4], header[5]]));
    }
    WsSetup::with_windows(
        flags & 1 != 0,
        config,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 8 != 0,
        64,
        flags >> 5,
    )
}

/// Runs `data` through the connection of `setup` whole and in the pieces `seed` picks, time
/// frozen, without commands: same events in both. Returns the whole run.
pub fn check_frames(setup: &WsSetup, seed: u8, data: &[u8]) -> WsDriver {
    let limit = crate::split::event_limit(data.len());
    let whole_run = WsDriver::run(
        setup.clone(),
        None,
        &crate::split::whole(data),
        &[],
        false,
        limit,
    );
    let split_run = WsDriver::run(
        setup.clone(),
        None,
        &crate::split::split(seed, data, Clock::Gentle),
        &[],
        false,
        limit,
    );
    assert_same_events(
        &whole_run.rec.events,
        &split_run.rec.events,
        setup.deflate.is_some(),
    );
    whole_run
}

/// Asserts that two runs over the same bytes gave exactly the same events (protocol errors
/// included: kind, offset, and so the close code).
pub fn assert_same_events(whole: &[WsEvent], split: &[WsEvent], _deflate: bool) {
    if whole != split {
        let first = whole
            .iter()
            .zip(split)
            .position(|(a, b)| a != b)
            .unwrap_or(whole.len().min(split.len()));
        panic!(
            "whole and split runs differ at event {first}\nwhole: {whole:#?}\nsplit: {split:#?}"
        );
    }
}

/// Configuration from the two header bytes of a `ws_conn` input.
///
/// `flags`: bit 0 client role, bit 1 deflate, bit 2 server_no_context_takeover, bit 3
/// client_no_context_takeover, bit 4 small limits (frames 256 bytes, messages 1 KiB), bit 5
/// compress every message (deflate `min_size` 0), bits 6-7 the server's window (bits 0-1 of
/// `windows` in [`WsSetup::with_windows`]). `timing`: heartbeat always 1 s; bits 0-1 idle
/// timeout (none, 700 ms, 1.2 s, 5 s), bits 2-3 pong timeout (half the heartbeat, 100 ms,
/// 1 s, 3 s), bits 4-5 close timeout (1 ms, 50 ms, 300 ms, 2 s), bits 6-7 the client's
/// window (bits 2-3 of `windows`).
pub fn conn_setup(flags: u8, timing: u8) -> WsSetup {
    let ms = Duration::from_millis;
    let mut config = WsConfig::default();
    config.heartbeat = Some(ms(1000));
    config.idle_timeout =
        [None, Some(ms(700)), Some(ms(1200)), Some(ms(5000))][usize::from(timing & 3)];
    config.pong_timeout =
        [None, Some(ms(100)), Some(ms(1000)), Some(ms(3000))][usize::from(timing >> 2 & 3)];
    config.close_timeout = [ms(1), ms(50), ms(300), ms(2000)][usize::from(timing >> 4 & 3)];
    if flags & 0x10 != 0 {
        config.max_frame_size = 256;
        config.max_message_size = 1024;
    }
    WsSetup::with_windows(
        flags & 1 != 0,
        config,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 8 != 0,
        if flags & 0x20 != 0 { 0 } else { 64 },
        flags >> 6 | (timing >> 6) << 2,
    )
}

/// The `ws_conn` checks: the input with commands and a jumpy clock (invariants, timeouts,
/// command results, loopback through a peer), then the bytes alone with a frozen clock whole
/// and in pieces (same events).
pub fn check_conn(
    setup: &WsSetup,
    seed: u8,
    commands: &[Command],
    linger: bool,
    data: &[u8],
) -> WsDriver {
    let limit = crate::split::event_limit(data.len());
    let live = WsDriver::run(
        setup.clone(),
        Some(Clock::Jumpy),
        &crate::split::split(seed, data, Clock::Jumpy),
        commands,
        linger,
        limit,
    );
    live.check_loopback();
    check_frames(setup, seed, data);
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![b0, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn rfc_hello_and_close() {
        let mut data = vec![
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        data.extend(masked(0x88, &[0x03, 0xe8]));
        for deflate in [false, true] {
            let setup = WsSetup::new(false, WsConfig::default(), deflate, false, false, 64);
            for seed in 0..=255 {
                let run = check_frames(&setup, seed, &data);
                assert_eq!(run.rec.events[0], WsEvent::Text("Hello".into()));
                assert!(matches!(
                    run.rec.events[1],
                    WsEvent::Closed(CloseReason::ByPeer {
                        code: Some(1000),
                        ..
                    })
                ));
            }
        }
    }

    #[test]
    fn protocol_error_sends_its_close() {
        for client in [false, true] {
            let setup = WsSetup::new(client, WsConfig::default(), false, false, false, 64);
            // A text frame with invalid UTF-8, masked for the server, unmasked for the client.
            let data = if client {
                vec![0x81, 0x01, 0xff]
            } else {
                masked(0x81, &[0xff])
            };
            let run = check_frames(&setup, 3, &data);
            assert!(matches!(
                run.rec.closed(),
                Some(CloseReason::ProtocolError(e)) if e.close_code() == 1007
            ));
            assert_eq!(run.frames[0].payload, [0x03, 0xef]);
        }
    }

    #[test]
    fn commands_heartbeat_and_loopback() {
        let ping = masked(0x89, b"p");
        let fragments = [masked(0x01, b"Hel"), masked(0x80, b"lo")].concat();
        let data = [ping, fragments].concat();
        let commands = Command::decode_all(&[
            0x00, 70, // text
            0x14, 40, // fragment text start
            0x04, 3, // fragment binary: out of order
            0x34, 2, // fragment text fin
            0x19, 200, // binary, mid-drain
            0x02, 126, // ping too long
            0x16, 200, // advance 2 s
            0x15, 5, // close 1000 "rrrrr"
            0x00, 1, // text after close
        ]);
        // The jumpy clock may end a run early; each path must be taken by some run.
        let (mut all_sent, mut closed_by_us, mut pinged, mut hello) = (false, false, false, false);
        for flags in [0, 1, 2, 3, 0x23, 0x2e] {
            for timing in [0, 0x15, 0x3f] {
                let setup = conn_setup(flags, timing);
                for seed in [0, 7, 200] {
                    let run = check_conn(&setup, seed, &commands, true, &data);
                    all_sent |= run.sent.len() == 3;
                    closed_by_us |= run.our_close == Some((Some(1000), "rrrrr".into()));
                    pinged |= run.frames.iter().any(|f| f.opcode == 9);
                    hello |= run.rec.events.contains(&WsEvent::Text("Hello".into()));
                }
            }
        }
        assert!(all_sent && closed_by_us && pinged && hello);
    }
}
