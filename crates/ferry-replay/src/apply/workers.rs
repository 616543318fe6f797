//! The apply workers: one target connection each, applying batches of consecutive source
//! transactions and committing them **in source order**.
//!
//! A worker runs its batch (`START TRANSACTION`, the rows of every transaction of the batch),
//! then waits for its turn (every earlier batch committed), then sends the checkpoint UPDATE and
//! `COMMIT` in one round trip and publishes its batch number. A *split* batch (its
//! [`Deferred`] keys held by batches still in flight) runs its rows on free keys first, waits
//! until batch `after` has committed, then runs the deferred rows ([`compact::split`]); its
//! slow path waits for `after` before it starts. The coordinator never lets two batches run
//! statements on the same key at once (`super::schedule`), so a batch never waits for a row
//! lock of another; if it ever does (a gap lock, say), the session's short lock wait timeout
//! turns it into a transient error and the replay resumes from the checkpoint, serially past
//! that point.
//!
//! A conflict (policy Stop) inside a batch of several transactions rolls the batch back and
//! re-applies it one transaction per target commit, so everything before the offending
//! transaction is committed and checkpointed before the error is reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ferry_core::Endpoint;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::{mpsc, watch};
use tracing::{debug, Instrument};

use ferry_core::error::classify_mysql;
use ferry_core::fault;
use ferry_core::ErrorKind;

use super::compact;
use super::rowapply::{apply_err, Change, RowApplier};
use super::schedule::Deferred;
use super::{checkpoint, dirty, AbortOnDrop, ConflictPolicy};
use crate::error::ReplayError;
use crate::event::BinlogPos;

/// Multi-statement queries of the fast path are cut at about this size.
const MAX_PIPELINE_BYTES: usize = 4 << 20;

/// One source transaction with selected changes (or none: it only moves the position).
#[derive(Debug)]
pub(crate) struct Txn {
    pub changes: Vec<Change>,
    pub rows: u64,
    /// Estimated bytes of the row images (for the batch and memory bounds).
    pub bytes: u64,
    /// Inside the idempotent window of a resumed load.
    pub idem: bool,
    pub end: BinlogPos,
    pub gtid: Option<String>,
    pub ts: u32,
}

/// Consecutive source transactions committed as one target transaction.
#[derive(Debug)]
pub(crate) struct Batch {
    /// 1, 2, 3 … in source order within a session.
    pub no: u64,
    pub txns: Vec<Txn>,
    /// A split batch ([`super::schedule::Placement::Split`]): its rows on these keys wait until
    /// batch `after` has committed.
    pub deferred: Option<Deferred>,
}

impl Batch {
    pub fn last(&self) -> Option<&Txn> {
        self.txns.last()
    }
}

/// The target session of an apply worker: the applier's settings, READ COMMITTED (no gap locks
/// between the workers; kept REPEATABLE READ when the target logs statements, where InnoDB
/// refuses READ COMMITTED) and a short lock wait timeout (a lock wait between workers would be a
/// scheduling mistake: fail fast, resume serially).
async fn connect_worker(dst: &Endpoint, target_binlog: bool) -> Result<Conn, ReplayError> {
    let mut conn = super::connect_target(dst, target_binlog).await?;
    let fmt: Option<String> = conn
        .query_first("SELECT @@SESSION.binlog_format")
        .await
        .map_err(|e| apply_err("preparing an apply session", &BinlogPos::new("-", 0), e))?;
    let mut sets = vec!["SET SESSION innodb_lock_wait_timeout = 10".to_string()];
    if !fmt.is_some_and(|f| f.eq_ignore_ascii_case("STATEMENT")) {
        sets.push("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".into());
    }
    for s in sets {
        conn.query_drop(s)
            .await
            .map_err(|e| apply_err("preparing an apply session", &BinlogPos::new("-", 0), e))?;
    }
    Ok(conn)
}

/// Options shared by the workers.
#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    pub job_key: String,
    pub conflict: ConflictPolicy,
    /// False: the worker's writes stay out of the target's binlog (`sql_log_bin = 0`).
    pub target_binlog: bool,
    /// Continuous verification's chunk maps: the commit marks the chunks its changes touch.
    pub dirty: Option<ferry_core::chunkmap::DirtyTracker>,
    /// The job's ownership epoch, checked by every commit ([`ferry_core::fence`]).
    pub fence: Option<ferry_core::fence::Fence>,
}

