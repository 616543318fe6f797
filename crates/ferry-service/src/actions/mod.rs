//! The DTS API actions over the job manager, by version: [`v20180330`] (Tencent DTS 2018-03-30)
//! and [`v20211206`] (the 2021-12-06 actions Ferry serves), their parameter schemas
//! ([`params`]), the action table with rate limits, the shared formatting helpers, and the
//! mapping of the service's errors ([`ServiceError`], [`ControlError`]) to API error codes.

pub mod params;
pub mod v20180330;
pub mod v20211206;

use std::sync::Arc;

use ferry_api::{ActionInfo, ApiCall, ApiError};
use serde_json::{Map, Value};

use crate::error::ServiceError;
use crate::manager::{ControlError, Manager};

/// The time value of "never".
pub const ZERO_TIME: &str = "0000-00-00 00:00:00";

/// The API versions served.
pub const VERSIONS: &[&str] = &["2018-03-30", "2021-12-06"];

/// Whether `version`/`action` exist, and the action's rate limit.
pub fn lookup(version: &str, action: &str) -> Result<ActionInfo, ApiError> {
    let table = match version {
        "2018-03-30" => v20180330::ACTIONS,
        "2021-12-06" => v20211206::ACTIONS,
        _ => return Err(ApiError::no_such_version(version)),
    };
    table
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, rps)| ActionInfo {
            requests_per_second: *rps,
        })
        .ok_or_else(|| ApiError::invalid_action(action, version))
}

/// Runs an action.
pub async fn handle(mgr: &Arc<Manager>, call: ApiCall) -> Result<Map<String, Value>, ApiError> {
    lookup(&call.version, &call.action)?;
    if !mgr.is_open() && !call.action.starts_with("Describe") {
        return Err(ApiError::new(
            "ResourceUnavailable",
            "ferry serve is shutting down: retry after it has restarted",
        ));
    }
    match call.version.as_str() {
        "2018-03-30" => v20180330::handle(mgr, &call).await,
        _ => v20211206::handle(mgr, &call).await,
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError::new("InternalError.DatabaseError", e.to_string())
    }
}

/// The manager's domain errors as the API's error codes (this is the only place they are
/// mapped).
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match &e {
            ControlError::NotFound { job_id } => ApiError::job_not_exist(job_id),
            ControlError::NotAllowed { .. } | ControlError::Refused(_) => {
                ApiError::not_allow_operation(e.to_string())
            }
            ControlError::InvalidJob(_) => ApiError::invalid_parameter_value(e.to_string()),
            ControlError::Store(s) => ApiError::new("InternalError.DatabaseError", s.to_string()),
        }
    }
}

/// A new JobId: `dts-` and 8 lowercase letters or digits.
pub fn new_job_id() -> String {
    format!("dts-{}", random_suffix(8))
}

/// `n` random lowercase letters or digits.
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            // 252 = 7 * 36: no bias.
            if *b < 252 && out.len() < n {
                out.push(ALPHABET[(*b % 36) as usize] as char);
            }
        }
    }
    out
}

/// UNIX seconds as `yyyy-mm-dd hh:mm:ss` (UTC); `None` as [`ZERO_TIME`].
pub fn fmt_time(t: Option<i64>) -> String {
    let Some(t) = t else {
        return ZERO_TIME.to_string();
    };
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = ferry_core::civil::civil_from_days(t.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_get_their_api_codes() {
        use crate::status::{JobStatus, Operation};
        let code = |e: ControlError| ApiError::from(e).code;
        assert_eq!(
            code(ControlError::not_found("dts-x")),
            "ResourceNotFound.JobNotExist"
        );
        assert_eq!(
            code(Operation::Stop.refused("dts-x", JobStatus::Success)),
            "FailedOperation.NotAllowOperation"
        );
        assert_eq!(
            code(ControlError::Refused("already paused".into())),
            "FailedOperation.NotAllowOperation"
        );
        let spec = ferry_job::SpecError {
            field: "MigrateOption.ExpectTime".into(),
            message: "is required".into(),
        };
        let e = ApiError::from(ControlError::InvalidJob(spec));
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(e.message.contains("MigrateOption.ExpectTime"), "{}", e.message);
    }

    #[test]
    fn times_and_ids() {
        assert_eq!(fmt_time(Some(1_527_174_363)), "2018-05-24 15:06:03");
        assert_eq!(fmt_time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(None), ZERO_TIME);
        assert_eq!(
            ferry_job::spec::parse_expect_time(&fmt_time(Some(951_782_400))),
            Some(951_782_400)
        );
        let id = new_job_id();
        assert_eq!(id.len(), 12);
        assert!(id[4..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(
            lookup("2018-03-30", "DescribeMigrateJobs")
                .unwrap()
                .requests_per_second,
            50
        );
        assert_eq!(
            lookup("2018-03-30", "StartMigrateJob")
                .unwrap()
                .requests_per_second,
            20
        );
        assert_eq!(lookup("2018-03-30", "Nope").unwrap_err().code, "InvalidAction");
        assert_eq!(
            lookup("2019-01-01", "StartMigrateJob").unwrap_err().code,
            "NoSuchVersion"
        );
    }
}
