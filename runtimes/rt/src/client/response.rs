//! A response ([`ClientResponse`]): its head at once, its body piece by piece or whole, and
//! its connection back to the pool once the body has ended.

use super::config::ClientError;
use super::io::unexpected_eof;
use super::pool::Lease;
use super::Client;
use bytes::{Bytes, BytesMut};
use http::header::HeaderMap;
use http::StatusCode;
use tether_core::h1::ClientEvent;
use tether_core::time::RequestTimer;

/// A response: head first; the body is read with [`ClientResponse::bytes`],
/// [`ClientResponse::text`] or [`ClientResponse::chunk`]. Read to its end, its connection
/// goes back to the pool; dropped early, the connection is closed (a half-read connection is
/// never reused).
pub struct ClientResponse {
    head: http::Response<()>,
    client: Client,
    /// The connection, until the body has ended.
    lease: Option<Lease>,
    timer: RequestTimer,
    done: bool,
    /// An event already parsed from the bytes that came with the head.
    pending: Option<ClientEvent>,
}

impl std::fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientResponse")
            .field("status", &self.head.status())
            .finish_non_exhaustive()
    }
}

impl ClientResponse {
    /// The response whose `head` was read on `lease`'s connection. `timer`: the request's,
    /// paused here until the application asks for the body.
    pub(super) fn new(
        client: &Client,
        head: http::Response<()>,
        mut lease: Lease,
        timer: &RequestTimer,
    ) -> ClientResponse {
        let mut timer = timer.clone();
        timer.read_paused();
        let pending = lease.conn().http.poll_event();
        let mut response = ClientResponse {
            head,
            client: client.clone(),
            pending,
            lease: Some(lease),
            timer,
            done: false,
        };
        if matches!(response.pending, Some(ClientEvent::End { .. })) {
            // No body (HEAD, 204, 304, `Content-Length: 0`): the connection goes back at
            // once, even if the body is never asked for.
            response.pending = None;
            response.finish();
        }
        response
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.head.status()
    }

