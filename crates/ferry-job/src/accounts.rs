//! The structure phase's accounts step (`Ferry.Accounts = copy`, `MigrateOption.IsOverrideRoot
//! = 1`): reads the source's accounts and what the target has, plans them with
//! `ferry_schema::accounts` (the same plan the pre-check item `accounts` shows) and creates them
//! on the target (`ferry_schema::accounts_io`). It runs after the tables, views and routines
//! exist, since table, column and routine grants need their objects.

use ferry_core::error::MysqlResultExt;
use ferry_core::Flavor;
use ferry_schema::accounts::{plan, AccountName, AccountOptions};
use ferry_schema::accounts_io::{apply_plan, read_source, read_target};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tracing::info;

use crate::error::JobError;
use crate::spec::JobSpec;

async fn current_user(conn: &mut Conn, side: &str) -> Result<AccountName, JobError> {
    let u: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .ctx(|| format!("reading Ferry's account on the {side}"))?;
    Ok(AccountName::from_current_user(&u.unwrap_or_default()))
}

/// Copies the job's accounts to the target through `dst`; returns how many were created or
/// altered (0 when the job copies none).
pub(crate) async fn copy(spec: &JobSpec, dst: &mut Conn) -> Result<u64, JobError> {
    if !spec.options.copy_accounts && !spec.options.override_root {
        return Ok(0);
    }
    let (mut src, src_flavor) = crate::runner::connect(spec, false).await?;
    let dst_flavor = Flavor::detect(dst).await?;
    let opts = AccountOptions {
        copy: spec.options.copy_accounts,
        override_root: spec.options.override_root,
        source_mariadb: src_flavor.is_mariadb(),
        own: vec![
            current_user(&mut src, "source").await?,
            current_user(dst, "target").await?,
        ],
    };
    let accounts = read_source(&mut src, &opts).await?;
    drop(src);
    let target = read_target(dst, dst_flavor.is_mariadb(), &spec.name).await?;
    let plan = plan(&accounts, &target, &spec.selection, &opts);
    let n = apply_plan(dst, &plan, &spec.name).await?;
    info!(accounts = plan.accounts.len(), changed = n, "accounts copied");
    Ok(n)
}
