//! The `ferry_meta` schema on the target: every table Ferry keeps there, in one place, with a
//! schema version and forward migrations applied at start ([`ensure`]).
//!
//! - `schema_version`: one row (`id = 1`) with the version the tables have.
//! - `job_phase`: the phases a job has finished (`ferry-job`).
//! - `load_job`, `load_chunk`: the full load's plan and chunk checkpoints (`ferry-load`).
//! - `replay_checkpoint`: the incremental phase's position (`ferry-replay`).
//! - `replay_xa`: rows of prepared XA transactions (`ferry-replay`).
//! - `verify_table`: the last verification result per table (`ferry-verify`).
//! - `verify_chunk`, `verify_root`, `verify_pass`: continuous verification's persisted chunk
//!   digests, per-table roots and pass times (`ferry-verify`'s `continuous`); `verify_dirty`: the
//!   chunks changed since their last digest, marked by the replay ([`crate::chunkmap`]).
//! - `job_account`: the accounts a job created on the target (`Ferry.Accounts`), recorded before
//!   their `CREATE USER` (`ferry-schema`'s `accounts_io`).
//! - `target_read_only`: `DstInfo.ReadOnly` — the target's `read_only` before a job set it, and
//!   whether it has been restored (`ferry-job`'s `protect`).
//! - `job_epoch`: the job's ownership epoch when a cluster runs it, checked by every checkpoint
//!   commit ([`crate::fence`]).
//! - `job_structure`: the target tables `Ferry.ExistingTables` kept, recorded when the job's
//!   structure phase first ran, before it created anything (`ferry-job`).
//!
//! Version 1 is the shape these tables had before the version existed (a `ferry_meta` written by
//! an older Ferry has no `schema_version` and is taken as version 0: migration 1 creates what is
//! missing and leaves existing tables and rows as they are). A later change appends a migration
//! (`ALTER TABLE …`) and raises [`SCHEMA_VERSION`]; a `ferry_meta` of a newer version than this
//! Ferry knows is refused by name. [`ensure`] holds a named server lock (`GET_LOCK`) while it
//! reads and migrates, so two processes starting at once migrate once.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{CoreError, MysqlResultExt};
use crate::selection::META_SCHEMA;
use crate::sql::quote_ident;

/// The version of the `ferry_meta` tables this Ferry writes.
pub const SCHEMA_VERSION: u32 = 6;

/// One step: the statements that take the tables from `version - 1` to `version`. `{m}` stands
/// for the quoted schema name.
pub struct Migration {
    pub version: u32,
    pub statements: &'static [&'static str],
}

