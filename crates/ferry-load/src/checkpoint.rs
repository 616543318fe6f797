//! Chunk checkpoints on the target, in the `ferry_meta` schema.
//!
//! - `load_job`: one row per job: when it was planned and finished, and the snapshot position of
//!   the run that planned it.
//! - `load_chunk`: the plan, one row per chunk with its key bounds (JSON of tagged values, which
//!   round-trips every `mysql_async::Value` exactly, bytes included), `done`, and the rows, bytes
//!   and snapshot position (JSON of [`SnapshotPosition`]) it was copied at.
//!
//! The plan is written once, in one transaction; a re-run reuses it and skips done chunks. A chunk's
//! rows and its `done = 1` update are committed in one target transaction (see `worker`), so a
//! chunk is applied exactly once whatever happens to the process.

use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use ferry_core::SnapshotPosition;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use serde::{Deserialize, Serialize};

use crate::chunk::ChunkPlan;
use crate::error::{Ctx, LoadError};

/// A bound value in its stored form.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
enum Tagged {
    Null,
    /// Hex of the bytes.
    Bytes(String),
    Int(i64),
    UInt(u64),
    /// IEEE bits.
    Float(u32),
    /// IEEE bits.
    Double(u64),
    Date(u16, u8, u8, u8, u8, u8, u32),
    Time(bool, u32, u8, u8, u8, u32),
}

/// Serializes key bounds.
pub fn encode_bound(values: &[Value]) -> Vec<u8> {
    let tagged: Vec<Tagged> = values
        .iter()
        .map(|v| match v {
            Value::NULL => Tagged::Null,
            Value::Bytes(b) => Tagged::Bytes(hex::encode(b)),
            Value::Int(i) => Tagged::Int(*i),
            Value::UInt(u) => Tagged::UInt(*u),
            Value::Float(f) => Tagged::Float(f.to_bits()),
            Value::Double(d) => Tagged::Double(d.to_bits()),
            Value::Date(y, mo, d, h, mi, s, us) => Tagged::Date(*y, *mo, *d, *h, *mi, *s, *us),
            Value::Time(n, d, h, m, s, us) => Tagged::Time(*n, *d, *h, *m, *s, *us),
        })
        .collect();
    serde_json::to_vec(&tagged).unwrap_or_default()
}

/// Parses key bounds written by [`encode_bound`].
pub fn decode_bound(text: &[u8]) -> Result<Vec<Value>, LoadError> {
    let bad = |m: String| LoadError::Checkpoint(format!("unreadable chunk bound: {m}"));
    let tagged: Vec<Tagged> = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
    tagged
        .into_iter()
        .map(|t| {
            Ok(match t {
                Tagged::Null => Value::NULL,
                Tagged::Bytes(h) => Value::Bytes(hex::decode(h).map_err(|e| bad(e.to_string()))?),
                Tagged::Int(i) => Value::Int(i),
                Tagged::UInt(u) => Value::UInt(u),
                Tagged::Float(b) => Value::Float(f32::from_bits(b)),
                Tagged::Double(b) => Value::Double(f64::from_bits(b)),
                Tagged::Date(y, mo, d, h, mi, s, us) => Value::Date(y, mo, d, h, mi, s, us),
                Tagged::Time(n, d, h, m, s, us) => Value::Time(n, d, h, m, s, us),
            })
        })
        .collect()
}

fn meta(table: &str) -> String {
    format!("{}.{}", quote_ident(META_SCHEMA), quote_ident(table))
}

/// Creates the checkpoint schema and tables if missing, or migrates them
/// ([`ferry_core::meta`] owns their definitions).
pub async fn ensure_schema(conn: &mut Conn) -> Result<(), LoadError> {
    Ok(ferry_core::meta::ensure(conn).await?)
}

/// A chunk as stored.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub db: String,
    pub tbl: String,
    pub plan: ChunkPlan,
    pub done: bool,
    /// Rows and bytes copied, once done.
    pub rows: u64,
    pub bytes: u64,
}

