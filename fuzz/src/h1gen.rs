//! Structure-aware generation of HTTP/1.1 message sequences: mostly valid requests (server
//! role) and responses (client role), rendered to bytes together with what a correct parser
//! must make of them, then lightly mutated at the byte level.
//!
//! The structures derive [`Arbitrary`], so libFuzzer's byte mutations become changes of
//! method, target form, header set, framing and smuggling-relevant twists rather than
//! random noise that never gets past the request line.

use arbitrary::Arbitrary;

/// Methods, including ones with special framing (HEAD, CONNECT) and unknown tokens.
const METHODS: [&str; 12] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH", "TRACE", "PROPFIND",
    "M-SEARCH", "X_Y",
];
/// Names of harmless extra fields (none affects framing or the connection).
const FIELD_NAMES: [&str; 8] = [
    "accept",
    "user-agent",
    "x-id",
    "cookie",
    "Accept-Language",
    "X-Forwarded-For",
    "te",
    "if-none-match",
];

/// Bytes drawn from a safe alphabet (token characters), at most 12.
#[derive(Debug, Clone, Arbitrary)]
pub struct Word(pub Vec<u8>);

impl Word {
    fn render(&self) -> String {
        const ALPHABET: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
        let word: String = self
            .0
            .iter()
            .take(12)
            .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
            .collect();
        if word.is_empty() {
            "x".to_owned()
        } else {
            word
        }
    }
}

/// An extra header or trailer field with a token value.
#[derive(Debug, Clone, Arbitrary)]
pub struct GenField {
    /// Index into the field names.
    pub name: u8,
    /// Value.
    pub value: Word,
}

impl GenField {
    fn render(&self, out: &mut Vec<u8>) {
        let name = FIELD_NAMES[usize::from(self.name) % FIELD_NAMES.len()];
        out.extend_from_slice(format!("{name}: {}\r\n", self.value.render()).as_bytes());
    }
}

/// The request-target.
#[derive(Debug, Clone, Arbitrary)]
pub enum GenTarget {
    /// The form the method calls for (RFC 9112 §3.2), with this path segment.
    Natural(Word),
    /// `/segment?q=1`.
    Origin(Word),
    /// `http://example.com/segment`.
    Absolute(Word),
    /// `example.com:443`.
    Authority,
    /// `*`.
    Asterisk,
}

/// The `Host` field.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum GenHost {
    /// `Host: example.com`.
    Plain,
    /// `Host: [::1]:8080`.
    WithPort,
    /// No `Host` (valid for HTTP/1.0 only).
    Missing,
    /// Two `Host` fields.
    Twice,
    /// A valid host of a rarer shape (percent-encoded, IPvFuture, IPv4 with an embedded
    /// IPv6, an empty port), chosen by the index.
    Unusual(u8),
    /// An invalid host (userinfo, a bad port, a malformed IP literal, a bad escape), chosen
    /// by the index.
    Invalid(u8),
}

/// Valid `Host` values of the rarer shapes (RFC 3986 §3.2.2-3.2.3).
const UNUSUAL_HOSTS: [&str; 7] = [
    "ex%41mple.com",
    "[v1.fe80::a+en1]:80",
    "[::ffff:192.0.2.1]",
    "[2001:db8:0:0:1:0:0:1]:65535",
    "example.com:",
    "127.0.0.1:8080",
    "",
];

/// `Host` values a server must refuse with 400 (RFC 9112 §3.2).
const INVALID_HOSTS: [&str; 9] = [
    "user@example.com",
    "example.com:65536",
    "example.com:http",
    "[:::]",
    "[1::2::3]",
    "[v1]",
    "[::1",
    "ex%4g.com",
    "a/b",
];

/// The `Connection` field (and `Upgrade`).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum GenConnection {
    /// None.
    Absent,
    /// `Connection: keep-alive`.
    KeepAlive,
    /// `Connection: close`.
    Close,
    /// `Connection: upgrade` and `Upgrade: websocket`.
    Upgrade,
}

