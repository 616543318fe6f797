//! Helpers shared by the loader's integration tests (test databases start with `fl_`, job keys
//! with `fl-`).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_core::catalog;
use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::sql::{qualified, quote_ident};
use ferry_core::throttle::Throttle;
use ferry_load::{LoadOptions, TableTask, WriteMethod};
use ferry_testkit::{connect, source, target};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// Source and target connections.
pub async fn conns() -> Result<(Conn, Conn)> {
    Ok((connect(&source()).await?, connect(&target()).await?))
}

/// Recreates `db` on both servers.
pub async fn fresh_both(src: &mut Conn, dst: &mut Conn, src_db: &str, dst_db: &str) -> Result<()> {
    ferry_testkit::fresh_db(src, src_db).await?;
    ferry_testkit::fresh_db(dst, dst_db).await?;
    Ok(())
}

/// Creates the source's tables on the target, from `SHOW CREATE TABLE`.
pub async fn copy_tables(
    src: &mut Conn,
    dst: &mut Conn,
    src_db: &str,
    dst_db: &str,
    tables: &[&str],
) -> Result<()> {
    for t in tables {
        let row: Option<(String, String)> = src
            .query_first(format!("SHOW CREATE TABLE {}", qualified(src_db, t)))
            .await?;
        let (_, ddl) = row.context("no SHOW CREATE TABLE row")?;
        dst.query_drop(format!("USE {}", quote_ident(dst_db))).await?;
        dst.query_drop(ddl)
            .await
            .with_context(|| format!("creating {t} on the target"))?;
    }
    Ok(())
}

/// Tasks copying `tables` of `src_db` into `dst_db` under the same names (ANALYZE first, so the
/// estimates are fresh).
pub async fn tasks(src: &mut Conn, src_db: &str, dst_db: &str, tables: &[&str]) -> Result<Vec<TableTask>> {
    for t in tables {
        src.query_drop(format!("ANALYZE TABLE {}", qualified(src_db, t)))
            .await?;
    }
    let names: Vec<String> = tables.iter().map(|s| s.to_string()).collect();
    let schemas = catalog::read_tables(src, src_db, &names).await?;
    Ok(schemas
        .into_iter()
        .map(|s| TableTask {
            target_db: dst_db.to_string(),
            target_table: s.name.clone(),
            mapping: None,
            source: s,
        })
        .collect())
}

/// Options for a test job; old checkpoints of the job are cleared first.
pub async fn opts(job: &str, threads: usize, chunk_rows: u64, method: WriteMethod) -> Result<LoadOptions> {
    ferry_load::clear_checkpoints(&target(), job).await?;
    Ok(LoadOptions {
        job_key: job.to_string(),
        threads,
        chunk_rows,
        write_method: method,
        lock_timeout: Duration::from_secs(20),
        throttle: Arc::new(Throttle::new(0, 0)),
        target_binlog: true,
        snapshot_mode: ferry_core::SnapshotMode::Auto,
        fence: None,
    })
}

/// A progress sink that records every event.
pub fn recorder() -> (ProgressSink, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = events.clone();
    (Arc::new(move |e| e2.lock().unwrap().push(e)), events)
}

/// Asserts that a table has the same rows on both sides.
pub async fn assert_same(
    src: &mut Conn,
    dst: &mut Conn,
    src_db: &str,
    dst_db: &str,
    table: &str,
) -> Result<()> {
    let a = ferry_testkit::table_digest(src, src_db, table).await?;
    let b = ferry_testkit::table_digest(dst, dst_db, table).await?;
    assert_eq!(a, b, "{table}: source {src_db} and target {dst_db} differ");
    Ok(())
}

/// One integer from a pooled connection (for `wait_until` closures).
pub async fn pooled_u64(pool: &mysql_async::Pool, sql: &str) -> Result<u64> {
    let mut c = pool.get_conn().await?;
    let v: Option<u64> = c.query_first(sql).await?;
    Ok(v.unwrap_or(0))
}
