//! Basic authentication (RFC 7617): the user and password with every request, from the
//! first (as aiohttp's `BasicAuth` does), so no round trip is spent on a challenge.

use super::{AuthError, AuthFuture, AuthRequest, AuthResponse, Authenticator, Retry};
use http::HeaderValue;
use tether_core::auth::basic_credentials;

/// A user name and password, sent with every request.
#[derive(Clone)]
pub struct BasicAuth {
    credentials: HeaderValue,
    user: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// `user` and `password` (UTF-8, as RFC 7617's `charset="UTF-8"` says).
    pub fn new(user: &str, password: &str) -> BasicAuth {
        let mut credentials = basic_credentials(user, password);
        credentials.set_sensitive(true);
        BasicAuth {
            credentials,
            user: user.to_owned(),
        }
    }
}

impl Authenticator for BasicAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a mut AuthRequest<'_>,
    ) -> AuthFuture<'a, Result<(), AuthError>> {
        request.set_credentials(self.credentials.clone());
        Box::pin(async { Ok(()) })
    }

    /// The credentials went with the request: a challenge means they are wrong.
    fn challenged<'a>(
        &'a self,
        _: &'a AuthResponse<'_>,
    ) -> AuthFuture<'a, Result<Retry, AuthError>> {
        Box::pin(async { Ok(Retry::No) })
    }
}
