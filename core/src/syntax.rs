//! Pieces of the field syntax of RFC 9110 §5.6 that the HTTP/1.1 parser and the WebSocket
//! extension grammar share.

/// `tchar` of RFC 9110 §5.6.2: a byte of a token (methods, field names, parameter names).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
