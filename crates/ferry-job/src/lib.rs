//! The job runner: a job specification (Tencent DTS CreateMigrateJob fields plus Ferry's documented
//! extensions), its validation, and the orchestration of the engines (pre-check, structure, full
//! data) that a job runs.
//!
//! One set of field rules ([`fields`], [`job_fields`]), one parser and one validator ([`spec`])
//! serve the CLI's job files and the HTTP API.

mod accounts;
pub mod continuous;
pub mod dblist;
pub mod error;
pub mod fields;
pub mod job_fields;
pub mod phase;
pub mod protect;
mod retrier;
pub mod runner;
pub mod spec;
pub mod verification;

pub use error::JobError;
pub use phase::Phase;
pub use runner::{has_progress, run_job, JobSummary, RunOptions};
pub use spec::{JobSpec, MigrateType, SpecError};
