//! Applying MySQL partial JSON updates (`PARTIAL_UPDATE_ROWS_EVENT`,
//! `binlog_row_value_options=PARTIAL_JSON`) on the target, row by row: the columns the after
//! image carries whole are set by one ordinary update (which also finds the row, or reports it
//! missing to the conflict policy), then each JSON diff runs as its own guarded statement
//! ([`crate::json_diff`]): `UPDATE t SET c = <function> WHERE <row key> AND <guard> LIMIT 1`. A
//! diff statement that matches no row means the target's document is not the one the source
//! changed: the replay stops with a definite error naming the event, the column, the diff and the
//! remedy, and nothing of the transaction is committed.
//!
//! Refused by name, because no statement can apply them exactly: a table without a row key (the
//! row is addressed by all its values, and the document changes between the diffs), and the
//! idempotent window of a resumed load (a diff applied twice is not the diff).

use mysql_async::{Conn, Value};

use super::rowapply::{
    conflict, exec, exec_fk_checked, exec_params, exec_plain, partial_conflict, Change, RowApplier,
};
use super::rowsql;
use super::schema_cache::TableInfo;
use super::ConflictPolicy;
use crate::decode::RowPair;
use crate::error::ReplayError;
use crate::event::{RowsData, RowsKind};
use crate::json_diff::{self, ColumnDiffs, Flavor};

/// The diffs of a partial update's rows, per row change.
pub(crate) type RowsDiffs = Vec<Vec<ColumnDiffs>>;

const EVENT: &str = "PARTIAL_UPDATE_ROWS_EVENT (binlog_row_value_options=PARTIAL_JSON)";

fn refused(c: &Change, why: &str) -> ReplayError {
    ReplayError::Unsupported {
        what: format!(
            "{EVENT} ending at {} on {}: {why}. Set binlog_row_value_options='' on the source (MySQL then \
             logs whole documents) and run the job again from a new full load",
            c.pos, c.info.target_name
        ),
        position: c.pos.to_string(),
    }
}

/// Decodes a rows event; a partial JSON update's diffs are taken out first (their columns hold
/// NULL placeholders in the decoded after images). A table with a `Ferry.DbList` mapping is
/// decoded and mapped by [`super::rowmap`] (a `dml_op` that leaves the kind out: no rows).
pub(crate) fn decode(
    info: &TableInfo,
    rows: &RowsData,
) -> Result<(Vec<RowPair>, Option<RowsDiffs>), ReplayError> {
    if let Some(m) = &info.map {
        if m.reshapes() {
            return Ok((m.decode(&info.target_name, rows)?, None));
        }
        if m.excludes(rows.kind, rows.rows.len()) {
            return Ok((Vec::new(), None));
        }
    }
    let has = rows
        .rows
        .iter()
        .any(|(_, a)| a.as_deref().is_some_and(json_diff::has_diffs));
    if !has {
        return Ok((info.decoder.decode(rows)?, None));
    }
    let mut plain = rows.clone();
    let mut diffs = Vec::with_capacity(plain.rows.len());
    for (_, a) in &mut plain.rows {
        let d = match a {
            Some(a) => json_diff::take_diffs(a).map_err(|m| ReplayError::Corrupt {
                position: rows.position.to_string(),
                message: format!("{EVENT} on {}.{}: {m}", rows.db, rows.table),
            })?,
            None => Vec::new(),
        };
        diffs.push(d);
    }
    Ok((info.decoder.decode(&plain)?, Some(diffs)))
}

/// The target column's flavor, or why a diff cannot be applied to it.
fn flavor(t: &TableInfo, column: usize) -> Result<Flavor, String> {
    let col = t.schema.columns.get(column).ok_or_else(|| {
        format!(
            "a JSON diff for column {} of a {}-column table",
            column + 1,
            t.schema.columns.len()
        )
    })?;
    if col.generated {
        return Err(format!("a JSON diff for the generated column {}", col.name));
    }
    match col.kind {
        ferry_core::ColumnKind::Json => Ok(Flavor::Json),
        ferry_core::ColumnKind::Text => Ok(Flavor::Text),
        _ => Err(format!(
            "a JSON diff for column {}, which is {} on the target (JSON or a text type needed)",
            col.name, col.column_type
        )),
    }
}

/// `UPDATE t SET c = <set> WHERE <row> AND (<guard>) LIMIT 1`.
fn diff_statement(t: &TableInfo, column: usize, sql: &json_diff::DiffSql, addr: &[Value]) -> Vec<u8> {
    let col = ferry_core::sql::quote_ident(&t.schema.columns[column].name);
    let mut out = format!("UPDATE {} SET {col} = {}", t.target, sql.set).into_bytes();
    let mut wh = Vec::new();
    rowsql::write_where(&mut wh, t, addr);
    let wh = wh.strip_suffix(b" LIMIT 1").unwrap_or(&wh);
    out.extend_from_slice(wh);
    out.extend_from_slice(format!(" AND ({}) LIMIT 1", sql.guard).as_bytes());
    out
}

