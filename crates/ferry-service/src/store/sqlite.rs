//! The SQLite backend of the job store (the default): `ferry.db` in the data directory (WAL,
//! `synchronous=FULL`, file mode 0600), its schema version and migrations, and the rows.
//!
//! A job's request holds the databases' passwords: it is stored encrypted ([`crate::secrets`];
//! the key in `FERRY_STORE_KEY` or `DATA_DIR/store.key`). `secure_delete` is on, and the WAL is
//! checkpointed and truncated after a request is replaced or a job deleted, so that neither the
//! old ciphertext nor (for stores written by earlier versions) a plain-text password stays in
//! `ferry.db` or `ferry.db-wal`. Plain-text requests of earlier versions are encrypted at open,
//! and the file is vacuumed once.
//!
//! Every call runs on the blocking pool (`spawn_blocking`) around one connection. A status change
//! is one `UPDATE … WHERE job_id = ? AND status IN (…)`: it either wins or changes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::sql::{self, P};
use super::{CompareChange, CompareRow, JobRow, Patch, Update, META_KEY_CHECK};
use crate::error::ServiceError;
use crate::secrets::Cipher;
use crate::status::JobStatus;

/// The schema, one entry per version; a database at version N runs the entries after N.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: jobs and compare tasks.
    "CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL UNIQUE,
        job_name TEXT NOT NULL,
        request TEXT NOT NULL,
        status INTEGER NOT NULL,
        create_time INTEGER NOT NULL,
        update_time INTEGER NOT NULL,
        start_time INTEGER,
        end_time INTEGER,
        error_message TEXT NOT NULL DEFAULT '',
        check_state TEXT NOT NULL DEFAULT '{}',
        detail TEXT NOT NULL DEFAULT '{}',
        paused TEXT NOT NULL DEFAULT '',
        restart_next INTEGER NOT NULL DEFAULT 0,
        limits TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE compare_tasks (
        compare_task_id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        task_name TEXT NOT NULL,
        status TEXT NOT NULL,
        config TEXT NOT NULL,
        report TEXT,
        message TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
    );
    CREATE INDEX compare_tasks_job ON compare_tasks (job_id);",
    // 2: facts about the store itself (the key check, whether old plain text was scrubbed).
    "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 3: the lag series of jobs (crate::series): per bucket width, sums and a count.
    "CREATE TABLE lag_series (
        job_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        t INTEGER NOT NULL,
        n INTEGER NOT NULL,
        seconds_behind REAL NOT NULL,
        bytes_behind REAL NOT NULL,
        events_per_second REAL NOT NULL,
        rows_per_second REAL NOT NULL,
        PRIMARY KEY (job_id, step, t)
    ) WITHOUT ROWID;",
    // 4: the service's automatic retries of failed runs (crate::retry): how many since the last
    // StartMigrateJob, since when the current outage lasts, and the kind of the last error.
    "ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN retry_since INTEGER;
    ALTER TABLE jobs ADD COLUMN error_kind TEXT NOT NULL DEFAULT '';",
    // 5: leases (crate::store::leases): the node owning a job, until when, and the job's epoch;
    // the nodes of a cluster and the actions queued for a job's owner.
    "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE nodes (
        node_id TEXT PRIMARY KEY,
        heartbeat INTEGER NOT NULL,
        max_running INTEGER NOT NULL,
        draining INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE job_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        action TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX job_actions_job ON job_actions (job_id);",
    // 6: the process behind a node id (two processes started with one `--node-id` are refused).
    "ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';",
];

