//! Chunk digests computed by the servers, and the exact value encoding used on the client side.
//!
//! A chunk's digest is `COUNT(*)` and exact (DECIMAL) sums of a 64-bit hash of each row's canonical
//! text. A sum of per-row hashes is order-independent and, unlike `BIT_XOR`, does not cancel two
//! identical rows. Two row hashes exist ([`RowHash`]), chosen per run by [`choose_hash`]:
//!
//! - [`RowHash::Crc32Pair`] (MariaDB 10.8 and later, on both servers): `SUM(CRC32(text))` and
//!   `SUM(CRC32C(text))`, two CRCs of different polynomials over the same text (64 bits per row:
//!   any change of up to 32 consecutive bits is always seen, other changes escape both with a
//!   probability of about 2⁻⁶⁴). The text is built once per row: `CRC32(@ferry_row := text)`, then
//!   `CRC32C(@ferry_row)` in the next aggregate (MariaDB evaluates a row's aggregates in select-list
//!   order; [`probe`] checks this on each server and falls back to building the text twice).
//! - [`RowHash::Md5`] (MySQL, older MariaDB): the sum of the first 64 bits of `MD5(text)`.
//!
//! The canonical text (`CONCAT_WS('|', …)`) is exact for every type (measured on MariaDB 10.11,
//! see the crate documentation):
//!
//! - integers, DECIMAL, YEAR, dates and times: their text (TIMESTAMP in the session's UTC);
//! - DOUBLE: its text, which is the shortest form that reads back to the same bits;
//! - FLOAT: `f + 0e0`, the exact double widening printed the same way (a FLOAT's own text has only
//!   6 significant digits and misses a change of the last bit);
//! - BIT: its integer value;
//! - strings (free-form fields, the only ones that can contain `|`): their raw bytes, each but the
//!   last one preceded by `LENGTH(c)`, so a field boundary cannot move (`('ab','c')` ≠ `('a','bc')`);
//!   the bytes are the column's own: utf8mb3/utf8mb4/ascii text and byte strings as they are
//!   (`CONCAT_WS` converts nothing between them), other character sets, JSON, spatial and other
//!   types through `CAST(c AS BINARY)`; collations never fold case or accents;
//! - a final null bitmap (`CONCAT(ISNULL(a), …)`) of the columns nullable on either side, so NULL
//!   and `''` differ (`CONCAT_WS` skips NULLs).
//!
//! The layout (which columns get a length prefix, which are in the bitmap) is decided from both
//! sides' columns ([`TextLayout::new`]), so both servers build the same text from equal rows.
//!
//! The client side (drill-down, keyless tables) reads rows through the binary protocol and compares
//! the [`encode_value`] bytes, which are equal exactly when the digests' texts are equal.

use ferry_core::sql::quote_ident;
use ferry_core::{Column, ColumnKind, Flavor, Position};
use ferry_load::chunk::ChunkPlan;
use ferry_load::keyrange::chunk_where;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::error::{Ctx, VerifyError};

/// Setup of the verifier's row and digest connections (both servers): UTC, raw string bytes in
/// results (bounds are sent as utf8mb4 text, as the loader's readers do), long timeouts.
pub fn session() -> Vec<String> {
    session_in("+00:00")
}

/// [`session`] with another session time zone (a `+hh:mm` offset, checked by [`valid_offset`]):
/// a comparison task's `FilterTimeZone`. Both sides read TIMESTAMP values in the same zone, so
/// their texts still compare exactly.
pub fn session_in(offset: &str) -> Vec<String> {
    let tz = if valid_offset(offset) { offset } else { "+00:00" };
    vec![format!(
        "SET time_zone = '{tz}', character_set_results = binary, \
         SESSION net_write_timeout = 7200, SESSION wait_timeout = 28800"
    )]
}

