//! Foreign-key cascades during replay: which row changes make the target's InnoDB repeat the
//! source's cascading actions.
//!
//! InnoDB runs a foreign key's actions (`ON DELETE CASCADE`, `ON DELETE SET NULL`,
//! `ON UPDATE CASCADE`, `ON UPDATE SET NULL`, `SET DEFAULT`) inside the storage engine, and
//! neither MySQL nor MariaDB writes the child rows they change to the binlog: a replica repeats
//! them through its own foreign keys. Ferry applies rows with `foreign_key_checks = 0` (so that
//! batches on parallel workers need no parent/child ordering, as the source already enforced the
//! constraints), and with the checks off InnoDB does not cascade either.
//!
//! So a change that cascaded on the source is applied with `foreign_key_checks = 1` for its own
//! statements: a delete of a row of a table that a cascading foreign key references, or an
//! update that changes the referenced columns of such a key, made by a source session that
//! checked foreign keys (the rows event has no `NO_FOREIGN_KEY_CHECKS` flag). The target's
//! InnoDB then does exactly what the source's did: multi-level cascades, SET NULL,
//! self-referencing tables, its depth limit of 15, and a RESTRICT child met on the way fails the
//! statement (a definite error, as the target then differs from the source). Which keys exist is
//! read from the target's catalog with the rest of the schema at event time, so foreign keys
//! added or dropped by replayed DDL count from the next event on.
//!
//! Such a change touches child rows the binlog does not name, so its transaction is a serial
//! point of the applier (every earlier batch committed before it, none started until it
//! commits) and is applied statement by statement in source order, never compacted.
//!
//! This module is the pure decision; [`super::rowapply`] runs the statements.

use mysql_async::Value;

use crate::decode::RowPair;
use crate::event::RowsKind;

/// A foreign key's referential action (`information_schema.REFERENTIAL_CONSTRAINTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FkRule {
    Restrict,
    NoAction,
    Cascade,
    SetNull,
    SetDefault,
}

impl FkRule {
    /// Parses `UPDATE_RULE` / `DELETE_RULE`; an unknown word is taken as acting (the safe side:
    /// the change is then applied with the checks on, so InnoDB decides).
    pub fn parse(s: &str) -> FkRule {
        match s.trim().to_ascii_uppercase().as_str() {
            "RESTRICT" => FkRule::Restrict,
            "NO ACTION" => FkRule::NoAction,
            "SET NULL" => FkRule::SetNull,
            "SET DEFAULT" => FkRule::SetDefault,
            _ => FkRule::Cascade,
        }
    }

    /// True when the action changes child rows (the rest only refuse).
    pub fn acts(self) -> bool {
        matches!(self, FkRule::Cascade | FkRule::SetNull | FkRule::SetDefault)
    }

    /// The SQL words.
    pub fn sql(self) -> &'static str {
        match self {
            FkRule::Restrict => "RESTRICT",
            FkRule::NoAction => "NO ACTION",
            FkRule::Cascade => "CASCADE",
            FkRule::SetNull => "SET NULL",
            FkRule::SetDefault => "SET DEFAULT",
        }
    }
}

/// A foreign key on the target that references a replicated table and has an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencingFk {
    /// `child_db.child_table.constraint`, for messages.
    pub name: String,
    /// The referenced columns, as indexes into the referenced table's columns.
    pub columns: Vec<usize>,
    pub on_delete: FkRule,
    pub on_update: FkRule,
}

/// The first foreign key through which this change cascades on the source, `None` when it
/// cannot cascade. `fk_checks` is the source session's `foreign_key_checks` for the event.
pub fn cascading_fk<'a>(
    refs: &'a [ReferencingFk],
    kind: RowsKind,
    fk_checks: bool,
    pairs: &[RowPair],
) -> Option<&'a ReferencingFk> {
    if !fk_checks || pairs.is_empty() {
        return None;
    }
    match kind {
        RowsKind::Insert => None,
        RowsKind::Delete => refs.iter().find(|f| f.on_delete.acts()),
        RowsKind::Update => refs.iter().find(|f| {
            f.on_update.acts()
                && pairs.iter().any(|(b, a)| match (b, a) {
                    (Some(b), Some(a)) => referenced_columns_change(&f.columns, b, a),
                    _ => false,
                })
        }),
    }
}

