//! Password rotation on a running job through `ferry serve`: the source account's password is
//! changed on the server, ModifyMigrateJob sends the new `SrcInfo.Password`, the job's run starts
//! again from its checkpoints with it, writes keep arriving, the job completes and the target
//! equals the source. Any other change to the running job is refused by name. Only the database
//! `svc_rot_*` and the account `fsp_rotate` are touched.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use common::api::{call, job_info, wait_status};
use common::serve::Serve;
use ferry_api::Client;
use ferry_testkit::{connect, exec, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "svc_rot_pw";
const USER: &str = "fsp_rotate";
const SECRET_ID: &str = "AKIDferryrotatetest";
const SECRET_KEY: &str = "ferry-rotate-test-key";

fn writer(stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        while !stop.load(Ordering::SeqCst) {
            c.query_drop(format!("INSERT INTO {DB}.t (v) VALUES ('w')"))
                .await?;
            commits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    })
}

async fn set_password(s: &mut mysql_async::Conn, pw: &str) -> Result<()> {
    exec(s, &format!("ALTER USER '{USER}'@'%' IDENTIFIED BY '{pw}'")).await
}

/// The ids of the source sessions logged in as [`USER`].
async fn sessions(s: &mut mysql_async::Conn) -> Result<Vec<u64>> {
    Ok(s.query(format!(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{USER}'"
    ))
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_source_password_on_a_running_job() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, DB).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)); \
             INSERT INTO t (v) SELECT 'seed' FROM seq_1_to_100; \
             DROP USER IF EXISTS '{USER}'@'%'; CREATE USER '{USER}'@'%' IDENTIFIED BY 'first-Pw-1'; \
             GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%'"
        ),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(stop.clone(), commits.clone());

    let dir = std::env::temp_dir().join(format!("ferry-api-rotate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(
        &dir,
        &["--data-dir", data.to_str().ok_or_else(|| anyhow!("not UTF-8"))?],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let c = Client::new(serve.url.clone(), SECRET_ID, SECRET_KEY);
    let (src, dst) = (source(), target());
    let request = json!({
        "JobName": "api-rotate",
        "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": src.host, "Port": src.port, "User": USER, "Password": "first-Pw-1"},
        "DstDatabaseType": "mysql", "DstAccessType": "extranet",
        "DstInfo": {"Ip": dst.host, "Port": dst.port, "User": dst.user, "Password": dst.password.expose()},
        "DatabaseInfo": json!([{"Database": DB}]).to_string(),
        "Ferry": {"Threads": 2},
    });
    let id = call(&c, "CreateMigrateJob", request).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(&c, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 4, 120).await?;
    call(&c, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 8, 300).await?;

    // Anything but the secrets is refused on a running job, naming the field.
    for (patch, field) in [
        (json!({"JobName": "renamed"}), "JobName"),
        (json!({"Ferry": {"Threads": 3}}), "Ferry.Threads"),
        (json!({"SrcInfo": {"Password": "x", "Port": 1}}), "SrcInfo.Port"),
    ] {
        let mut p = patch;
        p["JobId"] = json!(id);
        let e = call(&c, "ModifyMigrateJob", p)
            .await
            .err()
            .ok_or_else(|| anyhow!("changing {field} on a running job was accepted"))?
            .to_string();
        assert!(e.contains("InvalidParameterValue") && e.contains(field), "{e}");
    }

    // The password changes on the server, then in the job.
    let before = sessions(&mut s).await?;
    assert!(!before.is_empty(), "the job reads the source as {USER}");
    set_password(&mut s, "second-Pw-2").await?;
    call(
        &c,
        "ModifyMigrateJob",
        json!({"JobId": id, "SrcInfo": {"Password": "second-Pw-2"}}),
    )
    .await?;
    let info = job_info(&c, &id).await?;
    assert_eq!(info["SrcInfo"]["Password"], "", "the password never comes back");
    // The run started again with the new password: the old run's sessions are gone, new ones
    // (logged in with the new password, the only one the server accepts now) read the binlog,
    // and the changes written now reach the target.
    wait_until(120, "new source sessions of the job", || {
        let before = before.clone();
        async move {
            let mut s = connect(&source()).await?;
            let now = sessions(&mut s).await?;
            Ok(!now.is_empty() && now.iter().all(|i| !before.contains(i)))
        }
    })
    .await?;
    exec(&mut s, &format!("INSERT INTO {DB}.t (v) VALUES ('marker')")).await?;
    wait_until(120, "the marker row on the target", || async {
        let mut t = connect(&target()).await?;
        let n: Option<u64> = t
            .query_first(format!("SELECT COUNT(*) FROM {DB}.t WHERE v = 'marker'"))
            .await
            .unwrap_or(Some(0));
        Ok(n == Some(1))
    })
    .await?;
    wait_status(&c, &id, 8, 300).await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    assert!(commits.load(Ordering::SeqCst) > 0);
    call(&c, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 9, 300).await?;
    let a = ferry_testkit::db_digest(&mut s, DB).await?;
    let b = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(a, b, "source and target differ");
    let log = serve.stderr();
    assert!(
        !log.contains("second-Pw-2") && !log.contains("first-Pw-1"),
        "a password was logged"
    );
    serve.stop();
    exec(&mut s, &format!("DROP USER IF EXISTS '{USER}'@'%'")).await?;
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}
