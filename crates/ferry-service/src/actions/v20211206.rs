//! The 2021-12-06 actions Ferry serves, with the field names of Tencent's official SDK models
//! (`tencentcloud/dts/v20211206/models.py`), over the same jobs as 2018-03-30 (one JobId
//! namespace): PauseMigrateJob, ResumeMigrateJob, ModifyMigrateRateLimit, CreateCompareTask,
//! StartCompare, StopCompare, DescribeCompareTasks, DescribeCompareReport,
//! DescribeMigrationCheckJob, SkipCheckItem and DescribeMigrationDetail.
//!
//! Readings:
//! - **Pause**: `PauseMigrateJob` takes a Ferry extension `PauseMode` (Huawei DRS's two modes):
//!   `all` (default) stops capture and apply at a safe point (the replay is cancelled at a
//!   transaction boundary; in the full load the run is interrupted, its chunk checkpoints are
//!   transactional) and `ResumeMigrateJob` runs the job again from its checkpoints; `target`
//!   (apply only, incremental phase only) holds the applier at a transaction boundary while the
//!   reader keeps reading into its bounded queue, and `ResumeMigrateJob` lets it go on. A paused
//!   job keeps status 7 (Running) in the 2018 view (8 returns to 7, and lag grows);
//!   `DescribeMigrationDetail.Status` says `pausing` until the run has stopped (`all`) or the
//!   applier holds (`target`), then `manualPaused`. A paused job stays paused across a restart
//!   of `ferry serve`. `ResumeOption` accepts `normal` only (`clearData` and
//!   `overwrite` are Redis-only in Tencent's API).
//! - **ModifyMigrateRateLimit**: `DumpRps` and `LoadRps` both set the job's rows/s limit (the
//!   smaller wins when both are given); it applies at once to a running load or replay through
//!   the job's throttle and is saved in the job (`Ferry.RowsPerSecond`). `DumpThread` and
//!   `LoadThread` set `Ferry.Threads` (the larger wins), which takes effect at the next phase
//!   start or run (resume, restart). `SinkerThread` sets `Ferry.ApplyWorkers`, the replay's apply
//!   workers (batches of disjoint keys applied side by side, committed in source order), taking
//!   effect when the incremental phase starts or resumes.
//! - **Compare tasks** run `ferry_verify` with the job's endpoints and mapping; while the job's
//!   replay runs, differing chunks are compared again after the replay has applied the source up
//!   to where they were read (replay fence). `Method` `dataCheck` compares every row,
//!   `sampleDataCheck` `SampleRate` percent of the rows of every chunk (a table whose sample is
//!   empty is compared in full); `rowsCount` is refused. `ObjectMode` `custom` takes
//!   `Objects.ObjectItems`: `DbMode`/`TableMode` `all` (every migrated table of the database) or
//!   `Tables` (`partial`), each with `ColumnMode`/`Columns` (only those columns, the row key
//!   always), `FilterCondition` (a plain boolean expression over the table's columns, applied on
//!   both sides; see `ferry_verify::filter`) and `FilterTimeZone` (`+hh:mm`, one per task: the
//!   session time zone of both sides); `ViewMode`/`Views` compare view definitions. Refused by
//!   name: `AdvancedObjects` (MongoDB only), `SchemaName`, `Options.Type` `independent`,
//!   `Options.CompareMode` other than `full`, `Options.ReCheckTime`/`ReCheckInterval`.
//! - **DescribeMigrationCheckJob** lists one `CheckStep` per Ferry check item (`StepId` = the
//!   item's id, `StepName` its title, `StepStatus` pass/warning/failed, `StepMessage` the
//!   message); each step has one `DetailCheckItem` whose `Description` is the item's group.
//!   `SkipCheckItem` accepts the ids of WARNING items only (see [`crate::status`]).
//! - Times are `yyyy-mm-dd hh:mm:ss` in UTC (Tencent: Beijing time); absent times are `""`.
//! - Fields without meaning here are returned with their zero value: `Tags` `[]`, `TradeInfo`
//!   (billing) empty strings, `DstInfo`/`SrcInfo` `NodeType` `simple`, `Supplier` as given,
//!   `ErrorInfo[].HelpDoc` `""`, `CompareTask` `notexist` when the job has no compare task,
//!   `DumperResumeCtrl` `yes` (Ferry's full load always resumes from its chunk checkpoints),
//!   `DifferenceAdvancedObjects`/`DifferenceData`/`DifferenceRow`/`DifferenceSchema`/
//!   `DifferenceOwner`/`IncDifference` (MongoDB/PostgreSQL/incremental) `{TotalCount: 0, Items: []}`.

use std::sync::Arc;

use ferry_api::{ApiCall, ApiError};
use ferry_verify::{RowFilter, TableScope, VerifyMode, VerifyReport, ViewScope};
use serde_json::{json, Map, Value};

use super::params::{check, int_of, opt, req, str_of, Field, Ty};
use super::{fmt_time, random_suffix};
use crate::detail::{Detail, STEP_FAILED, STEP_OK, STEP_RUNNING};
use crate::manager::{spec_of, types_of, Manager};
use crate::status::{JobStatus, Operation};
use crate::store::{now, CompareChange, CompareRow, JobRow, Patch};

/// Actions and their rate limits (requests per second).
pub const ACTIONS: &[(&str, u32)] = &[
    ("PauseMigrateJob", 20),
    ("ResumeMigrateJob", 20),
    ("ModifyMigrateRateLimit", 20),
    ("CreateCompareTask", 20),
    ("StartCompare", 20),
    ("StopCompare", 20),
    ("DescribeCompareTasks", 50),
    ("DescribeCompareReport", 50),
    ("DescribeMigrationCheckJob", 50),
    ("SkipCheckItem", 20),
    ("DescribeMigrationDetail", 50),
];

