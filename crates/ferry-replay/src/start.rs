//! Resolving a user-given start (`Ferry.StartPosition`) to a binlog file and offset that the
//! source still has: a file and offset checked against `SHOW BINARY LOGS`, or a UNIX time
//! resolved to the first transaction whose timestamp is at or after it.
//!
//! A time is resolved by reading the binlogs themselves (through the replication protocol,
//! non-blocking): the newest file whose first transaction is not after the time is scanned
//! forward to the first transaction (a `Begin`) at or after the time; the start is the
//! position before that transaction (a transaction boundary). No such transaction yet: the
//! start is the current end of the binlog.

use ferry_core::Endpoint;
use mysql_async::prelude::Queryable;
use mysql_async::Row;

use crate::error::ReplayError;
use crate::event::{BinlogPos, EventKind};
use crate::stream::{BinlogReader, ReaderOptions, StartPosition};

/// A start given by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRequest {
    /// A binlog file and offset (an event boundary, normally a transaction's).
    FilePos(BinlogPos),
    /// The first transaction at or after this UNIX time (seconds).
    Time(u64),
}

/// The source's binary logs, oldest first, with their sizes.
pub async fn binary_logs(endpoint: &Endpoint) -> Result<Vec<(String, u64)>, ReplayError> {
    let mut conn = ferry_core::connect::connect_with(endpoint, Vec::new(), |o| o)
        .await
        .map_err(ReplayError::Connect)?;
    let rows: Vec<Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| ReplayError::mysql("SHOW BINARY LOGS on the source", e))?;
    let _ = conn.disconnect().await;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let f: Option<String> = r.get(0);
            let s: Option<u64> = r.get(1);
            Some((f?, s?))
        })
        .collect())
}

fn unavailable(wanted: String, files: &[(String, u64)], why: &str) -> ReplayError {
    let listed = match (files.first(), files.last()) {
        (Some(a), Some(b)) => format!("the source has {} … {}", a.0, b.0),
        _ => "the source lists no binary logs".to_string(),
    };
    ReplayError::PositionUnavailable {
        wanted,
        message: format!("{why}; {listed}"),
    }
}

/// Resolves `req` to a position the source can stream from (`server_id`: the replica id the
/// scan registers with).
pub async fn resolve_start(
    endpoint: &Endpoint,
    server_id: u32,
    req: &StartRequest,
) -> Result<BinlogPos, ReplayError> {
    let files = binary_logs(endpoint).await?;
    match req {
        StartRequest::FilePos(p) => {
            let Some((_, size)) = files.iter().find(|(f, _)| *f == p.file) else {
                let why = match files.first() {
                    Some((oldest, _)) if p.file < *oldest => {
                        format!("{} was purged (older than the oldest binary log)", p.file)
                    }
                    _ => format!("{} is not a binary log of the source", p.file),
                };
                return Err(unavailable(p.to_string(), &files, &why));
            };
            if p.pos < 4 || p.pos > *size {
                return Err(ReplayError::InvalidStart(format!(
                    "offset {} is outside {} (4 … {size})",
                    p.pos, p.file
                )));
            }
            Ok(p.clone())
        }
        StartRequest::Time(t) => {
            if files.is_empty() {
                return Err(unavailable(format!("time {t}"), &files, "no binary logs"));
            }
            // Newest → oldest: the first file whose first transaction is not after `t`.
            let mut from = None;
            for (f, _) in files.iter().rev() {
                match first_begin_time(endpoint, server_id, f).await? {
                    Some(ts) if ts <= *t => {
                        from = Some(f.clone());
                        break;
                    }
                    _ => {}
                }
            }
            let from = match from {
                Some(f) => f,
                None => {
                    // Every file starts after `t` (or holds no transaction): the oldest one
                    // must hold nothing older than `t`, or the changes since `t` are gone.
                    let oldest = &files[0].0;
                    match first_begin_time(endpoint, server_id, oldest).await? {
                        None => oldest.clone(),
                        Some(ts) => {
                            return Err(unavailable(
                                format!("time {t}"),
                                &files,
                                &format!(
                                    "the oldest binary log {oldest} starts at {ts}, after {t}: \
                                     the changes between were purged"
                                ),
                            ))
                        }
                    }
                }
            };
            scan_to_time(endpoint, server_id, &from, *t).await
        }
    }
}

fn reader_opts() -> ReaderOptions {
    ReaderOptions {
        non_blocking: true,
        ..ReaderOptions::default()
    }
}

/// The timestamp of the first transaction in `file` (None: it holds none).
async fn first_begin_time(
    endpoint: &Endpoint,
    server_id: u32,
    file: &str,
) -> Result<Option<u64>, ReplayError> {
    let mut r = BinlogReader::open_with(
        endpoint,
        server_id,
        StartPosition::FilePos(BinlogPos::new(file, 4)),
        reader_opts(),
    )
    .await?;
    let mut out = None;
    while let Some(ev) = r.next().await? {
        if ev.pos.file != file {
            break;
        }
        if matches!(ev.kind, EventKind::Begin { .. }) {
            out = Some(u64::from(ev.timestamp));
            break;
        }
    }
    r.close().await;
    Ok(out)
}

/// The position before the first transaction at or after `t`, scanning from `file`'s start.
async fn scan_to_time(
    endpoint: &Endpoint,
    server_id: u32,
    file: &str,
    t: u64,
) -> Result<BinlogPos, ReplayError> {
    let start = BinlogPos::new(file, 4);
    let mut r = BinlogReader::open_with(
        endpoint,
        server_id,
        StartPosition::FilePos(start.clone()),
        reader_opts(),
    )
    .await?;
    let mut boundary = start;
    let mut in_group = false;
    while let Some(ev) = r.next().await? {
        match &ev.kind {
            EventKind::Begin { .. } => {
                if u64::from(ev.timestamp) >= t {
                    r.close().await;
                    return Ok(boundary);
                }
                in_group = true;
            }
            EventKind::Rotate { .. } => {
                if !in_group {
                    boundary = BinlogPos::new(ev.pos.file.clone(), ev.pos.pos.max(4));
                }
            }
            EventKind::Heartbeat => {}
            _ => {
                if ev.ends_group() {
                    in_group = false;
                    boundary = ev.pos.clone();
                }
            }
        }
    }
    let end = r.position();
    r.close().await;
    Ok(if in_group { boundary } else { end })
}
