//! Replaying the row events of MariaDB system-versioned tables (`WITH SYSTEM VERSIONING`)
//! so that the target ends with the source's versions, `row_start`/`row_end` included.
//!
//! What MariaDB logs (10.11, checked on the real server): an INSERT logs the current row
//! (`row_end` at its maximum); an UPDATE logs an update of the current row (its new
//! `row_start` = the statement's time) followed by an insert of the history row (the old
//! values, `row_end` = that time); a DELETE logs an update of the current row's `row_end`.
//! `DELETE HISTORY` logs deletes of history rows.
//!
//! SQL cannot rewrite a version's period columns, nor remove a current row without leaving a
//! history row, so the target repeats what the source did, at the source's time (session
//! `timestamp`, time zone UTC, `system_versioning_insert_history = 1`):
//! - an update of a current row: `SET timestamp` to the after image's `row_start`, then
//!   `UPDATE … SET <the other columns>`: the target closes the old version at that time, as the
//!   source did, and writes the same history row;
//! - an update that closes the current row (a DELETE on the source): `SET timestamp` to the
//!   after image's `row_end`, then `DELETE`;
//! - an insert of a current row: `INSERT` with the period columns given; an insert of a history
//!   row: `INSERT IGNORE` with them (the history row an update logs is the one the target's
//!   update has just written; one a session inserted with `system_versioning_insert_history`
//!   is new).
//! - a delete of a row (a history row by `DELETE HISTORY`, or a current row MariaDB removed
//!   outright) is refused by name ([`check`]): SQL cannot remove one given version.
//!
//! Such changes are serial points (the coordinator applies them statement by statement). Inside
//! the idempotent window of a resumed or lock-free load (chunks read at different positions)
//! they are refused by name: the target may hold a later version of the row, which MariaDB will
//! not close at an earlier time (the UPDATE fails on the current row's key), and skipping the
//! change leaves the versions wrong (tried: `run_versioned.rs` found the differences). The job
//! is then run again from the start, its load uninterrupted.

use ferry_core::value::write_sql_literal;
use ferry_core::versioning::{is_current, SystemTime};
use ferry_core::ColumnKind;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::rowapply::{apply_err, server_code, Change, RowApplier};
use super::rowsql::{self, InsertVerb};
use super::schema_cache::TableInfo;
use super::ConflictPolicy;
use crate::error::ReplayError;
use crate::event::RowsKind;

const INSERT_HISTORY_ON: &str = "SET SESSION system_versioning_insert_history = 1";
const TIMESTAMP_DEFAULT: &str = "SET SESSION timestamp = DEFAULT";

/// Refuses, by name, a change of a versioned table that cannot be applied exactly.
pub(crate) fn check(c: &Change) -> Result<(), ReplayError> {
    let Some(st) = c.info.schema.system_time else {
        return Ok(());
    };
    let refuse = |why: String| ReplayError::Unsupported {
        what: format!(
            "{} is system-versioned (WITH SYSTEM VERSIONING) and {why}",
            c.info.target_name
        ),
        position: c.pos.to_string(),
    };
    if st.transaction_precise {
        return Err(refuse(
            "transaction-precise: its row_start/row_end are the source's InnoDB transaction ids, which \
             the target cannot take; leave the table out of the job"
                .into(),
        ));
    }
    if c.partial() {
        return Err(refuse(
            "the source logged a partial row image (binlog_row_image MINIMAL/NOBLOB): the versions \
             need whole images; set binlog_row_image=FULL on the source"
                .into(),
        ));
    }
    if c.kind == RowsKind::Delete {
        return Err(refuse(
            "the source removed versions outright (DELETE HISTORY, or a row MariaDB deleted without \
             keeping history): SQL cannot remove one given version on the target; run the same \
             statement on the target, then start a new job for the table"
                .into(),
        ));
    }
    if c.kind == RowsKind::Update {
        let history = c
            .pairs
            .iter()
            .filter_map(|(b, _)| b.as_ref())
            .any(|b| !is_current(b.get(st.row_end).unwrap_or(&Value::NULL)));
        if history {
            return Err(refuse(
                "the source rewrote a history row: SQL cannot rewrite one given version on the target".into(),
            ));
        }
    }
    Ok(())
}

/// Checks, once per table, that the target can take the table's versions (see
/// [`ferry_core::versioning::target_refusal`]).
pub(crate) async fn check_target(conn: &mut Conn, t: &TableInfo) -> Result<(), ReplayError> {
    if t.schema.system_time.is_none() {
        return Ok(());
    }
    match ferry_core::versioning::target_refusal(conn).await {
        None => Ok(()),
        Some(reason) => Err(ReplayError::Unsupported {
            what: format!(
                "{} is system-versioned (WITH SYSTEM VERSIONING) and {reason}",
                t.target_name
            ),
            position: "-".into(),
        }),
    }
}

/// `SET timestamp` to a TIMESTAMP value, exactly: the server keeps the timestamp as a double
/// and truncates it to microseconds, so half a microsecond is added.
fn set_timestamp(v: &Value) -> Vec<u8> {
    let mut out = b"SET SESSION timestamp = UNIX_TIMESTAMP(".to_vec();
    write_sql_literal(&mut out, ColumnKind::Timestamp, v);
    out.extend_from_slice(b") + 0.0000005");
    out
}

