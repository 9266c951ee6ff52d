//! permessage-deflate against Node `ws` (which compresses with zlib) in both directions, over
//! every window size and both no-context-takeover flags: Node clients with many offers against
//! our server in several configurations, and our client with many offers against Node servers
//! in several configurations. Each connection carries 0 B, 16 B, 64 KiB and 1 MiB messages,
//! text and binary, fragmented and not, both ways; both sides must agree on the parameters.
//!
//! zlib refuses to inflate a reference further back than its window, and the messages repeat
//! every few thousand bytes, so a side that compressed with a larger window than negotiated
//! would fail here.

use bytes::Bytes;
use http::Request;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use tether_core::h1::{ServerConnection, ServerConnectionConfig, ServerEvent};
use tether_core::ws::{
    self, CloseReason, DeflateConfig, DeflateParams, MessageKind, WebSocket, WsConfig, WsEvent,
};
use tether_tests::{node_with, now, peers_dir, run_json, PeerServer};

/// The negotiated parameters our server saw, by request path.
type Seen = Arc<Mutex<HashMap<String, Option<DeflateParams>>>>;

fn ws_config(mut deflate: DeflateConfig) -> WsConfig {
    deflate.min_size = 0;
    let mut config = WsConfig::default();
    config.deflate = Some(deflate);
    config.max_message_size = 4 << 20;
    config
}

fn deflate(server_bits: u8, client_bits: Option<u8>, nct: (bool, bool)) -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.server_max_window_bits = server_bits;
    config.client_max_window_bits = client_bits;
    config.server_no_context_takeover = nct.0;
    config.client_no_context_takeover = nct.1;
    config
}

// ---- messages ---------------------------------------------------------------------------

/// Text repeating every 3000 bytes (a character boundary at `size`, which is ASCII there).
fn text(size: usize) -> String {
    let mut paragraph = String::new();
    let mut i = 0;
    while paragraph.len() < 3000 {
        paragraph.push_str(&format!("line {i}: tether ünïcödé ✓ {}\n", i * 7919));
        i += 1;
    }
    let mut out = String::with_capacity(size + paragraph.len());
    while out.len() < size {
        out.push_str(&paragraph);
    }
    let mut end = size.min(out.len());
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// Runs, a counter and noise, repeating every 5000 bytes.
fn binary(size: usize) -> Bytes {
    let mut seed = 1u32;
    (0..size)
        .map(|i| {
            let j = i % 5000;
            if j == 0 {
                seed = 777;
            }
            match j {
                0..2000 => j as u8,
                2000..3000 => 0x55,
                _ => {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 24) as u8
                }
            }
        })
        .collect::<Vec<u8>>()
        .into()
}

/// 0 B, 16 B, 64 KiB and 1 MiB; text and binary; fragmented (the count) and not.
fn messages() -> Vec<(WsEvent, usize)> {
    vec![
        (WsEvent::Text(text(0)), 1),
        (WsEvent::Binary(binary(16)), 2),
        (WsEvent::Text(text(64 << 10)), 3),
        (WsEvent::Binary(binary(64 << 10)), 1),
        (WsEvent::Binary(binary(1 << 20)), 4),
        (WsEvent::Text(text(1 << 20)), 1),
    ]
}

/// Sends `message` in `fragments` frames.
fn send(ws: &mut WebSocket, message: &WsEvent, fragments: usize) {
    let (kind, data) = match message {
        WsEvent::Text(text) => (MessageKind::Text, Bytes::from(text.clone())),
        WsEvent::Binary(data) => (MessageKind::Binary, data.clone()),
        other => panic!("not a message: {other:?}"),
    };
    if fragments == 1 {
        match kind {
            MessageKind::Text => ws.send_text(std::str::from_utf8(&data).unwrap()),
            MessageKind::Binary => ws.send_binary(data),
        }
        .expect("send");
        return;
    }
    let step = data.len().div_ceil(fragments).max(1);
    for i in 0..fragments {
        let piece = data.slice((i * step).min(data.len())..((i + 1) * step).min(data.len()));
        ws.send_fragment(kind, piece, i + 1 == fragments)
            .expect("send fragment");
    }
}

// ---- our server -------------------------------------------------------------------------

/// A blocking echo server with `config`; records what each connection negotiated.
fn our_server(config: WsConfig, seen: Seen) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, seen) = (config.clone(), seen.clone());
            thread::spawn(move || serve(stream, config, seen));
        }
    });
    port
}

