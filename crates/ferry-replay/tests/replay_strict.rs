//! The replay writes with a strict `sql_mode`: a value the target cannot hold exactly stops the
//! replay with a definite error naming the table, never a silent truncation; the values a
//! non-strict source legitimately holds (zero dates, days beyond a month's end, the ENUM error
//! value) still copy exactly.

mod support;

use std::time::Duration;

use anyhow::Result;
use ferry_core::ErrorKind;
use ferry_testkit as tk;
use mysql_async::prelude::Queryable;
use support::*;

/// Runs `dml` on the source during a replay whose target column is narrower than the source's;
/// returns the replay's error text after checking it is definite and names `table`.
async fn stops_definitely(db: &str, job: &str, create: &str, narrow: &str, dml: &str) -> Result<String> {
    let (mut s, mut t) = prepare(db, db, create).await?;
    tk::exec(&mut t, &format!("USE {db}; {narrow}")).await?;
    let pos = master_pos(&mut s).await?;
    let run = start(job, selection(&[(db, db)]), pos).await?;
    tk::exec(&mut s, &format!("USE {db}; {dml}")).await?;
    let r = tokio::time::timeout(Duration::from_secs(120), run.task).await??;
    let e = r.expect_err("a value the target column cannot hold must stop the replay");
    assert_eq!(e.kind(), ErrorKind::Definite, "{e}");
    Ok(e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrower_target_varchar_stops_the_replay_instead_of_truncating() -> Result<()> {
    let m = stops_definitely(
        "fs_strict_str",
        "fs-strict-str",
        "CREATE TABLE n (id INT PRIMARY KEY, v VARCHAR(10));",
        "ALTER TABLE n MODIFY v VARCHAR(3)",
        "INSERT INTO n VALUES (1, 'abc'); INSERT INTO n VALUES (2, 'abcdefgh');",
    )
    .await?;
    assert!(m.contains("fs_strict_str.n"), "{m}");
    assert!(m.contains("1406") || m.contains("Data too long"), "{m}");
    // nothing truncated reached the target (earlier groups may or may not be committed yet: the
    // checkpoint covers exactly what is)
    let mut t = tk::connect(&tk::target()).await?;
    let rows: Vec<(i64, String)> = t.query("SELECT id, v FROM fs_strict_str.n ORDER BY id").await?;
    assert!(rows.iter().all(|(id, v)| *id == 1 && v == "abc"), "{rows:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_number_stops_the_replay_instead_of_clipping() -> Result<()> {
    let m = stops_definitely(
        "fs_strict_num",
        "fs-strict-num",
        "CREATE TABLE n (id INT PRIMARY KEY, d DECIMAL(12,2));",
        "ALTER TABLE n MODIFY d DECIMAL(6,2)",
        "INSERT INTO n VALUES (1, 1.25); UPDATE n SET d = 1234567890.12 WHERE id = 1;",
    )
    .await?;
    assert!(m.contains("fs_strict_num.n"), "{m}");
    assert!(m.contains("1264") || m.contains("Out of range"), "{m}");
    let mut t = tk::connect(&tk::target()).await?;
    let clipped: i64 = tk::scalar(&mut t, "SELECT COUNT(*) FROM fs_strict_num.n WHERE d = 9999.99").await?;
    assert_eq!(clipped, 0, "not clipped to 9999.99");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_dates_invalid_days_and_the_enum_error_value_still_copy() -> Result<()> {
    let create =
        "CREATE TABLE z (id INT PRIMARY KEY, d DATE, dt DATETIME(6), ts TIMESTAMP NULL DEFAULT NULL, \
                  e ENUM('a','b'), y YEAR); \
                  CREATE TABLE nk (d DATE, e ENUM('a','b'), n INT);";
    let (mut s, _t) = prepare("fs_strict_ok", "fs_strict_ok", create).await?;
    let pos = master_pos(&mut s).await?;
    let run = start(
        "fs-strict-ok",
        selection(&[("fs_strict_ok", "fs_strict_ok")]),
        pos,
    )
    .await?;
    tk::exec(
        &mut s,
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; USE fs_strict_ok; \
         INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 'zzz', 0), \
           (2, '2024-02-31', '2024-00-10 12:00:00.5', NULL, 'a', 2000), (3, '2024-01-00', NULL, NULL, '', NULL); \
         UPDATE z SET e = 'nope', y = 0 WHERE id = 2; \
         UPDATE z SET d = '0000-00-00' WHERE id = 3; \
         INSERT INTO nk VALUES ('0000-00-00', 'x', 1), ('2024-02-30', 'a', 2); \
         UPDATE nk SET n = n + 10 WHERE e = ''; \
         DELETE FROM nk WHERE n = 2; \
         SET SESSION sql_mode = DEFAULT;",
    )
    .await?;
    run.complete().await?;
    assert_same("fs_strict_ok", "fs_strict_ok").await?;
    let mut t = tk::connect(&tk::target()).await?;
    let e: i64 = tk::scalar(&mut t, "SELECT COUNT(*) FROM fs_strict_ok.z WHERE e + 0 = 0").await?;
    assert_eq!(e, 3, "the ENUM error value on every row");
    Ok(())
}
