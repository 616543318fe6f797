//! Runs a job in the foreground: structure, then full data, then the post-data structure
//! (secondary indexes, foreign keys, triggers, events), then for MigrateType 3 the incremental
//! replay until the caller completes it ([`RunOptions::replay`]), with progress reported to a
//! sink.
//!
//! MigrateType 3 defers triggers and events to the end of the incremental phase: on the target
//! they would fire again for changes the binlog already carries. They are created once the
//! replay has completed (cut-over).
//!
//! Transient failures (a server restart, a network cut) of the full load, the incremental replay
//! and the verification are retried from their checkpoints (finished chunks stay done, the replay
//! resumes at its checkpoint, the verification starts again) for as long as one outage lasts at
//! most `Ferry.RetryWindowSeconds`; each failed attempt is reported as
//! [`ProgressEvent::Trouble`] (which side, the error, the attempt, since when) and the end of
//! the outage as [`ProgressEvent::Recovered`].
//!
//! Restart safety: the phases a job has finished are recorded on the target in
//! `ferry_meta.job_phase`; the full load keeps its own chunk checkpoints. Running the same job
//! again resumes where it stopped: finished phases and chunks are skipped.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::catalog;
use ferry_core::error::MysqlResultExt;
use ferry_core::progress::{unix_now, ProgressEvent, ProgressSink, RetryWindow, SIDE_SOURCE, SIDE_TARGET};
use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use ferry_core::throttle::Throttle;
use ferry_core::{ErrorKind, Flavor, SnapshotPosition, TableSchema};
use ferry_load::{LoadOptions, TableTask, WriteMethod};
use ferry_replay::start::{resolve_start, StartRequest};
use ferry_replay::{run_replay, BinlogPos, ReplayOptions};
pub use ferry_replay::{ReplayControl, ReplaySummary};
use ferry_schema::{Ddl, ObjectKind};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tracing::{info, info_span, Instrument};

use crate::error::JobError;
use crate::spec::{JobSpec, MigrateType, SpecError, StartFrom};

/// How to run a job.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Forget earlier progress of this job on the target and start over.
    pub restart: bool,
    /// The rate limit the load honours; the caller may change it while the job runs.
    pub throttle: Arc<Throttle>,
    /// Completes (cuts over) or cancels the incremental phase of a MigrateType 3 job.
    pub replay: ReplayControl,
}

impl RunOptions {
    /// Options with the job's own rate limits.
    pub fn for_spec(spec: &JobSpec) -> Self {
        RunOptions {
            restart: false,
            throttle: Arc::new(Throttle::new(
                spec.options.rows_per_second,
                spec.options.bytes_per_second,
            )),
            replay: ReplayControl::new(),
        }
    }
}

/// What a finished job did.
#[derive(Debug, Clone, Default)]
pub struct JobSummary {
    pub source_flavor: String,
    pub target_flavor: String,
    pub tables: u64,
    pub objects_created: u64,
    pub rows: u64,
    pub bytes: u64,
    pub chunks: u64,
    pub chunks_resumed: u64,
    pub lock_ms: u64,
    /// Lock-free loads: the longest a chunk's read view stayed open on the source, in ms.
    pub longest_read_view_ms: Option<u64>,
    pub snapshot: Option<SnapshotPosition>,
    pub write_method: Option<WriteMethod>,
    pub elapsed: Duration,
    /// Every phase was already done by an earlier run.
    pub already_complete: bool,
    /// Some phase or chunk was skipped because an earlier run finished it.
    pub resumed: bool,
    /// The incremental phase (MigrateType 3): final position and GTID, counts.
    pub replay: Option<ReplaySummary>,
    /// The verification phase (ConsistencyType 2, 3 or 4), run after everything else.
    pub verification: Option<ferry_verify::VerifyReport>,
    /// With `Ferry.ContinuousVerify`: (chunks digested again at cut-over, chunks in all).
    pub cutover_chunks: Option<(u64, u64)>,
}

