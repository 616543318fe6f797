//! SQL text for row changes, with exact literals (`ferry_core::value::write_sql_literal`).
//!
//! - insert: `INSERT INTO t (cols) VALUES (…), (…)` (or `REPLACE` / `INSERT IGNORE`), several
//!   statements when the rows exceed a size bound;
//! - update: `UPDATE t SET <every stored column> WHERE <before key> LIMIT 1`;
//! - delete: `DELETE FROM t WHERE <key> LIMIT 1`.
//!
//! The key is the primary key (else a NOT NULL unique key); a table without one is addressed by
//! every stored column compared with `<=>` (spatial columns skipped). In `WHERE`, strings carry
//! their column's charset and collation (`_utf8mb4'…' COLLATE …`) so the key index is usable,
//! FLOAT literals are cast to FLOAT, and JSON literals to JSON: on MySQL, where JSON is a type of
//! its own (`ColumnKind::Json`), a JSON column compared with a string compares with a JSON string
//! scalar, which never equals a document. (MariaDB's JSON is LONGTEXT and reads as
//! `ColumnKind::Text`, compared as text.) A MySQL JSON value with DATE/TIME/DATETIME/DECIMAL
//! scalars carries the expression that rebuilds them ([`crate::json_sql`]); it is written, and
//! compared, as that expression. Generated columns are never written.
//!
//! The apply sessions run with a strict `sql_mode` ([`REPLAY_SQL_MODE`]): a value the target
//! would truncate or adjust fails the statement instead. The one value a strict session cannot
//! write is the ENUM error value (index 0, read as `''`, which a non-strict source stores for an
//! invalid member); a statement that writes it runs under [`RELAXED_SQL_MODE`] for that statement
//! only (`SET STATEMENT … FOR` on MariaDB, the `SET_VAR` hint on MySQL: [`relax`]).

use ferry_core::sql::quote_ident;
use ferry_core::value::{display_value, write_sql_literal};
use ferry_core::{Column, ColumnKind};
use mysql_async::Value;

use super::schema_cache::TableInfo;

/// The `sql_mode` of the apply sessions: strict, so a value the target would truncate or adjust
/// is an error (1264, 1265, 1292, 1366, 1406, … all definite), never a silent change; no
/// `NO_ZERO_DATE`/`NO_ZERO_IN_DATE`, so the zero dates a source holds still copy;
/// `ALLOW_INVALID_DATES` for the days beyond a month's end a source may hold;
/// `NO_AUTO_VALUE_ON_ZERO` so an AUTO_INCREMENT 0 stays 0.
pub const REPLAY_SQL_MODE: &str =
    "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES";

/// [`REPLAY_SQL_MODE`] without strictness, for the statements that write the ENUM error value.
pub const RELAXED_SQL_MODE: &str = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES";

/// Rewrites one INSERT/REPLACE/UPDATE so it runs under [`RELAXED_SQL_MODE`] on either flavor:
/// `/*M!100102 SET STATEMENT sql_mode='…' FOR */ INSERT /*+ SET_VAR(sql_mode='…') */ …`.
/// MariaDB executes the `/*M!` comment and treats the hint as a comment; MySQL ignores the `/*M!`
/// comment and applies the hint (SET_VAR takes `sql_mode` since 8.0.3).
pub fn relax(stmt: &[u8]) -> Vec<u8> {
    let verb_end = stmt.iter().position(|&c| c == b' ').unwrap_or(stmt.len());
    let mut out = Vec::with_capacity(stmt.len() + 200);
    out.extend_from_slice(
        format!("/*M!100102 SET STATEMENT sql_mode='{RELAXED_SQL_MODE}' FOR */ ").as_bytes(),
    );
    out.extend_from_slice(&stmt[..verb_end]);
    out.extend_from_slice(format!(" /*+ SET_VAR(sql_mode='{RELAXED_SQL_MODE}') */").as_bytes());
    out.extend_from_slice(&stmt[verb_end..]);
    out
}

/// True for the ENUM error value: `''` in an ENUM column that has no `''` member.
fn is_enum_error_value(col: &Column, v: &Value) -> bool {
    col.kind == ColumnKind::Enum
        && matches!(v, Value::Bytes(b) if b.is_empty())
        && !crate::decode::parse_members(&col.column_type).is_ok_and(|m| m.iter().any(|x| x.is_empty()))
}

