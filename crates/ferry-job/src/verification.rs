//! A job's verification phase: the comparison its `MigrateOption.ConsistencyType` asks for
//! (2 full, 3 sample with `ConsistencyParams`, 4 only the tables the previous run found
//! inconsistent; 1 and 5 none), run with the job's endpoints, mapping and limits, and recorded in
//! `ferry_meta.verify_table` for the next ConsistencyType 4 run.
//!
//! Online verification: while the job's incremental replay runs (a `ferry_meta.replay_checkpoint`
//! row exists and the `incremental` phase is not done), [`options_for_live`] adds a
//! [`replay_fence`]: differing chunks are compared again once the replay has applied the source
//! up to the position read when they were found different, and their still-differing rows are
//! re-checked in fenced rounds (`ferry_verify::live`), so changes in flight are not reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::error::MysqlResultExt;
use ferry_core::progress::ProgressSink;
use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use ferry_core::{Endpoint, Position};
use ferry_replay::apply::{checkpoint, lag::pos_ge};
use ferry_replay::event::BinlogPos;
use ferry_verify::store::{previous_inconsistent, store_results};
use ferry_verify::{Fence, VerifyMode, VerifyOptions, VerifyReport};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::JobError;
use crate::spec::JobSpec;

/// The verification a job's `ConsistencyType` asks for (`None` for 1 and 5: no verification).
pub async fn mode_for_job(spec: &JobSpec) -> Result<Option<VerifyMode>, JobError> {
    let params = spec
        .request
        .migrate_option
        .as_ref()
        .and_then(|m| m.consistency_params.clone())
        .unwrap_or_default();
    let previous = if spec.consistency_type == 4 {
        previous_inconsistent(&spec.target, &spec.name).await?
    } else {
        None
    };
    Ok(VerifyMode::from_consistency_type(
        spec.consistency_type,
        params.select_rows_per_table,
        params.tables_select_all,
        previous,
    ))
}

