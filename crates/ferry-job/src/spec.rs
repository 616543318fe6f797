//! Job specifications: the CreateMigrateJob request (Tencent DTS API 2018-03-30 field names) as
//! JSON or TOML, and its validation into a typed [`JobSpec`].
//!
//! Extensions, all documented in `docs/job-file.md`:
//! - `SrcInfo`/`DstInfo` `User` and `Password` (Tencent's DstInfo has no credentials);
//! - `DatabaseInfo` items may rename: `NewDatabase`, and `NewTable` (a map old → new name);
//! - `Ferry.DbList` instead of `DatabaseInfo`: Alibaba's DbList grammar with row filters, column
//!   mappings and replayed change kinds ([`crate::dblist`]);
//! - a `Ferry` object with Ferry's own settings (threads, chunk size, write method, policy for
//!   existing target tables, index timing, definer handling, rate limits, timeouts).
//!
//! Unknown fields are refused (a typo must not silently become a default); every error names the
//! field and says how to fix it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use ferry_core::progress::{RetryWindow, DEFAULT_RETRY_WINDOW_SECS};
use ferry_core::selection::{is_system_schema, DbSelection, ObjectSelection, TableSelection};
use ferry_core::tls::{KeyPem, Pem};
use ferry_core::{Endpoint, Position, Secret, Selection, SnapshotMode, TlsConfig, TlsMode};
use ferry_load::WriteMethod;
use ferry_replay::apply::{ConflictPolicy, DdlPolicy};
use ferry_schema::{DefinerPolicy, ExistingTablePolicy, IndexTiming, StructureOptions};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dblist::DbListField;
use crate::fields::{self, Source};
use crate::job_fields;

/// A job specification that failed to parse or validate: which field, what is wrong, how to fix it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The field path, e.g. `MigrateOption.MigrateType` (or the file when it does not parse).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

pub(crate) fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// `MigrateOption.ConsistencyParams`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ConsistencyParams {
    pub select_rows_per_table: Option<i64>,
    pub tables_select_all: Option<i64>,
    pub tables_select_count: Option<i64>,
}

/// `MigrateOption`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MigrateOptionRequest {
    pub run_mode: Option<i64>,
    pub expect_time: Option<String>,
    pub migrate_type: Option<i64>,
    pub migrate_object: Option<i64>,
    pub consistency_type: Option<i64>,
    pub is_override_root: Option<i64>,
    pub extern_params: Option<String>,
    pub consistency_params: Option<ConsistencyParams>,
}

/// `SrcInfo` / `DstInfo`: Tencent's fields (cloud-only ones accepted and ignored) plus `User`/`Password`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct EndpointRequest {
    pub ip: Option<String>,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub access_key: Option<String>,
    pub rds_instance_id: Option<String>,
    pub cvm_instance_id: Option<String>,
    pub uniq_dcg_id: Option<String>,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub uniq_vpn_gw_id: Option<String>,
    pub instance_id: Option<String>,
    pub region: Option<String>,
    pub supplier: Option<String>,
    pub read_only: Option<i64>,
}

/// One `DatabaseInfo` item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DatabaseInfoItem {
    pub database: String,
    /// Tencent's three-level form; MySQL has no schemas, so it must be absent.
    pub schema: Option<String>,
    pub table: Option<Vec<String>>,
    /// Extension: the database's name on the target.
    pub new_database: Option<String>,
    /// Extension: tables renamed on the target, old name → new name.
    pub new_table: Option<BTreeMap<String, String>>,
}

/// `DatabaseInfo`: Tencent sends a JSON array inside a string; a plain array is accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DatabaseInfoField {
    Text(String),
    List(Vec<DatabaseInfoItem>),
}

/// Ferry's own settings (the `Ferry` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct FerryOptionsRequest {
    pub threads: Option<i64>,
    pub chunk_rows: Option<i64>,
    pub write_method: Option<String>,
    pub existing_tables: Option<String>,
    pub index_timing: Option<String>,
    pub definer: Option<String>,
    pub rows_per_second: Option<i64>,
    pub bytes_per_second: Option<i64>,
    pub lock_timeout_seconds: Option<i64>,
    pub connect_timeout_seconds: Option<i64>,
    pub target_binlog: Option<bool>,
    pub ddl_policy: Option<String>,
    pub conflict_policy: Option<String>,
    pub apply_workers: Option<i64>,
    pub retry_window_seconds: Option<i64>,
    /// TLS to the source (`Ferry.SourceTls`).
    pub source_tls: Option<TlsRequest>,
    /// How the full load's snapshot is taken (`Ferry.SnapshotMode`: auto, lock, lockless).
    pub snapshot_mode: Option<String>,
    /// TLS to the target (`Ferry.TargetTls`).
    pub target_tls: Option<TlsRequest>,
    /// Where an incremental-only job starts reading the source's binlog
    /// (`Ferry.StartPosition`).
    pub start_position: Option<StartPositionRequest>,
    /// Continuous verification during the incremental phase (`Ferry.ContinuousVerify`).
    pub continuous_verify: Option<ContinuousVerifyRequest>,
    /// The objects in Alibaba's DbList grammar, with row filters, column mappings and
    /// replayed change kinds (`Ferry.DbList`; instead of `DatabaseInfo`).
    pub db_list: Option<DbListField>,
    /// Whether the structure phase copies the users and roles of the selected objects
    /// (`Ferry.Accounts`: none, copy).
    pub accounts: Option<String>,
}

/// `Ferry.ContinuousVerify`: `{"RowsPerSecond": 20000, "FullRescanSeconds": 3600}`. While a
/// MigrateType 3 job with ConsistencyType 2 replays, chunk digests are kept on the target and the
/// chunks the replay changes are digested again in the background at `RowsPerSecond` (per side;
/// 0 or absent: off); every `FullRescanSeconds` (0 or absent: never after the first pass) every
/// chunk is digested again, which finds writes on the target no replayed event carried. The
/// verification at cut-over then digests only the chunks changed since their last check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ContinuousVerifyRequest {
    pub rows_per_second: Option<i64>,
    pub full_rescan_seconds: Option<i64>,
}

/// A validated `Ferry.ContinuousVerify` (on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuousVerify {
    /// Rows/s digested per side by the background passes.
    pub rows_per_second: u64,
    /// Period of the full rescan; `None`: only the first full pass.
    pub full_rescan: Option<Duration>,
}

