//! Resume and flow control: a load killed mid-chunk resumes from its checkpoints without loss or
//! duplicates; a throttle changed while the load runs does not disturb it.

mod common;

use std::sync::Arc;

use anyhow::Result;
use common::*;
use ferry_core::progress::{null_sink, ProgressEvent};
use ferry_core::throttle::Throttle;
use ferry_load::{has_checkpoints, run_full_load, WriteMethod};
use ferry_testkit::{exec, scalar, source, target, wait_until};

async fn sysbench_like(db: &str, dst_db: &str, rows: u64) -> Result<()> {
    let (mut src, mut dst) = conns().await?;
    fresh_both(&mut src, &mut dst, db, dst_db).await?;
    exec(
        &mut src,
        &format!(
            "USE {db};
             CREATE TABLE sbtest (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,
               c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k));
             INSERT INTO sbtest SELECT seq, FLOOR(RAND() * {rows}), REPEAT(MD5(seq), 3), LEFT(REPEAT(SHA1(seq), 2), 60)
               FROM seq_1_to_{rows};"
        ),
    )
    .await?;
    copy_tables(&mut src, &mut dst, db, dst_db, &["sbtest"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_load_resumes_exactly_once() -> Result<()> {
    let (db, dst_db, job) = ("fl_resume", "fl_resume_dst", "fl-resume");
    sysbench_like(db, dst_db, 200_000).await?;
    let (mut src, mut dst) = conns().await?;
    let tasks = tasks(&mut src, db, dst_db, &["sbtest"]).await?;
    let mut opts = opts(job, 2, 10_000, WriteMethod::Auto).await?;
    assert!(!has_checkpoints(&target(), job).await?);
    opts.throttle = Arc::new(Throttle::new(30_000, 0));
    let (t2, o2) = (tasks.clone(), opts.clone());
    let run = tokio::spawn(async move { run_full_load(&source(), &target(), t2, o2, null_sink()).await });

    let pool = target().pool(2, vec![]);
    let done_sql = format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{job}' AND done = 1");
    wait_until(120, "three chunks done", || {
        let (pool, sql) = (pool.clone(), done_sql.clone());
        async move { Ok(pooled_u64(&pool, &sql).await? >= 3) }
    })
    .await?;
    run.abort();
    assert!(run.await.is_err(), "the load was cancelled");
    assert!(has_checkpoints(&target(), job).await?);

    // Once the server has rolled back the killed connections' transactions, the target holds
    // exactly the rows of the chunks marked done.
    let rows_sql = format!(
        "SELECT (SELECT COUNT(*) FROM {dst_db}.sbtest) = \
         (SELECT COALESCE(SUM(`rows`), 0) FROM ferry_meta.load_chunk WHERE job = '{job}' AND done = 1)"
    );
    wait_until(60, "the aborted transactions to roll back", || {
        let (pool, sql) = (pool.clone(), rows_sql.clone());
        async move { Ok(pooled_u64(&pool, &sql).await? == 1) }
    })
    .await?;
    let done_before: u64 = scalar(&mut dst, &done_sql).await?;
    assert!(done_before < 21, "the kill came before the end");
    let rows_before: u64 = scalar(
        &mut dst,
        &format!(
            "SELECT COALESCE(SUM(`rows`), 0) FROM ferry_meta.load_chunk WHERE job = '{job}' AND done = 1"
        ),
    )
    .await?;

    opts.throttle = Arc::new(Throttle::new(0, 0));
    let (sink, events) = recorder();
    let summary = run_full_load(&source(), &target(), tasks, opts, sink).await?;
    assert!(summary.chunks_resumed >= 3, "{summary:?}");
    assert_eq!(summary.chunks + summary.chunks_resumed, 21, "{summary:?}");
    // The table's plan as the resumed run reports it (the console's per-table list): the chunks
    // and rows the target's checkpoints hold as done, then this run's chunks make up the rest.
    let events = events.lock().map(|e| e.clone()).unwrap_or_default();
    let planned: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::TablePlanned {
                table,
                chunks,
                chunks_done,
                rows_done,
                ..
            } => Some((table.clone(), *chunks, *chunks_done, *rows_done)),
            _ => None,
        })
        .collect();
    assert_eq!(
        planned,
        vec![(format!("{db}.sbtest"), 21, done_before, rows_before)]
    );
    let copied: u64 = events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::ChunkDone { rows, .. } => Some(*rows),
            _ => None,
        })
        .sum();
    assert_eq!(rows_before + copied, 200_000, "no row counted twice or missed");
    assert_same(&mut src, &mut dst, db, dst_db, "sbtest").await?;
    let (n, distinct): (u64, u64) = (
        scalar(&mut dst, &format!("SELECT COUNT(*) FROM {dst_db}.sbtest")).await?,
        scalar(
            &mut dst,
            &format!("SELECT COUNT(DISTINCT id) FROM {dst_db}.sbtest"),
        )
        .await?,
    );
    assert_eq!((n, distinct), (200_000, 200_000));
    let finished: u64 = scalar(
        &mut dst,
        &format!("SELECT COUNT(*) FROM ferry_meta.load_job WHERE job = '{job}' AND finished_at IS NOT NULL"),
    )
    .await?;
    assert_eq!(finished, 1);

    // A third run finds nothing to do and reuses the stored snapshot.
    let again = run_full_load(
        &source(),
        &target(),
        tasks_again(&mut src, db, dst_db).await?,
        opts_for(job),
        null_sink(),
    )
    .await?;
    assert_eq!((again.chunks, again.chunks_resumed), (0, 21));
    ferry_load::clear_checkpoints(&target(), job).await?;
    assert!(!has_checkpoints(&target(), job).await?);
    Ok(())
}

