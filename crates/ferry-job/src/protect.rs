//! `DstInfo.ReadOnly = 1` (Tencent; Huawei's `is_target_readonly`): the target is read-only for
//! everyone but Ferry while the job runs.
//!
//! [`protect`], at the start of every run that has work left (before the structure phase),
//! records the target's `read_only` in `ferry_meta.target_read_only` (once per protection: a run
//! that resumes after a crash keeps the value recorded first) and sets `read_only = ON`. Ferry's
//! own target account writes on because it holds the privilege that passes `read_only`
//! (MariaDB 10.11+: READ_ONLY ADMIN; 10.5.2–10.10: READ_ONLY ADMIN or SUPER; MySQL 8:
//! CONNECTION_ADMIN or SUPER, and SYSTEM_VARIABLES_ADMIN or SUPER to set it; the pre-check item
//! `target_read_only`). [`restore`] puts the recorded value back: at completion (every phase
//! done, cut-over included — also when a later run finds the job complete, so a crash after the
//! last phase is restored then), when the job is stopped, and when it is deleted. Two jobs
//! protecting one target: the second records the value from before the first, and the value is
//! put back only when the last of them restores.

use ferry_core::error::MysqlResultExt;
use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tracing::info;

use crate::error::JobError;
use crate::spec::JobSpec;

/// Sets the target read-only for the job (no-op without `DstInfo.ReadOnly = 1`). `dst` is a
/// target connection with `ferry_meta` in place.
pub async fn protect(spec: &JobSpec, dst: &mut Conn) -> Result<(), JobError> {
    if !spec.options.target_read_only {
        return Ok(());
    }
    let m = quote_ident(META_SCHEMA);
    let active: Option<i64> = dst
        .exec_first(
            format!("SELECT previous FROM {m}.target_read_only WHERE job = ? AND restored_at IS NULL"),
            (spec.name.as_str(),),
        )
        .await
        .ctx(|| "reading ferry_meta.target_read_only".into())?;
    if active.is_none() {
        // Another job keeping the target read-only recorded the value from before it.
        let other: Option<i64> = dst
            .exec_first(
                format!("SELECT previous FROM {m}.target_read_only WHERE job <> ? AND restored_at IS NULL LIMIT 1"),
                (spec.name.as_str(),),
            )
            .await
            .ctx(|| "reading ferry_meta.target_read_only".into())?;
        let current: Option<i64> = dst
            .query_first("SELECT @@GLOBAL.read_only")
            .await
            .ctx(|| "reading the target's read_only".into())?;
        let previous = other.or(current).unwrap_or(0);
        dst.exec_drop(
            format!(
                "REPLACE INTO {m}.target_read_only (job, previous, protected_at, restored_at) VALUES (?, ?, NOW(6), NULL)"
            ),
            (spec.name.as_str(), previous),
        )
        .await
        .ctx(|| "recording the target's read_only in ferry_meta.target_read_only".into())?;
        info!(previous, "DstInfo.ReadOnly: the target's read_only recorded");
    }
    dst.query_drop("SET GLOBAL read_only = ON").await.ctx(|| {
        "DstInfo.ReadOnly = 1 sets read_only = ON on the target, which needs READ_ONLY ADMIN (MariaDB; SUPER \
         before 10.11) or SYSTEM_VARIABLES_ADMIN and CONNECTION_ADMIN (MySQL 8) (pre-check item target_read_only)"
            .into()
    })?;
    info!("DstInfo.ReadOnly: the target is read-only for everyone but Ferry");
    Ok(())
}

/// Puts the target's `read_only` back as it was before the job (no-op when the job does not
/// keep it read-only); returns whether there was something to restore.
pub async fn restore(spec: &JobSpec) -> Result<bool, JobError> {
    if !spec.options.target_read_only {
        return Ok(false);
    }
    let (mut dst, _) = crate::runner::connect(spec, true).await?;
    let m = quote_ident(META_SCHEMA);
    if !ferry_core::meta::table_exists(&mut dst, "target_read_only").await? {
        return Ok(false);
    }
    let previous: Option<i64> = dst
        .exec_first(
            format!("SELECT previous FROM {m}.target_read_only WHERE job = ? AND restored_at IS NULL"),
            (spec.name.as_str(),),
        )
        .await
        .ctx(|| "reading ferry_meta.target_read_only".into())?;
    let Some(previous) = previous else {
        return Ok(false);
    };
    let others: Option<u64> = dst
        .exec_first(
            format!("SELECT COUNT(*) FROM {m}.target_read_only WHERE job <> ? AND restored_at IS NULL"),
            (spec.name.as_str(),),
        )
        .await
        .ctx(|| "reading ferry_meta.target_read_only".into())?;
    if others.unwrap_or(0) == 0 {
        let value = if previous != 0 { "ON" } else { "OFF" };
        dst.query_drop(format!("SET GLOBAL read_only = {value}"))
            .await
            .ctx(|| format!("DstInfo.ReadOnly: restoring the target's read_only to {value}"))?;
        info!(
            read_only = value,
            "DstInfo.ReadOnly: the target's read_only restored"
        );
    } else {
        info!("DstInfo.ReadOnly: another job keeps the target read-only");
    }
    dst.exec_drop(
        format!("UPDATE {m}.target_read_only SET restored_at = NOW(6) WHERE job = ?"),
        (spec.name.as_str(),),
    )
    .await
    .ctx(|| "recording the restore in ferry_meta.target_read_only".into())?;
    Ok(true)
}
