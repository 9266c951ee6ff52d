//! permessage-deflate (RFC 7692): negotiation and per-message compression.
//!
//! # Negotiation ([`negotiate`])
//!
//! * A client offers [`client_offer`] in `Sec-WebSocket-Extensions` and checks the server's
//!   answer with [`client_accept`].
//! * A server picks the first offer it can honour with [`server_negotiate`] and sends the
//!   returned value back.
//!
//! Every parameter of RFC 7692 is supported in both roles: both no-context-takeover flags and
//! both window sizes. The compressor (zlib-rs, through flate2) compresses with any window
//! from 2^9 to 2^15 bytes. It cannot compress with 2^8 (no zlib-family deflater can; zlib
//! itself silently uses 2^9), so an agreement that would make *us* compress with a 256-byte
//! window is refused: a server declines such an offer (and tries the next), a client fails a
//! response that imposes it. Decompressing is never a problem: a window at least as large as
//! the peer's reads everything the peer writes, so we decompress with the negotiated size,
//! or 2^9 where 8 was negotiated.
//!
//! # Compression ([`codec`])
//!
//! [`Deflater`] compresses whole outgoing messages (raw DEFLATE, sync flush, trailing
//! `00 00 ff ff` removed, RFC 7692 §7.2.1). [`Inflater`] decompresses incoming messages frame
//! by frame in bounded steps, so a small compressed frame can never make it produce more than
//! the caller's limit (plus one byte) of output.
//!
//! [`DeflateParams::ours`] and [`DeflateParams::theirs`] say which negotiated rules apply to
//! the messages a role sends and to those it receives.

mod codec;
mod grammar;
mod negotiate;

pub(crate) use codec::{Deflater, InflateError, Inflater};
pub(crate) use negotiate::{client_accept, client_offer, server_negotiate};

/// The extension token.
const EXTENSION_NAME: &str = "permessage-deflate";

/// Parameter names (RFC 7692 §7.1).
const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// The largest LZ77 window (32 KiB), what a side uses when nothing limits it.
const MAX_WINDOW_BITS: u8 = 15;

/// The smallest window RFC 7692 lets a peer announce (256 bytes).
const MIN_WINDOW_BITS: u8 = 8;

/// The smallest window zlib compresses or decompresses with (512 bytes).
const MIN_CODEC_WINDOW_BITS: u8 = 9;

/// The tail a sync flush ends with; removed by the sender, appended by the receiver.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What we are willing to use, as client (what we offer) or server (what we accept).
///
/// Client side: the fields say what goes into the offer. Server side: a flag set here is put
/// in every response (the server always may do so, RFC 7692 §7.1.1); a flag that is clear is
/// still agreed to when the client's offer asks for it; the window sizes are upper bounds
/// applied on top of what the offer asks.
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
    /// Base-2 logarithm of the largest LZ77 window the server may compress with.
    ///
    /// Client: a value below 15 is offered as `server_max_window_bits=N` (8..=15; values
    /// outside are clamped), so the server compresses with at most 2^N bytes and this side
    /// keeps only that much of the server's window; a response with a larger value fails the
    /// handshake. Server: the largest window this side compresses with (9..=15, clamped); a
    /// value below 15 is announced in every response. Default 15.
    pub server_max_window_bits: u8,
    /// Base-2 logarithm of the largest LZ77 window the client may compress with.
    ///
    /// Client: `None` leaves `client_max_window_bits` out of the offer (the server cannot
    /// limit our window); `Some(15)` offers it without a value (the server may pick any size,
    /// which we then compress with; a server that picks 8 fails the handshake, see the module
    /// documentation); `Some(n)` below 15 offers `client_max_window_bits=n` (9..=14; values
    /// outside are clamped), a promise to compress with at most 2^n bytes. Server:
    /// `Some(n)` below 15 asks a client whose offer carries the parameter to compress with
    /// at most 2^n bytes (this side then keeps only that much of the client's window); a
    /// client that did not offer it cannot be limited and is accepted with 2^15. Default
    /// `Some(15)`: offered without a value, as browsers do.
    pub client_max_window_bits: Option<u8>,
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
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: Some(MAX_WINDOW_BITS),
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

/// The rules for one direction of a connection's messages: what the sender's compressor and
/// the receiver's decompressor must both follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirectionParams {
    /// The sender resets its context after every message.
    pub(crate) no_context_takeover: bool,
    /// Base-2 logarithm of the sender's largest window.
    pub(crate) window_bits: u8,
}

impl DeflateParams {
    /// The rules for the messages the server sends.
    fn server_to_client(&self) -> DirectionParams {
        DirectionParams {
            no_context_takeover: self.server_no_context_takeover,
            window_bits: self.server_max_window_bits,
        }
    }

    /// The rules for the messages the client sends.
    fn client_to_server(&self) -> DirectionParams {
        DirectionParams {
            no_context_takeover: self.client_no_context_takeover,
            window_bits: self.client_max_window_bits,
        }
    }

    /// The rules for the messages this side sends (`is_server`: this side is the server).
    pub(crate) fn ours(&self, is_server: bool) -> DirectionParams {
        if is_server {
            self.server_to_client()
        } else {
            self.client_to_server()
        }
    }

    /// The rules for the messages this side receives.
    pub(crate) fn theirs(&self, is_server: bool) -> DirectionParams {
        self.ours(!is_server)
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
    /// The response carries a parameter that may only answer an offer that had it
    /// (`client_max_window_bits`, RFC 7692 §7.1.2.2), and the offer did not.
    #[error("server answered with {param}, which was not offered")]
    NotOffered {
        /// The parameter.
        param: &'static str,
    },
    /// The response allows a larger window than the offer asked for (RFC 7692 §7.1.2).
    #[error("server answered {param}={bits}, larger than the {offered} offered")]
    WindowLargerThanOffered {
        /// The parameter.
        param: &'static str,
        /// The base-2 logarithm of the window in the response.
        bits: u8,
        /// The base-2 logarithm of the window in the offer.
        offered: u8,
    },
    /// The server asks the client to compress with a 256-byte window (2^8), which no
    /// zlib-family compressor can do.
    #[error("server requires client_max_window_bits={bits}, below the 9 a compressor supports")]
    UnsupportedClientMaxWindowBits {
        /// The requested base-2 logarithm of the window.
        bits: u8,
    },
}
