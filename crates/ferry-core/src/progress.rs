//! Progress events that engines emit and the job runner (or the CLI) aggregates.
//!
//! Engines never call the API or the job store; they call a [`ProgressSink`], a cheap callback
//! owned by whoever runs them. Events carry deltas; the receiver keeps the totals.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::position::SnapshotPosition;

/// Something an engine reports while it works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProgressEvent {
    /// A phase started (`structure`, `full_data`, `post_data`, …).
    PhaseStarted { phase: String },
    /// A phase ended.
    PhaseFinished { phase: String },
    /// A DDL statement was applied on the target.
    ObjectCreated { kind: String, name: String },
    /// The full load knows its work: tables, chunks and estimated rows and bytes.
    LoadPlanned {
        tables: u64,
        chunks: u64,
        chunks_done: u64,
        /// Rows and bytes of the chunks done before this run (a resumed load).
        rows_done: u64,
        bytes_done: u64,
        estimated_rows: u64,
        estimated_bytes: u64,
    },
    /// One table's part of the full load's plan, sent for every table just before
    /// [`ProgressEvent::LoadPlanned`]: its chunks, those done by an earlier run with their rows
    /// and bytes, and the source's row estimate (`table` as in [`ProgressEvent::ChunkDone`]).
    TablePlanned {
        table: String,
        chunks: u64,
        chunks_done: u64,
        rows_done: u64,
        bytes_done: u64,
        estimated_rows: u64,
    },
    /// The consistent snapshot is open.
    SnapshotTaken {
        position: SnapshotPosition,
        lock_ms: u64,
    },
    /// A chunk was committed on the target.
    ChunkDone { table: String, rows: u64, bytes: u64 },
    /// Every chunk of a table was committed.
    TableDone { table: String },
    /// The incremental replay's state, about once a second. Totals since the replay started;
    /// rates over the last interval.
    ReplayProgress {
        /// The reader's position (after the last event read).
        read_pos: String,
        /// The position after the last group applied on the target (the checkpoint).
        applied_pos: String,
        /// Seconds the target is behind the source (0 when caught up).
        lag_seconds: f64,
        /// Binlog bytes between the applied position and the source's end (the last known
        /// value when `lag_bytes_known` is false).
        lag_bytes: u64,
        /// False while the source's binlog end cannot be read (the source is unreachable): the
        /// bytes behind are unknown, `lag_bytes` is only a lower bound.
        #[serde(default = "yes")]
        lag_bytes_known: bool,
        events: u64,
        rows: u64,
        transactions: u64,
        events_per_sec: f64,
        rows_per_sec: f64,
        /// Row changes left out because `Ferry.DbList` `dml_op` does not list their kind.
        #[serde(default)]
        excluded: u64,
    },
    /// The replay caught up with the source: the job may be completed (cut over).
    ReadyToComplete { position: String },
    /// The replay starts inside the window of a load whose chunks were read at different
    /// positions: the target is not consistent before `position`.
    InconsistentUntil { position: String },
    /// The replay passed the last read view of a load whose chunks were read at different
    /// positions (a lock-free or resumed load): the target is consistent from here on.
    Consistent { position: String },
    /// A transient error was met; the engine retries.
    Retrying {
        what: String,
        error: String,
        attempt: u32,
    },
    /// An engine cannot make progress and keeps retrying: the current problem. Sent at every
    /// failed attempt of one outage (same `since`); [`ProgressEvent::Recovered`] ends it.
    Trouble {
        /// `incremental replay`, `full load`, `verification`.
        what: String,
        /// [`SIDE_SOURCE`], [`SIDE_TARGET`], or empty when it cannot be told.
        side: String,
        /// The last error.
        error: String,
        /// Failed attempts in this outage (1 at the first).
        attempt: u32,
        /// UNIX seconds of the first failure of this outage.
        since: u64,
        /// UNIX seconds at which the engine gives up (`Ferry.RetryWindowSeconds`); `None`:
        /// it retries until stopped.
        gives_up_at: Option<u64>,
    },
    /// The problem reported by [`ProgressEvent::Trouble`] is over: the engine made progress.
    Recovered { what: String },
    /// Continuous verification's freshness, after each background pass: chunks planned, dirty
    /// (changed since their last digest), different (last digests differed), never digested;
    /// rows verified so far; seconds since the oldest change not verified yet and since the
    /// last full pass.
    ///
    /// Also: tables planned, fully digested and with a differing chunk; the rows of the digested
    /// chunks on each side; the UNIX second the last full pass started (`None`: none in this
    /// run of the job).
    VerifyFreshness {
        chunks: u64,
        chunks_dirty: u64,
        chunks_differing: u64,
        chunks_unverified: u64,
        rows_verified: u64,
        oldest_unverified_seconds: Option<u64>,
        since_full_pass_seconds: Option<u64>,
        #[serde(default)]
        tables: u64,
        #[serde(default)]
        tables_verified: u64,
        #[serde(default)]
        tables_differing: u64,
        #[serde(default)]
        src_rows: u64,
        #[serde(default)]
        dst_rows: u64,
        #[serde(default)]
        full_pass_started_at: Option<u64>,
    },
}

/// Continuous verification's chunks and ages as `ferry run` and the API say them: `chunks: M
/// (D dirty, X different, U not yet); oldest unverified change S s old; full pass T s ago`.
pub fn freshness_summary(
    chunks: u64,
    dirty: u64,
    differing: u64,
    unverified: u64,
    oldest_unverified_seconds: Option<u64>,
    since_full_pass_seconds: Option<u64>,
) -> String {
    format!(
        "chunks: {chunks} ({dirty} dirty, {differing} different, {unverified} not yet); oldest unverified \
         change {}; full pass {}",
        oldest_unverified_seconds.map_or_else(|| "none".to_string(), |s| format!("{s} s old")),
        since_full_pass_seconds.map_or_else(|| "never".to_string(), |s| format!("{s} s ago"))
    )
}

/// [`ProgressEvent::Trouble`]'s `side` for the source server.
pub const SIDE_SOURCE: &str = "source";
/// [`ProgressEvent::Trouble`]'s `side` for the target server.
pub const SIDE_TARGET: &str = "target";

fn yes() -> bool {
    true
}

/// UNIX seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A retry window: how long an engine keeps retrying one outage before it gives up.
/// `Duration::ZERO` (`Ferry.RetryWindowSeconds = 0`) retries until stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryWindow(pub std::time::Duration);

impl Default for RetryWindow {
    fn default() -> Self {
        RetryWindow(std::time::Duration::from_secs(DEFAULT_RETRY_WINDOW_SECS))
    }
}

/// `Ferry.RetryWindowSeconds`' default: one hour.
pub const DEFAULT_RETRY_WINDOW_SECS: u64 = 3600;

impl RetryWindow {
    /// True when an outage that began `elapsed` ago has outlived the window.
    pub fn exceeded(&self, elapsed: std::time::Duration) -> bool {
        !self.0.is_zero() && elapsed >= self.0
    }
    /// When an outage that began at `since` (UNIX seconds) is given up.
    pub fn gives_up_at(&self, since: u64) -> Option<u64> {
        (!self.0.is_zero()).then(|| since + self.0.as_secs())
    }
}

/// The callback engines report to.
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// A sink that drops every event.
pub fn null_sink() -> ProgressSink {
    Arc::new(|_| {})
}
