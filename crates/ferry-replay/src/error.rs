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
