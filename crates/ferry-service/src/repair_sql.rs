//! Repair SQL of compare tasks: a comparison that finds differences keeps the statements that
//! make the target equal to the source (written by `ferry_verify::repair` while it compares, the
//! same as `ferry verify --repair-sql`) in `DATA_DIR/repair/JOBID/COMPARETASKID.sql`, readable by
//! the server's user only; the console offers it for download. Nothing is kept for a consistent
//! comparison, a failed one, or one restricted to some columns (repair SQL needs every column).
//! Deleting a job deletes its files.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ferry_core::progress::null_sink;
use ferry_job::JobSpec;
use ferry_verify::{VerifyMode, VerifyOptions, VerifyReport};
use tracing::warn;

use crate::store::Store;

/// An id safe as a file name: 1 to 64 letters, digits, `-` and `_` (Ferry's JobIds and
/// CompareTaskIds are).
fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `DATA_DIR/repair/JOBID` (`None` for an id unsafe as a file name).
pub fn job_dir(store: &Store, job_id: &str) -> Option<PathBuf> {
    safe_id(job_id).then(|| store.data_dir().join("repair").join(job_id))
}

/// The repair file of a compare task.
pub fn path(store: &Store, job_id: &str, compare_task_id: &str) -> Option<PathBuf> {
    safe_id(compare_task_id)
        .then(|| job_dir(store, job_id))
        .flatten()
        .map(|d| d.join(format!("{compare_task_id}.sql")))
}

/// True when the comparison compares every column of its tables (repair SQL can be written).
fn every_column(mode: &VerifyMode) -> bool {
    match mode {
        VerifyMode::Scoped { tables, .. } => tables.iter().all(|t| t.columns.is_none()),
        _ => true,
    }
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)
}

/// Runs a compare task's comparison; when it finds differences, its repair SQL is kept at
/// `keep_at` (written to `…sql.part` meanwhile; a file of an earlier run of the task is removed
/// first).
pub async fn compare(
    spec: &JobSpec,
    opts: &VerifyOptions,
    keep_at: Option<PathBuf>,
) -> Result<VerifyReport, String> {
    // A task started again: its earlier repair SQL is no longer what the task found.
    if let Some(old) = &keep_at {
        match tokio::fs::remove_file(old).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(error = %e, "removing the earlier repair SQL"),
        }
    }
    let keep_at = keep_at.filter(|_| every_column(&opts.mode));
    let Some(keep_at) = keep_at else {
        return ferry_job::verification::verify_job(spec, opts, null_sink(), None)
            .await
            .map_err(|e| e.to_string());
    };
    let part = keep_at.with_extension("sql.part");
    let file = async {
        if let Some(dir) = keep_at.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let p = part.clone();
        tokio::task::spawn_blocking(move || create_private(&p))
            .await
            .map_err(std::io::Error::other)?
    }
    .await;
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "cannot write the repair SQL; comparing without it");
            return ferry_job::verification::verify_job(spec, opts, null_sink(), None)
                .await
                .map_err(|e| e.to_string());
        }
    };
    let mut out = std::io::BufWriter::new(file);
    let report = ferry_job::verification::verify_job(spec, opts, null_sink(), Some(&mut out))
        .await
        .map_err(|e| e.to_string());
    let flushed = out.flush();
    drop(out);
    match (&report, flushed) {
        (Ok(r), Ok(())) if !r.consistent => {
            if let Err(e) = tokio::fs::rename(&part, &keep_at).await {
                warn!(error = %e, "keeping the repair SQL");
            }
        }
        (_, flushed) => {
            if let Err(e) = flushed {
                warn!(error = %e, "writing the repair SQL");
            }
            let _ = tokio::fs::remove_file(&part).await;
        }
    }
    report
}

/// The size of a compare task's repair file, `None` when there is none.
pub async fn size(store: &Store, job_id: &str, compare_task_id: &str) -> Option<u64> {
    let p = path(store, job_id, compare_task_id)?;
    tokio::fs::metadata(p).await.ok().map(|m| m.len())
}

/// Deletes a job's repair files.
pub async fn remove_job(store: &Store, job_id: &str) {
    if let Some(dir) = job_dir(store, job_id) {
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(error = %e, job_id, "deleting the job's repair SQL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_ids_make_paths() {
        assert!(safe_id("dts-ab12cd34"));
        assert!(safe_id("dts-ab12cd34-cmp_x"));
        for bad in ["", "..", "a/b", "a\\b", "a.b", "ä", &"x".repeat(65)] {
            assert!(!safe_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn repair_needs_every_column() {
        assert!(every_column(&VerifyMode::Full));
        let scoped = |columns: Option<Vec<String>>| VerifyMode::Scoped {
            databases: vec![],
            tables: vec![ferry_verify::TableScope {
                db: "d".into(),
                table: "t".into(),
                columns,
                filter: None,
            }],
            views: vec![],
            rows_percent: 100,
            time_zone: None,
        };
        assert!(every_column(&scoped(None)));
        assert!(!every_column(&scoped(Some(vec!["a".into()]))));
    }
}
