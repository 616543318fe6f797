//! The schema of each replicated table as of the applied position.
//!
//! Read from the *target* (`ferry_core::catalog::read_tables` on the target names) and mapped
//! back to the source names: the target mirrors the source at the applied position because the
//! DDL is replayed there. Any applied DDL invalidates the cache.
//!
//! A table with a `Ferry.DbList` mapping also gets its [`RowMap`] (its rows as the source logs
//! them, the filter, the projection onto the target's columns); when the mapping selects
//! columns, the dropped columns' definitions come from the source's catalog.
//!
//! With each table come the target's foreign keys that reference it with a cascading action
//! ([`super::cascade`]), read once per cache generation for every target database of the
//! selection (so a key added or dropped by a replayed DDL counts from the next event on).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use ferry_core::selection::{is_system_schema, META_SCHEMA};
use ferry_core::sql::{ident_list, qualified};
use ferry_core::{catalog, CoreError, Endpoint, ObjectSelection, Selection, TableSchema};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::cascade::{FkRule, ReferencingFk};
use super::rowmap::RowMap;
use crate::decode::TableDecoder;
use crate::error::ReplayError;

/// A replicated table: its schema (source names), decoder and target name.
#[derive(Debug)]
pub struct TableInfo {
    pub schema: TableSchema,
    pub decoder: TableDecoder,
    /// Target `db`.`table`, quoted.
    pub target: String,
    /// Target names, unquoted, for messages.
    pub target_name: String,
    /// Stored (non-generated) columns.
    pub stored: Vec<usize>,
    /// The quoted stored column list, `a`, `b`.
    pub column_list: String,
    /// The row key (primary key, else a NOT NULL unique key).
    pub key: Option<Vec<usize>>,
    /// The target's foreign keys that reference this table with a cascading action.
    pub referenced_by: Vec<ReferencingFk>,
    /// The table's `Ferry.DbList` mapping, when it has one: its rows are decoded and mapped
    /// by it ([`super::rowmap`]).
    pub map: Option<Arc<RowMap>>,
}

/// Source (db, table) → table info, `None` for unselected tables.
#[derive(Debug, Default)]
pub struct SchemaCache {
    tables: HashMap<(String, String), Option<Arc<TableInfo>>>,
    /// Target (db, table) → the cascading foreign keys referencing it; `None` until read.
    referencing: Option<HashMap<(String, String), Vec<RawFk>>>,
    /// The source, for the catalog of tables whose mapping drops columns (`None`: such a table
    /// is refused).
    source: Option<Endpoint>,
    source_conn: Option<Conn>,
    /// Row changes left out by `dml_op`, shared with the replay's totals.
    excluded: Arc<AtomicU64>,
}

/// A cascading foreign key as the target's catalog describes it.
#[derive(Debug, Clone)]
struct RawFk {
    name: String,
    /// Referenced column names, in key order.
    columns: Vec<String>,
    on_delete: FkRule,
    on_update: FkRule,
}

