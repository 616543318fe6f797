//! DescribeMigrationDetail: the job's status (with the pause reading), steps, options, pre-check,
//! allowed actions and errors in the 2021-12-06 model.

use super::compare::conclusion;
use super::rate_limit::{apply_workers, rate_limit_option};
use super::*;
use crate::detail::Phase;

pub(super) fn step_status(s: StepStatus) -> &'static str {
    match s {
        STEP_OK => "success",
        STEP_FAILED => "failed",
        STEP_RUNNING => "running",
        _ => "notStarted",
    }
}

pub(super) fn endpoint_info(job: &JobRow, side: &str, type_key: &str, access_key: &str) -> Value {
    let r = job.request.raw();
    let e = r.get(side).cloned().unwrap_or(json!({}));
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    json!({
        "Region": s("Region"),
        "AccessType": r.get(access_key).and_then(Value::as_str).unwrap_or_default(),
        "DatabaseType": r.get(type_key).and_then(Value::as_str).unwrap_or_default(),
        "NodeType": "simple",
        "Info": [{
            "Role": "", "DbKernel": "", "Host": s("Ip"),
            "Port": e.get("Port").and_then(Value::as_i64).unwrap_or(3306),
            "User": s("User"), "Password": "",
            "CvmInstanceId": s("CvmInstanceId"), "UniqVpnGwId": s("UniqVpnGwId"), "UniqDcgId": s("UniqDcgId"),
            "InstanceId": s("InstanceId"), "CcnGwId": s("CcnId"), "VpcId": s("VpcId"), "SubnetId": s("SubnetId"),
            "EngineVersion": s("EngineVersion"), "Account": "", "AccountRole": "", "AccountMode": "",
            "TmpSecretId": "", "TmpSecretKey": "", "TmpToken": "", "EncryptConn": "UnEncrypted", "SetId": "",
        }],
        "Supplier": s("Supplier"),
        "ExtraAttr": [],
        "DatabaseNetEnv": "",
        "ConnectType": "",
        "CcnOwnerUin": "",
    })
}

pub(super) fn migrate_option(job: &JobRow) -> Value {
    let (mt, ct) = (job.request.migrate_type(), job.request.consistency_type());
    let db_info = crate::actions::v20180330::database_info(job.request.raw());
    let dbs: Vec<Value> = db_info
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let name = d.get("Database").and_then(Value::as_str).unwrap_or_default();
            let new_db = d.get("NewDatabase").and_then(Value::as_str).unwrap_or(name);
            let tables: Vec<Value> = d
                .get("Table")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .map(|t| {
                    let new = d.pointer(&format!("/NewTable/{t}")).and_then(Value::as_str);
                    json!({"TableName": t, "NewTableName": new.unwrap_or(t), "TableEditMode": if new.is_some() { "rename" } else { "" }})
                })
                .collect();
            json!({
                "DbName": name, "NewDbName": new_db, "DBMode": if tables.is_empty() { "all" } else { "partial" },
                "TableMode": if tables.is_empty() { "all" } else { "partial" }, "Tables": tables,
            })
        })
        .collect();
    let ferry = job.request.raw().get("Ferry").cloned().unwrap_or(json!({}));
    let threads = ferry.get("Threads").and_then(Value::as_i64).unwrap_or(4);
    let rps = ferry.get("RowsPerSecond").and_then(Value::as_i64).unwrap_or(0);
    json!({
        "DatabaseTable": {"ObjectMode": if dbs.is_empty() { "all" } else { "partial" }, "Databases": dbs},
        "MigrateType": match mt { 1 => "structure", 2 => "full", _ => "fullAndIncrement" },
        "Consistency": {"Mode": match ct { 2..=4 => "full", 5 => "noCheck", _ => "notConfigured" }},
        "IsMigrateAccount": ferry.get("Accounts").and_then(Value::as_str).is_some_and(|a| a.eq_ignore_ascii_case("copy")),
        "IsOverrideRoot": job.request.raw().pointer("/MigrateOption/IsOverrideRoot").and_then(Value::as_i64) == Some(1),
        "IsDstReadOnly": job.request.raw().pointer("/DstInfo/ReadOnly").and_then(Value::as_i64) == Some(1),
        "MigrateWay": "",
        "RateLimit": {"DumpThread": threads, "DumpRps": rps, "LoadThread": threads, "LoadRps": rps, "SinkerThread": apply_workers(&ferry)},
    })
}

