//! The client side of an HTTP/1.1 connection: one request at a time (no pipelining, like
//! hyper and h11), then the response, then the connection is reusable or closed.
//!
//! The driving contract is the server's: after any input or command, drain
//! [`ClientConnection::poll_event`] and [`ClientConnection::poll_transmit`], then check
//! [`ClientConnection::is_closed`] / [`ClientConnection::is_reusable`].

use super::body::{BodyDecoder, Decoded};
use super::config::ClientConnectionConfig;
use super::encode::{self, BodyEncoder, Output};
use super::error::{Error, LocalError, RemoteError, RemoteErrorKind};
use super::events::ClientEvent;
use super::head::{self, BodyLength, HeadStatus};
use super::recv::Inbox;
use crate::time::Instant;
use bytes::{BufMut, Bytes};
use http::{HeaderMap, Method, Request, StatusCode};

/// Our half: the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Ready for a request.
    Idle,
    /// Sending the request body.
    Body(BodyEncoder),
    /// The request is complete.
    Done,
    /// No more HTTP will be written.
    Closed,
}

/// The peer's half: the response.
#[derive(Debug)]
enum Read {
    /// No request outstanding.
    Idle,
    /// Waiting for a response head (after any interim ones).
    Head,
    /// Reading the response body.
    Body(BodyDecoder),
    /// The response is complete; waiting for our request to finish.
    Done,
    /// The server accepted a switch; `Upgraded` not yet reported.
    Switched,
    /// Nothing more will be read.
    Stopped,
}

/// What we asked for in the request in flight.
#[derive(Debug, Clone)]
struct Exchange {
    method: Method,
    upgrade: bool,
    waiting_for_continue: bool,
}

/// A sans-IO HTTP/1.1 client connection.
///
/// ```
/// use tether_core::h1::{ClientConnection, ClientConnectionConfig, ClientEvent};
/// use tether_core::time::Instant;
/// use http::Request;
///
/// let mut conn = ClientConnection::new(ClientConnectionConfig::default());
/// let request = Request::get("http://example.com/hello").body(()).unwrap();
/// conn.send_request(&request).unwrap();
/// conn.send_end(None).unwrap();
/// let wire = conn.poll_transmit(Instant::ZERO).unwrap();
/// assert_eq!(&wire[..], b"GET /hello HTTP/1.1\r\nhost: example.com\r\n\r\n");
///
/// conn.handle_input(Instant::ZERO, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi");
/// let Some(ClientEvent::Response(response)) = conn.poll_event() else { panic!() };
/// assert_eq!(response.status(), 200);
/// assert!(matches!(conn.poll_event(), Some(ClientEvent::Data(d)) if d == "hi"));
/// assert!(matches!(conn.poll_event(), Some(ClientEvent::End { .. })));
/// assert!(conn.is_reusable());
/// ```
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConnectionConfig,
    inbox: Inbox,
    read: Read,
    write: Write,
    out: Output,
    exchange: Option<Exchange>,
    keep_alive: bool,
}

impl ClientConnection {
    /// A connection ready for its first request. Opens nothing: the transport is the
    /// caller's.
    pub fn new(config: ClientConnectionConfig) -> ClientConnection {
        ClientConnection {
            config,
            inbox: Inbox::default(),
            read: Read::Idle,
            write: Write::Idle,
            out: Output::default(),
            exchange: None,
            keep_alive: true,
        }
    }

    // ---- getters ----

    /// Whether another request may be sent on this connection now: the last exchange
    /// finished cleanly and both sides agreed to keep the connection alive.
    pub fn is_reusable(&self) -> bool {
        self.keep_alive
            && !self.inbox.eof
            && matches!(self.read, Read::Idle)
            && self.write == Write::Idle
            && self.inbox.buf.is_empty()
    }

    /// Whether the connection is finished: output drained and no more HTTP will happen.
    pub fn is_closed(&self) -> bool {
        self.write == Write::Closed && self.out.is_empty()
    }