/// One chunk of a chunked body.
#[derive(Debug, Clone, Arbitrary)]
pub struct GenChunk {
    /// Chunk data (empty chunks are skipped: size 0 is the last chunk).
    pub data: Vec<u8>,
    /// A chunk extension `;name=value`.
    pub ext: Option<(Word, Word)>,
    /// Upper-case hex digits.
    pub upper: bool,
    /// Leading zeros of the size (0 to 3).
    pub zeros: u8,
}

/// A message body and its framing.
#[derive(Debug, Clone, Arbitrary)]
pub enum GenBody {
    /// No body and no framing header.
    None,
    /// `Content-Length`.
    Length(Vec<u8>),
    /// `Transfer-Encoding: chunked`, with trailers.
    Chunked {
        /// The chunks.
        chunks: Vec<GenChunk>,
        /// Trailer fields.
        trailers: Vec<GenField>,
    },
    /// Delimited by closing the connection (responses only; a request gets `None`).
    UntilClose(Vec<u8>),
}

/// A deviation a front proxy and a server may read differently (each one makes the message
/// one tether must refuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Twist {
    /// `Content-Length` twice with the same value.
    DuplicateContentLength,
    /// Two different `Content-Length` values.
    ConflictingContentLength,
    /// `Content-Length: N, N`.
    ContentLengthList,
    /// `Content-Length: +N`.
    SignedContentLength,
    /// A `Content-Length` beside `Transfer-Encoding: chunked`.
    ContentLengthWithChunked,
    /// `Transfer-Encoding: gzip, chunked`.
    GzipThenChunked,
    /// `Transfer-Encoding: chunked, gzip`.
    ChunkedThenGzip,
    /// `Transfer-Encoding: identity` (with a `Content-Length` body's bytes).
    Identity,
    /// `Transfer-Encoding: chunked` twice.
    ChunkedTwice,
    /// A folded field line.
    ObsFold,
    /// `Content-Length : N` (whitespace before the colon).
    SpaceBeforeColon,
    /// One field line ending in a bare LF.
    BareLf,
    /// `Expect: 200-ok`.
    UnknownExpect,
}

/// One request.
#[derive(Debug, Clone, Arbitrary)]
pub struct GenRequest {
    /// Index into the methods.
    pub method: u8,
    /// Target.
    pub target: GenTarget,
    /// HTTP/1.0 instead of 1.1.
    pub http10: bool,
    /// `Host`.
    pub host: GenHost,
    /// `Connection`.
    pub connection: GenConnection,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// Other fields.
    pub extra: Vec<GenField>,
    /// Body.
    pub body: GenBody,
    /// A smuggling-style deviation.
    pub twist: Option<Twist>,
}

/// A byte-level change applied after rendering; positions wrap around the length.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Mutation {
    /// Flip one bit.
    Flip {
        /// Position.
        at: u16,
        /// Bit (0-7).
        bit: u8,
    },
    /// Insert a byte.
    Insert {
        /// Position.
        at: u16,
        /// Byte.
        byte: u8,
    },
    /// Delete a byte.
    Delete {
        /// Position.
        at: u16,
    },
    /// Repeat a range right after itself.
    Duplicate {
        /// Start.
        at: u16,
        /// Length (up to 64).
        len: u8,
    },
}

/// Applies at most four mutations to `bytes`.
pub fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for mutation in mutations.iter().take(4) {
        let len = bytes.len();
        match *mutation {
            Mutation::Flip { at, bit } if len > 0 => {
                bytes[usize::from(at) % len] ^= 1 << (bit % 8);
            }
            Mutation::Insert { at, byte } => {
                bytes.insert(usize::from(at) % (len + 1), byte);
            }
            Mutation::Delete { at } if len > 0 => {
                bytes.remove(usize::from(at) % len);
            }
            Mutation::Duplicate { at, len: n } if len > 0 => {
                let start = usize::from(at) % len;
                let end = len.min(start + usize::from(n % 64) + 1);
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            _ => {}
        }
    }
}

