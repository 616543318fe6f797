//! The run driver: a started job waits for its ExpectTime and a slot, runs `ferry_job::run_job`
//! with its progress observed into the run's detail, is interrupted at a safe point when asked,
//! and ends in its final status ([`Manager::finish`]). A run that fails with a transient error is
//! run again after a backoff inside the job's retry window ([`crate::retry`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::ErrorKind;
use ferry_job::runner::RunOptions;
use ferry_job::{JobError, JobSpec};
use tokio::sync::{watch, Notify};
use tracing::{info, info_span, warn, Instrument};

use super::{lock, spec_of, Entry, Intent, Manager, Run, RunEnd, CANCEL_GRACE, STOPPED};
use crate::detail::Phase;
use crate::detail::{Detail, STEP_FAILED};
use crate::job::PauseMode;
use crate::retry::{Decision, Failure};
use crate::status::JobStatus;
use crate::store::{now, JobRow, Patch, Update};

impl Manager {
    pub(super) async fn start_run(self: &Arc<Self>, job: JobRow, entry: Entry) {
        let id = job.job_id.clone();
        let epoch = lock(&self.leases).get(&id).copied();
        if self.cluster.is_some() && epoch.is_none() {
            // Cluster mode: a job runs only under a lease; a node claims it on its next round.
            self.wake.notify_one();
            return;
        }
        let spec = match spec_of(&job) {
            Ok(s) => s,
            Err(e) => {
                self.fail(&id, None, &job.detail, &e.to_string(), ErrorKind::Definite)
                    .await;
                return;
            }
        };
        let (mt, ct) = (job.request.migrate_type(), job.request.consistency_type());
        let mut detail = job.detail.clone();
        detail.reset_for_run(mt, ct);
        let run = Arc::new(Run::new(&spec, detail, epoch));
        if job.paused == Some(PauseMode::Target) {
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

    pub(super) async fn fail(
        &self,
        job_id: &str,
        run: Option<&Run>,
        detail: &Detail,
        message: &str,
        kind: ErrorKind,
    ) {
        let mut detail = detail.clone();
        detail.fail(message, now());
        let r = self
            .store
            .update_leased(
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
                    error_kind: Some(Some(kind)),
                    detail: Some(detail),
                    paused: Some(None),
                    ..Patch::default()
                },
                run.and_then(|r| self.run_lease(r)),
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
            .update_leased(
                &id,
                Some(from),
                Patch {
                    status: Some(to),
                    start_time: job.start_time.is_none().then_some(Some(now())),
                    detail: Some(run.snapshot()),
                    // A problem shown by an earlier run is not this run's.
                    error_message: Some(String::new()),
                    error_kind: Some(None),
                    ..Patch::default()
                },
                self.run_lease(&run),
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
        let (mt, ct) = (job.request.migrate_type(), job.request.consistency_type());
        let mut restart = started.restart_next;
        // An outage goes on across a restart of ferry serve only when a retry was waiting (the
        // error is cleared when the retried run starts).
        let mut outage_since = match job.error_kind {
            Some(ErrorKind::Transient) => job.retry_since,
            _ => None,
        };
        let mut retries = started.retries;
        let mut earlier_attempts = 0;
        let end = loop {
            let began = Instant::now();
            let end = self.attempt(&id, &spec, &run, restart, &mut intent_rx).await;
            let failure = match &end {
                RunEnd::Returned(r) if run.intent() == Intent::Run => match r.as_ref() {
                    Err(e) => e,
                    Ok(_) => break end,
                },
                _ => break end,
            };
            let window = spec.options.retry_window;
            let decision = self.retry.decide(
                Failure {
                    kind: failure.kind(),
                    now: now(),
                    ran_for: began.elapsed(),
                    outage_since,
                    earlier_attempts,
                },
                window,
                crate::retry::jitter(),
            );
            let Decision::Retry {
                delay,
                attempt,
                since,
            } = decision
            else {
                break end;
            };
            retries = retries.saturating_add(1);
            (outage_since, earlier_attempts) = (Some(since), attempt);
            let message = retry_message(failure, attempt, since, delay, window.gives_up_at(since as u64));
            warn!(error = %failure, attempt, delay_ms = delay.as_millis() as u64, "run failed with a transient error: retrying");
            let saved = self
                .store
                .update_leased(
                    &id,
                    None,
                    Patch {
                        error_message: Some(message),
                        error_kind: Some(Some(ErrorKind::Transient)),
                        retries: Some(retries),
                        retry_since: Some(Some(since)),
                        detail: Some(run.snapshot()),
                        ..Patch::default()
                    },
                    self.run_lease(&run),
                )
                .await;
            match saved {
                Ok(Update::Done(j)) => restart = j.restart_next,
                Ok(_) => break end,
                Err(e) => warn!(error = %e, "recording the retry"),
            }
            let interrupted = tokio::select! {
                _ = tokio::time::sleep(delay) => false,
                _ = intent_rx.wait_for(|i| *i != Intent::Run) => true,
            };
            if interrupted {
                break RunEnd::Interrupted;
            }
            if let Ok(mut d) = run.detail.lock() {
                d.reset_for_run(mt, ct);
            }
            // The retried run is running: the error shown while waiting is over.
            let _ = self
                .store
                .update_leased(
                    &id,
                    None,
                    Patch {
                        error_message: Some(String::new()),
                        error_kind: Some(None),
                        ..Patch::default()
                    },
                    self.run_lease(&run),
                )
                .await;
        };
        drop(permit);
        self.finish(&id, &run, end).await;
    }

    /// One run of the job until it returns or is interrupted, with its detail persisted.
    async fn attempt(
        self: &Arc<Self>,
        id: &str,
        spec: &JobSpec,
        run: &Arc<Run>,
        restart: bool,
        intent_rx: &mut watch::Receiver<Intent>,
    ) -> RunEnd {
        info!(restart, "running");
        let opts = RunOptions {
            restart,
            throttle: run.throttle.clone(),
            replay: run.control.clone(),
            epoch: run.epoch,
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
                .persist_loop(id.to_string(), run.clone(), notify, stop_rx, restart)
                .in_current_span(),
        );
        // Boxed so that dropping it (an interrupted run) releases its connections at once.
        let mut fut = Box::pin(ferry_job::run_job(spec, opts, sink));
        let end = loop {
            tokio::select! {
                r = &mut fut => break RunEnd::Returned(Box::new(r)),
                changed = intent_rx.changed() => {
                    if changed.is_err() || run.intent() == Intent::Run {
                        continue;
                    }
                    run.control.cancel();
                    let in_replay = run.snapshot().running_step() == Some(Phase::Incremental);
                    // A lost lease stops the run at once (another node runs the job now).
                    if !in_replay || run.intent() == Intent::LeaseLost {
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
            super::restore_read_only(spec).await;
        }
        stop_tx.send_replace(true);
        let _ = persister.await;
        end
    }

    pub(super) async fn finish(&self, id: &str, run: &Run, end: RunEnd) {
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
                    if let Some(s) = detail.steps.iter_mut().find(|s| s.id == Phase::Incremental) {
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
                    detail.verification_report = serde_json::to_value(v).ok();
                    if !v.consistent {
                        message = format!(
                            "verification found differences in {} table(s) ({} rows) and {} object(s)",
                            v.inconsistent_tables().len(),
                            differing,
                            v.objects.len()
                        );
                        if let Some(s) = detail.steps.iter_mut().find(|s| s.id == Phase::Verification) {
                            s.status = STEP_FAILED;
                            s.message = message.clone();
                        }
                    }
                }
                // Continuous verification: what the cut-over verification digested again.
                if let (Some((n, total, rows)), Some(s)) = (
                    summary.cutover_chunks,
                    detail.steps.iter_mut().find(|s| s.id == Phase::Verification),
                ) {
                    let line =
                        format!("{n} of {total} chunks digested again at cut-over, {rows} rows read (continuous verification)");
                    s.message = if s.message.is_empty() {
                        line
                    } else {
                        format!("{}; {line}", s.message)
                    };
                }
                info!(rows = summary.rows, "job finished");
                let r = self
                    .store
                    .update_leased(
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
                            error_kind: Some(None),
                            detail: Some(detail),
                            paused: Some(None),
                            ..Patch::default()
                        },
                        self.run_lease(run),
                    )
                    .await;
                if let Err(e) = r {
                    warn!(error = %e, "recording the job's success");
                }
            }
            (_, Intent::Stop) => {
                info!("stopped");
                self.fail(id, Some(run), &detail, STOPPED, ErrorKind::Definite)
                    .await;
            }
            (_, Intent::LeaseLost) => {
                warn!("the job's lease was lost: stopped here, another node runs it");
            }
            (_, Intent::Pause) | (_, Intent::Shutdown) => {
                info!(?intent, "interrupted; the job resumes later");
                if let Err(e) = self
                    .store
                    .update_leased(
                        id,
                        None,
                        Patch {
                            detail: Some(detail),
                            ..Patch::default()
                        },
                        self.run_lease(run),
                    )
                    .await
                {
                    warn!(error = %e, "saving the job's progress");
                }
            }
            (Some(Err(e)), Intent::Run) => {
                let message = e.to_string();
                warn!(error = %message, kind = ?e.kind(), "job failed");
                self.fail(id, Some(run), &detail, &message, e.kind()).await;
            }
            (None, Intent::Run) => {}
        }
    }
}

/// The job's ErrorMessage while the service waits to run it again.
fn retry_message(
    e: &JobError,
    attempt: u32,
    since: i64,
    delay: Duration,
    gives_up_at: Option<u64>,
) -> String {
    let until = match gives_up_at {
        Some(t) => format!(
            "the job fails at {} UTC if it lasts (Ferry.RetryWindowSeconds)",
            crate::actions::fmt_time(Some(t as i64))
        ),
        None => "retrying until stopped (Ferry.RetryWindowSeconds = 0)".into(),
    };
    format!(
        "the run failed with a transient error since {} UTC; ferry serve runs it again in {} s from its \
         checkpoints (retry {attempt}), {until}: {e}",
        crate::actions::fmt_time(Some(since)),
        delay.as_secs().max(1)
    )
}
