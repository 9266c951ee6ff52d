//! The receive side shared by both roles: buffered input, EOF, and head parsing state.

use super::config::{Leniency, Limits};
use super::error::RemoteError;
use super::head::{self, FieldRange, HeadScanner, HeadStatus};
use bytes::BytesMut;
use http::{Request, Response};

/// Received bytes not yet turned into events.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub(crate) buf: BytesMut,
    /// Bytes received since the connection started.
    total: u64,
    /// The peer will send nothing more.
    pub(crate) eof: bool,
    scanner: HeadScanner,
    fields: Vec<FieldRange>,
}

impl Inbox {
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.total += data.len() as u64;
    }

    /// Stream offset of `buf[0]`.
    pub(crate) fn base(&self) -> u64 {
        self.total - self.buf.len() as u64
    }

    /// Whether only blank lines (which RFC 9112 §2.2 lets a server skip before a request)
    /// remain.
    pub(crate) fn only_blank_lines(&self) -> bool {
        let mut rest = &self.buf[..];
        loop {
            rest = match rest {
                [] => return true,
                [b'\n', tail @ ..] | [b'\r', b'\n', tail @ ..] => tail,
                _ => return false,
            };
        }
    }

    #[inline]
    pub(crate) fn parse_request(
        &mut self,
        limits: &Limits,
        leniency: &Leniency,
    ) -> Result<HeadStatus<Request<()>>, RemoteError> {
        let base = self.base();
        let eof = self.eof;
        head::parse_request(
            &mut self.buf,
            &mut self.scanner,
            &mut self.fields,
            (limits, leniency),
            base,
            eof,
        )
    }

    pub(crate) fn parse_response(
        &mut self,
        limits: &Limits,
    ) -> Result<HeadStatus<Response<()>>, RemoteError> {
        let base = self.base();
        let eof = self.eof;
        head::parse_response(
            &mut self.buf,
            &mut self.scanner,
            &mut self.fields,
            limits,
            base,
            eof,
        )
    }
}
