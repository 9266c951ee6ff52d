//! The WebSocket connection state machine, one type for both roles.
//!
//! # Theory of operation
//!
//! Received bytes are buffered; `poll_event` decodes frames from the front, assembling
//! messages from fragments (control frames may come between them), validating text as it
//! arrives and inflating compressed messages under the size limit. Duties the protocol
//! imposes are queued as output on their own: a pong for each ping, in arrival order (see
//! [`PONG_BACKLOG`] for the one case where pongs coalesce), the echo of a peer's close, the
//! close frame of a failed connection, heartbeat pings. Frames go out in the order they were
//! made: a pong owed for a ping precedes every frame queued after that ping was decoded.
//!
//! Every connection ends with exactly one [`WsEvent::Closed`] saying why; nothing follows it.
//!
//! The driving contract is the one of every tether state machine: after any input or
//! command, drain `poll_event`, then `poll_transmit`, check `is_closed`, and sleep until
//! `poll_timeout` or more input.

use super::close::{code, ClosePayload};
use super::config::WsConfig;
use super::deflate::{DeflateParams, Deflater, InflateError, Inflater};
use super::error::{LocalError, ProtocolError, ProtocolErrorKind as Kind};
use super::frame::{self, DecodeRules, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use super::utf8::Utf8Validator;
use crate::output::Output;
use crate::time::Instant;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::fmt;

/// Most bytes of pong payloads owed and not yet queued as frames (pings decoded since the
/// last `poll_transmit`): 64 KiB, over 500 pings of the largest size. Within it every ping
/// gets its own pong, in order; beyond it the older ones are dropped and the latest is
/// answered (RFC 6455 §5.5.3 allows that).
pub const PONG_BACKLOG: usize = 64 * 1024;

/// Which end of the connection we are: clients mask what they send, servers must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We opened the connection.
    Client,
    /// We accepted it.
    Server,
}

/// An event on a [`WebSocket`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsEvent {
    /// A complete text message.
    Text(String),
    /// A complete binary message.
    Binary(Bytes),
    /// The peer pinged; the pong is already queued.
    Ping(Bytes),
    /// The peer sent a pong.
    Pong(Bytes),
    /// The connection is over. Always the last event, exactly once.
    Closed(CloseReason),
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer started the close handshake; we echoed its code.
    ByPeer {
        /// The peer's code (`None`: its close frame was empty, reported as 1005).
        code: Option<u16>,
        /// The peer's reason.
        reason: String,
    },
    /// We started the close handshake and the peer answered.
    ByUs {
        /// The code the peer answered with.
        code: Option<u16>,
        /// The peer's reason.
        reason: String,
    },
    /// The peer broke the protocol; we sent a close frame with `error.close_code()`.
    ProtocolError(ProtocolError),
    /// No pong (nor any other byte) arrived in time after a heartbeat ping (1006).
    PingTimeout,
    /// We sent a close frame and the peer did not answer in time (1006).
    CloseTimeout,
    /// Nothing arrived for the idle timeout; we sent a close frame with 1001.
    IdleTimeout,
    /// The transport ended without a close handshake (1006).
    TransportClosed,
}

impl CloseReason {
    /// The close code that describes the end: the peer's (or 1005 when it gave none), the
    /// one we sent on a protocol error, 1001 on idle timeout, 1006 for abnormal ends.
    pub fn code(&self) -> u16 {
        match self {
            CloseReason::ByPeer { code, .. } | CloseReason::ByUs { code, .. } => {
                code.unwrap_or(code::NO_STATUS)
            }
            CloseReason::ProtocolError(e) => e.close_code(),
            CloseReason::IdleTimeout => code::GOING_AWAY,
            CloseReason::PingTimeout | CloseReason::CloseTimeout | CloseReason::TransportClosed => {
                code::ABNORMAL
            }
        }
    }

    /// Whether both sides completed the close handshake.
    pub fn is_clean(&self) -> bool {
        matches!(self, CloseReason::ByPeer { .. } | CloseReason::ByUs { .. })
    }
}

/// The kind of a message being sent in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
}

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the peer's until the deadline.
    ClosingByUs {
        deadline: Instant,
    },
    /// The final event is decided (pending or delivered); nothing more happens.
    Closed,
}

