//! The nine actions of Tencent DTS API 2018-03-30 (CreateMigrateJob, ModifyMigrateJob,
//! CreateMigrateCheckJob, DescribeMigrateCheckJob, StartMigrateJob, StopMigrateJob,
//! CompleteMigrateJob, DeleteMigrateJob, DescribeMigrateJobs) with the documented fields and
//! types; the status rules are in [`crate::status`].
//!
//! - CreateMigrateJob takes Ferry's extensions too (`SrcInfo`/`DstInfo` `User` and `Password`,
//!   `DatabaseInfo` renames, the `Ferry` object; see `docs/job-file.md`); cloud-only fields
//!   (`AccessKey`, `VpcId`, …) are accepted and ignored; `Tags` are kept and filter
//!   DescribeMigrateJobs. `SrcNodeType` (`""`/`simple`) and an empty `SrcInfoMulti` (Create and
//!   Modify) say "one source server" and are accepted; `cluster` and a non-empty `SrcInfoMulti`
//!   are refused by name (Ferry reads one server, given in `SrcInfo`).
//! - CompleteMigrateJob: `CompleteMode` `waitForSync` (the default) applies the source up to its
//!   current end, then completes; `immediately` (complete without catching up) is refused by name.
//! - DescribeMigrateJobs: `JobId` and `JobName` filter by exact match; `TagFilters` keeps the jobs
//!   having, for every filter, a tag with its `TagKey` and (when `TagValue` lists values) one of
//!   them; the default order is `CreateTime` `DESC` (ties in creation order). Running jobs show
//!   their live detail (steps, progress, lag), others the detail last saved. Passwords come back
//!   as `""`; times as `yyyy-mm-dd hh:mm:ss` (UTC) or `0000-00-00 00:00:00`; `DatabaseInfo` as
//!   the SDK models declare it, a String holding the JSON as sent (`"[]"` for a whole instance);
//!   `ErrorInfo` (from the SDK's model) carries the error of a failed job.

use std::sync::Arc;

use ferry_api::{ApiCall, ApiError};
use serde_json::{json, Map, Value};

use super::params::{check, int_of, opt, req, str_of, Field, Ty};
use super::{fmt_time, new_job_id, ZERO_TIME};
use crate::detail::Detail;
use crate::job::{CheckPhase, JobRequest};
use crate::manager::Manager;
use crate::status::{JobStatus, Operation};
use crate::store::{now, CheckState, JobRow, Limits, Patch};
use ferry_job::job_fields;

/// Actions and their rate limits (requests per second).
pub const ACTIONS: &[(&str, u32)] = &[
    ("CreateMigrateJob", 20),
    ("ModifyMigrateJob", 20),
    ("CreateMigrateCheckJob", 20),
    ("DescribeMigrateCheckJob", 20),
    ("StartMigrateJob", 20),
    ("StopMigrateJob", 20),
    ("CompleteMigrateJob", 20),
    ("DeleteMigrateJob", 20),
    ("DescribeMigrateJobs", 50),
];

/// CreateMigrateJob: the job's field rules, shared with the CLI's job files.
const CREATE: &[Field] = job_fields::CREATE_JOB;

/// Just `JobId`.
pub const JOB_ID: &[Field] = &[req("JobId", Ty::Str)];

const ORDERS: &[&str] = &[
    "JobId",
    "Status",
    "JobName",
    "MigrateType",
    "RunMode",
    "CreateTime",
];

const COMPLETE: &[Field] = &[
    req("JobId", Ty::Str),
    opt("CompleteMode", Ty::StrIn(&["waitForSync", "immediately"])),
];

const TAG_FILTER: &[Field] = &[opt("TagKey", Ty::Str), opt("TagValue", Ty::StrList)];

const DESCRIBE: &[Field] = &[
    opt("JobId", Ty::Str),
    opt("JobName", Ty::Str),
    opt("Order", Ty::StrIn(ORDERS)),
    opt("OrderSeq", Ty::StrIn(&["ASC", "DESC"])),
    opt("Offset", Ty::Int(0, i64::MAX)),
    opt("Limit", Ty::Int(1, 100)),
    opt("TagFilters", Ty::ObjList(TAG_FILTER)),
];

