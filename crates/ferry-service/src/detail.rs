//! A job's steps and progress (`MigrateDetailInfo`), built from the runner's progress events.
//!
//! Steps follow the API contract: `structure`, `full_data` (MigrateType 2 and 3), `post_data`,
//! `incremental` (MigrateType 3), `verification` (ConsistencyType 2, 3, 4), numbered from 1 in the
//! job's own list. Step status: 0 default (not reached yet), 1 successful, 2 failed, 3 executing,
//! 4 not executed (the job ended before it).
//!
//! A job lists its steps from creation on (all 0 until it starts), so a client sees what the
//! job will do; `StepNow` is 0 until the first step starts.
//!
//! Progress: `CurrentStepProgress` is the current step's percentage: `full_data` counts chunks
//! done against chunks planned (resumed chunks included), `incremental` is 100 once the replay has
//! caught up with the source (ReadyToComplete) and 0 before, other steps 0 until they finish.
//! `Progress` is the mean over the job's steps (a finished step counts 100). Lag comes from the
//! replay's progress events: `SecondsBehindMaster` in seconds, `MasterSlaveDistance` in MB
//! (binlog bytes behind / 1 048 576, rounded down).
//!
//! Per table ([`TableProgress`]): the full load's chunks planned and done, rows and bytes copied,
//! the source's row estimate, and the time left at the table's own rate in this run, from the
//! load's `TablePlanned`, `ChunkDone` and `TableDone` events; kept with the detail, so the list
//! survives a restart (a resumed load plans again from the target's checkpoints, exactly).
//!
//! Outages: while an engine retries a transient failure ([`ProgressEvent::Trouble`]) the detail
//! holds the [`Problem`] (which side, the error, the attempt, since when) and the current step's
//! message says it; [`ProgressEvent::Recovered`] clears both. The lag keeps growing meanwhile:
//! from the replay's own reports, and, when the reports stop (a session being set up, an
//! applier blocked), by the time since the last one ([`Detail::lag_seconds_now`]). The bytes
//! behind are unknown while the source's binlog end cannot be read
//! ([`Detail::lag_bytes_known`]).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use ferry_core::progress::ProgressEvent;

pub use crate::freshness::Freshness;
pub use crate::job::{Phase, StepStatus};

/// Replay reports older than this are stale: the lag is extrapolated from the last one.
pub const REPORT_MAX_AGE: Duration = Duration::from_secs(3);

/// A problem an engine is retrying.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Problem {
    /// `incremental replay`, `full load`, `verification`.
    pub what: String,
    /// `source`, `target`, or `""`.
    pub side: String,
    pub error: String,
    /// Failed attempts in this outage.
    pub attempt: u32,
    /// UNIX seconds of its first failure.
    pub since: i64,
    /// UNIX seconds at which the job fails if it lasts (`Ferry.RetryWindowSeconds`).
    pub gives_up_at: Option<i64>,
}

impl Problem {
    /// What the API shows (`ErrorInfo`, `BriefMsg`, the step's message) while it lasts.
    pub fn message(&self) -> String {
        let who = match self.side.as_str() {
            "" => "a server is unreachable or failing".to_string(),
            side => format!("the {side} is unreachable or failing"),
        };
        let until = match self.gives_up_at {
            Some(t) => format!(
                "the job fails at {} UTC if it lasts (Ferry.RetryWindowSeconds)",
                crate::actions::fmt_time(Some(t))
            ),
            None => "retrying until stopped (Ferry.RetryWindowSeconds = 0)".into(),
        };
        format!(
            "{}: {who} since {} UTC; retry {}, {until}: {}",
            self.what,
            crate::actions::fmt_time(Some(self.since)),
            self.attempt,
            self.error
        )
    }
}

/// One table's full-load progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TableProgress {
    /// `db.table` on the source.
    pub table: String,
    pub chunks: u64,
    pub chunks_done: u64,
    /// Rows and bytes of the chunks done (earlier runs' included).
    pub rows: u64,
    pub bytes: u64,
    /// The source's estimate (statistics) when the load was planned.
    pub estimated_rows: u64,
    /// Every chunk of the table is committed.
    pub done: bool,
    /// UNIX seconds of this run's first chunk of the table and the rows then (the rate's base).
    pub first_chunk_at: Option<i64>,
    pub rows_at_first_chunk: u64,
}

