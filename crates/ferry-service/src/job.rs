//! The typed job of the service: the stored CreateMigrateJob request parsed once, at the store
//! boundary, into [`JobRequest`] (the typed `ferry_job::spec::MigrateJobRequest` plus the
//! accepted-and-ignored cloud-only fields), and the enums of a job's states that are kept as
//! text in `ferry.db`: [`PauseMode`], [`CheckPhase`], [`Phase`] and [`StepStatus`].
//!
//! The store keeps the request as the JSON that was sent (passwords included, encrypted), because
//! `Secret`s serialize empty and responses echo the request as given; [`JobRequest::raw`] is that
//! JSON, and everything the service decides on is read from the typed request.

use std::fmt;

use ferry_job::fields::strip_cloud_only;
use ferry_job::job_fields::CREATE_JOB;
use ferry_job::spec::{MigrateJobRequest, SpecError};
use ferry_job::JobSpec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One `Tags` item of CreateMigrateJob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A job's request: the JSON as sent and its typed reading.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    raw: Value,
    typed: MigrateJobRequest,
    tags: Vec<Tag>,
}

impl JobRequest {
    /// Parses a request (not yet validated: see [`JobRequest::validate`]).
    pub fn parse(raw: Value) -> Result<JobRequest, SpecError> {
        // The cloud-only fields (accepted and ignored) are the field rules' own.
        let mut spec_part = raw.clone();
        if let Some(m) = spec_part.as_object_mut() {
            strip_cloud_only(CREATE_JOB, m);
        }
        let typed: MigrateJobRequest = serde_json::from_value(spec_part).map_err(|e| SpecError {
            field: "job".into(),
            message: format!("the job does not parse: {e}"),
        })?;
        let tags = raw
            .get("Tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|t| Tag {
                        key: t.get("TagKey").and_then(Value::as_str).unwrap_or_default().into(),
                        value: t
                            .get("TagValue")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(JobRequest { raw, typed, tags })
    }

    /// The request as sent (passwords included: never return it as is).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The typed request.
    pub fn typed(&self) -> &MigrateJobRequest {
        &self.typed
    }

    /// Validates into the job's spec; its name on the target (the checkpoint key) is `job_id`.
    pub fn validate(&self, job_id: &str) -> Result<JobSpec, SpecError> {
        let mut spec = self.typed.validate()?;
        spec.name = job_id.to_string();
        Ok(spec)
    }

    /// `MigrateOption.MigrateType` (default 2).
    pub fn migrate_type(&self) -> i64 {
        self.option(|o| o.migrate_type).unwrap_or(2)
    }

    /// `MigrateOption.ConsistencyType` (default 1).
    pub fn consistency_type(&self) -> i64 {
        self.option(|o| o.consistency_type).unwrap_or(1)
    }

    /// `MigrateOption.RunMode` (default 1).
    pub fn run_mode(&self) -> i64 {
        self.option(|o| o.run_mode).unwrap_or(1)
    }

    /// The `Tags`.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    fn option(&self, f: impl Fn(&ferry_job::spec::MigrateOptionRequest) -> Option<i64>) -> Option<i64> {
        self.typed.migrate_option.as_ref().and_then(f)
    }
}

/// How a job is paused (`PauseMigrateJob` `PauseMode`); stored as `all` / `target`, and `""`
/// for a job that is not paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PauseMode {
    /// Capture and apply stopped at a safe point; the run ends.
    All,
    /// The apply holds at a transaction boundary; the reader keeps reading.
    Target,
}

impl PauseMode {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseMode::All => "all",
            PauseMode::Target => "target",
        }
    }

    /// Reads the stored column: `""` is "not paused".
    pub fn from_stored(s: &str) -> Result<Option<PauseMode>, String> {
        match s {
            "" => Ok(None),
            "all" => Ok(Some(PauseMode::All)),
            "target" => Ok(Some(PauseMode::Target)),
            other => Err(format!("unknown pause mode {other:?}")),
        }
    }

    /// The stored column of an optional mode.
    pub fn to_stored(mode: Option<PauseMode>) -> &'static str {
        mode.map_or("", PauseMode::as_str)
    }
}

