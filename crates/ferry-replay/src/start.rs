//! Resolving a user-given start (`Ferry.StartPosition`) to a binlog file and offset that the
//! source still has: a file and offset checked against `SHOW BINARY LOGS`, or a UNIX time
//! resolved to the first transaction whose timestamp is at or after it.
//!
//! A GTID state (a MySQL GTID set or a MariaDB GTID position: what the target already holds) is
//! resolved the same way: the newest file whose header (`Previous_gtids` / `Gtid_list`) the state
//! contains is scanned forward to the first transaction the state does not contain; the start is
//! the position before it. Later transactions that the state contains (a set with gaps, several
//! MariaDB domains) are skipped by the replay ([`gtid_in`]). A state older than the oldest file's
//! header was purged: a definite error naming that file.
//!
//! A time is resolved by reading the binlogs themselves (through the replication protocol,
//! non-blocking): the newest file whose first transaction is not after the time is scanned
//! forward to the first transaction (a `Begin`) at or after the time; the start is the
//! position before that transaction (a transaction boundary). No such transaction yet: the
//! start is the current end of the binlog.

use ferry_core::{Endpoint, Position};
use mysql_async::prelude::Queryable;
use mysql_async::Row;

use crate::error::ReplayError;
use crate::event::{BinlogPos, EventKind, Gtid};
use crate::stream::{BinlogReader, ReaderOptions, StartPosition};

/// A start given by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRequest {
    /// A binlog file and offset (an event boundary, normally a transaction's).
    FilePos(BinlogPos),
    /// The first transaction at or after this UNIX time (seconds).
    Time(u64),
    /// After this GTID state (`Position::MysqlGtidSet` or `Position::MariaGtidPos`): the first
    /// transaction it does not contain.
    Gtid(Position),
}

/// Is the transaction `g` contained in the GTID state `state`? A MariaDB position contains every
/// GTID of its domains up to its sequence number; a MySQL set, its members. A state of the other
/// kind contains nothing.
pub fn gtid_in(state: &Position, g: &Gtid) -> bool {
    match (state, g) {
        (Position::MariaGtidPos { pos }, Gtid::Maria(m)) => {
            pos.0.iter().any(|p| p.domain == m.domain && p.seq >= m.seq)
        }
        (Position::MysqlGtidSet { set }, Gtid::Mysql { uuid, tag, gno }) => {
            set.contains_gtid(uuid, tag.as_deref(), *gno)
        }
        _ => false,
    }
}

/// Does `state` contain the whole GTID header of a binlog file (`Previous_gtids` text on MySQL,
/// `Gtid_list` text `[d-s-n,…]` on MariaDB)? An empty header is contained by any state.
fn header_contained(state: &Position, header: &str) -> bool {
    let text: String = header
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '[' && *c != ']')
        .collect();
    if text.is_empty() {
        return true;
    }
    match state {
        Position::MariaGtidPos { .. } => text.split(',').all(|g| {
            g.parse::<ferry_core::position::MariaGtid>()
                .is_ok_and(|m| gtid_in(state, &Gtid::Maria(m)))
        }),
        Position::MysqlGtidSet { set } => text
            .parse::<ferry_core::GtidSet>()
            .is_ok_and(|h| set.contains(&h)),
        Position::FilePos { .. } => false,
    }
}

