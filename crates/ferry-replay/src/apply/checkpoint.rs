//! The replay checkpoint on the target (`ferry_meta.replay_checkpoint`), and where replay starts.
//!
//! One row per job: the source binlog position (file + offset) after the last applied group, the
//! GTID state there, when it was applied and the source timestamp of that group. Every applied
//! source transaction updates the row in the *same* target transaction as its changes, so after a
//! kill the row says exactly what the target contains.
//!
//! Without a row (first start), replay starts at the start of the full load's [`LoadWindow`]: the
//! earliest of the positions recorded with the load's chunks (`ferry_meta.load_chunk.snapshot`:
//! chunks redone after a resumed load were read at later snapshots, and a lock-free load reads
//! every chunk in a read view of its own) and the load's own snapshot (a lower bound in a
//! lock-free load). When they differ, the changes up to the latest are applied idempotently, and
//! the target is consistent only from there.
//!
//! With a cluster's epoch ([`ferry_core::fence`]), every checkpoint write carries the epoch check
//! in front of it ([`update_sql`]), and a commit the check refuses is [`ReplayError::Fenced`]
//! ([`commit`]).

use ferry_core::fence::Fence;
use ferry_core::position::SnapshotPosition;
use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use ferry_core::{GtidSet, Position};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::lag::pos_cmp;
use crate::error::ReplayError;
use crate::event::BinlogPos;

/// A stored replay checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub pos: BinlogPos,
    /// The GTID state at `pos` (`Position` text), when known.
    pub gtid: Option<String>,
    /// Source timestamp of the last applied group (0 when unknown).
    pub source_ts: u64,
}

/// Where replay starts and until where it must be idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPlan {
    pub start: BinlogPos,
    pub gtid: Option<String>,
    /// Apply idempotently while the applied position is before this (chunks read at different
    /// snapshots).
    pub idempotent_until: Option<BinlogPos>,
    /// True when the start came from an existing replay checkpoint.
    pub resumed: bool,
    /// The source's GTID state at `start`, for the reader (`ReaderOptions::start_gtid`): the
    /// checkpoint's, else the snapshot's. A snapshot without GTIDs gives the empty MySQL set
    /// (`gtid_executed` was empty under the lock; a MariaDB reader ignores a MySQL set). `None`
    /// when unknown (an explicit start, a checkpoint without a set).
    pub gtid_seed: Option<Position>,
}

fn parse_gtid(text: Option<&str>) -> Option<Position> {
    let t = text?;
    match t.parse::<Position>() {
        Ok(p @ (Position::MysqlGtidSet { .. } | Position::MariaGtidPos { .. })) => Some(p),
        Ok(Position::FilePos { .. }) | Err(_) => {
            tracing::warn!(
                gtid = t,
                "the checkpoint's GTID state is unreadable; it is rebuilt from the binlog"
            );
            None
        }
    }
}

pub(crate) fn table() -> String {
    format!(
        "{}.{}",
        quote_ident(META_SCHEMA),
        quote_ident("replay_checkpoint")
    )
}

fn err(what: &str, e: mysql_async::Error) -> ReplayError {
    ReplayError::Apply {
        what: what.to_string(),
        position: "start".into(),
        source: e,
    }
}

/// Creates `ferry_meta.replay_checkpoint` if missing, or migrates it ([`ferry_core::meta`]).
pub async fn ensure_table(conn: &mut Conn) -> Result<(), ReplayError> {
    ferry_core::meta::ensure(conn).await.map_err(|e| match e {
        ferry_core::CoreError::Mysql { context, source } => err(&context, source),
        other => ReplayError::Checkpoint(other.to_string()),
    })
}

/// Reads the checkpoint of a job, with its idempotent bound.
pub async fn read(
    conn: &mut Conn,
    job: &str,
) -> Result<Option<(Checkpoint, Option<BinlogPos>)>, ReplayError> {
    type Row = (String, u64, Option<String>, u64, Option<String>, Option<u64>);
    let row: Option<Row> = conn
        .exec_first(
            format!(
                "SELECT file, pos, gtid, source_ts, idempotent_file, idempotent_pos FROM {} WHERE job = ?",
                table()
            ),
            (job,),
        )
        .await
        .map_err(|e| err("reading the replay checkpoint", e))?;
    Ok(row.map(|(file, pos, gtid, source_ts, ifile, ipos)| {
        (
            Checkpoint {
                pos: BinlogPos::new(file, pos),
                gtid: gtid.filter(|g| !g.is_empty()),
                source_ts,
            },
            match (ifile, ipos) {
                (Some(f), Some(p)) => Some(BinlogPos::new(f, p)),
                _ => None,
            },
        )
    }))
}

