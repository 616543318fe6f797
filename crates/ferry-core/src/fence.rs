//! Fencing through the target: the job's ownership epoch in `ferry_meta.job_epoch`, checked by
//! every checkpoint commit in the same transaction as the data it covers.
//!
//! A cluster of `ferry serve` nodes runs each job on one node at a time; each claim of a job
//! gives it a higher epoch. A node that lost its claim (frozen, partitioned) may still hold
//! open connections to the target. Fencing makes sure it cannot apply a single row after a
//! newer owner started:
//!
//! 1. At the start of a run with epoch `e`, [`Fence::claim`] records `e` as the job's epoch on
//!    the target when it is at least the stored one, and fails with [`CoreError::Fenced`]
//!    otherwise. The write takes the epoch row's exclusive lock, so it waits for any commit of
//!    an older owner that is checking the epoch at that moment (below), and every commit that
//!    checks after it sees `e`.
//! 2. Every checkpoint commit sends [`Fence::check_sql`] before its checkpoint write and
//!    `COMMIT`, **in the same round trip**: a locking read of the epoch row (`LOCK IN SHARE
//!    MODE`: commits of the same owner do not wait for each other, a newer owner's claim waits
//!    for them), then an `INSERT … SELECT` that copies the epoch row onto itself when the
//!    stored epoch is newer than this run's: a duplicate key (error 1062) that stops the
//!    multi-statement before `COMMIT`. The server runs the round trip without waiting for the
//!    client, so a node frozen at any point holds the epoch row's lock for no longer than one
//!    commit, and a node frozen before its commit round trip meets the newer epoch when it
//!    resumes. The check needs no extra privilege (no stored routine, no `SIGNAL`) and works in
//!    every `sql_mode` on MySQL and MariaDB.
//! 3. A commit that failed with a fence [`after_failed_commit`] is rolled back and, when the
//!    target's epoch is newer, reported as [`CoreError::Fenced`] (definite: retrying cannot
//!    help; the service never retries it).
//!
//! 4. **A frozen owner's sessions are closed.** Fencing stops a former owner from committing,
//!    but a node frozen (or cut off without a TCP reset) in the middle of a transaction keeps
//!    that transaction's row locks until it wakes or the server's `wait_timeout` closes its
//!    connection (hours by default), and the new owner's writes to those rows wait meanwhile.
//!    So every target connection of a fenced run that writes rows [`Fence::register`]s
//!    itself: it takes one of [`SESSION_SLOTS`] named server locks of the job (`GET_LOCK`,
//!    released by the server when the connection ends, whatever way it ends), and a claim
//!    ([`Fence::claim`]) closes (`KILL CONNECTION`) every session that still holds one of them:
//!    a session of an older owner, since the claim runs before this run registers any. The
//!    lock names identify the sessions exactly (`IS_USED_LOCK` names the holder's connection
//!    id; a connection id reused after a server restart holds no lock), and `KILL` of a
//!    session of the same account needs no privilege. Both are best-effort: a failure is
//!    logged and the fencing above still holds; a run with more than [`SESSION_SLOTS`]
//!    writing connections leaves the rest unregistered.
//!
//! Without an epoch (one process owns the job, `None` everywhere) nothing is read or written
//! and no statement is added.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use tracing::{info, warn};

use crate::error::{CoreError, MysqlResultExt};
use crate::selection::META_SCHEMA;
use crate::sql::{quote_ident, quote_str};

/// Named server locks a job's writing sessions take ([module docs](self), point 4).
pub const SESSION_SLOTS: usize = 64;

/// A job's ownership epoch, as this run holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    job: String,
    epoch: u64,
}

fn table() -> String {
    format!("{}.{}", quote_ident(META_SCHEMA), quote_ident("job_epoch"))
}

impl Fence {
    /// The fence of `job` at `epoch`.
    pub fn new(job: impl Into<String>, epoch: u64) -> Self {
        Fence {
            job: job.into(),
            epoch,
        }
    }

    /// The fence of a run with an optional epoch (`None`: no fencing).
    pub fn of(job: &str, epoch: Option<u64>) -> Option<Fence> {
        epoch.map(|e| Fence::new(job, e))
    }

    /// This run's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The job.
    pub fn job(&self) -> &str {
        &self.job
    }

    fn refusal(&self, stored: u64) -> CoreError {
        CoreError::Fenced {
            job: self.job.clone(),
            mine: self.epoch,
            stored,
        }
    }