/// What a correct server must make of one rendered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRequest {
    /// Method.
    pub method: String,
    /// Target as rendered.
    pub target: String,
    /// HTTP/1.0.
    pub http10: bool,
    /// Number of field lines.
    pub fields: usize,
    /// Body bytes after decoding.
    pub body: Vec<u8>,
    /// Trailer fields.
    pub trailers: usize,
    /// Offset just past the message.
    pub end: usize,
    /// Whether it must be accepted (false: it must be refused, and nothing after it read).
    pub valid: bool,
    /// Whether the connection goes on after it.
    pub persistent: bool,
}

fn chunk_size(chunk: &GenChunk) -> String {
    let zeros = "0".repeat(usize::from(chunk.zeros % 4));
    let size = chunk.data.len();
    if chunk.upper {
        format!("{zeros}{size:X}")
    } else {
        format!("{zeros}{size:x}")
    }
}

/// Renders a chunked body: chunks (empty ones dropped), the last chunk, trailers. Returns
/// the decoded data and the trailer count.
fn render_chunked(
    out: &mut Vec<u8>,
    chunks: &[GenChunk],
    trailers: &[GenField],
) -> (Vec<u8>, usize) {
    let mut data = Vec::new();
    for chunk in chunks.iter().take(8).filter(|c| !c.data.is_empty()) {
        out.extend_from_slice(chunk_size(chunk).as_bytes());
        if let Some((name, value)) = &chunk.ext {
            out.extend_from_slice(format!(";{}={}", name.render(), value.render()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&chunk.data);
        out.extend_from_slice(b"\r\n");
        data.extend_from_slice(&chunk.data);
    }
    out.extend_from_slice(b"0\r\n");
    let trailers = &trailers[..trailers.len().min(4)];
    for field in trailers {
        field.render(out);
    }
    out.extend_from_slice(b"\r\n");
    (data, trailers.len())
}

/// Who a message's framing lines are for: a request writes `Content-Length` only for a
/// non-empty body, and a field twist (obs-fold, bare LF, `Expect`) replaces it, since the
/// request is refused at its head anyway; a response always writes it (`0` included) and
/// keeps it beside a field twist, since a client may accept the response and must then
/// frame its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FramingFor {
    Request { body: bool },
    Response,
}

/// The framing field lines (each with its line end) for a body that is `chunked` or `n`
/// bytes long, bent by `twist`.
fn framing_lines(twist: Option<Twist>, chunked: bool, n: usize, role: FramingFor) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut add = |text: String| lines.push(format!("{text}\r\n").into_bytes());
    let te = match twist {
        Some(Twist::GzipThenChunked) => Some("gzip, chunked"),
        Some(Twist::ChunkedThenGzip) => Some("chunked, gzip"),
        Some(Twist::ChunkedTwice) => Some("chunked, chunked"),
        Some(Twist::Identity) if !chunked => Some("identity"),
        Some(Twist::Identity) => Some("identity, chunked"),
        _ if chunked => Some("chunked"),
        Some(Twist::ContentLengthWithChunked) => Some("chunked"),
        _ => None,
    };
    if let Some(te) = te {
        add(format!("Transfer-Encoding: {te}"));
    }
    let plain_length = match role {
        FramingFor::Request { body } => !chunked && body,
        FramingFor::Response => !chunked,
    };
    match twist {
        Some(Twist::DuplicateContentLength) => {
            add(format!("Content-Length: {n}"));
            add(format!("content-length: {n}"));
        }
        Some(Twist::ConflictingContentLength) => {
            add(format!("Content-Length: {n}"));
            add(format!("Content-Length: {}", n + 1));
        }
        Some(Twist::ContentLengthList) => add(format!("Content-Length: {n}, {n}")),
        Some(Twist::SignedContentLength) => add(format!("Content-Length: +{n}")),
        Some(Twist::SpaceBeforeColon) => add(format!("Content-Length : {n}")),
        Some(Twist::ContentLengthWithChunked | Twist::Identity) => {
            add(format!("Content-Length: {n}"))
        }
        Some(twist @ (Twist::UnknownExpect | Twist::ObsFold | Twist::BareLf)) => {
            if role == FramingFor::Response && plain_length {
                add(format!("Content-Length: {n}"));
            }
            match twist {
                Twist::UnknownExpect => add("Expect: 200-ok".into()),
                Twist::ObsFold => lines.push(b"X-Folded: a\r\n b\r\n".to_vec()),
                _ => lines.push(b"X-Bare: a\n".to_vec()),
            }
        }
        _ if plain_length => add(format!("Content-Length: {n}")),
        _ => {}
    }
    lines
}

