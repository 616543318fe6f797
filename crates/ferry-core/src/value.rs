//! Exact encoding of row values read through the binary protocol, for the target.
//!
//! Two encodings, one per write path:
//! - [`write_load_field`]: a field of `LOAD DATA … CHARACTER SET binary FIELDS TERMINATED BY '\t'
//!   ESCAPED BY '\\' LINES TERMINATED BY '\n'`, with [`load_column_target`] giving the column list
//!   entry and `SET` expression where a type cannot be loaded from text as is;
//! - [`write_sql_literal`]: a literal for a multi-row `INSERT`.
//!
//! Exactness: values come from the binary protocol, so FLOAT and DOUBLE arrive as IEEE bits and are
//! written in the shortest decimal form that parses back to the same double (a FLOAT widened to
//! double is exact, so the server's string → double → float conversion returns the same bits).
//! Strings are copied as raw bytes (sessions use `character_set_results = binary`), TIMESTAMPs are
//! read and written in UTC, YEAR 0 is written as `0000` (a text `0` would mean 2000).

use std::io::Write;

use mysql_async::Value;

use crate::sql::quote_ident;
use crate::table::{Column, ColumnKind};

/// Big-endian BIT bytes as an integer.
pub fn bit_value(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// A `Value::Date`'s fields: year, month, day, hour, minute, second, microsecond.
type DateParts = (u16, u8, u8, u8, u8, u8, u32);

fn write_date(out: &mut Vec<u8>, kind: ColumnKind, (y, mo, d, h, mi, s, us): DateParts) {
    if kind == ColumnKind::Date {
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
    } else if us == 0 {
        let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    } else {
        let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}");
    }
}

fn write_time(out: &mut Vec<u8>, neg: bool, days: u32, h: u8, m: u8, s: u8, us: u32) {
    let hours = u64::from(days) * 24 + u64::from(h);
    let sign = if neg { "-" } else { "" };
    if us == 0 {
        let _ = write!(out, "{sign}{hours:02}:{m:02}:{s:02}");
    } else {
        let _ = write!(out, "{sign}{hours:02}:{m:02}:{s:02}.{us:06}");
    }
}

/// Writes a value's plain text form (no quoting, no escaping). Returns false for NULL.
fn write_plain(out: &mut Vec<u8>, kind: ColumnKind, v: &Value) -> bool {
    match v {
        Value::NULL => return false,
        Value::Int(i) if kind == ColumnKind::Year => {
            let _ = write!(out, "{i:04}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{:e}", f64::from(*f));
        }
        Value::Double(d) => {
            let _ = write!(out, "{d:e}");
        }
        Value::Date(y, mo, d, h, mi, s, us) => write_date(out, kind, (*y, *mo, *d, *h, *mi, *s, *us)),
        Value::Time(neg, days, h, m, s, us) => write_time(out, *neg, *days, *h, *m, *s, *us),
        Value::Bytes(b) if kind == ColumnKind::Bit => {
            let _ = write!(out, "{}", bit_value(b));
        }
        Value::Bytes(b) => out.extend_from_slice(b),
    }
    true
}

/// Appends one LOAD DATA field (without the separator).
pub fn write_load_field(out: &mut Vec<u8>, kind: ColumnKind, v: &Value) {
    match v {
        Value::NULL => out.extend_from_slice(b"\\N"),
        Value::Bytes(b) if kind != ColumnKind::Bit => {
            for &c in b {
                match c {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    0 => out.extend_from_slice(b"\\0"),
                    c => out.push(c),
                }
            }
        }
        v => {
            write_plain(out, kind, v);
        }
    }
}

/// The LOAD DATA column-list entry for a column and, where the text form cannot be loaded as is,
/// the `SET` assignment that converts it: BIT from its integer form, JSON and the MariaDB type
/// plugins (UUID, INET6, INET4) from utf8mb4 text.
pub fn load_column_target(col: &Column, ordinal: usize) -> (String, Option<String>) {
    let var = format!("@ferry_v{ordinal}");
    match col.kind {
        ColumnKind::Bit => {
            let set = format!("{} = CAST({var} AS UNSIGNED)", quote_ident(&col.name));
            (var, Some(set))
        }
        ColumnKind::Json => {
            let set = format!("{} = CONVERT({var} USING utf8mb4)", quote_ident(&col.name));
            (var, Some(set))
        }
        ColumnKind::Geometry => {
            let set = format!("{} = {var}", quote_ident(&col.name));
            (var, Some(set))
        }
        // UUID/INET6/INET4 from a binary-charset field would be parsed as the native bytes
        ColumnKind::Plugin => {
            let set = format!("{} = CONVERT({var} USING utf8mb4)", quote_ident(&col.name));
            (var, Some(set))
        }
        _ => (quote_ident(&col.name), None),
    }
}

