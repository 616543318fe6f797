//! One replay session (from connect to cut-over, cancel or error): the coordinator.
//!
//! It takes events from the reader task ([`super::feed`]), assembles whole source transactions,
//! decodes their rows and groups consecutive transactions into batches (closed at a size limit,
//! or as soon as the reader has nothing more in hand, so latency stays low once caught up), and
//! queues each batch on a worker ([`super::workers`]). Which transactions are serial points,
//! when a batch closes, which worker takes it and when, and which position the commits reach
//! are decided by the pure scheduler ([`super::schedule`]); this module does the I/O around it.
//! Each worker holds a bounded number of batches, the reader's queue is bounded: memory stays
//! bounded when the target is slower than the source.
//!
//! The applied position is the end of the last batch committed (batches commit in source
//! order), followed by the transactions without selected changes that came after it. Serial
//! points (DDL, tables without a row key, very large transactions, statements inside a
//! transaction, changes that cascade through foreign keys) wait until every batch is committed,
//! then run on the coordinator's own connection.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_core::chunkmap::Mark;
use ferry_core::fault;
use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::{Endpoint, Selection};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::cascade::cascading_fk;
use super::ddl::{self, DdlAction};
use super::ddl_session::{plain_time_zone, sql_mode_names};
use super::dirty;
use super::feed::{FedEvent, Feed};
use super::keys::{change_keys, has_row_key};
use super::lag::{self, pos_ge, SourceEnd};
use super::rowapply::{apply_err, server_code, Change, RowApplier};
use super::schedule::{Limits, Placement, Scheduler, TxnShape, WORKER_DEPTH};
use super::schema_cache::SchemaCache;
use super::workers::{Batch, Pool, Txn, WorkerConfig};
use super::xa;
use super::{
    checkpoint, connect_target, now_secs, AbortOnDrop, ReplayControl, ReplayOptions, Request, SessionEnd,
    State,
};
use crate::error::ReplayError;
use crate::event::{BinlogPos, EventKind, QueryData};
use crate::stream::{BinlogReader, ReaderOptions, StartPosition};

/// What the caller needs to run a session.
pub(crate) struct Session<'a> {
    src: &'a Endpoint,
    dst: &'a Endpoint,
    sel: &'a Selection,
    opts: &'a ReplayOptions,
    progress: &'a ProgressSink,
    control: &'a ReplayControl,
    server_id: u32,
    st: &'a mut State,
}

/// The source transaction being assembled.
struct Building {
    txn: Txn,
    /// Applied directly on the coordinator's connection, inside an open target transaction.
    serial: bool,
    /// The prepared half of a MariaDB XA transaction: its rows are stored, not applied
    /// ([`super::xa`]), inside the open target transaction (`serial` is set too).
    xa: Option<(crate::event::XaXid, u32)>,
}

/// What the applied position becomes once a batch in flight, or the transactions without
/// selected changes after it, are committed ([`Scheduler`]'s payload).
struct Reach {
    end: BinlogPos,
    gtid: Option<String>,
    ts: u32,
    txns: u64,
    rows: u64,
}

struct Coord<'a, 's> {
    s: &'s mut Session<'a>,
    ctl: Conn,
    cache: SchemaCache,
    feed: Feed,
    pool: Pool,
    committed_rx: watch::Receiver<u64>,
    end: Arc<Mutex<SourceEnd>>,
    cur: Option<Building>,
    open: Vec<Txn>,
    open_rows: u64,
    open_bytes: u64,
    limits: Limits,
    sched: Scheduler<Reach>,
    first_group: bool,
    /// The end of the last source group taken from the feed.
    handled_to: Option<BinlogPos>,
    holding: bool,
    last_flush: Instant,
    /// The GTID of the source group being read (for messages).
    group_gtid: Option<String>,
    /// The group being read is one `ReplayOptions::skip_gtids` contains: dropped to its end.
    skipping: bool,
    /// Continuous verification's dirty marks of the rows applied in the open serial target
    /// transaction, written with its checkpoint ([`super::dirty`]).
    serial_marks: BTreeSet<Mark>,
}

