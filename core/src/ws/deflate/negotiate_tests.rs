//! Tests of permessage-deflate negotiation: every parameter and window size in offers and
//! answers, both roles, and the two roles agreeing with each other.

use super::*;
use proptest::prelude::*;

// ---- negotiation: client ------------------------------------------------------------

fn config(server_nct: bool, client_nct: bool) -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        ..DeflateConfig::default()
    }
}

fn params(server_nct: bool, client_nct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }
}

fn accept(values: &[&str]) -> Result<Option<DeflateParams>, DeflateNegotiationError> {
    client_accept(&DeflateConfig::default(), values)
}

#[test]
fn defaults() {
    let c = DeflateConfig::default();
    assert_eq!((c.level, c.min_size), (6, 64));
    assert!(!c.server_no_context_takeover && !c.client_no_context_takeover);
    assert_eq!(
        (c.server_max_window_bits, c.client_max_window_bits),
        (15, Some(15))
    );
    assert_eq!(DeflateParams::default(), params(false, false, 15, 15));
}

#[test]
fn offer_values() {
    let cmwb = "client_max_window_bits";
    assert_eq!(
        client_offer(&config(false, false)),
        format!("permessage-deflate; {cmwb}")
    );
    assert_eq!(
        client_offer(&config(true, false)),
        format!("permessage-deflate; server_no_context_takeover; {cmwb}")
    );
    assert_eq!(
        client_offer(&config(false, true)),
        format!("permessage-deflate; client_no_context_takeover; {cmwb}")
    );
    assert_eq!(
        client_offer(&config(true, true)),
        format!(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; {cmwb}"
        )
    );
    let windows = |server: u8, client: Option<u8>| {
        client_offer(&DeflateConfig {
            server_max_window_bits: server,
            client_max_window_bits: client,
            ..DeflateConfig::default()
        })
    };
    assert_eq!(windows(15, None), "permessage-deflate");
    assert_eq!(
        windows(15, Some(15)),
        "permessage-deflate; client_max_window_bits"
    );
    assert_eq!(
        windows(16, Some(200)),
        "permessage-deflate; client_max_window_bits"
    );
    assert_eq!(
        windows(10, Some(12)),
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"
    );
    // We may ask the server for 8 (we decompress with 9), but never promise to compress
    // with 8.
    assert_eq!(
        windows(0, Some(0)),
        "permessage-deflate; server_max_window_bits=8; client_max_window_bits=9"
    );
}

