//! Bad input: a global lock that cannot be taken names the blocking statement; a missing target
//! table is a definite error naming it.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use ferry_core::progress::null_sink;
use ferry_core::ErrorKind;
use ferry_load::{run_full_load, LoadError, WriteMethod};
use ferry_testkit::{connect, exec, source, target};
use mysql_async::prelude::Queryable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeout_names_the_blocker() -> Result<()> {
    let (db, dst_db) = ("fl_lock", "fl_lock_dst");
    let (mut src, mut dst) = conns().await?;
    fresh_both(&mut src, &mut dst, db, dst_db).await?;
    exec(
        &mut src,
        &format!(
            "CREATE TABLE {db}.t (id INT PRIMARY KEY); INSERT INTO {db}.t VALUES (1);
             CREATE TABLE {db}.other (id INT PRIMARY KEY)"
        ),
    )
    .await?;
    copy_tables(&mut src, &mut dst, db, dst_db, &["t"]).await?;
    let tasks = tasks(&mut src, db, dst_db, &["t"]).await?;

    let mut blocker = connect(&source()).await?;
    // A table outside the load, so that only the global lock waits for it.
    blocker
        .query_drop(format!("LOCK TABLES {db}.other WRITE"))
        .await?;
    let hold = tokio::spawn(async move {
        let r = blocker.query_drop("SELECT SLEEP(6) AS fl_blocking_sleep").await;
        let _ = blocker.query_drop("UNLOCK TABLES").await;
        r
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut opts = opts("fl-lock", 2, 1000, WriteMethod::Auto).await?;
    opts.lock_timeout = Duration::from_secs(2);
    let err = run_full_load(&source(), &target(), tasks, opts, null_sink())
        .await
        .expect_err("the lock cannot be taken");
    hold.await??;
    eprintln!("{err}");
    match &err {
        LoadError::LockTimeout { blockers, .. } => {
            assert!(blockers.contains("fl_blocking_sleep"), "{err}");
        }
        e => panic!("expected LockTimeout, got {e}"),
    }
    assert_eq!(err.kind(), ErrorKind::Transient);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_target_table_is_definite() -> Result<()> {
    let (db, dst_db) = ("fl_missing", "fl_missing_dst");
    let (mut src, mut dst) = conns().await?;
    fresh_both(&mut src, &mut dst, db, dst_db).await?;
    exec(
        &mut src,
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY); INSERT INTO {db}.t VALUES (1)"),
    )
    .await?;
    let tasks = tasks(&mut src, db, dst_db, &["t"]).await?;
    let opts = opts("fl-missing", 2, 1000, WriteMethod::Auto).await?;
    let err = run_full_load(&source(), &target(), tasks, opts, null_sink())
        .await
        .expect_err("no target table");
    assert!(matches!(err, LoadError::TargetTableMissing { .. }), "{err}");
    assert!(err.to_string().contains("fl_missing_dst.t"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Definite);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_values_fail_the_chunk() -> Result<()> {
    // A target column narrower than the source's: the target would truncate; the loader must fail
    // with the table, chunk and the server's warning instead of storing changed values.
    let (db, dst_db) = ("fl_narrow", "fl_narrow_dst");
    let (mut src, mut dst) = conns().await?;
    fresh_both(&mut src, &mut dst, db, dst_db).await?;
    exec(&mut src, &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO {db}.t VALUES (1, 'far too long for it')")).await?;
    exec(
        &mut dst,
        &format!("CREATE TABLE {dst_db}.t (id INT PRIMARY KEY, v VARCHAR(3))"),
    )
    .await?;
    let tasks = tasks(&mut src, db, dst_db, &["t"]).await?;
    for (m, job) in [
        (WriteMethod::LoadData, "fl-narrow-ld"),
        (WriteMethod::Insert, "fl-narrow-ins"),
    ] {
        let opts = opts(job, 1, 1000, m).await?;
        let err = run_full_load(&source(), &target(), tasks.clone(), opts, null_sink())
            .await
            .expect_err("truncation must fail");
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(
            msg.contains("fl_narrow.t")
                && msg.contains("chunk 0")
                && (msg.contains("1406") || msg.contains("1265")),
            "{msg}"
        );
        assert_eq!(err.kind(), ErrorKind::Definite, "{msg}");
        let n: u64 = ferry_testkit::scalar(&mut dst, &format!("SELECT COUNT(*) FROM {dst_db}.t")).await?;
        assert_eq!(n, 0, "nothing committed");
    }
    Ok(())
}
