//! What is compared: the selected tables paired with their (possibly renamed) target tables, the
//! columns and key each comparison uses, the chunks of each table (the loader's own planner, so a
//! verification cuts tables exactly as the load did), the deterministic samples of sample mode
//! (which tables; which rows of every chunk: [`TableJob::predicate`]), and the scope of a
//! comparison task (columns, row filter: [`TableScope`]).

use ferry_core::catalog::{list_tables, read_tables, resolve_selection};
use ferry_core::{Column, ColumnKind, Selection, TableSchema};
use ferry_load::keyrange::chunk_key;
use mysql_async::Conn;
use xxhash_rust::xxh3::xxh3_64;

use crate::digest::{row_text, TextLayout};
use crate::error::VerifyError;
use crate::filter::RowFilter;

/// Which side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    /// The side named `"source"` or (anything else) `"target"` in messages.
    pub fn of(name: &str) -> Side {
        if name == "source" {
            Side::Source
        } else {
            Side::Target
        }
    }
}

/// What to compare of one source table (comparison tasks: `Tables[].Columns`, `ColumnMode`,
/// `FilterCondition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableScope {
    pub db: String,
    pub table: String,
    /// Only these columns (the row key is always compared too: rows are matched by it); `None`:
    /// every column.
    pub columns: Option<Vec<String>>,
    /// Only the rows this condition selects, on both sides.
    pub filter: Option<RowFilter>,
}

/// Views whose definitions a comparison task compares (`ViewMode`, `Views`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewScope {
    /// The source database.
    pub db: String,
    /// These views; `None`: every view of the database.
    pub views: Option<Vec<String>>,
}

/// One table to compare.
#[derive(Debug, Clone)]
pub struct TableJob {
    pub source: TableSchema,
    /// The target's model of the same table (columns looked up by name).
    pub target: TableSchema,
    pub target_db: String,
    pub target_table: String,
    /// Stored (non-generated) source columns, compared and written by repair SQL.
    pub columns: Vec<Column>,
    /// The same columns as the target defines them.
    pub target_columns: Vec<Column>,
    /// Positions within `columns` of the row key; `None` for keyless tables (multiset comparison).
    pub key: Option<Vec<usize>>,
    /// The chunking key (the loader's `chunk_key`), when the table is cut into ranges.
    pub chunk_key: Option<Vec<Column>>,
    /// Only the rows this condition selects are compared (both sides).
    pub filter: Option<RowFilter>,
    /// The filter as the target side reads it, when its columns have other names there (a
    /// `Ferry.DbList` column mapping renames them); `None`: the filter's own text.
    pub target_filter: Option<String>,
    /// Percent of the rows of every chunk compared (100: all): the rows whose key (keyless
    /// tables: whole row) hashes under it, the same rows on both sides.
    pub sample_percent: u8,
    /// Some columns are left out (`ColumnMode` partial): repair SQL would be partial rows.
    pub partial_columns: bool,
}

impl TableJob {
    /// `db.table` on the source.
    pub fn source_name(&self) -> String {
        self.source.display_name()
    }

    /// `db.table` on the target.
    pub fn target_name(&self) -> String {
        format!("{}.{}", self.target_db, self.target_table)
    }

