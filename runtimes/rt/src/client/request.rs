//! Building a request ([`RequestBuilder`]): the URL and its query, the header fields, the
//! body; then sending it, redirects and all.

use super::auth::{self, AuthResponse, AuthTarget, Authenticator, Retry, Scoped};
use super::config::{ClientError, UrlError};
use super::log;
use super::proxy::route::Route;
use super::proxy::Proxy;
use super::redirect;
use super::response::ClientResponse;
use super::{Client, Shared};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use std::sync::Arc;
use tether_core::pool::Origin;
use tether_core::time::{ClientTimeouts, RequestTimer};

/// The schemes a request (and a redirect) may use.
pub(super) const HTTP_SCHEMES: &[&str] = &["http", "https"];

/// A streamed request body: pieces sent with chunked transfer coding.
pub type BodyStream = std::pin::Pin<Box<dyn futures_core::Stream<Item = Bytes> + Send>>;

/// A request body.
pub(super) enum RequestBody {
    Empty,
    Full(Bytes),
    /// A stream can be sent once: no retry, no redirect that repeats the body.
    Stream(Option<BodyStream>),
}

/// What one attempt sends.
pub(super) enum Outgoing {
    Empty,
    Full(Bytes),
    Stream(BodyStream),
}

impl RequestBody {
    /// The body for one more attempt, or `None` if it cannot be sent again.
    pub(super) fn attempt(&mut self) -> Option<Outgoing> {
        match self {
            RequestBody::Empty => Some(Outgoing::Empty),
            RequestBody::Full(bytes) => Some(Outgoing::Full(bytes.clone())),
            RequestBody::Stream(stream) => stream.take().map(Outgoing::Stream),
        }
    }

    /// A stream already sent: it cannot go out again.
    pub(super) fn is_spent(&self) -> bool {
        matches!(self, RequestBody::Stream(None))
    }
}

