//! Server tests: views (in dependency order), functions, procedures, triggers and events reach the
//! target and behave; DEFINER kept or rewritten to the target login.

mod common;

use anyhow::Result;
use common::*;
use ferry_schema::{DefinerPolicy, ObjectKind, StructureOptions};
use ferry_testkit::{connect, exec, fresh_db, scalar, source, target};
use mysql_async::prelude::Queryable;

const OBJECTS_DDL: &str = r#"
CREATE TABLE t (id int PRIMARY KEY, v int, note varchar(20) DEFAULT 'x''y');
CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, what varchar(50));
CREATE TABLE `other tab` (id int PRIMARY KEY);
CREATE VIEW z_base AS SELECT id, v FROM t WHERE v IS NOT NULL;
CREATE VIEW m_mid AS SELECT b.id, b.v * 2 AS v2 FROM z_base b JOIN t ON t.id = b.id;
CREATE VIEW a_top AS SELECT id, v2 FROM m_mid WHERE v2 > 0 UNION ALL SELECT id, 0 FROM fs_objects.z_base WHERE id < 0;
CREATE VIEW `b view` AS SELECT COUNT(*) AS n FROM `other tab`;
CREATE FUNCTION f_add(a int, b int) RETURNS int DETERMINISTIC RETURN a + b;
CREATE PROCEDURE p_ins(IN n int)
BEGIN
  -- a comment with 'quotes'; and a semicolon
  INSERT INTO t (id, v) VALUES (n, f_add(n, 1));
  INSERT INTO audit (what) VALUES (CONCAT('p_ins ', n));