/// The actions allowed in each state, for `Action.AllowedAction`.
pub(super) fn allowed_actions(job: &JobRow, paused_run: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    for op in [
        Operation::Modify,
        Operation::Check,
        Operation::Start,
        Operation::Stop,
        Operation::Complete,
        Operation::Delete,
        Operation::RateLimit,
    ] {
        if op.allows(job.status) {
            v.push(op.action());
        }
    }
    if Operation::Pause.allows(job.status) {
        v.push(if job.paused.is_none() && !paused_run {
            "PauseMigrateJob"
        } else {
            "ResumeMigrateJob"
        });
    }
    if Operation::Compare.allows(job.status) {
        v.push("CreateCompareTask");
    }
    v
}

/// `DescribeMigrationDetail` of a job.
pub fn migration_detail(
    mgr: &Arc<Manager>,
    job: &JobRow,
    compare: Option<&CompareRow>,
) -> Map<String, Value> {
    let d: Detail = mgr.detail_of(job);
    let run = mgr.run_of(&job.job_id);
    let fresh = super::continuous::live(job, &d);
    let now = crate::store::now();
    let status = match (job.paused, &run) {
        (Some(PauseMode::All), Some(_)) => "pausing",
        (Some(PauseMode::Target), Some(r)) if !r.control.is_apply_paused() => "pausing",
        (Some(_), _) => "manualPaused",
        (None, _) => job.status.name_2021(),
    };
    let steps: Vec<Value> = d
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let percent = if s.status == STEP_OK {
                100
            } else if Some(i) == d.current {
                d.current_step_progress()
            } else {
                0
            };
            let errors: Vec<Value> = if s.status == STEP_FAILED {
                vec![json!({"Message": s.message, "Solution": "", "HelpDoc": ""})]
            } else {
                Vec::new()
            };
            let mut step = json!({
                "StepNo": i + 1, "StepName": s.name, "StepId": s.id, "Status": step_status(s.status),
                "StartTime": t21(s.started_at), "FinishTime": t21(s.finished_at), "StepMessage": d.step_message(s),
                "Percent": percent, "Errors": errors, "Warnings": [],
            });
            // Continuous verification runs ahead of the cut-over verification.
            if let (Some(f), Phase::Verification, StepStatus::Default) = (fresh, s.id, s.status) {
                let (start, message, percent) = super::continuous::step(f, now);
                step["Status"] = json!("running");
                step["StartTime"] = start;
                step["StepMessage"] = message;
                step["Percent"] = percent;
            }
            step
        })
        .collect();
    let in_replay = d.running_step() == Some(Phase::Incremental);
    let lag = |v: i64| if in_replay { json!(v) } else { json!(0) };
    let check_steps: Vec<Value> = job
        .check
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            json!({
                "StepNo": i + 1, "StepName": it.name, "StepId": it.id,
                "Status": if it.status == CheckStatus::Failed { "failed" } else { "success" },
                "StartTime": t21(job.check.started_at), "FinishTime": t21(job.check.finished_at),
                "StepMessage": it.message, "Percent": 100, "Errors": [], "Warnings": [],
            })
        })
        .collect();
    let check_status = match job.check.state {
        CheckPhase::Finished if job.check.passed() => "success",
        CheckPhase::Finished => "failed",
        CheckPhase::Running | CheckPhase::Starting => "running",
        CheckPhase::Unavailable => "notStarted",
    };
    let run_mode = job.request.run_mode();
    let expect = job
        .request
        .typed()
        .migrate_option
        .as_ref()
        .and_then(|o| o.expect_time.as_deref())
        .unwrap_or_default();
    let compare_task = match (compare, fresh) {
        (None, Some(_)) => super::continuous::compare_task(job),
        _ => Value::Null,
    };
    let compare_status = match compare {
        None => "notexist".to_string(),
        Some(c) => match (c.status.as_str(), conclusion(c)) {
            ("success", "same") => "consistent".into(),
            ("success", _) => "inconsistent".into(),
            ("created", _) => "unstart".into(),
            (other, _) => other.to_string(),
        },
    };
    let error_info: Vec<Value> = if job.error_message.is_empty() {
        Vec::new()
    } else {
        vec![json!({"Code": "", "Solution": "", "ErrorLog": job.error_message, "HelpDoc": ""})]
    };
    let mut all_actions: Vec<&str> = crate::actions::v20180330::ACTIONS
        .iter()
        .map(|(a, _)| *a)
        .collect();
    all_actions.extend(ACTIONS.iter().map(|(a, _)| *a));
    let mut out = Map::new();
    out.insert("JobId".into(), json!(job.job_id));
    out.insert("JobName".into(), json!(job.job_name));
    out.insert("CreateTime".into(), json!(t21(Some(job.create_time))));
    out.insert("UpdateTime".into(), json!(t21(Some(job.update_time))));
    out.insert("StartTime".into(), json!(t21(job.start_time)));
    out.insert("EndTime".into(), json!(t21(job.end_time)));
    out.insert("BriefMsg".into(), json!(job.error_message));
    out.insert("Status".into(), json!(status));
    out.insert(
        "Action".into(),
        json!({"AllAction": all_actions, "AllowedAction": allowed_actions(job, run.is_none() && job.paused.is_some())}),
    );
    out.insert(
        "StepInfo".into(),
        json!({
            "StepAll": d.steps.len(), "StepNow": d.step_now(),
            "MasterSlaveDistance": lag(d.master_slave_distance()), "SecondsBehindMaster": lag(d.lag_secs() as i64),
            "StepInfo": steps,
        }),
    );
    out.insert(
        "SrcInfo".into(),
        endpoint_info(job, "SrcInfo", "SrcDatabaseType", "SrcAccessType"),
    );
    out.insert(
        "DstInfo".into(),
        endpoint_info(job, "DstInfo", "DstDatabaseType", "DstAccessType"),
    );
    out.insert(
        "CompareTask".into(),
        if compare_task.is_null() {
            json!({"CompareTaskId": compare.map(|c| c.compare_task_id.clone()).unwrap_or_default(), "Status": compare_status})
        } else {
            compare_task
        },
    );
    out.insert("Tags".into(), json!([]));
    out.insert(
        "RunMode".into(),
        json!(if run_mode == 2 { "timed" } else { "immediate" }),
    );
    out.insert("ExpectRunTime".into(), json!(expect));
    out.insert("MigrateOption".into(), migrate_option(job));
    out.insert(
        "CheckStepInfo".into(),
        json!({
            "StartAt": t21(job.check.started_at), "EndAt": t21(job.check.finished_at),
            "Progress": {
                "Status": check_status,
                "Percent": if job.check.state == CheckPhase::Finished { 100 } else { mgr.check_progress(&job.job_id).unwrap_or(0) },
                "StepAll": job.check.items.len(), "StepNow": job.check.items.len(),
                "Message": job.check.failures(), "Steps": check_steps,
            },
        }),
    );
    out.insert(
        "TradeInfo".into(),
        json!({
            "DealName": "", "LastDealName": "", "InstanceClass": "", "TradeStatus": "notBilled", "ExpireTime": "",
            "OfflineTime": "", "IsolateTime": "", "OfflineReason": "", "IsolateReason": "", "PayType": "",
            "BillingType": "notBilling",
        }),
    );
    out.insert("ErrorInfo".into(), Value::Array(error_info));
    out.insert("DumperResumeCtrl".into(), json!("yes"));
    out.insert("RateLimitOption".into(), rate_limit_option(job));
    // The job's spec must still validate; a job that no longer does says so.
    if let Err(e) = spec_of(job) {
        out.insert("BriefMsg".into(), json!(e.to_string()));
    }
    out
}
