//! Control operations on a job: StartMigrateJob, StopMigrateJob, CompleteMigrateJob,
//! PauseMigrateJob / ResumeMigrateJob (by [`PauseMode`]), the rotation of a running job's secrets
//! and its rows/s limit. Each status change is one conditional store update
//! ([`Manager::transition`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use super::cluster::{
    ACTION_COMPLETE, ACTION_PAUSE_ALL, ACTION_PAUSE_TARGET, ACTION_RATE, ACTION_RESTART,
    ACTION_RESUME_TARGET, ACTION_STOP,
};
use super::{ControlError, Entry, Intent, Manager, CANCEL_GRACE};
use crate::detail::Phase;
use crate::job::{JobRequest, PauseMode};
use crate::status::{JobStatus, Operation};
use crate::store::Patch;

impl Manager {
    /// StartMigrateJob: 4 → 6, then the run waits for its time and a slot.
    pub async fn start(self: &Arc<Self>, job_id: &str) -> Result<(), ControlError> {
        let job = self
            .transition(
                job_id,
                Operation::Start,
                Patch {
                    status: Some(JobStatus::ReadyRun),
                    start_time: Some(None),
                    end_time: Some(None),
                    error_message: Some(String::new()),
                    error_kind: Some(None),
                    paused: Some(None),
                    retries: Some(0),
                    retry_since: Some(None),
                    ..Patch::default()
                },
            )
            .await?;
        self.start_run(job, Entry::Fresh).await;
        Ok(())
    }

    /// StopMigrateJob: {6,7,8} → 11 → (run interrupted) → 10.
    pub async fn stop(self: &Arc<Self>, job_id: &str) -> Result<(), ControlError> {
        self.transition(job_id, Operation::Stop, Patch::status(JobStatus::Stopping))
            .await?;
        match self.run_of(job_id) {
            Some(run) => run.interrupt(Intent::Stop),
            None if self.queue_for_owner(job_id, ACTION_STOP).await? => {}
            None => {
                // Not running here (paused with PauseMode all): nothing to interrupt.
                let job = self.store.job(job_id).await?;
                if let Some(j) = &job {
                    super::release_target(j).await;
                }
                self.end_stopped(job_id, job.map(|j| j.detail).unwrap_or_default())
                    .await?;
            }
        }
        Ok(())
    }

    /// CompleteMigrateJob: 8 → 12 → the replay completes → 9.
    pub async fn complete(self: &Arc<Self>, job_id: &str) -> Result<(), ControlError> {
        let job = self
            .transition(job_id, Operation::Complete, Patch::status(JobStatus::Completing))
            .await?;
        match self.run_of(job_id) {
            Some(run) => run.control.complete(),
            None if self.queue_for_owner(job_id, ACTION_COMPLETE).await? => {}
            None => self.start_run(job, Entry::Completing).await,
        }
        Ok(())
    }

    /// PauseMigrateJob. `all`: the run is interrupted at a safe point and the job stays in 7
    /// until ResumeMigrateJob; `target` (incremental phase only): the applier holds at a
    /// transaction boundary while the reader keeps reading, and the job stays in 7.
    pub async fn pause(self: &Arc<Self>, job_id: &str, mode: PauseMode) -> Result<(), ControlError> {
        let job = self.existing(job_id).await?;
        if !Operation::Pause.allows(job.status) {
            return Err(Operation::Pause.refused(job_id, job.status));
        }
        if let Some(paused) = job.paused {
            return Err(ControlError::Refused(format!(
                "job {job_id} is already paused (PauseMode {paused}): resume it first"
            )));
        }
        let run = self.run_of(job_id);
        let remote = run.is_none() && self.owned_elsewhere(job_id).await?;
        if run.is_none() && !remote {
            return Err(ControlError::Refused(format!(
                "job {job_id} is not running in this server"
            )));
        }
        let step = match &run {
            Some(r) => r.snapshot().running_step(),
            None => job.detail.running_step(),
        };
        if mode == PauseMode::Target && step != Some(Phase::Incremental) {
            return Err(ControlError::Refused(format!(
                "PauseMode \"target\" (pause the apply only) needs job {job_id} in its incremental phase; use PauseMode \"all\""
            )));
        }
        self.store_update(
            job_id,
            &[JobStatus::Running, JobStatus::ReadyComplete],
            Operation::Pause,
            Patch {
                status: Some(JobStatus::Running),
                paused: Some(Some(mode)),
                ..Patch::default()
            },
        )
        .await?;
        let Some(run) = run else {
            let action = match mode {
                PauseMode::All => ACTION_PAUSE_ALL,
                PauseMode::Target => ACTION_PAUSE_TARGET,
            };
            self.queue_for_owner(job_id, action).await?;
            return Ok(());
        };
        match mode {
            PauseMode::All => run.interrupt(Intent::Pause),
            PauseMode::Target => {
                run.apply_paused.store(true, Ordering::SeqCst);
                run.control.set_apply_paused(true);
            }
        }
        Ok(())
    }

