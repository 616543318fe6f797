//! Continuous verification: chunk digests kept on the target and kept current while the replay
//! runs, so the verification at cut-over digests only the chunks changed since their last check.
//!
//! - A [`pass`] plans each selected table's chunks once (the loader's planner; the boundaries go
//!   to `ferry_meta.verify_chunk` and to the [`DirtyTracker`] the replay marks with), digests
//!   chunks on both sides (all of them: [`PassKind::Full`]; those never digested, found
//!   different or marked dirty by the replay: [`PassKind::Dirty`]) at the caller's rate, and
//!   stores each chunk's row counts and sums with the source position it was read at. Under a
//!   replay fence a chunk whose digests differ is digested again once the replay has passed the
//!   source position read with it (a change in flight is not a difference).
//! - A dirty mark is deleted only when its chunk compared equal and the mark's `seq` is the one
//!   read before the chunk was digested (a change applied meanwhile keeps it dirty).
//! - Per table, a Merkle-style root over each side's chunk digests ([`crate::tree`]) is stored in
//!   `ferry_meta.verify_root`.
//! - [`verify_cutover`]: a dirty pass without fence (the replay has drained), then the roots of
//!   both sides; the chunks under differing subtrees are compared row by row like a full
//!   verification (same drill-down, keys and repair SQL). The report covers whole tables: the
//!   stored chunks and the fresh ones together.
//! - A chunk whose source rows grew past twice the chunk size, and every tracked table after a
//!   replayed DDL (TRUNCATE included), is planned again (a `REPLAN` mark): its chunks are dropped
//!   and digested afresh.
//!
//! A table whose chunking key is not all integers is tracked whole: any change to it marks every
//! chunk (`ferry_core::chunkmap`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ferry_core::chunkmap::{int_of, ChunkMap, DirtyTracker, TableChunks, REPLAN, WHOLE_TABLE};
use ferry_core::connect::ProtectedPool;
use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use ferry_core::{ColumnKind, Endpoint, Position, Selection};
use ferry_load::checkpoint::{decode_bound, encode_bound};
use ferry_load::chunk::{plan_table, ChunkPlan};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::digest::{self, choose_hash, probe, Digest};
use crate::error::{Ctx, VerifyError};
use crate::plan::{self, TableJob};
use crate::report::VerifyReport;
use crate::tree::{leaf, Tree};
use crate::{
    compare_all, digest_work, error_report, make_shared, new_report, objects, run_bounded, Acc, Fence,
    Hashing, RowHash, VerifyMode, VerifyOptions, Work,
};

/// How a continuous verification runs.
#[derive(Clone)]
pub struct ContinuousOptions {
    /// The job (the key of its rows in `ferry_meta`).
    pub job: String,
    /// Parallel chunk digests (each one source and one target connection).
    pub threads: usize,
    /// Rows per chunk when a table is planned.
    pub chunk_rows: u64,
    /// Rows/s digested per side; 0 = unlimited.
    pub rows_per_second: u64,
    /// The replay fence while the replay runs (`None` after cut-over).
    pub fence: Option<Fence>,
}

/// Which chunks a pass digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// Every chunk (the first pass, and the periodic rescan that finds writes no event carried).
    Full,
    /// Chunks never digested, found different, or marked dirty by the replay.
    Dirty,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Chunks digested on both sides.
    pub chunks_hashed: u64,
    /// Source rows in them.
    pub rows_hashed: u64,
    /// Chunks left different (after the fence).
    pub chunks_differing: u64,
    /// Chunks of the selected tables.
    pub chunks_total: u64,
}