/// A message being received.
struct Assembly {
    text: bool,
    compressed: bool,
    /// Received payload (uncompressed messages), joined without copies where contiguous.
    data: BytesMut,
    /// Inflated payload (compressed messages).
    inflated: Vec<u8>,
    /// The compressed frame being received (compressed messages).
    frame: BytesMut,
    utf8: Utf8Validator,
}

/// A data frame whose payload is still arriving.
struct Incoming {
    header: FrameHeader,
    remaining: u64,
    mask_offset: usize,
    /// Stream offset of the payload's first byte.
    payload_start: u64,
}

/// Compression state, when permessage-deflate was negotiated.
struct Compression {
    deflater: Deflater,
    inflater: Inflater,
    min_size: usize,
}

/// Produces the client's mask keys (from the host's randomness).
pub type MaskKeys = Box<dyn FnMut() -> [u8; 4] + Send>;

/// A sans-IO WebSocket connection (after the handshake).
pub struct WebSocket {
    role: Role,
    config: WsConfig,
    rules: DecodeRules,
    /// Boxed: the compressor's and decompressor's state is large, and most connections
    /// have none.
    compression: Option<Box<Compression>>,
    mask_keys: Option<MaskKeys>,
    inbox: BytesMut,
    received: u64,
    eof: bool,
    out: Output,
    state: State,
    /// The final event, waiting to be reported.
    final_event: Option<CloseReason>,
    assembly: Option<Assembly>,
    incoming: Option<Incoming>,
    /// Payloads of the pings decoded and not yet answered, oldest first.
    pending_pongs: VecDeque<Bytes>,
    /// Their total size (bounded by [`PONG_BACKLOG`]).
    pending_pong_bytes: usize,
    /// A streamed message we are sending.
    sending: Option<MessageKind>,
    last_activity: Instant,
    pong_deadline: Option<Instant>,
    pings_sent: u64,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("buffered", &self.inbox.len())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    /// A server-side connection started at `now`, with the negotiated compression, if any.
    pub fn server(config: WsConfig, deflate: Option<DeflateParams>, now: Instant) -> WebSocket {
        WebSocket::new(Role::Server, config, deflate, now, None)
    }

    /// A client-side connection started at `now`. `mask_keys` gives a fresh random key per
    /// frame (RFC 6455 §5.3 wants them unpredictable; the core has no entropy of its own).
    pub fn client(
        config: WsConfig,
        deflate: Option<DeflateParams>,
        now: Instant,
        mask_keys: impl FnMut() -> [u8; 4] + Send + 'static,
    ) -> WebSocket {
        WebSocket::new(
            Role::Client,
            config,
            deflate,
            now,
            Some(Box::new(mask_keys)),
        )
    }

    fn new(
        role: Role,
        config: WsConfig,
        deflate: Option<DeflateParams>,
        now: Instant,
        mask_keys: Option<MaskKeys>,
    ) -> WebSocket {
        let compression = deflate.map(|params| {
            let settings = config.deflate.clone().unwrap_or_default();
            let ours = params.ours(role == Role::Server);
            let theirs = params.theirs(role == Role::Server);
            Box::new(Compression {
                deflater: Deflater::new(settings.level, ours.no_context_takeover, ours.window_bits),
                inflater: Inflater::new(theirs.no_context_takeover, theirs.window_bits),
                min_size: settings.min_size,
            })
        });
        let rules = DecodeRules {
            expect_masked: role == Role::Server,
            allow_rsv1: compression.is_some(),
            max_frame_size: config.max_frame_size as u64,
        };
        WebSocket {
            role,
            config,
            rules,
            compression,
            mask_keys,
            inbox: BytesMut::new(),
            received: 0,
            eof: false,
            out: Output::default(),
            state: State::Open,
            final_event: None,
            assembly: None,
            incoming: None,
            pending_pongs: VecDeque::new(),
            pending_pong_bytes: 0,
            sending: None,
            last_activity: now,
            pong_deadline: None,
            pings_sent: 0,
        }
    }

    // ---- getters ----

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The settings this connection was made with.
    pub fn config(&self) -> &WsConfig {
        &self.config
    }

    /// Whether permessage-deflate was negotiated (messages may be compressed).
    pub fn is_compressed(&self) -> bool {
        self.compression.is_some()
    }

