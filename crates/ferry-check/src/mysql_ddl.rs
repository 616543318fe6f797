//! MySQL-only table DDL towards a MariaDB target.
//!
//! The structure phase applies the source's `SHOW CREATE TABLE` text verbatim. MariaDB executes
//! MySQL's versioned comments `/*!800xx … */` (its version numbers are above 80000), so the
//! MySQL 8 clauses inside them reach MariaDB's parser:
//!
//! - `/*!80003 SRID n */` on spatial columns: a syntax error;
//! - `/*!80016 NOT ENFORCED */` on CHECK constraints: a syntax error;
//! - functional key parts `((expr))` (MySQL 8.0.13+): MariaDB has no functional indexes;
//! - `utf8mb3_*` collation names (MySQL 8.0.30+): MariaDB before 10.6.1 names them `utf8_*`.
//!
//! `/*!80023 INVISIBLE */` is fine (MariaDB 10.3+ has invisible columns). Other `/*!8xxxx`
//! comments are unknown to this check and reported as a WARNING.

use ferry_core::Flavor;

use crate::objects::list;
use crate::{Ctx, Skip, Verdict};

/// Versioned comments MariaDB is known to accept.
const HARMLESS: &[&str] = &["/*!80023 INVISIBLE */"];

/// True when a key definition line has a functional key part: a part that starts with `(`.
fn functional_key_part(line: &str) -> bool {
    let l = line.trim_start();
    let upper = l.to_ascii_uppercase();
    let is_key = [
        "KEY ",
        "UNIQUE KEY ",
        "INDEX ",
        "UNIQUE INDEX ",
        "PRIMARY KEY ",
        "FULLTEXT KEY ",
        "SPATIAL KEY ",
    ]
    .iter()
    .any(|k| upper.starts_with(k));
    if !is_key {
        return false;
    }
    // Find the key part list: the first `(` outside backticks and quotes.
    let bytes = l.as_bytes();
    let mut quote: Option<u8> = None;
    let mut depth = 0usize;
    let mut at_part_start = false;
    for &c in bytes {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'`' | b'\'' | b'"' => {
                quote = Some(c);
                at_part_start = false;
            }
            b'(' => {
                if depth == 1 && at_part_start {
                    return true;
                }
                depth += 1;
                at_part_start = depth == 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    // The list ended (what follows is USING / COMMENT / ...).
                    return false;
                }
                at_part_start = false;
            }
            b',' if depth == 1 => at_part_start = true,
            b' ' | b'\t' => {}
            _ => at_part_start = false,
        }
    }
    false
}

/// What in one table's DDL fails on the target: (failing reasons, unknown versioned comments).
pub(crate) fn scan_ddl(ddl: &str, target: &Flavor) -> (Vec<&'static str>, Vec<String>) {
    let mut fails = Vec::new();
    if ddl.contains("/*!80003 SRID") {
        fails.push("SRID column attribute (/*!80003 SRID n */)");
    }
    if ddl.contains("/*!80016 NOT ENFORCED") {
        fails.push("CHECK ... NOT ENFORCED (/*!80016 NOT ENFORCED */)");
    }
    if ddl.lines().any(functional_key_part) {
        fails.push("functional index key part ((expr))");
    }
    if !target.at_least(10, 6, 1) && ddl.to_ascii_lowercase().contains("utf8mb3_") {
        fails.push("utf8mb3_* collation names (MariaDB before 10.6.1 calls them utf8_*)");
    }
    let mut unknown = Vec::new();
    let mut rest = ddl;
    while let Some(i) = rest.find("/*!8") {
        let tail = &rest[i..];
        let end = tail.find("*/").map(|e| e + 2).unwrap_or(tail.len());
        let comment = &tail[..end];
        let known = HARMLESS.contains(&comment)
            || comment.starts_with("/*!80003 SRID")
            || comment.starts_with("/*!80016 NOT ENFORCED");
        if !known && !unknown.iter().any(|u: &String| u == comment) {
            unknown.push(comment.to_string());
        }
        rest = &tail[end.max(1)..];
    }
    (fails, unknown)
}

/// The verdict over every selected table's DDL.
pub(crate) fn judge_mysql_only_ddl(
    source: &Flavor,
    target: &Flavor,
    ddl: &[(String, Result<String, String>)],
) -> Verdict {
    if source.is_mariadb() || !target.is_mariadb() {
        return Verdict::passed("not applicable: this check is for MySQL → MariaDB jobs");
    }
    let mut failing = Vec::new();
    let mut unknown = Vec::new();
    let mut unread = Vec::new();
    for (table, text) in ddl {
        match text {
            Ok(t) => {
                let (f, u) = scan_ddl(t, target);
                if !f.is_empty() {
                    failing.push(format!("{table} ({})", f.join(", ")));
                }
                if !u.is_empty() {
                    unknown.push(format!("{table} ({})", u.join(" ")));
                }
            }
            Err(e) => unread.push(format!("{table} ({e})")),
        }
    }
    let mut parts = Vec::new();
    if !failing.is_empty() {
        parts.push(format!(
            "these tables use MySQL-only DDL that fails on {target}: {}. Ferry applies SHOW CREATE TABLE \
             as it is, and MariaDB executes MySQL's /*!800xx ... */ comments. Change them on the source \
             first (drop the SRID attribute or the NOT ENFORCED clause, replace a functional index by an \
             index on a generated column, convert utf8mb3 to utf8mb4: ALTER TABLE ... CONVERT TO CHARACTER \
             SET utf8mb4), or create these tables on the target yourself and use ExistingTables = append",
            list(&failing, 20)
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "these tables carry MySQL 8 versioned comments that MariaDB executes as SQL: {}; check that \
             {target} accepts them (test the structure phase)",
            list(&unknown, 20)
        ));
    }
    if !unread.is_empty() {
        parts.push(format!(
            "SHOW CREATE TABLE could not be read for: {}",
            list(&unread, 20)
        ));
    }
    if parts.is_empty() {
        return Verdict::passed(format!(
            "the {} selected table(s) use no MySQL-only DDL known to fail on {target}",
            ddl.len()
        ));
    }
    Verdict::bad(!failing.is_empty(), parts.join(". "))
}

