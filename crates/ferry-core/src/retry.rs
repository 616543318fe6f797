//! One failure policy for every engine: which MySQL/MariaDB errors are worth retrying, and how
//! retries are spaced and bounded.
//!
//! - **Classification** ([`classify_mysql`], [`classify_server`]): connection-level failures
//!   (I/O, a closed connection) are transient; server errors are definite unless their code is
//!   in [`SERVER_CODES`] as transient. Every code there has a name and a reason.
//! - **Spacing** ([`Backoff`]): exponential (doubling) from `first` up to `max`, with jitter
//!   that only shortens a wait (`max` is a real ceiling), so that the workers and jobs that
//!   failed together do not come back together.
//! - **Bounds** ([`Retry`]): an *outage* is a run of transient failures without progress in
//!   between. It ends when the caller reports progress ([`Retry::recovered`]); it is given up
//!   once it has lasted the retry window (`Ferry.RetryWindowSeconds`, [`RetryWindow`]) or used
//!   the policy's attempt budget ([`Policy::max_attempts`]).
//!
//! The presets: [`Policy::OUTAGE`] for a phase of a job (full load, incremental replay,
//! verification: bounded by the window) and [`Policy::CHUNK`] for one full-load chunk on a fresh
//! target connection (bounded by its budget; the phase retries the rest).
//!
//! Pure but for [`Retry::failed`], which reads the clock and a random jitter; the decision
//! itself ([`Retry::failed_at`], [`Backoff::delay_with`]) takes both as arguments and is
//! property-tested.
//!
//! Client error codes (`CR_SERVER_GONE_ERROR` 2006, `CR_SERVER_LOST` 2013) are produced by the C
//! client library, never sent by a server: with the Rust client a lost connection arrives as
//! `Error::Io` or `DriverError::ConnectionClosed`, which are transient here. They are therefore
//! not in the server table (where they could never match).

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::error::ErrorKind;
use crate::progress::{unix_now, RetryWindow};

/// A MySQL/MariaDB server error code Ferry names, with its class and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The numeric code (`ERROR 1205 (HY000)`).
    pub code: u16,
    /// The server's symbol for it.
    pub name: &'static str,
    /// Transient: retry from the last checkpoint; definite: fail with the reason.
    pub kind: ErrorKind,
    /// Why it is in that class.
    pub why: &'static str,
}

/// `Too many connections` (`max_connections` reached).
pub const ER_CON_COUNT_ERROR: u16 = 1040;
/// `Server shutdown in progress`.
pub const ER_SERVER_SHUTDOWN: u16 = 1053;
/// `User ... already has more than 'max_user_connections' active connections`.
pub const ER_TOO_MANY_USER_CONNECTIONS: u16 = 1203;
/// `Lock wait timeout exceeded; try restarting transaction`.
pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `Deadlock found when trying to get lock; try restarting transaction`.
pub const ER_LOCK_DEADLOCK: u16 = 1213;
/// `The MySQL/MariaDB server is running with the --read-only option so it cannot execute this
/// statement` (also `--super-read-only`, `--secure-file-priv`, `--skip-grant-tables`, …).
pub const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;
/// `Query execution was interrupted` (`KILL QUERY`, or a shutdown).
pub const ER_QUERY_INTERRUPTED: u16 = 1317;
/// `XA_RBDEADLOCK: Transaction branch was rolled back: deadlock was detected`.
pub const ER_XA_RBDEADLOCK: u16 = 1614;
/// `Connection was killed` (MariaDB; codes from 1900 up are MariaDB's own).
pub const ER_CONNECTION_KILLED: u16 = 1927;
/// `Could not find first log file name in binary log index file` and other fatal binlog reads
/// (the position asked for is purged or unknown).
pub const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;
/// `Access denied for user`.
pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
/// `Duplicate entry … for key …`: also how a checkpoint commit's epoch check refuses a run whose
/// epoch is older than the target's ([`crate::fence`], reported as `CoreError::Fenced`).
pub const ER_DUP_ENTRY: u16 = 1062;
/// `Access denied for user ... Account is locked` (MySQL).
pub const ER_ACCOUNT_HAS_BEEN_LOCKED: u16 = 3118;
/// The same on MariaDB (10.4+), which numbers it in its own range.
pub const ER_ACCOUNT_HAS_BEEN_LOCKED_MARIADB: u16 = 4151;

