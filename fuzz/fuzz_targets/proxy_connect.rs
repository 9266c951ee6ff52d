//! The HTTP `CONNECT` handshake on arbitrary proxy answers, whole and split (checks in
//! `tether_fuzz::check_proxy`). Input: one byte seeding the split, one choosing the target
//! and whether credentials are sent, then the proxy's answer.

#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tether_core::proxy::{basic_credentials, ConnectTunnel, ProxyHandshake};
use tether_fuzz::check_proxy;

fuzz_target!(|input: &[u8]| {
    let [seed, choice, answer @ ..] = input else {
        return;
    };
    let host = ["example.com", "::1", "10.0.0.1", "bad host"][usize::from(choice & 3)];
    let mut fields = HeaderMap::new();
    if choice & 4 != 0 {
        fields.insert(
            http::header::PROXY_AUTHORIZATION,
            basic_credentials("user", "pass"),
        );
    }
    check_proxy(*seed, answer, || {
        ProxyHandshake::Connect(ConnectTunnel::new(host, 443, &fields, None))
    });
});
