//! Chunk planning: cutting a table into ranges of about `chunk_rows` rows along its key.
//!
//! The planner walks the key on a plain (non-snapshot) source connection:
//! `SELECT k1, k2 FROM t [WHERE (k1, k2) > (last…)] ORDER BY k1, k2 LIMIT 1 OFFSET chunk_rows-1`,
//! each answer being the upper bound of the next chunk, until no row is left. Chunks are half-open
//! in key order: chunk `i` covers `(bound[i-1], bound[i]]`, the first is unbounded below and the
//! last unbounded above. Any bounds partition the key space, so rows written between planning and
//! the snapshot are still read exactly once. A table without a usable key is one chunk, streamed
//! whole. Tiny tables cost one query (the first probe finds no row).

use ferry_core::TableSchema;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::error::{Ctx, LoadError};
use crate::keyrange::{chunk_key, greater_than, key_columns, order_by};

/// One planned chunk: `(lower, upper]` in key order; `None` is unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkPlan {
    pub chunk_no: u32,
    pub lower: Option<Vec<Value>>,
    pub upper: Option<Vec<Value>>,
}

/// Plans the chunks of one table.
pub async fn plan_table(
    conn: &mut Conn,
    t: &TableSchema,
    chunk_rows: u64,
) -> Result<Vec<ChunkPlan>, LoadError> {
    let Some(key) = chunk_key(t) else {
        return Ok(vec![ChunkPlan {
            chunk_no: 0,
            lower: None,
            upper: None,
        }]);
    };
    let cols = key_columns(t, &key);
    let list = order_by(&cols);
    let from = t.from_all();
    let offset = chunk_rows.max(1) - 1;
    let mut bounds: Vec<Vec<Value>> = Vec::new();
    loop {
        let (sql, params) = match bounds.last() {
            None => (
                format!("SELECT {list} FROM {from} ORDER BY {list} LIMIT 1 OFFSET {offset}"),
                Vec::new(),
            ),
            Some(last) => {
                let (pred, params) = greater_than(&cols, last);
                (
                    format!("SELECT {list} FROM {from} WHERE {pred} ORDER BY {list} LIMIT 1 OFFSET {offset}"),
                    params,
                )
            }
        };
        let row: Option<Row> = conn
            .exec_first(sql.as_str(), params)
            .await
            .ctx(|| format!("planning chunks of {}", t.display_name()))?;
        let Some(mut row) = row else { break };
        let mut bound = Vec::with_capacity(cols.len());
        for i in 0..cols.len() {
            let v = row.take::<Value, usize>(i).ok_or_else(|| {
                LoadError::Checkpoint(format!(
                    "key walk of {} returned too few columns",
                    t.display_name()
                ))
            })?;
            bound.push(v);
        }
        if bound.contains(&Value::NULL) {
            return Err(LoadError::Checkpoint(format!(
                "key walk of {} met a NULL key value",
                t.display_name()
            )));
        }
        bounds.push(bound);
    }
    let mut chunks = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for (i, b) in bounds.into_iter().enumerate() {
        chunks.push(ChunkPlan {
            chunk_no: i as u32,
            lower: lower.take(),
            upper: Some(b.clone()),
        });
        lower = Some(b);
    }
    chunks.push(ChunkPlan {
        chunk_no: chunks.len() as u32,
        lower,
        upper: None,
    });
    tracing::debug!(table = %t.display_name(), chunks = chunks.len(), "planned");
    Ok(chunks)
}
