//! WebSocket connection settings.

use super::deflate::DeflateConfig;
use core::time::Duration;

/// Settings of a [`WebSocket`](super::WebSocket) connection and its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// Largest payload of one frame (1009 when exceeded). Default 16 MiB, like tungstenite.
    pub max_frame_size: usize,
    /// Largest message, after decompression (1009). Default 64 MiB, like tungstenite.
    pub max_message_size: usize,
    /// Send a ping when nothing has arrived for this long; any inbound byte counts as life
    /// (aiohttp's `heartbeat`). Default off.
    pub heartbeat: Option<Duration>,
    /// How long to wait, after a heartbeat ping, for a pong (or any inbound byte) before the
    /// connection ends as abnormal (1006, "ping timeout"). Default: half the heartbeat.
    pub pong_timeout: Option<Duration>,
    /// After we send a close frame, how long to wait for the peer's. Default 10 s (aiohttp's
    /// `ws_close`).
    pub close_timeout: Duration,
    /// Close (1001, "idle timeout") when nothing at all arrives for this long. Default off.
    pub idle_timeout: Option<Duration>,
    /// permessage-deflate: offered (client) or accepted (server) when `Some`. Default on.
    pub deflate: Option<DeflateConfig>,
}

impl Default for WsConfig {
    fn default() -> WsConfig {
        WsConfig {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            heartbeat: None,
            pong_timeout: None,
            close_timeout: Duration::from_secs(10),
            idle_timeout: None,
            deflate: Some(DeflateConfig::default()),
        }
    }
}

impl WsConfig {
    /// The pong deadline after a heartbeat ping.
    pub(crate) fn pong_wait(&self) -> Option<Duration> {
        self.pong_timeout.or(self.heartbeat.map(|h| h / 2))
    }
}
