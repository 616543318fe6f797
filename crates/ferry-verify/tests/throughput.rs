//! A full pass over a 1M-row sysbench-like table (run by hand: `cargo test -p ferry-verify --test
//! throughput -- --ignored --nocapture`); prints rows/s, asserts nothing about time.

mod common;

use std::time::Instant;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, exec, scalar, source, target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn full_pass_over_a_million_rows() -> Result<()> {
    let db = "fv_sbtest";
    for ep in [source(), target()] {
        let mut c = connect(&ep).await?;
        let n: i64 = scalar(
            &mut c,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fv_sbtest'",
        )
        .await?;
        if n == 0 {
            exec(
                &mut c,
                "CREATE DATABASE fv_sbtest; USE fv_sbtest; CREATE TABLE fv_sbtest.sbtest1 (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)); \
                 INSERT INTO fv_sbtest.sbtest1 SELECT seq, seq * 7919 % 1000000, \
                 CONCAT(LPAD(seq, 11, '0'), '-', SHA1(seq), '-', SHA1(seq + 1), '-', LPAD(seq % 977, 20, '7')), \
                 CONCAT(MD5(seq), '-', LPAD(seq % 31, 20, '3')) FROM seq_1_to_1000000",
            )
            .await?;
        }
    }
    for threads in [2, 4] {
        let o = ferry_verify::VerifyOptions {
            threads,
            ..opts(20_000)
        };
        let t0 = Instant::now();
        let (r, _) = run(&sel_db(db), &o).await?;
        let secs = t0.elapsed().as_secs_f64();
        assert!(r.consistent, "{}", r.render_text());
        let rows = table(&r, "sbtest1").rows_compared;
        println!(
            "threads {threads}: {rows} rows in {secs:.2} s = {:.0} rows/s (per side)",
            rows as f64 / secs
        );
    }
    // One changed row among a million: drill-down of one chunk.
    let mut d = connect(&target()).await?;
    exec(&mut d, "UPDATE fv_sbtest.sbtest1 SET pad = 'x' WHERE id = 654321").await?;
    let t0 = Instant::now();
    let (r, repair) = run(&sel_db(db), &opts(20_000)).await?;
    println!("with one difference: {:.2} s", t0.elapsed().as_secs_f64());
    assert_eq!(counts(table(&r, "sbtest1")), (0, 0, 1));
    apply(&repair).await?;
    Ok(())
}
