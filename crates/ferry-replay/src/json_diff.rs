//! MySQL partial JSON updates (`PARTIAL_UPDATE_ROWS_EVENT`, written with
//! `binlog_row_value_options=PARTIAL_JSON`) translated into SQL over the target column.
//!
//! Such an event's after image carries, for a JSON column the statement changed only with
//! `JSON_SET` / `JSON_REPLACE` / `JSON_REMOVE`, a list of logical diffs instead of the document:
//! `(REPLACE | INSERT | REMOVE, path, value)`. A MySQL replica applies the list in order with
//! `apply_json_diffs` (`sql/json_diff.cc`), whose semantics this module reproduces exactly:
//!
//! - a path never auto-wraps: each leg must meet a container of its own kind (`.key` an object,
//!   `[n]` an array, the index within bounds; `[last-n]` counts from the end);
//! - **REPLACE** `p v`: the value at `p` must exist; it is replaced;
//! - **INSERT** `p v`: the parent of `p` must exist; in an object the member must not exist yet and
//!   is added; in an array `v` is inserted at the index (clamped to the array's length: past the
//!   end it is appended), the later elements shifting right;
//! - **REMOVE** `p`: the value at `p` must exist; it is removed;
//! - the root path `$` is never valid; anything else is *rejected* (the replica stops with
//!   `ER_COULD_NOT_APPLY_JSON_DIFF`).
//!
//! Each diff becomes one expression and one guard over the column ([`diff_sql`]):
//! `JSON_REPLACE(c, p, v)`, `JSON_INSERT(c, p, v)` (object member), `JSON_ARRAY_INSERT(c, p, v)`
//! (array cell: the one function that inserts *before* an existing element, and appends past the
//! end, as the diff does), `JSON_REMOVE(c, p)`. These functions are lenient (a missing path is a
//! no-op, `[0]` on a scalar auto-wraps), so the guard states the exact conditions: every leg's
//! container type (`JSON_TYPE(JSON_EXTRACT(c, prefix))`) and the existence or absence of the
//! path (`JSON_CONTAINS_PATH`). The applier runs one `UPDATE … SET c = <expression> WHERE <row>
//! AND <guard>` per diff, so each guard sees the document the previous diffs left, and a
//! statement that matches no row means the target's document differs from the source's: a
//! definite error, never a wrong or truncated document.
//!
//! Targets: a MySQL JSON column (value `CAST('…' AS JSON)`, or the expression of
//! [`crate::json_sql`] for documents with typed scalars) and a MariaDB JSON column, which is
//! LONGTEXT (value `JSON_EXTRACT('…', '$')`, which MariaDB inserts as JSON, not as a string).
//! MariaDB's functions keep the text of the untouched parts and insert the new parts as written,
//! so the stored text is the same JSON value as on the source but may differ from MySQL's
//! canonical text in member order (MySQL orders keys by length, then bytes). `[last…]` paths are
//! refused for text columns: MariaDB's `JSON_ARRAY_INSERT` inserts *after* `[last]`, MySQL
//! before it, and MariaDB before 10.9 has no `last`.

use mysql_async::binlog::jsondiff::{JsonDiff, JsonDiffOperation};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value;

/// The most legs a path may have (MySQL's JSON depth bound).
pub const MAX_LEGS: usize = crate::json_sql::MAX_DEPTH;

/// An array index of a path leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// `[n]`
    Start(u64),
    /// `[last]` (0) or `[last-n]`
    End(u64),
}

/// One leg of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leg {
    /// `.name` or `."name"`
    Member(String),
    /// `[n]`, `[last-n]`
    Cell(Index),
}

/// The operation of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Replace,
    Insert,
    Remove,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Replace => "REPLACE",
            Op::Insert => "INSERT",
            Op::Remove => "REMOVE",
        }
    }
}

/// The new value of a REPLACE or INSERT.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffValue {
    /// MySQL's JSON text of the value.
    pub text: String,
    /// For a MySQL JSON target, the expression that keeps its typed scalars
    /// ([`crate::json_sql`]), when it has some.
    pub typed: Option<String>,
}

/// One logical diff of a JSON column.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub op: Op,
    /// The path as the binlog spells it (for messages).
    pub path_text: String,
    pub path: Vec<Leg>,
    /// `None` for REMOVE.
    pub value: Option<DiffValue>,
}

impl Diff {
    /// `REPLACE $.a` (for messages).
    pub fn describe(&self) -> String {
        format!("{} {}", self.op.name(), self.path_text)
    }
}

/// The diffs of one column of one row, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDiffs {
    /// The column's index in the table.
    pub column: usize,
    pub diffs: Vec<Diff>,
}

