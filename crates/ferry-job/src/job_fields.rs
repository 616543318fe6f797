//! The field rules of a job (Tencent DTS 2018-03-30 CreateMigrateJob and Ferry's extensions):
//! names, types, required fields, choices and ranges, written once ([`crate::fields`]). Job files
//! are judged by them in [`crate::spec::MigrateJobRequest`]; the HTTP API's CreateMigrateJob uses
//! [`CREATE_JOB`] and its ModifyMigrateJob [`modify_job`], derived from it (`ferry-service`). What needs more than a range or a
//! choice (a time, a TLS file, a selection) is judged by `MigrateJobRequest::validate`.
//!
//! Cloud-only fields (`Tags`, `SrcNodeType`, `SrcInfoMulti`, `SrcInfo.CcnId`, …) are accepted
//! by the API and ignored ([`crate::fields::cloud`]); a job file refuses them.

use std::sync::LazyLock;

use crate::fields::{cloud, opt, req, Field, Ty};

/// `SrcAccessType` / `DstAccessType`.
pub const ACCESS_TYPES: &[&str] = &[
    "extranet",
    "cvm",
    "dcg",
    "vpncloud",
    "vpnselfbuild",
    "vpnselbuild",
    "cdb",
    "ccn",
    "intranet",
    "vpc",
];

/// `SrcDatabaseType` / `DstDatabaseType`.
pub const DB_TYPES: &[&str] = &["mysql", "mariadb", "percona"];

/// `MigrateOption.ConsistencyParams` (percentages).
pub const CONSISTENCY_PARAMS: &[Field] = &[
    req("SelectRowsPerTable", Ty::Int(0, 100)),
    req("TablesSelectAll", Ty::Int(0, 100)),
    req("TablesSelectCount", Ty::Int(0, 100)),
];

/// `MigrateOption`.
pub const MIGRATE_OPTION: &[Field] = &[
    req("RunMode", Ty::IntIn(&[1, 2])),
    opt("ExpectTime", Ty::Str),
    req("MigrateType", Ty::IntIn(&[1, 2, 3])),
    opt("MigrateObject", Ty::IntIn(&[1, 2])),
    opt("ConsistencyType", Ty::IntIn(&[1, 2, 3, 4, 5])),
    opt("IsOverrideRoot", Ty::IntIn(&[0, 1])),
    opt("ExternParams", Ty::Str),
    opt("ConsistencyParams", Ty::Obj(CONSISTENCY_PARAMS)),
];

/// `SrcInfo` / `DstInfo`.
pub const ENDPOINT: &[Field] = &[
    opt("AccessKey", Ty::Str),
    opt("Ip", Ty::Str),
    opt("Port", Ty::Int(1, 65535)),
    opt("User", Ty::Str),
    opt("Password", Ty::Str),
    opt("RdsInstanceId", Ty::Str),
    opt("CvmInstanceId", Ty::Str),
    opt("UniqDcgId", Ty::Str),
    opt("VpcId", Ty::Str),
    opt("SubnetId", Ty::Str),
    opt("UniqVpnGwId", Ty::Str),
    opt("InstanceId", Ty::Str),
    opt("Region", Ty::Str),
    opt("Supplier", Ty::Str),
    cloud("CcnId", Ty::Str),
    cloud("EngineVersion", Ty::Str),
    opt("ReadOnly", Ty::IntIn(&[0, 1])),
];

/// `Ferry.SourceTls` / `Ferry.TargetTls`.
pub const TLS: &[Field] = &[
    opt("Mode", Ty::Str),
    opt("Ca", Ty::Str),
    opt("CaFile", Ty::Str),
    opt("Cert", Ty::Str),
    opt("CertFile", Ty::Str),
    opt("Key", Ty::Str),
    opt("KeyFile", Ty::Str),
];

/// `Ferry.StartPosition`.
pub const START_POSITION: &[Field] = &[
    opt("File", Ty::Str),
    opt("Offset", Ty::Int(0, i64::MAX)),
    opt("Gtid", Ty::Str),
    opt("Time", Ty::Int(0, i64::MAX)),
];

/// `Ferry.ContinuousVerify`.
pub const CONTINUOUS_VERIFY: &[Field] = &[
    opt("RowsPerSecond", Ty::Int(i64::MIN, i64::MAX)),
    opt("FullRescanSeconds", Ty::Int(i64::MIN, i64::MAX)),
];

