//! System-versioned tables (MariaDB `WITH SYSTEM VERSIONING`) through `ferry run`, full +
//! incremental, with a `kill -9` while the source keeps changing them: one table with the
//! implicit, invisible `row_start`/`row_end` (with a unique and a secondary key; MariaDB extends
//! unique keys with `row_end`), one with declared period columns. Killed once during the replay,
//! once during the full load: the resumed load's chunks were read at different positions, and a
//! versioned table changed in between cannot be re-applied idempotently, so the resumed run stops
//! naming the table (when the writer changed it in that window) and a run from the start
//! (`--restart`) then migrates it.
//! After the cut-over every version equals the source's, `FOR SYSTEM_TIME ALL` with its
//! `row_start`/`row_end` (the testkit's digests read versioned tables that way), and the job's
//! verification finds them consistent.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use serde_json::json;

const SCHEMA: &str = "
CREATE TABLE hist (id INT PRIMARY KEY, v INT, note VARCHAR(20), UNIQUE KEY (note), KEY (v)) WITH SYSTEM VERSIONING;
CREATE TABLE hexp (id INT NOT NULL PRIMARY KEY, v INT,
  rs TIMESTAMP(6) GENERATED ALWAYS AS ROW START, re TIMESTAMP(6) GENERATED ALWAYS AS ROW END,
  PERIOD FOR SYSTEM_TIME (rs, re)) WITH SYSTEM VERSIONING;";

/// Versions of a table on one side (`FOR SYSTEM_TIME ALL`) and its current rows.
async fn versions(c: &mut mysql_async::Conn, db: &str, table: &str) -> Result<(u64, u64)> {
    Ok((
        scalar(
            c,
            &format!("SELECT COUNT(*) FROM {db}.{table} FOR SYSTEM_TIME ALL"),
        )
        .await?,
        scalar(c, &format!("SELECT COUNT(*) FROM {db}.{table}")).await?,
    ))
}

/// One change of the source's stream: updates (several rows, a key change), deletes, inserts,
/// and a transaction updating one row twice.
fn change(db: &str, i: u32) -> String {
    let id = i * 5 + 1;
    match i % 6 {
        0 => format!("UPDATE {db}.hist SET v = v * 2, note = CONCAT('u', id) WHERE id BETWEEN {id} AND {id} + 20"),
        1 => format!("DELETE FROM {db}.hexp WHERE id = {id}"),
        2 => format!("INSERT INTO {db}.hist (id, v, note) VALUES ({}, {i}, 'new{i}')", 100_000 + i),
        3 => format!("UPDATE {db}.hist SET id = id + 200000 WHERE id = {id}"),
        4 => format!(
            "START TRANSACTION; UPDATE {db}.hexp SET v = -v WHERE id = {id}; \
             UPDATE {db}.hexp SET v = v - 1 WHERE id = {id}; DELETE FROM {db}.hist WHERE id = {id} + 1; COMMIT"
        ),
        _ => format!("INSERT INTO {db}.hexp (id, v) VALUES ({}, {i})", 100_000 + i),
    }
}

/// Where the first `ferry run` is killed.
#[derive(Clone, Copy, PartialEq)]
enum KillAt {
    Replay,
    Load,
}

