//! Figures for docs/cluster.md, measured, printed, never asserted (run by hand:
//! `cargo test -p ferry-cli --test cluster_scaling -- --ignored --nocapture`): two `ferry serve`
//! nodes on a MariaDB store, first idle, then with `JOBS` replaying MigrateType 3 jobs (each a
//! small database of its own, a light write load on the source); for each window, the
//! statements each node sent to the store per second (`ferry_store_statements_total`) and how
//! the jobs are spread over the nodes (`ferry_job_owner`). Only databases named
//! `svc_scale_*` are touched.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use common::api::{call, job_info};
use common::cluster::{job_request, Nodes};
use common::serve::Serve;
use ferry_testkit::{connect, source, target, wait_until};
use serde_json::json;

const STORE: &str = "svc_scale_store";
const SECRET_ID: &str = "AKIDferryscaletest";
const SECRET_KEY: &str = "ferry-scale-test-key";
const JOBS: usize = 6;
const WINDOW: Duration = Duration::from_secs(20);

fn root() -> PathBuf {
    std::env::temp_dir().join(format!("ferry-scale-{}", std::process::id()))
}

/// `ferry_store_statements_total` and the number of `ferry_job_owner` lines naming `node`.
async fn sample(node: &Serve, name: &str) -> Result<(u64, usize)> {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", node.url))
        .send()
        .await?
        .text()
        .await?;
    let statements = text
        .lines()
        .find_map(|l| l.strip_prefix("ferry_store_statements_total "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no ferry_store_statements_total:\n{text}"))?;
    let owned = text
        .lines()
        .filter(|l| l.starts_with("ferry_job_owner{") && l.contains(&format!("node=\"{name}\"")))
        .count();
    Ok((statements, owned))
}

/// Statements per second each node sent to the store over [`WINDOW`], and the jobs it owns.
async fn window(nodes: &[(&str, &Serve)]) -> Result<Vec<(f64, usize)>> {
    let mut before = Vec::new();
    for (name, n) in nodes {
        before.push(sample(n, name).await?.0);
    }
    let t0 = Instant::now();
    // A measurement window, not a synchronisation: the rate is what is measured.
    tokio::time::sleep(WINDOW).await;
    let secs = t0.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for ((name, n), b) in nodes.iter().zip(before) {
        let (after, owned) = sample(n, name).await?;
        out.push(((after - b) as f64 / secs, owned));
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/cluster.md, run by hand"]
async fn store_statements_per_node_and_per_job() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    let dbs: Vec<String> = (0..JOBS).map(|i| format!("svc_scale_{i}")).collect();
    let mut all: Vec<&str> = dbs.iter().map(String::as_str).collect();
    ferry_testkit::drop_dbs(&mut t, &all).await?;
    all.push(STORE);
    ferry_testkit::drop_dbs(&mut t, &[STORE]).await?;
    let _ = std::fs::remove_dir_all(root());
    for db in &dbs {
        ferry_testkit::fresh_db(&mut s, db).await?;
        ferry_testkit::exec(
            &mut s,
            &format!(
                "USE {db}; CREATE TABLE t (id INT PRIMARY KEY, v INT); \
                 INSERT INTO t SELECT seq, seq FROM seq_1_to_1000"
            ),
        )
        .await?;
    }
    let setup = Nodes::new(STORE, &root(), SECRET_ID, SECRET_KEY);
    let a = setup.start("node-a")?;
    let b = setup.start("node-b")?;
    let nodes = [("node-a", &a), ("node-b", &b)];
    let idle = window(&nodes).await?;

    let client = setup.client(&a);
    let mut ids = Vec::new();
    for db in &dbs {
        let id = call(&client, "CreateMigrateJob", job_request(db, db)).await?["JobId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        call(&client, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
        common::api::wait_status(&client, &id, 4, 120).await?;
        call(&client, "StartMigrateJob", json!({"JobId": id})).await?;
        ids.push(id);
    }
    for id in &ids {
        common::api::wait_status(&client, id, 8, 300).await?;
    }
    // A light write load: one update a second in each database.
    let writes = {
        let dbs = dbs.clone();
        tokio::spawn(async move {
            let mut c = connect(&source()).await?;
            let until = Instant::now() + WINDOW + Duration::from_secs(5);
            let mut k = 0u64;
            while Instant::now() < until {
                for db in &dbs {
                    ferry_testkit::exec(
                        &mut c,
                        &format!("UPDATE {db}.t SET v = v + 1 WHERE id = {}", k % 1000 + 1),
                    )
                    .await?;
                }
                k += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            anyhow::Ok(())
        })
    };
    let busy = window(&nodes).await?;
    writes.await??;

    let idle_total: f64 = idle.iter().map(|(r, _)| r).sum();
    let busy_total: f64 = busy.iter().map(|(r, _)| r).sum();
    eprintln!("idle, no job:  {}", fmt(&nodes, &idle));
    eprintln!("{JOBS} jobs replaying: {}", fmt(&nodes, &busy));
    eprintln!(
        "per job: {:.2} statements/s to the store (({busy_total:.1} - {idle_total:.1}) / {JOBS})",
        (busy_total - idle_total) / JOBS as f64
    );

    for id in &ids {
        call(&client, "StopMigrateJob", json!({"JobId": id})).await?;
    }
    for id in &ids {
        wait_until(120, "the job to stop", || async {
            Ok(job_info(&client, id).await?["Status"].as_i64() == Some(10))
        })
        .await?;
    }
    drop((a, b));
    ferry_testkit::drop_dbs(&mut s, &all).await?;
    ferry_testkit::drop_dbs(&mut t, &all).await?;
    let _ = std::fs::remove_dir_all(root());
    Ok(())
}

fn fmt(nodes: &[(&str, &Serve)], w: &[(f64, usize)]) -> String {
    nodes
        .iter()
        .zip(w)
        .map(|((n, _), (r, owned))| format!("{n}: {r:.1} statements/s, {owned} job(s)"))
        .collect::<Vec<_>>()
        .join("; ")
}
