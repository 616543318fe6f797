//! `Ferry.DbList`: the job's objects in Alibaba DTS's DbList grammar, with per-table row filters,
//! column selection and renaming, and the replayed change kinds (`dml_op`, `ddl_op`):
//!
//! ```json
//! {"<src_db>": {"name": "<dst_db>", "all": true|false, "dml_op": "insert,update", "ddl_op": "AlterTable",
//!   "Table": {"<src_table>": {"name": "<dst_table>", "all": true|false, "dml_op": "…", "ddl_op": "…",
//!     "filter": "<MySQL boolean expression>", "column": {"<src_col>": {"name": "<dst_col>"}}}}}}
//! ```
//!
//! Parsed into a [`Selection`] with its [`ObjectMapping`]. Checks that need the source tables
//! (columns exist, the row key survives, the filter's types) run in the pre-check
//! ([`ferry_core::mapping::TableMapping::check`]).

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::filter::RowFilter;
use ferry_core::mapping::{ColumnMap, DdlKind, DmlKind, Kinds, TableMapping};
use ferry_core::selection::{is_system_schema, DbSelection, ObjectMapping, TableSelection};
use ferry_core::Selection;
use serde::{Deserialize, Serialize};

use crate::spec::{check_name, err, SpecError};

/// The largest DbList accepted, in bytes of JSON (Alibaba's limit is 10 MB; Ferry's is smaller:
/// the list is parsed at every job creation).
pub const MAX_LEN: usize = 1 << 20;

/// `Ferry.DbList`: a JSON object, or a string holding one (as Alibaba's API sends it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DbListField {
    Text(String),
    Map(BTreeMap<String, DbListDb>),
}

/// One database of a DbList.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbListDb {
    pub name: Option<String>,
    pub all: Option<bool>,
    pub dml_op: Option<String>,
    pub ddl_op: Option<String>,
    #[serde(rename = "Table")]
    pub table: Option<BTreeMap<String, DbListTable>>,
}

/// One table of a DbList database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbListTable {
    pub name: Option<String>,
    pub all: Option<bool>,
    pub dml_op: Option<String>,
    pub ddl_op: Option<String>,
    pub filter: Option<String>,
    pub column: Option<BTreeMap<String, DbListColumn>>,
}

/// One column of a DbList table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbListColumn {
    pub name: Option<String>,
}

const F: &str = "Ferry.DbList";

/// Parses a comma-separated list of kinds (case-insensitive; `_` ignored).
fn kinds<T: Copy + Ord>(field: &str, text: Option<&str>, all: &[(&str, T)]) -> Result<Kinds<T>, SpecError> {
    let Some(text) = text else { return Ok(None) };
    let norm = |s: &str| s.trim().replace('_', "").to_ascii_lowercase();
    let mut out = BTreeSet::new();
    for part in text.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        let k = all.iter().find(|(n, _)| norm(n) == norm(part)).ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
            err(
                field,
                format!(
                    "{:?} is not one of {} (comma-separated)",
                    part.trim(),
                    names.join(", ")
                ),
            )
        })?;
        out.insert(k.1);
    }
    if out.is_empty() {
        return Err(err(
            field,
            "lists no kind: name the kinds to replay, or remove the field to replay all",
        ));
    }
    Ok(Some(out))
}

