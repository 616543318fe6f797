//! The exactly-once fixtures shared by the crash, network-cut, restart and torture tests.
//!
//! - [`EXACTLY_ONCE_TABLES`]: `counter`, one row that every writer transaction increments, and
//!   `journal`, one row per writer transaction (`v` = its number), written in the same source
//!   transaction; plus `bulk`, 20 000 rows for the full load to copy first.
//! - [`counter_writer`]: commits such transactions until told to stop, and survives a restart or
//!   a network cut of the source (an interrupted transaction's outcome is read back from the
//!   counter), so its count is exactly the transactions that committed.
//! - [`Writer`]: the tables and a running [`counter_writer`] in one call, stopped by
//!   [`Writer::finish`].
//! - [`assert_exactly_once`] / [`tally`]: on the target, counter = journal rows = distinct
//!   journal values = commits.
//! - [`CHURN_TABLE`] and [`churn_writer`]: updates, deletes, inserts and primary-key updates of
//!   random rows, the shapes a load that reads while the source writes must get right (compared
//!   by digest).
//! - [`FAMILY_TABLES`] and [`family_writer`]: parents, children and grandchildren tied by
//!   `ON DELETE CASCADE`, `ON UPDATE CASCADE` and `ON DELETE/UPDATE SET NULL`, with deletes and
//!   key updates of parents (changes the cascades make on the source are not in the binlog).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use ferry_core::Endpoint;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::{connect, scalar, wait_until};

/// Tables that prove exactly-once delivery (run after `USE db`).
pub const EXACTLY_ONCE_TABLES: &str = "CREATE TABLE counter (id INT PRIMARY KEY, n BIGINT NOT NULL); \
     INSERT INTO counter VALUES (1, 0); \
     CREATE TABLE journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(200), \
       at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)); \
     CREATE TABLE bulk (id INT PRIMARY KEY, x VARCHAR(64)); \
     INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_1_to_20000";

/// A table of 30 000 rows for [`churn_writer`] (run after `USE db`).
pub const CHURN_TABLE: &str =
    "CREATE TABLE churn (id INT PRIMARY KEY, g INT NOT NULL, v VARCHAR(40), KEY (g)); \
     INSERT INTO churn SELECT seq, seq % 97, MD5(seq) FROM seq_1_to_30000";

/// Random changes of `db.churn` until `stop`, one per transaction: an update of a non-key column,
/// a delete, an insert of a new key, or a primary-key update that moves a row to a new key.
/// Counts its commits in `stats`.
pub fn churn_writer(
    ep: Endpoint,
    db: String,
    seed: u64,
    stop: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&ep).await?;
        // A small LCG: reproducible from the seed, no dependency.
        let mut x = seed | 1;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        let mut fresh = 10_000_000u64 + seed % 1000 * 100_000;
        while !stop.load(Ordering::SeqCst) {
            let id = 1 + next() % 30_000;
            fresh += 1;
            let sql = match next() % 4 {
                0 => format!("UPDATE {db}.churn SET v = MD5(RAND()), g = g + 1 WHERE id = {id}"),
                1 => format!("DELETE FROM {db}.churn WHERE id = {id}"),
                2 => format!("INSERT INTO {db}.churn VALUES ({fresh}, 7, 'new')"),
                _ => format!("UPDATE IGNORE {db}.churn SET id = {fresh} WHERE id = {id}"),
            };
            c.query_drop(sql).await?;
            stats.commits.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    })
}

/// Parent, child, grandchild and a `SET NULL` dependant (run after `USE db`).
pub const FAMILY_TABLES: &str =
    "CREATE TABLE fam_parent (id BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL); \
     CREATE TABLE fam_child (id BIGINT AUTO_INCREMENT PRIMARY KEY, pid BIGINT NOT NULL, note VARCHAR(10), \
       FOREIGN KEY (pid) REFERENCES fam_parent (id) ON DELETE CASCADE ON UPDATE CASCADE); \
     CREATE TABLE fam_grand (id BIGINT AUTO_INCREMENT PRIMARY KEY, cid BIGINT NOT NULL, \
       FOREIGN KEY (cid) REFERENCES fam_child (id) ON DELETE CASCADE); \
     CREATE TABLE fam_loose (id BIGINT PRIMARY KEY, pid BIGINT NULL, \
       FOREIGN KEY (pid) REFERENCES fam_parent (id) ON DELETE SET NULL ON UPDATE SET NULL)";

