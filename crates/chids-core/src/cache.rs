//! A map with a hard size bound that forgets everything when full.
//!
//! Written by hand rather than taken from the `lru` crate: the caches it
//! serves (raw argument → normalised argument, names known unseen) only
//! save recomputation, so a miss after a clear costs one normalisation,
//! while an LRU would pay a linked-list update on every hit of the hot path.
//! Clearing keeps memory bounded whatever a workload does; a workload that
//! floods unique names clears it every `max_entries` new names, and the
//! names it uses often come back at the first use after.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// What a key costs besides the map's own entry.
pub trait Weigh {
    fn bytes(&self) -> usize;
}

impl Weigh for Box<str> {
    fn bytes(&self) -> usize {
        self.len()
    }
}

impl Weigh for Box<[u8]> {
    fn bytes(&self) -> usize {
        self.len()
    }
}

/// A map of at most `max_entries` entries and `max_bytes` of keys (or one
/// key, if a single key is larger).
pub struct BoundedCache<K, V> {
    map: FxHashMap<K, V>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    clears: u64,
}

impl<K: Hash + Eq + Weigh, V> BoundedCache<K, V> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        BoundedCache {
            map: FxHashMap::default(),
            bytes: 0,
            max_entries,
            max_bytes,
            clears: 0,
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    /// Inserts, first forgetting everything if the bound would be passed.
    pub fn insert(&mut self, key: K, value: V) {
        let cost = key.bytes();
        if self.map.len() >= self.max_entries || self.bytes + cost > self.max_bytes {
            // `clear` keeps the table's capacity, itself bounded by
            // `max_entries`, so refilling does not reallocate.
            self.map.clear();
            self.bytes = 0;
            self.clears += 1;
        }
        self.bytes += cost;
        self.map.insert(key, value);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// How many times it was cleared for being full.
    #[cfg(test)]
    pub fn clears(&self) -> u64 {
        self.clears
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_passes_its_bounds() {
        let mut c: BoundedCache<Box<str>, u32> = BoundedCache::new(100, 1_000);
        for i in 0..10_000u32 {
            c.insert(format!("/tmp/{i}").into(), i);
            assert!(c.len() <= 100);
            assert!(c.bytes <= 1_000);
        }
        assert!(c.clears() > 0);
        // A key bigger than the byte bound is still kept alone.
        c.insert("x".repeat(5_000).into(), 0);
        assert_eq!(c.len(), 1);
    }
}