    /// The comparison method, as reported.
    pub fn method(&self) -> &'static str {
        if self.key.is_some() {
            "chunked-checksum"
        } else {
            "keyless-multiset"
        }
    }

    /// Kinds of the compared columns (source side).
    pub fn kinds(&self) -> Vec<ColumnKind> {
        self.columns.iter().map(|c| c.kind).collect()
    }

    /// Names of the compared columns.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Names of the compared columns on the target (renamed by a `Ferry.DbList` column mapping).
    pub fn target_names(&self) -> Vec<String> {
        self.target_columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The compared columns as one side names them.
    pub fn side_columns(&self, side: Side) -> &[Column] {
        match side {
            Side::Source => &self.columns,
            Side::Target => &self.target_columns,
        }
    }

    /// The row sample condition for one side (`None` at 100 %): `CRC32` of the canonical text of
    /// the row key (keyless tables: of the whole row) modulo 100 under the percentage. Equal keys
    /// give equal texts on both sides ([`TextLayout`] of both sides' columns), so both sides keep
    /// the same rows; a row present on one side only is kept or not by its own key, and then
    /// compared as missing.
    pub fn sample_predicate(&self, side: Side) -> Option<String> {
        if self.sample_percent >= 100 {
            return None;
        }
        let idx: Vec<usize> = match &self.key {
            Some(k) => k.clone(),
            None => (0..self.columns.len()).collect(),
        };
        let src: Vec<Column> = idx.iter().map(|&i| self.columns[i].clone()).collect();
        let dst: Vec<Column> = idx.iter().map(|&i| self.target_columns[i].clone()).collect();
        let layout = TextLayout::new(&src, &dst);
        let text = match side {
            Side::Source => row_text(&src, &layout),
            Side::Target => row_text(&dst, &layout),
        };
        Some(format!("CRC32({text}) % 100 < {}", self.sample_percent))
    }

    /// Everything that restricts the rows read on one side: the filter and the row sample.
    pub fn predicate(&self, side: Side) -> Option<String> {
        let filter = match (side, &self.target_filter) {
            (Side::Target, Some(t)) => Some(t.clone()),
            _ => self.filter.as_ref().map(RowFilter::sql),
        };
        let parts: Vec<String> = filter.into_iter().chain(self.sample_predicate(side)).collect();
        if parts.is_empty() {
            None
        } else {
            Some(parts.join(" AND "))
        }
    }

    /// The `FROM` clause of one side: every version of a system-versioned table
    /// (`FOR SYSTEM_TIME ALL`, [`ferry_core::versioning`]), current and history rows alike.
    pub fn from(&self, side: Side) -> String {
        let (db, table) = match side {
            Side::Source => (self.source.db.as_str(), self.source.name.as_str()),
            Side::Target => (self.target_db.as_str(), self.target_table.as_str()),
        };
        ferry_core::versioning::from_all(db, table, self.source.system_time.is_some())
    }

    /// The table's name and predicate on one side.
    pub fn side(&self, side: Side) -> (&str, &str, Option<String>) {
        match side {
            Side::Source => (&self.source.db, &self.source.name, self.predicate(side)),
            Side::Target => (&self.target_db, &self.target_table, self.predicate(side)),
        }
    }
}

/// Applies a comparison task's scope to a paired table: only the chosen columns (and the row
/// key), the row filter (whose columns must exist on both sides).
pub fn apply_scope(mut job: TableJob, scope: &TableScope) -> Result<TableJob, Box<Uncomparable>> {
    let fail = |job: TableJob, reason: String| {
        Err(Box::new(Uncomparable {
            reason,
            source: job.source,
            target_db: job.target_db,
            target_table: job.target_table,
        }))
    };
    if let Some(f) = &scope.filter {
        for c in f.columns() {
            let on_source = job.source.columns.iter().any(|x| x.name.eq_ignore_ascii_case(c));
            let on_target = job.target.columns.iter().any(|x| x.name.eq_ignore_ascii_case(c));
            if !on_source || !on_target {
                let side = if on_source { "target" } else { "source" };
                let name = job.source_name();
                return fail(
                    job,
                    format!(
                        "the filter condition reads column {c}, which {name} does not have on the {side}"
                    ),
                );
            }
        }
        job.filter = Some(f.clone());
        job.target_filter = None;
    }
    if let Some(wanted) = &scope.columns {
        for w in wanted {
            if !job.columns.iter().any(|c| c.name.eq_ignore_ascii_case(w)) {
                let name = job.source_name();
                return fail(
                    job,
                    format!("Columns names {w}, which is not a stored column of {name} on both sides"),
                );
            }
        }
        let key: Vec<usize> = job.key.clone().unwrap_or_default();
        let keep: Vec<usize> = (0..job.columns.len())
            .filter(|&i| {
                key.contains(&i)
                    || wanted
                        .iter()
                        .any(|w| w.eq_ignore_ascii_case(&job.columns[i].name))
            })
            .collect();
        job.partial_columns = keep.len() < job.columns.len();
        job.key = job.key.as_ref().map(|k| {
            k.iter()
                .filter_map(|i| keep.iter().position(|x| x == i))
                .collect()
        });
        job.columns = keep.iter().map(|&i| job.columns[i].clone()).collect();
        job.target_columns = keep.iter().map(|&i| job.target_columns[i].clone()).collect();
    }
    Ok(job)
}

/// A selected table that cannot be compared (target table missing, a column missing).
#[derive(Debug, Clone)]
pub struct Uncomparable {
    pub source: TableSchema,
    pub target_db: String,
    pub target_table: String,
    pub reason: String,
}

