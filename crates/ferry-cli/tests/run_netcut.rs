//! Network cuts in the middle of data movement: `ferry run` talks to both test servers through
//! [`TcpProxy`]s that cut every connection at once or stall the bytes, and the result is checked
//! by exact digest (nothing lost, nothing duplicated).
//!
//! - Full load (MigrateType 2): both proxies are cut twice while chunks are being copied; the
//!   runner retries from the chunk checkpoints and the target equals the source.
//! - Replay (MigrateType 3) under a writer: the source proxy is cut, then the target proxy (a cut
//!   during a target transaction), then the source is stalled for 3 s; the applier reconnects and
//!   resumes from its checkpoint; counter = journal rows = distinct journal values = commits.
//!
//! Only databases named `fn_*` and jobs named `fn-*` are touched.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::*;
use ferry_testkit::child::FerryChild;
use ferry_testkit::exactly_once::{counter_writer, WriterStats};
use ferry_testkit::proxy::TcpProxy;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

/// `ferry run JOB --progress plain ARGS` with its output in files next to the job file.
fn spawn_run(job_path: &Path, name: &str, args: &[&str]) -> Result<FerryChild> {
    let dir = job_path.parent().context("job file directory")?;
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(job_path)
        .args(["--progress", "plain"])
        .args(args);
    FerryChild::spawn(cmd, dir, name)
}

/// A job whose source and target both go through the given proxies.
fn job_through(
    name: &str,
    db: &str,
    ferry_opts: Value,
    migrate_type: i64,
    src: &TcpProxy,
    dst: &TcpProxy,
) -> Value {
    let mut j = job(name, json!([{ "Database": db }]), ferry_opts, migrate_type);
    j["SrcInfo"]["Ip"] = json!("127.0.0.1");
    j["SrcInfo"]["Port"] = json!(src.port());
    j["DstInfo"]["Ip"] = json!("127.0.0.1");
    j["DstInfo"]["Port"] = json!(dst.port());
    j
}

async fn proxies() -> Result<(TcpProxy, TcpProxy)> {
    let (s, t) = (source(), target());
    Ok((
        TcpProxy::start((s.host.clone(), s.port)).await?,
        TcpProxy::start((t.host.clone(), t.port)).await?,
    ))
}

/// A count read directly on the target (0 while the table does not exist yet).
async fn target_count(sql: &str) -> Result<u64> {
    let mut t = connect(&target()).await?;
    Ok(scalar(&mut t, sql).await.unwrap_or(0))
}

