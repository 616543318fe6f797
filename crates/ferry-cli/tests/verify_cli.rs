//! `ferry verify` as a user runs it: exit 0 when equal, 2 with the differences and a repair file
//! when the target diverged, and 0 again once the repair SQL ran on the target.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, source, target};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_repairs_and_confirms() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fcv_db").await?;
    drop_dbs(&mut t, &["fcv_db"]).await?;
    exec(
        &mut s,
        "USE fcv_db; CREATE TABLE a (id INT PRIMARY KEY, f FLOAT, v VARCHAR(20));
         INSERT INTO a SELECT seq, seq / 3, CONCAT('v', seq) FROM seq_1_to_5000;",
    )
    .await?;
    let path = write_job("fcv", &job("fcv", json!([{"Database": "fcv_db"}]), json!({}), 2));
    let out = run(&path, &["--restart"]);
    assert!(out.status.success(), "{}", text(&out));

    let out = verify(&path, &["--json"], None);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["consistent"], json!(true));
    // --job-id names the checkpoints of a served job; an empty one is refused, naming the flag.
    let out = verify(&path, &["--json", "--job-id", " "], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--job-id"), "{}", text(&out));
    let out = verify(&path, &["--json", "--job-id", "fcv"], None);
    assert_eq!(out.status.code(), Some(0), "the job's own key: consistent");

    // Plant: a missing row, an extra row, a changed value.
    exec(&mut t, "DELETE FROM fcv_db.a WHERE id = 10; INSERT INTO fcv_db.a VALUES (9999, 1, 'x'); UPDATE fcv_db.a SET v = 'changed' WHERE id = 20;").await?;
    let repair = std::env::temp_dir()
        .join(format!("ferry-cli-tests-{}", std::process::id()))
        .join("fcv-repair.sql");
    let out = verify(
        &path,
        &["--json", "--repair-sql", repair.to_str().unwrap_or_default()],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "differences give exit status 2");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let table = &report["tables"][0];
    assert_eq!(
        (
            table["only_in_source"].clone(),
            table["only_in_target"].clone(),
            table["different"].clone()
        ),
        (json!(1), json!(1), json!(1)),
        "{table}"
    );
    let sql = std::fs::read_to_string(&repair)?;
    exec(&mut t, &sql).await?;
    let out = verify(&path, &[], None);
    assert_eq!(out.status.code(), Some(0), "consistent after the repair");
    assert_db_equal("fcv_db", "fcv_db").await?;
    drop_dbs(&mut s, &["fcv_db"]).await?;
    drop_dbs(&mut t, &["fcv_db"]).await?;
    Ok(())
}
