//! MySQL binlog files built byte by byte, for the events the MariaDB test servers cannot write:
//! a `PARTIAL_UPDATE_ROWS_EVENT` (`binlog_row_value_options=PARTIAL_JSON`) whose JSON columns
//! carry diffs, encoded exactly as MySQL's `Json_diff_vector::write_binary` does (4-byte length,
//! then per diff: the operation byte, the path as a length-encoded string, and for REPLACE and
//! INSERT the value as length-encoded binary JSON), inside a MySQL 8.0 file (format description
//! without checksums, `BEGIN`, table map, the rows event, XID).
//!
//! Binary JSON ([`jsonb`]) is written in the small storage format (containers under 64 KiB):
//! objects with their keys sorted as MySQL stores them (length, then bytes), integers as int16
//! inline or int64, doubles, strings, literals.

use serde_json::Value as Json;

/// A column of the table map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// INT (4 bytes)
    Int,
    /// JSON
    Json,
}

/// One diff of a JSON column (MySQL's `enum_json_diff_operation`).
#[derive(Debug, Clone, PartialEq)]
pub enum Diff {
    Replace(String, Json),
    Insert(String, Json),
    Remove(String),
}

/// A value of one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i32),
    /// A whole JSON document.
    Json(Json),
    /// A JSON column's diffs (after images of a partial update only).
    Diffs(Vec<Diff>),
}

fn varlen(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// MySQL's length-encoded integer.
fn lenenc(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if n < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&n.to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// A JSON document as MySQL's binary JSON (type byte, then the value).
pub fn jsonb(v: &Json) -> Vec<u8> {
    let (t, body) = value(v);
    let mut out = vec![t];
    out.extend_from_slice(&body);
    out
}

fn value(v: &Json) -> (u8, Vec<u8>) {
    match v {
        Json::Null => (0x04, vec![0]),
        Json::Bool(true) => (0x04, vec![1]),
        Json::Bool(false) => (0x04, vec![2]),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => (0x09, i.to_le_bytes().to_vec()),
            (None, Some(u), _) => (0x0a, u.to_le_bytes().to_vec()),
            (_, _, f) => (0x0b, f.unwrap_or(0.0).to_le_bytes().to_vec()),
        },
        Json::String(s) => {
            let mut b = Vec::new();
            varlen(&mut b, s.len());
            b.extend_from_slice(s.as_bytes());
            (0x0c, b)
        }
        Json::Array(items) => (0x02, container(None, &items.iter().collect::<Vec<_>>())),
        Json::Object(m) => {
            let mut e: Vec<(&String, &Json)> = m.iter().collect();
            e.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
            let keys: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
            let vals: Vec<&Json> = e.iter().map(|x| x.1).collect();
            (0x00, container(Some(&keys), &vals))
        }
    }
}

fn container(keys: Option<&[&str]>, vals: &[&Json]) -> Vec<u8> {
    let n = vals.len();
    let header = 4 + keys.map_or(0, |_| 4 * n) + 3 * n;
    let mut tail = Vec::new();
    let mut key_entries = Vec::new();
    for k in keys.unwrap_or(&[]) {
        key_entries.extend_from_slice(&((header + tail.len()) as u16).to_le_bytes());
        key_entries.extend_from_slice(&(k.len() as u16).to_le_bytes());
        tail.extend_from_slice(k.as_bytes());
    }
    let mut value_entries = Vec::new();
    for v in vals {
        match v {
            Json::Null | Json::Bool(_) => {
                let (t, b) = value(v);
                value_entries.push(t);
                value_entries.extend_from_slice(&[b[0], 0]);
            }
            Json::Number(n) if n.as_i64().is_some_and(|i| i16::try_from(i).is_ok()) => {
                value_entries.push(0x05);
                let i = n.as_i64().unwrap_or_default() as i16;
                value_entries.extend_from_slice(&i.to_le_bytes());
            }
            _ => {
                let (t, b) = value(v);
                value_entries.push(t);
                value_entries.extend_from_slice(&((header + tail.len()) as u16).to_le_bytes());
                tail.extend_from_slice(&b);
            }
        }
    }
    let size = header + tail.len();
    assert!(size < 65536, "test documents stay in the small format");
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(size as u16).to_le_bytes());
    out.extend_from_slice(&key_entries);
    out.extend_from_slice(&value_entries);
    out.extend_from_slice(&tail);
    out
}

