//! Property tests of the scheduler ([`super::schedule`]) against a simulation of the workers:
//! random transactions (conflict keys, sizes, serial points), worker counts, queue depths,
//! batch limits, split placements on or off, the lock-wait serial mode, and interleavings of
//! the workers' steps. A simulated worker takes the batch at the head of its queue, executes
//! its rows on free keys, waits until batch `after` has committed, executes its deferred rows,
//! waits for its turn and commits. Checked: a batch executes a key only when no earlier batch
//! holding it is uncommitted and no later batch has executed it (so no two batches execute the
//! same key at once, and no batch ever waits for another's row lock); commits follow source
//! order; every transaction is applied exactly once and the applied position passes them in
//! source order; serial points run with nothing in flight; no worker queue holds more than its
//! depth; the simulation never deadlocks. Test-only.

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;

use super::schedule::{Deferred, Limits, Placement, Scheduler, TxnShape};

/// A generated source transaction.
#[derive(Debug, Clone)]
struct Txn {
    keys: BTreeSet<u64>,
    rows: u64,
    /// A serial point (DDL, cascade, XA, a keyless table …).
    serial: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    /// Its rows on free keys executed (their row locks held until it commits).
    Free,
    /// Every row executed.
    Executed,
}

struct InFlight {
    no: u64,
    deferred: Deferred,
    phase: Phase,
}

struct Sim {
    sched: Scheduler<Vec<usize>>,
    depth: usize,
    queues: Vec<VecDeque<InFlight>>,
    committed: u64,
    /// Every batch dispatched: number → keys.
    batches: Vec<BTreeSet<u64>>,
    /// Per batch, the keys it has executed (locked until it commits).
    touched: Vec<BTreeSet<u64>>,
    /// Transactions as the applied position passed them.
    applied: Vec<usize>,
    choices: Vec<u8>,
    turn: usize,
    /// Batches placed split.
    splits: usize,
}

impl Sim {
    fn new(workers: usize, depth: usize, split: bool, choices: Vec<u8>) -> Self {
        Sim {
            sched: Scheduler::new(workers, depth).with_split(split),
            depth,
            queues: (0..workers).map(|_| VecDeque::new()).collect(),
            committed: 0,
            batches: vec![BTreeSet::new()],
            touched: vec![BTreeSet::new()],
            applied: Vec::new(),
            choices,
            turn: 0,
            splits: 0,
        }
    }

    fn choice(&mut self) -> usize {
        let c = self
            .choices
            .get(self.turn % self.choices.len().max(1))
            .copied()
            .unwrap_or(0);
        self.turn += 1;
        usize::from(c)
    }

    /// Batch `no` executes its rows on `keys`: no earlier uncommitted batch may hold one of
    /// them (it would be executing it, or hold its row lock, or touch it later), and no later
    /// batch may have executed one (it would hold the row lock this batch needs).
    fn execute(&mut self, no: u64, keys: &BTreeSet<u64>) -> Result<(), TestCaseError> {
        let last = self.batches.len() as u64 - 1;
        for e in self.committed + 1..=last {
            if e < no {
                let shared: Vec<_> = self.batches[e as usize].intersection(keys).collect();
                prop_assert!(
                    shared.is_empty(),
                    "batch {no} executes keys {shared:?} of batch {e}, not yet committed"
                );
            } else if e > no {
                let shared: Vec<_> = self.touched[e as usize].intersection(keys).collect();
                prop_assert!(
                    shared.is_empty(),
                    "batch {no} executes keys {shared:?} that later batch {e} executed already"
                );
            }
        }
        self.touched[no as usize].extend(keys.iter().copied());
        Ok(())
    }

    /// Advances one worker (chosen by the generated choices among those that can move).
    fn step(&mut self) -> Result<(), TestCaseError> {
        let committed = self.committed;
        let movable: Vec<usize> = (0..self.queues.len())
            .filter(|&w| match self.queues[w].front() {
                None => false,
                Some(b) => match b.phase {
                    Phase::Queued => true,
                    Phase::Free => committed >= b.deferred.after,
                    Phase::Executed => committed + 1 == b.no,
                },
            })
            .collect();
        prop_assert!(
            !movable.is_empty(),
            "deadlock: batches in flight and no worker can move"
        );
        let w = movable[self.choice() % movable.len()];
        let Some(b) = self.queues[w].front() else {
            return Ok(());
        };
        let (no, phase) = (b.no, b.phase);
        let deferred: BTreeSet<u64> = b.deferred.keys.iter().copied().collect();
        match phase {
            Phase::Queued => {
                let free: BTreeSet<u64> = self.batches[no as usize].difference(&deferred).copied().collect();
                self.execute(no, &free)?;
                self.set_phase(w, Phase::Free);
            }
            Phase::Free => {
                self.execute(no, &deferred)?;
                self.set_phase(w, Phase::Executed);
            }
            Phase::Executed => {
                prop_assert_eq!(no, self.committed + 1, "commits follow batch numbers");
                self.committed = no;
                self.touched[no as usize].clear();
                self.queues[w].pop_front();
            }
        }
        Ok(())
    }

    fn set_phase(&mut self, w: usize, p: Phase) {
        if let Some(b) = self.queues[w].front_mut() {
            b.phase = p;
        }
    }