    /// Whether the request asked for `100 Continue` and neither it nor a final response has
    /// arrived yet: the body should wait (bounded by a timeout of the caller's choosing).
    pub fn is_waiting_for_continue(&self) -> bool {
        self.exchange
            .as_ref()
            .is_some_and(|e| e.waiting_for_continue)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConnectionConfig {
        &self.config
    }

    // ---- inputs ----

    /// Bytes received from the server at `now`. Input after EOF or after the connection
    /// stopped reading is ignored. (The client connection arms no deadline itself, the
    /// request's [`RequestTimer`](crate::time::RequestTimer) does; `now` keeps the one
    /// driving contract of every state machine.)
    pub fn handle_input(&mut self, _now: Instant, data: &[u8]) {
        if !self.inbox.eof && !matches!(self.read, Read::Stopped) {
            self.inbox.push(data);
        }
    }

    /// The server closed its sending side (EOF).
    pub fn handle_eof(&mut self) {
        self.inbox.eof = true;
    }

    // ---- commands ----

    /// Sends a request head. The target is origin-form (`/path?query`) from the URI, or
    /// authority-form for CONNECT; `Host` is added from the URI when missing. The body is
    /// framed by `Content-Length` or `Transfer-Encoding: chunked`; with neither, there is no
    /// body. Always finish with [`send_end`](Self::send_end).
    pub fn send_request(&mut self, request: &Request<()>) -> Result<(), Error> {
        match (&self.read, self.write) {
            (Read::Idle, Write::Idle) if self.keep_alive => {}
            (_, Write::Closed) => {
                return Err(LocalError::state("send a request", "connection closed").into())
            }
            _ if !self.keep_alive => {
                return Err(LocalError::state("send a request", "connection not reusable").into())
            }
            _ => {
                return Err(
                    LocalError::state("send a request", "previous exchange not finished").into(),
                )
            }
        }
        let method = request.method();
        let uri = request.uri();
        let headers = request.headers();
        let facts = head::facts_of(headers)
            .map_err(|_| LocalError::InvalidHead("invalid framing headers"))?;
        let target = if *method == Method::CONNECT {
            uri.authority()
                .map(|a| a.as_str())
                .ok_or(LocalError::InvalidHead("CONNECT needs an authority"))?
        } else {
            uri.path_and_query().map_or("/", |p| p.as_str())
        };
        let authority = uri.authority().map(|a| a.as_str());
        let authority = authority.map(|a| a.rsplit('@').next().unwrap_or(a));
        if facts.host_count == 0 && authority.is_none() {
            return Err(
                LocalError::InvalidHead("no Host header and no authority in the URI").into(),
            );
        }
        if facts.content_length.is_some() && facts.has_te {
            return Err(
                LocalError::InvalidHead("both Content-Length and Transfer-Encoding").into(),
            );
        }
        if facts.has_te && !facts.te_chunked_last {
            return Err(LocalError::InvalidHead("Transfer-Encoding must end in chunked").into());
        }
        let encoder = match facts.content_length {
            Some(n) => BodyEncoder::Length(n),
            None if facts.has_te => BodyEncoder::Chunked,
            None => BodyEncoder::None,
        };

        let absolute = self.config.absolute_form && *method != Method::CONNECT;
        let out = self.out.staging();
        match (absolute, uri.scheme_str(), authority) {
            (true, Some(scheme), Some(authority)) => {
                out.put_slice(method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(scheme.as_bytes());
                out.put_slice(b"://");
                out.put_slice(authority.as_bytes());
                out.put_slice(target.as_bytes());
                out.put_slice(b" HTTP/1.1\r\n");
            }
            _ => encode::write_request_line(out, method, target),
        }
        if facts.host_count == 0 {
            if let Some(authority) = authority {
                out.put_slice(b"host: ");
                out.put_slice(authority.as_bytes());
                out.put_slice(b"\r\n");
            }
        }
        encode::write_fields(out, headers);
        out.put_slice(b"\r\n");

        self.keep_alive = !facts.conn_close;
        self.exchange = Some(Exchange {
            method: method.clone(),
            upgrade: facts.has_upgrade && facts.conn_upgrade,
            waiting_for_continue: facts.expect_continue && encoder != BodyEncoder::None,
        });
        self.write = Write::Body(encoder);
        self.read = Read::Head;
        Ok(())
    }

    /// Sends a piece of the request body (1 KiB or more is queued without a copy).
    pub fn send_data(&mut self, data: Bytes) -> Result<(), Error> {
        let Write::Body(encoder) = &mut self.write else {
            return Err(LocalError::state("send body data", "no request body in progress").into());
        };
        encoder.encode_data(data, &mut self.out)?;
        Ok(())
    }

    /// Ends the request, with trailers if it is chunked.
    pub fn send_end(&mut self, trailers: Option<&HeaderMap>) -> Result<(), Error> {
        let Write::Body(encoder) = self.write else {
            return Err(LocalError::state("end the request", "no request body in progress").into());
        };
        encoder.encode_end(trailers, &mut self.out)?;
        self.write = Write::Done;
        self.try_next_cycle();
        Ok(())
    }

    // ---- outputs ----

    /// The next event, or `None` when more input is needed or nothing is expected.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        match &mut self.read {
            Read::Idle => {
                if !self.inbox.buf.is_empty() {
                    let at = self.inbox.base();
                    return Some(
                        self.fail(RemoteError::new(RemoteErrorKind::UnexpectedResponse, at)),
                    );
                }
                if self.inbox.eof {
                    self.stop();
                    return Some(ClientEvent::Closed);
                }
                None
            }
            Read::Head => match self.inbox.parse_response(&self.config.limits) {
                Ok(HeadStatus::Complete(parsed)) => Some(self.start_response(parsed)),
                Ok(HeadStatus::Partial) => None,
                Err(e) => Some(self.fail(e)),
            },
            Read::Body(decoder) => {
                let base = self.inbox.base();
                match decoder.decode(&mut self.inbox.buf, base, self.inbox.eof) {
                    Ok(Decoded::Data(data)) => Some(ClientEvent::Data(data)),
                    Ok(Decoded::End(trailers)) => {
                        self.read = Read::Done;
                        if self.write != Write::Done {
                            // The server answered before our body was complete.
                            self.keep_alive = false;
                        }
                        self.try_next_cycle();
                        Some(ClientEvent::End { trailers })
                    }
                    Ok(Decoded::NeedMore) => None,
                    Err(e) => Some(self.fail(e)),
                }
            }
            Read::Switched => {
                self.read = Read::Stopped;
                Some(ClientEvent::Upgraded {
                    trailing: self.inbox.buf.split().freeze(),
                })
            }
            Read::Done | Read::Stopped => None,
        }
    }

