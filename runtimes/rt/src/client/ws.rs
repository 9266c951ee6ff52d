//! WebSocket connections ([`WsRequest`]): the opening handshake on a connection of its own
//! (never pooled), then the socket handed to the shared WebSocket pump.

use super::auth::{self, AuthTarget, Authenticator, Scoped};
use super::config::ClientError;
use super::io::{with_deadline, Conn};
use super::proxy::route::{self, Route};
use super::proxy::Proxy;
use super::request::{add_headers, challenge, parse_url, Fields, MAX_AUTH_RETRIES};
use super::Client;
use crate::runtime::{Rt, Runtime, Timer};
use crate::websocket::{self, WebSocket};
use http::header::HeaderName;
use http::{Method, StatusCode};
use std::sync::Arc;
use tether_core::h1::ClientEvent;
use tether_core::pool::Origin;
use tether_core::time::{ClientTimeouts, RequestTimer};
use tether_core::ws::{ClientHandshake, HandshakeError, WsConfig};

/// The schemes a WebSocket URL may use (`http`/`https` as the handshake's own request).
const WS_SCHEMES: &[&str] = &["ws", "wss", "http", "https"];

/// A WebSocket connection being set up ([`Client::ws`]). Nothing is checked or sent until
/// [`WsRequest::connect`], which reports the first mistake made while building.
pub struct WsRequest {
    client: Client,
    url: String,
    protocols: Vec<String>,
    headers: Fields,
    config: WsConfig,
    timeouts: ClientTimeouts,
    /// The proxy this connection goes through instead of the client's choice.
    proxy: Option<Proxy>,
    /// The authenticator the handshake uses instead of the client's.
    auth: Option<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for WsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsRequest")
            .field("url", &self.url)
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

impl WsRequest {
    pub(super) fn new(client: Client, url: &str) -> WsRequest {
        WsRequest {
            url: url.to_owned(),
            protocols: Vec::new(),
            headers: Fields::default(),
            config: client.shared.config.websocket.clone(),
            timeouts: client.shared.config.timeouts,
            proxy: None,
            auth: None,
            client,
        }
    }

    /// Authenticates the handshake with `auth` instead of the client's authenticator; a
    /// `401` challenge is answered by connecting once more, as a request is sent again.
    pub fn auth(mut self, auth: Arc<dyn Authenticator>) -> WsRequest {
        self.auth = Some(auth);
        self
    }

    /// Connects through `proxy` (any kind: a WebSocket always goes through a tunnel),
    /// whatever the client's [`ProxySettings`](super::ProxySettings) say.
    pub fn proxy(mut self, proxy: Proxy) -> WsRequest {
        self.proxy = Some(proxy);
        self
    }

    /// Offers a subprotocol (in order of preference).
    pub fn protocol(mut self, protocol: &str) -> WsRequest {
        self.protocols.push(protocol.to_owned());
        self
    }

    /// Adds a header to the upgrade request (`Origin`, `Authorization`, cookies...). The
    /// handshake's own fields (`Upgrade`, `Connection`, `Host`, `Sec-WebSocket-*`) are not
    /// replaced; a name or value that cannot be sent makes [`WsRequest::connect`] fail with
    /// [`ClientError::InvalidHeader`].
    pub fn header(mut self, name: &str, value: &str) -> WsRequest {
        self.headers.append(name, value);
        self
    }

    /// Settings of this connection (permessage-deflate offer, heartbeat, size limits,
    /// close timeout), instead of the client's `websocket` settings.
    pub fn config(mut self, config: WsConfig) -> WsRequest {
        self.config = config;
        self
    }

    /// Timeouts of the handshake (connect, `sock_read` for the 101, total), instead of the
    /// client's. They end with the handshake; the open socket has the heartbeat and idle
    /// timeout of its [`WsConfig`] instead.
    pub fn timeouts(mut self, timeouts: ClientTimeouts) -> WsRequest {
        self.timeouts = timeouts;
        self
    }

