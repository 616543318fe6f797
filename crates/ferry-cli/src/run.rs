//! `ferry run` and `ferry validate`: read and validate a job file, run it with live progress,
//! print the summary. Ctrl-C stops safely (the next run resumes); SIGHUP re-reads rate limits.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use ferry_core::throttle::Throttle;
use ferry_job::runner::ReplayControl;
use ferry_job::spec::MigrateJobRequest;
use ferry_job::{run_job, JobSpec, JobSummary, MigrateType, RunOptions};
use ferry_load::WriteMethod;

use crate::progress::{format_duration, Display, Tracker};
use crate::ProgressMode;

pub fn load_spec(path: &Path) -> Result<JobSpec> {
    let req = MigrateJobRequest::from_file(path).map_err(|e| anyhow::anyhow!("invalid job file: {e}"))?;
    let spec = req
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid job file {}: {e}", path.display()))?;
    Ok(spec)
}

/// `ferry validate`.
pub fn validate(path: &Path) -> Result<ExitCode> {
    let spec = load_spec(path)?;
    println!("job {:?} is valid", spec.name);
    println!("  type       {:?}", spec.migrate_type);
    println!("  source     {}", spec.source.display_name());
    println!("  target     {}", spec.target.display_name());
    println!("  objects    {}", serde_json::to_string(&spec.selection.objects)?);
    println!(
        "  threads    {} · chunk rows {} · write {:?} · existing tables {:?}",
        spec.options.threads,
        spec.options.chunk_rows,
        spec.options.write_method,
        spec.options.existing_tables
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn watch_hangup(path: PathBuf, throttle: Arc<Throttle>) {
    use tokio::signal::unix::{signal, SignalKind};
    let hup = signal(SignalKind::hangup());
    tokio::spawn(async move {
        let Ok(mut hup) = hup else {
            return;
        };
        while hup.recv().await.is_some() {
            match load_spec(&path) {
                Ok(spec) => {
                    throttle.set_limits(spec.options.rows_per_second, spec.options.bytes_per_second);
                    eprintln!(
                        "rate limit now {} rows/s, {} bytes/s (0 = unlimited)",
                        spec.options.rows_per_second, spec.options.bytes_per_second
                    );
                }
                Err(e) => eprintln!("SIGHUP: job file not reloaded: {e:#}"),
            }
        }
    });
}

#[cfg(not(unix))]
fn watch_hangup(_path: PathBuf, _throttle: Arc<Throttle>) {}

/// MigrateType 3: completes the replay on SIGUSR1, on `complete` typed on a terminal, or when
/// caught up (`--complete-when-caught-up`).
fn watch_completion(control: ReplayControl, when_caught_up: bool) {
    if when_caught_up {
        let c = control.clone();
        tokio::spawn(async move {
            c.wait_ready().await;
            eprintln!("caught up with the source: completing");
            c.complete();
        });
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let c = control.clone();
        // Registered here, synchronously, so a SIGUSR1 sent at any time after start completes
        // the job instead of killing the process (the signal's default action).
        let usr1 = signal(SignalKind::user_defined1());
        tokio::spawn(async move {
            let Ok(mut usr1) = usr1 else {
                return;
            };
            if usr1.recv().await.is_some() {
                eprintln!("SIGUSR1: completing (draining the changes up to the source's current position)");
                c.complete();
            }
        });
    }
    if std::io::stdin().is_terminal() {
        std::thread::spawn(move || {
            let mut line = String::new();
            loop {
                line.clear();
                match std::io::stdin().read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.trim().eq_ignore_ascii_case("complete") => {
                        eprintln!("completing (draining the changes up to the source's current position)");
                        control.complete();
                        return;
                    }
                    Ok(_) => eprintln!("type `complete` and Enter to cut over, Ctrl-C to stop (resumable)"),
                }
            }
        });
    }
}

/// `DstInfo.ReadOnly`: a stopped run puts the target's read_only back (the next run sets it again).
async fn restore_read_only(spec: &JobSpec) {
    if let Err(e) = ferry_job::protect::restore(spec).await {
        eprintln!("warning: the target's read_only could not be restored ({e}); it is restored when the job completes");
    }
}

/// The switches of `ferry run`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    /// Forget the job's earlier progress on the target.
    pub restart: bool,
    /// No pre-check.
    pub skip_check: bool,
    /// MigrateType 3: complete once caught up.
    pub complete_when_caught_up: bool,
    /// `--epoch`: the ownership epoch this run fences its checkpoints with.
    pub epoch: Option<u64>,
}

