//! The service's error enum: opening the data directory and the job store (SQLite, or a MySQL or
//! MariaDB server), each error transient (retry later: a busy or locked database, a store server
//! unreachable or restarting) or definite (fix the data directory, the file or the settings).

use std::path::PathBuf;

use ferry_core::ErrorKind;

/// Errors opening or running the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The data directory cannot be created or used.
    #[error("the data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    /// The SQLite job store failed.
    #[error("the job store: {context}: {source}")]
    Store {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The MySQL/MariaDB job store failed.
    #[error("the job store {server}: {context}: {source}")]
    Server {
        server: String,
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    /// A job store setting is wrong (`--store`, `FERRY_STORE`, `store` in the config file).
    #[error("{setting}: {message}")]
    Setting { setting: String, message: String },
    /// A stored value cannot be read back (a damaged or foreign `ferry.db`).
    #[error("the job store: {0}")]
    Corrupt(String),
    /// The blocking store thread went away (the runtime is shutting down).
    #[error("the job store thread stopped: {0}")]
    Thread(String),
    /// Another running `ferry serve` uses this node id (cluster mode).
    #[error(
        "--node-id {node}: another ferry serve process uses this node id (its last heartbeat \
         {heartbeat_age_ms} ms ago): give each node its own --node-id (FERRY_NODE_ID, [cluster] node_id)"
    )]
    NodeIdInUse { node: String, heartbeat_age_ms: i64 },
}

impl ServiceError {
    /// Transient (a busy or locked database, a stopped thread) or definite.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Store { source, .. } => match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                    ErrorKind::Transient
                }
                _ => ErrorKind::Definite,
            },
            ServiceError::Server { source, .. } => ferry_core::retry::classify_mysql(source),
            ServiceError::Thread(_) => ErrorKind::Transient,
            ServiceError::DataDir { .. }
            | ServiceError::Corrupt(_)
            | ServiceError::Setting { .. }
            | ServiceError::NodeIdInUse { .. } => ErrorKind::Definite,
        }
    }

    pub(crate) fn store(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> ServiceError {
        let context = context.into();
        move |source| ServiceError::Store { context, source }
    }
}
