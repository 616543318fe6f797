//! What the binlog reader hands to its caller: typed replication events, each with the binlog
//! position *after* it, the source timestamp and the originating server id.
//!
//! Event groups (transactions) look like this:
//!
//! - DML: `Begin`, then `Rows`… (and possibly `Query` for SAVEPOINT and the like), then `Commit`
//!   (or `Rollback` for a group that only carries non-transactional changes);
//! - DDL: `Begin` then a `Query` with `ends_group = true` (no `Commit` follows);
//! - MariaDB XA (10.5+): `Begin` (with `xa_prepare`), `Rows`…, `XaPrepare`; later a group of
//!   its own, `Begin` then `XaComplete` (XA COMMIT or XA ROLLBACK).
//!
//! A caller checkpoints at a `Commit`, `Rollback`, `Xa*` or group-ending `Query`: resuming from that
//! event's `pos` (or from the GTID state at that point) starts exactly at the next group.

use std::fmt;

use ferry_core::position::MariaGtid;
use ferry_core::Position;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use serde::{Deserialize, Serialize};

pub use crate::mariadb_events::XaXid;

/// A binlog file and an offset in it (the offset of the next event).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BinlogPos {
    pub file: String,
    pub pos: u64,
}

impl BinlogPos {
    /// A file and offset.
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogPos {
            file: file.into(),
            pos,
        }
    }
    /// As a `ferry_core::Position::FilePos`.
    pub fn to_position(&self) -> Position {
        Position::FilePos {
            file: self.file.clone(),
            pos: self.pos,
        }
    }
}

impl fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// The GTID of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gtid {
    /// MariaDB `domain-server-seq`.
    Maria(MariaGtid),
    /// MySQL `uuid[:tag]:gno`.
    Mysql {
        /// Lower-case UUID.
        uuid: String,
        tag: Option<String>,
        gno: u64,
    },
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::Maria(g) => write!(f, "{g}"),
            Gtid::Mysql { uuid, tag, gno } => match tag {
                Some(t) => write!(f, "{uuid}:{t}:{gno}"),
                None => write!(f, "{uuid}:{gno}"),
            },
        }
    }
}

/// Commit-order metadata of a group, for parallel apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// MariaDB GTID flags (`mariadb_events::FL_*`).
    pub maria_flags: Option<u8>,
    /// MariaDB group commit id: groups with the same id committed together.
    pub commit_id: Option<u64>,
    /// MySQL logical clock: the group may run in parallel with groups whose `sequence_number`
    /// is greater than this.
    pub last_committed: Option<u64>,
    /// MySQL logical clock sequence number.
    pub sequence_number: Option<u64>,
    /// MariaDB 10.5+: the group is the first half of an XA transaction, ended by `XaPrepare`
    /// (its rows are committed on the source only by a later `XaComplete` group).
    pub xa_prepare: Option<XaXid>,
}

/// Insert, update or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowsKind {
    Insert,
    Update,
    Delete,
}

/// A column as the table map event describes it (types only; names are absent unless the
/// source logs full row metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogColumn {
    /// The real type (ENUM and SET resolved from the STRING wrapper).
    pub column_type: ColumnType,
    /// The type metadata bytes of the table map event.
    pub meta: Vec<u8>,
    /// Signedness from the optional metadata, when the source logs it.
    pub unsigned: Option<bool>,
    /// Column name from the optional metadata (`binlog_row_metadata=FULL`).
    pub name: Option<String>,
}

/// One row change as raw binlog values: (before image, after image).
pub type RawRowPair = (
    Option<Vec<BinlogValue<'static>>>,
    Option<Vec<BinlogValue<'static>>>,
);

/// The rows of one rows event, not yet decoded: decode them with
/// [`crate::decode::TableDecoder`] and the table's schema as of this event.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsData {
    pub db: String,
    pub table: String,
    pub table_id: u64,
    pub kind: RowsKind,
    /// The table map's columns.
    pub columns: Vec<BinlogColumn>,
    /// (before, after): insert `(None, Some)`, update `(Some, Some)`, delete `(Some, None)`.
    pub rows: Vec<RawRowPair>,
    /// Last rows event of its statement (STMT_END_F).
    pub stmt_end: bool,
    /// The source session checked foreign keys (no `NO_FOREIGN_KEY_CHECKS_F`): its deletes and
    /// key updates of referenced rows ran the foreign keys' cascading actions, which the binlog
    /// does not carry.
    pub fk_checks: bool,
    /// Where the event ends, for error messages.
    pub position: BinlogPos,
    /// The columns the before images carry, when not all (`binlog_row_image=MINIMAL` or
    /// `NOBLOB`, MySQL hidden columns): absent columns hold a NULL placeholder in `rows`.
    pub before_cols: Option<Vec<bool>>,
    /// The columns the after images carry, when not all (see `before_cols`).
    pub after_cols: Option<Vec<bool>>,
}

