//! The server side of an HTTP/1.1 connection.
//!
//! # Theory of operation
//!
//! Two half-machines run side by side: `Read` follows the peer's request, `Write` follows our
//! response. One exchange (a request and its response) is a *cycle*. When both halves are
//! done and the connection may be kept alive, both reset and the next pipelined request, if
//! already buffered, is parsed; until then it waits in the buffer, so requests are answered
//! strictly in order.
//!
//! # Driving contract
//!
//! After any `handle_*` call or command, drain in this order: [`ServerConnection::poll_event`]
//! until `None`, [`ServerConnection::poll_transmit`] until `None` (writing the bytes out),
//! then check [`ServerConnection::is_closed`] and sleep until
//! [`ServerConnection::poll_timeout`] or more input.

use super::body::{BodyDecoder, Decoded};
use super::config::ServerConnectionConfig;
use super::encode::{self, BodyEncoder, Output};
use super::error::{Error, LocalError, RemoteError, RemoteErrorKind};
use super::events::{RequestBody, ServerEvent};
use super::generated::{self, GeneratedFields};
use super::head::{self, BodyLength, HeadStatus};
use super::recv::Inbox;
use crate::time::{Deadline, Instant};
use bytes::{BufMut, Bytes};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};

/// How many unconsumed bytes may pile up before [`ServerConnection::wants_input`] says stop.
const READ_AHEAD: usize = 64 * 1024;

/// The peer's half: where we are in reading its request.
#[derive(Debug)]
enum Read {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Reading a request body.
    Body(BodyDecoder),
    /// The request is complete; later bytes wait for the next cycle.
    Done,
    /// The request asked for an upgrade or CONNECT; later bytes wait for our answer.
    MightSwitch,
    /// We accepted the switch; `Upgraded` not yet reported.
    Switched,
    /// Nothing more will be read (closed, failed, or switched and reported).
    Stopped,
}

/// Our half: where we are in writing the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// No request to answer yet.
    Idle,
    /// A request head arrived; a response head is owed.
    Respond,
    /// Writing the response body.
    Body(BodyEncoder),
    /// The response is complete; waiting for the request to finish.
    Done,
    /// No more HTTP will be written.
    Closed,
}

/// Which read deadline is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadTimer {
    Head,
    KeepAlive,
    Body,
}

/// What we know about the request being answered.
#[derive(Debug, Clone, Default)]
struct Exchange {
    head_request: bool,
    connect: bool,
    http10: bool,
    upgrade_requested: bool,
    expect_continue: bool,
    continue_sent: bool,
}

/// A sans-IO HTTP/1.1 server connection: bytes in, [`ServerEvent`]s out; responses in,
/// bytes out; deadlines through `poll_timeout`/`handle_timeout`.
///
/// ```
/// use tether_core::h1::{ServerConnection, ServerConnectionConfig, ServerEvent};
/// use tether_core::time::Instant;
/// use http::Response;
///
/// let mut conn = ServerConnection::new(ServerConnectionConfig::default(), Instant::ZERO);
/// conn.handle_input(Instant::ZERO, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
/// let Some(ServerEvent::Request { head, body }) = conn.poll_event() else { panic!() };
/// assert_eq!(head.uri().path(), "/");
/// assert!(body.is_empty());
/// assert!(matches!(conn.poll_event(), Some(ServerEvent::End { .. })));
///
/// let response = Response::builder().header("content-length", "2").body(()).unwrap();
/// conn.send_response(&response).unwrap();
/// conn.send_data("hi".into()).unwrap();
/// conn.send_end(None).unwrap();
/// let mut wire = Vec::new();
/// while let Some(bytes) = conn.poll_transmit(Instant::ZERO) {
///     wire.extend_from_slice(&bytes);
/// }
/// assert_eq!(wire, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi");
/// ```
#[derive(Debug)]
pub struct ServerConnection {
    config: ServerConnectionConfig,
    inbox: Inbox,
    read: Read,
    write: Write,
    out: Output,
    exchange: Exchange,
    keep_alive: bool,
    /// An event produced outside `poll_event` (a timeout), reported next.
    pending: Option<ServerEvent>,
    deadline: Option<Deadline<ReadTimer>>,
    /// A cycle ended without a clock reading; the idle deadline is armed at the next `now`.
    arm_idle: bool,
    last_input: Instant,
    /// Whether any request was ever received (the first head's deadline runs from the start).
    requests: u64,
}

