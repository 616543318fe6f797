//! Ferry's verifier: proves that the target holds the source's rows, or says exactly which rows
//! differ and writes the SQL that repairs them.
//!
//! 1. [`plan`]: the selected tables, paired with their (renamed) target tables; each keyed table is
//!    cut into key ranges by the loader's own planner (`ferry_load::chunk::plan_table`);
//! 2. [`digest`]: per chunk, both servers compute, concurrently and under the same key range,
//!    `COUNT(*)` and the exact sums of a 64-bit hash of each row's exact canonical text (`CRC32`
//!    and `CRC32C` on MariaDB 10.8+, a 64-bit MD5 prefix elsewhere);
//! 3. chunks whose digests differ are compared row by row ([`drill`]); keyless tables are
//!    compared as multisets ([`keyless`]). Under live replay (a replay fence), differing chunks
//!    are digested again after the fence, and the rows of those still differing are re-checked in
//!    fenced rounds ([`live`]) so that changes in flight are never reported;
//! 4. [`repair`] writes INSERT / REPLACE / DELETE statements for every difference; [`objects`]
//!    compares the schema objects; [`report`] is the result, [`store`] keeps it on the target.
//! 5. [`resume`]: a full verification without a replay fence stores each chunk's digests as it
//!    goes, so a run interrupted (killed, failed) resumes from them while the source is unchanged;
//! 6. [`continuous`] keeps chunk digests on the target current while the replay runs (the replay
//!    marks the chunks it changes dirty), so the verification at cut-over digests only those;
//!    [`tree`] is the Merkle-style tree over a table's chunk digests, [`split`] cuts a chunk that
//!    grew in place.
//!
//! Exactness (measured on MariaDB 10.11): DOUBLE's text is its shortest round-trip form (20,000
//! random bit patterns, subnormals included, all read back exactly); FLOAT's own text has 6
//! significant digits (19,338 of 20,000 random floats did not read back) so it is widened with
//! `f + 0e0`, which prints exactly; `-0` is stored as `0`; `SUM` of a `CONV` string is a DOUBLE and
//! loses bits, so each hash is `CAST(… AS UNSIGNED)` and the sum is an exact `DECIMAL(42,0)`.

pub mod continuous;
pub mod digest;
pub mod drill;
pub mod error;
pub mod filter;
pub mod keyless;
pub mod live;
pub mod objects;
pub mod parts;
pub mod plan;
pub mod repair;
pub mod report;
pub mod resume;
mod sequences;
pub mod split;
pub mod store;
pub mod tree;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use ferry_core::connect::ProtectedPool;
use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::throttle::Throttle;
use ferry_core::{Endpoint, Position, Selection};
use ferry_load::chunk::{plan_table, ChunkPlan};
use futures_util::future::BoxFuture;
use mysql_async::Conn;
use tokio::task::JoinSet;

pub use error::VerifyError;
pub use filter::RowFilter;
pub use plan::{TableScope, ViewScope};
pub use report::{DiffKey, DiffKind, ObjectDiff, Sampling, TableReport, VerifyReport};

pub use crate::digest::RowHash;
use crate::digest::{
    binlog_position, choose_hash, digest_select, probe, run_digest, with_chunk, Digest, TextLayout,
};
use crate::drill::ChunkDiff;
use crate::error::Ctx;
use crate::plan::{Side, TableJob};

/// What a verification compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyMode {
    /// Every row of every selected table, and the objects.
    Full,
    /// `rows_percent` of the rows of every chunk (chosen by a hash of each row's key, the same
    /// rows on both sides), in `tables_percent` of the tables (chosen by a hash of the name), and
    /// the objects. A re-run compares the same sample. A table whose sample holds no row on either
    /// side is compared in full, so every table with rows has rows compared.
    Sample { rows_percent: u8, tables_percent: u8 },
    /// Only these source tables (`db`, `table`), e.g. those an earlier verification found
    /// inconsistent; no object comparison.
    OnlyTables(Vec<(String, String)>),
    /// Object-level comparison only.
    Objects,
    /// A comparison task's own objects: every selected table of `databases`, these tables (each
    /// with its columns and row filter), `rows_percent` of their rows (as in `Sample`), the
    /// definitions of these views; no other object comparison. A listed table the selection does
    /// not hold is reported as not compared. `time_zone` (`+hh:mm`): the session time zone of
    /// both sides, in which the filters' date-time literals and TIMESTAMP values are read
    /// (default UTC).
    Scoped {
        databases: Vec<String>,
        tables: Vec<TableScope>,
        views: Vec<ViewScope>,
        rows_percent: u8,
        time_zone: Option<String>,
    },
}

