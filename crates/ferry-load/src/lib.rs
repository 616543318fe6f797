//! Ferry's parallel full-data loader.
//!
//! [`run_full_load`] copies a set of tables from the source to the target as of one consistent
//! snapshot and returns the binlog position of that snapshot, from which the incremental phase
//! starts:
//!
//! 1. [`snapshot`]: `threads` source connections share one consistent snapshot, taken under a
//!    short global lock that also yields the binlog position and GTID state;
//! 2. [`chunk`]: each table is cut into key ranges of about `chunk_rows` rows ([`keyrange`]);
//! 3. [`checkpoint`]: the plan is stored on the target (`ferry_meta`), once; a re-run reuses it
//!    and skips the chunks already done;
//! 4. [`worker`]: workers copy chunks in parallel, each chunk in one target transaction together
//!    with its checkpoint, so a crash loses or duplicates nothing; [`reader`] streams rows through
//!    the binary protocol into byte blocks, [`writer`] writes them with `LOAD DATA LOCAL INFILE`
//!    or multi-row `INSERT`s ([`statements`] holds the SQL of each table, [`session`] the
//!    connection settings).

pub mod checkpoint;
pub mod chunk;
pub mod error;
pub mod keyrange;
pub mod reader;
pub mod session;
pub mod snapshot;
pub mod statements;
pub mod worker;
pub mod writer;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::throttle::Throttle;
use ferry_core::{Endpoint, SnapshotPosition, TableSchema};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use error::LoadError;

use crate::chunk::ChunkPlan;
use crate::error::Ctx;
use crate::statements::TableSql;
use crate::worker::{Shared, WorkItem};

/// How rows are written on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMethod {
    /// `LOAD DATA LOCAL INFILE` when the target allows it (`@@local_infile = 1` and the statement
    /// is accepted; on errors 1148/3948 fall back to INSERT), else multi-row INSERT.
    #[default]
    Auto,
    /// `LOAD DATA LOCAL INFILE` only; a target that refuses it fails the load.
    LoadData,
    /// Multi-row `INSERT` statements.
    Insert,
}

/// Options of a full load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Identifies the job's checkpoints on the target.
    pub job_key: String,
    /// Parallel workers (each one source and one target connection).
    pub threads: usize,
    /// Target rows per chunk.
    pub chunk_rows: u64,
    pub write_method: WriteMethod,
    /// How long to wait for the source's global lock.
    pub lock_timeout: Duration,
    /// Rows/s and bytes/s limits; `set_limits` may be called while the load runs.
    pub throttle: Arc<Throttle>,
    /// Write the copied rows to the target's binary log (default). `false` sets
    /// `sql_log_bin = 0` on the writers: faster, but replicas of the target do not get the rows.
    pub target_binlog: bool,
    /// How the consistent snapshot is taken (`Ferry.SnapshotMode`).
    pub snapshot_mode: ferry_core::SnapshotMode,
    /// The job's ownership epoch (a cluster node's claim): every chunk commit checks it in the
    /// same round trip as its `COMMIT` ([`ferry_core::fence`]); `None`: no check.
    pub fence: Option<ferry_core::fence::Fence>,
}

impl LoadOptions {
    /// Default options for a job: 4 threads, 100 000 rows per chunk, automatic write method,
    /// 30 s lock timeout, no throttle.
    pub fn new(job_key: impl Into<String>) -> Self {
        LoadOptions {
            job_key: job_key.into(),
            threads: 4,
            chunk_rows: 100_000,
            write_method: WriteMethod::Auto,
            lock_timeout: Duration::from_secs(30),
            throttle: Arc::new(Throttle::new(0, 0)),
            target_binlog: true,
            snapshot_mode: ferry_core::SnapshotMode::Auto,
            fence: None,
        }
    }
}

/// One table to copy, and where it goes.
#[derive(Debug, Clone)]
pub struct TableTask {
    pub source: TableSchema,
    pub target_db: String,
    pub target_table: String,
    /// `Ferry.DbList`: only the rows of its filter and the columns it maps, under their target
    /// names; `None`: the whole table.
    pub mapping: Option<ferry_core::mapping::TableMapping>,
}

