//! The network binlog reader: registers as a replica, streams events and translates them.
//!
//! Connection preparation before `COM_BINLOG_DUMP` (mysql_async only sets the checksum
//! variable, see the ecosystem study §0):
//! - MariaDB: `@mariadb_slave_capability=4` (real GTID events instead of rewritten BEGINs),
//!   `@slave_connect_state` when starting from a GTID position, `@slave_gtid_strict_mode=1`;
//! - both: `@master_heartbeat_period` and `@source_heartbeat_period` (heartbeats move the
//!   position while the source is idle; MySQL 8.0.26+ renamed the variable, older servers and
//!   MariaDB read the first), `@master_binlog_checksum` and `@source_binlog_checksum` set to the
//!   server's own algorithm;
//! - MySQL GTID start: `COM_BINLOG_DUMP_GTID` with the executed set.
//!
//! The stream runs in its own task: mysql_common panics on a truncated packet, and a panic
//! there must not kill the process. The task forwards raw events through a bounded channel; a
//! finished task (EOF, I/O error, panic) becomes a transient `Disconnected` error. Server error
//! 1236 (purged binlog, unknown GTID) becomes a definite `PositionUnavailable` naming the file
//! or GTID.
//!
//! A stall watchdog covers half-open connections: when no event (heartbeats included) arrives
//! for [`stall_timeout`] (3 heartbeat periods, at least 10 s), `next` reports a transient
//! `Disconnected` error, so the session reconnects from its checkpoint.

use std::time::Duration;

use ferry_core::{Endpoint, Flavor, GtidSet, MariaGtidPos, Position};
use futures_util::StreamExt;
use mysql_async::binlog::events::Event;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Sid};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::error::ReplayError;
use crate::event::{BinlogPos, ReplEvent};
use crate::translate::{GtidState, Translator};

/// Where to start reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    /// A binlog file and the offset of the first event to read (a group boundary).
    FilePos(BinlogPos),
    /// MariaDB: the GTID position after the last applied group (`@slave_connect_state`).
    MariaGtid(MariaGtidPos),
    /// MySQL: the executed GTID set (`COM_BINLOG_DUMP_GTID`).
    MysqlGtidSet(GtidSet),
}

impl StartPosition {
    /// From a `ferry_core::Position`.
    pub fn from_position(p: &Position) -> Self {
        match p {
            Position::FilePos { file, pos } => StartPosition::FilePos(BinlogPos::new(file, *pos)),
            Position::MariaGtidPos { pos } => StartPosition::MariaGtid(pos.clone()),
            Position::MysqlGtidSet { set } => StartPosition::MysqlGtidSet(set.clone()),
        }
    }
}

impl std::fmt::Display for StartPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartPosition::FilePos(p) => write!(f, "{p}"),
            StartPosition::MariaGtid(g) => write!(f, "GTID {g}"),
            StartPosition::MysqlGtidSet(s) => write!(f, "GTID set {s}"),
        }
    }
}

/// Reader tuning.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Heartbeat period asked from the source (MariaDB and MySQL accept nanoseconds).
    pub heartbeat: Duration,
    /// Raw events buffered between the network task and the caller.
    pub buffer_events: usize,
    /// Stop at the current end of the binlog (`BINLOG_DUMP_NON_BLOCK`): `next` then returns
    /// `Ok(None)`.
    pub non_blocking: bool,
    /// How long `open` waits for the server's first answer.
    pub open_timeout: Duration,
    /// The source's GTID state at a `FilePos` start, as recorded with the checkpoint or the
    /// snapshot (`gtid_executed`, read under the same lock as file:pos). On MySQL a
    /// `MysqlGtidSet` seeds the set that each transaction's GTID is added to, so the position
    /// reported after each group is the whole executed set. Ignored on MariaDB (the state comes
    /// from `BINLOG_GTID_POS`) and for GTID starts.
    pub start_gtid: Option<Position>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            heartbeat: Duration::from_secs(1),
            buffer_events: 1024,
            non_blocking: false,
            open_timeout: Duration::from_secs(30),
            start_gtid: None,
        }
    }
}

type Item = Result<Event, mysql_async::Error>;

/// How long the reader waits for the next event (heartbeats included) before it reports the
/// connection stalled: three heartbeat periods, and at least 10 s.
pub fn stall_timeout(heartbeat: Duration) -> Duration {
    heartbeat.saturating_mul(3).max(Duration::from_secs(10))
}

/// A binlog reader on one source connection.
pub struct BinlogReader {
    rx: mpsc::Receiver<Item>,
    task: Option<JoinHandle<()>>,
    translator: Translator,
    flavor: Flavor,
    start: StartPosition,
    pending: Option<Item>,
    failed: bool,
    delivered: bool,
    done: bool,
    non_blocking: bool,
    endpoint: String,
    connection_id: u32,
    /// No event for this long: the connection is stalled.
    stall: Duration,
}