    /// Records this run's epoch as the job's on the target (`ferry_meta` must exist:
    /// [`crate::meta::ensure`]); fails with [`CoreError::Fenced`] when the target already
    /// has a newer one. Waits for a commit of an older owner under way (its epoch check holds
    /// the row's shared lock for that one round trip), then closes the older owner's sessions
    /// still open ([`Self::close_older_sessions`]).
    pub async fn claim(&self, conn: &mut Conn) -> Result<(), CoreError> {
        conn.exec_drop(
            format!(
                "INSERT INTO {} (job, epoch, claimed_at) VALUES (?, ?, NOW(6)) \
                 ON DUPLICATE KEY UPDATE claimed_at = IF(epoch <= ?, NOW(6), claimed_at), \
                 epoch = GREATEST(epoch, ?)",
                table()
            ),
            (&self.job, self.epoch, self.epoch, self.epoch),
        )
        .await
        .ctx(|| format!("recording the epoch of job {} in ferry_meta.job_epoch", self.job))?;
        match self.stored(conn).await? {
            Some(s) if s > self.epoch => Err(self.refusal(s)),
            _ => {
                // The sessions still registered belong to an older owner: this run registers
                // its own after the claim.
                self.close_older_sessions(conn).await;
                Ok(())
            }
        }
    }

    /// The name of the job's session lock `slot`: `ferry-fence:` and a stable 64-bit hash of the
    /// job name (lock names are limited to 64 characters; job names are longer).
    fn slot_lock(&self, slot: usize) -> String {
        // FNV-1a: stable across processes, builds and versions (the lock is shared by nodes).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.job.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("ferry-fence:{h:016x}:{slot}")
    }

    /// One `SELECT` of `f(lock)` for every session slot of the job.
    fn slots_sql(&self, f: &str) -> String {
        let cols: Vec<String> = (0..SESSION_SLOTS)
            .map(|i| format!("{f}({})", quote_str(&self.slot_lock(i))))
            .collect();
        format!("SELECT {}", cols.join(", "))
    }

    /// Registers `conn` as a writing session of this run: it takes a free session lock of the
    /// job, so that a later owner's claim can close it ([module docs](self), point 4).
    /// Best-effort: a failure is logged, never returned.
    pub async fn register(&self, conn: &mut Conn) {
        if let Err(e) = self.try_register(conn).await {
            warn!(job = %self.job, error = %e, "could not register a target session for fencing");
        }
    }

