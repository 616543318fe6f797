//! The loader's error type, [`LoadError`], and its split into transient and definite errors.
//!
//! Every error carries what Ferry was doing (the table and chunk, the statement) and the server's
//! own message, so a person can act on it without reading logs.

use ferry_core::error::classify_mysql;
use ferry_core::{CoreError, ErrorKind};
use thiserror::Error;

/// Everything that can stop a full load.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The server answered with an error while Ferry was doing `context`.
    #[error("{context}: {source}")]
    Mysql {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    /// An error from the shared vocabulary (connecting, parsing a position).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The global read lock for the consistent snapshot could not be taken in time.
    #[error(
        "could not take the global read lock on the source within {waited_ms} ms ({statement}); \
         sessions that block it: {blockers}"
    )]
    LockTimeout {
        statement: String,
        waited_ms: u64,
        /// The blocking sessions (id, user, seconds, state, statement), or a hint when none runs.
        blockers: String,
    },
    /// The source writes no binary log, so no snapshot position exists.
    #[error(
        "the source has no binary log (SHOW MASTER STATUS returned nothing): set log_bin=ON \
         (with binlog_format=ROW) on the source and restart it; the full load must record the \
         binlog position its snapshot was taken at"
    )]
    NoBinlog,
    /// System-versioned tables (MariaDB `WITH SYSTEM VERSIONING`) that cannot be copied with
    /// their history exactly (transaction-precise versioning, or a target that cannot write the
    /// period columns); refused rather than copying the current rows alone.
    #[error(
        "{tables}: system-versioned (WITH SYSTEM VERSIONING) and {reason}; Ferry copies every \
         version with its row_start/row_end or refuses the table rather than drop the history. \
         Leave these tables out of the job (mariadb-dump --dump-history copies them on 10.11+), \
         or remove the versioning on the source if the history is not needed"
    )]
    SystemVersioned { tables: String, reason: String },
    /// A target table of the load does not exist.
    #[error("target table {table} does not exist: run the structure phase before the full load")]
    TargetTableMissing { table: String },
    /// `WriteMethod::LoadData` was asked for and the target refuses `LOAD DATA LOCAL INFILE`.
    #[error(
        "the target refuses LOAD DATA LOCAL INFILE ({reason}): set local_infile=ON on the target \
         or use the INSERT write method"
    )]
    LocalInfileDisabled { reason: String },
    /// The target stored a different number of rows than were read.
    #[error("read {read} rows from the source but the target stored {written}")]
    RowCount { read: u64, written: u64 },
    /// The target changed values while storing them (its warnings say how).
    #[error("the target changed values while storing them: {0}")]
    Warnings(String),
    /// The checkpoint tables hold something this loader cannot use.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Invalid options.
    #[error("invalid load options: {0}")]
    Options(String),
    /// A chunk failed; `source` says why.
    #[error("table {table}, chunk {chunk}: {source}")]
    Chunk {
        table: String,
        chunk: u32,
        #[source]
        source: Box<LoadError>,
    },
}

impl LoadError {
    /// Transient (retry the run from the checkpoints, with backoff) or definite (fail the job).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LoadError::Mysql { source, .. } => classify_mysql(source),
            LoadError::Core(e) => e.kind(),
            LoadError::LockTimeout { .. } => ErrorKind::Transient,
            LoadError::Chunk { source, .. } => source.kind(),
            _ => ErrorKind::Definite,
        }
    }

    /// The server error code, when the error came from a server.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            LoadError::Mysql {
                source: mysql_async::Error::Server(s),
                ..
            } => Some(s.code),
            LoadError::Core(CoreError::Mysql {
                source: mysql_async::Error::Server(s),
                ..
            }) => Some(s.code),
            LoadError::Chunk { source, .. } => source.server_code(),
            _ => None,
        }
    }

    /// Names the table and chunk an error happened in.
    pub(crate) fn in_chunk(self, table: &str, chunk: u32) -> LoadError {
        match self {
            e @ LoadError::Chunk { .. } => e,
            e => LoadError::Chunk {
                table: table.to_string(),
                chunk,
                source: Box::new(e),
            },
        }
    }
}

/// Attaches what Ferry was doing to a mysql_async result.
pub(crate) trait Ctx<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, LoadError>;
}

impl<T> Ctx<T> for Result<T, mysql_async::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, LoadError> {
        self.map_err(|source| LoadError::Mysql {
            context: context(),
            source,
        })
    }
}
