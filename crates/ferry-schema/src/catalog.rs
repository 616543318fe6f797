//! Reads what the structure copier needs from the source: database defaults, `SHOW CREATE …`
//! texts of tables, views, routines, triggers and events, and the dependencies between views.
//!
//! The read session uses `sql_mode=''` and `sql_quote_show_create=1` so that the texts use
//! backtick quoting (the lexer's assumption); the caller's session settings are restored after.

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::lexer::{name_chains, tokenize};
use ferry_core::sql::qualified;
use ferry_core::{Selection, TableSchema};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::error::SchemaError;
use crate::names::view_body_start;
use crate::ObjectKind;

/// A selected database and its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbDef {
    pub name: String,
    pub charset: String,
    pub collation: String,
}

/// A selected base table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub db: String,
    pub name: String,
    /// `SHOW CREATE TABLE` text, verbatim.
    pub create_sql: String,
    pub schema: TableSchema,
}

/// A view, routine, trigger or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDef {
    pub kind: ObjectKind,
    pub db: String,
    pub name: String,
    /// Triggers: the table they belong to (same database).
    pub table: Option<String>,
    /// `SHOW CREATE …` text, verbatim.
    pub create_sql: String,
    /// Routines, triggers, events: the `sql_mode` they were created with.
    pub sql_mode: Option<String>,
    /// Events: the time zone their schedule is expressed in.
    pub time_zone: Option<String>,
    /// Views: the views (db, name) this view reads, to create them first.
    pub depends_on: Vec<(String, String)>,
}

/// Everything [`read_catalog`] found, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub databases: Vec<DbDef>,
    pub tables: Vec<TableDef>,
    pub views: Vec<ObjectDef>,
    /// Functions and procedures.
    pub routines: Vec<ObjectDef>,
    pub triggers: Vec<ObjectDef>,
    pub events: Vec<ObjectDef>,
    /// MariaDB sequences of the databases selected whole (`SHOW CREATE SEQUENCE`).
    pub sequences: Vec<ObjectDef>,
}

fn col(row: &Row, idx: usize, what: &str) -> Result<Option<String>, SchemaError> {
    match row.get_opt::<Option<String>, usize>(idx) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(SchemaError::Core(ferry_core::CoreError::Unexpected(format!(
            "{what}: column {idx} is not text: {e}"
        )))),
        None => Err(SchemaError::Core(ferry_core::CoreError::Unexpected(format!(
            "{what}: the answer has no column {idx}"
        )))),
    }
}

/// Runs `SHOW CREATE <kind> db.name` and returns column `idx` (the definition).
async fn show_create(
    conn: &mut Conn,
    kind: ObjectKind,
    what: &str,
    db: &str,
    name: &str,
    idx: usize,
) -> Result<String, SchemaError> {
    let display = format!("{db}.{name}");
    let sql = format!("SHOW CREATE {what} {}", qualified(db, name));
    let row: Option<Row> = conn
        .query_first(&sql)
        .await
        .map_err(|e| SchemaError::read(format!("the definition of {kind} {display}"), e))?;
    let Some(row) = row else {
        return Err(SchemaError::Definition {
            kind,
            name: display,
            reason: format!("{sql} returned no row"),
        });
    };
    match col(&row, idx, &sql)? {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(SchemaError::Definition {
            kind,
            name: display,
            reason: "the server returned no definition text; the source login needs the \
                     privilege to read it (SHOW_ROUTINE, or SELECT on mysql.proc / mysql.routines, \
                     or to be its definer)"
                .into(),
        }),
    }
}

