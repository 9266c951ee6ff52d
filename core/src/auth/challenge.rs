//! Authentication challenges (RFC 9110 §11.2, §11.6.1): the [`Challenge`] type, the parser of
//! `WWW-Authenticate` / `Proxy-Authenticate` field values ([`parse_challenges`]) and the
//! encoder ([`Challenge::to_header_value`]).
//!
//! ```text
//! challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param = token BWS "=" BWS ( token / quoted-string )
//! token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! A field value is a comma-separated list of challenges, and the comma also separates one
//! challenge's parameters: an element that is a token followed by `=` is a parameter of the
//! challenge before it, any other element starts a new challenge. Empty elements (`, ,`) are
//! skipped. The space after the scheme may also be a tab (leniency); parameter values must be
//! tokens or quoted strings, and their bytes above 0x7F are read as UTF-8.

use super::ChallengeError;
use crate::syntax::{is_tchar, is_token};
use std::fmt;

/// The most challenges accepted in one field value.
pub const MAX_CHALLENGES: usize = 16;

/// The most parameters accepted in one challenge.
pub const MAX_PARAMS: usize = 32;

/// One authentication challenge: a scheme with either a token68 or named parameters (or
/// neither). Built by [`parse_challenges`] or [`Challenge::new`] / [`Challenge::with_token68`],
/// which keep the same rules, so [`Challenge::to_header_value`] always parses back to an equal
/// challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    /// Names and unquoted values, in the order sent; names are unique case-insensitively.
    params: Vec<(String, String)>,
}

impl Challenge {
    /// A challenge with parameters (names are tokens, unique case-insensitively; values are
    /// any text without control characters other than tab), for servers and tests.
    pub fn new<N, V>(
        scheme: &str,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Challenge, ChallengeError>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut challenge = Challenge::bare(scheme)?;
        for (name, value) in params {
            let (name, value) = (name.into(), value.into());
            if !is_token(name.as_bytes()) {
                return Err(ChallengeError::InvalidParamName { name });
            }
            if !value.bytes().all(is_quotable) {
                return Err(ChallengeError::InvalidParamValue { name });
            }
            challenge.add_param(name, value)?;
        }
        Ok(challenge)
    }

    /// A challenge carrying a token68 (e.g. base64 data) instead of parameters.
    pub fn with_token68(scheme: &str, token68: &str) -> Result<Challenge, ChallengeError> {
        if !is_token68(token68.as_bytes()) {
            return Err(ChallengeError::InvalidToken68);
        }
        let mut challenge = Challenge::bare(scheme)?;
        challenge.token68 = Some(token68.to_owned());
        Ok(challenge)
    }

    fn bare(scheme: &str) -> Result<Challenge, ChallengeError> {
        if !is_token(scheme.as_bytes()) {
            return Err(ChallengeError::InvalidScheme);
        }
        Ok(Challenge {
            scheme: scheme.to_owned(),
            token68: None,
            params: Vec::new(),
        })
    }

    /// Adds a parameter, refusing a repeated name and more than [`MAX_PARAMS`].
    fn add_param(&mut self, name: String, value: String) -> Result<(), ChallengeError> {
        if self.param(&name).is_some() {
            return Err(ChallengeError::DuplicateParam { name });
        }
        if self.params.len() >= MAX_PARAMS {
            return Err(ChallengeError::TooManyParams);
        }
        self.params.push((name, value));
        Ok(())
    }

    /// The auth-scheme as sent (`Basic`, `digest`...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `name`, compared case-insensitively as RFC 9110 §11.1 requires.
    pub fn is_scheme(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }

    /// The value of the parameter `name` (compared case-insensitively), unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The parameters, `(name as sent, unquoted value)`, in the order sent.
    pub fn params(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The token68, for schemes that send one instead of parameters.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The challenge as a field value: values that are tokens go bare, others quoted with `"`
    /// and `\` escaped.
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(token68) = &self.token68 {
            write!(f, " {token68}")?;
        }
        for (index, (name, value)) in self.params.iter().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            write!(f, "{separator}{name}=")?;
            if is_token(value.as_bytes()) {
                f.write_str(value)?;
            } else {
                let mut quoted = String::with_capacity(value.len() + 2);
                push_quoted(&mut quoted, value);
                f.write_str(&quoted)?;
            }
        }
        Ok(())
    }
}

/// Parses a `WWW-Authenticate` / `Proxy-Authenticate` field value into its challenges, in
/// order. A value with only empty elements gives no challenges. Several field lines are
/// parsed one by one (or joined with `, `) and their challenges concatenated.
pub fn parse_challenges(value: &[u8]) -> Result<Vec<Challenge>, ChallengeError> {
    let mut cursor = Cursor {
        bytes: value,
        pos: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        cursor.skip_empty_elements();
        if cursor.peek().is_none() {
            return Ok(challenges);
        }
        if cursor.param_ahead() {
            let offset = cursor.pos;
            let current = challenges
                .last_mut()
                .ok_or(ChallengeError::ParamWithoutScheme { offset })?;
            if current.token68.is_some() {
                return Err(ChallengeError::ParamAfterToken68 { offset });
            }
            let (name, value) = cursor.param()?;
            current.add_param(name, value)?;
        } else {
            if challenges.len() >= MAX_CHALLENGES {
                return Err(ChallengeError::TooManyChallenges);
            }
            challenges.push(cursor.challenge_head()?);
        }
        cursor.skip_whitespace();
        if cursor.peek().is_some_and(|b| b != b',') {
            return Err(ChallengeError::InvalidCharacter { offset: cursor.pos });
        }
    }
}