/// Rows, bytes and chunks committed by this process's full load, from its progress events.
#[derive(Debug, Default)]
struct CopyCounter {
    rows: AtomicU64,
    bytes: AtomicU64,
    chunks: AtomicU64,
}

impl CopyCounter {
    fn observe(&self, ev: &ProgressEvent) {
        if let ProgressEvent::ChunkDone { rows, bytes, .. } = ev {
            self.rows.fetch_add(*rows, Ordering::Relaxed);
            self.bytes.fetch_add(*bytes, Ordering::Relaxed);
            self.chunks.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn totals(&self) -> (u64, u64, u64) {
        (
            self.rows.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.chunks.load(Ordering::Relaxed),
        )
    }
}

const PHASE_PRE: &str = "structure";
const PHASE_DATA: &str = "full_data";
const PHASE_POST: &str = "post_data";
const PHASE_INC: &str = "incremental";
/// A full-only job whose chunks were read at different positions (lock-free, or resumed) replays
/// the binlog between them before it is consistent.
const PHASE_WINDOW: &str = "load_window";
const PHASE_VERIFY: &str = "verification";

/// Which server a phase's error message is about: it names the source or the target (by word,
/// or by `host:port`), or cannot be told (`""`).
fn side_of(spec: &JobSpec, message: &str) -> &'static str {
    let lower = message.to_lowercase();
    let src = format!("{}:{}", spec.source.host, spec.source.port);
    let dst = format!("{}:{}", spec.target.host, spec.target.port);
    let s = lower.contains("source") || (src != dst && message.contains(&src));
    let t = lower.contains("target") || (src != dst && message.contains(&dst));
    match (s, t) {
        (true, false) => SIDE_SOURCE,
        (false, true) => SIDE_TARGET,
        _ => "",
    }
}

/// One phase's outages: transient failures without progress in between, retried with backoff
/// (2, 4, … 32 s) until one outage outlasts the retry window.
struct Retrier<'a> {
    what: &'static str,
    spec: &'a JobSpec,
    progress: &'a ProgressSink,
    /// Set while an outage is under way (shared with a sink that sees progress).
    troubled: Arc<AtomicBool>,
    /// (start, UNIX seconds) of the outage under way.
    since: Option<(Instant, u64)>,
    attempts: u32,
}

impl<'a> Retrier<'a> {
    fn new(what: &'static str, spec: &'a JobSpec, progress: &'a ProgressSink) -> Self {
        Retrier {
            what,
            spec,
            progress,
            troubled: Arc::new(AtomicBool::new(false)),
            since: None,
            attempts: 0,
        }
    }

    fn window(&self) -> RetryWindow {
        self.spec.options.retry_window
    }

    /// A transient failure: reports it and says how long to wait before the next attempt, or
    /// gives the error back once the outage has outlasted the window. `progressed`: the phase
    /// made progress since the last failure (a new outage begins).
    fn failed(&mut self, e: JobError, progressed: bool) -> Result<Duration, JobError> {
        if progressed || !self.troubled.load(Ordering::SeqCst) {
            self.since = None;
            self.attempts = 0;
        }
        let (started, since) = *self.since.get_or_insert((Instant::now(), unix_now()));
        self.attempts += 1;
        self.troubled.store(true, Ordering::SeqCst);
        let age = started.elapsed();
        let window = self.window();
        if window.exceeded(age) {
            return Err(JobError::RetryWindow {
                last: Box::new(e),
                seconds: age.as_secs(),
                window: window.0.as_secs(),
            });
        }
        let error = e.to_string();
        tracing::warn!(what = self.what, error = %error, attempt = self.attempts, "transient failure: retrying");
        (self.progress)(ProgressEvent::Retrying {
            what: self.what.into(),
            error: error.clone(),
            attempt: self.attempts,
        });
        (self.progress)(ProgressEvent::Trouble {
            what: self.what.into(),
            side: side_of(self.spec, &error).into(),
            error,
            attempt: self.attempts,
            since,
            gives_up_at: window.gives_up_at(since),
        });
        let backoff = Duration::from_secs(1 << self.attempts.clamp(1, 5));
        let wait = if window.0.is_zero() {
            backoff
        } else {
            backoff.min(window.0.saturating_sub(age))
        };
        Ok(wait.max(Duration::from_millis(100)))
    }

