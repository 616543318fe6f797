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
//!   every before and after image) and the highest batch committed.
//!
//! Outputs: a batch number (1, 2, 3 … in source order), the worker to queue it on and its
//! deferred keys ([`Scheduler::place`], [`Scheduler::dispatch`]), and, as batches commit, the
//! payloads (positions) reached in source order ([`Scheduler::committed`]).
//!
//! # The rules
//!
//! A worker runs the batches queued on it one after the other: it *executes* a batch (its
//! statements, in one target transaction), waits until every earlier batch has committed, then
//! commits it with the checkpoint row. So commits follow batch numbers, and a batch's wait for
//! its turn only ever waits for earlier batches. A batch is placed:
//! - on the least busy worker (the lowest number among equals) when no batch in flight shares a
//!   key with it;
//! - *split* ([`Placement::Split`]) on the least busy worker when it shares keys with batches in
//!   flight but at most half of its keys are held ([`SPLIT_MAX_HELD`]): with its [`Deferred`]
//!   keys (those held by batches not yet committed) and `after`, the highest batch holding one
//!   of them. The worker executes the rows on free keys at once, waits until batch `after` has
//!   committed (then so has every earlier holder: commits follow batch numbers), executes the
//!   deferred rows, and commits in its turn (`super::workers`, `super::compact::split`);
//! - otherwise behind the batches it shares keys with when they are all queued on one worker
//!   (it starts once they have committed): when most of its keys are held, the part it could
//!   run early is small, and a split batch waiting for `after` would hold a worker that a batch
//!   free of conflicts could use;
//! - nowhere yet (`Wait`) when they are on several workers, or when the chosen worker already
//!   holds `depth` batches.
//!
//! Hence no two batches ever execute statements on the same key at the same time, and a batch
//! touches a key only once every earlier batch holding it has committed, while no later batch
//! touches it before this one commits (a later batch finds the key held and defers it, or is
//! queued behind): a batch never waits for a row lock of another batch, and every wait (worker
//! queue, `after`, commit turn) is of a later batch on an earlier one (the premise of the
//! commit-order argument in `docs/reliability.md`, "Parallel apply"). The property test
//! (`schedule_props.rs`) checks this against simulated workers.
//!
//! *Early start* (a conflicting batch starting once the batches it conflicts with have
//! executed, ordered by the target's row locks) was tried before the split and was not faster:
//! with random keys a batch is placed while the batch it conflicts with is still executing, so
//! it was queued behind it as before (`docs/benchmarks.md`, "Incremental replay").

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

/// A batch is split only when at most this share of its keys is held by batches in flight
/// (`held * SPLIT_MAX_HELD.1 <= keys * SPLIT_MAX_HELD.0`), else it is queued behind them.
pub(crate) const SPLIT_MAX_HELD: (usize, usize) = (1, 2);

/// The part of a split batch that waits: its conflict keys held by batches not yet committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Deferred {
    /// Sorted, deduplicated.
    pub keys: Vec<u64>,
    /// The highest batch holding one of them: once it has committed, every earlier holder has.
    pub after: u64,
}