/// The freshness of a job's continuous verification (API and `ferry run`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Freshness {
    /// Chunks planned.
    pub chunks: u64,
    /// Chunks never digested yet.
    pub chunks_unverified: u64,
    /// Chunks whose last digests differed.
    pub chunks_differing: u64,
    /// Dirty marks waiting (a whole-table mark counts once).
    pub chunks_dirty: u64,
    /// Seconds since the oldest change not verified yet was applied.
    pub oldest_unverified_seconds: Option<u64>,
    /// Rows digested by continuous verification so far.
    pub rows_verified: u64,
    /// Seconds since the last full pass ended.
    pub since_full_pass_seconds: Option<u64>,
    /// Tables planned; of them, those whose every chunk has been digested, and those with a
    /// chunk whose last digests differed.
    pub tables: u64,
    pub tables_verified: u64,
    pub tables_differing: u64,
    /// Rows of the digested chunks on each side, as of their last digests.
    pub src_rows: u64,
    pub dst_rows: u64,
}

/// The verification at cut-over.
#[derive(Debug, Clone)]
pub struct CutoverOutcome {
    pub report: VerifyReport,
    /// Chunks of the compared tables.
    pub chunks_total: u64,
    /// Chunks digested again at cut-over (dirty, never digested, or different).
    pub chunks_rehashed: u64,
}

fn meta(table: &str) -> String {
    format!("{}.{}", quote_ident(META_SCHEMA), quote_ident(table))
}

/// A chunk as stored.
#[derive(Debug, Clone)]
struct StoredChunk {
    plan: ChunkPlan,
    status: u8,
    src: Option<Digest>,
    dst: Option<Digest>,
}

const STATUS_EQUAL: u8 = 1;
const STATUS_DIFFERENT: u8 = 2;

async fn connect_meta(dst: &Endpoint) -> Result<Conn, VerifyError> {
    let mut c = dst.connect(vec!["SET time_zone = '+00:00'".into()]).await?;
    ferry_core::meta::ensure(&mut c).await?;
    Ok(c)
}

/// How the replay marks a table's changes: by chunk when every chunking-key column is an integer.
fn table_chunks(t: &TableJob, chunks: &[ChunkPlan]) -> TableChunks {
    let Some(key) = &t.chunk_key else {
        return TableChunks::Whole;
    };
    if !key.iter().all(|c| matches!(c.kind, ColumnKind::Int { .. })) {
        return TableChunks::Whole;
    }
    let idx: Option<Vec<usize>> = key
        .iter()
        .map(|k| t.source.columns.iter().position(|c| c.name == k.name))
        .collect();
    let uppers: Option<Vec<Vec<i128>>> = chunks
        .iter()
        .filter_map(|c| c.upper.as_ref())
        .map(|u| u.iter().map(int_of).collect())
        .collect();
    match (idx, uppers.and_then(ChunkMap::new)) {
        (Some(key), Some(map)) if map.chunks() as usize == chunks.len() => TableChunks::Ranges { key, map },
        _ => TableChunks::Whole,
    }
}

async fn read_chunks(conn: &mut Conn, job: &str, t: &TableJob) -> Result<Vec<StoredChunk>, VerifyError> {
    type Row = (
        u32,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        u8,
        Option<u64>,
        Option<String>,
        Option<u64>,
        Option<String>,
    );
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT chunk_no, lower_bound, upper_bound, status, src_rows, src_sum, dst_rows, dst_sum \
                 FROM {} WHERE job = ? AND db = ? AND tbl = ? ORDER BY chunk_no",
                meta("verify_chunk")
            ),
            (job, &t.source.db, &t.source.name),
        )
        .await
        .ctx(|| format!("reading the stored chunk digests of {}", t.source_name()))?;
    let mut out = Vec::with_capacity(rows.len());
    for (no, lo, up, status, sr, ss, dr, ds) in rows {
        let bound = |b: Option<Vec<u8>>| -> Result<Option<Vec<mysql_async::Value>>, VerifyError> {
            b.map(|b| decode_bound(&b)).transpose().map_err(VerifyError::Load)
        };
        let dig = |r: Option<u64>, s: Option<String>| match (r, s) {
            (Some(rows), Some(sum)) => Some(Digest { rows, sum }),
            _ => None,
        };
        out.push(StoredChunk {
            plan: ChunkPlan {
                chunk_no: no,
                lower: bound(lo)?,
                upper: bound(up)?,
            },
            status,
            src: dig(sr, ss),
            dst: dig(dr, ds),
        });
    }
    Ok(out)
}

