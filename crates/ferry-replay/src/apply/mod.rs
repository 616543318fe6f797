//! The applier: replays the source binlog on the target from the snapshot position, exactly
//! once, until the caller completes (cuts over) or cancels.
//!
//! - Each source transaction (Begin … Commit) becomes one target transaction that ends with the
//!   checkpoint UPDATE (`ferry_meta.replay_checkpoint`) in the same transaction. Rollback groups
//!   are never applied. Groups without selected changes only move the in-memory position, which
//!   is written lazily (about once a second) on its own: skipping them again is harmless.
//! - DDL is not transactional: the checkpoint is written right after the statement succeeds; a
//!   DDL that fails with "already exists"/"doesn't exist" as the first group after a (re)start is
//!   taken as applied (the process died between the DDL and its checkpoint).
//! - Rows are decoded with the schema as of the event ([`schema_cache`]), applied with exact
//!   literals ([`rowsql`]) under a conflict policy; from the earliest to the latest chunk snapshot
//!   of a resumed load, idempotently.
//! - Lag: seconds behind are measured from the later of the last time the applier was caught up
//!   with the source's binlog end and the source timestamp of the last applied group; bytes
//!   behind from the source's end summed across files ([`lag`]).
//! - Transient errors reconnect both sides with backoff (1 s, 2 s, … 30 s) and resume from the
//!   checkpoint; definite errors end the replay.

pub mod checkpoint;
pub mod ddl;
pub mod lag;
pub mod rowsql;
pub mod schema_cache;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::throttle::Throttle;
use ferry_core::{Endpoint, ErrorKind, Selection};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use tokio::sync::watch;
use tracing::{debug, info, info_span, warn, Instrument};

pub use ddl::DdlPolicy;

use self::ddl::DdlAction;
use self::lag::{pos_ge, SourceEnd};
use self::rowsql::InsertVerb;
use self::schema_cache::{SchemaCache, TableInfo};
use crate::decode::RowPair;
use crate::error::ReplayError;
use crate::event::{BinlogPos, EventKind, ReplEvent, RowsData, RowsKind};
use crate::stream::{BinlogReader, ReaderOptions, StartPosition};

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
    /// Heartbeat period asked from the source.
    pub heartbeat: Duration,
    /// Progress event period.
    pub progress_every: Duration,
}

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
            heartbeat: Duration::from_secs(1),
            progress_every: Duration::from_secs(1),
        }
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

/// The target session of the applier.
pub fn target_session_setup() -> Vec<String> {
    vec![
        "SET time_zone = '+00:00'".into(),
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'".into(),
        "SET foreign_key_checks = 0".into(),
        "SET NAMES utf8mb4".into(),
    ]
}

