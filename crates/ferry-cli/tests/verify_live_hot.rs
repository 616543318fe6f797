//! `ferry verify` during the live replay of a MigrateType 3 job while a writer hammers three hot
//! rows on the source (back-to-back autocommit updates, no pause): the hot rows differ between the
//! two sides at almost any instant, so a single re-check after the replay fence would report
//! them. The row-level re-check rounds never report them (consistent, exit 0), while a planted
//! difference on the target, in the same chunk as the hot rows, is found exactly (exit 2, that
//! key and column only). Then cut-over (SIGUSR1) and equal digests. Only databases named
//! `fvl_hot*` are touched.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use common::live::{verify_json, LiveReplay};
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "fvl_hot";
const JOB: &str = "fvl-hot";
const ROWS: u64 = 20_000;
/// The rows the writer hammers (all in the first chunk).
const HOT: [u64; 3] = [1, 2, 3];
/// A row the writer never touches, in the hot rows' chunk.
const PLANTED: u64 = 7;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_rows_under_live_replay_are_never_reported() -> Result<()> {
    let mut replay = LiveReplay::start(DB, JOB, ROWS, 2000).await?;
    let path = replay.path.clone();
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = hammer(stop.clone(), commits.clone());

    replay.wait_applying().await?;

    // Hot rows in flight during every verification: never reported.
    for round in 1..=3 {
        let before = commits.load(Ordering::SeqCst);
        wait_until(30, "the writer to commit", || {
            let n = commits.load(Ordering::SeqCst);
            async move { Ok(n >= before + 20) }
        })
        .await?;
        let (code, report, _) = verify_json(&path)?;
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
    let (code, report, _) = verify_json(&path)?;
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
    replay.cut_over().await?;
    assert_db_equal(DB, DB).await?;
    let (code, report, _) = verify_json(&path)?;
    assert_eq!(code, Some(0), "{report:#}");
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}