/// `Ferry`: Ferry's own settings (ranges and choices with defaults are judged by
/// `ferry_options`, which knows the defaults).
pub const FERRY: &[Field] = &[
    opt("Threads", Ty::Int(i64::MIN, i64::MAX)),
    opt("ChunkRows", Ty::Int(i64::MIN, i64::MAX)),
    opt("WriteMethod", Ty::Str),
    opt("ExistingTables", Ty::Str),
    opt("IndexTiming", Ty::Str),
    opt("Definer", Ty::Str),
    opt("RowsPerSecond", Ty::Int(i64::MIN, i64::MAX)),
    opt("BytesPerSecond", Ty::Int(i64::MIN, i64::MAX)),
    opt("LockTimeoutSeconds", Ty::Int(i64::MIN, i64::MAX)),
    opt("ConnectTimeoutSeconds", Ty::Int(i64::MIN, i64::MAX)),
    opt("TargetBinlog", Ty::Bool),
    opt("DdlPolicy", Ty::Str),
    opt("ConflictPolicy", Ty::Str),
    opt("ApplyWorkers", Ty::Int(1, 64)),
    opt("RetryWindowSeconds", Ty::Int(i64::MIN, i64::MAX)),
    opt("SourceTls", Ty::Obj(TLS)),
    opt("SnapshotMode", Ty::Str),
    opt("TargetTls", Ty::Obj(TLS)),
    opt("StartPosition", Ty::Obj(START_POSITION)),
    opt("Accounts", Ty::Str),
    opt("ContinuousVerify", Ty::Obj(CONTINUOUS_VERIFY)),
    // Alibaba's DbList grammar (an object, or a string holding one): judged by `crate::dblist`.
    opt("DbList", Ty::Any),
];

/// `Tags` items.
pub const TAG: &[Field] = &[opt("TagKey", Ty::Str), opt("TagValue", Ty::Str)];

/// CreateMigrateJob, as the API takes it (cloud-only fields included).
pub const CREATE_JOB: &[Field] = &[
    req("JobName", Ty::Str),
    req("MigrateOption", Ty::Obj(MIGRATE_OPTION)),
    req("SrcDatabaseType", Ty::StrIn(DB_TYPES)),
    req("SrcAccessType", Ty::StrIn(ACCESS_TYPES)),
    req("SrcInfo", Ty::Obj(ENDPOINT)),
    req("DstDatabaseType", Ty::StrIn(DB_TYPES)),
    req("DstAccessType", Ty::StrIn(ACCESS_TYPES)),
    req("DstInfo", Ty::Obj(ENDPOINT)),
    opt("DatabaseInfo", Ty::Any),
    opt("Ferry", Ty::Obj(FERRY)),
    cloud("Tags", Ty::ObjList(TAG)),
    cloud("SrcNodeType", Ty::Str),
    cloud("SrcInfoMulti", Ty::ObjList(ENDPOINT)),
];

/// CreateMigrateJob's fields that ModifyMigrateJob does not take: the database types (Tencent's
/// ModifyMigrateJob: "the type of the source and target instances … cannot be modified") and
/// `Tags` (not among its parameters).
pub const NOT_MODIFIABLE: &[&str] = &["SrcDatabaseType", "DstDatabaseType", "Tags"];

/// ModifyMigrateJob, as the API takes it: `JobId` (required), then every field of
/// [`CREATE_JOB`] but [`NOT_MODIFIABLE`], each optional (what is not sent keeps its value).
pub fn modify_job() -> &'static [Field] {
    static FIELDS: LazyLock<Vec<Field>> = LazyLock::new(|| {
        std::iter::once(req("JobId", Ty::Str))
            .chain(
                CREATE_JOB
                    .iter()
                    .filter(|f| !NOT_MODIFIABLE.contains(&f.name))
                    .map(|f| Field {
                        required: false,
                        ..*f
                    }),
            )
            .collect()
    });
    &FIELDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modify_takes_the_create_fields_but_the_types_and_tags_all_optional() {
        let m = modify_job();
        assert_eq!((m[0].name, m[0].required), ("JobId", true));
        let names: Vec<&str> = m[1..].iter().map(|f| f.name).collect();
        let want: Vec<&str> = CREATE_JOB
            .iter()
            .map(|f| f.name)
            .filter(|n| !NOT_MODIFIABLE.contains(n))
            .collect();
        assert_eq!(names, want);
        assert!(m[1..].iter().all(|f| !f.required));
        // Nested rules are CreateMigrateJob's.
        let ferry = m.iter().find(|f| f.name == "Ferry").map(|f| f.ty);
        assert!(matches!(ferry, Some(Ty::Obj(t)) if t.len() == FERRY.len()));
        assert!(m.iter().any(|f| f.name == "SrcInfoMulti" && f.cloud_only));
    }
}
