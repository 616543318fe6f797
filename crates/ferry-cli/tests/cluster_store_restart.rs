//! Two `ferry serve` nodes on a job store in an extra MariaDB instance of the test's own: a
//! MigrateType 3 job runs under a writer while the store server is stopped and started again in
//! the middle of the full load; the nodes wait for it and carry on (the run keeps its lease, or is
//! claimed again once the store is back), the job reaches 8, is completed through a node and
//! ends in 9 with the target equal to the source, every commit exactly once. Only databases named
//! `svc_cluster_*` are touched.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use common::api::{call, job_info};
use common::serve::Serve;
use ferry_api::Client;
use ferry_testkit::exactly_once::{assert_exactly_once, counter_writer, WriterStats, EXACTLY_ONCE_TABLES};
use ferry_testkit::instance::Instance;
use ferry_testkit::{connect, source, target, wait_until};
use serde_json::json;

const DB: &str = "svc_cluster_rstore";
const STORE: &str = "svc_cluster_store_r";
const SECRET_ID: &str = "AKIDferryclusterrestart";
const SECRET_KEY: &str = "ferry-cluster-restart-key";

fn root() -> PathBuf {
    std::env::temp_dir().join(format!("ferry-cluster-restart-{}", std::process::id()))
}

fn start_node(id: &str, store: &ferry_core::Endpoint) -> Result<Serve> {
    let (url, password) = ferry_testkit::store_url_on(store, STORE);
    let key = "7a".repeat(32);
    common::serve::start_keyed_with(
        &root().join(id).join("data"),
        SECRET_ID,
        SECRET_KEY,
        &["--store", &url, "--node-id", id],
        &[("FERRY_STORE_PASSWORD", &password), ("FERRY_STORE_KEY", &key)],
    )
}

/// The job's status through the first node that answers (none may while the store is down).
async fn status(clients: &[Client], job: &str) -> Option<(i64, String)> {
    for c in clients {
        if let Ok(i) = job_info(c, job).await {
            return Some((i["Status"].as_i64().unwrap_or(0), i["ErrorInfo"].to_string()));
        }
    }
    None
}

async fn wait_status(clients: &[Client], job: &str, want: i64, secs: u64) -> Result<()> {
    wait_until(secs, &format!("status {want}"), || async {
        match status(clients, job).await {
            Some((s, err)) if s != want && matches!(s, 5 | 9 | 10) => {
                Err(anyhow!("the job ended in {s} while waiting for {want}: {err}"))
            }
            Some((s, _)) => Ok(s == want),
            None => Ok(false),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_server_restarted_mid_load_nodes_wait_and_carry_on() -> Result<()> {
    let store = Instance::start("cluster-store").await?;
    let store_ep = store.endpoint()?;
    let mut st = connect(&store_ep).await?;
    ferry_testkit::drop_dbs(&mut st, &[STORE]).await?;
    drop(st);
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, DB).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(root());
    ferry_testkit::exec(
        &mut s,
        &format!(
            "USE {DB}; {EXACTLY_ONCE_TABLES}; INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_20001_to_80000"
        ),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WriterStats::default());
    let w = counter_writer(
        source(),
        DB.into(),
        0,
        Duration::from_millis(5),
        u64::MAX,
        stop.clone(),
        stats.clone(),
    );
    let nodes = [start_node("node-a", &store_ep)?, start_node("node-b", &store_ep)?];
    let clients: Vec<Client> = nodes
        .iter()
        .map(|n| Client::new(n.url.clone(), SECRET_ID, SECRET_KEY))
        .collect();
    let (src, dst) = (source(), target());
    let request = json!({
        "JobName": "cluster-store-restart",
        "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()},
        "DstDatabaseType": "mysql", "DstAccessType": "extranet",
        "DstInfo": {"Ip": dst.host, "Port": dst.port, "User": dst.user, "Password": dst.password.expose()},
        "DatabaseInfo": json!([{"Database": DB}]).to_string(),
        "Ferry": {"ChunkRows": 1000, "Threads": 2, "RowsPerSecond": 10000},
    });
    let a = &clients[0];
    let id = call(a, "CreateMigrateJob", request).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(a, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    common::api::wait_status(a, &id, 4, 120).await?;
    call(a, "StartMigrateJob", json!({"JobId": id})).await?;
    let done_sql = format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{id}' AND done = 1");
    wait_until(120, "a few chunks of the full load committed", || async {
        let mut c = connect(&target()).await?;
        let n: u64 = ferry_testkit::scalar(&mut c, &done_sql).await.unwrap_or(0);
        Ok(n >= 3)
    })
    .await?;
    let done: u64 = ferry_testkit::scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{id}' AND done = 1"),
    )
    .await?;
    let chunks: u64 = ferry_testkit::scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = '{id}'"),
    )
    .await?;
    assert!(
        done < chunks,
        "the store goes down mid-load ({done}/{chunks} chunks)"
    );
    store.restart().await?;
    wait_status(&clients, &id, 8, 600).await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    call(a, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status(&clients, &id, 9, 300).await?;

    let sa = ferry_testkit::db_digest(&mut s, DB).await?;
    let sb = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(sa, sb, "source and target differ");
    let total = stats.commits.load(Ordering::SeqCst);
    assert_exactly_once(&mut t, DB, total, "the job across a store restart").await?;
    for n in nodes {
        assert!(n.stop().success(), "a node stops cleanly on SIGTERM");
    }
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(root());
    Ok(())
}
