//! The parallel applier's scheduler: which transactions form a batch, which worker runs it,
//! when it may start, and when the applied position moves. Pure bookkeeping: no `async`, no
//! connection; the coordinator ([`super::session`]) feeds it and does the I/O.
//!
//! Inputs, in source order:
//! - each source transaction's size and flags ([`TxnShape`]): a *serial point* (a change that
//!   cascades through a foreign key, a partial image on a table with several unique keys, a
//!   long value, a system-versioned table, a table without a row key, more than
//!   [`LARGE_TXN_ROWS`] rows or [`LARGE_TXN_BYTES`] bytes) is applied alone on the coordinator's
//!   connection once [`Scheduler::idle`]; DDL, XA and statements inside a transaction are
//!   serial points the coordinator recognises from the event itself;
//! - the open batch's size against [`Limits`] (a batch closes when one is reached, or when the
//!   reader has nothing more in hand);
//! - each closed batch's conflict keys ([`super::keys`]: 64-bit hashes of every key value of
//!   every before and after image) and the workers' progress ([`Progress`]: the highest batch
//!   committed, and per worker the highest batch executed).
//!
//! Outputs: a batch number (1, 2, 3 … in source order), the worker to queue it on
//! ([`Scheduler::place`], [`Scheduler::dispatch`]), and, as batches commit, the payloads
//! (positions) reached in source order ([`Scheduler::committed`]).
//!
//! # The rules
//!
//! A worker runs the batches queued on it one after the other: it *executes* a batch (its
//! statements, in one target transaction), waits until every earlier batch has committed, then
//! commits it with the checkpoint row. So commits follow batch numbers, and a batch's wait for
//! its turn only ever waits for earlier batches. A batch is placed:
//! - on the least busy worker (the lowest number among equals) when no batch in flight shares a
//!   key with it;
//! - behind the batches it shares keys with when they are all queued on one worker (it starts
//!   once they have committed);
//! - nowhere yet (`Wait`) when they are on several workers, or when the chosen worker already
//!   holds `depth` batches.
//!
//! Hence no two batches that share a key ever execute at the same time, and the later one
//! starts only after the earlier one committed: the later batch never waits for a row lock of an
//! earlier batch, and an earlier batch never for a later one (the premise of the commit-order
//! argument in `docs/reliability.md`, "Parallel apply").
//!
//! # Early start (not used)
//!
//! [`Scheduler::with_early_start`] lets a batch whose conflicting batches have all *executed*
//! (not yet committed) start on any worker: it then waits on InnoDB's row locks of those
//! batches until they commit, and reads their committed rows (UPDATE and DELETE by an equality
//! on a whole unique key, and INSERT's duplicate check, are locking reads of the latest version,
//! never semi-consistent). It is deadlock-free by the same order argument: every wait (row
//! lock, commit turn, worker queue) is of a later batch on an earlier one, because an executed
//! batch takes no further lock before its turn except on the checkpoint row and the dirty
//! marks, which only the batch whose turn it is writes (`docs/reliability.md`, "Parallel
//! apply"). The property test checks the rule; the coordinator does not use it: wired in and
//! measured with `benches/replay.sh`, it was not faster (`docs/benchmarks.md`, "Incremental
//! replay"), because with sysbench's random keys a batch is placed while the batch it
//! conflicts with is still executing, so it is queued behind it as before.

use std::collections::{HashMap, VecDeque};

/// A transaction this large is applied serially, streamed on the coordinator's connection,
/// instead of being held in memory for a worker.
pub(crate) const LARGE_TXN_ROWS: u64 = 20_000;
/// … or this many bytes of row images.
pub(crate) const LARGE_TXN_BYTES: u64 = 32 << 20;
/// Batches queued per worker.
pub(crate) const WORKER_DEPTH: usize = 2;

/// What the scheduler needs to know about a source transaction so far (the coordinator asks
/// after each rows event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TxnShape {
    /// Rows decoded so far.
    pub rows: u64,
    /// Estimated bytes of row images so far.
    pub bytes: u64,
    /// The last change's table has no row key (no primary or NOT NULL unique key).
    pub keyless: bool,
    /// The last change must be applied alone, row by row or with special session settings: it
    /// cascaded through a foreign key, carries a partial image of a table with several unique
    /// keys, holds a long value, or is on a system-versioned table.
    pub serial_change: bool,
}

impl TxnShape {
    /// True when the transaction must leave the parallel path (and stays off it).
    pub fn serial_point(&self) -> bool {
        self.serial_change || self.keyless || self.rows > LARGE_TXN_ROWS || self.bytes > LARGE_TXN_BYTES
    }
}

