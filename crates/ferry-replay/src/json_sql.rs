//! MySQL binary JSON with typed scalars → a SQL expression that rebuilds the document exactly.
//!
//! MySQL's binary JSON keeps typed scalars that its text form cannot tell apart from others:
//! DATE, TIME, DATETIME/TIMESTAMP and DECIMAL "opaque" values (from `JSON_OBJECT('ts', NOW())`
//! or `JSON_OBJECT('d', CAST(9.00 AS DECIMAL(5,2)))`). Parsed back from text, a DATETIME becomes
//! a JSON string (the same text) and a DECIMAL `9.00` the double `9.0`. Towards a MySQL target
//! (a column of kind [`ferry_core::ColumnKind::Json`]) a document holding such a scalar is
//! written as an expression instead of text:
//!
//! - objects and arrays: `JSON_OBJECT(k, v, …)`, `JSON_ARRAY(v, …)`;
//! - strings and keys: `_utf8mb4'…'` literals;
//! - integers: a literal (`-5`), `CAST(n AS UNSIGNED)` for MySQL's unsigned JSON integers,
//!   `CAST(-9223372036854775808 AS SIGNED)` for the one signed value whose literal would be a
//!   DECIMAL;
//! - doubles: an approximate-value literal (`1.5e0`, `3e0`), which MySQL types DOUBLE, in
//!   Rust's shortest round-trip form (MySQL's `my_strtod` is correctly rounded: same bits);
//! - `true`, `false`, `null`: `CAST('true' AS JSON)` … (a bare `TRUE` is the integer 1);
//! - DATE, TIME, DATETIME: `CAST('…' AS DATE)`, `CAST('…' AS TIME(6))`,
//!   `CAST('…' AS DATETIME(6))` (JSON keeps the packed value, not the precision, and prints six
//!   fractional digits);
//! - DECIMAL: `CAST('9.00' AS DECIMAL(p,s))` with the precision and scale the opaque value
//!   carries (its first two bytes).
//!
//! Limits, each a definite error rather than a guess: a TIMESTAMP scalar is rebuilt as a DATETIME
//! (SQL has no expression of type TIMESTAMP outside a column: same text, same comparisons,
//! `JSON_TYPE` says `DATETIME` instead of `TIMESTAMP`); other opaque values (binary strings,
//! BIT, …) keep the `"base64:type<N>:…"` string the text path writes. Documents deeper than
//! [`MAX_DEPTH`] (MySQL's own bound) or needing an expression over [`MAX_EXPRESSION_BYTES`] are
//! refused.
//!
//! The decoded row value of such a document is its MySQL text, then one NUL byte, then the
//! expression ([`attach`], [`split`]). JSON text never holds a raw NUL (control characters are
//! escaped, and MySQL refuses them in JSON text), and the decoder refuses a text value with a NUL
//! byte for a JSON column, so the form cannot be forged by row data.

use std::fmt::Write;

use mysql_async::binlog::jsonb::{self, JsonDom, JsonNumber, JsonScalar};
use mysql_async::consts::ColumnType;

/// The deepest nesting accepted (MySQL's `JSON_DOCUMENT_MAX_DEPTH`: a scalar is depth 1).
pub const MAX_DEPTH: usize = 100;

/// The largest expression built for one document.
pub const MAX_EXPRESSION_BYTES: usize = 16 << 20;

/// Why a document has no expression.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlError {
    /// The binary JSON is malformed or impossible.
    Corrupt(String),
    /// The document is beyond [`MAX_DEPTH`] or [`MAX_EXPRESSION_BYTES`].
    TooLarge(String),
}

/// A JSON document with MySQL's scalar types, the tree the expression is built from.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    /// `YYYY-MM-DD`
    Date(String),
    /// `[-]h:mm:ss.ffffff`
    Time(String),
    /// `YYYY-MM-DD hh:mm:ss.ffffff`; `timestamp` for MySQL's TIMESTAMP scalar.
    DateTime {
        text: String,
        timestamp: bool,
    },
    Decimal {
        text: String,
        precision: u8,
        scale: u8,
    },
    /// Another opaque value, in its `base64:type<N>:…` form.
    Opaque(String),
    Array(Vec<Doc>),
    /// Keys in storage order (length, then bytes).
    Object(Vec<(String, Doc)>),
}

