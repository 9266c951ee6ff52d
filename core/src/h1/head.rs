//! Message heads: finding their end, parsing them with `httparse`, and turning them into
//! `http` types with the facts that decide framing and connection reuse.
//!
//! Header values and the request-target are `Bytes` slices of the received head, not copies.

use super::config::{Leniency, Limits};
use super::error::{RemoteError, RemoteErrorKind as Kind};
use super::host;
use super::start_line::{self, StartLine};
use crate::syntax::is_tchar;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use std::mem::MaybeUninit;

/// Header slots kept on the stack; a larger `max_headers` falls back to the heap.
const STACK_HEADERS: usize = 128;

/// Where the body of a received message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// Exactly this many bytes (0 for no body).
    Fixed(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the peer closes (responses only).
    UntilEof,
}

/// What the head says about framing and the connection, gathered in one pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadFacts {
    pub(crate) content_length: Option<u64>,
    /// `Transfer-Encoding` present; `te_chunked_last` says whether its final coding is chunked,
    /// `te_other` whether it names any other coding.
    pub(crate) has_te: bool,
    pub(crate) te_chunked_last: bool,
    pub(crate) te_other: bool,
    pub(crate) conn_close: bool,
    pub(crate) conn_keep_alive: bool,
    pub(crate) conn_upgrade: bool,
    pub(crate) has_upgrade: bool,
    pub(crate) expect_continue: bool,
    /// An `Expect` member other than `100-continue`.
    pub(crate) expect_other: bool,
    pub(crate) host_count: u32,
    /// The (last) `Host` value follows the grammar of RFC 9110 §7.2.
    pub(crate) host_valid: bool,
    /// A `Date` field (noted only for heads we send, where the core may add one).
    pub(crate) has_date: bool,
}

impl HeadFacts {
    /// Whether the connection may stay open after this message, judging by its own head.
    pub(crate) fn wants_keep_alive(&self, version: Version) -> bool {
        if self.conn_close {
            return false;
        }
        version == Version::HTTP_11 || self.conn_keep_alive
    }
}

/// A parsed head: the message, how many input bytes it took, and its framing facts.
pub(crate) struct Parsed<T> {
    pub(crate) message: T,
    pub(crate) facts: HeadFacts,
}

/// Finds the end of a message head (an empty line) without rescanning bytes already seen,
/// so that a head trickling in byte by byte costs O(n), not O(n²).
#[derive(Debug, Default, Clone)]
pub(crate) struct HeadScanner {
    /// Bytes of the current head already searched for the terminator.
    searched: usize,
    /// The current head's start line is complete and well formed (no need to check it
    /// again while the rest arrives).
    start_line_ok: bool,
}

impl HeadScanner {
    /// Whether `buf` (the bytes of the head received so far) may hold a complete head, or is
    /// over `max` and can be judged now. Call with the same growing buffer until it says yes.
    pub(crate) fn ready(&mut self, buf: &[u8], max: usize) -> bool {
        if buf.len() > max {
            return true;
        }
        if self.searched == 0 && (buf.ends_with(b"\n\r\n") || buf.ends_with(b"\n\n")) {
            // The common case, a whole head in one read: no scan, let the parser decide
            // (a false "ready" only costs one parse that says Partial).
            self.searched = buf.len();
            return true;
        }
        // Step back two bytes so a terminator split across inputs is still seen.
        let start = self.searched.saturating_sub(2);
        self.searched = buf.len();
        let mut at = start;
        while let Some(i) = memchr::memchr(b'\n', &buf[at..]) {
            let lf = at + i;
            match &buf[lf + 1..] {
                [b'\n', ..] | [b'\r', b'\n', ..] => return true,
                _ => {}
            }
            at = lf + 1;
        }
        false
    }

    /// Whether the start line received so far can no longer become valid (see
    /// [`start_line`]); checked on incomplete heads until the line is complete, so that
    /// bytes that can never be HTTP are refused at once rather than at the head timeout.
    pub(crate) fn start_line_failed(&mut self, request: bool, buf: &[u8]) -> bool {
        if self.start_line_ok {
            return false;
        }
        let verdict = if request {
            start_line::request_line(buf)
        } else {
            start_line::status_line(buf)
        };
        self.start_line_ok = verdict == StartLine::Complete;
        verdict == StartLine::Invalid
    }

