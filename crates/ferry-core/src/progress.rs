//! Progress events that engines emit and the job runner (or the CLI) aggregates.
//!
//! Engines never call the API or the job store; they call a [`ProgressSink`], a cheap callback
//! owned by whoever runs them. Events carry deltas; the receiver keeps the totals.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::position::SnapshotPosition;

/// Something an engine reports while it works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProgressEvent {
    /// A phase started (`structure`, `full_data`, `post_data`, …).
    PhaseStarted { phase: String },
    /// A phase ended.
    PhaseFinished { phase: String },
    /// A DDL statement was applied on the target.
    ObjectCreated { kind: String, name: String },
    /// The full load knows its work: tables, chunks and estimated rows and bytes.
    LoadPlanned {
        tables: u64,
        chunks: u64,
        chunks_done: u64,
        /// Rows and bytes of the chunks done before this run (a resumed load).
        rows_done: u64,
        bytes_done: u64,
        estimated_rows: u64,
        estimated_bytes: u64,
    },
    /// The consistent snapshot is open.
    SnapshotTaken {
        position: SnapshotPosition,
        lock_ms: u64,
    },
    /// A chunk was committed on the target.
    ChunkDone { table: String, rows: u64, bytes: u64 },
    /// Every chunk of a table was committed.
    TableDone { table: String },
    /// The incremental replay's state, about once a second. Totals since the replay started;
    /// rates over the last interval.
    ReplayProgress {
        /// The reader's position (after the last event read).
        read_pos: String,
        /// The position after the last group applied on the target (the checkpoint).
        applied_pos: String,
        /// Seconds the target is behind the source (0 when caught up).
        lag_seconds: f64,
        /// Binlog bytes between the applied position and the source's end.
        lag_bytes: u64,
        events: u64,
        rows: u64,
        transactions: u64,
        events_per_sec: f64,
        rows_per_sec: f64,
    },
    /// The replay caught up with the source: the job may be completed (cut over).
    ReadyToComplete { position: String },
    /// A transient error was met; the engine retries.
    Retrying {
        what: String,
        error: String,
        attempt: u32,
    },
}

/// The callback engines report to.
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// A sink that drops every event.
pub fn null_sink() -> ProgressSink {
    Arc::new(|_| {})
}
