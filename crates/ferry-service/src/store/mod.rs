//! The job store: the rows of jobs, compare tasks and lag series, and facts about the store
//! itself, in one of two backends behind one API ([`Store`]):
//!
//! - SQLite ([`sqlite`], the default): `ferry.db` in the data directory, one `ferry serve` per
//!   data directory;
//! - MySQL/MariaDB ([`mysql`], `--store mysql://USER@HOST:PORT/DB`, [`url`]): a database that
//!   several `ferry serve` nodes share.
//!
//! Both keep the same columns, are created and migrated by version at open, and share the SQL
//! where the dialects agree ([`sql`]). A job's request holds the databases' passwords: it is
//! stored encrypted in both ([`crate::secrets`]; the key in `FERRY_STORE_KEY` or
//! `DATA_DIR/store.key`, checked at open against the key the store was written with). A status
//! change is one `UPDATE … WHERE job_id = ? AND status IN (…)`: it either wins or changes nothing.

pub mod leases;
mod mysql;
mod sql;
mod sqlite;
pub mod url;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use ferry_check::CheckStatus;
use ferry_core::ErrorKind;

use crate::detail::Detail;
use crate::error::ServiceError;
use crate::job::{CheckPhase, JobRequest, PauseMode};
use crate::secrets::{Cipher, ENV_STORE_KEY};
use crate::status::JobStatus;
use sql::P;
pub use url::{MysqlUrl, StoreLocation};

/// `store_meta` key: a value encrypted with the store key, to recognise a wrong key at open.
const META_KEY_CHECK: &str = "key_check";

/// The tables whose rows belong to a job (deleted with it), and what they hold.
const JOB_CHILD_TABLES: &[(&str, &str)] = &[
    ("compare_tasks", "compare tasks"),
    ("lag_series", "lag series"),
    ("job_actions", "queued actions"),
];

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

impl Update {
    /// The outcome of a conditional statement that changed `applied` rows, given the job as it
    /// is after it.
    fn of(applied: bool, now: Option<JobRow>) -> Update {
        match now {
            None => Update::Missing,
            Some(job) if applied => Update::Done(Box::new(job)),
            Some(job) => Update::WrongStatus(job.status),
        }
    }
}

/// One tier's bucket of a lag-series sample to add ([`crate::series`]).
#[derive(Debug, Clone)]
pub(crate) struct SeriesRow {
    pub job_id: String,
    pub step: i64,
    /// The bucket's start.
    pub t: i64,
    /// Seconds behind, bytes behind, events/s, rows/s.
    pub values: [f64; 4],
    /// Buckets of the tier before this time are dropped.
    pub prune_before: i64,
}

impl SeriesRow {
    fn values(&self) -> Vec<P> {
        let mut v = vec![P::Text(self.job_id.clone()), P::Int(self.step), P::Int(self.t)];
        v.extend(self.values.iter().map(|x| P::Real(*x)));
        v
    }
    fn prune(&self) -> Vec<P> {
        vec![
            P::Text(self.job_id.clone()),
            P::Int(self.step),
            P::Int(self.prune_before),
        ]
    }
}

/// A stored lag-series bucket: its start, how many samples it sums, and the four sums.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesBucket {
    pub t: i64,
    pub n: u32,
    pub sums: [f64; 4],
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Mysql(mysql::Mysql),
}