impl ServerConnection {
    /// A connection that started at `now`. The first request's head deadline runs from here.
    pub fn new(config: ServerConnectionConfig, now: Instant) -> ServerConnection {
        let deadline = Deadline::after(now, config.timeouts.head, ReadTimer::Head);
        ServerConnection {
            config,
            inbox: Inbox::default(),
            read: Read::Head,
            write: Write::Idle,
            out: Output::default(),
            exchange: Exchange::default(),
            keep_alive: true,
            pending: None,
            deadline,
            arm_idle: false,
            last_input: now,
            requests: 0,
        }
    }

    // ---- getters ----

    /// Whether the connection is finished: all output has been handed out and no more HTTP
    /// will happen. Close the transport.
    pub fn is_closed(&self) -> bool {
        self.write == Write::Closed && self.out.is_empty()
    }

    /// Whether reading more input is useful now. `false` while enough unconsumed input is
    /// buffered (the application is behind, or pipelined requests wait), after EOF, and once
    /// the connection is closed or switched: stop reading from the transport until it is
    /// `true` again (backpressure).
    pub fn wants_input(&self) -> bool {
        !self.inbox.eof
            && matches!(self.read, Read::Head | Read::Body(_) | Read::Done)
            && self.write != Write::Closed
            && self.inbox.buf.len() < READ_AHEAD.max(self.config.limits.max_head_size)
    }

    /// Whether the current request asked for `100 Continue` and none has been sent: the
    /// client may be waiting before it sends the body.
    pub fn is_waiting_for_continue(&self) -> bool {
        self.exchange.expect_continue
            && !self.exchange.continue_sent
            && self.write == Write::Respond
    }

    /// Whether the connection sits between requests with nothing buffered (safe to close
    /// in a graceful shutdown).
    pub fn is_idle(&self) -> bool {
        matches!(self.read, Read::Head) && self.write == Write::Idle && self.inbox.buf.is_empty()
    }

    /// The configuration in use.
    pub fn config(&self) -> &ServerConnectionConfig {
        &self.config
    }

    // ---- inputs ----

