//! Accounts and the protected target: the item `accounts` (`Ferry.Accounts = copy`,
//! `IsOverrideRoot = 1`: which accounts the job copies, and by name those it cannot: an account
//! that already exists on the target, an authentication plugin the target lacks) and the item
//! `target_read_only` (`DstInfo.ReadOnly = 1`: Ferry's target account holds the privileges that
//! set `read_only` and write while it is on).
//!
//! The accounts are planned by `ferry_schema::accounts` exactly as the job will plan them, from
//! the same reads (`mysql.user`, `SHOW GRANTS FOR`, `SHOW CREATE USER`, the target's active
//! authentication plugins, `ferry_meta.job_account`).

use ferry_core::Flavor;
use ferry_schema::accounts::{plan, AccountName, AccountOptions, AccountPlan};
use ferry_schema::accounts_io::{read_source, read_target};
use mysql_async::Conn;

use crate::facts::ServerFacts;
use crate::privileges::Grants;
use crate::{AccountsCheck, Ctx, Skip, Verdict};

/// The options the job plans its accounts with.
pub(crate) fn options(a: &AccountsCheck, source: &ServerFacts, target: &ServerFacts) -> AccountOptions {
    AccountOptions {
        copy: a.copy,
        override_root: a.override_root,
        source_mariadb: source.is_mariadb(),
        own: vec![
            AccountName::from_current_user(&source.account),
            AccountName::from_current_user(&target.account),
        ],
    }
}

/// Reads both servers and plans the accounts.
pub(crate) async fn gather(
    src: &mut Conn,
    dst: &mut Conn,
    source: &ServerFacts,
    target: &ServerFacts,
    a: &AccountsCheck,
    sel: &ferry_core::Selection,
) -> Result<AccountPlan, String> {
    let opts = options(a, source, target);
    let accounts = read_source(src, &opts).await.map_err(|e| e.to_string())?;
    let t = read_target(dst, target.is_mariadb(), &a.job)
        .await
        .map_err(|e| e.to_string())?;
    Ok(plan(&accounts, &t, sel, &opts))
}

/// The verdict on a plan.
pub(crate) fn judge_accounts(plan: &AccountPlan) -> Verdict {
    let names: Vec<String> = plan.accounts.iter().map(|a| a.name.to_string()).collect();
    if !plan.refused.is_empty() {
        return Verdict::failed(plan.refused.join("\n"));
    }
    let copied = if names.is_empty() {
        "no account holds a privilege on the selected objects: none will be copied".to_string()
    } else {
        format!("{} will be copied: {}", names.len(), names.join(", "))
    };
    if plan.skipped.is_empty() {
        Verdict::passed(copied)
    } else {
        Verdict::warning(format!("{copied}; not copied: {}", plan.skipped.join("; ")))
    }
}

pub(crate) fn accounts(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    match &ctx.facts.accounts {
        None => Ok(Verdict::passed(
            "not requested: Ferry.Accounts is none and MigrateOption.IsOverrideRoot is 0",
        )),
        Some(Err(e)) => Ok(Verdict::failed(format!(
            "the accounts could not be read: {e}. Copying accounts needs SELECT on mysql.* on the source \
             and on the target"
        ))),
        Some(Ok(p)) => Ok(judge_accounts(p)),
    }
}

/// Alternatives that let Ferry's target account write while `read_only` is on, and alternatives
/// that let it set `read_only` (MariaDB: one privilege does both).
pub(crate) fn read_only_privileges(target: &Flavor) -> (&'static [&'static str], &'static [&'static str]) {
    if target.is_mariadb() {
        if target.at_least(10, 11, 0) {
            (&["READ_ONLY ADMIN"], &["READ_ONLY ADMIN"])
        } else if target.at_least(10, 5, 2) {
            (&["READ_ONLY ADMIN", "SUPER"], &["READ_ONLY ADMIN", "SUPER"])
        } else {
            (&["SUPER"], &["SUPER"])
        }
    } else {
        (
            &["CONNECTION_ADMIN", "SUPER"],
            &["SYSTEM_VARIABLES_ADMIN", "SUPER"],
        )
    }
}