const JOB_ID: &[Field] = &[req("JobId", Ty::Str)];
const PAUSE: &[Field] = &[
    req("JobId", Ty::Str),
    opt("PauseMode", Ty::StrIn(&["all", "target"])),
];
const RESUME: &[Field] = &[
    req("JobId", Ty::Str),
    opt("ResumeOption", Ty::StrIn(&["normal", "clearData", "overwrite"])),
];
const RATE: &[Field] = &[
    req("JobId", Ty::Str),
    opt("DumpThread", Ty::Int(1, 16)),
    opt("DumpRps", Ty::Int(1, 50_000_000)),
    opt("LoadThread", Ty::Int(1, 16)),
    opt("SinkerThread", Ty::Int(1, 64)),
    opt("LoadRps", Ty::Int(1, 50_000_000)),
];
const COLUMN: &[Field] = &[opt("ColumnName", Ty::Str)];
const VIEW: &[Field] = &[opt("ViewName", Ty::Str)];
const TABLE: &[Field] = &[
    req("TableName", Ty::Str),
    opt("ColumnMode", Ty::StrIn(&["all", "partial"])),
    opt("Columns", Ty::ObjList(COLUMN)),
    opt("FilterCondition", Ty::Str),
    opt("FilterTimeZone", Ty::Str),
];
const OBJECT_ITEM: &[Field] = &[
    req("DbName", Ty::Str),
    opt("DbMode", Ty::StrIn(&["all", "partial"])),
    opt("SchemaName", Ty::Str),
    opt("TableMode", Ty::StrIn(&["all", "partial"])),
    opt("Tables", Ty::ObjList(TABLE)),
    opt("ViewMode", Ty::StrIn(&["all", "partial"])),
    opt("Views", Ty::ObjList(VIEW)),
];
const OBJECTS: &[Field] = &[
    opt("ObjectMode", Ty::StrIn(&["all", "partial"])),
    opt("ObjectItems", Ty::ObjList(OBJECT_ITEM)),
    opt("AdvancedObjects", Ty::StrList),
];
const OPTIONS: &[Field] = &[
    opt(
        "Method",
        Ty::StrIn(&["dataCheck", "sampleDataCheck", "rowsCount"]),
    ),
    opt("SampleRate", Ty::Int(0, 100)),
    opt("ThreadCount", Ty::Int(1, 8)),
    opt("Type", Ty::StrIn(&["builtin", "independent"])),
    opt("CompareMode", Ty::StrList),
    opt("ReCheckTime", Ty::Int(0, 100)),
    opt("ReCheckInterval", Ty::Int(1, 60)),
];
const CREATE_COMPARE: &[Field] = &[
    req("JobId", Ty::Str),
    opt("TaskName", Ty::Str),
    opt("ObjectMode", Ty::StrIn(&["sameAsMigrate", "custom"])),
    opt("Objects", Ty::Obj(OBJECTS)),
    opt("Options", Ty::Obj(OPTIONS)),
];
const COMPARE_ID: &[Field] = &[req("JobId", Ty::Str), req("CompareTaskId", Ty::Str)];
const STOP_COMPARE: &[Field] = &[
    req("JobId", Ty::Str),
    req("CompareTaskId", Ty::Str),
    opt("ForceStop", Ty::Bool),
];
const DESCRIBE_COMPARES: &[Field] = &[
    req("JobId", Ty::Str),
    opt("Limit", Ty::Int(1, 100)),
    opt("Offset", Ty::Int(0, i64::MAX)),
    opt("CompareTaskId", Ty::Str),
    opt("Status", Ty::StrList),
];
const REPORT: &[Field] = &[
    req("JobId", Ty::Str),
    req("CompareTaskId", Ty::Str),
    opt("DifferenceLimit", Ty::Int(1, 100_000)),
    opt("DifferenceOffset", Ty::Int(0, i64::MAX)),
    opt("DifferenceDB", Ty::Str),
    opt("DifferenceTable", Ty::Str),
    opt("SkippedLimit", Ty::Int(1, 100_000)),
    opt("SkippedOffset", Ty::Int(0, i64::MAX)),
    opt("SkippedDB", Ty::Str),
    opt("SkippedTable", Ty::Str),
];
const SKIP: &[Field] = &[
    req("JobId", Ty::Str),
    req("StepIds", Ty::StrList),
    opt("ForeignKeyFlag", Ty::StrIn(&["shield", "migrate"])),
];

/// Runs a 2021-12-06 action.
pub async fn handle(mgr: &Arc<Manager>, call: &ApiCall) -> Result<Map<String, Value>, ApiError> {
    let enc = call.encoding;
    let p = &call.params;
    match call.action.as_str() {
        "PauseMigrateJob" => {
            let m = check(PAUSE, p, enc)?;
            mgr.pause(id(&m), str_of(&m, "PauseMode").unwrap_or("all"))
                .await?;
            Ok(Map::new())
        }
        "ResumeMigrateJob" => {
            let m = check(RESUME, p, enc)?;
            if let Some(o) = str_of(&m, "ResumeOption").filter(|o| !o.eq_ignore_ascii_case("normal")) {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter ResumeOption is {o:?}: only \"normal\" applies to MySQL jobs"
                )));
            }
            mgr.resume(id(&m)).await?;
            Ok(Map::new())
        }
        "ModifyMigrateRateLimit" => rate_limit(mgr, check(RATE, p, enc)?).await,
        "CreateCompareTask" => create_compare(mgr, check(CREATE_COMPARE, p, enc)?).await,
        "StartCompare" => start_compare(mgr, check(COMPARE_ID, p, enc)?).await,
        "StopCompare" => stop_compare(mgr, check(STOP_COMPARE, p, enc)?).await,
        "DescribeCompareTasks" => describe_compares(mgr, check(DESCRIBE_COMPARES, p, enc)?).await,
        "DescribeCompareReport" => compare_report(mgr, check(REPORT, p, enc)?).await,
        "DescribeMigrationCheckJob" => {
            let m = check(JOB_ID, p, enc)?;
            let job = job(mgr, id(&m)).await?;
            Ok(check_job(mgr, &job))
        }
        "SkipCheckItem" => skip_items(mgr, check(SKIP, p, enc)?).await,
        "DescribeMigrationDetail" => {
            let m = check(JOB_ID, p, enc)?;
            let job = job(mgr, id(&m)).await?;
            let compares = mgr.store().compares(&job.job_id).await?;
            Ok(migration_detail(mgr, &job, compares.last()))
        }
        other => Err(ApiError::invalid_action(other, "2021-12-06")),
    }
}

fn id(m: &Map<String, Value>) -> &str {
    str_of(m, "JobId").unwrap_or_default()
}

async fn job(mgr: &Arc<Manager>, job_id: &str) -> Result<JobRow, ApiError> {
    mgr.store()
        .job(job_id)
        .await?
        .ok_or_else(|| ApiError::job_not_exist(job_id))
}

fn t21(t: Option<i64>) -> String {
    t.map(|t| fmt_time(Some(t))).unwrap_or_default()
}

// ---- rate limits ----