impl VerifyMode {
    /// The mode of Tencent DTS's `ConsistencyType`: 2 full, 3 sample (`SelectRowsPerTable` percent
    /// of rows, `TablesSelectAll` percent of tables; missing or 0 means 100), 4 the tables
    /// `previous` lists (the last report's inconsistent tables; `None`: never verified → full);
    /// 1 and 5 (no verification) → `None`.
    pub fn from_consistency_type(
        ty: i64,
        select_rows_per_table: Option<i64>,
        tables_select_all: Option<i64>,
        previous: Option<Vec<(String, String)>>,
    ) -> Option<VerifyMode> {
        let pct = |v: Option<i64>| match v {
            Some(p) if (1..=100).contains(&p) => p as u8,
            _ => 100,
        };
        match ty {
            2 => Some(VerifyMode::Full),
            3 => Some(VerifyMode::Sample {
                rows_percent: pct(select_rows_per_table),
                tables_percent: pct(tables_select_all),
            }),
            4 => Some(match previous {
                Some(list) => VerifyMode::OnlyTables(list),
                None => VerifyMode::Full,
            }),
            _ => None,
        }
    }
}

/// Called before differing chunks are compared again, with the source's binlog position read when
/// they were found different: resolves once the incremental replay has applied the source's
/// changes up to that position (online verification). Supplied by the replay engine.
pub type Fence = Arc<dyn Fn(Option<Position>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Options of a verification.
#[derive(Clone)]
pub struct VerifyOptions {
    /// Parallel workers (each one source and one target connection).
    pub threads: usize,
    /// Rows per chunk (the loader's planner).
    pub chunk_rows: u64,
    /// Rows/s read per side; 0 = unlimited.
    pub rows_per_second: u64,
    /// At most this many differing keys listed per table.
    pub max_keys_reported: usize,
    pub mode: VerifyMode,
    /// Replay fence for online verification: differing chunks are digested again after it, and
    /// the rows still differing are re-checked in fenced rounds ([`live`]); rows written on the
    /// source during every round are listed as changing continuously, not as differences.
    pub fence: Option<Fence>,
    /// The per-row hash of the chunk digests ([`RowHash::Auto`]: the fastest both servers have).
    pub row_hash: RowHash,
    /// Sample mode (`ConsistencyParams.TablesSelectCount`): the percent of tables whose row
    /// counts are compared (`SELECT COUNT(*)` on both sides). Tables in the `tables_percent`
    /// sample have their rows compared; those outside it but inside this one have their counts
    /// compared; the others are listed as not compared.
    pub count_tables_percent: u8,
    /// Store each chunk's digests as it goes and resume from those an interrupted run of this job
    /// stored ([`resume`]); only a full verification without a fence does.
    pub resume: Option<resume::Resume>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            threads: 4,
            chunk_rows: 20_000,
            rows_per_second: 0,
            max_keys_reported: 100,
            mode: VerifyMode::Full,
            fence: None,
            row_hash: RowHash::Auto,
            count_tables_percent: 0,
            resume: None,
        }
    }
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("threads", &self.threads)
            .field("chunk_rows", &self.chunk_rows)
            .field("rows_per_second", &self.rows_per_second)
            .field("max_keys_reported", &self.max_keys_reported)
            .field("mode", &self.mode)
            .field("fence", &self.fence.is_some())
            .field("row_hash", &self.row_hash)
            .field("count_tables_percent", &self.count_tables_percent)
            .field("resume", &self.resume)
            .finish()
    }
}

/// One chunk to digest.
#[derive(Debug, Clone)]
struct Work {
    table: usize,
    chunk: ChunkPlan,
}

/// A digested chunk.
#[derive(Debug)]
struct Digested {
    work: Work,
    src: Digest,
    dst: Digest,
    position: Option<Position>,
}

struct Shared {
    tables: Vec<TableJob>,
    src_sql: Vec<String>,
    dst_sql: Vec<String>,
    throttle: Throttle,
    want_position: bool,
    max_keys: usize,
    repair: bool,
    fence: Option<Fence>,
    src: ProtectedPool,
    dst: ProtectedPool,
    /// Where each digested chunk is stored for a resumed run ([`resume`]).
    record: Option<resume::RunStore>,
}

/// One pooled connection to each side.
async fn both_conns(sh: &Shared) -> Result<(Conn, Conn), VerifyError> {
    let sc = sh.src.get_conn().await?;
    let dc = sh.dst.get_conn().await?;
    Ok((sc, dc))
}

async fn digest_work(sh: Arc<Shared>, w: Work) -> Result<Digested, VerifyError> {
    let t = &sh.tables[w.table];
    let (spred, dpred) = (t.predicate(Side::Source), t.predicate(Side::Target));
    let (ssql, sp) = with_chunk(
        &sh.src_sql[w.table],
        t.chunk_key.as_deref(),
        &w.chunk,
        spred.as_deref(),
    )?;
    let (dsql, dp) = with_chunk(
        &sh.dst_sql[w.table],
        t.chunk_key.as_deref(),
        &w.chunk,
        dpred.as_deref(),
    )?;
    let what = format!("{} chunk {}", t.source_name(), w.chunk.chunk_no);
    let (mut sc, mut dc) = both_conns(&sh).await?;
    let (a, b) = tokio::join!(
        run_digest(&mut sc, &ssql, sp, "source", &what),
        run_digest(&mut dc, &dsql, dp, "target", &what)
    );
    let (src, dst) = (a?, b?);
    let position = if src != dst && sh.want_position {
        binlog_position(&mut sc).await
    } else {
        None
    };
    sh.throttle.acquire(src.rows.max(dst.rows), 0).await;
    Ok(Digested {
        work: w,
        src,
        dst,
        position,
    })
}

