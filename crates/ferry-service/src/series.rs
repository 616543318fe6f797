//! A job's lag series: seconds and bytes behind, events/s and rows/s, sampled by the job manager
//! every [`SAMPLE_INTERVAL_SECONDS`] while the job runs and kept server-side (in the job store) so
//! that the console's charts survive a page reload and a restart of `ferry serve`.
//!
//! Samples are kept in tiers of buckets: every [`TIERS`] entry has a bucket width and how long its
//! buckets are kept (5 s buckets for 6 hours, 5 min buckets for 8 days, so at least the last 24 h
//! are always there). A bucket holds sums and a count, so that appending to it averages. A read
//! takes the finest tier that still covers the asked period and averages it down to the asked
//! resolution ([`downsample`], pure).
//!
//! The interface is [`SeriesStore`] (append one sample, read a series since a time at a
//! resolution): the job store implements it here for both its backends (SQLite, MySQL).

use ferry_api::{BoxFuture, SeriesSample};

use crate::detail::Detail;
use crate::detail::Phase;
use crate::error::ServiceError;
use crate::store::{SeriesRow, Store};

/// One sample (UNIX seconds and the four values).
pub type Sample = SeriesSample;

/// How often the job manager appends a sample of a running job.
pub const SAMPLE_INTERVAL_SECONDS: i64 = 5;

/// A tier: bucket width and retention, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub step: i64,
    pub keep: i64,
}

/// The tiers, finest first.
pub const TIERS: &[Tier] = &[
    Tier {
        step: SAMPLE_INTERVAL_SECONDS,
        keep: 6 * 3600,
    },
    Tier {
        step: 300,
        keep: 8 * 86_400,
    },
];

/// Where a job's series is kept.
pub trait SeriesStore: Send + Sync {
    /// Adds a sample of `job_id` (taken at `sample.t`).
    fn append(&self, job_id: &str, sample: Sample) -> BoxFuture<'_, Result<(), ServiceError>>;

    /// The series of `job_id` from `since` on, at most one point per `resolution` seconds, oldest
    /// first; `now` decides which tier still covers `since`.
    fn read(
        &self,
        job_id: &str,
        since: i64,
        resolution: i64,
        now: i64,
    ) -> BoxFuture<'_, Result<Vec<Sample>, ServiceError>>;
}

/// Turns a running job's detail into a sample every [`SAMPLE_INTERVAL_SECONDS`] (events/s from
/// the change of the applied-events counter between two samples).
#[derive(Debug, Default)]
pub struct Sampler {
    last: Option<(i64, u64)>,
}

impl Sampler {
    /// A sample when one is due at `now` and a step is running; lag only during the
    /// incremental step (0 before).
    pub fn sample(&mut self, d: &Detail, now: i64) -> Option<Sample> {
        let step = d.running_step()?;
        if self.last.is_some_and(|(t, _)| now - t < SAMPLE_INTERVAL_SECONDS) {
            return None;
        }
        let events_per_second = match self.last {
            Some((t, events)) if d.events_applied >= events && now > t => {
                (d.events_applied - events) as f64 / (now - t) as f64
            }
            _ => 0.0,
        };
        self.last = Some((now, d.events_applied));
        let in_replay = step == Phase::Incremental;
        Some(Sample {
            t: now,
            seconds_behind: if in_replay { d.lag_seconds_now() } else { 0.0 },
            bytes_behind: if in_replay { d.lag_bytes as f64 } else { 0.0 },
            events_per_second,
            rows_per_second: d.rows_per_second.max(0.0),
        })
    }
}

/// The coarsest tier no coarser than `resolution` that still holds `since`; the coarsest tier
/// when none does.
pub fn tier_for(since: i64, resolution: i64, now: i64) -> Tier {
    let coarsest = TIERS[TIERS.len() - 1];
    TIERS
        .iter()
        .rev()
        .copied()
        .find(|t| now - t.keep <= since && t.step <= resolution.max(TIERS[0].step))
        .unwrap_or(coarsest)
}

/// The start of `t`'s bucket of width `step`.
pub fn bucket(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step.max(1))
}

/// Averages `samples` (oldest first) into buckets of `resolution` seconds, weighting each by its
/// count. The result is oldest first, one point per non-empty bucket.
pub fn downsample(samples: &[(Sample, u32)], resolution: i64) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut acc: Option<(Sample, f64)> = None;
    for (s, n) in samples {
        let b = bucket(s.t, resolution);
        let w = f64::from((*n).max(1));
        match &mut acc {
            Some((a, weight)) if a.t == b => {
                a.seconds_behind += s.seconds_behind * w;
                a.bytes_behind += s.bytes_behind * w;
                a.events_per_second += s.events_per_second * w;
                a.rows_per_second += s.rows_per_second * w;
                *weight += w;
            }
            _ => {
                if let Some((a, weight)) = acc.take() {
                    out.push(average(a, weight));
                }
                acc = Some((
                    Sample {
                        t: b,
                        seconds_behind: s.seconds_behind * w,
                        bytes_behind: s.bytes_behind * w,
                        events_per_second: s.events_per_second * w,
                        rows_per_second: s.rows_per_second * w,
                    },
                    w,
                ));
            }
        }
    }
    if let Some((a, weight)) = acc {
        out.push(average(a, weight));
    }
    out
}

