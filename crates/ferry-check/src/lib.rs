//! Ferry's pre-check: named, read-only check items that tell the user exactly what to fix before a
//! migration starts (the bar is Huawei DRS's MySQL pre-check list).
//!
//! [`run_checks`] works in two stages:
//!
//! 1. **Gather** ([`facts`]): one connection to each server, read-only queries only (`SHOW GLOBAL
//!    VARIABLES`, `SHOW GRANTS`, `information_schema`, `SELECT 1 FROM t LIMIT 1`); the sessions are
//!    also put in `TRANSACTION READ ONLY` mode. Nothing is ever written, set globally or created.
//! 2. **Judge**: every item of the [`REGISTRY`] is a pure function of the gathered facts, so each
//!    PASSED / WARNING / FAILED branch is unit-tested on hand-made facts. An item whose facts could
//!    not be gathered is FAILED with the reason (`skipped: cannot connect to the source`, ...).
//!
//! One module per group: [`connectivity`], [`version`], [`privileges`], [`binlog`],
//! [`compatibility`], [`objects`], [`capacity`]; [`target_rules`] holds the items about target
//! settings that refuse or reshape the selected objects (primary keys, functions and triggers
//! under a binary log, `sql_log_bin`); [`mapping`] checks `Ferry.DbList`'s filters and column
//! mappings against the source tables.

mod accounts;
mod binlog;
mod capacity;
mod compatibility;
mod connectivity;
mod facts;
mod mapping;
mod mariadb_objects;
mod mysql_ddl;
mod objects;
mod privileges;
mod target_rules;
mod version;

use serde::{Deserialize, Serialize};

use crate::facts::{Facts, ServerFacts, SourceObjects, TargetObjects};

/// The outcome of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckStatus {
    /// Nothing to do.
    Passed,
    /// The migration can run, but read the message (slower, or a known difference).
    Warning,
    /// The migration would fail or lose data: fix this first.
    Failed,
}

/// One named check item and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckItem {
    /// Stable snake_case identifier, e.g. `source_binlog_format`.
    pub id: &'static str,
    /// `connectivity`, `version`, `privileges`, `binlog`, `compatibility`, `objects` or `capacity`.
    pub group: &'static str,
    /// Human title.
    pub name: String,
    /// Result.
    pub status: CheckStatus,
    /// What was found, and for WARNING/FAILED what to do (the SQL or configuration line).
    pub message: String,
}

/// What to check: the job's endpoints, objects and options that change the verdicts.
#[derive(Debug, Clone)]
pub struct CheckInput {
    pub source: ferry_core::Endpoint,
    pub target: ferry_core::Endpoint,
    pub selection: ferry_core::Selection,
    /// The job has an incremental phase (MigrateType 3): binlog items FAIL instead of warning.
    pub incremental: bool,
    /// `ExistingTables = fail`: a non-empty existing target table is FAILED, else WARNING.
    pub fail_on_nonempty_target_tables: bool,
    /// A major-version downgrade (e.g. MySQL 8.0 → 5.7) is a WARNING instead of FAILED.
    pub allow_downgrade: bool,
    /// Expected duration of the full load, for the binlog retention item.
    pub estimated_load_seconds: Option<u64>,
    /// `Ferry.TargetBinlog`: false means Ferry's target sessions set `sql_log_bin = 0`, which
    /// needs a privilege the `target_sql_log_bin` item checks.
    pub target_binlog: bool,
    /// `Ferry.SnapshotMode`: `lock` needs RELOAD on the source; `lockless` does not; `auto` needs
    /// it on MySQL only (MariaDB goes lock-free when the lock is refused).
    pub snapshot_mode: ferry_core::SnapshotMode,
    /// `Ferry.Accounts` / `IsOverrideRoot`: the accounts the job copies (`None`: none).
    pub accounts: Option<AccountsCheck>,
    /// `DstInfo.ReadOnly = 1`: Ferry's target account must set `read_only` and write past it.
    pub target_read_only: bool,
}

/// What a job asks of accounts (the `accounts` item plans them as the job will).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsCheck {
    /// `Ferry.Accounts = copy`.
    pub copy: bool,
    /// `MigrateOption.IsOverrideRoot = 1`.
    pub override_root: bool,
    /// The job's name: accounts it created on an earlier run are its own, not refused.
    pub job: String,
}

/// The decision of one item: status and message (id, group and title come from the registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub status: CheckStatus,
    pub message: String,
}