    /// The phase succeeded: an outage under way is over.
    fn succeeded(&mut self) {
        if self.troubled.swap(false, Ordering::SeqCst) {
            (self.progress)(ProgressEvent::Recovered {
                what: self.what.into(),
            });
        }
        self.since = None;
        self.attempts = 0;
    }
}

async fn ensure_meta(dst: &mut Conn) -> Result<(), JobError> {
    Ok(ferry_core::meta::ensure(dst).await?)
}

async fn phases_done(dst: &mut Conn, job: &str) -> Result<BTreeSet<String>, JobError> {
    let rows: Vec<String> = dst
        .exec(
            format!(
                "SELECT phase FROM {}.job_phase WHERE job = ?",
                quote_ident(META_SCHEMA)
            ),
            (job,),
        )
        .await
        .ctx(|| "reading ferry_meta.job_phase".into())?;
    Ok(rows.into_iter().collect())
}

async fn mark_done(dst: &mut Conn, job: &str, phase: &str) -> Result<(), JobError> {
    dst.exec_drop(
        format!(
            "INSERT INTO {}.job_phase (job, phase, done_at) VALUES (?, ?, NOW(6)) \
             ON DUPLICATE KEY UPDATE done_at = VALUES(done_at)",
            quote_ident(META_SCHEMA)
        ),
        (job, phase),
    )
    .await
    .ctx(|| "recording a finished phase in ferry_meta.job_phase".into())?;
    Ok(())
}

async fn forget_phases(dst: &mut Conn, job: &str) -> Result<(), JobError> {
    dst.exec_drop(
        format!("DELETE FROM {}.job_phase WHERE job = ?", quote_ident(META_SCHEMA)),
        (job,),
    )
    .await
    .ctx(|| "clearing ferry_meta.job_phase".into())?;
    Ok(())
}

/// True when an earlier run of this job left progress on the target (finished phases or load
/// checkpoints): running it again resumes.
pub async fn has_progress(spec: &JobSpec) -> Result<bool, JobError> {
    let (mut dst, _) = connect(spec, true).await?;
    let meta: Option<u64> = dst
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'job_phase'",
            (META_SCHEMA,),
        )
        .await
        .ctx(|| "reading ferry_meta on the target".into())?;
    if meta.unwrap_or(0) > 0 && !phases_done(&mut dst, &spec.name).await?.is_empty() {
        return Ok(true);
    }
    Ok(ferry_load::has_checkpoints(&spec.target, &spec.name).await?)
}

/// `Ferry.TargetBinlog = false`: this target session's statements stay out of its binary log.
async fn set_target_binlog(spec: &JobSpec, dst: &mut Conn) -> Result<(), JobError> {
    if !spec.options.target_binlog {
        // The handshake version tells the flavors apart: MariaDB is 10+, MySQL below 10.
        let privileges = if dst.server_version().0 >= 10 {
            "BINLOG ADMIN or SUPER (MariaDB 10.5.2+; SUPER before)"
        } else {
            "SYSTEM_VARIABLES_ADMIN or SESSION_VARIABLES_ADMIN, or SUPER (MySQL 8; SUPER on 5.7)"
        };
        dst.query_drop("SET SESSION sql_log_bin = 0").await.ctx(|| {
            format!(
                "Ferry.TargetBinlog = false sets sql_log_bin = 0 on the target, which needs {privileges} \
                 (pre-check item target_sql_log_bin)"
            )
        })?;
    }
    Ok(())
}