impl TableProgress {
    /// `done`, `copying` (a chunk of it committed in this run) or `waiting`.
    pub fn state(&self) -> &'static str {
        if self.done || (self.chunks > 0 && self.chunks_done >= self.chunks) {
            "done"
        } else if self.first_chunk_at.is_some() {
            "copying"
        } else {
            "waiting"
        }
    }

    /// Rows per second copied in this run since the table's first chunk, as of `now`.
    pub fn rows_per_second(&self, now: i64) -> Option<f64> {
        let since = self.first_chunk_at?;
        let secs = now - since;
        let rows = self.rows.saturating_sub(self.rows_at_first_chunk);
        (secs > 0 && rows > 0).then(|| rows as f64 / secs as f64)
    }

    /// Seconds left at the table's own rate: its estimated rows not copied yet over
    /// [`Self::rows_per_second`]. `None` when done, not started, or without a rate yet.
    pub fn eta_secs(&self, now: i64) -> Option<u64> {
        if self.state() != "copying" {
            return None;
        }
        eta_secs(
            self.estimated_rows.saturating_sub(self.rows),
            self.rows_per_second(now)?,
        )
    }
}

/// Seconds to copy `left` rows at `rate` rows/s (`None` without a rate).
pub fn eta_secs(left: u64, rate: f64) -> Option<u64> {
    (rate > 0.0).then(|| (left as f64 / rate).ceil() as u64)
}

/// One step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: Phase,
    pub name: String,
    /// 0 default, 1 successful, 2 failed, 3 executing, 4 not executed.
    pub status: StepStatus,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub finished_at: Option<i64>,
    #[serde(default)]
    pub message: String,
}

pub const STEP_DEFAULT: StepStatus = StepStatus::Default;
pub const STEP_OK: StepStatus = StepStatus::Ok;
pub const STEP_FAILED: StepStatus = StepStatus::Failed;
pub const STEP_RUNNING: StepStatus = StepStatus::Running;
pub const STEP_NOT_RUN: StepStatus = StepStatus::NotRun;

/// A job's detail: steps, counters and lag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Detail {
    pub steps: Vec<Step>,
    /// Index of the current (or last) step.
    pub current: Option<usize>,
    pub chunks_planned: u64,
    pub chunks_done: u64,
    pub rows_estimated: u64,
    /// Rows and bytes copied by the full load (this job's runs, resumed chunks not included).
    pub rows_copied: u64,
    pub bytes_copied: u64,
    /// Rows per second over the last progress interval (load or replay).
    pub rows_per_second: f64,
    pub lag_seconds: f64,
    pub lag_bytes: u64,
    pub events_applied: u64,
    pub replay_rows: u64,
    pub replay_transactions: u64,
    pub applied_position: String,
    /// The replay has caught up (ReadyToComplete).
    pub ready: bool,
    /// A lock-free or resumed load's window: the target is not consistent before this position
    /// (empty once the replay has passed it, or when there is none).
    pub consistent_after: String,
    pub retries: u64,
    pub last_retry_error: String,
    /// UNIX seconds of the last transient failure (0: none).
    pub last_error_at: i64,
    /// The outage under way, if any.
    pub problem: Option<Problem>,
    /// The source's binlog end could not be read at the last report: `lag_bytes` is only the
    /// last known value.
    pub lag_bytes_unknown: bool,
    /// Differing rows found by the job's verification step (and its tables).
    pub verification_differences: u64,
    /// Continuous verification (`Ferry.ContinuousVerify`): its freshness from the last
    /// `VerifyFreshness` event of this run (`None`: none).
    pub continuous: Option<Freshness>,
    pub verification_tables_different: u64,
    /// The job's own verification report (`ferry_verify::VerifyReport` as JSON), kept for the
    /// console: the tables, their conclusion and the differing keys.
    pub verification_report: Option<serde_json::Value>,
    /// The full load's tables, in plan order.
    pub tables: Vec<TableProgress>,
    /// The binlog position of the full load's snapshot (empty before it is taken).
    pub snapshot_position: String,
    #[serde(skip)]
    load_window: Option<(std::time::Instant, u64)>,
    /// When the last replay report arrived (live runs only).
    #[serde(skip)]
    lag_observed: Option<Instant>,
}