fn serve(mut stream: TcpStream, config: WsConfig, seen: Seen) {
    let mut http = ServerConnection::new(ServerConnectionConfig::default(), now());
    let mut buf = vec![0u8; 64 * 1024];
    let mut negotiated = None;
    loop {
        while let Some(event) = http.poll_event() {
            match event {
                ServerEvent::Request { head, .. } => {
                    let (response, agreed) = ws::accept(&head, &[], &config).expect("upgrade");
                    seen.lock()
                        .unwrap()
                        .insert(path_and_query(&head), agreed.deflate);
                    http.send_response(&response).expect("101");
                    negotiated = Some(agreed);
                }
                ServerEvent::Upgraded { trailing } => {
                    while let Some(bytes) = http.poll_transmit(now()) {
                        stream.write_all(&bytes).expect("write 101");
                    }
                    let deflate = negotiated.and_then(|n| n.deflate);
                    let ws = WebSocket::server(config, deflate, now());
                    tether_tests::ws::drive(stream, ws, &trailing, |ws, event| {
                        let _ = match event {
                            WsEvent::Text(text) => ws.send_text(text),
                            WsEvent::Binary(data) => ws.send_binary(data.clone()),
                            _ => Ok(()),
                        };
                    });
                    return;
                }
                _ => {}
            }
        }
        while let Some(bytes) = http.poll_transmit(now()) {
            if stream.write_all(&bytes).is_err() {
                return;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => http.handle_input(now(), &buf[..n]),
        }
    }
}

fn path_and_query(head: &Request<()>) -> String {
    head.uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

// ---- ws's parameters --------------------------------------------------------------------

/// ws's view of the agreement (`null` without compression) in our terms: its `params`
/// object holds what the answer said, plus the client's own limit where the answer was silent.
fn node_params(params: &Value) -> Option<DeflateParams> {
    if params.is_null() {
        return None;
    }
    let bits = |name: &str| params[name].as_u64().map_or(15, |b| b as u8);
    let flag = |name: &str| params[name].as_bool().unwrap_or(false);
    let mut p = DeflateParams::default();
    p.server_no_context_takeover = flag("server_no_context_takeover");
    p.client_no_context_takeover = flag("client_no_context_takeover");
    p.server_max_window_bits = bits("server_max_window_bits");
    p.client_max_window_bits = bits("client_max_window_bits");
    Some(p)
}

/// Percent-encodes everything but letters and digits.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How many compressed connections ran with each window size, per direction.
#[derive(Debug, Default)]
struct WindowCounts {
    server: [u32; 16],
    client: [u32; 16],
}

impl WindowCounts {
    fn record(&mut self, params: &DeflateParams) {
        self.server[usize::from(params.server_max_window_bits)] += 1;
        self.client[usize::from(params.client_max_window_bits)] += 1;
    }

    /// Both directions ran compressed with every window 9..15 at least once.
    fn assert_every_window(&self) {
        for bits in 9..=15 {
            assert!(self.server[bits] > 0, "server window {bits}: {self:?}");
            assert!(self.client[bits] > 0, "client window {bits}: {self:?}");
        }
    }
}

// ---- Node clients against our server ----------------------------------------------------

/// The Node client offers: the default (client_max_window_bits without a value), no client
/// window at all, and every server_max_window_bits 8..15 paired with a client window and
/// the flags.
fn node_client_offers() -> Vec<Value> {
    let mut offers = vec![json!({}), json!({ "clientMaxWindowBits": false })];
    for i in 0..8u8 {
        let mut offer = json!({ "serverMaxWindowBits": 8 + i, "clientMaxWindowBits": 15 - i });
        // Set only when true: ws takes an explicit `false` as "refuse the flag", and a
        // server may always impose it (RFC 7692 §7.1.1).
        if i % 2 == 1 {
            offer["serverNoContextTakeover"] = json!(true);
        }
        if i % 4 >= 2 {
            offer["clientNoContextTakeover"] = json!(true);
        }
        offers.push(offer);
    }
    offers
}

#[test]
fn node_ws_clients_against_our_server_every_window() {
    let Some((node, modules)) = node_with("ws") else {
        return;
    };
    let servers = [
        deflate(15, Some(15), (false, false)),
        deflate(9, Some(15), (false, false)),
        deflate(12, Some(10), (false, false)),
        deflate(11, Some(9), (true, true)),
        deflate(15, Some(13), (false, true)),
    ];
    let mut compressed_windows = WindowCounts::default();
    for server in servers {
        let seen: Seen = Arc::default();
        let port = our_server(ws_config(server.clone()), seen.clone());
        let offers = node_client_offers();
        let cases: Vec<Value> = offers
            .iter()
            .enumerate()
            .map(|(i, opts)| json!({ "path": format!("/case/{i}"), "opts": opts }))
            .collect();
        let mut command = Command::new(&node);
        command
            .env("NODE_PATH", &modules)
            .arg(peers_dir().join("ws_deflate_peer.cjs"))
            .arg("client")
            .arg(format!("ws://127.0.0.1:{port}"))
            .arg(Value::from(cases).to_string());
        let results = run_json(command);
        let seen = seen.lock().unwrap();
        for (i, (offer, result)) in offers.iter().zip(results.as_array().unwrap()).enumerate() {
            let context = format!("server {server:?}, ws offer {offer}: {result}");
            assert!(result["error"].is_null(), "{context}");
            assert_eq!(
                result["echoed"],
                json!([true, true, true, true, true, true]),
                "{context}"
            );
            let ours = seen[&format!("/case/{i}")];
            assert_eq!(node_params(&result["params"]), ours, "{context}");
            // Only an offer that makes us compress with 2^8 is declined.
            let declined = offer["serverMaxWindowBits"] == 8;
            assert_eq!(ours.is_none(), declined, "{context}");
            if let Some(p) = ours {
                let expected_server = server.server_max_window_bits.min(
                    offer["serverMaxWindowBits"]
                        .as_u64()
                        .map_or(15, |b| b as u8),
                );
                assert_eq!(p.server_max_window_bits, expected_server, "{context}");
                compressed_windows.record(&p);
            }
        }
    }
    compressed_windows.assert_every_window();
}

// ---- our client against Node servers ----------------------------------------------------

/// The Node server settings: the default, every server window 9..15 paired with a client
/// window, a client window of 8 (which we cannot compress with), and both flags.
fn node_server_settings() -> Vec<Value> {
    let mut settings = vec![json!({})];
    for i in 0..7u8 {
        settings.push(json!({ "serverMaxWindowBits": 9 + i, "clientMaxWindowBits": 15 - i }));
    }
    settings.push(json!({ "clientMaxWindowBits": 8 }));
    settings.push(json!({ "serverNoContextTakeover": true, "clientNoContextTakeover": true }));
    settings
}

/// Our client offers: the default, every server window 8..15 asked for with the client
/// window offered in every way, and both flags.
fn our_client_offers() -> Vec<DeflateConfig> {
    let client_windows = [
        Some(15),
        None,
        Some(9),
        Some(10),
        Some(11),
        Some(12),
        Some(13),
        Some(14),
    ];
    let mut offers = vec![DeflateConfig::default()];
    for (i, client) in client_windows.into_iter().enumerate() {
        offers.push(deflate(8 + i as u8, client, (false, false)));
    }
    offers.push(deflate(12, Some(12), (true, true)));
    offers
}

/// Whether ws's server takes our offer (its `acceptAsServer`): it refuses one that asks
/// for a smaller server window than its own setting, or that cannot be given the client
/// window it wants. A refusal is its `400`.
fn ws_server_accepts(settings: &Value, offer: &DeflateConfig) -> bool {
    let asked_server = offer.server_max_window_bits.clamp(8, 15);
    if asked_server < 15 {
        if let Some(theirs) = settings["serverMaxWindowBits"].as_u64() {
            if theirs > u64::from(asked_server) {
                return false;
            }
        }
    }
    if let Some(theirs) = settings["clientMaxWindowBits"].as_u64() {
        match offer.client_max_window_bits {
            None => return false,
            Some(ours) if ours < 15 && theirs > u64::from(ours.max(9)) => return false,
            Some(_) => {}
        }
    }
    true
}

/// Runs our client with `config` against `port` + `path`: every message both ways, then
/// ws's parameters. `Err` if the handshake failed.
fn run_our_client(
    port: u16,
    path: &str,
    config: &WsConfig,
) -> Result<(DeflateParams, Value), String> {
    let (mut ws, negotiated, stream, trailing) =
        tether_tests::ws::connect(port, path, &[], config)?;
    let ours = negotiated.deflate.ok_or("no compression agreed")?;
    let messages = messages();
    send(&mut ws, &messages[0].0, messages[0].1);
    let mut next = 0;
    let mut theirs = Value::Null;
    let reason = tether_tests::ws::drive(stream, ws, &trailing, |ws, event| {
        if next < messages.len() {
            assert_eq!(event, &messages[next].0, "message {next}");
            next += 1;
            match messages.get(next) {
                Some((message, fragments)) => send(ws, message, *fragments),
                None => ws.send_text("params").expect("send"),
            }
        } else if let WsEvent::Text(text) = event {
            theirs = serde_json::from_str(text).expect("ws's params");
            ws.close(now(), Some(1000), "done").expect("close");
        }
    });
    assert!(
        matches!(
            reason,
            CloseReason::ByUs {
                code: Some(1000),
                ..
            }
        ),
        "{reason:?}"
    );
    assert_eq!(next, messages.len());
    Ok((ours, theirs))
}

#[test]
fn our_client_against_node_ws_servers_every_window() {
    let Some((node, modules)) = node_with("ws") else {
        return;
    };
    let mut command = Command::new(&node);
    command
        .env("NODE_PATH", &modules)
        .arg(peers_dir().join("ws_deflate_peer.cjs"))
        .arg("server");
    let peer = PeerServer::start(command);
    let mut compressed_windows = WindowCounts::default();
    for settings in node_server_settings() {
        let path = format!("/?opts={}", encode(&settings.to_string()));
        for offer in our_client_offers() {
            let context = format!("ws settings {settings}, our offer {offer:?}");
            let outcome = run_our_client(peer.port, &path, &ws_config(offer.clone()));
            if !ws_server_accepts(&settings, &offer) {
                let error = outcome.expect_err(&context);
                assert!(error.contains("400"), "{context}: {error}");
                continue;
            }
            if settings["clientMaxWindowBits"] == 8 {
                let error = outcome.expect_err(&context);
                assert!(
                    error.contains("client_max_window_bits=8"),
                    "{context}: {error}"
                );
                continue;
            }
            let (ours, theirs) = outcome.unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(
                node_params(&theirs),
                Some(ours),
                "{context}: ws says {theirs}"
            );
            compressed_windows.record(&ours);
        }
    }
    compressed_windows.assert_every_window();
}
