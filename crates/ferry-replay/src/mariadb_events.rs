//! Parsers for the MariaDB-only binlog events (types 160–171), which mysql_common does not know.
//!
//! - 160 ANNOTATE_ROWS: the SQL text of the statement whose rows follow;
//! - 161 BINLOG_CHECKPOINT: a binlog file name (crash recovery bookkeeping, ignorable);
//! - 162 GTID: starts an event group (replaces `BEGIN` at slave capability 4);
//! - 163 GTID_LIST: the binlog state at the start of a file (one GTID per domain and server);
//! - 164 START_ENCRYPTION: forwarded by the server after it decrypted the binlog, ignorable;
//! - 165–171 the zlib-compressed query and rows events (`log_bin_compress=ON`): inflated by
//!   [`decompress`] into the body of the uncompressed event they stand for (QUERY_EVENT,
//!   WRITE/UPDATE/DELETE_ROWS_EVENT_V1 or V2), which the caller then parses like any other.
//!   Any other type this module does not know is a definite error.
//!
//! Compressed bodies (MariaDB `log_event.cc`, `binlog_buf_compress`): the uncompressed prefix of
//! the event (a query event's post-header, status variables and database name; a rows event's
//! post-header, column count and column bitmaps) followed by one byte `0x80 | n` (bits 5–6, the
//! algorithm, are 0 = zlib; `n`, 1–4, the width of the length), the uncompressed length in `n`
//! big-endian bytes, then a zlib stream.
//!
//! The input of every parser is the event body as mysql_common hands it out (`Event::data()`):
//! the 19-byte header and the 4-byte checksum already removed. Layouts: MariaDB `log_event.cc`
//! (`Gtid_log_event`, `Gtid_list_log_event`, `Binlog_checkpoint_log_event`).

use ferry_core::position::MariaGtid;
use thiserror::Error;

/// ANNOTATE_ROWS_EVENT.
pub const ANNOTATE_ROWS: u8 = 160;
/// BINLOG_CHECKPOINT_EVENT.
pub const BINLOG_CHECKPOINT: u8 = 161;
/// GTID_EVENT.
pub const GTID: u8 = 162;
/// GTID_LIST_EVENT.
pub const GTID_LIST: u8 = 163;
/// START_ENCRYPTION_EVENT.
pub const START_ENCRYPTION: u8 = 164;
/// QUERY_COMPRESSED_EVENT: first of the compressed events (165–171).
pub const QUERY_COMPRESSED: u8 = 165;
/// WRITE_ROWS_COMPRESSED_EVENT_V1 (what MariaDB writes for `log_bin_compress=ON`).
pub const WRITE_ROWS_COMPRESSED_V1: u8 = 166;
/// UPDATE_ROWS_COMPRESSED_EVENT_V1.
pub const UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
/// DELETE_ROWS_COMPRESSED_EVENT_V1.
pub const DELETE_ROWS_COMPRESSED_V1: u8 = 168;
/// WRITE_ROWS_COMPRESSED_EVENT (version 2 layout).
pub const WRITE_ROWS_COMPRESSED: u8 = 169;
/// UPDATE_ROWS_COMPRESSED_EVENT (version 2 layout).
pub const UPDATE_ROWS_COMPRESSED: u8 = 170;
/// DELETE_ROWS_COMPRESSED_EVENT: last of the compressed events.
pub const DELETE_ROWS_COMPRESSED: u8 = 171;

/// The largest uncompressed body accepted from a compressed event (1 GiB, MariaDB's own limit
/// for one event: `max_allowed_packet` cannot exceed it).
pub const MAX_UNCOMPRESSED_BYTES: u64 = 1 << 30;

