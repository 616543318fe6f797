//! Applying the decoded rows of one rows event on a target connection, under the conflict
//! policy (and idempotently inside the window of a resumed load). Used by the parallel workers
//! and by the coordinator's serial path alike; the caller owns the target transaction.
//!
//! A change that cascaded on the source ([`super::cascade`]) runs its delete or update with
//! `foreign_key_checks = 1` so that the target's InnoDB repeats the cascade; every other
//! statement (and every fallback of the conflict policy) runs with the checks off.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::rowsql::{self, InsertVerb};
use super::schema_cache::TableInfo;
use super::ConflictPolicy;
use crate::decode::RowPair;
use crate::error::ReplayError;
use crate::event::{BinlogPos, RowsKind};

/// The decoded rows of one rows event of a selected table.
#[derive(Debug)]
pub(crate) struct Change {
    pub info: Arc<TableInfo>,
    pub kind: RowsKind,
    /// The position after the rows event (for messages).
    pub pos: BinlogPos,
    pub pairs: Vec<RowPair>,
    /// The foreign key through which this change cascaded on the source (`None`: it did not):
    /// applied on the serial path with the target's foreign-key checks on for its statements.
    pub cascade: Option<String>,
    /// The stored columns the before images carry, when not all of them
    /// (`binlog_row_image=MINIMAL`/`NOBLOB`); absent columns hold NULL placeholders. The row's
    /// address ([`rowsql::where_columns`]) is always carried (checked when the change is built).
    pub before_cols: Option<Vec<bool>>,
    /// The stored columns the after images carry, when not all of them: an insert writes only
    /// those (the target's defaults fill the rest, as the source's did), an update sets only
    /// those.
    pub after_cols: Option<Vec<bool>>,
    /// A partial JSON update (`PARTIAL_UPDATE_ROWS_EVENT`): per row change, the JSON columns its
    /// after image carries as diffs (their values in `pairs` are placeholders, never written):
    /// applied by [`super::json_diff_apply`].
    pub json_diffs: Option<Vec<Vec<crate::json_diff::ColumnDiffs>>>,
}

impl Change {
    /// The after images' columns ([`rowsql::Present`]).
    pub fn after_present(&self) -> rowsql::Present<'_> {
        self.after_cols.as_deref()
    }

    /// True when an image leaves stored columns out: such a change is never folded with
    /// others, and cannot be turned into a whole-row REPLACE.
    pub fn partial(&self) -> bool {
        self.before_cols.is_some() || self.after_cols.is_some() || self.json_diffs.is_some()
    }

    /// True when a row carries a long value ([`rowsql::LONG_VALUE_BYTES`]): the change is a
    /// serial point, applied row by row with its long values as statement parameters.
    pub fn has_long_values(&self) -> bool {
        let cols = &self.info.schema.columns;
        self.pairs.iter().any(|(b, a)| {
            [b, a]
                .into_iter()
                .flatten()
                .any(|row| row.iter().zip(cols).any(|(v, c)| rowsql::is_long_value(c, v)))
        })
    }
}

/// The kind a pair of an update stands for: an update, or (one-sided, from a row filter) the
/// delete of its before image or the insert of its after image.
pub(crate) fn pair_kind(kind: RowsKind, pair: &RowPair) -> RowsKind {
    match (kind, pair) {
        (RowsKind::Update, (Some(_), None)) => RowsKind::Delete,
        (RowsKind::Update, (None, Some(_))) => RowsKind::Insert,
        (k, _) => k,
    }
}

/// An update with one-sided pairs as consecutive runs of one kind each, in order; `None` when
/// the change has none.
pub(crate) fn split_one_sided(c: &Change) -> Option<Vec<Change>> {
    if c.kind != RowsKind::Update || c.pairs.iter().all(|p| pair_kind(c.kind, p) == c.kind) {
        return None;
    }
    let mut out: Vec<Change> = Vec::new();
    for p in &c.pairs {
        let k = pair_kind(c.kind, p);
        match out.last_mut() {
            Some(last) if last.kind == k => last.pairs.push(p.clone()),
            _ => out.push(Change {
                info: c.info.clone(),
                kind: k,
                pos: c.pos.clone(),
                pairs: vec![p.clone()],
                cascade: c.cascade.clone(),
                before_cols: c.before_cols.clone(),
                after_cols: c.after_cols.clone(),
                json_diffs: None,
            }),
        }
    }
    Some(out)
}