impl std::fmt::Debug for BinlogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinlogReader")
            .field("endpoint", &self.endpoint)
            .field("flavor", &self.flavor)
            .field("start", &self.start)
            .field("position", &self.translator.position())
            .finish()
    }
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The client-side packet bound of the replication connection: 1 GiB, the largest event a
/// server writes. mysql_async otherwise takes the source's `max_allowed_packet` (16 MiB by
/// default on MariaDB, 64 MiB on MySQL), but the dump thread sends events of any size (a row
/// with a 64 MiB BLOB is one event larger than that), and a packet over the bound is a
/// connection error the reconnect loop would repeat forever.
pub const BINLOG_MAX_PACKET: usize = 1 << 30;

/// A connection for `COM_BINLOG_DUMP` ([`BINLOG_MAX_PACKET`]), with the endpoint's connect
/// timeout; a panic in the client library during the handshake is an error, not a crash.
async fn connect_for_binlog(endpoint: &Endpoint) -> Result<mysql_async::Conn, ReplayError> {
    ferry_core::connect::connect_with(endpoint, Vec::new(), |o| {
        o.max_allowed_packet(Some(BINLOG_MAX_PACKET))
    })
    .await
    .map_err(ReplayError::Connect)
}

fn map_stream_error(e: mysql_async::Error, wanted: String, pos: &BinlogPos) -> ReplayError {
    match e {
        mysql_async::Error::Server(s) if s.code == 1236 => ReplayError::PositionUnavailable {
            wanted,
            message: format!("server error 1236: {}", s.message),
        },
        mysql_async::Error::Io(io) => ReplayError::Disconnected {
            position: pos.to_string(),
            reason: io.to_string(),
        },
        e => ReplayError::mysql(format!("binlog stream at {pos}"), e),
    }
}

impl BinlogReader {
    /// Connects, prepares the session, asks for the binlog from `start` and waits for the
    /// server's first answer (so a purged file or unknown GTID fails here, definitely).
    pub async fn open(
        endpoint: &Endpoint,
        server_id: u32,
        start: StartPosition,
    ) -> Result<Self, ReplayError> {
        Self::open_with(endpoint, server_id, start, ReaderOptions::default()).await
    }

    /// [`Self::open`] with options.
    pub async fn open_with(
        endpoint: &Endpoint,
        server_id: u32,
        start: StartPosition,
        opts: ReaderOptions,
    ) -> Result<Self, ReplayError> {
        let span = info_span!("binlog_open", source = %endpoint.display_name(), start = %start);
        Self::open_inner(endpoint, server_id, start, opts)
            .instrument(span)
            .await
    }