impl<'a> Session<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        src: &'a Endpoint,
        dst: &'a Endpoint,
        sel: &'a Selection,
        opts: &'a ReplayOptions,
        progress: &'a ProgressSink,
        control: &'a ReplayControl,
        server_id: u32,
        st: &'a mut State,
    ) -> Self {
        Session {
            src,
            dst,
            sel,
            opts,
            progress,
            control,
            server_id,
            st,
        }
    }

    pub(crate) async fn run(
        &mut self,
        req_rx: &mut watch::Receiver<Request>,
    ) -> Result<SessionEnd, ReplayError> {
        let mut ctl = connect_target(self.dst, self.opts.target_binlog).await?;
        if let Some(f) = &self.opts.fence {
            // A session resumed after an error checks the epoch before it reads the checkpoint
            // or opens the binlog stream (whose server id a newer owner's stream shares): a
            // newer owner may have closed this run's sessions.
            f.check(&mut ctl).await.map_err(|e| match e {
                e @ ferry_core::CoreError::Fenced { .. } => ReplayError::Fenced(e),
                e => ReplayError::TargetConnect(e),
            })?;
            f.register(&mut ctl).await;
        }
        let plan = checkpoint::plan_start(&mut ctl, &self.opts.job_key, self.opts.start.as_ref()).await?;
        info!(start = %plan.start, resumed = plan.resumed, idempotent_until = ?plan.idempotent_until, workers = self.opts.workers, "replay session starts");
        if self.st.start.is_none() {
            self.st.start = Some(plan.start.clone());
        }
        self.st.applied = Some(plan.start.clone());
        self.st.flushed = Some(plan.start.clone());
        if plan.gtid.is_some() {
            self.st.applied_gtid = plan.gtid.clone();
        }
        self.st.idempotent_until = plan.idempotent_until.clone();
        if let Some(u) = &plan.idempotent_until {
            (self.progress)(ProgressEvent::InconsistentUntil {
                position: u.to_string(),
            });
        }
        if let (Some(stop), None) = (&self.opts.stop_at, &self.st.cutover) {
            info!(target = %stop, "applying up to a given position, then completing");
            self.st.cutover = Some(stop.clone());
        }

        // The source's end, polled in the background for lag and readiness.
        let end = Arc::new(Mutex::new(SourceEnd::default()));
        let poller = {
            let end = end.clone();
            let src = self.src.clone();
            tokio::spawn(async move {
                let mut conn: Option<Conn> = None;
                loop {
                    if conn.is_none() {
                        conn = src.connect(Vec::new()).await.ok();
                    }
                    if let Some(c) = conn.as_mut() {
                        // A source that stopped answering must not hold the poller: the end
                        // then goes stale and the lag report stops trusting it.
                        match tokio::time::timeout(lag::END_MAX_AGE, lag::source_end(c)).await {
                            Ok(Ok(e)) => {
                                if let Ok(mut g) = end.lock() {
                                    *g = e;
                                }
                            }
                            Ok(Err(e)) => {
                                debug!(error = %e, "reading the source's binlog end");
                                conn = None;
                            }
                            Err(_) => {
                                debug!("reading the source's binlog end: no answer");
                                conn = None;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        let _abort = AbortOnDrop(poller);

        let reader_opts = ReaderOptions {
            heartbeat: self.opts.heartbeat,
            start_gtid: plan.gtid_seed.clone(),
            ..ReaderOptions::default()
        };
        let reader = BinlogReader::open_with(
            self.src,
            self.server_id,
            StartPosition::FilePos(plan.start.clone()),
            reader_opts,
        )
        .await?;
        let feed = Feed::spawn(reader, self.opts.read_ahead_events);
        let pool = Pool::start(
            self.dst,
            self.opts.workers,
            WORKER_DEPTH,
            WorkerConfig {
                job_key: self.opts.job_key.clone(),
                conflict: self.opts.conflict,
                target_binlog: self.opts.target_binlog,
                dirty: self.opts.dirty.clone(),
                fence: self.opts.fence.clone(),
            },
            self.st.skipped.clone(),
        )
        .await?;
        let committed_rx = pool.committed.subscribe();
        let n = pool.len();
        let cache = SchemaCache::with_source(self.src, self.st.excluded.clone());
        let limits = Limits::new(
            self.opts.batch_transactions,
            self.opts.batch_rows,
            self.opts.batch_bytes,
        );
        let mut c = Coord {
            s: self,
            ctl,
            cache,
            feed,
            pool,
            committed_rx,
            end,
            cur: None,
            open: Vec::new(),
            open_rows: 0,
            open_bytes: 0,
            limits,
            sched: Scheduler::new(n, WORKER_DEPTH),
            first_group: true,
            handled_to: None,
            holding: false,
            last_flush: Instant::now(),
            group_gtid: None,
            skipping: false,
            serial_marks: BTreeSet::new(),
        };
        let r = c.run(req_rx).await;
        if let Err(e) = &r {
            c.note_lock_conflict(e);
        }
        r
    }
}

impl Coord<'_, '_> {
    async fn run(&mut self, req_rx: &mut watch::Receiver<Request>) -> Result<SessionEnd, ReplayError> {
        let mut tick = tokio::time::interval(self.s.opts.progress_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pause_rx = self.s.control.pause.subscribe();

        // A request made before this session.
        let pending = *req_rx.borrow_and_update();
        if pending != Request::Run {
            if let Some(end) = self.on_request(pending).await? {
                return Ok(end);
            }
        }
        loop {
            self.update_hold().await?;
            let cut_reached = self.cutover_read();
            let can_read = !self.holding && !cut_reached;
            tokio::select! {
                biased;
                changed = req_rx.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let r = *req_rx.borrow_and_update();
                    if let Some(end) = self.on_request(r).await? {
                        return Ok(end);
                    }
                }
                e = self.pool.errors.recv() => {
                    return Err(e.unwrap_or_else(|| ReplayError::Disconnected {
                        position: "-".into(),
                        reason: "the apply workers stopped".into(),
                    }));
                }
                _ = self.committed_rx.changed() => {
                    let c = *self.committed_rx.borrow_and_update();
                    self.process_committed(c);
                }
                _ = pause_rx.changed() => {
                    pause_rx.borrow_and_update();
                }
                _ = tick.tick() => {
                    self.close_batch().await?;
                    if self.cur.is_none() && self.idle() && self.last_flush.elapsed() >= Duration::from_secs(1) {
                        self.flush().await?;
                        self.last_flush = Instant::now();
                    }
                    self.report();
                }
                fed = self.feed.recv(), if can_read => {
                    let f = fed?;
                    self.on_event(f).await?;
                    if self.feed.is_empty() || self.cutover_read() {
                        self.close_batch().await?;
                    }
                }
            }
            if let (Some(t), Some(a)) = (&self.s.st.cutover, &self.s.st.applied) {
                if self.cur.is_none() && self.idle() && pos_ge(a, t) {
                    self.flush().await?;
                    self.report();
                    let prepared = xa::pending(&mut self.ctl, &self.s.opts.job_key).await;
                    if !prepared.is_empty() {
                        warn!(
                            xids = %prepared.join(" "),
                            "cut-over with XA transactions prepared on the source and not completed: their rows \
                             are not on the target (the source has not committed them either); commit them \
                             on the target's side yourself if the source commits them later"
                        );
                    }
                    return Ok(SessionEnd::Completed);
                }
            }
        }
    }

    /// True when completion was requested and every group up to its position has been read.
    fn cutover_read(&self) -> bool {
        match (&self.s.st.cutover, &self.handled_to) {
            (Some(t), Some(h)) => self.cur.is_none() && pos_ge(h, t),
            (Some(t), None) => self.s.st.applied.as_ref().is_some_and(|a| pos_ge(a, t)),
            _ => false,
        }
    }

    /// Enters or leaves the paused hold (at a transaction boundary, everything committed).
    async fn update_hold(&mut self) -> Result<(), ReplayError> {
        let want = self.s.control.pause_requested();
        if want && self.cur.is_none() {
            if !self.holding {
                self.drain().await?;
                self.flush().await?;
                self.last_flush = Instant::now();
                self.holding = true;
                self.report();
                info!(position = ?self.s.st.applied.as_ref().map(|p| p.to_string()), "apply paused");
                self.s.control.set_holding(true);
            }
        } else if self.holding {
            self.holding = false;
            self.s.control.set_holding(false);
            info!("apply resumed");
        }
        Ok(())
    }

    /// After a lock wait or deadlock between workers: serial until past the current read point.
    fn note_lock_conflict(&mut self, e: &ReplayError) {
        if let ReplayError::Apply { source, .. } = e {
            if server_code(source).is_some_and(ferry_core::retry::is_lock_conflict) {
                let at = self.feed.read_position();
                warn!(until = %at, "a lock wait between apply workers: resuming serially up to the read position");
                self.s.st.serial_until = Some(at);
            }
        }
    }

    fn serial_mode(&mut self) -> bool {
        let Some(u) = &self.s.st.serial_until else {
            return false;
        };
        if self.s.st.applied.as_ref().is_some_and(|a| pos_ge(a, u)) {
            self.s.st.serial_until = None;
            return false;
        }
        true
    }

    /// Handles complete (reads the source's end once) and cancel requests.
    async fn on_request(&mut self, r: Request) -> Result<Option<SessionEnd>, ReplayError> {
        match r {
            Request::Run => Ok(None),
            Request::Cancel => {
                // The open batch and the transaction in hand are dropped (replayed next time);
                // the batches in flight are committed, then the position is written.
                if let Some(b) = self.cur.take() {
                    if b.serial {
                        let _ = self.ctl.query_drop("ROLLBACK").await;
                    }
                }
                self.open.clear();
                self.open_rows = 0;
                self.open_bytes = 0;
                self.wait_all().await?;
                self.flush().await?;
                Ok(Some(SessionEnd::Cancelled))
            }
            Request::Complete => {
                if self.s.st.cutover.is_none() {
                    let mut c = self
                        .s
                        .src
                        .connect(Vec::new())
                        .await
                        .map_err(ReplayError::Connect)?;
                    let end = lag::master_status(&mut c)
                        .await?
                        .ok_or_else(|| ReplayError::Unsupported {
                            what: "the source reports no binlog (SHOW MASTER STATUS is empty)".into(),
                            position: "cut-over".into(),
                        })?;
                    let _ = c.disconnect().await;
                    info!(target = %end, "completion requested: applying up to the source's current end");
                    self.s.st.cutover = Some(end);
                }
                Ok(None)
            }
        }
    }

    fn idle(&self) -> bool {
        self.open.is_empty() && self.sched.idle()
    }

    /// Moves the applied position over everything committed up to batch `c`.
    fn process_committed(&mut self, c: u64) {
        for r in self.sched.committed(c) {
            let p = r.payload;
            let st = &mut *self.s.st;
            st.applied = Some(p.end.clone());
            if p.gtid.is_some() {
                st.applied_gtid = p.gtid;
            }
            if p.ts > 0 {
                st.applied_ts = p.ts;
            }
            if r.batch.is_some() {
                st.flushed = Some(p.end);
                st.transactions += p.txns;
                st.rows += p.rows;
            }
        }
    }

    /// Waits for the next commit (or a worker's error).
    async fn wait_commit(&mut self) -> Result<(), ReplayError> {
        tokio::select! {
            biased;
            e = self.pool.errors.recv() => {
                Err(e.unwrap_or_else(|| ReplayError::Disconnected {
                    position: "-".into(),
                    reason: "the apply workers stopped".into(),
                }))
            }
            r = self.committed_rx.changed() => {
                if r.is_err() {
                    return Err(ReplayError::Disconnected { position: "-".into(), reason: "the apply workers stopped".into() });
                }
                let c = *self.committed_rx.borrow_and_update();
                self.process_committed(c);
                Ok(())
            }
        }
    }

    /// Waits until every dispatched batch is committed.
    async fn wait_all(&mut self) -> Result<(), ReplayError> {
        loop {
            let c = self.pool.committed();
            self.process_committed(c);
            if self.sched.idle() {
                return Ok(());
            }
            self.wait_commit().await?;
        }
    }

    /// Dispatches the open batch and waits until everything is committed.
    async fn drain(&mut self) -> Result<(), ReplayError> {
        self.close_batch().await?;
        self.wait_all().await
    }

    fn idempotent(&self, at: &BinlogPos) -> bool {
        self.s
            .st
            .idempotent_until
            .as_ref()
            .is_some_and(|u| !pos_ge(at, u))
    }

    /// Closes the open batch: a position to reach, or a batch for a worker.
    async fn close_batch(&mut self) -> Result<(), ReplayError> {
        if self.open.is_empty() {
            return Ok(());
        }
        let txns = std::mem::take(&mut self.open);
        self.open_rows = 0;
        self.open_bytes = 0;
        if txns.iter().all(|t| t.changes.is_empty()) {
            if let Some(last) = txns.last() {
                self.sched.position(Reach {
                    end: last.end.clone(),
                    gtid: last.gtid.clone(),
                    ts: last.ts,
                    txns: 0,
                    rows: 0,
                });
            }
            let c = self.pool.committed();
            self.process_committed(c);
            return Ok(());
        }
        self.dispatch(txns).await
    }

    /// Queues a closed batch on the worker the scheduler names, waiting for commits until it
    /// names one.
    async fn dispatch(&mut self, txns: Vec<Txn>) -> Result<(), ReplayError> {
        let mut keys = Vec::new();
        for t in &txns {
            for ch in &t.changes {
                change_keys(ch, &mut keys);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let t0 = Instant::now();
        let (worker, deferred) = loop {
            let c = self.pool.committed();
            self.process_committed(c);
            let serial = self.serial_mode();
            match self.sched.place(&keys, c, serial) {
                Placement::Worker(w) => break (w, None),
                Placement::Split(w, d) => break (w, Some(d)),
                Placement::Wait => self.wait_commit().await?,
            }
        };
        let (txn_count, rows) = txns
            .iter()
            .filter(|t| !t.changes.is_empty())
            .fold((0u64, 0u64), |(n, r), t| (n + 1, r + t.rows));
        let Some(last) = txns.last() else { return Ok(()) };
        let reach = Reach {
            end: last.end.clone(),
            gtid: last.gtid.clone(),
            ts: last.ts,
            txns: txn_count,
            rows,
        };
        let no = self.sched.dispatch(&keys, worker, reach);
        debug!(
            batch = no,
            worker,
            txns = txns.len(),
            rows,
            keys = keys.len(),
            deferred_keys = deferred.as_ref().map_or(0, |d| d.keys.len()),
            after = deferred.as_ref().map_or(0, |d| d.after),
            place_wait_us = t0.elapsed().as_micros() as u64,
            "batch dispatched"
        );
        self.pool.send(worker, Batch { no, txns, deferred }).await
    }

    /// Adds a finished source transaction to the open batch.
    async fn push_txn(&mut self, t: Txn) -> Result<(), ReplayError> {
        self.open_rows += t.rows;
        self.open_bytes += t.bytes;
        self.open.push(t);
        if self
            .limits
            .reached(self.open.len(), self.open_rows, self.open_bytes)
        {
            self.close_batch().await?;
        }
        Ok(())
    }

    /// A group without selected changes ended here.
    async fn empty_group(
        &mut self,
        end: BinlogPos,
        gtid: Option<String>,
        ts: u32,
    ) -> Result<(), ReplayError> {
        self.push_txn(Txn {
            changes: Vec::new(),
            rows: 0,
            bytes: 0,
            idem: false,
            end,
            gtid,
            ts,
        })
        .await
    }

    /// Switches the transaction in hand to the serial path: waits for the workers, opens a
    /// target transaction on the coordinator's connection and applies what was collected.
    async fn go_serial(&mut self, at: &BinlogPos) -> Result<(), ReplayError> {
        self.drain().await?;
        let Some(b) = self.cur.as_mut() else { return Ok(()) };
        if b.serial {
            return Ok(());
        }
        self.ctl
            .query_drop("START TRANSACTION")
            .await
            .map_err(|e| apply_err("START TRANSACTION", at, e))?;
        b.serial = true;
        let changes = std::mem::take(&mut b.txn.changes);
        let idem = b.txn.idem;
        self.serial_marks.clear();
        let mut ap = RowApplier::new(self.s.opts.conflict);
        for ch in &changes {
            ap.apply(&mut self.ctl, ch, idem).await?;
            self.mark(ch);
        }
        self.s.st.skipped.fetch_add(ap.skipped, Ordering::Relaxed);
        Ok(())
    }

    /// Records the dirty marks of a change applied in the open serial transaction.
    fn mark(&mut self, c: &super::rowapply::Change) {
        if let Some(tr) = &self.s.opts.dirty {
            dirty::change_marks(tr, c, &mut self.serial_marks);
        }
    }

    /// The serial transaction's marks as a statement prefix (empty without marks).
    fn take_marks(&mut self) -> String {
        let m = std::mem::take(&mut self.serial_marks);
        dirty::commit_prefix(&self.s.opts.job_key, &m)
    }

    /// Before a DDL: the chunks of the tracked tables it touches are planned again by the
    /// verifier (the mark is written first, so a crash between it and the DDL only costs a
    /// re-plan), and the tracker forgets them until then. Other tables keep their digests.
    async fn replan_touched(
        &mut self,
        touched: &[(String, String)],
        at: &BinlogPos,
    ) -> Result<(), ReplayError> {
        let Some(tr) = self.s.opts.dirty.clone() else {
            return Ok(());
        };
        let marks = dirty::replan_touched(&tr, touched);
        let Some(sql) = ferry_core::chunkmap::marks_sql(&self.s.opts.job_key, &marks) else {
            return Ok(());
        };
        self.ctl
            .query_drop(sql)
            .await
            .map_err(|e| apply_err("marking the verified tables for a new chunk plan", at, e))?;
        for (db, t, _, _) in &marks {
            tr.remove(db, t);
        }
        Ok(())
    }

    fn new_building(&self, at: &BinlogPos) -> Building {
        Building {
            txn: Txn {
                changes: Vec::new(),
                rows: 0,
                bytes: 0,
                idem: self.idempotent(at),
                end: at.clone(),
                gtid: None,
                ts: 0,
            },
            serial: false,
            xa: None,
        }
    }

    async fn on_event(&mut self, f: FedEvent) -> Result<(), ReplayError> {
        let FedEvent { ev, gtid } = f;
        self.s.st.events += 1;
        // A transaction the GTID start contains (the target holds it): read to its end, applied
        // as an empty group (the position moves, nothing is written).
        if self.skipping {
            if ev.ends_group() {
                self.skipping = false;
                self.first_group = false;
                self.handled_to = Some(ev.pos.clone());
                self.empty_group(ev.pos.clone(), gtid, ev.timestamp).await?;
            }
            return Ok(());
        }
        if let (EventKind::Begin { gtid: Some(g), .. }, Some(skip)) = (&ev.kind, &self.s.opts.skip_gtids) {
            if crate::start::gtid_in(skip, g) {
                debug!(gtid = %g, "transaction held by Ferry.StartPosition.Gtid: not replayed");
                self.skipping = true;
                return Ok(());
            }
        }
        match ev.kind {
            EventKind::Begin {
                info, gtid: ref g, ..
            } => {
                self.group_gtid = g.as_ref().map(|g| g.to_string());
                if let Some(b) = self.cur.take() {
                    // Cannot happen with a consistent stream; never commit a partial group.
                    if b.serial {
                        let _ = self.ctl.query_drop("ROLLBACK").await;
                    }
                }
                let mut b = self.new_building(&ev.pos);
                if let Some(xid) = info.xa_prepare {
                    // A serial point: its rows are stored in the target transaction that moves
                    // the checkpoint past the XA PREPARE.
                    self.drain().await?;
                    xa::ensure_table(&mut self.ctl, &ev.pos).await?;
                    self.ctl
                        .query_drop("START TRANSACTION")
                        .await
                        .map_err(|e| apply_err("START TRANSACTION", &ev.pos, e))?;
                    xa::store(
                        &mut self.ctl,
                        &self.s.opts.job_key,
                        &xid,
                        0,
                        vec![u8::from(b.txn.idem)],
                        &ev.pos,
                    )
                    .await?;
                    b.serial = true;
                    b.xa = Some((xid, 0));
                    self.serial_marks.clear();
                }
                self.cur = Some(b);
            }
            EventKind::Rows(rows) => {
                let Some(info) = self
                    .cache
                    .get(&mut self.ctl, self.s.sel, &rows.db, &rows.table)
                    .await?
                else {
                    return Ok(());
                };
                let (pairs, json_diffs) = super::json_diff_apply::decode(&info, &rows)?;
                let n = pairs.len() as u64;
                let bytes = image_bytes(&pairs);
                self.s.opts.throttle.acquire(n, 0).await;
                if self.cur.is_none() {
                    self.cur = Some(self.new_building(&ev.pos));
                }
                let keyed = has_row_key(&info);
                let cascade =
                    cascading_fk(&info.referenced_by, rows.kind, rows.fk_checks, &pairs).map(|fk| {
                        format!(
                            "{} (ON DELETE {}, ON UPDATE {})",
                            fk.name,
                            fk.on_delete.sql(),
                            fk.on_update.sql()
                        )
                    });
                let (before_cols, after_cols) = match partial_images(&info, &rows, self.group_gtid.as_deref())
                {
                    Ok(c) => c,
                    Err(e) => return Err(self.stop_before_group(e).await),
                };
                // Conflict keys of a partial image cover only its row key: a table with other
                // unique keys is then a serial point (the images may lack those keys' values).
                let partial_serial = (before_cols.is_some() || after_cols.is_some())
                    && usize::from(info.schema.primary_key.is_some()) + info.schema.unique_keys.len() > 1;
                let change = Change {
                    info,
                    kind: rows.kind,
                    pos: rows.position.clone(),
                    pairs,
                    cascade,
                    before_cols,
                    after_cols,
                    json_diffs,
                };
                if let Err(e) = super::versioned::check(&change) {
                    return Err(self.stop_before_group(e).await);
                }
                if let Some(b) = self.cur.as_mut() {
                    if let Some((xid, seq)) = b.xa.as_mut() {
                        if change.partial() {
                            return Err(ReplayError::Unsupported {
                                what: format!(
                                    "a partial row image (binlog_row_image MINIMAL/NOBLOB, or \
                                     binlog_row_value_options=PARTIAL_JSON) of {} inside an XA \
                                     transaction: set binlog_row_image=FULL and binlog_row_value_options='' \
                                     on the source",
                                    change.info.target_name
                                ),
                                position: ev.pos.to_string(),
                            });
                        }
                        *seq += 1;
                        b.txn.rows += n;
                        let stored = xa::StoredChange {
                            db: rows.db.clone(),
                            table: rows.table.clone(),
                            kind: rows.kind,
                            fk_checks: rows.fk_checks,
                            pos: rows.position.clone(),
                            pairs: change.pairs,
                        };
                        let data = xa::encode_change(&stored);
                        xa::store(&mut self.ctl, &self.s.opts.job_key, xid, *seq, data, &ev.pos).await?;
                        return Ok(());
                    }
                }
                // Long values are sent as statement parameters, row by row, on the serial path.
                // Versioned tables' changes run statement by statement at the source's time (`versioned`).
                let serial_point = change.cascade.is_some()
                    || partial_serial
                    || change.has_long_values()
                    || change.info.schema.system_time.is_some();
                let (serial, idem, total, total_bytes) = {
                    let Some(b) = self.cur.as_mut() else { return Ok(()) };
                    b.txn.rows += n;
                    b.txn.bytes += bytes;
                    (b.serial, b.txn.idem, b.txn.rows, b.txn.bytes)
                };
                if serial {
                    let mut ap = RowApplier::new(self.s.opts.conflict);
                    ap.apply(&mut self.ctl, &change, idem).await?;
                    self.mark(&change);
                    self.s.st.skipped.fetch_add(ap.skipped, Ordering::Relaxed);
                    return Ok(());
                }
                if let Some(b) = self.cur.as_mut() {
                    b.txn.changes.push(change);
                }
                // A cascade touches child rows the binlog does not name; partial images and long
                // values are applied row by row: serial points, like keyless and large transactions.
                let shape = TxnShape {
                    rows: total,
                    bytes: total_bytes,
                    keyless: !keyed,
                    serial_change: serial_point,
                };
                if shape.serial_point() {
                    self.go_serial(&ev.pos).await?;
                }
            }
            EventKind::Query(q) => {
                let sql = q.sql_text().into_owned();
                let mode = ferry_core::lexer::LexMode {
                    ansi_quotes: q.sql_mode.is_some_and(|m| m & (1 << 2) != 0),
                    no_backslash_escapes: q.sql_mode.is_some_and(|m| m & (1 << 20) != 0),
                };
                if let Some((db, table)) = ddl::dml_on_selection(&sql, &q.db, self.s.sel, mode) {
                    let g = self.group_gtid.clone();
                    return Err(self.statement_dml(&sql, &db, &table, &ev.pos, g.as_deref()).await);
                }
                match ddl::plan_mode(&sql, &q.db, self.s.sel, self.s.opts.ddl_policy, mode) {
                    DdlAction::Refuse(what) => {
                        let e = ReplayError::Unsupported {
                            what,
                            position: ev.pos.to_string(),
                        };
                        return Err(self.stop_before_group(e).await);
                    }
                    DdlAction::Skip(reason) => {
                        if q.ends_group {
                            debug!(%reason, sql = %sql, "statement not replayed");
                            // a DDL left off the target may still change the source's rows
                            self.cache.invalidate();
                            if let Some(b) = self.cur.take() {
                                if b.serial {
                                    let _ = self.ctl.query_drop("ROLLBACK").await;
                                }
                            }
                            self.first_group = false;
                            self.handled_to = Some(ev.pos.clone());
                            self.empty_group(ev.pos.clone(), gtid, ev.timestamp).await?;
                        }
                    }
                    DdlAction::Apply {
                        sql: mapped,
                        use_db,
                        summary,
                        tables,
                        ..
                    } => {
                        let in_txn = self
                            .cur
                            .as_ref()
                            .is_some_and(|b| b.serial || !b.txn.changes.is_empty());
                        if in_txn {
                            warn!(sql = %summary, "DDL inside a transaction: the open target transaction is committed by it");
                            self.go_serial(&ev.pos).await?;
                        } else {
                            self.drain().await?;
                        }
                        if let Some(db) = &use_db {
                            let _ = self
                                .ctl
                                .query_drop(format!("USE {}", ferry_core::sql::quote_ident(db)))
                                .await;
                        }
                        self.replan_touched(&tables, &ev.pos).await?;
                        if let Some(f) = &self.s.opts.fence {
                            // A DDL commits on its own and cannot carry the epoch check: the
                            // check comes right before it (its checkpoint is fenced as usual).
                            f.check(&mut self.ctl).await.map_err(ReplayError::Fenced)?;
                        }
                        let previous = enter_ddl_session(&mut self.ctl, &q, &ev.pos).await?;
                        let r = self.ctl.query_drop(mapped.as_str()).await;
                        if r.is_ok() || self.first_group {
                            leave_ddl_session(&mut self.ctl, previous, &ev.pos).await?;
                        }
                        match r {
                            Ok(()) => {}
                            Err(e)
                                if self.first_group
                                    && server_code(&e).is_some_and(ddl::already_applied_error) =>
                            {
                                warn!(sql = %summary, error = %e, "DDL already applied before the restart: skipped");
                            }
                            Err(e) => {
                                return Err(apply_err(format!("DDL `{summary}`"), &ev.pos, e));
                            }
                        }
                        info!(sql = %summary, "DDL applied");
                        fault::point(fault::REPLAY_DDL_APPLIED)
                            .map_err(|e| apply_err(format!("DDL `{summary}`"), &ev.pos, e))?;
                        self.s.st.ddl += 1;
                        self.cache.invalidate();
                        (self.s.progress)(ProgressEvent::ObjectCreated {
                            kind: "ddl".into(),
                            name: summary,
                        });
                        if q.ends_group {
                            self.cur = None;
                            self.first_group = false;
                            self.handled_to = Some(ev.pos.clone());
                            let st = &mut *self.s.st;
                            st.applied = Some(ev.pos.clone());
                            if gtid.is_some() {
                                st.applied_gtid = gtid;
                            }
                            st.applied_ts = ev.timestamp;
                            self.flush().await?;
                        }
                    }
                }
            }
            EventKind::Commit { .. } => {
                self.first_group = false;
                self.handled_to = Some(ev.pos.clone());
                match self.cur.take() {
                    Some(b) if b.serial => {
                        let fence = self.s.opts.fence.as_ref();
                        let cp = checkpoint::update_sql(
                            &self.s.opts.job_key,
                            fence,
                            &ev.pos,
                            gtid.as_deref(),
                            ev.timestamp,
                        );
                        let what = "the replay checkpoint and COMMIT";
                        let marks = self.take_marks();
                        fault::point(fault::REPLAY_BEFORE_COMMIT).map_err(|e| apply_err(what, &ev.pos, e))?;
                        let sql = format!("{marks}{cp}; COMMIT");
                        checkpoint::commit(&mut self.ctl, fence, sql, what, &ev.pos).await?;
                        fault::point(fault::REPLAY_AFTER_COMMIT).map_err(|e| apply_err(what, &ev.pos, e))?;
                        let st = &mut *self.s.st;
                        st.transactions += 1;
                        st.rows += b.txn.rows;
                        st.flushed = Some(ev.pos.clone());
                        st.applied = Some(ev.pos.clone());
                        st.applied_ts = ev.timestamp;
                        if gtid.is_some() {
                            st.applied_gtid = gtid;
                        }
                    }
                    Some(b) if !b.txn.changes.is_empty() => {
                        let mut t = b.txn;
                        t.end = ev.pos.clone();
                        t.gtid = gtid;
                        t.ts = ev.timestamp;
                        self.push_txn(t).await?;
                    }
                    _ => self.empty_group(ev.pos.clone(), gtid, ev.timestamp).await?,
                }
            }
            EventKind::Rollback { .. } => {
                if let Some(b) = self.cur.take() {
                    if b.serial {
                        self.ctl
                            .query_drop("ROLLBACK")
                            .await
                            .map_err(|e| apply_err("ROLLBACK", &ev.pos, e))?;
                    }
                }
                self.first_group = false;
                self.handled_to = Some(ev.pos.clone());
                self.empty_group(ev.pos.clone(), gtid, ev.timestamp).await?;
            }
            EventKind::XaPrepare { xid, .. } => {
                self.first_group = false;
                self.handled_to = Some(ev.pos.clone());
                match self.cur.take() {
                    Some(Building { xa: Some((x, _)), .. }) if x == xid => {
                        self.commit_serial(&ev.pos, gtid, ev.timestamp, 0, "the prepared XA transaction")
                            .await?;
                        info!(xid = %xid, "XA transaction prepared on the source: its rows are kept until it completes");
                    }
                    other => {
                        if other.is_some_and(|b| b.serial) {
                            let _ = self.ctl.query_drop("ROLLBACK").await;
                        }
                        return Err(ReplayError::Corrupt {
                            position: ev.pos.to_string(),
                            message: format!("XA PREPARE of {xid} without the group that began it"),
                        });
                    }
                }
            }
            EventKind::XaComplete { xid, commit, .. } => {
                self.first_group = false;
                self.handled_to = Some(ev.pos.clone());
                self.cur = None;
                self.drain().await?;
                let rows = self.complete_xa(&xid, commit, &ev.pos).await?;
                let what = if commit { "XA COMMIT" } else { "XA ROLLBACK" };
                self.commit_serial(&ev.pos, gtid, ev.timestamp, rows, what)
                    .await?;
                if commit {
                    self.s.st.transactions += 1;
                }
            }
            EventKind::Heartbeat | EventKind::Rotate { .. } => {
                if self.cur.is_none() {
                    self.close_batch().await?;
                    if self.idle() {
                        let st = &mut *self.s.st;
                        let moved = st.applied.as_ref().is_none_or(|a| pos_ge(&ev.pos, a));
                        if moved && !ev.pos.file.is_empty() {
                            st.applied = Some(ev.pos.clone());
                        }
                        if matches!(ev.kind, EventKind::Heartbeat) {
                            // The source had nothing more to send: caught up at this moment.
                            st.caught_up_at = now_secs();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the checkpoint for a group applied on the coordinator's connection and commits.
    async fn commit_serial(
        &mut self,
        at: &BinlogPos,
        gtid: Option<String>,
        ts: u32,
        rows: u64,
        what: &str,
    ) -> Result<(), ReplayError> {
        let fence = self.s.opts.fence.as_ref();
        let cp = checkpoint::update_sql(&self.s.opts.job_key, fence, at, gtid.as_deref(), ts);
        let what = format!("{what}, the replay checkpoint and COMMIT");
        let marks = self.take_marks();
        fault::point(fault::REPLAY_BEFORE_COMMIT).map_err(|e| apply_err(what.as_str(), at, e))?;
        let sql = format!("{marks}{cp}; COMMIT");
        checkpoint::commit(&mut self.ctl, fence, sql, &what, at).await?;
        fault::point(fault::REPLAY_AFTER_COMMIT).map_err(|e| apply_err(what.as_str(), at, e))?;
        let st = &mut *self.s.st;
        st.rows += rows;
        st.flushed = Some(at.clone());
        st.applied = Some(at.clone());
        st.applied_ts = ts;
        if gtid.is_some() {
            st.applied_gtid = gtid;
        }
        Ok(())
    }

    /// Opens a target transaction and applies (`commit`) or drops the stored rows of a prepared
    /// XA transaction ([`super::xa`]); the caller writes the checkpoint and commits. Returns the
    /// rows applied.
    async fn complete_xa(
        &mut self,
        xid: &crate::event::XaXid,
        commit: bool,
        at: &BinlogPos,
    ) -> Result<u64, ReplayError> {
        xa::ensure_table(&mut self.ctl, at).await?;
        self.ctl
            .query_drop("START TRANSACTION")
            .await
            .map_err(|e| apply_err("START TRANSACTION", at, e))?;
        self.serial_marks.clear();
        let job = self.s.opts.job_key.clone();
        let marker = xa::marker(&mut self.ctl, &job, xid, at).await?;
        let mut applied = 0u64;
        match (marker, commit) {
            (None, true) => {
                let _ = self.ctl.query_drop("ROLLBACK").await;
                return Err(ReplayError::Unsupported {
                    what: format!(
                        "XA COMMIT {xid}: the transaction was prepared (XA PREPARE) before the position \
                         this replay started from, so its rows are neither in the full load's snapshot \
                         (they were not committed then) nor in the replayed binlog. Restart the job \
                         (a new snapshot) now that it is committed, and complete or roll back prepared \
                         XA transactions (XA RECOVER lists them) before starting a job"
                    ),
                    position: at.to_string(),
                });
            }
            (None, false) => {}
            (Some(idem), true) => {
                let idem = idem || self.idempotent(at);
                let mut after = 0u32;
                let mut ap = RowApplier::new(self.s.opts.conflict);
                loop {
                    let page = xa::page(&mut self.ctl, &job, xid, after, 256, at).await?;
                    let Some((last, _)) = page.last() else { break };
                    after = *last;
                    for (seq, data) in page {
                        let stored = xa::decode_change(&data).map_err(|m| ReplayError::Corrupt {
                            position: at.to_string(),
                            message: format!(
                                "row {seq} of the prepared XA transaction {xid} stored in ferry_meta.replay_xa: {m}"
                            ),
                        })?;
                        let Some(info) = self
                            .cache
                            .get(&mut self.ctl, self.s.sel, &stored.db, &stored.table)
                            .await?
                        else {
                            continue;
                        };
                        applied += stored.pairs.len() as u64;
                        let change = xa::to_change(stored, info);
                        ap.apply(&mut self.ctl, &change, idem).await?;
                        self.mark(&change);
                    }
                }
                self.s.st.skipped.fetch_add(ap.skipped, Ordering::Relaxed);
            }
            (Some(_), false) => {}
        }
        xa::forget(&mut self.ctl, &job, xid, at).await?;
        Ok(applied)
    }

    /// A data change on a selected table logged as a statement: the replay stops with a
    /// definite error after committing every transaction before the one that holds it (that
    /// one is dropped whole), so the target holds exactly the source's history up to it.
    async fn statement_dml(
        &mut self,
        sql: &str,
        db: &str,
        table: &str,
        pos: &BinlogPos,
        gtid: Option<&str>,
    ) -> ReplayError {
        let mut text: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() > 200 {
            text = text.chars().take(200).collect::<String>() + "…";
        }
        let e = ReplayError::Unsupported {
            what: format!(
                "QUERY_EVENT ending at {pos}{}: a data change on the selected table {db}.{table} logged as a \
                 statement (`{text}`), from a source session with binlog_format=STATEMENT or MIXED. Ferry \
                 replays row images only and cannot apply it exactly; the target holds every transaction \
                 before it. Set binlog_format=ROW on the source (globally, and for every session: a \
                 session-level SET binlog_format overrides it), then run the job again from a new full \
                 load (the target now lacks this change)",
                gtid.map(|g| format!(" (GTID {g})")).unwrap_or_default()
            ),
            position: pos.to_string(),
        };
        self.stop_before_group(e).await
    }

    /// Stops the replay with `e` (a definite refusal inside the current source group) after
    /// committing every transaction before that group; the group itself is dropped whole.
    async fn stop_before_group(&mut self, e: ReplayError) -> ReplayError {
        if let Some(b) = self.cur.take() {
            if b.serial {
                let _ = self.ctl.query_drop("ROLLBACK").await;
            }
        }
        if let Err(d) = self.drain().await {
            return d;
        }
        if let Err(d) = self.flush().await {
            return d;
        }
        e
    }

    /// Writes the in-memory position when it moved past the last checkpoint. Only while no
    /// batch is in flight and no target transaction is open (a worker's commit writes it too).
    async fn flush(&mut self) -> Result<(), ReplayError> {
        if !self.sched.idle() || self.cur.as_ref().is_some_and(|b| b.serial) {
            return Ok(());
        }
        let Some(a) = self.s.st.applied.clone() else {
            return Ok(());
        };
        if self.s.st.flushed.as_ref() == Some(&a) {
            return Ok(());
        }
        let fence = self.s.opts.fence.as_ref();
        let mut sql = checkpoint::update_sql(
            &self.s.opts.job_key,
            fence,
            &a,
            self.s.st.applied_gtid.as_deref(),
            self.s.st.applied_ts,
        );
        if fence.is_some() {
            // The epoch check holds its lock until COMMIT: a transaction of its own.
            sql = format!("START TRANSACTION; {sql}; COMMIT");
        }
        checkpoint::commit(&mut self.ctl, fence, sql, "the replay checkpoint", &a).await?;
        self.s.st.flushed = Some(a);
        Ok(())
    }

    fn report(&mut self) {
        let end = self.end.lock().map(|g| g.clone()).unwrap_or_default();
        let in_group = self.cur.is_some() || !self.idle();
        let read_pos = self.feed.read_position();
        let st = &mut *self.s.st;
        let now = now_secs();
        let applied = st.applied.clone().unwrap_or_else(|| read_pos.clone());
        // Only an end read just now proves anything: a stale one (the source stopped
        // answering) would make a replay that is behind look caught up.
        let fresh = end.fresh();
        let caught_up = !in_group && fresh && end.end.as_ref().is_some_and(|e| pos_ge(&applied, e));
        if caught_up {
            st.caught_up_at = now;
        }
        let lag_seconds = lag::seconds_behind(now, caught_up, st.caught_up_at, st.applied_ts, st.started_at);
        if fresh {
            st.last_lag_bytes = end.bytes_behind(&applied);
        }
        let lag_bytes = st.last_lag_bytes;
        if st.recover_if_progressing(caught_up) {
            info!(position = %applied, "replay recovered");
            (self.s.progress)(ProgressEvent::Recovered {
                what: "incremental replay".into(),
            });
        }
        // Rows of a load read at different positions are exact only once replay has passed the
        // last of them: not ready to complete before.
        let consistent = st.idempotent_until.as_ref().is_none_or(|u| pos_ge(&applied, u));
        if consistent && st.idempotent_until.take().is_some() {
            info!(position = %applied, "the target is consistent from here (past the full load's last read view)");
            (self.s.progress)(ProgressEvent::Consistent {
                position: applied.to_string(),
            });
        }
        let ready = consistent && (caught_up || (st.caught_up_at > 0.0 && now - st.caught_up_at < 1.0));
        self.s.control.set_ready(ready);
        if ready && !st.announced_ready {
            st.announced_ready = true;
            (self.s.progress)(ProgressEvent::ReadyToComplete {
                position: applied.to_string(),
            });
        }
        let (t0, e0, r0) = st.last_progress;
        let dt = t0.elapsed().as_secs_f64().max(1e-3);
        let events_per_sec = (st.events - e0) as f64 / dt;
        let rows_per_sec = (st.rows - r0) as f64 / dt;
        st.last_progress = (Instant::now(), st.events, st.rows);
        (self.s.progress)(ProgressEvent::ReplayProgress {
            read_pos: read_pos.to_string(),
            applied_pos: applied.to_string(),
            lag_seconds,
            lag_bytes,
            lag_bytes_known: fresh,
            events: st.events,
            rows: st.rows,
            transactions: st.transactions,
            events_per_sec,
            rows_per_sec,
            excluded: st.excluded.load(Ordering::Relaxed),
        });
    }
}

/// The (before, after) column lists of a change ([`partial_images`]).
type ImageColumns = (Option<Vec<bool>>, Option<Vec<bool>>);

/// The stored columns a rows event's images carry, when not all of them (`None`: all):
/// `binlog_row_image=MINIMAL` or `NOBLOB` on the source, or a MySQL hidden column. An update or
/// delete whose before image lacks part of the row's address (its key, or for a table without
/// one every stored column) cannot be applied exactly: a definite error naming the event.
pub(super) fn partial_images(
    info: &super::schema_cache::TableInfo,
    rows: &crate::event::RowsData,
    gtid: Option<&str>,
) -> Result<ImageColumns, ReplayError> {
    let stored_mask = |cols: &Option<Vec<bool>>| -> Option<Vec<bool>> {
        let cols = cols.as_ref()?;
        let missing = info
            .stored
            .iter()
            .any(|&i| !cols.get(i).copied().unwrap_or(false));
        missing.then(|| cols.clone())
    };
    let before = stored_mask(&rows.before_cols);
    let after = stored_mask(&rows.after_cols);
    if let Some(b) = &before {
        if rows.kind != crate::event::RowsKind::Insert {
            let lacking: Vec<&str> = super::rowsql::where_columns(info)
                .into_iter()
                .filter(|&i| !b.get(i).copied().unwrap_or(false))
                .map(|i| info.schema.columns[i].name.as_str())
                .collect();
            if !lacking.is_empty() {
                let event = match rows.kind {
                    crate::event::RowsKind::Update => "UPDATE_ROWS_EVENT",
                    _ => "DELETE_ROWS_EVENT",
                };
                return Err(ReplayError::Unsupported {
                    what: format!(
                        "{event} ending at {}{} on {}.{}: the before image (binlog_row_image=MINIMAL or \
                         NOBLOB on the source) lacks {} of the columns that identify the row on the \
                         target ({}), so the row cannot be found exactly. Set binlog_row_image=FULL on \
                         the source (or give the table a primary key the image carries), then run the \
                         job again from a new full load",
                        rows.position,
                        gtid.map(|g| format!(" (GTID {g})")).unwrap_or_default(),
                        rows.db,
                        rows.table,
                        lacking.len(),
                        lacking.join(", ")
                    ),
                    position: rows.position.to_string(),
                });
            }
        }
    }
    Ok((before, after))
}

/// Estimated bytes of decoded row images: string and binary values by length, others 8.
fn image_bytes(pairs: &[crate::decode::RowPair]) -> u64 {
    let image = |r: &Option<Vec<mysql_async::Value>>| -> u64 {
        r.as_ref().map_or(0, |vals| {
            vals.iter()
                .map(|v| match v {
                    mysql_async::Value::Bytes(b) => b.len() as u64 + 8,
                    _ => 8,
                })
                .sum()
        })
    };
    pairs.iter().map(|(b, a)| image(b) + image(a)).sum()
}

/// Sets the source statement's `sql_mode` and `time_zone` on the coordinator's connection before
/// a replayed DDL ([`super::ddl_session`]). A mode the target does not know is left out (and
/// said); a time zone the target cannot load is a definite error naming the fix.
/// Returns the session's previous `explicit_defaults_for_timestamp` when it was changed.
async fn enter_ddl_session(ctl: &mut Conn, q: &QueryData, at: &BinlogPos) -> Result<Option<u8>, ReplayError> {
    if let Some(bits) = q.sql_mode {
        let (names, unknown) = sql_mode_names(bits, q.source_mariadb);
        if unknown != 0 {
            warn!(
                bits = unknown,
                "sql_mode bits of a replayed DDL that Ferry does not know: left out"
            );
        }
        let all = names.join(",");
        match ctl.exec_drop("SET SESSION sql_mode = ?", (all.as_str(),)).await {
            Ok(()) => {}
            Err(e) if server_code(&e) == Some(1231) => {
                let mut kept = Vec::new();
                for n in &names {
                    if ctl.exec_drop("SET SESSION sql_mode = ?", (*n,)).await.is_ok() {
                        kept.push(*n);
                    }
                }
                let dropped: Vec<&str> = names.iter().copied().filter(|n| !kept.contains(n)).collect();
                warn!(modes = %dropped.join(","), "sql_mode of a replayed DDL: modes the target does not know are left out");
                ctl.exec_drop("SET SESSION sql_mode = ?", (kept.join(","),))
                    .await
                    .map_err(|e| {
                        apply_err(format!("setting the DDL's sql_mode {}", kept.join(",")), at, e)
                    })?;
            }
            Err(e) => return Err(apply_err(format!("setting the DDL's sql_mode {all}"), at, e)),
        }
    }
    let mut changed_defaults = None;
    if let Some(on) = q.explicit_defaults_for_timestamp {
        let now: Option<u8> = ctl
            .query_first("SELECT @@SESSION.explicit_defaults_for_timestamp")
            .await
            .map_err(|e| apply_err("reading explicit_defaults_for_timestamp", at, e))?;
        if now != Some(u8::from(on)) {
            let set = format!("SET SESSION explicit_defaults_for_timestamp = {}", u8::from(on));
            ctl.query_drop(set.as_str()).await.map_err(|e| {
                apply_err(
                    format!(
                        "the DDL's session ({set}; on MySQL 8 this needs SESSION_VARIABLES_ADMIN: a bare \
                         TIMESTAMP column means something else without it)"
                    ),
                    at,
                    e,
                )
            })?;
            changed_defaults = now;
        }
    }
    if let Some(tz) = &q.time_zone {
        if !plain_time_zone(tz) {
            return Err(ReplayError::Unsupported {
                what: format!("a DDL statement logged with the time zone {tz:?}"),
                position: at.to_string(),
            });
        }
        ctl.query_drop(format!("SET SESSION time_zone = '{tz}'"))
            .await
            .map_err(|e| {
                apply_err(
                    format!(
                        "setting the DDL's time_zone {tz} (a named zone needs the target's time zone tables: \
                         load them with mariadb-tzinfo-to-sql / mysql_tzinfo_to_sql)"
                    ),
                    at,
                    e,
                )
            })?;
    }
    Ok(changed_defaults)
}

/// Restores the applier's own session after a replayed DDL (`explicit_defaults_for_timestamp`
/// back to `previous` when [`enter_ddl_session`] changed it).
async fn leave_ddl_session(ctl: &mut Conn, previous: Option<u8>, at: &BinlogPos) -> Result<(), ReplayError> {
    let mut restore = super::target_session_setup();
    if let Some(v) = previous {
        restore.push(format!("SET SESSION explicit_defaults_for_timestamp = {v}"));
    }
    for s in restore {
        ctl.query_drop(s.as_str())
            .await
            .map_err(|e| apply_err(format!("restoring the applier's session ({s})"), at, e))?;
    }
    Ok(())
}
