//! The state machine between raw binlog events and [`ReplEvent`]s, shared by the network
//! stream and the file reader.
//!
//! It owns everything that needs memory across events:
//! - the position: `(file, next offset)` from each header's `log_pos` (u32, widened across the
//!   4 GiB wrap by tracking the high bits), a Rotate's payload for the new file, a heartbeat's
//!   file name and `log_pos` while the source is idle; artificial events with `log_pos = 0` and
//!   events inside a MySQL transaction payload do not move it;
//! - CRC32 verification of every event when the format description says CRC32, and the
//!   first fake Rotate's trailing checksum (mysql_async #189), stripped only when it matches;
//! - the table map cache and the rows → raw values step;
//! - the event-group state (GTID / BEGIN … COMMIT / XID / standalone DDL) with consistency
//!   checks, and the GTID state after each finished group.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ferry_core::position::{GtidSetEntry, MariaGtid};
use ferry_core::{GtidSet, MariaGtidPos, Position};
use mysql_async::binlog::events::{
    Event, EventData, OptionalMetaExtractor, PreviousGtidsEvent, QueryEvent, RowsEventData, StatusVarVal,
    TableMapEvent,
};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::binlog::{BinlogChecksumAlg, EventType, RowsEventFlags, StatusVarKey};
use tracing::{debug, trace};

use crate::error::ReplayError;
use crate::event::{
    BinlogColumn, BinlogPos, EventKind, GroupInfo, Gtid, QueryData, RawRowPair, ReplEvent, RowsData, RowsKind,
};
use crate::mariadb_events::{self, event_name, MariaEvent, MariaEventError, XaXid};

/// The source's GTID state as groups finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidState {
    Maria(MariaGtidPos),
    Mysql(GtidSet),
}

impl GtidState {
    /// As a `ferry_core::Position`.
    pub fn to_position(&self) -> Position {
        match self {
            GtidState::Maria(p) => Position::MariaGtidPos { pos: p.clone() },
            GtidState::Mysql(s) => Position::MysqlGtidSet { set: s.clone() },
        }
    }

    fn add(&mut self, gtid: &Gtid) {
        match (self, gtid) {
            (GtidState::Maria(pos), Gtid::Maria(g)) => {
                match pos.0.iter_mut().find(|x| x.domain == g.domain) {
                    Some(x) => *x = *g,
                    None => {
                        pos.0.push(*g);
                        pos.0.sort_by_key(|x| x.domain);
                    }
                }
            }
            (GtidState::Mysql(set), Gtid::Mysql { uuid, tag, gno }) => {
                add_to_gtid_set(set, uuid, tag.as_deref(), *gno)
            }
            _ => {}
        }
    }
}

/// Adds one transaction to a MySQL GTID set, merging intervals.
pub fn add_to_gtid_set(set: &mut GtidSet, uuid: &str, tag: Option<&str>, gno: u64) {
    set.add(uuid, tag, gno);
}

/// The GTID set a MySQL PREVIOUS_GTIDS event carries (tags included; its intervals are
/// half-open, `[start, end)`).
pub fn previous_gtids_set(ev: &PreviousGtidsEvent<'_>) -> GtidSet {
    let entries = ev
        .sids()
        .iter()
        .map(|sid| GtidSetEntry {
            uuid: format_uuid(&sid.uuid()),
            tag: sid.tag().map(|t| t.to_string().to_ascii_lowercase()),
            intervals: sid
                .intervals()
                .iter()
                .filter(|iv| iv.end() > iv.start())
                .map(|iv| (iv.start(), iv.end() - 1))
                .collect(),
        })
        .collect();
    GtidSet(entries).normalized()
}

/// The GTID position a MariaDB GTID_LIST describes (per domain, the
/// highest sequence number).
fn maria_pos_from_list(list: &[MariaGtid]) -> MariaGtidPos {
    let mut by_domain: Vec<MariaGtid> = Vec::new();
    for g in list {
        match by_domain.iter_mut().find(|x| x.domain == g.domain) {
            Some(x) if x.seq < g.seq => *x = *g,
            Some(_) => {}
            None => by_domain.push(*g),
        }
    }
    by_domain.sort_by_key(|x| x.domain);
    MariaGtidPos(by_domain)
}

#[derive(Debug, Default)]
struct Group {
    /// A group is open (after GTID / BEGIN, before COMMIT / XID / the standalone statement).
    open: bool,
    gtid: Option<Gtid>,
    /// BEGIN seen (or implied by a MariaDB transactional GTID): statements inside do not end
    /// the group.
    in_transaction: bool,
    /// MariaDB GTID flags: the XA transaction this group prepares (FL_PREPARED_XA) or completes
    /// (FL_COMPLETED_XA).
    xa_prepare: Option<XaXid>,
    xa_complete: Option<XaXid>,
}

const LOG_EVENT_ARTIFICIAL_F: u16 = 0x20;

/// The largest MySQL transaction payload (`binlog_transaction_compression=ON`) accepted, by its
/// uncompressed size from the payload header: 1 GiB. A larger one is refused by name rather
/// than inflated whole into memory. The file reader inflates after this check. Over the network
/// mysql_async inflates the payload before Ferry sees the event; the patched mysql_common
/// (`vendor/mysql_common`, `MAX_DANGER_DECOMPRESS_BYTES`, the same bound) does not inflate a
/// larger one, so the refusal comes before the allocation there too. A payload within the bound
/// is still held whole, compressed (the event) and uncompressed (mysql_async's buffer).
pub const MAX_TRANSACTION_PAYLOAD_BYTES: u64 = 1 << 30;

/// Raw event → [`ReplEvent`] translation with position, checksum and group tracking.
#[derive(Debug)]
pub struct Translator {
    file: String,
    pos: u64,
    seen_fde: bool,
    tables: HashMap<u64, TableMapEvent<'static>>,
    /// Bytes of a MySQL transaction payload whose inner events are still to come.
    payload_remaining: u64,
    group: Group,
    gtid_state: Option<GtidState>,
    /// Whether CRC32 checksums are verified (always, today; kept switchable for callers that
    /// feed pre-verified events).
    verify_checksums: bool,
    /// The largest transaction payload accepted (uncompressed bytes).
    max_payload: u64,
    /// The source is MariaDB (from the format description's server version).
    source_mariadb: bool,
}

fn start_of(file: &str, pos: u64) -> String {
    format!("{file}:{pos}")
}

/// The 19-byte header of an event, as written.
fn header_bytes(ev: &Event) -> [u8; 19] {
    let h = ev.header();
    let mut b = [0u8; 19];
    b[0..4].copy_from_slice(&h.timestamp().to_le_bytes());
    b[4] = h.event_type_raw();
    b[5..9].copy_from_slice(&h.server_id().to_le_bytes());
    b[9..13].copy_from_slice(&h.event_size().to_le_bytes());
    b[13..17].copy_from_slice(&h.log_pos().to_le_bytes());
    b[17..19].copy_from_slice(&h.flags_raw().to_le_bytes());
    b
}

