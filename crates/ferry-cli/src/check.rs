//! `ferry check`, and the pre-check `ferry run` does before it starts: run every check item and
//! print them, each PASSED / WARNING / FAILED with what to fix.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use ferry_check::{CheckItem, CheckStatus};
use ferry_job::JobSpec;

use crate::run::load_spec;

fn status_word(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Passed => "PASSED",
        CheckStatus::Warning => "WARNING",
        CheckStatus::Failed => "FAILED",
    }
}

/// Prints items as a table; messages of WARNING and FAILED items (and of all, with `verbose`)
/// follow their line, indented.
/// Items that could not be judged because an earlier step failed (`skipped: …`) are collapsed
/// into one line per reason, so one root cause shows once.
pub fn print_items(items: &[CheckItem], verbose: bool) {
    let skipped = |i: &&CheckItem| i.status == CheckStatus::Failed && i.message.starts_with("skipped:");
    println!("{:<8} {:<14} {:<38} TITLE", "STATUS", "GROUP", "ITEM");
    for i in items.iter().filter(|i| !skipped(i)) {
        println!(
            "{:<8} {:<14} {:<38} {}",
            status_word(i.status),
            i.group,
            i.id,
            i.name
        );
        if verbose || i.status != CheckStatus::Passed {
            for line in i.message.lines() {
                println!("         {line}");
            }
        }
    }
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for i in items.iter().filter(skipped) {
        let reason = i.message.lines().next().unwrap_or_default();
        match reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => reasons.push((reason, 1)),
        }
    }
    for (reason, n) in reasons {
        println!("FAILED   {n} more items not checked: {reason}");
    }
    let (p, w, f) = ferry_check::summary(items);
    println!("{p} passed, {w} warnings, {f} failed");
}

/// Runs the pre-check of a job. `resuming`: the job already has progress on the target.
pub async fn run_checks(spec: &JobSpec, resuming: bool) -> Vec<CheckItem> {
    ferry_check::run_checks(&spec.check_input(resuming), |_, _| {}).await
}

/// `ferry check JOB_FILE`: exit 0 when no item failed, 1 otherwise.
pub async fn check(path: &Path, json: bool, verbose: bool) -> Result<ExitCode> {
    let spec = load_spec(path)?;
    let resuming = ferry_job::has_progress(&spec).await.unwrap_or(false);
    let items = run_checks(&spec, resuming).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        print_items(&items, verbose);
    }
    let failed = items.iter().any(|i| i.status == CheckStatus::Failed);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
