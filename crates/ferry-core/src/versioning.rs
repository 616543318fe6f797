//! MariaDB system-versioned tables (`WITH SYSTEM VERSIONING`): which columns hold the period
//! of a row version, and the facts every engine needs to move such a table exactly.
//!
//! A versioned table keeps every version of a row: the current one (`row_end` at its maximum)
//! and the history (closed periods). The period columns are either declared
//! (`GENERATED ALWAYS AS ROW START/END`, listed by `information_schema.COLUMNS` with
//! `GENERATION_EXPRESSION` `ROW START`/`ROW END`) or implicit: invisible `row_start`/`row_end`
//! that `information_schema` does not list at all and that the server stores, and logs in row
//! events, after the declared columns. MariaDB appends `row_end` to every unique key.
//!
//! Ferry copies the versions as rows: read with `FOR SYSTEM_TIME ALL`, written with the period
//! columns given explicitly under `system_versioning_insert_history = 1` (MariaDB 10.11+), and
//! addressed by their key plus `row_end`. Transaction-precise versioning (`BIGINT UNSIGNED`
//! period columns holding InnoDB transaction ids) cannot be copied: the ids are the source's.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use serde::{Deserialize, Serialize};

use crate::sql::qualified;

/// The period columns of a system-versioned table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemTime {
    /// Index of the `ROW START` column.
    pub row_start: usize,
    /// Index of the `ROW END` column.
    pub row_end: usize,
    /// True when the columns are MariaDB's implicit, invisible `row_start`/`row_end`.
    pub implicit: bool,
    /// True for transaction-precise versioning (`BIGINT UNSIGNED … AS ROW START`): the values
    /// are the source's InnoDB transaction ids, which no target can take.
    pub transaction_precise: bool,
}

/// The server variable that lets a session write the period columns (MariaDB 10.11+).
pub const INSERT_HISTORY: &str = "system_versioning_insert_history";

/// `db`.`table`, followed by `FOR SYSTEM_TIME ALL` for a versioned table: the `FROM` clause
/// that reads every version of its rows.
pub fn from_all(db: &str, table: &str, versioned: bool) -> String {
    if versioned {
        format!("{} FOR SYSTEM_TIME ALL", qualified(db, table))
    } else {
        qualified(db, table)
    }
}

/// True when a `row_end` value marks the current version: the largest TIMESTAMP(6)
/// (`2038-01-19 03:14:07.999999` UTC, and `2106-02-07 06:28:15.999999` from MariaDB 11.5 on).
pub fn is_current(row_end: &Value) -> bool {
    matches!(
        row_end,
        Value::Date(2038, 1, 19, 3, 14, 7, 999_999) | Value::Date(2106, 2, 7, 6, 28, 15, 999_999)
    )
}

/// Why a target cannot hold versioned tables exactly, `None` when it can: the session must be
/// able to write the period columns (`system_versioning_insert_history`, MariaDB 10.11+) and to
/// set its `timestamp` (refused under `secure_timestamp`), which the replay uses to remove a
/// version without leaving history. Leaves the session as it found it.
pub async fn target_refusal(conn: &mut Conn) -> Option<String> {
    let probe = format!("SET SESSION {INSERT_HISTORY} = 1, SESSION timestamp = 1");
    let reason = match conn.query_drop(probe.as_str()).await {
        Ok(()) => None,
        Err(mysql_async::Error::Server(e)) if e.code == 1193 => Some(format!(
            "the target has no {INSERT_HISTORY} (MariaDB 10.11 or later is needed to write the \
             row_start/row_end of copied versions)"
        )),
        Err(mysql_async::Error::Server(e)) => Some(format!(
            "the target refuses `{probe}` ({} {}): Ferry writes the copied versions' \
             row_start/row_end and sets the session timestamp; allow it (secure_timestamp = NO)",
            e.code, e.message
        )),
        Err(e) => Some(format!("probing {INSERT_HISTORY} on the target failed: {e}")),
    };
    let _ = conn
        .query_drop(format!(
            "SET SESSION {INSERT_HISTORY} = DEFAULT, SESSION timestamp = DEFAULT"
        ))
        .await;
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_rows_end_at_the_largest_timestamp() {
        assert!(is_current(&Value::Date(2038, 1, 19, 3, 14, 7, 999_999)));
        assert!(is_current(&Value::Date(2106, 2, 7, 6, 28, 15, 999_999)));
        assert!(!is_current(&Value::Date(2038, 1, 19, 3, 14, 7, 999_998)));
        assert!(!is_current(&Value::NULL));
    }

    #[test]
    fn versioned_tables_are_read_with_every_version() {
        assert_eq!(from_all("d", "t", false), "`d`.`t`");
        assert_eq!(from_all("d", "t", true), "`d`.`t` FOR SYSTEM_TIME ALL");
    }
}