/// Widens a 32-bit `log_pos` against the current 64-bit position (files above 4 GiB).
fn widen(cur: u64, low: u32) -> u64 {
    let high = cur & !0xffff_ffff;
    let mut c = high | u64::from(low);
    if c + (1 << 31) < cur {
        c += 1 << 32;
    } else if c > cur + (1 << 31) && c >= (1 << 32) {
        c -= 1 << 32;
    }
    c
}

/// Formats a 16-byte MySQL server UUID.
pub fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

impl Translator {
    /// A translator whose position starts at `start` (the file and offset the stream was
    /// requested from; the first fake Rotate corrects it).
    pub fn new(start: BinlogPos) -> Self {
        Translator {
            file: start.file,
            pos: start.pos,
            seen_fde: false,
            source_mariadb: false,
            tables: HashMap::new(),
            payload_remaining: 0,
            group: Group::default(),
            gtid_state: None,
            verify_checksums: true,
            max_payload: MAX_TRANSACTION_PAYLOAD_BYTES,
        }
    }

    /// Sets the largest transaction payload accepted, in uncompressed bytes (default
    /// [`MAX_TRANSACTION_PAYLOAD_BYTES`]).
    pub fn with_max_payload(mut self, bytes: u64) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Seeds the GTID state (the start GTID position or set).
    pub fn with_gtid_state(mut self, state: Option<GtidState>) -> Self {
        self.gtid_state = state;
        self
    }

    /// The position after the last event fed.
    pub fn position(&self) -> BinlogPos {
        BinlogPos::new(self.file.clone(), self.pos)
    }

    /// The GTID state after the last finished group, when known.
    pub fn gtid_state(&self) -> Option<&GtidState> {
        self.gtid_state.as_ref()
    }

    /// True while inside a group (a checkpoint here would split a transaction).
    pub fn in_group(&self) -> bool {
        self.group.open
    }

    /// True while the inner events of a transaction payload are expected.
    pub fn in_payload(&self) -> bool {
        self.payload_remaining > 0
    }

    fn here(&self) -> String {
        start_of(&self.file, self.pos)
    }

    /// Translates one event. Returns `None` for events with nothing for the caller (format
    /// description, table map, ignorable events). A panic inside mysql_common while parsing
    /// becomes a definite `Corrupt` error.
    pub fn feed(&mut self, ev: &Event) -> Result<Option<ReplEvent>, ReplayError> {
        match catch_unwind(AssertUnwindSafe(|| self.feed_inner(ev))) {
            Ok(r) => r,
            Err(p) => Err(ReplayError::Corrupt {
                position: self.here(),
                message: format!("binlog parser panicked: {}", panic_message(p.as_ref())),
            }),
        }
    }

    fn corrupt(&self, at: &str, message: impl Into<String>) -> ReplayError {
        ReplayError::Corrupt {
            position: at.to_string(),
            message: message.into(),
        }
    }

    fn unsupported(&self, at: &str, what: impl Into<String>) -> ReplayError {
        ReplayError::Unsupported {
            what: what.into(),
            position: at.to_string(),
        }
    }

