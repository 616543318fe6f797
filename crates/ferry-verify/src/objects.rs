//! Object-level comparison (Huawei DRS's "object comparison"): databases, tables, columns (type,
//! nullability, default, charset, collation, extra, generation expression), each table's column
//! order (one entry per table, so an inserted column is one difference, not one per later
//! column), indexes, foreign keys, CHECK constraints, partitioning, and for whole selected
//! databases views, routines, triggers, events and sequences (with their state:
//! [`crate::sequences`]). Source objects are
//! looked up on the target through the job's name mapping; view, routine and trigger texts have
//! the source's qualified database and table names rewritten to the target's before comparing.
//! Definers and event status are not compared (the structure copier may rewrite or disable them).

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::catalog::resolve_selection;
use ferry_core::sql::quote_ident;
use ferry_core::Selection;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::error::{Ctx, VerifyError};
use crate::report::ObjectDiff;

/// Objects of one side: (type, name in target naming) → (display name, definition).
type Objects = BTreeMap<(String, String), (String, String)>;

fn text(v: Option<Value>) -> Option<String> {
    match v? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        v => Some(format!("{v:?}")),
    }
}

async fn fetch(
    conn: &mut Conn,
    sql: &str,
    db: &str,
    side: &str,
) -> Result<Vec<Vec<Option<String>>>, VerifyError> {
    let rows: Vec<Row> = conn
        .exec(sql, (db,))
        .await
        .ctx(|| format!("reading the catalog of {db} on the {side}"))?;
    Ok(rows
        .into_iter()
        .map(|r| r.unwrap_raw().into_iter().map(text).collect())
        .collect())
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// `COLUMN_TYPE` without the integer display width MySQL 8.0.19+ no longer shows (`int(11)` →
/// `int`, `bigint(20) unsigned` → `bigint unsigned`; `year(4)` → `year` likewise). MySQL keeps the
/// width where it still means something, and so does this: with ZEROFILL (the width pads the
/// value) and for `tinyint(1)`.
pub(crate) fn norm_column_type(t: &str) -> String {
    const INTS: &[&str] = &[
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "integer",
        "bigint",
        "year",
    ];
    let lower = t.to_ascii_lowercase();
    if lower.contains("zerofill") {
        return t.to_string();
    }
    let Some(open) = lower.find('(') else {
        return t.to_string();
    };
    let (base, rest) = (&lower[..open], &lower[open..]);
    if !INTS.contains(&base.trim()) || base.trim() == "tinyint" && rest.starts_with("(1)") {
        return t.to_string();
    }
    match rest.find(')') {
        Some(close) if rest[1..close].chars().all(|c| c.is_ascii_digit()) => {
            format!("{}{}", &t[..open], &t[open + close + 1..])
        }
        _ => t.to_string(),
    }
}

/// A character set or collation name with `utf8` spelled `utf8mb3` (MySQL 8.0.30+ and MariaDB
/// 10.6+ report utf8mb3, older servers utf8).
pub(crate) fn norm_charset(name: &str) -> String {
    let l = name.to_ascii_lowercase();
    if l == "utf8" {
        "utf8mb3".into()
    } else if let Some(rest) = l.strip_prefix("utf8_") {
        format!("utf8mb3_{rest}")
    } else {
        name.to_string()
    }
}

/// `EXTRA` without MySQL 8.0.13+'s `DEFAULT_GENERATED` marker (an expression default, which the
/// DEFAULT column already shows).
pub(crate) fn norm_extra(extra: &str) -> String {
    extra
        .split_whitespace()
        .filter(|w| !w.eq_ignore_ascii_case("DEFAULT_GENERATED"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// MySQL's generated invisible primary key column (`sql_generate_invisible_primary_key = ON`).
const GIPK: &str = "my_row_id";

/// Drops what a GIPK target adds to a table the source created without a primary key: the
/// invisible `my_row_id` column (and its place in the column order) and the PRIMARY key on it.
pub(crate) fn drop_target_gipk(a: &Objects, b: &mut Objects) {
    let tables: Vec<String> = b
        .iter()
        .filter(|((ty, key), (_, def))| {
            ty == "COLUMN"
                && key.ends_with(&format!(".{GIPK}"))
                && def.to_ascii_uppercase().contains("INVISIBLE")
                && !a.contains_key(&(ty.clone(), key.clone()))
        })
        .map(|((_, key), _)| key[..key.len() - GIPK.len() - 1].to_string())
        .collect();
    for t in tables {
        b.remove(&("COLUMN".to_string(), format!("{t}.{GIPK}")));
        if let Some((_, order)) = b.get_mut(&("COLUMN ORDER".to_string(), t.clone())) {
            *order = order
                .split(", ")
                .filter(|c| *c != GIPK)
                .collect::<Vec<_>>()
                .join(", ");
        }
        let pk = ("INDEX".to_string(), format!("{t}.PRIMARY"));
        let only_gipk = b
            .get(&pk)
            .is_some_and(|(_, def)| def.ends_with(&format!("({GIPK})")));
        if only_gipk && !a.contains_key(&pk) {
            b.remove(&pk);
        }
    }
}

/// How names map for one database pair.
struct Mapping<'a> {
    sel: &'a Selection,
    db: &'a str,
    tdb: String,
    /// Selected source tables.
    tables: BTreeSet<String>,
    whole: bool,
}

impl Mapping<'_> {
    /// The target name of a source table, when selected.
    fn table(&self, t: &str) -> Option<String> {
        if !self.tables.contains(t) {
            return None;
        }
        self.sel.target_table(self.db, t).map(|(_, n)| n)
    }

    /// Rewrites the source's qualified names in a definition to the target's.
    fn rewrite(&self, def: &str) -> String {
        let mut out = def.to_string();
        for t in &self.tables {
            if let Some(tt) = self.table(t) {
                out = out.replace(
                    &format!("{}.{}", quote_ident(self.db), quote_ident(t)),
                    &format!("{}.{}", quote_ident(&self.tdb), quote_ident(&tt)),
                );
            }
        }
        out.replace(
            &format!("{}.", quote_ident(self.db)),
            &format!("{}.", quote_ident(&self.tdb)),
        )
    }
}

const COLUMNS: &str = "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, \
    COLUMN_DEFAULT, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, GENERATION_EXPRESSION \
    FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION";
const TABLES: &str = "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM information_schema.TABLES \
    WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME";
const INDEXES: &str = "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE \
    FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";
const FOREIGN_KEYS: &str = "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, \
    k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE \
    FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
      ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME \
      AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
    WHERE k.TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
    ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION";
/// MariaDB names CHECK constraints per table (`CHECK_CONSTRAINTS.TABLE_NAME`).
const CHECKS_MARIADB: &str = "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE \
    FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?";
/// MySQL 8.0.16+: per schema, the table from `TABLE_CONSTRAINTS`.
const CHECKS_MYSQL: &str = "SELECT t.TABLE_NAME, t.CONSTRAINT_NAME, c.CHECK_CLAUSE \
    FROM information_schema.TABLE_CONSTRAINTS t JOIN information_schema.CHECK_CONSTRAINTS c \
      ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME \
    WHERE t.CONSTRAINT_SCHEMA = ? AND t.CONSTRAINT_TYPE = 'CHECK'";
const PARTITIONS: &str = "SELECT TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, \
    PARTITION_EXPRESSION, PARTITION_DESCRIPTION, SUBPARTITION_METHOD, SUBPARTITION_EXPRESSION \
    FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = ? AND PARTITION_NAME IS NOT NULL \
    ORDER BY TABLE_NAME, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION";
const VIEWS: &str = "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE \
    FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?";
const ROUTINES: &str = "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_DEFINITION, \
    IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?";
const TRIGGERS: &str = "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, \
    ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?";
const EVENTS: &str = "SELECT EVENT_NAME, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, \
    ON_COMPLETION, EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?";

/// Reads one side's objects of a database. `m` is `None` on the target side (names as they are).
async fn read_side(
    conn: &mut Conn,
    db: &str,
    m: &Mapping<'_>,
    source: bool,
    side: &'static str,
) -> Result<Objects, VerifyError> {
    let mut o = Objects::new();
    // On the source, a selected table's target name; on the target, the name itself when it is
    // the image of a selected table (or any table of a whole database).
    let images: BTreeSet<String> = m.tables.iter().filter_map(|t| m.table(t)).collect();
    let rw = |d: &str| if source { m.rewrite(d) } else { d.to_string() };
    let schema: Option<Row> = conn
        .exec_first(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (db,),
        )
        .await
        .ctx(|| format!("reading database {db} on the {side}"))?;
    let Some(schema) = schema else {
        return Ok(o);
    };
    let sv: Vec<Option<String>> = schema.unwrap_raw().into_iter().map(text).collect();
    o.insert(
        ("DATABASE".into(), m.tdb.clone()),
        (
            db.to_string(),
            format!(
                "CHARACTER SET {} COLLATE {}",
                norm_charset(s(&sv[0])),
                norm_charset(s(&sv[1]))
            ),
        ),
    );
    // Base tables only: views have columns too.
    let tables = fetch(conn, TABLES, db, side).await?;
    let base: BTreeSet<String> = tables.iter().map(|r| s(&r[0]).to_string()).collect();
    let name = |t: &str| -> Option<String> {
        if !base.contains(t) {
            None
        } else if source {
            m.table(t)
        } else if m.whole || images.contains(t) {
            Some(t.to_string())
        } else {
            None
        }
    };
    for r in &tables {
        if let Some(n) = name(s(&r[0])) {
            o.insert(
                ("TABLE".into(), n),
                (
                    format!("{db}.{}", s(&r[0])),
                    format!("ENGINE={} COLLATE={}", s(&r[2]), norm_charset(s(&r[3]))),
                ),
            );
        }
    }
    let mut order: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for r in fetch(conn, COLUMNS, db, side).await? {
        if let Some(n) = name(s(&r[0])) {
            // A source column under its `Ferry.DbList` target name; one the mapping drops is not
            // on the target and not compared.
            let column = match m.sel.mapping(m.db, s(&r[0])).filter(|_| source) {
                None => s(&r[1]).to_string(),
                Some(tm) => match tm.target_column(s(&r[1])) {
                    None => continue,
                    Some(c) => c.to_string(),
                },
            };
            order
                .entry(n.clone())
                .or_insert_with(|| (format!("{db}.{}", s(&r[0])), Vec::new()))
                .1
                .push(column.clone());
            let mut def = norm_column_type(s(&r[3]));
            def.push_str(if s(&r[4]).eq_ignore_ascii_case("YES") {
                " NULL"
            } else {
                " NOT NULL"
            });
            if let Some(d) = &r[5] {
                def.push_str(&format!(" DEFAULT {d}"));
            }
            if let Some(c) = &r[6] {
                def.push_str(&format!(" CHARACTER SET {}", norm_charset(c)));
            }
            if let Some(c) = &r[7] {
                def.push_str(&format!(" COLLATE {}", norm_charset(c)));
            }
            let extra = norm_extra(s(&r[8]));
            if !extra.is_empty() {
                def.push_str(&format!(" {extra}"));
            }
            if let Some(g) = r[9].as_deref().filter(|g| !g.is_empty()) {
                def.push_str(&format!(" AS ({g})"));
            }
            o.insert(
                ("COLUMN".into(), format!("{n}.{column}")),
                (format!("{db}.{}.{}", s(&r[0]), s(&r[1])), def),
            );
        }
    }
    for (t, (disp, cols)) in order {
        o.insert(("COLUMN ORDER".into(), t), (disp, cols.join(", ")));
    }
    // Foreign keys: columns → referenced table (through the mapping on the source) and columns.
    struct Fk {
        disp: String,
        head: String,
        cols: Vec<String>,
        rcols: Vec<String>,
        tail: String,
    }
    let mut fks: BTreeMap<(String, String), Fk> = BTreeMap::new();
    for r in fetch(conn, FOREIGN_KEYS, db, side).await? {
        if let Some(n) = name(s(&r[0])) {
            let (rdb, rt) = (s(&r[3]), s(&r[4]));
            let referenced = match m.sel.target_table(rdb, rt).filter(|_| source) {
                Some((d, t)) => format!("{d}.{t}"),
                None => format!("{rdb}.{rt}"),
            };
            let e = fks.entry((n, s(&r[1]).to_string())).or_insert_with(|| Fk {
                disp: format!("{db}.{}.{}", s(&r[0]), s(&r[1])),
                head: format!("REFERENCES {referenced}"),
                cols: Vec::new(),
                rcols: Vec::new(),
                tail: format!("ON UPDATE {} ON DELETE {}", s(&r[6]), s(&r[7])),
            });
            e.cols.push(s(&r[2]).to_string());
            e.rcols.push(s(&r[5]).to_string());
        }
    }
    for ((t, c), fk) in fks {
        o.insert(
            ("FOREIGN KEY".into(), format!("{t}.{c}")),
            (
                fk.disp,
                format!(
                    "({}) {} ({}) {}",
                    fk.cols.join(", "),
                    fk.head,
                    fk.rcols.join(", "),
                    fk.tail
                ),
            ),
        );
    }
    let checks = match fetch(conn, CHECKS_MARIADB, db, side).await {
        Ok(rows) => rows,
        Err(_) => fetch(conn, CHECKS_MYSQL, db, side).await.unwrap_or_default(),
    };
    for r in checks {
        if let Some(n) = name(s(&r[0])) {
            o.insert(
                ("CHECK".into(), format!("{n}.{}", s(&r[1]))),
                (format!("{db}.{}.{}", s(&r[0]), s(&r[1])), s(&r[2]).to_string()),
            );
        }
    }
    let mut parts: BTreeMap<String, (String, String, Vec<String>)> = BTreeMap::new();
    for r in fetch(conn, PARTITIONS, db, side).await? {
        if let Some(n) = name(s(&r[0])) {
            let e = parts.entry(n).or_insert_with(|| {
                let mut head = format!("{} ({})", s(&r[3]), s(&r[4]));
                if let Some(sm) = r[6].as_deref().filter(|x| !x.is_empty()) {
                    head.push_str(&format!(" SUBPARTITION BY {sm} ({})", s(&r[7])));
                }
                (format!("{db}.{}", s(&r[0])), head, Vec::new())
            });
            let mut p = s(&r[1]).to_string();
            if let Some(sp) = r[2].as_deref() {
                p.push_str(&format!("/{sp}"));
            }
            if let Some(d) = r[5].as_deref() {
                p.push_str(&format!(" VALUES {d}"));
            }
            if e.2.last() != Some(&p) {
                e.2.push(p);
            }
        }
    }
    for (t, (disp, head, list)) in parts {
        o.insert(
            ("PARTITIONING".into(), t),
            (disp, format!("{head}: {}", list.join(", "))),
        );
    }
    let mut idx: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for r in fetch(conn, INDEXES, db, side).await? {
        if let Some(n) = name(s(&r[0])) {
            let e = idx.entry((n, s(&r[1]).to_string())).or_insert_with(|| {
                let unique = if s(&r[2]) == "0" { "UNIQUE " } else { "" };
                (
                    format!("{db}.{}.{}", s(&r[0]), s(&r[1])),
                    format!("{unique}{} (", s(&r[5])),
                )
            });
            if !e.1.ends_with('(') {
                e.1.push_str(", ");
            }
            e.1.push_str(r[3].as_deref().unwrap_or("<expression>"));
            if let Some(p) = &r[4] {
                e.1.push_str(&format!("({p})"));
            }
        }
    }
    for ((t, i), (disp, mut def)) in idx {
        def.push(')');
        o.insert(("INDEX".into(), format!("{t}.{i}")), (disp, def));
    }
    if !m.whole {
        return Ok(o);
    }
    for r in fetch(conn, VIEWS, db, side).await? {
        o.insert(
            ("VIEW".into(), s(&r[0]).to_string()),
            (
                format!("{db}.{}", s(&r[0])),
                format!("{} CHECK OPTION {} SECURITY {}", rw(s(&r[1])), s(&r[2]), s(&r[3])),
            ),
        );
    }
    for r in fetch(conn, ROUTINES, db, side).await? {
        o.insert(
            ("ROUTINE".into(), format!("{} {}", s(&r[1]), s(&r[0]))),
            (
                format!("{db}.{}", s(&r[0])),
                format!(
                    "{} RETURNS {} DETERMINISTIC={} {} SECURITY {}: {}",
                    s(&r[1]),
                    s(&r[2]),
                    s(&r[4]),
                    s(&r[5]),
                    s(&r[6]),
                    rw(s(&r[3]))
                ),
            ),
        );
    }
    for r in fetch(conn, TRIGGERS, db, side).await? {
        let table = if source {
            m.sel
                .target_table(db, s(&r[1]))
                .map(|(_, t)| t)
                .unwrap_or_else(|| s(&r[1]).to_string())
        } else {
            s(&r[1]).to_string()
        };
        o.insert(
            ("TRIGGER".into(), s(&r[0]).to_string()),
            (
                format!("{db}.{}", s(&r[0])),
                format!("{} {} ON {table}: {}", s(&r[2]), s(&r[3]), rw(s(&r[4]))),
            ),
        );
    }
    for r in fetch(conn, EVENTS, db, side).await? {
        o.insert(
            ("EVENT".into(), s(&r[0]).to_string()),
            (
                format!("{db}.{}", s(&r[0])),
                format!(
                    "{} AT {} EVERY {} {} ON COMPLETION {}: {}",
                    s(&r[1]),
                    s(&r[2]),
                    s(&r[3]),
                    s(&r[4]),
                    s(&r[5]),
                    rw(s(&r[6]))
                ),
            ),
        );
    }
    for (name, state) in crate::sequences::read(conn, db, side).await? {
        o.insert(("SEQUENCE".into(), name.clone()), (format!("{db}.{name}"), state));
    }
    Ok(o)
}

/// True when two comma-separated column lists order their common columns the same way.
fn same_order(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split(", ").collect(), b.split(", ").collect());
    let common = |x: &[&str], y: &[&str]| -> Vec<String> {
        x.iter()
            .filter(|c| y.contains(c))
            .map(|c| c.to_string())
            .collect()
    };
    common(&a, &b) == common(&b, &a)
}

/// Compares the objects of the selection on both servers.
pub async fn compare(
    src: &mut Conn,
    dst: &mut Conn,
    sel: &Selection,
) -> Result<Vec<ObjectDiff>, VerifyError> {
    let mut out = Vec::new();
    for (db, tables) in resolve_selection(src, sel).await? {
        let Some(tdb) = sel.target_db(&db) else { continue };
        let m = Mapping {
            sel,
            db: &db,
            tdb: tdb.clone(),
            tables: tables.into_iter().collect(),
            whole: sel.whole_db(&db),
        };
        let a = read_side(src, &db, &m, true, "source").await?;
        let mut b = read_side(dst, &tdb, &m, false, "target").await?;
        drop_target_gipk(&a, &mut b);
        let target_name = |ty: &str, key: &str| -> String {
            if ty == "DATABASE" {
                key.to_string()
            } else {
                format!("{tdb}.{key}")
            }
        };
        for ((ty, key), (disp, def)) in &a {
            let other = b.get(&(ty.clone(), key.clone()));
            if ty == "COLUMN ORDER" {
                // Only the order of the columns both sides have (missing or extra columns are
                // reported as such); nothing when the target table is missing.
                match other {
                    Some((_, d)) if !same_order(def, d) => out.push(ObjectDiff {
                        object_type: ty.clone(),
                        source_name: disp.clone(),
                        target_name: target_name(ty, key),
                        source: Some(def.clone()),
                        target: Some(d.clone()),
                    }),
                    _ => {}
                }
                continue;
            }
            match other {
                Some((_, d)) if d == def => {}
                other => out.push(ObjectDiff {
                    object_type: ty.clone(),
                    source_name: disp.clone(),
                    target_name: target_name(ty, key),
                    source: Some(def.clone()),
                    target: other.map(|(_, d)| d.clone()),
                }),
            }
        }
        for ((ty, key), (_, def)) in &b {
            if ty != "COLUMN ORDER" && !a.contains_key(&(ty.clone(), key.clone())) {
                out.push(ObjectDiff {
                    object_type: ty.clone(),
                    source_name: String::new(),
                    target_name: target_name(ty, key),
                    source: None,
                    target: Some(def.clone()),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_display_widths() {
        for (from, to) in [
            ("int(11)", "int"),
            ("int(10) unsigned", "int unsigned"),
            ("bigint(20)", "bigint"),
            ("smallint(6)", "smallint"),
            ("mediumint(8) unsigned", "mediumint unsigned"),
            ("tinyint(4)", "tinyint"),
            ("year(4)", "year"),
            ("int", "int"),
            ("bigint unsigned", "bigint unsigned"),
        ] {
            assert_eq!(norm_column_type(from), to, "{from}");
        }
        // Kept where the width means something (MySQL 8.0.19+ shows it too).
        for kept in [
            "int(10) unsigned zerofill",
            "int(5) zerofill",
            "tinyint(1)",
            "decimal(10,2)",
            "varchar(20)",
            "char(3)",
            "bit(8)",
            "float(7,3)",
            "datetime(6)",
            "enum('a','b')",
            "set('int(11)')",
        ] {
            assert_eq!(norm_column_type(kept), kept);
        }
    }

    #[test]
    fn utf8_is_utf8mb3_and_default_generated_is_dropped() {
        assert_eq!(norm_charset("utf8"), "utf8mb3");
        assert_eq!(norm_charset("utf8_general_ci"), "utf8mb3_general_ci");
        assert_eq!(norm_charset("utf8mb3_bin"), "utf8mb3_bin");
        assert_eq!(norm_charset("utf8mb4_0900_ai_ci"), "utf8mb4_0900_ai_ci");
        assert_eq!(norm_charset("latin1_swedish_ci"), "latin1_swedish_ci");
        assert_eq!(norm_extra("DEFAULT_GENERATED"), "");
        assert_eq!(
            norm_extra("DEFAULT_GENERATED on update CURRENT_TIMESTAMP"),
            "on update CURRENT_TIMESTAMP"
        );
        assert_eq!(norm_extra("auto_increment"), "auto_increment");
    }

    fn obj(entries: &[(&str, &str, &str)]) -> Objects {
        entries
            .iter()
            .map(|(ty, key, def)| {
                (
                    (ty.to_string(), key.to_string()),
                    (key.to_string(), def.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn a_target_only_gipk_is_ignored() {
        // Source: a table without a primary key. Target (MySQL 8.0.30+ with GIPK): my_row_id first.
        let a = obj(&[
            ("COLUMN", "k.c1", "varchar(50) NULL"),
            ("COLUMN ORDER", "k", "c1, c2"),
            ("COLUMN", "k.c2", "int NULL"),
        ]);
        let mut b = obj(&[
            (
                "COLUMN",
                "k.my_row_id",
                "bigint unsigned NOT NULL auto_increment INVISIBLE",
            ),
            ("COLUMN", "k.c1", "varchar(50) NULL"),
            ("COLUMN", "k.c2", "int NULL"),
            ("COLUMN ORDER", "k", "my_row_id, c1, c2"),
            ("INDEX", "k.PRIMARY", "UNIQUE BTREE (my_row_id)"),
        ]);
        drop_target_gipk(&a, &mut b);
        assert_eq!(b.keys().collect::<Vec<_>>(), a.keys().collect::<Vec<_>>());
        assert_eq!(b[&("COLUMN ORDER".to_string(), "k".to_string())].1, "c1, c2");

        // A visible my_row_id, or one the source has too, is a real column.
        let mut visible = obj(&[("COLUMN", "k.my_row_id", "bigint unsigned NOT NULL auto_increment")]);
        drop_target_gipk(&a, &mut visible);
        assert_eq!(visible.len(), 1);
        let both = obj(&[(
            "COLUMN",
            "k.my_row_id",
            "bigint unsigned NOT NULL auto_increment INVISIBLE",
        )]);
        let mut b2 = both.clone();
        drop_target_gipk(&both, &mut b2);
        assert_eq!(b2.len(), 1);
    }
}