/// Deletes the checkpoint of a job (a restarted job replays from its new snapshot).
pub async fn clear(conn: &mut Conn, job: &str) -> Result<(), ReplayError> {
    ensure_table(conn).await?;
    conn.exec_drop(format!("DELETE FROM {} WHERE job = ?", table()), (job,))
        .await
        .map_err(|e| err("clearing the replay checkpoint", e))?;
    super::xa::clear(conn, job).await
}

/// Where the full load's data lies in the binlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWindow {
    /// At or before every chunk's read view, with the GTID state there when known: replay
    /// starts here.
    pub start: SnapshotPosition,
    /// At or after every chunk's read view: the target is consistent once replay has applied
    /// up to here (equal to `start` when every chunk was read in one snapshot).
    pub end: BinlogPos,
}

impl LoadWindow {
    /// The end, when the chunks were read at different positions (the changes in between are
    /// applied idempotently).
    pub fn idempotent_until(&self) -> Option<BinlogPos> {
        let start = BinlogPos::new(self.start.file.clone(), self.start.pos);
        (pos_cmp(&start, &self.end) == std::cmp::Ordering::Less).then(|| self.end.clone())
    }
}

/// The full load's window (see [`LoadWindow`]): the positions recorded with every copied chunk
/// (`ferry_meta.load_chunk.snapshot`: one per lock-free chunk, or the snapshot of the run that
/// copied it) and the load's own snapshot (`load_job`, a lower bound in lock-free loads). `None`
/// when the job has no full load on this target.
pub async fn load_window(conn: &mut Conn, job: &str) -> Result<Option<LoadWindow>, ReplayError> {
    let mut snaps = chunk_snapshots(conn, job).await?;
    snaps.extend(load_job_snapshot(conn, job).await?);
    let key = |p: &SnapshotPosition| BinlogPos::new(p.file.clone(), p.pos);
    snaps.sort_by(|a, b| pos_cmp(&key(a), &key(b)));
    let (Some(first), Some(last)) = (snaps.first(), snaps.last()) else {
        return Ok(None);
    };
    // Chunk positions carry no GTID state; the load's own snapshot at the same place does.
    let start = snaps
        .iter()
        .take_while(|p| key(p) == key(first))
        .find(|p| p.gtid.is_some())
        .unwrap_or(first)
        .clone();
    Ok(Some(LoadWindow {
        start,
        end: key(last),
    }))
}

/// The positions the full load's chunks were read at.
async fn chunk_snapshots(conn: &mut Conn, job: &str) -> Result<Vec<SnapshotPosition>, ReplayError> {
    let exists: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'load_chunk'",
            (META_SCHEMA,),
        )
        .await
        .map_err(|e| err("reading ferry_meta", e))?;
    if exists.unwrap_or(0) == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<Option<String>> = conn
        .exec(
            format!(
                "SELECT DISTINCT snapshot FROM {}.{} WHERE job = ? AND done = 1",
                quote_ident(META_SCHEMA),
                quote_ident("load_chunk")
            ),
            (job,),
        )
        .await
        .map_err(|e| err("reading the load's chunk snapshots", e))?;
    let mut snaps: Vec<SnapshotPosition> = Vec::new();
    for s in rows.into_iter().flatten() {
        let p: SnapshotPosition = serde_json::from_str(&s)
            .map_err(|e| ReplayError::Checkpoint(format!("unreadable chunk snapshot {s:?}: {e}")))?;
        snaps.push(p);
    }
    Ok(snaps)
}

async fn load_job_snapshot(conn: &mut Conn, job: &str) -> Result<Option<SnapshotPosition>, ReplayError> {
    let exists: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'load_job'",
            (META_SCHEMA,),
        )
        .await
        .map_err(|e| err("reading ferry_meta", e))?;
    if exists.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let row: Option<(Option<String>, Option<u64>, Option<String>)> = conn
        .exec_first(
            format!(
                "SELECT snapshot_file, snapshot_pos, snapshot_gtid FROM {}.{} WHERE job = ?",
                quote_ident(META_SCHEMA),
                quote_ident("load_job")
            ),
            (job,),
        )
        .await
        .map_err(|e| err("reading the load's snapshot", e))?;
    Ok(match row {
        Some((Some(file), Some(pos), gtid)) => Some(SnapshotPosition {
            file,
            pos,
            gtid: gtid.and_then(|g| g.parse().ok()),
        }),
        _ => None,
    })
}

