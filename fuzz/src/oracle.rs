//! A slow, obvious reference model of how a server frames a stream of HTTP/1.1 requests:
//! RFC 9112 §6.3 (message body length) and §7.1 (chunked transfer coding), with the head
//! parsed by `httparse` and every framing rule checked by hand, byte by byte.
//!
//! For each message it says: accepted (with its body and where it ends, so where the next
//! one starts), rejected (and why), or cut short by the end of input. A rejection is either
//! one the RFC requires ([`Why::Rfc`]) or one of tether's documented refusals of syntax the
//! RFC would let a server accept ([`Policy`]); the differential target treats both as
//! "must reject", so every place where tether is stricter than the RFC is listed here.
//!
//! The model knows nothing of tether's limits (head, target, body, trailer sizes): those are
//! tolerated rejections on the comparing side (`differential.rs`).

/// Why the oracle rejects a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The RFC requires rejecting it, or the bytes are not HTTP/1.1 at all.
    Rfc(&'static str),
    /// The RFC lets a server accept it; tether refuses by design (see [`Policy`]).
    Policy(Policy),
}

/// Syntax the RFC allows a server to accept that tether refuses, each because a front
/// proxy that accepts it differently would see a different message boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A line ending in a bare LF (RFC 9112 §2.2: a recipient MAY accept it). Applies to the
    /// head, the chunk lines and the trailer section alike: an LF a proxy does not take as a
    /// line end hides a line from it.
    BareLf,
    /// A folded field line (RFC 9112 §5.2: a server MAY replace the fold with SP instead
    /// of answering 400).
    ObsFold,
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.1: a server MAY reject or
    /// MAY use `Transfer-Encoding` alone); the classic smuggling ambiguity.
    ContentLengthWithTransferEncoding,
    /// `Content-Length` repeated with the same value (RFC 9110 §8.6: a recipient MAY take
    /// it as one); a proxy taking the first field and a server the last is one edit away
    /// from disagreeing.
    DuplicateContentLength,
    /// A transfer coding other than `chunked` before the final `chunked` (RFC 9112 §6.1:
    /// SHOULD answer 501). The framing would be clear, but the content could not be decoded.
    UnsupportedTransferCoding,
    /// `chunked` named more than once (RFC 9112 §7: a sender MUST NOT apply it twice; the
    /// RFC says nothing of the recipient, and decoding once would leave chunked data).
    ChunkedTwice,
    /// An `Expect` member other than `100-continue` (RFC 9110 §10.1.1: a server MAY answer
    /// 417); ignoring it makes a waiting client and a proxy disagree on when the body comes.
    UnknownExpectation,
    /// A CONNECT request that declares content (`Transfer-Encoding`, or a `Content-Length`
    /// other than 0). RFC 9110 §9.3.6 says a CONNECT request has no content while RFC 9112
    /// §6.3 would still frame the declared body: a server that used one rule behind a proxy
    /// that used the other would parse the body as the next request.
    ConnectWithContent,
    /// A `Host` port above 65535 (RFC 3986 §3.2.3 allows any number of digits); no
    /// connection can have been made to it, and a proxy may wrap it around.
    PortOutOfRange,
}

/// A request the oracle accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Offset of the request line (after any skipped empty lines).
    pub start: usize,
    /// Offset just past the message (head, body, trailers): where the next one starts.
    pub end: usize,
    /// Method token.
    pub method: String,
    /// Request-target as sent.
    pub target: String,
    /// Minor version (0 or 1).
    pub minor: u8,
    /// Number of header field lines.
    pub fields: usize,
    /// The body after removing the chunked coding.
    pub body: Vec<u8>,
    /// Number of trailer field lines (chunked bodies only).
    pub trailers: usize,
    /// Whether the connection goes on after this message (RFC 9112 §9.3).
    pub persistent: bool,
}

/// How the input ends after the accepted messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Nothing but (possibly) empty lines after the last message.
    Eof,
    /// The last message closed the connection; later bytes are never read.
    Closed,
    /// The message starting at `start` is rejected.
    Rejected {
        /// Where the rejected message starts.
        start: usize,
        /// Why.
        why: Why,
    },
    /// The input ends inside the message starting at `start`.
    Incomplete {
        /// Where the unfinished message starts.
        start: usize,
    },
}

