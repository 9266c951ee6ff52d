//! HTTP Basic credentials (RFC 7617): the scheme name and the base64 of `user:password`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::HeaderValue;

/// The `Authorization` / `Proxy-Authorization` value for HTTP Basic credentials (RFC 7617):
/// `Basic` and the base64 of `user:password` (UTF-8).
pub fn basic_credentials(user: &str, password: &str) -> HeaderValue {
    let token = BASE64.encode(format!("{user}:{password}"));
    // Base64 is always a valid field value.
    HeaderValue::try_from(format!("Basic {token}")).unwrap_or(HeaderValue::from_static(""))
}
