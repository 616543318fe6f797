//! Compatibility items: settings of the two servers that change how names, text, dates and large
//! rows land on the target: lower_case_table_names, charsets and collations, server defaults,
//! sql_mode, innodb_strict_mode, max_allowed_packet, time zones and clocks.

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::{ColumnKind, TableSchema};

use crate::facts::{ServerFacts, SourceObjects};
use crate::objects::list;
use crate::{Ctx, Skip, Verdict};

/// `lower_case_table_names` of both sides, against the selected names.
pub(crate) fn judge_lctn(src: Option<u64>, tgt: Option<u64>, names: &[String]) -> Verdict {
    let (s, t) = (src.unwrap_or(0), tgt.unwrap_or(0));
    if s == t {
        return Verdict::passed(format!("lower_case_table_names = {s} on both servers"));
    }
    if s == 0 {
        let mut by_lower: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        for n in names {
            by_lower.entry(n.to_lowercase()).or_default().push(n);
        }
        let clashes: Vec<String> = by_lower
            .values()
            .filter(|v| v.len() > 1)
            .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" / "))
            .collect();
        if !clashes.is_empty() {
            return Verdict::failed(format!(
                "the source is case-sensitive (lower_case_table_names = 0) and the target is not ({t}): these \
                 names differ only in case and would collide on the target: {}. Rename them in the job's \
                 mapping, or use a target with lower_case_table_names = 0",
                list(&clashes, 20)
            ));
        }
        let upper: Vec<String> = names
            .iter()
            .filter(|n| n.to_lowercase() != **n)
            .cloned()
            .collect();
        if upper.is_empty() {
            return Verdict::passed(format!(
                "lower_case_table_names: source 0, target {t}; every selected name is lower case"
            ));
        }
        return Verdict::warning(format!(
            "the source is case-sensitive (lower_case_table_names = 0), the target is not ({t}): names with \
             upper case letters are stored in lower case on the target: {}. Queries keep working there, but \
             SHOW TABLES and scripts see the lower-case names",
            list(&upper, 20)
        ));
    }
    Verdict::warning(format!(
        "lower_case_table_names differs: source {s}, target {t}. The source resolves names without regard to \
         case, the target {}: statements (and replayed DDL) that spell a name in another case than the \
         table was created with fail on the target. Use the same setting on both (on MySQL 8 it can only be \
         chosen when the data directory is initialized)",
        if t == 0 { "does not" } else { "differently" }
    ))
}

/// Normalizes `utf8mb3` to `utf8` (MariaDB 10.6+ and MySQL 8.0.30+ say utf8mb3, older ones utf8).
pub(crate) fn norm(name: &str) -> String {
    let l = name.to_ascii_lowercase();
    if l == "utf8mb3" {
        "utf8".into()
    } else if let Some(rest) = l.strip_prefix("utf8mb3_") {
        format!("utf8_{rest}")
    } else {
        l
    }
}

fn suggestion(collation: &str) -> &'static str {
    let c = collation.to_ascii_lowercase();
    if c.contains("_0900_") {
        " (MySQL 8's default; on MariaDB use utf8mb4_uca1400_ai_ci (10.10+) or utf8mb4_unicode_520_ci)"
    } else if c.contains("uca1400") {
        " (MariaDB 10.10+; on MySQL 8 use utf8mb4_0900_ai_ci)"
    } else {
        ""
    }
}

/// Every used charset and collation exists on the target.
pub(crate) fn judge_collations(
    used_collations: &BTreeMap<String, BTreeSet<String>>,
    used_charsets: &BTreeMap<String, BTreeSet<String>>,
    target_collations: &BTreeSet<String>,
    target_charsets: &BTreeSet<String>,
) -> Verdict {
    let tc: BTreeSet<String> = target_collations.iter().map(|c| norm(c)).collect();
    let ts: BTreeSet<String> = target_charsets.iter().map(|c| norm(c)).collect();
    let mut missing = Vec::new();
    for (cs, users) in used_charsets {
        if !ts.contains(&norm(cs)) {
            let u: Vec<String> = users.iter().cloned().collect();
            missing.push(format!("character set {cs} (used by {})", list(&u, 5)));
        }
    }
    for (c, users) in used_collations {
        if !tc.contains(&norm(c)) {
            let u: Vec<String> = users.iter().cloned().collect();
            missing.push(format!(
                "collation {c}{} (used by {})",
                suggestion(c),
                list(&u, 5)
            ));
        }
    }
    if missing.is_empty() {
        return Verdict::passed(format!(
            "the {} collation(s) and {} character set(s) used exist on the target",
            used_collations.len(),
            used_charsets.len()
        ));
    }
    Verdict::failed(format!(
        "the target does not know: {}. Creating these objects fails there: convert them on the source \
         (ALTER TABLE ... CONVERT TO CHARACTER SET ... COLLATE ...; ALTER DATABASE ... COLLATE ...) to a \
         collation both servers have, or use a target version that has them",
        missing.join("; ")
    ))
}

