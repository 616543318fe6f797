//! Target settings that refuse or reshape the selected objects: tables without a primary key
//! (`sql_require_primary_key`, MariaDB's `innodb_force_primary_key`, MySQL's generated invisible
//! primary keys), stored functions and triggers on a target that writes a binary log
//! (`log_bin_trust_function_creators`), and `sql_log_bin` for `Ferry.TargetBinlog = false`.

use ferry_core::{Flavor, TableSchema};

use crate::binlog::is_on;
use crate::connectivity::account_sql;
use crate::facts::Defined;
use crate::objects::list;
use crate::privileges::Grants;
use crate::{Ctx, Skip, Verdict};

const MAX: usize = 20;

fn is_innodb(t: &TableSchema) -> bool {
    t.engine
        .as_deref()
        .is_none_or(|e| e.is_empty() || e.eq_ignore_ascii_case("InnoDB"))
}

/// `user@host` → `'user'@'host'`.
fn account(current_user: &str) -> String {
    match current_user.rsplit_once('@') {
        Some((u, h)) => account_sql(u, h),
        None => account_sql(current_user, "%"),
    }
}

/// The target's settings that make it refuse tables without a primary key.
///
/// MySQL 8.0.13+ `sql_require_primary_key = ON` refuses any table without a PRIMARY KEY (error
/// 3750), unless `sql_generate_invisible_primary_key = ON` adds one (InnoDB tables only).
/// MariaDB's `innodb_force_primary_key = ON` refuses InnoDB tables without a primary key or a
/// unique NOT NULL key (error 1173).
pub(crate) fn judge_require_primary_key(
    target: &Flavor,
    require_pk: Option<&str>,
    gipk: Option<&str>,
    force_pk: Option<&str>,
    tables: &[&TableSchema],
) -> Verdict {
    if target.is_mariadb() {
        if !is_on(force_pk) {
            return Verdict::passed("innodb_force_primary_key = OFF on the target");
        }
        let refused: Vec<String> = tables
            .iter()
            .filter(|t| is_innodb(t) && t.row_key().is_none())
            .map(|t| t.display_name())
            .collect();
        if refused.is_empty() {
            return Verdict::passed(
                "innodb_force_primary_key = ON on the target; every selected InnoDB table has a primary \
                 key or a unique NOT NULL key",
            );
        }
        return Verdict::failed(format!(
            "the target has innodb_force_primary_key = ON, so creating InnoDB tables without a primary \
             key or unique NOT NULL key fails there (error 1173): {}. Run SET GLOBAL \
             innodb_force_primary_key = OFF on the target for the migration (and set it in its \
             configuration), or add a primary key on the source: ALTER TABLE ... ADD PRIMARY KEY (...)",
            list(&refused, MAX)
        ));
    }
    if !is_on(require_pk) {
        return Verdict::passed(format!(
            "sql_require_primary_key = {} on the target",
            require_pk.unwrap_or("OFF (not present)")
        ));
    }
    let gipk = is_on(gipk);
    let refused: Vec<String> = tables
        .iter()
        .filter(|t| t.primary_key.is_none() && !(gipk && is_innodb(t)))
        .map(|t| t.display_name())
        .collect();
    if refused.is_empty() {
        return Verdict::passed(if gipk {
            "sql_require_primary_key = ON on the target; selected InnoDB tables without a primary key get \
             a generated invisible one there (see target_invisible_primary_key)"
        } else {
            "sql_require_primary_key = ON on the target; every selected table has a primary key"
        });
    }
    Verdict::failed(format!(
        "the target has sql_require_primary_key = ON, so creating tables without a PRIMARY KEY fails there \
         (error 3750; a unique key is not enough): {}. Run SET GLOBAL sql_require_primary_key = 0 on the \
         target for the migration (on a managed service, in its parameter group), or add a primary key on \
         the source: ALTER TABLE ... ADD PRIMARY KEY (...)",
        list(&refused, MAX)
    ))
}