/// GTID flag: the group is a single statement without BEGIN/COMMIT (DDL, non-transactional).
pub const FL_STANDALONE: u8 = 1;
/// GTID flag: a commit id (group commit) follows the flags.
pub const FL_GROUP_COMMIT_ID: u8 = 2;
/// GTID flag: the group only touches transactional tables.
pub const FL_TRANSACTIONAL: u8 = 4;
/// GTID flag: the group may be applied in parallel with others.
pub const FL_ALLOW_PARALLEL: u8 = 8;
/// GTID flag: the transaction waited on a row lock on the primary (a conflict hint).
pub const FL_WAITED: u8 = 16;
/// GTID flag: the group is DDL.
pub const FL_DDL: u8 = 32;
/// GTID flag: XA PREPARE.
pub const FL_PREPARED_XA: u8 = 64;
/// GTID flag: XA COMMIT or XA ROLLBACK of a prepared XA transaction.
pub const FL_COMPLETED_XA: u8 = 128;

/// A MariaDB event that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MariaEventError {
    /// A compressed event whose body cannot be inflated exactly.
    #[error("compressed binlog event type {type_code} ({name}) cannot be inflated: {message}", name = event_name(*type_code))]
    Compressed { type_code: u8, message: String },
    /// A type in the MariaDB range that this module does not know.
    #[error("unknown MariaDB binlog event type {0}")]
    Unknown(u8),
    /// The body is shorter than its layout or inconsistent.
    #[error("malformed {name} event: {message}", name = event_name(*type_code))]
    Malformed { type_code: u8, message: String },
}

/// The name of an event type, MariaDB and MySQL ones alike, for messages.
pub fn event_name(type_code: u8) -> &'static str {
    match type_code {
        0 => "UNKNOWN_EVENT",
        1 => "START_EVENT_V3",
        2 => "QUERY_EVENT",
        3 => "STOP_EVENT",
        4 => "ROTATE_EVENT",
        5 => "INTVAR_EVENT",
        6 => "LOAD_EVENT",
        7 => "SLAVE_EVENT",
        8 => "CREATE_FILE_EVENT",
        9 => "APPEND_BLOCK_EVENT",
        10 => "EXEC_LOAD_EVENT",
        11 => "DELETE_FILE_EVENT",
        12 => "NEW_LOAD_EVENT",
        13 => "RAND_EVENT",
        14 => "USER_VAR_EVENT",
        15 => "FORMAT_DESCRIPTION_EVENT",
        16 => "XID_EVENT",
        17 => "BEGIN_LOAD_QUERY_EVENT",
        18 => "EXECUTE_LOAD_QUERY_EVENT",
        19 => "TABLE_MAP_EVENT",
        20..=22 => "PRE_GA_ROWS_EVENT",
        23 => "WRITE_ROWS_EVENT_V1",
        24 => "UPDATE_ROWS_EVENT_V1",
        25 => "DELETE_ROWS_EVENT_V1",
        26 => "INCIDENT_EVENT",
        27 => "HEARTBEAT_LOG_EVENT",
        28 => "IGNORABLE_LOG_EVENT",
        29 => "ROWS_QUERY_LOG_EVENT",
        30 => "WRITE_ROWS_EVENT",
        31 => "UPDATE_ROWS_EVENT",
        32 => "DELETE_ROWS_EVENT",
        33 => "GTID_LOG_EVENT",
        34 => "ANONYMOUS_GTID_LOG_EVENT",
        35 => "PREVIOUS_GTIDS_LOG_EVENT",
        36 => "TRANSACTION_CONTEXT_EVENT",
        37 => "VIEW_CHANGE_EVENT",
        38 => "XA_PREPARE_LOG_EVENT",
        39 => "PARTIAL_UPDATE_ROWS_EVENT",
        40 => "TRANSACTION_PAYLOAD_EVENT",
        41 => "HEARTBEAT_LOG_EVENT_V2",
        42 => "GTID_TAGGED_LOG_EVENT",
        160 => "ANNOTATE_ROWS_EVENT",
        161 => "BINLOG_CHECKPOINT_EVENT",
        162 => "GTID_EVENT",
        163 => "GTID_LIST_EVENT",
        164 => "START_ENCRYPTION_EVENT",
        165 => "QUERY_COMPRESSED_EVENT",
        166 => "WRITE_ROWS_COMPRESSED_EVENT_V1",
        167 => "UPDATE_ROWS_COMPRESSED_EVENT_V1",
        168 => "DELETE_ROWS_COMPRESSED_EVENT_V1",
        169 => "WRITE_ROWS_COMPRESSED_EVENT",
        170 => "UPDATE_ROWS_COMPRESSED_EVENT",
        171 => "DELETE_ROWS_COMPRESSED_EVENT",
        _ => "unknown",
    }
}