const LOAD_DB: &str = "fn_load";
const LOAD_JOB: &str = "fn-load";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_load_through_cuts_is_exact() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, LOAD_DB).await?;
    drop_dbs(&mut t, &[LOAD_DB]).await?;
    exec(
        &mut s,
        &format!(
            "USE {LOAD_DB}; CREATE TABLE t (id INT PRIMARY KEY, k INT, c CHAR(100), KEY kk (k)); \
             INSERT INTO t SELECT seq, seq % 1000, MD5(seq) FROM seq_1_to_100000; \
             CREATE TABLE nokey (a INT, b VARCHAR(20)); \
             INSERT INTO nokey SELECT seq % 7, 'dup' FROM seq_1_to_5000"
        ),
    )
    .await?;
    for table in ["load_chunk", "load_job", "job_phase"] {
        let _ = exec(
            &mut t,
            &format!("DELETE FROM ferry_meta.{table} WHERE job = '{LOAD_JOB}'"),
        )
        .await;
    }
    let (sp, tp) = proxies().await?;
    let j = job_through(
        LOAD_JOB,
        LOAD_DB,
        json!({"Threads": 2, "ChunkRows": 2000, "RowsPerSecond": 20000}),
        2,
        &sp,
        &tp,
    );
    let path = write_job(LOAD_JOB, &j);
    let mut run = spawn_run(&path, LOAD_JOB, &["--restart"])?;

    let done_sql =
        format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{LOAD_JOB}' AND done = 1");
    let total_sql = format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{LOAD_JOB}'");
    // Only cut once load chunks are committed: the structure phase is not what this tests.
    let mut cuts = Vec::new();
    for (round, more) in [(1, 3u64), (2, 5u64)] {
        let base = if round == 1 {
            0
        } else {
            target_count(&done_sql).await?
        };
        wait_until(120, "more load chunks committed", || async {
            Ok(target_count(&done_sql).await? >= base + more)
        })
        .await?;
        run.assert_running()?;
        let (conns_s, conns_t) = (sp.connections(), tp.connections());
        sp.cut();
        tp.cut();
        let done = target_count(&done_sql).await?;
        let total = target_count(&total_sql).await?;
        assert!(
            done < total,
            "cut {round} happened mid-load ({done}/{total} chunks done)"
        );
        cuts.push((done, total));
        // The load comes back through the proxies (after the runner's back-off).
        wait_until(60, "the load to reconnect after the cut", || async {
            Ok(sp.connections() > conns_s && tp.connections() > conns_t)
        })
        .await?;
    }
    eprintln!("cuts at (done, total) chunks: {cuts:?}");

    let (status, out) = run.wait(300).await?;
    assert!(status.success(), "ferry run failed after the cuts:\n{out}");
    assert!(out.contains("retrying"), "the cut was met and retried:\n{out}");
    // The summary counts what this run copied over all its attempts: every row, none "resumed".
    assert!(
        out.contains("rows        105000 ("),
        "summary after retries:\n{out}"
    );
    assert!(
        out.contains("(0 resumed from an earlier run)"),
        "summary after retries:\n{out}"
    );
    assert_db_equal(LOAD_DB, LOAD_DB).await?;
    let done = target_count(&done_sql).await?;
    let total = target_count(&total_sql).await?;
    assert_eq!(done, total, "every chunk is done");
    drop_dbs(&mut s, &[LOAD_DB]).await?;
    drop_dbs(&mut t, &[LOAD_DB]).await?;
    Ok(())
}

const REPLAY_DB: &str = "fn_replay";
const REPLAY_JOB: &str = "fn-replay";

/// The replay checkpoint (file, pos) of the job, read directly on the target.
async fn replay_checkpoint() -> Result<Option<(String, u64)>> {
    let mut t = connect(&target()).await?;
    let r: Result<Option<(String, u64)>, _> = t
        .exec_first(
            "SELECT file, pos FROM ferry_meta.replay_checkpoint WHERE job = ?",
            (REPLAY_JOB,),
        )
        .await;
    Ok(r.unwrap_or(None))
}

