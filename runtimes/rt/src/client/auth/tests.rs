//! The authenticators in the client's request loop, against a scripted server: what each
//! request carries, when a request is sent again, and when it is not.

use super::super::testing::{self, Reply};
use super::*;
use crate::client::{ClientConfig, ClientError};
use std::sync::atomic::{AtomicUsize, Ordering};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn unauthorized(challenge: &str) -> Reply {
    Reply::Send(
        format!("HTTP/1.1 401 Unauthorized\r\nwww-authenticate: {challenge}\r\ncontent-length: 4\r\n\r\nnope")
            .into_bytes(),
    )
}

/// The value of `name` in a recorded request (names are sent lowercase).
fn field<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request
        .split("\r\n")
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

#[tokio::test]
async fn basic_goes_with_the_first_request_and_a_401_is_the_answer() {
    let auth: Arc<dyn Authenticator> = Arc::new(BasicAuth::new("Aladdin", "open sesame"));
    let config = ClientConfig::default().auth(auth);
    let (client, server) = testing::client(config, |_| unauthorized("Basic realm=\"x\""));
    let response = client.get("http://example.test/").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "wrong credentials are not sent again");
    assert_eq!(
        field(&requests[0], "authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
}

/// A server that accepts `Bearer good` only, and a refreshing authenticator starting from a
/// stale token, counting its refreshes.
fn bearer_setup() -> (crate::client::Client, testing::Server, Arc<BearerAuth>) {
    let bearer = Arc::new(
        BearerAuth::refreshing(|| async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, std::io::Error>("good".to_owned())
        })
        .with_token("stale")
        .unwrap(),
    );
    let (client, server) = testing::client(ClientConfig::default(), |request| {
        match field(request, "authorization") {
            Some("Bearer good") => Reply::Send(OK.to_vec()),
            _ => unauthorized("Bearer realm=\"t\", error=\"invalid_token\""),
        }
    });
    (client, server, bearer)
}

#[tokio::test]
async fn concurrent_requests_share_one_bearer_refresh() {
    let (client, server, bearer) = bearer_setup();
    let requests = (0..50).map(|_| {
        let request = client.get("http://example.test/").auth(bearer.clone());
        async move { request.send().await.map(|r| r.status()) }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(s) if *s == 200)),
        "{statuses:?}"
    );
    assert_eq!(bearer.refreshes(), 1, "one refresh served every request");
    let sent = server.requests();
    let stale = sent.iter().filter(|r| r.contains("Bearer stale")).count();
    assert_eq!(
        (stale, sent.len()),
        (50, 100),
        "each sent once stale, once fresh"
    );
}

#[tokio::test]
async fn a_failed_refresh_is_a_typed_error_and_the_next_request_tries_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let bearer = Arc::new(BearerAuth::refreshing(move || {
        let call = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            match call {
                0 => Err(std::io::Error::other("token endpoint down")),
                _ => Ok("good".to_owned()),
            }
        }
    }));
    let (client, _server) = testing::client(ClientConfig::default(), |request| {
        match field(request, "authorization") {
            Some("Bearer good") => Reply::Send(OK.to_vec()),
            _ => unauthorized("Bearer"),
        }
    });
    let first = client
        .get("http://example.test/")
        .auth(bearer.clone())
        .send()
        .await;
    assert!(
        matches!(first, Err(ClientError::Auth(AuthError::Refresh(_)))),
        "{first:?}"
    );
    let second = client
        .get("http://example.test/")
        .auth(bearer.clone())
        .send()
        .await;
    assert_eq!(second.unwrap().status(), 200);
    assert_eq!(bearer.refreshes(), 2);
}

#[tokio::test]
async fn a_fixed_bearer_token_is_not_sent_twice() {
    let bearer: Arc<dyn Authenticator> = Arc::new(BearerAuth::new("t0ken").unwrap());
    let (client, server) = testing::client(ClientConfig::default(), |_| unauthorized("Bearer"));
    let response = client
        .get("http://example.test/")
        .auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(server.requests().len(), 1);
    assert!(BearerAuth::new("bad\ntoken").is_err());
}

const DIGEST: &str =
    "Digest realm=\"r\", qop=\"auth\", algorithm=SHA-256, nonce=\"n1\", opaque=\"o\"";