    /// The next bytes to write to the server, oldest first; `now` is when they are handed
    /// out.
    #[must_use]
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Bytes> {
        self.out.pop()
    }

    // ---- internals ----

    fn start_response(&mut self, parsed: head::Parsed<http::Response<()>>) -> ClientEvent {
        let response = parsed.message;
        let facts = parsed.facts;
        let status = response.status();
        let base = self.inbox.base();
        let Some(exchange) = self.exchange.as_mut() else {
            return self.fail(RemoteError::new(RemoteErrorKind::UnexpectedResponse, base));
        };
        if status == StatusCode::CONTINUE || !status.is_informational() {
            exchange.waiting_for_continue = false;
        }
        let switching = if status == StatusCode::SWITCHING_PROTOCOLS {
            if !exchange.upgrade {
                return self.fail(RemoteError::new(RemoteErrorKind::UnexpectedResponse, base));
            }
            true
        } else {
            exchange.method == Method::CONNECT && status.is_success()
        };
        if status.is_informational() && !switching {
            return ClientEvent::Informational(response);
        }
        if switching {
            self.read = Read::Switched;
            self.write = Write::Closed;
            self.keep_alive = false;
            return ClientEvent::Response(response);
        }

        let length = head::response_body_length(&exchange.method, status, &facts);
        self.keep_alive &= facts.wants_keep_alive(response.version())
            && length != BodyLength::UntilEof
            && !(facts.has_te && facts.content_length.is_some());
        match BodyDecoder::new(length, &self.config.limits) {
            Ok(decoder) => {
                self.read = Read::Body(decoder);
                ClientEvent::Response(response)
            }
            Err(kind) => self.fail(RemoteError::new(kind, base)),
        }
    }

    fn try_next_cycle(&mut self) {
        if !matches!(self.read, Read::Done) || self.write != Write::Done {
            return;
        }
        if self.keep_alive {
            self.read = Read::Idle;
            self.write = Write::Idle;
            self.exchange = None;
        } else {
            self.stop();
        }
    }

    fn stop(&mut self) {
        self.read = Read::Stopped;
        self.write = Write::Closed;
        self.keep_alive = false;
    }

    fn fail(&mut self, error: RemoteError) -> ClientEvent {
        self.stop();
        ClientEvent::Error(error.into())
    }
}