/// The job store (SQLite or MySQL/MariaDB).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    cipher: Arc<Cipher>,
    data_dir: PathBuf,
}
/// Now, in UNIX seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating) `DIR/ferry.db` and brings its schema up to date; the secrets key is
    /// `FERRY_STORE_KEY` when set, else `DIR/store.key` (generated when absent).
    pub async fn open(data_dir: &Path) -> Result<Store, ServiceError> {
        Store::open_with_key(data_dir, std::env::var(ENV_STORE_KEY).ok()).await
    }

    /// As [`Store::open`], with the value of `FERRY_STORE_KEY` given.
    pub async fn open_with_key(data_dir: &Path, env_key: Option<String>) -> Result<Store, ServiceError> {
        Store::open_at(&StoreLocation::Sqlite, data_dir, env_key).await
    }

    /// Opens the store at `location` (creating and migrating its tables); the secrets key is
    /// `env_key` (`FERRY_STORE_KEY`) when set, else `DATA_DIR/store.key`. Every node sharing a
    /// MySQL store needs the same key: another one is refused at open.
    pub async fn open_at(
        location: &StoreLocation,
        data_dir: &Path,
        env_key: Option<String>,
    ) -> Result<Store, ServiceError> {
        let (backend, cipher) = match location {
            StoreLocation::Sqlite => {
                let (s, cipher) = sqlite::Sqlite::open(data_dir, env_key).await?;
                (Backend::Sqlite(s), cipher)
            }
            StoreLocation::Mysql(url) => {
                let dir = data_dir.to_path_buf();
                let cipher = tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dir).map_err(|e| ServiceError::DataDir {
                        path: dir.clone(),
                        message: format!("cannot create it: {e}"),
                    })?;
                    Cipher::load(&dir, env_key.as_deref())
                })
                .await
                .map_err(|e| ServiceError::Thread(e.to_string()))??;
                let m = mysql::Mysql::open(url, &cipher).await?;
                (Backend::Mysql(m), cipher)
            }
        };
        Ok(Store {
            backend,
            cipher: Arc::new(cipher),
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// `DIR/ferry.db` for the SQLite store; `None` for a MySQL one.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s.path()),
            Backend::Mysql(_) => None,
        }
    }

    /// The data directory (the store key, generated credentials, repair files).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `sqlite` or `mysql://user@host:port/db`, for logs.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite".into(),
            Backend::Mysql(m) => m.name().to_string(),
        }
    }

    /// Statements this node sent to a MySQL store since it started (`None`: SQLite).
    pub fn statements(&self) -> Option<u64> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Mysql(m) => Some(m.statements()),
        }
    }

    /// True for a store other nodes may share.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Mysql(_))
    }

    fn seal(&self, request: &JobRequest, job_id: &str) -> Result<String, ServiceError> {
        self.cipher.encrypt(&sql::to_json(request.raw()), job_id)
    }

    /// Adds a job. `false` when the JobId exists already.
    pub async fn insert_job(&self, job: JobRow) -> Result<bool, ServiceError> {
        let sealed = self.seal(&job.request, &job.job_id)?;
        match &self.backend {
            Backend::Sqlite(s) => s.insert_job(job, sealed).await,
            Backend::Mysql(m) => m.insert_job(job, sealed).await,
        }
    }

    /// One job.
    pub async fn job(&self, job_id: &str) -> Result<Option<JobRow>, ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.job(job_id, self.cipher.clone()).await,
            Backend::Mysql(m) => m.job(job_id, &self.cipher).await,
        }
    }

    /// Every job, oldest first.
    pub async fn jobs(&self) -> Result<Vec<JobRow>, ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.jobs(self.cipher.clone()).await,
            Backend::Mysql(m) => m.jobs(&self.cipher).await,
        }
    }

    /// Applies `patch` when the job's status is one of `expect` (any status when `None`), in one
    /// statement.
    pub async fn update(
        &self,
        job_id: &str,
        expect: Option<&[JobStatus]>,
        patch: Patch,
    ) -> Result<Update, ServiceError> {
        self.update_leased(job_id, expect, patch, None).await
    }

    /// [`Store::update`], applied only while `lease` (node, epoch) still holds the job's lease
    /// when given (a run's writes in cluster mode: a node that lost the lease changes nothing;
    /// the outcome is then `WrongStatus`).
    pub async fn update_leased(
        &self,
        job_id: &str,
        expect: Option<&[JobStatus]>,
        patch: Patch,
        lease: Option<(&str, u64)>,
    ) -> Result<Update, ServiceError> {
        let sealed = match &patch.request {
            Some(r) => Some(self.seal(r, job_id)?),
            None => None,
        };
        match &self.backend {
            Backend::Sqlite(s) => {
                s.update(job_id, expect, patch, sealed, lease, self.cipher.clone())
                    .await
            }
            Backend::Mysql(m) => m.update(job_id, expect, patch, sealed, lease, &self.cipher).await,
        }
    }

    /// Deletes a job and its compare tasks when its status is one of `expect`.
    pub async fn delete_job(&self, job_id: &str, expect: &[JobStatus]) -> Result<Update, ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.delete_job(job_id, expect, self.cipher.clone()).await,
            Backend::Mysql(m) => m.delete_job(job_id, expect, &self.cipher).await,
        }
    }

    /// Adds a compare task.
    pub async fn insert_compare(&self, row: CompareRow) -> Result<(), ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.insert_compare(row).await,
            Backend::Mysql(m) => m.insert_compare(row).await,
        }
    }

    async fn compares_of(&self, job_id: Option<&str>) -> Result<Vec<CompareRow>, ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.compares(job_id).await,
            Backend::Mysql(m) => m.compares(job_id).await,
        }
    }

    /// A job's compare tasks, oldest first.
    pub async fn compares(&self, job_id: &str) -> Result<Vec<CompareRow>, ServiceError> {
        self.compares_of(Some(job_id)).await
    }

    /// Every compare task (for the restart of the service).
    pub async fn all_compares(&self) -> Result<Vec<CompareRow>, ServiceError> {
        self.compares_of(None).await
    }

    /// Applies `change` to a compare task when its status is one of `expect`. `false` when the
    /// task is missing or in another status.
    pub async fn update_compare(
        &self,
        id: &str,
        expect: &[&str],
        change: CompareChange,
    ) -> Result<bool, ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.update_compare(id, expect, change).await,
            Backend::Mysql(m) => m.update_compare(id, expect, change).await,
        }
    }

    /// Adds lag-series buckets (one per tier) and prunes each tier.
    pub(crate) async fn series_append(&self, rows: Vec<SeriesRow>) -> Result<(), ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.series_append(rows).await,
            Backend::Mysql(m) => m.series_append(rows).await,
        }
    }

    /// The buckets of tier `step` of a job's lag series from `from` on, oldest first.
    pub(crate) async fn series_read(
        &self,
        job_id: &str,
        step: i64,
        from: i64,
    ) -> Result<Vec<SeriesBucket>, ServiceError> {
        let vals = vec![P::Text(job_id.into()), P::Int(step), P::Int(from)];
        match &self.backend {
            Backend::Sqlite(s) => s.series_read(vals).await,
            Backend::Mysql(m) => m.series_read(vals).await,
        }
    }

    /// Runs one statement of SQL both dialects accept; the rows it matched.
    pub(crate) async fn exec(&self, sql: &'static str, vals: Vec<P>) -> Result<u64, ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.exec(sql, vals).await,
            Backend::Mysql(m) => m.exec_one(sql, vals).await,
        }
    }

    /// Runs one query of SQL both dialects accept; its rows.
    pub(crate) async fn query(&self, sql: &'static str, vals: Vec<P>) -> Result<Vec<Vec<P>>, ServiceError> {
        match &self.backend {
            Backend::Sqlite(s) => s.query(sql, vals).await,
            Backend::Mysql(m) => m.query(sql, vals).await,
        }
    }

    /// Closes the store's connections (MySQL; SQLite closes with the last clone).
    pub async fn close(&self) {
        if let Backend::Mysql(m) = &self.backend {
            m.close().await;
        }
    }
}

#[cfg(test)]
mod tests;