/// When an open batch closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub transactions: usize,
    pub rows: u64,
    pub bytes: u64,
}

impl Limits {
    /// Limits of at least 1 each.
    pub fn new(transactions: usize, rows: usize, bytes: usize) -> Self {
        Limits {
            transactions: transactions.max(1),
            rows: rows.max(1) as u64,
            bytes: bytes.max(1) as u64,
        }
    }

    /// True when a batch of this size must close.
    pub fn reached(&self, transactions: usize, rows: u64, bytes: u64) -> bool {
        transactions >= self.transactions || rows >= self.rows || bytes >= self.bytes
    }
}

/// How far the workers are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress<'a> {
    /// Every batch up to this number is committed.
    pub committed: u64,
    /// Per worker, the highest batch number it has executed (its statements all ran; the
    /// commit may still be waiting for its turn). Only read in early-start mode.
    pub executed: &'a [u64],
}

/// Where a batch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Queue it on this worker.
    Worker(usize),
    /// Not now: wait for a commit (or an execution, in early-start mode) and ask again.
    Wait,
}

/// A payload reached once everything up to a batch is committed.
#[derive(Debug)]
pub(crate) struct Reached<P> {
    /// The batch it ends (`None`: a position of transactions without selected changes).
    pub batch: Option<u64>,
    pub payload: P,
}

#[derive(Debug)]
struct Slot<P> {
    batch: Option<u64>,
    /// Reached once this batch number is committed.
    after: u64,
    payload: P,
}

/// Keys remembered before the ones of committed batches are dropped.
const KEYS_KEPT: usize = 200_000;

/// The scheduler of one replay session ([module docs](self)).
#[derive(Debug)]
pub(crate) struct Scheduler<P> {
    depth: usize,
    early_start: bool,
    last_no: u64,
    pending: VecDeque<Slot<P>>,
    per_worker: Vec<usize>,
    batch_worker: HashMap<u64, usize>,
    /// Conflict key → the last batch that holds it.
    keys: HashMap<u64, u64>,
}

impl<P> Scheduler<P> {
    /// A scheduler for `workers` workers (at least 1), each holding at most `depth` batches.
    pub fn new(workers: usize, depth: usize) -> Self {
        Scheduler {
            depth: depth.max(1),
            early_start: false,
            last_no: 0,
            pending: VecDeque::new(),
            per_worker: vec![0; workers.max(1)],
            batch_worker: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    /// Early-start mode ([module docs](self#early-start-not-used)).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn with_early_start(mut self, on: bool) -> Self {
        self.early_start = on;
        self
    }

    /// True when nothing is in flight and no position waits to be reached.
    pub fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Where a batch with these (sorted, deduplicated) conflict keys may go now. `serial`: the
    /// session runs batches one after the other (after a lock wait between workers), all on
    /// worker 0.
    pub fn place(&self, keys: &[u64], progress: Progress<'_>, serial: bool) -> Placement {
        if serial {
            return if self.per_worker[0] < self.depth {
                Placement::Worker(0)
            } else {
                Placement::Wait
            };
        }
        let mut hit: Option<usize> = None;
        for k in keys {
            let Some(&no) = self.keys.get(k) else { continue };
            if no <= progress.committed {
                continue;
            }
            let Some(&w) = self.batch_worker.get(&no) else {
                continue;
            };
            if self.early_start && progress.executed.get(w).is_some_and(|&e| e >= no) {
                // Executed (a worker executes its batches in order, so every earlier batch
                // holding this key has executed too): its row locks order the two.
                continue;
            }
            match hit {
                None => hit = Some(w),
                Some(h) if h != w => return Placement::Wait,
                _ => {}
            }
        }
        let w = match hit {
            Some(w) => w,
            None => {
                let mut best = 0;
                for (i, n) in self.per_worker.iter().enumerate() {
                    if *n < self.per_worker[best] {
                        best = i;
                    }
                }
                best
            }
        };
        if self.per_worker[w] >= self.depth {
            return Placement::Wait;
        }
        Placement::Worker(w)
    }

    /// Records a batch queued on `worker` (as [`Self::place`] said) and returns its number;
    /// `payload` is reached once it commits.
    pub fn dispatch(&mut self, keys: &[u64], worker: usize, payload: P) -> u64 {
        self.last_no += 1;
        let no = self.last_no;
        for &k in keys {
            self.keys.insert(k, no);
        }
        self.pending.push_back(Slot {
            batch: Some(no),
            after: no,
            payload,
        });
        self.batch_worker.insert(no, worker);
        self.per_worker[worker] += 1;
        no
    }

    /// A position of transactions without selected changes, reached once every batch
    /// dispatched so far is committed.
    pub fn position(&mut self, payload: P) {
        self.pending.push_back(Slot {
            batch: None,
            after: self.last_no,
            payload,
        });
    }

    /// Everything reached now that every batch up to `committed` is committed, in source order.
    pub fn committed(&mut self, committed: u64) -> Vec<Reached<P>> {
        let mut out = Vec::new();
        while self.pending.front().is_some_and(|p| p.after <= committed) {
            let Some(p) = self.pending.pop_front() else { break };
            if let Some(no) = p.batch {
                if let Some(w) = self.batch_worker.remove(&no) {
                    self.per_worker[w] = self.per_worker[w].saturating_sub(1);
                }
            }
            out.push(Reached {
                batch: p.batch,
                payload: p.payload,
            });
        }
        if self.keys.len() > KEYS_KEPT {
            self.keys.retain(|_, no| *no > committed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(committed: u64) -> Progress<'static> {
        Progress {
            committed,
            executed: &[],
        }
    }

    #[test]
    fn disjoint_batches_spread_and_conflicts_queue_behind() {
        let mut s: Scheduler<u32> = Scheduler::new(3, 2);
        assert_eq!(s.place(&[1, 2], at(0), false), Placement::Worker(0));
        assert_eq!(s.dispatch(&[1, 2], 0, 10), 1);
        assert_eq!(s.place(&[3], at(0), false), Placement::Worker(1));
        assert_eq!(s.dispatch(&[3], 1, 20), 2);
        // Shares key 2 with batch 1 only: behind it on worker 0.
        assert_eq!(s.place(&[2, 9], at(0), false), Placement::Worker(0));
        assert_eq!(s.dispatch(&[2, 9], 0, 30), 3);
        // Shares keys with batches on workers 0 and 1: waits.
        assert_eq!(s.place(&[3, 9], at(0), false), Placement::Wait);
        // Worker 0 is full (depth 2).
        assert_eq!(s.place(&[1], at(0), false), Placement::Wait);
        // Batch 1 committed: key 1 is free, the least busy worker takes it.
        let r = s.committed(1);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].batch, r[0].payload), (Some(1), 10));
        assert_eq!(s.place(&[1], at(1), false), Placement::Worker(2));
    }