    /// Forget the head just parsed.
    pub(crate) fn reset(&mut self) {
        self.searched = 0;
        self.start_line_ok = false;
    }
}

fn map_httparse(e: httparse::Error) -> Kind {
    match e {
        httparse::Error::HeaderName => Kind::InvalidHeaderName,
        httparse::Error::HeaderValue => Kind::InvalidHeaderValue,
        httparse::Error::NewLine => Kind::InvalidLineEnding,
        httparse::Error::Status => Kind::InvalidStatus,
        httparse::Error::Token => Kind::InvalidMethod,
        httparse::Error::TooManyHeaders => Kind::TooManyHeaders,
        httparse::Error::Version => Kind::InvalidVersion,
    }
}

/// Refines an `httparse` error with a position where we can find one: a folded line is
/// reported as [`Kind::ObsFold`] at the fold.
/// `httparse` says `Token` for a bad method and for a bad request-target alike; a valid
/// method token before the first space means the target is to blame.
fn classify_error(buf: &[u8], kind: Kind, base: u64, request: bool) -> RemoteError {
    if request && kind == Kind::InvalidMethod {
        let start = buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(0);
        let line = &buf[start..];
        if let Some(space) = memchr::memchr(b' ', line) {
            if space > 0 && Method::from_bytes(&line[..space]).is_ok() {
                return RemoteError::new(Kind::InvalidTarget, base + (start + space) as u64 + 1);
            }
        }
    }
    if request && kind == Kind::InvalidVersion && !names_a_version(buf) {
        return RemoteError::new(Kind::InvalidRequestLine, base);
    }
    if kind == Kind::InvalidHeaderName {
        return first_bad_field_line(buf, base);
    }
    RemoteError::new(kind, base)
}

/// The first field line that `httparse` would stop at on a name error: a folded line
/// (obs-fold) or a name that is not a token before the colon.
fn first_bad_field_line(buf: &[u8], base: u64) -> RemoteError {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let mut lines = buf[start..].split(|&b| b == b'\n');
    let mut at = start + lines.next().map_or(0, |l| l.len() + 1);
    for line in lines {
        let kind = match line {
            // The empty line ends the head: nothing past it is a field.
            [] | [b'\r'] => break,
            [b' ' | b'\t', ..] => Some(Kind::ObsFold),
            _ => match line.iter().position(|&b| b == b':') {
                Some(end) if end > 0 && line[..end].iter().all(|&b| is_tchar(b)) => None,
                // A name with a bad byte, or no colon before the line ends.
                _ => Some(Kind::InvalidHeaderName),
            },
        };
        if let Some(kind) = kind {
            return RemoteError::new(kind, base + at as u64);
        }
        at += line.len() + 1;
    }
    RemoteError::new(Kind::InvalidHeaderName, base)
}

