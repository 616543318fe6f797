//! Saving a running job's detail: at most once a second and on every step change, with the
//! outage under way in its ErrorMessage, its lag series sampled, and the move between 7 and 8
//! (ready to complete, with hysteresis: [`super::ready_now`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use super::{ready_now, Intent, Manager, Run};
use crate::detail::Phase;
use crate::status::JobStatus;
use crate::store::{now, Patch, Update};

impl Manager {
    pub(super) async fn persist_loop(
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
            let in_replay = detail.running_step() == Some(Phase::Incremental);
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
            if let Err(e) = self
                .store
                .update_leased(&id, None, patch, self.run_lease(&run))
                .await
            {
                warn!(error = %e, "saving the job's progress");
            }
            if ready && run.intent() == Intent::Run {
                if let Ok(Update::Done(_)) = self
                    .store
                    .update_leased(
                        &id,
                        Some(&[JobStatus::Running]),
                        Patch::status(JobStatus::ReadyComplete),
                        self.run_lease(&run),
                    )
                    .await
                {
                    info!("caught up: ready to complete (8)");
                }
            } else if !ready && in_replay && run.intent() == Intent::Run {
                if let Ok(Update::Done(_)) = self
                    .store
                    .update_leased(
                        &id,
                        Some(&[JobStatus::ReadyComplete]),
                        Patch::status(JobStatus::Running),
                        self.run_lease(&run),
                    )
                    .await
                {
                    warn!("no longer caught up: back to running (7) until the replay catches up");
                }
            }
        }
    }
}
