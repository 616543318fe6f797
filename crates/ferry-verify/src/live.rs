//! Row-level re-checks of a differing chunk while the incremental replay runs (online
//! verification), so that changes in flight are never reported as differences.
//!
//! The chunk's rows are read on both sides; the keys whose rows differ are then re-checked in
//! [`ROUNDS`] rounds. Each round, for the still-differing keys (looked up by exact key bytes):
//!
//! 1. read the source rows, then the source's binlog position;
//! 2. wait for the replay fence at that position (the target has applied everything the rows
//!    read in 1 contain);
//! 3. read the target rows;
//! 4. read the source rows again.
//!
//! A key whose target row equals its source row of step 1 or of step 4 is settled: the difference
//! was in flight, and the key is dropped. A key that differs in every round is reported: as a
//! difference when its source row was the same in steps 1 and 4 of the last round (the source was
//! still while the target was read, and the target, which holds a source state between the two
//! reads, still differs), otherwise as *changing continuously* (written on the source during every
//! re-check: not compared, not a difference; the report lists it so that it is verified again
//! after cut-over).

use std::collections::{HashMap, HashSet};

use ferry_core::sql::{ident_list, quote_ident};
use ferry_core::throttle::Throttle;
use ferry_core::ColumnKind;
use ferry_load::chunk::ChunkPlan;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::digest::{binlog_position, encode_values, same_value, with_chunk};
use crate::drill::{compare_rows, read_both, show, ChunkDiff};
use crate::error::{Ctx, VerifyError};
use crate::plan::TableJob;
use crate::Fence;

/// Re-check rounds after the first row comparison.
pub const ROUNDS: usize = 3;

/// Keys looked up per statement.
const BATCH: usize = 200;

/// What the re-checks of one chunk found.
#[derive(Debug, Default)]
pub struct LiveOutcome {
    /// The persistent differences (counts, keys, repair SQL).
    pub diff: ChunkDiff,
    /// Rows written on the source during every re-check, as display keys (at most the cap).
    pub changing_keys: Vec<Vec<String>>,
    /// How many such rows.
    pub changing: u64,
}

type Rows = Vec<Vec<Value>>;

/// The rows of `keys` (key value lists, in `t.key` order) within the chunk, on one side.
async fn read_keys(
    conn: &mut Conn,
    db: &str,
    table: &str,
    t: &TableJob,
    chunk: &ChunkPlan,
    keys: &[Vec<Value>],
    side: &'static str,
) -> Result<Rows, VerifyError> {
    let key = t.key.as_deref().unwrap_or_default();
    let n = t.columns.len();
    let names = ident_list(
        t.side_columns(crate::plan::Side::of(side))
            .iter()
            .map(|c| c.name.as_str()),
    );
    let select = format!("SELECT {names} FROM {}", t.from(crate::plan::Side::of(side)));
    let pred = t.predicate(crate::plan::Side::of(side));
    let (base, range_params) = with_chunk(&select, t.chunk_key.as_deref(), chunk, pred.as_deref())?;
    let glue = if base.contains(" WHERE ") {
        " AND "
    } else {
        " WHERE "
    };
    let tuple = ident_list(key.iter().map(|&i| t.columns[i].name.as_str()));
    // Text keys compare as bytes (exact, whatever the collation or character set).
    let one = {
        let marks: Vec<&str> = key
            .iter()
            .map(|&i| match t.columns[i].kind {
                ColumnKind::Text | ColumnKind::Enum | ColumnKind::Set => "CAST(? AS BINARY)",
                _ => "?",
            })
            .collect();
        if marks.len() == 1 {
            marks[0].to_string()
        } else {
            format!("({})", marks.join(", "))
        }
    };
    let lhs = if key.len() == 1 {
        quote_ident(&t.columns[key[0]].name)
    } else {
        format!("({tuple})")
    };
    let mut out = Vec::new();
    for batch in keys.chunks(BATCH) {
        let list = vec![one.as_str(); batch.len()].join(", ");
        let sql = format!("{base}{glue}{lhs} IN ({list})");
        let mut params = range_params.clone();
        for k in batch {
            params.extend(k.iter().cloned());
        }
        let rows: Vec<Row> = conn
            .exec(sql.as_str(), params)
            .await
            .ctx(|| format!("re-reading differing rows of {db}.{table} on the {side}"))?;
        for r in rows {
            let vals: Option<Vec<Value>> = r.unwrap_raw().into_iter().collect();
            match vals {
                Some(v) if v.len() == n => out.push(v),
                _ => {
                    return Err(VerifyError::Unexpected {
                        side,
                        message: format!("a row of {db}.{table} with a missing column"),
                    })
                }
            }
        }
    }
    Ok(out)
}

