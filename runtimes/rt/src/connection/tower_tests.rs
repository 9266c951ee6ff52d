//! A tower service behind `App::fallback_service`, over the in-memory connection: the
//! request as `http` types, the response body's frames as they come (length, chunks,
//! trailers), a body that fails, a service that fails, and the app's own routes first.

use super::tests::{connect, exchange};
use crate::{App, Body, ConnectionInfo, Request, Response, ServerConfig};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body as _;
use http_body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One frame of a scripted response body.
#[derive(Clone)]
enum Step {
    Data(&'static str),
    Trailers(HeaderMap),
    Fail,
    Panic,
}

/// A response body that plays its steps, in order.
struct Scripted {
    steps: VecDeque<Step>,
    exact: Option<u64>,
}

impl http_body::Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.steps.pop_front().map(|step| match step {
            Step::Data(text) => Ok(Frame::data(Bytes::from_static(text.as_bytes()))),
            Step::Trailers(trailers) => Ok(Frame::trailers(trailers)),
            Step::Fail => Err(std::io::Error::other("the source broke")),
            Step::Panic => panic!("a body that panics"),
        }))
    }

    fn size_hint(&self) -> SizeHint {
        self.exact
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// An app whose every request goes to a service answering with `steps`.
fn scripted_app(steps: Vec<Step>, exact: Option<u64>) -> App<()> {
    App::new().fallback_service(tower::service_fn(move |_request: http::Request<Body>| {
        let steps = steps.clone().into();
        async move { Ok::<_, Infallible>(http::Response::new(Scripted { steps, exact })) }
    }))
}

const GET: &str = "GET /any HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn an_exact_size_hint_is_sent_as_content_length() {
    let answer = exchange(
        scripted_app(vec![Step::Data("hello "), Step::Data("world")], Some(11)),
        GET,
    )
    .await;
    assert!(answer.contains("content-length: 11\r\n"), "{answer:?}");
    assert!(!answer.contains("transfer-encoding"), "{answer:?}");
    assert!(answer.ends_with("\r\n\r\nhello world"), "{answer:?}");
}

#[tokio::test]
async fn frames_of_unknown_length_are_chunked_with_their_trailers() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("abc"));
    let steps = vec![
        Step::Data("one;"),
        Step::Data(""),
        Step::Data("two"),
        Step::Trailers(trailers),
    ];
    let answer = exchange(scripted_app(steps, None), GET).await;
    assert!(
        answer.contains("transfer-encoding: chunked\r\n"),
        "{answer:?}"
    );
    assert!(
        answer.ends_with("4\r\none;\r\n3\r\ntwo\r\n0\r\nx-checksum: abc\r\n\r\n"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_body_that_fails_or_panics_never_looks_complete() {
    for last in [Step::Fail, Step::Panic] {
        let steps = vec![Step::Data("partial"), last];
        let answer = exchange(scripted_app(steps, None), GET).await;
        assert!(answer.contains("7\r\npartial\r\n"), "{answer:?}");
        assert!(
            !answer.contains("0\r\n\r\n"),
            "no end of the body: {answer:?}"
        );
    }
}

#[tokio::test]
async fn the_service_sees_http_types_and_its_errors_are_500() {
    let app = App::new()
        .route(http::Method::GET, "/own", |_req: Request| async {
            Response::text("the app's own route")
        })
        .fallback_service(tower::service_fn(
            |mut request: http::Request<Body>| async move {
                if request.uri().path() == "/fail" {
                    return Err(std::io::Error::other("refused"));
                }
                let info = request.extensions().get::<ConnectionInfo>().copied();
                let mut body = Vec::new();
                while let Some(frame) =
                    std::future::poll_fn(|cx| Pin::new(request.body_mut()).poll_frame(cx)).await
                {
                    body.extend_from_slice(frame.unwrap().data_ref().unwrap());
                }
                let text = format!(
                    "{} {} got {:?}, info {}",
                    request.method(),
                    request.uri().path(),
                    String::from_utf8(body).unwrap(),
                    info.is_some()
                );
                Ok(http::Response::new(text))
            },
        ));
    let post =
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
    let answer = exchange(app, post).await;
    assert!(
        answer.ends_with("POST /echo got \"hello\", info true"),
        "{answer:?}"
    );
    // The routes of the app are tried first; a method they do not have falls through.
    let answer = exchange(
        fallback_and_route(),
        "GET /own HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.ends_with("the app's own route"), "{answer:?}");
    let answer = exchange(
        fallback_and_route(),
        "DELETE /own HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.ends_with("fallback DELETE"), "{answer:?}");
    let answer = exchange(
        fallback_and_route(),
        "GET /fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {}", StatusCode::INTERNAL_SERVER_ERROR)),
        "{answer:?}"
    );
}

fn fallback_and_route() -> App<()> {
    App::new()
        .route(http::Method::GET, "/own", |_req: Request| async {
            Response::text("the app's own route")
        })
        .fallback_service(tower::service_fn(
            |request: http::Request<Body>| async move {
                if request.uri().path() == "/fail" {
                    return Err(std::io::Error::other("refused"));
                }
                Ok(http::Response::new(format!(
                    "fallback {}",
                    request.method()
                )))
            },
        ))
}

/// A body that always has another 16 KiB ready.
struct Endless;

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))))
    }
}

#[tokio::test]
async fn a_body_that_is_always_ready_is_written_as_it_comes_not_queued_whole() {
    let app =
        App::new().fallback_service(tower::service_fn(|_request: http::Request<Body>| async {
            Ok::<_, Infallible>(http::Response::new(Endless))
        }));
    let (mut client, _service, task) = connect(app, ServerConfig::default()).await;
    client.write_all(GET.as_bytes()).await.unwrap();
    // The client gets bytes while the body goes on (the connection takes a bounded batch of
    // ready pieces, then flushes), and going away ends the connection.
    let mut received = 0;
    let mut buffer = vec![0; 64 * 1024];
    while received < 4 << 20 {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buffer))
            .await
            .expect("bytes keep coming")
            .unwrap();
        assert!(n > 0, "the body goes on");
        received += n;
    }
    drop(client);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the connection ends once the client has gone")
        .unwrap();
}

#[tokio::test]
async fn statuses_without_a_body_get_none_whatever_the_body_says() {
    // A body that is empty but does not say it has ended (a layer's wrapper), and for the
    // 204 a `Content-Length: 0` field (axum's router sets one from the size hint): a 204 and
    // a 304 never carry a body, so none is framed (the core refuses a `Content-Length` on a
    // 204, and the answer would have been a 500).
    for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
        let app = App::new().fallback_service(tower::service_fn(
            move |_request: http::Request<Body>| async move {
                let body = Scripted {
                    steps: VecDeque::new(),
                    exact: Some(0),
                };
                let mut response = http::Response::new(body);
                *response.status_mut() = status;
                if status == StatusCode::NO_CONTENT {
                    response
                        .headers_mut()
                        .insert("content-length", HeaderValue::from_static("0"));
                }
                Ok::<_, Infallible>(response)
            },
        ));
        let answer = exchange(app, GET).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{answer:?}"
        );
        assert!(!answer.contains("content-length"), "{answer:?}");
        assert!(!answer.contains("transfer-encoding"), "{answer:?}");
    }
}
