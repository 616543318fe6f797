//! `ferry verify` during the live replay of a MigrateType 3 job while a writer hammers three hot
//! rows on the source (back-to-back autocommit updates, no pause): the hot rows differ between the
//! two sides at almost any instant, so a single re-check after the replay fence would report
//! them. The row-level re-check rounds never report them (consistent, exit 0), while a planted
//! difference on the target, in the same chunk as the hot rows, is found exactly (exit 2, that
//! key and column only). Then cut-over (SIGUSR1) and equal digests. Only databases named
//! `fvl_hot*` are touched.

mod common;

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const DB: &str = "fvl_hot";
const JOB: &str = "fvl-hot";
const ROWS: u64 = 20_000;
/// The rows the writer hammers (all in the first chunk).
const HOT: [u64; 3] = [1, 2, 3];
/// A row the writer never touches, in the hot rows' chunk.
const PLANTED: u64 = 7;

/// Kills the `ferry run` child if the test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Back-to-back autocommit updates of the hot rows until `stop`.
fn hammer(stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let id = HOT[(i % HOT.len() as u64) as usize];
            i += 1;
            c.query_drop(format!(
                "UPDATE {DB}.t SET v = v + 1, s = MD5({i}) WHERE id = {id}"
            ))
            .await?;
            commits.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    })
}

/// `ferry verify PATH --json`: exit code and report.
fn verify_json(path: &std::path::Path) -> Result<(Option<i32>, Value)> {
    let out = ferry()
        .arg("verify")
        .arg(path)
        .arg("--json")
        .output()
        .context("running ferry verify")?;
    eprintln!("ferry verify: {}\n{}", out.status, text(&out));
    let report: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("ferry verify printed no JSON report: {}", text(&out)))?;
    Ok((out.status.code(), report))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_rows_under_live_replay_are_never_reported() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    for meta in ["replay_checkpoint", "job_phase"] {
        let n: u64 = scalar(
            &mut t,
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ferry_meta' AND TABLE_NAME = '{meta}'"
            ),
        )
        .await?;
        if n > 0 {
            t.exec_drop(format!("DELETE FROM ferry_meta.{meta} WHERE job = ?"), (JOB,))
                .await?;
        }
    }
    exec(
        &mut s,
        &format!(
            "USE {DB}; CREATE TABLE t (id INT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(64)); \
             INSERT INTO t SELECT seq, seq, MD5(seq) FROM seq_1_to_{ROWS}"
        ),
    )
    .await?;
    let path = write_job(
        JOB,
        &job(
            JOB,
            json!([{"Database": DB}]),
            json!({"Threads": 2, "ChunkRows": 2000}),
            3,
        ),
    );
    let log = std::env::temp_dir()
        .join(format!("ferry-cli-tests-{}", std::process::id()))
        .join(format!("{JOB}-run.log"));
    let child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut child = Guard(child);
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = hammer(stop.clone(), commits.clone());

    wait_until(180, "the replay to apply the writer's changes", || async {
        Ok(replay_checkpoint_ts(&mut connect(&target()).await?, JOB).await? > 0)
    })
    .await?;

    // Hot rows in flight during every verification: never reported.
    for round in 1..=3 {
        let before = commits.load(Ordering::SeqCst);
        wait_until(30, "the writer to commit", || {
            let n = commits.load(Ordering::SeqCst);
            async move { Ok(n >= before + 20) }
        })
        .await?;
        let (code, report) = verify_json(&path)?;
        let n0 = commits.load(Ordering::SeqCst);
        eprintln!(
            "round {round}: {} writer commits during the run; changing continuously: {}",
            n0 - before,
            report["tables"][0]["changing"]
        );
        assert_eq!(code, Some(0), "round {round}: {report:#}");
        assert_eq!(report["consistent"], json!(true), "round {round}: {report:#}");
        let table = &report["tables"][0];
        assert_eq!(
            (
                table["only_in_source"].clone(),
                table["only_in_target"].clone(),
                table["different"].clone()
            ),
            (json!(0), json!(0), json!(0)),
            "round {round}: {report:#}"
        );
    }

    // A real difference next to the hot rows, under the same load: found exactly.
    exec(
        &mut t,
        &format!("UPDATE {DB}.t SET s = 'planted' WHERE id = {PLANTED}"),
    )
    .await?;
    let (code, report) = verify_json(&path)?;
    assert_eq!(code, Some(2), "{report:#}");
    let table = &report["tables"][0];
    assert_eq!(
        (
            table["only_in_source"].clone(),
            table["only_in_target"].clone(),
            table["different"].clone()
        ),
        (json!(0), json!(0), json!(1)),
        "{report:#}"
    );
    assert_eq!(
        table["keys"],
        json!([{"kind": "different", "key": [PLANTED.to_string()], "columns": ["s"], "count": 1}]),
        "{report:#}"
    );
    exec(
        &mut t,
        &format!("UPDATE {DB}.t SET s = MD5({PLANTED}) WHERE id = {PLANTED}"),
    )
    .await?;

    // Cut-over: stop the writer, SIGUSR1, the job completes and both sides are equal.
    stop.store(true, Ordering::SeqCst);
    w.await??;
    let pid = child.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-USR1", &pid])
        .status()?;
    assert!(killed.success());
    let mut status = None;
    wait_until(180, "ferry run to complete after SIGUSR1", || {
        let done = child.0.try_wait();
        if let Ok(Some(s)) = &done {
            status = Some(*s);
        }
        async move { Ok(done?.is_some()) }
    })
    .await?;
    let status = status.context("exit status")?;
    assert!(
        status.success(),
        "ferry run: {status}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_db_equal(DB, DB).await?;
    let (code, report) = verify_json(&path)?;
    assert_eq!(code, Some(0), "{report:#}");
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}
