//! Property tests of the scheduler ([`super::schedule`]) against a simulation of the workers
//! and of the target's row locks: random transactions (conflict keys, sizes, serial points),
//! worker counts, queue depths, batch limits and interleavings of the workers' steps. Checked:
//! no two batches that share a key execute at the same time, and a batch starts only after
//! every earlier batch sharing a key has committed (executed, in early-start mode); commits
//! follow source order; every transaction is applied exactly once and the applied position
//! passes them in source order; serial points run with nothing in flight; no worker queue holds
//! more than its depth; the simulation never deadlocks. Test-only.

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;

use super::schedule::{Limits, Placement, Progress, Scheduler, TxnShape};

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
    Executing,
    Executed,
}

struct InFlight {
    no: u64,
    keys: BTreeSet<u64>,
    phase: Phase,
}

struct Sim {
    sched: Scheduler<Vec<usize>>,
    early: bool,
    depth: usize,
    queues: Vec<VecDeque<InFlight>>,
    committed: u64,
    executed: Vec<u64>,
    /// Every batch dispatched: number → keys (for the lock model and the checks).
    batches: Vec<BTreeSet<u64>>,
    /// Transactions as the applied position passed them.
    applied: Vec<usize>,
    choices: Vec<u8>,
    turn: usize,
}

impl Sim {
    fn new(workers: usize, depth: usize, early: bool, choices: Vec<u8>) -> Self {
        Sim {
            sched: Scheduler::new(workers, depth).with_early_start(early),
            early,
            depth,
            queues: (0..workers).map(|_| VecDeque::new()).collect(),
            committed: 0,
            executed: vec![0; workers],
            batches: vec![BTreeSet::new()],
            applied: Vec::new(),
            choices,
            turn: 0,
        }
    }

    fn shares(&self, a: u64, keys: &BTreeSet<u64>) -> bool {
        !self.batches[a as usize].is_disjoint(keys)
    }

    /// True when every earlier batch sharing a key with `no` has committed (InnoDB's row locks
    /// of those batches are released).
    fn locks_free(&self, no: u64, keys: &BTreeSet<u64>) -> bool {
        (self.committed + 1..no).all(|e| !self.shares(e, keys))
    }

    /// Advances one worker (chosen by the generated choices among those that can move).
    fn step(&mut self) -> Result<(), TestCaseError> {
        let movable: Vec<usize> = (0..self.queues.len())
            .filter(|&w| match self.queues[w].front() {
                None => false,
                Some(b) => match b.phase {
                    Phase::Queued => true,
                    Phase::Executing => self.locks_free(b.no, &b.keys),
                    Phase::Executed => self.committed + 1 == b.no,
                },
            })
            .collect();
        prop_assert!(
            !movable.is_empty(),
            "deadlock: batches in flight and no worker can move"
        );
        let c = self
            .choices
            .get(self.turn % self.choices.len().max(1))
            .copied()
            .unwrap_or(0);
        self.turn += 1;
        let w = movable[usize::from(c) % movable.len()];
        let (no, phase) = match self.queues[w].front() {
            Some(b) => (b.no, b.phase),
            None => return Ok(()),
        };
        match phase {
            Phase::Queued => {
                let keys = self.batches[no as usize].clone();
                for e in self.committed + 1..no {
                    if !self.shares(e, &keys) {
                        continue;
                    }
                    let (ew, _) = self.find(e).expect("an uncommitted batch is queued");
                    let done = if self.early { self.executed[ew] >= e } else { false };
                    prop_assert!(
                        done,
                        "batch {no} starts while batch {e}, sharing a key, is not done"
                    );
                }
                for q in &self.queues {
                    for b in q {
                        if b.phase == Phase::Executing {
                            prop_assert!(
                                b.keys.is_disjoint(&keys),
                                "batches {} and {no} execute together",
                                b.no
                            );
                        }
                    }
                }
                self.set_phase(w, Phase::Executing);
            }
            Phase::Executing => {
                self.set_phase(w, Phase::Executed);
                self.executed[w] = no;
            }
            Phase::Executed => {
                prop_assert_eq!(no, self.committed + 1, "commits follow batch numbers");
                self.committed = no;
                self.queues[w].pop_front();
            }
        }
        Ok(())
    }

    fn find(&self, no: u64) -> Option<(usize, Phase)> {
        self.queues
            .iter()
            .enumerate()
            .find_map(|(w, q)| q.iter().find(|b| b.no == no).map(|b| (w, b.phase)))
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
    fn dispatch(&mut self, txns: Vec<usize>, all: &[Txn]) -> Result<(), TestCaseError> {
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
        let w = loop {
            self.reach();
            let executed = self.executed.clone();
            let progress = Progress {
                committed: self.committed,
                executed: &executed,
            };
            match self.sched.place(&keys, progress, false) {
                Placement::Worker(w) => break w,
                Placement::Wait => self.step()?,
            }
        };
        let no = self.sched.dispatch(&keys, w, txns);
        prop_assert_eq!(no as usize, self.batches.len());
        let set: BTreeSet<u64> = keys.into_iter().collect();
        self.batches.push(set.clone());
        self.queues[w].push_back(InFlight {
            no,
            keys: set,
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
        early in any::<bool>(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
        closes in prop::collection::vec(prop::bool::weighted(0.3), 1..64),
    ) {
        let limits = Limits::new(batch_txns, batch_rows, usize::MAX);
        let mut sim = Sim::new(workers, depth, early, choices);
        let mut open: Vec<usize> = Vec::new();
        let mut open_rows = 0u64;
        for (i, t) in txns.iter().enumerate() {
            let shape = TxnShape { rows: t.rows, bytes: 0, keyless: false, serial_change: t.serial };
            if shape.serial_point() {
                // The coordinator closes the open batch, drains, then applies it alone.
                let batch = std::mem::take(&mut open);
                open_rows = 0;
                if !batch.is_empty() {
                    sim.dispatch(batch, &txns)?;
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
                sim.dispatch(batch, &txns)?;
            }
        }
        if !open.is_empty() {
            sim.dispatch(open, &txns)?;
        }
        sim.drain()?;
        let want: Vec<usize> = (0..txns.len()).collect();
        prop_assert_eq!(sim.applied, want, "every transaction applied once, in source order");
    }
}