END;
CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.v = COALESCE(NEW.v, 0) * 10;
CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit (what) VALUES (CONCAT('ins ', NEW.id));
CREATE TRIGGER t_ai2 AFTER INSERT ON t FOR EACH ROW FOLLOWS t_ai INSERT INTO audit (what) VALUES ('second');
CREATE EVENT ev_clean ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO DELETE FROM audit WHERE id < 0;
CREATE EVENT ev_off ON SCHEDULE AT '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO DELETE FROM audit;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_routines_triggers_events() -> Result<()> {
    let mut src = connect(&source()).await?;
    let mut dst = connect(&target()).await?;
    fresh_db(&mut src, "fs_objects").await?;
    drop_dbs(&mut dst, &["fs_objects"]).await?;
    exec(&mut src, &format!("USE fs_objects; {OBJECTS_DDL}")).await?;

    let sel = select(&[("fs_objects", "fs_objects", &[])]);
    let plan = plan_for(&mut src, &sel, &StructureOptions::default()).await?;
    // Views come in dependency order, not alphabetical order.
    let views: Vec<&str> = plan
        .pre_data
        .iter()
        .filter(|d| d.kind == ObjectKind::View)
        .map(|d| d.name.as_str())
        .collect();
    let pos = |n: &str| views.iter().position(|v| *v == n).unwrap_or(usize::MAX);
    assert!(
        pos("z_base") < pos("m_mid") && pos("m_mid") < pos("a_top"),
        "{views:?}"
    );
    assert_eq!(views.len(), 4);
    // Triggers and events wait for the data.
    assert!(
        plan.post_data
            .iter()
            .filter(|d| d.kind == ObjectKind::Trigger)
            .count()
            == 3
    );
    assert!(plan
        .pre_data
        .iter()
        .all(|d| !matches!(d.kind, ObjectKind::Trigger | ObjectKind::Event)));
    let trig_order: Vec<&str> = plan
        .post_data
        .iter()
        .filter(|d| d.kind == ObjectKind::Trigger)
        .map(|d| d.name.as_str())
        .collect();
    // Same table, event and timing: created in firing order.
    let tpos = |n: &str| trig_order.iter().position(|v| *v == n).unwrap_or(usize::MAX);
    assert!(tpos("t_ai") < tpos("t_ai2"), "{trig_order:?}");

    apply(&mut dst, &plan.pre_data).await?;
    apply(&mut dst, &plan.post_data).await?;
    assert_eq!(
        object_counts(&mut src, "fs_objects").await?,
        object_counts(&mut dst, "fs_objects").await?
    );

    // Definitions are the same (DEFINER kept: same login on both servers here).
    for v in ["z_base", "m_mid", "a_top", "b view"] {
        assert_eq!(
            show_create(&mut src, "VIEW", "fs_objects", v, 1).await?,
            show_create(&mut dst, "VIEW", "fs_objects", v, 1).await?
        );
    }
    assert_eq!(
        show_create(&mut src, "PROCEDURE", "fs_objects", "p_ins", 2).await?,
        show_create(&mut dst, "PROCEDURE", "fs_objects", "p_ins", 2).await?
    );
    assert_eq!(
        show_create(&mut src, "FUNCTION", "fs_objects", "f_add", 2).await?,
        show_create(&mut dst, "FUNCTION", "fs_objects", "f_add", 2).await?
    );
    for e in ["ev_clean", "ev_off"] {
        assert_eq!(
            show_create(&mut src, "EVENT", "fs_objects", e, 3).await?,
            show_create(&mut dst, "EVENT", "fs_objects", e, 3).await?
        );
    }
    let status: String = scalar(&mut dst, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='fs_objects' AND EVENT_NAME='ev_off'").await?;
    assert_eq!(status, "DISABLED");
    let sql_mode_src: String = scalar(&mut src, "SELECT SQL_MODE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='fs_objects' AND ROUTINE_NAME='p_ins'").await?;
    let sql_mode_dst: String = scalar(&mut dst, "SELECT SQL_MODE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='fs_objects' AND ROUTINE_NAME='p_ins'").await?;
    assert_eq!(sql_mode_src, sql_mode_dst);

    // Behaviour: the procedure calls the function, the triggers fire in order, the views answer.
    dst.query_drop("CALL fs_objects.p_ins(3)").await?;
    let v: i64 = scalar(&mut dst, "SELECT v FROM fs_objects.t WHERE id = 3").await?;
    assert_eq!(v, 40);
    let audit: Vec<String> = dst.query("SELECT what FROM fs_objects.audit ORDER BY id").await?;
    assert_eq!(audit, vec!["ins 3", "second", "p_ins 3"]);
    let top: i64 = scalar(&mut dst, "SELECT v2 FROM fs_objects.a_top WHERE id = 3").await?;
    assert_eq!(top, 80);
    let n: i64 = scalar(&mut dst, "SELECT n FROM fs_objects.`b view`").await?;
    assert_eq!(n, 0);

    // Re-applying (a re-run of the structure phase) succeeds.
    let again: Vec<_> = plan
        .pre_data
        .iter()
        .filter(|d| d.kind != ObjectKind::Table)
        .cloned()
        .collect();
    apply(&mut dst, &again).await?;
    let triggers: Vec<_> = plan
        .post_data
        .iter()
        .filter(|d| d.kind != ObjectKind::Index && d.kind != ObjectKind::ForeignKey)
        .cloned()
        .collect();
    apply(&mut dst, &triggers).await?;
    assert_eq!(
        object_counts(&mut src, "fs_objects").await?,
        object_counts(&mut dst, "fs_objects").await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definer_kept_or_rewritten() -> Result<()> {
    let mut src = connect(&source()).await?;
    let mut dst = connect(&target()).await?;
    fresh_db(&mut src, "fs_definer").await?;
    drop_dbs(&mut dst, &["fs_definer", "fs_definer_keep"]).await?;
    exec(
        &mut src,
        "CREATE USER IF NOT EXISTS 'someone'@'%'; GRANT ALL ON fs_definer.* TO 'someone'@'%'; \
         USE fs_definer; CREATE TABLE t (id int PRIMARY KEY); \
         CREATE DEFINER=`someone`@`%` SQL SECURITY DEFINER VIEW v AS SELECT id FROM t; \
         CREATE DEFINER='someone'@'%' PROCEDURE p() SELECT COUNT(*) FROM t; \
         CREATE DEFINER=`someone`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.id = NEW.id; \
         CREATE DEFINER=`someone`@`%` EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t WHERE id < 0",
    )
    .await?;
    let login: String = scalar(&mut dst, "SELECT CURRENT_USER()").await?;

    let sel = select(&[("fs_definer", "fs_definer", &[])]);
    let opts = StructureOptions {
        definer: DefinerPolicy::RewriteToCurrentUser,
        ..Default::default()
    };
    let plan = plan_for(&mut src, &sel, &opts).await?;
    let view = plan
        .pre_data
        .iter()
        .find(|d| d.kind == ObjectKind::View)
        .expect("view planned");
    assert!(
        view.sql
            .contains("DEFINER=CURRENT_USER SQL SECURITY DEFINER VIEW"),
        "{}",
        view.sql
    );
    apply(&mut dst, &plan.pre_data).await?;
    apply(&mut dst, &plan.post_data).await?;
    let definers: Vec<String> = dst
        .query(
            "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA='fs_definer' \
             UNION ALL SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='fs_definer' \
             UNION ALL SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='fs_definer' \
             UNION ALL SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA='fs_definer'",
        )
        .await?;
    assert_eq!(definers, vec![login.clone(); 4]);
    let n: i64 = scalar(&mut dst, "SELECT COUNT(*) FROM fs_definer.v").await?;
    assert_eq!(n, 0);

    // Keep: the source's definer stays (the target accepts an unknown definer with a warning).
    let sel = select(&[("fs_definer", "fs_definer_keep", &[])]);
    let plan = plan_for(&mut src, &sel, &StructureOptions::default()).await?;
    apply(&mut dst, &plan.pre_data).await?;
    let d: String = scalar(
        &mut dst,
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA='fs_definer_keep'",
    )
    .await?;
    assert_eq!(d, "someone@%");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_database_copies_triggers_of_selected_tables_only() -> Result<()> {
    use ferry_core::selection::{DbSelection, ObjectSelection, TableSelection};
    let mut src = connect(&source()).await?;
    let mut dst = connect(&target()).await?;
    fresh_db(&mut src, "fs_partial").await?;
    drop_dbs(&mut dst, &["fs_partial_t"]).await?;
    exec(
        &mut src,
        "USE fs_partial; CREATE TABLE t (id int PRIMARY KEY, v int); CREATE TABLE u (id int PRIMARY KEY); \
         CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.v = 5; \
         CREATE TRIGGER u_bi BEFORE INSERT ON u FOR EACH ROW SET NEW.id = NEW.id; \
         CREATE VIEW vt AS SELECT * FROM t; CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 1",
    )
    .await?;
    let sel = ferry_core::Selection {
        mapping: Default::default(),
        objects: ObjectSelection::Databases(vec![DbSelection {
            name: "fs_partial".into(),
            target: "fs_partial_t".into(),
            tables: Some(vec![TableSelection {
                name: "t".into(),
                target: "t_new".into(),
            }]),
            table_renames: Default::default(),
        }]),
    };
    let plan = plan_for(&mut src, &sel, &StructureOptions::default()).await?;
    let kinds: Vec<(ObjectKind, &str)> = plan
        .pre_data
        .iter()
        .chain(&plan.post_data)
        .map(|d| (d.kind, d.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ObjectKind::Database, "fs_partial_t"),
            (ObjectKind::Table, "t_new"),
            (ObjectKind::Trigger, "t_bi")
        ]
    );
    apply(&mut dst, &plan.pre_data).await?;
    apply(&mut dst, &plan.post_data).await?;
    dst.query_drop("INSERT INTO fs_partial_t.t_new (id, v) VALUES (1, 1)")
        .await?;
    let v: i64 = scalar(&mut dst, "SELECT v FROM fs_partial_t.t_new").await?;
    assert_eq!(v, 5);
    Ok(())
}
