//! `ferry run` full + incremental through a `Ferry.DbList` mapping: only one tenant's rows (a
//! filter on an integer, a date and a string column), one column dropped and one renamed, while
//! a writer moves rows into and out of the filter (tenant, date and code changes, key changes,
//! inserts, deletes) and `ALTER TABLE`s change a kept, a renamed and a dropped column; `kill -9`
//! of the replay in the middle, resume, cut-over: the target holds exactly the source's filtered
//! rows under the mapping, `ferry verify` compares through the mapping (consistent) and finds a
//! change planted in a tenant-7 row. A second table replays inserts and updates only (`dml_op`)
//! and no TRUNCATE (`ddl_op`). A lock-free full load through the same mapping replays its window
//! exactly, and the same job runs through the API (`ferry serve`). Only databases named `fr_*`
//! are touched.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const FILTER: &str = "tenant_id = 7 AND created >= '2024-01-01' AND code <> 'skip'";

/// The source table: `secret` is dropped, `note` becomes `remark`.
const TABLES: &str = "CREATE TABLE acc (id INT PRIMARY KEY, tenant_id INT NOT NULL, created DATE NOT NULL,
      code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, secret VARCHAR(40) NOT NULL,
      note TEXT, qty INT NOT NULL DEFAULT 0, KEY k_tenant (tenant_id));
    INSERT INTO acc SELECT seq, seq % 10, '2023-12-25' + INTERVAL seq % 20 DAY, IF(seq % 13 = 0, 'skip', 'ok'),
      MD5(seq), IF(seq % 3 = 0, NULL, CONCAT('n', seq)), seq % 7 FROM seq_1_to_4000;
    CREATE TABLE hist (id INT PRIMARY KEY, v INT NOT NULL);
    INSERT INTO hist SELECT seq, seq FROM seq_1_to_100;";

fn db_list(db: &str) -> Value {
    json!({db: {"Table": {
        "acc": {
            "filter": FILTER,
            "column": {"id": {}, "tenant_id": {}, "created": {}, "code": {}, "qty": {}, "note": {"name": "remark"}}
        },
        "hist": {"dml_op": "insert,update", "ddl_op": "CreateTable,AlterTable,CreateIndex"}
    }}})
}

/// Source transactions that change `acc` in every way the mapping must follow, and insert into
/// `hist` (and, once `hist_deletes` is set, delete from it), until `stop`. Returns the `hist` ids
/// inserted.
fn writer(
    db: String,
    stop: Arc<AtomicBool>,
    hist_deletes: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Result<Vec<i64>>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        let mut seed: u64 = 0x5eed;
        let mut next_id = 100_000i64;
        let mut hist = Vec::new();
        let mut i = 0i64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = (seed >> 33) as i64;
            let k = 1 + r % 4000;
            let stmt = match r % 10 {
                // into and out of tenant 7
                0..=2 => format!("UPDATE acc SET tenant_id = IF(tenant_id = 7, 8, 7) WHERE id = {k}"),
                3 => format!("UPDATE acc SET note = CONCAT('w', {i}), secret = MD5({i}) WHERE id = {k}"),
                // several rows at once, some crossing the date bound
                4 => format!(
                    "UPDATE acc SET qty = qty + 1, created = created + INTERVAL IF(created < '2024-01-01', 3, -3) DAY \
                     WHERE id BETWEEN {k} AND {k} + 8"
                ),
                5 => {
                    next_id += 1;
                    format!(
                        "INSERT INTO acc VALUES ({next_id}, {}, '2024-02-01', 'ok', 's', 'new', 1)",
                        if r % 3 == 0 { 7 } else { 3 }
                    )
                }
                6 => format!("DELETE FROM acc WHERE id = {k}"),
                // a key change
                7 => {
                    next_id += 1;
                    format!("UPDATE acc SET id = {next_id} WHERE id = {k}")
                }
                8 => format!("UPDATE acc SET code = IF(code = 'skip', 'ok', 'skip') WHERE id = {k}"),
                _ => {
                    hist.push(1000 + i);
                    let insert = format!("INSERT INTO hist VALUES ({}, {i})", 1000 + i);
                    if hist_deletes.load(Ordering::SeqCst) {
                        let gone = hist[(r as usize) % hist.len()];
                        format!("{insert}; DELETE FROM hist WHERE id IN ({gone}, {})", 1 + r % 100)
                    } else {
                        insert
                    }
                }
            };
            c.query_drop(format!("USE {db}; START TRANSACTION; {stmt}; COMMIT"))
                .await?;
            commits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(hist)
    })
}

type AccRow = (i64, i64, String, String, Option<String>, i64);

