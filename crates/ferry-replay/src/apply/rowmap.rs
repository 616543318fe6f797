//! Replaying through a table's mapping (`Ferry.DbList`: a row filter, a column selection with
//! renames, the replayed change kinds).
//!
//! The binlog carries the source's whole rows; the target holds the mapped table. A mapped
//! table's rows are decoded against its *source* shape as of the event ([`RowMap::build`]: the
//! target's columns, which mirror the kept source columns at the applied position, under their
//! source names, plus the dropped columns from the source's catalog), then [`RowMap::map`]
//! turns each row change into the change of the target:
//!
//! - the filter ([`ferry_core::filter_eval`]) is evaluated on the before and the after image:
//!   an insert or a delete outside it is dropped; an update inside → inside stays an update,
//!   inside → outside becomes the delete of the before image (`(before, None)`), outside →
//!   inside the insert of the whole after image (`(None, after)`), outside → outside is
//!   dropped;
//! - every image keeps the mapped columns only, in the target's order;
//! - a change kind `dml_op` does not list is dropped whole, and counted.
//!
//! Conflict keys and dirty marks are computed afterwards on the mapped images, so a delete or
//! insert that came from an update keeps the keys of the rows it touches on the target.
//! Refused by name: a partial row image (`binlog_row_image=MINIMAL`/`NOBLOB`, partial JSON) of a
//! mapped table (the filter needs whole images, and an update that enters the filter must
//! insert the whole row), and a mapping on a system-versioned table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferry_core::filter_eval::CompiledFilter;
use ferry_core::mapping::{DmlKind, TableMapping};
use ferry_core::TableSchema;
use mysql_async::Value;

use crate::decode::{RowPair, TableDecoder};
use crate::error::ReplayError;
use crate::event::{RowsData, RowsKind};

/// How one mapped table's rows replay.
#[derive(Debug)]
pub struct RowMap {
    /// The source table as of the event (source column names).
    pub source: TableSchema,
    /// Decodes the source's rows.
    pub decoder: TableDecoder,
    /// Target column `i` is source column `project[i]`.
    project: Vec<usize>,
    filter: Option<CompiledFilter>,
    mapping: TableMapping,
    /// Row changes dropped because `dml_op` does not list their kind (shared by the replay).
    excluded: Arc<AtomicU64>,
}

fn dml_kind(k: RowsKind) -> DmlKind {
    match k {
        RowsKind::Insert => DmlKind::Insert,
        RowsKind::Update => DmlKind::Update,
        RowsKind::Delete => DmlKind::Delete,
    }
}

