//! MariaDB XA transactions during replay: a prepared transaction reaches the target atomically
//! when the source commits it (never before), nothing of it when it rolls back, one-phase XA
//! commits like a plain transaction, and an abort of the applier (kill) between XA PREPARE and
//! XA COMMIT loses and repeats nothing.
//!
//! The source is an instance of its own (`scripts/servers.sh start-one h_xa`): a transaction
//! left prepared across a replay's start stops that replay by design, so these tests keep their
//! XA transactions out of the shared source's binlog, which other tests replay.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_core::progress::ProgressSink;
use ferry_core::Endpoint;
use ferry_replay::apply::checkpoint;
use ferry_replay::{run_replay, BinlogPos, ReplayControl, ReplayError, ReplayOptions, ReplaySummary};
use ferry_testkit as tk;
use mysql_async::Conn;
use support::*;
use tokio::task::JoinHandle;

const SCHEMA: &str = "CREATE TABLE x (id INT PRIMARY KEY, v VARCHAR(20), n INT);
CREATE TABLE y (u UUID NOT NULL PRIMARY KEY, n INT);";

/// One test at a time: a transaction one test leaves prepared across another's start would stop
/// the other's replay (by design).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The XA tests' own source instance (started once, left running for the next runs).
async fn xa_source() -> Result<Endpoint> {
    let url = tokio::task::spawn_blocking(|| -> Result<String> {
        let script = tk::repo_root().join("scripts/servers.sh");
        for args in [&["start-one", "h_xa"][..], &["url", "h_xa"][..]] {
            let out = Command::new("bash").arg(&script).args(args).output()?;
            if !out.status.success() {
                bail!("servers.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            if args[0] == "url" {
                return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
            }
        }
        unreachable!()
    })
    .await??;
    Endpoint::from_url(&url).map_err(|e| anyhow::anyhow!("{url}: {e}"))
}

/// Fresh `db` with [`SCHEMA`] on the XA source and on the shared target.
async fn prepare_xa(src: &Endpoint, db: &str) -> Result<(Conn, Conn)> {
    let mut s = tk::connect(src).await?;
    let mut t = tk::connect(&tk::target()).await?;
    tk::fresh_db(&mut s, db).await?;
    tk::fresh_db(&mut t, db).await?;
    tk::exec(&mut s, &format!("USE {db}; {SCHEMA}")).await?;
    tk::exec(&mut t, &format!("USE {db}; {SCHEMA}")).await?;
    Ok((s, t))
}

type Task = JoinHandle<Result<ReplaySummary, ReplayError>>;

/// Starts (with `start`: under a fresh checkpoint) or resumes (`None`) a replay of `db`.
async fn replay(
    src: &Endpoint,
    job: &str,
    db: &str,
    start: Option<BinlogPos>,
) -> Result<(ReplayControl, Task)> {
    let mut opts = ReplayOptions::new(job);
    if let Some(p) = start {
        let mut t = tk::connect(&tk::target()).await?;
        checkpoint::clear(&mut t, job).await?;
        opts.start = Some(p);
    }
    opts.progress_every = Duration::from_millis(250);
    let control = ReplayControl::new();
    let c2 = control.clone();
    let sel = selection(&[(db, db)]);
    let sink: ProgressSink = Arc::new(|_| {});
    let src = src.clone();
    let task = tokio::spawn(async move { run_replay(&src, &tk::target(), &sel, opts, sink, c2).await });
    Ok((control, task))
}

async fn complete(control: ReplayControl, task: Task) -> Result<ReplaySummary> {
    control.complete();
    let summary = tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .context("no completion within 120 s")???;
    assert!(summary.completed);
    Ok(summary)
}

async fn same(src: &Endpoint, db: &str) -> Result<()> {
    let mut s = tk::connect(src).await?;
    let mut t = tk::connect(&tk::target()).await?;
    let a = tk::db_digest(&mut s, db).await?;
    let b = tk::db_digest(&mut t, db).await?;
    assert_eq!(a, b, "source and target {db} differ");
    Ok(())
}

/// Rolls back XA transactions a failed earlier run left prepared on the source (they survive
/// their session and would hold their locks against the next run's DROP DATABASE).
async fn forget_prepared(src: &Endpoint, names: &[&str]) -> Result<()> {
    let mut s = tk::connect(src).await?;
    let rows: Vec<(i64, i64, i64, Vec<u8>)> =
        mysql_async::prelude::Queryable::query(&mut s, "XA RECOVER").await?;
    for (_, gl, _, data) in rows {
        let gtrid = String::from_utf8_lossy(&data[..gl as usize]).into_owned();
        if names.contains(&gtrid.as_str()) {
            tk::exec(&mut s, &format!("XA ROLLBACK '{gtrid}'")).await?;
        }
    }
    Ok(())
}

async fn count(t: &mut mysql_async::Conn, sql: &str) -> Result<i64> {
    tk::scalar(t, sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_commits_atomically_rollbacks_vanish_and_one_phase_applies() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let src = xa_source().await?;
    forget_prepared(&src, &["order-1", "gone", "two"]).await?;
    let (mut s, mut t) = prepare_xa(&src, "fx_xa").await?;
    let pos = master_pos(&mut s).await?;
    let (control, task) = replay(&src, "fx-xa", "fx_xa", Some(pos)).await?;
    let mut other = tk::connect(&src).await?;
    // prepared, then an unrelated transaction commits, then the XA commits
    tk::exec(
        &mut s,
        "USE fx_xa; XA START 'order-1', 'branch', 7; \
         INSERT INTO x SELECT seq, CONCAT('xa', seq), seq FROM seq_1_to_300; \
         UPDATE x SET n = -n WHERE id <= 10; DELETE FROM x WHERE id = 300; \
         INSERT INTO y VALUES ('11223344-5566-1788-9900-aabbccddeeff', 1); \
         XA END 'order-1', 'branch', 7; XA PREPARE 'order-1', 'branch', 7",
    )
    .await?;
    tk::exec(&mut other, "INSERT INTO fx_xa.x VALUES (1000, 'plain', 1)").await?;
    tk::wait_until(60, "the plain insert replayed", || async {
        let mut t = tk::connect(&tk::target()).await?;
        Ok(count(&mut t, "SELECT COUNT(*) FROM fx_xa.x WHERE id = 1000").await? == 1)
    })
    .await?;
    assert_eq!(
        count(&mut t, "SELECT COUNT(*) FROM fx_xa.x WHERE id < 1000").await?,
        0,
        "the prepared XA transaction is not on the target before it commits"
    );
    tk::exec(&mut s, "XA COMMIT 'order-1', 'branch', 7").await?;
    // rolled back after its prepare; an XA committed in one phase; an empty-bqual XA
    tk::exec(
        &mut s,
        "XA START 'gone'; INSERT INTO fx_xa.x VALUES (2000, 'never', 0); XA END 'gone'; XA PREPARE 'gone'; XA ROLLBACK 'gone'; \
         XA START 'one'; INSERT INTO fx_xa.x VALUES (3000, 'one phase', 3); XA END 'one'; XA COMMIT 'one' ONE PHASE; \
         XA START 'two'; UPDATE fx_xa.x SET v = 'second' WHERE id = 1000; XA END 'two'; XA PREPARE 'two'",
    )
    .await?;
    // a prepared transaction outlives its session: committed from another one
    s.disconnect().await?;
    // (the server detaches it from the closed session asynchronously)
    tk::wait_until(60, "XA COMMIT 'two' from another session", || async {
        let mut o = tk::connect(&src).await?;
        Ok(tk::exec(&mut o, "XA COMMIT 'two'").await.is_ok())
    })
    .await?;
    complete(control, task).await?;
    same(&src, "fx_xa").await?;
    assert_eq!(
        count(&mut t, "SELECT COUNT(*) FROM fx_xa.x WHERE id = 2000").await?,
        0
    );
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM fx_xa.x").await?, 299 + 1 + 1);
    // (other tests' XA transactions, prepared while this replay ran, may be kept for this job too)
    let left: i64 = count(
        &mut t,
        "SELECT COUNT(*) FROM ferry_meta.replay_xa WHERE job = 'fx-xa' AND xid IN \
         (\"X'6f726465722d31',X'6272616e6368',7\", \"X'676f6e65',X'',1\", \"X'74776f',X'',1\")",
    )
    .await?;
    assert_eq!(left, 0, "completed XA transactions leave nothing behind");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_xa_prepare_and_xa_commit_loses_and_repeats_nothing() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let src = xa_source().await?;
    forget_prepared(&src, &["k1", "k2"]).await?;
    let (mut s, mut t) = prepare_xa(&src, "fx_xa_kill").await?;
    let pos = master_pos(&mut s).await?;
    let (_control, task) = replay(&src, "fx-xa-kill", "fx_xa_kill", Some(pos)).await?;
    tk::exec(
        &mut s,
        "USE fx_xa_kill; XA START 'k1'; INSERT INTO x SELECT seq, 'k', seq FROM seq_1_to_5000; \
         XA END 'k1'; XA PREPARE 'k1'",
    )
    .await?;
    let mut other = tk::connect(&src).await?;
    tk::exec(
        &mut other,
        "INSERT INTO fx_xa_kill.x VALUES (9000, 'after', 9000)",
    )
    .await?;
    // the prepare is stored and checkpointed, the later transaction applied
    tk::wait_until(
        60,
        "the prepare stored and the next transaction applied",
        || async {
            let mut t = tk::connect(&tk::target()).await?;
            Ok(count(&mut t, "SELECT COUNT(*) FROM fx_xa_kill.x WHERE id = 9000").await? == 1)
        },
    )
    .await?;
    // the marker and the rows events of the 5000 prepared rows are kept on the target
    let stored = count(
        &mut t,
        "SELECT COUNT(*) FROM ferry_meta.replay_xa WHERE job = 'fx-xa-kill' AND xid = \"X'6b31',X'',1\"",
    )
    .await?;
    assert!(stored >= 2, "{stored} rows stored");
    // kill: the applier vanishes at whatever await it is in
    task.abort();
    let _ = task.await;
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM fx_xa_kill.x").await?, 1);
    tk::exec(&mut s, "XA COMMIT 'k1'").await?;
    // a second prepared transaction, killed again right after its prepare reached the target
    let (control, task) = replay(&src, "fx-xa-kill", "fx_xa_kill", None).await?;
    tk::wait_until(60, "the XA commit applied after the restart", || async {
        let mut t = tk::connect(&tk::target()).await?;
        Ok(count(&mut t, "SELECT COUNT(*) FROM fx_xa_kill.x").await? == 5001)
    })
    .await?;
    tk::exec(
        &mut s,
        "XA START 'k2'; UPDATE fx_xa_kill.x SET n = n + 1 WHERE id <= 2500; DELETE FROM fx_xa_kill.x WHERE id > 4990 AND id < 9000; \
         XA END 'k2'; XA PREPARE 'k2'",
    )
    .await?;
    tk::wait_until(60, "the second prepare stored", || async {
        let mut t = tk::connect(&tk::target()).await?;
        Ok(count(
            &mut t,
            "SELECT COUNT(*) FROM ferry_meta.replay_xa WHERE job = 'fx-xa-kill' AND xid = \"X'6b32',X'',1\"",
        )
        .await?
            > 0)
    })
    .await?;
    task.abort();
    let _ = task.await;
    drop(control);
    assert_eq!(
        count(&mut t, "SELECT COUNT(*) FROM fx_xa_kill.x WHERE n <> id").await?,
        0
    );
    tk::exec(&mut s, "XA COMMIT 'k2'").await?;
    let (control, task) = replay(&src, "fx-xa-kill", "fx_xa_kill", None).await?;
    complete(control, task).await?;
    same(&src, "fx_xa_kill").await?;
    assert_eq!(
        count(&mut t, "SELECT COUNT(*) FROM fx_xa_kill.x WHERE n = id + 1").await?,
        2500
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xa_prepared_before_the_start_is_refused_by_name_at_its_commit() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let src = xa_source().await?;
    forget_prepared(&src, &["early"]).await?;
    let (mut s, _t) = prepare_xa(&src, "fx_xa_early").await?;
    tk::exec(
        &mut s,
        "USE fx_xa_early; XA START 'early'; INSERT INTO x VALUES (1, 'e', 1); XA END 'early'; XA PREPARE 'early'",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let (_control, task) = replay(&src, "fx-xa-early", "fx_xa_early", Some(pos)).await?;
    tk::exec(&mut s, "XA COMMIT 'early'").await?;
    let e = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .context("the replay did not stop")??
        .expect_err("an XA COMMIT without its prepare must stop the replay");
    let msg = e.to_string();
    assert!(
        msg.contains("XA COMMIT X'6561726c79',X'',1") && msg.contains("before the position"),
        "{msg}"
    );
    assert_eq!(e.kind(), ferry_core::ErrorKind::Definite);
    Ok(())
}