/// True for a UTC offset `+hh:mm` / `-hh:mm` (hours up to 13, minutes up to 59).
pub fn valid_offset(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6
        && (b[0] == b'+' || b[0] == b'-')
        && b[3] == b':'
        && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit())
        && (b[1] - b'0') * 10 + (b[2] - b'0') <= 13
        && b[4] <= b'5'
}

/// The per-row hash summed in a chunk digest (both servers use the same one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowHash {
    /// [`RowHash::Crc32Pair`] when both servers have `CRC32C()`, else [`RowHash::Md5`].
    #[default]
    Auto,
    /// `CRC32` and `CRC32C` of the row text, summed separately (MariaDB 10.8+).
    Crc32Pair,
    /// The first 64 bits of `MD5` of the row text (any server).
    Md5,
}

/// What one server supports, from [`probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSupport {
    /// `CRC32C()` exists.
    pub crc32c: bool,
    /// A user variable assigned in one aggregate is read by the next one, row by row.
    pub row_variable: bool,
}

/// Finds what a server supports: `CRC32C()`, and whether `SUM(CRC32(@v := x)), SUM(CRC32C(@v))`
/// equals `SUM(CRC32(x)), SUM(CRC32C(x))` over a few rows, through a prepared statement of the
/// digest's own shape, with the variable unset (the order the one-text form relies on: MariaDB
/// updates a row's aggregates in select-list order when they are not wrapped in another function;
/// wrapped ones, e.g. in `COALESCE`, run in reverse order); the same holds for the grouped shape
/// of digests by parts, or neither shape uses the variable.
pub async fn probe(conn: &mut Conn) -> HashSupport {
    let rows = "(SELECT 'a' AS x UNION ALL SELECT 'bb' UNION ALL SELECT 'ccc' UNION ALL SELECT '') AS p";
    let sums = |r: Option<Row>| -> Option<Vec<Option<Vec<u8>>>> {
        r.map(|r| {
            r.unwrap_raw()
                .into_iter()
                .map(|v| match v {
                    Some(Value::Bytes(b)) => Some(b),
                    Some(Value::Int(i)) => Some(i.to_string().into_bytes()),
                    Some(Value::UInt(u)) => Some(u.to_string().into_bytes()),
                    _ => None,
                })
                .collect()
        })
    };
    let twice: Result<Option<Row>, _> = conn
        .exec_first(
            format!("SELECT COUNT(*), SUM(CRC32(x)), SUM(CRC32C(x)) FROM {rows}"),
            (),
        )
        .await;
    let Ok(twice) = twice else {
        return HashSupport {
            crc32c: false,
            row_variable: false,
        };
    };
    let unset = conn.query_drop("SET @ferry_row = NULL").await;
    let with_var: Result<Option<Row>, _> = conn
        .exec_first(
            format!("SELECT COUNT(*), SUM(CRC32(@ferry_row := x)), SUM(CRC32C(@ferry_row)) FROM {rows}"),
            (),
        )
        .await;
    // The grouped shape of digests by parts ([`crate::parts`]) must hold too.
    let grouped = |one: bool| {
        let s = if one {
            "SUM(CRC32(@ferry_row := x)), SUM(CRC32C(@ferry_row))"
        } else {
            "SUM(CRC32(x)), SUM(CRC32C(x))"
        };
        format!("SELECT LENGTH(x) DIV 2, COUNT(*), {s} FROM {rows} GROUP BY 1 ORDER BY NULL")
    };
    let all = |r: Result<Vec<Row>, mysql_async::Error>| -> Option<Vec<Vec<Option<Vec<u8>>>>> {
        let mut v: Vec<_> = r
            .ok()?
            .into_iter()
            .map(|row| sums(Some(row)))
            .collect::<Option<_>>()?;
        v.sort();
        Some(v)
    };
    let grouped_twice = all(conn.exec(grouped(false), ()).await);
    let unset_again = conn.query_drop("SET @ferry_row = NULL").await;
    let grouped_var = all(conn.exec(grouped(true), ()).await);
    let grouped_ok = unset_again.is_ok() && grouped_twice.is_some() && grouped_twice == grouped_var;
    match (unset, with_var) {
        (Ok(()), Ok(a)) => HashSupport {
            crc32c: true,
            row_variable: grouped_ok && sums(a).is_some_and(|a| Some(a) == sums(twice)),
        },
        _ => HashSupport {
            crc32c: true,
            row_variable: false,
        },
    }
}