/// Reads the catalog of the selection. `tables` is the output of
/// [`ferry_core::catalog::resolve_selection`]. Views, routines and events are read for databases
/// selected whole; triggers for every selected table.
pub async fn read_catalog(
    src: &mut Conn,
    sel: &Selection,
    tables: &[(String, Vec<String>)],
) -> Result<Catalog, SchemaError> {
    let saved: Option<(String, i64)> = src
        .query_first("SELECT @@SESSION.sql_mode, @@SESSION.sql_quote_show_create")
        .await
        .map_err(|e| SchemaError::read("session settings", e))?;
    src.query_drop("SET SESSION sql_mode = '', SESSION sql_quote_show_create = 1")
        .await
        .map_err(|e| SchemaError::read("session settings", e))?;
    let result = read_inner(src, sel, tables).await;
    if let Some((mode, quote)) = saved {
        let restore = src
            .exec_drop(
                "SET SESSION sql_mode = ?, SESSION sql_quote_show_create = ?",
                (mode, quote),
            )
            .await;
        if let (Ok(_), Err(e)) = (&result, restore) {
            return Err(SchemaError::read("session settings", e));
        }
    }
    result
}

async fn read_inner(
    src: &mut Conn,
    sel: &Selection,
    tables: &[(String, Vec<String>)],
) -> Result<Catalog, SchemaError> {
    let mut cat = Catalog::default();
    let mut vtu_available = true;
    for (db, names) in tables {
        if sel.target_db(db).is_none() {
            continue;
        }
        let defaults: Option<(String, String)> = src
            .exec_first(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
                 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (db,),
            )
            .await
            .map_err(|e| SchemaError::read(format!("the defaults of database {db}"), e))?;
        let Some((charset, collation)) = defaults else {
            return Err(SchemaError::Definition {
                kind: ObjectKind::Database,
                name: db.clone(),
                reason: "it is not in information_schema.SCHEMATA".into(),
            });
        };
        cat.databases.push(DbDef {
            name: db.clone(),
            charset,
            collation,
        });

        let schemas = ferry_core::catalog::read_tables(src, db, names).await?;
        for schema in schemas {
            let create_sql = show_create(src, ObjectKind::Table, "TABLE", db, &schema.name, 1).await?;
            cat.tables.push(TableDef {
                db: db.clone(),
                name: schema.name.clone(),
                create_sql,
                schema,
            });
        }

        // Triggers of the selected tables, in firing order.
        let trg: Vec<(String, String, String)> = src
            .exec(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, SQL_MODE FROM information_schema.TRIGGERS \
                 WHERE EVENT_OBJECT_SCHEMA = ? \
                 ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
                (db,),
            )
            .await
            .map_err(|e| SchemaError::read(format!("the triggers of {db}"), e))?;
        for (name, table, sql_mode) in trg {
            if !names.contains(&table) {
                continue;
            }
            let create_sql = show_create(src, ObjectKind::Trigger, "TRIGGER", db, &name, 2).await?;
            cat.triggers.push(ObjectDef {
                kind: ObjectKind::Trigger,
                db: db.clone(),
                name,
                table: Some(table),
                create_sql,
                sql_mode: Some(sql_mode),
                time_zone: None,
                depends_on: Vec::new(),
            });
        }

        if !sel.whole_db(db) {
            continue;
        }

        let seqs = ferry_core::catalog::list_sequences(src, db).await?;
        for name in seqs {
            let create_sql = show_create(src, ObjectKind::Sequence, "SEQUENCE", db, &name, 1).await?;
            cat.sequences.push(ObjectDef {
                kind: ObjectKind::Sequence,
                db: db.clone(),
                name,
                table: None,
                create_sql,
                sql_mode: None,
                time_zone: None,
                depends_on: Vec::new(),
            });
        }

        let views: Vec<String> = src
            .exec(
                "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
                (db,),
            )
            .await
            .map_err(|e| SchemaError::read(format!("the views of {db}"), e))?;
        let mut usage: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        if vtu_available && !views.is_empty() {
            // MySQL 8.0.13+; MariaDB has no VIEW_TABLE_USAGE (then the lexer finds the names).
            let rows: Result<Vec<(String, String, String)>, _> = src
                .exec(
                    "SELECT VIEW_NAME, TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEW_TABLE_USAGE \
                     WHERE VIEW_SCHEMA = ?",
                    (db,),
                )
                .await;
            match rows {
                Ok(rows) => {
                    for (v, d, t) in rows {
                        usage.entry(v).or_default().push((d, t));
                    }
                }
                Err(mysql_async::Error::Server(_)) => vtu_available = false,
                Err(e) => return Err(SchemaError::read("information_schema.VIEW_TABLE_USAGE", e)),
            }
        }
        for name in views {
            let create_sql = show_create(src, ObjectKind::View, "VIEW", db, &name, 1).await?;
            let depends_on = if vtu_available {
                usage.remove(&name).unwrap_or_default()
            } else {
                Vec::new()
            };
            cat.views.push(ObjectDef {
                kind: ObjectKind::View,
                db: db.clone(),
                name,
                table: None,
                create_sql,
                sql_mode: None,
                time_zone: None,
                depends_on,
            });
        }

        let routines: Vec<(String, String, String)> = src
            .exec(
                "SELECT ROUTINE_NAME, ROUTINE_TYPE, SQL_MODE FROM information_schema.ROUTINES \
                 WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE') \
                 ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
                (db,),
            )
            .await
            .map_err(|e| SchemaError::read(format!("the routines of {db}"), e))?;
        for (name, rtype, sql_mode) in routines {
            let (kind, what) = if rtype.eq_ignore_ascii_case("FUNCTION") {
                (ObjectKind::Function, "FUNCTION")
            } else {
                (ObjectKind::Procedure, "PROCEDURE")
            };
            let create_sql = show_create(src, kind, what, db, &name, 2).await?;
            cat.routines.push(ObjectDef {
                kind,
                db: db.clone(),
                name,
                table: None,
                create_sql,
                sql_mode: Some(sql_mode),
                time_zone: None,
                depends_on: Vec::new(),
            });
        }

        let events: Vec<(String, String, String)> = src
            .exec(
                "SELECT EVENT_NAME, SQL_MODE, TIME_ZONE FROM information_schema.EVENTS \
                 WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME",
                (db,),
            )
            .await
            .map_err(|e| SchemaError::read(format!("the events of {db}"), e))?;
        for (name, sql_mode, time_zone) in events {
            let create_sql = show_create(src, ObjectKind::Event, "EVENT", db, &name, 3).await?;
            cat.events.push(ObjectDef {
                kind: ObjectKind::Event,
                db: db.clone(),
                name,
                table: None,
                create_sql,
                sql_mode: Some(sql_mode),
                time_zone: Some(time_zone),
                depends_on: Vec::new(),
            });
        }
    }
    if !vtu_available {
        lexer_view_dependencies(&mut cat.views);
    }
    // Keep only dependencies on views (tables exist before any view).
    let view_names: BTreeSet<(String, String)> =
        cat.views.iter().map(|v| (v.db.clone(), v.name.clone())).collect();
    for v in &mut cat.views {
        v.depends_on
            .retain(|d| view_names.contains(d) && !(d.0 == v.db && d.1 == v.name));
        v.depends_on.sort();
        v.depends_on.dedup();
    }
    tracing::debug!(
        databases = cat.databases.len(),
        tables = cat.tables.len(),
        views = cat.views.len(),
        routines = cat.routines.len(),
        triggers = cat.triggers.len(),
        events = cat.events.len(),
        "read source catalog"
    );
    Ok(cat)
}

/// Finds, with the lexer, which views each view body names: `db.v`, `db.v.col`, `v.col`, or a bare
/// `v` of the view's own database. Over-approximates (a column named like a view counts), which
/// only adds ordering constraints.
pub fn lexer_view_dependencies(views: &mut [ObjectDef]) {
    let names: BTreeSet<(String, String)> = views.iter().map(|v| (v.db.clone(), v.name.clone())).collect();
    for v in views.iter_mut() {
        let sql = &v.create_sql;
        let tokens = tokenize(sql);
        let body = view_body_start(sql, &tokens).unwrap_or(0);
        let mut deps = Vec::new();
        for chain in name_chains(sql, &tokens) {
            if chain.parts[0] < body {
                continue;
            }
            let parts = chain.names(&tokens);
            if parts.len() >= 2 {
                let key = (parts[0].to_string(), parts[1].to_string());
                if names.contains(&key) {
                    deps.push(key);
                }
            }
            let key = (v.db.clone(), parts[0].to_string());
            if (parts.len() <= 2 || chain.star) && names.contains(&key) {
                deps.push(key);
            }
        }
        v.depends_on = deps;
    }
}
