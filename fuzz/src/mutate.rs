//! Structure-blind mutations, libFuzzer's repertoire without the coverage feedback: bit flips, bytes and
//! multi-byte integers and floats set to values that break parsers (0, 1, -1, the signed and unsigned extremes,
//! powers of two near them, NaN, ±Inf), ranges inserted, deleted, duplicated or copied from another input, and
//! truncation. One to four are stacked per execution.

/// splitmix64: a tiny deterministic generator (the run is reproducible for a seed).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u64; 16] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

const FLOATS: [f32; 8] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e38, -1e38, 1e-45, 0.0];

/// The largest input a mutation may grow to (bigger inputs only slow the run down).
const MAX_LEN: usize = 1 << 20;

/// A mutant of an input from `pool`.
pub fn mutate(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut b = pool[rng.below(pool.len())].clone();
    for _ in 0..1 + rng.below(4) {
        one(rng, &mut b, pool);
    }
    b.truncate(MAX_LEN);
    b
}

fn one(rng: &mut Rng, b: &mut Vec<u8>, pool: &[Vec<u8>]) {
    // Header fields sit near the start: aim half of the point mutations at the first 512 bytes.
    let at = |rng: &mut Rng, len: usize| {
        if rng.below(2) == 0 {
            rng.below(len.min(512))
        } else {
            rng.below(len)
        }
    };
    if b.is_empty() {
        b.extend((0..1 + rng.below(64)).map(|_| rng.next() as u8));
        return;
    }
    let len = b.len();
    match rng.below(12) {
        0 => {
            let i = at(rng, len);
            b[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = at(rng, len);
            b[i] = rng.next() as u8;
        }
        2 => {
            let i = at(rng, len);
            b[i] = INTERESTING[rng.below(6)] as u8;
        }
        3 | 4 => {
            // A 2-, 4- or 8-byte integer, little- or big-endian, set to an interesting value (± a little).
            let w = [2usize, 4, 8][rng.below(3)];
            if len >= w {
                let i = at(rng, len - w + 1);
                let v = INTERESTING[rng.below(INTERESTING.len())].wrapping_add(rng.below(3) as u64).wrapping_sub(1);
                let bytes = if rng.below(2) == 0 { v.to_le_bytes() } else { v.to_be_bytes() };
                b[i..i + w].copy_from_slice(if rng.below(2) == 0 { &bytes[..w] } else { &bytes[8 - w..] });
            }
        }
        5 => {
            if len >= 4 {
                let i = at(rng, len - 3);
                b[i..i + 4].copy_from_slice(&FLOATS[rng.below(FLOATS.len())].to_le_bytes());
            }
        }
        6 => {
            // Delete a range.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            b.drain(i..i + n);
        }
        7 => {
            // Insert random bytes.
            let i = rng.below(len + 1);
            let n = 1 + rng.below(32);
            let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, ins);
        }
        8 => {
            // Duplicate a range in place.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(256));
            let r = b[i..i + n].to_vec();
            let j = rng.below(len + 1);
            b.splice(j..j, r);
        }
        9 => {
            // Copy a range of another input over this one (splicing two formats' structures).
            let other = &pool[rng.below(pool.len())];
            if !other.is_empty() {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(256));
                let j = rng.below(len);
                let n = n.min(len - j);
                b[j..j + n].copy_from_slice(&other[i..i + n]);
            }
        }
        10 => {
            // Truncate.
            let n = rng.below(len);
            b.truncate(n);
        }
        _ => {
            // Swap two bytes.
            let (i, j) = (rng.below(len), rng.below(len));
            b.swap(i, j);
        }
    }
}
