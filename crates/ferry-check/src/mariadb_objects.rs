//! MariaDB-only objects the target must be able to hold exactly: system-versioned tables
//! (their history, with `row_start`/`row_end` as on the source) and sequences.

use ferry_core::{Flavor, TableSchema};

use crate::objects::list;
use crate::{Ctx, Skip, Verdict};

const MAX: usize = 20;

/// System-versioned tables: the target must be MariaDB with `system_versioning_insert_history`
/// (10.11+) and a `secure_timestamp` that lets a session set its timestamp; transaction-precise
/// versioning is refused whatever the target.
pub(crate) fn judge_system_versioned(
    target: &Flavor,
    insert_history: Option<&str>,
    secure_timestamp: Option<&str>,
    tables: &[&TableSchema],
) -> Verdict {
    let versioned: Vec<String> = tables
        .iter()
        .filter(|t| t.system_time.is_some())
        .map(|t| t.display_name())
        .collect();
    if versioned.is_empty() {
        return Verdict::passed("no system-versioned table selected");
    }
    let precise: Vec<String> = tables
        .iter()
        .filter(|t| t.system_time.is_some_and(|s| s.transaction_precise))
        .map(|t| t.display_name())
        .collect();
    if !precise.is_empty() {
        return Verdict::failed(format!(
            "transaction-precise system-versioned tables (row_start/row_end hold the source's InnoDB \
             transaction ids, which no target can take): {}. Leave them out of the job",
            list(&precise, MAX)
        ));
    }
    let tables = list(&versioned, MAX);
    if !target.is_mariadb() {
        return Verdict::failed(format!(
            "system-versioned tables selected and the target is MySQL, which has no system versioning: \
             {tables}. Leave them out of the job or migrate to MariaDB 10.11+"
        ));
    }
    if insert_history.is_none() {
        return Verdict::failed(format!(
            "system-versioned tables selected and the target has no system_versioning_insert_history \
             (MariaDB 10.11 or later is needed to write the history rows with their row_start/row_end): \
             {tables}. Upgrade the target or leave these tables out of the job"
        ));
    }
    if let Some(st) = secure_timestamp.filter(|v| !v.eq_ignore_ascii_case("NO")) {
        return Verdict::failed(format!(
            "system-versioned tables selected and the target has secure_timestamp = {st}, which keeps \
             Ferry's sessions from writing row_start/row_end and setting their timestamp: {tables}. Set \
             secure_timestamp = NO in the target's configuration for the migration"
        ));
    }
    Verdict::passed(format!(
        "system-versioned tables copied with their history (system_versioning_insert_history): {tables}"
    ))
}

/// Sequences of whole selected databases: a MySQL target has none.
pub(crate) fn judge_sequences(target: &Flavor, sequences: &[(String, String)]) -> Verdict {
    if sequences.is_empty() {
        return Verdict::passed("no sequence selected");
    }
    let names: Vec<String> = sequences.iter().map(|(d, s)| format!("{d}.{s}")).collect();
    if !target.is_mariadb() {
        return Verdict::failed(format!(
            "sequences (CREATE SEQUENCE) selected and the target is MySQL, which has no sequences, so the \
             structure phase would fail on them: {}. Replace them on the source (AUTO_INCREMENT) or \
             migrate to MariaDB 10.3+",
            list(&names, MAX)
        ));
    }
    Verdict::passed(format!(
        "sequences copied with their state: {}",
        list(&names, MAX)
    ))
}

pub(crate) fn system_versioned(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target()?;
    Ok(judge_system_versioned(
        &t.flavor(),
        t.var("system_versioning_insert_history"),
        t.var("secure_timestamp"),
        &o.tables.iter().collect::<Vec<_>>(),
    ))
}

pub(crate) fn sequences(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target()?;
    Ok(judge_sequences(&t.flavor(), &o.sequences))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;
    use ferry_core::versioning::SystemTime;

    fn table(name: &str, versioned: Option<bool>) -> TableSchema {
        TableSchema {
            db: "d".into(),
            name: name.into(),
            columns: Vec::new(),
            primary_key: None,
            unique_keys: Vec::new(),
            engine: None,
            estimated_rows: 0,
            data_length: 0,
            system_time: versioned.map(|precise| SystemTime {
                row_start: 0,
                row_end: 1,
                implicit: true,
                transaction_precise: precise,
            }),
        }
    }

    #[test]
    fn system_versioned_tables_need_insert_history_and_a_settable_timestamp() {
        let maria = Flavor::from_version("10.11.19-MariaDB");
        let mysql = Flavor::from_version("8.4.3");
        let (plain, hist, precise) = (table("p", None), table("h", Some(false)), table("x", Some(true)));
        let v = judge_system_versioned(&maria, None, None, &[&plain]);
        assert_eq!(v.status, Passed);
        let v = judge_system_versioned(&maria, Some("OFF"), Some("NO"), &[&plain, &hist]);
        assert_eq!(v.status, Passed, "{}", v.message);
        assert!(v.message.contains("d.h"), "{}", v.message);
        let v = judge_system_versioned(&maria, None, None, &[&hist]);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("system_versioning_insert_history") && v.message.contains("d.h"));
        let v = judge_system_versioned(&maria, Some("OFF"), Some("YES"), &[&hist]);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("secure_timestamp = YES"), "{}", v.message);
        let v = judge_system_versioned(&mysql, None, None, &[&hist]);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("MySQL"), "{}", v.message);
        let v = judge_system_versioned(&maria, Some("OFF"), Some("NO"), &[&hist, &precise]);
        assert_eq!(v.status, Failed);
        assert!(
            v.message.contains("transaction-precise") && v.message.contains("d.x"),
            "{}",
            v.message
        );
    }

    #[test]
    fn sequences_need_a_mariadb_target() {
        let seqs = vec![("d".to_string(), "sq".to_string())];
        let v = judge_sequences(&Flavor::from_version("8.0.36"), &seqs);
        assert_eq!(v.status, Failed);
        assert!(
            v.message.contains("d.sq") && v.message.contains("MySQL"),
            "{}",
            v.message
        );
        assert_eq!(
            judge_sequences(&Flavor::from_version("10.11.2-MariaDB"), &seqs).status,
            Passed
        );
        assert_eq!(
            judge_sequences(&Flavor::from_version("8.0.36"), &[]).status,
            Passed
        );
    }
}
