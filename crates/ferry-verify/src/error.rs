//! The verifier's error type, [`VerifyError`], split into transient and definite errors like every
//! Ferry error. Differences between the servers are not errors: they are the report.

use ferry_core::error::classify_mysql;
use ferry_core::{CoreError, ErrorKind};
use ferry_load::LoadError;
use thiserror::Error;

/// Everything that can stop a verification.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// A server answered with an error while Ferry was doing `context`.
    #[error("{context}: {source}")]
    Mysql {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    /// Connecting, reading the catalog.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Planning chunks (the loader's planner).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Writing the repair SQL failed.
    #[error("writing the repair SQL: {0}")]
    Repair(#[source] std::io::Error),
    /// A server returned something the verifier cannot interpret.
    #[error("unexpected answer from the {side}: {message}")]
    Unexpected { side: &'static str, message: String },
    /// The caller's replay fence failed.
    #[error("waiting for the incremental replay to pass the compared position: {0}")]
    Fence(String),
    /// Invalid options.
    #[error("invalid verify options: {0}")]
    Options(String),
    /// A worker task ended abnormally.
    #[error("a verify worker stopped: {0}")]
    Worker(String),
}

impl VerifyError {
    /// Transient (retry) or definite (fix something first).
    pub fn kind(&self) -> ErrorKind {
        match self {
            VerifyError::Mysql { source, .. } => classify_mysql(source),
            VerifyError::Core(e) => e.kind(),
            VerifyError::Load(e) => e.kind(),
            VerifyError::Fence(_) => ErrorKind::Transient,
            _ => ErrorKind::Definite,
        }
    }
}

/// Attaches what Ferry was doing to a mysql_async result.
pub(crate) trait Ctx<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, VerifyError>;
}

impl<T> Ctx<T> for Result<T, mysql_async::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, VerifyError> {
        self.map_err(|source| VerifyError::Mysql {
            context: context(),
            source,
        })
    }
}