/// `Json_diff_vector::write_binary`: a 4-byte length, then each diff.
pub fn diff_vector(diffs: &[Diff]) -> Vec<u8> {
    let mut body = Vec::new();
    for d in diffs {
        let (op, path, v) = match d {
            Diff::Replace(p, v) => (0u8, p, Some(v)),
            Diff::Insert(p, v) => (1, p, Some(v)),
            Diff::Remove(p) => (2, p, None),
        };
        body.push(op);
        lenenc(&mut body, path.len() as u64);
        body.extend_from_slice(path.as_bytes());
        if let Some(v) = v {
            let b = jsonb(v);
            lenenc(&mut body, b.len() as u64);
            body.extend_from_slice(&b);
        }
    }
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Post-header lengths of MySQL 8.0's event types 1..=41.
const POST_HEADER_LENGTHS: [u8; 41] = [
    56, 13, 0, 8, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 98, 0, 4, 26, 8, 0, 0, 0, 8, 8, 8, 2, 0, 0, 0, 10, 10, 10,
    42, 42, 0, 18, 52, 0, 10, 0, 0,
];

/// A binlog file under construction.
pub struct BinlogFile {
    bytes: Vec<u8>,
}

impl Default for BinlogFile {
    fn default() -> Self {
        Self::new()
    }
}

impl BinlogFile {
    /// The magic and a MySQL 8.0.36 format description without checksums.
    pub fn new() -> Self {
        let mut f = BinlogFile {
            bytes: vec![0xfe, b'b', b'i', b'n'],
        };
        let mut body = Vec::new();
        body.extend_from_slice(&4u16.to_le_bytes());
        let mut version = b"8.0.36".to_vec();
        version.resize(50, 0);
        body.extend_from_slice(&version);
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(19);
        body.extend_from_slice(&POST_HEADER_LENGTHS);
        body.push(0); // BINLOG_CHECKSUM_ALG_OFF
        body.extend_from_slice(&[0; 4]);
        f.event(15, 0, &body);
        f
    }

    /// Appends an event (header with the end position as log_pos).
    fn event(&mut self, t: u8, flags: u16, body: &[u8]) {
        let size = 19 + body.len();
        let end = self.bytes.len() + size;
        self.bytes.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        self.bytes.push(t);
        self.bytes.extend_from_slice(&1u32.to_le_bytes());
        self.bytes.extend_from_slice(&(size as u32).to_le_bytes());
        self.bytes.extend_from_slice(&(end as u32).to_le_bytes());
        self.bytes.extend_from_slice(&flags.to_le_bytes());
        self.bytes.extend_from_slice(body);
    }

    /// A QUERY_EVENT (no status variables).
    pub fn query(&mut self, db: &str, sql: &str) -> &mut Self {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_le_bytes()); // thread id
        b.extend_from_slice(&0u32.to_le_bytes()); // exec time
        b.push(db.len() as u8);
        b.extend_from_slice(&0u16.to_le_bytes()); // error code
        b.extend_from_slice(&0u16.to_le_bytes()); // status vars length
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b.extend_from_slice(sql.as_bytes());
        self.event(2, 0, &b);
        self
    }

    /// A TABLE_MAP_EVENT (all columns nullable).
    pub fn table_map(&mut self, table_id: u64, db: &str, table: &str, cols: &[Col]) -> &mut Self {
        let mut b = table_id.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.push(db.len() as u8);
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b.push(table.len() as u8);
        b.extend_from_slice(table.as_bytes());
        b.push(0);
        lenenc(&mut b, cols.len() as u64);
        let mut meta = Vec::new();
        for c in cols {
            match c {
                Col::Int => b.push(3),
                Col::Json => {
                    b.push(245);
                    meta.push(4);
                }
            }
        }
        lenenc(&mut b, meta.len() as u64);
        b.extend_from_slice(&meta);
        b.extend_from_slice(&vec![0xff; cols.len().div_ceil(8)]);
        self.event(19, 0, &b);
        self
    }

    /// A PARTIAL_UPDATE_ROWS_EVENT (type 39) with full images: each row (before, after); an
    /// after image's `Cell::Diffs` sets its JSON column's partial bit.
    pub fn partial_update(
        &mut self,
        table_id: u64,
        cols: &[Col],
        rows: &[(Vec<Cell>, Vec<Cell>)],
    ) -> &mut Self {
        let n = cols.len();
        let mut b = table_id.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&1u16.to_le_bytes()); // STMT_END_F
        b.extend_from_slice(&2u16.to_le_bytes()); // no extra data
        lenenc(&mut b, n as u64);
        let all = vec![0xffu8; n.div_ceil(8)];
        b.extend_from_slice(&all);
        b.extend_from_slice(&all);
        let json_cols: Vec<usize> = (0..n).filter(|&i| cols[i] == Col::Json).collect();
        for (before, after) in rows {
            image(&mut b, before);
            lenenc(&mut b, 1); // PARTIAL_JSON_UPDATES
            let mut bits = vec![0u8; json_cols.len().div_ceil(8)];
            for (k, &i) in json_cols.iter().enumerate() {
                if matches!(after[i], Cell::Diffs(_)) {
                    bits[k / 8] |= 1 << (k % 8);
                }
            }
            b.extend_from_slice(&bits);
            image(&mut b, after);
        }
        self.event(39, 0, &b);
        self
    }

    /// An XID_EVENT (commit).
    pub fn xid(&mut self, xid: u64) -> &mut Self {
        self.event(16, 0, &xid.to_le_bytes());
        self
    }

    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

fn image(out: &mut Vec<u8>, cells: &[Cell]) {
    let mut nulls = vec![0u8; cells.len().div_ceil(8)];
    for (i, c) in cells.iter().enumerate() {
        if *c == Cell::Null {
            nulls[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&nulls);
    for c in cells {
        match c {
            Cell::Null => {}
            Cell::Int(i) => out.extend_from_slice(&i.to_le_bytes()),
            Cell::Json(j) => {
                let v = jsonb(j);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(&v);
            }
            Cell::Diffs(d) => out.extend_from_slice(&diff_vector(d)),
        }
    }
}
