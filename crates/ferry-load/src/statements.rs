//! The SQL one table is copied with: the chunk `SELECT` on the source, and the `LOAD DATA` statement
//! or `INSERT` prefix on the target. Built once per table.

use ferry_core::sql::{ident_list, qualified, quote_ident};
use ferry_core::value::load_column_target;
use ferry_core::{Column, ColumnKind};
use mysql_async::Value;

use crate::chunk::ChunkPlan;
use crate::error::LoadError;
use crate::keyrange::{chunk_key, chunk_where};
use crate::TableTask;

/// How one table is read and written.
#[derive(Debug, Clone)]
pub struct TableSql {
    /// `db.table` on the source, for messages and progress.
    pub source_name: String,
    /// `db.table` on the target, for messages.
    pub target_name: String,
    pub target_db: String,
    pub target_table: String,
    /// Kinds of the stored (non-generated) columns, in SELECT order.
    pub kinds: Vec<ColumnKind>,
    /// `SELECT <stored columns> FROM <source table>`.
    pub select: String,
    /// The job's row filter (`Ferry.DbList`), in parentheses, added to every chunk's `WHERE`.
    pub filter: Option<String>,
    /// The chunking key's columns, when the table is chunked.
    pub key: Option<Vec<Column>>,
    /// `LOAD DATA LOCAL INFILE … INTO TABLE <target> …`.
    pub load_sql: String,
    /// `INSERT INTO <target> (<columns>) VALUES `.
    pub insert_prefix: Vec<u8>,
    /// Names of the ENUM columns (whose error value `''` the target warns about).
    pub enum_columns: Vec<String>,
}

impl TableSql {
    /// Builds the statements of a task.
    pub fn new(task: &TableTask) -> TableSql {
        let t = &task.source;
        let mapping = task.mapping.as_ref();
        // Only the mapped columns move, written under their target names.
        let stored: Vec<&Column> = t
            .stored_columns()
            .into_iter()
            .map(|i| &t.columns[i])
            .filter(|c| mapping.is_none_or(|m| m.target_column(&c.name).is_some()))
            .collect();
        let written: Vec<Column> = stored
            .iter()
            .map(|c| Column {
                name: mapping
                    .and_then(|m| m.target_column(&c.name))
                    .unwrap_or(&c.name)
                    .to_string(),
                ..(*c).clone()
            })
            .collect();
        let names = ident_list(stored.iter().map(|c| c.name.as_str()));
        let target_names = ident_list(written.iter().map(|c| c.name.as_str()));
        let target = qualified(&task.target_db, &task.target_table);
        let mut list = Vec::new();
        let mut sets = Vec::new();
        for (i, c) in written.iter().enumerate() {
            let (entry, set) = load_column_target(c, i);
            list.push(entry);
            sets.extend(set);
        }
        let mut load_sql = format!(
            "LOAD DATA LOCAL INFILE 'ferry-chunk' INTO TABLE {target} CHARACTER SET binary \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
            list.join(", ")
        );
        if !sets.is_empty() {
            load_sql.push_str(" SET ");
            load_sql.push_str(&sets.join(", "));
        }
        TableSql {
            source_name: t.display_name(),
            target_name: format!("{}.{}", task.target_db, task.target_table),
            target_db: task.target_db.clone(),
            target_table: task.target_table.clone(),
            kinds: stored.iter().map(|c| c.kind).collect(),
            select: format!("SELECT {names} FROM {}", t.from_all()),
            filter: mapping.and_then(|m| m.filter.as_ref()).map(|f| f.sql()),
            key: chunk_key(t).map(|k| k.iter().map(|&i| t.columns[i].clone()).collect()),
            load_sql,
            insert_prefix: format!("INSERT INTO {target} ({target_names}) VALUES ").into_bytes(),
            enum_columns: written
                .iter()
                .filter(|c| c.kind == ColumnKind::Enum)
                .map(|c| c.name.clone())
                .collect(),
        }
    }

    /// The chunk's `SELECT` and its parameters.
    pub fn select_chunk(&self, chunk: &ChunkPlan) -> Result<(String, Vec<Value>), LoadError> {
        let bounded = chunk.lower.is_some() || chunk.upper.is_some();
        let Some(key) = &self.key else {
            if bounded {
                return Err(self.plan_mismatch());
            }
            return Ok((self.filtered(String::new()), Vec::new()));
        };
        let cols: Vec<&Column> = key.iter().collect();
        for b in [&chunk.lower, &chunk.upper].into_iter().flatten() {
            if b.len() != cols.len() {
                return Err(self.plan_mismatch());
            }
        }
        let (w, params) = chunk_where(&cols, chunk.lower.as_deref(), chunk.upper.as_deref());
        Ok((self.filtered(w), params))
    }

    /// The SELECT with a chunk's `WHERE …` (or nothing) and the job's row filter.
    fn filtered(&self, chunk_where: String) -> String {
        match (&self.filter, chunk_where.is_empty()) {
            (None, _) => format!("{}{chunk_where}", self.select),
            (Some(f), true) => format!("{} WHERE {f}", self.select),
            (Some(f), false) => format!("{}{chunk_where} AND {f}", self.select),
        }
    }

    fn plan_mismatch(&self) -> LoadError {
        LoadError::Checkpoint(format!(
            "the stored chunk plan of {} does not fit the table's key any more (was the table \
             changed since the load started?); clear the job's checkpoints and load it again",
            self.source_name
        ))
    }

    /// The quoted target table.
    pub fn target_quoted(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.target_db),
            quote_ident(&self.target_table)
        )
    }
}
