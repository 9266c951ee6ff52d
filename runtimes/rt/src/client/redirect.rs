//! Redirects: which responses lead elsewhere, where (a `Location` resolved against the
//! request's URL as RFC 3986 §5.2 says), with which method, and which fields stay behind.

use http::header::{HeaderMap, HeaderName};
use http::{Method, StatusCode, Uri};
use tether_core::pool::Origin;

/// Headers dropped when a redirect leads to another origin.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::COOKIE,
    http::header::PROXY_AUTHORIZATION,
];

/// Where a response with `status` and `headers` to a request for `base` redirects to: its
/// `Location` resolved against `base`, without a fragment (never sent). `None` if it is not
/// a redirect (no `Location`, or a `304 Not Modified`).
pub(super) fn target(status: StatusCode, headers: &HeaderMap, base: &Uri) -> Option<String> {
    if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
        return None;
    }
    let location = headers.get(http::header::LOCATION)?.to_str().ok()?.trim();
    let resolved = resolve(&Reference::of_uri(base), location);
    let without_fragment = resolved.split('#').next().unwrap_or_default();
    Some(without_fragment.to_owned())
}

/// Whether the redirect is followed with a bodiless `GET` rather than the same request:
/// `303 See Other` for every method but `HEAD`, and `301`/`302` after a `POST` (what
/// browsers do, which RFC 9110 §15.4.2-3 allows). `307` and `308` keep method and body.
pub(super) fn becomes_get(status: StatusCode, method: &Method) -> bool {
    (status == StatusCode::SEE_OTHER && method != Method::HEAD)
        || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
            && method == Method::POST)
}

/// Credentials are for the origin they were given to: moving from `from` to another origin
/// drops them from `headers`.
pub(super) fn drop_credentials(from: &Origin, to: &Origin, headers: &mut HeaderMap) {
    if from != to {
        for name in CREDENTIAL_HEADERS {
            headers.remove(name);
        }
    }
}

/// A URI reference split into its five components (RFC 3986 §3, Appendix B); an absent
/// component is `None`, unlike an empty one (`http://a?` has an empty query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reference<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

