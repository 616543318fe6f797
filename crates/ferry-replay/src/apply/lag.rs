//! Binlog position arithmetic and the source's binlog end, for lag and cut-over.
//!
//! - [`pos_cmp`] orders positions across files by the numeric suffix of the file name
//!   (`mysql-bin.000009` < `mysql-bin.000010`), then by offset;
//! - [`SourceEnd`] is the source's current end (`SHOW MASTER STATUS`, or `SHOW BINARY LOG STATUS`
//!   on MySQL 8.2+) and the sizes of its binlog files (`SHOW BINARY LOGS`), so that the bytes
//!   behind can be summed across files;
//! - [`seconds_behind`] is the lag in seconds, and keeps growing while the replay is
//!   disconnected, blocked or failing; [`error_side`] tells which server an error came from.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::error::ReplayError;
use crate::event::BinlogPos;

/// A source end older than this is no evidence of anything: the source is not answering.
pub const END_MAX_AGE: Duration = Duration::from_secs(5);

/// Seconds the target is behind the source, at wall-clock second `now`.
///
/// 0 when `caught_up` (the applied position is at the source's end, as read just now).
/// Otherwise `now` minus the latest moment the target is known to have been current: the last
/// time the replay was caught up (`caught_up_at`), or the source commit time of the last applied
/// transaction (`applied_ts`), or, when neither is known yet, when the replay started
/// (`started_at`). Nothing here needs the source: while the source cannot be reached, the
/// replay is blocked, or every attempt fails, the value keeps growing by one per second.
pub fn seconds_behind(now: f64, caught_up: bool, caught_up_at: f64, applied_ts: u32, started_at: f64) -> f64 {
    if caught_up {
        return 0.0;
    }
    let mut since = caught_up_at.max(f64::from(applied_ts));
    if since <= 0.0 {
        since = started_at;
    }
    if since <= 0.0 {
        return 0.0;
    }
    (now - since).max(0.0)
}

/// Which server an error of the replay came from: [`ferry_core::progress::SIDE_SOURCE`] (the
/// binlog stream, the binlog end, connecting to the source) or
/// [`ferry_core::progress::SIDE_TARGET`] (connecting, applying, the checkpoint).
pub fn error_side(e: &ReplayError) -> &'static str {
    use ferry_core::progress::{SIDE_SOURCE, SIDE_TARGET};
    match e {
        ReplayError::Connect(_)
        | ReplayError::Mysql { .. }
        | ReplayError::Disconnected { .. }
        | ReplayError::PositionUnavailable { .. }
        | ReplayError::UnknownEvent { .. }
        | ReplayError::Unsupported { .. }
        | ReplayError::Checksum { .. }
        | ReplayError::Corrupt { .. }
        | ReplayError::InvalidStart(_) => SIDE_SOURCE,
        ReplayError::TargetConnect(_)
        | ReplayError::Apply { .. }
        | ReplayError::Conflict { .. }
        | ReplayError::Checkpoint(_)
        | ReplayError::TargetSchema { .. }
        | ReplayError::Fenced(_)
        | ReplayError::SchemaMismatch { .. } => SIDE_TARGET,
        #[allow(unreachable_patterns)]
        _ => "",
    }
}

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
    /// When this was read (`None`: never).
    pub read_at: Option<Instant>,
}

impl SourceEnd {
    /// True when it was read within [`END_MAX_AGE`]: the source answers.
    pub fn fresh(&self) -> bool {
        self.read_at.is_some_and(|t| t.elapsed() <= END_MAX_AGE)
    }

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
    Ok(SourceEnd {
        end,
        files,
        read_at: Some(Instant::now()),
    })
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
            read_at: None,
        };
        assert!(!e.fresh(), "never read: not evidence of the source's end");
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000003", 100)), 200);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000002", 500)), 1500 + 300);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000001", 1000)), 2000 + 300);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000003", 300)), 0);
        assert_eq!(e.bytes_behind(&BinlogPos::new("b.000004", 4)), 0);
    }

    #[test]
    fn seconds_behind_grows_while_disconnected() {
        // Caught up: 0, whatever the clocks say.
        assert_eq!(seconds_behind(1000.0, true, 990.0, 900, 800.0), 0.0);
        // Last caught up at 990, source time of the last applied commit 980: from 990.
        assert_eq!(seconds_behind(1000.0, false, 990.0, 980, 800.0), 10.0);
        // The source is down: nothing moves but the clock, and the lag grows with it.
        let lags: Vec<f64> = (0..=20)
            .map(|s| seconds_behind(1000.0 + f64::from(s), false, 990.0, 980, 800.0))
            .collect();
        assert!(lags.windows(2).all(|w| w[1] - w[0] == 1.0), "{lags:?}");
        assert_eq!(lags[20], 30.0);
        // Behind a backlog: from the source time of the last applied commit.
        assert_eq!(seconds_behind(1000.0, false, 0.0, 940, 800.0), 60.0);
        // Nothing known yet (the source was down from the start): from the replay's start.
        assert_eq!(seconds_behind(1000.0, false, 0.0, 0, 985.0), 15.0);
        assert_eq!(seconds_behind(1000.0, false, 0.0, 0, 0.0), 0.0);
        // A source clock ahead of ours never gives a negative lag.
        assert_eq!(seconds_behind(1000.0, false, 0.0, 1005, 0.0), 0.0);
    }

    #[test]
    fn sides() {
        let d = ReplayError::Disconnected {
            position: "f:4".into(),
            reason: "eof".into(),
        };
        assert_eq!(error_side(&d), "source");
        assert_eq!(error_side(&ReplayError::Checkpoint("x".into())), "target");
    }
}