/// Copies the state of the selected MariaDB sequences ([`ferry_schema::sequences`]).
async fn copy_sequences(
    spec: &JobSpec,
    sequences: &[ferry_schema::ObjectDef],
    dst: &mut Conn,
) -> Result<(), JobError> {
    if sequences.is_empty() {
        return Ok(());
    }
    let (mut src, _) = connect(spec, false).await?;
    let n = ferry_schema::sequences::copy_state(&mut src, dst, &spec.selection, sequences).await?;
    info!(sequences = n, "sequence state copied");
    Ok(())
}

async fn connect(spec: &JobSpec, target: bool) -> Result<(Conn, Flavor), JobError> {
    let (side, field, ep) = if target {
        ("target", "DstInfo", &spec.target)
    } else {
        ("source", "SrcInfo", &spec.source)
    };
    let mut ep = ep.clone();
    ep.connect_timeout = spec.connect_timeout();
    let mut conn = ep
        .connect(vec!["SET time_zone = '+00:00'".into()])
        .await
        .map_err(|e| JobError::connect(side, field, &ep, e))?;
    let flavor = Flavor::detect(&mut conn).await?;
    Ok((conn, flavor))
}

async fn wait_for_start(spec: &JobSpec) {
    if let Some(at) = spec.start_at {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if at > now {
            info!(seconds = at - now, "RunMode 2: waiting for ExpectTime");
            tokio::time::sleep(Duration::from_secs(at - now)).await;
        }
    }
}

/// `Ferry.StartPosition` as a position on the source, when the job has no replay checkpoint
/// yet (a resumed job continues from its checkpoint). A start the source does not have (a
/// purged or unknown file, a time before the oldest binlog) fails naming the field.
async fn resolve_start_position(spec: &JobSpec, from: &StartFrom) -> Result<Option<BinlogPos>, JobError> {
    let (mut dst, _) = connect(spec, true).await?;
    ferry_replay::apply::checkpoint::ensure_table(&mut dst).await?;
    if ferry_replay::apply::checkpoint::read(&mut dst, &spec.name)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    drop(dst);
    let req = match from {
        StartFrom::FilePos { file, offset } => StartRequest::FilePos(BinlogPos::new(file, *offset)),
        StartFrom::Time(t) => StartRequest::Time(*t),
        StartFrom::Gtid(g) => StartRequest::Gtid(g.clone()),
    };
    let mut source = spec.source.clone();
    source.connect_timeout = spec.connect_timeout();
    let server_id = ferry_replay::apply::derive_server_id(&spec.name);
    match resolve_start(&source, server_id, &req).await {
        Ok(p) => {
            info!(start = %p, "Ferry.StartPosition resolved");
            Ok(Some(p))
        }
        Err(e) if e.kind() == ErrorKind::Definite => Err(JobError::Spec(SpecError {
            field: "Ferry.StartPosition".into(),
            message: e.to_string(),
        })),
        Err(e) => Err(e.into()),
    }
}

/// The replay's options for `spec`.
async fn replay_options(spec: &JobSpec, opts: &RunOptions) -> Result<ReplayOptions, JobError> {
    let mut ropts = ReplayOptions::new(spec.name.clone());
    ropts.throttle = opts.throttle.clone();
    ropts.ddl_policy = spec.options.ddl_policy;
    ropts.conflict = spec.options.conflict_policy;
    ropts.target_binlog = spec.options.target_binlog;
    if let Some(w) = spec.options.apply_workers {
        ropts.workers = w;
    }
    ropts.retry_window = spec.options.retry_window;
    if let Some(from) = &spec.options.start_position {
        ropts.start = resolve_start_position(spec, from).await?;
        // Transactions a GTID start contains are never replayed (also after a resume).
        if let StartFrom::Gtid(g) = from {
            ropts.skip_gtids = Some(g.clone());
        }
    }
    Ok(ropts)
}