async fn forget_table(conn: &mut Conn, job: &str, db: &str, tbl: &str) -> Result<(), VerifyError> {
    for table in ["verify_chunk", "verify_root"] {
        conn.exec_drop(
            format!("DELETE FROM {} WHERE job = ? AND db = ? AND tbl = ?", meta(table)),
            (job, db, tbl),
        )
        .await
        .ctx(|| format!("dropping the stored chunks of {db}.{tbl}"))?;
    }
    Ok(())
}

async fn store_plan(
    conn: &mut Conn,
    job: &str,
    t: &TableJob,
    chunks: &[ChunkPlan],
) -> Result<(), VerifyError> {
    let sql = format!(
        "INSERT INTO {} (job, db, tbl, chunk_no, lower_bound, upper_bound, status) VALUES (?, ?, ?, ?, ?, ?, 0)",
        meta("verify_chunk")
    );
    let params: Vec<Vec<mysql_async::Value>> = chunks
        .iter()
        .map(|c| {
            vec![
                job.into(),
                t.source.db.clone().into(),
                t.source.name.clone().into(),
                c.chunk_no.into(),
                c.lower.as_deref().map(encode_bound).into(),
                c.upper.as_deref().map(encode_bound).into(),
            ]
        })
        .collect();
    conn.exec_batch(sql, params)
        .await
        .ctx(|| format!("storing the chunk plan of {}", t.source_name()))
}

/// The dirty marks of a job: (db, table) → chunk number → seq.
type Marks = HashMap<(String, String), BTreeMap<i64, u64>>;

