//! The writer side of a chunk, on its own target connection inside the chunk's transaction:
//! either one `LOAD DATA LOCAL INFILE` fed by the reader's blocks through the connection's infile
//! handler (streamed, no temporary file), or one multi-row `INSERT` per block. Every warning the
//! target reports is inspected: a changed value fails the chunk (LOAD DATA LOCAL turns data errors
//! into warnings, so this is what keeps the copy exact).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;

use crate::error::{Ctx, LoadError};
use crate::reader::Block;
use crate::statements::TableSql;

/// Why a write failed.
#[derive(Debug)]
pub enum WriteFailure {
    /// The target refuses LOAD DATA LOCAL (errors 1148, 3948): fall back to INSERT.
    Refused(String),
    /// Anything else.
    Error(LoadError),
}

impl From<LoadError> for WriteFailure {
    fn from(e: LoadError) -> Self {
        WriteFailure::Error(e)
    }
}

fn is_refusal(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1148 || s.code == 3948)
}

/// Streams the blocks into one LOAD DATA statement; returns the rows the target stored.
pub async fn load_data(
    conn: &mut Conn,
    t: &TableSql,
    rx: mpsc::Receiver<Block>,
    piece: usize,
    enum_error_value: &AtomicBool,
) -> Result<u64, WriteFailure> {
    let slot = Arc::new(Mutex::new(Some(rx)));
    let handler_slot = slot.clone();
    let piece = piece.max(4096);
    conn.set_infile_handler(async move {
        let rx = handler_slot.lock().ok().and_then(|mut g| g.take());
        let blocks = stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            let block = rx.recv().await?;
            Some((block, Some(rx)))
        });
        let data = blocks.flat_map(move |b| {
            let all = Bytes::from(b.data);
            let pieces: Vec<io::Result<Bytes>> = (0..all.len())
                .step_by(piece)
                .map(|at| Ok(all.slice(at..(at + piece).min(all.len()))))
                .collect();
            stream::iter(pieces)
        });
        Ok(data.boxed())
    });
    let res = conn.query_drop(t.load_sql.as_str()).await;
    // The receiver must go away whatever happened, so that a reader blocked on it returns.
    if let Ok(mut g) = slot.lock() {
        g.take();
    }
    match res {
        Ok(()) => {}
        Err(e) if is_refusal(&e) => return Err(WriteFailure::Refused(e.to_string())),
        Err(e) => {
            return Err(WriteFailure::Error(LoadError::Mysql {
                context: format!("LOAD DATA into {} on the target", t.target_name),
                source: e,
            }))
        }
    }
    let rows = conn.affected_rows();
    if conn.get_warnings() > 0 {
        check_warnings(conn, t, enum_error_value).await?;
    }
    Ok(rows)
}

/// Runs one INSERT per block; returns the rows the target stored.
pub async fn insert(
    conn: &mut Conn,
    t: &TableSql,
    mut rx: mpsc::Receiver<Block>,
    enum_error_value: &AtomicBool,
) -> Result<u64, WriteFailure> {
    let mut rows = 0;
    while let Some(block) = rx.recv().await {
        conn.query_drop(block.data)
            .await
            .ctx(|| format!("INSERT into {} on the target", t.target_name))?;
        rows += conn.affected_rows();
        if conn.get_warnings() > 0 {
            check_warnings(conn, t, enum_error_value).await?;
        }
    }
    Ok(rows)
}

/// Fails on any warning except notes and the ENUM error value `''` read from the source.
async fn check_warnings(
    conn: &mut Conn,
    t: &TableSql,
    enum_error_value: &AtomicBool,
) -> Result<(), LoadError> {
    let warnings: Vec<(Vec<u8>, u32, Vec<u8>)> = conn
        .query("SHOW WARNINGS LIMIT 20")
        .await
        .ctx(|| format!("reading the warnings of a write into {}", t.target_name))?;
    let enum_ok = enum_error_value.load(Ordering::Relaxed);
    let bad: Vec<String> = warnings
        .iter()
        .filter(|(level, code, msg)| {
            if level.eq_ignore_ascii_case(b"Note") {
                return false;
            }
            let msg = String::from_utf8_lossy(msg);
            let enum_error =
                *code == 1265 && enum_ok && t.enum_columns.iter().any(|c| msg.contains(&format!("'{c}'")));
            !enum_error
        })
        .map(|(_, code, msg)| format!("{code}: {}", String::from_utf8_lossy(msg)))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Warnings(format!(
            "writing into {}: {}",
            t.target_name,
            bad.into_iter().take(5).collect::<Vec<_>>().join("; ")
        )))
    }
}
