//! An outage of the source during the incremental phase of a job run by `ferry serve` is visible
//! everywhere, and the job recovers from it (issue #13, "tell the truth under faults").
//!
//! The test starts its own source instance (`scripts/servers.sh start-one outage-src`: the shared
//! servers are never stopped), runs a MigrateType 3 job into the shared target until it is ready to
//! complete (8), then stops the source and, with condition waits only:
//!
//! - `SecondsBehindMaster` grows past 15 (DescribeMigrateJobs and DescribeMigrationDetail);
//! - the job leaves 8 (it is no longer caught up), so a cut-over cannot be requested blindly;
//! - `ErrorInfo` (2018) and `BriefMsg` (2021) name the source as unreachable, with the retry count;
//! - `/metrics` shows the lag over 15 s, `ferry_job_lag_bytes` NaN (unknown), the source endpoint
//!   down, retries counted and the last error's time;
//!
//! then starts the source again (same port), writes more, and the job catches up (8 again, the
//! problem cleared), is completed (9), and the target equals the source row for row.
//! Only databases named `fout_*` are touched.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use common::serve::Serve;
use ferry_api::Client;
use ferry_core::Endpoint;
use ferry_testkit::instance::{servers, servers_async as servers_async_owned};
use ferry_testkit::{connect, db_digest, drop_dbs, exec, fresh_db, target};
use serde_json::{json, Value};

const DB: &str = "fout_outage";
const INSTANCE: &str = "outage-src";
const SECRET_ID: &str = "AKIDferryoutagetest";
const SECRET_KEY: &str = "ferry-outage-test-key";

/// `scripts/servers.sh ARGS…` off the runtime's threads (ferry-testkit's helper), its stdout.
async fn servers_async(args: &'static [&'static str]) -> Result<String> {
    servers_async_owned(args.iter().map(|s| s.to_string()).collect()).await
}

/// Stops the extra instance when the test ends, also on failure.
struct Instance;

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(e) = servers(&["stop-one", INSTANCE]) {
            eprintln!("stopping {INSTANCE}: {e:#}");
        }
    }
}

/// Polls `check` every 300 ms until it is true, for at most `secs` seconds.
async fn poll<F, Fut>(secs: u64, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await? {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

struct Api {
    client: Client,
    url: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, version: &str, action: &str, params: Value) -> Result<Value> {
        self.client
            .call(version, action, params)
            .await
            .map_err(|e| anyhow!("{action}: {e}"))
    }

    async fn job(&self, id: &str) -> Result<Value> {
        common::api::job_info(&self.client, id).await
    }

    async fn detail(&self, id: &str) -> Result<Value> {
        self.call("2021-12-06", "DescribeMigrationDetail", json!({"JobId": id}))
            .await
    }

    async fn metrics(&self) -> Result<String> {
        let r = self.http.get(format!("{}/metrics", self.url)).send().await?;
        Ok(r.text().await?)
    }

    /// Waits for a status; fails at once when the job ends elsewhere.
    async fn wait_status(&self, id: &str, want: i64, secs: u64) -> Result<()> {
        common::api::wait_status(&self.client, id, want, secs).await
    }
}

/// The value of the series `name{…job_id="ID"…[extra]…}` in a /metrics text.
fn series(text: &str, name: &str, id: &str, extra: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| l.contains(&format!("job_id=\"{id}\"")) && l.contains(extra))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
}

fn data_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferry-api-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d.join("data")
}

