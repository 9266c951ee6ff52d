//! Pieces of the field syntax of RFC 9110 §5.6 that the HTTP/1.1 parser, the WebSocket
//! handshake and extension grammar, and the authentication challenges share.

/// `tchar` of RFC 9110 §5.6.2: a byte of a token (methods, field names, parameter names).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `token` of RFC 9110 §5.6.2: one or more `tchar`s.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// `s` without the optional whitespace (`OWS`: spaces and tabs) around it.
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}