/// Runs a 2018-03-30 action.
pub async fn handle(mgr: &Arc<Manager>, call: &ApiCall) -> Result<Map<String, Value>, ApiError> {
    let enc = call.encoding;
    let p = &call.params;
    match call.action.as_str() {
        "CreateMigrateJob" => {
            let mut m = check(CREATE, p, enc)?;
            single_source(&m)?;
            // An empty SrcInfoMulti says "no other source node": nothing to keep.
            m.remove("SrcInfoMulti");
            create(mgr, m).await
        }
        "ModifyMigrateJob" => {
            let mut m = check(job_fields::modify_job(), p, enc)?;
            single_source(&m)?;
            // An empty SrcInfoMulti says "no other source node": nothing to keep.
            m.remove("SrcInfoMulti");
            modify(mgr, m).await
        }
        "CreateMigrateCheckJob" => {
            let m = check(JOB_ID, p, enc)?;
            mgr.create_check(job_id(&m)).await?;
            Ok(Map::new())
        }
        "DescribeMigrateCheckJob" => describe_check(mgr, job_id(&check(JOB_ID, p, enc)?)).await,
        "StartMigrateJob" => {
            let m = check(JOB_ID, p, enc)?;
            mgr.start(job_id(&m)).await?;
            Ok(Map::new())
        }
        "StopMigrateJob" => {
            let m = check(JOB_ID, p, enc)?;
            mgr.stop(job_id(&m)).await?;
            Ok(Map::new())
        }
        "CompleteMigrateJob" => {
            let m = check(COMPLETE, p, enc)?;
            if str_of(&m, "CompleteMode") == Some("immediately") {
                return Err(ApiError::invalid_parameter_value(
                    "the parameter CompleteMode immediately is not supported: Ferry completes a job only after \
                     applying the source up to its current end (waitForSync), so that the target holds every \
                     committed change; completing with changes left unapplied would leave the target behind the \
                     source without saying which rows. Use waitForSync (the default), or StopMigrateJob to stop \
                     without completing",
                ));
            }
            mgr.complete(job_id(&m)).await?;
            Ok(Map::new())
        }
        "DeleteMigrateJob" => {
            let m = check(JOB_ID, p, enc)?;
            let id = job_id(&m);
            mgr.delete(id).await?;
            Ok(Map::new())
        }
        "DescribeMigrateJobs" => describe_jobs(mgr, check(DESCRIBE, p, enc)?).await,
        other => Err(ApiError::invalid_action(other, "2018-03-30")),
    }
}

fn job_id(m: &Map<String, Value>) -> &str {
    str_of(m, "JobId").unwrap_or_default()
}

/// `SrcNodeType` and `SrcInfoMulti` (the SDK's models): Ferry reads one source server, given in
/// `SrcInfo`. `SrcNodeType` `""`/`simple` and an empty `SrcInfoMulti` say just that and are
/// accepted; a cluster source is refused by name.
fn single_source(m: &Map<String, Value>) -> Result<(), ApiError> {
    match str_of(m, "SrcNodeType") {
        None | Some("") | Some("simple") => {}
        Some(other) => {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter SrcNodeType is {other:?}: Ferry migrates from one MySQL or MariaDB server \
                 (\"simple\", given in SrcInfo); cluster sources of several nodes are not supported"
            )))
        }
    }
    if m.get("SrcInfoMulti")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::invalid_parameter_value(
            "the parameter SrcInfoMulti lists the nodes of a cluster source (SrcNodeType cluster): Ferry \
             migrates from one MySQL or MariaDB server, given in SrcInfo; leave SrcInfoMulti out or empty",
        ));
    }
    Ok(())
}

/// Parses and validates a request (the semantic checks of `ferry_job::spec`): the typed
/// request to store and its spec.
pub fn validate_request(request: Value) -> Result<(JobRequest, ferry_job::JobSpec), ApiError> {
    let req = JobRequest::parse(request).map_err(|e| ApiError::invalid_parameter(e.message))?;
    let spec = req.typed().validate().map_err(|e| {
        ApiError::invalid_parameter_value(format!("the parameter {}: {}", e.field, e.message))
    })?;
    Ok((req, spec))
}