impl<'a> Reference<'a> {
    /// Splits `text` as Appendix B's regular expression does, except that a scheme must be
    /// one (§3.1: a letter, then letters, digits, `+`, `-`, `.`), so that a relative path
    /// such as `a;b:c` is not taken for one.
    fn parse(text: &'a str) -> Reference<'a> {
        let (rest, fragment) = match text.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (text, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (scheme, rest) = match rest.split_once(':') {
            Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
            _ => (None, rest),
        };
        let (authority, path) = match rest.strip_prefix("//") {
            Some(rest) => {
                let end = rest.find('/').unwrap_or(rest.len());
                (Some(&rest[..end]), &rest[end..])
            }
            None => (None, rest),
        };
        Reference {
            scheme,
            authority,
            path,
            query,
            fragment,
        }
    }

    /// The components of an absolute `http::Uri` (which has no fragment).
    fn of_uri(uri: &'a Uri) -> Reference<'a> {
        Reference {
            scheme: uri.scheme_str(),
            authority: uri.authority().map(|a| a.as_str()),
            path: uri.path(),
            query: uri.query(),
            fragment: None,
        }
    }
}

fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The target URI of `reference` against `base` (RFC 3986 §5.2.2, strict: a reference with
/// a scheme is never taken as relative), recomposed as §5.3 says.
fn resolve(base: &Reference<'_>, reference: &str) -> String {
    let r = Reference::parse(reference);
    let (scheme, authority, path, query);
    if r.scheme.is_some() {
        scheme = r.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            if r.path.is_empty() {
                path = base.path.to_owned();
                query = r.query.or(base.query);
            } else {
                if r.path.starts_with('/') {
                    path = remove_dot_segments(r.path);
                } else {
                    path = remove_dot_segments(&merge(base, r.path));
                }
                query = r.query;
            }
            authority = base.authority;
        }
        scheme = base.scheme;
    }
    let mut out = String::with_capacity(reference.len() + base.path.len() + 16);
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push(':');
    }
    if let Some(authority) = authority {
        out.push_str("//");
        out.push_str(authority);
    }
    out.push_str(&path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    if let Some(fragment) = r.fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// A relative-path reference's path merged with the base's (§5.2.3): appended to the base
/// path's directory, or to `/` when the base has an authority and an empty path.
fn merge(base: &Reference<'_>, path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{path}");
    }
    let directory = base.path.rfind('/').map_or("", |at| &base.path[..=at]);
    format!("{directory}{path}")
}

/// `path` without its `.` and `..` segments (§5.2.4), step by step as the RFC writes it.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        // A: a leading `../` or `./` goes.
        if let Some(rest) = input
            .strip_prefix("../")
            .or_else(|| input.strip_prefix("./"))
        {
            input = rest;
        }
        // B: `/./` or a final `/.` becomes `/`.
        else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        }
        // C: `/../` or a final `/..` becomes `/`, and the last output segment goes.
        else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            output.truncate(output.rfind('/').unwrap_or(0));
        }
        // D: a lone `.` or `..` goes.
        else if input == "." || input == ".." {
            input = "";
        }
        // E: the first segment (with its leading `/`) moves to the output.
        else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..]
                .find('/')
                .map_or(input.len(), |at| at + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, Reply};
    use super::super::{Client, ClientConfig, ClientError, UrlError};
    use super::*;
    use http::HeaderValue;

    const BASE: &str = "http://a/b/c/d;p?q";

    /// Resolves against RFC 3986 §5.4's base, given as an `http::Uri` as the client has it.
    fn against_base(reference: &str) -> String {
        let base: Uri = BASE.parse().unwrap();
        resolve(&Reference::of_uri(&base), reference)
    }

    #[test]
    fn the_base_splits_as_the_rfc_says() {
        let base: Uri = BASE.parse().unwrap();
        assert_eq!(Reference::of_uri(&base), Reference::parse(BASE));
        assert_eq!(
            Reference::parse("g;x?y#s"),
            Reference {
                scheme: None,
                authority: None,
                path: "g;x",
                query: Some("y"),
                fragment: Some("s"),
            }
        );
        assert_eq!(Reference::parse("//g").authority, Some("g"));
        assert_eq!(Reference::parse("?").query, Some(""));
        assert_eq!(Reference::parse("a;b:c").scheme, None, "not a scheme");
    }

    #[test]
    fn rfc_3986_normal_examples() {
        // RFC 3986 §5.4.1.
        let examples = [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            ("g?y#s", "http://a/b/c/g?y#s"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("g;x?y#s", "http://a/b/c/g;x?y#s"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
        ];
        for (reference, expected) in examples {
            assert_eq!(against_base(reference), expected, "{reference:?}");
        }
    }

    #[test]
    fn rfc_3986_abnormal_examples() {
        // RFC 3986 §5.4.2, with the strict reading of `http:g`.
        let examples = [
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("g#s/./x", "http://a/b/c/g#s/./x"),
            ("g#s/../x", "http://a/b/c/g#s/../x"),
            ("http:g", "http:g"),
        ];
        for (reference, expected) in examples {
            assert_eq!(against_base(reference), expected, "{reference:?}");
        }
    }

    #[test]
    fn remove_dot_segments_follows_the_rfcs_walkthroughs() {
        // §5.2.4's two examples, and the edges.
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
        assert_eq!(remove_dot_segments(""), "");
        assert_eq!(remove_dot_segments("/"), "/");
        assert_eq!(remove_dot_segments("/.."), "/");
        assert_eq!(remove_dot_segments("../a"), "a");
        assert_eq!(remove_dot_segments("/a/.."), "/");
    }

    #[test]
    fn a_base_with_an_empty_path_merges_under_the_root() {
        let base = Reference::parse("http://a");
        assert_eq!(resolve(&base, "g"), "http://a/g");
        assert_eq!(resolve(&base, "?y"), "http://a?y");
        let base: Uri = "http://a".parse().unwrap();
        assert_eq!(resolve(&Reference::of_uri(&base), "g"), "http://a/g");
    }

    fn location(status: u16, to: &str, base: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert("location", HeaderValue::from_str(to).unwrap());
        target(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            &base.parse().unwrap(),
        )
    }

    #[test]
    fn redirect_targets_resolve_against_the_request_url_without_the_fragment() {
        let base = "http://h:8080/dir/page?x=1";
        let cases = [
            (302, "//other/x", "http://other/x"),
            (302, "?q", "http://h:8080/dir/page?q"),
            (301, "next#part", "http://h:8080/dir/next"),
            (307, "../up", "http://h:8080/up"),
            (308, "https://secure.test/", "https://secure.test/"),
            (303, "/abs", "http://h:8080/abs"),
        ];
        for (status, to, expected) in cases {
            assert_eq!(
                location(status, to, base).as_deref(),
                Some(expected),
                "{to}"
            );
        }
        assert_eq!(location(304, "/abs", base), None, "not modified");
        assert_eq!(location(200, "/abs", base), None, "not a redirect");
        let no_location = target(StatusCode::FOUND, &HeaderMap::new(), &base.parse().unwrap());
        assert_eq!(no_location, None);
    }

    /// A server that redirects `/from...` requests without a query with `status` to
    /// `location`, and answers anything else with `ok`.
    fn redirecting(status: u16, location: &'static str) -> (Client, testing::Server) {
        testing::client(ClientConfig::default(), move |request| {
            let target = request.split(' ').nth(1).unwrap_or("");
            if target.starts_with("/from") && !target.contains('?') {
                Reply::Send(
                    format!("HTTP/1.1 {status} Moved\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n")
                        .into_bytes(),
                )
            } else {
                Reply::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec())
            }
        })
    }

    #[tokio::test]
    async fn a_followed_redirect_resolves_its_location_and_drops_credentials_across_origins() {
        let (client, server) = redirecting(302, "//other.test/to?x#frag");
        let mut response = client
            .get("http://example.test/from/here")
            .header("authorization", "secret")
            .header("x-kept", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let landed = requests[1].to_ascii_lowercase();
        assert!(landed.starts_with("get /to?x http/1.1\r\n"), "{landed}");
        assert!(landed.contains("\r\nhost: other.test\r\n"), "{landed}");
        assert!(landed.contains("\r\nx-kept: 1\r\n"), "{landed}");
        assert!(!landed.contains("authorization"), "{landed}");

        let (client, server) = redirecting(307, "?q=1");
        let mut response = client
            .post("http://example.test/from")
            .header("authorization", "secret")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
        let landed = server.requests()[1].to_ascii_lowercase();
        assert!(
            landed.starts_with("post /from?q=1 http/1.1\r\n"),
            "{landed}"
        );
        assert!(
            landed.contains("authorization: secret"),
            "same origin: {landed}"
        );
        assert!(
            landed.ends_with("\r\n\r\npayload"),
            "307 repeats the body: {landed}"
        );
    }

    #[tokio::test]
    async fn see_other_turns_a_post_into_a_bodiless_get() {
        let (client, server) = redirecting(303, "/done");
        let mut response = client
            .post("http://example.test/from")
            .text("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
        let landed = server.requests()[1].to_ascii_lowercase();
        assert!(landed.starts_with("get /done http/1.1\r\n"), "{landed}");
        assert!(!landed.contains("content-type") && !landed.contains("content-length"));
    }

    #[tokio::test]
    async fn redirects_stop_at_the_limit_at_a_spent_stream_or_when_not_followed() {
        let (client, server) = redirecting(302, "/from/again");
        let result = client.get("http://example.test/from").send().await;
        assert!(
            matches!(result, Err(ClientError::TooManyRedirects(10))),
            "{result:?}"
        );
        assert_eq!(server.requests().len(), 11);
        assert_eq!(server.connections(), 1, "bodies read, connection reused");

        let response = client
            .get("http://example.test/from")
            .follow_redirects(false)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);

        let (client, _server) = redirecting(307, "/to");
        let stream = futures_util::stream::iter([bytes::Bytes::from_static(b"once")]);
        let response = client
            .post("http://example.test/from")
            .body_stream(stream)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 307, "a stream cannot be sent twice");
    }

    #[tokio::test]
    async fn a_redirect_to_another_scheme_is_an_invalid_url() {
        let (client, _server) = redirecting(302, "ftp://example.test/file");
        let result = client.get("http://example.test/from").send().await;
        assert!(
            matches!(
                &result,
                Err(ClientError::InvalidUrl { url, reason: UrlError::UnsupportedScheme { .. } })
                    if url == "ftp://example.test/file"
            ),
            "{result:?}"
        );
    }

    #[test]
    fn see_other_and_a_moved_post_become_get() {
        use http::Method as M;
        let cases = [
            (303, M::POST, true),
            (303, M::PUT, true),
            (303, M::GET, true),
            (303, M::HEAD, false),
            (301, M::POST, true),
            (302, M::POST, true),
            (301, M::PUT, false),
            (302, M::DELETE, false),
            (301, M::GET, false),
            (307, M::POST, false),
            (308, M::POST, false),
        ];
        for (status, method, expected) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(becomes_get(status, &method), expected, "{status} {method}");
        }
    }

    #[test]
    fn credentials_stay_with_their_origin() {
        let fields = || {
            let mut headers = HeaderMap::new();
            for name in ["authorization", "cookie", "proxy-authorization", "x-kept"] {
                headers.insert(name, HeaderValue::from_static("v"));
            }
            headers
        };
        let here = Origin::new("http", "a.test", 80);
        let mut headers = fields();
        drop_credentials(&here, &Origin::new("HTTP", "A.test", 80), &mut headers);
        assert_eq!(headers.len(), 4, "the same origin keeps everything");
        for other in [
            Origin::new("https", "a.test", 443),
            Origin::new("http", "b.test", 80),
            Origin::new("http", "a.test", 8080),
        ] {
            let mut headers = fields();
            drop_credentials(&here, &other, &mut headers);
            assert_eq!(
                headers.keys().map(|n| n.as_str()).collect::<Vec<_>>(),
                ["x-kept"],
                "{other:?}"
            );
        }
    }
}