/// MySQL 8.0.30+ `sql_generate_invisible_primary_key = ON` on the target.
pub(crate) fn judge_invisible_primary_key(
    target: &Flavor,
    gipk: Option<&str>,
    tables: &[&TableSchema],
    incremental: bool,
) -> Verdict {
    if target.is_mariadb() {
        return Verdict::passed(
            "not applicable: sql_generate_invisible_primary_key is a MySQL 8.0.30+ setting",
        );
    }
    if !is_on(gipk) {
        return Verdict::passed(format!(
            "sql_generate_invisible_primary_key = {} on the target",
            gipk.unwrap_or("OFF (not present)")
        ));
    }
    let reshaped: Vec<String> = tables
        .iter()
        .filter(|t| t.primary_key.is_none() && is_innodb(t))
        .map(|t| t.display_name())
        .collect();
    if reshaped.is_empty() {
        return Verdict::passed(
            "sql_generate_invisible_primary_key = ON on the target; every selected InnoDB table has a \
             primary key, so none gets a generated one",
        );
    }
    let consequence = if incremental {
        "the rows the source writes to its binlog do not carry that column, so the incremental phase cannot \
         replay changes of these tables (the row shape does not match the target's)"
    } else {
        "the target tables then differ in shape from the source's (an extra column and key); this job has no \
         incremental phase, but one added later could not replay these tables"
    };
    Verdict::bad(
        incremental,
        format!(
            "the target has sql_generate_invisible_primary_key = ON: it adds an invisible my_row_id column \
             and primary key to tables created without a primary key: {}. {consequence}. Run SET GLOBAL \
             sql_generate_invisible_primary_key = OFF on the target before the structure phase (it only \
             affects tables created while it is ON; on a managed service, in its parameter group), or add \
             a primary key on the source: ALTER TABLE ... ADD PRIMARY KEY (...)",
            list(&reshaped, MAX)
        ),
    )
}

/// Stored functions and triggers on a target that writes a binary log: without SUPER they need
/// `log_bin_trust_function_creators = ON` (error 1419, MySQL and MariaDB).
pub(crate) fn judge_function_creators(
    log_bin: Option<&str>,
    trust: Option<&str>,
    has_super: Result<bool, String>,
    current_user: &str,
    defined: &[Defined],
) -> Verdict {
    let objects: Vec<String> = defined
        .iter()
        .filter(|d| d.kind == "function" || d.kind == "trigger")
        .map(|d| format!("{} {}.{}", d.kind, d.db, d.name))
        .collect();
    if objects.is_empty() {
        return Verdict::passed("no stored functions or triggers selected");
    }
    if !is_on(log_bin) {
        return Verdict::passed(
            "the target writes no binary log (log_bin = OFF): functions and triggers need no SUPER",
        );
    }
    if is_on(trust) {
        return Verdict::passed(
            "log_bin_trust_function_creators = ON on the target: functions and triggers can be created \
             without SUPER",
        );
    }
    let problem = format!(
        "the target writes a binary log (log_bin = ON) with log_bin_trust_function_creators = OFF: creating \
         stored functions and triggers there needs SUPER (error 1419), and Ferry creates them after the \
         data (so a failure comes late). Selected: {}",
        list(&objects, MAX)
    );
    let fixes = format!(
        "either run SET GLOBAL log_bin_trust_function_creators = 1 on the target (and set it in its \
         configuration; on a managed service, in its parameter group), or GRANT SUPER ON *.* TO {}",
        account(current_user)
    );
    match has_super {
        Ok(true) => Verdict::passed(format!(
            "log_bin = ON and log_bin_trust_function_creators = OFF on the target, but {current_user} has \
             SUPER: functions and triggers can be created (functions must be declared DETERMINISTIC, NO SQL \
             or READS SQL DATA, error 1418)"
        )),
        Ok(false) => Verdict::failed(format!("{problem}. {current_user} lacks SUPER: {fixes}")),
        Err(e) => Verdict::warning(format!(
            "{problem}. The grants of {current_user} could not be read ({e}): unless it has SUPER, {fixes}"
        )),
    }
}

/// The global privileges that allow `SET SESSION sql_log_bin`, by target flavor; the first one is
/// the one the fix grants (the narrowest that certainly works).
pub(crate) fn sql_log_bin_privileges(target: &Flavor) -> &'static [&'static str] {
    if target.is_mariadb() {
        if target.at_least(10, 5, 2) {
            &["BINLOG ADMIN", "SUPER"]
        } else {
            &["SUPER"]
        }
    } else if target.at_least(8, 0, 14) {
        &["SYSTEM_VARIABLES_ADMIN", "SESSION_VARIABLES_ADMIN", "SUPER"]
    } else if target.at_least(8, 0, 0) {
        &["SYSTEM_VARIABLES_ADMIN", "SUPER"]
    } else {
        &["SUPER"]
    }
}