/// Server default charset/collation.
pub(crate) fn judge_server_charset(src: (&str, &str), tgt: (&str, &str)) -> Verdict {
    if norm(src.0) == norm(tgt.0) && norm(src.1) == norm(tgt.1) {
        return Verdict::passed(format!(
            "character_set_server = {}, collation_server = {} on both servers",
            src.0, src.1
        ));
    }
    Verdict::warning(format!(
        "server defaults differ: source {} / {}, target {} / {}. Ferry creates databases and tables with \
         their explicit character set and collation, so the copy is unaffected; objects created later \
         without one (including replayed CREATE DATABASE statements that name none) get the target's \
         default. To align, set character_set_server = {} and collation_server = {} in the target's \
         configuration",
        src.0, src.1, tgt.0, tgt.1, src.0, src.1
    ))
}

fn modes(m: &str) -> BTreeSet<String> {
    m.split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// sql_mode differences that matter.
pub(crate) fn judge_sql_mode(src: &str, tgt: &str, date_tables: &[String]) -> Verdict {
    let (s, t) = (modes(src), modes(tgt));
    let strict = |m: &BTreeSet<String>| m.contains("STRICT_TRANS_TABLES") || m.contains("STRICT_ALL_TABLES");
    let mut issues = Vec::new();
    let zero: Vec<&str> = ["NO_ZERO_DATE", "NO_ZERO_IN_DATE"]
        .into_iter()
        .filter(|m| t.contains(*m) && !(s.contains(*m) && strict(&s)))
        .collect();
    if !zero.is_empty() && !date_tables.is_empty() {
        issues.push(format!(
            "the target has {} and the source does not enforce it, so the source data may hold zero dates \
             ('0000-00-00') in {}: Ferry's own writers use a permissive sql_mode and copy them, but the \
             application's writes of such values, and UPDATEs of those rows, fail on the target after \
             cut-over. Find them on the source (WHERE col = '0000-00-00') or remove {} from the target's \
             sql_mode",
            zero.join(" and "),
            list(date_tables, 10),
            zero.join(", ")
        ));
    }
    if strict(&t) && !strict(&s) {
        issues.push(
            "the target is in strict mode and the source is not: values the source truncated silently will \
             make the application's statements fail on the target after cut-over"
                .to_string(),
        );
    }
    if s.contains("NO_ENGINE_SUBSTITUTION") && !t.contains("NO_ENGINE_SUBSTITUTION") {
        issues.push(
            "the target lacks NO_ENGINE_SUBSTITUTION: a table whose engine the target lacks would be created \
             silently with the default engine; add NO_ENGINE_SUBSTITUTION to the target's sql_mode"
                .to_string(),
        );
    }
    for m in [
        "ANSI_QUOTES",
        "NO_BACKSLASH_ESCAPES",
        "PAD_CHAR_TO_FULL_LENGTH",
        "ONLY_FULL_GROUP_BY",
    ] {
        if s.contains(m) != t.contains(m) {
            issues.push(format!(
                "{m} is {} on the target only: application statements may behave differently after cut-over",
                if t.contains(m) { "set" } else { "missing" }
            ));
        }
    }
    let diff: Vec<String> = s.symmetric_difference(&t).cloned().collect();
    if issues.is_empty() {
        if diff.is_empty() {
            return Verdict::passed("sql_mode is the same on both servers");
        }
        return Verdict::passed(format!(
            "sql_mode differs only in modes that do not affect the copy: {}",
            diff.join(", ")
        ));
    }
    Verdict::warning(format!(
        "sql_mode differs (source {src:?}, target {tgt:?}): {}. To align, set the target's sql_mode to the \
         source's (SET GLOBAL sql_mode = '{src}' and in the configuration)",
        issues.join("; ")
    ))
}

/// innodb_strict_mode.
pub(crate) fn judge_innodb_strict(src: Option<&str>, tgt: Option<&str>) -> Verdict {
    let on = |v: Option<&str>| crate::binlog::is_on(v);
    if on(tgt) && !on(src) && src.is_some() {
        return Verdict::warning(
            "innodb_strict_mode is ON on the target and OFF on the source: tables the source created with \
             warnings (rows too large for their ROW_FORMAT, ignored KEY_BLOCK_SIZE or table options) fail to \
             create on the target. If the structure phase fails on such a table, fix its options or run \
             SET GLOBAL innodb_strict_mode = OFF on the target for the structure phase",
        );
    }
    Verdict::passed(format!(
        "innodb_strict_mode: source {}, target {}",
        src.unwrap_or("n/a"),
        tgt.unwrap_or("n/a")
    ))
}

/// Target max_allowed_packet against the largest rows.
pub(crate) fn judge_packet(
    tgt: Option<u64>,
    src: Option<u64>,
    largest_avg_row: Option<(String, u64)>,
    lob_tables: &[String],
) -> Verdict {
    let Some(t) = tgt else {
        return Verdict::warning("cannot read the target's max_allowed_packet");
    };
    let how = "measured from information_schema.TABLES.AVG_ROW_LENGTH and the source's max_allowed_packet, \
               which bounds any row the source accepted; LOB values are not scanned";
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
    if let Some((table, avg)) = &largest_avg_row {
        if *avg > 0 && t < avg.saturating_mul(2) {
            let need = avg.saturating_mul(2).max(src.unwrap_or(0)).max(64 << 20);
            return Verdict::failed(format!(
                "the target's max_allowed_packet ({}) is below twice the average row of {table} ({}): rows \
                 cannot be written. Run SET GLOBAL max_allowed_packet = {need} on the target and set it in \
                 its configuration ({how})",
                mib(t),
                mib(*avg)
            ));
        }
    }
    match src {
        Some(s) if t < s && !lob_tables.is_empty() => Verdict::warning(format!(
            "the target's max_allowed_packet ({}) is smaller than the source's ({}) and these tables have \
             BLOB/TEXT/JSON columns: {}. A single value larger than {} cannot be written. Run SET GLOBAL \
             max_allowed_packet = {s} on the target and set it in its configuration ({how})",
            mib(t),
            mib(s),
            list(lob_tables, 10),
            mib(t)
        )),
        _ => Verdict::passed(format!(
            "target max_allowed_packet = {}{} ({how})",
            mib(t),
            src.map(|s| format!(", source {}", mib(s))).unwrap_or_default()
        )),
    }
}

/// The effective zone: `@@time_zone`, or `@@system_time_zone` when it says SYSTEM.
fn effective_zone(f: &ServerFacts) -> String {
    let tz = f.var("time_zone").unwrap_or("SYSTEM");
    if tz.eq_ignore_ascii_case("SYSTEM") {
        format!("SYSTEM ({})", f.var("system_time_zone").unwrap_or("?"))
    } else {
        tz.to_string()
    }
}

/// Time zones.
pub(crate) fn judge_time_zone(src: &str, tgt: &str) -> Verdict {
    if src == tgt {
        return Verdict::passed(format!("time zone {src} on both servers"));
    }
    Verdict::warning(format!(
        "time zones differ: source {src}, target {tgt}. TIMESTAMP values are copied in UTC and keep their \
         instant; DATETIME values are copied as written, and NOW()/CURRENT_TIMESTAMP in defaults, triggers, \
         events and the application's statements give other local times on the target. Set the target's \
         time_zone (default-time-zone in the configuration) to the source's if the application relies on it"
    ))
}

/// Clock difference, from each server's offset to this machine's clock.
pub(crate) fn judge_clock(src_offset_ms: Option<i64>, tgt_offset_ms: Option<i64>) -> Verdict {
    let (Some(s), Some(t)) = (src_offset_ms, tgt_offset_ms) else {
        return Verdict::passed("the clocks could not be compared");
    };
    let diff = (s - t).abs();
    if diff > 5_000 {
        Verdict::warning(format!(
            "the servers' clocks differ by {:.1} s: replication lag figures are off by as much, and \
             NOW()-based values written after cut-over jump. Synchronize both hosts with NTP (chrony, \
             systemd-timesyncd)",
            diff as f64 / 1000.0
        ))
    } else {
        Verdict::passed(format!(
            "the servers' clocks agree within {:.1} s",
            diff as f64 / 1000.0
        ))
    }
}

fn selected_names(o: &SourceObjects) -> Vec<String> {
    let mut names: Vec<String> = o.dbs.iter().map(|d| d.name.clone()).collect();
    names.extend(o.tables.iter().map(|t| t.display_name()));
    names
}

pub(crate) fn lower_case_table_names(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    let o = ctx.objects()?;
    // Collisions are per database for tables: compare db-qualified table names and db names.
    Ok(judge_lctn(
        s.var_u64("lower_case_table_names"),
        t.var_u64("lower_case_table_names"),
        &selected_names(o),
    ))
}

pub(crate) fn charsets_collations(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target()?;
    let (tc, ts) = match (&t.collations, &t.charsets) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Skip(format!(
                "cannot read information_schema.COLLATIONS on the target: {e}"
            )))
        }
    };
    let mut colls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in &o.dbs {
        if let Some(c) = &d.collation {
            colls
                .entry(c.clone())
                .or_default()
                .insert(format!("database {}", d.name));
        }
        if let Some(c) = &d.charset {
            sets.entry(c.clone())
                .or_default()
                .insert(format!("database {}", d.name));
        }
    }
    for tbl in &o.tables {
        let name = tbl.display_name();
        if let Some(c) = o
            .extra
            .get(&(tbl.db.clone(), tbl.name.clone()))
            .and_then(|e| e.collation.clone())
        {
            colls.entry(c).or_default().insert(name.clone());
        }
        for col in &tbl.columns {
            if let Some(c) = &col.collation {
                colls.entry(c.clone()).or_default().insert(name.clone());
            }
            if let Some(c) = &col.charset {
                sets.entry(c.clone()).or_default().insert(name.clone());
            }
        }
    }
    Ok(judge_collations(&colls, &sets, tc, ts))
}

