//! The replay guard: signatures already used, each with the action it was first used for, kept
//! until their timestamp leaves the allowed clock skew (after that the request is refused as
//! expired anyway). Bounded: past `capacity` entries the oldest are forgotten first.
//!
//! A signature seen again for the same action is an identical retry (Tencent's TC3 has no nonce:
//! an SDK retry or a client sending twice within one second is byte-identical): it is served, but
//! draws from a token bucket of its own (the action's rate per second), never from the callers'
//! shared quota, so that a captured request resent in a loop cannot exhaust it. A signature seen
//! again for another action (possible only when the action was not signed: the official SDKs
//! sign `content-type;host` only, so `DescribeMigrateCheckJob {"JobId":X}` and
//! `StartMigrateJob {"JobId":X}` sent within one second carry the same signature) is served for
//! read-only actions, and for the others only when it comes from the address that first used
//! the signature, so that a captured request cannot be resent by someone else as a different,
//! mutating action.

use std::net::IpAddr;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

/// What a use of a signature is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// Not seen before for this action (now remembered).
    First,
    /// Seen before for the same action, within the signature's own rate.
    Repeat,
    /// Seen before, more often per second than the action's rate.
    RepeatLimited,
    /// Seen before for the action `first`, from another address, and this (mutating) action is
    /// another one.
    OtherAction { first: String },
}

/// One use of a signature.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// Identifies the signed request (scheme and signature).
    pub key: &'a str,
    pub action: &'a str,
    /// The action only reads.
    pub read_only: bool,
    /// The action's rate limit, which also bounds the repeats of one signature.
    pub per_second: u32,
    /// Remember the signature until then (Unix seconds).
    pub expires_at: i64,
    /// The client's address.
    pub peer: Option<IpAddr>,
}

#[derive(Debug)]
struct Entry {
    /// The actions the signature was used for, first one first (at most the API's actions).
    actions: Vec<String>,
    /// The address that first used it.
    peer: Option<IpAddr>,
    tokens: f64,
    last: Instant,
}

/// Signatures seen recently.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    entries: HashMap<String, Entry>,
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

    /// Records `attempt`; `now` is Unix seconds, `instant` the same moment.
    pub fn record(&self, attempt: &Attempt<'_>, now: i64, instant: Instant) -> Use {
        let Attempt {
            key,
            action,
            read_only,
            per_second,
            expires_at,
            peer,
        } = *attempt;
        let mut seen = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some((expiry, _)) = seen.order.front() {
            if *expiry > now && seen.order.len() < self.capacity {
                break;
            }
            if let Some((_, old)) = seen.order.pop_front() {
                seen.entries.remove(&old);
            }
        }
        let rate = f64::from(per_second.max(1));
        let Some(entry) = seen.entries.get_mut(key) else {
            seen.entries.insert(
                key.to_string(),
                Entry {
                    actions: vec![action.to_string()],
                    peer,
                    tokens: rate,
                    last: instant,
                },
            );
            seen.order.push_back((expires_at, key.to_string()));
            return Use::First;
        };
        if !entry.actions.iter().any(|a| a == action) {
            if !read_only && entry.peer != peer {
                return Use::OtherAction {
                    first: entry.actions.first().cloned().unwrap_or_default(),
                };
            }
            entry.actions.push(action.to_string());
            return Use::First;
        }
        let elapsed = instant.saturating_duration_since(entry.last).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * rate).min(rate);
        entry.last = instant.max(entry.last);
        if entry.tokens >= 1.0 {
            entry.tokens -= 1.0;
            Use::Repeat
        } else {
            Use::RepeatLimited
        }
    }

    /// Signatures currently remembered.
    pub fn len(&self) -> usize {
        match self.inner.lock() {
            Ok(guard) => guard.entries.len(),
            Err(poisoned) => poisoned.into_inner().entries.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn repeats_expiry_other_actions_and_size_bound() {
        let cache = ReplayCache::new(3);
        let t = Instant::now();
        let me: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let other: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        let rec_from =
            |peer: Option<IpAddr>, key: &str, action: &str, ro: bool, exp: i64, now: i64, at: Instant| {
                cache.record(
                    &Attempt {
                        key,
                        action,
                        read_only: ro,
                        per_second: 2,
                        expires_at: exp,
                        peer,
                    },
                    now,
                    at,
                )
            };
        let rec = |key: &str, action: &str, ro: bool, exp: i64, now: i64, at: Instant| {
            rec_from(me, key, action, ro, exp, now, at)
        };
        assert_eq!(rec("a", "Delete", false, 100, 0, t), Use::First);
        assert_eq!(rec("a", "Delete", false, 100, 1, t), Use::Repeat);
        assert_eq!(rec("a", "Delete", false, 100, 1, t), Use::Repeat);
        assert_eq!(rec("a", "Delete", false, 100, 1, t), Use::RepeatLimited);
        assert_eq!(
            rec("a", "Delete", false, 100, 1, t + Duration::from_secs(1)),
            Use::Repeat,
            "the signature's own bucket refills"
        );
        assert_eq!(
            rec_from(other, "a", "Start", false, 100, 1, t + Duration::from_secs(5)),
            Use::OtherAction {
                first: "Delete".into()
            },
            "another address cannot reuse it for another mutating action"
        );
        assert_eq!(
            rec_from(
                other,
                "a",
                "DescribeJobs",
                true,
                100,
                1,
                t + Duration::from_secs(5)
            ),
            Use::First,
            "read-only actions may reuse a signature"
        );
        assert_eq!(
            rec("a", "Start", false, 100, 1, t + Duration::from_secs(5)),
            Use::First,
            "the same client may (SDKs send Describe and Start with one signature in one second)"
        );
        assert_eq!(
            rec("a", "Start", false, 100, 1, t + Duration::from_secs(5)),
            Use::Repeat
        );
        assert_eq!(
            rec("a", "Delete", false, 200, 100, t),
            Use::First,
            "expired entries are forgotten"
        );
        assert_eq!(rec("b", "X", false, 200, 100, t), Use::First);
        assert_eq!(rec("c", "X", false, 200, 100, t), Use::First);
        assert_eq!(rec("d", "X", false, 200, 100, t), Use::First);
        assert_eq!(cache.len(), 3, "bounded");
        assert_eq!(rec("d", "X", false, 200, 100, t), Use::Repeat);
    }
}