/// Every server code Ferry classifies by name. A code not listed is definite: retrying a
/// statement the server refused for its content (syntax, privileges, unknown objects, values
/// that do not fit: [`crate::error::DATA_CONVERSION_CODES`]) meets the same answer.
pub const SERVER_CODES: &[Code] = &[
    Code {
        code: ER_CON_COUNT_ERROR,
        name: "ER_CON_COUNT_ERROR",
        kind: ErrorKind::Transient,
        why: "max_connections is reached; a slot frees as other clients disconnect",
    },
    Code {
        code: ER_SERVER_SHUTDOWN,
        name: "ER_SERVER_SHUTDOWN",
        kind: ErrorKind::Transient,
        why: "the server is shutting down (a restart or a failover); a later connection reaches it again",
    },
    Code {
        code: ER_TOO_MANY_USER_CONNECTIONS,
        name: "ER_TOO_MANY_USER_CONNECTIONS",
        kind: ErrorKind::Transient,
        why: "the account's max_user_connections is reached; a slot frees as its other sessions end",
    },
    Code {
        code: ER_LOCK_WAIT_TIMEOUT,
        name: "ER_LOCK_WAIT_TIMEOUT",
        kind: ErrorKind::Transient,
        why: "another transaction held the row lock; the transaction is redone from its checkpoint",
    },
    Code {
        code: ER_LOCK_DEADLOCK,
        name: "ER_LOCK_DEADLOCK",
        kind: ErrorKind::Transient,
        why: "InnoDB rolled this transaction back as a deadlock victim; redoing it succeeds",
    },
    Code {
        code: ER_OPTION_PREVENTS_STATEMENT,
        name: "ER_OPTION_PREVENTS_STATEMENT",
        kind: ErrorKind::Transient,
        why: "transient only for --read-only / --super-read-only (a server being failed over turns \
              writable again within the retry window, which bounds a server that stays read-only); \
              definite for the other options (--secure-file-priv, --skip-grant-tables, …), which a \
              retry does not change. Vitess treats the code as unrecoverable; Ferry's window makes \
              the retry bounded",
    },
    Code {
        code: ER_QUERY_INTERRUPTED,
        name: "ER_QUERY_INTERRUPTED",
        kind: ErrorKind::Transient,
        why: "an operator's KILL QUERY or a shutdown stopped the statement, not its content",
    },
    Code {
        code: ER_XA_RBDEADLOCK,
        name: "ER_XA_RBDEADLOCK",
        kind: ErrorKind::Transient,
        why: "a replayed XA branch was rolled back as a deadlock victim; redoing it succeeds",
    },
    Code {
        code: ER_CONNECTION_KILLED,
        name: "ER_CONNECTION_KILLED",
        kind: ErrorKind::Transient,
        why: "MariaDB's answer on a connection killed by KILL or a shutdown (MySQL closes the socket, \
              an I/O error); a new connection works",
    },
    Code {
        code: ER_ACCESS_DENIED_ERROR,
        name: "ER_ACCESS_DENIED_ERROR",
        kind: ErrorKind::Definite,
        why: "wrong user or password; the same credentials are refused again",
    },
    Code {
        code: ER_ACCOUNT_HAS_BEEN_LOCKED,
        name: "ER_ACCOUNT_HAS_BEEN_LOCKED",
        kind: ErrorKind::Definite,
        why: "the account is locked (ALTER USER ... ACCOUNT LOCK); it stays locked until unlocked",
    },
    Code {
        code: ER_ACCOUNT_HAS_BEEN_LOCKED_MARIADB,
        name: "ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)",
        kind: ErrorKind::Definite,
        why: "the account is locked (ALTER USER ... ACCOUNT LOCK); it stays locked until unlocked",
    },
    Code {
        code: ER_DUP_ENTRY,
        name: "ER_DUP_ENTRY",
        kind: ErrorKind::Definite,
        why: "the key exists; inserting it again meets it again. A checkpoint commit's epoch check \
              fails this way when another node claimed the job (fencing): never retried",
    },
    Code {
        code: ER_MASTER_FATAL_ERROR_READING_BINLOG,
        name: "ER_MASTER_FATAL_ERROR_READING_BINLOG",
        kind: ErrorKind::Definite,
        why: "the binlog position asked for is purged or unknown; it does not come back",
    },
];

