//! Tests of the auth module: the challenge grammar's edge cases and errors, the RFC 7616,
//! RFC 2617, RFC 2069 and RFC 7617 examples, and proptests of the encoder and the parser.

use super::*;
use proptest::prelude::*;

fn parse(value: &str) -> Result<Vec<Challenge>, ChallengeError> {
    parse_challenges(value.as_bytes())
}

fn one(value: &str) -> Challenge {
    let mut challenges = parse(value).unwrap();
    assert_eq!(challenges.len(), 1, "{value}");
    challenges.remove(0)
}

fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
    challenge.params().collect()
}

// ---- The challenge parser ----

#[test]
fn rfc9110_example_gives_two_challenges() {
    let challenges =
        parse(r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#)
            .unwrap();
    assert_eq!(challenges.len(), 2);
    assert_eq!(challenges[0].scheme(), "Newauth");
    assert_eq!(
        params(&challenges[0]),
        [
            ("realm", "apps"),
            ("type", "1"),
            ("title", r#"Login to "apps""#)
        ]
    );
    assert_eq!(challenges[1].scheme(), "Basic");
    assert_eq!(challenges[1].param("realm"), Some("simple"));
    assert_eq!(challenges[1].token68(), None);
}

#[test]
fn token68_keeps_its_padding() {
    let challenges = parse("Negotiate YIIB+g/x==, Bearer abc, Basic realm=\"x\"").unwrap();
    assert_eq!(challenges[0].token68(), Some("YIIB+g/x=="));
    assert_eq!(challenges[0].params().len(), 0);
    assert_eq!(challenges[1].token68(), Some("abc"));
    assert_eq!(challenges[2].param("realm"), Some("x"));
    // A lone `name=` is a token68 by the grammar, not a parameter without a value.
    assert_eq!(one("Foo a=  ").token68(), Some("a="));
}

#[test]
fn scheme_and_parameter_names_compare_case_insensitively() {
    let challenge = one(r#"bAsIc ReAlm="Box", CHARSET=utf-8"#);
    assert_eq!(challenge.scheme(), "bAsIc");
    assert!(challenge.is_scheme("Basic"));
    assert!(!challenge.is_scheme("Digest"));
    assert_eq!(challenge.param("realm"), Some("Box"));
    assert_eq!(challenge.param("charset"), Some("utf-8"));
    assert_eq!(challenge.param("nonce"), None);
    assert_eq!(params(&challenge)[0].0, "ReAlm");
}

#[test]
fn whitespace_is_allowed_around_the_equals_sign() {
    let challenge = one("Foo a = b ,c=\t\"d\" ,\te =f");
    assert_eq!(params(&challenge), [("a", "b"), ("c", "d"), ("e", "f")]);
}

#[test]
fn empty_list_elements_are_skipped() {
    let challenges =
        parse(r#" , , Basic realm="a" , ,, Digest realm="b",, nonce="n" ,, "#).unwrap();
    assert_eq!(challenges.len(), 2);
    assert_eq!(params(&challenges[1]), [("realm", "b"), ("nonce", "n")]);
    assert_eq!(parse(""), Ok(vec![]));
    assert_eq!(parse(" ,\t, "), Ok(vec![]));
}

#[test]
fn schemes_without_parameters() {
    let challenges = parse("Negotiate, NTLM ,Basic").unwrap();
    let schemes: Vec<_> = challenges.iter().map(Challenge::scheme).collect();
    assert_eq!(schemes, ["Negotiate", "NTLM", "Basic"]);
    assert!(challenges.iter().all(|c| c.params().len() == 0));
}

#[test]
fn a_parameter_after_a_bare_scheme_belongs_to_it() {
    // `Foo, a=b`: the comma separates the scheme from its first parameter.
    assert_eq!(params(&one("Foo, a=b")), [("a", "b")]);
}

#[test]
fn quoted_strings_undo_quoted_pairs_and_keep_utf8() {
    let challenge = one("X a=\"\\a\\\\b\\\"\", b=\"caf\u{e9} \tx\", c=\"\"");
    assert_eq!(
        params(&challenge),
        [("a", "a\\b\""), ("b", "caf\u{e9} \tx"), ("c", "")]
    );
}

#[test]
fn bearer_with_error_parameters() {
    let challenge = one(
        r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
    );
    assert_eq!(challenge.param("error"), Some("invalid_token"));
    assert_eq!(
        challenge.param("error_description"),
        Some("The access token expired")
    );
}

#[test]
fn each_parse_error() {
    use ChallengeError::*;
    let cases: &[(&[u8], ChallengeError)] = &[
        (b"Basic realm=\"x", UnterminatedQuotedString { offset: 12 }),
        (
            b"Basic realm=\"x\\",
            UnterminatedQuotedString { offset: 12 },
        ),
        (b"realm=\"x\", Basic", ParamWithoutScheme { offset: 0 }),
        (b"Bearer abc, realm=x", ParamAfterToken68 { offset: 12 }),
        (b"Basic realm=x y", InvalidCharacter { offset: 14 }),
        (b"Basic @", InvalidCharacter { offset: 6 }),
        (b"Basic\"x\"", InvalidCharacter { offset: 5 }),
        (b"Basic realm=@", InvalidCharacter { offset: 12 }),
        (b"Basic realm=\"a\x01\"", InvalidCharacter { offset: 14 }),
        (b"Basic realm=\"\\\x7f\"", InvalidCharacter { offset: 14 }),
        (b"Basic a b", InvalidCharacter { offset: 8 }),
        (b"Basic a=b, realm=", MissingValue { offset: 11 }),
        (b"Basic a=b, realm= , x=y", MissingValue { offset: 11 }),
        (b"Basic realm=\"\xff\"", NotUtf8 { offset: 12 }),
        (
            b"Digest realm=\"a\", REALM=\"b\"",
            DuplicateParam {
                name: "REALM".into(),
            },
        ),
    ];
    for (value, error) in cases {
        assert_eq!(
            parse_challenges(value).as_ref(),
            Err(error),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
}

#[test]
fn the_limits_hold() {
    let challenges = vec!["A"; MAX_CHALLENGES].join(", ");
    assert_eq!(parse(&challenges).unwrap().len(), MAX_CHALLENGES);
    assert_eq!(
        parse(&format!("{challenges}, B")),
        Err(ChallengeError::TooManyChallenges)
    );
    let params: Vec<_> = (0..MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
    let value = format!("X {}", params.join(", "));
    assert_eq!(one(&value).params().len(), MAX_PARAMS);
    assert_eq!(
        parse(&format!("{value}, last=v")),
        Err(ChallengeError::TooManyParams)
    );
}

// ---- Building and encoding challenges ----

#[test]
fn values_are_quoted_when_they_are_not_tokens() {
    let challenge = Challenge::new(
        "Digest",
        [
            ("realm", "a b"),
            ("algorithm", "MD5-sess"),
            ("title", r#"say "hi" \o/"#),
            ("empty", ""),
        ],
    )
    .unwrap();
    assert_eq!(
        challenge.to_header_value(),
        r#"Digest realm="a b", algorithm=MD5-sess, title="say \"hi\" \\o/", empty="""#
    );
    assert_eq!(one(&challenge.to_header_value()), challenge);
    let bearer = Challenge::with_token68("Bearer", "abc+/==").unwrap();
    assert_eq!(bearer.to_string(), "Bearer abc+/==");
    assert_eq!(one(&bearer.to_string()), bearer);
    let bare = Challenge::new("Basic", Vec::<(String, String)>::new()).unwrap();
    assert_eq!(bare.to_string(), "Basic");
}

#[test]
fn the_constructors_refuse_what_cannot_be_sent() {
    use ChallengeError::*;
    let no_params = Vec::<(&str, &str)>::new;
    assert_eq!(Challenge::new("", no_params()), Err(InvalidScheme));
    assert_eq!(Challenge::new("a b", no_params()), Err(InvalidScheme));
    assert_eq!(
        Challenge::new("X", [("a b", "c")]),
        Err(InvalidParamName { name: "a b".into() })
    );
    assert_eq!(
        Challenge::new("X", [("a", "line\nbreak")]),
        Err(InvalidParamValue { name: "a".into() })
    );
    assert_eq!(
        Challenge::new("X", [("a", "1"), ("A", "2")]),
        Err(DuplicateParam { name: "A".into() })
    );
    let too_many = (0..=MAX_PARAMS).map(|i| (format!("p{i}"), "v"));
    assert_eq!(Challenge::new("X", too_many), Err(TooManyParams));
    assert_eq!(Challenge::with_token68("X", ""), Err(InvalidToken68));
    assert_eq!(Challenge::with_token68("X", "=abc"), Err(InvalidToken68));
    assert_eq!(Challenge::with_token68("X", "a=b"), Err(InvalidToken68));
    assert_eq!(Challenge::with_token68("X Y", "ab"), Err(InvalidScheme));
}

// ---- Basic ----

#[test]
fn rfc7617_basic_example() {
    assert_eq!(
        basic_credentials("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(
        crate::proxy::basic_credentials("Aladdin", "open sesame"),
        basic_credentials("Aladdin", "open sesame")
    );
}

// ---- Digest ----

const RFC7616_REALM: &str = "http-auth@example.org";
const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

/// The two challenges of RFC 7616 §3.9.1, as one field value.
fn rfc7616_challenges() -> Vec<DigestChallenge> {
    let value = format!(
        "Digest realm=\"{RFC7616_REALM}\", qop=\"auth, auth-int\", algorithm=SHA-256, \
         nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\", \
         Digest realm=\"{RFC7616_REALM}\", qop=\"auth, auth-int\", algorithm=MD5, \
         nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
    );
    parse(&value)
        .unwrap()
        .iter()
        .map(|challenge| DigestChallenge::from_challenge(challenge).unwrap())
        .collect()
}

fn mufasa<'a>(cnonce: &'a str) -> DigestInput<'a> {
    DigestInput {
        username: "Mufasa",
        password: "Circle of Life",
        method: "GET",
        uri: "/dir/index.html",
        nc: 1,
        cnonce,
    }
}

fn digest(params: &[(&str, &str)]) -> Result<DigestChallenge, DigestError> {
    DigestChallenge::from_challenge(&Challenge::new("Digest", params.iter().copied()).unwrap())
}

/// The `response` parameter of credentials.
fn response_of(credentials: &str) -> String {
    one(credentials).param("response").unwrap().to_owned()
}

#[test]
fn rfc7616_md5_example() {
    let [sha256, md5] = <[DigestChallenge; 2]>::try_from(rfc7616_challenges()).unwrap();
    assert_eq!(sha256.algorithm(), DigestAlgorithm::Sha256);
    assert_eq!(md5.algorithm(), DigestAlgorithm::Md5);
    assert_eq!(md5.realm(), RFC7616_REALM);
    assert_eq!(md5.nonce(), RFC7616_NONCE);
    assert_eq!(md5.opaque(), Some(RFC7616_OPAQUE));
    assert!(md5.uses_qop() && !md5.is_stale() && !md5.uses_userhash());
    assert_eq!(
        md5.respond(&mufasa(RFC7616_CNONCE)),
        format!(
            "Digest username=\"Mufasa\", realm=\"{RFC7616_REALM}\", uri=\"/dir/index.html\", \
             algorithm=MD5, nonce=\"{RFC7616_NONCE}\", nc=00000001, \
             cnonce=\"{RFC7616_CNONCE}\", qop=auth, \
             response=\"8ca523f5e9506fed4657c9700eebdbec\", opaque=\"{RFC7616_OPAQUE}\""
        )
    );
}

#[test]
fn rfc7616_sha256_example() {
    let sha256 = &rfc7616_challenges()[0];
    let credentials = sha256.respond(&mufasa(RFC7616_CNONCE));
    assert_eq!(
        response_of(&credentials),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(one(&credentials).param("algorithm"), Some("SHA-256"));
}

#[test]
fn session_variants_hash_the_nonces_into_the_first_hash() {
    // Expected values computed independently (Python hashlib) from RFC 7616's inputs.
    for (name, algorithm, expected) in [
        (
            "md5-SESS",
            DigestAlgorithm::Md5Sess,
            "e783283f46242139c486a698fec7211d",
        ),
        (
            "SHA-256-sess",
            DigestAlgorithm::Sha256Sess,
            "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7",
        ),
    ] {
        let challenge = digest(&[
            ("realm", RFC7616_REALM),
            ("nonce", RFC7616_NONCE),
            ("qop", "auth"),
            ("algorithm", name),
        ])
        .unwrap();
        assert_eq!(challenge.algorithm(), algorithm);
        assert!(algorithm.is_session());
        let credentials = challenge.respond(&mufasa(RFC7616_CNONCE));
        assert_eq!(response_of(&credentials), expected);
        assert_eq!(
            one(&credentials).param("algorithm"),
            Some(algorithm.as_str())
        );
    }
}

#[test]
fn rfc2617_md5_example() {
    let challenge = one(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    );
    let digest = DigestChallenge::from_challenge(&challenge).unwrap();
    let input = DigestInput {
        password: "Circle Of Life",
        ..mufasa("0a4f113b")
    };
    let credentials = one(&digest.respond(&input));
    assert_eq!(
        credentials.param("response"),
        Some("6629fae49393a05397450978507c4ef1")
    );
    assert_eq!(credentials.param("nc"), Some("00000001"));
    assert_eq!(credentials.param("qop"), Some("auth"));
    assert_eq!(
        credentials.param("opaque"),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
}

#[test]
fn without_qop_the_rfc2069_response_is_sent() {
    // RFC 2069 §2.4's example; its printed response is wrong (erratum), this is the
    // recomputed one.
    let digest = digest(&[
        ("realm", "testrealm@host.com"),
        ("nonce", "dcd98b7102dd2f0e8b11d0f600bfb0c093"),
    ])
    .unwrap();
    assert!(!digest.uses_qop());
    assert_eq!(digest.algorithm(), DigestAlgorithm::Md5);
    let input = DigestInput {
        password: "CircleOfLife",
        ..mufasa("unused")
    };
    let credentials = digest.respond(&input);
    assert_eq!(
        credentials,
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", uri=\"/dir/index.html\", \
         algorithm=MD5, nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         response=\"1949323746fe6a43ef61f9606e7febea\""
    );
}

#[test]
fn a_session_algorithm_without_qop_still_sends_its_cnonce() {
    let digest = digest(&[
        ("realm", RFC7616_REALM),
        ("nonce", RFC7616_NONCE),
        ("algorithm", "MD5-sess"),
    ])
    .unwrap();
    let credentials = one(&digest.respond(&mufasa(RFC7616_CNONCE)));
    assert_eq!(credentials.param("cnonce"), Some(RFC7616_CNONCE));
    assert_eq!(credentials.param("nc"), None);
    assert_eq!(credentials.param("qop"), None);
    assert_eq!(
        credentials.param("response"),
        Some("37a7f42db2090a3fcac4e26e747d4fc8")
    );
}

#[test]
fn userhash_sends_the_hashed_username() {
    for (algorithm, hashed) in [
        ("MD5", "4238f3a16167373febb9bc4d43db9cc4"),
        (
            "SHA-256",
            "a947aad205e80e429958a387394944c6b496301e79f89d35a4cc23b6ee12b5b6",
        ),
    ] {
        let hashing = digest(&[
            ("realm", RFC7616_REALM),
            ("nonce", RFC7616_NONCE),
            ("qop", "auth"),
            ("algorithm", algorithm),
            ("userhash", "TRUE"),
        ])
        .unwrap();
        assert!(hashing.uses_userhash());
        let credentials = one(&hashing.respond(&mufasa(RFC7616_CNONCE)));
        assert_eq!(credentials.param("username"), Some(hashed));
        assert_eq!(credentials.param("userhash"), Some("true"));
        // The response itself is computed with the plain username.
        let plain = digest(&[
            ("realm", RFC7616_REALM),
            ("nonce", RFC7616_NONCE),
            ("qop", "auth"),
            ("algorithm", algorithm),
        ])
        .unwrap();
        assert_eq!(
            credentials.param("response"),
            Some(response_of(&plain.respond(&mufasa(RFC7616_CNONCE))).as_str())
        );
    }
}

#[test]
fn usernames_a_quoted_string_cannot_carry_use_username_star() {
    // RFC 7616 §3.9.2's username (that example's SHA-512-256 is not supported; the
    // response here was computed independently with SHA-256).
    let digest = digest(&[
        ("realm", "api@example.org"),
        ("nonce", "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK"),
        ("qop", "auth"),
        ("algorithm", "SHA-256"),
        ("charset", "UTF-8"),
    ])
    .unwrap();
    let input = DigestInput {
        username: "J\u{e4}s\u{f8}n Doe",
        password: "Secret, or not?",
        method: "GET",
        uri: "/doe.json",
        nc: 1,
        cnonce: "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
    };
    let credentials = digest.respond(&input);
    assert!(credentials.starts_with("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, "));
    let parsed = one(&credentials);
    assert_eq!(parsed.param("username"), None);
    assert_eq!(
        parsed.param("response"),
        Some("b6d5cb9c3000ea2385250005e294d7132b260b8fd08940d2377373493cee8cc4")
    );
}

#[test]
fn quotes_and_backslashes_are_escaped() {
    let digest = digest(&[("realm", r#"a "b" \c"#), ("nonce", "n"), ("qop", "auth")]).unwrap();
    let input = DigestInput {
        username: r#"us"er\"#,
        uri: r#"/x?q="1""#,
        ..mufasa("c")
    };
    let credentials = digest.respond(&input);
    assert!(credentials
        .starts_with(r#"Digest username="us\"er\\", realm="a \"b\" \\c", uri="/x?q=\"1\"""#));
    let parsed = one(&credentials);
    assert_eq!(parsed.param("username"), Some(r#"us"er\"#));
    assert_eq!(parsed.param("realm"), Some(r#"a "b" \c"#));
}

#[test]
fn the_nonce_count_is_eight_hex_digits() {
    let digest = digest(&[("realm", "r"), ("nonce", "n"), ("qop", "auth")]).unwrap();
    for (nc, text) in [(1, "00000001"), (0x1f, "0000001f"), (u32::MAX, "ffffffff")] {
        let input = DigestInput { nc, ..mufasa("c") };
        assert_eq!(one(&digest.respond(&input)).param("nc"), Some(text));
    }
}

#[test]
fn stale_and_algorithm_names_are_case_insensitive() {
    let stale = digest(&[("realm", "r"), ("nonce", "n"), ("stale", "TRUE")]).unwrap();
    assert!(stale.is_stale());
    let fresh = digest(&[("realm", "r"), ("nonce", "n"), ("stale", "false")]).unwrap();
    assert!(!fresh.is_stale());
    let sha = digest(&[("realm", "r"), ("nonce", "n"), ("algorithm", "sha-256")]).unwrap();
    assert_eq!(sha.algorithm(), DigestAlgorithm::Sha256);
    let lower = one(r#"digest REALM="r", Nonce="n", QOP="AUTH""#);
    assert!(DigestChallenge::from_challenge(&lower).unwrap().uses_qop());
}

#[test]
fn each_digest_error() {
    assert_eq!(
        DigestChallenge::from_challenge(&one(r#"Basic realm="r""#)),
        Err(DigestError::NotDigest)
    );
    assert_eq!(
        digest(&[("nonce", "n")]),
        Err(DigestError::MissingParameter("realm"))
    );
    assert_eq!(
        digest(&[("realm", "r")]),
        Err(DigestError::MissingParameter("nonce"))
    );
    assert_eq!(
        digest(&[("realm", "r"), ("nonce", "n"), ("algorithm", "SHA-512-256")]),
        Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
    );
    assert_eq!(
        digest(&[("realm", "r"), ("nonce", "n"), ("qop", "auth-int")]),
        Err(DigestError::UnsupportedQop)
    );
    assert_eq!(
        digest(&[("realm", "r"), ("nonce", "n"), ("qop", "")]),
        Err(DigestError::UnsupportedQop)
    );
}

// ---- Properties ----

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}"
}

/// Any value a quoted string can carry: no control characters but tab.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![token(), "[^\\x00-\\x08\\x0a-\\x1f\\x7f]{0,12}"]
}

fn challenge() -> impl Strategy<Value = Challenge> {
    let with_params = (token(), prop::collection::vec((token(), value()), 0..6)).prop_map(
        |(scheme, mut params)| {
            let mut seen = std::collections::HashSet::new();
            params.retain(|(name, _)| seen.insert(name.to_ascii_lowercase()));
            Challenge::new(&scheme, params).unwrap()
        },
    );
    let with_token68 = (token(), "[A-Za-z0-9._~+/-]{1,12}={0,2}")
        .prop_map(|(scheme, token68)| Challenge::with_token68(&scheme, &token68).unwrap());
    prop_oneof![with_params, with_token68]
}

proptest! {
    #[test]
    fn encoding_then_parsing_gives_the_same_challenges(
        challenges in prop::collection::vec(challenge(), 0..=MAX_CHALLENGES),
    ) {
        let encoded: Vec<String> = challenges.iter().map(Challenge::to_header_value).collect();
        prop_assert_eq!(parse(&encoded.join(", ")), Ok(challenges));
    }

    #[test]
    fn one_field_parses_as_the_concatenation_of_its_challenges_fields(
        challenges in prop::collection::vec(challenge(), 1..=MAX_CHALLENGES),
        separators in prop::collection::vec(
            prop::sample::select(vec![", ", ",", " ,\t, ", ",,  "]),
            MAX_CHALLENGES,
        ),
    ) {
        let fields: Vec<String> = challenges.iter().map(Challenge::to_header_value).collect();
        let mut joined = String::new();
        for (field, separator) in fields.iter().zip(&separators) {
            if !joined.is_empty() {
                joined.push_str(separator);
            }
            joined.push_str(field);
        }
        let one_by_one: Vec<Challenge> = fields
            .iter()
            .flat_map(|field| parse(field).unwrap())
            .collect();
        prop_assert_eq!(parse(&joined), Ok(one_by_one));
    }

    #[test]
    fn any_bytes_parse_without_panicking_and_what_parses_round_trips(
        value in prop::collection::vec(
            prop::sample::select(b"ab=, \t\"\\/+Digest\x01\xc3\xa9".to_vec()),
            0..40,
        ),
    ) {
        if let Ok(challenges) = parse_challenges(&value) {
            let encoded: Vec<String> = challenges.iter().map(Challenge::to_header_value).collect();
            prop_assert_eq!(parse(&encoded.join(", ")), Ok(challenges));
        }
    }
}