/// `DstInfo.ReadOnly = 1`: the target account must set `read_only` and write past it.
pub(crate) fn judge_read_only(
    target: &Flavor,
    current_user: &str,
    grants: &Result<Vec<String>, String>,
) -> Verdict {
    let (write, set) = read_only_privileges(target);
    let lines = match grants {
        Ok(l) => l,
        Err(e) => {
            return Verdict::failed(format!(
                "DstInfo.ReadOnly = 1 needs {} on the target; the grants of {current_user} could not be read \
                 (SHOW GRANTS: {e})",
                write.join(" or ")
            ))
        }
    };
    let g = Grants::parse(lines);
    let mut missing = Vec::new();
    for alternatives in [write, set] {
        if !alternatives.iter().any(|p| g.holds_global(p)) && !missing.contains(&alternatives[0]) {
            missing.push(alternatives[0]);
        }
    }
    if missing.is_empty() {
        return Verdict::passed(format!(
            "DstInfo.ReadOnly = 1: {current_user} may set read_only and write while it is on"
        ));
    }
    let account = AccountName::from_current_user(current_user);
    Verdict::failed(format!(
        "DstInfo.ReadOnly = 1 sets read_only = ON on the target while the job runs, so only accounts with {} \
         write there; {current_user} lacks {}, so the job could not write. Run GRANT {} ON *.* TO '{}'@'{}'; \
         or set DstInfo.ReadOnly to 0",
        write.join(" or "),
        missing.join(" and "),
        missing.join(", "),
        account.user,
        account.host_or_empty()
    ))
}

pub(crate) fn read_only(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    if !ctx.input.target_read_only {
        return Ok(Verdict::passed(
            "not needed: DstInfo.ReadOnly is 0, Ferry leaves the target's read_only as it is",
        ));
    }
    let t = ctx.target()?;
    Ok(judge_read_only(&t.flavor(), &t.account, &t.grants))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;

    fn l(lines: &[&str]) -> Result<Vec<String>, String> {
        Ok(lines.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn read_only_privileges_by_flavor() {
        let maria = Flavor::from_version("10.11.6-MariaDB");
        let v = judge_read_only(&maria, "ferry@%", &l(&["GRANT SUPER ON *.* TO `ferry`@`%`"]));
        assert_eq!(v.status, Failed, "SUPER no longer bypasses read_only on 10.11");
        assert!(
            v.message.contains("GRANT READ_ONLY ADMIN ON *.* TO 'ferry'@'%'"),
            "{}",
            v.message
        );
        let ok = judge_read_only(
            &maria,
            "ferry@%",
            &l(&["GRANT READ_ONLY ADMIN ON *.* TO `ferry`@`%`"]),
        );
        assert_eq!(ok.status, Passed);
        let all = judge_read_only(
            &maria,
            "ferry@%",
            &l(&["GRANT ALL PRIVILEGES ON *.* TO `ferry`@`%`"]),
        );
        assert_eq!(all.status, Passed);
        let old = Flavor::from_version("10.6.12-MariaDB");
        assert_eq!(
            judge_read_only(&old, "ferry@%", &l(&["GRANT SUPER ON *.* TO `ferry`@`%`"])).status,
            Passed
        );
        let mysql = Flavor::from_version("8.0.36");
        let v = judge_read_only(
            &mysql,
            "ferry@%",
            &l(&[
                "GRANT SELECT ON *.* TO `ferry`@`%`",
                "GRANT CONNECTION_ADMIN ON *.* TO `ferry`@`%`",
            ]),
        );
        assert_eq!(v.status, Failed);
        assert!(
            v.message.contains("lacks SYSTEM_VARIABLES_ADMIN"),
            "{}",
            v.message
        );
        let v = judge_read_only(
            &mysql,
            "ferry@%",
            &l(&["GRANT CONNECTION_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `ferry`@`%`"]),
        );
        assert_eq!(v.status, Passed);
    }

    #[test]
    fn accounts_verdicts() {
        let mut p = AccountPlan::default();
        assert_eq!(judge_accounts(&p).status, Passed);
        p.skipped.push("'a'@'%': a PROXY grant".into());
        assert_eq!(judge_accounts(&p).status, Warning);
        p.refused.push("'a'@'%' already exists on the target".into());
        let v = judge_accounts(&p);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("'a'@'%' already exists"));
    }
}
