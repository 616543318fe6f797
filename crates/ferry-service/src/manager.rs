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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_api::ApiError;
use ferry_core::progress::{null_sink, ProgressEvent, ProgressSink};
use ferry_core::throttle::Throttle;
use ferry_job::runner::{JobSummary, ReplayControl, RunOptions};
use ferry_job::spec::MigrateJobRequest;
use ferry_job::{JobError, JobSpec};
use ferry_verify::VerifyMode;
use serde_json::Value;
use tokio::sync::{watch, Notify, Semaphore};
use tracing::{info, info_span, warn, Instrument};

use crate::detail::{Detail, STEP_FAILED};
use crate::error::ServiceError;
use crate::status::{JobStatus, Operation};
use crate::store::{now, CheckState, CompareChange, JobRow, Patch, Store, StoredCheckItem, Update};

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
}

impl Run {
    fn new(spec: &JobSpec, detail: Detail) -> Run {
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
}

/// A stored request without the accepted-and-ignored cloud-only fields `ferry_job::spec` does
/// not know (`Tags`, `SrcNodeType`, `SrcInfo.CcnId`, `SrcInfo.EngineVersion`, …).
pub fn spec_request(request: &Value) -> Value {
    let mut r = request.clone();
    if let Some(m) = r.as_object_mut() {
        m.remove("Tags");
        m.remove("SrcNodeType");
        for side in ["SrcInfo", "DstInfo"] {
            if let Some(Value::Object(e)) = m.get_mut(side) {
                e.remove("CcnId");
                e.remove("EngineVersion");
            }
        }
    }
    r
}

/// `DstInfo.ReadOnly`: puts the target's `read_only` back (stop, deletion). A failure (target
/// unreachable) is logged; the next completion of the job restores it.
async fn restore_read_only(spec: &JobSpec) {
    if let Err(e) = ferry_job::protect::restore(spec).await {
        warn!(error = %e, "DstInfo.ReadOnly: the target's read_only could not be restored");
    }
}

/// [`restore_read_only`] for a stored job (stop of a job that is not running, deletion).
pub async fn release_target(job: &JobRow) {
    if let Ok(spec) = spec_of(job) {
        restore_read_only(&spec).await;
    }
}

/// The validated spec of a stored job, keyed by its JobId on the target.
pub fn spec_of(job: &JobRow) -> Result<JobSpec, String> {
    let req: MigrateJobRequest = serde_json::from_value(spec_request(&job.request))
        .map_err(|e| format!("the stored job request does not parse: {e}"))?;
    let mut spec = req.validate().map_err(|e| e.to_string())?;
    spec.name = job.job_id.clone();
    Ok(spec)
}

fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_i64()
}

