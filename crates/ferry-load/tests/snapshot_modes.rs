//! `Ferry.SnapshotMode` against an instance of its own with TLS (`scripts/servers.sh start-one
//! i_tls`), as an account that `REQUIRE SSL` and has no RELOAD, while a writer commits: `lock` is
//! refused, `auto` and `lockless` go lock-free: no read view is open on the readers, the load's
//! position (with its GTID state) precedes every chunk's read view, and each chunk's read view is
//! placed exactly in the binlog (`Binlog_snapshot_file/position`), or by an upper bound with
//! MySQL's method.
//!
//! Only the database `i_snap` and the account `i_snap_noreload` are created on that instance.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use ferry_core::{Endpoint, Secret, SnapshotMode, TlsConfig, TlsMode};
use ferry_load::snapshot;
use ferry_testkit as tk;
use mysql_async::prelude::Queryable;

fn instance() -> Result<Endpoint> {
    let script = tk::repo_root().join("scripts/servers.sh");
    let mut url = String::new();
    for args in [&["start-one", "i_tls"][..], &["url", "i_tls"][..]] {
        let out = Command::new(&script).args(args).output()?;
        if !out.status.success() {
            bail!("servers.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        url = String::from_utf8(out.stdout)?.trim().to_string();
    }
    Ok(Endpoint::from_url(&url)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockless_and_auto_without_reload_over_tls() -> Result<()> {
    let admin = instance()?;
    let mut a = admin.connect(vec![]).await?;
    for sql in [
        "DROP DATABASE IF EXISTS i_snap",
        "CREATE DATABASE i_snap",
        "CREATE TABLE i_snap.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB",
        "CREATE USER IF NOT EXISTS 'i_snap_noreload'@'%' IDENTIFIED BY 'pw-snap-1234' REQUIRE SSL",
        "GRANT SELECT, REPLICATION CLIENT, SHOW VIEW ON *.* TO 'i_snap_noreload'@'%'",
    ] {
        a.query_drop(sql).await?;
    }
    let mut src = admin.clone().with_tls(TlsConfig {
        mode: TlsMode::Required,
        field: "Ferry.SourceTls".into(),
        ..TlsConfig::default()
    });
    src.user = "i_snap_noreload".into();
    src.password = Secret::new("pw-snap-1234");

    // a writer commits one row per transaction the whole time
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, admin) = (stop.clone(), admin.clone());
        tokio::spawn(async move {
            let mut w = admin.connect(vec![]).await?;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                w.query_drop("INSERT INTO i_snap.t (v) VALUES (1)").await?;
                n += 1;
            }
            anyhow::Ok(n)
        })
    };
    // wait until the writer is committing
    loop {
        let c: Option<i64> = a.query_first("SELECT COUNT(*) FROM i_snap.t").await?;
        if c.unwrap_or(0) >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let refused = snapshot::take(&src, 2, Duration::from_secs(5), SnapshotMode::Lock).await;
    let e = refused.err().expect("lock without RELOAD must be refused");
    assert!(e.to_string().contains("RELOAD"), "{e}");

    for mode in [SnapshotMode::Lockless, SnapshotMode::Auto] {
        let mut s = snapshot::take(&src, 3, Duration::from_secs(5), mode).await?;
        assert_eq!(s.lock_ms, 0, "{mode:?}");
        assert!(!s.readers.is_empty());
        assert!(
            s.position.gtid.is_some(),
            "{mode:?}: MariaDB GTID of the load's start"
        );
        let views = s.per_chunk.expect("lock-free: one read view per chunk");
        assert_eq!(views.positions, snapshot::ChunkPositions::Exact);
        let start = (s.position.file.clone(), s.position.pos);
        let mut last = start.clone();
        for r in s.readers.iter_mut() {
            let at = views.open(r).await?;
            let rows: Option<i64> = r.query_first("SELECT COUNT(*) FROM i_snap.t").await?;
            // the same read view, twice: no row committed meanwhile is seen
            let again: Option<i64> = r.query_first("SELECT COUNT(*) FROM i_snap.t").await?;
            assert_eq!(rows, again, "{mode:?}: one read view per chunk");
            views.close(r).await?;
            let here = (at.file.clone(), at.pos);
            assert!(
                here >= start,
                "{mode:?}: chunk view {here:?} before the load's start {start:?}"
            );
            assert!(here >= last, "{mode:?}: read views in binlog order");
            last = here;
        }
        assert!(
            last > start,
            "{mode:?}: the writer committed between the read views"
        );
        for r in s.readers {
            let _ = r.disconnect().await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let n = writer.await??;
    assert!(n > 0);
    a.query_drop("DROP DATABASE i_snap").await?;
    Ok(())
}
