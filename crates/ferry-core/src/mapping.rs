//! The per-table mapping of a job (`Ferry.DbList`, Alibaba DTS's DbList grammar): which rows move
//! (a row filter), which columns move and under which names, and which kinds of change the
//! incremental phase replays (`dml_op`, `ddl_op`).
//!
//! A table without a mapping moves whole: every row, every column under its own name, every
//! change.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::filter::RowFilter;
use crate::table::TableSchema;

/// One moved column: its source name and its name on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMap {
    pub name: String,
    pub target: String,
}

/// The kinds of row change (`dml_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DmlKind {
    Insert,
    Update,
    Delete,
}

impl DmlKind {
    /// Every kind, with its `dml_op` name.
    pub const ALL: [(&'static str, DmlKind); 3] = [
        ("insert", DmlKind::Insert),
        ("update", DmlKind::Update),
        ("delete", DmlKind::Delete),
    ];
}

/// The kinds of table DDL (`ddl_op`) a table-level selection can tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DdlKind {
    CreateTable,
    AlterTable,
    DropTable,
    RenameTable,
    TruncateTable,
    CreateIndex,
    DropIndex,
}

impl DdlKind {
    /// Every kind, with its `ddl_op` name.
    pub const ALL: [(&'static str, DdlKind); 7] = [
        ("CreateTable", DdlKind::CreateTable),
        ("AlterTable", DdlKind::AlterTable),
        ("DropTable", DdlKind::DropTable),
        ("RenameTable", DdlKind::RenameTable),
        ("TruncateTable", DdlKind::TruncateTable),
        ("CreateIndex", DdlKind::CreateIndex),
        ("DropIndex", DdlKind::DropIndex),
    ];

    /// The kind of a statement from its leading words (`ALTER TABLE …` → `AlterTable`), `None`
    /// for statements that are not table DDL.
    pub fn of_statement(words: &[&str]) -> Option<DdlKind> {
        let up: Vec<String> = words.iter().take(4).map(|w| w.to_ascii_uppercase()).collect();
        let w: Vec<&str> = up.iter().map(String::as_str).collect();
        let object = |i: usize| {
            // skip modifiers between the verb and the object word
            w.iter().skip(i).copied().find(|x| {
                !matches!(
                    *x,
                    "TEMPORARY"
                        | "ONLINE"
                        | "OFFLINE"
                        | "IGNORE"
                        | "OR"
                        | "REPLACE"
                        | "UNIQUE"
                        | "FULLTEXT"
                        | "SPATIAL"
                )
            })
        };
        match (w.first().copied(), object(1)) {
            (Some("CREATE"), Some("TABLE")) => Some(DdlKind::CreateTable),
            (Some("CREATE"), Some("INDEX")) => Some(DdlKind::CreateIndex),
            (Some("ALTER"), Some("TABLE")) => Some(DdlKind::AlterTable),
            (Some("DROP"), Some("TABLE")) => Some(DdlKind::DropTable),
            (Some("DROP"), Some("INDEX")) => Some(DdlKind::DropIndex),
            (Some("RENAME"), Some("TABLE")) => Some(DdlKind::RenameTable),
            (Some("TRUNCATE"), _) => Some(DdlKind::TruncateTable),
            _ => None,
        }
    }
}

/// A set of kinds; `None`: all of them (the field was absent).
pub type Kinds<T> = Option<BTreeSet<T>>;

/// How one table moves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMapping {
    /// Only rows this condition selects move.
    #[serde(default)]
    pub filter: Option<RowFilter>,
    /// Only these columns move, in this order; `None`: every column under its own name.
    #[serde(default)]
    pub columns: Option<Vec<ColumnMap>>,
    /// Row changes the incremental phase replays.
    #[serde(default)]
    pub dml: Kinds<DmlKind>,
    /// Table DDL the incremental phase replays.
    #[serde(default)]
    pub ddl: Kinds<DdlKind>,
}

impl TableMapping {
    /// True when the mapping changes nothing.
    pub fn is_identity(&self) -> bool {
        self == &TableMapping::default()
    }

    /// True when row changes of this kind are replayed.
    pub fn replays_dml(&self, k: DmlKind) -> bool {
        self.dml.as_ref().is_none_or(|s| s.contains(&k))
    }

    /// True when DDL of this kind is replayed.
    pub fn replays_ddl(&self, k: DdlKind) -> bool {
        self.ddl.as_ref().is_none_or(|s| s.contains(&k))
    }

    /// The target name of a source column, `None` when the column does not move.
    pub fn target_column<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        match &self.columns {
            None => Some(name),
            Some(cols) => cols
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .map(|c| c.target.as_str()),
        }
    }

    /// The source name of a target column, `None` when no moved column lands there.
    pub fn source_column<'a>(&'a self, target: &'a str) -> Option<&'a str> {
        match &self.columns {
            None => Some(target),
            Some(cols) => cols
                .iter()
                .find(|c| c.target.eq_ignore_ascii_case(target))
                .map(|c| c.name.as_str()),
        }
    }

    /// [`Self::check`], and for a job that replays changes: the filter is one Ferry evaluates
    /// exactly on every replayed row ([`crate::filter_eval`]).
    pub fn check_replayed(&self, t: &TableSchema, replays: bool) -> Result<(), String> {
        self.check(t)?;
        if let (true, Some(f)) = (replays, &self.filter) {
            crate::filter_eval::CompiledFilter::compile(f, t).map_err(|e| {
                format!(
                    "the filter {:?} cannot be evaluated by the incremental replay: {e}",
                    f.text()
                )
            })?;
        }
        Ok(())
    }

    /// Checks the mapping against the source table: every mapped and filtered column exists,
    /// and the row key survives the column selection. The error names the problem and the fix.
    pub fn check(&self, t: &TableSchema) -> Result<(), String> {
        let has = |n: &str| t.columns.iter().any(|c| c.name.eq_ignore_ascii_case(n));
        if let Some(cols) = &self.columns {
            for c in cols {
                if !has(&c.name) {
                    return Err(format!(
                        "column {} does not exist in {}",
                        c.name,
                        t.display_name()
                    ));
                }
            }
            if let Some(key) = t.row_key() {
                for &i in key {
                    let k = &t.columns[i].name;
                    if self.target_column(k).is_none() {
                        return Err(format!(
                            "drops {k}, a column of the key that identifies the rows of {} on the \
                             target: keep it in column",
                            t.display_name()
                        ));
                    }
                }
            }
        }
        if let Some(f) = &self.filter {
            for c in f.columns() {
                if !has(c) {
                    return Err(format!(
                        "the filter reads {c}, which is not a column of {}",
                        t.display_name()
                    ));
                }
            }
        }
        Ok(())
    }
}
