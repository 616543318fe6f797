//! The job status machine: Tencent DTS 2018-03-30 statuses 1–12, which statuses each action
//! accepts, and the readings chosen where the documentation is silent or contradicts itself.
//!
//! Statuses and edges:
//!
//! ```text
//! CreateMigrateJob ─► 1 Creating (configured, not checked)
//! {1,2,4,5,10} ─CreateMigrateCheckJob─► 3 Checking ─► 4 CheckPass | 5 CheckNotPass
//! {1,4,5,10}   ─ModifyMigrateJob─► 1 (the check result is cleared: CheckFlag 3)
//! 4 ─StartMigrateJob─► 6 ReadyRun (RunMode 2 waits for ExpectTime; all wait for a free slot)
//! 6 ─► 7 Running ─(MigrateType 1/2 done)─► 9 Success | 10 Failed
//! 7 ─(MigrateType 3 caught up)─► 8 ReadyComplete ─CompleteMigrateJob─► 12 Completing ─► 9
//! {6,7,8} ─StopMigrateJob─► 11 Stopping ─► 10 Failed ("stopped by StopMigrateJob")
//! DeleteMigrateJob: any status except 3, 6, 7, 8, 11, 12
//! ```
//!
//! Readings (the documentation leaves these open; `docs/api.md` repeats them):
//! - **New jobs are in 1 (Creating)**, not 2: the 2020 ModifyMigrateJob page allows 1, 4, 5, 10
//!   and no longer 2, and a job that was just created must be modifiable. Status 2 is accepted
//!   wherever 1 is (CreateMigrateCheckJob, DeleteMigrateJob) but Ferry never enters it.
//! - **ModifyMigrateJob** returns the job to 1 and clears the check result (CheckFlag 3, "not
//!   checked"): "after any modification a new check is required", so StartMigrateJob is refused
//!   until a new check passes. A modified job that had run before starts over on its next start
//!   (its checkpoints on the target are cleared), because resuming from checkpoints taken under
//!   other settings could be wrong; an unmodified failed job (10) that is checked and started
//!   again resumes from its checkpoints.
//! - **CheckFlag**: 1 the check passed, 0 it did not pass, 3 no finished check (never run,
//!   running, or cleared by Modify). The 2018 field table says 0 passed / 1 failed, but its own
//!   examples and the official SDK's model (`DescribeMigrateCheckJobResponse.CheckFlag`:
//!   "0-未通过，1-校验通过, 3-未校验") say 1 passed / 0 not passed; Ferry follows the SDK.
//!   `ErrorCode` is 0 unless the check did not pass (then -1, as in the example) and
//!   `ErrorMessage` lists the FAILED items.
//! - **A check passes when no item is FAILED.** WARNING items never block (Tencent 2021:
//!   "warning: passes with a warning"); SkipCheckItem accepts WARNING items only and records the
//!   acknowledgement; FAILED items cannot be skipped (each means the migration would fail or lose
//!   data).
//! - **StopMigrateJob** accepts 6, 7 and 8; the job goes to 11 and, once its task has stopped at a
//!   safe point, to 10 with ErrorMessage "stopped by StopMigrateJob".
//! - **Pause** has no 2018 status: a paused job keeps 7 (Running) in the 2018 view; the 2021
//!   `Status` says `manualPaused` (see the `v20211206` module).
//! - Every transition is one SQLite `UPDATE … WHERE status IN (…)`: of two concurrent actions on
//!   one job, exactly one wins; the loser gets FailedOperation.NotAllowOperation and nothing
//!   changes.

use std::fmt;

use crate::manager::ControlError;

/// `MigrateJobInfo.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i64)]
pub enum JobStatus {
    Creating = 1,
    Created = 2,
    Checking = 3,
    CheckPass = 4,
    CheckNotPass = 5,
    ReadyRun = 6,
    Running = 7,
    ReadyComplete = 8,
    Success = 9,
    Failed = 10,
    Stopping = 11,
    Completing = 12,
}

impl JobStatus {
    pub const ALL: [JobStatus; 12] = [
        JobStatus::Creating,
        JobStatus::Created,
        JobStatus::Checking,
        JobStatus::CheckPass,
        JobStatus::CheckNotPass,
        JobStatus::ReadyRun,
        JobStatus::Running,
        JobStatus::ReadyComplete,
        JobStatus::Success,
        JobStatus::Failed,
        JobStatus::Stopping,
        JobStatus::Completing,
    ];

