//! Decoding binlog rows against a table description, into exactly the values a binary-protocol
//! SELECT of the same row returns (session `time_zone = '+00:00'`, `character_set_results =
//! binary`), so ferry-core's value encoders and the test digests apply unchanged.
//!
//! Binlog rows carry types, not names, and (without `binlog_row_metadata`) no signedness.
//! The caller passes the table's [`TableSchema`] *as of the event*; this module:
//! - checks that the row has the schema's column count and that each binlog type fits the
//!   schema column's type (a mismatch is a definite error naming the table and position: the
//!   schema is behind or ahead of the binlog, and guessing would write wrong data);
//! - reinterprets integers by the schema's signedness (`TINYINT UNSIGNED 255` arrives as -1);
//! - turns YEAR into `Int` (YEAR 0 arrives as "1900"), TIMESTAMP's epoch into a UTC
//!   `Value::Date` (epoch 0 is the zero date), ENUM's index into the member's name, SET's
//!   bitmask into comma-joined member names, MySQL binary JSON into MySQL's JSON text (also for
//!   a text column: a MySQL source's JSON replays into a MariaDB target's LONGTEXT; for a JSON
//!   column, a document with DATE/TIME/DATETIME/DECIMAL scalars also carries the SQL expression
//!   that rebuilds them, [`crate::json_sql`]), MariaDB
//!   INET4/INET6/UUID into their text forms, and pads BINARY(n) with the zero bytes the binlog
//!   drops;
//! - passes DECIMAL (text), BIT (big-endian bytes), DATE/DATETIME/TIME, strings, blobs and
//!   spatial values through;
//! - refuses a temporal value whose fields are impossible (minutes ≥ 60, a TIME beyond 838
//!   hours, …: [`crate::temporal`]) as [`ReplayError::Corrupt`] naming the column and position,
//!   so a parser fault never reaches the target.
//!
//! ENUM and SET member lists come from `COLUMN_TYPE` ([`parse_members`]).

use ferry_core::{ColumnKind, TableSchema};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value;

use crate::error::ReplayError;
use crate::event::{BinlogColumn, RowsData};
use crate::temporal;

/// One decoded row change: (before image, after image).
pub type RowPair = (Option<Vec<Value>>, Option<Vec<Value>>);

#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Int { bytes: u8, unsigned: bool },
    Float,
    Double,
    Decimal,
    Bit,
    Year,
    Date,
    DateTime,
    Timestamp,
    Time,
    Enum(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Json,
    Text,
    Binary { pad_to: Option<usize> },
    Geometry,
    Inet4,
    Inet6,
    Uuid,
    Other,
}

/// A table description prepared for decoding: build it once per schema version and reuse it
/// for every rows event of the table.
#[derive(Debug, Clone)]
pub struct TableDecoder {
    db: String,
    table: String,
    names: Vec<String>,
    plans: Vec<Plan>,
}

/// Parses the member list of an ENUM or SET `COLUMN_TYPE` (`enum('a','b''c')`), undoing the
/// server's escaping (`''`, `\\`, `\0`, `\n`, `\r`, `\Z`). Members are returned as bytes.
pub fn parse_members(column_type: &str) -> Result<Vec<Vec<u8>>, String> {
    let open = column_type
        .find('(')
        .ok_or_else(|| format!("no member list in {column_type:?}"))?;
    let b = column_type.as_bytes();
    let mut i = open + 1;
    let mut out = Vec::new();
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            return Err(format!("unterminated member list in {column_type:?}"));
        }
        if b[i] == b')' {
            break;
        }
        if b[i] != b'\'' {
            return Err(format!("expected a quoted member at byte {i} of {column_type:?}"));
        }
        i += 1;
        let mut m = Vec::new();
        loop {
            match b.get(i) {
                None => return Err(format!("unterminated member in {column_type:?}")),
                Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                    m.push(b'\'');
                    i += 2;
                }
                Some(b'\'') => {
                    i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = b.get(i + 1).copied().unwrap_or(b'\\');
                    m.push(match c {
                        b'0' => 0,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b'Z' => 0x1a,
                        b't' => b'\t',
                        other => other,
                    });
                    i += 2;
                }
                Some(&c) => {
                    m.push(c);
                    i += 1;
                }
            }
        }
        out.push(m);
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b')') => break,
            _ => return Err(format!("expected ',' or ')' at byte {i} of {column_type:?}")),
        }
    }
    Ok(out)
}

