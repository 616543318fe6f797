//! The job manager: runs pre-checks, jobs and compare tasks in tokio tasks, moves jobs through
//! the status machine, keeps the running jobs' detail (steps, progress, lag) and persists it at
//! most once a second and on every step change, and resumes jobs after a restart.
//!
//! - A started job waits in 6 (ReadyRun) for its ExpectTime (RunMode 2) and for a free slot
//!   (`max_running_jobs`), then runs `ferry_job::run_job` in 7 (Running). The job's checkpoint key
//!   on the target (`ferry_meta`) is its JobId, so two jobs with the same JobName never share
//!   checkpoints.
//! - MigrateType 3: when the replay has caught up (`ReplayControl::is_ready`) the job goes to 8
//!   (ReadyComplete); CompleteMigrateJob → 12 (Completing) → `ReplayControl::complete()` → 9.
//!   A job in 8 returns to 7 when it is no longer caught up: the replay is retrying an outage
//!   (the source or the target unreachable or failing), or it is more than
//!   [`LEAVE_READY_LAG_SECS`] behind; it goes to 8 again once caught up.
//! - Outages: while an engine retries a transient failure, the job's `ErrorMessage` (the API's
//!   `ErrorInfo` and `BriefMsg`) and the current step's message say which side, the error, the
//!   attempt and since when; they are cleared when it recovers. An outage longer than
//!   `Ferry.RetryWindowSeconds` fails the job with the last error.
//! - Failed runs: a run that ends with a transient error (one the engines do not retry
//!   themselves, e.g. a server unreachable while the structure is copied) is run again by the
//!   service from its checkpoints after a backoff with jitter ([`crate::retry`]), the job staying
//!   in 7 with the error in `ErrorMessage`, for as long as the outage lasts at most the job's
//!   `Ferry.RetryWindowSeconds`; then, or at once for a definite error, the job fails (10). The
//!   retries are counted in the job (`ferry_job_runs_retried_total`).
//! - StopMigrateJob → 11 → the run is interrupted at a safe point → 10 "stopped by
//!   StopMigrateJob". In the incremental phase the replay is cancelled at a transaction boundary
//!   (up to [`CANCEL_GRACE`]); in the other phases the run's future is dropped: the load's chunk
//!   checkpoints and the applier's checkpoint are transactional, so nothing half-done is kept.
//! - Restart: [`Manager::resume_all`] re-checks jobs in 3, schedules 6 again (timed jobs still at
//!   their time), runs 7 and 8 again (8 returns to 7 until the replay has caught up again), runs
//!   12 again and completes it, and ends 11 in 10. `run_job` resumes from the target's phase,
//!   chunk and replay checkpoints. Jobs paused with `PauseMode` `all` stay paused.
//! - Shutdown ([`Manager::shutdown`]) interrupts every run at a safe point and leaves its status
//!   as it is, so the next start resumes it.
//! - Cluster mode ([`ClusterOptions`], a store shared by several nodes): a job runs only on the
//!   node holding its lease, with the lease's epoch in `RunOptions::epoch`; [`cluster`] claims,
//!   renews and releases leases, stops a run at once when its lease is lost, and carries out the
//!   actions other nodes queued for its jobs. A control operation on a job another node runs
//!   changes the store as in one node and queues the local part for the owner.
//!
//! Split by concern: [`check`] (pre-checks), [`control`] (start, stop, complete, pause, resume,
//! secrets, rate), [`run`] (the run driver, its end and retries), [`persist`] (saving a running
//! job's detail), [`compare`] (compare tasks), [`cluster`] (leases); operations fail with
//! [`ControlError`].

mod check;
mod cluster;
mod compare;
mod control;
mod error;
mod persist;
mod run;

pub use cluster::{ClusterOptions, DEFAULT_CLAIM_INTERVAL, DEFAULT_LEASE};
pub use error::ControlError;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::throttle::Throttle;
use ferry_job::runner::{JobSummary, ReplayControl};
use ferry_job::{JobError, JobSpec};
use tokio::sync::{watch, Notify, Semaphore};
use tracing::info;

