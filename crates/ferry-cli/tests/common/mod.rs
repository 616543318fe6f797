//! Helpers for the `ferry` binary's end-to-end tests: job files pointing at the test servers,
//! running the binary, and comparing databases by exact digest.

#![allow(dead_code)]

pub mod api;
pub mod cluster;
pub mod live;
pub mod serve;

use std::path::PathBuf;
use std::process::Output;

use anyhow::Result;
use ferry_core::Endpoint;
use serde_json::{json, Value};

/// A job request (JSON) from the test servers, with `DatabaseInfo` and `Ferry` settings.
pub fn job(name: &str, database_info: Value, ferry: Value, migrate_type: i64) -> Value {
    let s = ferry_testkit::source();
    let t = ferry_testkit::target();
    json!({
        "JobName": name,
        "MigrateOption": {"RunMode": 1, "MigrateType": migrate_type, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": s.host, "Port": s.port, "User": s.user, "Password": s.password.expose()},
        "DstDatabaseType": "mysql", "DstAccessType": "extranet",
        "DstInfo": {"Ip": t.host, "Port": t.port, "User": t.user, "Password": t.password.expose()},
        "DatabaseInfo": database_info.to_string(),
        "Ferry": ferry,
    })
}

/// A job request whose objects are given as `Ferry.DbList` (no `DatabaseInfo`).
pub fn mapped_job(name: &str, ferry: Value, db_list: Value, migrate_type: i64) -> Value {
    let mut j = job(name, json!([]), ferry, migrate_type);
    if let Some(o) = j.as_object_mut() {
        o.remove("DatabaseInfo");
    }
    j["Ferry"]["DbList"] = db_list;
    j
}

/// Writes a job file into a per-test temporary directory.
pub fn write_job(name: &str, job: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-cli-tests-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(job).unwrap_or_default()).expect("writing a job file");
    path
}

/// The `ferry` binary built by cargo for these tests.
pub fn ferry() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
}

/// Runs `ferry run FILE [args]` to completion.
pub fn run(path: &PathBuf, args: &[&str]) -> Output {
    let mut cmd = ferry();
    cmd.arg("run").arg(path).args(["--progress", "plain"]).args(args);
    let out = cmd.output().expect("running ferry");
    eprintln!(
        "ferry run {}: {}\n--- stdout\n{}\n--- stderr\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ferry verify FILE [args]` to completion, with `FERRY_FAULTS` set to `faults` (and
/// unset without).
pub fn verify(path: &std::path::Path, args: &[&str], faults: Option<&str>) -> Output {
    let mut cmd = ferry();
    cmd.arg("verify")
        .arg(path)
        .args(args)
        .env_remove(ferry_core::fault::ENV);
    if let Some(f) = faults {
        cmd.env(ferry_core::fault::ENV, f);
    }
    let out = cmd.output().expect("running ferry verify");
    eprintln!("ferry verify {}: {}\n{}", path.display(), out.status, text(&out));
    out
}

/// stdout + stderr as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts every table of `src_db` on the source equals `dst_db` on the target (exact digests).
pub async fn assert_db_equal(src_db: &str, dst_db: &str) -> Result<()> {
    let mut s = ferry_testkit::connect(&ferry_testkit::source()).await?;
    let mut t = ferry_testkit::connect(&ferry_testkit::target()).await?;
    let a = ferry_testkit::db_digest(&mut s, src_db).await?;
    let b = ferry_testkit::db_digest(&mut t, dst_db).await?;
    assert!(!a.is_empty(), "source database {src_db} has no tables");
    assert_eq!(a, b, "source {src_db} and target {dst_db} differ");
    Ok(())
}

/// A bad endpoint for negative tests.
pub fn endpoint_with(port: u16, password: &str) -> Endpoint {
    let s = ferry_testkit::source();
    Endpoint::new(s.host, port, s.user, ferry_core::Secret::new(password))
}

/// The exactly-once fixtures (shared with every crate's tests through `ferry-testkit`).
#[allow(unused_imports)]
pub use ferry_testkit::exactly_once::{assert_exactly_once, EXACTLY_ONCE_TABLES};

/// The source timestamp of a job's replay checkpoint on the target (0 while there is none).
pub async fn replay_checkpoint_ts(t: &mut mysql_async::Conn, job: &str) -> Result<u64> {
    use mysql_async::prelude::Queryable;
    let exists: u64 = ferry_testkit::scalar(
        t,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ferry_meta' AND TABLE_NAME = 'replay_checkpoint'",
    )
    .await?;
    if exists == 0 {
        return Ok(0);
    }
    let v: Option<u64> = t
        .exec_first(
            "SELECT source_ts FROM ferry_meta.replay_checkpoint WHERE job = ?",
            (job,),
        )
        .await?;
    Ok(v.unwrap_or(0))
}

/// Forgets every record of an earlier run of `job` on the target (phases, chunks, replay
/// checkpoint), so that waiting for one of them waits for this run.
pub async fn forget_job_meta(job: &str) -> Result<()> {
    let mut t = ferry_testkit::connect(&ferry_testkit::target()).await?;
    for table in ["load_chunk", "load_job", "job_phase", "replay_checkpoint"] {
        // absent tables are fine (no earlier run)
        let _ = ferry_testkit::exec(
            &mut t,
            &format!("DELETE FROM ferry_meta.{table} WHERE job = '{job}'"),
        )
        .await;
    }
    Ok(())
}

/// Starts `ferry run FILE --restart` for a full load (forgetting any earlier run of `job`), kills
/// it (-9) once `chunks` chunks are committed, and asserts the kill happened mid-load.
pub async fn kill_9_mid_load(path: &PathBuf, job: &str, chunks: u64) -> Result<()> {
    let target = ferry_testkit::target();
    let mut t = ferry_testkit::connect(&target).await?;
    ferry_testkit::forget_job(&mut t, job, &["load_chunk", "load_job", "job_phase"]).await?;
    let mut child = ferry()
        .arg("run")
        .arg(path)
        .args(["--restart", "--progress", "none"])
        .spawn()?;
    let done_sql = format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{job}' AND done = 1");
    let waited = ferry_testkit::wait_until(120, "a few chunks committed", || {
        let (ep, sql) = (target.clone(), done_sql.clone());
        async move {
            let mut conn = ferry_testkit::connect(&ep).await?;
            let n: u64 = ferry_testkit::scalar(&mut conn, &sql).await.unwrap_or(0);
            Ok(n >= chunks)
        }
    })
    .await;
    child.kill()?; // SIGKILL
    child.wait()?;
    waited?;
    let done: u64 = ferry_testkit::scalar(&mut t, &done_sql).await?;
    let total: u64 = ferry_testkit::scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{job}'"),
    )
    .await?;
    assert!(done < total, "the kill happened mid-load ({done}/{total} chunks)");
    Ok(())
}
