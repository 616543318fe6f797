//! The type matrix shared by the load and replay tests: one table, `select` (a reserved word),
//! with every column type family, generated columns and awkward identifiers, and rows of edge
//! values (extremes, NULLs, zero dates, YEAR 0000, the ENUM error value, multi-MB LOBs, every byte
//! value, 4-byte UTF-8, latin1 high bytes).
//!
//! It also holds every fractional precision 0–6 of TIME, DATETIME and TIMESTAMP (`t0`…`t6`,
//! `dt0`…`dt6`, `ts0`…`ts6`), each row with one set of edge values ([`TEMPORAL_SETS`]: negative
//! and positive TIME down to `-00:00:00.01` and out to `±838:59:5x`, the DATETIME and TIMESTAMP
//! extremes), written with exactly the column's number of digits so neither flavor rounds. The
//! sets are public so other tests can build their own temporal tables ([`temporal_ddl`],
//! [`temporal_tuple`]).

use anyhow::Result;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// Columns of MariaDB's type plugins, added by [`create_sql`] on servers that have all three
/// (MariaDB 10.10+, INET4's first release): UUID, INET6, INET4.
pub const PLUGIN_COLUMNS: &str = "uu UUID, i6 INET6, i4 INET4";

/// True when the server has UUID, INET6 and INET4 (MariaDB 10.10 or later; MySQL reports 8.x/9.x).
pub fn has_plugin_types(conn: &Conn) -> bool {
    conn.server_version() >= (10, 10, 0)
}

