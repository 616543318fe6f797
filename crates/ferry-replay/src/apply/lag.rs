//! Binlog position arithmetic and the source's binlog end, for lag and cut-over.
//!
//! - [`pos_cmp`] orders positions across files by the numeric suffix of the file name
//!   (`mysql-bin.000009` < `mysql-bin.000010`), then by offset;
//! - [`SourceEnd`] is the source's current end (`SHOW MASTER STATUS`, or `SHOW BINARY LOG STATUS`
//!   on MySQL 8.2+) and the sizes of its binlog files (`SHOW BINARY LOGS`), so that the bytes
//!   behind can be summed across files.

use std::cmp::Ordering;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::error::ReplayError;
use crate::event::BinlogPos;

fn suffix(file: &str) -> Option<u64> {
    file.rsplit_once('.').and_then(|(_, s)| s.parse().ok())
}

/// Orders two positions: by the file's numeric suffix (the name when there is none), then offset.
pub fn pos_cmp(a: &BinlogPos, b: &BinlogPos) -> Ordering {
    let fa = match (suffix(&a.file), suffix(&b.file)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.file.cmp(&b.file),
    };
    fa.then(a.pos.cmp(&b.pos))
}

/// True when `a` is at or after `b`.
pub fn pos_ge(a: &BinlogPos, b: &BinlogPos) -> bool {
    pos_cmp(a, b) != Ordering::Less
}

/// The source's binlog end and file sizes.
#[derive(Debug, Clone, Default)]
pub struct SourceEnd {
    pub end: Option<BinlogPos>,
    /// (file, size) of every binlog file, in order.
    pub files: Vec<(String, u64)>,
}

impl SourceEnd {
    /// Bytes from `from` to the end, summed across files (0 when `from` is at or after the end).
    pub fn bytes_behind(&self, from: &BinlogPos) -> u64 {
        let Some(end) = &self.end else { return 0 };
        if pos_ge(from, end) {
            return 0;
        }
        if from.file == end.file {
            return end.pos - from.pos;
        }
        let mut total = 0u64;
        for (f, size) in &self.files {
            let p = BinlogPos::new(f.clone(), 0);
            if pos_cmp(&p, &BinlogPos::new(from.file.clone(), 0)) == Ordering::Less {
                continue;
            }
            if f == &end.file {
                total += end.pos;
                break;
            }
            if f == &from.file {
                total += size.saturating_sub(from.pos);
            } else {
                total += size;
            }
        }
        total
    }
}

fn mysql_err(what: &str, e: mysql_async::Error) -> ReplayError {
    ReplayError::mysql(format!("reading the source's binlog end ({what})"), e)
}

/// The current end of the source's binlog (`SHOW MASTER STATUS`; `SHOW BINARY LOG STATUS` on
/// MySQL 8.2+, where the former is gone).
pub async fn master_status(conn: &mut Conn) -> Result<Option<BinlogPos>, ReplayError> {
    let row: Option<Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(mysql_async::Error::Server(s)) if s.code == 1064 => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|e| mysql_err("SHOW BINARY LOG STATUS", e))?,
        Err(e) => return Err(mysql_err("SHOW MASTER STATUS", e)),
    };
    let Some(row) = row else { return Ok(None) };
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    Ok(match (file, pos) {
        (Some(f), Some(p)) => Some(BinlogPos::new(f, p)),
        _ => None,
    })
}

/// The end and the file sizes.
pub async fn source_end(conn: &mut Conn) -> Result<SourceEnd, ReplayError> {
    let end = master_status(conn).await?;
    let rows: Vec<Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| mysql_err("SHOW BINARY LOGS", e))?;
    let files = rows
        .into_iter()
        .filter_map(|r| {
            let f: Option<String> = r.get(0);
            let s: Option<u64> = r.get(1);
            Some((f?, s?))
        })
        .collect();
    Ok(SourceEnd { end, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_files() {
        let a = BinlogPos::new("mysql-bin.000009", 900);
        let b = BinlogPos::new("mysql-bin.000010", 4);
        assert_eq!(pos_cmp(&a, &b), Ordering::Less);
        assert!(pos_ge(&b, &a));
        assert!(pos_ge(&a, &a));
        let c = BinlogPos::new("mysql-bin.1000000", 4);
        assert_eq!(pos_cmp(&b, &c), Ordering::Less);
    }

    #[test]
    fn bytes_behind_sums_files() {
        let e = SourceEnd {
            end: Some(BinlogPos::new("b.000003", 300)),
            files: vec![
                ("b.000001".into(), 1000),
                ("b.000002".into(), 2000),
                ("b.000003".into(), 300),
            ],
        };
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000003", 100)), 200);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000002", 500)), 1500 + 300);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000001", 1000)), 2000 + 300);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000003", 300)), 0);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000004", 4)), 0);
    }
}