/// Rows grouped by their exact key bytes.
fn by_key(rows: &Rows, key: &[usize]) -> HashMap<Vec<u8>, Vec<usize>> {
    let mut m: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        m.entry(encode_values(key.iter().map(|&k| &r[k])))
            .or_default()
            .push(i);
    }
    m
}

fn same_row(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
}

/// The rows (one side) of a key, compared with the other side's: equal when both have none, or
/// each has exactly one and they are the same.
fn same_rows(a: Option<&Vec<usize>>, ra: &Rows, b: Option<&Vec<usize>>, rb: &Rows) -> bool {
    let a = a.map_or(&[][..], Vec::as_slice);
    let b = b.map_or(&[][..], Vec::as_slice);
    match (a, b) {
        ([], []) => true,
        ([x], [y]) => same_row(&ra[*x], &rb[*y]),
        _ => false,
    }
}

/// The keys (values in `t.key` order, one per distinct key) of the rows that differ.
fn differing_keys(key: &[usize], source: &Rows, target: &Rows) -> Vec<Vec<Value>> {
    let (s, d) = (by_key(source, key), by_key(target, key));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for rows in [source, target] {
        for r in rows {
            let kb = encode_values(key.iter().map(|&k| &r[k]));
            if !seen.insert(kb.clone()) {
                continue;
            }
            if !same_rows(s.get(&kb), source, d.get(&kb), target) {
                out.push(key.iter().map(|&k| r[k].clone()).collect());
            }
        }
    }
    out
}

/// Compares one chunk of a keyed table row by row under a replay fence, re-checking the
/// differing keys (see the module documentation).
#[allow(clippy::too_many_arguments)]
pub async fn recheck_chunk(
    src: &mut Conn,
    dst: &mut Conn,
    t: &TableJob,
    chunk: &ChunkPlan,
    fence: &Fence,
    max_keys: usize,
    repair: bool,
    throttle: &Throttle,
) -> Result<LiveOutcome, VerifyError> {
    let key = t.key.clone().unwrap_or_default();
    let (s, d) = read_both(src, dst, t, chunk, throttle).await?;
    let mut pending = differing_keys(&key, &s, &d);
    let mut last: (Rows, Rows) = (Vec::new(), Vec::new());
    let mut still_source: HashSet<Vec<u8>> = HashSet::new();
    for _ in 0..ROUNDS {
        if pending.is_empty() {
            break;
        }
        let before = read_keys(src, &t.source.db, &t.source.name, t, chunk, &pending, "source").await?;
        let pos = binlog_position(src).await;
        fence(pos).await.map_err(VerifyError::Fence)?;
        let target = read_keys(dst, &t.target_db, &t.target_table, t, chunk, &pending, "target").await?;
        let after = read_keys(src, &t.source.db, &t.source.name, t, chunk, &pending, "source").await?;
        throttle.acquire(2 * pending.len() as u64, 0).await;
        let (b, tg, a) = (by_key(&before, &key), by_key(&target, &key), by_key(&after, &key));
        still_source.clear();
        let mut next = Vec::new();
        for k in pending {
            let kb = encode_values(k.iter());
            let settled = same_rows(tg.get(&kb), &target, b.get(&kb), &before)
                || same_rows(tg.get(&kb), &target, a.get(&kb), &after);
            if settled {
                continue;
            }
            if same_rows(b.get(&kb), &before, a.get(&kb), &after) {
                still_source.insert(kb);
            }
            next.push(k);
        }
        pending = next;
        last = (after, target);
    }
    // The keys left: differences when the source stood still in the last round.
    let keep = |rows: Rows, want: &dyn Fn(&[u8]) -> bool| -> Rows {
        rows.into_iter()
            .filter(|r| want(&encode_values(key.iter().map(|&k| &r[k]))))
            .collect()
    };
    let pending_set: HashSet<Vec<u8>> = pending.iter().map(|k| encode_values(k.iter())).collect();
    let persistent = |kb: &[u8]| pending_set.contains(kb) && still_source.contains(kb);
    let (src_rows, dst_rows) = (keep(last.0, &persistent), keep(last.1, &persistent));
    let diff = compare_rows(t, &key, src_rows, dst_rows, max_keys, repair);
    let kinds = t.kinds();
    let changing: Vec<&Vec<Value>> = pending
        .iter()
        .filter(|k| !still_source.contains(&encode_values(k.iter())))
        .collect();
    Ok(LiveOutcome {
        diff,
        changing: changing.len() as u64,
        changing_keys: changing
            .iter()
            .take(max_keys)
            .map(|k| k.iter().zip(&key).map(|(v, &i)| show(kinds[i], v)).collect())
            .collect(),
    })
}
