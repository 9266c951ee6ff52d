//! Body framing decoders: Content-Length, chunked (RFC 9112 §7.1), and read-until-EOF.
//!
//! Decoders take bytes from the front of the receive buffer and hand body data out as `Bytes`
//! split off that buffer, without copying. They are resumable at any byte, so the same bytes
//! in any split give the same data and the same errors.

use super::config::Limits;
use super::error::{RemoteError, RemoteErrorKind as Kind};
use super::head::{BodyLength, HeadScanner};
use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;

/// One step of decoding.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The body is complete; trailers if the chunked body had any.
    End(Option<HeaderMap>),
    /// Waiting for more input.
    NeedMore,
}

/// Decodes one message body.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    kind: DecoderKind,
    /// Body bytes handed out so far, checked against `max_body_size`.
    received: u64,
    max_body: u64,
}

#[derive(Debug)]
enum DecoderKind {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilEof,
}

impl BodyDecoder {
    /// A decoder for `length`. A declared length over the limit fails here, before any byte
    /// of the body is read.
    pub(crate) fn new(length: BodyLength, limits: &Limits) -> Result<BodyDecoder, Kind> {
        let kind = match length {
            BodyLength::Fixed(n) if n > limits.max_body_size => return Err(Kind::BodyTooLarge),
            BodyLength::Fixed(n) => DecoderKind::Length(n),
            BodyLength::Chunked => DecoderKind::Chunked(ChunkedDecoder::new(limits)),
            BodyLength::UntilEof => DecoderKind::UntilEof,
        };
        Ok(BodyDecoder {
            kind,
            received: 0,
            max_body: limits.max_body_size,
        })
    }

    /// Whether the body is known to be empty (`Content-Length: 0` or none).
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self.kind, DecoderKind::Length(0))
    }

    /// Decodes the next step from the front of `buf`. `base` is the stream offset of
    /// `buf[0]`; `eof` says the peer will send nothing more.
    ///
    /// Data is handed out up to `max_body_size` exactly; the first byte past it is the error,
    /// so the outcome does not depend on how the input was split.
    pub(crate) fn decode(
        &mut self,
        buf: &mut BytesMut,
        base: u64,
        eof: bool,
    ) -> Result<Decoded, RemoteError> {
        let allowance = self.max_body - self.received;
        let step = match &mut self.kind {
            DecoderKind::Length(0) => Decoded::End(None),
            DecoderKind::Length(remaining) => {
                if buf.is_empty() {
                    if eof {
                        return Err(RemoteError::new(Kind::IncompleteMessage, base));
                    }
                    return Ok(Decoded::NeedMore);
                }
                let n = (*remaining).min(buf.len() as u64) as usize;
                *remaining -= n as u64;
                Decoded::Data(buf.split_to(n).freeze())
            }
            DecoderKind::UntilEof => match take_data(buf, base, u64::MAX, allowance)? {
                Some(data) => Decoded::Data(data),
                None if eof => Decoded::End(None),
                None => Decoded::NeedMore,
            },
            DecoderKind::Chunked(chunked) => chunked.decode(buf, base, eof, allowance)?,
        };
        if let Decoded::Data(data) = &step {
            self.received += data.len() as u64;
        }
        Ok(step)
    }
}

/// Splits up to `want` bytes of body data off the front of `buf`, within `allowance` (the
/// bytes left under the body limit). `None` when `buf` is empty.
fn take_data(
    buf: &mut BytesMut,
    base: u64,
    want: u64,
    allowance: u64,
) -> Result<Option<Bytes>, RemoteError> {
    if buf.is_empty() || want == 0 {
        return Ok(None);
    }
    if allowance == 0 {
        return Err(RemoteError::new(Kind::BodyTooLarge, base));
    }
    let n = want.min(allowance).min(buf.len() as u64) as usize;
    Ok(Some(buf.split_to(n).freeze()))
}

/// Where the chunked decoder is within the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkedState {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Inside the chunk size digits.
    Size,
    /// Whitespace after the size, before a `;`.
    SizeWhitespace,
    /// Inside a chunk extension, up to CR.
    Extension,
    /// After the CR that ends a chunk-size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// After the last chunk: the trailer section up to the empty line.
    Trailers,
    /// The body is complete.
    Done,
}

/// Resumable decoder of the chunked transfer coding.
#[derive(Debug)]
struct ChunkedDecoder {
    state: ChunkedState,
    /// Current chunk size while parsing; bytes left while in `Data`.
    size: u64,
    /// Extension bytes seen in this body.
    ext_bytes: usize,
    max_ext: usize,
    max_trailer: usize,
    max_trailer_fields: usize,
    trailer_scan: HeadScanner,
}

