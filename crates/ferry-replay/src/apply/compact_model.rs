//! Net-effect compaction ([`super::compact`]) checked against an in-memory model of the target's
//! tables: for random insert/update/delete sequences (primary-key changes, unique-key changes,
//! duplicate rows in a keyless table) the fast path's steps, applied with the affected-row
//! counts they must report, either are refused (a count differs: the worker redoes the batch
//! statement by statement) or leave exactly the rows the original statements leave, and then
//! the original statements all succeed too. A split batch's steps ([`super::compact::split`]:
//! the rows on free keys, then those on deferred keys) leave the same rows as the whole plan,
//! and no step of the free part touches a deferred key. Test-only.

use std::sync::Arc;

use ferry_core::{Column, ColumnKind, TableSchema};
use mysql_async::Value;
use proptest::prelude::*;

use super::compact::{plan, split, step_rows, Step};
use super::keys::{change_keys, single_key};
use super::rowapply::Change;
use super::schema_cache::TableInfo;
use super::workers::{Batch, Txn};
use crate::decode::TableDecoder;
use crate::event::{BinlogPos, RowsKind};

type Row = Vec<i64>;

/// A model table: its rows (a multiset), with the table's unique constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    rows: Vec<Row>,
}

/// The tables of the model: their descriptions and what makes rows unique.
struct Shape {
    info: Arc<TableInfo>,
    /// Column lists of the unique constraints (the primary key first).
    uniques: Vec<Vec<usize>>,
}

fn int_col(name: &str, nullable: bool) -> Column {
    Column {
        name: name.into(),
        data_type: "int".into(),
        column_type: "int(11)".into(),
        kind: ColumnKind::Int { unsigned: false },
        nullable,
        generated: false,
        charset: None,
        collation: None,
    }
}

fn shape(name: &str, cols: &[&str], pk: Option<Vec<usize>>, uk: Option<Vec<usize>>) -> Shape {
    let schema = TableSchema {
        db: "m".into(),
        name: name.into(),
        columns: cols.iter().map(|c| int_col(c, pk.is_none())).collect(),
        primary_key: pk.clone(),
        unique_keys: uk.iter().map(|k| ("u".to_string(), k.clone())).collect(),
        engine: None,
        estimated_rows: 0,
        data_length: 0,
        system_time: None,
    };
    let info = TableInfo {
        decoder: TableDecoder::new(&schema).expect("an INT table decodes"),
        target: format!("`m`.`{name}`"),
        target_name: format!("m.{name}"),
        stored: (0..cols.len()).collect(),
        column_list: cols
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(","),
        key: schema.row_key().map(|k| k.to_vec()),
        referenced_by: Vec::new(),
        map: None,
        schema,
    };
    Shape {
        info: Arc::new(info),
        uniques: pk.into_iter().chain(uk).collect(),
    }
}

/// `pk (id PK, v)`: folded; `pk2 (a, b, v, PK(a, b))`: folded, composite key;
/// `uk (id PK, u UNIQUE, v)`: one statement per change; `nokey (a, b)`: keyless, duplicates.
fn shapes() -> Vec<Shape> {
    vec![
        shape("pk", &["id", "v"], Some(vec![0]), None),
        shape("pk2", &["a", "b", "v"], Some(vec![0, 1]), None),
        shape("uk", &["id", "u", "v"], Some(vec![0]), Some(vec![1])),
        shape("nokey", &["a", "b"], None, None),
    ]
}

fn ints(row: &[Value]) -> Row {
    row.iter()
        .map(|v| match v {
            Value::Int(i) => *i,
            other => panic!("model rows are INT: {other:?}"),
        })
        .collect()
}

fn values(row: &Row) -> Vec<Value> {
    row.iter().map(|&i| Value::Int(i)).collect()
}

/// A statement's outcome in the model: the count differed or it failed (duplicate key).
#[derive(Debug, PartialEq, Eq)]
struct Refused;

impl Table {
    fn project(row: &Row, cols: &[usize]) -> Row {
        cols.iter().map(|&i| row[i]).collect()
    }

    /// The index of the row a statement addressing `image` finds: by the row key, or (keyless)
    /// a row equal in every column.
    fn find(&self, s: &Shape, image: &Row) -> Option<usize> {
        match &s.info.key {
            Some(k) => self
                .rows
                .iter()
                .position(|r| Self::project(r, k) == Self::project(image, k)),
            None => self.rows.iter().position(|r| r == image),
        }
    }

