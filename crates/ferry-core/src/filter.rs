//! Row filters: a `WHERE` condition over one table's own columns. Comparison tasks
//! (`Tables[].FilterCondition`) apply it on both sides; a job's `Ferry.DbList` `filter` runs it in
//! the load's chunk queries, evaluates it in Ferry during replay ([`crate::filter_eval`], which
//! accepts a stricter subset) and applies it on both sides of the verification.
//!
//! A filter is accepted only when it is a plain boolean expression over the table's own columns:
//! comparisons, `AND`/`OR`/`XOR`/`NOT`, `IS [NOT] NULL`, `[NOT] IN (list)`, `[NOT] BETWEEN`,
//! `[NOT] LIKE`, `REGEXP`, arithmetic, `CASE`, `CAST`, `COLLATE`, literals and a fixed list of
//! deterministic functions without side effects ([`FUNCTIONS`]). Refused: subqueries, `EXISTS`,
//! any other function (`SLEEP`, `NOW`, `RAND`, `GET_LOCK`, …), user and system variables (`@x`,
//! `@@x`), placeholders, comments and version comments (`/*! … */`, which the server would run),
//! semicolons, backslashes (their meaning depends on `sql_mode`), double-quoted strings (their
//! meaning depends on `ANSI_QUOTES`), qualified column names, and texts over [`MAX_LEN`] bytes.
//!
//! Checking: the text is tokenized by Ferry's MySQL lexer (which reads comments and version
//! comments as the server does) and by sqlparser's, both must find none of the refused tokens;
//! then sqlparser's MySQL dialect parses it as one expression that must consume the whole text,
//! and the tree is checked node by node against the list above. The text sent to the servers is
//! the original text, in parentheses: with no comments, escapes or variables, both parsers and the
//! server read the same expression.

use std::collections::BTreeSet;

