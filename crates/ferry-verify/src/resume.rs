//! Resuming an interrupted verification from its stored chunks (`ferry verify`).
//!
//! A full verification without a replay fence, given a [`Resume`], stores each chunk's digests on
//! the target as soon as both sides are digested, in `ferry_meta.verify_chunk` (the table
//! continuous verification uses) under a key of its own, [`key`]: `U+0001 verify:JOB:FINGERPRINT`.
//! No JobName holds a control character, so the key never meets a job's continuous verification
//! rows. Every row of a run carries the source's binlog position read when that run started.
//!
//! A later run of the same job trusts a stored chunk, and does not digest it again, exactly when:
//!
//! 1. the key is the same: the same job, and the same fingerprint — the XXH3 of the chunk size and
//!    of every digest statement of both sides (tables, mapping, columns, row hash), so a changed
//!    job file or row hash starts over;
//! 2. the source's binlog position (file and offset) read at the start of this run equals the one
//!    stored with the chunk: the source has logged no change since the interrupted run started
//!    (a frozen source; a source without a binlog position never resumes);
//! 3. its digests were stored (a chunk planned but not digested is digested now), and the table's
//!    chunk boundaries planned now are the stored ones, chunk for chunk.
//!
//! A run under a replay fence (the job's replay under way) neither stores nor resumes: the data is
//! changing. A chunk stored as different is compared row by row again (reading the rows now). A
//! run that completes deletes its rows, so a finished verification is never reused: the next run
//! compares afresh. [`Resume::restart`] (`ferry verify --restart`) deletes them first.
//!
//! Not detected: a write on the target, between the two runs, into a chunk stored as equal, and a
//! source change not written to its binlog (`sql_log_bin = 0`); use `--restart` after either.

use std::collections::HashMap;

use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use ferry_core::Position;
use ferry_load::checkpoint::encode_bound;
use ferry_load::chunk::ChunkPlan;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use xxhash_rust::xxh3::xxh3_128;

use crate::digest::Digest;
use crate::error::{Ctx, VerifyError};
use crate::plan::TableJob;

/// Resuming an interrupted run of a job's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The job (its JobName, or the JobId of a served job).
    pub job: String,
    /// Forget what an interrupted run stored and digest every chunk.
    pub restart: bool,
}

/// The longest key `ferry_meta.verify_chunk.job` holds.
const KEY_MAX: usize = 191;

const STATUS_EQUAL: u8 = 1;
const STATUS_DIFFERENT: u8 = 2;

fn chunk_table() -> String {
    format!("{}.{}", quote_ident(META_SCHEMA), quote_ident("verify_chunk"))
}

/// The prefix of every key of a job's runs.
fn prefix(job: &str) -> String {
    format!("\u{1}verify:{job}:")
}

/// The key of a run's rows: the job and the fingerprint of what it digests.
pub fn key(job: &str, fingerprint: &str) -> String {
    format!("{}{fingerprint}", prefix(job))
}

