//! Object items: the selection exists on the source; what the target already holds; tables that
//! replay slowly (no key) or copy inconsistently (non-InnoDB); foreign keys to tables left out;
//! DEFINER accounts missing on the target; names that need care.

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::TableSchema;

use crate::facts::{Defined, ExistingTable, ForeignKey};
use crate::privileges::Grants;
use crate::{Ctx, Skip, Verdict};

/// At most `max` names, then "and N more".
pub(crate) fn list(names: &[String], max: usize) -> String {
    if names.len() <= max {
        names.join(", ")
    } else {
        format!("{} and {} more", names[..max].join(", "), names.len() - max)
    }
}

const MAX: usize = 20;

/// Explicitly selected objects missing on the source.
pub(crate) fn judge_source_objects_exist(missing: &[String], dbs: usize, tables: usize) -> Verdict {
    if !missing.is_empty() {
        return Verdict::failed(format!(
            "selected objects not found on the source: {}. Fix the names in the job's selection (names are \
             case-sensitive) or create them; a database or table the account has no privilege on is also \
             invisible to it",
            list(missing, MAX)
        ));
    }
    if tables == 0 {
        return Verdict::warning(format!(
            "the selection matches {dbs} database(s) but no table: nothing but structure would be copied"
        ));
    }
    Verdict::passed(format!("{dbs} database(s), {tables} table(s) selected"))
}

/// Selected tables (and views) that already exist on the target.
pub(crate) fn judge_existing(existing: &[ExistingTable], views: &[String], fail_nonempty: bool) -> Verdict {
    let mut full = Vec::new();
    let mut empty = Vec::new();
    let mut unknown = Vec::new();
    for e in existing {
        match &e.non_empty {
            Ok(true) => full.push(e.target.clone()),
            Ok(false) => empty.push(e.target.clone()),
            Err(why) => unknown.push(format!("{} ({why})", e.target)),
        }
    }
    let mut parts = Vec::new();
    if !full.is_empty() {
        parts.push(format!("tables with rows: {}", list(&full, MAX)));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "tables whose rows could not be read: {}",
            list(&unknown, MAX)
        ));
    }
    if !empty.is_empty() {
        parts.push(format!("empty tables: {}", list(&empty, MAX)));
    }
    if !views.is_empty() {
        parts.push(format!("views: {}", list(views, MAX)));
    }
    if parts.is_empty() {
        return Verdict::passed("none of the selected tables exists on the target");
    }
    let found = format!("already on the target: {}", parts.join("; "));
    if !full.is_empty() && fail_nonempty {
        Verdict::failed(format!(
            "{found}. With ExistingTables = fail the job stops on non-empty target tables: drop or rename \
             them on the target (DROP TABLE / RENAME TABLE), map the tables to other names, or choose \
             ExistingTables = truncate, drop or append in the job"
        ))
    } else if !full.is_empty() || !unknown.is_empty() {
        Verdict::warning(format!(
            "{found}. The job's ExistingTables policy (truncate, drop or append) applies to them; with append, \
             rows already there must not collide with the source's keys"
        ))
    } else {
        Verdict::warning(format!(
            "{found}. Their structure is kept or replaced as the ExistingTables policy says: check it matches \
             the source's"
        ))
    }
}

/// Tables without a primary key or unique NOT NULL key.
pub(crate) fn judge_without_key(tables: &[&TableSchema], target_invisible_pk: bool) -> Verdict {
    let keyless: Vec<String> = tables
        .iter()
        .filter(|t| t.row_key().is_none())
        .map(|t| t.display_name())
        .collect();
    if keyless.is_empty() {
        return Verdict::passed("every selected table has a primary key or a unique NOT NULL key");
    }
    let mut msg = format!(
        "{} table(s) have no primary key or unique NOT NULL key: {}. They are copied as one chunk \
         (no parallelism, no mid-table resume), replayed updates and deletes locate rows by all columns \
         (slower apply, and duplicate rows are indistinguishable), and verification cannot diff them by \
         key. Add a key on the source where possible: ALTER TABLE t ADD PRIMARY KEY (...)",
        keyless.len(),
        list(&keyless, MAX)
    );
    if target_invisible_pk {
        msg.push_str(
            "; the target has sql_generate_invisible_primary_key = ON, so it adds an invisible my_row_id \
             column to those without a primary key (see the target_invisible_primary_key item)",
        );
    }
    Verdict::warning(msg)
}

