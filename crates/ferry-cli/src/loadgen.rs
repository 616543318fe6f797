//! `ferry loadgen`: sample data and a write load for demos, tests and benchmarks.
//!
//! Prepares sysbench-like tables (`sbtest1..N`: `id` AUTO_INCREMENT primary key, `k` with a
//! secondary index, `c`, `pad`) with client-generated multi-row INSERTs (portable: MySQL has no
//! SEQUENCE engine), then runs transactions shaped like sysbench's `oltp_write_only` (update an
//! indexed column, update a non-indexed column, delete a row, insert a row) at a target rate, from
//! several connections, for a duration or a number of transactions. It prints the rate every two
//! seconds and, at the end, how many transactions committed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use ferry_core::sql::{qualified, quote_ident};
use ferry_core::throttle::Throttle;
use ferry_core::Endpoint;
use mysql_async::prelude::Queryable;

/// What to generate.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// The server: mysql://user:password@host:port
    #[arg(long, env = "FERRY_LOADGEN_URL", hide_env_values = true)]
    pub url: String,
    /// Database to create the tables in.
    #[arg(long, default_value = "loadgen")]
    pub database: String,
    /// Number of sbtest tables.
    #[arg(long, default_value_t = 4)]
    pub tables: u32,
    /// Rows per table when preparing.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u64,
    /// Only create and fill the tables.
    #[arg(long, conflicts_with = "no_prepare")]
    pub prepare_only: bool,
    /// Do not create or fill the tables (they exist already).
    #[arg(long)]
    pub no_prepare: bool,
    /// Connections running transactions.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Transactions per second in total (0 = as fast as possible).
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Seconds to run (0 = until --transactions or Ctrl-C).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Stop after this many transactions (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub transactions: u64,
}

/// A small xorshift generator: the load needs variety, not cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// sysbench's `c`/`pad` shape: groups of 11 digits joined by dashes.
    fn text(&mut self, groups: usize) -> String {
        (0..groups)
            .map(|_| format!("{:011}", self.below(100_000_000_000)))
            .collect::<Vec<_>>()
            .join("-")
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(42)
}

async fn prepare(ep: &Endpoint, a: &LoadgenArgs) -> Result<()> {
    let mut conn = ep.connect(Vec::new()).await.context("connecting")?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {}",
        quote_ident(&a.database)
    ))
    .await?;
    let mut rng = Rng::new(seed());
    for t in 1..=a.tables {
        let table = qualified(&a.database, &format!("sbtest{t}"));
        conn.query_drop(format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             k INT UNSIGNED NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', \
             KEY k_1 (k)) ENGINE=InnoDB"
        ))
        .await
        .with_context(|| format!("creating {table}"))?;
        let mut done = 0;
        while done < a.rows {
            let n = (a.rows - done).min(1000);
            let values: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "({}, '{}', '{}')",
                        rng.below(a.rows.max(1)),
                        rng.text(10),
                        rng.text(5)
                    )
                })
                .collect();
            conn.query_drop(format!(
                "INSERT INTO {table} (k, c, pad) VALUES {}",
                values.join(",")
            ))
            .await
            .with_context(|| format!("filling {table}"))?;
            done += n;
        }
    }
    eprintln!(
        "prepared {} tables of {} rows in {}",
        a.tables, a.rows, a.database
    );
    Ok(())
}

/// One write transaction: update an indexed column, update a non-indexed one, delete a row and
/// insert one (keeping the table size stable).
async fn transaction(conn: &mut mysql_async::Conn, rng: &mut Rng, a: &LoadgenArgs) -> Result<()> {
    let table = qualified(
        &a.database,
        &format!("sbtest{}", 1 + rng.below(u64::from(a.tables))),
    );
    let span = a.rows.max(1);
    let (id1, id2, id3) = (1 + rng.below(span), 1 + rng.below(span), 1 + rng.below(span));
    let sql = format!(
        "START TRANSACTION; \
         UPDATE {table} SET k = k + 1 WHERE id = {id1}; \
         UPDATE {table} SET c = '{}' WHERE id = {id2}; \
         DELETE FROM {table} WHERE id = {id3}; \
         INSERT INTO {table} (k, c, pad) VALUES ({}, '{}', '{}'); \
         COMMIT",
        rng.text(10),
        rng.below(span),
        rng.text(10),
        rng.text(5)
    );
    conn.query_drop(sql).await?;
    Ok(())
}

/// `ferry loadgen`.
pub async fn loadgen(a: LoadgenArgs) -> Result<std::process::ExitCode> {
    let ep = Endpoint::from_url(&a.url)?;
    if a.tables == 0 {
        anyhow::bail!("--tables must be at least 1");
    }
    if !a.no_prepare {
        prepare(&ep, &a).await?;
    }
    if a.prepare_only {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let committed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let throttle = Arc::new(Throttle::new(a.rate, 0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..a.threads.max(1) {
        let (ep, a, committed, failed, stop, throttle) = (
            ep.clone(),
            a.clone(),
            committed.clone(),
            failed.clone(),
            stop.clone(),
            throttle.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed().wrapping_add(u64::from(w) * 7919));
            let mut conn = ep.connect(Vec::new()).await?;
            while !stop.load(Ordering::Relaxed) {
                if a.transactions > 0 && committed.load(Ordering::Relaxed) >= a.transactions {
                    break;
                }
                throttle.acquire(1, 0).await;
                match transaction(&mut conn, &mut rng, &a).await {
                    Ok(()) => {
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("transaction failed (reconnecting): {e:#}");
                        conn = ep.connect(Vec::new()).await?;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    let deadline = (a.duration > 0).then(|| started + Duration::from_secs(a.duration));
    let mut last = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let now = committed.load(Ordering::Relaxed);
        eprintln!(
            "loadgen: {now} transactions committed ({:.0}/s)",
            (now - last) as f64 / 2.0
        );
        last = now;
        let limit_reached = a.transactions > 0 && now >= a.transactions;
        if limit_reached
            || deadline.is_some_and(|d| Instant::now() >= d)
            || workers.iter().all(|w| w.is_finished())
        {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.context("a load worker panicked")??;
    }
    let n = committed.load(Ordering::Relaxed);
    println!(
        "loadgen: {n} transactions committed, {} failed, in {:.1} s",
        failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