    /// The version.
    pub fn version(&self) -> http::Version {
        self.head.version()
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// The next piece of the body; `None` at its end (the connection is then back in the
    /// pool). A connection that ends before the body does is an error, never a short body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let event = match self.pending.take() {
            Some(event) => event,
            None => {
                let Some(lease) = self.lease.as_mut() else {
                    return Ok(None);
                };
                // `sock_read` runs only while the application waits for the body: the time
                // it spends between two calls is not the server's gap.
                self.timer.read_resumed(self.client.now());
                let event = lease.conn().next_event(&mut self.timer).await?;
                self.timer.read_paused();
                event
            }
        };
        match event {
            ClientEvent::Data(data) => Ok(Some(data)),
            ClientEvent::End { .. } => {
                self.finish();
                Ok(None)
            }
            ClientEvent::Error(e) => Err(e.into()),
            _ => Err(unexpected_eof()),
        }
    }

    /// The whole body (up to the client's `max_body_size`: over it,
    /// [`ClientError::BodyTooLarge`], and the connection is not reused).
    pub async fn bytes(&mut self) -> Result<Bytes, ClientError> {
        let limit = self.client.shared.config.max_body_size;
        let mut all = BytesMut::new();
        while let Some(piece) = self.chunk().await? {
            if all.len() + piece.len() > limit {
                return Err(ClientError::BodyTooLarge(limit));
            }
            all.extend_from_slice(&piece);
        }
        Ok(all.freeze())
    }

    /// The body as text, decoded by the Content-Type's charset (UTF-8 by default;
    /// ISO-8859-1/Latin-1 understood; invalid sequences replaced).
    pub async fn text(&mut self) -> Result<String, ClientError> {
        let latin1 = is_latin1(self.headers());
        let bytes = self.bytes().await?;
        Ok(if latin1 {
            bytes.iter().map(|&b| b as char).collect()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    /// The body parsed as JSON, with the `json` feature.
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, ClientError> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(ClientError::Json)
    }

    /// The body has ended: the connection goes back to the pool.
    fn finish(&mut self) {
        self.done = true;
        self.timer.done();
        if let Some(lease) = self.lease.take() {
            lease.give_back();
        }
    }

    /// Reads and drops the rest of the body (so the connection can be reused).
    pub(super) async fn discard(&mut self) -> Result<(), ClientError> {
        while self.chunk().await?.is_some() {}
        Ok(())
    }
}

/// Whether the Content-Type names ISO-8859-1 (Latin-1) as the charset.
fn is_latin1(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("charset=")))
        .is_some_and(|c| {
            let c = c.trim_matches('"').to_ascii_lowercase();
            c == "iso-8859-1" || c == "latin1" || c == "latin-1"
        })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, Reply};
    use super::*;
    use crate::client::ClientConfig;
    use http::HeaderValue;

    const URL: &str = "http://example.test/";

    fn answering(config: ClientConfig, reply: &'static [u8]) -> (Client, testing::Server) {
        testing::client(config, move |_| Reply::Send(reply.to_vec()))
    }

    #[tokio::test]
    async fn a_whole_body_is_read_and_its_connection_reused() {
        let (client, server) = answering(
            ClientConfig::default(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world",
        );
        for _ in 0..3 {
            let mut response = client.get(URL).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), http::Version::HTTP_11);
            assert_eq!(response.headers()["content-length"], "11");
            assert_eq!(response.bytes().await.unwrap(), "hello world");
            assert_eq!(response.chunk().await.unwrap(), None, "stays ended");
        }
        assert_eq!(server.connections(), 1);
        let stats = client.pool_stats(URL).unwrap();
        assert_eq!((stats.idle, stats.in_use), (1, 0));
    }

    #[tokio::test]
    async fn a_chunked_body_comes_piece_by_piece() {
        let (client, _server) = answering(
            ClientConfig::default(),
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n",
        );
        let mut response = client.get(URL).send().await.unwrap();
        let mut pieces = Vec::new();
        while let Some(piece) = response.chunk().await.unwrap() {
            pieces.push(piece);
        }
        assert_eq!(pieces.concat(), b"onetwo");
        assert_eq!(client.pool_stats(URL).unwrap().idle, 1);
    }

    #[tokio::test]
    async fn a_body_that_ends_early_is_an_error_and_its_connection_is_closed() {
        let (client, _server) = testing::client(ClientConfig::default(), |_| {
            Reply::SendAndClose(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_vec())
        });
        let mut response = client.get(URL).send().await.unwrap();
        let result = response.bytes().await;
        assert!(result.is_err(), "{result:?}");
        drop(response);
        let stats = client.pool_stats(URL).unwrap();
        assert_eq!((stats.idle, stats.in_use), (0, 0));

        // A chunked body cut before its last chunk, likewise.
        let (client, _server) = testing::client(ClientConfig::default(), |_| {
            Reply::SendAndClose(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n".to_vec(),
            )
        });
        let mut response = client.get(URL).send().await.unwrap();
        assert!(response.text().await.is_err());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_body_too_large_and_never_reused() {
        let hello = |max_body_size| {
            let config = ClientConfig {
                max_body_size,
                ..ClientConfig::default()
            };
            answering(
                config,
                b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world",
            )
            .0
        };
        let client = hello(10);
        let mut response = client.get(URL).send().await.unwrap();
        let result = response.bytes().await;
        assert!(
            matches!(result, Err(ClientError::BodyTooLarge(10))),
            "{result:?}"
        );
        drop(response);
        let stats = client.pool_stats(URL).unwrap();
        assert_eq!((stats.idle, stats.in_use), (0, 0), "half-read: closed");
        // Exactly at the limit is fine.
        let mut response = hello(11).get(URL).send().await.unwrap();
        assert_eq!(response.bytes().await.unwrap(), "hello world");
    }

    #[tokio::test]
    async fn a_response_dropped_half_read_does_not_return_its_connection() {
        // The head and half the body; the rest never comes.
        let (client, server) = answering(
            ClientConfig::default(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello",
        );
        let mut response = client.get(URL).send().await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "hello");
        assert_eq!(client.pool_stats(URL).unwrap().in_use, 1);
        drop(response);
        let stats = client.pool_stats(URL).unwrap();
        assert_eq!(stats, Default::default(), "closed, not pooled: {stats:?}");
        server.wait_closed(1).await;
        // The next request opens a connection of its own.
        let _ = client.get(URL).send().await.unwrap();
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn a_bodiless_response_returns_its_connection_at_once() {
        let (client, _server) =
            answering(ClientConfig::default(), b"HTTP/1.1 204 No Content\r\n\r\n");
        let response = client.get(URL).send().await.unwrap();
        assert_eq!(response.status(), 204);
        let stats = client.pool_stats(URL).unwrap();
        assert_eq!((stats.idle, stats.in_use), (1, 0), "back before any read");
    }

    #[tokio::test]
    async fn text_decodes_utf8_and_latin1() {
        let (client, _server) = answering(
            ClientConfig::default(),
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=\"ISO-8859-1\"\r\ncontent-length: 4\r\n\r\ncaf\xe9",
        );
        let mut response = client.get(URL).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "café");
        let (client, _server) = answering(
            ClientConfig::default(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\ncaf\xc3\xa9\xff",
        );
        let mut response = client.get(URL).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "café\u{fffd}");
    }

    #[test]
    fn the_charset_is_read_from_the_content_type() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static(value));
            is_latin1(&headers)
        };
        assert!(with("text/html; charset=iso-8859-1"));
        assert!(with("text/html;charset=Latin1"));
        assert!(with("text/plain; format=flowed; charset=\"latin-1\""));
        assert!(!with("text/html; charset=utf-8"));
        assert!(!with("text/html"));
        assert!(!is_latin1(&HeaderMap::new()));
    }

    #[cfg(feature = "json")]
    #[tokio::test]
    async fn json_bodies_parse_or_fail_typed() {
        let (client, _server) = answering(
            ClientConfig::default(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n[1,2,3]",
        );
        let mut response = client.get(URL).send().await.unwrap();
        assert_eq!(response.json::<Vec<u8>>().await.unwrap(), [1, 2, 3]);
        let mut response = client.get(URL).send().await.unwrap();
        assert!(matches!(
            response.json::<String>().await,
            Err(ClientError::Json(_))
        ));
    }
}