/// The source's rows inside the filter, and the target's rows, under the mapping.
async fn compare_acc(db: &str) -> Result<(Vec<AccRow>, Vec<AccRow>)> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    let want: Vec<AccRow> = s
        .query(format!(
            "SELECT id, tenant_id, CAST(created AS CHAR), code, note, qty FROM {db}.acc WHERE {FILTER} ORDER BY id"
        ))
        .await?;
    let got: Vec<AccRow> = t
        .query(format!(
            "SELECT id, tenant_id, CAST(created AS CHAR), code, remark, qty FROM {db}.acc ORDER BY id"
        ))
        .await?;
    Ok((want, got))
}

async fn setup(db: &str, job: &str) -> Result<()> {
    forget_job_meta(job).await?;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    drop_dbs(&mut t, &[db]).await?;
    exec(&mut s, &format!("USE {db}; {TABLES}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_replays_through_the_mapping_across_kill_9() -> Result<()> {
    const DB: &str = "fr_tenant";
    const JOB: &str = "fr-tenant";
    setup(DB, JOB).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let hist_deletes = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(DB.into(), stop.clone(), hist_deletes.clone(), commits.clone());

    let j = mapped_job(JOB, json!({"Threads": 2, "ChunkRows": 1000}), db_list(DB), 3);
    let path = write_job(JOB, &j);
    let log = path.with_extension("log");
    let mut child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let first_run = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(180, "the replay checkpoint to advance", || {
        let ep = target();
        async move {
            let mut t = connect(&ep).await?;
            Ok(replay_checkpoint_ts(&mut t, JOB).await? > 0)
        }
    })
    .await?;
    // Past the snapshot: hist's deletes are replayed (or rather left out) from here on.
    hist_deletes.store(true, Ordering::SeqCst);
    // DDL while the writer runs: a kept column, the renamed one, the dropped one (left off the
    // target), a column the mapping does not list (left off too).
    let mut s = connect(&source()).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; ALTER TABLE acc MODIFY qty BIGINT NOT NULL DEFAULT 0; \
             ALTER TABLE acc MODIFY note VARCHAR(300); ALTER TABLE acc MODIFY secret VARCHAR(80) NOT NULL; \
             TRUNCATE TABLE hist"
        ),
    )
    .await?;
    wait_until(
        120,
        "the renamed column's DDL to reach the target",
        || async move {
            let mut t = connect(&target()).await?;
            let ty: Option<String> = t
                .query_first(format!(
                    "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{DB}' \
                 AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'remark'"
                ))
                .await?;
            Ok(ty.as_deref() == Some("varchar"))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}; the first run said:\n{}", first_run()))?;
    child.kill()?; // SIGKILL, in the middle of the replay
    child.wait()?;
    let at_kill = commits.load(Ordering::SeqCst);
    wait_until(60, "more source commits after the kill", || {
        let c = commits.clone();
        async move { Ok(c.load(Ordering::SeqCst) > at_kill + 200) }
    })
    .await?;
    stop.store(true, Ordering::SeqCst);
    let hist_inserted = w.await??;

    let out = run(&path, &["--skip-check", "--complete-when-caught-up"]);
    assert!(out.status.success(), "{}", text(&out));
    let o = text(&out);
    assert!(o.contains("excluded"), "deletes of hist are counted: {o}");

    // Exactly the source's filtered rows under the mapping.
    let (want, got) = compare_acc(DB).await?;
    assert!(want.len() > 100, "the filter selects rows ({})", want.len());
    assert_eq!(got.len(), want.len(), "row count");
    assert!(
        got == want,
        "the target's rows differ from the source's filtered rows"
    );
    // The target's structure follows the DDL through the mapping.
    let mut t = connect(&target()).await?;
    let cols: Vec<(String, String)> = t
        .query(format!(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{DB}' \
             AND TABLE_NAME = 'acc' ORDER BY ORDINAL_POSITION"
        ))
        .await?;
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["id", "tenant_id", "created", "code", "remark", "qty"]);
    assert_eq!(cols[4].1, "varchar(300)");
    assert_eq!(cols[5].1, "bigint(20)");
    // hist: inserts and updates replayed, deletes and the TRUNCATE not: every row ever there.
    let n: u64 = scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.hist")).await?;
    assert_eq!(n, 100 + hist_inserted.len() as u64, "hist keeps every row");

    // Verification through the mapping: acc (filter on both sides, mapped columns) is
    // consistent; hist differs by design (its deletes were left out), and says so.
    let report = verify_json(&path)?;
    let table = |name: &str| {
        report["tables"]
            .as_array()
            .and_then(|ts| {
                ts.iter()
                    .find(|t| t["table"].as_str().is_some_and(|n| n.ends_with(name)))
            })
            .cloned()
            .unwrap_or_default()
    };
    let acc = table("acc");
    assert_eq!(acc["rows_compared"], json!(want.len()), "{acc}");
    assert_eq!(
        (
            acc["only_in_source"].clone(),
            acc["only_in_target"].clone(),
            acc["different"].clone()
        ),
        (json!(0), json!(0), json!(0)),
        "{acc}"
    );
    assert!(
        table("hist")["only_in_target"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    // The structure compares through the mapping too: no column of acc differs.
    let acc_objects: Vec<&Value> = report["objects"]
        .as_array()
        .map(|o| {
            o.iter()
                .filter(|d| format!("{}{}", d["source_name"], d["target_name"]).contains("acc"))
                .collect()
        })
        .unwrap_or_default();
    assert!(acc_objects.is_empty(), "{acc_objects:?}");
    // A planted change to a tenant-7 row on the target is found.
    let planted = want[want.len() / 2].0;
    exec(
        &mut t,
        &format!("UPDATE {DB}.acc SET remark = 'planted' WHERE id = {planted}"),
    )
    .await?;
    let acc = verify_json(&path)?["tables"]
        .as_array()
        .and_then(|ts| {
            ts.iter()
                .find(|t| t["table"].as_str().is_some_and(|n| n.ends_with("acc")))
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(acc["different"], json!(1), "{acc}");

    drop_dbs(&mut connect(&source()).await?, &[DB]).await?;
    drop_dbs(&mut t, &[DB]).await?;
    Ok(())
}

/// `ferry verify FILE --json`: the report.
fn verify_json(path: &std::path::Path) -> Result<Value> {
    let out = ferry().arg("verify").arg(path).arg("--json").output()?;
    eprintln!("ferry verify: {}\n{}", out.status, text(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_free_load_through_the_mapping_replays_its_window_exactly() -> Result<()> {
    const DB: &str = "fr_lockless";
    const JOB: &str = "fr-lockless";
    setup(DB, JOB).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(
        DB.into(),
        stop.clone(),
        Arc::new(AtomicBool::new(false)),
        commits.clone(),
    );
    // A full-only lock-free load while the writer runs: its chunks are read at different
    // positions and the window between them is replayed through the mapping.
    let j = mapped_job(
        JOB,
        json!({"SnapshotMode": "lockless", "Threads": 2, "ChunkRows": 300, "RowsPerSecond": 100}),
        db_list(DB),
        2,
    );
    let path = write_job(JOB, &j);
    let child = ferry()
        .arg("run")
        .arg(&path)
        .args(["--progress", "plain", "--restart", "--skip-check"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // The writer stops while the copy still runs, so the window's end is the source's end.
    wait_until(120, "a few chunks to be copied", || async move {
        let mut t = connect(&target()).await?;
        let n: u64 = scalar(
            &mut t,
            &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DB}' AND TABLE_NAME = 'acc'"),
        )
        .await?;
        if n == 0 {
            return Ok(false);
        }
        let rows: u64 = scalar(&mut t, &format!("SELECT COUNT(*) FROM {DB}.acc")).await?;
        Ok(rows > 50)
    })
    .await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let o = text(&out);
    eprintln!("{o}");
    assert!(out.status.success(), "{o}");
    // The writer ran while chunks were read at different positions: the window was replayed.
    assert!(o.contains("incremental"), "the load's window was replayed: {o}");
    let (want, got) = compare_acc(DB).await?;
    assert!(want.len() > 100, "the filter selects rows ({})", want.len());
    assert_eq!(got.len(), want.len(), "row count");
    assert!(
        got == want,
        "the target's rows differ from the source's filtered rows"
    );
    drop_dbs(&mut connect(&source()).await?, &[DB]).await?;
    drop_dbs(&mut connect(&target()).await?, &[DB]).await?;
    Ok(())
}

/// The same mapped job through the API (`ferry serve`): created, checked, started, caught up
/// while the writer runs, completed; the target holds exactly the source's filtered rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapped_job_through_the_api() -> Result<()> {
    use common::api::{call, wait_status};
    use common::serve::start_keyed;
    const DB: &str = "fr_api";
    const JOB: &str = "fr-api";
    const ID: &str = "AKIDferrymappingtest";
    const KEY: &str = "ferry-mapping-test-key";
    setup(DB, JOB).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let w = writer(
        DB.into(),
        stop.clone(),
        Arc::new(AtomicBool::new(false)),
        commits.clone(),
    );
    let dir = std::env::temp_dir().join(format!("ferry-mapping-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let serve = start_keyed(&dir.join("data"), ID, KEY)?;
    let c = ferry_api::Client::new(serve.url.clone(), ID, KEY);
    let request = mapped_job(JOB, json!({"Threads": 2, "ChunkRows": 1000}), db_list(DB), 3);
    let id = call(&c, "CreateMigrateJob", request).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(&c, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 4, 120).await?;
    call(&c, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 8, 300).await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    call(&c, "CompleteMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 9, 300).await?;
    let (want, got) = compare_acc(DB).await?;
    assert!(want.len() > 100, "the filter selects rows ({})", want.len());
    assert_eq!(got.len(), want.len(), "row count");
    assert!(
        got == want,
        "the target's rows differ from the source's filtered rows"
    );
    drop(serve);
    drop_dbs(&mut connect(&source()).await?, &[DB]).await?;
    drop_dbs(&mut connect(&target()).await?, &[DB]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
