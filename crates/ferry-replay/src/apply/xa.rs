//! MariaDB XA transactions (10.5+): the prepared rows are kept on the target until the source
//! commits or rolls the transaction back.
//!
//! MariaDB 10.5+ logs an XA transaction in two groups: `XA PREPARE` ends a group holding the
//! transaction's rows (GTID flag FL_PREPARED_XA), and `XA COMMIT` or `XA ROLLBACK` is a group of
//! its own later on (FL_COMPLETED_XA), possibly after other transactions, a source restart, or
//! from another session. The rows must reach the target atomically at the completion, and
//! nothing of them on a rollback.
//!
//! Ferry keeps the prepared rows in `ferry_meta.replay_xa` on the target, written in one target
//! transaction with the checkpoint that moves past the XA PREPARE group: row 0 of an xid is a
//! marker (the XA PREPARE was replayed), rows 1… are the decoded row changes in source order
//! ([`encode_change`]). At `XA COMMIT` the rows are read back in order, applied, deleted and the
//! checkpoint moved past the completion, in one target transaction; at `XA ROLLBACK` they are
//! deleted. So a `kill -9` at any moment between the two groups loses and repeats nothing: the
//! checkpoint names either a state before the XA PREPARE (it is replayed again) or one after it
//! with the rows stored on the target. Memory stays bounded whatever the size of the
//! transaction (rows are written as they are decoded, read back in pages). The alternatives were
//! worse: holding the rows in memory cannot survive a restart without holding the checkpoint
//! back (and replaying later transactions twice), and an XA transaction prepared on the target
//! itself would hold its row locks, and the checkpoint row's, across every later transaction.

use std::sync::Arc;

use ferry_core::sql::{quote_ident, quote_str};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::rowapply::apply_err;
use super::schema_cache::TableInfo;
use crate::decode::RowPair;
use crate::error::ReplayError;
use crate::event::{BinlogPos, RowsKind, XaXid};

fn table() -> String {
    format!(
        "{}.{}",
        quote_ident(ferry_core::selection::META_SCHEMA),
        quote_ident("replay_xa")
    )
}

/// Creates `ferry_meta.replay_xa` if missing, or migrates it ([`ferry_core::meta`]; DDL: call it
/// outside a target transaction).
pub(crate) async fn ensure_table(conn: &mut Conn, at: &BinlogPos) -> Result<(), ReplayError> {
    ferry_core::meta::ensure(conn).await.map_err(|e| match e {
        ferry_core::CoreError::Mysql { context, source } => apply_err(context, at, source),
        other => ReplayError::Checkpoint(other.to_string()),
    })
}

/// Stores row `seq` of a prepared XA transaction (0: the marker) inside the open transaction.
pub(crate) async fn store(
    conn: &mut Conn,
    job: &str,
    xid: &XaXid,
    seq: u32,
    data: Vec<u8>,
    at: &BinlogPos,
) -> Result<(), ReplayError> {
    conn.exec_drop(
        format!(
            "INSERT INTO {} (job, xid, seq, data) VALUES (?, ?, ?, ?)",
            table()
        ),
        (job, xid.sql(), seq, data),
    )
    .await
    .map_err(|e| apply_err(format!("storing the prepared XA transaction {xid}"), at, e))
}

/// The marker of a prepared XA transaction: `Some(idempotent)` when its XA PREPARE was replayed.
pub(crate) async fn marker(
    conn: &mut Conn,
    job: &str,
    xid: &XaXid,
    at: &BinlogPos,
) -> Result<Option<bool>, ReplayError> {
    let m: Option<Vec<u8>> = conn
        .exec_first(
            format!(
                "SELECT data FROM {} WHERE job = ? AND xid = ? AND seq = 0",
                table()
            ),
            (job, xid.sql()),
        )
        .await
        .map_err(|e| apply_err(format!("reading the prepared XA transaction {xid}"), at, e))?;
    Ok(m.map(|d| d.first().is_some_and(|b| *b != 0)))
}

/// Rows of a prepared XA transaction after `after`, at most `limit`, in order.
pub(crate) async fn page(
    conn: &mut Conn,
    job: &str,
    xid: &XaXid,
    after: u32,
    limit: u32,
    at: &BinlogPos,
) -> Result<Vec<(u32, Vec<u8>)>, ReplayError> {
    conn.exec(
        format!(
            "SELECT seq, data FROM {} WHERE job = ? AND xid = ? AND seq > ? ORDER BY seq LIMIT {limit}",
            table()
        ),
        (job, xid.sql(), after),
    )
    .await
    .map_err(|e| apply_err(format!("reading the prepared XA transaction {xid}"), at, e))
}

