//! MariaDB's own objects, types and transactions through `ferry run` (full + incremental, with a
//! kill -9 during the replay): a UUID primary key with INET6/INET4 columns, a sequence used by
//! inserts (DEFAULT NEXT VALUE FOR) and one used by NEXTVAL, an application-time period table
//! changed with UPDATE … FOR PORTION OF, and XA transactions (committed, rolled back) during the
//! replay. After the cut-over the rows and the sequences' next values equal the source's, and the
//! job's verification (which compares the sequences' state) finds them consistent.
//!
//! The source is an instance of its own (`scripts/servers.sh start-one h_xa`, shared with
//! `ferry-replay/tests/replay_xa.rs`) so the XA transactions stay out of the shared source's
//! binlog.

mod common;

use std::process::Command;

use anyhow::{bail, Result};
use common::*;
use ferry_core::Endpoint;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, target, wait_until};
use serde_json::json;

const DB: &str = "fm_objects";
const JOB: &str = "fm-objects";

fn xa_source() -> Result<Endpoint> {
    let script = ferry_testkit::repo_root().join("scripts/servers.sh");
    let start = Command::new("bash")
        .arg(&script)
        .args(["start-one", "h_xa"])
        .output()?;
    if !start.status.success() {
        bail!(
            "servers.sh start-one h_xa: {}",
            String::from_utf8_lossy(&start.stderr)
        );
    }
    let url = Command::new("bash").arg(&script).args(["url", "h_xa"]).output()?;
    let url = String::from_utf8_lossy(&url.stdout).trim().to_string();
    Endpoint::from_url(&url).map_err(|e| anyhow::anyhow!("{url}: {e}"))
}

const SCHEMA: &str = "
CREATE SEQUENCE sq START WITH 1000 INCREMENT BY 3 CACHE 10;
CREATE SEQUENCE ns START WITH 1 NOCACHE;
CREATE TABLE acct (id UUID NOT NULL DEFAULT UUID() PRIMARY KEY, ip6 INET6, ip4 INET4, n INT);
CREATE TABLE orders (id BIGINT NOT NULL DEFAULT (NEXT VALUE FOR sq) PRIMARY KEY, acct UUID, note VARCHAR(30));
CREATE TABLE price (id INT NOT NULL, p INT, s DATE NOT NULL, e DATE NOT NULL, PERIOD FOR valid (s, e),
  PRIMARY KEY (id, valid WITHOUT OVERLAPS));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uuid_keys_sequences_periods_and_xa_full_and_incremental() -> Result<()> {
    let src = tokio::task::spawn_blocking(xa_source).await??;
    let mut s = connect(&src).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, DB).await?;
    drop_dbs(&mut t, &[DB]).await?;
    exec(&mut s, &format!("USE {DB}; {SCHEMA}")).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB};
             INSERT INTO acct (ip6, ip4, n) SELECT CONCAT('2001:db8::', HEX(seq)), INET_NTOA(seq), seq FROM seq_1_to_3000;
             INSERT INTO orders (acct, note) SELECT id, 'full' FROM acct LIMIT 500;
             INSERT INTO price SELECT seq, 100, '2024-01-01', '2025-01-01' FROM seq_1_to_50;
             DO NEXTVAL(ns); DO NEXTVAL(ns);"
        ),
    )
    .await?;

    let mut j = job(
        JOB,
        json!([{"Database": DB}]),
        json!({"Threads": 2, "ChunkRows": 400}),
        3,
    );
    // the full verification after the cut-over, sequences' state included
    j["MigrateOption"]["ConsistencyType"] = json!(2);
    j["SrcInfo"]["Ip"] = json!(src.host);
    j["SrcInfo"]["Port"] = json!(src.port);
    let path = write_job(JOB, &j);
    let mut child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    wait_until(180, "the replay to start", || {
        let ep = target();
        async move {
            let mut t = connect(&ep).await?;
            Ok(replay_checkpoint_ts(&mut t, JOB).await? > 0 || {
                let n: u64 = scalar(
                    &mut t,
                    "SELECT COUNT(*) FROM ferry_meta.job_phase WHERE job = 'fm-objects' AND phase = 'post_data'",
                )
                .await
                .unwrap_or(0);
                n > 0
            })
        }
    })
    .await?;
    // changes during the replay
    exec(
        &mut s,
        &format!(
            "USE {DB};
             INSERT INTO orders (acct, note) SELECT id, 'replayed' FROM acct ORDER BY n DESC LIMIT 200;
             UPDATE acct SET ip6 = '::ffff:10.1.2.3', ip4 = '192.168.0.1' WHERE n % 7 = 0;
             DELETE FROM acct WHERE n % 11 = 0;
             UPDATE price FOR PORTION OF valid FROM '2024-03-01' TO '2024-06-01' SET p = 90 WHERE id <= 10;
             DELETE FROM price FOR PORTION OF valid FROM '2024-12-01' TO '2025-01-01' WHERE id = 20;
             DO NEXTVAL(ns); DO NEXTVAL(ns); DO NEXTVAL(ns);
             XA START 'fm-1'; INSERT INTO acct (id, n) VALUES ('6ccd780c-baba-1026-9564-5b8c656024db', -1);
             INSERT INTO orders (acct, note) VALUES ('6ccd780c-baba-1026-9564-5b8c656024db', 'xa');
             XA END 'fm-1'; XA PREPARE 'fm-1'; XA COMMIT 'fm-1';
             XA START 'fm-2'; INSERT INTO acct (n) VALUES (-2); XA END 'fm-2'; XA PREPARE 'fm-2'; XA ROLLBACK 'fm-2';"
        ),
    )
    .await?;
    // kill -9 once the XA commit is replayed… or not yet: either way nothing is lost or repeated
    wait_until(120, "the XA transaction replayed", || {
        let ep = target();
        async move {
            let mut t = connect(&ep).await?;
            let n: u64 = scalar(
                &mut t,
                &format!("SELECT COUNT(*) FROM {DB}.orders WHERE note = 'xa'"),
            )
            .await
            .unwrap_or(0);
            Ok(n == 1)
        }
    })
    .await?;
    child.kill()?;
    child.wait()?;
    exec(
        &mut s,
        &format!("USE {DB}; INSERT INTO orders (note) VALUES ('after kill'); DO NEXTVAL(ns);"),
    )
    .await?;

    let out = run(&path, &["--skip-check", "--complete-when-caught-up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("verified    consistent"), "{}", text(&out));

    let a = ferry_testkit::db_digest(&mut s, DB).await?;
    let b = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(a.len(), 3);
    assert_eq!(a, b, "source and target {DB} differ");
    for q in ["sq", "ns"] {
        let sql = format!(
            "SELECT CONCAT_WS(',', next_not_cached_value, minimum_value, maximum_value, start_value, increment, \
             cache_size, cycle_option, cycle_count) FROM {DB}.{q}"
        );
        let (x, y): (String, String) = (scalar(&mut s, &sql).await?, scalar(&mut t, &sql).await?);
        assert_eq!(x, y, "sequence {q}");
    }
    // a NOCACHE sequence hands out the same next value on both sides
    let (x, y): (i64, i64) = (
        scalar(&mut s, &format!("SELECT NEXTVAL({DB}.ns)")).await?,
        scalar(&mut t, &format!("SELECT NEXTVAL({DB}.ns)")).await?,
    );
    assert_eq!(x, y);
    assert_eq!(x, 7, "2 + 3 + 1 values used on the source");
    let xa: u64 = scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.acct WHERE n = -2")).await?;
    assert_eq!(xa, 0, "the rolled back XA transaction is not on the target");
    Ok(())
}