/// Non-InnoDB tables; FAILED when the target lacks the engine.
pub(crate) fn judge_engines(tables: &[&TableSchema], target_engines: Option<&BTreeSet<String>>) -> Verdict {
    let mut other = Vec::new();
    let mut unavailable = Vec::new();
    for t in tables {
        let engine = t.engine.clone().unwrap_or_default();
        if engine.is_empty() || engine.eq_ignore_ascii_case("InnoDB") {
            continue;
        }
        let item = format!("{} ({engine})", t.display_name());
        match target_engines {
            Some(set) if !set.contains(&engine.to_ascii_uppercase()) => unavailable.push(item),
            _ => other.push(item),
        }
    }
    if !unavailable.is_empty() {
        return Verdict::failed(format!(
            "tables use storage engines the target does not offer: {}. Convert them on the source (ALTER \
             TABLE ... ENGINE = InnoDB), or install the engine on the target (INSTALL SONAME / INSTALL \
             PLUGIN){}",
            list(&unavailable, MAX),
            if other.is_empty() {
                String::new()
            } else {
                format!("; other non-InnoDB tables: {}", list(&other, MAX))
            }
        ));
    }
    if other.is_empty() {
        return Verdict::passed("every selected table uses InnoDB");
    }
    Verdict::warning(format!(
        "non-InnoDB tables: {}. They are not transactional: the consistent snapshot does not cover them (rows \
         written during the load may be missed or copied twice) and replayed changes are not atomic with \
         other tables. Convert them where possible: ALTER TABLE ... ENGINE = InnoDB",
        list(&other, MAX)
    ))
}

/// True for the referential actions that change child rows when the parent row changes.
fn cascades(rule: &str) -> bool {
    let r = rule.trim().to_ascii_uppercase();
    r == "CASCADE" || r == "SET NULL" || r == "SET DEFAULT"
}

/// Foreign keys of selected child tables whose parent table is not selected.
///
/// A parent that is selected while its child is not is fine (the child's rows stay on the
/// source), so only the foreign keys of selected tables are given here.
pub(crate) fn judge_foreign_keys(
    fks: &[ForeignKey],
    selected: &BTreeSet<(String, String)>,
    incremental: bool,
) -> Verdict {
    let mut plain: Vec<String> = Vec::new();
    let mut cascading: Vec<String> = Vec::new();
    let mut parents: BTreeSet<String> = BTreeSet::new();
    for fk in fks {
        if selected.contains(&(fk.ref_db.clone(), fk.ref_table.clone())) {
            continue;
        }
        let item = format!(
            "{}.{} ({} → {}.{}, ON DELETE {}, ON UPDATE {})",
            fk.db,
            fk.table,
            fk.name,
            fk.ref_db,
            fk.ref_table,
            if fk.delete_rule.is_empty() {
                "?"
            } else {
                &fk.delete_rule
            },
            if fk.update_rule.is_empty() {
                "?"
            } else {
                &fk.update_rule
            },
        );
        parents.insert(format!("{}.{}", fk.ref_db, fk.ref_table));
        if cascades(&fk.delete_rule) || cascades(&fk.update_rule) {
            cascading.push(item);
        } else {
            plain.push(item);
        }
    }
    if plain.is_empty() && cascading.is_empty() {
        return Verdict::passed(format!(
            "{} foreign key(s), all referencing selected tables",
            fks.len()
        ));
    }
    let parents: Vec<String> = parents.into_iter().collect();
    let fix = format!("Select the parent table(s) too: {}", list(&parents, MAX));
    let mut parts = Vec::new();
    if !cascading.is_empty() {
        parts.push(format!(
            "foreign keys with CASCADE / SET NULL / SET DEFAULT actions reference tables that are not \
             selected: {}. On the source, a DELETE or UPDATE of a parent row changes these child rows \
             inside the storage engine; those cascaded changes are not written to the binlog, so Ferry \
             cannot see them: {}",
            list(&cascading, MAX),
            if incremental {
                "the incremental phase would leave the target's child rows as they were (rows the source \
                 deleted or changed stay on the target)"
            } else {
                "this job has no incremental phase, but one added later would miss them"
            }
        ));
    }
    if !plain.is_empty() {
        parts.push(format!(
            "foreign keys (RESTRICT / NO ACTION) reference tables that are not selected: {}",
            list(&plain, MAX)
        ));
    }
    let msg = format!(
        "{}. The parent tables are not migrated, so on the target these foreign keys would reference \
         tables that are not there: creating them fails unless the parent tables exist on the target. \
         {fix}; or create the parents on the target first, or drop these foreign keys",
        parts.join("; ")
    );
    Verdict::bad(incremental && !cascading.is_empty(), msg)
}