    fn reach(&mut self) {
        for r in self.sched.committed(self.committed) {
            self.applied.extend(r.payload);
        }
    }

    /// The coordinator's dispatch loop: place, or wait for a worker to move.
    fn dispatch(&mut self, txns: Vec<usize>, all: &[Txn], serial: bool) -> Result<(), TestCaseError> {
        let keys: Vec<u64> = txns
            .iter()
            .flat_map(|&i| all[i].keys.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if keys.is_empty() {
            self.sched.position(txns);
            self.reach();
            return Ok(());
        }
        let (w, deferred) = loop {
            self.reach();
            match self.sched.place(&keys, self.committed, serial) {
                Placement::Worker(w) => break (w, Deferred::default()),
                Placement::Split(w, d) => break (w, d),
                Placement::Wait => self.step()?,
            }
        };
        let no = self.sched.dispatch(&keys, w, txns);
        prop_assert_eq!(no as usize, self.batches.len());
        if !deferred.keys.is_empty() {
            self.splits += 1;
            prop_assert!(!serial, "a split in serial mode");
            prop_assert!(deferred.after < no && deferred.after > self.committed);
            prop_assert!(
                deferred.keys.iter().all(|k| keys.binary_search(k).is_ok()),
                "deferred keys of another batch"
            );
        }
        if serial {
            prop_assert_eq!(w, 0, "serial mode uses worker 0");
        }
        let set: BTreeSet<u64> = keys.into_iter().collect();
        self.batches.push(set);
        self.touched.push(BTreeSet::new());
        self.queues[w].push_back(InFlight {
            no,
            deferred,
            phase: Phase::Queued,
        });
        prop_assert!(
            self.queues[w].len() <= self.depth,
            "worker {w} holds more than {} batches",
            self.depth
        );
        Ok(())
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        loop {
            self.reach();
            if self.sched.idle() {
                break;
            }
            self.step()?;
        }
        prop_assert!(
            self.queues.iter().all(|q| q.is_empty()),
            "idle with batches queued"
        );
        Ok(())
    }
}

fn txn() -> impl Strategy<Value = Txn> {
    (
        prop::collection::btree_set(0u64..12, 0..4),
        1u64..40,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(keys, rows, serial)| Txn { keys, rows, serial })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn scheduler_invariants(
        txns in prop::collection::vec(txn(), 1..60),
        workers in 1usize..5,
        depth in 1usize..4,
        batch_txns in 1usize..5,
        batch_rows in 1usize..100,
        split in prop::bool::weighted(0.8),
        choices in prop::collection::vec(any::<u8>(), 1..64),
        closes in prop::collection::vec(prop::bool::weighted(0.3), 1..64),
        serial_batches in prop::option::weighted(0.1, 1usize..8),
    ) {
        let limits = Limits::new(batch_txns, batch_rows, usize::MAX);
        let mut sim = Sim::new(workers, depth, split, choices);
        // After a lock wait between workers the session restarts serially (nothing in flight)
        // up to the position it had read: the first batches go to worker 0, one at a time.
        let mut closed = 0usize;
        let mut serial = move || {
            closed += 1;
            closed <= serial_batches.unwrap_or(0)
        };
        let mut open: Vec<usize> = Vec::new();
        let mut open_rows = 0u64;
        for (i, t) in txns.iter().enumerate() {
            let shape = TxnShape { rows: t.rows, bytes: 0, keyless: false, serial_change: t.serial };
            if shape.serial_point() {
                // The coordinator closes the open batch, drains, then applies it alone.
                let batch = std::mem::take(&mut open);
                open_rows = 0;
                if !batch.is_empty() {
                    sim.dispatch(batch, &txns, serial())?;
                }
                sim.drain()?;
                prop_assert_eq!(sim.applied.len(), i, "everything before a serial point is applied");
                sim.applied.push(i);
                continue;
            }
            open.push(i);
            open_rows += t.rows;
            // A batch also closes early when the reader has nothing more in hand.
            if limits.reached(open.len(), open_rows, 0) || closes[i % closes.len()] {
                open_rows = 0;
                let batch = std::mem::take(&mut open);
                sim.dispatch(batch, &txns, serial())?;
            }
        }
        if !open.is_empty() {
            sim.dispatch(open, &txns, serial())?;
        }
        sim.drain()?;
        let want: Vec<usize> = (0..txns.len()).collect();
        prop_assert_eq!(sim.applied, want, "every transaction applied once, in source order");
    }
}

/// Consecutive batches sharing one hot key and otherwise disjoint (the exactly-once writer's
/// counter, sysbench's random keys): split, side by side, and still in order.
#[test]
fn chained_batches_are_split() {
    let txns: Vec<Txn> = (0..40u64)
        .map(|i| Txn {
            keys: [0, 100 + i, 200 + i, 300 + i].into_iter().collect(),
            rows: 3,
            serial: false,
        })
        .collect();
    let mut sim = Sim::new(4, 2, true, vec![0, 3, 1, 2, 7]);
    for pair in (0..txns.len()).collect::<Vec<_>>().chunks(2) {
        sim.dispatch(pair.to_vec(), &txns, false).expect("the rules hold");
    }
    sim.drain().expect("the rules hold");
    assert!(sim.splits >= 10, "{} batches split", sim.splits);
    assert_eq!(sim.applied, (0..txns.len()).collect::<Vec<_>>());
}
