//! The client side of HTTP Digest authentication (RFC 7616, compatible with RFC 2617 and
//! RFC 2069): read a `Digest` challenge ([`DigestChallenge::from_challenge`]) and compute the
//! `Authorization` / `Proxy-Authorization` value answering it ([`DigestChallenge::respond`]).
//!
//! Supported: the algorithms `MD5` (the default), `MD5-sess`, `SHA-256` and `SHA-256-sess`;
//! `qop=auth` (not `auth-int`, which hashes the body), and no `qop` at all (RFC 2069: the
//! response covers only the nonce and the request); `userhash`; `charset=UTF-8` (strings are
//! always hashed as UTF-8). The caller supplies the nonce count and the client nonce: the
//! core has no randomness and keeps no state between requests.

use super::challenge::push_quoted;
use super::{Challenge, DigestError};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt::{self, Write as _};

/// A Digest hash algorithm, and whether it is a session variant (`-sess`: the first hash also
/// covers the server and client nonces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `MD5`, the default when a challenge names none.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl DigestAlgorithm {
    /// The name used in challenges and credentials (`MD5`, `SHA-256-sess`...).
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Whether this is a `-sess` variant.
    pub fn is_session(self) -> bool {
        matches!(self, DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess)
    }

    /// The algorithm named `name` (case-insensitively), if we implement it.
    fn from_name(name: &str) -> Option<DigestAlgorithm> {
        [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|algorithm| algorithm.as_str().eq_ignore_ascii_case(name))
    }

    /// `H(parts joined with ":")` in lowercase hex.
    fn hash_hex(self, parts: &[&[u8]]) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex_digest::<Md5>(parts),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => hex_digest::<Sha256>(parts),
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex_digest<D: Digest>(parts: &[&[u8]]) -> String {
    let mut hasher = D::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// What the caller knows about the request and the user, to answer a [`DigestChallenge`].
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// The user's name, in UTF-8.
    pub username: &'a str,
    /// The user's password, in UTF-8.
    pub password: &'a str,
    /// The request method (`GET`; `CONNECT` for a proxy tunnel).
    pub method: &'a str,
    /// The request-target exactly as sent in the request line.
    pub uri: &'a str,
    /// The nonce count: how many requests this client has sent with this nonce, from 1.
    pub nc: u32,
    /// The client nonce: random, chosen by the caller (the core has no randomness).
    pub cnonce: &'a str,
}

/// A `Digest` challenge, checked and ready to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: DigestAlgorithm,
    /// The server offers `qop=auth`; without `qop` at all, RFC 2069 compatibility.
    qop_auth: bool,
    stale: bool,
    userhash: bool,
}

impl DigestChallenge {
    /// Reads a `Digest` challenge: `realm` and `nonce` are required; the algorithm must be
    /// one we implement; a `qop` list, if present, must offer `auth`.
    pub fn from_challenge(challenge: &Challenge) -> Result<DigestChallenge, DigestError> {
        if !challenge.is_scheme("Digest") {
            return Err(DigestError::NotDigest);
        }
        let required = |name: &'static str| {
            challenge
                .param(name)
                .map(str::to_owned)
                .ok_or(DigestError::MissingParameter(name))
        };
        let realm = required("realm")?;
        let nonce = required("nonce")?;
        let algorithm = match challenge.param("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(name) => DigestAlgorithm::from_name(name)
                .ok_or_else(|| DigestError::UnsupportedAlgorithm(name.to_owned()))?,
        };
        let qop_auth = match challenge.param("qop") {
            None => false,
            Some(list) => {
                let mut options = list
                    .split(',')
                    .map(|option| option.trim_matches([' ', '\t']));
                if !options.any(|option| option.eq_ignore_ascii_case("auth")) {
                    return Err(DigestError::UnsupportedQop);
                }
                true
            }
        };
        let is_true = |name| {
            challenge
                .param(name)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        Ok(DigestChallenge {
            realm,
            nonce,
            opaque: challenge.param("opaque").map(str::to_owned),
            algorithm,
            qop_auth,
            stale: is_true("stale"),
            userhash: is_true("userhash"),
        })
    }