/// How long [`options_for_live`]'s fence waits for the replay to reach a position.
pub const LIVE_FENCE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the fence reads the replay checkpoint (short: the row re-checks read the target as
/// soon as the replay has passed the source rows they read, leaving little time for later writes).
const FENCE_POLL: Duration = Duration::from_millis(10);

/// The percent of tables whose row counts a sample verification compares
/// (`ConsistencyParams.TablesSelectCount`; missing or 0 means 100, like the other percentages).
pub fn count_tables_percent(spec: &JobSpec) -> u8 {
    let v = spec
        .request
        .migrate_option
        .as_ref()
        .and_then(|m| m.consistency_params.as_ref())
        .and_then(|p| p.tables_select_count);
    match v {
        Some(p) if (1..=100).contains(&p) => p as u8,
        _ => 100,
    }
}

/// Options for comparing a job's objects in `mode`, with the job's threads, chunk size and rate,
/// without a replay fence (offline: no replay, or after cut-over). A sample verification
/// (ConsistencyType 3) compares the rows of `SelectRowsPerTable` percent of every chunk in
/// `TablesSelectAll` percent of the tables, and the row counts of `TablesSelectCount` percent
/// of the tables; a table with rows always has rows compared (see [`ferry_verify::VerifyMode`]).
pub fn options_for(spec: &JobSpec, mode: VerifyMode) -> VerifyOptions {
    VerifyOptions {
        count_tables_percent: count_tables_percent(spec),
        threads: spec.options.threads,
        chunk_rows: spec.options.chunk_rows,
        rows_per_second: spec.options.rows_per_second,
        max_keys_reported: 100,
        mode,
        fence: None,
        row_hash: ferry_verify::RowHash::Auto,
        resume: None,
    }
}

/// [`options_for`], plus a [`replay_fence`] (waiting up to [`LIVE_FENCE_TIMEOUT`]) when the job's
/// incremental replay is under way ([`replay_active`]).
pub async fn options_for_live(spec: &JobSpec, mode: VerifyMode) -> Result<VerifyOptions, JobError> {
    let mut opts = options_for(spec, mode);
    if replay_active(spec).await? {
        opts.fence = Some(replay_fence(spec, LIVE_FENCE_TIMEOUT));
    }
    Ok(opts)
}

async fn connect_target(spec: &JobSpec) -> Result<Conn, JobError> {
    let mut ep = spec.target.clone();
    ep.connect_timeout = spec.connect_timeout();
    ep.connect(Vec::new())
        .await
        .map_err(|e| JobError::connect("target", "DstInfo", &ep, e))
}

async fn meta_table_exists(conn: &mut Conn, table: &str) -> Result<bool, JobError> {
    Ok(ferry_core::meta::table_exists(conn, table).await?)
}

/// True when the job's incremental replay is under way: the target has a replay checkpoint for
/// the job and the job has not finished its `incremental` phase (cut-over). A replay that was
/// started and then stopped without cut-over counts as under way (the fence then times out,
/// saying so).
pub async fn replay_active(spec: &JobSpec) -> Result<bool, JobError> {
    let mut conn = connect_target(spec).await?;
    let active = replay_active_on(&mut conn, &spec.name).await;
    let _ = conn.disconnect().await;
    active
}

async fn replay_active_on(conn: &mut Conn, job: &str) -> Result<bool, JobError> {
    if !meta_table_exists(conn, "replay_checkpoint").await? {
        return Ok(false);
    }
    let rows: Option<u64> = conn
        .exec_first(
            format!(
                "SELECT COUNT(*) FROM {}.{} WHERE job = ?",
                quote_ident(META_SCHEMA),
                quote_ident("replay_checkpoint")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading ferry_meta.replay_checkpoint".into())?;
    if rows.unwrap_or(0) == 0 {
        return Ok(false);
    }
    if !meta_table_exists(conn, "job_phase").await? {
        return Ok(true);
    }
    let done: Option<u64> = conn
        .exec_first(
            format!(
                "SELECT COUNT(*) FROM {}.{} WHERE job = ? AND phase = 'incremental'",
                quote_ident(META_SCHEMA),
                quote_ident("job_phase")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading ferry_meta.job_phase".into())?;
    Ok(done.unwrap_or(0) == 0)
}

/// A fence that resolves once the job's replay checkpoint on the target
/// (`ferry_meta.replay_checkpoint`) is at or after the given source position (binlog files
/// ordered by their numeric suffix, then offsets), polling every 100 ms on one target connection,
/// and fails after `timeout`. An unknown position (`None`) resolves at once.
pub fn replay_fence(spec: &JobSpec, timeout: Duration) -> Fence {
    let mut target = spec.target.clone();
    target.connect_timeout = spec.connect_timeout();
    let job = spec.name.clone();
    Arc::new(move |pos: Option<Position>| {
        let (target, job) = (target.clone(), job.clone());
        Box::pin(async move { wait_for_replay(&target, &job, pos, timeout).await })
    })
}

async fn wait_for_replay(
    target: &Endpoint,
    job: &str,
    pos: Option<Position>,
    timeout: Duration,
) -> Result<(), String> {
    let want = match pos {
        None => return Ok(()),
        Some(Position::FilePos { file, pos }) => BinlogPos::new(file, pos),
        Some(other) => {
            return Err(format!(
                "cannot wait for the replay to reach {other:?}: only binlog file positions are supported"
            ))
        }
    };
    let deadline = Instant::now() + timeout;
    let mut conn = target
        .connect(Vec::new())
        .await
        .map_err(|e| format!("waiting for the replay to reach {want}: {e}"))?;
    let result = loop {
        let applied = match checkpoint::read(&mut conn, job).await {
            Ok(cp) => cp.map(|(cp, _)| cp.pos),
            Err(e) => break Err(format!("waiting for the replay to reach {want}: {e}")),
        };
        if applied.as_ref().is_some_and(|a| pos_ge(a, &want)) {
            break Ok(());
        }
        if Instant::now() >= deadline {
            let at = applied.map_or_else(|| "no replay checkpoint".to_string(), |a| format!("applied: {a}"));
            break Err(format!(
                "replay has not reached {want} within {} s ({at}): is `ferry run` replaying job {job:?}?",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(FENCE_POLL).await;
    };
    let _ = conn.disconnect().await;
    result
}

/// The verification at cut-over of a job with `Ferry.ContinuousVerify`: only the chunks changed
/// since their last digest are digested again (`ferry_verify::continuous::verify_cutover`); the
/// result is recorded like [`verify_job`]'s. Returns the report and (chunks digested again,
/// chunks in all, source rows read: only the parts the replay touched of most chunks).
pub async fn verify_cutover(
    spec: &JobSpec,
    cv: &crate::spec::ContinuousVerify,
) -> Result<(VerifyReport, (u64, u64, u64)), JobError> {
    let o = crate::continuous::options(spec, cv, false);
    let out = ferry_verify::continuous::verify_cutover(&spec.source, &spec.target, &spec.selection, None, &o)
        .await?;
    store_results(&spec.target, &spec.name, &out.report).await?;
    tracing::info!(
        rehashed = out.chunks_rehashed,
        chunks = out.chunks_total,
        rows = out.rows_rehashed,
        "cut-over verification: only changed chunks digested again"
    );
    Ok((
        out.report,
        (out.chunks_rehashed, out.chunks_total, out.rows_rehashed),
    ))
}

/// Runs the comparison and records its result on the target (except object-only runs).
pub async fn verify_job(
    spec: &JobSpec,
    opts: &VerifyOptions,
    progress: ProgressSink,
    repair: Option<&mut (dyn std::io::Write + Send)>,
) -> Result<VerifyReport, JobError> {
    let report = ferry_verify::verify(
        &spec.source,
        &spec.target,
        &spec.selection,
        opts,
        progress,
        repair,
    )
    .await?;
    if opts.mode != VerifyMode::Objects {
        store_results(&spec.target, &spec.name, &report).await?;
    }
    Ok(report)
}
