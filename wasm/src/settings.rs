//! The settings the JS side passes, as JSON text (one string across the boundary), mapped
//! onto the Rust configs. Durations are milliseconds; `null` turns a timeout off, a missing
//! field keeps the Rust default. Unknown fields are refused, so a typo is an error rather
//! than a silently ignored setting.

use crate::outbox::ErrorInfo;
use serde::Deserialize;
use std::time::Duration;
use tether_core::time::ClientTimeouts;
use tether_core::ws::{DeflateConfig, WsConfig};
use tether_rt::{ClientConfig, ServerConfig};

/// A timeout field: absent (keep the default), `null` (off) or milliseconds.
type Millis = Option<Option<f64>>;

fn millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Ok(Some(Option::<f64>::deserialize(d)?))
}

/// Milliseconds as a `Duration`: negative or NaN is zero, too large to hold is the longest
/// `Duration` (never a panic, whatever the JS side passes).
fn duration(ms: f64) -> Duration {
    if ms.is_nan() || ms <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(ms / 1e3).unwrap_or(Duration::MAX)
}

fn apply(target: &mut Option<Duration>, value: Millis) {
    if let Some(value) = value {
        *target = value.map(duration);
    }
}

/// aiohttp's four timeouts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Timeouts {
    #[serde(default, deserialize_with = "millis")]
    total: Millis,
    #[serde(default, deserialize_with = "millis")]
    connect: Millis,
    #[serde(default, deserialize_with = "millis")]
    sock_connect: Millis,
    #[serde(default, deserialize_with = "millis")]
    sock_read: Millis,
}

impl Timeouts {
    pub(crate) fn apply(self, base: ClientTimeouts) -> ClientTimeouts {
        let mut total = base.total;
        let mut connect = base.connect;
        let mut sock_connect = base.sock_connect;
        let mut sock_read = base.sock_read;
        apply(&mut total, self.total);
        apply(&mut connect, self.connect);
        apply(&mut sock_connect, self.sock_connect);
        apply(&mut sock_read, self.sock_read);
        base.with_total(total)
            .with_connect(connect)
            .with_sock_connect(sock_connect)
            .with_sock_read(sock_read)
    }
}

/// WebSocket settings (both roles).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct WebSocketSettings {
    #[serde(default, deserialize_with = "millis")]
    heartbeat: Millis,
    #[serde(default, deserialize_with = "millis")]
    pong_timeout: Millis,
    #[serde(default, deserialize_with = "millis")]
    idle_timeout: Millis,
    max_message_size: Option<usize>,
    max_frame_size: Option<usize>,
    /// permessage-deflate: `true`/`false`, or its parameters (which also turn it on).
    compress: Option<Compress>,
}

/// `compress`: on or off, or on with these parameters.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Compress {
    On(bool),
    With(CompressSettings),
}

/// permessage-deflate's parameters; a missing field keeps the default. See `DeflateConfig`
/// for what each means in each role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CompressSettings {
    server_no_context_takeover: Option<bool>,
    client_no_context_takeover: Option<bool>,
    server_max_window_bits: Option<u8>,
    /// `null`: the client does not offer the parameter.
    #[serde(default, deserialize_with = "present")]
    client_max_window_bits: Option<Option<u8>>,
    level: Option<u32>,
    min_size: Option<usize>,
}

/// A field that may be `null`: `Some(None)` then, `None` when absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u8>>, D::Error> {
    Ok(Some(Option::<u8>::deserialize(d)?))
}

impl CompressSettings {
    fn apply(self, deflate: &mut DeflateConfig) {
        let CompressSettings {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
            level,
            min_size,
        } = self;
        if let Some(v) = server_no_context_takeover {
            deflate.server_no_context_takeover = v;
        }
        if let Some(v) = client_no_context_takeover {
            deflate.client_no_context_takeover = v;
        }
        if let Some(v) = server_max_window_bits {
            deflate.server_max_window_bits = v;
        }
        if let Some(v) = client_max_window_bits {
            deflate.client_max_window_bits = v;
        }
        if let Some(v) = level {
            deflate.level = v;
        }
        if let Some(v) = min_size {
            deflate.min_size = v;
        }
    }
}

impl WebSocketSettings {
    pub(crate) fn apply(self, mut config: WsConfig) -> WsConfig {
        apply(&mut config.heartbeat, self.heartbeat);
        apply(&mut config.pong_timeout, self.pong_timeout);
        apply(&mut config.idle_timeout, self.idle_timeout);
        if let Some(n) = self.max_message_size {
            config.max_message_size = n;
        }
        if let Some(n) = self.max_frame_size {
            config.max_frame_size = n;
        }
        match self.compress {
            Some(Compress::On(true)) if config.deflate.is_none() => {
                config.deflate = Some(DeflateConfig::default())
            }
            Some(Compress::On(false)) => config.deflate = None,
            Some(Compress::With(settings)) => {
                let mut deflate = config.deflate.take().unwrap_or_default();
                settings.apply(&mut deflate);
                config.deflate = Some(deflate);
            }
            _ => {}
        }
        config
    }
}

/// `new Client(settings)`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ClientSettings {
    #[serde(default)]
    timeout: Timeouts,
    /// Connections in all (`null`: no limit).
    #[serde(default, deserialize_with = "limit")]
    limit: Option<Option<usize>>,
    #[serde(default, deserialize_with = "limit")]
    limit_per_host: Option<Option<usize>>,
    #[serde(default, deserialize_with = "millis")]
    keep_alive_timeout: Millis,
    max_redirects: Option<usize>,
    max_body_size: Option<usize>,
    user_agent: Option<String>,
    #[serde(default)]
    websocket: WebSocketSettings,
}

