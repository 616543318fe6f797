//! Conflict keys for parallel apply: which rows a change touches, as 64-bit hashes.
//!
//! For every row image (before and after) and every key of the table (the primary key and each
//! unique key) the hash of (target table, key number, the key's values). Two transactions whose
//! key sets are disjoint touch different rows and different unique-index entries, so their
//! changes commute. Hashes only ever *over*-approximate conflicts (a collision merely
//! serializes two transactions):
//!
//! - values compared under a case- or accent-insensitive collation (`_ci`, `_ai`, …: `'a'` =
//!   `'A'` = `'á'`) are left out of the hash, so all rows that differ only there conflict;
//!   `_bin` collations are PAD SPACE, so trailing spaces are trimmed first;
//! - FLOAT/DOUBLE (`-0` = `0`), spatial and "other" values are left out the same way;
//! - a unique key with a NULL part constrains nothing and is skipped.
//!
//! A table without a primary or NOT NULL unique key has no reliable row identity: the
//! coordinator applies its changes serially ([`has_row_key`]).

use std::hash::{Hash, Hasher};

use ferry_core::{Column, ColumnKind};
use mysql_async::Value;

use super::rowapply::Change;
use super::schema_cache::TableInfo;

/// True when the table's rows can be told apart by a key (else: serial apply).
pub(crate) fn has_row_key(t: &TableInfo) -> bool {
    t.key.is_some()
}

/// How a column's value enters a key hash.
fn hashable(col: &Column) -> Option<bool> {
    // Some(trim_trailing_spaces) when the exact value identifies the key part, None to leave it out.
    match col.kind {
        ColumnKind::Text => {
            let bin = col
                .collation
                .as_deref()
                .is_some_and(|c| c.ends_with("_bin") || c == "binary");
            bin.then_some(true)
        }
        ColumnKind::Float
        | ColumnKind::Double
        | ColumnKind::Geometry
        | ColumnKind::Other
        | ColumnKind::Json => None,
        _ => Some(false),
    }
}

pub(crate) fn hash_value<H: Hasher>(h: &mut H, v: &Value, trim: bool) {
    match v {
        Value::NULL => 0u8.hash(h),
        Value::Bytes(b) => {
            1u8.hash(h);
            let mut s: &[u8] = b;
            if trim {
                while let [rest @ .., b' '] = s {
                    s = rest;
                }
            }
            s.hash(h);
        }
        Value::Int(i) => {
            2u8.hash(h);
            i128::from(*i).hash(h);
        }
        Value::UInt(u) => {
            2u8.hash(h);
            i128::from(*u).hash(h);
        }
        Value::Float(f) => {
            3u8.hash(h);
            f.to_bits().hash(h);
        }
        Value::Double(f) => {
            3u8.hash(h);
            f.to_bits().hash(h);
        }
        Value::Date(y, mo, d, hh, mi, s, us) => {
            4u8.hash(h);
            (y, mo, d, hh, mi, s, us).hash(h);
        }
        Value::Time(neg, d, hh, mi, s, us) => {
            5u8.hash(h);
            (neg, d, hh, mi, s, us).hash(h);
        }
    }
}

fn key_hash(t: &TableInfo, key_no: usize, cols: &[usize], row: &[Value]) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.target.hash(&mut h);
    key_no.hash(&mut h);
    for &i in cols {
        let v = row.get(i).unwrap_or(&Value::NULL);
        if matches!(v, Value::NULL) {
            // NULL never equals anything in a unique index (a primary key is never NULL).
            return None;
        }
        match t.schema.columns.get(i).and_then(hashable) {
            Some(trim) => hash_value(&mut h, v, trim),
            None => 9u8.hash(&mut h),
        }
    }
    Some(h.finish())
}

/// The keys a conflict key is computed for, in key-number order: the primary key, each unique
/// key, or (neither) the row key.
fn key_columns(t: &TableInfo) -> Vec<&[usize]> {
    let s = &t.schema;
    let mut keys: Vec<&[usize]> = Vec::with_capacity(1 + s.unique_keys.len());
    if let Some(pk) = &s.primary_key {
        keys.push(pk);
    }
    for (_, cols) in &s.unique_keys {
        keys.push(cols);
    }
    if keys.is_empty() {
        if let Some(k) = &t.key {
            keys.push(k);
        }
    }
    keys
}