/// The XID of an XA transaction carried by a GTID event with FL_PREPARED_XA or FL_COMPLETED_XA.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct XaXid {
    pub format_id: u32,
    pub gtrid: Vec<u8>,
    pub bqual: Vec<u8>,
}

impl XaXid {
    /// `X'gtrid',X'bqual',format_id`, the form of `XA RECOVER FORMAT='SQL'` and of the binlog's
    /// `XA COMMIT` statements: unique per XA transaction, and a key for Ferry's bookkeeping.
    pub fn sql(&self) -> String {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        format!(
            "X'{}',X'{}',{}",
            hex(&self.gtrid),
            hex(&self.bqual),
            self.format_id
        )
    }
}

impl std::fmt::Display for XaXid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A MariaDB GTID event (162): the start of an event group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariaGtidEvent {
    pub seq_no: u64,
    pub domain: u32,
    /// From the event header.
    pub server_id: u32,
    /// `FL_*` bits.
    pub flags: u8,
    /// Group commit id, when FL_GROUP_COMMIT_ID is set: groups with the same id committed
    /// together on the source and may be applied in parallel.
    pub commit_id: Option<u64>,
    /// The XA transaction, when FL_PREPARED_XA or FL_COMPLETED_XA is set.
    pub xa: Option<XaXid>,
}

impl MariaGtidEvent {
    /// `domain-server-seq`.
    pub fn gtid(&self) -> MariaGtid {
        MariaGtid {
            domain: self.domain,
            server: self.server_id,
            seq: self.seq_no,
        }
    }
    /// The group is one statement, with no COMMIT after it.
    pub fn is_standalone(&self) -> bool {
        self.flags & FL_STANDALONE != 0
    }
    /// The group touches only transactional tables.
    pub fn is_transactional(&self) -> bool {
        self.flags & FL_TRANSACTIONAL != 0
    }
    /// The group is DDL.
    pub fn is_ddl(&self) -> bool {
        self.flags & FL_DDL != 0
    }
    /// The group may be applied in parallel with others.
    pub fn allows_parallel(&self) -> bool {
        self.flags & FL_ALLOW_PARALLEL != 0
    }
    /// The transaction waited on a row lock on the source.
    pub fn waited(&self) -> bool {
        self.flags & FL_WAITED != 0
    }
    /// XA PREPARE or XA COMMIT/ROLLBACK.
    pub fn is_xa(&self) -> bool {
        self.flags & (FL_PREPARED_XA | FL_COMPLETED_XA) != 0
    }
}

/// A MariaDB GTID_LIST event (163).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtidListEvent {
    /// The high 4 bits of the count word.
    pub flags: u8,
    /// The last GTID of each (domain, server) pair, in event order.
    pub gtids: Vec<MariaGtid>,
}

/// A parsed MariaDB event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MariaEvent {
    /// 160: the statement text, in the connection's charset.
    AnnotateRows(Vec<u8>),
    /// 161: a binlog file name.
    BinlogCheckpoint(String),
    /// 162.
    Gtid(MariaGtidEvent),
    /// 163.
    GtidList(GtidListEvent),
    /// 164.
    StartEncryption,
}

fn malformed(type_code: u8, message: impl Into<String>) -> MariaEventError {
    MariaEventError::Malformed {
        type_code,
        message: message.into(),
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
    type_code: u8,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], MariaEventError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(malformed(
                self.type_code,
                format!(
                    "{} bytes, need {} more for {what} at offset {}",
                    self.data.len(),
                    n,
                    self.at
                ),
            )),
        }
    }
    fn u8(&mut self, what: &str) -> Result<u8, MariaEventError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, MariaEventError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, MariaEventError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Parses a GTID event body (162). `server_id` comes from the event header.