/// The row hash to use given both servers' support (`wanted` may force one; forcing
/// [`RowHash::Crc32Pair`] on a server without `CRC32C()` is an error).
pub fn choose_hash(
    wanted: RowHash,
    source: HashSupport,
    target: HashSupport,
) -> Result<RowHash, VerifyError> {
    let both = source.crc32c && target.crc32c;
    match wanted {
        RowHash::Auto if both => Ok(RowHash::Crc32Pair),
        RowHash::Auto | RowHash::Md5 => Ok(RowHash::Md5),
        RowHash::Crc32Pair if both => Ok(RowHash::Crc32Pair),
        RowHash::Crc32Pair => Err(VerifyError::Options(
            "the CRC32 pair row hash needs CRC32C() (MariaDB 10.8 or later) on both servers".into(),
        )),
    }
}

/// The shape of the canonical row text, decided from both sides' columns (same positions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLayout {
    /// Column `i` is preceded by its byte length.
    pub length_prefix: Vec<bool>,
    /// Column `i` is in the null bitmap (nullable on either side).
    pub in_bitmap: Vec<bool>,
}

/// True for values whose text can contain any byte (`|` included).
fn free_form(kind: ColumnKind) -> bool {
    matches!(
        kind,
        ColumnKind::Text
            | ColumnKind::Binary
            | ColumnKind::Enum
            | ColumnKind::Set
            | ColumnKind::Json
            | ColumnKind::Geometry
            | ColumnKind::Other
    )
}

impl TextLayout {
    /// The layout for comparing `source` with `target` (column `i` of one with column `i` of the
    /// other): every free-form column (on either side) but the last one gets a length prefix; the
    /// bitmap holds the columns nullable on either side.
    pub fn new(source: &[Column], target: &[Column]) -> TextLayout {
        let n = source.len().max(target.len());
        let either = |i: usize, f: &dyn Fn(&Column) -> bool| {
            source.get(i).is_some_and(f) || target.get(i).is_some_and(f)
        };
        let free: Vec<bool> = (0..n).map(|i| either(i, &|c| free_form(c.kind))).collect();
        let last_free = free.iter().rposition(|&f| f);
        TextLayout {
            length_prefix: (0..n).map(|i| free[i] && Some(i) != last_free).collect(),
            in_bitmap: (0..n).map(|i| either(i, &|c| c.nullable)).collect(),
        }
    }
}

/// True when a text column's bytes go into `CONCAT_WS` unconverted without a `CAST` (UTF-8 and
/// ASCII: the result is utf8mb4 or, with any byte-string argument, binary).
fn bare_charset(c: &Column) -> bool {
    matches!(
        c.charset.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("utf8mb4" | "utf8mb3" | "utf8" | "ascii")
    )
}

/// The canonical expression(s) of one column in the row text.
pub fn canonical_expr(c: &Column, length_prefix: bool) -> String {
    let q = quote_ident(&c.name);
    let bytes = match c.kind {
        ColumnKind::Int { .. }
        | ColumnKind::Decimal
        | ColumnKind::Year
        | ColumnKind::Date
        | ColumnKind::DateTime
        | ColumnKind::Timestamp
        | ColumnKind::Time
        | ColumnKind::Double => q.clone(),
        ColumnKind::Float => format!("{q} + 0e0"),
        ColumnKind::Bit => format!("{q} + 0"),
        ColumnKind::Binary => q.clone(),
        ColumnKind::Text | ColumnKind::Enum | ColumnKind::Set if bare_charset(c) => q.clone(),
        ColumnKind::Text
        | ColumnKind::Enum
        | ColumnKind::Set
        | ColumnKind::Json
        | ColumnKind::Geometry
        | ColumnKind::Plugin
        | ColumnKind::Other => format!("CAST({q} AS BINARY)"),
    };
    if length_prefix {
        format!("LENGTH({q}), {bytes}")
    } else {
        bytes
    }
}