/// The oracle's reading of a request stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    /// The accepted messages, in order.
    pub messages: Vec<Message>,
    /// What comes after them.
    pub end: End,
}

/// One step of reading: a value, or the end of the stream's HTTP.
enum Stop {
    Reject(Why),
    Incomplete,
}

type Step<T> = Result<T, Stop>;

fn rfc<T>(why: &'static str) -> Step<T> {
    Err(Stop::Reject(Why::Rfc(why)))
}

fn policy<T>(rule: Policy) -> Step<T> {
    Err(Stop::Reject(Why::Policy(rule)))
}

/// Frames `input` as the requests a server receives on one connection, up to EOF.
pub fn frame_requests(input: &[u8]) -> Framing {
    let mut messages = Vec::new();
    let mut at = 0;
    loop {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request.
        let mut start = at;
        let mut bare_lf = false;
        loop {
            if input[start..].starts_with(b"\r\n") {
                start += 2;
            } else if input[start..].starts_with(b"\n") {
                bare_lf = true;
                start += 1;
            } else {
                break;
            }
        }
        if start == input.len() {
            // Only empty lines before EOF: no request, nothing to frame.
            return Framing {
                messages,
                end: End::Eof,
            };
        }
        let outcome = if bare_lf {
            policy(Policy::BareLf)
        } else {
            read_message(input, start)
        };
        match outcome {
            Ok(message) => {
                at = message.end;
                let persistent = message.persistent;
                messages.push(message);
                if !persistent {
                    return Framing {
                        messages,
                        end: End::Closed,
                    };
                }
            }
            Err(Stop::Reject(why)) => {
                return Framing {
                    messages,
                    end: End::Rejected { start, why },
                }
            }
            Err(Stop::Incomplete) => {
                return Framing {
                    messages,
                    end: End::Incomplete { start },
                }
            }
        }
    }
}

/// `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

/// The elements of a `#list` (RFC 9110 §5.6.1), empty ones dropped, OWS trimmed.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// The line starting at `at`: its content without the line end, and the offset after the
/// LF. A line whose LF has no CR before it is a [`Policy::BareLf`].
fn crlf_line(input: &[u8], at: usize) -> Step<(&[u8], usize)> {
    let Some(lf) = input[at..].iter().position(|&b| b == b'\n') else {
        return Err(Stop::Incomplete);
    };
    let line = &input[at..at + lf];
    match line.strip_suffix(b"\r") {
        Some(content) => Ok((content, at + lf + 1)),
        None => policy(Policy::BareLf),
    }
}

/// A field line of a head or trailer section (RFC 9112 §5): `name ":" OWS value OWS`.
/// Returns the name and the trimmed value.
fn field_line(line: &[u8]) -> Step<(&[u8], &[u8])> {
    if let [b' ' | b'\t', ..] = line {
        return policy(Policy::ObsFold);
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return rfc("field line without a colon");
    };
    let name = &line[..colon];
    if let [.., b' ' | b'\t'] = name {
        // RFC 9112 §5.1: a server MUST reject whitespace between name and colon.
        return rfc("whitespace before the colon");
    }
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return rfc("field name is not a token");
    }
    let value = trim_ows(&line[colon + 1..]);
    // field-value: VCHAR, obs-text, SP and HTAB inside.
    if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return rfc("control byte in a field value");
    }
    Ok((name, value))
}