    /// Bytes received from the peer at `now`. Input after EOF or after the connection
    /// stopped reading is ignored.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.catch_up(now);
        if self.inbox.eof || matches!(self.read, Read::Stopped) || data.is_empty() {
            return;
        }
        match self.read {
            Read::Head if self.inbox.buf.is_empty() && self.requests > 0 => {
                // A new head begins: the idle deadline gives way to the head deadline.
                self.deadline = Deadline::after(now, self.config.timeouts.head, ReadTimer::Head);
            }
            Read::Body(_) => self.deadline = None,
            _ => {}
        }
        self.last_input = now;
        self.inbox.push(data);
    }

    /// The peer closed its sending side (EOF).
    pub fn handle_eof(&mut self) {
        self.inbox.eof = true;
    }

    /// The earliest deadline: the head, keep-alive idle or body read timeout in force.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.map(|d| d.at)
    }

    /// Acts on a deadline that has come by `now`: a late head or body is answered with
    /// `408` (when a request had begun and no response started) and the connection closes;
    /// an idle keep-alive connection just closes. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.catch_up(now);
        let Some(deadline) = self.deadline.filter(|d| d.is_due(now)) else {
            return;
        };
        self.deadline = None;
        let kind = match deadline.kind {
            ReadTimer::Head if !self.inbox.buf.is_empty() => RemoteErrorKind::HeadTimeout,
            ReadTimer::Body => RemoteErrorKind::BodyTimeout,
            ReadTimer::Head | ReadTimer::KeepAlive => {
                // Nothing of a request arrived: close quietly.
                self.stop();
                return;
            }
        };
        let error = RemoteError::new(kind, self.inbox.base() + self.inbox.buf.len() as u64);
        let event = self.fail(error.into());
        self.pending = Some(event);
    }

    // ---- commands ----

    /// Sends an interim `1xx` response (not `101`: that goes through `send_response`).
    /// Not allowed to HTTP/1.0 clients, nor after the final response started.
    pub fn send_informational(&mut self, response: &Response<()>) -> Result<(), Error> {
        self.expect_respond("send an informational response")?;
        let status = response.status();
        if !status.is_informational() || status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(LocalError::InvalidHead("send_informational takes 1xx except 101").into());
        }
        if self.exchange.http10 {
            return Err(LocalError::InvalidHead("no 1xx responses to HTTP/1.0 clients").into());
        }
        if status == StatusCode::CONTINUE {
            self.exchange.continue_sent = true;
        }
        let out = self.out.staging();
        encode::write_status_line(out, status);
        encode::write_fields(out, response.headers());
        out.put_slice(b"\r\n");
        Ok(())
    }

    /// Sends the final response head. Framing follows its headers: `Content-Length`, or
    /// `Transfer-Encoding: chunked`; with neither, the body is chunked for HTTP/1.1 clients
    /// and delimited by closing the connection for HTTP/1.0 ones. `Connection: close` is added
    /// when the connection will close after this response.
    ///
    /// If the response ends before the request body has been read, the rest of the body is
    /// skipped without events when it has already arrived; otherwise the connection closes
    /// after the response.
    ///
    /// `101 Switching Protocols` (to a request that asked for an upgrade) and a `2xx` to
    /// CONNECT switch the connection at once: no body, no `send_end`, and the next event is
    /// [`ServerEvent::Upgraded`].
    pub fn send_response(&mut self, response: &Response<()>) -> Result<(), Error> {
        self.send_response_with(response, GeneratedFields::new())
    }

    /// [`send_response`](Self::send_response), with a `Date` and a body length the core
    /// writes itself unless the response's header fields have their own (see
    /// [`GeneratedFields`]): the adapter's fast path, with no `HeaderMap` insertion for them.
    pub fn send_response_with(
        &mut self,
        response: &Response<()>,
        generated: GeneratedFields<'_>,
    ) -> Result<(), Error> {
        self.expect_respond("send a response")?;
        let status = response.status();
        let headers = response.headers();
        let mut facts = head::facts_of(headers)
            .map_err(|_| LocalError::InvalidHead("invalid framing headers"))?;
        let write_date = generated.date.filter(|_| !facts.has_date);
        let write_length = generated
            .content_length
            .filter(|_| facts.content_length.is_none() && !facts.has_te);
        if write_length.is_some() {
            facts.content_length = write_length;
        }
        let switching = status == StatusCode::SWITCHING_PROTOCOLS
            || (self.exchange.connect && status.is_success());
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(LocalError::InvalidHead("use send_informational for 1xx").into());
        }
        if status == StatusCode::SWITCHING_PROTOCOLS && !self.exchange.upgrade_requested {
            return Err(LocalError::InvalidHead("101 without an upgrade request").into());
        }
        if switching && self.request_body_is_empty() {
            // Answered at the request head: the (empty) body needs no End event.
            self.read = Read::MightSwitch;
        }
        if switching && !matches!(self.read, Read::MightSwitch) {
            return Err(LocalError::state("switch protocols", "request not complete").into());
        }
        let no_framing_headers = facts.content_length.is_none() && !facts.has_te;
        if facts.content_length.is_some() && facts.has_te {
            return Err(
                LocalError::InvalidHead("both Content-Length and Transfer-Encoding").into(),
            );
        }
        if (switching || status == StatusCode::NO_CONTENT) && !no_framing_headers {
            return Err(LocalError::InvalidHead(
                "no Content-Length or Transfer-Encoding on 1xx, 204, or 2xx to CONNECT",
            )
            .into());
        }
        if facts.has_te && (!facts.te_chunked_last || self.exchange.http10) {
            return Err(LocalError::InvalidHead(
                "Transfer-Encoding must end in chunked, and HTTP/1.0 clients cannot take it",
            )
            .into());
        }
        if facts.conn_close {
            self.keep_alive = false;
        }
        if self.is_waiting_for_continue() && matches!(self.read, Read::Body(_)) {
            // The client holds its body back: we cannot know whether it will follow, so
            // this connection ends with this response (RFC 9110 §10.1.1).
            self.keep_alive = false;
        }

        let mut add_chunked = false;
        let encoder = if switching {
            BodyEncoder::None
        } else if self.exchange.head_request {
            BodyEncoder::Discard
        } else if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            BodyEncoder::None
        } else if let Some(n) = facts.content_length {
            BodyEncoder::Length(n)
        } else if facts.has_te {
            BodyEncoder::Chunked
        } else if self.exchange.http10 {
            self.keep_alive = false;
            BodyEncoder::UntilClose
        } else {
            add_chunked = true;
            BodyEncoder::Chunked
        };
        if !switching && matches!(self.read, Read::MightSwitch) {
            // A request that asked to switch and got a normal answer goes on as HTTP.
            self.read = Read::Done;
        }

        let out = self.out.staging();
        encode::write_status_line(out, status);
        encode::write_fields(out, headers);
        if let Some(date) = write_date {
            generated::write_date(out, date);
        }
        if let Some(n) = write_length {
            generated::write_content_length(out, n);
        }
        if add_chunked {
            out.put_slice(b"transfer-encoding: chunked\r\n");
        }
        if !switching {
            if !self.keep_alive && !facts.conn_close {
                out.put_slice(b"connection: close\r\n");
            } else if self.keep_alive && self.exchange.http10 && !facts.conn_keep_alive {
                out.put_slice(b"connection: keep-alive\r\n");
            }
        }
        out.put_slice(b"\r\n");

        if switching {
            self.write = Write::Closed;
            self.read = Read::Switched;
            self.deadline = None;
        } else {
            self.write = Write::Body(encoder);
        }
        Ok(())
    }

    /// Sends a piece of the response body. Bytes of 1 KiB or more are queued without a copy.
    /// For a response to HEAD the bytes are dropped (so a handler may treat HEAD like GET).
    pub fn send_data(&mut self, data: Bytes) -> Result<(), Error> {
        let Write::Body(encoder) = &mut self.write else {
            return Err(LocalError::state("send body data", "no response body in progress").into());
        };
        encoder.encode_data(data, &mut self.out)?;
        Ok(())
    }

    /// Ends the response, with trailers if it is chunked.
    pub fn send_end(&mut self, trailers: Option<&HeaderMap>) -> Result<(), Error> {
        let Write::Body(encoder) = self.write else {
            return Err(
                LocalError::state("end the response", "no response body in progress").into(),
            );
        };
        encoder.encode_end(trailers, &mut self.out)?;
        if encoder == BodyEncoder::UntilClose {
            self.keep_alive = false;
        }
        self.write = Write::Done;
        self.finish_response();
        Ok(())
    }

    /// Graceful shutdown: answer the request in progress (its response gets
    /// `Connection: close` if its head is not sent yet), then close. An idle connection
    /// closes at once.
    pub fn shutdown(&mut self) {
        self.keep_alive = false;
        if self.write == Write::Idle && matches!(self.read, Read::Head) {
            self.stop();
        }
    }

    // ---- outputs ----

    /// The next event, or `None` when the connection needs more input, is waiting for our
    /// response, or is finished.
    ///
    /// Asking for body events of a request that expects `100 Continue` sends the
    /// `100 Continue` (unless a response has started): polling for the body is the signal
    /// that the application wants it.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if let Some(event) = self.pending.take() {
            return Some(event);
        }
        match &mut self.read {
            Read::Head => self.poll_head(),
            Read::Body(decoder) => {
                let base = self.inbox.base();
                match decoder.decode(&mut self.inbox.buf, base, self.inbox.eof) {
                    Ok(Decoded::Data(data)) => Some(ServerEvent::Data(data)),
                    Ok(Decoded::End(trailers)) => {
                        let may_switch = self.exchange.connect || self.exchange.upgrade_requested;
                        self.read = if may_switch && self.write == Write::Respond {
                            Read::MightSwitch
                        } else {
                            Read::Done
                        };
                        self.deadline = None;
                        self.try_next_cycle();
                        Some(ServerEvent::End { trailers })
                    }
                    Ok(Decoded::NeedMore) => {
                        self.wait_for_body();
                        None
                    }
                    Err(e) => Some(self.fail(e.into())),
                }
            }
            Read::Switched => {
                self.read = Read::Stopped;
                Some(ServerEvent::Upgraded {
                    trailing: self.inbox.buf.split().freeze(),
                })
            }
            Read::Done | Read::MightSwitch | Read::Stopped => None,
        }
    }

    /// The next bytes to write to the peer, oldest first. `now` is when they are handed out:
    /// the keep-alive idle deadline after a response runs from here.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.catch_up(now);
        self.out.pop()
    }

    // ---- internals ----

    #[inline]
    fn poll_head(&mut self) -> Option<ServerEvent> {
        if self.write == Write::Closed {
            return None;
        }
        if self.inbox.eof && self.inbox.only_blank_lines() {
            self.inbox.buf.clear();
            self.stop();
            return Some(ServerEvent::Closed);
        }
        match self
            .inbox
            .parse_request(&self.config.limits, &self.config.leniency)
        {
            Ok(HeadStatus::Complete(parsed)) => self.start_request(parsed.message, parsed.facts),
            Ok(HeadStatus::Partial) => None,
            Err(e) => Some(self.fail(e.into())),
        }
    }

    #[inline]
    fn start_request(
        &mut self,
        request: Request<()>,
        facts: head::HeadFacts,
    ) -> Option<ServerEvent> {
        let version = request.version();
        let base = self.inbox.base();
        self.requests += 1;
        self.exchange = Exchange {
            head_request: *request.method() == Method::HEAD,
            connect: *request.method() == Method::CONNECT,
            http10: version == Version::HTTP_10,
            upgrade_requested: version == Version::HTTP_11
                && facts.has_upgrade
                && facts.conn_upgrade,
            expect_continue: version == Version::HTTP_11 && facts.expect_continue,
            continue_sent: false,
        };
        self.keep_alive &= facts.wants_keep_alive(version);
        self.deadline = None;
        self.write = Write::Respond;
        let length = head::request_body_length(request.method(), &facts);
        debug_assert!(length != BodyLength::UntilEof);
        match BodyDecoder::new(length, &self.config.limits) {
            Ok(decoder) => {
                self.read = Read::Body(decoder);
                let body = match length {
                    BodyLength::Fixed(0) => RequestBody::Empty,
                    BodyLength::Fixed(n) => RequestBody::Length(n),
                    BodyLength::Chunked | BodyLength::UntilEof => RequestBody::Chunked,
                };
                Some(ServerEvent::Request {
                    head: request,
                    body,
                })
            }
            // A declared body over the limit: the core answers 413 before reading any of it,
            // so the request is never handed to the application.
            Err(kind) => Some(self.fail(RemoteError::new(kind, base).into())),
        }
    }

    /// Whether the request being read has a body that is already complete and empty (the
    /// usual upgrade and CONNECT requests), so the protocol may switch right away.
    fn request_body_is_empty(&mut self) -> bool {
        matches!(&self.read, Read::Body(decoder) if decoder.is_empty())
    }

    /// The body decoder ran dry: arm the body deadline from the last input, and send an owed
    /// `100 Continue`.
    fn wait_for_body(&mut self) {
        if self.is_waiting_for_continue() {
            self.exchange.continue_sent = true;
            encode::write_bare_response(self.out.staging(), StatusCode::CONTINUE, false);
        }
        if self.deadline.is_none() {
            self.deadline = Deadline::after(
                self.last_input,
                self.config.timeouts.body_read,
                ReadTimer::Body,
            );
        }
    }

    fn expect_respond(&self, action: &'static str) -> Result<(), LocalError> {
        match self.write {
            Write::Respond => Ok(()),
            Write::Idle => Err(LocalError::state(action, "no request to answer")),
            Write::Body(_) | Write::Done => {
                Err(LocalError::state(action, "response already started"))
            }
            Write::Closed => Err(LocalError::state(action, "connection closed")),
        }
    }

    /// Our response is complete: settle the request side, then start the next cycle or close.
    fn finish_response(&mut self) {
        if let Read::Body(decoder) = &mut self.read {
            // The request body is not fully read. If it is already buffered, skip it; a
            // client still waiting for 100 Continue, or one still sending, means closing.
            let mut finished = false;
            if !self.exchange.expect_continue || self.exchange.continue_sent {
                loop {
                    let base = self.inbox.base();
                    match decoder.decode(&mut self.inbox.buf, base, self.inbox.eof) {
                        Ok(Decoded::Data(_)) => continue,
                        Ok(Decoded::End(_)) => finished = true,
                        Ok(Decoded::NeedMore) | Err(_) => {}
                    }
                    break;
                }
            }
            if finished {
                self.read = Read::Done;
            } else {
                self.keep_alive = false;
            }
        }
        self.try_next_cycle();
    }

    /// Starts the next cycle when both halves are done, or closes when keep-alive is off.
    fn try_next_cycle(&mut self) {
        if self.write != Write::Done {
            return;
        }
        if !self.keep_alive {
            self.stop();
            return;
        }
        if matches!(self.read, Read::Done) {
            self.read = Read::Head;
            self.write = Write::Idle;
            self.exchange = Exchange::default();
            self.deadline = None;
            self.arm_idle = true;
        }
    }

    /// Arms the deadline a finished cycle left pending, now that the time is known.
    fn catch_up(&mut self, now: Instant) {
        if !self.arm_idle {
            return;
        }
        self.arm_idle = false;
        if matches!(self.read, Read::Head) && self.write == Write::Idle {
            let timeouts = &self.config.timeouts;
            self.deadline = if self.inbox.buf.is_empty() {
                Deadline::after(now, timeouts.keep_alive, ReadTimer::KeepAlive)
            } else {
                Deadline::after(now, timeouts.head, ReadTimer::Head)
            };
        }
    }

    /// No more HTTP on this connection.
    fn stop(&mut self) {
        self.read = Read::Stopped;
        self.write = Write::Closed;
        self.keep_alive = false;
        self.deadline = None;
        self.arm_idle = false;
    }

    /// Ends the connection on an error, queueing the answer if a response is still owed.
    fn fail(&mut self, error: Error) -> ServerEvent {
        if let Error::Remote(remote) = &error {
            if matches!(self.write, Write::Idle | Write::Respond) {
                encode::write_bare_response(self.out.staging(), remote.status(), true);
            }
        }
        self.stop();
        ServerEvent::Error(error)
    }
}
