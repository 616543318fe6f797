//! Runs planned DDL on the target, one statement per object, and reports each created object.
//!
//! Session while applying: `SET NAMES utf8mb4`, `foreign_key_checks=0`,
//! `sql_mode='NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'` (source DDL may carry zero dates),
//! and per object the source's `sql_mode` / `time_zone` where the object keeps them (routines,
//! triggers, events). The caller's session settings are restored afterwards.
//!
//! Re-running is safe: databases use IF NOT EXISTS, views CREATE OR REPLACE, and functions,
//! procedures, triggers and events are dropped (IF EXISTS) before they are created; an index set
//! or foreign key set that already exists (server error 1061 / 1826) is skipped.

use ferry_core::progress::{ProgressEvent, ProgressSink};
use ferry_core::sql::quote_ident;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{short_sql, SchemaError};
use crate::{Ddl, ObjectKind};

/// The session sql_mode for plain DDL.
const APPLY_SQL_MODE: &str = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION";

/// ER_DUP_KEYNAME, ER_FK_DUP_NAME.
const ALREADY_DONE: &[(ObjectKind, u16)] = &[(ObjectKind::Index, 1061), (ObjectKind::ForeignKey, 1826)];

/// Applies the statements in order. An error names the object, the statement (shortened) and
/// carries the server's message.
pub async fn apply(target: &mut Conn, stmts: &[Ddl], progress: &ProgressSink) -> Result<(), SchemaError> {
    if stmts.is_empty() {
        return Ok(());
    }
    let saved: Option<(String, i64, String)> = target
        .query_first("SELECT @@SESSION.sql_mode, @@SESSION.foreign_key_checks, @@SESSION.time_zone")
        .await
        .map_err(|e| SchemaError::target("reading session settings", e))?;
    target
        .query_drop(format!(
            "SET NAMES utf8mb4; SET SESSION foreign_key_checks = 0, SESSION sql_mode = '{APPLY_SQL_MODE}'"
        ))
        .await
        .map_err(|e| SchemaError::target("preparing the session", e))?;
    let result = run(target, stmts, progress).await;
    if let Some((mode, fkc, tz)) = saved {
        let restore = target
            .exec_drop(
                "SET SESSION sql_mode = ?, SESSION foreign_key_checks = ?, SESSION time_zone = ?",
                (mode, fkc, tz),
            )
            .await;
        if let (Ok(()), Err(e)) = (&result, restore) {
            return Err(SchemaError::target("restoring session settings", e));
        }
    }
    result
}

async fn run(target: &mut Conn, stmts: &[Ddl], progress: &ProgressSink) -> Result<(), SchemaError> {
    let default_tz: Option<String> = target
        .query_first("SELECT @@SESSION.time_zone")
        .await
        .map_err(|e| SchemaError::target("reading the time zone", e))?;
    let mut current_db: Option<&str> = None;
    for d in stmts {
        let object = d.display_name();
        if d.kind != ObjectKind::Database && current_db != Some(d.db.as_str()) {
            target
                .query_drop(format!("USE {}", quote_ident(&d.db)))
                .await
                .map_err(|e| SchemaError::Apply {
                    kind: d.kind,
                    name: object.clone(),
                    sql: format!("USE {}", quote_ident(&d.db)),
                    source: e,
                })?;
            current_db = Some(d.db.as_str());
        }
        if let Some(mode) = &d.sql_mode {
            set_sql_mode(target, mode).await?;
        }
        if let Some(tz) = &d.time_zone {
            target
                .exec_drop("SET SESSION time_zone = ?", (tz,))
                .await
                .map_err(|e| SchemaError::target(format!("setting time_zone {tz} for {object}"), e))?;
        }
        let drop = match d.kind {
            ObjectKind::Function => Some("FUNCTION"),
            ObjectKind::Procedure => Some("PROCEDURE"),
            ObjectKind::Trigger => Some("TRIGGER"),
            ObjectKind::Event => Some("EVENT"),
            _ => None,
        };
        if let Some(what) = drop {
            let sql = format!("DROP {what} IF EXISTS {}", quote_ident(&d.name));
            target.query_drop(&sql).await.map_err(|e| SchemaError::Apply {
                kind: d.kind,
                name: object.clone(),
                sql,
                source: e,
            })?;
        }
        match target.query_drop(&d.sql).await {
            Ok(()) => {}
            Err(mysql_async::Error::Server(s))
                if ALREADY_DONE
                    .iter()
                    .any(|(k, code)| *k == d.kind && *code == s.code) =>
            {
                tracing::info!(object = %object, kind = %d.kind, "already present on the target: {}", s.message);
            }
            Err(e) => {
                return Err(SchemaError::Apply {
                    kind: d.kind,
                    name: object,
                    sql: short_sql(&d.sql),
                    source: e,
                })
            }
        }
        ferry_core::fault::point(ferry_core::fault::STRUCTURE_DDL_APPLIED)
            .map_err(|e| SchemaError::target(format!("after {object}"), e))?;
        if d.sql_mode.is_some() {
            set_sql_mode(target, APPLY_SQL_MODE).await?;
        }
        if d.time_zone.is_some() {
            if let Some(tz) = &default_tz {
                target
                    .exec_drop("SET SESSION time_zone = ?", (tz,))
                    .await
                    .map_err(|e| SchemaError::target("restoring time_zone", e))?;
            }
        }
        tracing::debug!(object = %object, kind = %d.kind, "created");
        progress(ProgressEvent::ObjectCreated {
            kind: d.kind.as_str().to_string(),
            name: object,
        });
    }
    Ok(())
}

/// Sets the session sql_mode; a mode the target does not know (MySQL 8 dropped
/// NO_AUTO_CREATE_USER, which MariaDB still reports) is removed and the rest retried.
async fn set_sql_mode(target: &mut Conn, mode: &str) -> Result<(), SchemaError> {
    match target.exec_drop("SET SESSION sql_mode = ?", (mode,)).await {
        Ok(()) => Ok(()),
        Err(mysql_async::Error::Server(s)) if s.code == 1231 => {
            let kept: Vec<&str> = mode
                .split(',')
                .filter(|m| !m.trim().eq_ignore_ascii_case("NO_AUTO_CREATE_USER"))
                .collect();
            target
                .exec_drop("SET SESSION sql_mode = ?", (kept.join(","),))
                .await
                .map_err(|e| SchemaError::target(format!("setting sql_mode {mode}"), e))
        }
        Err(e) => Err(SchemaError::target(format!("setting sql_mode {mode}"), e)),
    }
}
