//! Reference decoders for chunked bodies, to judge the core's chunked decoder.

/// What a reference decoder makes of a chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunked {
    /// A complete body: its data, where it ends (just past the trailer section), and whether
    /// the trailer section had any field line.
    Complete {
        /// The decoded data.
        data: Vec<u8>,
        /// Length of the body's framing and data in the input.
        end: usize,
        /// A non-empty trailer section.
        trailers: bool,
    },
    /// Valid so far, but the last chunk or the trailer section has not ended.
    Incomplete,
    /// Not a chunked body under this reference's rules.
    Invalid,
}

/// Decodes a chunked body leniently: `hex-size [anything without CR/LF] CRLF data CRLF`,
/// ending with a zero size and a trailer section ended by the first empty line (as an
/// HTTP head ends). Everything the core accepts should be accepted here with the same data.
pub fn chunked_lenient(body: &[u8]) -> Chunked {
    decode_chunked(body, false)
}

/// Decodes a chunked body strictly: `hex-size CRLF data CRLF` only, and `0 CRLF CRLF` at the
/// end (no extensions, no whitespace, no trailers). The core must accept everything this
/// accepts.
pub fn chunked_strict(body: &[u8]) -> Chunked {
    decode_chunked(body, true)
}

fn decode_chunked(body: &[u8], strict: bool) -> Chunked {
    let mut data = Vec::new();
    let mut at = 0;
    loop {
        // chunk-size
        let digits = body[at..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if at + digits == body.len() {
            return Chunked::Incomplete;
        }
        if digits == 0 {
            return Chunked::Invalid;
        }
        let mut size: u64 = 0;
        for &b in &body[at..at + digits] {
            let digit = u64::from((b as char).to_digit(16).expect("hex digit"));
            match size.checked_mul(16).and_then(|s| s.checked_add(digit)) {
                Some(s) => size = s,
                None => return Chunked::Invalid,
            }
        }
        at += digits;
        // the rest of the size line
        let Some(rel) = body[at..].iter().position(|&b| b == b'\r' || b == b'\n') else {
            return if strict && at < body.len() {
                Chunked::Invalid
            } else {
                Chunked::Incomplete
            };
        };
        if strict && rel != 0 {
            return Chunked::Invalid;
        }
        at += rel;
        match &body[at..] {
            [b'\r'] => return Chunked::Incomplete,
            [b'\r', b'\n', ..] => at += 2,
            _ => return Chunked::Invalid,
        }
        if size == 0 {
            break;
        }
        // chunk-data CRLF
        let Ok(size) = usize::try_from(size) else {
            return Chunked::Incomplete;
        };
        if body.len() - at < size {
            return Chunked::Incomplete;
        }
        data.extend_from_slice(&body[at..at + size]);
        at += size;
        match &body[at..] {
            [] | [b'\r'] => return Chunked::Incomplete,
            [b'\r', b'\n', ..] => at += 2,
            _ => return Chunked::Invalid,
        }
    }
    // trailer section
    match &body[at..] {
        [] | [b'\r'] => return Chunked::Incomplete,
        [b'\r', b'\n', ..] => {
            return Chunked::Complete {
                data,
                end: at + 2,
                trailers: false,
            }
        }
        _ if strict => return Chunked::Invalid,
        _ => {}
    }
    let section = &body[at..];
    let mut search = 0;
    while let Some(rel) = section[search..].iter().position(|&b| b == b'\n') {
        let lf = search + rel;
        match &section[lf + 1..] {
            [b'\n', ..] => {
                return Chunked::Complete {
                    data,
                    end: at + lf + 2,
                    trailers: true,
                }
            }
            [b'\r', b'\n', ..] => {
                return Chunked::Complete {
                    data,
                    end: at + lf + 3,
                    trailers: true,
                }
            }
            _ => search = lf + 1,
        }
    }
    Chunked::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_chunked() {
        assert_eq!(
            chunked_strict(b"5\r\nhello\r\n0\r\n\r\nrest"),
            Chunked::Complete {
                data: b"hello".to_vec(),
                end: 15,
                trailers: false
            }
        );
        assert_eq!(
            chunked_strict(b"5;x=1\r\nhello\r\n0\r\n\r\n"),
            Chunked::Invalid
        );
        assert_eq!(
            chunked_lenient(b"5;x=1\r\nhello\r\n0\r\na: b\r\n\r\n"),
            Chunked::Complete {
                data: b"hello".to_vec(),
                end: 25,
                trailers: true
            }
        );
        assert_eq!(chunked_lenient(b"5\r\nhel"), Chunked::Incomplete);
        assert_eq!(chunked_lenient(b"5\nhello"), Chunked::Invalid);
    }
}