#[test]
fn client_accepts_valid_responses() {
    assert_eq!(accept(&[]), Ok(None));
    assert_eq!(accept(&[""]), Ok(None));
    assert_eq!(accept(&[" , ,"]), Ok(None));
    let plain = Ok(Some(DeflateParams::default()));
    assert_eq!(accept(&["permessage-deflate"]), plain);
    assert_eq!(accept(&["PerMessage-Deflate"]), plain);
    assert_eq!(accept(&["", " ,permessage-deflate, "]), plain);
    assert_eq!(
        accept(&["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]),
        Ok(Some(params(true, true, 15, 15)))
    );
    assert_eq!(
        accept(&["permessage-deflate;Server_No_Context_Takeover"]),
        Ok(Some(params(true, false, 15, 15)))
    );
    for bits in 8..=15u8 {
        assert_eq!(
            accept(&[&format!(
                "permessage-deflate; server_max_window_bits={bits}"
            )]),
            Ok(Some(params(false, false, bits, 15)))
        );
    }
    assert_eq!(
        accept(&["permessage-deflate ;\tserver_max_window_bits = 9 ; client_max_window_bits=15 "]),
        Ok(Some(params(false, false, 9, 15)))
    );
    // Quoted values must still be 1*DIGIT (RFC 7692 §7.1).
    assert_eq!(
        accept(&["permessage-deflate; server_max_window_bits=\"12\""]),
        Ok(Some(params(false, false, 12, 15)))
    );
    assert_eq!(
        accept(&["permessage-deflate; server_max_window_bits=\"1\\2\""]),
        Ok(Some(params(false, false, 12, 15)))
    );
}

#[test]
fn client_context_takeover_mapping() {
    // We promised client_no_context_takeover: keep it even if the server does not echo it.
    assert_eq!(
        client_accept(&config(false, true), &["permessage-deflate"]),
        Ok(Some(params(false, true, 15, 15)))
    );
    // We asked for server_no_context_takeover and the server ignored it: we can still
    // decompress with context takeover, so that is what the params say.
    assert_eq!(
        client_accept(&config(true, false), &["permessage-deflate"]),
        Ok(Some(params(false, false, 15, 15)))
    );
    // The server may impose either flag unasked.
    assert_eq!(
        client_accept(
            &config(false, false),
            &["permessage-deflate; client_no_context_takeover"]
        ),
        Ok(Some(params(false, true, 15, 15)))
    );
}

#[test]
fn client_rejects_invalid_responses() {
    use DeflateNegotiationError::*;
    let cases: &[(&[&str], DeflateNegotiationError)] = &[
        (&["x-webkit-deflate-frame"], UnexpectedExtension),
        (&["permessage-deflate, foo"], UnexpectedExtension),
        (
            &["permessage-deflate, permessage-deflate"],
            DuplicateExtension,
        ),
        (
            &["permessage-deflate", "permessage-deflate"],
            DuplicateExtension,
        ),
        (&["permessage-deflate; foo"], UnknownParameter),
        (&["permessage-deflate; foo=1"], UnknownParameter),
        (
            &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            DuplicateParameter {
                param: SERVER_NO_CONTEXT_TAKEOVER,
            },
        ),
        (
            &["permessage-deflate; server_max_window_bits=10; SERVER_MAX_WINDOW_BITS=10"],
            DuplicateParameter {
                param: SERVER_MAX_WINDOW_BITS,
            },
        ),
        (
            &["permessage-deflate; server_no_context_takeover=1"],
            InvalidValue {
                param: SERVER_NO_CONTEXT_TAKEOVER,
            },
        ),
        (
            &["permessage-deflate; client_no_context_takeover=\"\""],
            InvalidValue {
                param: CLIENT_NO_CONTEXT_TAKEOVER,
            },
        ),
        (
            &["permessage-deflate; server_max_window_bits"],
            InvalidValue {
                param: SERVER_MAX_WINDOW_BITS,
            },
        ),
        (
            &["permessage-deflate; client_max_window_bits"],
            InvalidValue {
                param: CLIENT_MAX_WINDOW_BITS,
            },
        ),
        (
            &["permessage-deflate; client_max_window_bits=8"],
            UnsupportedClientMaxWindowBits { bits: 8 },
        ),
        (
            &["permessage-deflate; client_max_window_bits=16"],
            InvalidValue {
                param: CLIENT_MAX_WINDOW_BITS,
            },
        ),
        (&["permessage-deflate;"], Malformed),
        (
            &["permessage-deflate; ;server_no_context_takeover"],
            Malformed,
        ),
        (&["permessage-deflate; server_max_window_bits="], Malformed),
        (
            &["permessage-deflate; server_max_window_bits=\"10"],
            Malformed,
        ),
        (
            &["permessage-deflate; server_max_window_bits=1 0"],
            Malformed,
        ),
        (&["permessage-deflate; =10"], Malformed),
        (&["\"permessage-deflate\""], Malformed),
        (&["permessage deflate"], Malformed),
        (&["permessage-deflate; a\u{0}b"], Malformed),
    ];
    for (values, error) in cases {
        assert_eq!(accept(values), Err(*error), "{values:?}");
    }
    for bad in [
        "7",
        "16",
        "08",
        "010",
        "+9",
        "9.0",
        "abc",
        "\"\"",
        "\" 9\"",
        "99999999999999999999",
    ] {
        let value = format!("permessage-deflate; server_max_window_bits={bad}");
        assert_eq!(
            accept(&[&value]),
            Err(InvalidValue {
                param: SERVER_MAX_WINDOW_BITS
            }),
            "{value}"
        );
    }
}

// ---- negotiation: server ------------------------------------------------------------

fn negotiate(values: &[&str]) -> Option<(DeflateParams, String)> {
    server_negotiate(&DeflateConfig::default(), values)
}

fn response(p: DeflateParams, r: &str) -> Option<(DeflateParams, String)> {
    Some((p, r.to_owned()))
}

#[test]
fn server_accepts_offers() {
    let plain = response(DeflateParams::default(), "permessage-deflate");
    assert_eq!(negotiate(&[]), None);
    assert_eq!(negotiate(&[""]), None);
    assert_eq!(negotiate(&["permessage-deflate"]), plain);
    assert_eq!(negotiate(&["Permessage-Deflate"]), plain);
    assert_eq!(
        negotiate(&["permessage-deflate; client_max_window_bits"]),
        plain
    );
    assert_eq!(
        negotiate(&["permessage-deflate; client_max_window_bits=15"]),
        plain
    );
    assert_eq!(
        negotiate(&["permessage-deflate; client_max_window_bits=10"]),
        response(params(false, false, 15, 10), "permessage-deflate")
    );
    assert_eq!(
        negotiate(&["permessage-deflate; client_max_window_bits=\"9\""]),
        response(params(false, false, 15, 9), "permessage-deflate")
    );
    assert_eq!(
        negotiate(&["permessage-deflate; server_max_window_bits=15"]),
        response(
            DeflateParams::default(),
            "permessage-deflate; server_max_window_bits=15"
        )
    );
    assert_eq!(
        negotiate(&["permessage-deflate; server_no_context_takeover"]),
        response(
            params(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover"
        )
    );
    assert_eq!(
        negotiate(&["permessage-deflate; client_no_context_takeover"]),
        response(
            params(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover"
        )
    );
}

#[test]
fn server_falls_back_and_skips() {
    // server_max_window_bits=8 cannot be honoured: declined, next offer taken.
    assert_eq!(
        negotiate(&["permessage-deflate; server_max_window_bits=8, permessage-deflate"]),
        response(DeflateParams::default(), "permessage-deflate")
    );
    assert_eq!(
        negotiate(&["permessage-deflate; server_max_window_bits=8"]),
        None
    );
    // Fallback across header values, unknown extensions ignored (even with quoted commas).
    assert_eq!(
        negotiate(&[
            "x-webkit-deflate-frame; a=\"x,y\"",
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        ]),
        response(
            params(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover"
        )
    );
    // Invalid offers are declined, not errors.
    for bad in [
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=yes",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=\"1",
        "permessage-deflate;",
        "\"permessage-deflate\"",
    ] {
        assert_eq!(negotiate(&[bad]), None, "{bad}");
        assert_eq!(
            negotiate(&[bad, "permessage-deflate; server_no_context_takeover"]),
            response(
                params(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover"
            ),
            "{bad}"
        );
    }
}

#[test]
fn server_config_flags() {
    assert_eq!(
        server_negotiate(&config(true, true), &["permessage-deflate"]),
        response(
            params(true, true, 15, 15),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        )
    );
    assert_eq!(
        server_negotiate(
            &config(false, true),
            &["permessage-deflate; server_max_window_bits=15"]
        ),
        response(
            params(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=15"
        )
    );
}

/// Every combination of both sides' settings: the server accepts our own offer unless it
/// asks the server for a 256-byte window, both sides end up with the same params, and those
/// params are what each side's settings call for.
#[test]
fn client_and_server_agree() {
    let flags = [(false, false), (true, false), (false, true), (true, true)];
    let client_windows: Vec<Option<u8>> = std::iter::once(None).chain((8..=15).map(Some)).collect();
    let mut checked = 0;
    for client_flags in flags {
        for client_asks_server in 8..=15u8 {
            for &client_window in &client_windows {
                let client = DeflateConfig {
                    server_max_window_bits: client_asks_server,
                    client_max_window_bits: client_window,
                    ..config(client_flags.0, client_flags.1)
                };
                let offer = client_offer(&client);
                for server_flags in flags {
                    for server_cap in 9..=15u8 {
                        for &server_asks_client in &client_windows {
                            let server = DeflateConfig {
                                server_max_window_bits: server_cap,
                                client_max_window_bits: server_asks_client,
                                ..config(server_flags.0, server_flags.1)
                            };
                            let negotiated = server_negotiate(&server, &[&offer]);
                            if client_asks_server == 8 {
                                assert_eq!(negotiated, None, "{offer}");
                                continue;
                            }
                            let (server_params, answer) = negotiated.expect("acceptable");
                            assert_eq!(
                                client_accept(&client, &[&answer]),
                                Ok(Some(server_params)),
                                "{offer} -> {answer}"
                            );
                            let expected_client_window = match client_window {
                                None => 15,
                                Some(offered) => offered
                                    .clamp(9, 15)
                                    .min(server_asks_client.unwrap_or(15).max(9)),
                            };
                            assert_eq!(
                                server_params,
                                params(
                                    client_flags.0 || server_flags.0,
                                    client_flags.1 || server_flags.1,
                                    client_asks_server.min(server_cap),
                                    expected_client_window,
                                ),
                                "{offer} -> {answer}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 50_000, "{checked}");
}

#[test]
fn client_window_rules() {
    use DeflateNegotiationError::*;
    let client = |server: u8, client: Option<u8>| DeflateConfig {
        server_max_window_bits: server,
        client_max_window_bits: client,
        ..DeflateConfig::default()
    };
    let answer = |config: &DeflateConfig, value: &str| client_accept(config, &[value]);
    // Offered without a value: the server picks any of 9..=15 for us; 8 we cannot do.
    for bits in 9..=15u8 {
        assert_eq!(
            answer(
                &client(15, Some(15)),
                &format!("permessage-deflate; client_max_window_bits={bits}")
            ),
            Ok(Some(params(false, false, 15, bits)))
        );
    }
    assert_eq!(
        answer(
            &client(15, Some(15)),
            "permessage-deflate; client_max_window_bits=8"
        ),
        Err(UnsupportedClientMaxWindowBits { bits: 8 })
    );
    // Not offered: the server must not answer with it (RFC 7692 §7.1.2.2).
    assert_eq!(
        answer(
            &client(15, None),
            "permessage-deflate; client_max_window_bits=15"
        ),
        Err(NotOffered {
            param: CLIENT_MAX_WINDOW_BITS
        })
    );
    assert_eq!(
        answer(&client(15, None), "permessage-deflate"),
        Ok(Some(params(false, false, 15, 15)))
    );
    // Offered with a value: kept when the answer is silent, lowered by a smaller answer,
    // never raised.
    let twelve = client(15, Some(12));
    assert_eq!(
        answer(&twelve, "permessage-deflate"),
        Ok(Some(params(false, false, 15, 12)))
    );
    assert_eq!(
        answer(&twelve, "permessage-deflate; client_max_window_bits=10"),
        Ok(Some(params(false, false, 15, 10)))
    );
    assert_eq!(
        answer(&twelve, "permessage-deflate; client_max_window_bits=13"),
        Err(WindowLargerThanOffered {
            param: CLIENT_MAX_WINDOW_BITS,
            bits: 13,
            offered: 12
        })
    );
    // server_max_window_bits: any answer up to what we asked (8 too: we decompress with 9);
    // silence or a larger value means the server did not accept the limit.
    let ten = client(10, None);
    for bits in 8..=10u8 {
        assert_eq!(
            answer(
                &ten,
                &format!("permessage-deflate; server_max_window_bits={bits}")
            ),
            Ok(Some(params(false, false, bits, 15)))
        );
    }
    for (value, bits) in [
        ("permessage-deflate; server_max_window_bits=11", 11),
        ("permessage-deflate", 15),
    ] {
        assert_eq!(
            answer(&ten, value),
            Err(WindowLargerThanOffered {
                param: SERVER_MAX_WINDOW_BITS,
                bits,
                offered: 10
            }),
            "{value}"
        );
    }
    // Unasked, the server may still announce a smaller window of its own.
    assert_eq!(
        answer(
            &client(15, None),
            "permessage-deflate; server_max_window_bits=9"
        ),
        Ok(Some(params(false, false, 9, 15)))
    );
}

#[test]
fn server_window_rules() {
    let server = |cap: u8, ask: Option<u8>| DeflateConfig {
        server_max_window_bits: cap,
        client_max_window_bits: ask,
        ..DeflateConfig::default()
    };
    let offer = |config: &DeflateConfig, value: &str| server_negotiate(config, &[value]);
    // Every server_max_window_bits we can compress with is accepted and echoed.
    for bits in 9..=15u8 {
        assert_eq!(
            offer(
                &server(15, None),
                &format!("permessage-deflate; server_max_window_bits={bits}")
            ),
            response(
                params(false, false, bits, 15),
                &format!("permessage-deflate; server_max_window_bits={bits}")
            )
        );
    }
    // Our own cap is announced, asked or not, and wins over a larger ask.
    let capped = server(10, None);
    for (value, bits) in [
        ("permessage-deflate", 10),
        ("permessage-deflate; server_max_window_bits=12", 10),
        ("permessage-deflate; server_max_window_bits=9", 9),
    ] {
        assert_eq!(
            offer(&capped, value),
            response(
                params(false, false, bits, 15),
                &format!("permessage-deflate; server_max_window_bits={bits}")
            ),
            "{value}"
        );
    }
    // Asking the client for a smaller window works only when it offered the parameter, and
    // is said only when it lowers what the client offered.
    let asking = server(15, Some(10));
    for (value, bits, answer) in [
        (
            "permessage-deflate; client_max_window_bits",
            10,
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=12",
            10,
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            9,
            "permessage-deflate",
        ),
        (
            "permessage-deflate; client_max_window_bits=8",
            8,
            "permessage-deflate",
        ),
        ("permessage-deflate", 15, "permessage-deflate"),
    ] {
        assert_eq!(
            offer(&asking, value),
            response(params(false, false, 15, bits), answer),
            "{value}"
        );
    }
}

/// Header values assembled from the pieces of the grammar, to reach deep into the parser.
fn header_fragments() -> impl Strategy<Value = String> {
    let piece = proptest::sample::select(vec![
        "permessage-deflate",
        "PERMESSAGE-DEFLATE",
        "x-foo",
        SERVER_NO_CONTEXT_TAKEOVER,
        CLIENT_NO_CONTEXT_TAKEOVER,
        SERVER_MAX_WINDOW_BITS,
        CLIENT_MAX_WINDOW_BITS,
        ";",
        ",",
        "=",
        "\"",
        "\\",
        " ",
        "\t",
        "8",
        "10",
        "15",
        "16",
        "é",
    ]);
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_parsing_never_panics(
        values in proptest::collection::vec(
            prop_oneof![".{0,80}", header_fragments()],
            0..3,
        ),
    ) {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let _ = client_accept(&DeflateConfig::default(), &values);
        if let Some((params, answer)) = server_negotiate(&DeflateConfig::default(), &values) {
            // Our default client accepts every answer our default server gives. The client's
            // window is echoed only when the server lowers it, so it may differ.
            let accepted = client_accept(&DeflateConfig::default(), &[&answer]);
            let Ok(Some(accepted)) = accepted else {
                return Err(TestCaseError::fail(format!("{answer}: {accepted:?}")));
            };
            let expected = DeflateParams {
                client_max_window_bits: accepted.client_max_window_bits,
                ..params
            };
            prop_assert_eq!(accepted, expected);
        }
    }
}