/// A request being built ([`Client::request`]). Nothing is checked or sent until
/// [`RequestBuilder::send`], which reports the first mistake made while building.
pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: String,
    headers: Fields,
    body: RequestBody,
    timeouts: ClientTimeouts,
    expect_continue: bool,
    follow_redirects: bool,
    /// The proxy this request goes through instead of the client's choice.
    proxy: Option<Proxy>,
    /// The authenticator this request uses instead of the client's.
    auth: Option<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    pub(super) fn new(client: Client, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder {
            timeouts: client.shared.config.timeouts,
            client,
            method,
            url: url.to_owned(),
            headers: Fields::default(),
            body: RequestBody::Empty,
            expect_continue: false,
            follow_redirects: true,
            proxy: None,
            auth: None,
        }
    }

    /// Adds a header (a repeated name sends every value). A name or value that cannot be
    /// sent makes [`RequestBuilder::send`] fail with [`ClientError::InvalidHeader`].
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        self.headers.append(name, value);
        self
    }

    /// Adds fields already checked (the head of an `http::Request`).
    #[cfg(feature = "tower")]
    pub(super) fn headers(mut self, headers: HeaderMap) -> RequestBuilder {
        for (name, value) in &headers {
            self.headers.map.append(name.clone(), value.clone());
        }
        self
    }

    /// Adds query parameters to the URL (form-encoded, after any query it already has).
    pub fn query(mut self, params: &[(&str, &str)]) -> RequestBuilder {
        if params.is_empty() {
            return self;
        }
        // A fragment is never sent.
        let base = self.url.split('#').next().unwrap_or_default().to_owned();
        let encoded = form_urlencoded(params);
        let separator = match base.find('?') {
            None => "?",
            Some(at) if at + 1 == base.len() || base.ends_with('&') => "",
            Some(_) => "&",
        };
        self.url = format!("{base}{separator}{encoded}");
        self
    }

    /// The body (sent with `Content-Length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> RequestBuilder {
        self.body = RequestBody::Full(body.into());
        self
    }

    /// A text body (`text/plain; charset=utf-8` unless a Content-Type is set).
    pub fn text(self, text: impl Into<String>) -> RequestBuilder {
        self.with_type("text/plain; charset=utf-8")
            .body(Bytes::from(text.into()))
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(self, fields: &[(&str, &str)]) -> RequestBuilder {
        self.with_type("application/x-www-form-urlencoded")
            .body(Bytes::from(form_urlencoded(fields)))
    }

    /// A JSON body (`application/json`), with the `json` feature.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(
        self,
        value: &T,
    ) -> Result<RequestBuilder, ClientError> {
        let bytes = serde_json::to_vec(value).map_err(ClientError::Json)?;
        Ok(self.with_type("application/json").body(Bytes::from(bytes)))
    }

    /// A streamed body, sent with `Transfer-Encoding: chunked` as the pieces come (with
    /// backpressure: the next piece is taken once the last is written). Sent once: no
    /// retry, and a 307/308 redirect is returned instead of followed.
    pub fn body_stream(
        mut self,
        stream: impl futures_core::Stream<Item = Bytes> + Send + 'static,
    ) -> RequestBuilder {
        self.body = RequestBody::Stream(Some(Box::pin(stream)));
        self
    }

    /// Sends `Expect: 100-continue` and holds the body back until the server says
    /// `100 Continue` (or one second passes); a final answer instead (e.g. 401, 413) is
    /// returned without sending the body.
    pub fn expect_continue(mut self) -> RequestBuilder {
        self.expect_continue = true;
        self
    }

    /// Whether to follow redirects (default: yes, up to the client's `max_redirects`).
    pub fn follow_redirects(mut self, follow: bool) -> RequestBuilder {
        self.follow_redirects = follow;
        self
    }

    /// Sends this request (and the redirects it follows) through `proxy`, whatever the
    /// client's [`ProxySettings`](super::ProxySettings) say, `NO_PROXY` included (aiohttp's
    /// per-request `proxy=`).
    pub fn proxy(mut self, proxy: Proxy) -> RequestBuilder {
        self.proxy = Some(proxy);
        self
    }

    /// Authenticates this request with `auth` instead of the client's authenticator (see
    /// [`Authenticator`] for when it is asked and when a request is sent again).
    pub fn auth(mut self, auth: Arc<dyn Authenticator>) -> RequestBuilder {
        self.auth = Some(auth);
        self
    }

    fn with_type(mut self, content_type: &'static str) -> RequestBuilder {
        self.headers
            .map
            .entry(http::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static(content_type));
        self
    }

    /// Timeouts for this request, overriding the client's.
    pub fn timeouts(mut self, timeouts: ClientTimeouts) -> RequestBuilder {
        self.timeouts = timeouts;
        self
    }

    /// Sends the request and reads the response head (following redirects).
    pub async fn send(self) -> Result<ClientResponse, ClientError> {
        use tracing::Instrument;
        let span = log::request_span(&self.method);
        // Boxed: the exchange's state (pool wait, connect, the request and the response head,
        // redirects, authentication) is several kilobytes, which would be copied each time
        // the caller's future moves; one allocation is cheaper.
        let sent = Box::pin(self.send_in(&span)).instrument(span.clone()).await;
        if let Err(error) = &sent {
            let _entered = span.enter();
            log::failed(error);
        }
        sent
    }

    /// [`RequestBuilder::send`], in the request's span.
    async fn send_in(self, span: &tracing::Span) -> Result<ClientResponse, ClientError> {
        let RequestBuilder {
            client,
            mut method,
            url,
            headers,
            mut body,
            timeouts,
            expect_continue,
            follow_redirects,
            proxy,
            auth,
        } = self;
        let mut headers = headers.checked()?;
        let max_redirects = if follow_redirects {
            client.shared.config.max_redirects
        } else {
            0
        };
        let mut timer = RequestTimer::new(timeouts, client.now());
        if expect_continue {
            headers.insert(
                http::header::EXPECT,
                HeaderValue::from_static("100-continue"),
            );
        }
        let (mut uri, origin) = parse_url(&url, HTTP_SCHEMES)?;
        let settings = &client.shared.config.proxy;
        let auth = auth
            .or_else(|| client.shared.config.auth.clone())
            .map(|auth| Scoped::new(auth, &origin));
        let mut route = Route::new(settings, proxy.as_ref(), origin);
        log::record_origin(span, &route.origin);
        let mut retries = 0;
        let mut redirects = 0;
        let mut auth_retries = 0;
        loop {
            let mut head = build_head(&client.shared, &method, &uri, &headers, &body)?;
            let rt = &*client.shared.rt;
            if let Some(credentials) = route.forward_authorization() {
                head.headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, credentials.clone());
            }
            // The authenticators this request meets: the forward proxy's, and its own, for
            // the origin it started at only.
            let proxy_auth = route
                .forward_auth()
                .map(|auth| (&**auth, AuthTarget::Proxy));
            let origin_auth = auth
                .as_ref()
                .filter(|auth| auth.covers(&route.origin))
                .map(|auth| (&*auth.auth, AuthTarget::Origin));
            for (authenticator, target) in [proxy_auth, origin_auth].into_iter().flatten() {
                let fields = head.headers_mut();
                // Boxed: the request's future stays small for the requests (most) that have
                // no authenticator.
                Box::pin(auth::authorize(
                    authenticator,
                    rt,
                    &method,
                    &uri,
                    target,
                    fields,
                ))
                .await?;
            }
            let mut response = client
                .exchange(&route, &head, &mut body, &mut timer, &mut retries)
                .await?;
            let done = |response: ClientResponse| {
                log::done(response.status(), redirects, retries);
                Ok(response)
            };
            // A challenge from the origin (401) or the forward proxy (407), to an
            // authenticator that may answer it.
            let challenger = match response.status() {
                StatusCode::UNAUTHORIZED => origin_auth,
                StatusCode::PROXY_AUTHENTICATION_REQUIRED => proxy_auth,
                _ => None,
            };
            if let Some((authenticator, target)) = challenger {
                let challenged = auth_retries < MAX_AUTH_RETRIES && !body.is_spent();
                // The response's fields, copied: a response is not held across the wait.
                let fields = challenged.then(|| response.headers().clone());
                if let Some(fields) = fields {
                    let (head, tries) = (&head, auth_retries);
                    let answer = challenge(authenticator, target, &uri, head, &fields, tries);
                    if !Box::pin(answer).await? {
                        return done(response);
                    }
                    log::auth_retry(response.status());
                    match &body {
                        RequestBody::Empty => response.discard().await?,
                        RequestBody::Full(bytes) if bytes.is_empty() => response.discard().await?,
                        // A challenge to a request with a body may come before the server
                        // read it, and some (squid) never read on: the connection is not
                        // reused for the retry.
                        _ => drop(response),
                    }
                    timer.retrying(client.now());
                    auth_retries += 1;
                    continue;
                }
            }
            let Some(next) = redirect::target(response.status(), response.headers(), &uri) else {
                return done(response);
            };
            if max_redirects == 0 {
                return done(response);
            }
            if redirects == max_redirects {
                return Err(ClientError::TooManyRedirects(redirects));
            }
            if redirect::becomes_get(response.status(), &method) {
                method = Method::GET;
                body = RequestBody::Empty;
                headers.remove(http::header::CONTENT_TYPE);
                headers.remove(http::header::EXPECT);
            } else if body.is_spent() {
                // 307/308 repeat the body, and a stream cannot be sent twice.
                return done(response);
            }
            let (next_uri, next_origin) = parse_url(&next, HTTP_SCHEMES)?;
            let next_route = Route::new(settings, proxy.as_ref(), next_origin);
            log::redirect(response.status(), &next);
            if next_route.origin != route.origin {
                log::record_origin(span, &next_route.origin);
            }
            redirect::drop_credentials(&route.origin, &next_route.origin, &mut headers);
            response.discard().await?;
            timer.retrying(client.now());
            (uri, route) = (next_uri, next_route);
            redirects += 1;
        }
    }
}

