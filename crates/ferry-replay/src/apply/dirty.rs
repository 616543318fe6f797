//! Dirty marks of continuous verification ([`ferry_core::chunkmap`]): the chunks each applied
//! row change touches (its before and after keys), recorded by one batched upsert sent with the
//! checkpoint UPDATE and `COMMIT` of the target transaction that applies them, so a crash cannot
//! lose a mark. A DDL applied on the target plans again the chunks of the tracked tables it names
//! (and only those: the other tables keep their stored digests).

use std::collections::BTreeSet;

use ferry_core::chunkmap::{marks_sql, DirtyTracker, Mark, ALL_PARTS, REPLAN};

use super::rowapply::Change;

/// Adds the marks of one change's row images. A table whose `Ferry.DbList` mapping reshapes its
/// rows has target-shaped images: they are marked as the source rows they come from (the chunk
/// maps address source columns; the key columns are always kept).
pub(crate) fn change_marks(tracker: &DirtyTracker, c: &Change, out: &mut BTreeSet<Mark>) {
    let s = &c.info.schema;
    if let Some(m) = c.info.map.as_ref().filter(|m| m.reshapes()) {
        let images: Vec<Vec<mysql_async::Value>> = c
            .pairs
            .iter()
            .flat_map(|(b, a)| [b, a])
            .flatten()
            .map(|r| m.source_image(r))
            .collect();
        tracker.mark(&s.db, &s.name, images.iter().map(|r| (r.as_slice(), None)), out);
        return;
    }
    let images = c.pairs.iter().flat_map(|(b, a)| {
        [
            b.as_deref().map(|r| (r, c.before_cols.as_deref())),
            a.as_deref().map(|r| (r, c.after_cols.as_deref())),
        ]
        .into_iter()
        .flatten()
    });
    tracker.mark(&s.db, &s.name, images, out);
}

/// The marks' upsert followed by `; `, to put before the checkpoint UPDATE (empty without marks).
pub(crate) fn commit_prefix(job: &str, marks: &BTreeSet<Mark>) -> String {
    marks_sql(job, marks)
        .map(|s| format!("{s}; "))
        .unwrap_or_default()
}

/// The marks that make the verifier plan again the tracked tables a DDL touches (`touched`, as
/// [`super::ddl::DdlAction::Apply`] names them: an empty table name is every table of the
/// database); empty when none of them is tracked.
pub(crate) fn replan_touched(tracker: &DirtyTracker, touched: &[(String, String)]) -> BTreeSet<Mark> {
    tracker
        .tables()
        .into_iter()
        .filter(|(db, t)| touched.iter().any(|(d, n)| d == db && (n.is_empty() || n == t)))
        .map(|(db, t)| (db, t, REPLAN, ALL_PARTS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::chunkmap::TableChunks;

    #[test]
    fn a_ddl_replans_only_the_tracked_tables_it_touches() {
        let tr = DirtyTracker::default();
        for (d, t) in [("a", "x"), ("a", "y"), ("b", "x")] {
            tr.set(d, t, TableChunks::Whole);
        }
        let names = |m: BTreeSet<Mark>| -> Vec<String> {
            m.into_iter()
                .inspect(|(_, _, c, _)| assert_eq!(*c, REPLAN))
                .map(|(d, t, _, _)| format!("{d}.{t}"))
                .collect()
        };
        let touched = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(d, t)| (d.to_string(), t.to_string())).collect()
        };
        assert_eq!(names(replan_touched(&tr, &touched(&[("a", "x")]))), ["a.x"]);
        assert_eq!(
            names(replan_touched(&tr, &touched(&[("a", "x"), ("a", "new")]))),
            ["a.x"]
        );
        assert_eq!(names(replan_touched(&tr, &touched(&[("a", "")]))), ["a.x", "a.y"]);
        assert!(replan_touched(&tr, &touched(&[("c", "x")])).is_empty());
        assert!(replan_touched(&tr, &[]).is_empty());
    }
}
