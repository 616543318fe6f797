//! Evaluating a row filter ([`RowFilter`]) in Ferry, over one row image, with MySQL's semantics:
//! what the replay needs to tell whether a changed row is inside a job's filter before and after
//! the change.
//!
//! Only a subset that Ferry reproduces exactly is compiled; anything else is refused with the
//! reason when the job is checked (never guessed at run time):
//! - conditions: `=`, `<>`/`!=`, `<`, `<=`, `>`, `>=`, `<=>`, `IS [NOT] NULL`, `[NOT] IN (list)`,
//!   `[NOT] BETWEEN`, `AND`, `OR`, `XOR`, `NOT`, `TRUE`/`FALSE`, parentheses;
//! - operands: a column or a literal (no functions, arithmetic or `LIKE`);
//! - integer, DECIMAL and YEAR columns against integer and decimal literals (compared exactly,
//!   as decimals; floating-point literals such as `1e3` and FLOAT/DOUBLE columns are refused);
//! - DATE and DATETIME columns against `'YYYY-MM-DD[ hh:mm:ss[.ffffff]]'` literals (`DATE '…'`,
//!   `TIMESTAMP '…'` too; a literal that is not a valid date is refused), compared as date-times;
//!   TIMESTAMP columns are refused (their comparison depends on the session time zone);
//! - string columns under a binary collation (`binary`, `*_bin` of ascii, latin1, utf8, utf8mb3
//!   and utf8mb4, PAD SPACE or NO PAD) against string literals (ASCII only for non-UTF-8
//!   columns); case- or accent-insensitive collations are refused (Ferry does not reproduce
//!   their weights);
//! - two columns only when they compare the same way (both numeric, both temporal, or both
//!   strings of the same collation).
//!
//! NULL follows SQL's three-valued logic; a row passes when the condition is TRUE.

use std::cmp::Ordering;

use mysql_async::Value;
use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value as SqlValue};

use crate::filter::RowFilter;
use crate::table::{ColumnKind, TableSchema};

/// How two operands compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Exactly, as decimal numbers.
    Numeric,
    /// As date-times.
    Temporal,
    /// As bytes; `pad`: PAD SPACE (the shorter side is extended with spaces).
    Bytes { pad: bool, collation: String },
}

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    /// Sign (true: negative), integer digits without leading zeros, fraction digits without
    /// trailing zeros; zero is (false, "", "").
    Dec(bool, String, String),
    /// Year, month, day, hour, minute, second, microsecond.
    Dt([u32; 7]),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Operand {
    Col(usize),
    Lit(V),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    NullSafeEq,
}

#[derive(Debug, Clone)]
enum Node {
    Const(Option<bool>),
    Cmp(CmpOp, Operand, Operand, Mode),
    IsNull(Operand, bool),
    In {
        expr: Operand,
        list: Vec<Operand>,
        mode: Mode,
        negated: bool,
    },
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Xor(Box<Node>, Box<Node>),
    Not(Box<Node>),
}

/// A filter compiled against one table's columns.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Node,
    /// Per column: how its values are read (`None`: not read by the filter).
    columns: Vec<Option<Mode>>,
    names: Vec<String>,
}

/// The compile-time type of an operand.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Null,
    Number(V),
    /// A string literal (may become a date-time or stay a string, by the other side).
    StrLit(String),
    Col(usize, Mode),
}

fn refuse<T>(what: impl Into<String>) -> Result<T, String> {
    Err(format!(
        "{} (Ferry must evaluate the filter on every replayed row exactly as the server would)",
        what.into()
    ))
}