/// True when an update changes any of the columns (by exact value: InnoDB compares the
/// referenced columns' bytes to decide whether to cascade, so an equal image never cascades and
/// a different one is left to InnoDB).
fn referenced_columns_change(cols: &[usize], before: &[Value], after: &[Value]) -> bool {
    cols.iter().any(|&i| before.get(i) != after.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fk(cols: Vec<usize>, del: FkRule, upd: FkRule) -> ReferencingFk {
        ReferencingFk {
            name: "d.c.fk".into(),
            columns: cols,
            on_delete: del,
            on_update: upd,
        }
    }

    fn row(v: &[i64]) -> Option<Vec<Value>> {
        Some(v.iter().map(|&x| Value::Int(x)).collect())
    }

    #[test]
    fn rules_parse_and_act() {
        for (s, r, acts) in [
            ("RESTRICT", FkRule::Restrict, false),
            ("NO ACTION", FkRule::NoAction, false),
            ("CASCADE", FkRule::Cascade, true),
            ("set null", FkRule::SetNull, true),
            ("SET DEFAULT", FkRule::SetDefault, true),
        ] {
            assert_eq!(FkRule::parse(s), r);
            assert_eq!(r.acts(), acts);
            assert_eq!(FkRule::parse(r.sql()), r);
        }
        assert!(FkRule::parse("SOMETHING NEW").acts(), "unknown: the safe side");
    }

    #[test]
    fn deletes_cascade_through_acting_keys_only() {
        let restrict = [fk(vec![0], FkRule::Restrict, FkRule::Restrict)];
        let cascade = [fk(vec![0], FkRule::Cascade, FkRule::Restrict)];
        let set_null = [fk(vec![0], FkRule::SetNull, FkRule::NoAction)];
        let del = [(row(&[1, 2]), None)];
        assert!(cascading_fk(&restrict, RowsKind::Delete, true, &del).is_none());
        assert!(cascading_fk(&cascade, RowsKind::Delete, true, &del).is_some());
        assert!(cascading_fk(&set_null, RowsKind::Delete, true, &del).is_some());
        assert!(
            cascading_fk(&cascade, RowsKind::Delete, false, &del).is_none(),
            "the source session had foreign_key_checks=0: it did not cascade"
        );
        let ins = [(None, row(&[1, 2]))];
        assert!(cascading_fk(&cascade, RowsKind::Insert, true, &ins).is_none());
        assert!(cascading_fk(&[], RowsKind::Delete, true, &del).is_none());
    }

    #[test]
    fn updates_cascade_only_when_referenced_columns_change() {
        let refs = [fk(vec![1], FkRule::Restrict, FkRule::Cascade)];
        let same_key = [(row(&[1, 5, 7]), row(&[1, 5, 8]))];
        let new_key = [(row(&[1, 5, 7]), row(&[1, 6, 7]))];
        assert!(cascading_fk(&refs, RowsKind::Update, true, &same_key).is_none());
        assert!(cascading_fk(&refs, RowsKind::Update, true, &new_key).is_some());
        let delete_only = [fk(vec![1], FkRule::Cascade, FkRule::Restrict)];
        assert!(
            cascading_fk(&delete_only, RowsKind::Update, true, &new_key).is_none(),
            "ON UPDATE RESTRICT: an update never cascades"
        );
    }

    proptest! {
        /// An update cascades exactly when some acting key's columns differ in some row pair.
        #[test]
        fn update_decision_matches_a_plain_scan(
            cols in proptest::collection::vec(0usize..4, 1..3),
            pairs in proptest::collection::vec(
                (proptest::collection::vec(0i64..3, 4), proptest::collection::vec(0i64..3, 4)), 1..4),
            acts in any::<bool>(),
        ) {
            let rule = if acts { FkRule::SetNull } else { FkRule::NoAction };
            let refs = [fk(cols.clone(), FkRule::Restrict, rule)];
            let rp: Vec<RowPair> = pairs.iter().map(|(b, a)| (row(b), row(a))).collect();
            let expected = acts && pairs.iter().any(|(b, a)| cols.iter().any(|&i| b[i] != a[i]));
            prop_assert_eq!(cascading_fk(&refs, RowsKind::Update, true, &rp).is_some(), expected);
        }
    }
}
