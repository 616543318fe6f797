//! Every bad input to `ferry run` gets a clear message naming what to fix, exit status 1, and
//! changes nothing on the target.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target};
use serde_json::json;

/// Runs the job (pre-check included, unless `args` says `--skip-check`) and expects exit 1 with
/// every needle in the output.
fn fails_with(job: &serde_json::Value, name: &str, args: &[&str], needles: &[&str]) -> String {
    let mut all = vec!["--restart"];
    all.extend_from_slice(args);
    let out = run(&write_job(name, job), &all);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    for n in needles {
        assert!(t.contains(n), "expected {n:?} in:\n{t}");
    }
    assert!(!t.contains("panicked"), "{t}");
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_host_and_wrong_password() -> Result<()> {
    // A closed local port: connection refused. Told by the runner and by the pre-check.
    let mut j = job("fe-refused", json!([{"Database": "fe_x"}]), json!({}), 2);
    j["SrcInfo"]["Port"] = json!(1);
    fails_with(
        &j,
        "fe-refused",
        &["--skip-check"],
        &["source", "cannot connect", "SrcInfo.Port"],
    );
    let t = fails_with(
        &j,
        "fe-refused",
        &[],
        &[
            "source_connection",
            "connection refused by 127.0.0.1:1",
            "not started",
        ],
    );
    assert!(
        t.contains("more items not checked"),
        "dependent items collapse into one line:\n{t}"
    );

    let mut j = job("fe-password", json!([{"Database": "fe_x"}]), json!({}), 2);
    j["DstInfo"]["Password"] = json!("definitely-wrong");
    let t = fails_with(
        &j,
        "fe-password",
        &["--skip-check"],
        &["target", "access denied", "DstInfo.Password"],
    );
    assert!(
        !t.contains("definitely-wrong"),
        "the password must never be printed"
    );
    let t = fails_with(&j, "fe-password", &[], &["target_connection", "wrong password"]);
    assert!(
        !t.contains("definitely-wrong"),
        "the password must never be printed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_or_table() -> Result<()> {
    let mut s = connect(&source()).await?;
    fresh_db(&mut s, "fe_known").await?;
    exec(&mut s, "CREATE TABLE fe_known.t (id INT PRIMARY KEY)").await?;
    let nodb = job("fe-nodb", json!([{"Database": "fe_nope"}]), json!({}), 2);
    fails_with(
        &nodb,
        "fe-nodb",
        &["--skip-check"],
        &["database fe_nope does not exist on the source"],
    );
    fails_with(&nodb, "fe-nodb", &[], &["source_objects_exist", "fe_nope"]);
    let notable = job(
        "fe-notable",
        json!([{"Database": "fe_known", "Table": ["t", "ghost"]}]),
        json!({}),
        2,
    );
    fails_with(
        &notable,
        "fe-notable",
        &["--skip-check"],
        &["table fe_known.ghost does not exist on the source"],
    );
    fails_with(&notable, "fe-notable", &[], &["source_objects_exist", "ghost"]);
    drop_dbs(&mut s, &["fe_known"]).await?;
    Ok(())
}

#[test]
fn malformed_job_files() {
    let dir = std::env::temp_dir().join(format!("ferry-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, body, needle) in [
        ("fe-syntax.json", "{\"JobName\": ", "not a valid job (JSON)"),
        ("fe-typo.json", "{\"JobName\": \"x\", \"MigrateOptoin\": {}}", "MigrateOptoin"),
        (
            "fe-type.json",
            "{\"JobName\": \"x\", \"MigrateOption\": {\"RunMode\": 1, \"MigrateType\": 9}, \"SrcInfo\": {\"Ip\": \"h\", \"User\": \"u\"}, \"DstInfo\": {\"Ip\": \"h\", \"User\": \"u\"}}",
            "MigrateOption.MigrateType",
        ),
        ("fe-bad.toml", "JobName = [", "not a valid job (TOML)"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write");
        let out = run(&path, &[]);
        assert_eq!(out.status.code(), Some(1));
        let t = text(&out);
        assert!(t.contains(needle), "{name}: expected {needle:?} in {t}");
        assert!(!t.contains("panicked"));
    }
    let out = run(&dir.join("fe-missing.json"), &[]);
    assert!(text(&out).contains("cannot read the job file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_empty_target_table_fails_and_changes_nothing() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fe_busy").await?;
    fresh_db(&mut t, "fe_busy").await?;
    exec(&mut s, "USE fe_busy; CREATE TABLE a (id INT PRIMARY KEY); CREATE TABLE b (id INT PRIMARY KEY); INSERT INTO a VALUES (1),(2); INSERT INTO b VALUES (1);").await?;
    exec(
        &mut t,
        "USE fe_busy; CREATE TABLE b (id INT PRIMARY KEY); INSERT INTO b VALUES (42);",
    )
    .await?;
    let j = job("fe-busy", json!([{"Database": "fe_busy"}]), json!({}), 2);
    fails_with(&j, "fe-busy", &["--skip-check"], &["fe_busy.b", "ExistingTables"]);
    fails_with(&j, "fe-busy", &[], &["target_existing_tables", "fe_busy"]);
    let a: u64 = scalar(
        &mut t,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='fe_busy' AND TABLE_NAME='a'",
    )
    .await?;
    assert_eq!(a, 0, "nothing was created before the check failed");
    let kept: i64 = scalar(&mut t, "SELECT id FROM fe_busy.b").await?;
    assert_eq!(kept, 42, "the target row is untouched");

    // With ExistingTables = truncate the same job succeeds and the target equals the source.
    let j = job(
        "fe-busy",
        json!([{"Database": "fe_busy"}]),
        json!({"ExistingTables": "truncate"}),
        2,
    );
    let out = run(&write_job("fe-busy2", &j), &["--restart"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_db_equal("fe_busy", "fe_busy").await?;
    drop_dbs(&mut s, &["fe_busy"]).await?;
    drop_dbs(&mut t, &["fe_busy"]).await?;
    Ok(())
}