/// A statement with its long-value parameters.
pub(crate) type Stmt = (Vec<u8>, Vec<Value>);

/// Runs a statement with parameters (a plain query without). A duplicate key is returned as
/// `Ok(Err(_))`.
pub(crate) async fn exec_params(
    dst: &mut Conn,
    stmt: Stmt,
    what: &str,
    pos: &BinlogPos,
) -> Result<Result<u64, mysql_async::Error>, ReplayError> {
    let (sql, params) = stmt;
    let r = if params.is_empty() {
        dst.query_drop(sql).await
    } else {
        // every string value is a parameter: the text is identifiers, numbers and dates
        match String::from_utf8(sql) {
            Ok(text) => dst.exec_drop(text.as_str(), params).await,
            Err(e) => {
                return Err(ReplayError::Unsupported {
                    what: format!("{what}: the statement text of a row with a long value is not UTF-8 ({e})"),
                    position: pos.to_string(),
                })
            }
        }
    };
    match r {
        Ok(()) => Ok(Ok(dst.affected_rows())),
        Err(e) if server_code(&e) == Some(1062) => Ok(Err(e)),
        Err(e) => Err(apply_err(what, pos, e)),
    }
}

/// The error for a conflict policy fallback that needs a whole row when the source logged a
/// partial image.
pub(crate) fn partial_conflict(t: &TableInfo, row: &[Value], pos: &BinlogPos, what: &str) -> ReplayError {
    conflict(
        t,
        row,
        pos,
        &format!(
            "{what}; the source logged a partial row image (binlog_row_image=MINIMAL or NOBLOB, or \
             JSON diffs with binlog_row_value_options=PARTIAL_JSON), so the \
             row cannot be rewritten whole by the conflict policy Overwrite"
        ),
    )
}

/// Applies changes with a conflict policy and counts what it skipped.
#[derive(Debug)]
pub(crate) struct RowApplier {
    pub conflict: ConflictPolicy,
    pub skipped: u64,
}

pub(crate) fn apply_err(what: impl Into<String>, position: &BinlogPos, e: mysql_async::Error) -> ReplayError {
    ReplayError::Apply {
        what: what.into(),
        position: position.to_string(),
        source: e,
    }
}

pub(crate) fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

pub(crate) fn conflict(t: &TableInfo, row: &[Value], pos: &BinlogPos, message: &str) -> ReplayError {
    ReplayError::Conflict {
        table: t.target_name.clone(),
        key: rowsql::describe_key(t, row),
        position: pos.to_string(),
        message: message.to_string(),
    }
}

/// Runs a statement; a duplicate-key error is returned as `Ok(Err(_))` for the policy to handle.
pub(crate) async fn exec(
    dst: &mut Conn,
    sql: &[u8],
    what: &str,
    pos: &BinlogPos,
) -> Result<Result<u64, mysql_async::Error>, ReplayError> {
    match dst.query_drop(sql).await {
        Ok(()) => Ok(Ok(dst.affected_rows())),
        Err(e) if server_code(&e) == Some(1062) => Ok(Err(e)),
        Err(e) => Err(apply_err(what, pos, e)),
    }
}

pub(crate) async fn exec_plain(
    dst: &mut Conn,
    sql: &[u8],
    what: &str,
    pos: &BinlogPos,
) -> Result<u64, ReplayError> {
    dst.query_drop(sql).await.map_err(|e| apply_err(what, pos, e))?;
    Ok(dst.affected_rows())
}