/// Reads the request starting at `start` (its request line).
fn read_message(input: &[u8], start: usize) -> Step<Message> {
    // Find the end of the head by lines; check the line ends and the field-line shapes
    // ourselves (httparse is lenient about LF and reports folds as name errors).
    let (_, mut at) = crlf_line(input, start)?;
    let mut field_lines = Vec::new();
    loop {
        let (line, next) = crlf_line(input, at)?;
        at = next;
        if line.is_empty() {
            break;
        }
        field_lines.push(field_line(line)?);
    }
    let head_end = at;

    let mut slots = vec![httparse::EMPTY_HEADER; field_lines.len() + 1];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(&input[start..head_end]) {
        Ok(httparse::Status::Complete(len)) if start + len == head_end => {}
        Ok(_) => return rfc("httparse disagrees on where the head ends"),
        Err(_) => return rfc("malformed request line or field (httparse)"),
    }
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default().to_owned();
    let minor = request.version.unwrap_or_default();
    check_target(&method, &target)?;

    let mut hosts = 0;
    let mut lengths: Vec<u64> = Vec::new();
    let mut codings: Vec<Vec<u8>> = Vec::new();
    let mut has_te = false;
    let (mut close, mut keep_alive) = (false, false);
    for &(name, value) in &field_lines {
        let name = name.to_ascii_lowercase();
        match &name[..] {
            b"host" => {
                hosts += 1;
                check_host(value)?;
            }
            b"content-length" => {
                for item in value.split(|&b| b == b',').map(trim_ows) {
                    lengths.push(content_length(item)?);
                }
            }
            b"transfer-encoding" => {
                has_te = true;
                codings.extend(list_elements(value).map(|c| c.to_ascii_lowercase()));
            }
            b"connection" => {
                for option in list_elements(value) {
                    close |= option.eq_ignore_ascii_case(b"close");
                    keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            b"expect" if list_elements(value).any(|e| !e.eq_ignore_ascii_case(b"100-continue")) => {
                return policy(Policy::UnknownExpectation);
            }
            _ => {}
        }
    }
    // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, or any with several.
    if hosts > 1 || (hosts == 0 && minor == 1) {
        return rfc("missing or repeated Host");
    }
    // RFC 9110 §8.6 / RFC 9112 §6.3 item 5: differing lengths are an unrecoverable error.
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        return rfc("differing Content-Length values");
    }
    if lengths.len() > 1 {
        return policy(Policy::DuplicateContentLength);
    }
    let length = lengths.first().copied();
    let chunked = if has_te {
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        if minor == 0 {
            return rfc("Transfer-Encoding in HTTP/1.0");
        }
        if length.is_some() {
            return policy(Policy::ContentLengthWithTransferEncoding);
        }
        // RFC 9112 §6.3 item 4: chunked must be the final coding, else 400. `chunked` takes
        // no parameters (§7.1 defines none), so `chunked;x=y` is some other coding.
        if codings.last().map(Vec::as_slice) != Some(b"chunked") {
            return rfc("chunked is not the final transfer coding");
        }
        if codings
            .iter()
            .filter(|c| c.as_slice() == b"chunked")
            .count()
            > 1
        {
            return policy(Policy::ChunkedTwice);
        }
        if codings.len() > 1 {
            return policy(Policy::UnsupportedTransferCoding);
        }
        true
    } else {
        false
    };
    if method == "CONNECT" && (chunked || length.is_some_and(|n| n > 0)) {
        return policy(Policy::ConnectWithContent);
    }

    let (body, trailers, end) = if chunked {
        read_chunked(input, head_end)?
    } else {
        // RFC 9112 §6.3 items 6 and 7: Content-Length, else no body for a request.
        let n = usize::try_from(length.unwrap_or(0)).unwrap_or(usize::MAX);
        if input.len() - head_end < n {
            return Err(Stop::Incomplete);
        }
        (input[head_end..head_end + n].to_vec(), 0, head_end + n)
    };
    Ok(Message {
        start,
        end,
        method,
        target,
        minor,
        fields: field_lines.len(),
        body,
        trailers,
        // RFC 9112 §9.3: close ends it; HTTP/1.0 persists only with keep-alive.
        persistent: !close && (minor == 1 || keep_alive),
    })
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6); a value past 64 bits cannot be honoured.
fn content_length(item: &[u8]) -> Step<u64> {
    if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
        return rfc("Content-Length is not 1*DIGIT");
    }
    item.iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .map_or_else(|| rfc("Content-Length overflows"), Ok)
}

