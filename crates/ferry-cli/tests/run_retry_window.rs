//! `ferry run` during a source outage in the incremental phase: the live line keeps showing the
//! lag growing, the bytes behind as unknown and the problem (the source, the error, the retry);
//! once the outage outlasts `Ferry.RetryWindowSeconds` (5 s here) the job fails with the last
//! error instead of retrying forever. The test starts its own source instance
//! (`scripts/servers.sh start-one window-src`) and waits on conditions only. Only databases named
//! `fwin_*` are touched.

mod common;

use std::process::Stdio;

use anyhow::{anyhow, Context, Result};
use common::*;
use ferry_core::Endpoint;
use ferry_testkit::instance::{servers, servers_async as servers_async_owned};
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, target, wait_until};
use serde_json::json;

const DB: &str = "fwin_window";
const JOB: &str = "fwin-window";
const INSTANCE: &str = "window-src";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_retry_window_fails_the_job() -> Result<()> {
    let instance = Instance;
    servers_async(&["start-one", INSTANCE]).await?;
    let url = servers_async(&["url", INSTANCE]).await?;
    let src = Endpoint::from_url(&url).map_err(|e| anyhow!("{url}: {e}"))?;
    let mut s = connect(&src).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(
        &mut s,
        &format!("USE {DB}; CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t SELECT seq, seq FROM seq_1_to_500"),
    )
    .await?;

    let mut j = job(
        JOB,
        json!([{"Database": DB}]),
        json!({"RetryWindowSeconds": 5}),
        3,
    );
    j["SrcInfo"] =
        json!({"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()});
    let path = write_job(JOB, &j);
    let err_log = path.with_extension("stderr");
    let mut child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_log)?)
        .spawn()?;
    let log = || std::fs::read_to_string(&err_log).unwrap_or_default();

    wait_until(180, "the replay to catch up", || async {
        Ok(log().contains("ready to complete"))
    })
    .await
    .with_context(log)?;
    servers_async(&["stop-one", INSTANCE]).await?;
    let exited = wait_until(180, "ferry run to give up", || {
        let done = child.try_wait().map(|s| s.is_some());
        async move { Ok(done?) }
    })
    .await;
    if exited.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let o = log();
    eprintln!("--- ferry run stderr\n{o}");
    exited?;
    assert!(!status.success(), "the job failed: {status}");
    assert!(
        o.contains("incremental replay: the source is unreachable or failing; retrying: "),
        "the problem is shown as it begins"
    );
    assert!(
        o.contains("? bytes (source unreachable)"),
        "the bytes behind are unknown"
    );
    assert!(
        o.contains("incremental replay: the source is unreachable or failing (retry "),
        "the live line names the problem"
    );
    let failed = o
        .lines()
        .find(|l| l.starts_with(&format!("error: job \"{JOB}\" failed: ")))
        .unwrap_or_default();
    assert!(
        failed.contains("incremental: binlog reader: cannot connect"),
        "{failed}"
    );
    assert!(
        failed.contains("still failing after retrying for ")
            && failed.contains("Ferry.RetryWindowSeconds is 5"),
        "{failed}"
    );
    assert!(
        !o.contains("this looks transient"),
        "a given-up outage is definite"
    );

    servers_async(&["start-one", INSTANCE]).await?;
    let mut s = connect(&src).await?;
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    drop(instance);
    Ok(())
}
