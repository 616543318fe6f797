//! Answers of creating actions (`Create*`), remembered per signed request so that an identical
//! retry (the same signature: an SDK retrying within the same second) gets the first call's
//! answer instead of creating a second job or task. Concurrent identical calls wait for the
//! first; a call that failed is not remembered (its retry runs again). Bounded: past `capacity`
//! entries the oldest are forgotten first; entries expire with their signature.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::OnceCell;

/// One remembered answer (or the call in progress that will produce it).
pub type Slot = Arc<OnceCell<Map<String, Value>>>;

/// Answers by signed request.
#[derive(Debug)]
pub struct CreatedCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    slots: HashMap<String, Slot>,
    /// (expires at, key) in insertion order.
    order: VecDeque<(i64, String)>,
}

impl CreatedCache {
    pub fn new(capacity: usize) -> CreatedCache {
        CreatedCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Entries::default()),
        }
    }

    /// The slot of `key` (created empty when new), kept until `expires_at` (Unix seconds).
    pub fn slot(&self, key: &str, expires_at: i64, now: i64) -> Slot {
        let mut entries = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some((expiry, _)) = entries.order.front() {
            if *expiry > now && entries.order.len() < self.capacity {
                break;
            }
            if let Some((_, old)) = entries.order.pop_front() {
                entries.slots.remove(&old);
            }
        }
        if let Some(slot) = entries.slots.get(key) {
            return slot.clone();
        }
        let slot: Slot = Arc::new(OnceCell::new());
        entries.slots.insert(key.to_string(), slot.clone());
        entries.order.push_back((expires_at, key.to_string()));
        slot
    }

    /// Answers remembered (or in progress).
    pub fn len(&self) -> usize {
        match self.inner.lock() {
            Ok(guard) => guard.slots.len(),
            Err(poisoned) => poisoned.into_inner().slots.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_answer_is_kept_errors_are_not() {
        let cache = CreatedCache::new(2);
        let a = cache.slot("a", 100, 0);
        let r: Result<_, ()> = a.get_or_try_init(|| async { Err(()) }).await.cloned();
        assert!(r.is_err());
        let a = cache.slot("a", 100, 1);
        let mut m = Map::new();
        m.insert("JobId".into(), Value::from("dts-1"));
        let first = a
            .get_or_try_init(|| async { Ok::<_, ()>(m.clone()) })
            .await
            .cloned()
            .unwrap();
        let again = cache
            .slot("a", 100, 2)
            .get_or_try_init(|| async { Err(()) })
            .await
            .cloned()
            .unwrap();
        assert_eq!(first, again);
        cache.slot("b", 100, 2);
        cache.slot("c", 100, 2);
        assert_eq!(cache.len(), 2, "bounded");
        assert!(cache.slot("a", 100, 200).get().is_none(), "expired");
    }
}
