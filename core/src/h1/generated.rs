//! Fields the core writes into a response head itself, from values the adapter already has:
//! the `Date` and the length of a body known in full. Handing them over as plain values
//! spares the adapter a `HeaderMap` insertion (a hash, a possible allocation, a drop) per
//! response for two fields that every response of an origin server carries.

use bytes::{BufMut, BytesMut};
use http::HeaderValue;

/// Fields for [`ServerConnection::send_response_with`](super::ServerConnection::send_response_with)
/// to write after the response's own header fields.
///
/// A field the response's `HeaderMap` already has wins: a `Date` in the map is sent as it
/// is, and a `Content-Length` or `Transfer-Encoding` in the map decides the framing (the
/// length here is then ignored).
///
/// ```
/// use http::HeaderValue;
/// use tether_core::h1::GeneratedFields;
///
/// let date = HeaderValue::from_static("Mon, 30 Nov 2026 18:00:00 GMT");
/// let fields = GeneratedFields::new().date(&date).content_length(13);
/// # let _ = fields;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GeneratedFields<'a> {
    pub(crate) date: Option<&'a HeaderValue>,
    pub(crate) content_length: Option<u64>,
}

impl<'a> GeneratedFields<'a> {
    /// No generated fields: the response's `HeaderMap` says everything.
    pub fn new() -> GeneratedFields<'a> {
        GeneratedFields::default()
    }

    /// Sends `Date: value` unless the response has a `Date` of its own (an origin server
    /// with a clock must send one, RFC 9110 §6.6.1; the core has no wall clock).
    pub fn date(mut self, value: &'a HeaderValue) -> GeneratedFields<'a> {
        self.date = Some(value);
        self
    }

    /// The body is exactly `length` bytes: sent as `Content-Length` and used as the framing,
    /// with the same rules as a `Content-Length` in the map (none on `204` or a switch of
    /// protocols, and the body must then be exactly this long).
    pub fn content_length(mut self, length: u64) -> GeneratedFields<'a> {
        self.content_length = Some(length);
        self
    }
}

/// Writes `content-length: n\r\n`.
pub(crate) fn write_content_length(out: &mut BytesMut, n: u64) {
    out.put_slice(b"content-length: ");
    write_decimal(out, n);
    out.put_slice(b"\r\n");
}

/// Writes `date: value\r\n`.
pub(crate) fn write_date(out: &mut BytesMut, value: &HeaderValue) {
    out.put_slice(b"date: ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

fn write_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_from_zero_to_the_largest_length() {
        for n in [0, 7, 10, 13, 999, 1000, 65_536, u64::MAX] {
            let mut out = BytesMut::new();
            write_content_length(&mut out, n);
            assert_eq!(out, format!("content-length: {n}\r\n").as_bytes());
        }
    }
}
