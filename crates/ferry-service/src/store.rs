//! The job store: `ferry.db` in the data directory (SQLite, WAL, `synchronous=FULL`, file mode
//! 0600), its schema version and migrations, and the rows of jobs and compare tasks.
//!
//! A job's request holds the databases' passwords: it is stored encrypted ([`crate::secrets`];
//! the key in `FERRY_STORE_KEY` or `DATA_DIR/store.key`). `secure_delete` is on, and the WAL is
//! checkpointed and truncated after a request is replaced or a job deleted, so that neither the
//! old ciphertext nor (for stores written by earlier versions) a plain-text password stays in
//! `ferry.db` or `ferry.db-wal`. Plain-text requests of earlier versions are encrypted at open,
//! and the file is vacuumed once.
//!
//! Every call runs on the blocking pool (`spawn_blocking`) around one connection. A status change
//! is one `UPDATE … WHERE job_id = ? AND status IN (…)`: it either wins or changes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use ferry_check::CheckStatus;
use ferry_core::ErrorKind;

use crate::detail::Detail;
use crate::error::ServiceError;
use crate::job::{CheckPhase, JobRequest, PauseMode};
use crate::secrets::{Cipher, ENV_STORE_KEY};
use crate::status::JobStatus;

/// The schema, one entry per version; a database at version N runs the entries after N.
const MIGRATIONS: &[&str] = &[
    // 1: jobs and compare tasks.
    "CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL UNIQUE,
        job_name TEXT NOT NULL,
        request TEXT NOT NULL,
        status INTEGER NOT NULL,
        create_time INTEGER NOT NULL,
        update_time INTEGER NOT NULL,
        start_time INTEGER,
        end_time INTEGER,
        error_message TEXT NOT NULL DEFAULT '',
        check_state TEXT NOT NULL DEFAULT '{}',
        detail TEXT NOT NULL DEFAULT '{}',
        paused TEXT NOT NULL DEFAULT '',
        restart_next INTEGER NOT NULL DEFAULT 0,
        limits TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE compare_tasks (
        compare_task_id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        task_name TEXT NOT NULL,
        status TEXT NOT NULL,
        config TEXT NOT NULL,
        report TEXT,
        message TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
    );
    CREATE INDEX compare_tasks_job ON compare_tasks (job_id);",
    // 2: facts about the store itself (the key check, whether old plain text was scrubbed).
    "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 3: the lag series of jobs (crate::series): per bucket width, sums and a count.
    "CREATE TABLE lag_series (
        job_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        t INTEGER NOT NULL,
        n INTEGER NOT NULL,
        seconds_behind REAL NOT NULL,
        bytes_behind REAL NOT NULL,
        events_per_second REAL NOT NULL,
        rows_per_second REAL NOT NULL,
        PRIMARY KEY (job_id, step, t)
    ) WITHOUT ROWID;",
    // 4: the service's automatic retries of failed runs (crate::retry): how many since the last
    // StartMigrateJob, since when the current outage lasts, and the kind of the last error.
    "ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN retry_since INTEGER;
    ALTER TABLE jobs ADD COLUMN error_kind TEXT NOT NULL DEFAULT '';",
];

/// `store_meta` key: a value encrypted with the store key, to recognise a wrong key at open.
const META_KEY_CHECK: &str = "key_check";
/// `store_meta` key: set once plain-text requests were encrypted and the file vacuumed.
const META_SCRUBBED: &str = "secrets_v1";

/// The state of a job's pre-check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    #[serde(default)]
    pub state: CheckPhase,
    #[serde(default)]
    pub progress: u8,
    #[serde(default)]
    pub items: Vec<StoredCheckItem>,
    /// Ids of WARNING items acknowledged with SkipCheckItem.
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub finished_at: Option<i64>,
}