fn continuous_verify(
    migrate_type: MigrateType,
    consistency_type: i64,
    c: Option<&ContinuousVerifyRequest>,
) -> Result<Option<ContinuousVerify>, SpecError> {
    const F: &str = "Ferry.ContinuousVerify";
    let Some(c) = c else { return Ok(None) };
    let rate = range(&format!("{F}.RowsPerSecond"), c.rows_per_second, 0, 0, i64::MAX)? as u64;
    let rescan = range(
        &format!("{F}.FullRescanSeconds"),
        c.full_rescan_seconds,
        0,
        0,
        30 * 86_400,
    )? as u64;
    if rate == 0 {
        return Ok(None);
    }
    if migrate_type != MigrateType::FullIncremental || consistency_type != 2 {
        return Err(err(
            F,
            "needs MigrateOption.MigrateType 3 (it verifies while the replay runs) and \
             MigrateOption.ConsistencyType 2 (a full verification at cut-over); set them, or remove it",
        ));
    }
    Ok(Some(ContinuousVerify {
        rows_per_second: rate,
        full_rescan: (rescan > 0).then(|| Duration::from_secs(rescan)),
    }))
}

/// `Ferry.StartPosition`: `{"File": "mysql-bin.000003", "Offset": 1234}` or
/// `{"Time": <UNIX seconds>}` (the first transaction at or after it), or `{"Gtid": "<GTID state>"}`
/// (a MySQL GTID set or a MariaDB GTID position: the first transaction it does not contain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct StartPositionRequest {
    pub file: Option<String>,
    pub offset: Option<u64>,
    pub gtid: Option<String>,
    pub time: Option<u64>,
}

/// A validated `Ferry.StartPosition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// A binlog file and offset.
    FilePos { file: String, offset: u64 },
    /// The first transaction at or after this UNIX time.
    Time(u64),
    /// After this GTID state (a MySQL GTID set or a MariaDB GTID position): transactions it
    /// contains are not replayed.
    Gtid(Position),
}

fn start_position(
    migrate_type: MigrateType,
    sp: Option<&StartPositionRequest>,
) -> Result<Option<StartFrom>, SpecError> {
    const F: &str = "Ferry.StartPosition";
    let Some(sp) = sp else { return Ok(None) };
    if migrate_type != MigrateType::FullIncremental {
        return Err(err(
            F,
            "is only valid with MigrateOption.MigrateType 3: the job then replays the binlog from \
             there and copies no structure or data; remove it or set MigrateType 3",
        ));
    }
    if let Some(g) = &sp.gtid {
        if sp.file.is_some() || sp.offset.is_some() || sp.time.is_some() {
            return Err(err(F, "give one of File/Offset, Time or Gtid"));
        }
        return match g.parse::<Position>() {
            Ok(p @ (Position::MysqlGtidSet { .. } | Position::MariaGtidPos { .. })) => {
                Ok(Some(StartFrom::Gtid(p)))
            }
            _ => Err(err(
                &format!("{F}.Gtid"),
                "must be a MySQL GTID set (uuid:1-100,…) or a MariaDB GTID position (domain-server-seq,…): \
                 the state the target already holds; replay starts with the first transaction it does not contain",
            )),
        };
    }
    match (&sp.file, sp.offset, sp.time) {
        (Some(f), offset, None) => {
            let f = f.trim();
            if f.is_empty() || f.contains(['/', '\\', '\'']) || f.chars().any(|c| c.is_control()) {
                return Err(err(
                    &format!("{F}.File"),
                    "must be a binary log file name as SHOW BINARY LOGS lists it, e.g. mysql-bin.000003",
                ));
            }
            let offset = offset.unwrap_or(4);
            if offset < 4 {
                return Err(err(
                    &format!("{F}.Offset"),
                    "must be at least 4 (the first event of a binlog file)",
                ));
            }
            Ok(Some(StartFrom::FilePos {
                file: f.to_string(),
                offset,
            }))
        }
        (None, None, Some(t)) => Ok(Some(StartFrom::Time(t))),
        (None, Some(_), _) => Err(err(&format!("{F}.Offset"), "needs File")),
        (Some(_), _, Some(_)) => Err(err(F, "give either File/Offset or Time, not both")),
        (None, None, None) => Err(err(
            F,
            "is empty: give {\"File\": …, \"Offset\": …} or {\"Time\": <UNIX seconds>}",
        )),
    }
}

/// `Ferry.SourceTls` / `Ferry.TargetTls`: what `mysql --ssl-mode`, `--ssl-ca`, `--ssl-cert` and
/// `--ssl-key` say, inline (PEM text) or as files on the machine that runs Ferry. `Key` is a
/// secret: it serializes empty (API responses, the job list) and never prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TlsRequest {
    pub mode: Option<String>,
    pub ca: Option<String>,
    pub ca_file: Option<String>,
    pub cert: Option<String>,
    pub cert_file: Option<String>,
    pub key: Option<Secret>,
    pub key_file: Option<String>,
}

/// The CreateMigrateJob request, as written in a job file or sent to the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MigrateJobRequest {
    pub job_name: Option<String>,
    pub migrate_option: Option<MigrateOptionRequest>,
    pub src_database_type: Option<String>,
    pub src_access_type: Option<String>,
    pub src_info: Option<EndpointRequest>,
    pub dst_database_type: Option<String>,
    pub dst_access_type: Option<String>,
    pub dst_info: Option<EndpointRequest>,
    pub database_info: Option<DatabaseInfoField>,
    pub ferry: Option<FerryOptionsRequest>,
}

/// What a job does (`MigrateOption.MigrateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrateType {
    /// 1: structure only.
    Structure,
    /// 2: structure and full data.
    Full,
    /// 3: structure, full data and incremental.
    FullIncremental,
}

