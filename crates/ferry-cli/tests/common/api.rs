//! Calls of the DTS 2018-03-30 API against a `ferry serve` under test, shared by the API tests.

use anyhow::{anyhow, bail, Result};
use ferry_api::Client;
use ferry_testkit::wait_until;
use serde_json::{json, Value};

/// One signed 2018-03-30 call; an API error becomes an error naming the action.
pub async fn call(c: &Client, action: &str, params: Value) -> Result<Value> {
    c.call("2018-03-30", action, params)
        .await
        .map_err(|e| anyhow!("{action}: {e}"))
}

/// The job's entry of `DescribeMigrateJobs`.
pub async fn job_info(c: &Client, id: &str) -> Result<Value> {
    let r = call(c, "DescribeMigrateJobs", json!({"JobId": id})).await?;
    r["JobList"]
        .get(0)
        .cloned()
        .ok_or_else(|| anyhow!("job {id} not listed: {r}"))
}

/// Waits at most `secs` for the job's `Status` to be `want`; fails at once when the job ends in
/// another final status (5, 9, 10).
pub async fn wait_status(c: &Client, id: &str, want: i64, secs: u64) -> Result<()> {
    wait_until(secs, &format!("status {want}"), || async {
        let i = job_info(c, id).await?;
        let s = i["Status"].as_i64().unwrap_or(0);
        if s != want && matches!(s, 5 | 9 | 10) {
            bail!(
                "the job ended in {s} while waiting for {want}: {}",
                i["ErrorInfo"]
            );
        }
        Ok(s == want)
    })
    .await
}
