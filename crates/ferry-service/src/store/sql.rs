//! What the two store backends share: statement parameters ([`P`], bound by rusqlite and by
//! mysql_async alike), the statements whose SQL the two dialects agree on (a job's conditional
//! update, the inserts, a compare task's update), and the decoding of a stored row into a typed
//! job or compare task through [`Cols`] (implemented for a row of either client).

use serde::Serialize;
use serde_json::Value;

use ferry_core::ErrorKind;

use super::{CompareChange, CompareRow, JobRow, Patch};
use crate::error::ServiceError;
use crate::job::{JobRequest, PauseMode};
use crate::secrets::Cipher;
use crate::status::JobStatus;

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum P {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl P {
    pub fn opt_int(v: Option<i64>) -> P {
        v.map_or(P::Null, P::Int)
    }
    pub fn opt_text(v: Option<String>) -> P {
        v.map_or(P::Null, P::Text)
    }
}

impl rusqlite::ToSql for P {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V};
        Ok(ToSqlOutput::Owned(match self {
            P::Null => V::Null,
            P::Int(i) => V::Integer(*i),
            P::Real(f) => V::Real(*f),
            P::Text(t) => V::Text(t.clone()),
        }))
    }
}

impl From<P> for mysql_async::Value {
    fn from(p: P) -> mysql_async::Value {
        use mysql_async::Value as V;
        match p {
            P::Null => V::NULL,
            P::Int(i) => V::Int(i),
            P::Real(f) => V::Double(f),
            P::Text(t) => V::Bytes(t.into_bytes()),
        }
    }
}

/// `?, ?, …` for `n` parameters (at least one: `IN ()` is not SQL).
pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// An error kind as stored: `transient`, `definite`, or `""` (none).
pub(crate) fn kind_from_stored(s: &str) -> Result<Option<ErrorKind>, String> {
    match s {
        "" => Ok(None),
        "transient" => Ok(Some(ErrorKind::Transient)),
        "definite" => Ok(Some(ErrorKind::Definite)),
        other => Err(format!("unknown error kind {other:?}")),
    }
}

pub(crate) fn kind_to_stored(k: Option<ErrorKind>) -> &'static str {
    match k {
        None => "",
        Some(ErrorKind::Transient) => "transient",
        Some(ErrorKind::Definite) => "definite",
    }
}

/// The columns of a job, in the order of [`insert_job`]'s values.
const JOB_COLUMNS: &str =
    "job_id, job_name, request, status, create_time, update_time, start_time, end_time, \
     error_message, check_state, detail, paused, restart_next, limits, retries, retry_since, error_kind";

/// `INSERT INTO jobs …` of a new job whose request is `sealed` (encrypted).
pub(crate) fn insert_job(job: &JobRow, sealed: String) -> (String, Vec<P>) {
    let vals = vec![
        P::Text(job.job_id.clone()),
        P::Text(job.job_name.clone()),
        P::Text(sealed),
        P::Int(job.status.code()),
        P::Int(job.create_time),
        P::Int(job.update_time),
        P::opt_int(job.start_time),
        P::opt_int(job.end_time),
        P::Text(job.error_message.clone()),
        P::Text(to_json(&job.check)),
        P::Text(to_json(&job.detail)),
        P::Text(PauseMode::to_stored(job.paused).into()),
        P::Int(job.restart_next as i64),
        P::Text(to_json(&job.limits)),
        P::Int(i64::from(job.retries)),
        P::opt_int(job.retry_since),
        P::Text(kind_to_stored(job.error_kind).into()),
    ];
    let sql = format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({})", marks(vals.len()));
    (sql, vals)
}