/// The job's steps (id, name) in order.
pub fn steps_for(migrate_type: i64, consistency_type: i64) -> Vec<(Phase, &'static str)> {
    let mut v = vec![(Phase::Structure, "Structure migration")];
    if migrate_type >= 2 {
        v.push((Phase::FullData, "Full data migration"));
    }
    v.push((Phase::PostData, "Indexes, foreign keys, triggers and events"));
    if migrate_type == 3 {
        v.push((Phase::Incremental, "Incremental replay"));
    }
    if matches!(consistency_type, 2..=4) {
        v.push((Phase::Verification, "Data verification"));
    }
    v
}

impl Detail {
    /// A job's steps, none reached.
    pub fn new(migrate_type: i64, consistency_type: i64) -> Detail {
        Detail {
            steps: steps_for(migrate_type, consistency_type)
                .into_iter()
                .map(|(id, name)| Step {
                    id,
                    name: name.into(),
                    status: STEP_DEFAULT,
                    ..Step::default()
                })
                .collect(),
            ..Detail::default()
        }
    }

    /// The step of a runner's phase name (`None`: not one of this job's steps).
    fn index(&self, id: &str) -> Option<usize> {
        let phase = Phase::from_id(id)?;
        self.steps.iter().position(|s| s.id == phase)
    }

    /// Applies an event; `true` when a step changed (persist now).
    pub fn observe(&mut self, ev: &ProgressEvent, now: i64) -> bool {
        match ev {
            ProgressEvent::PhaseStarted { phase } => {
                let Some(i) = self.index(phase) else { return false };
                // Phases run in order: every earlier step is done (a resumed run skips them).
                for s in &mut self.steps[..i] {
                    if s.status != STEP_OK {
                        s.status = STEP_OK;
                        s.finished_at.get_or_insert(now);
                    }
                }
                let s = &mut self.steps[i];
                s.status = STEP_RUNNING;
                s.started_at = Some(now);
                s.finished_at = None;
                s.message.clear();
                self.current = Some(i);
                if phase == "incremental" {
                    self.ready = false;
                }
                true
            }
            ProgressEvent::PhaseFinished { phase } => {
                let Some(i) = self.index(phase) else { return false };
                let s = &mut self.steps[i];
                s.status = STEP_OK;
                s.finished_at = Some(now);
                self.current = Some(i);
                true
            }
            ProgressEvent::LoadPlanned {
                chunks,
                chunks_done,
                rows_done,
                bytes_done,
                estimated_rows,
                ..
            } => {
                self.chunks_planned = *chunks;
                self.chunks_done = *chunks_done;
                // Exact after a restart: the rows of the chunks committed before, from the
                // target's checkpoint, not the counters last saved here.
                self.rows_copied = *rows_done;
                self.bytes_copied = *bytes_done;
                self.load_window = None;
                self.rows_estimated = *estimated_rows;
                false
            }
            ProgressEvent::TablePlanned {
                table,
                chunks,
                chunks_done,
                rows_done,
                bytes_done,
                estimated_rows,
            } => {
                let t = TableProgress {
                    table: table.clone(),
                    chunks: *chunks,
                    chunks_done: *chunks_done,
                    rows: *rows_done,
                    bytes: *bytes_done,
                    estimated_rows: *estimated_rows,
                    ..TableProgress::default()
                };
                match self.tables.iter_mut().find(|x| x.table == *table) {
                    Some(x) => *x = t,
                    None => self.tables.push(t),
                }
                false
            }
            ProgressEvent::SnapshotTaken { position, .. } => {
                self.snapshot_position = position.to_string();
                true
            }
            ProgressEvent::TableDone { table } => {
                if let Some(t) = self.tables.iter_mut().find(|x| x.table == *table) {
                    t.done = true;
                }
                false
            }
            ProgressEvent::ChunkDone { table, rows, bytes } => {
                if let Some(t) = self.tables.iter_mut().find(|x| x.table == *table) {
                    t.chunks_done += 1;
                    t.rows += rows;
                    t.bytes += bytes;
                    if t.first_chunk_at.is_none() {
                        t.first_chunk_at = Some(now);
                        t.rows_at_first_chunk = t.rows;
                    }
                }
                self.chunks_done += 1;
                self.rows_copied += rows;
                self.bytes_copied += bytes;
                let t = std::time::Instant::now();
                match self.load_window {
                    Some((start, base)) if t.duration_since(start).as_secs_f64() >= 1.0 => {
                        let secs = t.duration_since(start).as_secs_f64();
                        self.rows_per_second = (self.rows_copied - base) as f64 / secs;
                        self.load_window = Some((t, self.rows_copied));
                    }
                    Some(_) => {}
                    None => self.load_window = Some((t, self.rows_copied)),
                }
                false
            }
            ProgressEvent::ReplayProgress {
                applied_pos,
                lag_seconds,
                lag_bytes,
                lag_bytes_known,
                events,
                rows,
                transactions,
                rows_per_sec,
                ..
            } => {
                self.applied_position = applied_pos.clone();
                self.lag_seconds = *lag_seconds;
                self.lag_bytes = *lag_bytes;
                self.lag_bytes_unknown = !*lag_bytes_known;
                self.lag_observed = Some(Instant::now());
                self.events_applied = *events;
                self.replay_rows = *rows;
                self.replay_transactions = *transactions;
                self.rows_per_second = *rows_per_sec;
                false
            }
            ProgressEvent::InconsistentUntil { position } => {
                self.consistent_after = position.clone();
                true
            }
            ProgressEvent::Consistent { .. } => {
                self.consistent_after.clear();
                true
            }
            ProgressEvent::ReadyToComplete { position } => {
                self.ready = true;
                self.applied_position = position.clone();
                true
            }
            ProgressEvent::Retrying { error, .. } => {
                self.retries += 1;
                self.last_retry_error = error.clone();
                self.last_error_at = now;
                false
            }
            ProgressEvent::Trouble {
                what,
                side,
                error,
                attempt,
                since,
                gives_up_at,
            } => {
                let p = Problem {
                    what: what.clone(),
                    side: side.clone(),
                    error: error.clone(),
                    attempt: *attempt,
                    since: *since as i64,
                    gives_up_at: gives_up_at.map(|t| t as i64),
                };
                self.last_error_at = now;
                if let Some(s) = self.current.and_then(|i| self.steps.get_mut(i)) {
                    if s.status == STEP_RUNNING {
                        s.message = p.message();
                    }
                }
                self.problem = Some(p);
                true
            }
            ProgressEvent::Recovered { .. } => {
                let Some(p) = self.problem.take() else {
                    return false;
                };
                let text = p.message();
                if let Some(s) = self.current.and_then(|i| self.steps.get_mut(i)) {
                    if s.message == text {
                        s.message.clear();
                    }
                }
                true
            }
            ProgressEvent::VerifyFreshness { .. } => {
                self.continuous = Freshness::observe(self.continuous.as_ref(), ev, now);
                false
            }
            _ => false,
        }
    }

