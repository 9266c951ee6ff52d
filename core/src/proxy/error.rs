//! What can go wrong in a proxy handshake, by blame: the proxy's answer ([`ProxyError::Refused`],
//! [`ProxyError::Socks5`], [`ProxyError::AuthenticationFailed`]), the proxy breaking the
//! protocol, the connection, the deadline, or our own arguments.

use http::{HeaderMap, StatusCode};

/// Why a proxy handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The HTTP proxy answered `CONNECT` with a status other than 2xx (`407`: credentials
    /// needed or wrong; `403`, `502`...). Its header fields are kept (`Proxy-Authenticate`
    /// says which authentication it wants).
    #[error("the proxy refused the tunnel: {status}")]
    Refused {
        /// The proxy's status.
        status: StatusCode,
        /// The proxy's header fields.
        headers: Box<HeaderMap>,
    },
    /// The SOCKS5 proxy answered the connection request with a failure code.
    #[error("the SOCKS5 proxy refused: {0}")]
    Socks5(Socks5Reply),
    /// The SOCKS5 proxy accepts none of the authentication methods offered (with
    /// credentials: username/password and none; without: none).
    #[error("the SOCKS5 proxy accepts none of the offered authentication methods")]
    NoAcceptableMethod,
    /// The SOCKS5 proxy rejected the username and password (RFC 1929 status, non-zero).
    #[error("the SOCKS5 proxy rejected the credentials (status {status})")]
    AuthenticationFailed {
        /// The proxy's status byte.
        status: u8,
    },
    /// The proxy's answer breaks its protocol (what is wrong, and where in the bytes the
    /// proxy sent).
    #[error("malformed proxy answer at byte {offset}: {reason}")]
    Malformed {
        /// What is wrong.
        reason: MalformedReason,
        /// Offset in the bytes received from the proxy.
        offset: usize,
    },
    /// The proxy closed the connection before the handshake ended.
    #[error("the proxy closed the connection during the handshake")]
    Closed,
    /// The handshake's deadline passed.
    #[error("the proxy handshake timed out")]
    TimedOut,
    /// The target cannot be sent to the proxy (a host name longer than 255 bytes for SOCKS5,
    /// a host that is not a valid authority for `CONNECT`).
    #[error("the target cannot be sent to the proxy")]
    InvalidTarget,
    /// A SOCKS5 username or password is empty or longer than 255 bytes (RFC 1929).
    #[error("a SOCKS5 username and password must be 1 to 255 bytes each")]
    InvalidCredentials,
}

/// How a proxy's answer breaks its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReason {
    /// Not an HTTP/1.x status line and header fields.
    #[error("not an HTTP/1.x response")]
    InvalidHttp,
    /// The HTTP response head is longer than the limit.
    #[error("response head too large")]
    HeadTooLarge,
    /// A SOCKS version byte other than 5 (1 in the RFC 1929 exchange).
    #[error("wrong SOCKS version")]
    WrongVersion,
    /// The proxy chose an authentication method that was not offered.
    #[error("an authentication method that was not offered")]
    UnofferedMethod,
    /// A reserved byte that is not zero, or an unknown address type.
    #[error("invalid reply field")]
    InvalidReply,
}

/// A SOCKS5 reply code other than success (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Reply {
    /// `0x01` general SOCKS server failure.
    #[error("general SOCKS server failure")]
    GeneralFailure,
    /// `0x02` connection not allowed by ruleset.
    #[error("connection not allowed by ruleset")]
    NotAllowed,
    /// `0x03` network unreachable.
    #[error("network unreachable")]
    NetworkUnreachable,
    /// `0x04` host unreachable.
    #[error("host unreachable")]
    HostUnreachable,
    /// `0x05` connection refused.
    #[error("connection refused")]
    ConnectionRefused,
    /// `0x06` TTL expired.
    #[error("TTL expired")]
    TtlExpired,
    /// `0x07` command not supported.
    #[error("command not supported")]
    CommandNotSupported,
    /// `0x08` address type not supported.
    #[error("address type not supported")]
    AddressTypeNotSupported,
    /// A code RFC 1928 does not assign.
    #[error("unassigned reply code {0:#04x}")]
    Other(u8),
}

impl Socks5Reply {
    /// The failure a reply code names; `None` for `0x00` (succeeded).
    pub fn from_code(code: u8) -> Option<Socks5Reply> {
        Some(match code {
            0x00 => return None,
            0x01 => Socks5Reply::GeneralFailure,
            0x02 => Socks5Reply::NotAllowed,
            0x03 => Socks5Reply::NetworkUnreachable,
            0x04 => Socks5Reply::HostUnreachable,
            0x05 => Socks5Reply::ConnectionRefused,
            0x06 => Socks5Reply::TtlExpired,
            0x07 => Socks5Reply::CommandNotSupported,
            0x08 => Socks5Reply::AddressTypeNotSupported,
            other => Socks5Reply::Other(other),
        })
    }

    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Socks5Reply::GeneralFailure => 0x01,
            Socks5Reply::NotAllowed => 0x02,
            Socks5Reply::NetworkUnreachable => 0x03,
            Socks5Reply::HostUnreachable => 0x04,
            Socks5Reply::ConnectionRefused => 0x05,
            Socks5Reply::TtlExpired => 0x06,
            Socks5Reply::CommandNotSupported => 0x07,
            Socks5Reply::AddressTypeNotSupported => 0x08,
            Socks5Reply::Other(code) => code,
        }
    }
}