/// The fingerprint of a run: the chunk size and every digest statement of both sides.
pub fn fingerprint(chunk_rows: u64, src_sql: &[String], dst_sql: &[String]) -> String {
    let mut b = Vec::new();
    b.extend_from_slice(&chunk_rows.to_le_bytes());
    for s in src_sql.iter().chain(dst_sql) {
        b.extend_from_slice(&(s.len() as u64).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    format!("{:032x}", xxh3_128(&b))
}

/// A chunk's digests taken from the interrupted run.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub table: usize,
    pub chunk: ChunkPlan,
    pub src: Digest,
    pub dst: Digest,
}

/// Where a run stores its chunks.
#[derive(Debug, Clone)]
pub(crate) struct RunStore {
    key: String,
}

/// What [`prepare`] found.
pub(crate) struct Prepared {
    /// `None`: this run neither stores nor resumes (no source position, or the key too long).
    pub store: Option<RunStore>,
    pub stored: Vec<Stored>,
    /// Why the run does not resume, when it does not (for the log).
    pub reason: Option<String>,
}

/// One stored row: chunk number, bounds, status, digests, source position.
type Row = (
    String,
    String,
    u32,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    u8,
    Option<u64>,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<String>,
    Option<u64>,
);

/// True when a stored row is the planned chunk, digested with the source at `pos`.
fn matches(row: &Row, plan: &ChunkPlan, pos: (&str, u64)) -> bool {
    let enc = |b: &Option<Vec<mysql_async::Value>>| b.as_deref().map(encode_bound);
    row.3 == enc(&plan.lower)
        && row.4 == enc(&plan.upper)
        && row.10.as_deref() == Some(pos.0)
        && row.11 == Some(pos.1)
}

/// Pure core of [`prepare`]: for each table (source db and name), the stored rows to trust (when
/// every planned chunk has its row, at the same boundaries and source position) and the tables to
/// plan again.
fn judge(
    tables: &[(&str, &str)],
    plans: &[Vec<ChunkPlan>],
    rows: &[Row],
    pos: (&str, u64),
) -> (Vec<Stored>, Vec<usize>) {
    let mut by_table: HashMap<(&str, &str), HashMap<u32, &Row>> = HashMap::new();
    for r in rows {
        by_table
            .entry((r.0.as_str(), r.1.as_str()))
            .or_default()
            .insert(r.2, r);
    }
    let (mut trusted, mut replan) = (Vec::new(), Vec::new());
    for (i, (t, plan)) in tables.iter().zip(plans).enumerate() {
        let stored = by_table.get(t);
        let same = stored.is_some_and(|s| {
            s.len() == plan.len()
                && plan
                    .iter()
                    .all(|c| s.get(&c.chunk_no).is_some_and(|r| matches(r, c, pos)))
        });
        let Some(stored) = stored.filter(|_| same) else {
            replan.push(i);
            continue;
        };
        for c in plan {
            let Some(r) = stored.get(&c.chunk_no) else {
                continue;
            };
            if let (true, Some(sr), Some(ss), Some(dr), Some(ds)) = (
                r.5 == STATUS_EQUAL || r.5 == STATUS_DIFFERENT,
                r.6,
                r.7.clone(),
                r.8,
                r.9.clone(),
            ) {
                trusted.push(Stored {
                    table: i,
                    chunk: c.clone(),
                    src: Digest { rows: sr, sum: ss },
                    dst: Digest { rows: dr, sum: ds },
                });
            }
        }
    }
    (trusted, replan)
}

async fn delete_other_runs(conn: &mut Conn, job: &str, keep: &str) -> Result<(), VerifyError> {
    let p = prefix(job);
    conn.exec_drop(
        format!(
            "DELETE FROM {} WHERE LEFT(job, CHAR_LENGTH(?)) = ? AND job <> ?",
            chunk_table()
        ),
        (&p, &p, keep),
    )
    .await
    .ctx(|| "forgetting earlier verification runs".into())
}

/// Reads what an interrupted run stored (see the module documentation), forgets what cannot be
/// trusted, and records this run's plan. `conn` is a target connection with `ferry_meta` ensured.
pub(crate) async fn prepare(
    conn: &mut Conn,
    resume: &Resume,
    fingerprint: &str,
    position: Option<Position>,
    tables: &[TableJob],
    plans: &[Vec<ChunkPlan>],
) -> Result<Prepared, VerifyError> {
    let key = key(&resume.job, fingerprint);
    let none = |reason: String| Prepared {
        store: None,
        stored: Vec::new(),
        reason: Some(reason),
    };
    if key.len() > KEY_MAX {
        return Ok(none(format!(
            "the job name is too long to key its stored chunks ({} bytes)",
            resume.job.len()
        )));
    }
    // Runs of another fingerprint (a changed job file) are never resumed; with --restart neither
    // is this one.
    delete_other_runs(conn, &resume.job, if resume.restart { "" } else { &key }).await?;
    let Some(Position::FilePos { file, pos }) = position else {
        return Ok(none(
            "the source has no binlog position, so an unchanged source cannot be told apart".into(),
        ));
    };
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT db, tbl, chunk_no, lower_bound, upper_bound, status, src_rows, src_sum, dst_rows, \
                 dst_sum, source_file, source_pos FROM {} WHERE job = ?",
                chunk_table()
            ),
            (&key,),
        )
        .await
        .ctx(|| "reading the chunks an interrupted verification stored".into())?;
    let names: Vec<(&str, &str)> = tables
        .iter()
        .map(|t| (t.source.db.as_str(), t.source.name.as_str()))
        .collect();
    let (stored, replan) = judge(&names, plans, &rows, (&file, pos));
    let reason = if rows.is_empty() {
        None
    } else if stored.is_empty() {
        Some(format!(
            "the source changed since the interrupted run (now at {file}:{pos}) or its chunks do not match"
        ))
    } else {
        None
    };
    let sql_del = format!(
        "DELETE FROM {} WHERE job = ? AND db = ? AND tbl = ?",
        chunk_table()
    );
    let sql_ins = format!(
        "INSERT INTO {} (job, db, tbl, chunk_no, lower_bound, upper_bound, status, source_file, source_pos) \
         VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        chunk_table()
    );
    for i in replan {
        let t = &tables[i];
        conn.exec_drop(sql_del.as_str(), (&key, &t.source.db, &t.source.name))
            .await
            .ctx(|| format!("forgetting the stored chunks of {}", t.source_name()))?;
        let params: Vec<Vec<mysql_async::Value>> = plans[i]
            .iter()
            .map(|c| {
                vec![
                    key.clone().into(),
                    t.source.db.clone().into(),
                    t.source.name.clone().into(),
                    c.chunk_no.into(),
                    c.lower.as_deref().map(encode_bound).into(),
                    c.upper.as_deref().map(encode_bound).into(),
                    file.clone().into(),
                    pos.into(),
                ]
            })
            .collect();
        conn.exec_batch(sql_ins.as_str(), params)
            .await
            .ctx(|| format!("storing the chunk plan of {}", t.source_name()))?;
    }
    Ok(Prepared {
        store: Some(RunStore { key }),
        stored,
        reason,
    })
}

