//! Leases, nodes and queued actions in the job store (both backends, SQL both dialects accept),
//! for several `ferry serve` nodes sharing a store; who may claim what is decided in
//! [`crate::lease`].
//!
//! - A claim is one conditional update: `owner`, `lease_until` and `epoch + 1` are set only while
//!   the job needs an owner and has none or its lease has expired, so of several nodes claiming
//!   a job at once exactly one wins, and every claim gives the job a new epoch (the fence of its
//!   checkpoints on the target).
//! - A renewal extends the leases a node still holds with the epochs it runs; a lease it no
//!   longer holds (taken over after it expired) is not renewed, and the node stops that run.
//! - A release gives a job up (drain, a finished run) only while the node still holds that
//!   epoch.
//! - Actions on a job owned by another node (stop, complete, pause, …) are queued here, and its
//!   owner takes them with its next renewal.
//! - A node's heartbeat carries the id of its process (`instance`, new at every start): a
//!   heartbeat under a node id whose row another process has kept fresh (within a lease, not
//!   draining) is refused ([`ServiceError::NodeIdInUse`]), so two processes started with one
//!   `--node-id` cannot share (and keep taking from each other) the leases of that id.

use super::sql::P;
use super::Store;
use crate::error::ServiceError;
use crate::lease::{Lease, Node, OWNED_STATUSES};
use crate::status::JobStatus;

/// An action queued for the owner of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAction {
    pub id: i64,
    pub job_id: String,
    pub action: String,
}

fn int(p: &P) -> i64 {
    match p {
        P::Int(i) => *i,
        P::Real(f) => *f as i64,
        P::Text(t) => t.parse().unwrap_or(0),
        P::Null => 0,
    }
}

fn text(p: &P) -> String {
    match p {
        P::Text(t) => t.clone(),
        P::Int(i) => i.to_string(),
        P::Real(f) => f.to_string(),
        P::Null => String::new(),
    }
}

fn owned_statuses() -> Vec<P> {
    OWNED_STATUSES.iter().map(|s| P::Int(s.code())).collect()
}

impl Store {
    /// Records that `node` is alive now (`now_ms`), with its limit and whether it drains.
    /// `instance` identifies this process; `lease_ms`: a heartbeat older than this is of a dead
    /// process. Fails with [`ServiceError::NodeIdInUse`] while another live process heartbeats
    /// under `node`.
    pub async fn heartbeat(
        &self,
        node: &str,
        instance: &str,
        max_running: usize,
        draining: bool,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<(), ServiceError> {
        let n = self
            .exec(
                "UPDATE nodes SET heartbeat = ?, max_running = ?, draining = ?, instance = ? \
                 WHERE node_id = ? AND (instance = ? OR instance = '' OR draining = 1 OR heartbeat < ?)",
                vec![
                    P::Int(now_ms),
                    P::Int(max_running as i64),
                    P::Int(draining as i64),
                    P::Text(instance.into()),
                    P::Text(node.into()),
                    P::Text(instance.into()),
                    P::Int(now_ms - lease_ms),
                ],
            )
            .await?;
        if n > 0 {
            return Ok(());
        }
        let rows = self
            .query(
                "SELECT instance, heartbeat, draining FROM nodes WHERE node_id = ?",
                vec![P::Text(node.into())],
            )
            .await?;
        if let Some(r) = rows.first() {
            // Not updated: refused only while another live process holds the id (the UPDATE's
            // condition asked again: one that changes no value also reports 0 rows on MySQL).
            let (other, heartbeat, other_draining) = (
                r.first().map(text).unwrap_or_default(),
                r.get(1).map(int).unwrap_or(0),
                r.get(2).map(int).unwrap_or(0) != 0,
            );
            if other != instance && !other.is_empty() && !other_draining && heartbeat >= now_ms - lease_ms {
                return Err(ServiceError::NodeIdInUse {
                    node: node.into(),
                    heartbeat_age_ms: now_ms - heartbeat,
                });
            }
            return Ok(());
        }
        // First heartbeat of this id; a process racing this one inserts first and this one
        // finds its row on the next heartbeat.
        let _ = self
            .exec(
                "INSERT INTO nodes (heartbeat, max_running, draining, node_id, instance) VALUES (?, ?, ?, ?, ?)",
                vec![
                    P::Int(now_ms),
                    P::Int(max_running as i64),
                    P::Int(draining as i64),
                    P::Text(node.into()),
                    P::Text(instance.into()),
                ],
            )
            .await;
        Ok(())
    }

    /// Every node that ever sent a heartbeat.
    pub async fn nodes(&self) -> Result<Vec<Node>, ServiceError> {
        let rows = self
            .query(
                "SELECT node_id, heartbeat, max_running, draining FROM nodes ORDER BY node_id",
                vec![],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Node {
                node_id: text(&r[0]),
                heartbeat_ms: int(&r[1]),
                max_running: int(&r[2]).max(0) as usize,
                draining: int(&r[3]) != 0,
            })
            .collect())
    }