/// True when writing `row` needs [`relax`].
fn writes_enum_error_value(t: &TableInfo, row: &[Value]) -> bool {
    t.stored
        .iter()
        .any(|&i| is_enum_error_value(&t.schema.columns[i], row.get(i).unwrap_or(&Value::NULL)))
}

/// Statements are cut at about this many bytes (well under the default max_allowed_packet).
pub const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// How an insert treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertVerb {
    Insert,
    Replace,
    InsertIgnore,
}

impl InsertVerb {
    fn head(self) -> &'static str {
        match self {
            InsertVerb::Insert => "INSERT INTO ",
            InsertVerb::Replace => "REPLACE INTO ",
            InsertVerb::InsertIgnore => "INSERT IGNORE INTO ",
        }
    }
}

/// A string or binary value at least this long is a *long value*: its change is applied on its
/// own, with the value sent as a prepared-statement parameter ([`with_long_params`]) instead of
/// as SQL text.
pub const LONG_VALUE_BYTES: usize = 1 << 20;

/// True for a value [`with_long_params`] sends as a parameter.
pub fn is_long_value(col: &Column, v: &Value) -> bool {
    matches!(v, Value::Bytes(b) if b.len() >= LONG_VALUE_BYTES)
        && !matches!(col.kind, ColumnKind::Bit | ColumnKind::Decimal)
}

thread_local! {
    /// The parameters collected by [`with_long_params`] (`None`: literals only).
    static LONG_PARAMS: std::cell::RefCell<Option<Vec<Value>>> = const { std::cell::RefCell::new(None) };
}

/// Builds one statement with `f`, its string and binary values written as `?` parameters (the
/// bytes exactly: `CAST(? AS BINARY)`, as `_binary'…'` does; JSON converted to utf8mb4 and
/// compared strings given their column's charset and collation, as the literals are), and
/// returns it with the parameters in order. The client sends parameters over 16 MiB with
/// COM_STMT_SEND_LONG_DATA, so the statement never carries the value as text (a value is still
/// bounded by the target's `max_allowed_packet`). Synchronous: `f` must build one statement.
pub fn with_long_params<R>(f: impl FnOnce() -> R) -> (R, Vec<Value>) {
    LONG_PARAMS.with(|p| *p.borrow_mut() = Some(Vec::new()));
    let r = f();
    let params = LONG_PARAMS.with(|p| p.borrow_mut().take()).unwrap_or_default();
    (r, params)
}

/// Inside [`with_long_params`], takes a string or binary value as the next parameter (every
/// one, not only the long ones, so the statement text stays UTF-8 for the prepared statement).
/// A JSON value with an expression is never one: the expression is UTF-8 SQL text.
fn take_param(col: &Column, v: &Value) -> bool {
    if !matches!(v, Value::Bytes(_))
        || matches!(col.kind, ColumnKind::Bit | ColumnKind::Decimal)
        || json_expression(col, v).is_some()
    {
        return false;
    }
    LONG_PARAMS.with(|p| match p.borrow_mut().as_mut() {
        Some(params) => {
            params.push(v.clone());
            true
        }
        None => false,
    })
}

/// The expression a JSON column's value carries ([`crate::json_sql`]: a document with typed
/// scalars, decoded for a MySQL target), written instead of its text, as value and in
/// comparisons alike (`JSON_OBJECT(…)` is of type JSON).
fn json_expression<'a>(col: &Column, v: &'a Value) -> Option<&'a [u8]> {
    match v {
        Value::Bytes(b) if col.kind == ColumnKind::Json => crate::json_sql::split(b).1,
        _ => None,
    }
}

fn value_literal(out: &mut Vec<u8>, col: &Column, v: &Value) {
    if let Some(expr) = json_expression(col, v) {
        out.extend_from_slice(expr);
        return;
    }
    if take_param(col, v) {
        // JSON and MariaDB's type plugins (UUID, INET4/6) take their text form, as their literals do.
        out.extend_from_slice(if matches!(col.kind, ColumnKind::Json | ColumnKind::Plugin) {
            b"CONVERT(CAST(? AS BINARY) USING utf8mb4)" as &[u8]
        } else {
            b"CAST(? AS BINARY)"
        });
        return;
    }
    write_sql_literal(out, col.kind, v);
}

