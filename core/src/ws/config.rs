//! WebSocket connection settings.

use super::deflate::DeflateConfig;
use core::time::Duration;

/// Settings of a [`WebSocket`](super::WebSocket) connection and its handshake.
///
/// The sans-IO core reads the protocol settings. The last three fields
/// ([`message_buffer`](Self::message_buffer), [`write_buffer`](Self::write_buffer),
/// [`close_linger`](Self::close_linger)) tune the async driver that moves the connection's
/// bytes (`tether_rt::websocket`); the core carries them for it and never reads them.
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
    /// Driver: how many received messages may wait for the application. When that many are
    /// unread, the driver stops reading from the transport (TCP flow control then slows the
    /// peer down). Default 32; 0 counts as 1.
    pub message_buffer: usize,
    /// Driver: how many bytes may wait to be written before sends wait (`send_*().await`
    /// returns only once the peer has read enough). Default 1 MiB; 0 counts as 1.
    pub write_buffer: usize,
    /// Driver: how long the end of a connection may take to write what is left (after a
    /// normal end), flush and shut down the transport, before the transport is dropped
    /// anyway. Default 5 s.
    pub close_linger: Duration,
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
            message_buffer: 32,
            write_buffer: 1 << 20,
            close_linger: Duration::from_secs(5),
        }
    }
}

impl WsConfig {
    /// The pong deadline after a heartbeat ping.
    pub(crate) fn pong_wait(&self) -> Option<Duration> {
        self.pong_timeout.or(self.heartbeat.map(|h| h / 2))
    }
}
