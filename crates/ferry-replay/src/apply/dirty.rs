//! Dirty marks of continuous verification ([`ferry_core::chunkmap`]): the chunks each applied
//! row change touches (its before and after keys), recorded by one batched upsert sent with the
//! checkpoint UPDATE and `COMMIT` of the target transaction that applies them, so a crash cannot
//! lose a mark. A DDL applied on the target plans every tracked table's chunks again.

use std::collections::BTreeSet;

use ferry_core::chunkmap::{marks_sql, DirtyTracker, Mark, REPLAN};

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

/// The marks that make the verifier plan every tracked table again (before a DDL: the table it
/// changes may be any of them); empty when nothing is tracked.
pub(crate) fn replan_all(tracker: &DirtyTracker) -> BTreeSet<Mark> {
    tracker
        .tables()
        .into_iter()
        .map(|(db, t)| (db, t, REPLAN))
        .collect()
}
