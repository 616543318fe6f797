//! The applier: replays the source binlog on the target from the snapshot position, exactly
//! once, until the caller completes (cuts over) or cancels.
//!
//! - A reader task ([`feed`]) reads and translates events ahead of the applier into a bounded
//!   queue. The coordinator ([`session`]) decodes rows with the schema as of the event
//!   ([`schema_cache`]), groups consecutive source transactions into batches and hands them to
//!   apply workers ([`workers`]), each on its own target connection. Batches whose conflict keys
//!   ([`keys`]: primary and unique key values of every before and after image) are disjoint run
//!   side by side; a batch that conflicts with a running one is queued behind it on the same
//!   worker.
//! - Batches **commit in source order**, each with the checkpoint UPDATE
//!   (`ferry_meta.replay_checkpoint`) in the same target transaction: the target always holds
//!   a prefix of the source's history, the checkpoint names it exactly, and a kill at any moment
//!   loses or repeats nothing. A source transaction is never split (a batch holds whole
//!   transactions); rollback groups are never applied. Groups without selected changes only move
//!   the in-memory position, which is written lazily (about once a second) on its own.
//! - Serial points: DDL, changes of a table without a row key, very large transactions,
//!   statements inside a transaction and changes that cascade through foreign keys
//!   ([`cascade`]: applied with the target's foreign-key checks on, so its InnoDB repeats the
//!   source's cascade) and changes of system-versioned tables ([`versioned`]: repeated at the
//!   source's time) drain the workers and run on the coordinator's connection.
//!   DDL is not transactional: its checkpoint is written right after the statement succeeds; a
//!   DDL that fails with "already exists"/"doesn't exist" as the first group after a (re)start
//!   is taken as applied (the process died between the DDL and its checkpoint).
//! - Rows are applied with exact literals ([`rowsql`]) under a conflict policy ([`rowapply`]);
//!   from the earliest to the latest chunk snapshot of a resumed load, idempotently.
//!   MySQL partial JSON updates run one guarded statement per JSON diff ([`json_diff_apply`]).
//!   [`apply_rows_event`] applies one rows event the same way outside a replay session.
//! - Lag: seconds behind are measured from the later of the last time the applier was caught up
//!   with the source's binlog end and the source timestamp of the last applied group; bytes
//!   behind from the source's end summed across files ([`lag`]). Both keep growing while the
//!   apply is paused ([`ReplayControl::set_apply_paused`]) or blocked.
//! - Transient errors reconnect both sides with backoff ([`ferry_core::retry::Policy::OUTAGE`]:
//!   1 s, 2 s, … 30 s, with jitter) and resume from the checkpoint; definite errors end the replay. An outage (transient failures without progress
//!   in between) is reported as [`ProgressEvent::Trouble`] at every attempt (which side, the
//!   error, the attempt, since when) and ends with [`ProgressEvent::Recovered`] once the replay
//!   catches up or applies past where it failed; while it lasts, progress events keep coming
//!   with the lag in seconds growing and the bytes behind unknown. An outage longer than
//!   [`ReplayOptions::retry_window`] ends the replay with its last error.

mod cascade;
pub mod checkpoint;
mod compact;
#[cfg(test)]
mod compact_model;
pub mod ddl;
mod ddl_map;
mod ddl_session;
mod dirty;
mod feed;
mod json_diff_apply;
mod keys;
pub mod lag;
mod one_event;
mod rowapply;
pub mod rowmap;
pub mod rowsql;
mod schedule;
#[cfg(test)]
mod schedule_props;
pub mod schema_cache;
mod session;
mod versioned;
mod workers;
pub mod xa;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::progress::{unix_now, ProgressEvent, ProgressSink, RetryWindow};
use ferry_core::retry::{Policy, Retry, Verdict};
use ferry_core::throttle::Throttle;
use ferry_core::{Endpoint, ErrorKind, Selection};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::watch;
use tracing::{info, info_span, warn, Instrument};