impl Twist {
    /// Whether the twist bends a chunked body's fields (else a `Content-Length` body's, or
    /// any body's).
    fn for_chunked(self) -> Option<bool> {
        match self {
            Twist::ContentLengthWithChunked
            | Twist::GzipThenChunked
            | Twist::ChunkedThenGzip
            | Twist::ChunkedTwice
            | Twist::Identity => Some(true),
            Twist::DuplicateContentLength
            | Twist::ConflictingContentLength
            | Twist::ContentLengthList
            | Twist::SignedContentLength
            | Twist::SpaceBeforeColon => Some(false),
            Twist::ObsFold | Twist::BareLf | Twist::UnknownExpect => None,
        }
    }

    /// What a client must make of a response bent by this twist (RFC 9112 §6.3, RFC 9110
    /// §8.6), and where tether is stricter than the RFC requires, the rule that says why.
    fn response_outcome(self) -> ResponseOutcome {
        match self {
            // Equal values may be merged into one (RFC 9110 §8.6); tether's client does, as
            // browsers and curl do.
            Twist::DuplicateContentLength | Twist::ContentLengthList => ResponseOutcome::Framed,
            // A coding before `chunked` is the content's; the framing is chunked.
            Twist::GzipThenChunked => ResponseOutcome::Framed,
            // The client role takes a bare LF, as browsers do; `Expect` means nothing in a
            // response.
            Twist::BareLf | Twist::UnknownExpect => ResponseOutcome::Framed,
            // Transfer-Encoding overrides Content-Length, and the message "ought to be
            // handled as an error" (RFC 9112 §6.3 item 3): framed as chunked, and the
            // connection is not used again.
            Twist::ContentLengthWithChunked | Twist::Identity => ResponseOutcome::FramedThenClosed,
            // An invalid Content-Length: the client must discard the response (item 5);
            // `chunked` twice is forbidden to senders (RFC 9112 §7); whitespace before the
            // colon is forbidden (§5.1).
            Twist::ConflictingContentLength
            | Twist::SignedContentLength
            | Twist::ChunkedTwice
            | Twist::SpaceBeforeColon => ResponseOutcome::Refused,
            // Stricter than the RFC, by choice: `chunked, gzip` would be read until the
            // connection closes (item 4), a body no client could decode; a user agent must
            // unfold obs-fold (RFC 9112 §5.2), but tether refuses it in both roles, so that
            // a folded line can never be read two ways.
            Twist::ChunkedThenGzip | Twist::ObsFold => ResponseOutcome::Refused,
        }
    }
}

/// What a correct client does with a response bent by a [`Twist`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// Reads it as usual.
    Framed,
    /// Reads it, then does not use the connection again.
    FramedThenClosed,
    /// Refuses it with an error.
    Refused,
}

