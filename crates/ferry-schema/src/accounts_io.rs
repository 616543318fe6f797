//! Accounts, the I/O around [`crate::accounts`]: reads the source's accounts (`mysql.user`,
//! `SHOW GRANTS FOR`, `SHOW CREATE USER`) and what the target has (`mysql.user`, the active
//! authentication plugins, the accounts this job created before), and runs an
//! [`AccountPlan`] on the target.
//!
//! Restart safety: each account is recorded in `ferry_meta.job_account` *before* its
//! `CREATE USER`, so a run killed at any point resumes without creating an account twice and
//! without mistaking its own account for a foreign one; the grants run again until they have
//! all run once (`granted_at`), after which MariaDB roles are taken back from Ferry's account.
//! Statements that carry a hash (`CREATE USER`, `ALTER USER`) never appear in errors or logs.

use std::collections::BTreeSet;

use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::accounts::{
    AccountAction, AccountName, AccountOptions, AccountPlan, SourceAccount, TargetAccounts,
};
use crate::error::SchemaError;

/// Every account of a server: `(name, is a MariaDB role)`.
async fn list(conn: &mut Conn, mariadb: bool, side: &str) -> Result<Vec<AccountName>, SchemaError> {
    let sql = if mariadb {
        "SELECT User, Host, is_role = 'Y' FROM mysql.user"
    } else {
        "SELECT User, Host, 0 FROM mysql.user"
    };
    let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = conn.query(sql).await.map_err(|e| {
        let what = format!("the accounts (SELECT … FROM mysql.user; needs SELECT on mysql.*) on the {side}");
        if side == "source" {
            SchemaError::read(what, e)
        } else {
            SchemaError::target(format!("reading {what}"), e)
        }
    })?;
    Ok(rows
        .into_iter()
        .map(|(u, h, role)| {
            let (u, h) = (String::from_utf8_lossy(&u), String::from_utf8_lossy(&h));
            if role != 0 {
                AccountName::role(&u)
            } else {
                AccountName::new(&u, &h)
            }
        })
        .collect())
}

/// One text column of every row (`SHOW GRANTS`, `SHOW CREATE USER`), hashes as they come.
async fn lines(conn: &mut Conn, sql: String, what: &str) -> Result<Vec<String>, SchemaError> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| SchemaError::read(what, e))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.get::<Vec<u8>, _>(0))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect())
}

/// The source accounts a job may copy (Ferry's own, the internal ones and, without
/// `IsOverrideRoot`, root are not read), with their grants and `SHOW CREATE USER`.
pub async fn read_source(conn: &mut Conn, opts: &AccountOptions) -> Result<Vec<SourceAccount>, SchemaError> {
    if !opts.copy && !opts.override_root {
        return Ok(Vec::new());
    }
    if !opts.source_mariadb {
        // MySQL 8.0.17+: binary hashes (caching_sha2_password) as 0x… literals.
        let _ = conn
            .query_drop("SET SESSION print_identified_with_as_hex = ON")
            .await;
    }
    let mut out = Vec::new();
    for name in list(conn, opts.source_mariadb, "source").await? {
        if !opts.eligible(&name) {
            continue;
        }
        let grants = lines(
            conn,
            format!("SHOW GRANTS FOR {}", name.sql()),
            &format!("the grants of {name} (SHOW GRANTS; needs SELECT on mysql.*)"),
        )
        .await?;
        let create = if name.host.is_none() {
            None
        } else {
            lines(
                conn,
                format!("SHOW CREATE USER {}", name.sql()),
                &format!("the authentication of {name} (SHOW CREATE USER; needs SELECT on mysql.*)"),
            )
            .await?
            .into_iter()
            .next()
        };
        out.push(SourceAccount { name, create, grants });
    }
    Ok(out)
}

/// What the target has: its accounts, its active authentication plugins, and the accounts
/// `job` created on an earlier run.
pub async fn read_target(conn: &mut Conn, mariadb: bool, job: &str) -> Result<TargetAccounts, SchemaError> {
    let existing: BTreeSet<AccountName> = list(conn, mariadb, "target").await?.into_iter().collect();
    let plugins: Vec<String> = conn
        .query(
            "SELECT LOWER(PLUGIN_NAME) FROM information_schema.PLUGINS \
             WHERE PLUGIN_TYPE = 'AUTHENTICATION' AND PLUGIN_STATUS = 'ACTIVE'",
        )
        .await
        .map_err(|e| SchemaError::target("reading the authentication plugins", e))?;
    let mut created_by_job = BTreeSet::new();
    if ferry_core::meta::table_exists(conn, "job_account").await? {
        let rows: Vec<(String, String, i64)> = conn
            .exec(
                format!(
                    "SELECT user, host, is_role FROM {}.job_account WHERE job = ?",
                    quote_ident(META_SCHEMA)
                ),
                (job,),
            )
            .await
            .map_err(|e| SchemaError::target("reading ferry_meta.job_account", e))?;
        created_by_job = rows
            .into_iter()
            .map(|(u, h, r)| {
                if r != 0 {
                    AccountName::role(&u)
                } else {
                    AccountName::new(&u, &h)
                }
            })
            .collect();
    }
    Ok(TargetAccounts {
        existing,
        plugins: plugins.into_iter().collect(),
        mariadb,
        created_by_job,
    })
}