fn average(a: Sample, weight: f64) -> Sample {
    Sample {
        t: a.t,
        seconds_behind: a.seconds_behind / weight,
        bytes_behind: a.bytes_behind / weight,
        events_per_second: a.events_per_second / weight,
        rows_per_second: a.rows_per_second / weight,
    }
}

impl SeriesStore for Store {
    fn append(&self, job_id: &str, sample: Sample) -> BoxFuture<'_, Result<(), ServiceError>> {
        let rows = TIERS
            .iter()
            .map(|tier| SeriesRow {
                job_id: job_id.to_string(),
                step: tier.step,
                t: bucket(sample.t, tier.step),
                values: [
                    sample.seconds_behind,
                    sample.bytes_behind,
                    sample.events_per_second,
                    sample.rows_per_second,
                ],
                prune_before: sample.t - tier.keep,
            })
            .collect();
        Box::pin(self.series_append(rows))
    }

    fn read(
        &self,
        job_id: &str,
        since: i64,
        resolution: i64,
        now: i64,
    ) -> BoxFuture<'_, Result<Vec<Sample>, ServiceError>> {
        let id = job_id.to_string();
        let tier = tier_for(since, resolution, now);
        let resolution = resolution.max(tier.step);
        Box::pin(async move {
            let buckets = self.series_read(&id, tier.step, bucket(since, tier.step)).await?;
            let samples: Vec<(Sample, u32)> = buckets
                .into_iter()
                .map(|b| {
                    let w = f64::from(b.n.max(1));
                    let [s, by, e, r] = b.sums;
                    (
                        Sample {
                            t: b.t,
                            seconds_behind: s / w,
                            bytes_behind: by / w,
                            events_per_second: e / w,
                            rows_per_second: r / w,
                        },
                        b.n,
                    )
                })
                .collect();
            Ok(downsample(&samples, resolution))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            t,
            seconds_behind: v,
            bytes_behind: v * 10.0,
            events_per_second: v,
            rows_per_second: v,
        }
    }

    #[test]
    fn sampler_waits_for_the_interval_and_a_running_step() {
        let mut d = Detail::new(3, 1);
        let mut sampler = Sampler::default();
        assert!(sampler.sample(&d, 100).is_none(), "nothing runs yet");
        d.observe(
            &ferry_core::progress::ProgressEvent::PhaseStarted {
                phase: "incremental".into(),
            },
            100,
        );
        d.events_applied = 50;
        d.lag_bytes = 4096;
        assert!(sampler.sample(&d, 100).is_some());
        d.events_applied = 150;
        assert!(sampler.sample(&d, 102).is_none(), "too soon");
        let s = sampler.sample(&d, 110).unwrap();
        assert!((s.events_per_second - 10.0).abs() < 1e-9);
        assert_eq!(s.bytes_behind, 4096.0);
    }

    #[test]
    fn tiers_cover_a_day() {
        assert!(TIERS.iter().any(|t| t.keep >= 86_400));
        let now = 1_000_000;
        assert_eq!(tier_for(now - 3600, 5, now).step, 5);
        assert_eq!(tier_for(now - 86_400, 5, now).step, 300);
        assert_eq!(tier_for(now - 3600, 600, now).step, 300);
        assert_eq!(tier_for(0, 5, now).step, 300);
    }

    #[test]
    fn downsampling_averages_by_weight() {
        let out = downsample(&[(s(0, 1.0), 1), (s(5, 3.0), 3), (s(10, 7.0), 1)], 10);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].t, 0);
        assert!((out[0].seconds_behind - 2.5).abs() < 1e-9);
        assert!((out[0].bytes_behind - 25.0).abs() < 1e-9);
        assert_eq!(out[1].t, 10);
        assert!(downsample(&[], 10).is_empty());
    }

    proptest! {
        #[test]
        fn downsampled_points_are_ordered_bounded_and_within_range(
            mut ts in proptest::collection::vec(0i64..100_000, 0..200),
            res in 1i64..5000,
        ) {
            ts.sort_unstable();
            let samples: Vec<(Sample, u32)> = ts.iter().map(|t| (s(*t, (*t % 97) as f64), 1)).collect();
            let out = downsample(&samples, res);
            prop_assert!(out.len() <= samples.len());
            prop_assert!(out.windows(2).all(|w| w[0].t + res <= w[1].t));
            for p in &out {
                prop_assert_eq!(p.t.rem_euclid(res), 0);
                prop_assert!(p.seconds_behind >= 0.0 && p.seconds_behind <= 96.0);
            }
        }
    }
}
