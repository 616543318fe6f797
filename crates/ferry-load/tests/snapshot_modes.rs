//! `Ferry.SnapshotMode` against an instance of its own with TLS (`scripts/servers.sh start-one
//! i_tls`), as an account that `REQUIRE SSL` and has no RELOAD, while a writer commits: `lock` is
//! refused, `auto` and `lockless` take a lock-free snapshot in which every reader sees the same
//! rows, exactly those committed before the snapshot's binlog position.
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
            "{mode:?}: MariaDB GTID of the snapshot"
        );
        let mut counts = Vec::new();
        for r in s.readers.iter_mut() {
            let c: Option<i64> = r.query_first("SELECT COUNT(*) FROM i_snap.t").await?;
            counts.push(c.unwrap_or(-1));
        }
        assert!(counts.iter().all(|c| *c == counts[0]), "{mode:?}: {counts:?}");
        // the rows in the snapshot are those committed before its position: replaying the binlog
        // from the position adds exactly the rows committed after it
        let mut probe = admin.connect(vec![]).await?;
        let events: Vec<mysql_async::Row> = probe
            .query(format!(
                "SHOW BINLOG EVENTS IN '{}' FROM {} LIMIT 1",
                s.position.file, s.position.pos
            ))
            .await?;
        assert!(
            !events.is_empty() || counts[0] > 0,
            "the position must be a valid event boundary"
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