/// The family tables, for per-table comparisons.
pub const FAMILY_TABLE_NAMES: [&str; 4] = ["fam_parent", "fam_child", "fam_grand", "fam_loose"];

/// Connects, retrying while the server is down (a restart, a cut), up to 120 s.
pub async fn reconnect(ep: &Endpoint) -> Result<Conn> {
    wait_until(120, "the source to accept connections again", || {
        let ep = ep.clone();
        async move { Ok(connect(&ep).await.is_ok()) }
    })
    .await?;
    connect(ep).await
}

/// What a writer counts.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions known to have committed.
    pub commits: AtomicU64,
    /// Transactions interrupted by an error (their outcome resolved afterwards).
    pub errors: AtomicU64,
}

/// A [`counter_writer`] running on the source test server, 5 ms between its transactions, and
/// what it needs to be stopped and counted ([`Writer::start`]).
pub struct Writer {
    stop: Arc<AtomicBool>,
    /// Its counts.
    pub stats: Arc<WriterStats>,
    handle: tokio::task::JoinHandle<Result<()>>,
}

impl Writer {
    /// Creates [`EXACTLY_ONCE_TABLES`] in `db` on the source (through `s`, `db` freshly made by
    /// the caller) with `extra_bulk` more `bulk` rows after its 20 000, then starts the writer.
    pub async fn start(s: &mut Conn, db: &str, extra_bulk: u64) -> Result<Writer> {
        let bulk = if extra_bulk > 0 {
            format!(
                "; INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_20001_to_{}",
                20_000 + extra_bulk
            )
        } else {
            String::new()
        };
        s.query_drop(format!("USE {db}; {EXACTLY_ONCE_TABLES}{bulk}"))
            .await?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriterStats::default());
        let handle = counter_writer(
            crate::source(),
            db.into(),
            0,
            Duration::from_millis(5),
            u64::MAX,
            stop.clone(),
            stats.clone(),
        );
        Ok(Writer { stop, stats, handle })
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.stats.commits.load(Ordering::SeqCst)
    }

    /// Waits until `more` transactions beyond those committed now have committed.
    pub async fn wait_more(&self, more: u64, secs: u64) -> Result<()> {
        let from = self.commits();
        wait_until(secs, &format!("{more} more writer commits"), || async {
            Ok(self.commits() >= from + more)
        })
        .await
    }

    /// Stops the writer; the transactions it committed.
    pub async fn finish(self) -> Result<u64> {
        self.stop.store(true, Ordering::SeqCst);
        let stats = self.stats;
        self.handle.await??;
        Ok(stats.commits.load(Ordering::SeqCst))
    }
}

/// Counter + journal transactions on `db` until `stop` (at most `max` of them; `pause` between
/// two). On an error it reconnects and reads the counter, which only this writer moves: it says
/// whether the interrupted transaction committed. Journal values are `base + i`, distinct.
/// Several writers may share `db` and `stats` (with bases far apart) on a source that is not
/// interrupted; the recovery read assumes one writer per counter.
pub fn counter_writer(
    ep: Endpoint,
    db: String,
    base: u64,
    pause: Duration,
    max: u64,
    stop: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&ep).await?;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) && i < max {
            i += 1;
            let r = c
                .query_drop(format!(
                    "START TRANSACTION; UPDATE {db}.counter SET n = n + 1 WHERE id = 1; \
                     INSERT INTO {db}.journal (v, pad) VALUES ({}, REPEAT('j', {})); COMMIT",
                    base + i,
                    i % 200
                ))
                .await;
            match r {
                Ok(()) => {
                    stats.commits.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::SeqCst);
                    eprintln!("writer: transaction {i} failed ({e}); reconnecting");
                    c = reconnect(&ep).await?;
                    let n: u64 = scalar(&mut c, &format!("SELECT n FROM {db}.counter WHERE id = 1")).await?;
                    let known = stats.commits.load(Ordering::SeqCst);
                    if n == known + 1 {
                        eprintln!("writer: transaction {i} had committed");
                        stats.commits.store(n, Ordering::SeqCst);
                    } else if n != known {
                        bail!("writer: counter {n} after reconnecting, but {known} commits known");
                    }
                }
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(())
    })
}