/// The request-target forms of RFC 9112 §3.2, roughly: authority-form only for CONNECT,
/// asterisk-form only for OPTIONS, otherwise origin-form or absolute-form. Finer URI
/// grammar is left to tether (its `InvalidTarget` is a tolerated rejection).
fn check_target(method: &str, target: &str) -> Step<()> {
    // RFC 9112 §3.2: none of the four forms has a fragment.
    if target.contains('#') {
        return rfc("request-target with a fragment");
    }
    // absolute-form: `scheme "://" authority ...` (RFC 3986 §3); an origin-form target
    // starts with "/" and has no authority, whatever follows (`/://` is a path).
    let after_scheme = target
        .split_once("://")
        .filter(|(scheme, _)| is_scheme(scheme))
        .map(|(_, rest)| rest);
    let ok = if method == "CONNECT" {
        !target.contains('/') && target != "*"
    } else if target == "*" {
        method == "OPTIONS"
    } else {
        target.starts_with('/') || after_scheme.is_some()
    };
    if !ok {
        return rfc("request-target form not allowed for the method");
    }
    // The authority of an absolute-form or authority-form target: a non-empty host
    // (RFC 9110 §4.2.1), no userinfo (§4.2.4), the same grammar as `Host`.
    let authority = match after_scheme {
        Some(rest) => Some(rest.split(['/', '?']).next().unwrap_or_default()),
        None if method == "CONNECT" => Some(target),
        None => None,
    };
    if let Some(authority) = authority {
        let empty_host = authority.is_empty() || authority.starts_with(':');
        if empty_host || check_host(authority.as_bytes()).is_err() {
            return rfc("request-target authority is not uri-host [ \":\" port ]");
        }
    }
    Ok(())
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// RFC 9112 §3.2: a `Host` value that is not `uri-host [ ":" port ]` (RFC 3986 §3.2.2-3)
/// is answered 400. Written from the ABNF, one rule per function.
fn check_host(value: &[u8]) -> Step<()> {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(close) => (&value[..=close], &value[close + 1..]),
            None => return rfc("Host: unclosed IP-literal"),
        },
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &[][..]),
        },
    };
    let host_ok = match host {
        [b'[', inside @ .., b']'] => ipv6_address(inside) || ipv_future(inside),
        _ => reg_name(host),
    };
    if !host_ok {
        return rfc("Host: not a uri-host");
    }
    match port {
        [] => Ok(()),
        [b':', digits @ ..] if digits.iter().all(u8::is_ascii_digit) => {
            let number = digits.iter().fold(0u64, |n, &d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
            if number > 65535 {
                policy(Policy::PortOutOfRange)
            } else {
                Ok(())
            }
        }
        _ => rfc("Host: port is not *DIGIT"),
    }
}

/// `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`.
fn sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (an IPv4address is one too).
fn reg_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let Some((&b, tail)) = rest.split_first() {
        rest = if b == b'%' {
            match tail {
                [h, l, more @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => more,
                _ => return false,
            }
        } else if unreserved(b) || sub_delim(b) {
            tail
        } else {
            return false;
        };
    }
    true
}

/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn ipv_future(inside: &[u8]) -> bool {
    let Some(rest) = inside.strip_prefix(b"v").or(inside.strip_prefix(b"V")) else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    match &rest[digits..] {
        [b'.', address @ ..] => {
            digits > 0
                && !address.is_empty()
                && address
                    .iter()
                    .all(|&b| unreserved(b) || sub_delim(b) || b == b':')
        }
        _ => false,
    }
}

/// `IPv6address` of RFC 3986 §3.2.2: eight 16-bit pieces (`h16`, 1-4 hex digits), the last
/// two of which may be an IPv4 address, with at most one `::` standing for one or more
/// zero pieces.
fn ipv6_address(text: &[u8]) -> bool {
    fn pieces(part: &[u8], may_end_in_ipv4: bool) -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let groups: Vec<&[u8]> = part.split(|&b| b == b':').collect();
        let mut count = 0;
        for (i, group) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            if last && may_end_in_ipv4 && group.contains(&b'.') {
                if !ipv4_address(group) {
                    return None;
                }
                count += 2;
            } else if (1..=4).contains(&group.len()) && group.iter().all(u8::is_ascii_hexdigit) {
                count += 1;
            } else {
                return None;
            }
        }
        Some(count)
    }
    match text.windows(2).position(|w| w == b"::") {
        None => pieces(text, true) == Some(8),
        Some(at) => {
            let (before, after) = (&text[..at], &text[at + 2..]);
            if after.windows(2).any(|w| w == b"::") {
                return false;
            }
            match (pieces(before, false), pieces(after, true)) {
                (Some(b), Some(a)) => b + a <= 7,
                _ => false,
            }
        }
    }
}