/// Ferry's settings, validated.
#[derive(Debug, Clone)]
pub struct FerryOptions {
    pub threads: usize,
    pub chunk_rows: u64,
    pub write_method: WriteMethod,
    pub existing_tables: ExistingTablePolicy,
    pub structure: StructureOptions,
    pub rows_per_second: u64,
    pub bytes_per_second: u64,
    pub lock_timeout: Duration,
    /// Ferry's writes go to the target's binary log (`Ferry.TargetBinlog`, default true).
    pub target_binlog: bool,
    /// Which DDL the incremental phase replays (`Ferry.DdlPolicy`).
    pub ddl_policy: DdlPolicy,
    /// What the incremental phase does when the target has diverged (`Ferry.ConflictPolicy`).
    pub conflict_policy: ConflictPolicy,
    /// Apply workers of the incremental phase (`Ferry.ApplyWorkers`, 1–64); `None`: the
    /// replay's default (`FERRY_REPLAY_WORKERS`, else 4).
    pub apply_workers: Option<usize>,
    /// How long one outage (transient failures without progress in between) of the full load,
    /// the incremental replay or the verification is retried before the job fails with the last
    /// error (`Ferry.RetryWindowSeconds`, default 3600; 0: retried until stopped).
    pub retry_window: RetryWindow,
    /// How the full load's consistent snapshot is taken (`Ferry.SnapshotMode`, default auto).
    pub snapshot_mode: SnapshotMode,
    /// `Ferry.StartPosition`: an incremental-only job replaying from there (no structure,
    /// no full data).
    pub start_position: Option<StartFrom>,
    /// `Ferry.ContinuousVerify`, when on.
    pub continuous_verify: Option<ContinuousVerify>,
    /// `Ferry.Accounts = copy`: the structure phase copies the users and roles that hold
    /// privileges on the selected objects (`ferry_schema::accounts`).
    pub copy_accounts: bool,
    /// `MigrateOption.IsOverrideRoot = 1`: the target's root accounts take the source root's
    /// authentication and grants.
    pub override_root: bool,
    /// `DstInfo.ReadOnly = 1`: the target is read-only for everyone but Ferry while the job runs
    /// (`crate::protect`).
    pub target_read_only: bool,
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub migrate_type: MigrateType,
    /// `RunMode` 2: start at this UNIX time (UTC).
    pub start_at: Option<u64>,
    pub consistency_type: i64,
    pub source: Endpoint,
    pub target: Endpoint,
    pub selection: Selection,
    pub options: FerryOptions,
    /// The request as given (for the API's responses; passwords serialize empty).
    pub request: MigrateJobRequest,
}