async fn read_marks(conn: &mut Conn, job: &str) -> Result<Marks, VerifyError> {
    let rows: Vec<(String, String, i64, u64)> = conn
        .exec(
            format!(
                "SELECT db, tbl, chunk_no, seq FROM {} WHERE job = ?",
                meta("verify_dirty")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading the dirty chunk marks".into())?;
    let mut m: Marks = HashMap::new();
    for (db, t, c, s) in rows {
        m.entry((db, t)).or_default().insert(c, s);
    }
    Ok(m)
}

async fn delete_mark(
    conn: &mut Conn,
    job: &str,
    db: &str,
    tbl: &str,
    chunk: i64,
    seq: u64,
) -> Result<(), VerifyError> {
    conn.exec_drop(
        format!(
            "DELETE FROM {} WHERE job = ? AND db = ? AND tbl = ? AND chunk_no = ? AND seq = ?",
            meta("verify_dirty")
        ),
        (job, db, tbl, chunk, seq),
    )
    .await
    .ctx(|| format!("clearing a dirty mark of {db}.{tbl}"))
}

/// Publishes the stored chunk maps of a job's tables to `tracker` (before the replay starts, so a
/// resumed job marks from its first applied change). Tables never planned are left out.
pub async fn load_tracker(
    src: &Endpoint,
    dst: &Endpoint,
    sel: &Selection,
    job: &str,
    tracker: &DirtyTracker,
) -> Result<usize, VerifyError> {
    let mut sconn = src.connect(ferry_load::session::plain()).await?;
    let mut dconn = connect_meta(dst).await?;
    let (tables, _) = plan::resolve(&mut sconn, &mut dconn, sel, None).await?;
    let mut n = 0;
    for t in &tables {
        let stored = read_chunks(&mut dconn, job, t).await?;
        if !stored.is_empty() {
            let plans: Vec<ChunkPlan> = stored.into_iter().map(|c| c.plan).collect();
            tracker.set(&t.source.db, &t.source.name, table_chunks(t, &plans));
            n += 1;
        }
    }
    let _ = sconn.disconnect().await;
    let _ = dconn.disconnect().await;
    Ok(n)
}

/// The tables, their stored chunks (planned now when missing or marked for a new plan, and
/// published to `tracker`), and the dirty marks read before any chunk is digested.
struct Prepared {
    tables: Vec<TableJob>,
    bad: Vec<plan::Uncomparable>,
    chunks: Vec<Vec<StoredChunk>>,
    marks: Marks,
    hashing: Hashing,
}

async fn prepare(
    src: &Endpoint,
    dst: &Endpoint,
    sel: &Selection,
    tracker: Option<&DirtyTracker>,
    o: &ContinuousOptions,
) -> Result<Prepared, VerifyError> {
    let mut sconn = src.connect(ferry_load::session::plain()).await?;
    let mut dconn = connect_meta(dst).await?;
    let (tables, bad) = plan::resolve(&mut sconn, &mut dconn, sel, None).await?;
    let marks = read_marks(&mut dconn, &o.job).await?;
    let mut chunks = Vec::with_capacity(tables.len());
    for t in &tables {
        let key = (t.source.db.clone(), t.source.name.clone());
        let replan = marks.get(&key).and_then(|m| m.get(&REPLAN)).copied();
        if replan.is_some() {
            if let Some(tr) = tracker {
                tr.remove(&t.source.db, &t.source.name);
            }
            forget_table(&mut dconn, &o.job, &t.source.db, &t.source.name).await?;
        }
        let mut stored = read_chunks(&mut dconn, &o.job, t).await?;
        if stored.is_empty() {
            let plans = if t.chunk_key.is_some() {
                plan_table(&mut sconn, &t.source, o.chunk_rows).await?
            } else {
                vec![ChunkPlan {
                    chunk_no: 0,
                    lower: None,
                    upper: None,
                }]
            };
            store_plan(&mut dconn, &o.job, t, &plans).await?;
            stored = plans
                .into_iter()
                .map(|plan| StoredChunk {
                    plan,
                    status: 0,
                    src: None,
                    dst: None,
                })
                .collect();
        }
        if let Some(tr) = tracker {
            let plans: Vec<ChunkPlan> = stored.iter().map(|c| c.plan.clone()).collect();
            tr.set(&t.source.db, &t.source.name, table_chunks(t, &plans));
        }
        if let Some(seq) = replan {
            delete_mark(&mut dconn, &o.job, &t.source.db, &t.source.name, REPLAN, seq).await?;
        }
        chunks.push(stored);
    }
    // Marks of tables the selection no longer holds (dropped on the source): nothing to verify.
    for (db, tbl) in marks.keys() {
        let held = tables
            .iter()
            .map(|t| &t.source)
            .chain(bad.iter().map(|u| &u.source))
            .any(|s| &s.db == db && &s.name == tbl);
        if !held {
            forget_table(&mut dconn, &o.job, db, tbl).await?;
            dconn
                .exec_drop(
                    format!(
                        "DELETE FROM {} WHERE job = ? AND db = ? AND tbl = ?",
                        meta("verify_dirty")
                    ),
                    (&o.job, db, tbl),
                )
                .await
                .ctx(|| format!("clearing the dirty marks of {db}.{tbl}"))?;
        }
    }
    let (ssup, dsup) = (probe(&mut sconn).await, probe(&mut dconn).await);
    let hash = choose_hash(RowHash::Auto, ssup, dsup)?;
    let _ = sconn.disconnect().await;
    let _ = dconn.disconnect().await;
    Ok(Prepared {
        tables,
        bad,
        chunks,
        marks,
        hashing: Hashing {
            hash,
            src_one_text: ssup.row_variable,
            dst_one_text: dsup.row_variable,
        },
    })
}

fn verify_options(o: &ContinuousOptions, fence: Option<Fence>) -> VerifyOptions {
    VerifyOptions {
        threads: o.threads.max(1),
        chunk_rows: o.chunk_rows.max(1),
        rows_per_second: o.rows_per_second,
        mode: VerifyMode::Full,
        fence,
        ..VerifyOptions::default()
    }
}

/// One chunk digested (twice around the fence when it differed) and stored.
struct Hashed {
    table: usize,
    chunk_no: u32,
    rows: u64,
    equal: bool,
}

/// Digests the selected chunks of every table (see the module documentation); returns what it did.
pub async fn pass(
    src: &Endpoint,
    dst: &Endpoint,
    sel: &Selection,
    tracker: Option<&DirtyTracker>,
    kind: PassKind,
    o: &ContinuousOptions,
) -> Result<PassStats, VerifyError> {
    let p = prepare(src, dst, sel, tracker, o).await?;
    let (stats, _) = digest_selected(src, dst, &p, kind, o, o.fence.clone()).await?;
    Ok(stats)
}

async fn digest_selected(
    src: &Endpoint,
    dst: &Endpoint,
    p: &Prepared,
    kind: PassKind,
    o: &ContinuousOptions,
    fence: Option<Fence>,
) -> Result<(PassStats, Vec<Vec<StoredChunk>>), VerifyError> {
    let mut stats = PassStats::default();
    let mut work = Vec::new();
    let empty = BTreeMap::new();
    for (i, (t, chunks)) in p.tables.iter().zip(&p.chunks).enumerate() {
        stats.chunks_total += chunks.len() as u64;
        let marks = p
            .marks
            .get(&(t.source.db.clone(), t.source.name.clone()))
            .unwrap_or(&empty);
        let whole = marks.contains_key(&WHOLE_TABLE) || marks.contains_key(&REPLAN);
        for c in chunks {
            let chosen = kind == PassKind::Full
                || whole
                || c.status != STATUS_EQUAL
                || marks.contains_key(&i64::from(c.plan.chunk_no));
            if chosen {
                work.push(Work {
                    table: i,
                    chunk: c.plan.clone(),
                });
            }
        }
    }
    let threads = o.threads.max(1);
    let opts = verify_options(o, fence.clone());
    let src_pool = ProtectedPool::new(src, threads, digest::session());
    let dst_pool = ProtectedPool::new(dst, threads, digest::session());
    let shared = make_shared(p.tables.clone(), &p.hashing, &opts, false, &src_pool, &dst_pool);
    let hashed_per_table: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; p.tables.len()]));
    let mut results: Vec<Hashed> = Vec::new();
    let job = o.job.clone();
    let marks = Arc::new(p.marks.clone());
    let chunk_rows = o.chunk_rows.max(1);
    let r = run_bounded(
        work,
        threads,
        |w: Work| {
            let (sh, fence, job, marks) = (shared.clone(), fence.clone(), job.clone(), marks.clone());
            async move {
                let mut d = digest_work(sh.clone(), w.clone()).await?;
                if d.src != d.dst {
                    if let Some(f) = &fence {
                        f(d.position.clone()).await.map_err(VerifyError::Fence)?;
                        d = digest_work(sh.clone(), w.clone()).await?;
                    }
                }
                let t = &sh.tables[w.table];
                let equal = d.src == d.dst;
                let pos = if d.position.is_some() {
                    d.position.clone()
                } else {
                    let mut sc = sh.src.get_conn().await?;
                    digest::binlog_position(&mut sc).await
                };
                let (file, offset) = match pos {
                    Some(Position::FilePos { file, pos }) => (Some(file), Some(pos)),
                    _ => (None, None),
                };
                let mut dc = sh.dst.get_conn().await?;
                dc.exec_drop(
                    format!(
                        "UPDATE {} SET status = ?, src_rows = ?, src_sum = ?, dst_rows = ?, dst_sum = ?, \
                         source_file = ?, source_pos = ?, verified_at = UTC_TIMESTAMP(6) \
                         WHERE job = ? AND db = ? AND tbl = ? AND chunk_no = ?",
                        meta("verify_chunk")
                    ),
                    vec![
                        (if equal { STATUS_EQUAL } else { STATUS_DIFFERENT }).into(),
                        d.src.rows.into(),
                        d.src.sum.clone().into(),
                        d.dst.rows.into(),
                        d.dst.sum.clone().into(),
                        file.into(),
                        offset.into(),
                        job.clone().into(),
                        t.source.db.clone().into(),
                        t.source.name.clone().into(),
                        w.chunk.chunk_no.into(),
                    ] as Vec<mysql_async::Value>,
                )
                .await
                .ctx(|| {
                    format!(
                        "storing the digest of {} chunk {}",
                        t.source_name(),
                        w.chunk.chunk_no
                    )
                })?;
                let key = (t.source.db.clone(), t.source.name.clone());
                if equal {
                    if let Some(seq) = marks.get(&key).and_then(|m| m.get(&i64::from(w.chunk.chunk_no))) {
                        delete_mark(&mut dc, &job, &key.0, &key.1, i64::from(w.chunk.chunk_no), *seq).await?;
                    }
                }
                // A chunk that outgrew its bound: the table is planned again on the next pass.
                if t.chunk_key.is_some() && d.src.rows > 2 * chunk_rows {
                    if let Some(sql) = ferry_core::chunkmap::marks_sql(
                        &job,
                        &[(key.0.clone(), key.1.clone(), REPLAN)].into_iter().collect(),
                    ) {
                        dc.query_drop(sql)
                            .await
                            .ctx(|| format!("marking {} for a new chunk plan", t.source_name()))?;
                    }
                }
                Ok(Hashed {
                    table: w.table,
                    chunk_no: w.chunk.chunk_no,
                    rows: d.src.rows,
                    equal,
                })
            }
        },
        |h: Hashed| {
            if let Ok(mut g) = hashed_per_table.lock() {
                g[h.table] += 1;
            }
            results.push(h);
            Ok(())
        },
    )
    .await;
    let _ = src_pool.disconnect().await;
    let _ = dst_pool.disconnect().await;
    r?;
    for h in &results {
        stats.chunks_hashed += 1;
        stats.rows_hashed += h.rows;
        if !h.equal {
            stats.chunks_differing += 1;
        }
        tracing::trace!(
            table = h.table,
            chunk = h.chunk_no,
            equal = h.equal,
            "chunk digested"
        );
    }
    // Whole-table marks: cleared once every chunk of the table was digested in this pass; roots.
    let mut dconn = connect_meta(dst).await?;
    let per_table = hashed_per_table.lock().map(|g| g.clone()).unwrap_or_default();
    let mut fresh = Vec::with_capacity(p.tables.len());
    for (i, t) in p.tables.iter().enumerate() {
        let key = (t.source.db.clone(), t.source.name.clone());
        if per_table.get(i).copied().unwrap_or(0) == p.chunks[i].len() as u64 {
            if let Some(seq) = p.marks.get(&key).and_then(|m| m.get(&WHOLE_TABLE)) {
                delete_mark(&mut dconn, &o.job, &key.0, &key.1, WHOLE_TABLE, *seq).await?;
            }
        }
        // Marks of chunk numbers the table's plan no longer has (made with the plan before a
        // re-plan): they name no chunk, and would hold the dirty count up forever.
        let n = p.chunks[i].len() as i64;
        if let Some(m) = p.marks.get(&key) {
            for (&c, &seq) in m.range(n..) {
                delete_mark(&mut dconn, &o.job, &key.0, &key.1, c, seq).await?;
            }
        }
        let stored = read_chunks(&mut dconn, &o.job, t).await?;
        let (a, b) = trees(&stored);
        dconn
            .exec_drop(
                format!(
                    "REPLACE INTO {} (job, db, tbl, chunks, src_root, dst_root, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
                    meta("verify_root")
                ),
                (
                    &o.job,
                    &t.source.db,
                    &t.source.name,
                    stored.len() as u64,
                    a.root_hex(),
                    b.root_hex(),
                ),
            )
            .await
            .ctx(|| format!("storing the digest roots of {}", t.source_name()))?;
        fresh.push(stored);
    }
    let full = kind == PassKind::Full;
    dconn
        .exec_drop(
            format!(
                "INSERT INTO {} (job, last_full_at, rows_verified, chunks_verified) VALUES (?, IF(?, UTC_TIMESTAMP(6), NULL), ?, ?) \
                 ON DUPLICATE KEY UPDATE last_full_at = IF(?, UTC_TIMESTAMP(6), last_full_at), \
                 rows_verified = rows_verified + VALUES(rows_verified), \
                 chunks_verified = chunks_verified + VALUES(chunks_verified)",
                meta("verify_pass")
            ),
            (&o.job, full, stats.rows_hashed, stats.chunks_hashed, full),
        )
        .await
        .ctx(|| "recording the verification pass".into())?;
    let _ = dconn.disconnect().await;
    Ok((stats, fresh))
}