/// Version 1: the tables as they were before the version (created if missing).
const V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {m}.job_phase (\
       job VARCHAR(191) NOT NULL, phase VARCHAR(32) NOT NULL, done_at DATETIME(6) NOT NULL, \
       PRIMARY KEY (job, phase)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS {m}.load_job (\
       job VARCHAR(191) NOT NULL PRIMARY KEY, \
       snapshot_file VARCHAR(512) NULL, \
       snapshot_pos BIGINT UNSIGNED NULL, \
       snapshot_gtid TEXT NULL, \
       planned_at DATETIME(6) NOT NULL, \
       finished_at DATETIME(6) NULL\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.load_chunk (\
       job VARCHAR(191) NOT NULL, \
       db VARCHAR(64) NOT NULL, \
       tbl VARCHAR(64) NOT NULL, \
       chunk_no INT NOT NULL, \
       lower_bound LONGBLOB NULL, \
       upper_bound LONGBLOB NULL, \
       done TINYINT NOT NULL DEFAULT 0, \
       `rows` BIGINT NOT NULL DEFAULT 0, \
       bytes BIGINT NOT NULL DEFAULT 0, \
       snapshot TEXT NULL, \
       done_at DATETIME(6) NULL, \
       PRIMARY KEY (job, db, tbl, chunk_no)\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.replay_checkpoint (\
       job VARCHAR(191) NOT NULL PRIMARY KEY, \
       file VARCHAR(512) NOT NULL, \
       pos BIGINT UNSIGNED NOT NULL, \
       gtid TEXT NULL, \
       applied_at DATETIME(6) NOT NULL, \
       source_ts BIGINT UNSIGNED NOT NULL DEFAULT 0, \
       idempotent_file VARCHAR(512) NULL, \
       idempotent_pos BIGINT UNSIGNED NULL\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.replay_xa (\
       job VARCHAR(191) NOT NULL, \
       xid VARBINARY(400) NOT NULL, \
       seq INT UNSIGNED NOT NULL, \
       data LONGBLOB NOT NULL, \
       PRIMARY KEY (job, xid, seq)\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.verify_table (\
       job_name VARCHAR(191) NOT NULL, source_db VARCHAR(64) NOT NULL, source_table VARCHAR(64) NOT NULL, \
       target_db VARCHAR(64) NOT NULL, target_table VARCHAR(64) NOT NULL, consistent TINYINT NOT NULL, \
       method VARCHAR(32) NOT NULL, rows_compared BIGINT UNSIGNED NOT NULL, \
       only_in_source BIGINT UNSIGNED NOT NULL, only_in_target BIGINT UNSIGNED NOT NULL, \
       different BIGINT UNSIGNED NOT NULL, error TEXT NULL, \
       verified_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), \
       PRIMARY KEY (job_name, source_db, source_table)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
];

/// Version 2: continuous verification (chunk digests with the source position they were taken
/// at, per-table roots, pass times, dirty marks). `status`: 0 never digested, 1 both sides
/// equal, 2 different; `chunk_no` of a dirty mark: -1 every chunk, -2 plan the table again.
const V2: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {m}.verify_chunk (\
       job VARCHAR(191) NOT NULL, db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, chunk_no INT NOT NULL, \
       lower_bound LONGBLOB NULL, upper_bound LONGBLOB NULL, status TINYINT NOT NULL DEFAULT 0, \
       src_rows BIGINT UNSIGNED NULL, src_sum VARCHAR(128) NULL, \
       dst_rows BIGINT UNSIGNED NULL, dst_sum VARCHAR(128) NULL, \
       source_file VARCHAR(512) NULL, source_pos BIGINT UNSIGNED NULL, verified_at DATETIME(6) NULL, \
       PRIMARY KEY (job, db, tbl, chunk_no)\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.verify_dirty (\
       job VARCHAR(191) NOT NULL, db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, chunk_no INT NOT NULL, \
       seq BIGINT UNSIGNED NOT NULL DEFAULT 1, first_marked_at DATETIME(6) NOT NULL, \
       PRIMARY KEY (job, db, tbl, chunk_no)\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.verify_root (\
       job VARCHAR(191) NOT NULL, db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, \
       chunks INT UNSIGNED NOT NULL, src_root CHAR(32) NOT NULL, dst_root CHAR(32) NOT NULL, \
       updated_at DATETIME(6) NOT NULL, PRIMARY KEY (job, db, tbl)\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.verify_pass (\
       job VARCHAR(191) NOT NULL PRIMARY KEY, last_full_at DATETIME(6) NULL, \
       rows_verified BIGINT UNSIGNED NOT NULL DEFAULT 0, chunks_verified BIGINT UNSIGNED NOT NULL DEFAULT 0\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
];

/// Version 3: accounts and the protected target. `job_account.host` is `''` and `is_role` 1 for
/// a MariaDB role, `granted_at` set once every grant of the job's accounts ran;
/// `target_read_only.previous` is the `read_only` value to restore (0/1),
/// `restored_at` NULL while the job keeps the target read-only.
const V3: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {m}.job_account (\
       job VARCHAR(191) NOT NULL, user VARCHAR(128) NOT NULL, host VARCHAR(255) NOT NULL, \
       is_role TINYINT NOT NULL DEFAULT 0, created_at DATETIME(6) NOT NULL, granted_at DATETIME(6) NULL, \
       PRIMARY KEY (job, user, host)\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {m}.target_read_only (\
       job VARCHAR(191) NOT NULL PRIMARY KEY, previous TINYINT NOT NULL, \
       protected_at DATETIME(6) NOT NULL, restored_at DATETIME(6) NULL\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
];

/// Version 4: fencing ([`crate::fence`]). `epoch` is the newest claim of the job recorded on
/// this target, `claimed_at` when it was recorded. No existing table changes: a checkpoint
/// written by version 3 resumes as it is (a job run without an epoch has no row).
const V4: &[&str] = &["CREATE TABLE IF NOT EXISTS {m}.job_epoch (\
       job VARCHAR(191) NOT NULL PRIMARY KEY, epoch BIGINT UNSIGNED NOT NULL, \
       claimed_at DATETIME(6) NOT NULL\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"];

/// Version 5: the tables that existed on the target when the job's structure phase first ran
/// (kept by `Ferry.ExistingTables`: not created, no secondary indexes or foreign keys added),
/// recorded before the phase creates anything. A structure phase run again after a crash would
/// otherwise take the tables it had created for kept ones, and a post-data phase in a later
/// process would not know which tables are kept. `kept`: a JSON array of `[db, table]`.
const V5: &[&str] = &["CREATE TABLE IF NOT EXISTS {m}.job_structure (\
       job VARCHAR(191) NOT NULL PRIMARY KEY, kept LONGTEXT NOT NULL, recorded_at DATETIME(6) NOT NULL\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"];

/// Version 6: continuous verification by parts of chunks ([`crate::chunkmap::Parts`]). A dirty
/// mark's `part_mask` holds the parts of the chunk its changes touched (marks written before
/// get every part); `src_parts` / `dst_parts` hold a chunk's digest per part on each side
/// (`rows:sum` per part, `;`-separated; NULL: not known, the chunk is digested whole). One `ALTER`
/// per table, so a migration interrupted after one of them finds that table done (a column that
/// exists already is taken as migrated).
const V6: &[&str] = &[
    "ALTER TABLE {m}.verify_dirty ADD COLUMN part_mask BIGINT UNSIGNED NOT NULL DEFAULT 18446744073709551615",
    "ALTER TABLE {m}.verify_chunk ADD COLUMN src_parts MEDIUMTEXT NULL, ADD COLUMN dst_parts MEDIUMTEXT NULL",
];

/// The migrations, in order; the last one's version is [`SCHEMA_VERSION`].
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        statements: V1,
    },
    Migration {
        version: 2,
        statements: V2,
    },
    Migration {
        version: 3,
        statements: V3,
    },
    Migration {
        version: 4,
        statements: V4,
    },
    Migration {
        version: 5,
        statements: V5,
    },
    Migration {
        version: 6,
        statements: V6,
    },
];

/// True when the table `ferry_meta.<table>` exists on the target (a target Ferry never wrote to,
/// or one written by an older Ferry, may lack it).
pub async fn table_exists(conn: &mut Conn, table: &str) -> Result<bool, CoreError> {
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (META_SCHEMA, table),
        )
        .await
        .ctx(|| format!("looking for {META_SCHEMA}.{table} on the target"))?;
    Ok(n.unwrap_or(0) > 0)
}

/// How long [`ensure`] waits for another process migrating the same target.
const LOCK_WAIT_SECONDS: u32 = 60;

/// Creates or migrates `ferry_meta` to [`SCHEMA_VERSION`] (idempotent; safe when several
/// processes start at once). Fails by name on a `ferry_meta` of a newer version.
pub async fn ensure(conn: &mut Conn) -> Result<(), CoreError> {
    ensure_in(conn, META_SCHEMA).await
}

/// [`ensure`] for a schema of another name (tests).
pub async fn ensure_in(conn: &mut Conn, schema: &str) -> Result<(), CoreError> {
    let m = quote_ident(schema);
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {m}"))
        .await
        .ctx(|| format!("creating the schema {schema} on the target"))?;
    let lock = format!("ferry_meta.schema:{schema}");
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (&lock, LOCK_WAIT_SECONDS))
        .await
        .ctx(|| format!("locking {schema} for its schema migration"))?;
    if got.flatten() != Some(1) {
        // A timeout: another process holds the lock; transient (the next attempt waits again).
        return Err(CoreError::mysql(
            format!("waiting {LOCK_WAIT_SECONDS} s for another Ferry migrating {schema}"),
            mysql_async::Error::Server(mysql_async::ServerError {
                code: 1205,
                message: "lock wait timeout".into(),
                state: "HY000".into(),
            }),
        ));
    }
    let r = migrate(conn, schema, &m).await;
    let _ = conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,)).await;
    r
}

async fn migrate(conn: &mut Conn, schema: &str, m: &str) -> Result<(), CoreError> {
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {m}.schema_version (id TINYINT NOT NULL PRIMARY KEY, \
         version INT UNSIGNED NOT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB"
    ))
    .await
    .ctx(|| format!("creating {schema}.schema_version on the target"))?;
    let found: Option<u32> = conn
        .query_first(format!("SELECT version FROM {m}.schema_version WHERE id = 1"))
        .await
        .ctx(|| format!("reading {schema}.schema_version"))?;
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(CoreError::MetaSchemaNewer {
            schema: schema.to_string(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for mig in MIGRATIONS.iter().filter(|g| g.version > found) {
        for st in mig.statements {
            match conn.query_drop(st.replace("{m}", m)).await {
                Ok(()) => {}
                // ER_DUP_FIELDNAME: an `ALTER … ADD COLUMN` of an interrupted migration ran.
                Err(mysql_async::Error::Server(e)) if e.code == 1060 && st.starts_with("ALTER TABLE") => {}
                Err(e) => {
                    return Err(e).ctx(|| format!("migrating {schema} to schema version {}", mig.version))
                }
            }
        }
        conn.exec_drop(
            format!("REPLACE INTO {m}.schema_version (id, version, updated_at) VALUES (1, ?, NOW(6))"),
            (mig.version,),
        )
        .await
        .ctx(|| format!("recording {schema} schema version {}", mig.version))?;
        tracing::info!(schema, version = mig.version, "ferry_meta migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_end_at_the_version() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        for m in MIGRATIONS {
            for s in m.statements {
                assert!(s.contains("{m}."), "every statement names the schema: {s}");
            }
        }
    }

    #[test]
    fn newer_is_refused_by_name() {
        let e = CoreError::MetaSchemaNewer {
            schema: "ferry_meta".into(),
            found: 7,
            known: 1,
        };
        assert_eq!(
            e.to_string(),
            "ferry_meta was written by a newer Ferry (schema 7; this Ferry knows 1): upgrade Ferry"
        );
        assert_eq!(e.kind(), crate::ErrorKind::Definite);
    }
}
