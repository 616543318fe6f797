//! Issue 12's "How it is checked", as one `ferry run` job (full + incremental, MigrateType 3) on
//! a MariaDB source of this test's own (`scripts/servers.sh start-one`, so its GLOBAL settings
//! change nothing for other tests): after the full load, `SET GLOBAL log_bin_compress = ON`, then
//! inserts, updates and deletes including a 64 MiB LONGBLOB and a table with an INVISIBLE
//! column; once the replay has caught up every table is equal by digest. The job's peak memory
//! (`VmHWM` of the `ferry` process) is printed (a figure, not an assertion; reported in
//! docs/compatibility.md). Then a session switches to `binlog_format = STATEMENT` and runs an
//! UPDATE on a selected table: the job stops with an error naming the event and its position,
//! and the target holds exactly the changes before it.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use ferry_testkit::child::FerryChild;
use ferry_testkit::instance::Instance;
use ferry_testkit::{connect, db_digest, drop_dbs, exec, fresh_db, target, wait_until};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde_json::json;

const DB: &str = "fe_binlog_e2e";
const JOB: &str = "fe-binlog-e2e";

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A connection that sends and reads rows of any size.
async fn connect_big(ep: &ferry_core::Endpoint) -> Result<Conn> {
    let opts = mysql_async::OptsBuilder::from_opts(ep.opts(vec!["SET time_zone = '+00:00'".into()]))
        .max_allowed_packet(Some(1 << 30));
    Ok(Conn::new(opts).await?)
}

/// The source's current binlog position.
async fn source_pos(s: &mut Conn) -> Result<(String, u64)> {
    let row: mysql_async::Row = s.query_first("SHOW MASTER STATUS").await?.context("binlog on")?;
    Ok((row.get_opt(0).context("file")??, row.get_opt(1).context("pos")??))
}

