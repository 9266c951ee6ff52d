//! The servers the client's authentication tests use, checked with curl as the client:
//! Apache's Digest (MD5, and a nonce that goes stale) and lighttpd's Digest (MD5, SHA-256,
//! both offered at once) answer 401 with the expected challenge without credentials or with
//! a wrong password, and the file with the right ones; the aiohttp peer's Bearer route takes
//! only its current token, and counts.

use md5::{Digest, Md5};
use std::process::Command;
use std::time::Duration;
use tether_tests::auth_servers::{
    apache_digest, lighttpd_digest, AuthServer, DIGEST_REALM, DIGEST_USER, HELLO,
};
use tether_tests::{curl, peers_dir, python_with, PeerServer};

/// curl's status code and body for `url` with `args`.
fn fetch(args: &[&str], url: &str) -> (String, String) {
    let curl = curl().expect("curl");
    let out = Command::new(curl)
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

/// The `WWW-Authenticate` values of the answer to `url` with `args` (curl `-D -`).
fn challenges(args: &[&str], url: &str) -> Vec<String> {
    let curl = curl().expect("curl");
    let out = Command::new(curl)
        .args(["-sS", "-o", "/dev/null", "-D", "-"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("www-authenticate")
                .then(|| value.trim().to_string())
        })
        .collect()
}

/// `user:password` for curl's `-u`.
fn credentials(password: &str) -> String {
    format!("{}:{password}", DIGEST_USER.0)
}

/// What every Digest server must do at `/private/hello.txt` with its challenge naming
/// `algorithm`.
fn digest_door(server: &AuthServer, algorithm: &str) {
    let url = server.url("/private/hello.txt");
    let (code, body) = fetch(&[], &server.url("/public/hello.txt"));
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", HELLO),
        "{}",
        server.log()
    );
    assert_eq!(fetch(&[], &url).0, "401");
    let offered = challenges(&[], &url);
    assert_eq!(offered.len(), 1, "{offered:?}");
    let challenge = &offered[0];
    assert!(challenge.starts_with("Digest "), "{challenge}");
    for part in [
        format!("realm=\"{DIGEST_REALM}\""),
        format!("algorithm={algorithm},"),
        "qop=\"auth\"".to_string(),
        "nonce=\"".to_string(),
    ] {
        assert!(challenge.contains(&part), "{part} missing in {challenge}");
    }
    let right = credentials(DIGEST_USER.1);
    let (code, body) = fetch(&["--digest", "-u", &right], &url);
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", HELLO),
        "{}",
        server.log()
    );
    let wrong = credentials("wrong");
    assert_eq!(fetch(&["--digest", "-u", &wrong], &url).0, "401");
    // Basic is not what the door takes.
    assert_eq!(fetch(&["--basic", "-u", &right], &url).0, "401");
}

#[test]
fn apache_digest_md5_with_curl() {
    let (Some(server), Some(_)) = (apache_digest(), curl()) else {
        return;
    };
    digest_door(&server, "MD5");
    let right = credentials(DIGEST_USER.1);
    // mod_reflector answers a POST with its body; the static file answers it with itself.
    let posted = [
        "--digest",
        "-u",
        &right,
        "-H",
        "content-type: text/plain",
        "--data-binary",
        "ping",
    ];
    let (code, body) = fetch(&posted, &server.url("/private/echo"));
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", "ping"),
        "{}",
        server.log()
    );
    let (code, body) = fetch(&posted, &server.url("/private/hello.txt"));
    assert_eq!((code.as_str(), body.as_str()), ("200", HELLO));
    assert_eq!(
        fetch(&["--digest", "-u", &right], &server.url("/private/echo")).0,
        "405"
    );
}

/// The `name="value"` (or bare `name=value`) parameter of a challenge.
fn parameter<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("{name} missing in {challenge}"))
        + name.len()
        + 1;
    let rest = &challenge[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"').expect("closing quote")],
        None => rest.split([',', ' ']).next().unwrap_or(rest),
    }
}

fn md5_hex(text: &str) -> String {
    format!("{:x}", Md5::digest(text))
}