    fn verify_checksum(&self, ev: &Event, at: &str) -> Result<(), ReplayError> {
        if !self.verify_checksums {
            return Ok(());
        }
        let alg = match ev.footer().get_checksum_alg() {
            Ok(a) => a,
            Err(e) => return Err(self.unsupported(at, format!("binlog checksum algorithm: {e}"))),
        };
        if alg != Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32) {
            return Ok(());
        }
        if let Some(stored) = ev.checksum() {
            let stored = u32::from_le_bytes(stored);
            let computed = ev.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32);
            if stored != computed {
                return Err(ReplayError::Checksum {
                    position: at.to_string(),
                    stored,
                    computed,
                });
            }
        }
        Ok(())
    }

    /// Moves the position to the end of a regular (non-inner) event.
    fn advance(&mut self, ev: &Event) {
        let h = ev.header();
        let log_pos = h.log_pos();
        if log_pos == 0 {
            return; // artificial event: no position of its own
        }
        let expected = self.pos + u64::from(h.event_size());
        let next = if expected as u32 == log_pos {
            expected
        } else {
            let w = widen(self.pos, log_pos);
            trace!(from = self.pos, to = w, "binlog position jump");
            w
        };
        if h.event_type_raw() == EventType::FORMAT_DESCRIPTION_EVENT as u8 && next < self.pos {
            return; // a re-sent format description does not move us back
        }
        self.pos = next;
    }

    fn feed_inner(&mut self, ev: &Event) -> Result<Option<ReplEvent>, ReplayError> {
        let h = ev.header();
        let t = h.event_type_raw();
        let at = self.here();
        let inner = self.payload_remaining > 0;

        if inner {
            // Events that can never be inside a payload mean the payload was not expanded
            // (mysql_async drops a payload it fails to decompress).
            const OUTER_ONLY: [u8; 8] = [4, 15, 27, 33, 34, 35, 40, 42];
            if OUTER_ONLY.contains(&t) {
                return Err(self.corrupt(
                    &at,
                    format!(
                        "{} arrived while {} bytes of a transaction payload were still expected: \
                         the payload could not be decompressed",
                        event_name(t),
                        self.payload_remaining
                    ),
                ));
            }
            self.payload_remaining = self.payload_remaining.saturating_sub(u64::from(h.event_size()));
        } else if t == EventType::ROTATE_EVENT as u8 && !self.seen_fde {
            // The first fake Rotate arrives before any format description, so mysql_common
            // has not stripped its checksum: handled in `rotate`.
        } else {
            self.verify_checksum(ev, &at)?;
        }

        let base = |s: &Self, kind: EventKind| ReplEvent {
            pos: s.position(),
            timestamp: h.timestamp(),
            server_id: h.server_id(),
            kind,
        };

        // MariaDB's compressed query and rows events: inflated into the plain event they stand
        // for, which then goes the ordinary way (the position is the compressed event's).
        if mariadb_events::is_compressed(t) {
            if !inner {
                self.advance(ev);
            }
            let plain = self.inflate(ev, t, &at)?;
            return self.event_data(&plain, plain.header().event_type_raw(), at, inner);
        }

        // MariaDB events first: mysql_common does not know them.
        if mariadb_events::is_mariadb_type(t) {
            if !inner {
                self.advance(ev);
            }
            let me = mariadb_events::parse(t, h.server_id(), ev.data()).map_err(|e| match e {
                MariaEventError::Compressed { .. } => self.corrupt(&at, e.to_string()),
                MariaEventError::Unknown(code) => ReplayError::UnknownEvent {
                    type_code: code,
                    name: event_name(code).to_string(),
                    position: at.clone(),
                },
                MariaEventError::Malformed { .. } => self.corrupt(&at, e.to_string()),
            })?;
            return match me {
                MariaEvent::Gtid(g) => {
                    self.check_no_open_group(&at)?;
                    let gtid = Gtid::Maria(g.gtid());
                    let (xa_prepare, xa_complete) = match &g.xa {
                        Some(x) if g.flags & mariadb_events::FL_PREPARED_XA != 0 => (Some(x.clone()), None),
                        Some(x) => (None, Some(x.clone())),
                        None => (None, None),
                    };
                    self.group = Group {
                        open: true,
                        gtid: Some(gtid.clone()),
                        in_transaction: !g.is_standalone(),
                        xa_prepare: xa_prepare.clone(),
                        xa_complete,
                    };
                    Ok(Some(base(
                        self,
                        EventKind::Begin {
                            gtid: Some(gtid),
                            info: GroupInfo {
                                maria_flags: Some(g.flags),
                                commit_id: g.commit_id,
                                xa_prepare,
                                ..GroupInfo::default()
                            },
                        },
                    )))
                }
                MariaEvent::GtidList(l) => {
                    if self.gtid_state.is_none() {
                        self.gtid_state = Some(GtidState::Maria(maria_pos_from_list(&l.gtids)));
                    }
                    Ok(None)
                }
                MariaEvent::AnnotateRows(_)
                | MariaEvent::BinlogCheckpoint(_)
                | MariaEvent::StartEncryption => Ok(None),
            };
        }

        if t == EventType::ROTATE_EVENT as u8 {
            return self.rotate(ev, &at).map(|fake| {
                Some(ReplEvent {
                    pos: self.position(),
                    timestamp: h.timestamp(),
                    server_id: h.server_id(),
                    kind: EventKind::Rotate { fake },
                })
            });
        }
        if t == EventType::HEARTBEAT_EVENT as u8 {
            let name = ev.data().split(|&b| b == 0).next().unwrap_or_default();
            if !name.is_empty() {
                let name = String::from_utf8_lossy(name).into_owned();
                if name != self.file {
                    self.file = name;
                    self.pos = u64::from(h.log_pos());
                }
            }
            if h.log_pos() != 0 {
                self.pos = widen(self.pos, h.log_pos());
            }
            return Ok(Some(base(self, EventKind::Heartbeat)));
        }

        if !inner {
            self.advance(ev);
        }
        self.event_data(ev, t, at, inner)
    }

    /// The plain event a MariaDB compressed one (165–171) stands for: same header but for the
    /// type and size, the inflated body, a valid checksum where the stream has checksums.
    fn inflate(&self, ev: &Event, t: u8, at: &str) -> Result<Event, ReplayError> {
        let (plain_type, body) = mariadb_events::decompress(t, ev.data()).map_err(|e| match e {
            MariaEventError::Compressed { .. } | MariaEventError::Malformed { .. } => {
                self.corrupt(at, e.to_string())
            }
            MariaEventError::Unknown(code) => ReplayError::UnknownEvent {
                type_code: code,
                name: event_name(code).to_string(),
                position: at.to_string(),
            },
        })?;
        let build = |with_crc: bool| -> Result<Event, ReplayError> {
            let size = 19 + body.len() + if with_crc { 4 } else { 0 };
            let size32 = u32::try_from(size)
                .map_err(|_| self.corrupt(at, format!("{}: {size} bytes inflated", event_name(t))))?;
            let mut raw = header_bytes(ev).to_vec();
            raw[4] = plain_type;
            raw[9..13].copy_from_slice(&size32.to_le_bytes());
            raw.reserve(size - 19);
            raw.extend_from_slice(&body);
            if with_crc {
                let c = crc32fast::hash(&raw);
                raw.extend_from_slice(&c.to_le_bytes());
            }
            Event::read(ev.fde(), &raw[..])
                .map_err(|e| self.corrupt(at, format!("{} inflated: {e}", event_name(t))))
        };
        // The format description says whether events end with a checksum; `Event::read` strips
        // one exactly when it does.
        let first = build(ev.checksum().is_some())?;
        if first.data().len() == body.len() {
            return Ok(first);
        }
        let second = build(ev.checksum().is_none())?;
        if second.data().len() == body.len() {
            return Ok(second);
        }
        Err(self.corrupt(at, format!("{}: inflated body cannot be re-read", event_name(t))))
    }

    /// Translates an event's data (the position already moved).
    fn event_data(
        &mut self,
        ev: &Event,
        t: u8,
        at: String,
        inner: bool,
    ) -> Result<Option<ReplEvent>, ReplayError> {
        let h = ev.header();
        let base = |s: &Self, kind: EventKind| ReplEvent {
            pos: s.position(),
            timestamp: h.timestamp(),
            server_id: h.server_id(),
            kind,
        };
        let data = match ev.read_data() {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(ReplayError::UnknownEvent {
                    type_code: t,
                    name: event_name(t).to_string(),
                    position: at,
                })
            }
            Err(e) => return Err(self.corrupt(&at, format!("{}: {e}", event_name(t)))),
        };

        match data {
            EventData::FormatDescriptionEvent(fde) => {
                self.seen_fde = true;
                self.source_mariadb = fde.server_version().to_ascii_lowercase().contains("mariadb");
                Ok(None)
            }
            EventData::TableMapEvent(tme) => {
                self.tables.insert(tme.table_id(), tme.into_owned());
                Ok(None)
            }
            EventData::GtidEvent(g) => {
                self.check_no_open_group(&at)?;
                let gtid = Gtid::Mysql {
                    uuid: format_uuid(&g.sid()),
                    tag: g.tag().map(|t| t.to_string().to_ascii_lowercase()),
                    gno: g.gno(),
                };
                self.group = Group {
                    open: true,
                    gtid: Some(gtid.clone()),
                    in_transaction: false,
                    ..Group::default()
                };
                Ok(Some(base(
                    self,
                    EventKind::Begin {
                        gtid: Some(gtid),
                        info: GroupInfo {
                            last_committed: Some(g.last_committed()),
                            sequence_number: Some(g.sequence_number()),
                            ..GroupInfo::default()
                        },
                    },
                )))
            }
            EventData::AnonymousGtidEvent(g) => {
                self.check_no_open_group(&at)?;
                self.group = Group {
                    open: true,
                    gtid: None,
                    in_transaction: false,
                    ..Group::default()
                };
                Ok(Some(base(
                    self,
                    EventKind::Begin {
                        gtid: None,
                        info: GroupInfo {
                            last_committed: Some(g.0.last_committed()),
                            sequence_number: Some(g.0.sequence_number()),
                            ..GroupInfo::default()
                        },
                    },
                )))
            }
            EventData::QueryEvent(q) => {
                let kind = self.query(&q, &at)?;
                Ok(kind.map(|k| base(self, k)))
            }
            EventData::XidEvent(x) => {
                if !self.group.open {
                    return Err(self.corrupt(
                        &at,
                        "XID outside a transaction: the start position is not at a transaction boundary",
                    ));
                }
                let gtid = self.close_group();
                Ok(Some(base(
                    self,
                    EventKind::Commit {
                        xid: Some(x.xid),
                        gtid,
                    },
                )))
            }
            EventData::RowsEvent(r) => {
                let rows = self.rows(&r, t, &at)?;
                Ok(Some(base(self, EventKind::Rows(rows))))
            }
            EventData::TransactionPayloadEvent(p) => {
                if inner {
                    return Err(self.corrupt(&at, "nested transaction payload"));
                }
                let size = p.uncompressed_size();
                if size > self.max_payload {
                    return Err(self.unsupported(
                        &at,
                        format!(
                            "a compressed transaction of {size} bytes uncompressed ({:.1} GiB), above \
                             Ferry's bound of {} bytes for one transaction payload: the source logs \
                             with binlog_transaction_compression=ON and this transaction would be \
                             inflated whole into memory. Split such transactions on the source (or \
                             set binlog_transaction_compression=OFF for them) and restart the job \
                             from a snapshot taken after this position",
                            size as f64 / f64::from(1u32 << 30),
                            self.max_payload
                        ),
                    ));
                }
                self.payload_remaining = size;
                debug!(bytes = size, "transaction payload");
                Ok(None)
            }
            EventData::PreviousGtidsEvent(p) => {
                self.previous_gtids(&p, &at);
                Ok(None)
            }
            EventData::RowsQueryEvent(_)
            | EventData::IgnorableEvent(_)
            | EventData::TransactionContextEvent(_)
            | EventData::ViewChangeEvent(_)
            | EventData::StopEvent => Ok(None),
            EventData::IncidentEvent(i) => Err(self.unsupported(
                &at,
                format!(
                    "the source logged an incident ({}): changes may be missing from the binlog",
                    String::from_utf8_lossy(i.message_raw())
                ),
            )),
            EventData::XaPrepareLogEvent(x) => {
                // MariaDB 10.5+ ends the prepared half of an XA transaction with this event; the
                // xid came with the group's GTID event. MySQL logs XA differently (an `XA START`
                // statement, one-phase commits as XA_PREPARE): not supported.
                let Some(xid) = self.group.xa_prepare.clone().filter(|_| self.group.open) else {
                    return Err(self.unsupported(
                        &at,
                        format!(
                            "XA transactions from a MySQL source (XA_PREPARE_LOG_EVENT{}): only \
                             MariaDB 10.5+ XA groups are replayed; commit such work without XA, \
                             or replay from a MariaDB source",
                            if x.first().is_some_and(|b| *b != 0) {
                                ", one phase"
                            } else {
                                ""
                            }
                        ),
                    ));
                };
                let gtid = self.close_group();
                Ok(Some(base(self, EventKind::XaPrepare { xid, gtid })))
            }
            EventData::IntvarEvent(_) | EventData::RandEvent(_) | EventData::UserVarEvent(_) => Err(self
                .unsupported(
                    &at,
                    format!(
                        "{} (statement-based logging; binlog_format must be ROW)",
                        event_name(t)
                    ),
                )),
            other => Err(self.unsupported(
                &at,
                format!("{} ({:?})", event_name(t), std::mem::discriminant(&other)),
            )),
        }
    }

    fn check_no_open_group(&self, at: &str) -> Result<(), ReplayError> {
        if self.group.open {
            return Err(self.corrupt(
                at,
                format!(
                    "a new group starts while the group {} is not finished",
                    self.group
                        .gtid
                        .as_ref()
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "without GTID".into())
                ),
            ));
        }
        Ok(())
    }

    /// A MySQL PREVIOUS_GTIDS event (the start of each binlog file): the source's executed set
    /// before this file. It seeds an unknown state (a stream from the start of a file, or a
    /// resumed checkpoint without a set), and is merged into a known one (a set seeded from an
    /// older snapshot or checkpoint cannot lack what the source says it had executed).
    fn previous_gtids(&mut self, p: &PreviousGtidsEvent<'_>, at: &str) {
        let prev = previous_gtids_set(p);
        match self.gtid_state.as_mut() {
            None => {
                debug!(set = %prev, at, "GTID state from PREVIOUS_GTIDS");
                self.gtid_state = Some(GtidState::Mysql(prev));
            }
            Some(GtidState::Mysql(set)) => {
                if !set.contains(&prev) {
                    debug!(ours = %set, previous = %prev, at, "PREVIOUS_GTIDS adds to the GTID state");
                    set.union_with(&prev);
                }
            }
            Some(GtidState::Maria(_)) => {}
        }
    }

    fn close_group(&mut self) -> Option<Gtid> {
        let g = std::mem::take(&mut self.group);
        if let (Some(gtid), Some(state)) = (&g.gtid, self.gtid_state.as_mut()) {
            state.add(gtid);
        } else if let Some(gtid @ Gtid::Maria(_)) = &g.gtid {
            // first group of a MariaDB stream without a known start state
            let mut st = GtidState::Maria(MariaGtidPos::default());
            st.add(gtid);
            self.gtid_state = Some(st);
        }
        g.gtid
    }

    /// Handles a Rotate; returns whether it was fake (artificial).
    fn rotate(&mut self, ev: &Event, at: &str) -> Result<bool, ReplayError> {
        let h = ev.header();
        let mut data = ev.data();
        let fake = h.log_pos() == 0 || h.flags_raw() & LOG_EVENT_ARTIFICIAL_F != 0;
        if !self.seen_fde && data.len() >= 12 {
            // mysql_async #189: before the first format description the checksum is still in
            // the body. Strip it only when it is one.
            let (body, crc) = data.split_at(data.len() - 4);
            let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&header_bytes(ev));
            hasher.update(body);
            if hasher.finalize() == stored {
                data = body;
            }
        }
        if data.len() < 8 {
            return Err(self.corrupt(at, "Rotate event shorter than 8 bytes"));
        }
        let mut p = [0u8; 8];
        p.copy_from_slice(&data[..8]);
        let pos = u64::from_le_bytes(p);
        let name = String::from_utf8(data[8..].to_vec())
            .map_err(|_| self.corrupt(at, "Rotate file name is not UTF-8"))?;
        if name.is_empty() {
            return Err(self.corrupt(at, "Rotate without a file name"));
        }
        if !fake {
            // table ids are per file; the next file re-sends its table maps
            self.tables.clear();
        }
        debug!(file = %name, pos, fake, "rotate");
        self.file = name;
        self.pos = pos;
        Ok(fake)
    }

    fn query(&mut self, q: &QueryEvent<'_>, at: &str) -> Result<Option<EventKind>, ReplayError> {
        let sql = q.query_raw();
        let head = first_words(sql);
        let g = &mut self.group;
        match head.as_str() {
            "BEGIN" | "START TRANSACTION" => {
                if !g.open {
                    self.group = Group {
                        open: true,
                        gtid: None,
                        in_transaction: true,
                        ..Group::default()
                    };
                    return Ok(Some(EventKind::Begin {
                        gtid: None,
                        info: GroupInfo::default(),
                    }));
                }
                if g.in_transaction {
                    return Err(self.corrupt(at, "BEGIN inside a transaction"));
                }
                // BEGIN after a MySQL GTID event: the Begin was already reported
                g.in_transaction = true;
                Ok(None)
            }
            "COMMIT" => {
                if !g.open {
                    return Err(self.corrupt(
                        at,
                        "COMMIT outside a transaction: the start position is not at a transaction boundary",
                    ));
                }
                let gtid = self.close_group();
                Ok(Some(EventKind::Commit { xid: None, gtid }))
            }
            "ROLLBACK" => {
                if !g.open {
                    return Err(self.corrupt(at, "ROLLBACK outside a transaction"));
                }
                let gtid = self.close_group();
                Ok(Some(EventKind::Rollback { gtid }))
            }
            // inside a MariaDB XA PREPARE group: the end of the XA's statements
            "XA END" if g.open && g.xa_prepare.is_some() => Ok(None),
            "XA COMMIT" | "XA ROLLBACK" if g.open && g.xa_complete.is_some() => {
                let commit = head == "XA COMMIT";
                let xid = self.group.xa_complete.take();
                let gtid = self.close_group();
                match xid {
                    Some(xid) => Ok(Some(EventKind::XaComplete { xid, commit, gtid })),
                    None => Err(self.corrupt(at, "XA completion without its xid")),
                }
            }
            h if h.starts_with("XA ") => Err(self.unsupported(
                at,
                format!(
                    "the statement {h} outside a MariaDB XA group (a MySQL source, or a MariaDB \
                     before 10.5, logs XA this way): XA transactions are replayed from MariaDB \
                     10.5+ sources only"
                ),
            )),
            _ => {
                let ends_group = !g.in_transaction;
                let (sql_mode, charset, time_zone) = status_vars(q);
                let explicit_defaults_for_timestamp =
                    self.source_mariadb.then(|| explicit_defaults(q)).flatten();
                let data = QueryData {
                    db: q.schema().into_owned(),
                    sql: sql.to_vec(),
                    ends_group,
                    sql_mode,
                    charset,
                    time_zone,
                    source_mariadb: self.source_mariadb,
                    explicit_defaults_for_timestamp,
                };
                if ends_group {
                    if !self.group.open {
                        // no GTIDs on the source: the statement is a group of its own
                        self.group.open = true;
                    }
                    self.close_group();
                }
                Ok(Some(EventKind::Query(data)))
            }
        }
    }

    fn rows(&self, r: &RowsEventData<'_>, t: u8, at: &str) -> Result<RowsData, ReplayError> {
        if !self.group.open {
            return Err(self.corrupt(
                at,
                "rows event outside a transaction: the start position is not at a transaction boundary",
            ));
        }
        let table_id = r.table_id();
        let tme = self.tables.get(&table_id).ok_or_else(|| {
            self.corrupt(
                at,
                format!("rows event for table id {table_id} without a table map"),
            )
        })?;
        let ncols = tme.columns_count();
        if ncols == 0 || r.num_columns() != ncols {
            return Err(self.corrupt(
                at,
                format!(
                    "rows event has {} columns, its table map {ncols}",
                    r.num_columns()
                ),
            ));
        }
        let table = format!("{}.{}", tme.database_name(), tme.table_name());
        // The columns each image carries: all of them with binlog_row_image=FULL; with MINIMAL
        // or NOBLOB (or a MySQL hidden column) some are absent. `None` means all present.
        macro_rules! present {
            ($img:expr) => {
                $img.and_then(|img| {
                    (img.count_ones() as u64 != ncols).then(|| {
                        (0..ncols as usize)
                            .map(|i| img.get(i).is_some_and(|b| *b))
                            .collect::<Vec<bool>>()
                    })
                })
            };
        }
        let before_cols = present!(r.columns_before_image());
        let after_cols = present!(r.columns_after_image());
        let kind = match t {
            23 | 30 => RowsKind::Insert,
            // 39: PARTIAL_UPDATE_ROWS_EVENT (binlog_row_value_options=PARTIAL_JSON): an update
            // whose after images may carry JSON diffs (`crate::json_diff`)
            24 | 31 | 39 => RowsKind::Update,
            _ => RowsKind::Delete,
        };
        let columns = table_columns(tme).map_err(|m| self.corrupt(at, m))?;
        let mut rows: Vec<RawRowPair> = Vec::new();
        for item in r.rows(tme) {
            let (before, after) = item.map_err(|e| self.corrupt(at, format!("rows of {table}: {e}")))?;
            // Full width: a column absent from the image holds a NULL placeholder (the image's
            // column list, `before_cols`/`after_cols`, tells them apart).
            let conv = |row: Option<mysql_async::binlog::row::BinlogRow>, cols: &Option<Vec<bool>>| {
                row.map(|mut row| {
                    let n = row.len();
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        match row.take(i) {
                            Some(v) => vals.push(v.into_owned()),
                            None => return Err(()),
                        }
                    }
                    let Some(cols) = cols else { return Ok(vals) };
                    if cols.iter().filter(|p| **p).count() != vals.len() {
                        return Err(());
                    }
                    let mut vals = vals.into_iter();
                    let mut out = Vec::with_capacity(cols.len());
                    for p in cols {
                        out.push(if *p {
                            vals.next().ok_or(())?
                        } else {
                            BinlogValue::Value(mysql_async::Value::NULL)
                        });
                    }
                    Ok(out)
                })
                .transpose()
            };
            let before = conv(before, &before_cols).map_err(|_| self.corrupt(at, "row value missing"))?;
            let after = conv(after, &after_cols).map_err(|_| self.corrupt(at, "row value missing"))?;
            // JSON diffs belong to the after image of a PARTIAL_UPDATE_ROWS_EVENT only
            let diff_in = |r: &Option<Vec<BinlogValue<'static>>>| {
                r.as_ref().is_some_and(|v| crate::json_diff::has_diffs(v))
            };
            if diff_in(&before) || (diff_in(&after) && t != EventType::PARTIAL_UPDATE_ROWS_EVENT as u8) {
                return Err(self.corrupt(
                    at,
                    format!("rows of {table}: a JSON diff outside a partial update's after image"),
                ));
            }
            rows.push((before, after));
        }
        Ok(RowsData {
            db: tme.database_name().into_owned(),
            table: tme.table_name().into_owned(),
            table_id,
            kind,
            columns,
            rows,
            stmt_end: r.flags().contains(RowsEventFlags::STMT_END),
            fk_checks: !r.flags().contains(RowsEventFlags::NO_FOREIGN_KEY_CHECKS),
            position: self.position(),
            before_cols,
            after_cols,
        })
    }
}

