//! Bearer tokens (RFC 6750): a fixed token, or one a callback fetches and fetches again
//! when the server answers `401`. Concurrent requests share one refresh: whichever request
//! meets the stale token first starts it, the others wait for the same result, and a
//! request whose token was already replaced just sends the new one.

use super::{AuthError, AuthFuture, AuthRequest, AuthResponse, Authenticator, Retry};
use crate::runtime::{MaybeSend, MaybeSync};
use futures_util::future::{FutureExt, Shared};
use http::HeaderValue;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What a refresh callback fails with.
type RefreshError = Arc<dyn StdError + Send + Sync>;
/// The callback, boxed: a fresh token, or why there is none.
type RefreshFn = Box<dyn RefreshCallback>;

/// What a refresh callback is: `Send + Sync` where the host has threads.
trait RefreshCallback:
    Fn() -> AuthFuture<'static, Result<String, RefreshError>> + MaybeSend + MaybeSync
{
}

impl<F> RefreshCallback for F where
    F: Fn() -> AuthFuture<'static, Result<String, RefreshError>> + MaybeSend + MaybeSync
{
}
/// A refresh in flight, awaited by every request that needs its token.
type Refreshing = Shared<AuthFuture<'static, Result<HeaderValue, AuthError>>>;

/// A bearer token for every request: fixed ([`BearerAuth::new`]) or fetched and refreshed
/// by a callback ([`BearerAuth::refreshing`]).
pub struct BearerAuth {
    state: Mutex<TokenState>,
    refresh: Option<RefreshFn>,
}

/// The token now, and the refresh that will replace it.
#[derive(Default)]
struct TokenState {
    token: Option<HeaderValue>,
    refreshing: Option<Refreshing>,
    refreshes: u64,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("refreshing", &self.refresh.is_some())
            .field("refreshes", &self.refreshes())
            .finish_non_exhaustive()
    }
}

/// `Bearer <token>`, marked sensitive (kept out of logs and HPACK tables).
fn bearer_value(token: &str) -> Result<HeaderValue, AuthError> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| AuthError::InvalidCredentials)?;
    value.set_sensitive(true);
    Ok(value)
}

impl BearerAuth {
    /// A fixed token. Fails if it cannot be sent in a header field.
    pub fn new(token: &str) -> Result<BearerAuth, AuthError> {
        Ok(BearerAuth {
            state: Mutex::new(TokenState {
                token: Some(bearer_value(token)?),
                ..TokenState::default()
            }),
            refresh: None,
        })
    }

    /// A token `refresh` fetches: before the first request, and again whenever the server
    /// rejects the current one with `401` (once per rejected token, however many requests
    /// met it). A failed refresh fails the requests waiting for it with
    /// [`AuthError::Refresh`]; the next request tries again.
    pub fn refreshing<F, Fut, E>(refresh: F) -> BearerAuth
    where
        F: Fn() -> Fut + MaybeSend + MaybeSync + 'static,
        Fut: Future<Output = Result<String, E>> + MaybeSend + 'static,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let refresh: RefreshFn = Box::new(move || {
            let fetching = refresh();
            Box::pin(async move { fetching.await.map_err(|e| RefreshError::from(e.into())) })
        });
        BearerAuth {
            state: Mutex::new(TokenState::default()),
            refresh: Some(refresh),
        }
    }

    /// Starts with `token` already known (a refreshing authenticator then calls its
    /// callback only once the server rejects it).
    pub fn with_token(self, token: &str) -> Result<BearerAuth, AuthError> {
        let value = bearer_value(token)?;
        if let Ok(mut state) = self.state.lock() {
            state.token = Some(value);
        }
        Ok(self)
    }

    /// How many refreshes were started so far.
    pub fn refreshes(&self) -> u64 {
        self.state.lock().map_or(0, |state| state.refreshes)
    }

    /// The token to send: the current one, unless it is `rejected` (or there is none),
    /// then the one the refresh in flight (or a new one) brings.
    async fn token(&self, rejected: Option<&HeaderValue>) -> Result<HeaderValue, AuthError> {
        let refreshing = {
            let mut state = self
                .state
                .lock()
                .map_err(|_| AuthError::InvalidCredentials)?;
            if let Some(token) = &state.token {
                if rejected != Some(token) {
                    return Ok(token.clone());
                }
            }
            state.token = None;
            match &state.refreshing {
                Some(refreshing) => refreshing.clone(),
                None => {
                    let Some(refresh) = &self.refresh else {
                        return Err(AuthError::InvalidCredentials);
                    };
                    let fetching = refresh();
                    let refreshing: Refreshing = (Box::pin(async move {
                        let token = fetching.await.map_err(AuthError::Refresh)?;
                        bearer_value(&token)
                    }) as AuthFuture<'static, _>)
                        .shared();
                    state.refreshing = Some(refreshing.clone());
                    state.refreshes += 1;
                    refreshing
                }
            }
        };
        let result = refreshing.clone().await;
        if let Ok(mut state) = self.state.lock() {
            // The first to see the result installs it (or clears a failed refresh).
            if state
                .refreshing
                .as_ref()
                .is_some_and(|r| r.ptr_eq(&refreshing))
            {
                state.refreshing = None;
                state.token = result.as_ref().ok().cloned();
            }
        }
        result
    }
}

impl Authenticator for BearerAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a mut AuthRequest<'_>,
    ) -> AuthFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            request.set_credentials(self.token(None).await?);
            Ok(())
        })
    }

    /// A fixed token is not sent again; a refreshing one is replaced (or already was) and
    /// the request sent once more, once.
    fn challenged<'a>(
        &'a self,
        response: &'a AuthResponse<'_>,
    ) -> AuthFuture<'a, Result<Retry, AuthError>> {
        Box::pin(async move {
            if self.refresh.is_none() || response.retries() > 0 {
                return Ok(Retry::No);
            }
            self.token(response.sent_credentials()).await?;
            Ok(Retry::Yes)
        })
    }
}
