//! The target session a replayed DDL statement runs in: the source statement's own `sql_mode`
//! and `time_zone`, as a replica applies them.
//!
//! Both change what a DDL means. `sql_mode` decides how the text parses (`ANSI_QUOTES`,
//! `PIPES_AS_CONCAT`, `NO_BACKSLASH_ESCAPES`, `HIGH_NOT_PRECEDENCE`, `IGNORE_SPACE`) and what an
//! `ALTER TABLE` does to existing rows (a narrowing `MODIFY` truncates them without a strict mode
//! and fails with one); `time_zone` decides which instant a `TIMESTAMP` default literal stands
//! for, and an `ALTER TABLE … ADD COLUMN ts TIMESTAMP DEFAULT '…'` fills the existing rows with it
//! on both servers without any row event. The server logs the statement's `sql_mode` always and
//! its `time_zone` when the statement used one; the applier sets them before the DDL and restores
//! its own session after it.
//!
//! This module is pure: the logged `sql_mode` bit set to mode names, per source flavor (MySQL and
//! MariaDB agree on bits 0–31 and differ above).

/// Mode names of bits 0–31, shared by MySQL (5.7 names; 8.0 never logs the removed ones) and
/// MariaDB. Bit 4 is MariaDB's `IGNORE_BAD_TABLE_OPTIONS` and unused in MySQL.
const COMMON: [&str; 32] = [
    "REAL_AS_FLOAT",
    "PIPES_AS_CONCAT",
    "ANSI_QUOTES",
    "IGNORE_SPACE",
    "IGNORE_BAD_TABLE_OPTIONS",
    "ONLY_FULL_GROUP_BY",
    "NO_UNSIGNED_SUBTRACTION",
    "NO_DIR_IN_CREATE",
    "POSTGRESQL",
    "ORACLE",
    "MSSQL",
    "DB2",
    "MAXDB",
    "NO_KEY_OPTIONS",
    "NO_TABLE_OPTIONS",
    "NO_FIELD_OPTIONS",
    "MYSQL323",
    "MYSQL40",
    "ANSI",
    "NO_AUTO_VALUE_ON_ZERO",
    "NO_BACKSLASH_ESCAPES",
    "STRICT_TRANS_TABLES",
    "STRICT_ALL_TABLES",
    "NO_ZERO_IN_DATE",
    "NO_ZERO_DATE",
    "ALLOW_INVALID_DATES",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "TRADITIONAL",
    "NO_AUTO_CREATE_USER",
    "HIGH_NOT_PRECEDENCE",
    "NO_ENGINE_SUBSTITUTION",
    "PAD_CHAR_TO_FULL_LENGTH",
];

/// MariaDB's bits from 32 on.
const MARIADB_HIGH: [&str; 3] = [
    "EMPTY_STRING_IS_NULL",
    "SIMULTANEOUS_ASSIGNMENT",
    "TIME_ROUND_FRACTIONAL",
];

/// MySQL 8's bits from 32 on.
const MYSQL_HIGH: [&str; 1] = ["TIME_TRUNCATE_FRACTIONAL"];

/// The mode names of a logged `sql_mode`, in bit order; unknown bits are returned apart.
pub fn sql_mode_names(bits: u64, source_mariadb: bool) -> (Vec<&'static str>, u64) {
    let mut names = Vec::new();
    let mut unknown = 0u64;
    let high: &[&'static str] = if source_mariadb {
        &MARIADB_HIGH
    } else {
        &MYSQL_HIGH
    };
    for bit in 0..64u32 {
        if bits & (1u64 << bit) == 0 {
            continue;
        }
        let i = bit as usize;
        let name = match i {
            4 if !source_mariadb => None,
            0..=31 => COMMON.get(i).copied(),
            _ => high.get(i - 32).copied(),
        };
        match name {
            Some(n) => names.push(n),
            None => unknown |= 1u64 << bit,
        }
    }
    (names, unknown)
}

/// True when the time zone is safe to put in a statement literal (a name like
/// `Europe/Berlin`, `SYSTEM`, or an offset like `+08:00`).
pub fn plain_time_zone(tz: &str) -> bool {
    !tz.is_empty()
        && tz.len() <= 64
        && tz
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_modes_decode_alike_for_both_flavors() {
        // MariaDB 10.11's default: STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,
        // NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION
        let bits = (1 << 21) | (1 << 26) | (1 << 28) | (1 << 30);
        let want = vec![
            "STRICT_TRANS_TABLES",
            "ERROR_FOR_DIVISION_BY_ZERO",
            "NO_AUTO_CREATE_USER",
            "NO_ENGINE_SUBSTITUTION",
        ];
        assert_eq!(sql_mode_names(bits, true), (want.clone(), 0));
        assert_eq!(sql_mode_names(bits, false), (want, 0));
        assert_eq!(sql_mode_names(1 << 2, false).0, vec!["ANSI_QUOTES"]);
        assert_eq!(sql_mode_names(0, true), (vec![], 0));
    }

    #[test]
    fn high_bits_follow_the_flavor() {
        assert_eq!(sql_mode_names(1 << 32, true).0, vec!["EMPTY_STRING_IS_NULL"]);
        assert_eq!(sql_mode_names(1 << 32, false).0, vec!["TIME_TRUNCATE_FRACTIONAL"]);
        assert_eq!(sql_mode_names(1 << 34, true).0, vec!["TIME_ROUND_FRACTIONAL"]);
        assert_eq!(sql_mode_names(1 << 34, false), (vec![], 1 << 34));
        assert_eq!(sql_mode_names(1 << 4, false), (vec![], 1 << 4), "unused in MySQL");
    }

    #[test]
    fn time_zone_literals() {
        for ok in [
            "+08:00",
            "-03:30",
            "SYSTEM",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
        ] {
            assert!(plain_time_zone(ok), "{ok}");
        }
        for bad in ["", "x'; DROP TABLE t; --", "a b", "'"] {
            assert!(!plain_time_zone(bad), "{bad}");
        }
    }

    proptest! {
        /// Every set bit is either named or reported unknown, never both, never lost.
        #[test]
        fn bits_are_named_or_reported(bits in any::<u64>(), mariadb in any::<bool>()) {
            let (names, unknown) = sql_mode_names(bits, mariadb);
            prop_assert_eq!(names.len() as u32 + unknown.count_ones(), bits.count_ones());
            prop_assert_eq!(unknown & !bits, 0);
        }
    }
}