/// Both sides' trees over a table's stored chunks (a chunk never digested has leaves that differ).
fn trees(chunks: &[StoredChunk]) -> (Tree, Tree) {
    let side = |pick: &dyn Fn(&StoredChunk) -> Option<&Digest>, unknown: &str| {
        Tree::new(
            chunks
                .iter()
                .map(|c| match pick(c) {
                    Some(d) => leaf(c.plan.chunk_no, d.rows, &d.sum),
                    None => leaf(c.plan.chunk_no, u64::MAX, unknown),
                })
                .collect(),
        )
    };
    (
        side(&|c| c.src.as_ref(), "?source"),
        side(&|c| c.dst.as_ref(), "?target"),
    )
}

/// The verification at cut-over (the replay has drained): digests only the chunks dirty, never
/// digested or different, compares both sides' roots per table, and compares the chunks under
/// differing subtrees row by row. The report covers whole tables (stored and fresh chunks).
pub async fn verify_cutover(
    src: &Endpoint,
    dst: &Endpoint,
    sel: &Selection,
    tracker: Option<&DirtyTracker>,
    o: &ContinuousOptions,
) -> Result<CutoverOutcome, VerifyError> {
    let started = std::time::Instant::now();
    let p = prepare(src, dst, sel, tracker, o).await?;
    let (stats, fresh) = digest_selected(src, dst, &p, PassKind::Dirty, o, None).await?;
    let mut accs: Vec<Acc> = Vec::with_capacity(p.tables.len());
    let mut work = Vec::new();
    for (i, (t, stored)) in p.tables.iter().zip(&fresh).enumerate() {
        let mut report = new_report(t, stored.len() as u64);
        report.chunks_compared = stored.len() as u64;
        let (a, b) = trees(stored);
        let differing: HashSet<usize> = a.diff(&b).into_iter().collect();
        for (k, c) in stored.iter().enumerate() {
            if differing.contains(&k) {
                work.push(Work {
                    table: i,
                    chunk: c.plan.clone(),
                });
            } else {
                report.rows_compared += c.src.as_ref().map_or(0, |d| d.rows);
                report.target_rows += c.dst.as_ref().map_or(0, |d| d.rows);
            }
        }
        accs.push(Acc {
            report,
            keys: BTreeMap::new(),
        });
    }
    let opts = verify_options(o, None);
    let threads = opts.threads;
    let src_pool = ProtectedPool::new(src, threads, digest::session());
    let dst_pool = ProtectedPool::new(dst, threads, digest::session());
    let shared = make_shared(p.tables.clone(), &p.hashing, &opts, false, &src_pool, &dst_pool);
    let sink = ferry_core::progress::null_sink();
    let compared = compare_all(&shared, &mut accs, work, &opts, &sink, &mut None, false).await;
    let objects = match compared {
        Ok(()) => {
            let mut sconn = src.connect(ferry_load::session::plain()).await?;
            let mut dconn = dst.connect(ferry_load::session::plain()).await?;
            let o = objects::compare(&mut sconn, &mut dconn, sel).await;
            let _ = sconn.disconnect().await;
            let _ = dconn.disconnect().await;
            o
        }
        Err(e) => Err(e),
    };
    let _ = src_pool.disconnect().await;
    let _ = dst_pool.disconnect().await;
    let objects = objects?;
    let cap = opts.max_keys_reported;
    let mut tables: Vec<_> = accs
        .into_iter()
        .map(|mut a| {
            a.report.keys = a.keys.into_values().flatten().take(cap).collect();
            a.report
        })
        .collect();
    for u in p.bad {
        tables.push(error_report(
            &u.source.db,
            &u.source.name,
            u.target_db,
            u.target_table,
            u.reason,
        ));
    }
    tables.sort_by(|a, b| (&a.database, &a.table).cmp(&(&b.database, &b.table)));
    Ok(CutoverOutcome {
        report: VerifyReport {
            consistent: objects.is_empty() && tables.iter().all(crate::TableReport::consistent),
            tables,
            objects,
            elapsed_ms: started.elapsed().as_millis() as u64,
            sampling: None,
        },
        chunks_total: stats.chunks_total,
        chunks_rehashed: stats.chunks_hashed,
    })
}