    /// The integer code.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The status of a code.
    pub fn from_code(code: i64) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The documentation's name.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Creating => "Creating",
            JobStatus::Created => "Created",
            JobStatus::Checking => "Checking",
            JobStatus::CheckPass => "CheckPass",
            JobStatus::CheckNotPass => "CheckNotPass",
            JobStatus::ReadyRun => "ReadyRun",
            JobStatus::Running => "Running",
            JobStatus::ReadyComplete => "ReadyComplete",
            JobStatus::Success => "Success",
            JobStatus::Failed => "Failed",
            JobStatus::Stopping => "Stopping",
            JobStatus::Completing => "Completing",
        }
    }

    /// The 2021-12-06 name (`DescribeMigrationDetail.Status`).
    pub fn name_2021(self) -> &'static str {
        match self {
            JobStatus::Creating | JobStatus::Created => "created",
            JobStatus::Checking => "checking",
            JobStatus::CheckPass => "checkPass",
            JobStatus::CheckNotPass => "checkNotPass",
            JobStatus::ReadyRun => "readyRun",
            JobStatus::Running => "running",
            JobStatus::ReadyComplete => "readyComplete",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::Stopping => "stopping",
            JobStatus::Completing => "completing",
        }
    }

    /// The job is doing something in the background (check, wait, run, stop, complete).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobStatus::Checking
                | JobStatus::ReadyRun
                | JobStatus::Running
                | JobStatus::ReadyComplete
                | JobStatus::Stopping
                | JobStatus::Completing
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.name())
    }
}

/// An action that changes a job, and the statuses it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Modify,
    Check,
    Start,
    Stop,
    Complete,
    Delete,
    Pause,
    Resume,
    RateLimit,
    Compare,
}

impl Operation {
    /// The action's name, for messages.
    pub fn action(self) -> &'static str {
        match self {
            Operation::Modify => "ModifyMigrateJob",
            Operation::Check => "CreateMigrateCheckJob",
            Operation::Start => "StartMigrateJob",
            Operation::Stop => "StopMigrateJob",
            Operation::Complete => "CompleteMigrateJob",
            Operation::Delete => "DeleteMigrateJob",
            Operation::Pause => "PauseMigrateJob",
            Operation::Resume => "ResumeMigrateJob",
            Operation::RateLimit => "ModifyMigrateRateLimit",
            Operation::Compare => "StartCompare",
        }
    }

    /// The statuses the action accepts.
    pub fn allowed(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Operation::Modify => &[Creating, CheckPass, CheckNotPass, Failed],
            Operation::Check => &[Creating, Created, CheckPass, CheckNotPass, Failed],
            Operation::Start => &[CheckPass],
            Operation::Stop => &[ReadyRun, Running, ReadyComplete],
            Operation::Complete => &[ReadyComplete],
            Operation::Delete => &[Creating, Created, CheckPass, CheckNotPass, Success, Failed],
            Operation::Pause | Operation::Resume => &[Running, ReadyComplete],
            Operation::RateLimit => &[
                Creating,
                Created,
                CheckPass,
                CheckNotPass,
                ReadyRun,
                Running,
                ReadyComplete,
                Failed,
            ],
            Operation::Compare => &[Running, ReadyComplete, Success],
        }
    }

    /// True when the action accepts `status`.
    pub fn allows(self, status: JobStatus) -> bool {
        self.allowed().contains(&status)
    }

    /// The refusal of the action for a job in `status` (FailedOperation.NotAllowOperation on
    /// the wire).
    pub fn refused(self, job_id: &str, status: JobStatus) -> ControlError {
        ControlError::NotAllowed {
            op: self,
            job_id: job_id.to_string(),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(JobStatus::from_code(0), None);
        assert_eq!(JobStatus::from_code(13), None);
    }

    #[test]
    fn allowed_sets_follow_the_documentation() {
        let codes = |op: Operation| op.allowed().iter().map(|s| s.code()).collect::<Vec<_>>();
        assert_eq!(codes(Operation::Modify), vec![1, 4, 5, 10]);
        assert_eq!(codes(Operation::Start), vec![4]);
        assert_eq!(codes(Operation::Complete), vec![8]);
        assert_eq!(codes(Operation::Stop), vec![6, 7, 8]);
        for refused in [3, 6, 7, 8, 11, 12] {
            assert!(!codes(Operation::Delete).contains(&refused));
        }
        let e = ferry_api::ApiError::from(Operation::Start.refused("dts-abcdefgh", JobStatus::Running));
        assert_eq!(e.code, "FailedOperation.NotAllowOperation");
        assert!(
            e.message.contains("7 (Running)") && e.message.contains("4 (CheckPass)"),
            "{}",
            e.message
        );
    }
}
