//! Ferry's incremental replayer, lower half: reading the source binlog and decoding its rows.
//!
//! - [`stream`]: [`BinlogReader`], a replica connection (MariaDB and MySQL) yielding
//!   [`ReplEvent`]s with exact positions, verified checksums and a transient/definite error split;
//! - [`file`]: [`BinlogFileReader`], the same translation over a binlog file;
//! - [`event`]: the event types handed to the applier;
//! - [`translate`]: the state machine between raw events and [`ReplEvent`]s (positions, GTIDs,
//!   groups);
//! - [`mariadb_events`]: parsers for the MariaDB-only events (GTID, GTID_LIST, …);
//! - [`decode`]: rows → the values a binary-protocol SELECT returns, against the schema at event
//!   time;
//! - [`json`]: MySQL binary JSON → MySQL's JSON text;
//! - [`json_diff`]: MySQL partial JSON updates → guarded SQL over the target column;
//! - [`error`]: [`ReplayError`] and its kinds.
//!
//! - [`apply`]: the applier on top of them: [`run_replay`] (target transactions with the
//!   checkpoint in the same commit, schema at event time, DDL, conflicts, lag, cut-over).

pub mod apply;
pub mod decode;
pub mod error;
pub mod event;
pub mod file;
pub mod json;
pub mod json_diff;
pub mod json_sql;
pub mod mariadb_events;
pub mod start;
pub mod stream;
pub mod temporal;
pub mod translate;

pub use apply::{run_replay, ConflictPolicy, DdlPolicy, ReplayControl, ReplayOptions, ReplaySummary};
pub use decode::{decode_rows, parse_members, RowPair, TableDecoder};
pub use error::ReplayError;
pub use event::{
    BinlogColumn, BinlogPos, EventKind, GroupInfo, Gtid, QueryData, RawRowPair, ReplEvent, RowsData, RowsKind,
};
pub use file::BinlogFileReader;
pub use stream::{BinlogReader, ReaderOptions, StartPosition};
pub use translate::GtidState;