impl DbListField {
    /// Validates into a selection with its mappings.
    pub fn selection(&self) -> Result<Selection, SpecError> {
        let map = match self {
            DbListField::Map(m) => m.clone(),
            DbListField::Text(t) => {
                if t.len() > MAX_LEN {
                    return Err(err(F, format!("is longer than {MAX_LEN} bytes")));
                }
                serde_json::from_str(t).map_err(|e| {
                    err(
                        F,
                        format!("is not a valid DbList (a JSON object {{\"<database>\": {{\"name\": …, \"Table\": {{…}}}}}}): {e}"),
                    )
                })?
            }
        };
        if map.is_empty() {
            return Err(err(F, "lists no database: {\"shop\": {\"all\": true}}"));
        }
        let mut dbs = Vec::new();
        let mut mapping = ObjectMapping::default();
        let mut targets = BTreeSet::new();
        for (db, d) in &map {
            let f = |s: &str| format!("{F}.{db}{s}");
            check_name(&f(""), db)?;
            if is_system_schema(db) {
                return Err(err(
                    &f(""),
                    format!("{db} is a system schema and cannot be migrated"),
                ));
            }
            let target = d.name.clone().unwrap_or_else(|| db.clone());
            check_name(&f(".name"), &target)?;
            if is_system_schema(&target) || !targets.insert(target.to_lowercase()) {
                return Err(err(
                    &f(".name"),
                    format!("{target} is a system schema or already the target of another database"),
                ));
            }
            let tables = d.table.clone().unwrap_or_default();
            let whole = match d.all {
                Some(a) => a,
                None => tables.is_empty(),
            };
            if !whole && tables.is_empty() {
                return Err(err(
                    &f(".all"),
                    "is false but Table lists no table: set \"all\": true or list the tables",
                ));
            }
            let db_ops = TableMapping {
                dml: kinds(&f(".dml_op"), d.dml_op.as_deref(), &DmlKind::ALL)?,
                ddl: kinds(&f(".ddl_op"), d.ddl_op.as_deref(), &DdlKind::ALL)?,
                ..TableMapping::default()
            };
            let mut listed = Vec::new();
            let mut renames = BTreeMap::new();
            let mut table_targets = BTreeSet::new();
            let mut table_maps = BTreeMap::new();
            for (t, spec) in &tables {
                let f = |s: &str| format!("{F}.{db}.Table.{t}{s}");
                check_name(&f(""), t)?;
                let tt = spec.name.clone().unwrap_or_else(|| t.clone());
                check_name(&f(".name"), &tt)?;
                if !table_targets.insert(tt.to_lowercase()) {
                    return Err(err(
                        &f(".name"),
                        format!("{tt} is already the target of another table"),
                    ));
                }
                if tt != *t {
                    renames.insert(t.clone(), tt.clone());
                }
                listed.push(TableSelection {
                    name: t.clone(),
                    target: tt,
                });
                let m = table_mapping(&f, spec, &db_ops)?;
                if !m.is_identity() {
                    table_maps.insert(t.clone(), m);
                }
            }
            if !table_maps.is_empty() {
                mapping.tables.insert(db.clone(), table_maps);
            }
            if !db_ops.is_identity() {
                mapping.dbs.insert(db.clone(), db_ops);
            }
            dbs.push(DbSelection {
                name: db.clone(),
                target,
                tables: if whole { None } else { Some(listed) },
                table_renames: if whole { renames } else { BTreeMap::new() },
            });
        }
        let mut sel = Selection::databases(dbs);
        sel.mapping = mapping;
        Ok(sel)
    }
}