/// `store_meta` key: set once plain-text requests were encrypted and the file vacuumed.
const META_SCRUBBED: &str = "secrets_v1";
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The SQLite job store: one connection, used on the blocking pool.
#[derive(Clone)]
pub(crate) struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl Sqlite {
    /// Opens (creating) `DIR/ferry.db`, brings its schema up to date and checks the key.
    pub async fn open(data_dir: &Path, env_key: Option<String>) -> Result<(Sqlite, Cipher), ServiceError> {
        let dir = data_dir.to_path_buf();
        tokio::task::spawn_blocking(move || Sqlite::open_blocking(&dir, env_key.as_deref()))
            .await
            .map_err(|e| ServiceError::Thread(e.to_string()))?
    }

    fn open_blocking(dir: &Path, env_key: Option<&str>) -> Result<(Sqlite, Cipher), ServiceError> {
        let data_dir_err = |message: String| ServiceError::DataDir {
            path: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| data_dir_err(format!("cannot create it: {e}")))?;
        let path = dir.join("ferry.db");
        create_private_file(&path)
            .map_err(|e| data_dir_err(format!("cannot create ferry.db with mode 0600: {e}")))?;
        let mut conn = Connection::open(&path).map_err(ServiceError::store("opening ferry.db"))?;
        // One server per data directory: the connection takes an exclusive lock on ferry.db at
        // once and keeps it (the OS releases it when the process ends, however it ends).
        let in_use = |e: ServiceError| match &e {
            ServiceError::Store { source, .. }
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
                ) =>
            {
                data_dir_err(
                    "ferry.db is in use by another ferry serve: run one server per data directory".into(),
                )
            }
            _ => e,
        };
        conn.busy_timeout(std::time::Duration::from_secs(1))
            .map_err(ServiceError::store("setting the busy timeout"))?;
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")
            .map_err(ServiceError::store("setting the exclusive locking mode"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(ServiceError::store("switching to WAL"))
            .map_err(in_use)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(data_dir_err(format!(
                "ferry.db cannot use WAL (journal_mode is {mode}): put the data directory on a local file system"
            )));
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
             BEGIN EXCLUSIVE; COMMIT;",
        )
        .map_err(ServiceError::store("locking ferry.db"))
        .map_err(in_use)?;
        migrate(&mut conn).map_err(in_use)?;
        let cipher = Cipher::load(dir, env_key)?;
        secure_existing(&mut conn, &cipher)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(ServiceError::store("setting the busy timeout"))?;
        Ok((
            Sqlite {
                conn: Arc::new(Mutex::new(conn)),
                path,
            },
            cipher,
        ))
    }

    /// `DIR/ferry.db`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn with<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ServiceError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| ServiceError::Thread("the store lock was poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| ServiceError::Thread(e.to_string()))?
    }

    /// Runs one statement; the rows it changed (matched).
    pub async fn exec(&self, sql: &'static str, vals: Vec<P>) -> Result<u64, ServiceError> {
        self.with(move |c| {
            c.execute(sql, params_from_iter(vals))
                .map(|n| n as u64)
                .map_err(ServiceError::store("writing"))
        })
        .await
    }

    /// Runs one query; its rows as parameters.
    pub async fn query(&self, sql: &'static str, vals: Vec<P>) -> Result<Vec<Vec<P>>, ServiceError> {
        self.with(move |c| {
            let mut st = c.prepare_cached(sql).map_err(ServiceError::store("reading"))?;
            let n = st.column_count();
            let mut rows = st
                .query(params_from_iter(vals))
                .map_err(ServiceError::store("reading"))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(ServiceError::store("reading"))? {
                let mut row = Vec::with_capacity(n);
                for i in 0..n {
                    use rusqlite::types::ValueRef as V;
                    row.push(match r.get_ref(i).map_err(ServiceError::store("reading"))? {
                        V::Null => P::Null,
                        V::Integer(i) => P::Int(i),
                        V::Real(f) => P::Real(f),
                        V::Text(t) | V::Blob(t) => P::Text(String::from_utf8_lossy(t).into_owned()),
                    });
                }
                out.push(row);
            }
            Ok(out)
        })
        .await
    }

    /// Adds a job whose request is `sealed`. `false` when the JobId exists already.
    pub async fn insert_job(&self, job: JobRow, sealed: String) -> Result<bool, ServiceError> {
        let (sql, vals) = sql::insert_job(&job, sealed);
        let sql = sql.replacen("INSERT INTO", "INSERT OR IGNORE INTO", 1);
        self.with(move |c| {
            let n = c
                .execute(&sql, params_from_iter(vals))
                .map_err(ServiceError::store("adding a job"))?;
            Ok(n == 1)
        })
        .await
    }

    /// One job.
    pub async fn job(&self, job_id: &str, cipher: Arc<Cipher>) -> Result<Option<JobRow>, ServiceError> {
        let id = job_id.to_string();
        self.with(move |c| get_job(c, &id, &cipher)).await
    }

    /// Every job, oldest first.
    pub async fn jobs(&self, cipher: Arc<Cipher>) -> Result<Vec<JobRow>, ServiceError> {
        self.with(move |c| {
            let mut st = c
                .prepare("SELECT * FROM jobs ORDER BY seq")
                .map_err(ServiceError::store("listing jobs"))?;
            let mut rows = st.query([]).map_err(ServiceError::store("listing jobs"))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(ServiceError::store("reading a job"))? {
                out.push(sql::job_from_row(r, &cipher)?);
            }
            Ok(out)
        })
        .await
    }

    /// The conditional update of a job (see [`sql::update_job`]), read back in the same
    /// transaction.
    pub async fn update(
        &self,
        job_id: &str,
        expect: Option<&[JobStatus]>,
        patch: Patch,
        sealed: Option<String>,
        lease: Option<(&str, u64)>,
        cipher: Arc<Cipher>,
    ) -> Result<Update, ServiceError> {
        let id = job_id.to_string();
        let replaces_request = sealed.is_some();
        let (sql, vals) = sql::update_job(job_id, expect, patch, sealed, super::now(), lease);
        self.with(move |c| {
            let tx = c.transaction().map_err(ServiceError::store("updating a job"))?;
            let n = tx
                .execute(&sql, params_from_iter(vals))
                .map_err(ServiceError::store("updating a job"))?;
            let now = get_job(&tx, &id, &cipher)?;
            tx.commit().map_err(ServiceError::store("updating a job"))?;
            if replaces_request && n == 1 {
                // The replaced request (its passwords) leaves the WAL too.
                truncate_wal(c)?;
            }
            Ok(Update::of(n == 1, now))
        })
        .await
    }

    /// Deletes a job, its compare tasks and its lag series when its status is one of `expect`.
    pub async fn delete_job(
        &self,
        job_id: &str,
        expect: &[JobStatus],
        cipher: Arc<Cipher>,
    ) -> Result<Update, ServiceError> {
        let id = job_id.to_string();
        let (sql, vals) = sql::delete_job(job_id, expect);
        let expect: Vec<JobStatus> = expect.to_vec();
        self.with(move |c| {
            let tx = c.transaction().map_err(ServiceError::store("deleting a job"))?;
            let Some(job) = get_job(&tx, &id, &cipher)? else {
                return Ok(Update::Missing);
            };
            if !expect.contains(&job.status) {
                return Ok(Update::WrongStatus(job.status));
            }
            let n = tx
                .execute(&sql, params_from_iter(vals))
                .map_err(ServiceError::store("deleting a job"))?;
            for (table, what) in super::JOB_CHILD_TABLES {
                tx.execute(&format!("DELETE FROM {table} WHERE job_id = ?"), [&id])
                    .map_err(ServiceError::store(format!("deleting a job's {what}")))?;
            }
            tx.commit().map_err(ServiceError::store("deleting a job"))?;
            if n == 1 {
                // secure_delete zeroed the row in the database pages; its copies in the WAL go
                // with the checkpoint.
                truncate_wal(c)?;
            }
            Ok(Update::of(n == 1, Some(job)))
        })
        .await
    }

    /// Adds a compare task.
    pub async fn insert_compare(&self, row: CompareRow) -> Result<(), ServiceError> {
        let (sql, vals) = sql::insert_compare(row);
        self.with(move |c| {
            c.execute(&sql, params_from_iter(vals))
                .map_err(ServiceError::store("adding a compare task"))?;
            Ok(())
        })
        .await
    }

    /// The compare tasks of one job (`Some`) or of all, oldest first.
    pub async fn compares(&self, job_id: Option<&str>) -> Result<Vec<CompareRow>, ServiceError> {
        let id = job_id.map(str::to_string);
        self.with(move |c| {
            let (filter, vals) = match id {
                Some(id) => ("WHERE job_id = ?", vec![P::Text(id)]),
                None => ("", vec![]),
            };
            let mut st = c
                .prepare(&format!(
                    "SELECT * FROM compare_tasks {filter} ORDER BY created_at, rowid"
                ))
                .map_err(ServiceError::store("listing compare tasks"))?;
            let mut rows = st
                .query(params_from_iter(vals))
                .map_err(ServiceError::store("listing compare tasks"))?;
            let mut out = Vec::new();
            while let Some(r) = rows
                .next()
                .map_err(ServiceError::store("reading a compare task"))?
            {
                out.push(sql::compare_from_row(r)?);
            }
            Ok(out)
        })
        .await
    }

    /// The conditional update of a compare task. `false` when it is missing or in another
    /// status.
    pub async fn update_compare(
        &self,
        id: &str,
        expect: &[&str],
        change: CompareChange,
    ) -> Result<bool, ServiceError> {
        let (sql, vals) = sql::update_compare(id, expect, change);
        self.with(move |c| {
            let n = c
                .execute(&sql, params_from_iter(vals))
                .map_err(ServiceError::store("updating a compare task"))?;
            Ok(n == 1)
        })
        .await
    }

    /// Adds a sample to every tier of a job's lag series and prunes what is past a tier's
    /// retention.
    pub async fn series_append(&self, rows: Vec<super::SeriesRow>) -> Result<(), ServiceError> {
        self.with(move |c| {
            let tx = c
                .transaction()
                .map_err(ServiceError::store("appending to the lag series"))?;
            for r in rows {
                tx.execute(
                    "INSERT INTO lag_series (job_id, step, t, n, seconds_behind, bytes_behind, \
                     events_per_second, rows_per_second) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (job_id, step, t) DO UPDATE SET n = n + 1, \
                     seconds_behind = seconds_behind + excluded.seconds_behind, \
                     bytes_behind = bytes_behind + excluded.bytes_behind, \
                     events_per_second = events_per_second + excluded.events_per_second, \
                     rows_per_second = rows_per_second + excluded.rows_per_second",
                    params_from_iter(r.values()),
                )
                .map_err(ServiceError::store("appending to the lag series"))?;
                tx.execute(sql::SERIES_PRUNE, params_from_iter(r.prune()))
                    .map_err(ServiceError::store("pruning the lag series"))?;
            }
            tx.commit()
                .map_err(ServiceError::store("appending to the lag series"))
        })
        .await
    }

    /// The buckets of one tier of a job's lag series from `since` on: (t, n, the four sums).
    pub async fn series_read(&self, vals: Vec<P>) -> Result<Vec<super::SeriesBucket>, ServiceError> {
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(sql::SERIES_READ)
                .map_err(ServiceError::store("reading the lag series"))?;
            let rows = stmt
                .query_map(params_from_iter(vals), |r| {
                    Ok(super::SeriesBucket {
                        t: r.get(0)?,
                        n: r.get(1)?,
                        sums: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                    })
                })
                .map_err(ServiceError::store("reading the lag series"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(ServiceError::store("reading the lag series"))
        })
        .await
    }
}