/// Deletes what is stored for an XA transaction.
pub(crate) async fn forget(
    conn: &mut Conn,
    job: &str,
    xid: &XaXid,
    at: &BinlogPos,
) -> Result<(), ReplayError> {
    conn.exec_drop(
        format!("DELETE FROM {} WHERE job = ? AND xid = ?", table()),
        (job, xid.sql()),
    )
    .await
    .map_err(|e| apply_err(format!("forgetting the prepared XA transaction {xid}"), at, e))
}

/// The XA transactions of a job prepared on the source and not yet completed (for the
/// cut-over's report). A missing table means none.
pub(crate) async fn pending(conn: &mut Conn, job: &str) -> Vec<String> {
    conn.exec(
        format!(
            "SELECT xid FROM {} WHERE job = ? AND seq = 0 ORDER BY xid",
            table()
        ),
        (job,),
    )
    .await
    .unwrap_or_default()
}

/// Deletes every stored XA transaction of a job (a job restarted from a new snapshot).
pub async fn clear(conn: &mut Conn, job: &str) -> Result<(), ReplayError> {
    let sql = format!("DELETE FROM {} WHERE job = {}", table(), quote_str(job));
    match conn.query_drop(sql).await {
        Ok(()) => Ok(()),
        // no table: nothing stored
        Err(e) if super::rowapply::server_code(&e) == Some(1146) => Ok(()),
        Err(e) => Err(apply_err(
            "clearing ferry_meta.replay_xa",
            &BinlogPos::new("", 0),
            e,
        )),
    }
}

/// One stored row change: the source table, the kind, whether the source session checked
/// foreign keys (its cascades are repeated), the rows event's position and the row images.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredChange {
    pub db: String,
    pub table: String,
    pub kind: RowsKind,
    pub fk_checks: bool,
    pub pos: BinlogPos,
    pub pairs: Vec<RowPair>,
}

const VERSION: u8 = 1;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::NULL => out.push(0),
        Value::Bytes(b) => {
            out.push(1);
            put_bytes(out, b);
        }
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::UInt(u) => {
            out.push(3);
            out.extend_from_slice(&u.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(4);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Double(d) => {
            out.push(5);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Date(y, mo, d, h, mi, s, us) => {
            out.push(6);
            out.extend_from_slice(&y.to_le_bytes());
            out.extend_from_slice(&[*mo, *d, *h, *mi, *s]);
            out.extend_from_slice(&us.to_le_bytes());
        }
        Value::Time(neg, days, h, m, s, us) => {
            out.push(7);
            out.push(u8::from(*neg));
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&[*h, *m, *s]);
            out.extend_from_slice(&us.to_le_bytes());
        }
    }
}

fn put_image(out: &mut Vec<u8>, img: &Option<Vec<Value>>) {
    match img {
        None => out.push(0),
        Some(vals) => {
            out.push(1);
            out.extend_from_slice(&(vals.len() as u32).to_le_bytes());
            for v in vals {
                put_value(out, v);
            }
        }
    }
}

/// Encodes a row change for [`store`]: exact values (FLOAT/DOUBLE bits, raw bytes).
pub(crate) fn encode_change(c: &StoredChange) -> Vec<u8> {
    let mut out = vec![VERSION];
    put_bytes(&mut out, c.db.as_bytes());
    put_bytes(&mut out, c.table.as_bytes());
    out.push(match c.kind {
        RowsKind::Insert => 0,
        RowsKind::Update => 1,
        RowsKind::Delete => 2,
    });
    out.push(u8::from(c.fk_checks));
    put_bytes(&mut out, c.pos.file.as_bytes());
    out.extend_from_slice(&c.pos.pos.to_le_bytes());
    out.extend_from_slice(&(c.pairs.len() as u32).to_le_bytes());
    for (b, a) in &c.pairs {
        put_image(&mut out, b);
        put_image(&mut out, a);
    }
    out
}

