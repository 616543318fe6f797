//! Accounts (`Ferry.Accounts = copy`, `MigrateOption.IsOverrideRoot = 1`), the pure part: which
//! source users and roles a job copies, and the statements that create them on the target with
//! their authentication and their grants, renamed for the job's database and table mapping.
//! Parsing the statements is [`crate::account_sql`]; reading the servers and running the
//! statements is [`crate::accounts_io`].
//!
//! **Which accounts** ([`plan`]): with `copy`, every account or role that holds a privilege on a
//! selected object (a database-, table-, column- or routine-level grant on a database or table
//! the job moves) or holds a role that does, plus every role granted to one of them
//! (transitively). Never: Ferry's own
//! source and target accounts, the servers' internal accounts (`mariadb.sys`, `mysql.sys`,
//! `mysql.session`, `mysql.infoschema`, `debian-sys-maint`, `PUBLIC`, anonymous users, any
//! `mysql.*` user) and `root` (any host). With `IsOverrideRoot = 1` the source's `root` accounts
//! are taken too: a `root` account the target has is overwritten (`ALTER USER` with the source's
//! authentication, then the source root's grants), one it lacks is created.
//!
//! **What is copied**: the authentication (`SHOW CREATE USER`: plugin and hash, `REQUIRE`, resource
//! limits, password expiry, lock state; between MySQL and MariaDB only plugin + hash, `REQUIRE`
//! and `ACCOUNT LOCK`), the global privileges, the privileges on the selected databases, tables,
//! columns and routines (names mapped), the roles granted and the default roles. Not copied (and
//! listed in [`AccountPlan::skipped`]): grants on objects the job does not move, grants on
//! database name patterns (`` `app%`.* ``), `PROXY` grants (granting one needs PROXY WITH GRANT
//! OPTION on the proxied account, which Ferry's login does not hold),
//! column grants of a table with a column mapping (`Ferry.DbList`).
//!
//! **Refused** ([`AccountPlan::refused`], named in the pre-check item `accounts` and at run
//! time): an account that already exists on the target (Ferry never merges into an account it
//! did not create), an authentication plugin the target does not have, an account with several
//! authentication methods (MariaDB `OR`) moving to MySQL, a role (or an account holding one)
//! moving between MySQL and MariaDB.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ferry_core::lexer::splice;
use ferry_core::sql::quote_ident;
use ferry_core::Selection;

pub use crate::account_sql::{parse_create_user, Authentication, Grant, GrantKind, GrantObject};

/// An account or role: `user`@`host`, or a MariaDB role (no host).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountName {
    pub user: String,
    /// `None`: a MariaDB role (`mysql.user` shows it with an empty host).
    pub host: Option<String>,
}

impl AccountName {
    /// `user`@`host`.
    pub fn new(user: &str, host: &str) -> Self {
        AccountName {
            user: user.to_string(),
            host: Some(host.to_string()),
        }
    }

    /// A MariaDB role.
    pub fn role(name: &str) -> Self {
        AccountName {
            user: name.to_string(),
            host: None,
        }
    }

    /// From `CURRENT_USER()` (`user@host`, split at the last `@`).
    pub fn from_current_user(s: &str) -> Self {
        match s.rsplit_once('@') {
            Some((u, h)) => AccountName::new(u, h),
            None => AccountName::new(s, "%"),
        }
    }

    /// The name as SQL: `` `user`@`host` `` or `` `role` ``.
    pub fn sql(&self) -> String {
        match &self.host {
            Some(h) => format!("{}@{}", quote_ident(&self.user), quote_ident(h)),
            None => quote_ident(&self.user),
        }
    }

    /// The host as stored in `mysql.user` (`""` for a MariaDB role).
    pub fn host_or_empty(&self) -> &str {
        self.host.as_deref().unwrap_or("")
    }

    /// True for the servers' internal accounts, which are never copied (root is separate).
    pub fn is_system(&self) -> bool {
        let u = self.user.as_str();
        u.is_empty()
            || u.starts_with("mysql.")
            || ["mariadb.sys", "debian-sys-maint"].contains(&u)
            || u.eq_ignore_ascii_case("PUBLIC")
    }

