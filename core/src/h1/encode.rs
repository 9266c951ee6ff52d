//! Writing messages: heads, body framing (Content-Length, chunked, close-delimited) and the
//! output queue that `poll_transmit` drains.

use super::error::LocalError;
pub(crate) use crate::output::Output;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};

/// Writes `name: value\r\n` for every field.
pub(crate) fn write_fields(out: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
}

/// Writes a status line `HTTP/1.1 200 OK\r\n`; the most common ones in one copy.
pub(crate) fn write_status_line(out: &mut BytesMut, status: StatusCode) {
    let common: &[u8] = match status.as_u16() {
        200 => b"HTTP/1.1 200 OK\r\n",
        204 => b"HTTP/1.1 204 No Content\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        _ => b"",
    };
    if !common.is_empty() {
        out.put_slice(common);
        return;
    }
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
}

/// Writes a request line `GET /path HTTP/1.1\r\n`.
pub(crate) fn write_request_line(out: &mut BytesMut, method: &Method, target: &str) {
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
}

/// Writes a complete minimal response with an empty body, for answers the core gives on its
/// own (errors, timeouts, `100 Continue`).
pub(crate) fn write_bare_response(out: &mut BytesMut, status: StatusCode, close: bool) {
    write_status_line(out, status);
    if close {
        out.put_slice(b"connection: close\r\n");
    }
    if !status.is_informational() {
        out.put_slice(b"content-length: 0\r\n");
    }
    out.put_slice(b"\r\n");
}

/// How an outgoing body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEncoder {
    /// No body may be sent (1xx, 204, 304, bodiless request).
    None,
    /// A response to HEAD: body bytes are accepted and dropped.
    Discard,
    /// Exactly this many more bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Delimited by closing the connection (responses to peers that cannot take chunked).
    UntilClose,
}

impl BodyEncoder {
    /// Queues body bytes in this framing.
    pub(crate) fn encode_data(&mut self, data: Bytes, out: &mut Output) -> Result<(), LocalError> {
        match self {
            BodyEncoder::None if data.is_empty() => Ok(()),
            BodyEncoder::None => Err(LocalError::BodyNotAllowed),
            BodyEncoder::Discard => Ok(()),
            BodyEncoder::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(LocalError::BodyTooLong);
                }
                *remaining -= data.len() as u64;
                out.push(data);
                Ok(())
            }
            BodyEncoder::Chunked => {
                // An empty chunk would end the body: write nothing instead.
                if !data.is_empty() {
                    let staging = out.staging();
                    write_hex(staging, data.len() as u64);
                    staging.put_slice(b"\r\n");
                    out.push(data);
                    out.staging().put_slice(b"\r\n");
                }
                Ok(())
            }
            BodyEncoder::UntilClose => {
                out.push(data);
                Ok(())
            }
        }
    }

    /// Ends the body, with trailers if chunked.
    pub(crate) fn encode_end(
        &self,
        trailers: Option<&HeaderMap>,
        out: &mut Output,
    ) -> Result<(), LocalError> {
        let has_trailers = trailers.is_some_and(|t| !t.is_empty());
        match self {
            BodyEncoder::Length(n) if *n > 0 => Err(LocalError::BodyTooShort),
            BodyEncoder::Chunked => {
                let staging = out.staging();
                staging.put_slice(b"0\r\n");
                if let Some(trailers) = trailers {
                    write_fields(staging, trailers);
                }
                staging.put_slice(b"\r\n");
                Ok(())
            }
            _ if has_trailers => Err(LocalError::TrailersNotAllowed),
            _ => Ok(()),
        }
    }
}

fn write_hex(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(out: &mut Output) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(b) = out.pop() {
            all.extend_from_slice(&b);
        }
        all
    }

    #[test]
    fn every_status_line_has_its_code_and_reason() {
        for code in 100..=999 {
            let status = StatusCode::from_u16(code).unwrap();
            let mut out = BytesMut::new();
            write_status_line(&mut out, status);
            let reason = status.canonical_reason().unwrap_or("");
            assert_eq!(out, format!("HTTP/1.1 {code} {reason}\r\n").as_bytes());
        }
    }

    #[test]
    fn chunked_framing_and_trailers() {
        let mut out = Output::default();
        let mut enc = BodyEncoder::Chunked;
        enc.encode_data(Bytes::from_static(b"hello"), &mut out)
            .unwrap();
        enc.encode_data(Bytes::new(), &mut out).unwrap();
        enc.encode_data(Bytes::from(vec![b'x'; 4096]), &mut out)
            .unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "abc".parse().unwrap());
        enc.encode_end(Some(&trailers), &mut out).unwrap();
        let mut expected = b"5\r\nhello\r\n1000\r\n".to_vec();
        expected.extend(vec![b'x'; 4096]);
        expected.extend_from_slice(b"\r\n0\r\nx-sum: abc\r\n\r\n");
        assert_eq!(drain(&mut out), expected);
    }

    #[test]
    fn content_length_is_enforced() {
        let mut out = Output::default();
        let mut enc = BodyEncoder::Length(3);
        assert_eq!(
            enc.encode_data(Bytes::from_static(b"abcd"), &mut out),
            Err(LocalError::BodyTooLong)
        );
        enc.encode_data(Bytes::from_static(b"ab"), &mut out)
            .unwrap();
        assert_eq!(
            enc.encode_end(None, &mut out),
            Err(LocalError::BodyTooShort)
        );
        enc.encode_data(Bytes::from_static(b"c"), &mut out).unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x", "y".parse().unwrap());
        assert_eq!(
            enc.encode_end(Some(&trailers), &mut out),
            Err(LocalError::TrailersNotAllowed)
        );
        enc.encode_end(None, &mut out).unwrap();
        assert_eq!(drain(&mut out), b"abc");
    }

    #[test]
    fn no_body_rejects_data() {
        let mut out = Output::default();
        let mut enc = BodyEncoder::None;
        enc.encode_data(Bytes::new(), &mut out).unwrap();
        assert_eq!(
            enc.encode_data(Bytes::from_static(b"x"), &mut out),
            Err(LocalError::BodyNotAllowed)
        );
    }

    #[test]
    fn hex_sizes() {
        for (n, s) in [
            (0u64, "0"),
            (10, "a"),
            (255, "ff"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            let mut b = BytesMut::new();
            write_hex(&mut b, n);
            assert_eq!(&b[..], s.as_bytes());
        }
    }
}