    async fn try_register(&self, conn: &mut Conn) -> Result<(), CoreError> {
        let what = || format!("registering a target session of job {}", self.job);
        // A slot seen free may be taken by another connection before this one asks: look again.
        for _ in 0..4 {
            let row: Option<Row> = conn.query_first(self.slots_sql("IS_FREE_LOCK")).await.ctx(what)?;
            let Some(row) = row else { return Ok(()) };
            let free = (0..SESSION_SLOTS).find(|&i| row.get::<Option<u8>, _>(i).flatten() == Some(1));
            let Some(slot) = free else {
                warn!(job = %self.job, slots = SESSION_SLOTS, "every session slot of the job is taken: this target session is not registered for fencing");
                return Ok(());
            };
            let got: Option<Option<u8>> = conn
                .query_first(format!(
                    "SELECT GET_LOCK({}, 0)",
                    quote_str(&self.slot_lock(slot))
                ))
                .await
                .ctx(what)?;
            if got.flatten() == Some(1) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Closes every session registered for the job on the target except `conn`'s own
    /// ([module docs](self), point 4); returns their connection ids. Best-effort: a failure is
    /// logged (the fencing still holds; only the row locks of a frozen session stay).
    pub async fn close_older_sessions(&self, conn: &mut Conn) -> Vec<u64> {
        let mine = u64::from(conn.id());
        let held: Option<Row> = match conn.query_first(self.slots_sql("IS_USED_LOCK")).await {
            Ok(r) => r,
            Err(e) => {
                warn!(job = %self.job, error = %e, "could not look for the sessions of an older owner");
                return Vec::new();
            }
        };
        let ids: Vec<u64> = held
            .map(|row| {
                (0..SESSION_SLOTS)
                    .filter_map(|i| row.get::<Option<u64>, _>(i).flatten())
                    .filter(|&id| id != mine)
                    .collect()
            })
            .unwrap_or_default();
        let mut closed = Vec::new();
        for id in ids {
            match conn.query_drop(format!("KILL CONNECTION {id}")).await {
                Ok(()) => closed.push(id),
                // 1094: the session ended meanwhile.
                Err(mysql_async::Error::Server(e)) if e.code == 1094 => {}
                Err(e) => {
                    warn!(job = %self.job, connection = id, error = %e, "could not close a session of an older owner")
                }
            }
        }
        if !closed.is_empty() {
            info!(job = %self.job, epoch = self.epoch, sessions = ?closed, "closed the target sessions of an older owner");
        }
        closed
    }

    /// The epoch stored on the target, if any.
    pub async fn stored(&self, conn: &mut Conn) -> Result<Option<u64>, CoreError> {
        conn.exec_first(
            format!("SELECT epoch FROM {} WHERE job = ?", table()),
            (&self.job,),
        )
        .await
        .ctx(|| format!("reading the epoch of job {} in ferry_meta.job_epoch", self.job))
    }

    /// Fails with [`CoreError::Fenced`] when the target has a newer epoch: a check on its own,
    /// before a statement that cannot carry it (a DDL commits by itself). A locking read, so
    /// inside an open transaction it reads the newest epoch, not the transaction's snapshot.
    pub async fn check(&self, conn: &mut Conn) -> Result<(), CoreError> {
        let stored: Option<u64> = conn
            .exec_first(
                format!("SELECT epoch FROM {} WHERE job = ? LOCK IN SHARE MODE", table()),
                (&self.job,),
            )
            .await
            .ctx(|| format!("checking the epoch of job {} in ferry_meta.job_epoch", self.job))?;
        match stored {
            Some(s) if s > self.epoch => Err(self.refusal(s)),
            _ => Ok(()),
        }
    }

    /// The statements, each ending with `; `, that a checkpoint commit sends inside its open
    /// transaction before its checkpoint write and `COMMIT`, in the same round trip: they lock
    /// the epoch row (shared) and fail with a duplicate key (1062) when a newer epoch is stored,
    /// which stops the round trip before `COMMIT`.
    pub fn check_sql(&self) -> String {
        let (t, j) = (table(), quote_str(&self.job));
        format!(
            "SELECT epoch FROM {t} WHERE job = {j} LOCK IN SHARE MODE; \
             INSERT INTO {t} (job, epoch, claimed_at) SELECT job, epoch, claimed_at FROM {t} \
             WHERE job = {j} AND epoch > {}; ",
            self.epoch
        )
    }
}

/// [`Fence::check_sql`] of an optional fence (empty without one).
pub fn check_sql(fence: Option<&Fence>) -> String {
    fence.map(Fence::check_sql).unwrap_or_default()
}

/// After a checkpoint commit round trip failed: with a fence, rolls the open transaction back
/// and returns [`CoreError::Fenced`] when the target's epoch is newer than the run's (the
/// caller reports its own error otherwise, as it does without a fence, where nothing is sent).
pub async fn after_failed_commit(fence: Option<&Fence>, conn: &mut Conn) -> Option<CoreError> {
    let f = fence?;
    let _ = conn.query_drop("ROLLBACK").await;
    match f.stored(conn).await {
        Ok(Some(s)) if s > f.epoch => Some(f.refusal(s)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fence_adds_nothing() {
        assert_eq!(check_sql(None), "");
        assert!(Fence::of("j", None).is_none());
    }

    #[test]
    fn the_check_locks_then_fails_by_duplicate_before_commit() {
        let f = Fence::new("it's", 7);
        let s = check_sql(Some(&f));
        let lock = s.find("LOCK IN SHARE MODE").unwrap();
        let dup = s.find("INSERT INTO `ferry_meta`.`job_epoch`").unwrap();
        assert!(lock < dup, "{s}");
        assert!(s.contains("WHERE job = 'it''s' AND epoch > 7; "), "{s}");
        assert!(s.ends_with("; "));
    }

    #[test]
    fn session_locks_are_short_stable_and_per_job() {
        let f = Fence::new("a-job-name-much-longer-than-a-lock-name-may-be-".repeat(4), 3);
        let name = f.slot_lock(SESSION_SLOTS - 1);
        assert!(name.len() <= 64, "{name}");
        assert_eq!(
            name,
            Fence::new(f.job().to_string(), 9).slot_lock(SESSION_SLOTS - 1)
        );
        assert_ne!(name, Fence::new("other", 3).slot_lock(SESSION_SLOTS - 1));
        assert_eq!(
            Fence::new("orders", 1).slot_lock(0),
            "ferry-fence:00125d9250be8b4c:0"
        );
        let sql = f.slots_sql("IS_USED_LOCK");
        assert_eq!(sql.matches("IS_USED_LOCK('ferry-fence:").count(), SESSION_SLOTS);
    }

    #[test]
    fn the_refusal_names_both_epochs_and_is_definite() {
        let e = Fence::new("orders", 1).refusal(2);
        assert_eq!(
            e.to_string(),
            "job orders: this node's claim (epoch 1) is older than the target's (epoch 2): another node owns the job"
        );
        assert_eq!(e.kind(), crate::ErrorKind::Definite);
    }
}