    #[test]
    fn positions_are_reached_in_source_order() {
        let mut s: Scheduler<&str> = Scheduler::new(2, 2);
        s.dispatch(&[1], 0, "b1");
        s.position("p1");
        s.dispatch(&[2], 1, "b2");
        s.position("p2");
        // Batch 2 committing first would break the order: the watermark never passes 1.
        fn names(r: Vec<Reached<&'static str>>) -> Vec<&'static str> {
            r.into_iter().map(|r| r.payload).collect()
        }
        assert!(names(s.committed(0)).is_empty());
        assert_eq!(names(s.committed(1)), ["b1", "p1"]);
        assert_eq!(names(s.committed(2)), ["b2", "p2"]);
        assert!(s.idle());
    }

    #[test]
    fn serial_mode_uses_worker_zero_only() {
        let mut s: Scheduler<()> = Scheduler::new(4, 2);
        assert_eq!(s.place(&[1], at(0), true), Placement::Worker(0));
        s.dispatch(&[1], 0, ());
        s.dispatch(&[2], 0, ());
        assert_eq!(s.place(&[3], at(0), true), Placement::Wait);
        s.committed(1);
        assert_eq!(s.place(&[3], at(1), true), Placement::Worker(0));
    }

    #[test]
    fn early_start_once_the_conflicting_batches_executed() {
        let mut s: Scheduler<()> = Scheduler::new(2, 2).with_early_start(true);
        s.dispatch(&[1], 0, ());
        s.dispatch(&[2], 1, ());
        let none = [0, 0];
        assert_eq!(
            s.place(
                &[1, 2],
                Progress {
                    committed: 0,
                    executed: &none
                },
                false
            ),
            Placement::Wait
        );
        // Batch 1 executed (not committed): only batch 2 still counts.
        let one = [1, 0];
        assert_eq!(
            s.place(
                &[1, 2],
                Progress {
                    committed: 0,
                    executed: &one
                },
                false
            ),
            Placement::Worker(1)
        );
        let both = [1, 2];
        assert_eq!(
            s.place(
                &[1, 2],
                Progress {
                    committed: 0,
                    executed: &both
                },
                false
            ),
            Placement::Worker(0)
        );
    }
}