async fn create(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let (request, spec) = validate_request(Value::Object(m))?;
    let (mt, ct) = (request.migrate_type(), request.consistency_type());
    let t = now();
    for _ in 0..8 {
        let id = new_job_id();
        let row = JobRow {
            seq: 0,
            job_id: id.clone(),
            job_name: spec.name.clone(),
            request: request.clone(),
            status: JobStatus::Creating,
            create_time: t,
            update_time: t,
            start_time: None,
            end_time: None,
            error_message: String::new(),
            check: CheckState::default(),
            detail: Detail::new(mt, ct),
            paused: None,
            restart_next: false,
            limits: Limits::default(),
            retries: 0,
            retry_since: None,
            error_kind: None,
        };
        if mgr.store().insert_job(row).await? {
            let mut out = Map::new();
            out.insert("JobId".into(), Value::String(id));
            return Ok(out);
        }
    }
    Err(ApiError::new(
        "InternalError.DuplicateJob",
        "could not draw a free JobId: try again",
    ))
}

/// Merges `patch` into `base`: objects field by field, other values replaced.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// What ModifyMigrateJob may change on a running or paused job: the secrets.
const ROTATABLE: &[&str] = &[
    "SrcInfo.Password",
    "DstInfo.Password",
    "Ferry.SourceTls",
    "Ferry.TargetTls",
];

/// The paths (`SrcInfo.Password`) whose values differ between `a` and `b`.
fn changed_fields(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    let path = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => changed_fields(u, v, &path(k), out),
                    (None, Some(Value::Null)) | (Some(Value::Null), None) => {}
                    _ => out.push(path(k)),
                }
            }
        }
        (x, y) if x != y => out.push(prefix.to_string()),
        _ => {}
    }
}

async fn modify(mgr: &Arc<Manager>, mut m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let id = job_id(&m).to_string();
    m.remove("JobId");
    let job = mgr
        .store()
        .job(&id)
        .await?
        .ok_or_else(|| ApiError::job_not_exist(&id))?;
    if matches!(job.status, JobStatus::Running | JobStatus::ReadyComplete) {
        // A running (or paused) job: only its secrets may change (password rotation).
        let sent_secret = ROTATABLE.iter().any(|r| {
            let (obj, field) = r.split_once('.').unwrap_or((r, ""));
            m.get(obj).and_then(|o| o.get(field)).is_some()
        });
        let mut request = job.request.raw().clone();
        merge(&mut request, &Value::Object(m));
        let mut changed = Vec::new();
        changed_fields(job.request.raw(), &request, "", &mut changed);
        let other: Vec<&String> = changed
            .iter()
            .filter(|f| {
                !ROTATABLE
                    .iter()
                    .any(|r| *f == r || f.starts_with(&format!("{r}.")))
            })
            .collect();
        if !other.is_empty() {
            return Err(ApiError::invalid_parameter_value(format!(
                "job {id} is running (status {}): only SrcInfo.Password, DstInfo.Password, \
                 Ferry.SourceTls and Ferry.TargetTls may change now, not {}; stop the job \
                 (StopMigrateJob) to change the rest (a modified job starts over)",
                job.status,
                other.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        if changed.is_empty() {
            // The same secret again (a retried rotation): nothing to do. Nothing at all: the
            // job cannot be modified now.
            return if sent_secret {
                Ok(Map::new())
            } else {
                Err(Operation::Modify.refused(&id, job.status).into())
            };
        }
        let (request, _) = validate_request(request)?;
        mgr.rotate_secrets(&id, request).await?;
        return Ok(Map::new());
    }
    if !Operation::Modify.allows(job.status) {
        return Err(Operation::Modify.refused(&id, job.status).into());
    }
    let mut request = job.request.raw().clone();
    merge(&mut request, &Value::Object(m));
    let (request, spec) = validate_request(request)?;
    let (mt, ct) = (request.migrate_type(), request.consistency_type());
    mgr.transition(
        &id,
        Operation::Modify,
        Patch {
            status: Some(JobStatus::Creating),
            job_name: Some(spec.name.clone()),
            request: Some(request),
            check: Some(CheckState::default()),
            detail: Some(Detail::new(mt, ct)),
            restart_next: Some(job.start_time.is_some() || job.restart_next),
            ..Patch::default()
        },
    )
    .await?;
    Ok(Map::new())
}

async fn describe_check(mgr: &Arc<Manager>, id: &str) -> Result<Map<String, Value>, ApiError> {
    let job = mgr
        .store()
        .job(id)
        .await?
        .ok_or_else(|| ApiError::job_not_exist(id))?;
    let c = &job.check;
    let progress = match c.state {
        CheckPhase::Finished => 100,
        CheckPhase::Running | CheckPhase::Starting => mgr.check_progress(id).unwrap_or(c.progress),
        CheckPhase::Unavailable => 0,
    };
    let (flag, code, message) = if c.state != CheckPhase::Finished {
        (3, 0, String::new())
    } else if c.passed() {
        (1, 0, String::new())
    } else {
        (0, -1, c.failures())
    };
    let mut out = Map::new();
    out.insert("Status".into(), json!(c.state.as_str()));
    out.insert("ErrorCode".into(), json!(code));
    out.insert("ErrorMessage".into(), json!(message));
    out.insert("Progress".into(), json!(progress.to_string()));
    out.insert("CheckFlag".into(), json!(flag));
    Ok(out)
}

fn s(v: &Value, k: &str) -> Value {
    Value::String(v.get(k).and_then(Value::as_str).unwrap_or_default().to_string())
}

fn n(v: &Value, k: &str, default: i64) -> Value {
    json!(v.get(k).and_then(Value::as_i64).unwrap_or(default))
}

/// `DatabaseInfo` of a stored request as the API declares it: a String holding the JSON, as it was
/// sent (a JSON array given through a JSON body comes back as its text); `"[]"` when absent.
pub fn database_info_text(request: &Value) -> String {
    match request.get("DatabaseInfo") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        Some(v @ Value::Array(_)) => v.to_string(),
        _ => "[]".to_string(),
    }
}

/// `DatabaseInfo` of a stored request as a JSON array.
pub fn database_info(request: &Value) -> Value {
    match request.get("DatabaseInfo") {
        Some(Value::String(t)) if !t.trim().is_empty() => serde_json::from_str(t).unwrap_or(json!([])),
        Some(Value::Array(a)) => Value::Array(a.clone()),
        _ => json!([]),
    }
}

/// `MigrateDetailInfo`.
pub fn detail_json(d: &Detail) -> Value {
    let steps: Vec<Value> = d
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "StepNo": i + 1,
                "StepName": s.name,
                "StepId": s.id,
                "Status": s.status,
                "StartTime": fmt_time(s.started_at),
            })
        })
        .collect();
    json!({
        "StepAll": d.steps.len(),
        "StepNow": d.step_now(),
        "Progress": d.progress().to_string(),
        "CurrentStepProgress": d.current_step_progress().to_string(),
        "MasterSlaveDistance": d.master_slave_distance(),
        "SecondsBehindMaster": d.lag_secs(),
        "StepInfo": steps,
    })
}