    /// Connects and completes the opening handshake. Returns the socket and the subprotocol
    /// the server chose.
    pub async fn connect(self) -> Result<(WebSocket, Option<String>), ClientError> {
        let headers = self.headers.checked()?;
        if self.client.is_closed() {
            return Err(ClientError::Closed);
        }
        let client = self.client;
        let shared = &client.shared;
        let (uri, origin) = parse_url(&self.url, WS_SCHEMES)?;
        // An `http://` URL is still a WebSocket: through an HTTP proxy it takes a tunnel, not
        // a forwarded request.
        let origin = match origin.scheme() {
            "http" => Origin::new("ws", origin.host(), origin.port()),
            _ => origin,
        };
        let route = Route::new(&shared.config.proxy, self.proxy.as_ref(), origin);
        let mut timer = RequestTimer::new(self.timeouts, client.now());
        let protocols: Vec<&str> = self.protocols.iter().map(String::as_str).collect();
        let auth = self
            .auth
            .or_else(|| shared.config.auth.clone())
            .map(|auth| Scoped::new(auth, &route.origin));
        let mut auth_retries = 0;
        loop {
            let (handshake, mut request) =
                ClientHandshake::new(&uri, random_key(&*shared.rt), &protocols, &self.config)?;
            add_headers(request.headers_mut(), shared, &headers, is_handshake_header)?;
            if let Some(auth) = &auth {
                let (method, target) = (Method::GET, AuthTarget::Origin);
                let fields = request.headers_mut();
                auth::authorize(&*auth.auth, &*shared.rt, &method, &uri, target, fields).await?;
            }
            timer.connecting(client.now());
            let stream = with_deadline(
                &*shared.rt,
                &mut Timer::default(),
                &mut timer,
                route::open(&*shared.rt, &*shared.connector, &route),
            )
            .await??;
            timer.connected();
            let mut conn = Conn::new(shared.rt.clone(), stream, false);
            conn.http.send_request(&request)?;
            conn.http.send_end(None)?;
            conn.flush(&mut timer).await?;
            timer.sent(client.now());
            let mut response = None;
            let refused = loop {
                match conn.next_event(&mut timer).await? {
                    ClientEvent::Response(head) => response = Some(head),
                    ClientEvent::Upgraded { trailing } => {
                        let Some(head) = response else {
                            return Err(ClientError::Closed);
                        };
                        let negotiated = handshake.validate(&head)?;
                        let core = tether_core::ws::WebSocket::client(
                            self.config,
                            negotiated.deflate,
                            client.now(),
                            mask_keys(shared.rt.clone()),
                        );
                        let socket = websocket::spawn_session(
                            &shared.rt,
                            conn.transport.into_inner(),
                            core,
                            trailing,
                            negotiated.protocol.as_deref(),
                        );
                        return Ok((socket, negotiated.protocol));
                    }
                    ClientEvent::End { .. } | ClientEvent::Closed => break response,
                    ClientEvent::Error(e) => return Err(e.into()),
                    _ => timer.read(client.now()),
                }
            };
            let status = refused
                .as_ref()
                .map_or(StatusCode::BAD_GATEWAY, |r| r.status());
            // A challenge answered by connecting again, as a request would be sent again.
            if let (Some(auth), Some(head), StatusCode::UNAUTHORIZED) = (&auth, &refused, status) {
                if auth_retries < MAX_AUTH_RETRIES
                    && challenge(
                        &*auth.auth,
                        AuthTarget::Origin,
                        &uri,
                        &request,
                        head.headers(),
                        auth_retries,
                    )
                    .await?
                {
                    conn.transport.shutdown().await;
                    timer.retrying(client.now());
                    auth_retries += 1;
                    continue;
                }
            }
            return Err(HandshakeError::NotSwitching(status).into());
        }
    }
}

/// Headers the WebSocket handshake sets itself.
fn is_handshake_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("sec-websocket-")
        || name == "upgrade"
        || name == "connection"
        || name == "host"
}

/// A `Sec-WebSocket-Key`'s 16 bytes, from the runtime's randomness (the core has none).
fn random_key(rt: &dyn Runtime) -> [u8; 16] {
    let mut key = [0u8; 16];
    rt.fill_random(&mut key);
    key
}

