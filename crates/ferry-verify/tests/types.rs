//! Every type family: a planted difference per row, each row its own chunk (so the chunk digest
//! itself must see the difference), then the repair SQL makes a second run consistent.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, exec, source, table_digest, target};
use ferry_verify::DiffKind;
use ferry_verify::{RowHash, VerifyOptions};
use mysql_async::prelude::Queryable;
use mysql_async::Value;

const DDL: &str = "CREATE TABLE t (
  id INT PRIMARY KEY, i BIGINT NOT NULL, amount DECIMAL(20,6), dt DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL,
  d DATE, tm TIME(3), y YEAR, s VARCHAR(50) COLLATE utf8mb4_general_ci, n VARCHAR(10) NULL, b BLOB, j JSON,
  e ENUM('red','green','blue'), st SET('a','b','c'), bt BIT(12), f FLOAT, dbl DOUBLE);
INSERT INTO t SELECT seq, seq * 1000, seq / 7, TIMESTAMP('2024-01-02 03:04:05.123456') + INTERVAL seq DAY,
  FROM_UNIXTIME(1700000000 + seq), DATE('2024-02-01') + INTERVAL seq DAY, SEC_TO_TIME(seq * 3600 + 0.5),
  2000 + seq, CONCAT('Name', seq), '', UNHEX(MD5(seq)), JSON_OBJECT('k', seq), ELT(1 + seq % 3, 'red', 'green', 'blue'),
  'a,c', seq, seq / 3, seq / 3e0 FROM seq_1_to_20;";