    /// The job ended with an error: the current step failed, later ones were not executed.
    pub fn fail(&mut self, message: &str, now: i64) {
        self.problem = None;
        self.lag_observed = None;
        let i = self
            .current
            .or_else(|| self.steps.iter().position(|s| s.status != STEP_OK));
        if let Some(i) = i {
            if let Some(s) = self.steps.get_mut(i) {
                if s.status != STEP_OK {
                    s.status = STEP_FAILED;
                    s.finished_at = Some(now);
                    s.message = message.to_string();
                }
            }
            for s in self.steps.iter_mut().skip(i + 1) {
                if s.status == STEP_DEFAULT || s.status == STEP_RUNNING {
                    s.status = STEP_NOT_RUN;
                }
            }
        }
    }

    /// The job succeeded: every step successful.
    pub fn succeed(&mut self, now: i64) {
        for s in &mut self.steps {
            if s.status != STEP_OK && s.status != STEP_FAILED {
                s.status = STEP_OK;
                s.finished_at.get_or_insert(now);
            }
        }
        self.current = self.steps.len().checked_sub(1);
        self.lag_seconds = 0.0;
        self.lag_bytes = 0;
        self.lag_bytes_unknown = false;
        self.problem = None;
        self.lag_observed = None;
    }

    /// A new run: steps not finished go back to default; counters of the old run cleared.
    pub fn reset_for_run(&mut self, migrate_type: i64, consistency_type: i64) {
        let fresh = Detail::new(migrate_type, consistency_type);
        if fresh
            .steps
            .iter()
            .map(|s| &s.id)
            .ne(self.steps.iter().map(|s| &s.id))
        {
            *self = fresh;
            return;
        }
        for s in &mut self.steps {
            if s.status != STEP_OK {
                s.status = STEP_DEFAULT;
                s.message.clear();
                s.finished_at = None;
            }
        }
        self.ready = false;
        self.lag_seconds = 0.0;
        self.lag_bytes = 0;
        self.lag_bytes_unknown = false;
        self.problem = None;
        self.lag_observed = None;
        // The report shown is the one of the run that verified last.
        self.verification_report = None;
        self.continuous = None;
    }