async fn rate_limit(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let job = job(mgr, &job_id).await?;
    if !Operation::RateLimit.allows(job.status) {
        return Err(Operation::RateLimit.refused(&job_id, job.status));
    }
    let mut limits = job.limits.clone();
    let mut request = job.request.clone();
    let rps = [int_of(&m, "DumpRps"), int_of(&m, "LoadRps")]
        .into_iter()
        .flatten()
        .min();
    let threads = [int_of(&m, "DumpThread"), int_of(&m, "LoadThread")]
        .into_iter()
        .flatten()
        .max();
    if let Some(v) = int_of(&m, "DumpRps") {
        limits.dump_rps = v;
    }
    if let Some(v) = int_of(&m, "LoadRps") {
        limits.load_rps = v;
    }
    if let Some(v) = int_of(&m, "DumpThread") {
        limits.dump_thread = v;
    }
    if let Some(v) = int_of(&m, "LoadThread") {
        limits.load_thread = v;
    }
    if let Some(v) = int_of(&m, "SinkerThread") {
        limits.sinker_thread = v;
    }
    limits.user_set = true;
    if let Some(obj) = request.as_object_mut() {
        let ferry = obj.entry("Ferry").or_insert_with(|| json!({}));
        if let Some(f) = ferry.as_object_mut() {
            if let Some(r) = rps {
                f.insert("RowsPerSecond".into(), json!(r));
            }
            if let Some(t) = threads {
                f.insert("Threads".into(), json!(t));
            }
            if let Some(w) = int_of(&m, "SinkerThread") {
                f.insert("ApplyWorkers".into(), json!(w));
            }
        }
    }
    super::v20180330::validate_request(&request)?;
    mgr.transition(
        &job_id,
        Operation::RateLimit,
        Patch {
            request: Some(request),
            limits: Some(limits),
            ..Patch::default()
        },
    )
    .await?;
    if let Some(r) = rps {
        mgr.set_rows_per_second(&job_id, r as u64);
    }
    Ok(Map::new())
}

/// The apply workers of a job's `Ferry` settings (`ApplyWorkers`, else the replay's default).
fn apply_workers(ferry: &Value) -> i64 {
    ferry
        .get("ApplyWorkers")
        .and_then(Value::as_i64)
        .unwrap_or(ferry_replay::apply::default_workers() as i64)
}

fn rate_limit_option(job: &JobRow) -> Value {
    let l = &job.limits;
    let ferry = job.request.get("Ferry").cloned().unwrap_or(json!({}));
    let threads = ferry.get("Threads").and_then(Value::as_i64).unwrap_or(4);
    let rps = ferry.get("RowsPerSecond").and_then(Value::as_i64).unwrap_or(0);
    json!({
        "CurrentDumpThread": threads,
        "DefaultDumpThread": 4,
        "CurrentDumpRps": rps,
        "DefaultDumpRps": 0,
        "CurrentLoadThread": threads,
        "DefaultLoadThread": 4,
        "CurrentLoadRps": rps,
        "DefaultLoadRps": 0,
        "CurrentSinkerThread": apply_workers(&ferry),
        "DefaultSinkerThread": ferry_replay::apply::default_workers(),
        "HasUserSetRateLimit": if l.user_set { "yes" } else { "no" },
    })
}

// ---- compare tasks ----

/// What a compare task compares, from its stored configuration (checked again at each start):
/// `(mode, threads)`. Every accepted field changes the comparison; the others are refused by name.
fn compare_mode(config: &Value) -> Result<(VerifyMode, usize), ApiError> {
    let options = config.get("Options").cloned().unwrap_or(json!({}));
    let method = options
        .get("Method")
        .and_then(Value::as_str)
        .unwrap_or("dataCheck");
    let threads = options.get("ThreadCount").and_then(Value::as_i64).unwrap_or(4) as usize;
    if let Some(t) = options.get("Type").and_then(Value::as_str) {
        if t != "builtin" {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter Options.Type {t:?} is not supported: Ferry's comparison is built in (builtin)"
            )));
        }
    }
    if let Some(modes) = options.get("CompareMode").and_then(Value::as_array) {
        for m in modes.iter().filter_map(Value::as_str) {
            if m != "full" {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter Options.CompareMode {m:?} is not supported: Ferry compares the data in full (full); \
                     while the replay runs, differing rows are re-checked after the replay has applied them"
                )));
            }
        }
    }
    for name in ["ReCheckTime", "ReCheckInterval"] {
        if options.get(name).is_some() {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter Options.{name} is not supported: while the replay runs, Ferry re-checks differing rows \
                 {} times right after the replay has applied the source up to where they were read",
                ferry_verify::live::ROUNDS
            )));
        }
    }
    let rows_percent = match method {
        "dataCheck" => 100,
        "sampleDataCheck" => {
            let rate = options.get("SampleRate").and_then(Value::as_i64).unwrap_or(100);
            if rate < 1 {
                return Err(ApiError::invalid_parameter_value(
                    "the parameter Options.SampleRate is 0: a sample comparison compares 1 to 100 percent of the rows",
                ));
            }
            rate.min(100) as u8
        }
        _ => {
            return Err(ApiError::invalid_parameter_value(
                "the parameter Options.Method rowsCount is not supported: use dataCheck or sampleDataCheck \
                 (the job's ConsistencyParams.TablesSelectCount compares row counts)",
            ))
        }
    };
    let custom = config.get("ObjectMode").and_then(Value::as_str) == Some("custom");
    let objects = config.get("Objects").cloned().unwrap_or(json!({}));
    if let Some(a) = objects.get("AdvancedObjects").and_then(Value::as_array) {
        if !a.is_empty() {
            return Err(ApiError::invalid_parameter_value(
                "the parameter Objects.AdvancedObjects is not supported (MongoDB only in Tencent's API): \
                 a sameAsMigrate task compares the routines, triggers and events of whole databases",
            ));
        }
    }
    let whole = objects.get("ObjectMode").and_then(Value::as_str) == Some("all");
    if !custom || whole {
        if objects
            .get("ObjectItems")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            return Err(ApiError::invalid_parameter_value(
                "the parameter Objects.ObjectItems needs ObjectMode custom and Objects.ObjectMode partial",
            ));
        }
        let mode = if rows_percent >= 100 {
            VerifyMode::Full
        } else {
            VerifyMode::Sample {
                rows_percent,
                tables_percent: 100,
            }
        };
        return Ok((mode, threads));
    }
    let items = objects
        .get("ObjectItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        return Err(ApiError::missing_parameter("Objects.ObjectItems"));
    }
    let (mut databases, mut tables, mut views) = (Vec::new(), Vec::new(), Vec::new());
    let mut time_zone: Option<String> = None;
    for (i, it) in items.iter().enumerate() {
        let p = format!("Objects.ObjectItems.{i}");
        let s = |k: &str| it.get(k).and_then(Value::as_str).unwrap_or_default();
        let db = s("DbName").to_string();
        if db.is_empty() {
            return Err(ApiError::missing_parameter(&format!("{p}.DbName")));
        }
        if !s("SchemaName").is_empty() {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.SchemaName is not supported: MySQL has no schemas within a database"
            )));
        }
        let list = |k: &str| it.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        let (db_all, table_all) = (s("DbMode") == "all", s("TableMode") == "all");
        let ts = list("Tables");
        if (db_all || table_all) && !ts.is_empty() {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.Tables lists tables while {p}.{} is all: use partial to compare only them",
                if db_all { "DbMode" } else { "TableMode" }
            )));
        }
        if db_all || table_all {
            databases.push(db.clone());
        }
        for (j, t) in ts.iter().enumerate() {
            let tp = format!("{p}.Tables.{j}");
            tables.push(table_scope(&db, t, &tp, &mut time_zone)?);
        }
        let vs = list("Views");
        match (s("ViewMode"), vs.is_empty()) {
            ("all", true) => views.push(ViewScope {
                db: db.clone(),
                views: None,
            }),
            ("all", false) => {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter {p}.Views lists views while {p}.ViewMode is all: use partial to compare only them"
                )))
            }
            ("partial", true) => {
                return Err(ApiError::missing_parameter(&format!("{p}.Views")));
            }
            ("partial", false) | ("", false) => {
                let names: Vec<String> = vs
                    .iter()
                    .filter_map(|v| v.get("ViewName").and_then(Value::as_str))
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.len() != vs.len() {
                    return Err(ApiError::missing_parameter(&format!("{p}.Views.ViewName")));
                }
                views.push(ViewScope {
                    db: db.clone(),
                    views: Some(names),
                });
            }
            _ => {}
        }
        if !db_all && !table_all && ts.is_empty() && vs.is_empty() && s("ViewMode") != "all" {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p} names no object: list Tables (TableMode partial), or set DbMode or TableMode all, or ViewMode"
            )));
        }
    }
    Ok((
        VerifyMode::Scoped {
            databases,
            tables,
            views,
            rows_percent,
            time_zone,
        },
        threads,
    ))
}

