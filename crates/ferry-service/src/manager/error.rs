//! The manager's domain error: why an operation on a job was refused or could not be done. The
//! actions map it to the API's error codes (`crate::actions`); the manager never speaks the
//! wire's vocabulary.

use ferry_core::ErrorKind;
use ferry_job::spec::SpecError;

use crate::error::ServiceError;
use crate::status::{JobStatus, Operation};

/// Why an operation on a job failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No job has this JobId.
    #[error("job {job_id} does not exist")]
    NotFound { job_id: String },
    /// The job's status does not allow the operation.
    #[error(
        "{} is not allowed while job {job_id} is in status {status}; it is allowed in status {}",
        op.action(),
        allowed_list(*op)
    )]
    NotAllowed {
        op: Operation,
        job_id: String,
        status: JobStatus,
    },
    /// The status allows the operation, but the job's state does not (already paused, not
    /// running in this server, not in its incremental phase…); the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// The job's request does not validate.
    #[error("the parameter {}: {}", .0.field, .0.message)]
    InvalidJob(SpecError),
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] ServiceError),
}

fn allowed_list(op: Operation) -> String {
    op.allowed()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl ControlError {
    /// Transient (the store was busy) or definite.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ControlError::Store(e) => e.kind(),
            _ => ErrorKind::Definite,
        }
    }

    pub(crate) fn not_found(job_id: &str) -> ControlError {
        ControlError::NotFound {
            job_id: job_id.to_string(),
        }
    }
}