/// A literal for comparisons: strings in the column's charset and collation, FLOAT and JSON
/// cast to their type.
fn where_literal(out: &mut Vec<u8>, col: &Column, v: &Value) {
    if let Some(expr) = json_expression(col, v) {
        out.extend_from_slice(expr);
        return;
    }
    if take_param(col, v) {
        // the literal's exact equivalents: `_cs'…' COLLATE c`, `CAST(CONVERT(…) AS JSON)`, `_binary'…'`
        match (&col.charset, col.kind) {
            (_, ColumnKind::Json) => {
                out.extend_from_slice(b"CAST(CONVERT(CAST(? AS BINARY) USING utf8mb4) AS JSON)")
            }
            (_, ColumnKind::Plugin) => out.extend_from_slice(b"CONVERT(CAST(? AS BINARY) USING utf8mb4)"),
            (Some(cs), k) if k.is_collated() => {
                out.extend_from_slice(format!("CONVERT(CAST(? AS BINARY) USING {cs})").as_bytes());
                if let Some(coll) = &col.collation {
                    out.extend_from_slice(b" COLLATE ");
                    out.extend_from_slice(coll.as_bytes());
                }
            }
            _ => out.extend_from_slice(b"CAST(? AS BINARY)"),
        }
        return;
    }
    let cast = match col.kind {
        ColumnKind::Float => Some(&b" AS FLOAT)"[..]),
        ColumnKind::Json => Some(&b" AS JSON)"[..]),
        _ => None,
    };
    if let (Some(as_type), false) = (cast, matches!(v, Value::NULL)) {
        out.extend_from_slice(b"CAST(");
        write_sql_literal(out, col.kind, v);
        out.extend_from_slice(as_type);
        return;
    }
    if col.kind.is_collated() {
        if let (Some(cs), Value::Bytes(_)) = (&col.charset, v) {
            let mut lit = Vec::new();
            write_sql_literal(&mut lit, col.kind, v);
            if let Some(rest) = lit.strip_prefix(b"_binary") {
                out.push(b'_');
                out.extend_from_slice(cs.as_bytes());
                out.extend_from_slice(rest);
                if let Some(coll) = &col.collation {
                    out.extend_from_slice(b" COLLATE ");
                    out.extend_from_slice(coll.as_bytes());
                }
                return;
            }
            out.extend_from_slice(&lit);
            return;
        }
    }
    write_sql_literal(out, col.kind, v);
}

/// The columns of a row image, when it does not carry every stored column
/// (`binlog_row_image=MINIMAL`/`NOBLOB`): `present[i]` for column `i`. `None`: all of them.
pub type Present<'a> = Option<&'a [bool]>;

fn is_present(present: Present<'_>, i: usize) -> bool {
    present.is_none_or(|p| p.get(i).copied().unwrap_or(false))
}

/// The rows' tuples `(…)` of the stored columns, grouped into INSERT statements.
pub fn insert_statements(t: &TableInfo, verb: InsertVerb, rows: &[&Vec<Value>]) -> Vec<Vec<u8>> {
    insert_statements_present(t, verb, rows, None)
}