/// One `Tables[]` entry of a custom compare task: the table, its columns (`ColumnMode`,
/// `Columns`), its row filter (`FilterCondition`, checked here) and the time zone of the filter
/// (`FilterTimeZone`, one for the whole task).
fn table_scope(db: &str, t: &Value, p: &str, time_zone: &mut Option<String>) -> Result<TableScope, ApiError> {
    let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default();
    let table = s("TableName").to_string();
    if table.is_empty() {
        return Err(ApiError::missing_parameter(&format!("{p}.TableName")));
    }
    let cols: Vec<Value> = t
        .get("Columns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let columns = match (s("ColumnMode"), cols.is_empty()) {
        ("partial", true) => return Err(ApiError::missing_parameter(&format!("{p}.Columns"))),
        ("partial", false) | ("", false) => {
            let names: Vec<String> = cols
                .iter()
                .filter_map(|c| c.get("ColumnName").and_then(Value::as_str))
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            if names.len() != cols.len() {
                return Err(ApiError::missing_parameter(&format!("{p}.Columns.ColumnName")));
            }
            Some(names)
        }
        ("all", false) => {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.Columns lists columns while {p}.ColumnMode is all: use partial to compare only them"
            )))
        }
        _ => None,
    };
    let filter = match s("FilterCondition").trim() {
        "" => None,
        f => Some(RowFilter::parse(f).map_err(|e| {
            ApiError::invalid_parameter_value(format!("the parameter {p}.FilterCondition: {e}"))
        })?),
    };
    let tz = match s("FilterTimeZone") {
        "" => None,
        z if ferry_verify::digest::valid_offset(z) => Some(z.to_string()),
        z => {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.FilterTimeZone is {z:?}: give an offset such as \"+08:00\""
            )))
        }
    };
    if let Some(z) = tz {
        match time_zone {
            Some(prev) if *prev != z => {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter {p}.FilterTimeZone is {z}, another table's is {prev}: one compare task reads its filters in one time zone"
                )))
            }
            _ => *time_zone = Some(z),
        }
    }
    Ok(TableScope {
        db: db.to_string(),
        table,
        columns,
        filter,
    })
}

async fn create_compare(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let job = job(mgr, &job_id).await?;
    let config = json!({
        "ObjectMode": str_of(&m, "ObjectMode").unwrap_or("sameAsMigrate"),
        "Objects": m.get("Objects").cloned().unwrap_or(json!({"ObjectMode": "all", "ObjectItems": []})),
        "Options": m.get("Options").cloned().unwrap_or(json!({"Method": "dataCheck", "SampleRate": 100, "ThreadCount": 4})),
    });
    if config["ObjectMode"] == "custom" && m.get("Objects").is_none() {
        return Err(ApiError::missing_parameter("Objects"));
    }
    compare_mode(&config)?;
    let compare_task_id = format!("{}-cmp-{}", job.job_id, random_suffix(8));
    let name = str_of(&m, "TaskName")
        .filter(|s| !s.is_empty())
        .unwrap_or(&compare_task_id)
        .to_string();
    mgr.store()
        .insert_compare(CompareRow {
            compare_task_id: compare_task_id.clone(),
            job_id,
            task_name: name,
            status: "created".into(),
            config,
            report: None,
            message: String::new(),
            created_at: now(),
            started_at: None,
            finished_at: None,
        })
        .await?;
    let mut out = Map::new();
    out.insert("CompareTaskId".into(), json!(compare_task_id));
    Ok(out)
}

async fn compare_row(
    mgr: &Arc<Manager>,
    job_id: &str,
    compare_task_id: &str,
) -> Result<CompareRow, ApiError> {
    mgr.store()
        .compares(job_id)
        .await?
        .into_iter()
        .find(|c| c.compare_task_id == compare_task_id)
        .ok_or_else(|| {
            ApiError::new(
                "ResourceNotFound",
                format!("the compare task {compare_task_id} of job {job_id} does not exist"),
            )
        })
}

async fn start_compare(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let cid = str_of(&m, "CompareTaskId").unwrap_or_default().to_string();
    let job = job(mgr, &job_id).await?;
    if !Operation::Compare.allows(job.status) {
        return Err(Operation::Compare.refused(&job_id, job.status));
    }
    let row = compare_row(mgr, &job_id, &cid).await?;
    let (mode, threads) = compare_mode(&row.config)?;
    if !mgr
        .store()
        .update_compare(
            &cid,
            &["created", "success", "failed", "canceled"],
            CompareChange {
                status: "running".into(),
                report: None,
                message: Some(String::new()),
                started_at: Some(now()),
                finished_at: None,
            },
        )
        .await?
    {
        return Err(ApiError::not_allow_operation(format!(
            "the compare task {cid} is {}: it can be started when created, success, failed or canceled",
            row.status
        )));
    }
    mgr.spawn_compare(job, cid, mode, threads);
    Ok(Map::new())
}

