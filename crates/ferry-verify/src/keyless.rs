//! Tables without a usable key, compared as multisets of rows (duplicates count).
//!
//! When the whole-table digests differ, each side is streamed through the binary protocol and
//! every row's exact bytes hashed (xxh3-128) into `hash → count` (source +1, target −1). The hashes
//! left non-zero are the surplus (target) and missing (source) rows; a second pass over each side
//! fetches one copy of each such row, for the report and the repair SQL. Memory: 24 bytes per
//! distinct row, plus the differing rows themselves.
//!
//! Under live replay ([`compare_table_live`]), the source is streamed, the source position read,
//! and the target streamed once the replay fence has passed that position; a table that differs
//! is compared again, up to [`crate::live::ROUNDS`] more times, and reported only when it differs
//! every time (the last comparison's rows are reported).

use std::collections::HashMap;

use ferry_core::sql::ident_list;
use ferry_core::throttle::Throttle;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use xxhash_rust::xxh3::xxh3_128;

use crate::digest::{binlog_position, encode_values};
use crate::drill::{show, ChunkDiff};
use crate::error::{Ctx, VerifyError};
use crate::plan::{Side, TableJob};
use crate::repair::RepairTable;
use crate::report::{DiffKey, DiffKind};
use crate::Fence;

fn select(t: &TableJob, side: Side) -> String {
    let (_, _, pred) = t.side(side);
    let mut sql = format!(
        "SELECT {} FROM {}",
        ident_list(t.side_columns(side).iter().map(|c| c.name.as_str())),
        t.from(side)
    );
    if let Some(p) = pred {
        sql.push_str(&format!(" WHERE {p}"));
    }
    sql
}

/// Streams one side's rows, calling `f` with each row and its hash.
async fn stream(
    conn: &mut Conn,
    sql: &str,
    n: usize,
    side: &'static str,
    what: &str,
    throttle: &Throttle,
    mut f: impl FnMut(u128, Vec<Value>),
) -> Result<(), VerifyError> {
    let ctx = || format!("reading {what} on the {side}");
    let mut result = conn.exec_iter(sql, ()).await.ctx(ctx)?;
    let mut batch = 0u64;
    while let Some(row) = result.next().await.ctx(ctx)? {
        let vals: Option<Vec<Value>> = row.unwrap_raw().into_iter().collect();
        let vals = match vals {
            Some(v) if v.len() == n => v,
            _ => {
                return Err(VerifyError::Unexpected {
                    side,
                    message: format!("a row of {what} with a missing column"),
                })
            }
        };
        let h = xxh3_128(&encode_values(&vals));
        f(h, vals);
        batch += 1;
        if batch == 1000 {
            throttle.acquire(batch, 0).await;
            batch = 0;
        }
    }
    throttle.acquire(batch, 0).await;
    Ok(())
}

/// Compares a keyless table as two multisets of rows.
pub async fn compare_table(
    src: &mut Conn,
    dst: &mut Conn,
    t: &TableJob,
    max_keys: usize,
    repair: bool,
    throttle: &Throttle,
) -> Result<ChunkDiff, VerifyError> {
    compare_fenced(src, dst, t, max_keys, repair, throttle, None).await
}

/// [`compare_table`] under live replay: the target is read once the replay has passed the source
/// position read after the source; repeated while the table differs, at most
/// [`crate::live::ROUNDS`] more times.
pub async fn compare_table_live(
    src: &mut Conn,
    dst: &mut Conn,
    t: &TableJob,
    max_keys: usize,
    repair: bool,
    throttle: &Throttle,
    fence: &Fence,
) -> Result<ChunkDiff, VerifyError> {
    let mut d = compare_fenced(src, dst, t, max_keys, repair, throttle, Some(fence)).await?;
    for _ in 0..crate::live::ROUNDS {
        if d.total() == 0 {
            break;
        }
        d = compare_fenced(src, dst, t, max_keys, repair, throttle, Some(fence)).await?;
    }
    Ok(d)
}

#[allow(clippy::too_many_arguments)]
async fn compare_fenced(
    src: &mut Conn,
    dst: &mut Conn,
    t: &TableJob,
    max_keys: usize,
    repair: bool,
    throttle: &Throttle,
    fence: Option<&Fence>,
) -> Result<ChunkDiff, VerifyError> {
    let n = t.columns.len();
    let ssql = select(t, Side::Source);
    let dsql = select(t, Side::Target);
    let (sname, dname) = (t.source_name(), t.target_name());
    let mut counts: HashMap<u128, i64> = HashMap::new();
    stream(src, &ssql, n, "source", &sname, throttle, |h, _| {
        *counts.entry(h).or_insert(0) += 1
    })
    .await?;
    if let Some(fence) = fence {
        let pos = binlog_position(src).await;
        fence(pos).await.map_err(VerifyError::Fence)?;
    }
    stream(dst, &dsql, n, "target", &dname, throttle, |h, _| {
        *counts.entry(h).or_insert(0) -= 1
    })
    .await?;
    counts.retain(|_, c| *c != 0);
    // One copy of each differing row, in the order the servers return them.
    let mut rows: Vec<(u128, i64, Vec<Value>)> = Vec::new();
    let mut want = counts;
    stream(src, &ssql, n, "source", &sname, throttle, |h, v| {
        if let Some(c) = want.get(&h).copied().filter(|c| *c > 0) {
            rows.push((h, c, v));
            want.remove(&h);
        }
    })
    .await?;
    stream(dst, &dsql, n, "target", &dname, throttle, |h, v| {
        if let Some(c) = want.get(&h).copied().filter(|c| *c < 0) {
            rows.push((h, c, v));
            want.remove(&h);
        }
    })
    .await?;
    let kinds = t.kinds();
    let rt = RepairTable::new(
        &t.target_db,
        &t.target_table,
        t.target_names(),
        kinds.clone(),
        None,
    );
    let mut out = ChunkDiff::default();
    let mut deletes = Vec::new();
    let mut writes = Vec::new();
    for (_, c, row) in rows {
        let (kind, count) = if c > 0 {
            (DiffKind::OnlyInSource, c as u64)
        } else {
            (DiffKind::OnlyInTarget, c.unsigned_abs())
        };
        if kind == DiffKind::OnlyInSource {
            out.only_in_source += count;
            if repair {
                rt.insert(&mut writes, &row, count);
            }
        } else {
            out.only_in_target += count;
            if repair {
                rt.delete(&mut deletes, &row, count);
            }
        }
        if out.keys.len() < max_keys {
            out.keys.push(DiffKey {
                kind,
                key: row.iter().zip(&kinds).map(|(v, k)| show(*k, v)).collect(),
                columns: Vec::new(),
                count,
            });
        }
    }
    out.repair = deletes;
    out.repair.extend_from_slice(&writes);
    Ok(out)
}