/// `Ferry.TargetBinlog = false`: the target account must be allowed to set `sql_log_bin = 0`.
pub(crate) fn judge_sql_log_bin(
    target_binlog: bool,
    target: &Flavor,
    current_user: &str,
    grants: &Result<Vec<String>, String>,
) -> Verdict {
    if target_binlog {
        return Verdict::passed(
            "not needed: Ferry.TargetBinlog is true, so Ferry's writes go to the target's binary log as usual",
        );
    }
    let privs = sql_log_bin_privileges(target);
    let names = privs.join(" or ");
    let lines = match grants {
        Ok(l) => l,
        Err(e) => {
            return Verdict::failed(format!(
                "Ferry.TargetBinlog = false sets sql_log_bin = 0 in Ferry's target sessions, which needs {names} \
                 on the target; the grants of {current_user} could not be read (SHOW GRANTS: {e})"
            ))
        }
    };
    let g = Grants::parse(lines);
    if let Some(p) = privs.iter().find(|p| g.holds_global(p)) {
        return Verdict::passed(format!(
            "Ferry.TargetBinlog = false: {current_user} has {p}, so it may set sql_log_bin = 0"
        ));
    }
    let msg = format!(
        "Ferry.TargetBinlog = false sets sql_log_bin = 0 in Ferry's target sessions, which needs {names} on \
         {target}; {current_user} has none, so every target connection of the job would fail. Run GRANT {} ON \
         *.* TO {}; or set Ferry.TargetBinlog = true",
        privs[0],
        account(current_user)
    );
    let roles = g.roles();
    if roles.is_empty() {
        Verdict::failed(msg)
    } else {
        Verdict::warning(format!(
            "{msg} (the account also has roles granted ({}); privileges that come through roles are not \
             evaluated)",
            roles.join("; ")
        ))
    }
}

pub(crate) fn require_primary_key(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target()?;
    Ok(judge_require_primary_key(
        &t.flavor(),
        t.var("sql_require_primary_key"),
        t.var("sql_generate_invisible_primary_key"),
        t.var("innodb_force_primary_key"),
        &o.tables.iter().collect::<Vec<_>>(),
    ))
}

pub(crate) fn invisible_primary_key(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target()?;
    Ok(judge_invisible_primary_key(
        &t.flavor(),
        t.var("sql_generate_invisible_primary_key"),
        &o.tables.iter().collect::<Vec<_>>(),
        ctx.input.incremental,
    ))
}

pub(crate) fn function_creators(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target()?;
    let has_super = t
        .grants
        .as_ref()
        .map(|l| Grants::parse(l).holds_global("SUPER"))
        .map_err(Clone::clone);
    Ok(judge_function_creators(
        t.var("log_bin"),
        t.var("log_bin_trust_function_creators"),
        has_super,
        &t.account,
        &o.defined,
    ))
}