async fn stop_compare(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let cid = str_of(&m, "CompareTaskId").unwrap_or_default().to_string();
    let row = compare_row(mgr, &job_id, &cid).await?;
    mgr.abort_compare(&cid);
    if !mgr
        .store()
        .update_compare(
            &cid,
            &["created", "running"],
            CompareChange {
                status: "canceled".into(),
                report: None,
                message: Some("stopped by StopCompare".into()),
                started_at: None,
                finished_at: Some(now()),
            },
        )
        .await?
    {
        return Err(ApiError::not_allow_operation(format!(
            "the compare task {cid} is {}: only a created or running task can be stopped",
            row.status
        )));
    }
    Ok(Map::new())
}

fn report_of(c: &CompareRow) -> Option<VerifyReport> {
    c.report
        .as_ref()
        .and_then(|r| serde_json::from_value(r.clone()).ok())
}

fn conclusion(c: &CompareRow) -> &'static str {
    match report_of(c) {
        Some(r) if r.consistent => "same",
        Some(_) => "different",
        None => "",
    }
}

fn progress_json(c: &CompareRow) -> Value {
    let (status, percent) = match c.status.as_str() {
        "success" => ("success", 100),
        "failed" => ("failed", 0),
        "running" => ("running", 0),
        "canceled" => ("failed", 0),
        _ => ("notStarted", 0),
    };
    json!({"Status": status, "Percent": percent, "StepAll": 1, "StepNow": 1, "Message": c.message, "Steps": []})
}

fn compare_item(c: &CompareRow) -> Value {
    let options = c.config.get("Options").cloned().unwrap_or(json!({}));
    json!({
        "JobId": c.job_id,
        "CompareTaskId": c.compare_task_id,
        "TaskName": c.task_name,
        "Status": c.status,
        "Config": c.config.get("Objects").cloned().unwrap_or(json!({"ObjectMode": "all", "ObjectItems": []})),
        "CheckProcess": progress_json(c),
        "CompareProcess": progress_json(c),
        "Conclusion": conclusion(c),
        "CreatedAt": t21(Some(c.created_at)),
        "StartedAt": t21(c.started_at),
        "FinishedAt": t21(c.finished_at),
        "Method": options.get("Method").and_then(Value::as_str).unwrap_or("dataCheck"),
        "Options": options,
        "Message": c.message,
    })
}

async fn describe_compares(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    job(mgr, &job_id).await?;
    let mut rows = mgr.store().compares(&job_id).await?;
    if let Some(cid) = str_of(&m, "CompareTaskId").filter(|s| !s.is_empty()) {
        rows.retain(|c| c.compare_task_id == cid);
    }
    if let Some(Value::Array(st)) = m.get("Status") {
        let want: Vec<&str> = st.iter().filter_map(Value::as_str).collect();
        if !want.is_empty() {
            rows.retain(|c| want.contains(&c.status.as_str()));
        }
    }
    rows.reverse();
    let total = rows.len();
    let offset = int_of(&m, "Offset").unwrap_or(0) as usize;
    let limit = int_of(&m, "Limit").unwrap_or(20) as usize;
    let items: Vec<Value> = rows.iter().skip(offset).take(limit).map(compare_item).collect();
    let mut out = Map::new();
    out.insert("TotalCount".into(), json!(total));
    out.insert("Items".into(), Value::Array(items));
    Ok(out)
}

fn empty_list() -> Value {
    json!({"TotalCount": 0, "Items": []})
}

async fn compare_report(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let cid = str_of(&m, "CompareTaskId").unwrap_or_default().to_string();
    let c = compare_row(mgr, &job_id, &cid).await?;
    let report = report_of(&c);
    let finished = t21(c.finished_at);
    let mut diffs = Vec::new();
    let mut skipped = Vec::new();
    let mut full = Vec::new();
    let (mut different_tables, mut different_rows, mut src_rows, mut dst_rows) = (0u64, 0u64, 0u64, 0u64);
    if let Some(r) = &report {
        for t in &r.tables {
            let rows = t.only_in_source + t.only_in_target + t.different;
            src_rows += t.rows_compared;
            dst_rows += t.target_rows;
            if let Some(e) = &t.error {
                skipped.push(json!({"Db": t.database, "Schema": "", "Table": t.table, "Reason": e}));
                continue;
            }
            if !t.consistent() {
                different_tables += 1;
                different_rows += rows;
            }
            full.push(json!({
                "Db": t.database, "Schema": "", "Table": t.table,
                "Conclusion": if t.consistent() { "same" } else { "different" },
                "Status": "success", "Progress": 100, "RowCount": rows,
                "StartedAt": t21(c.started_at), "FinishedAt": finished, "ExpectedAt": finished,
                "SrcItem": t.rows_compared.to_string(), "DstItem": t.target_rows.to_string(),
            }));
            for k in &t.keys {
                let (src, dst) = match k.kind {
                    ferry_verify::DiffKind::OnlyInSource => ("present", "missing"),
                    ferry_verify::DiffKind::OnlyInTarget => ("missing", "present"),
                    _ => ("differs", "differs"),
                };
                let key = k.key.join(",");
                diffs.push(json!({
                    "Db": t.database, "Schema": "", "Table": t.table, "Chunk": 0,
                    "SrcItem": src, "DstItem": dst,
                    "IndexName": t.key_columns.join(","),
                    "LowerBoundary": key, "UpperBoundary": key,
                    "CostTime": 0.0, "FinishedAt": finished,
                }));
            }
        }
    }
    let filter =
        |items: Vec<Value>, db: Option<&str>, table: Option<&str>, off: Option<i64>, lim: Option<i64>| {
            let kept: Vec<Value> = items
                .into_iter()
                .filter(|i| db.is_none_or(|d| d.is_empty() || i["Db"] == d))
                .filter(|i| table.is_none_or(|t| t.is_empty() || i["Table"] == t))
                .collect();
            let total = kept.len();
            let page: Vec<Value> = kept
                .into_iter()
                .skip(off.unwrap_or(0) as usize)
                .take(lim.unwrap_or(20) as usize)
                .collect();
            json!({"TotalCount": total, "Items": page})
        };
    let skipped_count = skipped.len();
    let total_tables = report.as_ref().map_or(0, |r| r.tables.len());
    let abstract_ = json!({
        "Options": c.config.get("Options").cloned().unwrap_or(json!({})),
        "Objects": c.config.get("Objects").cloned().unwrap_or(json!({})),
        "Conclusion": conclusion(&c),
        "Status": match c.status.as_str() { "success" => "success", "running" | "created" => c.status.as_str(), _ => "failed" },
        "TotalTables": total_tables,
        "CheckedTables": total_tables - skipped_count,
        "DifferentTables": different_tables,
        "SkippedTables": skipped_count,
        "NearlyTableCount": total_tables,
        "DifferentRows": different_rows,
        "SrcSampleRows": src_rows,
        "DstSampleRows": dst_rows,
        "StartedAt": t21(c.started_at),
        "FinishedAt": finished,
    });
    let full_count = full.len();
    let detail = json!({
        "Difference": filter(diffs, str_of(&m, "DifferenceDB"), str_of(&m, "DifferenceTable"), int_of(&m, "DifferenceOffset"), int_of(&m, "DifferenceLimit")),
        "Skipped": filter(skipped, str_of(&m, "SkippedDB"), str_of(&m, "SkippedTable"), int_of(&m, "SkippedOffset"), int_of(&m, "SkippedLimit")),
        "DifferenceAdvancedObjects": empty_list(),
        "DifferenceData": empty_list(),
        "DifferenceRow": empty_list(),
        "DifferenceSchema": empty_list(),
        "DifferenceOwner": empty_list(),
        "FullProgress": {"TotalCount": full_count, "Items": full},
        "IncDifference": empty_list(),
    });
    let mut out = Map::new();
    out.insert("Abstract".into(), abstract_);
    out.insert("Detail".into(), detail);
    Ok(out)
}

