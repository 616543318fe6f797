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
//! - A table a replayed DDL touches (TRUNCATE, RENAME and DROP included) is planned again (a
//!   `REPLAN` mark the replay writes before the DDL): its chunks are dropped and digested afresh;
//!   the other tables keep theirs.
//! - A chunk whose source rows were found, when digested, to have grown past twice the chunk size
//!   is split in place at the start of the next pass ([`crate::split`]): the source's key walk
//!   cuts it into pieces of about the chunk size, which get new chunk numbers and are digested
//!   in that pass; the table's other chunks keep their numbers and digests, and the split chunk
//!   stays stored as retired (status 3), so that a dirty mark the replay computed with the map
//!   from before the split stands for the pieces that cover its range.
//!
//! A table whose chunking key is not all integers is tracked whole: any change to it marks every
//! chunk (`ferry_core::chunkmap`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ferry_core::chunkmap::{int_of, ChunkMap, DirtyTracker, Parts, TableChunks, REPLAN, WHOLE_TABLE};
use ferry_core::connect::ProtectedPool;
use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::{quote_ident, quote_str};
use ferry_core::{ColumnKind, Endpoint, Position, Selection};
use ferry_load::checkpoint::{decode_bound, encode_bound};
use ferry_load::chunk::{plan_table, ChunkPlan};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::digest::{self, choose_hash, probe, Digest};
use crate::error::{Ctx, VerifyError};
use crate::parts;
use crate::plan::Side;
use crate::plan::{self, TableJob};
use crate::report::VerifyReport;
use crate::split;
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
    /// Source rows read to digest them (of a chunk digested by parts, only those parts).
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
    /// Source rows read to digest them again (only the touched parts of a chunk digested by
    /// parts).
    pub rows_rehashed: u64,
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
    /// Each side's part digests as stored ([`parts::encode`]; `None`: not known).
    src_parts: Option<String>,
    dst_parts: Option<String>,
}

const STATUS_EQUAL: u8 = 1;
const STATUS_DIFFERENT: u8 = 2;
/// A chunk split in place: kept for the marks made with the map from before the split.
const STATUS_SPLIT: u8 = 3;

/// A stored bound as integers (`None`: not all integers).
fn int_bound(b: &[mysql_async::Value]) -> Option<Vec<i128>> {
    b.iter().map(int_of).collect()
}

/// The chunks of a table's stored rows that are in use (not retired by a split).
fn in_use(stored: Vec<StoredChunk>) -> Vec<StoredChunk> {
    stored.into_iter().filter(|c| c.status != STATUS_SPLIT).collect()
}

async fn connect_meta(dst: &Endpoint) -> Result<Conn, VerifyError> {
    let mut c = dst.connect(vec!["SET time_zone = '+00:00'".into()]).await?;
    ferry_core::meta::ensure(&mut c).await?;
    Ok(c)
}

/// The chunking key of a table when every one of its columns is an integer.
fn int_key(t: &TableJob) -> Option<&[ferry_core::Column]> {
    let key = t.chunk_key.as_deref()?;
    key.iter()
        .all(|c| matches!(c.kind, ColumnKind::Int { .. }))
        .then_some(key)
}

/// How the replay marks a table's changes: by chunk when every chunking-key column is an integer
/// (the chunks in key order, whatever their numbers).
fn table_chunks(t: &TableJob, chunks: &[ChunkPlan]) -> TableChunks {
    let Some(key) = int_key(t) else {
        return TableChunks::Whole;
    };
    let idx: Option<Vec<usize>> = key
        .iter()
        .map(|k| t.source.columns.iter().position(|c| c.name == k.name))
        .collect();
    let mut bounded: Vec<(Vec<i128>, u32)> = Vec::with_capacity(chunks.len());
    let mut open = Vec::new();
    for c in chunks {
        match c.upper.as_deref().map(int_bound) {
            Some(Some(u)) => bounded.push((u, c.chunk_no)),
            Some(None) => return TableChunks::Whole,
            None => open.push(c.chunk_no),
        }
    }
    let [last] = open[..] else {
        return TableChunks::Whole;
    };
    bounded.sort();
    let (uppers, mut ids): (Vec<Vec<i128>>, Vec<u32>) = bounded.into_iter().unzip();
    ids.push(last);
    match (idx, ChunkMap::with_ids(uppers, ids)) {
        (Some(key), Some(map)) => TableChunks::Ranges { key, map },
        _ => TableChunks::Whole,
    }
}

