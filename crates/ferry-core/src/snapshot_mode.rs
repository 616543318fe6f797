//! How the full load's consistent snapshot is taken (`Ferry.SnapshotMode`).

/// `Ferry.SnapshotMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// The global lock (`lock`); when the server refuses it (no RELOAD, a managed service),
    /// `lockless`.
    #[default]
    Auto,
    /// MariaDB `BACKUP STAGE BLOCK_COMMIT`, else `FLUSH TABLES WITH READ LOCK`, held for a few
    /// statements; refused → the load fails.
    Lock,
    /// No global lock and no read view longer than one chunk: each chunk is read in its own
    /// `START TRANSACTION WITH CONSISTENT SNAPSHOT`, placed in the binlog exactly
    /// (`Binlog_snapshot_file/position`, MariaDB and Percona Server) or by an upper bound (MySQL);
    /// the binlog between the chunks is replayed idempotently before the target is consistent.
    Lockless,
}

impl SnapshotMode {
    /// All modes with their names.
    pub const ALL: [(&'static str, SnapshotMode); 3] = [
        ("auto", SnapshotMode::Auto),
        ("lock", SnapshotMode::Lock),
        ("lockless", SnapshotMode::Lockless),
    ];

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMode::Auto => "auto",
            SnapshotMode::Lock => "lock",
            SnapshotMode::Lockless => "lockless",
        }
    }
}
