//! Server tests: tables that already exist on the target, under each policy.

mod common;

use anyhow::Result;
use common::*;
use ferry_schema::{ExistingTablePolicy, ObjectKind, SchemaError, StructureOptions};
use ferry_testkit::{connect, exec, fresh_db, scalar, source, target};
use mysql_async::Conn;

/// Source: fs_exist.e1, e2 (with rows) and e3. Target: e1 with rows, e2 empty with another shape.
async fn setup(src: &mut Conn, dst: &mut Conn) -> Result<()> {
    fresh_db(src, "fs_exist").await?;
    exec(
        src,
        "USE fs_exist; CREATE TABLE e1 (id int PRIMARY KEY, v int); CREATE TABLE e2 (id int PRIMARY KEY, w int); \
         CREATE TABLE e3 (id int PRIMARY KEY); INSERT INTO e1 VALUES (1, 1); INSERT INTO e2 VALUES (1, 1)",
    )
    .await?;
    fresh_db(dst, "fs_exist").await?;
    exec(
        dst,
        "USE fs_exist; CREATE TABLE e1 (id int PRIMARY KEY, v int); CREATE TABLE e2 (id int PRIMARY KEY, old_shape int); \
         INSERT INTO e1 VALUES (7, 7), (8, 8)",
    )
    .await?;
    Ok(())
}

fn names() -> Vec<(String, String)> {
    ["e1", "e2", "e3"]
        .iter()
        .map(|t| ("fs_exist".to_string(), t.to_string()))
        .collect()
}

async fn count(dst: &mut Conn, t: &str) -> Result<i64> {
    scalar(dst, &format!("SELECT COUNT(*) FROM fs_exist.{t}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_table_policies() -> Result<()> {
    let mut src = connect(&source()).await?;
    let mut dst = connect(&target()).await?;

    // Fail: names the non-empty table and the option, and changes nothing.
    setup(&mut src, &mut dst).await?;
    let states = ferry_schema::target_tables(&mut dst, &names()).await?;
    let flags: Vec<(bool, bool)> = states.iter().map(|s| (s.exists, s.has_rows)).collect();
    assert_eq!(flags, vec![(true, true), (true, false), (false, false)]);
    let err = ferry_schema::prepare_existing(&mut dst, &states, ExistingTablePolicy::Fail)
        .await
        .expect_err("e1 has rows");
    assert!(matches!(&err, SchemaError::TargetTableNotEmpty { table } if table == "fs_exist.e1"));
    let msg = err.to_string();
    assert!(
        msg.contains("fs_exist.e1") && msg.contains("ExistingTables") && msg.contains("truncate"),
        "{msg}"
    );
    assert_eq!(err.kind(), ferry_core::ErrorKind::Definite);
    assert_eq!(count(&mut dst, "e1").await?, 2);
    let old: i64 = scalar(&mut dst, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='fs_exist' AND COLUMN_NAME='old_shape'").await?;
    assert_eq!(old, 1);

    // Fail with only empty existing tables: they are kept, not re-created.
    exec(&mut dst, "DELETE FROM fs_exist.e1").await?;
    let states = ferry_schema::target_tables(&mut dst, &names()).await?;
    let kept = ferry_schema::prepare_existing(&mut dst, &states, ExistingTablePolicy::Fail).await?;
    assert_eq!(kept, names()[..2].to_vec());

    // Truncate: rows gone, tables kept.
    setup(&mut src, &mut dst).await?;
    let states = ferry_schema::target_tables(&mut dst, &names()).await?;
    let kept = ferry_schema::prepare_existing(&mut dst, &states, ExistingTablePolicy::Truncate).await?;
    assert_eq!(kept, names()[..2].to_vec());
    assert_eq!(count(&mut dst, "e1").await?, 0);

    // Append: rows stay, tables kept.
    setup(&mut src, &mut dst).await?;
    let states = ferry_schema::target_tables(&mut dst, &names()).await?;
    let kept = ferry_schema::prepare_existing(&mut dst, &states, ExistingTablePolicy::Append).await?;
    assert_eq!(kept, names()[..2].to_vec());
    assert_eq!(count(&mut dst, "e1").await?, 2);

    // Drop: tables dropped and re-created from the source's definition.
    setup(&mut src, &mut dst).await?;
    let states = ferry_schema::target_tables(&mut dst, &names()).await?;
    let kept = ferry_schema::prepare_existing(&mut dst, &states, ExistingTablePolicy::Drop).await?;
    assert!(kept.is_empty());
    let left: i64 = scalar(
        &mut dst,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='fs_exist'",
    )
    .await?;
    assert_eq!(left, 0);
    let sel = select(&[("fs_exist", "fs_exist", &[])]);
    let plan = plan_for(&mut src, &sel, &StructureOptions::default()).await?;
    apply(&mut dst, &plan.pre_data).await?;
    for t in ["e1", "e2", "e3"] {
        assert_eq!(
            show_table(&mut src, "fs_exist", t).await?,
            show_table(&mut dst, "fs_exist", t).await?
        );
    }
    assert!(plan
        .pre_data
        .iter()
        .any(|d| d.kind == ObjectKind::Table && d.name == "e2"));
    Ok(())
}
