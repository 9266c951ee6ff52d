//! The `WWW-Authenticate` / `Proxy-Authenticate` parser on arbitrary field values: it never
//! panics, what it accepts encodes back to the same challenges, and every Digest challenge it
//! accepts is either refused with a typed error or answered with a valid field value. The
//! constructors (`Challenge::new`, `Challenge::with_token68`) rebuild every parsed challenge
//! exactly, and, given the input's text as scheme, names and values, either refuse it with a
//! typed error or build a challenge that encodes and parses back the same.

#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use tether_core::auth::{parse_challenges, Challenge, DigestChallenge, DigestInput};

fuzz_target!(|value: &[u8]| {
    construct_from(value);
    let Ok(challenges) = parse_challenges(value) else {
        return;
    };
    for challenge in &challenges {
        let rebuilt = match challenge.token68() {
            Some(token68) => Challenge::with_token68(challenge.scheme(), token68),
            None => Challenge::new(challenge.scheme(), challenge.params()),
        };
        assert_eq!(
            rebuilt.as_ref(),
            Ok(challenge),
            "the constructors rebuild it"
        );
    }
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

/// The constructors on the input's text, cut at `\0` into a scheme and alternating names and
/// values (the one piece after the scheme as a token68 when their count is odd).
fn construct_from(value: &[u8]) {
    let Ok(text) = std::str::from_utf8(value) else {
        return;
    };
    let mut pieces = text.split('\0');
    let scheme = pieces.next().unwrap_or_default();
    let rest: Vec<&str> = pieces.collect();
    let built = if rest.len() % 2 == 1 {
        Challenge::with_token68(scheme, rest[rest.len() - 1])
    } else {
        Challenge::new(scheme, rest.chunks(2).map(|pair| (pair[0], pair[1])))
    };
    if let Ok(challenge) = built {
        let encoded = challenge.to_header_value();
        assert_eq!(
            parse_challenges(encoded.as_bytes()),
            Ok(vec![challenge]),
            "a constructed challenge parses back: {encoded:?}"
        );
    }
}