use crate::lexer::{tokenize, TokenKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlparser::ast::{
    BinaryOperator, CastKind, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget,
    ObjectNamePart, UnaryOperator, Value,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// The longest filter accepted, in bytes.
pub const MAX_LEN: usize = 4096;

/// Nesting depth allowed by the parser.
const MAX_DEPTH: usize = 40;

/// Functions a filter may call: deterministic, no side effects, no session state.
pub const FUNCTIONS: &[&str] = &[
    "ABS",
    "CEIL",
    "CEILING",
    "FLOOR",
    "ROUND",
    "TRUNCATE",
    "MOD",
    "SIGN",
    "LOWER",
    "UPPER",
    "LCASE",
    "UCASE",
    "LENGTH",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "OCTET_LENGTH",
    "LEFT",
    "RIGHT",
    "SUBSTR",
    "SUBSTRING",
    "MID",
    "LTRIM",
    "RTRIM",
    "TRIM",
    "CONCAT",
    "CONCAT_WS",
    "LOCATE",
    "INSTR",
    "REPLACE",
    "REVERSE",
    "LPAD",
    "RPAD",
    "COALESCE",
    "IFNULL",
    "NULLIF",
    "IF",
    "ISNULL",
    "GREATEST",
    "LEAST",
    "DATE",
    "TIME",
    "YEAR",
    "MONTH",
    "DAY",
    "DAYOFMONTH",
    "DAYOFWEEK",
    "DAYOFYEAR",
    "WEEKDAY",
    "HOUR",
    "MINUTE",
    "SECOND",
    "QUARTER",
    "TO_DAYS",
    "DATEDIFF",
    "DATE_ADD",
    "DATE_SUB",
    "ADDDATE",
    "SUBDATE",
    "DATE_FORMAT",
    "STR_TO_DATE",
    "HEX",
    "CRC32",
    "MD5",
    "SHA1",
    "SHA2",
    "JSON_EXTRACT",
    "JSON_UNQUOTE",
    "JSON_CONTAINS",
    "JSON_LENGTH",
    "JSON_VALUE",
];

/// A checked row filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFilter {
    text: String,
    columns: Vec<String>,
    expr: Box<Expr>,
}

/// Serialized as its text; read back through [`RowFilter::parse`], so a stored filter is checked
/// again.
impl Serialize for RowFilter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for RowFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RowFilter::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl RowFilter {
    /// Checks a filter condition (see the module documentation); the error says what is refused.
    pub fn parse(text: &str) -> Result<RowFilter, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the filter condition is empty".into());
        }
        if text.len() > MAX_LEN {
            return Err(format!("the filter condition is longer than {MAX_LEN} bytes"));
        }
        if text.contains('\\') {
            return Err("backslashes are not accepted in a filter condition".into());
        }
        for t in tokenize(text) {
            let s = t.text(text);
            match t.kind {
                TokenKind::Comment | TokenKind::VersionOpen | TokenKind::VersionClose => {
                    return Err("comments are not accepted in a filter condition".into())
                }
                TokenKind::Punct if s == ";" => {
                    return Err("a filter condition is one expression: no semicolon".into())
                }
                TokenKind::Punct if s == "@" => {
                    return Err("variables (@x, @@x) are not accepted in a filter condition".into())
                }
                TokenKind::Punct if s == "?" => {
                    return Err("placeholders (?) are not accepted in a filter condition".into())
                }
                TokenKind::String if s.starts_with('"') => {
                    return Err(
                        "double-quoted strings are not accepted in a filter condition: use 'single quotes'"
                            .into(),
                    )
                }
                _ => {}
            }
        }
        let dialect = MySqlDialect {};
        let tokens = Tokenizer::new(&dialect, text)
            .tokenize()
            .map_err(|e| format!("the filter condition does not parse: {e}"))?;
        for t in &tokens {
            match t {
                Token::Whitespace(Whitespace::SingleLineComment { .. })
                | Token::Whitespace(Whitespace::MultiLineComment(_)) => {
                    return Err("comments are not accepted in a filter condition".into())
                }
                Token::SemiColon => return Err("a filter condition is one expression: no semicolon".into()),
                Token::Placeholder(_) | Token::AtSign => {
                    return Err("variables and placeholders are not accepted in a filter condition".into())
                }
                _ => {}
            }
        }
        let mut parser = Parser::new(&dialect)
            .with_recursion_limit(MAX_DEPTH)
            .try_with_sql(text)
            .map_err(|e| format!("the filter condition does not parse: {e}"))?;
        let expr = parser
            .parse_expr()
            .map_err(|e| format!("the filter condition does not parse: {e}"))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(format!(
                "the filter condition must be one expression; it goes on at {:?}",
                next.token.to_string()
            ));
        }
        let mut columns = BTreeSet::new();
        check(&expr, &mut columns)?;
        if !is_boolean(&expr) {
            return Err(
                "the filter condition must be a condition (a comparison, IS NULL, IN, BETWEEN, LIKE, \
                 combined with AND/OR/NOT), not a value"
                    .into(),
            );
        }
        Ok(RowFilter {
            text: text.to_string(),
            columns: columns.into_iter().collect(),
            expr: Box::new(expr),
        })
    }

    /// The condition as sent to the servers.
    pub fn sql(&self) -> String {
        format!("({})", self.text)
    }

    /// The condition as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The column names it reads.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The parsed expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

/// True when `e` yields a truth value.
fn is_boolean(e: &Expr) -> bool {
    match e {
        Expr::Nested(x) => is_boolean(x),
        Expr::BinaryOp { op, .. } => matches!(
            op,
            BinaryOperator::Gt
                | BinaryOperator::Lt
                | BinaryOperator::GtEq
                | BinaryOperator::LtEq
                | BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Spaceship
                | BinaryOperator::And
                | BinaryOperator::Or
                | BinaryOperator::Xor
                | BinaryOperator::Regexp
        ),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            ..
        } => true,
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::In { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::RLike { .. } => true,
        Expr::Value(v) => matches!(v.value, Value::Boolean(_)),
        _ => false,
    }
}

fn refuse(what: &str) -> Result<(), String> {
    Err(format!("{what} is not accepted in a filter condition"))
}

