//! Parallel apply against the real servers: workloads whose correctness depends on the order of
//! transactions that touch the same keys (primary-key move chains, unique values freed and
//! reused, case-insensitive unique values), a keyless table between keyed ones, and concurrent
//! writers, each replayed with several workers and small batches (the most interleaving) and
//! compared by exact digests. Only databases named `fa_par_*` are touched.

mod support;

use std::time::Duration;

use anyhow::Result;
use ferry_replay::ReplayOptions;
use ferry_testkit as tk;
use mysql_async::prelude::Queryable;
use support::*;

fn parallel(o: &mut ReplayOptions) {
    o.workers = 4;
    o.batch_transactions = 2;
    o.batch_rows = 50;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_key_move_chains_apply_in_order() -> Result<()> {
    const DB: &str = "fa_par_chain";
    let (mut s, _t) = prepare(
        DB,
        DB,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n INT);
         CREATE TABLE u (id INT PRIMARY KEY, code VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL, UNIQUE KEY (code));
         CREATE TABLE other (id INT PRIMARY KEY, n INT);
         INSERT INTO t SELECT seq, CONCAT('v', seq), 0 FROM seq_1_to_50;
         INSERT INTO u SELECT seq, CONCAT('c', seq) FROM seq_1_to_50;
         INSERT INTO other SELECT seq, 0 FROM seq_1_to_200;",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start_with("fa-par-chain", selection(&[(DB, DB)]), pos, parallel).await?;
    let mut sql = String::new();
    for round in 0..40 {
        let a = 1 + round % 50;
        let b = 1000 + round;
        // The row moves A → B, then another transaction inserts A, then B moves on to C.
        sql.push_str(&format!("UPDATE t SET id = {b}, n = n + 1 WHERE id = {a};"));
        sql.push_str(&format!(
            "UPDATE other SET n = n + 1 WHERE id = {};",
            1 + (round * 7) % 200
        ));
        sql.push_str(&format!("INSERT INTO t VALUES ({a}, 'again {round}', {round});"));
        sql.push_str(&format!("UPDATE t SET id = {} WHERE id = {b};", 2000 + round));
        sql.push_str(&format!(
            "UPDATE other SET n = n + 1 WHERE id = {};",
            1 + (round * 13) % 200
        ));
        // A unique value freed, then reused by another row; and reused in another letter case
        // (equal under the collation).
        let x = 1 + round % 50;
        let y = 1 + (round + 25) % 50;
        sql.push_str(&format!("UPDATE u SET code = 'tmp{round}' WHERE id = {x};"));
        sql.push_str(&format!("UPDATE u SET code = 'c{x}' WHERE id = {y} AND NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM u WHERE code = 'c{x}') z);"));
        sql.push_str(&format!("DELETE FROM u WHERE code = 'C{x}';"));
        sql.push_str(&format!("INSERT INTO u VALUES ({}, 'C{x}');", 500 + round));
        // Swap two keys through a third one, in one transaction.
        sql.push_str(&format!(
            "START TRANSACTION; UPDATE other SET id = 9999 WHERE id = {p}; UPDATE other SET id = {p} WHERE id = {q}; UPDATE other SET id = {q} WHERE id = 9999; COMMIT;",
            p = 1 + round % 100,
            q = 101 + round % 100
        ));
    }
    tk::exec(&mut s, &format!("USE {DB}; {sql}")).await?;
    let (summary, _) = run.complete().await?;
    assert!(summary.transactions >= 40 * 9, "{summary:?}");
    assert_eq!(
        summary.reconnects, 0,
        "no lock wait between workers (conflicting transactions never ran side by side): {summary:?}"
    );
    assert_same(DB, DB).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_table_between_keyed_ones() -> Result<()> {
    const DB: &str = "fa_par_nokey";
    let (mut s, _t) = prepare(
        DB,
        DB,
        "CREATE TABLE nk (a INT, b VARCHAR(10));
         CREATE TABLE k (id INT PRIMARY KEY, n INT);
         INSERT INTO nk VALUES (1, 'x'), (1, 'x'), (2, NULL);
         INSERT INTO k SELECT seq, 0 FROM seq_1_to_100;",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start_with("fa-par-nokey", selection(&[(DB, DB)]), pos, parallel).await?;
    let mut sql = String::new();
    for i in 0..60 {
        sql.push_str(&format!("UPDATE k SET n = n + 1 WHERE id = {};", 1 + i % 100));
        sql.push_str(&format!("INSERT INTO nk VALUES ({}, 'r{}');", i % 5, i % 3));
        sql.push_str(&format!(
            "UPDATE k SET n = n + 10 WHERE id = {};",
            1 + (i * 3) % 100
        ));
        if i % 4 == 0 {
            sql.push_str(&format!("UPDATE nk SET b = 'u{i}' WHERE a = {} LIMIT 1;", i % 5));
        }
        if i % 6 == 0 {
            sql.push_str(&format!("DELETE FROM nk WHERE a = {} LIMIT 1;", (i + 1) % 5));
        }
        sql.push_str(&format!(
            "START TRANSACTION; INSERT INTO nk VALUES (100, 'txn'); UPDATE k SET n = n * 2 WHERE id = {}; COMMIT;",
            1 + i % 7
        ));
    }
    tk::exec(&mut s, &format!("USE {DB}; {sql}")).await?;
    let (summary, _) = run.complete().await?;
    assert_eq!(summary.reconnects, 0, "{summary:?}");
    assert_same(DB, DB).await
}

/// Several connections write at once, on one hot row and on rows of their own, while the replay
/// applies with four workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_hot_and_disjoint_keys() -> Result<()> {
    const DB: &str = "fa_par_writers";
    let (mut s, mut t) = prepare(
        DB,
        DB,
        "CREATE TABLE hot (id INT PRIMARY KEY, n BIGINT NOT NULL);
         INSERT INTO hot VALUES (1, 0);
         CREATE TABLE mine (w INT, k INT, n BIGINT NOT NULL, PRIMARY KEY (w, k));
         CREATE TABLE journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, w INT, i INT, UNIQUE KEY (w, i));",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start_with("fa-par-writers", selection(&[(DB, DB)]), pos, |o| {
        o.workers = 4;
        o.batch_transactions = 8;
    })
    .await?;
    let mut writers = Vec::new();
    const PER_WRITER: u64 = 150;
    for w in 0..6u64 {
        writers.push(tokio::spawn(async move {
            let mut c = tk::connect(&tk::source()).await?;
            for i in 0..PER_WRITER {
                let hot = if i % 3 == 0 {
                    "UPDATE hot SET n = n + 1 WHERE id = 1;"
                } else {
                    ""
                };
                c.query_drop(format!(
                    "USE {DB}; START TRANSACTION; {hot} \
                     INSERT INTO mine VALUES ({w}, {k}, 1) ON DUPLICATE KEY UPDATE n = n + 1; \
                     INSERT INTO journal (w, i) VALUES ({w}, {i}); COMMIT",
                    k = i % 10
                ))
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    let (summary, _) = tokio::time::timeout(Duration::from_secs(300), run.complete()).await??;
    assert!(summary.transactions >= 6 * PER_WRITER, "{summary:?}");
    assert_eq!(summary.reconnects, 0, "{summary:?}");
    let hot: u64 = tk::scalar(&mut t, &format!("SELECT n FROM {DB}.hot WHERE id = 1")).await?;
    assert_eq!(
        hot,
        6 * PER_WRITER.div_ceil(3),
        "every hot increment applied once"
    );
    let mine: u64 = tk::scalar(&mut t, &format!("SELECT SUM(n) FROM {DB}.mine")).await?;
    assert_eq!(mine, 6 * PER_WRITER);
    let journal: u64 = tk::scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.journal")).await?;
    assert_eq!(journal, 6 * PER_WRITER);
    assert_same(DB, DB).await
}
