//! The service's retry of failed runs: a pure decision over the failed run's error kind, the
//! outage it belongs to and the job's retry window, and the backoff with jitter before the next
//! attempt.
//!
//! The engines retry the transient failures of the full load, the replay and the verification
//! themselves, inside `Ferry.RetryWindowSeconds`; a transient failure anywhere else (a server
//! unreachable while the run starts or copies the structure, the post-data structure, the
//! cut-over) ends the run. The service then runs the job again from its checkpoints:
//!
//! - a **definite** error (a wrong password, a refused statement, an outage that already
//!   outlasted the window inside an engine) is never retried: the job fails (10);
//! - a **transient** error is retried while the outage lasts at most the job's retry window
//!   (`Ferry.RetryWindowSeconds`, default 3600 s; 0: until stopped). The outage begins at the
//!   first failed run; a run that lasted [`RetryPolicy::reset_after`] or longer before failing
//!   begins a new one;
//! - the wait before attempt *n* of an outage is `first · 2^(n-1)`, at most `max`, less a random
//!   part of up to half of it ("equal jitter": jobs cut by one outage do not all come back at
//!   the same instant), and never past the end of the window.

use std::time::Duration;

use ferry_core::progress::RetryWindow;
use ferry_core::retry::Backoff;
use ferry_core::ErrorKind;

/// How the service retries failed runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The waits between runs ([`ferry_core::retry`]'s backoff, as every engine's): the first
    /// (before jitter), the longest, and the share of a wait jitter may take off (one half:
    /// "equal jitter").
    pub backoff: Backoff,
    /// A run that failed after running this long begins a new outage.
    pub reset_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff {
                first: Duration::from_secs(2),
                max: Duration::from_secs(60),
                jitter: 0.5,
            },
            reset_after: Duration::from_secs(300),
        }
    }
}

/// A failed run, as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The kind of the run's error.
    pub kind: ErrorKind,
    /// UNIX seconds now.
    pub now: i64,
    /// How long the failed run ran.
    pub ran_for: Duration,
    /// UNIX seconds of the first failure of the outage under way (`None`: none).
    pub outage_since: Option<i64>,
    /// Failed runs of this outage before this one.
    pub earlier_attempts: u32,
}

/// What to do with a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run again after `delay`; `attempt` is this outage's retry number (1 at the first), and
    /// the outage began at `since`.
    Retry {
        delay: Duration,
        attempt: u32,
        since: i64,
    },
    /// The job fails: the error is definite, or the outage has outlasted the window.
    Fail,
}

impl RetryPolicy {
    /// Decides on a failed run. `jitter` is a random number in `[0, 1)`.
    pub fn decide(&self, failure: Failure, window: RetryWindow, jitter: f64) -> Decision {
        if failure.kind == ErrorKind::Definite {
            return Decision::Fail;
        }
        let new_outage = failure.ran_for >= self.reset_after;
        let (since, earlier) = match failure.outage_since {
            Some(since) if !new_outage && since <= failure.now => (since, failure.earlier_attempts),
            _ => (failure.now, 0),
        };
        let elapsed = Duration::from_secs((failure.now - since).max(0) as u64);
        if window.exceeded(elapsed) {
            return Decision::Fail;
        }
        let attempt = earlier.saturating_add(1);
        let jitter = if jitter.is_finite() { jitter } else { 0.0 };
        // `jitter` 0 takes the whole share off (half the wait), 1 nothing.
        let mut delay = self.backoff.delay_with(attempt, 1.0 - jitter.clamp(0.0, 1.0));
        if !window.0.is_zero() {
            delay = delay.min(window.0.saturating_sub(elapsed));
        }
        Decision::Retry {
            delay,
            attempt,
            since,
        }
    }
}

/// A random number in `[0, 1)` for the jitter.
pub fn jitter() -> f64 {
    let b = uuid::Uuid::new_v4().as_u128();
    (b >> 75) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn failure(kind: ErrorKind, now: i64, ran: u64, since: Option<i64>, earlier: u32) -> Failure {
        Failure {
            kind,
            now,
            ran_for: Duration::from_secs(ran),
            outage_since: since,
            earlier_attempts: earlier,
        }
    }

    const HOUR: RetryWindow = RetryWindow(Duration::from_secs(3600));

    #[test]
    fn definite_errors_and_exhausted_windows_fail() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(failure(ErrorKind::Definite, 100, 1, None, 0), HOUR, 0.5),
            Decision::Fail
        );
        assert_eq!(
            p.decide(failure(ErrorKind::Transient, 5000, 1, Some(1000), 9), HOUR, 0.5),
            Decision::Fail
        );
        // Until stopped: an old outage is still retried.
        assert!(matches!(
            p.decide(
                failure(ErrorKind::Transient, 1_000_000, 1, Some(1), 40),
                RetryWindow(Duration::ZERO),
                0.5
            ),
            Decision::Retry { attempt: 41, .. }
        ));
    }

    #[test]
    fn a_long_run_begins_a_new_outage() {
        let p = RetryPolicy::default();
        let d = p.decide(failure(ErrorKind::Transient, 9000, 600, Some(1000), 9), HOUR, 0.0);
        assert_eq!(
            d,
            Decision::Retry {
                delay: Duration::from_secs(1),
                attempt: 1,
                since: 9000
            }
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let p = RetryPolicy::default();
        let delay = |earlier| match p.decide(
            failure(ErrorKind::Transient, 100, 1, Some(100), earlier),
            HOUR,
            0.999_999,
        ) {
            Decision::Retry { delay, .. } => delay.as_secs(),
            Decision::Fail => u64::MAX,
        };
        assert_eq!(
            (0..8).map(delay).collect::<Vec<_>>(),
            vec![1, 3, 7, 15, 31, 59, 59, 59]
        );
    }

    proptest! {
        #[test]
        fn delays_stay_in_bounds(
            transient in any::<bool>(),
            now in 0i64..10_000_000,
            ran in 0u64..1_000,
            back in proptest::option::of(0i64..10_000),
            earlier in 0u32..100,
            window in 0u64..10_000,
            jitter in 0.0f64..1.0,
        ) {
            let p = RetryPolicy::default();
            let kind = if transient { ErrorKind::Transient } else { ErrorKind::Definite };
            let since = back.map(|b| now - b);
            let w = RetryWindow(Duration::from_secs(window));
            match p.decide(failure(kind, now, ran, since, earlier), w, jitter) {
                Decision::Fail => {
                    prop_assert!(!transient || (window > 0 && since.is_some()));
                }
                Decision::Retry { delay, attempt, since: s } => {
                    prop_assert!(transient);
                    prop_assert!(delay <= p.backoff.max);
                    prop_assert!(attempt >= 1 && s <= now);
                    let elapsed = (now - s) as u64;
                    if window > 0 {
                        prop_assert!(elapsed < window);
                        prop_assert!(elapsed + delay.as_secs() <= window);
                    }
                    if attempt == 1 {
                        prop_assert!(delay <= p.backoff.first);
                    }
                }
            }
        }
    }
}
