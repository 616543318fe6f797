//! Session settings of the loader's connections, in one place.
//!
//! - **Readers** (source, inside the snapshot): REPEATABLE READ, UTC, raw bytes for strings
//!   (`character_set_results = binary`; the client and connection charsets stay utf8mb4, so key
//!   bounds sent as parameters are read as utf8mb4 text), and a long `net_write_timeout` because a
//!   throttled reader may leave a result set unread for a while.
//! - **Planner** (source, no snapshot): UTC and utf8mb4 results, so string key bounds come back as
//!   text the server converts back to the column's charset when they are sent as parameters.
//! - **Writers** (target): UTC, no FK or unique checks, and the sql_mode mysqldump restores with
//!   (not strict: strict mode rejects the ENUM error value `''`, index 0, that a source may hold);
//!   instead every warning the target reports is inspected and any change of a value fails the
//!   chunk (see `writer::check_warnings`). `ALLOW_INVALID_DATES` keeps dates such as `2024-02-30`
//!   that a source running with it holds. A long `net_read_timeout` covers throttled LOAD streams.
//!   With `target_binlog = false` the writers also set `sql_log_bin = 0` (needs
//!   SYSTEM_VARIABLES_ADMIN / SESSION_VARIABLES_ADMIN on MySQL 8, BINLOG ADMIN or SUPER on
//!   MariaDB): the rows do not go to the target's binary log. When the job copies
//!   system-versioned tables they set `system_versioning_insert_history = 1`, so that the
//!   period columns (`row_start`/`row_end`) of every version are written as read.

/// Setup of a snapshot reader connection.
pub fn reader() -> Vec<String> {
    vec![
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".into(),
        "SET time_zone = '+00:00', character_set_results = binary, \
         SESSION net_write_timeout = 7200, SESSION wait_timeout = 28800"
            .into(),
    ]
}

/// Setup of the chunk planner's connection and of control connections.
pub fn plain() -> Vec<String> {
    vec!["SET time_zone = '+00:00'".into()]
}

/// Setup of a target writer connection; `target_binlog = false` keeps its writes out of the
/// target's binary log, `insert_history` lets it write the period columns of versioned tables.
pub fn writer(target_binlog: bool, insert_history: bool) -> Vec<String> {
    let mut setup = vec![
        "SET time_zone = '+00:00', foreign_key_checks = 0, unique_checks = 0, \
         sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES', \
         SESSION net_read_timeout = 7200, SESSION wait_timeout = 28800"
            .to_string(),
    ];
    if !target_binlog {
        setup.push("SET SESSION sql_log_bin = 0".into());
    }
    if insert_history {
        setup.push(format!(
            "SET SESSION {} = 1",
            ferry_core::versioning::INSERT_HISTORY
        ));
    }
    setup
}