    /// True when `row` would duplicate a unique value of another row than `except`.
    fn duplicates(&self, s: &Shape, row: &Row, except: Option<usize>) -> bool {
        s.uniques.iter().any(|u| {
            self.rows
                .iter()
                .enumerate()
                .any(|(i, r)| Some(i) != except && Self::project(r, u) == Self::project(row, u))
        })
    }

    fn insert(&mut self, s: &Shape, row: Row) -> Result<(), Refused> {
        if self.duplicates(s, &row, None) {
            return Err(Refused);
        }
        self.rows.push(row);
        Ok(())
    }

    /// `UPDATE … WHERE <address> LIMIT 1` (CLIENT_FOUND_ROWS: counts the row matched).
    fn update(&mut self, s: &Shape, before: &Row, after: Row) -> Result<(), Refused> {
        let i = self.find(s, before).ok_or(Refused)?;
        if self.duplicates(s, &after, Some(i)) {
            return Err(Refused);
        }
        self.rows[i] = after;
        Ok(())
    }

    /// `DELETE … WHERE <address> LIMIT 1`.
    fn delete(&mut self, s: &Shape, before: &Row) -> Result<(), Refused> {
        let i = self.find(s, before).ok_or(Refused)?;
        self.rows.remove(i);
        Ok(())
    }

    /// One change's statements, row by row (the original statements, and a plain step).
    fn apply_change(&mut self, s: &Shape, c: &Change) -> Result<(), Refused> {
        for (b, a) in &c.pairs {
            match (c.kind, b, a) {
                (RowsKind::Insert, _, Some(a)) => self.insert(s, ints(a))?,
                (RowsKind::Update, Some(b), Some(a)) => self.update(s, &ints(b), ints(a))?,
                (RowsKind::Delete, Some(b), _) => self.delete(s, &ints(b))?,
                _ => {}
            }
        }
        Ok(())
    }

    /// `DELETE … WHERE key IN (…)`: the rows deleted.
    fn delete_keys(&mut self, s: &Shape, rows: &[&Vec<Value>]) -> usize {
        let Some(k) = &s.info.key else { return 0 };
        let keys: Vec<Row> = rows.iter().map(|r| Self::project(&ints(r), k)).collect();
        let before = self.rows.len();
        self.rows.retain(|r| !keys.contains(&Self::project(r, k)));
        before - self.rows.len()
    }

    /// A folded or plain step with the affected rows [`super::compact::render`] expects.
    fn apply_step(&mut self, s: &Shape, step: &Step<'_>) -> Result<(), Refused> {
        let count = |n: usize, want: usize| if n == want { Ok(()) } else { Err(Refused) };
        match step {
            Step::Plain(c) => self.apply_change(s, c),
            Step::Gone(_, rows) => count(self.delete_keys(s, rows), rows.len()),
            Step::Never(_, rows) => count(self.delete_keys(s, rows), 0),
            Step::New(_, rows) => {
                // One multi-row INSERT: a duplicate fails the statement.
                for r in rows {
                    self.insert(s, ints(r))?;
                }
                Ok(())
            }
            Step::Kept(_, rows) => {
                // INSERT … ON DUPLICATE KEY UPDATE: 1 inserted, 2 updated, 1 unchanged.
                let mut n = 0;
                for r in rows {
                    let row = ints(r);
                    match self.find(s, &row) {
                        Some(i) if self.rows[i] == row => n += 1,
                        Some(i) => {
                            self.rows[i] = row;
                            n += 2;
                        }
                        None => {
                            self.insert(s, row)?;
                            n += 1;
                        }
                    }
                }
                count(n, 2 * rows.len())
            }
        }
    }
}

/// One generated row change: table, kind, which existing row, new key, new value, and whether
/// it starts a new transaction or joins the previous change (same table and kind).
type Op = (u8, u8, u8, u8, u8, bool, bool);

const KEYS: i64 = 5;

fn key_of(row_key: u8) -> i64 {
    i64::from(row_key) % KEYS
}

/// A row image for table `t` with key `k`, second key/column `k2` and value `v`.
fn image(t: usize, k: i64, k2: i64, v: i64) -> Row {
    match t {
        0 => vec![k, v],
        1 => vec![k, k2 % 2, v],
        2 => vec![k, k2 % 3, v],
        _ => vec![k % 3, v % 2],
    }
}

