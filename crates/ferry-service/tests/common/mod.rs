//! Helpers for the service's tests: a service on a temporary data directory, calls through
//! `Service::handle`, job requests pointing at the test servers, waits on job status.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Result};
use ferry_api::{ActionHandler, ApiCall, ApiError, ParamEncoding};
use ferry_service::{Service, ServiceOptions};
use ferry_testkit::{connect, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::{json, Map, Value};

/// A fresh data directory for a test.
pub fn data_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferry-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub async fn open(dir: &Path) -> Result<Arc<Service>> {
    Ok(Service::open(dir, ServiceOptions::default()).await?)
}

/// Calls an action with a JSON body.
pub async fn call(
    svc: &Service,
    version: &str,
    action: &str,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    call_enc(svc, version, action, params, ParamEncoding::Json).await
}

pub async fn call_enc(
    svc: &Service,
    version: &str,
    action: &str,
    params: Value,
    encoding: ParamEncoding,
) -> Result<Map<String, Value>, ApiError> {
    svc.lookup(version, action)?;
    svc.handle(ApiCall {
        version: version.into(),
        action: action.into(),
        region: None,
        params: params.as_object().cloned().unwrap_or_default(),
        encoding,
        request_id: "test".into(),
        secret_id: "test".into(),
    })
    .await
}

/// A 2018-03-30 call that must succeed.
pub async fn ok18(svc: &Service, action: &str, params: Value) -> Result<Map<String, Value>> {
    call(svc, "2018-03-30", action, params)
        .await
        .map_err(|e| anyhow!("{action}: {e}"))
}

/// A 2021-12-06 call that must succeed.
pub async fn ok21(svc: &Service, action: &str, params: Value) -> Result<Map<String, Value>> {
    call(svc, "2021-12-06", action, params)
        .await
        .map_err(|e| anyhow!("{action}: {e}"))
}

/// A CreateMigrateJob request for the test servers.
pub fn job_request(name: &str, databases: Value, migrate_type: i64, ferry: Value) -> Value {
    let s = source();
    let t = target();
    json!({
        "JobName": name,
        "MigrateOption": {"RunMode": 1, "MigrateType": migrate_type, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": s.host, "Port": s.port, "User": s.user, "Password": s.password.expose()},
        "DstDatabaseType": "mysql", "DstAccessType": "extranet",
        "DstInfo": {"Ip": t.host, "Port": t.port, "User": t.user, "Password": t.password.expose()},
        "DatabaseInfo": databases.to_string(),
        "Ferry": ferry,
    })
}

/// The job's `MigrateJobInfo`.
pub async fn info(svc: &Service, job_id: &str) -> Result<Value> {
    let r = ok18(svc, "DescribeMigrateJobs", json!({"JobId": job_id})).await?;
    r["JobList"]
        .get(0)
        .cloned()
        .ok_or_else(|| anyhow!("job {job_id} is not listed"))
}

pub async fn status(svc: &Service, job_id: &str) -> Result<i64> {
    Ok(info(svc, job_id).await?["Status"].as_i64().unwrap_or(0))
}

/// Waits until the job is in `want`; fails early when it ends in another final status.
pub async fn wait_status(svc: &Service, job_id: &str, want: i64, secs: u64) -> Result<()> {
    wait_until(secs, &format!("job {job_id} to reach status {want}"), || async {
        let i = info(svc, job_id).await?;
        let s = i["Status"].as_i64().unwrap_or(0);
        if s != want && matches!(s, 5 | 9 | 10) {
            return Err(anyhow!(
                "job {job_id} ended in status {s} while waiting for {want}: {}",
                i["ErrorInfo"]
            ));
        }
        Ok(s == want)
    })
    .await
}

/// Creates a job, checks it (waiting for 4) and returns its id.
pub async fn create_checked(svc: &Service, request: Value) -> Result<String> {
    let r = ok18(svc, "CreateMigrateJob", request).await?;
    let id = r["JobId"].as_str().unwrap_or_default().to_string();
    ok18(svc, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_until(120, "the pre-check to finish", || async {
        let c = ok18(svc, "DescribeMigrateCheckJob", json!({"JobId": id})).await?;
        Ok(c["Status"] == "finished")
    })
    .await?;
    let c = ok18(svc, "DescribeMigrateCheckJob", json!({"JobId": id})).await?;
    if c["CheckFlag"] != 1 {
        return Err(anyhow!("the pre-check did not pass: {}", c["ErrorMessage"]));
    }
    assert_eq!(status(svc, &id).await?, 4);
    Ok(id)
}

/// Asserts every table of `db` is equal on source and target (exact digests).
pub async fn assert_db_equal(db: &str) -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    let a = ferry_testkit::db_digest(&mut s, db).await?;
    let b = ferry_testkit::db_digest(&mut t, db).await?;
    assert!(!a.is_empty(), "source database {db} has no tables");
    assert_eq!(a, b, "source and target {db} differ");
    Ok(())
}

/// A writer: transactions that each increment `counter` and add a `journal` row, until `stop`.
pub fn writer(
    db: &'static str,
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            c.query_drop(format!(
                "START TRANSACTION; UPDATE {db}.counter SET n = n + 1 WHERE id = 1; \
                 INSERT INTO {db}.journal (v, pad) VALUES ({i}, REPEAT('j', {})); COMMIT",
                i % 200
            ))
            .await?;
            commits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Ok(())
    })
}

/// `counter`, `journal` and `bulk` (`rows` rows) in `db` on the source; `db` dropped on the
/// target.
pub async fn exactly_once_tables(db: &str, rows: u64) -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, db).await?;
    ferry_testkit::drop_dbs(&mut t, &[db]).await?;
    ferry_testkit::exec(
        &mut s,
        &format!(
            "USE {db}; CREATE TABLE counter (id INT PRIMARY KEY, n BIGINT NOT NULL); \
             INSERT INTO counter VALUES (1, 0); \
             CREATE TABLE journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(200)); \
             CREATE TABLE bulk (id INT PRIMARY KEY, x VARCHAR(64)); \
             INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_1_to_{rows}"
        ),
    )
    .await?;
    Ok(())
}

/// On the target: counter = journal rows = distinct journal values = `commits`.
pub async fn assert_exactly_once(db: &str, commits: u64) -> Result<()> {
    let mut t = connect(&target()).await?;
    let n: u64 = ferry_testkit::scalar(&mut t, &format!("SELECT n FROM {db}.counter WHERE id = 1")).await?;
    let rows: u64 = ferry_testkit::scalar(&mut t, &format!("SELECT COUNT(*) FROM {db}.journal")).await?;
    let distinct: u64 =
        ferry_testkit::scalar(&mut t, &format!("SELECT COUNT(DISTINCT v) FROM {db}.journal")).await?;
    assert_eq!(
        (n, rows, distinct),
        (commits, commits, commits),
        "exactly once on the target"
    );
    Ok(())
}
