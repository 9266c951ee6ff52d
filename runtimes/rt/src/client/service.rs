//! The client as a `tower::Service` (feature `tower`), so that tower's middlewares (retry,
//! concurrency limit, timeout, rate limit) wrap it like any other service.
//!
//! `Client` serves `http::Request<B>` for any `http_body::Body` `B`, answering
//! [`ClientResponse`]. Everything a request from [`Client::request`] gets applies: the pool,
//! the client's default headers, its timeouts, redirects. The request body is read whole
//! before anything is sent, so a body that fails is [`ClientError::RequestBody`], never a
//! shorter request on the wire (stream large uploads with
//! [`RequestBuilder::body_stream`](super::RequestBuilder::body_stream)).

use super::{Client, ClientError, ClientResponse};
use crate::runtime::BoxFuture;
use bytes::{Buf, BytesMut};
use std::future::poll_fn;
use std::pin::pin;
use std::task::{Context, Poll};
use tower_service::Service;

impl<B> Service<http::Request<B>> for Client
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<crate::BoxError>,
{
    type Response = ClientResponse;
    type Error = ClientError;
    type Future = BoxFuture<Result<ClientResponse, ClientError>>;

    /// Always ready (the pool decides per request whether to wait); `Closed` once
    /// [`Client::close`] was called.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        if self.is_closed() {
            Poll::Ready(Err(ClientError::Closed))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move {
            let (head, body) = request.into_parts();
            let body = read_whole(body).await?;
            let mut builder = client
                .request(head.method, &head.uri.to_string())
                .headers(head.headers);
            if !body.is_empty() {
                builder = builder.body(body);
            }
            builder.send().await
        })
    }
}

/// The whole body; its failure is the request's.
async fn read_whole<B>(body: B) -> Result<bytes::Bytes, ClientError>
where
    B: http_body::Body,
    B::Error: Into<crate::BoxError>,
{
    let mut body = pin!(body);
    let mut all = BytesMut::new();
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| ClientError::RequestBody(e.into()))?;
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                all.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    Ok(all.freeze())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, Reply};
    use crate::client::{ClientConfig, ClientError};
    use bytes::Bytes;
    use http_body::Frame;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;
    use tower::{ServiceBuilder, ServiceExt};

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn tower_middlewares_wrap_the_client() {
        let (client, server) =
            testing::client(ClientConfig::default(), |_| Reply::Send(OK.to_vec()));
        let service = ServiceBuilder::new()
            .concurrency_limit(2)
            .timeout(Duration::from_secs(5))
            .service(client.clone());
        let calls = (0..6).map(|i| {
            let request = http::Request::post(format!("http://example.test/items/{i}"))
                .header("x-item", i)
                .body(format!("body {i}"))
                .unwrap();
            service.clone().oneshot(request)
        });
        for response in futures_util::future::join_all(calls).await {
            let mut response = response.expect("through the middlewares");
            assert_eq!(response.text().await.unwrap(), "ok");
        }
        let mut requests = server.requests();
        requests.sort();
        assert_eq!(requests.len(), 6);
        for (i, request) in requests.iter().enumerate() {
            assert!(request.starts_with(&format!("POST /items/{i} HTTP/1.1\r\n")));
            assert!(
                request.contains(&format!("\r\nx-item: {i}\r\n")),
                "{request}"
            );
            assert!(request.ends_with(&format!("\r\n\r\nbody {i}")), "{request}");
        }
    }

    /// A body that yields a piece, then fails.
    struct Failing(bool);

    impl http_body::Body for Failing {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if self.0 {
                return Poll::Ready(Some(Err(std::io::Error::other("disk gone"))));
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first half")))))
        }
    }

    #[tokio::test]
    async fn a_request_body_that_fails_is_an_error_and_nothing_is_sent() {
        let (client, server) =
            testing::client(ClientConfig::default(), |_| Reply::Send(OK.to_vec()));
        let request = http::Request::put("http://example.test/upload")
            .body(Failing(false))
            .unwrap();
        let outcome = client.clone().oneshot(request).await;
        assert!(
            matches!(&outcome, Err(ClientError::RequestBody(e)) if e.to_string() == "disk gone"),
            "{outcome:?}"
        );
        assert!(server.requests().is_empty());
        // A closed client says so before any request.
        client.close().await;
        let request = http::Request::get("http://example.test/")
            .body(String::new())
            .unwrap();
        assert!(matches!(
            client.oneshot(request).await,
            Err(ClientError::Closed)
        ));
    }
}
