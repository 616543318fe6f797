//! What the web console shows of a job beyond the API's answers (the SDK models have no fields
//! for them), read from the same [`Detail`] DescribeMigrationDetail is built from
//! ([`Manager::detail_of`]: live while the job runs here, else as stored), so the numbers are the
//! same ones:
//!
//! - `Tables`: the full load's progress per table ([`crate::detail::TableProgress`]): state,
//!   chunks done of planned, rows and bytes copied, the source's row estimate and the seconds
//!   left at the table's own rate.
//! - `Positions`: `Snapshot` (the full load's snapshot), `Start` (`Ferry.StartPosition` as
//!   given), `Applied` (the replay's checkpoint), `CutOver` (where a completed job's replay
//!   ended), `ConsistentAfter` (a lock-free or resumed load's window still being replayed).
//! - `Errors`: the outage being retried now (`Current`: what, which side, the error, the attempt,
//!   since when, when the job gives up), the transient failures retried in the job's runs
//!   (`Retries`), the last one and when, and the job's own error (`Message`).
//! - `RepairSql`: the last comparison's repair file ([`crate::repair_sql`]), its size.
//! - `Owner`: in cluster mode (a shared store, docs/cluster.md), the node holding the job's lease
//!   (`Node`, empty while none does), the lease's `Epoch` and its expiry (`LeaseUntil`); `null`
//!   with one node.
//! - `JobVerification`: the job's own verification (ConsistencyType 2–4) when it has run: the
//!   conclusion, the totals, each table's row (DescribeCompareReport's `FullProgress` items), the
//!   first [`KEYS_SHOWN`] differing keys (its `Difference` items) and the tables not compared.

use std::sync::Arc;

use ferry_api::ApiError;
use serde_json::{json, Map, Value};

use crate::actions::fmt_time;
use crate::detail::{Detail, STEP_OK};
use crate::manager::Manager;
use crate::status::JobStatus;
use crate::store::{now, JobRow};

/// The extras of a job (`JobNotExist` when there is none).
pub async fn job_extras(mgr: &Arc<Manager>, job_id: &str) -> Result<Map<String, Value>, ApiError> {
    let job = mgr
        .store()
        .job(job_id)
        .await?
        .ok_or_else(|| ApiError::job_not_exist(job_id))?;
    let detail = mgr.detail_of(&job);
    let mut out = render(&job, &detail, now());
    let last = mgr.store().compares(job_id).await?.pop();
    let repair = match last {
        Some(c) => {
            let size = crate::repair_sql::size(mgr.store(), job_id, &c.compare_task_id).await;
            json!({"CompareTaskId": c.compare_task_id, "Bytes": size})
        }
        None => json!({"CompareTaskId": "", "Bytes": null}),
    };
    out.insert("RepairSql".into(), repair);
    let owner = match mgr.node_id() {
        Some(_) => match mgr.store().owner(job_id).await? {
            Some((node, lease_until_ms, epoch)) => json!({
                "Node": node,
                "Epoch": epoch,
                "LeaseUntil": if node.is_empty() { json!("") } else { time(lease_until_ms / 1000) },
            }),
            None => Value::Null,
        },
        None => Value::Null,
    };
    out.insert("Owner".into(), owner);
    Ok(out)
}

fn time(t: i64) -> Value {
    if t > 0 {
        json!(fmt_time(Some(t)))
    } else {
        json!("")
    }
}

/// The differing keys of the job's own verification the console lists.
pub const KEYS_SHOWN: usize = 100;

/// `JobVerification` (see the module docs), `Null` before the verification has run.
fn job_verification(d: &Detail) -> Value {
    let Some(report) = d
        .verification_report
        .as_ref()
        .and_then(|v| serde_json::from_value::<ferry_verify::VerifyReport>(v.clone()).ok())
    else {
        return Value::Null;
    };
    let finished = d
        .steps
        .iter()
        .find(|s| s.id == crate::job::Phase::Verification)
        .and_then(|s| s.finished_at)
        .map(time)
        .unwrap_or(json!(""));
    let finished = finished.as_str().unwrap_or_default().to_string();
    let items = crate::actions::v20211206::compare::report_items(&report, "", &finished);
    let total_keys = items.diffs.len();
    json!({
        "Conclusion": if report.consistent { "same" } else { "different" },
        "TotalTables": report.tables.len(),
        "DifferentTables": items.different_tables,
        "DifferentRows": items.different_rows,
        "DifferentObjects": report.objects.len(),
        "FinishedAt": finished,
        "Tables": items.full,
        "Differences": items.diffs.into_iter().take(KEYS_SHOWN).collect::<Vec<_>>(),
        "DifferenceTotal": total_keys,
        "Skipped": items.skipped,
    })
}

