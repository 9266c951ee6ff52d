//! Pluggable client authentication: an [`Authenticator`] adds credentials to each request
//! it is given and, when the answer is `401` (or a forward proxy's `407`), says whether to
//! send the request once more with new ones. Three come with tether: [`BasicAuth`]
//! (RFC 7617), [`BearerAuth`] (RFC 6750: a static token, or one fetched and refreshed by a
//! callback that concurrent requests share) and [`DigestAuth`] (RFC 7616: SHA-256 and MD5,
//! `qop=auth`, nonce counts, `stale=true`).
//!
//! The client decides *when* an authenticator is asked, so every one gets the same safety:
//!
//! * credentials go only to the origin the request started at, never to another origin a
//!   redirect leads to (the redirect is followed without them);
//! * a request is sent again only with a body that can be replayed (not a stream already
//!   sent), and at most twice in all (a challenge, then a `stale` nonce);
//! * an authenticator's own failure (a refresh that failed) is the request's typed error,
//!   [`ClientError::Auth`](super::ClientError::Auth).
//!
//! Set one per client (`ClientConfig::auth`) or per request (`RequestBuilder::auth`).
//! The protocol work (parsing challenges, computing Digest responses) is the core's
//! `tether_core::auth`; this module holds the state that outlives one request (a Digest
//! nonce and its count, a bearer token) and the waiting (a token being fetched).

mod basic;
mod bearer;
mod digest;

pub use basic::BasicAuth;
pub use bearer::BearerAuth;
pub use digest::DigestAuth;

use crate::runtime::{MaybeSend, MaybeSync, Runtime};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tether_core::auth::{parse_challenges, Challenge};
use tether_core::pool::Origin;

/// A boxed future an authenticator returns: `Send` where the host has threads.
#[cfg(not(target_arch = "wasm32"))]
pub type AuthFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future an authenticator returns (a single-threaded WebAssembly host).
#[cfg(target_arch = "wasm32")]
pub type AuthFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Adds credentials to requests and answers their challenges. Shared by every request it
/// serves (hence `&self`): keep what outlives one request (a nonce, a token) behind a lock.
pub trait Authenticator: fmt::Debug + MaybeSend + MaybeSync + 'static {
    /// Sets the credentials of a request about to be sent ([`AuthRequest::set_credentials`]),
    /// or none (e.g. Digest before its first challenge). May wait: a token being fetched.
    fn authorize<'a>(
        &'a self,
        request: &'a mut AuthRequest<'_>,
    ) -> AuthFuture<'a, Result<(), AuthError>>;

    /// The request was answered `401` (`407` from a proxy): whether to send it again, which
    /// calls [`Authenticator::authorize`] again first. Say [`Retry::No`] when the
    /// credentials just sent were already the answer to this challenge (they are wrong);
    /// the `401` is then the request's response.
    fn challenged<'a>(
        &'a self,
        response: &'a AuthResponse<'_>,
    ) -> AuthFuture<'a, Result<Retry, AuthError>>;
}

/// Whether to send a challenged request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Send it again, with the credentials `authorize` gives now.
    Yes,
    /// Give the caller the `401`/`407` as the response.
    No,
}

/// Who asks for the credentials: the origin server (`WWW-Authenticate`, `Authorization`,
/// `401`) or a forward proxy (`Proxy-Authenticate`, `Proxy-Authorization`, `407`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthTarget {
    /// The origin server.
    Origin,
    /// A proxy the request is forwarded through.
    Proxy,
}

impl AuthTarget {
    /// The header the credentials go in.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            AuthTarget::Origin => http::header::AUTHORIZATION,
            AuthTarget::Proxy => http::header::PROXY_AUTHORIZATION,
        }
    }

    /// The header challenges come in.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            AuthTarget::Origin => http::header::WWW_AUTHENTICATE,
            AuthTarget::Proxy => http::header::PROXY_AUTHENTICATE,
        }
    }

    /// The status that carries a challenge.
    pub fn challenge_status(self) -> StatusCode {
        match self {
            AuthTarget::Origin => StatusCode::UNAUTHORIZED,
            AuthTarget::Proxy => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        }
    }
}

/// A request about to be sent, as an authenticator sees it.
pub struct AuthRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    target: AuthTarget,
    rt: &'a dyn Runtime,
    credentials: Option<HeaderValue>,
}

