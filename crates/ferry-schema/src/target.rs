//! Tables that already exist on the target: find them, and apply the job's policy (fail, truncate,
//! drop, append) before anything is created. The fail check covers every table before any change.

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::sql::qualified;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::{Deserialize, Serialize};

use crate::error::SchemaError;

/// What to do with a target table that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ExistingTablePolicy {
    /// Fail when any such table has rows; existing empty tables are kept (not re-created).
    #[default]
    Fail,
    /// Empty them (TRUNCATE) and keep their structure.
    Truncate,
    /// Drop them; they are created again from the source.
    Drop,
    /// Keep them and their rows; the load adds rows.
    Append,
}

/// A target table and what is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetTableState {
    pub db: String,
    pub table: String,
    pub exists: bool,
    pub has_rows: bool,
}

/// Looks up (target db, table) pairs: whether each exists (as a base table) and has rows.
pub async fn target_tables(
    target: &mut Conn,
    names: &[(String, String)],
) -> Result<Vec<TargetTableState>, SchemaError> {
    let mut by_db: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (db, _) in names {
        if by_db.contains_key(db.as_str()) {
            continue;
        }
        let tables: Vec<String> = target
            .exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
                 AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
                (db,),
            )
            .await
            .map_err(|e| SchemaError::target(format!("listing the tables of {db}"), e))?;
        by_db.insert(db.as_str(), tables.into_iter().collect());
    }
    let mut out = Vec::with_capacity(names.len());
    for (db, table) in names {
        let exists = by_db.get(db.as_str()).is_some_and(|t| t.contains(table));
        let has_rows = if exists {
            let row: Option<i64> = target
                .query_first(format!("SELECT 1 FROM {} LIMIT 1", qualified(db, table)))
                .await
                .map_err(|e| SchemaError::target(format!("checking whether {db}.{table} has rows"), e))?;
            row.is_some()
        } else {
            false
        };
        out.push(TargetTableState {
            db: db.clone(),
            table: table.clone(),
            exists,
            has_rows,
        });
    }
    Ok(out)
}

/// Applies the policy. Returns the tables that exist and must not be created again (nor get
/// their indexes and FKs added): every existing one, except under [`ExistingTablePolicy::Drop`].
pub async fn prepare_existing(
    target: &mut Conn,
    states: &[TargetTableState],
    policy: ExistingTablePolicy,
) -> Result<Vec<(String, String)>, SchemaError> {
    let existing: Vec<&TargetTableState> = states.iter().filter(|s| s.exists).collect();
    let keep = || existing.iter().map(|s| (s.db.clone(), s.table.clone())).collect();
    match policy {
        ExistingTablePolicy::Fail => {
            if let Some(s) = existing.iter().find(|s| s.has_rows) {
                return Err(SchemaError::TargetTableNotEmpty {
                    table: format!("{}.{}", s.db, s.table),
                });
            }
            Ok(keep())
        }
        ExistingTablePolicy::Append => Ok(keep()),
        ExistingTablePolicy::Truncate | ExistingTablePolicy::Drop => {
            if existing.is_empty() {
                return Ok(Vec::new());
            }
            let fkc: Option<i64> = target
                .query_first("SELECT @@SESSION.foreign_key_checks")
                .await
                .map_err(|e| SchemaError::target("reading foreign_key_checks", e))?;
            target
                .query_drop("SET SESSION foreign_key_checks = 0")
                .await
                .map_err(|e| SchemaError::target("setting foreign_key_checks", e))?;
            let mut result = Ok(());
            for s in &existing {
                let name = qualified(&s.db, &s.table);
                let (sql, what) = if policy == ExistingTablePolicy::Truncate {
                    (format!("TRUNCATE TABLE {name}"), "emptying")
                } else {
                    (format!("DROP TABLE IF EXISTS {name}"), "dropping")
                };
                if let Err(e) = target.query_drop(&sql).await {
                    result = Err(SchemaError::target(format!("{what} {}.{}", s.db, s.table), e));
                    break;
                }
                tracing::info!(table = %format!("{}.{}", s.db, s.table), "{what} existing target table");
            }
            let restore = target
                .query_drop(format!("SET SESSION foreign_key_checks = {}", fkc.unwrap_or(1)))
                .await;
            result?;
            restore.map_err(|e| SchemaError::target("restoring foreign_key_checks", e))?;
            if policy == ExistingTablePolicy::Truncate {
                Ok(keep())
            } else {
                Ok(Vec::new())
            }
        }
    }
}
