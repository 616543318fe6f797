//! The MySQL/MariaDB backend of the job store (`ferry serve --store mysql://USER@HOST:PORT/DB`),
//! the one several `ferry serve` nodes share: the same tables as the SQLite store (InnoDB,
//! utf8mb4), created and migrated at open ([`MIGRATIONS`], one entry per version, run under a
//! named lock so that nodes starting together migrate once), used through a small connection
//! pool (`CLIENT_FOUND_ROWS`, so that a conditional update that matched counts as applied even
//! when it changed no value).
//!
//! Every status change stays one `UPDATE … WHERE job_id = ? AND status IN (…)`, read back in the
//! same transaction. The database is created when absent (given the privilege); a server that
//! cannot be reached is a transient error, so a node waits for a restarting store server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, TxOpts};

use super::sql::{self, P};
use super::url::MysqlUrl;
use super::{CompareChange, CompareRow, JobRow, Patch, SeriesBucket, SeriesRow, Update, META_KEY_CHECK};
use crate::error::ServiceError;
use crate::secrets::Cipher;
use crate::status::JobStatus;

/// The schema, one entry (a list of statements) per version; a database at version N runs the
/// entries after N.
pub(super) const MIGRATIONS: &[&[&str]] = &[
    // 1: the tables of SQLite versions 1 to 4.
    &[
        "CREATE TABLE jobs (
            seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            job_id VARCHAR(128) NOT NULL,
            job_name TEXT NOT NULL,
            request LONGTEXT NOT NULL,
            status INT NOT NULL,
            create_time BIGINT NOT NULL,
            update_time BIGINT NOT NULL,
            start_time BIGINT NULL,
            end_time BIGINT NULL,
            error_message LONGTEXT NOT NULL,
            check_state LONGTEXT NOT NULL,
            detail LONGTEXT NOT NULL,
            paused VARCHAR(16) NOT NULL DEFAULT '',
            restart_next TINYINT NOT NULL DEFAULT 0,
            limits TEXT NOT NULL,
            retries BIGINT NOT NULL DEFAULT 0,
            retry_since BIGINT NULL,
            error_kind VARCHAR(16) NOT NULL DEFAULT '',
            UNIQUE KEY jobs_job_id (job_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE compare_tasks (
            compare_task_id VARCHAR(128) NOT NULL PRIMARY KEY,
            seq BIGINT NOT NULL AUTO_INCREMENT UNIQUE,
            job_id VARCHAR(128) NOT NULL,
            task_name TEXT NOT NULL,
            status VARCHAR(32) NOT NULL,
            config LONGTEXT NOT NULL,
            report LONGTEXT NULL,
            message LONGTEXT NOT NULL,
            created_at BIGINT NOT NULL,
            started_at BIGINT NULL,
            finished_at BIGINT NULL,
            KEY compare_tasks_job (job_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE store_meta (
            `key` VARCHAR(64) NOT NULL PRIMARY KEY,
            value TEXT NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE lag_series (
            job_id VARCHAR(128) NOT NULL,
            step BIGINT NOT NULL,
            t BIGINT NOT NULL,
            n BIGINT NOT NULL,
            seconds_behind DOUBLE NOT NULL,
            bytes_behind DOUBLE NOT NULL,
            events_per_second DOUBLE NOT NULL,
            rows_per_second DOUBLE NOT NULL,
            PRIMARY KEY (job_id, step, t)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    ],
    // 2: leases (as SQLite version 5).
    &[
        "ALTER TABLE jobs ADD COLUMN owner VARCHAR(255) NOT NULL DEFAULT '', \
         ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0, \
         ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0, ADD KEY jobs_owner (owner)",
        "CREATE TABLE nodes (
            node_id VARCHAR(255) NOT NULL PRIMARY KEY,
            heartbeat BIGINT NOT NULL,
            max_running BIGINT NOT NULL,
            draining TINYINT NOT NULL DEFAULT 0
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE job_actions (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            job_id VARCHAR(128) NOT NULL,
            action VARCHAR(255) NOT NULL,
            created_at BIGINT NOT NULL,
            KEY job_actions_job (job_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    ],
    // 3: the process behind a node id (as SQLite version 6).
    &["ALTER TABLE nodes ADD COLUMN instance VARCHAR(64) NOT NULL DEFAULT ''"],
];

/// Connections to the store server a node keeps at most.
const POOL_MAX: usize = 8;
/// How long a node waits for another one's migration (the named lock).
const MIGRATION_LOCK_SECONDS: i64 = 60;
/// ER_BAD_DB_ERROR: the database does not exist.
const ER_BAD_DB: u16 = 1049;
/// ER_DUP_ENTRY.
const ER_DUP_ENTRY: u16 = 1062;

/// The MySQL/MariaDB job store.
#[derive(Clone)]
pub(crate) struct Mysql {
    pool: Pool,
    /// `user@host:port/db`, safe to log.
    name: String,
    /// Statements sent to the store since the node started (`ferry_store_statements_total`).
    statements: Arc<AtomicU64>,
}

impl Mysql {
    /// Connects (creating the database when absent), migrates the schema and checks the key
    /// against the one the store was written with.
    pub async fn open(url: &MysqlUrl, cipher: &Cipher) -> Result<Mysql, ServiceError> {
        let ep = url.endpoint();
        ep.prepare_tls().await;
        let name = url.to_string();
        let opts = |db: Option<&str>| {
            let constraints = PoolConstraints::new(0, POOL_MAX).unwrap_or_default();
            OptsBuilder::from_opts(ep.opts(vec![
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".to_string(),
            ]))
            .db_name(db)
            .client_found_rows(true)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            )
        };
        let store = Mysql {
            pool: Pool::new(opts(Some(&url.database))),
            name: name.clone(),
            statements: Arc::new(AtomicU64::new(0)),
        };
        match store.conn().await {
            Ok(_) => {}
            Err(ServiceError::Server { source, .. })
                if ferry_core::retry::server_code(&source) == Some(ER_BAD_DB) =>
            {
                let bare = Mysql {
                    pool: Pool::new(opts(None)),
                    name: name.clone(),
                    statements: Arc::new(AtomicU64::new(0)),
                };
                let mut c = bare.conn().await?;
                c.query_drop(format!(
                    "CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4",
                    url.database
                ))
                .await
                .map_err(store.err(&format!(
                    "creating database {} (create it, or grant CREATE on it)",
                    url.database
                )))?;
                drop(c);
                let _ = bare.pool.disconnect().await;
                tracing::info!(store = %name, "created the job store's database");
            }
            Err(e) => return Err(e),
        }
        let mut c = store.conn().await?;
        let lock = lock_name(&url.database);
        let got: Option<i64> = c
            .exec_first("SELECT GET_LOCK(?, ?)", (lock.clone(), MIGRATION_LOCK_SECONDS))
            .await
            .map_err(store.err("locking the schema for its migration"))?;
        if got != Some(1) {
            return Err(ServiceError::Corrupt(format!(
                "{name}: another node has held the migration lock {lock} for {MIGRATION_LOCK_SECONDS} s; \
                 try again once it has started"
            )));
        }
        let migrated = store.migrate(&mut c).await;
        let checked = match migrated {
            Ok(()) => store.check_key(&mut c, cipher).await,
            Err(e) => Err(e),
        };
        let _ = c.exec_drop("SELECT RELEASE_LOCK(?)", (lock,)).await;
        checked?;
        Ok(store)
    }

    /// `user@host:port/db`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn err(&self, context: &str) -> impl FnOnce(mysql_async::Error) -> ServiceError {
        let (server, context) = (self.name.clone(), context.to_string());
        move |source| ServiceError::Server {
            server,
            context,
            source,
        }
    }

    /// A pooled connection, its handshake in a task of its own (a panic of the client library
    /// in the handshake ends that task only).
    pub(super) async fn conn(&self) -> Result<Conn, ServiceError> {
        let p = self.pool.clone();
        match tokio::spawn(async move { p.get_conn().await }).await {
            Ok(r) => r.map_err(self.err("connecting")),
            Err(e) => Err(ServiceError::Setting {
                setting: "store".into(),
                message: format!(
                    "the handshake with {} failed ({e}); connect with TLS (?tls=required)",
                    self.name
                ),
            }),
        }
    }

    async fn migrate(&self, c: &mut Conn) -> Result<(), ServiceError> {
        c.query_drop(
            "CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL PRIMARY KEY) ENGINE=InnoDB",
        )
        .await
        .map_err(self.err("creating schema_version"))?;
        let current: Option<i64> = c
            .query_first("SELECT MAX(version) FROM schema_version")
            .await
            .map_err(self.err("reading schema_version"))?
            .flatten();
        let current = current.unwrap_or(0);
        if current > MIGRATIONS.len() as i64 {
            return Err(ServiceError::Corrupt(format!(
                "{} has schema version {current}, newer than this ferry ({}): use a newer ferry",
                self.name,
                MIGRATIONS.len()
            )));
        }
        for (i, statements) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i + 1;
            // DDL commits at once in MySQL: each version is recorded right after its statements
            // (the named lock keeps other nodes out meanwhile).
            for s in *statements {
                c.query_drop(*s)
                    .await
                    .map_err(self.err(&format!("migrating to schema version {version}")))?;
            }
            c.exec_drop(
                "INSERT INTO schema_version (version) VALUES (?)",
                (version as i64,),
            )
            .await
            .map_err(self.err("recording the schema version"))?;
        }
        Ok(())
    }

    async fn check_key(&self, c: &mut Conn, cipher: &Cipher) -> Result<(), ServiceError> {
        let sealed = cipher.encrypt("ferry", META_KEY_CHECK)?;
        c.exec_drop(
            "INSERT IGNORE INTO store_meta (`key`, value) VALUES (?, ?)",
            (META_KEY_CHECK, sealed),
        )
        .await
        .map_err(self.err("writing store_meta"))?;
        let check: Option<String> = c
            .exec_first("SELECT value FROM store_meta WHERE `key` = ?", (META_KEY_CHECK,))
            .await
            .map_err(self.err("reading store_meta"))?;
        cipher.decrypt(&check.unwrap_or_default(), META_KEY_CHECK)?;
        Ok(())
    }

    async fn exec(
        &self,
        c: &mut impl Queryable,
        sql: &str,
        vals: Vec<P>,
        what: &str,
    ) -> Result<u64, ServiceError> {
        self.sent(1);
        let result = c.exec_iter(sql, params(vals)).await.map_err(self.err(what))?;
        let n = result.affected_rows();
        result.drop_result().await.map_err(self.err(what))?;
        Ok(n)
    }

    async fn rows(
        &self,
        c: &mut impl Queryable,
        sql: &str,
        vals: Vec<P>,
        what: &str,
    ) -> Result<Vec<mysql_async::Row>, ServiceError> {
        self.sent(1);
        c.exec(sql, params(vals)).await.map_err(self.err(what))
    }

    /// Counts `n` statements sent to the store.
    fn sent(&self, n: u64) {
        self.statements.fetch_add(n, Ordering::Relaxed);
    }

    /// Statements sent to the store since the node started: every query and update, and each
    /// transaction's `START TRANSACTION` and `COMMIT` (migrations at the start not counted).
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    async fn get_job(
        &self,
        c: &mut impl Queryable,
        id: &str,
        lock: bool,
        cipher: &Cipher,
    ) -> Result<Option<JobRow>, ServiceError> {
        let sql = if lock {
            "SELECT * FROM jobs WHERE job_id = ? FOR UPDATE"
        } else {
            "SELECT * FROM jobs WHERE job_id = ?"
        };
        let rows = self
            .rows(c, sql, vec![P::Text(id.into())], "reading a job")
            .await?;
        rows.first().map(|r| sql::job_from_row(r, cipher)).transpose()
    }

    /// Runs one statement; the rows it matched.
    pub async fn exec_one(&self, sql: &str, vals: Vec<P>) -> Result<u64, ServiceError> {
        let mut c = self.conn().await?;
        self.exec(&mut c, sql, vals, "writing").await
    }

    /// Runs one query; its rows as parameters.
    pub async fn query(&self, sql: &str, vals: Vec<P>) -> Result<Vec<Vec<P>>, ServiceError> {
        use mysql_async::Value as V;
        let mut c = self.conn().await?;
        let rows = self.rows(&mut c, sql, vals, "reading").await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        V::NULL => P::Null,
                        V::Int(i) => P::Int(i),
                        V::UInt(u) => P::Int(i64::try_from(u).unwrap_or(i64::MAX)),
                        V::Float(f) => P::Real(f64::from(f)),
                        V::Double(f) => P::Real(f),
                        V::Bytes(b) => P::Text(String::from_utf8_lossy(&b).into_owned()),
                        other => P::Text(other.as_sql(true)),
                    })
                    .collect()
            })
            .collect())
    }

    /// Adds a job whose request is `sealed`. `false` when the JobId exists already.
    pub async fn insert_job(&self, job: JobRow, sealed: String) -> Result<bool, ServiceError> {
        let (sql, vals) = sql::insert_job(&job, sealed);
        let mut c = self.conn().await?;
        self.sent(1);
        match c.exec_drop(sql, params(vals)).await {
            Ok(()) => Ok(true),
            Err(e) if ferry_core::retry::server_code(&e) == Some(ER_DUP_ENTRY) => Ok(false),
            Err(e) => Err(self.err("adding a job")(e)),
        }
    }

    /// One job.
    pub async fn job(&self, job_id: &str, cipher: &Cipher) -> Result<Option<JobRow>, ServiceError> {
        let mut c = self.conn().await?;
        self.get_job(&mut c, job_id, false, cipher).await
    }

    /// Every job, oldest first.
    pub async fn jobs(&self, cipher: &Cipher) -> Result<Vec<JobRow>, ServiceError> {
        let mut c = self.conn().await?;
        let rows = self
            .rows(&mut c, "SELECT * FROM jobs ORDER BY seq", vec![], "listing jobs")
            .await?;
        rows.iter().map(|r| sql::job_from_row(r, cipher)).collect()
    }

    /// The conditional update of a job, read back in the same transaction.
    pub async fn update(
        &self,
        job_id: &str,
        expect: Option<&[JobStatus]>,
        patch: Patch,
        sealed: Option<String>,
        lease: Option<(&str, u64)>,
        cipher: &Cipher,
    ) -> Result<Update, ServiceError> {
        let (sql, vals) = sql::update_job(job_id, expect, patch, sealed, super::now(), lease);
        let mut c = self.conn().await?;
        let mut tx = c
            .start_transaction(TxOpts::default())
            .await
            .map_err(self.err("updating a job"))?;
        let n = self.exec(&mut tx, &sql, vals, "updating a job").await?;
        let now = self.get_job(&mut tx, job_id, false, cipher).await?;
        self.sent(2);
        tx.commit().await.map_err(self.err("updating a job"))?;
        Ok(Update::of(n == 1, now))
    }

    /// Deletes a job, its compare tasks and its lag series when its status is one of `expect`.
    pub async fn delete_job(
        &self,
        job_id: &str,
        expect: &[JobStatus],
        cipher: &Cipher,
    ) -> Result<Update, ServiceError> {
        let (sql, vals) = sql::delete_job(job_id, expect);
        let mut c = self.conn().await?;
        let mut tx = c
            .start_transaction(TxOpts::default())
            .await
            .map_err(self.err("deleting a job"))?;
        let Some(job) = self.get_job(&mut tx, job_id, true, cipher).await? else {
            return Ok(Update::Missing);
        };
        if !expect.contains(&job.status) {
            return Ok(Update::WrongStatus(job.status));
        }
        let n = self.exec(&mut tx, &sql, vals, "deleting a job").await?;
        for (table, what) in super::JOB_CHILD_TABLES {
            self.exec(
                &mut tx,
                &format!("DELETE FROM {table} WHERE job_id = ?"),
                vec![P::Text(job_id.into())],
                &format!("deleting a job's {what}"),
            )
            .await?;
        }
        self.sent(2);
        tx.commit().await.map_err(self.err("deleting a job"))?;
        Ok(Update::of(n == 1, Some(job)))
    }

    /// Adds a compare task.
    pub async fn insert_compare(&self, row: CompareRow) -> Result<(), ServiceError> {
        let (sql, vals) = sql::insert_compare(row);
        let mut c = self.conn().await?;
        self.exec(&mut c, &sql, vals, "adding a compare task").await?;
        Ok(())
    }

    /// The compare tasks of one job (`Some`) or of all, oldest first.
    pub async fn compares(&self, job_id: Option<&str>) -> Result<Vec<CompareRow>, ServiceError> {
        let (filter, vals) = match job_id {
            Some(id) => ("WHERE job_id = ?", vec![P::Text(id.into())]),
            None => ("", vec![]),
        };
        let mut c = self.conn().await?;
        let rows = self
            .rows(
                &mut c,
                &format!("SELECT * FROM compare_tasks {filter} ORDER BY created_at, seq"),
                vals,
                "listing compare tasks",
            )
            .await?;
        rows.iter().map(|r| sql::compare_from_row(r)).collect()
    }

    /// The conditional update of a compare task.
    pub async fn update_compare(
        &self,
        id: &str,
        expect: &[&str],
        change: CompareChange,
    ) -> Result<bool, ServiceError> {
        let (sql, vals) = sql::update_compare(id, expect, change);
        let mut c = self.conn().await?;
        Ok(self.exec(&mut c, &sql, vals, "updating a compare task").await? == 1)
    }

    /// Adds a sample to every tier of a job's lag series and prunes each tier.
    pub async fn series_append(&self, rows: Vec<SeriesRow>) -> Result<(), ServiceError> {
        let mut c = self.conn().await?;
        let mut tx = c
            .start_transaction(TxOpts::default())
            .await
            .map_err(self.err("appending to the lag series"))?;
        for r in rows {
            self.exec(
                &mut tx,
                "INSERT INTO lag_series (job_id, step, t, n, seconds_behind, bytes_behind, \
                 events_per_second, rows_per_second) VALUES (?, ?, ?, 1, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE n = n + 1, \
                 seconds_behind = seconds_behind + VALUES(seconds_behind), \
                 bytes_behind = bytes_behind + VALUES(bytes_behind), \
                 events_per_second = events_per_second + VALUES(events_per_second), \
                 rows_per_second = rows_per_second + VALUES(rows_per_second)",
                r.values(),
                "appending to the lag series",
            )
            .await?;
            self.exec(&mut tx, sql::SERIES_PRUNE, r.prune(), "pruning the lag series")
                .await?;
        }
        self.sent(2);
        tx.commit().await.map_err(self.err("appending to the lag series"))
    }

    /// The buckets of one tier of a job's lag series.
    pub async fn series_read(&self, vals: Vec<P>) -> Result<Vec<SeriesBucket>, ServiceError> {
        let mut c = self.conn().await?;
        self.sent(1);
        let rows: Vec<(i64, i64, f64, f64, f64, f64)> = c
            .exec(sql::SERIES_READ, params(vals))
            .await
            .map_err(self.err("reading the lag series"))?;
        Ok(rows
            .into_iter()
            .map(|(t, n, a, b, e, r)| SeriesBucket {
                t,
                n: n.clamp(0, i64::from(u32::MAX)) as u32,
                sums: [a, b, e, r],
            })
            .collect())
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        let _ = self.pool.clone().disconnect().await;
    }
}

fn params(vals: Vec<P>) -> Params {
    if vals.is_empty() {
        Params::Empty
    } else {
        Params::Positional(vals.into_iter().map(Into::into).collect())
    }
}

/// The named lock of a store's migrations (at most 64 characters).
fn lock_name(db: &str) -> String {
    let mut n = format!("ferry_store.{db}");
    n.truncate(64);
    n
}
