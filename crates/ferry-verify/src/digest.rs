//! Chunk digests computed by the servers, and the exact value encoding used on the client side.
//!
//! A chunk's digest is `COUNT(*)` and the exact (DECIMAL) sum of the first 64 bits of an MD5 of
//! each row's canonical text. A sum of independent 64-bit hashes is order-independent and, unlike
//! `BIT_XOR`, does not cancel two identical rows. The canonical text is exact for every type
//! (measured on MariaDB 10.11, see the crate documentation):
//!
//! - integers, DECIMAL, YEAR, dates and times: their text (TIMESTAMP in the session's UTC);
//! - DOUBLE: its text, which is the shortest form that reads back to the same bits;
//! - FLOAT: `f + 0e0`, the exact double widening printed the same way (a FLOAT's own text has only
//!   6 significant digits and misses a change of the last bit);
//! - BIT: its integer value;
//! - strings, ENUM, SET, JSON, spatial and others: `LENGTH(c)` then the raw bytes (`CAST(c AS
//!   BINARY)`), so collations never fold case or accents, and the length prefix keeps the `|`
//!   separator unambiguous;
//! - a final null bitmap (`CONCAT(ISNULL(a), …)`), so NULL and `''` differ.
//!
//! The client side (drill-down, keyless tables) reads rows through the binary protocol and compares
//! the [`encode_value`] bytes, which are equal exactly when the digests' texts are equal.

use ferry_core::sql::{qualified, quote_ident};
use ferry_core::{Column, ColumnKind, Flavor, Position};
use ferry_load::chunk::ChunkPlan;
use ferry_load::keyrange::chunk_where;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::error::{Ctx, VerifyError};

/// Setup of the verifier's row and digest connections (both servers): UTC, raw string bytes in
/// results (bounds are sent as utf8mb4 text, as the loader's readers do), long timeouts.
pub fn session() -> Vec<String> {
    vec!["SET time_zone = '+00:00', character_set_results = binary, \
          SESSION net_write_timeout = 7200, SESSION wait_timeout = 28800"
        .into()]
}

/// The canonical expression(s) of one column in the digest.
pub fn canonical_expr(c: &Column) -> String {
    let q = quote_ident(&c.name);
    match c.kind {
        ColumnKind::Int { .. }
        | ColumnKind::Decimal
        | ColumnKind::Year
        | ColumnKind::Date
        | ColumnKind::DateTime
        | ColumnKind::Timestamp
        | ColumnKind::Time
        | ColumnKind::Double => q,
        ColumnKind::Float => format!("{q} + 0e0"),
        ColumnKind::Bit => format!("{q} + 0"),
        ColumnKind::Text
        | ColumnKind::Binary
        | ColumnKind::Enum
        | ColumnKind::Set
        | ColumnKind::Json
        | ColumnKind::Geometry
        | ColumnKind::Other => format!("LENGTH({q}), CAST({q} AS BINARY)"),
    }
}

/// `SELECT COUNT(*), SUM(…) FROM <table>` without its WHERE clause.
pub fn digest_select(db: &str, table: &str, cols: &[Column]) -> String {
    let mut parts: Vec<String> = cols.iter().map(canonical_expr).collect();
    let nulls: Vec<String> = cols
        .iter()
        .map(|c| format!("ISNULL({})", quote_ident(&c.name)))
        .collect();
    parts.push(format!("CONCAT({})", nulls.join(", ")));
    format!(
        "SELECT COUNT(*), COALESCE(SUM(CAST(CONV(SUBSTR(MD5(CONCAT_WS('|', {})), 1, 16), 16, 10) \
         AS UNSIGNED)), 0) FROM {}",
        parts.join(", "),
        qualified(db, table)
    )
}

/// A chunk's digest: row count and the exact sum of the row hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    pub sum: String,
}

/// Appends the chunk's `WHERE` (empty for an unbounded chunk) and returns the parameters.
pub fn with_chunk(
    select: &str,
    key: Option<&[Column]>,
    chunk: &ChunkPlan,
) -> Result<(String, Vec<Value>), VerifyError> {
    match key {
        Some(key) => {
            let cols: Vec<&Column> = key.iter().collect();
            let (w, p) = chunk_where(&cols, chunk.lower.as_deref(), chunk.upper.as_deref());
            Ok((format!("{select}{w}"), p))
        }
        None if chunk.lower.is_none() && chunk.upper.is_none() => Ok((select.to_string(), Vec::new())),
        None => Err(VerifyError::Options(
            "a bounded chunk for a table without a chunking key".into(),
        )),
    }
}

