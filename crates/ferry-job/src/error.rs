//! The job runner's error enum: every engine's error, plus connection and state errors, each
//! transient (retry from the checkpoint) or definite (fail with a reason).

use ferry_core::retry;
use ferry_core::{CoreError, ErrorKind};
use ferry_load::LoadError;
use ferry_replay::ReplayError;
use ferry_schema::SchemaError;
use ferry_verify::VerifyError;
use thiserror::Error;

use crate::spec::SpecError;

/// Why a job failed.
#[derive(Debug, Error)]
pub enum JobError {
    /// The job specification is invalid.
    #[error("invalid job: {0}")]
    Spec(#[from] SpecError),
    /// A server could not be reached or refused the login.
    #[error("{side}: {message}")]
    Connect {
        side: &'static str,
        message: String,
        kind: ErrorKind,
    },
    /// Reading the source catalog or selection failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The structure phase failed.
    #[error("structure: {0}")]
    Schema(#[from] SchemaError),
    /// The full-data phase failed.
    #[error("full data: {0}")]
    Load(#[from] LoadError),
    /// The incremental phase failed.
    #[error("incremental: {0}")]
    Replay(#[from] ReplayError),
    /// The job asks for something this version does not do.
    #[error("{0}")]
    Unsupported(String),
    /// The verification phase could not run.
    #[error("verification: {0}")]
    Verify(#[from] VerifyError),
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A transient failure (a server down, the network) outlasted `Ferry.RetryWindowSeconds`.
    #[error("{last} (still failing after retrying for {seconds} s: Ferry.RetryWindowSeconds is {window})")]
    RetryWindow {
        last: Box<JobError>,
        seconds: u64,
        window: u64,
    },
}

impl JobError {
    /// Transient or definite.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Connect { kind, .. } => *kind,
            JobError::Core(e) => e.kind(),
            JobError::Schema(e) => e.kind(),
            JobError::Load(e) => e.kind(),
            JobError::Verify(e) => e.kind(),
            JobError::Replay(e) => e.kind(),
            JobError::Spec(_)
            | JobError::Unsupported(_)
            | JobError::Cancelled
            | JobError::RetryWindow { .. } => ErrorKind::Definite,
        }
    }

    /// Turns a connection failure into a message that names the server and the field to fix.
    pub fn connect(side: &'static str, field: &str, ep: &ferry_core::Endpoint, e: CoreError) -> JobError {
        let who = ep.display_name();
        let (message, kind) = match &e {
            CoreError::Mysql {
                source: mysql_async::Error::Server(s),
                ..
            } if s.code == retry::ER_ACCESS_DENIED_ERROR => (
                format!("access denied for {who}: check {field}.User and {field}.Password ({})", s.message),
                ErrorKind::Definite,
            ),
            CoreError::Mysql {
                source: mysql_async::Error::Server(s),
                ..
            } if matches!(
                s.code,
                retry::ER_ACCOUNT_HAS_BEEN_LOCKED | retry::ER_ACCOUNT_HAS_BEEN_LOCKED_MARIADB
            ) => (
                format!("the account of {who} is locked: unlock it with ALTER USER … ACCOUNT UNLOCK ({})", s.message),
                ErrorKind::Definite,
            ),
            CoreError::Mysql {
                source: mysql_async::Error::Io(io),
                ..
            } => (
                format!("cannot connect to {who}: {io}: is the server running, and are {field}.Ip and {field}.Port right?"),
                ErrorKind::Transient,
            ),
            CoreError::Unexpected(m) => (format!("{m}: check {field}.Ip and {field}.Port"), ErrorKind::Transient),
            other => (format!("cannot connect to {who}: {other}"), other.kind()),
        };
        JobError::Connect { side, message, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run refused by the fence fails for good whichever engine met the refusal: the service
    /// never retries it.
    #[test]
    fn a_fenced_run_is_never_retried() {
        let fenced = || CoreError::Fenced {
            job: "j".into(),
            mine: 1,
            stored: 2,
        };
        let errors = [
            JobError::Core(fenced()),
            JobError::Replay(ReplayError::Fenced(fenced())),
            JobError::Load(LoadError::Chunk {
                table: "d.t".into(),
                chunk: 3,
                source: Box::new(LoadError::Core(fenced())),
            }),
        ];
        for e in errors {
            assert_eq!(e.kind(), ErrorKind::Definite, "{e}");
            assert!(
                e.to_string()
                    .contains("this node's claim (epoch 1) is older than the target's (epoch 2)"),
                "{e}"
            );
        }
    }
}