fn get_job(c: &Connection, id: &str, cipher: &Cipher) -> Result<Option<JobRow>, ServiceError> {
    let mut st = c
        .prepare_cached("SELECT * FROM jobs WHERE job_id = ?")
        .map_err(ServiceError::store("reading a job"))?;
    let mut rows = st.query([id]).map_err(ServiceError::store("reading a job"))?;
    match rows.next().map_err(ServiceError::store("reading a job"))? {
        Some(r) => Ok(Some(sql::job_from_row(r, cipher)?)),
        None => Ok(None),
    }
}

/// Copies the WAL into ferry.db and truncates it to zero bytes.
fn truncate_wal(c: &Connection) -> Result<(), ServiceError> {
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(ServiceError::store("checkpointing the WAL"))
}

/// Checks the store key against the one the store was written with, encrypts requests stored
/// in plain text by earlier versions, and the first time scrubs the file of old plain text
/// (VACUUM, then an empty WAL).
fn secure_existing(conn: &mut Connection, cipher: &Cipher) -> Result<(), ServiceError> {
    let meta = |c: &Connection, key: &str| -> Result<Option<String>, ServiceError> {
        c.query_row("SELECT value FROM store_meta WHERE key = ?", [key], |r| r.get(0))
            .optional()
            .map_err(ServiceError::store("reading store_meta"))
    };
    match meta(conn, META_KEY_CHECK)? {
        Some(check) => {
            cipher.decrypt(&check, META_KEY_CHECK)?;
        }
        None => {
            let check = cipher.encrypt("ferry", META_KEY_CHECK)?;
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?)",
                params![META_KEY_CHECK, check],
            )
            .map_err(ServiceError::store("writing store_meta"))?;
        }
    }
    let tx = conn
        .transaction()
        .map_err(ServiceError::store("encrypting stored requests"))?;
    let plain: Vec<(String, String)> = {
        let mut st = tx
            .prepare("SELECT job_id, request FROM jobs WHERE substr(request, 1, ?) <> ?")
            .map_err(ServiceError::store("encrypting stored requests"))?;
        let prefix = crate::secrets::PREFIX;
        let rows = st
            .query_map(params![prefix.len() as i64, prefix], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(ServiceError::store("encrypting stored requests"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServiceError::store("encrypting stored requests"))?;
        rows
    };
    for (job_id, request) in &plain {
        let sealed = cipher.encrypt(request, job_id)?;
        tx.execute(
            "UPDATE jobs SET request = ? WHERE job_id = ?",
            params![sealed, job_id],
        )
        .map_err(ServiceError::store("encrypting stored requests"))?;
    }
    let scrubbed = meta(&tx, META_SCRUBBED)?.is_some();
    if !scrubbed {
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES (?, '1')",
            [META_SCRUBBED],
        )
        .map_err(ServiceError::store("writing store_meta"))?;
    }
    tx.commit()
        .map_err(ServiceError::store("encrypting stored requests"))?;
    if !plain.is_empty() || !scrubbed {
        if !plain.is_empty() {
            tracing::info!(
                jobs = plain.len(),
                "encrypted the stored requests of earlier versions"
            );
        }
        // Free pages and old WAL frames of earlier versions may hold plain-text passwords.
        conn.execute_batch("VACUUM")
            .map_err(ServiceError::store("vacuuming ferry.db"))?;
        truncate_wal(conn)?;
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), ServiceError> {
    let tx = conn
        .transaction()
        .map_err(ServiceError::store("migrating the schema"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(ServiceError::store("creating schema_version"))?;
    let current: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .map_err(ServiceError::store("reading schema_version"))?;
    let current = current.unwrap_or(0);
    if current > MIGRATIONS.len() as i64 {
        return Err(ServiceError::Corrupt(format!(
            "ferry.db has schema version {current}, newer than this ferry ({}): use a newer ferry",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(ServiceError::store(format!(
            "migrating to schema version {}",
            i + 1
        )))?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?)", [i as i64 + 1])
            .map_err(ServiceError::store("recording the schema version"))?;
    }
    tx.commit().map_err(ServiceError::store("migrating the schema"))?;
    Ok(())
}
