//! Incremental UTF-8 validation: text is checked as its bytes arrive, so invalid text fails
//! at the first bad byte even in the middle of a fragmented or trickling message.

/// Validates a text message piece by piece.
#[derive(Debug, Default, Clone)]
pub(crate) struct Utf8Validator {
    /// The start of a character cut off at the end of the last piece.
    partial: [u8; 4],
    partial_len: usize,
}

/// Bytes a character starting with `lead` takes (0 for a byte no character starts with).
fn char_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// Checks the next piece. `Err(at)`: the first invalid character starts at `at`, counted
    /// from the start of this piece; negative when it began in an earlier piece. The same
    /// text split differently always fails at the same character.
    pub(crate) fn push(&mut self, mut data: &[u8]) -> Result<(), i64> {
        let mut consumed = 0usize;
        if self.partial_len > 0 {
            let carried = self.partial_len as i64;
            let need = char_width(self.partial[0]);
            while self.partial_len < need && !data.is_empty() {
                self.partial[self.partial_len] = data[0];
                self.partial_len += 1;
                data = &data[1..];
                consumed += 1;
            }
            match std::str::from_utf8(&self.partial[..self.partial_len]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_some() => return Err(-carried),
                Err(_) => return Ok(()), // still incomplete, and `data` is used up
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err((consumed + e.valid_up_to()) as i64),
            Err(e) => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
        }
    }

    /// Whether the text ends on a character boundary.
    pub(crate) fn is_complete(&self) -> bool {
        self.partial_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(pieces: &[&[u8]]) -> bool {
        let mut v = Utf8Validator::default();
        pieces.iter().all(|p| v.push(p).is_ok()) && v.is_complete()
    }

    #[test]
    fn split_characters() {
        let euro = "€".as_bytes();
        assert!(check(&[&euro[..1], &euro[1..2], &euro[2..]]));
        assert!(check(&[b"a", &euro[..2], &euro[2..], b"b"]));
        assert!(!check(&[&euro[..2]]), "cut short at the end");
    }

    #[test]
    fn fails_fast() {
        let mut v = Utf8Validator::default();
        // 0xF4 0x90 starts a code point above U+10FFFF: invalid at once, not at the end.
        assert!(v.push(&[0xF4]).is_ok());
        assert!(v.push(&[0x90]).is_err());
        let mut v = Utf8Validator::default();
        assert_eq!(v.push(b"ok\xC0\x80"), Err(2), "overlong");
        let mut v = Utf8Validator::default();
        assert!(v.push(b"\xED\xA0\x80").is_err(), "surrogate");
        let mut v = Utf8Validator::default();
        assert!(v
            .push(b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80edited")
            .is_err());
    }

    proptest! {
        #[test]
        fn any_split_agrees_with_std(data in prop::collection::vec(any::<u8>(), 0..64), cuts in prop::collection::vec(0usize..64, 0..6)) {
            let valid = std::str::from_utf8(&data).is_ok();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut v = Utf8Validator::default();
            let mut last = 0;
            let mut ok = true;
            for &c in cuts.iter().chain(std::iter::once(&data.len())) {
                ok &= v.push(&data[last..c]).is_ok();
                if !ok { break; }
                last = c;
            }
            prop_assert_eq!(ok && v.is_complete(), valid);
        }

        #[test]
        fn valid_text_in_any_split(s in "\\PC{0,40}", cut in 0usize..200) {
            let bytes = s.as_bytes();
            let cut = cut.min(bytes.len());
            prop_assert!(check(&[&bytes[..cut], &bytes[cut..]]));
        }
    }
}