fn int_bytes(data_type: &str) -> Option<u8> {
    Some(match data_type {
        "tinyint" => 1,
        "smallint" => 2,
        "mediumint" => 3,
        "int" | "integer" => 4,
        "bigint" => 8,
        _ => return None,
    })
}

/// `n` of `binary(n)`.
fn type_length(column_type: &str) -> Option<usize> {
    let open = column_type.find('(')?;
    let close = column_type[open..].find(')')? + open;
    column_type[open + 1..close].trim().parse().ok()
}

fn is_string_type(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_STRING
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
    )
}

impl TableDecoder {
    /// Prepares a table description. Fails on an ENUM/SET whose member list does not parse.
    pub fn new(schema: &TableSchema) -> Result<Self, ReplayError> {
        let mut plans = Vec::with_capacity(schema.columns.len());
        for c in &schema.columns {
            let bad = |m: String| ReplayError::SchemaMismatch {
                table: schema.display_name(),
                position: "schema".into(),
                message: format!("column {}: {m}", c.name),
            };
            let dt = c.data_type.to_ascii_lowercase();
            let plan = match c.kind {
                ColumnKind::Int { unsigned } => Plan::Int {
                    bytes: int_bytes(&dt).ok_or_else(|| bad(format!("unknown integer type {dt}")))?,
                    unsigned,
                },
                ColumnKind::Decimal => Plan::Decimal,
                ColumnKind::Float => Plan::Float,
                ColumnKind::Double => Plan::Double,
                ColumnKind::Bit => Plan::Bit,
                ColumnKind::Year => Plan::Year,
                ColumnKind::Date => Plan::Date,
                ColumnKind::DateTime => Plan::DateTime,
                ColumnKind::Timestamp => Plan::Timestamp,
                ColumnKind::Time => Plan::Time,
                ColumnKind::Enum => Plan::Enum(parse_members(&c.column_type).map_err(bad)?),
                ColumnKind::Set => Plan::Set(parse_members(&c.column_type).map_err(bad)?),
                ColumnKind::Json => Plan::Json,
                ColumnKind::Text => Plan::Text,
                ColumnKind::Binary => Plan::Binary {
                    pad_to: if dt == "binary" {
                        Some(type_length(&c.column_type).unwrap_or(1))
                    } else {
                        None
                    },
                },
                ColumnKind::Geometry => Plan::Geometry,
                ColumnKind::Plugin => match dt.as_str() {
                    "inet4" => Plan::Inet4,
                    "inet6" => Plan::Inet6,
                    "uuid" => Plan::Uuid,
                    _ => return Err(bad(format!("unknown MariaDB type plugin {dt}"))),
                },
                ColumnKind::Other => Plan::Other,
            };
            plans.push(plan);
        }
        Ok(TableDecoder {
            db: schema.db.clone(),
            table: schema.name.clone(),
            names: schema.columns.iter().map(|c| c.name.clone()).collect(),
            plans,
        })
    }

    /// The number of columns of the table.
    pub fn column_count(&self) -> usize {
        self.plans.len()
    }

    fn mismatch(&self, position: &str, message: impl Into<String>) -> ReplayError {
        ReplayError::SchemaMismatch {
            table: format!("{}.{}", self.db, self.table),
            position: position.to_string(),
            message: message.into(),
        }
    }

