//! DescribeMigrationCheckJob (one `CheckStep` per check item) and SkipCheckItem (WARNING items
//! only).

use super::*;

pub(super) fn check_job(mgr: &Arc<Manager>, job: &JobRow) -> Map<String, Value> {
    let c = &job.check;
    let status = match c.state {
        CheckPhase::Finished => "success",
        CheckPhase::Running | CheckPhase::Starting => "running",
        CheckPhase::Unavailable => "notStarted",
    };
    let steps: Vec<Value> = c
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let result = match it.status {
                CheckStatus::Passed => "pass",
                CheckStatus::Warning => "warning",
                CheckStatus::Failed => "failed",
            };
            let failure = if result == "pass" { "" } else { it.message.as_str() };
            json!({
                "StepNo": i + 1,
                "StepId": it.id,
                "StepName": it.name,
                "StepStatus": result,
                "StepMessage": it.message,
                "DetailCheckItems": [{
                    "CheckItemName": it.name,
                    "Description": it.group,
                    "CheckResult": result,
                    "FailureReason": failure,
                    "Solution": failure,
                    "ErrorLog": [],
                    "HelpDoc": [],
                    "SkipInfo": if c.skipped.contains(&it.id) { "skipped by SkipCheckItem" } else { "" },
                }],
                "HasSkipped": c.skipped.contains(&it.id),
            })
        })
        .collect();
    let warnings = c
        .items
        .iter()
        .filter(|i| i.status == CheckStatus::Warning && !c.skipped.contains(&i.id))
        .count();
    let brief = match status {
        "success" if c.passed() => format!("check passed ({warnings} warning(s) not skipped)"),
        "success" => format!("check did not pass: {}", c.failures()),
        "running" => format!(
            "checking: {}%",
            mgr.check_progress(&job.job_id).unwrap_or(c.progress)
        ),
        _ => "no check has run since the job was created or modified: call CreateMigrateCheckJob".into(),
    };
    let mut out = Map::new();
    out.insert("Status".into(), json!(status));
    out.insert("BriefMsg".into(), json!(brief));
    out.insert("StepInfo".into(), Value::Array(steps));
    out.insert(
        "CheckFlag".into(),
        json!(if status == "success" && c.passed() {
            "checkPass"
        } else if status == "success" {
            "checkNotPass"
        } else {
            ""
        }),
    );
    out
}

pub(super) async fn skip_items(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let job = job(mgr, &job_id).await?;
    let ids: Vec<String> = m
        .get("StepIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::missing_parameter("StepIds"));
    }
    let mut check = job.check.clone();
    if check.state != CheckPhase::Finished {
        return Err(ApiError::not_allow_operation(format!(
            "job {job_id} has no finished check: call CreateMigrateCheckJob and wait for it"
        )));
    }
    for sid in &ids {
        let Some(item) = check.items.iter().find(|i| &i.id == sid) else {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter StepIds names {sid:?}, which is not a check item of job {job_id}"
            )));
        };
        if item.status != CheckStatus::Warning {
            return Err(ApiError::not_allow_operation(format!(
                "the check item {sid} is {}: only WARNING items can be skipped (a FAILED item means the migration would fail or lose data)",
                item.status_name()
            )));
        }
        if !check.skipped.contains(sid) {
            check.skipped.push(sid.clone());
        }
    }
    let allowed = [
        JobStatus::Creating,
        JobStatus::Created,
        JobStatus::CheckPass,
        JobStatus::CheckNotPass,
        JobStatus::Failed,
    ];
    match mgr
        .store()
        .update(
            &job_id,
            Some(&allowed),
            Patch {
                check: Some(check),
                ..Patch::default()
            },
        )
        .await?
    {
        crate::store::Update::Done(_) => {}
        crate::store::Update::WrongStatus(s) => {
            return Err(ApiError::not_allow_operation(format!(
                "SkipCheckItem is not allowed while job {job_id} is in status {s}"
            )))
        }
        crate::store::Update::Missing => return Err(ApiError::job_not_exist(&job_id)),
    }
    let mut out = Map::new();
    out.insert("Message".into(), json!(format!("skipped: {}", ids.join(", "))));
    Ok(out)
}