/// The row-level comparison of one chunk.
struct Drilled {
    work: Work,
    diff: ChunkDiff,
    /// Rows changing continuously under live replay (count, display keys).
    changing: u64,
    changing_keys: Vec<Vec<String>>,
}

async fn drill_work(sh: Arc<Shared>, w: Work) -> Result<Drilled, VerifyError> {
    let t = &sh.tables[w.table];
    let (mut sc, mut dc) = both_conns(&sh).await?;
    if let (Some(fence), Some(_)) = (&sh.fence, &t.key) {
        let o = live::recheck_chunk(
            &mut sc,
            &mut dc,
            t,
            &w.chunk,
            fence,
            sh.max_keys,
            sh.repair,
            &sh.throttle,
        )
        .await?;
        return Ok(Drilled {
            work: w,
            diff: o.diff,
            changing: o.changing,
            changing_keys: o.changing_keys,
        });
    }
    let d = if t.key.is_some() {
        drill::drill_chunk(
            &mut sc,
            &mut dc,
            t,
            &w.chunk,
            sh.max_keys,
            sh.repair,
            &sh.throttle,
        )
        .await?
    } else if let Some(fence) = &sh.fence {
        keyless::compare_table_live(&mut sc, &mut dc, t, sh.max_keys, sh.repair, &sh.throttle, fence).await?
    } else {
        keyless::compare_table(&mut sc, &mut dc, t, sh.max_keys, sh.repair, &sh.throttle).await?
    };
    Ok(Drilled {
        work: w,
        diff: d,
        changing: 0,
        changing_keys: Vec::new(),
    })
}

/// Runs `f` over `items` with at most `threads` at a time, handing each result to `done` in the
/// calling task.
async fn run_bounded<T, R, Fut>(
    items: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> Fut,
    mut done: impl FnMut(R) -> Result<(), VerifyError>,
) -> Result<(), VerifyError>
where
    Fut: Future<Output = Result<R, VerifyError>> + Send + 'static,
    R: Send + 'static,
{
    let mut set = JoinSet::new();
    let mut it = items.into_iter();
    loop {
        while set.len() < threads.max(1) {
            match it.next() {
                Some(x) => {
                    set.spawn(f(x));
                }
                None => break,
            }
        }
        match set.join_next().await {
            None => return Ok(()),
            Some(Ok(Ok(r))) => done(r)?,
            Some(Ok(Err(e))) => {
                set.abort_all();
                return Err(e);
            }
            Some(Err(e)) => {
                set.abort_all();
                return Err(VerifyError::Worker(e.to_string()));
            }
        }
    }
}

/// The chunks of every table (one unbounded chunk for a table without a chunking key), planned on
/// up to `threads` source connections at once.
async fn plan_all(
    src: &Endpoint,
    tables: &[TableJob],
    chunk_rows: u64,
    threads: usize,
) -> Result<Vec<Vec<ChunkPlan>>, VerifyError> {
    let whole = || {
        vec![ChunkPlan {
            chunk_no: 0,
            lower: None,
            upper: None,
        }]
    };
    let mut out: Vec<Vec<ChunkPlan>> = tables.iter().map(|_| whole()).collect();
    let keyed: Vec<(usize, ferry_core::TableSchema)> = tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.chunk_key.is_some())
        .map(|(i, t)| (i, t.source.clone()))
        .collect();
    if keyed.is_empty() {
        return Ok(out);
    }
    let pool = ProtectedPool::new(src, threads, ferry_load::session::plain());
    let result = run_bounded(
        keyed,
        threads,
        |(i, schema)| {
            let pool = pool.clone();
            async move {
                let mut conn = pool.get_conn().await?;
                let chunks = plan_table(&mut conn, &schema, chunk_rows).await?;
                Ok((i, chunks))
            }
        },
        |(i, chunks): (usize, Vec<ChunkPlan>)| {
            out[i] = chunks;
            Ok(())
        },
    )
    .await;
    let _ = pool.disconnect().await;
    result.map(|()| out)
}

/// Per-table accumulation.
struct Acc {
    report: TableReport,
    keys: BTreeMap<u32, Vec<DiffKey>>,
}

