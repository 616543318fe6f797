//! Helpers shared by the applier's live tests: a selection of whole databases, fresh databases
//! on both servers, a replay started from the source's current position, exact comparison.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::selection::{DbSelection, ObjectSelection};
use ferry_core::Selection;
use ferry_replay::apply::{checkpoint, lag};
use ferry_replay::{run_replay, BinlogPos, ReplayControl, ReplayError, ReplayOptions, ReplaySummary};
use ferry_testkit as tk;
use mysql_async::Conn;
use tokio::task::JoinHandle;

pub fn selection(pairs: &[(&str, &str)]) -> Selection {
    Selection {
        mapping: Default::default(),
        objects: ObjectSelection::Databases(
            pairs
                .iter()
                .map(|(s, t)| DbSelection {
                    name: s.to_string(),
                    target: t.to_string(),
                    tables: None,
                    table_renames: Default::default(),
                })
                .collect(),
        ),
    }
}

pub async fn master_pos(c: &mut Conn) -> Result<BinlogPos> {
    lag::master_status(c)
        .await?
        .context("binlog is off on the source")
}

/// Creates `sql` in `src_db` on the source and in `dst_db` on the target (fresh databases).
pub async fn prepare(src_db: &str, dst_db: &str, sql: &str) -> Result<(Conn, Conn)> {
    let mut s = tk::connect(&tk::source()).await?;
    let mut t = tk::connect(&tk::target()).await?;
    tk::fresh_db(&mut s, src_db).await?;
    tk::fresh_db(&mut t, dst_db).await?;
    if !sql.trim().is_empty() {
        tk::exec(&mut s, &format!("USE {src_db}; {sql}")).await?;
        tk::exec(&mut t, &format!("USE {dst_db}; {sql}")).await?;
    }
    Ok((s, t))
}

pub struct Running {
    pub control: ReplayControl,
    pub events: Arc<Mutex<Vec<ProgressEvent>>>,
    pub task: JoinHandle<Result<ReplaySummary, ReplayError>>,
}

/// Starts a replay of `sel` from `start` under a fresh checkpoint for `job`, default options.
pub async fn start(job: &str, sel: Selection, start: BinlogPos) -> Result<Running> {
    start_with(job, sel, start, |_| {}).await
}

/// Starts a replay of `sel` from `start` under a fresh checkpoint for `job`; `tune` adjusts the
/// options (workers, batch sizes).
pub async fn start_with(
    job: &str,
    sel: Selection,
    start: BinlogPos,
    tune: impl FnOnce(&mut ReplayOptions),
) -> Result<Running> {
    let mut t = tk::connect(&tk::target()).await?;
    checkpoint::clear(&mut t, job).await?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = events.clone();
    let sink: ProgressSink = Arc::new(move |e| {
        if let Ok(mut v) = e2.lock() {
            v.push(e)
        }
    });
    let mut opts = ReplayOptions::new(job);
    opts.start = Some(start);
    opts.progress_every = Duration::from_millis(250);
    tune(&mut opts);
    let control = ReplayControl::new();
    let c2 = control.clone();
    let task =
        tokio::spawn(async move { run_replay(&tk::source(), &tk::target(), &sel, opts, sink, c2).await });
    Ok(Running {
        control,
        events,
        task,
    })
}

impl Running {
    /// Completes at the source's current end; checks the final position covers it.
    pub async fn complete(self) -> Result<(ReplaySummary, Vec<ProgressEvent>)> {
        let mut s = tk::connect(&tk::source()).await?;
        let at_request = master_pos(&mut s).await?;
        self.control.complete();
        let summary = tokio::time::timeout(Duration::from_secs(300), self.task)
            .await
            .context("replay did not complete within 300 s")???;
        assert!(summary.completed);
        assert!(
            lag::pos_ge(&summary.final_pos, &at_request),
            "final {} before the position at the request {}",
            summary.final_pos,
            at_request
        );
        let ev = self.events.lock().map(|v| v.clone()).unwrap_or_default();
        Ok((summary, ev))
    }

    /// The replay progress events so far: (read position, applied position, lag seconds, lag bytes).
    pub fn progress(&self) -> Vec<(String, String, f64, u64)> {
        self.events
            .lock()
            .map(|v| {
                v.iter()
                    .filter_map(|e| match e {
                        ProgressEvent::ReplayProgress {
                            read_pos,
                            applied_pos,
                            lag_seconds,
                            lag_bytes,
                            ..
                        } => Some((read_pos.clone(), applied_pos.clone(), *lag_seconds, *lag_bytes)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub async fn assert_same(src_db: &str, dst_db: &str) -> Result<()> {
    let mut s = tk::connect(&tk::source()).await?;
    let mut t = tk::connect(&tk::target()).await?;
    let a = tk::db_digest(&mut s, src_db).await?;
    let b = tk::db_digest(&mut t, dst_db).await?;
    assert!(!a.is_empty());
    assert_eq!(a, b, "source {src_db} and target {dst_db} differ");
    Ok(())
}

/// "file:pos" back into a position.
pub fn parse_pos(s: &str) -> Option<BinlogPos> {
    let (f, p) = s.rsplit_once(':')?;
    Some(BinlogPos::new(f, p.parse().ok()?))
}