    /// The full load's remaining time in seconds: rows still to copy (the estimate from the
    /// source's statistics) over the current rate. `None` when the full load is not running or
    /// no rate is known yet.
    pub fn full_load_eta_secs(&self) -> Option<u64> {
        let s = self.steps.iter().find(|s| s.id == Phase::FullData)?;
        if s.status != STEP_RUNNING || self.rows_per_second <= 0.0 || self.rows_estimated == 0 {
            return None;
        }
        eta_secs(
            self.rows_estimated.saturating_sub(self.rows_copied),
            self.rows_per_second,
        )
    }

    /// A step's message for the API: its own (a problem, a result), else for the running full
    /// load the rows copied and the estimated time left.
    pub fn step_message(&self, s: &Step) -> String {
        if s.message.is_empty()
            && s.id == Phase::Incremental
            && s.status == STEP_RUNNING
            && !self.consistent_after.is_empty()
        {
            return format!(
                "replaying the full load's window idempotently: the target is consistent only once the \
                 source's changes up to {} are applied",
                self.consistent_after
            );
        }
        if !s.message.is_empty() || s.id != Phase::FullData || s.status != STEP_RUNNING {
            return s.message.clone();
        }
        match self.full_load_eta_secs() {
            Some(eta) => format!(
                "{} of about {} rows copied, {:.0} rows/s, about {} left",
                self.rows_copied,
                self.rows_estimated.max(self.rows_copied),
                self.rows_per_second,
                human_secs(eta)
            ),
            None => String::new(),
        }
    }

    /// The current step's progress, 0..=100.
    pub fn current_step_progress(&self) -> u64 {
        let Some(s) = self.current.and_then(|i| self.steps.get(i)) else {
            return 0;
        };
        self.step_progress(s)
    }

    fn step_progress(&self, s: &Step) -> u64 {
        if s.status == STEP_OK {
            return 100;
        }
        if s.status != STEP_RUNNING {
            return 0;
        }
        match s.id {
            Phase::FullData if self.chunks_planned > 0 => {
                (self.chunks_done.min(self.chunks_planned) * 100 / self.chunks_planned).min(99)
            }
            Phase::Incremental if self.ready => 100,
            _ => 0,
        }
    }

    /// The job's progress, 0..=100.
    pub fn progress(&self) -> u64 {
        if self.steps.is_empty() {
            return 0;
        }
        let sum: u64 = self.steps.iter().map(|s| self.step_progress(s)).sum();
        sum / self.steps.len() as u64
    }

    /// `StepNow`: the current step's number (0 before the first).
    pub fn step_now(&self) -> u64 {
        self.current.map_or(0, |i| i as u64 + 1)
    }

    /// `MasterSlaveDistance` in MB (the last known value while [`Self::lag_bytes_known`] is
    /// false; [`Self::master_slave_distance`] says -1 then).
    pub fn lag_mb(&self) -> u64 {
        self.lag_bytes / (1024 * 1024)
    }

    /// False while the bytes behind are unknown: the source's binlog end could not be read at
    /// the last report, or the replay's reports have stopped.
    pub fn lag_bytes_known(&self) -> bool {
        !self.lag_bytes_unknown && !self.reports_stale()
    }

    /// `MasterSlaveDistance` for the API: MB behind, or -1 while unknown.
    pub fn master_slave_distance(&self) -> i64 {
        if self.lag_bytes_known() {
            self.lag_mb() as i64
        } else {
            -1
        }
    }

    fn reports_stale(&self) -> bool {
        self.lag_observed.is_some_and(|t| t.elapsed() > REPORT_MAX_AGE)
    }