pub(crate) fn server_charset(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    let get = |f: &ServerFacts, v: &str| f.var(v).unwrap_or("").to_string();
    Ok(judge_server_charset(
        (&get(s, "character_set_server"), &get(s, "collation_server")),
        (&get(t, "character_set_server"), &get(t, "collation_server")),
    ))
}

fn has_dates(t: &TableSchema) -> bool {
    t.columns.iter().any(|c| {
        matches!(
            c.kind,
            ColumnKind::Date | ColumnKind::DateTime | ColumnKind::Timestamp
        )
    })
}

pub(crate) fn sql_mode(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    let date_tables: Vec<String> = ctx
        .objects()
        .map(|o| {
            o.tables
                .iter()
                .filter(|t| has_dates(t))
                .map(|t| t.display_name())
                .collect()
        })
        .unwrap_or_default();
    Ok(judge_sql_mode(
        s.var("sql_mode").unwrap_or(""),
        t.var("sql_mode").unwrap_or(""),
        &date_tables,
    ))
}

pub(crate) fn innodb_strict_mode(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    Ok(judge_innodb_strict(
        s.var("innodb_strict_mode"),
        t.var("innodb_strict_mode"),
    ))
}

pub(crate) fn max_allowed_packet(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    let o = ctx.objects()?;
    let largest = o
        .extra
        .iter()
        .max_by_key(|(_, e)| e.avg_row_length)
        .map(|((db, t), e)| (format!("{db}.{t}"), e.avg_row_length));
    let lob: Vec<String> = o
        .tables
        .iter()
        .filter(|t| {
            t.columns.iter().any(|c| {
                matches!(c.kind, ColumnKind::Json | ColumnKind::Geometry)
                    || c.data_type.ends_with("blob")
                    || c.data_type.ends_with("text")
            })
        })
        .map(|t| t.display_name())
        .collect();
    Ok(judge_packet(
        t.var_u64("max_allowed_packet"),
        s.var_u64("max_allowed_packet"),
        largest,
        &lob,
    ))
}

