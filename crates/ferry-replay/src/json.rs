//! MySQL binary JSON (JSONB) from the binlog → JSON text in MySQL's own output format.
//!
//! A SELECT of a MySQL JSON column returns the server's canonical text: `{"k": 1, "l": [1, 2]}`
//! (a space after `:` and `,`), object keys ordered by length and then bytes (the storage order),
//! doubles with a `.0` when integral, decimals unquoted, dates and times quoted with six
//! fractional digits, other opaque values as `"base64:type<N>:<data>"`. This module renders the
//! same text, so the decoded binlog value equals what the binary protocol returns and digests
//! match.
//!
//! Known gap: a double's digits come from Rust's shortest round-trip form, which can differ from
//! MySQL's `my_gcvt` in the last digits for some values (both parse back to the same double).

use std::fmt::Write;

use mysql_async::binlog::jsonb::{self, JsonContainer, JsonDom, JsonNumber, JsonScalar};

/// Renders a JSONB value as MySQL JSON text.
pub fn jsonb_to_text(v: &jsonb::Value<'_>) -> Result<String, String> {
    let dom = v.clone().parse().map_err(|e| format!("binary JSON: {e}"))?;
    let mut out = String::new();
    write_dom(&mut out, &dom);
    Ok(out)
}

fn write_dom(out: &mut String, d: &JsonDom) {
    match d {
        JsonDom::Container(JsonContainer::Array(items)) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_dom(out, x);
            }
            out.push(']');
        }
        JsonDom::Container(JsonContainer::Object(map)) => {
            let mut keys: Vec<(&String, &JsonDom)> = map.iter().collect();
            keys.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
            out.push('{');
            for (i, (k, v)) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_dom(out, v);
            }
            out.push('}');
        }
        JsonDom::Scalar(s) => match s {
            JsonScalar::Null => out.push_str("null"),
            JsonScalar::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            JsonScalar::String(s) => write_string(out, s),
            JsonScalar::Number(JsonNumber::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            JsonScalar::Number(JsonNumber::Uint(u)) => {
                let _ = write!(out, "{u}");
            }
            JsonScalar::Number(JsonNumber::Double(d)) => write_double(out, *d),
            JsonScalar::Number(JsonNumber::Decimal(dec)) => {
                let _ = write!(out, "{dec}");
            }
            JsonScalar::DateTime(t) => {
                let _ = write!(out, "\"{t:.6}\"");
            }
            JsonScalar::Opaque(o) => {
                let _ = write!(out, "\"{o}\"");
            }
        },
    }
}

pub(crate) fn write_double(out: &mut String, d: f64) {
    if !d.is_finite() {
        out.push_str("null");
        return;
    }
    let sci = format!("{d:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-5..15).contains(&exp) {
        let s = format!("{d}");
        out.push_str(&s);
        if !s.contains('.') {
            out.push_str(".0");
        }
    } else {
        let _ = write!(out, "{mant}e{exp}");
    }
}

pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_strings() {
        let mut s = String::new();
        write_double(&mut s, 3.0);
        s.push(' ');
        write_double(&mut s, 0.1);
        s.push(' ');
        write_double(&mut s, 1e100);
        s.push(' ');
        write_double(&mut s, -1.5e-7);
        assert_eq!(s, "3.0 0.1 1e100 -1.5e-7");
        let mut s = String::new();
        write_string(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
