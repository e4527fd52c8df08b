//! The hasher of the checker's id maps.
//!
//! A file of its own because it is not a detail of the checker: the load
//! generator keys its per-stream maps by the same ids with [`FastMap`], so
//! the hasher is public and shared rather than copied. Why not the standard
//! hasher is said on [`Fnv`].

use std::collections::HashMap;

/// FNV-1a: the maps here are keyed by ids the checker reads on every delta;
/// SipHash's DoS resistance buys nothing in a test tool and costs per delta.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // FNV-style, eight bytes a step (ids are 24 ASCII bytes).
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(0x0100_0000_01b3);
            self.0 ^= self.0 >> 29;
        }
        for b in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A `HashMap` with [`Fnv`] hashing.
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;
