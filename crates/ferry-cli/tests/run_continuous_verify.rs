//! `Ferry.ContinuousVerify` end to end against the real test servers (MigrateType 3,
//! ConsistencyType 2): the background verifier keeps chunk digests current while the replay
//! runs, and the verification at cut-over digests only the chunks changed since their last check,
//! and of a chunk with an integer key only the parts (1/64 of its key span) the replay touched.
//! Chunks here are ids `(n*1000, (n+1)*1000]`, their parts 16 ids long: ids 3500 and 3501 share a
//! part, 3600 is in another one.
//!
//! - a consistent job: the cut-over digests at most the chunks the replay changed after the first
//!   full pass, and of them only the touched parts (counted, not timed), and reports the job
//!   consistent;
//! - a row changed on the target behind Ferry's back in a chunk no event touches is found by the
//!   background full rescan (the chunk is stored as different before cut-over), and one in a
//!   part the replay touched is found at cut-over; both rows are named;
//! - kill -9 of `ferry run` right after the replay marked a chunk dirty, then resume: the mark
//!   survived (same transaction as the checkpoint), so a target row planted in that part is
//!   still found at cut-over;
//! - a DDL and a TRUNCATE on one table plan that table's chunks again and no other: the other
//!   table keeps its stored digests, and a target row planted there in a part the replay
//!   touched is still found at cut-over;
//! - many inserts into one key range grow a chunk past twice the chunk size: it is split in
//!   place (the table's other chunks keep their digests), and a target row planted in a piece the
//!   replay touched is found at cut-over;
//! - the same with a text primary key and with a composite (integer, text) one (the server's
//!   collation orders them; every change marks the whole table): the grown chunk is split in
//!   place at cuts strictly inside it.
//!
//! Only databases named `cv_*` are touched.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::child::FerryChild;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use serde_json::json;

/// Rows per table and per chunk: chunk `n` holds ids `n*1000+1 ..= (n+1)*1000`.
const ROWS: u64 = 20_000;
const CHUNK: u64 = 1_000;

/// Fresh source rows, no target database, and no state of an earlier run of the job (so the
/// waits below see only this run's passes).
async fn setup(db: &str, job_name: &str) -> Result<()> {
    setup_with(
        db,
        job_name,
        &format!(
            "USE {db}; CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad CHAR(40) NOT NULL);
             INSERT INTO t SELECT seq, seq % 97, MD5(seq) FROM seq_1_to_{ROWS};"
        ),
    )
    .await
}

/// [`setup`] with the source's tables made by `create`.
async fn setup_with(db: &str, job_name: &str, create: &str) -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    drop_dbs(&mut t, &[db]).await?;
    for table in ["verify_chunk", "verify_dirty", "verify_root", "verify_pass"] {
        let _ = exec(
            &mut t,
            &format!("DELETE FROM ferry_meta.{table} WHERE job = '{job_name}'"),
        )
        .await;
    }
    exec(&mut s, create).await
}

/// Starts `ferry run` on a MigrateType 3 / ConsistencyType 2 job with continuous verification.
fn start(db: &str, job_name: &str, rescan: u64, extra: &[&str]) -> Result<FerryChild> {
    let mut j = job(
        job_name,
        json!([{"Database": db}]),
        json!({"Threads": 2, "ChunkRows": CHUNK,
               "ContinuousVerify": {"RowsPerSecond": 1_000_000, "FullRescanSeconds": rescan}}),
        3,
    );
    j["MigrateOption"]["ConsistencyType"] = json!(2);
    let path = write_job(job_name, &j);
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--skip-check"])
        .args(extra);
    let dir = path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(std::env::temp_dir);
    FerryChild::spawn(cmd, &dir, &format!("{job_name}-{}", extra.len()))
}

async fn meta_count(sql: String) -> Result<u64> {
    let mut t = connect(&target()).await?;
    Ok(scalar::<Option<u64>>(&mut t, &sql)
        .await
        .ok()
        .flatten()
        .unwrap_or(0))
}

/// Waits until the job's first full pass has stored every chunk.
async fn first_full_pass(job_name: &str, child: &mut FerryChild) -> Result<()> {
    let sql = format!(
        "SELECT COUNT(*) FROM ferry_meta.verify_pass WHERE job = '{job_name}' AND last_full_at IS NOT NULL"
    );
    wait_until(180, "the first full verification pass", || {
        let sql = sql.clone();
        let running = child.assert_running();
        async move {
            running?;
            Ok(meta_count(sql).await? > 0)
        }
    })
    .await
}