impl ChunkedDecoder {
    fn new(limits: &Limits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkedState::SizeStart,
            size: 0,
            ext_bytes: 0,
            max_ext: limits.max_chunk_ext_size,
            max_trailer: limits.max_trailer_size,
            max_trailer_fields: limits.max_headers,
            trailer_scan: HeadScanner::default(),
        }
    }

    fn decode(
        &mut self,
        buf: &mut BytesMut,
        base: u64,
        eof: bool,
        allowance: u64,
    ) -> Result<Decoded, RemoteError> {
        use ChunkedState::*;
        // Framing bytes are consumed one at a time; `at` is the stream offset of `buf[0]`.
        let start = buf.len();
        let at = |buf: &BytesMut| base + (start - buf.len()) as u64;
        loop {
            match self.state {
                Done => return Ok(Decoded::End(None)),
                Data => {
                    let Some(data) = take_data(buf, at(buf), self.size, allowance)? else {
                        return self.need_more(buf, at(buf), eof);
                    };
                    self.size -= data.len() as u64;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    return Ok(Decoded::Data(data));
                }
                Trailers => {
                    return match self.decode_trailers(buf, at(buf))? {
                        Decoded::NeedMore => self.need_more(buf, at(buf), eof),
                        step => Ok(step),
                    }
                }
                _ => {}
            }
            let Some(&byte) = buf.first() else {
                return self.need_more(buf, at(buf), eof);
            };
            let err = |kind| Err(RemoteError::new(kind, at(buf)));
            self.state = match (self.state, byte) {
                (SizeStart | Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    let digit = (byte as char).to_digit(16).unwrap_or(0);
                    match self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(digit)))
                    {
                        Some(size) => self.size = size,
                        None => return err(Kind::ChunkSizeOverflow),
                    }
                    Size
                }
                (Size | SizeWhitespace, b' ' | b'\t') => SizeWhitespace,
                (Size | SizeWhitespace, b';') => Extension,
                (Size | Extension, b'\r') => SizeLf,
                (SizeLf, b'\n') if self.size == 0 => Trailers,
                (SizeLf, b'\n') => Data,
                (SizeLf, _) => return err(Kind::InvalidLineEnding),
                (Size | Extension, b'\n') => return err(Kind::BareLfInChunk),
                (Extension, b'\t' | b' '..=b'~' | 0x80..=0xff) => {
                    self.ext_bytes += 1;
                    if self.ext_bytes > self.max_ext {
                        return err(Kind::ChunkExtensionTooLarge);
                    }
                    Extension
                }
                (Extension, _) => return err(Kind::InvalidChunkSize),
                (SizeStart | Size | SizeWhitespace, _) => return err(Kind::InvalidChunkSize),
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => SizeStart,
                (DataCr | DataLf, _) => return err(Kind::InvalidChunkTerminator),
                (Data | Trailers | Done, _) => unreachable!("handled above"),
            };
            buf.advance(1);
        }
    }

    /// Out of input: wait, or fail if the peer has closed.
    fn need_more(&self, buf: &BytesMut, at: u64, eof: bool) -> Result<Decoded, RemoteError> {
        if eof {
            Err(RemoteError::new(
                Kind::IncompleteMessage,
                at + buf.len() as u64,
            ))
        } else {
            Ok(Decoded::NeedMore)
        }
    }

    /// The trailer section: zero or more field lines, then an empty line.
    fn decode_trailers(&mut self, buf: &mut BytesMut, base: u64) -> Result<Decoded, RemoteError> {
        match &buf[..] {
            [] | [b'\r'] => return Ok(Decoded::NeedMore),
            [b'\r', b'\n', ..] => {
                buf.advance(2);
                self.state = ChunkedState::Done;
                return Ok(Decoded::End(None));
            }
            [b'\n', ..] => return Err(RemoteError::new(Kind::BareLfInChunk, base)),
            [b'\r', _, ..] => return Err(RemoteError::new(Kind::InvalidLineEnding, base)),
            _ => {}
        }
        if !self.trailer_scan.ready(buf, self.max_trailer) {
            return Ok(Decoded::NeedMore);
        }
        let view = &buf[..buf.len().min(self.max_trailer)];
        let mut slots = vec![httparse::EMPTY_HEADER; self.max_trailer_fields];
        let (len, fields) = match httparse::parse_headers(view, &mut slots) {
            Ok(httparse::Status::Complete(done)) => done,
            Ok(httparse::Status::Partial) => {
                return Err(RemoteError::new(Kind::TrailersTooLarge, base));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(RemoteError::new(Kind::TrailersTooLarge, base));
            }
            Err(_) => return Err(RemoteError::new(Kind::InvalidTrailers, base)),
        };
        // httparse takes a bare LF as a line end; the chunk lines around it may not, and a
        // proxy that does not would read a different trailer section (RFC 9112 §2.2).
        if let Some(lf) = bare_lf_at(&view[..len]) {
            return Err(RemoteError::new(Kind::BareLfInChunk, base + lf as u64));
        }
        let mut trailers = HeaderMap::with_capacity(fields.len());
        for field in fields {
            let name = http::HeaderName::from_bytes(field.name.as_bytes());
            let value = http::HeaderValue::from_bytes(field.value);
            match (name, value) {
                (Ok(name), Ok(value)) => {
                    trailers.append(name, value);
                }
                _ => return Err(RemoteError::new(Kind::InvalidTrailers, base)),
            }
        }
        buf.advance(len);
        self.state = ChunkedState::Done;
        Ok(Decoded::End(Some(trailers)))
    }
}

/// The position of the first LF in `lines` not preceded by CR.
fn bare_lf_at(lines: &[u8]) -> Option<usize> {
    lines
        .iter()
        .enumerate()
        .position(|(i, &b)| b == b'\n' && (i == 0 || lines[i - 1] != b'\r'))
}