impl Verdict {
    pub(crate) fn passed(message: impl Into<String>) -> Self {
        Verdict {
            status: CheckStatus::Passed,
            message: message.into(),
        }
    }
    pub(crate) fn warning(message: impl Into<String>) -> Self {
        Verdict {
            status: CheckStatus::Warning,
            message: message.into(),
        }
    }
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Verdict {
            status: CheckStatus::Failed,
            message: message.into(),
        }
    }
    /// FAILED when `fail`, else WARNING.
    pub(crate) fn bad(fail: bool, message: impl Into<String>) -> Self {
        if fail {
            Self::failed(message)
        } else {
            Self::warning(message)
        }
    }
}

/// Why an item could not be judged (its facts are missing); the item is FAILED with this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skip(pub String);

/// What a judge sees: the input and the gathered facts.
pub(crate) struct Ctx<'a> {
    pub input: &'a CheckInput,
    pub facts: &'a Facts,
}

impl Ctx<'_> {
    pub(crate) fn source(&self) -> Result<&ServerFacts, Skip> {
        self.facts.source.as_ref().map_err(Clone::clone)
    }
    pub(crate) fn target(&self) -> Result<&ServerFacts, Skip> {
        self.facts.target.as_ref().map_err(Clone::clone)
    }
    pub(crate) fn objects(&self) -> Result<&SourceObjects, Skip> {
        self.facts.objects.as_ref().map_err(Clone::clone)
    }
    pub(crate) fn target_objects(&self) -> Result<&TargetObjects, Skip> {
        self.facts.target_objects.as_ref().map_err(Clone::clone)
    }
}