impl fmt::Debug for AuthRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("method", self.method)
            .field("uri", self.uri)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<'a> AuthRequest<'a> {
    pub(crate) fn new(
        method: &'a Method,
        uri: &'a Uri,
        target: AuthTarget,
        rt: &'a dyn Runtime,
    ) -> AuthRequest<'a> {
        AuthRequest {
            method,
            uri,
            target,
            rt,
            credentials: None,
        }
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request's URL.
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The request target as the request line sends it to an origin: path and query.
    pub fn request_target(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }

    /// Whom the credentials are for.
    pub fn target(&self) -> AuthTarget {
        self.target
    }

    /// Sets the credentials (the `Authorization` value, or `Proxy-Authorization` for a
    /// proxy).
    pub fn set_credentials(&mut self, value: HeaderValue) {
        self.credentials = Some(value);
    }

    /// Fills `dest` with random bytes from the runtime's strong source (a Digest client
    /// nonce).
    pub fn fill_random(&self, dest: &mut [u8]) {
        self.rt.fill_random(dest);
    }

    /// The credentials set, to go in `target`'s header.
    pub(crate) fn into_credentials(self) -> Option<HeaderValue> {
        self.credentials
    }
}

/// A `401` or `407` answer to a request, as an authenticator sees it.
pub struct AuthResponse<'a> {
    pub(crate) uri: &'a Uri,
    pub(crate) status: StatusCode,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) sent: Option<&'a HeaderValue>,
    pub(crate) target: AuthTarget,
    pub(crate) retries: u32,
}

impl fmt::Debug for AuthResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthResponse")
            .field("status", &self.status)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl AuthResponse<'_> {
    /// The URL of the request that was challenged.
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The status: `401`, or `407` from a proxy.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response's header fields.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The credentials the challenged request carried, if any: to tell a new challenge
    /// from an answer to the one just met.
    pub fn sent_credentials(&self) -> Option<&HeaderValue> {
        self.sent
    }

    /// Whom the challenge is from.
    pub fn target(&self) -> AuthTarget {
        self.target
    }

    /// How many times this request was already sent again for authentication (0: this is
    /// the first challenge it met). Retry only a new challenge: once, or once more for a
    /// `stale` Digest nonce.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The challenges of every `WWW-Authenticate` (`Proxy-Authenticate`) field, in order.
    /// A field that does not parse is skipped: another may still hold one to answer.
    pub fn challenges(&self) -> Vec<Challenge> {
        self.headers
            .get_all(self.target.challenge_header())
            .iter()
            .filter_map(|value| parse_challenges(value.as_bytes()).ok())
            .flatten()
            .collect()
    }
}

/// Why an authenticator could not authorize a request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Fetching or refreshing a token failed (the callback's error).
    #[error("refreshing the token failed: {0}")]
    Refresh(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The token or user name cannot be sent in a header field.
    #[error("the credentials cannot be sent in a header field")]
    InvalidCredentials,
    /// The server's Digest challenge cannot be answered (an algorithm or `qop` we lack, a
    /// missing `nonce`...).
    #[error("cannot answer the Digest challenge: {0}")]
    Digest(#[from] tether_core::auth::DigestError),
}

/// The authenticator a request uses, and the origin its credentials are for.
pub(crate) struct Scoped {
    pub(crate) auth: Arc<dyn Authenticator>,
    /// Only requests to this origin carry the credentials.
    origin: Origin,
}

impl Scoped {
    /// `auth`, for requests to `origin` only.
    pub(crate) fn new(auth: Arc<dyn Authenticator>, origin: &Origin) -> Scoped {
        Scoped {
            auth,
            origin: origin.clone(),
        }
    }

    /// Whether a request to `origin` (marked with a proxy or not) gets the credentials:
    /// same scheme, host and port as where the request started.
    pub(crate) fn covers(&self, origin: &Origin) -> bool {
        self.origin.scheme() == origin.scheme()
            && self.origin.host() == origin.host()
            && self.origin.port() == origin.port()
    }
}

/// Asks `auth` for the credentials of a request to `uri`, and puts them in `headers`.
pub(crate) async fn authorize(
    auth: &dyn Authenticator,
    rt: &dyn Runtime,
    method: &Method,
    uri: &Uri,
    target: AuthTarget,
    headers: &mut HeaderMap,
) -> Result<(), AuthError> {
    let mut request = AuthRequest::new(method, uri, target, rt);
    auth.authorize(&mut request).await?;
    if let Some(value) = request.into_credentials() {
        headers.insert(target.credentials_header(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