    /// True for `root`.
    pub fn is_root(&self) -> bool {
        self.user == "root" && self.host.is_some()
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(h) => write!(f, "'{}'@'{}'", self.user, h),
            None => write!(f, "role '{}'", self.user),
        }
    }
}

/// One account as the source shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAccount {
    pub name: AccountName,
    /// `SHOW CREATE USER` (`None` for a MariaDB role, which has none). Holds the hash: never
    /// logged.
    pub create: Option<String>,
    /// `SHOW GRANTS FOR` lines (MariaDB's carry the hash too).
    pub grants: Vec<String>,
}

/// What the target has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetAccounts {
    /// Every account and role of the target.
    pub existing: BTreeSet<AccountName>,
    /// Active authentication plugins (lower case).
    pub plugins: BTreeSet<String>,
    /// The target is MariaDB.
    pub mariadb: bool,
    /// Accounts this job created on an earlier run (`ferry_meta.job_account`): not refused,
    /// not created again.
    pub created_by_job: BTreeSet<AccountName>,
}

/// What the job asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountOptions {
    /// `Ferry.Accounts = copy`.
    pub copy: bool,
    /// `MigrateOption.IsOverrideRoot = 1`.
    pub override_root: bool,
    /// The source is MariaDB.
    pub source_mariadb: bool,
    /// Ferry's own accounts (source and target logins): never copied.
    pub own: Vec<AccountName>,
}

impl AccountOptions {
    /// True for an account the job may copy: not one of Ferry's, not internal, root only with
    /// `IsOverrideRoot`.
    pub fn eligible(&self, n: &AccountName) -> bool {
        !n.is_system() && !self.own.contains(n) && (!n.is_root() || self.override_root)
    }
}

/// What happens to one account on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    /// `CREATE USER` / `CREATE ROLE`.
    Create,
    /// Created by this job's earlier run: only the grants are applied again (idempotent).
    AlreadyCreated,
    /// `IsOverrideRoot`: a root account the target has, altered to the source's authentication.
    OverwriteRoot,
}

/// One account to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAccount {
    pub name: AccountName,
    pub action: AccountAction,
    /// `CREATE USER …` / `CREATE ROLE …` / `ALTER USER …` (holds the hash: never logged).
    pub create: String,
    /// A MariaDB role: `CREATE ROLE` grants it to its creator, which is revoked afterwards.
    pub mariadb_role: bool,
    /// The GRANT statements, renamed, without authentication clauses.
    pub grants: Vec<String>,
    /// `SET DEFAULT ROLE …` (MariaDB), run after the grants.
    pub default_roles: Vec<String>,
    /// Authentication plugins the account uses.
    pub plugins: Vec<String>,
}

/// The accounts a job copies, in creation order (roles first), and what it cannot copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPlan {
    pub accounts: Vec<PlannedAccount>,
    /// Reasons the job cannot run as asked, each naming the account and the fix.
    pub refused: Vec<String>,
    /// Grants left out, each naming the account and why.
    pub skipped: Vec<String>,
}

/// Where a privilege grant lands on the target: `Some((db, name))` for a grant on a selected
/// object (`name` for tables and routines), `None` when the job does not move the object.
fn target_of(object: &GrantObject, sel: &Selection) -> Option<(String, Option<String>)> {
    match object {
        GrantObject::Db { name, pattern: false } => sel.target_db(name).map(|d| (d, None)),
        GrantObject::Table { db, table } => sel.target_table(db, table).map(|(d, t)| (d, Some(t))),
        GrantObject::Routine { db, name } if sel.whole_db(db) => {
            sel.target_db(db).map(|d| (d, Some(name.clone())))
        }
        _ => None,
    }
}

