//! The `ws_structured` checks: a generated [`Scenario`] rendered to bytes (and maybe
//! mutated) runs through the whole-vs-split driver of [`crate::ws`]; an unmutated rendering
//! must decode to exactly what was generated, and, when canonical, re-encode to the same bytes
//! through the core's own encoder.

use crate::ws::{check_frames, WsDriver};
use crate::wsgen::{assert_expected, assert_no_data_after_close, expect, mutate, render};
use crate::wsgen::{ExpectedEnd, Scenario, WireFrame};
use tether_core::time::Instant;
use tether_core::ws::{CloseReason, WebSocket, WsConfig, WsEvent};

/// Runs every check on `scenario`; returns the whole run.
pub fn check_structured(scenario: &Scenario) -> WsDriver {
    let setup = scenario.setup();
    let frames = scenario.frames();
    let mut data = render(&frames);
    let mutated = !scenario.mutations.is_empty();
    if mutated {
        mutate(&mut data, &scenario.mutations);
    }
    let run = check_frames(&setup, scenario.seed, &data);
    assert_no_data_after_close(&run.rec.events);
    if !mutated {
        let expected = expect(
            &frames,
            setup.client,
            setup.deflate.is_some(),
            &setup.config,
        );
        assert_expected(&run.rec.events, &expected);
        if is_canonical(&frames[..expected.frames_read], &expected.end) {
            check_reencode(
                &frames[..expected.frames_read],
                &run.rec.events,
                setup.client,
            );
        }
    }
    run
}

/// Frames the core's encoder writes byte for byte the same: whole uncompressed messages,
/// minimal lengths, no reserved bits, read up to a clean end.
fn is_canonical(frames: &[WireFrame], end: &ExpectedEnd) -> bool {
    matches!(end, ExpectedEnd::Closed(..) | ExpectedEnd::TransportClosed)
        && frames
            .iter()
            .all(|f| f.fin && f.rsv == 0 && !f.long_len && f.opcode != 0)
}