/// [`insert_statements`] of images that carry only the `present` columns (the others get the
/// target's column defaults, as they did on the source).
pub fn insert_statements_present(
    t: &TableInfo,
    verb: InsertVerb,
    rows: &[&Vec<Value>],
    present: Present<'_>,
) -> Vec<Vec<u8>> {
    insert_statements_counted_present(t, verb, rows, present)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// [`insert_statements`], each statement with the number of rows it inserts.
pub fn insert_statements_counted(
    t: &TableInfo,
    verb: InsertVerb,
    rows: &[&Vec<Value>],
) -> Vec<(Vec<u8>, u64)> {
    insert_statements_counted_present(t, verb, rows, None)
}

/// [`insert_statements_counted`] of images that carry only the `present` columns.
pub fn insert_statements_counted_present(
    t: &TableInfo,
    verb: InsertVerb,
    rows: &[&Vec<Value>],
    present: Present<'_>,
) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    let cols: Vec<usize> = t
        .stored
        .iter()
        .copied()
        .filter(|&i| is_present(present, i))
        .collect();
    let column_list = if present.is_none() {
        t.column_list.clone()
    } else {
        cols.iter()
            .map(|&i| quote_ident(&t.schema.columns[i].name))
            .collect::<Vec<_>>()
            .join(",")
    };
    let head = format!("{}{} ({}) VALUES ", verb.head(), t.target, column_list);
    let mut cur: Vec<u8> = Vec::new();
    let mut n = 0u64;
    let mut relaxed = false;
    let finish = |cur: Vec<u8>, relaxed: bool| if relaxed { relax(&cur) } else { cur };
    for (r, row) in rows.iter().enumerate() {
        if cur.is_empty() {
            cur.extend_from_slice(head.as_bytes());
        } else {
            cur.push(b',');
        }
        n += 1;
        relaxed |= writes_enum_error_value(t, row);
        cur.push(b'(');
        for (n, &i) in cols.iter().enumerate() {
            if n > 0 {
                cur.push(b',');
            }
            value_literal(&mut cur, &t.schema.columns[i], row.get(i).unwrap_or(&Value::NULL));
        }
        cur.push(b')');
        if n == 1 {
            // Room for the statement's other rows, sized on its first (no regrowing).
            reserve_rows(&mut cur, head.len(), rows.len() - r - 1);
        }
        if cur.len() >= MAX_STATEMENT_BYTES {
            out.push((
                finish(std::mem::take(&mut cur), std::mem::take(&mut relaxed)),
                std::mem::take(&mut n),
            ));
        }
    }
    if !cur.is_empty() {
        out.push((finish(cur, relaxed), n));
    }
    out
}

/// Reserves room in a statement holding its head and one row for `more` rows like it (up to
/// about [`MAX_STATEMENT_BYTES`]).
fn reserve_rows(cur: &mut Vec<u8>, head: usize, more: usize) {
    let row = cur.len().saturating_sub(head) + 1;
    let want = row.saturating_mul(more).min(MAX_STATEMENT_BYTES) + 256;
    cur.reserve(want);
}

/// Columns that address a row: the key, else every stored non-spatial column.
pub(crate) fn where_columns(t: &TableInfo) -> Vec<usize> {
    match &t.key {
        Some(k) => k.clone(),
        None => t
            .stored
            .iter()
            .copied()
            .filter(|&i| t.schema.columns[i].kind != ColumnKind::Geometry)
            .collect(),
    }
}

pub(crate) fn write_where(out: &mut Vec<u8>, t: &TableInfo, row: &[Value]) {
    out.extend_from_slice(b" WHERE ");
    let keyed = t.key.is_some();
    for (n, i) in where_columns(t).into_iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(b" AND ");
        }
        let col = &t.schema.columns[i];
        let v = row.get(i).unwrap_or(&Value::NULL);
        if let (Some(_), Value::Bytes(b)) = (json_expression(col, v), v) {
            // A typed document matches its typed copy (replayed) or its text copy (the full load
            // moves JSON as text: DATETIME as a string): both forms address the row.
            let name = quote_ident(&col.name);
            out.extend_from_slice(format!("({name} <=> ").as_bytes());
            where_literal(out, col, v);
            out.extend_from_slice(format!(" OR {name} <=> ").as_bytes());
            where_literal(out, col, &Value::Bytes(crate::json_sql::split(b).0.to_vec()));
            out.push(b')');
            continue;
        }
        out.extend_from_slice(quote_ident(&col.name).as_bytes());
        out.extend_from_slice(if keyed { b" = " } else { b" <=> " });
        where_literal(out, col, v);
    }
    out.extend_from_slice(b" LIMIT 1");
}

/// `UPDATE t SET … WHERE <before> LIMIT 1`.
pub fn update_statement(t: &TableInfo, before: &[Value], after: &[Value]) -> Vec<u8> {
    update_statement_present(t, before, after, None)
}

