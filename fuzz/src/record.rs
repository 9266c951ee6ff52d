//! Normalized events and the recorder that checks the per-event invariants.

use http::HeaderMap;
use tether_core::h1::{Error, RemoteErrorKind};

/// Header fields in map order, values as bytes.
pub type Fields = Vec<(String, Vec<u8>)>;

/// An event in a form that can be compared across runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Norm {
    /// `ServerEvent::Request`.
    Request {
        /// Method.
        method: String,
        /// Request-target as parsed.
        uri: String,
        /// Version.
        version: String,
        /// Header fields.
        headers: Fields,
    },
    /// `ClientEvent::Informational`.
    Informational {
        /// Status code.
        status: u16,
        /// Version.
        version: String,
        /// Header fields.
        headers: Fields,
    },
    /// `ClientEvent::Response`.
    Response {
        /// Status code.
        status: u16,
        /// Version.
        version: String,
        /// Header fields.
        headers: Fields,
    },
    /// Adjacent `Data` events, merged.
    Data(Vec<u8>),
    /// `End`.
    End {
        /// Trailer fields.
        trailers: Option<Fields>,
    },
    /// `Upgraded`: the trailing bytes plus everything fed after the event.
    Upgraded(Vec<u8>),
    /// `Closed`.
    Closed,
    /// `Error(Error::Remote)`.
    RemoteError {
        /// What was wrong.
        kind: RemoteErrorKind,
        /// Where in the stream.
        offset: u64,
    },
    /// `Error(Error::Local)` (never expected from `poll_event`, but recorded if it happens).
    LocalError(String),
    /// Something the harness did in answer (so that differences in our own actions show).
    Note(String),
}

impl Norm {
    fn is_terminal(&self) -> bool {
        matches!(
            self,
            Norm::Upgraded(_) | Norm::Closed | Norm::RemoteError { .. } | Norm::LocalError(_)
        )
    }
}

/// Header fields of a map, in iteration order.
pub fn fields(map: &HeaderMap) -> Fields {
    map.iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

pub(crate) fn error_norm(error: &Error) -> Norm {
    match error.remote() {
        Some(remote) => Norm::RemoteError {
            kind: remote.kind(),
            offset: remote.offset(),
        },
        None => Norm::LocalError(error.to_string()),
    }
}

/// Collects normalized events and checks the per-event invariants.
#[derive(Debug)]
pub struct Recorder {
    /// The events, adjacent `Data` merged.
    pub events: Vec<Norm>,
    /// For each entry of `events`, how many input bytes had been fed when it was recorded
    /// (for merged `Data`: when its last piece was).
    pub fed_at: Vec<u64>,
    raw: usize,
    limit: usize,
    terminal: bool,
}

impl Recorder {
    /// A recorder allowing at most `limit` events.
    pub fn new(limit: usize) -> Recorder {
        Recorder {
            events: Vec::new(),
            fed_at: Vec::new(),
            raw: 0,
            limit,
            terminal: false,
        }
    }

    /// Whether an `Error`, `Closed` or `Upgraded` was recorded.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Records one event; `fed` is the number of input bytes fed so far.
    pub fn record(&mut self, event: Norm, fed: u64) {
        self.raw += 1;
        assert!(
            self.raw <= self.limit,
            "more than {} events (runaway event loop?); last: {event:?}",
            self.limit
        );
        assert!(
            !self.terminal,
            "event after Error/Closed/Upgraded: {event:?}\nevents so far: {:?}",
            self.events
        );
        match &event {
            Norm::Data(data) => assert!(!data.is_empty(), "empty Data event"),
            Norm::RemoteError { offset, .. } => assert!(
                *offset <= fed,
                "error offset {offset} past the {fed} bytes received: {event:?}"
            ),
            _ => {}
        }
        self.terminal = event.is_terminal();
        if let (Norm::Data(new), Some(Norm::Data(last))) = (&event, self.events.last_mut()) {
            last.extend_from_slice(new);
            *self.fed_at.last_mut().expect("parallel to events") = fed;
            return;
        }
        self.events.push(event);
        self.fed_at.push(fed);
    }

    /// Bytes fed after an `Upgraded` event belong to the new protocol: append them to it,
    /// so a split run compares equal to a whole one.
    pub(crate) fn after_upgrade(&mut self, bytes: &[u8]) {
        if let Some(Norm::Upgraded(trailing)) = self.events.last_mut() {
            trailing.extend_from_slice(bytes);
        }
    }
}

/// Removes every `100 Continue` interim response: whether one is sent depends on whether the
/// body was already buffered when the application polled for it, so on the split.
pub fn without_continue(wire: &[u8]) -> Vec<u8> {
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut out = Vec::with_capacity(wire.len());
    let mut at = 0;
    while at < wire.len() {
        if wire[at..].starts_with(CONTINUE) {
            at += CONTINUE.len();
        } else {
            out.push(wire[at]);
            at += 1;
        }
    }
    out
}

/// Asserts that two runs over the same bytes agree.
pub fn assert_same(what: &str, whole: &[Norm], split: &[Norm]) {
    if whole != split {
        let first = whole
            .iter()
            .zip(split)
            .position(|(a, b)| a != b)
            .unwrap_or(whole.len().min(split.len()));
        panic!(
            "{what}: whole and split runs differ at event {first}\nwhole: {whole:#?}\nsplit: {split:#?}"
        );
    }
}

pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