/// One table's mapping; `dml_op`/`ddl_op` default to the database's.
fn table_mapping(
    f: &dyn Fn(&str) -> String,
    spec: &DbListTable,
    db_ops: &TableMapping,
) -> Result<TableMapping, SpecError> {
    let filter = match &spec.filter {
        None => None,
        Some(text) if text.trim().is_empty() => None,
        Some(text) => Some(RowFilter::parse(text).map_err(|e| err(&f(".filter"), e))?),
    };
    let columns = match &spec.column {
        None => None,
        Some(cols) => {
            if spec.all == Some(true) {
                return Err(err(
                    &f(".all"),
                    "is true (every column) but column lists some: remove one of them",
                ));
            }
            if cols.is_empty() {
                return Err(err(
                    &f(".column"),
                    "lists no column: list the columns to move, or remove it",
                ));
            }
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for (c, m) in cols {
                check_name(&f(&format!(".column.{c}")), c)?;
                let target = m.name.clone().unwrap_or_else(|| c.clone());
                check_name(&f(&format!(".column.{c}.name")), &target)?;
                if !seen.insert(target.to_lowercase()) {
                    return Err(err(
                        &f(&format!(".column.{c}.name")),
                        format!("{target} is already the target of another column"),
                    ));
                }
                out.push(ColumnMap {
                    name: c.clone(),
                    target,
                });
            }
            Some(out)
        }
    };
    Ok(TableMapping {
        filter,
        columns,
        dml: match spec.dml_op.as_deref() {
            None => db_ops.dml.clone(),
            t => kinds(&f(".dml_op"), t, &DmlKind::ALL)?,
        },
        ddl: match spec.ddl_op.as_deref() {
            None => db_ops.ddl.clone(),
            t => kinds(&f(".ddl_op"), t, &DdlKind::ALL)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(j: serde_json::Value) -> Result<Selection, SpecError> {
        let field: DbListField = serde_json::from_value(j).map_err(|e| err(F, e.to_string()))?;
        field.selection()
    }

    #[test]
    fn the_grammar_maps_tables_columns_and_kinds() {
        let sel = parse(serde_json::json!({
            "shop": {"name": "shop2", "all": false, "dml_op": "insert,update", "Table": {
                "orders": {"name": "orders_t7", "filter": "tenant_id = 7",
                           "column": {"id": {}, "tenant_id": {}, "note": {"name": "remark"}},
                           "ddl_op": "AlterTable, create_index"},
                "users": {"all": true}
            }},
            "crm": {"all": true, "Table": {"x": {"name": "y"}}}
        }))
        .unwrap();
        assert_eq!(
            sel.target_table("shop", "orders"),
            Some(("shop2".into(), "orders_t7".into()))
        );
        assert_eq!(sel.target_table("shop", "other"), None);
        assert_eq!(sel.target_table("crm", "x"), Some(("crm".into(), "y".into())));
        assert_eq!(sel.target_table("crm", "z"), Some(("crm".into(), "z".into())));
        let m = sel.mapping("shop", "orders").unwrap();
        assert_eq!(m.filter.as_ref().unwrap().text(), "tenant_id = 7");
        assert_eq!(m.target_column("note"), Some("remark"));
        assert_eq!(m.target_column("secret"), None);
        assert!(m.replays_dml(DmlKind::Update) && !m.replays_dml(DmlKind::Delete));
        assert!(m.replays_ddl(DdlKind::AlterTable) && !m.replays_ddl(DdlKind::DropTable));
        // the database's dml_op applies to its tables without their own
        let u = sel.mapping("shop", "users").unwrap();
        assert!(u.filter.is_none() && !u.replays_dml(DmlKind::Delete) && u.replays_ddl(DdlKind::DropTable));
        assert_eq!(sel.mapping("crm", "x"), None);
        // a string holding the JSON is the same list
        let text = serde_json::json!({"crm": {"all": true}}).to_string();
        let s2 = DbListField::Text(text).selection().unwrap();
        assert!(s2.whole_db("crm"));
    }

    #[test]
    fn errors_name_the_field() {
        let field = |j: serde_json::Value| parse(j).map(|_| "ok".to_string()).unwrap_or_else(|e| e.field);
        assert_eq!(field(serde_json::json!({})), "Ferry.DbList");
        assert_eq!(
            field(serde_json::json!({"mysql": {"all": true}})),
            "Ferry.DbList.mysql"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"all": false}})),
            "Ferry.DbList.a.all"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"all": true}, "b": {"name": "a"}})),
            "Ferry.DbList.b.name"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"dml_op": "upsert"}})),
            "Ferry.DbList.a.dml_op"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"dml_op": " , "}})),
            "Ferry.DbList.a.dml_op"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"Table": {"t": {"filter": "id > (SELECT 1)"}}}})),
            "Ferry.DbList.a.Table.t.filter"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"Table": {"t": {"filter": "created < NOW()"}}}})),
            "Ferry.DbList.a.Table.t.filter"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"Table": {"t": {"all": true, "column": {"id": {}}}}}})),
            "Ferry.DbList.a.Table.t.all"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"Table": {"t": {"column": {"x": {"name": "id"}, "id": {}}}}}})),
            "Ferry.DbList.a.Table.t.column.x.name"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"Table": {"t": {"ddl_op": "DropDatabase"}}}})),
            "Ferry.DbList.a.Table.t.ddl_op"
        );
        assert_eq!(
            field(serde_json::json!({"a": {"Table": {"t": {"name": "u"}, "u": {}}}})),
            "Ferry.DbList.a.Table.u.name"
        );
        // unknown keys are refused (a typo must not silently move everything)
        assert_eq!(
            field(serde_json::json!({"a": {"Table": {"t": {"filtre": "id > 1"}}}})),
            "Ferry.DbList"
        );
    }
}
