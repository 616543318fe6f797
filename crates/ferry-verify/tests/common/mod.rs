//! Shared helpers of the verifier's tests: identical databases on both test servers, a selection,
//! a verification run with repair SQL, and applying that SQL on the target.
#![allow(dead_code)]

use std::collections::BTreeMap;

use anyhow::Result;
use ferry_core::progress::null_sink;
use ferry_core::selection::{DbSelection, ObjectSelection, TableSelection};
use ferry_core::Selection;
use ferry_testkit::{connect, exec, fresh_db, source, target};
use ferry_verify::{verify, DiffKind, TableReport, VerifyOptions, VerifyReport};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// Creates `db` on both servers and runs `sql` in it on both.
pub async fn both(db: &str, sql: &str) -> Result<(Conn, Conn)> {
    let mut s = connect(&source()).await?;
    let mut d = connect(&target()).await?;
    for c in [&mut s, &mut d] {
        fresh_db(c, db).await?;
        c.query_drop(format!("USE `{db}`")).await?;
        exec(c, sql).await?;
    }
    Ok((s, d))
}

/// One whole database, same name on both sides.
pub fn sel_db(db: &str) -> Selection {
    Selection {
        mapping: Default::default(),
        objects: ObjectSelection::Databases(vec![DbSelection {
            name: db.into(),
            target: db.into(),
            tables: None,
            table_renames: BTreeMap::new(),
        }]),
    }
}

/// Some tables of a database, renamed.
pub fn sel_renamed(db: &str, tdb: &str, tables: &[(&str, &str)]) -> Selection {
    Selection {
        mapping: Default::default(),
        objects: ObjectSelection::Databases(vec![DbSelection {
            name: db.into(),
            target: tdb.into(),
            tables: Some(
                tables
                    .iter()
                    .map(|(a, b)| TableSelection {
                        name: a.to_string(),
                        target: b.to_string(),
                    })
                    .collect(),
            ),
            table_renames: BTreeMap::new(),
        }]),
    }
}

/// Options for tests: 2 threads, the given chunk size.
pub fn opts(chunk_rows: u64) -> VerifyOptions {
    VerifyOptions {
        threads: 2,
        chunk_rows,
        ..VerifyOptions::default()
    }
}

/// Runs a verification and returns the report and the repair SQL.
pub async fn run(sel: &Selection, o: &VerifyOptions) -> Result<(VerifyReport, Vec<u8>)> {
    let mut buf: Vec<u8> = Vec::new();
    let r = verify(
        &source(),
        &target(),
        sel,
        o,
        null_sink(),
        Some(&mut buf as &mut (dyn std::io::Write + Send)),
    )
    .await?;
    Ok((r, buf))
}

/// Runs repair SQL on the target.
pub async fn apply(sql: &[u8]) -> Result<()> {
    let mut d = connect(&target()).await?;
    d.query_drop(sql).await?;
    Ok(())
}

/// The report of one table.
pub fn table<'a>(r: &'a VerifyReport, name: &str) -> &'a TableReport {
    r.tables
        .iter()
        .find(|t| t.table == name)
        .unwrap_or_else(|| panic!("no table {name} in {r:#?}"))
}

/// (kind, key values, differing columns) of a table's keys.
pub fn keys(t: &TableReport) -> Vec<(DiffKind, Vec<String>, Vec<String>)> {
    t.keys
        .iter()
        .map(|k| (k.kind, k.key.clone(), k.columns.clone()))
        .collect()
}

/// Counts (only in source, only in target, different).
pub fn counts(t: &TableReport) -> (u64, u64, u64) {
    (t.only_in_source, t.only_in_target, t.different)
}