pub fn parse_gtid(server_id: u32, data: &[u8]) -> Result<MariaGtidEvent, MariaEventError> {
    let mut c = Cursor {
        data,
        at: 0,
        type_code: GTID,
    };
    let seq_no = c.u64("seq_no")?;
    let domain = c.u32("domain_id")?;
    let flags = c.u8("flags2")?;
    let xa_flags = flags & (FL_PREPARED_XA | FL_COMPLETED_XA) != 0;
    let commit_id = if flags & FL_GROUP_COMMIT_ID != 0 {
        Some(c.u64("commit_id")?)
    } else {
        // Six unused bytes, except in front of an XA xid, which follows the flags directly
        // (MariaDB's `Gtid_log_event` reader); older servers may end the body earlier.
        if !xa_flags {
            let _ = c.take(6.min(data.len() - c.at), "padding")?;
        }
        None
    };
    let xa = if xa_flags {
        let format_id = c.u32("XA format id")?;
        let gtrid_len = usize::from(c.u8("XA gtrid length")?);
        let bqual_len = usize::from(c.u8("XA bqual length")?);
        let gtrid = c.take(gtrid_len, "XA gtrid")?.to_vec();
        let bqual = c.take(bqual_len, "XA bqual")?.to_vec();
        Some(XaXid {
            format_id,
            gtrid,
            bqual,
        })
    } else {
        None
    };
    // Newer servers may append extra flags (flags_extra, e.g. for 11.x); they do not change
    // the meaning of the fields above, so trailing bytes are accepted.
    Ok(MariaGtidEvent {
        seq_no,
        domain,
        server_id,
        flags,
        commit_id,
        xa,
    })
}

/// Parses a GTID_LIST event body (163).
pub fn parse_gtid_list(data: &[u8]) -> Result<GtidListEvent, MariaEventError> {
    let mut c = Cursor {
        data,
        at: 0,
        type_code: GTID_LIST,
    };
    let word = c.u32("count")?;
    let count = (word & 0x0fff_ffff) as usize;
    let flags = (word >> 28) as u8;
    let needed = count.checked_mul(16);
    if needed.is_none_or(|n| n > data.len() - 4) {
        return Err(malformed(
            GTID_LIST,
            format!("count {count} does not fit in {} bytes", data.len()),
        ));
    }
    let mut gtids = Vec::with_capacity(count);
    for _ in 0..count {
        let domain = c.u32("domain_id")?;
        let server = c.u32("server_id")?;
        let seq = c.u64("seq_no")?;
        gtids.push(MariaGtid { domain, server, seq });
    }
    Ok(GtidListEvent { flags, gtids })
}

/// Parses a BINLOG_CHECKPOINT event body (161): `u32 length` + file name.
pub fn parse_binlog_checkpoint(data: &[u8]) -> Result<String, MariaEventError> {
    let mut c = Cursor {
        data,
        at: 0,
        type_code: BINLOG_CHECKPOINT,
    };
    let len = c.u32("name length")? as usize;
    let name = c.take(len, "file name")?;
    String::from_utf8(name.to_vec()).map_err(|_| malformed(BINLOG_CHECKPOINT, "file name is not UTF-8"))
}

/// True for the types of the MariaDB range (160–171 and above).
pub fn is_mariadb_type(type_code: u8) -> bool {
    type_code >= ANNOTATE_ROWS
}

/// True for the compressed query and rows events (165–171).
pub fn is_compressed(type_code: u8) -> bool {
    (QUERY_COMPRESSED..=DELETE_ROWS_COMPRESSED).contains(&type_code)
}

/// The uncompressed event type a compressed one stands for.
pub fn uncompressed_type(type_code: u8) -> Option<u8> {
    Some(match type_code {
        QUERY_COMPRESSED => 2,
        WRITE_ROWS_COMPRESSED_V1 => 23,
        UPDATE_ROWS_COMPRESSED_V1 => 24,
        DELETE_ROWS_COMPRESSED_V1 => 25,
        WRITE_ROWS_COMPRESSED => 30,
        UPDATE_ROWS_COMPRESSED => 31,
        DELETE_ROWS_COMPRESSED => 32,
        _ => return None,
    })
}

