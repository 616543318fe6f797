//! Server tests: tables of every type family copied with identical SHOW CREATE TABLE output;
//! secondary indexes and foreign keys after the data or inline.

mod common;

use anyhow::Result;
use common::*;
use ferry_schema::{IndexTiming, ObjectKind, StructureOptions};
use ferry_testkit::{connect, exec, fresh_db, scalar, source, target};

const TYPES_DDL: &str = r#"
SET SESSION sql_mode = '';
CREATE TABLE `order` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `select` varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT 'it''s "q"' COMMENT 'col ''comment'' with `tick`',
  `we``ird` int,
  ti tinyint, si smallint unsigned, mi mediumint, i int(8) zerofill, bi bigint,
  dc decimal(20,6), f float, d double, b bit(5), y year,
  dt date NOT NULL DEFAULT '0000-00-00', dtt datetime(6), ts timestamp NULL DEFAULT NULL, tm time(3),
  e enum('a','b''c'), s set('x','y'), j json, c char(3) CHARACTER SET latin1 COLLATE latin1_bin,
  bn binary(4), vb varbinary(10), bl blob, tx text CHARACTER SET utf8mb4, lt longtext,
  u uuid, i4 inet4, i6 inet6,
  gv int AS (ti + 1) VIRTUAL,
  gs varchar(30) AS (concat(`select`, 'x')) STORED,
  PRIMARY KEY (id),
  UNIQUE KEY uk (`select`, id),
  KEY k_dt (dt),
  KEY k_gv (gv) COMMENT 'index ''comment''',
  CONSTRAINT `chk_ti` CHECK (ti >= 0)
) ENGINE=InnoDB AUTO_INCREMENT=1000 COMMENT='table ''comment'' "dq"' ROW_FORMAT=DYNAMIC DEFAULT CHARSET=latin1
PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (100) COMMENT 'first', PARTITION p1 VALUES LESS THAN MAXVALUE);
CREATE TABLE `ta``ble` (`key` int NOT NULL, `from` varchar(5), PRIMARY KEY (`key`), KEY `index` (`from`)) COMMENT 'back`tick' ENGINE=MyISAM;
CREATE TABLE geo (id int PRIMARY KEY, g geometry, pt point NOT NULL, SPATIAL KEY sp (pt)) ENGINE=InnoDB;
CREATE TABLE ai_only (id int NOT NULL AUTO_INCREMENT, v int, KEY (id), KEY kv (v)) ENGINE=InnoDB;
INSERT INTO `order` (`select`, ti) VALUES ('a', 1), ('b', 2);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_family_round_trips() -> Result<()> {
    let mut src = connect(&source()).await?;
    let mut dst = connect(&target()).await?;
    fresh_db(&mut src, "fs_types").await?;
    drop_dbs(&mut dst, &["fs_types"]).await?;
    exec(&mut src, &format!("USE fs_types; {TYPES_DDL}")).await?;

    let sel = select(&[("fs_types", "fs_types", &[])]);
    let plan = plan_for(&mut src, &sel, &StructureOptions::default()).await?;
    // AfterData: the plain keys left the CREATE TABLE; the unique key stayed.
    let order = plan
        .pre_data
        .iter()
        .find(|d| d.kind == ObjectKind::Table && d.name == "order")
        .expect("order planned");
    assert!(
        !order.sql.contains("KEY `k_dt`") && order.sql.contains("UNIQUE KEY `uk`"),
        "{}",
        order.sql
    );
    // The key on the AUTO_INCREMENT column stays inline.
    let ai = plan
        .pre_data
        .iter()
        .find(|d| d.name == "ai_only")
        .expect("ai_only planned");
    assert!(
        ai.sql.contains("KEY `id` (`id`)") && !ai.sql.contains("`kv`"),
        "{}",
        ai.sql
    );
    assert_eq!(plan.pre_data[0].kind, ObjectKind::Database);

    let (sink, events) = recorder();
    ferry_schema::apply(&mut dst, &plan.pre_data, &sink).await?;
    let created = events.lock().map(|e| e.len()).unwrap_or(0);
    assert_eq!(created, plan.pre_data.len(), "one progress event per object");
    ferry_schema::apply(&mut dst, &plan.post_data, &sink).await?;

    for t in ["order", "ta`ble", "ai_only", "geo"] {
        assert_eq!(
            show_table(&mut src, "fs_types", t).await?,
            show_table(&mut dst, "fs_types", t).await?,
            "table {t}"
        );
    }
    let cs: String = scalar(
        &mut dst,
        "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fs_types'",
    )
    .await?;
    let src_cs: String = scalar(
        &mut src,
        "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fs_types'",
    )
    .await?;
    assert_eq!(cs, src_cs);
    // The target's session settings are restored after apply.
    let fkc: i64 = scalar(&mut dst, "SELECT @@SESSION.foreign_key_checks").await?;
    assert_eq!(fkc, 1);
    // A second run (e.g. after a crash in the structure phase) succeeds and changes nothing.
    let rest: Vec<_> = plan
        .pre_data
        .iter()
        .filter(|d| d.kind != ObjectKind::Table)
        .cloned()
        .collect();
    apply(&mut dst, &rest).await?;
    apply(&mut dst, &plan.post_data).await?;
    assert_eq!(
        show_table(&mut src, "fs_types", "order").await?,
        show_table(&mut dst, "fs_types", "order").await?
    );
    Ok(())
}

