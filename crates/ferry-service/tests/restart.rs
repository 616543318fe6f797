//! Restart safety in-process: a service shut down in the middle of a full load (and one opened
//! again on the same data directory) resumes the job from its checkpoints and completes it with
//! equal digests; a timed job (RunMode 2) persisted across a reopen still starts at its time.
//! Databases `svc_restart_*`.

mod common;

use anyhow::Result;
use common::*;
use ferry_api::ActionHandler;
use ferry_testkit::wait_until;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_full_load_resumes_on_reopen() -> Result<()> {
    const DB: &str = "svc_restart_load";
    exactly_once_tables(DB, 60_000).await?;
    let dir = data_dir("restart-load");
    let svc = open(&dir).await?;
    // Slow enough to be caught in the middle: 20 000 rows/s over 60 000 rows in 1 000-row chunks.
    let id = create_checked(
        &svc,
        job_request(
            "restart-load",
            json!([{"Database": DB}]),
            2,
            json!({"ChunkRows": 1000, "Threads": 2, "RowsPerSecond": 20000}),
        ),
    )
    .await?;
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_until(120, "the full load to be under way", || async {
        let i = info(&svc, &id).await?;
        let d = &i["Detail"];
        Ok(d["StepNow"] == 2
            && d["CurrentStepProgress"]
                .as_str()
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(0)
                >= 5)
    })
    .await?;
    svc.shutdown().await;
    assert_eq!(
        status(&svc, &id).await?,
        7,
        "a shutdown leaves the job running (to resume)"
    );
    let m = svc.metrics().await;
    assert!(m.contains("ferry_job_rows_copied_total"), "{m}");
    drop(svc);

    let svc = open(&dir).await?;
    wait_status(&svc, &id, 9, 300).await?;
    assert_db_equal(DB).await?;
    let i = info(&svc, &id).await?;
    assert_eq!(i["Detail"]["Progress"], "100");
    svc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_job_keeps_its_time_across_a_reopen() -> Result<()> {
    const DB: &str = "svc_restart_timed";
    exactly_once_tables(DB, 1_000).await?;
    let dir = data_dir("restart-timed");
    let svc = open(&dir).await?;
    let at = ferry_service::store::now() + 6;
    let expect = ferry_service::actions::fmt_time(Some(at));
    let mut req = job_request("restart-timed", json!([{"Database": DB}]), 2, json!({}));
    req["MigrateOption"]["RunMode"] = json!(2);
    req["MigrateOption"]["ExpectTime"] = json!(expect);
    let id = create_checked(&svc, req).await?;
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    assert_eq!(status(&svc, &id).await?, 6, "a timed job waits in ReadyRun");
    svc.shutdown().await;
    drop(svc);

    let svc = open(&dir).await?;
    assert_eq!(status(&svc, &id).await?, 6, "still waiting after the reopen");
    wait_status(&svc, &id, 9, 120).await?;
    let i = info(&svc, &id).await?;
    let started =
        ferry_job::spec::parse_expect_time(i["StartTime"].as_str().unwrap_or_default()).unwrap_or(0);
    assert!(
        started as i64 >= at,
        "started at {} before its ExpectTime {expect}",
        i["StartTime"]
    );
    assert_eq!(i["MigrateOption"]["ExpectTime"], json!(expect));
    assert_db_equal(DB).await?;
    svc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_and_stopping_jobs_are_finished_after_a_crash() -> Result<()> {
    use ferry_service::store::Patch;
    use ferry_service::JobStatus;
    const DB: &str = "svc_restart_complete";
    exactly_once_tables(DB, 2_000).await?;
    let dir = data_dir("restart-complete");
    let svc = open(&dir).await?;
    let id = create_checked(
        &svc,
        job_request("restart-complete", json!([{"Database": DB}]), 3, json!({})),
    )
    .await?;
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 8, 300).await?;
    let other = ok18(
        &svc,
        "CreateMigrateJob",
        job_request("restart-stopping", json!([{"Database": DB}]), 1, json!({})),
    )
    .await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    svc.shutdown().await;
    // As if the process died right after CompleteMigrateJob (12) and StopMigrateJob (11).
    let store = svc.manager().store().clone();
    store
        .update(&id, None, Patch::status(JobStatus::Completing))
        .await?;
    store
        .update(&other, None, Patch::status(JobStatus::Stopping))
        .await?;
    // A second server on the same data directory is refused while the first holds it.
    let e = ferry_service::Service::open(&dir, Default::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(e.unwrap_or_default().contains("in use by another ferry serve"));
    drop(store);
    drop(svc);

    let svc = open(&dir).await?;
    wait_status(&svc, &id, 9, 300).await?;
    assert_db_equal(DB).await?;
    let i = info(&svc, &other).await?;
    assert_eq!(i["Status"], 10);
    assert_eq!(i["ErrorInfo"][0]["ErrorLog"], "stopped by StopMigrateJob");
    svc.shutdown().await;
    Ok(())
}
