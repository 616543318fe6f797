//! `ferry run` end to end against the real test servers: structure + full data of a database
//! with every kind of object and type, selection and renaming, structure-only jobs, TOML files.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target};
use serde_json::json;

const SHOP: &str = r#"
CREATE TABLE customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(190) NOT NULL,
  name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci, created DATETIME(6) NOT NULL,
  UNIQUE KEY uk_email (email), KEY k_name (name)) COMMENT='it''s the customers';
CREATE TABLE orders (customer_id INT UNSIGNED NOT NULL, order_no VARCHAR(20) NOT NULL, total DECIMAL(12,2) NOT NULL,
  placed TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), note TEXT,
  PRIMARY KEY (customer_id, order_no), CONSTRAINT fk_cust FOREIGN KEY (customer_id) REFERENCES customers (id));
CREATE TABLE tags (tag VARCHAR(50) COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, weight FLOAT);
CREATE TABLE events_log (at DATETIME NOT NULL, kind ENUM('a','b','c'), payload BLOB);
CREATE TABLE audit (n INT NOT NULL DEFAULT 0);
CREATE VIEW v_totals AS SELECT customer_id, SUM(total) AS s FROM orders GROUP BY customer_id;
CREATE VIEW a_top AS SELECT * FROM v_totals WHERE s > 100;
CREATE FUNCTION f_double(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
CREATE PROCEDURE p_count() SELECT COUNT(*) FROM orders;
CREATE TRIGGER tr_orders AFTER INSERT ON orders FOR EACH ROW UPDATE audit SET n = n + 1;
CREATE EVENT ev_noop ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE n < 0;
INSERT INTO audit VALUES (0);
INSERT INTO customers (email, name, created) SELECT CONCAT('c', seq, '@x.test'), CONCAT('Näme ', seq, ' 🚀'),
  '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_3000;
INSERT INTO orders (customer_id, order_no, total, note) SELECT 1 + seq % 3000, CONCAT('O-', seq), seq / 7, IF(seq % 5 = 0, NULL, REPEAT('x', seq % 300))
  FROM seq_1_to_9000;
INSERT INTO tags SELECT CONCAT('tag', seq), RAND(seq) * 1e6 FROM seq_1_to_500;
INSERT INTO tags VALUES ('Ünïcode', -0.1), ('ß', 3.4028234e38);
INSERT INTO events_log SELECT '2020-02-02' + INTERVAL seq MINUTE, ELT(1 + seq % 3, 'a', 'b', 'c'), UNHEX(SHA2(seq, 256)) FROM seq_1_to_2000;
INSERT INTO events_log SELECT '2020-02-02', 'a', 'dup' FROM seq_1_to_3;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_a_database_with_every_kind_of_object() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fc_shop").await?;
    drop_dbs(&mut t, &["fc_shop"]).await?;
    exec(&mut s, &format!("USE fc_shop; {SHOP}")).await?;

    let mut j = job(
        "fc-shop",
        json!([{"Database": "fc_shop"}]),
        json!({"Threads": 3, "ChunkRows": 1000}),
        2,
    );
    // ConsistencyType 2: the job ends with a full verification.
    j["MigrateOption"]["ConsistencyType"] = json!(2);
    let out = run(&write_job("fc-shop", &j), &["--restart"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("verified    consistent"), "{}", text(&out));
    assert!(
        text(&out).contains("snapshot"),
        "summary shows the snapshot position"
    );
    assert_db_equal("fc_shop", "fc_shop").await?;

    // Objects: views (in dependency order), routines, trigger, event, FK, secondary indexes.
    let count = |sql: &str| sql.to_string();
    for (what, sql) in [
        ("views", count("SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA='fc_shop'")),
        ("routines", count("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='fc_shop'")),
        ("triggers", count("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='fc_shop'")),
        ("events", count("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA='fc_shop'")),
        (
            "foreign keys",
            count("SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA='fc_shop'"),
        ),
        ("indexes", count("SELECT COUNT(DISTINCT TABLE_NAME, INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='fc_shop'")),
    ] {
        let a: u64 = scalar(&mut s, &sql).await?;
        let b: u64 = scalar(&mut t, &sql).await?;
        assert_eq!(a, b, "{what} differ");
        assert!(a > 0, "{what}: none on the source");
    }
    for table in ["customers", "orders", "tags"] {
        let q = format!("SHOW CREATE TABLE fc_shop.{table}");
        let a: (String, String) = scalar_row(&mut s, &q).await?;
        let b: (String, String) = scalar_row(&mut t, &q).await?;
        assert_eq!(
            strip_auto_increment(&a.1),
            strip_auto_increment(&b.1),
            "{table} definition differs"
        );
    }
    let top: u64 = scalar(&mut t, "SELECT COUNT(*) FROM fc_shop.a_top").await?;
    let top_src: u64 = scalar(&mut s, "SELECT COUNT(*) FROM fc_shop.a_top").await?;
    assert_eq!(top, top_src, "the view reads the same rows");
    // The trigger was created after the data: it did not fire during the load.
    let n: i64 = scalar(&mut t, "SELECT n FROM fc_shop.audit").await?;
    let n_src: i64 = scalar(&mut s, "SELECT n FROM fc_shop.audit").await?;
    assert_eq!(n, n_src);

    // Running the finished job again changes nothing and says so.
    let again = run(&write_job("fc-shop", &j), &[]);
    assert!(again.status.success());
    assert!(text(&again).contains("already completed"), "{}", text(&again));
    drop_dbs(&mut s, &["fc_shop"]).await?;
    drop_dbs(&mut t, &["fc_shop"]).await?;
    Ok(())
}

async fn scalar_row(conn: &mut mysql_async::Conn, sql: &str) -> Result<(String, String)> {
    use mysql_async::prelude::Queryable;
    let r: Option<(String, String)> = conn.query_first(sql).await?;
    r.ok_or_else(|| anyhow::anyhow!("no row from {sql}"))
}

fn strip_auto_increment(ddl: &str) -> String {
    ddl.split(' ')
        .filter(|w| !w.starts_with("AUTO_INCREMENT="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selects_and_renames_databases_and_tables() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fc_sel").await?;
    drop_dbs(&mut t, &["fc_sel", "fc_sel_new"]).await?;
    exec(
        &mut s,
        "USE fc_sel; CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10)); CREATE TABLE b (id INT PRIMARY KEY);
         CREATE TABLE c (id INT PRIMARY KEY);
         INSERT INTO a SELECT seq, seq FROM seq_1_to_100; INSERT INTO b SELECT seq FROM seq_1_to_10; INSERT INTO c VALUES (1);",
    )
    .await?;
    let info = json!([{"Database": "fc_sel", "NewDatabase": "fc_sel_new", "Table": ["a", "b"], "NewTable": {"a": "a2"}}]);
    let out = run(
        &write_job("fc-sel", &job("fc-sel", info, json!({}), 2)),
        &["--restart"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let tables: Vec<String> = {
        use mysql_async::prelude::Queryable;
        t.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='fc_sel_new' ORDER BY 1")
            .await?
    };
    assert_eq!(tables, vec!["a2".to_string(), "b".to_string()]);
    assert_eq!(
        ferry_testkit::table_digest(&mut s, "fc_sel", "a").await?,
        ferry_testkit::table_digest(&mut t, "fc_sel_new", "a2").await?
    );
    assert_eq!(
        ferry_testkit::table_digest(&mut s, "fc_sel", "b").await?,
        ferry_testkit::table_digest(&mut t, "fc_sel_new", "b").await?
    );
    drop_dbs(&mut s, &["fc_sel"]).await?;
    drop_dbs(&mut t, &["fc_sel_new"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structure_only_job_from_a_toml_file() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fc_struct").await?;
    drop_dbs(&mut t, &["fc_struct"]).await?;
    exec(
        &mut s,
        "USE fc_struct; CREATE TABLE x (id INT PRIMARY KEY, k INT, KEY kk (k)); INSERT INTO x VALUES (1, 1);",
    )
    .await?;
    let (src, dst) = (source(), target());
    let toml = format!(
        r#"JobName = "fc-struct"
DatabaseInfo = [{{ Database = "fc_struct" }}]
[MigrateOption]
RunMode = 1
MigrateType = 1
MigrateObject = 2
[SrcInfo]
Ip = "{}"
Port = {}
User = "{}"
Password = "{}"
[DstInfo]
Ip = "{}"
Port = {}
User = "{}"
Password = "{}"
"#,
        src.host,
        src.port,
        src.user,
        src.password.expose(),
        dst.host,
        dst.port,
        dst.user,
        dst.password.expose()
    );
    let dir = std::env::temp_dir().join(format!("ferry-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("fc-struct.toml");
    std::fs::write(&path, toml)?;
    let out = run(&path, &["--restart"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: u64 = scalar(&mut t, "SELECT COUNT(*) FROM fc_struct.x").await?;
    assert_eq!(rows, 0, "a structure job copies no rows");
    let idx: u64 =
        scalar(&mut t, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='fc_struct' AND INDEX_NAME='kk'").await?;
    assert_eq!(idx, 1, "secondary index created");
    drop_dbs(&mut s, &["fc_struct"]).await?;
    drop_dbs(&mut t, &["fc_struct"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_binlog_false_keeps_rows_out_of_the_target_binlog() -> Result<()> {
    use mysql_async::prelude::Queryable;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fc_nobinlog").await?;
    drop_dbs(&mut t, &["fc_nobinlog"]).await?;
    exec(&mut s, "USE fc_nobinlog; CREATE TABLE r (id INT PRIMARY KEY, v CHAR(50)); INSERT INTO r SELECT seq, MD5(seq) FROM seq_1_to_20000;").await?;
    let status: mysql_async::Row = t
        .query_first("SHOW MASTER STATUS")
        .await?
        .ok_or_else(|| anyhow::anyhow!("target has no binlog"))?;
    let (file, pos): (String, u64) = (
        status.get(0).unwrap_or_default(),
        status.get(1).unwrap_or_default(),
    );
    let j = job(
        "fc-nobinlog",
        json!([{"Database": "fc_nobinlog"}]),
        json!({"TargetBinlog": false}),
        2,
    );
    let out = run(&write_job("fc-nobinlog", &j), &["--restart"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_db_equal("fc_nobinlog", "fc_nobinlog").await?;
    assert_eq!(
        ferry_testkit::binlog_table_maps(&mut t, &file, pos, "fc_nobinlog").await?,
        0,
        "no row event of fc_nobinlog in the target binlog"
    );
    drop_dbs(&mut s, &["fc_nobinlog"]).await?;
    drop_dbs(&mut t, &["fc_nobinlog"]).await?;
    Ok(())
}
