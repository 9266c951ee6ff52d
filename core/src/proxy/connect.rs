//! The HTTP `CONNECT` tunnel handshake (RFC 9110 §9.3.6): one request, one response head.
//!
//! A 2xx answer opens the tunnel; its `Content-Length` or `Transfer-Encoding`, if any, is
//! ignored as the RFC requires (the bytes after the head are the target's). Interim 1xx
//! answers are skipped. Any other status is [`ProxyError::Refused`] with the proxy's fields.

use super::{MalformedReason, Progress, ProxyError, ProxyEvent};
use crate::time::Instant;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The largest response head accepted from a proxy.
const MAX_HEAD: usize = 16 * 1024;

/// The most header fields accepted in a proxy's response head.
const MAX_FIELDS: usize = 64;

/// The client's side of a `CONNECT` handshake with an HTTP proxy.
#[derive(Debug)]
pub struct ConnectTunnel {
    progress: Progress,
}

impl ConnectTunnel {
    /// A handshake asking for a tunnel to `host:port` (an IPv6 address without brackets is
    /// bracketed), with `fields` added to the request (`Proxy-Authorization`, a
    /// `User-Agent`), failing with [`ProxyError::TimedOut`] at `deadline`.
    pub fn new(
        host: &str,
        port: u16,
        fields: &HeaderMap,
        deadline: Option<Instant>,
    ) -> ConnectTunnel {
        let mut progress = Progress {
            deadline,
            ..Progress::default()
        };
        match request(host, port, fields) {
            Some(bytes) => progress.send(&bytes),
            None => progress.fail(ProxyError::InvalidTarget),
        }
        ConnectTunnel { progress }
    }

    /// The request to write (once).
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Bytes> {
        self.progress.poll_transmit()
    }

    /// Bytes received from the proxy.
    pub fn handle_input(&mut self, _now: Instant, data: &[u8]) {
        if self.progress.is_done() {
            return;
        }
        self.progress.inbox.extend_from_slice(data);
        self.parse();
    }

    /// The proxy closed its side.
    pub fn handle_eof(&mut self) {
        self.progress.fail(ProxyError::Closed);
    }

    /// The deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.progress.handle_timeout(now);
    }

    /// The handshake's deadline while it runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.progress.poll_timeout()
    }

    /// The outcome, once.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.progress.poll_event()
    }

    /// Parses every complete response head in the inbox: skips 1xx, ends on the final one.
    fn parse(&mut self) {
        let mut start = 0;
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
            let mut response = httparse::Response::new(&mut fields);
            let inbox = &self.progress.inbox[start..];
            let length = match response.parse(inbox) {
                Ok(httparse::Status::Complete(length)) => length,
                Ok(httparse::Status::Partial) => {
                    if inbox.len() > MAX_HEAD {
                        return self.malformed(MalformedReason::HeadTooLarge, start);
                    }
                    return;
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return self.malformed(MalformedReason::HeadTooLarge, start)
                }
                Err(_) => return self.malformed(MalformedReason::InvalidHttp, start),
            };
            if length > MAX_HEAD {
                return self.malformed(MalformedReason::HeadTooLarge, start);
            }
            let status = response
                .code
                .and_then(|code| StatusCode::from_u16(code).ok());
            let Some(status) = status else {
                return self.malformed(MalformedReason::InvalidHttp, start);
            };
            if status.is_informational() {
                start += length;
                continue;
            }
            if status.is_success() {
                return self.progress.establish(start + length);
            }
            let mut headers = HeaderMap::new();
            for field in response.headers.iter() {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(field.name.as_bytes()),
                    HeaderValue::from_bytes(field.value),
                ) {
                    headers.append(name, value);
                }
            }
            return self.progress.fail(ProxyError::Refused {
                status,
                headers: Box::new(headers),
            });
        }
    }

    fn malformed(&mut self, reason: MalformedReason, offset: usize) {
        self.progress.fail(ProxyError::Malformed { reason, offset });
    }
}

/// `CONNECT host:port HTTP/1.1` with `Host` and the caller's fields; `None` for a host that
/// cannot be an authority.
fn request(host: &str, port: u16, fields: &HeaderMap) -> Option<Bytes> {
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // The same grammar the server checks `Host` with.
    if host.is_empty() || !crate::h1::is_valid_host(authority.as_bytes()) {
        return None;
    }
    let mut out = BytesMut::with_capacity(64 + authority.len() * 2);
    out.put_slice(b"CONNECT ");
    out.put_slice(authority.as_bytes());
    out.put_slice(b" HTTP/1.1\r\nHost: ");
    out.put_slice(authority.as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in fields {
        if name == http::header::HOST {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    Some(out.freeze())
}
