//! Kill -9 of `ferry run` in the middle of the load, then the same command again: finished
//! chunks are not redone, and the target equals the source exactly (no missing or duplicate row).
//! And a crash in the middle of the structure phase: run again, every table gets its secondary
//! indexes and foreign keys.

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

/// `ferry run` ends in the middle of the structure phase (after the database and one table are
/// created); run again, it creates the rest and every table gets its secondary indexes and
/// foreign keys: the tables the first attempt created are not taken for tables that existed on
/// the target before the job (which are kept without them), so the cascades work on the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_structure_phase_keeps_indexes_and_foreign_keys() -> Result<()> {
    const DB: &str = "fk_struct";
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; CREATE TABLE a_parent (id INT PRIMARY KEY, name VARCHAR(20), KEY by_name (name));
             CREATE TABLE b_child (id INT PRIMARY KEY, pid INT NOT NULL, KEY pid (pid),
               CONSTRAINT child_parent FOREIGN KEY (pid) REFERENCES a_parent (id) ON DELETE CASCADE ON UPDATE CASCADE);
             CREATE TABLE c_other (id INT PRIMARY KEY, k INT, KEY kk (k));
             INSERT INTO a_parent SELECT seq, LEFT(MD5(seq), 10) FROM seq_1_to_100;
             INSERT INTO b_child SELECT seq, seq % 100 + 1 FROM seq_1_to_500;
             INSERT INTO c_other SELECT seq, seq % 7 FROM seq_1_to_100"
        ),
    )
    .await?;
    let path = write_job(
        "fk-struct",
        &job("fk-struct", json!([{"Database": DB}]), json!({"Threads": 2}), 2),
    );
    // The database, then one table, then the process ends.
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart"])
        .env(
            ferry_core::fault::ENV,
            format!("{}=exit@2", ferry_core::fault::STRUCTURE_DDL_APPLIED),
        );
    let first = cmd.output()?;
    assert_eq!(
        first.status.code(),
        Some(ferry_core::fault::EXIT_CODE),
        "{}",
        text(&first)
    );
    let out = run(&path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let (a, b) = (
        ferry_testkit::table_definitions(&mut s, DB).await?,
        ferry_testkit::table_definitions(&mut t, DB).await?,
    );
    assert_eq!(a.len(), 3);
    assert_eq!(
        a, b,
        "the target's tables must have the source's indexes and foreign keys"
    );
    assert_db_equal(DB, DB).await?;
    // The foreign key cascades on the target.
    exec(&mut t, &format!("DELETE FROM {DB}.a_parent WHERE id = 1")).await?;
    let left: u64 = ferry_testkit::scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM {DB}.b_child WHERE pid = 1"),
    )
    .await?;
    assert_eq!(left, 0, "ON DELETE CASCADE on the target");
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}