/// The `nc` and `nonce` a recorded request's Digest answer carries.
fn digest_answer(request: &str) -> Option<(String, String)> {
    let value = field(request, "authorization")?;
    let challenge = tether_core::auth::parse_challenges(value.as_bytes()).ok()?;
    let answer = challenge.first()?;
    Some((
        answer.param("nc")?.to_owned(),
        answer.param("nonce")?.to_owned(),
    ))
}

#[tokio::test]
async fn digest_answers_the_challenge_then_counts_up_without_a_round_trip() {
    let auth: Arc<dyn Authenticator> = Arc::new(DigestAuth::new("Mufasa", "Circle of Life"));
    let (client, server) =
        testing::client(
            ClientConfig::default().auth(auth),
            |request| match digest_answer(request) {
                Some(_) => Reply::Send(OK.to_vec()),
                None => unauthorized(DIGEST),
            },
        );
    for _ in 0..2 {
        let response = client
            .get("http://example.test/dir?x=1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "one challenge, then answered at once");
    assert!(field(&requests[0], "authorization").is_none());
    assert_eq!(
        digest_answer(&requests[1]),
        Some(("00000001".into(), "n1".into()))
    );
    assert_eq!(
        digest_answer(&requests[2]),
        Some(("00000002".into(), "n1".into()))
    );
    let answer = field(&requests[1], "authorization").unwrap();
    assert!(answer.contains("uri=\"/dir?x=1\""), "{answer}");
    assert!(answer.contains("algorithm=SHA-256"), "{answer}");
}

#[tokio::test]
async fn a_stale_nonce_is_answered_again_and_wrong_credentials_are_not() {
    let auth: Arc<dyn Authenticator> = Arc::new(DigestAuth::new("u", "p"));
    let (client, server) =
        testing::client(
            ClientConfig::default().auth(auth),
            |request| match digest_answer(request) {
                None => unauthorized(DIGEST),
                Some((_, nonce)) if nonce == "n1" => unauthorized(
                    "Digest realm=\"r\", qop=\"auth\", algorithm=SHA-256, nonce=\"n2\", stale=true",
                ),
                Some(_) => Reply::Send(OK.to_vec()),
            },
        );
    let response = client.get("http://example.test/").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests().len(), 3);

    // The same nonce refused again, not stale: the credentials are wrong.
    let auth: Arc<dyn Authenticator> = Arc::new(DigestAuth::new("u", "wrong"));
    let (client, server) =
        testing::client(ClientConfig::default().auth(auth), |_| unauthorized(DIGEST));
    let response = client.get("http://example.test/").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(server.requests().len(), 2, "sent once more, once");
}

#[tokio::test]
async fn a_challenge_we_cannot_answer_is_a_typed_error() {
    let auth: Arc<dyn Authenticator> = Arc::new(DigestAuth::new("u", "p"));
    let (client, _server) = testing::client(ClientConfig::default().auth(auth), |_| {
        unauthorized("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256, qop=\"auth\"")
    });
    let result = client.get("http://example.test/").send().await;
    assert!(
        matches!(result, Err(ClientError::Auth(AuthError::Digest(_)))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_streamed_body_is_never_sent_twice() {
    let auth: Arc<dyn Authenticator> = Arc::new(DigestAuth::new("u", "p"));
    let (client, server) =
        testing::client(ClientConfig::default().auth(auth), |_| unauthorized(DIGEST));
    let stream = futures_util::stream::iter([bytes::Bytes::from_static(b"once")]);
    let response = client
        .post("http://example.test/")
        .body_stream(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the challenge is the answer");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_origin() {
    let auth: Arc<dyn Authenticator> = Arc::new(BasicAuth::new("u", "p"));
    let (client, server) = testing::client(ClientConfig::default().auth(auth), |request| {
        if request.starts_with("GET /start ") {
            Reply::Send(
                b"HTTP/1.1 302 Found\r\nlocation: /same\r\ncontent-length: 0\r\n\r\n".to_vec(),
            )
        } else if request.starts_with("GET /same ") {
            Reply::Send(
                b"HTTP/1.1 302 Found\r\nlocation: http://other.test/away\r\ncontent-length: 0\r\n\r\n"
                    .to_vec(),
            )
        } else {
            Reply::Send(OK.to_vec())
        }
    });
    let response = client
        .get("http://example.test/start")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(field(&requests[0], "authorization").is_some());
    assert!(
        field(&requests[1], "authorization").is_some(),
        "same origin"
    );
    assert!(requests[2].starts_with("GET /away "));
    assert_eq!(field(&requests[2], "authorization"), None, "another origin");
}