/// What the target column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A MySQL JSON column.
    Json,
    /// A text column holding JSON (MariaDB's JSON is LONGTEXT).
    Text,
}

/// The SQL of one diff over a column: `SET c = set WHERE … AND guard`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffSql {
    pub set: String,
    pub guard: String,
}

/// Parses a path as MySQL writes it in a diff (`Json_path::to_string`): `$`, then `.name`,
/// `."quoted name"` (JSON string escapes), `[n]`, `[last]`, `[last-n]`. Wildcards and ranges are
/// refused (MySQL never logs them in a diff).
pub fn parse_path(p: &str) -> Result<Vec<Leg>, String> {
    let bad = |why: &str| format!("JSON path {p:?}: {why}");
    let b = p.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if b.get(i) != Some(&b'$') {
        return Err(bad("does not start with $"));
    }
    i += 1;
    let mut legs = Vec::new();
    loop {
        skip_ws(&mut i);
        match b.get(i) {
            None => break,
            Some(b'.') => {
                i += 1;
                skip_ws(&mut i);
                if b.get(i) == Some(&b'"') {
                    let (name, used) = json_string(&p[i..]).ok_or_else(|| bad("bad quoted member name"))?;
                    legs.push(Leg::Member(name));
                    i += used;
                } else {
                    let start = i;
                    while i < b.len()
                        && !matches!(b[i], b'.' | b'[' | b'*' | b'"')
                        && !b[i].is_ascii_whitespace()
                    {
                        i += 1;
                    }
                    if i == start {
                        return Err(bad("empty or wildcard member"));
                    }
                    legs.push(Leg::Member(p[start..i].to_string()));
                }
            }
            Some(b'[') => {
                i += 1;
                skip_ws(&mut i);
                let idx = if p[i..].starts_with("last") {
                    i += 4;
                    skip_ws(&mut i);
                    if b.get(i) == Some(&b'-') {
                        i += 1;
                        skip_ws(&mut i);
                        Index::End(number(b, &mut i).ok_or_else(|| bad("bad index after last-"))?)
                    } else {
                        Index::End(0)
                    }
                } else {
                    Index::Start(number(b, &mut i).ok_or_else(|| bad("bad array index"))?)
                };
                skip_ws(&mut i);
                if b.get(i) != Some(&b']') {
                    return Err(bad("array leg not closed (ranges and wildcards are not diffs)"));
                }
                i += 1;
                legs.push(Leg::Cell(idx));
            }
            Some(_) => return Err(bad("unexpected character (wildcards are not diffs)")),
        }
        if legs.len() > MAX_LEGS {
            return Err(bad(&format!("more than {MAX_LEGS} legs")));
        }
    }
    Ok(legs)
}

fn number(b: &[u8], i: &mut usize) -> Option<u64> {
    let start = *i;
    while *i < b.len() && b[*i].is_ascii_digit() {
        *i += 1;
    }
    if *i == start || *i - start > 10 {
        return None;
    }
    std::str::from_utf8(&b[start..*i]).ok()?.parse().ok()
}