async fn connect_target(dst: &Endpoint) -> Result<Conn, ReplayError> {
    let opts = OptsBuilder::from_opts(dst.opts(target_session_setup())).client_found_rows(true);
    match tokio::time::timeout(dst.connect_timeout, Conn::new(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(ReplayError::TargetConnect(ferry_core::CoreError::mysql(
            format!("cannot connect to {}", dst.display_name()),
            e,
        ))),
        Err(_) => Err(ReplayError::TargetConnect(ferry_core::CoreError::Unexpected(
            format!(
                "cannot connect to {}: no answer within {} s",
                dst.display_name(),
                dst.connect_timeout.as_secs()
            ),
        ))),
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// State kept across reconnects.
#[derive(Debug)]
struct State {
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
    skipped: u64,
    reconnects: u32,
    announced_ready: bool,
    last_progress: (Instant, u64, u64),
}

enum SessionEnd {
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
        skipped: 0,
        reconnects: 0,
        announced_ready: false,
        last_progress: (Instant::now(), 0, 0),
    };
    let mut backoff = Duration::from_secs(1);
    let mut req_rx = control.req.subscribe();
    loop {
        let session_started = Instant::now();
        let mut s = Session {
            src,
            dst,
            sel,
            opts: &opts,
            progress: &progress,
            control: &control,
            server_id,
            st: &mut st,
        };
        let r = s.run(&mut req_rx).await;
        control.set_ready(false);
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
                    skipped: st.skipped,
                    reconnects: st.reconnects,
                    elapsed: started.elapsed(),
                };
                info!(final_pos = %summary.final_pos, completed = summary.completed, "replay stopped");
                return Ok(summary);
            }
            Err(e) if e.kind() == ErrorKind::Transient => {
                if session_started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                st.reconnects += 1;
                warn!(error = %e, wait_s = backoff.as_secs(), "replay interrupted; resuming from the checkpoint");
                progress(ProgressEvent::Retrying {
                    what: "incremental replay".into(),
                    error: e.to_string(),
                    attempt: st.reconnects,
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = req_rx.wait_for(|r| *r == Request::Cancel) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

struct Session<'a> {
    src: &'a Endpoint,
    dst: &'a Endpoint,
    sel: &'a Selection,
    opts: &'a ReplayOptions,
    progress: &'a ProgressSink,
    control: &'a ReplayControl,
    server_id: u32,
    st: &'a mut State,
}

/// The open target transaction of the current group.
#[derive(Debug, Default)]
struct Group {
    open: bool,
}

fn apply_err(what: impl Into<String>, position: &BinlogPos, e: mysql_async::Error) -> ReplayError {
    ReplayError::Apply {
        what: what.into(),
        position: position.to_string(),
        source: e,
    }
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

impl Session<'_> {
    async fn run(&mut self, req_rx: &mut watch::Receiver<Request>) -> Result<SessionEnd, ReplayError> {
        let mut dst = connect_target(self.dst).await?;
        let plan = checkpoint::plan_start(&mut dst, &self.opts.job_key, self.opts.start.as_ref()).await?;
        info!(start = %plan.start, resumed = plan.resumed, idempotent_until = ?plan.idempotent_until, "replay session starts");
        if self.st.start.is_none() {
            self.st.start = Some(plan.start.clone());
        }
        self.st.applied = Some(plan.start.clone());
        self.st.flushed = Some(plan.start.clone());
        if plan.gtid.is_some() {
            self.st.applied_gtid = plan.gtid.clone();
        }
        self.st.idempotent_until = plan.idempotent_until.clone();

        // The source's end, polled in the background for lag and readiness.
        let end = Arc::new(Mutex::new(SourceEnd::default()));
        let poller = {
            let end = end.clone();
            let src = self.src.clone();
            tokio::spawn(async move {
                let mut conn: Option<Conn> = None;
                loop {
                    if conn.is_none() {
                        conn = src.connect(Vec::new()).await.ok();
                    }
                    if let Some(c) = conn.as_mut() {
                        match lag::source_end(c).await {
                            Ok(e) => {
                                if let Ok(mut g) = end.lock() {
                                    *g = e;
                                }
                            }
                            Err(e) => {
                                debug!(error = %e, "reading the source's binlog end");
                                conn = None;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        let _abort = AbortOnDrop(poller);

        let reader_opts = ReaderOptions {
            heartbeat: self.opts.heartbeat,
            ..ReaderOptions::default()
        };
        let mut reader = BinlogReader::open_with(
            self.src,
            self.server_id,
            StartPosition::FilePos(plan.start.clone()),
            reader_opts,
        )
        .await?;
        let mut cache = SchemaCache::default();
        let mut group = Group::default();
        let mut first_group = true;
        let mut tick = tokio::time::interval(self.opts.progress_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_flush = Instant::now();

        // A request made before this session.
        let pending = *req_rx.borrow_and_update();
        if pending != Request::Run {
            if let Some(end) = self.on_request(pending).await? {
                return Ok(end);
            }
        }
        loop {
            tokio::select! {
                biased;
                changed = req_rx.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let r = *req_rx.borrow_and_update();
                    if r == Request::Cancel {
                        if group.open {
                            let _ = dst.query_drop("ROLLBACK").await;
                        }
                        self.flush(&mut dst).await?;
                        reader.close().await;
                        return Ok(SessionEnd::Cancelled);
                    }
                    if let Some(end) = self.on_request(r).await? {
                        return Ok(end);
                    }
                }
                _ = tick.tick() => {
                    if !group.open && last_flush.elapsed() >= Duration::from_secs(1) {
                        self.flush(&mut dst).await?;
                        last_flush = Instant::now();
                    }
                    let snapshot = end.lock().map(|g| g.clone()).unwrap_or_default();
                    self.report(&reader, &snapshot, group.open);
                }
                ev = reader.next() => {
                    let Some(ev) = ev? else {
                        return Err(ReplayError::Disconnected {
                            position: reader.position().to_string(),
                            reason: "the binlog stream ended".into(),
                        });
                    };
                    self.on_event(&mut dst, &mut reader, &mut cache, &mut group, &mut first_group, ev).await?;
                }
            }
            if let (Some(t), Some(a)) = (&self.st.cutover, &self.st.applied) {
                if !group.open && pos_ge(a, t) {
                    self.flush(&mut dst).await?;
                    let snapshot = end.lock().map(|g| g.clone()).unwrap_or_default();
                    self.report(&reader, &snapshot, false);
                    reader.close().await;
                    let _ = dst.disconnect().await;
                    return Ok(SessionEnd::Completed);
                }
            }
        }
    }

    /// Handles complete (reads the source's end once) and cancel requests.
    async fn on_request(&mut self, r: Request) -> Result<Option<SessionEnd>, ReplayError> {
        match r {
            Request::Run => Ok(None),
            Request::Cancel => Ok(Some(SessionEnd::Cancelled)),
            Request::Complete => {
                if self.st.cutover.is_none() {
                    let mut c = self.src.connect(Vec::new()).await.map_err(ReplayError::Connect)?;
                    let end = lag::master_status(&mut c)
                        .await?
                        .ok_or_else(|| ReplayError::Unsupported {
                            what: "the source reports no binlog (SHOW MASTER STATUS is empty)".into(),
                            position: "cut-over".into(),
                        })?;
                    let _ = c.disconnect().await;
                    info!(target = %end, "completion requested: applying up to the source's current end");
                    self.st.cutover = Some(end);
                }
                Ok(None)
            }
        }
    }

    /// Writes the in-memory position when it moved past the last checkpoint (outside a group).
    async fn flush(&mut self, dst: &mut Conn) -> Result<(), ReplayError> {
        let Some(a) = self.st.applied.clone() else {
            return Ok(());
        };
        if self.st.flushed.as_ref() == Some(&a) {
            return Ok(());
        }
        let sql = checkpoint::update_sql(
            &self.opts.job_key,
            &a,
            self.st.applied_gtid.as_deref(),
            self.st.applied_ts,
        );
        dst.query_drop(sql)
            .await
            .map_err(|e| apply_err("the replay checkpoint", &a, e))?;
        self.st.flushed = Some(a);
        Ok(())
    }

    fn report(&mut self, reader: &BinlogReader, end: &SourceEnd, in_group: bool) {
        let now = now_secs();
        let applied = self.st.applied.clone().unwrap_or_else(|| reader.position());
        let caught_up = !in_group && end.end.as_ref().is_some_and(|e| pos_ge(&applied, e));
        if caught_up {
            self.st.caught_up_at = now;
        }
        let since = self.st.caught_up_at.max(f64::from(self.st.applied_ts));
        let lag_seconds = if caught_up || since == 0.0 {
            0.0
        } else {
            (now - since).max(0.0)
        };
        let lag_bytes = end.bytes_behind(&applied);
        let ready = caught_up || (self.st.caught_up_at > 0.0 && now - self.st.caught_up_at < 1.0);
        self.control.set_ready(ready);
        if ready && !self.st.announced_ready {
            self.st.announced_ready = true;
            (self.progress)(ProgressEvent::ReadyToComplete {
                position: applied.to_string(),
            });
        }
        let (t0, e0, r0) = self.st.last_progress;
        let dt = t0.elapsed().as_secs_f64().max(1e-3);
        let events_per_sec = (self.st.events - e0) as f64 / dt;
        let rows_per_sec = (self.st.rows - r0) as f64 / dt;
        self.st.last_progress = (Instant::now(), self.st.events, self.st.rows);
        (self.progress)(ProgressEvent::ReplayProgress {
            read_pos: reader.position().to_string(),
            applied_pos: applied.to_string(),
            lag_seconds,
            lag_bytes,
            events: self.st.events,
            rows: self.st.rows,
            transactions: self.st.transactions,
            events_per_sec,
            rows_per_sec,
        });
    }

    fn idempotent(&self, at: &BinlogPos) -> bool {
        self.st.idempotent_until.as_ref().is_some_and(|u| !pos_ge(at, u))
    }

    async fn on_event(
        &mut self,
        dst: &mut Conn,
        reader: &mut BinlogReader,
        cache: &mut SchemaCache,
        group: &mut Group,
        first_group: &mut bool,
        ev: ReplEvent,
    ) -> Result<(), ReplayError> {
        self.st.events += 1;
        match ev.kind {
            EventKind::Begin { .. } => {
                if group.open {
                    // Cannot happen with a consistent stream; never commit a partial group.
                    let _ = dst.query_drop("ROLLBACK").await;
                    group.open = false;
                }
            }
            EventKind::Rows(rows) => {
                let Some(info) = cache.get(dst, self.sel, &rows.db, &rows.table).await? else {
                    return Ok(());
                };
                let pairs = info.decoder.decode(&rows)?;
                self.opts.throttle.acquire(pairs.len() as u64, 0).await;
                if !group.open {
                    dst.query_drop("START TRANSACTION")
                        .await
                        .map_err(|e| apply_err("START TRANSACTION", &ev.pos, e))?;
                    group.open = true;
                }
                let idem = self.idempotent(&ev.pos);
                self.apply_rows(dst, &info, &rows, &pairs, idem).await?;
                self.st.rows += pairs.len() as u64;
            }
            EventKind::Query(q) => {
                let sql = q.sql_text().into_owned();
                match ddl::plan(&sql, &q.db, self.sel, self.opts.ddl_policy) {
                    DdlAction::Skip(reason) => {
                        if q.ends_group {
                            debug!(%reason, sql = %sql, "statement not replayed");
                        }
                    }
                    DdlAction::Apply {
                        sql: mapped,
                        use_db,
                        summary,
                        ..
                    } => {
                        if group.open {
                            warn!(sql = %summary, "DDL inside a transaction: the open target transaction is committed by it");
                        }
                        if let Some(db) = &use_db {
                            let _ = dst
                                .query_drop(format!("USE {}", ferry_core::sql::quote_ident(db)))
                                .await;
                        }
                        match dst.query_drop(mapped.as_str()).await {
                            Ok(()) => {}
                            Err(e)
                                if *first_group
                                    && server_code(&e).is_some_and(ddl::already_applied_error) =>
                            {
                                warn!(sql = %summary, error = %e, "DDL already applied before the restart: skipped");
                            }
                            Err(e) => {
                                return Err(apply_err(format!("DDL `{summary}`"), &ev.pos, e));
                            }
                        }
                        info!(sql = %summary, "DDL applied");
                        self.st.ddl += 1;
                        cache.invalidate();
                        (self.progress)(ProgressEvent::ObjectCreated {
                            kind: "ddl".into(),
                            name: summary,
                        });
                        if q.ends_group {
                            self.st.applied = Some(ev.pos.clone());
                            self.st.applied_gtid = reader.gtid_position().map(|p| p.to_string());
                            self.st.applied_ts = ev.timestamp;
                            self.flush(dst).await?;
                        }
                    }
                }
                if q.ends_group {
                    *first_group = false;
                    self.st.applied = Some(ev.pos.clone());
                    self.st.applied_gtid = reader.gtid_position().map(|p| p.to_string());
                }
            }
            EventKind::Commit { .. } => {
                let gtid = reader.gtid_position().map(|p| p.to_string());
                if group.open {
                    let cp =
                        checkpoint::update_sql(&self.opts.job_key, &ev.pos, gtid.as_deref(), ev.timestamp);
                    dst.query_drop(cp)
                        .await
                        .map_err(|e| apply_err("the replay checkpoint", &ev.pos, e))?;
                    dst.query_drop("COMMIT")
                        .await
                        .map_err(|e| apply_err("COMMIT", &ev.pos, e))?;
                    group.open = false;
                    self.st.transactions += 1;
                    self.st.flushed = Some(ev.pos.clone());
                    self.st.applied_ts = ev.timestamp;
                }
                *first_group = false;
                self.st.applied = Some(ev.pos.clone());
                self.st.applied_gtid = gtid;
            }
            EventKind::Rollback { .. } => {
                if group.open {
                    dst.query_drop("ROLLBACK")
                        .await
                        .map_err(|e| apply_err("ROLLBACK", &ev.pos, e))?;
                    group.open = false;
                }
                *first_group = false;
                self.st.applied = Some(ev.pos.clone());
                self.st.applied_gtid = reader.gtid_position().map(|p| p.to_string());
            }
            EventKind::Heartbeat | EventKind::Rotate { .. } => {
                if !group.open && !reader.in_group() {
                    let moved = self.st.applied.as_ref().is_none_or(|a| pos_ge(&ev.pos, a));
                    if moved && !ev.pos.file.is_empty() {
                        self.st.applied = Some(ev.pos.clone());
                    }
                    if matches!(ev.kind, EventKind::Heartbeat) {
                        // The source had nothing more to send: caught up at this moment.
                        self.st.caught_up_at = now_secs();
                    }
                }
            }
        }
        Ok(())
    }

    fn conflict(
        &self,
        t: &TableInfo,
        row: &[mysql_async::Value],
        pos: &BinlogPos,
        message: &str,
    ) -> ReplayError {
        ReplayError::Conflict {
            table: t.target_name.clone(),
            key: rowsql::describe_key(t, row),
            position: pos.to_string(),
            message: message.to_string(),
        }
    }

    async fn exec(
        &self,
        dst: &mut Conn,
        sql: &[u8],
        what: &str,
        pos: &BinlogPos,
    ) -> Result<Result<u64, mysql_async::Error>, ReplayError> {
        match dst.query_drop(sql).await {
            Ok(()) => Ok(Ok(dst.affected_rows())),
            Err(e) if server_code(&e) == Some(1062) => Ok(Err(e)),
            Err(e) => Err(apply_err(what, pos, e)),
        }
    }

    async fn apply_rows(
        &mut self,
        dst: &mut Conn,
        t: &TableInfo,
        rows: &RowsData,
        pairs: &[RowPair],
        idem: bool,
    ) -> Result<(), ReplayError> {
        let pos = &rows.position;
        let policy = self.opts.conflict;
        match rows.kind {
            RowsKind::Insert => {
                let afters: Vec<&Vec<mysql_async::Value>> =
                    pairs.iter().filter_map(|(_, a)| a.as_ref()).collect();
                let verb = if idem || policy == ConflictPolicy::Overwrite {
                    InsertVerb::Replace
                } else if policy == ConflictPolicy::Ignore {
                    InsertVerb::InsertIgnore
                } else {
                    InsertVerb::Insert
                };
                let what = format!("insert into {}", t.target_name);
                let mut done = 0usize;
                for stmt in rowsql::insert_statements(t, verb, &afters) {
                    match self.exec(dst, &stmt, &what, pos).await? {
                        Ok(n) => {
                            if verb == InsertVerb::InsertIgnore {
                                done += n as usize;
                            }
                        }
                        Err(e) => {
                            let msg = match &e {
                                mysql_async::Error::Server(s) => s.message.clone(),
                                e => e.to_string(),
                            };
                            return Err(ReplayError::Conflict {
                                table: t.target_name.clone(),
                                key: msg.clone(),
                                position: pos.to_string(),
                                message: "insert of a key that already exists on the target".into(),
                            });
                        }
                    }
                }
                if verb == InsertVerb::InsertIgnore {
                    self.st.skipped += afters.len().saturating_sub(done) as u64;
                }
            }
            RowsKind::Update => {
                let what = format!("update of {}", t.target_name);
                for (b, a) in pairs {
                    let (Some(b), Some(a)) = (b, a) else { continue };
                    if idem && t.key.is_some() {
                        if rowsql::key_changed(t, b, a) {
                            self.exec_plain(dst, &rowsql::delete_statement(t, b), &what, pos)
                                .await?;
                        }
                        for s in rowsql::insert_statements(t, InsertVerb::Replace, &[a]) {
                            self.exec_plain(dst, &s, &what, pos).await?;
                        }
                        continue;
                    }
                    match self
                        .exec(dst, &rowsql::update_statement(t, b, a), &what, pos)
                        .await?
                    {
                        Ok(n) if n > 0 => {}
                        Ok(_) => match (policy, idem) {
                            (_, true) | (ConflictPolicy::Ignore, _) => self.st.skipped += 1,
                            (ConflictPolicy::Overwrite, _) => {
                                for s in rowsql::insert_statements(t, InsertVerb::Replace, &[a]) {
                                    self.exec_plain(dst, &s, &what, pos).await?;
                                }
                            }
                            (ConflictPolicy::Stop, false) => {
                                return Err(self.conflict(
                                    t,
                                    b,
                                    pos,
                                    "update of a row that does not exist on the target",
                                ))
                            }
                        },
                        Err(_) => match policy {
                            ConflictPolicy::Ignore => self.st.skipped += 1,
                            ConflictPolicy::Overwrite => {
                                self.exec_plain(dst, &rowsql::delete_statement(t, b), &what, pos)
                                    .await?;
                                for s in rowsql::insert_statements(t, InsertVerb::Replace, &[a]) {
                                    self.exec_plain(dst, &s, &what, pos).await?;
                                }
                            }
                            ConflictPolicy::Stop => {
                                return Err(self.conflict(
                                    t,
                                    a,
                                    pos,
                                    "update to a key that already exists on the target",
                                ))
                            }
                        },
                    }
                }
            }
            RowsKind::Delete => {
                let what = format!("delete from {}", t.target_name);
                for (b, _) in pairs {
                    let Some(b) = b else { continue };
                    let n = self
                        .exec_plain(dst, &rowsql::delete_statement(t, b), &what, pos)
                        .await?;
                    if n == 0 {
                        if policy == ConflictPolicy::Stop && !idem {
                            return Err(self.conflict(
                                t,
                                b,
                                pos,
                                "delete of a row that does not exist on the target",
                            ));
                        }
                        self.st.skipped += 1;
                    }
                }
            }
        }
        Ok(())
    }

    async fn exec_plain(
        &self,
        dst: &mut Conn,
        sql: &[u8],
        what: &str,
        pos: &BinlogPos,
    ) -> Result<u64, ReplayError> {
        dst.query_drop(sql).await.map_err(|e| apply_err(what, pos, e))?;
        Ok(dst.affected_rows())
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

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
}
