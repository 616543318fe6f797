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
//!
//! Fencing ([`RunOptions::epoch`], [`ferry_core::fence`]): a run with an epoch records it on the
//! target before anything else (refused at once when the target has a newer one), checks it
//! before each phase and in every checkpoint commit (phases, load chunks, replay), so a node
//! that lost the job cannot apply anything after the newer owner started.
//!
//! Structure (as DM's units): [`Job::prepare`] reads the catalog and plans once; then one loop
//! takes each [`Phase`] the job has ([`Phase::for_job`]) and an earlier run did not finish, and
//! announces it, runs it ([`Job::run`]: one method per phase) and checkpoints it
//! ([`Job::checkpoint`]). Retries of a phase are [`crate::retrier`]'s, with the policy of
//! [`ferry_core::retry`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::catalog;
use ferry_core::error::MysqlResultExt;
use ferry_core::fence::Fence;
use ferry_core::progress::{ProgressEvent, ProgressSink};
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
pub use crate::phase::Phase;
use crate::retrier::Retrier;
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
    /// The job's ownership epoch when a cluster of `ferry serve` nodes runs it (`None`: one
    /// process owns the job, no fencing). Every checkpoint commit on the target carries it, and
    /// one whose epoch is older than the stored one is refused, so a node that lost its lease
    /// cannot apply anything.
    pub epoch: Option<u64>,
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
            epoch: None,
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
    pub cutover_chunks: Option<(u64, u64, u64)>,
    /// `Ferry.Accounts` / `IsOverrideRoot`: accounts created or altered on the target.
    pub accounts: u64,
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

/// Records a finished phase; with a fence, in a transaction whose epoch check and `COMMIT` go
/// in the same round trip.
async fn mark_done(dst: &mut Conn, job: &str, phase: Phase, fence: Option<&Fence>) -> Result<(), JobError> {
    use ferry_core::sql::quote_str;
    let insert = format!(
        "INSERT INTO {}.job_phase (job, phase, done_at) VALUES ({}, {}, NOW(6)) \
         ON DUPLICATE KEY UPDATE done_at = VALUES(done_at)",
        quote_ident(META_SCHEMA),
        quote_str(job),
        quote_str(phase.name())
    );
    let sql = match fence {
        None => insert,
        Some(f) => format!("START TRANSACTION; {}{insert}; COMMIT", f.check_sql()),
    };
    if let Err(e) = dst.query_drop(sql).await {
        if let Some(fenced) = ferry_core::fence::after_failed_commit(fence, dst).await {
            return Err(fenced.into());
        }
        return Err(JobError::Core(ferry_core::CoreError::mysql(
            "recording a finished phase in ferry_meta.job_phase",
            e,
        )));
    }
    Ok(())
}

async fn forget_phases(dst: &mut Conn, job: &str) -> Result<(), JobError> {
    for table in ["job_phase", "job_structure"] {
        dst.exec_drop(
            format!("DELETE FROM {}.{table} WHERE job = ?", quote_ident(META_SCHEMA)),
            (job,),
        )
        .await
        .ctx(|| format!("clearing ferry_meta.{table}"))?;
    }
    Ok(())
}

/// The target tables kept by `Ferry.ExistingTables`, as recorded when the job's structure phase
/// first ran (`None`: not recorded, or by a Ferry before `ferry_meta` version 5).
async fn recorded_kept(dst: &mut Conn, job: &str) -> Result<Option<BTreeSet<(String, String)>>, JobError> {
    let kept: Option<String> = dst
        .exec_first(
            format!(
                "SELECT kept FROM {}.job_structure WHERE job = ?",
                quote_ident(META_SCHEMA)
            ),
            (job,),
        )
        .await
        .ctx(|| "reading ferry_meta.job_structure".into())?;
    kept.map(|k| {
        serde_json::from_str::<Vec<(String, String)>>(&k)
            .map(|v| v.into_iter().collect())
            .map_err(|e| {
                JobError::Unsupported(format!("ferry_meta.job_structure of job {job} is damaged: {e}"))
            })
    })
    .transpose()
}