/// One entry of the item registry.
pub(crate) struct ItemDef {
    pub id: &'static str,
    pub group: &'static str,
    pub name: &'static str,
    pub judge: fn(&Ctx<'_>) -> Result<Verdict, Skip>,
}

macro_rules! item {
    ($id:literal, $group:literal, $name:literal, $judge:path) => {
        ItemDef {
            id: $id,
            group: $group,
            name: $name,
            judge: $judge,
        }
    };
}

/// Every item, in report order. Ids are stable: the API and the CLI expose them.
pub(crate) const REGISTRY: &[ItemDef] = &[
    item!(
        "source_connection",
        "connectivity",
        "Source database connection",
        connectivity::source_connection
    ),
    item!(
        "target_connection",
        "connectivity",
        "Target database connection",
        connectivity::target_connection
    ),
    item!(
        "source_version_supported",
        "version",
        "Source version supported",
        version::source_supported
    ),
    item!(
        "target_version_supported",
        "version",
        "Target version supported",
        version::target_supported
    ),
    item!(
        "version_direction",
        "version",
        "Source → target version pair",
        version::direction
    ),
    item!(
        "source_privileges_full",
        "privileges",
        "Source account privileges (structure and full data)",
        privileges::source_full
    ),
    item!(
        "source_routine_bodies",
        "privileges",
        "Source routines and their bodies visible to the account",
        privileges::routine_bodies
    ),
    item!(
        "source_privileges_incremental",
        "privileges",
        "Source account privileges (incremental)",
        privileges::source_incremental
    ),
    item!(
        "target_privileges",
        "privileges",
        "Target account privileges",
        privileges::target
    ),
    item!(
        "target_sql_log_bin",
        "privileges",
        "Target account may set sql_log_bin (Ferry.TargetBinlog = false)",
        target_rules::sql_log_bin
    ),
    item!(
        "target_read_only",
        "privileges",
        "Target account may keep the target read-only (DstInfo.ReadOnly = 1)",
        accounts::read_only
    ),
    item!(
        "source_log_bin",
        "binlog",
        "Source binary log enabled",
        binlog::log_bin
    ),
    item!(
        "source_binlog_format",
        "binlog",
        "Source binlog_format = ROW",
        binlog::format
    ),
    item!(
        "source_binlog_row_image",
        "binlog",
        "Source binlog_row_image = FULL",
        binlog::row_image
    ),
    item!(
        "source_binlog_checksum",
        "binlog",
        "Source binlog_checksum NONE or CRC32",
        binlog::checksum
    ),
    item!(
        "source_log_bin_compress",
        "binlog",
        "Source binlog compression off (MariaDB)",
        binlog::log_bin_compress
    ),
    item!(
        "source_binlog_row_value_options",
        "binlog",
        "Source binlog_row_value_options empty (MySQL)",
        binlog::row_value_options
    ),
    item!(
        "source_binlog_transaction_compression",
        "binlog",
        "Source binlog transaction compression (MySQL)",
        binlog::transaction_compression
    ),
    item!(
        "source_binlog_retention",
        "binlog",
        "Source binlog retention",
        binlog::retention
    ),
    item!(
        "source_server_id",
        "binlog",
        "Source server_id set and distinct",
        binlog::server_id
    ),
    item!(
        "server_uuid_distinct",
        "binlog",
        "server_uuid differs between source and target",
        binlog::server_uuid
    ),
    item!(
        "source_gtid_mode",
        "binlog",
        "Source GTID mode",
        binlog::gtid_mode
    ),
    item!(
        "lower_case_table_names",
        "compatibility",
        "lower_case_table_names compatible",
        compatibility::lower_case_table_names
    ),
    item!(
        "charsets_collations",
        "compatibility",
        "Character sets and collations available on the target",
        compatibility::charsets_collations
    ),
    item!(
        "mysql_only_ddl",
        "compatibility",
        "MySQL-only table DDL towards a MariaDB target",
        mysql_ddl::mysql_only_ddl
    ),
    item!(
        "server_charset_consistency",
        "compatibility",
        "Server default character set and collation",
        compatibility::server_charset
    ),
    item!(
        "sql_mode",
        "compatibility",
        "sql_mode differences",
        compatibility::sql_mode
    ),
    item!(
        "innodb_strict_mode",
        "compatibility",
        "innodb_strict_mode consistency",
        compatibility::innodb_strict_mode
    ),
    item!(
        "target_max_allowed_packet",
        "compatibility",
        "Target max_allowed_packet large enough",
        compatibility::max_allowed_packet
    ),
    item!(
        "time_zone",
        "compatibility",
        "Time zone consistency",
        compatibility::time_zone
    ),
    item!(
        "clock_skew",
        "compatibility",
        "Clock difference between the servers",
        compatibility::clock_skew
    ),
    item!(
        "source_objects_exist",
        "objects",
        "Selected databases and tables exist on the source",
        objects::source_objects_exist
    ),
    item!(
        "target_existing_tables",
        "objects",
        "Selected tables already present on the target",
        objects::target_existing_tables
    ),
    item!(
        "tables_without_key",
        "objects",
        "Tables without a primary or unique NOT NULL key",
        objects::tables_without_key
    ),
    item!(
        "system_versioned_tables",
        "objects",
        "Target keeps the history of system-versioned tables",
        mariadb_objects::system_versioned
    ),
    item!(
        "sequences_on_target",
        "objects",
        "Target can hold the selected sequences",
        mariadb_objects::sequences
    ),
    item!(
        "target_require_primary_key",
        "objects",
        "Target accepts the tables without a primary key",
        target_rules::require_primary_key
    ),
    item!(
        "target_invisible_primary_key",
        "objects",
        "Target adds no invisible primary keys (MySQL GIPK)",
        target_rules::invisible_primary_key
    ),
    item!(
        "target_function_creators",
        "objects",
        "Target allows creating the functions and triggers (binary log on)",
        target_rules::function_creators
    ),
    item!(
        "storage_engines",
        "objects",
        "Storage engines other than InnoDB",
        objects::storage_engines
    ),
    item!(
        "foreign_keys_to_unselected",
        "objects",
        "Foreign keys referencing unselected tables",
        objects::foreign_keys_to_unselected
    ),
    item!(
        "definers_on_target",
        "objects",
        "DEFINER accounts of views, routines, triggers and events on the target",
        objects::definers_on_target
    ),
    item!(
        "object_names",
        "objects",
        "Object names Ferry and the target handle",
        objects::object_names
    ),
    item!(
        "accounts",
        "objects",
        "Accounts and roles to copy (Ferry.Accounts, IsOverrideRoot)",
        accounts::accounts
    ),
    item!(
        "object_mapping",
        "objects",
        "Ferry.DbList filters and column mappings fit the source tables",
        mapping::object_mapping
    ),
    item!(
        "target_disk_space",
        "capacity",
        "Target free disk space",
        capacity::disk_space
    ),
    item!(
        "target_local_infile",
        "capacity",
        "Target LOAD DATA LOCAL INFILE (fast load path)",
        capacity::local_infile
    ),
];

/// The item catalog: `(id, group, title)` of every item [`run_checks`] reports, in order.
pub fn catalog() -> Vec<(&'static str, &'static str, &'static str)> {
    REGISTRY.iter().map(|d| (d.id, d.group, d.name)).collect()
}

/// Runs every check item and returns one [`CheckItem`] per registry entry, in registry order.
///
/// Never fails: a check that cannot run is FAILED with the reason. `progress(done, total)` is
/// called after each gathering step and each judged item.
pub async fn run_checks(input: &CheckInput, progress: impl Fn(usize, usize) + Send + Sync) -> Vec<CheckItem> {
    let total = facts::GATHER_STEPS + REGISTRY.len();
    let facts = facts::gather(input, |done| progress(done, total)).await;
    let ctx = Ctx { input, facts: &facts };
    let mut out = Vec::with_capacity(REGISTRY.len());
    for (i, def) in REGISTRY.iter().enumerate() {
        out.push(judge_item(def, &ctx));
        progress(facts::GATHER_STEPS + i + 1, total);
    }
    out
}

fn judge_item(def: &ItemDef, ctx: &Ctx<'_>) -> CheckItem {
    let v = (def.judge)(ctx).unwrap_or_else(|Skip(reason)| Verdict::failed(reason));
    tracing::debug!(target: "ferry_check", id = def.id, status = ?v.status, "check item");
    CheckItem {
        id: def.id,
        group: def.group,
        name: def.name.to_string(),
        status: v.status,
        message: v.message,
    }
}

/// `(passed, warnings, failed)`.
pub fn summary(items: &[CheckItem]) -> (usize, usize, usize) {
    let count = |s: CheckStatus| items.iter().filter(|i| i.status == s).count();
    (
        count(CheckStatus::Passed),
        count(CheckStatus::Warning),
        count(CheckStatus::Failed),
    )
}

/// Hand-made inputs and facts for judging whole items in unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::facts::ConnInfo;

