//! `ferry run` (MigrateType 3) with parallel apply (4 workers) while eight connections write on
//! the source: four on one hot counter row (every transaction conflicts), four on rows of their
//! own (disjoint keys). `kill -9` twice during the replay (once under the write load, once while
//! catching up the backlog), then a run to completion. Exactly once: the counter, the journals
//! and the per-writer rows agree with the writers' commits, and the digests are equal. A ninth
//! connection keeps deleting and re-keying parent rows whose children and grandchildren go by
//! `ON DELETE CASCADE` / `ON UPDATE CASCADE` / `SET NULL` (changes the binlog does not carry):
//! the target's families equal the source's after the kills too. A second test runs two
//! workers on two exactly-once writers alone, where consecutive batches share one key (the
//! counter row) and are split (their other rows run side by side), killed twice in the middle.
//! Only databases named `fa_*` are touched.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use ferry_testkit::child::FerryChild;
use ferry_testkit::exactly_once::{
    counter_writer, family_writer, WriterStats, FAMILY_TABLES, FAMILY_TABLE_NAMES,
};
use ferry_testkit::{connect, drop_dbs, exec, forget_job, fresh_db, scalar, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "fa_cli_par";

/// The two tests load the servers heavily (writers at full speed, kills, catch-ups): one at a
/// time (run side by side on a loaded machine, the target once hung in the full load).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const JOB: &str = "fa-cli-par";

/// Disjoint writers: each its own rows of `own`, and a journal of its own commits.
fn own_writer(w: u64, stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            c.query_drop(format!(
                "START TRANSACTION; UPDATE {DB}.own SET n = n + 1 WHERE w = {w} AND k = {k}; \
                 INSERT INTO {DB}.own_log (w, i) VALUES ({w}, {i}); \
                 DELETE FROM {DB}.own_log WHERE w = {w} AND i = {old}; COMMIT",
                k = i % 50,
                old = i.saturating_sub(500)
            ))
            .await?;
            commits.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    })
}

fn spawn_ferry(path: &std::path::Path, args: &[&str]) -> Result<std::process::Child> {
    Ok(ferry()
        .arg("run")
        .arg(path)
        .args(["--progress", "plain", "--skip-check"])
        .args(args)
        .env("FERRY_REPLAY_WORKERS", "4")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

async fn target_journal(db: &str) -> Result<u64> {
    let mut t = connect(&target()).await?;
    let exists: u64 = scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'journal'"),
    )
    .await?;
    if exists == 0 {
        return Ok(0);
    }
    scalar(&mut t, &format!("SELECT COUNT(*) FROM {db}.journal")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_apply_is_exactly_once_under_kills() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(&mut s, &format!("USE {DB}; {EXACTLY_ONCE_TABLES}")).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; CREATE TABLE own (w INT, k INT, n BIGINT NOT NULL, PRIMARY KEY (w, k)); \
             INSERT INTO own SELECT w.seq, k.seq, 0 FROM seq_0_to_3 w, seq_0_to_49 k; \
             CREATE TABLE own_log (w INT, i BIGINT, PRIMARY KEY (w, i)); \
             {FAMILY_TABLES}"
        ),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    // Hot writers: counter + journal (the exactly-once tables), `v` unique across writers.
    let hot_stats = Arc::new(WriterStats::default());
    let hot = || hot_stats.commits.load(Ordering::SeqCst);
    let own = Arc::new(AtomicU64::new(0));
    let families = Arc::new(WriterStats::default());
    let mut writers = Vec::new();
    for w in 0..4 {
        writers.push(counter_writer(
            source(),
            DB.into(),
            w * 10_000_000,
            Duration::ZERO,
            u64::MAX,
            stop.clone(),
            hot_stats.clone(),
        ));
        writers.push(own_writer(w, stop.clone(), own.clone()));
    }
    writers.push(family_writer(
        source(),
        DB.into(),
        0,
        Duration::ZERO,
        stop.clone(),
        families.clone(),
    ));

    let j = job(
        JOB,
        json!([{"Database": DB}]),
        json!({"Threads": 2, "ChunkRows": 5000}),
        3,
    );
    let path = write_job(JOB, &j);
    // 1. Kill -9 while replaying under the write load.
    let mut child = spawn_ferry(&path, &["--restart"])?;
    wait_until(180, "the replay to apply some of the load", || async {
        Ok(target_journal(DB).await? >= 300)
    })
    .await?;
    child.kill()?; // SIGKILL
    child.wait()?;
    let at_kill = hot();
    // A backlog builds while ferry is down.
    wait_until(120, "a backlog while ferry is down", || {
        let n = hot();
        async move { Ok(n >= at_kill + 1500) }
    })
    .await?;
    // 2. Kill -9 while catching up that backlog (batches in flight on several workers).
    let before = target_journal(DB).await?;
    let mut child = spawn_ferry(&path, &[])?;
    wait_until(
        180,
        "the restarted replay to apply part of the backlog",
        || async move { Ok(target_journal(DB).await? >= before + 300) },
    )
    .await?;
    child.kill()?;
    child.wait()?;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await??;
    }
    let hot_total = hot();
    let own_total = own.load(Ordering::SeqCst);
    assert!(hot_total > at_kill, "the writers kept going after the first kill");

    // 3. Resume to completion.
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--skip-check", "--complete-when-caught-up"])
        .env("FERRY_REPLAY_WORKERS", "4");
    let out = cmd.output()?;
    let o = text(&out);
    assert!(out.status.success(), "{o}");
    assert!(o.contains("final position"), "{o}");

    assert_exactly_once(&mut t, DB, hot_total, &o).await?;
    let own_n: u64 = scalar(&mut t, &format!("SELECT SUM(n) FROM {DB}.own")).await?;
    assert_eq!(
        own_n, own_total,
        "every disjoint-key transaction applied once\n{o}"
    );
    // The cascades ran on the source (so the digests below compare them).
    let mut s = connect(&source()).await?;
    let fam: u64 = scalar(&mut s, &format!("SELECT COUNT(*) FROM {DB}.fam_parent")).await?;
    let made = families.commits.load(Ordering::SeqCst);
    assert!(
        made > 30 && fam < made,
        "{fam} parents of {made}: deletes happened"
    );
    let orphans: u64 = scalar(
        &mut s,
        &format!("SELECT COUNT(*) FROM {DB}.fam_loose WHERE pid IS NULL"),
    )
    .await?;
    assert!(orphans > 0);
    for table in FAMILY_TABLE_NAMES {
        let q = format!("SELECT COUNT(*) FROM {DB}.{table}");
        let (a, b): (u64, u64) = (scalar(&mut s, &q).await?, scalar(&mut t, &q).await?);
        assert_eq!(a, b, "{table}: source {a} rows, target {b}\n{o}");
    }
    assert_db_equal(DB, DB).await?;
    Ok(())
}