fn new_report(t: &TableJob, chunks: u64) -> TableReport {
    TableReport {
        database: t.source.db.clone(),
        table: t.source.name.clone(),
        target_database: t.target_db.clone(),
        target_table: t.target_table.clone(),
        rows_compared: 0,
        target_rows: 0,
        only_in_source: 0,
        only_in_target: 0,
        different: 0,
        key_columns: match &t.key {
            Some(k) => k.iter().map(|&i| t.columns[i].name.clone()).collect(),
            None => t.names(),
        },
        keys: Vec::new(),
        method: t.method().to_string(),
        chunks,
        chunks_compared: 0,
        chunks_different: 0,
        error: None,
        notes: Vec::new(),
        changing: 0,
        changing_keys: Vec::new(),
        sample_percent: t.sample_percent,
        sample_fallback: false,
        filter: t.filter.as_ref().map(|f| f.text().to_string()),
        compared_columns: if t.partial_columns { t.names() } else { Vec::new() },
        chunks_resumed: 0,
    }
}

/// Compares the selected tables (and objects) of two servers. `repair`, when given, receives SQL
/// that makes the target equal to the source for every row found different.
pub async fn verify(
    src: &Endpoint,
    dst: &Endpoint,
    sel: &Selection,
    opts: &VerifyOptions,
    progress: ProgressSink,
    mut repair: Option<&mut (dyn std::io::Write + Send)>,
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    if opts.chunk_rows == 0 {
        return Err(VerifyError::Options("chunk_rows must be at least 1".into()));
    }
    let time_zone = match &opts.mode {
        VerifyMode::Scoped {
            time_zone: Some(tz), ..
        } => {
            if !digest::valid_offset(tz) {
                return Err(VerifyError::Options(format!(
                    "the time zone {tz:?} is not an offset of the form +hh:mm"
                )));
            }
            tz.clone()
        }
        _ => "+00:00".to_string(),
    };
    progress(ProgressEvent::PhaseStarted {
        phase: "verify".into(),
    });
    let mut sconn = src.connect(ferry_load::session::plain()).await?;
    let mut dconn = dst.connect(ferry_load::session::plain()).await?;
    let objects = match &opts.mode {
        VerifyMode::OnlyTables(_) => Vec::new(),
        VerifyMode::Scoped { views, .. } if views.is_empty() => Vec::new(),
        VerifyMode::Scoped { views, .. } => {
            for v in views {
                if !sel.whole_db(&v.db) {
                    return Err(VerifyError::Options(format!(
                        "the views of {} are not part of the migration (only whole databases carry their views)",
                        v.db
                    )));
                }
            }
            objects::compare(&mut sconn, &mut dconn, sel)
                .await?
                .into_iter()
                .filter(|o| o.object_type == "VIEW" && view_in_scope(o, views, sel))
                .collect()
        }
        _ => objects::compare(&mut sconn, &mut dconn, sel).await?,
    };
    if opts.mode == VerifyMode::Objects {
        let _ = sconn.disconnect().await;
        let _ = dconn.disconnect().await;
        progress(ProgressEvent::PhaseFinished {
            phase: "verify".into(),
        });
        return Ok(VerifyReport {
            consistent: objects.is_empty(),
            tables: Vec::new(),
            objects,
            elapsed_ms: started.elapsed().as_millis() as u64,
            sampling: None,
        });
    }
    let only = match &opts.mode {
        VerifyMode::OnlyTables(list) => Some(list.as_slice()),
        _ => None,
    };
    let (mut tables, mut bad) = plan::resolve(&mut sconn, &mut dconn, sel, only).await?;
    // A comparison task's scope: its databases and tables; the listed tables the selection does
    // not hold are reported, not skipped.
    let mut outside: Vec<TableReport> = Vec::new();
    if let VerifyMode::Scoped {
        databases,
        tables: scopes,
        ..
    } = &opts.mode
    {
        let wanted = |db: &str, table: &str| {
            databases.iter().any(|d| d == db) || scopes.iter().any(|s| s.db == db && s.table == table)
        };
        tables.retain(|t| wanted(&t.source.db, &t.source.name));
        bad.retain(|u| wanted(&u.source.db, &u.source.name));
        for s in scopes {
            let found = tables
                .iter()
                .any(|t| t.source.db == s.db && t.source.name == s.table)
                || bad
                    .iter()
                    .any(|u| u.source.db == s.db && u.source.name == s.table);
            if !found {
                let (tdb, tt) = sel
                    .target_table(&s.db, &s.table)
                    .unwrap_or_else(|| (s.db.clone(), s.table.clone()));
                let mut r = error_report(
                    &s.db,
                    &s.table,
                    tdb,
                    tt,
                    format!(
                        "{}.{} is not among the tables the job migrates (on the source): not compared",
                        s.db, s.table
                    ),
                );
                r.filter = s.filter.as_ref().map(|f| f.text().to_string());
                outside.push(r);
            }
        }
    }
    let (rows_pct, tables_pct) = match &opts.mode {
        VerifyMode::Sample {
            rows_percent,
            tables_percent,
        } => (*rows_percent, *tables_percent),
        VerifyMode::Scoped { rows_percent, .. } => (*rows_percent, 100),
        _ => (100, 100),
    };
    let rows_pct = rows_pct.clamp(1, 100);
    let count_pct = if matches!(opts.mode, VerifyMode::Sample { .. }) {
        opts.count_tables_percent
    } else {
        0
    };
    // The tables compared row by row, those whose counts only are compared, the others.
    let mut content: Vec<TableJob> = Vec::new();
    let mut counted: Vec<TableJob> = Vec::new();
    let mut not_compared: Vec<String> = Vec::new();
    for mut t in tables {
        if let VerifyMode::Scoped { tables: scopes, .. } = &opts.mode {
            if let Some(scope) = scopes
                .iter()
                .find(|s| s.db == t.source.db && s.table == t.source.name)
            {
                t = match plan::apply_scope(t, scope) {
                    Ok(t) => t,
                    Err(u) => {
                        bad.push(*u);
                        continue;
                    }
                };
            }
        }
        t.sample_percent = rows_pct;
        if plan::table_sampled(&t.source.db, &t.source.name, tables_pct) {
            content.push(t);
        } else if plan::table_sampled(&t.source.db, &t.source.name, count_pct) {
            counted.push(t);
        } else {
            not_compared.push(t.source_name());
        }
    }
    if repair.is_some() {
        if let Some(t) = content.iter().find(|t| t.partial_columns) {
            return Err(VerifyError::Options(format!(
                "repair SQL needs every column: {} is compared on some columns only",
                t.source_name()
            )));
        }
    }
    let tables = content;
    let mut accs: Vec<Acc> = Vec::with_capacity(tables.len());
    let mut work = Vec::new();
    let plans = plan_all(src, &tables, opts.chunk_rows, opts.threads).await?;
    for (i, (t, chunks)) in tables.iter().zip(&plans).enumerate() {
        let mut report = new_report(t, chunks.len() as u64);
        for c in chunks {
            report.chunks_compared += 1;
            work.push(Work {
                table: i,
                chunk: c.clone(),
            });
        }
        accs.push(Acc {
            report,
            keys: BTreeMap::new(),
        });
    }
    // The row hash both servers can compute; the one-text form where the server allows it.
    let (ssup, dsup) = (probe(&mut sconn).await, probe(&mut dconn).await);
    let hash = choose_hash(opts.row_hash, ssup, dsup)?;
    tracing::debug!(?hash, source = ?ssup, target = ?dsup, "verify: row hash");

    let threads = opts.threads.max(1);
    let src_pool = ProtectedPool::new(src, threads, digest::session_in(&time_zone));
    let dst_pool = ProtectedPool::new(dst, threads, digest::session_in(&time_zone));
    let hashing = Hashing {
        hash,
        src_one_text: ssup.row_variable,
        dst_one_text: dsup.row_variable,
    };
    let mut shared = make_shared(tables, &hashing, opts, repair.is_some(), &src_pool, &dst_pool);
    let mut pending = Pending::from(work);
    let resumable = opts.mode == VerifyMode::Full && opts.fence.is_none();
    if let (Some(r), true) = (&opts.resume, resumable) {
        let fp = resume::fingerprint(opts.chunk_rows, &shared.src_sql, &shared.dst_sql);
        let position = binlog_position(&mut sconn).await;
        let prepared = match ferry_core::meta::ensure(&mut dconn).await {
            Ok(()) => resume::prepare(&mut dconn, r, &fp, position, &shared.tables, &plans).await,
            Err(e) => Err(e.into()),
        };
        match prepared {
            Ok(p) => {
                if let Some(why) = &p.reason {
                    tracing::info!(reason = %why, "verify: not resuming an interrupted run");
                }
                pending.resume(p.stored, &mut accs);
                // Not shared with any task yet.
                if let Some(sh) = Arc::get_mut(&mut shared) {
                    sh.record = p.store;
                }
            }
            // A target this account cannot write to (ferry_meta): verify without storing.
            Err(e) => tracing::warn!(
                error = %e,
                "verify: the chunks cannot be stored on the target; an interrupted run will not resume"
            ),
        }
    }
    let _ = sconn.disconnect().await;
    let _ = dconn.disconnect().await;
    let mut result = compare_all(&shared, &mut accs, pending, opts, &progress, &mut repair, true).await;
    if let (Ok(()), Some(store)) = (&result, &shared.record) {
        // Completed: a finished run is never resumed.
        result = match dst_pool.get_conn().await {
            Ok(mut c) => store.finish(&mut c).await,
            Err(e) => Err(e.into()),
        };
    }
    // A sample that selected no row on either side: the table is compared in full, so that no
    // table with rows is reported without rows compared.
    if result.is_ok() && rows_pct < 100 {
        let empty: Vec<usize> = (0..accs.len())
            .filter(|&i| accs[i].report.rows_compared == 0 && accs[i].report.target_rows == 0)
            .collect();
        if !empty.is_empty() {
            let mut again = shared.tables.clone();
            for &i in &empty {
                again[i].sample_percent = 100;
                let r = &mut accs[i].report;
                r.sample_percent = 100;
                r.sample_fallback = true;
                r.chunks_compared = 0;
            }
            let full = make_shared(again, &hashing, opts, repair.is_some(), &src_pool, &dst_pool);
            let plans = plan_all(
                src,
                &empty.iter().map(|&i| full.tables[i].clone()).collect::<Vec<_>>(),
                opts.chunk_rows,
                opts.threads,
            )
            .await;
            result = match plans {
                Ok(plans) => {
                    let mut work = Vec::new();
                    for (&i, chunks) in empty.iter().zip(plans) {
                        accs[i].report.chunks = chunks.len() as u64;
                        for c in chunks {
                            accs[i].report.chunks_compared += 1;
                            work.push(Work { table: i, chunk: c });
                        }
                    }
                    compare_all(&full, &mut accs, work, opts, &progress, &mut repair, false).await
                }
                Err(e) => Err(e),
            };
        }
    }
    let counts = if result.is_ok() && !counted.is_empty() {
        count_tables(&counted, threads, &src_pool, &dst_pool).await
    } else {
        Ok(Vec::new())
    };
    let _ = src_pool.disconnect().await;
    let _ = dst_pool.disconnect().await;
    result?;
    let counts = counts?;

    let cap = opts.max_keys_reported;
    let mut reports: Vec<TableReport> = accs
        .into_iter()
        .map(|mut a| {
            a.report.keys = a.keys.into_values().flatten().take(cap).collect();
            a.report
        })
        .collect();
    for (t, (s, d)) in counted.iter().zip(counts) {
        let mut r = new_report(t, 1);
        r.method = "row-count".into();
        r.sample_percent = 0;
        r.chunks_compared = 1;
        r.rows_compared = s;
        r.target_rows = d;
        r.only_in_source = s.saturating_sub(d);
        r.only_in_target = d.saturating_sub(s);
        r.key_columns = Vec::new();
        reports.push(r);
    }
    reports.extend(outside);
    for u in bad {
        let mut r = error_report(
            &u.source.db,
            &u.source.name,
            u.target_db,
            u.target_table,
            u.reason,
        );
        r.sample_percent = rows_pct;
        r.method = if u.source.row_key().is_some() {
            "chunked-checksum"
        } else {
            "keyless-multiset"
        }
        .into();
        reports.push(r);
    }
    reports.sort_by(|a, b| (&a.database, &a.table).cmp(&(&b.database, &b.table)));
    for r in &reports {
        progress(ProgressEvent::TableDone {
            table: format!("{}.{}", r.database, r.table),
        });
    }
    progress(ProgressEvent::PhaseFinished {
        phase: "verify".into(),
    });
    let sampling = match &opts.mode {
        VerifyMode::Sample { .. } | VerifyMode::Scoped { .. } => Some(Sampling {
            rows_percent: rows_pct,
            tables_percent: tables_pct.min(100),
            count_tables_percent: count_pct.min(100),
            not_compared,
        }),
        _ => None,
    };
    Ok(VerifyReport {
        consistent: objects.is_empty() && reports.iter().all(TableReport::consistent),
        tables: reports,
        objects,
        elapsed_ms: started.elapsed().as_millis() as u64,
        sampling,
    })
}