/// The source's key walk over one chunk: the bounds that cut it into pieces of `chunk_rows`
/// rows, strictly inside it (the loader planner's query, limited to the chunk's range and
/// strictly below its upper bound by the server's own comparisons: [`split::walk`]).
async fn key_walk(
    conn: &mut Conn,
    t: &TableJob,
    key: &[ferry_core::Column],
    c: &ChunkPlan,
    chunk_rows: u64,
) -> Result<Vec<Vec<mysql_async::Value>>, VerifyError> {
    let cols: Vec<&ferry_core::Column> = key.iter().collect();
    let list = ferry_load::keyrange::order_by(&cols);
    let from = t.source.from_all();
    let offset = chunk_rows.max(1) - 1;
    let conn = std::sync::Arc::new(tokio::sync::Mutex::new(conn));
    split::walk(c.lower.clone(), |last: Option<Vec<mysql_async::Value>>| {
        let (conn, cols, list, from) = (conn.clone(), cols.clone(), list.clone(), from.clone());
        async move {
            let mut parts = Vec::new();
            let mut params = Vec::new();
            if let Some(l) = &last {
                let (p, v) = ferry_load::keyrange::greater_than(&cols, l);
                parts.push(format!("({p})"));
                params.extend(v);
            }
            if let Some(u) = &c.upper {
                let (p, v) = ferry_load::keyrange::less_than(&cols, u);
                parts.push(format!("({p})"));
                params.extend(v);
            }
            let w = if parts.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", parts.join(" AND "))
            };
            let row: Option<mysql_async::Row> = conn
                .lock()
                .await
                .exec_first(
                    format!("SELECT {list} FROM {from}{w} ORDER BY {list} LIMIT 1 OFFSET {offset}"),
                    params,
                )
                .await
                .ctx(|| format!("splitting chunk {} of {}", c.chunk_no, t.source_name()))?;
            // A NULL in a key (not a primary key) cannot bound a range: no further cut.
            Ok(row
                .map(mysql_async::Row::unwrap)
                .filter(|b| !b.contains(&mysql_async::Value::NULL)))
        }
    })
    .await
}

