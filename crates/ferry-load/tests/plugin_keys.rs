//! MariaDB's type plugins as chunking keys: tables keyed by UUID, INET6 and INET4 (and a
//! composite key ending in one) are cut into chunks by the type's own order and copied exactly,
//! with LOAD DATA and with INSERT. Skipped by name on servers without the types.

mod common;

use anyhow::Result;
use common::*;
use ferry_core::progress::null_sink;
use ferry_load::{run_full_load, WriteMethod};
use ferry_testkit::{exec, scalar, source, target, type_matrix::has_plugin_types};

const DB: &str = "fl_plugin_keys";

const SCHEMA: &str = "
CREATE TABLE u (id UUID NOT NULL PRIMARY KEY, n INT, a INET6, b INET4);
CREATE TABLE i6 (addr INET6 NOT NULL PRIMARY KEY, n INT);
CREATE TABLE i4 (grp INT NOT NULL, addr INET4 NOT NULL, n INT, PRIMARY KEY (grp, addr));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uuid_inet6_inet4_keys_chunk_and_copy_exactly() -> Result<()> {
    let (mut src, _) = conns().await?;
    if !has_plugin_types(&src) {
        eprintln!("skipped: the source has no UUID/INET6/INET4 (MariaDB 10.10+)");
        return Ok(());
    }
    ferry_testkit::fresh_db(&mut src, DB).await?;
    exec(&mut src, &format!("USE {DB}; {SCHEMA}")).await?;
    // version-1 UUIDs (stored in an order that differs from their text), random ones, and edges
    exec(
        &mut src,
        &format!(
            "USE {DB};
             INSERT INTO u SELECT UUID(), seq, CONCAT('2001:db8::', HEX(seq)), INET_NTOA(seq * 65537) FROM seq_1_to_3000;
             INSERT INTO u SELECT CONCAT(LPAD(HEX(seq * 7919), 8, '0'), '-0000-4000-8000-', LPAD(HEX(seq), 12, '0')), seq, '::', '0.0.0.0' FROM seq_1_to_3000;
             INSERT INTO u VALUES ('00000000-0000-0000-0000-000000000000', 0, NULL, NULL), ('ffffffff-ffff-ffff-ffff-ffffffffffff', -1, 'ffff::', '255.255.255.255');
             INSERT INTO i6 SELECT CONCAT(HEX(seq % 7), ':', HEX(seq), '::', HEX(seq * 3)), seq FROM seq_1_to_4000;
             INSERT INTO i6 VALUES ('::', 0), ('::ffff:10.0.0.1', 1), ('::1.2.3.4', 2);
             INSERT INTO i4 SELECT seq % 5, INET_NTOA(seq * 40503), seq FROM seq_1_to_4000;"
        ),
    )
    .await?;
    for (method, dst_db) in [
        (WriteMethod::LoadData, "fl_plugin_keys_ld"),
        (WriteMethod::Insert, "fl_plugin_keys_ins"),
    ] {
        let (mut src, mut dst) = conns().await?;
        ferry_testkit::fresh_db(&mut dst, dst_db).await?;
        copy_tables(&mut src, &mut dst, DB, dst_db, &["u", "i6", "i4"]).await?;
        let tasks = tasks(&mut src, DB, dst_db, &["u", "i6", "i4"]).await?;
        let job = format!("plugin-keys-{dst_db}");
        let summary = run_full_load(
            &source(),
            &target(),
            tasks,
            opts(&job, 2, 500, method).await?,
            null_sink(),
        )
        .await?;
        assert_eq!(summary.rows, 6002 + 4003 + 4000);
        // every table was cut by its key, not copied as one chunk
        assert!(summary.chunks >= 12 + 8 + 8, "{summary:?}");
        for t in ["u", "i6", "i4"] {
            assert_same(&mut src, &mut dst, DB, dst_db, t).await?;
        }
        let n: i64 = scalar(
            &mut dst,
            &format!("SELECT n FROM {dst_db}.u WHERE id = 'ffffffff-ffff-ffff-ffff-ffffffffffff'"),
        )
        .await?;
        assert_eq!(n, -1);
    }
    Ok(())
}

/// A system-versioned table is copied with its history: every version, `row_start`/`row_end`
/// as on the source (chunked by its key plus `row_end`); an application-time period table is an
/// ordinary table and copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_versioned_tables_copy_with_their_history() -> Result<()> {
    const SV: &str = "fl_versioned";
    let (mut src, mut dst) = conns().await?;
    ferry_testkit::fresh_db(&mut src, SV).await?;
    ferry_testkit::fresh_db(&mut dst, SV).await?;
    let schema = "CREATE TABLE hist (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING; \
                  CREATE TABLE per (id INT NOT NULL, s DATE NOT NULL, e DATE NOT NULL, PERIOD FOR p (s, e), \
                  PRIMARY KEY (id, p WITHOUT OVERLAPS));";
    exec(&mut src, &format!("USE {SV}; {schema} INSERT INTO hist SELECT seq, seq FROM seq_1_to_300; \
                             UPDATE hist SET v = v + 1 WHERE id % 2 = 0; UPDATE hist SET v = v + 1 WHERE id % 4 = 0; \
                             DELETE FROM hist WHERE id % 5 = 0; \
                             INSERT INTO per VALUES (1, '2024-01-01', '2024-02-01'), (1, '2024-02-01', '2024-03-01')"))
        .await?;
    copy_tables(&mut src, &mut dst, SV, SV, &["hist", "per"]).await?;
    let t = tasks(&mut src, SV, SV, &["hist", "per"]).await?;
    run_full_load(
        &source(),
        &target(),
        t,
        opts("fl-versioned", 2, 100, WriteMethod::Auto).await?,
        null_sink(),
    )
    .await?;
    // the digests read every version (FOR SYSTEM_TIME ALL) with row_start/row_end
    assert_same(&mut src, &mut dst, SV, SV, "hist").await?;
    assert_same(&mut src, &mut dst, SV, SV, "per").await?;
    let versions: u64 = ferry_testkit::scalar(
        &mut dst,
        &format!("SELECT COUNT(*) FROM {SV}.hist FOR SYSTEM_TIME ALL"),
    )
    .await?;
    assert_eq!(
        versions,
        300 + 150 + 75,
        "current rows, and one history row per update and delete"
    );
    Ok(())
}