/// Records the kept tables before the structure phase creates anything (the first record of a
/// job stays: a later attempt reads it, [`recorded_kept`]).
async fn record_kept(dst: &mut Conn, job: &str, kept: &BTreeSet<(String, String)>) -> Result<(), JobError> {
    let json = serde_json::to_string(&kept.iter().collect::<Vec<_>>())
        .map_err(|e| JobError::Unsupported(format!("recording the kept tables: {e}")))?;
    dst.exec_drop(
        format!(
            "INSERT INTO {}.job_structure (job, kept, recorded_at) VALUES (?, ?, NOW(6)) \
             ON DUPLICATE KEY UPDATE job = job",
            quote_ident(META_SCHEMA)
        ),
        (job, json),
    )
    .await
    .ctx(|| "recording ferry_meta.job_structure".into())?;
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

/// The target control connection in `slot`, opened again (with the job's session settings)
/// after a long phase dropped it: it would have sat idle past `wait_timeout`.
async fn target<'c>(spec: &JobSpec, slot: &'c mut Option<Conn>) -> Result<&'c mut Conn, JobError> {
    let conn = match slot.take() {
        Some(conn) => conn,
        None => {
            let (mut dst, _) = connect(spec, true).await?;
            set_target_binlog(spec, &mut dst).await?;
            dst
        }
    };
    Ok(slot.insert(conn))
}

pub(crate) async fn connect(spec: &JobSpec, target: bool) -> Result<(Conn, Flavor), JobError> {
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
    ropts.fence = Fence::of(&spec.name, opts.epoch);
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

/// Runs a job to the end: every phase it has that an earlier run did not finish (see the
/// module docs).
pub async fn run_job(
    spec: &JobSpec,
    opts: RunOptions,
    progress: ProgressSink,
) -> Result<JobSummary, JobError> {
    let span = info_span!("job", job = %spec.name);
    let summary = run_job_inner(spec, opts, progress).instrument(span).await?;
    // Every phase is done (cut-over included): `DstInfo.ReadOnly` ends here.
    crate::protect::restore(spec).await?;
    Ok(summary)
}

/// The runner loop: each phase the job has and has not finished is prepared, announced, run and
/// checkpointed in `ferry_meta.job_phase`, in [`Phase::ALL`]'s order.
async fn run_job_inner(
    spec: &JobSpec,
    opts: RunOptions,
    progress: ProgressSink,
) -> Result<JobSummary, JobError> {
    wait_for_start(spec).await;
    let started = Instant::now();
    let mut job = Job::prepare(spec, &opts, &progress).await?;
    for phase in job.phases.clone() {
        if job.done.contains(phase.name()) {
            continue;
        }
        job.check_fence().await?;
        if phase.announced() {
            progress(ProgressEvent::PhaseStarted {
                phase: phase.name().into(),
            });
        }
        job.run(phase).await?;
        job.checkpoint(phase).await?;
        if phase.announced() {
            progress(ProgressEvent::PhaseFinished {
                phase: phase.name().into(),
            });
        }
    }
    job.summary.elapsed = started.elapsed();
    Ok(job.summary)
}

/// One run of a job: what it moves, where it stands, and what it did so far.
struct Job<'a> {
    spec: &'a JobSpec,
    opts: &'a RunOptions,
    progress: &'a ProgressSink,
    /// The source's catalog of the selected objects (sequences included).
    structure: ferry_schema::Catalog,
    /// The structure's DDL, before and after the data.
    plan: ferry_schema::StructurePlan,
    /// The selected tables and their names on the target.
    tables: Vec<TableSchema>,
    targets: Vec<(String, String)>,
    /// Tables that existed before the job (kept by the policy): not created, and their indexes
    /// are left as they are.
    kept: BTreeSet<(String, String)>,
    /// The phases this job has, and those an earlier run finished.
    phases: Vec<Phase>,
    done: BTreeSet<String>,
    /// `Ferry.StartPosition`: the target's structure and data are the user's; the job only
    /// replays the binlog from the given start.
    from_position: bool,
    incremental: bool,
    verify_mode: Option<ferry_verify::VerifyMode>,
    /// The job's ownership epoch on the target ([`RunOptions::epoch`]).
    fence: Option<Fence>,
    /// Where a full-only job's load window ends, once read (see [`Job::window_end`]).
    window_end: Option<Option<BinlogPos>>,
    /// The target control connection; dropped before a long phase (it would sit idle past
    /// `wait_timeout`) and opened again when needed.
    dst: Option<Conn>,
    summary: JobSummary,
}