/// Runs one statement with `foreign_key_checks = 1` (then back to 0): the target's InnoDB runs
/// the foreign keys' actions as the source's did. A duplicate key is returned as `Ok(Err(_))`;
/// a failing foreign-key check is a definite error naming the key.
pub(crate) async fn exec_fk_checked(
    dst: &mut Conn,
    sql: &[u8],
    what: &str,
    fk: &str,
    pos: &BinlogPos,
) -> Result<Result<u64, mysql_async::Error>, ReplayError> {
    let on = "SET foreign_key_checks = 1";
    dst.query_drop(on).await.map_err(|e| apply_err(on, pos, e))?;
    let r = dst.query_drop(sql).await;
    let n = dst.affected_rows();
    let off = "SET foreign_key_checks = 0";
    dst.query_drop(off).await.map_err(|e| apply_err(off, pos, e))?;
    match r {
        Ok(()) => Ok(Ok(n)),
        Err(e) if server_code(&e) == Some(1062) => Ok(Err(e)),
        Err(e) => Err(apply_err(
            format!(
                "{what}, repeating the source's foreign-key actions through {fk} (foreign_key_checks=1; a \
                 failing check means the target's rows differ from the source's)"
            ),
            pos,
            e,
        )),
    }
}

impl RowApplier {
    pub fn new(conflict: ConflictPolicy) -> Self {
        RowApplier { conflict, skipped: 0 }
    }

    /// An update whose row the target does not have (it matched nothing): skipped inside the
    /// idempotent window or under Ignore, the after image written under Overwrite (refused for a
    /// partial image, which cannot make a whole row), a conflict under Stop.
    pub(crate) async fn update_missed(
        &mut self,
        dst: &mut Conn,
        c: &Change,
        b: &[Value],
        a: &Vec<Value>,
        idem: bool,
        what: &str,
    ) -> Result<(), ReplayError> {
        let (t, pos): (&TableInfo, &BinlogPos) = (&c.info, &c.pos);
        match (self.conflict, idem) {
            (_, true) | (ConflictPolicy::Ignore, _) => self.skipped += 1,
            (ConflictPolicy::Overwrite, _) if c.partial() => {
                return Err(partial_conflict(
                    t,
                    b,
                    pos,
                    "update of a row that does not exist on the target",
                ))
            }
            (ConflictPolicy::Overwrite, _) => {
                for s in rowsql::insert_statements(t, InsertVerb::Replace, &[a]) {
                    exec_plain(dst, &s, what, pos).await?;
                }
            }
            (ConflictPolicy::Stop, false) => {
                return Err(conflict(
                    t,
                    b,
                    pos,
                    "update of a row that does not exist on the target",
                ))
            }
        }
        Ok(())
    }

