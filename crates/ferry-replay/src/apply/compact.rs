//! The statements of a batch on the workers' fast path, with the rows each must change.
//!
//! A batch is one target transaction, so only its net effect is observable. For a table whose
//! only unique constraint is its row key, and whose key values compare exactly (integers,
//! dates, binary strings: no collation), the changes of the whole batch are folded per key into
//! a net effect (DM's "compactor" and "merger"): the row must exist before (the key's first
//! change is an update or a delete) or must not (an insert), and is absent or has a final image
//! after. Rows of different keys are independent, so the batch becomes a few multi-row
//! statements per table: `DELETE … IN (…)` for rows that go, `INSERT` for new rows,
//! `INSERT … ON DUPLICATE KEY UPDATE` for rows that stay with a new image, each with the
//! affected-row count that proves every precondition held (an upsert counts 2 per updated
//! row). Any other table keeps one statement per row change, in order, and so does a folded
//! table whose changes contradict each other on a key (an insert of a key the batch already
//! holds, an update or delete of one it already removed: no source history does that, and the
//! statements then report it). A count that differs sends the batch to the slow path
//! (statement by statement, under the conflict policy).
//!
//! [`plan`] computes the steps, [`render`] writes their SQL; `compact_model.rs` checks the
//! plan against an in-memory model of the tables.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use mysql_async::Value;

use super::keys::{self, change_keys, single_key};
use super::rowapply::Change;
use super::rowsql::{self, InsertVerb};
use super::schema_cache::TableInfo;
use super::workers::Batch;
use crate::event::RowsKind;
use ferry_core::ColumnKind;

/// True when the table's changes can be folded per key.
fn compactable(t: &TableInfo) -> bool {
    let Some(key) = &t.key else { return false };
    let s = &t.schema;
    let constraints = usize::from(s.primary_key.is_some()) + s.unique_keys.len();
    constraints == 1
        && t.stored.iter().any(|i| !key.contains(i))
        && key.iter().all(|&i| {
            s.columns.get(i).is_some_and(|c| {
                matches!(
                    c.kind,
                    ColumnKind::Int { .. }
                        | ColumnKind::Decimal
                        | ColumnKind::Date
                        | ColumnKind::DateTime
                        | ColumnKind::Timestamp
                        | ColumnKind::Time
                        | ColumnKind::Year
                        | ColumnKind::Bit
                        | ColumnKind::Binary
                )
            })
        })
}

/// A row image's key values, compared and hashed in place (nothing is copied or formatted per
/// row).
#[derive(Clone, Copy)]
struct KeyOf<'a> {
    cols: &'a [usize],
    row: &'a [Value],
}

impl<'a> KeyOf<'a> {
    fn new(t: &'a TableInfo, row: &'a [Value]) -> Self {
        KeyOf {
            cols: t.key.as_deref().unwrap_or(&[]),
            row,
        }
    }

    fn value(&self, i: usize) -> &'a Value {
        self.row.get(i).unwrap_or(&Value::NULL)
    }
}

impl PartialEq for KeyOf<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.cols.iter().all(|&i| match (self.value(i), o.value(i)) {
            // bit for bit, as they are hashed (folded keys hold no floats anyway)
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
            (a, b) => a == b,
        })
    }
}

impl Eq for KeyOf<'_> {}

impl Hash for KeyOf<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for &i in self.cols {
            keys::hash_value(h, self.value(i), false);
        }
    }
}

/// The net effect on one key.
struct Net<'a> {
    /// An image carrying the key's values.
    keyed: &'a Vec<Value>,
    existed: bool,
    after: Option<&'a Vec<Value>>,
}

