//! The two error kinds every Ferry error falls into, and the core crate's own error enum.
//!
//! *Transient* errors (network, server restart, lock wait) are retried from the last checkpoint
//! with backoff; *definite* errors (bad configuration, schema mismatch, purged binlog) fail the job
//! with a message a person can act on. Which server errors are which, and how retries are spaced
//! and bounded, is [`crate::retry`].

use thiserror::Error;

/// Whether an error is worth retrying from the last checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Retry from the last checkpoint, with backoff.
    Transient,
    /// Fail with a reason; retrying cannot help.
    Definite,
}

/// Server errors raised when a value does not fit its column exactly, which a strict `sql_mode`
/// turns from warnings into errors: out of range (1264), data truncated (1265), column cannot be
/// NULL (1048), incorrect integer or string value (1366), incorrect date/time value (1292), data
/// too long (1406), incorrect value (1367), invalid JSON text (3140). Definite: the same write
/// fails again on every retry.
pub const DATA_CONVERSION_CODES: &[u16] = &[1048, 1264, 1265, 1292, 1366, 1367, 1406, 3140];

pub use crate::retry::classify_mysql;

/// Errors raised by the core crate itself: configuration, parsing and catalog reads.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A value in a job specification or configuration is invalid.
    #[error("invalid {field}: {message}")]
    InvalidConfig { field: String, message: String },
    /// A position string did not parse.
    #[error("invalid position {input:?}: {message}")]
    InvalidPosition { input: String, message: String },
    /// A table or database the job names does not exist on the source.
    #[error("{what} {name} does not exist on the {side}")]
    NotFound {
        what: &'static str,
        name: String,
        side: &'static str,
    },
    /// The server answered with an error.
    #[error("{context}: {source}")]
    Mysql {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    /// The server returned something Ferry cannot interpret.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(String),
    /// The target's `ferry_meta` has a schema version this Ferry does not know.
    #[error(
        "{schema} was written by a newer Ferry (schema {found}; this Ferry knows {known}): upgrade Ferry"
    )]
    MetaSchemaNewer { schema: String, found: u32, known: u32 },
    /// The connection handshake failed inside the client library (a panic caught by
    /// [`crate::Endpoint::connect`]); retrying meets the same server answer.
    #[error("cannot connect to {server}: {message}")]
    Handshake { server: String, message: String },
    /// TLS failed in a way retrying cannot fix (certificate refused, no TLS on the server under a
    /// mode that demands it, unusable TLS material); the message names the side, cause and fix.
    #[error("cannot connect to {server}: {message}")]
    Tls { server: String, message: String },
    /// The target holds a newer ownership epoch of the job than this run's ([`crate::fence`]):
    /// another node claimed the job, and this run must not apply anything more. Definite.
    #[error(
        "job {job}: this node's claim (epoch {mine}) is older than the target's (epoch {stored}): \
         another node owns the job"
    )]
    Fenced { job: String, mine: u64, stored: u64 },
}

impl CoreError {
    /// Builds a `Mysql` error with a context string (what Ferry was doing).
    pub fn mysql(context: impl Into<String>, source: mysql_async::Error) -> Self {
        CoreError::Mysql {
            context: context.into(),
            source,
        }
    }

    /// Transient or definite.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::Mysql { source, .. } => classify_mysql(source),
            _ => ErrorKind::Definite,
        }
    }
}

/// Attach a context to mysql_async results.
pub trait MysqlResultExt<T> {
    /// Wraps the error with what Ferry was doing.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, CoreError>;
}

impl<T> MysqlResultExt<T> for Result<T, mysql_async::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, CoreError> {
        self.map_err(|e| CoreError::mysql(context(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: format!("error {code}"),
            state: "HY000".into(),
        })
    }

    #[test]
    fn values_that_do_not_fit_are_definite() {
        for &code in DATA_CONVERSION_CODES {
            assert_eq!(classify_mysql(&server(code)), ErrorKind::Definite, "{code}");
        }
    }
}