/// What a full load did.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// The snapshot this run read at (the planning run's snapshot when nothing was left to copy).
    pub snapshot: SnapshotPosition,
    /// How long commits were blocked on the source.
    pub lock_ms: u64,
    /// Lock-free loads (one read view per chunk): the longest a read view stayed open, in ms;
    /// `None` when all chunks were read in one snapshot (open for the whole copy).
    pub longest_read_view_ms: Option<u64>,
    pub tables: u64,
    /// Chunks copied by this run.
    pub chunks: u64,
    /// Chunks skipped because an earlier run had copied them.
    pub chunks_resumed: u64,
    /// Rows copied by this run.
    pub rows: u64,
    /// Bytes (encoded LOAD DATA or INSERT text) copied by this run.
    pub bytes: u64,
    pub elapsed: Duration,
    /// What was actually used: `LoadData` or `Insert`.
    pub write_method: WriteMethod,
}

/// Size of a LOAD DATA block.
const LOAD_BLOCK: usize = 1 << 20;
/// Largest INSERT statement.
const INSERT_BLOCK: usize = 4 << 20;

/// Checks the tasks' system-versioned tables ([`ferry_core::versioning`]): refuses by name the
/// transaction-precise ones, and all of them when the target cannot write their period columns.
/// True when there is any (the writers then set `system_versioning_insert_history`).
async fn check_system_versioned(control: &mut Conn, tasks: &[TableTask]) -> Result<bool, LoadError> {
    let versioned: Vec<&TableTask> = tasks.iter().filter(|t| t.source.system_time.is_some()).collect();
    let precise: Vec<String> = versioned
        .iter()
        .filter(|t| t.source.system_time.is_some_and(|s| s.transaction_precise))
        .map(|t| t.source.display_name())
        .collect();
    if !precise.is_empty() {
        return Err(LoadError::SystemVersioned {
            tables: precise.join(", "),
            reason: "transaction-precise (its row_start/row_end are the source's InnoDB transaction \
                     ids, which the target cannot take)"
                .into(),
        });
    }
    if versioned.is_empty() {
        return Ok(false);
    }
    match ferry_core::versioning::target_refusal(control).await {
        None => Ok(true),
        Some(reason) => Err(LoadError::SystemVersioned {
            tables: versioned
                .iter()
                .map(|t| t.source.display_name())
                .collect::<Vec<_>>()
                .join(", "),
            reason,
        }),
    }
}