impl RowMap {
    /// Builds the mapping of one table. `target` is the target table's schema (source database
    /// and table names, target column names); `source_now` the source's catalog for the table,
    /// needed only when the mapping drops columns (`None` otherwise: the source shape is the
    /// target's). The error names what does not fit.
    pub fn build(
        target: &TableSchema,
        source_now: Option<&TableSchema>,
        mapping: &TableMapping,
        excluded: Arc<AtomicU64>,
    ) -> Result<RowMap, String> {
        let name = target.display_name();
        if target.system_time.is_some() && (mapping.filter.is_some() || mapping.columns.is_some()) {
            return Err(format!(
                "{name} is system-versioned: Ferry does not replay a row filter or column mapping on it \
                 (its rows are every version): remove filter and column for it"
            ));
        }
        // The target's columns under their source names.
        let mut kept = Vec::with_capacity(target.columns.len());
        for c in &target.columns {
            let src = mapping.source_column(&c.name).ok_or_else(|| {
                format!(
                    "the target table has the column {}, which no column of Ferry.DbList column maps to: \
                     the target's structure no longer matches the mapping",
                    c.name
                )
            })?;
            let mut c = c.clone();
            c.name = src.to_string();
            kept.push(c);
        }
        let source = match source_now {
            None => {
                let mut s = target.clone();
                s.columns = kept;
                s
            }
            Some(now) => {
                // Every source column: its definition at the applied position when kept (the
                // target's), the source catalog's when dropped.
                let mut s = now.clone();
                s.db = target.db.clone();
                s.name = target.name.clone();
                let mut found = 0;
                for c in &mut s.columns {
                    if mapping.target_column(&c.name).is_some() {
                        match kept.iter().find(|k| k.name.eq_ignore_ascii_case(&c.name)) {
                            Some(k) => {
                                *c = k.clone();
                                found += 1;
                            }
                            None => {
                                return Err(format!(
                                    "the source's column {} (kept by the mapping) is not on the target: a \
                                     DDL on the source that the replay has not reached yet adds it, or the \
                                     target was changed by hand",
                                    c.name
                                ))
                            }
                        }
                    }
                }
                if found != kept.len() {
                    return Err(
                        "a column of the target is no longer on the source: a DDL on the source that \
                         the replay has not reached yet drops or renames it"
                            .to_string(),
                    );
                }
                s
            }
        };
        let project = target
            .columns
            .iter()
            .map(|c| {
                let src = mapping.source_column(&c.name).unwrap_or(&c.name);
                source
                    .columns
                    .iter()
                    .position(|s| s.name.eq_ignore_ascii_case(src))
                    .ok_or_else(|| format!("the source has no column {src}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filter = match &mapping.filter {
            None => None,
            Some(f) => Some(
                CompiledFilter::compile(f, &source)
                    .map_err(|e| format!("its filter {:?} cannot be evaluated: {e}", f.text()))?,
            ),
        };
        let decoder = TableDecoder::new(&source).map_err(|e| e.to_string())?;
        Ok(RowMap {
            source,
            decoder,
            project,
            filter,
            mapping: mapping.clone(),
            excluded,
        })
    }

    /// True when the table's images are changed by the mapping (not only its change kinds).
    pub fn reshapes(&self) -> bool {
        self.filter.is_some() || self.mapping.columns.is_some()
    }

    fn inside(&self, row: &[Value]) -> Result<bool, String> {
        match &self.filter {
            None => Ok(true),
            Some(f) => f.matches(row),
        }
    }

    fn project(&self, row: &[Value]) -> Vec<Value> {
        self.project
            .iter()
            .map(|&i| row.get(i).cloned().unwrap_or(Value::NULL))
            .collect()
    }

    /// A target-shaped image as the source row it comes from: the dropped columns NULL.
    pub fn source_image(&self, row: &[Value]) -> Vec<Value> {
        let mut out = vec![Value::NULL; self.source.columns.len()];
        for (v, &i) in row.iter().zip(&self.project) {
            if let Some(slot) = out.get_mut(i) {
                *slot = v.clone();
            }
        }
        out
    }

    /// True when `dml_op` leaves this kind out: the caller drops the event's `rows` row
    /// changes, which are counted.
    pub fn excludes(&self, kind: RowsKind, rows: usize) -> bool {
        if self.mapping.replays_dml(dml_kind(kind)) {
            return false;
        }
        self.excluded.fetch_add(rows as u64, Ordering::Relaxed);
        true
    }

    /// The target's row changes for the source's (see the module documentation). An update
    /// may come back with one-sided pairs: `(before, None)` deletes, `(None, after)` inserts.
    pub fn map(&self, kind: RowsKind, pairs: Vec<RowPair>) -> Result<Vec<RowPair>, String> {
        if self.excludes(kind, pairs.len()) {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(pairs.len());
        for (b, a) in pairs {
            let b = match b {
                Some(r) if self.inside(&r)? => Some(self.project(&r)),
                _ => None,
            };
            let a = match a {
                Some(r) if self.inside(&r)? => Some(self.project(&r)),
                _ => None,
            };
            let keep = match kind {
                RowsKind::Insert => a.is_some(),
                RowsKind::Delete => b.is_some(),
                RowsKind::Update => b.is_some() || a.is_some(),
            };
            if keep {
                out.push((b, a));
            }
        }
        Ok(out)
    }

    /// Decodes a rows event of the table and maps it. Partial images are refused by name.
    pub fn decode(&self, target_name: &str, rows: &RowsData) -> Result<Vec<RowPair>, ReplayError> {
        let partial = |cols: &Option<Vec<bool>>| {
            cols.as_ref()
                .is_some_and(|c| c.len() < self.source.columns.len() || c.iter().any(|x| !x))
        };
        let diffs = rows
            .rows
            .iter()
            .any(|(_, a)| a.as_deref().is_some_and(crate::json_diff::has_diffs));
        if self.reshapes() && (partial(&rows.before_cols) || partial(&rows.after_cols) || diffs) {
            return Err(ReplayError::Unsupported {
                what: format!(
                    "a partial row image of {}.{} (binlog_row_image=MINIMAL or NOBLOB, or \
                     binlog_row_value_options=PARTIAL_JSON on the source), whose Ferry.DbList filter or \
                     column mapping needs whole rows (target {target_name}): set binlog_row_image=FULL and \
                     binlog_row_value_options='' on the source, then run the job again from a new full load",
                    rows.db, rows.table
                ),
                position: rows.position.to_string(),
            });
        }
        let pairs = self.decoder.decode(rows)?;
        self.map(rows.kind, pairs).map_err(|m| ReplayError::Unsupported {
            what: format!(
                "the Ferry.DbList filter of {}.{} on a row of the event: {m}",
                rows.db, rows.table
            ),
            position: rows.position.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::filter::RowFilter;
    use ferry_core::mapping::ColumnMap;
    use proptest::prelude::*;

    fn table(cols: &[&str]) -> TableSchema {
        ferry_testkit::schema::int_table(cols, true)
    }

    /// Source (id, tenant, secret, note); target (id, tenant, remark): secret dropped, note
    /// renamed, tenant = 7.
    fn tenant_map(dml: Option<&[DmlKind]>) -> RowMap {
        let m = TableMapping {
            filter: Some(RowFilter::parse("tenant = 7").unwrap()),
            columns: Some(vec![
                ColumnMap {
                    name: "id".into(),
                    target: "id".into(),
                },
                ColumnMap {
                    name: "note".into(),
                    target: "remark".into(),
                },
                ColumnMap {
                    name: "tenant".into(),
                    target: "tenant".into(),
                },
            ]),
            dml: dml.map(|d| d.iter().copied().collect()),
            ddl: None,
        };
        let target = table(&["id", "tenant", "remark"]);
        let source = table(&["id", "tenant", "secret", "note"]);
        RowMap::build(&target, Some(&source), &m, Arc::new(AtomicU64::new(0))).unwrap()
    }

    fn row(id: i64, tenant: i64) -> Vec<Value> {
        vec![
            Value::Int(id),
            Value::Int(tenant),
            Value::Int(id * 100),
            Value::Int(id + 1),
        ]
    }

    fn mapped(id: i64, tenant: i64) -> Vec<Value> {
        vec![Value::Int(id), Value::Int(tenant), Value::Int(id + 1)]
    }

    #[test]
    fn rows_move_in_and_out_of_the_filter() {
        let m = tenant_map(None);
        let up = |b: Vec<Value>, a: Vec<Value>| m.map(RowsKind::Update, vec![(Some(b), Some(a))]).unwrap();
        assert_eq!(
            up(row(1, 7), row(1, 7)),
            vec![(Some(mapped(1, 7)), Some(mapped(1, 7)))]
        );
        assert_eq!(up(row(1, 7), row(1, 8)), vec![(Some(mapped(1, 7)), None)]);
        assert_eq!(up(row(1, 8), row(1, 7)), vec![(None, Some(mapped(1, 7)))]);
        assert!(up(row(1, 8), row(1, 9)).is_empty());
        assert_eq!(m.source_image(&mapped(1, 7)), {
            let mut r = row(1, 7);
            r[2] = Value::NULL;
            r
        });
        let ins = m
            .map(
                RowsKind::Insert,
                vec![(None, Some(row(1, 7))), (None, Some(row(2, 8)))],
            )
            .unwrap();
        assert_eq!(ins, vec![(None, Some(mapped(1, 7)))]);
        let del = m
            .map(
                RowsKind::Delete,
                vec![(Some(row(2, 8)), None), (Some(row(3, 7)), None)],
            )
            .unwrap();
        assert_eq!(del, vec![(Some(mapped(3, 7)), None)]);
        // NULL is not inside
        let mut n = row(4, 7);
        n[1] = Value::NULL;
        assert!(m.map(RowsKind::Insert, vec![(None, Some(n))]).unwrap().is_empty());
    }

    #[test]
    fn dirty_marks_address_the_source_rows() {
        use ferry_core::chunkmap::{ChunkMap, DirtyTracker, TableChunks};
        use std::collections::BTreeSet;
        // source (secret, id, tenant, note): the key is column 1 there, column 0 on the target
        let m = TableMapping {
            columns: Some(
                [("id", "id"), ("tenant", "tenant"), ("note", "remark")]
                    .map(|(a, b)| ColumnMap {
                        name: a.into(),
                        target: b.into(),
                    })
                    .to_vec(),
            ),
            ..TableMapping::default()
        };
        let mut source = table(&["secret", "id", "tenant", "note"]);
        source.primary_key = Some(vec![1]);
        let target = table(&["id", "tenant", "remark"]);
        let map = RowMap::build(&target, Some(&source), &m, Arc::new(AtomicU64::new(0))).unwrap();
        let tr = DirtyTracker::default();
        let chunks = ChunkMap::new(vec![vec![10]]).unwrap();
        tr.set(
            "d",
            "t",
            TableChunks::Ranges {
                key: vec![1],
                map: chunks,
            },
        );
        let image = map.source_image(&[Value::Int(20), Value::Int(3), Value::Int(1)]);
        let mut out = BTreeSet::new();
        tr.mark("d", "t", std::iter::once((image.as_slice(), None)), &mut out);
        // id 20 is past the first chunk's bound (the target image's column 1, tenant 3, is not)
        // (the last chunk, open above, is not cut into parts: the whole chunk is marked)
        assert_eq!(
            out,
            BTreeSet::from([(
                "d".to_string(),
                "t".to_string(),
                1,
                ferry_core::chunkmap::ALL_PARTS
            )])
        );
    }

    #[test]
    fn excluded_kinds_are_dropped_and_counted() {
        let m = tenant_map(Some(&[DmlKind::Insert, DmlKind::Update]));
        let del = m
            .map(
                RowsKind::Delete,
                vec![(Some(row(1, 7)), None), (Some(row(2, 7)), None)],
            )
            .unwrap();
        assert!(del.is_empty());
        assert_eq!(m.excluded.load(Ordering::Relaxed), 2);
        assert_eq!(
            m.map(RowsKind::Insert, vec![(None, Some(row(1, 7)))])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let m = TableMapping {
            columns: Some(vec![ColumnMap {
                name: "id".into(),
                target: "id".into(),
            }]),
            ..TableMapping::default()
        };
        let ex = || Arc::new(AtomicU64::new(0));
        // a target column the mapping does not produce
        assert!(
            RowMap::build(&table(&["id", "x"]), Some(&table(&["id", "x"])), &m, ex())
                .unwrap_err()
                .contains("x")
        );
        // a kept column missing on the source
        assert!(RowMap::build(&table(&["id"]), Some(&table(&["a"])), &m, ex()).is_err());
        // a filter Ferry cannot evaluate
        let f = TableMapping {
            filter: Some(RowFilter::parse("id + 1 > 2").unwrap()),
            ..TableMapping::default()
        };
        assert!(RowMap::build(&table(&["id"]), None, &f, ex())
            .unwrap_err()
            .contains("filter"));
    }

    #[test]
    fn partial_images_of_a_mapped_table_are_refused() {
        let m = tenant_map(None);
        let event = |before_cols: Option<Vec<bool>>, after_cols: Option<Vec<bool>>| RowsData {
            db: "d".into(),
            table: "t".into(),
            table_id: 1,
            kind: RowsKind::Update,
            columns: Vec::new(),
            rows: Vec::new(),
            stmt_end: true,
            fk_checks: true,
            position: crate::event::BinlogPos::new("b.000001", 400),
            before_cols,
            after_cols,
        };
        // binlog_row_image=MINIMAL: the before image holds the key only.
        let e = m
            .decode("d.t", &event(Some(vec![true, false, false, false]), None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("binlog_row_image=MINIMAL") && e.contains("d.t"), "{e}");
        // NOBLOB-like: an after image without one column.
        let e = m
            .decode("d.t", &event(None, Some(vec![true, true, false, true])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("partial row image"), "{e}");
    }

    proptest! {
        /// Applying the mapped changes to the mapped target state gives the mapped source state:
        /// for any sequence of source changes over a few keys, the target holds exactly the
        /// source's rows inside the filter, projected.
        #[test]
        fn the_target_follows_the_filtered_source(ops in proptest::collection::vec((0i64..4, 0u8..3, 6i64..9), 1..40)) {
            use std::collections::BTreeMap;
            let m = tenant_map(None);
            let mut src: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
            let mut dst: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
            let id_of = |r: &Vec<Value>| match r[0] { Value::Int(i) => i, _ => -1 };
            for (id, op, tenant) in ops {
                let (kind, pair) = match (op, src.get(&id).cloned()) {
                    (_, None) => (RowsKind::Insert, (None, Some(row(id, tenant)))),
                    (0, Some(old)) => (RowsKind::Delete, (Some(old), None)),
                    (_, Some(old)) => (RowsKind::Update, (Some(old), Some(row(id, tenant)))),
                };
                match &pair {
                    (_, Some(a)) => { src.insert(id, a.clone()); }
                    (Some(_), None) => { src.remove(&id); }
                    _ => {}
                }
                for (b, a) in m.map(kind, vec![pair]).unwrap() {
                    if let Some(b) = b {
                        prop_assert!(dst.remove(&id_of(&b)).is_some(), "a delete or update of a row the target lacks");
                    }
                    if let Some(a) = a {
                        prop_assert!(dst.insert(id_of(&a), a).is_none(), "an insert of a row the target holds");
                    }
                }
            }
            let want: BTreeMap<i64, Vec<Value>> = src
                .values()
                .filter(|r| r[1] == Value::Int(7))
                .map(|r| (id_of(r), m.project(r)))
                .collect();
            prop_assert_eq!(dst, want);
        }
    }
}