/// `UPDATE … SET <every stored column but the period's> WHERE <before key>`.
fn update_values(t: &TableInfo, st: &SystemTime, b: &[Value], a: &[Value]) -> Vec<u8> {
    let present: Vec<bool> = (0..t.schema.columns.len())
        .map(|i| i != st.row_start && i != st.row_end)
        .collect();
    rowsql::update_statement_present(t, b, a, Some(&present))
}

fn conflict(c: &Change, row: &[Value], message: &str) -> ReplayError {
    ReplayError::Conflict {
        table: c.info.target_name.clone(),
        key: rowsql::describe_key(&c.info, row),
        position: c.pos.to_string(),
        message: message.to_string(),
    }
}

/// Runs a statement; a duplicate key is `Ok(Err(_))`.
async fn run(
    dst: &mut Conn,
    sql: &[u8],
    what: &str,
    c: &Change,
) -> Result<Result<u64, mysql_async::Error>, ReplayError> {
    match dst.query_drop(sql).await {
        Ok(()) => Ok(Ok(dst.affected_rows())),
        Err(e) if server_code(&e) == Some(1062) => Ok(Err(e)),
        Err(e) => Err(apply_err(what, &c.pos, e)),
    }
}

/// Runs `sql` at the session time `at` (then back to the clock).
async fn run_at(dst: &mut Conn, at: &Value, sql: &[u8], what: &str, c: &Change) -> Result<u64, ReplayError> {
    dst.query_drop(set_timestamp(at))
        .await
        .map_err(|e| apply_err(what, &c.pos, e))?;
    let r = run(dst, sql, what, c).await;
    dst.query_drop(TIMESTAMP_DEFAULT)
        .await
        .map_err(|e| apply_err(what, &c.pos, e))?;
    r?.map_err(|e| apply_err(what, &c.pos, e))
}

impl RowApplier {
    /// Applies a change of a versioned table (see the module docs) under the conflict policy:
    /// a missing row is a conflict under Stop and skipped otherwise (and inside the idempotent
    /// window); a current row that exists already is a conflict under Stop, skipped under
    /// Ignore, and set to the logged image otherwise.
    pub(crate) async fn apply_versioned(
        &mut self,
        dst: &mut Conn,
        c: &Change,
        idem: bool,
    ) -> Result<(), ReplayError> {
        let t: &TableInfo = &c.info;
        let Some(st) = t.schema.system_time else {
            return Ok(());
        };
        if idem {
            return Err(ReplayError::Unsupported {
                what: format!(
                    "{} is system-versioned and changed between the positions the full load read its \
                     chunks at (the load was resumed while the source changed, or ran lock-free): its \
                     versions cannot be re-applied idempotently; run the job again from the start \
                     (ferry run --restart) with Ferry.SnapshotMode lock and let the load finish",
                    t.target_name
                ),
                position: c.pos.to_string(),
            });
        }
        let lenient = self.conflict != ConflictPolicy::Stop;
        let what = format!("{:?} of the versioned table {}", c.kind, t.target_name).to_lowercase();
        dst.query_drop(INSERT_HISTORY_ON)
            .await
            .map_err(|e| apply_err(&what, &c.pos, e))?;
        let null = Value::NULL;
        for (b, a) in &c.pairs {
            let Some(a) = a else { continue };
            let (start, end) = (
                a.get(st.row_start).unwrap_or(&null),
                a.get(st.row_end).unwrap_or(&null),
            );
            match (c.kind, b) {
                (RowsKind::Update, Some(b)) => {
                    let (at, sql) = if is_current(end) {
                        (start, update_values(t, &st, b, a))
                    } else {
                        (end, rowsql::delete_statement(t, b))
                    };
                    if run_at(dst, at, &sql, &what, c).await? == 0 {
                        if !lenient {
                            return Err(conflict(
                                c,
                                b,
                                "change of a version that does not exist on the target",
                            ));
                        }
                        self.skipped += 1;
                    }
                }
                (RowsKind::Insert, _) if !is_current(end) => {
                    for s in rowsql::insert_statements(t, InsertVerb::InsertIgnore, &[a]) {
                        run(dst, &s, &what, c)
                            .await?
                            .map_err(|e| apply_err(&what, &c.pos, e))?;
                    }
                }
                (RowsKind::Insert, _) => {
                    for s in rowsql::insert_statements(t, InsertVerb::Insert, &[a]) {
                        if run(dst, &s, &what, c).await?.is_ok() {
                            continue;
                        }
                        match (self.conflict, idem) {
                            (ConflictPolicy::Ignore, false) => self.skipped += 1,
                            (ConflictPolicy::Stop, false) => {
                                return Err(conflict(
                                    c,
                                    a,
                                    "insert of a row whose current version exists on the target",
                                ))
                            }
                            _ => {
                                // the target holds a later version: set it to this one, at its time
                                run_at(dst, start, &update_values(t, &st, a, a), &what, c).await?;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