    /// Seconds behind now: the last report's, plus the time since it when the reports have
    /// stopped (a replay reconnecting or blocked reports nothing, and falls further behind).
    pub fn lag_seconds_now(&self) -> f64 {
        match self.lag_observed {
            Some(t) if t.elapsed() > REPORT_MAX_AGE => self.lag_seconds.max(0.0) + t.elapsed().as_secs_f64(),
            _ => self.lag_seconds.max(0.0),
        }
    }

    /// `SecondsBehindMaster`.
    pub fn lag_secs(&self) -> u64 {
        self.lag_seconds_now().round() as u64
    }

    /// The id of the current step, if a step is executing.
    pub fn running_step(&self) -> Option<Phase> {
        self.current
            .and_then(|i| self.steps.get(i))
            .filter(|s| s.status == STEP_RUNNING)
            .map(|s| s.id)
    }
}

/// `95 s`, `12 min`, `3 h 20 min`.
fn human_secs(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_progress() {
        let mut d = Detail::new(3, 2);
        let ids: Vec<&str> = d.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "structure",
                "full_data",
                "post_data",
                "incremental",
                "verification"
            ]
        );
        assert_eq!(Detail::new(1, 5).steps.len(), 2);
        assert!(d.observe(
            &ProgressEvent::PhaseStarted {
                phase: "full_data".into()
            },
            5
        ));
        assert_eq!(
            d.steps[0].status, STEP_OK,
            "a skipped earlier step counts as done"
        );
        d.observe(
            &ProgressEvent::LoadPlanned {
                tables: 1,
                chunks: 4,
                chunks_done: 1,
                rows_done: 25,
                bytes_done: 250,
                estimated_rows: 100,
                estimated_bytes: 1000,
            },
            6,
        );
        d.observe(
            &ProgressEvent::ChunkDone {
                table: "t".into(),
                rows: 25,
                bytes: 250,
            },
            6,
        );
        assert_eq!(d.current_step_progress(), 50);
        assert_eq!(
            (d.rows_copied, d.bytes_copied),
            (50, 500),
            "the chunks of the earlier run count, from the target's checkpoint"
        );
        assert_eq!(d.step_now(), 2);
        assert_eq!(d.progress(), (100 + 50) / 5);
        d.observe(
            &ProgressEvent::PhaseStarted {
                phase: "incremental".into(),
            },
            7,
        );
        d.observe(
            &ProgressEvent::ReplayProgress {
                read_pos: "b.1:4".into(),
                applied_pos: "b.1:4".into(),
                lag_seconds: 2.6,
                lag_bytes: 3 * 1024 * 1024 + 5,
                excluded: 0,
                lag_bytes_known: true,
                events: 10,
                rows: 5,
                transactions: 2,
                events_per_sec: 1.0,
                rows_per_sec: 1.0,
            },
            8,
        );
        assert_eq!((d.lag_secs(), d.lag_mb()), (3, 3));
        assert_eq!(d.current_step_progress(), 0);
        d.observe(
            &ProgressEvent::ReadyToComplete {
                position: "b.1:9".into(),
            },
            9,
        );
        assert_eq!(d.current_step_progress(), 100);
        // An outage: the problem and the step's message; then recovery clears them.
        d.observe(
            &ProgressEvent::ReplayProgress {
                read_pos: "b.1:9".into(),
                applied_pos: "b.1:9".into(),
                lag_seconds: 17.0,
                lag_bytes: 3 * 1024 * 1024 + 5,
                excluded: 0,
                lag_bytes_known: false,
                events: 10,
                rows: 5,
                transactions: 2,
                events_per_sec: 0.0,
                rows_per_sec: 0.0,
            },
            9,
        );
        assert_eq!((d.lag_secs(), d.master_slave_distance()), (17, -1));
        assert!(d.observe(
            &ProgressEvent::Trouble {
                what: "incremental replay".into(),
                side: "source".into(),
                error: "binlog reader: cannot connect".into(),
                attempt: 3,
                since: 1_527_174_363,
                gives_up_at: Some(1_527_177_963),
            },
            9,
        ));
        let m = d.steps[3].message.clone();
        assert!(
            m.starts_with("incremental replay: the source is unreachable or failing since 2018-05-24 15:06:03 UTC; retry 3, the job fails at 2018-05-24 16:06:03 UTC"),
            "{m}"
        );
        assert!(m.ends_with(": binlog reader: cannot connect"), "{m}");
        assert_eq!(d.last_error_at, 9);
        assert!(d.observe(
            &ProgressEvent::Recovered {
                what: "incremental replay".into()
            },
            10
        ));
        assert!(d.problem.is_none());
        assert_eq!(d.steps[3].message, "");
        // The reports stop (a session being set up, a blocked applier): the lag grows anyway
        // and the bytes are unknown.
        d.lag_bytes_unknown = false;
        d.lag_seconds = 2.0;
        d.lag_observed = Instant::now().checked_sub(Duration::from_secs(10));
        if d.lag_observed.is_some() {
            assert!(d.lag_seconds_now() >= 12.0, "{}", d.lag_seconds_now());
            assert_eq!(d.master_slave_distance(), -1);
        }
        d.fail("boom", 10);
        assert_eq!(d.steps[3].status, STEP_FAILED);
        assert_eq!(d.steps[4].status, STEP_NOT_RUN);
        d.reset_for_run(3, 2);
        assert_eq!(d.steps[0].status, STEP_OK);
        assert_eq!(d.steps[3].status, STEP_DEFAULT);
        d.succeed(11);
        assert_eq!(d.progress(), 100);
    }

    #[test]
    fn per_table_progress_follows_the_load() {
        let mut d = Detail::new(2, 5);
        let plan = |table: &str, chunks, chunks_done, rows_done| ProgressEvent::TablePlanned {
            table: table.into(),
            chunks,
            chunks_done,
            rows_done,
            bytes_done: rows_done * 10,
            estimated_rows: 1000,
        };
        d.observe(&plan("d.a", 4, 1, 250), 100);
        d.observe(&plan("d.b", 1, 0, 0), 100);
        assert_eq!(d.tables.len(), 2);
        assert_eq!(d.tables[0].state(), "waiting");
        assert_eq!(d.tables[0].eta_secs(100), None, "not started");
        let chunk = |table: &str| ProgressEvent::ChunkDone {
            table: table.into(),
            rows: 250,
            bytes: 2500,
        };
        d.observe(&chunk("d.a"), 110);
        assert_eq!(d.tables[0].state(), "copying");
        assert_eq!(d.tables[0].eta_secs(110), None, "no rate after one chunk");
        d.observe(&chunk("d.a"), 120);
        let a = &d.tables[0];
        assert_eq!((a.chunks_done, a.rows, a.bytes), (3, 750, 7500));
        // 250 rows in 10 s since the first chunk of this run: 25 rows/s, 250 rows left.
        assert_eq!(a.eta_secs(120), Some(10));
        d.observe(&ProgressEvent::TableDone { table: "d.a".into() }, 121);
        assert_eq!(d.tables[0].state(), "done");
        assert_eq!(d.tables[0].eta_secs(121), None);
        // A new run plans again from the checkpoints: the entry is replaced, not added.
        d.observe(&plan("d.a", 4, 4, 1000), 200);
        assert_eq!(d.tables.len(), 2);
        assert_eq!((d.tables[0].rows, d.tables[0].state()), (1000, "done"));
        // Persisted with the detail.
        let back: Detail = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back.tables, d.tables);
    }

    #[test]
    fn full_load_remaining_time() {
        let mut d = Detail::new(2, 5);
        let i = d
            .steps
            .iter()
            .position(|s| s.id == Phase::FullData)
            .expect("full_data step");
        assert_eq!(d.full_load_eta_secs(), None, "not running");
        d.steps[i].status = STEP_RUNNING;
        d.rows_estimated = 1_000_000;
        d.rows_copied = 400_000;
        assert_eq!(d.full_load_eta_secs(), None, "no rate yet");
        d.rows_per_second = 10_000.0;
        assert_eq!(d.full_load_eta_secs(), Some(60));
        let m = d.step_message(&d.steps[i].clone());
        assert!(
            m.contains("400000 of about 1000000 rows") && m.contains("about 60 s left"),
            "{m}"
        );
        d.steps[i].message = "a problem".into();
        assert_eq!(d.step_message(&d.steps[i].clone()), "a problem", "a problem wins");
        assert_eq!(human_secs(7200), "2 h 0 min");
        assert_eq!(human_secs(600), "10 min");
    }
}