    /// Checks the table map's columns against the schema: count and per-column type.
    pub fn check_columns(&self, columns: &[BinlogColumn], position: &str) -> Result<(), ReplayError> {
        if columns.len() != self.plans.len() {
            let hint = if columns.len() > self.plans.len() {
                " (a MySQL functional index adds hidden generated columns that the binlog counts \
                 and information_schema does not show: Ferry cannot place them; replace the \
                 functional index by an ordinary generated column and index, or restart the job \
                 from a snapshot if the schema changed outside the replay)"
            } else {
                ""
            };
            return Err(self.mismatch(
                position,
                format!(
                    "the binlog row has {} columns, the schema {}{hint}",
                    columns.len(),
                    self.plans.len()
                ),
            ));
        }
        for (i, (col, plan)) in columns.iter().zip(&self.plans).enumerate() {
            use ColumnType::*;
            let t = col.column_type;
            let ok = match plan {
                Plan::Int { bytes, .. } => matches!(
                    (bytes, t),
                    (1, MYSQL_TYPE_TINY)
                        | (2, MYSQL_TYPE_SHORT)
                        | (3, MYSQL_TYPE_INT24)
                        | (4, MYSQL_TYPE_LONG)
                        | (8, MYSQL_TYPE_LONGLONG)
                ),
                Plan::Float => t == MYSQL_TYPE_FLOAT,
                Plan::Double => t == MYSQL_TYPE_DOUBLE,
                Plan::Decimal => t == MYSQL_TYPE_NEWDECIMAL,
                Plan::Bit => t == MYSQL_TYPE_BIT,
                Plan::Year => t == MYSQL_TYPE_YEAR,
                Plan::Date => matches!(t, MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE),
                Plan::DateTime => matches!(t, MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2),
                Plan::Timestamp => matches!(t, MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2),
                Plan::Time => matches!(t, MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2),
                Plan::Enum(_) => t == MYSQL_TYPE_ENUM,
                Plan::Set(_) => t == MYSQL_TYPE_SET,
                Plan::Json => t == MYSQL_TYPE_JSON || is_string_type(t),
                // a MySQL JSON column replayed into a text column (MariaDB's JSON is LONGTEXT)
                Plan::Text => is_string_type(t) || t == MYSQL_TYPE_JSON,
                Plan::Binary { .. } => is_string_type(t),
                Plan::Geometry => t == MYSQL_TYPE_GEOMETRY,
                Plan::Inet4 | Plan::Inet6 | Plan::Uuid => t == MYSQL_TYPE_STRING,
                Plan::Other => is_string_type(t) || t == MYSQL_TYPE_VECTOR,
            };
            if !ok {
                return Err(self.mismatch(
                    position,
                    format!("column {} ({}) is {t:?} in the binlog", i + 1, self.names[i]),
                ));
            }
            if let Some(unsigned) = col.unsigned {
                if let Plan::Int { unsigned: u, .. } = plan {
                    if *u != unsigned {
                        return Err(self.mismatch(
                            position,
                            format!(
                                "column {} ({}) is {} in the binlog metadata",
                                i + 1,
                                self.names[i],
                                if unsigned { "unsigned" } else { "signed" }
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes every row of a rows event.
    pub fn decode(&self, rows: &RowsData) -> Result<Vec<RowPair>, ReplayError> {
        let position = rows.position.to_string();
        if rows.db != self.db || rows.table != self.table {
            return Err(self.mismatch(
                &position,
                format!("the event is for {}.{}, not for this table", rows.db, rows.table),
            ));
        }
        self.check_columns(&rows.columns, &position)?;
        rows.rows
            .iter()
            .map(|(b, a)| {
                let b = b.as_ref().map(|r| self.decode_row(r, &position)).transpose()?;
                let a = a.as_ref().map(|r| self.decode_row(r, &position)).transpose()?;
                Ok((b, a))
            })
            .collect()
    }

    /// Decodes one row image (column types already checked with [`Self::check_columns`]).
    pub fn decode_row(
        &self,
        row: &[BinlogValue<'static>],
        position: &str,
    ) -> Result<Vec<Value>, ReplayError> {
        if row.len() != self.plans.len() {
            return Err(self.mismatch(
                position,
                format!(
                    "the binlog row has {} values, the schema {} columns",
                    row.len(),
                    self.plans.len()
                ),
            ));
        }
        row.iter()
            .zip(&self.plans)
            .enumerate()
            .map(|(i, (v, p))| {
                convert(p, v).map_err(|e| match e {
                    Bad::Mismatch(m) => {
                        self.mismatch(position, format!("column {} ({}): {m}", i + 1, self.names[i]))
                    }
                    Bad::Unsupported(m) => ReplayError::Unsupported {
                        what: format!(
                            "row of {}.{}, column {} ({}): {m}",
                            self.db,
                            self.table,
                            i + 1,
                            self.names[i]
                        ),
                        position: position.to_string(),
                    },
                    Bad::Corrupt(m) => ReplayError::Corrupt {
                        position: position.to_string(),
                        message: format!(
                            "row of {}.{}, column {} ({}): {m}",
                            self.db,
                            self.table,
                            i + 1,
                            self.names[i]
                        ),
                    },
                })
            })
            .collect()
    }
}

/// Decodes a rows event with a schema (prepares a [`TableDecoder`] each call; keep one per
/// table instead when decoding many events).
pub fn decode_rows(schema: &TableSchema, rows: &RowsData) -> Result<Vec<RowPair>, ReplayError> {
    TableDecoder::new(schema)?.decode(rows)
}

fn int_value(u: u64, unsigned: bool) -> Value {
    if unsigned {
        match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(u),
        }
    } else {
        Value::Int(u as i64)
    }
}

/// A UTC epoch (seconds, microseconds) as `Value::Date`; 0 is the zero timestamp.
pub fn epoch_to_date(secs: i64, micros: u32) -> Value {
    if secs == 0 && micros == 0 {
        return Value::Date(0, 0, 0, 0, 0, 0, 0);
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = ferry_core::civil::civil_from_days(days);
    Value::Date(
        y as u16,
        m as u8,
        d as u8,
        (rem / 3600) as u8,
        ((rem % 3600) / 60) as u8,
        (rem % 60) as u8,
        micros,
    )
}

/// mysql_common's text form of a TIMESTAMP2 (`secs[.micros]`) as (seconds, microseconds).
pub(crate) fn parse_epoch(b: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(b).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let micros = if frac.is_empty() {
        0
    } else {
        let mut f = frac.to_string();
        while f.len() < 6 {
            f.push('0');
        }
        f[..6].parse().ok()?
    };
    Some((secs, micros))
}

/// The text form of 16 UUID bytes (shared with the MySQL server-UUID formatting).
fn uuid_text(b: &[u8]) -> String {
    let mut a = [0u8; 16];
    let n = b.len().min(16);
    a[..n].copy_from_slice(&b[..n]);
    crate::translate::format_uuid(&a)
}

fn padded(b: &[u8], n: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    v.resize(n.max(b.len()), 0);
    v
}

fn format_inet6(b: &[u8]) -> String {
    let addr = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16]));
    // MariaDB prints IPv4-mapped and IPv4-compatible addresses with a dotted tail, like inet_ntop
    addr.to_string()
}

/// Why a binlog value cannot be converted.
#[derive(Debug, Clone, PartialEq)]
enum Bad {
    /// The value does not fit the schema column (a schema mismatch).
    Mismatch(String),
    /// The value fits the column's type but is impossible (a parser or binlog fault).
    Corrupt(String),
    /// The value is valid but Ferry cannot write it exactly.
    Unsupported(String),
}

/// A binary JSON value for a JSON column (a MySQL target): its MySQL text, with the expression
/// that rebuilds its typed scalars (DATE, TIME, DATETIME, DECIMAL) attached when it has some
/// ([`crate::json_sql`]).
fn json_value(j: &mysql_async::binlog::jsonb::Value<'_>) -> Result<Value, Bad> {
    use crate::json_sql::{self, SqlError};
    let text = crate::json::jsonb_to_text(j).map_err(Bad::Corrupt)?;
    match json_sql::typed_expression(j) {
        Ok(None) => Ok(Value::Bytes(text.into_bytes())),
        Ok(Some(expr)) => Ok(Value::Bytes(json_sql::attach(text, &expr))),
        Err(SqlError::Corrupt(m)) => Err(Bad::Corrupt(m)),
        Err(SqlError::TooLarge(m)) => Err(Bad::Unsupported(format!(
            "a JSON document with DATE/TIME/DATETIME/DECIMAL values Ferry rebuilds as a SQL expression: {m}"
        ))),
    }
}

impl From<String> for Bad {
    fn from(m: String) -> Self {
        Bad::Mismatch(m)
    }
}

impl From<&str> for Bad {
    fn from(m: &str) -> Self {
        Bad::Mismatch(m.to_string())
    }
}

/// A TIMESTAMP2 epoch from mysql_common's text. mysql_common reads the unsigned 4-byte seconds
/// as `i32`, so epochs from 2038-01-19 03:14:08 on (MariaDB 11.5+ stores them up to 2106) arrive
/// negative: give them back their unsigned value, as MySQL's `my_timestamp_from_binary` reads them.
fn timestamp_epoch(b: &[u8]) -> Option<(i64, u32)> {
    let (secs, micros) = parse_epoch(b)?;
    let secs = if secs < 0 { secs + (1i64 << 32) } else { secs };
    Some((secs, micros))
}

fn convert(plan: &Plan, v: &BinlogValue<'static>) -> Result<Value, Bad> {
    let v = match v {
        BinlogValue::Value(Value::NULL) => return Ok(Value::NULL),
        // a JSON column's text from a text source: a NUL byte is not JSON (MySQL refuses it), and
        // marks the typed form of `json_value`
        BinlogValue::Value(Value::Bytes(b)) if *plan == Plan::Json && b.contains(&0) => {
            return Err(Bad::Unsupported(
                "a text value with a NUL byte for a JSON column (not valid JSON)".into(),
            ))
        }
        BinlogValue::Value(x) => x,
        BinlogValue::Jsonb(j) => {
            return match plan {
                Plan::Json => json_value(j),
                Plan::Text => crate::json::jsonb_to_text(j)
                    .map(|s| Value::Bytes(s.into_bytes()))
                    .map_err(Bad::Corrupt),
                _ => Err("binary JSON value in a non-JSON column".into()),
            }
        }
        // the applier takes a partial update's diffs out first (`crate::json_diff::take_diffs`)
        BinlogValue::JsonDiff(_) => {
            return Err(Bad::Unsupported(
                "a JSON diff (binlog_row_value_options=PARTIAL_JSON) where a whole value is decoded".into(),
            ))
        }
    };
    let unexpected = || {
        Bad::Mismatch(match v {
            Value::Bytes(b) => format!(
                "unexpected binlog value 0x{} for {plan:?}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
            _ => format!("unexpected binlog value {v:?} for {plan:?}"),
        })
    };
    Ok(match plan {
        Plan::Int { bytes, unsigned } => {
            let raw = match v {
                Value::Int(i) => *i as u64,
                Value::UInt(u) => *u,
                _ => return Err(unexpected()),
            };
            let bits = u32::from(*bytes) * 8;
            if *unsigned {
                let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
                int_value(raw & mask, true)
            } else {
                let shift = 64 - bits;
                Value::Int(((raw << shift) as i64) >> shift)
            }
        }
        Plan::Float => match v {
            Value::Float(_) => v.clone(),
            _ => return Err(unexpected()),
        },
        Plan::Double => match v {
            Value::Double(_) => v.clone(),
            _ => return Err(unexpected()),
        },
        Plan::Year => match v {
            Value::Bytes(b) => {
                let n: i64 = std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(unexpected)?;
                // the raw byte 0 (YEAR 0000) arrives as 1900, which YEAR cannot hold
                Value::Int(if n == 1900 { 0 } else { n })
            }
            Value::Int(i) => Value::Int(*i),
            _ => return Err(unexpected()),
        },
        Plan::Date | Plan::DateTime => match v {
            Value::Date(..) => {
                temporal::check_datetime(v).map_err(Bad::Corrupt)?;
                v.clone()
            }
            _ => return Err(unexpected()),
        },
        Plan::Time => match v {
            Value::Time(..) => {
                temporal::check_time(v).map_err(Bad::Corrupt)?;
                v.clone()
            }
            _ => return Err(unexpected()),
        },
        Plan::Timestamp => {
            let (s, us) = match v {
                Value::Bytes(b) => timestamp_epoch(b).ok_or_else(unexpected)?,
                Value::Int(i) => (*i, 0),
                _ => return Err(unexpected()),
            };
            temporal::check_timestamp(s, i64::from(us)).map_err(Bad::Corrupt)?;
            epoch_to_date(s, us)
        }
        Plan::Enum(members) => match v {
            Value::Int(0) => Value::Bytes(Vec::new()),
            Value::Int(i) => {
                let m = usize::try_from(*i - 1)
                    .ok()
                    .and_then(|k| members.get(k))
                    .ok_or_else(|| {
                        format!(
                            "ENUM index {i} beyond the {} members of the schema",
                            members.len()
                        )
                    })?;
                Value::Bytes(m.clone())
            }
            _ => return Err(unexpected()),
        },
        Plan::Set(members) => match v {
            Value::Bytes(mask) => {
                let mut out = Vec::new();
                for (byte_i, byte) in mask.iter().enumerate() {
                    for bit in 0..8 {
                        if byte & (1 << bit) == 0 {
                            continue;
                        }
                        let k = byte_i * 8 + bit;
                        let m = members.get(k).ok_or_else(|| {
                            format!("SET bit {k} beyond the {} members of the schema", members.len())
                        })?;
                        if !out.is_empty() {
                            out.push(b',');
                        }
                        out.extend_from_slice(m);
                    }
                }
                Value::Bytes(out)
            }
            _ => return Err(unexpected()),
        },
        Plan::Binary { pad_to } => match v {
            Value::Bytes(b) => {
                let mut b = b.clone();
                if let Some(n) = pad_to {
                    if b.len() < *n {
                        b.resize(*n, 0);
                    }
                }
                Value::Bytes(b)
            }
            _ => return Err(unexpected()),
        },
        // MariaDB's fixed binary types lose their trailing zero bytes in the binlog, like BINARY
        Plan::Inet4 => match v {
            Value::Bytes(b) if b.len() <= 4 => {
                let b = padded(b, 4);
                Value::Bytes(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]).into_bytes())
            }
            _ => return Err(unexpected()),
        },
        Plan::Inet6 => match v {
            Value::Bytes(b) if b.len() <= 16 => Value::Bytes(format_inet6(&padded(b, 16)).into_bytes()),
            _ => return Err(unexpected()),
        },
        Plan::Uuid => match v {
            Value::Bytes(b) if b.len() <= 16 => Value::Bytes(uuid_text(&padded(b, 16)).into_bytes()),
            _ => return Err(unexpected()),
        },
        Plan::Decimal | Plan::Bit | Plan::Json | Plan::Text | Plan::Geometry | Plan::Other => match v {
            Value::Bytes(_) => v.clone(),
            _ => return Err(unexpected()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members() {
        assert_eq!(
            parse_members(r"enum('a''b','c\\d','e,f',' x','é')").unwrap(),
            vec![
                b"a'b".to_vec(),
                b"c\\d".to_vec(),
                b"e,f".to_vec(),
                b" x".to_vec(),
                "é".as_bytes().to_vec()
            ]
        );
        assert_eq!(
            parse_members("set('p','q)r')").unwrap(),
            vec![b"p".to_vec(), b"q)r".to_vec()]
        );
        assert_eq!(parse_members("enum('')").unwrap(), vec![Vec::<u8>::new()]);
        assert!(parse_members("enum('a'").is_err());
        assert!(parse_members("int").is_err());
    }

    #[test]
    fn a_nul_byte_in_json_text_is_refused() {
        // the typed form of a JSON value (text NUL expression) cannot come from row data
        let bad = BinlogValue::Value(Value::Bytes(b"{\"a\": 1}\0DROP TABLE x".to_vec()));
        assert!(matches!(convert(&Plan::Json, &bad), Err(Bad::Unsupported(m)) if m.contains("NUL")));
        let ok = BinlogValue::Value(Value::Bytes(b"{\"a\": 1}".to_vec()));
        assert_eq!(
            convert(&Plan::Json, &ok),
            Ok(Value::Bytes(b"{\"a\": 1}".to_vec()))
        );
        // a text column keeps any bytes
        let text = BinlogValue::Value(Value::Bytes(b"a\0b".to_vec()));
        assert_eq!(convert(&Plan::Text, &text), Ok(Value::Bytes(b"a\0b".to_vec())));
    }

    #[test]
    fn epochs() {
        assert_eq!(epoch_to_date(0, 0), Value::Date(0, 0, 0, 0, 0, 0, 0));
        assert_eq!(
            epoch_to_date(1_700_000_000, 123_456),
            Value::Date(2023, 11, 14, 22, 13, 20, 123_456)
        );
        assert_eq!(epoch_to_date(1, 0), Value::Date(1970, 1, 1, 0, 0, 1, 0));
        assert_eq!(
            epoch_to_date(2_147_483_647, 0),
            Value::Date(2038, 1, 19, 3, 14, 7, 0)
        );
        assert_eq!(parse_epoch(b"12.5"), Some((12, 500_000)));
        assert_eq!(parse_epoch(b"12.000001"), Some((12, 1)));
    }

    #[test]
    fn impossible_temporal_values_are_corrupt_naming_column_and_position() {
        use ferry_core::Column;
        let col = |name: &str, ty: &str| Column {
            name: name.into(),
            data_type: ty.into(),
            column_type: ty.into(),
            kind: ColumnKind::from_types(ty, ty),
            nullable: true,
            generated: false,
            charset: None,
            collation: None,
        };
        let schema = TableSchema {
            db: "d".into(),
            name: "t".into(),
            columns: vec![col("id", "int"), col("tm", "time"), col("dt", "datetime")],
            primary_key: None,
            unique_keys: vec![],
            engine: None,
            estimated_rows: 0,
            data_length: 0,
            system_time: None,
        };
        let dec = TableDecoder::new(&schema).unwrap();
        let ok = vec![
            BinlogValue::Value(Value::Int(1)),
            BinlogValue::Value(Value::Time(true, 34, 22, 59, 58, 990_000)),
            BinlogValue::Value(Value::Date(9999, 12, 31, 23, 59, 59, 999_999)),
        ];
        assert_eq!(
            dec.decode_row(&ok, "f:4").unwrap()[1],
            Value::Time(true, 34, 22, 59, 58, 990_000)
        );
        // what unpatched mysql_common decodes -00:00:01.50 (TIME(2)) to in a release build
        let mut bad = ok.clone();
        bad[1] = BinlogValue::Value(Value::Time(false, 26, 0, 63, 62, 16_277_216));
        let e = dec.decode_row(&bad, "mysql-bin.000007:1234").unwrap_err();
        assert!(matches!(e, ReplayError::Corrupt { .. }), "{e:?}");
        let m = e.to_string();
        assert!(
            m.contains("mysql-bin.000007:1234") && m.contains("column 2 (tm)") && m.contains("d.t"),
            "{m}"
        );
        assert_eq!(e.kind(), ferry_core::ErrorKind::Definite);
        let mut bad = ok.clone();
        bad[2] = BinlogValue::Value(Value::Date(2024, 1, 1, 0, 60, 0, 0));
        let e = dec.decode_row(&bad, "f:9").unwrap_err();
        assert!(e.to_string().contains("column 3 (dt)"), "{e}");
    }

    #[test]
    fn timestamps_beyond_2038_keep_their_unsigned_epoch() {
        // mysql_common reads the 4-byte seconds as i32: 3 000 000 000 arrives as -1294967296
        let v = BinlogValue::Value(Value::Bytes(b"-1294967296.500000".to_vec()));
        assert_eq!(
            convert(&Plan::Timestamp, &v).unwrap(),
            Value::Date(2065, 1, 24, 5, 20, 0, 500_000)
        );
        let v = BinlogValue::Value(Value::Bytes(b"2147483647.999999".to_vec()));
        assert_eq!(
            convert(&Plan::Timestamp, &v).unwrap(),
            Value::Date(2038, 1, 19, 3, 14, 7, 999_999)
        );
    }

    #[test]
    fn ints_by_schema() {
        let p = Plan::Int {
            bytes: 1,
            unsigned: true,
        };
        let v = BinlogValue::Value(Value::Int(-1));
        assert_eq!(convert(&p, &v).unwrap(), Value::Int(255));
        let p = Plan::Int {
            bytes: 8,
            unsigned: true,
        };
        assert_eq!(convert(&p, &v).unwrap(), Value::UInt(u64::MAX));
        let p = Plan::Int {
            bytes: 3,
            unsigned: false,
        };
        // INT24 decoded as unsigned by metadata-less readers never happens, but masks hold
        let v = BinlogValue::Value(Value::Int(0xff_ffff));
        assert_eq!(convert(&p, &v).unwrap(), Value::Int(-1));
    }

    #[test]
    fn enum_set_year() {
        let e = Plan::Enum(vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(
            convert(&e, &BinlogValue::Value(Value::Int(2))).unwrap(),
            Value::Bytes(b"b".to_vec())
        );
        assert_eq!(
            convert(&e, &BinlogValue::Value(Value::Int(0))).unwrap(),
            Value::Bytes(vec![])
        );
        assert!(convert(&e, &BinlogValue::Value(Value::Int(3))).is_err());
        let s = Plan::Set((0..10).map(|i| format!("m{i}").into_bytes()).collect());
        assert_eq!(
            convert(&s, &BinlogValue::Value(Value::Bytes(vec![0b101, 0b10]))).unwrap(),
            Value::Bytes(b"m0,m2,m9".to_vec())
        );
        assert_eq!(
            convert(&Plan::Year, &BinlogValue::Value(Value::Bytes(b"1900".to_vec()))).unwrap(),
            Value::Int(0)
        );
        assert_eq!(
            convert(&Plan::Year, &BinlogValue::Value(Value::Bytes(b"2155".to_vec()))).unwrap(),
            Value::Int(2155)
        );
    }
}
