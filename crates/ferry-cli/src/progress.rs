//! Live progress for `ferry run`: aggregates the engines' progress events and shows a bar
//! (tables, rows, MB/s, ETA) on a terminal, or a plain line every few seconds otherwise.
//!
//! During the incremental phase the line shows the lag in seconds and bytes; while the replay
//! is disconnected or blocked the seconds keep growing (extrapolated from the last report when
//! the reports stop), the bytes show as `?`, and the line names the problem (which side, the
//! error, the attempt, since when) until the replay recovers.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_core::progress::{freshness_summary, unix_now, ProgressEvent, ProgressSink};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::ProgressMode;

#[derive(Debug, Default)]
struct State {
    phase: String,
    tables_total: u64,
    tables_done: u64,
    chunks_total: u64,
    chunks_done: u64,
    rows_est: u64,
    rows_done: u64,
    bytes_est: u64,
    bytes_done: u64,
    objects: u64,
    data_started: Option<Instant>,
    notes: Vec<String>,
    replay: Option<ReplayState>,
    /// Continuous verification's freshness (its last event), as a display suffix.
    freshness: Option<String>,
    /// The outage under way: (text, UNIX seconds of its first failure).
    trouble: Option<(String, u64)>,
}

/// The last replay progress event.
#[derive(Debug, Default, Clone)]
struct ReplayState {
    applied_pos: String,
    lag_seconds: f64,
    lag_bytes: u64,
    transactions: u64,
    rows: u64,
    events_per_sec: f64,
    rows_per_sec: f64,
    ready: bool,
    lag_bytes_known: bool,
    /// When this report arrived.
    at: Option<Instant>,
}

impl ReplayState {
    /// The lag now: the report's, plus the time since it when the reports have stopped.
    fn lag_now(&self) -> f64 {
        match self.at {
            Some(t) if t.elapsed() > Duration::from_secs(3) => self.lag_seconds + t.elapsed().as_secs_f64(),
            _ => self.lag_seconds,
        }
    }
    fn bytes_known(&self) -> bool {
        self.lag_bytes_known && self.at.is_none_or(|t| t.elapsed() <= Duration::from_secs(3))
    }
}

/// Totals built from progress events.
#[derive(Debug, Default)]
pub struct Tracker {
    state: Mutex<State>,
}

impl Tracker {
    /// The sink to hand to the runner.
    pub fn sink(self: &Arc<Self>) -> ProgressSink {
        let me = self.clone();
        Arc::new(move |ev| me.on_event(ev))
    }

    fn on_event(&self, ev: ProgressEvent) {
        let Ok(mut s) = self.state.lock() else { return };
        match ev {
            ProgressEvent::PhaseStarted { phase } => {
                if phase == "full_data" {
                    s.data_started = Some(Instant::now());
                }
                s.phase = phase;
            }
            ProgressEvent::PhaseFinished { .. } => {}
            ProgressEvent::ObjectCreated { .. } => s.objects += 1,
            ProgressEvent::LoadPlanned {
                tables,
                chunks,
                chunks_done,
                rows_done,
                bytes_done,
                estimated_rows,
                estimated_bytes,
            } => {
                s.tables_total = tables;
                s.chunks_total = chunks;
                s.chunks_done = chunks_done;
                s.rows_done = rows_done;
                s.bytes_done = bytes_done;
                s.rows_est = estimated_rows;
                s.bytes_est = estimated_bytes;
            }
            // The totals come with LoadPlanned; the terminal shows no per-table list.
            ProgressEvent::TablePlanned { .. } => {}
            ProgressEvent::SnapshotTaken { position, lock_ms } => {
                s.notes
                    .push(format!("snapshot at {position} (global lock held {lock_ms} ms)"));
            }
            ProgressEvent::ChunkDone { rows, bytes, .. } => {
                s.chunks_done += 1;
                s.rows_done += rows;
                s.bytes_done += bytes;
            }
            ProgressEvent::TableDone { .. } => s.tables_done += 1,
            ProgressEvent::ReplayProgress {
                applied_pos,
                lag_seconds,
                lag_bytes,
                lag_bytes_known,
                rows,
                transactions,
                events_per_sec,
                rows_per_sec,
                ..
            } => {
                let ready = s.replay.as_ref().is_some_and(|r| r.ready);
                s.replay = Some(ReplayState {
                    applied_pos,
                    lag_seconds,
                    lag_bytes,
                    transactions,
                    rows,
                    events_per_sec,
                    rows_per_sec,
                    ready,
                    lag_bytes_known,
                    at: Some(Instant::now()),
                });
            }
            ProgressEvent::ReadyToComplete { position } => {
                if let Some(r) = s.replay.as_mut() {
                    r.ready = true;
                }
                s.notes.push(format!(
                    "caught up with the source at {position}: ready to complete (SIGUSR1, or type `complete` and Enter)"
                ));
            }
            ProgressEvent::InconsistentUntil { position } => {
                s.notes.push(format!(
                    "the full load read its chunks at different binlog positions: changes up to {position} are \
                     applied idempotently, and the target is consistent only from there"
                ));
            }
            ProgressEvent::Consistent { position } => {
                s.notes.push(format!(
                    "the target is consistent with the source from {position} on"
                ));
            }
            ProgressEvent::Retrying { what, error, attempt } => {
                s.notes
                    .push(format!("retrying {what} (attempt {attempt}): {error}"));
            }
            ProgressEvent::Trouble {
                what,
                side,
                error,
                attempt,
                since,
                gives_up_at,
            } => {
                let who = if side.is_empty() {
                    "a server".to_string()
                } else {
                    format!("the {side}")
                };
                let until = match gives_up_at {
                    Some(t) => format!(
                        ", gives up in {}",
                        format_duration(Duration::from_secs(t.saturating_sub(unix_now())))
                    ),
                    None => String::new(),
                };
                if attempt == 1 {
                    s.notes.push(format!(
                        "{what}: {who} is unreachable or failing; retrying: {error}"
                    ));
                }
                s.trouble = Some((
                    format!("{what}: {who} is unreachable or failing (retry {attempt}{until}): {error}"),
                    since,
                ));
            }
            ProgressEvent::VerifyFreshness {
                chunks,
                chunks_dirty,
                chunks_differing,
                chunks_unverified,
                rows_verified,
                oldest_unverified_seconds,
                since_full_pass_seconds,
                ..
            } => {
                s.freshness = Some(format!(
                    " · verified {} rows; {}",
                    human(rows_verified),
                    freshness_summary(
                        chunks,
                        chunks_dirty,
                        chunks_differing,
                        chunks_unverified,
                        oldest_unverified_seconds,
                        since_full_pass_seconds
                    )
                ));
            }
            ProgressEvent::Recovered { what } => {
                if let Some((_, since)) = s.trouble.take() {
                    s.notes.push(format!(
                        "{what}: recovered after {}",
                        format_duration(Duration::from_secs(unix_now().saturating_sub(since)))
                    ));
                }
                if let Some(r) = s.replay.as_mut() {
                    r.at = Some(Instant::now());
                }
            }
        }
    }