/// The report of a table that could not be compared, saying why.
fn error_report(
    db: &str,
    table: &str,
    target_db: String,
    target_table: String,
    reason: String,
) -> TableReport {
    TableReport {
        database: db.to_string(),
        table: table.to_string(),
        target_database: target_db,
        target_table,
        rows_compared: 0,
        target_rows: 0,
        only_in_source: 0,
        only_in_target: 0,
        different: 0,
        key_columns: Vec::new(),
        keys: Vec::new(),
        method: String::new(),
        chunks: 0,
        chunks_compared: 0,
        chunks_different: 0,
        error: Some(reason),
        notes: Vec::new(),
        changing: 0,
        changing_keys: Vec::new(),
        sample_percent: 100,
        sample_fallback: false,
        filter: None,
        compared_columns: Vec::new(),
        chunks_resumed: 0,
    }
}

/// True when a view difference is one of the views a comparison task asked for.
fn view_in_scope(o: &ObjectDiff, views: &[ViewScope], sel: &Selection) -> bool {
    views.iter().any(|v| {
        let tdb = sel.target_db(&v.db).unwrap_or_else(|| v.db.clone());
        let name = if !o.source_name.is_empty() {
            o.source_name
                .strip_prefix(&format!("{}.", v.db))
                .map(str::to_string)
        } else {
            o.target_name.strip_prefix(&format!("{tdb}.")).map(str::to_string)
        };
        match (name, &v.views) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(n), Some(list)) => list.iter().any(|w| w == &n),
        }
    })
}

