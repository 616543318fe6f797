//! Key ranges as SQL: which keys can drive chunking, and the `WHERE` predicates of a chunk.
//!
//! A chunk covers `(lower, upper]` in key order. Row comparisons are expanded
//! (`k1 > ? OR (k1 = ? AND k2 > ?)`, led by `k1 >= ?` so the range optimiser sees a range on the
//! first key part) because MariaDB does not optimise row constructors. Bounds are sent as
//! parameters and compared by the server under each column's collation, never in Rust.

use ferry_core::sql::quote_ident;
use ferry_core::value::bit_value;
use ferry_core::{Column, ColumnKind, TableSchema};
use mysql_async::Value;

/// The key columns chunks are cut by: the table's row key, when all its types order the same way
/// in `ORDER BY` and in `>`/`<=` with a parameter. ENUM and SET order by index but compare with a
/// string as text, so tables keyed by them (and by JSON, spatial or unknown types) are copied as
/// one chunk. MariaDB's UUID, INET6 and INET4 order the same way in both: a bound sent as text (the
/// planner's and readers' connection charset is utf8mb4) is converted to the column's type and
/// compared in the type's own order (UUID: not the text order), the order of `ORDER BY`.
pub fn chunk_key(t: &TableSchema) -> Option<Vec<usize>> {
    let mut key = t.row_key()?.to_vec();
    // A system-versioned table's keys end with `row_end`: chunks are cut on the rest, so every
    // version of a row lies in one chunk, read in one read view (a replayed update then meets
    // the versions it made, or none of them).
    if let Some(st) = t.system_time {
        if key.len() > 1 {
            key.retain(|&i| i != st.row_end);
        }
    }
    let usable = key.iter().all(|&i| {
        matches!(
            t.columns[i].kind,
            ColumnKind::Int { .. }
                | ColumnKind::Decimal
                | ColumnKind::Float
                | ColumnKind::Double
                | ColumnKind::Bit
                | ColumnKind::Year
                | ColumnKind::Date
                | ColumnKind::DateTime
                | ColumnKind::Timestamp
                | ColumnKind::Time
                | ColumnKind::Text
                | ColumnKind::Binary
                | ColumnKind::Plugin
        )
    });
    usable.then(|| key.to_vec())
}

/// The placeholder for a bound of this column: DECIMAL bounds are cast to the column's own type
/// (a string compared with a DECIMAL would be compared as a double).
fn placeholder(col: &Column) -> String {
    if col.kind == ColumnKind::Decimal {
        let ty = col.column_type.to_ascii_lowercase();
        let ty = ty.split(')').next().unwrap_or("decimal(65,30");
        let ty = if ty.contains('(') {
            format!("{ty})")
        } else {
            "decimal(65,30)".to_string()
        };
        format!("CAST(? AS {ty})")
    } else {
        "?".into()
    }
}

/// A bound value as a parameter: BIT bounds as integers.
fn param(col: &Column, v: &Value) -> Value {
    match (col.kind, v) {
        (ColumnKind::Bit, Value::Bytes(b)) => Value::UInt(bit_value(b)),
        (_, v) => v.clone(),
    }
}

/// Key columns of a table, in key order.
pub fn key_columns<'a>(t: &'a TableSchema, key: &[usize]) -> Vec<&'a Column> {
    key.iter().map(|&i| &t.columns[i]).collect()
}

/// `key > bound` (`greater = true`) or `key <= bound` (`greater = false`), expanded, with its
/// parameters in placeholder order.
fn compare(cols: &[&Column], bound: &[Value], greater: bool) -> (String, Vec<Value>) {
    let ops = if greater {
        (">=", ">", ">")
    } else {
        ("<=", "<=", "<")
    };
    compare_with(cols, bound, ops)
}