/// The named entry for a server code, if Ferry names it.
pub fn named(code: u16) -> Option<&'static Code> {
    SERVER_CODES.iter().find(|c| c.code == code)
}

/// Transient or definite, for a server error with this code and message.
pub fn classify_server(code: u16, message: &str) -> ErrorKind {
    if code == ER_OPTION_PREVENTS_STATEMENT {
        let m = message.to_ascii_lowercase();
        return if m.contains("read-only") || m.contains("read_only") {
            ErrorKind::Transient
        } else {
            ErrorKind::Definite
        };
    }
    named(code).map_or(ErrorKind::Definite, |c| c.kind)
}

/// Classifies a MySQL client error: I/O and connection-level failures are transient, server
/// errors by [`classify_server`], TLS failures retrying cannot fix and everything else definite.
pub fn classify_mysql(err: &mysql_async::Error) -> ErrorKind {
    use mysql_async::Error as E;
    if crate::tls::is_definite_tls_failure(err) {
        return ErrorKind::Definite;
    }
    match err {
        E::Io(_) => ErrorKind::Transient,
        E::Driver(
            mysql_async::DriverError::ConnectionClosed
            | mysql_async::DriverError::PoolDisconnected
            | mysql_async::DriverError::PacketOutOfOrder,
        ) => ErrorKind::Transient,
        E::Server(s) => classify_server(s.code, &s.message),
        _ => ErrorKind::Definite,
    }
}

/// The server's error code, when the error is a server's answer.
pub fn server_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// True for a lock wait timeout or a deadlock: another transaction was in the way.
pub fn is_lock_conflict(code: u16) -> bool {
    matches!(code, ER_LOCK_WAIT_TIMEOUT | ER_LOCK_DEADLOCK)
}

/// The shortest wait between two attempts.
pub const MIN_WAIT: Duration = Duration::from_millis(100);

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// The fraction (0 to 1) a wait may be shortened by at random.
    pub jitter: f64,
}

impl Backoff {
    /// The wait before retry `attempt` (1-based) without jitter: `first` doubled per attempt,
    /// at most `max`.
    pub fn base(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// The wait before retry `attempt` with jitter: `unit` (in `[0, 1)`) shortens [`Self::base`]
    /// by up to `jitter` of it.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base(attempt);
        let cut = (self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0)).min(1.0);
        base.mul_f64(1.0 - cut)
    }
}

/// How one kind of operation retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The waits between attempts.
    pub backoff: Backoff,
    /// At most this many retries in one outage (`None`: bounded by the retry window only).
    pub max_attempts: Option<u32>,
}

impl Policy {
    /// A phase of a job (full load, incremental replay, verification) after a transient
    /// failure: 1 s, 2 s, … 30 s, until the outage outlasts the retry window.
    pub const OUTAGE: Policy = Policy {
        backoff: Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
            jitter: 0.2,
        },
        max_attempts: None,
    };

    /// One full-load chunk after a transient target error, on a fresh connection: 1 s, 2 s,
    /// 4 s, then the chunk's error ends the load attempt (and [`Policy::OUTAGE`] of the phase
    /// takes over, from the chunk checkpoints).
    pub const CHUNK: Policy = Policy {
        backoff: Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(4),
            jitter: 0.2,
        },
        max_attempts: Some(3),
    };
}

/// A run of transient failures without progress in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// When the first failure happened.
    pub started: Instant,
    /// The same, in UNIX seconds (for reports).
    pub since: u64,
    /// Failures so far (1 after the first).
    pub attempts: u32,
}

/// What to do after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after this wait.
    Wait(Duration),
    /// The outage has outlasted the window or used the attempt budget: fail with the error.
    GiveUp,
}

