//! Ferry's filter evaluator against the server itself: random rows in a table with integer,
//! unsigned, decimal, date, date-time and binary-collation string columns, and generated
//! conditions over them; for every condition and row, `(condition) IS TRUE` as the source server
//! computes it must equal [`CompiledFilter::matches`] over the row as the binary protocol
//! returns it (what the replay's decoder produces).

use anyhow::{Context, Result};
use ferry_core::catalog::read_tables;
use ferry_core::filter::RowFilter;
use ferry_core::filter_eval::CompiledFilter;
use ferry_testkit::{connect, exec, fresh_db, source};
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};

const DB: &str = "ferry_filter_eval";

/// A small deterministic generator (the failing condition is printed, so a failure reproduces).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() as usize) % xs.len()]
    }
}

const INTS: &[&str] = &[
    "NULL",
    "0",
    "-1",
    "1",
    "7",
    "-7",
    "2147483647",
    "-9223372036854775808",
];
const UINTS: &[&str] = &["NULL", "0", "1", "7", "18446744073709551615"];
const DECS: &[&str] = &["NULL", "0", "-1.5", "2.25", "7", "7.000", "-0.001", "99999.999"];
const DATES: &[&str] = &[
    "NULL",
    "'2024-01-01'",
    "'2024-02-29'",
    "'1999-12-31'",
    "'0000-00-00'",
];
const DTS: &[&str] = &[
    "NULL",
    "'2024-01-01 00:00:00'",
    "'2024-01-01 10:00:00.5'",
    "'2024-02-29 23:59:59.999'",
    "'1999-12-31 00:00:00'",
];
const STRS: &[&str] = &[
    "NULL", "''", "'a'", "'a '", "'a\t'", "'A'", "'b'", "'ab'", "' a'", "'é'", "'ä b'",
];
const ASCII: &[&str] = &["NULL", "''", "'a'", "'a '", "'a\t'", "'A'", "'b'", "'ab'", "' a'"];

/// Literal pools by column (for rows and for conditions).
fn pool(col: &str) -> &'static [&'static str] {
    match col {
        "i" => INTS,
        "u" => UINTS,
        "d" => DECS,
        "dt" => DATES,
        "ts" => DTS,
        "s" | "b" => STRS,
        _ => ASCII,
    }
}

/// Literals a condition may compare a column with (a superset of the row values).
fn lit(r: &mut Rng, col: &str) -> String {
    let extra: &[&str] = match col {
        "i" | "u" | "d" => &["3", "-2.5", "7.0001", "0.0", "-0"],
        "dt" | "ts" => &[
            "'2024-1-1'",
            "'2024-01-01 00:00:00.000001'",
            "'2000-01-01 12:00:00'",
        ],
        _ => &["'a  '", "'b '", "'aa'", "' '"],
    };
    let all: Vec<&str> = pool(col)
        .iter()
        .chain(extra)
        .copied()
        .filter(|v| *v != "NULL" || r.next() % 4 == 0)
        .collect();
    r.pick(&all).to_string()
}

const COLS: &[&str] = &["i", "u", "d", "dt", "ts", "s", "s2", "b"];
/// Pairs of columns that compare the same way.
const PAIRS: &[(&str, &str)] = &[("i", "u"), ("i", "d"), ("u", "d"), ("dt", "ts")];

fn atom(r: &mut Rng) -> String {
    let c = *r.pick(COLS);
    match r.next() % 7 {
        0 => format!("{c} IS {}NULL", if r.next() % 2 == 0 { "NOT " } else { "" }),
        1 => {
            let n = 1 + r.next() % 3;
            let items: Vec<String> = (0..n).map(|_| lit(r, c)).collect();
            let not = if r.next() % 2 == 0 { "NOT " } else { "" };
            format!("{c} {not}IN ({})", items.join(", "))
        }
        2 => {
            let not = if r.next() % 2 == 0 { "NOT " } else { "" };
            format!("{c} {not}BETWEEN {} AND {}", lit(r, c), lit(r, c))
        }
        3 => {
            let (a, b) = *r.pick(PAIRS);
            format!("{a} {} {b}", r.pick(&["=", "<", ">=", "<=>", "<>"]))
        }
        _ => format!(
            "{c} {} {}",
            r.pick(&["=", "<>", "!=", "<", "<=", ">", ">=", "<=>"]),
            lit(r, c)
        ),
    }
}

