//! The applier against the real test servers: every DML and DDL kind, the type matrix, a large
//! transaction, cut-over, a missing binlog file and the lag report, each through `run_replay`
//! from a source position, compared by exact digests.
//!
//! Only databases named `fa_*` are touched; other engineers share the source, so the stream
//! carries their events too (unselected, skipped).

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_core::progress::ProgressEvent;
use ferry_core::ErrorKind;
use ferry_replay::apply::checkpoint;
use ferry_replay::{run_replay, BinlogPos, ReplayControl, ReplayOptions};
use ferry_testkit as tk;

mod support;
use support::*;

const SCHEMA: &str = "CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, n BIGINT);
CREATE TABLE skey (code VARCHAR(20) CHARACTER SET utf8mb4 NOT NULL, a INT, UNIQUE KEY uk (code));
CREATE TABLE nokey (a INT, b VARCHAR(10), f FLOAT, d DOUBLE);
CREATE TABLE grow (id INT PRIMARY KEY, x INT);
CREATE TABLE gone (id INT PRIMARY KEY);
CREATE TABLE old_name (id INT PRIMARY KEY, s TEXT);
CREATE TABLE trunc (id INT PRIMARY KEY);
INSERT INTO kv VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3);
INSERT INTO nokey VALUES (1, 'a', 0.1, 0.1), (1, 'a', 0.1, 0.1), (2, NULL, NULL, 2.5);
INSERT INTO gone VALUES (1);
INSERT INTO old_name VALUES (1, 'x');
INSERT INTO trunc VALUES (1), (2);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dml_and_ddl_kind() -> Result<()> {
    let (mut s, _t) = prepare("fa_dml", "fa_dml_t", SCHEMA).await?;
    let pos = master_pos(&mut s).await?;
    let run = start("fa-dml", selection(&[("fa_dml", "fa_dml_t")]), pos).await?;
    let script = "
      INSERT INTO kv VALUES (4, 'four', 4), (5, 'fïve 😀', 5);
      UPDATE kv SET v = 'ONE', n = n + 10 WHERE id = 1;
      UPDATE kv SET id = 10 WHERE id = 2;
      DELETE FROM kv WHERE id = 3;
      START TRANSACTION; INSERT INTO kv VALUES (6, 'six', 6); UPDATE kv SET n = 60 WHERE id = 6; DELETE FROM kv WHERE id = 4; COMMIT;
      START TRANSACTION; INSERT INTO kv VALUES (7, 'rolled back', 7); ROLLBACK;
      INSERT INTO skey VALUES ('Ab', 1), ('cd', 2);
      UPDATE skey SET a = 10 WHERE code = 'ab';
      UPDATE skey SET code = 'CD2' WHERE code = 'cd';
      UPDATE nokey SET b = 'b' WHERE a = 1 LIMIT 1;
      UPDATE nokey SET d = 3.5 WHERE a = 2;
      DELETE FROM nokey WHERE a = 1 LIMIT 1;
      INSERT INTO grow VALUES (1, 1);
      ALTER TABLE grow ADD COLUMN y VARCHAR(10) DEFAULT 'd';
      INSERT INTO grow VALUES (2, 2, 'new');
      UPDATE grow SET y = 'upd' WHERE id = 1;
      CREATE TABLE made (id INT PRIMARY KEY, t DATETIME(3));
      INSERT INTO made VALUES (1, '2024-01-02 03:04:05.678');
      DROP TABLE gone;
      RENAME TABLE old_name TO new_name;
      INSERT INTO new_name VALUES (2, 'y');
      TRUNCATE TABLE trunc;
      INSERT INTO trunc VALUES (3);
      CREATE VIEW v_kv AS SELECT id, v FROM kv WHERE n > 1;
      CREATE TABLE fa_dml.made2 LIKE fa_dml.made;
      INSERT INTO made2 SELECT * FROM made;
    ";
    tk::exec(&mut s, &format!("USE fa_dml; {script}")).await?;
    let (summary, _) = run.complete().await?;
    assert!(summary.transactions >= 10, "{summary:?}");
    assert!(summary.ddl >= 7, "{summary:?}");
    assert_same("fa_dml", "fa_dml_t").await?;
    let mut t = tk::connect(&tk::target()).await?;
    let views: u64 = tk::scalar(
        &mut t,
        "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'fa_dml_t' AND TABLE_NAME = 'v_kv'",
    )
    .await?;
    assert_eq!(views, 1, "the view is replayed");
    let gone: u64 = tk::scalar(
        &mut t,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fa_dml_t' AND TABLE_NAME IN ('gone', 'old_name')",
    )
    .await?;
    assert_eq!(gone, 0);
    let rolled: u64 = tk::scalar(&mut t, "SELECT COUNT(*) FROM fa_dml_t.kv WHERE id = 7").await?;
    assert_eq!(rolled, 0, "a rolled back transaction is not applied");
    // The checkpoint is the final position.
    let (cp, _) = checkpoint::read(&mut t, "fa-dml")
        .await?
        .context("no checkpoint")?;
    assert_eq!(cp.pos, summary.final_pos);
    Ok(())
}