async fn float_of(c: &mut mysql_async::Conn, sql: &str) -> Result<Value> {
    let v: Option<mysql_async::Row> = c.exec_first(sql, ()).await?;
    Ok(v.unwrap().unwrap().remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_family_is_compared_exactly_and_repaired() -> Result<()> {
    every_type_family(RowHash::Auto, "fv_types").await
}

/// The same with each row hash forced: the CRC32 pair (MariaDB 10.8+) and the MD5 prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_family_under_each_row_hash() -> Result<()> {
    every_type_family(RowHash::Crc32Pair, "fv_types_crc").await?;
    every_type_family(RowHash::Md5, "fv_types_md5").await
}

async fn every_type_family(hash: RowHash, db: &str) -> Result<()> {
    let opts = |n: u64| VerifyOptions {
        row_hash: hash,
        ..opts(n)
    };
    let (mut s, mut d) = both(db, DDL).await?;
    // The neighbouring FLOAT and DOUBLE of rows 12 and 13, written exactly.
    let Value::Float(f) = float_of(&mut s, "SELECT f FROM t WHERE id = 12").await? else {
        panic!()
    };
    let next_f = f32::from_bits(f.to_bits() + 1);
    let Value::Double(x) = float_of(&mut s, "SELECT dbl FROM t WHERE id = 13").await? else {
        panic!()
    };
    let next_d = f64::from_bits(x.to_bits() + 1);
    exec(
        &mut d,
        &format!(
            "DELETE FROM t WHERE id = 1;
             INSERT INTO t (id, i) VALUES (100, 1);
             UPDATE t SET i = i + 1 WHERE id = 2;
             UPDATE t SET amount = amount + 0.000001 WHERE id = 3;
             UPDATE t SET dt = dt + INTERVAL 1 MICROSECOND WHERE id = 4;
             UPDATE t SET s = 'changed' WHERE id = 5;
             UPDATE t SET b = UNHEX(MD5(999)) WHERE id = 6;
             UPDATE t SET j = JSON_OBJECT('k', 'x') WHERE id = 7;
             UPDATE t SET e = 'red' WHERE id = 8;
             UPDATE t SET st = 'a' WHERE id = 9;
             UPDATE t SET bt = 4095 WHERE id = 10;
             UPDATE t SET n = NULL WHERE id = 11;
             UPDATE t SET f = {:e} WHERE id = 12;
             UPDATE t SET dbl = {next_d:e} WHERE id = 13;
             UPDATE t SET s = UPPER(s) WHERE id = 14;
             UPDATE t SET ts = FROM_UNIXTIME(1700000015.001) WHERE id = 15;
             UPDATE t SET tm = '01:00:00' WHERE id = 16;
             UPDATE t SET y = 1999 WHERE id = 17;
             UPDATE t SET d = '2020-01-01' WHERE id = 18;",
            f64::from(next_f)
        ),
    )
    .await?;
    assert_eq!(
        float_of(&mut d, "SELECT f FROM t WHERE id = 12").await?,
        Value::Float(next_f)
    );
    assert_eq!(
        float_of(&mut d, "SELECT dbl FROM t WHERE id = 13").await?,
        Value::Double(next_d)
    );

    let (r, repair) = run(&sel_db(db), &opts(1)).await?;
    assert!(r.objects.is_empty(), "{:#?}", r.objects);
    let t = table(&r, "t");
    assert_eq!(t.method, "chunked-checksum");
    assert_eq!(t.key_columns, vec!["id"]);
    assert_eq!(counts(t), (1, 1, 17), "{t:#?}");
    assert_eq!(t.chunks, 21);
    assert_eq!(t.chunks_different, 19);
    assert_eq!((t.rows_compared, t.target_rows), (20, 20));
    let mut want = vec![(DiffKind::OnlyInSource, vec!["1".to_string()], vec![])];
    for (id, col) in [
        (2, "i"),
        (3, "amount"),
        (4, "dt"),
        (5, "s"),
        (6, "b"),
        (7, "j"),
        (8, "e"),
        (9, "st"),
        (10, "bt"),
        (11, "n"),
        (12, "f"),
        (13, "dbl"),
        (14, "s"),
        (15, "ts"),
        (16, "tm"),
        (17, "y"),
        (18, "d"),
    ] {
        want.push((DiffKind::Different, vec![id.to_string()], vec![col.to_string()]));
    }
    want.push((DiffKind::OnlyInTarget, vec!["100".to_string()], vec![]));
    assert_eq!(keys(t), want);
    assert!(!r.consistent);
    assert_eq!(r.exit_status(), 2);
    let text = r.render_text();
    assert!(
        text.contains("only in source") && text.contains("columns: dbl"),
        "{text}"
    );

    apply(&repair).await?;
    let (r2, repair2) = run(&sel_db(db), &opts(1)).await?;
    assert!(r2.consistent, "{}", r2.render_text());
    assert_eq!(counts(table(&r2, "t")), (0, 0, 0));
    assert_eq!(r2.exit_status(), 0);
    assert!(!String::from_utf8_lossy(&repair2).contains("INTO"));
    let mut s = connect(&source()).await?;
    let mut d = connect(&target()).await?;
    assert_eq!(
        table_digest(&mut s, db, "t").await?,
        table_digest(&mut d, db, "t").await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_data_is_consistent_and_serializes() -> Result<()> {
    let db = "fv_equal";
    both(db, DDL).await?;
    exec(
        &mut connect(&source()).await?,
        "CREATE TABLE fv_equal.k (a INT, b TEXT); INSERT INTO fv_equal.k VALUES (1,'x'),(1,'x'),(NULL,NULL)",
    )
    .await?;
    exec(
        &mut connect(&target()).await?,
        "CREATE TABLE fv_equal.k (a INT, b TEXT); INSERT INTO fv_equal.k VALUES (NULL,NULL),(1,'x'),(1,'x')",
    )
    .await?;
    let (r, _) = run(&sel_db(db), &opts(7)).await?;
    assert!(r.consistent, "{}", r.render_text());
    assert_eq!(r.exit_status(), 0);
    assert_eq!(table(&r, "t").chunks, 3);
    assert_eq!(table(&r, "k").method, "keyless-multiset");
    assert_eq!(table(&r, "k").rows_compared, 3);
    let json = serde_json::to_value(&r)?;
    assert_eq!(json["consistent"], true);
    assert_eq!(json["tables"][1]["rows_compared"], 20);
    let back: ferry_verify::VerifyReport = serde_json::from_value(json)?;
    assert_eq!(back, r);
    Ok(())
}