/// Appends one SQL literal for a multi-row INSERT.
pub fn write_sql_literal(out: &mut Vec<u8>, kind: ColumnKind, v: &Value) {
    match v {
        Value::NULL => out.extend_from_slice(b"NULL"),
        Value::Bytes(b) if kind == ColumnKind::Bit => {
            let _ = write!(out, "{}", bit_value(b));
        }
        Value::Bytes(b) if kind == ColumnKind::Decimal => out.extend_from_slice(b),
        Value::Bytes(b) => {
            let text = matches!(kind, ColumnKind::Json | ColumnKind::Plugin);
            if text {
                out.extend_from_slice(b"CONVERT(");
            }
            out.extend_from_slice(b"_binary'");
            for &c in b {
                match c {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\'' => out.extend_from_slice(b"\\'"),
                    0 => out.extend_from_slice(b"\\0"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0x1a => out.extend_from_slice(b"\\Z"),
                    c => out.push(c),
                }
            }
            out.push(b'\'');
            if text {
                out.extend_from_slice(b" USING utf8mb4)");
            }
        }
        Value::Date(..) | Value::Time(..) => {
            out.push(b'\'');
            write_plain(out, kind, v);
            out.push(b'\'');
        }
        Value::Int(_) | Value::UInt(_) if kind == ColumnKind::Year => {
            out.push(b'\'');
            write_plain(out, kind, v);
            out.push(b'\'');
        }
        v => {
            write_plain(out, kind, v);
        }
    }
}

/// A value's plain text form, for messages and reports (not for SQL).
pub fn display_value(kind: ColumnKind, v: &Value) -> String {
    let mut out = Vec::new();
    if !write_plain(&mut out, kind, v) {
        return "NULL".into();
    }
    String::from_utf8(out).unwrap_or_else(|e| format!("0x{}", hex::encode(e.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(kind: ColumnKind, v: Value) -> String {
        let mut out = Vec::new();
        write_load_field(&mut out, kind, &v);
        String::from_utf8(out).unwrap()
    }

    fn lit(kind: ColumnKind, v: Value) -> String {
        let mut out = Vec::new();
        write_sql_literal(&mut out, kind, &v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_round_trip_exactly() {
        for f in [
            0.1f32,
            f32::MAX,
            f32::MIN_POSITIVE,
            1.0e-45,
            -3.4028235e38,
            16777217.0,
            0.3,
        ] {
            let s = load(ColumnKind::Float, Value::Float(f));
            let back: f64 = s.parse().unwrap();
            assert_eq!(back as f32, f, "{s}");
            assert_eq!(back, f64::from(f));
        }
        for d in [0.1f64, f64::MAX, f64::MIN_POSITIVE, 5e-324, -1.0 / 3.0] {
            let s = load(ColumnKind::Double, Value::Double(d));
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), d.to_bits(), "{s}");
        }
    }

    #[test]
    fn special_forms() {
        assert_eq!(load(ColumnKind::Year, Value::Int(0)), "0000");
        assert_eq!(lit(ColumnKind::Year, Value::Int(0)), "'0000'");
        assert_eq!(
            load(ColumnKind::Time, Value::Time(true, 34, 22, 59, 59, 5)),
            "-838:59:59.000005"
        );
        assert_eq!(
            load(ColumnKind::Date, Value::Date(0, 0, 0, 0, 0, 0, 0)),
            "0000-00-00"
        );
        assert_eq!(
            load(ColumnKind::DateTime, Value::Date(2024, 2, 29, 23, 1, 2, 120)),
            "2024-02-29 23:01:02.000120"
        );
        assert_eq!(load(ColumnKind::Bit, Value::Bytes(vec![1, 0])), "256");
        assert_eq!(
            load(ColumnKind::Binary, Value::Bytes(b"a\tb\n\\\0".to_vec())),
            "a\\tb\\n\\\\\\0"
        );
        assert_eq!(load(ColumnKind::Text, Value::NULL), "\\N");
        assert_eq!(load(ColumnKind::Text, Value::Bytes(b"\\N".to_vec())), "\\\\N");
        assert_eq!(
            lit(ColumnKind::Binary, Value::Bytes(b"it's\0".to_vec())),
            "_binary'it\\'s\\0'"
        );
        assert_eq!(lit(ColumnKind::Decimal, Value::Bytes(b"-1.50".to_vec())), "-1.50");
        assert_eq!(
            lit(ColumnKind::Json, Value::Bytes(b"{}".to_vec())),
            "CONVERT(_binary'{}' USING utf8mb4)"
        );
        assert_eq!(
            lit(ColumnKind::Plugin, Value::Bytes(b"::1".to_vec())),
            "CONVERT(_binary'::1' USING utf8mb4)"
        );
        assert_eq!(lit(ColumnKind::Plugin, Value::NULL), "NULL");
        assert_eq!(
            load(ColumnKind::Plugin, Value::Bytes(b"1.2.3.4".to_vec())),
            "1.2.3.4"
        );
    }
}
