//! Typed-SDK conformance: `tests/sdk/sdk_types.py` calls every action `ferry serve` implements (both
//! API versions) through the official Tencent Cloud Python SDK (`.ferry-test/venv`, made by
//! scripts/sdk-venv.sh) and checks every field of every response, recursively, against the types
//! the SDK's model classes declare (`DatabaseInfo` a String holding JSON, integers as integers,
//! no undeclared field), plus TagFilters, CompleteMode, SrcNodeType/SrcInfoMulti and a custom
//! compare task with a row filter. Skips, saying so, only when the venv is absent. Only the
//! database `svc_api_types` is touched.

mod common;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{anyhow, bail, Result};
use common::serve::Serve;
use ferry_testkit::{connect, source, target};
use serde_json::{json, Value};

const DB: &str = "svc_api_types";
const SECRET_ID: &str = "AKIDferryapitypestest";
const SECRET_KEY: &str = "ferry-api-types-test-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_field_has_the_sdk_declared_type() -> Result<()> {
    let root = ferry_testkit::repo_root();
    let python = root.join(".ferry-test/venv/bin/python");
    if !python.exists() {
        println!(
            "SKIPPED every_response_field_has_the_sdk_declared_type: {} is absent; run scripts/sdk-venv.sh",
            python.display()
        );
        return Ok(());
    }
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, DB).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    ferry_testkit::exec(
        &mut s,
        &format!(
            "USE {DB}; CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(40), ts TIMESTAMP NULL); \
             INSERT INTO items SELECT seq, MD5(seq), FROM_UNIXTIME(1700000000 + seq) FROM seq_1_to_3000; \
             CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'a'), (2, NULL)"
        ),
    )
    .await?;
    let dir: PathBuf = std::env::temp_dir().join(format!("ferry-api-types-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(
        &dir,
        &[
            "--data-dir",
            data.to_str()
                .ok_or_else(|| anyhow!("not UTF-8: {}", data.display()))?,
        ],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let endpoint = serve.url.trim_start_matches("http://").to_string();
    let mut job = common::job("api-types", json!([{"Database": DB}]), json!({}), 3);
    job["MigrateOption"]["MigrateObject"] = json!(2);
    let out = Command::new(&python)
        .arg(root.join("crates/ferry-cli/tests/sdk/sdk_types.py"))
        .env("FERRY_ENDPOINT", &endpoint)
        .env("FERRY_SECRET_ID", SECRET_ID)
        .env("FERRY_SECRET_KEY", SECRET_KEY)
        .env("FERRY_JOB", job.to_string())
        .env("FERRY_TABLE", "items")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    serve.kill9();
    println!("{stdout}");
    let last: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    if !out.status.success() || last["step"] != "done" {
        bail!("sdk_types.py failed ({}):\n{stdout}\n{stderr}", out.status);
    }
    // Every action of both versions was called and its response checked.
    for (version, table) in [
        ("2018-03-30", ferry_service::actions::v20180330::ACTIONS),
        ("2021-12-06", ferry_service::actions::v20211206::ACTIONS),
    ] {
        let called: Vec<&str> = last["actions"][version]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (action, _) in table {
            // SkipCheckItem answers an error when the check has no WARNING item (checked as an
            // error envelope).
            if *action == "SkipCheckItem" && !called.contains(action) {
                assert!(stdout.contains("\"action\": \"SkipCheckItem\""), "{stdout}");
                continue;
            }
            assert!(called.contains(action), "{version} {action} not checked: {last}");
        }
    }
    assert!(last["fields_checked"].as_u64().unwrap_or(0) > 300, "{last}");
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