/// How many times one request is sent again for authentication: once for a challenge, and
/// once more for a Digest nonce gone stale meanwhile.
pub(crate) const MAX_AUTH_RETRIES: u32 = 2;

/// Asks `auth` whether to send the request `head` again (or connect a WebSocket again)
/// after a challenge from `target` (a `401`, or a proxy's `407`) with `fields`.
pub(super) async fn challenge(
    auth: &dyn Authenticator,
    target: AuthTarget,
    uri: &Uri,
    head: &Request<()>,
    fields: &HeaderMap,
    retries: u32,
) -> Result<bool, ClientError> {
    let answer = AuthResponse {
        uri,
        status: target.challenge_status(),
        headers: fields,
        sent: head.headers().get(target.credentials_header()),
        target,
        retries,
    };
    Ok(auth.challenged(&answer).await? == Retry::Yes)
}

/// Header fields given to a builder, checked as they come; the first that cannot be sent is
/// kept, to be reported when the request goes.
#[derive(Default)]
pub(super) struct Fields {
    map: HeaderMap,
    invalid: Option<ClientError>,
}

impl Fields {
    /// Adds a field (every value of a repeated name is sent), or remembers why it cannot be.
    pub(super) fn append(&mut self, name: &str, value: &str) {
        match parse_header(name, value) {
            Ok((name, value)) => {
                self.map.append(name, value);
            }
            Err(e) => {
                self.invalid.get_or_insert(e);
            }
        }
    }

