//! Sample verification compares rows within every chunk and never calls "consistent" what it did
//! not compare; the scope of comparison tasks (row filter, columns, time zone); row counts of
//! `TablesSelectCount`.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::exec;
use ferry_verify::{RowFilter, TableScope, VerifyMode, VerifyOptions};
use mysql_async::prelude::Queryable;

/// A verification without repair SQL.
async fn check(o: &VerifyOptions, db: &str) -> Result<ferry_verify::VerifyReport> {
    Ok(ferry_verify::verify(
        &ferry_testkit::source(),
        &ferry_testkit::target(),
        &sel_db(db),
        o,
        ferry_core::progress::null_sink(),
        None,
    )
    .await?)
}

fn sample(rows: u8, tables: u8) -> VerifyMode {
    VerifyMode::Sample {
        rows_percent: rows,
        tables_percent: tables,
    }
}

/// The ids of `db.t` whose key falls in (`inside`) or out of the `pct` % row sample, as the
/// verifier chooses it (CRC32 of the key's text).
async fn ids_by_sample(
    c: &mut mysql_async::Conn,
    db: &str,
    pct: u8,
    inside: bool,
    n: usize,
) -> Result<Vec<u64>> {
    let op = if inside { "<" } else { ">=" };
    let ids: Vec<u64> = c
        .query(format!(
            "SELECT id FROM `{db}`.t WHERE CRC32(CONCAT_WS('|', `id`)) % 100 {op} {pct} ORDER BY id LIMIT {n}"
        ))
        .await?;
    Ok(ids)
}