/// The row hash of a run and whether each side builds a row's text once.
struct Hashing {
    hash: RowHash,
    src_one_text: bool,
    dst_one_text: bool,
}

fn make_shared(
    tables: Vec<TableJob>,
    h: &Hashing,
    opts: &VerifyOptions,
    repair: bool,
    src: &ProtectedPool,
    dst: &ProtectedPool,
) -> Arc<Shared> {
    let layouts: Vec<TextLayout> = tables
        .iter()
        .map(|t| TextLayout::new(&t.columns, &t.target_columns))
        .collect();
    Arc::new(Shared {
        src_sql: tables
            .iter()
            .zip(&layouts)
            .map(|(t, l)| digest_select(&t.from(Side::Source), &t.columns, l, h.hash, h.src_one_text))
            .collect(),
        dst_sql: tables
            .iter()
            .zip(&layouts)
            .map(|(t, l)| {
                digest_select(
                    &t.from(Side::Target),
                    &t.target_columns,
                    l,
                    h.hash,
                    h.dst_one_text,
                )
            })
            .collect(),
        tables,
        throttle: Throttle::new(opts.rows_per_second, 0),
        want_position: opts.fence.is_some(),
        max_keys: opts.max_keys_reported,
        repair,
        fence: opts.fence.clone(),
        src: src.clone(),
        dst: dst.clone(),
        record: None,
    })
}