/// One step of a batch's fast path, before it is written as SQL ([`render`]). The steps of
/// different tables are independent (the apply sessions run with the foreign-key checks off).
pub(crate) enum Step<'a> {
    /// A change of a table that is not folded: one statement per row change (an insert's rows
    /// share statements), in source order among the table's steps.
    Plain(&'a Change),
    /// Rows of a folded table that exist before the batch and not after: deleted by key, one
    /// row each.
    Gone(Arc<TableInfo>, Vec<&'a Vec<Value>>),
    /// Keys inserted and deleted again inside the batch: must not exist before (a delete by key
    /// that deletes nothing).
    Never(Arc<TableInfo>, Vec<&'a Vec<Value>>),
    /// Rows that do not exist before and exist after: inserted, one row each.
    New(Arc<TableInfo>, Vec<&'a Vec<Value>>),
    /// Rows that exist before and have a new image after: upserted, each counting 2 (an
    /// update; an insert counts 1, an unchanged row 1: either sends the batch to the slow path).
    Kept(Arc<TableInfo>, Vec<&'a Vec<Value>>),
}

enum TableSteps<'a> {
    Folded {
        info: Arc<TableInfo>,
        order: Vec<KeyOf<'a>>,
        nets: HashMap<KeyOf<'a>, Net<'a>>,
        /// The table's changes, in order: its steps when the fold breaks.
        changes: Vec<&'a Change>,
        /// A change contradicts the ones before it on the same key (an insert of a key the
        /// batch already holds, an update or delete of one it already removed): the source's
        /// history cannot do that, so the table keeps one statement per change and the
        /// statements find out (a duplicate key, a missing row: the slow path).
        broken: bool,
    },
    Plain(Vec<&'a Change>),
}

/// Folds one row change into the key's net effect: `existed` whether it needs the row before,
/// `after` its image after. False when it contradicts the key's net effect so far.
fn fold<'a>(
    order: &mut Vec<KeyOf<'a>>,
    nets: &mut HashMap<KeyOf<'a>, Net<'a>>,
    id: KeyOf<'a>,
    keyed: &'a Vec<Value>,
    existed: bool,
    after: Option<&'a Vec<Value>>,
) -> bool {
    match nets.get_mut(&id) {
        Some(n) => {
            if n.after.is_some() != existed {
                return false;
            }
            n.after = after;
        }
        None => {
            order.push(id);
            nets.insert(
                id,
                Net {
                    keyed,
                    existed,
                    after,
                },
            );
        }
    }
    true
}

/// One statement per row change (any table), in order.
pub(crate) fn plain_statements(c: &Change, out: &mut Vec<(Vec<u8>, u64)>) {
    let t = &c.info;
    match c.kind {
        RowsKind::Insert => {
            let afters: Vec<&Vec<Value>> = c.pairs.iter().filter_map(|(_, a)| a.as_ref()).collect();
            out.extend(rowsql::insert_statements_counted_present(
                t,
                InsertVerb::Insert,
                &afters,
                c.after_present(),
            ));
        }
        RowsKind::Update => {
            for (b, a) in &c.pairs {
                match (b, a) {
                    (Some(b), Some(a)) => {
                        out.push((rowsql::update_statement_present(t, b, a, c.after_present()), 1))
                    }
                    // one-sided, through a row filter (`rowmap`)
                    (Some(b), None) => out.push((rowsql::delete_statement(t, b), 1)),
                    (None, Some(a)) => out.extend(rowsql::insert_statements_counted_present(
                        t,
                        InsertVerb::Insert,
                        &[a],
                        c.after_present(),
                    )),
                    (None, None) => {}
                }
            }
        }
        RowsKind::Delete => {
            for (b, _) in &c.pairs {
                if let Some(b) = b {
                    out.push((rowsql::delete_statement(t, b), 1));
                }
            }
        }
    }
}

/// The steps of a batch, table by table in order of first appearance. A table with a partial
/// row image (`binlog_row_image=MINIMAL`/`NOBLOB`) anywhere in the batch is not folded: its
/// changes keep one statement each, in order (a net effect needs whole images).
pub(crate) fn plan(b: &Batch) -> Vec<Step<'_>> {
    let mut tables: Vec<TableSteps<'_>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let partial: std::collections::HashSet<&str> = b
        .txns
        .iter()
        .flat_map(|t| t.changes.iter())
        .filter(|c| c.partial())
        .map(|c| c.info.target.as_str())
        .collect();
    for t in &b.txns {
        for c in &t.changes {
            let name = c.info.target.as_str();
            let i = *index.entry(name).or_insert_with(|| {
                tables.push(if compactable(&c.info) && !partial.contains(name) {
                    TableSteps::Folded {
                        info: c.info.clone(),
                        order: Vec::new(),
                        nets: HashMap::new(),
                        changes: Vec::new(),
                        broken: false,
                    }
                } else {
                    TableSteps::Plain(Vec::new())
                });
                tables.len() - 1
            });
            match &mut tables[i] {
                TableSteps::Plain(out) => out.push(c),
                TableSteps::Folded {
                    order,
                    nets,
                    changes,
                    broken,
                    ..
                } => {
                    changes.push(c);
                    for (before, after) in &c.pairs {
                        let ok = match (c.kind, before, after) {
                            (RowsKind::Insert, _, Some(a)) => {
                                fold(order, nets, KeyOf::new(&c.info, a), a, false, Some(a))
                            }
                            (RowsKind::Delete, Some(bf), _) => {
                                fold(order, nets, KeyOf::new(&c.info, bf), bf, true, None)
                            }
                            // one-sided updates, through a row filter (`rowmap`)
                            (RowsKind::Update, Some(bf), None) => {
                                fold(order, nets, KeyOf::new(&c.info, bf), bf, true, None)
                            }
                            (RowsKind::Update, None, Some(a)) => {
                                fold(order, nets, KeyOf::new(&c.info, a), a, false, Some(a))
                            }
                            (RowsKind::Update, Some(bf), Some(a)) => {
                                let (kb, ka) = (KeyOf::new(&c.info, bf), KeyOf::new(&c.info, a));
                                if kb == ka {
                                    fold(order, nets, kb, bf, true, Some(a))
                                } else {
                                    fold(order, nets, kb, bf, true, None)
                                        && fold(order, nets, ka, a, false, Some(a))
                                }
                            }
                            _ => true,
                        };
                        *broken |= !ok;
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for t in tables {
        match t {
            TableSteps::Plain(v) => out.extend(v.into_iter().map(Step::Plain)),
            TableSteps::Folded {
                changes,
                broken: true,
                ..
            } => out.extend(changes.into_iter().map(Step::Plain)),
            TableSteps::Folded {
                info, order, nets, ..
            } => {
                let (mut gone, mut never, mut new, mut kept) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for id in &order {
                    let Some(n) = nets.get(id) else { continue };
                    match (n.existed, n.after) {
                        (true, None) => gone.push(n.keyed),
                        (false, None) => never.push(n.keyed),
                        (false, Some(a)) => new.push(a),
                        (true, Some(a)) => kept.push(a),
                    }
                }
                out.push(Step::Gone(info.clone(), gone));
                out.push(Step::Never(info.clone(), never));
                out.push(Step::New(info.clone(), new));
                out.push(Step::Kept(info, kept));
            }
        }
    }
    out
}

/// A step's statements with the affected rows each must report.
pub(crate) fn render(step: &Step<'_>, out: &mut Vec<(Vec<u8>, u64)>) {
    match step {
        Step::Plain(c) => plain_statements(c, out),
        Step::Gone(info, rows) => out.extend(rowsql::delete_keys_statements(info, rows)),
        Step::Never(info, rows) => out.extend(
            rowsql::delete_keys_statements(info, rows)
                .into_iter()
                .map(|(s, _)| (s, 0)),
        ),
        Step::New(info, rows) => {
            out.extend(rowsql::insert_statements_counted(info, InsertVerb::Insert, rows))
        }
        Step::Kept(info, rows) => out.extend(
            rowsql::upsert_statements_counted(info, rows)
                .into_iter()
                .map(|(s, n)| (s, 2 * n)),
        ),
    }
}

/// The batch's statements with the affected rows each must report ([`plan`], [`render`]; the
/// workers render the parts of [`split`] the same way).
#[cfg(test)]
pub(crate) fn batch_statements(b: &Batch) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    for step in plan(b) {
        render(&step, &mut out);
    }
    out
}

/// The rows a step changes (for the log).
pub(crate) fn step_rows(step: &Step<'_>) -> usize {
    match step {
        Step::Plain(c) => c.pairs.len(),
        Step::Gone(_, r) | Step::Never(_, r) | Step::New(_, r) | Step::Kept(_, r) => r.len(),
    }
}

/// Parts the steps of a split batch ([`super::schedule::Deferred`]): those that touch none of
/// the `deferred` conflict keys (sorted), executed at once, and the others, executed once the
/// batches holding those keys have committed. A folded table's rows are parted one by one: it
/// has one unique key, so rows of different keys are independent, and each row has one
/// conflict key ([`single_key`]). A table whose changes are not folded ([`Step::Plain`]:
/// order-sensitive, several unique keys, partial images) is not parted: all its steps are
/// deferred when any of them touches a deferred key. Different tables are independent (the
/// apply sessions run with the foreign-key checks off), so running one part before the other
/// leaves what running the steps in order leaves (`compact_model.rs` checks it).
pub(crate) fn split<'a>(steps: Vec<Step<'a>>, deferred: &[u64]) -> (Vec<Step<'a>>, Vec<Step<'a>>) {
    let is_deferred = |k: &u64| deferred.binary_search(k).is_ok();
    let mut plain_deferred: HashSet<&'a str> = HashSet::new();
    let mut ks = Vec::new();
    for step in &steps {
        if let Step::Plain(c) = step {
            let c: &'a Change = c;
            ks.clear();
            change_keys(c, &mut ks);
            if ks.iter().any(is_deferred) {
                plain_deferred.insert(c.info.target.as_str());
            }
        }
    }
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for step in steps {
        type Make<'a> = fn(Arc<TableInfo>, Vec<&'a Vec<Value>>) -> Step<'a>;
        let (make, info, rows): (Make<'a>, _, _) = match step {
            Step::Plain(c) => {
                if plain_deferred.contains(c.info.target.as_str()) {
                    later.push(step);
                } else {
                    now.push(step);
                }
                continue;
            }
            Step::Gone(i, r) => (Step::Gone, i, r),
            Step::Never(i, r) => (Step::Never, i, r),
            Step::New(i, r) => (Step::New, i, r),
            Step::Kept(i, r) => (Step::Kept, i, r),
        };
        let (held, free): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|r| single_key(&info, r).is_none_or(|k| is_deferred(&k)));
        if !free.is_empty() {
            now.push(make(info.clone(), free));
        }
        if !held.is_empty() {
            later.push(make(info, held));
        }
    }
    (now, later)
}