/// The check of issue #13: 23,777 rows, two planted differences, SelectRowsPerTable 50, in one
/// chunk (ChunkRows larger than the table) and in many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_of_a_table_smaller_than_a_chunk_compares_rows() -> Result<()> {
    let db = "fv_sample_rows";
    let (mut s, mut d) = both(
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_23777",
    )
    .await?;
    // Two differences: one row whose key is in the 50 % sample, one whose key is not.
    let inside = ids_by_sample(&mut s, db, 50, true, 1).await?;
    let outside = ids_by_sample(&mut s, db, 50, false, 1).await?;
    let sampled: u64 = s
        .query_first(format!(
            "SELECT COUNT(*) FROM `{db}`.t WHERE CRC32(CONCAT_WS('|', `id`)) % 100 < 50"
        ))
        .await?
        .unwrap_or(0);
    exec(
        &mut d,
        &format!(
            "UPDATE t SET v = 'changed' WHERE id = {}; DELETE FROM t WHERE id = {}",
            inside[0], outside[0]
        ),
    )
    .await?;
    for chunk_rows in [100_000, 20_000, 1_000] {
        let o = VerifyOptions {
            mode: sample(50, 100),
            ..opts(chunk_rows)
        };
        let (r, _) = run(&sel_db(db), &o).await?;
        let t = table(&r, "t");
        let text = r.render_text();
        println!("chunk rows {chunk_rows}:\n{text}");
        assert!(t.rows_compared > 0, "{text}");
        assert_eq!(t.rows_compared, sampled, "{text}");
        assert!((10_000..13_800).contains(&t.rows_compared), "{text}");
        assert_eq!(t.chunks_compared, t.chunks, "{text}");
        assert_eq!(t.sample_percent, 50);
        assert_eq!(
            (t.only_in_source, t.only_in_target, t.different),
            (0, 0, 1),
            "{text}"
        );
        assert_eq!(t.keys[0].key, vec![inside[0].to_string()]);
        assert!(!r.consistent);
        assert!(text.contains("sample 50% of rows"), "{text}");
        assert!(
            text.contains("sample: 50% of the rows of 100% of the tables"),
            "{text}"
        );
    }
    // Only the difference outside the sample left: consistent within the sample, rows compared.
    exec(
        &mut d,
        &format!("UPDATE t SET v = MD5(id) WHERE id = {}", inside[0]),
    )
    .await?;
    let o = VerifyOptions {
        mode: sample(50, 100),
        ..opts(100_000)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    let t = table(&r, "t");
    assert!(r.consistent && t.rows_compared == sampled, "{}", r.render_text());
    // Full mode finds the row outside the sample.
    let (r, _) = run(&sel_db(db), &opts(100_000)).await?;
    assert_eq!(table(&r, "t").only_in_source, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_sample_is_compared_in_full_and_nothing_unchecked_is_consistent() -> Result<()> {
    let db = "fv_sample_small";
    let (mut s, mut d) = both(
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v INT);
         INSERT INTO t SELECT seq, seq FROM seq_1_to_200;
         CREATE TABLE e (id INT PRIMARY KEY);
         CREATE TABLE k (a INT, b INT);",
    )
    .await?;
    // Keep in `t` only three rows outside the 1 % sample: the sample selects none of them.
    let keep = ids_by_sample(&mut s, db, 1, false, 3).await?;
    let list: Vec<String> = keep.iter().map(u64::to_string).collect();
    for c in [&mut s, &mut d] {
        exec(c, &format!("DELETE FROM t WHERE id NOT IN ({})", list.join(","))).await?;
    }
    exec(&mut d, &format!("UPDATE t SET v = 0 WHERE id = {}", keep[1])).await?;
    let o = VerifyOptions {
        mode: sample(1, 100),
        ..opts(10)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    let text = r.render_text();
    println!("{text}");
    let t = table(&r, "t");
    assert!(t.sample_fallback, "{text}");
    assert_eq!((t.rows_compared, t.different), (3, 1), "{text}");
    assert!(text.contains("all rows (the row sample selected none)"), "{text}");
    // Empty tables: verified empty in full, shown as such.
    let e = table(&r, "e");
    assert!(e.consistent() && e.empty(), "{text}");
    assert_eq!(e.verdict(), "EMPTY");
    assert_eq!(table(&r, "k").verdict(), "EMPTY");
    assert!(!text.contains("rows compared 0 (target 0) · sample"), "{text}");
    assert!(!r.consistent);
    exec(&mut d, &format!("UPDATE t SET v = id WHERE id = {}", keep[1])).await?;
    let (r, _) = run(&sel_db(db), &o).await?;
    assert!(r.consistent, "{}", r.render_text());
    assert!(r.tables.iter().all(|t| t.rows_compared > 0 || t.empty()));
    Ok(())
}

#[test]
fn a_report_without_rows_compared_is_not_consistent() {
    let json = serde_json::json!({
        "database": "d", "table": "t", "target_database": "d", "target_table": "t",
        "rows_compared": 0, "target_rows": 0, "only_in_source": 0, "only_in_target": 0,
        "different": 0, "key_columns": ["id"], "keys": [], "method": "chunked-checksum",
        "chunks": 4, "chunks_compared": 1, "chunks_different": 0, "sample_percent": 50,
    });
    let t: ferry_verify::TableReport = serde_json::from_value(json).expect("a report");
    assert!(!t.consistent());
    assert_eq!(t.verdict(), "NOT CHECKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_tables_are_sampled_by_row() -> Result<()> {
    let db = "fv_sample_keyless";
    let (_, mut d) = both(
        db,
        "CREATE TABLE k (a INT, b VARCHAR(10));
         INSERT INTO k SELECT seq, 'x' FROM seq_1_to_2000",
    )
    .await?;
    exec(&mut d, "DELETE FROM k WHERE a <= 40").await?;
    let o = VerifyOptions {
        mode: sample(50, 100),
        ..opts(1000)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    let t = table(&r, "k");
    assert!((700..1300).contains(&t.rows_compared), "{}", r.render_text());
    // About half of the 40 missing rows are in the sample; the same rows each run.
    assert!((5..=35).contains(&t.only_in_source), "{}", r.render_text());
    let (r2, _) = run(&sel_db(db), &o).await?;
    assert_eq!(table(&r2, "k").only_in_source, t.only_in_source);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_counts_and_tables_left_out() -> Result<()> {
    let db = "fv_sample_counts";
    let mut ddl = String::new();
    for i in 0..12 {
        ddl.push_str(&format!(
            "CREATE TABLE t{i} (id INT PRIMARY KEY); INSERT INTO t{i} SELECT seq FROM seq_1_to_20;"
        ));
    }
    let (_, mut d) = both(db, &ddl).await?;
    for i in 0..12 {
        exec(&mut d, &format!("DELETE FROM t{i} WHERE id = 1")).await?;
    }
    // No table compared by content, every table by count.
    let o = VerifyOptions {
        mode: sample(100, 0),
        count_tables_percent: 100,
        ..opts(10)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    assert_eq!(r.tables.len(), 12);
    for t in &r.tables {
        assert_eq!(t.method, "row-count");
        assert_eq!((t.rows_compared, t.target_rows, t.only_in_source), (20, 19, 1));
    }
    assert!(r.render_text().contains("row counts only"));
    // No table in either sample: every table listed as not compared.
    let o = VerifyOptions {
        mode: sample(100, 0),
        count_tables_percent: 0,
        ..opts(10)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    assert!(r.tables.is_empty());
    assert_eq!(r.sampling.as_ref().map(|s| s.not_compared.len()), Some(12));
    assert!(r
        .render_text()
        .contains("not compared (outside the sample): 12 table(s)"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_comparison_filters_rows_and_columns() -> Result<()> {
    let db = "fv_scoped";
    let (_, mut d) = both(
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10), ts TIMESTAMP NULL);
         INSERT INTO t SELECT seq, seq, 'x', FROM_UNIXTIME(1700000000 + seq * 3600) FROM seq_1_to_100;
         CREATE TABLE other (id INT PRIMARY KEY); INSERT INTO other VALUES (1);",
    )
    .await?;
    exec(
        &mut d,
        "UPDATE t SET a = 0 WHERE id = 90; UPDATE t SET b = 'y' WHERE id = 10; DELETE FROM other",
    )
    .await?;
    let scope = |filter: Option<&str>, columns: Option<Vec<&str>>| TableScope {
        db: db.into(),
        table: "t".into(),
        columns: columns.map(|c| c.into_iter().map(String::from).collect()),
        filter: filter.map(|f| RowFilter::parse(f).expect("a filter")),
    };
    let mode = |tables: Vec<TableScope>, tz: Option<&str>| VerifyMode::Scoped {
        databases: Vec::new(),
        tables,
        views: Vec::new(),
        rows_percent: 100,
        time_zone: tz.map(String::from),
    };
    // Rows 1..50: only the change of b in row 10; only `other` is not compared at all.
    let o = VerifyOptions {
        mode: mode(vec![scope(Some("id <= 50"), None)], None),
        ..opts(30)
    };
    let r = check(&o, db).await?;
    assert_eq!(r.tables.len(), 1, "{}", r.render_text());
    let t = table(&r, "t");
    assert_eq!((t.rows_compared, t.different), (50, 1), "{}", r.render_text());
    assert_eq!(t.keys[0].key, vec!["10".to_string()]);
    assert!(r.render_text().contains("where id <= 50"));
    // Column a only: row 90 differs, row 10 (column b) is not compared.
    let o = VerifyOptions {
        mode: mode(vec![scope(None, Some(vec!["a"]))], None),
        ..opts(30)
    };
    let r = check(&o, db).await?;
    let t = table(&r, "t");
    assert_eq!((t.rows_compared, t.different), (100, 1), "{}", r.render_text());
    assert_eq!(t.compared_columns, vec!["id".to_string(), "a".to_string()]);
    assert_eq!(t.keys[0].key, vec!["90".to_string()]);
    // Column b where a > 50: consistent (row 10 is filtered out, a is not compared).
    let o = VerifyOptions {
        mode: mode(
            vec![scope(Some("a > 50 AND a <> 0 OR id = 90"), Some(vec!["b"]))],
            None,
        ),
        ..opts(30)
    };
    let r = check(&o, db).await?;
    assert!(r.consistent, "{}", r.render_text());
    // Repair SQL of a partial-column comparison is refused.
    let o = VerifyOptions {
        mode: mode(vec![scope(None, Some(vec!["a"]))], None),
        ..opts(30)
    };
    let err = run(&sel_db(db), &o).await.err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("repair SQL needs every column")));
    // A filter on a column the table lacks: the table cannot be compared, and says why.
    let o = VerifyOptions {
        mode: mode(vec![scope(Some("nope = 1"), None)], None),
        ..opts(30)
    };
    let r = check(&o, db).await?;
    let t = table(&r, "t");
    assert!(!r.consistent && t.error.as_deref().is_some_and(|e| e.contains("nope")));
    // A table the selection does not hold is reported as not compared.
    let mut missing = scope(None, None);
    missing.table = "absent".into();
    let o = VerifyOptions {
        mode: mode(vec![missing], None),
        ..opts(30)
    };
    let r = check(&o, db).await?;
    assert!(
        !r.consistent && table(&r, "absent").verdict() == "INCONSISTENT",
        "{}",
        r.render_text()
    );
    // A whole database: every table, with `other` missing its row.
    let o = VerifyOptions {
        mode: VerifyMode::Scoped {
            databases: vec![db.to_string()],
            tables: Vec::new(),
            views: Vec::new(),
            rows_percent: 100,
            time_zone: None,
        },
        ..opts(30)
    };
    let r = check(&o, db).await?;
    assert_eq!(r.tables.len(), 2);
    assert_eq!(table(&r, "other").only_in_source, 1);
    // FilterTimeZone: the same literal selects other rows at +08:00 than in UTC.
    let in_zone = |tz: Option<&'static str>| {
        let o = VerifyOptions {
            mode: mode(vec![scope(Some("ts < '2023-11-16 06:00:00'"), None)], tz),
            ..opts(30)
        };
        async move { check(&o, db).await.map(|r| table(&r, "t").rows_compared) }
    };
    let (utc, cst) = (in_zone(None).await?, in_zone(Some("+08:00")).await?);
    assert!(utc > 0 && cst > 0 && utc - cst == 8, "{utc} {cst}");
    Ok(())
}
