//! Replays byte-level test vectors (`wasm/test/vectors/*.json`) against the core's sans-IO
//! state machines, with no runtime in between: bytes, EOF, clock ticks and commands in;
//! events, output bytes and the next deadline out.
//!
//! The vectors are written natively by `wasm/tests/vectors.rs` through [`step`] and replayed
//! in every JS runtime through [`Replay`]: one call per part of a step (the bytes crossing as
//! a host's would), and [`Replay::step`], which is [`step`]. Both describe the events with
//! the same functions here, so a replay in WebAssembly that matches the file behaves byte for
//! byte like native code.
//!
//! # The vector format
//!
//! A scenario is a role (`h1-server`, `h1-client`, `ws-server`, `ws-client`), a config
//! object ([`Session::new`]) and steps. A step happens `at` a time in milliseconds and is one
//! of `{"input": BYTES}`, `{"eof": true}`, `{"timeout": true}` (the clock reached `at`) or
//! `{"action": ACTION}` (a command: see [`Session::action`]). An optional `"poll": n`
//! polls at most `n` events after it (the application is not reading on); otherwise every
//! event is polled. Its `expect` holds what followed: `events`, the `output` written at
//! `at`, the next `deadline` (milliseconds, or `null`) and the `state`.
//!
//! BYTES are a JSON string (its UTF-8 encoding) or `{"hex": "..."}`; vectors use the string
//! for text (UTF-8 without control characters other than CR, LF and tab).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, Uri};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use tether_core::h1::{
    ClientConnection, ClientConnectionConfig, ClientEvent, Error as H1Error, Limits, RequestBody,
    ServerConnection, ServerConnectionConfig, ServerEvent,
};
use tether_core::time::Instant;
use tether_core::ws::{
    self, ClientHandshake, CloseReason, DeflateConfig, DeflateParams, MessageKind, WebSocket,
    WsConfig, WsEvent,
};
use wasm_bindgen::prelude::*;

// ---- bytes and time in JSON ----

/// Bytes as a vector writes them: a string when they are UTF-8 text (no control characters
/// but CR, LF and tab), else `{"hex": "..."}`.
pub fn bytes_value(data: &[u8]) -> Value {
    let text = std::str::from_utf8(data).ok().filter(|text| {
        !text
            .chars()
            .any(|c| c.is_control() && !"\r\n\t".contains(c))
    });
    match text {
        Some(text) => Value::String(text.to_owned()),
        None => {
            let mut hex = String::with_capacity(data.len() * 2);
            for byte in data {
                hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
                hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
            }
            json!({ "hex": hex })
        }
    }
}

/// The bytes a vector's BYTES value stands for.
pub fn bytes_of(value: &Value) -> Result<Vec<u8>, String> {
    match value {
        Value::String(text) => Ok(text.as_bytes().to_vec()),
        Value::Object(object) if object.len() == 1 => {
            let hex = object
                .get("hex")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("not bytes: {value}"))?;
            let digit = |c: u8| match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(format!("not a hex digit in {hex:?}")),
            };
            let hex = hex.as_bytes();
            if hex.len() % 2 != 0 {
                return Err("odd number of hex digits".into());
            }
            hex.chunks(2)
                .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
                .collect()
        }
        _ => Err(format!("not bytes: {value}")),
    }
}

/// The instant `ms` milliseconds after the origin (negative or NaN: the origin).
pub fn instant(ms: f64) -> Instant {
    if ms.is_finite() && ms > 0.0 {
        Instant::from_nanos((ms * 1e6).round() as u64)
    } else {
        Instant::ZERO
    }
}

fn millis_of(at: Instant) -> f64 {
    at.as_nanos() as f64 / 1e6
}

/// A time as a vector writes it: whole milliseconds as an integer.
fn time_value(ms: f64) -> Value {
    if ms.fract() == 0.0 && ms >= 0.0 && ms < 2f64.powi(53) {
        json!(ms as u64)
    } else {
        json!(ms)
    }
}

fn duration(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        Duration::from_secs_f64(ms / 1e3)
    } else {
        Duration::ZERO
    }
}

// ---- config ----

/// A timeout: absent (keep the default), `null` (off) or milliseconds.
type Millis = Option<Option<f64>>;

fn millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
    Ok(Some(Option::<f64>::deserialize(d)?))
}

