//! The SOCKS5 client handshake (RFC 1928) with optional username/password authentication
//! (RFC 1929), for the `CONNECT` command: method selection, authentication, the request,
//! the reply. One message at a time: each is sent when the answer to the one before is in.

use super::{MalformedReason, Progress, ProxyError, ProxyEvent, Socks5Reply};
use crate::time::Instant;
use bytes::{BufMut, Bytes, BytesMut};
use std::net::{IpAddr, SocketAddr};

const VERSION: u8 = 5;
const AUTH_VERSION: u8 = 1;
const NO_AUTH: u8 = 0x00;
const USER_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// Where the tunnel should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socks5Target {
    /// An address resolved by the client (`socks5://`).
    Ip(SocketAddr),
    /// A host name the proxy resolves (`socks5h://`), at most 255 bytes, and a port.
    Domain(String, u16),
}

/// A username and a password for RFC 1929 authentication, each 1 to 255 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Socks5Credentials {
    username: Vec<u8>,
    password: Vec<u8>,
}

impl std::fmt::Debug for Socks5Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5Credentials")
            .field("username", &String::from_utf8_lossy(&self.username))
            .finish_non_exhaustive()
    }
}

impl Socks5Credentials {
    /// Checks the lengths RFC 1929 allows.
    pub fn new(
        username: impl Into<Vec<u8>>,
        password: impl Into<Vec<u8>>,
    ) -> Result<Socks5Credentials, ProxyError> {
        let (username, password) = (username.into(), password.into());
        let fits = |field: &[u8]| (1..=255).contains(&field.len());
        if fits(&username) && fits(&password) {
            Ok(Socks5Credentials { username, password })
        } else {
            Err(ProxyError::InvalidCredentials)
        }
    }
}

/// Which answer the handshake waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Method,
    Auth,
    Reply,
}

/// The client's side of a SOCKS5 handshake.
#[derive(Debug)]
pub struct Socks5Handshake {
    progress: Progress,
    stage: Stage,
    credentials: Option<Socks5Credentials>,
    request: Bytes,
    /// Bytes of earlier answers already taken from the inbox (for error offsets).
    consumed: usize,
}

impl Socks5Handshake {
    /// A handshake asking for a tunnel to `target`, offering username/password
    /// authentication if `credentials` are given (and no authentication either way),
    /// failing with [`ProxyError::TimedOut`] at `deadline`.
    pub fn new(
        target: &Socks5Target,
        credentials: Option<Socks5Credentials>,
        deadline: Option<Instant>,
    ) -> Socks5Handshake {
        let mut progress = Progress {
            deadline,
            ..Progress::default()
        };
        let request = match connect_request(target) {
            Some(request) => request,
            None => {
                progress.fail(ProxyError::InvalidTarget);
                Bytes::new()
            }
        };
        if !progress.is_done() {
            progress.send(if credentials.is_some() {
                &[VERSION, 2, NO_AUTH, USER_PASSWORD]
            } else {
                &[VERSION, 1, NO_AUTH]
            });
        }
        Socks5Handshake {
            progress,
            stage: Stage::Method,
            credentials,
            request,
            consumed: 0,
        }
    }

    /// The next message to write.
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Bytes> {
        self.progress.poll_transmit()
    }

    /// Bytes received from the proxy.
    pub fn handle_input(&mut self, _now: Instant, data: &[u8]) {
        if self.progress.is_done() {
            return;
        }
        self.progress.inbox.extend_from_slice(data);
        while !self.progress.is_done() && self.step() {}
    }

    /// The proxy closed its side.
    pub fn handle_eof(&mut self) {
        self.progress.fail(ProxyError::Closed);
    }