/// Appends `value` as a quoted string, `"` and `\` escaped as quoted-pairs.
pub(super) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// A byte a quoted string can carry (qdtext or the second byte of a quoted-pair): tab, space,
/// visible ASCII, obs-text.
fn is_quotable(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn is_token68(bytes: &[u8]) -> bool {
    let chars = bytes.iter().take_while(|&&b| is_token68_char(b)).count();
    let padding = bytes.get(chars..).unwrap_or_default();
    chars > 0 && padding.iter().all(|&b| b == b'=')
}

fn is_whitespace(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A position in the field value being parsed.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, pos: usize) -> Option<u8> {
        self.bytes.get(pos).copied()
    }

    /// The end of the run of bytes matching `accept` that starts at `pos`.
    fn run_end(&self, pos: usize, accept: impl Fn(u8) -> bool) -> usize {
        let tail = self.bytes.get(pos..).unwrap_or_default();
        pos + tail.iter().take_while(|&&b| accept(b)).count()
    }

    /// Skips OWS/BWS; how many bytes were skipped.
    fn skip_whitespace(&mut self) -> usize {
        let start = self.pos;
        self.pos = self.run_end(start, is_whitespace);
        self.pos - start
    }

    /// Skips whitespace and the commas of empty list elements.
    fn skip_empty_elements(&mut self) {
        self.pos = self.run_end(self.pos, |b| is_whitespace(b) || b == b',');
    }

    /// Whether an auth-param starts here: a token, BWS, then `=`.
    fn param_ahead(&self) -> bool {
        let name_end = self.run_end(self.pos, is_tchar);
        name_end > self.pos && self.peek_at(self.run_end(name_end, is_whitespace)) == Some(b'=')
    }

    fn token(&mut self) -> Result<String, ChallengeError> {
        let start = self.pos;
        let end = self.run_end(start, is_tchar);
        if end == start {
            return Err(ChallengeError::InvalidCharacter { offset: start });
        }
        self.pos = end;
        let bytes = self.bytes.get(start..end).unwrap_or_default();
        // tchar are ASCII: one char per byte.
        Ok(bytes.iter().map(|&b| char::from(b)).collect())
    }

    /// A token68 here, if it is the whole element (followed by OWS then a comma or the end).
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        let chars_end = self.run_end(start, is_token68_char);
        if chars_end == start {
            return None;
        }
        let end = self.run_end(chars_end, |b| b == b'=');
        let after = self.run_end(end, is_whitespace);
        if self.peek_at(after).is_some_and(|b| b != b',') {
            return None;
        }
        self.pos = end;
        let bytes = self.bytes.get(start..end).unwrap_or_default();
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    }

    /// The scheme and, after whitespace, a token68 or the first parameter.
    fn challenge_head(&mut self) -> Result<Challenge, ChallengeError> {
        let mut challenge = Challenge {
            scheme: self.token()?,
            token68: None,
            params: Vec::new(),
        };
        if self.skip_whitespace() == 0 || self.peek().is_none_or(|b| b == b',') {
            // What follows, if anything, is checked by the caller.
            return Ok(challenge);
        }
        if let Some(token68) = self.token68() {
            challenge.token68 = Some(token68);
        } else {
            let (name, value) = self.param()?;
            challenge.add_param(name, value)?;
        }
        Ok(challenge)
    }

    /// `token BWS "=" BWS ( token / quoted-string )`.
    fn param(&mut self) -> Result<(String, String), ChallengeError> {
        let start = self.pos;
        let name = self.token()?;
        self.skip_whitespace();
        if self.peek() != Some(b'=') {
            return Err(ChallengeError::InvalidCharacter { offset: self.pos });
        }
        self.pos += 1;
        self.skip_whitespace();
        let value = match self.peek() {
            Some(b'"') => self.quoted_string()?,
            Some(b) if is_tchar(b) => self.token()?,
            None | Some(b',') => return Err(ChallengeError::MissingValue { offset: start }),
            Some(_) => return Err(ChallengeError::InvalidCharacter { offset: self.pos }),
        };
        Ok((name, value))
    }

    /// A quoted string starting here, unquoted.
    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let open = self.pos;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ChallengeError::UnterminatedQuotedString { offset: open }),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => match self.peek_at(self.pos + 1) {
                    None => return Err(ChallengeError::UnterminatedQuotedString { offset: open }),
                    Some(b) if is_quotable(b) => {
                        value.push(b);
                        self.pos += 2;
                    }
                    Some(_) => {
                        return Err(ChallengeError::InvalidCharacter {
                            offset: self.pos + 1,
                        })
                    }
                },
                Some(b) if is_quotable(b) => {
                    value.push(b);
                    self.pos += 1;
                }
                Some(_) => return Err(ChallengeError::InvalidCharacter { offset: self.pos }),
            }
        }
        String::from_utf8(value).map_err(|_| ChallengeError::NotUtf8 { offset: open })
    }
}