/// [`update_statement`] of an after image that carries only the `present` columns: only they
/// are set (the before image must carry the row's address, [`where_columns`]). An image with no
/// stored column sets the first address column to itself, a statement that still finds the row.
pub fn update_statement_present(
    t: &TableInfo,
    before: &[Value],
    after: &[Value],
    after_present: Present<'_>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"UPDATE ");
    out.extend_from_slice(t.target.as_bytes());
    out.extend_from_slice(b" SET ");
    let set: Vec<usize> = t
        .stored
        .iter()
        .copied()
        .filter(|&i| is_present(after_present, i))
        .collect();
    if set.is_empty() {
        if let Some(&i) = where_columns(t).first() {
            let c = quote_ident(&t.schema.columns[i].name);
            out.extend_from_slice(format!("{c}={c}").as_bytes());
        }
    }
    for (n, &i) in set.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let col = &t.schema.columns[i];
        out.extend_from_slice(quote_ident(&col.name).as_bytes());
        out.push(b'=');
        value_literal(&mut out, col, after.get(i).unwrap_or(&Value::NULL));
    }
    write_where(&mut out, t, before);
    if writes_enum_error_value(t, after) {
        return relax(&out);
    }
    out
}

/// `DELETE FROM t WHERE <row> LIMIT 1`.
pub fn delete_statement(t: &TableInfo, row: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"DELETE FROM ");
    out.extend_from_slice(t.target.as_bytes());
    write_where(&mut out, t, row);
    out
}

/// `DELETE FROM t WHERE <key> IN (…)` (or `(a = … AND b = …) OR …` for a composite key) for
/// rows addressed by their key (keyed tables only), cut at about [`MAX_STATEMENT_BYTES`]; each
/// statement with the number of rows it addresses.
pub fn delete_keys_statements(t: &TableInfo, rows: &[&Vec<Value>]) -> Vec<(Vec<u8>, u64)> {
    let Some(key) = &t.key else { return Vec::new() };
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut n = 0u64;
    let single = key.len() == 1;
    let mut head = 0;
    for (r, row) in rows.iter().enumerate() {
        if cur.is_empty() {
            cur.extend_from_slice(b"DELETE FROM ");
            cur.extend_from_slice(t.target.as_bytes());
            cur.extend_from_slice(b" WHERE ");
            if single {
                cur.extend_from_slice(quote_ident(&t.schema.columns[key[0]].name).as_bytes());
                cur.extend_from_slice(b" IN (");
            }
            head = cur.len();
        } else {
            cur.extend_from_slice(if single { b"," as &[u8] } else { b" OR " });
        }
        n += 1;
        if single {
            where_literal(
                &mut cur,
                &t.schema.columns[key[0]],
                row.get(key[0]).unwrap_or(&Value::NULL),
            );
        } else {
            cur.push(b'(');
            for (j, &i) in key.iter().enumerate() {
                if j > 0 {
                    cur.extend_from_slice(b" AND ");
                }
                let col = &t.schema.columns[i];
                cur.extend_from_slice(quote_ident(&col.name).as_bytes());
                cur.extend_from_slice(b" = ");
                where_literal(&mut cur, col, row.get(i).unwrap_or(&Value::NULL));
            }
            cur.push(b')');
        }
        if n == 1 {
            reserve_rows(&mut cur, head, rows.len() - r - 1);
        }
        if cur.len() >= MAX_STATEMENT_BYTES {
            if single {
                cur.push(b')');
            }
            out.push((std::mem::take(&mut cur), std::mem::take(&mut n)));
        }
    }
    if !cur.is_empty() {
        if single {
            cur.push(b')');
        }
        out.push((cur, n));
    }
    out
}

