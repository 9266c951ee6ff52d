//! Negotiating permessage-deflate: the client's offer, the server's choice among offers, and
//! the client's check of the server's answer (RFC 7692 §5 and §7.1).

use super::grammar::{parse_extension, split_outside_quotes, Param};
use super::{
    DeflateConfig, DeflateNegotiationError, DeflateParams, CLIENT_MAX_WINDOW_BITS,
    CLIENT_NO_CONTEXT_TAKEOVER, EXTENSION_NAME, MAX_WINDOW_BITS, MIN_CODEC_WINDOW_BITS,
    MIN_WINDOW_BITS, SERVER_MAX_WINDOW_BITS, SERVER_NO_CONTEXT_TAKEOVER,
};
use crate::syntax::trim_ows;

/// Client: the `server_max_window_bits` we ask for (8..=15; 15 means not asked).
fn asked_server_window(config: &DeflateConfig) -> u8 {
    config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
}

/// Client: the `client_max_window_bits` we offer: `None` not offered, `Some(None)` offered
/// without a value, `Some(Some(n))` a promise to compress with at most 2^n (9..=14).
fn offered_client_window(config: &DeflateConfig) -> Option<Option<u8>> {
    match config.client_max_window_bits? {
        bits if bits >= MAX_WINDOW_BITS => Some(None),
        bits => Some(Some(bits.max(MIN_CODEC_WINDOW_BITS))),
    }
}

/// Server: the largest window we compress with (9..=15).
fn server_window_cap(config: &DeflateConfig) -> u8 {
    config
        .server_max_window_bits
        .clamp(MIN_CODEC_WINDOW_BITS, MAX_WINDOW_BITS)
}

/// Server: the largest window we ask an offering client to compress with (9..=15).
fn client_window_ask(config: &DeflateConfig) -> u8 {
    config
        .client_max_window_bits
        .unwrap_or(MAX_WINDOW_BITS)
        .clamp(MIN_CODEC_WINDOW_BITS, MAX_WINDOW_BITS)
}

/// Appends `; name` or `; name=bits`.
fn push_param(out: &mut String, name: &str, bits: Option<u8>) {
    out.push_str("; ");
    out.push_str(name);
    if let Some(bits) = bits {
        out.push('=');
        out.push_str(&bits.to_string());
    }
}

/// The value a client puts in `Sec-WebSocket-Extensions`, e.g.
/// `permessage-deflate; server_no_context_takeover; client_max_window_bits`.
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(EXTENSION_NAME);
    if config.server_no_context_takeover {
        push_param(&mut offer, SERVER_NO_CONTEXT_TAKEOVER, None);
    }
    if config.client_no_context_takeover {
        push_param(&mut offer, CLIENT_NO_CONTEXT_TAKEOVER, None);
    }
    let server_window = asked_server_window(config);
    if server_window < MAX_WINDOW_BITS {
        push_param(&mut offer, SERVER_MAX_WINDOW_BITS, Some(server_window));
    }
    if let Some(client_window) = offered_client_window(config) {
        push_param(&mut offer, CLIENT_MAX_WINDOW_BITS, client_window);
    }
    offer
}

/// Client: validates the server's `Sec-WebSocket-Extensions` values (every field value of the
/// response, each possibly holding several comma-separated extensions) against the offer made
/// with [`client_offer`] for the same `config`.
///
/// Returns `Ok(None)` when the server did not accept permessage-deflate, `Ok(Some(params))`
/// when it did with parameters we can honour. Every error means the connection must be
/// failed: a malformed value, any extension other than permessage-deflate (only that one was
/// offered), permessage-deflate listed twice, an unknown or repeated parameter, a bad value,
/// `client_max_window_bits` when we did not offer it, a window larger than the one we offered
/// (an answer that leaves out the `server_max_window_bits` we asked for allows 2^15), or a
/// `client_max_window_bits` of 8.
///
/// Lenient where RFC 7692 allows it: a response without `server_no_context_takeover`
/// although we asked for it is accepted (we can decompress with context takeover, so the
/// returned params say `false`); a server may add `server_no_context_takeover`,
/// `client_no_context_takeover` or `server_max_window_bits` we did not ask for.
/// `client_no_context_takeover` in the params is `true` if the server asked for it or our
/// config promised it.
pub(crate) fn client_accept(
    config: &DeflateConfig,
    response_values: &[&str],
) -> Result<Option<DeflateParams>, DeflateNegotiationError> {
    let mut accepted: Option<DeflateParams> = None;
    for value in response_values {
        for element in split_outside_quotes(value, b',') {
            if trim_ows(element).is_empty() {
                continue; // empty list elements are allowed (RFC 9110 §5.6.1)
            }
            let extension = parse_extension(element).ok_or(DeflateNegotiationError::Malformed)?;
            if !extension.name.eq_ignore_ascii_case(EXTENSION_NAME) {
                return Err(DeflateNegotiationError::UnexpectedExtension);
            }
            if accepted.is_some() {
                return Err(DeflateNegotiationError::DuplicateExtension);
            }
            let p = parse_params(&extension.params, Side::Response)?;
            accepted = Some(DeflateParams {
                server_no_context_takeover: p.server_no_context_takeover,
                client_no_context_takeover: p.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits: accepted_server_window(config, &p)?,
                client_max_window_bits: accepted_client_window(config, &p)?,
            });
        }
    }
    Ok(accepted)
}