    /// The leases of every job that needs an owner or has one, oldest job first.
    pub async fn leases(&self) -> Result<Vec<Lease>, ServiceError> {
        let rows = self
            .query(
                "SELECT job_id, status, paused, owner, lease_until, epoch FROM jobs ORDER BY seq",
                vec![],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let status = JobStatus::from_code(int(&r[1]))?;
                Some(Lease {
                    job_id: text(&r[0]),
                    status,
                    paused_all: text(&r[2]) == "all",
                    owner: text(&r[3]),
                    until_ms: int(&r[4]),
                    epoch: int(&r[5]).max(0) as u64,
                })
            })
            .filter(|l| crate::lease::needs_owner(l) || !l.owner.is_empty())
            .collect())
    }

    /// Claims `job_id` for `node` until `until_ms` when it is claimable at `now_ms`; the new
    /// epoch when the claim won.
    pub async fn claim(
        &self,
        job_id: &str,
        node: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<u64>, ServiceError> {
        let mut vals = vec![P::Text(node.into()), P::Int(until_ms), P::Text(job_id.into())];
        vals.extend(owned_statuses());
        vals.push(P::Int(now_ms));
        let n = self
            .exec(
                "UPDATE jobs SET owner = ?, lease_until = ?, epoch = epoch + 1 WHERE job_id = ? \
                 AND status IN (?, ?, ?, ?, ?) AND paused <> 'all' AND (owner = '' OR lease_until < ?)",
                vals,
            )
            .await?;
        if n != 1 {
            return Ok(None);
        }
        let rows = self
            .query(
                "SELECT epoch FROM jobs WHERE job_id = ? AND owner = ?",
                vec![P::Text(job_id.into()), P::Text(node.into())],
            )
            .await?;
        Ok(rows.first().map(|r| int(&r[0]).max(0) as u64))
    }

    /// Extends `node`'s leases to `until_ms`; the jobs it holds now, with their epochs.
    pub async fn renew(&self, node: &str, until_ms: i64) -> Result<Vec<(String, u64)>, ServiceError> {
        self.exec(
            "UPDATE jobs SET lease_until = ? WHERE owner = ?",
            vec![P::Int(until_ms), P::Text(node.into())],
        )
        .await?;
        let rows = self
            .query(
                "SELECT job_id, epoch FROM jobs WHERE owner = ? ORDER BY seq",
                vec![P::Text(node.into())],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (text(&r[0]), int(&r[1]).max(0) as u64))
            .collect())
    }

    /// Gives a job up, when `node` still holds it at `epoch`. `true` when released.
    pub async fn release(&self, job_id: &str, node: &str, epoch: u64) -> Result<bool, ServiceError> {
        let n = self
            .exec(
                "UPDATE jobs SET owner = '', lease_until = 0 WHERE job_id = ? AND owner = ? AND epoch = ?",
                vec![P::Text(job_id.into()), P::Text(node.into()), P::Int(epoch as i64)],
            )
            .await?;
        Ok(n == 1)
    }

    /// The owner of a job and until when (`None`: no such job).
    pub async fn owner(&self, job_id: &str) -> Result<Option<(String, i64, u64)>, ServiceError> {
        let rows = self
            .query(
                "SELECT owner, lease_until, epoch FROM jobs WHERE job_id = ?",
                vec![P::Text(job_id.into())],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| (text(&r[0]), int(&r[1]), int(&r[2]).max(0) as u64)))
    }

    /// Queues `action` for the owner of `job_id`.
    pub async fn push_action(&self, job_id: &str, action: &str, now: i64) -> Result<(), ServiceError> {
        self.exec(
            "INSERT INTO job_actions (job_id, action, created_at) VALUES (?, ?, ?)",
            vec![P::Text(job_id.into()), P::Text(action.into()), P::Int(now)],
        )
        .await?;
        Ok(())
    }

    /// The actions queued for the jobs `node` owns, oldest first.
    pub async fn actions_for(&self, node: &str) -> Result<Vec<QueuedAction>, ServiceError> {
        let rows = self
            .query(
                "SELECT a.id, a.job_id, a.action FROM job_actions a JOIN jobs j ON j.job_id = a.job_id \
                 WHERE j.owner = ? ORDER BY a.id",
                vec![P::Text(node.into())],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| QueuedAction {
                id: int(&r[0]),
                job_id: text(&r[1]),
                action: text(&r[2]),
            })
            .collect())
    }

    /// Removes a queued action (taken). `false` when another node took it first.
    pub async fn take_action(&self, id: i64) -> Result<bool, ServiceError> {
        Ok(self
            .exec("DELETE FROM job_actions WHERE id = ?", vec![P::Int(id)])
            .await?
            == 1)
    }
}
