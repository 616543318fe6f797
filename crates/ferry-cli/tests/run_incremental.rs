//! `ferry run` with MigrateType 3 against the real test servers: structure, full data and the
//! incremental replay while a writer commits on the source; kill -9 in the middle of the replay;
//! a restart resumes from the replay checkpoint and completes with `--complete-when-caught-up`.
//! Exactly once: the counter, the journal rows and the writer's commits agree, and the digests
//! are equal. Only databases named `fa_*` are touched.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "fa_cli_kill";
const JOB: &str = "fa-cli-kill";

/// Transactions that each increment the counter and add a journal row, until `stop`.
fn writer(stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            c.query_drop(format!(
                "START TRANSACTION; UPDATE {DB}.counter SET n = n + 1 WHERE id = 1; \
                 INSERT INTO {DB}.journal (v, pad) VALUES ({i}, REPEAT('j', {})); COMMIT",
                i % 200
            ))
            .await?;
            commits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_under_kill_and_cut_over() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(&mut s, &format!("USE {DB}; {EXACTLY_ONCE_TABLES}")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(stop.clone(), commits.clone());

    let j = job(
        JOB,
        json!([{"Database": DB}]),
        json!({"Threads": 2, "ChunkRows": 5000}),
        3,
    );
    let path = write_job(JOB, &j);
    let mut child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // The replay is running and has committed changes: kill -9 in the middle.
    wait_until(120, "the replay checkpoint to advance", || {
        let ep = target();
        async move {
            let mut t = connect(&ep).await?;
            Ok(replay_checkpoint_ts(&mut t, JOB).await? > 0)
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill()?; // SIGKILL
    child.wait()?;
    let at_kill = commits.load(Ordering::SeqCst);
    // More changes while ferry is down, then the writer stops.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    let total = commits.load(Ordering::SeqCst);
    assert!(total > at_kill, "the writer kept going after the kill");

    let out = run(&path, &["--skip-check", "--complete-when-caught-up"]);
    assert!(out.status.success(), "{}", text(&out));
    let o = text(&out);
    assert!(o.contains("final position"), "{o}");
    assert!(o.contains("final GTID"), "{o}");

    assert_exactly_once(&mut t, DB, total, &o).await?;
    assert_db_equal(DB, DB).await?;

    // Running the completed job again does nothing.
    let again = run(&path, &["--skip-check"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already completed"), "{}", text(&again));
    Ok(())
}