/// A JSON column value carrying its rebuilding expression: `text NUL expression`.
pub fn attach(text: String, expr: &str) -> Vec<u8> {
    let mut b = text.into_bytes();
    b.reserve(expr.len() + 1);
    b.push(0);
    b.extend_from_slice(expr.as_bytes());
    b
}

/// A JSON column value's text and, when [`attach`]ed, its expression.
pub fn split(b: &[u8]) -> (&[u8], Option<&[u8]>) {
    match b.iter().position(|&c| c == 0) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    }
}

fn is_typed(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_DATE
            | MYSQL_TYPE_TIME
            | MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_TIMESTAMP
    )
}

fn corrupt(e: impl std::fmt::Display) -> SqlError {
    SqlError::Corrupt(format!("binary JSON: {e}"))
}

fn too_deep() -> SqlError {
    SqlError::TooLarge(format!("the document nests deeper than {MAX_DEPTH} levels"))
}

/// True when the document holds a DATE, TIME, DATETIME, TIMESTAMP or DECIMAL scalar.
pub fn has_typed_scalars(v: &jsonb::Value<'_>) -> Result<bool, SqlError> {
    scan(v, 1)
}

fn scan(v: &jsonb::Value<'_>, depth: usize) -> Result<bool, SqlError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(match v {
        jsonb::Value::Opaque(o) => is_typed(o.value_type()),
        jsonb::Value::SmallArray(c) => {
            for x in c.iter() {
                if scan(&x.map_err(corrupt)?, depth + 1)? {
                    return Ok(true);
                }
            }
            false
        }
        jsonb::Value::LargeArray(c) => {
            for x in c.iter() {
                if scan(&x.map_err(corrupt)?, depth + 1)? {
                    return Ok(true);
                }
            }
            false
        }
        jsonb::Value::SmallObject(c) => {
            for x in c.iter() {
                if scan(&x.map_err(corrupt)?.1, depth + 1)? {
                    return Ok(true);
                }
            }
            false
        }
        jsonb::Value::LargeObject(c) => {
            for x in c.iter() {
                if scan(&x.map_err(corrupt)?.1, depth + 1)? {
                    return Ok(true);
                }
            }
            false
        }
        _ => false,
    })
}

/// The typed tree of a binary JSON document.
pub fn doc_from_jsonb(v: &jsonb::Value<'_>) -> Result<Doc, SqlError> {
    convert(v, 1)
}

fn key_text(k: &jsonb::ObjectKey<'_>) -> Result<String, SqlError> {
    std::str::from_utf8(k.value_raw())
        .map(str::to_string)
        .map_err(|e| corrupt(format!("object key: {e}")))
}