/// `IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet`, where a dec-octet
/// is 0-255 without leading zeros.
fn ipv4_address(text: &[u8]) -> bool {
    let octets: Vec<&[u8]> = text.split(|&b| b == b'.').collect();
    octets.len() == 4
        && octets.iter().all(|octet| {
            matches!(octet.len(), 1..=3)
                && octet.iter().all(u8::is_ascii_digit)
                && (octet.len() == 1 || octet[0] != b'0')
                && std::str::from_utf8(octet)
                    .is_ok_and(|o| o.parse::<u16>().is_ok_and(|n| n <= 255))
        })
}

/// Decodes a chunked body starting at `at` (RFC 9112 §7.1): the data, the number of
/// trailer fields, and the offset after the final CRLF.
fn read_chunked(input: &[u8], mut at: usize) -> Step<(Vec<u8>, usize, usize)> {
    let mut body = Vec::new();
    loop {
        let (line, next) = chunk_size_line(input, at)?;
        at = next;
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return rfc("chunk-size is not 1*HEXDIG");
        }
        let Some(size) = line[..digits].iter().try_fold(0u64, |n, &d| {
            let digit = (d as char).to_digit(16).map(u64::from)?;
            n.checked_mul(16)?.checked_add(digit)
        }) else {
            return rfc("chunk-size overflows 64 bits");
        };
        check_chunk_ext(&line[digits..])?;
        if size == 0 {
            let (trailers, end) = read_trailers(input, at)?;
            return Ok((body, trailers, end));
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if input.len() - at < size {
            return Err(Stop::Incomplete);
        }
        body.extend_from_slice(&input[at..at + size]);
        at += size;
        // chunk-data is followed by exactly CRLF.
        match &input[at..] {
            [] | [b'\r'] => return Err(Stop::Incomplete),
            [b'\r', b'\n', ..] => at += 2,
            [b'\n', ..] => return policy(Policy::BareLf),
            _ => return rfc("chunk-data not followed by CRLF"),
        }
    }
}

/// A chunk-size line: like [`crlf_line`], but a CR inside the line is an error rather
/// than part of it.
fn chunk_size_line(input: &[u8], at: usize) -> Step<(&[u8], usize)> {
    let rest = &input[at..];
    match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        None => Err(Stop::Incomplete),
        Some(i) if rest[i] == b'\n' => policy(Policy::BareLf),
        Some(i) => match rest.get(i + 1) {
            None => Err(Stop::Incomplete),
            Some(b'\n') => Ok((&rest[..i], at + i + 2)),
            Some(_) => rfc("CR not followed by LF in a chunk-size line"),
        },
    }
}

