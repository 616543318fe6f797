//! The store's tests. Those about what a store does run on both backends: SQLite in a temporary
//! directory and MySQL/MariaDB in a database of their own on the target test server
//! (`scripts/servers.sh`); those about `ferry.db` itself (file mode, lock, WAL, scrubbing) on
//! SQLite only.

use std::path::PathBuf;

use rusqlite::{params, Connection};

use super::*;

fn job(id: &str, status: JobStatus) -> JobRow {
    JobRow {
        seq: 0,
        job_id: id.into(),
        job_name: "n".into(),
        request: JobRequest::parse(serde_json::json!({"JobName": "n"})).unwrap(),
        status,
        create_time: 1,
        update_time: 1,
        start_time: None,
        end_time: None,
        error_message: String::new(),
        check: CheckState::default(),
        detail: Detail::default(),
        paused: None,
        restart_next: false,
        limits: Limits::default(),
        retries: 0,
        retry_since: None,
        error_kind: None,
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferry-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A store under test: where it is and its data directory (the key file).
pub(crate) struct TestStore {
    pub location: StoreLocation,
    pub dir: PathBuf,
}

impl TestStore {
    pub async fn open(&self) -> Result<Store, ServiceError> {
        Store::open_at(&self.location, &self.dir, None).await
    }
    pub async fn open_with_key(&self, key: Option<String>) -> Result<Store, ServiceError> {
        Store::open_at(&self.location, &self.dir, key).await
    }
    pub fn is_mysql(&self) -> bool {
        self.location.is_shared()
    }
}

/// The MySQL store `db` on the target test server (the database dropped first).
pub(crate) async fn mysql_store(db: &str) -> StoreLocation {
    let t = ferry_testkit::target();
    let mut c = ferry_testkit::connect(&t).await.unwrap();
    ferry_testkit::drop_dbs(&mut c, &[db]).await.unwrap();
    StoreLocation::Mysql(Box::new(MysqlUrl {
        host: t.host.clone(),
        port: t.port,
        user: t.user.clone(),
        password: t.password.clone(),
        database: db.into(),
        tls: ferry_core::TlsConfig::default(),
    }))
}

/// The two backends, each with a fresh store of its own for the test `name`.
async fn both(name: &str) -> Vec<TestStore> {
    vec![
        TestStore {
            location: StoreLocation::Sqlite,
            dir: temp_dir(&format!("{name}-sqlite")),
        },
        TestStore {
            location: mysql_store(&format!("ferry_store_{name}")).await,
            dir: temp_dir(&format!("{name}-mysql")),
        },
    ]
}

impl Store {
    /// Runs a statement as is (tests that damage rows).
    async fn exec_raw(&self, statement: &str) -> Result<(), ServiceError> {
        let statement = statement.to_string();
        match &self.backend {
            Backend::Sqlite(s) => {
                s.with(move |c| c.execute_batch(&statement).map_err(ServiceError::store("test")))
                    .await
            }
            Backend::Mysql(m) => {
                use mysql_async::prelude::Queryable as _;
                let mut c = m.conn().await?;
                c.query_drop(statement)
                    .await
                    .map_err(|source| ServiceError::Server {
                        server: "test".into(),
                        context: "test".into(),
                        source,
                    })
            }
        }
    }

    /// The stored requests as they are in the store (encrypted).
    async fn raw_requests(&self) -> Vec<String> {
        match &self.backend {
            Backend::Sqlite(s) => s
                .with(|c| {
                    let mut st = c.prepare("SELECT request FROM jobs").unwrap();
                    let rows = st.query_map([], |r| r.get(0)).unwrap();
                    Ok(rows.map(|r| r.unwrap()).collect())
                })
                .await
                .unwrap(),
            Backend::Mysql(m) => {
                use mysql_async::prelude::Queryable as _;
                let mut c = m.conn().await.unwrap();
                c.query("SELECT request FROM jobs").await.unwrap()
            }
        }
    }
}

#[tokio::test]
async fn lag_series_survive_a_reopen_and_go_with_the_job() {
    use crate::series::{Sample, SeriesStore as _};
    for ts in both("series").await {
        let s = ts.open().await.unwrap();
        s.insert_job(job("dts-series1", JobStatus::Running))
            .await
            .unwrap();
        let t0 = 1_000_000;
        for i in 0..10 {
            let v = f64::from(i);
            let sample = Sample {
                t: t0 + i64::from(i) * 5,
                seconds_behind: v,
                bytes_behind: v * 100.0,
                events_per_second: 2.0,
                rows_per_second: 3.0,
            };
            s.append("dts-series1", sample).await.unwrap();
        }
        let now = t0 + 60;
        let fine = s.read("dts-series1", t0, 5, now).await.unwrap();
        assert_eq!(fine.len(), 10);
        assert_eq!(fine[3].seconds_behind, 3.0);
        let coarse = s.read("dts-series1", t0, 25, now).await.unwrap();
        assert_eq!(coarse.len(), 2);
        assert!((coarse[0].seconds_behind - 2.0).abs() < 1e-9, "{coarse:?}");
        s.close().await;
        drop(s);
        let s = ts.open().await.unwrap();
        assert_eq!(s.read("dts-series1", t0, 5, now).await.unwrap(), fine);
        // A day later the fine tier is gone for that period: the 5-minute tier answers.
        let later = s.read("dts-series1", t0, 5, t0 + 86_400).await.unwrap();
        assert_eq!(later.len(), 1);
        assert!((later[0].seconds_behind - 4.5).abs() < 1e-9);
        s.delete_job("dts-series1", &[JobStatus::Running]).await.unwrap();
        assert!(s.read("dts-series1", t0, 5, now).await.unwrap().is_empty());
        s.close().await;
        let _ = std::fs::remove_dir_all(&ts.dir);
    }
}

#[tokio::test]
async fn conditional_updates_compare_tasks_and_reopen() {
    for ts in both("cond").await {
        let s = ts.open().await.unwrap();
        assert!(s
            .insert_job(job("dts-aaaaaaaa", JobStatus::CheckPass))
            .await
            .unwrap());
        assert!(!s
            .insert_job(job("dts-aaaaaaaa", JobStatus::CheckPass))
            .await
            .unwrap());
        let r = s
            .update(
                "dts-aaaaaaaa",
                Some(&[JobStatus::CheckPass]),
                Patch::status(JobStatus::ReadyRun),
            )
            .await
            .unwrap();
        assert!(matches!(r, Update::Done(j) if j.status == JobStatus::ReadyRun));
        // The same values again (same second): still applied, as the status matched.
        let r = s
            .update(
                "dts-aaaaaaaa",
                Some(&[JobStatus::ReadyRun]),
                Patch::status(JobStatus::ReadyRun),
            )
            .await
            .unwrap();
        assert!(matches!(r, Update::Done(_)), "{r:?}");
        let r = s
            .update(
                "dts-aaaaaaaa",
                Some(&[JobStatus::CheckPass]),
                Patch::status(JobStatus::ReadyRun),
            )
            .await
            .unwrap();
        assert!(matches!(r, Update::WrongStatus(JobStatus::ReadyRun)));
        let r = s.update("dts-zzzzzzzz", None, Patch::default()).await.unwrap();
        assert!(matches!(r, Update::Missing));
        // Compare tasks: oldest first, conditional status changes.
        for (id, at) in [("cmp-2", 20), ("cmp-1", 10)] {
            s.insert_compare(CompareRow {
                compare_task_id: id.into(),
                job_id: "dts-aaaaaaaa".into(),
                task_name: id.into(),
                status: "created".into(),
                config: serde_json::json!({"ObjectMode": "all"}),
                report: None,
                message: String::new(),
                created_at: at,
                started_at: None,
                finished_at: None,
            })
            .await
            .unwrap();
        }
        let change = |status: &str| CompareChange {
            status: status.into(),
            report: Some(serde_json::json!({"consistent": true})),
            started_at: Some(30),
            ..CompareChange::default()
        };
        assert!(s
            .update_compare("cmp-1", &["created"], change("running"))
            .await
            .unwrap());
        assert!(!s
            .update_compare("cmp-1", &["created"], change("running"))
            .await
            .unwrap());
        let cs = s.compares("dts-aaaaaaaa").await.unwrap();
        assert_eq!(
            cs.iter().map(|c| c.compare_task_id.as_str()).collect::<Vec<_>>(),
            ["cmp-1", "cmp-2"]
        );
        assert_eq!(cs[0].status, "running");
        assert_eq!(cs[0].report, Some(serde_json::json!({"consistent": true})));
        assert_eq!(cs[0].started_at, Some(30));
        assert_eq!(s.all_compares().await.unwrap().len(), 2);
        s.close().await;
        drop(s);
        let s = ts.open().await.unwrap();
        assert_eq!(s.jobs().await.unwrap().len(), 1);
        if let Some(path) = s.path() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
            let e = ts.open().await.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("in use by another ferry serve"), "{e}");
        } else {
            // A shared store: a second node opens it at the same time.
            let other = ts.open().await.unwrap();
            assert_eq!(other.jobs().await.unwrap().len(), 1);
            other.close().await;
        }
        let r = s
            .delete_job("dts-aaaaaaaa", &[JobStatus::CheckPass])
            .await
            .unwrap();
        assert!(matches!(r, Update::WrongStatus(JobStatus::ReadyRun)));
        let r = s
            .delete_job("dts-aaaaaaaa", &[JobStatus::ReadyRun])
            .await
            .unwrap();
        assert!(matches!(r, Update::Done(_)));
        assert!(
            s.all_compares().await.unwrap().is_empty(),
            "compare tasks go with the job"
        );
        s.close().await;
        let _ = std::fs::remove_dir_all(&ts.dir);
    }
}

