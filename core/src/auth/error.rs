//! What can go wrong reading an authentication challenge ([`ChallengeError`]: the field value
//! breaks the grammar or a limit, or a built challenge could not be sent) and turning one into
//! Digest credentials ([`DigestError`]: a challenge we cannot answer).

use super::challenge::{MAX_CHALLENGES, MAX_PARAMS};

/// Why a `WWW-Authenticate` / `Proxy-Authenticate` value was refused, or why
/// [`Challenge::new`](super::Challenge::new) refused its arguments. Offsets are byte offsets
/// into the field value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// A byte that the grammar does not allow where it stands.
    #[error("invalid character at byte {offset}")]
    InvalidCharacter {
        /// Where the byte is.
        offset: usize,
    },
    /// A quoted string has no closing `"`.
    #[error("unterminated quoted string starting at byte {offset}")]
    UnterminatedQuotedString {
        /// Where the opening `"` is.
        offset: usize,
    },
    /// A parameter's `=` is not followed by a token or a quoted string.
    #[error("the parameter at byte {offset} has no value")]
    MissingValue {
        /// Where the parameter's name starts.
        offset: usize,
    },
    /// A parameter comes before any auth-scheme.
    #[error("the parameter at byte {offset} has no auth-scheme before it")]
    ParamWithoutScheme {
        /// Where the parameter's name starts.
        offset: usize,
    },
    /// A parameter follows a challenge that carries a token68 (which excludes parameters).
    #[error("the parameter at byte {offset} follows a token68")]
    ParamAfterToken68 {
        /// Where the parameter's name starts.
        offset: usize,
    },
    /// A parameter name occurs twice in one challenge (RFC 9110 §11.2: each name MUST occur
    /// only once; names compare case-insensitively).
    #[error("parameter {name:?} occurs twice in one challenge")]
    DuplicateParam {
        /// The second occurrence's name, as sent.
        name: String,
    },
    /// A parameter value is not UTF-8 (bytes above 0x7F in a quoted string are read as UTF-8).
    #[error("the value at byte {offset} is not UTF-8")]
    NotUtf8 {
        /// Where the value starts.
        offset: usize,
    },
    /// More challenges than [`MAX_CHALLENGES`](super::MAX_CHALLENGES) in one field value.
    #[error("more than {MAX_CHALLENGES} challenges")]
    TooManyChallenges,
    /// More parameters than [`MAX_PARAMS`](super::MAX_PARAMS) in one challenge.
    #[error("more than {MAX_PARAMS} parameters in one challenge")]
    TooManyParams,
    /// [`Challenge::new`](super::Challenge::new): the scheme is not a token.
    #[error("the auth-scheme is not a token")]
    InvalidScheme,
    /// [`Challenge::new`](super::Challenge::new): a parameter name is not a token.
    #[error("the parameter name {name:?} is not a token")]
    InvalidParamName {
        /// The name given.
        name: String,
    },
    /// [`Challenge::new`](super::Challenge::new): a parameter value holds a control
    /// character, which no quoted string can carry.
    #[error("the value of parameter {name:?} holds a control character")]
    InvalidParamValue {
        /// The parameter's name.
        name: String,
    },
    /// [`Challenge::with_token68`](super::Challenge::with_token68): not a token68.
    #[error("not a token68")]
    InvalidToken68,
}

/// Why a challenge cannot be answered with Digest credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The challenge's scheme is not `Digest`.
    #[error("not a Digest challenge")]
    NotDigest,
    /// A required parameter (`realm`, `nonce`) is absent.
    #[error("the Digest challenge has no {0}")]
    MissingParameter(&'static str),
    /// The `algorithm` is one we do not implement (e.g. `SHA-512-256`), as sent.
    #[error("unsupported Digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// A `qop` is offered, but not `auth` (e.g. only `auth-int`).
    #[error("the Digest challenge offers no qop=auth")]
    UnsupportedQop,
}