async fn insert_rows(src: &Endpoint, from: u32, to: u32) -> Result<()> {
    let mut s = connect(src).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; INSERT INTO {DB}.t (id, v, pad) SELECT seq, seq * 7, REPEAT('p', seq % 97) FROM seq_{from}_to_{to}; \
             UPDATE {DB}.t SET v = v + 1 WHERE id % 5 = 0 AND id BETWEEN {from} AND {to}; \
             DELETE FROM {DB}.t WHERE id % 11 = 0 AND id BETWEEN {from} AND {to}"
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_outage_is_visible_and_the_job_recovers() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let instance = Instance;
    servers_async(&["start-one", INSTANCE]).await?;
    let src_url = servers_async(&["url", INSTANCE]).await?;
    let src = Endpoint::from_url(&src_url).map_err(|e| anyhow!("{src_url}: {e}"))?;
    let dst = target();
    {
        let mut s = connect(&src).await?;
        let mut t = connect(&dst).await?;
        fresh_db(&mut s, DB).await?;
        drop_dbs(&mut t, &[DB]).await?;
        exec(
            &mut s,
            &format!("CREATE TABLE {DB}.t (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(100))"),
        )
        .await?;
    }
    insert_rows(&src, 1, 2000).await?;

    let dir = data_dir();
    let parent = dir.parent().context("data dir parent")?.to_path_buf();
    std::fs::create_dir_all(&parent)?;
    let data = dir.to_str().context("data dir not UTF-8")?.to_string();
    let serve = Serve::start(
        &parent,
        &["--data-dir", &data],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let api = Api {
        client: Client::new(serve.url.clone(), SECRET_ID, SECRET_KEY),
        url: serve.url.clone(),
        http: reqwest::Client::new(),
    };
    let logs = || format!("--- ferry serve stderr\n{}", serve.stderr());

    let request = json!({
        "JobName": "outage",
        "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()},
        "DstDatabaseType": "mysql", "DstAccessType": "extranet",
        "DstInfo": {"Ip": dst.host, "Port": dst.port, "User": dst.user, "Password": dst.password.expose()},
        "DatabaseInfo": json!([{"Database": DB}]).to_string(),
        "Ferry": {"Threads": 2},
    });
    let id = api.call("2018-03-30", "CreateMigrateJob", request).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    api.call("2018-03-30", "CreateMigrateCheckJob", json!({"JobId": id}))
        .await?;
    api.wait_status(&id, 4, 120).await.with_context(logs)?;
    api.call("2018-03-30", "StartMigrateJob", json!({"JobId": id}))
        .await?;
    api.wait_status(&id, 8, 300).await.with_context(logs)?;
    insert_rows(&src, 2001, 3000).await?;
    let healthy = api.job(&id).await?;
    assert_eq!(healthy["ErrorInfo"], json!([]), "{healthy}");

    // The source goes away.
    servers_async(&["stop-one", INSTANCE]).await?;
    let stopped_at = std::time::Instant::now();

    let seen = std::sync::Mutex::new(Value::Null);
    poll(
        180,
        "SecondsBehindMaster > 15 with the source named in ErrorInfo",
        || async {
            let j = api.job(&id).await?;
            let lag = j["Detail"]["SecondsBehindMaster"].as_u64().unwrap_or(0);
            let error = j["ErrorInfo"][0]["ErrorLog"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Ok(mut g) = seen.lock() {
                *g = j;
            }
            Ok(lag > 15 && error.contains("the source is unreachable"))
        },
    )
    .await
    .with_context(|| format!("last seen: {:?}\n{}", seen.lock().map(|g| g.to_string()), logs()))?;
    let during = api.job(&id).await?;
    let error = during["ErrorInfo"][0]["ErrorLog"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "during the outage ({:.0} s after the stop): Status {}, SecondsBehindMaster {}, MasterSlaveDistance {}, ErrorInfo: {error}",
        stopped_at.elapsed().as_secs_f64(),
        during["Status"],
        during["Detail"]["SecondsBehindMaster"],
        during["Detail"]["MasterSlaveDistance"],
    );
    assert_eq!(during["Status"], 7, "no longer caught up: back to 7\n{during}");
    assert!(
        error.starts_with("incremental replay: the source is unreachable or failing since "),
        "{error}"
    );
    assert!(error.contains("retry "), "{error}");
    let refused = api
        .call("2018-03-30", "CompleteMigrateJob", json!({"JobId": id}))
        .await;
    assert!(
        refused.is_err(),
        "a cut-over during the outage is refused: {refused:?}"
    );

    let d = api.detail(&id).await?;
    let brief = d["BriefMsg"].as_str().unwrap_or_default();
    eprintln!(
        "DescribeMigrationDetail: Status {}, SecondsBehindMaster {}, BriefMsg: {brief}",
        d["Status"], d["StepInfo"]["SecondsBehindMaster"]
    );
    assert!(brief.contains("the source is unreachable"), "{d}");
    assert!(
        d["StepInfo"]["SecondsBehindMaster"].as_u64().unwrap_or(0) > 15,
        "{d}"
    );
    let step = d["StepInfo"]["StepInfo"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["StepId"] == "incremental"))
        .cloned()
        .unwrap_or_default();
    assert!(
        step["StepMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("the source is unreachable"),
        "{step}"
    );

    let m = api.metrics().await?;
    let lag = series(&m, "ferry_job_lag_seconds", &id, "").context("ferry_job_lag_seconds")?;
    let bytes = series(&m, "ferry_job_lag_bytes", &id, "").context("ferry_job_lag_bytes")?;
    let up = series(&m, "ferry_job_endpoint_up", &id, "endpoint=\"source\"").context("endpoint_up source")?;
    let target_up =
        series(&m, "ferry_job_endpoint_up", &id, "endpoint=\"target\"").context("endpoint_up target")?;
    let retries = series(&m, "ferry_job_retries_total", &id, "").context("ferry_job_retries_total")?;
    let last_error =
        series(&m, "ferry_job_last_error_timestamp_seconds", &id, "").context("last error time")?;
    let retrying = series(&m, "ferry_job_retrying", &id, "").context("ferry_job_retrying")?;
    let status = series(&m, "ferry_job_status", &id, "").context("ferry_job_status")?;
    eprintln!(
        "/metrics during the outage: lag_seconds {lag}, lag_bytes {bytes}, endpoint_up source {up} target {target_up}, retries {retries}, retrying {retrying}, status {status}"
    );
    assert!(lag > 15.0, "{m}");
    assert!(
        bytes.is_nan(),
        "bytes behind unknown while the source is down\n{m}"
    );
    assert_eq!((up, target_up), (0.0, 1.0), "{m}");
    assert!(retries >= 1.0 && retrying == 1.0 && last_error > 0.0, "{m}");
    assert_eq!(status, 7.0, "{m}");

    // The source comes back (same port); more changes; the job catches up.
    servers_async(&["start-one", INSTANCE]).await?;
    assert_eq!(
        servers_async(&["url", INSTANCE]).await?,
        src_url,
        "same port after the restart"
    );
    insert_rows(&src, 3001, 4000).await?;
    api.wait_status(&id, 8, 300).await.with_context(logs)?;
    let after = api.job(&id).await?;
    assert_eq!(after["ErrorInfo"], json!([]), "the problem is cleared: {after}");
    poll(60, "the metrics to show the source up again", || async {
        let m = api.metrics().await?;
        Ok(
            series(&m, "ferry_job_endpoint_up", &id, "endpoint=\"source\"") == Some(1.0)
                && series(&m, "ferry_job_retrying", &id, "") == Some(0.0)
                && series(&m, "ferry_job_lag_bytes", &id, "").is_some_and(|b| !b.is_nan()),
        )
    })
    .await?;

    api.call("2018-03-30", "CompleteMigrateJob", json!({"JobId": id}))
        .await?;
    api.wait_status(&id, 9, 300).await.with_context(logs)?;

    let mut s = connect(&src).await?;
    let mut t = connect(&dst).await?;
    let a = db_digest(&mut s, DB).await?;
    let b = db_digest(&mut t, DB).await?;
    assert!(!a.is_empty());
    assert_eq!(a, b, "source and target differ after the outage\n{}", logs());

    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    drop(serve);
    drop(instance);
    let _ = std::fs::remove_dir_all(&parent);
    Ok(())
}