    pub(crate) fn input(incremental: bool) -> CheckInput {
        let ep = ferry_core::Endpoint::new("db.example", 3306, "ferry", ferry_core::Secret::new("x"));
        CheckInput {
            source: ep.clone(),
            target: ep,
            selection: ferry_core::Selection::whole_instance(),
            incremental,
            fail_on_nonempty_target_tables: true,
            allow_downgrade: false,
            estimated_load_seconds: None,
            target_binlog: true,
            snapshot_mode: ferry_core::SnapshotMode::Auto,
            accounts: None,
            target_read_only: false,
        }
    }

    pub(crate) fn facts(source: ServerFacts, target: ServerFacts, objects: SourceObjects) -> Facts {
        Facts {
            source_conn: Ok(ConnInfo { millis: 1, tls: None }),
            target_conn: Ok(ConnInfo { millis: 1, tls: None }),
            source: Ok(source),
            target: Ok(target),
            objects: Ok(objects),
            target_objects: Err(Skip("not gathered in this test".into())),
            accounts: None,
        }
    }

    /// Judges the item `id` of the registry.
    pub(crate) fn judge(id: &str, input: &CheckInput, facts: &Facts) -> Verdict {
        let def = REGISTRY
            .iter()
            .find(|d| d.id == id)
            .unwrap_or_else(|| panic!("no item {id}"));
        let item = judge_item(def, &Ctx { input, facts });
        Verdict {
            status: item.status,
            message: item.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn registry_ids_are_unique_snake_case_and_grouped() {
        let mut seen = BTreeSet::new();
        let groups = [
            "connectivity",
            "version",
            "privileges",
            "binlog",
            "compatibility",
            "objects",
            "capacity",
        ];
        for d in REGISTRY {
            assert!(seen.insert(d.id), "duplicate id {}", d.id);
            assert!(
                d.id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                d.id
            );
            assert!(groups.contains(&d.group), "{}: {}", d.id, d.group);
        }
        assert_eq!(catalog().len(), REGISTRY.len());
    }

    #[test]
    fn status_serializes_upper_case() {
        assert_eq!(serde_json::to_string(&CheckStatus::Passed).unwrap(), "\"PASSED\"");
        assert_eq!(
            serde_json::to_string(&CheckStatus::Warning).unwrap(),
            "\"WARNING\""
        );
        assert_eq!(serde_json::to_string(&CheckStatus::Failed).unwrap(), "\"FAILED\"");
    }

    #[test]
    fn summary_counts() {
        let item = |status| CheckItem {
            id: "x",
            group: "objects",
            name: "x".into(),
            status,
            message: String::new(),
        };
        let items = [
            item(CheckStatus::Passed),
            item(CheckStatus::Failed),
            item(CheckStatus::Warning),
            item(CheckStatus::Passed),
        ];
        assert_eq!(summary(&items), (2, 1, 1));
    }
}
