//! The `ws_differential` checks: the same bytes decoded by tether-core and by tungstenite
//! (no extensions, the same size limits) must give the same messages, pings, pongs and close,
//! and both must reject or both accept. The exceptions are strictness differences RFC 6455
//! leaves open or tungstenite gets wrong; each is written out in [`compare`].

use crate::wsgen::{mutate, render, Scenario};
use std::io::{self, Read, Write};
use tether_core::time::Instant;
use tether_core::ws::{CloseReason, ProtocolErrorKind, WebSocket, WsConfig, WsEvent};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error, Message};

/// `max_frame_size` and `max_message_size` of both decoders.
const LIMIT: usize = 1 << 16;

/// Most messages read from tungstenite (its loop has no natural bound on garbage input).
const READ_LIMIT: usize = 100_000;

/// What a decoder reported, normalized: everything before the end, then the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame.
    Close(Option<u16>, String),
    /// The stream was rejected (a protocol or limit error, or EOF before a close frame).
    Failed,
}

/// Input bytes for tungstenite, and a sink for what it writes.
struct Pipe {
    input: io::Cursor<Vec<u8>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// tether-core's view of `data` (role `client`), and its protocol error kind if it failed.
pub fn tether_view(data: &[u8], client: bool) -> (Vec<Seen>, Option<ProtocolErrorKind>) {
    let mut config = WsConfig::default();
    config.deflate = None;
    config.max_frame_size = LIMIT;
    config.max_message_size = LIMIT;
    let mut ws = if client {
        WebSocket::client(config, None, Instant::ZERO, || [1, 2, 3, 4])
    } else {
        WebSocket::server(config, None, Instant::ZERO)
    };
    ws.handle_input(Instant::ZERO, data);
    ws.handle_eof();
    let mut seen = Vec::new();
    let mut kind = None;
    while let Some(event) = ws.poll_event() {
        seen.push(match event {
            WsEvent::Text(t) => Seen::Text(t),
            WsEvent::Binary(b) => Seen::Binary(b.to_vec()),
            WsEvent::Ping(p) => Seen::Ping(p.to_vec()),
            WsEvent::Pong(p) => Seen::Pong(p.to_vec()),
            WsEvent::Closed(CloseReason::ByPeer { code, reason }) => Seen::Close(code, reason),
            WsEvent::Closed(reason) => {
                if let CloseReason::ProtocolError(e) = reason {
                    kind = Some(e.kind());
                }
                Seen::Failed
            }
            other => unreachable!("a WsEvent this target does not know: {other:?}"),
        });
        while ws.poll_transmit(Instant::ZERO).is_some() {}
    }
    (seen, kind)
}

/// tungstenite's view of `data` (role `client`).
pub fn tungstenite_view(data: &[u8], client: bool) -> Vec<Seen> {
    let config = WebSocketConfig::default()
        .max_frame_size(Some(LIMIT))
        .max_message_size(Some(LIMIT));
    let role = if client { Role::Client } else { Role::Server };
    let pipe = Pipe {
        input: io::Cursor::new(data.to_vec()),
    };
    let mut ws = tungstenite::WebSocket::from_raw_socket(pipe, role, Some(config));
    let mut seen = Vec::new();
    for _ in 0..READ_LIMIT {
        match ws.read() {
            Ok(Message::Text(t)) => seen.push(Seen::Text(t.as_str().to_owned())),
            Ok(Message::Binary(b)) => seen.push(Seen::Binary(b.to_vec())),
            Ok(Message::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
            Ok(Message::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
            Ok(Message::Close(frame)) => {
                seen.push(match frame {
                    None => Seen::Close(None, String::new()),
                    Some(f) => Seen::Close(Some(u16::from(f.code)), f.reason.as_str().to_owned()),
                });
                return seen;
            }
            Ok(Message::Frame(_)) => unreachable!("tungstenite returns raw frames only on write"),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                unreachable!("the cursor never blocks")
            }
            Err(_) => {
                seen.push(Seen::Failed);
                return seen;
            }
        }
    }
    panic!("tungstenite: more than {READ_LIMIT} messages");
}

/// tungstenite's answer to a close frame whose code may not be sent (RFC 6455 §7.4): it
/// reports, and echoes, a 1002 close with this reason instead of failing the connection.
const TUNGSTENITE_BAD_CODE: &str = "Protocol violation";

/// Compares the two views of `data`; panics on a difference RFC 6455 does not allow.
pub fn compare(data: &[u8], client: bool) {
    let (ours, kind) = tether_view(data, client);
    let theirs = tungstenite_view(data, client);
    if ours == theirs {
        return;
    }
    let (Some(our_end), Some(their_end)) = (ours.last(), theirs.last()) else {
        unreachable!("both views end with a close or a failure")
    };
    let same_before = ours[..ours.len() - 1] == theirs[..theirs.len() - 1];
    let tungstenite_bad_code = matches!(
        their_end,
        Seen::Close(Some(1002), reason) if reason == TUNGSTENITE_BAD_CODE
    );
    let excused = match (our_end, kind) {
        // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
        // tether fails frames that break this MUST; tungstenite reads them. Past that
        // frame the two cannot be compared, before it they must agree.
        (Seen::Failed, Some(ProtocolErrorKind::NonMinimalLength)) => {
            theirs.starts_with(&ours[..ours.len() - 1])
        }
        // A close code that may not appear on the wire (RFC 6455 §7.4.1-2, e.g. 1005, 999,
        // 2999): tether fails the connection with 1002; tungstenite reports and echoes a
        // 1002 close. Both send the peer 1002; only the report differs.
        (Seen::Failed, Some(ProtocolErrorKind::InvalidCloseCode)) => {
            same_before && tungstenite_bad_code
        }
        // 1014 (Bad Gateway) is registered in the IANA "WebSocket Close Code Number
        // Registry" that RFC 6455 §11.7 set up, so tether accepts it; tungstenite's list
        // stops at 1013 and treats it as an invalid code (see above).
        (Seen::Close(Some(1014), _), _) => same_before && tungstenite_bad_code,
        _ => false,
    };
    assert!(
        excused,
        "tether-core and tungstenite disagree on {data:02x?} (client: {client})\n\
         tether ({kind:?}): {ours:?}\ntungstenite: {theirs:?}"
    );
}

/// The `ws_differential` input: the first byte picks raw bytes (even; bit 1: client role) or
/// a generated [`Scenario`] without compression (odd), from the rest.
pub fn check_differential(input: &[u8]) {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        compare(rest, mode & 2 != 0);
        return;
    }
    let mut u = arbitrary::Unstructured::new(rest);
    let Ok(mut scenario) = u.arbitrary::<Scenario>() else {
        return;
    };
    // tungstenite has no permessage-deflate, and its limits are fixed here.
    scenario.deflate = None;
    scenario.small_limits = false;
    let mut data = render(&scenario.frames());
    mutate(&mut data, &scenario.mutations);
    compare(&data, scenario.client);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![b0, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn agree_on_messages_and_close() {
        let data = [
            masked(0x01, b"Hel"),
            masked(0x89, b"p"),
            masked(0x80, b"lo"),
            masked(0x82, &[0, 1]),
            masked(0x88, &[0x03, 0xe8, b'o', b'k']),
        ]
        .concat();
        compare(&data, false);
        let (ours, _) = tether_view(&data, false);
        assert_eq!(ours.last(), Some(&Seen::Close(Some(1000), "ok".into())));
    }

    #[test]
    fn documented_differences_are_excused() {
        // Non-minimal length: tether fails, tungstenite reads "a".
        compare(&[0x81, 0x7e, 0x00, 0x01, b'a'], true);
        // Close codes 1005 and 1014.
        compare(&[0x88, 0x02, 0x03, 0xed], true);
        compare(&[0x88, 0x02, 0x03, 0xf6], true);
        // Both reject: unmasked to a server, invalid UTF-8, a lone continuation.
        compare(&[0x81, 0x01, b'a'], false);
        compare(&[0x81, 0x01, 0xff], true);
        compare(&[0x80, 0x00], true);
    }

    #[test]
    fn generated_mode_runs() {
        check_differential(&[1; 64]);
        check_differential(&[3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
}
