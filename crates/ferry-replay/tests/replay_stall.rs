//! A stalled (not closed) source connection during replay: the bytes stop, nothing closes. The
//! reader's watchdog reports the stall after `stall_timeout` without any event (heartbeats
//! included), the session reconnects from its checkpoint, and once the bytes flow again the
//! target ends up exactly equal to the source. Only databases named `fa_stall*` are touched.
//! Also: the reader's refusal of a start beyond 4 GiB.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_replay::apply::checkpoint;
use ferry_replay::stream::stall_timeout;
use ferry_replay::{run_replay, ReplayControl, ReplayOptions};
use ferry_testkit as tk;
use ferry_testkit::proxy::TcpProxy;
use support::*;

#[test]
fn stall_timeout_is_three_heartbeats_and_at_least_ten_seconds() {
    assert_eq!(stall_timeout(Duration::from_secs(1)), Duration::from_secs(10));
    assert_eq!(stall_timeout(Duration::from_secs(5)), Duration::from_secs(15));
    assert_eq!(stall_timeout(Duration::ZERO), Duration::from_secs(10));
}

fn retry_errors(events: &Arc<Mutex<Vec<ProgressEvent>>>) -> Vec<String> {
    events
        .lock()
        .map(|v| {
            v.iter()
                .filter_map(|e| match e {
                    ProgressEvent::Retrying { error, .. } => Some(error.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_source_connection_reconnects_and_the_result_is_exact() -> Result<()> {
    const DB: &str = "fa_stall";
    const JOB: &str = "fa-stall";
    let (mut s, mut t) = prepare(
        DB,
        DB,
        "CREATE TABLE c (id INT PRIMARY KEY, n INT, pad VARCHAR(100));",
    )
    .await?;
    let pos = master_pos(&mut s).await?;

    // The source goes through the proxy, the target directly.
    let src0 = tk::source();
    let proxy = TcpProxy::start((src0.host.clone(), src0.port)).await?;
    let mut src = src0.clone();
    src.host = "127.0.0.1".into();
    src.port = proxy.port();

    checkpoint::clear(&mut t, JOB).await?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = events.clone();
    let sink: ProgressSink = Arc::new(move |e| {
        if let Ok(mut v) = e2.lock() {
            v.push(e)
        }
    });
    let mut opts = ReplayOptions::new(JOB);
    opts.start = Some(pos);
    opts.progress_every = Duration::from_millis(250);
    opts.heartbeat = Duration::from_secs(1);
    let control = ReplayControl::new();
    let c2 = control.clone();
    let sel = selection(&[(DB, DB)]);
    let task = tokio::spawn(async move { run_replay(&src, &tk::target(), &sel, opts, sink, c2).await });
    let run = Running {
        control,
        events: events.clone(),
        task,
    };

    for i in 0..50 {
        tk::exec(
            &mut s,
            &format!("INSERT INTO {DB}.c VALUES ({i}, {i}, REPEAT('x', {i}))"),
        )
        .await?;
    }
    tk::wait_until(60, "the first 50 rows on the target", || async {
        let mut t = tk::connect(&tk::target()).await?;
        Ok(tk::scalar::<u64>(&mut t, &format!("SELECT COUNT(*) FROM {DB}.c")).await? == 50)
    })
    .await?;

    // Stall: the replication connection stays open, no byte passes either way. The source
    // keeps writing (directly).
    proxy.stall(true);
    for i in 50..150 {
        tk::exec(
            &mut s,
            &format!(
                "START TRANSACTION; INSERT INTO {DB}.c VALUES ({i}, 0, 'p'); UPDATE {DB}.c SET n = n + 1 WHERE id = {}; COMMIT",
                i % 50
            ),
        )
        .await?;
    }
    tk::wait_until(120, "the reader to report the stalled connection", || {
        let errs = retry_errors(&events);
        async move { Ok(errs.iter().any(|e| e.contains("connection stalled"))) }
    })
    .await?;
    let errs = retry_errors(&events);
    let stalled = errs
        .iter()
        .find(|e| e.contains("connection stalled"))
        .cloned()
        .unwrap_or_default();
    assert!(stalled.contains("no event from the source for 10 s"), "{stalled}");
    proxy.stall(false);

    // More writes after the stall, then completion: exact result.
    for i in 150..170 {
        tk::exec(&mut s, &format!("INSERT INTO {DB}.c VALUES ({i}, 1, 'q')")).await?;
    }
    let (summary, _) = run.complete().await?;
    assert!(summary.reconnects >= 1, "{summary:?}");
    assert_same(DB, DB).await?;
    let n: u64 = tk::scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.c")).await?;
    assert_eq!(n, 170);
    Ok(())
}

/// A start beyond 4 GiB cannot be requested with COM_BINLOG_DUMP: a definite error that says
/// why and what to do (not "start from a GTID", which sessions never do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_beyond_4_gib_is_refused_with_the_remedy() -> Result<()> {
    use ferry_replay::{BinlogPos, BinlogReader, ReplayError, StartPosition};
    let mut s = tk::connect(&tk::source()).await?;
    let here = master_pos(&mut s).await?;
    let start = StartPosition::FilePos(BinlogPos::new(here.file, 5_000_000_000));
    let e = BinlogReader::open(&tk::source(), 4242, start)
        .await
        .expect_err("a start beyond 4 GiB must be refused");
    assert!(matches!(e, ReplayError::InvalidStart(_)), "{e}");
    assert_eq!(e.kind(), ferry_core::ErrorKind::Definite);
    let m = e.to_string();
    assert!(
        m.contains("5000000000") && m.contains("COM_BINLOG_DUMP") && m.contains("new snapshot"),
        "{m}"
    );
    assert!(!m.contains("start from a GTID"), "{m}");
    Ok(())
}
