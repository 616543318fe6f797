//! Binlog features that change what the source writes (issue 12, "zero silent loss"): each is
//! either replayed exactly (the target equal to the source by digest) or stops the replay with a
//! definite error naming the event, its position, GTID and the remedy.
//!
//! Tests that need a GLOBAL setting on the source (`log_bin_compress`, `binlog_row_image`,
//! `max_allowed_packet`) start an extra server of their own with `scripts/servers.sh start-one`
//! (each test its own instance name) and set it there; the shared source is never reconfigured.
//! The target is the shared test target, with each test's own database names.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::{Endpoint, ErrorKind, Selection};
use ferry_replay::apply::{checkpoint, lag};
use ferry_replay::{run_replay, BinlogPos, ReplayControl, ReplayError, ReplayOptions, ReplaySummary};
use ferry_testkit as tk;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use support::{master_pos, selection};
use tokio::task::JoinHandle;

/// `scripts/servers.sh ARGS…`; returns stdout.
fn servers(args: &[&str]) -> Result<String> {
    let script = tk::repo_root().join("scripts/servers.sh");
    let out = Command::new("bash").arg(&script).args(args).output()?;
    if !out.status.success() {
        bail!(
            "scripts/servers.sh {}: {}\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// An extra source instance of this test's own (started once, reused), with `globals` set.
async fn own_source(name: &str, globals: &[&str]) -> Result<Endpoint> {
    servers(&["start-one", name])?;
    let url = servers(&["url", name])?;
    let ep = Endpoint::from_url(url.lines().last().unwrap_or_default())?;
    let mut c = tk::connect(&ep).await?;
    for g in globals {
        c.query_drop(format!("SET GLOBAL {g}"))
            .await
            .with_context(|| g.to_string())?;
    }
    let _ = c.disconnect().await;
    Ok(ep)
}

struct Run {
    control: ReplayControl,
    task: JoinHandle<Result<ReplaySummary, ReplayError>>,
}

/// Fresh `db` on `src` and on the shared target, both created with `ddl`.
async fn fresh(src: &Endpoint, db: &str, ddl: &str) -> Result<(Conn, Conn)> {
    fresh_on(src, &tk::target(), db, ddl).await
}

/// Fresh `db` on `src` and on `dst`, both created with `ddl`.
async fn fresh_on(src: &Endpoint, dst: &Endpoint, db: &str, ddl: &str) -> Result<(Conn, Conn)> {
    let mut s = tk::connect(src).await?;
    let mut t = tk::connect(dst).await?;
    tk::fresh_db(&mut s, db).await?;
    tk::fresh_db(&mut t, db).await?;
    if !ddl.trim().is_empty() {
        tk::exec(&mut s, &format!("USE {db}; {ddl}")).await?;
        tk::exec(&mut t, &format!("USE {db}; {ddl}")).await?;
    }
    Ok((s, t))
}

async fn start(
    src: &Endpoint,
    job: &str,
    sel: Selection,
    start: BinlogPos,
    tune: impl FnOnce(&mut ReplayOptions),
) -> Result<Run> {
    start_to(src, &tk::target(), job, sel, start, tune).await
}

async fn start_to(
    src: &Endpoint,
    dst: &Endpoint,
    job: &str,
    sel: Selection,
    start: BinlogPos,
    tune: impl FnOnce(&mut ReplayOptions),
) -> Result<Run> {
    let mut t = tk::connect(dst).await?;
    checkpoint::clear(&mut t, job).await?;
    let sink: ProgressSink = Arc::new(|_e: ProgressEvent| {});
    let mut opts = ReplayOptions::new(job);
    opts.start = Some(start);
    opts.progress_every = Duration::from_millis(250);
    tune(&mut opts);
    let control = ReplayControl::new();
    let c2 = control.clone();
    let (src, dst) = (src.clone(), dst.clone());
    let task = tokio::spawn(async move { run_replay(&src, &dst, &sel, opts, sink, c2).await });
    Ok(Run { control, task })
}

impl Run {
    async fn complete(self, src: &Endpoint) -> Result<ReplaySummary> {
        let mut s = tk::connect(src).await?;
        let at = master_pos(&mut s).await?;
        self.control.complete();
        let summary = tokio::time::timeout(Duration::from_secs(600), self.task)
            .await
            .context("replay did not complete within 600 s")???;
        assert!(summary.completed);
        assert!(
            lag::pos_ge(&summary.final_pos, &at),
            "{} < {at}",
            summary.final_pos
        );
        Ok(summary)
    }

    /// The replay's definite error (it must stop by itself).
    async fn definite_error(self) -> Result<ReplayError> {
        let r = tokio::time::timeout(Duration::from_secs(180), self.task)
            .await
            .context("the replay did not stop by itself")??;
        let e = r.err().context("the replay should have stopped with an error")?;
        assert_eq!(e.kind(), ErrorKind::Definite, "{e}");
        Ok(e)
    }
}

/// A connection that reads rows of any size (the client otherwise takes the server's
/// `max_allowed_packet` as its bound).
async fn connect_big(ep: &Endpoint) -> Result<Conn> {
    let opts = mysql_async::OptsBuilder::from_opts(ep.opts(vec!["SET time_zone = '+00:00'".into()]))
        .max_allowed_packet(Some(1 << 30));
    Ok(Conn::new(opts).await?)
}

async fn assert_same(src: &Endpoint, db: &str) -> Result<()> {
    let mut s = connect_big(src).await?;
    let mut t = connect_big(&tk::target()).await?;
    let a = tk::db_digest(&mut s, db).await?;
    let b = tk::db_digest(&mut t, db).await?;
    assert!(!a.is_empty());
    assert_eq!(a, b, "source and target {db} differ");
    Ok(())
}

/// The event types the source logged in `file` from `from` on (`SHOW BINLOG EVENTS`).
async fn event_types(src: &Endpoint, from: &BinlogPos) -> Result<Vec<String>> {
    let mut c = tk::connect(src).await?;
    let rows: Vec<mysql_async::Row> = c
        .query(format!("SHOW BINLOG EVENTS IN '{}' FROM {}", from.file, from.pos))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.get_opt::<String, _>(2).and_then(|v| v.ok()))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_compressed_binlog_events_replay_exactly() -> Result<()> {
    let src = own_source(
        "g_cmp",
        &["log_bin_compress = ON", "log_bin_compress_min_len = 10"],
    )
    .await?;
    let db = "fb_compress";
    let (mut s, _t) = fresh(
        &src,
        db,
        "CREATE TABLE c (id INT PRIMARY KEY, v VARCHAR(200), b LONGBLOB); \
         CREATE TABLE k (a INT, note TEXT);",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start(&src, "fb-compress", selection(&[(db, db)]), pos.clone(), |o| {
        o.workers = 2
    })
    .await?;
    let big = "SELECT REPEAT(CONCAT(MD5(RAND()), 'ferry compressed binlog '), 60000)";
    tk::exec(
        &mut s,
        &format!(
            "USE {db}; \
             INSERT INTO c VALUES (1, REPEAT('a', 150), NULL), (2, 'two', x'00ff'), (3, 'three', NULL); \
             INSERT INTO c SELECT 4, 'big', ({big}); \
             ALTER TABLE c ADD COLUMN extra VARCHAR(100) NOT NULL DEFAULT 'a default long enough to be compressed'; \
             BEGIN; UPDATE c SET v = REPEAT('u', 190), extra = 'x' WHERE id = 1; \
             UPDATE c SET b = CONCAT(b, 'tail') WHERE id = 4; DELETE FROM c WHERE id = 3; COMMIT; \
             INSERT INTO k VALUES (1, REPEAT('keyless ', 40)), (1, REPEAT('keyless ', 40)); \
             DELETE FROM k LIMIT 1; \
             UPDATE c SET id = 30 WHERE id = 2;"
        ),
    )
    .await?;
    let types = event_types(&src, &pos).await?;
    for want in [
        "Query_compressed",
        "Write_rows_compressed_v1",
        "Update_rows_compressed_v1",
        "Delete_rows_compressed_v1",
    ] {
        assert!(
            types.iter().any(|t| t.eq_ignore_ascii_case(want)),
            "the source did not log {want}: {types:?}"
        );
    }
    run.complete(&src).await?;
    assert_same(&src, db).await?;
    let mut t = tk::connect(&tk::target()).await?;
    let n: i64 = tk::scalar(&mut t, &format!("SELECT LENGTH(b) FROM {db}.c WHERE id = 4")).await?;
    assert!(n > 2_000_000, "{n}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_change_logged_as_a_statement_stops_the_replay_by_name() -> Result<()> {
    // the shared source: binlog_format=STATEMENT is set for one session only
    let src = tk::source();
    let db = "fb_stmt_dml";
    let (mut s, mut t) = fresh(&src, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));").await?;
    let pos = master_pos(&mut s).await?;
    let run = start(&src, "fb-stmt-dml", selection(&[(db, db)]), pos, |_| {}).await?;
    tk::exec(
        &mut s,
        &format!("USE {db}; INSERT INTO t VALUES (1, 'a'), (2, 'b'); UPDATE t SET v = 'c' WHERE id = 2;"),
    )
    .await?;
    let mut stmt = tk::connect(&src).await?;
    tk::exec(
        &mut stmt,
        &format!("USE {db}; SET SESSION binlog_format = 'STATEMENT'; UPDATE t SET v = 'stmt' WHERE id = 1;"),
    )
    .await?;
    // the statement's own GTID (domain 0 on the test source)
    let gtid: String = tk::scalar(&mut stmt, "SELECT @@last_gtid").await?;
    tk::exec(&mut s, &format!("USE {db}; INSERT INTO t VALUES (3, 'after');")).await?;
    let e = run.definite_error().await?;
    let m = e.to_string();
    for want in [
        "QUERY_EVENT",
        "fb_stmt_dml.t",
        "binlog_format=ROW",
        "UPDATE t SET v = 'stmt'",
        &format!("GTID {gtid}"),
    ] {
        assert!(m.contains(want), "{want:?} not in {m}");
    }
    let cur = master_pos(&mut s).await?;
    assert!(m.contains(&cur.file), "{m}");
    // exactly the transactions before it
    let rows: Vec<(i32, String)> = t.query(format!("SELECT id, v FROM {db}.t ORDER BY id")).await?;
    assert_eq!(rows, vec![(1, "a".to_string()), (2, "c".to_string())]);
    Ok(())
}

/// The workload of the row-image test: inserts with omitted columns (defaults), updates of a
/// few columns, key changes, unique-key swaps across transactions, deletes, keyless rows and
/// blobs left out of the image.
fn row_image_workload(db: &str) -> String {
    format!(
        "USE {db}; \
         INSERT INTO p (id, a) VALUES (1, 10), (2, 20), (3, 30); \
         INSERT INTO p VALUES (4, 40, 'four', 'text four', '2020-02-02 02:02:02'); \
         UPDATE p SET a = a + 1 WHERE id <= 2; \
         UPDATE p SET b = 'bee', c = NULL WHERE id = 4; \
         UPDATE p SET id = 40 WHERE id = 4; \
         DELETE FROM p WHERE id = 3; \
         BEGIN; UPDATE p SET c = 'in a transaction' WHERE id = 1; INSERT INTO p (id, b) VALUES (5, 'five'); COMMIT; \
         INSERT INTO u VALUES (1, 'a@x', 1), (2, 'b@x', 2), (3, 'c@x', 3); \
         UPDATE u SET email = 'z@x' WHERE id = 1; \
         UPDATE u SET email = 'a@x' WHERE id = 2; \
         UPDATE u SET n = 20 WHERE id = 2; \
         UPDATE u SET email = 'b@x', n = 30 WHERE id = 3; \
         DELETE FROM u WHERE id = 1; \
         INSERT INTO k VALUES (1, 1), (1, 1), (2, 2); \
         UPDATE k SET b = 5 WHERE a = 2; DELETE FROM k WHERE a = 1 LIMIT 1; \
         INSERT INTO bl VALUES (1, REPEAT('blob one ', 5000), 1), (2, x'00010203', 2), (3, NULL, 3); \
         UPDATE bl SET n = n + 100; \
         UPDATE bl SET body = 'replaced' WHERE id = 2; \
         DELETE FROM bl WHERE id = 3; \
         INSERT INTO nk VALUES (1, 'one'), (2, 'two'); UPDATE nk SET v = 'deux' WHERE k = 2; DELETE FROM nk WHERE k = 1;"
    )
}

const ROW_IMAGE_TABLES: &str = "CREATE TABLE p (id INT PRIMARY KEY, a INT NOT NULL DEFAULT 7, \
     b VARCHAR(20) DEFAULT 'dflt', c TEXT, d DATETIME NOT NULL DEFAULT '2001-01-01 00:00:00'); \
     CREATE TABLE u (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL UNIQUE, n INT); \
     CREATE TABLE k (a INT, b INT); \
     CREATE TABLE bl (id INT PRIMARY KEY, body LONGBLOB, n INT); \
     CREATE TABLE nk (k INT NOT NULL, v VARCHAR(10), UNIQUE KEY (k));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_and_noblob_row_images_replay_exactly() -> Result<()> {
    for image in ["MINIMAL", "NOBLOB"] {
        let src = own_source("g_img", &[&format!("binlog_row_image = '{image}'")]).await?;
        let db = format!("fb_image_{}", image.to_ascii_lowercase());
        let (mut s, _t) = fresh(&src, &db, ROW_IMAGE_TABLES).await?;
        let logged: String = tk::scalar(&mut s, "SELECT @@session.binlog_row_image").await?;
        assert_eq!(logged, image);
        let pos = master_pos(&mut s).await?;
        let job = format!("fb-image-{image}");
        let run = start(&src, &job, selection(&[(&db, &db)]), pos, |o| o.workers = 4).await?;
        tk::exec(&mut s, &row_image_workload(&db)).await?;
        run.complete(&src).await?;
        assert_same(&src, &db).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimal_image_without_the_targets_key_is_refused_by_name() -> Result<()> {
    // the shared source, binlog_row_image=MINIMAL for the writing session only
    let src = tk::source();
    let db = "fb_image_nokey";
    let (mut s, mut t) = fresh(
        &src,
        db,
        "CREATE TABLE r (id INT PRIMARY KEY, a INT NOT NULL, b INT);",
    )
    .await?;
    s.query_drop("SET SESSION binlog_row_image = 'MINIMAL'").await?;
    // the target's row key is another column: the before image (id only) cannot find the row
    tk::exec(
        &mut t,
        &format!("USE {db}; ALTER TABLE r DROP PRIMARY KEY, ADD PRIMARY KEY (a)"),
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start(&src, "fb-image-nokey", selection(&[(db, db)]), pos, |_| {}).await?;
    tk::exec(
        &mut s,
        &format!("USE {db}; INSERT INTO r VALUES (1, 1, 1); UPDATE r SET b = 2 WHERE id = 1;"),
    )
    .await?;
    let e = run.definite_error().await?;
    let m = e.to_string();
    for want in [
        "UPDATE_ROWS_EVENT",
        "fb_image_nokey.r",
        "binlog_row_image=FULL",
        "(a)",
        "GTID 0-",
    ] {
        assert!(m.contains(want), "{want:?} not in {m}");
    }
    let b: Option<i32> = tk::scalar(&mut t, &format!("SELECT b FROM {db}.r WHERE a = 1")).await?;
    assert_eq!(b, Some(1), "the insert before it is applied, the update is not");
    Ok(())
}

/// A source that accepts rows of up to 64 MiB from its clients (`max_allowed_packet`), which
/// still writes larger events (a row of two 40 MiB values; an update's before and after image).
async fn big_source() -> Result<Endpoint> {
    own_source("g_big", &["max_allowed_packet = 67108864"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_larger_than_max_allowed_packet_and_long_values_replay_exactly() -> Result<()> {
    let src = big_source().await?;
    let db = "fb_big_rows";
    let (mut s, _t) = fresh(
        &src,
        db,
        "CREATE TABLE big (id INT PRIMARY KEY, a LONGBLOB, b LONGTEXT, n INT); \
         CREATE TABLE many (id INT PRIMARY KEY, v VARCHAR(100));",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start(&src, "fb-big-rows", selection(&[(db, db)]), pos, |o| {
        o.workers = 2
    })
    .await?;
    let forty = 40 << 20;
    tk::exec(
        &mut s,
        &format!(
            "USE {db}; \
             INSERT INTO big VALUES (1, REPEAT(x'00ff27', {third}), NULL, 1), (2, 'small', 'small', 2); \
             UPDATE big SET b = REPEAT('é\\\'', {quarter}), n = 10 WHERE id = 1; \
             UPDATE big SET n = 11 WHERE id = 1; \
             UPDATE big SET id = 3 WHERE id = 1;",
            third = forty / 3,
            quarter = forty / 4,
        ),
    )
    .await?;
    // a large transaction: 40 000 rows in one commit (the serial, streamed path)
    let mut txn = format!("USE {db}; BEGIN;");
    for chunk in 0..40 {
        txn.push_str("INSERT INTO many VALUES ");
        let vals: Vec<String> = (0..1000)
            .map(|i| format!("({}, REPEAT('m', {}))", chunk * 1000 + i, i % 100))
            .collect();
        txn.push_str(&vals.join(","));
        txn.push(';');
    }
    txn.push_str("DELETE FROM big WHERE id = 2; COMMIT;");
    tk::exec(&mut s, &txn).await?;
    run.complete(&src).await?;
    assert_same(&src, db).await?;
    let mut t = tk::connect(&tk::target()).await?;
    let (a, b): (u64, u64) = t
        .query_first(format!("SELECT LENGTH(a), LENGTH(b) FROM {db}.big WHERE id = 3"))
        .await?
        .context("row 3")?;
    assert!(a > 40_000_000 && b > 30_000_000, "{a} {b}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_larger_than_the_targets_max_allowed_packet_is_refused_by_name() -> Result<()> {
    let src = big_source().await?;
    let dst = own_source("g_bigdst", &["max_allowed_packet = 16777216"]).await?;
    let db = "fb_big_refused";
    let (mut s, mut t) = fresh_on(
        &src,
        &dst,
        db,
        "CREATE TABLE big (id INT PRIMARY KEY, a LONGBLOB);",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start_to(&src, &dst, "fb-big-refused", selection(&[(db, db)]), pos, |_| {}).await?;
    tk::exec(
        &mut s,
        &format!("USE {db}; INSERT INTO big VALUES (1, 'small'); INSERT INTO big VALUES (2, REPEAT('z', 20000000));"),
    )
    .await?;
    let e = run.definite_error().await?;
    let m = e.to_string();
    for want in [
        "20000000 bytes",
        "fb_big_refused.big",
        "max_allowed_packet",
        "16777216",
    ] {
        assert!(m.contains(want), "{want:?} not in {m}");
    }
    let ids: Vec<i32> = t.query(format!("SELECT id FROM {db}.big ORDER BY id")).await?;
    assert_eq!(ids, vec![1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_invisible_columns_replay_exactly() -> Result<()> {
    let src = tk::source();
    let db = "fb_invisible";
    let (mut s, _t) = fresh(
        &src,
        db,
        "CREATE TABLE i (id INT PRIMARY KEY, v VARCHAR(10), h INT INVISIBLE DEFAULT 5, \
         g INT AS (id * 2) VIRTUAL INVISIBLE, s INT AS (id + 1) PERSISTENT);",
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start(&src, "fb-invisible", selection(&[(db, db)]), pos, |_| {}).await?;
    tk::exec(
        &mut s,
        &format!(
            "USE {db}; INSERT INTO i (id, v) VALUES (1, 'a'), (2, 'b'); INSERT INTO i (id, v, h) VALUES (3, 'c', 30); \
             UPDATE i SET h = h + 1 WHERE id < 3; UPDATE i SET id = 4 WHERE id = 3; DELETE FROM i WHERE id = 1; \
             ALTER TABLE i ADD COLUMN w INT INVISIBLE DEFAULT 9; INSERT INTO i (id, v, w) VALUES (5, 'e', 50);"
        ),
    )
    .await?;
    run.complete(&src).await?;
    assert_same(&src, db).await?;
    Ok(())
}
