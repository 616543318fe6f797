//! System-versioned tables (MariaDB `WITH SYSTEM VERSIONING`) through `ferry run`, full +
//! incremental, with a `kill -9` while the source keeps changing them: one table with the
//! implicit, invisible `row_start`/`row_end` (and a unique key, which MariaDB extends with
//! `row_end`), one with declared period columns. After the cut-over every version equals the
//! source's, `FOR SYSTEM_TIME ALL` with its `row_start`/`row_end` (the testkit's digests read
//! versioned tables that way), and the job's verification finds them consistent.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use serde_json::json;

const DB: &str = "fm_versioned";
const JOB: &str = "fm-versioned";

const SCHEMA: &str = "
CREATE TABLE hist (id INT PRIMARY KEY, v INT, note VARCHAR(20), UNIQUE KEY (note), KEY (v)) WITH SYSTEM VERSIONING;
CREATE TABLE hexp (id INT NOT NULL PRIMARY KEY, v INT,
  rs TIMESTAMP(6) GENERATED ALWAYS AS ROW START, re TIMESTAMP(6) GENERATED ALWAYS AS ROW END,
  PERIOD FOR SYSTEM_TIME (rs, re)) WITH SYSTEM VERSIONING;";

/// Versions of a table on one side (`FOR SYSTEM_TIME ALL`) and its current rows.
async fn versions(c: &mut mysql_async::Conn, table: &str) -> Result<(u64, u64)> {
    Ok((
        scalar(c, &format!("SELECT COUNT(*) FROM {DB}.{table} FOR SYSTEM_TIME ALL")).await?,
        scalar(c, &format!("SELECT COUNT(*) FROM {DB}.{table}")).await?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_tables_keep_their_history_through_full_incremental_and_kill9() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(&mut s, &format!("USE {DB}; {SCHEMA}")).await?;
    // history before the full load: updated and deleted rows
    for table in ["hist", "hexp"] {
        let cols = if table == "hist" { "id, v, note" } else { "id, v" };
        let vals = if table == "hist" { "seq, seq, CONCAT('n', seq)" } else { "seq, seq" };
        exec(
            &mut s,
            &format!(
                "USE {DB}; INSERT INTO {table} ({cols}) SELECT {vals} FROM seq_1_to_1500;
                 UPDATE {table} SET v = v + 1 WHERE id % 3 = 0;
                 UPDATE {table} SET v = v + 1 WHERE id % 6 = 0;
                 DELETE FROM {table} WHERE id % 10 = 0;"
            ),
        )
        .await?;
    }

    let mut j = job(
        JOB,
        json!([{"Database": DB}]),
        json!({"Threads": 2, "ChunkRows": 300}),
        3,
    );
    // the full verification after the cut-over
    j["MigrateOption"]["ConsistencyType"] = json!(2);
    let path = write_job(JOB, &j);
    // forget any earlier run of this job, so the waits below see only this run's progress
    for table in ["replay_checkpoint", "load_chunk", "load_job", "job_phase"] {
        let _ = exec(&mut t, &format!("DELETE FROM ferry_meta.{table} WHERE job = '{JOB}'")).await;
    }
    let mut child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    wait_until(180, "the replay to start", || {
        let ep = target();
        async move {
            let mut t = connect(&ep).await?;
            let phase: u64 = scalar(
                &mut t,
                &format!("SELECT COUNT(*) FROM ferry_meta.job_phase WHERE job = '{JOB}' AND phase = 'post_data'"),
            )
            .await
            .unwrap_or(0);
            Ok(phase > 0 || replay_checkpoint_ts(&mut t, JOB).await? > 0)
        }
    })
    .await?;

    // the source keeps changing both tables while ferry is killed
    let writer = tokio::spawn(async move {
        let mut w = connect(&source()).await?;
        for i in 1..=240u32 {
            let id = i * 5 + 1;
            let sql = match i % 6 {
                0 => format!("UPDATE {DB}.hist SET v = v * 2, note = CONCAT('u', id) WHERE id BETWEEN {id} AND {id} + 20"),
                1 => format!("DELETE FROM {DB}.hexp WHERE id = {id}"),
                2 => format!("INSERT INTO {DB}.hist (id, v, note) VALUES ({}, {i}, 'new{i}')", 100_000 + i),
                3 => format!("UPDATE {DB}.hist SET id = id + 200000 WHERE id = {id}"),
                4 => format!("START TRANSACTION; UPDATE {DB}.hexp SET v = -v WHERE id = {id}; \
                              UPDATE {DB}.hexp SET v = v - 1 WHERE id = {id}; DELETE FROM {DB}.hist WHERE id = {id} + 1; COMMIT"),
                _ => format!("INSERT INTO {DB}.hexp (id, v) VALUES ({}, {i})", 100_000 + i),
            };
            exec(&mut w, &sql).await?;
        }
        anyhow::Ok(())
    });
    wait_until(120, "part of the changes replayed", || {
        let ep = target();
        async move {
            let mut t = connect(&ep).await?;
            let n: u64 = scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.hist WHERE note LIKE 'new%'"))
                .await
                .unwrap_or(0);
            Ok(n >= 8)
        }
    })
    .await?;
    child.kill()?;
    child.wait()?;
    writer.await??;

    let out = run(&path, &["--skip-check", "--complete-when-caught-up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("verified    consistent"), "{}", text(&out));

    let a = ferry_testkit::db_digest(&mut s, DB).await?;
    let b = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(a.len(), 2);
    assert_eq!(a, b, "source and target {DB} differ (every version, FOR SYSTEM_TIME ALL)");
    for table in ["hist", "hexp"] {
        let (all, current) = versions(&mut s, table).await?;
        assert_eq!(versions(&mut t, table).await?, (all, current), "{table}");
        assert!(all > current + 500, "{table}: the history is there ({all} versions, {current} current)");
    }
    Ok(())
}