pub(crate) fn time_zone(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    Ok(judge_time_zone(&effective_zone(s), &effective_zone(t)))
}

pub(crate) fn clock_skew(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    Ok(judge_clock(s.clock_offset_ms, t.clock_offset_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lctn() {
        assert_eq!(judge_lctn(Some(0), Some(0), &strings(&["A"])).status, Passed);
        assert_eq!(
            judge_lctn(Some(0), Some(1), &strings(&["shop", "shop.orders"])).status,
            Passed
        );
        let v = judge_lctn(Some(0), Some(1), &strings(&["shop", "shop.Orders"]));
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("shop.Orders"));
        let v = judge_lctn(Some(0), Some(1), &strings(&["shop.Orders", "shop.orders"]));
        assert_eq!(v.status, Failed);
        assert_eq!(judge_lctn(Some(1), Some(0), &strings(&["shop"])).status, Warning);
    }

    #[test]
    fn collations() {
        let used = |names: &[&str]| -> BTreeMap<String, BTreeSet<String>> {
            names
                .iter()
                .map(|n| (n.to_string(), ["d.t".to_string()].into()))
                .collect()
        };
        let target: BTreeSet<String> =
            strings(&["utf8mb4_general_ci", "utf8_general_ci", "latin1_swedish_ci"])
                .into_iter()
                .collect();
        let charsets: BTreeSet<String> = strings(&["utf8mb4", "utf8", "latin1"]).into_iter().collect();
        assert_eq!(
            judge_collations(
                &used(&["utf8mb4_general_ci", "utf8mb3_general_ci"]),
                &used(&["utf8mb4", "utf8mb3"]),
                &target,
                &charsets
            )
            .status,
            Passed
        );
        let v = judge_collations(
            &used(&["utf8mb4_0900_ai_ci"]),
            &used(&["utf8mb4", "ujis"]),
            &target,
            &charsets,
        );
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("utf8mb4_0900_ai_ci") && v.message.contains("uca1400"));
        assert!(v.message.contains("character set ujis"));
    }

    #[test]
    fn server_charset() {
        assert_eq!(
            judge_server_charset(
                ("utf8mb4", "utf8mb4_general_ci"),
                ("utf8mb4", "utf8mb4_general_ci")
            )
            .status,
            Passed
        );
        let v = judge_server_charset(("latin1", "latin1_swedish_ci"), ("utf8mb4", "utf8mb4_general_ci"));
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("character_set_server = latin1"));
    }

    #[test]
    fn sql_modes() {
        let m = "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION";
        assert_eq!(judge_sql_mode(m, m, &strings(&["d.t"])).status, Passed);
        let v = judge_sql_mode(
            m,
            "STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION",
            &strings(&["d.t"]),
        );
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("zero dates") && v.message.contains("d.t"));
        // No date columns: the zero-date difference does not matter.
        assert_eq!(
            judge_sql_mode(m, "STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION", &[]).status,
            Passed
        );
        assert_eq!(judge_sql_mode("NO_ENGINE_SUBSTITUTION", m, &[]).status, Warning);
        assert_eq!(judge_sql_mode(m, "STRICT_TRANS_TABLES", &[]).status, Warning);
        assert_eq!(
            judge_sql_mode(m, "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION,ANSI_QUOTES", &[]).status,
            Warning
        );
        let v = judge_sql_mode(&format!("{m},NO_AUTO_CREATE_USER"), m, &[]);
        assert_eq!(v.status, Passed);
        assert!(v.message.contains("NO_AUTO_CREATE_USER"));
    }

    #[test]
    fn strict_packet_zone_clock() {
        assert_eq!(judge_innodb_strict(Some("ON"), Some("ON")).status, Passed);
        assert_eq!(judge_innodb_strict(Some("OFF"), Some("ON")).status, Warning);
        assert_eq!(judge_innodb_strict(Some("ON"), Some("OFF")).status, Passed);

        let mb = 1 << 20;
        assert_eq!(
            judge_packet(
                Some(64 * mb),
                Some(64 * mb),
                Some(("d.t".into(), 100)),
                &strings(&["d.t"])
            )
            .status,
            Passed
        );
        let v = judge_packet(Some(mb), Some(64 * mb), Some(("d.big".into(), mb)), &[]);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("d.big") && v.message.contains("SET GLOBAL max_allowed_packet"));
        let v = judge_packet(
            Some(16 * mb),
            Some(64 * mb),
            Some(("d.t".into(), 100)),
            &strings(&["d.blobs"]),
        );
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("d.blobs"));
        assert_eq!(
            judge_packet(Some(16 * mb), Some(64 * mb), Some(("d.t".into(), 100)), &[]).status,
            Passed
        );
        assert_eq!(judge_packet(None, None, None, &[]).status, Warning);

        assert_eq!(judge_time_zone("SYSTEM (UTC)", "SYSTEM (UTC)").status, Passed);
        let v = judge_time_zone("SYSTEM (CET)", "+00:00");
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("DATETIME"));

        assert_eq!(judge_clock(Some(100), Some(-200)).status, Passed);
        assert_eq!(judge_clock(Some(10_000), Some(0)).status, Warning);
        assert_eq!(judge_clock(None, Some(0)).status, Passed);
    }
}