pub use ddl::DdlPolicy;
pub use one_event::apply_rows_event;

use self::session::Session;
use crate::error::ReplayError;
use crate::event::BinlogPos;

/// What to do when a change does not fit the target's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// An insert of an existing key, or an update/delete of a missing row, fails the replay.
    #[default]
    Stop,
    /// Write the source's row anyway (REPLACE / upsert; a missing row to delete is ignored).
    Overwrite,
    /// Skip the change and count it.
    Ignore,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The job's key (the checkpoint row's key on the target).
    pub job_key: String,
    /// The replica server id; `None` derives one from the job key ([`derive_server_id`]).
    pub server_id: Option<u32>,
    pub ddl_policy: DdlPolicy,
    pub conflict: ConflictPolicy,
    /// Rows per second applied (the bytes limit is not used by the replay).
    pub throttle: Arc<Throttle>,
    /// Start here when the job has no replay checkpoint and no load snapshot (tests, or a
    /// replay started by hand).
    pub start: Option<BinlogPos>,
    /// Apply up to this position and complete, as if completion had been requested there (a
    /// full-only job replaying its lock-free load's window).
    pub stop_at: Option<BinlogPos>,
    /// A GTID state whose transactions are not replayed (`Ferry.StartPosition.Gtid`: the target
    /// holds them already).
    pub skip_gtids: Option<ferry_core::Position>,
    /// Heartbeat period asked from the source.
    pub heartbeat: Duration,
    /// Progress event period.
    pub progress_every: Duration,
    /// How long one outage (transient failures without progress in between) is retried before
    /// the replay fails with its last error (`Ferry.RetryWindowSeconds`; zero: until stopped).
    pub retry_window: RetryWindow,
    /// Apply workers (target connections applying batches side by side); 1 = serial.
    pub workers: usize,
    /// A batch (one target commit) closes at this many source transactions…
    pub batch_transactions: usize,
    /// … or this many rows …
    pub batch_rows: usize,
    /// … or this many bytes of row images (estimated); a source transaction is never split.
    /// Large batches matter: with keys spread at random most batches share a key with one in
    /// flight and queue behind it, so the per-commit cost decides the catch-up rate
    /// (`benches/replay.sh`: 64 transactions per batch ran at 1.4× the native replica, 1024 at 2×).
    pub batch_bytes: usize,
    /// Events read ahead of the applier (the reader blocks when the queue is full).
    pub read_ahead_events: usize,
    /// False (`Ferry.TargetBinlog = false`): the replay's writes stay out of the target's binlog
    /// (`SET SESSION sql_log_bin = 0` on every target session of the applier).
    pub target_binlog: bool,
    /// Continuous verification: the chunk maps whose chunks each applied change marks dirty
    /// (`ferry_meta.verify_dirty`, in the same target transaction as the checkpoint); `None`:
    /// no marks.
    pub dirty: Option<ferry_core::chunkmap::DirtyTracker>,
    /// The job's ownership epoch (a cluster node's claim): every checkpoint commit checks it in
    /// the same round trip as its `COMMIT` ([`ferry_core::fence`]); `None`: no check, no
    /// statement added.
    pub fence: Option<ferry_core::fence::Fence>,
}

/// Default number of apply workers.
pub const DEFAULT_WORKERS: usize = 4;

impl ReplayOptions {
    /// Defaults for a job.
    pub fn new(job_key: impl Into<String>) -> Self {
        ReplayOptions {
            job_key: job_key.into(),
            server_id: None,
            ddl_policy: DdlPolicy::All,
            conflict: ConflictPolicy::Stop,
            throttle: Arc::new(Throttle::new(0, 0)),
            start: None,
            stop_at: None,
            skip_gtids: None,
            heartbeat: Duration::from_secs(1),
            progress_every: Duration::from_secs(1),
            retry_window: RetryWindow::default(),
            workers: default_workers(),
            batch_transactions: 1024,
            batch_rows: 32_000,
            batch_bytes: 16 << 20,
            read_ahead_events: 4096,
            target_binlog: true,
            dirty: None,
            fence: None,
        }
    }
}