fn set(target: &mut Option<Duration>, value: Millis) {
    if let Some(value) = value {
        *target = value.map(duration);
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitSettings {
    max_head_size: Option<usize>,
    max_headers: Option<usize>,
    max_target_len: Option<usize>,
    max_chunk_ext_size: Option<usize>,
    max_trailer_size: Option<usize>,
    max_body_size: Option<u64>,
}

impl LimitSettings {
    fn apply(&self, limits: &mut Limits) {
        let pairs = [
            (&mut limits.max_head_size, self.max_head_size),
            (&mut limits.max_headers, self.max_headers),
            (&mut limits.max_target_len, self.max_target_len),
            (&mut limits.max_chunk_ext_size, self.max_chunk_ext_size),
            (&mut limits.max_trailer_size, self.max_trailer_size),
        ];
        for (target, value) in pairs {
            if let Some(value) = value {
                *target = value;
            }
        }
        if let Some(value) = self.max_body_size {
            limits.max_body_size = value;
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TimeoutSettings {
    #[serde(default, deserialize_with = "millis")]
    head: Millis,
    #[serde(default, deserialize_with = "millis")]
    keep_alive: Millis,
    #[serde(default, deserialize_with = "millis")]
    body_read: Millis,
}

/// permessage-deflate settings (`WsConfig::deflate`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeflateSettings {
    server_no_context_takeover: Option<bool>,
    client_no_context_takeover: Option<bool>,
    level: Option<u32>,
    min_size: Option<usize>,
}

/// Negotiated permessage-deflate parameters (`DeflateParams`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NegotiatedSettings {
    server_no_context_takeover: Option<bool>,
    client_no_context_takeover: Option<bool>,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<u8>,
}

impl NegotiatedSettings {
    fn params(&self) -> DeflateParams {
        let mut params = DeflateParams::default();
        if let Some(v) = self.server_no_context_takeover {
            params.server_no_context_takeover = v;
        }
        if let Some(v) = self.client_no_context_takeover {
            params.client_no_context_takeover = v;
        }
        if let Some(v) = self.server_max_window_bits {
            params.server_max_window_bits = v;
        }
        if let Some(v) = self.client_max_window_bits {
            params.client_max_window_bits = v;
        }
        params
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WsSettings {
    max_frame_size: Option<usize>,
    max_message_size: Option<usize>,
    #[serde(default, deserialize_with = "millis")]
    heartbeat: Millis,
    #[serde(default, deserialize_with = "millis")]
    pong_timeout: Millis,
    close_timeout: Option<f64>,
    #[serde(default, deserialize_with = "millis")]
    idle_timeout: Millis,
    /// permessage-deflate offered (client) or accepted (server) in a handshake; absent or
    /// `null`: off (unlike `WsConfig`'s default, so that a vector says what it uses).
    deflate: Option<DeflateSettings>,
}

impl WsSettings {
    fn config(&self) -> WsConfig {
        let mut config = WsConfig::default();
        config.deflate = None;
        if let Some(n) = self.max_frame_size {
            config.max_frame_size = n;
        }
        if let Some(n) = self.max_message_size {
            config.max_message_size = n;
        }
        set(&mut config.heartbeat, self.heartbeat);
        set(&mut config.pong_timeout, self.pong_timeout);
        set(&mut config.idle_timeout, self.idle_timeout);
        if let Some(ms) = self.close_timeout {
            config.close_timeout = duration(ms);
        }
        if let Some(settings) = &self.deflate {
            let mut deflate = DeflateConfig::default();
            if let Some(v) = settings.server_no_context_takeover {
                deflate.server_no_context_takeover = v;
            }
            if let Some(v) = settings.client_no_context_takeover {
                deflate.client_no_context_takeover = v;
            }
            if let Some(v) = settings.level {
                deflate.level = v;
            }
            if let Some(v) = settings.min_size {
                deflate.min_size = v;
            }
            config.deflate = Some(deflate);
        }
        config
    }
}

/// A scenario's config; each role reads the fields that concern it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// h1 roles: size limits.
    #[serde(default)]
    limits: LimitSettings,
    /// `h1-server`: deadlines.
    #[serde(default)]
    timeouts: TimeoutSettings,
    /// When the connection starts (ms; default 0).
    #[serde(default)]
    start: f64,
    /// WebSocket settings: of the connection (ws roles) or of the one an h1 handshake
    /// action opens.
    #[serde(default)]
    websocket: WsSettings,
    /// ws roles: permessage-deflate as negotiated (absent: none).
    negotiated: Option<NegotiatedSettings>,
    /// Client mask keys (BYTES of 4 each), used in turn. Default: RFC 6455's example key.
    masks: Option<Vec<Value>>,
}

fn mask_keys(masks: &Option<Vec<Value>>) -> Result<Vec<[u8; 4]>, String> {
    let Some(masks) = masks else {
        return Ok(vec![[0x37, 0xfa, 0x21, 0x3d]]);
    };
    let keys = masks
        .iter()
        .map(|m| {
            <[u8; 4]>::try_from(bytes_of(m)?.as_slice()).map_err(|_| "a mask is 4 bytes".into())
        })
        .collect::<Result<Vec<_>, String>>()?;
    if keys.is_empty() {
        return Err("masks: at least one key".into());
    }
    Ok(keys)
}

fn client_socket(
    config: WsConfig,
    deflate: Option<DeflateParams>,
    now: Instant,
    keys: &[[u8; 4]],
) -> WebSocket {
    let keys = keys.to_vec();
    let mut next = 0;
    WebSocket::client(config, deflate, now, move || {
        let key = keys[next % keys.len()];
        next += 1;
        key
    })
}

// ---- actions ----

type Fields = Vec<(String, String)>;

fn default_true() -> bool {
    true
}

/// A command a step gives the state machine.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum Action {
    /// `h1-server`: `send_response`, then the body and (unless `end: false`) `send_end`.
    Respond {
        status: u16,
        #[serde(default)]
        headers: Fields,
        body: Option<Value>,
        #[serde(default = "default_true")]
        end: bool,
        trailers: Option<Fields>,
    },
    /// `h1-server`: `send_informational`.
    Informational {
        status: u16,
        #[serde(default)]
        headers: Fields,
    },
    /// `h1-server`: `shutdown`.
    Shutdown,
    /// `h1-server`: answers the last request with the WebSocket handshake (`ws::accept`):
    /// the `101`, after which the connection is a `ws-server` one; or the refusal.
    AcceptWebsocket {
        #[serde(default)]
        protocols: Vec<String>,
    },
    /// `h1-client`: `send_request`, then the body and (unless `end: false`) `send_end`.
    Request {
        method: String,
        uri: String,
        #[serde(default)]
        headers: Fields,
        body: Option<Value>,
        #[serde(default = "default_true")]
        end: bool,
        trailers: Option<Fields>,
    },
    /// `h1-client`: the WebSocket upgrade request (`ClientHandshake`) with a 16-byte `key`;
    /// a valid `101` turns the connection into a `ws-client` one.
    Websocket {
        uri: String,
        key: Value,
        #[serde(default)]
        protocols: Vec<String>,
    },
    /// h1 roles: `send_data`.
    Data { data: Value },
    /// h1 roles: `send_end`.
    End { trailers: Option<Fields> },
    /// ws roles: `send_text`.
    Text { text: String },
    /// ws roles: `send_binary`.
    Binary { data: Value },
    /// ws roles: `send_ping`.
    Ping { data: Value },
    /// ws roles: `send_pong`.
    Pong { data: Value },
    /// ws roles: `send_fragment`.
    Fragment {
        kind: String,
        data: Value,
        fin: bool,
    },
    /// ws roles: `close`.
    Close {
        code: Option<u16>,
        #[serde(default)]
        reason: String,
    },
}

fn header_map(fields: &Fields) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("{name:?}: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("{value:?}: {e}"))?;
        map.append(name, value);
    }
    Ok(map)
}

// ---- events as JSON ----

fn fields_value(headers: &HeaderMap) -> Value {
    headers
        .iter()
        .map(|(name, value)| json!([name.as_str(), bytes_value(value.as_bytes())]))
        .collect()
}

fn trailers_value(trailers: Option<&HeaderMap>) -> Value {
    trailers.map_or(Value::Null, fields_value)
}

/// The variant name of an error's `Debug` form (`WrongState { .. }` → `WrongState`).
fn kind_name(debug: String) -> String {
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A connection's error event; a server's carries the status it answered with.
fn h1_error(error: &H1Error, server: bool) -> Value {
    match error.remote() {
        Some(remote) => {
            let mut value = json!({
                "type": "error",
                "kind": format!("{:?}", remote.kind()),
                "offset": remote.offset(),
            });
            if server {
                value["status"] = json!(remote.status().as_u16());
            }
            value
        }
        None => local_error(error),
    }
}

/// A refused command (the core's `LocalError`, either protocol): nothing was sent.
fn local_error(error: &(impl std::fmt::Debug + std::fmt::Display)) -> Value {
    let debug = format!("{error:?}");
    // h1's `Error::Local(..)` wraps the kind.
    let inner = debug
        .strip_prefix("Local(")
        .map_or(debug.clone(), str::to_owned);
    json!({
        "type": "local-error",
        "kind": kind_name(inner),
        "message": error.to_string(),
    })
}

fn request_value(head: &Request<()>, body: RequestBody) -> Value {
    let mut value = json!({
        "type": "request",
        "method": head.method().as_str(),
        "target": head.uri().to_string(),
        "version": format!("{:?}", head.version()),
        "headers": fields_value(head.headers()),
    });
    let framing = match body {
        RequestBody::Empty => json!("empty"),
        RequestBody::Chunked => json!("chunked"),
        other => json!({ "length": other.length() }),
    };
    value["body"] = framing;
    value
}

fn response_value(kind: &str, head: &Response<()>) -> Value {
    json!({
        "type": kind,
        "status": head.status().as_u16(),
        "version": format!("{:?}", head.version()),
        "headers": fields_value(head.headers()),
    })
}

fn ws_value(event: &WsEvent) -> Value {
    match event {
        WsEvent::Text(text) => json!({ "type": "text", "text": text }),
        WsEvent::Binary(data) => json!({ "type": "binary", "data": bytes_value(data) }),
        WsEvent::Ping(data) => json!({ "type": "ping", "data": bytes_value(data) }),
        WsEvent::Pong(data) => json!({ "type": "pong", "data": bytes_value(data) }),
        WsEvent::Closed(reason) => closed_value(reason),
        other => json!({ "type": "unknown", "debug": format!("{other:?}") }),
    }
}

fn closed_value(reason: &CloseReason) -> Value {
    let mut value = json!({
        "type": "closed",
        "code": reason.code(),
        "clean": reason.is_clean(),
    });
    let how = match reason {
        CloseReason::ByPeer { reason, .. } => {
            value["reason"] = json!(reason);
            "peer"
        }
        CloseReason::ByUs { reason, .. } => {
            value["reason"] = json!(reason);
            "us"
        }
        CloseReason::ProtocolError(error) => {
            value["kind"] = json!(format!("{:?}", error.kind()));
            value["offset"] = json!(error.offset());
            "protocol-error"
        }
        CloseReason::PingTimeout => "ping-timeout",
        CloseReason::CloseTimeout => "close-timeout",
        CloseReason::IdleTimeout => "idle-timeout",
        CloseReason::TransportClosed => "transport-closed",
        _ => "other",
    };
    value["how"] = json!(how);
    value
}

/// Appends an event, joining body pieces that follow each other (their boundaries carry no
/// meaning).
fn push(events: &mut Vec<Value>, event: Value) {
    if event["type"] == "data" {
        if let Some(last) = events.last_mut().filter(|last| last["type"] == "data") {
            if let (Ok(mut joined), Ok(more)) = (bytes_of(&last["data"]), bytes_of(&event["data"]))
            {
                joined.extend_from_slice(&more);
                last["data"] = bytes_value(&joined);
                return;
            }
        }
    }
    events.push(event);
}

// ---- the session ----

/// The state machine under test.
enum Machine {
    Server(ServerConnection),
    Client(ClientConnection),
    Ws(WebSocket),
}

/// One connection being replayed: the machine, plus what the handshake actions remember.
pub struct Session {
    machine: Machine,
    ws_config: WsConfig,
    masks: Vec<[u8; 4]>,
    /// `h1-server`: the head of the last request (what `accept-websocket` answers).
    last_request: Option<Request<()>>,
    /// `h1-server`: the deflate parameters of an accepted handshake, until `Upgraded`.
    accepted: Option<Option<DeflateParams>>,
    /// `h1-client`: the handshake whose `101` is awaited.
    handshake: Option<ClientHandshake>,
    /// `h1-client`: the deflate parameters of a validated `101`, until `Upgraded`.
    validated: Option<Option<DeflateParams>>,
    /// Events of refused commands, reported with the next `events`.
    refused: Vec<Value>,
    /// Output of an h1 connection that switched protocols, written before the new one's.
    switched_out: Vec<u8>,
    /// The latest time the session was given.
    now: Instant,
}

impl Session {
    /// A session for `role` (`h1-server`, `h1-client`, `ws-server`, `ws-client`) with
    /// `config`, JSON: `limits` (h1: `maxHeadSize`, `maxHeaders`, `maxTargetLen`,
    /// `maxChunkExtSize`, `maxTrailerSize`, `maxBodySize`), `timeouts` (`h1-server`: `head`,
    /// `keepAlive`, `bodyRead`, ms or `null` for off), `start` (ms), `websocket`
    /// (`maxFrameSize`, `maxMessageSize`, `heartbeat`, `pongTimeout`, `closeTimeout`,
    /// `idleTimeout`, `deflate`), `negotiated` (ws roles: the permessage-deflate parameters)
    /// and `masks` (client mask keys). Unknown fields are refused.
    pub fn new(role: &str, config: &str) -> Result<Session, String> {
        let settings: Settings = if config.trim().is_empty() {
            Settings::default()
        } else {
            serde_json::from_str(config).map_err(|e| format!("config: {e}"))?
        };
        let start = instant(settings.start);
        let ws_config = settings.websocket.config();
        let masks = mask_keys(&settings.masks)?;
        let negotiated = settings.negotiated.as_ref().map(NegotiatedSettings::params);
        let machine = match role {
            "h1-server" => {
                let mut config = ServerConnectionConfig::default();
                settings.limits.apply(&mut config.limits);
                let t = settings.timeouts;
                set(&mut config.timeouts.head, t.head);
                set(&mut config.timeouts.keep_alive, t.keep_alive);
                set(&mut config.timeouts.body_read, t.body_read);
                Machine::Server(ServerConnection::new(config, start))
            }
            "h1-client" => {
                let mut config = ClientConnectionConfig::default();
                settings.limits.apply(&mut config.limits);
                Machine::Client(ClientConnection::new(config))
            }
            "ws-server" => Machine::Ws(WebSocket::server(ws_config.clone(), negotiated, start)),
            "ws-client" => Machine::Ws(client_socket(ws_config.clone(), negotiated, start, &masks)),
            other => return Err(format!("unknown role {other:?}")),
        };
        Ok(Session {
            machine,
            ws_config,
            masks,
            last_request: None,
            accepted: None,
            handshake: None,
            validated: None,
            refused: Vec::new(),
            switched_out: Vec::new(),
            now: start,
        })
    }

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Bytes received at `now`.
    pub fn input(&mut self, now: Instant, data: &[u8]) {
        self.tick(now);
        match &mut self.machine {
            Machine::Server(conn) => conn.handle_input(now, data),
            Machine::Client(conn) => conn.handle_input(now, data),
            Machine::Ws(ws) => ws.handle_input(now, data),
        }
    }

    /// The peer closed its sending side.
    pub fn eof(&mut self) {
        match &mut self.machine {
            Machine::Server(conn) => conn.handle_eof(),
            Machine::Client(conn) => conn.handle_eof(),
            Machine::Ws(ws) => ws.handle_eof(),
        }
    }

    /// The clock reached `now`.
    pub fn timeout(&mut self, now: Instant) {
        self.tick(now);
        match &mut self.machine {
            Machine::Server(conn) => conn.handle_timeout(now),
            Machine::Client(_) => {}
            Machine::Ws(ws) => ws.handle_timeout(now),
        }
    }

    /// Gives the command `action` (JSON, `{"type": ..}`) at `now`:
    ///
    /// * `h1-server`: `respond` (`status`, `headers` as `[name, value]` pairs, `body`,
    ///   `end`, `trailers`), `informational`, `data`, `end`, `shutdown`, `accept-websocket`
    ///   (`protocols`);
    /// * `h1-client`: `request` (`method`, `uri`, `headers`, `body`, `end`, `trailers`),
    ///   `websocket` (`uri`, `key`, `protocols`), `data`, `end`;
    /// * ws roles: `text`, `binary`, `ping`, `pong` (`data`), `fragment` (`kind`, `data`,
    ///   `fin`), `close` (`code`, `reason`).
    ///
    /// A command the core refuses is reported as a `local-error` event; a malformed action
    /// is an error.
    pub fn action(&mut self, now: Instant, action: &Value) -> Result<(), String> {
        self.tick(now);
        let action: Action =
            serde_json::from_value(action.clone()).map_err(|e| format!("action: {e}"))?;
        let outcome = match &mut self.machine {
            Machine::Server(conn) => server_action(
                conn,
                action,
                &self.last_request,
                &self.ws_config,
                &mut self.accepted,
            )?,
            Machine::Client(conn) => {
                client_action(conn, action, &self.ws_config, &mut self.handshake)?
            }
            Machine::Ws(ws) => ws_action(ws, action, now)?,
        };
        if let Err(refused) = outcome {
            self.refused.push(refused);
        }
        Ok(())
    }

    /// Polls the machine's events (at most `max` of them), described as JSON values, after
    /// the refused commands since the last call.
    pub fn events(&mut self, max: Option<usize>) -> Vec<Value> {
        let mut events = std::mem::take(&mut self.refused);
        let mut polled = 0;
        while max.is_none_or(|max| polled < max) {
            let Some(event) = self.poll() else {
                break;
            };
            polled += 1;
            push(&mut events, event);
        }
        events
    }

    fn poll(&mut self) -> Option<Value> {
        let now = self.now;
        match &mut self.machine {
            Machine::Server(conn) => {
                let event = conn.poll_event()?;
                Some(match event {
                    ServerEvent::Request { head, body } => {
                        let value = request_value(&head, body);
                        self.last_request = Some(head);
                        value
                    }
                    ServerEvent::Data(data) => {
                        json!({ "type": "data", "data": bytes_value(&data) })
                    }
                    ServerEvent::End { trailers } => {
                        json!({ "type": "end", "trailers": trailers_value(trailers.as_ref()) })
                    }
                    ServerEvent::Upgraded { trailing } => {
                        if let Some(deflate) = self.accepted.take() {
                            // The `101` is still queued: it goes out first.
                            while let Some(bytes) = conn.poll_transmit(now) {
                                self.switched_out.extend_from_slice(&bytes);
                            }
                            let mut ws = WebSocket::server(self.ws_config.clone(), deflate, now);
                            ws.handle_input(now, &trailing);
                            self.machine = Machine::Ws(ws);
                        }
                        json!({ "type": "upgraded", "trailing": bytes_value(&trailing) })
                    }
                    ServerEvent::Closed => json!({ "type": "closed" }),
                    ServerEvent::Error(error) => h1_error(&error, true),
                    other => json!({ "type": "unknown", "debug": format!("{other:?}") }),
                })
            }
            Machine::Client(conn) => {
                let event = conn.poll_event()?;
                Some(match event {
                    ClientEvent::Informational(head) => response_value("informational", &head),
                    ClientEvent::Response(head) => {
                        let mut value = response_value("response", &head);
                        if let Some(handshake) = self.handshake.take() {
                            match handshake.validate(&head) {
                                Ok(negotiated) => {
                                    value["handshake"] = json!({
                                        "protocol": negotiated.protocol,
                                        "deflate": negotiated.deflate.is_some(),
                                    });
                                    self.validated = Some(negotiated.deflate);
                                }
                                Err(error) => {
                                    value["handshake"] = json!({ "error": error.to_string() });
                                }
                            }
                        }
                        value
                    }
                    ClientEvent::Data(data) => {
                        json!({ "type": "data", "data": bytes_value(&data) })
                    }
                    ClientEvent::End { trailers } => {
                        json!({ "type": "end", "trailers": trailers_value(trailers.as_ref()) })
                    }
                    ClientEvent::Upgraded { trailing } => {
                        if let Some(deflate) = self.validated.take() {
                            while let Some(bytes) = conn.poll_transmit(now) {
                                self.switched_out.extend_from_slice(&bytes);
                            }
                            let config = self.ws_config.clone();
                            let mut ws = client_socket(config, deflate, now, &self.masks);
                            ws.handle_input(now, &trailing);
                            self.machine = Machine::Ws(ws);
                        }
                        json!({ "type": "upgraded", "trailing": bytes_value(&trailing) })
                    }
                    ClientEvent::Closed => json!({ "type": "closed" }),
                    ClientEvent::Error(error) => h1_error(&error, false),
                    other => json!({ "type": "unknown", "debug": format!("{other:?}") }),
                })
            }
            Machine::Ws(ws) => ws.poll_event().map(|event| ws_value(&event)),
        }
    }

    /// Everything there is to write, handed out at `now`.
    pub fn transmit(&mut self, now: Instant) -> Vec<u8> {
        self.tick(now);
        let mut out = std::mem::take(&mut self.switched_out);
        loop {
            let piece = match &mut self.machine {
                Machine::Server(conn) => conn.poll_transmit(now),
                Machine::Client(conn) => conn.poll_transmit(now),
                Machine::Ws(ws) => ws.poll_transmit(now),
            };
            match piece {
                Some(bytes) => out.extend_from_slice(&bytes),
                None => return out,
            }
        }
    }

    /// The earliest deadline, in milliseconds.
    pub fn next_timeout(&self) -> Option<f64> {
        let at = match &self.machine {
            Machine::Server(conn) => conn.poll_timeout(),
            Machine::Client(_) => None,
            Machine::Ws(ws) => ws.poll_timeout(),
        };
        at.map(millis_of)
    }

    /// What the driver would ask next: `{"protocol", "closed"}`, and for an h1 client
    /// `reusable`.
    pub fn state(&self) -> Value {
        match &self.machine {
            Machine::Server(conn) => json!({ "protocol": "h1", "closed": conn.is_closed() }),
            Machine::Client(conn) => json!({
                "protocol": "h1",
                "closed": conn.is_closed(),
                "reusable": conn.is_reusable(),
            }),
            Machine::Ws(ws) => json!({ "protocol": "ws", "closed": ws.is_closed() }),
        }
    }
}

/// What a command did: `Ok` when the core took it, else the `local-error` event.
type Outcome = Result<(), Value>;

/// The body commands both h1 roles have.
trait SendBody {
    fn data(&mut self, data: Bytes) -> Result<(), H1Error>;
    fn end(&mut self, trailers: Option<&HeaderMap>) -> Result<(), H1Error>;
}

impl SendBody for ServerConnection {
    fn data(&mut self, data: Bytes) -> Result<(), H1Error> {
        self.send_data(data)
    }
    fn end(&mut self, trailers: Option<&HeaderMap>) -> Result<(), H1Error> {
        self.send_end(trailers)
    }
}

impl SendBody for ClientConnection {
    fn data(&mut self, data: Bytes) -> Result<(), H1Error> {
        self.send_data(data)
    }
    fn end(&mut self, trailers: Option<&HeaderMap>) -> Result<(), H1Error> {
        self.send_end(trailers)
    }
}

/// `send_data` with `body` if any, then `send_end` with `trailers` if `end`.
fn send_body(
    conn: &mut impl SendBody,
    body: Option<&Value>,
    end: bool,
    trailers: Option<&Fields>,
) -> Result<Outcome, String> {
    if let Some(body) = body {
        if let Err(e) = conn.data(Bytes::from(bytes_of(body)?)) {
            return Ok(Err(local_error(&e)));
        }
    }
    if end {
        let trailers = trailers.map(header_map).transpose()?;
        if let Err(e) = conn.end(trailers.as_ref()) {
            return Ok(Err(local_error(&e)));
        }
    }
    Ok(Ok(()))
}

fn server_action(
    conn: &mut ServerConnection,
    action: Action,
    last_request: &Option<Request<()>>,
    ws_config: &WsConfig,
    accepted: &mut Option<Option<DeflateParams>>,
) -> Result<Outcome, String> {
    let refused = |e: H1Error| Ok(Err(local_error(&e)));
    match action {
        Action::Respond {
            status,
            headers,
            body,
            end,
            trailers,
        } => {
            let mut response = Response::new(());
            *response.status_mut() =
                http::StatusCode::from_u16(status).map_err(|e| e.to_string())?;
            *response.headers_mut() = header_map(&headers)?;
            if let Err(e) = conn.send_response(&response) {
                return refused(e);
            }
            send_body(conn, body.as_ref(), end, trailers.as_ref())
        }
        Action::Informational { status, headers } => {
            let mut response = Response::new(());
            *response.status_mut() =
                http::StatusCode::from_u16(status).map_err(|e| e.to_string())?;
            *response.headers_mut() = header_map(&headers)?;
            match conn.send_informational(&response) {
                Ok(()) => Ok(Ok(())),
                Err(e) => refused(e),
            }
        }
        Action::Shutdown => {
            conn.shutdown();
            Ok(Ok(()))
        }
        Action::AcceptWebsocket { protocols } => {
            let request = last_request
                .as_ref()
                .ok_or("accept-websocket: no request yet")?;
            let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
            match ws::accept(request, &protocols, ws_config) {
                Ok((response, negotiated)) => match conn.send_response(&response) {
                    Ok(()) => {
                        *accepted = Some(negotiated.deflate);
                        Ok(Ok(()))
                    }
                    Err(e) => refused(e),
                },
                Err(error) => {
                    let outcome = conn
                        .send_response(&error.response())
                        .and_then(|()| conn.send_end(None));
                    match outcome {
                        Ok(()) => Ok(Err(json!({
                            "type": "handshake-refused",
                            "status": error.status().as_u16(),
                            "message": error.to_string(),
                        }))),
                        Err(e) => refused(e),
                    }
                }
            }
        }
        Action::Data { data } => send_body(conn, Some(&data), false, None),
        Action::End { trailers } => send_body(conn, None, true, trailers.as_ref()),
        other => Err(format!("{other:?} is not an h1-server action")),
    }
}

fn client_action(
    conn: &mut ClientConnection,
    action: Action,
    ws_config: &WsConfig,
    handshake: &mut Option<ClientHandshake>,
) -> Result<Outcome, String> {
    let refused = |e: H1Error| Ok(Err(local_error(&e)));
    match action {
        Action::Request {
            method,
            uri,
            headers,
            body,
            end,
            trailers,
        } => {
            let mut request = Request::new(());
            *request.method_mut() =
                http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
            *request.uri_mut() = uri.parse::<Uri>().map_err(|e| format!("{uri:?}: {e}"))?;
            *request.headers_mut() = header_map(&headers)?;
            if let Err(e) = conn.send_request(&request) {
                return refused(e);
            }
            send_body(conn, body.as_ref(), end, trailers.as_ref())
        }
        Action::Websocket {
            uri,
            key,
            protocols,
        } => {
            let uri = uri.parse::<Uri>().map_err(|e| format!("{uri:?}: {e}"))?;
            let key = <[u8; 16]>::try_from(bytes_of(&key)?.as_slice())
                .map_err(|_| "websocket: the key is 16 bytes")?;
            let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
            let (shake, request) = ClientHandshake::new(&uri, key, &protocols, ws_config)
                .map_err(|e| format!("websocket: {e}"))?;
            if let Err(e) = conn
                .send_request(&request)
                .and_then(|()| conn.send_end(None))
            {
                return refused(e);
            }
            *handshake = Some(shake);
            Ok(Ok(()))
        }
        Action::Data { data } => send_body(conn, Some(&data), false, None),
        Action::End { trailers } => send_body(conn, None, true, trailers.as_ref()),
        other => Err(format!("{other:?} is not an h1-client action")),
    }
}

fn ws_action(ws: &mut WebSocket, action: Action, now: Instant) -> Result<Outcome, String> {
    let result = match action {
        Action::Text { text } => ws.send_text(&text),
        Action::Binary { data } => ws.send_binary(Bytes::from(bytes_of(&data)?)),
        Action::Ping { data } => ws.send_ping(Bytes::from(bytes_of(&data)?)),
        Action::Pong { data } => ws.send_pong(Bytes::from(bytes_of(&data)?)),
        Action::Fragment { kind, data, fin } => {
            let kind = match kind.as_str() {
                "text" => MessageKind::Text,
                "binary" => MessageKind::Binary,
                other => return Err(format!("fragment kind {other:?}")),
            };
            ws.send_fragment(kind, Bytes::from(bytes_of(&data)?), fin)
        }
        Action::Close { code, reason } => ws.close(now, code, &reason),
        other => return Err(format!("{other:?} is not a WebSocket action")),
    };
    Ok(result.map_err(|e| local_error(&e)))
}

// ---- one step ----

/// Runs one step of a vector (see the module docs) and returns its `expect` object:
/// the step's input, then `events`, `transmit` at the step's time, `next_timeout` and
/// `state`. [`Replay`]'s methods are these same calls, made one by one from JavaScript.
pub fn step(session: &mut Session, step: &Value) -> Result<Value, String> {
    let at_ms = step
        .get("at")
        .and_then(Value::as_f64)
        .ok_or("a step needs `at` (ms)")?;
    let at = instant(at_ms);
    if let Some(data) = step.get("input") {
        session.input(at, &bytes_of(data)?);
    } else if step.get("eof").is_some() {
        session.eof();
    } else if step.get("timeout").is_some() {
        session.timeout(at);
    } else if let Some(action) = step.get("action") {
        session.action(at, action)?;
    } else {
        return Err(format!(
            "a step needs input, eof, timeout or action: {step}"
        ));
    }
    let max = match step.get("poll") {
        None => None,
        Some(n) => Some(n.as_u64().ok_or("`poll` is a count")? as usize),
    };
    let events = session.events(max);
    let output = session.transmit(at);
    let mut expect = Map::new();
    expect.insert("events".into(), Value::Array(events));
    expect.insert("output".into(), bytes_value(&output));
    expect.insert(
        "deadline".into(),
        session.next_timeout().map_or(Value::Null, time_value),
    );
    expect.insert("state".into(), session.state());
    Ok(Value::Object(expect))
}

// ---- the JavaScript face ----

fn thrown(message: String) -> JsValue {
    JsError::new(&message).into()
}

/// A vector replay: one state machine of the core, driven directly from JavaScript.
#[wasm_bindgen]
pub struct Replay {
    session: Session,
}

#[wasm_bindgen]
impl Replay {
    /// A replay of `role` (`h1-server`, `h1-client`, `ws-server`, `ws-client`) with `config`
    /// (JSON; see `Session::new`).
    #[wasm_bindgen(constructor)]
    pub fn new(role: &str, config: &str) -> Result<Replay, JsValue> {
        Session::new(role, config)
            .map(|session| Replay { session })
            .map_err(thrown)
    }

    /// Bytes received at `now_ms`.
    pub fn input(&mut self, now_ms: f64, bytes: &[u8]) {
        self.session.input(instant(now_ms), bytes);
    }

    /// The peer closed its sending side.
    pub fn eof(&mut self) {
        self.session.eof();
    }

    /// The clock reached `now_ms`.
    pub fn timeout(&mut self, now_ms: f64) {
        self.session.timeout(instant(now_ms));
    }

    /// A command (JSON; see `Session::action`) at `now_ms`.
    pub fn action(&mut self, now_ms: f64, action: &str) -> Result<(), JsValue> {
        let action: Value = serde_json::from_str(action).map_err(|e| thrown(e.to_string()))?;
        self.session
            .action(instant(now_ms), &action)
            .map_err(thrown)
    }

    /// The events since the last call (polling at most `max`), as a JSON array.
    pub fn events(&mut self, max: Option<u32>) -> String {
        Value::Array(self.session.events(max.map(|n| n as usize))).to_string()
    }

    /// All pending output, handed out at `now_ms`.
    pub fn transmit(&mut self, now_ms: f64) -> Vec<u8> {
        self.session.transmit(instant(now_ms))
    }

    /// The earliest deadline (ms), if any.
    pub fn next_timeout(&self) -> Option<f64> {
        self.session.next_timeout()
    }

    /// `{"protocol", "closed", "reusable"?}` as JSON.
    pub fn state(&self) -> String {
        self.session.state().to_string()
    }

    /// Runs a whole step of a vector (JSON, as in the files) and returns its `expect` (JSON):
    /// what the native generator runs.
    pub fn step(&mut self, step: &str) -> Result<String, JsValue> {
        let spec: Value = serde_json::from_str(step).map_err(|e| thrown(e.to_string()))?;
        self::step(&mut self.session, &spec)
            .map(|expect| expect.to_string())
            .map_err(thrown)
    }
}
