//! Per-action rate limits: one token bucket per action, refilled at the action's requests per
//! second and holding at most one second's worth, so a burst of up to N calls passes and more
//! within the same second are answered `RequestLimitExceeded`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by action name.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter::default()
    }

    /// Takes one token from `key`'s bucket (rate `per_second`); `false` when it is empty.
    pub fn try_acquire(&self, key: &str, per_second: u32, now: Instant) -> bool {
        let rate = f64::from(per_second.max(1));
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now.max(bucket.last);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new();
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.try_acquire("A", 3, t0)));
        assert!(!limiter.try_acquire("A", 3, t0));
        assert!(limiter.try_acquire("B", 3, t0), "buckets are per action");
        let later = t0 + Duration::from_millis(400);
        assert!(limiter.try_acquire("A", 3, later));
        assert!(!limiter.try_acquire("A", 3, later));
        let much_later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| limiter.try_acquire("A", 3, much_later)));
        assert!(
            !limiter.try_acquire("A", 3, much_later),
            "at most one second's worth"
        );
    }
}
