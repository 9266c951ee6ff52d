//! Digest authentication (RFC 7616), the client side: the first request goes without
//! credentials; its `401` brings a challenge (realm, nonce, algorithm); the request is sent
//! again with a response computed from it, and later requests to the same origin answer the
//! same nonce with a rising nonce count, until the server says the nonce is `stale`.
//! Computing the response is the core's (`tether_core::auth::DigestChallenge`); this keeps
//! the nonce and its count per origin, and draws the client nonces.

use super::{AuthError, AuthFuture, AuthRequest, AuthResponse, Authenticator, Retry};
use http::HeaderValue;
use std::collections::HashMap;
use std::sync::Mutex;
use tether_core::auth::{parse_challenges, DigestChallenge, DigestInput};

/// A user name and password answered to Digest challenges (SHA-256, SHA-256-sess, MD5,
/// MD5-sess; `qop=auth`, or RFC 2069's form where the server offers no `qop`).
pub struct DigestAuth {
    user: String,
    password: String,
    /// The challenge each origin (`scheme://authority`) last sent, and how many times its
    /// nonce was used.
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A nonce being answered.
struct Session {
    challenge: DigestChallenge,
    /// The nonce count sent last (RFC 7616 §3.4: counts up from 1 per nonce).
    count: u32,
}

/// Where a session belongs: the request's origin, or the proxy.
fn session_key(request_uri: &http::Uri, proxy: bool) -> String {
    if proxy {
        return "proxy".to_owned();
    }
    let scheme = request_uri.scheme_str().unwrap_or("http");
    let authority = request_uri.authority().map_or("", |a| a.as_str());
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// 16 random bytes as 32 hex digits: a client nonce.
fn client_nonce(request: &AuthRequest<'_>) -> String {
    let mut bytes = [0u8; 16];
    request.fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DigestAuth {
    /// `user` and `password`.
    pub fn new(user: &str, password: &str) -> DigestAuth {
        DigestAuth {
            user: user.to_owned(),
            password: password.to_owned(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The `Authorization` value for `request`, if its origin has sent a challenge.
    fn answer(&self, request: &AuthRequest<'_>) -> Result<Option<HeaderValue>, AuthError> {
        let key = session_key(request.uri(), request.target() == super::AuthTarget::Proxy);
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| AuthError::InvalidCredentials)?;
        let Some(session) = sessions.get_mut(&key) else {
            return Ok(None);
        };
        session.count = session.count.wrapping_add(1).max(1);
        let cnonce = client_nonce(request);
        let uri = match request.target() {
            super::AuthTarget::Proxy => request.uri().to_string(),
            _ => request.request_target().to_owned(),
        };
        let answer = session.challenge.respond(&DigestInput {
            username: &self.user,
            password: &self.password,
            method: request.method().as_str(),
            uri: &uri,
            nc: session.count,
            cnonce: &cnonce,
        });
        let mut value = HeaderValue::try_from(answer).map_err(|_| AuthError::InvalidCredentials)?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// Whether to answer `response`'s challenge, remembering it if so.
    fn take_challenge(&self, response: &AuthResponse<'_>, key: String) -> Result<Retry, AuthError> {
        let mut first_error = None;
        let mut chosen = None;
        for challenge in response.challenges() {
            if !challenge.is_scheme("Digest") {
                continue;
            }
            match DigestChallenge::from_challenge(&challenge) {
                Ok(digest) => {
                    chosen = Some(digest);
                    break;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let Some(challenge) = chosen else {
            return match first_error {
                Some(error) => Err(error.into()),
                None => Ok(Retry::No),
            };
        };
        // The nonce the request answered, if it answered one.
        let answered = response
            .sent_credentials()
            .and_then(|sent| parse_challenges(sent.as_bytes()).ok())
            .and_then(|sent| sent.into_iter().next())
            .and_then(|sent| sent.param("nonce").map(str::to_owned));
        let same_nonce = answered.as_deref() == Some(challenge.nonce());
        if !challenge.is_stale() && (same_nonce || response.retries() > 0) {
            // Our answer to this very challenge was refused: wrong credentials.
            return Ok(Retry::No);
        }
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| AuthError::InvalidCredentials)?;
        sessions.insert(
            key,
            Session {
                challenge,
                count: 0,
            },
        );
        Ok(Retry::Yes)
    }
}

impl Authenticator for DigestAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a mut AuthRequest<'_>,
    ) -> AuthFuture<'a, Result<(), AuthError>> {
        let answer = self.answer(request);
        Box::pin(async move {
            if let Some(value) = answer? {
                request.set_credentials(value);
            }
            Ok(())
        })
    }

    fn challenged<'a>(
        &'a self,
        response: &'a AuthResponse<'_>,
    ) -> AuthFuture<'a, Result<Retry, AuthError>> {
        let key = session_key(
            response.uri(),
            response.target() == super::AuthTarget::Proxy,
        );
        let retry = self.take_challenge(response, key);
        Box::pin(async move { retry })
    }
}
