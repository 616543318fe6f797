//! Fencing through the target (`ferry run --epoch N`, the hook a cluster's nodes use): a
//! MigrateType 3 run at epoch 1 under the exactly-once writer is frozen (a `stop` fault point:
//! SIGSTOP in the middle of an open target transaction) during the incremental phase, or in the
//! middle of a full-load chunk; a second run of the same job at epoch 2 takes over; the first is
//! continued (SIGCONT) and exits with the fencing error, its open transaction rolled back; the
//! second cuts over and the counter, the journal and the writer's commits agree, the digests are
//! equal. Then a run at epoch 1 is refused at its start and changes nothing. Only databases
//! named `fa_fence_*` are touched.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::*;
use ferry_testkit::child::FerryChild;
use ferry_testkit::exactly_once::{counter_writer, WriterStats};
use ferry_testkit::{connect, drop_dbs, exec, forget_job, fresh_db, scalar, source, target, wait_until};
use serde_json::json;

/// What the refused run says (epochs 1 and 2).
const REFUSAL: &str =
    "this node's claim (epoch 1) is older than the target's (epoch 2): another node owns the job";

/// `ferry_meta` tables an earlier run of the job may have left rows in.
const META: &[&str] = &[
    "load_chunk",
    "load_job",
    "job_phase",
    "replay_checkpoint",
    "job_epoch",
];

async fn stored_epoch(job: &str) -> Result<u64> {
    let mut t = connect(&target()).await?;
    Ok(scalar::<Option<u64>>(
        &mut t,
        &format!("SELECT MAX(epoch) FROM ferry_meta.job_epoch WHERE job = '{job}'"),
    )
    .await?
    .unwrap_or(0))
}

fn spawn_run(
    path: &PathBuf,
    name: &str,
    epoch: u64,
    extra: &[&str],
    faults: Option<&str>,
) -> Result<FerryChild> {
    let dir = path.parent().context("the job file's directory")?.to_path_buf();
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(path)
        .args([
            "--progress",
            "plain",
            "--skip-check",
            "--epoch",
            &epoch.to_string(),
        ])
        .args(extra);
    if let Some(f) = faults {
        cmd.env(ferry_core::fault::ENV, f);
    }
    FerryChild::spawn(cmd, &dir, name)
}

/// The takeover: epoch 1 frozen at `fault`, epoch 2 started, epoch 1 continued and fenced, epoch
/// 2 completed; exactly once and equal digests. Returns the job file.
async fn takeover(db: &str, job_name: &str, fault: &str) -> Result<PathBuf> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    drop_dbs(&mut t, &[db]).await?;
    forget_job(&mut t, job_name, META).await?;
    exec(&mut s, &format!("USE {db}; {EXACTLY_ONCE_TABLES}")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WriterStats::default());
    let writer = counter_writer(
        source(),
        db.into(),
        0,
        Duration::from_millis(3),
        u64::MAX,
        stop.clone(),
        stats.clone(),
    );
    let commits = {
        let stats = stats.clone();
        move || stats.commits.load(Ordering::SeqCst)
    };
    let more = |n: u64| {
        let (from, commits) = (commits(), commits.clone());
        async move {
            wait_until(120, "the writer to commit more", || {
                let c = commits();
                async move { Ok(c >= from + n) }
            })
            .await
        }
    };

    let path = write_job(
        job_name,
        &job(
            job_name,
            json!([{"Database": db}]),
            json!({"Threads": 2, "ChunkRows": 5000}),
            3,
        ),
    );
    // Epoch 1, frozen with an open target transaction (its rows written, COMMIT not sent).
    let mut first = spawn_run(
        &path,
        &format!("{job_name}-epoch1"),
        1,
        &["--restart"],
        Some(fault),
    )?;
    first.wait_stopped(240).await?;
    ensure!(stored_epoch(job_name).await? == 1, "epoch 1 recorded");
    more(100).await?;

    // Epoch 2 takes over (its claim does not wait for the frozen node).
    let mut second = spawn_run(&path, &format!("{job_name}-epoch2"), 2, &[], None)?;
    wait_until(120, "epoch 2 recorded on the target", || async {
        Ok(stored_epoch(job_name).await? == 2)
    })
    .await?;
    second.assert_running()?;

    // The frozen node wakes up: its commit is refused, rolled back, and it exits.
    first.signal("CONT")?;
    let (status, out) = first.wait(120).await?;
    ensure!(!status.success(), "the fenced run must fail:\n{out}");
    ensure!(out.contains(REFUSAL), "the fencing error:\n{out}");

    // The new owner applies the writer's changes, then cuts over.
    wait_until(240, "epoch 2 to replay", || async {
        Ok(replay_checkpoint_ts(&mut connect(&target()).await?, job_name).await? > 0)
    })
    .await?;
    more(100).await?;
    stop.store(true, Ordering::SeqCst);
    writer.await??;
    let total = commits();
    second.assert_running()?;
    second.signal("USR1")?;
    let (status, out) = second.wait(300).await?;
    ensure!(status.success(), "epoch 2 completes:\n{out}");
    assert_exactly_once(&mut t, db, total, &out).await?;
    assert_db_equal(db, db).await?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_owner_during_replay_is_fenced_and_old_epoch_refused() -> Result<()> {
    const DB: &str = "fa_fence_replay";
    const JOB: &str = "fa-fence-replay";
    let path = takeover(DB, JOB, "replay.before_commit=stop@20").await?;

    // A run at the older epoch is refused at its start and changes nothing.
    let mut t = connect(&target()).await?;
    let before = ferry_testkit::db_digest(&mut t, DB).await?;
    let old = run(&path, &["--skip-check", "--epoch", "1"]);
    ensure!(!old.status.success(), "epoch 1 after epoch 2 is refused");
    ensure!(text(&old).contains(REFUSAL), "{}", text(&old));
    ensure!(stored_epoch(JOB).await? == 2, "the target keeps epoch 2");
    ensure!(
        ferry_testkit::db_digest(&mut t, DB).await? == before,
        "nothing changed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_owner_mid_chunk_is_fenced() -> Result<()> {
    takeover("fa_fence_load", "fa-fence-load", "load.chunk_written=stop@2").await?;
    Ok(())
}