/// The comparison mode of a column, or why its values cannot be compared exactly.
fn column_mode(t: &TableSchema, i: usize) -> Result<Mode, String> {
    let c = &t.columns[i];
    match c.kind {
        ColumnKind::Int { .. } | ColumnKind::Decimal | ColumnKind::Year => Ok(Mode::Numeric),
        ColumnKind::Date | ColumnKind::DateTime => Ok(Mode::Temporal),
        ColumnKind::Binary => Ok(Mode::Bytes {
            pad: false,
            collation: "binary".into(),
        }),
        ColumnKind::Text => {
            let coll = c.collation.clone().unwrap_or_default().to_ascii_lowercase();
            let cs = c.charset.clone().unwrap_or_default().to_ascii_lowercase();
            let charset_ok = matches!(
                cs.as_str(),
                "ascii" | "latin1" | "utf8" | "utf8mb3" | "utf8mb4" | "binary"
            );
            if !charset_ok || !(coll.ends_with("_bin") || coll == "binary") {
                return refuse(format!(
                    "{} is compared under the collation {coll}, which Ferry does not reproduce: filter on a \
                     column with a binary collation (e.g. utf8mb4_bin) or a number or date column",
                    c.name
                ));
            }
            let pad = !(coll.contains("nopad") || coll.contains("0900") || coll == "binary");
            Ok(Mode::Bytes { pad, collation: coll })
        }
        ColumnKind::Timestamp => refuse(format!(
            "{} is a TIMESTAMP, whose comparison depends on the session time zone",
            c.name
        )),
        ColumnKind::Float | ColumnKind::Double => refuse(format!(
            "{} is a floating-point column (approximate comparison)",
            c.name
        )),
        _ => refuse(format!(
            "{} is of type {}, which Ferry does not compare in a filter",
            c.name, c.data_type
        )),
    }
}

/// Parses a decimal literal (`12`, `-0.50`, `.5`); `None` for anything else.
fn parse_dec(s: &str) -> Option<V> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    if (i.is_empty() && f.is_empty())
        || !i.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let i = i.trim_start_matches('0').to_string();
    let f = f.trim_end_matches('0').to_string();
    let zero = i.is_empty() && f.is_empty();
    Some(V::Dec(neg && !zero, i, f))
}

fn cmp_dec(a: (&bool, &String, &String), b: (&bool, &String, &String)) -> Ordering {
    let mag = |i: &String, f: &String, j: &String, g: &String| {
        i.len()
            .cmp(&j.len())
            .then_with(|| i.cmp(j))
            .then_with(|| f.as_str().cmp(g.as_str()))
    };
    match (a.0, b.0) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => mag(a.1, a.2, b.1, b.2),
        (true, true) => mag(b.1, b.2, a.1, a.2),
    }
}

/// Parses `YYYY-MM-DD[ hh:mm:ss[.ffffff]]` into a valid date-time; `None` otherwise.
fn parse_dt(s: &str) -> Option<[u32; 7]> {
    let s = s.trim();
    if matches!(s, "0000-00-00" | "0000-00-00 00:00:00") {
        return Some([0; 7]);
    }
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, dd] = d.as_slice() else { return None };
    let num = |p: &str, max_len: usize| -> Option<u32> {
        if p.is_empty() || p.len() > max_len || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    if y.len() != 4 {
        return None;
    }
    let (y, m, dd) = (num(y, 4)?, num(m, 2)?, num(dd, 2)?);
    if !(1..=12).contains(&m) || dd == 0 || dd > days_in_month(y, m) {
        return None;
    }
    let mut out = [y, m, dd, 0, 0, 0, 0];
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let p: Vec<&str> = hms.split(':').collect();
        let [h, mi, sec] = p.as_slice() else { return None };
        let (h, mi, sec) = (num(h, 2)?, num(mi, 2)?, num(sec, 2)?);
        if h > 23 || mi > 59 || sec > 59 || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let us = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<6}").parse().ok()?
        };
        out[3..].copy_from_slice(&[h, mi, sec, us]);
    }
    Some(out)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Compares bytes; with `pad`, the shorter side is extended with spaces (PAD SPACE).
fn cmp_bytes(a: &[u8], b: &[u8], pad: bool) -> Ordering {
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        Ordering::Equal if pad => {
            let (rest, sign) = if a.len() > n {
                (&a[n..], Ordering::Greater)
            } else {
                (&b[n..], Ordering::Less)
            };
            match rest.iter().find(|&&c| c != b' ') {
                None => Ordering::Equal,
                Some(&c) if c > b' ' => sign,
                Some(_) => sign.reverse(),
            }
        }
        Ordering::Equal => a.len().cmp(&b.len()),
        o => o,
    }
}

