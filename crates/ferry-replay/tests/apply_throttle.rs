//! The replay honours a rows/s limit that changes while it runs (`ReplayOptions::throttle`, the
//! job's `Throttle`, which `ModifyMigrateRateLimit` and `kill -HUP` adjust): at 2 rows/s a backlog
//! of 40 single-row transactions is still far from applied once the first rows arrive; lifted to
//! unlimited, the rest is applied and the tables are equal. No timing is asserted: the limited
//! phase would need about 20 s for what is checked right after the first rows land. Only
//! databases named `fa_throttle*` are touched.

mod support;

use std::sync::Arc;

use anyhow::Result;
use ferry_core::throttle::Throttle;
use ferry_testkit as tk;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_per_second_limit_changes_while_running() -> Result<()> {
    const DB: &str = "fa_throttle";
    const JOB: &str = "fa-throttle";
    let (mut s, _t) = prepare(DB, DB, "CREATE TABLE c (id INT PRIMARY KEY, v INT);").await?;
    let pos = master_pos(&mut s).await?;
    for i in 0..40 {
        tk::exec(&mut s, &format!("INSERT INTO {DB}.c VALUES ({i}, {i})")).await?;
    }
    let throttle = Arc::new(Throttle::new(2, 0));
    let t2 = throttle.clone();
    let run = start_with(JOB, selection(&[(DB, DB)]), pos, move |o| o.throttle = t2).await?;
    let count = || async {
        let mut t = tk::connect(&tk::target()).await?;
        tk::scalar::<u64>(&mut t, &format!("SELECT COUNT(*) FROM {DB}.c")).await
    };
    tk::wait_until(60, "the first rows on the target", || async {
        Ok(count().await? >= 1)
    })
    .await?;
    let early = count().await?;
    assert!(
        early < 40,
        "at 2 rows/s the 40-row backlog cannot be applied yet ({early} rows)"
    );
    throttle.set_limits(0, 0);
    tk::wait_until(60, "the whole backlog once the limit is lifted", || async {
        Ok(count().await? == 40)
    })
    .await?;
    let (summary, _) = run.complete().await?;
    assert!(summary.rows >= 40, "{summary:?}");
    assert_same(DB, DB).await
}
