//! Cluster mode: several `ferry serve` nodes on one shared job store. Every claim interval (and
//! when woken) a node
//!
//! 1. records its heartbeat (and whether it drains);
//! 2. renews its leases, and stops at once every run whose lease it no longer holds (taken over
//!    after it expired) or whose renewal has failed for a whole lease (the store unreachable:
//!    the lease has expired for the others too);
//! 3. releases the leases of jobs it holds but no longer runs (finished, paused, stopped);
//! 4. carries out the actions other nodes queued for its jobs (stop, complete, pause, resume,
//!    restart with new secrets, rows/s);
//! 5. unless draining, claims runnable jobs within its quota ([`crate::lease::claim_quota`]:
//!    the least loaded node first, never above its `max_running_jobs`) and runs them with the
//!    claim's epoch, which the engines write with every checkpoint on the target.
//!
//! A dead node's jobs are claimed by another one after its lease expires: within the lease
//! length plus one claim interval. A draining node (SIGTERM) stops its runs at a safe point and
//! releases their leases, so that the others claim them at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{lock, Intent, Manager, Run};
use crate::lease::{self, Node};

/// Default lease length.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Default claim interval.
pub const DEFAULT_CLAIM_INTERVAL: Duration = Duration::from_secs(2);

/// The actions queued for a job's owner (`job_actions.action`).
pub(super) const ACTION_STOP: &str = "stop";
pub(super) const ACTION_COMPLETE: &str = "complete";
pub(super) const ACTION_PAUSE_ALL: &str = "pause-all";
pub(super) const ACTION_PAUSE_TARGET: &str = "pause-target";
pub(super) const ACTION_RESUME_TARGET: &str = "resume-target";
pub(super) const ACTION_RESTART: &str = "restart";
pub(super) const ACTION_RATE: &str = "rate";