/// Whether the request line ends in a well-formed `HTTP/x.y` (then a version error means an
/// unsupported version, 505; otherwise the line is just malformed, 400).
fn names_a_version(buf: &[u8]) -> bool {
    let end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    if line.iter().filter(|&&b| b == b' ').count() != 2 {
        return false;
    }
    let token = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    matches!(token, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// Outcome of trying to parse a head from the front of the receive buffer.
pub(crate) enum HeadStatus<T> {
    /// A full head was parsed and removed from the buffer.
    Complete(Parsed<T>),
    /// More bytes are needed.
    Partial,
}

/// Byte ranges of one header field within the head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldRange {
    name: (usize, usize),
    value: (usize, usize),
}

fn range_in(base: &[u8], part: &[u8]) -> (usize, usize) {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    (start, start + part.len())
}

/// Records where the fields are; `fields` is reused across parses to avoid allocating.
fn record_fields(base: &[u8], headers: &[httparse::Header<'_>], fields: &mut Vec<FieldRange>) {
    fields.clear();
    fields.extend(headers.iter().map(|h| FieldRange {
        name: range_in(base, h.name.as_bytes()),
        value: range_in(base, h.value),
    }));
}

/// Builds the header map from recorded ranges over the frozen head, noting framing facts.
#[inline]
fn build_headers(
    head: &Bytes,
    fields: &[FieldRange],
    merge_content_length: bool,
    base: u64,
) -> Result<(HeaderMap, HeadFacts), RemoteError> {
    let mut map = HeaderMap::with_capacity(fields.len());
    let mut facts = HeadFacts::default();
    for f in fields {
        let at = base + f.name.0 as u64;
        let name = HeaderName::from_bytes(&head[f.name.0..f.name.1])
            .map_err(|_| RemoteError::new(Kind::InvalidHeaderName, at))?;
        let value = HeaderValue::from_maybe_shared(head.slice(f.value.0..f.value.1))
            .map_err(|_| RemoteError::new(Kind::InvalidHeaderValue, base + f.value.0 as u64))?;
        note_fact(&mut facts, &name, value.as_bytes(), merge_content_length)
            .map_err(|k| RemoteError::new(k, at))?;
        if name == header::HOST {
            facts.host_valid = host::is_valid_host(value.as_bytes());
        }
        map.append(name, value);
    }
    Ok((map, facts))
}

fn note_fact(
    facts: &mut HeadFacts,
    name: &HeaderName,
    value: &[u8],
    merge_content_length: bool,
) -> Result<(), Kind> {
    if *name == header::CONTENT_LENGTH {
        for item in value.split(|&b| b == b',') {
            let n = parse_content_length(trim_ows(item))?;
            match facts.content_length {
                Some(prev) if prev != n => return Err(Kind::ConflictingContentLength),
                Some(_) if !merge_content_length => return Err(Kind::DuplicateContentLength),
                _ => facts.content_length = Some(n),
            }
        }
    } else if *name == header::TRANSFER_ENCODING {
        facts.has_te = true;
        for coding in value.split(|&b| b == b',') {
            let coding = trim_ows(coding);
            if coding.is_empty() {
                continue;
            }
            if facts.te_chunked_last {
                // `chunked` must be the final coding and may appear only once.
                return Err(Kind::InvalidTransferEncoding);
            }
            if coding.eq_ignore_ascii_case(b"chunked") {
                facts.te_chunked_last = true;
            } else {
                facts.te_other = true;
            }
        }
    } else if *name == header::CONNECTION {
        for token in value.split(|&b| b == b',') {
            let token = trim_ows(token);
            if token.eq_ignore_ascii_case(b"close") {
                facts.conn_close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                facts.conn_keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                facts.conn_upgrade = true;
            }
        }
    } else if *name == header::HOST {
        facts.host_count += 1;
    } else if *name == header::UPGRADE {
        facts.has_upgrade = true;
    } else if *name == header::EXPECT {
        for expectation in value.split(|&b| b == b',').map(trim_ows) {
            if expectation.eq_ignore_ascii_case(b"100-continue") {
                facts.expect_continue = true;
            } else if !expectation.is_empty() {
                facts.expect_other = true;
            }
        }
    }
    Ok(())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `Content-Length = 1*DIGIT`: no sign, no spaces inside, checked arithmetic.
pub(crate) fn parse_content_length(digits: &[u8]) -> Result<u64, Kind> {
    if digits.is_empty() {
        return Err(Kind::InvalidContentLength);
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(Kind::InvalidContentLength);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(Kind::InvalidContentLength)
    })
}

fn http_version(minor: Option<u8>) -> Version {
    if minor == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    }
}

/// What one run of `httparse` over a head found.
enum Run<'a, L> {
    /// A complete head and what the start line said.
    Complete(L),
    /// More bytes are needed.
    Partial,
    /// The head is over `max_head_size`; the view is its first `max_head_size` bytes.
    TooLarge(&'a [u8]),
    /// The peer closed before the head was complete.
    Truncated,
}

/// Runs `parse` (httparse over the head, recording fields) when the scanner says a head may
/// be complete, on at most `max_head_size` bytes, with header slots on the stack.
fn run_parser<'a, L>(
    request: bool,
    buf: &'a [u8],
    scanner: &mut HeadScanner,
    limits: &Limits,
    base: u64,
    eof: bool,
    parse: impl FnOnce(
        &'a [u8],
        &mut [MaybeUninit<httparse::Header<'a>>],
    ) -> Result<httparse::Status<L>, httparse::Error>,
) -> Result<Run<'a, L>, RemoteError> {
    if !eof && !scanner.ready(buf, limits.max_head_size) && !scanner.start_line_failed(request, buf)
    {
        return Ok(Run::Partial);
    }
    // Complete, over the limit, at EOF, or a start line gone wrong: the parser judges (on
    // an incomplete head it stops at the same byte, with the same error, as on the whole).
    let view = &buf[..buf.len().min(limits.max_head_size)];
    let status = if limits.max_headers <= STACK_HEADERS {
        let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        parse(view, &mut stack[..limits.max_headers])
    } else {
        let mut heap = Vec::new();
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        parse(view, &mut heap)
    };
    match status {
        Ok(httparse::Status::Complete(line)) => {
            scanner.reset();
            Ok(Run::Complete(line))
        }
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_size => {
            Ok(Run::TooLarge(view))
        }
        Ok(httparse::Status::Partial) if eof => Ok(Run::Truncated),
        Ok(httparse::Status::Partial) => Ok(Run::Partial),
        Err(e) => Err(classify_error(view, map_httparse(e), base, request)),
    }
}