/// Builds the changes of `ops` against a shadow of the tables (so most updates and deletes
/// address rows that exist), grouped into transactions.
fn changes(shapes: &[Shape], start: &[Table], ops: &[Op]) -> Vec<Txn> {
    let mut shadow = start.to_vec();
    let mut txns: Vec<Txn> = Vec::new();
    for &(t, kind, pick, newkey, val, new_txn, join) in ops {
        let t = usize::from(t) % shapes.len();
        let s = &shapes[t];
        let (k, v) = (key_of(newkey), i64::from(val % 3));
        let existing = (!shadow[t].rows.is_empty())
            .then(|| shadow[t].rows[usize::from(pick) % shadow[t].rows.len()].clone());
        let pair: (RowsKind, Option<Row>, Option<Row>) = match (kind % 3, existing) {
            (0, _) | (_, None) => (RowsKind::Insert, None, Some(image(t, k, i64::from(pick), v))),
            (1, Some(b)) => {
                let mut a = b.clone();
                // Sometimes a new primary key (or unique value), sometimes only the value.
                match newkey % 3 {
                    0 => a[0] = k,
                    1 if a.len() == 3 => a[1] = i64::from(pick) % 2,
                    _ => {}
                }
                let last = a.len() - 1;
                a[last] = v;
                (RowsKind::Update, Some(b), Some(a))
            }
            (_, Some(b)) => (RowsKind::Delete, Some(b), None),
        };
        let (kind, b, a) = pair;
        // Keep the shadow close to what the statements do (ignoring refusals).
        let mut next = shadow[t].clone();
        let ok = match (kind, &b, &a) {
            (RowsKind::Insert, _, Some(a)) => next.insert(s, a.clone()),
            (RowsKind::Update, Some(b), Some(a)) => next.update(s, b, a.clone()),
            (_, Some(b), _) => next.delete(s, b),
            _ => Ok(()),
        };
        if ok.is_ok() {
            shadow[t] = next;
        }
        let pair = (b.as_ref().map(values), a.as_ref().map(values));
        if new_txn || txns.is_empty() {
            txns.push(Txn {
                changes: Vec::new(),
                rows: 0,
                bytes: 0,
                idem: false,
                end: BinlogPos::new("f", 4 + txns.len() as u64),
                gtid: None,
                ts: 0,
            });
        }
        let Some(txn) = txns.last_mut() else { continue };
        txn.rows += 1;
        match txn.changes.last_mut() {
            Some(c) if join && c.kind == kind && Arc::ptr_eq(&c.info, &s.info) => c.pairs.push(pair),
            _ => txn.changes.push(Change {
                info: s.info.clone(),
                kind,
                pos: BinlogPos::new("f", 4),
                pairs: vec![pair],
                cascade: None,
                before_cols: None,
                after_cols: None,
                json_diffs: None,
            }),
        }
    }
    txns
}

/// The index of the model table a step writes.
fn table_of(shapes: &[Shape], step: &Step<'_>) -> usize {
    let info = match step {
        Step::Plain(c) => &c.info,
        Step::Gone(i, _) | Step::Never(i, _) | Step::New(i, _) | Step::Kept(i, _) => i,
    };
    shapes
        .iter()
        .position(|s| Arc::ptr_eq(&s.info, info))
        .expect("a step of a model table")
}

/// The start state: rows from valid inserts of generated images.
fn start_state(shapes: &[Shape], seed: &[(u8, u8, u8, u8)]) -> Vec<Table> {
    let mut tables = vec![Table { rows: Vec::new() }; shapes.len()];
    for &(t, k, k2, v) in seed {
        let t = usize::from(t) % shapes.len();
        let row = image(t, key_of(k), i64::from(k2), i64::from(v % 3));
        let _ = tables[t].insert(&shapes[t], row);
    }
    tables
}

fn sorted(tables: &[Table]) -> Vec<Vec<Row>> {
    tables
        .iter()
        .map(|t| {
            let mut r = t.rows.clone();
            r.sort();
            r
        })
        .collect()
}

/// The originals in order; `None` when one of them is refused.
fn run_originals(shapes: &[Shape], start: &[Table], txns: &[Txn]) -> Option<Vec<Table>> {
    let mut tables = start.to_vec();
    for c in txns.iter().flat_map(|t| &t.changes) {
        let i = shapes.iter().position(|s| Arc::ptr_eq(&s.info, &c.info))?;
        tables[i].apply_change(&shapes[i], c).ok()?;
    }
    Some(tables)
}

