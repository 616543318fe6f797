//! The reader side of a chunk: stream the chunk's rows from the snapshot connection through the
//! binary protocol (FLOAT/DOUBLE arrive as exact bits, strings as raw bytes) and encode them into
//! byte blocks of about `block_size` bytes, sent over a bounded channel to the writer, so memory
//! stays flat whatever the size of the chunk.

use std::sync::atomic::{AtomicBool, Ordering};

use ferry_core::throttle::Throttle;
use ferry_core::value::{write_load_field, write_sql_literal};
use ferry_core::ColumnKind;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use tokio::sync::mpsc;

use crate::chunk::ChunkPlan;
use crate::error::{Ctx, LoadError};
use crate::statements::TableSql;

/// How rows are encoded for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Tab-separated LOAD DATA lines.
    LoadData,
    /// Complete multi-row `INSERT` statements.
    Insert,
}

/// Encoded rows on their way to the writer.
#[derive(Debug)]
pub struct Block {
    pub data: Vec<u8>,
    pub rows: u64,
}

/// What a reader read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOutcome {
    pub rows: u64,
    pub bytes: u64,
    /// False when the writer went away before every row was sent.
    pub complete: bool,
}

/// Reads one chunk and sends it to the writer in blocks.
#[allow(clippy::too_many_arguments)]
pub async fn read_chunk(
    conn: &mut Conn,
    t: &TableSql,
    chunk: &ChunkPlan,
    enc: Encoding,
    block_size: usize,
    tx: mpsc::Sender<Block>,
    throttle: &Throttle,
    enum_error_value: &AtomicBool,
) -> Result<ReadOutcome, LoadError> {
    let (sql, params) = chunk_select(t, chunk)?;
    let ctx = || format!("reading {} from the source", t.source_name);
    let mut result = conn.exec_iter(sql.as_str(), params).await.ctx(ctx)?;
    let mut out = ReadOutcome {
        rows: 0,
        bytes: 0,
        complete: true,
    };
    let mut block = new_block(t, enc, block_size);
    let mut block_rows = 0u64;
    while let Some(row) = result.next().await.ctx(ctx)? {
        if enc == Encoding::Insert && block_rows > 0 {
            block.push(b',');
        }
        if enc == Encoding::Insert {
            block.push(b'(');
        }
        for (i, kind) in t.kinds.iter().enumerate() {
            let v = row.as_ref(i).ok_or_else(|| {
                LoadError::Checkpoint(format!(
                    "the source returned too few columns for {}",
                    t.source_name
                ))
            })?;
            if *kind == ColumnKind::Enum && matches!(v, Value::Bytes(b) if b.is_empty()) {
                enum_error_value.store(true, Ordering::Relaxed);
            }
            match enc {
                Encoding::LoadData => {
                    if i > 0 {
                        block.push(b'\t');
                    }
                    write_load_field(&mut block, *kind, v);
                }
                Encoding::Insert => {
                    if i > 0 {
                        block.push(b',');
                    }
                    write_sql_literal(&mut block, *kind, v);
                }
            }
        }
        block.push(if enc == Encoding::Insert { b')' } else { b'\n' });
        block_rows += 1;
        if block.len() >= block_size {
            let full = std::mem::replace(&mut block, new_block(t, enc, block_size));
            if !send(&tx, throttle, full, block_rows, &mut out).await {
                out.complete = false;
                return Ok(out);
            }
            block_rows = 0;
        }
    }
    drop(result);
    if block_rows > 0 && !send(&tx, throttle, block, block_rows, &mut out).await {
        out.complete = false;
    }
    Ok(out)
}

fn chunk_select(t: &TableSql, chunk: &ChunkPlan) -> Result<(String, Vec<Value>), LoadError> {
    t.select_chunk(chunk)
}

fn new_block(t: &TableSql, enc: Encoding, block_size: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(block_size + block_size / 8);
    if enc == Encoding::Insert {
        b.extend_from_slice(&t.insert_prefix);
    }
    b
}

/// Waits for the throttle, then hands a block to the writer; false when the writer is gone.
async fn send(
    tx: &mpsc::Sender<Block>,
    throttle: &Throttle,
    data: Vec<u8>,
    rows: u64,
    out: &mut ReadOutcome,
) -> bool {
    let bytes = data.len() as u64;
    throttle.acquire(rows, bytes).await;
    if tx.send(Block { data, rows }).await.is_err() {
        return false;
    }
    out.rows += rows;
    out.bytes += bytes;
    true
}