/// `CONCAT_WS('|', …)`: the canonical text of a row.
pub fn row_text(cols: &[Column], layout: &TextLayout) -> String {
    let mut parts: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| canonical_expr(c, layout.length_prefix.get(i).copied().unwrap_or(true)))
        .collect();
    let nulls: Vec<String> = cols
        .iter()
        .enumerate()
        .filter(|(i, _)| layout.in_bitmap.get(*i).copied().unwrap_or(true))
        .map(|(_, c)| format!("ISNULL({})", quote_ident(&c.name)))
        .collect();
    if !nulls.is_empty() {
        parts.push(format!("CONCAT({})", nulls.join(", ")));
    }
    format!("CONCAT_WS('|', {})", parts.join(", "))
}

/// `SELECT COUNT(*), SUM(…)[, SUM(…)] FROM <table>` without its WHERE clause. `one_text`: build
/// the row text once per row through a user variable (see [`probe`]). The sums are not wrapped
/// in any function (an empty chunk's NULL sums read as 0).
pub fn digest_select(
    from: &str,
    cols: &[Column],
    layout: &TextLayout,
    hash: RowHash,
    one_text: bool,
) -> String {
    let text = row_text(cols, layout);
    let sums = match hash {
        RowHash::Md5 => format!("SUM(CAST(CONV(SUBSTR(MD5({text}), 1, 16), 16, 10) AS UNSIGNED))"),
        RowHash::Crc32Pair | RowHash::Auto if one_text => {
            format!("SUM(CRC32(@ferry_row := {text})), SUM(CRC32C(@ferry_row))")
        }
        RowHash::Crc32Pair | RowHash::Auto => {
            format!("SUM(CRC32({text})), SUM(CRC32C({text}))")
        }
    };
    format!("SELECT COUNT(*), {sums} FROM {from}")
}

/// A chunk's digest: row count and the exact sum(s) of the row hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    pub sum: String,
}

/// Appends the chunk's `WHERE` (empty for an unbounded chunk) and `extra`, a row predicate
/// (filter condition, row sample) ANDed to it, and returns the parameters.
pub fn with_chunk(
    select: &str,
    key: Option<&[Column]>,
    chunk: &ChunkPlan,
    extra: Option<&str>,
) -> Result<(String, Vec<Value>), VerifyError> {
    let (w, p) = match key {
        Some(key) => {
            let cols: Vec<&Column> = key.iter().collect();
            chunk_where(&cols, chunk.lower.as_deref(), chunk.upper.as_deref())
        }
        None if chunk.lower.is_none() && chunk.upper.is_none() => (String::new(), Vec::new()),
        None => {
            return Err(VerifyError::Options(
                "a bounded chunk for a table without a chunking key".into(),
            ))
        }
    };
    let sql = match (extra, w.is_empty()) {
        (None, _) => format!("{select}{w}"),
        (Some(e), true) => format!("{select} WHERE ({e})"),
        (Some(e), false) => format!("{select}{w} AND ({e})"),
    };
    Ok((sql, p))
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
    let row = row.ok_or_else(|| VerifyError::Unexpected {
        side,
        message: format!("digest of {what}: no row"),
    })?;
    digest_of(row.unwrap_raw().into_iter(), side, what)
}