impl MigrateJobRequest {
    /// Parses a job file: TOML when the name ends in `.toml`, JSON otherwise.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(&file, format!("cannot read the job file: {e}")))?;
        let parsed = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
            Self::from_toml(&text)
        } else {
            Self::from_json(&text)
        };
        // The file, and the field when one is at fault (a broken field rule).
        parsed.map_err(|e| match e.field.as_str() {
            "job" => err(&file, e.message),
            field => err(&file, format!("{field} {}", e.message)),
        })
    }

    /// Parses JSON.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err("job", format!("not a valid job (JSON): {e}")))?;
        Self::from_value(v, "JSON")
    }

    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let v: toml::Value = toml::from_str(text)
            .map_err(|e| err("job", format!("not a valid job (TOML): {}", e.to_string().trim())))?;
        let v = serde_json::to_value(v).map_err(|e| err("job", format!("not a valid job (TOML): {e}")))?;
        Self::from_value(v, "TOML")
    }

    /// A job file's object, judged by the field rules ([`crate::job_fields`]) and read.
    fn from_value(v: serde_json::Value, format: &str) -> Result<Self, SpecError> {
        let serde_json::Value::Object(m) = v else {
            return Err(err(
                "job",
                format!("not a valid job ({format}): expected an object"),
            ));
        };
        let checked = fields::check(job_fields::CREATE_JOB, &m, Source::JobFile).map_err(|e| SpecError {
            field: e.path,
            message: e.message,
        })?;
        serde_json::from_value(serde_json::Value::Object(checked))
            .map_err(|e| err("job", format!("not a valid job ({format}): {e}")))
    }

    /// Validates into a [`JobSpec`].
    pub fn validate(&self) -> Result<JobSpec, SpecError> {
        let name = self
            .job_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| {
                err(
                    "JobName",
                    "is required: give the job a name, e.g. \"JobName\": \"shop-move\"",
                )
            })?;
        if name.len() > 128 || name.chars().any(|c| c.is_control()) {
            return Err(err("JobName", "must be at most 128 printable characters"));
        }
        let mo = self
            .migrate_option
            .as_ref()
            .ok_or_else(|| err("MigrateOption", "is required (RunMode, MigrateType, …)"))?;
        let migrate_type = match mo.migrate_type {
            Some(1) => MigrateType::Structure,
            Some(2) => MigrateType::Full,
            Some(3) => MigrateType::FullIncremental,
            None => {
                return Err(err(
                    "MigrateOption.MigrateType",
                    "is required: 1 structure, 2 structure + full data, 3 full + incremental",
                ))
            }
            Some(v) => {
                return Err(err(
                    "MigrateOption.MigrateType",
                    format!(
                        "{v} is not one of 1 (structure), 2 (structure + full data), 3 (full + incremental)"
                    ),
                ))
            }
        };
        let start_at = match mo.run_mode {
            None | Some(1) => None,
            Some(2) => {
                let t = mo.expect_time.as_deref().ok_or_else(|| {
                    err(
                        "MigrateOption.ExpectTime",
                        "is required when RunMode is 2 (format \"yyyy-mm-dd hh:mm:ss\", UTC)",
                    )
                })?;
                Some(parse_expect_time(t).ok_or_else(|| {
                    err(
                        "MigrateOption.ExpectTime",
                        format!("{t:?} is not a time in the format \"yyyy-mm-dd hh:mm:ss\""),
                    )
                })?)
            }
            Some(v) => {
                return Err(err(
                    "MigrateOption.RunMode",
                    format!("{v} is not one of 1 (now), 2 (at ExpectTime)"),
                ))
            }
        };
        let override_root = match mo.is_override_root.unwrap_or(0) {
            0 => false,
            1 => true,
            v => {
                return Err(err(
                    "MigrateOption.IsOverrideRoot",
                    format!(
                    "{v} is not one of 0 (no), 1 (overwrite the target's root accounts with the source's)"
                ),
                ))
            }
        };
        if self.src_info.as_ref().and_then(|e| e.read_only).unwrap_or(0) != 0 {
            return Err(err(
                "SrcInfo.ReadOnly",
                "1 (set the source read-only during the migration) is not supported: Ferry never \
                 changes the source; set it to 0 (DstInfo.ReadOnly protects the target)",
            ));
        }
        let target_read_only = match self.dst_info.as_ref().and_then(|e| e.read_only).unwrap_or(0) {
            0 => false,
            1 => true,
            v => {
                return Err(err(
                    "DstInfo.ReadOnly",
                    format!("{v} is not one of 0 (no), 1 (the target is read-only for everyone but Ferry during the job)"),
                ))
            }
        };
        // Ranges and choices (ConsistencyType, ConsistencyParams, the database types, ports, …)
        // were judged by the field rules when the request was read (`crate::job_fields`).
        let consistency_type = mo.consistency_type.unwrap_or(1);
        let ferry = self.ferry.clone().unwrap_or_default();
        let source = endpoint("SrcInfo", self.src_info.as_ref())?
            .with_tls(tls_config("Ferry.SourceTls", ferry.source_tls.as_ref())?);
        let target = endpoint("DstInfo", self.dst_info.as_ref())?
            .with_tls(tls_config("Ferry.TargetTls", ferry.target_tls.as_ref())?);
        let selection = self.selection(mo.migrate_object)?;
        let mut options = ferry_options(self.ferry.as_ref())?;
        options.start_position = start_position(migrate_type, ferry.start_position.as_ref())?;
        options.override_root = override_root;
        options.target_read_only = target_read_only;
        if (options.copy_accounts || override_root) && options.start_position.is_some() {
            return Err(err(
                if override_root {
                    "MigrateOption.IsOverrideRoot"
                } else {
                    "Ferry.Accounts"
                },
                "accounts are copied by the structure phase, which a job with Ferry.StartPosition does \
                 not run: remove it, or copy the accounts with a structure job first",
            ));
        }
        options.continuous_verify =
            continuous_verify(migrate_type, consistency_type, ferry.continuous_verify.as_ref())?;
        Ok(JobSpec {
            name,
            migrate_type,
            start_at,
            consistency_type,
            source,
            target,
            selection,
            options,
            request: self.clone(),
        })
    }

    fn selection(&self, migrate_object: Option<i64>) -> Result<Selection, SpecError> {
        if let Some(list) = self.ferry.as_ref().and_then(|f| f.db_list.as_ref()) {
            if self.database_info.is_some() {
                return Err(err(
                    "DatabaseInfo, Ferry.DbList",
                    "both select the objects: give one of them",
                ));
            }
            if migrate_object.is_some_and(|m| m != 2) {
                return Err(err(
                    "MigrateOption.MigrateObject",
                    "must be 2 (or absent) with Ferry.DbList, which lists the databases and tables",
                ));
            }
            return list.selection();
        }
        let items = match &self.database_info {
            None => Vec::new(),
            Some(DatabaseInfoField::List(l)) => l.clone(),
            Some(DatabaseInfoField::Text(t)) if t.trim().is_empty() => Vec::new(),
            Some(DatabaseInfoField::Text(t)) => serde_json::from_str(t).map_err(|e| {
                err(
                    "DatabaseInfo",
                    format!("is not a valid JSON list of {{\"Database\": …, \"Table\": […]}}: {e}"),
                )
            })?,
        };
        let whole = match migrate_object {
            Some(1) => true,
            Some(2) => false,
            None => items.is_empty(),
            Some(v) => {
                return Err(err(
                    "MigrateOption.MigrateObject",
                    format!("{v} is not one of 1 (whole instance), 2 (databases and tables in DatabaseInfo)"),
                ))
            }
        };
        if whole {
            return Ok(Selection::whole_instance());
        }
        if items.is_empty() {
            return Err(err(
                "DatabaseInfo",
                "is required when MigrateObject is 2: list the databases, e.g. [{\"Database\": \"shop\"}]",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut targets = BTreeSet::new();
        let mut dbs = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let f = |s: &str| format!("DatabaseInfo[{i}].{s}");
            check_name(&f("Database"), &it.database)?;
            if is_system_schema(&it.database) {
                return Err(err(
                    &f("Database"),
                    format!("{} is a system schema and cannot be migrated", it.database),
                ));
            }
            if it.schema.is_some() {
                return Err(err(
                    &f("Schema"),
                    "MySQL has no schemas inside databases: remove Schema",
                ));
            }
            if !seen.insert(it.database.clone()) {
                return Err(err(&f("Database"), format!("{} is listed twice", it.database)));
            }
            let target = it.new_database.clone().unwrap_or_else(|| it.database.clone());
            check_name(&f("NewDatabase"), &target)?;
            if is_system_schema(&target) || !targets.insert(target.clone()) {
                return Err(err(
                    &f("NewDatabase"),
                    format!("{target} is a system schema or already the target of another database"),
                ));
            }
            let renames = it.new_table.clone().unwrap_or_default();
            for (old, new) in &renames {
                check_name(&f(&format!("NewTable.{old}")), new)?;
                if let Some(ts) = &it.table {
                    if !ts.contains(old) {
                        return Err(err(
                            &f("NewTable"),
                            format!("renames {old}, which is not in Table"),
                        ));
                    }
                }
            }
            let new_names: BTreeSet<&String> = renames.values().collect();
            if new_names.len() != renames.len() {
                return Err(err(&f("NewTable"), "two tables are renamed to the same name"));
            }
            let tables = match &it.table {
                None => None,
                Some(ts) if ts.is_empty() => None,
                Some(ts) => {
                    let mut uniq = BTreeSet::new();
                    let mut out = Vec::new();
                    for t in ts {
                        check_name(&f("Table"), t)?;
                        if !uniq.insert(t) {
                            return Err(err(&f("Table"), format!("{t} is listed twice")));
                        }
                        out.push(TableSelection {
                            name: t.clone(),
                            target: renames.get(t).cloned().unwrap_or_else(|| t.clone()),
                        });
                    }
                    Some(out)
                }
            };
            let table_renames = if tables.is_none() {
                renames
            } else {
                BTreeMap::new()
            };
            dbs.push(DbSelection {
                name: it.database.clone(),
                target,
                tables,
                table_renames,
            });
        }
        Ok(Selection {
            mapping: Default::default(),
            objects: ObjectSelection::Databases(dbs),
        })
    }
}

pub(crate) fn check_name(field: &str, name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name.chars().count() > 64 || name.ends_with(' ') || name.contains('\0') {
        return Err(err(
            field,
            format!("{name:?} is not a valid MySQL name (1 to 64 characters, no trailing space)"),
        ));
    }
    Ok(())
}

fn endpoint(field: &str, e: Option<&EndpointRequest>) -> Result<Endpoint, SpecError> {
    let e = e.ok_or_else(|| {
        err(
            field,
            "is required: {\"Ip\": …, \"Port\": …, \"User\": …, \"Password\": …}",
        )
    })?;
    let host = e.ip.clone().filter(|h| !h.trim().is_empty()).ok_or_else(|| {
        err(
            &format!("{field}.Ip"),
            "is required: the server's host name or IP address",
        )
    })?;
    let port = match e.port {
        None => 3306,
        // 1..=65535 by the field rules.
        Some(p) => {
            u16::try_from(p).map_err(|_| err(&format!("{field}.Port"), format!("{p} is not a TCP port")))?
        }
    };
    let user = e.user.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
        err(
            &format!("{field}.User"),
            "is required: the account Ferry logs in with",
        )
    })?;
    Ok(Endpoint::new(
        host,
        port,
        user,
        e.password.clone().unwrap_or_default(),
    ))
}