/// `ferry run`.
pub async fn run(path: &Path, mode: ProgressMode, flags: RunFlags) -> Result<ExitCode> {
    let RunFlags {
        restart,
        skip_check,
        complete_when_caught_up,
        epoch,
    } = flags;
    let spec = load_spec(path)?;
    let mut opts = RunOptions::for_spec(&spec);
    opts.restart = restart;
    opts.epoch = epoch;
    let control = opts.replay.clone();
    watch_hangup(path.to_path_buf(), opts.throttle.clone());
    if spec.migrate_type == MigrateType::FullIncremental {
        watch_completion(control.clone(), complete_when_caught_up);
    }
    if !skip_check {
        let resuming = !restart && ferry_job::has_progress(&spec).await.unwrap_or(false);
        eprintln!("pre-check …");
        let items = crate::check::run_checks(&spec, resuming).await;
        let (p, w, f) = ferry_check::summary(&items);
        if f > 0 {
            crate::check::print_items(&items, false);
            eprintln!("error: job {:?} not started: {f} pre-check item(s) FAILED (fix them, or run with --skip-check)", spec.name);
            return Ok(ExitCode::FAILURE);
        }
        for i in items
            .iter()
            .filter(|i| i.status == ferry_check::CheckStatus::Warning)
        {
            eprintln!(
                "warning: {} ({}): {}",
                i.name,
                i.id,
                i.message.lines().next().unwrap_or_default()
            );
        }
        eprintln!("pre-check: {p} passed, {w} warnings, 0 failed");
    }
    let tracker = Arc::new(Tracker::default());
    let display = Display::spawn(tracker.clone(), mode);
    let sink = tracker.sink();
    let job = run_job(&spec, opts, sink);
    tokio::pin!(job);
    let result = tokio::select! {
        r = &mut job => r,
        _ = tokio::signal::ctrl_c() => {
            if tracker.phase() == "incremental" {
                // Stop the replay at a transaction boundary and write its checkpoint.
                control.cancel();
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), &mut job).await;
            }
            display.finish();
            restore_read_only(&spec).await;
            eprintln!("interrupted: finished chunks and applied changes are kept; run the same command again to resume");
            return Ok(ExitCode::from(130));
        }
    };
    display.finish();
    if let Err(ferry_job::JobError::Cancelled) = &result {
        restore_read_only(&spec).await;
        eprintln!("stopped: run the same command again to resume");
        return Ok(ExitCode::from(130));
    }
    match result {
        Ok(summary) => {
            print_summary(&spec, &summary);
            match &summary.verification {
                Some(v) if !v.consistent => Ok(ExitCode::from(2)),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Err(e) => {
            eprintln!("error: job {:?} failed: {e}", spec.name);
            if e.kind() == ferry_core::ErrorKind::Transient {
                eprintln!(
                    "this looks transient: run the same command again to resume from the last checkpoint"
                );
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_summary(spec: &JobSpec, s: &JobSummary) {
    if s.already_complete {
        println!(
            "job {:?} already completed on this target: nothing to do (use --restart to run it again)",
            spec.name
        );
        return;
    }
    let secs = s.elapsed.as_secs_f64().max(1e-3);
    println!(
        "job {:?} finished in {} ({} → {})",
        spec.name,
        format_duration(s.elapsed),
        s.source_flavor,
        s.target_flavor
    );
    println!(
        "  tables      {} ({} objects created)",
        s.tables, s.objects_created
    );
    if s.accounts > 0 {
        println!(
            "  accounts    {} created or altered (Ferry.Accounts / IsOverrideRoot)",
            s.accounts
        );
    }
    if let Some(snap) = &s.snapshot {
        println!(
            "  rows        {} ({:.1} MB; {:.0} rows/s, {:.1} MB/s)",
            s.rows,
            s.bytes as f64 / 1e6,
            s.rows as f64 / secs,
            s.bytes as f64 / 1e6 / secs
        );
        println!(
            "  chunks      {} ({} resumed from an earlier run)",
            s.chunks, s.chunks_resumed
        );
        let method = match s.write_method {
            Some(WriteMethod::LoadData) => "LOAD DATA LOCAL INFILE",
            Some(WriteMethod::Insert) => "multi-row INSERT",
            _ => "auto",
        };
        println!("  write path  {method}");
        println!("  lock held   {} ms", s.lock_ms);
        if let Some(ms) = s.longest_read_view_ms {
            println!("  read views  one per chunk (lock-free), the longest open {ms} ms");
        }
        println!("  snapshot    {snap}");
    }
    if let Some(r) = &s.replay {
        println!(
            "  incremental {} transactions, {} rows, {} DDL applied ({} events read, {} skipped, {} reconnects)",
            r.transactions, r.rows, r.ddl, r.events, r.skipped, r.reconnects
        );
        if r.excluded > 0 {
            println!(
                "  excluded    {} row changes of kinds Ferry.DbList dml_op does not list (not replayed)",
                r.excluded
            );
        }
        if let Some(t) = &r.cutover_target {
            println!("  cut-over    requested at source position {t}");
        }
        println!("  final position {}", r.final_pos);
        println!(
            "  final GTID     {}",
            r.final_gtid
                .as_deref()
                .unwrap_or("(none: the source does not use GTIDs)")
        );
    }
    if let Some(v) = &s.verification {
        let rows: u64 = v.tables.iter().map(|t| t.rows_compared).sum();
        if let Some((rehashed, total, read)) = s.cutover_chunks {
            println!(
                "  cut-over    {rehashed} of {total} chunks digested again, {read} rows read, in {:.2} s (continuous verification)",
                v.elapsed_ms as f64 / 1000.0
            );
        }
        if v.consistent {
            println!(
                "  verified    consistent: {} tables, {rows} rows compared",
                v.tables.len()
            );
        } else {
            println!("  verified    DIFFERENCES found ({rows} rows compared):");
            print!("{}", v.render_text());
            println!(
                "  run `ferry verify JOB_FILE --repair-sql FILE` for the statements that repair the target"
            );
        }
    }
}