/// `MigrateJobInfo` of a job (passwords `""`).
pub fn job_info(job: &JobRow, detail: &Detail) -> Value {
    let r = job.request.raw();
    let mo = r.get("MigrateOption").cloned().unwrap_or(json!({}));
    let cp = mo.get("ConsistencyParams").cloned().unwrap_or(json!({}));
    let db_info = database_info(r);
    let whole = db_info.as_array().is_none_or(|a| a.is_empty());
    let src = r.get("SrcInfo").cloned().unwrap_or(json!({}));
    let dst = r.get("DstInfo").cloned().unwrap_or(json!({}));
    let error_info: Vec<Value> = if job.error_message.is_empty() {
        Vec::new()
    } else {
        vec![json!({"ErrorLog": job.error_message, "HelpDoc": ""})]
    };
    let tags = r.get("Tags").cloned().unwrap_or(json!([]));
    json!({
        "JobId": job.job_id,
        "JobName": job.job_name,
        "MigrateOption": {
            "RunMode": n(&mo, "RunMode", 1),
            "ExpectTime": match mo.get("ExpectTime").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => t.to_string(),
                _ => ZERO_TIME.to_string(),
            },
            "MigrateType": n(&mo, "MigrateType", 2),
            "MigrateObject": n(&mo, "MigrateObject", if whole { 1 } else { 2 }),
            "ConsistencyType": n(&mo, "ConsistencyType", 1),
            "IsOverrideRoot": n(&mo, "IsOverrideRoot", 0),
            "ExternParams": match mo.get("ExternParams").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => "[]".to_string(),
            },
            "ConsistencyParams": {
                "SelectRowsPerTable": n(&cp, "SelectRowsPerTable", 0),
                "TablesSelectAll": n(&cp, "TablesSelectAll", 0),
                "TablesSelectCount": n(&cp, "TablesSelectCount", 0),
            },
        },
        "SrcDatabaseType": s(r, "SrcDatabaseType"),
        "SrcAccessType": s(r, "SrcAccessType"),
        "SrcInfo": {
            "AccessKey": s(&src, "AccessKey"),
            "Ip": s(&src, "Ip"),
            "Port": n(&src, "Port", 3306),
            "User": s(&src, "User"),
            "Password": "",
            "RdsInstanceId": s(&src, "RdsInstanceId"),
            "CvmInstanceId": s(&src, "CvmInstanceId"),
            "UniqDcgId": s(&src, "UniqDcgId"),
            "VpcId": s(&src, "VpcId"),
            "SubnetId": s(&src, "SubnetId"),
            "UniqVpnGwId": s(&src, "UniqVpnGwId"),
            "InstanceId": s(&src, "InstanceId"),
            "Region": s(&src, "Region"),
            "Supplier": s(&src, "Supplier"),
            "CcnId": s(&src, "CcnId"),
            "EngineVersion": s(&src, "EngineVersion"),
        },
        "DstDatabaseType": s(r, "DstDatabaseType"),
        "DstAccessType": s(r, "DstAccessType"),
        "DstInfo": {
            "Region": s(&dst, "Region"),
            "InstanceId": s(&dst, "InstanceId"),
            "Ip": s(&dst, "Ip"),
            "Port": n(&dst, "Port", 3306),
            "ReadOnly": n(&dst, "ReadOnly", 0),
            "User": s(&dst, "User"),
            "Password": "",
        },
        "DatabaseInfo": database_info_text(r),
        "CreateTime": fmt_time(Some(job.create_time)),
        "StartTime": fmt_time(job.start_time),
        "EndTime": fmt_time(job.end_time),
        "Status": job.status.code(),
        "Detail": detail_json(detail),
        "ErrorInfo": error_info,
        "Tags": tags,
    })
}