/// The workers of one session.
pub(crate) struct Pool {
    /// Each worker's queue, bounded by the depth the scheduler keeps
    /// ([`super::schedule::WORKER_DEPTH`]), so a send never waits in practice.
    senders: Vec<mpsc::Sender<Batch>>,
    /// The highest batch number committed.
    pub committed: Arc<watch::Sender<u64>>,
    /// A worker's error (each worker sends at most one, then stops).
    pub errors: mpsc::Receiver<ReplayError>,
    _tasks: Vec<AbortOnDrop>,
}

impl Pool {
    /// Connects `n` workers, each with a queue of `depth` batches.
    pub async fn start(
        dst: &Endpoint,
        n: usize,
        depth: usize,
        cfg: WorkerConfig,
        skipped: Arc<AtomicU64>,
    ) -> Result<Pool, ReplayError> {
        let n = n.max(1);
        let committed = Arc::new(watch::channel(0u64).0);
        let (err_tx, errors) = mpsc::channel(n);
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..n {
            let mut conn = connect_worker(dst, cfg.target_binlog).await?;
            if let Some(f) = &cfg.fence {
                f.register(&mut conn).await;
            }
            let (tx, rx) = mpsc::channel(depth.max(1));
            senders.push(tx);
            let w = Worker {
                conn,
                cfg: cfg.clone(),
                committed: committed.clone(),
                skipped: skipped.clone(),
            };
            let err_tx = err_tx.clone();
            let span = tracing::info_span!("apply_worker", worker = i);
            tasks.push(AbortOnDrop(tokio::spawn(
                async move { w.run(rx, err_tx).await }.instrument(span),
            )));
        }
        Ok(Pool {
            senders,
            committed,
            errors,
            _tasks: tasks,
        })
    }

    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Queues a batch on a worker (it runs after the batches queued there before).
    pub async fn send(&self, worker: usize, b: Batch) -> Result<(), ReplayError> {
        let stopped = || ReplayError::Disconnected {
            position: "-".into(),
            reason: "an apply worker stopped".into(),
        };
        self.senders
            .get(worker)
            .ok_or_else(stopped)?
            .send(b)
            .await
            .map_err(|_| stopped())
    }

    pub fn committed(&self) -> u64 {
        *self.committed.borrow()
    }
}

/// Where a fast-path batch's time went (the "batch committed" log line).
struct FastTimes {
    /// Rows executed only after batch `after` committed (a split batch).
    deferred_rows: u64,
    /// Executing its statements.
    exec_us: u64,
    /// Waiting for batch `after` between the two parts.
    after_us: u64,
}

