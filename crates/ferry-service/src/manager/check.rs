//! Pre-checks (CreateMigrateCheckJob): the job goes to 3, `ferry_check` runs in a task with its
//! progress kept in memory, and the result (items, CheckPass or CheckNotPass) is stored.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use ferry_check::CheckStatus;
use tracing::{info, info_span, warn, Instrument};

use super::{lock, spec_of, ControlError, Manager};
use crate::job::CheckPhase;
use crate::status::{JobStatus, Operation};
use crate::store::{now, CheckState, JobRow, Patch, StoredCheckItem};

impl Manager {
    /// CreateMigrateCheckJob: {1,2,4,5,10} → 3, then the check runs in a task.
    pub async fn create_check(self: &Arc<Self>, job_id: &str) -> Result<(), ControlError> {
        let check = CheckState {
            state: CheckPhase::Starting,
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

    pub(super) fn spawn_check(self: &Arc<Self>, job: JobRow) {
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
            state: CheckPhase::Running,
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
                    status: i.status,
                    message: i.message,
                })
                .collect()
            }
            Err(e) => vec![StoredCheckItem {
                id: "job_spec".into(),
                group: "job".into(),
                name: "Job specification".into(),
                status: CheckStatus::Failed,
                message: e.to_string(),
            }],
        };
        state.state = CheckPhase::Finished;
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
}
