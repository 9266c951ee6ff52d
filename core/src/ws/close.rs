//! Close codes (RFC 6455 §7.4) and close frame payloads.

use super::error::{LocalError, ProtocolErrorKind};
use bytes::{BufMut, Bytes, BytesMut};

/// Close codes with names, for readability. Any `u16` valid on the wire may be used.
pub mod code {
    /// 1000: normal closure.
    pub const NORMAL: u16 = 1000;
    /// 1001: going away (server shutdown, page navigation, idle timeout).
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// 1005: no code was given (never sent; reported when a close frame had no payload).
    pub const NO_STATUS: u16 = 1005;
    /// 1006: the connection ended without a close frame (never sent).
    pub const ABNORMAL: u16 = 1006;
    /// 1007: data inconsistent with the message type (e.g. text that is not UTF-8).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// 1009: message too big.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// 1010: the client needed an extension the server did not accept.
    pub const MANDATORY_EXTENSION: u16 = 1010;
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// Whether `code` may appear in a close frame: 1000-1003, 1007-1014 (IANA-registered),
/// and 3000-4999 (libraries, applications). 1005, 1006 and 1015 are for reporting only.
pub fn is_valid_on_wire(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close frame's payload: code and reason, both optional on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClosePayload {
    pub(crate) code: Option<u16>,
    pub(crate) reason: String,
}

impl ClosePayload {
    /// Validates a received close payload.
    pub(crate) fn parse(payload: &[u8]) -> Result<ClosePayload, ProtocolErrorKind> {
        match payload {
            [] => Ok(ClosePayload {
                code: None,
                reason: String::new(),
            }),
            [_] => Err(ProtocolErrorKind::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_on_wire(code) {
                    return Err(ProtocolErrorKind::InvalidCloseCode);
                }
                let reason = std::str::from_utf8(reason)
                    .map_err(|_| ProtocolErrorKind::InvalidCloseReason)?;
                Ok(ClosePayload {
                    code: Some(code),
                    reason: reason.to_owned(),
                })
            }
        }
    }

    /// Encodes a close payload we send; `code: None` sends an empty payload.
    pub(crate) fn encode(code: Option<u16>, reason: &str) -> Result<Bytes, LocalError> {
        let Some(code) = code else {
            return Ok(Bytes::new());
        };
        if !is_valid_on_wire(code) {
            return Err(LocalError::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(LocalError::ControlPayloadTooLong);
        }
        let mut out = BytesMut::with_capacity(2 + reason.len());
        out.put_u16(code);
        out.put_slice(reason.as_bytes());
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_on_the_wire() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            assert!(is_valid_on_wire(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_on_wire(bad), "{bad}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(ClosePayload::parse(&[]).unwrap().code, None);
        assert_eq!(
            ClosePayload::parse(&[3]),
            Err(ProtocolErrorKind::InvalidClosePayload)
        );
        assert_eq!(
            ClosePayload::parse(&[0x03, 0xED]),
            Err(ProtocolErrorKind::InvalidCloseCode)
        ); // 1005
        assert_eq!(
            ClosePayload::parse(&[0x03, 0xE8, 0xFF]),
            Err(ProtocolErrorKind::InvalidCloseReason)
        );
        let p = ClosePayload::parse(b"\x03\xe8bye").unwrap();
        assert_eq!((p.code, p.reason.as_str()), (Some(1000), "bye"));
        assert_eq!(
            &ClosePayload::encode(Some(1001), "x").unwrap()[..],
            b"\x03\xe9x"
        );
        assert_eq!(
            ClosePayload::encode(Some(1006), ""),
            Err(LocalError::InvalidCloseCode(1006))
        );
        assert_eq!(
            ClosePayload::encode(Some(1000), &"r".repeat(124)),
            Err(LocalError::ControlPayloadTooLong)
        );
        assert!(ClosePayload::encode(None, "").unwrap().is_empty());
    }
}