/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`.
///
/// Control bytes (other than HTAB) are never allowed, and anything but an extension after
/// the size is an error. Beyond that the grammar is not enforced: RFC 9112 §7.1.1 has
/// recipients ignore extensions they do not understand, and since an extension can hold
/// no CR or LF its end is the same CRLF whichever way it is read, so leniency there cannot
/// move a message boundary.
fn check_chunk_ext(ext: &[u8]) -> Step<()> {
    if ext.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return rfc("control byte in a chunk extension");
    }
    match trim_ows(ext) {
        [] if ext.is_empty() => Ok(()),
        [b';', ..] => Ok(()),
        _ => rfc("chunk-size followed by something other than an extension"),
    }
}

/// `trailer-section = *( field-line CRLF )` then CRLF: the number of fields and the
/// offset after the final CRLF.
fn read_trailers(input: &[u8], mut at: usize) -> Step<(usize, usize)> {
    let mut fields = 0;
    loop {
        let (line, next) = crlf_line(input, at)?;
        at = next;
        if line.is_empty() {
            return Ok((fields, at));
        }
        field_line(line)?;
        fields += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected_by(input: &[u8]) -> Why {
        match frame_requests(input).end {
            End::Rejected { why, .. } => why,
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn host_values_follow_the_abnf() {
        for good in [
            "",
            "a",
            "example.com:8080",
            "a:",
            "[::1]:443",
            "[1:2:3:4:5:6:7:8]",
            "[::ffff:192.0.2.1]",
            "[1::]",
            "[v1.fe80::a+en1]",
            "a%20b",
            "!$&'()*+,;=",
        ] {
            let input = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
            assert_eq!(
                frame_requests(input.as_bytes()).messages.len(),
                1,
                "{good:?}"
            );
        }
        for bad in [
            "user@a",
            "a b",
            "a:80:80",
            "a:http",
            "[::1",
            "[::1]x",
            "[]",
            "[:::]",
            "[1::2::3]",
            "[1:2:3:4:5:6:7:8:9]",
            "[12345::1]",
            "[::1.2.3]",
            "[::01.2.3.4]",
            "[::256.2.3.4]",
            "[::1%25eth0]",
            "[v1]",
            "[v.x]",
            "a%2",
        ] {
            let input = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
            let why = rejected_by(input.as_bytes());
            assert!(
                matches!(why, Why::Rfc(reason) if reason.starts_with("Host:")),
                "{bad:?}: {why:?}"
            );
        }
        assert_eq!(
            rejected_by(b"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"),
            Why::Policy(Policy::PortOutOfRange)
        );
    }

    /// An origin-form target is a path, whatever it holds (found by h1_differential:
    /// `/://` had been read as an absolute-form target with an empty authority).
    #[test]
    fn an_origin_form_target_has_no_authority() {
        for target in ["/://", "/a://b@c", "/x?u=http://a@b"] {
            let input = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(
                frame_requests(input.as_bytes()).messages.len(),
                1,
                "{target:?}"
            );
        }
        for target in ["http://u@a/", "http:///", "1http://a/"] {
            let input = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert!(
                matches!(rejected_by(input.as_bytes()), Why::Rfc(_)),
                "{target:?}"
            );
        }
    }

    #[test]
    fn frames_pipelined_length_and_chunked() {
        let input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nT: 1\r\n\r\n\
GET / HTTP/1.0\r\n\r\nGET /never HTTP/1.1\r\n\r\n";
        let framing = frame_requests(input);
        assert_eq!(framing.end, End::Closed);
        let bodies: Vec<&[u8]> = framing.messages.iter().map(|m| &m.body[..]).collect();
        assert_eq!(bodies, [&b"abc"[..], b"abcd", b""]);
        assert_eq!(framing.messages[1].trailers, 1);
        assert_eq!(framing.messages[1].end, framing.messages[2].start);
    }

    #[test]
    fn smuggling_shapes_are_rejected() {
        let policy = |rule| Why::Policy(rule);
        let cases: [(&[u8], Why); 8] = [
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                policy(Policy::ContentLengthWithTransferEncoding),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                policy(Policy::DuplicateContentLength),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nx",
                Why::Rfc("differing Content-Length values"),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
                Why::Rfc("chunked is not the final transfer coding"),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                policy(Policy::UnsupportedTransferCoding),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
                policy(Policy::ObsFold),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 1\r\n\r\nx",
                Why::Rfc("whitespace before the colon"),
            ),
            (
                b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                policy(Policy::ConnectWithContent),
            ),
        ];
        for (input, why) in cases {
            assert_eq!(
                rejected_by(input),
                why,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn bare_lf_in_trailers_is_refused() {
        let input =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\n\r\n";
        assert_eq!(rejected_by(input), Why::Policy(Policy::BareLf));
    }

    #[test]
    fn truncated_body_is_incomplete() {
        let input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc";
        assert_eq!(frame_requests(input).end, End::Incomplete { start: 0 });
    }
}