impl RunStore {
    /// Stores a chunk's digests (both sides digested).
    pub(crate) async fn record(
        &self,
        conn: &mut Conn,
        t: &TableJob,
        chunk_no: u32,
        src: &Digest,
        dst: &Digest,
    ) -> Result<(), VerifyError> {
        let status = if src == dst {
            STATUS_EQUAL
        } else {
            STATUS_DIFFERENT
        };
        conn.exec_drop(
            format!(
                "UPDATE {} SET status = ?, src_rows = ?, src_sum = ?, dst_rows = ?, dst_sum = ?, \
                 verified_at = UTC_TIMESTAMP(6) WHERE job = ? AND db = ? AND tbl = ? AND chunk_no = ?",
                chunk_table()
            ),
            vec![
                status.into(),
                src.rows.into(),
                src.sum.clone().into(),
                dst.rows.into(),
                dst.sum.clone().into(),
                self.key.clone().into(),
                t.source.db.clone().into(),
                t.source.name.clone().into(),
                chunk_no.into(),
            ] as Vec<mysql_async::Value>,
        )
        .await
        .ctx(|| format!("storing the digest of {} chunk {chunk_no}", t.source_name()))
    }

    /// The run completed: its rows are deleted (a finished verification is never reused).
    pub(crate) async fn finish(&self, conn: &mut Conn) -> Result<(), VerifyError> {
        conn.exec_drop(
            format!("DELETE FROM {} WHERE job = ?", chunk_table()),
            (&self.key,),
        )
        .await
        .ctx(|| "forgetting the completed verification's chunks".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan(n: u32) -> Vec<ChunkPlan> {
        (0..n)
            .map(|i| ChunkPlan {
                chunk_no: i,
                lower: (i > 0).then(|| vec![mysql_async::Value::Int(i64::from(i) * 100)]),
                upper: (i + 1 < n).then(|| vec![mysql_async::Value::Int(i64::from(i + 1) * 100)]),
            })
            .collect()
    }

    fn row(t: usize, c: &ChunkPlan, status: u8, pos: (&str, u64)) -> Row {
        let digested = status != 0;
        (
            "d".into(),
            format!("t{t}"),
            c.chunk_no,
            c.lower.as_deref().map(encode_bound),
            c.upper.as_deref().map(encode_bound),
            status,
            digested.then_some(10),
            digested.then(|| "5".to_string()),
            digested.then_some(10),
            digested.then(|| if status == STATUS_EQUAL { "5" } else { "6" }.to_string()),
            Some(pos.0.to_string()),
            Some(pos.1),
        )
    }

    proptest! {
        /// A table is trusted only whole: every planned chunk stored at the same boundaries and
        /// source position; then exactly its digested chunks are taken. Any one difference (a
        /// row missing, another position, another boundary) plans the table again.
        #[test]
        fn trusted_only_when_every_chunk_matches(
            sizes in proptest::collection::vec(1u32..6, 1..5),
            statuses in proptest::collection::vec(0u8..3, 30),
            spoil in proptest::option::of((0usize..5, 0u8..3)),
        ) {
            let names: Vec<String> = (0..sizes.len()).map(|i| format!("t{i}")).collect();
            let tables: Vec<(&str, &str)> = names.iter().map(|n| ("d", n.as_str())).collect();
            let plans: Vec<Vec<ChunkPlan>> = sizes.iter().map(|&n| plan(n)).collect();
            let pos = ("mysql-bin.000003", 4711);
            let mut rows = Vec::new();
            let mut k = 0;
            let spoiled = spoil.map(|(t, how)| (t % sizes.len(), how));
            for (t, p) in plans.iter().enumerate() {
                for c in p {
                    let mut r = row(t, c, statuses[k % statuses.len()], pos);
                    k += 1;
                    match spoiled {
                        Some((st, 0)) if st == t && c.chunk_no == 0 => continue,
                        Some((st, 1)) if st == t => r.11 = Some(4712),
                        Some((st, 2)) if st == t && c.chunk_no == 0 => r.4 = Some(b"[]".to_vec()),
                        _ => {}
                    }
                    rows.push(r);
                }
            }
            let (trusted, replan) = judge(&tables, &plans, &rows, pos);
            let bad: Vec<usize> = spoiled.map(|(t, _)| t).into_iter().collect();
            prop_assert_eq!(&replan, &bad);
            let want: Vec<(usize, u32)> = rows
                .iter()
                .filter(|r| r.5 != 0)
                .map(|r| (r.1[1..].parse::<usize>().unwrap_or(99), r.2))
                .filter(|(t, _)| !bad.contains(t))
                .collect();
            let got: Vec<(usize, u32)> = trusted.iter().map(|s| (s.table, s.chunk.chunk_no)).collect();
            prop_assert_eq!(got, want);
            for s in &trusted {
                let name = format!("t{}", s.table);
                let equal = s.src == s.dst;
                let found = rows
                    .iter()
                    .any(|r| r.1 == name && r.2 == s.chunk.chunk_no && (r.5 == STATUS_EQUAL) == equal);
                prop_assert!(found, "{} chunk {}", name, s.chunk.chunk_no);
            }
        }
    }
}