/// Server errors of a `REVOKE role FROM CURRENT_USER` that say there is nothing to revoke.
const NOTHING_TO_REVOKE: &[u16] = &[1141, 1147, 1403, 1698, 1959];

/// Runs `plan` on the target for `job` (the accounts must have been planned against this
/// target's current state, [`read_target`]); returns how many accounts were created or altered.
/// A plan with refusals fails by name before anything is written.
pub async fn apply_plan(conn: &mut Conn, plan: &AccountPlan, job: &str) -> Result<u64, SchemaError> {
    if !plan.refused.is_empty() {
        return Err(SchemaError::Accounts {
            reasons: plan.refused.clone(),
        });
    }
    for s in &plan.skipped {
        tracing::warn!(account = %s, "grant not copied");
    }
    let m = quote_ident(META_SCHEMA);
    let mut changed = 0;
    for a in &plan.accounts {
        match a.action {
            AccountAction::AlreadyCreated => continue,
            AccountAction::Create => {
                conn.exec_drop(
                    format!(
                        "INSERT INTO {m}.job_account (job, user, host, is_role, created_at) VALUES (?, ?, ?, ?, NOW(6)) \
                         ON DUPLICATE KEY UPDATE created_at = created_at, granted_at = NULL"
                    ),
                    (job, a.name.user.as_str(), a.name.host_or_empty(), a.name.host.is_none()),
                )
                .await
                .map_err(|e| SchemaError::target("recording an account in ferry_meta.job_account", e))?;
            }
            AccountAction::OverwriteRoot => {}
        }
        let verb = if a.action == AccountAction::OverwriteRoot {
            "altering"
        } else {
            "creating"
        };
        // The statement holds the hash: the error names the account only.
        conn.query_drop(a.create.as_str())
            .await
            .map_err(|e| SchemaError::target(format!("{verb} the account {}", a.name), e))?;
        changed += 1;
        tracing::info!(account = %a.name, action = ?a.action, "account copied");
    }
    // The grants ran on an earlier run (after which Ferry may no longer hold the roles it would
    // grant): not again.
    let counts: Option<(u64, u64)> = conn
        .exec_first(
            format!("SELECT COUNT(*), COUNT(granted_at) FROM {m}.job_account WHERE job = ?"),
            (job,),
        )
        .await
        .map_err(|e| SchemaError::target("reading ferry_meta.job_account", e))?;
    let granted = counts.is_some_and(|(all, granted)| all > 0 && granted == all);
    for a in plan.accounts.iter().filter(|_| !granted) {
        for g in a.grants.iter().chain(&a.default_roles) {
            conn.query_drop(g.as_str())
                .await
                .map_err(|e| SchemaError::target(format!("granting to {}: {g}", a.name), e))?;
        }
    }
    conn.exec_drop(
        format!("UPDATE {m}.job_account SET granted_at = NOW(6) WHERE job = ? AND granted_at IS NULL"),
        (job,),
    )
    .await
    .map_err(|e| SchemaError::target("recording the grants in ferry_meta.job_account", e))?;
    // MariaDB's CREATE ROLE granted each role to Ferry's own account: taken back (a role
    // already taken back answers 1698: Ferry no longer administers it).
    for a in plan
        .accounts
        .iter()
        .filter(|a| a.mariadb_role && a.action != AccountAction::OverwriteRoot)
    {
        match conn
            .query_drop(format!("REVOKE {} FROM CURRENT_USER", a.name.sql()))
            .await
        {
            Ok(()) => {}
            Err(mysql_async::Error::Server(e)) if NOTHING_TO_REVOKE.contains(&e.code) => {}
            Err(e) => {
                return Err(SchemaError::target(
                    format!("revoking {} from Ferry's own account", a.name),
                    e,
                ))
            }
        }
    }
    Ok(changed)
}
