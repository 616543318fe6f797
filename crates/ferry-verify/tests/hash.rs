//! The row text and its hashes: differences that only the text's layout can see (a field boundary
//! moved between two columns, `|` inside a value, NULL against `''`, another character set, the
//! last bit of a FLOAT, a column nullable on one side only), each row its own chunk so that the
//! chunk digest itself must see it, under each row hash; then the repair SQL makes a second run
//! consistent.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::exec;
use ferry_verify::{DiffKind, RowHash, VerifyOptions};

const DDL: &str = "CREATE TABLE h (
  id INT PRIMARY KEY, a VARCHAR(10) NOT NULL, b VARCHAR(10) NOT NULL, n VARCHAR(10) NULL,
  l VARCHAR(10) CHARACTER SET latin1 NULL, bin VARBINARY(10) NOT NULL, f FLOAT NOT NULL, m INT NOT NULL);
INSERT INTO h VALUES
  (1, 'ab', 'c', 'n', 'l', 'x', 1.5, 0),
  (2, 'a|', 'b', 'n', 'l', 'x', 1.5, 0),
  (3, 'a', 'b', '', 'l', 'x', 1.5, 0),
  (4, 'a', 'b', NULL, 'l', 'x', 1.5, 0),
  (5, 'a', 'b', 'n', _latin1 0xE9, 'x', 1.5, 0),
  (6, 'a', 'b', 'n', 'l', 0x00, 1.5, 0),
  (7, 'a', 'b', 'n', 'l', 'x', 0.1, 0),
  (8, 'a', 'b', 'n', 'q|', 'r', 1.5, 0),
  (9, 'a|b', '|', NULL, NULL, '|', -0.25, 7),
  (10, 'a', 'b', 'n', 'l', 'x', 1.5, 0);";

async fn planted(db: &str, hash: RowHash) -> Result<()> {
    let (_, mut d) = both(db, DDL).await?;
    exec(
        &mut d,
        "ALTER TABLE h MODIFY m INT NULL;
         UPDATE h SET a = 'a', b = 'bc' WHERE id = 1;
         UPDATE h SET a = 'a', b = '|b' WHERE id = 2;
         UPDATE h SET n = NULL WHERE id = 3;
         UPDATE h SET n = '' WHERE id = 4;
         UPDATE h SET l = 'e' WHERE id = 5;
         UPDATE h SET bin = 0x0000 WHERE id = 6;",
    )
    .await?;
    // Row 7: the FLOAT's neighbour (0.1f32's next bit pattern), written exactly.
    let next = f32::from_bits(0.1f32.to_bits() + 1);
    exec(
        &mut d,
        &format!(
            "UPDATE h SET f = {:e} WHERE id = 7; UPDATE h SET l = 'q', bin = '|r' WHERE id = 8;",
            f64::from(next)
        ),
    )
    .await?;
    let o = VerifyOptions {
        row_hash: hash,
        ..opts(1)
    };
    let (r, repair) = run(&sel_db(db), &o).await?;
    let t = table(&r, "h");
    let want: Vec<(DiffKind, Vec<String>, Vec<String>)> = [
        (1, &["a", "b"][..]),
        (2, &["a", "b"][..]),
        (3, &["n"][..]),
        (4, &["n"][..]),
        (5, &["l"][..]),
        (6, &["bin"][..]),
        (7, &["f"][..]),
        (8, &["l", "bin"][..]),
    ]
    .iter()
    .map(|(id, cols)| {
        (
            DiffKind::Different,
            vec![id.to_string()],
            cols.iter().map(|c| c.to_string()).collect(),
        )
    })
    .collect();
    assert_eq!(keys(t), want, "{hash:?}: {}", r.render_text());
    // Every one of the 8 rows made its own chunk's digest differ; rows 9 and 10 did not.
    assert_eq!(t.chunks_different, 8, "{hash:?}: {t:#?}");
    assert!(t.notes.is_empty(), "{t:#?}");
    apply(&repair).await?;
    let (r2, _) = run(&sel_db(db), &o).await?;
    assert!(table(&r2, "h").consistent(), "{hash:?}: {}", r2.render_text());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_differences_are_found_under_the_crc32_pair() -> Result<()> {
    planted("fv_hash_crc", RowHash::Crc32Pair).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_differences_are_found_under_md5() -> Result<()> {
    planted("fv_hash_md5", RowHash::Md5).await
}

/// Duplicate rows of a keyless table, and rows equal as multisets in another order, under each
/// row hash: the sum never cancels two equal rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_duplicates_under_each_row_hash() -> Result<()> {
    for (db, hash) in [
        ("fv_hash_kl_crc", RowHash::Crc32Pair),
        ("fv_hash_kl_md5", RowHash::Md5),
    ] {
        let (_, mut d) = both(
            db,
            "CREATE TABLE k (a INT, b VARCHAR(5)); INSERT INTO k VALUES (1,'x'),(1,'x'),(2,NULL),(3,'');",
        )
        .await?;
        let o = VerifyOptions {
            row_hash: hash,
            ..opts(100)
        };
        exec(
            &mut d,
            "DELETE FROM k; INSERT INTO k VALUES (3,''),(2,NULL),(1,'x'),(1,'x')",
        )
        .await?;
        let (r, _) = run(&sel_db(db), &o).await?;
        assert!(r.consistent, "{hash:?}: {}", r.render_text());
        exec(&mut d, "INSERT INTO k VALUES (1,'x')").await?;
        let (r, _) = run(&sel_db(db), &o).await?;
        let t = table(&r, "k");
        assert_eq!(counts(t), (0, 1, 0), "{hash:?}: {t:#?}");
        assert_eq!(t.chunks_different, 1);
    }
    Ok(())
}

/// The test servers (MariaDB 10.11) have `CRC32C()`, and the one-text form (the row text built
/// once, through a user variable) passes the evaluation-order probe, so the fast path is the one
/// the tests above exercise with `RowHash::Auto` and `RowHash::Crc32Pair`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_servers_take_the_one_text_crc32_pair() -> Result<()> {
    use ferry_verify::digest::{choose_hash, probe, HashSupport};
    let full = HashSupport {
        crc32c: true,
        row_variable: true,
    };
    for ep in [ferry_testkit::source(), ferry_testkit::target()] {
        let mut c = ferry_testkit::connect(&ep).await?;
        assert_eq!(probe(&mut c).await, full);
    }
    let none = HashSupport {
        crc32c: false,
        row_variable: false,
    };
    assert_eq!(choose_hash(RowHash::Auto, full, full)?, RowHash::Crc32Pair);
    assert_eq!(choose_hash(RowHash::Auto, full, none)?, RowHash::Md5);
    assert!(choose_hash(RowHash::Crc32Pair, none, full).is_err());
    Ok(())
}