async fn tasks_again(
    src: &mut mysql_async::Conn,
    db: &str,
    dst_db: &str,
) -> Result<Vec<ferry_load::TableTask>> {
    tasks(src, db, dst_db, &["sbtest"]).await
}

fn opts_for(job: &str) -> ferry_load::LoadOptions {
    let mut o = ferry_load::LoadOptions::new(job);
    o.chunk_rows = 10_000;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_changed_while_running() -> Result<()> {
    let (db, dst_db, job) = ("fl_throttle", "fl_throttle_dst", "fl-throttle");
    sysbench_like(db, dst_db, 60_000).await?;
    let (mut src, mut dst) = conns().await?;
    let tasks = tasks(&mut src, db, dst_db, &["sbtest"]).await?;
    let mut opts = opts(job, 2, 5_000, WriteMethod::Insert).await?;
    let throttle = Arc::new(Throttle::new(5_000, 0));
    opts.throttle = throttle.clone();
    let run =
        tokio::spawn(async move { run_full_load(&source(), &target(), tasks, opts, null_sink()).await });
    let pool = target().pool(2, vec![]);
    let done_sql = format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{job}' AND done = 1");
    wait_until(120, "a chunk done", || {
        let (pool, sql) = (pool.clone(), done_sql.clone());
        async move { Ok(pooled_u64(&pool, &sql).await? >= 1) }
    })
    .await?;
    throttle.set_limits(0, 50_000_000);
    let summary = run.await??;
    assert_eq!(summary.rows, 60_000);
    assert_eq!(summary.write_method, WriteMethod::Insert);
    assert_same(&mut src, &mut dst, db, dst_db, "sbtest").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_connection_is_retried() -> Result<()> {
    let (db, dst_db, job) = ("fl_retry", "fl_retry_dst", "fl-retry");
    sysbench_like(db, dst_db, 60_000).await?;
    let (mut src, mut dst) = conns().await?;
    let tasks = tasks(&mut src, db, dst_db, &["sbtest"]).await?;
    let mut opts = opts(job, 2, 5_000, WriteMethod::LoadData).await?;
    opts.throttle = Arc::new(Throttle::new(20_000, 0));
    let (sink, events) = recorder();
    let run = tokio::spawn(async move { run_full_load(&source(), &target(), tasks, opts, sink).await });
    let pool = target().pool(2, vec![]);
    let find = format!(
        "SELECT COALESCE(MIN(ID), 0) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOAD DATA%{dst_db}%'"
    );
    wait_until(120, "a LOAD DATA running on the target", || {
        let (pool, sql) = (pool.clone(), find.clone());
        async move { Ok(pooled_u64(&pool, &sql).await? > 0) }
    })
    .await?;
    let id = pooled_u64(&pool, &find).await?;
    if id > 0 {
        exec(&mut dst, &format!("KILL CONNECTION {id}")).await?;
    }
    let summary = run.await??;
    assert_eq!(summary.chunks, 13);
    assert_same(&mut src, &mut dst, db, dst_db, "sbtest").await?;
    let retried = events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, ferry_core::progress::ProgressEvent::Retrying { .. }));
    assert!(retried, "a Retrying event was reported");
    Ok(())
}