/// The selected tables, paired with the target's; `only` restricts to these source tables.
pub async fn resolve(
    src: &mut Conn,
    dst: &mut Conn,
    sel: &Selection,
    only: Option<&[(String, String)]>,
) -> Result<(Vec<TableJob>, Vec<Uncomparable>), VerifyError> {
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    for (db, tables) in resolve_selection(src, sel).await? {
        let tables: Vec<String> = tables
            .into_iter()
            .filter(|t| only.is_none_or(|o| o.iter().any(|(d, n)| d == &db && n == t)))
            .collect();
        if tables.is_empty() {
            continue;
        }
        let schemas = read_tables(src, &db, &tables).await?;
        for s in schemas {
            let Some((tdb, tt)) = sel.target_table(&db, &s.name) else {
                continue;
            };
            let exists = list_tables(dst, &tdb).await?.contains(&tt);
            if !exists {
                bad.push(Uncomparable {
                    reason: format!("target table {tdb}.{tt} does not exist"),
                    source: s,
                    target_db: tdb,
                    target_table: tt,
                });
                continue;
            }
            let target = read_tables(dst, &tdb, std::slice::from_ref(&tt))
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| VerifyError::Unexpected {
                    side: "target",
                    message: format!("no columns read for {tdb}.{tt}"),
                })?;
            let mapping = sel.mapping(&db, &s.name).cloned();
            match pair(s, target, tdb, tt, mapping.as_ref()) {
                Ok(j) => jobs.push(j),
                Err(u) => bad.push(*u),
            }
        }
    }
    Ok((jobs, bad))
}