/// Families on `db` until `stop`: each transaction adds a parent with three children, their
/// grandchildren and a `fam_loose` row, and deletes or re-keys an older parent, whose
/// descendants follow by the foreign keys' actions. Parent ids are `base + i`. Survives a source
/// restart (reconnects; an interrupted transaction is simply not counted, the digests decide).
pub fn family_writer(
    ep: Endpoint,
    db: String,
    base: u64,
    pause: Duration,
    stop: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&ep).await?;
        let mut i = 0u64;
        // Bounded: a few hundred thousand transactions at most, whatever `stop` does.
        while !stop.load(Ordering::SeqCst) && i < 500_000 {
            i += 1;
            let id = base + i;
            let change = match i % 3 {
                0 => format!(
                    "UPDATE {db}.fam_parent SET id = id + 100000000 WHERE id = {};",
                    id.saturating_sub(2)
                ),
                _ => format!("DELETE FROM {db}.fam_parent WHERE id = {};", id.saturating_sub(4)),
            };
            let r = c
                .query_drop(format!(
                    "START TRANSACTION; INSERT INTO {db}.fam_parent VALUES ({id}, 'f{id}'); \
                     INSERT INTO {db}.fam_child (pid, note) VALUES ({id}, 'a'), ({id}, 'b'), ({id}, 'c'); \
                     INSERT INTO {db}.fam_grand (cid) SELECT id FROM {db}.fam_child WHERE pid = {id}; \
                     INSERT INTO {db}.fam_loose VALUES ({id}, {id}); \
                     {change} COMMIT"
                ))
                .await;
            match r {
                Ok(()) => {
                    stats.commits.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::SeqCst);
                    eprintln!("family writer: transaction {i} failed ({e}); reconnecting");
                    c = reconnect(&ep).await?;
                }
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(())
    })
}

/// The exactly-once tables as the target holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// `counter.n`.
    pub counter: u64,
    /// Journal rows.
    pub rows: u64,
    /// Distinct journal values.
    pub distinct: u64,
}

impl Tally {
    /// Writer transactions missing on the target.
    pub fn lost(&self, commits: u64) -> u64 {
        commits.saturating_sub(self.distinct)
    }

    /// Writer transactions applied more than once (journal rows or counter increments beyond
    /// the distinct values and the commits).
    pub fn duplicated(&self, commits: u64) -> u64 {
        self.rows
            .saturating_sub(self.distinct)
            .max(self.counter.saturating_sub(commits))
    }
}

/// Reads the counter and journal of `db`.
pub async fn tally(t: &mut Conn, db: &str) -> Result<Tally> {
    Ok(Tally {
        counter: scalar(t, &format!("SELECT n FROM {db}.counter WHERE id = 1")).await?,
        rows: scalar(t, &format!("SELECT COUNT(*) FROM {db}.journal")).await?,
        distinct: scalar(t, &format!("SELECT COUNT(DISTINCT v) FROM {db}.journal")).await?,
    })
}

/// On the target: the counter, the journal's rows and its distinct values all equal the writer's
/// commits (nothing lost, nothing applied twice). `context` is printed on failure.
pub async fn assert_exactly_once(t: &mut Conn, db: &str, commits: u64, context: &str) -> Result<()> {
    let got = tally(t, db).await?;
    if got.counter != commits {
        bail!(
            "target counter {} != writer commits {commits} (lost or applied twice)\n{context}",
            got.counter
        );
    }
    if got.rows != commits {
        bail!(
            "target journal rows {} != writer commits {commits}\n{context}",
            got.rows
        );
    }
    if got.distinct != commits {
        bail!(
            "distinct journal values {} != writer commits {commits}\n{context}",
            got.distinct
        );
    }
    Ok(())
}