/// Every foreign key of one target database (as the child) with a cascading action.
const CASCADING_FKS: &str = "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.REFERENCED_TABLE_SCHEMA, \
    k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE \
    FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
      ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME \
      AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
    WHERE k.TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
      AND (r.UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR r.DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION')) \
    ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION";

impl SchemaCache {
    /// A cache that reads the source's catalog when a mapping needs it, and counts the row
    /// changes `dml_op` leaves out in `excluded`.
    pub fn with_source(source: &Endpoint, excluded: Arc<AtomicU64>) -> Self {
        SchemaCache {
            source: Some(source.clone()),
            excluded,
            ..SchemaCache::default()
        }
    }

    /// The source's current definition of a table whose mapping drops columns.
    async fn source_table(&mut self, db: &str, table: &str) -> Result<TableSchema, ReplayError> {
        let name = format!("{db}.{table}");
        let Some(ep) = &self.source else {
            return Err(ReplayError::Unsupported {
                what: format!(
                    "{name} has a Ferry.DbList column mapping, whose dropped columns are read from the \
                     source's catalog, which is not reachable here"
                ),
                position: "-".into(),
            });
        };
        if self.source_conn.is_none() {
            self.source_conn = Some(ep.connect(Vec::new()).await.map_err(ReplayError::Connect)?);
        }
        let Some(conn) = self.source_conn.as_mut() else {
            return Err(ReplayError::Disconnected {
                position: "-".into(),
                reason: "no source connection".into(),
            });
        };
        let read = catalog::read_tables(conn, db, &[table.to_string()]).await;
        let mut v = match read {
            Ok(v) => v,
            Err(e) => {
                self.source_conn = None;
                return Err(match e {
                    CoreError::Mysql { source, .. } => ReplayError::Mysql {
                        context: format!("reading the source's schema of {name}"),
                        source,
                    },
                    // A copying ALTER on the source hides the table for an instant: try again
                    // from the checkpoint (a table really gone fails once the retry window ends).
                    e @ CoreError::NotFound { .. } => ReplayError::Disconnected {
                        position: "-".into(),
                        reason: format!("reading the source's schema of {name}: {e} (a DDL on the source may be under way)"),
                    },
                    e => ReplayError::TargetSchema {
                        table: name,
                        message: format!("reading its source schema: {e}"),
                    },
                });
            }
        };
        v.pop().ok_or_else(|| ReplayError::TargetSchema {
            table: name,
            message: "the table (with a Ferry.DbList column mapping) is no longer on the source: its \
                      dropped columns cannot be read"
                .into(),
        })
    }

    /// Forgets everything (after a DDL).
    pub fn invalidate(&mut self) {
        self.tables.clear();
        self.referencing = None;
    }

    /// The info of a source table, `None` when it is not selected.
    pub async fn get(
        &mut self,
        conn: &mut Conn,
        sel: &Selection,
        db: &str,
        table: &str,
    ) -> Result<Option<Arc<TableInfo>>, ReplayError> {
        let k = (db.to_string(), table.to_string());
        if let Some(v) = self.tables.get(&k) {
            return Ok(v.clone());
        }
        let v = match sel.target_table(db, table) {
            None => None,
            Some((tdb, tt)) => {
                if self.referencing.is_none() {
                    self.referencing = Some(read_cascading_fks(conn, sel).await?);
                }
                let raw = self
                    .referencing
                    .as_ref()
                    .and_then(|m| m.get(&(tdb.clone(), tt.clone())))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let mut info = load(conn, db, table, &tdb, &tt, raw).await?;
                super::versioned::check_target(conn, &info).await?;
                if let Some(m) = sel.mapping(db, table) {
                    let now = match m.columns {
                        Some(_) => Some(self.source_table(db, table).await?),
                        None => None,
                    };
                    let map = RowMap::build(&info.schema, now.as_ref(), m, self.excluded.clone()).map_err(
                        |message| ReplayError::TargetSchema {
                            table: info.target_name.clone(),
                            message: format!("its Ferry.DbList mapping: {message}"),
                        },
                    )?;
                    info.map = Some(Arc::new(map));
                }
                Some(Arc::new(info))
            }
        };
        self.tables.insert(k, v.clone());
        Ok(v)
    }
}

/// The target databases the replay writes to: the selection's, or every non-system database.
async fn target_dbs(conn: &mut Conn, sel: &Selection) -> Result<Vec<String>, ReplayError> {
    match &sel.objects {
        ObjectSelection::Databases(list) => Ok(list.iter().map(|d| d.target.clone()).collect()),
        ObjectSelection::WholeInstance => {
            let names: Vec<String> = conn
                .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
                .await
                .map_err(|source| catalog_err("listing the target's databases", source))?;
            Ok(names
                .into_iter()
                .filter(|d| !is_system_schema(d) && d != META_SCHEMA)
                .collect())
        }
    }
}

fn catalog_err(what: &str, source: mysql_async::Error) -> ReplayError {
    ReplayError::Apply {
        what: what.to_string(),
        position: "-".into(),
        source,
    }
}

/// The cascading foreign keys of the target databases, by referenced (db, table).
async fn read_cascading_fks(
    conn: &mut Conn,
    sel: &Selection,
) -> Result<HashMap<(String, String), Vec<RawFk>>, ReplayError> {
    type Row = (String, String, String, String, String, String, String);
    let mut out: HashMap<(String, String), Vec<RawFk>> = HashMap::new();
    for db in target_dbs(conn, sel).await? {
        let rows: Vec<Row> = conn
            .exec(CASCADING_FKS, (db.as_str(),))
            .await
            .map_err(|source| catalog_err(&format!("reading the foreign keys of {db}"), source))?;
        let mut last: Option<(String, String)> = None;
        for (child, constraint, rdb, rtable, rcol, upd, del) in rows {
            let list = out.entry((rdb, rtable)).or_default();
            let same = last.as_ref() == Some(&(child.clone(), constraint.clone()));
            match list.last_mut() {
                Some(fk) if same => fk.columns.push(rcol),
                _ => list.push(RawFk {
                    name: format!("{db}.{child}.{constraint}"),
                    columns: vec![rcol],
                    on_delete: FkRule::parse(&del),
                    on_update: FkRule::parse(&upd),
                }),
            }
            last = Some((child, constraint));
        }
    }
    Ok(out)
}

async fn load(
    conn: &mut Conn,
    db: &str,
    table: &str,
    tdb: &str,
    tt: &str,
    raw_fks: &[RawFk],
) -> Result<TableInfo, ReplayError> {
    let target_name = format!("{tdb}.{tt}");
    let mut v = catalog::read_tables(conn, tdb, &[tt.to_string()])
        .await
        .map_err(|e| match e {
            CoreError::Mysql { source, .. } => ReplayError::Apply {
                what: format!("reading the schema of {target_name}"),
                position: "-".into(),
                source,
            },
            e => ReplayError::TargetSchema {
                table: target_name.clone(),
                message: format!("{e} (the table of source {db}.{table} must exist on the target)"),
            },
        })?;
    let Some(mut schema) = v.pop() else {
        return Err(ReplayError::TargetSchema {
            table: target_name,
            message: "missing".into(),
        });
    };
    schema.db = db.to_string();
    schema.name = table.to_string();
    let decoder = TableDecoder::new(&schema)?;
    let stored = schema.stored_columns();
    let column_list = ident_list(stored.iter().map(|&i| schema.columns[i].name.as_str()));
    let key = schema.row_key().map(|k| k.to_vec());
    let mut referenced_by = Vec::with_capacity(raw_fks.len());
    for fk in raw_fks {
        let mut columns = Vec::with_capacity(fk.columns.len());
        for name in &fk.columns {
            let Some(i) = schema
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
            else {
                return Err(ReplayError::TargetSchema {
                    table: target_name,
                    message: format!(
                        "foreign key {} references column {name}, which the table does not have",
                        fk.name
                    ),
                });
            };
            columns.push(i);
        }
        referenced_by.push(ReferencingFk {
            name: fk.name.clone(),
            columns,
            on_delete: fk.on_delete,
            on_update: fk.on_update,
        });
    }
    Ok(TableInfo {
        decoder,
        target: qualified(tdb, tt),
        target_name,
        stored,
        column_list,
        key,
        referenced_by,
        schema,
        map: None,
    })
}