/// Parses a request head from the front of `buf`, removing it when complete.
///
/// `scanner` must be the same for every call on one head. `base` is the stream offset of
/// `buf[0]`, for error offsets. `eof` says no more bytes will come: a partial head is then
/// judged as it stands (so the error is the one a complete read would give).
#[inline]
pub(crate) fn parse_request(
    buf: &mut BytesMut,
    scanner: &mut HeadScanner,
    fields: &mut Vec<FieldRange>,
    (limits, leniency): (&Limits, &Leniency),
    base: u64,
    eof: bool,
) -> Result<HeadStatus<Request<()>>, RemoteError> {
    let run = run_parser(true, buf, scanner, limits, base, eof, |view, slots| {
        let mut req = httparse::Request::new(&mut []);
        let httparse::Status::Complete(len) = req.parse_with_uninit_headers(view, slots)? else {
            return Ok(httparse::Status::Partial);
        };
        record_fields(view, req.headers, fields);
        let method = range_in(view, req.method.unwrap_or_default().as_bytes());
        let target = range_in(view, req.path.unwrap_or_default().as_bytes());
        Ok(httparse::Status::Complete((
            len,
            method,
            target,
            req.version,
        )))
    })?;
    let (len, method, target, minor) = match run {
        Run::Complete(line) => line,
        Run::Partial => return Ok(HeadStatus::Partial),
        Run::TooLarge(view) => return Err(RemoteError::new(oversize_kind(view, limits), base)),
        Run::Truncated => {
            return Err(RemoteError::new(
                Kind::IncompleteMessage,
                base + buf.len() as u64,
            ));
        }
    };
    let head = buf.split_to(len).freeze();
    let line = RequestLine {
        method,
        target,
        minor,
    };
    build_request(&head, line, fields, (limits, leniency), base).map(HeadStatus::Complete)
}

/// A head over the size limit: 414 when it is the request line that is too long, else 431.
fn oversize_kind(view: &[u8], limits: &Limits) -> Kind {
    let line = memchr::memchr(b'\n', view).unwrap_or(view.len());
    if line > limits.max_target_len {
        Kind::TargetTooLong
    } else {
        Kind::HeadTooLarge
    }
}

/// Where the parts of a request line are in the head.
struct RequestLine {
    method: (usize, usize),
    target: (usize, usize),
    minor: Option<u8>,
}