/// The columns of a table map: real types, metadata, signedness and names when logged.
fn table_columns(tme: &TableMapEvent<'_>) -> Result<Vec<BinlogColumn>, String> {
    let n = tme.columns_count() as usize;
    let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())
        .map_err(|e| format!("table map optional metadata: {e}"))?;
    let mut signed = meta.iter_signedness();
    let mut names = meta.iter_column_name();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let ty = match tme.get_column_type(i) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(format!("no type for column {i}")),
            Err(e) => return Err(format!("column {i}: {e}")),
        };
        let unsigned = if ty.is_numeric_type() { signed.next() } else { None };
        let name = match names.next() {
            Some(Ok(n)) => Some(n.name().into_owned()),
            Some(Err(e)) => return Err(format!("column names: {e}")),
            None => None,
        };
        out.push(BinlogColumn {
            column_type: ty,
            meta: tme.get_column_metadata(i).unwrap_or(&[]).to_vec(),
            unsigned,
            name,
        });
    }
    Ok(out)
}

/// MariaDB's `OPTION_EXPLICIT_DEF_TIMESTAMP` in a query event's `Q_FLAGS2`: the session's
/// `explicit_defaults_for_timestamp` (MariaDB logs it; MySQL does not).
const MARIADB_FLAGS2_EXPLICIT_DEF_TIMESTAMP: u32 = 1 << 24;

