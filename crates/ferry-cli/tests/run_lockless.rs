//! `Ferry.SnapshotMode = lockless`: no global lock, one read view per chunk, while the source
//! writes (counter + journal transactions, and updates, deletes, inserts and primary-key updates
//! of random rows). Every chunk records its own binlog position; replay starts before the first
//! and applies idempotently up to the last, after which it is exactly-once.
//!
//! - full + incremental, with the exact positions of MariaDB (`Binlog_snapshot_file/position`) and
//!   with MySQL's method (binlog status bounds, forced by `FERRY_SNAPSHOT_POSITIONS=upper_bound`):
//!   `kill -9` during the lock-free copy, resume, complete; exactly once and every table equal;
//! - full only: the job replays the window between its chunks' positions before it finishes, so
//!   the target equals the source (whose writes stopped while the copy still ran).
//!
//! Only databases named `lk_*` are touched.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use ferry_testkit::exactly_once::{churn_writer, counter_writer, WriterStats, CHURN_TABLE};
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use serde_json::json;

async fn setup(db: &str) -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    drop_dbs(&mut t, &[db]).await?;
    exec(&mut s, &format!("USE {db}; {EXACTLY_ONCE_TABLES}; {CHURN_TABLE}")).await?;
    for table in ["load_chunk", "load_job", "job_phase", "replay_checkpoint"] {
        let _ = exec(
            &mut t,
            &format!(
                "DELETE FROM ferry_meta.{table} WHERE job = '{}'",
                db.replace('_', "-")
            ),
        )
        .await;
    }
    Ok(())
}

async fn chunks_done(job: &str) -> Result<u64> {
    let mut t = connect(&target()).await?;
    let exists: u64 = scalar(
        &mut t,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ferry_meta' AND TABLE_NAME = 'load_chunk'",
    )
    .await?;
    if exists == 0 {
        return Ok(0);
    }
    scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{job}' AND done = 1"),
    )
    .await
}

async fn distinct_chunk_positions(job: &str) -> Result<u64> {
    let mut t = connect(&target()).await?;
    scalar(
        &mut t,
        &format!(
            "SELECT COUNT(DISTINCT snapshot) FROM ferry_meta.load_chunk WHERE job = '{job}' AND done = 1"
        ),
    )
    .await
}

struct Writers {
    stop: Arc<AtomicBool>,
    counter: Arc<WriterStats>,
    churn: Arc<WriterStats>,
    handles: Vec<tokio::task::JoinHandle<Result<()>>>,
}

fn start_writers(db: &str) -> Writers {
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(WriterStats::default());
    let churn = Arc::new(WriterStats::default());
    let handles = vec![
        counter_writer(
            source(),
            db.into(),
            0,
            Duration::from_millis(2),
            u64::MAX,
            stop.clone(),
            counter.clone(),
        ),
        churn_writer(source(), db.into(), 7, stop.clone(), churn.clone()),
    ];
    Writers {
        stop,
        counter,
        churn,
        handles,
    }
}

impl Writers {
    async fn stop(self) -> Result<(u64, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.handles {
            h.await??;
        }
        Ok((
            self.counter.commits.load(Ordering::SeqCst),
            self.churn.commits.load(Ordering::SeqCst),
        ))
    }
}