/// Encodes the decoded events with a connection of the peer's role (its mask keys the ones
/// the frames used): the bytes must be those of the frames.
fn check_reencode(frames: &[WireFrame], events: &[WsEvent], client: bool) {
    let masks: Vec<[u8; 4]> = frames.iter().filter_map(|f| f.mask).collect();
    let mut config = WsConfig::default();
    config.deflate = None;
    let mut encoder = if client {
        WebSocket::server(config, None, Instant::ZERO)
    } else {
        let mut keys = masks.into_iter();
        WebSocket::client(config, None, Instant::ZERO, move || {
            keys.next().expect("one mask per frame")
        })
    };
    for event in events {
        let sent = match event {
            WsEvent::Text(t) => encoder.send_text(t),
            WsEvent::Binary(b) => encoder.send_binary(b.clone()),
            WsEvent::Ping(p) => encoder.send_ping(p.clone()),
            WsEvent::Pong(p) => encoder.send_pong(p.clone()),
            WsEvent::Closed(CloseReason::ByPeer { code, reason }) => {
                encoder.close(Instant::ZERO, *code, reason)
            }
            WsEvent::Closed(_) => Ok(()),
            other => unreachable!("a WsEvent this target does not know: {other:?}"),
        };
        sent.unwrap_or_else(|e| panic!("re-encoding {event:?}: {e}"));
    }
    let mut out = Vec::new();
    while let Some(bytes) = encoder.poll_transmit(Instant::ZERO) {
        out.extend_from_slice(&bytes);
    }
    let input = render(frames);
    assert!(
        out == input,
        "encode(parse(frames)) differs from the frames\nin:  {input:02x?}\nout: {out:02x?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wsgen::*;

    fn message(text: bool, body: Body, compress: bool, cuts: Vec<u16>) -> Item {
        Item::Message(GenMessage {
            text,
            body,
            compress,
            cuts,
            controls: vec![(0, GenControl::Ping(b"between".to_vec()))],
            fault: None,
        })
    }

    fn scenario(client: bool, deflate: Option<GenDeflate>, items: Vec<Item>) -> Scenario {
        Scenario {
            client,
            deflate,
            small_limits: false,
            seed: 3,
            items,
            mutations: vec![],
        }
    }

    fn close(code: u16, reason: &str) -> Item {
        Item::Control(GenControl::Close(GenClose::Code {
            code,
            raw: true,
            reason: Reason::Text(reason.into()),
        }))
    }

    #[test]
    fn every_window_and_takeover_round_trips() {
        for bits in 0..8 {
            for flags in 0..4u8 {
                let deflate = GenDeflate {
                    server_no_context_takeover: flags & 1 != 0,
                    client_no_context_takeover: flags & 2 != 0,
                    server_bits: bits,
                    client_bits: bits,
                };
                for client in [false, true] {
                    let items = vec![
                        message(
                            true,
                            Body::Chars("héllo wörld ✓".repeat(40)),
                            true,
                            vec![7, 300],
                        ),
                        message(
                            false,
                            Body::Repeat(LongLen::Over16, "xyz".into()),
                            true,
                            vec![],
                        ),
                        message(true, Body::Chars("héllo wörld ✓".repeat(40)), true, vec![]),
                        message(false, Body::Bytes(vec![]), true, vec![]),
                        close(1000, "bye"),
                    ];
                    let run = check_structured(&scenario(client, Some(deflate), items));
                    assert_eq!(run.rec.events.len(), 6, "{:?}", run.rec.events);
                }
            }
        }
    }

    #[test]
    fn canonical_frames_reencode() {
        for client in [false, true] {
            let items = vec![
                message(true, Body::Chars("a".into()), false, vec![]),
                message(
                    false,
                    Body::Repeat(LongLen::Short126, "ü".into()),
                    false,
                    vec![],
                ),
                message(
                    false,
                    Body::Repeat(LongLen::Over16, "q".into()),
                    false,
                    vec![],
                ),
                Item::Control(GenControl::Pong(vec![1, 2])),
                close(4000, "done"),
            ];
            let s = scenario(client, None, items);
            let frames = s.frames();
            let expected = expect(&frames, client, false, &WsConfig::default());
            assert!(is_canonical(&frames, &expected.end));
            check_structured(&s);
        }
    }

    #[test]
    fn faults_fail_with_their_code() {
        let cases = [
            (FrameFault::Rsv2, 1002),
            (FrameFault::WrongMask, 1002),
            (FrameFault::ReservedOpcode(0), 1002),
            (FrameFault::NonMinimalLength, 1002),
            (FrameFault::SwapOpcode, 1002),
        ];
        for (fault, code) in cases {
            let items = vec![Item::Message(GenMessage {
                text: true,
                body: Body::Chars("abc".into()),
                compress: false,
                cuts: vec![],
                controls: vec![],
                fault: Some((0, fault)),
            })];
            let run = check_structured(&scenario(false, None, items));
            assert!(
                matches!(run.rec.closed(), Some(CloseReason::ProtocolError(e)) if e.close_code() == code),
                "{fault:?}: {:?}",
                run.rec.events
            );
        }
        let bad = message(
            true,
            Body::BadUtf8("ok".into(), BadUtf8::Surrogate, "".into()),
            false,
            vec![3],
        );
        let run = check_structured(&scenario(true, None, vec![bad]));
        assert!(
            matches!(run.rec.closed(), Some(CloseReason::ProtocolError(e)) if e.close_code() == 1007)
        );
        let run = check_structured(&scenario(false, None, vec![close(1014, "")]));
        assert!(matches!(
            run.rec.closed(),
            Some(CloseReason::ByPeer {
                code: Some(1014),
                ..
            })
        ));
    }

    #[test]
    fn close_between_pieces_of_a_bad_compressed_message() {
        // Found by ws_structured: the close may end the connection before the bad part is
        // decompressed.
        let deflate = GenDeflate {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_bits: 7,
            client_bits: 7,
        };
        let bad = Item::Message(GenMessage {
            text: true,
            body: Body::BadUtf8("x".repeat(300), BadUtf8::Ff, String::new()),
            compress: true,
            cuts: vec![1],
            controls: vec![(0, GenControl::Close(GenClose::Empty))],
            fault: None,
        });
        let run = check_structured(&scenario(false, Some(deflate), vec![bad]));
        assert!(matches!(
            run.rec.closed(),
            Some(CloseReason::ByPeer { code: None, .. })
        ));
    }

    #[test]
    fn compressed_bytes_sent_as_plain_keep_the_context_in_step() {
        // Found by ws_structured: a compressed message sent without RSV1 is not inflated by
        // the receiver, so the peer's next message must not point into it.
        let deflate = GenDeflate {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_bits: 7,
            client_bits: 7,
        };
        let body = || Body::Chars("\0\0\0I\0\0\0\0\0'\0\0\0server_n".into());
        let first = Item::Message(GenMessage {
            text: false,
            body: body(),
            compress: true,
            cuts: vec![],
            controls: vec![],
            fault: Some((0, FrameFault::NoRsv1)),
        });
        let second = message(false, body(), true, vec![]);
        let run = check_structured(&scenario(true, Some(deflate), vec![first, second]));
        assert_eq!(run.rec.events.len(), 3, "{:?}", run.rec.events);
    }

    #[test]
    fn mutated_inputs_run() {
        let mut s = scenario(false, None, vec![close(1000, "x")]);
        s.mutations = vec![Mutation::Flip(0, 3), Mutation::Truncate(5)];
        check_structured(&s);
    }
}