impl CompiledFilter {
    /// Compiles a filter against the source table; the error says what Ferry cannot evaluate.
    pub fn compile(f: &RowFilter, t: &TableSchema) -> Result<CompiledFilter, String> {
        let mut c = CompiledFilter {
            root: Node::Const(None),
            columns: vec![None; t.columns.len()],
            names: t.columns.iter().map(|c| c.name.clone()).collect(),
        };
        c.root = c.node(f.expr(), t)?;
        Ok(c)
    }

    fn node(&mut self, e: &Expr, t: &TableSchema) -> Result<Node, String> {
        match e {
            Expr::Nested(x) => self.node(x, t),
            Expr::Value(v) if matches!(v.value, SqlValue::Boolean(_)) => {
                Ok(Node::Const(Some(v.value == SqlValue::Boolean(true))))
            }
            Expr::BinaryOp { left, op, right } => {
                let bool_op = |n: fn(Box<Node>, Box<Node>) -> Node, s: &mut Self| -> Result<Node, String> {
                    Ok(n(Box::new(s.node(left, t)?), Box::new(s.node(right, t)?)))
                };
                let cmp = match op {
                    BinaryOperator::And => return bool_op(Node::And, self),
                    BinaryOperator::Or => return bool_op(Node::Or, self),
                    BinaryOperator::Xor => return bool_op(Node::Xor, self),
                    BinaryOperator::Eq => CmpOp::Eq,
                    BinaryOperator::NotEq => CmpOp::Ne,
                    BinaryOperator::Lt => CmpOp::Lt,
                    BinaryOperator::LtEq => CmpOp::Le,
                    BinaryOperator::Gt => CmpOp::Gt,
                    BinaryOperator::GtEq => CmpOp::Ge,
                    BinaryOperator::Spaceship => CmpOp::NullSafeEq,
                    other => return refuse(format!("the operator {other} is not evaluated by Ferry")),
                };
                let (l, r) = (self.operand(left, t)?, self.operand(right, t)?);
                let (mode, l, r) = self.pair(l, r)?;
                Ok(Node::Cmp(cmp, l, r, mode))
            }
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => Ok(Node::Not(Box::new(self.node(expr, t)?))),
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                let o = match self.operand(x, t)? {
                    Ty::Col(i, m) => {
                        self.columns[i] = Some(m);
                        Operand::Col(i)
                    }
                    Ty::Null => Operand::Lit(V::Null),
                    _ => Operand::Lit(V::Bytes(Vec::new())),
                };
                Ok(Node::IsNull(o, matches!(e, Expr::IsNotNull(_))))
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.operand(expr, t)?;
                let (m1, a, lo) = self.pair(x.clone(), self.operand(low, t)?)?;
                let (m2, b, hi) = self.pair(x, self.operand(high, t)?)?;
                let n = Node::And(
                    Box::new(Node::Cmp(CmpOp::Ge, a, lo, m1)),
                    Box::new(Node::Cmp(CmpOp::Le, b, hi, m2)),
                );
                Ok(if *negated { Node::Not(Box::new(n)) } else { n })
            }
            Expr::In {
                expr,
                target: InTarget::List(items),
                negated,
                ..
            } => {
                let x = self.operand(expr, t)?;
                let mut mode = None;
                let mut ops = Vec::new();
                let mut first = None;
                for it in items {
                    let (m, a, b) = self.pair(x.clone(), self.operand(it, t)?)?;
                    if mode.as_ref().is_some_and(|p| p != &m) {
                        return refuse("an IN list whose values compare in different ways");
                    }
                    mode = Some(m);
                    first.get_or_insert(a);
                    ops.push(b);
                }
                let (Some(mode), Some(expr)) = (mode, first) else {
                    return refuse("an empty IN list");
                };
                Ok(Node::In {
                    expr,
                    list: ops,
                    mode,
                    negated: *negated,
                })
            }
            other => {
                let s: String = other.to_string().chars().take(40).collect();
                refuse(format!("{s:?} is not a condition Ferry evaluates (use comparisons of a column with a literal, IS NULL, IN, BETWEEN, AND/OR/NOT)"))
            }
        }
    }

    fn operand(&self, e: &Expr, t: &TableSchema) -> Result<Ty, String> {
        match e {
            Expr::Nested(x) => self.operand(x, t),
            Expr::Identifier(id) => {
                let i = t
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(&id.value))
                    .ok_or_else(|| format!("the filter reads {}, which is not a column of {}", id.value, t.display_name()))?;
                Ok(Ty::Col(i, column_mode(t, i)?))
            }
            Expr::Value(v) => match &v.value {
                SqlValue::Null => Ok(Ty::Null),
                SqlValue::Number(..) => match Self::number(e) {
                    Some(v) => Ok(Ty::Number(v)),
                    None => refuse(format!("the floating-point literal {e} is not evaluated by Ferry")),
                },
                SqlValue::SingleQuotedString(s) => Ok(Ty::StrLit(s.clone())),
                other => refuse(format!("the literal {other} (floating-point, hexadecimal or national literals) is not evaluated by Ferry")),
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus | UnaryOperator::Plus,
                ..
            } => match Self::number(e) {
                Some(v) => Ok(Ty::Number(v)),
                None => refuse("arithmetic is not evaluated by Ferry"),
            },
            Expr::TypedString(ts) => match &ts.value.value {
                SqlValue::SingleQuotedString(s) if parse_dt(s).is_some() => Ok(Ty::StrLit(s.clone())),
                _ => refuse(format!("the literal {e} is not a valid date or date-time")),
            },
            other => {
                let s: String = other.to_string().chars().take(40).collect();
                refuse(format!(
                    "{s:?} is not evaluated by Ferry: compare columns with literals (no functions or arithmetic)"
                ))
            }
        }
    }

    /// The literal value of a numeric operand expression.
    fn number(e: &Expr) -> Option<V> {
        match e {
            Expr::Nested(x) => Self::number(x),
            Expr::Value(v) => match &v.value {
                SqlValue::Number(n, _) => parse_dec(n),
                _ => None,
            },
            Expr::UnaryOp { op, expr } => match (op, Self::number(expr)?) {
                (UnaryOperator::Minus, V::Dec(neg, i, f)) => {
                    let zero = i.is_empty() && f.is_empty();
                    Some(V::Dec(!neg && !zero, i, f))
                }
                (UnaryOperator::Plus, v) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    /// Decides how two operands compare, and their runtime form.
    fn pair(&mut self, a: Ty, b: Ty) -> Result<(Mode, Operand, Operand), String> {
        let mode = match (&a, &b) {
            (Ty::Col(_, m), Ty::Col(_, n)) => {
                if m != n {
                    return refuse("two columns that compare in different ways (types or collations)");
                }
                m.clone()
            }
            (Ty::Col(_, m), _) | (_, Ty::Col(_, m)) => m.clone(),
            (Ty::Null, _) | (_, Ty::Null) => Mode::Numeric,
            _ => return refuse("a comparison of two literals"),
        };
        let conv = |s: &mut Self, ty: Ty| -> Result<Operand, String> {
            match (ty, &mode) {
                (Ty::Col(i, m), _) => {
                    s.columns[i] = Some(m);
                    Ok(Operand::Col(i))
                }
                (Ty::Null, _) => Ok(Operand::Lit(V::Null)),
                (Ty::Number(v), Mode::Numeric) => Ok(Operand::Lit(v)),
                (Ty::StrLit(st), Mode::Temporal) => parse_dt(&st)
                    .map(|d| Operand::Lit(V::Dt(d)))
                    .ok_or_else(|| format!("{st:?} is not a valid date or date-time 'YYYY-MM-DD[ hh:mm:ss]'")),
                (Ty::StrLit(st), Mode::Bytes { collation, .. }) => {
                    let utf8 = collation.starts_with("utf8") || collation == "binary";
                    if !utf8 && !st.is_ascii() {
                        return refuse(format!("the non-ASCII literal {st:?} against a {collation} column"));
                    }
                    Ok(Operand::Lit(V::Bytes(st.into_bytes())))
                }
                (Ty::Number(_), _) => refuse("a number compared with a string or date column (MySQL converts them to floating point)"),
                (Ty::StrLit(st), Mode::Numeric) => refuse(format!(
                    "the string {st:?} compared with a number column (MySQL converts it to floating point): write the number without quotes"
                )),
            }
        };
        let (oa, ob) = (conv(self, a)?, conv(self, b)?);
        Ok((mode, oa, ob))
    }

    /// Evaluates the filter on one row image (values in the table's column order, as the
    /// binary protocol returns them): `Ok(true)` when the row is inside the filter.
    pub fn matches(&self, row: &[Value]) -> Result<bool, String> {
        Ok(self.eval(&self.root, row)? == Some(true))
    }

    fn value(&self, o: &Operand, row: &[Value]) -> Result<V, String> {
        let i = match o {
            Operand::Lit(v) => return Ok(v.clone()),
            Operand::Col(i) => *i,
        };
        let raw = row
            .get(i)
            .ok_or_else(|| format!("the row image has no column {}", self.names[i]))?;
        let mode = self.columns[i].as_ref().unwrap_or(&Mode::Numeric);
        let bad = || {
            format!(
                "unexpected value {raw:?} for the filter's column {}",
                self.names[i]
            )
        };
        Ok(match (raw, mode) {
            (Value::NULL, _) => V::Null,
            (Value::Int(n), Mode::Numeric) => parse_dec(&n.to_string()).ok_or_else(bad)?,
            (Value::UInt(n), Mode::Numeric) => parse_dec(&n.to_string()).ok_or_else(bad)?,
            (Value::Bytes(b), Mode::Numeric) => {
                parse_dec(std::str::from_utf8(b).map_err(|_| bad())?).ok_or_else(bad)?
            }
            (Value::Date(y, m, d, h, mi, s, us), Mode::Temporal) => V::Dt([
                *y as u32, *m as u32, *d as u32, *h as u32, *mi as u32, *s as u32, *us,
            ]),
            (Value::Bytes(b), Mode::Temporal) => {
                let s = std::str::from_utf8(b).map_err(|_| bad())?;
                V::Dt(parse_dt(s).ok_or_else(bad)?)
            }
            (Value::Bytes(b), Mode::Bytes { .. }) => V::Bytes(b.clone()),
            _ => return Err(bad()),
        })
    }

    fn compare(&self, a: &V, b: &V, mode: &Mode) -> Option<Ordering> {
        match (a, b) {
            (V::Null, _) | (_, V::Null) => None,
            (V::Dec(n1, i1, f1), V::Dec(n2, i2, f2)) => Some(cmp_dec((n1, i1, f1), (n2, i2, f2))),
            (V::Dt(x), V::Dt(y)) => Some(x.cmp(y)),
            (V::Bytes(x), V::Bytes(y)) => {
                let pad = matches!(mode, Mode::Bytes { pad: true, .. });
                Some(cmp_bytes(x, y, pad))
            }
            _ => None,
        }
    }

    fn eval(&self, n: &Node, row: &[Value]) -> Result<Option<bool>, String> {
        Ok(match n {
            Node::Const(b) => *b,
            Node::Cmp(op, a, b, mode) => {
                let (x, y) = (self.value(a, row)?, self.value(b, row)?);
                if *op == CmpOp::NullSafeEq {
                    return Ok(Some(match (&x, &y) {
                        (V::Null, V::Null) => true,
                        (V::Null, _) | (_, V::Null) => false,
                        _ => self.compare(&x, &y, mode) == Some(Ordering::Equal),
                    }));
                }
                self.compare(&x, &y, mode).map(|o| match op {
                    CmpOp::Eq | CmpOp::NullSafeEq => o == Ordering::Equal,
                    CmpOp::Ne => o != Ordering::Equal,
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Ge => o != Ordering::Less,
                })
            }
            Node::IsNull(o, not) => Some((self.value(o, row)? == V::Null) != *not),
            Node::In {
                expr,
                list,
                mode,
                negated,
            } => {
                let x = self.value(expr, row)?;
                let mut unknown = false;
                let mut found = false;
                for o in list {
                    match self.compare(&x, &self.value(o, row)?, mode) {
                        None => unknown = true,
                        Some(Ordering::Equal) => found = true,
                        Some(_) => {}
                    }
                }
                match (found, unknown) {
                    (true, _) => Some(!negated),
                    (false, true) => None,
                    (false, false) => Some(*negated),
                }
            }
            Node::And(a, b) => match (self.eval(a, row)?, self.eval(b, row)?) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Node::Or(a, b) => match (self.eval(a, row)?, self.eval(b, row)?) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Node::Xor(a, b) => match (self.eval(a, row)?, self.eval(b, row)?) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            },
            Node::Not(a) => self.eval(a, row)?.map(|b| !b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> (bool, String, String) {
        match parse_dec(s) {
            Some(V::Dec(n, i, f)) => (n, i, f),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn cmp(a: &str, b: &str) -> Ordering {
        let (x, y) = (dec(a), dec(b));
        cmp_dec((&x.0, &x.1, &x.2), (&y.0, &y.1, &y.2))
    }

    #[test]
    fn literals() {
        assert_eq!(cmp("7", "7.000"), Ordering::Equal);
        assert_eq!(cmp("-0", "0.0"), Ordering::Equal);
        assert_eq!(cmp("-1.5", "-1.25"), Ordering::Less);
        assert_eq!(
            cmp("18446744073709551615", "9223372036854775807"),
            Ordering::Greater
        );
        assert!(parse_dec("1e3").is_none() && parse_dec(".").is_none() && parse_dec("1.2.3").is_none());
        assert_eq!(parse_dt("2024-02-29"), Some([2024, 2, 29, 0, 0, 0, 0]));
        assert_eq!(
            parse_dt("2024-1-5 10:00:00.5"),
            Some([2024, 1, 5, 10, 0, 0, 500_000])
        );
        assert_eq!(parse_dt("2023-02-29"), None);
        assert_eq!(parse_dt("2024-13-01"), None);
        assert_eq!(parse_dt("0000-00-00"), Some([0; 7]));
        assert_eq!(cmp_bytes(b"a", b"a  ", true), Ordering::Equal);
        assert_eq!(cmp_bytes(b"a\t", b"a", true), Ordering::Less);
        assert_eq!(cmp_bytes(b"a", b"a ", false), Ordering::Less);
    }

    proptest::proptest! {
        /// Decimal comparison agrees with integer comparison on scaled values.
        #[test]
        fn decimals_compare_like_scaled_integers(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000, sa in 0u32..4, sb in 0u32..4) {
            let text = |v: i64, s: u32| {
                let p = 10i64.pow(s);
                let sign = if v < 0 { "-" } else { "" };
                if s == 0 { format!("{v}") } else { format!("{sign}{}.{:0width$}", v.abs() / p, v.abs() % p, width = s as usize) }
            };
            // compare a / 10^sa with b / 10^sb exactly
            let lhs = (a as i128) * 10i128.pow(sb);
            let rhs = (b as i128) * 10i128.pow(sa);
            proptest::prop_assert_eq!(cmp(&text(a, sa), &text(b, sb)), lhs.cmp(&rhs));
        }

        /// PAD SPACE comparison equals comparing both sides padded with spaces to one length.
        #[test]
        fn pad_space_is_padding(a in "[ a\\t]{0,6}", b in "[ a\\t]{0,6}") {
            let n = a.len().max(b.len());
            let pa = format!("{a:<n$}");
            let pb = format!("{b:<n$}");
            proptest::prop_assert_eq!(cmp_bytes(a.as_bytes(), b.as_bytes(), true), pa.as_bytes().cmp(pb.as_bytes()));
        }
    }
}
