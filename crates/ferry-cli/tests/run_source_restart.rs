//! `ferry run` with MigrateType 3 across a restart of the *source* server: the replay reconnects
//! and resumes from its checkpoint, exactly once.
//!
//! The shared test servers are never restarted (other tests use them concurrently): the test starts
//! its own source instance with `scripts/servers.sh start-one restart-src` (binlog ROW/FULL, GTID
//! strict), replicates it into the shared target, restarts it (`stop-one` + `start-one`, same
//! port) while a writer commits counter + journal transactions, then completes with SIGUSR1.
//! The writer reconnects after the restart; a commit whose outcome is unknown (the connection
//! dropped) is resolved by reading the counter after reconnecting, so `commits` counts exactly
//! the transactions that committed. Only databases named `fsr_*` are touched.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use ferry_testkit::exactly_once::{counter_writer, WriterStats};
use ferry_testkit::instance::Instance;
use ferry_testkit::{connect, db_digest, drop_dbs, exec, fresh_db, scalar, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "fsr_restart";
const JOB: &str = "fsr-restart";
const INSTANCE: &str = "restart-src";

/// Kills the `ferry run` child if the test fails before it exits.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn read_log(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The counter as replayed on the target (0 while the table is not there yet).
async fn target_counter() -> Result<u64> {
    let mut t = connect(&target()).await?;
    let v: Option<u64> = t
        .query_first(format!(
            "SELECT n FROM {DB}.counter WHERE id = 1 AND EXISTS \
             (SELECT 1 FROM ferry_meta.replay_checkpoint WHERE job = '{JOB}')"
        ))
        .await
        .unwrap_or(None);
    Ok(v.unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_across_a_source_restart() -> Result<()> {
    let instance = Instance::start(INSTANCE).await?;
    let src = instance.endpoint()?;

    let mut s = connect(&src).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(&mut s, &format!("USE {DB}; {EXACTLY_ONCE_TABLES}")).await?;
    drop(s);

    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WriterStats::default());
    let w = counter_writer(
        src.clone(),
        DB.into(),
        0,
        Duration::from_millis(3),
        u64::MAX,
        stop.clone(),
        stats.clone(),
    );
    let commits = &stats.commits;

    let mut j = job(
        JOB,
        json!([{"Database": DB}]),
        json!({"Threads": 2, "ChunkRows": 5000}),
        3,
    );
    j["SrcInfo"] =
        json!({"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()});
    let path = write_job(JOB, &j);
    let log_dir = path.parent().context("job file directory")?.to_path_buf();
    let out_log = log_dir.join(format!("{JOB}.stdout"));
    let err_log = log_dir.join(format!("{JOB}.stderr"));
    let mut child = ChildGuard(
        ferry()
            .arg("run")
            .arg(&path)
            .args(["--progress", "plain", "--restart", "--skip-check"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_log)?)
            .stderr(std::fs::File::create(&err_log)?)
            .spawn()?,
    );
    let pid = child.0.id();
    let logs = || {
        format!(
            "--- ferry stdout\n{}\n--- ferry stderr\n{}",
            read_log(&out_log),
            read_log(&err_log)
        )
    };

    // The replay runs and has applied changes.
    wait_until(120, "the replay checkpoint to advance", || {
        let ep = target();
        async move {
            let mut t = connect(&ep).await?;
            Ok(replay_checkpoint_ts(&mut t, JOB).await? > 0)
        }
    })
    .await
    .with_context(logs)?;
    let before = commits.load(Ordering::SeqCst);
    wait_until(
        120,
        "the replay to apply writes made after it started",
        move || async move { Ok(target_counter().await? > before) },
    )
    .await
    .with_context(logs)?;

    // Restart the source under the writer and the replay; same port.
    instance.restart().await?; // fails unless the restarted source kept its port

    // The writer is back and the replay applies what was written after the restart.
    let at_restart = commits.load(Ordering::SeqCst);
    wait_until(120, "the writer to commit after the restart", || {
        let c = stats.clone();
        async move { Ok(c.commits.load(Ordering::SeqCst) > at_restart + 200) }
    })
    .await
    .with_context(logs)?;
    let mark = commits.load(Ordering::SeqCst);
    wait_until(
        180,
        "the replay to apply writes made after the restart",
        move || async move { Ok(target_counter().await? >= mark) },
    )
    .await
    .with_context(logs)?;

    stop.store(true, Ordering::SeqCst);
    w.await??;
    let total = commits.load(Ordering::SeqCst);
    eprintln!(
        "writer: {total} commits, {} interrupted transactions",
        stats.errors.load(Ordering::SeqCst)
    );

    // Complete (cut over) and wait for the child to exit.
    let kill = Command::new("kill").args(["-USR1", &pid.to_string()]).status()?;
    assert!(kill.success(), "kill -USR1 {pid}");
    wait_until(180, "ferry run to complete after SIGUSR1", || {
        let exited = child.0.try_wait().map(|s| s.is_some());
        async move { Ok(exited?) }
    })
    .await
    .with_context(logs)?;
    let status = child.0.wait()?;
    let o = logs();
    eprintln!("ferry run: {status}\n{o}");
    assert!(status.success(), "ferry run exited with {status}\n{o}");
    assert!(o.contains("final position"), "{o}");
    // The replay saw the restart: the summary counts its reconnects.
    let reconnects: u64 = o
        .split(" reconnects)")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no reconnect count in the summary\n{o}"))?;
    assert!(reconnects >= 1, "the replay reconnected after the restart\n{o}");

    assert_exactly_once(&mut t, DB, total, &o).await?;

    let mut s = connect(&src).await?;
    let sn: u64 = scalar(&mut s, &format!("SELECT n FROM {DB}.counter WHERE id = 1")).await?;
    assert_eq!(sn, total, "source counter = writer commits");
    let a = db_digest(&mut s, DB).await?;
    let b = db_digest(&mut t, DB).await?;
    assert!(!a.is_empty(), "source database {DB} has no tables");
    assert_eq!(a, b, "source {DB} and target {DB} differ\n{o}");

    drop(s);
    drop(t);
    drop(child);
    drop(instance);
    Ok(())
}