/// Waits until the target row `id` of `db.t` has `v = want` (the replay applied it).
async fn applied(db: &str, id: u64, want: i64) -> Result<()> {
    let sql = format!("SELECT COUNT(*) FROM {db}.t WHERE id = {id} AND v = {want}");
    wait_until(60, "the replay to apply the source's change", || {
        let sql = sql.clone();
        async move { Ok(meta_count(sql).await? == 1) }
    })
    .await
}

/// The "N of M chunks digested again, R rows read" line of the summary: (N, M).
fn rehashed(out: &str) -> Option<(u64, u64)> {
    rehashed_rows(out).map(|(n, m, _)| (n, m))
}

/// (N, M, R) of the summary's cut-over line.
fn rehashed_rows(out: &str) -> Option<(u64, u64, u64)> {
    let line = out.lines().find(|l| l.contains("chunks digested again"))?;
    let mut nums = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok());
    Some((nums.next()?, nums.next()?, nums.next()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_job_cutover_rehashes_only_changed_chunks() -> Result<()> {
    const DB: &str = "cv_consistent";
    const JOB: &str = "cv-consistent";
    setup(DB, JOB).await?;
    let mut child = start(DB, JOB, 0, &["--restart"])?;
    first_full_pass(JOB, &mut child).await?;
    // Changes in two chunks (2 and 7) after the full pass.
    let mut s = connect(&source()).await?;
    exec(
        &mut s,
        &format!(
            "UPDATE {DB}.t SET v = 500 WHERE id IN (2500, 2501); UPDATE {DB}.t SET v = 500 WHERE id = 7500"
        ),
    )
    .await?;
    applied(DB, 7500, 500).await?;
    child.signal("USR1")?;
    let (st, out) = child.wait(180).await?;
    assert!(st.success(), "a consistent job exits 0:\n{out}");
    let (n, total, read) = rehashed_rows(&out).ok_or_else(|| anyhow::anyhow!("no cut-over line:\n{out}"))?;
    assert_eq!(total, ROWS / CHUNK + 1, "{out}");
    assert!(
        n <= 2,
        "only the two changed chunks may be digested again at cut-over, not {n}:\n{out}"
    );
    // Of each, only the part holding the changed rows (16 ids), not its 1,000 rows.
    assert!(
        read <= 2 * 16,
        "only the touched parts may be read again at cut-over, not {read} rows:\n{out}"
    );
    assert!(out.contains("verified    consistent"), "{out}");
    assert_db_equal(DB, DB).await?;
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut connect(&target()).await?, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_rows_are_found_by_the_rescan_and_at_cutover() -> Result<()> {
    const DB: &str = "cv_planted";
    const JOB: &str = "cv-planted";
    setup(DB, JOB).await?;
    let mut child = start(DB, JOB, 1, &["--restart"])?;
    first_full_pass(JOB, &mut child).await?;
    let mut t = connect(&target()).await?;
    // Behind Ferry's back, in chunk 15, which no event touches: only a full rescan can see it.
    exec(
        &mut t,
        &format!("UPDATE {DB}.t SET pad = 'planted-untouched' WHERE id = 15500"),
    )
    .await?;
    wait_until(
        120,
        "the background full rescan to store chunk 15 as different",
        || {
            let sql = format!(
            "SELECT COUNT(*) FROM ferry_meta.verify_chunk WHERE job = '{JOB}' AND db = '{DB}' AND tbl = 't' \
             AND chunk_no = 15 AND status = 2"
        );
            async move { Ok(meta_count(sql).await? == 1) }
        },
    )
    .await?;
    // In the part of chunk 3 the replay touches (id 3500).
    exec(
        &mut t,
        &format!("UPDATE {DB}.t SET pad = 'planted-touched' WHERE id = 3501"),
    )
    .await?;
    let mut s = connect(&source()).await?;
    exec(&mut s, &format!("UPDATE {DB}.t SET v = 501 WHERE id = 3500")).await?;
    applied(DB, 3500, 501).await?;
    child.signal("USR1")?;
    let (st, out) = child.wait(180).await?;
    assert_eq!(st.code(), Some(2), "differences found: exit 2\n{out}");
    assert!(out.contains("DIFFERENCES"), "{out}");
    for id in ["3501", "15500"] {
        assert!(out.contains(id), "row {id} named in the report:\n{out}");
    }
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_dirty_mark() -> Result<()> {
    const DB: &str = "cv_kill";
    const JOB: &str = "cv-kill";
    setup(DB, JOB).await?;
    // No rescan: after the first pass, only dirty marks make a chunk be digested again.
    let mut child = start(DB, JOB, 0, &["--restart"])?;
    first_full_pass(JOB, &mut child).await?;
    let mut t = connect(&target()).await?;
    let mut s = connect(&source()).await?;
    // A target row planted in chunk 5 (unseen: no rescan), then a source change in its part.
    exec(
        &mut t,
        &format!("UPDATE {DB}.t SET pad = 'planted-before-kill' WHERE id = 5501"),
    )
    .await?;
    exec(&mut s, &format!("UPDATE {DB}.t SET v = 502 WHERE id = 5500")).await?;
    applied(DB, 5500, 502).await?;
    // The replay committed the change with its mark: kill -9 now.
    child.kill9()?;
    let marked = meta_count(format!(
        "SELECT COUNT(*) FROM ferry_meta.verify_dirty WHERE job = '{JOB}' AND chunk_no = 5"
    ))
    .await?;
    let differs = meta_count(format!(
        "SELECT COUNT(*) FROM ferry_meta.verify_chunk WHERE job = '{JOB}' AND chunk_no = 5 AND status = 2"
    ))
    .await?;
    assert!(
        marked + differs > 0,
        "chunk 5 is marked dirty (or already stored as different) after the kill"
    );
    // Resume and cut over as soon as caught up.
    let mut again = start(DB, JOB, 0, &["--complete-when-caught-up"])?;
    let (st, out) = again.wait(180).await?;
    assert_eq!(
        st.code(),
        Some(2),
        "the planted row is a difference: exit 2\n{out}"
    );
    assert!(out.contains("5501"), "row 5501 named:\n{out}");
    let (n, _) = rehashed(&out).ok_or_else(|| anyhow::anyhow!("no cut-over line:\n{out}"))?;
    assert!(n >= 1, "{out}");
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_and_truncate_replan_only_their_table() -> Result<()> {
    const DB: &str = "cv_ddl";
    const JOB: &str = "cv-ddl";
    setup(DB, JOB).await?;
    // A second table `u`, which no DDL touches.
    let mut s = connect(&source()).await?;
    exec(
        &mut s,
        &format!("USE {DB}; CREATE TABLE u LIKE t; INSERT INTO u SELECT * FROM t;"),
    )
    .await?;
    let mut child = start(DB, JOB, 0, &["--restart"])?;
    first_full_pass(JOB, &mut child).await?;
    let u_digested = |extra: &str| {
        format!(
            "SELECT COUNT(*) FROM ferry_meta.verify_chunk WHERE job = '{JOB}' AND db = '{DB}' AND tbl = 'u' \
             AND status = 1 {extra}"
        )
    };
    let u_chunks = meta_count(u_digested("")).await?;
    assert_eq!(u_chunks, ROWS / CHUNK + 1);
    let mut t = connect(&target()).await?;
    let first_pass_at: String = scalar(
        &mut t,
        &format!(
            "SELECT CAST(MAX(verified_at) AS CHAR) FROM ferry_meta.verify_chunk WHERE job = '{JOB}' \
             AND db = '{DB}' AND tbl = 'u'"
        ),
    )
    .await?;
    // On `t`: a DDL (its stored digests no longer describe its rows), then TRUNCATE and 1,500
    // new rows with a primary-key update across chunks. On `u`: a change in chunk 3, and a
    // target row of the same part changed behind Ferry's back.
    exec(
        &mut t,
        &format!("UPDATE {DB}.u SET pad = 'planted-touched' WHERE id = 3501"),
    )
    .await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; ALTER TABLE t ADD COLUMN extra INT NOT NULL DEFAULT 7; TRUNCATE t;
             INSERT INTO {DB}.t (id, v, pad) SELECT seq, 1, 'new' FROM seq_1_to_1500;
             UPDATE {DB}.t SET id = 1600, v = 503 WHERE id = 10;
             UPDATE {DB}.u SET v = 504 WHERE id = 3500"
        ),
    )
    .await?;
    applied(DB, 1600, 503).await?;
    child.signal("USR1")?;
    let (st, out) = child.wait(180).await?;
    assert_eq!(
        st.code(),
        Some(2),
        "the planted row is a difference: exit 2\n{out}"
    );
    assert!(out.contains("3501"), "row 3501 named:\n{out}");
    // `t` planned again after the TRUNCATE: 1,500 rows make 2 chunks, not the 21 of the first
    // plan; `u` kept its 21. At cut-over at most `t`'s 2 chunks and `u`'s chunk 3 were digested
    // again.
    let (n, total) = rehashed(&out).ok_or_else(|| anyhow::anyhow!("no cut-over line:\n{out}"))?;
    assert_eq!(total, 2 + u_chunks, "{out}");
    assert!(n <= 3, "{out}");
    // `u`'s other chunks kept the digests of the first pass: never digested again.
    let untouched = meta_count(u_digested(&format!(
        "AND chunk_no <> 3 AND verified_at <= '{first_pass_at}'"
    )))
    .await?;
    assert_eq!(untouched, u_chunks - 1, "{out}");
    // Repair the planted row: then both tables are equal, `t` with its 1,500 new rows.
    exec(
        &mut t,
        &format!("UPDATE {DB}.u SET pad = MD5(3501) WHERE id = 3501"),
    )
    .await?;
    assert_db_equal(DB, DB).await?;
    assert_eq!(
        scalar::<u64>(&mut t, &format!("SELECT COUNT(*) FROM {DB}.t")).await?,
        1500
    );
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_chunk_is_split_in_place() -> Result<()> {
    const DB: &str = "cv_split";
    const JOB: &str = "cv-split";
    setup(DB, JOB).await?;
    let mut child = start(DB, JOB, 0, &["--restart"])?;
    first_full_pass(JOB, &mut child).await?;
    let mut t = connect(&target()).await?;
    let chunks = |extra: &str| {
        format!(
            "SELECT COUNT(*) FROM ferry_meta.verify_chunk WHERE job = '{JOB}' AND db = '{DB}' AND tbl = 't' {extra}"
        )
    };
    let first_pass_at: String = scalar(
        &mut t,
        &format!(
            "SELECT CAST(MAX(verified_at) AS CHAR) FROM ferry_meta.verify_chunk WHERE job = '{JOB}' AND db = '{DB}'"
        ),
    )
    .await?;
    // Many inserts into one key range: 3,000 rows above the last bound (20,000), all in the last
    // chunk (20,000, +inf), which grows past twice the chunk size.
    let mut s = connect(&source()).await?;
    exec(
        &mut s,
        &format!("USE {DB}; INSERT INTO t SELECT seq, seq % 97, MD5(seq) FROM seq_20001_to_23000"),
    )
    .await?;
    // Digested with 3,000 rows, it is split at the next pass: retired, and its pieces (20,000,
    // 21,000], (21,000, 22,000], (22,000, 23,000], (23,000, +inf) digested equal under the
    // table's new root.
    wait_until(180, "the grown chunk to be split and its pieces verified", || {
        let (retired, in_use) = (chunks("AND status = 3"), chunks("AND status = 1"));
        let root = format!(
            "SELECT COUNT(*) FROM ferry_meta.verify_root WHERE job = '{JOB}' AND db = '{DB}' AND tbl = 't' \
             AND chunks = 24 AND src_root = dst_root"
        );
        let running = child.assert_running();
        async move {
            running?;
            Ok(meta_count(retired).await? == 1
                && meta_count(in_use).await? == 24
                && meta_count(root).await? == 1)
        }
    })
    .await?;
    // Not planned again: the first 20 chunks kept their numbers and first-pass digests.
    let kept = meta_count(chunks(&format!(
        "AND chunk_no < 20 AND status = 1 AND verified_at <= '{first_pass_at}'"
    )))
    .await?;
    assert_eq!(kept, 20);
    // A source change and a target row changed behind Ferry's back in one part of one piece.
    exec(
        &mut t,
        &format!("UPDATE {DB}.t SET pad = 'planted-in-a-piece' WHERE id = 22501"),
    )
    .await?;
    exec(&mut s, &format!("UPDATE {DB}.t SET v = 505 WHERE id = 22500")).await?;
    applied(DB, 22500, 505).await?;
    child.signal("USR1")?;
    let (st, out) = child.wait(180).await?;
    assert_eq!(
        st.code(),
        Some(2),
        "the planted row is a difference: exit 2\n{out}"
    );
    assert!(out.contains("22501"), "row 22501 named:\n{out}");
    let (n, total) = rehashed(&out).ok_or_else(|| anyhow::anyhow!("no cut-over line:\n{out}"))?;
    assert_eq!(total, 24, "{out}");
    assert!(n >= 1, "{out}");
    // Repaired, the tables are equal: the split lost no row.
    exec(
        &mut t,
        &format!("UPDATE {DB}.t SET pad = MD5(22501) WHERE id = 22501"),
    )
    .await?;
    assert_db_equal(DB, DB).await?;
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

/// A grown chunk of a table keyed by `key` (`k` a text column, `key_cols` the whole key in
/// order, `g` = 1 when `key_cols` has it): rows `key-000001` .. `key-020000` (chunk n ends at
/// `key-{(n+1)*1000}`), then 3,000 keys `KEY-010000-nnnn`, which the case-insensitive collation
/// puts between `key-010000` and `key-010001` (Rust's byte order would not): chunk 10 grows to
/// 4,000 rows and is split in place into 4 pieces, cut strictly inside it. A target row planted in
/// a piece is named at cut-over, and repaired the tables are equal.
async fn split_text_key(db: &str, job: &str, columns: &str, key_cols: &str) -> Result<()> {
    let g = if key_cols.contains('g') { "1, " } else { "" };
    setup_with(
        db,
        job,
        &format!(
            "USE {db}; CREATE TABLE t ({columns}
               k VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL,
               v INT NOT NULL, pad CHAR(40) NOT NULL, PRIMARY KEY ({key_cols}));
             INSERT INTO t SELECT {g}CONCAT('key-', LPAD(seq, 6, '0')), seq % 97, MD5(seq) FROM seq_1_to_{ROWS};"
        ),
    )
    .await?;
    let mut child = start(db, job, 0, &["--restart"])?;
    first_full_pass(job, &mut child).await?;
    let chunks = |extra: &str| {
        format!(
            "SELECT COUNT(*) FROM ferry_meta.verify_chunk WHERE job = '{job}' AND db = '{db}' AND tbl = 't' {extra}"
        )
    };
    assert_eq!(meta_count(chunks("AND status = 1")).await?, ROWS / CHUNK + 1);
    let mut s = connect(&source()).await?;
    exec(
        &mut s,
        &format!(
            "USE {db}; INSERT INTO t SELECT {g}CONCAT('KEY-010000-', LPAD(seq, 4, '0')), seq % 97, MD5(seq)
             FROM seq_1_to_3000"
        ),
    )
    .await?;
    // Split at the next pass; the table's new root equal.
    wait_until(180, "the grown chunk to be split and its pieces verified", || {
        let (retired, in_use) = (chunks("AND status = 3"), chunks("AND status = 1"));
        let root = format!(
            "SELECT COUNT(*) FROM ferry_meta.verify_root WHERE job = '{job}' AND db = '{db}' AND tbl = 't' \
             AND chunks = 24 AND src_root = dst_root"
        );
        let running = child.assert_running();
        async move {
            running?;
            Ok(meta_count(retired).await? == 1
                && meta_count(in_use).await? == 24
                && meta_count(root).await? == 1)
        }
    })
    .await?;
    // A source change and a target row changed behind Ferry's back in one piece.
    let mut t = connect(&target()).await?;
    exec(
        &mut t,
        &format!("UPDATE {db}.t SET pad = 'planted-in-a-piece' WHERE k = 'KEY-010000-2600'"),
    )
    .await?;
    exec(
        &mut s,
        &format!("UPDATE {db}.t SET v = 505 WHERE k = 'KEY-010000-2500'"),
    )
    .await?;
    let applied = format!("SELECT COUNT(*) FROM {db}.t WHERE k = 'KEY-010000-2500' AND v = 505");
    wait_until(60, "the replay to apply the source's change", || {
        let sql = applied.clone();
        async move { Ok(meta_count(sql).await? == 1) }
    })
    .await?;
    child.signal("USR1")?;
    let (st, out) = child.wait(180).await?;
    assert_eq!(
        st.code(),
        Some(2),
        "the planted row is a difference: exit 2\n{out}"
    );
    assert!(
        out.contains("KEY-010000-2600"),
        "row KEY-010000-2600 named:\n{out}"
    );
    let (_, total) = rehashed(&out).ok_or_else(|| anyhow::anyhow!("no cut-over line:\n{out}"))?;
    assert_eq!(total, 24, "{out}");
    // Repaired, the tables are equal: the split lost no row.
    exec(
        &mut t,
        &format!("UPDATE {db}.t SET pad = MD5(2600) WHERE k = 'KEY-010000-2600'"),
    )
    .await?;
    assert_db_equal(db, db).await?;
    drop_dbs(&mut s, &[db]).await?;
    drop_dbs(&mut t, &[db]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_chunk_of_a_text_key_is_split_in_place() -> Result<()> {
    split_text_key("cv_split_text", "cv-split-text", "", "k").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_chunk_of_a_composite_key_is_split_in_place() -> Result<()> {
    split_text_key("cv_split_pair", "cv-split-pair", "g INT NOT NULL,", "g, k").await
}