    /// Applies a change that cascaded on the source, row by row in source order, its deletes and
    /// updates with the target's foreign-key checks on. Inside the idempotent window of a
    /// resumed load the row is first put in the state the source had before the change (its
    /// before image present, a copy of its after key removed, both with the checks off) so that
    /// the cascade runs whatever the chunk snapshots held.
    async fn apply_cascading(
        &mut self,
        dst: &mut Conn,
        c: &Change,
        fk: &str,
        idem: bool,
    ) -> Result<(), ReplayError> {
        let t: &TableInfo = &c.info;
        let pos = &c.pos;
        let policy = self.conflict;
        match c.kind {
            RowsKind::Insert => {}
            RowsKind::Delete => {
                let what = format!("delete from {}", t.target_name);
                for (b, _) in &c.pairs {
                    let Some(b) = b else { continue };
                    if idem && t.key.is_some() {
                        for s in rowsql::insert_statements(t, InsertVerb::InsertIgnore, &[b]) {
                            exec_plain(dst, &s, &what, pos).await?;
                        }
                    }
                    let n =
                        match exec_fk_checked(dst, &rowsql::delete_statement(t, b), &what, fk, pos).await? {
                            Ok(n) => n,
                            Err(e) => return Err(apply_err(what, pos, e)),
                        };
                    if n == 0 {
                        if policy == ConflictPolicy::Stop && !idem {
                            return Err(conflict(
                                t,
                                b,
                                pos,
                                "delete of a row that does not exist on the target",
                            ));
                        }
                        self.skipped += 1;
                    }
                }
            }
            RowsKind::Update => {
                let what = format!("update of {}", t.target_name);
                let ap = c.after_present();
                for (b, a) in &c.pairs {
                    let (Some(b), Some(a)) = (b, a) else { continue };
                    let key_changed = t.key.is_some() && rowsql::key_changed_present(t, b, a, ap);
                    if idem && t.key.is_some() {
                        if key_changed {
                            exec_plain(dst, &rowsql::delete_statement(t, a), &what, pos).await?;
                        }
                        // a partial before image cannot recreate the row: left as the chunks hold it
                        if c.before_cols.is_none() {
                            for s in rowsql::insert_statements(t, InsertVerb::InsertIgnore, &[b]) {
                                exec_plain(dst, &s, &what, pos).await?;
                            }
                        }
                    }
                    let update = rowsql::update_statement_present(t, b, a, ap);
                    match exec_fk_checked(dst, &update, &what, fk, pos).await? {
                        Ok(n) if n > 0 => {}
                        Ok(_) => self.update_missed(dst, c, b, a, idem, &what).await?,
                        Err(_) => match policy {
                            ConflictPolicy::Ignore => self.skipped += 1,
                            ConflictPolicy::Overwrite if key_changed => {
                                // The source had no row at the new key: the target's is extra.
                                exec_plain(dst, &rowsql::delete_statement(t, a), &what, pos).await?;
                                if let Err(e) = exec_fk_checked(dst, &update, &what, fk, pos).await? {
                                    return Err(apply_err(what, pos, e));
                                }
                            }
                            ConflictPolicy::Overwrite | ConflictPolicy::Stop => {
                                return Err(conflict(
                                    t,
                                    a,
                                    pos,
                                    &format!(
                                        "update to a key that already exists on the target (the foreign-key \
                                         actions through {fk} cannot be repeated over it)"
                                    ),
                                ));
                            }
                        },
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that every long value of a change fits the target's `max_allowed_packet` (the
    /// bound of one statement parameter): else a definite error naming the table, column, size
    /// and the setting to raise.
    async fn check_long_values(&self, dst: &mut Conn, c: &Change) -> Result<(), ReplayError> {
        let max: Option<u64> = dst
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(|e| apply_err("reading the target's max_allowed_packet", &c.pos, e))?;
        let max = max.unwrap_or(u64::MAX);
        let cols = &c.info.schema.columns;
        for (b, a) in &c.pairs {
            for row in [b, a].into_iter().flatten() {
                for (v, col) in row.iter().zip(cols) {
                    if let Value::Bytes(bytes) = v {
                        if bytes.len() as u64 > max {
                            return Err(ReplayError::Unsupported {
                                what: format!(
                                    "a value of {} bytes in {}.{} (rows event ending at {}) is larger than \
                                     the target's max_allowed_packet ({max} bytes), the largest value one \
                                     statement can carry: raise it on the target (SET GLOBAL \
                                     max_allowed_packet = {}, at most 1 GiB) and resume",
                                    bytes.len(),
                                    c.info.target_name,
                                    col.name,
                                    c.pos,
                                    (bytes.len() as u64 + (1 << 20)).next_power_of_two().min(1 << 30)
                                ),
                                position: c.pos.to_string(),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies a change with long values, row by row, each long value a statement parameter.
    async fn apply_long(&mut self, dst: &mut Conn, c: &Change, idem: bool) -> Result<(), ReplayError> {
        self.check_long_values(dst, c).await?;
        let t: &TableInfo = &c.info;
        let pos = &c.pos;
        let policy = self.conflict;
        let ap = c.after_present();
        let one_insert = |verb: InsertVerb, row: &Vec<Value>| -> Stmt {
            let (mut v, params) =
                rowsql::with_long_params(|| rowsql::insert_statements_present(t, verb, &[row], ap));
            (v.pop().unwrap_or_default(), params)
        };
        match c.kind {
            RowsKind::Insert => {
                let verb = if idem || policy == ConflictPolicy::Overwrite {
                    InsertVerb::Replace
                } else if policy == ConflictPolicy::Ignore {
                    InsertVerb::InsertIgnore
                } else {
                    InsertVerb::Insert
                };
                let what = format!("insert into {}", t.target_name);
                for (_, a) in &c.pairs {
                    let Some(a) = a else { continue };
                    match exec_params(dst, one_insert(verb, a), &what, pos).await? {
                        Ok(0) if verb == InsertVerb::InsertIgnore => self.skipped += 1,
                        Ok(_) => {}
                        Err(e) => {
                            return Err(ReplayError::Conflict {
                                table: t.target_name.clone(),
                                key: match &e {
                                    mysql_async::Error::Server(s) => s.message.clone(),
                                    e => e.to_string(),
                                },
                                position: pos.to_string(),
                                message: "insert of a key that already exists on the target".into(),
                            })
                        }
                    }
                }
            }
            RowsKind::Update => {
                let what = format!("update of {}", t.target_name);
                for (b, a) in &c.pairs {
                    let (Some(b), Some(a)) = (b, a) else { continue };
                    if idem && t.key.is_some() && !c.partial() {
                        // as for ordinary rows: the old key gone, the new image whole
                        if rowsql::key_changed(t, b, a) {
                            exec_plain(dst, &rowsql::delete_statement(t, b), &what, pos).await?;
                        }
                        if let Err(e) =
                            exec_params(dst, one_insert(InsertVerb::Replace, a), &what, pos).await?
                        {
                            return Err(apply_err(what, pos, e));
                        }
                        continue;
                    }
                    if idem && t.key.is_some() && rowsql::key_changed_present(t, b, a, ap) {
                        exec_plain(dst, &rowsql::delete_statement(t, a), &what, pos).await?;
                    }
                    let stmt = rowsql::with_long_params(|| rowsql::update_statement_present(t, b, a, ap));
                    match exec_params(dst, stmt, &what, pos).await? {
                        Ok(n) if n > 0 => {}
                        Ok(_) if idem || policy == ConflictPolicy::Ignore => self.skipped += 1,
                        Ok(_) if policy == ConflictPolicy::Overwrite && !c.partial() => {
                            if let Err(e) =
                                exec_params(dst, one_insert(InsertVerb::Replace, a), &what, pos).await?
                            {
                                return Err(apply_err(what, pos, e));
                            }
                        }
                        Ok(_) => {
                            return Err(conflict(
                                t,
                                b,
                                pos,
                                "update of a row that does not exist on the target",
                            ))
                        }
                        Err(_) if policy == ConflictPolicy::Ignore => self.skipped += 1,
                        Err(_) => {
                            return Err(conflict(
                                t,
                                a,
                                pos,
                                "update to a key that already exists on the target",
                            ))
                        }
                    }
                }
            }
            RowsKind::Delete => {
                let what = format!("delete from {}", t.target_name);
                for (b, _) in &c.pairs {
                    let Some(b) = b else { continue };
                    let stmt = rowsql::with_long_params(|| rowsql::delete_statement(t, b));
                    match exec_params(dst, stmt, &what, pos).await? {
                        Ok(n) if n > 0 => {}
                        Ok(_) if policy != ConflictPolicy::Stop || idem => self.skipped += 1,
                        Ok(_) => {
                            return Err(conflict(
                                t,
                                b,
                                pos,
                                "delete of a row that does not exist on the target",
                            ))
                        }
                        Err(e) => return Err(apply_err(what, pos, e)),
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies one change inside the caller's open target transaction. An update through a row
    /// filter may carry one-sided pairs ([`super::rowmap`]): it is applied as the runs of
    /// updates, deletes and inserts it stands for, in order.
    pub async fn apply(&mut self, dst: &mut Conn, c: &Change, idem: bool) -> Result<(), ReplayError> {
        match split_one_sided(c) {
            None => self.apply_one(dst, c, idem).await,
            Some(parts) => {
                for p in &parts {
                    self.apply_one(dst, p, idem).await?;
                }
                Ok(())
            }
        }
    }

    async fn apply_one(&mut self, dst: &mut Conn, c: &Change, idem: bool) -> Result<(), ReplayError> {
        if c.json_diffs.is_some() {
            return self.apply_json_diffs(dst, c, idem).await;
        }
        if c.info.schema.system_time.is_some() {
            return self.apply_versioned(dst, c, idem).await;
        }
        if let Some(fk) = c.cascade.as_deref() {
            if c.kind != RowsKind::Insert {
                return self.apply_cascading(dst, c, fk, idem).await;
            }
        }
        if c.has_long_values() {
            return self.apply_long(dst, c, idem).await;
        }
        let t: &TableInfo = &c.info;
        let pos = &c.pos;
        let policy = self.conflict;
        match c.kind {
            RowsKind::Insert => {
                let afters: Vec<&Vec<Value>> = c.pairs.iter().filter_map(|(_, a)| a.as_ref()).collect();
                let verb = if idem || policy == ConflictPolicy::Overwrite {
                    InsertVerb::Replace
                } else if policy == ConflictPolicy::Ignore {
                    InsertVerb::InsertIgnore
                } else {
                    InsertVerb::Insert
                };
                let what = format!("insert into {}", t.target_name);
                let mut done = 0usize;
                for stmt in rowsql::insert_statements_present(t, verb, &afters, c.after_present()) {
                    match exec(dst, &stmt, &what, pos).await? {
                        Ok(n) => {
                            if verb == InsertVerb::InsertIgnore {
                                done += n as usize;
                            }
                        }
                        Err(e) => {
                            let msg = match &e {
                                mysql_async::Error::Server(s) => s.message.clone(),
                                e => e.to_string(),
                            };
                            return Err(ReplayError::Conflict {
                                table: t.target_name.clone(),
                                key: msg,
                                position: pos.to_string(),
                                message: "insert of a key that already exists on the target".into(),
                            });
                        }
                    }
                }
                if verb == InsertVerb::InsertIgnore {
                    self.skipped += afters.len().saturating_sub(done) as u64;
                }
            }
            RowsKind::Update => {
                let what = format!("update of {}", t.target_name);
                let ap = c.after_present();
                for (b, a) in &c.pairs {
                    let (Some(b), Some(a)) = (b, a) else { continue };
                    if idem && t.key.is_some() && c.partial() {
                        // Idempotently, from a partial image: clear the new key, then set the
                        // logged columns where the row is (absent: a later chunk holds its fate).
                        if rowsql::key_changed_present(t, b, a, ap) {
                            exec_plain(dst, &rowsql::delete_statement(t, a), &what, pos).await?;
                        }
                        let n = exec_plain(dst, &rowsql::update_statement_present(t, b, a, ap), &what, pos)
                            .await?;
                        if n == 0 {
                            self.skipped += 1;
                        }
                        continue;
                    }
                    if idem && t.key.is_some() {
                        if rowsql::key_changed(t, b, a) {
                            exec_plain(dst, &rowsql::delete_statement(t, b), &what, pos).await?;
                        }
                        for s in rowsql::insert_statements(t, InsertVerb::Replace, &[a]) {
                            exec_plain(dst, &s, &what, pos).await?;
                        }
                        continue;
                    }
                    match exec(dst, &rowsql::update_statement_present(t, b, a, ap), &what, pos).await? {
                        Ok(n) if n > 0 => {}
                        Ok(_) => self.update_missed(dst, c, b, a, idem, &what).await?,
                        Err(_) => match policy {
                            ConflictPolicy::Ignore => self.skipped += 1,
                            ConflictPolicy::Overwrite if c.partial() => {
                                return Err(partial_conflict(
                                    t,
                                    a,
                                    pos,
                                    "update to a key that already exists on the target",
                                ))
                            }
                            ConflictPolicy::Overwrite => {
                                exec_plain(dst, &rowsql::delete_statement(t, b), &what, pos).await?;
                                for s in rowsql::insert_statements(t, InsertVerb::Replace, &[a]) {
                                    exec_plain(dst, &s, &what, pos).await?;
                                }
                            }
                            ConflictPolicy::Stop => {
                                return Err(conflict(
                                    t,
                                    a,
                                    pos,
                                    "update to a key that already exists on the target",
                                ))
                            }
                        },
                    }
                }
            }
            RowsKind::Delete => {
                let what = format!("delete from {}", t.target_name);
                for (b, _) in &c.pairs {
                    let Some(b) = b else { continue };
                    let n = exec_plain(dst, &rowsql::delete_statement(t, b), &what, pos).await?;
                    if n == 0 {
                        if policy == ConflictPolicy::Stop && !idem {
                            return Err(conflict(
                                t,
                                b,
                                pos,
                                "delete of a row that does not exist on the target",
                            ));
                        }
                        self.skipped += 1;
                    }
                }
            }
        }
        Ok(())
    }
}
