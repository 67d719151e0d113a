//! A fast hash map for short word keys (topic terms, language markers), looked up for every word of
//! every text: std's SipHash costs more than the rest of a lookup on five-letter words.
//!
//! FxHash-style mixing (rotate, xor, multiply by an odd constant), 8 bytes at a time. Not resistant
//! to hash flooding, which does not matter here: the tables are built from configuration and input
//! text is only looked up, never inserted.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher behind [`WordMap`].
#[derive(Clone, Copy, Default)]
pub struct WordHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl WordHasher {
    #[inline]
    fn mix(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(K);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap` with [`WordHasher`].
///
/// ```
/// let mut m = pulso::wordhash::WordMap::default();
/// m.insert("atraso".to_string(), 1);
/// assert_eq!(m.get("atraso"), Some(&1));
/// assert_eq!(m.get("atras"), None);
/// ```
pub type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn distinct_short_words_hash_apart() {
        let b = BuildHasherDefault::<WordHasher>::default();
        let words = [
            "a", "ab", "abc", "ba", "atras", "atraso", "atrasos", "a\0", "\0a",
        ];
        let hashes: std::collections::HashSet<u64> = words.iter().map(|w| b.hash_one(w)).collect();
        assert_eq!(hashes.len(), words.len());
    }
}