    /// The current phase (`structure`, `full_data`, `post_data`, `incremental`, or empty).
    pub fn phase(&self) -> String {
        self.state.lock().map(|s| s.phase.clone()).unwrap_or_default()
    }

    fn take_notes(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.notes))
            .unwrap_or_default()
    }

    /// (position, length, message) for the bar; a plain line for logs.
    fn snapshot(&self) -> (u64, u64, String) {
        let Ok(s) = self.state.lock() else {
            return (0, 0, String::new());
        };
        let secs = s.data_started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        let mbps = if secs > 0.0 {
            s.bytes_done as f64 / 1e6 / secs
        } else {
            0.0
        };
        let rps = if secs > 0.0 {
            s.rows_done as f64 / secs
        } else {
            0.0
        };
        let total = s.rows_est.max(s.rows_done);
        let eta = if rps > 0.0 && total > s.rows_done {
            format_duration(Duration::from_secs_f64((total - s.rows_done) as f64 / rps))
        } else {
            "-".into()
        };
        let msg = match s.phase.as_str() {
            "full_data" => format!(
                "{} tables {}/{} · chunks {}/{} · rows {}/~{} · {:.1} MB/s · ETA {}",
                s.phase,
                s.tables_done,
                s.tables_total,
                s.chunks_done,
                s.chunks_total,
                human(s.rows_done),
                human(total),
                mbps,
                eta
            ),
            "incremental" => match &s.replay {
                Some(r) => format!(
                    "incremental · lag {:.1} s / {} · applied {} · {} txns, {} rows · {:.0} events/s, {:.0} rows/s{}",
                    r.lag_now(),
                    if r.bytes_known() {
                        human_bytes(r.lag_bytes)
                    } else {
                        "? bytes (source unreachable)".into()
                    },
                    r.applied_pos,
                    human(r.transactions),
                    human(r.rows),
                    r.events_per_sec,
                    r.rows_per_sec,
                    if r.ready { " · ready to complete" } else { "" }
                ) + s.freshness.as_deref().unwrap_or_default(),
                None => "incremental · starting".into(),
            },
            "" => "connecting".into(),
            "verification" => "verification · comparing source and target (chunked checksums)".into(),
            p => format!("{p} · {} objects created", s.objects),
        };
        let msg = match &s.trouble {
            Some((t, since)) => format!(
                "{msg} · {t} (for {})",
                format_duration(Duration::from_secs(unix_now().saturating_sub(*since)))
            ),
            None => msg,
        };
        (s.rows_done, total, msg)
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 10_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// `1h02m03s`, `4m05s`, `12s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 => format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{:.1}s", d.as_secs_f64()),
    }
}

/// The running display; `finish` stops it.
pub struct Display {
    task: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Display {
    /// Starts showing progress in the chosen mode.
    pub fn spawn(tracker: Arc<Tracker>, mode: ProgressMode) -> Display {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        };
        match mode {
            ProgressMode::Bar => {
                let bar = ProgressBar::new(0);
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] [{bar:30}] {percent:>3}% {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                let b = bar.clone();
                let task = tokio::spawn(async move {
                    loop {
                        for n in tracker.take_notes() {
                            b.println(n);
                        }
                        let (pos, len, msg) = tracker.snapshot();
                        b.set_length(len.max(1));
                        b.set_position(pos.min(len));
                        b.set_message(msg);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                });
                Display {
                    task: Some(task),
                    bar: Some(bar),
                }
            }
            ProgressMode::Plain => {
                let task = tokio::spawn(async move {
                    let started = Instant::now();
                    let mut last = String::new();
                    loop {
                        for n in tracker.take_notes() {
                            eprintln!("{n}");
                        }
                        let (_, _, msg) = tracker.snapshot();
                        if msg != last {
                            eprintln!("[{}] {msg}", format_duration(started.elapsed()));
                            last = msg;
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                });
                Display {
                    task: Some(task),
                    bar: None,
                }
            }
            _ => Display {
                task: None,
                bar: None,
            },
        }
    }

    /// Stops the display (the bar is cleared; the summary follows).
    pub fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