async fn describe_jobs(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut jobs = mgr.store().jobs().await?;
    if let Some(id) = str_of(&m, "JobId").filter(|s| !s.is_empty()) {
        jobs.retain(|j| j.job_id == id);
    }
    if let Some(name) = str_of(&m, "JobName").filter(|s| !s.is_empty()) {
        jobs.retain(|j| j.job_name == name);
    }
    let filters = tag_filters(&m)?;
    jobs.retain(|j| tags_match(&j.request, &filters));
    let order = str_of(&m, "Order").unwrap_or("CreateTime").to_ascii_lowercase();
    let desc = str_of(&m, "OrderSeq")
        .unwrap_or("DESC")
        .eq_ignore_ascii_case("DESC");
    jobs.sort_by(|a, b| {
        let (am, ar) = types_and_mode(a);
        let (bm, br) = types_and_mode(b);
        let o = match order.as_str() {
            "jobid" => a.job_id.cmp(&b.job_id),
            "status" => a.status.cmp(&b.status),
            "jobname" => a.job_name.cmp(&b.job_name),
            "migratetype" => am.cmp(&bm),
            "runmode" => ar.cmp(&br),
            _ => a.create_time.cmp(&b.create_time),
        }
        .then(a.seq.cmp(&b.seq));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    let total = jobs.len();
    let offset = int_of(&m, "Offset").unwrap_or(0).max(0) as usize;
    let limit = int_of(&m, "Limit").unwrap_or(20) as usize;
    let list: Vec<Value> = jobs
        .iter()
        .skip(offset)
        .take(limit)
        .map(|j| job_info(j, &mgr.detail_of(j)))
        .collect();
    let mut out = Map::new();
    out.insert("TotalCount".into(), json!(total));
    out.insert("JobList".into(), Value::Array(list));
    Ok(out)
}

/// `TagFilters`: (key, values) pairs; a job matches when, for every filter, it has a tag with
/// that key and (values non-empty) one of those values.
fn tag_filters(m: &Map<String, Value>) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let mut out = Vec::new();
    for (i, f) in m
        .get("TagFilters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = f.get("TagKey").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() {
            return Err(ApiError::missing_parameter(&format!("TagFilters.{i}.TagKey")));
        }
        let values: Vec<String> = f
            .get("TagValue")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        out.push((key.to_string(), values));
    }
    Ok(out)
}

/// True when a job's `Tags` satisfy every tag filter.
pub fn tags_match(request: &JobRequest, filters: &[(String, Vec<String>)]) -> bool {
    filters.iter().all(|(k, values)| {
        request
            .tags()
            .iter()
            .any(|t| t.key == *k && (values.is_empty() || values.contains(&t.value)))
    })
}