/// Per job: tables planned, fully digested, with a differing chunk; rows digested per side.
type TableFigures = (u64, Option<u64>, Option<u64>, Option<u64>, Option<u64>);

/// The freshness of a job's continuous verification, from `ferry_meta` on the target.
pub async fn freshness(dst: &Endpoint, job: &str) -> Result<Freshness, VerifyError> {
    let mut c = connect_meta(dst).await?;
    let chunks: Option<(u64, Option<u64>, Option<u64>)> = c
        .exec_first(
            format!(
                "SELECT COUNT(*), CAST(SUM(status = 0) AS UNSIGNED), CAST(SUM(status = 2) AS UNSIGNED) \
                 FROM {} WHERE job = ?",
                meta("verify_chunk")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading the stored chunk digests".into())?;
    let dirty: Option<(u64, Option<i64>)> = c
        .exec_first(
            format!(
                "SELECT COUNT(*), TIMESTAMPDIFF(SECOND, MIN(first_marked_at), UTC_TIMESTAMP(6)) FROM {} \
                 WHERE job = ?",
                meta("verify_dirty")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading the dirty chunk marks".into())?;
    let pass: Option<(u64, Option<i64>)> = c
        .exec_first(
            format!(
                "SELECT rows_verified, TIMESTAMPDIFF(SECOND, last_full_at, UTC_TIMESTAMP(6)) FROM {} WHERE job = ?",
                meta("verify_pass")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading the verification passes".into())?;
    let tables: Option<TableFigures> = c
        .exec_first(
            format!(
                "SELECT COUNT(*), CAST(SUM(unverified = 0) AS UNSIGNED), CAST(SUM(differing > 0) AS UNSIGNED), \
                 CAST(SUM(src) AS UNSIGNED), CAST(SUM(dst) AS UNSIGNED) FROM (SELECT SUM(status = 0) AS unverified, \
                 SUM(status = 2) AS differing, SUM(IF(status = 0, 0, src_rows)) AS src, \
                 SUM(IF(status = 0, 0, dst_rows)) AS dst FROM {} WHERE job = ? GROUP BY db, tbl) AS t",
                meta("verify_chunk")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading the stored chunk digests per table".into())?;
    let _ = c.disconnect().await;
    let (t, t_verified, t_differing, src_rows, dst_rows) = tables.unwrap_or((0, None, None, None, None));
    let (n, unverified, differing) = chunks.unwrap_or((0, None, None));
    let (dirty, oldest) = dirty.unwrap_or((0, None));
    let (rows, since) = pass.unwrap_or((0, None));
    Ok(Freshness {
        chunks: n,
        chunks_unverified: unverified.unwrap_or(0),
        chunks_differing: differing.unwrap_or(0),
        chunks_dirty: dirty,
        oldest_unverified_seconds: oldest.map(|s| s.max(0) as u64),
        rows_verified: rows,
        since_full_pass_seconds: since.map(|s| s.max(0) as u64),
        tables: t,
        tables_verified: t_verified.unwrap_or(0),
        tables_differing: t_differing.unwrap_or(0),
        src_rows: src_rows.unwrap_or(0),
        dst_rows: dst_rows.unwrap_or(0),
    })
}

/// Drops a job's continuous verification state (a restarted job starts over).
pub async fn clear(dst: &Endpoint, job: &str) -> Result<(), VerifyError> {
    let mut c = connect_meta(dst).await?;
    for table in ["verify_chunk", "verify_dirty", "verify_root", "verify_pass"] {
        c.exec_drop(format!("DELETE FROM {} WHERE job = ?", meta(table)), (job,))
            .await
            .ctx(|| format!("clearing ferry_meta.{table}"))?;
    }
    let _ = c.disconnect().await;
    Ok(())
}
