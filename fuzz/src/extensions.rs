//! The `ws_extensions` checks: permessage-deflate negotiation through the public handshake,
//! with fuzzer-made `Sec-WebSocket-Extensions` values on both sides.
//!
//! * Server: a request offering the values is accepted or the extension declined, never a
//!   panic; what the server agreed to stays inside its settings and RFC 7692's ranges, and its
//!   answer is one a client that made the same offer accepts with the same parameters.
//! * Client: an answer carrying the values is accepted or refused with a typed error; what it
//!   accepts never lets either side use a larger window than offered, and a connection pair
//!   built with those parameters carries messages both ways.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode, Uri};
use tether_core::time::Instant;
use tether_core::ws::{
    accept, ClientHandshake, DeflateConfig, DeflateParams, WebSocket, WsConfig, WsEvent,
};

/// Settings of both sides from the first input byte: bits 0-1 `server_max_window_bits`
/// (15, 12, 9, 8), bits 2-3 `client_max_window_bits` (offered without a value, not offered,
/// 9, 13), bit 4 server_no_context_takeover, bit 5 client_no_context_takeover.
pub fn extensions_config(byte: u8) -> WsConfig {
    let mut deflate = DeflateConfig::default();
    deflate.server_max_window_bits = [15, 12, 9, 8][usize::from(byte & 3)];
    deflate.client_max_window_bits =
        [Some(15), None, Some(9), Some(13)][usize::from(byte >> 2 & 3)];
    deflate.server_no_context_takeover = byte & 0x10 != 0;
    deflate.client_no_context_takeover = byte & 0x20 != 0;
    deflate.min_size = 0;
    let mut config = WsConfig::default();
    config.deflate = Some(deflate);
    config
}

/// The header values in `data`: pieces between `\n` bytes that are valid field values.
fn header_values(data: &[u8]) -> Vec<HeaderValue> {
    data.split(|&b| b == b'\n')
        .take(4)
        .filter_map(|piece| HeaderValue::from_bytes(piece).ok())
        .collect()
}

/// Runs both checks on one input.
pub fn check_extensions(input: &[u8]) {
    let Some((&byte, data)) = input.split_first() else {
        return;
    };
    let config = extensions_config(byte);
    let values = header_values(data);
    check_server(&config, &values);
    check_client(&config, &values);
}

fn uri() -> Uri {
    Uri::from_static("ws://example.com/chat")
}

fn check_server(config: &WsConfig, offers: &[HeaderValue]) {
    let (_, mut request) = ClientHandshake::new(&uri(), [9; 16], &[], &WsConfig::default())
        .expect("client handshake request");
    let headers = request.headers_mut();
    headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    for offer in offers {
        headers.append(header::SEC_WEBSOCKET_EXTENSIONS, offer.clone());
    }
    let Ok((response, negotiated)) = accept(&request, &[], config) else {
        panic!("a request that differs only in its extension offers was refused");
    };
    let answer = response.headers().get(header::SEC_WEBSOCKET_EXTENSIONS);
    let Some(params) = negotiated.deflate else {
        assert!(answer.is_none(), "declined but answered {answer:?}");
        return;
    };
    let settings = config.deflate.as_ref().expect("deflate configured");
    // We compress with at least 2^9 and never more than our own setting allows.
    let cap = settings.server_max_window_bits.clamp(9, 15);
    assert!(
        (9..=cap).contains(&params.server_max_window_bits),
        "{params:?} with {settings:?}"
    );
    assert!(
        (8..=15).contains(&params.client_max_window_bits),
        "{params:?}"
    );
    if settings.server_no_context_takeover {
        assert!(params.server_no_context_takeover);
    }
    if settings.client_no_context_takeover {
        assert!(params.client_no_context_takeover);
    }
    assert!(answer.is_some(), "agreed to {params:?} without answering");
    round_trip(params);
}

fn check_client(config: &WsConfig, answers: &[HeaderValue]) {
    let (client, request) =
        ClientHandshake::new(&uri(), [5; 16], &[], config).expect("client handshake request");
    let (mut response, _) = accept(&request, &[], &WsConfig::default()).expect("plain accept");
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    for answer in answers {
        headers.append(header::SEC_WEBSOCKET_EXTENSIONS, answer.clone());
    }
    let response: Response<()> = response;
    let Ok(negotiated) = client.validate(&response) else {
        return; // refused with a typed error: the connection is failed
    };
    let Some(params) = negotiated.deflate else {
        return;
    };
    let settings = config.deflate.as_ref().expect("deflate configured");
    let asked_server = settings.server_max_window_bits.clamp(8, 15);
    assert!(
        (8..=asked_server).contains(&params.server_max_window_bits),
        "{params:?} with {settings:?}"
    );
    match settings.client_max_window_bits {
        None => assert_eq!(params.client_max_window_bits, 15, "{params:?}"),
        Some(offered) => assert!(
            (9..=offered.clamp(9, 15)).contains(&params.client_max_window_bits),
            "{params:?} with {settings:?}"
        ),
    }
    if settings.client_no_context_takeover {
        assert!(params.client_no_context_takeover);
    }
    round_trip(params);
}

/// A client and a server with `params` exchange a few compressible messages both ways.
fn round_trip(params: DeflateParams) {
    let mut config = WsConfig::default();
    let mut deflate = DeflateConfig::default();
    deflate.min_size = 0;
    config.deflate = Some(deflate);
    config.heartbeat = None;
    let mut client = WebSocket::client(
        config.clone(),
        Some(params),
        Instant::ZERO,
        crate::ws::mask_keys(0x5eed),
    );
    let mut server = WebSocket::server(config, Some(params), Instant::ZERO);
    for round in 0..3u8 {
        let message: Bytes = (0..2000u32)
            .map(|i| (i % 97) as u8 ^ round)
            .collect::<Vec<u8>>()
            .into();
        client.send_binary(message.clone()).expect("client sends");
        pump(&mut client, &mut server);
        assert_eq!(server.poll_event(), Some(WsEvent::Binary(message.clone())));
        server.send_binary(message.clone()).expect("server sends");
        pump(&mut server, &mut client);
        assert_eq!(client.poll_event(), Some(WsEvent::Binary(message)));
    }
}

/// Moves everything `from` has to send into `to`.
fn pump(from: &mut WebSocket, to: &mut WebSocket) {
    while let Some(bytes) = from.poll_transmit(Instant::ZERO) {
        to.handle_input(Instant::ZERO, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in seeds and every settings byte over a few offers and answers.
    #[test]
    fn seeds_and_settings() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/ws_extensions");
        for entry in std::fs::read_dir(dir).expect("seeds") {
            check_extensions(&std::fs::read(entry.expect("seed").path()).expect("seed"));
        }
        for byte in 0..64u8 {
            for values in [
                &b""[..],
                b"permessage-deflate",
                b"permessage-deflate; client_max_window_bits",
                b"permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
                b"permessage-deflate; server_max_window_bits=8\npermessage-deflate",
                b"permessage-deflate; client_max_window_bits=15; server_no_context_takeover",
            ] {
                let mut input = vec![byte];
                input.extend_from_slice(values);
                check_extensions(&input);
            }
        }
    }
}
