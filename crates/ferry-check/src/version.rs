//! Version items: each server's version is supported (MySQL 5.7, 8.0, 8.4+; MariaDB 10.3+), and
//! the pair is not a major-version downgrade; MariaDB ↔ MySQL is a WARNING listing the known
//! incompatibilities.

use ferry_core::{Flavor, ServerKind};

use crate::{Ctx, Skip, Verdict};

/// Is this server version supported?
pub(crate) fn judge_supported(side: &str, f: &Flavor) -> Verdict {
    if f.major == 0 {
        return Verdict::failed(format!(
            "cannot tell the {side}'s version from @@version = {:?}: Ferry supports MySQL 5.7, 8.0, 8.4+ \
             and MariaDB 10.3+",
            f.version
        ));
    }
    let ok = match f.kind {
        ServerKind::MariaDb => f.at_least(10, 3, 0),
        ServerKind::MySql => f.at_least(5, 7, 0),
    };
    if ok {
        Verdict::passed(format!("{side} is {f} ({})", f.version))
    } else {
        let need = match f.kind {
            ServerKind::MariaDb => "MariaDB 10.3 or later",
            ServerKind::MySql => "MySQL 5.7, 8.0 or 8.4+",
        };
        Verdict::failed(format!(
            "{side} is {f}, which Ferry does not support: it needs {need}. Upgrade the {side} server"
        ))
    }
}

const MARIA_TO_MYSQL: &str =
    "MariaDB → MySQL: known incompatibilities: MariaDB-only types (UUID, INET4, INET6 \
     fail to create), SEQUENCE objects and system-versioned tables have no MySQL equivalent, JSON columns \
     are LONGTEXT on MariaDB (they become LONGTEXT on MySQL, not JSON), the Aria engine and page \
     compression options are unknown to MySQL, utf8mb4_uca1400_* and other MariaDB collations do not \
     exist on MySQL, and MariaDB-specific SQL in views/routines (RETURNING, ROW TYPE OF, sql_mode=ORACLE) \
     will not parse. Review the charsets_collations and storage_engines items and test the structure phase";

const MYSQL_TO_MARIA: &str =
    "MySQL → MariaDB: known incompatibilities: utf8mb4_0900_* collations (the MySQL 8 \
     default) are unknown to MariaDB before 11.4.5 (use utf8mb4_unicode_520_ci or utf8mb4_uca1400_ai_ci), \
     JSON columns become LONGTEXT with a JSON_VALID check, functional indexes, expression defaults and \
     some generated-column expressions may differ, caching_sha2_password accounts do not exist in \
     MariaDB (DEFINER accounts must be created), and MySQL 8 SQL in views/routines (LATERAL, window \
     function variants, JSON_TABLE options) may not parse. Review the charsets_collations item and test \
     the structure phase";

/// Is the source → target pair allowed?
pub(crate) fn judge_direction(src: &Flavor, tgt: &Flavor, allow_downgrade: bool) -> Verdict {
    match (src.kind, tgt.kind) {
        (ServerKind::MariaDb, ServerKind::MySql) => {
            return Verdict::warning(format!("{src} → {tgt}. {MARIA_TO_MYSQL}"))
        }
        (ServerKind::MySql, ServerKind::MariaDb) => {
            return Verdict::warning(format!("{src} → {tgt}. {MYSQL_TO_MARIA}"))
        }
        _ => {}
    }
    let (s, t) = ((src.major, src.minor), (tgt.major, tgt.minor));
    if t < s {
        let msg = format!(
            "{src} → {tgt} is a major-version downgrade: tables, collations, syntax and system \
             variables of {}.{} may not exist on {}.{}",
            s.0, s.1, t.0, t.1
        );
        if allow_downgrade {
            Verdict::warning(format!(
                "{msg}; allowed by the job (allow_downgrade): test the structure phase first"
            ))
        } else {
            Verdict::failed(format!(
                "{msg}. Use a target of version {}.{} or later, or allow the downgrade explicitly in the \
                 job (allow_downgrade) after testing the structure phase",
                s.0, s.1
            ))
        }
    } else if t == s {
        Verdict::passed(format!("{src} → {tgt}: same major version"))
    } else {
        Verdict::passed(format!("{src} → {tgt}: upgrade"))
    }
}

pub(crate) fn source_supported(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_supported("source", &ctx.source()?.flavor()))
}

pub(crate) fn target_supported(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_supported("target", &ctx.target()?.flavor()))
}

pub(crate) fn direction(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?.flavor(), ctx.target()?.flavor());
    Ok(judge_direction(&s, &t, ctx.input.allow_downgrade))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;

    fn f(v: &str) -> Flavor {
        Flavor::from_version(v)
    }

    #[test]
    fn supported_versions() {
        for v in [
            "5.7.44-log",
            "8.0.36",
            "8.4.2",
            "9.1.0",
            "10.3.39-MariaDB",
            "10.11.6-MariaDB",
            "11.4.2-MariaDB",
        ] {
            assert_eq!(judge_supported("source", &f(v)).status, Passed, "{v}");
        }
        for v in ["5.6.51", "5.5.62", "10.2.44-MariaDB", "10.1.48-MariaDB", ""] {
            assert_eq!(judge_supported("source", &f(v)).status, Failed, "{v}");
        }
    }

    #[test]
    fn directions() {
        assert_eq!(judge_direction(&f("8.0.36"), &f("5.7.44"), false).status, Failed);
        assert_eq!(judge_direction(&f("8.0.36"), &f("5.7.44"), true).status, Warning);
        assert_eq!(
            judge_direction(&f("10.11.6-MariaDB"), &f("10.5.20-MariaDB"), false).status,
            Failed
        );
        assert_eq!(judge_direction(&f("8.4.0"), &f("8.0.36"), false).status, Failed);
        assert_eq!(judge_direction(&f("8.0.36"), &f("8.0.30"), false).status, Passed);
        assert_eq!(judge_direction(&f("5.7.44"), &f("8.4.2"), false).status, Passed);
        assert_eq!(
            judge_direction(&f("10.11.6-MariaDB"), &f("10.11.6-MariaDB"), false).status,
            Passed
        );
        let w = judge_direction(&f("10.11.6-MariaDB"), &f("8.0.36"), false);
        assert_eq!(w.status, Warning);
        assert!(w.message.contains("INET6"));
        let w = judge_direction(&f("8.0.36"), &f("10.11.6-MariaDB"), false);
        assert_eq!(w.status, Warning);
        assert!(w.message.contains("utf8mb4_0900"));
    }
}
