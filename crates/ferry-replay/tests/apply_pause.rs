//! Pausing the apply (`ReplayControl::set_apply_paused`): the applier holds at a transaction
//! boundary with its checkpoint committed, the target and the checkpoint stop moving while the
//! source keeps writing, the reader reads ahead, the reported lag grows; resumed, the replay
//! applies the rest exactly. Only databases named `fa_pause*` are touched.

mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_replay::apply::{checkpoint, lag};
use ferry_testkit as tk;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_at_a_boundary_and_resume_applies_the_rest() -> Result<()> {
    const DB: &str = "fa_pause";
    const JOB: &str = "fa-pause";
    let (mut s, mut t) = prepare(
        DB,
        DB,
        "CREATE TABLE c (id INT PRIMARY KEY, n INT, pad VARCHAR(100));",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start_with(JOB, selection(&[(DB, DB)]), pos, |_| {}).await?;
    for i in 0..100 {
        tk::exec(
            &mut s,
            &format!("INSERT INTO {DB}.c VALUES ({i}, {i}, REPEAT('x', {i}))"),
        )
        .await?;
    }
    tk::wait_until(60, "the first 100 rows on the target", || async {
        let mut t = tk::connect(&tk::target()).await?;
        Ok(tk::scalar::<u64>(&mut t, &format!("SELECT COUNT(*) FROM {DB}.c")).await? == 100)
    })
    .await?;

    run.control.set_apply_paused(true);
    tokio::time::timeout(Duration::from_secs(60), run.control.wait_apply_paused())
        .await
        .context("the pause did not take hold")?;
    assert!(run.control.is_apply_paused());
    let (held, _) = checkpoint::read(&mut t, JOB).await?.context("no checkpoint")?;
    let rows_held: u64 = tk::scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.c")).await?;
    assert_eq!(
        rows_held, 100,
        "the checkpoint is committed with everything before the pause"
    );

    // The source moves on: multi-statement transactions, so a boundary matters.
    for i in 100..300 {
        tk::exec(
            &mut s,
            &format!(
                "START TRANSACTION; INSERT INTO {DB}.c VALUES ({i}, 0, 'p'); UPDATE {DB}.c SET n = n + 1 WHERE id = {}; COMMIT",
                i % 100
            ),
        )
        .await?;
    }
    let end = master_pos(&mut s).await?;
    // The reader reads ahead while paused, and the lag grows.
    tk::wait_until(
        60,
        "the reader to read past the writes and the lag to grow",
        || {
            let p = run.progress();
            let end = end.clone();
            async move {
                Ok(p.iter().any(|(read, _, lag_s, lag_b)| {
                    parse_pos(read).is_some_and(|r| lag::pos_ge(&r, &end)) && *lag_s >= 1.5 && *lag_b > 0
                }))
            }
        },
    )
    .await?;
    let lags: Vec<f64> = run.progress().iter().map(|p| p.2).collect();
    assert!(
        lags.windows(2).rev().take(3).all(|w| w[1] >= w[0]),
        "lag keeps growing while paused: {lags:?}"
    );
    // Nothing moved on the target.
    let (still, _) = checkpoint::read(&mut t, JOB).await?.context("no checkpoint")?;
    assert_eq!(still.pos, held.pos, "the checkpoint does not move while paused");
    let rows_now: u64 = tk::scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.c")).await?;
    assert_eq!(rows_now, 100, "nothing is applied while paused");
    assert!(run.control.is_apply_paused());
    assert!(!run.task.is_finished(), "the replay keeps running while paused");

    run.control.set_apply_paused(false);
    assert!(!run.control.is_apply_paused());
    let (summary, _) = run.complete().await?;
    assert!(summary.transactions >= 300, "{summary:?}");
    assert_same(DB, DB).await
}
