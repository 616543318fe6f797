//! Throughput probe (ignored by default; timing is printed, never asserted):
//! `cargo test -p ferry-load --release --test bench -- --ignored --nocapture`.
//! A 1M-row sysbench-like table (id INT PK, k INT, c CHAR(120), pad CHAR(60)), 4 threads,
//! LOAD DATA and then INSERT.

mod common;

use std::time::Instant;

use anyhow::Result;
use common::*;
use ferry_core::progress::null_sink;
use ferry_load::{run_full_load, WriteMethod};
use ferry_testkit::{exec, source, target};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn sysbench_1m_rows() -> Result<()> {
    let rows: u64 = std::env::var("FL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (db, dst_db) = ("fl_bench", "fl_bench_dst");
    let (mut src, mut dst) = conns().await?;
    let have: u64 = ferry_testkit::scalar(
        &mut src,
        &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'sbtest' AND TABLE_ROWS > 0"),
    )
    .await?;
    if have == 0
        || ferry_testkit::scalar::<u64>(&mut src, &format!("SELECT COUNT(*) FROM {db}.sbtest")).await? != rows
    {
        ferry_testkit::fresh_db(&mut src, db).await?;
        exec(
            &mut src,
            &format!(
                "USE {db};
                 CREATE TABLE sbtest (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,
                   c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k));
                 INSERT INTO sbtest SELECT seq, FLOOR(RAND() * {rows}),
                   CONCAT_WS('-', LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'),
                     LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'),
                     LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'),
                     LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0')),
                   CONCAT_WS('-', LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'),
                     LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'), LPAD(FLOOR(RAND()*1e11), 11, '0'))
                   FROM seq_1_to_{rows};"
            ),
        )
        .await?;
    }
    for (method, job) in [
        (WriteMethod::LoadData, "fl-bench-ld"),
        (WriteMethod::Insert, "fl-bench-ins"),
    ] {
        ferry_testkit::fresh_db(&mut dst, dst_db).await?;
        // like the schema copier: no secondary indexes during the load
        exec(
            &mut dst,
            &format!(
                "CREATE TABLE {dst_db}.sbtest (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,
                   c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '')"
            ),
        )
        .await?;
        let tasks = tasks(&mut src, db, dst_db, &["sbtest"]).await?;
        let opts = opts(job, 4, 100_000, method).await?;
        let t0 = Instant::now();
        let s = run_full_load(&source(), &target(), tasks, opts, null_sink()).await?;
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{method:?}: {} rows, {} chunks, {:.1} MB in {secs:.2} s = {:.0} rows/s, {:.1} MB/s (lock {} ms)",
            s.rows,
            s.chunks,
            s.bytes as f64 / 1e6,
            s.rows as f64 / secs,
            s.bytes as f64 / 1e6 / secs,
            s.lock_ms
        );
        assert_eq!(s.rows, rows);
    }
    ferry_testkit::drop_dbs(&mut dst, &[dst_db]).await?;
    Ok(())
}