const FK_DDL: &str = r#"
CREATE TABLE parent (id int NOT NULL, code varchar(10), PRIMARY KEY (id), UNIQUE KEY u_code (code)) ENGINE=InnoDB;
CREATE TABLE child (
  id int NOT NULL,
  pid int,
  name varchar(50),
  body text,
  title text,
  PRIMARY KEY (id),
  KEY k_name (name(10)) COMMENT 'prefix',
  KEY k_multi (name, pid),
  FULLTEXT KEY ft_body (body),
  FULLTEXT KEY ft_title (title),
  CONSTRAINT fk_parent FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE SET NULL
) ENGINE=InnoDB;
CREATE TABLE grandchild (id int PRIMARY KEY, cid int, code varchar(10),
  CONSTRAINT fk_child FOREIGN KEY (cid) REFERENCES child (id),
  CONSTRAINT fk_code FOREIGN KEY (code) REFERENCES parent (code)) ENGINE=InnoDB;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_and_foreign_keys_after_data_or_inline() -> Result<()> {
    let mut src = connect(&source()).await?;
    let mut dst = connect(&target()).await?;
    fresh_db(&mut src, "fs_idx").await?;
    drop_dbs(&mut dst, &["fs_idx", "fs_idx_inline"]).await?;
    exec(&mut src, &format!("USE fs_idx; {FK_DDL}")).await?;

    // AfterData: CREATE TABLE without secondary keys and FKs; post_data adds them back.
    let sel = select(&[("fs_idx", "fs_idx", &[])]);
    let plan = plan_for(&mut src, &sel, &StructureOptions::default()).await?;
    let child = plan
        .pre_data
        .iter()
        .find(|d| d.name == "child")
        .expect("child planned");
    for gone in ["k_name", "k_multi", "ft_body", "FOREIGN KEY"] {
        assert!(!child.sql.contains(gone), "{gone} still in {}", child.sql);
    }
    let kinds: Vec<ObjectKind> = plan.post_data.iter().map(|d| d.kind).collect();
    // child: one ALTER for the plain keys, one per FULLTEXT key; grandchild: its FK-backing keys;
    // then the FKs (after every index).
    assert_eq!(
        kinds,
        vec![
            ObjectKind::Index,
            ObjectKind::Index,
            ObjectKind::Index,
            ObjectKind::Index,
            ObjectKind::ForeignKey,
            ObjectKind::ForeignKey
        ]
    );
    let child_idx = &plan.post_data[0];
    assert_eq!(child_idx.name, "child");
    assert!(
        child_idx.sql.contains("ADD KEY `k_name`") && child_idx.sql.contains("ADD KEY `k_multi`"),
        "{}",
        child_idx.sql
    );

    apply(&mut dst, &plan.pre_data).await?;
    let before: i64 = scalar(&mut dst, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='fs_idx' AND TABLE_NAME='child' AND INDEX_NAME <> 'PRIMARY'").await?;
    assert_eq!(before, 0);
    let fks: i64 = scalar(
        &mut dst,
        "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA='fs_idx'",
    )
    .await?;
    assert_eq!(fks, 0);
    apply(&mut dst, &plan.post_data).await?;
    for t in ["parent", "child", "grandchild"] {
        assert_eq!(
            show_table(&mut src, "fs_idx", t).await?,
            show_table(&mut dst, "fs_idx", t).await?,
            "table {t}"
        );
    }
    // Re-running post_data (a crash before the phase was recorded) skips what exists.
    apply(&mut dst, &plan.post_data).await?;
    assert_eq!(
        show_table(&mut src, "fs_idx", "grandchild").await?,
        show_table(&mut dst, "fs_idx", "grandchild").await?
    );
    // The FK is enforced on the target.
    let err = dst
        .query_drop_checked("INSERT INTO fs_idx.child (id, pid) VALUES (1, 42)")
        .await;
    assert!(err.is_err(), "FK not enforced");

    // Inline: every index in the CREATE TABLE; only the FKs wait.
    let sel = select(&[("fs_idx", "fs_idx_inline", &[])]);
    let opts = StructureOptions {
        index_timing: IndexTiming::Inline,
        ..Default::default()
    };
    let plan = plan_for(&mut src, &sel, &opts).await?;
    let child = plan
        .pre_data
        .iter()
        .find(|d| d.name == "child")
        .expect("child planned");
    assert!(child.sql.contains("KEY `k_name`") && child.sql.contains("FULLTEXT KEY `ft_body`"));
    assert!(!child.sql.contains("FOREIGN KEY"));
    assert!(plan
        .post_data
        .iter()
        .all(|d| d.kind == ObjectKind::ForeignKey && d.db == "fs_idx_inline"));
    assert_eq!(plan.post_data.len(), 2);
    apply(&mut dst, &plan.pre_data).await?;
    apply(&mut dst, &plan.post_data).await?;
    for t in ["parent", "child", "grandchild"] {
        assert_eq!(
            show_table(&mut src, "fs_idx", t).await?,
            show_table(&mut dst, "fs_idx_inline", t).await?,
            "table {t}"
        );
    }
    Ok(())
}

/// `query_drop` returning a Result that the test can inspect.
trait Checked {
    async fn query_drop_checked(&mut self, sql: &str) -> Result<(), mysql_async::Error>;
}

impl Checked for mysql_async::Conn {
    async fn query_drop_checked(&mut self, sql: &str) -> Result<(), mysql_async::Error> {
        use mysql_async::prelude::Queryable;
        self.query_drop(sql).await
    }
}
