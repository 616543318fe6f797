//! The `object_mapping` item: every table mapped by `Ferry.DbList` fits its mapping — the listed
//! and filtered columns exist and the row key survives the column selection
//! ([`ferry_core::mapping::TableMapping::check_replayed`], the same check the job runs before it
//! creates anything); for a job with an incremental phase, each filter is one the replay
//! evaluates exactly.

use ferry_core::{Selection, TableSchema};

use crate::{Ctx, Skip, Verdict};

/// Judges the mappings of the selected tables.
pub(crate) fn judge_mappings(sel: &Selection, tables: &[TableSchema], incremental: bool) -> Verdict {
    let mut problems = Vec::new();
    let mut mapped = 0;
    for t in tables {
        if let Some(m) = sel.mapping(&t.db, &t.name) {
            mapped += 1;
            if let Err(e) = m.check_replayed(t, incremental) {
                problems.push(format!("Ferry.DbList.{}.Table.{}: {e}", t.db, t.name));
            }
        }
    }
    match (problems.is_empty(), mapped) {
        (true, 0) => Verdict::passed("no table has a filter or column mapping"),
        (true, n) => Verdict::passed(format!("{n} mapped table(s) fit their mapping")),
        (false, _) => Verdict::failed(problems.join("; ")),
    }
}

pub(crate) fn object_mapping(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    Ok(judge_mappings(
        &ctx.input.selection,
        &o.tables,
        ctx.input.incremental,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::{Failed, Passed};
    use ferry_core::mapping::{ColumnMap, TableMapping};
    use ferry_core::selection::DbSelection;

    #[test]
    fn mappings_that_drop_the_key_or_name_missing_columns_fail() {
        let t = ferry_testkit::schema::int_table(&["id", "a"], false);
        let with_in = |cols: &[&str], filter: Option<&str>, incremental: bool| {
            let mut sel = Selection::databases(vec![DbSelection {
                name: "d".into(),
                target: "d".into(),
                tables: None,
                table_renames: Default::default(),
            }]);
            let m = TableMapping {
                columns: Some(
                    cols.iter()
                        .map(|c| ColumnMap {
                            name: c.to_string(),
                            target: c.to_string(),
                        })
                        .collect(),
                ),
                filter: filter.map(|f| ferry_core::filter::RowFilter::parse(f).unwrap()),
                ..TableMapping::default()
            };
            sel.mapping
                .tables
                .insert("d".into(), [("t".to_string(), m)].into());
            judge_mappings(&sel, std::slice::from_ref(&t), incremental)
        };
        let with = |cols: &[&str], filter: Option<&str>| with_in(cols, filter, false);
        assert_eq!(with(&["id", "a"], Some("a > 1")).status, Passed);
        let v = with(&["a"], None);
        assert_eq!(v.status, Failed);
        assert!(
            v.message.contains("Ferry.DbList.d.Table.t") && v.message.contains("drops id"),
            "{}",
            v.message
        );
        assert!(with(&["id", "nope"], None).message.contains("nope"));
        assert!(with(&["id"], Some("zz = 1")).message.contains("zz"));
        // a filter the server evaluates but the replay cannot: fine for a full load only
        assert_eq!(with(&["id", "a"], Some("a + 1 > 2")).status, Passed);
        let v = with_in(&["id", "a"], Some("a + 1 > 2"), true);
        assert!(
            v.status == Failed && v.message.contains("incremental replay"),
            "{}",
            v.message
        );
        assert_eq!(
            judge_mappings(&Selection::whole_instance(), std::slice::from_ref(&t), true).status,
            Passed
        );
    }
}