/// A MariaDB statement's `explicit_defaults_for_timestamp`, from its `Q_FLAGS2`.
fn explicit_defaults(q: &QueryEvent<'_>) -> Option<bool> {
    q.status_vars()
        .get_status_var(StatusVarKey::Flags2)
        .and_then(|v| match v.get_value() {
            Ok(StatusVarVal::Flags2(f)) => Some(f.0 & MARIADB_FLAGS2_EXPLICIT_DEF_TIMESTAMP != 0),
            _ => None,
        })
}

/// (character_set_client, collation_connection, collation_server) ids.
type CharsetIds = (u16, u16, u16);

/// The statement's logged sql_mode, client charset ids and time zone.
fn status_vars(q: &QueryEvent<'_>) -> (Option<u64>, Option<CharsetIds>, Option<String>) {
    let vars = q.status_vars();
    let sql_mode = vars
        .get_status_var(StatusVarKey::SqlMode)
        .and_then(|v| match v.get_value() {
            Ok(StatusVarVal::SqlMode(m)) => Some(m.0),
            _ => None,
        });
    let charset = vars
        .get_status_var(StatusVarKey::Charset)
        .and_then(|v| match v.get_value() {
            Ok(StatusVarVal::Charset {
                charset_client,
                collation_connection,
                collation_server,
            }) => Some((charset_client, collation_connection, collation_server)),
            _ => None,
        });
    let time_zone = vars
        .get_status_var(StatusVarKey::TimeZone)
        .and_then(|v| match v.get_value() {
            Ok(StatusVarVal::TimeZone(tz)) => Some(tz.as_str().into_owned()),
            _ => None,
        })
        .filter(|tz| !tz.is_empty());
    (sql_mode, charset, time_zone)
}

