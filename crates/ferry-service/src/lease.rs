//! Who may run what, for several `ferry serve` nodes sharing a job store (pure: no I/O, property
//! tested). A job runs on the node holding its lease; a lease is claimed by a conditional update
//! of the job's row (owner, expiry, epoch + 1), so at most one node wins a claim.
//!
//! - [`claimable`]: a job needs an owner in 6, 7, 8, 11 and 12 (not paused with PauseMode
//!   `all`), and may be claimed when it has none or its owner's lease has expired.
//! - [`alive`]: a node is alive while its heartbeat is younger than a lease.
//! - [`claim_quota`]: how many jobs a node claims in one round: nothing at its limit, nothing
//!   while another live node with room runs fewer jobs (the least loaded claims first), else up
//!   to one more than the next least loaded node runs, within its room and what is claimable.

use crate::status::JobStatus;

/// The statuses in which a job needs a node (runs, waits for a slot, stops or completes).
pub const OWNED_STATUSES: &[JobStatus] = &[
    JobStatus::ReadyRun,
    JobStatus::Running,
    JobStatus::ReadyComplete,
    JobStatus::Stopping,
    JobStatus::Completing,
];

/// A job's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: String,
    pub status: JobStatus,
    /// Paused with PauseMode `all` (no run anywhere until resumed).
    pub paused_all: bool,
    /// The owning node (`""`: none).
    pub owner: String,
    /// UNIX milliseconds the lease runs until.
    pub until_ms: i64,
    /// Incremented by every claim.
    pub epoch: u64,
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub node_id: String,
    /// UNIX milliseconds of its last heartbeat.
    pub heartbeat_ms: i64,
    /// Its `max_running_jobs`.
    pub max_running: usize,
    /// Draining (hands its jobs over, claims nothing).
    pub draining: bool,
}

/// True when the job needs an owner.
pub fn needs_owner(l: &Lease) -> bool {
    OWNED_STATUSES.contains(&l.status) && !l.paused_all
}

/// True when a node may claim the job at `now_ms`: it needs an owner and has none, or its
/// owner's lease has expired.
pub fn claimable(l: &Lease, now_ms: i64) -> bool {
    needs_owner(l) && (l.owner.is_empty() || l.until_ms < now_ms)
}

/// True while a node's heartbeat is younger than `lease_ms`.
pub fn alive(n: &Node, now_ms: i64, lease_ms: i64) -> bool {
    now_ms - n.heartbeat_ms < lease_ms
}

/// How many jobs `me` claims this round, given the live nodes' loads (`(node, jobs owned)`,
/// `me` among them), its own limit and the number of claimable jobs.
pub fn claim_quota(me: &str, loads: &[(Node, usize)], my_limit: usize, claimable: usize) -> usize {
    let mine = loads
        .iter()
        .find(|(n, _)| n.node_id == me)
        .map_or(0, |(_, owned)| *owned);
    let room = my_limit.saturating_sub(mine);
    if room == 0 || claimable == 0 {
        return 0;
    }
    let others_with_room = loads
        .iter()
        .filter(|(n, owned)| n.node_id != me && !n.draining && *owned < n.max_running)
        .map(|(_, owned)| *owned);
    match others_with_room.min() {
        Some(least) if least < mine => 0,
        Some(least) => room.min(claimable).min(least + 1 - mine),
        None => room.min(claimable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(id: &str, max: usize) -> Node {
        Node {
            node_id: id.into(),
            heartbeat_ms: 0,
            max_running: max,
            draining: false,
        }
    }

    fn lease(status: JobStatus, owner: &str, until_ms: i64) -> Lease {
        Lease {
            job_id: "j".into(),
            status,
            paused_all: false,
            owner: owner.into(),
            until_ms,
            epoch: 1,
        }
    }

    #[test]
    fn what_may_be_claimed() {
        assert!(claimable(&lease(JobStatus::ReadyRun, "", 0), 100));
        assert!(claimable(&lease(JobStatus::Running, "a", 99), 100), "expired");
        assert!(!claimable(&lease(JobStatus::Running, "a", 101), 100), "held");
        assert!(!claimable(&lease(JobStatus::Success, "", 0), 100), "final");
        assert!(
            !claimable(&lease(JobStatus::CheckPass, "", 0), 100),
            "not started"
        );
        let mut paused = lease(JobStatus::Running, "", 0);
        paused.paused_all = true;
        assert!(!claimable(&paused, 100), "paused with PauseMode all");
        assert!(alive(&node("a", 1), 999, 1000) && !alive(&node("a", 1), 1000, 1000));
    }

    #[test]
    fn the_least_loaded_claims_first() {
        let loads = vec![(node("a", 4), 2), (node("b", 4), 0), (node("c", 4), 1)];
        assert_eq!(claim_quota("a", &loads, 4, 10), 0);
        assert_eq!(claim_quota("b", &loads, 4, 10), 2, "one more than c");
        assert_eq!(claim_quota("c", &loads, 4, 10), 0);
        // A node at its limit does not hold the others back.
        let loads = vec![(node("a", 4), 2), (node("b", 0), 0)];
        assert_eq!(claim_quota("a", &loads, 4, 10), 2);
        assert_eq!(claim_quota("b", &loads, 0, 10), 0);
        // Alone: up to its room.
        assert_eq!(claim_quota("a", &[(node("a", 3), 1)], 3, 10), 2);
        assert_eq!(claim_quota("a", &[(node("a", 3), 1)], 3, 1), 1);
    }

    proptest! {
        /// Rounds of claims by every node in turn: no node exceeds its limit, every job that
        /// can be run finds a node, and the loads of nodes with room differ by at most one.
        #[test]
        fn rounds_of_claims_fill_and_balance(
            limits in proptest::collection::vec(0usize..6, 1..6),
            jobs in 0usize..30,
        ) {
            let nodes: Vec<Node> = limits
                .iter()
                .enumerate()
                .map(|(i, l)| node(&format!("n{i}"), *l))
                .collect();
            let mut owned = vec![0usize; nodes.len()];
            let mut free = jobs;
            for _round in 0..(jobs + 2) {
                for i in 0..nodes.len() {
                    let loads: Vec<(Node, usize)> =
                        nodes.iter().cloned().zip(owned.iter().copied()).collect();
                    let q = claim_quota(&nodes[i].node_id, &loads, nodes[i].max_running, free);
                    prop_assert!(q <= free);
                    owned[i] += q;
                    free -= q;
                    prop_assert!(owned[i] <= nodes[i].max_running);
                }
            }
            let capacity: usize = limits.iter().sum();
            prop_assert_eq!(jobs - free, jobs.min(capacity));
            let with_room: Vec<usize> = owned
                .iter()
                .zip(&limits)
                .filter(|(o, l)| o < l)
                .map(|(o, _)| *o)
                .collect();
            if let (Some(min), Some(max)) = (with_room.iter().min(), owned.iter().max()) {
                if free == 0 && jobs < capacity {
                    prop_assert!(max - min <= 1, "{owned:?} {limits:?}");
                }
            }
        }
    }
}
