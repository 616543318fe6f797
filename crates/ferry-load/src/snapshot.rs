//! The consistent snapshot shared by all reader connections, and the binlog position it is at.
//!
//! How the position is obtained:
//!
//! 1. `threads` reader connections are opened first (REPEATABLE READ, UTC, binary results), so the
//!    lock is held only for the few statements below, never for a connection handshake.
//! 2. A control connection sets `lock_wait_timeout` to the job's lock timeout and takes the global
//!    lock that stops commits:
//!    - **MariaDB** (10.4+): `BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT`. It waits for running
//!      commits and DDL, not for long SELECTs, and blocks commits and binlog writes. If the server
//!      refuses it (older version, missing privilege), `FLUSH TABLES WITH READ LOCK` is used instead.
//!    - **MySQL 8**: `FLUSH TABLES WITH READ LOCK` (it waits for running statements to finish).
//! 3. While the lock is held, every reader runs `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ
//!    ONLY`, so all readers see the same committed state, and the control connection reads the
//!    binlog file and offset (`SHOW MASTER STATUS`, `SHOW BINARY LOG STATUS` on MySQL 8.2+) and
//!    the GTID state (`@@GLOBAL.gtid_binlog_pos` on MariaDB, `@@GLOBAL.gtid_executed` on MySQL;
//!    empty means no GTIDs). No commit can happen in between, so the snapshot contains exactly the
//!    transactions before that position.
//! 4. The lock is released (`BACKUP STAGE END` / `UNLOCK TABLES`); `lock_ms` is the time from the
//!    lock request to the release.
//!
//! `Ferry.SnapshotMode` ([`SnapshotMode`]): `lock` is the above. `lockless` takes no global lock,
//! writes nothing and holds no read view longer than one chunk: every chunk is read in its own
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`, committed when the chunk is read
//! ([`ChunkViews`]), and the chunk checkpoint records where in the binlog that read view is:
//!
//! - **exact** (MariaDB, Percona Server): the `Binlog_snapshot_file` / `Binlog_snapshot_position`
//!   session status, which the server takes atomically with the read view;
//! - **upper bound** (MySQL, which has no such status): the binlog status read just after the read
//!   view opened. Every transaction the view sees had been written to the binlog before it
//!   committed, so it lies before that position.
//!
//! The load's own position (the replay's start) is a lower bound of every chunk's view: on
//! MariaDB/Percona the exact position of a read view opened (and closed) before the first chunk;
//! on MySQL the *start of the binlog file* that was current before the first chunk, because a
//! transaction can be in the binlog but not yet committed (visible) when the status is read, while
//! MySQL rotates a binlog file only once every transaction written to it has committed. The GTID
//! state there is `BINLOG_GTID_POS(file, pos)` on MariaDB, `Binlog_snapshot_gtid_executed` on
//! Percona Server, the file's `Previous_gtids` event on MySQL.
//!
//! The incremental phase then replays from that lower bound and applies idempotently until the
//! latest chunk position (see `ferry_replay::apply::checkpoint`), after which the target is
//! consistent and replay is exactly-once as usual; a full-only job replays that window before it
//! finishes. `auto` takes the lock and, when the server refuses it (no RELOAD privilege, a managed
//! service), goes lock-free instead; a lock *timeout* is not a refusal and still fails the load.
//!
//! If the lock is not granted within the timeout, the load fails with
//! [`LoadError::LockTimeout`] naming the statements that have been running for more than a second
//! (from `information_schema.PROCESSLIST`, our own connections excluded). A source without a binary
//! log fails with [`LoadError::NoBinlog`] before any lock is taken. Non-transactional tables
//! (MyISAM, Aria) are read without a snapshot and are consistent only if nothing writes them.

use std::time::{Duration, Instant};

use ferry_core::position::{GtidSet, MariaGtidPos, Position};
use ferry_core::{Endpoint, Flavor, SnapshotMode, SnapshotPosition};
use futures_util::future::try_join_all;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::error::{Ctx, LoadError};
use crate::session;

/// Reader connections inside one consistent snapshot, and where it is in the binlog.
pub struct Snapshot {
    /// Connections with an open `START TRANSACTION WITH CONSISTENT SNAPSHOT`.
    pub readers: Vec<Conn>,
    /// The binlog position (and GTID state) of the snapshot.
    pub position: SnapshotPosition,
    /// How long commits were blocked on the source.
    pub lock_ms: u64,
    /// `Some` when lock-free: the readers hold no read view, each chunk opens its own.
    pub per_chunk: Option<ChunkViews>,
}

/// How a lock-free load places each chunk's read view in the binlog (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkPositions {
    /// `Binlog_snapshot_file` / `Binlog_snapshot_position` (MariaDB, Percona Server).
    Exact,
    /// The binlog status read right after the read view opened (MySQL).
    UpperBound,
}

/// Opens and closes the per-chunk read views of a lock-free load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkViews {
    pub positions: ChunkPositions,
    /// The binlog status statement of the source.
    status_sql: &'static str,
}

impl ChunkViews {
    /// Opens a read view on `reader` and returns where it is in the binlog (exact or an upper
    /// bound); the view lasts until [`ChunkViews::close`] or the next open.
    pub async fn open(&self, reader: &mut Conn) -> Result<SnapshotPosition, LoadError> {
        reader
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .ctx(|| "starting a chunk's consistent snapshot".into())?;
        let (file, pos) = match self.positions {
            ChunkPositions::Exact => {
                let (f, p, _) = reader_snapshot_position(reader).await?;
                (f, p)
            }
            ChunkPositions::UpperBound => read_binlog_status(reader, self.status_sql)
                .await?
                .ok_or(LoadError::NoBinlog)?,
        };
        Ok(SnapshotPosition {
            file,
            pos,
            gtid: None,
        })
    }

    /// Ends the read view.
    pub async fn close(&self, reader: &mut Conn) -> Result<(), LoadError> {
        reader
            .query_drop("COMMIT")
            .await
            .ctx(|| "ending a chunk's consistent snapshot".into())
    }
}

/// Test hook: `FERRY_SNAPSHOT_POSITIONS=upper_bound` makes a lock-free load use MySQL's method
/// (binlog status bounds) on MariaDB too, so the test servers exercise it.
fn forced_upper_bound() -> bool {
    std::env::var("FERRY_SNAPSHOT_POSITIONS").is_ok_and(|v| v == "upper_bound")
}

/// Which global lock is held.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lock {
    BackupStage,
    Ftwrl,
}

/// Opens `readers` connections and puts them in one consistent snapshot, taken as `mode` says.
pub async fn take(
    src: &Endpoint,
    readers: usize,
    lock_timeout: Duration,
    mode: SnapshotMode,
) -> Result<Snapshot, LoadError> {
    let mut control = src.connect(session::plain()).await?;
    let flavor = Flavor::detect(&mut control).await?;
    let status_sql = flavor.binlog_status_sql();
    if read_binlog_status(&mut control, status_sql).await?.is_none() {
        return Err(LoadError::NoBinlog);
    }
    let exact = supports_lockless(&mut control).await && !forced_upper_bound();
    let mut conns = try_join_all((0..readers.max(1)).map(|_| src.connect(session::reader()))).await?;
    if mode == SnapshotMode::Lockless {
        return lockless(conns, control, &flavor, exact).await;
    }
    let mut ours: Vec<u32> = conns.iter().map(|c| c.id()).collect();
    ours.push(control.id());

    let secs = lock_timeout.as_secs().max(1);
    control
        .query_drop(format!("SET SESSION lock_wait_timeout = {secs}"))
        .await
        .ctx(|| "setting lock_wait_timeout on the source".into())?;

    let started = Instant::now();
    let lock = match lock_with_deadline(src, &mut control, &flavor, lock_timeout).await {
        Ok(l) => l,
        Err(LockFailure::Timeout(statement)) => {
            let blockers = blockers(&mut conns[0], &ours).await;
            return Err(LoadError::LockTimeout {
                statement,
                waited_ms: started.elapsed().as_millis() as u64,
                blockers,
            });
        }
        Err(LockFailure::Other(e)) if mode == SnapshotMode::Auto => {
            tracing::warn!(error = %e, "the source refused the global lock; loading lock-free, one read view per chunk (Ferry.SnapshotMode auto)");
            return lockless(conns, control, &flavor, exact).await;
        }
        Err(LockFailure::Other(e)) => return Err(e),
    };
    let inside = snapshot_under_lock(&mut control, &mut conns, &flavor).await;
    let unlock_sql = match lock {
        Lock::BackupStage => "BACKUP STAGE END",
        Lock::Ftwrl => "UNLOCK TABLES",
    };
    let unlocked = control
        .query_drop(unlock_sql)
        .await
        .ctx(|| format!("releasing the global lock ({unlock_sql})"));
    let lock_ms = started.elapsed().as_millis() as u64;
    let position = inside?;
    unlocked?;
    let _ = control.disconnect().await;
    tracing::info!(%position, lock_ms, ?lock, "consistent snapshot taken");
    Ok(Snapshot {
        readers: conns,
        position,
        lock_ms,
        per_chunk: None,
    })
}

/// Does the server report a consistent snapshot's binlog position (MariaDB, Percona Server)?
async fn supports_lockless(control: &mut Conn) -> bool {
    let rows: Result<Vec<(String, String)>, _> = control
        .query("SHOW SESSION STATUS LIKE 'Binlog_snapshot_file'")
        .await;
    rows.is_ok_and(|r| !r.is_empty())
}

/// The binlog position (and, on Percona Server, the GTID set) of a reader's open snapshot.
async fn reader_snapshot_position(c: &mut Conn) -> Result<(String, u64, Option<String>), LoadError> {
    let rows: Vec<(String, String)> = c
        .query(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Binlog_snapshot_file', \
             'Binlog_snapshot_position', 'Binlog_snapshot_gtid_executed')",
        )
        .await
        .ctx(|| "reading Binlog_snapshot_file / Binlog_snapshot_position".into())?;
    let get = |n: &str| {
        rows.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let file = get("Binlog_snapshot_file").filter(|f| !f.is_empty());
    let pos = get("Binlog_snapshot_position").and_then(|p| p.parse::<u64>().ok());
    match (file, pos) {
        (Some(f), Some(p)) => Ok((f, p, get("Binlog_snapshot_gtid_executed"))),
        _ => Err(LoadError::Checkpoint(
            "the source reported no Binlog_snapshot_file / Binlog_snapshot_position for a consistent \
             snapshot (is the binary log on?)"
                .into(),
        )),
    }
}

/// The lock-free load (see the module documentation): the readers stay outside any read view;
/// the position returned is a lower bound of every chunk's view, with its GTID state.
async fn lockless(
    readers: Vec<Conn>,
    mut control: Conn,
    flavor: &Flavor,
    exact: bool,
) -> Result<Snapshot, LoadError> {
    let status_sql = flavor.binlog_status_sql();
    let (file, pos, percona_gtid) = if exact {
        // A read view opened and closed at once: its exact position precedes every chunk's.
        control
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .ctx(|| "starting a consistent snapshot on the source".into())?;
        let at = reader_snapshot_position(&mut control).await?;
        control
            .query_drop("COMMIT")
            .await
            .ctx(|| "ending the consistent snapshot".into())?;
        at
    } else {
        // The start of the current binlog file: every transaction in earlier files had committed
        // before the server rotated, and the current file's are replayed idempotently.
        let (file, _) = read_binlog_status(&mut control, status_sql)
            .await?
            .ok_or(LoadError::NoBinlog)?;
        (file, 4, None)
    };
    let gtid_text = if flavor.is_mariadb() {
        let g: Option<Option<String>> = control
            .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))
            .await
            .ctx(|| "reading the GTID position of the load's start (BINLOG_GTID_POS)".into())?;
        g.flatten().unwrap_or_default()
    } else if let Some(g) = percona_gtid {
        g
    } else {
        previous_gtids(&mut control, &file).await?
    };
    let _ = control.disconnect().await;
    let gtid = parse_gtid(flavor, &gtid_text)?;
    let position = SnapshotPosition { file, pos, gtid };
    let positions = if exact {
        ChunkPositions::Exact
    } else {
        ChunkPositions::UpperBound
    };
    tracing::info!(%position, ?positions, readers = readers.len(), "lock-free load: one read view per chunk, replay starts here");
    Ok(Snapshot {
        readers,
        position,
        lock_ms: 0,
        per_chunk: Some(ChunkViews {
            positions,
            status_sql,
        }),
    })
}

/// The GTID set of a MySQL binlog file's `Previous_gtids` event (the state at its start); empty
/// when the server logs no GTIDs.
async fn previous_gtids(control: &mut Conn, file: &str) -> Result<String, LoadError> {
    let sql = format!(
        "SHOW BINLOG EVENTS IN {} FROM 4 LIMIT 3",
        ferry_core::sql::quote_str(file)
    );
    let rows: Vec<Row> = control
        .query(&sql)
        .await
        .ctx(|| format!("reading the GTID state at the start of {file} ({sql}; needs REPLICATION SLAVE)"))?;
    for r in rows {
        let kind: Option<String> = r.get_opt(2).and_then(|v| v.ok());
        if kind.as_deref() == Some("Previous_gtids") {
            let info: Option<String> = r.get_opt(5).and_then(|v| v.ok());
            return Ok(info.unwrap_or_default());
        }
    }
    Ok(String::new())
}

enum LockFailure {
    /// Timed out; the statement that waited.
    Timeout(String),
    Other(LoadError),
}

fn is_lock_timeout(e: &mysql_async::Error) -> bool {
    ferry_core::retry::server_code(e) == Some(ferry_core::retry::ER_LOCK_WAIT_TIMEOUT)
}

async fn lock_with_deadline(
    src: &Endpoint,
    control: &mut Conn,
    flavor: &Flavor,
    lock_timeout: Duration,
) -> Result<Lock, LockFailure> {
    let id = control.id();
    // The server enforces lock_wait_timeout; this deadline only guards against a server that
    // does not (then the waiting statement is killed, so it stops blocking other sessions).
    let deadline = lock_timeout + Duration::from_secs(10);
    match tokio::time::timeout(deadline, lock(control, flavor)).await {
        Ok(r) => r,
        Err(_) => {
            if let Ok(mut k) = src.connect(session::plain()).await {
                let _ = k.query_drop(format!("KILL {id}")).await;
                let _ = k.disconnect().await;
            }
            Err(LockFailure::Timeout("global read lock".into()))
        }
    }
}

async fn lock(control: &mut Conn, flavor: &Flavor) -> Result<Lock, LockFailure> {
    if flavor.is_mariadb() {
        let mut refused = None;
        for stmt in ["BACKUP STAGE START", "BACKUP STAGE BLOCK_COMMIT"] {
            match control.query_drop(stmt).await {
                Ok(()) => {}
                Err(e) if is_lock_timeout(&e) => {
                    let _ = control.query_drop("BACKUP STAGE END").await;
                    return Err(LockFailure::Timeout(stmt.into()));
                }
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        match refused {
            None => return Ok(Lock::BackupStage),
            Some(e) => {
                tracing::warn!(error = %e, "BACKUP STAGE refused; falling back to FLUSH TABLES WITH READ LOCK");
                let _ = control.query_drop("BACKUP STAGE END").await;
            }
        }
    }
    let stmt = "FLUSH TABLES WITH READ LOCK";
    match control.query_drop(stmt).await {
        Ok(()) => Ok(Lock::Ftwrl),
        Err(e) if is_lock_timeout(&e) => Err(LockFailure::Timeout(stmt.into())),
        Err(e) => Err(LockFailure::Other(LoadError::Mysql {
            context: format!(
                "the server refused the global read lock ({stmt}; it needs the RELOAD privilege, and \
                 managed services refuse it even with RELOAD)"
            ),
            source: e,
        })),
    }
}

async fn snapshot_under_lock(
    control: &mut Conn,
    readers: &mut [Conn],
    flavor: &Flavor,
) -> Result<SnapshotPosition, LoadError> {
    try_join_all(readers.iter_mut().map(|c| async move {
        c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .ctx(|| "starting the consistent snapshot on a reader connection".into())
    }))
    .await?;
    let (file, pos) = read_binlog_status(control, flavor.binlog_status_sql())
        .await?
        .ok_or(LoadError::NoBinlog)?;
    let gtid_sql = format!("SELECT {}", flavor.gtid_variable());
    let gtid: Option<String> = control
        .query_first(&gtid_sql)
        .await
        .ctx(|| format!("reading the GTID state ({gtid_sql})"))?;
    let gtid = parse_gtid(flavor, gtid.as_deref().unwrap_or(""))?;
    Ok(SnapshotPosition { file, pos, gtid })
}

/// Parses the GTID variable's value; empty means the server has no GTIDs yet.
fn parse_gtid(flavor: &Flavor, text: &str) -> Result<Option<Position>, LoadError> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if t.is_empty() {
        return Ok(None);
    }
    Ok(Some(if flavor.is_mariadb() {
        Position::MariaGtidPos {
            pos: t.parse::<MariaGtidPos>()?,
        }
    } else {
        Position::MysqlGtidSet {
            set: t.parse::<GtidSet>()?,
        }
    }))
}

/// `File` and `Position` of the binlog status statement; `None` when the binlog is off.
async fn read_binlog_status(conn: &mut Conn, sql: &str) -> Result<Option<(String, u64)>, LoadError> {
    let row: Option<Row> = conn.query_first(sql).await.ctx(|| {
        format!(
            "reading the binlog position ({sql}; needs the REPLICATION CLIENT or BINLOG MONITOR privilege)"
        )
    })?;
    let Some(row) = row else { return Ok(None) };
    let file: Option<String> = row.get_opt(0).and_then(|r| r.ok());
    let pos: Option<u64> = row.get_opt(1).and_then(|r| r.ok());
    match (file, pos) {
        (Some(f), Some(p)) if !f.is_empty() => Ok(Some((f, p))),
        _ => Err(LoadError::Checkpoint(format!(
            "unexpected answer to {sql}: expected File and Position"
        ))),
    }
}

/// Describes the sessions that have been running a statement for more than a second (other
/// sessions waiting for the same global lock are victims, not blockers, and are left out).
async fn blockers(conn: &mut Conn, ours: &[u32]) -> String {
    let ids = ours.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT ID, USER, TIME, COALESCE(STATE, ''), LEFT(COALESCE(INFO, ''), 200) \
         FROM information_schema.PROCESSLIST \
         WHERE COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID') \
         AND TIME >= 1 AND ID NOT IN ({ids}) \
         AND COALESCE(STATE, '') NOT IN ('Waiting for backup lock', 'Waiting for global read lock') \
         ORDER BY TIME DESC LIMIT 10"
    );
    type P = (u64, Vec<u8>, i64, Vec<u8>, Vec<u8>);
    match conn.query::<P, _>(sql).await {
        Ok(rows) if rows.is_empty() => "no statement has been running for more than a second; an idle \
             session may hold LOCK TABLES or FLUSH TABLES WITH READ LOCK (see SHOW PROCESSLIST)"
            .to_string(),
        Ok(rows) => rows
            .into_iter()
            .map(|(id, user, time, state, info)| {
                format!(
                    "[id {id}, user {}, {time} s, {}: {}]",
                    String::from_utf8_lossy(&user),
                    String::from_utf8_lossy(&state),
                    String::from_utf8_lossy(&info)
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(e) => format!("(could not read information_schema.PROCESSLIST: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_forms() {
        let m = Flavor::from_version("10.11.6-MariaDB");
        assert_eq!(parse_gtid(&m, "").unwrap(), None);
        assert!(matches!(
            parse_gtid(&m, "0-1-5").unwrap(),
            Some(Position::MariaGtidPos { .. })
        ));
        let my = Flavor::from_version("8.0.36");
        let g = parse_gtid(
            &my,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n3e11fa47-71ca-11e1-9e33-c80aa9429563:1-2",
        )
        .unwrap();
        assert!(matches!(g, Some(Position::MysqlGtidSet { .. })));
    }
}