fn spawn_ferry(
    path: &std::path::Path,
    args: &[&str],
    positions: Option<&str>,
) -> Result<std::process::Child> {
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(path)
        .args(["--progress", "plain", "--skip-check"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(p) = positions {
        cmd.env("FERRY_SNAPSHOT_POSITIONS", p);
    }
    Ok(cmd.spawn()?)
}

async fn full_incremental_with_kill(db: &str, positions: Option<&str>) -> Result<()> {
    let job_name = db.replace('_', "-");
    setup(db).await?;
    let writers = start_writers(db);
    let slow = job(
        &job_name,
        json!([{"Database": db}]),
        json!({"SnapshotMode": "lockless", "Threads": 2, "ChunkRows": 1000, "RowsPerSecond": 12000}),
        3,
    );
    let path = write_job(&format!("{job_name}-slow"), &slow);
    let mut child = spawn_ferry(&path, &["--restart"], positions)?;
    wait_until(180, "several lock-free chunks committed", || {
        let job = job_name.clone();
        async move { Ok(chunks_done(&job).await? >= 8) }
    })
    .await?;
    child.kill()?; // SIGKILL, mid-copy
    child.wait()?;
    let total: u64 = scalar(
        &mut connect(&target()).await?,
        &format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{job_name}'"),
    )
    .await?;
    let done = chunks_done(&job_name).await?;
    assert!(done < total, "the kill happened mid-copy ({done}/{total} chunks)");
    assert!(
        distinct_chunk_positions(&job_name).await? > 1,
        "the chunks were read in read views of their own, at different positions"
    );

    // Resume at full speed while the writers go on, then stop them and complete.
    let fast = job(
        &job_name,
        json!([{"Database": db}]),
        json!({"SnapshotMode": "lockless", "Threads": 2, "ChunkRows": 1000}),
        3,
    );
    let path = write_job(&format!("{job_name}-fast"), &fast);
    let mut child = spawn_ferry(&path, &[], positions)?;
    wait_until(180, "the load to finish on the resumed run", || {
        let job = job_name.clone();
        async move { Ok(chunks_done(&job).await? >= total) }
    })
    .await?;
    child.kill()?; // SIGKILL again, around the start of the replay window
    child.wait()?;
    let (commits, churned) = writers.stop().await?;
    assert!(
        commits > 50 && churned > 50,
        "{commits} counter and {churned} churn transactions"
    );

    let mut cmd = ferry();
    cmd.arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--skip-check", "--complete-when-caught-up"]);
    if let Some(p) = positions {
        cmd.env("FERRY_SNAPSHOT_POSITIONS", p);
    }
    let out = cmd.output()?;
    let o = text(&out);
    assert!(out.status.success(), "{o}");
    let mut t = connect(&target()).await?;
    assert_exactly_once(&mut t, db, commits, &o).await?;
    assert_db_equal(db, db).await?;
    drop_dbs(&mut connect(&source()).await?, &[db]).await?;
    drop_dbs(&mut t, &[db]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockless_exact_positions_kill_9_then_exact() -> Result<()> {
    full_incremental_with_kill("lk_exact", None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockless_upper_bounds_as_on_mysql_kill_9_then_exact() -> Result<()> {
    full_incremental_with_kill("lk_bounds", Some("upper_bound")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockless_full_only_replays_its_window() -> Result<()> {
    let db = "lk_full";
    let job_name = "lk-full";
    setup(db).await?;
    let writers = start_writers(db);
    let j = job(
        job_name,
        json!([{"Database": db}]),
        json!({"SnapshotMode": "lockless", "Threads": 2, "ChunkRows": 1000, "RowsPerSecond": 12000}),
        2,
    );
    let path = write_job(job_name, &j);
    let child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--restart", "--progress", "plain", "--skip-check"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // The writers stop while the copy still runs: the chunks read after that are at the
    // source's final state, the earlier ones are brought there by the window's replay.
    wait_until(180, "a third of the chunks committed", || async {
        Ok(chunks_done(job_name).await? >= 16)
    })
    .await?;
    let (commits, _) = writers.stop().await?;
    let out = child.wait_with_output()?;
    let o = text(&out);
    assert!(out.status.success(), "{o}");
    assert!(
        distinct_chunk_positions(job_name).await? > 1,
        "chunks at different positions\n{o}"
    );
    let mut t = connect(&target()).await?;
    assert_exactly_once(&mut t, db, commits, &o).await?;
    assert_db_equal(db, db).await?;
    drop_dbs(&mut connect(&source()).await?, &[db]).await?;
    drop_dbs(&mut t, &[db]).await?;
    Ok(())
}