    /// The fields, or the first one that could not be added.
    pub(super) fn checked(self) -> Result<HeaderMap, ClientError> {
        match self.invalid {
            Some(error) => Err(error),
            None => Ok(self.map),
        }
    }
}

/// A header as given to a builder, checked.
fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), ClientError> {
    let invalid = |source| ClientError::InvalidHeader {
        name: name.to_owned(),
        source,
    };
    let header_name = HeaderName::try_from(name).map_err(|e| invalid(e.into()))?;
    let header_value = HeaderValue::try_from(value).map_err(|e| invalid(e.into()))?;
    Ok((header_name, header_value))
}

/// `url` as a request target: an absolute URI whose scheme is one of `schemes`, without its
/// fragment (never sent), and its origin.
pub(super) fn parse_url(url: &str, schemes: &[&str]) -> Result<(Uri, Origin), ClientError> {
    let invalid = |reason| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let without_fragment = url.split('#').next().unwrap_or_default();
    let uri: Uri = without_fragment
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(e.into()))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(invalid(UrlError::NotAbsolute));
    };
    let Some(scheme) = schemes.iter().find(|s| s.eq_ignore_ascii_case(scheme)) else {
        return Err(invalid(UrlError::UnsupportedScheme {
            scheme: scheme.to_owned(),
        }));
    };
    // The authority's parts are found by scanning it: once each, here.
    let host = authority.host();
    let port = authority.port_u16().or(match *scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    });
    let (false, Some(port)) = (host.is_empty(), port) else {
        return Err(invalid(UrlError::NotAbsolute));
    };
    let origin = Origin::new(scheme, host, port);
    Ok((uri, origin))
}