    /// Whether the connection is over and every byte to send has been handed out: close the
    /// transport. (The final [`WsEvent::Closed`] may still be waiting in `poll_event`.)
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.out.is_empty() && self.pending_pongs.is_empty()
    }

    /// Whether messages can still be sent: the close handshake has not started (by either
    /// side) and the connection has not ended.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether reading more input is useful: not after EOF or the end, nor while a backlog
    /// the application has not consumed exceeds one frame (backpressure).
    pub fn wants_input(&self) -> bool {
        !self.eof
            && self.state != State::Closed
            && self.inbox.len() < self.config.max_frame_size.max(64 * 1024)
    }

    // ---- inputs ----

    /// Bytes received at `now`. Any byte counts as a sign of life for the heartbeat.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.eof || self.state == State::Closed || data.is_empty() {
            return;
        }
        self.last_activity = now;
        self.pong_deadline = None;
        self.inbox.extend_from_slice(data);
        self.received += data.len() as u64;
    }

    /// The transport ended (EOF). Without a finished close handshake this ends the
    /// connection as [`CloseReason::TransportClosed`] once buffered frames are decoded.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The earliest deadline: heartbeat ping, pong wait, close wait or idle timeout.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.config.idle_timeout.map(|d| self.last_activity + d);
        let heartbeat = match (self.pong_deadline, self.config.heartbeat) {
            (Some(pong), _) => Some(pong),
            (None, Some(interval)) if self.state == State::Open => {
                Some(self.last_activity + interval)
            }
            _ => None,
        };
        let closing = match self.state {
            State::ClosingByUs { deadline } => Some(deadline),
            State::Open => None,
            State::Closed => return None,
        };
        [idle, heartbeat, closing].into_iter().flatten().min()
    }

    /// Acts on the deadlines due at `now`: sends a heartbeat ping, or ends the connection on
    /// a missing pong, a missing close answer or idleness. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        let reason = match self.state {
            State::Closed => return,
            State::ClosingByUs { deadline } if deadline <= now => Some(CloseReason::CloseTimeout),
            _ if due(self.pong_deadline) => Some(CloseReason::PingTimeout),
            _ if due(self.config.idle_timeout.map(|d| self.last_activity + d)) => {
                if self.state == State::Open {
                    self.write_close(Some(code::GOING_AWAY), "idle timeout");
                }
                Some(CloseReason::IdleTimeout)
            }
            _ => None,
        };
        if let Some(reason) = reason {
            self.end(reason);
            return;
        }
        let ping_due = self.config.heartbeat.map(|h| self.last_activity + h);
        if self.state == State::Open && self.pong_deadline.is_none() && due(ping_due) {
            self.pings_sent += 1;
            let payload = Bytes::copy_from_slice(&self.pings_sent.to_be_bytes());
            self.write_frame(OpCode::Ping, true, false, payload);
            self.pong_deadline = self.config.pong_wait().map(|w| now + w);
        }
    }

    // ---- commands ----

    /// Sends a text message (compressed when negotiated and worthwhile).
    pub fn send_text(&mut self, text: &str) -> Result<(), LocalError> {
        self.send_message(OpCode::Text, Bytes::copy_from_slice(text.as_bytes()))
    }

    /// Sends a binary message (compressed when negotiated and worthwhile). Large payloads
    /// from a server are queued without a copy.
    pub fn send_binary(&mut self, data: Bytes) -> Result<(), LocalError> {
        self.send_message(OpCode::Binary, data)
    }

    /// Sends one piece of a streamed message: the first call names its kind and starts it,
    /// later calls continue it, `fin` ends it. Streamed messages are not compressed. Control
    /// frames (pings, pongs, close) may be sent between the pieces.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), LocalError> {
        self.check_open()?;
        let opcode = match (self.sending, kind) {
            (None, MessageKind::Text) => OpCode::Text,
            (None, MessageKind::Binary) => OpCode::Binary,
            (Some(current), _) if current == kind => OpCode::Continuation,
            (Some(_), _) => {
                return Err(LocalError::FragmentOrder(
                    "a different message is in progress",
                ))
            }
        };
        self.sending = if fin { None } else { Some(kind) };
        self.write_frame(opcode, fin, false, data);
        Ok(())
    }

    /// Sends a ping (at most 125 bytes).
    pub fn send_ping(&mut self, payload: Bytes) -> Result<(), LocalError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Sends an unsolicited pong (at most 125 bytes), e.g. as a unidirectional heartbeat.
    pub fn send_pong(&mut self, payload: Bytes) -> Result<(), LocalError> {
        self.send_control(OpCode::Pong, payload)
    }

    /// Starts the close handshake at `now`: sends a close frame (`code: None` sends an empty
    /// one), then waits up to the close timeout for the peer's. Messages that arrive
    /// meanwhile are still reported.
    pub fn close(
        &mut self,
        now: Instant,
        code: Option<u16>,
        reason: &str,
    ) -> Result<(), LocalError> {
        self.check_open()?;
        let payload = ClosePayload::encode(code, reason)?;
        self.write_frame(OpCode::Close, true, false, payload);
        self.state = State::ClosingByUs {
            deadline: now + self.config.close_timeout,
        };
        self.pong_deadline = None;
        Ok(())
    }

    // ---- outputs ----

    /// The next event, or `None` when more input is needed or the connection is over.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<WsEvent> {
        if let Some(reason) = self.final_event.take() {
            return Some(WsEvent::Closed(reason));
        }
        if self.state == State::Closed {
            return None;
        }
        match self.decode() {
            Ok(Some(event)) => Some(event),
            Ok(None) if self.eof => Some(self.end_now(CloseReason::TransportClosed)),
            Ok(None) => None,
            Err(error) => {
                if self.state == State::Open {
                    self.write_close(Some(error.close_code()), "");
                }
                Some(self.end_now(CloseReason::ProtocolError(error)))
            }
        }
    }

    /// The next bytes to write, oldest first; `now` is when they are handed out. A pong owed
    /// for a received ping is queued here at the latest, whether or not the application
    /// reads.
    #[must_use]
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Bytes> {
        self.write_pongs();
        self.out.pop()
    }

    // ---- internals: receiving ----

    fn offset(&self) -> u64 {
        self.received - self.inbox.len() as u64
    }

    /// Decodes until an event is ready or input runs out.
    fn decode(&mut self) -> Result<Option<WsEvent>, ProtocolError> {
        loop {
            if self.state == State::Closed {
                return Ok(None);
            }
            if self.incoming.is_some() {
                if self.inbox.is_empty() {
                    return Ok(None);
                }
                if let Some(event) = self.absorb_payload()? {
                    return Ok(Some(event));
                }
                continue;
            }
            let offset = self.offset();
            let Some((header, header_len)) =
                frame::decode_header(&self.inbox, &self.rules, offset)?
            else {
                return Ok(None);
            };
            if header.opcode.is_control() {
                let total = header_len + header.len as usize;
                if self.inbox.len() < total {
                    return Ok(None);
                }
                self.inbox.advance(header_len);
                let mut payload = self.inbox.split_to(header.len as usize);
                if let Some(mask) = header.mask {
                    frame::apply_mask(&mut payload, mask, 0);
                }
                if let Some(event) = self.on_control(header.opcode, payload.freeze(), offset)? {
                    return Ok(Some(event));
                }
                continue;
            }
            self.start_data_frame(&header, offset)?;
            self.inbox.advance(header_len);
            self.incoming = Some(Incoming {
                header,
                remaining: header.len,
                mask_offset: 0,
                payload_start: offset + header_len as u64,
            });
            if header.len == 0 {
                if let Some(event) = self.absorb_payload()? {
                    return Ok(Some(event));
                }
            }
        }
    }

    /// Checks a data frame header against the message in progress and starts a message.
    fn start_data_frame(&mut self, header: &FrameHeader, offset: u64) -> Result<(), ProtocolError> {
        let err = |kind| Err(ProtocolError::new(kind, offset));
        match (header.opcode, &self.assembly) {
            (OpCode::Continuation, None) => return err(Kind::UnexpectedContinuation),
            (OpCode::Continuation, Some(_)) if header.rsv1 => return err(Kind::ReservedBits),
            (OpCode::Continuation, Some(_)) => {}
            (_, Some(_)) => return err(Kind::ExpectedContinuation),
            (opcode, None) => {
                self.assembly = Some(Assembly {
                    text: opcode == OpCode::Text,
                    compressed: header.rsv1,
                    data: BytesMut::new(),
                    inflated: Vec::new(),
                    frame: BytesMut::new(),
                    utf8: Utf8Validator::default(),
                });
            }
        }
        let Some(assembly) = &self.assembly else {
            return Ok(());
        };
        if !assembly.compressed {
            let size = assembly.data.len() as u64 + header.len;
            if size > self.config.max_message_size as u64 {
                return err(Kind::MessageTooLarge);
            }
        }
        Ok(())
    }

    /// Takes the payload bytes of the current data frame that have arrived; returns the
    /// message when its last byte is in.
    fn absorb_payload(&mut self) -> Result<Option<WsEvent>, ProtocolError> {
        let offset = self.offset();
        let Some(incoming) = self.incoming.as_mut() else {
            return Ok(None);
        };
        let frame_start = incoming.payload_start;
        let n = incoming.remaining.min(self.inbox.len() as u64) as usize;
        let mut piece = self.inbox.split_to(n);
        if let Some(mask) = incoming.header.mask {
            frame::apply_mask(&mut piece, mask, incoming.mask_offset);
        }
        incoming.remaining -= n as u64;
        incoming.mask_offset += n;
        let frame_done = incoming.remaining == 0;
        let message_done = frame_done && incoming.header.fin;
        if frame_done {
            self.incoming = None;
        }
        let max = self.config.max_message_size;
        let Some(assembly) = self.assembly.as_mut() else {
            return Ok(None);
        };
        let err = |kind, at: u64| Err(ProtocolError::new(kind, at));
        if assembly.compressed {
            // A compressed frame is inflated once it is whole (at most `max_frame_size`),
            // so what the inflater sees, and any error, does not depend on how the bytes
            // arrived. Errors point at the frame's payload.
            if assembly.frame.is_empty() {
                assembly.frame = piece;
            } else {
                assembly.frame.unsplit(piece);
            }
            if !frame_done {
                return Ok(None);
            }
            let frame = std::mem::take(&mut assembly.frame);
            let Some(compression) = self.compression.as_mut() else {
                return err(Kind::ReservedBits, frame_start);
            };
            let before = assembly.inflated.len();
            let mut result = compression
                .inflater
                .push(&frame, &mut assembly.inflated, max);
            if result.is_ok() && message_done {
                result = compression.inflater.finish(&mut assembly.inflated, max);
            }
            match result {
                Ok(()) => {}
                Err(InflateError::TooLarge) => return err(Kind::MessageTooLarge, frame_start),
                Err(InflateError::Invalid) => return err(Kind::InvalidCompressedData, frame_start),
            }
            if assembly.text && assembly.utf8.push(&assembly.inflated[before..]).is_err() {
                return err(Kind::InvalidUtf8, frame_start);
            }
        } else {
            if assembly.text {
                if let Err(at) = assembly.utf8.push(&piece) {
                    // `at` may point before this piece, into a character begun earlier.
                    return err(Kind::InvalidUtf8, offset.saturating_add_signed(at));
                }
            }
            if assembly.data.is_empty() {
                assembly.data = piece;
            } else {
                assembly.data.unsplit(piece);
            }
        }
        if !message_done {
            return Ok(None);
        }
        let Some(assembly) = self.assembly.take() else {
            return Ok(None);
        };
        if assembly.text && !assembly.utf8.is_complete() {
            return err(Kind::InvalidUtf8, self.offset());
        }
        let bytes = if assembly.compressed {
            Bytes::from(assembly.inflated)
        } else {
            assembly.data.freeze()
        };
        if !assembly.text {
            return Ok(Some(WsEvent::Binary(bytes)));
        }
        match String::from_utf8(bytes.into()) {
            Ok(text) => Ok(Some(WsEvent::Text(text))),
            Err(_) => err(Kind::InvalidUtf8, self.offset()),
        }
    }

    fn on_control(
        &mut self,
        opcode: OpCode,
        payload: Bytes,
        offset: u64,
    ) -> Result<Option<WsEvent>, ProtocolError> {
        match opcode {
            OpCode::Ping => {
                if self.state == State::Open {
                    self.owe_pong(payload.clone());
                }
                Ok(Some(WsEvent::Ping(payload)))
            }
            OpCode::Pong => Ok(Some(WsEvent::Pong(payload))),
            _ => {
                let close =
                    ClosePayload::parse(&payload).map_err(|k| ProtocolError::new(k, offset))?;
                let reason = match self.state {
                    State::Open => {
                        // Echo the peer's code (RFC 6455 §5.5.1); an empty close gets one back.
                        self.write_close(close.code, "");
                        CloseReason::ByPeer {
                            code: close.code,
                            reason: close.reason,
                        }
                    }
                    _ => CloseReason::ByUs {
                        code: close.code,
                        reason: close.reason,
                    },
                };
                Ok(Some(self.end_now(reason)))
            }
        }
    }

    // ---- internals: sending ----

    fn check_open(&self) -> Result<(), LocalError> {
        match self.state {
            State::Open => Ok(()),
            _ => Err(LocalError::Closed),
        }
    }

    fn send_message(&mut self, opcode: OpCode, data: Bytes) -> Result<(), LocalError> {
        self.check_open()?;
        if self.sending.is_some() {
            return Err(LocalError::FragmentOrder(
                "a streamed message is in progress",
            ));
        }
        match self.compression.as_mut() {
            Some(c) if data.len() >= c.min_size => {
                let mut compressed = Vec::new();
                c.deflater.compress(&data, &mut compressed);
                self.write_frame(opcode, true, true, Bytes::from(compressed));
            }
            _ => self.write_frame(opcode, true, false, data),
        }
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), LocalError> {
        self.check_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(LocalError::ControlPayloadTooLong);
        }
        self.write_frame(opcode, true, false, payload);
        Ok(())
    }

    /// Queues a close frame; codes and reasons we build ourselves are always valid.
    fn write_close(&mut self, code: Option<u16>, reason: &str) {
        let payload = ClosePayload::encode(code, reason).unwrap_or_default();
        self.write_frame(OpCode::Close, true, false, payload);
    }

    /// Owes a pong for a ping just decoded. Past [`PONG_BACKLOG`] bytes of pongs not yet
    /// queued, the older ones are dropped and only the latest is answered (RFC 6455 §5.5.3
    /// allows answering the most recent ping only): a peer that floods pings faster than we
    /// write cannot grow our output without bound.
    fn owe_pong(&mut self, payload: Bytes) {
        if self.pending_pong_bytes + payload.len() > PONG_BACKLOG {
            self.pending_pongs.clear();
            self.pending_pong_bytes = 0;
        }
        self.pending_pong_bytes += payload.len();
        self.pending_pongs.push_back(payload);
    }

    /// Queues the pongs owed, in the order of their pings.
    fn write_pongs(&mut self) {
        self.pending_pong_bytes = 0;
        while let Some(payload) = self.pending_pongs.pop_front() {
            self.encode_frame(OpCode::Pong, true, false, payload);
        }
    }

    /// Queues a frame, after the pongs owed for pings decoded before it.
    fn write_frame(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: Bytes) {
        self.write_pongs();
        self.encode_frame(opcode, fin, rsv1, payload);
    }

    /// Queues one frame, masking it when we are the client.
    fn encode_frame(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: Bytes) {
        let mask = self.mask_keys.as_mut().map(|keys| keys());
        let header = FrameHeader {
            fin,
            rsv1,
            opcode,
            mask,
            len: payload.len() as u64,
        };
        frame::encode_header(self.out.staging(), &header);
        match mask {
            Some(mask) => {
                let staging = self.out.staging();
                let start = staging.len();
                staging.put_slice(&payload);
                frame::apply_mask(&mut staging[start..], mask, 0);
            }
            None => self.out.push(payload),
        }
    }

    /// Ends the connection from a timeout: the final event waits for `poll_event`.
    fn end(&mut self, reason: CloseReason) {
        self.shut();
        self.final_event = Some(reason);
    }

    /// Ends the connection and returns the final event.
    fn end_now(&mut self, reason: CloseReason) -> WsEvent {
        self.shut();
        WsEvent::Closed(reason)
    }

    fn shut(&mut self) {
        self.state = State::Closed;
        self.pong_deadline = None;
        self.pending_pongs.clear();
        self.pending_pong_bytes = 0;
        self.assembly = None;
        self.incoming = None;
        self.inbox.clear();
    }
}
