//! The replay guard: signatures already used, kept until their timestamp leaves the allowed clock
//! skew (after that the request is rejected as expired anyway). Bounded: past `capacity` entries
//! the oldest are forgotten first.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Signatures seen recently.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    keys: HashSet<String>,
    /// (expires at, key) in insertion order.
    order: VecDeque<(i64, String)>,
}

impl ReplayCache {
    /// Remembers at most `capacity` signatures (at least 1).
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Seen::default()),
        }
    }

    /// `true` and remembers `key` until `expires_at` (Unix seconds) when it was not seen yet;
    /// `false` when it is a replay.
    pub fn first_use(&self, key: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some((expiry, _)) = seen.order.front() {
            if *expiry > now && seen.order.len() < self.capacity {
                break;
            }
            if let Some((_, old)) = seen.order.pop_front() {
                seen.keys.remove(&old);
            }
        }
        if seen.keys.contains(key) {
            return false;
        }
        seen.keys.insert(key.to_string());
        seen.order.push_back((expires_at, key.to_string()));
        true
    }

    /// Signatures currently remembered.
    pub fn len(&self) -> usize {
        match self.inner.lock() {
            Ok(guard) => guard.keys.len(),
            Err(poisoned) => poisoned.into_inner().keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_is_refused_until_expiry_and_size_is_bounded() {
        let cache = ReplayCache::new(3);
        assert!(cache.first_use("a", 100, 0));
        assert!(!cache.first_use("a", 100, 50));
        assert!(cache.first_use("a", 200, 100), "expired entries are forgotten");
        assert!(cache.first_use("b", 200, 100));
        assert!(cache.first_use("c", 200, 100));
        assert!(cache.first_use("d", 200, 100));
        assert_eq!(cache.len(), 3, "bounded");
        assert!(!cache.first_use("d", 200, 100));
    }
}
