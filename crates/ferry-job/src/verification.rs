//! A job's verification phase: the comparison its `MigrateOption.ConsistencyType` asks for
//! (2 full, 3 sample with `ConsistencyParams`, 4 only the tables the previous run found
//! inconsistent; 1 and 5 none), run with the job's endpoints, mapping and limits, and recorded in
//! `ferry_meta.verify_table` for the next ConsistencyType 4 run.

use ferry_core::progress::ProgressSink;
use ferry_verify::store::{previous_inconsistent, store_results};
use ferry_verify::{VerifyMode, VerifyOptions, VerifyReport};

use crate::error::JobError;
use crate::spec::JobSpec;

/// The verification a job's `ConsistencyType` asks for (`None` for 1 and 5: no verification).
pub async fn mode_for_job(spec: &JobSpec) -> Result<Option<VerifyMode>, JobError> {
    let params = spec
        .request
        .migrate_option
        .as_ref()
        .and_then(|m| m.consistency_params.clone())
        .unwrap_or_default();
    let previous = if spec.consistency_type == 4 {
        previous_inconsistent(&spec.target, &spec.name).await?
    } else {
        None
    };
    Ok(VerifyMode::from_consistency_type(
        spec.consistency_type,
        params.select_rows_per_table,
        params.tables_select_all,
        previous,
    ))
}

/// Options for comparing a job's objects in `mode`, with the job's threads, chunk size and rate.
pub fn options_for(spec: &JobSpec, mode: VerifyMode) -> VerifyOptions {
    VerifyOptions {
        threads: spec.options.threads,
        chunk_rows: spec.options.chunk_rows,
        rows_per_second: spec.options.rows_per_second,
        max_keys_reported: 100,
        mode,
        fence: None,
    }
}

/// Runs the comparison and records its result on the target (except object-only runs).
pub async fn verify_job(
    spec: &JobSpec,
    opts: &VerifyOptions,
    progress: ProgressSink,
    repair: Option<&mut (dyn std::io::Write + Send)>,
) -> Result<VerifyReport, JobError> {
    let report = ferry_verify::verify(
        &spec.source,
        &spec.target,
        &spec.selection,
        opts,
        progress,
        repair,
    )
    .await?;
    if opts.mode != VerifyMode::Objects {
        store_results(&spec.target, &spec.name, &report).await?;
    }
    Ok(report)
}