/// Two workers, the exactly-once writers (every transaction increments the one counter row and
/// adds a journal row): each batch shares only the counter's key with the batch before it, so
/// it is split (its journal rows run beside the earlier batch, the counter after that batch's
/// commit). `kill -9` while applying the live load and while catching up a backlog, then a run
/// to completion: nothing lost or applied twice, digests equal, and the log shows split batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_batches_are_exactly_once_under_kills() -> Result<()> {
    const DB: &str = "fa_cli_split";
    const JOB: &str = "fa-cli-split";
    let _one = ONE_AT_A_TIME.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    forget_job(&mut t, JOB, &["replay_checkpoint", "job_phase"]).await?;
    exec(&mut s, &format!("USE {DB}; {EXACTLY_ONCE_TABLES}")).await?;
    // Two writers at full speed on the one counter (journal values far apart): batches in
    // flight overlap, so most batches are split.
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WriterStats::default());
    let commits = || stats.commits.load(Ordering::SeqCst);
    let writers: Vec<_> = [0, 10_000_000]
        .into_iter()
        .map(|base| {
            counter_writer(
                source(),
                DB.into(),
                base,
                Duration::ZERO,
                u64::MAX,
                stop.clone(),
                stats.clone(),
            )
        })
        .collect();
    let path = write_job(
        JOB,
        &job(
            JOB,
            json!([{"Database": DB}]),
            json!({"Threads": 2, "ChunkRows": 5000}),
            3,
        ),
    );
    let dir = path.parent().context("the job file's directory")?.to_path_buf();
    let spawn = |name: &str, args: &[&str]| {
        let mut cmd = ferry();
        cmd.arg("run")
            .arg(&path)
            .args(["--progress", "plain", "--skip-check", "--log-format", "json"])
            .args(args)
            .env("FERRY_REPLAY_WORKERS", "2")
            .env("FERRY_LOG", "info,ferry_replay::apply=debug");
        FerryChild::spawn(cmd, &dir, name)
    };
    let mut logs = String::new();
    // 1. Kill -9 while replaying the live load.
    let mut run = spawn("fa-cli-split-1", &["--restart"])?;
    wait_until(180, "the replay to apply the writers' changes", || async {
        Ok(replay_checkpoint_ts(&mut connect(&target()).await?, JOB).await? > 0)
    })
    .await?;
    let loaded = target_journal(DB).await?;
    wait_until(180, "the replay to apply some of the load", || async move {
        Ok(target_journal(DB).await? >= loaded + 2000)
    })
    .await?;
    run.assert_running()?;
    run.kill9()?;
    logs.push_str(&run.output());
    // 2. A backlog while ferry is down, then kill -9 while catching it up.
    let at_kill = commits();
    wait_until(120, "a backlog while ferry is down", || {
        let n = commits();
        async move { Ok(n >= at_kill + 15_000) }
    })
    .await?;
    let before = target_journal(DB).await?;
    let mut run = spawn("fa-cli-split-2", &[])?;
    wait_until(
        180,
        "the restarted replay to apply part of the backlog",
        || async move { Ok(target_journal(DB).await? >= before + 3000) },
    )
    .await?;
    run.assert_running()?;
    run.kill9()?;
    logs.push_str(&run.output());
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await??;
    }
    let commits = commits();

    // 3. Resume to completion.
    let mut run = spawn("fa-cli-split-3", &["--complete-when-caught-up"])?;
    let (status, out) = run.wait(300).await?;
    assert!(status.success(), "{out}");
    logs.push_str(&out);
    assert_exactly_once(&mut t, DB, commits, &out).await?;
    assert_db_equal(DB, DB).await?;
    // The coordinator's debug line of each batch: split ones carry their deferred keys.
    let split = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["fields"]["message"] == "batch dispatched"
                && l["fields"]["deferred_keys"].as_u64().is_some_and(|n| n > 0)
        })
        .count();
    assert!(
        split > 0,
        "no batch was split: the test did not exercise the split path"
    );
    Ok(())
}
