//! HTTP client authentication, sans-IO: reading the challenges of `WWW-Authenticate` and
//! `Proxy-Authenticate` (RFC 9110 §11), and computing the credentials that answer them: Basic
//! (RFC 7617) and Digest (RFC 7616).
//!
//! The client's authenticators in the runtime layer use this module: they see a `401` or
//! `407`, parse its challenges with [`parse_challenges`], pick a scheme, and send the request
//! again with the value [`basic_credentials`] or [`DigestChallenge::respond`] gives. Nothing
//! here does IO, keeps time or draws random numbers: the Digest client nonce and nonce count
//! are the caller's. Every size the peer controls is bounded ([`MAX_CHALLENGES`],
//! [`MAX_PARAMS`]; the field value itself by the HTTP head limit), and no input panics.

mod basic;
mod challenge;
mod digest;
mod error;

pub use basic::basic_credentials;
pub use challenge::{parse_challenges, Challenge, MAX_CHALLENGES, MAX_PARAMS};
pub use digest::{DigestAlgorithm, DigestChallenge, DigestInput};
pub use error::{ChallengeError, DigestError};

#[cfg(test)]
mod tests;
