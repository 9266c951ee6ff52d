//! The `Sec-WebSocket-Extensions` grammar (RFC 6455 §9.1 with RFC 9110 lists, tokens and
//! quoted strings): splitting a field value into extensions and their parameters.

use crate::syntax::{is_token, trim_ows};

/// One parsed list element: `token *( OWS ";" OWS param )`.
#[derive(Debug)]
pub(super) struct Extension<'a> {
    pub(super) name: &'a str,
    pub(super) params: Vec<Param<'a>>,
}

/// `token [ OWS "=" OWS ( token / quoted-string ) ]`, value unquoted.
#[derive(Debug)]
pub(super) struct Param<'a> {
    pub(super) name: &'a str,
    pub(super) value: Option<String>,
}

/// Splits at `sep` bytes that are not inside a quoted string. An unterminated quoted string
/// runs to the end (and then fails to parse as a value).
pub(super) fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
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
pub(super) fn parse_extension(element: &str) -> Option<Extension<'_>> {
    let mut parts = split_outside_quotes(element, b';').into_iter();
    let name = trim_ows(parts.next()?);
    if !is_token(name.as_bytes()) {
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
                } else if is_token(value.as_bytes()) {
                    value.to_owned()
                } else {
                    return None;
                };
                (name, Some(value))
            }
        };
        if !is_token(name.as_bytes()) {
            return None;
        }
        params.push(Param { name, value });
    }
    Some(Extension { name, params })
}