/// `SELECT COUNT(*)` of each table (with its filter) on both sides.
async fn count_tables(
    tables: &[TableJob],
    threads: usize,
    src: &ProtectedPool,
    dst: &ProtectedPool,
) -> Result<Vec<(u64, u64)>, VerifyError> {
    let mut out = vec![(0u64, 0u64); tables.len()];
    let items: Vec<(usize, TableJob)> = tables.iter().cloned().enumerate().collect();
    run_bounded(
        items,
        threads,
        |(i, t)| {
            let (src, dst) = (src.clone(), dst.clone());
            async move {
                let count = |pool: ProtectedPool, side: Side| {
                    let t = t.clone();
                    async move {
                        let (db, table, _) = t.side(side);
                        let mut sql = format!("SELECT COUNT(*) FROM {}", t.from(side));
                        if let Some(f) = &t.filter {
                            sql.push_str(&format!(" WHERE {}", f.sql()));
                        }
                        let what = match side {
                            Side::Source => "source",
                            Side::Target => "target",
                        };
                        let mut conn = pool.get_conn().await?;
                        let n: Option<u64> = mysql_async::prelude::Queryable::query_first(&mut conn, sql)
                            .await
                            .ctx(|| format!("counting the rows of {db}.{table} on the {what}"))?;
                        Ok::<u64, VerifyError>(n.unwrap_or(0))
                    }
                };
                let (a, b) = tokio::join!(count(src, Side::Source), count(dst, Side::Target));
                Ok((i, (a?, b?)))
            }
        },
        |(i, c): (usize, (u64, u64))| {
            out[i] = c;
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

/// The chunks a comparison digests, and those whose digests an interrupted run stored
/// ([`resume`]).
struct Pending {
    work: Vec<Work>,
    stored: Vec<resume::Stored>,
}

impl From<Vec<Work>> for Pending {
    fn from(work: Vec<Work>) -> Self {
        Pending {
            work,
            stored: Vec::new(),
        }
    }
}

impl Pending {
    /// Takes the stored chunks out of the work, counting them per table.
    fn resume(&mut self, stored: Vec<resume::Stored>, accs: &mut [Acc]) {
        let done: std::collections::HashSet<(usize, u32)> =
            stored.iter().map(|s| (s.table, s.chunk.chunk_no)).collect();
        self.work.retain(|w| !done.contains(&(w.table, w.chunk.chunk_no)));
        for s in &stored {
            if let Some(a) = accs.get_mut(s.table) {
                a.report.chunks_resumed += 1;
            }
        }
        self.stored = stored;
    }
}

/// Digests (and stores, for a resumable run) one chunk.
async fn digest_and_record(sh: Arc<Shared>, w: Work) -> Result<Digested, VerifyError> {
    let d = digest_work(sh.clone(), w).await?;
    if let Some(store) = &sh.record {
        let mut c = sh.dst.get_conn().await?;
        store
            .record(
                &mut c,
                &sh.tables[d.work.table],
                d.work.chunk.chunk_no,
                &d.src,
                &d.dst,
            )
            .await?;
    }
    Ok(d)
}

async fn compare_all(
    shared: &Arc<Shared>,
    accs: &mut [Acc],
    work: impl Into<Pending>,
    opts: &VerifyOptions,
    progress: &ProgressSink,
    repair: &mut Option<&mut (dyn std::io::Write + Send)>,
    header: bool,
) -> Result<(), VerifyError> {
    let threads = opts.threads.max(1);
    let Pending { work, stored } = work.into();
    // 1. Digests of every chunk, on both sides (those an interrupted run stored are taken as
    //    they are).
    let mut digested: Vec<Digested> = stored
        .into_iter()
        .map(|s| Digested {
            work: Work {
                table: s.table,
                chunk: s.chunk,
            },
            src: s.src,
            dst: s.dst,
            position: None,
        })
        .collect();
    {
        let sh = shared.clone();
        run_bounded(
            work,
            threads,
            move |w| digest_and_record(sh.clone(), w),
            |d: Digested| {
                ferry_core::fault::point(ferry_core::fault::VERIFY_CHUNK).map_err(|e| {
                    VerifyError::Mysql {
                        context: "comparing chunks".into(),
                        source: e,
                    }
                })?;
                progress(ProgressEvent::ChunkDone {
                    table: shared.tables[d.work.table].source_name(),
                    rows: d.src.rows,
                    bytes: 0,
                });
                digested.push(d);
                Ok(())
            },
        )
        .await?;
    }
    // 2. With a replay fence: wait until the replay passed the latest position read while a chunk
    //    differed, then digest the differing chunks once more.
    if let Some(fence) = &opts.fence {
        let differing: Vec<usize> = (0..digested.len())
            .filter(|&i| digested[i].src != digested[i].dst)
            .collect();
        if !differing.is_empty() {
            let pos = differing
                .iter()
                .filter_map(|&i| digested[i].position.clone())
                .max_by(|a, b| position_key(a).cmp(&position_key(b)));
            fence(pos).await.map_err(VerifyError::Fence)?;
            let again: Vec<Work> = differing.iter().map(|&i| digested[i].work.clone()).collect();
            let mut fresh: HashMap<(usize, u32), Digested> = HashMap::new();
            let sh = shared.clone();
            run_bounded(
                again,
                threads,
                move |w| digest_work(sh.clone(), w),
                |d: Digested| {
                    fresh.insert((d.work.table, d.work.chunk.chunk_no), d);
                    Ok(())
                },
            )
            .await?;
            for d in digested.iter_mut() {
                if let Some(n) = fresh.remove(&(d.work.table, d.work.chunk.chunk_no)) {
                    *d = n;
                }
            }
        }
    }
    // 3. Row-level comparison of the chunks that still differ.
    let mut drill = Vec::new();
    for d in digested {
        let r = &mut accs[d.work.table].report;
        r.rows_compared += d.src.rows;
        r.target_rows += d.dst.rows;
        if d.src != d.dst {
            r.chunks_different += 1;
            drill.push(d.work);
        }
    }
    if let Some(w) = repair.as_deref_mut().filter(|_| header) {
        w.write_all(repair::header().as_bytes())
            .map_err(VerifyError::Repair)?;
    }
    let cap = opts.max_keys_reported;
    let fenced = opts.fence.is_some();
    let sh = shared.clone();
    run_bounded(
        drill,
        threads,
        move |w| drill_work(sh.clone(), w),
        |dr: Drilled| {
            let (w, d) = (dr.work, dr.diff);
            let acc = &mut accs[w.table];
            let r = &mut acc.report;
            r.changing += dr.changing;
            for k in dr.changing_keys {
                if r.changing_keys.len() < cap {
                    r.changing_keys.push(k);
                }
            }
            if d.total() == 0 && fenced {
                // Under live replay the change that made the digests differ was applied between
                // the digest and the row comparison: in flight, not a difference.
                r.chunks_different = r.chunks_different.saturating_sub(1);
            } else if d.total() == 0 {
                r.notes.push(format!(
                    "chunk {}: the digests differ but every row compares equal (do the two sides' \
                     column types print values differently? see the object differences)",
                    w.chunk.chunk_no
                ));
            }
            r.only_in_source += d.only_in_source;
            r.only_in_target += d.only_in_target;
            r.different += d.different;
            if !d.keys.is_empty() {
                acc.keys.insert(w.chunk.chunk_no, d.keys);
                // Keep only the first `cap` keys in chunk order.
                let mut total: usize = acc.keys.values().map(Vec::len).sum();
                while total > cap {
                    let Some(mut last) = acc.keys.last_entry() else {
                        break;
                    };
                    let excess = (total - cap).min(last.get().len());
                    let keep = last.get().len() - excess;
                    last.get_mut().truncate(keep);
                    if last.get().is_empty() {
                        last.remove();
                    }
                    total -= excess;
                }
            }
            if let Some(out) = repair.as_deref_mut() {
                out.write_all(&d.repair).map_err(VerifyError::Repair)?;
            }
            Ok(())
        },
    )
    .await?;
    if let Some(w) = repair.as_deref_mut() {
        w.flush().map_err(VerifyError::Repair)?;
    }
    Ok(())
}

/// Orders file + offset positions (binlog file names sort by their numeric suffix).
fn position_key(p: &Position) -> (String, u64) {
    match p {
        Position::FilePos { file, pos } => (file.clone(), *pos),
        other => (format!("{other:?}"), 0),
    }
}