impl GenRequest {
    fn method(&self) -> &'static str {
        METHODS[usize::from(self.method) % METHODS.len()]
    }

    /// The target and whether it suits the method.
    fn target(&self) -> (String, bool) {
        let method = self.method();
        let natural = match (&self.target, method) {
            (GenTarget::Natural(_), "CONNECT") => GenTarget::Authority,
            (GenTarget::Natural(w), _) => GenTarget::Origin(w.clone()),
            (other, _) => other.clone(),
        };
        match natural {
            GenTarget::Origin(w) => (format!("/{}?q=1", w.render()), method != "CONNECT"),
            GenTarget::Absolute(w) => (
                format!("http://example.com/{}", w.render()),
                method != "CONNECT",
            ),
            GenTarget::Authority => ("example.com:443".to_owned(), method == "CONNECT"),
            GenTarget::Asterisk => ("*".to_owned(), method == "OPTIONS"),
            GenTarget::Natural(_) => unreachable!("resolved above"),
        }
    }

    /// Appends the request to `out` and says what it must parse as.
    pub fn render(&self, out: &mut Vec<u8>) -> ExpectedRequest {
        let method = self.method();
        let (target, target_ok) = self.target();
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        out.extend_from_slice(format!("{method} {target} {version}\r\n").as_bytes());
        // Field lines, each with its line end.
        let mut fields: Vec<Vec<u8>> = Vec::new();
        let mut add = |text: String| fields.push(format!("{text}\r\n").into_bytes());
        let host_ok = match self.host {
            GenHost::Plain => {
                add("Host: example.com".into());
                true
            }
            GenHost::WithPort => {
                add("host: [::1]:8080".into());
                true
            }
            GenHost::Missing => self.http10,
            GenHost::Twice => {
                add("Host: example.com".into());
                add("Host: example.org".into());
                false
            }
            GenHost::Unusual(i) => {
                add(format!("Host: {}", pick(&UNUSUAL_HOSTS, i)));
                true
            }
            GenHost::Invalid(i) => {
                add(format!("Host: {}", pick(&INVALID_HOSTS, i)));
                false
            }
        };
        let (mut close, mut keep_alive) = (false, false);
        match self.connection {
            GenConnection::Absent => {}
            GenConnection::KeepAlive => {
                add("Connection: keep-alive".into());
                keep_alive = true;
            }
            GenConnection::Close => {
                add("Connection: close".into());
                close = true;
            }
            GenConnection::Upgrade => {
                add("Connection: Upgrade".into());
                add("Upgrade: websocket".into());
            }
        }
        if self.expect_continue {
            add("Expect: 100-continue".into());
        }
        for field in self.extra.iter().take(6) {
            let mut line = Vec::new();
            field.render(&mut line);
            add(String::from_utf8(line)
                .expect("ascii")
                .trim_end()
                .to_owned());
        }
        // The framing fields and the body as sent; the body as decoded; trailers.
        let (wire, body, trailers, chunked) = match &self.body {
            GenBody::None | GenBody::UntilClose(_) => (Vec::new(), Vec::new(), 0, false),
            GenBody::Length(data) => (data.clone(), data.clone(), 0, false),
            GenBody::Chunked { chunks, trailers } => {
                let mut wire = Vec::new();
                let (data, count) = render_chunked(&mut wire, chunks, trailers);
                (wire, data, count, true)
            }
        };
        let n = if chunked { 5 } else { body.len() };
        fields.extend(framing_lines(
            self.twist,
            chunked,
            n,
            FramingFor::Request {
                body: !body.is_empty(),
            },
        ));
        for field in &fields {
            out.extend_from_slice(field);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&wire);
        let valid = target_ok
            && host_ok
            && self.twist.is_none()
            && !(self.http10 && chunked)
            && !(method == "CONNECT" && (chunked || !body.is_empty()));
        ExpectedRequest {
            method: method.to_owned(),
            target,
            http10: self.http10,
            fields: fields.len(),
            body,
            trailers,
            end: out.len(),
            valid,
            persistent: !close && (!self.http10 || keep_alive),
        }
    }
}

/// Renders a request sequence (at most eight) back to back.
pub fn render_requests(requests: &[GenRequest]) -> (Vec<u8>, Vec<ExpectedRequest>) {
    let mut out = Vec::new();
    let expected = requests
        .iter()
        .take(8)
        .map(|r| r.render(&mut out))
        .collect();
    (out, expected)
}

