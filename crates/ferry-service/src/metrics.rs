//! The service's metrics in the Prometheus text format, one series per job (labels `job_id`,
//! `job_name`): status, current step, rows and bytes copied, rows/s, replay events applied, lag
//! in seconds and bytes, and the differences found by the job's verification step; retries,
//! the time of the last failure, whether an outage is under way, and, for the jobs running in
//! this server, whether each endpoint answers (`ferry_job_endpoint_up`, label `endpoint`).
//!
//! Cluster mode (several nodes on a shared store): a node exports the series of the jobs whose
//! lease it holds, and `ferry_job_owner` (labels `job_id`, `job_name`, `node`): 1 for each job
//! and the node holding its lease, across the cluster; `ferry_store_statements_total`: the
//! statements this node sent to the shared store.
//!
//! Unknown values: `ferry_job_lag_bytes` is `NaN` while the source's binlog end cannot be read.
//! `ferry_job_lag_seconds` keeps growing while the replay is disconnected, blocked or failing.

use std::fmt::Write;
use std::sync::Arc;

use crate::detail::Phase;
use crate::manager::Manager;
use crate::store::JobRow;

/// One metric: name, type, help, and its value per label set.
type Series = (&'static str, &'static str, &'static str, Vec<(String, f64)>);

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(job: &JobRow) -> String {
    format!(
        "job_id=\"{}\",job_name=\"{}\"",
        escape(&job.job_id),
        escape(&job.job_name)
    )
}

/// Renders every job's metrics.
pub async fn render(mgr: &Arc<Manager>) -> String {
    let mut jobs = match mgr.store().jobs().await {
        Ok(j) => j,
        Err(e) => return format!("# ferry: cannot read the job store: {}\n", escape(&e.to_string())),
    };
    let owners = cluster_owners(mgr, &jobs).await;
    if mgr.node_id().is_some() {
        jobs.retain(|j| mgr.holds_lease(&j.job_id));
    }
    let mut series: Vec<Series> = vec![
        (
            "ferry_job_status",
            "gauge",
            "The job's status (Tencent DTS 2018 codes 1-12).",
            vec![],
        ),
        (
            "ferry_job_step",
            "gauge",
            "The number of the job's current step (0 before the first).",
            vec![],
        ),
        (
            "ferry_job_progress_percent",
            "gauge",
            "The job's overall progress, 0-100.",
            vec![],
        ),
        (
            "ferry_job_rows_copied_total",
            "counter",
            "Rows copied by the full load.",
            vec![],
        ),
        (
            "ferry_job_bytes_copied_total",
            "counter",
            "Bytes copied by the full load.",
            vec![],
        ),
        (
            "ferry_job_rows_per_second",
            "gauge",
            "Rows per second over the last interval (load or replay).",
            vec![],
        ),
        (
            "ferry_job_replay_events_applied_total",
            "counter",
            "Binlog events applied by the replay.",
            vec![],
        ),
        (
            "ferry_job_lag_seconds",
            "gauge",
            "Seconds the target is behind the source.",
            vec![],
        ),
        (
            "ferry_job_lag_bytes",
            "gauge",
            "Binlog bytes the target is behind the source (NaN while the source cannot be read).",
            vec![],
        ),
        (
            "ferry_job_retries_total",
            "counter",
            "Transient failures retried by the job's engines (load, replay, verification).",
            vec![],
        ),
        (
            "ferry_job_last_error_timestamp_seconds",
            "gauge",
            "UNIX time of the job's last transient failure (0: none).",
            vec![],
        ),
        (
            "ferry_job_retrying",
            "gauge",
            "1 while an outage is under way: the job retries a failing source or target.",
            vec![],
        ),
        (
            "ferry_job_verification_differences",
            "gauge",
            "Differing rows found by the job's verification step.",
            vec![],
        ),
        ("ferry_job_paused", "gauge", "1 while the job is paused.", vec![]),
        (
            "ferry_job_runs_retried_total",
            "counter",
            "Failed runs of the job that ferry serve ran again after a transient error, since its last StartMigrateJob.",
            vec![],
        ),
        (
            "ferry_job_verify_chunks_dirty",
            "gauge",
            "Continuous verification: chunks changed by the replay since their last digest.",
            vec![],
        ),
        (
            "ferry_job_verify_rows_verified_total",
            "counter",
            "Continuous verification: rows digested by its background passes.",
            vec![],
        ),
        (
            "ferry_job_verify_oldest_unverified_seconds",
            "gauge",
            "Continuous verification: age of the oldest change not verified yet (0: none).",
            vec![],
        ),
        (
            "ferry_job_verify_since_full_pass_seconds",
            "gauge",
            "Continuous verification: seconds since its last full pass (NaN: none yet).",
            vec![],
        ),
    ];
    for job in &jobs {
        let d = mgr.detail_of(job);
        let c = d.continuous.as_ref();
        let l = labels(job);
        let values = [
            job.status.code() as f64,
            d.step_now() as f64,
            d.progress() as f64,
            d.rows_copied as f64,
            d.bytes_copied as f64,
            d.rows_per_second,
            d.events_applied as f64,
            d.lag_seconds_now(),
            if d.lag_bytes_known() {
                d.lag_bytes as f64
            } else {
                f64::NAN
            },
            d.retries as f64,
            d.last_error_at as f64,
            f64::from(u8::from(d.problem.is_some())),
            d.verification_differences as f64,
            f64::from(u8::from(job.paused.is_some())),
            f64::from(job.retries),
            c.map_or(0.0, |c| c.chunks_dirty as f64),
            c.map_or(0.0, |c| c.rows_verified as f64),
            c.and_then(|c| c.oldest_unverified_seconds).unwrap_or(0) as f64,
            c.and_then(|c| c.since_full_pass_seconds)
                .map_or(f64::NAN, |s| s as f64),
        ];
        for (s, v) in series.iter_mut().zip(values) {
            s.3.push((l.clone(), v));
        }
    }
    let mut out = String::new();
    for (name, ty, help, values) in &series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {ty}");
        for (l, v) in values {
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP ferry_job_step_info The job's current step (1 on the step's series)."
    );
    let _ = writeln!(out, "# TYPE ferry_job_step_info gauge");
    for job in &jobs {
        let d = mgr.detail_of(job);
        if let Some(s) = d.current.and_then(|i| d.steps.get(i)) {
            let _ = writeln!(
                out,
                "ferry_job_step_info{{{},step=\"{}\"}} 1",
                labels(job),
                escape(s.id.as_str())
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ferry_job_endpoint_up 1 while the job's source or target answers, 0 while the job retries it (jobs running in this server)."
    );
    let _ = writeln!(out, "# TYPE ferry_job_endpoint_up gauge");
    for job in &jobs {
        if mgr.run_of(&job.job_id).is_none() {
            continue;
        }
        let d = mgr.detail_of(job);
        let side = d.problem.as_ref().map(|p| p.side.as_str());
        let in_replay = d.running_step() == Some(Phase::Incremental);
        for endpoint in ["source", "target"] {
            let down = side == Some(endpoint) || (endpoint == "source" && in_replay && !d.lag_bytes_known());
            let _ = writeln!(
                out,
                "ferry_job_endpoint_up{{{},endpoint=\"{endpoint}\"}} {}",
                labels(job),
                u8::from(!down)
            );
        }
    }
    out.push_str(&owners);
    out
}

/// `ferry_job_owner` in cluster mode (empty otherwise).
async fn cluster_owners(mgr: &Arc<Manager>, jobs: &[JobRow]) -> String {
    let mut out = String::new();
    if mgr.node_id().is_none() {
        return out;
    }
    let leases = match mgr.store().leases().await {
        Ok(l) => l,
        Err(e) => return format!("# ferry: cannot read the leases: {}\n", escape(&e.to_string())),
    };
    let _ = writeln!(
        out,
        "# HELP ferry_job_owner 1 for each job and the node holding its lease (cluster mode)."
    );
    let _ = writeln!(out, "# TYPE ferry_job_owner gauge");
    let statements = mgr.store().statements();
    let now_ms = crate::store::now() * 1000;
    for l in leases
        .iter()
        .filter(|l| !l.owner.is_empty() && l.until_ms >= now_ms)
    {
        if let Some(job) = jobs.iter().find(|j| j.job_id == l.job_id) {
            let _ = writeln!(
                out,
                "ferry_job_owner{{{},node=\"{}\"}} 1",
                labels(job),
                escape(&l.owner)
            );
        }
    }
    if let Some(n) = statements {
        let _ = writeln!(
            out,
            "# HELP ferry_store_statements_total Statements this node sent to the shared job store."
        );
        let _ = writeln!(out, "# TYPE ferry_store_statements_total counter");
        let _ = writeln!(out, "ferry_store_statements_total {n}");
    }
    out
}