/// Runs a digest query.
pub async fn run_digest(
    conn: &mut Conn,
    sql: &str,
    params: Vec<Value>,
    side: &'static str,
    what: &str,
) -> Result<Digest, VerifyError> {
    let row: Option<Row> = conn
        .exec_first(sql, params)
        .await
        .ctx(|| format!("computing the digest of {what} on the {side}"))?;
    let bad = |m: &str| VerifyError::Unexpected {
        side,
        message: format!("digest of {what}: {m}"),
    };
    let row = row.ok_or_else(|| bad("no row"))?;
    let mut vals = row.unwrap_raw().into_iter();
    let count = vals.next().flatten().ok_or_else(|| bad("no count"))?;
    let sum = vals.next().flatten().ok_or_else(|| bad("no sum"))?;
    let rows = match count {
        Value::Int(i) => u64::try_from(i).map_err(|_| bad("negative count"))?,
        Value::UInt(u) => u,
        Value::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("count is not a number"))?,
        _ => return Err(bad("count is not a number")),
    };
    let sum = match sum {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bytes(b) => String::from_utf8(b).map_err(|_| bad("sum is not text"))?,
        _ => return Err(bad("sum is not a number")),
    };
    Ok(Digest { rows, sum })
}

/// The source's current binlog position (file + offset), or `None` when it cannot be read (no
/// binlog, no privilege).
pub async fn binlog_position(conn: &mut Conn) -> Option<Position> {
    let flavor = Flavor::detect(conn).await.ok()?;
    let row: Option<Row> = conn.query_first(flavor.binlog_status_sql()).await.ok()?;
    let mut row = row?;
    let file: Vec<u8> = row.take::<Option<Vec<u8>>, usize>(0)??;
    let pos: u64 = row.take::<Option<u64>, usize>(1)??;
    Some(Position::FilePos {
        file: String::from_utf8(file).ok()?,
        pos,
    })
}

/// Appends a value's exact, type-tagged bytes. Two values encode the same way exactly when the
/// digest's canonical texts are equal: integers by number (signed or not), FLOAT widened to double,
/// strings by bytes.
pub fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::NULL => out.push(0),
        Value::Bytes(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i128::from(*i).to_le_bytes());
        }
        Value::UInt(u) => {
            out.push(2);
            out.extend_from_slice(&i128::from(*u).to_le_bytes());
        }
        Value::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f64::from(*f).to_bits().to_le_bytes());
        }
        Value::Double(d) => {
            out.push(3);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Date(y, mo, d, h, mi, s, us) => {
            out.push(4);
            out.extend_from_slice(&y.to_le_bytes());
            out.extend_from_slice(&[*mo, *d, *h, *mi, *s]);
            out.extend_from_slice(&us.to_le_bytes());
        }
        Value::Time(neg, d, h, mi, s, us) => {
            out.push(5);
            out.push(u8::from(*neg));
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(&[*h, *mi, *s]);
            out.extend_from_slice(&us.to_le_bytes());
        }
    }
}

/// True when two values are exactly equal (see [`encode_value`]).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        _ => {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            encode_value(&mut x, a);
            encode_value(&mut y, b);
            x == y
        }
    }
}

/// The exact bytes of several values (a key, or a whole row).
pub fn encode_values<'a>(vals: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in vals {
        encode_value(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_exact() {
        let f = 0.1f32;
        let next = f32::from_bits(f.to_bits() + 1);
        assert!(!same_value(&Value::Float(f), &Value::Float(next)));
        assert!(same_value(&Value::Float(f), &Value::Double(f64::from(f))));
        assert!(same_value(&Value::Int(5), &Value::UInt(5)));
        assert!(!same_value(&Value::NULL, &Value::Bytes(Vec::new())));
        assert!(!same_value(
            &Value::Bytes(b"a".to_vec()),
            &Value::Bytes(b"A".to_vec())
        ));
        let d = 0.1f64;
        assert!(!same_value(
            &Value::Double(d),
            &Value::Double(f64::from_bits(d.to_bits() + 1))
        ));
    }
}