    /// The protection space (shown to users to say which password is asked for).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The server's nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The server's opaque value, echoed in the credentials.
    pub fn opaque(&self) -> Option<&str> {
        self.opaque.as_deref()
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// `stale=true`: the credentials were right but the nonce expired; retry with the new
    /// nonce without asking the user again.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Whether the answer uses `qop=auth` (otherwise RFC 2069 compatibility: no `qop`, `nc`).
    pub fn uses_qop(&self) -> bool {
        self.qop_auth
    }

    /// `userhash=true`: the username is sent hashed with the realm.
    pub fn uses_userhash(&self) -> bool {
        self.userhash
    }

    /// The `Authorization` (or `Proxy-Authorization`) value answering this challenge.
    ///
    /// It is a valid field value when `method`, `uri` and `cnonce` hold no control
    /// characters; a username that a quoted string cannot carry (non-ASCII, control
    /// characters) is sent as `username*` (RFC 8187 UTF-8 percent-encoding).
    pub fn respond(&self, input: &DigestInput<'_>) -> String {
        let algorithm = self.algorithm;
        let (username, realm, nonce) = (input.username, self.realm.as_str(), &self.nonce);
        let nc = format!("{:08x}", input.nc);
        let cnonce = input.cnonce.as_bytes();
        let mut ha1 = algorithm.hash_hex(&[
            username.as_bytes(),
            realm.as_bytes(),
            input.password.as_bytes(),
        ]);
        if algorithm.is_session() {
            ha1 = algorithm.hash_hex(&[ha1.as_bytes(), nonce.as_bytes(), cnonce]);
        }
        let ha2 = algorithm.hash_hex(&[input.method.as_bytes(), input.uri.as_bytes()]);
        let response = if self.qop_auth {
            algorithm.hash_hex(&[
                ha1.as_bytes(),
                nonce.as_bytes(),
                nc.as_bytes(),
                cnonce,
                b"auth",
                ha2.as_bytes(),
            ])
        } else {
            algorithm.hash_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()])
        };

        let mut out = String::from("Digest ");
        if self.userhash {
            out.push_str("username=");
            let hashed = algorithm.hash_hex(&[username.as_bytes(), realm.as_bytes()]);
            push_quoted(&mut out, &hashed);
        } else if username
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            out.push_str("username=");
            push_quoted(&mut out, username);
        } else {
            out.push_str("username*=UTF-8''");
            push_percent_encoded(&mut out, username);
        }
        push_quoted_param(&mut out, "realm", realm);
        push_quoted_param(&mut out, "uri", input.uri);
        out.push_str(", algorithm=");
        out.push_str(algorithm.as_str());
        push_quoted_param(&mut out, "nonce", nonce);
        if self.qop_auth {
            out.push_str(", nc=");
            out.push_str(&nc);
        }
        // A session algorithm hashes the client nonce even without qop: the server needs it.
        if self.qop_auth || algorithm.is_session() {
            push_quoted_param(&mut out, "cnonce", input.cnonce);
        }
        if self.qop_auth {
            out.push_str(", qop=auth");
        }
        push_quoted_param(&mut out, "response", &response);
        if let Some(opaque) = &self.opaque {
            push_quoted_param(&mut out, "opaque", opaque);
        }
        if self.userhash {
            out.push_str(", userhash=true");
        }
        out
    }
}

/// Appends `, name="value"`.
fn push_quoted_param(out: &mut String, name: &str, value: &str) {
    out.push_str(", ");
    out.push_str(name);
    out.push('=');
    push_quoted(out, value);
}

/// Appends `value` percent-encoded as an RFC 8187 ext-value: attr-char bytes as they are,
/// every other byte as `%XX`.
fn push_percent_encoded(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}