/// Waits until the checkpoint moves past `after` (or exists, for `None`); returns the new one.
async fn checkpoint_past(
    after: Option<(String, u64)>,
    what: &str,
    run: &mut FerryChild,
) -> Result<(String, u64)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(c) = replay_checkpoint().await? {
            if after.as_ref().is_none_or(|a| c > *a) {
                return Ok(c);
            }
        }
        run.assert_running()?;
        if Instant::now() > deadline {
            bail!(
                "timed out waiting for the replay checkpoint to advance {what} (past {after:?}):\n{}",
                run.output()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the proxy has accepted more than `before` connections (ferry reconnected).
async fn reconnected(proxy: &TcpProxy, before: u64, side: &str, run: &mut FerryChild) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.connections() <= before {
        run.assert_running()?;
        if Instant::now() > deadline {
            bail!(
                "ferry did not reconnect to the {side} within 60 s:\n{}",
                run.output()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_through_cuts_and_a_stall_is_exactly_once() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, REPLAY_DB).await?;
    drop_dbs(&mut t, &[REPLAY_DB]).await?;
    exec(&mut s, &format!("USE {REPLAY_DB}; {EXACTLY_ONCE_TABLES}")).await?;
    let (sp, tp) = proxies().await?;
    let stop = Arc::new(AtomicBool::new(false));
    // Direct to the source, not through the proxy; bounded (~10 minutes) even if `stop` never comes.
    let stats = Arc::new(WriterStats::default());
    let w = counter_writer(
        source(),
        REPLAY_DB.into(),
        0,
        Duration::from_millis(3),
        200_000,
        stop.clone(),
        stats.clone(),
    );
    // Stop the writer however the test ends.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop_guard = StopOnDrop(stop.clone());

    let j = job_through(
        REPLAY_JOB,
        REPLAY_DB,
        json!({"Threads": 2, "ChunkRows": 5000}),
        3,
        &sp,
        &tp,
    );
    let path = write_job(REPLAY_JOB, &j);
    // Forget any earlier run of this job, so the waits below see only this run's checkpoint.
    for table in ["replay_checkpoint", "load_chunk", "load_job", "job_phase"] {
        let _ = exec(
            &mut t,
            &format!("DELETE FROM ferry_meta.{table} WHERE job = '{REPLAY_JOB}'"),
        )
        .await;
    }
    let mut run = spawn_run(&path, REPLAY_JOB, &["--restart", "--skip-check"])?;

    // The replay is streaming and committing: cut the source side.
    let cp = checkpoint_past(None, "at the start", &mut run).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cp = checkpoint_past(Some(cp), "before the source cut", &mut run).await?;
    let conns = sp.connections();
    sp.cut();
    eprintln!("source cut at checkpoint {cp:?}");
    // Events already buffered may still be applied: the proof of recovery is a new connection
    // and a checkpoint that moves after it.
    reconnected(&sp, conns, "source", &mut run).await?;
    let cp = replay_checkpoint().await?.unwrap_or(cp);
    let cp = checkpoint_past(Some(cp), "after the source cut", &mut run).await?;

    // A cut of the target side, most likely inside a target transaction (the writer commits
    // every few ms and each becomes one target transaction).
    let cp = checkpoint_past(Some(cp), "before the target cut", &mut run).await?;
    let conns = tp.connections();
    tp.cut();
    eprintln!("target cut at checkpoint {cp:?}");
    reconnected(&tp, conns, "target", &mut run).await?;
    let cp = replay_checkpoint().await?.unwrap_or(cp);
    let cp = checkpoint_past(Some(cp), "after the target cut", &mut run).await?;

    // A stall of the source side: nothing closes, the bytes wait 3 s.
    sp.stall(true);
    let conns_before_stall = (sp.connections(), tp.connections());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cp_in_stall = replay_checkpoint().await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cp_end_stall = replay_checkpoint().await?;
    sp.stall(false);
    // Evidence only (not asserted): with the source stalled the checkpoint should hold still.
    eprintln!("during the stall: checkpoint {cp_in_stall:?} -> {cp_end_stall:?}");
    let cp = checkpoint_past(Some(cp), "after the stall", &mut run).await?;
    eprintln!(
        "after the stall: checkpoint {cp:?}; connections (source, target) {conns_before_stall:?} -> {:?}",
        (sp.connections(), tp.connections())
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop.store(true, Ordering::SeqCst);
    w.await??;
    let total = stats.commits.load(Ordering::SeqCst);
    assert!(total > 0, "the writer committed");

    run.assert_running()?;
    let st = std::process::Command::new("kill")
        .args(["-USR1", &run.pid().to_string()])
        .status()?;
    assert!(st.success(), "kill -USR1");
    let (status, out) = run.wait(180).await?;
    assert!(status.success(), "ferry run failed:\n{out}");
    assert!(out.contains("final position"), "{out}");
    assert!(out.contains("retrying"), "the cuts were met and retried:\n{out}");

    assert_exactly_once(&mut t, REPLAY_DB, total, &out).await?;
    assert_db_equal(REPLAY_DB, REPLAY_DB).await?;
    drop_dbs(&mut s, &[REPLAY_DB]).await?;
    drop_dbs(&mut t, &[REPLAY_DB]).await?;
    Ok(())
}