/// `MigrateOption.MigrateType` and `ConsistencyType` of a stored request.
pub fn types_of(request: &Value) -> (i64, i64) {
    (
        int_at(request, &["MigrateOption", "MigrateType"]).unwrap_or(2),
        int_at(request, &["MigrateOption", "ConsistencyType"]).unwrap_or(1),
    )
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
    pub fn new(store: Store, max_running_jobs: usize) -> Arc<Manager> {
        Arc::new(Manager {
            store,
            slots: Arc::new(Semaphore::new(max_running_jobs.max(1))),
            runs: Mutex::new(HashMap::new()),
            checks: Mutex::new(HashMap::new()),
            compares: Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
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

    /// Resumes what was under way when the service last stopped.
    pub async fn resume_all(self: &Arc<Self>) -> Result<(), ServiceError> {
        for job in self.store.jobs().await? {
            match job.status {
                JobStatus::Checking => {
                    info!(job_id = %job.job_id, "resuming the pre-check");
                    self.spawn_check(job);
                }
                JobStatus::ReadyRun => {
                    info!(job_id = %job.job_id, "scheduling again");
                    self.start_run(job, Entry::Fresh).await;
                }
                JobStatus::Running | JobStatus::ReadyComplete if job.paused != "all" => {
                    info!(job_id = %job.job_id, "resuming the run");
                    self.start_run(job, Entry::Resume).await;
                }
                JobStatus::Completing => {
                    info!(job_id = %job.job_id, "resuming the completion");
                    self.start_run(job, Entry::Completing).await;
                }
                JobStatus::Stopping => {
                    let mut detail = job.detail.clone();
                    detail.fail(STOPPED, now());
                    self.store
                        .update(
                            &job.job_id,
                            Some(&[JobStatus::Stopping]),
                            Patch {
                                status: Some(JobStatus::Failed),
                                end_time: Some(Some(now())),
                                error_message: Some(STOPPED.into()),
                                detail: Some(detail),
                                paused: Some(String::new()),
                                ..Patch::default()
                            },
                        )
                        .await?;
                }
                _ => {}
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

    /// Interrupts every run, check and compare at a safe point and waits for the runs to end
    /// (their statuses stay as they are: the next start resumes them).
    pub async fn shutdown(&self) {
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

    // ---- pre-check ----

    /// CreateMigrateCheckJob: {1,2,4,5,10} → 3, then the check runs in a task.
    pub async fn create_check(self: &Arc<Self>, job_id: &str) -> Result<(), ApiError> {
        let check = CheckState {
            state: "starting".into(),
            started_at: Some(now()),
            ..CheckState::default()
        };
        let job = self
            .transition(
                job_id,
                Operation::Check,
                Patch {
                    status: Some(JobStatus::Checking),
                    check: Some(check),
                    ..Patch::default()
                },
            )
            .await?;
        self.spawn_check(job);
        Ok(())
    }

    fn spawn_check(self: &Arc<Self>, job: JobRow) {
        let progress = Arc::new(AtomicU8::new(0));
        let mgr = self.clone();
        let id = job.job_id.clone();
        let p = progress.clone();
        let span = info_span!("check", job_id = %id);
        let mut checks = lock(&self.checks);
        let handle = tokio::spawn(async move { mgr.run_check(job, p).await }.instrument(span));
        checks.insert(id, (progress, handle.abort_handle()));
    }

    async fn run_check(self: Arc<Self>, job: JobRow, progress: Arc<AtomicU8>) {
        let id = job.job_id.clone();
        let mut state = CheckState {
            state: "running".into(),
            started_at: job.check.started_at.or(Some(now())),
            ..CheckState::default()
        };
        let _ = self
            .store
            .update(
                &id,
                Some(&[JobStatus::Checking]),
                Patch {
                    check: Some(state.clone()),
                    ..Patch::default()
                },
            )
            .await;
        let items = match spec_of(&job) {
            Ok(spec) => {
                let resuming = job.start_time.is_some() && !job.restart_next;
                let input = spec.check_input(resuming);
                let p = progress.clone();
                ferry_check::run_checks(&input, move |done, total| {
                    let pct = (done * 100).checked_div(total).unwrap_or(100);
                    p.store(pct.min(100) as u8, Ordering::Relaxed);
                })
                .await
                .into_iter()
                .map(|i| StoredCheckItem {
                    id: i.id.to_string(),
                    group: i.group.to_string(),
                    name: i.name,
                    status: format!("{:?}", i.status).to_uppercase(),
                    message: i.message,
                })
                .collect()
            }
            Err(e) => vec![StoredCheckItem {
                id: "job_spec".into(),
                group: "job".into(),
                name: "Job specification".into(),
                status: "FAILED".into(),
                message: e,
            }],
        };
        state.state = "finished".into();
        state.progress = 100;
        state.items = items;
        state.finished_at = Some(now());
        let status = if state.passed() {
            JobStatus::CheckPass
        } else {
            JobStatus::CheckNotPass
        };
        info!(status = %status, "pre-check finished");
        if let Err(e) = self
            .store
            .update(
                &id,
                Some(&[JobStatus::Checking]),
                Patch {
                    status: Some(status),
                    check: Some(state),
                    ..Patch::default()
                },
            )
            .await
        {
            warn!(error = %e, "recording the pre-check result");
        }
        lock(&self.checks).remove(&id);
    }

    // ---- runs ----

    /// StartMigrateJob: 4 → 6, then the run waits for its time and a slot.
    pub async fn start(self: &Arc<Self>, job_id: &str) -> Result<(), ApiError> {
        let job = self
            .transition(
                job_id,
                Operation::Start,
                Patch {
                    status: Some(JobStatus::ReadyRun),
                    start_time: Some(None),
                    end_time: Some(None),
                    error_message: Some(String::new()),
                    paused: Some(String::new()),
                    ..Patch::default()
                },
            )
            .await?;
        self.start_run(job, Entry::Fresh).await;
        Ok(())
    }

    /// StopMigrateJob: {6,7,8} → 11 → (run interrupted) → 10.
    pub async fn stop(self: &Arc<Self>, job_id: &str) -> Result<(), ApiError> {
        self.transition(job_id, Operation::Stop, Patch::status(JobStatus::Stopping))
            .await?;
        match self.run_of(job_id) {
            Some(run) => run.interrupt(Intent::Stop),
            None => {
                // Not running here (paused with PauseMode all): nothing to interrupt.
                let job = self.store.job(job_id).await?;
                if let Some(j) = &job {
                    release_target(j).await;
                }
                let mut detail = job.map(|j| j.detail).unwrap_or_default();
                detail.fail(STOPPED, now());
                self.store
                    .update(
                        job_id,
                        Some(&[JobStatus::Stopping]),
                        Patch {
                            status: Some(JobStatus::Failed),
                            end_time: Some(Some(now())),
                            error_message: Some(STOPPED.into()),
                            paused: Some(String::new()),
                            detail: Some(detail),
                            ..Patch::default()
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// CompleteMigrateJob: 8 → 12 → the replay completes → 9.
    pub async fn complete(self: &Arc<Self>, job_id: &str) -> Result<(), ApiError> {
        let job = self
            .transition(job_id, Operation::Complete, Patch::status(JobStatus::Completing))
            .await?;
        match self.run_of(job_id) {
            Some(run) => run.control.complete(),
            None => self.start_run(job, Entry::Completing).await,
        }
        Ok(())
    }

    /// PauseMigrateJob. `all`: the run is interrupted at a safe point and the job stays in 7
    /// until ResumeMigrateJob; `target` (incremental phase only): the applier holds at a
    /// transaction boundary while the reader keeps reading, and the job stays in 7.
    pub async fn pause(self: &Arc<Self>, job_id: &str, mode: &str) -> Result<(), ApiError> {
        let job = self.existing(job_id).await?;
        if !Operation::Pause.allows(job.status) {
            return Err(Operation::Pause.refused(job_id, job.status));
        }
        if !job.paused.is_empty() {
            return Err(ApiError::not_allow_operation(format!(
                "job {job_id} is already paused (PauseMode {}): resume it first",
                job.paused
            )));
        }
        let run = self.run_of(job_id).ok_or_else(|| {
            ApiError::not_allow_operation(format!("job {job_id} is not running in this server"))
        })?;
        match mode {
            "all" => {
                self.store_update(
                    job_id,
                    &[JobStatus::Running, JobStatus::ReadyComplete],
                    Operation::Pause,
                    Patch {
                        status: Some(JobStatus::Running),
                        paused: Some("all".into()),
                        ..Patch::default()
                    },
                )
                .await?;
                run.interrupt(Intent::Pause);
                Ok(())
            }
            _ => {
                if run.snapshot().running_step() != Some("incremental") {
                    return Err(ApiError::not_allow_operation(format!(
                        "PauseMode \"target\" (pause the apply only) needs job {job_id} in its incremental phase; use PauseMode \"all\""
                    )));
                }
                self.store_update(
                    job_id,
                    &[JobStatus::Running, JobStatus::ReadyComplete],
                    Operation::Pause,
                    Patch {
                        status: Some(JobStatus::Running),
                        paused: Some("target".into()),
                        ..Patch::default()
                    },
                )
                .await?;
                run.apply_paused.store(true, Ordering::SeqCst);
                run.control.set_apply_paused(true);
                Ok(())
            }
        }
    }

    /// ResumeMigrateJob: a paused job continues (PauseMode `all`: runs again from its
    /// checkpoints).
    pub async fn resume(self: &Arc<Self>, job_id: &str) -> Result<(), ApiError> {
        let job = self.existing(job_id).await?;
        if !Operation::Resume.allows(job.status) || job.paused.is_empty() {
            return Err(ApiError::not_allow_operation(format!(
                "ResumeMigrateJob is allowed only for a paused job; job {job_id} is in status {} and not paused",
                job.status
            )));
        }
        if job.paused == "target" {
            self.store_update(
                job_id,
                &[JobStatus::Running],
                Operation::Resume,
                Patch {
                    paused: Some(String::new()),
                    ..Patch::default()
                },
            )
            .await?;
            if let Some(run) = self.run_of(job_id) {
                run.apply_paused.store(false, Ordering::SeqCst);
                run.control.set_apply_paused(false);
            }
        }
        if job.paused == "all" {
            if let Some(run) = self.run_of(job_id) {
                // Still stopping: wait for the interrupted run to end.
                let mut rx = run.finished.subscribe();
                let _ =
                    tokio::time::timeout(CANCEL_GRACE + Duration::from_secs(5), rx.wait_for(|f| *f)).await;
            }
            let job = self
                .store_update(
                    job_id,
                    &[JobStatus::Running],
                    Operation::Resume,
                    Patch {
                        paused: Some(String::new()),
                        ..Patch::default()
                    },
                )
                .await?;
            self.start_run(job, Entry::Resume).await;
        }
        Ok(())
    }

    /// ModifyMigrateJob on a running (7/8) or paused job that changes only its secrets: the
    /// new request is stored and the job's run, if it is running here, is interrupted at a
    /// safe point and started again from its checkpoints with the new secrets (nothing is
    /// copied again). A job paused with PauseMode `all` uses them when it is resumed.
    pub async fn rotate_secrets(self: &Arc<Self>, job_id: &str, request: Value) -> Result<(), ApiError> {
        let job = self
            .store_update(
                job_id,
                &[JobStatus::Running, JobStatus::ReadyComplete],
                Operation::Modify,
                Patch {
                    request: Some(request),
                    ..Patch::default()
                },
            )
            .await?;
        if job.paused == "all" {
            return Ok(());
        }
        let Some(run) = self.run_of(job_id) else {
            return Ok(());
        };
        info!(
            job_id,
            "new secrets: restarting the job's run from its checkpoints"
        );
        run.interrupt(Intent::Pause);
        let mut rx = run.finished.subscribe();
        let _ = tokio::time::timeout(CANCEL_GRACE + Duration::from_secs(5), rx.wait_for(|f| *f)).await;
        let job = self.existing(job_id).await?;
        if matches!(job.status, JobStatus::Running | JobStatus::ReadyComplete) && job.paused != "all" {
            self.start_run(job, Entry::Resume).await;
        }
        Ok(())
    }

    /// Sets a running job's rows/s limit now.
    pub fn set_rows_per_second(&self, job_id: &str, rows_per_second: u64) {
        if let Some(run) = self.run_of(job_id) {
            let (_, bytes) = run.throttle.limits();
            run.throttle.set_limits(rows_per_second, bytes);
        }
    }

    async fn existing(&self, job_id: &str) -> Result<JobRow, ApiError> {
        self.store
            .job(job_id)
            .await?
            .ok_or_else(|| ApiError::job_not_exist(job_id))
    }

    async fn store_update(
        &self,
        job_id: &str,
        from: &[JobStatus],
        op: Operation,
        patch: Patch,
    ) -> Result<JobRow, ApiError> {
        match self.store.update(job_id, Some(from), patch).await? {
            Update::Done(j) => Ok(*j),
            Update::WrongStatus(s) => Err(op.refused(job_id, s)),
            Update::Missing => Err(ApiError::job_not_exist(job_id)),
        }
    }

    /// Applies `patch` when the job's status allows `op`.
    pub async fn transition(&self, job_id: &str, op: Operation, patch: Patch) -> Result<JobRow, ApiError> {
        self.store_update(job_id, op.allowed(), op, patch).await
    }

    async fn start_run(self: &Arc<Self>, job: JobRow, entry: Entry) {
        let id = job.job_id.clone();
        let spec = match spec_of(&job) {
            Ok(s) => s,
            Err(e) => {
                self.fail(&id, &job.detail, &e).await;
                return;
            }
        };
        let (mt, ct) = types_of(&job.request);
        let mut detail = job.detail.clone();
        detail.reset_for_run(mt, ct);
        let run = Arc::new(Run::new(&spec, detail));
        if job.paused == "target" {
            // Paused before a restart: the apply holds again from the start.
            run.apply_paused.store(true, Ordering::SeqCst);
            run.control.set_apply_paused(true);
        }
        {
            let mut runs = lock(&self.runs);
            if runs.contains_key(&id) {
                warn!(job_id = %id, "the job is already running here");
                return;
            }
            runs.insert(id.clone(), run.clone());
        }
        let mgr = self.clone();
        let span = info_span!("job", job_id = %id);
        tokio::spawn(
            async move {
                mgr.drive(job, spec, run.clone(), entry).await;
                lock(&mgr.runs).remove(&id);
                run.finished.send_replace(true);
            }
            .instrument(span),
        );
    }

    async fn fail(&self, job_id: &str, detail: &Detail, message: &str) {
        let mut detail = detail.clone();
        detail.fail(message, now());
        let r = self
            .store
            .update(
                job_id,
                Some(&[
                    JobStatus::ReadyRun,
                    JobStatus::Running,
                    JobStatus::ReadyComplete,
                    JobStatus::Completing,
                    JobStatus::Stopping,
                ]),
                Patch {
                    status: Some(JobStatus::Failed),
                    end_time: Some(Some(now())),
                    error_message: Some(message.to_string()),
                    detail: Some(detail),
                    paused: Some(String::new()),
                    ..Patch::default()
                },
            )
            .await;
        if let Err(e) = r {
            warn!(job_id, error = %e, "recording the job's failure");
        }
    }

    async fn drive(self: &Arc<Self>, job: JobRow, mut spec: JobSpec, run: Arc<Run>, entry: Entry) {
        let id = job.job_id.clone();
        let mut intent_rx = run.intent.subscribe();
        // 6: wait for ExpectTime and a slot.
        let start_at = spec.start_at.take();
        let slots = self.slots.clone();
        let wait = async move {
            if entry == Entry::Fresh {
                if let Some(at) = start_at {
                    let left = (at as i64 - now()).max(0) as u64;
                    if left > 0 {
                        info!(seconds = left, "RunMode 2: waiting for ExpectTime");
                        tokio::time::sleep(Duration::from_secs(left)).await;
                    }
                }
            }
            slots.acquire_owned().await.ok()
        };
        let permit = tokio::select! {
            p = wait => p,
            _ = intent_rx.wait_for(|i| *i != Intent::Run) => None,
        };
        let Some(permit) = permit else {
            self.finish(&id, &run, RunEnd::Interrupted).await;
            return;
        };
        let (from, to): (&[JobStatus], JobStatus) = match entry {
            Entry::Fresh => (&[JobStatus::ReadyRun], JobStatus::Running),
            Entry::Resume => (
                &[JobStatus::Running, JobStatus::ReadyComplete],
                JobStatus::Running,
            ),
            Entry::Completing => (&[JobStatus::Completing], JobStatus::Completing),
        };
        let started = match self
            .store
            .update(
                &id,
                Some(from),
                Patch {
                    status: Some(to),
                    start_time: job.start_time.is_none().then_some(Some(now())),
                    detail: Some(run.snapshot()),
                    // A problem shown by an earlier run is not this run's.
                    error_message: Some(String::new()),
                    ..Patch::default()
                },
            )
            .await
        {
            Ok(Update::Done(j)) => *j,
            Ok(other) => {
                info!(?other, "the job changed status before it could run");
                drop(permit);
                if run.intent() == Intent::Stop {
                    self.finish(&id, &run, RunEnd::Interrupted).await;
                }
                return;
            }
            Err(e) => {
                warn!(error = %e, "cannot mark the job running");
                return;
            }
        };
        if entry == Entry::Completing {
            run.control.complete();
        }
        info!(restart = started.restart_next, "running");
        let opts = RunOptions {
            restart: started.restart_next,
            throttle: run.throttle.clone(),
            replay: run.control.clone(),
        };
        let notify = Arc::new(Notify::new());
        let sink: ProgressSink = {
            let (detail, notify) = (run.detail.clone(), notify.clone());
            Arc::new(move |ev: ProgressEvent| {
                let changed = match detail.lock() {
                    Ok(mut d) => d.observe(&ev, now()),
                    Err(_) => false,
                };
                if changed {
                    notify.notify_one();
                }
            })
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let persister = tokio::spawn(
            self.clone()
                .persist_loop(id.clone(), run.clone(), notify, stop_rx, started.restart_next)
                .in_current_span(),
        );
        // Boxed so that dropping it (an interrupted run) releases its connections at once.
        let mut fut = Box::pin(ferry_job::run_job(&spec, opts, sink));
        let end = loop {
            tokio::select! {
                r = &mut fut => break RunEnd::Returned(Box::new(r)),
                changed = intent_rx.changed() => {
                    if changed.is_err() || run.intent() == Intent::Run {
                        continue;
                    }
                    run.control.cancel();
                    let in_replay = run.snapshot().running_step() == Some("incremental");
                    if !in_replay {
                        break RunEnd::Interrupted;
                    }
                    match tokio::time::timeout(CANCEL_GRACE, &mut fut).await {
                        Ok(r) => break RunEnd::Returned(Box::new(r)),
                        Err(_) => break RunEnd::Interrupted,
                    }
                }
            }
        };
        drop(fut);
        if run.intent() == Intent::Stop {
            restore_read_only(&spec).await;
        }
        stop_tx.send_replace(true);
        let _ = persister.await;
        drop(permit);
        self.finish(&id, &run, end).await;
    }

    async fn persist_loop(
        self: Arc<Self>,
        id: String,
        run: Arc<Run>,
        notify: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
        mut restart_pending: bool,
    ) {
        // The problem message last written to the job's ErrorMessage.
        let mut shown = String::new();
        let mut sampler = crate::series::Sampler::default();
        loop {
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let mut detail = run.snapshot();
            if let Some(sample) = sampler.sample(&detail, now()) {
                if let Err(e) = crate::series::SeriesStore::append(&self.store, &id, sample).await {
                    warn!(error = %e, "saving the job's lag series");
                }
            }
            let paused = run.apply_paused.load(Ordering::Relaxed);
            let ready = ready_now(
                detail.ready,
                run.control.is_ready(),
                detail.problem.is_some(),
                detail.lag_seconds_now(),
                paused,
            );
            if ready != detail.ready {
                if let Ok(mut d) = run.detail.lock() {
                    d.ready = ready;
                }
                detail.ready = ready;
            }
            let problem = detail.problem.as_ref().map(|p| p.message()).unwrap_or_default();
            let in_replay = detail.running_step() == Some("incremental");
            let mut patch = Patch {
                detail: Some(detail),
                ..Patch::default()
            };
            if problem != shown {
                if problem.is_empty() {
                    info!("recovered: the problem is over");
                } else {
                    warn!(problem = %problem, "retrying");
                }
                patch.error_message = Some(problem.clone());
                shown = problem;
            }
            if restart_pending && run.snapshot().current.is_some() {
                patch.restart_next = Some(false);
                restart_pending = false;
            }
            if let Err(e) = self.store.update(&id, None, patch).await {
                warn!(error = %e, "saving the job's progress");
            }
            if ready && run.intent() == Intent::Run {
                if let Ok(Update::Done(_)) = self
                    .store
                    .update(
                        &id,
                        Some(&[JobStatus::Running]),
                        Patch::status(JobStatus::ReadyComplete),
                    )
                    .await
                {
                    info!("caught up: ready to complete (8)");
                }
            } else if !ready && in_replay && run.intent() == Intent::Run {
                if let Ok(Update::Done(_)) = self
                    .store
                    .update(
                        &id,
                        Some(&[JobStatus::ReadyComplete]),
                        Patch::status(JobStatus::Running),
                    )
                    .await
                {
                    warn!("no longer caught up: back to running (7) until the replay catches up");
                }
            }
        }
    }

    async fn finish(&self, id: &str, run: &Run, end: RunEnd) {
        let intent = run.intent();
        let t = now();
        let mut detail = run.snapshot();
        let end = match end {
            RunEnd::Returned(r) => Some(*r),
            RunEnd::Interrupted => None,
        };
        match (end, intent) {
            (Some(Ok(summary)), _) => {
                detail.succeed(t);
                if let Some(r) = &summary.replay {
                    // The cut-over position stays visible after completion.
                    detail.applied_position = r.final_pos.to_string();
                    if let Some(s) = detail.steps.iter_mut().find(|s| s.id == "incremental") {
                        s.message = match &r.final_gtid {
                            Some(g) => format!("completed at {} (GTID {g})", r.final_pos),
                            None => format!("completed at {}", r.final_pos),
                        };
                    }
                }
                let mut message = String::new();
                if let Some(v) = &summary.verification {
                    let differing: u64 = v
                        .tables
                        .iter()
                        .map(|t| t.only_in_source + t.only_in_target + t.different)
                        .sum();
                    detail.verification_differences = differing;
                    detail.verification_tables_different = v.inconsistent_tables().len() as u64;
                    if !v.consistent {
                        message = format!(
                            "verification found differences in {} table(s) ({} rows) and {} object(s)",
                            v.inconsistent_tables().len(),
                            differing,
                            v.objects.len()
                        );
                        if let Some(s) = detail.steps.iter_mut().find(|s| s.id == "verification") {
                            s.status = STEP_FAILED;
                            s.message = message.clone();
                        }
                    }
                }
                info!(rows = summary.rows, "job finished");
                let r = self
                    .store
                    .update(
                        id,
                        Some(&[
                            JobStatus::Running,
                            JobStatus::ReadyComplete,
                            JobStatus::Completing,
                            JobStatus::Stopping,
                        ]),
                        Patch {
                            status: Some(JobStatus::Success),
                            end_time: Some(Some(t)),
                            error_message: Some(message),
                            detail: Some(detail),
                            paused: Some(String::new()),
                            ..Patch::default()
                        },
                    )
                    .await;
                if let Err(e) = r {
                    warn!(error = %e, "recording the job's success");
                }
            }
            (_, Intent::Stop) => {
                info!("stopped");
                self.fail(id, &detail, STOPPED).await;
            }
            (_, Intent::Pause) | (_, Intent::Shutdown) => {
                info!(?intent, "interrupted; the job resumes later");
                if let Err(e) = self
                    .store
                    .update(
                        id,
                        None,
                        Patch {
                            detail: Some(detail),
                            ..Patch::default()
                        },
                    )
                    .await
                {
                    warn!(error = %e, "saving the job's progress");
                }
            }
            (Some(Err(e)), Intent::Run) => {
                let message = e.to_string();
                warn!(error = %message, "job failed");
                self.fail(id, &detail, &message).await;
            }
            (None, Intent::Run) => {}
        }
    }

    // ---- compare tasks ----

    /// Runs a compare task (its row is `running` already).
    pub fn spawn_compare(
        self: &Arc<Self>,
        job: JobRow,
        compare_task_id: String,
        mode: VerifyMode,
        threads: usize,
    ) {
        let mgr = self.clone();
        let id = compare_task_id.clone();
        let span = info_span!("compare", job_id = %job.job_id, compare_task_id = %id);
        let mut compares = lock(&self.compares);
        let h = tokio::spawn(
            async move {
                let result = async {
                    let spec = spec_of(&job)?;
                    let mut opts = ferry_job::verification::options_for_live(&spec, mode)
                        .await
                        .map_err(|e| e.to_string())?;
                    opts.threads = threads.max(1);
                    ferry_job::verification::verify_job(&spec, &opts, null_sink(), None)
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                let t = Some(now());
                let r = match result {
                    Ok(report) => {
                        let v = serde_json::to_value(&report).unwrap_or(Value::Null);
                        mgr.store
                            .update_compare(
                                &compare_task_id,
                                &["running"],
                                CompareChange {
                                    status: "success".into(),
                                    report: Some(v),
                                    message: Some(String::new()),
                                    started_at: None,
                                    finished_at: t,
                                },
                            )
                            .await
                    }
                    Err(e) => {
                        mgr.store
                            .update_compare(
                                &compare_task_id,
                                &["running"],
                                CompareChange {
                                    status: "failed".into(),
                                    report: None,
                                    message: Some(e),
                                    started_at: None,
                                    finished_at: t,
                                },
                            )
                            .await
                    }
                };
                if let Err(e) = r {
                    warn!(error = %e, "recording the compare result");
                }
                lock(&mgr.compares).remove(&compare_task_id);
            }
            .instrument(span),
        );
        compares.insert(id, h.abort_handle());
    }

    /// Stops a running compare task.
    pub fn abort_compare(&self, compare_task_id: &str) {
        if let Some(h) = lock(&self.compares).remove(compare_task_id) {
            h.abort();
        }
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