/// The first one or two words of a statement, upper case, comments not skipped (the server
/// writes BEGIN/COMMIT/ROLLBACK/XA exactly).
fn first_words(sql: &[u8]) -> String {
    let s = String::from_utf8_lossy(&sql[..sql.len().min(40)]);
    let mut words = s.split_ascii_whitespace();
    let a = words.next().unwrap_or_default().to_ascii_uppercase();
    let b = words.next().map(str::to_ascii_uppercase);
    match (a.as_str(), b) {
        ("START" | "XA", Some(b)) => format!("{a} {b}"),
        // `ROLLBACK TO SAVEPOINT x` stays inside the transaction
        ("ROLLBACK", Some(b)) => format!("{a} {b}"),
        _ => a.trim_end_matches(';').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::binlog::consts::BinlogVersion;
    use mysql_common::binlog::EventStreamReader;

    /// A raw event as the server sends it, parsed by a fresh reader (no format description yet,
    /// so a trailing checksum stays in the body, as with the first fake Rotate).
    fn raw(t: u8, log_pos: u32, flags: u16, body: &[u8], crc: bool) -> Event {
        let size = 19 + body.len() + if crc { 4 } else { 0 };
        let mut b = Vec::new();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(t);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&(size as u32).to_le_bytes());
        b.extend_from_slice(&log_pos.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(body);
        if crc {
            let c = crc32fast::hash(&b);
            b.extend_from_slice(&c.to_le_bytes());
        }
        EventStreamReader::new(BinlogVersion::Version4)
            .read(&b[..])
            .unwrap()
            .unwrap()
    }

    fn rotate_body(pos: u64, name: &str) -> Vec<u8> {
        let mut b = pos.to_le_bytes().to_vec();
        b.extend_from_slice(name.as_bytes());
        b
    }

    #[test]
    fn first_fake_rotate_checksum_is_stripped_only_when_it_matches() {
        let mut t = Translator::new(BinlogPos::new("", 4));
        let ev = raw(
            4,
            0,
            LOG_EVENT_ARTIFICIAL_F,
            &rotate_body(1234, "mysql-bin.000007"),
            true,
        );
        let r = t.feed(&ev).unwrap().unwrap();
        assert_eq!(r.kind, EventKind::Rotate { fake: true });
        assert_eq!(r.pos, BinlogPos::new("mysql-bin.000007", 1234));
        // checksums off: the last four bytes are part of the name
        let mut t = Translator::new(BinlogPos::new("", 4));
        let ev = raw(
            4,
            0,
            LOG_EVENT_ARTIFICIAL_F,
            &rotate_body(4, "binlog.000123"),
            false,
        );
        assert_eq!(
            t.feed(&ev).unwrap().unwrap().pos,
            BinlogPos::new("binlog.000123", 4)
        );
    }

    #[test]
    fn positions_cross_4_gib_and_heartbeats_move_them() {
        let mut t = Translator::new(BinlogPos::new("", 4));
        let near = (1u64 << 32) - 10;
        let ev = raw(
            4,
            0,
            LOG_EVENT_ARTIFICIAL_F,
            &rotate_body(near, "b.000001"),
            false,
        );
        t.feed(&ev).unwrap();
        // a heartbeat while idle: same file, log_pos wrapped past 4 GiB
        let hb = raw(27, 20, 0, b"b.000001", false);
        let r = t.feed(&hb).unwrap().unwrap();
        assert_eq!(r.kind, EventKind::Heartbeat);
        assert_eq!(r.pos.pos, (1 << 32) + 20);
        // a regular event whose log_pos wrapped: pos + size
        let xid_body = 7u64.to_le_bytes();
        let mut t2 = Translator::new(BinlogPos::new("b.000001", near));
        t2.group.open = true;
        let size = 19 + 8;
        let ev = raw(16, (near as u32).wrapping_add(size), 0, &xid_body, false);
        let r = t2.feed(&ev).unwrap().unwrap();
        assert_eq!(r.pos.pos, near + u64::from(size));
        assert!(matches!(r.kind, EventKind::Commit { xid: Some(7), .. }));
        // a heartbeat naming another file switches to it
        let hb = raw(27, 500, 0, b"b.000002", false);
        assert_eq!(t.feed(&hb).unwrap().unwrap().pos, BinlogPos::new("b.000002", 500));
    }

    #[test]
    fn group_consistency_is_checked() {
        let mut t = Translator::new(BinlogPos::new("f", 4));
        let xid = raw(16, 4 + 27, 0, &1u64.to_le_bytes(), false);
        let e = t.feed(&xid).unwrap_err();
        assert!(e.to_string().contains("XID outside a transaction"), "{e}");
        // a MariaDB compressed event that does not inflate is a definite error naming the type
        // and position
        let mut t = Translator::new(BinlogPos::new("f", 100));
        let ev = raw(169, 100 + 30, 0, &[0; 11], false);
        let e = t.feed(&ev).unwrap_err();
        assert!(
            e.to_string().contains("WRITE_ROWS_COMPRESSED_EVENT") && e.to_string().contains("f:100"),
            "{e}"
        );
        assert_eq!(e.kind(), ferry_core::ErrorKind::Definite);
        let ev = raw(250, 100 + 30, 0, &[0; 11], false);
        let e = Translator::new(BinlogPos::new("f", 100)).feed(&ev).unwrap_err();
        assert!(
            matches!(e, ReplayError::UnknownEvent { type_code: 250, .. }),
            "{e}"
        );
        // an unknown type in the MySQL range too
        let ev = raw(60, 100 + 30, 0, &[0; 11], false);
        let e = Translator::new(BinlogPos::new("f", 100)).feed(&ev).unwrap_err();
        assert!(
            matches!(e, ReplayError::UnknownEvent { type_code: 60, .. }),
            "{e}"
        );
    }

    /// A TABLE_MAP body: table id 7, `d`.`t`, one INT column.
    fn table_map_body() -> Vec<u8> {
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0];
        b.extend_from_slice(&[1, b'd', 0, 1, b't', 0]);
        b.extend_from_slice(&[1, 3, 0, 0b1]); // 1 column, LONG, no metadata, nullable
        b
    }

    /// `binlog_buf_compress` of MariaDB: `0x80 | 1`, one length byte, zlib.
    fn compress_small(plain: &[u8]) -> Vec<u8> {
        use std::io::Write;
        assert!(plain.len() < 256);
        let mut out = vec![0x81, plain.len() as u8];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(plain).unwrap();
        out.extend_from_slice(&z.finish().unwrap());
        out
    }

    #[test]
    fn mariadb_compressed_rows_event_decodes_like_the_plain_one() {
        // WRITE_ROWS_EVENT_V1 body: table id, flags (STMT_END), width 1, bitmap, then the rows
        let prefix = [7u8, 0, 0, 0, 0, 0, 1, 0, 1, 0b1];
        let rows = [0u8, 42, 0, 0, 0, 0, 7, 0, 0, 0]; // two rows: 42 and 7
        let run = |t_code: u8, body: Vec<u8>, crc: bool| {
            let mut t = Translator::new(BinlogPos::new("f", 100));
            t.group.open = true;
            let tm = table_map_body();
            t.feed(&raw(19, 100 + 19 + tm.len() as u32, 0, &tm, crc)).unwrap();
            let end = 200 + 19 + body.len() as u32;
            t.pos = 200;
            let r = t.feed(&raw(t_code, end, 0, &body, crc)).unwrap().unwrap();
            (r, end)
        };
        let mut plain = prefix.to_vec();
        plain.extend_from_slice(&rows);
        let mut compressed = prefix.to_vec();
        compressed.extend_from_slice(&compress_small(&rows));
        let (a, _) = run(23, plain, false);
        let (b, end) = run(166, compressed, false);
        let (EventKind::Rows(ra), EventKind::Rows(rb)) = (&a.kind, &b.kind) else {
            panic!("{a:?} {b:?}")
        };
        assert_eq!(ra.rows, rb.rows);
        assert_eq!(rb.rows.len(), 2);
        assert_eq!(rb.kind, RowsKind::Insert);
        assert_eq!(
            b.pos,
            BinlogPos::new("f", u64::from(end)),
            "the compressed event's own end"
        );
        // a compressed query (DDL) is a plain Query with the inflated text
        let mut q = vec![1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, b'd', 0];
        q.extend_from_slice(&compress_small(b"CREATE TABLE d.x (a INT)"));
        let mut t = Translator::new(BinlogPos::new("f", 100));
        let r = t
            .feed(&raw(165, 100 + 19 + q.len() as u32, 0, &q, false))
            .unwrap()
            .unwrap();
        let EventKind::Query(qd) = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!(qd.sql, b"CREATE TABLE d.x (a INT)");
        assert_eq!(qd.db, "d");
        assert!(qd.ends_group);
    }

    #[test]
    fn widen_handles_wrap() {
        assert_eq!(widen(100, 200), 200);
        // just below 4 GiB, next event crosses it
        let cur = (1u64 << 32) - 100;
        assert_eq!(widen(cur, 50), (1 << 32) + 50);
        // far above 4 GiB
        let cur = (3u64 << 32) + 10;
        assert_eq!(widen(cur, 1000), (3 << 32) + 1000);
        // a heartbeat slightly behind across the wrap goes back to the lower window
        assert_eq!(widen((1u64 << 32) + 5, u32::MAX - 5), (1 << 32) - 6);
    }

    #[test]
    fn gtid_set_add_merges() {
        let mut s: GtidSet = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7".parse().unwrap();
        add_to_gtid_set(&mut s, "3e11fa47-71ca-11e1-9e33-c80aa9429562", None, 6);
        assert_eq!(s.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7");
        add_to_gtid_set(&mut s, "0e11fa47-71ca-11e1-9e33-c80aa9429562", Some("t"), 1);
        assert_eq!(
            s.to_string(),
            "0e11fa47-71ca-11e1-9e33-c80aa9429562:t:1,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7"
        );
    }

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    fn uuid_bytes(u: &str) -> Vec<u8> {
        let h: String = u.chars().filter(|c| *c != '-').collect();
        (0..16)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// An untagged GTID event (5.6 layout: flags, sid, gno).
    fn gtid_ev(log_pos: u32, uuid: &str, gno: u64) -> Event {
        let mut b = vec![1u8];
        b.extend_from_slice(&uuid_bytes(uuid));
        b.extend_from_slice(&gno.to_le_bytes());
        raw(33, log_pos, 0, &b, false)
    }

    /// An untagged PREVIOUS_GTIDS event; intervals closed.
    fn previous_ev(log_pos: u32, sids: &[(&str, &[(u64, u64)])]) -> Event {
        let mut b = (sids.len() as u64).to_le_bytes().to_vec();
        for (u, ivs) in sids {
            b.extend_from_slice(&uuid_bytes(u));
            b.extend_from_slice(&(ivs.len() as u64).to_le_bytes());
            for (a, z) in *ivs {
                b.extend_from_slice(&a.to_le_bytes());
                b.extend_from_slice(&(z + 1).to_le_bytes());
            }
        }
        raw(35, log_pos, 0, &b, false)
    }

    fn mysql_state(t: &Translator) -> Option<String> {
        match t.gtid_state() {
            Some(GtidState::Mysql(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    #[test]
    fn mysql_gtid_state_follows_each_transaction() {
        // seeded from the checkpoint's set: each commit adds its GTID
        let seed: GtidSet = format!("{U}:1-5:t:1").parse().unwrap();
        let mut t =
            Translator::new(BinlogPos::new("b.000001", 100)).with_gtid_state(Some(GtidState::Mysql(seed)));
        let mut pos = 100u32;
        for gno in [6u64, 8, 7] {
            pos += 19 + 25;
            t.feed(&gtid_ev(pos, U, gno)).unwrap();
            pos += 19 + 8;
            let r = t
                .feed(&raw(16, pos, 0, &1u64.to_le_bytes(), false))
                .unwrap()
                .unwrap();
            let EventKind::Commit {
                gtid: Some(Gtid::Mysql { gno: g, .. }),
                ..
            } = r.kind
            else {
                panic!("{r:?}")
            };
            assert_eq!(g, gno);
        }
        assert_eq!(mysql_state(&t).unwrap(), format!("{U}:1-8:t:1"));
        assert_eq!(
            t.gtid_state().map(GtidState::to_position).unwrap().to_string(),
            format!("{U}:1-8:t:1")
        );
    }

    #[test]
    fn previous_gtids_seeds_or_completes_the_mysql_state() {
        const V: &str = "0e11fa47-71ca-11e1-9e33-c80aa9429562";
        // unknown state: PREVIOUS_GTIDS is the executed set before the file
        let mut t2 = Translator::new(BinlogPos::new("b.000002", 4));
        t2.feed(&previous_ev(4 + 19 + 48, &[(U, &[(1, 9), (12, 12)])]))
            .unwrap();
        assert_eq!(mysql_state(&t2).unwrap(), format!("{U}:1-9:12"));
        // a known state is completed, never reduced
        let seed: GtidSet = format!("{U}:1-10,{V}:1").parse().unwrap();
        let mut t3 =
            Translator::new(BinlogPos::new("b.000002", 4)).with_gtid_state(Some(GtidState::Mysql(seed)));
        t3.feed(&previous_ev(4 + 19 + 48, &[(U, &[(1, 9), (12, 12)])]))
            .unwrap();
        assert_eq!(mysql_state(&t3).unwrap(), format!("{V}:1,{U}:1-10:12"));
        // a MariaDB state ignores it
        let mut t4 = Translator::new(BinlogPos::new("b.000002", 4))
            .with_gtid_state(Some(GtidState::Maria("0-1-5".parse().unwrap())));
        t4.feed(&previous_ev(4 + 19 + 48, &[(U, &[(1, 9)])])).unwrap();
        assert!(matches!(t4.gtid_state(), Some(GtidState::Maria(_))));
    }

    #[test]
    fn mysql_gtid_without_a_known_state_is_not_guessed() {
        // a file start without PREVIOUS_GTIDS and without a seed: the set before is unknown,
        // so no set is reported (a partial set would claim a wrong failover position)
        let mut t = Translator::new(BinlogPos::new("b.000001", 1000));
        t.feed(&gtid_ev(1000 + 44, U, 7)).unwrap();
        let r = t
            .feed(&raw(16, 1000 + 44 + 27, 0, &1u64.to_le_bytes(), false))
            .unwrap()
            .unwrap();
        assert!(matches!(r.kind, EventKind::Commit { gtid: Some(_), .. }));
        assert!(t.gtid_state().is_none());
    }

    /// A TRANSACTION_PAYLOAD event header claiming `uncompressed` bytes (ZSTD), with a few
    /// payload bytes.
    fn payload_ev(log_pos: u32, uncompressed: u64) -> Event {
        let mut b = vec![2u8, 1, 0]; // compression type: ZSTD
        b.extend_from_slice(&[3, 9, 0xfe]); // uncompressed size, 8-byte lenenc
        b.extend_from_slice(&uncompressed.to_le_bytes());
        b.extend_from_slice(&[1, 1, 4, 0]); // payload size 4, end of header
        b.extend_from_slice(&[1, 2, 3, 4]);
        raw(40, log_pos, 0, &b, false)
    }

    #[test]
    fn oversized_transaction_payload_is_refused_by_name() {
        let big = 5u64 << 30;
        let mut t = Translator::new(BinlogPos::new("binlog.000042", 1000));
        let e = t.feed(&payload_ev(1000 + 19 + 24, big)).unwrap_err();
        let m = e.to_string();
        assert_eq!(e.kind(), ferry_core::ErrorKind::Definite);
        assert!(matches!(e, ReplayError::Unsupported { .. }), "{m}");
        for want in [
            "5368709120 bytes",
            "binlog.000042:1000",
            "binlog_transaction_compression",
            &MAX_TRANSACTION_PAYLOAD_BYTES.to_string(),
        ] {
            assert!(m.contains(want), "{want:?} not in {m}");
        }
        // within the bound (here lowered): the inner events are expected
        let mut t = Translator::new(BinlogPos::new("binlog.000042", 1000)).with_max_payload(4096);
        assert!(t.feed(&payload_ev(1000 + 19 + 24, 4096)).unwrap().is_none());
        assert!(t.in_payload());
        let mut t = Translator::new(BinlogPos::new("binlog.000042", 1000)).with_max_payload(4096);
        assert!(t.feed(&payload_ev(1000 + 19 + 24, 4097)).is_err());
    }

    /// A zstd frame holding `data` in one raw (stored) block.
    fn zstd_frame(data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0xa0]; // magic; single segment, 4-byte content size
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let header = 1 | ((data.len() as u32) << 3); // last block, raw
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.extend_from_slice(data);
        f
    }

    /// Over the network mysql_async inflates a payload (`danger_decompress`) before Ferry sees
    /// the event: the patched mysql_common refuses to inflate beyond Ferry's bound, so the
    /// refusal above comes before the allocation (`vendor/mysql_common/README.md`).
    #[test]
    fn the_client_library_does_not_inflate_an_oversized_payload() {
        use mysql_common::binlog::consts::TransactionPayloadCompressionType as C;
        use mysql_common::binlog::events::{TransactionPayloadEvent, MAX_DANGER_DECOMPRESS_BYTES};
        assert_eq!(MAX_DANGER_DECOMPRESS_BYTES, MAX_TRANSACTION_PAYLOAD_BYTES);
        // unpatched, this allocates u64::MAX bytes (an abort) before failing to decompress
        let ev = TransactionPayloadEvent::new(4, C::ZSTD, u64::MAX, &[1u8, 2, 3, 4][..]);
        assert!(ev.danger_decompress().is_empty());
        let ev =
            TransactionPayloadEvent::new(4, C::ZSTD, MAX_TRANSACTION_PAYLOAD_BYTES + 1, &[1u8, 2, 3, 4][..]);
        assert!(ev.danger_decompress().is_empty());
        // within the bound it still inflates
        let inner = b"0123456789abcdef".repeat(64);
        let z = zstd_frame(&inner);
        let ev = TransactionPayloadEvent::new(z.len() as u64, C::ZSTD, inner.len() as u64, z);
        assert_eq!(ev.danger_decompress(), inner);
    }

    #[test]
    fn words() {
        assert_eq!(first_words(b"BEGIN"), "BEGIN");
        assert_eq!(first_words(b"XA START 'x'"), "XA START");
        assert_eq!(first_words(b"COMMIT"), "COMMIT");
        assert_eq!(first_words(b"ROLLBACK"), "ROLLBACK");
        assert_eq!(first_words(b"ROLLBACK TO `s1`"), "ROLLBACK TO");
        assert_eq!(first_words(b"create table t (a int)"), "CREATE");
    }

    #[test]
    fn maria_list_takes_highest_per_domain() {
        let l = [
            MariaGtid {
                domain: 0,
                server: 1,
                seq: 5,
            },
            MariaGtid {
                domain: 0,
                server: 2,
                seq: 9,
            },
            MariaGtid {
                domain: 1,
                server: 1,
                seq: 3,
            },
        ];
        assert_eq!(maria_pos_from_list(&l).to_string(), "0-2-9,1-1-3");
    }
}