// ---- pre-check ----

fn check_job(mgr: &Arc<Manager>, job: &JobRow) -> Map<String, Value> {
    let c = &job.check;
    let status = match c.state.as_str() {
        "finished" => "success",
        "running" | "starting" => "running",
        _ => "notStarted",
    };
    let steps: Vec<Value> = c
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let result = match it.status.as_str() {
                "PASSED" => "pass",
                "WARNING" => "warning",
                _ => "failed",
            };
            let failure = if result == "pass" { "" } else { it.message.as_str() };
            json!({
                "StepNo": i + 1,
                "StepId": it.id,
                "StepName": it.name,
                "StepStatus": result,
                "StepMessage": it.message,
                "DetailCheckItems": [{
                    "CheckItemName": it.name,
                    "Description": it.group,
                    "CheckResult": result,
                    "FailureReason": failure,
                    "Solution": failure,
                    "ErrorLog": [],
                    "HelpDoc": [],
                    "SkipInfo": if c.skipped.contains(&it.id) { "skipped by SkipCheckItem" } else { "" },
                }],
                "HasSkipped": c.skipped.contains(&it.id),
            })
        })
        .collect();
    let warnings = c
        .items
        .iter()
        .filter(|i| i.status == "WARNING" && !c.skipped.contains(&i.id))
        .count();
    let brief = match status {
        "success" if c.passed() => format!("check passed ({warnings} warning(s) not skipped)"),
        "success" => format!("check did not pass: {}", c.failures()),
        "running" => format!(
            "checking: {}%",
            mgr.check_progress(&job.job_id).unwrap_or(c.progress)
        ),
        _ => "no check has run since the job was created or modified: call CreateMigrateCheckJob".into(),
    };
    let mut out = Map::new();
    out.insert("Status".into(), json!(status));
    out.insert("BriefMsg".into(), json!(brief));
    out.insert("StepInfo".into(), Value::Array(steps));
    out.insert(
        "CheckFlag".into(),
        json!(if status == "success" && c.passed() {
            "checkPass"
        } else if status == "success" {
            "checkNotPass"
        } else {
            ""
        }),
    );
    out
}

async fn skip_items(mgr: &Arc<Manager>, m: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let job = job(mgr, &job_id).await?;
    let ids: Vec<String> = m
        .get("StepIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::missing_parameter("StepIds"));
    }
    let mut check = job.check.clone();
    if check.state != "finished" {
        return Err(ApiError::not_allow_operation(format!(
            "job {job_id} has no finished check: call CreateMigrateCheckJob and wait for it"
        )));
    }
    for sid in &ids {
        let Some(item) = check.items.iter().find(|i| &i.id == sid) else {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter StepIds names {sid:?}, which is not a check item of job {job_id}"
            )));
        };
        if item.status != "WARNING" {
            return Err(ApiError::not_allow_operation(format!(
                "the check item {sid} is {}: only WARNING items can be skipped (a FAILED item means the migration would fail or lose data)",
                item.status
            )));
        }
        if !check.skipped.contains(sid) {
            check.skipped.push(sid.clone());
        }
    }
    let allowed = [
        JobStatus::Creating,
        JobStatus::Created,
        JobStatus::CheckPass,
        JobStatus::CheckNotPass,
        JobStatus::Failed,
    ];
    match mgr
        .store()
        .update(
            &job_id,
            Some(&allowed),
            Patch {
                check: Some(check),
                ..Patch::default()
            },
        )
        .await?
    {
        crate::store::Update::Done(_) => {}
        crate::store::Update::WrongStatus(s) => {
            return Err(ApiError::not_allow_operation(format!(
                "SkipCheckItem is not allowed while job {job_id} is in status {s}"
            )))
        }
        crate::store::Update::Missing => return Err(ApiError::job_not_exist(&job_id)),
    }
    let mut out = Map::new();
    out.insert("Message".into(), json!(format!("skipped: {}", ids.join(", "))));
    Ok(out)
}

// ---- detail ----

fn step_status(s: i64) -> &'static str {
    match s {
        STEP_OK => "success",
        STEP_FAILED => "failed",
        STEP_RUNNING => "running",
        _ => "notStarted",
    }
}

fn endpoint_info(job: &JobRow, side: &str, type_key: &str, access_key: &str) -> Value {
    let r = &job.request;
    let e = r.get(side).cloned().unwrap_or(json!({}));
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    json!({
        "Region": s("Region"),
        "AccessType": r.get(access_key).and_then(Value::as_str).unwrap_or_default(),
        "DatabaseType": r.get(type_key).and_then(Value::as_str).unwrap_or_default(),
        "NodeType": "simple",
        "Info": [{
            "Role": "", "DbKernel": "", "Host": s("Ip"),
            "Port": e.get("Port").and_then(Value::as_i64).unwrap_or(3306),
            "User": s("User"), "Password": "",
            "CvmInstanceId": s("CvmInstanceId"), "UniqVpnGwId": s("UniqVpnGwId"), "UniqDcgId": s("UniqDcgId"),
            "InstanceId": s("InstanceId"), "CcnGwId": s("CcnId"), "VpcId": s("VpcId"), "SubnetId": s("SubnetId"),
            "EngineVersion": s("EngineVersion"), "Account": "", "AccountRole": "", "AccountMode": "",
            "TmpSecretId": "", "TmpSecretKey": "", "TmpToken": "", "EncryptConn": "UnEncrypted", "SetId": "",
        }],
        "Supplier": s("Supplier"),
        "ExtraAttr": [],
        "DatabaseNetEnv": "",
        "ConnectType": "",
        "CcnOwnerUin": "",
    })
}