/// Where a batch goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Queue it on this worker.
    Worker(usize),
    /// Queue it on this worker; the rows on the deferred keys wait for batch `after`'s commit.
    Split(usize, Deferred),
    /// Not now: wait for a commit and ask again.
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
    split: bool,
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
            split: true,
            last_no: 0,
            pending: VecDeque::new(),
            per_worker: vec![0; workers.max(1)],
            batch_worker: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    /// Split placements on (the default) or off ([module docs](self#the-rules)).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn with_split(mut self, on: bool) -> Self {
        self.split = on;
        self
    }

    /// True when nothing is in flight and no position waits to be reached.
    pub fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Where a batch with these (sorted, deduplicated) conflict keys may go now, every batch up
    /// to `committed` being committed. `serial`: the session runs batches one after the other
    /// (after a lock wait between workers), all on worker 0.
    pub fn place(&self, keys: &[u64], committed: u64, serial: bool) -> Placement {
        if serial {
            return self.room(0, Placement::Worker(0));
        }
        let mut held = Vec::new();
        let mut after = 0;
        // The worker of the holders, when they are all on one.
        let mut holder: Option<usize> = None;
        let mut several = false;
        for &k in keys {
            let Some(&no) = self.keys.get(&k) else { continue };
            if no <= committed {
                continue;
            }
            let Some(&w) = self.batch_worker.get(&no) else {
                continue;
            };
            held.push(k);
            after = after.max(no);
            match holder {
                None => holder = Some(w),
                Some(h) if h != w => several = true,
                _ => {}
            }
        }
        let least = self.least_busy();
        if held.is_empty() {
            return self.room(least, Placement::Worker(least));
        }
        let behind = if several { None } else { holder };
        let (num, den) = SPLIT_MAX_HELD;
        if self.split && held.len() * den <= keys.len() * num {
            if behind == Some(least) {
                // Every holder runs before it on that worker: nothing left to defer.
                return self.room(least, Placement::Worker(least));
            }
            return self.room(least, Placement::Split(least, Deferred { keys: held, after }));
        }
        match behind {
            Some(w) => self.room(w, Placement::Worker(w)),
            None => Placement::Wait,
        }
    }

    fn least_busy(&self) -> usize {
        let mut best = 0;
        for (i, n) in self.per_worker.iter().enumerate() {
            if *n < self.per_worker[best] {
                best = i;
            }
        }
        best
    }

    /// `p` when worker `w` has room, else `Wait`.
    fn room(&self, w: usize, p: Placement) -> Placement {
        if self.per_worker[w] < self.depth {
            p
        } else {
            Placement::Wait
        }
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

    #[test]
    fn disjoint_batches_spread_and_conflicts_queue_behind() {
        let mut s: Scheduler<u32> = Scheduler::new(3, 2).with_split(false);
        assert_eq!(s.place(&[1, 2], 0, false), Placement::Worker(0));
        assert_eq!(s.dispatch(&[1, 2], 0, 10), 1);
        assert_eq!(s.place(&[3], 0, false), Placement::Worker(1));
        assert_eq!(s.dispatch(&[3], 1, 20), 2);
        // Shares key 2 with batch 1 only: behind it on worker 0.
        assert_eq!(s.place(&[2, 9], 0, false), Placement::Worker(0));
        assert_eq!(s.dispatch(&[2, 9], 0, 30), 3);
        // Shares keys with batches on workers 0 and 1: waits.
        assert_eq!(s.place(&[3, 9], 0, false), Placement::Wait);
        // Worker 0 is full (depth 2).
        assert_eq!(s.place(&[1], 0, false), Placement::Wait);
        // Batch 1 committed: key 1 is free, the least busy worker takes it.
        let r = s.committed(1);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].batch, r[0].payload), (Some(1), 10));
        assert_eq!(s.place(&[1], 1, false), Placement::Worker(2));
    }

    #[test]
    fn a_batch_sharing_a_few_keys_is_split_onto_the_least_busy_worker() {
        let mut s: Scheduler<()> = Scheduler::new(3, 2);
        s.dispatch(&[1, 2, 3], 0, ());
        s.dispatch(&[4, 5], 1, ());
        // Keys 1 (batch 1) and 4 (batch 2) held, on two workers: split, after batch 2.
        let keys = [1, 4, 10, 11, 12];
        let split = Placement::Split(
            2,
            Deferred {
                keys: vec![1, 4],
                after: 2,
            },
        );
        assert_eq!(s.place(&keys, 0, false), split);
        s.dispatch(&keys, 2, ());
        // Batch 1 committed; key 1's last holder is batch 3, and key 2 is free.
        s.committed(1);
        assert_eq!(
            s.place(&[1, 2, 20, 21], 1, false),
            Placement::Split(
                0,
                Deferred {
                    keys: vec![1],
                    after: 3
                }
            )
        );
        // More than half of its keys held: behind the holders when on one worker, else wait.
        assert_eq!(s.place(&[10, 11, 20], 1, false), Placement::Worker(2));
        assert_eq!(s.place(&[5, 10, 20], 1, false), Placement::Wait);
        // Held only by batches on the least busy worker itself: queued behind, nothing deferred.
        let mut t: Scheduler<()> = Scheduler::new(2, 2);
        t.dispatch(&[1], 0, ());
        t.dispatch(&[2], 1, ());
        t.dispatch(&[3], 1, ());
        assert_eq!(t.place(&[1, 7, 8], 0, false), Placement::Worker(0));
        t.dispatch(&[9], 0, ());
        assert_eq!(
            t.place(&[1, 5, 6], 0, false),
            Placement::Wait,
            "every worker full"
        );
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
        assert_eq!(s.place(&[1], 0, true), Placement::Worker(0));
        s.dispatch(&[1], 0, ());
        s.dispatch(&[2], 0, ());
        assert_eq!(s.place(&[3], 0, true), Placement::Wait);
        s.committed(1);
        assert_eq!(s.place(&[3], 1, true), Placement::Worker(0));
    }
}
