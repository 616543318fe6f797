//! Ferry's structure copier: read the source catalog, plan the DDL, and apply it on the target.
//!
//! - [`read_catalog`] ([`catalog`]): per selected database its charset and collation; per selected
//!   table its `SHOW CREATE TABLE` text and model; views (with their dependencies), routines,
//!   triggers and events, each with its `SHOW CREATE …` text.
//! - [`plan`] ([`mod@plan`]): turns the catalog into ordered DDL. Names are mapped through the
//!   [`Selection`](ferry_core::Selection) by splicing identifier tokens into the original text
//!   (never re-printing it); secondary indexes and foreign keys are split off for after the data.
//! - [`column_map`]: the target structure of a table with a column mapping (`Ferry.DbList`).
//! - [`apply`] ([`mod@apply`]): runs the DDL on the target and reports each object.
//! - [`target_tables`] / [`prepare_existing`] ([`target`]): what to do with tables that already
//!   exist on the target.
//! - [`accounts`] / [`account_sql`] / [`accounts_io`]: the users and roles a job copies (`Ferry.Accounts`,
//!   `IsOverrideRoot`), planned purely and then read and written on the servers.
//! - [`SchemaError`] ([`error`]): every failure, transient or definite.

pub mod account_sql;
pub mod accounts;
pub mod accounts_io;
pub mod apply;
pub mod catalog;
pub mod column_map;
pub mod definer;
pub mod error;
pub mod names;
pub mod plan;
pub mod sequences;
pub mod table_ddl;
pub mod target;

use serde::{Deserialize, Serialize};

pub use apply::apply;
pub use catalog::{read_catalog, Catalog, DbDef, ObjectDef, TableDef};
pub use error::SchemaError;
pub use plan::plan;
pub use target::{prepare_existing, target_tables, ExistingTablePolicy, TargetTableState};

/// When secondary indexes are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IndexTiming {
    /// Plain, FULLTEXT and SPATIAL indexes are added after the data (faster load). Primary and
    /// unique keys stay in the CREATE TABLE: they protect the data.
    #[default]
    AfterData,
    /// Every index is created with its table.
    Inline,
}

/// What to do with the DEFINER of views, routines, triggers and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DefinerPolicy {
    /// Keep the source's definer (the target login then needs SET USER / SUPER to use it).
    #[default]
    Keep,
    /// Replace it with `DEFINER=CURRENT_USER`: the target login owns the objects.
    RewriteToCurrentUser,
}

/// How the structure is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StructureOptions {
    pub index_timing: IndexTiming,
    pub definer: DefinerPolicy,
}

/// The kind of object a DDL statement creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectKind {
    Database,
    Table,
    View,
    Function,
    Procedure,
    /// Secondary indexes of one table (`name` is the table).
    Index,
    /// Foreign keys of one table (`name` is the table).
    ForeignKey,
    Trigger,
    Event,
    /// A MariaDB SEQUENCE (10.3+): created before the tables (defaults may use it); its state
    /// (the row `SELECT * FROM seq` shows) is copied by [`sequences::copy_state`].
    Sequence,
}

impl ObjectKind {
    /// Lower-case name, as used in progress events and messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectKind::Database => "database",
            ObjectKind::Table => "table",
            ObjectKind::View => "view",
            ObjectKind::Function => "function",
            ObjectKind::Procedure => "procedure",
            ObjectKind::Index => "indexes",
            ObjectKind::ForeignKey => "foreign keys",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Event => "event",
            ObjectKind::Sequence => "sequence",
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One DDL statement for the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ddl {
    pub kind: ObjectKind,
    /// Target database (the statement runs with it as the default database).
    pub db: String,
    /// Target object name; for [`ObjectKind::Index`] and [`ObjectKind::ForeignKey`] the table's.
    pub name: String,
    pub sql: String,
    /// The source object's `sql_mode` (routines, triggers, events), set while creating it.
    #[serde(default)]
    pub sql_mode: Option<String>,
    /// The source event's `time_zone`, set while creating it (its schedule is read in it).
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl Ddl {
    /// `db.name`, unquoted, for messages.
    pub fn display_name(&self) -> String {
        if self.kind == ObjectKind::Database {
            self.db.clone()
        } else {
            format!("{}.{}", self.db, self.name)
        }
    }
}

/// The DDL of a job: what runs before the data, and what runs after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructurePlan {
    /// Databases, tables (without the split-off indexes and FKs), routines, views.
    pub pre_data: Vec<Ddl>,
    /// Secondary indexes, foreign keys, triggers, events.
    pub post_data: Vec<Ddl>,
}
