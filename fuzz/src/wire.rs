//! Reading back what a server wrote: a strict parser of HTTP/1.1 response streams.
//!
//! The core writes the responses, so they must parse: anything this parser cannot read is a
//! framing bug and it panics. Interim `1xx` responses are skipped.

/// One final response read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    /// Status code.
    pub status: u16,
    /// Header fields, names lowercased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, decoded (chunked framing removed).
    pub body: Vec<u8>,
    /// Whether the response ends the connection: `Connection: close`, or a body delimited by
    /// the end of the stream.
    pub close: bool,
}

impl WireResponse {
    /// The first value of a header field, if present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Whether a comma-separated header value (e.g. `Connection`) lists `token`, ignoring case.
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Reads every final response in `wire`. `is_head(i)` says whether the `i`-th final response
/// answers a `HEAD` request (it then has no body whatever its framing headers say).
///
/// Panics on anything that is not a well-framed response stream, including a
/// close-delimited body followed by nothing that could end it and a truncated response.
pub fn read_responses(wire: &[u8], mut is_head: impl FnMut(usize) -> bool) -> Vec<WireResponse> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let rest = &wire[at..];
        let head_end = find(rest, b"\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "truncated response head: {:?}",
                String::from_utf8_lossy(rest)
            )
        });
        let head = &rest[..head_end];
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line = lines.next().unwrap_or_default();
        let status = parse_status_line(status_line);
        let headers: Vec<(String, Vec<u8>)> = lines
            .map(|line| {
                let colon = line
                    .iter()
                    .position(|&b| b == b':')
                    .unwrap_or_else(|| panic!("header line without a colon: {line:?}"));
                let name = std::str::from_utf8(&line[..colon]).expect("ASCII field name");
                assert!(
                    !name.is_empty() && !name.contains(|c: char| c.is_ascii_whitespace()),
                    "bad field name {name:?}"
                );
                (
                    name.to_ascii_lowercase(),
                    line[colon + 1..].trim_ascii().to_vec(),
                )
            })
            .collect();
        at += head_end + 4;
        if (100..200).contains(&status) {
            assert_ne!(status, 101, "the application never switches protocols");
            continue;
        }
        let mut response = WireResponse {
            status,
            headers,
            body: Vec::new(),
            close: false,
        };
        response.close = response
            .headers
            .iter()
            .any(|(n, v)| n == "connection" && has_token(v, "close"));
        let length: Vec<&[u8]> = response
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.as_slice())
            .collect();
        let chunked = response
            .headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && has_token(v, "chunked"));
        assert!(
            length.len() <= 1 && !(chunked && !length.is_empty()),
            "conflicting framing headers: {:?}",
            response.headers
        );
        let no_body = is_head(out.len()) || status == 204 || status == 304;
        if no_body {
            // Nothing to read.
        } else if chunked {
            at += read_chunked(&wire[at..], &mut response.body);
        } else if let Some(value) = length.first() {
            let n: usize = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad content-length {value:?}"));
            assert!(
                wire.len() - at >= n,
                "body shorter than its content-length {n}: {} bytes left",
                wire.len() - at
            );
            response.body = wire[at..at + n].to_vec();
            at += n;
        } else {
            // Delimited by closing the connection: everything left.
            response.body = wire[at..].to_vec();
            response.close = true;
            at = wire.len();
        }
        out.push(response);
    }
    out
}

fn parse_status_line(line: &[u8]) -> u16 {
    let text = std::str::from_utf8(line).expect("ASCII status line");
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    assert!(
        version == "HTTP/1.1" || version == "HTTP/1.0",
        "bad status line {text:?}"
    );
    let code = parts.next().unwrap_or_default();
    assert!(
        code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()),
        "bad status code in {text:?}"
    );
    code.parse().expect("three digits")
}

/// Decodes a chunked body at the start of `wire` into `body`; returns the bytes it used.
fn read_chunked(wire: &[u8], body: &mut Vec<u8>) -> usize {
    let mut at = 0;
    loop {
        let line_end = find(&wire[at..], b"\r\n").expect("truncated chunk size line") + at;
        let size_text = std::str::from_utf8(&wire[at..line_end]).expect("ASCII chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_text:?}"));
        at = line_end + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let end = find(&wire[at..], b"\r\n").expect("truncated trailer section") + at;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return at;
                }
            }
        }
        assert!(wire.len() - at >= size + 2, "truncated chunk");
        body.extend_from_slice(&wire[at..at + size]);
        assert_eq!(
            &wire[at + size..at + size + 2],
            b"\r\n",
            "chunk without CRLF"
        );
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lengths_chunks_head_and_close() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi\
HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n\
HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx: 1\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nrest";
        let responses = read_responses(wire, |i| i == 1);
        let bodies: Vec<&[u8]> = responses.iter().map(|r| r.body.as_slice()).collect();
        assert_eq!(bodies, [&b"hi"[..], b"", b"abc", b"", b"rest"]);
        assert_eq!(
            responses.iter().map(|r| r.close).collect::<Vec<_>>(),
            [false, false, false, false, true]
        );
    }

    #[test]
    #[should_panic(expected = "shorter than its content-length")]
    fn short_body_panics() {
        read_responses(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhi", |_| false);
    }
}