/// The GTID header of `file`: the `Previous_gtids` (MySQL) or `Gtid_list` (MariaDB) event's text.
async fn file_header(endpoint: &Endpoint, file: &str) -> Result<String, ReplayError> {
    let mut conn = ferry_core::connect::connect_with(endpoint, Vec::new(), |o| o)
        .await
        .map_err(ReplayError::Connect)?;
    let sql = format!(
        "SHOW BINLOG EVENTS IN {} FROM 4 LIMIT 4",
        ferry_core::sql::quote_str(file)
    );
    let rows: Vec<Row> = conn
        .query(&sql)
        .await
        .map_err(|e| ReplayError::mysql(format!("{sql} on the source"), e))?;
    let _ = conn.disconnect().await;
    for r in rows {
        let kind: Option<String> = r.get_opt(2).and_then(|v| v.ok());
        if matches!(kind.as_deref(), Some("Previous_gtids") | Some("Gtid_list")) {
            let info: Option<String> = r.get_opt(5).and_then(|v| v.ok());
            return Ok(info.unwrap_or_default());
        }
    }
    Ok(String::new())
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
            // The first transaction at or after `t`.
            scan_to(endpoint, server_id, &from, |ev| u64::from(ev.timestamp) >= *t).await
        }
        StartRequest::Gtid(state) => {
            // Newest → oldest: the first file whose header the state contains.
            let mut from = None;
            for (f, _) in files.iter().rev() {
                if header_contained(state, &file_header(endpoint, f).await?) {
                    from = Some(f.clone());
                    break;
                }
            }
            let Some(from) = from else {
                let oldest = files.first().map(|f| f.0.clone()).unwrap_or_default();
                return Err(unavailable(
                    format!("GTID {}", position_text(state)),
                    &files,
                    &format!(
                        "the oldest binary log {oldest} starts after transactions this GTID state \
                         does not hold: they were purged"
                    ),
                ));
            };
            // The first transaction the state does not contain.
            scan_to(endpoint, server_id, &from, |ev| match &ev.kind {
                EventKind::Begin { gtid, .. } => !gtid.as_ref().is_some_and(|g| gtid_in(state, g)),
                _ => false,
            })
            .await
        }
    }
}

fn position_text(p: &Position) -> String {
    match p {
        Position::MysqlGtidSet { set } => set.to_string(),
        Position::MariaGtidPos { pos } => pos.to_string(),
        Position::FilePos { file, pos } => format!("{file}:{pos}"),
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

/// The position before the first transaction `stop` picks (given its `Begin` event), scanning
/// from `file`'s start: a transaction boundary; the current end when none is picked yet.
async fn scan_to(
    endpoint: &Endpoint,
    server_id: u32,
    file: &str,
    stop: impl Fn(&crate::event::ReplEvent) -> bool,
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
                if stop(&ev) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::position::MariaGtid;

    fn maria(t: &str) -> Position {
        t.parse().unwrap()
    }

    #[test]
    fn maria_containment() {
        let st = maria("0-1-100,1-2-5");
        let g = |d, s, n| {
            Gtid::Maria(MariaGtid {
                domain: d,
                server: s,
                seq: n,
            })
        };
        assert!(gtid_in(&st, &g(0, 1, 100)));
        assert!(
            gtid_in(&st, &g(0, 3, 7)),
            "any server of the domain up to the sequence"
        );
        assert!(!gtid_in(&st, &g(0, 1, 101)));
        assert!(!gtid_in(&st, &g(2, 1, 1)), "another domain");
        assert!(header_contained(&st, "[0-1-50,1-2-5]"));
        assert!(header_contained(&st, "[]"));
        assert!(!header_contained(&st, "[0-1-101]"));
        assert!(!header_contained(&st, "[2-1-1]"));
    }

    #[test]
    fn mysql_containment() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let st: Position = format!("{u}:1-10:20-30").parse().unwrap();
        let g = |n| Gtid::Mysql {
            uuid: u.into(),
            tag: None,
            gno: n,
        };
        assert!(gtid_in(&st, &g(5)));
        assert!(!gtid_in(&st, &g(15)), "a gap");
        assert!(gtid_in(&st, &g(25)));
        assert!(header_contained(&st, &format!("{u}:1-8")));
        assert!(!header_contained(&st, &format!("{u}:1-12")));
        assert!(header_contained(&st, ""));
        assert!(!gtid_in(&maria("0-1-5"), &g(1)), "kinds differ");
    }
}
