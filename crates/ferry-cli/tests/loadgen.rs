//! `ferry loadgen`: prepares sysbench-like tables and commits the transactions it reports.

mod common;

use anyhow::Result;
use ferry_testkit::{connect, drop_dbs, scalar, source};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepares_tables_and_commits_transactions() -> Result<()> {
    let src = source();
    let url = format!(
        "mysql://{}:{}@{}:{}",
        src.user,
        src.password.expose(),
        src.host,
        src.port
    );
    let out = common::ferry()
        .args([
            "loadgen",
            "--url",
            &url,
            "--database",
            "flg_db",
            "--tables",
            "2",
            "--rows",
            "500",
        ])
        .args(["--transactions", "40", "--rate", "0", "--duration", "0"])
        .output()?;
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    let committed: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("loadgen: ")?
                .split(" transactions committed,")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(committed >= 40, "{text}");
    let mut conn = connect(&src).await?;
    let tables: u64 = scalar(
        &mut conn,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'flg_db'",
    )
    .await?;
    assert_eq!(tables, 2);
    // Every transaction deletes at most one row and inserts one.
    let rows: u64 = scalar(
        &mut conn,
        "SELECT (SELECT COUNT(*) FROM flg_db.sbtest1) + (SELECT COUNT(*) FROM flg_db.sbtest2)",
    )
    .await?;
    assert!(rows >= 1000, "rows: {rows}");
    drop_dbs(&mut conn, &["flg_db"]).await?;

    // A wrong password is a clear error, not a panic.
    let bad = format!("mysql://{}:wrong@{}:{}", src.user, src.host, src.port);
    let out = common::ferry()
        .args(["loadgen", "--url", &bad, "--duration", "1"])
        .output()?;
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Access denied") && !text.contains("panicked"),
        "{text}"
    );
    Ok(())
}