fn condition(r: &mut Rng, depth: u32) -> String {
    if depth == 0 || r.next() % 3 == 0 {
        return atom(r);
    }
    match r.next() % 4 {
        0 => format!("NOT ({})", condition(r, depth - 1)),
        k => format!(
            "({}) {} ({})",
            condition(r, depth - 1),
            ["AND", "OR", "XOR"][(k - 1) as usize],
            condition(r, depth - 1)
        ),
    }
}

#[tokio::test]
async fn evaluator_agrees_with_the_server() -> Result<()> {
    let mut c = connect(&source()).await?;
    fresh_db(&mut c, DB).await?;
    exec(
        &mut c,
        &format!(
            "CREATE TABLE {DB}.t (id INT PRIMARY KEY, i BIGINT NULL, u BIGINT UNSIGNED NULL, \
             d DECIMAL(12,3) NULL, dt DATE NULL, ts DATETIME(6) NULL, \
             s VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
             s2 VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin NULL, b VARBINARY(20) NULL)"
        ),
    )
    .await?;
    exec(&mut c, "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'").await?;
    let mut r = Rng(0x5eed_f11e);
    for id in 0..60 {
        let vals: Vec<String> = COLS.iter().map(|col| r.pick(pool(col)).to_string()).collect();
        exec(
            &mut c,
            &format!("INSERT INTO {DB}.t VALUES ({id}, {})", vals.join(", ")),
        )
        .await?;
    }
    let schema = read_tables(&mut c, DB, &["t".to_string()]).await?.remove(0);
    let rows: Vec<Row> = c.exec(format!("SELECT * FROM {DB}.t ORDER BY id"), ()).await?;
    let rows: Vec<Vec<Value>> = rows.into_iter().map(Row::unwrap).collect();
    let mut checked = 0;
    for _ in 0..400 {
        let cond = condition(&mut r, 3);
        let f = RowFilter::parse(&cond).map_err(|e| anyhow::anyhow!("{cond}: {e}"))?;
        let compiled = CompiledFilter::compile(&f, &schema).map_err(|e| anyhow::anyhow!("{cond}: {e}"))?;
        let server: Vec<(i32, i64)> = c
            .exec(format!("SELECT id, ({cond}) IS TRUE FROM {DB}.t ORDER BY id"), ())
            .await
            .with_context(|| cond.clone())?;
        for (row, (id, want)) in rows.iter().zip(&server) {
            let got = compiled
                .matches(row)
                .map_err(|e| anyhow::anyhow!("{cond}: {e}"))?;
            assert_eq!(got, *want == 1, "row {id} {row:?}: {cond}");
            checked += 1;
        }
    }
    assert_eq!(checked, 400 * 60);
    exec(&mut c, &format!("DROP DATABASE {DB}")).await?;
    Ok(())
}

#[tokio::test]
async fn what_it_cannot_reproduce_is_refused_with_the_reason() -> Result<()> {
    let db = "ferry_filter_eval_refused";
    let mut c = connect(&source()).await?;
    fresh_db(&mut c, db).await?;
    exec(
        &mut c,
        &format!(
            "CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(10) COLLATE utf8mb4_general_ci, \
             f DOUBLE, at TIMESTAMP NULL, i INT, d DATE)"
        ),
    )
    .await?;
    let schema = read_tables(&mut c, db, &["t".to_string()]).await?.remove(0);
    let refused = |text: &str| {
        let f = RowFilter::parse(text).expect("parses");
        match CompiledFilter::compile(&f, &schema) {
            Ok(_) => panic!("{text} compiled"),
            Err(e) => e,
        }
    };
    assert!(refused("name = 'x'").contains("utf8mb4_general_ci"));
    assert!(refused("f > 1").contains("floating-point"));
    assert!(refused("at > '2024-01-01'").contains("time zone"));
    assert!(refused("i = '7'").contains("without quotes"));
    assert!(refused("i + 1 = 2").contains("arithmetic") || refused("i + 1 = 2").contains("not evaluated"));
    assert!(refused("LOWER(name) = 'x'").contains("not evaluated"));
    assert!(refused("d > '2024-02-30'").contains("valid date"));
    assert!(refused("i > 1e3").contains("floating-point"));
    assert!(refused("i = d").contains("different ways"));
    exec(&mut c, &format!("DROP DATABASE {db}")).await?;
    Ok(())
}