    async fn open_inner(
        endpoint: &Endpoint,
        server_id: u32,
        start: StartPosition,
        opts: ReaderOptions,
    ) -> Result<Self, ReplayError> {
        if server_id == 0 {
            return Err(ReplayError::InvalidStart(
                "server_id 0 is not allowed for a replica".into(),
            ));
        }
        let mut conn = connect_for_binlog(endpoint).await?;
        let flavor = Flavor::detect(&mut conn).await.map_err(ReplayError::Connect)?;
        let ctx = |what: &str| {
            format!(
                "preparing the binlog connection to {}: {what}",
                endpoint.display_name()
            )
        };

        let mut sets: Vec<String> = Vec::new();
        let mut gtid_state = None;
        let (file, pos) = match &start {
            StartPosition::FilePos(p) => {
                if p.pos > u64::from(u32::MAX) {
                    return Err(ReplayError::InvalidStart(format!(
                        "{p}: the binlog cannot be read from an offset beyond 4 GiB: Ferry streams \
                         by file and offset (COM_BINLOG_DUMP), whose offset field has 32 bits. Such \
                         offsets exist only in binlog files grown past 4 GiB by a single huge \
                         transaction (max_binlog_size is at most 1 GiB). Restart the job from a new \
                         snapshot, and split such transactions on the source"
                    )));
                }
                if p.file.is_empty() {
                    return Err(ReplayError::InvalidStart("empty binlog file name".into()));
                }
                if flavor.is_mariadb() {
                    let g: Option<Option<String>> = conn
                        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&p.file, p.pos))
                        .await
                        .map_err(|e| ReplayError::mysql(ctx("BINLOG_GTID_POS"), e))?;
                    if let Some(Some(g)) = g {
                        match g.parse::<MariaGtidPos>() {
                            Ok(g) => gtid_state = Some(GtidState::Maria(g)),
                            Err(e) => warn!(error = %e, "unparsable BINLOG_GTID_POS"),
                        }
                    }
                } else if let Some(Position::MysqlGtidSet { set }) = &opts.start_gtid {
                    gtid_state = Some(GtidState::Mysql(set.clone()));
                }
                (p.file.clone(), p.pos)
            }
            StartPosition::MariaGtid(g) => {
                if !flavor.is_mariadb() {
                    return Err(ReplayError::InvalidStart(format!(
                        "a MariaDB GTID position ({g}) cannot start a stream from {flavor}"
                    )));
                }
                // A domain the source never logged would be silently ignored by the server
                // (and a domain missing from the position streamed from its beginning): refuse
                // positions that come from another server.
                let state: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_binlog_state")
                    .await
                    .map_err(|e| ReplayError::mysql(ctx("@@gtid_binlog_state"), e))?;
                let state = state.unwrap_or_default();
                let known: Vec<u32> = state
                    .split(',')
                    .filter_map(|p| p.trim().parse::<ferry_core::position::MariaGtid>().ok())
                    .map(|g| g.domain)
                    .collect();
                if let Some(g) = g.0.iter().find(|g| !known.contains(&g.domain)) {
                    return Err(ReplayError::PositionUnavailable {
                        wanted: format!("GTID {g}"),
                        message: format!(
                            "domain {} is not in the source's binlog state ({state}): the position \
                             comes from another server",
                            g.domain
                        ),
                    });
                }
                sets.push(format!("SET @slave_connect_state={}", sql_quote(&g.to_string())));
                gtid_state = Some(GtidState::Maria(g.clone()));
                (String::new(), 4)
            }
            StartPosition::MysqlGtidSet(s) => {
                if flavor.is_mariadb() {
                    return Err(ReplayError::InvalidStart(format!(
                        "a MySQL GTID set ({s}) cannot start a stream from {flavor}"
                    )));
                }
                gtid_state = Some(GtidState::Mysql(s.clone()));
                (String::new(), 4)
            }
        };
        if flavor.is_mariadb() {
            sets.insert(0, "SET @mariadb_slave_capability=4".into());
            sets.push("SET @slave_gtid_strict_mode=1".into());
        }
        let heartbeat_ns = opts.heartbeat.as_nanos().max(1_000_000);
        sets.push(format!("SET @master_heartbeat_period={heartbeat_ns}"));
        sets.push(format!("SET @source_heartbeat_period={heartbeat_ns}"));
        sets.push("SET @master_binlog_checksum=@@global.binlog_checksum".into());
        sets.push("SET @source_binlog_checksum=@@global.binlog_checksum".into());
        for s in &sets {
            conn.query_drop(s.as_str())
                .await
                .map_err(|e| ReplayError::mysql(ctx(s), e))?;
        }

        let sids: Vec<Sid<'static>> = match &start {
            StartPosition::MysqlGtidSet(set) => set
                .0
                .iter()
                .map(|e| {
                    let one = ferry_core::GtidSet(vec![e.clone()]).to_string();
                    one.parse::<Sid<'static>>()
                        .map_err(|err| ReplayError::InvalidStart(format!("GTID set member {one}: {err}")))
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let mut req = BinlogStreamRequest::new(server_id)
            .with_filename(file.as_bytes())
            .with_pos(pos);
        if matches!(start, StartPosition::MysqlGtidSet(_)) {
            req = req.with_gtid().with_gtid_set(sids);
        }
        if opts.non_blocking {
            req = req.with_non_blocking();
        }
        let connection_id = conn.id();
        let stream = conn.get_binlog_stream(req).await.map_err(|e| match e {
            mysql_async::Error::Server(s) if s.code == 1236 => ReplayError::PositionUnavailable {
                wanted: start.to_string(),
                message: s.message,
            },
            e => ReplayError::mysql(ctx("COM_BINLOG_DUMP"), e),
        })?;
        info!(%flavor, "binlog stream requested");

        let (tx, rx) = mpsc::channel::<Item>(opts.buffer_events.max(1));
        let task_span = info_span!("binlog_stream", source = %endpoint.display_name());
        let task = tokio::spawn(
            async move {
                let mut stream = stream;
                while let Some(item) = stream.next().await {
                    let is_err = item.is_err();
                    if tx.send(item).await.is_err() || is_err {
                        break;
                    }
                }
                debug!("binlog stream task ends");
                let _ = stream.close().await;
            }
            .instrument(task_span),
        );

        let mut reader = BinlogReader {
            rx,
            task: Some(task),
            translator: Translator::new(BinlogPos::new(file, pos)).with_gtid_state(gtid_state),
            flavor,
            start,
            pending: None,
            failed: false,
            delivered: false,
            done: false,
            non_blocking: opts.non_blocking,
            endpoint: endpoint.display_name(),
            connection_id,
            stall: stall_timeout(opts.heartbeat),
        };
        // The first answer: the fake Rotate, or error 1236.
        match tokio::time::timeout(opts.open_timeout, reader.rx.recv()).await {
            Ok(Some(Ok(ev))) => reader.pending = Some(Ok(ev)),
            Ok(Some(Err(e))) => {
                return Err(map_stream_error(
                    e,
                    reader.start.to_string(),
                    &reader.translator.position(),
                ))
            }
            Ok(None) => {
                if !opts.non_blocking {
                    return Err(reader.disconnected().await);
                }
                reader.done = true;
            }
            Err(_) => {
                return Err(ReplayError::Disconnected {
                    position: reader.start.to_string(),
                    reason: format!(
                        "no answer to the binlog request within {} s",
                        opts.open_timeout.as_secs()
                    ),
                })
            }
        }
        Ok(reader)
    }

    /// The source's flavor.
    pub fn flavor(&self) -> &Flavor {
        &self.flavor
    }

    /// The server-side id of the replication connection (`KILL` target, processlist id).
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// The position after the last event returned (or the start).
    pub fn position(&self) -> BinlogPos {
        self.translator.position()
    }

    /// The GTID state after the last finished group, when known: seeded from the start
    /// position (GTID starts, or `BINLOG_GTID_POS` on MariaDB file starts) or the first
    /// GTID_LIST event.
    pub fn gtid_position(&self) -> Option<Position> {
        self.translator.gtid_state().map(GtidState::to_position)
    }

    /// True while inside an event group (a checkpoint here would split a transaction).
    pub fn in_group(&self) -> bool {
        self.translator.in_group()
    }

    async fn disconnected(&mut self) -> ReplayError {
        self.failed = true;
        let reason = match self.task.take() {
            Some(t) => match t.await {
                Ok(()) => "the server closed the binlog stream".to_string(),
                Err(e) if e.is_panic() => {
                    let p = e.into_panic();
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into());
                    format!("the binlog reader task panicked (truncated packet?): {msg}")
                }
                Err(e) => format!("the binlog reader task ended: {e}"),
            },
            None => "the binlog stream is closed".to_string(),
        };
        warn!(%reason, position = %self.translator.position(), "binlog stream disconnected");
        ReplayError::Disconnected {
            position: self.translator.position().to_string(),
            reason,
        }
    }

    /// The next replication event. `Ok(None)` only in non-blocking mode, at the end of the
    /// binlog. After an error the reader is unusable: drop it and reopen from the checkpoint.
    pub async fn next(&mut self) -> Result<Option<ReplEvent>, ReplayError> {
        if self.failed {
            return Err(ReplayError::Disconnected {
                position: self.translator.position().to_string(),
                reason: "the reader failed earlier; reopen from the checkpoint".into(),
            });
        }
        if self.done {
            return Ok(None);
        }
        loop {
            let item = match self.pending.take() {
                Some(i) => Some(i),
                None => match tokio::time::timeout(self.stall, self.rx.recv()).await {
                    Ok(i) => i,
                    Err(_) => {
                        self.failed = true;
                        let position = self.translator.position().to_string();
                        let reason = format!(
                            "no event from the source for {} s: connection stalled",
                            self.stall.as_secs()
                        );
                        warn!(%reason, %position, "binlog stream stalled");
                        if let Some(t) = self.task.take() {
                            t.abort();
                        }
                        return Err(ReplayError::Disconnected { position, reason });
                    }
                },
            };
            let ev = match item {
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    self.failed = true;
                    let here = self.translator.position();
                    let wanted = if self.delivered {
                        format!("the binlog after {here}")
                    } else {
                        self.start.to_string()
                    };
                    return Err(map_stream_error(e, wanted, &here));
                }
                None => {
                    if self.non_blocking && !self.translator.in_payload() {
                        if let Some(t) = self.task.take() {
                            if let Err(e) = t.await {
                                if e.is_panic() {
                                    self.failed = true;
                                    return Err(ReplayError::Disconnected {
                                        position: self.translator.position().to_string(),
                                        reason: "the binlog reader task panicked".into(),
                                    });
                                }
                            }
                        }
                        self.done = true;
                        return Ok(None);
                    }
                    return Err(self.disconnected().await);
                }
            };
            match self.translator.feed(&ev) {
                Ok(Some(r)) => {
                    self.delivered = true;
                    return Ok(Some(r));
                }
                Ok(None) => continue,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }

    /// Stops the network task and drops the connection.
    pub async fn close(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for BinlogReader {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