use crate::detail::Detail;
use crate::error::ServiceError;
use crate::job::PauseMode;
use crate::retry::RetryPolicy;
use crate::status::{JobStatus, Operation};
use crate::store::{now, CompareChange, JobRow, Patch, Store, Update};

/// How long a cancelled replay may take to stop at a transaction boundary before its run is
/// dropped.
pub const CANCEL_GRACE: Duration = Duration::from_secs(30);

/// A job in 8 (ReadyComplete) further behind than this returns to 7.
pub const LEAVE_READY_LAG_SECS: f64 = 10.0;

/// The ErrorMessage of a stopped job.
pub const STOPPED: &str = "stopped by StopMigrateJob";

/// Why a run should end early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Run,
    Stop,
    Pause,
    Shutdown,
    /// Cluster mode: another node holds the job's lease now; nothing more is written.
    LeaseLost,
}

/// How a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// From 6 (StartMigrateJob, or 6 at restart): waits for ExpectTime.
    Fresh,
    /// From 7/8 (restart, ResumeMigrateJob).
    Resume,
    /// From 12 (restart while completing).
    Completing,
}

/// A job being run by this process.
pub struct Run {
    pub control: ReplayControl,
    pub throttle: Arc<Throttle>,
    pub detail: Arc<Mutex<Detail>>,
    intent: watch::Sender<Intent>,
    finished: watch::Sender<bool>,
    /// Apply paused (`PauseMode` `target`).
    pub apply_paused: AtomicBool,
    /// Cluster mode: the epoch of the lease the run holds.
    pub epoch: Option<u64>,
}

impl Run {
    fn new(spec: &JobSpec, detail: Detail, epoch: Option<u64>) -> Run {
        Run {
            control: ReplayControl::new(),
            throttle: Arc::new(Throttle::new(
                spec.options.rows_per_second,
                spec.options.bytes_per_second,
            )),
            detail: Arc::new(Mutex::new(detail)),
            intent: watch::channel(Intent::Run).0,
            finished: watch::channel(false).0,
            apply_paused: AtomicBool::new(false),
            epoch,
        }
    }

