//! The 2018-03-30 lifecycle through `Service::handle` against the real test servers: MigrateType 2
//! (create → check → start → 9) and MigrateType 3 under writes (→ 8 with lag shown → complete →
//! 9, exactly once), the status rules (every refused action leaves the job unchanged), racing
//! actions, Modify requiring a new check, and passwords never returned. Databases `svc_life_*`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, source, wait_until};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_migration_lifecycle_and_status_rules() -> Result<()> {
    const DB: &str = "svc_life_full";
    exactly_once_tables(DB, 30_000).await?;
    let dir = data_dir("life-full");
    let svc = open(&dir).await?;
    let request = job_request(
        "life-full",
        json!([{"Database": DB}]),
        2,
        json!({"ChunkRows": 4000, "Threads": 2}),
    );
    let secret = ferry_testkit::source().password.expose().to_string();

    let id = ok18(&svc, "CreateMigrateJob", request.clone()).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(id.starts_with("dts-") && id.len() == 12, "{id}");
    let created = info(&svc, &id).await?;
    assert_eq!(created["Status"], 1);
    assert_eq!(created["SrcInfo"]["Password"], "");
    assert_eq!(created["DstInfo"]["Password"], "");
    assert!(!created.to_string().contains(&secret), "a password came back");
    assert_eq!(created["StartTime"], "0000-00-00 00:00:00");
    // A String holding the JSON, as the SDK models declare it.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(created["DatabaseInfo"].as_str().unwrap_or_default())?,
        json!([{"Database": DB}])
    );
    let check = ok18(&svc, "DescribeMigrateCheckJob", json!({"JobId": id})).await?;
    assert_eq!(
        (check["Status"].clone(), check["CheckFlag"].clone()),
        (json!("unavailable"), json!(3))
    );

    // Refused in 1 (Creating), nothing changes.
    for action in ["StartMigrateJob", "StopMigrateJob", "CompleteMigrateJob"] {
        let e = call(&svc, "2018-03-30", action, json!({"JobId": id}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "FailedOperation.NotAllowOperation", "{action}: {e}");
        assert!(e.message.contains("1 (Creating)"), "{e}");
        assert_eq!(status(&svc, &id).await?, 1);
    }

    // Checked, then modified: the check result is gone and Start is refused until a new check.
    ok18(&svc, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 4, 120).await?;
    ok18(
        &svc,
        "ModifyMigrateJob",
        json!({"JobId": id, "JobName": "life-full-2", "SrcInfo": {"Port": source().port}}),
    )
    .await?;
    let after = info(&svc, &id).await?;
    assert_eq!(
        (after["Status"].clone(), after["JobName"].clone()),
        (json!(1), json!("life-full-2"))
    );
    let e = call(&svc, "2018-03-30", "StartMigrateJob", json!({"JobId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation");
    let check = ok18(&svc, "DescribeMigrateCheckJob", json!({"JobId": id})).await?;
    assert_eq!(check["CheckFlag"], 3, "Modify clears the check result");

    ok18(&svc, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 4, 120).await?;
    let check = ok18(&svc, "DescribeMigrateCheckJob", json!({"JobId": id})).await?;
    assert_eq!(
        (
            check["Status"].clone(),
            check["CheckFlag"].clone(),
            check["Progress"].clone()
        ),
        (json!("finished"), json!(1), json!("100"))
    );

    // Two concurrent starts: exactly one wins.
    let (a, b) = tokio::join!(
        call(&svc, "2018-03-30", "StartMigrateJob", json!({"JobId": id})),
        call(&svc, "2018-03-30", "StartMigrateJob", json!({"JobId": id}))
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    let loser = a.err().or(b.err()).map(|e| e.code).unwrap_or_default();
    assert_eq!(loser, "FailedOperation.NotAllowOperation");
    // While it runs: Delete and Modify are refused.
    for action in [
        "DeleteMigrateJob",
        "ModifyMigrateJob",
        "CreateMigrateCheckJob",
        "CompleteMigrateJob",
    ] {
        let e = call(&svc, "2018-03-30", action, json!({"JobId": id}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "FailedOperation.NotAllowOperation", "{action}");
    }
    wait_status(&svc, &id, 9, 300).await?;
    assert_db_equal(DB).await?;
    let done = info(&svc, &id).await?;
    assert_eq!(done["Detail"]["Progress"], "100");
    assert_eq!(done["Detail"]["StepAll"], 3);
    let step_ids: Vec<&str> = done["Detail"]["StepInfo"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["StepId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(step_ids, ["structure", "full_data", "post_data"]);
    assert!(done["Detail"]["StepInfo"]
        .as_array()
        .is_some_and(|a| a.iter().all(|s| s["Status"] == 1)));
    assert_ne!(done["EndTime"], "0000-00-00 00:00:00");
    assert!(!done.to_string().contains(&secret));

    // Final: everything but Delete (and Check/Modify, which lead nowhere from 9) is refused.
    for action in [
        "StartMigrateJob",
        "StopMigrateJob",
        "CompleteMigrateJob",
        "ModifyMigrateJob",
        "CreateMigrateCheckJob",
    ] {
        let e = call(&svc, "2018-03-30", action, json!({"JobId": id}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "FailedOperation.NotAllowOperation", "{action}");
        assert_eq!(status(&svc, &id).await?, 9);
    }
    ok18(&svc, "DeleteMigrateJob", json!({"JobId": id})).await?;
    let e = call(
        &svc,
        "2018-03-30",
        "DescribeMigrateCheckJob",
        json!({"JobId": id}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "ResourceNotFound.JobNotExist");
    svc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_lifecycle_under_writes() -> Result<()> {
    const DB: &str = "svc_life_inc";
    exactly_once_tables(DB, 20_000).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(DB, stop.clone(), commits.clone());
    let dir = data_dir("life-inc");
    let svc = open(&dir).await?;
    let id = create_checked(
        &svc,
        job_request(
            "life-inc",
            json!([{"Database": DB}]),
            3,
            json!({"ChunkRows": 5000, "Threads": 2}),
        ),
    )
    .await?;
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 8, 300).await?;
    let ready = info(&svc, &id).await?;
    let d = &ready["Detail"];
    assert_eq!(d["StepAll"], 4);
    assert_eq!(d["StepNow"], 4, "{d}");
    assert_eq!(d["CurrentStepProgress"], "100");
    assert!(
        d["SecondsBehindMaster"].is_u64() && d["MasterSlaveDistance"].is_u64(),
        "{d}"
    );
    assert_eq!(d["StepInfo"][3]["StepId"], "incremental");
    assert_eq!(d["StepInfo"][3]["Status"], 3);
    // Stop and Complete race on a job in 8: exactly one wins.
    let more = commits.load(Ordering::SeqCst) + 20;
    wait_until(60, "more writer commits", || {
        let c = commits.clone();
        async move { Ok(c.load(Ordering::SeqCst) >= more) }
    })
    .await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    ok18(&svc, "CompleteMigrateJob", json!({"JobId": id})).await?;
    let e = call(&svc, "2018-03-30", "CompleteMigrateJob", json!({"JobId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "FailedOperation.NotAllowOperation");
    wait_status(&svc, &id, 9, 300).await?;
    assert_db_equal(DB).await?;
    assert_exactly_once(DB, commits.load(Ordering::SeqCst)).await?;
    let done = info(&svc, &id).await?;
    assert!(
        done["Detail"]["StepInfo"]
            .as_array()
            .is_some_and(|a| a.iter().all(|s| s["Status"] == 1)),
        "{done}"
    );
    let d21 = ok21(&svc, "DescribeMigrationDetail", json!({"JobId": id})).await?;
    let msg = d21["StepInfo"]["StepInfo"][3]["StepMessage"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.starts_with("completed at "),
        "the final position is kept: {d21:?}"
    );
    // Metrics name the job.
    let m = ferry_api::ActionHandler::metrics(&*svc).await;
    assert!(
        m.contains(&format!(
            "ferry_job_status{{job_id=\"{id}\",job_name=\"life-inc\"}} 9"
        )),
        "{m}"
    );
    let mut s = connect(&source()).await?;
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    svc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_stop_race() -> Result<()> {
    const DB: &str = "svc_life_race";
    exactly_once_tables(DB, 50_000).await?;
    let dir = data_dir("life-race");
    let svc = open(&dir).await?;
    let id = create_checked(
        &svc,
        job_request(
            "life-race",
            json!([{"Database": DB}]),
            2,
            json!({"ChunkRows": 1000, "Threads": 1, "RowsPerSecond": 5000}),
        ),
    )
    .await?;
    let (a, b) = tokio::join!(
        call(&svc, "2018-03-30", "StartMigrateJob", json!({"JobId": id})),
        call(&svc, "2018-03-30", "StopMigrateJob", json!({"JobId": id}))
    );
    // Either Stop came first (refused in 4; the job runs) or both won in order (the job stops).
    assert!(a.is_ok(), "{a:?}");
    if let Err(e) = b {
        assert_eq!(e.code, "FailedOperation.NotAllowOperation");
        ok18(&svc, "StopMigrateJob", json!({"JobId": id})).await?;
    }
    wait_status(&svc, &id, 10, 120).await?;
    let i = info(&svc, &id).await?;
    assert_eq!(i["ErrorInfo"][0]["ErrorLog"], "stopped by StopMigrateJob");
    // 10: Stop and Complete are refused, Modify and Delete allowed.
    for action in ["StopMigrateJob", "CompleteMigrateJob", "StartMigrateJob"] {
        let e = call(&svc, "2018-03-30", action, json!({"JobId": id}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "FailedOperation.NotAllowOperation", "{action}");
    }
    ok18(&svc, "DeleteMigrateJob", json!({"JobId": id})).await?;
    svc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_step_runs_for_consistency_type_2() -> Result<()> {
    const DB: &str = "svc_life_verify";
    exactly_once_tables(DB, 3_000).await?;
    let dir = data_dir("life-verify");
    let svc = open(&dir).await?;
    let mut req = job_request("life-verify", json!([{"Database": DB}]), 2, json!({}));
    req["MigrateOption"]["ConsistencyType"] = json!(2);
    let id = create_checked(&svc, req).await?;
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 9, 300).await?;
    let i = info(&svc, &id).await?;
    let steps = i["Detail"]["StepInfo"].as_array().cloned().unwrap_or_default();
    assert_eq!(steps.len(), 4, "{i}");
    assert_eq!(
        (steps[3]["StepId"].clone(), steps[3]["Status"].clone()),
        (json!("verification"), json!(1))
    );
    assert_eq!(
        i["ErrorInfo"],
        json!([]),
        "a consistent verification reports no error"
    );
    assert_db_equal(DB).await?;
    let m = ferry_api::ActionHandler::metrics(&*svc).await;
    assert!(
        m.contains(&format!(
            "ferry_job_verification_differences{{job_id=\"{id}\",job_name=\"life-verify\"}} 0"
        )),
        "{m}"
    );
    svc.shutdown().await;
    Ok(())
}
