//! Which objects a job moves, and under which names they land on the target.
//!
//! The selection is either the whole instance (system schemas excluded) or a list of databases,
//! each whole or restricted to tables. Databases and tables may be renamed (an extension modelled
//! on Alibaba DTS's DbList `name` mapping), and tables may carry a [`TableMapping`] (row filter,
//! column selection and renaming, replayed change kinds: `Ferry.DbList`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mapping::TableMapping;

/// Schemas that are never migrated: the server's own, and Ferry's metadata schema.
pub const SYSTEM_SCHEMAS: &[&str] = &[
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    META_SCHEMA,
];

/// The schema on the target where Ferry keeps its checkpoints.
pub const META_SCHEMA: &str = "ferry_meta";

/// One selected table, with its target name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSelection {
    pub name: String,
    pub target: String,
}

/// One selected database, with its target name and, optionally, a restricted table list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSelection {
    pub name: String,
    pub target: String,
    /// `None`: every table of the database; `Some`: only these.
    pub tables: Option<Vec<TableSelection>>,
    /// Renames of tables when the whole database is selected.
    #[serde(default)]
    pub table_renames: BTreeMap<String, String>,
}

/// The objects of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectSelection {
    /// Every database but the system schemas.
    WholeInstance,
    /// The listed databases.
    Databases(Vec<DbSelection>),
}

/// The per-table mappings of a selection (`Ferry.DbList`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMapping {
    /// Source database → source table → its mapping.
    pub tables: BTreeMap<String, BTreeMap<String, TableMapping>>,
    /// Source database → the mapping of its tables without an entry of their own (only the
    /// replayed change kinds: a database-level `dml_op`/`ddl_op`).
    pub dbs: BTreeMap<String, TableMapping>,
}

impl ObjectMapping {
    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.tables
            .values()
            .all(|t| t.values().all(TableMapping::is_identity))
            && self.dbs.values().all(TableMapping::is_identity)
    }
}

/// Selection plus mapping, with lookup helpers used by every engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub objects: ObjectSelection,
    /// Row filters, column mappings and replayed change kinds (`Ferry.DbList`); empty otherwise.
    #[serde(default)]
    pub mapping: ObjectMapping,
}

/// True for schemas Ferry never migrates.
pub fn is_system_schema(db: &str) -> bool {
    SYSTEM_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(db))
}

impl Selection {
    /// The whole instance.
    pub fn whole_instance() -> Self {
        Selection {
            objects: ObjectSelection::WholeInstance,
            mapping: ObjectMapping::default(),
        }
    }

    /// The listed databases, without mappings.
    pub fn databases(list: Vec<DbSelection>) -> Self {
        Selection {
            objects: ObjectSelection::Databases(list),
            mapping: ObjectMapping::default(),
        }
    }

    /// The mapping of a selected source table; `None` when it moves whole (every row, every
    /// column under its own name, every change).
    pub fn mapping(&self, db: &str, table: &str) -> Option<&TableMapping> {
        self.mapping
            .tables
            .get(db)
            .and_then(|t| t.get(table))
            .or_else(|| self.mapping.dbs.get(db))
            .filter(|m| !m.is_identity())
    }

    fn db(&self, db: &str) -> Option<&DbSelection> {
        match &self.objects {
            ObjectSelection::WholeInstance => None,
            ObjectSelection::Databases(list) => list.iter().find(|d| d.name == db),
        }
    }

    /// The target name of a source database, or `None` when it is not selected.
    pub fn target_db(&self, db: &str) -> Option<String> {
        if is_system_schema(db) {
            return None;
        }
        match &self.objects {
            ObjectSelection::WholeInstance => Some(db.to_string()),
            ObjectSelection::Databases(_) => self.db(db).map(|d| d.target.clone()),
        }
    }

    /// The target (database, table) of a source table, or `None` when it is not selected.
    pub fn target_table(&self, db: &str, table: &str) -> Option<(String, String)> {
        let target_db = self.target_db(db)?;
        match self.db(db) {
            None => Some((target_db, table.to_string())),
            Some(d) => match &d.tables {
                None => Some((
                    target_db,
                    d.table_renames
                        .get(table)
                        .cloned()
                        .unwrap_or_else(|| table.to_string()),
                )),
                Some(ts) => ts
                    .iter()
                    .find(|t| t.name == table)
                    .map(|t| (target_db, t.target.clone())),
            },
        }
    }

    /// True when a whole database is selected (not only some of its tables); views, routines,
    /// triggers and events are copied only for such databases.
    pub fn whole_db(&self, db: &str) -> bool {
        if is_system_schema(db) {
            return false;
        }
        match &self.objects {
            ObjectSelection::WholeInstance => true,
            ObjectSelection::Databases(_) => self.db(db).is_some_and(|d| d.tables.is_none()),
        }
    }

    /// Explicitly listed databases (empty for the whole instance).
    pub fn listed_dbs(&self) -> Vec<&DbSelection> {
        match &self.objects {
            ObjectSelection::WholeInstance => Vec::new(),
            ObjectSelection::Databases(list) => list.iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        let s = Selection::databases(vec![
            DbSelection {
                name: "a".into(),
                target: "a2".into(),
                tables: Some(vec![TableSelection {
                    name: "t".into(),
                    target: "t2".into(),
                }]),
                table_renames: BTreeMap::new(),
            },
            DbSelection {
                name: "b".into(),
                target: "b".into(),
                tables: None,
                table_renames: [("x".to_string(), "y".to_string())].into(),
            },
        ]);
        assert_eq!(s.target_table("a", "t"), Some(("a2".into(), "t2".into())));
        assert_eq!(s.target_table("a", "u"), None);
        assert_eq!(s.target_table("b", "x"), Some(("b".into(), "y".into())));
        assert_eq!(s.target_table("b", "z"), Some(("b".into(), "z".into())));
        assert_eq!(s.target_db("c"), None);
        assert!(s.whole_db("b") && !s.whole_db("a"));
        let w = Selection::whole_instance();
        assert_eq!(w.target_db("mysql"), None);
        assert_eq!(w.target_db("ferry_meta"), None);
        assert_eq!(w.target_db("shop"), Some("shop".into()));
    }
}
