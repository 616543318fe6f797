//! The schema of each replicated table as of the applied position.
//!
//! Read from the *target* (`ferry_core::catalog::read_tables` on the target names) and mapped
//! back to the source names: the target mirrors the source at the applied position because the
//! DDL is replayed there. Any applied DDL invalidates the cache.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_core::sql::{ident_list, qualified};
use ferry_core::{catalog, CoreError, Selection, TableSchema};
use mysql_async::Conn;

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
}

/// Source (db, table) → table info, `None` for unselected tables.
#[derive(Debug, Default)]
pub struct SchemaCache {
    tables: HashMap<(String, String), Option<Arc<TableInfo>>>,
}

impl SchemaCache {
    /// Forgets everything (after a DDL).
    pub fn invalidate(&mut self) {
        self.tables.clear();
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
            Some((tdb, tt)) => Some(Arc::new(load(conn, db, table, &tdb, &tt).await?)),
        };
        self.tables.insert(k, v.clone());
        Ok(v)
    }
}

async fn load(conn: &mut Conn, db: &str, table: &str, tdb: &str, tt: &str) -> Result<TableInfo, ReplayError> {
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
    Ok(TableInfo {
        decoder,
        target: qualified(tdb, tt),
        target_name,
        stored,
        column_list,
        key,
        schema,
    })
}