/// Copies `tasks` from `src` to `dst` as of one consistent snapshot; see the crate docs.
pub async fn run_full_load(
    src: &Endpoint,
    dst: &Endpoint,
    tasks: Vec<TableTask>,
    opts: LoadOptions,
    progress: ProgressSink,
) -> Result<LoadSummary, LoadError> {
    let started = Instant::now();
    if opts.threads == 0 || opts.chunk_rows == 0 {
        return Err(LoadError::Options(
            "threads and chunk_rows must be at least 1".into(),
        ));
    }
    if opts.job_key.is_empty() || opts.job_key.len() > 191 {
        return Err(LoadError::Options("job_key must have 1 to 191 characters".into()));
    }
    let mut control = dst.connect(session::plain()).await?;
    check_targets(&mut control, &tasks).await?;
    let insert_history = check_system_versioned(&mut control, &tasks).await?;
    let (local_infile, max_packet): (Option<i64>, Option<u64>) = control
        .query_first("SELECT @@GLOBAL.local_infile, @@max_allowed_packet")
        .await
        .ctx(|| "reading local_infile and max_allowed_packet on the target".into())?
        .unwrap_or((None, None));
    let insert_only = match opts.write_method {
        WriteMethod::Insert => true,
        WriteMethod::Auto => local_infile != Some(1),
        WriteMethod::LoadData if local_infile != Some(1) => {
            return Err(LoadError::LocalInfileDisabled {
                reason: "@@local_infile is OFF".into(),
            })
        }
        WriteMethod::LoadData => false,
    };
    let max_packet = max_packet.unwrap_or(4 << 20) as usize;

    checkpoint::ensure_schema(&mut control).await?;
    let stored = checkpoint::load_plan(&mut control, &opts.job_key).await?;
    let plans = plan(src, &mut control, &opts, &tasks, stored.as_ref()).await?;

    let tables: Vec<TableSql> = tasks.iter().map(TableSql::new).collect();
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| {
        let s = &tasks[i].source;
        std::cmp::Reverse((s.data_length, s.estimated_rows))
    });
    let mut queue = VecDeque::new();
    let mut remaining = Vec::with_capacity(tasks.len());
    let mut total_chunks = 0u64;
    let mut resumed = 0u64;
    for p in &plans {
        let left = p.iter().filter(|(_, done)| !done).count() as u64;
        total_chunks += p.len() as u64;
        resumed += p.len() as u64 - left;
        remaining.push(AtomicU64::new(left));
    }
    for &i in &order {
        for (chunk, done) in &plans[i] {
            if !done {
                queue.push_back(WorkItem {
                    table: i,
                    chunk: chunk.clone(),
                });
            }
        }
    }
    // Rows and bytes of the chunks a previous run committed (the counters start from them).
    let (rows_done, bytes_done) = stored
        .as_ref()
        .map(|s| {
            s.chunks
                .iter()
                .filter(|c| c.done)
                .fold((0u64, 0u64), |(r, b), c| (r + c.rows, b + c.bytes))
        })
        .unwrap_or((0, 0));
    for (i, t) in tasks.iter().enumerate() {
        let (rows_done, bytes_done) = stored
            .as_ref()
            .map(|s| {
                s.chunks
                    .iter()
                    .filter(|c| c.done && c.db == t.target_db && c.tbl == t.target_table)
                    .fold((0u64, 0u64), |(r, b), c| (r + c.rows, b + c.bytes))
            })
            .unwrap_or((0, 0));
        let chunks = plans[i].len() as u64;
        progress(ProgressEvent::TablePlanned {
            table: tables[i].source_name.clone(),
            chunks,
            chunks_done: chunks - remaining[i].load(Ordering::Relaxed),
            rows_done,
            bytes_done,
            estimated_rows: t.source.estimated_rows,
        });
    }
    progress(ProgressEvent::LoadPlanned {
        tables: tasks.len() as u64,
        chunks: total_chunks,
        chunks_done: resumed,
        rows_done,
        bytes_done,
        estimated_rows: tasks.iter().map(|t| t.source.estimated_rows).sum(),
        estimated_bytes: tasks.iter().map(|t| t.source.data_length).sum(),
    });

    // Nothing left to copy: keep the snapshot of the run that planned the job, take no lock.
    let (snap, readers, lock_ms, views) = match stored.and_then(|s| s.snapshot) {
        Some(s) if queue.is_empty() => (s, Vec::new(), 0, None),
        _ => {
            let n = opts.threads.min(queue.len()).max(1);
            let s = snapshot::take(src, n, opts.lock_timeout, opts.snapshot_mode).await?;
            (s.position, s.readers, s.lock_ms, s.per_chunk)
        }
    };
    checkpoint::set_job_snapshot(&mut control, &opts.job_key, &snap).await?;
    ferry_core::fault::point(ferry_core::fault::LOAD_AFTER_SNAPSHOT)
        .ctx(|| "reading the first chunks after the snapshot".into())?;
    progress(ProgressEvent::SnapshotTaken {
        position: snap.clone(),
        lock_ms,
    });
    for (i, r) in remaining.iter().enumerate() {
        if r.load(Ordering::Relaxed) == 0 {
            progress(ProgressEvent::TableDone {
                table: tables[i].source_name.clone(),
            });
        }
    }

    let shared = Arc::new(Shared {
        tables,
        queue: Mutex::new(queue),
        remaining,
        requested: opts.write_method,
        insert_only: AtomicBool::new(insert_only),
        rows: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        chunks: AtomicU64::new(0),
        job: opts.job_key.clone(),
        fence: opts.fence.clone(),
        snapshot: checkpoint::snapshot_text(&snap),
        views,
        longest_view_ms: AtomicU64::new(0),
        throttle: opts.throttle.clone(),
        writer_setup: session::writer(opts.target_binlog, insert_history),
        progress: progress.clone(),
        dst: dst.clone(),
        load_block: LOAD_BLOCK.min(max_packet / 2).max(16 << 10),
        insert_block: INSERT_BLOCK.min(max_packet / 2).max(16 << 10),
        piece: LOAD_BLOCK.min(max_packet / 2).max(16 << 10),
    });
    // Dropping the JoinSet (when this future is dropped) aborts the workers: their connections
    // close and their open chunk transactions roll back.
    let mut set = JoinSet::new();
    for (n, reader) in readers.into_iter().enumerate() {
        let span = tracing::info_span!("load_worker", worker = n);
        set.spawn(worker::run(shared.clone(), reader).instrument(span));
    }
    let mut first_err = None;
    while let Some(res) = set.join_next().await {
        let err = match res {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(j) if j.is_cancelled() => continue,
            Err(j) => LoadError::Options(format!("a load worker panicked: {j}")),
        };
        if first_err.is_none() {
            first_err = Some(err);
            set.abort_all();
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    checkpoint::finish_job(&mut control, &opts.job_key).await?;
    let _ = control.disconnect().await;
    Ok(LoadSummary {
        snapshot: snap,
        lock_ms,
        longest_read_view_ms: views.map(|_| shared.longest_view_ms.load(Ordering::Relaxed)),
        tables: tasks.len() as u64,
        chunks: shared.chunks.load(Ordering::Relaxed),
        chunks_resumed: resumed,
        rows: shared.rows.load(Ordering::Relaxed),
        bytes: shared.bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        write_method: if shared.insert_only.load(Ordering::Relaxed) {
            WriteMethod::Insert
        } else {
            WriteMethod::LoadData
        },
    })
}

/// Fails with the first target table that does not exist.
async fn check_targets(conn: &mut Conn, tasks: &[TableTask]) -> Result<(), LoadError> {
    for t in tasks {
        let found: Option<u8> = conn
            .exec_first(
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.target_db, &t.target_table),
            )
            .await
            .ctx(|| "checking the target tables".into())?;
        if found.is_none() {
            return Err(LoadError::TargetTableMissing {
                table: format!("{}.{}", t.target_db, t.target_table),
            });
        }
    }
    Ok(())
}

