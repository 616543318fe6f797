//! Applying one rows event on a target connection outside a replay session (binlog files read
//! from disk, tests): the same decoding (schema of the target, partial images, partial JSON
//! diffs) and the same [`RowApplier`] as the replay's serial path, inside the caller's open
//! transaction, with no checkpoint.

use mysql_async::Conn;

use super::rowapply::{Change, RowApplier};
use super::schema_cache::SchemaCache;
use super::ConflictPolicy;
use crate::error::ReplayError;
use crate::event::RowsData;
use ferry_core::Selection;

/// Applies the rows of one event of a selected table (an unselected table is skipped) under a
/// conflict policy; returns the row changes the policy skipped. The connection must come from
/// [`super::connect_target`] (its session settings, and CLIENT_FOUND_ROWS).
pub async fn apply_rows_event(
    dst: &mut Conn,
    sel: &Selection,
    rows: &RowsData,
    conflict: ConflictPolicy,
) -> Result<u64, ReplayError> {
    let mut cache = SchemaCache::default();
    let Some(info) = cache.get(dst, sel, &rows.db, &rows.table).await? else {
        return Ok(0);
    };
    let (pairs, json_diffs) = super::json_diff_apply::decode(&info, rows)?;
    let (before_cols, after_cols) = super::session::partial_images(&info, rows, None)?;
    let change = Change {
        before_cols,
        after_cols,
        cascade: None,
        kind: rows.kind,
        pos: rows.position.clone(),
        pairs,
        json_diffs,
        info,
    };
    let mut ap = RowApplier::new(conflict);
    ap.apply(dst, &change, false).await?;
    Ok(ap.skipped)
}