fn migrate_option(job: &JobRow) -> Value {
    let (mt, ct) = types_of(&job.request);
    let db_info = super::v20180330::database_info(&job.request);
    let dbs: Vec<Value> = db_info
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let name = d.get("Database").and_then(Value::as_str).unwrap_or_default();
            let new_db = d.get("NewDatabase").and_then(Value::as_str).unwrap_or(name);
            let tables: Vec<Value> = d
                .get("Table")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .map(|t| {
                    let new = d.pointer(&format!("/NewTable/{t}")).and_then(Value::as_str);
                    json!({"TableName": t, "NewTableName": new.unwrap_or(t), "TableEditMode": if new.is_some() { "rename" } else { "" }})
                })
                .collect();
            json!({
                "DbName": name, "NewDbName": new_db, "DBMode": if tables.is_empty() { "all" } else { "partial" },
                "TableMode": if tables.is_empty() { "all" } else { "partial" }, "Tables": tables,
            })
        })
        .collect();
    let ferry = job.request.get("Ferry").cloned().unwrap_or(json!({}));
    let threads = ferry.get("Threads").and_then(Value::as_i64).unwrap_or(4);
    let rps = ferry.get("RowsPerSecond").and_then(Value::as_i64).unwrap_or(0);
    json!({
        "DatabaseTable": {"ObjectMode": if dbs.is_empty() { "all" } else { "partial" }, "Databases": dbs},
        "MigrateType": match mt { 1 => "structure", 2 => "full", _ => "fullAndIncrement" },
        "Consistency": {"Mode": match ct { 2..=4 => "full", 5 => "noCheck", _ => "notConfigured" }},
        "IsMigrateAccount": ferry.get("Accounts").and_then(Value::as_str).is_some_and(|a| a.eq_ignore_ascii_case("copy")),
        "IsOverrideRoot": job.request.pointer("/MigrateOption/IsOverrideRoot").and_then(Value::as_i64) == Some(1),
        "IsDstReadOnly": job.request.pointer("/DstInfo/ReadOnly").and_then(Value::as_i64) == Some(1),
        "MigrateWay": "",
        "RateLimit": {"DumpThread": threads, "DumpRps": rps, "LoadThread": threads, "LoadRps": rps, "SinkerThread": apply_workers(&ferry)},
    })
}

/// The actions allowed in each state, for `Action.AllowedAction`.
fn allowed_actions(job: &JobRow, paused_run: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    for op in [
        Operation::Modify,
        Operation::Check,
        Operation::Start,
        Operation::Stop,
        Operation::Complete,
        Operation::Delete,
        Operation::RateLimit,
    ] {
        if op.allows(job.status) {
            v.push(op.action());
        }
    }
    if Operation::Pause.allows(job.status) {
        v.push(if job.paused.is_empty() && !paused_run {
            "PauseMigrateJob"
        } else {
            "ResumeMigrateJob"
        });
    }
    if Operation::Compare.allows(job.status) {
        v.push("CreateCompareTask");
    }
    v
}

