//! A job's continuous verification (`Ferry.ContinuousVerify`): while the incremental replay runs,
//! a background task keeps the chunk digests on the target current (`ferry_verify::continuous`),
//! and the verification at cut-over digests only the chunks changed since their last check.
//!
//! The task's first pass is a full one (it plans and digests every chunk); later passes digest the
//! chunks the replay marked dirty, oldest mark first, at `RowsPerSecond` per side, and every
//! `FullRescanSeconds` a full pass finds target writes no replayed event carried. A pass that
//! verified chunks is followed by the next at once (so the chunks left dirty at cut-over are
//! only those the last moments changed); an idle one, or one that found only differing chunks,
//! waits [`PASS_GAP`]. A failed pass is logged and tried
//! again after [`Policy::OUTAGE`]'s backoff, without a window: it never stops the job (the
//! cut-over verification digests whatever is left).

use std::time::Duration;

use ferry_core::chunkmap::DirtyTracker;
use ferry_core::progress::{ProgressEvent, ProgressSink, RetryWindow};
use ferry_core::retry::{Policy, Retry, Verdict};
use ferry_verify::continuous::{self, ContinuousOptions, Freshness, PassKind};
use tracing::{info, warn};

use crate::error::JobError;
use crate::spec::{ContinuousVerify, JobSpec};
use crate::verification::{replay_fence, LIVE_FENCE_TIMEOUT};

/// Pause after a background pass that had nothing new to verify.
const PASS_GAP: Duration = Duration::from_secs(1);

/// Whether the next pass follows at once: this one verified chunks that compared equal (the
/// replay is marking; chunks stored as different alone are digested again every pass, so they
/// wait for the gap).
fn busy(s: &continuous::PassStats) -> bool {
    s.chunks_hashed > s.chunks_differing
}

/// The options of a job's passes (with the replay fence while it replays).
pub fn options(spec: &JobSpec, cv: &ContinuousVerify, live: bool) -> ContinuousOptions {
    ContinuousOptions {
        job: spec.name.clone(),
        threads: spec.options.threads,
        chunk_rows: spec.options.chunk_rows,
        rows_per_second: if live { cv.rows_per_second } else { 0 },
        fence: live.then(|| replay_fence(spec, LIVE_FENCE_TIMEOUT)),
    }
}

/// A tracker holding the job's stored chunk maps, for the replay to mark with from its first
/// applied change.
pub async fn tracker(spec: &JobSpec) -> Result<DirtyTracker, JobError> {
    let tr = DirtyTracker::default();
    let n = continuous::load_tracker(&spec.source, &spec.target, &spec.selection, &spec.name, &tr).await?;
    info!(tables = n, "continuous verification: stored chunk maps loaded");
    Ok(tr)
}

/// The progress event of a freshness; `full_pass_started_at`: the UNIX second this task started
/// its last full pass.
fn event(f: &Freshness, full_pass_started_at: Option<u64>) -> ProgressEvent {
    ProgressEvent::VerifyFreshness {
        chunks: f.chunks,
        chunks_dirty: f.chunks_dirty,
        chunks_differing: f.chunks_differing,
        chunks_unverified: f.chunks_unverified,
        rows_verified: f.rows_verified,
        oldest_unverified_seconds: f.oldest_unverified_seconds,
        since_full_pass_seconds: f.since_full_pass_seconds,
        tables: f.tables,
        tables_verified: f.tables_verified,
        tables_differing: f.tables_differing,
        src_rows: f.src_rows,
        dst_rows: f.dst_rows,
        full_pass_started_at,
    }
}

/// Which pass comes next: a full one when none finished yet or the rescan period has passed.
fn next_kind(f: &Freshness, cv: &ContinuousVerify) -> PassKind {
    match (f.since_full_pass_seconds, cv.full_rescan) {
        (None, _) => PassKind::Full,
        (Some(s), Some(p)) if s >= p.as_secs() => PassKind::Full,
        _ => PassKind::Dirty,
    }
}

/// The background task; dropping it stops it (at cut-over, or when the replay fails).
pub struct Background(tokio::task::JoinHandle<()>);

impl Background {
    /// Starts the background passes.
    pub fn start(
        spec: JobSpec,
        cv: ContinuousVerify,
        tracker: DirtyTracker,
        progress: ProgressSink,
    ) -> Background {
        Background(tokio::spawn(background(spec, cv, tracker, progress)))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The wait after a failed pass (without a window the policy never gives up).
fn wait_after_failure(retry: &mut Retry) -> Duration {
    match retry.failed() {
        Verdict::Wait(wait) => wait,
        Verdict::GiveUp => Policy::OUTAGE.backoff.max,
    }
}

/// The background passes; run until aborted.
async fn background(spec: JobSpec, cv: ContinuousVerify, tracker: DirtyTracker, progress: ProgressSink) {
    let o = options(&spec, &cv, true);
    // Failed passes never end the task (no window): they only space the next ones out.
    let mut retry = Retry::new(Policy::OUTAGE, RetryWindow(Duration::ZERO));
    // When the last full pass this task ran started (the end is in the stored pass times).
    let mut full_started: Option<u64> = None;
    loop {
        let kind = match continuous::freshness(&spec.target, &spec.name).await {
            Ok(f) => {
                progress(event(&f, full_started));
                next_kind(&f, &cv)
            }
            Err(e) => {
                warn!(error = %e, "continuous verification: reading its state");
                tokio::time::sleep(wait_after_failure(&mut retry)).await;
                continue;
            }
        };
        let started = ferry_core::progress::unix_now();
        match continuous::pass(
            &spec.source,
            &spec.target,
            &spec.selection,
            Some(&tracker),
            kind,
            &o,
        )
        .await
        {
            Ok(s) => {
                retry.recovered();
                if kind == PassKind::Full {
                    full_started = Some(started);
                }
                if s.chunks_hashed > 0 {
                    info!(
                        ?kind,
                        chunks = s.chunks_hashed,
                        rows = s.rows_hashed,
                        differing = s.chunks_differing,
                        "continuous verification pass"
                    );
                }
                if !busy(&s) {
                    tokio::time::sleep(PASS_GAP).await;
                }
            }
            Err(e) => {
                warn!(error = %e, "continuous verification pass failed; trying again");
                tokio::time::sleep(wait_after_failure(&mut retry)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_first_then_dirty_until_the_rescan_is_due() {
        let cv = ContinuousVerify {
            rows_per_second: 1,
            full_rescan: Some(Duration::from_secs(60)),
        };
        let mut f = Freshness::default();
        assert_eq!(next_kind(&f, &cv), PassKind::Full);
        f.since_full_pass_seconds = Some(10);
        assert_eq!(next_kind(&f, &cv), PassKind::Dirty);
        f.since_full_pass_seconds = Some(60);
        assert_eq!(next_kind(&f, &cv), PassKind::Full);
        let never = ContinuousVerify {
            full_rescan: None,
            ..cv
        };
        assert_eq!(next_kind(&f, &never), PassKind::Dirty);
    }

    #[test]
    fn only_a_pass_that_verified_chunks_is_followed_at_once() {
        let s = |hashed, differing| continuous::PassStats {
            chunks_hashed: hashed,
            chunks_differing: differing,
            ..Default::default()
        };
        assert!(!busy(&s(0, 0)));
        assert!(!busy(&s(2, 2)));
        assert!(busy(&s(3, 1)));
    }
}