struct Worker {
    conn: Conn,
    cfg: WorkerConfig,
    committed: Arc<watch::Sender<u64>>,
    skipped: Arc<AtomicU64>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Batch>, err_tx: mpsc::Sender<ReplayError>) {
        while let Some(b) = rx.recv().await {
            if let Err(e) = self.batch(&b).await {
                let _ = self.conn.query_drop("ROLLBACK").await;
                // Room for one error per worker: never full.
                let _ = err_tx.try_send(e);
                return;
            }
        }
        let _ = self.conn.disconnect().await;
    }

    /// Waits until every batch up to `no` has committed.
    async fn wait_committed(&self, no: u64) {
        let mut rx = self.committed.subscribe();
        let _ = rx.wait_for(|c| *c >= no).await;
    }

    /// Waits until every batch before `no` has committed.
    async fn wait_turn(&self, no: u64) {
        self.wait_committed(no.saturating_sub(1)).await;
    }

    fn publish(&self, no: u64) {
        self.committed.send_modify(|c| *c = (*c).max(no));
    }

    /// The dirty marks of `txns` (continuous verification), the checkpoint UPDATE at the end of
    /// `last` and COMMIT. Called at the batch's turn, so the marks' row locks never wait for a
    /// later batch.
    fn commit_sql(&self, txns: &[Txn], last: &Txn) -> String {
        let marks = match &self.cfg.dirty {
            Some(tr) if !tr.is_empty() => {
                let mut m = std::collections::BTreeSet::new();
                for c in txns.iter().flat_map(|t| &t.changes) {
                    dirty::change_marks(tr, c, &mut m);
                }
                dirty::commit_prefix(&self.cfg.job_key, &m)
            }
            _ => String::new(),
        };
        format!(
            "{marks}{}; COMMIT",
            checkpoint::update_sql(
                &self.cfg.job_key,
                self.cfg.fence.as_ref(),
                &last.end,
                last.gtid.as_deref(),
                last.ts
            )
        )
    }

    /// The dirty marks, checkpoint UPDATE and COMMIT of a batch holding `txns` and ending with
    /// `last`, in one round trip (with the fault points before and after it).
    async fn commit(&mut self, txns: &[Txn], last: &Txn) -> Result<(), ReplayError> {
        let what = "the replay checkpoint and COMMIT";
        fault::point(fault::REPLAY_BEFORE_COMMIT).map_err(|e| apply_err(what, &last.end, e))?;
        let sql = self.commit_sql(txns, last);
        checkpoint::commit(&mut self.conn, self.cfg.fence.as_ref(), sql, what, &last.end).await?;
        fault::point(fault::REPLAY_AFTER_COMMIT).map_err(|e| apply_err(what, &last.end, e))
    }

    async fn batch(&mut self, b: &Batch) -> Result<(), ReplayError> {
        let Some(last) = b.last() else {
            self.wait_turn(b.no).await;
            self.publish(b.no);
            return Ok(());
        };
        let first_pos = b.txns[0].end.clone();
        if self.cfg.conflict == ConflictPolicy::Stop && !b.txns.iter().any(|t| t.idem) {
            match self.fast_path(b).await? {
                Some(times) => {
                    let executed = Instant::now();
                    self.wait_turn(b.no).await;
                    let turn = Instant::now();
                    self.commit(&b.txns, last).await?;
                    self.publish(b.no);
                    // where a batch's time goes (docs/benchmarks.md, "Incremental replay")
                    debug!(
                        batch = b.no,
                        txns = b.txns.len(),
                        deferred_rows = times.deferred_rows,
                        exec_us = times.exec_us,
                        after_us = times.after_us,
                        turn_us = (turn - executed).as_micros() as u64,
                        commit_us = turn.elapsed().as_micros() as u64,
                        "batch committed"
                    );
                    return Ok(());
                }
                None => {
                    // A statement did not find its row or its key was taken: redo the batch
                    // statement by statement, where the conflict policy decides.
                    self.conn
                        .query_drop("ROLLBACK")
                        .await
                        .map_err(|e| apply_err("ROLLBACK", &first_pos, e))?;
                }
            }
        }
        // Statement by statement, the whole batch: only once its deferred keys are free.
        if let Some(d) = &b.deferred {
            self.wait_committed(d.after).await;
        }
        self.conn
            .query_drop("START TRANSACTION")
            .await
            .map_err(|e| apply_err("START TRANSACTION", &first_pos, e))?;
        let mut ap = RowApplier::new(self.cfg.conflict);
        let mut failed = None;
        'txns: for t in &b.txns {
            for c in &t.changes {
                if let Err(e) = ap.apply(&mut self.conn, c, t.idem).await {
                    failed = Some(e);
                    break 'txns;
                }
            }
        }
        match failed {
            None => {
                self.wait_turn(b.no).await;
                self.commit(&b.txns, last).await?;
                self.skipped.fetch_add(ap.skipped, Ordering::Relaxed);
                self.publish(b.no);
                Ok(())
            }
            Some(e @ ReplayError::Conflict { .. }) if b.txns.len() > 1 => {
                debug!(error = %e, "conflict inside a batch: re-applying it one transaction at a time");
                self.conn
                    .query_drop("ROLLBACK")
                    .await
                    .map_err(|e| apply_err("ROLLBACK", &first_pos, e))?;
                self.wait_turn(b.no).await;
                self.one_by_one(b).await?;
                self.publish(b.no);
                Ok(())
            }
            Some(e) => Err(e),
        }
    }

    /// The fast path (conflict policy Stop): the batch's compacted statements ([`compact`]) sent
    /// a few megabytes at a time as multi-statement queries, each statement's affected rows
    /// checked against what it must change. A split batch sends the statements of its free rows,
    /// waits until batch `after` has committed, then sends those of its deferred rows. `None`
    /// when a statement failed or changed another number of rows: the open transaction must be
    /// rolled back and the batch redone on the slow path.
    async fn fast_path(&mut self, b: &Batch) -> Result<Option<FastTimes>, ReplayError> {
        let started = Instant::now();
        let steps = compact::plan(b);
        let (now, later) = match &b.deferred {
            Some(d) => compact::split(steps, &d.keys),
            None => (steps, Vec::new()),
        };
        let deferred_rows = later.iter().map(compact::step_rows).sum::<usize>() as u64;
        let render = |steps: &[compact::Step<'_>]| {
            let mut out = Vec::new();
            for s in steps {
                compact::render(s, &mut out);
            }
            out
        };
        let (now, later) = (render(&now), render(&later));
        let at = &b.txns[0].end;
        if !self.pipelined(&now, true, at).await? {
            return Ok(None);
        }
        let mut exec = started.elapsed();
        let waited = Instant::now();
        if let Some(d) = &b.deferred {
            self.wait_committed(d.after).await;
        }
        let after_us = waited.elapsed().as_micros() as u64;
        let resumed = Instant::now();
        if !self.pipelined(&later, false, at).await? {
            return Ok(None);
        }
        exec += resumed.elapsed();
        Ok(Some(FastTimes {
            deferred_rows,
            exec_us: exec.as_micros() as u64,
            after_us,
        }))
    }

    /// Sends `statements` (after `START TRANSACTION` when `start`) as multi-statement queries
    /// of about [`MAX_PIPELINE_BYTES`], checking each statement's affected rows. `Ok(false)`
    /// when one failed or changed another number of rows.
    async fn pipelined(
        &mut self,
        statements: &[(Vec<u8>, u64)],
        start: bool,
        at: &BinlogPos,
    ) -> Result<bool, ReplayError> {
        const START: &[u8] = b"START TRANSACTION";
        let total: usize = statements.iter().map(|(s, _)| s.len() + 1).sum::<usize>() + START.len();
        let mut chunk: Vec<u8> = Vec::with_capacity(total.min(MAX_PIPELINE_BYTES + (64 << 10)));
        let mut expected: Vec<Option<u64>> = Vec::with_capacity(statements.len() + 1);
        if start {
            chunk.extend_from_slice(START);
            expected.push(None);
        }
        for (sql, n) in statements {
            if chunk.len() + sql.len() > MAX_PIPELINE_BYTES && !expected.is_empty() {
                if !self.run_pipeline(&chunk, &expected, at).await? {
                    return Ok(false);
                }
                chunk.clear();
                expected.clear();
            }
            if !chunk.is_empty() {
                chunk.push(b';');
            }
            chunk.extend_from_slice(sql);
            expected.push(Some(*n));
        }
        if expected.is_empty() {
            return Ok(true);
        }
        self.run_pipeline(&chunk, &expected, at).await
    }

    async fn run_pipeline(
        &mut self,
        sql: &[u8],
        expected: &[Option<u64>],
        pos: &BinlogPos,
    ) -> Result<bool, ReplayError> {
        let mut counts: Vec<u64> = Vec::with_capacity(expected.len());
        let outcome = async {
            let mut r = self.conn.query_iter(sql).await?;
            counts.push(r.affected_rows());
            while counts.len() < expected.len() {
                if r.next().await?.is_none() {
                    counts.push(r.affected_rows());
                }
            }
            r.drop_result().await
        }
        .await;
        match outcome {
            Ok(()) => Ok(counts
                .iter()
                .zip(expected)
                .all(|(n, e)| e.is_none_or(|e| *n == e))),
            Err(e @ mysql_async::Error::Server(_)) if classify_mysql(&e) == ErrorKind::Definite => {
                debug!(error = %e, "a pipelined statement failed: redoing the batch statement by statement");
                Ok(false)
            }
            Err(e) => Err(apply_err("a batch of row changes", pos, e)),
        }
    }

    /// Each transaction of the batch in a target transaction of its own (it is this batch's
    /// turn: everything before it is committed).
    async fn one_by_one(&mut self, b: &Batch) -> Result<(), ReplayError> {
        for t in &b.txns {
            if t.changes.is_empty() {
                continue;
            }
            self.conn
                .query_drop("START TRANSACTION")
                .await
                .map_err(|e| apply_err("START TRANSACTION", &t.end, e))?;
            let mut ap = RowApplier::new(self.cfg.conflict);
            for c in &t.changes {
                ap.apply(&mut self.conn, c, t.idem).await?;
            }
            self.commit(std::slice::from_ref(t), t).await?;
            self.skipped.fetch_add(ap.skipped, Ordering::Relaxed);
        }
        Ok(())
    }
}