/// `INSERT INTO t (…) VALUES (…), … ON DUPLICATE KEY UPDATE c = VALUES(c), …` over the non-key
/// stored columns (keyed tables with at least one such column), cut like
/// [`insert_statements_counted`]; each statement with its number of rows.
pub fn upsert_statements_counted(t: &TableInfo, rows: &[&Vec<Value>]) -> Vec<(Vec<u8>, u64)> {
    let key: &[usize] = t.key.as_deref().unwrap_or(&[]);
    let tail = t
        .stored
        .iter()
        .filter(|i| !key.contains(i))
        .map(|&i| {
            let c = quote_ident(&t.schema.columns[i].name);
            format!("{c}=VALUES({c})")
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut out = insert_statements_counted(t, InsertVerb::Insert, rows);
    for (stmt, _) in &mut out {
        stmt.extend_from_slice(b" ON DUPLICATE KEY UPDATE ");
        stmt.extend_from_slice(tail.as_bytes());
    }
    out
}

/// True when the key values differ between two images.
pub fn key_changed(t: &TableInfo, before: &[Value], after: &[Value]) -> bool {
    key_changed_present(t, before, after, None)
}

/// [`key_changed`] for an after image that carries only the `present` columns (an absent key
/// column kept its value).
pub fn key_changed_present(
    t: &TableInfo,
    before: &[Value],
    after: &[Value],
    after_present: Present<'_>,
) -> bool {
    match &t.key {
        Some(k) => k
            .iter()
            .any(|&i| is_present(after_present, i) && before.get(i) != after.get(i)),
        None => true,
    }
}

/// `col=value, …` of the key (or of the whole row for keyless tables), for messages.
pub fn describe_key(t: &TableInfo, row: &[Value]) -> String {
    let cols = match &t.key {
        Some(k) => k.clone(),
        None => t.stored.clone(),
    };
    let mut s = cols
        .iter()
        .map(|&i| {
            let c = &t.schema.columns[i];
            let v = match row.get(i) {
                // a JSON value shows its text, not its expression
                Some(Value::Bytes(b)) if c.kind == ColumnKind::Json => {
                    display_value(c.kind, &Value::Bytes(crate::json_sql::split(b).0.to_vec()))
                }
                v => display_value(c.kind, v.unwrap_or(&Value::NULL)),
            };
            let v: String = if v.chars().count() > 64 {
                v.chars().take(64).chain("…".chars()).collect()
            } else {
                v
            };
            format!("{}={v}", c.name)
        })
        .collect::<Vec<_>>()
        .join(", ");
    if t.key.is_none() {
        s.insert_str(0, "no key; row ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TableDecoder;
    use ferry_core::TableSchema;

    fn col(name: &str, ty: &str, collation: Option<&str>) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            column_type: ty.into(),
            kind: ColumnKind::from_types(ty, ty),
            nullable: true,
            generated: false,
            charset: collation.map(|_| "utf8mb4".into()),
            collation: collation.map(Into::into),
        }
    }

    /// A keyless table: rows are addressed by every column.
    fn keyless(columns: Vec<Column>) -> TableInfo {
        let schema = TableSchema {
            db: "d".into(),
            name: "t".into(),
            columns,
            primary_key: None,
            unique_keys: vec![],
            engine: None,
            estimated_rows: 0,
            data_length: 0,
            system_time: None,
        };
        let n = schema.columns.len();
        TableInfo {
            decoder: TableDecoder::new(&schema).expect("decoder"),
            target: "`d`.`t`".into(),
            target_name: "d.t".into(),
            stored: (0..n).collect(),
            column_list: schema
                .columns
                .iter()
                .map(|c| quote_ident(&c.name))
                .collect::<Vec<_>>()
                .join(","),
            key: None,
            referenced_by: Vec::new(),
            map: None,
            schema,
        }
    }

    fn b(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).expect("utf8")
    }

    #[test]
    fn json_on_a_mysql_target_is_compared_as_json() {
        // MySQL target: information_schema says `json`
        let t = keyless(vec![col("id", "int", None), col("doc", "json", None)]);
        let row = vec![Value::Int(1), b(r#"{"a": 1}"#)];
        assert_eq!(
            text(delete_statement(&t, &row)),
            r#"DELETE FROM `d`.`t` WHERE `id` <=> 1 AND `doc` <=> CAST(CONVERT(_binary'{"a": 1}' USING utf8mb4) AS JSON) LIMIT 1"#
        );
        let after = vec![Value::Int(1), b("[1, 2]")];
        assert_eq!(
            text(update_statement(&t, &row, &after)),
            r#"UPDATE `d`.`t` SET `id`=1,`doc`=CONVERT(_binary'[1, 2]' USING utf8mb4) WHERE `id` <=> 1 AND `doc` <=> CAST(CONVERT(_binary'{"a": 1}' USING utf8mb4) AS JSON) LIMIT 1"#
        );
        // NULL stays NULL (no CAST(NULL AS JSON))
        assert_eq!(
            text(delete_statement(&t, &[Value::Int(2), Value::NULL])),
            "DELETE FROM `d`.`t` WHERE `id` <=> 2 AND `doc` <=> NULL LIMIT 1"
        );
    }

    #[test]
    fn json_with_typed_scalars_is_written_as_its_expression() {
        let t = keyless(vec![col("id", "int", None), col("doc", "json", None)]);
        let expr = "JSON_OBJECT(_utf8mb4'd',CAST('9.00' AS DECIMAL(3,2)))";
        let doc = Value::Bytes(crate::json_sql::attach(r#"{"d": 9.00}"#.into(), expr));
        let row = vec![Value::Int(1), doc.clone()];
        assert_eq!(
            text(insert_statements(&t, InsertVerb::Insert, &[&row]).remove(0)),
            format!("INSERT INTO `d`.`t` (`id`,`doc`) VALUES (1,{expr})")
        );
        // a keyless row is found in its typed form or in the text form a full load wrote
        let cond = format!(
            r#"(`doc` <=> {expr} OR `doc` <=> CAST(CONVERT(_binary'{{"d": 9.00}}' USING utf8mb4) AS JSON))"#
        );
        assert_eq!(
            text(delete_statement(&t, &row)),
            format!("DELETE FROM `d`.`t` WHERE `id` <=> 1 AND {cond} LIMIT 1")
        );
        // on the long-value path too: the expression stays in the statement text, the text
        // form is a parameter
        let (stmt, params) = with_long_params(|| update_statement(&t, &row, &row));
        assert_eq!(
            text(stmt),
            "UPDATE `d`.`t` SET `id`=1,`doc`=JSON_OBJECT(_utf8mb4'd',CAST('9.00' AS DECIMAL(3,2))) \
             WHERE `id` <=> 1 AND (`doc` <=> JSON_OBJECT(_utf8mb4'd',CAST('9.00' AS DECIMAL(3,2))) \
             OR `doc` <=> CAST(CONVERT(CAST(? AS BINARY) USING utf8mb4) AS JSON)) LIMIT 1"
        );
        assert_eq!(params, vec![b(r#"{"d": 9.00}"#)]);
        assert_eq!(describe_key(&t, &row), r#"no key; row id=1, doc={"d": 9.00}"#);
    }

    #[test]
    fn json_on_a_mariadb_target_is_compared_as_text() {
        // MariaDB target: JSON is LONGTEXT utf8mb4_bin
        let t = keyless(vec![col("doc", "longtext", Some("utf8mb4_bin"))]);
        assert_eq!(
            text(delete_statement(&t, &[b(r#"{"a": 1}"#)])),
            r#"DELETE FROM `d`.`t` WHERE `doc` <=> _utf8mb4'{"a": 1}' COLLATE utf8mb4_bin LIMIT 1"#
        );
    }

    #[test]
    fn float_is_still_cast_to_float() {
        let t = keyless(vec![col("f", "float", None)]);
        assert_eq!(
            text(delete_statement(&t, &[Value::Float(0.5)])),
            "DELETE FROM `d`.`t` WHERE `f` <=> CAST(5e-1 AS FLOAT) LIMIT 1"
        );
    }
}

#[cfg(test)]
mod strict_tests {
    use super::*;
    use crate::decode::TableDecoder;
    use ferry_core::TableSchema;

    fn table() -> TableInfo {
        let col = |name: &str, ty: &str, column_type: &str| Column {
            name: name.into(),
            data_type: ty.into(),
            column_type: column_type.into(),
            kind: ColumnKind::from_types(ty, column_type),
            nullable: true,
            generated: false,
            charset: None,
            collation: None,
        };
        let schema = TableSchema {
            db: "d".into(),
            name: "t".into(),
            columns: vec![
                col("id", "int", "int"),
                col("e", "enum", "enum('a','b')"),
                col("z", "enum", "enum('','x')"),
            ],
            primary_key: Some(vec![0]),
            unique_keys: vec![],
            engine: None,
            estimated_rows: 0,
            data_length: 0,
            system_time: None,
        };
        TableInfo {
            decoder: TableDecoder::new(&schema).expect("decoder"),
            target: "`d`.`t`".into(),
            target_name: "d.t".into(),
            stored: vec![0, 1, 2],
            column_list: "`id`,`e`,`z`".into(),
            key: Some(vec![0]),
            referenced_by: Vec::new(),
            map: None,
            schema,
        }
    }

    fn b(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    fn text(v: &[u8]) -> String {
        String::from_utf8(v.to_vec()).expect("utf8")
    }

    #[test]
    fn partial_images_write_only_their_columns() {
        let t = table();
        let before = vec![Value::Int(1), Value::NULL, Value::NULL];
        let after = vec![Value::Int(1), Value::NULL, b("x")];
        let only_z = [true, false, true];
        assert_eq!(
            text(&update_statement_present(&t, &before, &after, Some(&only_z))),
            "UPDATE `d`.`t` SET `id`=1,`z`=_binary'x' WHERE `id` = 1 LIMIT 1"
        );
        // an absent key column kept its value; a present one that differs changed
        assert!(!key_changed_present(
            &t,
            &before,
            &after,
            Some(&[false, false, true])
        ));
        assert!(key_changed_present(
            &t,
            &before,
            &[Value::Int(2), Value::NULL, Value::NULL],
            Some(&only_z)
        ));
        assert!(key_changed(
            &t,
            &before,
            &[Value::Int(2), Value::NULL, Value::NULL]
        ));
        let s = insert_statements_present(&t, InsertVerb::Insert, &[&after], Some(&only_z));
        assert_eq!(
            text(&s[0]),
            "INSERT INTO `d`.`t` (`id`,`z`) VALUES (1,_binary'x')"
        );
        // all columns present: the usual statement
        assert_eq!(
            insert_statements_present(&t, InsertVerb::Insert, &[&after], Some(&[true, true, true])),
            insert_statements(&t, InsertVerb::Insert, &[&after])
        );
    }

    #[test]
    fn ordinary_rows_stay_strict() {
        let t = table();
        let row = vec![Value::Int(1), b("a"), b("")]; // '' is a real member of z
        let s = insert_statements(&t, InsertVerb::Insert, &[&row]);
        assert_eq!(
            text(&s[0]),
            "INSERT INTO `d`.`t` (`id`,`e`,`z`) VALUES (1,_binary'a',_binary'')"
        );
        assert!(!text(&update_statement(&t, &row, &row)).contains("sql_mode"));
    }

    #[test]
    fn the_enum_error_value_is_written_under_a_relaxed_sql_mode_for_that_statement() {
        let t = table();
        let ok = vec![Value::Int(1), b("a"), b("x")];
        let err = vec![Value::Int(2), b(""), b("x")];
        let s = insert_statements(&t, InsertVerb::InsertIgnore, &[&ok, &err]);
        assert_eq!(
            text(&s[0]),
            format!(
                "/*M!100102 SET STATEMENT sql_mode='{RELAXED_SQL_MODE}' FOR */ INSERT \
                 /*+ SET_VAR(sql_mode='{RELAXED_SQL_MODE}') */ IGNORE INTO `d`.`t` (`id`,`e`,`z`) \
                 VALUES (1,_binary'a',_binary'x'),(2,_binary'',_binary'x')"
            )
        );
        let u = text(&update_statement(&t, &ok, &err));
        assert!(
            u.starts_with(&format!(
                "/*M!100102 SET STATEMENT sql_mode='{RELAXED_SQL_MODE}' FOR */ UPDATE /*+ SET_VAR("
            )),
            "{u}"
        );
        // comparing with the error value needs nothing
        assert!(!text(&update_statement(&t, &err, &ok)).contains("sql_mode"));
        let up = upsert_statements_counted(&t, &[&err]);
        assert!(text(&up[0].0).starts_with("/*M!100102 SET STATEMENT"));
        assert!(text(&up[0].0).ends_with("ON DUPLICATE KEY UPDATE `e`=VALUES(`e`),`z`=VALUES(`z`)"));
        assert!(!REPLAY_SQL_MODE.contains("NO_ZERO"));
        assert_eq!(
            REPLAY_SQL_MODE.replace("STRICT_ALL_TABLES,", ""),
            RELAXED_SQL_MODE
        );
    }
}
