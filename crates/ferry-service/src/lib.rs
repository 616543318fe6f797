//! The job service behind `ferry serve`: jobs, their steps and progress in the job store
//! ([`store`]: SQLite in the data directory, or a MySQL/MariaDB database), read into the typed job ([`job`]), the status machine
//! ([`status`]), the job manager that runs checks, jobs and compare tasks ([`manager`],
//! [`detail`]) and retries failed runs ([`retry`]), the DTS API actions over them ([`actions`]:
//! the only place the manager's [`manager::ControlError`] becomes an API error code), the jobs'
//! lag series ([`series`]), what the console shows beyond the API ([`extras`], [`repair_sql`])
//! and the Prometheus metrics ([`metrics`]).

pub mod actions;
pub mod detail;
pub mod error;
pub mod extras;
pub mod freshness;
pub mod job;
pub mod lease;
pub mod manager;
pub mod metrics;
pub mod repair_sql;
pub mod retry;
pub mod secrets;
pub mod series;
pub mod status;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_api::{ActionHandler, ActionInfo, ApiCall, ApiError, BoxFuture, SeriesSample};
use serde_json::{Map, Value};

pub use error::ServiceError;
pub use status::JobStatus;

use crate::manager::{ClusterOptions, Manager};
use crate::retry::RetryPolicy;
use crate::store::{Store, StoreLocation};

/// Settings of the service (from `ferry.toml` `[jobs]`).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Jobs allowed to run at once; more wait in ReadyRun (6).
    pub max_running_jobs: usize,
    /// The backoff of the retries of failed runs (the window is each job's
    /// `Ferry.RetryWindowSeconds`).
    pub retry: RetryPolicy,
    /// Where the job store is (SQLite in the data directory by default).
    pub store: StoreLocation,
    /// Cluster mode (only with a shared store): this node's id, lease and claim interval.
    pub cluster: Option<ClusterOptions>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            max_running_jobs: 4,
            retry: RetryPolicy::default(),
            store: StoreLocation::Sqlite,
            cluster: None,
        }
    }
}

/// The job service.
pub struct Service {
    data_dir: PathBuf,
    manager: Arc<Manager>,
}

impl Service {
    /// Opens (creating when absent) the job store (`options.store`; the data directory holds
    /// the SQLite store and the store key) and resumes the jobs that were running when the
    /// server last stopped.
    pub async fn open(data_dir: &Path, options: ServiceOptions) -> Result<Arc<Service>, ServiceError> {
        let key = std::env::var(secrets::ENV_STORE_KEY).ok();
        let store = Store::open_at(&options.store, data_dir, key).await?;
        if options.cluster.is_some() && !store.is_shared() {
            return Err(ServiceError::Setting {
                setting: "cluster".into(),
                message: "cluster mode needs a shared job store: give --store mysql://USER@HOST:PORT/DB"
                    .into(),
            });
        }
        let manager = Manager::with_cluster(store, options.max_running_jobs, options.retry, options.cluster);
        manager.resume_all().await?;
        Ok(Arc::new(Service {
            data_dir: data_dir.to_path_buf(),
            manager,
        }))
    }

    /// Stops the running jobs at a safe point (they resume on the next start).
    pub async fn shutdown(&self) {
        self.manager.shutdown().await;
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The job manager (for tests and the binary).
    pub fn manager(&self) -> &Arc<Manager> {
        &self.manager
    }
}

impl ActionHandler for Service {
    fn lookup(&self, version: &str, action: &str) -> Result<ActionInfo, ApiError> {
        actions::lookup(version, action)
    }

    fn handle(&self, call: ApiCall) -> BoxFuture<'_, Result<Map<String, Value>, ApiError>> {
        Box::pin(async move { actions::handle(&self.manager, call).await })
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async move { metrics::render(&self.manager).await })
    }

    fn series(
        &self,
        job_id: &str,
        since: i64,
        resolution: i64,
    ) -> BoxFuture<'_, Result<Vec<SeriesSample>, ApiError>> {
        let job_id = job_id.to_string();
        Box::pin(async move {
            use crate::series::SeriesStore as _;
            if self.manager.store().job(&job_id).await?.is_none() {
                return Err(ApiError::job_not_exist(&job_id));
            }
            Ok(self
                .manager
                .store()
                .read(&job_id, since, resolution, store::now())
                .await?)
        })
    }

    fn job_extras(&self, job_id: &str) -> BoxFuture<'_, Result<Map<String, Value>, ApiError>> {
        let job_id = job_id.to_string();
        Box::pin(async move { extras::job_extras(&self.manager, &job_id).await })
    }

    fn repair_sql(
        &self,
        job_id: &str,
        compare_task_id: &str,
    ) -> BoxFuture<'_, Result<Option<PathBuf>, ApiError>> {
        let (job_id, cid) = (job_id.to_string(), compare_task_id.to_string());
        Box::pin(async move {
            let store = self.manager.store();
            if store.job(&job_id).await?.is_none() {
                return Err(ApiError::job_not_exist(&job_id));
            }
            // Only a compare task of this job.
            if !store
                .compares(&job_id)
                .await?
                .iter()
                .any(|c| c.compare_task_id == cid)
            {
                return Ok(None);
            }
            let Some(p) = repair_sql::path(store, &job_id, &cid) else {
                return Ok(None);
            };
            let file = tokio::fs::metadata(&p).await.is_ok_and(|m| m.is_file());
            Ok(file.then_some(p))
        })
    }
}
