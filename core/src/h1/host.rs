//! The `Host` field's grammar (RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3), checked on the bytes
//! as received: `uri-host [ ":" port ]`, where `uri-host` is an IP literal in brackets, an
//! IPv4 address or a registered name. No userinfo, no path, nothing else.
//!
//! Written out rather than built as an `http::uri::Authority`, which costs a parse and a
//! copy per request for a value the server only needs to judge.

use std::net::Ipv6Addr;

/// Bytes of a registered name other than `%` (`unreserved / sub-delims`), as a table: the
/// common `name:port` is judged in one pass of lookups.
const NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_unreserved(b as u8) || is_sub_delim(b as u8);
        b += 1;
    }
    table
};

/// Whether `value` is a valid `Host` field value (the empty value is, RFC 9110 §7.2).
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    // Fast path: plain name bytes, then `:` and digits (or nothing).
    let name_end = value
        .iter()
        .position(|&b| !NAME_BYTE[usize::from(b)])
        .unwrap_or(value.len());
    match value.get(name_end) {
        None => return true,
        Some(b':') if value[name_end + 1..].iter().all(u8::is_ascii_digit) => {
            return is_port(&value[name_end + 1..]);
        }
        _ => {}
    }
    let (host, port) = match value {
        [b'[', rest @ ..] => {
            let Some(close) = rest.iter().position(|&b| b == b']') else {
                return false;
            };
            if !is_ip_literal(&rest[..close]) {
                return false;
            }
            match &rest[close + 1..] {
                [] => return true,
                [b':', port @ ..] => (&[][..], port),
                _ => return false,
            }
        }
        _ => match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        },
    };
    is_reg_name(host) && is_port(port)
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`; an IPv4 address is one too.
fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// `port = *DIGIT`, which must also fit a port number.
fn is_port(port: &[u8]) -> bool {
    port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && port.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= u32::from(u16::MAX)
}

/// The inside of `[...]`: an IPv6 address, or
/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ip_literal(inside: &[u8]) -> bool {
    match inside {
        [b'v' | b'V', rest @ ..] => {
            let Some(dot) = rest.iter().position(|&b| b == b'.') else {
                return false;
            };
            let (version, address) = (&rest[..dot], &rest[dot + 1..]);
            !version.is_empty()
                && version.iter().all(u8::is_ascii_hexdigit)
                && !address.is_empty()
                && address
                    .iter()
                    .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':')
        }
        // RFC 3986's `IPv6address` (with an embedded IPv4 address, without a zone) is the
        // grammar std's parser reads; bracketed hosts are rare, so its cost does not matter.
        _ => std::str::from_utf8(inside).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok()),
    }
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::is_valid_host;

    #[test]
    fn hosts_the_grammar_allows() {
        for host in [
            "",
            "example.com",
            "example.com:8080",
            "example.com:",
            "127.0.0.1",
            "127.0.0.1:18080",
            "[::1]",
            "[::1]:443",
            "[2001:db8::7]:65535",
            "[::ffff:192.0.2.1]",
            "[v1.fe80::a+en1]",
            "[V1F.x:y]",
            "[1:2:3:4:5:6:7:8]",
            "[::]",
            "xn--bcher-kva.example",
            "a%20b",
            "under_score~tilde!$&'()*+,;=",
            "localhost:0",
        ] {
            assert!(is_valid_host(host.as_bytes()), "{host:?} should be valid");
        }
    }

    #[test]
    fn hosts_the_grammar_refuses() {
        for host in [
            "user@example.com",
            "a/b",
            "a?b",
            "a#b",
            "a b",
            "example.com:80:80",
            "example.com:http",
            "example.com:65536",
            "example.com:123456",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[]",
            "[g::1]",
            "[:::]",
            "[1::2::3]",
            "[1:2:3:4:5:6:7:8:9]",
            "[12345::1]",
            "[::1.2.3]",
            "[::1%25eth0]",
            "[v1]",
            "[v1.]",
            "[v.x]",
            "a%2",
            "a%zz",
            "a\"b",
            "a\\b",
            "ex{ample}",
        ] {
            assert!(
                !is_valid_host(host.as_bytes()),
                "{host:?} should be refused"
            );
        }
    }
}