/// The apply workers of a job that does not set `Ferry.ApplyWorkers`: `FERRY_REPLAY_WORKERS`
/// (1–64), else [`DEFAULT_WORKERS`]. An unusable value is reported once and ignored.
pub fn default_workers() -> usize {
    static WARNED: std::sync::Once = std::sync::Once::new();
    match std::env::var("FERRY_REPLAY_WORKERS") {
        Err(_) => DEFAULT_WORKERS,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                WARNED.call_once(|| {
                    warn!(value = %v, default = DEFAULT_WORKERS, "FERRY_REPLAY_WORKERS must be a number from 1 to 64: using the default");
                });
                DEFAULT_WORKERS
            }
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Run,
    Complete,
    Cancel,
}

/// Lets the caller complete (cut over) or cancel a running replay, and see whether it is ready
/// to complete. Clones share the same replay.
#[derive(Debug, Clone)]
pub struct ReplayControl {
    req: Arc<watch::Sender<Request>>,
    ready: Arc<watch::Sender<bool>>,
    /// Pause requested by the caller.
    pause: Arc<watch::Sender<bool>>,
    /// The applier holds: paused at a transaction boundary, checkpoint committed.
    holding: Arc<watch::Sender<bool>>,
}

impl Default for ReplayControl {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayControl {
    /// A new control (running, not ready).
    pub fn new() -> Self {
        ReplayControl {
            req: Arc::new(watch::channel(Request::Run).0),
            ready: Arc::new(watch::channel(false).0),
            pause: Arc::new(watch::channel(false).0),
            holding: Arc::new(watch::channel(false).0),
        }
    }
    /// Completes: the replay reads the source's current end, applies up to it and stops.
    pub fn complete(&self) {
        self.req.send_if_modified(|r| {
            if *r == Request::Run {
                *r = Request::Complete;
                true
            } else {
                false
            }
        });
    }
    /// Stops at the next group boundary without completing; the next run resumes.
    pub fn cancel(&self) {
        self.req.send_replace(Request::Cancel);
    }
    /// True once the replay has caught up with the source (lag under a second).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
    /// Waits until the replay is ready to complete.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }
    /// Pauses (`true`) or resumes (`false`) the apply. Paused, the applier finishes the source
    /// transaction in hand, commits every batch in flight and its checkpoint, then holds: nothing
    /// more is applied, while the reader keeps reading into its bounded queue (and then blocks)
    /// and lag keeps being reported, growing as the source moves on. Completion and cancel still
    /// work (a completion waits for the resume to reach its position).
    pub fn set_apply_paused(&self, paused: bool) {
        self.pause.send_if_modified(|v| {
            let changed = *v != paused;
            *v = paused;
            changed
        });
        if !paused {
            self.set_holding(false);
        }
    }
    /// True once a requested pause holds: the applier stopped at a transaction boundary and the
    /// checkpoint on the target names exactly what is applied (it does not move until resumed).
    pub fn is_apply_paused(&self) -> bool {
        *self.holding.borrow() && *self.pause.borrow()
    }
    /// Waits until a requested pause holds ([`Self::is_apply_paused`]).
    pub async fn wait_apply_paused(&self) {
        let mut rx = self.holding.subscribe();
        let _ = rx.wait_for(|h| *h).await;
    }
    fn pause_requested(&self) -> bool {
        *self.pause.borrow()
    }
    fn set_holding(&self, h: bool) {
        self.holding.send_if_modified(|v| {
            let changed = *v != h;
            *v = h;
            changed
        });
    }
    fn set_ready(&self, r: bool) {
        self.ready.send_if_modified(|v| {
            let changed = *v != r;
            *v = r;
            changed
        });
    }
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    /// Where this run started.
    pub start: BinlogPos,
    /// The position after the last applied group (the final checkpoint).
    pub final_pos: BinlogPos,
    /// The GTID state there, when known.
    pub final_gtid: Option<String>,
    /// True when stopped by `complete()`; false when cancelled.
    pub completed: bool,
    /// The source's end when completion was requested.
    pub cutover_target: Option<BinlogPos>,
    pub transactions: u64,
    pub events: u64,
    pub rows: u64,
    pub ddl: u64,
    /// Changes skipped under the Ignore policy (or already present in idempotent mode).
    pub skipped: u64,
    /// Row changes of a kind `Ferry.DbList` `dml_op` does not list, left out.
    pub excluded: u64,
    pub reconnects: u32,
    pub elapsed: Duration,
}

/// A replica server id from the job key: stable, in `1000..2^31`.
pub fn derive_server_id(job_key: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in job_key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    1000 + h % (0x7fff_ffff - 1000)
}

/// The target session of the applier: UTC, no FK checks, utf8mb4, and a strict `sql_mode`
/// ([`rowsql::REPLAY_SQL_MODE`]), so a value the target cannot hold exactly (a narrower column,
/// an out-of-range number, an invalid string for the column's charset) stops the replay with a
/// definite error naming the table instead of being truncated or adjusted. Zero dates and
/// invalid days still copy (no `NO_ZERO_DATE`/`NO_ZERO_IN_DATE`, `ALLOW_INVALID_DATES`). DDL
/// replayed in this session is strict too: an `ALTER … MODIFY` that would truncate existing
/// target data fails instead of truncating it.
pub fn target_session_setup() -> Vec<String> {
    vec![
        "SET time_zone = '+00:00'".into(),
        // strict: a value the target would truncate or adjust is an error, not a silent change
        format!("SET SESSION sql_mode = '{}'", rowsql::REPLAY_SQL_MODE),
        "SET foreign_key_checks = 0".into(),
        "SET NAMES utf8mb4".into(),
    ]
}

/// A target connection as the replay opens it: [`target_session_setup`] (and `sql_log_bin = 0`
/// unless `target_binlog`), with CLIENT_FOUND_ROWS, so an update counts the rows it matched even
/// when it changed nothing (the row applier relies on it).
pub async fn connect_target(dst: &Endpoint, target_binlog: bool) -> Result<Conn, ReplayError> {
    let mut setup = target_session_setup();
    if !target_binlog {
        setup.push("SET SESSION sql_log_bin = 0".into());
    }
    // the handshake in a task of its own: a client-library panic is a definite error
    ferry_core::connect::connect_with(dst, setup, |o| o.client_found_rows(true))
        .await
        .map_err(ReplayError::TargetConnect)
}

pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// State kept across reconnects.
#[derive(Debug)]
pub(crate) struct State {
    start: Option<BinlogPos>,
    applied: Option<BinlogPos>,
    applied_gtid: Option<String>,
    /// Source timestamp of the last applied group.
    applied_ts: u32,
    flushed: Option<BinlogPos>,
    /// Wall-clock seconds when the applied position last reached the source's end.
    caught_up_at: f64,
    idempotent_until: Option<BinlogPos>,
    cutover: Option<BinlogPos>,
    events: u64,
    rows: u64,
    transactions: u64,
    ddl: u64,
    /// Shared with the apply workers.
    skipped: Arc<AtomicU64>,
    /// Row changes `Ferry.DbList` `dml_op` left out (shared with the schema cache).
    excluded: Arc<AtomicU64>,
    reconnects: u32,
    announced_ready: bool,
    last_progress: (Instant, u64, u64),
    /// After a lock wait between workers: apply serially until the applied position passes this.
    serial_until: Option<BinlogPos>,
    /// Wall-clock seconds when the replay started (the lag's origin while nothing else is known).
    started_at: f64,
    /// Transient failures without progress in between (the outage under way, if any).
    retry: Retry,
    /// The applied position at the last failure: applying past it ends the outage.
    failed_at: Option<BinlogPos>,
    /// The last bytes behind computed from a fresh source end.
    last_lag_bytes: u64,
}

impl State {
    /// Ends the outage when the replay made progress: caught up, or applied past where the last
    /// attempt failed. Returns true when it ended.
    pub(crate) fn recover_if_progressing(&mut self, caught_up: bool) -> bool {
        if self.retry.outage().is_none() {
            return false;
        }
        let moved = match (&self.applied, &self.failed_at) {
            (Some(a), Some(at)) => a != at && lag::pos_ge(a, at),
            _ => false,
        };
        if caught_up || moved {
            self.failed_at = None;
            return self.retry.recovered();
        }
        false
    }
}

pub(crate) enum SessionEnd {
    Completed,
    Cancelled,
}

/// Replays the source binlog on the target until completed or cancelled (see the module docs).
pub async fn run_replay(
    src: &Endpoint,
    dst: &Endpoint,
    sel: &Selection,
    opts: ReplayOptions,
    progress: ProgressSink,
    control: ReplayControl,
) -> Result<ReplaySummary, ReplayError> {
    let span = info_span!("replay", job = %opts.job_key);
    run_replay_inner(src, dst, sel, opts, progress, control)
        .instrument(span)
        .await
}

async fn pick_server_id(src: &Endpoint, dst: &Endpoint, opts: &ReplayOptions) -> Result<u32, ReplayError> {
    let mut id = opts.server_id.unwrap_or_else(|| derive_server_id(&opts.job_key));
    let mut taken = Vec::new();
    for ep in [src, dst] {
        if let Ok(mut c) = ep.connect(Vec::new()).await {
            if let Ok(Some(v)) = c.query_first::<u32, _>("SELECT @@server_id").await {
                taken.push(v);
            }
            let _ = c.disconnect().await;
        }
    }
    while taken.contains(&id) {
        id = id.wrapping_add(1).max(1000);
    }
    Ok(id)
}

async fn run_replay_inner(
    src: &Endpoint,
    dst: &Endpoint,
    sel: &Selection,
    opts: ReplayOptions,
    progress: ProgressSink,
    control: ReplayControl,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let server_id = pick_server_id(src, dst, &opts).await?;
    info!(server_id, "replay starting");
    let mut st = State {
        start: None,
        applied: None,
        applied_gtid: None,
        applied_ts: 0,
        flushed: None,
        caught_up_at: 0.0,
        idempotent_until: None,
        cutover: None,
        events: 0,
        rows: 0,
        transactions: 0,
        ddl: 0,
        skipped: Arc::new(AtomicU64::new(0)),
        excluded: Arc::new(AtomicU64::new(0)),
        reconnects: 0,
        announced_ready: false,
        last_progress: (Instant::now(), 0, 0),
        serial_until: None,
        started_at: now_secs(),
        retry: Retry::new(Policy::OUTAGE, opts.retry_window),
        failed_at: None,
        last_lag_bytes: 0,
    };
    let mut req_rx = control.req.subscribe();
    loop {
        let mut s = Session::new(src, dst, sel, &opts, &progress, &control, server_id, &mut st);
        let r = s.run(&mut req_rx).await;
        control.set_ready(false);
        control.set_holding(false);
        match r {
            Ok(end) => {
                let summary = ReplaySummary {
                    start: st.start.clone().unwrap_or_else(|| BinlogPos::new("", 4)),
                    final_pos: st.applied.clone().unwrap_or_else(|| BinlogPos::new("", 4)),
                    final_gtid: st.applied_gtid.clone(),
                    completed: matches!(end, SessionEnd::Completed),
                    cutover_target: st.cutover.clone(),
                    transactions: st.transactions,
                    events: st.events,
                    rows: st.rows,
                    ddl: st.ddl,
                    skipped: st.skipped.load(Ordering::Relaxed),
                    excluded: st.excluded.load(Ordering::Relaxed),
                    reconnects: st.reconnects,
                    elapsed: started.elapsed(),
                };
                info!(final_pos = %summary.final_pos, completed = summary.completed, "replay stopped");
                return Ok(summary);
            }
            Err(e) if e.kind() == ErrorKind::Transient => {
                st.reconnects += 1;
                st.failed_at = st.applied.clone();
                let verdict = st.retry.failed();
                let (attempts, outage_age) = (st.retry.attempts(), st.retry.age());
                let since = st.retry.outage().map_or_else(unix_now, |o| o.since);
                let side = lag::error_side(&e);
                let Verdict::Wait(wait) = verdict else {
                    warn!(error = %e, side, attempts, seconds = outage_age.as_secs(), "replay interrupted for longer than the retry window: giving up");
                    return Err(e);
                };
                warn!(error = %e, side, attempts, wait_ms = wait.as_millis() as u64, "replay interrupted; resuming from the checkpoint");
                progress(ProgressEvent::Retrying {
                    what: "incremental replay".into(),
                    error: e.to_string(),
                    attempt: st.reconnects,
                });
                progress(ProgressEvent::Trouble {
                    what: "incremental replay".into(),
                    side: side.into(),
                    error: e.to_string(),
                    attempt: attempts,
                    since,
                    gives_up_at: st.retry.gives_up_at(),
                });
                // Wait (never past the window's end), reporting the lag meanwhile.
                let until = Instant::now() + wait;
                loop {
                    report_disconnected(&mut st, &progress);
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    let step = (until - now).min(opts.progress_every.max(Duration::from_millis(100)));
                    tokio::select! {
                        _ = tokio::time::sleep(step) => {}
                        _ = req_rx.wait_for(|r| *r == Request::Cancel) => break,
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// A progress event while no session runs (between attempts): the lag in seconds grows from
/// the last moment the target was known current, the bytes behind are unknown.
fn report_disconnected(st: &mut State, progress: &ProgressSink) {
    let lag_seconds = lag::seconds_behind(now_secs(), false, st.caught_up_at, st.applied_ts, st.started_at);
    let applied = st.applied.as_ref().map(|p| p.to_string()).unwrap_or_default();
    st.last_progress = (Instant::now(), st.events, st.rows);
    progress(ProgressEvent::ReplayProgress {
        read_pos: applied.clone(),
        applied_pos: applied,
        lag_seconds,
        lag_bytes: st.last_lag_bytes,
        lag_bytes_known: false,
        events: st.events,
        rows: st.rows,
        transactions: st.transactions,
        events_per_sec: 0.0,
        rows_per_sec: 0.0,
        excluded: st.excluded.load(Ordering::Relaxed),
    });
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_are_stable_and_in_range() {
        let a = derive_server_id("job-a");
        assert_eq!(a, derive_server_id("job-a"));
        assert_ne!(a, derive_server_id("job-b"));
        for k in ["", "x", "a very long job name with spaces", "ü"] {
            let id = derive_server_id(k);
            assert!((1000..0x7fff_ffff).contains(&id));
        }
    }

    #[test]
    fn control_requests() {
        let c = ReplayControl::new();
        let rx = c.req.subscribe();
        c.complete();
        assert_eq!(*rx.borrow(), Request::Complete);
        c.cancel();
        c.complete();
        assert_eq!(*rx.borrow(), Request::Cancel, "cancel wins");
        assert!(!c.is_ready());
        c.set_ready(true);
        assert!(c.is_ready());
    }

    #[test]
    fn pause_is_reported_once_it_holds() {
        let c = ReplayControl::new();
        c.set_apply_paused(true);
        assert!(c.pause_requested());
        assert!(!c.is_apply_paused(), "requested, not yet holding");
        c.set_holding(true);
        assert!(c.clone().is_apply_paused());
        c.set_apply_paused(false);
        assert!(!c.is_apply_paused());
        assert!(!c.pause_requested());
    }
}
