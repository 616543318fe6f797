//! Repair SQL: statements that, run on the target, make it equal to the source for the rows the
//! comparison found different.
//!
//! - key only in source → `INSERT`; key in both with different values → `REPLACE`;
//! - key only in target → `DELETE … WHERE <key> LIMIT 1`, written before the chunk's inserts (a
//!   key differing only in letter case under a case-insensitive collation is both only-in-target
//!   and only-in-source, and the insert would collide with it);
//! - keyless tables: surplus rows → `DELETE … WHERE <every column <=> value> LIMIT n`, missing rows
//!   → `INSERT`s.
//!
//! Values are written with `ferry_core::value::write_sql_literal` (exact: FLOAT/DOUBLE round-trip,
//! strings as `_binary` bytes, TIMESTAMPs in UTC); the file starts with the session settings those
//! literals need.

use ferry_core::sql::{ident_list, qualified, quote_ident};
use ferry_core::value::write_sql_literal;
use ferry_core::ColumnKind;
use mysql_async::Value;

/// The header of a repair file.
pub fn header() -> &'static str {
    "-- Ferry repair SQL: run on the target.\n\
     SET SESSION time_zone = '+00:00', SESSION foreign_key_checks = 0, \
     SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES';\n"
}

/// A target table with its compared columns.
#[derive(Debug, Clone)]
pub struct RepairTable {
    pub target: String,
    pub names: Vec<String>,
    pub kinds: Vec<ColumnKind>,
    /// Positions of the key among the columns (`None`: keyless).
    pub key: Option<Vec<usize>>,
}

impl RepairTable {
    /// Describes a target table.
    pub fn new(
        db: &str,
        table: &str,
        names: Vec<String>,
        kinds: Vec<ColumnKind>,
        key: Option<Vec<usize>>,
    ) -> Self {
        RepairTable {
            target: qualified(db, table),
            names,
            kinds,
            key,
        }
    }

    fn values(&self, out: &mut Vec<u8>, row: &[Value]) {
        out.push(b'(');
        for (i, (k, v)) in self.kinds.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_sql_literal(out, *k, v);
        }
        out.push(b')');
    }

    fn write_row(&self, out: &mut Vec<u8>, verb: &str, row: &[Value], times: u64) {
        out.extend_from_slice(
            format!(
                "{verb} INTO {} ({}) VALUES ",
                self.target,
                ident_list(self.names.iter().map(String::as_str))
            )
            .as_bytes(),
        );
        for i in 0..times {
            if i > 0 {
                out.push(b',');
            }
            self.values(out, row);
        }
        out.extend_from_slice(b";\n");
    }

    /// `INSERT` of a row missing on the target (`times` copies).
    pub fn insert(&self, out: &mut Vec<u8>, row: &[Value], times: u64) {
        self.write_row(out, "INSERT", row, times);
    }

    /// `REPLACE` of a row whose values differ.
    pub fn replace(&self, out: &mut Vec<u8>, row: &[Value]) {
        self.write_row(out, "REPLACE", row, 1);
    }

    /// `DELETE` of a target row by its key (keyed tables), or of `times` identical rows matched on
    /// every column, NULL-safe (keyless tables).
    pub fn delete(&self, out: &mut Vec<u8>, row: &[Value], times: u64) {
        let cols: Vec<usize> = match &self.key {
            Some(k) => k.clone(),
            None => (0..self.names.len()).collect(),
        };
        out.extend_from_slice(format!("DELETE FROM {} WHERE ", self.target).as_bytes());
        for (n, &i) in cols.iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(b" AND ");
            }
            out.extend_from_slice(quote_ident(&self.names[i]).as_bytes());
            out.extend_from_slice(b" <=> ");
            write_sql_literal(out, self.kinds[i], &row[i]);
        }
        out.extend_from_slice(format!(" LIMIT {times};\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let t = RepairTable::new(
            "d",
            "t",
            vec!["id".into(), "s".into()],
            vec![ColumnKind::Int { unsigned: false }, ColumnKind::Text],
            Some(vec![0]),
        );
        let row = [Value::Int(1), Value::Bytes(b"a'b".to_vec())];
        let mut out = Vec::new();
        t.insert(&mut out, &row, 1);
        t.replace(&mut out, &row);
        t.delete(&mut out, &row, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "INSERT INTO `d`.`t` (`id`, `s`) VALUES (1,_binary'a\\'b');\n\
             REPLACE INTO `d`.`t` (`id`, `s`) VALUES (1,_binary'a\\'b');\n\
             DELETE FROM `d`.`t` WHERE `id` <=> 1 LIMIT 1;\n"
        );
    }
}
