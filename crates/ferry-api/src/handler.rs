//! The contract between the wire layer and whatever serves the actions.
//!
//! The wire layer authenticates a request, asks [`ActionHandler::lookup`] whether the version and
//! action exist (and their rate limit), applies the limit, then calls [`ActionHandler::handle`]
//! with the action's own parameters (common parameters such as `Action`, `Version`, `Region`,
//! `Timestamp`, `Nonce`, `SecretId`, `Signature`, `SignatureMethod`, `Token`, `Language` removed).
//! The handler validates the parameters (unknown, missing, wrong type, out of range) and answers
//! with the fields of `Response` other than `RequestId`, or an [`ApiError`].

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

/// A boxed future, so that [`ActionHandler`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the parameters of a call were encoded by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamEncoding {
    /// A JSON body (API 3.0, TC3-HMAC-SHA256): values keep their JSON types.
    Json,
    /// GET query or form POST with flattened names (`MigrateOption.RunMode=1`, `Ids.0=a`): the
    /// wire layer has rebuilt the nesting (objects for dotted names, arrays for `.N` indexes) but
    /// every leaf is a JSON string; the handler converts `"1"` to an integer where its schema
    /// wants one.
    Flat,
}

/// One authenticated call of an action.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// `X-TC-Version` or `Version`, e.g. `2018-03-30`.
    pub version: String,
    /// `X-TC-Action` or `Action`, e.g. `CreateMigrateJob`.
    pub action: String,
    /// `X-TC-Region` or `Region`, when given (accepted and otherwise ignored).
    pub region: Option<String>,
    /// The action's parameters, common parameters removed.
    pub params: Map<String, Value>,
    pub encoding: ParamEncoding,
    /// The `RequestId` the response will carry (a UUID).
    pub request_id: String,
    /// The SecretId that signed the call.
    pub secret_id: String,
}

/// What the wire layer needs to know about an action before calling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionInfo {
    /// The action's rate limit (requests per second; Tencent: 20, DescribeMigrateJobs 50).
    pub requests_per_second: u32,
}

/// An error answered in `Response.Error` (`Code`, `Message`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// A Tencent error code, e.g. `ResourceNotFound.JobNotExist`.
    pub code: String,
    /// What went wrong and how to fix it. Never contains a secret.
    pub message: String,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameter", message)
    }
    pub fn invalid_parameter_value(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", message)
    }
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            "MissingParameter",
            format!("the required parameter {name} is missing"),
        )
    }
    pub fn unknown_parameter(name: &str) -> Self {
        Self::new(
            "UnknownParameter",
            format!("the parameter {name} is not known to this action"),
        )
    }
    pub fn invalid_action(action: &str, version: &str) -> Self {
        Self::new(
            "InvalidAction",
            format!("the action {action} does not exist in version {version}"),
        )
    }
    pub fn no_such_version(version: &str) -> Self {
        Self::new(
            "NoSuchVersion",
            format!("the API version {version} does not exist; use 2018-03-30 or 2021-12-06"),
        )
    }
    pub fn job_not_exist(job_id: &str) -> Self {
        Self::new(
            "ResourceNotFound.JobNotExist",
            format!("the migration job {job_id} does not exist"),
        )
    }
    pub fn not_allow_operation(message: impl Into<String>) -> Self {
        Self::new("FailedOperation.NotAllowOperation", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalError", message)
    }
    /// The body is larger than the server accepts (`[limits] max_body_bytes`).
    pub fn request_size_limit_exceeded(limit_bytes: usize) -> Self {
        Self::new(
            "RequestSizeLimitExceeded",
            format!("the request body is larger than {limit_bytes} bytes (limits.max_body_bytes)"),
        )
    }
    /// More calls of an action per second than its limit allows.
    pub fn request_limit_exceeded(action: &str, per_second: u32) -> Self {
        Self::new(
            "RequestLimitExceeded",
            format!("more than {per_second} calls of {action} per second; slow down and retry in a second"),
        )
    }
    /// The `Authorization` header is missing or not of the TC3-HMAC-SHA256 form.
    pub fn invalid_authorization(message: impl Into<String>) -> Self {
        Self::new("AuthFailure.InvalidAuthorization", message)
    }
    /// No configured credential has this SecretId.
    pub fn secret_id_not_found() -> Self {
        Self::new(
            "AuthFailure.SecretIdNotFound",
            "the SecretId is not known to this server; use a key pair from its configuration or \
             its data directory's credentials.toml",
        )
    }
    /// The signature does not match the request.
    pub fn signature_failure(message: impl Into<String>) -> Self {
        Self::new("AuthFailure.SignatureFailure", message)
    }
    /// The request's timestamp is too far from the server's clock.
    pub fn signature_expire(message: impl Into<String>) -> Self {
        Self::new("AuthFailure.SignatureExpire", message)
    }
    /// An HTTP method or path the API does not serve.
    pub fn unsupported_protocol(message: impl Into<String>) -> Self {
        Self::new("UnsupportedProtocol", message)
    }
}

/// Serves the actions of the API versions it knows.
pub trait ActionHandler: Send + Sync + 'static {
    /// `Ok` with the action's limits when `version` and `action` exist; `NoSuchVersion` or
    /// `InvalidAction` otherwise.
    fn lookup(&self, version: &str, action: &str) -> Result<ActionInfo, ApiError>;

    /// Runs an action. `Ok` holds the fields of `Response` other than `RequestId`.
    fn handle(&self, call: ApiCall) -> BoxFuture<'_, Result<Map<String, Value>, ApiError>>;

    /// The handler's metrics in the Prometheus text format, served under `GET /metrics`.
    fn metrics(&self) -> BoxFuture<'_, String>;

    /// A job's lag series since `since` (UNIX seconds), one sample per `resolution` seconds at
    /// most, oldest first; shown by the console's charts. Handlers without series answer none.
    fn series(
        &self,
        job_id: &str,
        since: i64,
        resolution: i64,
    ) -> BoxFuture<'_, Result<Vec<SeriesSample>, ApiError>> {
        let _ = (job_id, since, resolution);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// What the console shows of a job beyond the actions' answers, as JSON: `Tables` (the full
    /// load's progress per table), `Positions`, `Errors` (with retry counts) and `RepairSql`
    /// (the last comparison's repair file). Handlers without them answer an empty object.
    fn job_extras(&self, job_id: &str) -> BoxFuture<'_, Result<Map<String, Value>, ApiError>> {
        let _ = job_id;
        Box::pin(async { Ok(Map::new()) })
    }

    /// The repair SQL file a compare task of the job wrote, `None` when there is none.
    fn repair_sql(
        &self,
        job_id: &str,
        compare_task_id: &str,
    ) -> BoxFuture<'_, Result<Option<std::path::PathBuf>, ApiError>> {
        let _ = (job_id, compare_task_id);
        Box::pin(async { Ok(None) })
    }
}

/// One point of a job's lag series.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SeriesSample {
    /// UNIX seconds (the start of the sample's interval).
    pub t: i64,
    /// Seconds the target is behind the source.
    pub seconds_behind: f64,
    /// Binlog bytes the target is behind the source.
    pub bytes_behind: f64,
    /// Binlog events applied per second.
    pub events_per_second: f64,
    /// Rows copied (full load) or applied (replay) per second.
    pub rows_per_second: f64,
}