/// Runs the replay to its end; cancelled is an error, and a transient failure it gives back
/// outlasted the retry window.
async fn replay_or_fail(
    spec: &JobSpec,
    ropts: ReplayOptions,
    progress: &ProgressSink,
    control: ReplayControl,
) -> Result<ferry_replay::apply::ReplaySummary, JobError> {
    let replay = match run_replay(
        &spec.source,
        &spec.target,
        &spec.selection,
        ropts,
        progress.clone(),
        control,
    )
    .await
    {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::Transient => {
            let window = spec.options.retry_window.0.as_secs();
            return Err(JobError::RetryWindow {
                last: Box::new(e.into()),
                seconds: window,
                window,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !replay.completed {
        return Err(JobError::Cancelled);
    }
    Ok(replay)
}

/// Creates the triggers and events held back while changes were replayed (dropped first, so a
/// run that died half-way re-creates them); returns how many.
async fn create_deferred(
    dst: &mut Conn,
    post_data: &[Ddl],
    deferred: &(dyn Fn(&Ddl) -> bool + Sync),
    progress: &ProgressSink,
) -> Result<u64, JobError> {
    let late: Vec<Ddl> = post_data.iter().filter(|d| deferred(d)).cloned().collect();
    for d in &late {
        let what = if d.kind == ObjectKind::Trigger {
            "TRIGGER"
        } else {
            "EVENT"
        };
        dst.query_drop(format!(
            "DROP {what} IF EXISTS {}",
            ferry_core::sql::qualified(&d.db, &d.name)
        ))
        .await
        .ctx(|| format!("dropping {what} {}.{} before re-creating it", d.db, d.name))?;
    }
    ferry_schema::apply(dst, &late, progress).await?;
    Ok(late.len() as u64)
}

/// Runs a structure (MigrateType 1) or structure + full data (MigrateType 2) job to the end.
pub async fn run_job(
    spec: &JobSpec,
    opts: RunOptions,
    progress: ProgressSink,
) -> Result<JobSummary, JobError> {
    let span = info_span!("job", job = %spec.name);
    run_job_inner(spec, opts, progress).instrument(span).await
}

async fn run_job_inner(
    spec: &JobSpec,
    opts: RunOptions,
    progress: ProgressSink,
) -> Result<JobSummary, JobError> {
    wait_for_start(spec).await;
    let started = Instant::now();
    let (mut src, src_flavor) = connect(spec, false).await?;
    let (mut dst, dst_flavor) = connect(spec, true).await?;
    info!(source = %src_flavor, target = %dst_flavor, "connected");
    let mut summary = JobSummary {
        source_flavor: src_flavor.to_string(),
        target_flavor: dst_flavor.to_string(),
        ..JobSummary::default()
    };

    // What to move: the catalog read for the structure also carries each table's model.
    let selected = catalog::resolve_selection(&mut src, &spec.selection).await?;
    let structure = ferry_schema::read_catalog(&mut src, &spec.selection, &selected).await?;
    let tables: Vec<TableSchema> = structure.tables.iter().map(|t| t.schema.clone()).collect();
    summary.tables = tables.len() as u64;
    let plan = ferry_schema::plan(&structure, &spec.selection, &spec.options.structure)?;
    drop(src);

    // `Ferry.DbList`: the mapped and filtered columns exist, the row key survives.
    for t in &tables {
        if let Some(m) = spec.selection.mapping(&t.db, &t.name) {
            m.check_replayed(t, spec.migrate_type == MigrateType::FullIncremental)
                .map_err(|e| JobError::Unsupported(format!("Ferry.DbList.{}.Table.{}: {e}", t.db, t.name)))?;
        }
    }
    let mut targets = Vec::with_capacity(tables.len());
    for t in &tables {
        let (db, name) = spec.selection.target_table(&t.db, &t.name).ok_or_else(|| {
            JobError::Unsupported(format!("{} is selected but has no target name", t.display_name()))
        })?;
        targets.push((db, name));
    }

    ensure_meta(&mut dst).await?;
    set_target_binlog(spec, &mut dst).await?;
    if opts.restart {
        forget_phases(&mut dst, &spec.name).await?;
        ferry_load::clear_checkpoints(&spec.target, &spec.name).await?;
        ferry_replay::apply::checkpoint::clear(&mut dst, &spec.name).await?;
        ferry_verify::continuous::clear(&spec.target, &spec.name).await?;
    }
    let mut done = phases_done(&mut dst, &spec.name).await?;
    // `Ferry.StartPosition`: the target's structure and data are the user's; the job only
    // replays the binlog from the given start.
    let from_position = spec.options.start_position.is_some();
    if from_position {
        for p in [PHASE_PRE, PHASE_DATA, PHASE_POST] {
            done.insert(p.to_string());
        }
    }
    let wants_data = spec.migrate_type != MigrateType::Structure;
    let incremental = spec.migrate_type == MigrateType::FullIncremental;
    let mut all = match (wants_data, incremental) {
        (true, true) => vec![PHASE_PRE, PHASE_DATA, PHASE_POST, PHASE_INC],
        (true, false) => vec![PHASE_PRE, PHASE_DATA, PHASE_POST, PHASE_WINDOW],
        _ => vec![PHASE_PRE, PHASE_POST],
    };
    // The verification is a phase too: a run that died during it verifies on the next run
    // instead of reporting the job complete.
    let verify_mode = crate::verification::mode_for_job(spec).await?;
    if verify_mode.is_some() {
        all.push(PHASE_VERIFY);
    }
    // Triggers and events wait for the end of replay when changes are replayed.
    let replays = |window: bool| incremental || window;
    if all.iter().all(|p| done.contains(*p)) {
        summary.already_complete = true;
        summary.elapsed = started.elapsed();
        return Ok(summary);
    }
    summary.resumed = !done.is_empty();

    // Tables that existed before the job (kept by the policy): not created, and their indexes
    // are left as they are.
    let mut kept: BTreeSet<(String, String)> = BTreeSet::new();
    if !done.contains(PHASE_PRE) {
        progress(ProgressEvent::PhaseStarted {
            phase: PHASE_PRE.into(),
        });
        let states = ferry_schema::target_tables(&mut dst, &targets).await?;
        kept = ferry_schema::prepare_existing(&mut dst, &states, spec.options.existing_tables)
            .await?
            .into_iter()
            .collect();
        let pre: Vec<Ddl> = plan
            .pre_data
            .iter()
            .filter(|d| !(d.kind == ObjectKind::Table && kept.contains(&(d.db.clone(), d.name.clone()))))
            .cloned()
            .collect();
        ferry_schema::apply(&mut dst, &pre, &progress).await?;
        summary.objects_created += pre.len() as u64;
        mark_done(&mut dst, &spec.name, PHASE_PRE).await?;
        progress(ProgressEvent::PhaseFinished {
            phase: PHASE_PRE.into(),
        });
    }

    if wants_data && !done.contains(PHASE_DATA) {
        progress(ProgressEvent::PhaseStarted {
            phase: PHASE_DATA.into(),
        });
        let tasks: Vec<TableTask> = tables
            .iter()
            .zip(&targets)
            .map(|(t, (db, name))| TableTask {
                source: t.clone(),
                target_db: db.clone(),
                target_table: name.clone(),
                mapping: spec.selection.mapping(&t.db, &t.name).cloned(),
            })
            .collect();
        let load_opts = LoadOptions {
            job_key: spec.name.clone(),
            threads: spec.options.threads,
            chunk_rows: spec.options.chunk_rows,
            write_method: spec.options.write_method,
            lock_timeout: spec.options.lock_timeout,
            throttle: opts.throttle.clone(),
            target_binlog: spec.options.target_binlog,
            snapshot_mode: spec.options.snapshot_mode,
        };
        // Transient failures (a server restart, a network cut) retry from the chunk checkpoints:
        // finished chunks stay done, the interrupted ones roll back and are redone.
        let mut retrier = Retrier::new("full load", spec, &progress);
        // What this process copied, over every attempt (a retry's own summary counts only itself).
        let copied = Arc::new(CopyCounter::default());
        let counting: ProgressSink = {
            let (copied, inner) = (copied.clone(), progress.clone());
            let troubled = retrier.troubled.clone();
            Arc::new(move |ev: ProgressEvent| {
                copied.observe(&ev);
                // A chunk committed: the outage under way is over.
                let recovered =
                    matches!(ev, ProgressEvent::ChunkDone { .. }) && troubled.swap(false, Ordering::SeqCst);
                inner(ev);
                if recovered {
                    inner(ProgressEvent::Recovered {
                        what: "full load".into(),
                    });
                }
            })
        };
        let mut chunks_at_failure = 0u64;
        let load = loop {
            match ferry_load::run_full_load(
                &spec.source,
                &spec.target,
                tasks.clone(),
                load_opts.clone(),
                counting.clone(),
            )
            .await
            {
                Ok(load) => {
                    retrier.succeeded();
                    break load;
                }
                Err(e) if e.kind() == ErrorKind::Transient => {
                    let chunks = copied.totals().2;
                    let wait = retrier.failed(e.into(), chunks > chunks_at_failure)?;
                    chunks_at_failure = chunks;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let (rows, bytes, chunks) = copied.totals();
        summary.rows = rows;
        summary.bytes = bytes;
        summary.chunks = chunks;
        // Chunks done before this process started (not those done by its own earlier attempts).
        summary.chunks_resumed = load
            .chunks_resumed
            .saturating_sub(chunks.saturating_sub(load.chunks));
        summary.lock_ms = load.lock_ms;
        summary.longest_read_view_ms = load.longest_read_view_ms;
        summary.snapshot = Some(load.snapshot);
        summary.write_method = Some(load.write_method);
        summary.resumed |= load.chunks_resumed > 0;
        // The control connection sat idle through the load (possibly past wait_timeout).
        dst = connect(spec, true).await?.0;
        set_target_binlog(spec, &mut dst).await?;
        copy_sequences(spec, &structure.sequences, &mut dst).await?;
        mark_done(&mut dst, &spec.name, PHASE_DATA).await?;
        progress(ProgressEvent::PhaseFinished {
            phase: PHASE_DATA.into(),
        });
    }

    // A full-only job whose chunks were read at different positions replays the window.
    let window_end = if wants_data && !incremental && !done.contains(PHASE_WINDOW) {
        ferry_replay::apply::checkpoint::load_window(&mut dst, &spec.name)
            .await?
            .and_then(|w| w.idempotent_until())
    } else {
        None
    };
    let has_window = window_end.is_some();
    let deferred = |d: &Ddl| replays(has_window) && matches!(d.kind, ObjectKind::Trigger | ObjectKind::Event);
    if !done.contains(PHASE_POST) {
        progress(ProgressEvent::PhaseStarted {
            phase: PHASE_POST.into(),
        });
        let post: Vec<Ddl> = plan
            .post_data
            .iter()
            .filter(|d| !deferred(d))
            .filter(|d| {
                !(matches!(d.kind, ObjectKind::Index | ObjectKind::ForeignKey)
                    && kept.contains(&(d.db.clone(), d.name.clone())))
            })
            .cloned()
            .collect();
        ferry_schema::apply(&mut dst, &post, &progress).await?;
        summary.objects_created += post.len() as u64;
        mark_done(&mut dst, &spec.name, PHASE_POST).await?;
        progress(ProgressEvent::PhaseFinished {
            phase: PHASE_POST.into(),
        });
    }
    if let Some(end) = window_end {
        info!(until = %end, "the full load read its chunks at different positions: replaying the binlog up to the last one");
        let mut ropts = replay_options(spec, &opts).await?;
        ropts.stop_at = Some(end);
        let replay = replay_or_fail(spec, ropts, &progress, opts.replay.clone()).await?;
        let (mut dst2, _) = connect(spec, true).await?;
        set_target_binlog(spec, &mut dst2).await?;
        summary.objects_created += create_deferred(&mut dst2, &plan.post_data, &deferred, &progress).await?;
        summary.replay = Some(replay);
        mark_done(&mut dst2, &spec.name, PHASE_WINDOW).await?;
    } else if wants_data && !incremental && !done.contains(PHASE_WINDOW) {
        let (mut dst2, _) = connect(spec, true).await?;
        mark_done(&mut dst2, &spec.name, PHASE_WINDOW).await?;
    }
    if incremental && !done.contains(PHASE_INC) {
        progress(ProgressEvent::PhaseStarted {
            phase: PHASE_INC.into(),
        });
        drop(dst);
        let mut ropts = replay_options(spec, &opts).await?;
        // Continuous verification: the replay marks the chunks it changes; a background task
        // digests them again (stopped when the replay returns).
        let mut background = None;
        if let Some(cv) = spec.options.continuous_verify {
            let tracker = crate::continuous::tracker(spec).await?;
            ropts.dirty = Some(tracker.clone());
            background = Some(crate::continuous::Background::start(
                spec.clone(),
                cv,
                tracker,
                progress.clone(),
            ));
        }
        let replay = replay_or_fail(spec, ropts, &progress, opts.replay.clone()).await;
        drop(background);
        let replay = replay?;
        let (mut dst2, _) = connect(spec, true).await?;
        set_target_binlog(spec, &mut dst2).await?;
        // Cut-over: the sequences' state as the (now quiet) source has it (not for a job
        // started at a position: the target's objects are the user's).
        if !from_position {
            copy_sequences(spec, &structure.sequences, &mut dst2).await?;
        }
        // Cut-over: the triggers and events held back, re-created idempotently.
        if !from_position {
            summary.objects_created +=
                create_deferred(&mut dst2, &plan.post_data, &deferred, &progress).await?;
        }
        mark_done(&mut dst2, &spec.name, PHASE_INC).await?;
        summary.replay = Some(replay);
        progress(ProgressEvent::PhaseFinished {
            phase: PHASE_INC.into(),
        });
    }
    if let Some(mode) = verify_mode.filter(|_| !done.contains(PHASE_VERIFY)) {
        progress(ProgressEvent::PhaseStarted {
            phase: PHASE_VERIFY.into(),
        });
        let cutover = spec
            .options
            .continuous_verify
            .filter(|_| mode == ferry_verify::VerifyMode::Full);
        let vopts = crate::verification::options_for(spec, mode);
        // A transient failure starts the comparison again (it keeps no partial result; with
        // continuous verification the chunks digested before the failure stay stored).
        let mut retrier = Retrier::new("verification", spec, &progress);
        let report = loop {
            let attempt = match &cutover {
                Some(cv) => crate::verification::verify_cutover(spec, cv).await.map(|(r, n)| {
                    summary.cutover_chunks = Some(n);
                    r
                }),
                None => {
                    crate::verification::verify_job(spec, &vopts, ferry_core::progress::null_sink(), None)
                        .await
                }
            };
            match attempt {
                Ok(r) => {
                    retrier.succeeded();
                    break r;
                }
                Err(e) if e.kind() == ErrorKind::Transient => {
                    let wait = retrier.failed(e, false)?;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (mut dst3, _) = connect(spec, true).await?;
        mark_done(&mut dst3, &spec.name, PHASE_VERIFY).await?;
        summary.verification = Some(report);
        progress(ProgressEvent::PhaseFinished {
            phase: PHASE_VERIFY.into(),
        });
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}
