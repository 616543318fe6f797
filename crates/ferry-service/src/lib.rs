//! The job service behind `ferry serve`: jobs, their steps and progress in an SQLite database in
//! the data directory, the job manager that runs them, and the DTS API actions over them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_api::{ActionHandler, ActionInfo, ApiCall, ApiError, BoxFuture};
use serde_json::{Map, Value};

/// Errors opening or running the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
}

/// Settings of the service (from `ferry.toml` `[jobs]`).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Jobs allowed to run at once; more wait in ReadyRun (6).
    pub max_running_jobs: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions { max_running_jobs: 4 }
    }
}

/// The job service.
pub struct Service {
    _data_dir: PathBuf,
    _options: ServiceOptions,
}

impl Service {
    /// Opens (creating when absent) the job store in `data_dir` and resumes the jobs that were
    /// running when the server last stopped.
    pub async fn open(data_dir: &Path, options: ServiceOptions) -> Result<Arc<Service>, ServiceError> {
        Ok(Arc::new(Service {
            _data_dir: data_dir.to_path_buf(),
            _options: options,
        }))
    }

    /// Stops the running jobs at a safe point (they resume on the next start).
    pub async fn shutdown(&self) {}
}

impl ActionHandler for Service {
    fn lookup(&self, version: &str, action: &str) -> Result<ActionInfo, ApiError> {
        Err(ApiError::invalid_action(action, version))
    }

    fn handle(&self, call: ApiCall) -> BoxFuture<'_, Result<Map<String, Value>, ApiError>> {
        Box::pin(async move { Err(ApiError::invalid_action(&call.action, &call.version)) })
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async { String::new() })
    }
}
