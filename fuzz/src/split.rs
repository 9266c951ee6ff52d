//! Cutting the input into pieces and moving the fake clock.

/// One piece of input and how far the clock moves before it is fed.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// The bytes (may be empty: an empty read must change nothing).
    pub bytes: &'a [u8],
    /// Milliseconds the clock advances before this piece.
    pub advance_ms: u64,
}

/// How the fake clock moves between pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// 0 to 3 ms per piece, capped well below every default timeout, so that the whole and
    /// split runs see no deadline and must give the same events.
    Gentle,
    /// Mostly small steps, now and then a jump of up to 90 s: deadlines fire. Only the
    /// invariants are checked, not equality with another run.
    Jumpy,
}

/// Latest time a [`Clock::Gentle`] run reaches (the smallest default timeout is 30 s).
pub(crate) const GENTLE_CAP_MS: u64 = 20_000;

/// A small deterministic PRNG (xorshift64*), good enough to pick cut points.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Cuts `data` into pieces chosen by `seed` (normally the fuzz input's first byte).
///
/// The low three bits pick the largest piece (1, 2, 3, 5, 8, 16, 64 or 512 bytes); the rest
/// seeds the lengths, the clock steps and an occasional empty piece.
pub fn split(seed: u8, data: &[u8], clock: Clock) -> Vec<Piece<'_>> {
    const MAX_PIECE: [u64; 8] = [1, 2, 3, 5, 8, 16, 64, 512];
    let max = MAX_PIECE[usize::from(seed & 7)];
    let mut rng = Rng::new(u64::from(seed) << 32 | data.len() as u64);
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let len = if rng.below(16) == 0 {
            0
        } else {
            1 + rng.below(max) as usize
        };
        let end = data.len().min(at + len);
        pieces.push(Piece {
            bytes: &data[at..end],
            advance_ms: advance(&mut rng, clock),
        });
        at = end;
    }
    pieces
}

/// The whole of `data` as one piece.
pub fn whole(data: &[u8]) -> Vec<Piece<'_>> {
    vec![Piece {
        bytes: data,
        advance_ms: 1,
    }]
}

fn advance(rng: &mut Rng, clock: Clock) -> u64 {
    match clock {
        Clock::Gentle => rng.below(4),
        Clock::Jumpy if rng.below(8) == 0 => rng.below(90_000),
        Clock::Jumpy => rng.below(4),
    }
}

/// The most events a run over `input_len` bytes may produce.
pub fn event_limit(input_len: usize) -> usize {
    input_len * 4 + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_everything() {
        let data: Vec<u8> = (0..=255).collect();
        for seed in 0..=255 {
            let pieces = split(seed, &data, Clock::Gentle);
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.to_vec()).collect();
            assert_eq!(joined, data);
        }
    }
}