/// The retry state of one operation: the policy, the window, the outage under way.
#[derive(Debug, Clone)]
pub struct Retry {
    policy: Policy,
    window: RetryWindow,
    outage: Option<Outage>,
}

impl Retry {
    /// No outage yet.
    pub fn new(policy: Policy, window: RetryWindow) -> Self {
        Retry {
            policy,
            window,
            outage: None,
        }
    }

    /// A transient failure now: how long to wait, or give up.
    pub fn failed(&mut self) -> Verdict {
        self.failed_at(Instant::now(), unix_now(), random_unit())
    }

    /// A transient failure at `now` (`unix`: the same in UNIX seconds), `unit` in `[0, 1)` the
    /// jitter's draw. The wait never reaches past the end of the window and is at least
    /// [`MIN_WAIT`].
    pub fn failed_at(&mut self, now: Instant, unix: u64, unit: f64) -> Verdict {
        let o = self.outage.get_or_insert(Outage {
            started: now,
            since: unix,
            attempts: 0,
        });
        o.attempts = o.attempts.saturating_add(1);
        let age = now.saturating_duration_since(o.started);
        if self.window.exceeded(age) || self.policy.max_attempts.is_some_and(|m| o.attempts > m) {
            return Verdict::GiveUp;
        }
        let mut wait = self.policy.backoff.delay_with(o.attempts, unit);
        if !self.window.0.is_zero() {
            wait = wait.min(self.window.0.saturating_sub(age));
        }
        Verdict::Wait(wait.max(MIN_WAIT))
    }

    /// The operation made progress: the outage under way (if any) is over. True if there was one.
    pub fn recovered(&mut self) -> bool {
        self.outage.take().is_some()
    }

    /// The outage under way.
    pub fn outage(&self) -> Option<&Outage> {
        self.outage.as_ref()
    }

    /// Failures in the outage under way (0 when none).
    pub fn attempts(&self) -> u32 {
        self.outage.map_or(0, |o| o.attempts)
    }

    /// How long the outage under way has lasted.
    pub fn age(&self) -> Duration {
        self.outage.map_or(Duration::ZERO, |o| o.started.elapsed())
    }

    /// When the outage under way is given up (UNIX seconds), unless the window is unlimited.
    pub fn gives_up_at(&self) -> Option<u64> {
        self.outage.and_then(|o| self.window.gives_up_at(o.since))
    }

    /// The retry window.
    pub fn window(&self) -> RetryWindow {
        self.window
    }
}