/// A JSON string at the start of `s`: its value and the bytes it used.
fn json_string(s: &str) -> Option<(String, usize)> {
    let mut it = s.char_indices();
    if it.next()?.1 != '"' {
        return None;
    }
    let mut out = String::new();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = it.next()?;
                out.push(match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let mut hex = String::new();
                        for _ in 0..4 {
                            hex.push(it.next()?.1);
                        }
                        let u = u32::from_str_radix(&hex, 16).ok()?;
                        char::from_u32(u)?
                    }
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// The path in the syntax MySQL and MariaDB both read: bare ASCII identifiers, other member
/// names double-quoted (`"` and `\` escaped). A name with a control character is refused (the
/// two servers' path parsers treat its escapes differently).
pub fn render_path(legs: &[Leg]) -> Result<String, String> {
    let mut out = String::from("$");
    for l in legs {
        match l {
            Leg::Member(m) => {
                let bare = m
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if bare {
                    out.push('.');
                    out.push_str(m);
                } else {
                    if m.chars().any(char::is_control) {
                        return Err(format!("member name {m:?} holds a control character"));
                    }
                    out.push_str(".\"");
                    for c in m.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
            Leg::Cell(Index::Start(n)) => out.push_str(&format!("[{n}]")),
            Leg::Cell(Index::End(0)) => out.push_str("[last]"),
            Leg::Cell(Index::End(n)) => out.push_str(&format!("[last-{n}]")),
        }
    }
    Ok(out)
}

/// A SQL string literal `_utf8mb4'…'`.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 12);
    crate::json_sql::write_str_literal(&mut out, s);
    out
}

/// The SQL of one diff over the (quoted) column `col`. An error says why the diff cannot be
/// applied exactly (the root path, a `last` index on a text column, a value missing).
pub fn diff_sql(col: &str, flavor: Flavor, d: &Diff) -> Result<DiffSql, String> {
    let Some(last) = d.path.last() else {
        return Err("a diff of the whole document ($), which MySQL never applies as a diff".into());
    };
    if flavor == Flavor::Text && d.path.iter().any(|l| matches!(l, Leg::Cell(Index::End(_)))) {
        return Err(
            "a [last] array index on a text (MariaDB JSON) column, where JSON_ARRAY_INSERT places it \
             differently than MySQL"
                .into(),
        );
    }
    let path = literal(&render_path(&d.path)?);
    // every leg meets a container of its kind: no auto-wrapping
    let mut guard = Vec::new();
    for i in 0..d.path.len() {
        let prefix = literal(&render_path(&d.path[..i])?);
        let kind = match d.path[i] {
            Leg::Member(_) => "OBJECT",
            Leg::Cell(_) => "ARRAY",
        };
        guard.push(format!("JSON_TYPE(JSON_EXTRACT({col}, {prefix})) <=> '{kind}'"));
    }
    let contains = format!("JSON_CONTAINS_PATH({col}, 'one', {path})");
    let value = || -> Result<String, String> {
        let v = d
            .value
            .as_ref()
            .ok_or_else(|| format!("{} without a value", d.op.name()))?;
        Ok(match (flavor, &v.typed) {
            (Flavor::Json, Some(expr)) => expr.clone(),
            (Flavor::Json, None) => format!("CAST({} AS JSON)", literal(&v.text)),
            (Flavor::Text, _) => format!("JSON_EXTRACT({}, '$')", literal(&v.text)),
        })
    };
    let set = match (d.op, last) {
        (Op::Replace, _) => {
            guard.push(format!("{contains} <=> 1"));
            format!("JSON_REPLACE({col}, {path}, {})", value()?)
        }
        (Op::Remove, _) => {
            guard.push(format!("{contains} <=> 1"));
            format!("JSON_REMOVE({col}, {path})")
        }
        (Op::Insert, Leg::Member(_)) => {
            guard.push(format!("{contains} <=> 0"));
            format!("JSON_INSERT({col}, {path}, {})", value()?)
        }
        (Op::Insert, Leg::Cell(_)) => format!("JSON_ARRAY_INSERT({col}, {path}, {})", value()?),
    };
    Ok(DiffSql {
        set,
        guard: guard.join(" AND "),
    })
}

/// One binlog diff as a [`Diff`].
fn convert(d: &JsonDiff<'_>) -> Result<Diff, String> {
    let path_text = std::str::from_utf8(d.path())
        .map_err(|_| "a JSON path that is not UTF-8".to_string())?
        .to_string();
    let path = parse_path(&path_text)?;
    let op = match d.operation() {
        JsonDiffOperation::REPLACE => Op::Replace,
        JsonDiffOperation::INSERT => Op::Insert,
        JsonDiffOperation::REMOVE => Op::Remove,
    };
    let value = match (op, d.value()) {
        (Op::Remove, _) => None,
        (_, None) => return Err(format!("{} {path_text} without a value", op.name())),
        (_, Some(v)) => Some(DiffValue {
            text: crate::json::jsonb_to_text(v)?,
            typed: crate::json_sql::typed_expression(v).map_err(|e| match e {
                crate::json_sql::SqlError::Corrupt(m) | crate::json_sql::SqlError::TooLarge(m) => m,
            })?,
        }),
    };
    Ok(Diff {
        op,
        path_text,
        path,
        value,
    })
}

/// Takes the diffs out of one after image: each diff-carrying value becomes a NULL placeholder
/// (never written: the applier leaves such a column to its diffs). Returns the columns' diffs.
pub fn take_diffs(row: &mut [BinlogValue<'static>]) -> Result<Vec<ColumnDiffs>, String> {
    let mut out = Vec::new();
    for (column, v) in row.iter_mut().enumerate() {
        if let BinlogValue::JsonDiff(list) = v {
            let diffs = list
                .iter()
                .map(convert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| format!("column {}: {m}", column + 1))?;
            out.push(ColumnDiffs { column, diffs });
            *v = BinlogValue::Value(Value::NULL);
        }
    }
    Ok(out)
}

/// True when a row image carries a diff.
pub fn has_diffs(row: &[BinlogValue<'_>]) -> bool {
    row.iter().any(|v| matches!(v, BinlogValue::JsonDiff(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_as_mysql_writes_them_and_render_for_both_servers() {
        let p = parse_path(r#"$.a."b c"[3][last][last-2]."q\"\\"."é""#).unwrap();
        assert_eq!(
            p,
            vec![
                Leg::Member("a".into()),
                Leg::Member("b c".into()),
                Leg::Cell(Index::Start(3)),
                Leg::Cell(Index::End(0)),
                Leg::Cell(Index::End(2)),
                Leg::Member("q\"\\".into()),
                Leg::Member("é".into()),
            ]
        );
        assert_eq!(
            render_path(&p).unwrap(),
            r#"$.a."b c"[3][last][last-2]."q\"\\"."é""#
        );
        assert_eq!(parse_path("$").unwrap(), vec![]);
        assert_eq!(
            parse_path("$ . a [ 1 ]").unwrap(),
            vec![Leg::Member("a".into()), Leg::Cell(Index::Start(1))]
        );
        for bad in [
            "a",
            "$.*",
            "$[*]",
            "$**.a",
            "$[1 to 3]",
            "$.",
            "$[",
            "$[x]",
            "$.\"open",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        let deep = format!("${}", ".a".repeat(MAX_LEGS + 1));
        assert!(parse_path(&deep).is_err());
        assert!(render_path(&[Leg::Member("a\u{1}".into())]).is_err());
    }

    fn diff(op: Op, path: &str, value: Option<&str>) -> Diff {
        Diff {
            op,
            path_text: path.into(),
            path: parse_path(path).unwrap(),
            value: value.map(|v| DiffValue {
                text: v.into(),
                typed: None,
            }),
        }
    }

    #[test]
    fn each_operation_has_its_function_and_exact_guard() {
        let s = diff_sql(
            "`doc`",
            Flavor::Text,
            &diff(Op::Replace, "$.a[1]", Some("{\"x\": 1}")),
        )
        .unwrap();
        assert_eq!(
            s.set,
            "JSON_REPLACE(`doc`, _utf8mb4'$.a[1]', JSON_EXTRACT(_utf8mb4'{\"x\": 1}', '$'))"
        );
        assert_eq!(
            s.guard,
            "JSON_TYPE(JSON_EXTRACT(`doc`, _utf8mb4'$')) <=> 'OBJECT' AND \
             JSON_TYPE(JSON_EXTRACT(`doc`, _utf8mb4'$.a')) <=> 'ARRAY' AND \
             JSON_CONTAINS_PATH(`doc`, 'one', _utf8mb4'$.a[1]') <=> 1"
        );
        let s = diff_sql("`doc`", Flavor::Json, &diff(Op::Insert, "$.k", Some("\"v\""))).unwrap();
        assert_eq!(
            s.set,
            "JSON_INSERT(`doc`, _utf8mb4'$.k', CAST(_utf8mb4'\"v\"' AS JSON))"
        );
        assert!(s
            .guard
            .ends_with("JSON_CONTAINS_PATH(`doc`, 'one', _utf8mb4'$.k') <=> 0"));
        let s = diff_sql("`doc`", Flavor::Json, &diff(Op::Insert, "$[last]", Some("1"))).unwrap();
        assert_eq!(
            s.set,
            "JSON_ARRAY_INSERT(`doc`, _utf8mb4'$[last]', CAST(_utf8mb4'1' AS JSON))"
        );
        assert_eq!(s.guard, "JSON_TYPE(JSON_EXTRACT(`doc`, _utf8mb4'$')) <=> 'ARRAY'");
        let s = diff_sql("`doc`", Flavor::Json, &diff(Op::Remove, "$.a", None)).unwrap();
        assert_eq!(s.set, "JSON_REMOVE(`doc`, _utf8mb4'$.a')");
        // typed scalars keep their expression on a MySQL target
        let mut d = diff(Op::Replace, "$.t", Some("\"2024-01-02\""));
        d.value.as_mut().unwrap().typed = Some("CAST('2024-01-02' AS DATE)".into());
        assert!(diff_sql("`j`", Flavor::Json, &d)
            .unwrap()
            .set
            .contains("CAST('2024-01-02' AS DATE)"));
        // what cannot be exact is an error
        assert!(diff_sql("`doc`", Flavor::Json, &diff(Op::Replace, "$", Some("1"))).is_err());
        assert!(diff_sql("`doc`", Flavor::Text, &diff(Op::Remove, "$[last]", None)).is_err());
        assert!(diff_sql("`doc`", Flavor::Text, &diff(Op::Insert, "$.a", None)).is_err());
        // quotes in member names stay inside the literal
        let s = diff_sql("`doc`", Flavor::Text, &diff(Op::Remove, r#"$."it's""#, None)).unwrap();
        assert_eq!(s.set, r#"JSON_REMOVE(`doc`, _utf8mb4'$."it\'s"')"#);
    }
}