impl fmt::Display for PauseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job's pre-check is (`DescribeMigrateCheckJob.Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckPhase {
    /// Never run, or cleared by ModifyMigrateJob (earlier versions stored `""`).
    #[default]
    #[serde(alias = "")]
    Unavailable,
    Starting,
    Running,
    Finished,
}

impl CheckPhase {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckPhase::Unavailable => "unavailable",
            CheckPhase::Starting => "starting",
            CheckPhase::Running => "running",
            CheckPhase::Finished => "finished",
        }
    }
}

/// A job's phase, the id of its step (`StepInfo.StepId`), as the runner names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Structure,
    FullData,
    PostData,
    Incremental,
    Verification,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Structure,
        Phase::FullData,
        Phase::PostData,
        Phase::Incremental,
        Phase::Verification,
    ];

    /// The id (`structure`, `full_data`, `post_data`, `incremental`, `verification`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Structure => "structure",
            Phase::FullData => "full_data",
            Phase::PostData => "post_data",
            Phase::Incremental => "incremental",
            Phase::Verification => "verification",
        }
    }

    /// The phase of a runner's phase name.
    pub fn from_id(id: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == id)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step's status (`StepInfo.Status`), stored and shown as its integer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum StepStatus {
    /// 0: not reached yet.
    #[default]
    Default,
    /// 1: successful.
    Ok,
    /// 2: failed.
    Failed,
    /// 3: executing.
    Running,
    /// 4: not executed (the job ended before it).
    NotRun,
}

impl StepStatus {
    /// The integer code.
    pub fn code(self) -> i64 {
        match self {
            StepStatus::Default => 0,
            StepStatus::Ok => 1,
            StepStatus::Failed => 2,
            StepStatus::Running => 3,
            StepStatus::NotRun => 4,
        }
    }

    /// The status of a code.
    pub fn from_code(code: i64) -> Option<StepStatus> {
        [
            StepStatus::Default,
            StepStatus::Ok,
            StepStatus::Failed,
            StepStatus::Running,
            StepStatus::NotRun,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

impl Serialize for StepStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for StepStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = i64::deserialize(d)?;
        StepStatus::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown step status {code} (0..=4)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_reads_typed_fields_and_keeps_cloud_only_ones() {
        let raw = json!({
            "JobName": "a", "MigrateOption": {"RunMode": 2, "MigrateType": 3, "ExpectTime": "2030-01-01 00:00:00"},
            "SrcInfo": {"Ip": "h", "CcnId": "ccn-1"}, "SrcNodeType": "simple",
            "Tags": [{"TagKey": "env", "TagValue": "prod"}]
        });
        let r = JobRequest::parse(raw.clone()).unwrap();
        assert_eq!((r.migrate_type(), r.consistency_type(), r.run_mode()), (3, 1, 2));
        assert_eq!(
            r.tags(),
            &[Tag {
                key: "env".into(),
                value: "prod".into()
            }]
        );
        assert_eq!(r.raw(), &raw);
        let e = JobRequest::parse(json!({"JobName": "a", "Bogus": 1})).unwrap_err();
        assert!(e.message.contains("Bogus"), "{e}");
    }

    #[test]
    fn stored_spellings_round_trip() {
        for m in [None, Some(PauseMode::All), Some(PauseMode::Target)] {
            assert_eq!(PauseMode::from_stored(PauseMode::to_stored(m)), Ok(m));
        }
        assert!(PauseMode::from_stored("half").is_err());
        let p: CheckPhase = serde_json::from_value(json!("")).unwrap();
        assert_eq!(p, CheckPhase::Unavailable);
        assert_eq!(
            serde_json::to_value(CheckPhase::Finished).unwrap(),
            json!("finished")
        );
        for code in 0..=4 {
            let s: StepStatus = serde_json::from_value(json!(code)).unwrap();
            assert_eq!(serde_json::to_value(s).unwrap(), json!(code));
        }
        assert!(serde_json::from_value::<StepStatus>(json!(7)).is_err());
        for p in Phase::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
            assert_eq!(Phase::from_id(p.as_str()), Some(p));
        }
        assert!(serde_json::from_value::<Phase>(json!("cutover")).is_err());
    }
}
