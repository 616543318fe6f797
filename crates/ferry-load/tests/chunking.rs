//! Chunking: integer keys with gaps, composite keys, case-insensitive string keys (compared by
//! the server under the column collation), a table keyed only by a UNIQUE NOT NULL key, and a
//! keyless table with duplicate rows.

mod common;

use anyhow::Result;
use common::*;
use ferry_core::progress::ProgressEvent;
use ferry_load::{run_full_load, WriteMethod};
use ferry_testkit::{exec, source, target};

const DB: &str = "fl_chunk";
const DST: &str = "fl_chunk_dst";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_kinds() -> Result<()> {
    let (mut src, mut dst) = conns().await?;
    fresh_both(&mut src, &mut dst, DB, DST).await?;
    exec(
        &mut src,
        &format!(
            "USE {DB};
             CREATE TABLE int_gaps (id INT NOT NULL PRIMARY KEY, v VARCHAR(20));
             INSERT INTO int_gaps SELECT seq * 3 + seq % 7, CONCAT('v', seq) FROM seq_1_to_50000;
             CREATE TABLE composite (a INT NOT NULL, b VARCHAR(20) NOT NULL, v INT, PRIMARY KEY (a, b));
             INSERT INTO composite SELECT seq % 50, CONCAT(IF(seq % 2, 'K', 'k'), seq), seq FROM seq_1_to_20000;
             CREATE TABLE str_ci (k VARCHAR(60) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, v INT);
             INSERT INTO str_ci SELECT CONCAT(ELT(1 + seq % 8, 'a', 'B', 'é', 'É', 'z', 'Ä', '😀', ' '), MD5(seq)), seq FROM seq_1_to_10000;
             INSERT INTO str_ci VALUES ('apple', 1), ('Banana', 2), ('cherry', 3), ('Zebra', 4), ('ÄÖ', 5), ('éclair', 6);
             CREATE TABLE str_latin1 (k VARCHAR(60) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL, v INT, PRIMARY KEY (k));
             INSERT INTO str_latin1 SELECT CONCAT(CONVERT(UNHEX(HEX(0xC0 + seq % 64)) USING latin1), IF(seq % 3, 'x', 'X'), seq), seq FROM seq_1_to_8000;
             CREATE TABLE uniq_only (code CHAR(12) NOT NULL, v INT, n INT NULL, UNIQUE KEY u_n (n), UNIQUE KEY u_code (code));
             INSERT INTO uniq_only SELECT LPAD(HEX(seq * 7919), 12, 'q'), seq, NULL FROM seq_1_to_5000;
             CREATE TABLE keyless (a INT, b VARCHAR(10));
             INSERT INTO keyless SELECT seq % 100, IF(seq % 2, 'x', NULL) FROM seq_1_to_3000;"
        ),
    )
    .await?;
    let tables = [
        "int_gaps",
        "composite",
        "str_ci",
        "str_latin1",
        "uniq_only",
        "keyless",
    ];
    copy_tables(&mut src, &mut dst, DB, DST, &tables).await?;
    let tasks = tasks(&mut src, DB, DST, &tables).await?;
    let opts = opts("fl-chunk", 3, 1000, WriteMethod::Auto).await?;
    let (sink, events) = recorder();
    let summary = run_full_load(&source(), &target(), tasks, opts, sink).await?;
    for t in tables {
        assert_same(&mut src, &mut dst, DB, DST, t).await?;
    }
    assert_eq!(summary.write_method, WriteMethod::LoadData);
    assert_eq!(summary.rows, 50_000 + 20_000 + 10_006 + 8_000 + 5_000 + 3_000);
    let mut per_table = std::collections::BTreeMap::<String, u64>::new();
    for e in events.lock().unwrap().iter() {
        if let ProgressEvent::ChunkDone { table, .. } = e {
            *per_table.entry(table.clone()).or_default() += 1;
        }
    }
    // n rows in chunks of 1000: n / 1000 full chunks and the (maybe empty) open-ended last one.
    assert_eq!(per_table[&format!("{DB}.int_gaps")], 51);
    assert_eq!(per_table[&format!("{DB}.composite")], 21);
    assert_eq!(per_table[&format!("{DB}.str_ci")], 11);
    assert_eq!(per_table[&format!("{DB}.str_latin1")], 9);
    assert_eq!(per_table[&format!("{DB}.uniq_only")], 6);
    assert_eq!(per_table[&format!("{DB}.keyless")], 1);
    assert_eq!(summary.chunks, 51 + 21 + 11 + 9 + 6 + 1);
    let done = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, ProgressEvent::TableDone { .. }))
        .count();
    assert_eq!(done, tables.len());
    Ok(())
}