/// Splits `user@host` (definer form) at the last `@`.
pub(crate) fn split_definer(d: &str) -> (String, String) {
    match d.rsplit_once('@') {
        Some((u, h)) => (u.trim_matches('`').to_string(), h.trim_matches('`').to_string()),
        None => (d.to_string(), "%".to_string()),
    }
}

/// DEFINER accounts missing on the target.
pub(crate) fn judge_definers(
    defined: &[Defined],
    accounts: &Result<BTreeSet<(String, String)>, String>,
    target_user: &str,
    target_grants: Option<&Grants>,
) -> Verdict {
    if defined.is_empty() {
        return Verdict::passed("no views, routines, triggers or events selected");
    }
    let mut by_definer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in defined {
        by_definer
            .entry(d.definer.clone())
            .or_default()
            .push(format!("{} {}.{}", d.kind, d.db, d.name));
    }
    let (tu, th) = split_definer(target_user);
    let can_set_definer = target_grants.is_none_or(|g| {
        ["SUPER", "SET USER", "SET_USER_ID", "SET_ANY_DEFINER"]
            .iter()
            .any(|p| g.holds_global(p))
    });
    let foreign_definers = by_definer
        .keys()
        .any(|d| split_definer(d) != (tu.clone(), th.clone()));
    let privilege_note = if foreign_definers && !can_set_definer {
        format!(
            "; also, {target_user} on the target may not create objects for another DEFINER without SUPER \
             (MariaDB 10.5.2+: SET USER; MySQL 8: SET_USER_ID or SET_ANY_DEFINER): grant it or use Definer = \
             \"rewrite\""
        )
    } else {
        String::new()
    };
    let accounts = match accounts {
        Ok(a) => a,
        Err(e) => {
            return Verdict::warning(format!(
                "cannot read the target's accounts (SELECT User, Host FROM mysql.user: {e}); make sure these \
                 DEFINER accounts exist on the target, or use Definer = \"rewrite\": {}{privilege_note}",
                list(&by_definer.keys().cloned().collect::<Vec<_>>(), MAX)
            ))
        }
    };
    let mut missing = Vec::new();
    let mut create = Vec::new();
    for (definer, objects) in &by_definer {
        let (u, h) = split_definer(definer);
        if !accounts.contains(&(u.clone(), h.clone())) {
            missing.push(format!("{definer} (of {})", list(objects, 5)));
            create.push(format!(
                "CREATE USER {};",
                crate::connectivity::account_sql(&u, &h)
            ));
        }
    }
    if missing.is_empty() {
        if privilege_note.is_empty() {
            return Verdict::passed(format!(
                "every DEFINER account exists on the target ({} account(s))",
                by_definer.len()
            ));
        }
        return Verdict::warning(format!(
            "every DEFINER account exists on the target{privilege_note}"
        ));
    }
    Verdict::warning(format!(
        "DEFINER accounts missing on the target: {}. Views and routines with a missing definer fail when \
         used (triggers and events fail when they fire). Set Definer = \"rewrite\" in the job (objects are \
         created with the target account as definer) or create the accounts and their grants on the \
         target first: {}{privilege_note}",
        list(&missing, MAX),
        create.join(" ")
    ))
}

/// Names with characters that need care.
pub(crate) fn judge_names(names: &[String]) -> Verdict {
    let odd: Vec<String> = names
        .iter()
        .filter(|n| {
            !n.is_ascii()
                || n.chars()
                    .any(|c| c.is_control() || matches!(c, '`' | '/' | '\\' | '.'))
                || n.ends_with(' ')
        })
        .map(|n| format!("{n:?}"))
        .collect();
    if odd.is_empty() {
        return Verdict::passed("all selected names are plain ASCII");
    }
    Verdict::warning(format!(
        "names with non-ASCII or special characters: {}. Ferry quotes every name, but the target's \
         character_set_filesystem / lower_case_table_names and external scripts must handle them; check them \
         after the structure phase",
        list(&odd, MAX)
    ))
}

pub(crate) fn source_objects_exist(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    Ok(judge_source_objects_exist(
        &o.missing,
        o.dbs.len(),
        o.tables.len(),
    ))
}

pub(crate) fn target_existing_tables(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let t = ctx.target_objects()?;
    Ok(judge_existing(
        &t.existing,
        &t.existing_views,
        ctx.input.fail_on_nonempty_target_tables,
    ))
}