/// The conditional update of a job: `UPDATE jobs SET … WHERE job_id = ? [AND status IN (…)]
/// [AND owner = ? AND epoch = ?]`, with `update_time` set to `now` and the request already
/// `sealed` when the patch replaces it; `lease` (node, epoch): only while that node holds the
/// job's lease at that epoch.
pub(crate) fn update_job(
    job_id: &str,
    expect: Option<&[JobStatus]>,
    patch: Patch,
    sealed: Option<String>,
    now: i64,
    lease: Option<(&str, u64)>,
) -> (String, Vec<P>) {
    let mut sets: Vec<&str> = vec!["update_time = ?"];
    let mut vals: Vec<P> = vec![P::Int(now)];
    let mut set = |col: &'static str, v: P| {
        sets.push(col);
        vals.push(v);
    };
    if let Some(s) = patch.status {
        set("status = ?", P::Int(s.code()));
    }
    if let Some(n) = patch.job_name {
        set("job_name = ?", P::Text(n));
    }
    if let Some(r) = sealed {
        set("request = ?", P::Text(r));
    }
    if let Some(t) = patch.start_time {
        set("start_time = ?", P::opt_int(t));
    }
    if let Some(t) = patch.end_time {
        set("end_time = ?", P::opt_int(t));
    }
    if let Some(m) = patch.error_message {
        set("error_message = ?", P::Text(m));
    }
    if let Some(ch) = &patch.check {
        set("check_state = ?", P::Text(to_json(ch)));
    }
    if let Some(d) = &patch.detail {
        set("detail = ?", P::Text(to_json(d)));
    }
    if let Some(p) = patch.paused {
        set("paused = ?", P::Text(PauseMode::to_stored(p).into()));
    }
    if let Some(r) = patch.retries {
        set("retries = ?", P::Int(i64::from(r)));
    }
    if let Some(t) = patch.retry_since {
        set("retry_since = ?", P::opt_int(t));
    }
    if let Some(k) = patch.error_kind {
        set("error_kind = ?", P::Text(kind_to_stored(k).into()));
    }
    if let Some(r) = patch.restart_next {
        set("restart_next = ?", P::Int(r as i64));
    }
    if let Some(l) = &patch.limits {
        set("limits = ?", P::Text(to_json(l)));
    }
    let mut sql = format!("UPDATE jobs SET {} WHERE job_id = ?", sets.join(", "));
    vals.push(P::Text(job_id.to_string()));
    if let Some(e) = expect {
        sql.push_str(&format!(" AND status IN ({})", marks(e.len())));
        vals.extend(e.iter().map(|s| P::Int(s.code())));
    }
    if let Some((node, epoch)) = lease {
        sql.push_str(" AND owner = ? AND epoch = ?");
        vals.push(P::Text(node.to_string()));
        vals.push(P::Int(epoch as i64));
    }
    (sql, vals)
}

/// `DELETE FROM jobs WHERE job_id = ? AND status IN (…)`.
pub(crate) fn delete_job(job_id: &str, expect: &[JobStatus]) -> (String, Vec<P>) {
    let mut vals = vec![P::Text(job_id.to_string())];
    vals.extend(expect.iter().map(|s| P::Int(s.code())));
    (
        format!(
            "DELETE FROM jobs WHERE job_id = ? AND status IN ({})",
            marks(expect.len())
        ),
        vals,
    )
}

/// `INSERT INTO compare_tasks …`.
pub(crate) fn insert_compare(row: CompareRow) -> (String, Vec<P>) {
    let vals = vec![
        P::Text(row.compare_task_id),
        P::Text(row.job_id),
        P::Text(row.task_name),
        P::Text(row.status),
        P::Text(to_json(&row.config)),
        P::opt_text(row.report.as_ref().map(to_json)),
        P::Text(row.message),
        P::Int(row.created_at),
        P::opt_int(row.started_at),
        P::opt_int(row.finished_at),
    ];
    (
        format!(
            "INSERT INTO compare_tasks (compare_task_id, job_id, task_name, status, config, report, message, \
             created_at, started_at, finished_at) VALUES ({})",
            marks(vals.len())
        ),
        vals,
    )
}

/// The conditional update of a compare task.
pub(crate) fn update_compare(id: &str, expect: &[&str], change: CompareChange) -> (String, Vec<P>) {
    let CompareChange {
        status,
        report,
        message,
        started_at,
        finished_at,
    } = change;
    let mut vals = vec![
        P::Text(status),
        P::opt_text(report.map(|r| to_json(&r))),
        P::opt_text(message),
        P::opt_int(started_at),
        P::opt_int(finished_at),
        P::Text(id.to_string()),
    ];
    vals.extend(expect.iter().map(|s| P::Text(s.to_string())));
    (
        format!(
            "UPDATE compare_tasks SET status = ?, report = COALESCE(?, report), \
             message = COALESCE(?, message), started_at = COALESCE(?, started_at), \
             finished_at = COALESCE(?, finished_at) WHERE compare_task_id = ? AND status IN ({})",
            marks(expect.len())
        ),
        vals,
    )
}

/// A stored row of either backend, read by column name.
pub(crate) trait Cols {
    /// An integer column (`None`: NULL).
    fn int(&self, col: &str) -> Result<Option<i64>, String>;
    /// A text column (`None`: NULL).
    fn text(&self, col: &str) -> Result<Option<String>, String>;
}

impl Cols for rusqlite::Row<'_> {
    fn int(&self, col: &str) -> Result<Option<i64>, String> {
        self.get(col).map_err(|e| e.to_string())
    }
    fn text(&self, col: &str) -> Result<Option<String>, String> {
        self.get(col).map_err(|e| e.to_string())
    }
}