/// The conflict key of a row image of a table with one key (the one [`change_keys`] computes
/// for that table's rows, as [`key_columns`] orders them); `None` when the table has several keys, none, or a NULL in it.
pub(crate) fn single_key(t: &TableInfo, row: &[Value]) -> Option<u64> {
    let s = &t.schema;
    let cols: &[usize] = match (&s.primary_key, s.unique_keys.as_slice()) {
        (Some(pk), []) => pk,
        (None, [(_, cols)]) => cols,
        (None, []) => t.key.as_deref()?,
        _ => return None,
    };
    key_hash(t, 0, cols, row)
}

/// Appends the conflict keys of a change to `out`.
pub(crate) fn change_keys(c: &Change, out: &mut Vec<u64>) {
    let t = &c.info;
    let keys = key_columns(t);
    for (b, a) in &c.pairs {
        for row in [b, a].into_iter().flatten() {
            for (n, cols) in keys.iter().enumerate() {
                if let Some(h) = key_hash(t, n, cols, row) {
                    out.push(h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_core::{Column, ColumnKind, TableSchema};
    use mysql_async::Value;

    use super::*;
    use crate::decode::TableDecoder;
    use crate::event::{BinlogPos, RowsKind};

    fn col(name: &str, kind: ColumnKind, collation: Option<&str>, nullable: bool) -> Column {
        let ty = if collation.is_some() { "varchar" } else { "int" };
        Column {
            name: name.into(),
            data_type: ty.into(),
            column_type: ty.into(),
            kind,
            nullable,
            generated: false,
            charset: collation.map(|_| "utf8mb4".into()),
            collation: collation.map(Into::into),
        }
    }

    fn table() -> Arc<TableInfo> {
        let schema = TableSchema {
            db: "d".into(),
            name: "t".into(),
            columns: vec![
                col("id", ColumnKind::Int { unsigned: false }, None, false),
                col("ci", ColumnKind::Text, Some("utf8mb4_general_ci"), true),
                col("bin", ColumnKind::Text, Some("utf8mb4_bin"), true),
            ],
            primary_key: Some(vec![0]),
            unique_keys: vec![("u_ci".into(), vec![1]), ("u_bin".into(), vec![2])],
            engine: None,
            estimated_rows: 0,
            data_length: 0,
            system_time: None,
        };
        Arc::new(TableInfo {
            decoder: TableDecoder::new(&schema).expect("decoder"),
            target: "`d`.`t`".into(),
            target_name: "d.t".into(),
            stored: vec![0, 1, 2],
            column_list: "`id`,`ci`,`bin`".into(),
            key: Some(vec![0]),
            referenced_by: Vec::new(),
            map: None,
            schema,
        })
    }

    fn keys(row: Vec<Value>) -> Vec<u64> {
        let c = Change {
            info: table(),
            kind: RowsKind::Insert,
            pos: BinlogPos::new("f", 4),
            pairs: vec![(None, Some(row))],
            cascade: None,
            before_cols: None,
            after_cols: None,
            json_diffs: None,
        };
        let mut out = Vec::new();
        change_keys(&c, &mut out);
        out
    }

    fn b(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    #[test]
    fn same_values_same_keys_and_collations_overestimate() {
        let a = keys(vec![Value::Int(1), b("ab"), b("x")]);
        assert_eq!(a.len(), 3);
        assert_eq!(a, keys(vec![Value::Int(1), b("ab"), b("x")]));
        let other = keys(vec![Value::Int(2), b("AB"), b("x  ")]);
        assert_ne!(a[0], other[0], "different primary keys");
        assert_eq!(a[1], other[1], "'ab' = 'AB' under a _ci collation: must conflict");
        assert_eq!(a[2], other[2], "_bin is PAD SPACE: 'x' = 'x  '");
        assert_ne!(
            a[2],
            keys(vec![Value::Int(2), b("q"), b("X")])[2],
            "_bin tells case apart"
        );
        // A NULL unique value constrains nothing.
        assert_eq!(keys(vec![Value::Int(3), Value::NULL, Value::NULL]).len(), 1);
    }
}
