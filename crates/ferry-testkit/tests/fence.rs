//! `ferry_core::fence` against the target: an owner frozen with an open transaction cannot commit
//! after a newer claim (its rows roll back, the error names both epochs), the newer owner
//! commits, an older claim is refused; and a claim made while an older owner's commit is checking
//! the epoch waits for that commit (the check's row lock serializes them); a claim closes the
//! sessions an older owner registered (a frozen one's row locks go with them), and only those.
//! Uses the shared `ferry_meta` with job names of its own and the database `fm_fence_*`.

use anyhow::{ensure, Result};
use ferry_core::fence::{after_failed_commit, Fence};
use ferry_testkit::{connect, drop_dbs, exec, forget_job, scalar, target, wait_until};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

async fn setup(db: &str, job: &str) -> Result<Conn> {
    let mut t = connect(&target()).await?;
    ferry_core::meta::ensure(&mut t).await?;
    forget_job(&mut t, job, &["job_epoch"]).await?;
    drop_dbs(&mut t, &[db]).await?;
    exec(
        &mut t,
        &format!("CREATE DATABASE {db}; CREATE TABLE {db}.x (id INT PRIMARY KEY) ENGINE=InnoDB"),
    )
    .await?;
    Ok(t)
}

async fn session_gone(id: u64) -> Result<bool> {
    let mut c = connect(&target()).await?;
    let n: u64 = scalar(
        &mut c,
        &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"),
    )
    .await?;
    Ok(n == 0)
}

