//! WebSocket over a blocking socket: the server side of `/ws` (an echo) and a client, both
//! driving the sans-IO core.

use crate::now;
use bytes::Bytes;
use http::{Request, Response};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
use tether_core::h1::{ClientConnection, ClientConnectionConfig, ClientEvent, ServerConnection};
use tether_core::ws::{self, CloseReason, Negotiated, WebSocket, WsConfig, WsEvent};

/// The settings the echo server uses: heartbeat on, compression accepted.
pub fn server_config() -> WsConfig {
    let mut config = WsConfig::default();
    config.heartbeat = Some(Duration::from_secs(5));
    config
}

/// Whether a request asks for a WebSocket upgrade on `/ws`.
pub fn wants_upgrade(head: &Request<()>) -> bool {
    head.uri().path() == "/ws"
}

/// Answers an upgrade request: `101` and the negotiated settings, or the refusal.
pub fn answer_upgrade(conn: &mut ServerConnection, head: &Request<()>) -> Option<Negotiated> {
    match ws::accept(head, &["echo", "chat"], &server_config()) {
        Ok((response, negotiated)) => {
            conn.send_response(&response).expect("101");
            Some(negotiated)
        }
        Err(refusal) => {
            conn.send_response(&refusal.response()).expect("refusal");
            conn.send_end(None).expect("refusal end");
            None
        }
    }
}

/// Runs a WebSocket connection over a blocking stream: `on_event` sees every event and may
/// send; returns the final close reason.
pub fn drive(
    mut stream: TcpStream,
    mut ws: WebSocket,
    trailing: &[u8],
    mut on_event: impl FnMut(&mut WebSocket, &WsEvent),
) -> CloseReason {
    ws.handle_input(now(), trailing);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(event) = ws.poll_event() {
            if let WsEvent::Closed(reason) = event {
                while let Some(bytes) = ws.poll_transmit(now()) {
                    let _ = stream.write_all(&bytes);
                }
                let _ = stream.shutdown(Shutdown::Write);
                return reason;
            }
            on_event(&mut ws, &event);
        }
        while let Some(bytes) = ws.poll_transmit(now()) {
            if stream.write_all(&bytes).is_err() {
                ws.handle_eof();
                break;
            }
        }
        let wait = ws.poll_timeout().map(|t| {
            t.saturating_duration_since(now())
                .max(Duration::from_millis(1))
        });
        let _ = stream.set_read_timeout(wait);
        match stream.read(&mut buf) {
            Ok(0) => ws.handle_eof(),
            Ok(n) => ws.handle_input(now(), &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                ws.handle_timeout(now())
            }
            Err(_) => ws.handle_eof(),
        }
    }
}

/// The `/ws` echo: every text and binary message goes back as it came.
pub fn echo(stream: TcpStream, negotiated: Negotiated, trailing: &[u8]) {
    let ws = WebSocket::server(server_config(), negotiated.deflate, now());
    drive(stream, ws, trailing, |ws, event| {
        let _ = match event {
            WsEvent::Text(text) => ws.send_text(text),
            WsEvent::Binary(data) => ws.send_binary(data.clone()),
            _ => Ok(()),
        };
    });
}

/// A host's randomness for keys and masks: good enough for tests (not for production).
pub fn test_random() -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut state = now().as_nanos() | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state as u32).to_be_bytes()
    }
}

/// Connects our WebSocket client to `ws://127.0.0.1:port/path` over a blocking socket.
/// Returns the open connection, what was negotiated, the stream, and bytes read past the
/// handshake.
pub fn connect(
    port: u16,
    path: &str,
    protocols: &[&str],
    config: &WsConfig,
) -> Result<(WebSocket, Negotiated, TcpStream, Bytes), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let uri = format!("ws://127.0.0.1:{port}{path}")
        .parse()
        .map_err(|_| "uri")?;
    let mut random = test_random();
    let mut key = [0u8; 16];
    for chunk in key.chunks_mut(4) {
        chunk.copy_from_slice(&random());
    }
    let (handshake, request) =
        ws::ClientHandshake::new(&uri, key, protocols, config).map_err(|e| e.to_string())?;
    let mut http = ClientConnection::new(ClientConnectionConfig::default());
    http.send_request(&request).map_err(|e| e.to_string())?;
    http.send_end(None).map_err(|e| e.to_string())?;
    while let Some(bytes) = http.poll_transmit(now()) {
        stream.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    let mut response: Option<Response<()>> = None;
    let mut buf = [0u8; 8192];
    loop {
        while let Some(event) = http.poll_event() {
            match event {
                ClientEvent::Response(r) => response = Some(r),
                ClientEvent::Upgraded { trailing } => {
                    let response = response.ok_or("no response")?;
                    let negotiated = handshake.validate(&response).map_err(|e| e.to_string())?;
                    let ws =
                        WebSocket::client(config.clone(), negotiated.deflate, now(), test_random());
                    return Ok((ws, negotiated, stream, trailing));
                }
                // The body of a refusal: its status is what matters.
                ClientEvent::Data(_) => {}
                ClientEvent::End { .. } => {
                    return Err(format!("refused: {:?}", response.map(|r| r.status())))
                }
                other => return Err(format!("unexpected {other:?}")),
            }
        }
        match stream.read(&mut buf).map_err(|e| e.to_string())? {
            0 => http.handle_eof(),
            n => http.handle_input(now(), &buf[..n]),
        }
    }
}
