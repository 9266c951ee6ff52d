//! WebSocket errors: what the peer did wrong (with the close code to send) and what we did.

/// The peer broke RFC 6455 (or a limit). The connection fails with [`close_code`].
///
/// [`close_code`]: ProtocolError::close_code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer error at byte {offset}: {kind}")]
pub struct ProtocolError {
    kind: ProtocolErrorKind,
    offset: u64,
}

impl ProtocolError {
    pub(crate) fn new(kind: ProtocolErrorKind, offset: u64) -> ProtocolError {
        ProtocolError { kind, offset }
    }

    /// What was wrong.
    pub fn kind(&self) -> ProtocolErrorKind {
        self.kind
    }

    /// Offset in the received byte stream (after the handshake) where it was found.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The close code sent to the peer: 1002, 1007 or 1009.
    pub fn close_code(&self) -> u16 {
        self.kind.close_code()
    }
}

/// What the peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// RSV2/RSV3 set, or RSV1 without a negotiated extension, on a control frame, or on a
    /// continuation frame.
    #[error("reserved bits set")]
    ReservedBits,
    /// An opcode RFC 6455 reserves (3-7, 0xB-0xF).
    #[error("reserved opcode")]
    ReservedOpcode,
    /// A client frame without a mask.
    #[error("unmasked frame from a client")]
    UnmaskedFrame,
    /// A server frame with a mask.
    #[error("masked frame from a server")]
    MaskedFrame,
    /// A control frame with FIN clear.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A control frame payload over 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooLong,
    /// A length in a longer encoding than needed.
    #[error("non-minimal length encoding")]
    NonMinimalLength,
    /// A 64-bit length with the most significant bit set.
    #[error("64-bit length with the top bit set")]
    LengthTopBit,
    /// A frame over the frame size limit (1009).
    #[error("frame too large")]
    FrameTooLarge,
    /// A message over the message size limit, compressed or not (1009).
    #[error("message too large")]
    MessageTooLarge,
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message")]
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is in progress.
    #[error("new message before the previous one finished")]
    ExpectedContinuation,
    /// Text that is not UTF-8, found at the first invalid byte (1007).
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A close frame with a one-byte payload.
    #[error("close payload of one byte")]
    InvalidClosePayload,
    /// A close code that may not appear on the wire (1005, 1006, 1015, reserved ranges).
    #[error("invalid close code")]
    InvalidCloseCode,
    /// A close reason that is not UTF-8 (1007).
    #[error("close reason is not UTF-8")]
    InvalidCloseReason,
    /// A compressed message that does not inflate (1007).
    #[error("invalid compressed data")]
    InvalidCompressedData,
}

impl ProtocolErrorKind {
    /// The close code to fail the connection with.
    pub fn close_code(self) -> u16 {
        use ProtocolErrorKind::*;
        match self {
            FrameTooLarge | MessageTooLarge => 1009,
            InvalidUtf8 | InvalidCloseReason | InvalidCompressedData => 1007,
            _ => 1002,
        }
    }
}

/// The API was used in a way the protocol does not allow. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The connection is closing or closed: nothing more can be sent.
    #[error("the connection is closing or closed")]
    Closed,
    /// A control frame payload (ping, pong) over 125 bytes, or a close reason over 123.
    #[error("control frame payload too long")]
    ControlPayloadTooLong,
    /// A close code that may not be sent (1005, 1006, 1015, reserved ranges).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A streamed message was continued or finished without being started, or another
    /// message was started while one is in progress.
    #[error("fragment out of order: {0}")]
    FragmentOrder(&'static str),
}