/// A node of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// This node's id (unique in the cluster; default `HOSTNAME:PORT`).
    pub node_id: String,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// How often a node renews and claims.
    pub claim_interval: Duration,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Manager {
    /// Cluster mode: the lease a run's writes are conditional on (this node, the run's epoch).
    pub(super) fn run_lease<'a>(&'a self, run: &Run) -> Option<(&'a str, u64)> {
        Some((self.cluster.as_ref()?.node_id.as_str(), run.epoch?))
    }

    /// Cluster mode: this node holds the job's lease.
    pub fn holds_lease(&self, job_id: &str) -> bool {
        lock(&self.leases).contains_key(job_id)
    }

    /// This node's id in cluster mode.
    pub fn node_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.node_id.as_str())
    }

    pub(super) fn spawn_cluster_loop(self: &Arc<Self>) {
        let Some(c) = self.cluster.clone() else {
            return;
        };
        let mgr = Arc::downgrade(self);
        info!(node_id = %c.node_id, lease_ms = c.lease.as_millis() as u64, "cluster mode: claiming jobs");
        tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                let Some(m) = mgr.upgrade() else {
                    return;
                };
                if !m.is_open() {
                    return;
                }
                match m.cluster_round(&c).await {
                    Ok(()) => renewed = Instant::now(),
                    Err(e @ crate::ServiceError::NodeIdInUse { .. }) => {
                        // Another process took this id over (this one was frozen past its
                        // lease): it owns the id's leases now; this one runs nothing more.
                        tracing::error!(error = %e, "cluster mode: this node's id is used by another process: stopping every run here and claiming nothing");
                        m.lose_all("another process uses this node id");
                    }
                    Err(e) => {
                        warn!(error = %e, "cluster mode: the job store cannot be reached");
                        if renewed.elapsed() >= c.lease {
                            m.lose_all("the leases could not be renewed for a whole lease");
                        }
                    }
                }
                let wake = m.wake.notified();
                let _ = tokio::time::timeout(c.claim_interval, wake).await;
            }
        });
    }

    /// The first heartbeat, before anything is claimed: refused while another process uses
    /// this node id. A process of the same id that ended without draining (killed, crashed)
    /// keeps its row fresh for up to a lease: this waits that long for it to go stale, then
    /// fails with [`crate::ServiceError::NodeIdInUse`] naming the setting.
    pub(super) async fn join_cluster(&self) -> Result<(), crate::ServiceError> {
        let Some(c) = &self.cluster else {
            return Ok(());
        };
        let lease_ms = c.lease.as_millis() as i64;
        let give_up = Instant::now() + c.lease + c.claim_interval;
        loop {
            match self
                .store
                .heartbeat(
                    &c.node_id,
                    &self.instance,
                    self.max_running,
                    false,
                    now_ms(),
                    lease_ms,
                )
                .await
            {
                Err(e @ crate::ServiceError::NodeIdInUse { .. }) => {
                    if Instant::now() >= give_up {
                        return Err(e);
                    }
                    warn!(error = %e, "waiting for the node id's previous process to go stale");
                }
                other => return other,
            }
            tokio::time::sleep(c.claim_interval.min(Duration::from_secs(1))).await;
        }
    }

    /// Stops every run here at once: their leases are gone.
    fn lose_all(&self, why: &str) {
        let runs: Vec<_> = lock(&self.runs).drain().collect();
        lock(&self.leases).clear();
        for (id, run) in runs {
            warn!(job_id = %id, why, "stopping the run: lease lost");
            run.interrupt(Intent::LeaseLost);
        }
    }

    async fn cluster_round(self: &Arc<Self>, c: &ClusterOptions) -> Result<(), crate::ServiceError> {
        let me = c.node_id.as_str();
        let lease_ms = c.lease.as_millis() as i64;
        self.store
            .heartbeat(
                me,
                &self.instance,
                self.max_running,
                !self.is_open(),
                now_ms(),
                lease_ms,
            )
            .await?;
        let held = self.store.renew(me, now_ms() + lease_ms).await?;
        // Runs whose lease is gone stop at once.
        let lost: Vec<String> = lock(&self.runs)
            .iter()
            .filter(|(id, run)| !held.iter().any(|(h, e)| h == *id && Some(*e) == run.epoch))
            .map(|(id, _)| id.clone())
            .collect();
        for id in lost {
            if let Some(run) = lock(&self.runs).remove(&id) {
                warn!(job_id = %id, "the job's lease is held by another node now: stopping the run");
                run.interrupt(Intent::LeaseLost);
            }
            lock(&self.leases).remove(&id);
        }
        // Leases of jobs not running here any more go back.
        for (id, epoch) in &held {
            if self.run_of(id).is_none() {
                lock(&self.leases).remove(id);
                if self.store.release(id, me, *epoch).await? {
                    info!(job_id = %id, "released the job's lease");
                }
            }
        }
        for a in self.store.actions_for(me).await? {
            if self.store.take_action(a.id).await? {
                self.carry_out(&a.job_id, &a.action).await;
            }
        }
        if !self.is_open() {
            return Ok(());
        }
        self.claim_round(c, lease_ms).await
    }

    async fn claim_round(
        self: &Arc<Self>,
        c: &ClusterOptions,
        lease_ms: i64,
    ) -> Result<(), crate::ServiceError> {
        let me = c.node_id.as_str();
        let now = now_ms();
        let leases = self.store.leases().await?;
        let nodes: Vec<Node> = self
            .store
            .nodes()
            .await?
            .into_iter()
            .filter(|n| lease::alive(n, now, lease_ms))
            .collect();
        let loads: Vec<(Node, usize)> = nodes
            .into_iter()
            .map(|n| {
                let owned = leases
                    .iter()
                    .filter(|l| l.owner == n.node_id && l.until_ms >= now)
                    .count();
                (n, owned)
            })
            .collect();
        let candidates: Vec<&lease::Lease> = leases.iter().filter(|l| lease::claimable(l, now)).collect();
        let mut quota = lease::claim_quota(me, &loads, self.max_running, candidates.len());
        for l in candidates {
            if quota == 0 {
                break;
            }
            let Some(epoch) = self.store.claim(&l.job_id, me, now_ms() + lease_ms, now).await? else {
                continue;
            };
            quota -= 1;
            info!(job_id = %l.job_id, epoch, "claimed the job's lease");
            lock(&self.leases).insert(l.job_id.clone(), epoch);
            match self.store.job(&l.job_id).await? {
                Some(job) => self.resume_job(job).await?,
                None => {
                    lock(&self.leases).remove(&l.job_id);
                }
            }
        }
        Ok(())
    }

    /// Carries out an action another node queued for a job run here.
    async fn carry_out(self: &Arc<Self>, job_id: &str, action: &str) {
        let Some(run) = self.run_of(job_id) else {
            return;
        };
        let (name, arg) = action.split_once(':').unwrap_or((action, ""));
        info!(
            job_id,
            action = name,
            "carrying out an action queued by another node"
        );
        match name {
            ACTION_STOP => run.interrupt(Intent::Stop),
            ACTION_COMPLETE => run.control.complete(),
            ACTION_PAUSE_ALL => run.interrupt(Intent::Pause),
            ACTION_PAUSE_TARGET | ACTION_RESUME_TARGET => {
                let on = name == ACTION_PAUSE_TARGET;
                run.apply_paused.store(on, Ordering::SeqCst);
                run.control.set_apply_paused(on);
            }
            ACTION_RESTART => {
                // Off the loop: the run may take a while to reach a safe point.
                if let Ok(job) = self.existing(job_id).await {
                    let m = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = m.restart_run(job).await {
                            warn!(error = %e, "restarting the run with new secrets");
                        }
                    });
                }
            }
            ACTION_RATE => {
                if let Ok(rps) = arg.parse::<u64>() {
                    self.set_rows_per_second(job_id, rps);
                }
            }
            other => warn!(job_id, action = other, "unknown queued action"),
        }
    }

    /// Cluster mode: queues `action` for the node running `job_id` when another live node holds
    /// its lease (`true`: queued; the owner carries it out on its next round).
    pub(super) async fn queue_for_owner(
        &self,
        job_id: &str,
        action: &str,
    ) -> Result<bool, crate::ServiceError> {
        // owned_elsewhere is false outside cluster mode.
        if self.run_of(job_id).is_some() || !self.owned_elsewhere(job_id).await? {
            return Ok(false);
        }
        self.store
            .push_action(job_id, action, crate::store::now())
            .await?;
        Ok(true)
    }

    /// Releases every lease this node holds (after its runs stopped: drain, shutdown).
    pub(super) async fn release_all(&self) {
        let Some(c) = &self.cluster else {
            return;
        };
        let _ = self
            .store
            .heartbeat(
                &c.node_id,
                &self.instance,
                self.max_running,
                true,
                now_ms(),
                c.lease.as_millis() as i64,
            )
            .await;
        let held: Vec<(String, u64)> = lock(&self.leases).drain().collect();
        for (id, epoch) in held {
            match self.store.release(&id, &c.node_id, epoch).await {
                Ok(true) => info!(job_id = %id, "released the job's lease for another node"),
                Ok(false) => {}
                Err(e) => warn!(job_id = %id, error = %e, "releasing the job's lease; it expires instead"),
            }
        }
    }

    /// Cluster mode: another live node holds the job's lease.
    pub(super) async fn owned_elsewhere(&self, job_id: &str) -> Result<bool, crate::ServiceError> {
        let Some(c) = &self.cluster else {
            return Ok(false);
        };
        Ok(matches!(
            self.store.owner(job_id).await?,
            Some((owner, until_ms, _)) if !owner.is_empty() && owner != c.node_id && until_ms >= now_ms()
        ))
    }
}
