//! A job's continuous verification (`Ferry.ContinuousVerify`) in the 2021-12-06 models, on the
//! fields the SDK declares (no field of Ferry's own: typed SDKs refuse undeclared ones), from the
//! job's last freshness report ([`crate::freshness::Freshness`]) and, once the job completed, its
//! cut-over verification's report:
//!
//! - DescribeMigrationDetail, while the job replays (status 7 or 8; on any node of a cluster:
//!   the owner stores the job's detail at least once a second) and before its cut-over
//!   verification starts: the `verification` step is `running`, `StartTime` the first report of the run,
//!   `Percent` the share of chunks whose digests are current (neither dirty, different nor never
//!   digested), `StepMessage` the figures `ferry run` prints; `CompareTask` names the task
//!   [`continuous_task_id`] (`running`) when the job has no comparison task of its own.
//! - DescribeCompareReport of that task: `Abstract` with `Status` from the job's status:
//!   `running` while it replays or cuts over (7, 8, 12), `success` once it completed (9),
//!   `canceled` otherwise (failed, stopped: the verification ended with the job, unfinished).
//!   Before the job completed: `Conclusion` over the chunks digested (`different` when one
//!   differs, `same` once every chunk was digested and none differs, else `""`), the tables
//!   (`TotalTables`, `CheckedTables` = every chunk digested, `DifferentTables`), the rows of the
//!   digested chunks (`SrcSampleRows`/`DstSampleRows`), `DifferentRows` 0 (the background passes
//!   compare chunk digests; no row has been compared yet), `StartedAt`/`FinishedAt` of the last
//!   full pass, and empty `Detail` lists. Once it completed (9): the cut-over verification's
//!   report, which covers whole tables (the stored chunks and the ones digested again) and compared
//!   the differing chunks row by row: its conclusion, tables, rows, `DifferentRows` (the rows
//!   found different), the differing keys (`Detail.Difference`), the tables (`FullProgress`,
//!   `Skipped`), and the `verification` step's times, exactly as a compare task's report.
//!   StartCompare and StopCompare refuse it by name.
//! - DescribeCompareTasks lists it first while DescribeCompareReport answers for it.

use super::compare::{report_items, report_response, ReportItems};
use super::*;
use crate::detail::Phase;
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

/// The job's cut-over verification report once it completed (status 9; `None` before, or when
/// it was not recorded).
fn final_report(job: &JobRow, d: &Detail) -> Option<VerifyReport> {
    if job.status != JobStatus::Success {
        return None;
    }
    serde_json::from_value(d.verification_report.clone()?).ok()
}

/// When the job's `verification` step (the cut-over verification) started and finished.
fn verification_times(d: &Detail) -> (Option<i64>, Option<i64>) {
    d.steps
        .iter()
        .find(|s| s.id == Phase::Verification)
        .map_or((None, None), |s| (s.started_at, s.finished_at))
}

fn threads(job: &JobRow) -> i64 {
    job.request
        .raw()
        .pointer("/Ferry/Threads")
        .and_then(Value::as_i64)
        .unwrap_or(4)
}

fn options(job: &JobRow) -> Value {
    json!({"Method": "dataCheck", "SampleRate": 100, "ThreadCount": threads(job)})
}

/// The task's conclusion: the cut-over verification's once the job completed, else the one over
/// the chunks digested ([`Freshness::conclusion`]).
fn conclusion(f: &Freshness, fin: Option<&VerifyReport>) -> &'static str {
    match fin {
        Some(r) if r.consistent => "same",
        Some(_) => "different",
        None => f.conclusion(),
    }
}

/// DescribeCompareTasks' item of the continuous verification, while DescribeCompareReport
/// answers for it (the job's run has reported its freshness); `None` otherwise.
pub(super) fn list_item(job: &JobRow, d: &Detail, now: i64) -> Option<Value> {
    let f = d.continuous.as_ref()?;
    let fin = final_report(job, d);
    let status = task_status(job);
    let (process, percent) = match status {
        "running" => ("running", f.percent()),
        "success" => ("success", 100),
        _ => ("failed", 0),
    };
    let progress = json!({"Status": process, "Percent": percent, "StepAll": 1, "StepNow": 1, "Message": "", "Steps": []});
    let message = match (&fin, status) {
        (Some(_), _) => verification_message(d),
        (None, "running") => f.message(now),
        (None, _) => String::new(),
    };
    Some(json!({
        "JobId": job.job_id,
        "CompareTaskId": continuous_task_id(&job.job_id),
        "TaskName": "continuous verification",
        "Status": status,
        "Config": {"ObjectMode": "all", "ObjectItems": []},
        "CheckProcess": progress.clone(),
        "CompareProcess": progress,
        "Conclusion": conclusion(f, fin.as_ref()),
        "CreatedAt": t21(Some(f.started_at)),
        "StartedAt": t21(Some(f.started_at)),
        "FinishedAt": t21(if status == "running" { None } else { job.end_time }),
        "Method": "dataCheck",
        "Options": options(job),
        "Message": message,
    }))
}

/// The `verification` step's message (the cut-over verification's result).
fn verification_message(d: &Detail) -> String {
    d.steps
        .iter()
        .find(|s| s.id == Phase::Verification)
        .map(|s| s.message.clone())
        .unwrap_or_default()
}

/// DescribeCompareReport of the continuous verification.
pub(super) async fn report(
    mgr: &Arc<Manager>,
    job_id: &str,
    m: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
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
    let fin = final_report(&job, &d);
    let common = |started: Option<i64>, finished: Option<i64>| {
        json!({
            "Options": options(&job),
            "Objects": {"ObjectMode": "all", "ObjectItems": []},
            "Conclusion": conclusion(f, fin.as_ref()),
            "Status": task_status(&job),
            "StartedAt": t21(started),
            "FinishedAt": t21(finished),
        })
    };
    if let Some(r) = &fin {
        // The cut-over verification: whole tables, the differing chunks compared row by row.
        let (started, finished) = verification_times(&d);
        let items = report_items(r, &t21(started), &t21(finished));
        return Ok(report_response(
            common(started, finished),
            items,
            r.tables.len(),
            m,
        ));
    }
    // Before: the chunk digests of the background passes; no row compared yet.
    let items = ReportItems {
        different_tables: f.tables_differing,
        src_rows: f.src_rows,
        dst_rows: f.dst_rows,
        ..ReportItems::default()
    };
    let mut out = report_response(
        common(f.full_pass_started_at, f.full_pass_finished_at()),
        items,
        f.tables as usize,
        m,
    );
    if let Some(a) = out.get_mut("Abstract").and_then(Value::as_object_mut) {
        // Tables whose every chunk has been digested (not all the tables planned, as for a report).
        a.insert("CheckedTables".into(), json!(f.tables_verified));
    }
    Ok(out)
}