/// True once the job's replay checkpoint is at or past `at`.
async fn checkpoint_reached(t: &mut Conn, at: &(String, u64)) -> Result<bool> {
    let cp: Option<(String, u64)> = t
        .exec_first(
            "SELECT file, pos FROM ferry_meta.replay_checkpoint WHERE job = ?",
            (JOB,),
        )
        .await
        .unwrap_or(None);
    Ok(cp.is_some_and(|c| c >= *at))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_events_a_64_mib_blob_and_invisible_columns_then_a_statement_stops_the_job() -> Result<()>
{
    let inst = Instance::start("g_e2e").await?;
    let src = inst.endpoint()?;
    let mut s = connect_big(&src).await?;
    s.query_drop("SET GLOBAL log_bin_compress = OFF").await?;
    let mut t = connect_big(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; \
             CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB, note VARCHAR(50)); \
             CREATE TABLE inv (id INT PRIMARY KEY, v INT, h VARCHAR(20) INVISIBLE DEFAULT 'hidden'); \
             CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40)); \
             INSERT INTO blobs VALUES (1, 'small', 'loaded'); \
             INSERT INTO inv (id, v, h) VALUES (1, 1, 'loaded'); \
             INSERT INTO t VALUES (1, 'loaded'), (2, 'loaded');"
        ),
    )
    .await?;
    let mut j = job(JOB, json!([{"Database": DB}]), json!({"Threads": 2}), 3);
    j["SrcInfo"] =
        json!({"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()});
    let path = write_job(JOB, &j);
    let dir = path.parent().context("job dir")?.to_path_buf();
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"]);
    let mut child = FerryChild::spawn(cmd, &dir, JOB)?;
    let pid = child.pid();
    let stderr = dir.join(format!("{JOB}.stderr"));
    wait_until(300, "the full load to end and the replay to catch up", || {
        let stderr = stderr.clone();
        async move {
            Ok(std::fs::read_to_string(&stderr)
                .unwrap_or_default()
                .contains("caught up with the source"))
        }
    })
    .await
    .with_context(|| child.output())?;

    // during the replay: compressed events from here on
    s.query_drop("SET GLOBAL log_bin_compress = ON").await?;
    s.query_drop("SET GLOBAL log_bin_compress_min_len = 10").await?;
    let from = source_pos(&mut s).await?;
    let mut w = connect_big(&src).await?; // a session started after the switch
    let mib64 = 64 << 20;
    exec(
        &mut w,
        &format!(
            "USE {DB}; \
             INSERT INTO blobs VALUES (2, REPEAT(x'00ff27', {third}), 'a 64 MiB blob'); \
             UPDATE blobs SET b = CONCAT(SUBSTRING(b, 2), x'ee'), note = 'updated' WHERE id = 2; \
             INSERT INTO blobs VALUES (3, REPEAT('x', 1000), 'kept'); \
             UPDATE blobs SET note = 'touched' WHERE id = 1; \
             INSERT INTO inv (id, v) VALUES (2, 2); \
             INSERT INTO inv (id, v, h) VALUES (3, 3, 'explicit'); \
             UPDATE inv SET h = 'changed', v = 10 WHERE id = 1; \
             DELETE FROM inv WHERE id = 3; \
             UPDATE t SET v = REPEAT('compressed ', 3) WHERE id = 2; \
             INSERT INTO t VALUES (3, 'row three');",
            third = mib64 / 3 + 1,
        ),
    )
    .await?;
    let len: u64 =
        ferry_testkit::scalar(&mut w, &format!("SELECT LENGTH(b) FROM {DB}.blobs WHERE id = 2")).await?;
    assert!(len >= mib64 as u64, "{len}");
    // the blob goes away again in a later transaction
    exec(&mut w, &format!("USE {DB}; DELETE FROM blobs WHERE id = 2;")).await?;
    let types: Vec<mysql_async::Row> = s
        .query(format!("SHOW BINLOG EVENTS IN '{}' FROM {}", from.0, from.1))
        .await?;
    let names: Vec<String> = types
        .into_iter()
        .filter_map(|r| r.get_opt::<String, _>(2).and_then(|v| v.ok()))
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case("Write_rows_compressed_v1")),
        "the source did not compress its events: {names:?}"
    );

    let at = source_pos(&mut s).await?;
    wait_until(600, "the replay to catch up with the source", || {
        let ep = target();
        let at = at.clone();
        async move {
            let mut t = connect(&ep).await?;
            checkpoint_reached(&mut t, &at).await
        }
    })
    .await
    .with_context(|| child.output())?;
    let peak = peak_rss_kib(pid).context("the ferry process's VmHWM")?;
    eprintln!(
        "ferry run peak RSS (VmHWM) after replaying a 64 MiB LONGBLOB insert, update and delete: {peak} KiB ({} MiB)",
        peak / 1024
    );
    let a = db_digest(&mut s, DB).await?;
    let b = db_digest(&mut t, DB).await?;
    assert_eq!(a.len(), 3);
    assert_eq!(a, b, "source and target differ after the catch-up");
    let h: String = ferry_testkit::scalar(&mut t, &format!("SELECT h FROM {DB}.inv WHERE id = 1")).await?;
    assert_eq!(h, "changed", "the invisible column is replayed");

    // a session logging statements: the job stops at its UPDATE, nothing after it is applied
    let mut stmt = connect(&src).await?;
    exec(
        &mut stmt,
        &format!("USE {DB}; SET SESSION binlog_format = 'STATEMENT'; UPDATE t SET v = 'by statement' WHERE id = 1;"),
    )
    .await?;
    let stmt_end = source_pos(&mut s).await?;
    exec(
        &mut w,
        &format!("USE {DB}; INSERT INTO t VALUES (4, 'after the statement');"),
    )
    .await?;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = child.output();
    assert!(!status.success(), "the job must stop: {out}");
    for want in [
        "QUERY_EVENT",
        &format!("{DB}.t"),
        "binlog_format=ROW",
        &stmt_end.0,
    ] {
        assert!(out.contains(want), "{want:?} not in the job's output: {out}");
    }
    let rows: Vec<(i32, String)> = t.query(format!("SELECT id, v FROM {DB}.t ORDER BY id")).await?;
    assert_eq!(
        rows,
        vec![
            (1, "loaded".to_string()),
            (2, "compressed compressed compressed ".to_string()),
            (3, "row three".to_string())
        ],
        "exactly the changes before the statement"
    );
    s.query_drop("SET GLOBAL log_bin_compress = OFF").await?;
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}
