//! Writes on the source during the copy: the target must equal the source as of the snapshot,
//! and the recorded binlog position must be exactly where the snapshot is.
//!
//! Each writer transaction increments `counter.n` and inserts a row `(n)` into the append-only
//! `journal` (and churns a third table). On the target, the counter value `c` must equal the
//! journal's row count and maximum (every transaction up to `c` present, none after, across
//! tables read by different connections), and in the binlog, transaction `c` must be at or
//! before the snapshot GTID and transaction `c + 1` after it, with the first event at the
//! snapshot's file:offset being the GTID event of the transaction after the snapshot.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use common::*;
use ferry_core::position::Position;
use ferry_core::progress::null_sink;
use ferry_load::{run_full_load, WriteMethod};
use ferry_testkit::{connect, exec, scalar, source, target, wait_until};
use mysql_async::prelude::Queryable;

const DB: &str = "fl_consist";
const DST: &str = "fl_consist_dst";

fn seq_of(gtid: &str) -> Result<u64> {
    match gtid.trim().rsplit('-').next().map(str::parse::<u64>) {
        Some(Ok(s)) => Ok(s),
        _ => bail!("bad gtid {gtid:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_is_consistent_under_writes() -> Result<()> {
    let (mut src, mut dst) = conns().await?;
    fresh_both(&mut src, &mut dst, DB, DST).await?;
    exec(
        &mut src,
        &format!(
            "USE {DB};
             CREATE TABLE counter (id INT PRIMARY KEY, n BIGINT NOT NULL);
             INSERT INTO counter VALUES (1, 0);
             CREATE TABLE journal (n BIGINT PRIMARY KEY, pad CHAR(200) NOT NULL DEFAULT '');
             CREATE TABLE churn (id INT PRIMARY KEY, v BIGINT, pad CHAR(100));
             INSERT INTO churn SELECT seq, seq, REPEAT('p', 100) FROM seq_1_to_60000;"
        ),
    )
    .await?;
    let tables = ["counter", "journal", "churn"];
    copy_tables(&mut src, &mut dst, DB, DST, &tables).await?;

    // The writer: one transaction per step, its GTID recorded by n.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = tokio::spawn(async move {
        let mut w = connect(&source()).await?;
        let mut gtids: Vec<(u64, String)> = Vec::new();
        let mut i: u64 = 0;
        while !stop2.load(Ordering::Relaxed) {
            i += 1;
            let id = 1 + (i * 7919) % 60000;
            w.query_drop(format!(
                "BEGIN; UPDATE {DB}.counter SET n = n + 1 WHERE id = 1;
                 INSERT INTO {DB}.journal (n, pad) SELECT n, 'j' FROM {DB}.counter WHERE id = 1;
                 UPDATE {DB}.churn SET v = v + 1 WHERE id = {id};
                 DELETE FROM {DB}.churn WHERE id = {};
                 INSERT INTO {DB}.churn VALUES ({}, {i}, 'new') ON DUPLICATE KEY UPDATE v = -v;
                 COMMIT",
                1 + (i * 104729) % 60000,
                60000 + i
            ))
            .await?;
            let n: u64 = scalar(&mut w, &format!("SELECT n FROM {DB}.counter WHERE id = 1")).await?;
            let g: String = scalar(&mut w, "SELECT @@last_gtid").await?;
            gtids.push((n, g));
        }
        anyhow::Ok(gtids)
    });
    let pool = source().pool(2, vec![]);
    let count_sql = format!("SELECT n FROM {DB}.counter WHERE id = 1");
    wait_until(60, "the writer to commit 50 transactions", || {
        let (pool, sql) = (pool.clone(), count_sql.clone());
        async move { Ok(pooled_u64(&pool, &sql).await? >= 50) }
    })
    .await?;

    let tasks = tasks(&mut src, DB, DST, &tables).await?;
    let opts = opts("fl-consist", 4, 2000, WriteMethod::Auto).await?;
    let summary = run_full_load(&source(), &target(), tasks, opts, null_sink()).await?;
    // let the writer run past the snapshot for a moment, then stop it
    let at_end = pooled_u64(&pool, &count_sql).await?;
    wait_until(60, "more writes after the load", || {
        let (pool, sql) = (pool.clone(), count_sql.clone());
        async move { Ok(pooled_u64(&pool, &sql).await? > at_end + 5) }
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    let gtids = writer.await??;

    let c: u64 = scalar(&mut dst, &format!("SELECT n FROM {DST}.counter WHERE id = 1")).await?;
    let (count, max, min): (u64, Option<u64>, Option<u64>) = dst
        .query_first(format!("SELECT COUNT(*), MAX(n), MIN(n) FROM {DST}.journal"))
        .await?
        .unwrap_or_default();
    assert!(c >= 50, "counter {c}");
    assert_eq!(count, c, "journal rows vs counter");
    assert_eq!(max, Some(c));
    assert_eq!(min, Some(1));
    let last = gtids.last().map(|g| g.0).unwrap_or(0);
    assert!(last > c, "writes continued after the snapshot ({last} > {c})");

    // GTID: transaction c is in the snapshot, transaction c + 1 is not.
    let Some(Position::MariaGtidPos { pos }) = &summary.snapshot.gtid else {
        bail!("no MariaDB GTID in {:?}", summary.snapshot)
    };
    let snap_seq = pos.0.iter().find(|g| g.domain == 0).map(|g| g.seq).unwrap_or(0);
    let gtid_of = |n: u64| gtids.iter().find(|g| g.0 == n).map(|g| seq_of(&g.1));
    let seq_c = gtid_of(c).transpose()?.expect("gtid of transaction c");
    let seq_next = gtid_of(c + 1).transpose()?.expect("gtid of transaction c+1");
    assert!(
        seq_c <= snap_seq,
        "txn {c} (seq {seq_c}) must be in the snapshot (seq {snap_seq})"
    );
    assert!(
        seq_next > snap_seq,
        "txn {} (seq {seq_next}) must be after the snapshot (seq {snap_seq})",
        c + 1
    );

    // file:offset: the first GTID event from there is the transaction right after the snapshot.
    let events: Vec<mysql_async::Row> = src
        .query(format!(
            "SHOW BINLOG EVENTS IN '{}' FROM {} LIMIT 5",
            summary.snapshot.file, summary.snapshot.pos
        ))
        .await?;
    let first_gtid = events.iter().find_map(|r| {
        let ty: String = r.get("Event_type")?;
        let info: String = r.get("Info")?;
        (ty == "Gtid").then_some(info)
    });
    let info = first_gtid.expect("a GTID event after the snapshot position");
    assert_eq!(
        seq_of(info.split_whitespace().last().unwrap_or(""))?,
        snap_seq + 1,
        "{info}"
    );
    Ok(())
}
