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
//! `Ferry.SnapshotMode` ([`SnapshotMode`]): `lock` is the above; `lockless` takes no global lock
//! (MariaDB, Percona Server): every reader runs `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ
//! ONLY` and reads its snapshot's binlog position from the session status variables
//! `Binlog_snapshot_file` / `Binlog_snapshot_position`, which the server takes atomically with the
//! snapshot; when all readers are at the same position they share one consistent state (retried
//! up to [`LOCKLESS_ATTEMPTS`] times while commits keep slipping in between; after that the load
//! keeps the readers at the first reader's position, at least one, so it is never inconsistent,
//! only less parallel). The GTID state is `BINLOG_GTID_POS(file, pos)` on MariaDB,
//! `Binlog_snapshot_gtid_executed` on Percona Server. `auto` takes the lock and, when the server
//! refuses it (no RELOAD privilege, a managed service) and the source has those status variables,
//! goes lock-free instead; a lock *timeout* is not a refusal and still fails the load.
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
}

/// Which global lock is held.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lock {
    BackupStage,
    Ftwrl,
}

/// How often `lockless` restarts the readers' snapshots to get them all at one position.
pub const LOCKLESS_ATTEMPTS: usize = 30;

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
    let lockless_ok = supports_lockless(&mut control).await;
    if mode == SnapshotMode::Lockless && !lockless_ok {
        return Err(LoadError::Options(format!(
            "Ferry.SnapshotMode is lockless, but the source ({}) has no Binlog_snapshot_file / \
             Binlog_snapshot_position status variables (MariaDB and Percona Server have them, MySQL \
             does not), so a lock-free snapshot's binlog position cannot be known: set \
             Ferry.SnapshotMode to lock (needs RELOAD, and FLUSH TABLES WITH READ LOCK must be \
             allowed) or auto",
            src.display_name()
        )));
    }
    let mut conns = try_join_all((0..readers.max(1)).map(|_| src.connect(session::reader()))).await?;
    if mode == SnapshotMode::Lockless {
        let _ = control.disconnect().await;
        return lockless(conns, &flavor).await;
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
        Err(LockFailure::Other(e)) if mode == SnapshotMode::Auto && lockless_ok => {
            tracing::warn!(error = %e, "the source refused the global lock; taking a lock-free consistent snapshot (Ferry.SnapshotMode auto)");
            let _ = control.disconnect().await;
            return lockless(conns, &flavor).await;
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

/// The lock-free snapshot (see the module documentation).
async fn lockless(mut conns: Vec<Conn>, flavor: &Flavor) -> Result<Snapshot, LoadError> {
    let mut positions = Vec::new();
    for attempt in 0..LOCKLESS_ATTEMPTS {
        try_join_all(conns.iter_mut().map(|c| async move {
            c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await
                .ctx(|| "starting the consistent snapshot on a reader connection".into())
        }))
        .await?;
        positions = Vec::with_capacity(conns.len());
        for c in conns.iter_mut() {
            positions.push(reader_snapshot_position(c).await?);
        }
        if positions
            .iter()
            .all(|p| p.0 == positions[0].0 && p.1 == positions[0].1)
        {
            break;
        }
        if attempt + 1 < LOCKLESS_ATTEMPTS {
            for c in conns.iter_mut() {
                c.query_drop("ROLLBACK")
                    .await
                    .ctx(|| "restarting a reader's snapshot".into())?;
            }
        }
    }
    // Keep the readers at the first reader's position (the first one always is).
    let (file, pos, percona_gtid) = positions
        .first()
        .cloned()
        .ok_or_else(|| LoadError::Options("no reader connection".into()))?;
    let mut kept = Vec::new();
    for (c, p) in conns.into_iter().zip(positions.iter()) {
        if p.0 == file && p.1 == pos {
            kept.push(c);
        } else {
            let _ = c.disconnect().await;
        }
    }
    let dropped = positions.len() - kept.len();
    if dropped > 0 {
        tracing::warn!(
            readers = kept.len(),
            dropped,
            "lock-free snapshot: commits kept slipping between the readers' snapshots; loading with \
             the readers that share the first one's snapshot"
        );
    }
    let gtid_text = if flavor.is_mariadb() {
        let c = kept
            .first_mut()
            .ok_or_else(|| LoadError::Options("no reader connection".into()))?;
        let g: Option<Option<String>> = c
            .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))
            .await
            .ctx(|| "reading the snapshot's GTID position (BINLOG_GTID_POS)".into())?;
        g.flatten().unwrap_or_default()
    } else {
        percona_gtid.unwrap_or_default()
    };
    let gtid = parse_gtid(flavor, &gtid_text)?;
    let position = SnapshotPosition { file, pos, gtid };
    tracing::info!(%position, readers = kept.len(), "lock-free consistent snapshot taken");
    Ok(Snapshot {
        readers: kept,
        position,
        lock_ms: 0,
    })
}

enum LockFailure {
    /// Timed out; the statement that waited.
    Timeout(String),
    Other(LoadError),
}

fn is_lock_timeout(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1205)
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