/// The extras of a job and its detail as of `now` (pure).
pub fn render(job: &JobRow, d: &Detail, now: i64) -> Map<String, Value> {
    let tables: Vec<Value> = d
        .tables
        .iter()
        .map(|t| {
            json!({
                "Table": t.table, "State": t.state(), "Chunks": t.chunks, "ChunksDone": t.chunks_done,
                "Rows": t.rows, "Bytes": t.bytes, "EstimatedRows": t.estimated_rows,
                "EtaSeconds": t.eta_secs(now),
            })
        })
        .collect();
    let replay_done = d
        .steps
        .iter()
        .any(|s| s.id == crate::job::Phase::Incremental && s.status == STEP_OK);
    let cut_over = if job.status == JobStatus::Success && replay_done {
        d.applied_position.clone()
    } else {
        String::new()
    };
    let start = job
        .request
        .raw()
        .pointer("/Ferry/StartPosition")
        .filter(|v| !v.is_null())
        .map(|v| v.to_string())
        .unwrap_or_default();
    let current = d.problem.as_ref().map(|p| {
        json!({
            "What": p.what, "Side": p.side, "Error": p.error, "Attempt": p.attempt,
            "Since": time(p.since), "GivesUpAt": p.gives_up_at.map(time).unwrap_or(json!("")),
        })
    });
    let mut out = Map::new();
    out.insert("Tables".into(), Value::Array(tables));
    out.insert("JobVerification".into(), job_verification(d));
    out.insert(
        "Positions".into(),
        json!({
            "Snapshot": d.snapshot_position, "Start": start, "Applied": d.applied_position,
            "CutOver": cut_over, "ConsistentAfter": d.consistent_after,
        }),
    );
    out.insert(
        "Errors".into(),
        json!({
            "Current": current, "Retries": d.retries, "LastRetryError": d.last_retry_error,
            "LastErrorAt": time(d.last_error_at), "Message": job.error_message,
            "RunRetries": job.retries,
        }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detail::{Problem, TableProgress};

    #[test]
    fn extras_show_tables_positions_and_errors() {
        let mut job = JobRow {
            seq: 1,
            job_id: "dts-1".into(),
            job_name: "n".into(),
            request: crate::job::JobRequest::parse(
                json!({"JobName": "n", "Ferry": {"StartPosition": {"File": "b.000001", "Offset": 4}}}),
            )
            .unwrap(),
            status: JobStatus::Running,
            create_time: 0,
            update_time: 0,
            start_time: None,
            end_time: None,
            error_message: String::new(),
            check: Default::default(),
            detail: Detail::default(),
            paused: None,
            restart_next: false,
            limits: Default::default(),
            retries: 0,
            retry_since: None,
            error_kind: None,
        };
        let mut d = Detail::new(3, 1);
        d.tables.push(TableProgress {
            table: "d.t".into(),
            chunks: 4,
            chunks_done: 2,
            rows: 500,
            bytes: 5000,
            estimated_rows: 1000,
            first_chunk_at: Some(100),
            rows_at_first_chunk: 250,
            done: false,
        });
        d.snapshot_position = "b.000001:4".into();
        d.applied_position = "b.000002:9".into();
        d.retries = 3;
        d.last_retry_error = "connection refused".into();
        d.last_error_at = 1_527_174_363;
        d.problem = Some(Problem {
            what: "incremental replay".into(),
            side: "source".into(),
            error: "connection refused".into(),
            attempt: 2,
            since: 1_527_174_363,
            gives_up_at: None,
        });
        let x = Value::Object(render(&job, &d, 110));
        assert_eq!(x["Tables"][0]["State"], "copying");
        assert_eq!(x["Tables"][0]["EtaSeconds"], 20, "250 rows in 10 s, 500 left");
        assert_eq!(x["Positions"]["Snapshot"], "b.000001:4");
        assert_eq!(x["Positions"]["Start"], r#"{"File":"b.000001","Offset":4}"#);
        assert_eq!(x["Positions"]["CutOver"], "", "not completed");
        assert_eq!(x["Errors"]["Retries"], 3);
        assert_eq!(x["Errors"]["Current"]["Attempt"], 2);
        assert_eq!(x["Errors"]["LastErrorAt"], "2018-05-24 15:06:03");
        // Completed: the applied position is the cut-over's.
        job.status = JobStatus::Success;
        d.succeed(200);
        let x = Value::Object(render(&job, &d, 210));
        assert_eq!(x["Positions"]["CutOver"], "b.000002:9");
        assert_eq!(x["Errors"]["Current"], Value::Null);
    }
}