    /// The detail now.
    pub fn snapshot(&self) -> Detail {
        self.detail.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// The run's intent.
    pub fn intent(&self) -> Intent {
        *self.intent.borrow()
    }

    fn interrupt(&self, why: Intent) {
        self.intent.send_replace(why);
        self.control.cancel();
    }
}

/// The job manager.
pub struct Manager {
    store: Store,
    slots: Arc<Semaphore>,
    runs: Mutex<HashMap<String, Arc<Run>>>,
    checks: Mutex<HashMap<String, (Arc<AtomicU8>, tokio::task::AbortHandle)>>,
    compares: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    closing: AtomicBool,
    retry: RetryPolicy,
    max_running: usize,
    /// Cluster mode (a shared store), with the epochs of the leases this node holds.
    cluster: Option<ClusterOptions>,
    leases: Mutex<HashMap<String, u64>>,
    /// Wakes the cluster loop (a job to claim, an action to queue).
    wake: Notify,
    /// This process, in its node's heartbeats (cluster mode: one process per node id).
    instance: String,
}

/// `DstInfo.ReadOnly`: puts the target's `read_only` back (stop, deletion). A failure (target
/// unreachable) is logged; the next completion of the job restores it.
async fn restore_read_only(spec: &JobSpec) {
    if let Err(e) = ferry_job::protect::restore(spec).await {
        tracing::warn!(error = %e, "DstInfo.ReadOnly: the target's read_only could not be restored");
    }
}

/// [`restore_read_only`] for a stored job (stop of a job that is not running, deletion).
pub async fn release_target(job: &JobRow) {
    if let Ok(spec) = spec_of(job) {
        restore_read_only(&spec).await;
    }
}

/// The validated spec of a stored job, keyed by its JobId on the target.
pub fn spec_of(job: &JobRow) -> Result<JobSpec, ControlError> {
    job.request
        .validate(&job.job_id)
        .map_err(ControlError::InvalidJob)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a replaying job is ready to complete (status 8), with hysteresis: it becomes ready
/// when the replay has caught up (and nothing is failing), and stops being ready when an outage
/// is under way, the lag exceeds [`LEAVE_READY_LAG_SECS`], or the apply is paused.
pub fn ready_now(was_ready: bool, caught_up: bool, problem: bool, lag_seconds: f64, paused: bool) -> bool {
    if paused || problem {
        return false;
    }
    caught_up || (was_ready && lag_seconds <= LEAVE_READY_LAG_SECS)
}

/// The outcome of a run.
enum RunEnd {
    Returned(Box<Result<JobSummary, JobError>>),
    Interrupted,
}

impl Manager {
    pub fn new(store: Store, max_running_jobs: usize, retry: RetryPolicy) -> Arc<Manager> {
        Manager::with_cluster(store, max_running_jobs, retry, None)
    }

    /// A manager; in cluster mode (`cluster`) it runs only the jobs whose lease it holds.
    pub fn with_cluster(
        store: Store,
        max_running_jobs: usize,
        retry: RetryPolicy,
        cluster: Option<ClusterOptions>,
    ) -> Arc<Manager> {
        Arc::new(Manager {
            retry,
            max_running: max_running_jobs.max(1),
            cluster,
            leases: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            store,
            slots: Arc::new(Semaphore::new(max_running_jobs.max(1))),
            runs: Mutex::new(HashMap::new()),
            checks: Mutex::new(HashMap::new()),
            compares: Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
            instance: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The run of a job, when this process runs it.
    pub fn run_of(&self, job_id: &str) -> Option<Arc<Run>> {
        lock(&self.runs).get(job_id).cloned()
    }

    /// The progress (0..=100) of a running check.
    pub fn check_progress(&self, job_id: &str) -> Option<u8> {
        lock(&self.checks)
            .get(job_id)
            .map(|(p, _)| p.load(Ordering::Relaxed))
    }

    /// The detail of a job: live when running here, else as stored.
    pub fn detail_of(&self, job: &JobRow) -> Detail {
        match self.run_of(&job.job_id) {
            Some(run) => run.snapshot(),
            None => job.detail.clone(),
        }
    }

    /// Resumes what was under way when the service last stopped. In cluster mode the cluster
    /// loop starts instead: it claims the jobs to resume one by one ([`cluster`]).
    pub async fn resume_all(self: &Arc<Self>) -> Result<(), ServiceError> {
        if self.cluster.is_some() {
            self.join_cluster().await?;
            self.spawn_cluster_loop();
            return Ok(());
        }
        for job in self.store.jobs().await? {
            if job.status == JobStatus::Checking {
                info!(job_id = %job.job_id, "resuming the pre-check");
                self.spawn_check(job);
            } else {
                self.resume_job(job).await?;
            }
        }
        for c in self.store.all_compares().await? {
            if c.status == "running" {
                self.store
                    .update_compare(
                        &c.compare_task_id,
                        &["running"],
                        CompareChange {
                            status: "failed".into(),
                            report: None,
                            message: Some("interrupted by a restart of ferry serve: start it again".into()),
                            started_at: None,
                            finished_at: Some(now()),
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs, schedules, completes or ends a job as its status says (a restart, or a lease just
    /// claimed): 6 scheduled, 7 and 8 resumed (not when paused with PauseMode `all`), 12
    /// completed, 11 ended in 10.
    async fn resume_job(self: &Arc<Self>, job: JobRow) -> Result<(), ServiceError> {
        match job.status {
            JobStatus::ReadyRun => {
                info!(job_id = %job.job_id, "scheduling again");
                self.start_run(job, Entry::Fresh).await;
            }
            JobStatus::Running | JobStatus::ReadyComplete if job.paused != Some(PauseMode::All) => {
                info!(job_id = %job.job_id, "resuming the run");
                self.start_run(job, Entry::Resume).await;
            }
            JobStatus::Completing => {
                info!(job_id = %job.job_id, "resuming the completion");
                self.start_run(job, Entry::Completing).await;
            }
            JobStatus::Stopping => self.end_stopped(&job.job_id, job.detail.clone()).await?,
            _ => {}
        }
        Ok(())
    }

    /// Interrupts every run, check and compare at a safe point and waits for the runs to end
    /// (their statuses stay as they are: the next start resumes them). In cluster mode the node
    /// then releases its leases, so that other nodes resume its jobs at once.
    pub async fn shutdown(&self) {
        self.shutdown_runs().await;
        self.release_all().await;
    }

    async fn shutdown_runs(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let runs: Vec<Arc<Run>> = lock(&self.runs).values().cloned().collect();
        for r in &runs {
            r.interrupt(Intent::Shutdown);
        }
        for (_, (_, h)) in lock(&self.checks).drain() {
            h.abort();
        }
        for (_, h) in lock(&self.compares).drain() {
            h.abort();
        }
        for r in runs {
            let mut rx = r.finished.subscribe();
            let _ = tokio::time::timeout(CANCEL_GRACE + Duration::from_secs(5), rx.wait_for(|f| *f)).await;
        }
    }

    /// Ends a job in 11 that has no run here (stopped while paused, or at a restart): 10 with
    /// "stopped by StopMigrateJob".
    async fn end_stopped(&self, job_id: &str, mut detail: Detail) -> Result<(), ServiceError> {
        detail.fail(STOPPED, now());
        self.store
            .update(
                job_id,
                Some(&[JobStatus::Stopping]),
                Patch {
                    status: Some(JobStatus::Failed),
                    end_time: Some(Some(now())),
                    error_message: Some(STOPPED.into()),
                    error_kind: Some(Some(ferry_core::ErrorKind::Definite)),
                    detail: Some(detail),
                    paused: Some(None),
                    ..Patch::default()
                },
            )
            .await?;
        Ok(())
    }

    /// The job, or NotFound.
    pub async fn existing(&self, job_id: &str) -> Result<JobRow, ControlError> {
        self.store
            .job(job_id)
            .await?
            .ok_or_else(|| ControlError::not_found(job_id))
    }

    async fn store_update(
        &self,
        job_id: &str,
        from: &[JobStatus],
        op: Operation,
        patch: Patch,
    ) -> Result<JobRow, ControlError> {
        match self.store.update(job_id, Some(from), patch).await? {
            Update::Done(j) => Ok(*j),
            Update::WrongStatus(s) => Err(op.refused(job_id, s)),
            Update::Missing => Err(ControlError::not_found(job_id)),
        }
    }

    /// DeleteMigrateJob: removes a job (and its compare tasks and lag series) in a status that
    /// allows it.
    pub async fn delete(&self, job_id: &str) -> Result<(), ControlError> {
        // DstInfo.ReadOnly: the target's read_only is put back before the job is forgotten.
        if let Some(job) = self
            .store
            .job(job_id)
            .await?
            .filter(|j| Operation::Delete.allows(j.status))
        {
            release_target(&job).await;
        }
        match self.store.delete_job(job_id, Operation::Delete.allowed()).await? {
            Update::Done(_) => {
                crate::repair_sql::remove_job(&self.store, job_id).await;
                Ok(())
            }
            Update::WrongStatus(s) => Err(Operation::Delete.refused(job_id, s)),
            Update::Missing => Err(ControlError::not_found(job_id)),
        }
    }

    /// Applies `patch` when the job's status allows `op`.
    pub async fn transition(
        &self,
        job_id: &str,
        op: Operation,
        patch: Patch,
    ) -> Result<JobRow, ControlError> {
        self.store_update(job_id, op.allowed(), op, patch).await
    }

    /// True while the service accepts work.
    pub fn is_open(&self) -> bool {
        !self.closing.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_has_hysteresis() {
        // Caught up and healthy: ready.
        assert!(ready_now(false, true, false, 0.0, false));
        // Briefly behind under writes: stays ready.
        assert!(ready_now(true, false, false, 4.0, false));
        // Not yet caught up: not ready.
        assert!(!ready_now(false, false, false, 4.0, false));
        // Far behind, an outage, or paused: leaves 8.
        assert!(!ready_now(true, false, false, 11.0, false));
        assert!(!ready_now(true, true, true, 0.0, false));
        assert!(!ready_now(true, true, false, 0.0, true));
    }
}