/// Validates `Ferry.SourceTls` / `Ferry.TargetTls`.
pub fn tls_config(field: &str, t: Option<&TlsRequest>) -> Result<TlsConfig, SpecError> {
    let mut cfg = TlsConfig {
        field: field.to_string(),
        ..TlsConfig::default()
    };
    let Some(t) = t else { return Ok(cfg) };
    if let Some(m) = &t.mode {
        cfg.mode = TlsMode::parse(m).ok_or_else(|| {
            err(
                &format!("{field}.Mode"),
                format!(
                    "{m:?} is not one of disabled, preferred, required, verify_ca, verify_identity \
                     (what mysql --ssl-mode means)"
                ),
            )
        })?;
    }
    let pem = |name: &str, text: &Option<String>, file: &Option<String>, marker: &str| match (
        text.as_deref().filter(|t| !t.trim().is_empty()),
        file.as_deref().filter(|f| !f.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(err(
            &format!("{field}.{name}"),
            format!("give either {name} (PEM text) or {name}File (a path), not both"),
        )),
        (Some(t), None) => {
            if !t.contains(marker) {
                return Err(err(
                    &format!("{field}.{name}"),
                    format!("is not PEM text: expected a \"{marker}\" block"),
                ));
            }
            Ok(Some(Pem::Text(t.to_string())))
        }
        (None, Some(f)) => {
            let p = std::path::PathBuf::from(f);
            std::fs::metadata(&p).map_err(|e| {
                err(
                    &format!("{field}.{name}File"),
                    format!("cannot read {f} on the machine that runs Ferry: {e}"),
                )
            })?;
            Ok(Some(Pem::File(p)))
        }
        (None, None) => Ok(None),
    };
    cfg.ca = pem("Ca", &t.ca, &t.ca_file, "-----BEGIN CERTIFICATE-----")?;
    cfg.cert = pem("Cert", &t.cert, &t.cert_file, "-----BEGIN CERTIFICATE-----")?;
    let key_text = t
        .key
        .as_ref()
        .filter(|k| !k.is_empty())
        .map(|k| k.expose().to_string());
    cfg.key = match pem("Key", &key_text, &t.key_file, "PRIVATE KEY-----")? {
        Some(Pem::Text(k)) => Some(KeyPem::Text(Secret::new(k))),
        Some(Pem::File(p)) => Some(KeyPem::File(p)),
        None => None,
    };
    if cfg.cert.is_some() != cfg.key.is_some() {
        return Err(err(
            field,
            "a client certificate needs both Cert (or CertFile) and Key (or KeyFile)",
        ));
    }
    if cfg.mode == TlsMode::Disabled && (cfg.ca.is_some() || cfg.cert.is_some()) {
        return Err(err(
            &format!("{field}.Mode"),
            "is disabled, so Ca/Cert/Key would not be used: remove them or choose a mode that uses TLS",
        ));
    }
    if matches!(cfg.mode, TlsMode::Preferred | TlsMode::Required) && cfg.ca.is_some() {
        return Err(err(
            &format!("{field}.Mode"),
            format!(
                "is {}, which does not verify the server's certificate, so Ca would not be used: \
                 set Mode to verify_ca or verify_identity (or remove Ca)",
                cfg.mode.as_str()
            ),
        ));
    }
    Ok(cfg)
}

fn choice<T: Copy>(field: &str, v: Option<&str>, default: T, options: &[(&str, T)]) -> Result<T, SpecError> {
    let Some(v) = v else { return Ok(default) };
    options
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(v))
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            err(field, format!("{v:?} is not one of {}", names.join(", ")))
        })
}

fn range(field: &str, v: Option<i64>, default: i64, lo: i64, hi: i64) -> Result<i64, SpecError> {
    let v = v.unwrap_or(default);
    if v < lo || v > hi {
        return Err(err(field, format!("{v} is out of range {lo}..{hi}")));
    }
    Ok(v)
}

fn ferry_options(f: Option<&FerryOptionsRequest>) -> Result<FerryOptions, SpecError> {
    let d = FerryOptionsRequest::default();
    let f = f.unwrap_or(&d);
    let write_method = choice(
        "Ferry.WriteMethod",
        f.write_method.as_deref(),
        WriteMethod::Auto,
        &[
            ("auto", WriteMethod::Auto),
            ("load_data", WriteMethod::LoadData),
            ("insert", WriteMethod::Insert),
        ],
    )?;
    let existing_tables = choice(
        "Ferry.ExistingTables",
        f.existing_tables.as_deref(),
        ExistingTablePolicy::Fail,
        &[
            ("fail", ExistingTablePolicy::Fail),
            ("truncate", ExistingTablePolicy::Truncate),
            ("drop", ExistingTablePolicy::Drop),
            ("append", ExistingTablePolicy::Append),
        ],
    )?;
    let index_timing = choice(
        "Ferry.IndexTiming",
        f.index_timing.as_deref(),
        IndexTiming::AfterData,
        &[
            ("after_data", IndexTiming::AfterData),
            ("inline", IndexTiming::Inline),
        ],
    )?;
    let definer = choice(
        "Ferry.Definer",
        f.definer.as_deref(),
        DefinerPolicy::Keep,
        &[
            ("keep", DefinerPolicy::Keep),
            ("rewrite", DefinerPolicy::RewriteToCurrentUser),
        ],
    )?;
    Ok(FerryOptions {
        threads: range("Ferry.Threads", f.threads, 4, 1, 64)? as usize,
        chunk_rows: range("Ferry.ChunkRows", f.chunk_rows, 100_000, 1, 100_000_000)? as u64,
        write_method,
        existing_tables,
        structure: StructureOptions {
            index_timing,
            definer,
        },
        rows_per_second: range("Ferry.RowsPerSecond", f.rows_per_second, 0, 0, i64::MAX)? as u64,
        bytes_per_second: range("Ferry.BytesPerSecond", f.bytes_per_second, 0, 0, i64::MAX)? as u64,
        lock_timeout: Duration::from_secs(range(
            "Ferry.LockTimeoutSeconds",
            f.lock_timeout_seconds,
            30,
            1,
            86_400,
        )? as u64),
        target_binlog: f.target_binlog.unwrap_or(true),
        snapshot_mode: choice(
            "Ferry.SnapshotMode",
            f.snapshot_mode.as_deref(),
            SnapshotMode::Auto,
            &SnapshotMode::ALL,
        )?,
        start_position: None,
        continuous_verify: None,
        copy_accounts: choice(
            "Ferry.Accounts",
            f.accounts.as_deref(),
            false,
            &[("none", false), ("copy", true)],
        )?,
        override_root: false,
        target_read_only: false,
        retry_window: RetryWindow(Duration::from_secs(range(
            "Ferry.RetryWindowSeconds",
            f.retry_window_seconds,
            DEFAULT_RETRY_WINDOW_SECS as i64,
            0,
            30 * 86_400,
        )? as u64)),
        // 1..=64 by the field rules.
        apply_workers: f.apply_workers.map(|w| w.max(1) as usize),
        ddl_policy: choice(
            "Ferry.DdlPolicy",
            f.ddl_policy.as_deref(),
            DdlPolicy::All,
            &[
                ("all", DdlPolicy::All),
                ("none", DdlPolicy::None),
                ("all_but_drop", DdlPolicy::AllButDrop),
            ],
        )?,
        conflict_policy: choice(
            "Ferry.ConflictPolicy",
            f.conflict_policy.as_deref(),
            ConflictPolicy::Stop,
            &[
                ("stop", ConflictPolicy::Stop),
                ("overwrite", ConflictPolicy::Overwrite),
                ("ignore", ConflictPolicy::Ignore),
            ],
        )?,
    })
    .and_then(|o| {
        let _ = range(
            "Ferry.ConnectTimeoutSeconds",
            f.connect_timeout_seconds,
            10,
            1,
            3600,
        )?;
        Ok(o)
    })
}