/// Client: the server's window according to its answer, no larger than we asked.
fn accepted_server_window(
    config: &DeflateConfig,
    p: &PmdParams,
) -> Result<u8, DeflateNegotiationError> {
    let asked = asked_server_window(config);
    let bits = p.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
    if bits > asked {
        return Err(DeflateNegotiationError::WindowLargerThanOffered {
            param: SERVER_MAX_WINDOW_BITS,
            bits,
            offered: asked,
        });
    }
    Ok(bits)
}

/// Client: the window we compress with according to the server's answer.
fn accepted_client_window(
    config: &DeflateConfig,
    p: &PmdParams,
) -> Result<u8, DeflateNegotiationError> {
    let offered = offered_client_window(config);
    // parse_params rejects a valueless client_max_window_bits in a response.
    let Some(bits) = p.client_max_window_bits.flatten() else {
        return Ok(offered.flatten().unwrap_or(MAX_WINDOW_BITS));
    };
    let Some(offered) = offered else {
        return Err(DeflateNegotiationError::NotOffered {
            param: CLIENT_MAX_WINDOW_BITS,
        });
    };
    if bits < MIN_CODEC_WINDOW_BITS {
        return Err(DeflateNegotiationError::UnsupportedClientMaxWindowBits { bits });
    }
    let offered = offered.unwrap_or(MAX_WINDOW_BITS);
    if bits > offered {
        return Err(DeflateNegotiationError::WindowLargerThanOffered {
            param: CLIENT_MAX_WINDOW_BITS,
            bits,
            offered,
        });
    }
    Ok(bits)
}

/// Server: picks the first acceptable permessage-deflate offer among the client's
/// `Sec-WebSocket-Extensions` values (each possibly holding several comma-separated offers)
/// and returns the negotiated params with the response value to send, e.g.
/// `permessage-deflate; server_no_context_takeover; server_max_window_bits=10`.
///
/// Offers of other extensions are ignored. A permessage-deflate offer is declined (and the next
/// one tried) when it is malformed, has an unknown or repeated parameter or an invalid value
/// (RFC 7692 §5.1: a server must not accept such an offer), or asks for
/// `server_max_window_bits=8`, which our compressor cannot honour. Returns `None` when no
/// offer is acceptable: the connection then runs without compression.
pub(crate) fn server_negotiate(
    config: &DeflateConfig,
    offer_values: &[&str],
) -> Option<(DeflateParams, String)> {
    offer_values
        .iter()
        .flat_map(|value| split_outside_quotes(value, b','))
        .find_map(|element| server_try_offer(config, element))
}

