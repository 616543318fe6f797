//! A job's continuous verification (`Ferry.ContinuousVerify`) in the 2021-12-06 models, on the
//! fields the SDK declares (no field of Ferry's own: typed SDKs refuse undeclared ones), from the
//! job's last freshness report ([`crate::freshness::Freshness`]):
//!
//! - DescribeMigrationDetail, while the job replays (status 7 or 8; on any node of a cluster:
//!   the owner stores the job's detail at least once a second) and before its cut-over
//!   verification starts: the `verification` step is `running`, `StartTime` the first report of the run,
//!   `Percent` the share of chunks whose digests are current (neither dirty, different nor never
//!   digested), `StepMessage` the figures `ferry run` prints; `CompareTask` names the task
//!   [`continuous_task_id`] (`running`) when the job has no comparison task of its own.
//! - DescribeCompareReport of that task: `Abstract` with `Status` from the job's status:
//!   `running` while it replays or cuts over (7, 8, 12), `success` once it completed (9),
//!   `canceled` otherwise (failed, stopped: the verification ended with the job, unfinished), `Conclusion` over the chunks digested (`different` when one
//!   differs, `same` once every chunk was digested and none differs, else `""`), the tables
//!   (`TotalTables`, `CheckedTables` = every chunk digested, `DifferentTables`), the rows of the
//!   digested chunks (`SrcSampleRows`/`DstSampleRows`), `DifferentRows` 0 (chunks are compared
//!   by digest; rows are compared at cut-over), and `StartedAt`/`FinishedAt` of the last full
//!   pass; `Detail` lists are empty. StartCompare and StopCompare refuse it by name.

use super::compare::empty_list;
use super::*;
use crate::freshness::{continuous_task_id, Freshness};

/// The freshness shown live: the job replays (here or on another node of a cluster) and its run
/// has reported one.
pub(super) fn live<'a>(job: &JobRow, d: &'a Detail) -> Option<&'a Freshness> {
    matches!(job.status, JobStatus::Running | JobStatus::ReadyComplete)
        .then_some(())
        .and(d.continuous.as_ref())
}

/// The task's status, from the job's (stored, so the same on every node): running while the job
/// replays or cuts over, success once it completed, canceled when it ended otherwise.
fn task_status(job: &JobRow) -> &'static str {
    match job.status {
        JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Completing => "running",
        JobStatus::Success => "success",
        _ => "canceled",
    }
}

/// The `verification` step while continuous verification runs ahead of it.
pub(super) fn step(f: &Freshness, now: i64) -> (Value, Value, Value) {
    (
        json!(t21(Some(f.started_at))),
        json!(f.message(now)),
        json!(f.percent()),
    )
}

/// DescribeMigrationDetail's `CompareTask` for the continuous verification.
pub(super) fn compare_task(job: &JobRow) -> Value {
    json!({"CompareTaskId": continuous_task_id(&job.job_id), "Status": "running"})
}

/// True when `compare_task_id` names the job's continuous verification.
pub(super) fn is_task(job_id: &str, compare_task_id: &str) -> bool {
    compare_task_id == continuous_task_id(job_id)
}

/// StartCompare and StopCompare of the continuous verification: refused (it runs with the job).
pub(super) fn refuse_control(job_id: &str, compare_task_id: &str) -> Result<(), ApiError> {
    if is_task(job_id, compare_task_id) {
        return Err(ApiError::not_allow_operation(format!(
            "the compare task {compare_task_id} is the job's continuous verification (Ferry.ContinuousVerify): \
             it runs with the job's replay and cannot be started or stopped by itself; create a compare task \
             (CreateCompareTask) for a comparison of your own"
        )));
    }
    Ok(())
}

/// DescribeCompareReport of the continuous verification.
pub(super) async fn report(mgr: &Arc<Manager>, job_id: &str) -> Result<Map<String, Value>, ApiError> {
    let job = job(mgr, job_id).await?;
    let d = mgr.detail_of(&job);
    let Some(f) = d.continuous.as_ref() else {
        return Err(ApiError::new(
            "ResourceNotFound",
            format!(
                "job {job_id} has no continuous verification report: it runs only with Ferry.ContinuousVerify, \
                 while the job replays"
            ),
        ));
    };
    let threads = job
        .request
        .raw()
        .pointer("/Ferry/Threads")
        .and_then(Value::as_i64)
        .unwrap_or(4);
    let abstract_ = json!({
        "Options": {"Method": "dataCheck", "SampleRate": 100, "ThreadCount": threads},
        "Objects": {"ObjectMode": "all", "ObjectItems": []},
        "Conclusion": f.conclusion(),
        "Status": task_status(&job),
        "TotalTables": f.tables,
        "CheckedTables": f.tables_verified,
        "DifferentTables": f.tables_differing,
        "SkippedTables": 0,
        "NearlyTableCount": f.tables,
        "DifferentRows": 0,
        "SrcSampleRows": f.src_rows,
        "DstSampleRows": f.dst_rows,
        "StartedAt": t21(f.full_pass_started_at),
        "FinishedAt": t21(f.full_pass_finished_at()),
    });
    let detail = json!({
        "Difference": empty_list(),
        "Skipped": empty_list(),
        "DifferenceAdvancedObjects": empty_list(),
        "DifferenceData": empty_list(),
        "DifferenceRow": empty_list(),
        "DifferenceSchema": empty_list(),
        "DifferenceOwner": empty_list(),
        "FullProgress": empty_list(),
        "IncDifference": empty_list(),
    });
    let mut out = Map::new();
    out.insert("Abstract".into(), abstract_);
    out.insert("Detail".into(), detail);
    Ok(out)
}