impl JobSpec {
    /// What the pre-check needs to judge this job. `resuming`: the job already has progress on
    /// the target, so its own non-empty tables are expected there.
    pub fn check_input(&self, resuming: bool) -> ferry_check::CheckInput {
        let mut source = self.source.clone();
        let mut target = self.target.clone();
        source.connect_timeout = self.connect_timeout();
        target.connect_timeout = self.connect_timeout();
        ferry_check::CheckInput {
            source,
            target,
            selection: self.selection.clone(),
            incremental: self.migrate_type == MigrateType::FullIncremental,
            fail_on_nonempty_target_tables: !resuming
                && self.options.start_position.is_none()
                && self.options.existing_tables == ExistingTablePolicy::Fail,
            allow_downgrade: false,
            estimated_load_seconds: None,
            target_binlog: self.options.target_binlog,
            snapshot_mode: self.options.snapshot_mode,
            accounts: (self.options.copy_accounts || self.options.override_root).then(|| {
                ferry_check::AccountsCheck {
                    copy: self.options.copy_accounts,
                    override_root: self.options.override_root,
                    job: self.name.clone(),
                }
            }),
            target_read_only: self.options.target_read_only,
        }
    }

    /// The connect timeout from the request (validated).
    pub fn connect_timeout(&self) -> Duration {
        let s = self
            .request
            .ferry
            .as_ref()
            .and_then(|f| f.connect_timeout_seconds)
            .unwrap_or(10);
        Duration::from_secs(s.max(1) as u64)
    }
}

