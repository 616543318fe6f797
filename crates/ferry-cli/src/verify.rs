//! `ferry verify JOB_FILE`: compare the job's source and target (row counts, chunked checksums,
//! row-level diff, objects), print a readable report or `--json`, optionally write repair SQL.
//!
//! The comparison follows the job's `MigrateOption.ConsistencyType`: 2 full, 3 sample
//! (`ConsistencyParams.SelectRowsPerTable` percent of the rows of every chunk in
//! `TablesSelectAll` percent of the tables, row counts of `TablesSelectCount` percent), 4 only the tables the job's previous verification
//! found inconsistent (kept on the target in `ferry_meta.verify_table`; full when there is none).
//! With 1 or 5 (no verification during the job) `ferry verify` says so and compares in full; a
//! mode given on the command line wins over the job file.
//!
//! While the job's incremental replay runs (`ferry run` of a MigrateType 3 job before cut-over,
//! or a job of `ferry serve` named by `--job-id`),
//! chunks found different are compared again once the replay has applied the source up to the
//! position read when they were compared, and their differing rows are re-checked in fenced
//! rounds, so changes still in flight are not reported (rows written on the source during every
//! round are listed as changing continuously).
//!
//! The per-row hash of the chunk digests is the fastest both servers support (`CRC32` + `CRC32C`
//! on MariaDB 10.8+, a 64-bit MD5 prefix elsewhere); `FERRY_VERIFY_ROW_HASH=md5|crc32|auto` in the
//! environment forces one (for benchmarks and diagnosis).
//!
//! A full verification without a live replay stores each chunk's digests on the target as it goes;
//! a run interrupted (killed, failed) is resumed by the next one while the source's binlog
//! position has not moved: only the chunks not yet digested are digested
//! (`ferry_verify::resume`). `--restart` digests every chunk.
//!
//! Exit status: 0 consistent, 2 differences found, 1 error.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_core::progress::{null_sink, ProgressEvent, ProgressSink};
use ferry_verify::{RowHash, VerifyMode};

/// The row hash from `FERRY_VERIFY_ROW_HASH` (unset or empty: automatic).
fn row_hash_from_env() -> Result<RowHash> {
    match std::env::var("FERRY_VERIFY_ROW_HASH")
        .unwrap_or_default()
        .as_str()
    {
        "" | "auto" => Ok(RowHash::Auto),
        "md5" => Ok(RowHash::Md5),
        "crc32" => Ok(RowHash::Crc32Pair),
        other => bail!("FERRY_VERIFY_ROW_HASH={other:?}: use auto, crc32 or md5"),
    }
}

/// Parses a command-line mode: `full`, `objects`, `sample:ROWS_PERCENT[:TABLES_PERCENT]`,
/// `tables:DB.TABLE[,DB.TABLE…]`.
pub fn parse_mode(s: &str) -> Result<VerifyMode> {
    let pct = |v: &str| -> Result<u8> {
        match v.parse::<u8>() {
            Ok(p) if (1..=100).contains(&p) => Ok(p),
            _ => bail!("{v:?} is not a percentage (1..100)"),
        }
    };
    let (head, rest) = s.split_once(':').unwrap_or((s, ""));
    Ok(match head {
        "full" if rest.is_empty() => VerifyMode::Full,
        "objects" if rest.is_empty() => VerifyMode::Objects,
        "sample" => {
            let (r, t) = rest.split_once(':').unwrap_or((rest, "100"));
            VerifyMode::Sample {
                rows_percent: pct(r)?,
                tables_percent: pct(t)?,
            }
        }
        "tables" => {
            let mut list = Vec::new();
            for item in rest.split(',').filter(|x| !x.is_empty()) {
                let Some((d, t)) = item.split_once('.') else {
                    bail!("{item:?} is not DB.TABLE");
                };
                list.push((d.to_string(), t.to_string()));
            }
            if list.is_empty() {
                bail!("tables: needs at least one DB.TABLE");
            }
            VerifyMode::OnlyTables(list)
        }
        _ => bail!("unknown verify mode {s:?}: use full, objects, sample:ROWS[:TABLES] or tables:DB.TABLE,…"),
    })
}