#[tokio::test]
async fn a_row_that_does_not_parse_is_an_error_naming_the_job() {
    for ts in both("corrupt").await {
        let s = ts.open().await.unwrap();
        s.insert_job(job("dts-broken00", JobStatus::Failed))
            .await
            .unwrap();
        for (col, value) in [
            ("paused", "'half'"),
            ("error_kind", "'maybe'"),
            (
                "detail",
                "'{\"steps\": [{\"id\": \"x\", \"name\": \"x\", \"status\": 9}]}'",
            ),
            ("check_state", "'{\"state\": \"sleeping\"}'"),
        ] {
            s.exec_raw("UPDATE jobs SET paused = '', error_kind = '', detail = '{}', check_state = '{}'")
                .await
                .unwrap();
            s.exec_raw(&format!("UPDATE jobs SET {col} = {value}"))
                .await
                .unwrap();
            let e = s.job("dts-broken00").await.unwrap_err().to_string();
            assert!(e.contains("job dts-broken00: ") && e.contains(col), "{col}: {e}");
            let e = s.jobs().await.unwrap_err().to_string();
            assert!(e.contains("dts-broken00"), "{e}");
        }
        s.close().await;
        let _ = std::fs::remove_dir_all(&ts.dir);
    }
}

/// Whether `needle` is anywhere in ferry.db or its WAL.
fn on_disk(dir: &Path, needle: &str) -> bool {
    ["ferry.db", "ferry.db-wal", "ferry.db-journal"].iter().any(|f| {
        std::fs::read(dir.join(f))
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

fn job_with_password(id: &str, pw: &str) -> JobRow {
    let mut j = job(id, JobStatus::CheckPass);
    j.request = JobRequest::parse(
        serde_json::json!({"JobName": "n", "SrcInfo": {"Password": pw}, "DstInfo": {"Password": pw}}),
    )
    .unwrap();
    j
}

#[tokio::test]
async fn passwords_are_encrypted_and_scrubbed_when_replaced_or_deleted() {
    for ts in both("secrets").await {
        let s = ts.open_with_key(None).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ts.dir.join("store.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(s
            .insert_job(job_with_password("dts-aaaaaaaa", "first-Pw-1111"))
            .await
            .unwrap());
        assert!(s
            .insert_job(job_with_password("dts-bbbbbbbb", "other-Pw-2222"))
            .await
            .unwrap());
        let read = s.job("dts-aaaaaaaa").await.unwrap().unwrap();
        assert_eq!(read.request.raw()["SrcInfo"]["Password"], "first-Pw-1111");
        let stored = s.raw_requests().await;
        assert_eq!(stored.len(), 2);
        for r in &stored {
            assert!(r.starts_with(crate::secrets::PREFIX) && !r.contains("Pw-"), "{r}");
        }
        assert!(!on_disk(&ts.dir, "first-Pw-1111") && !on_disk(&ts.dir, "other-Pw-2222"));
        // Replaced: the new request is read back, and neither password is on disk.
        let patch = Patch {
            request: Some(
                JobRequest::parse(serde_json::json!({"SrcInfo": {"Password": "second-Pw-3333"}})).unwrap(),
            ),
            ..Patch::default()
        };
        assert!(matches!(
            s.update("dts-aaaaaaaa", None, patch).await.unwrap(),
            Update::Done(j) if j.request.raw()["SrcInfo"]["Password"] == "second-Pw-3333"
        ));
        let deleted = s
            .delete_job("dts-bbbbbbbb", &[JobStatus::CheckPass])
            .await
            .unwrap();
        assert!(matches!(deleted, Update::Done(_)));
        if !ts.is_mysql() {
            let wal = std::fs::metadata(ts.dir.join("ferry.db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
            assert_eq!(wal, 0, "the WAL is truncated after a delete");
            for pw in ["first-Pw-1111", "second-Pw-3333", "other-Pw-2222"] {
                assert!(!on_disk(&ts.dir, pw), "{pw} is in the store's files");
            }
        }
        s.close().await;
        drop(s);
        // The key is kept; another key is refused at open, naming FERRY_STORE_KEY.
        let s = ts.open_with_key(None).await.unwrap();
        assert_eq!(s.jobs().await.unwrap().len(), 1);
        s.close().await;
        drop(s);
        let e = ts
            .open_with_key(Some("ab".repeat(32)))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("FERRY_STORE_KEY"), "{e}");
        let _ = std::fs::remove_dir_all(&ts.dir);
    }
}

#[tokio::test]
async fn plain_text_rows_of_earlier_versions_are_encrypted_at_open() {
    let dir = temp_dir("migrate");
    let key = "cd".repeat(32);
    // A store of the previous version: schema 1, plain-text requests, a deleted job whose
    // password is still in free space, no store_meta.
    std::fs::create_dir_all(&dir).unwrap();
    {
        let mut c = Connection::open(dir.join("ferry.db")).unwrap();
        c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
        let tx = c.transaction().unwrap();
        tx.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        tx.execute_batch(sqlite::MIGRATIONS[0]).unwrap();
        tx.execute("INSERT INTO schema_version (version) VALUES (1)", [])
            .unwrap();
        for (id, pw) in [("dts-kept0000", "kept-Pw-4444"), ("dts-gone0000", "gone-Pw-5555")] {
            tx.execute(
                "INSERT INTO jobs (job_id, job_name, request, status, create_time, update_time) \
                 VALUES (?, 'n', ?, 4, 1, 1)",
                params![id, format!("{{\"SrcInfo\":{{\"Password\":\"{pw}\"}}}}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        c.execute("DELETE FROM jobs WHERE job_id = 'dts-gone0000'", [])
            .unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    assert!(on_disk(&dir, "kept-Pw-4444") && on_disk(&dir, "gone-Pw-5555"));
    let s = Store::open_with_key(&dir, Some(key.clone())).await.unwrap();
    assert!(
        !dir.join("store.key").exists(),
        "FERRY_STORE_KEY is used, no key file"
    );
    let jobs = s.jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].request.raw()["SrcInfo"]["Password"], "kept-Pw-4444");
    assert!(!on_disk(&dir, "kept-Pw-4444"), "encrypted at open");
    assert!(!on_disk(&dir, "gone-Pw-5555"), "free space scrubbed");
    drop(s);
    let s = Store::open_with_key(&dir, Some(key)).await.unwrap();
    assert_eq!(s.jobs().await.unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn leases_are_claimed_once_renewed_taken_over_and_released() {
    for ts in both("leases").await {
        let s = ts.open().await.unwrap();
        s.insert_job(job("dts-lease001", JobStatus::ReadyRun))
            .await
            .unwrap();
        s.insert_job(job("dts-lease002", JobStatus::CheckPass))
            .await
            .unwrap();
        let now = 1_000_000;
        // Two nodes claim at once: exactly one wins, with epoch 1.
        let (a, b) = tokio::join!(
            s.claim("dts-lease001", "node-a", now + 10_000, now),
            s.claim("dts-lease001", "node-b", now + 10_000, now)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.is_some() != b.is_some(), "{a:?} {b:?}");
        assert_eq!(a.or(b), Some(1));
        let winner = if a.is_some() { "node-a" } else { "node-b" };
        let loser = if a.is_some() { "node-b" } else { "node-a" };
        // A job that needs no owner is not claimed.
        assert_eq!(
            s.claim("dts-lease002", loser, now + 10_000, now).await.unwrap(),
            None
        );
        // Held: not claimable; renewed by its owner only.
        assert_eq!(
            s.claim("dts-lease001", loser, now + 10_000, now + 1)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.renew(winner, now + 20_000).await.unwrap(),
            vec![("dts-lease001".to_string(), 1)]
        );
        assert!(s.renew(loser, now + 20_000).await.unwrap().is_empty());
        // Expired: taken over with the next epoch; the former owner holds nothing any more.
        assert_eq!(
            s.claim("dts-lease001", loser, now + 40_000, now + 20_001)
                .await
                .unwrap(),
            Some(2)
        );
        assert!(s.renew(winner, now + 40_000).await.unwrap().is_empty());
        assert!(
            !s.release("dts-lease001", winner, 1).await.unwrap(),
            "stale epoch"
        );
        let leases = s.leases().await.unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!((leases[0].owner.as_str(), leases[0].epoch), (loser, 2));
        // Actions queued for the owner.
        s.push_action("dts-lease001", "stop", now).await.unwrap();
        assert!(s.actions_for(winner).await.unwrap().is_empty());
        let queued = s.actions_for(loser).await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].action, "stop");
        assert!(s.take_action(queued[0].id).await.unwrap());
        assert!(!s.take_action(queued[0].id).await.unwrap());
        assert!(s.release("dts-lease001", loser, 2).await.unwrap());
        assert_eq!(
            s.owner("dts-lease001").await.unwrap(),
            Some((String::new(), 0, 2))
        );
        // Nodes and their heartbeats.
        let lease = 10_000;
        s.heartbeat("node-a", "p1", 4, false, now, lease).await.unwrap();
        // Another process under the same id is refused while the first one's heartbeat is
        // fresh, and takes the id over once it is a lease old (or draining).
        match s.heartbeat("node-a", "p2", 4, false, now + 5, lease).await {
            Err(ServiceError::NodeIdInUse {
                node,
                heartbeat_age_ms,
            }) => {
                assert_eq!((node.as_str(), heartbeat_age_ms), ("node-a", 5));
            }
            other => panic!("a second process under one node id: {other:?}"),
        }
        s.heartbeat("node-a", "p1", 3, true, now + 5, lease)
            .await
            .unwrap();
        let nodes = s.nodes().await.unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(
            (nodes[0].heartbeat_ms, nodes[0].max_running, nodes[0].draining),
            (now + 5, 3, true)
        );
        s.heartbeat("node-a", "p2", 4, false, now + 6, lease)
            .await
            .unwrap();
        assert!(matches!(
            s.heartbeat("node-a", "p1", 4, false, now + 7, lease).await,
            Err(ServiceError::NodeIdInUse { .. })
        ));
        s.heartbeat("node-a", "p1", 4, false, now + 6 + lease + 1, lease)
            .await
            .unwrap();
        s.close().await;
        let _ = std::fs::remove_dir_all(&ts.dir);
    }
}