fn convert(v: &jsonb::Value<'_>, depth: usize) -> Result<Doc, SqlError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(match v {
        jsonb::Value::Null => Doc::Null,
        jsonb::Value::Bool(b) => Doc::Bool(*b),
        jsonb::Value::I16(x) => Doc::Int(i64::from(*x)),
        jsonb::Value::I32(x) => Doc::Int(i64::from(*x)),
        jsonb::Value::I64(x) => Doc::Int(*x),
        jsonb::Value::U16(x) => Doc::Uint(u64::from(*x)),
        jsonb::Value::U32(x) => Doc::Uint(u64::from(*x)),
        jsonb::Value::U64(x) => Doc::Uint(*x),
        jsonb::Value::F64(x) => Doc::Double(*x),
        jsonb::Value::String(s) => Doc::String(
            std::str::from_utf8(s.str_raw())
                .map_err(|e| corrupt(format!("string: {e}")))?
                .to_string(),
        ),
        jsonb::Value::SmallArray(c) => Doc::Array(
            c.iter()
                .map(|x| convert(&x.map_err(corrupt)?, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        jsonb::Value::LargeArray(c) => Doc::Array(
            c.iter()
                .map(|x| convert(&x.map_err(corrupt)?, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        jsonb::Value::SmallObject(c) => Doc::Object(
            c.iter()
                .map(|x| {
                    let (k, v) = x.map_err(corrupt)?;
                    Ok((key_text(&k)?, convert(&v, depth + 1)?))
                })
                .collect::<Result<_, _>>()?,
        ),
        jsonb::Value::LargeObject(c) => Doc::Object(
            c.iter()
                .map(|x| {
                    let (k, v) = x.map_err(corrupt)?;
                    Ok((key_text(&k)?, convert(&v, depth + 1)?))
                })
                .collect::<Result<_, _>>()?,
        ),
        jsonb::Value::Opaque(o) => opaque(o)?,
    })
}

fn opaque(o: &jsonb::OpaqueValue<'_>) -> Result<Doc, SqlError> {
    use ColumnType::*;
    let t = o.value_type();
    // mysql_common's own conversions give the text, as the text path prints it
    let dom = jsonb::Value::Opaque(o.clone()).parse().map_err(corrupt)?;
    Ok(match (t, dom) {
        (MYSQL_TYPE_NEWDECIMAL, JsonDom::Scalar(JsonScalar::Number(JsonNumber::Decimal(d)))) => {
            let raw = o.data_raw();
            let (precision, scale) = match raw {
                [p, s, ..] => (*p, *s),
                _ => return Err(corrupt("DECIMAL value without precision and scale")),
            };
            if scale > 30 || precision > 65 {
                return Err(corrupt(format!(
                    "DECIMAL value with precision {precision} and scale {scale}"
                )));
            }
            Doc::Decimal {
                text: d.to_string(),
                precision,
                scale,
            }
        }
        (MYSQL_TYPE_DATE, JsonDom::Scalar(JsonScalar::DateTime(x))) => Doc::Date(format!("{x:.6}")),
        (MYSQL_TYPE_TIME, JsonDom::Scalar(JsonScalar::DateTime(x))) => Doc::Time(format!("{x:.6}")),
        (MYSQL_TYPE_DATETIME | MYSQL_TYPE_TIMESTAMP, JsonDom::Scalar(JsonScalar::DateTime(x))) => {
            Doc::DateTime {
                text: format!("{x:.6}"),
                timestamp: t == MYSQL_TYPE_TIMESTAMP,
            }
        }
        (_, JsonDom::Scalar(JsonScalar::Opaque(x))) => Doc::Opaque(x.to_string()),
        (t, d) => return Err(corrupt(format!("opaque value of type {t:?} read as {d:?}"))),
    })
}

/// The expression that rebuilds a document holding typed scalars; `None` for a document without
/// any (its text is exact).
pub fn typed_expression(v: &jsonb::Value<'_>) -> Result<Option<String>, SqlError> {
    if !has_typed_scalars(v)? {
        return Ok(None);
    }
    to_sql(&doc_from_jsonb(v)?).map(Some)
}

/// The expression of a document (any document: used for the typed ones).
pub fn to_sql(d: &Doc) -> Result<String, SqlError> {
    let mut out = String::new();
    write_sql(&mut out, d, 1)?;
    Ok(out)
}

fn check_size(out: &str) -> Result<(), SqlError> {
    if out.len() > MAX_EXPRESSION_BYTES {
        return Err(SqlError::TooLarge(format!(
            "the document needs a SQL expression of more than {} MiB to keep its typed values",
            MAX_EXPRESSION_BYTES >> 20
        )));
    }
    Ok(())
}

/// A string as a `_utf8mb4'…'` literal (backslash escapes: the sessions never set
/// `NO_BACKSLASH_ESCAPES`).
pub(crate) fn write_str_literal(out: &mut String, s: &str) {
    out.push_str("_utf8mb4'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn write_sql(out: &mut String, d: &Doc, depth: usize) -> Result<(), SqlError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match d {
        Doc::Null => out.push_str("CAST('null' AS JSON)"),
        Doc::Bool(true) => out.push_str("CAST('true' AS JSON)"),
        Doc::Bool(false) => out.push_str("CAST('false' AS JSON)"),
        Doc::Int(i64::MIN) => out.push_str("CAST(-9223372036854775808 AS SIGNED)"),
        Doc::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Doc::Uint(u) => {
            let _ = write!(out, "CAST({u} AS UNSIGNED)");
        }
        Doc::Double(x) if x.is_finite() => {
            let _ = write!(out, "{x:e}");
        }
        Doc::Double(x) => return Err(SqlError::Corrupt(format!("binary JSON: a double {x}"))),
        Doc::String(s) | Doc::Opaque(s) => write_str_literal(out, s),
        Doc::Date(t) => {
            let _ = write!(out, "CAST('{t}' AS DATE)");
        }
        Doc::Time(t) => {
            let _ = write!(out, "CAST('{t}' AS TIME(6))");
        }
        Doc::DateTime { text, .. } => {
            let _ = write!(out, "CAST('{text}' AS DATETIME(6))");
        }
        Doc::Decimal {
            text,
            precision,
            scale,
        } => {
            // MySQL takes the precision of a JSON decimal from its digits; the cast must hold them
            let p = (*precision).max(*scale).max(1);
            let _ = write!(out, "CAST('{text}' AS DECIMAL({p},{scale}))");
        }
        Doc::Array(items) => {
            out.push_str("JSON_ARRAY(");
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sql(out, x, depth + 1)?;
                check_size(out)?;
            }
            out.push(')');
        }
        Doc::Object(entries) => {
            out.push_str("JSON_OBJECT(");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str_literal(out, k);
                out.push(',');
                write_sql(out, v, depth + 1)?;
                check_size(out)?;
            }
            out.push(')');
        }
    }
    check_size(out)
}

/// A document's MySQL JSON text (the format of [`crate::json`]: what a SELECT returns).
pub fn canonical_text(d: &Doc) -> String {
    let mut out = String::new();
    write_text(&mut out, d);
    out
}

fn write_text(out: &mut String, d: &Doc) {
    match d {
        Doc::Null => out.push_str("null"),
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Doc::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Doc::Double(x) => crate::json::write_double(out, *x),
        Doc::String(s) | Doc::Opaque(s) => crate::json::write_string(out, s),
        Doc::Date(t) | Doc::Time(t) | Doc::DateTime { text: t, .. } => {
            let _ = write!(out, "\"{t}\"");
        }
        Doc::Decimal { text, .. } => out.push_str(text),
        Doc::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_text(out, x);
            }
            out.push(']');
        }
        Doc::Object(entries) => {
            let mut e: Vec<&(String, Doc)> = entries.iter().collect();
            e.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
            out.push('{');
            for (i, (k, v)) in e.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                crate::json::write_string(out, k);
                out.push_str(": ");
                write_text(out, v);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Evaluates the expressions [`to_sql`] writes (a test oracle, not a SQL parser).
    struct Eval<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Eval<'_> {
        fn eat(&mut self, t: &str) -> bool {
            if self.s[self.i..].starts_with(t.as_bytes()) {
                self.i += t.len();
                true
            } else {
                false
            }
        }
        fn expect(&mut self, t: &str) {
            assert!(self.eat(t), "expected {t:?} at {}", self.i);
        }
        fn quoted(&mut self) -> String {
            self.expect("'");
            let mut out = Vec::new();
            loop {
                let c = self.s[self.i];
                self.i += 1;
                match c {
                    b'\'' => break,
                    b'\\' => {
                        let e = self.s[self.i];
                        self.i += 1;
                        out.push(match e {
                            b'0' => 0,
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b'Z' => 0x1a,
                            x => x,
                        });
                    }
                    c => out.push(c),
                }
            }
            String::from_utf8(out).expect("utf8")
        }
        fn number(&mut self) -> &str {
            let start = self.i;
            while self.i < self.s.len() && b"-+0123456789.e".contains(&self.s[self.i]) {
                self.i += 1;
            }
            std::str::from_utf8(&self.s[start..self.i]).expect("ascii")
        }
        fn expr(&mut self) -> Doc {
            if self.eat("JSON_OBJECT(") {
                let mut e = Vec::new();
                while !self.eat(")") {
                    if !e.is_empty() {
                        self.expect(",");
                    }
                    self.expect("_utf8mb4");
                    let k = self.quoted();
                    self.expect(",");
                    e.push((k, self.expr()));
                }
                return Doc::Object(e);
            }
            if self.eat("JSON_ARRAY(") {
                let mut e = Vec::new();
                while !self.eat(")") {
                    if !e.is_empty() {
                        self.expect(",");
                    }
                    e.push(self.expr());
                }
                return Doc::Array(e);
            }
            if self.eat("_utf8mb4") {
                return Doc::String(self.quoted());
            }
            if self.eat("CAST(") {
                let d = if self.s[self.i] == b'\'' {
                    let t = self.quoted();
                    if self.eat(" AS JSON)") {
                        match t.as_str() {
                            "true" => Doc::Bool(true),
                            "false" => Doc::Bool(false),
                            "null" => Doc::Null,
                            t => panic!("{t}"),
                        }
                    } else if self.eat(" AS DATE)") {
                        Doc::Date(t)
                    } else if self.eat(" AS TIME(6))") {
                        Doc::Time(t)
                    } else if self.eat(" AS DATETIME(6))") {
                        Doc::DateTime {
                            text: t,
                            timestamp: false,
                        }
                    } else {
                        self.expect(" AS DECIMAL(");
                        let p: u8 = self.number().parse().expect("p");
                        self.expect(",");
                        let s: u8 = self.number().parse().expect("s");
                        self.expect("))");
                        Doc::Decimal {
                            text: t,
                            precision: p,
                            scale: s,
                        }
                    }
                } else {
                    let n = self.number().to_string();
                    if self.eat(" AS UNSIGNED)") {
                        Doc::Uint(n.parse().expect("uint"))
                    } else {
                        self.expect(" AS SIGNED)");
                        Doc::Int(n.parse().expect("int"))
                    }
                };
                return d;
            }
            let n = self.number();
            if n.contains('e') {
                Doc::Double(n.parse().expect("double"))
            } else {
                Doc::Int(n.parse().expect("int"))
            }
        }
    }

    fn eval(sql: &str) -> Doc {
        let mut e = Eval {
            s: sql.as_bytes(),
            i: 0,
        };
        let d = e.expr();
        assert_eq!(e.i, sql.len(), "trailing text in {sql}");
        d
    }

    /// MySQL's binary JSON of a document without opaque values (`ferry_testkit::binlog_build`).
    fn encode(d: &Doc) -> Vec<u8> {
        ferry_testkit::binlog_build::jsonb(&to_json(d))
    }

    fn to_json(d: &Doc) -> serde_json::Value {
        use serde_json::Value as J;
        match d {
            Doc::Null => J::Null,
            Doc::Bool(b) => J::Bool(*b),
            Doc::Int(i) => J::from(*i),
            Doc::Uint(u) => J::from(*u),
            Doc::Double(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Doc::String(s) => J::String(s.clone()),
            Doc::Array(items) => J::Array(items.iter().map(to_json).collect()),
            Doc::Object(entries) => J::Object(entries.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
            other => panic!("not encoded: {other:?}"),
        }
    }

    fn parse_jsonb(b: &[u8]) -> jsonb::Value<'_> {
        mysql_common::io::ParseBuf(b)
            .parse::<jsonb::Value<'_>>(())
            .expect("valid binary JSON")
    }

    fn doc() -> impl Strategy<Value = Doc> {
        let leaf = prop_oneof![
            Just(Doc::Null),
            any::<bool>().prop_map(Doc::Bool),
            any::<i64>().prop_map(Doc::Int),
            (-40_000i64..40_000).prop_map(Doc::Int),
            any::<u64>().prop_map(Doc::Uint),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite() && *x != 0.0)
                .prop_map(Doc::Double),
            (-1e6f64..1e6).prop_map(|x| Doc::Double(x.round())),
            "[a-z'\\\\\"\\n\\t\\x00-\\x1f é😀]{0,12}".prop_map(Doc::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Doc::Array),
                prop::collection::btree_map("[a-z'é]{0,6}", inner, 0..6)
                    .prop_map(|m| Doc::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Without typed scalars the expression path and the text path describe the same JSON.
        #[test]
        fn expression_and_text_paths_agree(d in doc()) {
            let bin = encode(&d);
            let v = parse_jsonb(&bin);
            let text = crate::json::jsonb_to_text(&v).expect("text path");
            prop_assert_eq!(has_typed_scalars(&v), Ok(false));
            prop_assert_eq!(typed_expression(&v), Ok(None));
            let tree = doc_from_jsonb(&v).expect("tree");
            let sql = to_sql(&tree).expect("expression");
            let back = eval(&sql);
            prop_assert_eq!(canonical_text(&back), text.clone());
            prop_assert_eq!(canonical_text(&tree), text);
        }
    }

    #[test]
    fn typed_scalars_become_casts() {
        let d = Doc::Object(vec![
            (
                "ts".into(),
                Doc::DateTime {
                    text: "2024-02-29 23:01:02.000120".into(),
                    timestamp: true,
                },
            ),
            (
                "d".into(),
                Doc::Decimal {
                    text: "9.00".into(),
                    precision: 3,
                    scale: 2,
                },
            ),
            (
                "l".into(),
                Doc::Array(vec![
                    Doc::Date("2012-03-18".into()),
                    Doc::Time("-87:31:46.654321".into()),
                    Doc::Bool(true),
                    Doc::Null,
                    Doc::Int(i64::MIN),
                    Doc::Uint(7),
                    Doc::Double(3.0),
                    Doc::Double(-1.5e-7),
                    Doc::String("it's \\ \u{0}".into()),
                    Doc::Opaque("base64:type15:VQ==".into()),
                ]),
            ),
        ]);
        let sql = to_sql(&d).unwrap();
        assert_eq!(
            sql,
            "JSON_OBJECT(_utf8mb4'ts',CAST('2024-02-29 23:01:02.000120' AS DATETIME(6)),\
             _utf8mb4'd',CAST('9.00' AS DECIMAL(3,2)),_utf8mb4'l',JSON_ARRAY(\
             CAST('2012-03-18' AS DATE),CAST('-87:31:46.654321' AS TIME(6)),CAST('true' AS JSON),\
             CAST('null' AS JSON),CAST(-9223372036854775808 AS SIGNED),CAST(7 AS UNSIGNED),3e0,\
             -1.5e-7,_utf8mb4'it\\'s \\\\ \\0',_utf8mb4'base64:type15:VQ=='))"
        );
        // a scale beyond the precision still casts to a type that holds the digits
        let z = Doc::Decimal {
            text: "0.5".into(),
            precision: 0,
            scale: 1,
        };
        assert_eq!(to_sql(&z).unwrap(), "CAST('0.5' AS DECIMAL(1,1))");
        assert_eq!(
            canonical_text(&d),
            r#"{"d": 9.00, "l": ["2012-03-18", "-87:31:46.654321", true, null, -9223372036854775808, 7, 3.0, -1.5e-7, "it's \\ \u0000", "base64:type15:VQ=="], "ts": "2024-02-29 23:01:02.000120"}"#
        );
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let mut d = Doc::Int(1);
        for _ in 0..MAX_DEPTH - 1 {
            d = Doc::Array(vec![d]);
        }
        assert!(to_sql(&d).is_ok());
        let deeper = Doc::Array(vec![d]);
        assert!(matches!(to_sql(&deeper), Err(SqlError::TooLarge(m)) if m.contains("100 levels")));
        // the same bound applies to binary input
        let mut bin = vec![0x02u8, 0, 0, 4, 0]; // an empty array
        for _ in 0..MAX_DEPTH {
            // a one-element small array around the previous value
            let (t, body) = (bin[0], bin[1..].to_vec());
            let mut a = vec![0x02u8];
            a.extend_from_slice(&1u16.to_le_bytes());
            a.extend_from_slice(&((4 + 3 + body.len()) as u16).to_le_bytes());
            a.push(t);
            a.extend_from_slice(&7u16.to_le_bytes());
            a.extend_from_slice(&body);
            bin = a;
        }
        let v = parse_jsonb(&bin);
        assert_eq!(has_typed_scalars(&v), Err(too_deep()));
        // size
        let big = Doc::Array(vec![Doc::String("x".repeat(1 << 20)); 17]);
        assert!(matches!(to_sql(&big), Err(SqlError::TooLarge(m)) if m.contains("16 MiB")));
    }

    #[test]
    fn attach_and_split() {
        let b = attach("{\"a\": 1}".into(), "JSON_OBJECT(_utf8mb4'a',1)");
        assert_eq!(
            split(&b),
            (&b"{\"a\": 1}"[..], Some(&b"JSON_OBJECT(_utf8mb4'a',1)"[..]))
        );
        assert_eq!(split(b"[1]"), (&b"[1]"[..], None));
    }
}
