//! The `WWW-Authenticate` / `Proxy-Authenticate` parser on arbitrary field values: it never
//! panics, what it accepts encodes back to the same challenges, and every Digest challenge it
//! accepts is either refused with a typed error or answered with a valid field value.

#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use tether_core::auth::{parse_challenges, Challenge, DigestChallenge, DigestInput};

fuzz_target!(|value: &[u8]| {
    let Ok(challenges) = parse_challenges(value) else {
        return;
    };
    let encoded: Vec<String> = challenges.iter().map(Challenge::to_header_value).collect();
    assert_eq!(
        parse_challenges(encoded.join(", ").as_bytes()).as_ref(),
        Ok(&challenges)
    );
    for challenge in challenges.iter().filter(|c| c.is_scheme("Digest")) {
        let Ok(digest) = DigestChallenge::from_challenge(challenge) else {
            continue;
        };
        let credentials = digest.respond(&DigestInput {
            username: "J\u{e4}s\u{f8}n \"Doe\"",
            password: "Secret, or not?",
            method: "GET",
            uri: "/dir/index.html",
            nc: 1,
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        });
        assert!(HeaderValue::from_bytes(credentials.as_bytes()).is_ok());
        let answer = parse_challenges(credentials.as_bytes()).expect("credentials parse");
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0].param("nonce"), Some(digest.nonce()));
        assert_eq!(answer[0].param("realm"), Some(digest.realm()));
    }
});