    /// ResumeMigrateJob: a paused job continues (PauseMode `all`: runs again from its
    /// checkpoints).
    pub async fn resume(self: &Arc<Self>, job_id: &str) -> Result<(), ControlError> {
        let job = self.existing(job_id).await?;
        let paused = match job.paused {
            Some(p) if Operation::Resume.allows(job.status) => p,
            _ => return Err(ControlError::Refused(format!(
                "ResumeMigrateJob is allowed only for a paused job; job {job_id} is in status {} and not paused",
                job.status
            ))),
        };
        if paused == PauseMode::All {
            if let Some(run) = self.run_of(job_id) {
                // Still stopping: wait for the interrupted run to end.
                let mut rx = run.finished.subscribe();
                let _ =
                    tokio::time::timeout(CANCEL_GRACE + Duration::from_secs(5), rx.wait_for(|f| *f)).await;
            }
        }
        let job = self
            .store_update(
                job_id,
                &[JobStatus::Running],
                Operation::Resume,
                Patch {
                    paused: Some(None),
                    ..Patch::default()
                },
            )
            .await?;
        match paused {
            PauseMode::Target => match self.run_of(job_id) {
                Some(run) => {
                    run.apply_paused.store(false, Ordering::SeqCst);
                    run.control.set_apply_paused(false);
                }
                None => {
                    self.queue_for_owner(job_id, ACTION_RESUME_TARGET).await?;
                }
            },
            PauseMode::All => self.start_run(job, Entry::Resume).await,
        }
        Ok(())
    }

    /// ModifyMigrateJob on a running (7/8) or paused job that changes only its secrets: the
    /// new request is stored and the job's run, if it is running here, is interrupted at a
    /// safe point and started again from its checkpoints with the new secrets (nothing is
    /// copied again). A job paused with PauseMode `all` uses them when it is resumed.
    pub async fn rotate_secrets(
        self: &Arc<Self>,
        job_id: &str,
        request: JobRequest,
    ) -> Result<(), ControlError> {
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
        if job.paused == Some(PauseMode::All) {
            return Ok(());
        }
        if self.run_of(job_id).is_none() {
            self.queue_for_owner(job_id, ACTION_RESTART).await?;
            return Ok(());
        }
        self.restart_run(job).await
    }

    /// Interrupts the job's run here at a safe point and starts it again from its checkpoints
    /// (new secrets).
    pub(super) async fn restart_run(self: &Arc<Self>, job: crate::store::JobRow) -> Result<(), ControlError> {
        let job_id = job.job_id.as_str();
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
        if matches!(job.status, JobStatus::Running | JobStatus::ReadyComplete)
            && job.paused != Some(PauseMode::All)
        {
            self.start_run(job, Entry::Resume).await;
        }
        Ok(())
    }

    /// Sets a running job's rows/s limit now, here or (cluster mode) on the node running it.
    pub async fn apply_rows_per_second(
        &self,
        job_id: &str,
        rows_per_second: u64,
    ) -> Result<(), ControlError> {
        if self.run_of(job_id).is_some() {
            self.set_rows_per_second(job_id, rows_per_second);
        } else {
            self.queue_for_owner(job_id, &format!("{ACTION_RATE}:{rows_per_second}"))
                .await?;
        }
        Ok(())
    }

    /// Sets the rows/s limit of a job running here.
    pub fn set_rows_per_second(&self, job_id: &str, rows_per_second: u64) {
        if let Some(run) = self.run_of(job_id) {
            let (_, bytes) = run.throttle.limits();
            run.throttle.set_limits(rows_per_second, bytes);
        }
    }
}