/// One offer: `Some` if it is a permessage-deflate offer we accept.
fn server_try_offer(config: &DeflateConfig, element: &str) -> Option<(DeflateParams, String)> {
    let extension = parse_extension(element)?;
    if !extension.name.eq_ignore_ascii_case(EXTENSION_NAME) {
        return None;
    }
    let p = parse_params(&extension.params, Side::Offer).ok()?;
    let cap = server_window_cap(config);
    let server_window = match p.server_max_window_bits {
        // We would have to compress with 256 bytes: decline (RFC 7692 §7.1.2.1).
        Some(bits) if bits < MIN_CODEC_WINDOW_BITS => return None,
        Some(bits) => bits.min(cap),
        None => cap,
    };
    // A client that did not offer client_max_window_bits cannot be limited (§7.1.2.2).
    let offered_client_window = p
        .client_max_window_bits
        .map(|bits| bits.unwrap_or(MAX_WINDOW_BITS));
    let client_window = offered_client_window.map_or(MAX_WINDOW_BITS, |offered| {
        offered.min(client_window_ask(config))
    });
    let params = DeflateParams {
        server_no_context_takeover: p.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_window,
        client_max_window_bits: client_window,
    };
    let mut response = String::from(EXTENSION_NAME);
    if params.server_no_context_takeover {
        push_param(&mut response, SERVER_NO_CONTEXT_TAKEOVER, None);
    }
    if params.client_no_context_takeover {
        push_param(&mut response, CLIENT_NO_CONTEXT_TAKEOVER, None);
    }
    // Accepting an offer that has server_max_window_bits means echoing it with the same or a
    // smaller value; a server may also announce a smaller window unasked (§7.1.2.1).
    if p.server_max_window_bits.is_some() || server_window < MAX_WINDOW_BITS {
        push_param(&mut response, SERVER_MAX_WINDOW_BITS, Some(server_window));
    }
    // Only when it limits the client further than its offer did (§7.1.2.2).
    if offered_client_window.is_some_and(|offered| client_window < offered) {
        push_param(&mut response, CLIENT_MAX_WINDOW_BITS, Some(client_window));
    }
    Some((params, response))
}

// ---------------------------------------------------------------------------------------------
// Parameters of one offer or response.

/// Whether parameters come from a client offer or a server response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Offer,
    Response,
}

/// The parameters of one offer or response, checked for syntax, duplicates and ranges.
#[derive(Debug, Default)]
struct PmdParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (only valid in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

/// `1*DIGIT` without leading zeros, in 8..=15 (RFC 7692 §7.1.2).
fn parse_window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + (d - b'0')),
        _ => None,
    }
}

fn parse_params(params: &[Param<'_>], side: Side) -> Result<PmdParams, DeflateNegotiationError> {
    use DeflateNegotiationError::{DuplicateParameter, InvalidValue, UnknownParameter};
    let mut out = PmdParams::default();
    for param in params {
        let value = param.value.as_deref();
        let is = |known: &str| param.name.eq_ignore_ascii_case(known);
        if is(SERVER_NO_CONTEXT_TAKEOVER) {
            set_flag(
                &mut out.server_no_context_takeover,
                SERVER_NO_CONTEXT_TAKEOVER,
                value,
            )?;
        } else if is(CLIENT_NO_CONTEXT_TAKEOVER) {
            set_flag(
                &mut out.client_no_context_takeover,
                CLIENT_NO_CONTEXT_TAKEOVER,
                value,
            )?;
        } else if is(SERVER_MAX_WINDOW_BITS) {
            let param = SERVER_MAX_WINDOW_BITS;
            if out.server_max_window_bits.is_some() {
                return Err(DuplicateParameter { param });
            }
            let bits = value.and_then(parse_window_bits);
            out.server_max_window_bits = Some(bits.ok_or(InvalidValue { param })?);
        } else if is(CLIENT_MAX_WINDOW_BITS) {
            let param = CLIENT_MAX_WINDOW_BITS;
            if out.client_max_window_bits.is_some() {
                return Err(DuplicateParameter { param });
            }
            out.client_max_window_bits = Some(match value {
                Some(value) => Some(parse_window_bits(value).ok_or(InvalidValue { param })?),
                // Valueless only in an offer (RFC 7692 §7.1.2.2).
                None if side == Side::Offer => None,
                None => return Err(InvalidValue { param }),
            });
        } else {
            return Err(UnknownParameter);
        }
    }
    Ok(out)
}

/// Records a valueless flag parameter.
fn set_flag(
    flag: &mut bool,
    param: &'static str,
    value: Option<&str>,
) -> Result<(), DeflateNegotiationError> {
    if *flag {
        return Err(DeflateNegotiationError::DuplicateParameter { param });
    }
    if value.is_some() {
        return Err(DeflateNegotiationError::InvalidValue { param });
    }
    *flag = true;
    Ok(())
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
