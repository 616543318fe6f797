//! Row-level drill-down of one differing chunk of a keyed table.
//!
//! Both sides' rows of the chunk are read concurrently through the binary protocol (exact values:
//! FLOAT/DOUBLE bits, raw string bytes, UTC timestamps) under the same key range, and matched by the
//! exact bytes of their key values, never by comparing keys in Rust: the servers order string keys
//! under their collations, which Rust cannot reproduce. A key whose bytes differ only in letter case
//! is therefore reported once only in the source and once only in the target. Memory is bounded by
//! one chunk per side.

use std::collections::HashMap;

use ferry_core::sql::ident_list;
use ferry_core::throttle::Throttle;
use ferry_core::value::display_value;
use ferry_core::ColumnKind;
use ferry_load::chunk::ChunkPlan;
use ferry_load::keyrange::order_by;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::digest::{encode_values, same_value, with_chunk};
use crate::error::{Ctx, VerifyError};
use crate::plan::TableJob;
use crate::repair::RepairTable;
use crate::report::{clip, DiffKey, DiffKind};

/// What the drill-down of one chunk found.
#[derive(Debug, Default)]
pub struct ChunkDiff {
    pub only_in_source: u64,
    pub only_in_target: u64,
    pub different: u64,
    /// The first differing keys (at most the cap given).
    pub keys: Vec<DiffKey>,
    /// Repair statements for this chunk (empty when not asked for).
    pub repair: Vec<u8>,
}

impl ChunkDiff {
    pub fn total(&self) -> u64 {
        self.only_in_source + self.only_in_target + self.different
    }
}

/// A value for reports: its text, clipped, with binary bytes as hex.
pub fn show(kind: ColumnKind, v: &Value) -> String {
    match (kind, v) {
        (ColumnKind::Binary | ColumnKind::Geometry, Value::Bytes(b)) => {
            clip(&format!("0x{}", hex::encode(b)), 66)
        }
        _ => clip(&display_value(kind, v), 64),
    }
}

/// Reads the rows of a chunk on one side, ordered by the key.
pub async fn read_rows(
    conn: &mut Conn,
    db: &str,
    table: &str,
    t: &TableJob,
    chunk: &ChunkPlan,
    side: &'static str,
) -> Result<Vec<Vec<Value>>, VerifyError> {
    let names = ident_list(
        t.side_columns(crate::plan::Side::of(side))
            .iter()
            .map(|c| c.name.as_str()),
    );
    let select = format!("SELECT {names} FROM {}", t.from(crate::plan::Side::of(side)));
    let pred = t.predicate(crate::plan::Side::of(side));
    let (mut sql, params) = with_chunk(&select, t.chunk_key.as_deref(), chunk, pred.as_deref())?;
    if let Some(k) = &t.chunk_key {
        let cols: Vec<&ferry_core::Column> = k.iter().collect();
        sql.push_str(&format!(" ORDER BY {}", order_by(&cols)));
    }
    let rows: Vec<Row> = conn
        .exec(sql.as_str(), params)
        .await
        .ctx(|| format!("reading chunk {} of {db}.{table} on the {side}", chunk.chunk_no))?;
    let n = t.columns.len();
    rows.into_iter()
        .map(|r| {
            let vals: Option<Vec<Value>> = r.unwrap_raw().into_iter().collect();
            match vals {
                Some(v) if v.len() == n => Ok(v),
                _ => Err(VerifyError::Unexpected {
                    side,
                    message: format!("a row of {db}.{table} with a missing column"),
                }),
            }
        })
        .collect()
}

/// Reads one chunk's rows on both sides at once, counted against the rows/s limit.
pub(crate) async fn read_both(
    src: &mut Conn,
    dst: &mut Conn,
    t: &TableJob,
    chunk: &ChunkPlan,
    throttle: &Throttle,
) -> Result<(Vec<Vec<Value>>, Vec<Vec<Value>>), VerifyError> {
    let (s, d) = tokio::join!(
        read_rows(src, &t.source.db, &t.source.name, t, chunk, "source"),
        read_rows(dst, &t.target_db, &t.target_table, t, chunk, "target"),
    );
    let (s, d) = (s?, d?);
    throttle.acquire(s.len().max(d.len()) as u64, 0).await;
    Ok((s, d))
}

/// Compares one chunk row by row.
pub async fn drill_chunk(
    src: &mut Conn,
    dst: &mut Conn,
    t: &TableJob,
    chunk: &ChunkPlan,
    max_keys: usize,
    repair: bool,
    throttle: &Throttle,
) -> Result<ChunkDiff, VerifyError> {
    let key = t.key.clone().unwrap_or_default();
    let (s, d) = read_both(src, dst, t, chunk, throttle).await?;
    Ok(compare_rows(t, &key, s, d, max_keys, repair))
}

/// Classifies two sides' rows of one chunk by exact key bytes.
pub fn compare_rows(
    t: &TableJob,
    key: &[usize],
    source: Vec<Vec<Value>>,
    target: Vec<Vec<Value>>,
    max_keys: usize,
    repair: bool,
) -> ChunkDiff {
    let kinds = t.kinds();
    let names = t.names();
    let rt = RepairTable::new(
        &t.target_db,
        &t.target_table,
        t.target_names(),
        kinds.clone(),
        Some(key.to_vec()),
    );
    let key_of = |row: &[Value]| encode_values(key.iter().map(|&i| &row[i]));
    let show_key = |row: &[Value]| key.iter().map(|&i| show(kinds[i], &row[i])).collect::<Vec<_>>();
    let mut out = ChunkDiff::default();
    // Key bytes → the first target row with them. A second target row with the same key bytes
    // (the target lacks the unique key) is never matched, hence surplus.
    let mut target_by_key: HashMap<Vec<u8>, usize> = HashMap::with_capacity(target.len());
    for (i, row) in target.iter().enumerate() {
        target_by_key.entry(key_of(row)).or_insert(i);
    }
    let mut matched = vec![false; target.len()];
    let mut deletes = Vec::new();
    let mut writes = Vec::new();
    let push_key = |out: &mut ChunkDiff, k: DiffKey| {
        if out.keys.len() < max_keys {
            out.keys.push(k);
        }
    };
    for row in &source {
        match target_by_key.get(&key_of(row)) {
            None => {
                out.only_in_source += 1;
                if repair {
                    rt.insert(&mut writes, row, 1);
                }
                let k = DiffKey {
                    kind: DiffKind::OnlyInSource,
                    key: show_key(row),
                    columns: Vec::new(),
                    count: 1,
                };
                push_key(&mut out, k);
            }
            Some(&ti) => {
                matched[ti] = true;
                let other = &target[ti];
                let cols: Vec<String> = (0..row.len())
                    .filter(|&c| !same_value(&row[c], &other[c]))
                    .map(|c| names[c].clone())
                    .collect();
                if !cols.is_empty() {
                    out.different += 1;
                    if repair {
                        rt.replace(&mut writes, row);
                    }
                    let k = DiffKey {
                        kind: DiffKind::Different,
                        key: show_key(row),
                        columns: cols,
                        count: 1,
                    };
                    push_key(&mut out, k);
                }
            }
        }
    }
    for (ti, row) in target.iter().enumerate() {
        if matched[ti] {
            continue;
        }
        out.only_in_target += 1;
        if repair {
            rt.delete(&mut deletes, row, 1);
        }
        let k = DiffKey {
            kind: DiffKind::OnlyInTarget,
            key: show_key(row),
            columns: Vec::new(),
            count: 1,
        };
        push_key(&mut out, k);
    }
    out.repair = deletes;
    out.repair.extend_from_slice(&writes);
    out
}
