//! `ferry verify` during the live replay of a MigrateType 3 job while a writer keeps committing
//! small update / delete / insert transactions on the verified table: the verification is
//! fenced (differing chunks are re-checked once the replay has passed the source position read
//! when they were compared), so changes in flight are not reported, while a difference planted
//! on the target persists through the fence and is reported. Then cut-over (SIGUSR1), equal
//! digests, and no fence any more. Only databases named `fvl_*` are touched.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use common::live::{verify_json, LiveReplay};
use common::*;
use ferry_core::progress::null_sink;
use ferry_core::Position;
use ferry_testkit::{connect, exec, source, target, wait_until};
use ferry_verify::VerifyMode;
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "fvl_live";
const JOB: &str = "fvl-live";
/// Rows loaded; the writer only touches ids 1..=WRITER_MAX.
const ROWS: u64 = 50_000;
const WRITER_MAX: u64 = 40_000;
/// Between two writer transactions (about 15 transactions a second; see the note on the writer).
const WRITER_PAUSE: Duration = Duration::from_millis(50);
/// A key the writer never touches, in the last chunk (ids above WRITER_MAX).
const PLANTED: u64 = 60_000;

/// Small transactions on `DB.t` (update, delete, upsert of pseudo-random ids in 1..=WRITER_MAX)
/// until `stop`. (Rows written back to back, faster than any re-check, are the subject of
/// `verify_live_hot.rs`.)
fn writer(stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % WRITER_MAX + 1
        };
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            let (a, b, d) = (next(), next(), next());
            c.query_drop(format!(
                "START TRANSACTION; \
                 UPDATE {DB}.t SET v = v + 1, s = MD5({i}) WHERE id = {a}; \
                 DELETE FROM {DB}.t WHERE id = {b}; \
                 INSERT INTO {DB}.t (id, v, s) VALUES ({d}, {i}, 'w') ON DUPLICATE KEY UPDATE v = v + 1; \
                 COMMIT"
            ))
            .await?;
            commits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(WRITER_PAUSE).await;
        }
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_verification_reports_only_persistent_differences() -> Result<()> {
    let mut replay = LiveReplay::start(DB, JOB, ROWS, 5000).await?;
    let path = replay.path.clone();
    let mut t = connect(&target()).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(stop.clone(), commits.clone());

    // The replay is running and applying the writer's transactions.
    replay.wait_applying().await?;

    // Fenced (automatically: the replay is under way) while the writes continue: consistent.
    for round in 1..=3 {
        // The writer is committing as the verification starts.
        let before = commits.load(Ordering::SeqCst);
        wait_until(30, "the writer to commit", || {
            let n = commits.load(Ordering::SeqCst);
            async move { Ok(n >= before + 5) }
        })
        .await?;
        let (code, report, stderr) = verify_json(&path)?;
        assert!(
            stderr.contains("replay is running"),
            "round {round}: the fence is announced: {stderr}"
        );
        assert_eq!(code, Some(0), "round {round}: {report:#}");
        assert_eq!(report["consistent"], json!(true), "round {round}: {report:#}");
        assert_eq!(report["tables"][0]["table"], json!("t"));
    }

    // The same comparison through the library, with and without the fence (how often the fence
    // was needed, and whether the unfenced one saw changes in flight, is printed, not asserted:
    // both are racy).
    let spec = ferry_job::spec::MigrateJobRequest::from_file(&path)?.validate()?;
    let live = ferry_job::verification::options_for_live(&spec, VerifyMode::Full).await?;
    let inner = live
        .fence
        .clone()
        .context("options_for_live sets the fence during replay")?;
    let calls = Arc::new(AtomicU64::new(0));
    let mut fenced = live.clone();
    fenced.fence = Some({
        let calls = calls.clone();
        Arc::new(move |p| {
            calls.fetch_add(1, Ordering::SeqCst);
            inner(p)
        })
    });
    let r = ferry_verify::verify(
        &spec.source,
        &spec.target,
        &spec.selection,
        &fenced,
        null_sink(),
        None,
    )
    .await?;
    assert!(r.consistent, "{r:#?}");
    let unfenced = ferry_job::verification::options_for(&spec, VerifyMode::Full);
    assert!(unfenced.fence.is_none());
    let u = ferry_verify::verify(
        &spec.source,
        &spec.target,
        &spec.selection,
        &unfenced,
        null_sink(),
        None,
    )
    .await?;
    eprintln!(
        "fenced: fence called {} time(s); without a fence: consistent = {}, differing chunks = {}",
        calls.load(Ordering::SeqCst),
        u.consistent,
        u.tables.iter().map(|t| t.chunks_different).sum::<u64>()
    );

    // A persistent difference (a row only the target has, in a range the writer never touches)
    // survives the fence and is reported.
    exec(
        &mut t,
        &format!("INSERT INTO {DB}.t (id, v, s) VALUES ({PLANTED}, 0, 'planted')"),
    )
    .await?;
    let (code, report, _) = verify_json(&path)?;
    assert_eq!(code, Some(2), "{report:#}");
    assert_eq!(report["consistent"], json!(false));
    let table = &report["tables"][0];
    assert_eq!(
        (
            table["only_in_target"].clone(),
            table["only_in_source"].clone(),
            table["different"].clone()
        ),
        (json!(1), json!(0), json!(0)),
        "{report:#}"
    );
    assert!(
        table["keys"].to_string().contains(&PLANTED.to_string()),
        "the planted key is listed: {report:#}"
    );
    exec(&mut t, &format!("DELETE FROM {DB}.t WHERE id = {PLANTED}")).await?;

    // The fence itself: an unknown position or one already applied passes, one the replay never
    // reaches fails with a clear message.
    let fence = ferry_job::verification::replay_fence(&spec, Duration::from_millis(500));
    fence(None).await.map_err(anyhow::Error::msg)?;
    let (file, pos): (String, u64) = t
        .exec_first(
            "SELECT file, pos FROM ferry_meta.replay_checkpoint WHERE job = ?",
            (JOB,),
        )
        .await?
        .context("the replay checkpoint")?;
    fence(Some(Position::FilePos {
        file: file.clone(),
        pos,
    }))
    .await
    .map_err(anyhow::Error::msg)?;
    let (stem, n) = file.rsplit_once('.').context("a numbered binlog file")?;
    let later = format!("{stem}.{:0width$}", n.parse::<u64>()? + 1, width = n.len());
    let err = fence(Some(Position::FilePos {
        file: later.clone(),
        pos: 4,
    }))
    .await
    .expect_err("the replay never reaches the next binlog file");
    assert!(
        err.contains(&format!("replay has not reached {later}:4")) && err.contains("ferry run"),
        "{err}"
    );

    // Cut-over: stop the writer, SIGUSR1, the job completes and both sides are equal.
    stop.store(true, Ordering::SeqCst);
    w.await??;
    replay.cut_over().await?;
    assert_db_equal(DB, DB).await?;

    // After cut-over: no fence, and consistent.
    let (code, report, stderr) = verify_json(&path)?;
    assert!(!stderr.contains("replay is running"), "{stderr}");
    assert_eq!(code, Some(0), "{report:#}");
    Ok(())
}
