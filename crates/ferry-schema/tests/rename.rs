//! Server test: a database and a table renamed on the way; the view, the FK and the trigger on the
//! renamed table use the new names on the target.

mod common;

use anyhow::Result;
use common::*;
use ferry_schema::{ObjectKind, StructureOptions};
use ferry_testkit::{connect, exec, fresh_db, scalar, source, target};
use mysql_async::prelude::Queryable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_database_and_table() -> Result<()> {
    let mut src = connect(&source()).await?;
    let mut dst = connect(&target()).await?;
    fresh_db(&mut src, "fs_ren").await?;
    drop_dbs(&mut dst, &["fs_ren", "fs_ren_new"]).await?;
    exec(
        &mut src,
        "USE fs_ren; \
         CREATE TABLE a (id int PRIMARY KEY, x varchar(10) COMMENT 'a.x stays'); \
         CREATE TABLE b (id int PRIMARY KEY, aid int, CONSTRAINT fk_a FOREIGN KEY (aid) REFERENCES a (id)); \
         CREATE VIEW va AS SELECT a.id, a.x, b.id AS bid FROM a JOIN b ON b.aid = a.id WHERE a.x <> 'a'; \
         CREATE VIEW vq AS SELECT fs_ren.a.x, al.id FROM fs_ren.a JOIN fs_ren.a AS al ON al.id = a.id; \
         CREATE VIEW vv AS SELECT id FROM va; \
         CREATE TRIGGER tr_a BEFORE INSERT ON a FOR EACH ROW SET NEW.x = UPPER(NEW.x); \
         CREATE PROCEDURE p_count() SELECT COUNT(*) FROM a; \
         CREATE EVENT e_a ON SCHEDULE EVERY 1 DAY DO DELETE FROM fs_ren.a WHERE id < 0",
    )
    .await?;

    let sel = select(&[("fs_ren", "fs_ren_new", &[("a", "a2")])]);
    let plan = plan_for(&mut src, &sel, &StructureOptions::default()).await?;
    assert!(plan
        .pre_data
        .iter()
        .chain(&plan.post_data)
        .all(|d| d.db == "fs_ren_new"));
    let tables: Vec<&str> = plan
        .pre_data
        .iter()
        .filter(|d| d.kind == ObjectKind::Table)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(tables, vec!["a2", "b"]);
    apply(&mut dst, &plan.pre_data).await?;
    apply(&mut dst, &plan.post_data).await?;

    let none: i64 = scalar(
        &mut dst,
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'fs_ren'",
    )
    .await?;
    assert_eq!(none, 0, "nothing lands in the source database name");
    let a2 = show_table(&mut dst, "fs_ren_new", "a2").await?;
    assert_eq!(
        a2,
        show_table(&mut src, "fs_ren", "a")
            .await?
            .replace("CREATE TABLE `a`", "CREATE TABLE `a2`")
    );
    let b = show_table(&mut dst, "fs_ren_new", "b").await?;
    assert!(b.contains("REFERENCES `a2` (`id`)"), "{b}");
    let referenced: String = scalar(
        &mut dst,
        "SELECT REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA='fs_ren_new' AND CONSTRAINT_NAME='fk_a'",
    )
    .await?;
    assert_eq!(referenced, "a2");
    let trig_table: String = scalar(&mut dst, "SELECT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='fs_ren_new' AND TRIGGER_NAME='tr_a'").await?;
    assert_eq!(trig_table, "a2");

    // The views read the renamed objects and work.
    for v in ["va", "vq", "vv"] {
        let def: String = dst
            .exec_first("SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA='fs_ren_new' AND TABLE_NAME=?", (v,))
            .await?
            .unwrap_or_default();
        assert!(!def.contains("`fs_ren`."), "{v}: {def}");
        if v != "vv" {
            assert!(def.contains("`a2`"), "{v}: {def}");
        }
    }
    exec(&mut dst, "INSERT INTO fs_ren_new.a2 VALUES (1, 'one'), (2, 'a'); INSERT INTO fs_ren_new.b VALUES (10, 1), (20, 2)").await?;
    let x: String = scalar(&mut dst, "SELECT x FROM fs_ren_new.va WHERE bid = 10").await?;
    assert_eq!(x, "ONE", "trigger fired on a2 and the view reads it");
    // 'a' became 'A' through the trigger, which va filters out (case-insensitive collation).
    let n: i64 = scalar(&mut dst, "SELECT COUNT(*) FROM fs_ren_new.vv").await?;
    assert_eq!(n, 1);
    let n: i64 = scalar(&mut dst, "SELECT COUNT(*) FROM fs_ren_new.vq").await?;
    assert_eq!(n, 2);
    let rows: Vec<i64> = dst.query("CALL fs_ren_new.p_count()").await?;
    assert_eq!(rows, vec![2]);
    let ev = show_create(&mut dst, "EVENT", "fs_ren_new", "e_a", 3).await?;
    assert!(ev.contains("`fs_ren_new`.`a2`"), "{ev}");
    Ok(())
}
