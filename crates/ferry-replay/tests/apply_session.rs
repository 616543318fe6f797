//! The applier's target session against the real servers: settings that would make the target
//! store something other than what the source stored. A replayed DDL runs under the source
//! statement's `time_zone` (a `TIMESTAMP` default filling existing rows), `sql_mode`
//! (`ANSI_QUOTES` parsing, a non-strict narrowing `ALTER` truncating existing rows on both
//! sides alike) and `explicit_defaults_for_timestamp` (what a bare `TIMESTAMP` column means); `target_binlog = false` keeps every replayed write out of the target's binlog.
//! Only databases named `fa_sess_*` are touched.

mod support;

use anyhow::Result;
use ferry_testkit as tk;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_runs_under_the_statements_time_zone_and_sql_mode() -> Result<()> {
    const DB: &str = "fa_sess_ddl";
    let (mut s, mut t) = prepare(
        DB,
        DB,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('value-', seq) FROM seq_1_to_50;",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start("fa-sess-ddl", selection(&[(DB, DB)]), pos).await?;
    // The existing rows get the default as the instant 2023-12-31 16:00:00 UTC on the source.
    tk::exec(
        &mut s,
        &format!(
            "USE {DB}; SET SESSION time_zone = '+08:00'; \
             ALTER TABLE t ADD COLUMN ts TIMESTAMP NOT NULL DEFAULT '2024-01-01 00:00:00'; \
             SET SESSION time_zone = SYSTEM; \
             SET SESSION sql_mode = 'ANSI_QUOTES'; \
             CREATE TABLE \"quoted\" (\"id\" INT PRIMARY KEY, \"v\" VARCHAR(10) DEFAULT 'x'); \
             SET SESSION sql_mode = ''; \
             ALTER TABLE t MODIFY v VARCHAR(7); \
             SET SESSION sql_mode = DEFAULT; \
             SET SESSION explicit_defaults_for_timestamp = 0; \
             ALTER TABLE t ADD COLUMN implicit TIMESTAMP; \
             SET SESSION explicit_defaults_for_timestamp = DEFAULT; \
             INSERT INTO quoted (id) VALUES (1), (2); INSERT INTO t (id, v) VALUES (100, 'new');"
        ),
    )
    .await?;
    let (summary, _) = run.complete().await?;
    assert_eq!(summary.ddl, 4, "{summary:?}");
    // explicit_defaults_for_timestamp = 0: the column became NOT NULL with defaults, as there.
    let q = format!(
        "SELECT CONCAT(IS_NULLABLE, ' ', IFNULL(COLUMN_DEFAULT, 'NULL')) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = '{DB}' AND TABLE_NAME = 't' AND COLUMN_NAME = 'implicit'"
    );
    let (a, b): (String, String) = (tk::scalar(&mut s, &q).await?, tk::scalar(&mut t, &q).await?);
    assert!(a.starts_with("NO "), "{a}");
    assert_eq!(a, b);
    let q = format!("SELECT UNIX_TIMESTAMP(ts) FROM {DB}.t WHERE id = 1");
    let (a, b): (u64, u64) = (tk::scalar(&mut s, &q).await?, tk::scalar(&mut t, &q).await?);
    assert_eq!(a, 1_704_038_400, "2024-01-01 00:00:00 at +08:00");
    assert_eq!(a, b, "the target filled the existing rows with the same instant");
    let q = format!("SELECT v FROM {DB}.t WHERE id = 10");
    let (a, b): (String, String) = (tk::scalar(&mut s, &q).await?, tk::scalar(&mut t, &q).await?);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("value-1", "value-1"),
        "truncated alike"
    );
    assert_same(DB, DB).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_binlog_false_keeps_replayed_writes_out_of_the_target_binlog() -> Result<()> {
    const DB: &str = "fa_sess_nobinlog";
    let (mut s, mut t) = prepare(
        DB,
        DB,
        "CREATE TABLE t (id INT PRIMARY KEY, n INT); CREATE TABLE k (a INT);",
    )
    .await?;
    let target_start = master_pos(&mut t).await?;
    let pos = master_pos(&mut s).await?;
    let run = start_with("fa-sess-nobinlog", selection(&[(DB, DB)]), pos, |o| {
        o.target_binlog = false;
        o.workers = 2;
    })
    .await?;
    // Parallel batches, a keyless table (serial path), a large transaction.
    tk::exec(
        &mut s,
        &format!(
            "USE {DB}; INSERT INTO t SELECT seq, 0 FROM seq_1_to_300; UPDATE t SET n = n + 1 WHERE id < 50; \
             INSERT INTO k VALUES (1), (2); DELETE FROM k WHERE a = 1; UPDATE t SET n = 7;"
        ),
    )
    .await?;
    run.complete().await?;
    assert_same(DB, DB).await?;
    assert_eq!(
        tk::binlog_table_maps(&mut t, &target_start.file, target_start.pos, DB).await?,
        0
    );
    Ok(())
}