/// The expanded row comparison with `(lead, last, mid)`: the leading range on the first key part,
/// the operator on the last part and the one on the parts before it.
fn compare_with(
    cols: &[&Column],
    bound: &[Value],
    (lead, last, mid): (&str, &str, &str),
) -> (String, Vec<Value>) {
    let n = cols.len().min(bound.len());
    let mut sql = String::new();
    let mut params = Vec::new();
    if n == 0 {
        return ("1=1".into(), params);
    }
    if n > 1 {
        sql.push_str(&format!(
            "{} {lead} {} AND ",
            quote_ident(&cols[0].name),
            placeholder(cols[0])
        ));
        params.push(param(cols[0], &bound[0]));
    }
    let mut closing = String::new();
    for i in 0..n {
        let c = quote_ident(&cols[i].name);
        let ph = placeholder(cols[i]);
        if i + 1 == n {
            sql.push_str(&format!("{c} {last} {ph}"));
            params.push(param(cols[i], &bound[i]));
        } else {
            sql.push_str(&format!("({c} {mid} {ph} OR ({c} = {ph} AND "));
            params.push(param(cols[i], &bound[i]));
            params.push(param(cols[i], &bound[i]));
            closing.push_str("))");
        }
    }
    sql.push_str(&closing);
    (sql, params)
}

/// The predicate `key > bound`.
pub fn greater_than(cols: &[&Column], bound: &[Value]) -> (String, Vec<Value>) {
    compare(cols, bound, true)
}

/// The predicate `key < bound` (by the server's comparisons, like every bound here).
pub fn less_than(cols: &[&Column], bound: &[Value]) -> (String, Vec<Value>) {
    compare_with(cols, bound, ("<=", "<", "<"))
}

/// The `WHERE` clause (with a leading ` WHERE `, or empty) of a chunk `(lower, upper]`.
pub fn chunk_where(
    cols: &[&Column],
    lower: Option<&[Value]>,
    upper: Option<&[Value]>,
) -> (String, Vec<Value>) {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    if let Some(l) = lower {
        let (s, p) = compare(cols, l, true);
        parts.push(format!("({s})"));
        params.extend(p);
    }
    if let Some(u) = upper {
        let (s, p) = compare(cols, u, false);
        parts.push(format!("({s})"));
        params.extend(p);
    }
    if parts.is_empty() {
        (String::new(), params)
    } else {
        (format!(" WHERE {}", parts.join(" AND ")), params)
    }
}

/// `ORDER BY` list of the key.
pub fn order_by(cols: &[&Column]) -> String {
    cols.iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, kind: ColumnKind, ty: &str) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            column_type: ty.into(),
            kind,
            nullable: false,
            generated: false,
            charset: None,
            collation: None,
        }
    }

    #[test]
    fn expands_row_comparisons() {
        let a = col("a", ColumnKind::Int { unsigned: false }, "int");
        let b = col("b", ColumnKind::Text, "varchar(10)");
        let c = col("c", ColumnKind::Decimal, "decimal(10,2) unsigned");
        let (s, p) = greater_than(&[&a], &[Value::Int(5)]);
        assert_eq!(s, "`a` > ?");
        assert_eq!(p.len(), 1);
        let bound = [
            Value::Int(1),
            Value::Bytes(b"x".to_vec()),
            Value::Bytes(b"1.50".to_vec()),
        ];
        let (s, p) = compare(&[&a, &b, &c], &bound, true);
        assert_eq!(
            s,
            "`a` >= ? AND (`a` > ? OR (`a` = ? AND (`b` > ? OR (`b` = ? AND `c` > CAST(? AS decimal(10,2))))))"
        );
        assert_eq!(p.len(), 6);
        let (s, _) = compare(&[&a, &b], &bound[..2], false);
        assert_eq!(s, "`a` <= ? AND (`a` < ? OR (`a` = ? AND `b` <= ?))");
        let (s, p) = less_than(&[&a, &b], &bound[..2]);
        assert_eq!(s, "`a` <= ? AND (`a` < ? OR (`a` = ? AND `b` < ?))");
        assert_eq!(p.len(), 4);
        let (w, p) = chunk_where(&[&a], Some(&[Value::Int(1)]), Some(&[Value::Int(9)]));
        assert_eq!(w, " WHERE (`a` > ?) AND (`a` <= ?)");
        assert_eq!(p, vec![Value::Int(1), Value::Int(9)]);
        assert_eq!(chunk_where(&[&a], None, None).0, "");
    }
}
