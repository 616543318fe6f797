//! The 2021-12-06 actions in-process against the real test servers: per-item pre-check results
//! and SkipCheckItem, a compare task that finds a planted difference, pause (capture and apply)
//! and resume of a MigrateType 3 job under writes (exactly once, equal digests), the rate limit,
//! and DescribeMigrationDetail. Databases `svc_v21_*`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, target, wait_until};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_items_and_compare_finds_a_planted_difference() -> Result<()> {
    const DB: &str = "svc_v21_cmp";
    exactly_once_tables(DB, 5_000).await?;
    let dir = data_dir("v21-cmp");
    let svc = open(&dir).await?;
    let id = create_checked(
        &svc,
        job_request("v21-cmp", json!([{"Database": DB}]), 2, json!({})),
    )
    .await?;

    let c = ok21(&svc, "DescribeMigrationCheckJob", json!({"JobId": id})).await?;
    assert_eq!(
        (c["Status"].clone(), c["CheckFlag"].clone()),
        (json!("success"), json!("checkPass"))
    );
    let steps = c["StepInfo"].as_array().cloned().unwrap_or_default();
    assert!(
        steps
            .iter()
            .any(|s| s["StepId"] == "source_connection" && s["StepStatus"] == "pass"),
        "{c:?}"
    );
    // Only WARNING items can be skipped.
    let e = call(
        &svc,
        "2021-12-06",
        "SkipCheckItem",
        json!({"JobId": id, "StepIds": ["source_connection"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation");
    let e = call(
        &svc,
        "2021-12-06",
        "SkipCheckItem",
        json!({"JobId": id, "StepIds": ["no_such_item"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterValue");
    if let Some(w) = steps.iter().find(|s| s["StepStatus"] == "warning") {
        ok21(
            &svc,
            "SkipCheckItem",
            json!({"JobId": id, "StepIds": [w["StepId"].clone()]}),
        )
        .await?;
        let c = ok21(&svc, "DescribeMigrationCheckJob", json!({"JobId": id})).await?;
        let skipped = c["StepInfo"].as_array().cloned().unwrap_or_default();
        assert!(skipped
            .iter()
            .any(|s| s["StepId"] == w["StepId"] && s["HasSkipped"] == true));
    }

    // A compare task before the job has data is refused.
    let cid = ok21(
        &svc,
        "CreateCompareTask",
        json!({"JobId": id, "TaskName": "first"}),
    )
    .await?["CompareTaskId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(cid.starts_with(&format!("{id}-cmp-")), "{cid}");
    let e = call(
        &svc,
        "2021-12-06",
        "StartCompare",
        json!({"JobId": id, "CompareTaskId": cid}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation");

    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 9, 300).await?;
    assert_db_equal(DB).await?;
    // Plant a difference on the target, then compare.
    let mut t = connect(&target()).await?;
    ferry_testkit::exec(
        &mut t,
        &format!("UPDATE {DB}.bulk SET x = 'planted' WHERE id = 4242"),
    )
    .await?;
    ok21(&svc, "StartCompare", json!({"JobId": id, "CompareTaskId": cid})).await?;
    wait_until(120, "the compare task to finish", || async {
        let l = ok21(&svc, "DescribeCompareTasks", json!({"JobId": id})).await?;
        let st = l["Items"][0]["Status"].as_str().unwrap_or_default().to_string();
        anyhow::ensure!(st != "failed", "compare failed: {}", l["Items"][0]["Message"]);
        Ok(st == "success")
    })
    .await?;
    let l = ok21(&svc, "DescribeCompareTasks", json!({"JobId": id})).await?;
    assert_eq!(
        (l["TotalCount"].clone(), l["Items"][0]["Conclusion"].clone()),
        (json!(1), json!("different"))
    );
    let r = ok21(
        &svc,
        "DescribeCompareReport",
        json!({"JobId": id, "CompareTaskId": cid}),
    )
    .await?;
    assert_eq!(r["Abstract"]["Conclusion"], "different");
    assert_eq!(r["Abstract"]["DifferentTables"], 1);
    assert_eq!(r["Abstract"]["DifferentRows"], 1);
    let d = &r["Detail"]["Difference"];
    assert_eq!(d["TotalCount"], 1, "{r:?}");
    assert_eq!(
        (
            d["Items"][0]["Table"].clone(),
            d["Items"][0]["LowerBoundary"].clone()
        ),
        (json!("bulk"), json!("4242"))
    );
    let detail = ok21(&svc, "DescribeMigrationDetail", json!({"JobId": id})).await?;
    assert_eq!(detail["CompareTask"]["Status"], "inconsistent");
    assert_eq!(detail["Status"], "success");
    assert!(!serde_json::to_string(&detail)?.contains(ferry_testkit::source().password.expose()));

    // Repaired: a second task says same.
    ferry_testkit::exec(
        &mut t,
        &format!("UPDATE {DB}.bulk SET x = MD5(4242) WHERE id = 4242"),
    )
    .await?;
    let cid2 = ok21(&svc, "CreateCompareTask", json!({"JobId": id, "ObjectMode": "custom",
        "Objects": {"ObjectMode": "partial", "ObjectItems": [{"DbName": DB, "TableMode": "partial", "Tables": [{"TableName": "bulk"}]}]}}))
    .await?["CompareTaskId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ok21(&svc, "StartCompare", json!({"JobId": id, "CompareTaskId": cid2})).await?;
    wait_until(120, "the second compare task to finish", || async {
        let l = ok21(
            &svc,
            "DescribeCompareTasks",
            json!({"JobId": id, "CompareTaskId": cid2}),
        )
        .await?;
        Ok(l["Items"][0]["Status"] == "success")
    })
    .await?;
    let r = ok21(
        &svc,
        "DescribeCompareReport",
        json!({"JobId": id, "CompareTaskId": cid2}),
    )
    .await?;
    assert_eq!(r["Abstract"]["Conclusion"], "same");
    let e = call(
        &svc,
        "2021-12-06",
        "CreateCompareTask",
        json!({"JobId": id, "Options": {"Method": "rowsCount"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterValue");
    svc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_under_writes() -> Result<()> {
    const DB: &str = "svc_v21_pause";
    exactly_once_tables(DB, 10_000).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(DB, stop.clone(), commits.clone());
    let dir = data_dir("v21-pause");
    let svc = open(&dir).await?;
    let id = create_checked(
        &svc,
        job_request(
            "v21-pause",
            json!([{"Database": DB}]),
            3,
            json!({"ChunkRows": 2000}),
        ),
    )
    .await?;
    let e = call(&svc, "2021-12-06", "PauseMigrateJob", json!({"JobId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation", "not running yet");
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 8, 300).await?;

    ok21(
        &svc,
        "ModifyMigrateRateLimit",
        json!({"JobId": id, "LoadRps": 100000, "SinkerThread": 2}),
    )
    .await?;
    let d = ok21(&svc, "DescribeMigrationDetail", json!({"JobId": id})).await?;
    assert_eq!(d["RateLimitOption"]["CurrentLoadRps"], 100000);
    assert_eq!(
        d["RateLimitOption"]["CurrentSinkerThread"], 2,
        "the apply workers of the next run"
    );
    assert_eq!(d["RateLimitOption"]["HasUserSetRateLimit"], "yes");
    let e = call(
        &svc,
        "2021-12-06",
        "ModifyMigrateRateLimit",
        json!({"JobId": id, "LoadThread": 17}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterValue");

    ok21(&svc, "PauseMigrateJob", json!({"JobId": id})).await?;
    let e = call(&svc, "2021-12-06", "PauseMigrateJob", json!({"JobId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation", "already paused");
    wait_until(60, "the job to be paused", || async {
        let d = ok21(&svc, "DescribeMigrationDetail", json!({"JobId": id})).await?;
        Ok(d["Status"] == "manualPaused")
    })
    .await?;
    assert_eq!(
        status(&svc, &id).await?,
        7,
        "a paused job is Running (7) in the 2018 view"
    );
    let e = call(&svc, "2018-03-30", "CompleteMigrateJob", json!({"JobId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation");
    // Writes continue while paused.
    let more = commits.load(Ordering::SeqCst) + 50;
    wait_until(60, "writes while paused", || {
        let c = commits.clone();
        async move { Ok(c.load(Ordering::SeqCst) >= more) }
    })
    .await?;
    ok21(&svc, "ResumeMigrateJob", json!({"JobId": id})).await?;
    let e = call(&svc, "2021-12-06", "ResumeMigrateJob", json!({"JobId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation", "not paused any more");
    wait_status(&svc, &id, 8, 300).await?;

    // Pause the apply only: nothing more reaches the target while the source moves on.
    ok21(
        &svc,
        "PauseMigrateJob",
        json!({"JobId": id, "PauseMode": "target"}),
    )
    .await?;
    wait_until(60, "the apply to hold", || async {
        let d = ok21(&svc, "DescribeMigrationDetail", json!({"JobId": id})).await?;
        Ok(d["Status"] == "manualPaused")
    })
    .await?;
    let mut t = connect(&target()).await?;
    let counter = format!("SELECT n FROM {DB}.counter WHERE id = 1");
    let held: u64 = ferry_testkit::scalar(&mut t, &counter).await?;
    let more = commits.load(Ordering::SeqCst) + 50;
    wait_until(60, "writes while the apply holds", || {
        let c = commits.clone();
        async move { Ok(c.load(Ordering::SeqCst) >= more) }
    })
    .await?;
    assert_eq!(
        ferry_testkit::scalar::<u64>(&mut t, &counter).await?,
        held,
        "applied while paused"
    );
    assert_eq!(status(&svc, &id).await?, 7);
    ok21(&svc, "ResumeMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 8, 300).await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    ok18(&svc, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 9, 300).await?;
    assert_db_equal(DB).await?;
    assert_exactly_once(DB, commits.load(Ordering::SeqCst)).await?;
    let d = ok21(&svc, "DescribeMigrationDetail", json!({"JobId": id})).await?;
    assert_eq!(d["Status"], "success");
    assert_eq!(d["StepInfo"]["StepAll"], 4);
    assert_eq!(d["MigrateOption"]["MigrateType"], "fullAndIncrement");
    svc.shutdown().await;
    Ok(())
}