impl CheckState {
    /// True when the check finished and no item is FAILED.
    pub fn passed(&self) -> bool {
        self.state == CheckPhase::Finished && !self.items.iter().any(|i| i.status == CheckStatus::Failed)
    }
    /// The FAILED items as one line.
    pub fn failures(&self) -> String {
        self.items
            .iter()
            .filter(|i| i.status == CheckStatus::Failed)
            .map(|i| format!("{}: {}", i.id, i.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One pre-check item as stored (from `ferry_check::CheckItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckItem {
    pub id: String,
    pub group: String,
    pub name: String,
    /// Stored as `PASSED`, `WARNING` or `FAILED`.
    pub status: CheckStatus,
    pub message: String,
}

impl StoredCheckItem {
    /// The status as stored and shown: `PASSED`, `WARNING` or `FAILED`.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            CheckStatus::Passed => "PASSED",
            CheckStatus::Warning => "WARNING",
            CheckStatus::Failed => "FAILED",
        }
    }
}

/// Rate limits set with ModifyMigrateRateLimit (0: not set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default)]
    pub dump_thread: i64,
    #[serde(default)]
    pub dump_rps: i64,
    #[serde(default)]
    pub load_thread: i64,
    #[serde(default)]
    pub load_rps: i64,
    #[serde(default)]
    pub sinker_thread: i64,
    #[serde(default)]
    pub user_set: bool,
}

/// One job.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub seq: i64,
    pub job_id: String,
    pub job_name: String,
    /// The CreateMigrateJob request (passwords included; never returned as is).
    pub request: JobRequest,
    pub status: JobStatus,
    pub create_time: i64,
    pub update_time: i64,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub error_message: String,
    pub check: CheckState,
    pub detail: Detail,
    /// How the job is paused, when it is.
    pub paused: Option<PauseMode>,
    /// The next start forgets the job's checkpoints on the target (set by ModifyMigrateJob).
    pub restart_next: bool,
    pub limits: Limits,
    /// Runs the service started again after a transient failure, since the last
    /// StartMigrateJob ([`crate::retry`]).
    pub retries: u32,
    /// UNIX seconds of the first failure of the outage being retried (`None`: none).
    pub retry_since: Option<i64>,
    /// The kind of the error in `error_message` (`None`: no error, or stored by an earlier
    /// version).
    pub error_kind: Option<ErrorKind>,
}

/// Changes to a job; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub status: Option<JobStatus>,
    pub job_name: Option<String>,
    pub request: Option<JobRequest>,
    pub start_time: Option<Option<i64>>,
    pub end_time: Option<Option<i64>>,
    pub error_message: Option<String>,
    pub check: Option<CheckState>,
    pub detail: Option<Detail>,
    pub paused: Option<Option<PauseMode>>,
    pub restart_next: Option<bool>,
    pub limits: Option<Limits>,
    pub retries: Option<u32>,
    pub retry_since: Option<Option<i64>>,
    pub error_kind: Option<Option<ErrorKind>>,
}

impl Patch {
    pub fn status(s: JobStatus) -> Patch {
        Patch {
            status: Some(s),
            ..Patch::default()
        }
    }
}

/// The outcome of a conditional update.
#[derive(Debug, Clone)]
pub enum Update {
    /// Applied; the job as it is now.
    Done(Box<JobRow>),
    /// The job is in another status (nothing changed).
    WrongStatus(JobStatus),
    /// No such job.
    Missing,
}

/// A change to a compare task: its new status, and the report, message and times to set (`None`
/// keeps the stored value).
#[derive(Debug, Clone, Default)]
pub struct CompareChange {
    pub status: String,
    pub report: Option<Value>,
    pub message: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// One compare task (2021-12-06 CreateCompareTask).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRow {
    pub compare_task_id: String,
    pub job_id: String,
    pub task_name: String,
    /// created, running, success, failed, canceled.
    pub status: String,
    /// `{"ObjectMode":…, "Objects":…, "Options":…}` as requested (normalised).
    pub config: Value,
    /// The `ferry_verify::VerifyReport` as JSON, once finished.
    pub report: Option<Value>,
    pub message: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// The SQLite job store.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    cipher: Arc<Cipher>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("{what}: {e}").into())
}

fn json_text<T: serde::de::DeserializeOwned + Default>(text: &str) -> Result<T, serde_json::Error> {
    if text.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text)
}

/// Reads a job row into the typed job: a column that does not parse is an error naming the job
/// and the column.
fn job_from_row(row: &Row<'_>, cipher: &Cipher) -> rusqlite::Result<JobRow> {
    let status: i64 = row.get("status")?;
    let job_id: String = row.get("job_id")?;
    let bad = |col: &str, e: &dyn std::fmt::Display| corrupt(&format!("job {job_id}: {col}"), e);
    let stored: String = row.get("request")?;
    let request = match cipher.decrypt(&stored, &job_id) {
        Ok(Some(plain)) => plain,
        Ok(None) => stored,
        Err(e) => return Err(bad("request", &e)),
    };
    let request: Value = serde_json::from_str(&request).map_err(|e| bad("request", &e))?;
    let request = JobRequest::parse(request).map_err(|e| bad("request", &e))?;
    let json = |col: &str| -> rusqlite::Result<String> { row.get(col) };
    let paused: String = row.get("paused")?;
    let error_kind: String = row.get("error_kind")?;
    Ok(JobRow {
        seq: row.get("seq")?,
        job_name: row.get("job_name")?,
        request,
        status: JobStatus::from_code(status).ok_or_else(|| bad("status", &status))?,
        create_time: row.get("create_time")?,
        update_time: row.get("update_time")?,
        start_time: row.get("start_time")?,
        end_time: row.get("end_time")?,
        error_message: row.get("error_message")?,
        check: json_text(&json("check_state")?).map_err(|e| bad("check_state", &e))?,
        detail: json_text(&json("detail")?).map_err(|e| bad("detail", &e))?,
        paused: PauseMode::from_stored(&paused).map_err(|e| bad("paused", &e))?,
        restart_next: row.get::<_, i64>("restart_next")? != 0,
        limits: json_text(&json("limits")?).map_err(|e| bad("limits", &e))?,
        retries: row.get::<_, i64>("retries")?.clamp(0, i64::from(u32::MAX)) as u32,
        retry_since: row.get("retry_since")?,
        error_kind: kind_from_stored(&error_kind).map_err(|e| bad("error_kind", &e))?,
        job_id,
    })
}

/// An error kind as stored: `transient`, `definite`, or `""` (none).
fn kind_from_stored(s: &str) -> Result<Option<ErrorKind>, String> {
    match s {
        "" => Ok(None),
        "transient" => Ok(Some(ErrorKind::Transient)),
        "definite" => Ok(Some(ErrorKind::Definite)),
        other => Err(format!("unknown error kind {other:?}")),
    }
}

fn kind_to_stored(k: Option<ErrorKind>) -> &'static str {
    match k {
        None => "",
        Some(ErrorKind::Transient) => "transient",
        Some(ErrorKind::Definite) => "definite",
    }
}

fn compare_from_row(row: &Row<'_>) -> rusqlite::Result<CompareRow> {
    let config: String = row.get("config")?;
    let report: Option<String> = row.get("report")?;
    Ok(CompareRow {
        compare_task_id: row.get("compare_task_id")?,
        job_id: row.get("job_id")?,
        task_name: row.get("task_name")?,
        status: row.get("status")?,
        config: serde_json::from_str(&config).map_err(|e| corrupt("config", e))?,
        report: report
            .map(|r| serde_json::from_str(&r).map_err(|e| corrupt("report", e)))
            .transpose()?,
        message: row.get("message")?,
        created_at: row.get("created_at")?,
        started_at: row.get("started_at")?,
        finished_at: row.get("finished_at")?,
    })
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// Now, in UNIX seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating) `DIR/ferry.db` and brings its schema up to date; the secrets key is
    /// `FERRY_STORE_KEY` when set, else `DIR/store.key` (generated when absent).
    pub async fn open(data_dir: &Path) -> Result<Store, ServiceError> {
        Store::open_with_key(data_dir, std::env::var(ENV_STORE_KEY).ok()).await
    }

    /// As [`Store::open`], with the value of `FERRY_STORE_KEY` given.
    pub async fn open_with_key(data_dir: &Path, env_key: Option<String>) -> Result<Store, ServiceError> {
        let dir = data_dir.to_path_buf();
        tokio::task::spawn_blocking(move || Store::open_blocking(&dir, env_key.as_deref()))
            .await
            .map_err(|e| ServiceError::Thread(e.to_string()))?
    }

    fn open_blocking(dir: &Path, env_key: Option<&str>) -> Result<Store, ServiceError> {
        let data_dir_err = |message: String| ServiceError::DataDir {
            path: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| data_dir_err(format!("cannot create it: {e}")))?;
        let path = dir.join("ferry.db");
        create_private_file(&path)
            .map_err(|e| data_dir_err(format!("cannot create ferry.db with mode 0600: {e}")))?;
        let mut conn = Connection::open(&path).map_err(ServiceError::store("opening ferry.db"))?;
        // One server per data directory: the connection takes an exclusive lock on ferry.db at
        // once and keeps it (the OS releases it when the process ends, however it ends).
        let in_use = |e: ServiceError| match &e {
            ServiceError::Store { source, .. }
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
                ) =>
            {
                data_dir_err(
                    "ferry.db is in use by another ferry serve: run one server per data directory".into(),
                )
            }
            _ => e,
        };
        conn.busy_timeout(std::time::Duration::from_secs(1))
            .map_err(ServiceError::store("setting the busy timeout"))?;
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")
            .map_err(ServiceError::store("setting the exclusive locking mode"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(ServiceError::store("switching to WAL"))
            .map_err(in_use)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(data_dir_err(format!(
                "ferry.db cannot use WAL (journal_mode is {mode}): put the data directory on a local file system"
            )));
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
             BEGIN EXCLUSIVE; COMMIT;",
        )
        .map_err(ServiceError::store("locking ferry.db"))
        .map_err(in_use)?;
        migrate(&mut conn).map_err(in_use)?;
        let cipher = Cipher::load(dir, env_key)?;
        secure_existing(&mut conn, &cipher)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(ServiceError::store("setting the busy timeout"))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path,
            cipher: Arc::new(cipher),
        })
    }

    /// `DIR/ferry.db`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn with<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ServiceError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| ServiceError::Thread("the store lock was poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| ServiceError::Thread(e.to_string()))?
    }

    /// Adds a job. `false` when the JobId exists already.
    pub async fn insert_job(&self, job: JobRow) -> Result<bool, ServiceError> {
        let request = self.cipher.encrypt(&to_json(job.request.raw()), &job.job_id)?;
        self.with(move |c| {
            let n = c
                .execute(
                    "INSERT OR IGNORE INTO jobs (job_id, job_name, request, status, create_time, update_time, \
                     start_time, end_time, error_message, check_state, detail, paused, restart_next, limits, \
                     retries, retry_since, error_kind) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                    params![
                        job.job_id,
                        job.job_name,
                        request,
                        job.status.code(),
                        job.create_time,
                        job.update_time,
                        job.start_time,
                        job.end_time,
                        job.error_message,
                        to_json(&job.check),
                        to_json(&job.detail),
                        PauseMode::to_stored(job.paused),
                        job.restart_next as i64,
                        to_json(&job.limits),
                        i64::from(job.retries),
                        job.retry_since,
                        kind_to_stored(job.error_kind),
                    ],
                )
                .map_err(ServiceError::store("adding a job"))?;
            Ok(n == 1)
        })
        .await
    }

    /// One job.
    pub async fn job(&self, job_id: &str) -> Result<Option<JobRow>, ServiceError> {
        let id = job_id.to_string();
        let cipher = self.cipher.clone();
        self.with(move |c| get_job(c, &id, &cipher)).await
    }

    /// Every job, oldest first.
    pub async fn jobs(&self) -> Result<Vec<JobRow>, ServiceError> {
        let cipher = self.cipher.clone();
        self.with(move |c| {
            let mut st = c
                .prepare("SELECT * FROM jobs ORDER BY seq")
                .map_err(ServiceError::store("listing jobs"))?;
            let rows = st
                .query_map([], |r| job_from_row(r, &cipher))
                .map_err(ServiceError::store("listing jobs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(ServiceError::store("reading a job"))?;
            Ok(rows)
        })
        .await
    }

    /// Applies `patch` when the job's status is one of `expect` (any status when `None`), in one
    /// statement.
    pub async fn update(
        &self,
        job_id: &str,
        expect: Option<&[JobStatus]>,
        patch: Patch,
    ) -> Result<Update, ServiceError> {
        let id = job_id.to_string();
        let expect: Option<Vec<i64>> = expect.map(|e| e.iter().map(|s| s.code()).collect());
        let cipher = self.cipher.clone();
        let request = match &patch.request {
            Some(r) => Some(cipher.encrypt(&to_json(r.raw()), job_id)?),
            None => None,
        };
        self.with(move |c| {
            let mut sets: Vec<&str> = vec!["update_time = ?"];
            let mut vals: Vec<SqlValue> = vec![SqlValue::Integer(now())];
            let opt_int = |v: Option<i64>| v.map_or(SqlValue::Null, SqlValue::Integer);
            if let Some(s) = patch.status {
                sets.push("status = ?");
                vals.push(SqlValue::Integer(s.code()));
            }
            if let Some(n) = patch.job_name {
                sets.push("job_name = ?");
                vals.push(SqlValue::Text(n));
            }
            let replaces_request = request.is_some();
            if let Some(r) = request {
                sets.push("request = ?");
                vals.push(SqlValue::Text(r));
            }
            if let Some(t) = patch.start_time {
                sets.push("start_time = ?");
                vals.push(opt_int(t));
            }
            if let Some(t) = patch.end_time {
                sets.push("end_time = ?");
                vals.push(opt_int(t));
            }
            if let Some(m) = patch.error_message {
                sets.push("error_message = ?");
                vals.push(SqlValue::Text(m));
            }
            if let Some(ch) = &patch.check {
                sets.push("check_state = ?");
                vals.push(SqlValue::Text(to_json(ch)));
            }
            if let Some(d) = &patch.detail {
                sets.push("detail = ?");
                vals.push(SqlValue::Text(to_json(d)));
            }
            if let Some(p) = patch.paused {
                sets.push("paused = ?");
                vals.push(SqlValue::Text(PauseMode::to_stored(p).into()));
            }
            if let Some(r) = patch.retries {
                sets.push("retries = ?");
                vals.push(SqlValue::Integer(i64::from(r)));
            }
            if let Some(t) = patch.retry_since {
                sets.push("retry_since = ?");
                vals.push(opt_int(t));
            }
            if let Some(k) = patch.error_kind {
                sets.push("error_kind = ?");
                vals.push(SqlValue::Text(kind_to_stored(k).into()));
            }
            if let Some(r) = patch.restart_next {
                sets.push("restart_next = ?");
                vals.push(SqlValue::Integer(r as i64));
            }
            if let Some(l) = &patch.limits {
                sets.push("limits = ?");
                vals.push(SqlValue::Text(to_json(l)));
            }
            let mut sql = format!("UPDATE jobs SET {} WHERE job_id = ?", sets.join(", "));
            vals.push(SqlValue::Text(id.clone()));
            if let Some(e) = &expect {
                let marks = vec!["?"; e.len()].join(", ");
                sql.push_str(&format!(" AND status IN ({marks})"));
                vals.extend(e.iter().map(|s| SqlValue::Integer(*s)));
            }
            let tx = c.transaction().map_err(ServiceError::store("updating a job"))?;
            let n = tx
                .execute(&sql, params_from_iter(vals))
                .map_err(ServiceError::store("updating a job"))?;
            let now = get_job(&tx, &id, &cipher)?;
            tx.commit().map_err(ServiceError::store("updating a job"))?;
            if replaces_request && n == 1 {
                // The replaced request (its passwords) leaves the WAL too.
                truncate_wal(c)?;
            }
            Ok(match now {
                None => Update::Missing,
                Some(job) if n == 1 => Update::Done(Box::new(job)),
                Some(job) => Update::WrongStatus(job.status),
            })
        })
        .await
    }

    /// Deletes a job and its compare tasks when its status is one of `expect`.
    pub async fn delete_job(&self, job_id: &str, expect: &[JobStatus]) -> Result<Update, ServiceError> {
        let id = job_id.to_string();
        let expect: Vec<i64> = expect.iter().map(|s| s.code()).collect();
        let cipher = self.cipher.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(ServiceError::store("deleting a job"))?;
            let Some(job) = get_job(&tx, &id, &cipher)? else {
                return Ok(Update::Missing);
            };
            if !expect.contains(&job.status.code()) {
                return Ok(Update::WrongStatus(job.status));
            }
            let marks = vec!["?"; expect.len()].join(", ");
            let mut vals: Vec<SqlValue> = vec![SqlValue::Text(id.clone())];
            vals.extend(expect.iter().map(|s| SqlValue::Integer(*s)));
            let n = tx
                .execute(
                    &format!("DELETE FROM jobs WHERE job_id = ? AND status IN ({marks})"),
                    params_from_iter(vals),
                )
                .map_err(ServiceError::store("deleting a job"))?;
            tx.execute("DELETE FROM compare_tasks WHERE job_id = ?", [&id])
                .map_err(ServiceError::store("deleting a job's compare tasks"))?;
            tx.execute("DELETE FROM lag_series WHERE job_id = ?", [&id])
                .map_err(ServiceError::store("deleting a job's lag series"))?;
            tx.commit().map_err(ServiceError::store("deleting a job"))?;
            if n == 1 {
                // secure_delete zeroed the row in the database pages; its copies in the WAL go
                // with the checkpoint.
                truncate_wal(c)?;
            }
            Ok(if n == 1 {
                Update::Done(Box::new(job))
            } else {
                Update::WrongStatus(job.status)
            })
        })
        .await
    }

    /// Adds a compare task.
    pub async fn insert_compare(&self, row: CompareRow) -> Result<(), ServiceError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO compare_tasks (compare_task_id, job_id, task_name, status, config, report, message, \
                 created_at, started_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    row.compare_task_id,
                    row.job_id,
                    row.task_name,
                    row.status,
                    to_json(&row.config),
                    row.report.as_ref().map(to_json),
                    row.message,
                    row.created_at,
                    row.started_at,
                    row.finished_at
                ],
            )
            .map_err(ServiceError::store("adding a compare task"))?;
            Ok(())
        })
        .await
    }

    /// A job's compare tasks, oldest first.
    pub async fn compares(&self, job_id: &str) -> Result<Vec<CompareRow>, ServiceError> {
        let id = job_id.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare("SELECT * FROM compare_tasks WHERE job_id = ? ORDER BY created_at, rowid")
                .map_err(ServiceError::store("listing compare tasks"))?;
            let rows = st
                .query_map([&id], compare_from_row)
                .map_err(ServiceError::store("listing compare tasks"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(ServiceError::store("reading a compare task"))?;
            Ok(rows)
        })
        .await
    }

    /// Every compare task (for the restart of the service).
    pub async fn all_compares(&self) -> Result<Vec<CompareRow>, ServiceError> {
        self.with(|c| {
            let mut st = c
                .prepare("SELECT * FROM compare_tasks ORDER BY created_at, rowid")
                .map_err(ServiceError::store("listing compare tasks"))?;
            let rows = st
                .query_map([], compare_from_row)
                .map_err(ServiceError::store("listing compare tasks"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(ServiceError::store("reading a compare task"))?;
            Ok(rows)
        })
        .await
    }

    /// Applies `change` to a compare task when its status is one of `expect`. `false` when the
    /// task is missing or in another status.
    pub async fn update_compare(
        &self,
        id: &str,
        expect: &[&str],
        change: CompareChange,
    ) -> Result<bool, ServiceError> {
        let id = id.to_string();
        let expect: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
        let CompareChange {
            status,
            report,
            message,
            started_at,
            finished_at,
        } = change;
        self.with(move |c| {
            let marks = vec!["?"; expect.len()].join(", ");
            let mut vals: Vec<SqlValue> = vec![
                SqlValue::Text(status),
                report.map_or(SqlValue::Null, |r| SqlValue::Text(to_json(&r))),
                message.map_or(SqlValue::Null, SqlValue::Text),
                started_at.map_or(SqlValue::Null, SqlValue::Integer),
                finished_at.map_or(SqlValue::Null, SqlValue::Integer),
                SqlValue::Text(id),
            ];
            vals.extend(expect.into_iter().map(SqlValue::Text));
            let n = c
                .execute(
                    &format!(
                        "UPDATE compare_tasks SET status = ?, report = COALESCE(?, report), \
                         message = COALESCE(?, message), started_at = COALESCE(?, started_at), \
                         finished_at = COALESCE(?, finished_at) WHERE compare_task_id = ? AND status IN ({marks})"
                    ),
                    params_from_iter(vals),
                )
                .map_err(ServiceError::store("updating a compare task"))?;
            Ok(n == 1)
        })
        .await
    }
}

fn get_job(c: &Connection, id: &str, cipher: &Cipher) -> Result<Option<JobRow>, ServiceError> {
    c.query_row("SELECT * FROM jobs WHERE job_id = ?", [id], |r| {
        job_from_row(r, cipher)
    })
    .optional()
    .map_err(ServiceError::store("reading a job"))
}

/// Copies the WAL into ferry.db and truncates it to zero bytes.
fn truncate_wal(c: &Connection) -> Result<(), ServiceError> {
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(ServiceError::store("checkpointing the WAL"))
}

/// Checks the store key against the one the store was written with, encrypts requests stored
/// in plain text by earlier versions, and the first time scrubs the file of old plain text
/// (VACUUM, then an empty WAL).
fn secure_existing(conn: &mut Connection, cipher: &Cipher) -> Result<(), ServiceError> {
    let meta = |c: &Connection, key: &str| -> Result<Option<String>, ServiceError> {
        c.query_row("SELECT value FROM store_meta WHERE key = ?", [key], |r| r.get(0))
            .optional()
            .map_err(ServiceError::store("reading store_meta"))
    };
    match meta(conn, META_KEY_CHECK)? {
        Some(check) => {
            cipher.decrypt(&check, META_KEY_CHECK)?;
        }
        None => {
            let check = cipher.encrypt("ferry", META_KEY_CHECK)?;
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?)",
                params![META_KEY_CHECK, check],
            )
            .map_err(ServiceError::store("writing store_meta"))?;
        }
    }
    let tx = conn
        .transaction()
        .map_err(ServiceError::store("encrypting stored requests"))?;
    let plain: Vec<(String, String)> = {
        let mut st = tx
            .prepare("SELECT job_id, request FROM jobs WHERE substr(request, 1, ?) <> ?")
            .map_err(ServiceError::store("encrypting stored requests"))?;
        let prefix = crate::secrets::PREFIX;
        let rows = st
            .query_map(params![prefix.len() as i64, prefix], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(ServiceError::store("encrypting stored requests"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServiceError::store("encrypting stored requests"))?;
        rows
    };
    for (job_id, request) in &plain {
        let sealed = cipher.encrypt(request, job_id)?;
        tx.execute(
            "UPDATE jobs SET request = ? WHERE job_id = ?",
            params![sealed, job_id],
        )
        .map_err(ServiceError::store("encrypting stored requests"))?;
    }
    let scrubbed = meta(&tx, META_SCRUBBED)?.is_some();
    if !scrubbed {
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES (?, '1')",
            [META_SCRUBBED],
        )
        .map_err(ServiceError::store("writing store_meta"))?;
    }
    tx.commit()
        .map_err(ServiceError::store("encrypting stored requests"))?;
    if !plain.is_empty() || !scrubbed {
        if !plain.is_empty() {
            tracing::info!(
                jobs = plain.len(),
                "encrypted the stored requests of earlier versions"
            );
        }
        // Free pages and old WAL frames of earlier versions may hold plain-text passwords.
        conn.execute_batch("VACUUM")
            .map_err(ServiceError::store("vacuuming ferry.db"))?;
        truncate_wal(conn)?;
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), ServiceError> {
    let tx = conn
        .transaction()
        .map_err(ServiceError::store("migrating the schema"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(ServiceError::store("creating schema_version"))?;
    let current: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .map_err(ServiceError::store("reading schema_version"))?;
    let current = current.unwrap_or(0);
    if current > MIGRATIONS.len() as i64 {
        return Err(ServiceError::Corrupt(format!(
            "ferry.db has schema version {current}, newer than this ferry ({}): use a newer ferry",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(ServiceError::store(format!(
            "migrating to schema version {}",
            i + 1
        )))?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?)", [i as i64 + 1])
            .map_err(ServiceError::store("recording the schema version"))?;
    }
    tx.commit().map_err(ServiceError::store("migrating the schema"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, status: JobStatus) -> JobRow {
        JobRow {
            seq: 0,
            job_id: id.into(),
            job_name: "n".into(),
            request: JobRequest::parse(serde_json::json!({"JobName": "n"})).unwrap(),
            status,
            create_time: 1,
            update_time: 1,
            start_time: None,
            end_time: None,
            error_message: String::new(),
            check: CheckState::default(),
            detail: Detail::default(),
            paused: None,
            restart_next: false,
            limits: Limits::default(),
            retries: 0,
            retry_since: None,
            error_kind: None,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferry-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn lag_series_survive_a_reopen_and_go_with_the_job() {
        use crate::series::{Sample, SeriesStore as _};
        let dir = temp_dir("series");
        let s = Store::open(&dir).await.unwrap();
        s.insert_job(job("dts-series1", JobStatus::Running))
            .await
            .unwrap();
        let t0 = 1_000_000;
        for i in 0..10 {
            let v = f64::from(i);
            let sample = Sample {
                t: t0 + i64::from(i) * 5,
                seconds_behind: v,
                bytes_behind: v * 100.0,
                events_per_second: 2.0,
                rows_per_second: 3.0,
            };
            s.append("dts-series1", sample).await.unwrap();
        }
        let now = t0 + 60;
        let fine = s.read("dts-series1", t0, 5, now).await.unwrap();
        assert_eq!(fine.len(), 10);
        assert_eq!(fine[3].seconds_behind, 3.0);
        let coarse = s.read("dts-series1", t0, 25, now).await.unwrap();
        assert_eq!(coarse.len(), 2);
        assert!((coarse[0].seconds_behind - 2.0).abs() < 1e-9, "{coarse:?}");
        drop(s);
        let s = Store::open(&dir).await.unwrap();
        assert_eq!(s.read("dts-series1", t0, 5, now).await.unwrap(), fine);
        // A day later the fine tier is gone for that period: the 5-minute tier answers.
        let later = s.read("dts-series1", t0, 5, t0 + 86_400).await.unwrap();
        assert_eq!(later.len(), 1);
        assert!((later[0].seconds_behind - 4.5).abs() < 1e-9);
        s.delete_job("dts-series1", &[JobStatus::Running]).await.unwrap();
        assert!(s.read("dts-series1", t0, 5, now).await.unwrap().is_empty());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn conditional_updates_and_reopen() {
        let dir = temp_dir("cond");
        let s = Store::open(&dir).await.unwrap();
        assert!(s
            .insert_job(job("dts-aaaaaaaa", JobStatus::CheckPass))
            .await
            .unwrap());
        assert!(!s
            .insert_job(job("dts-aaaaaaaa", JobStatus::CheckPass))
            .await
            .unwrap());
        let r = s
            .update(
                "dts-aaaaaaaa",
                Some(&[JobStatus::CheckPass]),
                Patch::status(JobStatus::ReadyRun),
            )
            .await
            .unwrap();
        assert!(matches!(r, Update::Done(j) if j.status == JobStatus::ReadyRun));
        let r = s
            .update(
                "dts-aaaaaaaa",
                Some(&[JobStatus::CheckPass]),
                Patch::status(JobStatus::ReadyRun),
            )
            .await
            .unwrap();
        assert!(matches!(r, Update::WrongStatus(JobStatus::ReadyRun)));
        let r = s.update("dts-zzzzzzzz", None, Patch::default()).await.unwrap();
        assert!(matches!(r, Update::Missing));
        drop(s);
        let s = Store::open(&dir).await.unwrap();
        assert_eq!(s.jobs().await.unwrap().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = Store::open(&dir)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("in use by another ferry serve"), "{e}");
        let r = s
            .delete_job("dts-aaaaaaaa", &[JobStatus::CheckPass])
            .await
            .unwrap();
        assert!(matches!(r, Update::WrongStatus(JobStatus::ReadyRun)));
        let _ = std::fs::remove_dir_all(&dir);
    }
    #[tokio::test]
    async fn a_row_that_does_not_parse_is_an_error_naming_the_job() {
        let dir = temp_dir("corrupt");
        let s = Store::open(&dir).await.unwrap();
        s.insert_job(job("dts-broken00", JobStatus::Failed))
            .await
            .unwrap();
        for (col, value) in [
            ("paused", "'half'"),
            ("error_kind", "'maybe'"),
            (
                "detail",
                "'{\"steps\": [{\"id\": \"x\", \"name\": \"x\", \"status\": 9}]}'",
            ),
            ("check_state", "'{\"state\": \"sleeping\"}'"),
        ] {
            s.with(move |c| {
                c.execute_batch(&format!(
                    "UPDATE jobs SET paused = '', error_kind = '', detail = '{{}}', check_state = '{{}}'; \
                     UPDATE jobs SET {col} = {value}"
                ))
                .map_err(ServiceError::store("test"))
            })
            .await
            .unwrap();
            let e = s.job("dts-broken00").await.unwrap_err().to_string();
            assert!(e.contains("job dts-broken00: ") && e.contains(col), "{col}: {e}");
            let e = s.jobs().await.unwrap_err().to_string();
            assert!(e.contains("dts-broken00"), "{e}");
        }
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Whether `needle` is anywhere in ferry.db or its WAL.
    fn on_disk(dir: &Path, needle: &str) -> bool {
        ["ferry.db", "ferry.db-wal", "ferry.db-journal"].iter().any(|f| {
            std::fs::read(dir.join(f))
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
    }

    fn job_with_password(id: &str, pw: &str) -> JobRow {
        let mut j = job(id, JobStatus::CheckPass);
        j.request = JobRequest::parse(
            serde_json::json!({"JobName": "n", "SrcInfo": {"Password": pw}, "DstInfo": {"Password": pw}}),
        )
        .unwrap();
        j
    }

    #[tokio::test]
    async fn passwords_are_encrypted_and_scrubbed_when_replaced_or_deleted() {
        let dir = temp_dir("secrets");
        let s = Store::open_with_key(&dir, None).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("store.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(s
            .insert_job(job_with_password("dts-aaaaaaaa", "first-Pw-1111"))
            .await
            .unwrap());
        assert!(s
            .insert_job(job_with_password("dts-bbbbbbbb", "other-Pw-2222"))
            .await
            .unwrap());
        let read = s.job("dts-aaaaaaaa").await.unwrap().unwrap();
        assert_eq!(read.request.raw()["SrcInfo"]["Password"], "first-Pw-1111");
        assert!(!on_disk(&dir, "first-Pw-1111") && !on_disk(&dir, "other-Pw-2222"));
        // Replaced: the new request is read back, and neither password is on disk.
        let patch = Patch {
            request: Some(
                JobRequest::parse(serde_json::json!({"SrcInfo": {"Password": "second-Pw-3333"}})).unwrap(),
            ),
            ..Patch::default()
        };
        assert!(matches!(
            s.update("dts-aaaaaaaa", None, patch).await.unwrap(),
            Update::Done(j) if j.request.raw()["SrcInfo"]["Password"] == "second-Pw-3333"
        ));
        let deleted = s
            .delete_job("dts-bbbbbbbb", &[JobStatus::CheckPass])
            .await
            .unwrap();
        assert!(matches!(deleted, Update::Done(_)));
        let wal = std::fs::metadata(dir.join("ferry.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert_eq!(wal, 0, "the WAL is truncated after a delete");
        for pw in ["first-Pw-1111", "second-Pw-3333", "other-Pw-2222"] {
            assert!(!on_disk(&dir, pw), "{pw} is in the store's files");
        }
        drop(s);
        // The key is kept; another key is refused at open, naming FERRY_STORE_KEY.
        let s = Store::open_with_key(&dir, None).await.unwrap();
        assert_eq!(s.jobs().await.unwrap().len(), 1);
        drop(s);
        let e = Store::open_with_key(&dir, Some("ab".repeat(32)))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("FERRY_STORE_KEY"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn plain_text_rows_of_earlier_versions_are_encrypted_at_open() {
        let dir = temp_dir("migrate");
        let key = "cd".repeat(32);
        // A store of the previous version: schema 1, plain-text requests, a deleted job whose
        // password is still in free space, no store_meta.
        std::fs::create_dir_all(&dir).unwrap();
        {
            let mut c = Connection::open(dir.join("ferry.db")).unwrap();
            c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
            let tx = c.transaction().unwrap();
            tx.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                .unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.execute("INSERT INTO schema_version (version) VALUES (1)", [])
                .unwrap();
            for (id, pw) in [("dts-kept0000", "kept-Pw-4444"), ("dts-gone0000", "gone-Pw-5555")] {
                tx.execute(
                    "INSERT INTO jobs (job_id, job_name, request, status, create_time, update_time) \
                     VALUES (?, 'n', ?, 4, 1, 1)",
                    params![id, format!("{{\"SrcInfo\":{{\"Password\":\"{pw}\"}}}}")],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            c.execute("DELETE FROM jobs WHERE job_id = 'dts-gone0000'", [])
                .unwrap();
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
        }
        assert!(on_disk(&dir, "kept-Pw-4444") && on_disk(&dir, "gone-Pw-5555"));
        let s = Store::open_with_key(&dir, Some(key.clone())).await.unwrap();
        assert!(
            !dir.join("store.key").exists(),
            "FERRY_STORE_KEY is used, no key file"
        );
        let jobs = s.jobs().await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].request.raw()["SrcInfo"]["Password"], "kept-Pw-4444");
        assert!(!on_disk(&dir, "kept-Pw-4444"), "encrypted at open");
        assert!(!on_disk(&dir, "gone-Pw-5555"), "free space scrubbed");
        drop(s);
        let s = Store::open_with_key(&dir, Some(key)).await.unwrap();
        assert_eq!(s.jobs().await.unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