impl RowsData {
    /// True when an image leaves columns out (a partial row image).
    pub fn partial(&self) -> bool {
        self.before_cols.is_some() || self.after_cols.is_some()
    }
}

/// A statement event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryData {
    /// The default database of the statement (may be empty).
    pub db: String,
    /// The statement text, raw bytes in the charset of `charset.0` (client charset).
    pub sql: Vec<u8>,
    /// True when the statement is a group on its own (DDL): no `Commit` follows, checkpoint
    /// after it.
    pub ends_group: bool,
    /// `@@session.sql_mode` of the statement, when logged.
    pub sql_mode: Option<u64>,
    /// (character_set_client, collation_connection, collation_server) ids, when logged.
    pub charset: Option<(u16, u16, u16)>,
    /// The session `time_zone` of the statement, when it used one (the server logs it then).
    pub time_zone: Option<String>,
    /// The statement comes from a MariaDB server (its sql_mode bits above 31 are MariaDB's).
    pub source_mariadb: bool,
    /// The session's `explicit_defaults_for_timestamp`, when logged (MariaDB sources).
    pub explicit_defaults_for_timestamp: Option<bool>,
}

impl QueryData {
    /// The statement as text (lossy for non-UTF-8 bytes).
    pub fn sql_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.sql)
    }
}

/// The payload of a replication event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A new group (transaction or standalone statement) starts.
    Begin {
        /// Its GTID (None when the source does not use GTIDs, or for a MySQL anonymous GTID).
        gtid: Option<Gtid>,
        info: GroupInfo,
    },
    /// Row changes of one table.
    Rows(RowsData),
    /// A statement (DDL, or SAVEPOINT-like statements inside a transaction).
    Query(QueryData),
    /// The group committed (`xid` for InnoDB groups, None for a `COMMIT` statement event).
    Commit {
        xid: Option<u64>,
        /// The GTID of the group, as given at its `Begin`.
        gtid: Option<Gtid>,
    },
    /// The group ended with ROLLBACK (its transactional changes were not logged; what it logged
    /// were non-transactional changes, already applied on the source).
    Rollback { gtid: Option<Gtid> },
    /// MariaDB 10.5+: `XA PREPARE` ended the group begun with [`GroupInfo::xa_prepare`]: its
    /// rows are prepared, not committed, on the source; a later group commits or rolls back.
    XaPrepare { xid: XaXid, gtid: Option<Gtid> },
    /// MariaDB 10.5+: a group of its own that commits (`commit`) or rolls back a prepared XA
    /// transaction (`XA COMMIT` / `XA ROLLBACK`, possibly from another session after a restart).
    XaComplete {
        xid: XaXid,
        commit: bool,
        gtid: Option<Gtid>,
    },
    /// The source is idle: the position moved without data.
    Heartbeat,
    /// The reader switched to another binlog file (`pos` of the event is the new file's).
    Rotate {
        /// Sent by the server at connect time (not in the binlog itself).
        fake: bool,
    },
}

/// A replication event: the payload plus the position after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplEvent {
    /// The position after this event: resuming here starts with the next event.
    pub pos: BinlogPos,
    /// Source timestamp (seconds since the epoch) from the event header; 0 for some
    /// artificial events.
    pub timestamp: u32,
    /// The server that originally wrote the event.
    pub server_id: u32,
    pub kind: EventKind,
}

impl ReplEvent {
    /// True when a caller may checkpoint after this event (a group ended).
    pub fn ends_group(&self) -> bool {
        match &self.kind {
            EventKind::Commit { .. }
            | EventKind::Rollback { .. }
            | EventKind::XaPrepare { .. }
            | EventKind::XaComplete { .. } => true,
            EventKind::Query(q) => q.ends_group,
            _ => false,
        }
    }
}
