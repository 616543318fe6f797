//! Ferry's shared vocabulary: everything two or more engines must agree on.
//!
//! - [`endpoint`]: where a server is and how to connect to it (secrets redacted);
//! - [`tls`]: TLS modes and material, and how they become connection options;
//! - [`flavor`]: MariaDB or MySQL, and the SQL variants that follow from it;
//! - [`position`]: binlog positions in their three forms;
//! - [`selection`]: which objects a job moves and how they are renamed;
//! - [`mapping`]: per-table row filters, column mappings and replayed change kinds;
//! - [`filter`]: row filters (a checked MySQL boolean expression), shared by jobs and comparisons,
//!   and [`filter_eval`]: their exact evaluation over a row image (replay);
//! - [`table`] and [`catalog`]: the table model, read from `information_schema`;
//! - [`sql`]: identifier quoting and literal rendering;
//! - [`value`]: exact encoding of row values for the target (LOAD DATA text and SQL literals);
//! - [`meta`]: the `ferry_meta` tables on the target, versioned, with their migrations;
//! - [`fence`]: the job's ownership epoch on the target, checked by every checkpoint commit;
//! - [`chunkmap`]: continuous verification's chunk maps and dirty marks (replay and verifier);
//! - [`progress`] and [`throttle`]: progress events and run-time adjustable rate limits;
//! - [`error`]: the two error kinds, transient and definite, and [`retry`]: which server errors
//!   are which (named codes), backoff with jitter, the attempt budget and the retry window;
//! - [`fault`]: named fault points for the crash and failure tests (inert unless `FERRY_FAULTS`);
//! - [`versioning`]: system-versioned tables (their period columns and history);
//! - [`civil`]: calendar arithmetic for epochs and the API's times.

pub mod catalog;
pub mod chunkmap;
pub mod civil;
pub mod connect;
pub mod endpoint;
pub mod error;
pub mod fault;
pub mod fence;
pub mod filter;
pub mod filter_eval;
pub mod flavor;
pub mod lexer;
pub mod mapping;
pub mod meta;
pub mod position;
pub mod progress;
pub mod retry;
pub mod selection;
pub mod snapshot_mode;
pub mod sql;
pub mod table;
pub mod throttle;
pub mod tls;
pub mod value;
pub mod versioning;

pub use endpoint::{Endpoint, Secret};
pub use error::{CoreError, ErrorKind};
pub use flavor::{Flavor, ServerKind};
pub use position::{GtidSet, MariaGtidPos, Position, SnapshotPosition};
pub use selection::{ObjectSelection, Selection};
pub use snapshot_mode::SnapshotMode;
pub use table::{Column, ColumnKind, TableSchema};
pub use tls::{TlsConfig, TlsMode};