/// `yyyy-mm-dd hh:mm:ss` (UTC) as UNIX seconds.
pub fn parse_expect_time(s: &str) -> Option<u64> {
    let s = s.trim();
    let (date, time) = s.split_once(' ')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, dd], [hh, mi, ss]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    if !(1..=12).contains(m)
        || !(1..=31).contains(dd)
        || !(0..24).contains(hh)
        || !(0..60).contains(mi)
        || !(0..60).contains(ss)
    {
        return None;
    }
    let days = ferry_core::civil::days_from_civil(*y, *m as u32, *dd as u32);
    u64::try_from(days * 86_400 + hh * 3600 + mi * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "JobName": "t", "MigrateOption": {"RunMode": 1, "MigrateType": 2, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": "127.0.0.1", "Port": 3306, "User": "u", "Password": "secret-pw"},
        "DstDatabaseType": "mysql", "DstAccessType": "cdb",
        "DstInfo": {"Ip": "127.0.0.1", "Port": 3307, "User": "u", "Password": "p", "InstanceId": ""},
        "DatabaseInfo": "[{\"Database\":\"shop\",\"Table\":[\"orders\",\"users\"],\"NewDatabase\":\"shop2\",\"NewTable\":{\"orders\":\"orders2\"}},{\"Database\":\"crm\"}]",
        "Ferry": {"Threads": 8, "ExistingTables": "truncate"}
    }"#;

    #[test]
    fn parses_and_validates() {
        let spec = MigrateJobRequest::from_json(GOOD).unwrap().validate().unwrap();
        assert_eq!(spec.migrate_type, MigrateType::Full);
        assert_eq!(spec.options.threads, 8);
        assert_eq!(spec.options.existing_tables, ExistingTablePolicy::Truncate);
        assert_eq!(
            spec.options.retry_window,
            RetryWindow(Duration::from_secs(3600)),
            "Ferry.RetryWindowSeconds defaults to an hour"
        );
        assert_eq!(
            spec.selection.target_table("shop", "orders"),
            Some(("shop2".into(), "orders2".into()))
        );
        assert_eq!(
            spec.selection.target_table("shop", "users"),
            Some(("shop2".into(), "users".into()))
        );
        assert_eq!(spec.selection.target_table("shop", "other"), None);
        assert_eq!(
            spec.selection.target_table("crm", "x"),
            Some(("crm".into(), "x".into()))
        );
        assert!(!format!("{spec:?}").contains("secret-pw"));
        assert!(!serde_json::to_string(&spec.request)
            .unwrap()
            .contains("secret-pw"));
    }

    #[test]
    fn toml_is_the_same_job() {
        let toml = r#"
            JobName = "t"
            DatabaseInfo = [{ Database = "shop", Table = ["orders"] }]
            [MigrateOption]
            RunMode = 1
            MigrateType = 1
            [SrcInfo]
            Ip = "h"
            User = "u"
            [DstInfo]
            Ip = "h2"
            Port = 3307
            User = "u"
        "#;
        let spec = MigrateJobRequest::from_toml(toml).unwrap().validate().unwrap();
        assert_eq!(spec.migrate_type, MigrateType::Structure);
        assert_eq!(spec.source.port, 3306);
        assert_eq!(
            spec.selection.target_table("shop", "orders"),
            Some(("shop".into(), "orders".into()))
        );
    }

    fn field_of(json: &str) -> String {
        match MigrateJobRequest::from_json(json).and_then(|r| r.validate()) {
            Ok(_) => "ok".into(),
            Err(e) => e.field,
        }
    }

    #[test]
    fn tls_settings_parse_and_keys_stay_secret() {
        let base: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        let with = |tls: serde_json::Value| {
            let mut j = base.clone();
            j["Ferry"]["SourceTls"] = tls;
            MigrateJobRequest::from_json(&j.to_string()).and_then(|r| r.validate())
        };
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nsecret-key-bytes\n-----END PRIVATE KEY-----\n";
        let spec = with(serde_json::json!({"Mode": "verify_identity", "Ca": cert, "Cert": cert, "Key": key}))
            .unwrap();
        assert_eq!(spec.source.tls.mode, TlsMode::VerifyIdentity);
        assert_eq!(spec.source.tls.field, "Ferry.SourceTls");
        assert!(matches!(spec.source.tls.key, Some(KeyPem::Text(_))));
        assert_eq!(spec.target.tls.mode, TlsMode::Preferred, "default preferred");
        let shown = serde_json::to_string(&spec.request).unwrap();
        assert!(!shown.contains("secret-key-bytes"), "{shown}");
        assert!(!format!("{spec:?}").contains("secret-key-bytes"));
        let field = |tls| with(tls).map(|_| "ok".to_string()).unwrap_or_else(|e| e.field);
        assert_eq!(
            field(serde_json::json!({"Mode": "sometimes"})),
            "Ferry.SourceTls.Mode"
        );
        assert_eq!(field(serde_json::json!({"Mode": "VERIFY-CA"})), "ok");
        assert_eq!(
            field(serde_json::json!({"Mode": "verify_ca", "Ca": cert, "CaFile": "/x"})),
            "Ferry.SourceTls.Ca"
        );
        assert_eq!(
            field(serde_json::json!({"Mode": "verify_ca", "CaFile": "/nonexistent/ca.pem"})),
            "Ferry.SourceTls.CaFile"
        );
        assert_eq!(
            field(serde_json::json!({"Mode": "verify_ca", "Ca": "junk"})),
            "Ferry.SourceTls.Ca"
        );
        assert_eq!(
            field(serde_json::json!({"Mode": "required", "Cert": cert})),
            "Ferry.SourceTls"
        );
        assert_eq!(
            field(serde_json::json!({"Mode": "required", "Ca": cert})),
            "Ferry.SourceTls.Mode"
        );
        assert_eq!(
            field(serde_json::json!({"Mode": "disabled", "Cert": cert, "Key": key})),
            "Ferry.SourceTls.Mode"
        );
        // Unknown fields are named by their path (the field rules, `crate::job_fields`).
        assert_eq!(
            field(serde_json::json!({"Mode": "required", "Kee": key})),
            "Ferry.SourceTls.Kee"
        );
    }

    #[test]
    fn accounts_override_root_and_read_only_are_honoured_or_refused_by_name() {
        let base: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        let validate =
            |j: &serde_json::Value| MigrateJobRequest::from_json(&j.to_string()).and_then(|r| r.validate());
        let spec = validate(&base).unwrap();
        assert!(!spec.options.copy_accounts && !spec.options.override_root && !spec.options.target_read_only);
        assert!(spec.check_input(false).accounts.is_none());
        let mut j = base.clone();
        j["Ferry"]["Accounts"] = "COPY".into();
        j["MigrateOption"]["IsOverrideRoot"] = 1.into();
        j["DstInfo"]["ReadOnly"] = 1.into();
        let spec = validate(&j).unwrap();
        assert!(spec.options.copy_accounts && spec.options.override_root && spec.options.target_read_only);
        let input = spec.check_input(true);
        assert!(input.target_read_only);
        assert_eq!(
            input.accounts.map(|a| (a.copy, a.override_root)),
            Some((true, true))
        );
        let field = |j: &serde_json::Value| validate(j).map(|_| "ok".to_string()).unwrap_or_else(|e| e.field);
        let mut bad = base.clone();
        bad["Ferry"]["Accounts"] = "all".into();
        assert_eq!(field(&bad), "Ferry.Accounts");
        let mut bad = base.clone();
        bad["SrcInfo"]["ReadOnly"] = 1.into();
        assert_eq!(field(&bad), "SrcInfo.ReadOnly");
        let mut bad = base.clone();
        bad["DstInfo"]["ReadOnly"] = 2.into();
        assert_eq!(field(&bad), "DstInfo.ReadOnly");
        let mut bad = base.clone();
        bad["MigrateOption"]["IsOverrideRoot"] = 3.into();
        assert_eq!(field(&bad), "MigrateOption.IsOverrideRoot");
    }

    #[test]
    fn continuous_verify_needs_a_replay_and_a_full_verification() {
        let mut j: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        j["Ferry"]["ContinuousVerify"] = serde_json::json!({"RowsPerSecond": 1000, "FullRescanSeconds": 60});
        // MigrateType 2, ConsistencyType 5: refused by name.
        assert_eq!(field_of(&j.to_string()), "Ferry.ContinuousVerify");
        j["MigrateOption"]["MigrateType"] = 3.into();
        j["MigrateOption"]["ConsistencyType"] = 2.into();
        let spec = MigrateJobRequest::from_json(&j.to_string())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(
            spec.options.continuous_verify,
            Some(ContinuousVerify {
                rows_per_second: 1000,
                full_rescan: Some(Duration::from_secs(60)),
            })
        );
        j["Ferry"]["ContinuousVerify"]["FullRescanSeconds"] = (-1).into();
        assert_eq!(
            field_of(&j.to_string()),
            "Ferry.ContinuousVerify.FullRescanSeconds"
        );
        // RowsPerSecond 0: off.
        j["Ferry"]["ContinuousVerify"] = serde_json::json!({"RowsPerSecond": 0});
        let spec = MigrateJobRequest::from_json(&j.to_string())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(spec.options.continuous_verify, None);
    }

    #[test]
    fn errors_name_the_field() {
        let base: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        let with = |path: &[&str], v: serde_json::Value| {
            let mut j = base.clone();
            let mut cur = &mut j;
            for p in &path[..path.len() - 1] {
                cur = cur.get_mut(*p).unwrap();
            }
            cur[path[path.len() - 1]] = v;
            field_of(&j.to_string())
        };
        assert_eq!(
            with(&["MigrateOption", "MigrateType"], 7.into()),
            "MigrateOption.MigrateType"
        );
        assert_eq!(with(&["SrcInfo", "Port"], 70000.into()), "SrcInfo.Port");
        assert_eq!(with(&["DstInfo", "Ip"], "".into()), "DstInfo.Ip");
        assert_eq!(
            with(&["Ferry", "ExistingTables"], "wipe".into()),
            "Ferry.ExistingTables"
        );
        assert_eq!(with(&["Ferry", "Threads"], 0.into()), "Ferry.Threads");
        assert_eq!(
            with(&["Ferry", "RetryWindowSeconds"], (-1).into()),
            "Ferry.RetryWindowSeconds"
        );
        assert_eq!(with(&["Ferry", "RetryWindowSeconds"], 0.into()), "ok");
        assert_eq!(with(&["Ferry", "DdlPolicy"], "some".into()), "Ferry.DdlPolicy");
        assert_eq!(
            with(&["Ferry", "ConflictPolicy"], "merge".into()),
            "Ferry.ConflictPolicy"
        );
        assert_eq!(
            with(&["DatabaseInfo"], "[{\"Database\":\"mysql\"}]".into()),
            "DatabaseInfo[0].Database"
        );
        assert_eq!(with(&["DatabaseInfo"], "not json".into()), "DatabaseInfo");
        assert_eq!(
            with(&["MigrateOption", "RunMode"], 2.into()),
            "MigrateOption.ExpectTime"
        );
        assert_eq!(with(&["JobName"], "".into()), "JobName");
        // unknown fields are refused and named
        let e = MigrateJobRequest::from_json(&GOOD.replace("\"Threads\"", "\"Threds\"")).unwrap_err();
        assert_eq!(e.field, "Ferry.Threds", "{e}");
        assert!(MigrateJobRequest::from_json("{").is_err());
        // The job file is judged by the same field rules as the API's CreateMigrateJob.
        assert_eq!(
            with(&["MigrateOption", "ConsistencyType"], 9.into()),
            "MigrateOption.ConsistencyType"
        );
        assert_eq!(with(&["DstDatabaseType"], "oracle".into()), "DstDatabaseType");
        assert_eq!(with(&["Ferry", "ApplyWorkers"], 65.into()), "Ferry.ApplyWorkers");
        let cloud = GOOD.replacen('{', "{\"Tags\": [], ", 1);
        assert_eq!(MigrateJobRequest::from_json(&cloud).unwrap_err().field, "Tags");
    }

    #[test]
    fn start_position_validates() {
        let parse = |mt: i64, sp: serde_json::Value| {
            let mut j: serde_json::Value = serde_json::from_str(GOOD).unwrap();
            j["MigrateOption"]["MigrateType"] = mt.into();
            j["Ferry"]["StartPosition"] = sp;
            MigrateJobRequest::from_json(&j.to_string()).unwrap().validate()
        };
        let s = parse(3, serde_json::json!({"File": "mysql-bin.000003", "Offset": 1234})).unwrap();
        assert_eq!(
            s.options.start_position,
            Some(StartFrom::FilePos {
                file: "mysql-bin.000003".into(),
                offset: 1234
            })
        );
        let s = parse(3, serde_json::json!({"Time": 1700000000})).unwrap();
        assert_eq!(s.options.start_position, Some(StartFrom::Time(1_700_000_000)));
        let field = |mt, v| parse(mt, v).unwrap_err().field;
        assert_eq!(field(2, serde_json::json!({"Time": 1})), "Ferry.StartPosition");
        let s = parse(3, serde_json::json!({"Gtid": "0-1-100,1-2-3"})).unwrap();
        assert!(matches!(
            s.options.start_position,
            Some(StartFrom::Gtid(Position::MariaGtidPos { .. }))
        ));
        assert_eq!(
            field(3, serde_json::json!({"Gtid": "mysql-bin.000001:4"})),
            "Ferry.StartPosition.Gtid"
        );
        assert_eq!(
            field(3, serde_json::json!({"Gtid": "0-1-100", "Time": 5})),
            "Ferry.StartPosition"
        );
        assert_eq!(
            field(3, serde_json::json!({"Offset": 4})),
            "Ferry.StartPosition.Offset"
        );
        assert_eq!(
            field(3, serde_json::json!({"File": "a/b"})),
            "Ferry.StartPosition.File"
        );
        assert_eq!(
            field(3, serde_json::json!({"File": "f.1", "Offset": 2})),
            "Ferry.StartPosition.Offset"
        );
        assert_eq!(
            field(3, serde_json::json!({"File": "f.1", "Time": 2})),
            "Ferry.StartPosition"
        );
        assert_eq!(field(3, serde_json::json!({})), "Ferry.StartPosition");
    }

    #[test]
    fn db_list_is_an_alternative_to_database_info() {
        let mut j: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        j["Ferry"]["DbList"] = serde_json::json!({"shop": {"name": "shop2", "Table": {
            "orders": {"filter": "tenant_id = 7", "column": {"id": {}, "tenant_id": {}, "note": {"name": "remark"}}}
        }}});
        let validate =
            |j: &serde_json::Value| MigrateJobRequest::from_json(&j.to_string()).and_then(|r| r.validate());
        assert_eq!(validate(&j).unwrap_err().field, "DatabaseInfo, Ferry.DbList");
        j.as_object_mut().unwrap().remove("DatabaseInfo");
        let spec = validate(&j).unwrap();
        assert_eq!(
            spec.selection.target_table("shop", "orders"),
            Some(("shop2".into(), "orders".into()))
        );
        assert_eq!(spec.selection.target_table("shop", "users"), None);
        let m = spec.selection.mapping("shop", "orders").unwrap();
        assert_eq!(m.target_column("note"), Some("remark"));
        // the mapping survives the API's stored request and the job list (serde round trip)
        let back: Selection = serde_json::from_str(&serde_json::to_string(&spec.selection).unwrap()).unwrap();
        assert_eq!(back, spec.selection);
        // replayed through the mapping, with the replayed kinds selected
        let mut inc = j.clone();
        inc["MigrateOption"]["MigrateType"] = 3.into();
        inc["Ferry"]["DbList"]["shop"]["dml_op"] = "insert,update".into();
        inc["Ferry"]["DbList"]["shop"]["ddl_op"] = "AlterTable".into();
        assert!(validate(&inc).is_ok());
        // and verified through it
        let mut verified = inc.clone();
        verified["MigrateOption"]["ConsistencyType"] = 2.into();
        assert!(validate(&verified).is_ok());
        let mut whole = j.clone();
        whole["MigrateOption"]["MigrateObject"] = 1.into();
        assert_eq!(validate(&whole).unwrap_err().field, "MigrateOption.MigrateObject");
        // TOML job files take the same list
        let toml = r#"
            JobName = "t"
            [MigrateOption]
            MigrateType = 2
            [SrcInfo]
            Ip = "h"
            User = "u"
            [DstInfo]
            Ip = "h2"
            User = "u"
            [Ferry.DbList.shop.Table.orders]
            filter = "id > 10"
        "#;
        let spec = MigrateJobRequest::from_toml(toml).unwrap().validate().unwrap();
        assert!(spec.selection.mapping("shop", "orders").unwrap().filter.is_some());
    }

    #[test]
    fn expect_time() {
        assert_eq!(parse_expect_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_expect_time("2018-05-24 15:06:03"), Some(1_527_174_363));
        assert_eq!(parse_expect_time("2018-13-24 15:06:03"), None);
        assert_eq!(parse_expect_time("yesterday"), None);
    }
}
