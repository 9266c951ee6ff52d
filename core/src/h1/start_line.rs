//! Judging a start line before the head is complete: can the bytes received so far still
//! begin a valid request line (server) or status line (client)?
//!
//! A head is normally parsed once it is complete (see `HeadScanner`). Without this check,
//! bytes that can never be HTTP (binary garbage, a TLS ClientHello sent to a plain-HTTP port)
//! would sit in the buffer until the head timeout or the size limit. With it, the parser runs
//! as soon as the first line goes wrong, and the peer gets its error (and a server's `400`)
//! at once, with the same error a complete head would have given.
//!
//! The grammar checked is a superset of what the parser accepts, so that nothing the parser
//! would take is refused early:
//!
//! ```text
//! request-line = *( CR / LF ) method SP target SP "HTTP/" DIGIT "." DIGIT [ CR ] LF
//! status-line  = *( CR / LF ) "HTTP/" DIGIT "." DIGIT SP 3DIGIT ( SP / CR / LF ) ...
//! method       = 1*tchar
//! target       = 1*( any byte but CTL and SP )     ; obs-text allowed, as httparse does
//! ```

use crate::syntax::is_tchar;

/// What the bytes of a head received so far say about its start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartLine {
    /// A valid start line may still follow (more bytes are needed to tell).
    MayBegin,
    /// The start line is complete and well formed; the rest is the field section.
    Complete,
    /// No continuation can make this a valid start line.
    Invalid,
}

/// Judges the beginning of a request head.
pub(crate) fn request_line(buf: &[u8]) -> StartLine {
    let mut bytes = skip_empty_lines(buf);
    let method = take_while(&mut bytes, is_tchar);
    let Some(&next) = bytes.first() else {
        return StartLine::MayBegin;
    };
    if method == 0 || next != b' ' {
        return StartLine::Invalid;
    }
    bytes = &bytes[1..];
    let target = take_while(&mut bytes, |b| b != b' ' && !b.is_ascii_control());
    let Some(&next) = bytes.first() else {
        return StartLine::MayBegin;
    };
    if target == 0 || next != b' ' {
        return StartLine::Invalid;
    }
    version_then_line_end(&bytes[1..])
}

/// Judges the beginning of a response head.
pub(crate) fn status_line(buf: &[u8]) -> StartLine {
    let bytes = skip_empty_lines(buf);
    // "HTTP/d.d SP ddd", then a space, or the end of the line.
    const SHAPE: &[u8] = b"HTTP/0.0 000 ";
    for (i, (&byte, &shape)) in bytes.iter().zip(SHAPE).enumerate() {
        let fits = match shape {
            b'0' => byte.is_ascii_digit(),
            // The reason phrase may be absent.
            b' ' if i == SHAPE.len() - 1 => matches!(byte, b' ' | b'\r' | b'\n'),
            _ => byte == shape,
        };
        if !fits {
            return StartLine::Invalid;
        }
    }
    if bytes.len() < SHAPE.len() {
        StartLine::MayBegin
    } else {
        // The reason phrase is checked by the parser once the head is complete.
        StartLine::Complete
    }
}

/// `"HTTP/" DIGIT "." DIGIT [ CR ] LF` at the start of `bytes`.
fn version_then_line_end(bytes: &[u8]) -> StartLine {
    const SHAPE: &[u8] = b"HTTP/0.0";
    for (&byte, &shape) in bytes.iter().zip(SHAPE) {
        let fits = if shape == b'0' {
            byte.is_ascii_digit()
        } else {
            byte == shape
        };
        if !fits {
            return StartLine::Invalid;
        }
    }
    match bytes.get(SHAPE.len()..) {
        None | Some([]) | Some([b'\r']) => StartLine::MayBegin,
        Some([b'\n', ..]) | Some([b'\r', b'\n', ..]) => StartLine::Complete,
        Some(_) => StartLine::Invalid,
    }
}

/// The empty lines a recipient ignores before a start line (RFC 9112 §2.2).
fn skip_empty_lines(buf: &[u8]) -> &[u8] {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    &buf[start..]
}

/// Advances `bytes` past the leading bytes that satisfy `keep`; returns how many.
fn take_while(bytes: &mut &[u8], keep: impl Fn(u8) -> bool) -> usize {
    let n = bytes.iter().position(|&b| !keep(b)).unwrap_or(bytes.len());
    *bytes = &bytes[n..];
    n
}

#[cfg(test)]
mod tests {
    use super::StartLine::{Complete, Invalid, MayBegin};
    use super::*;

    #[test]
    fn request_lines() {
        for (input, verdict) in [
            (&b""[..], MayBegin),
            (b"\r\n\r\n", MayBegin),
            (b"G", MayBegin),
            (b"GET", MayBegin),
            (b"GET ", MayBegin),
            (b"GET /a?b=c", MayBegin),
            (b"GET / ", MayBegin),
            (b"GET / HT", MayBegin),
            (b"GET / HTTP/1.1", MayBegin),
            (b"GET / HTTP/1.1\r", MayBegin),
            (b"GET / HTTP/1.1\r\n", Complete),
            (b"\r\nGET / HTTP/1.1\r\nHost: x\r\n", Complete),
            // A version the parser refuses with 505 is still a well-formed line.
            (b"GET / HTTP/2.0\r\n", Complete),
            (b"GET /\xC3\xA9 HTTP/1.1\n", Complete),
            (b"OPTIONS * HTTP/1.1\r\n", Complete),
            // Not HTTP.
            (b"\x16\x03\x01\x02\x00\x01", Invalid),
            (b"\x00", Invalid),
            (b" GET", Invalid),
            (b"GE(T", Invalid),
            (b"GET  /", Invalid),
            (b"GET /a\x01", Invalid),
            (b"GET /a\tb", Invalid),
            (b"GET / XTTP", Invalid),
            (b"GET / HTTP/x", Invalid),
            (b"GET / HTTP/1.1 ", Invalid),
            (b"GET / HTTP/1.1\rX", Invalid),
            (b"GET / HTTP/1.10", Invalid),
        ] {
            assert_eq!(
                request_line(input),
                verdict,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn status_lines() {
        for (input, verdict) in [
            (&b""[..], MayBegin),
            (b"HTTP/1.1 2", MayBegin),
            (b"HTTP/1.1 200", MayBegin),
            (b"HTTP/1.1 200 ", Complete),
            (b"HTTP/1.1 204\r\n", Complete),
            (b"\r\nHTTP/1.0 404 Not Found\r\n", Complete),
            (b"\x16\x03\x03", Invalid),
            (b"<html>", Invalid),
            (b"HTTP/1.1 20x", Invalid),
            (b"HTTP/1.1  200", Invalid),
            (b"HTTP/1.1 2000", Invalid),
            (b"http/1.1 200", Invalid),
        ] {
            assert_eq!(
                status_line(input),
                verdict,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