impl RowApplier {
    /// Applies a partial JSON update (see the module docs) inside the caller's transaction.
    pub(crate) async fn apply_json_diffs(
        &mut self,
        dst: &mut Conn,
        c: &Change,
        idem: bool,
    ) -> Result<(), ReplayError> {
        let t: &TableInfo = &c.info;
        let pos = &c.pos;
        let Some(all) = &c.json_diffs else { return Ok(()) };
        if c.kind != RowsKind::Update {
            return Err(refused(c, "JSON diffs in an event that is not an update"));
        }
        if t.key.is_none() {
            return Err(refused(
                c,
                "the table has no primary key or NOT NULL unique key, so a row whose document changes \
                 between its diffs cannot be addressed exactly",
            ));
        }
        if idem {
            return Err(refused(
                c,
                "the update falls inside the idempotent window of a resumed load, where the target row \
                 may already hold it, and a JSON diff applied twice is not the same change",
            ));
        }
        let what = format!("update of {}", t.target_name);
        for ((b, a), row_diffs) in c.pairs.iter().zip(all) {
            let (Some(b), Some(a)) = (b, a) else { continue };
            // the columns set whole: the image's, less those carried as diffs
            let mut present = c
                .after_cols
                .clone()
                .unwrap_or_else(|| vec![true; t.schema.columns.len()]);
            for d in row_diffs {
                if let Some(p) = present.get_mut(d.column) {
                    *p = false;
                }
            }
            // long values as statement parameters, except with the foreign-key checks on (literals)
            let update = if c.has_long_values() && c.cascade.is_none() {
                rowsql::with_long_params(|| rowsql::update_statement_present(t, b, a, Some(&present)))
            } else {
                (
                    rowsql::update_statement_present(t, b, a, Some(&present)),
                    Vec::new(),
                )
            };
            let found = match (&c.cascade, update) {
                (Some(fk), (sql, _)) => exec_fk_checked(dst, &sql, &what, fk, pos).await?,
                (None, (sql, params)) if params.is_empty() => exec(dst, &sql, &what, pos).await?,
                (None, stmt) => exec_params(dst, stmt, &what, pos).await?,
            };
            match found {
                Ok(n) if n > 0 => {}
                Ok(_) => {
                    // the row is missing: the policy decides (skip, or a conflict)
                    self.update_missed(dst, c, b, a, idem, &what).await?;
                    continue;
                }
                Err(_) if self.conflict == ConflictPolicy::Ignore => {
                    self.skipped += 1;
                    continue;
                }
                Err(_) => {
                    let m = "update to a key that already exists on the target";
                    return Err(if self.conflict == ConflictPolicy::Overwrite {
                        partial_conflict(t, a, pos, m)
                    } else {
                        conflict(t, a, pos, m)
                    });
                }
            }
            // the row now has its after key
            let mut addr = b.clone();
            for (i, p) in present.iter().enumerate() {
                if *p {
                    if let (Some(slot), Some(v)) = (addr.get_mut(i), a.get(i)) {
                        *slot = v.clone();
                    }
                }
            }
            for cd in row_diffs {
                let fl = flavor(t, cd.column).map_err(|m| refused(c, &m))?;
                let name = &t.schema.columns[cd.column].name;
                for (k, d) in cd.diffs.iter().enumerate() {
                    let sql =
                        json_diff::diff_sql(&ferry_core::sql::quote_ident(name), fl, d).map_err(|m| {
                            refused(
                                c,
                                &format!("column {name}, diff {} ({}): {m}", k + 1, d.describe()),
                            )
                        })?;
                    let stmt = diff_statement(t, cd.column, &sql, &addr);
                    if exec_plain(dst, &stmt, &what, pos).await? == 0 {
                        return Err(ReplayError::Unsupported {
                            what: format!(
                                "{EVENT} ending at {pos} on {}, row {}: column {name}, diff {} of {} ({}) \
                                 cannot be applied exactly: the target's document lacks the path or the \
                                 container the source's had (MySQL rejects this diff too), so it differs \
                                 from the source's. Repair the row, or set binlog_row_value_options='' on \
                                 the source and run the job again from a new full load",
                                t.target_name,
                                rowsql::describe_key(t, &addr),
                                k + 1,
                                cd.diffs.len(),
                                d.describe()
                            ),
                            position: pos.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
