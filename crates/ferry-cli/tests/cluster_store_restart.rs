//! Two `ferry serve` nodes on a job store in an extra MariaDB instance of the test's own: a
//! MigrateType 3 job runs under a writer while the store server is stopped and started again in
//! the middle of the full load; the nodes wait for it and carry on (the run keeps its lease, or is
//! claimed again once the store is back), the job reaches 8, is completed through a node and
//! ends in 9 with the target equal to the source, every commit exactly once. Only databases named
//! `svc_cluster_*` are touched.

mod common;

use std::path::PathBuf;

use anyhow::Result;
use common::api::call;
use common::cluster::{job_request, wait_status_via, Nodes};
use ferry_api::Client;
use ferry_testkit::exactly_once::{assert_exactly_once, Writer};
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
    let w = Writer::start(&mut s, DB, 60000).await?;
    let setup = Nodes::on(&store_ep, STORE, &root(), SECRET_ID, SECRET_KEY);
    let nodes = [setup.start("node-a")?, setup.start("node-b")?];
    let clients: Vec<Client> = nodes.iter().map(|n| setup.client(n)).collect();
    let mut request = job_request("cluster-store-restart", DB);
    request["Ferry"] = json!({"ChunkRows": 1000, "Threads": 2, "RowsPerSecond": 10000});
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
    wait_status_via(&clients, &id, 8, 600).await?;
    let total = w.finish().await?;
    call(a, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status_via(&clients, &id, 9, 300).await?;

    let sa = ferry_testkit::db_digest(&mut s, DB).await?;
    let sb = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(sa, sb, "source and target differ");
    assert_exactly_once(&mut t, DB, total, "the job across a store restart").await?;
    for n in nodes {
        assert!(n.stop().success(), "a node stops cleanly on SIGTERM");
    }
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(root());
    Ok(())
}
