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
//! - **Continuous verification** (`Ferry.ContinuousVerify`) shows in DescribeMigrationDetail's
//!   `verification` step and `CompareTask`, and as the comparison task `JOBID-continuous` in
//!   DescribeCompareTasks and DescribeCompareReport (see [`continuous`]).
//! - Times are `yyyy-mm-dd hh:mm:ss` in UTC (Tencent: Beijing time); absent times are `""`.
//! - Fields without meaning here are returned with their zero value: `Tags` `[]`, `TradeInfo`
//!   (billing) empty strings, `DstInfo`/`SrcInfo` `NodeType` `simple`, `Supplier` as given,
//!   `ErrorInfo[].HelpDoc` `""`, `CompareTask` `notexist` when the job has no compare task,
//!   `DumperResumeCtrl` `yes` (Ferry's full load always resumes from its chunk checkpoints),
//!   `DifferenceAdvancedObjects`/`DifferenceData`/`DifferenceRow`/`DifferenceSchema`/
//!   `DifferenceOwner`/`IncDifference` (MongoDB/PostgreSQL/incremental) `{TotalCount: 0, Items: []}`.

use std::sync::Arc;

use ferry_api::{ApiCall, ApiError};
use ferry_check::CheckStatus;
use ferry_verify::{RowFilter, TableScope, VerifyMode, VerifyReport, ViewScope};
use serde_json::{json, Map, Value};

mod check;
pub(crate) mod compare;
mod continuous;
mod detail;
mod rate_limit;

use super::params::{check, int_of, opt, req, str_of, Field, Ty};
use super::{fmt_time, random_suffix};
use crate::detail::{Detail, StepStatus, STEP_FAILED, STEP_OK, STEP_RUNNING};
use crate::job::{CheckPhase, PauseMode};
use crate::manager::{spec_of, Manager};
use crate::status::{JobStatus, Operation};
use crate::store::{now, CompareChange, CompareRow, JobRow, Patch};
use check::{check_job, skip_items};
use compare::{compare_report, create_compare, describe_compares, start_compare, stop_compare};
pub use detail::migration_detail;
use rate_limit::rate_limit;

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
            let mode = match str_of(&m, "PauseMode") {
                Some("target") => PauseMode::Target,
                _ => PauseMode::All,
            };
            mgr.pause(id(&m), mode).await?;
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
    Ok(mgr.existing(job_id).await?)
}

fn t21(t: Option<i64>) -> String {
    t.map(|t| fmt_time(Some(t))).unwrap_or_default()
}
