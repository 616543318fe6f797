//! `ferry_core::meta`: a `ferry_meta` written before the schema version existed (today's table
//! shapes, created here with the exact DDL the crates used, with checkpoints in it) is taken as
//! version 0 and migrated forward to the current version with its rows intact and readable by
//! the same queries; a second `ensure` is a no-op; two processes migrating at once both succeed;
//! a newer version is refused by name; a version 3 `ferry_meta` (before fencing) with checkpoints
//! in it migrates to version 4 and its checkpoints read back unchanged, without an epoch (a job
//! run without one resumes as before); a version 5 one gets the part masks of version 6, also when
//! that migration was interrupted. Runs in schemas of its own (`fm_meta_*`), never in the
//! shared `ferry_meta`.

use anyhow::Result;
use ferry_core::meta::{ensure_in, MIGRATIONS, SCHEMA_VERSION};
use ferry_testkit::{connect, drop_dbs, exec, scalar, target};
use mysql_async::prelude::Queryable;

/// The `ferry_meta` DDL as the crates had it before `ferry_core::meta` (ferry-job runner.rs,
/// ferry-load checkpoint.rs, ferry-replay checkpoint.rs and xa.rs, ferry-verify store.rs).
const BEFORE_VERSIONS: &str = "
CREATE TABLE IF NOT EXISTS job_phase (job VARCHAR(191) NOT NULL, phase VARCHAR(32) NOT NULL, done_at DATETIME(6) NOT NULL, PRIMARY KEY (job, phase)) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS load_job (job VARCHAR(191) NOT NULL PRIMARY KEY, snapshot_file VARCHAR(512) NULL, snapshot_pos BIGINT UNSIGNED NULL, snapshot_gtid TEXT NULL, planned_at DATETIME(6) NOT NULL, finished_at DATETIME(6) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS load_chunk (job VARCHAR(191) NOT NULL, db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, chunk_no INT NOT NULL, lower_bound LONGBLOB NULL, upper_bound LONGBLOB NULL, done TINYINT NOT NULL DEFAULT 0, `rows` BIGINT NOT NULL DEFAULT 0, bytes BIGINT NOT NULL DEFAULT 0, snapshot TEXT NULL, done_at DATETIME(6) NULL, PRIMARY KEY (job, db, tbl, chunk_no)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS replay_checkpoint (job VARCHAR(191) NOT NULL PRIMARY KEY, file VARCHAR(512) NOT NULL, pos BIGINT UNSIGNED NOT NULL, gtid TEXT NULL, applied_at DATETIME(6) NOT NULL, source_ts BIGINT UNSIGNED NOT NULL DEFAULT 0, idempotent_file VARCHAR(512) NULL, idempotent_pos BIGINT UNSIGNED NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS replay_xa (job VARCHAR(191) NOT NULL, xid VARBINARY(400) NOT NULL, seq INT UNSIGNED NOT NULL, data LONGBLOB NOT NULL, PRIMARY KEY (job, xid, seq)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS verify_table (job_name VARCHAR(191) NOT NULL, source_db VARCHAR(64) NOT NULL, source_table VARCHAR(64) NOT NULL, target_db VARCHAR(64) NOT NULL, target_table VARCHAR(64) NOT NULL, consistent TINYINT NOT NULL, method VARCHAR(32) NOT NULL, rows_compared BIGINT UNSIGNED NOT NULL, only_in_source BIGINT UNSIGNED NOT NULL, only_in_target BIGINT UNSIGNED NOT NULL, different BIGINT UNSIGNED NOT NULL, error TEXT NULL, verified_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (job_name, source_db, source_table)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
";

/// The version recorded in schema `m`.
async fn version(t: &mut mysql_async::Conn, m: &str) -> Result<u32> {
    scalar(t, &format!("SELECT version FROM {m}.schema_version WHERE id = 1")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_checkpoints_migrate_forward_and_newer_is_refused() -> Result<()> {
    const M: &str = "fm_meta_old";
    let mut t = connect(&target()).await?;
    drop_dbs(&mut t, &[M]).await?;
    exec(
        &mut t,
        &format!("CREATE DATABASE {M}; USE {M}; {BEFORE_VERSIONS}"),
    )
    .await?;
    exec(
        &mut t,
        &format!(
            "USE {M}; INSERT INTO job_phase VALUES ('j1', 'structure', NOW(6)); \
             INSERT INTO load_job VALUES ('j1', 'mariadb-bin.000007', 4242, '0-1-99', NOW(6), NULL); \
             INSERT INTO load_chunk (job, db, tbl, chunk_no, lower_bound, upper_bound, done, `rows`, bytes, snapshot, done_at) \
               VALUES ('j1', 'd', 't', 0, NULL, '[{{\"t\":\"int\",\"v\":1000}}]', 1, 1000, 64000, NULL, NOW(6)); \
             INSERT INTO replay_checkpoint VALUES ('j1', 'mariadb-bin.000007', 9999, '0-1-120', NOW(6), 1700000000, NULL, NULL)"
        ),
    )
    .await?;

    ensure_in(&mut t, M).await?;
    assert_eq!(version(&mut t, M).await?, SCHEMA_VERSION);
    // The checkpoints read back with the queries the crates use.
    let cp: Option<(String, u64, Option<String>, u64)> = t
        .exec_first(
            format!("SELECT file, pos, gtid, source_ts FROM {M}.replay_checkpoint WHERE job = ?"),
            ("j1",),
        )
        .await?;
    assert_eq!(
        cp,
        Some((
            "mariadb-bin.000007".into(),
            9999,
            Some("0-1-120".into()),
            1_700_000_000
        ))
    );
    let chunk: Option<(u32, i8, u64)> = t
        .exec_first(
            format!(
                "SELECT chunk_no, done, `rows` FROM {M}.load_chunk WHERE job = ? ORDER BY db, tbl, chunk_no"
            ),
            ("j1",),
        )
        .await?;
    assert_eq!(chunk, Some((0, 1, 1000)));
    let phases: u64 = scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM {M}.job_phase WHERE job = 'j1'"),
    )
    .await?;
    assert_eq!(phases, 1);

    // Idempotent.
    ensure_in(&mut t, M).await?;
    let rows: u64 = scalar(&mut t, &format!("SELECT COUNT(*) FROM {M}.schema_version")).await?;
    assert_eq!(rows, 1);

    // A newer Ferry's schema is refused by name.
    exec(
        &mut t,
        &format!(
            "UPDATE {M}.schema_version SET version = {} WHERE id = 1",
            SCHEMA_VERSION + 5
        ),
    )
    .await?;
    let e = ensure_in(&mut t, M).await.expect_err("a newer schema is refused");
    assert!(
        e.to_string().contains(&format!(
            "was written by a newer Ferry (schema {}",
            SCHEMA_VERSION + 5
        )),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade Ferry"), "{e}");
    drop_dbs(&mut t, &[M]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_migrate_at_once() -> Result<()> {
    const M: &str = "fm_meta_race";
    let mut t = connect(&target()).await?;
    drop_dbs(&mut t, &[M]).await?;
    let mut a = connect(&target()).await?;
    let mut b = connect(&target()).await?;
    let (ra, rb) = tokio::join!(ensure_in(&mut a, M), ensure_in(&mut b, M));
    ra?;
    rb?;
    assert_eq!(version(&mut t, M).await?, SCHEMA_VERSION);
    let tables: u64 = scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{M}'"),
    )
    .await?;
    assert_eq!(tables, 15, "fourteen tables and schema_version");
    drop_dbs(&mut t, &[M]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_3_checkpoints_resume_after_the_fencing_migration() -> Result<()> {
    const M: &str = "fm_meta_v3";
    let mut t = connect(&target()).await?;
    drop_dbs(&mut t, &[M]).await?;
    // `ferry_meta` exactly as version 3 wrote it: its migrations, its version row.
    exec(&mut t, &format!("CREATE DATABASE {M}")).await?;
    for m in MIGRATIONS.iter().filter(|m| m.version <= 3) {
        for st in m.statements {
            t.query_drop(st.replace("{m}", &format!("`{M}`"))).await?;
        }
    }
    exec(
        &mut t,
        &format!(
            "CREATE TABLE {M}.schema_version (id TINYINT NOT NULL PRIMARY KEY, version INT UNSIGNED NOT NULL, \
               updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB; \
             INSERT INTO {M}.schema_version VALUES (1, 3, NOW(6)); \
             INSERT INTO {M}.job_phase VALUES ('j3', 'structure', NOW(6)), ('j3', 'full_data', NOW(6)); \
             INSERT INTO {M}.replay_checkpoint VALUES ('j3', 'mariadb-bin.000003', 777, '0-1-42', NOW(6), 1700000001, NULL, NULL)"
        ),
    )
    .await?;
    ensure_in(&mut t, M).await?;
    assert_eq!(version(&mut t, M).await?, SCHEMA_VERSION);
    const { assert!(SCHEMA_VERSION >= 4) };
    let cp: Option<(String, u64, Option<String>, u64)> = t
        .exec_first(
            format!("SELECT file, pos, gtid, source_ts FROM {M}.replay_checkpoint WHERE job = ?"),
            ("j3",),
        )
        .await?;
    assert_eq!(
        cp,
        Some((
            "mariadb-bin.000003".into(),
            777,
            Some("0-1-42".into()),
            1_700_000_001
        ))
    );
    let phases: u64 = scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM {M}.job_phase WHERE job = 'j3'"),
    )
    .await?;
    assert_eq!(phases, 2);
    // The fencing table exists and holds no epoch for the job: a run without one is unfenced.
    let epochs: u64 = scalar(&mut t, &format!("SELECT COUNT(*) FROM {M}.job_epoch")).await?;
    assert_eq!(epochs, 0);
    drop_dbs(&mut t, &[M]).await?;
    Ok(())
}

/// Version 5 → 6 (continuous verification by parts): a dirty mark written before gets every part
/// (the chunk is digested whole), stored chunks no part digests; a migration interrupted after its
/// first `ALTER` (the version still 5, the column there) completes when run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_marks_cover_every_part_and_an_interrupted_v6_completes() -> Result<()> {
    const M: &str = "fm_meta_v5";
    let mut t = connect(&target()).await?;
    drop_dbs(&mut t, &[M]).await?;
    ensure_in(&mut t, M).await?;
    // Back to version 5 with one of the two columns of version 6 still there.
    exec(
        &mut t,
        &format!(
            "ALTER TABLE {M}.verify_chunk DROP COLUMN src_parts, DROP COLUMN dst_parts; \
             ALTER TABLE {M}.verify_dirty DROP COLUMN part_mask; \
             ALTER TABLE {M}.verify_dirty ADD COLUMN part_mask BIGINT UNSIGNED NOT NULL DEFAULT 18446744073709551615; \
             UPDATE {M}.schema_version SET version = 5 WHERE id = 1; \
             INSERT INTO {M}.verify_dirty (job, db, tbl, chunk_no, seq, first_marked_at) VALUES ('j5', 'd', 't', 3, 2, NOW(6)); \
             INSERT INTO {M}.verify_chunk (job, db, tbl, chunk_no, status) VALUES ('j5', 'd', 't', 3, 1)"
        ),
    )
    .await?;
    ensure_in(&mut t, M).await?;
    assert_eq!(version(&mut t, M).await?, SCHEMA_VERSION);
    const { assert!(SCHEMA_VERSION >= 6) };
    let mask: u64 = scalar(
        &mut t,
        &format!("SELECT part_mask FROM {M}.verify_dirty WHERE job = 'j5' AND chunk_no = 3"),
    )
    .await?;
    assert_eq!(mask, u64::MAX, "a mark from before covers every part");
    let parts: u64 = scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM {M}.verify_chunk WHERE job = 'j5' AND src_parts IS NULL AND dst_parts IS NULL"),
    )
    .await?;
    assert_eq!(parts, 1, "a chunk stored before has no part digests");
    drop_dbs(&mut t, &[M]).await?;
    Ok(())
}
