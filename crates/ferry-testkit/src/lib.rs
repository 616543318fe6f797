//! Test support shared by every crate's tests: the addresses of the two test servers started by
//! `scripts/servers.sh`, per-test databases, and exact, order-independent table digests; extra
//! server instances to restart ([`instance`]), the TCP fault proxy ([`proxy`]), `ferry`
//! subprocesses ([`child`]), the exactly-once writers and checks ([`exactly_once`]), and MySQL
//! binlog files built byte by byte ([`binlog_build`]), and table models for unit tests
//! ([`schema`]).
//!
//! A test that needs a server and finds none fails with a message saying how to start them; it
//! never passes silently.

pub mod type_matrix;

pub mod binlog_build;
pub mod child;
pub mod exactly_once;
pub mod instance;
pub mod proxy;
pub mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ferry_core::catalog;
use ferry_core::Endpoint;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use xxhash_rust::xxh3::Xxh3;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The MySQL binlog fixtures folder (`$FERRY_MYSQL_BINLOGS`, else `../shared/fixtures/mysql-binlogs`
/// next to the repository), or `None` after printing `skipped: <test>: fixtures folder absent`
/// (the files are not in the repository).
pub fn mysql_binlog_fixtures(test: &str) -> Option<PathBuf> {
    let dir = std::env::var("FERRY_MYSQL_BINLOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared/fixtures/mysql-binlogs"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: {test}: fixtures folder absent");
        None
    }
}

/// The test servers' state directory (`FERRY_TEST_DIR`, else `.ferry-test` in the repository).
pub fn state_dir() -> PathBuf {
    std::env::var("FERRY_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".ferry-test"))
}

/// A file of the test servers' generated TLS material (`ca.pem`, `other-ca.pem`, `client.pem`,
/// `client-key.pem`, …; see `scripts/servers.sh`).
pub fn tls_file(name: &str) -> PathBuf {
    state_dir().join("tls").join(name)
}

fn env_file_value(key: &str) -> Option<String> {
    let text = std::fs::read_to_string(state_dir().join("servers.env")).ok()?;
    text.lines().find_map(|l| {
        let l = l.trim().strip_prefix("export ").unwrap_or(l.trim());
        let (k, v) = l.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

fn endpoint(role: &str) -> Endpoint {
    let key = format!("FERRY_TEST_{role}_URL");
    let url = std::env::var(&key).ok().or_else(|| env_file_value(&key)).unwrap_or_else(|| {
        panic!("{key} is not set and .ferry-test/servers.env is missing: start the test servers with `scripts/servers.sh start` (or run `scripts/test.sh`)")
    });
    Endpoint::from_url(&url).unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// The source test server (binlog on).
pub fn source() -> Endpoint {
    endpoint("SOURCE")
}

/// The target test server.
pub fn target() -> Endpoint {
    endpoint("TARGET")
}

/// A shared job store for `ferry serve --store`: the URL of database `db` on the target test
/// server (no password in it) and the password, for `FERRY_STORE_PASSWORD`.
pub fn store_url(db: &str) -> (String, String) {
    store_url_on(&target(), db)
}

/// [`store_url`] on the server `ep` (an extra instance, to restart it).
pub fn store_url_on(ep: &Endpoint, db: &str) -> (String, String) {
    (
        format!("mysql://{}@{}:{}/{db}", ep.user, ep.host, ep.port),
        ep.password.expose().to_string(),
    )
}

/// A connection, failing the test with a clear message when the server is down.
pub async fn connect(ep: &Endpoint) -> Result<Conn> {
    ep.connect(vec!["SET time_zone = '+00:00'".into()])
        .await
        .with_context(|| {
            format!(
                "test server {} is not reachable: run `scripts/servers.sh start`",
                ep.display_name()
            )
        })
}

/// A quoted identifier (for test SQL).
pub fn quote(name: &str) -> String {
    ferry_core::sql::quote_ident(name)
}

/// Drops and recreates a database.
pub async fn fresh_db(conn: &mut Conn, db: &str) -> Result<()> {
    let q = ferry_core::sql::quote_ident(db);
    conn.query_drop(format!("DROP DATABASE IF EXISTS {q}; CREATE DATABASE {q}"))
        .await?;
    Ok(())
}

/// Drops databases if they exist.
pub async fn drop_dbs(conn: &mut Conn, dbs: &[&str]) -> Result<()> {
    for db in dbs {
        conn.query_drop(format!(
            "DROP DATABASE IF EXISTS {}",
            ferry_core::sql::quote_ident(db)
        ))
        .await?;
    }
    Ok(())
}

/// Forgets what earlier runs of `job` left in the target's `ferry_meta` tables `tables` (those
/// that exist): a test that then waits for the job's progress sees this run's only.
pub async fn forget_job(t: &mut Conn, job: &str, tables: &[&str]) -> Result<()> {
    for table in tables {
        let exists: u64 = t
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ferry_meta' AND TABLE_NAME = ?",
                (table,),
            )
            .await?
            .unwrap_or(0);
        if exists > 0 {
            t.exec_drop(
                format!("DELETE FROM ferry_meta.{} WHERE job = ?", quote(table)),
                (job,),
            )
            .await?;
        }
    }
    Ok(())
}

/// Runs a script of `;`-separated statements.
pub async fn exec(conn: &mut Conn, sql: &str) -> Result<()> {
    conn.query_drop(sql)
        .await
        .with_context(|| format!("running {sql:.200}"))?;
    Ok(())
}

/// Row count and an order-independent digest (the wrapping sum of a 128-bit hash of each row's
/// exact values). Equal digests mean equal multisets of rows, duplicates included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    pub sum: u128,
}

fn hash_value(h: &mut Xxh3, v: &Value) {
    match v {
        Value::NULL => h.update(&[0]),
        Value::Bytes(b) => {
            h.update(&[1]);
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        }
        Value::Int(i) => {
            h.update(&[2]);
            h.update(&i.to_le_bytes());
        }
        Value::UInt(u) => {
            h.update(&[2]);
            h.update(&u.to_le_bytes());
        }
        Value::Float(f) => {
            h.update(&[4]);
            h.update(&f.to_bits().to_le_bytes());
        }
        Value::Double(d) => {
            h.update(&[5]);
            h.update(&d.to_bits().to_le_bytes());
        }
        Value::Date(y, mo, d, hh, mi, s, us) => {
            h.update(&[6]);
            h.update(&y.to_le_bytes());
            h.update(&[*mo, *d, *hh, *mi, *s]);
            h.update(&us.to_le_bytes());
        }
        Value::Time(neg, d, hh, mi, s, us) => {
            h.update(&[7, u8::from(*neg)]);
            h.update(&d.to_le_bytes());
            h.update(&[*hh, *mi, *s]);
            h.update(&us.to_le_bytes());
        }
    }
}

/// Digest of one table, over every column (generated and invisible ones included), read through
/// the binary protocol in UTC with raw string bytes.
pub async fn table_digest(conn: &mut Conn, db: &str, table: &str) -> Result<Digest> {
    let schema = catalog::read_tables(conn, db, &[table.to_string()]).await?;
    let Some(schema) = schema.first() else {
        bail!("no table {db}.{table}")
    };
    let cols = ferry_core::sql::ident_list(schema.columns.iter().map(|c| c.name.as_str()));
    conn.query_drop("SET time_zone = '+00:00', character_set_results = binary")
        .await?;
    // every version of a system-versioned table, with its row_start/row_end
    let sql = format!("SELECT {cols} FROM {}", schema.from_all());
    let stmt = conn.prep(&sql).await?;
    let rows: Vec<mysql_async::Row> = conn.exec(&stmt, ()).await?;
    let mut d = Digest { rows: 0, sum: 0 };
    for row in rows {
        let mut h = Xxh3::new();
        for v in row.unwrap() {
            hash_value(&mut h, &v);
        }
        d.rows += 1;
        d.sum = d.sum.wrapping_add(h.digest128());
    }
    conn.query_drop("SET character_set_results = utf8mb4").await?;
    Ok(d)
}

/// The table definitions of `db` (`SHOW CREATE TABLE`, without the AUTO_INCREMENT counter).
pub async fn table_definitions(c: &mut mysql_async::Conn, db: &str) -> Result<Vec<String>> {
    let tables: Vec<String> = c
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (db,),
        )
        .await?;
    let mut out = Vec::new();
    for t in tables {
        let row: Option<(String, String)> = c.query_first(format!("SHOW CREATE TABLE `{db}`.`{t}`")).await?;
        let def = row.map(|r| r.1).unwrap_or_default();
        let def: Vec<&str> = def
            .split(' ')
            .filter(|w| !w.starts_with("AUTO_INCREMENT="))
            .collect();
        out.push(def.join(" "));
    }
    Ok(out)
}

/// Digests of every base table of a database, by table name.
pub async fn db_digest(conn: &mut Conn, db: &str) -> Result<BTreeMap<String, Digest>> {
    let mut out = BTreeMap::new();
    for t in catalog::list_tables(conn, db).await? {
        let d = table_digest(conn, db, &t).await?;
        out.insert(t, d);
    }
    Ok(out)
}

/// How many Table_map events of `db` the server's binlog holds from `file:pos` on (a test that
/// writes must find none when its writes are kept out of the binlog).
pub async fn binlog_table_maps(
    conn: &mut mysql_async::Conn,
    file: &str,
    pos: u64,
    db: &str,
) -> Result<usize> {
    use mysql_async::prelude::Queryable;
    let files: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    let names: Vec<String> = files
        .iter()
        .filter_map(|r| r.get::<String, _>(0))
        .filter(|n| n.as_str() >= file)
        .collect();
    let mut hits = 0;
    for name in names {
        let from = if name == file { pos } else { 4 };
        let events: Vec<mysql_async::Row> = conn
            .query(format!("SHOW BINLOG EVENTS IN '{name}' FROM {from}"))
            .await?;
        hits += events
            .iter()
            .filter(|e| {
                let kind: String = e.get("Event_type").unwrap_or_default();
                let info: String = e.get("Info").unwrap_or_default();
                kind == "Table_map" && info.contains(db)
            })
            .count();
    }
    Ok(hits)
}

/// A single value of a query.
pub async fn scalar<T: mysql_async::prelude::FromValue + Send + 'static>(
    conn: &mut Conn,
    sql: &str,
) -> Result<T> {
    let v: Option<T> = conn.query_first(sql).await.with_context(|| sql.to_string())?;
    v.with_context(|| format!("no row from {sql}"))
}

/// Polls `check` every 50 ms until it returns true or `secs` pass (then fails with `what`).
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if check().await? {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