/// [`CREATE`], with [`PLUGIN_COLUMNS`] appended when the server has them ([`has_plugin_types`]).
/// [`insert_rows`] fills them with edge values (all zeros, all ones, trailing zero bytes, a
/// version-1 UUID whose storage order differs from its text order, IPv4-mapped and -compatible
/// IPv6) when the table has them.
pub fn create_sql(conn: &Conn) -> String {
    if has_plugin_types(conn) {
        let open = CREATE
            .strip_suffix(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
            .unwrap_or(CREATE);
        format!("{open},\n  {PLUGIN_COLUMNS}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
    } else {
        CREATE.to_string()
    }
}

/// Edge values of [`PLUGIN_COLUMNS`] for the rows `id` 1–6 (UUID, INET6, INET4; `NULL` is NULL).
pub const PLUGIN_VALUES: &[(i64, &str, &str, &str)] = &[
    (1, "'00000000-0000-0000-0000-000000000000'", "'::'", "'0.0.0.0'"),
    (
        2,
        "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'",
        "'255.255.255.255'",
    ),
    (3, "NULL", "NULL", "NULL"),
    (
        4,
        "'11223344-5566-1788-9900-aabbccddeeff'",
        "'::ffff:1.2.3.4'",
        "'10.0.0.0'",
    ),
    (
        5,
        "'11223344-5566-7788-e900-aabbccddee00'",
        "'2001:db8::'",
        "'1.0.0.0'",
    ),
    (
        6,
        "'6ccd780c-baba-1026-9564-5b8c656024db'",
        "'::1.2.3.4'",
        "'127.0.0.1'",
    ),
];

/// `CREATE TABLE \`select\` …` (unqualified: run it after `USE db`).
pub const CREATE: &str = r#"CREATE TABLE `select` (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  dec65 DECIMAL(65,30), f FLOAT, d DOUBLE,
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
  b1 BIT(1), b64 BIT(64),
  e ENUM('a','b','c'), st SET('x','y','z'),
  j JSON,
  bl LONGBLOB, tx LONGTEXT CHARACTER SET utf8mb4,
  u8 VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
  l1 VARCHAR(300) CHARACTER SET latin1,
  vb VARBINARY(300),
  gen BIGINT AS (i + 1) VIRTUAL,
  gens VARCHAR(40) AS (CONCAT(e, '-', id)) STORED,
  `we``ird col` INT,
  `order` VARCHAR(10),
  t0 TIME(0), t1 TIME(1), t2 TIME(2), t3 TIME(3), t4 TIME(4), t5 TIME(5), t6 TIME(6),
  dt0 DATETIME(0), dt1 DATETIME(1), dt2 DATETIME(2), dt3 DATETIME(3), dt4 DATETIME(4), dt5 DATETIME(5), dt6 DATETIME(6),
  ts0 TIMESTAMP(0) NULL DEFAULT NULL, ts1 TIMESTAMP(1) NULL DEFAULT NULL, ts2 TIMESTAMP(2) NULL DEFAULT NULL,
  ts3 TIMESTAMP(3) NULL DEFAULT NULL, ts4 TIMESTAMP(4) NULL DEFAULT NULL, ts5 TIMESTAMP(5) NULL DEFAULT NULL,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"#;

/// Inserts the edge-value rows into `db`.`select`. The session's sql_mode is relaxed first: zero
/// dates and the ENUM error value need it; TIMESTAMP values are UTC.
pub async fn insert_rows(conn: &mut Conn, db: &str) -> Result<()> {
    crate::exec(
        conn,
        "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION', SESSION time_zone = '+00:00'",
    )
    .await?;
    for r in rows() {
        crate::exec(
            conn,
            &format!("INSERT INTO {}.`select` ({COLUMNS}) VALUES {r}", crate::quote(db)),
        )
        .await?;
    }
    let plugin: Option<String> = conn
        .exec_first(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = 'select' AND COLUMN_NAME = 'uu'",
            (db,),
        )
        .await?;
    if plugin.is_some() {
        for (id, u, i6, i4) in PLUGIN_VALUES {
            crate::exec(
                conn,
                &format!(
                    "UPDATE {}.`select` SET uu = {u}, i6 = {i6}, i4 = {i4} WHERE id = {id}",
                    crate::quote(db)
                ),
            )
            .await?;
        }
    }
    Ok(())
}

/// The columns the rows fill (generated columns are computed).
pub const COLUMNS: &str = "id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dec65, f, d, dt, dtm, ts, tm, yr, b1, b64, e, st, j, bl, tx, u8, l1, vb, `we``ird col`, `order`, \
t0, t1, t2, t3, t4, t5, t6, dt0, dt1, dt2, dt3, dt4, dt5, dt6, ts0, ts1, ts2, ts3, ts4, ts5, ts6";

/// The temporal columns, in [`temporal_tuple`]'s order.
pub const TEMPORAL_COLUMNS: &str =
    "t0, t1, t2, t3, t4, t5, t6, dt0, dt1, dt2, dt3, dt4, dt5, dt6, ts0, ts1, ts2, ts3, ts4, ts5, ts6";

/// Edge values for the temporal columns, one set a row: (TIME, DATETIME, TIMESTAMP in UTC), each
/// with six fractional digits (cut to each column's precision by [`temporal_tuple`]); `None` is
/// NULL. The first six sets go with the six rows of [`rows`] (minimums, maximums, NULLs, zeros,
/// fractions, more fractions); the others get rows of their own.
pub const TEMPORAL_SETS: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
    (
        Some("-838:59:59.000000"),
        Some("1000-01-01 00:00:00.000000"),
        Some("1970-01-01 00:00:01.000000"),
    ),
    (
        Some("838:59:59.000000"),
        Some("9999-12-31 23:59:59.999999"),
        Some("2038-01-19 03:14:07.999999"),
    ),
    (None, None, None),
    (
        Some("00:00:00.000000"),
        Some("0000-00-00 00:00:00.000000"),
        Some("0000-00-00 00:00:00.000000"),
    ),
    (
        Some("-00:00:00.010000"),
        Some("2024-02-29 12:34:56.123456"),
        Some("2024-02-29 12:34:56.000001"),
    ),
    (
        Some("-00:00:01.500000"),
        Some("1969-12-31 23:59:59.990000"),
        Some("2000-01-01 00:00:00.500000"),
    ),
    (
        Some("-12:34:56.780000"),
        Some("2001-02-03 04:05:06.780000"),
        Some("2001-02-03 04:05:06.780000"),
    ),
    (
        Some("-838:59:58.990000"),
        Some("1000-01-01 00:00:00.010000"),
        Some("1970-01-01 00:00:01.010000"),
    ),
    (
        Some("-838:59:58.999999"),
        Some("9999-12-31 23:59:59.000001"),
        Some("2038-01-19 03:14:07.000001"),
    ),
    (
        Some("12:34:56.789012"),
        Some("2024-12-31 23:59:59.999999"),
        Some("2024-12-31 23:59:59.999999"),
    ),
    (
        Some("-00:00:00.999999"),
        Some("2000-02-29 00:00:00.999999"),
        Some("1999-12-31 23:59:59.999999"),
    ),
    (
        Some("-00:00:00.000001"),
        Some("2000-01-01 00:00:00.000001"),
        Some("2000-01-01 00:00:00.000001"),
    ),
    (
        Some("838:59:58.999999"),
        Some("1999-01-01 12:00:00.100000"),
        Some("2021-06-30 12:00:00.100000"),
    ),
    (
        Some("-24:00:00.100000"),
        Some("2010-10-10 10:10:10.101010"),
        Some("2010-10-10 10:10:10.101010"),
    ),
    (
        Some("-00:59:59.990000"),
        Some("1970-01-01 00:00:00.000000"),
        Some("1970-01-01 00:00:02.990000"),
    ),
];

/// `v` (with six fractional digits) cut to `p` digits, quoted; NULL for `None`.
pub fn with_precision(v: Option<&str>, p: usize) -> String {
    match v {
        None => "NULL".to_string(),
        Some(v) => match v.split_once('.') {
            Some((whole, _)) if p == 0 => format!("'{whole}'"),
            Some((whole, frac)) => format!("'{whole}.{}'", &frac[..p.min(frac.len())]),
            None => format!("'{v}'"),
        },
    }
}

/// The values of [`TEMPORAL_COLUMNS`] for one set, without parentheses.
pub fn temporal_tuple(set: &(Option<&str>, Option<&str>, Option<&str>)) -> String {
    let mut out = Vec::with_capacity(21);
    for v in [set.0, set.1, set.2] {
        for p in 0..=6 {
            out.push(with_precision(v, p));
        }
    }
    out.join(", ")
}

/// Column definitions of [`TEMPORAL_COLUMNS`] (for `CREATE TABLE`).
pub fn temporal_ddl() -> String {
    let mut out = Vec::with_capacity(21);
    for p in 0..=6 {
        out.push(format!("t{p} TIME({p})"));
    }
    for p in 0..=6 {
        out.push(format!("dt{p} DATETIME({p})"));
    }
    for p in 0..=6 {
        out.push(format!("ts{p} TIMESTAMP({p}) NULL DEFAULT NULL"));
    }
    out.join(", ")
}

/// The edge-value rows, as SQL tuples: the six base rows, then one row per further
/// [`TEMPORAL_SETS`] entry (other columns NULL).
pub fn rows() -> Vec<String> {
    let mut out: Vec<String> = base_rows()
        .into_iter()
        .zip(TEMPORAL_SETS)
        .map(|(base, set)| {
            let open = base.strip_suffix(')').unwrap_or(&base);
            format!("{open}, {})", temporal_tuple(set))
        })
        .collect();
    for (i, set) in TEMPORAL_SETS.iter().enumerate().skip(out.len()) {
        out.push(format!(
            "({}{}, {})",
            i + 1,
            ", NULL".repeat(30),
            temporal_tuple(set)
        ));
    }
    out
}

fn base_rows() -> Vec<String> {
    let all_bytes = "UNHEX('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF')";
    let high_latin1 = "UNHEX('808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF')";
    vec![
        // minimums
        format!("(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, \
          '-99999999999999999999999999999999999.999999999999999999999999999999', -3.40282e38, -1.7976931348623157e308, \
          '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '-838:59:59', 1901, b'0', b'0', \
          'a', '', '{{}}', '', '', '😀𝄞 ünï', CONVERT({high_latin1} USING latin1), {all_bytes}, 1, 'from')"),
        // maximums, multi-MB LOBs, escapes
        format!("(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, \
          '99999999999999999999999999999999999.999999999999999999999999999999', 3.40282e38, 1.7976931348623157e308, \
          '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155, b'1', \
          b'1111111111111111111111111111111111111111111111111111111111111111', \
          'c', 'x,y,z', '{{\"a\": [1, 2.5, {{\"b\": null}}], \"s\": \"é\\\\u0000\\\\\"\"}}', \
          REPEAT(CONCAT({all_bytes}, 'x'), 24000), REPEAT('xé😀\\t\\n\\\\', 400000), \
          'a\\tb\\nc\\\\d\\'e\\0f\\rg', CONVERT(UNHEX('5C095C6E0A') USING latin1), UNHEX('5C4E00'), -1, '\\\\N')"),
        // NULLs everywhere
        "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)".to_string(),
        // zero dates, YEAR 0000, ENUM error value '', empty strings, 'NULL' text
        "(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00', 0, b'0', b'0', \
          '', '', '[]', '', '', '', '', '', 0, 'NULL')".to_string(),
        // fractions, tiny floats, negative sub-hour time
        "(5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, '0.000000000000000000000000000001', 1.17549e-38, 4.9406564584124654e-324, \
          '2024-02-29', '2024-02-29 12:34:56.123456', '2024-02-29 12:34:56.000001', '-00:00:00.500000', 2000, b'1', \
          b'1000000000000000000000000000000000000000000000000000000000000001', 'b', 'y', 'null', 0x00, 'a', 'Å', 'ÿ', 0x0a, 5, 'order')".to_string(),
        "(6, -1, 200, -1, 60000, -1, 16000000, -1, 4000000000, -1, 18000000000000000000, '-0.5', 0.1, 0.1, \
          '1970-01-01', '1969-12-31 23:59:59.999999', '2000-01-01 00:00:00', '-12:00:00.000001', 1999, b'0', \
          b'0101010101010101', 'b', 'x,z', '\"str\"', 'blob', 'text', 'ß', 'x', 0x5c, 6, 'limit')".to_string(),
    ]
}
