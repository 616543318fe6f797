//! Compare tasks (CreateCompareTask / StartCompare): `ferry_verify` over the job's endpoints and
//! mapping in a task, its report stored with the task.

use std::sync::Arc;

use ferry_verify::VerifyMode;
use serde_json::Value;
use tracing::{info_span, warn, Instrument};

use super::{lock, spec_of, Manager};
use crate::store::{now, CompareChange, JobRow};

impl Manager {
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
                    let spec = spec_of(&job).map_err(|e| e.to_string())?;
                    let mut opts = ferry_job::verification::options_for_live(&spec, mode)
                        .await
                        .map_err(|e| e.to_string())?;
                    opts.threads = threads.max(1);
                    let keep_at = crate::repair_sql::path(&mgr.store, &job.job_id, &compare_task_id);
                    crate::repair_sql::compare(&spec, &opts, keep_at).await
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
}