/// A length-encoded integer (rows events' column count).
fn lenenc(c: &mut Cursor<'_>, what: &str) -> Result<u64, MariaEventError> {
    let first = c.u8(what)?;
    let n = match first {
        0..=250 => return Ok(u64::from(first)),
        252 => 2,
        253 => 3,
        254 => 8,
        _ => {
            return Err(malformed(
                c.type_code,
                format!("{what}: invalid length byte {first}"),
            ))
        }
    };
    let b = c.take(n, what)?;
    Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// Inflates one compressed field (`0x80 | n`, `n` big-endian length bytes, zlib): exactly the
/// declared length, at most `max` bytes.
pub fn inflate_field(type_code: u8, data: &[u8], max: u64) -> Result<Vec<u8>, MariaEventError> {
    use std::io::Read;
    let bad = |message: String| MariaEventError::Compressed { type_code, message };
    let Some(&head) = data.first() else {
        return Err(bad("no compressed data".into()));
    };
    if head & 0xe0 != 0x80 {
        return Err(bad(format!(
            "compression header byte 0x{head:02x}: only zlib (0x80 | length width) is defined"
        )));
    }
    let lenlen = usize::from(head & 0x07);
    if !(1..=4).contains(&lenlen) || data.len() < 1 + lenlen {
        return Err(bad(format!("length width {lenlen} in {} bytes", data.len())));
    }
    let len = data[1..1 + lenlen]
        .iter()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    if len > max {
        return Err(bad(format!(
            "{len} bytes uncompressed, above Ferry's bound of {max} bytes for one event"
        )));
    }
    let mut out = Vec::with_capacity(len as usize);
    let z = flate2::read::ZlibDecoder::new(&data[1 + lenlen..]);
    // one byte more than declared, to notice a stream longer than its header says
    z.take(len + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("zlib: {e}")))?;
    if out.len() as u64 != len {
        return Err(bad(format!(
            "inflated to {} bytes, the header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

/// The body of the uncompressed event a compressed one (165–171) stands for: its type and its
/// bytes (the event body as [`parse`] takes it: no header, no checksum). Rows events have a
/// 6-byte table id (MariaDB always writes 6).
pub fn decompress(type_code: u8, data: &[u8]) -> Result<(u8, Vec<u8>), MariaEventError> {
    let Some(plain) = uncompressed_type(type_code) else {
        return Err(MariaEventError::Unknown(type_code));
    };
    let mut c = Cursor {
        data,
        at: 0,
        type_code,
    };
    if type_code == QUERY_COMPRESSED {
        // thread id 4, exec time 4, db length 1, error code 2, status vars length 2
        let _ = c.take(8, "thread id and exec time")?;
        let db_len = usize::from(c.u8("db length")?);
        let _ = c.take(2, "error code")?;
        let b = c.take(2, "status variables length")?;
        let vars_len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        let _ = c.take(vars_len, "status variables")?;
        let _ = c.take(db_len + 1, "database name")?;
    } else {
        let _ = c.take(8, "table id and flags")?;
        if plain >= 30 {
            let b = c.take(2, "extra data length")?;
            let extra = usize::from(u16::from_le_bytes([b[0], b[1]]));
            let _ = c.take(extra.saturating_sub(2), "extra data")?;
        }
        let width = lenenc(&mut c, "column count")?;
        let bitmap = usize::try_from(width.div_ceil(8))
            .map_err(|_| malformed(type_code, format!("column count {width}")))?;
        let _ = c.take(bitmap, "columns bitmap")?;
        if plain == 24 || plain == 31 {
            let _ = c.take(bitmap, "after-image columns bitmap")?;
        }
    }
    let prefix = c.at;
    let inflated = inflate_field(type_code, &data[prefix..], MAX_UNCOMPRESSED_BYTES)?;
    let mut out = Vec::with_capacity(prefix + inflated.len());
    out.extend_from_slice(&data[..prefix]);
    out.extend_from_slice(&inflated);
    Ok((plain, out))
}

/// Parses any MariaDB event. Compressed events (165–171, see [`decompress`]) and unknown types
/// are errors here.
pub fn parse(type_code: u8, server_id: u32, data: &[u8]) -> Result<MariaEvent, MariaEventError> {
    match type_code {
        ANNOTATE_ROWS => Ok(MariaEvent::AnnotateRows(data.to_vec())),
        BINLOG_CHECKPOINT => parse_binlog_checkpoint(data).map(MariaEvent::BinlogCheckpoint),
        GTID => parse_gtid(server_id, data).map(MariaEvent::Gtid),
        GTID_LIST => parse_gtid_list(data).map(MariaEvent::GtidList),
        START_ENCRYPTION => Ok(MariaEvent::StartEncryption),
        QUERY_COMPRESSED..=DELETE_ROWS_COMPRESSED => Err(MariaEventError::Compressed {
            type_code,
            message: "a compressed event is inflated before it is parsed".into(),
        }),
        t => Err(MariaEventError::Unknown(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a captured event (header + body + CRC32) into (type, server id, body) and checks
    /// the CRC, as the stream does.
    fn split(ev: &[u8]) -> (u8, u32, &[u8]) {
        assert!(ev.len() >= 23);
        let size = u32::from_le_bytes(ev[9..13].try_into().unwrap()) as usize;
        assert_eq!(size, ev.len(), "event size field");
        let crc = u32::from_le_bytes(ev[ev.len() - 4..].try_into().unwrap());
        assert_eq!(crc32fast::hash(&ev[..ev.len() - 4]), crc, "captured CRC32");
        let server = u32::from_le_bytes(ev[5..9].try_into().unwrap());
        (ev[4], server, &ev[19..ev.len() - 4])
    }

    const GTID_DDL: &[u8] = include_bytes!("../tests/data/mariadb-gtid-ddl.event");
    const GTID_TRX: &[u8] = include_bytes!("../tests/data/mariadb-gtid-trx.event");
    const GTID_LIST_EMPTY: &[u8] = include_bytes!("../tests/data/mariadb-gtid-list-empty.event");
    const GTID_LIST_ONE: &[u8] = include_bytes!("../tests/data/mariadb-gtid-list-one.event");
    const CHECKPOINT: &[u8] = include_bytes!("../tests/data/mariadb-binlog-checkpoint.event");
    const ANNOTATE: &[u8] = include_bytes!("../tests/data/mariadb-annotate-rows.event");

    #[test]
    fn gtid_ddl_captured() {
        let (t, server, body) = split(GTID_DDL);
        assert_eq!(t, GTID);
        let MariaEvent::Gtid(g) = parse(t, server, body).unwrap() else {
            panic!("not a GTID")
        };
        assert_eq!(g.gtid().to_string(), "0-1-19");
        assert!(g.is_standalone() && g.is_ddl() && g.allows_parallel());
        assert!(!g.is_transactional());
        assert_eq!(g.commit_id, None);
        assert_eq!(g.xa, None);
    }

    #[test]
    fn gtid_transaction_captured() {
        let (t, server, body) = split(GTID_TRX);
        let g = parse_gtid(server, body).unwrap();
        assert_eq!(t, GTID);
        assert_eq!(g.gtid().to_string(), "0-1-22");
        assert!(g.is_transactional() && !g.is_standalone() && !g.is_ddl());
    }

    #[test]
    fn gtid_group_commit_and_xa_synthetic() {
        // seq 7, domain 3, flags GROUP_COMMIT_ID|TRANSACTIONAL, commit id 0x0102
        let mut body = Vec::new();
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&3u32.to_le_bytes());
        body.push(FL_GROUP_COMMIT_ID | FL_TRANSACTIONAL);
        body.extend_from_slice(&0x0102u64.to_le_bytes());
        let g = parse_gtid(9, &body).unwrap();
        assert_eq!(g.gtid().to_string(), "3-9-7");
        assert_eq!(g.commit_id, Some(0x0102));
        // XA PREPARE: format id, lengths, gtrid, bqual right after the flags (no padding)
        let mut body = Vec::new();
        body.extend_from_slice(&8u64.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(FL_PREPARED_XA);
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(b"abc");
        let g = parse_gtid(1, &body).unwrap();
        assert!(g.is_xa());
        let xa = g.xa.unwrap();
        assert_eq!(
            (xa.gtrid.as_slice(), xa.bqual.as_slice()),
            (&b"ab"[..], &b"c"[..])
        );
        // truncated
        assert!(matches!(
            parse_gtid(1, &body[..10]),
            Err(MariaEventError::Malformed { type_code: GTID, .. })
        ));
    }

    /// Bodies captured from MariaDB 10.11 (`mariadb-binlog --hexdump`): `XA START 'gt1','bq'` …
    /// `XA PREPARE` (flags PREPARED_XA|ALLOW_PARALLEL|TRANSACTIONAL, two trailing extra-flag
    /// bytes), then `XA COMMIT 'gt1','bq'` (COMPLETED_XA|ALLOW_PARALLEL|TRANSACTIONAL|STANDALONE).
    #[test]
    fn gtid_xa_captured() {
        let unhex = |h: &str| -> Vec<u8> {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        };
        let prepared = unhex(
            "8dce00000000000000000000\
                              4c010000000302677431627101ff",
        );
        let g = parse_gtid(1, &prepared).unwrap();
        assert_eq!(g.gtid().to_string(), "0-1-52877");
        assert_eq!(g.flags & FL_PREPARED_XA, FL_PREPARED_XA);
        assert!(g.is_xa() && g.is_transactional() && !g.is_standalone());
        assert_eq!(g.xa.unwrap().sql(), "X'677431',X'6271',1");
        let completed = unhex("8ece000000000000000000008d0100000003026774316271");
        let g = parse_gtid(1, &completed).unwrap();
        assert_eq!(g.gtid().to_string(), "0-1-52878");
        assert!(g.flags & FL_COMPLETED_XA != 0 && g.is_standalone());
        assert_eq!(g.xa.unwrap().to_string(), "X'677431',X'6271',1");
        // an empty bqual (XA START 'gt3')
        let g = parse_gtid(1, &unhex("90ce000000000000000000004c01000000030067743301ff")).unwrap();
        assert_eq!(g.xa.unwrap().sql(), "X'677433',X'',1");
        // the body the issue saw: cut inside the xid
        assert!(parse_gtid(1, &completed[..18]).is_err());
    }

    #[test]
    fn gtid_list_captured() {
        let (t, _, body) = split(GTID_LIST_EMPTY);
        assert_eq!(t, GTID_LIST);
        assert_eq!(parse_gtid_list(body).unwrap().gtids, vec![]);
        let (t, _, body) = split(GTID_LIST_ONE);
        assert_eq!(t, GTID_LIST);
        let l = parse_gtid_list(body).unwrap();
        assert_eq!(l.flags, 0);
        assert_eq!(
            l.gtids,
            vec![MariaGtid {
                domain: 0,
                server: 1,
                seq: 23
            }]
        );
        // a count larger than the body
        let mut bad = body.to_vec();
        bad[0] = 5;
        assert!(parse_gtid_list(&bad).is_err());
    }

    #[test]
    fn checkpoint_and_annotate_captured() {
        let (t, server, body) = split(CHECKPOINT);
        assert_eq!(
            parse(t, server, body).unwrap(),
            MariaEvent::BinlogCheckpoint("mysql-bin.000001".into())
        );
        let (t, server, body) = split(ANNOTATE);
        assert_eq!(
            parse(t, server, body).unwrap(),
            MariaEvent::AnnotateRows(b"INSERT INTO fr_capture.t VALUES (1,'a')".to_vec())
        );
        assert!(parse_binlog_checkpoint(&body[..3]).is_err());
    }

    /// `binlog_buf_compress`: `0x80 | width`, the big-endian length, zlib.
    fn compress_field(plain: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let len = plain.len() as u32;
        let width = if len > 0xff_ffff {
            4
        } else if len > 0xffff {
            3
        } else if len > 0xff {
            2
        } else {
            1
        };
        let mut out = vec![0x80 | width as u8];
        out.extend_from_slice(&len.to_be_bytes()[4 - width..]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(plain).unwrap();
        out.extend_from_slice(&z.finish().unwrap());
        out
    }

    #[test]
    fn compressed_rows_and_query_bodies_inflate_to_their_plain_events() {
        // UPDATE_ROWS_COMPRESSED_EVENT_V1, 3 columns: table id, flags, width, two bitmaps
        let prefix = [7u8, 0, 0, 0, 0, 0, 1, 0, 3, 0b111, 0b101];
        let rows: Vec<u8> = (0..1000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut body = prefix.to_vec();
        body.extend_from_slice(&compress_field(&rows));
        let (t, plain) = decompress(UPDATE_ROWS_COMPRESSED_V1, &body).unwrap();
        assert_eq!(t, 24);
        assert_eq!(&plain[..prefix.len()], &prefix);
        assert_eq!(&plain[prefix.len()..], &rows[..]);
        // V2 layout: extra data (length 4 including itself), a write has one bitmap
        let prefix = [7u8, 0, 0, 0, 0, 0, 1, 0, 4, 0, 9, 9, 2, 0b11];
        let mut body = prefix.to_vec();
        body.extend_from_slice(&compress_field(b"xy"));
        let (t, plain) = decompress(WRITE_ROWS_COMPRESSED, &body).unwrap();
        assert_eq!((t, &plain[prefix.len()..]), (30, &b"xy"[..]));
        // QUERY_COMPRESSED_EVENT: post-header, 2 bytes of status vars, db "d\0"
        let mut q = vec![1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0x0c, 0, b'd', 0];
        let head = q.len();
        let sql = b"ALTER TABLE t ADD COLUMN c INT";
        q.extend_from_slice(&compress_field(sql));
        let (t, plain) = decompress(QUERY_COMPRESSED, &q).unwrap();
        assert_eq!((t, &plain[head..]), (2, &sql[..]));
        // a 3-byte length (70 000 bytes)
        let big = vec![b'a'; 70_000];
        let f = compress_field(&big);
        assert_eq!(f[0], 0x83);
        assert_eq!(inflate_field(166, &f, MAX_UNCOMPRESSED_BYTES).unwrap(), big);
    }

    #[test]
    fn bad_compressed_bodies_are_errors_naming_the_event() {
        let good = compress_field(b"hello world");
        // wrong declared length
        let mut bad = good.clone();
        bad[1] = 12;
        let e = inflate_field(166, &bad, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("WRITE_ROWS_COMPRESSED_EVENT_V1"), "{e}");
        bad[1] = 10;
        assert!(inflate_field(166, &bad, 1 << 20).is_err());
        // an unknown algorithm
        let mut bad = good.clone();
        bad[0] = 0xa1;
        assert!(inflate_field(166, &bad, 1 << 20).is_err());
        // above the bound
        assert!(inflate_field(166, &good, 5)
            .unwrap_err()
            .to_string()
            .contains("bound"));
        // truncated zlib
        assert!(inflate_field(166, &good[..good.len() - 3], 1 << 20).is_err());
        // a body too short for its prefix
        assert!(matches!(
            decompress(UPDATE_ROWS_COMPRESSED_V1, &[1, 2, 3]),
            Err(MariaEventError::Malformed { .. })
        ));
    }

    #[test]
    fn compressed_and_unknown_are_errors() {
        for t in QUERY_COMPRESSED..=DELETE_ROWS_COMPRESSED {
            assert!(is_compressed(t));
            let e = parse(t, 1, &[]).unwrap_err();
            assert!(matches!(e, MariaEventError::Compressed { type_code, .. } if type_code == t));
            assert!(e.to_string().contains(&t.to_string()), "{e}");
        }
        assert_eq!(event_name(166), "WRITE_ROWS_COMPRESSED_EVENT_V1");
        assert_eq!(event_name(171), "DELETE_ROWS_COMPRESSED_EVENT");
        assert_eq!(parse(200, 1, &[]).unwrap_err(), MariaEventError::Unknown(200));
        assert_eq!(
            parse(START_ENCRYPTION, 1, &[1, 2]).unwrap(),
            MariaEvent::StartEncryption
        );
    }
}