/// Splits in place the chunks of a table whose stored source row count outgrew twice
/// `chunk_rows` ([`crate::split`]; any chunking key; a table without one is a single chunk, never
/// split): each one is retired and its pieces stored, in one target transaction. `chunks` and
/// `retired` are updated to match.
async fn split_grown(
    sconn: &mut Conn,
    dconn: &mut Conn,
    job: &str,
    t: &TableJob,
    chunks: &mut Vec<StoredChunk>,
    retired: &mut Vec<StoredChunk>,
    chunk_rows: u64,
) -> Result<(), VerifyError> {
    let Some(key) = t.chunk_key.as_deref() else {
        return Ok(());
    };
    let grown: Vec<usize> = (0..chunks.len())
        .filter(|&i| {
            chunks[i]
                .src
                .as_ref()
                .is_some_and(|d| split::outgrown(d.rows, chunk_rows))
        })
        .collect();
    let mut next = chunks
        .iter()
        .chain(retired.iter())
        .map(|c| c.plan.chunk_no + 1)
        .max()
        .unwrap_or(0);
    // From the last, so the positions of those still to split do not move.
    for i in grown.into_iter().rev() {
        let old = chunks[i].plan.clone();
        let inner = key_walk(sconn, t, key, &old, chunk_rows).await?;
        let pieces: Vec<ChunkPlan> = split::pieces(old.lower.clone(), old.upper.clone(), inner, next)
            .into_iter()
            .map(|p| ChunkPlan {
                chunk_no: p.chunk_no,
                lower: p.lower,
                upper: p.upper,
            })
            .collect();
        if pieces.is_empty() {
            continue;
        }
        next += pieces.len() as u32;
        let what = || format!("splitting chunk {} of {}", old.chunk_no, t.source_name());
        dconn.query_drop("START TRANSACTION").await.ctx(what)?;
        dconn
            .exec_drop(
                format!(
                    "UPDATE {} SET status = {STATUS_SPLIT} WHERE job = ? AND db = ? AND tbl = ? AND chunk_no = ?",
                    meta("verify_chunk")
                ),
                (job, &t.source.db, &t.source.name, old.chunk_no),
            )
            .await
            .ctx(what)?;
        store_plan(dconn, job, t, &pieces).await?;
        dconn.query_drop("COMMIT").await.ctx(what)?;
        tracing::info!(
            table = %t.source_name(),
            chunk = old.chunk_no,
            rows = chunks[i].src.as_ref().map_or(0, |d| d.rows),
            pieces = pieces.len(),
            "continuous verification: a grown chunk split in place"
        );
        let mut gone = chunks.remove(i);
        gone.status = STATUS_SPLIT;
        retired.push(gone);
        chunks.extend(pieces.into_iter().map(|plan| StoredChunk {
            plan,
            status: 0,
            src: None,
            dst: None,
            src_parts: None,
            dst_parts: None,
        }));
    }
    Ok(())
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
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT chunk_no, lower_bound, upper_bound, status, src_rows, src_sum, dst_rows, dst_sum, \
                 src_parts, dst_parts \
                 FROM {} WHERE job = ? AND db = ? AND tbl = ? ORDER BY chunk_no",
                meta("verify_chunk")
            ),
            (job, &t.source.db, &t.source.name),
        )
        .await
        .ctx(|| format!("reading the stored chunk digests of {}", t.source_name()))?;
    let mut out = Vec::with_capacity(rows.len());
    for (no, lo, up, status, sr, ss, dr, ds, sp, dp) in rows {
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
            src_parts: sp,
            dst_parts: dp,
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

/// One dirty mark as read: its `seq`, and when the chunk was first marked (`YYYY-MM-DD
/// hh:mm:ss.ffffff`, UTC: sorts as text).
#[derive(Debug, Clone)]
struct MarkRow {
    seq: u64,
    at: String,
    /// The parts of the chunk its changes touched ([`ferry_core::chunkmap::Parts`]).
    mask: u64,
}

/// The dirty marks of a job: (db, table) → chunk number → mark.
type Marks = HashMap<(String, String), BTreeMap<i64, MarkRow>>;

async fn read_marks(conn: &mut Conn, job: &str) -> Result<Marks, VerifyError> {
    let rows: Vec<(String, String, i64, u64, String, u64)> = conn
        .exec(
            format!(
                "SELECT db, tbl, chunk_no, seq, CAST(first_marked_at AS CHAR), part_mask FROM {} WHERE job = ?",
                meta("verify_dirty")
            ),
            (job,),
        )
        .await
        .ctx(|| "reading the dirty chunk marks".into())?;
    let mut m: Marks = HashMap::new();
    for (db, t, c, seq, at, mask) in rows {
        m.entry((db, t)).or_default().insert(c, MarkRow { seq, at, mask });
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
        let stored = in_use(read_chunks(&mut dconn, job, t).await?);
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
    /// Per table, the chunks retired by a split.
    retired: Vec<Vec<StoredChunk>>,
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
    let mut retired_all = Vec::with_capacity(tables.len());
    for t in &tables {
        let key = (t.source.db.clone(), t.source.name.clone());
        let replan = marks.get(&key).and_then(|m| m.get(&REPLAN)).map(|m| m.seq);
        if replan.is_some() {
            if let Some(tr) = tracker {
                tr.remove(&t.source.db, &t.source.name);
            }
            forget_table(&mut dconn, &o.job, &t.source.db, &t.source.name).await?;
        }
        let (mut stored, mut retired): (Vec<StoredChunk>, Vec<StoredChunk>) =
            read_chunks(&mut dconn, &o.job, t)
                .await?
                .into_iter()
                .partition(|c| c.status != STATUS_SPLIT);
        if stored.is_empty() && !retired.is_empty() {
            forget_table(&mut dconn, &o.job, &t.source.db, &t.source.name).await?;
            retired.clear();
        }
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
                    src_parts: None,
                    dst_parts: None,
                })
                .collect();
        }
        split_grown(
            &mut sconn,
            &mut dconn,
            &o.job,
            t,
            &mut stored,
            &mut retired,
            o.chunk_rows,
        )
        .await?;
        if let Some(tr) = tracker {
            let plans: Vec<ChunkPlan> = stored.iter().map(|c| c.plan.clone()).collect();
            tr.set(&t.source.db, &t.source.name, table_chunks(t, &plans));
        }
        if let Some(seq) = replan {
            delete_mark(&mut dconn, &o.job, &t.source.db, &t.source.name, REPLAN, seq).await?;
        }
        chunks.push(stored);
        retired_all.push(retired);
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
        retired: retired_all,
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
    /// Source rows read to digest it (fewer than `rows` when only some parts were digested).
    digested: u64,
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
        // When each chunk was first marked: by its own mark, a whole-table one, or the mark of
        // a chunk number no longer in use (a split chunk's stands for its pieces).
        let mut whole_at: Option<String> = [WHOLE_TABLE, REPLAN]
            .iter()
            .filter_map(|k| marks.get(k))
            .map(|m| m.at.clone())
            .min();
        let mut extra: HashMap<u32, String> = HashMap::new();
        for (&m, row) in marks.range(0..) {
            if chunks.iter().any(|c| i64::from(c.plan.chunk_no) == m) {
                continue;
            }
            match stands_for(m, chunks, &p.retired[i]) {
                Some(v) => {
                    for n in v {
                        let e = extra.entry(n).or_insert_with(|| row.at.clone());
                        if row.at < *e {
                            *e = row.at.clone();
                        }
                    }
                }
                None => whole_at = whole_at.into_iter().chain([row.at.clone()]).min(),
            }
        }
        let cuts = chunk_cuts(t, chunks);
        for c in chunks {
            let own = marks.get(&i64::from(c.plan.chunk_no));
            let marked_at = [whole_at.as_ref(), extra.get(&c.plan.chunk_no), own.map(|m| &m.at)]
                .into_iter()
                .flatten()
                .min()
                .cloned();
            let chosen = kind == PassKind::Full || c.status != STATUS_EQUAL || marked_at.is_some();
            if chosen {
                let by_parts = cuts.get(&c.plan.chunk_no).map(|&cut| ByParts {
                    cut,
                    only: only_parts(
                        c,
                        cut,
                        own.map(|m| m.mask),
                        kind,
                        whole_at.is_some() || extra.contains_key(&c.plan.chunk_no),
                    ),
                });
                work.push((
                    marked_at,
                    (
                        Work {
                            table: i,
                            chunk: c.plan.clone(),
                        },
                        by_parts,
                    ),
                ));
            }
        }
    }
    let work = oldest_first(work);
    let threads = o.threads.max(1);
    let opts = verify_options(o, fence.clone());
    let src_pool = ProtectedPool::new(src, threads, digest::session());
    let dst_pool = ProtectedPool::new(dst, threads, digest::session());
    let shared = make_shared(p.tables.clone(), &p.hashing, &opts, false, &src_pool, &dst_pool);
    let hashed_per_table: Arc<Mutex<Vec<HashSet<u32>>>> =
        Arc::new(Mutex::new(vec![HashSet::new(); p.tables.len()]));
    let mut results: Vec<Hashed> = Vec::new();
    let job = o.job.clone();
    let marks = Arc::new(p.marks.clone());
    let width = sum_width(p.hashing.hash);
    // The source position stored with every chunk of the pass: read before any chunk is
    // digested, so each digest covers every source change before it.
    let pass_position = {
        let mut sc = src_pool.get_conn().await?;
        Arc::new(digest::binlog_position(&mut sc).await)
    };
    let r = run_bounded(
        work,
        threads,
        |(w, by_parts): (Work, Option<ByParts>)| {
            let (sh, fence, job, marks, at) = (
                shared.clone(),
                fence.clone(),
                job.clone(),
                marks.clone(),
                pass_position.clone(),
            );
            async move {
                // A chunk digested by parts keeps its two connections for the store; one digested
                // whole takes its own from the pools (never two of a pool at once per task).
                let mut conns: Option<(Conn, Conn)> = None;
                let (mut d, mut part_digests, mut digested) =
                    digest_chunk(&sh, &w, by_parts.as_ref(), width, &mut conns).await?;
                if d.src != d.dst {
                    if let Some(f) = &fence {
                        f(d.position.clone()).await.map_err(VerifyError::Fence)?;
                        (d, part_digests, digested) =
                            digest_chunk(&sh, &w, by_parts.as_ref(), width, &mut conns).await?;
                    }
                }
                let t = &sh.tables[w.table];
                let equal = d.src == d.dst;
                let mut dc = match conns {
                    Some((_, dc)) => dc,
                    None => sh.dst.get_conn().await?,
                };
                let key = (t.source.db.clone(), t.source.name.clone());
                let mark = marks
                    .get(&key)
                    .and_then(|m| m.get(&i64::from(w.chunk.chunk_no)))
                    .filter(|_| equal)
                    .map(|m| m.seq);
                let sql = store_sql(
                    &job,
                    t,
                    w.chunk.chunk_no,
                    &d,
                    part_digests.as_ref(),
                    at.as_ref().as_ref(),
                    mark,
                );
                dc.query_drop(sql).await.ctx(|| {
                    format!(
                        "storing the digest of {} chunk {}",
                        t.source_name(),
                        w.chunk.chunk_no
                    )
                })?;
                // A chunk that outgrew its bound is split at the start of the next pass (its
                // stored row count says so): `split_grown`.
                Ok(Hashed {
                    table: w.table,
                    chunk_no: w.chunk.chunk_no,
                    digested,
                    equal,
                })
            }
        },
        |h: Hashed| {
            if let Ok(mut g) = hashed_per_table.lock() {
                g[h.table].insert(h.chunk_no);
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
        stats.rows_hashed += h.digested;
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
        let hashed = per_table.get(i).cloned().unwrap_or_default();
        let all: Vec<u32> = p.chunks[i].iter().map(|c| c.plan.chunk_no).collect();
        if all.iter().all(|c| hashed.contains(c)) {
            if let Some(m) = p.marks.get(&key).and_then(|m| m.get(&WHOLE_TABLE)) {
                delete_mark(&mut dconn, &o.job, &key.0, &key.1, WHOLE_TABLE, m.seq).await?;
            }
        }
        // Marks of chunk numbers no longer in use (a split chunk's, or made with the plan from
        // before a re-plan): cleared once every chunk they stand for was digested.
        if let Some(m) = p.marks.get(&key) {
            for (&c, mark) in m.range(0..) {
                if all.iter().any(|&n| i64::from(n) == c) {
                    continue;
                }
                let covered = stands_for(c, &p.chunks[i], &p.retired[i]).unwrap_or_else(|| all.clone());
                if covered.iter().all(|n| hashed.contains(n)) {
                    delete_mark(&mut dconn, &o.job, &key.0, &key.1, c, mark.seq).await?;
                }
            }
        }
        let stored = in_use(read_chunks(&mut dconn, &o.job, t).await?);
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

/// A chunk digested by parts ([`Parts`]): all of them, or only those of `only`.
#[derive(Clone)]
struct ByParts {
    cut: Parts,
    only: Option<Only>,
}

/// The parts a dirty mark names, and both sides' stored part digests (the others are kept).
#[derive(Clone)]
struct Only {
    mask: u64,
    src: Vec<Digest>,
    dst: Vec<Digest>,
}

/// The parts of a chunk a pass digests again when not all of them: those its own mark names
/// (`mask`) and those whose stored digests differ between the sides (a change in flight when
/// they were read, or a real difference), with both sides' stored part digests for the others.
/// `None` (every part) for a full pass, a chunk marked whole (`whole`), a chunk never digested
/// or without stored parts, or when more than two thirds of the parts are asked for.
fn only_parts(c: &StoredChunk, cut: Parts, mask: Option<u64>, kind: PassKind, whole: bool) -> Option<Only> {
    if kind == PassKind::Full || whole || !matches!(c.status, STATUS_EQUAL | STATUS_DIFFERENT) {
        return None;
    }
    let stored = |t: &Option<String>| t.as_deref().and_then(|t| parts::decode(t, cut.count()));
    let (src, dst) = (stored(&c.src_parts)?, stored(&c.dst_parts)?);
    let differing = src
        .iter()
        .zip(&dst)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .fold(0u64, |m, (i, _)| m | (1u64 << i));
    let wanted = (mask.unwrap_or(0) | differing) & cut.all();
    // Past two thirds of the parts, one grouped read of the chunk costs less than a read per part
    // (measured on MariaDB 10.11: a part's own range read costs about as much as 80 rows).
    let most = u64::from(wanted.count_ones()) * 3 > u64::from(cut.count()) * 2;
    (wanted != 0 && !most).then_some(Only {
        mask: wanted,
        src,
        dst,
    })
}

/// The number of sums in a digest of `hash` (`a/b` for the CRC pair).
fn sum_width(hash: RowHash) -> usize {
    match hash {
        RowHash::Md5 => 1,
        RowHash::Crc32Pair | RowHash::Auto => 2,
    }
}

/// The chunks of a table that are digested by parts, with their parts: those the replay's chunk
/// map cuts ([`table_chunks`], the map the replay marks with), when the chunk's own stored bounds
/// give the same parts.
fn chunk_cuts(t: &TableJob, chunks: &[StoredChunk]) -> HashMap<u32, Parts> {
    let plans: Vec<ChunkPlan> = chunks.iter().map(|c| c.plan.clone()).collect();
    let TableChunks::Ranges { map, .. } = table_chunks(t, &plans) else {
        return HashMap::new();
    };
    let ints = |b: &Option<Vec<mysql_async::Value>>| b.as_deref().and_then(int_bound);
    let own: HashMap<u32, Option<Parts>> = chunks
        .iter()
        .map(|c| {
            let (lo, up) = (ints(&c.plan.lower), ints(&c.plan.upper));
            (c.plan.chunk_no, Parts::of(lo.as_deref(), up.as_deref()))
        })
        .collect();
    map.chunk_parts()
        .filter_map(|(no, p)| {
            let p = p?;
            (own.get(&no) == Some(&Some(p))).then_some((no, p))
        })
        .collect()
}

/// Digests one chunk: by parts (on the connections in `conns`, taken on first use and kept for
/// the caller) or whole (on connections of the pools). Returns the digest, both sides' part
/// digests when digested by parts, and the source rows read.
async fn digest_chunk(
    sh: &Arc<crate::Shared>,
    w: &Work,
    by: Option<&ByParts>,
    width: usize,
    conns: &mut Option<(Conn, Conn)>,
) -> Result<(crate::Digested, Option<(Vec<Digest>, Vec<Digest>)>, u64), VerifyError> {
    match by {
        Some(by) => {
            if conns.is_none() {
                *conns = Some(crate::both_conns(sh).await?);
            }
            let (sc, dc) = conns
                .as_mut()
                .ok_or_else(|| VerifyError::Options("no connection".into()))?;
            let (d, p, rows) = digest_by_parts(sh, w.clone(), by, width, sc, dc).await?;
            Ok((d, Some(p), rows))
        }
        None => {
            let d = digest_work(sh.clone(), w.clone()).await?;
            let rows = d.src.rows;
            Ok((d, None, rows))
        }
    }
}

/// One round trip and one transaction storing a chunk's digests (and its part digests), with
/// the pass's source position, and deleting its dirty mark when it compared equal and `mark` (the
/// `seq` read before it was digested) is still the mark's.
fn store_sql(
    job: &str,
    t: &TableJob,
    chunk_no: u32,
    d: &crate::Digested,
    part_digests: Option<&(Vec<Digest>, Vec<Digest>)>,
    at: Option<&Position>,
    mark: Option<u64>,
) -> String {
    let text = |v: Option<String>| v.map_or("NULL".to_string(), |s| quote_str(&s));
    let (file, offset) = match at {
        Some(Position::FilePos { file, pos }) => (quote_str(file), pos.to_string()),
        _ => ("NULL".to_string(), "NULL".to_string()),
    };
    let status = if d.src == d.dst {
        STATUS_EQUAL
    } else {
        STATUS_DIFFERENT
    };
    let key = format!(
        "job = {} AND db = {} AND tbl = {} AND chunk_no = {chunk_no}",
        quote_str(job),
        quote_str(&t.source.db),
        quote_str(&t.source.name)
    );
    let mut sql = format!(
        "START TRANSACTION; UPDATE {} SET status = {status}, src_rows = {}, src_sum = {}, dst_rows = {}, \
         dst_sum = {}, src_parts = {}, dst_parts = {}, source_file = {file}, source_pos = {offset}, \
         verified_at = UTC_TIMESTAMP(6) WHERE {key}; ",
        meta("verify_chunk"),
        d.src.rows,
        quote_str(&d.src.sum),
        d.dst.rows,
        quote_str(&d.dst.sum),
        text(part_digests.map(|(a, _)| parts::encode(a))),
        text(part_digests.map(|(_, b)| parts::encode(b))),
    );
    if let Some(seq) = mark {
        sql.push_str(&format!(
            "DELETE FROM {} WHERE {key} AND seq = {seq}; ",
            meta("verify_dirty")
        ));
    }
    sql.push_str("COMMIT");
    sql
}

/// Digests a chunk by parts on both sides (all parts, or those of `by.only`, the others taken
/// from the stored digests); the chunk's digest on each side is the sum of its parts. Returns it
/// with both sides' part digests and the source rows read.
async fn digest_by_parts(
    sh: &crate::Shared,
    w: Work,
    by: &ByParts,
    width: usize,
    sc: &mut Conn,
    dc: &mut Conn,
) -> Result<(crate::Digested, (Vec<Digest>, Vec<Digest>), u64), VerifyError> {
    let t = &sh.tables[w.table];
    let what = format!("{} chunk {}", t.source_name(), w.chunk.chunk_no);
    let key = t
        .chunk_key
        .as_deref()
        .and_then(|k| k.first())
        .map(|c| c.name.clone())
        .ok_or_else(|| VerifyError::Options(format!("{what}: digested by parts without a chunking key")))?;
    let query = |select: &str, side: Side| -> Result<String, VerifyError> {
        let filter = t.predicate(side);
        match &by.only {
            None => Ok(parts::whole_sql(select, &key, &by.cut, filter.as_deref())),
            Some(o) => parts::only_sql(select, &key, &by.cut, o.mask, filter.as_deref())
                .ok_or_else(|| VerifyError::Options(format!("{what}: no part to digest"))),
        }
    };
    let ssql = query(&sh.src_sql[w.table], Side::Source)?;
    let dsql = query(&sh.dst_sql[w.table], Side::Target)?;
    let (a, b) = tokio::join!(
        digest::run_part_digests(sc, &ssql, "source", &what),
        digest::run_part_digests(dc, &dsql, "target", &what)
    );
    let (fresh_src, fresh_dst) = (a?, b?);
    let n = by.cut.count() as usize;
    let empty = Digest {
        rows: 0,
        sum: parts::zero_sum(width),
    };
    let assemble = |stored: Option<&Vec<Digest>>,
                    fresh: &[(u32, Digest)],
                    side: &'static str|
     -> Result<(Vec<Digest>, Digest, u64), VerifyError> {
        let bad = |m: String| VerifyError::Unexpected {
            side,
            message: format!("part digests of {what}: {m}"),
        };
        let mut v: Vec<Digest> = match (stored, &by.only) {
            (Some(s), Some(o)) => s
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    if o.mask & (1u64 << i) != 0 {
                        empty.clone()
                    } else {
                        d.clone()
                    }
                })
                .collect(),
            _ => vec![empty.clone(); n],
        };
        let mut read = 0u64;
        for (i, d) in fresh {
            let fresh_part = by.only.as_ref().is_none_or(|o| o.mask & (1u64 << i) != 0);
            match v.get_mut(*i as usize) {
                Some(slot) if fresh_part => {
                    read += d.rows;
                    *slot = d.clone();
                }
                _ => return Err(bad(format!("part {i} is not one asked for"))),
            }
        }
        let total = parts::total(&v, width).ok_or_else(|| bad("a sum is not a number".into()))?;
        Ok((v, total, read))
    };
    let (sv, src, read) = assemble(by.only.as_ref().map(|o| &o.src), &fresh_src, "source")?;
    let (dv, dst, _) = assemble(by.only.as_ref().map(|o| &o.dst), &fresh_dst, "target")?;
    let position = if src != dst && sh.want_position {
        digest::binlog_position(sc).await
    } else {
        None
    };
    sh.throttle.acquire(read.max(1), 0).await;
    Ok((
        crate::Digested {
            work: w,
            src,
            dst,
            position,
        },
        (sv, dv),
        read,
    ))
}

/// The work of a pass in the order it is digested: chunks never digested or stored as different
/// (no mark: `None`) first, then by the time their chunk was first marked, oldest first, so
/// that under a rate limit the changes waiting longest are verified first.
fn oldest_first<T>(mut work: Vec<(Option<String>, T)>) -> Vec<T> {
    work.sort_by(|a, b| a.0.cmp(&b.0));
    work.into_iter().map(|(_, w)| w).collect()
}

/// A stored bound as integers: `Some(None)` unbounded, `None` not all integers.
fn int_bound_opt(b: &Option<Vec<mysql_async::Value>>) -> Option<Option<Vec<i128>>> {
    match b {
        None => Some(None),
        Some(v) => int_bound(v).map(Some),
    }
}

/// The chunks in use a mark on chunk number `no` (not in use) stands for: those covering the
/// range of the retired chunk `no` ([`split::covering`]); `None` (every chunk) when `no` is no
/// retired chunk of integer bounds (a mark made with the plan from before a re-plan).
fn stands_for(no: i64, chunks: &[StoredChunk], retired: &[StoredChunk]) -> Option<Vec<u32>> {
    let piece = |c: &StoredChunk| -> Option<split::Piece<Vec<i128>>> {
        Some(split::Piece {
            chunk_no: c.plan.chunk_no,
            lower: int_bound_opt(&c.plan.lower)?,
            upper: int_bound_opt(&c.plan.upper)?,
        })
    };
    let r = piece(retired.iter().find(|c| i64::from(c.plan.chunk_no) == no)?)?;
    let active: Option<Vec<split::Piece<Vec<i128>>>> = chunks.iter().map(piece).collect();
    Some(split::covering(&r, &active?))
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
        rows_rehashed: stats.rows_hashed,
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
                 FROM {} WHERE job = ? AND status <> {STATUS_SPLIT}",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk `(1000, 2000]` (63 parts of 16 ids) with both sides' part digests stored.
    fn cut_chunk(status: u8, differing: &[usize]) -> (StoredChunk, Parts) {
        let cut = Parts::of(Some(&[1000]), Some(&[2000])).expect("parts");
        let part = |rows: u64| Digest {
            rows,
            sum: format!("{rows}/{rows}"),
        };
        let src: Vec<Digest> = (0..63).map(|_| part(16)).collect();
        let dst: Vec<Digest> = (0..63)
            .map(|i| part(if differing.contains(&i) { 15 } else { 16 }))
            .collect();
        let chunk = StoredChunk {
            plan: ChunkPlan {
                chunk_no: 1,
                lower: Some(vec![mysql_async::Value::Int(1000)]),
                upper: Some(vec![mysql_async::Value::Int(2000)]),
            },
            status,
            src: None,
            dst: None,
            src_parts: Some(parts::encode(&src)),
            dst_parts: Some(parts::encode(&dst)),
        };
        (chunk, cut)
    }

    #[test]
    fn only_the_marked_and_differing_parts_are_digested_again() {
        let (c, cut) = cut_chunk(STATUS_EQUAL, &[]);
        let only = only_parts(&c, cut, Some(0b101), PassKind::Dirty, false).expect("some parts");
        assert_eq!((only.mask, only.src.len(), only.dst.len()), (0b101, 63, 63));
        // A part whose sides differed is digested again with the marked ones.
        let (c, cut) = cut_chunk(STATUS_DIFFERENT, &[9]);
        let only = only_parts(&c, cut, Some(0b1), PassKind::Dirty, false).expect("some parts");
        assert_eq!(only.mask, 0b1 | 1 << 9);
        // A different chunk without a mark: its differing parts only.
        let only = only_parts(&c, cut, None, PassKind::Dirty, false).expect("some parts");
        assert_eq!(only.mask, 1 << 9);
    }

    #[test]
    fn the_whole_chunk_is_digested_when_parts_cannot_stand_alone() {
        let (c, cut) = cut_chunk(STATUS_EQUAL, &[]);
        // A full pass, a whole-table mark, most of the parts, every part.
        assert!(only_parts(&c, cut, Some(1), PassKind::Full, false).is_none());
        assert!(only_parts(&c, cut, Some(1), PassKind::Dirty, true).is_none());
        assert!(only_parts(&c, cut, Some((1 << 43) - 1), PassKind::Dirty, false).is_none());
        assert!(only_parts(
            &c,
            cut,
            Some(ferry_core::chunkmap::ALL_PARTS),
            PassKind::Dirty,
            false
        )
        .is_none());
        // Never digested, or no stored parts (digested by an older Ferry, or before a split).
        let (mut c, cut) = cut_chunk(0, &[]);
        assert!(only_parts(&c, cut, Some(1), PassKind::Dirty, false).is_none());
        c.status = STATUS_EQUAL;
        c.dst_parts = None;
        assert!(only_parts(&c, cut, Some(1), PassKind::Dirty, false).is_none());
        // Stored parts of another cut (a different count) are not used.
        c.dst_parts = c.src_parts.clone();
        let other = Parts::of(Some(&[1000]), Some(&[1010])).expect("parts");
        assert!(only_parts(&c, other, Some(1), PassKind::Dirty, false).is_none());
    }

    #[test]
    fn never_digested_first_then_oldest_marks_first() {
        let at = |s: &str| Some(s.to_string());
        let work = vec![
            (at("2026-12-06 09:00:02.000000"), "b"),
            (None, "new"),
            (at("2026-12-06 09:00:01.500000"), "a"),
            (at("2026-12-06 09:00:10.000000"), "c"),
            (None, "different"),
        ];
        assert_eq!(oldest_first(work), ["new", "different", "a", "b", "c"]);
    }
}