impl<'a> Job<'a> {
    /// Connects, reads the catalog and plans the structure, prepares `ferry_meta` and reads the
    /// phases done (all of them: the summary says `already_complete`).
    async fn prepare(
        spec: &'a JobSpec,
        opts: &'a RunOptions,
        progress: &'a ProgressSink,
    ) -> Result<Job<'a>, JobError> {
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
                    .map_err(|e| {
                        JobError::Unsupported(format!("Ferry.DbList.{}.Table.{}: {e}", t.db, t.name))
                    })?;
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
        // Fencing: this run's epoch is the job's on the target before anything else is read or
        // written there (refused at once when another node holds a newer one).
        let fence = Fence::of(&spec.name, opts.epoch);
        if let Some(f) = &fence {
            f.claim(&mut dst).await?;
            info!(epoch = f.epoch(), "ownership epoch recorded on the target");
        }
        set_target_binlog(spec, &mut dst).await?;
        if opts.restart {
            forget_phases(&mut dst, &spec.name).await?;
            ferry_load::clear_checkpoints(&spec.target, &spec.name).await?;
            ferry_replay::apply::checkpoint::clear(&mut dst, &spec.name).await?;
            ferry_verify::continuous::clear(&spec.target, &spec.name).await?;
        }
        let mut done = phases_done(&mut dst, &spec.name).await?;
        let from_position = spec.options.start_position.is_some();
        if from_position {
            for p in [Phase::Structure, Phase::FullData, Phase::PostData] {
                done.insert(p.name().to_string());
            }
        }
        let wants_data = spec.migrate_type != MigrateType::Structure;
        let incremental = spec.migrate_type == MigrateType::FullIncremental;
        // The verification is a phase too: a run that died during it verifies on the next run
        // instead of reporting the job complete.
        let verify_mode = crate::verification::mode_for_job(spec).await?;
        let phases = Phase::for_job(wants_data, incremental, verify_mode.is_some());
        if phases.iter().all(|p| done.contains(p.name())) {
            summary.already_complete = true;
        } else {
            summary.resumed = !done.is_empty();
            // `DstInfo.ReadOnly`: the target is read-only for everyone but Ferry from here.
            crate::protect::protect(spec, &mut dst).await?;
        }
        Ok(Job {
            spec,
            opts,
            progress,
            structure,
            plan,
            tables,
            targets,
            kept: BTreeSet::new(),
            phases,
            done,
            from_position,
            incremental,
            verify_mode,
            fence,
            window_end: None,
            dst: Some(dst),
            summary,
        })
    }

    /// Runs one phase (its checkpoint is [`Job::checkpoint`]).
    async fn run(&mut self, phase: Phase) -> Result<(), JobError> {
        match phase {
            Phase::Structure => self.structure_phase().await,
            Phase::FullData => self.full_data().await,
            Phase::PostData => self.post_data().await,
            Phase::LoadWindow => self.load_window().await,
            Phase::Incremental => self.incremental().await,
            Phase::Verification => self.verification().await,
        }
    }

    /// Fails when another node claimed the job since this run started (before a phase, whose
    /// DDL cannot carry the check; its data and checkpoints carry it themselves).
    async fn check_fence(&mut self) -> Result<(), JobError> {
        if let Some(f) = &self.fence {
            f.check(target(self.spec, &mut self.dst).await?).await?;
        }
        Ok(())
    }

    /// Records the phase as done in `ferry_meta.job_phase`.
    async fn checkpoint(&mut self, phase: Phase) -> Result<(), JobError> {
        let (spec, job) = (self.spec, &self.spec.name);
        let fence = self.fence.as_ref();
        mark_done(target(spec, &mut self.dst).await?, job, phase, fence).await?;
        self.done.insert(phase.name().to_string());
        Ok(())
    }

    /// Triggers and events wait for the end of a replay when changes are replayed (the
    /// incremental phase, or a full-only job's load window).
    fn deferred(&self, d: &Ddl) -> bool {
        let replays = self.incremental || matches!(self.window_end, Some(Some(_)));
        replays && matches!(d.kind, ObjectKind::Trigger | ObjectKind::Event)
    }

    /// A full-only job whose chunks were read at different positions replays up to here: read
    /// once, after the full load and before the post-data structure (whose triggers and events
    /// then wait for the window's end).
    async fn window_end(&mut self) -> Result<Option<BinlogPos>, JobError> {
        if let Some(end) = &self.window_end {
            return Ok(end.clone());
        }
        let has_window =
            self.phases.contains(&Phase::LoadWindow) && !self.done.contains(Phase::LoadWindow.name());
        let end = if has_window {
            let (spec, job) = (self.spec, &self.spec.name);
            ferry_replay::apply::checkpoint::load_window(target(spec, &mut self.dst).await?, job)
                .await?
                .and_then(|w| w.idempotent_until())
        } else {
            None
        };
        self.window_end = Some(end.clone());
        Ok(end)
    }

    /// Pre-data structure; tables that exist on the target are kept or refused by
    /// `Ferry.ExistingTables`. Which ones are kept is decided the first time the phase runs and
    /// recorded before anything is created: run again after a crash, the phase would otherwise
    /// find the tables it created and keep them (without their secondary indexes and foreign
    /// keys, which the post-data phase does not add to kept tables).
    async fn structure_phase(&mut self) -> Result<(), JobError> {
        let (spec, progress) = (self.spec, self.progress);
        let dst = target(spec, &mut self.dst).await?;
        // Run again after a crash, the tables that exist and are not kept are the ones the
        // earlier attempt created (CREATE TABLE is atomic): not created twice, and the post-data
        // phase still adds their indexes and foreign keys.
        let mut created_before = BTreeSet::new();
        let kept = match recorded_kept(dst, &spec.name).await? {
            Some(kept) => {
                let states = ferry_schema::target_tables(dst, &self.targets).await?;
                created_before = states
                    .iter()
                    .filter(|s| s.exists)
                    .map(|s| (s.db.clone(), s.table.clone()))
                    .filter(|t| !kept.contains(t))
                    .collect();
                kept
            }
            None => {
                let states = ferry_schema::target_tables(dst, &self.targets).await?;
                let kept: BTreeSet<(String, String)> =
                    ferry_schema::prepare_existing(dst, &states, spec.options.existing_tables)
                        .await?
                        .into_iter()
                        .collect();
                record_kept(dst, &spec.name, &kept).await?;
                kept
            }
        };
        let pre: Vec<Ddl> = self
            .plan
            .pre_data
            .iter()
            .filter(|d| {
                let t = (d.db.clone(), d.name.clone());
                !(d.kind == ObjectKind::Table && (kept.contains(&t) || created_before.contains(&t)))
            })
            .cloned()
            .collect();
        ferry_schema::apply(dst, &pre, progress).await?;
        self.summary.objects_created += pre.len() as u64;
        self.summary.accounts = crate::accounts::copy(spec, dst).await?;
        self.kept = kept;
        Ok(())
    }

    /// The full load. Transient failures (a server restart, a network cut) retry from the chunk
    /// checkpoints: finished chunks stay done, the interrupted ones roll back and are redone.
    async fn full_data(&mut self) -> Result<(), JobError> {
        let (spec, progress) = (self.spec, self.progress);
        // The control connection would sit idle through the load (possibly past wait_timeout).
        self.dst = None;
        let tasks: Vec<TableTask> = self
            .tables
            .iter()
            .zip(&self.targets)
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
            throttle: self.opts.throttle.clone(),
            target_binlog: spec.options.target_binlog,
            snapshot_mode: spec.options.snapshot_mode,
            fence: self.fence.clone(),
        };
        let mut retrier = Retrier::new("full load", spec, progress);
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
        let summary = &mut self.summary;
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
        copy_sequences(
            spec,
            &self.structure.sequences,
            target(spec, &mut self.dst).await?,
        )
        .await
    }

    /// Post-data structure: secondary indexes and foreign keys (not on kept tables), triggers
    /// and events unless they wait for the end of a replay.
    async fn post_data(&mut self) -> Result<(), JobError> {
        self.window_end().await?;
        // The structure phase may have run in an earlier process.
        if let Some(kept) = recorded_kept(target(self.spec, &mut self.dst).await?, &self.spec.name).await? {
            self.kept = kept;
        }
        let post: Vec<Ddl> = self
            .plan
            .post_data
            .iter()
            .filter(|d| !self.deferred(d))
            .filter(|d| {
                !(matches!(d.kind, ObjectKind::Index | ObjectKind::ForeignKey)
                    && self.kept.contains(&(d.db.clone(), d.name.clone())))
            })
            .cloned()
            .collect();
        let (spec, progress) = (self.spec, self.progress);
        ferry_schema::apply(target(spec, &mut self.dst).await?, &post, progress).await?;
        self.summary.objects_created += post.len() as u64;
        Ok(())
    }

    /// A full-only job whose chunks were read at different positions replays the binlog up to
    /// the last one, then creates the triggers and events held back.
    async fn load_window(&mut self) -> Result<(), JobError> {
        let spec = self.spec;
        let Some(end) = self.window_end().await? else {
            return Ok(());
        };
        info!(until = %end, "the full load read its chunks at different positions: replaying the binlog up to the last one");
        self.dst = None;
        let mut ropts = replay_options(spec, self.opts).await?;
        ropts.stop_at = Some(end);
        let replay = replay_or_fail(spec, ropts, self.progress, self.opts.replay.clone()).await?;
        self.summary.objects_created += self.create_deferred().await?;
        self.summary.replay = Some(replay);
        Ok(())
    }

    /// MigrateType 3: the replay until completed, then cut-over: the sequences' state as the
    /// (now quiet) source has it and the triggers and events held back (neither for a job
    /// started at a position: the target's objects are the user's).
    async fn incremental(&mut self) -> Result<(), JobError> {
        let (spec, progress) = (self.spec, self.progress);
        self.dst = None;
        let mut ropts = replay_options(spec, self.opts).await?;
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
        let replay = replay_or_fail(spec, ropts, progress, self.opts.replay.clone()).await;
        drop(background);
        let replay = replay?;
        if !self.from_position {
            copy_sequences(
                spec,
                &self.structure.sequences,
                target(spec, &mut self.dst).await?,
            )
            .await?;
            self.summary.objects_created += self.create_deferred().await?;
        }
        self.summary.replay = Some(replay);
        Ok(())
    }

    /// The comparison. A transient failure starts it again (it keeps no partial result; with
    /// continuous verification the chunks digested before the failure stay stored).
    async fn verification(&mut self) -> Result<(), JobError> {
        let (spec, progress) = (self.spec, self.progress);
        let Some(mode) = self.verify_mode.clone() else {
            return Ok(());
        };
        self.dst = None;
        let cutover = spec
            .options
            .continuous_verify
            .filter(|_| mode == ferry_verify::VerifyMode::Full);
        let vopts = crate::verification::options_for(spec, mode);
        let mut retrier = Retrier::new("verification", spec, progress);
        let report = loop {
            let attempt = match &cutover {
                Some(cv) => crate::verification::verify_cutover(spec, cv).await.map(|(r, n)| {
                    self.summary.cutover_chunks = Some(n);
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
        self.summary.verification = Some(report);
        Ok(())
    }

    /// Creates the triggers and events held back while changes were replayed (dropped first, so
    /// a run that died half-way re-creates them); returns how many.
    async fn create_deferred(&mut self) -> Result<u64, JobError> {
        let late: Vec<Ddl> = self
            .plan
            .post_data
            .iter()
            .filter(|d| self.deferred(d))
            .cloned()
            .collect();
        let (spec, progress) = (self.spec, self.progress);
        let dst = target(spec, &mut self.dst).await?;
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
}