use ferry_testkit::type_matrix::create_sql;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_through_the_binlog() -> Result<()> {
    let create = create_sql(&tk::connect(&tk::source()).await?);
    let (mut src, _t) = prepare("fa_types", "fa_types", &create).await?;
    let pos = master_pos(&mut src).await?;
    let run = start("fa-types", selection(&[("fa_types", "fa_types")]), pos).await?;
    const DB: &str = "fa_types";
    ferry_testkit::type_matrix::insert_rows(&mut src, DB).await?;
    tk::exec(
        &mut src,
        &format!(
            "INSERT INTO {DB}.`select` (id, f, d, dec65, e) SELECT 1000 + seq, \
             (RAND() - 0.5) * POW(10, FLOOR(RAND() * 70) - 35), \
             (RAND() - 0.5) * POW(10, FLOOR(RAND() * 600) - 300), \
             RAND() * 1e20, ELT(1 + seq % 3, 'a', 'b', 'c') FROM seq_1_to_2000"
        ),
    )
    .await?;
    // updates and deletes address rows by every type of value
    tk::exec(
        &mut src,
        &format!(
            "UPDATE {DB}.`select` SET i = IFNULL(i, 0) + 7, u8 = CONCAT(IFNULL(u8, ''), 'ü') WHERE id <= 6; \
             UPDATE {DB}.`select` SET f = f * 2, d = d / 3 WHERE id BETWEEN 1000 AND 1500; \
             DELETE FROM {DB}.`select` WHERE id IN (3, 1999, 2000)"
        ),
    )
    .await?;
    run.complete().await?;
    assert_same("fa_types", "fa_types").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transaction_is_applied_atomically() -> Result<()> {
    let (mut s, _t) = prepare(
        "fa_big",
        "fa_big",
        "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(100), k INT, KEY (k)); CREATE TABLE nk (a INT, b INT);",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start("fa-big", selection(&[("fa_big", "fa_big")]), pos).await?;
    tk::exec(
        &mut s,
        "USE fa_big; START TRANSACTION; \
         INSERT INTO big SELECT seq, REPEAT(CHAR(65 + seq % 26), 1 + seq % 100), seq % 1000 FROM seq_1_to_120000; \
         UPDATE big SET k = k + 1 WHERE id % 3 = 0; \
         DELETE FROM big WHERE id % 7 = 0; \
         INSERT INTO nk SELECT seq % 10, seq FROM seq_1_to_2000; \
         COMMIT",
    )
    .await?;
    let (summary, _) = run.complete().await?;
    assert!(summary.rows >= 120_000 + 40_000 + 17_000, "{summary:?}");
    assert_same("fa_big", "fa_big").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_reported_and_reaches_zero_and_resume_continues() -> Result<()> {
    let (mut s, _t) = prepare("fa_lag", "fa_lag", "CREATE TABLE c (id INT PRIMARY KEY, n INT);").await?;
    let pos = master_pos(&mut s).await?;
    let run = start("fa-lag", selection(&[("fa_lag", "fa_lag")]), pos).await?;
    for i in 0..50 {
        tk::exec(&mut s, &format!("INSERT INTO fa_lag.c VALUES ({i}, {i})")).await?;
    }
    tokio::time::timeout(Duration::from_secs(60), run.control.wait_ready())
        .await
        .context("never ready to complete")?;
    // cancel: stops without completing, keeps the checkpoint
    run.control.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(60), run.task).await???;
    assert!(!summary.completed);
    let ev = run.events.lock().map(|v| v.clone()).unwrap_or_default();
    let lags: Vec<(f64, u64, u64)> = ev
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::ReplayProgress {
                lag_seconds,
                lag_bytes,
                events,
                ..
            } => Some((*lag_seconds, *lag_bytes, *events)),
            _ => None,
        })
        .collect();
    assert!(!lags.is_empty(), "no replay progress reported");
    assert!(lags.iter().any(|l| l.2 > 0), "events counted");
    assert!(ev
        .iter()
        .any(|e| matches!(e, ProgressEvent::ReadyToComplete { .. })));

    // Resume from the checkpoint (no explicit start any more) and finish.
    for i in 50..60 {
        tk::exec(&mut s, &format!("INSERT INTO fa_lag.c VALUES ({i}, {i})")).await?;
    }
    let mut opts = ReplayOptions::new("fa-lag");
    opts.start = None;
    let control = ReplayControl::new();
    let c2 = control.clone();
    let task = tokio::spawn(async move {
        run_replay(
            &tk::source(),
            &tk::target(),
            &selection(&[("fa_lag", "fa_lag")]),
            opts,
            ferry_core::progress::null_sink(),
            c2,
        )
        .await
    });
    control.complete();
    let summary = tokio::time::timeout(Duration::from_secs(60), task).await???;
    assert!(summary.completed);
    assert_same("fa_lag", "fa_lag").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_binlog_file_is_a_definite_error() -> Result<()> {
    let _ = prepare("fa_purged", "fa_purged", "CREATE TABLE c (id INT PRIMARY KEY);").await?;
    let run = start(
        "fa-purged",
        selection(&[("fa_purged", "fa_purged")]),
        BinlogPos::new("mysql-bin.999998", 4),
    )
    .await?;
    let r = tokio::time::timeout(Duration::from_secs(60), run.task).await??;
    let e = r.expect_err("a missing file cannot be replayed");
    assert_eq!(e.kind(), ErrorKind::Definite, "{e}");
    assert!(e.to_string().contains("mysql-bin.999998"), "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_stops_with_table_key_and_position() -> Result<()> {
    let (mut s, mut t) = prepare(
        "fa_conf",
        "fa_conf",
        "CREATE TABLE c (id INT PRIMARY KEY, n INT);",
    )
    .await?;
    tk::exec(
        &mut t,
        "DELETE FROM fa_conf.c; INSERT INTO fa_conf.c VALUES (5, 0)",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start("fa-conf", selection(&[("fa_conf", "fa_conf")]), pos).await?;
    tk::exec(&mut s, "INSERT INTO fa_conf.c VALUES (1, 1); UPDATE fa_conf.c SET n = 2 WHERE id = 1; INSERT INTO fa_conf.c VALUES (5, 5)").await?;
    let r = tokio::time::timeout(Duration::from_secs(60), run.task).await??;
    let e = r.expect_err("insert of an existing key");
    assert_eq!(e.kind(), ErrorKind::Definite);
    let m = e.to_string();
    assert!(
        m.contains("fa_conf.c") && m.contains("conflict") && m.contains(':'),
        "{m}"
    );
    // the changes before the conflict are applied and checkpointed
    let n: i64 = tk::scalar(&mut t, "SELECT n FROM fa_conf.c WHERE id = 1").await?;
    assert_eq!(n, 2);
    Ok(())
}
