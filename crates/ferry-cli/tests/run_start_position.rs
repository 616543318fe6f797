//! `Ferry.StartPosition`: an incremental-only job (MigrateType 3) that copies no structure and
//! no data and replays the source's binlog from a given file/offset or time. Only databases
//! named `fsp_*` are touched.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::json;

const TABLE: &str = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))";

async fn both_sides(db: &str) -> Result<(mysql_async::Conn, mysql_async::Conn)> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    fresh_db(&mut t, db).await?;
    exec(&mut s, &format!("USE {db}; {TABLE}")).await?;
    exec(&mut t, &format!("USE {db}; {TABLE}")).await?;
    Ok((s, t))
}

async fn master_pos(s: &mut mysql_async::Conn) -> Result<(String, u64)> {
    let row: Option<mysql_async::Row> = s.query_first("SHOW MASTER STATUS").await?;
    let row = row.ok_or_else(|| anyhow::anyhow!("the source has no binlog"))?;
    let file: String = row.get(0).ok_or_else(|| anyhow::anyhow!("no file"))?;
    let pos: u64 = row.get(1).ok_or_else(|| anyhow::anyhow!("no pos"))?;
    Ok((file, pos))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_file_and_offset() -> Result<()> {
    const DB: &str = "fsp_file";
    let (mut s, mut t) = both_sides(DB).await?;
    // Copied by hand: row 1 exists on both sides before the start position.
    exec(&mut s, &format!("INSERT INTO {DB}.t VALUES (1, 'before')")).await?;
    exec(&mut t, &format!("INSERT INTO {DB}.t VALUES (1, 'before')")).await?;
    let (file, pos) = master_pos(&mut s).await?;
    exec(
        &mut s,
        &format!(
            "INSERT INTO {DB}.t VALUES (2, 'after'), (3, 'after'); \
             UPDATE {DB}.t SET v = 'changed' WHERE id = 1; DELETE FROM {DB}.t WHERE id = 3"
        ),
    )
    .await?;
    let j = job(
        "fsp-file",
        json!([{"Database": DB}]),
        json!({"StartPosition": {"File": file, "Offset": pos}}),
        3,
    );
    let out = run(
        &write_job("fsp-file", &j),
        &["--restart", "--complete-when-caught-up"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_db_equal(DB, DB).await?;
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_time() -> Result<()> {
    const DB: &str = "fsp_time";
    let (mut s, mut t) = both_sides(DB).await?;
    exec(&mut s, &format!("INSERT INTO {DB}.t VALUES (1, 'before')")).await?;
    exec(&mut t, &format!("INSERT INTO {DB}.t VALUES (1, 'before')")).await?;
    // T: a second strictly after the row above was written.
    let before: u64 = s
        .query_first("SELECT UNIX_TIMESTAMP()")
        .await?
        .unwrap_or_default();
    wait_until(10, "the source's clock to pass a second", || async move {
        let mut c = connect(&source()).await?;
        let now: u64 = c
            .query_first("SELECT UNIX_TIMESTAMP()")
            .await?
            .unwrap_or_default();
        Ok(now > before)
    })
    .await?;
    let at = before + 1;
    exec(
        &mut s,
        &format!("INSERT INTO {DB}.t VALUES (2, 'after'); UPDATE {DB}.t SET v = 'changed' WHERE id = 1"),
    )
    .await?;
    // Were row 1's insert replayed, the conflict policy (stop) would fail the job.
    let j = job(
        "fsp-time",
        json!([{"Database": DB}]),
        json!({"StartPosition": {"Time": at}}),
        3,
    );
    let out = run(
        &write_job("fsp-time", &j),
        &["--restart", "--complete-when-caught-up"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_db_equal(DB, DB).await?;
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_starts_are_refused_by_name() -> Result<()> {
    const DB: &str = "fsp_refused";
    let (mut s, mut t) = both_sides(DB).await?;
    let (file, _) = master_pos(&mut s).await?;
    let base = file.rsplit_once('.').map(|(b, _)| b).unwrap_or("mysql-bin");
    let purged = format!("{base}.000000");
    let cases = [
        (json!({"File": purged, "Offset": 4}), purged.clone()),
        (
            json!({"File": "no-such-bin.000001", "Offset": 4}),
            "no-such-bin.000001".to_string(),
        ),
        (json!({"Time": 1}), "Time".to_string()),
    ];
    for (i, (sp, needle)) in cases.into_iter().enumerate() {
        let name = format!("fsp-refused-{i}");
        let j = job(&name, json!([{"Database": DB}]), json!({"StartPosition": sp}), 3);
        let out = run(&write_job(&name, &j), &["--restart", "--complete-when-caught-up"]);
        let o = text(&out);
        assert_eq!(out.status.code(), Some(1), "{o}");
        assert!(o.contains("Ferry.StartPosition"), "{o}");
        assert!(o.contains(&needle) || needle == "Time", "{o}");
        assert!(!o.contains("panicked"), "{o}");
    }
    // Only with MigrateType 3.
    let j = job(
        "fsp-refused-type",
        json!([{"Database": DB}]),
        json!({"StartPosition": {"File": file, "Offset": 4}}),
        2,
    );
    let out = run(&write_job("fsp-refused-type", &j), &["--restart"]);
    let o = text(&out);
    assert_eq!(out.status.code(), Some(1), "{o}");
    assert!(
        o.contains("Ferry.StartPosition") && o.contains("MigrateType 3"),
        "{o}"
    );
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

/// `{"Gtid": …}`: the target holds the GTID state given (row 1 on domain 0, and a later
/// transaction on domain 7 copied by hand); replay starts with the first transaction the state
/// does not contain and skips the later one it does (were it replayed, its insert would conflict).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_after_a_gtid_state() -> Result<()> {
    const DB: &str = "fsp_gtid";
    let (mut s, mut t) = both_sides(DB).await?;
    exec(&mut s, &format!("INSERT INTO {DB}.t VALUES (1, 'before')")).await?;
    exec(
        &mut t,
        &format!("INSERT INTO {DB}.t VALUES (1, 'before'), (10, 'domain 7')"),
    )
    .await?;
    let held: String = s
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await?
        .unwrap_or_default();
    exec(&mut s, &format!("INSERT INTO {DB}.t VALUES (2, 'after')")).await?;
    exec(
        &mut s,
        &format!("SET SESSION gtid_domain_id = 7; INSERT INTO {DB}.t VALUES (10, 'domain 7'); SET SESSION gtid_domain_id = 0"),
    )
    .await?;
    let now: String = s
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await?
        .unwrap_or_default();
    exec(&mut s, &format!("UPDATE {DB}.t SET v = 'changed' WHERE id = 1")).await?;
    // The state: domain 0 as it was before row 2, domain 7 including row 10.
    let domain = |text: &str, d: &str| {
        text.split(',')
            .map(str::trim)
            .find(|g| g.split('-').next() == Some(d))
            .map(str::to_string)
    };
    let mut state: Vec<String> = held
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty() && g.split('-').next() != Some("7"))
        .map(str::to_string)
        .collect();
    state.extend(domain(&now, "7"));
    assert!(domain(&held, "0").is_some(), "domain 0 in {held}");
    let j = job(
        "fsp-gtid",
        json!([{"Database": DB}]),
        json!({"StartPosition": {"Gtid": state.join(",")}}),
        3,
    );
    let out = run(
        &write_job("fsp-gtid", &j),
        &["--restart", "--complete-when-caught-up"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_db_equal(DB, DB).await?;
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}