pub(crate) fn tables_without_key(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let invisible = ctx
        .target()
        .ok()
        .is_some_and(|t| crate::binlog::is_on(t.var("sql_generate_invisible_primary_key")));
    Ok(judge_without_key(&o.tables.iter().collect::<Vec<_>>(), invisible))
}

pub(crate) fn storage_engines(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let engines = ctx.target().ok().and_then(|t| t.engines.as_ref().ok());
    Ok(judge_engines(&o.tables.iter().collect::<Vec<_>>(), engines))
}

pub(crate) fn foreign_keys_to_unselected(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let selected: BTreeSet<(String, String)> =
        o.tables.iter().map(|t| (t.db.clone(), t.name.clone())).collect();
    Ok(judge_foreign_keys(
        &o.foreign_keys,
        &selected,
        ctx.input.incremental,
    ))
}

pub(crate) fn definers_on_target(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target_objects()?;
    let tf = ctx.target()?;
    let grants = tf.grants.as_ref().ok().map(|l| Grants::parse(l));
    Ok(judge_definers(
        &o.defined,
        &t.accounts,
        &tf.account,
        grants.as_ref(),
    ))
}

pub(crate) fn object_names(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let mut names: Vec<String> = o.dbs.iter().map(|d| d.name.clone()).collect();
    names.extend(o.tables.iter().map(|t| t.name.clone()));
    names.extend(o.views.iter().map(|(_, v)| v.clone()));
    Ok(judge_names(&names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;
    use ferry_core::{Column, ColumnKind};

    fn table(name: &str, engine: &str, pk: bool, unique_not_null: bool) -> TableSchema {
        let col = |n: &str, nullable| Column {
            name: n.into(),
            data_type: "int".into(),
            column_type: "int(11)".into(),
            kind: ColumnKind::Int { unsigned: false },
            nullable,
            generated: false,
            charset: None,
            collation: None,
        };
        TableSchema {
            db: "d".into(),
            name: name.into(),
            columns: vec![col("a", false), col("b", true)],
            primary_key: pk.then(|| vec![0]),
            unique_keys: if unique_not_null {
                vec![("u".into(), vec![0])]
            } else {
                vec![("ub".into(), vec![1])]
            },
            engine: Some(engine.into()),
            estimated_rows: 0,
            data_length: 0,
            system_time: None,
        }
    }

    #[test]
    fn source_objects() {
        assert_eq!(judge_source_objects_exist(&[], 1, 3).status, Passed);
        assert_eq!(judge_source_objects_exist(&[], 1, 0).status, Warning);
        let v = judge_source_objects_exist(&["database `nope`".into()], 0, 0);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("`nope`"));
    }

    #[test]
    fn existing_tables() {
        let e = |t: &str, r: Result<bool, String>| ExistingTable {
            target: t.into(),
            non_empty: r,
        };
        assert_eq!(judge_existing(&[], &[], true).status, Passed);
        let v = judge_existing(&[e("d.full", Ok(true)), e("d.empty", Ok(false))], &[], true);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("d.full") && v.message.contains("d.empty"));
        assert_eq!(
            judge_existing(&[e("d.full", Ok(true))], &[], false).status,
            Warning
        );
        assert_eq!(
            judge_existing(&[e("d.empty", Ok(false))], &[], true).status,
            Warning
        );
        assert_eq!(
            judge_existing(&[e("d.x", Err("denied".into()))], &[], true).status,
            Warning
        );
        assert_eq!(judge_existing(&[], &["d.v".into()], true).status, Warning);
    }

    #[test]
    fn keys_and_engines() {
        let good = table("good", "InnoDB", true, false);
        let uniq = table("uniq", "InnoDB", false, true);
        let keyless = table("keyless", "InnoDB", false, false);
        assert_eq!(judge_without_key(&[&good, &uniq], false).status, Passed);
        let v = judge_without_key(&[&good, &keyless], true);
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("d.keyless") && !v.message.contains("d.good"));
        assert!(v.message.contains("invisible"));

        let my = table("my", "MyISAM", true, false);
        let aria = table("ar", "Aria", true, false);
        assert_eq!(judge_engines(&[&good], None).status, Passed);
        let v = judge_engines(&[&good, &my], None);
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("d.my (MyISAM)"));
        let target: BTreeSet<String> = ["INNODB", "MYISAM"].iter().map(|s| s.to_string()).collect();
        assert_eq!(judge_engines(&[&my], Some(&target)).status, Warning);
        let v = judge_engines(&[&my, &aria], Some(&target));
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("d.ar (Aria)"));
    }

    #[test]
    fn foreign_keys() {
        let fk = |rt: &str, del: &str, upd: &str| ForeignKey {
            db: "d".into(),
            table: "child".into(),
            name: "fk1".into(),
            ref_db: "d".into(),
            ref_table: rt.into(),
            delete_rule: del.into(),
            update_rule: upd.into(),
        };
        let sel: BTreeSet<(String, String)> = [
            ("d".to_string(), "child".to_string()),
            ("d".to_string(), "parent".to_string()),
        ]
        .into();
        // The parent is selected: whatever the actions.
        for inc in [false, true] {
            let v = judge_foreign_keys(&[fk("parent", "CASCADE", "CASCADE")], &sel, inc);
            assert_eq!(v.status, Passed);
        }
        // RESTRICT / NO ACTION to an unselected parent: WARNING, full or incremental.
        for inc in [false, true] {
            let v = judge_foreign_keys(&[fk("other", "RESTRICT", "NO ACTION")], &sel, inc);
            assert_eq!(v.status, Warning, "{}", v.message);
            assert!(
                v.message
                    .contains("d.child (fk1 → d.other, ON DELETE RESTRICT, ON UPDATE NO ACTION)"),
                "{}",
                v.message
            );
            assert!(v.message.contains("Select the parent table(s) too: d.other"));
            assert!(!v.message.contains("binlog"));
        }
        // A cascading action: FAILED when the job replays, WARNING for a full-only job.
        for (del, upd) in [
            ("CASCADE", "RESTRICT"),
            ("RESTRICT", "SET NULL"),
            ("SET DEFAULT", "NO ACTION"),
        ] {
            let v = judge_foreign_keys(&[fk("other", del, upd)], &sel, true);
            assert_eq!(v.status, Failed, "{del}/{upd}: {}", v.message);
            assert!(v.message.contains("not written to the binlog"));
            assert!(v.message.contains(&format!("ON DELETE {del}, ON UPDATE {upd}")));
            let v = judge_foreign_keys(&[fk("other", del, upd)], &sel, false);
            assert_eq!(v.status, Warning, "{}", v.message);
            assert!(v.message.contains("one added later"));
        }
        // Both kinds together are listed apart.
        let mut two = fk("p2", "CASCADE", "CASCADE");
        two.name = "fk2".into();
        let v = judge_foreign_keys(&[fk("other", "RESTRICT", "RESTRICT"), two], &sel, true);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("d.other, d.p2"), "{}", v.message);
    }

    #[test]
    fn definers() {
        let d = |definer: &str| Defined {
            kind: "view".into(),
            db: "d".into(),
            name: "v".into(),
            definer: definer.into(),
        };
        let accounts: Result<BTreeSet<(String, String)>, String> =
            Ok([("ferry".to_string(), "%".to_string())].into());
        let all = Grants::parse(&["GRANT ALL PRIVILEGES ON *.* TO `ferry`@`%`"]);
        assert_eq!(
            judge_definers(&[], &accounts, "ferry@%", Some(&all)).status,
            Passed
        );
        assert_eq!(
            judge_definers(&[d("ferry@%")], &accounts, "ferry@%", Some(&all)).status,
            Passed
        );
        let v = judge_definers(&[d("app@10.0.0.%")], &accounts, "ferry@%", Some(&all));
        assert_eq!(v.status, Warning);
        assert!(
            v.message.contains("CREATE USER 'app'@'10.0.0.%';"),
            "{}",
            v.message
        );
        assert!(v.message.contains("rewrite"));
        let low = Grants::parse(&["GRANT CREATE VIEW ON *.* TO `ferry`@`%`"]);
        let ok_accounts: Result<BTreeSet<(String, String)>, String> = Ok([
            ("ferry".to_string(), "%".to_string()),
            ("app".to_string(), "%".to_string()),
        ]
        .into());
        let v = judge_definers(&[d("app@%")], &ok_accounts, "ferry@%", Some(&low));
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("SET USER"));
        let v = judge_definers(&[d("app@%")], &Err("denied".into()), "ferry@%", Some(&all));
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("app@%"));
    }

    #[test]
    fn names() {
        assert_eq!(judge_names(&["shop".into(), "orders_2024".into()]).status, Passed);
        let v = judge_names(&["shop".into(), "café".into()]);
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("café"));
        assert_eq!(judge_names(&["a.b".into()]).status, Warning);
    }
}
