//! Continuous verification's freshness through the API of the real `ferry serve`: a MigrateType 3
//! job with `Ferry.ContinuousVerify` (ConsistencyType 2). After the first full pass,
//! DescribeMigrationDetail's `verification` step runs ahead of the cut-over with every chunk
//! current (100 %), the rows verified equal the source's rows, the full pass has an age, and
//! `CompareTask` names the task `JOBID-continuous`, whose DescribeCompareReport says `same`
//! over every table and row with the last full pass's times. Under a write load on the source,
//! dirty chunks appear, and once the writes stop they drop back to none. The responses are
//! checked against the official SDK's models (`tests/sdk/check_responses.py`) when the venv of
//! scripts/sdk-venv.sh exists. DescribeCompareTasks lists the task first.
//!
//! The check of the result: a target row changed behind Ferry's back in a chunk the
//! replay touched (in the part the replay touched: chunks are digested again by parts) makes CompleteMigrateJob's verification inconsistent, and the task's
//! DescribeCompareReport names the row (`DifferentRows` 1, its key in `Detail.Difference`).
//! Only the databases `svc_api_fresh` and `svc_api_cv_planted` are touched.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use common::api::{call, wait_status};
use ferry_api::Client;
use ferry_testkit::{connect, exec, scalar, source, target, wait_until};
use serde_json::{json, Value};

const DB: &str = "svc_api_fresh";
const SECRET_ID: &str = "AKIDferryapifreshtest";
const SECRET_KEY: &str = "ferry-api-fresh-test-key";
const ROWS: u64 = 20_000;

/// An action of version 2021-12-06.
async fn call_2021(c: &Client, action: &str, params: Value) -> Result<Value> {
    c.call("2021-12-06", action, params)
        .await
        .map_err(|e| anyhow!("{action}: {e}"))
}

async fn detail(c: &Client, id: &str) -> Result<Value> {
    call_2021(c, "DescribeMigrationDetail", json!({"JobId": id})).await
}

/// The `verification` step of a DescribeMigrationDetail response.
fn verification(d: &Value) -> Value {
    d["StepInfo"]["StepInfo"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["StepId"] == "verification"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The number before `label` in a step message (`3 dirty`, `20000 rows verified`).
fn figure(message: &str, label: &str) -> Option<u64> {
    let at = message.find(label)?;
    message[..at].trim_end().rsplit([' ', '(']).next()?.parse().ok()
}

/// Type-checks the captured responses against the SDK's models (skips without the venv).
fn sdk_check(captured: &[Value]) -> Result<()> {
    let root = ferry_testkit::repo_root();
    let python: PathBuf = root.join(".ferry-test/venv/bin/python");
    if !python.exists() {
        println!(
            "SKIPPED the SDK model check: {} is absent; run scripts/sdk-venv.sh",
            python.display()
        );
        return Ok(());
    }
    let mut child = Command::new(&python)
        .arg(root.join("crates/ferry-cli/tests/sdk/check_responses.py"))
        .env("FERRY_ENDPOINT", "127.0.0.1:9")
        .env("FERRY_SECRET_ID", SECRET_ID)
        .env("FERRY_SECRET_KEY", SECRET_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, serde_json::to_string(captured)?.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("the SDK's models refuse the responses: {text}");
    }
    println!("{text}");
    Ok(())
}

/// Fresh source rows of `db.t` (ids 1..=ROWS, chunks of 1,000 rows), no target database.
async fn setup(db: &str) -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, db).await?;
    ferry_testkit::drop_dbs(&mut t, &[db]).await?;
    exec(
        &mut s,
        &format!(
            "USE {db}; CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL);
             INSERT INTO t SELECT seq, seq % 97 FROM seq_1_to_{ROWS};"
        ),
    )
    .await
}