/// Masking keys from the runtime's randomness (RFC 6455 §5.3), drawn 16 at a time.
fn mask_keys(rt: Rt) -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut pool = [0u8; 64];
    let mut next = pool.len();
    move || {
        if next == pool.len() {
            rt.fill_random(&mut pool);
            next = 0;
        }
        let key = [pool[next], pool[next + 1], pool[next + 2], pool[next + 3]];
        next += 4;
        key
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::HeaderError;
    use super::super::testing::{self, Reply};
    use super::*;
    use crate::client::ClientConfig;
    use std::collections::HashSet;

    const URL: &str = "ws://example.test/ws";

    /// Answers a WebSocket handshake as a server would, choosing `echo` if offered.
    fn upgrade(request: &str) -> Reply {
        let key = request
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("a key");
        let accept = tether_core::ws::handshake::accept_key(key.as_bytes());
        let protocol = if request.to_ascii_lowercase().contains("echo") {
            "sec-websocket-protocol: echo\r\n"
        } else {
            ""
        };
        Reply::Send(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                 sec-websocket-accept: {accept}\r\n{protocol}\r\n"
            )
            .into_bytes(),
        )
    }

    #[tokio::test]
    async fn the_handshake_sends_the_applications_fields_but_keeps_its_own() {
        let (client, server) = testing::client(ClientConfig::default(), upgrade);
        let (socket, protocol) = client
            .ws(URL)
            .protocol("chat")
            .protocol("echo")
            .header("origin", "http://example.test")
            .header("upgrade", "h2c")
            .header("sec-websocket-key", "forged")
            .connect()
            .await
            .unwrap();
        assert_eq!(protocol.as_deref(), Some("echo"));
        let request = server.requests()[0].to_ascii_lowercase();
        assert!(request.starts_with("get /ws http/1.1\r\n"), "{request}");
        assert!(request.contains("\r\norigin: http://example.test\r\n"));
        assert!(request.contains("\r\nupgrade: websocket\r\n"));
        assert!(!request.contains("h2c") && !request.contains("forged"));
        assert!(request.contains("\r\nsec-websocket-protocol: chat, echo\r\n"));
        assert!(request.contains("\r\nuser-agent: tether/"));
        drop(socket);
    }

    #[tokio::test]
    async fn a_refused_upgrade_is_a_handshake_error() {
        let (client, _server) = testing::client(ClientConfig::default(), |_| {
            Reply::Send(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec())
        });
        let result = client.ws_connect(URL, &[]).await;
        assert!(
            matches!(
                result,
                Err(ClientError::WebSocket(HandshakeError::NotSwitching(s))) if s == 404
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn an_invalid_header_or_url_fails_before_connecting() {
        let (client, server) = testing::client(ClientConfig::default(), upgrade);
        let result = client.ws(URL).header("origin", "a\0b").connect().await;
        assert!(
            matches!(
                &result,
                Err(ClientError::InvalidHeader { name, source: HeaderError::Value(_) })
                    if name == "origin"
            ),
            "{result:?}"
        );
        let result = client.ws("ftp://example.test/").connect().await;
        assert!(
            matches!(result, Err(ClientError::InvalidUrl { .. })),
            "{result:?}"
        );
        assert_eq!(server.connections(), 0);
        client.close().await;
        let result = client.ws_connect(URL, &[]).await;
        assert!(matches!(result, Err(ClientError::Closed)), "{result:?}");
    }

    #[test]
    fn the_handshakes_own_fields_are_reserved() {
        for name in [
            "sec-websocket-key",
            "sec-websocket-extensions",
            "upgrade",
            "connection",
            "host",
        ] {
            assert!(
                is_handshake_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in ["origin", "authorization", "cookie", "user-agent"] {
            assert!(
                !is_handshake_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn keys_and_masks_do_not_repeat() {
        let rt = crate::runtime::test_support::rt();
        let keys: HashSet<[u8; 16]> = (0..100).map(|_| random_key(&*rt)).collect();
        assert_eq!(keys.len(), 100);
        let mut masks = mask_keys(rt);
        let masks: HashSet<[u8; 4]> = (0..100).map(|_| masks()).collect();
        assert!(masks.len() > 90, "{}", masks.len());
    }

    #[tokio::test]
    async fn a_digest_challenge_to_the_handshake_is_answered_on_a_new_connection() {
        use crate::client::{Authenticator, DigestAuth};
        let auth: std::sync::Arc<dyn Authenticator> =
            std::sync::Arc::new(DigestAuth::new("u", "p"));
        let (client, server) = testing::client(ClientConfig::default(), |request| {
            if request
                .to_ascii_lowercase()
                .contains("\r\nauthorization: digest ")
            {
                upgrade(request)
            } else {
                Reply::SendAndClose(
                    b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Digest realm=\"r\", \
                      nonce=\"n\", qop=\"auth\"\r\ncontent-length: 0\r\n\r\n"
                        .to_vec(),
                )
            }
        });
        let (socket, _) = client.ws(URL).auth(auth).connect().await.unwrap();
        drop(socket);
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert!(requests[1].contains("uri=\"/ws\""), "{}", requests[1]);
        assert_eq!(server.connections(), 2, "a new connection for the answer");
    }
}
