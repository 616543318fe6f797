//! ModifyMigrateRateLimit: the rows/s and thread limits written into the job's `Ferry` settings
//! (applied at once to a running job's throttle), and `RateLimitOption` of DescribeMigrationDetail.

use super::*;

pub(super) async fn rate_limit(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let job = job(mgr, &job_id).await?;
    if !Operation::RateLimit.allows(job.status) {
        return Err(Operation::RateLimit.refused(&job_id, job.status).into());
    }
    let mut limits = job.limits.clone();
    let mut request = job.request.raw().clone();
    let rps = [int_of(&m, "DumpRps"), int_of(&m, "LoadRps")]
        .into_iter()
        .flatten()
        .min();
    let threads = [int_of(&m, "DumpThread"), int_of(&m, "LoadThread")]
        .into_iter()
        .flatten()
        .max();
    if let Some(v) = int_of(&m, "DumpRps") {
        limits.dump_rps = v;
    }
    if let Some(v) = int_of(&m, "LoadRps") {
        limits.load_rps = v;
    }
    if let Some(v) = int_of(&m, "DumpThread") {
        limits.dump_thread = v;
    }
    if let Some(v) = int_of(&m, "LoadThread") {
        limits.load_thread = v;
    }
    if let Some(v) = int_of(&m, "SinkerThread") {
        limits.sinker_thread = v;
    }
    limits.user_set = true;
    if let Some(obj) = request.as_object_mut() {
        let ferry = obj.entry("Ferry").or_insert_with(|| json!({}));
        if let Some(f) = ferry.as_object_mut() {
            if let Some(r) = rps {
                f.insert("RowsPerSecond".into(), json!(r));
            }
            if let Some(t) = threads {
                f.insert("Threads".into(), json!(t));
            }
            if let Some(w) = int_of(&m, "SinkerThread") {
                f.insert("ApplyWorkers".into(), json!(w));
            }
        }
    }
    let (request, _) = crate::actions::v20180330::validate_request(request)?;
    mgr.transition(
        &job_id,
        Operation::RateLimit,
        Patch {
            request: Some(request),
            limits: Some(limits),
            ..Patch::default()
        },
    )
    .await?;
    if let Some(r) = rps {
        mgr.apply_rows_per_second(&job_id, r as u64).await?;
    }
    Ok(Map::new())
}

/// The apply workers of a job's `Ferry` settings (`ApplyWorkers`, else the replay's default).
pub(super) fn apply_workers(ferry: &Value) -> i64 {
    ferry
        .get("ApplyWorkers")
        .and_then(Value::as_i64)
        .unwrap_or(ferry_replay::apply::default_workers() as i64)
}

pub(super) fn rate_limit_option(job: &JobRow) -> Value {
    let l = &job.limits;
    let ferry = job.request.raw().get("Ferry").cloned().unwrap_or(json!({}));
    let threads = ferry.get("Threads").and_then(Value::as_i64).unwrap_or(4);
    let rps = ferry.get("RowsPerSecond").and_then(Value::as_i64).unwrap_or(0);
    json!({
        "CurrentDumpThread": threads,
        "DefaultDumpThread": 4,
        "CurrentDumpRps": rps,
        "DefaultDumpRps": 0,
        "CurrentLoadThread": threads,
        "DefaultLoadThread": 4,
        "CurrentLoadRps": rps,
        "DefaultLoadRps": 0,
        "CurrentSinkerThread": apply_workers(&ferry),
        "DefaultSinkerThread": ferry_replay::apply::default_workers(),
        "HasUserSetRateLimit": if l.user_set { "yes" } else { "no" },
    })
}