/// `DescribeMigrationDetail` of a job.
pub fn migration_detail(
    mgr: &Arc<Manager>,
    job: &JobRow,
    compare: Option<&CompareRow>,
) -> Map<String, Value> {
    let d: Detail = mgr.detail_of(job);
    let run = mgr.run_of(&job.job_id);
    let status = match (job.paused.as_str(), &run) {
        ("all", Some(_)) => "pausing",
        ("target", Some(r)) if !r.control.is_apply_paused() => "pausing",
        ("all", None) | ("target", _) => "manualPaused",
        _ => job.status.name_2021(),
    };
    let steps: Vec<Value> = d
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let percent = if s.status == STEP_OK {
                100
            } else if Some(i) == d.current {
                d.current_step_progress()
            } else {
                0
            };
            let errors: Vec<Value> = if s.status == STEP_FAILED {
                vec![json!({"Message": s.message, "Solution": "", "HelpDoc": ""})]
            } else {
                Vec::new()
            };
            json!({
                "StepNo": i + 1, "StepName": s.name, "StepId": s.id, "Status": step_status(s.status),
                "StartTime": t21(s.started_at), "FinishTime": t21(s.finished_at), "StepMessage": d.step_message(s),
                "Percent": percent, "Errors": errors, "Warnings": [],
            })
        })
        .collect();
    let in_replay = d.running_step() == Some("incremental");
    let lag = |v: i64| if in_replay { json!(v) } else { json!(0) };
    let check_steps: Vec<Value> = job
        .check
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            json!({
                "StepNo": i + 1, "StepName": it.name, "StepId": it.id,
                "Status": match it.status.as_str() { "FAILED" => "failed", _ => "success" },
                "StartTime": t21(job.check.started_at), "FinishTime": t21(job.check.finished_at),
                "StepMessage": it.message, "Percent": 100, "Errors": [], "Warnings": [],
            })
        })
        .collect();
    let check_status = match job.check.state.as_str() {
        "finished" if job.check.passed() => "success",
        "finished" => "failed",
        "running" | "starting" => "running",
        _ => "notStarted",
    };
    let run_mode = job
        .request
        .pointer("/MigrateOption/RunMode")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let expect = job
        .request
        .pointer("/MigrateOption/ExpectTime")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let compare_status = match compare {
        None => "notexist".to_string(),
        Some(c) => match (c.status.as_str(), conclusion(c)) {
            ("success", "same") => "consistent".into(),
            ("success", _) => "inconsistent".into(),
            ("created", _) => "unstart".into(),
            (other, _) => other.to_string(),
        },
    };
    let error_info: Vec<Value> = if job.error_message.is_empty() {
        Vec::new()
    } else {
        vec![json!({"Code": "", "Solution": "", "ErrorLog": job.error_message, "HelpDoc": ""})]
    };
    let mut all_actions: Vec<&str> = crate::actions::v20180330::ACTIONS
        .iter()
        .map(|(a, _)| *a)
        .collect();
    all_actions.extend(ACTIONS.iter().map(|(a, _)| *a));
    let mut out = Map::new();
    out.insert("JobId".into(), json!(job.job_id));
    out.insert("JobName".into(), json!(job.job_name));
    out.insert("CreateTime".into(), json!(t21(Some(job.create_time))));
    out.insert("UpdateTime".into(), json!(t21(Some(job.update_time))));
    out.insert("StartTime".into(), json!(t21(job.start_time)));
    out.insert("EndTime".into(), json!(t21(job.end_time)));
    out.insert("BriefMsg".into(), json!(job.error_message));
    out.insert("Status".into(), json!(status));
    out.insert(
        "Action".into(),
        json!({"AllAction": all_actions, "AllowedAction": allowed_actions(job, run.is_none() && !job.paused.is_empty())}),
    );
    out.insert(
        "StepInfo".into(),
        json!({
            "StepAll": d.steps.len(), "StepNow": d.step_now(),
            "MasterSlaveDistance": lag(d.master_slave_distance()), "SecondsBehindMaster": lag(d.lag_secs() as i64),
            "StepInfo": steps,
        }),
    );
    out.insert(
        "SrcInfo".into(),
        endpoint_info(job, "SrcInfo", "SrcDatabaseType", "SrcAccessType"),
    );
    out.insert(
        "DstInfo".into(),
        endpoint_info(job, "DstInfo", "DstDatabaseType", "DstAccessType"),
    );
    out.insert(
        "CompareTask".into(),
        json!({"CompareTaskId": compare.map(|c| c.compare_task_id.clone()).unwrap_or_default(), "Status": compare_status}),
    );
    out.insert("Tags".into(), json!([]));
    out.insert(
        "RunMode".into(),
        json!(if run_mode == 2 { "timed" } else { "immediate" }),
    );
    out.insert("ExpectRunTime".into(), json!(expect));
    out.insert("MigrateOption".into(), migrate_option(job));
    out.insert(
        "CheckStepInfo".into(),
        json!({
            "StartAt": t21(job.check.started_at), "EndAt": t21(job.check.finished_at),
            "Progress": {
                "Status": check_status,
                "Percent": if job.check.state == "finished" { 100 } else { mgr.check_progress(&job.job_id).unwrap_or(0) },
                "StepAll": job.check.items.len(), "StepNow": job.check.items.len(),
                "Message": job.check.failures(), "Steps": check_steps,
            },
        }),
    );
    out.insert(
        "TradeInfo".into(),
        json!({
            "DealName": "", "LastDealName": "", "InstanceClass": "", "TradeStatus": "notBilled", "ExpireTime": "",
            "OfflineTime": "", "IsolateTime": "", "OfflineReason": "", "IsolateReason": "", "PayType": "",
            "BillingType": "notBilling",
        }),
    );
    out.insert("ErrorInfo".into(), Value::Array(error_info));
    out.insert("DumperResumeCtrl".into(), json!("yes"));
    out.insert("RateLimitOption".into(), rate_limit_option(job));
    // The job's spec must still validate; a job that no longer does says so.
    if let Err(e) = spec_of(job) {
        out.insert("BriefMsg".into(), json!(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(items: Value, options: Value) -> Value {
        json!({"ObjectMode": "custom", "Objects": {"ObjectMode": "partial", "ObjectItems": items}, "Options": options})
    }

    fn refused(config: Value) -> String {
        match compare_mode(&config) {
            Ok((m, _)) => panic!("accepted: {m:?}"),
            Err(e) => format!("{}|{}", e.code, e.message),
        }
    }

    #[test]
    fn custom_tasks_carry_filters_columns_views_and_sampling() {
        let config = custom(
            json!([
                {"DbName": "d", "TableMode": "partial", "Tables": [
                    {"TableName": "t", "ColumnMode": "partial", "Columns": [{"ColumnName": "a"}],
                     "FilterCondition": "id > 10", "FilterTimeZone": "+08:00"},
                    {"TableName": "u"}]},
                {"DbName": "e", "DbMode": "all", "ViewMode": "partial", "Views": [{"ViewName": "v"}]},
            ]),
            json!({"Method": "sampleDataCheck", "SampleRate": 30, "ThreadCount": 2}),
        );
        let (mode, threads) = compare_mode(&config).expect("accepted");
        assert_eq!(threads, 2);
        let VerifyMode::Scoped {
            databases,
            tables,
            views,
            rows_percent,
            time_zone,
        } = mode
        else {
            panic!("{mode:?}")
        };
        assert_eq!(databases, vec!["e".to_string()]);
        assert_eq!(rows_percent, 30);
        assert_eq!(time_zone.as_deref(), Some("+08:00"));
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].columns, Some(vec!["a".to_string()]));
        assert_eq!(tables[0].filter.as_ref().map(|f| f.text()), Some("id > 10"));
        assert_eq!(
            (tables[1].columns.clone(), tables[1].filter.clone()),
            (None, None)
        );
        assert_eq!(
            views,
            vec![ViewScope {
                db: "e".into(),
                views: Some(vec!["v".into()])
            }]
        );
        // sameAsMigrate: full or sampled.
        let (m, _) =
            compare_mode(&json!({"Options": {"Method": "sampleDataCheck", "SampleRate": 10}})).expect("ok");
        assert_eq!(
            m,
            VerifyMode::Sample {
                rows_percent: 10,
                tables_percent: 100
            }
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let t = |extra: Value| {
            let mut tbl = json!({"TableName": "t"});
            if let (Some(o), Some(e)) = (tbl.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            custom(
                json!([{"DbName": "d", "TableMode": "partial", "Tables": [tbl]}]),
                json!({}),
            )
        };
        assert!(refused(t(json!({"FilterCondition": "SLEEP(1) = 0"}))).contains("Tables.0.FilterCondition"));
        assert!(refused(t(json!({"FilterCondition": "a > 1; DROP TABLE t"}))).contains("semicolon"));
        assert!(refused(t(json!({"ColumnMode": "partial"}))).contains("Tables.0.Columns"));
        assert!(
            refused(t(json!({"ColumnMode": "all", "Columns": [{"ColumnName": "a"}]})))
                .contains("ColumnMode is all")
        );
        assert!(refused(t(json!({"FilterTimeZone": "Asia/Shanghai"}))).contains("FilterTimeZone"));
        let two_zones = custom(
            json!([{"DbName": "d", "TableMode": "partial", "Tables": [
                {"TableName": "t", "FilterTimeZone": "+08:00"}, {"TableName": "u", "FilterTimeZone": "+00:00"}]}]),
            json!({}),
        );
        assert!(refused(two_zones).contains("one time zone"));
        let adv = json!({"ObjectMode": "custom", "Objects": {"ObjectMode": "partial", "AdvancedObjects": ["function"],
            "ObjectItems": [{"DbName": "d", "DbMode": "all"}]}});
        assert!(refused(adv).contains("Objects.AdvancedObjects"));
        assert!(refused(custom(
            json!([{"DbName": "d", "SchemaName": "s", "DbMode": "all"}]),
            json!({})
        ))
        .contains("SchemaName"));
        assert!(
            refused(custom(json!([{"DbName": "d", "ViewMode": "partial"}]), json!({}))).contains("Views")
        );
        assert!(refused(custom(json!([{"DbName": "d"}]), json!({}))).contains("names no object"));
        assert!(refused(json!({"Options": {"Type": "independent"}})).contains("Options.Type"));
        assert!(refused(json!({"Options": {"CompareMode": ["increment"]}})).contains("Options.CompareMode"));
        assert!(refused(json!({"Options": {"ReCheckTime": 2}})).contains("Options.ReCheckTime"));
        assert!(refused(json!({"Options": {"Method": "rowsCount"}})).contains("rowsCount"));
        assert!(
            refused(json!({"Options": {"Method": "sampleDataCheck", "SampleRate": 0}}))
                .contains("SampleRate")
        );
    }
}