/// Creates, checks and starts a MigrateType 3 job of `db` with ConsistencyType 2 and continuous
/// verification (no periodic rescan) through the API, and waits for the first full pass to show
/// in the detail (every chunk current). Returns the job's id.
async fn start_job(c: &Client, name: &str, db: &str) -> Result<String> {
    let mut request = common::job(
        name,
        json!([{"Database": db}]),
        json!({"ChunkRows": 1000, "Threads": 2,
               "ContinuousVerify": {"RowsPerSecond": 1_000_000, "FullRescanSeconds": 0}}),
        3,
    );
    request["MigrateOption"]["ConsistencyType"] = json!(2);
    let id = call(c, "CreateMigrateJob", request).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(c, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_status(c, &id, 4, 120).await?;
    call(c, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_until(300, "the first full pass in the detail", || async {
        let step = verification(&detail(c, &id).await?);
        let m = step["StepMessage"].as_str().unwrap_or_default().to_string();
        Ok(step["Status"] == "running" && m.contains("s ago") && step["Percent"] == 100)
    })
    .await?;
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_shows_in_the_detail_and_the_compare_report() -> Result<()> {
    setup(DB).await?;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    let dir = std::env::temp_dir().join(format!("ferry-api-fresh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let serve = common::serve::start_keyed(&dir.join("data"), SECRET_ID, SECRET_KEY)?;
    let c = Client::new(serve.url.clone(), SECRET_ID, SECRET_KEY);
    // After the first full pass: every chunk current, every row verified (nothing is written on
    // the source, so the figures stay as they are once reached).
    let id = start_job(&c, "api-fresh", DB).await?;
    let mut captured = Vec::new();
    let first = detail(&c, &id).await?;
    let step = verification(&first);
    let message = step["StepMessage"].as_str().unwrap_or_default();
    assert_eq!(figure(message, "rows verified"), Some(ROWS), "{message}");
    assert_eq!(figure(message, "dirty"), Some(0), "{message}");
    assert!(
        step["StartTime"].as_str().is_some_and(|t| !t.is_empty()),
        "{step}"
    );
    let task = first["CompareTask"].clone();
    assert_eq!(
        task,
        json!({"CompareTaskId": format!("{id}-continuous"), "Status": "running"})
    );
    captured.push(json!({"version": "2021-12-06", "action": "DescribeMigrationDetail", "response": first}));
    let report = call_2021(
        &c,
        "DescribeCompareReport",
        json!({"JobId": id, "CompareTaskId": format!("{id}-continuous")}),
    )
    .await?;
    let a = &report["Abstract"];
    assert_eq!(
        (
            a["Status"].clone(),
            a["Conclusion"].clone(),
            a["TotalTables"].clone(),
            a["CheckedTables"].clone()
        ),
        (json!("running"), json!("same"), json!(1), json!(1)),
        "{a}"
    );
    assert_eq!(
        (a["SrcSampleRows"].clone(), a["DstSampleRows"].clone()),
        (json!(ROWS), json!(ROWS)),
        "{a}"
    );
    assert_eq!(a["DifferentTables"], 0);
    let (started, finished) = (
        a["StartedAt"].as_str().unwrap_or(""),
        a["FinishedAt"].as_str().unwrap_or(""),
    );
    assert!(!started.is_empty() && started <= finished, "{a}");
    captured.push(json!({"version": "2021-12-06", "action": "DescribeCompareReport", "response": report}));
    // DescribeCompareTasks lists it (the job has no task of its own).
    let tasks = call_2021(&c, "DescribeCompareTasks", json!({"JobId": id})).await?;
    assert_eq!(tasks["TotalCount"], 1, "{tasks}");
    let item = &tasks["Items"][0];
    assert_eq!(
        (
            item["CompareTaskId"].clone(),
            item["Status"].clone(),
            item["Conclusion"].clone(),
            item["CompareProcess"]["Percent"].clone()
        ),
        (
            json!(format!("{id}-continuous")),
            json!("running"),
            json!("same"),
            json!(100)
        ),
        "{item}"
    );
    let filtered = call_2021(
        &c,
        "DescribeCompareTasks",
        json!({"JobId": id, "Status": ["success"]}),
    )
    .await?;
    assert_eq!(filtered["TotalCount"], 0, "{filtered}");
    captured.push(json!({"version": "2021-12-06", "action": "DescribeCompareTasks", "response": tasks}));
    // It runs with the job: StartCompare refuses it by name.
    let refused = c
        .call(
            "2021-12-06",
            "StartCompare",
            json!({"JobId": id, "CompareTaskId": format!("{id}-continuous")}),
        )
        .await;
    let text = format!("{refused:?}");
    assert!(
        text.contains("FailedOperation.NotAllowOperation") && text.contains("continuous verification"),
        "{text}"
    );

    // A write load: dirty chunks appear; once it stops they drop back to none.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut s = connect(&source()).await?;
            let mut n: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let id = (n * 7919) % ROWS + 1;
                exec(&mut s, &format!("UPDATE {DB}.t SET v = v + 1 WHERE id = {id}")).await?;
            }
            Ok::<u64, anyhow::Error>(n)
        })
    };
    wait_until(120, "dirty chunks under the write load", || async {
        let d = detail(&c, &id).await?;
        let m = verification(&d)["StepMessage"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(figure(&m, "dirty").is_some_and(|n| n > 0))
    })
    .await?;
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await??;
    assert!(writes > 0);
    wait_until(120, "the dirty chunks to drop back", || async {
        let step = verification(&detail(&c, &id).await?);
        let m = step["StepMessage"].as_str().unwrap_or_default().to_string();
        Ok(figure(&m, "dirty") == Some(0) && step["Percent"] == 100)
    })
    .await?;
    let settled = detail(&c, &id).await?;
    let m = verification(&settled)["StepMessage"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        figure(&m, "rows verified").is_some_and(|n| n > ROWS),
        "the dirty chunks were digested again: {m}"
    );
    captured.push(json!({"version": "2021-12-06", "action": "DescribeMigrationDetail", "response": settled}));
    sdk_check(&captured)?;

    // The cut-over verification still runs and the job completes consistent.
    wait_status(&c, &id, 8, 300).await?;
    call(&c, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 9, 300).await?;
    let a = ferry_testkit::db_digest(&mut s, DB).await?;
    let b = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(a, b, "source and target differ");
    drop(serve);
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_row_changed_in_a_touched_chunk_is_named_after_complete() -> Result<()> {
    const DB: &str = "svc_api_cv_planted";
    setup(DB).await?;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    let dir = std::env::temp_dir().join(format!("ferry-api-cv-planted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let serve = common::serve::start_keyed(&dir.join("data"), SECRET_ID, SECRET_KEY)?;
    let c = Client::new(serve.url.clone(), SECRET_ID, SECRET_KEY);
    let id = start_job(&c, "api-cv-planted", DB).await?;
    // Behind Ferry's back, row 3501 of chunk 3 on the target; then a source change in its part (id 3500),
    // which the replay applies (and marks).
    exec(&mut t, &format!("UPDATE {DB}.t SET v = 100000 WHERE id = 3501")).await?;
    exec(&mut s, &format!("UPDATE {DB}.t SET v = 5000 WHERE id = 3500")).await?;
    wait_until(120, "the replay to apply the source's change", || async {
        let mut t = connect(&target()).await?;
        Ok(scalar::<u64>(
            &mut t,
            &format!("SELECT COUNT(*) FROM {DB}.t WHERE id = 3500 AND v = 5000"),
        )
        .await?
            == 1)
    })
    .await?;
    wait_status(&c, &id, 8, 300).await?;
    call(&c, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 9, 300).await?;
    let mut captured = Vec::new();

    // The job's result: its verification step failed, with the counts.
    let d = detail(&c, &id).await?;
    let step = verification(&d);
    let message = step["StepMessage"].as_str().unwrap_or_default();
    assert_eq!(step["Status"], "failed", "{step}");
    assert!(
        message.contains("verification found differences in 1 table(s) (1 rows)")
            && message.contains("chunks digested again at cut-over"),
        "{message}"
    );
    assert!(
        d["BriefMsg"].as_str().unwrap_or_default().contains("differences"),
        "{d}"
    );
    captured.push(json!({"version": "2021-12-06", "action": "DescribeMigrationDetail", "response": d}));
    // The task's report names the row.
    let report = call_2021(
        &c,
        "DescribeCompareReport",
        json!({"JobId": id, "CompareTaskId": format!("{id}-continuous")}),
    )
    .await?;
    let a = &report["Abstract"];
    assert_eq!(
        (
            a["Status"].clone(),
            a["Conclusion"].clone(),
            a["DifferentTables"].clone(),
            a["DifferentRows"].clone(),
            a["SrcSampleRows"].clone(),
            a["DstSampleRows"].clone()
        ),
        (
            json!("success"),
            json!("different"),
            json!(1),
            json!(1),
            json!(ROWS),
            json!(ROWS)
        ),
        "{a}"
    );
    let diffs = &report["Detail"]["Difference"];
    assert_eq!(diffs["TotalCount"], 1, "{diffs}");
    let row = &diffs["Items"][0];
    assert_eq!(
        (
            row["Db"].clone(),
            row["Table"].clone(),
            row["LowerBoundary"].clone(),
            row["IndexName"].clone()
        ),
        (json!(DB), json!("t"), json!("3501"), json!("id")),
        "{row}"
    );
    let full = &report["Detail"]["FullProgress"]["Items"][0];
    assert_eq!(
        (full["Table"].clone(), full["Conclusion"].clone()),
        (json!("t"), json!("different"))
    );
    captured.push(json!({"version": "2021-12-06", "action": "DescribeCompareReport", "response": report}));
    let tasks = call_2021(&c, "DescribeCompareTasks", json!({"JobId": id})).await?;
    let item = &tasks["Items"][0];
    assert_eq!(
        (
            item["CompareTaskId"].clone(),
            item["Status"].clone(),
            item["Conclusion"].clone()
        ),
        (
            json!(format!("{id}-continuous")),
            json!("success"),
            json!("different")
        ),
        "{tasks}"
    );
    captured.push(json!({"version": "2021-12-06", "action": "DescribeCompareTasks", "response": tasks}));
    sdk_check(&captured)?;
    drop(serve);
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn figures_are_read_from_the_message() {
    let m = "continuous verification: 20000 rows verified; chunks: 21 (3 dirty, 0 different, 0 not yet); \
             oldest unverified change 2 s old; full pass 5 s ago";
    assert_eq!(figure(m, "rows verified"), Some(20000));
    assert_eq!(figure(m, "dirty"), Some(3));
    assert_eq!(figure(m, "not yet"), Some(0));
}
