//! The replayer's error type and its split into transient and definite errors.
//!
//! Transient: the network, a disconnect (including a panic inside the binlog parser while reading
//! a packet, which shows up as a finished reader task), a server restart, a lock wait. The caller
//! reconnects and resumes from its checkpoint with backoff.
//!
//! Definite: a purged binlog or an unknown start position, an event type Ferry does not know, a
//! checksum mismatch, a row that does not match the schema, an unsupported server setting. The
//! job fails with the message; retrying cannot help.

use ferry_core::error::classify_mysql;
use ferry_core::{CoreError, ErrorKind};
use thiserror::Error;

/// Everything that can go wrong while reading and decoding the binlog.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// Connecting to the source (or preparing the connection) failed.
    #[error("binlog reader: {0}")]
    Connect(#[source] CoreError),
    /// A statement or the stream itself failed with a client or server error.
    #[error("{context}: {source}")]
    Mysql {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    /// The stream ended or its task died (including a panic inside the binlog parser on a
    /// truncated packet). Reconnect from the last checkpoint.
    #[error("binlog stream disconnected at {position}: {reason}")]
    Disconnected { position: String, reason: String },
    /// The requested start (binlog file or GTID) is not on the source any more, or never was
    /// (server error 1236).
    #[error(
        "binlog position {wanted} is not available on the source ({message}); the binlog was \
         purged or the position never existed: restart the job from a new snapshot"
    )]
    PositionUnavailable { wanted: String, message: String },
    /// An event type Ferry does not handle (never skipped: skipping could lose changes).
    #[error("unknown binlog event type {type_code} ({name}) at {position}")]
    UnknownEvent {
        type_code: u8,
        name: String,
        position: String,
    },
    /// A server setting or a feature Ferry does not support.
    #[error("unsupported: {what} (at {position})")]
    Unsupported { what: String, position: String },
    /// An event failed its CRC32 check.
    #[error(
        "binlog event at {position} fails its CRC32 check (stored {stored:#010x}, computed {computed:#010x})"
    )]
    Checksum {
        position: String,
        stored: u32,
        computed: u32,
    },
    /// An event could not be parsed.
    #[error("malformed binlog event at {position}: {message}")]
    Corrupt { position: String, message: String },
    /// A row does not match the table description it is decoded with.
    #[error("row of {table} at {position} does not match the table schema: {message}")]
    SchemaMismatch {
        table: String,
        position: String,
        message: String,
    },
    /// The caller asked for something impossible (a start position of the wrong flavor, …).
    #[error("invalid binlog start: {0}")]
    InvalidStart(String),
    /// Connecting to the target failed.
    #[error("target: {0}")]
    TargetConnect(#[source] CoreError),
    /// Applying a change (or writing the checkpoint) on the target failed.
    #[error("applying {what} at {position} on the target: {source}")]
    Apply {
        what: String,
        position: String,
        #[source]
        source: mysql_async::Error,
    },
    /// A change does not fit the target's data (conflict policy Stop): an insert of an existing
    /// key, an update or delete of a missing row.
    #[error("conflict on {table} at {position}: {message} (key {key}); the target differs from the source: fix it (or choose the conflict policy Overwrite or Ignore) and resume")]
    Conflict {
        table: String,
        key: String,
        position: String,
        message: String,
    },
    /// The replay checkpoint or the load's snapshot on the target is missing or unreadable.
    #[error("replay checkpoint: {0}")]
    Checkpoint(String),
    /// A selected table is missing on the target, or the target cannot describe it.
    #[error("target table {table}: {message}")]
    TargetSchema { table: String, message: String },
    /// Another node claimed the job ([`ferry_core::fence`]): the commit was rolled back and
    /// nothing more is applied.
    #[error(transparent)]
    Fenced(CoreError),
}

impl ReplayError {
    /// Wraps a mysql_async error with what Ferry was doing.
    pub fn mysql(context: impl Into<String>, source: mysql_async::Error) -> Self {
        ReplayError::Mysql {
            context: context.into(),
            source,
        }
    }

    /// Transient (reconnect and resume from the checkpoint) or definite (fail the job).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReplayError::Connect(e) => match e {
                CoreError::Mysql { source, .. } => classify_mysql(source),
                // connect timeout and the like
                CoreError::Unexpected(_) => ErrorKind::Transient,
                _ => ErrorKind::Definite,
            },
            ReplayError::Mysql { source, .. } => classify_mysql(source),
            ReplayError::Disconnected { .. } => ErrorKind::Transient,
            ReplayError::TargetConnect(e) => match e {
                CoreError::Mysql { source, .. } => classify_mysql(source),
                CoreError::Unexpected(_) => ErrorKind::Transient,
                _ => ErrorKind::Definite,
            },
            ReplayError::Apply { source, .. } => classify_mysql(source),
            ReplayError::TargetSchema { .. } | ReplayError::Fenced(_) => ErrorKind::Definite,
            ReplayError::Conflict { .. } | ReplayError::Checkpoint(_) => ErrorKind::Definite,
            ReplayError::PositionUnavailable { .. }
            | ReplayError::UnknownEvent { .. }
            | ReplayError::Unsupported { .. }
            | ReplayError::Checksum { .. }
            | ReplayError::Corrupt { .. }
            | ReplayError::SchemaMismatch { .. }
            | ReplayError::InvalidStart(_) => ErrorKind::Definite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let d = ReplayError::Disconnected {
            position: "f:4".into(),
            reason: "eof".into(),
        };
        assert_eq!(d.kind(), ErrorKind::Transient);
        let p = ReplayError::PositionUnavailable {
            wanted: "mysql-bin.000009:4".into(),
            message: "x".into(),
        };
        assert_eq!(p.kind(), ErrorKind::Definite);
        assert!(p.to_string().contains("mysql-bin.000009"));
        let io = ReplayError::mysql(
            "reading",
            mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed),
        );
        assert_eq!(io.kind(), ErrorKind::Transient);
    }
}