#[inline]
fn build_request(
    head: &Bytes,
    RequestLine {
        method,
        target,
        minor,
    }: RequestLine,
    fields: &[FieldRange],
    (limits, leniency): (&Limits, &Leniency),
    base: u64,
) -> Result<Parsed<Request<()>>, RemoteError> {
    if !leniency.bare_lf {
        if let Some(at) = bare_lf(head, method.0, fields) {
            return Err(RemoteError::new(Kind::BareLineFeed, base + at as u64));
        }
    }
    let target_at = base + target.0 as u64;
    let method = Method::from_bytes(&head[method.0..method.1])
        .map_err(|_| RemoteError::new(Kind::InvalidMethod, base + method.0 as u64))?;
    if target.1 - target.0 > limits.max_target_len {
        return Err(RemoteError::new(Kind::TargetTooLong, target_at));
    }
    // No request-target form has a fragment (RFC 9112 §3.2); the `http` crate would drop
    // one silently, and a proxy forwarding the bytes would not.
    if let Some(at) = head[target.0..target.1].iter().position(|&b| b == b'#') {
        return Err(RemoteError::new(Kind::InvalidTarget, target_at + at as u64));
    }
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1))
        .map_err(|_| RemoteError::new(Kind::InvalidTarget, target_at))?;
    check_target_form(&method, &uri).map_err(|k| RemoteError::new(k, target_at))?;
    let version = http_version(minor);
    let (headers, facts) = build_headers(head, fields, leniency.duplicate_content_length, base)?;
    check_request_framing(version, &facts).map_err(|k| RemoteError::new(k, base))?;
    if method == Method::CONNECT && (facts.has_te || facts.content_length.is_some_and(|n| n > 0)) {
        return Err(RemoteError::new(Kind::ContentOnConnect, base));
    }
    if facts.expect_other && !leniency.unknown_expectation {
        return Err(RemoteError::new(Kind::UnsupportedExpectation, base));
    }

    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Parsed {
        message: request,
        facts,
    })
}

/// The offset of the first line of the head that ends in a bare LF (RFC 9112 §2.2), if
/// any. Only line ends need checking (the parser refuses a CR or LF anywhere else): the
/// empty lines before the request line, the end of each line before a field line, and the
/// last two (the last line and the empty line that ends the head).
fn bare_lf(head: &[u8], method_start: usize, fields: &[FieldRange]) -> Option<usize> {
    let crlf_before = |at: usize| at >= 2 && &head[at - 2..at] == b"\r\n";
    let leading = &head[..method_start];
    if leading.len() % 2 != 0 || leading.chunks(2).any(|pair| pair != b"\r\n") {
        return Some(0);
    }
    if let Some(field) = fields.iter().find(|f| !crlf_before(f.name.0)) {
        return Some(field.name.0 - 1);
    }
    if !head.ends_with(b"\r\n\r\n") {
        return Some(head.len().saturating_sub(1));
    }
    None
}

/// RFC 9112 §3.2: origin-form or absolute-form for most methods, authority-form only for
/// CONNECT, asterisk-form only for OPTIONS.
fn check_target_form(method: &Method, uri: &Uri) -> Result<(), Kind> {
    let path = uri.path();
    // An authority in the target (absolute form, CONNECT's authority form) is one a client
    // could have connected to: a non-empty host and a numeric port (RFC 9110 §4.2.1: a
    // recipient MUST reject an `http` URI with an empty host), no userinfo (§4.2.4). The
    // `http` crate's parser is more lenient (`example.:com`).
    if let Some(authority) = uri.authority() {
        if authority.host().is_empty() || !super::host::is_valid_host(authority.as_str().as_bytes())
        {
            return Err(Kind::InvalidTarget);
        }
    }
    // `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1); the `http`
    // crate takes other bytes too (`h~ttp://`).
    if uri.scheme_str().is_some_and(|scheme| !is_scheme(scheme)) {
        return Err(Kind::InvalidTarget);
    }
    let ok = if *method == Method::CONNECT {
        uri.scheme().is_none() && uri.authority().is_some() && uri.path_and_query().is_none()
    } else if path == "*" {
        *method == Method::OPTIONS && uri.authority().is_none()
    } else if uri.scheme().is_some() {
        uri.authority().is_some()
    } else {
        path.starts_with('/') && uri.authority().is_none()
    };
    if ok {
        Ok(())
    } else {
        Err(Kind::InvalidTarget)
    }
}

fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Request rules of RFC 9112 §3.2 and §6: Host, and no ambiguous framing.
fn check_request_framing(version: Version, facts: &HeadFacts) -> Result<(), Kind> {
    match facts.host_count {
        0 if version == Version::HTTP_11 => return Err(Kind::MissingHost),
        0 => {}
        1 if !facts.host_valid => return Err(Kind::InvalidHost),
        1 => {}
        _ => return Err(Kind::MultipleHost),
    }
    if facts.has_te {
        if version == Version::HTTP_10 {
            return Err(Kind::TransferEncodingInHttp10);
        }
        if facts.content_length.is_some() {
            return Err(Kind::ContentLengthWithTransferEncoding);
        }
        if !facts.te_chunked_last {
            return Err(Kind::InvalidTransferEncoding);
        }
        if facts.te_other {
            return Err(Kind::UnsupportedTransferCoding);
        }
    }
    Ok(())
}

/// Body length of a request (RFC 9112 §6.3); framing was already validated (a CONNECT
/// request declaring content was refused).
pub(crate) fn request_body_length(method: &Method, facts: &HeadFacts) -> BodyLength {
    if *method == Method::CONNECT {
        BodyLength::Fixed(0)
    } else if facts.has_te {
        BodyLength::Chunked
    } else {
        BodyLength::Fixed(facts.content_length.unwrap_or(0))
    }
}

/// Parses a response head from the front of `buf`, removing it when complete.
/// Same contract as [`parse_request`].
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    scanner: &mut HeadScanner,
    fields: &mut Vec<FieldRange>,
    limits: &Limits,
    base: u64,
    eof: bool,
) -> Result<HeadStatus<Response<()>>, RemoteError> {
    let run = run_parser(false, buf, scanner, limits, base, eof, |view, slots| {
        let mut res = httparse::Response::new(&mut []);
        let status = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, view, slots)?;
        let httparse::Status::Complete(len) = status else {
            return Ok(httparse::Status::Partial);
        };
        record_fields(view, res.headers, fields);
        Ok(httparse::Status::Complete((
            len,
            res.code.unwrap_or_default(),
            res.version,
        )))
    })?;
    let (len, code, minor) = match run {
        Run::Complete(line) => line,
        Run::Partial => return Ok(HeadStatus::Partial),
        Run::TooLarge(_) => return Err(RemoteError::new(Kind::HeadTooLarge, base)),
        Run::Truncated => {
            let kind = if buf.is_empty() {
                Kind::ClosedBeforeResponse
            } else {
                Kind::IncompleteMessage
            };
            return Err(RemoteError::new(kind, base + buf.len() as u64));
        }
    };
    let head = buf.split_to(len).freeze();
    let status =
        StatusCode::from_u16(code).map_err(|_| RemoteError::new(Kind::InvalidStatus, base))?;
    let version = http_version(minor);
    // A client merges a repeated equal Content-Length, as browsers and curl do.
    let (headers, facts) = build_headers(&head, fields, true, base)?;
    if facts.has_te && version == Version::HTTP_10 {
        return Err(RemoteError::new(Kind::TransferEncodingInHttp10, base));
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    Ok(HeadStatus::Complete(Parsed {
        message: response,
        facts,
    }))
}

/// Body length of a response to a request with `method` (RFC 9112 §6.3).
/// `Transfer-Encoding` wins over `Content-Length`; the caller must then not reuse the
/// connection.
pub(crate) fn response_body_length(
    method: &Method,
    status: StatusCode,
    facts: &HeadFacts,
) -> BodyLength {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (*method == Method::CONNECT && status.is_success())
    {
        BodyLength::Fixed(0)
    } else if facts.has_te {
        if facts.te_chunked_last {
            BodyLength::Chunked
        } else {
            BodyLength::UntilEof
        }
    } else if let Some(n) = facts.content_length {
        BodyLength::Fixed(n)
    } else {
        BodyLength::UntilEof
    }
}

/// Framing facts of a head we are about to send (the same rules as for received heads).
pub(crate) fn facts_of(headers: &HeaderMap) -> Result<HeadFacts, Kind> {
    let mut facts = HeadFacts::default();
    for (name, value) in headers {
        note_fact(&mut facts, name, value.as_bytes(), true)?;
        facts.has_date |= *name == header::DATE;
    }
    Ok(facts)
}