async fn rows(t: &mut Conn, db: &str) -> Result<u64> {
    scalar(t, &format!("SELECT COUNT(*) FROM {db}.x")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_cannot_commit_after_a_newer_claim() -> Result<()> {
    const DB: &str = "fm_fence_frozen";
    const JOB: &str = "fm-fence-frozen";
    let mut t = setup(DB, JOB).await?;
    let old = Fence::new(JOB, 1);
    let mut a = connect(&target()).await?;
    old.claim(&mut a).await?;
    // The old owner's transaction: its rows written, then it freezes before its COMMIT.
    exec(
        &mut a,
        &format!("START TRANSACTION; INSERT INTO {DB}.x VALUES (1)"),
    )
    .await?;
    // A newer owner claims the job meanwhile (no wait: the old one holds no epoch lock yet).
    let new = Fence::new(JOB, 2);
    let mut b = connect(&target()).await?;
    new.claim(&mut b).await?;
    // The old owner wakes up: its commit round trip is refused and rolled back.
    let sent = a.query_drop(format!("{}COMMIT", old.check_sql())).await;
    ensure!(sent.is_err(), "the stale commit must fail");
    let e = after_failed_commit(Some(&old), &mut a).await;
    let e = e.ok_or_else(|| anyhow::anyhow!("no fencing error"))?;
    ensure!(
        e.to_string()
            == "job fm-fence-frozen: this node's claim (epoch 1) is older than the target's (epoch 2): \
                another node owns the job",
        "{e}"
    );
    ensure!(e.kind() == ferry_core::ErrorKind::Definite);
    ensure!(
        rows(&mut t, DB).await? == 0,
        "nothing of the old owner is applied"
    );
    // The new owner commits.
    exec(
        &mut b,
        &format!("START TRANSACTION; INSERT INTO {DB}.x VALUES (2)"),
    )
    .await?;
    b.query_drop(format!("{}COMMIT", new.check_sql())).await?;
    ensure!(rows(&mut t, DB).await? == 1);
    // The old owner starting again is refused; the target keeps epoch 2.
    let again = old.claim(&mut a).await;
    ensure!(matches!(
        again,
        Err(ferry_core::CoreError::Fenced {
            mine: 1,
            stored: 2,
            ..
        })
    ));
    ensure!(new.stored(&mut t).await? == Some(2));
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_waits_for_a_commit_checking_the_epoch() -> Result<()> {
    const DB: &str = "fm_fence_order";
    const JOB: &str = "fm-fence-order";
    let mut t = setup(DB, JOB).await?;
    let old = Fence::new(JOB, 1);
    let mut a = connect(&target()).await?;
    old.claim(&mut a).await?;
    // The old owner's commit is under way: its epoch check ran (the row's shared lock is held),
    // its COMMIT not yet.
    exec(
        &mut a,
        &format!(
            "START TRANSACTION; INSERT INTO {DB}.x VALUES (1); {}DO 0",
            old.check_sql()
        ),
    )
    .await?;
    // The newer claim waits for that lock.
    let mut b = connect(&target()).await?;
    let b_id = b.id();
    let claim = tokio::spawn(async move {
        let r = Fence::new(JOB, 2).claim(&mut b).await;
        (r, b)
    });
    wait_until(30, "the newer claim to wait for the epoch row's lock", || {
        let ep = target();
        async move {
            let mut c = connect(&ep).await?;
            let n: u64 = scalar(
                &mut c,
                &format!(
                    "SELECT COUNT(*) FROM information_schema.INNODB_TRX \
                     WHERE trx_state = 'LOCK WAIT' AND trx_mysql_thread_id = {b_id}"
                ),
            )
            .await?;
            Ok(n == 1)
        }
    })
    .await?;
    // The old owner's commit completes (it was checked before the claim), then the claim does.
    exec(&mut a, "COMMIT").await?;
    let (claimed, _b) = claim.await?;
    claimed?;
    ensure!(rows(&mut t, DB).await? == 1);
    // Any later commit of the old owner is refused.
    exec(
        &mut a,
        &format!("START TRANSACTION; INSERT INTO {DB}.x VALUES (3)"),
    )
    .await?;
    ensure!(a.query_drop(format!("{}COMMIT", old.check_sql())).await.is_err());
    ensure!(after_failed_commit(Some(&old), &mut a).await.is_some());
    ensure!(rows(&mut t, DB).await? == 1);
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_closes_the_sessions_of_a_frozen_owner() -> Result<()> {
    const DB: &str = "fm_fence_close";
    const JOB: &str = "fm-fence-close";
    const OTHER: &str = "fm-fence-close-other";
    let mut t = setup(DB, JOB).await?;
    exec(&mut t, &format!("INSERT INTO {DB}.x VALUES (1)")).await?;
    let old = Fence::new(JOB, 1);
    let mut a = connect(&target()).await?;
    old.claim(&mut a).await?;
    // Two writing sessions of the old owner; one of them frozen inside a transaction that
    // holds the row's lock; a session of another job.
    let mut w1 = connect(&target()).await?;
    let mut w2 = connect(&target()).await?;
    old.register(&mut w1).await;
    old.register(&mut w2).await;
    exec(
        &mut w1,
        &format!("START TRANSACTION; UPDATE {DB}.x SET id = id WHERE id = 1"),
    )
    .await?;
    let mut other = connect(&target()).await?;
    Fence::new(OTHER, 1).register(&mut other).await;
    let (w1_id, w2_id) = (u64::from(w1.id()), u64::from(w2.id()));
    // The newer owner's claim closes both, and only them.
    let mut b = connect(&target()).await?;
    let new = Fence::new(JOB, 2);
    new.claim(&mut b).await?;
    wait_until(30, "the old owner's sessions to be closed", || async move {
        Ok(session_gone(w1_id).await? && session_gone(w2_id).await?)
    })
    .await?;
    // The row's lock went with the frozen session: the new owner writes at once.
    exec(
        &mut b,
        &format!(
            "SET SESSION innodb_lock_wait_timeout = 5; \
             UPDATE {DB}.x SET id = 2 WHERE id = 1"
        ),
    )
    .await?;
    ensure!(scalar::<u64>(&mut t, &format!("SELECT MAX(id) FROM {DB}.x")).await? == 2);
    ensure!(
        a.query_drop("DO 0").await.is_ok(),
        "an unregistered session stays"
    );
    ensure!(
        other.query_drop("DO 0").await.is_ok(),
        "another job's session stays"
    );
    ensure!(
        w1.query_drop("DO 0").await.is_err(),
        "the frozen session is closed"
    );
    // The new owner's own sessions register in the freed slots; a claim at the same epoch
    // (a retry of the same run) closes them too, but never the claiming connection.
    new.register(&mut b).await;
    ensure!(new.close_older_sessions(&mut b).await.is_empty());
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}
