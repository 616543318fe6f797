//! Kill -9 of `ferry run` in the middle of the load, then the same command again: finished
//! chunks are not redone, and the target equals the source exactly (no missing or duplicate row).

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, source, target};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_gives_exact_rows() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fk_big").await?;
    drop_dbs(&mut t, &["fk_big"]).await?;
    exec(
        &mut s,
        "USE fk_big; CREATE TABLE t (id INT PRIMARY KEY, k INT, c CHAR(100), KEY kk (k));
         INSERT INTO t SELECT seq, seq % 1000, MD5(seq) FROM seq_1_to_120000;
         CREATE TABLE nokey (a INT, b VARCHAR(20)); INSERT INTO nokey SELECT seq % 7, 'dup' FROM seq_1_to_5000;",
    )
    .await?;
    // Slow first run: 20k rows/s, 2000-row chunks.
    let slow = job(
        "fk-big",
        json!([{"Database": "fk_big"}]),
        json!({"Threads": 2, "ChunkRows": 2000, "RowsPerSecond": 20000}),
        2,
    );
    kill_9_mid_load(&write_job("fk-big-slow", &slow), "fk-big", 5).await?;

    // Same job, full speed, no --restart: resumes.
    let fast = job(
        "fk-big",
        json!([{"Database": "fk_big"}]),
        json!({"Threads": 2, "ChunkRows": 2000}),
        2,
    );
    let out = run(&write_job("fk-big-fast", &fast), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let summary = text(&out);
    assert!(
        !summary.contains("(0 resumed"),
        "finished chunks were not redone:\n{summary}"
    );
    assert_db_equal("fk_big", "fk_big").await?;
    drop_dbs(&mut s, &["fk_big"]).await?;
    drop_dbs(&mut t, &["fk_big"]).await?;
    Ok(())
}