async fn scenario(db: &'static str, job_name: &'static str, kill_at: KillAt) -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    drop_dbs(&mut t, &[db]).await?;
    exec(&mut s, &format!("USE {db}; {SCHEMA}")).await?;
    // history before the full load: updated and deleted rows
    for table in ["hist", "hexp"] {
        let cols = if table == "hist" { "id, v, note" } else { "id, v" };
        let vals = if table == "hist" {
            "seq, seq, CONCAT('n', seq)"
        } else {
            "seq, seq"
        };
        exec(
            &mut s,
            &format!(
                "USE {db}; INSERT INTO {table} ({cols}) SELECT {vals} FROM seq_1_to_1500;
                 UPDATE {table} SET v = v + 1 WHERE id % 3 = 0;
                 UPDATE {table} SET v = v + 1 WHERE id % 6 = 0;
                 DELETE FROM {table} WHERE id % 10 = 0;"
            ),
        )
        .await?;
    }

    let ferry_opts = match kill_at {
        KillAt::Replay => json!({"Threads": 2, "ChunkRows": 300}),
        KillAt::Load => json!({"Threads": 2, "ChunkRows": 150, "RowsPerSecond": 1500}),
    };
    let mut j = job(job_name, json!([{"Database": db}]), ferry_opts, 3);
    // the full verification after the cut-over
    j["MigrateOption"]["ConsistencyType"] = json!(2);
    let path = write_job(job_name, &j);
    // forget any earlier run of this job, so the waits below see only this run's progress
    for table in ["replay_checkpoint", "load_chunk", "load_job", "job_phase"] {
        let _ = exec(
            &mut t,
            &format!("DELETE FROM ferry_meta.{table} WHERE job = '{job_name}'"),
        )
        .await;
    }
    let mut child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    if kill_at == KillAt::Replay {
        wait_until(180, "the replay to start", || {
            let ep = target();
            async move {
                let mut t = connect(&ep).await?;
                let phase: u64 = scalar(
                    &mut t,
                    &format!("SELECT COUNT(*) FROM ferry_meta.job_phase WHERE job = '{job_name}' AND phase = 'post_data'"),
                )
                .await
                .unwrap_or(0);
                Ok(phase > 0 || replay_checkpoint_ts(&mut t, job_name).await? > 0)
            }
        })
        .await?;
    }

    // the source keeps changing both tables while ferry is killed
    let writer = tokio::spawn(async move {
        let mut w = connect(&source()).await?;
        for i in 1..=240u32 {
            exec(&mut w, &change(db, i)).await?;
        }
        anyhow::Ok(())
    });
    match kill_at {
        KillAt::Replay => {
            wait_until(120, "part of the changes replayed", || {
                let ep = target();
                async move {
                    let mut t = connect(&ep).await?;
                    let n: u64 = scalar(
                        &mut t,
                        &format!("SELECT COUNT(*) FROM {db}.hist WHERE note LIKE 'new%'"),
                    )
                    .await
                    .unwrap_or(0);
                    Ok(n >= 8)
                }
            })
            .await?
        }
        KillAt::Load => {
            wait_until(120, "part of the chunks copied", || {
                let ep = target();
                async move {
                    let mut t = connect(&ep).await?;
                    let n: u64 = scalar(
                        &mut t,
                        &format!(
                        "SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{job_name}' AND done = 1"
                    ),
                    )
                    .await
                    .unwrap_or(0);
                    Ok(n >= 4)
                }
            })
            .await?
        }
    }
    child.kill()?;
    child.wait()?;
    writer.await??;

    let mut out = run(&path, &["--skip-check", "--complete-when-caught-up"]);
    if !out.status.success() && matches!(kill_at, KillAt::Load) {
        let o = text(&out);
        assert!(
            o.contains("is system-versioned and changed between the positions"),
            "a resumed load's window with versioned changes stops by name: {o}"
        );
        drop_dbs(&mut t, &[db]).await?;
        out = run(&path, &["--skip-check", "--restart", "--complete-when-caught-up"]);
    }
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("verified    consistent"), "{}", text(&out));

    let a = ferry_testkit::db_digest(&mut s, db).await?;
    let b = ferry_testkit::db_digest(&mut t, db).await?;
    assert_eq!(a.len(), 2);
    assert_eq!(
        a, b,
        "source and target {db} differ (every version, FOR SYSTEM_TIME ALL)"
    );
    for table in ["hist", "hexp"] {
        let (all, current) = versions(&mut s, db, table).await?;
        assert_eq!(versions(&mut t, db, table).await?, (all, current), "{table}");
        assert!(
            all > current + 500,
            "{table}: the history is there ({all} versions, {current} current)"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_tables_keep_their_history_through_a_kill9_during_the_replay() -> Result<()> {
    scenario("fm_versioned", "fm-versioned", KillAt::Replay).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_tables_keep_their_history_through_a_kill9_during_the_full_load() -> Result<()> {
    scenario("fm_versioned_load", "fm-versioned-load", KillAt::Load).await
}