/// `items[index]`, the index taken modulo the length: how a generator byte picks one of a
/// list.
pub(crate) fn pick<T: Copy>(items: &[T], index: u8) -> T {
    items[usize::from(index) % items.len()]
}

/// Status codes of final responses, including the bodiless 204 and 304.
const STATUSES: [u16; 8] = [200, 201, 204, 206, 301, 304, 404, 500];

/// One response (with interim ones before it).
#[derive(Debug, Clone, Arbitrary)]
pub struct GenResponse {
    /// `100 Continue` / `103 Early Hints` first: bit 0 and bit 1.
    pub interim: u8,
    /// Index into the statuses.
    pub status: u8,
    /// HTTP/1.0 (then the connection ends after it).
    pub http10: bool,
    /// `Connection: close` (with `Close`) or `keep-alive`.
    pub connection: GenConnection,
    /// Other fields.
    pub extra: Vec<GenField>,
    /// Body.
    pub body: GenBody,
    /// A smuggling-style deviation of its framing fields (applied only where it fits the
    /// body: see [`Twist::for_chunked`]; not to HTTP/1.0, bodiless or `101` answers).
    pub twist: Option<Twist>,
}

/// What a correct client must make of one rendered response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedResponse {
    /// Interim statuses, in order.
    pub interim: Vec<u16>,
    /// Final status.
    pub status: u16,
    /// Number of field lines of the final response.
    pub fields: usize,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Trailer fields (chunked only).
    pub trailers: Option<usize>,
    /// For a `101`: the bytes after its head, which belong to the new protocol.
    pub switched: Option<Vec<u8>>,
    /// It must be refused with an error (its head), and nothing after it read.
    pub refused: bool,
}

impl GenResponse {
    /// Appends the response to `out`. `head` says the request was HEAD. Returns what it
    /// must parse as, and whether the connection goes on after it.
    pub fn render(&self, out: &mut Vec<u8>, head: bool) -> (ExpectedResponse, bool) {
        let mut interim = Vec::new();
        if self.interim & 1 == 1 && !self.http10 {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            interim.push(100);
        }
        if self.interim & 2 == 2 && !self.http10 {
            out.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n");
            interim.push(103);
        }
        let status = pick(&STATUSES, self.status);
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        out.extend_from_slice(format!("{version} {status} Whatever\r\n").as_bytes());
        let mut fields = 0;
        let mut persistent = !self.http10;
        match self.connection {
            GenConnection::Close => {
                out.extend_from_slice(b"Connection: close\r\n");
                fields += 1;
                persistent = false;
            }
            GenConnection::KeepAlive => {
                out.extend_from_slice(b"Connection: keep-alive\r\n");
                fields += 1;
            }
            GenConnection::Absent | GenConnection::Upgrade => {}
        }
        for field in self.extra.iter().take(6) {
            field.render(out);
            fields += 1;
        }
        let bodiless = head || status == 204 || status == 304;
        let chunked_body = matches!(self.body, GenBody::Chunked { .. });
        let twist = self.twist.filter(|t| {
            !bodiless
                && !self.http10
                && matches!(self.body, GenBody::Length(_) | GenBody::Chunked { .. })
                && t.for_chunked().is_none_or(|c| c == chunked_body)
        });
        let outcome = twist.map_or(ResponseOutcome::Framed, Twist::response_outcome);
        let mut framing = |out: &mut Vec<u8>, chunked: bool, n: usize| {
            let lines = framing_lines(twist, chunked, n, FramingFor::Response);
            fields += lines.len();
            lines.iter().for_each(|line| out.extend_from_slice(line));
            out.extend_from_slice(b"\r\n");
        };
        let mut trailers = None;
        let body = match &self.body {
            GenBody::Length(data) if status != 204 => {
                framing(out, false, data.len());
                if bodiless {
                    Vec::new()
                } else {
                    out.extend_from_slice(data);
                    data.clone()
                }
            }
            GenBody::Chunked {
                chunks,
                trailers: t,
            } if !bodiless && !self.http10 => {
                framing(out, true, 5);
                let (data, count) = render_chunked(out, chunks, t);
                trailers = Some(count);
                data
            }
            GenBody::UntilClose(data) if !bodiless => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
                persistent = false;
                data.clone()
            }
            _ => {
                // No body: say so explicitly where the status does not.
                if !bodiless {
                    out.extend_from_slice(b"Content-Length: 0\r\n");
                    fields += 1;
                }
                out.extend_from_slice(b"\r\n");
                Vec::new()
            }
        };
        match outcome {
            ResponseOutcome::Framed => {}
            ResponseOutcome::FramedThenClosed | ResponseOutcome::Refused => persistent = false,
        }
        let expected = ExpectedResponse {
            interim,
            status,
            fields,
            body,
            trailers,
            switched: None,
            refused: outcome == ResponseOutcome::Refused,
        };
        (expected, persistent)
    }

    /// Appends this response as a `101 Switching Protocols` (after its interim responses)
    /// to an upgrade request, its extra fields included, followed by `tunnel`: bytes of the
    /// new protocol, which the client must hand over untouched.
    fn render_switch(&self, out: &mut Vec<u8>, tunnel: &[u8]) -> ExpectedResponse {
        let mut interim = Vec::new();
        if self.interim & 1 == 1 {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            interim.push(100);
        }
        if self.interim & 2 == 2 {
            out.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n");
            interim.push(103);
        }
        out.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        );
        let mut fields = 2;
        for field in self.extra.iter().take(6) {
            field.render(out);
            fields += 1;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(tunnel);
        ExpectedResponse {
            interim,
            status: 101,
            fields,
            body: Vec::new(),
            trailers: None,
            switched: Some(tunnel.to_vec()),
            refused: false,
        }
    }

    /// Whether this, as the first response, answers an upgrade request with a `101`.
    fn switches(&self) -> bool {
        matches!(self.connection, GenConnection::Upgrade) && !self.http10
    }
}