/// The compacted steps; `None` when a count differs (the slow path takes over).
fn run_compacted(shapes: &[Shape], start: &[Table], b: &Batch) -> Option<Vec<Table>> {
    run_steps(shapes, start, &plan(b))
}

fn run_steps(shapes: &[Shape], start: &[Table], steps: &[Step<'_>]) -> Option<Vec<Table>> {
    let mut tables = start.to_vec();
    for step in steps {
        let i = table_of(shapes, step);
        tables[i].apply_step(&shapes[i], step).ok()?;
    }
    Some(tables)
}

/// Every conflict key of the batch, sorted.
fn batch_keys(b: &Batch) -> Vec<u64> {
    let mut keys = Vec::new();
    for c in b.txns.iter().flat_map(|t| &t.changes) {
        change_keys(c, &mut keys);
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The conflict keys a step touches: a folded row's one key (which must be among the batch's
/// keys), a plain change's keys.
fn step_keys(step: &Step<'_>, all: &[u64]) -> Result<Vec<u64>, TestCaseError> {
    let mut out = Vec::new();
    match step {
        Step::Plain(c) => change_keys(c, &mut out),
        Step::Gone(i, rows) | Step::Never(i, rows) | Step::New(i, rows) | Step::Kept(i, rows) => {
            for r in rows {
                let k = single_key(i, r);
                prop_assert!(
                    k.is_some_and(|k| all.binary_search(&k).is_ok()),
                    "a folded row's key is not one of the batch's conflict keys"
                );
                out.extend(k);
            }
        }
    }
    Ok(out)
}

/// Splits the plan on the keys `mask` picks, checks the parts and runs them in turn (the free
/// rows, then the deferred ones).
fn run_split(
    shapes: &[Shape],
    start: &[Table],
    b: &Batch,
    mask: u64,
) -> Result<Option<Vec<Table>>, TestCaseError> {
    let all = batch_keys(b);
    let deferred: Vec<u64> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << (i % 64)) != 0)
        .map(|(_, k)| *k)
        .collect();
    let whole: usize = plan(b).iter().map(step_rows).sum();
    let (now, later) = split(plan(b), &deferred);
    let parted: usize = now.iter().chain(&later).map(step_rows).sum();
    prop_assert_eq!(parted, whole, "every row in one part");
    for step in &now {
        let touched = step_keys(step, &all)?;
        prop_assert!(
            touched.iter().all(|k| deferred.binary_search(k).is_err()),
            "a step run at once touches a deferred key"
        );
    }
    for step in &later {
        step_keys(step, &all)?;
    }
    let mut steps = now;
    steps.extend(later);
    Ok(run_steps(shapes, start, &steps))
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..4,
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the fast path accepts equals the originals; what it refuses goes statement by
    /// statement. Also: the start state the changes were written for is perturbed sometimes
    /// (a row missing, an extra row), where the originals fail.
    #[test]
    fn compaction_equals_the_original_statements(
        seed in prop::collection::vec((0u8..4, any::<u8>(), any::<u8>(), any::<u8>()), 0..16),
        ops in prop::collection::vec(op(), 1..24),
        perturb in prop::option::weighted(0.25, (0u8..4, any::<u8>(), any::<bool>())),
        mask in any::<u64>(),
    ) {
        let shapes = shapes();
        let written_for = start_state(&shapes, &seed);
        let txns = changes(&shapes, &written_for, &ops);
        let mut start = written_for.clone();
        if let Some((t, k, drop)) = perturb {
            let t = usize::from(t) % shapes.len();
            if drop && !start[t].rows.is_empty() {
                let n = start[t].rows.len();
                start[t].rows.remove(usize::from(k) % n);
            } else {
                let _ = start[t].insert(&shapes[t], image(t, key_of(k), i64::from(k), 2));
            }
        }
        let originals = run_originals(&shapes, &start, &txns);
        let batch = Batch {
        no: 1,
        txns,
        deferred: None,
    };
        let compacted = run_compacted(&shapes, &start, &batch);
        // A split batch: the rows on free keys first, the deferred ones after; the same rows
        // accepted or refused as the whole plan.
        let parted = run_split(&shapes, &start, &batch, mask)?;
        prop_assert_eq!(parted.as_deref().map(sorted), compacted.as_deref().map(sorted));
        if let Some(c) = &compacted {
            let o = originals.as_ref();
            prop_assert!(o.is_some(), "the fast path accepted changes the original statements refuse");
            prop_assert_eq!(sorted(c), sorted(o.expect("checked")));
        }
        // Accepted whenever the originals succeed, unless a folded row ends as it was (its
        // upsert then counts 1, not 2: the slow path, equally exact).
        if let (Some(o), None) = (&originals, &compacted) {
            let unchanged_kept = plan(&batch).iter().any(|step| match step {
                Step::Kept(_, rows) => {
                    let i = table_of(&shapes, step);
                    rows.iter().any(|r| start[i].rows.contains(&ints(r)))
                }
                _ => false,
            });
            prop_assert!(unchanged_kept, "the fast path refused a batch the originals apply: {:?}", sorted(o));
        }
    }
}

#[test]
fn a_primary_key_move_chain_folds_and_applies() {
    let shapes = shapes();
    let start = vec![
        Table {
            rows: vec![vec![1, 0], vec![2, 0]],
        },
        Table { rows: Vec::new() },
        Table { rows: Vec::new() },
        Table {
            rows: vec![vec![1, 1], vec![1, 1]],
        },
    ];
    // pk: 1 → 3, insert 1, 3 → 4, delete 2; nokey: delete one of two equal rows.
    let ops: Vec<Op> = vec![
        (0, 1, 0, 3, 1, true, false),
        (0, 0, 0, 1, 2, true, false),
        (0, 1, 0, 9, 1, true, false),
        (0, 2, 1, 0, 0, false, false),
        (3, 2, 0, 0, 0, true, false),
    ];
    let txns = changes(&shapes, &start, &ops);
    let originals = run_originals(&shapes, &start, &txns).expect("the originals apply");
    let batch = Batch {
        no: 1,
        txns,
        deferred: None,
    };
    let compacted = run_compacted(&shapes, &start, &batch).expect("the fast path applies");
    assert_eq!(sorted(&compacted), sorted(&originals));
    assert_eq!(sorted(&compacted)[0], vec![vec![1, 2], vec![4, 1]]);
    assert_eq!(
        sorted(&compacted)[3],
        vec![vec![1, 1]],
        "one copy of the duplicate is left"
    );
    let steps = plan(&batch);
    let folded: Vec<(&str, usize)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Gone(_, r) => Some(("gone", r.len())),
            Step::Never(_, r) => Some(("never", r.len())),
            Step::New(_, r) => Some(("new", r.len())),
            Step::Kept(_, r) => Some(("kept", r.len())),
            Step::Plain(_) => None,
        })
        .collect();
    assert_eq!(folded, [("gone", 1), ("never", 1), ("new", 1), ("kept", 1)]);
}

