//! The official Tencent Cloud Python SDK (`.ferry-test/venv`, made by scripts/sdk-venv.sh) drives
//! a MigrateType 3 migration end to end against the real `ferry serve` and test servers
//! (`tests/sdk/e2e.py`): create, check, start, DescribeMigrateJobs with progress and
//! SecondsBehindMaster, complete at status 8, status 9, and the 2021-12-06
//! DescribeMigrationCheckJob and DescribeMigrationDetail (no field unknown to the SDK's models); the target then equals the source, exactly once. Skips, saying so,
//! only when the venv is absent. Only the database `svc_sdk_e2e` is touched.
//!
//! The writer also deletes and re-keys parent rows whose children and grandchildren follow by
//! `ON DELETE CASCADE`, `ON DELETE SET NULL` and `ON UPDATE CASCADE` (changes the binlog does not
//! carry), and the job's own full verification (ConsistencyType 2) must find the tables equal.
//! MariaDB's own objects take part too: a sequence used by a column default (its next value
//! equal after the cut-over), UUID/INET6/INET4 columns, an application-time period table changed
//! with `UPDATE … FOR PORTION OF`, and a system-versioned table whose history (every version,
//! `row_start`/`row_end`) ends equal.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use common::serve::Serve;
use ferry_testkit::{connect, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const DB: &str = "svc_sdk_e2e";
const SECRET_ID: &str = "AKIDferrysdke2etest";
const SECRET_KEY: &str = "ferry-sdk-e2e-test-key";

/// Runs `tests/sdk/e2e.py` with `job` (and `env`) against `endpoint`. When the job is ready (8),
/// waits for 20 more writer commits, stops the writer and tells the script, which then completes
/// the job. Returns the steps the script printed; fails when it fails.
async fn run_e2e(
    python: &Path,
    dir: &Path,
    endpoint: &str,
    job: &Value,
    env: &[(&str, &str)],
    stop: &Arc<AtomicBool>,
    commits: &Arc<AtomicU64>,
) -> Result<Vec<Value>> {
    let root = ferry_testkit::repo_root();
    let writer_done = dir.join("writer-done");
    let mut py = Command::new(python)
        .arg(root.join("crates/ferry-cli/tests/sdk/e2e.py"))
        .env("FERRY_ENDPOINT", endpoint)
        .env("FERRY_SECRET_ID", SECRET_ID)
        .env("FERRY_SECRET_KEY", SECRET_KEY)
        .env("FERRY_JOB", job.to_string())
        .env("FERRY_WRITER_DONE", &writer_done)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let py_out = py.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (ptx, prx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(py_out).lines().map_while(Result::ok) {
            let _ = ptx.send(line);
        }
    });
    let mut steps: Vec<Value> = Vec::new();
    // Until the job is ready (8), the writer keeps committing.
    while let Ok(line) = prx.recv_timeout(Duration::from_secs(600)) {
        let v: Value = serde_json::from_str(&line).map_err(|e| anyhow!("e2e.py printed {line:?}: {e}"))?;
        let step = v["step"].as_str().unwrap_or_default().to_string();
        steps.push(v);
        if step == "ready" {
            let more = commits.load(Ordering::SeqCst) + 20;
            wait_until(60, "more commits", || {
                let c = commits.clone();
                async move { Ok(c.load(Ordering::SeqCst) >= more) }
            })
            .await?;
            stop.store(true, Ordering::SeqCst);
            std::fs::write(&writer_done, b"done")?;
        }
        if step == "done" {
            break;
        }
    }
    let status = py.wait()?;
    let mut err = String::new();
    if let Some(mut e) = py.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() || steps.last().map(|s| s["step"] != "done").unwrap_or(true) {
        bail!("e2e.py failed ({status}): {steps:?}\n{err}");
    }
    Ok(steps)
}

