//! The SOCKS5 handshake on arbitrary proxy answers, whole and split (checks in
//! `tether_fuzz::check_proxy`). Input: one byte seeding the split, one choosing the target
//! kind and whether credentials are offered, then the proxy's answers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_core::proxy::{ProxyHandshake, Socks5Credentials, Socks5Handshake, Socks5Target};
use tether_fuzz::check_proxy;

fuzz_target!(|input: &[u8]| {
    let [seed, choice, answer @ ..] = input else {
        return;
    };
    let target = match choice & 3 {
        0 => Socks5Target::Ip("192.0.2.7:443".parse().unwrap()),
        1 => Socks5Target::Ip("[2001:db8::1]:80".parse().unwrap()),
        2 => Socks5Target::Domain("example.com".into(), 8080),
        _ => Socks5Target::Domain(String::new(), 1),
    };
    let credentials = (choice & 4 != 0).then(|| Socks5Credentials::new("user", "pass").unwrap());
    check_proxy(*seed, answer, || {
        ProxyHandshake::Socks5(Socks5Handshake::new(&target, credentials.clone(), None))
    });
});