/// A digest from the values of a digest row (count, then the sums).
fn digest_of(
    mut vals: impl Iterator<Item = Option<Value>>,
    side: &'static str,
    what: &str,
) -> Result<Digest, VerifyError> {
    let bad = |m: &str| VerifyError::Unexpected {
        side,
        message: format!("digest of {what}: {m}"),
    };
    let count = vals.next().flatten().ok_or_else(|| bad("no count"))?;
    let rows = match count {
        Value::Int(i) => u64::try_from(i).map_err(|_| bad("negative count"))?,
        Value::UInt(u) => u,
        Value::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("count is not a number"))?,
        _ => return Err(bad("count is not a number")),
    };
    let mut sums = Vec::new();
    for v in vals {
        sums.push(match v {
            None | Some(Value::NULL) => "0".to_string(),
            Some(Value::Int(i)) => i.to_string(),
            Some(Value::UInt(u)) => u.to_string(),
            Some(Value::Bytes(b)) => String::from_utf8(b).map_err(|_| bad("sum is not text"))?,
            _ => return Err(bad("sum is not a number")),
        });
    }
    if sums.is_empty() {
        return Err(bad("no sum"));
    }
    let sum = sums.join("/");
    Ok(Digest { rows, sum })
}

/// Runs a per-part digest query ([`crate::parts`]; literals only, through the text protocol):
/// each row is a part index, then its digest. Parts without rows may be absent.
pub async fn run_part_digests(
    conn: &mut Conn,
    sql: &str,
    side: &'static str,
    what: &str,
) -> Result<Vec<(u32, Digest)>, VerifyError> {
    let rows: Vec<Row> = conn
        .query(sql)
        .await
        .ctx(|| format!("computing the part digests of {what} on the {side}"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut vals = row.unwrap_raw().into_iter();
        let part = match vals.next().flatten() {
            Some(Value::Int(i)) => u32::try_from(i).ok(),
            Some(Value::UInt(u)) => u32::try_from(u).ok(),
            Some(Value::Bytes(b)) => std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()),
            _ => None,
        }
        .ok_or_else(|| VerifyError::Unexpected {
            side,
            message: format!("part digests of {what}: a part index that is not one"),
        })?;
        out.push((part, digest_of(vals, side, what)?));
    }
    Ok(out)
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

    fn col(name: &str, kind: ColumnKind, nullable: bool, charset: Option<&str>) -> Column {
        Column {
            name: name.into(),
            data_type: String::new(),
            column_type: String::new(),
            kind,
            nullable,
            generated: false,
            charset: charset.map(Into::into),
            collation: None,
        }
    }

    #[test]
    fn text_layout_is_decided_from_both_sides() {
        let int = ColumnKind::Int { unsigned: false };
        let src = vec![
            col("id", int, false, None),
            col("a", ColumnKind::Text, false, Some("utf8mb4")),
            col("b", ColumnKind::Text, false, Some("latin1")),
            col("n", int, false, None),
            col("c", ColumnKind::Binary, false, None),
            col("f", ColumnKind::Float, false, None),
        ];
        let mut dst = src.clone();
        dst[3].nullable = true;
        let l = TextLayout::new(&src, &dst);
        assert_eq!(l, TextLayout::new(&dst, &src));
        // Every free-form column but the last (c) has a length; n is nullable on one side.
        assert_eq!(l.length_prefix, vec![false, true, true, false, false, false]);
        assert_eq!(l.in_bitmap, vec![false, false, false, true, false, false]);
        assert_eq!(
            row_text(&src, &l),
            "CONCAT_WS('|', `id`, LENGTH(`a`), `a`, LENGTH(`b`), CAST(`b` AS BINARY), `n`, `c`, \
             `f` + 0e0, CONCAT(ISNULL(`n`)))"
        );
        // A free-form column on one side only still gets its length on both.
        let mut other = src.clone();
        other[5] = col("f", ColumnKind::Text, false, Some("utf8mb4"));
        let l2 = TextLayout::new(&src, &other);
        assert_eq!(l2.length_prefix, vec![false, true, true, false, true, false]);
    }

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
