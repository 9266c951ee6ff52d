//! The proxy handshakes (`CONNECT`, SOCKS5) on arbitrary proxy answers, whole and split.
//!
//! Checked for any input: at most one event; nothing reported after it, and nothing sent
//! after a failure (after `Established`, the rest of the handshake's own messages may still
//! be due, when the proxy answered before we had written them); once the
//! input has ended (EOF) there is an event; a malformed answer's offset lies within the bytes
//! received; an `Established` leftover is exactly the input after the handshake (whole run
//! and split run agree once the bytes a driver reads after the event are added back).

use crate::split::{split, whole, Clock, Piece};
use bytes::Bytes;
use tether_core::proxy::{ProxyError, ProxyEvent, ProxyHandshake};
use tether_core::time::Instant;

/// What a run sent and how it ended (an `Established` leftover with the rest of the input
/// added back).
pub type Outcome = (Vec<u8>, ProxyEvent);

fn drive(mut machine: ProxyHandshake, data: &[u8], pieces: Vec<Piece<'_>>) -> Outcome {
    let now = Instant::ZERO;
    let mut sent = Vec::new();
    let mut event: Option<ProxyEvent> = None;
    let mut received = 0usize;
    let mut after = Vec::new();
    for piece in pieces {
        while let Some(bytes) = machine.poll_transmit(now) {
            assert!(
                !matches!(event, Some(ProxyEvent::Failed(_))),
                "bytes to send after a failure"
            );
            sent.extend_from_slice(&bytes);
        }
        if event.is_some() {
            after.extend_from_slice(piece.bytes);
            continue;
        }
        machine.handle_input(now, piece.bytes);
        received += piece.bytes.len();
        if let Some(e) = machine.poll_event() {
            check_event(&e, data, received);
            event = Some(e);
            assert_eq!(machine.poll_timeout(), None, "a deadline after the outcome");
        }
    }
    if event.is_none() {
        machine.handle_eof();
        let e = machine
            .poll_event()
            .expect("an outcome once the input has ended");
        check_event(&e, data, received);
        event = Some(e);
    }
    assert!(machine.poll_event().is_none(), "a second event");
    let mut event = event.expect("an outcome");
    while let Some(bytes) = machine.poll_transmit(now) {
        assert!(
            matches!(event, ProxyEvent::Established { .. }),
            "bytes to send after a failure"
        );
        sent.extend_from_slice(&bytes);
    }
    if let ProxyEvent::Established { leftover } = &mut event {
        let mut all = leftover.to_vec();
        all.extend_from_slice(&after);
        *leftover = Bytes::from(all);
    }
    (sent, event)
}

fn check_event(event: &ProxyEvent, data: &[u8], received: usize) {
    match event {
        ProxyEvent::Established { leftover } => assert!(
            data[..received].ends_with(leftover),
            "the leftover is not the end of what was received"
        ),
        ProxyEvent::Failed(ProxyError::Malformed { offset, .. }) => {
            assert!(*offset < received.max(1), "offset {offset} past {received}")
        }
        _ => {}
    }
}

/// Runs the handshake `make` builds on `data` whole and split by `seed`; both must agree.
pub fn check_proxy(seed: u8, data: &[u8], make: impl Fn() -> ProxyHandshake) -> Outcome {
    let whole_run = drive(make(), data, whole(data));
    let split_run = drive(make(), data, split(seed, data, Clock::Gentle));
    assert_eq!(whole_run.1, split_run.1, "whole and split runs differ");
    // What was written before a failure depends on when the driver drained it; before a
    // tunnel, every message must have been written, the same in both runs.
    if matches!(whole_run.1, ProxyEvent::Established { .. }) {
        assert_eq!(
            whole_run.0, split_run.0,
            "whole and split runs sent different bytes"
        );
    }
    whole_run
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use tether_core::proxy::{ConnectTunnel, Socks5Credentials, Socks5Handshake, Socks5Target};

    fn connect() -> ProxyHandshake {
        ProxyHandshake::Connect(ConnectTunnel::new(
            "example.com",
            443,
            &HeaderMap::new(),
            None,
        ))
    }

    fn socks5() -> ProxyHandshake {
        let target = Socks5Target::Domain("example.com".into(), 443);
        let credentials = Socks5Credentials::new("u", "p").ok();
        ProxyHandshake::Socks5(Socks5Handshake::new(&target, credentials, None))
    }

    #[test]
    fn fixed_answers() {
        for seed in 0..8 {
            let (_, event) = check_proxy(seed, b"HTTP/1.1 200 OK\r\n\r\nhello", connect);
            assert_eq!(
                event,
                ProxyEvent::Established {
                    leftover: Bytes::from_static(b"hello")
                }
            );
            let (sent, event) = check_proxy(
                seed,
                b"\x05\x02\x01\x00\x05\x00\x00\x01\0\0\0\0\0\0tail",
                socks5,
            );
            assert_eq!(&sent[..4], &[5, 2, 0, 2]);
            assert_eq!(
                event,
                ProxyEvent::Established {
                    leftover: Bytes::from_static(b"tail")
                }
            );
            let (_, event) = check_proxy(seed, b"\x05\x02\x01", socks5);
            assert_eq!(event, ProxyEvent::Failed(ProxyError::Closed));
            let (_, event) = check_proxy(seed, b"garbage\r\n\r\n", connect);
            assert!(matches!(
                event,
                ProxyEvent::Failed(ProxyError::Malformed { .. })
            ));
        }
    }
}