fn step(steps: &[Value], name: &str) -> Value {
    steps
        .iter()
        .find(|s| s["step"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_migrates_end_to_end() -> Result<()> {
    let root = ferry_testkit::repo_root();
    let python = root.join(".ferry-test/venv/bin/python");
    if !python.exists() {
        println!(
            "SKIPPED python_sdk_migrates_end_to_end: {} is absent; run scripts/sdk-venv.sh",
            python.display()
        );
        return Ok(());
    }
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, DB).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    ferry_testkit::exec(
        &mut s,
        &format!(
            "USE {DB}; CREATE TABLE counter (id INT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO counter VALUES (1, 0); \
             CREATE TABLE journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT NOT NULL); \
             CREATE TABLE bulk (id INT PRIMARY KEY, x VARCHAR(64)); INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_1_to_20000; \
             CREATE TABLE parent (id INT PRIMARY KEY, code VARCHAR(12) NOT NULL UNIQUE); \
             CREATE TABLE child (id INT PRIMARY KEY, pid INT NOT NULL, pcode VARCHAR(12), \
               FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE CASCADE, \
               FOREIGN KEY (pcode) REFERENCES parent (code) ON DELETE SET NULL ON UPDATE CASCADE); \
             CREATE TABLE grandchild (id INT PRIMARY KEY, cid INT NOT NULL, \
               FOREIGN KEY (cid) REFERENCES child (id) ON DELETE CASCADE ON UPDATE CASCADE); \
             INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_3000; \
             INSERT INTO child SELECT seq, 1 + seq % 3000, CONCAT('p', 1 + (seq * 7) % 3000) FROM seq_1_to_9000; \
             INSERT INTO grandchild SELECT seq, 1 + seq % 9000 FROM seq_1_to_18000; \
             CREATE SEQUENCE sq START WITH 1000 INCREMENT BY 3 NOCACHE; \
             CREATE TABLE acct (id UUID NOT NULL DEFAULT UUID() PRIMARY KEY, ip6 INET6, ip4 INET4, n INT); \
             CREATE TABLE orders (id BIGINT NOT NULL DEFAULT (NEXT VALUE FOR sq) PRIMARY KEY, n INT); \
             CREATE TABLE price (id INT NOT NULL, p INT, s DATE NOT NULL, e DATE NOT NULL, PERIOD FOR valid (s, e), \
               PRIMARY KEY (id, valid WITHOUT OVERLAPS)); \
             CREATE TABLE vhist (id INT PRIMARY KEY, v BIGINT NOT NULL) WITH SYSTEM VERSIONING; \
             INSERT INTO acct (ip6, ip4, n) SELECT CONCAT('2001:db8::', HEX(seq)), INET_NTOA(seq), seq FROM seq_1_to_500; \
             INSERT INTO orders (n) SELECT seq FROM seq_1_to_100; \
             INSERT INTO price SELECT seq, 100, '2024-01-01', '2025-01-01' FROM seq_1_to_50; \
             INSERT INTO vhist SELECT seq, 0 FROM seq_1_to_100; UPDATE vhist SET v = 1 WHERE id % 2 = 0"
        ),
    )
    .await?;

    let dir: PathBuf = std::env::temp_dir().join(format!("ferry-api-sdk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(
        &dir,
        &[
            "--data-dir",
            data.to_str()
                .ok_or_else(|| anyhow!("not UTF-8: {}", data.display()))?,
        ],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let url = serve.url.clone();
    let endpoint = url.trim_start_matches("http://").to_string();

    // A writer that commits until the job is ready, then stops and says so in a file.
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits) = (stop.clone(), commits.clone());
        tokio::spawn(async move {
            let mut c = connect(&source()).await?;
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                // Parents 1..=3000 in turn: deleted, re-keyed (id and unique code), or
                // re-created; their descendants follow by cascade on the source only.
                let p = 1 + (i * 7) % 3000;
                let family = match i % 4 {
                    0 => format!("DELETE FROM {DB}.parent WHERE id = {p};"),
                    1 => format!("UPDATE {DB}.parent SET id = id + 10000 WHERE id = {p};"),
                    2 => format!("UPDATE {DB}.parent SET code = CONCAT(code, 'x') WHERE id = {p};"),
                    _ => format!(
                        "INSERT IGNORE INTO {DB}.parent VALUES ({p}, 'n{i}'); \
                         INSERT IGNORE INTO {DB}.child VALUES ({}, {p}, 'n{i}');",
                        100_000 + i
                    ),
                };
                // MariaDB's own objects: a sequence, UUID/INET keys, a period table, history
                let maria = format!(
                    "INSERT INTO {DB}.orders (n) VALUES ({i}); \
                     UPDATE {DB}.acct SET ip4 = INET_NTOA({i}), ip6 = '::ffff:10.1.2.3' WHERE n = {}; \
                     UPDATE {DB}.price FOR PORTION OF valid FROM '2024-03-01' TO '2024-04-01' SET p = p + 1 WHERE id = {}; \
                     UPDATE {DB}.vhist SET v = v + 1 WHERE id = {};",
                    1 + i % 500,
                    1 + i % 50,
                    1 + i % 100
                );
                c.query_drop(format!(
                    "START TRANSACTION; UPDATE {DB}.counter SET n = n + 1 WHERE id = 1; \
                     INSERT INTO {DB}.journal (v) VALUES ({i}); {family} {maria} COMMIT"
                ))
                .await?;
                commits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            anyhow::Ok(())
        })
    };
    let (src, dst) = (source(), target());
    let job = json!({
        "JobName": "sdk-e2e",
        "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 2},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()},
        "DstDatabaseType": "mysql", "DstAccessType": "cdb",
        "DstInfo": {"Ip": dst.host, "Port": dst.port, "User": dst.user, "Password": dst.password.expose()},
        "DatabaseInfo": json!([{"Database": DB}]).to_string(),
    });
    let steps = run_e2e(&python, &dir, &endpoint, &job, &[], &stop, &commits).await;
    serve.kill9();
    let steps = steps?;
    writer.await??;
    let by = |name: &str| step(&steps, name);
    assert_eq!(by("checked")["check_flag"], 1);
    let ready = by("ready");
    assert_eq!(ready["status"], 8);
    assert_eq!(
        ready["step_ids"],
        json!([
            "structure",
            "full_data",
            "post_data",
            "incremental",
            "verification"
        ])
    );
    assert!(ready["seconds_behind_master"].is_u64(), "{ready}");
    assert_eq!(ready["password"], "");
    let completed = by("completed");
    assert_eq!(completed["status"], 9);
    assert_eq!(
        completed["steps"]["verification"], 1,
        "the job's full verification found the tables equal: {completed}"
    );
    assert_eq!(completed["errors"], json!([]), "{completed}");
    assert_eq!(by("completed")["progress"], "100");
    let items = by("check_items");
    assert_eq!(
        (items["status"].clone(), items["check_flag"].clone()),
        (json!("success"), json!("checkPass"))
    );
    assert!(items["steps"].as_u64().unwrap_or(0) > 5, "{items}");
    let detail = by("detail");
    assert_eq!(detail["status"], "success");
    assert_eq!(detail["src_password"], "");
    assert_eq!(
        detail["steps"],
        json!([
            "structure",
            "full_data",
            "post_data",
            "incremental",
            "verification"
        ])
    );

    let a = ferry_testkit::db_digest(&mut s, DB).await?;
    let b = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(a, b, "source and target differ");
    let n: u64 = ferry_testkit::scalar(&mut t, &format!("SELECT n FROM {DB}.counter WHERE id = 1")).await?;
    assert_eq!(n, commits.load(Ordering::SeqCst), "exactly once");
    for table in ["parent", "child", "grandchild"] {
        let q = format!("SELECT COUNT(*) FROM {DB}.{table}");
        let (a, b): (u64, u64) = (
            ferry_testkit::scalar(&mut s, &q).await?,
            ferry_testkit::scalar(&mut t, &q).await?,
        );
        assert_eq!(a, b, "{table}");
    }
    // the versioned table's history and the sequence's next value (NOCACHE: equal on both sides)
    let versions = format!("SELECT COUNT(*) FROM {DB}.vhist FOR SYSTEM_TIME ALL");
    let (a, b): (u64, u64) = (
        ferry_testkit::scalar(&mut s, &versions).await?,
        ferry_testkit::scalar(&mut t, &versions).await?,
    );
    assert_eq!(a, b, "vhist versions");
    assert!(a > 150, "vhist has its history: {a} versions");
    let next = format!("SELECT NEXTVAL({DB}.sq)");
    let (a, b): (i64, i64) = (
        ferry_testkit::scalar(&mut s, &next).await?,
        ferry_testkit::scalar(&mut t, &next).await?,
    );
    assert_eq!(a, b, "the sequence's next value");
    let gone: u64 = ferry_testkit::scalar(
        &mut s,
        &format!("SELECT 9000 - COUNT(*) FROM {DB}.child WHERE id <= 9000"),
    )
    .await?;
    assert!(gone > 0, "cascades happened on the source");
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The new-user run: a source account that `REQUIRE SSL` and has no RELOAD, a job created
/// through the SDK's generic call with `Ferry.SourceTls` (verify_identity, the CA as PEM text) and
/// `Ferry.SnapshotMode = lockless`, writes (counter + journal, and updates, deletes, inserts and
/// key updates of random rows) during the copy, cut-over: exactly once, every table equal. The
/// same job with another CA fails its check naming the certificate problem, StartMigrateJob is
/// refused, and nothing is created on the target. Only `svc_sdk_tls*` are touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_tls_lockless_without_reload() -> Result<()> {
    use ferry_testkit::exactly_once::{
        churn_writer, counter_writer, WriterStats, CHURN_TABLE, EXACTLY_ONCE_TABLES,
    };
    const TDB: &str = "svc_sdk_tls";
    const USER: &str = "svc_sdk_tls_user";
    const PASS: &str = "pw-sdk-tls-4321";
    let root = ferry_testkit::repo_root();
    let python = root.join(".ferry-test/venv/bin/python");
    if !python.exists() {
        println!(
            "SKIPPED python_sdk_tls_lockless_without_reload: {} is absent; run scripts/sdk-venv.sh",
            python.display()
        );
        return Ok(());
    }
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, TDB).await?;
    ferry_testkit::drop_dbs(&mut t, &[TDB, "svc_sdk_tls_bad"]).await?;
    ferry_testkit::exec(
        &mut s,
        &format!("USE {TDB}; {EXACTLY_ONCE_TABLES}; {CHURN_TABLE}"),
    )
    .await?;
    ferry_testkit::exec(
        &mut s,
        &format!(
            "CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASS}' REQUIRE SSL; \
             GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO '{USER}'@'%'"
        ),
    )
    .await?;
    let grants: Vec<String> = s.query(format!("SHOW GRANTS FOR '{USER}'@'%'")).await?;
    assert!(!grants.iter().any(|g| g.contains("RELOAD")), "{grants:?}");

    let dir: PathBuf = std::env::temp_dir().join(format!("ferry-api-sdk-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(
        &dir,
        &[
            "--data-dir",
            data.to_str()
                .ok_or_else(|| anyhow!("not UTF-8: {}", data.display()))?,
        ],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let endpoint = serve.url.trim_start_matches("http://").to_string();
    let (src, dst) = (source(), target());
    let job = |name: &str, db: &str, ca: &str| -> Result<Value> {
        let pem = std::fs::read_to_string(ferry_testkit::tls_file(ca))?;
        Ok(json!({
            "JobName": name,
            "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 2},
            "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
            "SrcInfo": {"Ip": src.host, "Port": src.port, "User": USER, "Password": PASS},
            "DstDatabaseType": "mysql", "DstAccessType": "cdb",
            "DstInfo": {"Ip": dst.host, "Port": dst.port, "User": dst.user, "Password": dst.password.expose()},
            "DatabaseInfo": json!([{"Database": db}]).to_string(),
            "Ferry": {"SourceTls": {"Mode": "verify_identity", "Ca": pem}, "SnapshotMode": "lockless",
                      "Threads": 2, "ChunkRows": 2000},
        }))
    };

    // The wrong CA first: the check fails naming the certificate, nothing is copied.
    let stop = Arc::new(AtomicBool::new(false));
    let none = Arc::new(AtomicU64::new(0));
    let bad = job("sdk-tls-bad", TDB, "other-ca.pem")?;
    let steps = run_e2e(
        &python,
        &dir,
        &endpoint,
        &bad,
        &[("FERRY_RAW_CREATE", "1"), ("FERRY_EXPECT_CHECK_FAILURE", "1")],
        &stop,
        &none,
    )
    .await;
    let steps = match steps {
        Ok(s) => s,
        Err(e) => {
            serve.kill9();
            return Err(e);
        }
    };
    let failed = step(&steps, "check_failed");
    let message = failed["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        message.contains("certificate") && message.contains("ferry.sourcetls"),
        "the check names the certificate problem and the field: {failed}"
    );
    assert!(!message.contains(PASS), "no password in the message");
    let created: u64 = ferry_testkit::scalar(
        &mut t,
        &format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{TDB}'"),
    )
    .await?;
    assert_eq!(created, 0, "nothing was created on the target");

    // The right CA, writes during the lock-free copy.
    let counter = Arc::new(WriterStats::default());
    let churn = Arc::new(WriterStats::default());
    let writers = vec![
        counter_writer(
            source(),
            TDB.into(),
            0,
            Duration::from_millis(3),
            u64::MAX,
            stop.clone(),
            counter.clone(),
        ),
        churn_writer(source(), TDB.into(), 11, stop.clone(), churn.clone()),
    ];
    // `run_e2e` stops the writers once the job is ready; it watches this count.
    let commits = Arc::new(AtomicU64::new(0));
    let mirror = {
        let (commits, counter, stop) = (commits.clone(), counter.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                commits.store(counter.commits.load(Ordering::SeqCst), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let good = job("sdk-tls-good", TDB, "ca.pem")?;
    let steps = run_e2e(
        &python,
        &dir,
        &endpoint,
        &good,
        &[("FERRY_RAW_CREATE", "1")],
        &stop,
        &commits,
    )
    .await;
    serve.kill9();
    let steps = steps?;
    mirror.await?;
    for w in writers {
        w.await??;
    }
    let completed = step(&steps, "completed");
    assert_eq!(completed["status"], 9, "{steps:?}");
    assert_eq!(
        completed["steps"]["verification"], 1,
        "the job's verification: {completed}"
    );
    assert_eq!(step(&steps, "ready")["password"], "");
    let n = counter.commits.load(Ordering::SeqCst);
    ferry_testkit::exactly_once::assert_exactly_once(&mut t, TDB, n, &format!("{steps:?}")).await?;
    let a = ferry_testkit::db_digest(&mut s, TDB).await?;
    let b = ferry_testkit::db_digest(&mut t, TDB).await?;
    assert_eq!(a, b, "source and target differ");
    ferry_testkit::drop_dbs(&mut s, &[TDB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[TDB]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
