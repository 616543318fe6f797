//! Continuous verification's freshness (`Ferry.ContinuousVerify`) as a job's detail keeps it:
//! the last `VerifyFreshness` event of the job's background verifier, with the second it arrived,
//! so that the API shows ages and times as of now. Pure: the figures, their derived times, the
//! share of chunks whose digests are current, and the text `ferry run` prints.
//!
//! Where each figure appears in the API is [`crate::actions::v20211206`]'s business
//! (DescribeMigrationDetail's `verification` step and `CompareTask`, and DescribeCompareReport of
//! the task [`continuous_task_id`]); docs/api.md lists them.

use serde::{Deserialize, Serialize};

use ferry_core::progress::{freshness_summary, ProgressEvent};

/// The comparison task id under which DescribeCompareReport shows a job's continuous
/// verification (`JOBID-continuous`; created tasks are `JOBID-cmp-` and 8 characters).
pub fn continuous_task_id(job_id: &str) -> String {
    format!("{job_id}-continuous")
}

/// The job's continuous verification as last reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Freshness {
    /// Chunks planned; changed since their last digest (dirty marks); last digests differing;
    /// never digested.
    pub chunks: u64,
    pub chunks_dirty: u64,
    pub chunks_differing: u64,
    pub chunks_unverified: u64,
    /// Rows digested by the background passes so far (every pass counted).
    pub rows_verified: u64,
    /// As of [`Self::observed_at`].
    pub oldest_unverified_seconds: Option<u64>,
    pub since_full_pass_seconds: Option<u64>,
    pub tables: u64,
    pub tables_verified: u64,
    pub tables_differing: u64,
    /// Rows of the digested chunks on each side, as of their last digests.
    pub src_rows: u64,
    pub dst_rows: u64,
    /// UNIX seconds the last full pass started (`None`: not in this run of the job).
    pub full_pass_started_at: Option<i64>,
    /// UNIX seconds of the report.
    pub observed_at: i64,
    /// UNIX seconds of the first report of this run of the job.
    pub started_at: i64,
}

impl Freshness {
    /// Updates from a `VerifyFreshness` event at `now`; `None` for other events.
    pub fn observe(prev: Option<&Freshness>, ev: &ProgressEvent, now: i64) -> Option<Freshness> {
        let ProgressEvent::VerifyFreshness {
            chunks,
            chunks_dirty,
            chunks_differing,
            chunks_unverified,
            rows_verified,
            oldest_unverified_seconds,
            since_full_pass_seconds,
            tables,
            tables_verified,
            tables_differing,
            src_rows,
            dst_rows,
            full_pass_started_at,
        } = ev
        else {
            return None;
        };
        Some(Freshness {
            chunks: *chunks,
            chunks_dirty: *chunks_dirty,
            chunks_differing: *chunks_differing,
            chunks_unverified: *chunks_unverified,
            rows_verified: *rows_verified,
            oldest_unverified_seconds: *oldest_unverified_seconds,
            since_full_pass_seconds: *since_full_pass_seconds,
            tables: *tables,
            tables_verified: *tables_verified,
            tables_differing: *tables_differing,
            src_rows: *src_rows,
            dst_rows: *dst_rows,
            full_pass_started_at: full_pass_started_at.map(|t| t as i64),
            observed_at: now,
            started_at: prev.map_or(now, |p| p.started_at),
        })
    }

    /// Chunks whose last digests are current and equal: neither dirty, different nor never
    /// digested.
    pub fn chunks_current(&self) -> u64 {
        self.chunks
            .saturating_sub(self.chunks_dirty)
            .saturating_sub(self.chunks_differing)
            .saturating_sub(self.chunks_unverified)
    }

    /// [`Self::chunks_current`] in percent of the chunks (0 before any plan; 100 only when all).
    pub fn percent(&self) -> u64 {
        match self.chunks {
            0 => 0,
            n => self.chunks_current() * 100 / n,
        }
    }

    /// UNIX seconds the last full pass ended.
    pub fn full_pass_finished_at(&self) -> Option<i64> {
        self.since_full_pass_seconds.map(|s| self.observed_at - s as i64)
    }

    /// Seconds since the last full pass ended, as of `now`.
    pub fn since_full_pass_at(&self, now: i64) -> Option<u64> {
        self.full_pass_finished_at().map(|t| (now - t).max(0) as u64)
    }

    /// Age of the oldest unverified change as of `now` (it was still unverified at the report).
    pub fn oldest_unverified_at(&self, now: i64) -> Option<u64> {
        self.oldest_unverified_seconds
            .map(|s| s + (now - self.observed_at).max(0) as u64)
    }

    /// The conclusion over what has been digested: `different` when a chunk's last digests
    /// differ, `same` once every chunk has been digested and none differs, `""` before.
    pub fn conclusion(&self) -> &'static str {
        if self.chunks_differing > 0 {
            "different"
        } else if self.chunks > 0 && self.chunks_unverified == 0 {
            "same"
        } else {
            ""
        }
    }

    /// The text the API shows (`ferry run` prints the same figures), ages as of `now`.
    pub fn message(&self, now: i64) -> String {
        format!(
            "continuous verification: {} rows verified; {}",
            self.rows_verified,
            freshness_summary(
                self.chunks,
                self.chunks_dirty,
                self.chunks_differing,
                self.chunks_unverified,
                self.oldest_unverified_at(now),
                self.since_full_pass_at(now)
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(dirty: u64, since: Option<u64>, oldest: Option<u64>) -> ProgressEvent {
        ProgressEvent::VerifyFreshness {
            chunks: 10,
            chunks_dirty: dirty,
            chunks_differing: 0,
            chunks_unverified: 0,
            rows_verified: 1000,
            oldest_unverified_seconds: oldest,
            since_full_pass_seconds: since,
            tables: 2,
            tables_verified: 2,
            tables_differing: 0,
            src_rows: 1000,
            dst_rows: 1000,
            full_pass_started_at: Some(90),
        }
    }

    #[test]
    fn figures_and_times_follow_the_last_report() {
        assert_eq!(
            Freshness::observe(None, &ProgressEvent::TableDone { table: "t".into() }, 1),
            None
        );
        let f = Freshness::observe(None, &event(0, Some(5), None), 100).expect("a freshness");
        assert_eq!((f.started_at, f.observed_at), (100, 100));
        assert_eq!((f.percent(), f.conclusion()), (100, "same"));
        assert_eq!(f.full_pass_finished_at(), Some(95));
        assert_eq!(f.full_pass_started_at, Some(90));
        let g = Freshness::observe(Some(&f), &event(3, Some(7), Some(2)), 102).expect("a freshness");
        assert_eq!(g.started_at, 100, "the first report of the run is kept");
        assert_eq!((g.chunks_current(), g.percent()), (7, 70));
        assert_eq!(g.since_full_pass_at(110), Some(15));
        assert_eq!(g.oldest_unverified_at(110), Some(10));
        assert_eq!(
            g.message(110),
            "continuous verification: 1000 rows verified; chunks: 10 (3 dirty, 0 different, 0 not yet); \
             oldest unverified change 10 s old; full pass 15 s ago"
        );
        let mut h = g.clone();
        h.chunks_differing = 1;
        assert_eq!(h.conclusion(), "different");
        h.chunks_differing = 0;
        h.chunks_unverified = 4;
        assert_eq!((h.conclusion(), h.percent()), ("", 30));
        assert_eq!(Freshness::default().percent(), 0);
    }
}