/// Decides where replay starts: the checkpoint, else the earliest chunk snapshot, else the
/// load job's snapshot, else `explicit` (a caller-given start). Writes the initial checkpoint row
/// when there was none, so every later write is an UPDATE.
pub async fn plan_start(
    conn: &mut Conn,
    job: &str,
    explicit: Option<&BinlogPos>,
) -> Result<StartPlan, ReplayError> {
    ensure_table(conn).await?;
    if let Some((cp, idem)) = read(conn, job).await? {
        return Ok(StartPlan {
            start: cp.pos,
            gtid_seed: parse_gtid(cp.gtid.as_deref()),
            gtid: cp.gtid,
            idempotent_until: idem,
            resumed: true,
        });
    }
    let snapshot_seed = |g: &Option<Position>| {
        Some(
            g.clone()
                .unwrap_or(Position::MysqlGtidSet { set: GtidSet::new() }),
        )
    };
    let (start, gtid, idem, gtid_seed) = if let Some(p) = explicit {
        (p.clone(), None, None, None)
    } else if let Some(w) = load_window(conn, job).await? {
        let idem = w.idempotent_until();
        let seed = snapshot_seed(&w.start.gtid);
        (
            BinlogPos::new(w.start.file.clone(), w.start.pos),
            w.start.gtid.map(|g| g.to_string()),
            idem,
            seed,
        )
    } else {
        return Err(ReplayError::Checkpoint(format!(
            "job {job} has no replay checkpoint and no full-load snapshot on the target: run the full \
             load first (MigrateType 3 does), or give a start position"
        )));
    };
    conn.exec_drop(
        format!(
            "INSERT INTO {} (job, file, pos, gtid, applied_at, source_ts, idempotent_file, idempotent_pos) \
             VALUES (?, ?, ?, ?, NOW(6), 0, ?, ?)",
            table()
        ),
        (
            job,
            &start.file,
            start.pos,
            gtid.as_deref(),
            idem.as_ref().map(|p| p.file.clone()),
            idem.as_ref().map(|p| p.pos),
        ),
    )
    .await
    .map_err(|e| err("writing the initial replay checkpoint", e))?;
    Ok(StartPlan {
        start,
        gtid,
        idempotent_until: idem,
        resumed: false,
        gtid_seed,
    })
}

/// The checkpoint UPDATE for a position (a text statement, to run inside the group's target
/// transaction), preceded by the fence's epoch check when there is one
/// ([`ferry_core::fence::check_sql`]; nothing without).
pub fn update_sql(
    job: &str,
    fence: Option<&Fence>,
    pos: &BinlogPos,
    gtid: Option<&str>,
    source_ts: u32,
) -> String {
    use ferry_core::sql::quote_str;
    format!(
        "{}UPDATE {} SET file = {}, pos = {}, gtid = {}, applied_at = NOW(6), source_ts = {} WHERE job = {}",
        ferry_core::fence::check_sql(fence),
        table(),
        quote_str(&pos.file),
        pos.pos,
        gtid.map(quote_str).unwrap_or_else(|| "NULL".into()),
        source_ts,
        quote_str(job)
    )
}

/// Sends a checkpoint commit round trip (`sql` holds [`update_sql`] and ends with `COMMIT`). A
/// failure is `apply_err(what, at, …)`, or [`ReplayError::Fenced`] (rolled back) when the fence's
/// check refused it.
pub(crate) async fn commit(
    conn: &mut Conn,
    fence: Option<&Fence>,
    sql: String,
    what: &str,
    at: &BinlogPos,
) -> Result<(), ReplayError> {
    match conn.query_drop(sql).await {
        Ok(()) => Ok(()),
        Err(e) => match ferry_core::fence::after_failed_commit(fence, conn).await {
            Some(fenced) => Err(ReplayError::Fenced(fenced)),
            None => Err(super::rowapply::apply_err(what, at, e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without an epoch the checkpoint write is the one UPDATE it always was (no statement and
    /// no round trip added per batch); with one, the epoch check's two statements go in front,
    /// in the same text (the same round trip as the batch's COMMIT).
    #[test]
    fn the_fence_adds_two_statements_only_when_there_is_an_epoch() {
        let at = BinlogPos::new("mariadb-bin.000002", 1234);
        let plain = update_sql("j", None, &at, Some("0-1-5"), 7);
        assert!(plain.starts_with("UPDATE `ferry_meta`.`replay_checkpoint` SET file = 'mariadb-bin.000002'"));
        assert!(!plain.contains(';'), "{plain}");
        let f = Fence::new("j", 3);
        let fenced = update_sql("j", Some(&f), &at, Some("0-1-5"), 7);
        assert_eq!(fenced, format!("{}{plain}", f.check_sql()));
        assert_eq!(fenced.matches("; ").count(), 2, "{fenced}");
    }
}