fn types_and_mode(j: &JobRow) -> (i64, i64) {
    (j.request.migrate_type(), j.request.run_mode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_takes_ferry_db_list() {
        use ferry_api::handler::ParamEncoding;
        let base = json!({
            "JobName": "a", "MigrateOption": {"RunMode": 1, "MigrateType": 2},
            "SrcDatabaseType": "mysql", "SrcAccessType": "extranet", "SrcInfo": {"Ip": "h", "User": "u"},
            "DstDatabaseType": "mysql", "DstAccessType": "extranet", "DstInfo": {"Ip": "h", "User": "u"},
            "Ferry": {"DbList": "{\"shop\": {\"Table\": {\"t\": {\"filter\": \"id > 1\"}}}}"}
        });
        let checked = check(CREATE, base.as_object().unwrap(), ParamEncoding::Json).unwrap();
        let (_, spec) = validate_request(Value::Object(checked)).unwrap();
        assert!(spec.selection.mapping("shop", "t").unwrap().filter.is_some());
        let mut bad = base.clone();
        bad["Ferry"]["DbList"] = json!({"shop": {"Table": {"t": {"filter": "id > NOW()"}}}});
        let checked = check(CREATE, bad.as_object().unwrap(), ParamEncoding::Json).unwrap();
        let e = validate_request(Value::Object(checked)).unwrap_err();
        assert!(
            format!("{e:?}").contains("Ferry.DbList.shop.Table.t.filter"),
            "{e:?}"
        );
    }

    #[test]
    fn changed_fields_lists_paths() {
        let a = json!({"JobName": "a", "SrcInfo": {"Port": 1, "Password": "x"}, "Ferry": {"Threads": 2}});
        let mut b = a.clone();
        merge(
            &mut b,
            &json!({"SrcInfo": {"Password": "y"}, "Ferry": {"SourceTls": {"Mode": "required"}}}),
        );
        let mut out = Vec::new();
        changed_fields(&a, &b, "", &mut out);
        assert_eq!(out, vec!["Ferry.SourceTls", "SrcInfo.Password"]);
        let mut same = a.clone();
        merge(&mut same, &json!({"JobName": "a"}));
        let mut out = Vec::new();
        changed_fields(&a, &same, "", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn tag_filters_match_key_and_values() {
        let r = JobRequest::parse(
            json!({"Tags": [{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "team", "TagValue": "db"}]}),
        )
        .unwrap();
        let f = |v: Vec<(&str, Vec<&str>)>| -> Vec<(String, Vec<String>)> {
            v.into_iter()
                .map(|(k, vs)| (k.to_string(), vs.into_iter().map(String::from).collect()))
                .collect()
        };
        assert!(tags_match(&r, &[]));
        assert!(tags_match(&r, &f(vec![("env", vec![])])));
        assert!(tags_match(
            &r,
            &f(vec![("env", vec!["dev", "prod"]), ("team", vec!["db"])])
        ));
        assert!(!tags_match(&r, &f(vec![("env", vec!["dev"])])));
        assert!(!tags_match(&r, &f(vec![("env", vec![]), ("owner", vec![])])));
        let untagged = JobRequest::parse(json!({})).unwrap();
        assert!(!tags_match(&untagged, &f(vec![("env", vec![])])));
    }

    #[test]
    fn database_info_is_the_text_sent() {
        let sent = r#"[{"Database":"d","Table":["t"]}]"#;
        assert_eq!(database_info_text(&json!({"DatabaseInfo": sent})), sent);
        assert_eq!(
            database_info_text(&json!({"DatabaseInfo": [{"Database": "d"}]})),
            r#"[{"Database":"d"}]"#
        );
        assert_eq!(database_info_text(&json!({})), "[]");
    }

    #[test]
    fn one_source_server() {
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(single_source(&m(json!({"SrcNodeType": "simple", "SrcInfoMulti": []}))).is_ok());
        assert!(single_source(&m(json!({"SrcNodeType": ""}))).is_ok());
        let e = single_source(&m(json!({"SrcNodeType": "cluster"}))).unwrap_err();
        assert!(e.message.contains("SrcNodeType") && e.code == "InvalidParameterValue");
        let e = single_source(&m(json!({"SrcInfoMulti": [{"Ip": "h"}]}))).unwrap_err();
        assert!(e.message.contains("SrcInfoMulti"));
    }
}