/// A progress line on stderr every two seconds: chunks and rows compared.
fn stderr_progress() -> ProgressSink {
    let chunks = Arc::new(AtomicU64::new(0));
    let rows = Arc::new(AtomicU64::new(0));
    let last = Arc::new(Mutex::new(Instant::now()));
    Arc::new(move |e| {
        if let ProgressEvent::ChunkDone { rows: r, .. } = e {
            let c = chunks.fetch_add(1, Ordering::Relaxed) + 1;
            let n = rows.fetch_add(r, Ordering::Relaxed) + r;
            if let Ok(mut l) = last.lock() {
                if l.elapsed() >= Duration::from_secs(2) {
                    *l = Instant::now();
                    eprintln!("verify: {c} chunk(s), {n} row(s) compared");
                }
            }
        }
    })
}

/// The options of `ferry verify`.
pub struct How<'a> {
    /// Print the report as JSON.
    pub json: bool,
    pub repair_sql: Option<&'a Path>,
    /// `--mode`, over the job's ConsistencyType.
    pub mode: Option<VerifyMode>,
    /// `--job-id`: the key of a served job's checkpoints.
    pub job_id: Option<&'a str>,
    /// `--restart`: digest every chunk, forgetting an interrupted run's.
    pub restart: bool,
}

/// `ferry verify`.
pub async fn verify(job_file: &Path, how: How<'_>) -> Result<ExitCode> {
    let How {
        json,
        repair_sql,
        mode: mode_override,
        job_id,
        restart,
    } = how;
    let mut spec = crate::run::load_spec(job_file)?;
    if let Some(id) = job_id {
        let id = id.trim();
        if id.is_empty() || id.len() > 191 {
            bail!("--job-id {id:?}: give the JobId that CreateMigrateJob returned (1 to 191 characters)");
        }
        // The key of the job's checkpoints on the target (the replay fence reads it).
        spec.name = id.to_string();
    }
    let mode = match mode_override {
        Some(m) => m,
        None => match ferry_job::verification::mode_for_job(&spec).await? {
            Some(m) => m,
            None => {
                eprintln!(
                    "verification disabled by ConsistencyType {} in the job; `ferry verify` compares in full",
                    spec.consistency_type
                );
                VerifyMode::Full
            }
        },
    };
    if let VerifyMode::OnlyTables(list) = &mode {
        if list.is_empty() && !json {
            eprintln!("the previous verification found every table consistent: nothing to compare again");
        }
    }
    let row_hash = row_hash_from_env()?;
    let mut opts = ferry_job::verification::options_for_live(&spec, mode).await?;
    opts.row_hash = row_hash;
    // A full verification stores its chunks as it goes and resumes an interrupted run's.
    opts.resume = Some(ferry_verify::resume::Resume {
        job: spec.name.clone(),
        restart,
    });
    if opts.fence.is_some() {
        eprintln!(
            "replay is running: differing chunks and rows are re-checked once the replay has passed them"
        );
    }
    let mut file = match repair_sql {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let progress = if json { null_sink() } else { stderr_progress() };
    let report = ferry_job::verification::verify_job(
        &spec,
        &opts,
        progress,
        file.as_mut().map(|f| f as &mut (dyn Write + Send)),
    )
    .await
    .with_context(|| format!("verification of job {:?} failed", spec.name))?;
    if let Some(mut f) = file {
        f.flush().context("writing the repair SQL")?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    if let Some(p) = repair_sql {
        if !json {
            eprintln!("repair SQL written to {} (run it on the target)", p.display());
        }
    }
    Ok(ExitCode::from(report.exit_status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(parse_mode("full").unwrap(), VerifyMode::Full);
        assert_eq!(parse_mode("objects").unwrap(), VerifyMode::Objects);
        assert_eq!(
            parse_mode("sample:10").unwrap(),
            VerifyMode::Sample {
                rows_percent: 10,
                tables_percent: 100
            }
        );
        assert_eq!(
            parse_mode("tables:a.b,c.d").unwrap(),
            VerifyMode::OnlyTables(vec![("a".into(), "b".into()), ("c".into(), "d".into())])
        );
        assert!(parse_mode("sample:0").is_err());
        assert!(parse_mode("bogus").is_err());
    }
}