    /// The deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.progress.handle_timeout(now);
    }

    /// The handshake's deadline while it runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.progress.poll_timeout()
    }

    /// The outcome, once.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.progress.poll_event()
    }

    /// Takes the answer the stage waits for if it is complete; whether it did.
    fn step(&mut self) -> bool {
        let inbox = &self.progress.inbox;
        match self.stage {
            Stage::Method => {
                let [version, method, ..] = inbox[..] else {
                    return false;
                };
                if version != VERSION {
                    return self.malformed(MalformedReason::WrongVersion, 0);
                }
                match method {
                    NO_AUTH => {
                        self.take(2);
                        self.stage = Stage::Reply;
                        self.progress.send(&self.request);
                    }
                    USER_PASSWORD if self.credentials.is_some() => {
                        self.take(2);
                        self.stage = Stage::Auth;
                        if let Some(credentials) = &self.credentials {
                            let auth = auth_request(credentials);
                            self.progress.send(&auth);
                        }
                    }
                    NO_ACCEPTABLE => self.progress.fail(ProxyError::NoAcceptableMethod),
                    _ => return self.malformed(MalformedReason::UnofferedMethod, 1),
                }
                true
            }
            Stage::Auth => {
                let [version, status, ..] = inbox[..] else {
                    return false;
                };
                if version != AUTH_VERSION {
                    return self.malformed(MalformedReason::WrongVersion, 0);
                }
                if status != 0 {
                    self.progress
                        .fail(ProxyError::AuthenticationFailed { status });
                    return true;
                }
                self.take(2);
                self.stage = Stage::Reply;
                self.progress.send(&self.request);
                true
            }
            Stage::Reply => {
                let [version, code, reserved, address_type, ..] = inbox[..] else {
                    return false;
                };
                if version != VERSION {
                    return self.malformed(MalformedReason::WrongVersion, 0);
                }
                if let Some(failure) = Socks5Reply::from_code(code) {
                    self.progress.fail(ProxyError::Socks5(failure));
                    return true;
                }
                if reserved != 0 {
                    return self.malformed(MalformedReason::InvalidReply, 2);
                }
                let address = match address_type {
                    ATYP_IPV4 => 4,
                    ATYP_IPV6 => 16,
                    ATYP_DOMAIN => match inbox.get(4) {
                        Some(&length) => 1 + usize::from(length),
                        None => return false,
                    },
                    _ => return self.malformed(MalformedReason::InvalidReply, 3),
                };
                let length = 4 + address + 2;
                if inbox.len() < length {
                    return false;
                }
                self.progress.establish(length);
                true
            }
        }
    }

    fn take(&mut self, n: usize) {
        let _ = self.progress.inbox.split_to(n);
        self.consumed += n;
    }

    /// Fails the handshake; `true` (the answer was taken, as a failure).
    fn malformed(&mut self, reason: MalformedReason, at: usize) -> bool {
        let offset = self.consumed + at;
        self.progress.fail(ProxyError::Malformed { reason, offset });
        true
    }
}

/// `VER CMD RSV ATYP DST.ADDR DST.PORT`; `None` for a domain the protocol cannot carry.
fn connect_request(target: &Socks5Target) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(262);
    out.put_slice(&[VERSION, CMD_CONNECT, 0]);
    let port = match target {
        Socks5Target::Ip(address) => {
            match address.ip() {
                IpAddr::V4(ip) => {
                    out.put_u8(ATYP_IPV4);
                    out.put_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    out.put_u8(ATYP_IPV6);
                    out.put_slice(&ip.octets());
                }
            }
            address.port()
        }
        Socks5Target::Domain(name, port) => {
            let length = u8::try_from(name.len()).ok().filter(|&n| n > 0)?;
            out.put_u8(ATYP_DOMAIN);
            out.put_u8(length);
            out.put_slice(name.as_bytes());
            *port
        }
    };
    out.put_u16(port);
    Some(out.freeze())
}

/// `VER ULEN UNAME PLEN PASSWD` (RFC 1929 §2).
fn auth_request(credentials: &Socks5Credentials) -> Bytes {
    let mut out =
        BytesMut::with_capacity(3 + credentials.username.len() + credentials.password.len());
    out.put_u8(AUTH_VERSION);
    // Lengths checked by `Socks5Credentials::new`.
    out.put_u8(credentials.username.len() as u8);
    out.put_slice(&credentials.username);
    out.put_u8(credentials.password.len() as u8);
    out.put_slice(&credentials.password);
    out.freeze()
}