#[test]
fn apache_digest_nonce_goes_stale_after_a_second() {
    let (Some(server), Some(_)) = (apache_digest(), curl()) else {
        return;
    };
    let path = "/stale/hello.txt";
    let url = server.url(path);
    // curl asks afresh for each URL, so a fresh nonce always works for it...
    let right = credentials(DIGEST_USER.1);
    let (code, body) = fetch(&["--digest", "-u", &right], &url);
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", HELLO),
        "{}",
        server.log()
    );
    // ...and a nonce kept past its lifetime is refused as stale, with a new one.
    let offered = challenges(&[], &url);
    let challenge = offered.first().expect("a challenge");
    assert!(!challenge.contains("stale"), "{challenge}");
    let nonce = parameter(challenge, "nonce");
    let (user, password) = DIGEST_USER;
    let ha1 = md5_hex(&format!("{user}:{DIGEST_REALM}:{password}"));
    let ha2 = md5_hex(&format!("GET:{path}"));
    let authorization = |nc: u32| {
        let cnonce = "0a4f113b";
        let response = md5_hex(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
        format!(
            "Authorization: Digest username=\"{user}\", realm=\"{DIGEST_REALM}\", \
             nonce=\"{nonce}\", uri=\"{path}\", algorithm=MD5, qop=auth, nc={nc:08x}, \
             cnonce=\"{cnonce}\", response=\"{response}\""
        )
    };
    let (code, body) = fetch(&["-H", &authorization(1)], &url);
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", HELLO),
        "{}",
        server.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let offered = challenges(&["-H", &authorization(2)], &url);
    let challenge = offered.first().expect("a challenge");
    assert!(challenge.contains("stale=true"), "{challenge}");
    assert_ne!(parameter(challenge, "nonce"), nonce);
}

#[test]
fn lighttpd_digest_md5_and_sha256_with_curl() {
    for algorithm in ["MD5", "SHA-256"] {
        let (Some(server), Some(_)) = (lighttpd_digest(algorithm), curl()) else {
            return;
        };
        digest_door(&server, algorithm);
        let right = credentials(DIGEST_USER.1);
        let posted = ["--digest", "-u", &right, "--data-binary", "ping"];
        let (code, body) = fetch(&posted, &server.url("/private/hello.txt"));
        assert_eq!((code.as_str(), body.as_str()), ("200", HELLO));
    }
}

#[test]
fn lighttpd_offers_sha256_and_md5_at_once() {
    let (Some(server), Some(_)) = (lighttpd_digest("SHA-256|MD5"), curl()) else {
        return;
    };
    let url = server.url("/private/hello.txt");
    let offered = challenges(&[], &url);
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert!(offered[0].contains("algorithm=SHA-256,"), "{offered:?}");
    assert!(offered[1].contains("algorithm=MD5,"), "{offered:?}");
    let right = credentials(DIGEST_USER.1);
    let (code, body) = fetch(&["--digest", "-u", &right], &url);
    assert_eq!((code.as_str(), body.as_str()), ("200", HELLO));
}

#[test]
fn aiohttp_bearer_takes_only_the_current_token() {
    let (Some(python), Some(_)) = (python_with("aiohttp"), curl()) else {
        return;
    };
    let mut command = Command::new(python);
    command.arg(peers_dir().join("client_aiohttp_server.py"));
    let server = PeerServer::start(command);
    let url = server.url("/bearer");
    assert_eq!(fetch(&[], &url).0, "401");
    assert_eq!(
        challenges(&[], &url),
        ["Bearer realm=\"tether\", error=\"invalid_token\""]
    );
    let (code, body) = fetch(&["--oauth2-bearer", "fresh-1"], &url);
    assert_eq!((code.as_str(), body.as_str()), ("200", "bearer ok"));
    let (code, body) = fetch(&["-X", "POST"], &server.url("/bearer/rotate"));
    assert_eq!((code.as_str(), body.as_str()), ("200", "fresh-2"));
    assert_eq!(fetch(&["--oauth2-bearer", "fresh-1"], &url).0, "401");
    assert_eq!(fetch(&["--oauth2-bearer", "fresh-2"], &url).0, "200");
    let (code, body) = fetch(&[], &server.url("/bearer/stats"));
    assert_eq!(code, "200");
    let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(stats, serde_json::json!({"ok": 2, "unauthorized": 3}));
}