pub(crate) fn mysql_only_ddl(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let s = ctx.source()?;
    let t = ctx.target()?;
    if s.is_mariadb() || !t.is_mariadb() {
        return Ok(judge_mysql_only_ddl(&s.flavor(), &t.flavor(), &[]));
    }
    let o = ctx.objects()?;
    Ok(judge_mysql_only_ddl(&s.flavor(), &t.flavor(), &o.ddl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;

    fn my() -> Flavor {
        Flavor::from_version("8.0.36")
    }
    fn maria(v: &str) -> Flavor {
        Flavor::from_version(&format!("{v}-MariaDB"))
    }

    // SHOW CREATE TABLE output of MySQL 8.0/8.4, as the reference manual shows it.
    const SPATIAL: &str = "CREATE TABLE `geom` (\n  `id` int NOT NULL,\n  `g` geometry NOT NULL /*!80003 SRID 4326 */,\n  PRIMARY KEY (`id`),\n  SPATIAL KEY `g` (`g`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";
    const CHECK: &str = "CREATE TABLE `t1` (\n  `c1` int DEFAULT NULL,\n  `c2` int DEFAULT NULL,\n  CONSTRAINT `t1_chk_1` CHECK ((`c1` <> `c2`)),\n  CONSTRAINT `c2_positive` CHECK ((`c2` > 0)) /*!80016 NOT ENFORCED */\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";
    const FUNCTIONAL: &str = "CREATE TABLE `t1` (\n  `col1` int DEFAULT NULL,\n  `col2` int DEFAULT NULL,\n  KEY `functional_index` ((abs(`col1`))),\n  KEY `mixed` (`col2`,((`col1` + `col2`)) DESC)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";
    const UTF8MB3: &str = "CREATE TABLE `legacy` (\n  `id` int NOT NULL,\n  `name` varchar(20) COLLATE utf8mb3_bin DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci";
    const PLAIN: &str = "CREATE TABLE `plain` (\n  `id` int NOT NULL,\n  `secret` int DEFAULT NULL /*!80023 INVISIBLE */,\n  `a` varchar(10) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `a_prefix` (`a`(5)),\n  KEY `two` (`id`,`a`),\n  KEY `odd``name(` (`a`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";

    fn one(name: &str, ddl: &str) -> Vec<(String, Result<String, String>)> {
        vec![(format!("d.{name}"), Ok(ddl.to_string()))]
    }

    #[test]
    fn functional_key_parts() {
        assert!(functional_key_part("  KEY `f` ((abs(`col1`))),"));
        assert!(functional_key_part("  UNIQUE KEY `u` (`a`,((`a` + 1)))"));
        assert!(functional_key_part("  KEY `m` (`col2`,((`col1` + `col2`)) DESC)"));
        assert!(!functional_key_part("  KEY `a_prefix` (`a`(5)),"));
        assert!(!functional_key_part("  PRIMARY KEY (`id`),"));
        assert!(!functional_key_part("  KEY `odd``name(` (`a`)"));
        assert!(!functional_key_part("  CONSTRAINT `c` CHECK ((`c2` > 0))"));
        assert!(!functional_key_part("  `g` geometry NOT NULL,"));
    }

    #[test]
    fn each_mysql_only_clause_fails_on_mariadb() {
        let t = maria("10.11.6");
        for (name, ddl, needle) in [
            ("geom", SPATIAL, "SRID"),
            ("chk", CHECK, "NOT ENFORCED"),
            ("fn", FUNCTIONAL, "functional index"),
        ] {
            let v = judge_mysql_only_ddl(&my(), &t, &one(name, ddl));
            assert_eq!(v.status, Failed, "{name}: {}", v.message);
            assert!(v.message.contains(&format!("d.{name} (")), "{}", v.message);
            assert!(v.message.contains(needle), "{}", v.message);
        }
        // utf8mb3 collation names: MariaDB 10.6.1+ knows them, 10.5 does not.
        assert_eq!(
            judge_mysql_only_ddl(&my(), &t, &one("legacy", UTF8MB3)).status,
            Passed
        );
        let v = judge_mysql_only_ddl(&my(), &maria("10.5.22"), &one("legacy", UTF8MB3));
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("utf8mb3_"));
        // INVISIBLE, prefixes and odd names are fine.
        let v = judge_mysql_only_ddl(&my(), &t, &one("plain", PLAIN));
        assert_eq!(v.status, Passed, "{}", v.message);
    }

    #[test]
    fn unknown_versioned_comments_warn_and_other_directions_pass() {
        let t = maria("11.4.2");
        let ddl = "CREATE TABLE `x` (\n  `id` int NOT NULL /*!80099 FUTURE THING */\n) ENGINE=InnoDB";
        let v = judge_mysql_only_ddl(&my(), &t, &one("x", ddl));
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("/*!80099 FUTURE THING */"));
        let v = judge_mysql_only_ddl(&my(), &t, &[("d.gone".into(), Err("1146".into()))]);
        assert_eq!(v.status, Warning);
        for (s, tg) in [
            (my(), my()),
            (maria("10.11.6"), maria("10.11.6")),
            (maria("10.11.6"), my()),
        ] {
            assert_eq!(
                judge_mysql_only_ddl(&s, &tg, &one("geom", SPATIAL)).status,
                Passed
            );
        }
    }
}