#[test]
fn folded_steps_render_as_multi_row_statements() {
    let shapes = shapes();
    let start = vec![
        Table {
            rows: vec![vec![1, 0], vec![2, 0]],
        },
        Table { rows: Vec::new() },
        Table { rows: Vec::new() },
        Table { rows: Vec::new() },
    ];
    // insert 4; update 1 (value); delete 2; insert 3 then delete it.
    let ops: Vec<Op> = vec![
        (0, 0, 0, 4, 1, true, false),
        (0, 1, 0, 2, 2, true, false),
        (0, 2, 1, 0, 0, true, false),
        (0, 0, 0, 3, 1, true, false),
        (0, 2, 2, 0, 0, false, false),
    ];
    let batch = Batch {
        no: 1,
        txns: changes(&shapes, &start, &ops),
        deferred: None,
    };
    let sql: Vec<(String, u64)> = super::compact::batch_statements(&batch)
        .into_iter()
        .map(|(s, n)| (String::from_utf8_lossy(&s).into_owned(), n))
        .collect();
    let want = [
        ("DELETE FROM `m`.`pk` WHERE `id` IN (2)", 1),
        ("DELETE FROM `m`.`pk` WHERE `id` IN (3)", 0),
        ("INSERT INTO `m`.`pk` (`id`,`v`) VALUES (4,1)", 1),
        (
            "INSERT INTO `m`.`pk` (`id`,`v`) VALUES (1,2) ON DUPLICATE KEY UPDATE `v`=VALUES(`v`)",
            2,
        ),
    ];
    let want: Vec<(String, u64)> = want.iter().map(|(s, n)| (s.to_string(), *n)).collect();
    assert_eq!(sql, want);
}
