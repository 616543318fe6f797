//! `ferry run` of a structure + full data job whose objects are given as `Ferry.DbList`: one
//! tenant's rows (a filter on an integer, a date and a string column), one column dropped and
//! one renamed, the load killed (-9) in the middle and resumed; the target holds exactly the
//! source's filtered rows under the mapping. Mappings Ferry cannot honour are refused by name.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, source, target};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const FILTER: &str = "tenant_id = 7 AND created >= '2024-01-01' AND code <> 'skip'";

fn tenant_list() -> Value {
    json!({"fm_src": {"name": "fm_dst", "Table": {"acc": {
        "filter": FILTER,
        "column": {"id": {}, "tenant_id": {}, "created": {}, "code": {}, "note": {"name": "remark"}}
    }}}})
}

async fn rows(
    c: &mut mysql_async::Conn,
    sql: &str,
) -> Result<Vec<(i64, i64, String, String, Option<String>)>> {
    Ok(c.query(sql).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_with_a_dropped_and_a_renamed_column_survives_kill_9() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fm_src").await?;
    drop_dbs(&mut t, &["fm_dst"]).await?;
    exec(
        &mut s,
        "USE fm_src; CREATE TABLE acc (id INT PRIMARY KEY, tenant_id INT NOT NULL, created DATE NOT NULL,
           code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, secret VARCHAR(40) NOT NULL,
           note TEXT, KEY k_secret (secret), KEY k_tenant (tenant_id, secret));
         INSERT INTO acc SELECT seq, seq % 10, '2023-12-25' + INTERVAL seq % 20 DAY, IF(seq % 13 = 0, 'skip', 'ok'),
           MD5(seq), IF(seq % 3 = 0, NULL, CONCAT('n', seq)) FROM seq_1_to_40000;",
    )
    .await?;
    // Slow first run, killed once a few chunks are committed.
    let slow = mapped_job(
        "fm-tenant",
        json!({"Threads": 2, "ChunkRows": 1000, "RowsPerSecond": 400}),
        tenant_list(),
        2,
    );
    kill_9_mid_load(&write_job("fm-tenant-slow", &slow), "fm-tenant", 3).await?;

    let fast = mapped_job(
        "fm-tenant",
        json!({"Threads": 2, "ChunkRows": 1000}),
        tenant_list(),
        2,
    );
    let out = run(&write_job("fm-tenant-fast", &fast), &[]);
    assert!(out.status.success(), "{}", text(&out));

    // The target table has the mapped columns only, the index over the dropped column is gone
    // and the other one no longer uses it.
    let cols: Vec<String> = t
        .query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'fm_dst' \
             AND TABLE_NAME = 'acc' ORDER BY ORDINAL_POSITION",
        )
        .await?;
    assert_eq!(cols, ["id", "tenant_id", "created", "code", "remark"]);
    let idx: Vec<(String, String)> = t
        .query(
            "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = 'fm_dst' AND TABLE_NAME = 'acc' GROUP BY INDEX_NAME ORDER BY INDEX_NAME",
        )
        .await?;
    assert_eq!(
        idx,
        [
            ("k_tenant".to_string(), "tenant_id".to_string()),
            ("PRIMARY".into(), "id".into())
        ]
    );
    // Exactly the source's filtered rows, under the mapping (no missing, extra or duplicate row).
    let want = rows(
        &mut s,
        &format!("SELECT id, tenant_id, CAST(created AS CHAR), code, note FROM fm_src.acc WHERE {FILTER} ORDER BY id"),
    )
    .await?;
    let got = rows(
        &mut t,
        "SELECT id, tenant_id, CAST(created AS CHAR), code, remark FROM fm_dst.acc ORDER BY id",
    )
    .await?;
    assert!(want.len() > 500, "the filter selects rows ({})", want.len());
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "the target's rows differ from the source's filtered rows"
    );

    drop_dbs(&mut s, &["fm_src"]).await?;
    drop_dbs(&mut t, &["fm_dst"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_ferry_cannot_honour_are_refused_by_name() -> Result<()> {
    let mut s = connect(&source()).await?;
    fresh_db(&mut s, "fm_refuse").await?;
    exec(
        &mut s,
        "USE fm_refuse; CREATE TABLE k (id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u_ab (a, b));",
    )
    .await?;
    let refused = |name: &str, j: &Value| {
        let out = run(&write_job(name, j), &["--restart"]);
        assert!(!out.status.success(), "{}", text(&out));
        text(&out)
    };
    // Both selections.
    let mut both = mapped_job("fm-both", json!({}), json!({"fm_refuse": {"all": true}}), 2);
    both["DatabaseInfo"] = json!("[{\"Database\": \"fm_refuse\"}]");
    assert!(refused("fm-both", &both).contains("DatabaseInfo, Ferry.DbList"));
    // The row key dropped.
    let no_key = mapped_job(
        "fm-nokey",
        json!({}),
        json!({"fm_refuse": {"Table": {"k": {"column": {"a": {}, "b": {}}}}}}),
        2,
    );
    let e = refused("fm-nokey", &no_key);
    assert!(
        e.contains("Ferry.DbList.fm_refuse.Table.k") && e.contains("drops id"),
        "{e}"
    );
    // A unique key losing a column.
    let no_b = mapped_job(
        "fm-nob",
        json!({}),
        json!({"fm_refuse": {"Table": {"k": {"column": {"id": {}, "a": {}}}}}}),
        2,
    );
    let e = refused("fm-nob", &no_b);
    assert!(e.contains("u_ab") && e.contains("uses b"), "{e}");
    // A filter the server evaluates but the replay cannot reproduce exactly: refused for a job
    // with an incremental phase, before anything is created.
    let inc = mapped_job(
        "fm-inc",
        json!({}),
        json!({"fm_refuse": {"Table": {"k": {"filter": "a + 1 > 2"}}}}),
        3,
    );
    let e = refused("fm-inc", &inc);
    assert!(
        e.contains("Ferry.DbList.fm_refuse.Table.k") && e.contains("incremental replay"),
        "{e}"
    );
    drop_dbs(&mut s, &["fm_refuse"]).await?;
    Ok(())
}