/// Whether the client's first request asks for an upgrade: the first response is a `101`
/// (its `connection` is `Upgrade`) and the request was not HEAD.
pub fn asks_upgrade(responses: &[GenResponse], head: bool) -> bool {
    !head && responses.first().is_some_and(GenResponse::switches)
}

/// Renders responses to a first request (`head`: it was HEAD) and the GETs after it, up
/// to and including the first one after which the connection cannot go on.
pub fn render_responses(responses: &[GenResponse], head: bool) -> (Vec<u8>, Vec<ExpectedResponse>) {
    let mut out = Vec::new();
    let mut expected = Vec::new();
    if let (true, [first, rest @ ..]) = (asks_upgrade(responses, head), responses) {
        // The tunnel: the later responses' bytes, which are now just data.
        let (tunnel, _) = render_responses(&rest[..rest.len().min(6)], false);
        expected.push(first.render_switch(&mut out, &tunnel));
        return (out, expected);
    }
    for (i, response) in responses.iter().take(6).enumerate() {
        let (e, persistent) = response.render(&mut out, head && i == 0);
        expected.push(e);
        if !persistent {
            break;
        }
    }
    (out, expected)
}

/// The structured input of `h1_structured` and `h1_differential`.
#[derive(Debug, Clone, Arbitrary)]
pub enum Structured {
    /// Requests for a server.
    Server {
        /// Seeds the split.
        seed: u8,
        /// The requests.
        requests: Vec<GenRequest>,
        /// Applied after rendering.
        mutations: Vec<Mutation>,
    },
    /// Responses for a client.
    Client {
        /// Seeds the split.
        seed: u8,
        /// The first request was HEAD (else GET).
        head: bool,
        /// The responses.
        responses: Vec<GenResponse>,
        /// Applied after rendering.
        mutations: Vec<Mutation>,
    },
}