/// `name=value` pairs, `application/x-www-form-urlencoded`, joined by `&` (query strings and
/// form bodies).
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
        .collect();
    encoded.join("&")
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Fills a request head's fields: the user agent and the client's default headers, then the
/// request's `own` fields, which replace those of the same name with every value kept.
/// Fields already in `out` whose names are `reserved` (a WebSocket handshake's own) stay.
pub(super) fn add_headers(
    out: &mut HeaderMap,
    shared: &Shared,
    own: &HeaderMap,
    reserved: fn(&HeaderName) -> bool,
) -> Result<(), ClientError> {
    if !reserved(&http::header::USER_AGENT) {
        out.insert(http::header::USER_AGENT, shared.user_agent()?);
    }
    let defaults = &shared.config.default_headers;
    for name in defaults.keys() {
        if !out.contains_key(name) {
            for value in defaults.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
    }
    for name in own.keys() {
        if !reserved(name) {
            out.remove(name);
        }
    }
    for (name, value) in own {
        if !reserved(name) {
            out.append(name.clone(), value.clone());
        }
    }
    Ok(())
}

/// The head of one attempt: method, target, the fields and the body's framing.
fn build_head(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &RequestBody,
) -> Result<Request<()>, ClientError> {
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    add_headers(request.headers_mut(), shared, headers, |_| false)?;
    let out = request.headers_mut();
    match body {
        RequestBody::Empty => {}
        RequestBody::Full(bytes) => {
            out.insert(http::header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        RequestBody::Stream(_) => {
            out.insert(
                http::header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::super::config::HeaderError;
    use super::super::testing::{self, Reply};
    use super::*;
    use crate::client::ClientConfig;

    #[test]
    fn form_encoding_keeps_the_unreserved_bytes_and_escapes_the_rest() {
        assert_eq!(form_encode("AZaz09-._*"), "AZaz09-._*");
        assert_eq!(form_encode("a b"), "a+b");
        assert_eq!(form_encode("a+b&c=d/e?f~"), "a%2Bb%26c%3Dd%2Fe%3Ff%7E");
        assert_eq!(form_encode("ü€"), "%C3%BC%E2%82%AC");
        assert_eq!(form_encode(""), "");
        assert_eq!(
            form_urlencoded(&[("name", "a b&c"), ("x", "1=2"), ("", "")]),
            "name=a+b%26c&x=1%3D2&="
        );
        assert_eq!(form_urlencoded(&[]), "");
    }

    fn url_after_query(url: &str, params: &[(&str, &str)]) -> String {
        let (client, _) = testing::client(ClientConfig::default(), |_| Reply::Close);
        client.get(url).query(params).url
    }

    #[tokio::test]
    async fn query_parameters_join_the_query_already_there() {
        assert_eq!(
            url_after_query("http://h/p", &[("a", "1")]),
            "http://h/p?a=1"
        );
        assert_eq!(
            url_after_query("http://h/p?x=0", &[("a", "1"), ("b", "c d")]),
            "http://h/p?x=0&a=1&b=c+d"
        );
        assert_eq!(
            url_after_query("http://h/p?", &[("a", "1")]),
            "http://h/p?a=1"
        );
        assert_eq!(
            url_after_query("http://h/p?x&", &[("a", "1")]),
            "http://h/p?x&a=1"
        );
        assert_eq!(
            url_after_query("http://h/p#frag", &[("a", "1")]),
            "http://h/p?a=1"
        );
        assert_eq!(url_after_query("http://h/p#frag", &[]), "http://h/p#frag");
    }

    fn url_error(url: &str, schemes: &[&str]) -> UrlError {
        match parse_url(url, schemes) {
            Err(ClientError::InvalidUrl { url: given, reason }) => {
                assert_eq!(given, url);
                reason
            }
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn urls_are_absolute_http_without_their_fragment() {
        let (uri, origin) = parse_url("http://Example.test:8080/a?b=c#frag", HTTP_SCHEMES).unwrap();
        assert_eq!(uri, "http://Example.test:8080/a?b=c");
        assert_eq!(origin, Origin::new("http", "example.test", 8080));
        let (_, origin) = parse_url("https://example.test", HTTP_SCHEMES).unwrap();
        assert_eq!(origin.port(), 443);
        assert!(matches!(
            url_error("not a url", HTTP_SCHEMES),
            UrlError::Parse(_)
        ));
        assert!(matches!(
            url_error("/relative", HTTP_SCHEMES),
            UrlError::NotAbsolute
        ));
        assert!(matches!(
            url_error("example.test", HTTP_SCHEMES),
            UrlError::NotAbsolute
        ));
        assert!(matches!(
            url_error("ftp://example.test/", HTTP_SCHEMES),
            UrlError::UnsupportedScheme { scheme } if scheme == "ftp"
        ));
        assert!(matches!(
            url_error("ws://example.test/", HTTP_SCHEMES),
            UrlError::UnsupportedScheme { .. }
        ));
        assert!(parse_url("wss://example.test/", &["ws", "wss"]).is_ok());
    }

    #[test]
    fn a_header_that_cannot_be_sent_is_an_error() {
        assert!(parse_header("x-ok", "fine").is_ok());
        match parse_header("bad name", "v") {
            Err(ClientError::InvalidHeader {
                name,
                source: HeaderError::Name(_),
            }) => assert_eq!(name, "bad name"),
            other => panic!("{other:?}"),
        }
        match parse_header("x-split", "a\r\nb") {
            Err(ClientError::InvalidHeader {
                name,
                source: HeaderError::Value(_),
            }) => assert_eq!(name, "x-split"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn send_reports_the_first_invalid_header_without_connecting() {
        let (client, server) = testing::client(ClientConfig::default(), |_| Reply::Close);
        let result = client
            .get("http://example.test/")
            .header("x-fine", "1")
            .header("x-bad", "line\nbreak")
            .header("bad name", "v")
            .send()
            .await;
        match result {
            Err(ClientError::InvalidHeader {
                name,
                source: HeaderError::Value(_),
            }) => assert_eq!(name, "x-bad"),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn an_invalid_user_agent_fails_every_request() {
        let config = ClientConfig {
            user_agent: "agent\r\nx-injected: 1".into(),
            ..ClientConfig::default()
        };
        let (client, server) = testing::client(config, |_| Reply::Close);
        let result = client.get("http://example.test/").send().await;
        assert!(
            matches!(
                &result,
                Err(ClientError::InvalidHeader { name, source: HeaderError::Value(_) })
                    if name == "user-agent"
            ),
            "{result:?}"
        );
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn an_invalid_url_fails_before_connecting() {
        let (client, server) = testing::client(ClientConfig::default(), |_| Reply::Close);
        for url in ["not a url", "/relative", "ftp://example.test/"] {
            let result = client.get(url).send().await;
            assert!(
                matches!(result, Err(ClientError::InvalidUrl { .. })),
                "{result:?}"
            );
        }
        assert_eq!(server.connections(), 0);
    }

    fn client_with_defaults() -> Client {
        let mut config = ClientConfig {
            user_agent: "agent/1".into(),
            ..ClientConfig::default()
        };
        config
            .default_headers
            .append("x-default", HeaderValue::from_static("one"));
        config
            .default_headers
            .append("x-default", HeaderValue::from_static("two"));
        config
            .default_headers
            .append("x-other", HeaderValue::from_static("kept"));
        testing::client(config, |_| Reply::Close).0
    }

    /// The head `build_head` makes for `client`, to `http://example.test/p`.
    fn head_for(
        client: &Client,
        method: Method,
        own: &HeaderMap,
        body: &RequestBody,
    ) -> Request<()> {
        let uri: Uri = "http://example.test/p".parse().unwrap();
        build_head(&client.shared, &method, &uri, own, body).unwrap()
    }

    fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn heads_have_the_user_agent_the_defaults_and_the_requests_own_fields() {
        let client = client_with_defaults();
        let mut own = HeaderMap::new();
        own.append("x-default", HeaderValue::from_static("mine"));
        own.append("x-multi", HeaderValue::from_static("a"));
        own.append("x-multi", HeaderValue::from_static("b"));
        let uri: Uri = "http://example.test/p".parse().unwrap();
        let head = head_for(&client, Method::GET, &own, &RequestBody::Empty);
        let fields = head.headers();
        assert_eq!(values(fields, "user-agent"), ["agent/1"]);
        assert_eq!(
            values(fields, "x-default"),
            ["mine"],
            "own fields replace defaults"
        );
        assert_eq!(values(fields, "x-other"), ["kept"]);
        assert_eq!(values(fields, "x-multi"), ["a", "b"]);
        assert!(fields.get("content-length").is_none());
        assert!(fields.get("transfer-encoding").is_none());
        assert_eq!(head.uri(), &uri);

        let head = head_for(&client, Method::GET, &HeaderMap::new(), &RequestBody::Empty);
        assert_eq!(
            values(head.headers(), "x-default"),
            ["one", "two"],
            "every default value"
        );
        let mut own = HeaderMap::new();
        own.insert("user-agent", HeaderValue::from_static("mine/2"));
        let head = head_for(&client, Method::GET, &own, &RequestBody::Empty);
        assert_eq!(values(head.headers(), "user-agent"), ["mine/2"]);
    }

    #[tokio::test]
    async fn the_body_decides_the_framing() {
        let client = client_with_defaults();
        let none = HeaderMap::new();
        let full = RequestBody::Full(Bytes::from_static(b"12345"));
        let head = head_for(&client, Method::POST, &none, &full);
        assert_eq!(values(head.headers(), "content-length"), ["5"]);
        let stream = RequestBody::Stream(Some(Box::pin(futures_util::stream::empty())));
        let head = head_for(&client, Method::POST, &none, &stream);
        assert_eq!(values(head.headers(), "transfer-encoding"), ["chunked"]);
        assert!(head.headers().get("content-length").is_none());
    }

    #[tokio::test]
    async fn reserved_fields_stay_as_the_handshake_made_them() {
        let client = client_with_defaults();
        let mut out = HeaderMap::new();
        out.insert("upgrade", HeaderValue::from_static("websocket"));
        let mut own = HeaderMap::new();
        own.insert("upgrade", HeaderValue::from_static("h2c"));
        own.insert("origin", HeaderValue::from_static("http://example.test"));
        add_headers(&mut out, &client.shared, &own, |name| name == "upgrade").unwrap();
        assert_eq!(values(&out, "upgrade"), ["websocket"]);
        assert_eq!(values(&out, "origin"), ["http://example.test"]);
        assert_eq!(values(&out, "user-agent"), ["agent/1"]);
    }

    #[tokio::test]
    async fn a_request_goes_out_as_built() {
        let (client, server) = testing::client(ClientConfig::default(), |_| {
            Reply::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec())
        });
        let mut response = client
            .post("http://example.test/form?x=1#frag")
            .query(&[("y", "2 3")])
            .form(&[("a", "b c")])
            .header("x-one", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
        let request = &server.requests()[0];
        assert!(
            request.starts_with("POST /form?x=1&y=2+3 HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("\r\ncontent-type: application/x-www-form-urlencoded\r\n"));
        assert!(lower.contains("\r\ncontent-length: 5\r\n"));
        assert!(lower.contains("\r\nx-one: 1\r\n"));
        assert!(request.ends_with("\r\n\r\na=b+c"), "{request}");
    }
}
