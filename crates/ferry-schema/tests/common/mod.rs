//! Helpers shared by the ferry-schema server tests: selections, running the whole structure copy,
//! and reading definitions back from a server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::selection::{DbSelection, ObjectSelection};
use ferry_core::sql::qualified;
use ferry_core::Selection;
use ferry_schema::{Ddl, StructureOptions, StructurePlan};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

/// A selected database: (source name, target name, table renames).
pub type DbSpec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// Whole databases, each with a target name and table renames.
pub fn select(dbs: &[DbSpec<'_>]) -> Selection {
    Selection {
        mapping: Default::default(),
        objects: ObjectSelection::Databases(
            dbs.iter()
                .map(|(name, target, renames)| DbSelection {
                    name: name.to_string(),
                    target: target.to_string(),
                    tables: None,
                    table_renames: renames
                        .iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect(),
                })
                .collect(),
        ),
    }
}

/// A progress sink that records the events.
pub fn recorder() -> (ProgressSink, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    let sink: ProgressSink = Arc::new(move |ev| {
        if let Ok(mut v) = e.lock() {
            v.push(ev)
        }
    });
    (sink, events)
}

/// Reads the source catalog and plans.
pub async fn plan_for(src: &mut Conn, sel: &Selection, opts: &StructureOptions) -> Result<StructurePlan> {
    let tables = ferry_core::catalog::resolve_selection(src, sel).await?;
    let cat = ferry_schema::read_catalog(src, sel, &tables).await?;
    Ok(ferry_schema::plan(&cat, sel, opts)?)
}

/// Applies a list of statements with a null sink.
pub async fn apply(dst: &mut Conn, stmts: &[Ddl]) -> Result<()> {
    ferry_schema::apply(dst, stmts, &ferry_core::progress::null_sink()).await?;
    Ok(())
}

/// The definition text of an object (`SHOW CREATE <what> db.name`, column `idx`).
pub async fn show_create(conn: &mut Conn, what: &str, db: &str, name: &str, idx: usize) -> Result<String> {
    let sql = format!("SHOW CREATE {what} {}", qualified(db, name));
    let row: Option<Row> = conn.query_first(&sql).await.with_context(|| sql.clone())?;
    let row = row.with_context(|| format!("no row from {sql}"))?;
    let v: Option<String> = row
        .get(idx)
        .with_context(|| format!("no column {idx} in {sql}"))?;
    v.with_context(|| format!("NULL definition from {sql}"))
}

pub async fn show_table(conn: &mut Conn, db: &str, t: &str) -> Result<String> {
    show_create(conn, "TABLE", db, t, 1).await
}

/// Object counts of a database from information_schema, by kind.
pub async fn object_counts(conn: &mut Conn, db: &str) -> Result<BTreeMap<&'static str, i64>> {
    let mut out = BTreeMap::new();
    let queries: [(&str, &str); 6] = [
        ("tables", "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'"),
        ("views", "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?"),
        ("routines", "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?"),
        ("triggers", "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?"),
        ("events", "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?"),
        ("indexes", "SELECT COUNT(DISTINCT TABLE_NAME, INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?"),
    ];
    for (k, q) in queries {
        let n: Option<i64> = conn.exec_first(q, (db,)).await?;
        out.insert(k, n.unwrap_or(0));
    }
    Ok(out)
}

/// Drops databases on a server.
pub async fn drop_dbs(conn: &mut Conn, dbs: &[&str]) -> Result<()> {
    ferry_testkit::drop_dbs(conn, dbs).await
}