/// The stored plan of a job.
#[derive(Debug, Clone)]
pub struct StoredPlan {
    pub snapshot: Option<SnapshotPosition>,
    pub chunks: Vec<StoredChunk>,
}

/// True when the checkpoint tables are missing (error 1146 / 1049).
fn is_missing(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1146 || s.code == 1049)
}

/// Reads a job's plan, `None` when it has none.
pub async fn load_plan(conn: &mut Conn, job: &str) -> Result<Option<StoredPlan>, LoadError> {
    type JobRow = (Option<String>, Option<u64>, Option<String>);
    let row: Option<JobRow> = conn
        .exec_first(
            format!(
                "SELECT snapshot_file, snapshot_pos, snapshot_gtid FROM {} WHERE job = ?",
                meta("load_job")
            ),
            (job,),
        )
        .await
        .ctx(|| format!("reading the checkpoint of job {job}"))?;
    let Some((file, pos, gtid)) = row else {
        return Ok(None);
    };
    let snapshot = match (file, pos) {
        (Some(file), Some(pos)) => Some(SnapshotPosition {
            file,
            pos,
            gtid: match gtid {
                Some(g) if !g.is_empty() => Some(g.parse()?),
                _ => None,
            },
        }),
        _ => None,
    };
    type ChunkRow = (
        String,
        String,
        u32,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        i8,
        u64,
        u64,
    );
    let rows: Vec<ChunkRow> = conn
        .exec(
            format!(
                "SELECT db, tbl, chunk_no, lower_bound, upper_bound, done, `rows`, bytes FROM {} WHERE job = ? \
                 ORDER BY db, tbl, chunk_no",
                meta("load_chunk")
            ),
            (job,),
        )
        .await
        .ctx(|| format!("reading the chunk checkpoints of job {job}"))?;
    let mut chunks = Vec::with_capacity(rows.len());
    for (db, tbl, chunk_no, lower, upper, done, rows, bytes) in rows {
        chunks.push(StoredChunk {
            db,
            tbl,
            plan: ChunkPlan {
                chunk_no,
                lower: lower.as_deref().map(decode_bound).transpose()?,
                upper: upper.as_deref().map(decode_bound).transpose()?,
            },
            done: done != 0,
            rows,
            bytes,
        });
    }
    Ok(Some(StoredPlan { snapshot, chunks }))
}

/// Writes the plan of some tables (and the job row when `new_job`) in one transaction.
pub async fn write_plan(
    conn: &mut Conn,
    job: &str,
    new_job: bool,
    tables: &[(String, String, Vec<ChunkPlan>)],
) -> Result<(), LoadError> {
    let ctx = || format!("writing the chunk plan of job {job} on the target");
    conn.query_drop("BEGIN").await.ctx(ctx)?;
    let res = async {
        if new_job {
            conn.exec_drop(
                format!("INSERT INTO {} (job, planned_at) VALUES (?, NOW(6))", meta("load_job")),
                (job,),
            )
            .await?;
        }
        let sql = format!(
            "INSERT INTO {} (job, db, tbl, chunk_no, lower_bound, upper_bound, done) VALUES (?, ?, ?, ?, ?, ?, 0)",
            meta("load_chunk")
        );
        for (db, tbl, chunks) in tables {
            let params = chunks.iter().map(|c| {
                (
                    job,
                    db.as_str(),
                    tbl.as_str(),
                    c.chunk_no,
                    c.lower.as_deref().map(encode_bound),
                    c.upper.as_deref().map(encode_bound),
                )
            });
            conn.exec_batch(sql.as_str(), params).await?;
        }
        conn.query_drop("COMMIT").await
    }
    .await;
    if res.is_err() {
        let _ = conn.query_drop("ROLLBACK").await;
    }
    res.ctx(ctx)
}