/// The chunks of every task with their done flags: the stored plan where there is one, a new
/// plan (written to the target) for the tables it lacks.
async fn plan(
    src: &Endpoint,
    control: &mut Conn,
    opts: &LoadOptions,
    tasks: &[TableTask],
    stored: Option<&checkpoint::StoredPlan>,
) -> Result<Vec<Vec<(ChunkPlan, bool)>>, LoadError> {
    let mut by_table: BTreeMap<(String, String), Vec<(ChunkPlan, bool)>> = BTreeMap::new();
    if let Some(s) = stored {
        for c in &s.chunks {
            by_table
                .entry((c.db.clone(), c.tbl.clone()))
                .or_default()
                .push((c.plan.clone(), c.done));
        }
    }
    let mut planner = None;
    let mut new_plans = Vec::new();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let key = (t.target_db.clone(), t.target_table.clone());
        if let Some(p) = by_table.remove(&key) {
            out.push(p);
            continue;
        }
        if planner.is_none() {
            planner = Some(src.connect(session::plain()).await?);
        }
        let Some(conn) = planner.as_mut() else { continue };
        let span = tracing::info_span!("plan_table", table = %t.source.display_name());
        let chunks = chunk::plan_table(conn, &t.source, opts.chunk_rows)
            .instrument(span)
            .await?;
        out.push(chunks.iter().map(|c| (c.clone(), false)).collect());
        new_plans.push((key.0, key.1, chunks));
    }
    if let Some(p) = planner {
        let _ = p.disconnect().await;
    }
    if stored.is_none() || !new_plans.is_empty() {
        checkpoint::write_plan(control, &opts.job_key, stored.is_none(), &new_plans).await?;
    }
    Ok(out)
}

/// True when the job has a plan (finished or not) on the target.
pub async fn has_checkpoints(dst: &Endpoint, job_key: &str) -> Result<bool, LoadError> {
    let mut conn = dst.connect(session::plain()).await?;
    let r = checkpoint::has_plan(&mut conn, job_key).await;
    let _ = conn.disconnect().await;
    r
}

/// Deletes the job's plan and chunk checkpoints from the target.
pub async fn clear_checkpoints(dst: &Endpoint, job_key: &str) -> Result<(), LoadError> {
    let mut conn = dst.connect(session::plain()).await?;
    let r = checkpoint::clear(&mut conn, job_key).await;
    let _ = conn.disconnect().await;
    r
}