/// A random number in `[0, 1)` for jitter (from the standard library's randomly keyed hasher:
/// no generator to seed, and jitter needs no quality beyond "not the same in every process").
fn random_unit() -> f64 {
    let h = std::collections::hash_map::RandomState::new().hash_one(0u8);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn every_named_code_is_classified_by_its_entry() {
        for c in SERVER_CODES {
            if c.code == ER_OPTION_PREVENTS_STATEMENT {
                continue;
            }
            assert_eq!(classify_server(c.code, "x"), c.kind, "{}", c.name);
            assert!(!c.why.is_empty(), "{}", c.name);
        }
        let mut codes: Vec<u16> = SERVER_CODES.iter().map(|c| c.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), SERVER_CODES.len(), "a code is named twice");
    }

    #[test]
    fn lock_conflicts_and_shutdowns_are_transient() {
        for code in [
            ER_LOCK_WAIT_TIMEOUT,
            ER_LOCK_DEADLOCK,
            ER_SERVER_SHUTDOWN,
            ER_CONNECTION_KILLED,
        ] {
            assert_eq!(classify_mysql(&server(code, "x")), ErrorKind::Transient, "{code}");
        }
        assert!(is_lock_conflict(1205) && is_lock_conflict(1213) && !is_lock_conflict(1062));
    }

    #[test]
    fn a_lost_connection_is_transient_as_the_rust_client_reports_it() {
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )));
        assert_eq!(classify_mysql(&io), ErrorKind::Transient);
        let closed = mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed);
        assert_eq!(classify_mysql(&closed), ErrorKind::Transient);
        // The C client's codes never arrive from a server; one that did would be unknown.
        assert_eq!(classify_server(2013, "Lost connection"), ErrorKind::Definite);
    }

    #[test]
    fn read_only_is_transient_but_other_options_are_not() {
        let ro =
            "The MariaDB server is running with the --read-only option so it cannot execute this statement";
        let sro = "The MySQL server is running with the --super-read-only option so it cannot execute this statement";
        let sfp = "The MySQL server is running with the --secure-file-priv option so it cannot execute this statement";
        assert_eq!(classify_mysql(&server(1290, ro)), ErrorKind::Transient);
        assert_eq!(classify_mysql(&server(1290, sro)), ErrorKind::Transient);
        assert_eq!(classify_mysql(&server(1290, sfp)), ErrorKind::Definite);
    }

    #[test]
    fn unknown_and_content_errors_are_definite() {
        for code in [1045, 1062, 1064, 1146, 1236, 1265] {
            assert_eq!(classify_mysql(&server(code, "x")), ErrorKind::Definite, "{code}");
        }
    }

    #[test]
    fn the_outage_policy_doubles_to_its_ceiling() {
        let b = Policy::OUTAGE.backoff;
        let waits: Vec<u64> = (1..=7).map(|a| b.base(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn the_chunk_budget_is_three_retries() {
        let mut r = Retry::new(Policy::CHUNK, RetryWindow(Duration::ZERO));
        let t = Instant::now();
        for a in 1..=3 {
            assert!(matches!(r.failed_at(t, 0, 0.0), Verdict::Wait(_)), "attempt {a}");
        }
        assert_eq!(r.failed_at(t, 0, 0.0), Verdict::GiveUp);
        assert!(r.recovered());
        assert!(matches!(r.failed_at(t, 0, 0.0), Verdict::Wait(_)));
        assert_eq!(r.attempts(), 1);
    }

    #[test]
    fn the_window_gives_up_and_reports_when() {
        let mut r = Retry::new(Policy::OUTAGE, RetryWindow(Duration::from_secs(60)));
        let t = Instant::now();
        assert!(matches!(r.failed_at(t, 1000, 0.5), Verdict::Wait(_)));
        assert_eq!(r.gives_up_at(), Some(1060));
        assert_eq!(
            r.failed_at(t + Duration::from_secs(60), 1060, 0.5),
            Verdict::GiveUp
        );
    }

    proptest! {
        #[test]
        fn jitter_only_shortens_and_max_is_a_ceiling(
            first_ms in 1u64..10_000, max_ms in 1u64..100_000, jitter in 0.0f64..1.0,
            attempt in 1u32..200, unit in 0.0f64..1.0,
        ) {
            let b = Backoff { first: Duration::from_millis(first_ms), max: Duration::from_millis(max_ms), jitter };
            let base = b.base(attempt);
            let d = b.delay_with(attempt, unit);
            prop_assert!(d <= base);
            prop_assert!(base <= b.max);
            prop_assert!(d >= base.mul_f64(1.0 - jitter) - Duration::from_nanos(1));
            prop_assert!(b.base(attempt + 1) >= base);
        }

        #[test]
        fn a_wait_never_passes_the_window_and_giving_up_follows_it(
            window_s in 1u64..7200, steps in proptest::collection::vec((0u64..900, 0.0f64..1.0), 1..40),
        ) {
            let window = Duration::from_secs(window_s);
            let mut r = Retry::new(Policy::OUTAGE, RetryWindow(window));
            let start = Instant::now();
            // The outage starts at the first failure (at 0).
            let mut at = Duration::ZERO;
            for (i, (gap, unit)) in steps.into_iter().enumerate() {
                if i > 0 {
                    at += Duration::from_secs(gap);
                }
                match r.failed_at(start + at, 0, unit) {
                    Verdict::Wait(w) => {
                        prop_assert!(at < window);
                        prop_assert!(w >= MIN_WAIT);
                        prop_assert!(w <= (window - at).max(MIN_WAIT));
                        prop_assert!(w <= Policy::OUTAGE.backoff.max);
                    }
                    Verdict::GiveUp => prop_assert!(at >= window),
                }
            }
        }
    }
}
