//! The job service through the real `ferry serve` binary over HTTP (`ferry_api::Client`, signed
//! TC3-HMAC-SHA256): a MigrateType 3 job while a writer commits on the source; `ferry serve` is
//! killed with SIGKILL in the middle of the full load, started again on the same data directory,
//! and the job resumes, catches up (8), is completed (9), and the target equals the source exactly
//! once; the same again with the job store in MariaDB (`--store mysql://…`). Only databases
//! named `svc_api_*` are touched.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::api::{call, job_info, wait_status};
use common::serve::Serve;
use ferry_api::Client;
use ferry_testkit::exactly_once::{assert_exactly_once, counter_writer, WriterStats, EXACTLY_ONCE_TABLES};
use ferry_testkit::{connect, source, target, wait_until};
use serde_json::json;

const DB: &str = "svc_api_kill";
const SECRET_ID: &str = "AKIDferryapijobstest";
const SECRET_KEY: &str = "ferry-api-jobs-test-key";

/// Where the job store is: SQLite in the data directory, or a MariaDB database.
#[derive(Clone, Copy)]
enum JobStore {
    Sqlite,
    Mysql(&'static str),
}

/// `ferry serve` on `data_dir` with the test's key pair.
fn start_serve(data_dir: &Path, store: JobStore) -> Result<Serve> {
    match store {
        JobStore::Sqlite => common::serve::start_keyed(data_dir, SECRET_ID, SECRET_KEY),
        JobStore::Mysql(db) => {
            let (url, password) = ferry_testkit::store_url(db);
            common::serve::start_keyed_with(
                data_dir,
                SECRET_ID,
                SECRET_KEY,
                &["--store", &url],
                &[("FERRY_STORE_PASSWORD", &password)],
            )
        }
    }
}

fn client(s: &Serve) -> Client {
    Client::new(s.url.clone(), SECRET_ID, SECRET_KEY)
}

/// `TMP/ferry-api-jobs-NAME-PID/data`: the server's data directory; its parent takes the log.
fn data_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferry-api-jobs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d.join("data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_full_load_resumes_and_completes() -> Result<()> {
    kill9_scenario(DB, JobStore::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_full_load_resumes_and_completes_on_a_mysql_store() -> Result<()> {
    let store = "svc_api_store";
    let mut t = connect(&target()).await?;
    ferry_testkit::drop_dbs(&mut t, &[store]).await?;
    kill9_scenario("svc_api_kill_my", JobStore::Mysql(store)).await?;
    ferry_testkit::drop_dbs(&mut t, &[store]).await?;
    Ok(())
}

async fn kill9_scenario(db: &'static str, store: JobStore) -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, db).await?;
    ferry_testkit::drop_dbs(&mut t, &[db]).await?;
    ferry_testkit::exec(
        &mut s,
        &format!(
            "USE {db}; {EXACTLY_ONCE_TABLES}; INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_20001_to_80000"
        ),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WriterStats::default());
    let w = counter_writer(
        source(),
        db.into(),
        0,
        Duration::from_millis(5),
        u64::MAX,
        stop.clone(),
        stats.clone(),
    );

    let dir = data_dir(db);
    let serve = start_serve(&dir, store)?;
    let c = client(&serve);
    let (src, dst) = (source(), target());
    let request = json!({
        "JobName": "api-kill",
        "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()},
        "DstDatabaseType": "mysql", "DstAccessType": "extranet",
        "DstInfo": {"Ip": dst.host, "Port": dst.port, "User": dst.user, "Password": dst.password.expose()},
        "DatabaseInfo": json!([{"Database": db}]).to_string(),
        // Slow enough to be killed in the middle of the full load.
        "Ferry": {"ChunkRows": 1000, "Threads": 2, "RowsPerSecond": 20000},
    });
    let id = call(&c, "CreateMigrateJob", request).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(&c, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 4, 120).await?;
    call(&c, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_until(120, "the full load to be under way", || async {
        let d = job_info(&c, &id).await?["Detail"].clone();
        let p: u64 = d["CurrentStepProgress"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(d["StepNow"] == 2 && p >= 10)
    })
    .await?;
    serve.kill9();
    if let JobStore::Sqlite = store {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("ferry.db"))?.permissions());
        assert_eq!(mode & 0o777, 0o600, "ferry.db holds passwords");
    } else {
        assert!(
            !dir.join("ferry.db").exists(),
            "the jobs are in the MariaDB store"
        );
    }

    let serve = start_serve(&dir, store)?;
    let c = client(&serve);
    assert_eq!(job_info(&c, &id).await?["Status"], 7, "the job resumes running");
    wait_status(&c, &id, 8, 600).await?;
    let ready = job_info(&c, &id).await?;
    assert_eq!(ready["Detail"]["StepInfo"][3]["StepId"], "incremental");
    assert!(ready["Detail"]["SecondsBehindMaster"].is_u64());
    assert_eq!(ready["SrcInfo"]["Password"], "");
    stop.store(true, Ordering::SeqCst);
    w.await??;
    call(&c, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 9, 300).await?;

    let a = ferry_testkit::db_digest(&mut s, db).await?;
    let b = ferry_testkit::db_digest(&mut t, db).await?;
    assert_eq!(a, b, "source and target differ");
    let total = stats.commits.load(Ordering::SeqCst);
    assert_exactly_once(&mut t, db, total, "the API job").await?;
    drop(serve);
    ferry_testkit::drop_dbs(&mut s, &[db]).await?;
    ferry_testkit::drop_dbs(&mut t, &[db]).await?;
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir_all(parent);
    }
    Ok(())
}