struct Reader<'a> {
    d: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.d.len());
        let Some(end) = end else {
            return Err(format!(
                "{} bytes, {n} more needed at offset {}",
                self.d.len(),
                self.at
            ));
        };
        let s = &self.d[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?).map_err(|_| "a name is not UTF-8".to_string())
    }
    fn value(&mut self) -> Result<Value, String> {
        Ok(match self.u8()? {
            0 => Value::NULL,
            1 => Value::Bytes(self.bytes()?),
            2 => Value::Int(i64::from_le_bytes(self.arr()?)),
            3 => Value::UInt(u64::from_le_bytes(self.arr()?)),
            4 => Value::Float(f32::from_bits(u32::from_le_bytes(self.arr()?))),
            5 => Value::Double(f64::from_bits(u64::from_le_bytes(self.arr()?))),
            6 => {
                let y = u16::from_le_bytes(self.arr()?);
                let [mo, d, h, mi, s] = self.arr()?;
                Value::Date(y, mo, d, h, mi, s, self.u32()?)
            }
            7 => {
                let neg = self.u8()? != 0;
                let days = self.u32()?;
                let [h, m, s] = self.arr()?;
                Value::Time(neg, days, h, m, s, self.u32()?)
            }
            t => return Err(format!("unknown value tag {t}")),
        })
    }
    fn image(&mut self) -> Result<Option<Vec<Value>>, String> {
        if self.u8()? == 0 {
            return Ok(None);
        }
        let n = self.u32()? as usize;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(self.value()?);
        }
        Ok(Some(v))
    }
}

/// Decodes what [`encode_change`] wrote; an error names what is wrong.
pub(crate) fn decode_change(d: &[u8]) -> Result<StoredChange, String> {
    let mut r = Reader { d, at: 0 };
    let v = r.u8()?;
    if v != VERSION {
        return Err(format!("format version {v}, this Ferry writes {VERSION}"));
    }
    let db = r.string()?;
    let table = r.string()?;
    let kind = match r.u8()? {
        0 => RowsKind::Insert,
        1 => RowsKind::Update,
        2 => RowsKind::Delete,
        k => return Err(format!("unknown change kind {k}")),
    };
    let fk_checks = r.u8()? != 0;
    let file = r.string()?;
    let pos = u64::from_le_bytes(r.arr()?);
    let n = r.u32()? as usize;
    let mut pairs = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let b = r.image()?;
        let a = r.image()?;
        pairs.push((b, a));
    }
    if r.at != d.len() {
        return Err(format!("{} trailing bytes", d.len() - r.at));
    }
    Ok(StoredChange {
        db,
        table,
        kind,
        fk_checks,
        pos: BinlogPos::new(file, pos),
        pairs,
    })
}

/// The change to apply for a stored one, with the table as the target has it now.
pub(crate) fn to_change(s: StoredChange, info: Arc<TableInfo>) -> super::rowapply::Change {
    let cascade =
        super::cascade::cascading_fk(&info.referenced_by, s.kind, s.fk_checks, &s.pairs).map(|fk| {
            format!(
                "{} (ON DELETE {}, ON UPDATE {})",
                fk.name,
                fk.on_delete.sql(),
                fk.on_update.sql()
            )
        });
    super::rowapply::Change {
        info,
        kind: s.kind,
        pos: s.pos,
        pairs: s.pairs,
        cascade,
        // Partial images are refused inside XA transactions before they are stored.
        before_cols: None,
        after_cols: None,
        json_diffs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_exactly() {
        let c = StoredChange {
            db: "d".into(),
            table: "tä".into(),
            kind: RowsKind::Update,
            fk_checks: true,
            pos: BinlogPos::new("mysql-bin.000009", 1 << 40),
            pairs: vec![
                (
                    Some(vec![
                        Value::Int(-5),
                        Value::UInt(u64::MAX),
                        Value::Float(f32::MIN_POSITIVE),
                        Value::Double(-0.0),
                        Value::NULL,
                    ]),
                    Some(vec![
                        Value::Bytes(vec![0, 255, b'\'']),
                        Value::Date(2024, 2, 29, 23, 59, 58, 999_999),
                        Value::Time(true, 34, 22, 59, 59, 1),
                        Value::Double(f64::NAN),
                        Value::Bytes(Vec::new()),
                    ]),
                ),
                (None, Some(vec![])),
            ],
        };
        let d = decode_change(&encode_change(&c)).unwrap();
        assert_eq!(d.db, c.db);
        assert_eq!(d.kind, c.kind);
        assert_eq!(d.pos, c.pos);
        assert_eq!(d.pairs.len(), 2);
        // NaN != NaN: compare bits
        match (
            &d.pairs[0].1.as_ref().unwrap()[3],
            &c.pairs[0].1.as_ref().unwrap()[3],
        ) {
            (Value::Double(a), Value::Double(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            _ => panic!(),
        }
        assert_eq!(d.pairs[0].0, c.pairs[0].0);
        assert_eq!(d.pairs[1], c.pairs[1]);
        let bytes = encode_change(&c);
        for cut in [0, 1, 5, bytes.len() - 1] {
            assert!(decode_change(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut more = bytes.clone();
        more.push(0);
        assert!(decode_change(&more).unwrap_err().contains("trailing"));
    }
}