/// The statement that gives `name` the source's authentication on the target. `same_family`:
/// both MariaDB or both MySQL (the source's statement is used as it is); else only plugin and
/// hash, `REQUIRE` and `ACCOUNT LOCK` are carried. `alter`: `ALTER USER` (root overwrite).
fn auth_statement(
    name: &AccountName,
    create: &str,
    auth: &Authentication,
    same_family: bool,
    alter: bool,
) -> String {
    let mut sql = if same_family {
        create.trim().trim_end_matches(';').to_string()
    } else {
        let mut s = format!("CREATE USER {}", name.sql());
        if let Some((plugin, hash)) = auth.methods.first() {
            s.push_str(&format!(" IDENTIFIED WITH {plugin}"));
            if let Some(h) = hash {
                s.push_str(&format!(" AS {h}"));
            }
        }
        if let Some(r) = &auth.require {
            s.push(' ');
            s.push_str(r);
        }
        if auth.locked {
            s.push_str(" ACCOUNT LOCK");
        }
        s
    };
    if alter {
        let range = if same_family {
            auth.create_kw.clone()
        } else {
            Some(0..6)
        };
        if let Some(r) = range {
            sql = splice(&sql, &[(r, "ALTER".into())]);
        }
    }
    sql
}

/// Chooses the accounts to copy and writes their statements (see the module doc).
pub fn plan(
    source: &[SourceAccount],
    target: &TargetAccounts,
    sel: &Selection,
    opts: &AccountOptions,
) -> AccountPlan {
    let mut out = AccountPlan::default();
    if !opts.copy && !opts.override_root {
        return out;
    }
    let mariadb = opts.source_mariadb;
    let by_name: BTreeMap<&AccountName, &SourceAccount> = source
        .iter()
        .filter(|a| opts.eligible(&a.name))
        .map(|a| (&a.name, a))
        .collect();
    let parsed: BTreeMap<&AccountName, Vec<Grant>> = by_name
        .iter()
        .map(|(n, a)| (*n, a.grants.iter().map(|l| Grant::parse(l, mariadb)).collect()))
        .collect();

    // The accounts with a grant on a selected object, the root accounts, then their roles.
    let mut chosen: BTreeSet<AccountName> = BTreeSet::new();
    for (name, grants) in &parsed {
        let relevant = opts.copy
            && grants.iter().any(|g| {
                matches!(&g.kind, GrantKind::Privileges { object, .. } if target_of(object, sel).is_some())
            });
        if relevant || (opts.override_root && name.is_root()) {
            chosen.insert((*name).clone());
        }
    }
    // Accounts that reach the selection through a role they hold.
    loop {
        let added: Vec<AccountName> = parsed
            .iter()
            .filter(|(name, grants)| {
                opts.copy
                    && !chosen.contains(**name)
                    && grants.iter().any(
                        |g| matches!(&g.kind, GrantKind::Roles(rs) if rs.iter().any(|r| chosen.contains(r))),
                    )
            })
            .map(|(name, _)| (*name).clone())
            .collect();
        if added.is_empty() {
            break;
        }
        chosen.extend(added);
    }
    let mut roles_used: BTreeSet<AccountName> = BTreeSet::new();
    let mut queue: Vec<AccountName> = chosen.iter().cloned().collect();
    while let Some(n) = queue.pop() {
        for g in parsed.get(&n).into_iter().flatten() {
            if let GrantKind::Roles(rs) = &g.kind {
                for r in rs {
                    roles_used.insert(r.clone());
                    if by_name.contains_key(r) && chosen.insert(r.clone()) {
                        queue.push(r.clone());
                    }
                }
            }
        }
    }

    // Roles first: users' CREATE USER … DEFAULT ROLE and the role grants need them.
    let mut order: Vec<&AccountName> = chosen.iter().filter(|n| roles_used.contains(*n)).collect();
    order.extend(chosen.iter().filter(|n| !roles_used.contains(*n)));
    let same_family = opts.source_mariadb == target.mariadb;
    for name in order {
        let (Some(account), Some(grants)) = (by_name.get(name), parsed.get(name)) else {
            continue;
        };
        let root = name.is_root() && opts.override_root;
        let exists = target.existing.contains(name);
        let action = if root && exists {
            AccountAction::OverwriteRoot
        } else if target.created_by_job.contains(name) {
            // Recorded before its CREATE: created unless the earlier run died in between.
            if exists {
                AccountAction::AlreadyCreated
            } else {
                AccountAction::Create
            }
        } else if exists {
            out.refused.push(format!(
                "{name} already exists on the target: Ferry does not merge into accounts it did not create; \
                 drop it on the target (DROP USER), or set Ferry.Accounts to none"
            ));
            continue;
        } else {
            AccountAction::Create
        };
        let mut planned = PlannedAccount {
            name: name.clone(),
            action,
            create: String::new(),
            mariadb_role: name.host.is_none(),
            grants: Vec::new(),
            default_roles: Vec::new(),
            plugins: Vec::new(),
        };
        let has_roles = grants.iter().any(|g| matches!(g.kind, GrantKind::Roles(_)));
        if !same_family && (account.create.is_none() || has_roles) {
            out.refused.push(format!(
                "{name} is or holds a role, and roles are not copied between MySQL and MariaDB: \
                 create it on the target yourself, or set Ferry.Accounts to none"
            ));
            continue;
        }
        match &account.create {
            None => planned.create = format!("CREATE ROLE {}", name.sql()),
            Some(create) => {
                let auth = parse_create_user(create);
                planned.plugins = auth.methods.iter().map(|(p, _)| p.clone()).collect();
                let missing: Vec<&String> = planned
                    .plugins
                    .iter()
                    .filter(|p| !target.plugins.contains(*p))
                    .collect();
                if !missing.is_empty() {
                    let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                    out.refused.push(format!(
                        "{name} authenticates with {}, which the target does not have \
                         (information_schema.PLUGINS): install the plugin on the target, change the \
                         account's authentication on the source, or set Ferry.Accounts to none",
                        list.join(" and ")
                    ));
                    continue;
                }
                if !same_family && auth.methods.len() > 1 {
                    out.refused.push(format!(
                        "{name} has several authentication methods ({}), which only MariaDB has: \
                         give it one on the source, or set Ferry.Accounts to none",
                        planned.plugins.join(" OR ")
                    ));
                    continue;
                }
                planned.create = auth_statement(
                    name,
                    create,
                    &auth,
                    same_family,
                    action == AccountAction::OverwriteRoot,
                );
            }
        }
        for g in grants {
            match &g.kind {
                GrantKind::Privileges {
                    object: GrantObject::Global,
                    ..
                } => planned.grants.push(g.render(None, None)),
                GrantKind::Privileges { object, columns } => match target_of(object, sel) {
                    Some((db, n)) => {
                        if let GrantObject::Table { db: sdb, table } = object {
                            if *columns && sel.mapping(sdb, table).is_some() {
                                out.skipped.push(format!(
                                    "{name}: column grants on {sdb}.{table}, which has a column mapping (Ferry.DbList)"
                                ));
                                continue;
                            }
                        }
                        planned.grants.push(g.render(Some(&db), n.as_deref()));
                    }
                    None if root => planned.grants.push(g.render(None, None)),
                    None => {
                        if let GrantObject::Db {
                            name: db,
                            pattern: true,
                        } = object
                        {
                            out.skipped
                                .push(format!("{name}: grants on the database name pattern {db}"));
                        }
                    }
                },
                // Granting PROXY needs PROXY WITH GRANT OPTION on the proxied account, which
                // Ferry's login does not hold; a root the target has keeps its own.
                GrantKind::Proxy => out.skipped.push(format!("{name}: a PROXY grant")),
                GrantKind::Roles(rs) => {
                    if rs.iter().all(|r| chosen.contains(r)) {
                        planned.grants.push(g.render(None, None));
                    } else {
                        out.skipped
                            .push(format!("{name}: a grant of a role Ferry does not copy"));
                    }
                }
                GrantKind::DefaultRole(rs) => {
                    if rs.iter().all(|r| chosen.contains(r)) {
                        planned.default_roles.push(g.render(None, None));
                    }
                }
                GrantKind::Unknown => out
                    .skipped
                    .push(format!("{name}: a grant Ferry does not understand")),
            }
        }
        out.accounts.push(planned);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::selection::{DbSelection, TableSelection};

    fn sel() -> Selection {
        Selection::databases(vec![
            DbSelection {
                name: "shop".into(),
                target: "shop2".into(),
                tables: None,
                table_renames: [("orders".to_string(), "orders2".to_string())].into(),
            },
            DbSelection {
                name: "crm".into(),
                target: "crm".into(),
                tables: Some(vec![TableSelection {
                    name: "people".into(),
                    target: "persons".into(),
                }]),
                table_renames: BTreeMap::new(),
            },
        ])
    }

    fn acct(user: &str, create: Option<&str>, grants: &[&str]) -> SourceAccount {
        SourceAccount {
            name: if create.is_some() || user == "root" {
                AccountName::new(user, "%")
            } else {
                AccountName::role(user)
            },
            create: create.map(str::to_string),
            grants: grants.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn target() -> TargetAccounts {
        TargetAccounts {
            existing: [
                AccountName::new("ferry", "%"),
                AccountName::new("root", "localhost"),
            ]
            .into(),
            plugins: ["mysql_native_password", "unix_socket"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            mariadb: true,
            created_by_job: BTreeSet::new(),
        }
    }

    fn opts() -> AccountOptions {
        AccountOptions {
            copy: true,
            override_root: false,
            source_mariadb: true,
            own: vec![AccountName::new("ferry", "%")],
        }
    }

    const APP_CREATE: &str = "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*2B602296A79E0A8784ACC5C88D92E46588CCA3C3' REQUIRE SSL";

    #[test]
    fn chooses_accounts_with_grants_on_selected_objects_and_their_roles() {
        let src = vec![
            acct(
                "app",
                Some(APP_CREATE),
                &[
                    "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2B60' REQUIRE SSL",
                    "GRANT SELECT, INSERT ON `shop`.* TO `app`@`%`",
                    "GRANT SELECT (`id`) ON `crm`.`people` TO `app`@`%`",
                    "GRANT SELECT ON `other`.* TO `app`@`%`",
                    "GRANT `reader` TO `app`@`%`",
                    "SET DEFAULT ROLE `reader` FOR `app`@`%`",
                ],
            ),
            acct(
                "reader",
                None,
                &[
                    "GRANT USAGE ON *.* TO `reader`",
                    "GRANT SELECT ON `shop`.`orders` TO `reader`",
                ],
            ),
            acct(
                "admin",
                Some("CREATE USER `admin`@`%`"),
                &["GRANT ALL PRIVILEGES ON *.* TO `admin`@`%`"],
            ),
            acct(
                "via_role",
                Some("CREATE USER `via_role`@`%`"),
                &["GRANT `reader` TO `via_role`@`%`"],
            ),
            acct(
                "elsewhere",
                Some("CREATE USER `elsewhere`@`%`"),
                &["GRANT SELECT ON `other`.* TO `elsewhere`@`%`"],
            ),
            acct(
                "ferry",
                Some("CREATE USER `ferry`@`%`"),
                &["GRANT SELECT ON `shop`.* TO `ferry`@`%`"],
            ),
            acct(
                "mariadb.sys",
                Some("CREATE USER `mariadb.sys`@`%`"),
                &["GRANT SELECT ON `shop`.* TO `mariadb.sys`@`%`"],
            ),
            acct(
                "root",
                Some("CREATE USER `root`@`%`"),
                &["GRANT ALL PRIVILEGES ON `shop`.* TO `root`@`%`"],
            ),
        ];
        let p = plan(&src, &target(), &sel(), &opts());
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        let names: Vec<String> = p.accounts.iter().map(|a| a.name.to_string()).collect();
        assert_eq!(
            names,
            vec!["role 'reader'", "'app'@'%'", "'via_role'@'%'"],
            "roles first; no admin, other, ferry, system or root"
        );
        assert_eq!(p.accounts[2].grants, vec!["GRANT `reader` TO `via_role`@`%`"]);
        let app = &p.accounts[1];
        assert_eq!(app.create, APP_CREATE);
        assert_eq!(
            app.grants,
            vec![
                "GRANT USAGE ON *.* TO `app`@`%`",
                "GRANT SELECT, INSERT ON `shop2`.* TO `app`@`%`",
                "GRANT SELECT (`id`) ON `crm`.`persons` TO `app`@`%`",
                "GRANT `reader` TO `app`@`%`",
            ]
        );
        assert_eq!(app.default_roles, vec!["SET DEFAULT ROLE `reader` FOR `app`@`%`"]);
        let reader = &p.accounts[0];
        assert_eq!(reader.create, "CREATE ROLE `reader`");
        assert!(reader.mariadb_role);
        assert_eq!(
            reader.grants,
            vec![
                "GRANT USAGE ON *.* TO `reader`",
                "GRANT SELECT ON `shop2`.`orders2` TO `reader`"
            ]
        );
    }

    #[test]
    fn existing_accounts_and_missing_plugins_are_refused_by_name() {
        let src = vec![
            acct(
                "app",
                Some(APP_CREATE),
                &["GRANT SELECT ON `shop`.* TO `app`@`%`"],
            ),
            acct(
                "sha",
                Some("CREATE USER `sha`@`%` IDENTIFIED WITH 'caching_sha2_password' AS 0x2441"),
                &["GRANT SELECT ON `shop`.* TO `sha`@`%`"],
            ),
        ];
        let mut t = target();
        t.existing.insert(AccountName::new("app", "%"));
        let p = plan(&src, &t, &sel(), &opts());
        assert_eq!(p.refused.len(), 2, "{:?}", p.refused);
        assert!(p.refused[0].contains("'app'@'%' already exists on the target"));
        assert!(p.refused[1].contains("'sha'@'%' authenticates with caching_sha2_password"));
        // Created by this job's earlier run: applied again, not refused.
        t.created_by_job.insert(AccountName::new("app", "%"));
        let p = plan(&src, &t, &sel(), &opts());
        assert_eq!(p.accounts[0].action, AccountAction::AlreadyCreated);
        // Recorded, but the run died before its CREATE USER: created now.
        t.existing.remove(&AccountName::new("app", "%"));
        let p = plan(&src, &t, &sel(), &opts());
        assert_eq!(p.accounts[0].action, AccountAction::Create);
    }

    #[test]
    fn override_root_alters_the_targets_root() {
        let src = vec![acct(
            "root",
            Some("CREATE USER `root`@`localhost` IDENTIFIED BY PASSWORD '*AAAA'"),
            &[
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED BY PASSWORD '*AAAA' WITH GRANT OPTION",
                "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
            ],
        )];
        let mut src = src;
        src[0].name = AccountName::new("root", "localhost");
        let mut o = opts();
        o.copy = false;
        assert!(plan(&src, &target(), &sel(), &o).accounts.is_empty());
        o.override_root = true;
        let p = plan(&src, &target(), &sel(), &o);
        assert_eq!(p.accounts.len(), 1);
        assert_eq!(p.accounts[0].action, AccountAction::OverwriteRoot);
        assert_eq!(
            p.accounts[0].create,
            "ALTER USER `root`@`localhost` IDENTIFIED BY PASSWORD '*AAAA'"
        );
        assert_eq!(
            p.accounts[0].grants,
            vec!["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]
        );
        assert_eq!(p.skipped, vec!["'root'@'localhost': a PROXY grant"]);
        // Ferry's own target login is never touched, root or not.
        o.own.push(AccountName::new("root", "localhost"));
        assert!(plan(&src, &target(), &sel(), &o).accounts.is_empty());
    }

    #[test]
    fn mysql_to_mariadb_carries_plugin_and_hash_only() {
        let src = vec![acct(
            "app",
            Some(
                "CREATE USER `app`@`%` IDENTIFIED WITH 'mysql_native_password' AS '*2B60' REQUIRE SSL \
                 PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT",
            ),
            &["GRANT SELECT ON `shop`.* TO `app`@`%`"],
        )];
        let mut o = opts();
        o.source_mariadb = false;
        let p = plan(&src, &target(), &sel(), &o);
        assert_eq!(
            p.accounts[0].create,
            "CREATE USER `app`@`%` IDENTIFIED WITH mysql_native_password AS '*2B60' REQUIRE SSL"
        );
    }
}
