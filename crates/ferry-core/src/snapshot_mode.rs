//! How the full load's consistent snapshot is taken (`Ferry.SnapshotMode`).

/// `Ferry.SnapshotMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// The global lock (`lock`); when the server refuses it (no RELOAD, a managed service) and the
    /// source supports a lock-free consistent snapshot (MariaDB, Percona Server), `lockless`.
    #[default]
    Auto,
    /// MariaDB `BACKUP STAGE BLOCK_COMMIT`, else `FLUSH TABLES WITH READ LOCK`, held for a few
    /// statements; refused → the load fails.
    Lock,
    /// No global lock: `START TRANSACTION WITH CONSISTENT SNAPSHOT` and the snapshot's binlog
    /// position from the `Binlog_snapshot_file` / `Binlog_snapshot_position` session status
    /// (MariaDB, Percona Server); refused on servers without them (MySQL).
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