/// Checks every node; collects the column names.
fn check(e: &Expr, cols: &mut BTreeSet<String>) -> Result<(), String> {
    match e {
        Expr::Identifier(id) => {
            if id.quote_style.is_some_and(|q| q != '`') {
                return refuse(&format!("the quoted name {}", id));
            }
            cols.insert(id.value.clone());
            Ok(())
        }
        Expr::CompoundIdentifier(parts) => Err(format!(
            "name columns without a table or database prefix in a filter condition (not {})",
            parts
                .iter()
                .map(|p| p.value.as_str())
                .collect::<Vec<_>>()
                .join(".")
        )),
        Expr::Nested(x)
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsTrue(x)
        | Expr::IsNotTrue(x)
        | Expr::IsFalse(x)
        | Expr::IsNotFalse(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotUnknown(x) => check(x, cols),
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
            check(a, cols)?;
            check(b, cols)
        }
        Expr::BinaryOp { left, op, right } => {
            let ok = matches!(
                op,
                BinaryOperator::Plus
                    | BinaryOperator::Minus
                    | BinaryOperator::Multiply
                    | BinaryOperator::Divide
                    | BinaryOperator::Modulo
                    | BinaryOperator::MyIntegerDivide
                    | BinaryOperator::Gt
                    | BinaryOperator::Lt
                    | BinaryOperator::GtEq
                    | BinaryOperator::LtEq
                    | BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Spaceship
                    | BinaryOperator::And
                    | BinaryOperator::Or
                    | BinaryOperator::Xor
                    | BinaryOperator::BitwiseOr
                    | BinaryOperator::BitwiseAnd
                    | BinaryOperator::BitwiseXor
                    | BinaryOperator::Regexp
            );
            if !ok {
                return refuse(&format!("the operator {op}"));
            }
            check(left, cols)?;
            check(right, cols)
        }
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not | UnaryOperator::Minus | UnaryOperator::Plus | UnaryOperator::BitwiseNot => {
                check(expr, cols)
            }
            other => refuse(&format!("the operator {other}")),
        },
        Expr::In {
            expr,
            target,
            global: false,
            ..
        } => {
            check(expr, cols)?;
            match target {
                InTarget::List(items) => items.iter().try_for_each(|i| check(i, cols)),
                _ => refuse("IN with a subquery or table"),
            }
        }
        Expr::Between { expr, low, high, .. } => {
            check(expr, cols)?;
            check(low, cols)?;
            check(high, cols)
        }
        Expr::Like {
            any: false,
            expr,
            pattern,
            escape_char,
            ..
        } => {
            check(expr, cols)?;
            check(pattern, cols)?;
            match escape_char {
                Some(c) => check(c, cols),
                None => Ok(()),
            }
        }
        Expr::RLike { expr, pattern, .. } => {
            check(expr, cols)?;
            check(pattern, cols)
        }
        Expr::Value(v) => match &v.value {
            Value::Number(..)
            | Value::SingleQuotedString(_)
            | Value::HexStringLiteral(_)
            | Value::NationalStringLiteral(_)
            | Value::Boolean(_)
            | Value::Null => Ok(()),
            other => refuse(&format!("the literal {other}")),
        },
        Expr::TypedString(t) => match &t.value.value {
            Value::SingleQuotedString(_) => Ok(()),
            other => refuse(&format!("the literal {other}")),
        },
        Expr::Cast {
            kind: CastKind::Cast,
            expr,
            format: None,
            ..
        } => check(expr, cols),
        Expr::Collate { expr, .. } => check(expr, cols),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            if let Some(o) = operand {
                check(o, cols)?;
            }
            for w in conditions {
                check(&w.condition, cols)?;
                check(&w.result, cols)?;
            }
            match else_result {
                Some(x) => check(x, cols),
                None => Ok(()),
            }
        }
        Expr::Tuple(items) => items.iter().try_for_each(|i| check(i, cols)),
        Expr::Interval(i) => check(&i.value, cols),
        Expr::Function(f) => {
            let name = match f.name.0.as_slice() {
                [ObjectNamePart::Identifier(id)] if id.quote_style.is_none() => id.value.to_ascii_uppercase(),
                _ => return refuse(&format!("the function {}", f.name)),
            };
            if !FUNCTIONS.contains(&name.as_str()) {
                return refuse(&format!("the function {name}"));
            }
            if f.over.is_some()
                || f.filter.is_some()
                || f.null_treatment.is_some()
                || !f.within_group.is_empty()
                || !matches!(f.parameters, FunctionArguments::None)
            {
                return refuse(&format!("{name} with a window or filter clause"));
            }
            let FunctionArguments::List(list) = &f.args else {
                return refuse(&format!("{name} without an argument list"));
            };
            if list.duplicate_treatment.is_some() || !list.clauses.is_empty() || list.args.is_empty() {
                return refuse(&format!("this form of {name}"));
            }
            for a in &list.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => check(x, cols)?,
                    _ => return refuse(&format!("this argument of {name}")),
                }
            }
            Ok(())
        }
        Expr::Subquery(_) | Expr::Exists { .. } => refuse("a subquery"),
        other => {
            let s = other.to_string();
            let short: String = s.chars().take(40).collect();
            refuse(&format!("the expression {short:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        match RowFilter::parse(s) {
            Ok(f) => f.columns().to_vec(),
            Err(e) => panic!("{s:?} refused: {e}"),
        }
    }

    fn refused(s: &str) -> String {
        match RowFilter::parse(s) {
            Ok(f) => panic!("{s:?} accepted: {f:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_conditions_are_accepted() {
        assert_eq!(ok("id > 10"), vec!["id"]);
        assert_eq!(
            ok("id BETWEEN 1 AND 100 AND `name` LIKE 'a%'"),
            vec!["id", "name"]
        );
        assert_eq!(
            ok("(a IS NULL OR b IN (1, 2, 3)) AND NOT c <=> 4"),
            vec!["a", "b", "c"]
        );
        assert_eq!(ok("created >= '2024-01-01' + INTERVAL 1 DAY"), vec!["created"]);
        assert_eq!(ok("LOWER(name) = 'x' AND YEAR(d) = 2024"), vec!["d", "name"]);
        assert_eq!(ok("CAST(v AS SIGNED) % 2 = 0"), vec!["v"]);
        assert_eq!(ok("CASE WHEN a > 1 THEN b ELSE c END = 1"), vec!["a", "b", "c"]);
        assert_eq!(ok("name REGEXP '^a'"), vec!["name"]);
        assert_eq!(ok("id DIV 2 = 3"), vec!["id"]);
        assert_eq!(
            RowFilter::parse(" id > 1 ").map(|f| f.sql()),
            Ok("(id > 1)".into())
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(refused("id > 1; DROP TABLE t").contains("semicolon"));
        assert!(refused("id > 1 /*! OR 1=1 */").contains("comment"));
        assert!(refused("id > 1 -- x").contains("comment"));
        assert!(refused("id > 1 # x").contains("comment"));
        // MySQL and sqlparser both read `--` not followed by a space as two minus signs.
        assert_eq!(ok("id--1 > 0"), vec!["id"]);
        assert!(refused("id IN (SELECT id FROM other)").contains("subquery"));
        assert!(refused("EXISTS (SELECT 1)").contains("subquery"));
        assert!(refused("SLEEP(10) = 0").contains("SLEEP"));
        assert!(refused("id > 0 AND BENCHMARK(1000000, MD5('a')) = 0").contains("BENCHMARK"));
        assert!(refused("created < NOW()").contains("NOW"));
        assert!(refused("id = @x").contains("variable"));
        assert!(refused("id = @@version").contains("variable"));
        assert!(refused("id = ?").contains("placeholder"));
        assert!(refused("name = \"x\"").contains("double-quoted"));
        assert!(refused("name = 'a\\'b'").contains("backslash"));
        assert!(refused("t.id > 1").contains("prefix"));
        assert!(refused("id").contains("condition"));
        assert!(refused("id + 1").contains("condition"));
        assert!(refused("").contains("empty"));
        assert!(refused("id > 1 id").contains("one expression"));
        assert!(refused(&format!("{}id > 1{}", "(".repeat(200), ")".repeat(200))).contains("parse"));
        assert!(refused(&format!("id > {}", "1".repeat(MAX_LEN))).contains("longer"));
    }

    proptest::proptest! {
        /// Any text: no panic; an accepted one has none of the refused tokens.
        #[test]
        fn arbitrary_text_is_refused_or_plain(
            s in "[ a-z0-9_'\"`;@?#*/()=<>!+,.-]{0,60}"
        ) {
            if let Ok(f) = RowFilter::parse(&s) {
                let t = f.text();
                proptest::prop_assert!(!t.contains(';') && !t.contains('@') && !t.contains('?'));
                proptest::prop_assert!(!t.contains("/*") && !t.contains('#') && !t.contains("-- "));
                proptest::prop_assert!(f.sql().starts_with('(') && f.sql().ends_with(')'));
            }
        }

        /// Comparisons of a column with a number are accepted, with that column.
        #[test]
        fn comparisons_are_accepted(col in "[a-z][a-z0-9_]{0,10}", n in 0i64..1_000_000, op in 0usize..6) {
            let ops = ["=", "<>", "<", "<=", ">", ">="];
            let text = format!("`{col}` {} {n}", ops[op]);
            let f = RowFilter::parse(&text);
            proptest::prop_assert_eq!(f.map(|f| f.columns().to_vec()), Ok(vec![col]));
        }
    }
}
