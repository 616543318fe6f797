//! What is compared: the selected tables paired with their (possibly renamed) target tables, the
//! columns and key each comparison uses, the chunks of each table (the loader's own planner, so a
//! verification cuts tables exactly as the load did) and the deterministic sample of sample mode.

use ferry_core::catalog::{list_tables, read_tables, resolve_selection};
use ferry_core::{Column, ColumnKind, Selection, TableSchema};
use ferry_load::keyrange::chunk_key;
use mysql_async::Conn;
use xxhash_rust::xxh3::xxh3_64;

use crate::error::VerifyError;

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
            match pair(s, target, tdb, tt) {
                Ok(j) => jobs.push(j),
                Err(u) => bad.push(*u),
            }
        }
    }
    Ok((jobs, bad))
}

fn pair(
    source: TableSchema,
    target: TableSchema,
    target_db: String,
    target_table: String,
) -> Result<TableJob, Box<Uncomparable>> {
    let stored = source.stored_columns();
    let mut columns = Vec::new();
    let mut target_columns = Vec::new();
    let mut missing = Vec::new();
    for &i in &stored {
        let c = &source.columns[i];
        match target.columns.iter().find(|t| t.name == c.name) {
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
    let chunk_key = if key.is_some() {
        chunk_key(&source).map(|k| k.iter().map(|&i| source.columns[i].clone()).collect())
    } else {
        None
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
    })
}

/// True when a table is in the `percent` sample of tables (deterministic: a hash of its name).
pub fn table_sampled(db: &str, table: &str, percent: u8) -> bool {
    percent >= 100 || xxh3_64(format!("{db}.{table}").as_bytes()) % 100 < u64::from(percent)
}

/// True when chunk `chunk_no` of a table is in the `percent` sample of chunks (deterministic: a
/// hash of the table name and chunk number, so a re-run compares the same chunks).
pub fn chunk_sampled(db: &str, table: &str, chunk_no: u32, percent: u8) -> bool {
    percent >= 100 || xxh3_64(format!("{db}.{table}#{chunk_no}").as_bytes()) % 100 < u64::from(percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_proportional() {
        let n = (0..10_000).filter(|&i| chunk_sampled("d", "t", i, 30)).count();
        assert!((2_700..3_300).contains(&n), "{n}");
        assert!(chunk_sampled("d", "t", 7, 100));
        assert!(!chunk_sampled("d", "t", 7, 0));
        assert_eq!(table_sampled("a", "b", 50), table_sampled("a", "b", 50));
    }
}
