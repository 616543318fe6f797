//! Reads the table model and the list of selected objects from a server's `information_schema`.
//!
//! Structural facts (columns, types, keys) come from `information_schema`, never from parsing DDL.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{CoreError, MysqlResultExt};
use crate::selection::{is_system_schema, ObjectSelection, Selection};
use crate::table::{Column, ColumnKind, TableSchema};
use crate::versioning::SystemTime;

/// The databases on a server, system schemas excluded, sorted.
pub async fn list_databases(conn: &mut Conn) -> Result<Vec<String>, CoreError> {
    let dbs: Vec<String> = conn
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
        .await
        .ctx(|| "listing databases".into())?;
    Ok(dbs.into_iter().filter(|d| !is_system_schema(d)).collect())
}

/// The base tables of a database (views and sequences excluded), sorted.
pub async fn list_tables(conn: &mut Conn, db: &str) -> Result<Vec<String>, CoreError> {
    conn.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
         AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
        (db,),
    )
    .await
    .ctx(|| format!("listing tables of {db}"))
}

/// The sequences (MariaDB `CREATE SEQUENCE`) of a database, sorted: the one list the structure
/// copy, the pre-check and the object comparison read.
pub async fn list_sequences(conn: &mut Conn, db: &str) -> Result<Vec<String>, CoreError> {
    conn.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
         AND TABLE_TYPE = 'SEQUENCE' ORDER BY TABLE_NAME",
        (db,),
    )
    .await
    .ctx(|| format!("listing the sequences of {db}"))
}

/// The (database, table) pairs a selection covers on this server, in order. A database or table
/// that the selection names explicitly and that does not exist is an error naming it.
pub async fn resolve_selection(
    conn: &mut Conn,
    sel: &Selection,
) -> Result<Vec<(String, Vec<String>)>, CoreError> {
    let all = list_databases(conn).await?;
    let mut out = Vec::new();
    match &sel.objects {
        ObjectSelection::WholeInstance => {
            for db in all {
                let tables = list_tables(conn, &db).await?;
                out.push((db, tables));
            }
        }
        ObjectSelection::Databases(list) => {
            for d in list {
                if !all.contains(&d.name) {
                    return Err(CoreError::NotFound {
                        what: "database",
                        name: d.name.clone(),
                        side: "source",
                    });
                }
                let tables = list_tables(conn, &d.name).await?;
                let chosen = match &d.tables {
                    None => tables,
                    Some(ts) => {
                        for t in ts {
                            if !tables.contains(&t.name) {
                                return Err(CoreError::NotFound {
                                    what: "table",
                                    name: format!("{}.{}", d.name, t.name),
                                    side: "source",
                                });
                            }
                        }
                        ts.iter().map(|t| t.name.clone()).collect()
                    }
                };
                out.push((d.name.clone(), chosen));
            }
        }
    }
    Ok(out)
}

type ColumnRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

type TableInfoRow = (String, Option<String>, Option<u64>, Option<u64>, Option<String>);

/// True when the connection's server is MySQL 8.0 or later: the handshake version of MariaDB is
/// 10 or more (mysql_async reads the real one behind the `5.5.5-` prefix), MySQL's below 10.
pub fn is_mysql8(conn: &Conn) -> bool {
    (8..10).contains(&conn.server_version().0)
}

/// MySQL 8 caches `information_schema.TABLES` statistics (`TABLE_ROWS`, `DATA_LENGTH`, ...) for
/// `information_schema_stats_expiry` seconds, a day by default: this session reads them fresh.
/// MariaDB has no such variable (and no cache). A failure (MySQL 8.0.0-8.0.2 lack the variable)
/// only leaves the estimates as cached.
pub async fn fresh_statistics(conn: &mut Conn) {
    if is_mysql8(conn) {
        if let Err(e) = conn
            .query_drop("SET SESSION information_schema_stats_expiry = 0")
            .await
        {
            tracing::debug!(error = %e, "information_schema_stats_expiry not set");
        }
    }
}

/// Records the period columns of a system-versioned table: the declared ones (`start`, `end`),
/// else MariaDB's implicit, invisible `row_start`/`row_end`, which `information_schema` does not
/// list and the server stores (and logs) after every declared column.
fn add_period_columns(t: &mut TableSchema, (start, end): (Option<usize>, Option<usize>)) {
    let precise = |i: usize| t.columns[i].kind != ColumnKind::Timestamp;
    let system_time = match (start, end) {
        (Some(s), Some(e)) => SystemTime {
            row_start: s,
            row_end: e,
            implicit: false,
            transaction_precise: precise(s) || precise(e),
        },
        _ => {
            for name in ["row_start", "row_end"] {
                t.columns.push(Column {
                    name: name.to_string(),
                    data_type: "timestamp".into(),
                    column_type: "timestamp(6)".into(),
                    kind: ColumnKind::Timestamp,
                    nullable: false,
                    generated: false,
                    charset: None,
                    collation: None,
                });
            }
            let n = t.columns.len();
            SystemTime {
                row_start: n - 2,
                row_end: n - 1,
                implicit: true,
                transaction_precise: false,
            }
        }
    };
    t.system_time = Some(system_time);
}

