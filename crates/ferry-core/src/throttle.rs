//! A rows/s and bytes/s limit shared by all workers of a phase, adjustable while running.
//!
//! A token bucket per unit with one second of burst. `set_limits` takes effect at the next
//! acquisition; a limit of 0 means unlimited.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    rate: u64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Bucket {
            rate,
            tokens: rate as f64,
            last: Instant::now(),
        }
    }

    /// Takes `n` tokens (going into debt if needed) and returns how long to wait.
    fn take(&mut self, n: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.rate as f64);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }
}

/// Shared limiter for rows and bytes.
#[derive(Debug)]
pub struct Throttle {
    inner: Mutex<(Bucket, Bucket)>,
}

impl Throttle {
    /// A limiter; 0 means no limit.
    pub fn new(rows_per_sec: u64, bytes_per_sec: u64) -> Self {
        Throttle {
            inner: Mutex::new((Bucket::new(rows_per_sec), Bucket::new(bytes_per_sec))),
        }
    }

    /// Changes the limits of a running phase.
    pub fn set_limits(&self, rows_per_sec: u64, bytes_per_sec: u64) {
        if let Ok(mut g) = self.inner.lock() {
            *g = (Bucket::new(rows_per_sec), Bucket::new(bytes_per_sec));
        }
    }

    /// The current limits (rows/s, bytes/s).
    pub fn limits(&self) -> (u64, u64) {
        self.inner.lock().map(|g| (g.0.rate, g.1.rate)).unwrap_or((0, 0))
    }

    /// Accounts for `rows` rows and `bytes` bytes, sleeping as long as the limits require.
    pub async fn acquire(&self, rows: u64, bytes: u64) {
        let wait = match self.inner.lock() {
            Ok(mut g) => {
                let now = Instant::now();
                g.0.take(rows, now).max(g.1.take(bytes, now))
            }
            Err(_) => Duration::ZERO,
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_debt() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100);
        assert_eq!(b.take(100, t0), Duration::ZERO);
        let w = b.take(50, t0);
        assert!((w.as_secs_f64() - 0.5).abs() < 1e-6);
        let mut u = Bucket::new(0);
        assert_eq!(u.take(1_000_000, t0), Duration::ZERO);
    }
}