/// Pairs a source table with its target table. With a `Ferry.DbList` mapping, the columns it
/// drops are not compared, the renamed ones are compared with their target columns, and its
/// filter restricts both sides (under the target's column names on the target side).
fn pair(
    source: TableSchema,
    target: TableSchema,
    target_db: String,
    target_table: String,
    mapping: Option<&ferry_core::mapping::TableMapping>,
) -> Result<TableJob, Box<Uncomparable>> {
    let all = source.stored_columns();
    let target_name = |n: &str| -> Option<String> {
        match mapping {
            None => Some(n.to_string()),
            Some(m) => m.target_column(n).map(str::to_string),
        }
    };
    let stored: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| target_name(&source.columns[i].name).is_some())
        .collect();
    let mut columns = Vec::new();
    let mut target_columns = Vec::new();
    let mut missing = Vec::new();
    for &i in &stored {
        let c = &source.columns[i];
        let tn = target_name(&c.name).unwrap_or_default();
        match target.columns.iter().find(|t| t.name.eq_ignore_ascii_case(&tn)) {
            Some(tc) => {
                columns.push(c.clone());
                target_columns.push(tc.clone());
            }
            None => missing.push(c.name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(Box::new(Uncomparable {
            reason: format!(
                "target table {target_db}.{target_table} lacks column(s) {}",
                missing.join(", ")
            ),
            source,
            target_db,
            target_table,
        }));
    }
    // The row key, as positions among the compared columns (a key over a generated column is
    // not usable: generated columns are not compared).
    let key = source.row_key().and_then(|k| {
        k.iter()
            .map(|&i| stored.iter().position(|&s| s == i))
            .collect::<Option<Vec<usize>>>()
    });
    let chunk_key: Option<Vec<Column>> = if key.is_some() {
        chunk_key(&source).map(|k| k.iter().map(|&i| source.columns[i].clone()).collect())
    } else {
        None
    };
    // Chunk ranges name the key's columns on both sides.
    if let Some(c) = chunk_key
        .iter()
        .flatten()
        .find(|c| target_name(&c.name).as_deref() != Some(&c.name))
    {
        let reason = format!(
            "its Ferry.DbList column mapping renames the key column {}, which the verification reads \
             under one name on both sides: keep the key columns' names",
            c.name
        );
        return Err(Box::new(Uncomparable {
            reason,
            source,
            target_db,
            target_table,
        }));
    }
    let (filter, target_filter) = match mapping.and_then(|m| m.filter.as_ref()) {
        None => (None, None),
        Some(f) => match mapped_filter(f, &target_name) {
            Ok(t) => (Some(f.clone()), t),
            Err(reason) => {
                return Err(Box::new(Uncomparable {
                    reason,
                    source,
                    target_db,
                    target_table,
                }))
            }
        },
    };
    Ok(TableJob {
        source,
        target,
        target_db,
        target_table,
        columns,
        target_columns,
        key,
        chunk_key,
        filter,
        target_filter,
        sample_percent: 100,
        partial_columns: false,
    })
}

/// The filter's SQL for the target side under the mapped column names (`None`: the same text),
/// or why the target cannot evaluate it (it reads a column the mapping drops).
fn mapped_filter(
    f: &RowFilter,
    target_name: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let sql = f.sql();
    let mut edits = Vec::new();
    for c in f.columns() {
        match target_name(c) {
            None => {
                return Err(format!(
                    "its Ferry.DbList filter reads {c}, a column the mapping drops, so the target's rows \
                     cannot be selected by it"
                ))
            }
            Some(t) if !t.eq_ignore_ascii_case(c) => edits.push((c.clone(), t)),
            Some(_) => {}
        }
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let toks = ferry_core::lexer::tokenize(&sql);
    let splices: Vec<(std::ops::Range<usize>, String)> = toks
        .iter()
        .filter_map(|t| {
            let id = t.ident()?;
            let (_, to) = edits.iter().find(|(from, _)| from.eq_ignore_ascii_case(id))?;
            Some((t.range(), ferry_core::sql::quote_ident(to)))
        })
        .collect();
    Ok(Some(ferry_core::lexer::splice(&sql, &splices)))
}

/// True when a table is in the `percent` sample of tables (deterministic: a hash of its name).
pub fn table_sampled(db: &str, table: &str, percent: u8) -> bool {
    percent >= 100 || xxh3_64(format!("{db}.{table}").as_bytes()) % 100 < u64::from(percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_table_is_compared_through_its_mapping() {
        use ferry_core::mapping::{ColumnMap, TableMapping};
        let table = |cols: &[&str]| ferry_testkit::schema::int_table(cols, false);
        let map = |cols: &[(&str, &str)], filter: &str| TableMapping {
            filter: Some(RowFilter::parse(filter).unwrap()),
            columns: Some(
                cols.iter()
                    .map(|(a, b)| ColumnMap {
                        name: a.to_string(),
                        target: b.to_string(),
                    })
                    .collect(),
            ),
            ..TableMapping::default()
        };
        let m = map(
            &[("id", "id"), ("tenant", "tenant"), ("note", "remark")],
            "tenant = 7 AND note > 0",
        );
        let src = table(&["id", "tenant", "secret", "note"]);
        let dst = table(&["id", "tenant", "remark"]);
        let j = pair(src.clone(), dst.clone(), "d".into(), "t".into(), Some(&m)).unwrap();
        assert_eq!(j.names(), ["id", "tenant", "note"]);
        let tnames: Vec<&str> = j.target_columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(tnames, ["id", "tenant", "remark"]);
        assert_eq!(
            j.predicate(Side::Source).as_deref(),
            Some("(tenant = 7 AND note > 0)")
        );
        assert_eq!(
            j.predicate(Side::Target).as_deref(),
            Some("(tenant = 7 AND `remark` > 0)")
        );
        // a filter over a dropped column, a renamed key: not comparable, with the reason
        let dropped = map(&[("id", "id"), ("tenant", "tenant")], "secret = 1");
        let e = pair(
            src.clone(),
            table(&["id", "tenant"]),
            "d".into(),
            "t".into(),
            Some(&dropped),
        )
        .unwrap_err();
        assert!(e.reason.contains("secret"), "{}", e.reason);
        let key = map(&[("id", "ident"), ("tenant", "tenant")], "tenant = 7");
        let e = pair(
            src,
            table(&["ident", "tenant"]),
            "d".into(),
            "t".into(),
            Some(&key),
        )
        .unwrap_err();
        assert!(e.reason.contains("key column id"), "{}", e.reason);
    }

    #[test]
    fn sampling_is_deterministic_and_proportional() {
        let n = (0..10_000)
            .filter(|&i| table_sampled("d", &format!("t{i}"), 30))
            .count();
        assert!((2_700..3_300).contains(&n), "{n}");
        assert!(table_sampled("d", "t", 100));
        assert!(!table_sampled("d", "t", 0));
        assert_eq!(table_sampled("a", "b", 50), table_sampled("a", "b", 50));
    }
}