/// Records the snapshot of the planning run, once.
pub async fn set_job_snapshot(conn: &mut Conn, job: &str, pos: &SnapshotPosition) -> Result<(), LoadError> {
    conn.exec_drop(
        format!(
            "UPDATE {} SET snapshot_file = ?, snapshot_pos = ?, snapshot_gtid = ? WHERE job = ? AND snapshot_file IS NULL",
            meta("load_job")
        ),
        (&pos.file, pos.pos, pos.gtid.as_ref().map(|g| g.to_string()), job),
    )
    .await
    .ctx(|| format!("recording the snapshot position of job {job}"))
}

/// Marks a job finished.
pub async fn finish_job(conn: &mut Conn, job: &str) -> Result<(), LoadError> {
    conn.exec_drop(
        format!(
            "UPDATE {} SET finished_at = NOW(6) WHERE job = ?",
            meta("load_job")
        ),
        (job,),
    )
    .await
    .ctx(|| format!("marking job {job} finished"))
}

/// The statement that marks a chunk done; run inside the chunk's transaction.
/// Parameters: rows, bytes, snapshot, job, db, tbl, chunk_no.
pub fn mark_done_sql() -> String {
    format!(
        "UPDATE {} SET done = 1, `rows` = ?, bytes = ?, snapshot = ?, done_at = NOW(6) \
         WHERE job = ? AND db = ? AND tbl = ? AND chunk_no = ? AND done = 0",
        meta("load_chunk")
    )
}

/// The rows and bytes of a chunk when it is marked done (used after a connection was lost around
/// a COMMIT, whose outcome is then unknown).
pub async fn chunk_done(
    conn: &mut Conn,
    job: &str,
    db: &str,
    tbl: &str,
    chunk_no: u32,
) -> Result<Option<(u64, u64)>, LoadError> {
    conn.exec_first(
        format!(
            "SELECT `rows`, bytes FROM {} WHERE job = ? AND db = ? AND tbl = ? AND chunk_no = ? AND done = 1",
            meta("load_chunk")
        ),
        (job, db, tbl, chunk_no),
    )
    .await
    .ctx(|| format!("reading the checkpoint of chunk {chunk_no} of {db}.{tbl}"))
}

/// The stored form of a chunk's snapshot position.
pub fn snapshot_text(pos: &SnapshotPosition) -> String {
    serde_json::to_string(pos).unwrap_or_else(|_| pos.to_string())
}

/// True when the job has a plan on the target.
pub async fn has_plan(conn: &mut Conn, job: &str) -> Result<bool, LoadError> {
    let r: Result<Option<u8>, _> = conn
        .exec_first(
            format!("SELECT 1 FROM {} WHERE job = ?", meta("load_job")),
            (job,),
        )
        .await;
    match r {
        Ok(v) => Ok(v.is_some()),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(LoadError::Mysql {
            context: format!("reading the checkpoint of job {job}"),
            source: e,
        }),
    }
}

/// Deletes a job's plan and chunk checkpoints.
pub async fn clear(conn: &mut Conn, job: &str) -> Result<(), LoadError> {
    for t in ["load_chunk", "load_job"] {
        match conn
            .exec_drop(format!("DELETE FROM {} WHERE job = ?", meta(t)), (job,))
            .await
        {
            Ok(()) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => {
                return Err(LoadError::Mysql {
                    context: format!("clearing the checkpoints of job {job}"),
                    source: e,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_trip() {
        let v = vec![
            Value::NULL,
            Value::Bytes((0u8..=255).collect()),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(f32::from_bits(0x7f7f_ffff)),
            Value::Double(-0.0),
            Value::Double(f64::from_bits(1)),
            Value::Date(0, 0, 0, 0, 0, 0, 0),
            Value::Date(2024, 2, 29, 23, 59, 59, 999_999),
            Value::Time(true, 34, 22, 59, 59, 1),
        ];
        let back = decode_bound(&encode_bound(&v)).unwrap();
        assert_eq!(back.len(), v.len());
        for (a, b) in v.iter().zip(&back) {
            match (a, b) {
                (Value::Double(x), Value::Double(y)) => assert_eq!(x.to_bits(), y.to_bits()),
                (a, b) => assert_eq!(a, b),
            }
        }
    }
}