/// MariaDB makes every unique key of a versioned table end with `row_end` (several versions
/// share the declared key); `information_schema` shows that only for declared period columns.
fn end_keys_with_row_end(t: &mut TableSchema) {
    let Some(st) = t.system_time else { return };
    let keys = t
        .primary_key
        .iter_mut()
        .chain(t.unique_keys.iter_mut().map(|(_, k)| k));
    for k in keys {
        if !k.contains(&st.row_end) {
            k.push(st.row_end);
        }
    }
}

/// Reads the model of every listed table of one database (three queries, whatever the count).
pub async fn read_tables(
    conn: &mut Conn,
    db: &str,
    tables: &[String],
) -> Result<Vec<TableSchema>, CoreError> {
    let mut by_name: BTreeMap<String, TableSchema> = BTreeMap::new();
    fresh_statistics(conn).await;
    let info: Vec<TableInfoRow> = conn
        .exec(
            "SELECT TABLE_NAME, ENGINE, TABLE_ROWS, DATA_LENGTH, TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ?",
            (db,),
        )
        .await
        .ctx(|| format!("reading tables of {db}"))?;
    let mut versioned = Vec::new();
    for (name, engine, rows, len, table_type) in info {
        if tables.contains(&name) {
            if table_type.as_deref() == Some("SYSTEM VERSIONED") {
                versioned.push(name.clone());
            }
            by_name.insert(
                name.clone(),
                TableSchema {
                    db: db.to_string(),
                    name,
                    columns: Vec::new(),
                    primary_key: None,
                    unique_keys: Vec::new(),
                    engine,
                    estimated_rows: rows.unwrap_or(0),
                    data_length: len.unwrap_or(0),
                    system_time: None,
                },
            );
        }
    }
    let cols: Vec<ColumnRow> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, EXTRA, \
             CHARACTER_SET_NAME, COLLATION_NAME, GENERATION_EXPRESSION FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .ctx(|| format!("reading columns of {db}"))?;
    let mut periods: BTreeMap<String, (Option<usize>, Option<usize>)> = BTreeMap::new();
    for (table, name, data_type, column_type, nullable, extra, charset, collation, expr) in cols {
        if let Some(t) = by_name.get_mut(&table) {
            let extra = extra.to_ascii_uppercase();
            // a declared period column (`GENERATED ALWAYS AS ROW START/END`) is written by Ferry
            let period = match expr.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("ROW START") => Some(true),
                Some("ROW END") => Some(false),
                _ => None,
            };
            if let Some(start) = period.filter(|_| versioned.contains(&table)) {
                let p = periods.entry(table.clone()).or_default();
                if start {
                    p.0 = Some(t.columns.len());
                } else {
                    p.1 = Some(t.columns.len());
                }
            }
            t.columns.push(Column {
                kind: ColumnKind::from_types(&data_type, &column_type),
                name,
                data_type: data_type.to_ascii_lowercase(),
                column_type,
                nullable: nullable.eq_ignore_ascii_case("YES"),
                generated: period.is_none()
                    && (extra.contains("VIRTUAL GENERATED")
                        || extra.contains("STORED GENERATED")
                        || extra.contains("PERSISTENT GENERATED")),
                charset,
                collation,
            });
        }
    }
    for name in &versioned {
        if let Some(t) = by_name.get_mut(name) {
            let p = periods.get(name).copied().unwrap_or_default();
            add_period_columns(t, p);
        }
    }
    let keys: Vec<(String, String, i64, Option<String>)> = conn
        .exec(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            (db,),
        )
        .await
        .ctx(|| format!("reading keys of {db}"))?;
    let mut uniques: BTreeMap<(String, String), Option<Vec<usize>>> = BTreeMap::new();
    for (table, index, non_unique, column) in keys {
        let Some(t) = by_name.get(&table) else { continue };
        if non_unique != 0 {
            continue;
        }
        let entry = uniques
            .entry((table.clone(), index))
            .or_insert_with(|| Some(Vec::new()));
        // A functional key part (no column) cannot address rows: drop the whole key.
        match column.and_then(|c| t.column_index(&c)) {
            Some(i) => {
                if let Some(v) = entry.as_mut() {
                    v.push(i)
                }
            }
            None => *entry = None,
        }
    }
    for ((table, index), cols) in uniques {
        let (Some(t), Some(cols)) = (by_name.get_mut(&table), cols) else {
            continue;
        };
        if index == "PRIMARY" {
            t.primary_key = Some(cols);
        } else {
            t.unique_keys.push((index, cols));
        }
    }
    for t in by_name.values_mut() {
        end_keys_with_row_end(t);
    }
    let mut out = Vec::with_capacity(tables.len());
    for name in tables {
        match by_name.remove(name) {
            Some(t) if !t.columns.is_empty() => out.push(t),
            _ => {
                return Err(CoreError::NotFound {
                    what: "table",
                    name: format!("{db}.{name}"),
                    side: "source",
                })
            }
        }
    }
    Ok(out)
}