pub(crate) fn sql_log_bin(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    if ctx.input.target_binlog {
        return Ok(judge_sql_log_bin(
            true,
            &Flavor::from_version(""),
            "",
            &Ok(Vec::new()),
        ));
    }
    let t = ctx.target()?;
    Ok(judge_sql_log_bin(false, &t.flavor(), &t.account, &t.grants))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;
    use ferry_core::{Column, ColumnKind};

    /// A table with a primary key, only a unique NOT NULL key, or no key at all.
    fn table(name: &str, engine: &str, pk: bool, unique_not_null: bool) -> TableSchema {
        let col = |n: &str| Column {
            name: n.into(),
            data_type: "int".into(),
            column_type: "int".into(),
            kind: ColumnKind::Int { unsigned: false },
            nullable: false,
            generated: false,
            charset: None,
            collation: None,
        };
        TableSchema {
            db: "d".into(),
            name: name.into(),
            columns: vec![col("a"), col("b")],
            primary_key: pk.then(|| vec![0]),
            unique_keys: if unique_not_null {
                vec![("u".into(), vec![1])]
            } else {
                Vec::new()
            },
            engine: Some(engine.into()),
            estimated_rows: 0,
            data_length: 0,
            system_time: None,
        }
    }

    fn mysql() -> Flavor {
        Flavor::from_version("8.0.36")
    }
    fn maria() -> Flavor {
        Flavor::from_version("10.11.6-MariaDB-0+deb12u1-log")
    }

    #[test]
    fn require_primary_key_mysql() {
        let pk = table("pk", "InnoDB", true, false);
        let uniq = table("uniq", "InnoDB", false, true);
        let none = table("none", "InnoDB", false, false);
        let my = table("my", "MyISAM", false, false);
        // SHOW GLOBAL VARIABLES on MySQL 8.0/8.4 answers ON / OFF.
        assert_eq!(
            judge_require_primary_key(&mysql(), Some("OFF"), Some("OFF"), None, &[&none]).status,
            Passed
        );
        assert_eq!(
            judge_require_primary_key(&mysql(), Some("ON"), Some("OFF"), None, &[&pk]).status,
            Passed
        );
        let v = judge_require_primary_key(&mysql(), Some("ON"), Some("OFF"), None, &[&pk, &uniq, &none]);
        assert_eq!(v.status, Failed);
        assert!(
            v.message.contains("d.uniq, d.none"),
            "a unique key is not enough: {}",
            v.message
        );
        assert!(!v.message.contains("d.pk"));
        assert!(v.message.contains("SET GLOBAL sql_require_primary_key = 0"));
        assert!(v.message.contains("3750"));
        // A GIPK target adds keys to InnoDB tables, not to MyISAM ones.
        let v = judge_require_primary_key(&mysql(), Some("ON"), Some("ON"), None, &[&none, &my]);
        assert_eq!(v.status, Failed);
        assert!(
            v.message.contains("d.my") && !v.message.contains("d.none"),
            "{}",
            v.message
        );
        assert_eq!(
            judge_require_primary_key(&mysql(), Some("ON"), Some("ON"), None, &[&none]).status,
            Passed
        );
        // MySQL 5.7 has no such variable.
        assert_eq!(
            judge_require_primary_key(&Flavor::from_version("5.7.44-log"), None, None, None, &[&none]).status,
            Passed
        );
    }

    #[test]
    fn require_primary_key_mariadb() {
        let uniq = table("uniq", "InnoDB", false, true);
        let none = table("none", "InnoDB", false, false);
        let aria = table("aria", "Aria", false, false);
        assert_eq!(
            judge_require_primary_key(&maria(), None, None, Some("OFF"), &[&none]).status,
            Passed
        );
        let v = judge_require_primary_key(&maria(), None, None, Some("ON"), &[&uniq, &none, &aria]);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("d.none"));
        assert!(
            !v.message.contains("d.uniq") && !v.message.contains("d.aria"),
            "{}",
            v.message
        );
        assert!(v.message.contains("SET GLOBAL innodb_force_primary_key = OFF"));
    }

    #[test]
    fn invisible_primary_key() {
        let pk = table("pk", "InnoDB", true, false);
        let uniq = table("uniq", "InnoDB", false, true);
        let my = table("my", "MyISAM", false, false);
        assert_eq!(
            judge_invisible_primary_key(&maria(), Some("ON"), &[&uniq], true).status,
            Passed
        );
        assert_eq!(
            judge_invisible_primary_key(&mysql(), Some("OFF"), &[&uniq], true).status,
            Passed
        );
        assert_eq!(
            judge_invisible_primary_key(&mysql(), None, &[&uniq], true).status,
            Passed,
            "MySQL before 8.0.30 has no GIPK"
        );
        assert_eq!(
            judge_invisible_primary_key(&mysql(), Some("ON"), &[&pk, &my], true).status,
            Passed,
            "GIPK is for InnoDB tables only"
        );
        // A unique NOT NULL key is no PRIMARY KEY: the table still gets my_row_id.
        let v = judge_invisible_primary_key(&mysql(), Some("ON"), &[&pk, &uniq], true);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("d.uniq") && v.message.contains("my_row_id"));
        assert!(v
            .message
            .contains("SET GLOBAL sql_generate_invisible_primary_key = OFF"));
        assert!(v.message.contains("binlog"));
        let v = judge_invisible_primary_key(&mysql(), Some("ON"), &[&uniq], false);
        assert_eq!(v.status, Warning);
    }

    fn defined(kind: &str, name: &str) -> Defined {
        Defined {
            kind: kind.into(),
            db: "d".into(),
            name: name.into(),
            definer: "app@%".into(),
        }
    }

    #[test]
    fn function_creators() {
        let f = [
            defined("function", "f"),
            defined("trigger", "trg"),
            defined("procedure", "p"),
        ];
        let procs = [defined("procedure", "p"), defined("view", "v")];
        let on = Some("ON");
        let off = Some("OFF");
        assert_eq!(
            judge_function_creators(on, off, Ok(false), "ferry@%", &procs).status,
            Passed,
            "procedures and views need no SUPER"
        );
        assert_eq!(
            judge_function_creators(off, off, Ok(false), "ferry@%", &f).status,
            Passed
        );
        assert_eq!(
            judge_function_creators(on, on, Ok(false), "ferry@%", &f).status,
            Passed
        );
        assert_eq!(
            judge_function_creators(on, off, Ok(true), "ferry@%", &f).status,
            Passed
        );
        let v = judge_function_creators(on, off, Ok(false), "ferry@%", &f);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("function d.f") && v.message.contains("trigger d.trg"));
        assert!(!v.message.contains("procedure d.p"));
        assert!(v
            .message
            .contains("SET GLOBAL log_bin_trust_function_creators = 1"));
        assert!(v.message.contains("GRANT SUPER ON *.* TO 'ferry'@'%'"));
        assert!(v.message.contains("1419"));
        assert_eq!(
            judge_function_creators(on, off, Err("denied".into()), "ferry@%", &f).status,
            Warning
        );
    }

    #[test]
    fn sql_log_bin_privileges_by_flavor() {
        let l = |lines: &[&str]| Ok(lines.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            judge_sql_log_bin(true, &mysql(), "ferry@%", &Err("x".into())).status,
            Passed
        );
        // MySQL 8: SHOW GRANTS lists dynamic privileges comma-joined on their own line.
        let dynamic = l(&[
            "GRANT SELECT, INSERT ON *.* TO `ferry`@`%`",
            "GRANT SESSION_VARIABLES_ADMIN,XA_RECOVER_ADMIN ON *.* TO `ferry`@`%`",
        ]);
        assert_eq!(
            judge_sql_log_bin(false, &mysql(), "ferry@%", &dynamic).status,
            Passed
        );
        let plain = l(&["GRANT ALL PRIVILEGES ON `shop`.* TO `ferry`@`%`"]);
        let v = judge_sql_log_bin(false, &mysql(), "ferry@%", &plain);
        assert_eq!(v.status, Failed);
        assert!(
            v.message
                .contains("SYSTEM_VARIABLES_ADMIN or SESSION_VARIABLES_ADMIN or SUPER"),
            "{}",
            v.message
        );
        assert!(v
            .message
            .contains("GRANT SYSTEM_VARIABLES_ADMIN ON *.* TO 'ferry'@'%'"));
        assert!(!v.message.contains("BINLOG ADMIN"));
        // MariaDB 10.5.2+: SUPER or BINLOG ADMIN.
        let v = judge_sql_log_bin(false, &maria(), "ferry@%", &plain);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("BINLOG ADMIN or SUPER"), "{}", v.message);
        assert!(v.message.contains("GRANT BINLOG ADMIN ON *.* TO 'ferry'@'%'"));
        assert!(!v.message.contains("VARIABLES_ADMIN"));
        let admin = l(&["GRANT BINLOG ADMIN ON *.* TO `ferry`@`%`"]);
        assert_eq!(
            judge_sql_log_bin(false, &maria(), "ferry@%", &admin).status,
            Passed
        );
        let old = Flavor::from_version("10.4.30-MariaDB");
        assert_eq!(judge_sql_log_bin(false, &old, "ferry@%", &admin).status, Failed);
        let all = l(&["GRANT ALL PRIVILEGES ON *.* TO `ferry`@`%`"]);
        assert_eq!(judge_sql_log_bin(false, &maria(), "ferry@%", &all).status, Passed);
        let role = l(&["GRANT USAGE ON *.* TO `ferry`@`%`", "GRANT `dba` TO `ferry`@`%`"]);
        assert_eq!(
            judge_sql_log_bin(false, &mysql(), "ferry@%", &role).status,
            Warning
        );
    }
}