impl Cols for mysql_async::Row {
    fn int(&self, col: &str) -> Result<Option<i64>, String> {
        match self.get_opt::<Option<i64>, _>(col) {
            Some(v) => v.map_err(|e| e.to_string()),
            None => Err(format!("no column {col}")),
        }
    }
    fn text(&self, col: &str) -> Result<Option<String>, String> {
        match self.get_opt::<Option<String>, _>(col) {
            Some(v) => v.map_err(|e| e.to_string()),
            None => Err(format!("no column {col}")),
        }
    }
}

fn json_text<T: serde::de::DeserializeOwned + Default>(text: &str) -> Result<T, serde_json::Error> {
    if text.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text)
}

/// Reads a job row into the typed job: a column that does not parse is an error naming the job
/// and the column.
pub(crate) fn job_from_row(row: &dyn Cols, cipher: &Cipher) -> Result<JobRow, ServiceError> {
    let job_id = row
        .text("job_id")
        .map_err(|e| ServiceError::Corrupt(format!("a job: job_id: {e}")))?
        .unwrap_or_default();
    let bad =
        |col: &str, e: &dyn std::fmt::Display| ServiceError::Corrupt(format!("job {job_id}: {col}: {e}"));
    let text = |col: &str| -> Result<String, ServiceError> {
        row.text(col)
            .map_err(|e| bad(col, &e))?
            .ok_or_else(|| bad(col, &"NULL"))
    };
    let int = |col: &str| -> Result<i64, ServiceError> {
        row.int(col)
            .map_err(|e| bad(col, &e))?
            .ok_or_else(|| bad(col, &"NULL"))
    };
    let opt_int = |col: &str| row.int(col).map_err(|e| bad(col, &e));
    let stored = text("request")?;
    let request = match cipher.decrypt(&stored, &job_id) {
        Ok(Some(plain)) => plain,
        Ok(None) => stored,
        Err(e) => return Err(bad("request", &e)),
    };
    let request: Value = serde_json::from_str(&request).map_err(|e| bad("request", &e))?;
    let request = JobRequest::parse(request).map_err(|e| bad("request", &e))?;
    let status = int("status")?;
    Ok(JobRow {
        seq: int("seq")?,
        job_name: text("job_name")?,
        request,
        status: JobStatus::from_code(status).ok_or_else(|| bad("status", &status))?,
        create_time: int("create_time")?,
        update_time: int("update_time")?,
        start_time: opt_int("start_time")?,
        end_time: opt_int("end_time")?,
        error_message: text("error_message")?,
        check: json_text(&text("check_state")?).map_err(|e| bad("check_state", &e))?,
        detail: json_text(&text("detail")?).map_err(|e| bad("detail", &e))?,
        paused: PauseMode::from_stored(&text("paused")?).map_err(|e| bad("paused", &e))?,
        restart_next: int("restart_next")? != 0,
        limits: json_text(&text("limits")?).map_err(|e| bad("limits", &e))?,
        retries: int("retries")?.clamp(0, i64::from(u32::MAX)) as u32,
        retry_since: opt_int("retry_since")?,
        error_kind: kind_from_stored(&text("error_kind")?).map_err(|e| bad("error_kind", &e))?,
        job_id,
    })
}

/// Reads a compare task row.
pub(crate) fn compare_from_row(row: &dyn Cols) -> Result<CompareRow, ServiceError> {
    let bad =
        |col: &str, e: &dyn std::fmt::Display| ServiceError::Corrupt(format!("a compare task: {col}: {e}"));
    let text = |col: &str| -> Result<String, ServiceError> {
        row.text(col)
            .map_err(|e| bad(col, &e))?
            .ok_or_else(|| bad(col, &"NULL"))
    };
    let opt_int = |col: &str| row.int(col).map_err(|e| bad(col, &e));
    let report = row.text("report").map_err(|e| bad("report", &e))?;
    Ok(CompareRow {
        compare_task_id: text("compare_task_id")?,
        job_id: text("job_id")?,
        task_name: text("task_name")?,
        status: text("status")?,
        config: serde_json::from_str(&text("config")?).map_err(|e| bad("config", &e))?,
        report: report
            .map(|r| serde_json::from_str(&r).map_err(|e| bad("report", &e)))
            .transpose()?,
        message: text("message")?,
        created_at: opt_int("created_at")?.ok_or_else(|| bad("created_at", &"NULL"))?,
        started_at: opt_int("started_at")?,
        finished_at: opt_int("finished_at")?,
    })
}

/// The lag series read: the buckets of a tier from a time on (both dialects).
pub(crate) const SERIES_READ: &str =
    "SELECT t, n, seconds_behind, bytes_behind, events_per_second, rows_per_second \
     FROM lag_series WHERE job_id = ? AND step = ? AND t >= ? ORDER BY t";

/// Prunes a tier of a job's lag series (both dialects).
pub(crate) const SERIES_PRUNE: &str = "DELETE FROM lag_series WHERE job_id = ? AND step = ? AND t < ?";