fn limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<usize>>, D::Error> {
    Ok(Some(Option::<usize>::deserialize(d)?))
}

impl ClientSettings {
    pub(crate) fn parse(json: &str) -> Result<ClientSettings, ErrorInfo> {
        serde_json::from_str(json).map_err(|e| ErrorInfo::new("INVALID_SETTINGS", e.to_string()))
    }

    pub(crate) fn config(self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.timeouts = self.timeout.apply(config.timeouts);
        if let Some(limit) = self.limit {
            config.pool.limit = limit;
        }
        if let Some(limit) = self.limit_per_host {
            config.pool.limit_per_host = limit;
        }
        apply(&mut config.pool.keepalive_timeout, self.keep_alive_timeout);
        if let Some(n) = self.max_redirects {
            config.max_redirects = n;
        }
        if let Some(n) = self.max_body_size {
            config.max_body_size = n;
        }
        if let Some(agent) = self.user_agent {
            config.user_agent = agent;
        }
        config.websocket = self.websocket.apply(config.websocket);
        config
    }
}

/// `new Server(handler, settings)`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ServerSettings {
    #[serde(default, deserialize_with = "millis")]
    head_timeout: Millis,
    #[serde(default, deserialize_with = "millis")]
    keep_alive_timeout: Millis,
    #[serde(default, deserialize_with = "millis")]
    body_timeout: Millis,
    max_body_size: Option<u64>,
    max_head_size: Option<usize>,
    max_headers: Option<usize>,
    max_connections: Option<usize>,
    shutdown_timeout: Option<f64>,
    cancel_on_disconnect: Option<bool>,
    #[serde(default)]
    websocket: WebSocketSettings,
}

impl ServerSettings {
    pub(crate) fn parse(json: &str) -> Result<ServerSettings, ErrorInfo> {
        serde_json::from_str(json).map_err(|e| ErrorInfo::new("INVALID_SETTINGS", e.to_string()))
    }

    pub(crate) fn config(self) -> ServerConfig {
        let mut config = ServerConfig::default();
        let http = &mut config.http;
        apply(&mut http.timeouts.head, self.head_timeout);
        apply(&mut http.timeouts.keep_alive, self.keep_alive_timeout);
        apply(&mut http.timeouts.body_read, self.body_timeout);
        if let Some(n) = self.max_body_size {
            http.limits.max_body_size = n;
        }
        if let Some(n) = self.max_head_size {
            http.limits.max_head_size = n;
        }
        if let Some(n) = self.max_headers {
            http.limits.max_headers = n;
        }
        if let Some(n) = self.max_connections {
            config.max_connections = n.max(1);
        }
        if let Some(ms) = self.shutdown_timeout {
            config.shutdown_timeout = duration(ms);
        }
        if let Some(cancel) = self.cancel_on_disconnect {
            config.cancel_on_disconnect = cancel;
        }
        config.websocket = self.websocket.apply(config.websocket);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keeps_defaults_null_turns_off_and_typos_are_refused() {
        let config =
            ClientSettings::parse(r#"{"timeout":{"total":null,"sockRead":250},"limitPerHost":2}"#)
                .unwrap()
                .config();
        assert_eq!(config.timeouts.total, None);
        assert_eq!(config.timeouts.sock_read, Some(Duration::from_millis(250)));
        assert_eq!(config.pool.limit_per_host, Some(2));
        assert_eq!(config.pool.limit, ClientConfig::default().pool.limit);
        let huge = ClientSettings::parse(r#"{"timeout":{"total":1e300,"connect":-5}}"#)
            .unwrap()
            .config();
        assert_eq!(huge.timeouts.total, Some(Duration::MAX));
        assert_eq!(huge.timeouts.connect, Some(Duration::ZERO));
        let error = ClientSettings::parse(r#"{"timeuot":{}}"#).unwrap_err();
        assert_eq!(error.code, "INVALID_SETTINGS");
        let server = ServerSettings::parse(r#"{"headTimeout":500,"maxBodySize":10}"#)
            .unwrap()
            .config();
        assert_eq!(server.http.timeouts.head, Some(Duration::from_millis(500)));
        assert_eq!(server.http.limits.max_body_size, 10);
    }

    #[test]
    fn compression_is_on_off_or_its_parameters() {
        let websocket = |json: &str| {
            serde_json::from_str::<WebSocketSettings>(json)
                .unwrap()
                .apply(WsConfig::default())
                .deflate
        };
        assert_eq!(websocket(r#"{"compress":false}"#), None);
        assert_eq!(
            websocket(r#"{"compress":true}"#),
            Some(DeflateConfig::default())
        );
        let deflate = websocket(
            r#"{"compress":{"serverMaxWindowBits":10,"clientMaxWindowBits":null,"clientNoContextTakeover":true,"level":1}}"#,
        )
        .unwrap();
        assert_eq!(deflate.server_max_window_bits, 10);
        assert_eq!(deflate.client_max_window_bits, None);
        assert!(deflate.client_no_context_takeover && !deflate.server_no_context_takeover);
        assert_eq!((deflate.level, deflate.min_size), (1, 64));
        let deflate = websocket(r#"{"compress":{"clientMaxWindowBits":12}}"#).unwrap();
        assert_eq!(deflate.client_max_window_bits, Some(12));
        for bad in [
            r#"{"compress":{"serverMaxWindowBit":10}}"#,
            r#"{"compress":{"serverMaxWindowBits":300}}"#,
            r#"{"compress":"yes"}"#,
        ] {
            assert!(
                serde_json::from_str::<WebSocketSettings>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
