//! `ferry run` with MigrateType 3 against the real test servers: structure, full data and the
//! incremental replay while a writer commits on the source; kill -9 in the middle of the replay;
//! a restart resumes from the replay checkpoint and completes with `--complete-when-caught-up`.
//! Exactly once: the counter, the journal rows and the writer's commits agree, and the digests
//! are equal. Only databases named `fa_*` are touched.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use ferry_testkit::exactly_once::{counter_writer, WriterStats};
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, source, target, wait_until};
use serde_json::json;

const DB: &str = "fa_cli_kill";
const JOB: &str = "fa-cli-kill";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_under_kill_and_cut_over() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(&mut s, &format!("USE {DB}; {EXACTLY_ONCE_TABLES}")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WriterStats::default());
    let w = counter_writer(
        source(),
        DB.into(),
        0,
        Duration::from_millis(3),
        u64::MAX,
        stop.clone(),
        stats.clone(),
    );
    let commits = || stats.commits.load(Ordering::SeqCst);

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
    // More writer transactions while the replay runs, then the kill lands in the middle.
    let running = commits();
    wait_until(60, "the writer to commit while the replay runs", || {
        let n = commits();
        async move { Ok(n >= running + 100) }
    })
    .await?;
    child.kill()?; // SIGKILL
    child.wait()?;
    let at_kill = commits();
    // More changes while ferry is down, then the writer stops.
    wait_until(60, "the writer to commit while ferry is down", || {
        let n = commits();
        async move { Ok(n >= at_kill + 100) }
    })
    .await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    let total = commits();
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
