//! Keyless tables (duplicates), collations and letter case, object comparison, renamed targets,
//! sample mode, the replay fence and re-verification of the inconsistent tables.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Result;
use common::*;
use ferry_core::Position;
use ferry_testkit::{connect, exec, scalar, target};
use ferry_verify::store::{previous_inconsistent, store_results};
use ferry_verify::{DiffKind, VerifyMode, VerifyOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_tables_compare_as_multisets() -> Result<()> {
    let db = "fv_keyless";
    let (_, mut d) = both(
        db,
        "CREATE TABLE k (a INT, b VARCHAR(10), f FLOAT);
         INSERT INTO k VALUES (1,'x',0.1),(2,'y',0.2),(2,'y',0.2),(3,NULL,NULL),(4,'',1.5);",
    )
    .await?;
    exec(
        &mut d,
        "INSERT INTO k VALUES (2,'y',0.2);
         DELETE FROM k WHERE a = 3;
         INSERT INTO k VALUES (5,'z',NULL),(5,'z',NULL),(5,'z',NULL);
         UPDATE k SET b = NULL WHERE a = 4;",
    )
    .await?;
    let (r, repair) = run(&sel_db(db), &opts(1000)).await?;
    let t = table(&r, "k");
    assert_eq!(t.method, "keyless-multiset");
    assert_eq!(counts(t), (2, 5, 0), "{t:#?}");
    let mut got: Vec<(DiffKind, String, String, u64)> = t
        .keys
        .iter()
        .map(|k| (k.kind, k.key[0].clone(), k.key[1].clone(), k.count))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (DiffKind::OnlyInSource, "3".into(), "NULL".into(), 1),
            (DiffKind::OnlyInSource, "4".into(), "".into(), 1),
            (DiffKind::OnlyInTarget, "2".into(), "y".into(), 1),
            (DiffKind::OnlyInTarget, "4".into(), "NULL".into(), 1),
            (DiffKind::OnlyInTarget, "5".into(), "z".into(), 3),
        ]
    );
    apply(&repair).await?;
    let (r2, _) = run(&sel_db(db), &opts(1000)).await?;
    assert!(r2.consistent, "{}", r2.render_text());
    assert_eq!(table(&r2, "k").rows_compared, 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collations_letter_case_and_objects() -> Result<()> {
    let db = "fv_coll";
    let common = "CREATE TABLE ck (name VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT);
        INSERT INTO ck VALUES ('abc', 1), ('b', 2);
        CREATE VIEW v AS SELECT id, note FROM c;
        CREATE PROCEDURE p(IN x INT) SELECT x + 1;
        CREATE TRIGGER trg BEFORE INSERT ON c FOR EACH ROW SET NEW.note = COALESCE(NEW.note, 'n');
        CREATE EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM c WHERE id < 0;";
    let (mut s, mut d) = both(db, "SELECT 1").await?;
    exec(
        &mut s,
        &format!(
            "CREATE TABLE c (id INT PRIMARY KEY, name VARCHAR(20) COLLATE utf8mb4_bin, note VARCHAR(20) COLLATE utf8mb4_general_ci, KEY ix_note (note));
             INSERT INTO c VALUES (1, 'Ann', 'hello'), (2, 'Bob', 'hello'), (3, 'Cy', NULL); {common}"
        ),
    )
    .await?;
    exec(
        &mut d,
        &format!(
            "CREATE TABLE c (id INT PRIMARY KEY, name VARCHAR(20) COLLATE utf8mb4_general_ci, note VARCHAR(20) COLLATE utf8mb4_general_ci);
             INSERT INTO c VALUES (1, 'Ann', 'hello'), (2, 'Bob', 'HELLO'), (3, 'Cy', NULL); {common}
             DROP TRIGGER trg; UPDATE ck SET name = 'ABC' WHERE name = 'abc';"
        ),
    )
    .await?;
    let (r, repair) = run(&sel_db(db), &opts(1)).await?;
    let mut objs: Vec<(String, String, String)> = r
        .objects
        .iter()
        .map(|o| {
            (
                o.object_type.clone(),
                o.source_name.clone(),
                o.status().to_string(),
            )
        })
        .collect();
    objs.sort();
    assert_eq!(
        objs,
        vec![
            ("COLUMN".into(), "fv_coll.c.name".into(), "different".into()),
            (
                "INDEX".into(),
                "fv_coll.c.ix_note".into(),
                "missing on target".into()
            ),
            ("TRIGGER".into(), "fv_coll.trg".into(), "missing on target".into()),
        ],
        "{:#?}",
        r.objects
    );
    let col = r.objects.iter().find(|o| o.object_type == "COLUMN").unwrap();
    assert!(col.source.as_deref().unwrap().contains("COLLATE utf8mb4_bin"));
    assert!(col
        .target
        .as_deref()
        .unwrap()
        .contains("COLLATE utf8mb4_general_ci"));
    // Data: the collation of `name` changed nothing (same bytes); `note` differs in case only.
    let c = table(&r, "c");
    assert_eq!(counts(c), (0, 0, 1));
    assert_eq!(
        keys(c),
        vec![(DiffKind::Different, vec!["2".into()], vec!["note".into()])]
    );
    // A key differing in case only, under a case-insensitive collation: two different keys.
    let ck = table(&r, "ck");
    assert_eq!(counts(ck), (1, 1, 0));
    assert_eq!(
        keys(ck),
        vec![
            (DiffKind::OnlyInSource, vec!["abc".into()], vec![]),
            (DiffKind::OnlyInTarget, vec!["ABC".into()], vec![]),
        ]
    );
    apply(&repair).await?;
    let (r2, _) = run(&sel_db(db), &opts(1)).await?;
    assert!(r2.tables.iter().all(|t| t.consistent()), "{}", r2.render_text());
    assert_eq!(r2.objects.len(), 3);
    assert!(!r2.consistent);
    let mut d = connect(&target()).await?;
    assert_eq!(
        scalar::<String>(&mut d, "SELECT name FROM fv_coll.ck WHERE v = 1").await?,
        "abc"
    );
    // Object comparison alone.
    let o = VerifyOptions {
        mode: VerifyMode::Objects,
        ..opts(1)
    };
    let (r3, _) = run(&sel_db(db), &o).await?;
    assert!(r3.tables.is_empty());
    assert_eq!(r3.objects, r2.objects);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_target_database_and_table() -> Result<()> {
    let (mut s, _) = both("fv_ren_a", "SELECT 1").await?;
    let (_, mut d) = both("fv_ren_b", "SELECT 1").await?;
    exec(&mut s, "CREATE TABLE fv_ren_a.t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO fv_ren_a.t SELECT seq, CONCAT('v', seq) FROM seq_1_to_50; CREATE TABLE fv_ren_a.other (x INT)").await?;
    exec(&mut d, "CREATE TABLE fv_ren_b.t2 (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO fv_ren_b.t2 SELECT seq, CONCAT('v', seq) FROM seq_1_to_50; UPDATE fv_ren_b.t2 SET v = 'w' WHERE id = 33; DELETE FROM fv_ren_b.t2 WHERE id = 50").await?;
    let sel = sel_renamed("fv_ren_a", "fv_ren_b", &[("t", "t2")]);
    let (r, repair) = run(&sel, &opts(10)).await?;
    assert!(r.objects.is_empty(), "{:#?}", r.objects);
    assert_eq!(r.tables.len(), 1);
    let t = table(&r, "t");
    assert_eq!(
        (t.target_database.as_str(), t.target_table.as_str()),
        ("fv_ren_b", "t2")
    );
    assert_eq!(counts(t), (1, 0, 1));
    assert_eq!(
        keys(t),
        vec![
            (DiffKind::Different, vec!["33".into()], vec!["v".into()]),
            (DiffKind::OnlyInSource, vec!["50".into()], vec![]),
        ]
    );
    assert!(String::from_utf8_lossy(&repair).contains("`fv_ren_b`.`t2`"));
    apply(&repair).await?;
    let (r2, _) = run(&sel, &opts(10)).await?;
    assert!(r2.consistent, "{}", r2.render_text());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_rechecks_differing_chunks() -> Result<()> {
    let db = "fv_fence";
    let (_, mut d) = both(
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t SELECT seq, seq FROM seq_1_to_30",
    )
    .await?;
    exec(&mut d, "UPDATE t SET v = 0 WHERE id IN (5, 25)").await?;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (c2, s2) = (calls.clone(), seen.clone());
    // The "replay" catches up with one of the two rows only.
    let fence: ferry_verify::Fence = Arc::new(move |pos: Option<Position>| {
        c2.fetch_add(1, Ordering::SeqCst);
        *s2.lock().unwrap() = pos;
        Box::pin(async move {
            let mut d = connect(&target()).await.map_err(|e| e.to_string())?;
            exec(&mut d, "UPDATE fv_fence.t SET v = 5 WHERE id = 5")
                .await
                .map_err(|e| e.to_string())
        })
    });
    let o = VerifyOptions {
        fence: Some(fence),
        ..opts(10)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    // Once for the chunks, then once per row re-check round of the chunk still differing.
    assert_eq!(calls.load(Ordering::SeqCst), 1 + ferry_verify::live::ROUNDS);
    assert!(matches!(*seen.lock().unwrap(), Some(Position::FilePos { .. })));
    let t = table(&r, "t");
    assert_eq!(t.chunks_different, 1);
    assert_eq!(
        keys(t),
        vec![(DiffKind::Different, vec!["25".into()], vec!["v".into()])]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverify_only_inconsistent_tables() -> Result<()> {
    let db = "fv_only";
    let job = "fv_only_job";
    let (_, mut d) = both(db, "CREATE TABLE a (id INT PRIMARY KEY); CREATE TABLE b (id INT PRIMARY KEY); INSERT INTO a VALUES (1),(2); INSERT INTO b VALUES (1)").await?;
    exec(&mut d, "DELETE FROM a WHERE id = 2").await?;
    let mut m = connect(&target()).await?;
    exec(&mut m, "CREATE TABLE IF NOT EXISTS ferry_meta.verify_table (job_name VARCHAR(191) NOT NULL, source_db VARCHAR(64) NOT NULL, source_table VARCHAR(64) NOT NULL, target_db VARCHAR(64) NOT NULL, target_table VARCHAR(64) NOT NULL, consistent TINYINT NOT NULL, method VARCHAR(32) NOT NULL, rows_compared BIGINT UNSIGNED NOT NULL, only_in_source BIGINT UNSIGNED NOT NULL, only_in_target BIGINT UNSIGNED NOT NULL, different BIGINT UNSIGNED NOT NULL, error TEXT NULL, verified_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (job_name, source_db, source_table))").await.ok();
    exec(
        &mut m,
        &format!("DELETE FROM ferry_meta.verify_table WHERE job_name = '{job}'"),
    )
    .await
    .ok();
    assert_eq!(previous_inconsistent(&target(), job).await?, None);
    let (r, repair) = run(&sel_db(db), &opts(100)).await?;
    store_results(&target(), job, &r).await?;
    let prev = previous_inconsistent(&target(), job).await?;
    assert_eq!(prev, Some(vec![(db.to_string(), "a".to_string())]));
    let mode = VerifyMode::from_consistency_type(4, None, None, prev).unwrap();
    apply(&repair).await?;
    let o = VerifyOptions { mode, ..opts(100) };
    let (r2, _) = run(&sel_db(db), &o).await?;
    assert_eq!(r2.tables.len(), 1);
    assert_eq!(r2.tables[0].table, "a");
    assert!(r2.consistent && r2.objects.is_empty());
    store_results(&target(), job, &r2).await?;
    assert_eq!(previous_inconsistent(&target(), job).await?, Some(vec![]));
    exec(
        &mut m,
        &format!("DELETE FROM ferry_meta.verify_table WHERE job_name = '{job}'"),
    )
    .await?;
    Ok(())
}

#[test]
fn consistency_types_map_to_modes() {
    assert_eq!(
        VerifyMode::from_consistency_type(2, None, None, None),
        Some(VerifyMode::Full)
    );
    assert_eq!(
        VerifyMode::from_consistency_type(3, Some(10), None, None),
        Some(VerifyMode::Sample {
            rows_percent: 10,
            tables_percent: 100
        })
    );
    assert_eq!(
        VerifyMode::from_consistency_type(4, None, None, None),
        Some(VerifyMode::Full)
    );
    assert_eq!(VerifyMode::from_consistency_type(5, None, None, None), None);
    assert_eq!(VerifyMode::from_consistency_type(1, None, None, None), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_target_table_or_column_is_reported() -> Result<()> {
    let db = "fv_missing";
    let (_, mut d) = both(db, "CREATE TABLE a (id INT PRIMARY KEY, v INT); CREATE TABLE b (id INT PRIMARY KEY, v INT); INSERT INTO a VALUES (1, 1)").await?;
    exec(&mut d, "DROP TABLE a; ALTER TABLE b DROP COLUMN v").await?;
    let (r, _) = run(&sel_db(db), &opts(100)).await?;
    assert!(!r.consistent);
    assert_eq!(
        table(&r, "a").error.as_deref(),
        Some("target table fv_missing.a does not exist")
    );
    assert_eq!(
        table(&r, "b").error.as_deref(),
        Some("target table fv_missing.b lacks column(s) v")
    );
    let mut objs: Vec<(String, String, String)> = r
        .objects
        .iter()
        .map(|o| {
            (
                o.object_type.clone(),
                o.target_name.clone(),
                o.status().to_string(),
            )
        })
        .collect();
    objs.sort();
    assert_eq!(
        objs,
        vec![
            (
                "COLUMN".into(),
                "fv_missing.a.id".into(),
                "missing on target".into()
            ),
            (
                "COLUMN".into(),
                "fv_missing.a.v".into(),
                "missing on target".into()
            ),
            (
                "COLUMN".into(),
                "fv_missing.b.v".into(),
                "missing on target".into()
            ),
            (
                "INDEX".into(),
                "fv_missing.a.PRIMARY".into(),
                "missing on target".into()
            ),
            ("TABLE".into(), "fv_missing.a".into(), "missing on target".into()),
        ]
    );
    assert!(r
        .render_text()
        .contains("cannot compare: target table fv_missing.a does not exist"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_column_order_foreign_keys_checks_partitions() -> Result<()> {
    let db = "fv_objs";
    let (mut s, mut d) = both(db, "SELECT 1").await?;
    exec(
        &mut s,
        "CREATE TABLE parent (id INT PRIMARY KEY);
         CREATE TABLE child (id INT PRIMARY KEY, a INT, b INT, c INT, pid INT,
           CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE,
           CONSTRAINT ck_a CHECK (a > 0));
         CREATE TABLE r (id INT PRIMARY KEY, x INT, y INT);
         CREATE TABLE part (id INT PRIMARY KEY) PARTITION BY RANGE (id)
           (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE);
         INSERT INTO r VALUES (1, 2, 3);",
    )
    .await?;
    exec(
        &mut d,
        "CREATE TABLE parent (id INT PRIMARY KEY);
         CREATE TABLE child (id INT PRIMARY KEY, a INT, inserted INT, b INT, c INT, pid INT,
           CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES parent (id),
           CONSTRAINT ck_a CHECK (a >= 0));
         CREATE TABLE r (id INT PRIMARY KEY, y INT, x INT);
         CREATE TABLE part (id INT PRIMARY KEY) PARTITION BY RANGE (id)
           (PARTITION p0 VALUES LESS THAN (20), PARTITION p1 VALUES LESS THAN MAXVALUE);
         INSERT INTO r VALUES (1, 3, 2);",
    )
    .await?;
    let o = VerifyOptions {
        mode: VerifyMode::Objects,
        ..opts(100)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    let mut objs: Vec<(String, String, String)> = r
        .objects
        .iter()
        .map(|o| {
            (
                o.object_type.clone(),
                o.target_name.clone(),
                o.status().to_string(),
            )
        })
        .collect();
    objs.sort();
    assert_eq!(
        objs,
        vec![
            ("CHECK".into(), "fv_objs.child.ck_a".into(), "different".into()),
            (
                "COLUMN".into(),
                "fv_objs.child.inserted".into(),
                "only on target".into()
            ),
            ("COLUMN ORDER".into(), "fv_objs.r".into(), "different".into()),
            (
                "FOREIGN KEY".into(),
                "fv_objs.child.fk_p".into(),
                "different".into()
            ),
            ("PARTITIONING".into(), "fv_objs.part".into(), "different".into()),
        ],
        "{:#?}",
        r.objects
    );
    let fk = r.objects.iter().find(|o| o.object_type == "FOREIGN KEY").unwrap();
    assert!(
        fk.source
            .as_deref()
            .unwrap()
            .contains("(pid) REFERENCES fv_objs.parent (id)")
            && fk.source.as_deref().unwrap().contains("ON DELETE CASCADE"),
        "{fk:#?}"
    );
    // The rows, compared by column name, are equal.
    let (r, _) = run(&sel_db(db), &opts(100)).await?;
    assert!(r.tables.iter().all(|t| t.consistent()), "{}", r.render_text());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_rechecks_keyless_tables() -> Result<()> {
    let db = "fv_fence_kl";
    let (_, mut d) = both(
        db,
        "CREATE TABLE a (x INT, y VARCHAR(5)); INSERT INTO a VALUES (1,'p'),(1,'p'),(2,NULL);
         CREATE TABLE b (x INT, y VARCHAR(5)); INSERT INTO b VALUES (1,'p'),(3,'q');",
    )
    .await?;
    // `a` lacks a duplicate the "replay" delivers at the first fence; `b` has a row too many,
    // which no replay removes.
    exec(
        &mut d,
        "DELETE FROM a WHERE x = 1 LIMIT 1; INSERT INTO b VALUES (3,'q')",
    )
    .await?;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let fence: ferry_verify::Fence = Arc::new(move |_pos: Option<Position>| {
        let first = c2.fetch_add(1, Ordering::SeqCst) == 0;
        Box::pin(async move {
            if first {
                let mut d = connect(&target()).await.map_err(|e| e.to_string())?;
                exec(&mut d, "INSERT INTO fv_fence_kl.a VALUES (1,'p')")
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    });
    let o = VerifyOptions {
        fence: Some(fence),
        threads: 1,
        ..opts(10)
    };
    let (r, _) = run(&sel_db(db), &o).await?;
    assert!(table(&r, "a").consistent(), "{}", r.render_text());
    let b = table(&r, "b");
    assert_eq!(counts(b), (0, 1, 0), "{b:#?}");
    assert_eq!(
        keys(b),
        vec![(DiffKind::OnlyInTarget, vec!["3".into(), "q".into()], vec![])]
    );
    Ok(())
}

/// The row re-checks under a fence look rows up by exact key bytes: a key differing in letter
/// case under a case-insensitive collation, and a latin1 key with a non-ASCII byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_rechecks_rows_by_exact_text_keys() -> Result<()> {
    let db = "fv_fence_keys";
    let (_, mut d) = both(
        db,
        "CREATE TABLE ck (name VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT);
         INSERT INTO ck VALUES ('abc', 1), ('b', 2), ('c', 3);
         CREATE TABLE lk (name VARCHAR(20) CHARACTER SET latin1 PRIMARY KEY, v INT);
         INSERT INTO lk VALUES (_latin1 0x61E9, 1), ('z', 2);",
    )
    .await?;
    exec(
        &mut d,
        "UPDATE ck SET name = 'ABC' WHERE name = 'abc'; UPDATE lk SET v = 9 WHERE name = _latin1 0x61E9;",
    )
    .await?;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let fence: ferry_verify::Fence = Arc::new(move |_pos: Option<Position>| {
        c2.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    });
    let o = VerifyOptions {
        fence: Some(fence),
        ..opts(100)
    };
    let (r, repair) = run(&sel_db(db), &o).await?;
    assert!(calls.load(Ordering::SeqCst) > 1, "the rows were re-checked");
    let ck = table(&r, "ck");
    assert_eq!(counts(ck), (1, 1, 0), "{ck:#?}");
    assert_eq!(
        keys(ck),
        vec![
            (DiffKind::OnlyInSource, vec!["abc".into()], vec![]),
            (DiffKind::OnlyInTarget, vec!["ABC".into()], vec![]),
        ]
    );
    let lk = table(&r, "lk");
    assert_eq!(counts(lk), (0, 0, 1), "{lk:#?}");
    assert_eq!(lk.keys[0].columns, vec!["v".to_string()]);
    apply(&repair).await?;
    let (r2, _) = run(&sel_db(db), &opts(100)).await?;
    assert!(r2.consistent, "{}", r2.render_text());
    Ok(())
}
