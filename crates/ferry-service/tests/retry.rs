//! The service's retry of failed runs (`ferry_service::retry`), against the real test servers:
//!
//! - a job whose target is cut off (its connection through a `TcpProxy` stalls, so the run fails
//!   with a transient "no answer" error) stays in 7, says so in `ErrorInfo` (2018) and `BriefMsg`
//!   (2021) with the retry number, is run again with backoff, counts its retries
//!   (`ferry_job_runs_retried_total`), and once the target answers again finishes (9) with the
//!   target equal to the source, table digest for table digest;
//! - a job that fails with a definite error (a target table that is not empty, with
//!   `ExistingTables` `fail`) is not retried: it fails (10), its retry count 0.
//!
//! Databases `svc_retry_*`.

mod common;

use anyhow::{anyhow, Result};
use common::*;
use ferry_api::ActionHandler;
use ferry_service::Service;
use ferry_testkit::proxy::TcpProxy;
use ferry_testkit::{connect, target, wait_until};
use serde_json::json;

/// The job's `ferry_job_runs_retried_total`.
async fn runs_retried(svc: &Service, job_id: &str) -> f64 {
    svc.metrics()
        .await
        .lines()
        .find(|l| l.starts_with("ferry_job_runs_retried_total{") && l.contains(job_id))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_off_from_its_target_is_retried_and_finishes_exactly() -> Result<()> {
    const DB: &str = "svc_retry_cut";
    exactly_once_tables(DB, 20_000).await?;
    let t = target();
    let proxy = TcpProxy::start((t.host.clone(), t.port)).await?;
    let dir = data_dir("retry-cut");
    let svc = open(&dir).await?;
    let mut request = job_request(
        "retry-cut",
        json!([{"Database": DB}]),
        2,
        json!({"ChunkRows": 4000, "Threads": 2, "ConnectTimeoutSeconds": 2}),
    );
    request["DstInfo"]["Ip"] = json!("127.0.0.1");
    request["DstInfo"]["Port"] = json!(proxy.port());
    let id = create_checked(&svc, request).await?;

    // The target stops answering: the run cannot connect and fails with a transient error.
    proxy.stall(true);
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    // While a retry waits, both API versions say so, with the retry number.
    wait_until(120, "a retry of the failed run to be announced", || async {
        let i = info(&svc, &id).await?;
        if !matches!(i["Status"].as_i64(), Some(6 | 7)) {
            return Err(anyhow!("job {id} left 6/7 while its target was cut off: {i}"));
        }
        let log = i["ErrorInfo"][0]["ErrorLog"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !log.contains("transient error") {
            return Ok(false);
        }
        let d = ok21(&svc, "DescribeMigrationDetail", json!({"JobId": id})).await?;
        let brief = d["BriefMsg"].as_str().unwrap_or_default();
        Ok(log.contains("(retry ") && brief.contains("transient error") && i["Status"] == 7)
    })
    .await?;
    wait_until(120, "the failed run to be retried twice", || async {
        let s = status(&svc, &id).await?;
        if !matches!(s, 6 | 7) {
            return Err(anyhow!(
                "job {id} left 6/7 while its target was cut off (status {s})"
            ));
        }
        Ok(runs_retried(&svc, &id).await >= 2.0)
    })
    .await?;

    // The target answers again: the next retry runs the job to its end.
    proxy.stall(false);
    wait_status(&svc, &id, 9, 300).await?;
    let done = info(&svc, &id).await?;
    assert!(runs_retried(&svc, &id).await >= 2.0);
    assert_eq!(done["ErrorInfo"], json!([]), "{done}");
    assert_db_equal(DB).await?;
    svc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definite_failure_is_not_retried() -> Result<()> {
    const DB: &str = "svc_retry_definite";
    exactly_once_tables(DB, 100).await?;
    let dir = data_dir("retry-definite");
    let svc = open(&dir).await?;
    let request = job_request(
        "retry-definite",
        json!([{"Database": DB}]),
        2,
        json!({"ExistingTables": "fail"}),
    );
    let id = create_checked(&svc, request).await?;
    // After the check: a table of the job exists on the target and holds a row.
    let mut c = connect(&target()).await?;
    ferry_testkit::exec(
        &mut c,
        &format!(
            "CREATE DATABASE IF NOT EXISTS {DB}; CREATE TABLE {DB}.bulk (id INT PRIMARY KEY, x VARCHAR(64)); \
             INSERT INTO {DB}.bulk VALUES (1, 'in the way')"
        ),
    )
    .await?;
    ok18(&svc, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&svc, &id, 10, 120).await?;
    let failed = info(&svc, &id).await?;
    assert_eq!(failed["Status"], 10, "{failed}");
    assert_eq!(
        runs_retried(&svc, &id).await,
        0.0,
        "a definite error is not retried"
    );
    let log = failed["ErrorInfo"][0]["ErrorLog"].as_str().unwrap_or_default();
    assert!(log.contains("not empty"), "{log}");
    svc.shutdown().await;
    Ok(())
}
