//! Reading binlog *files* (test fixtures, a copied binlog) through the same translation as the
//! network stream.
//!
//! Events are framed here (19-byte header, then exactly `event_size` bytes, with short reads
//! reported as truncation) before mysql_common parses them, so a truncated or corrupt file
//! yields an error, never a panic. MySQL transaction payloads are expanded in place: their
//! inner events are translated right after the payload event, as the network stream does.

use std::io::{BufRead, Cursor, Read};

use mysql_async::binlog::events::{Event, TransactionPayloadEvent};
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;

use crate::error::ReplayError;
use crate::event::{BinlogPos, ReplEvent};
use crate::translate::Translator;

/// The 4-byte magic at the start of every binlog file.
pub const BINLOG_MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// A binlog file reader producing [`ReplEvent`]s.
pub struct BinlogFileReader<R> {
    input: R,
    esr: EventStreamReader,
    translator: Translator,
    /// Inner events of the current transaction payload, still to translate.
    inner: Option<Cursor<Vec<u8>>>,
    offset: u64,
    failed: bool,
}

impl<R: Read> BinlogFileReader<R> {
    /// Checks the magic; `name` is the file name positions are reported in.
    pub fn new(name: &str, mut input: R) -> Result<Self, ReplayError> {
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic).map_err(|e| ReplayError::Corrupt {
            position: format!("{name}:0"),
            message: format!("no binlog magic: {e}"),
        })?;
        if magic != BINLOG_MAGIC {
            return Err(ReplayError::Corrupt {
                position: format!("{name}:0"),
                message: "not a binlog file (bad magic)".into(),
            });
        }
        Ok(BinlogFileReader {
            input,
            esr: EventStreamReader::new(BinlogVersion::Version4),
            translator: Translator::new(BinlogPos::new(name, 4)),
            inner: None,
            offset: 4,
            failed: false,
        })
    }

    /// The translator (position, GTID state).
    pub fn translator(&self) -> &Translator {
        &self.translator
    }

    fn corrupt(&self, message: impl Into<String>) -> ReplayError {
        ReplayError::Corrupt {
            position: format!("{}:{}", self.translator.position().file, self.offset),
            message: message.into(),
        }
    }

    /// Reads one framed event; `Ok(None)` at a clean end of file.
    fn read_frame(&mut self) -> Result<Option<Vec<u8>>, ReplayError> {
        let mut header = [0u8; 19];
        let mut got = 0;
        while got < header.len() {
            match self.input.read(&mut header[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.corrupt(format!("read error: {e}"))),
            }
        }
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            return Err(self.corrupt(format!("truncated event header ({got} of 19 bytes)")));
        }
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
        if size < 19 + 4 && header[4] != 3 {
            // every v4 event but STOP (which may be 19 bytes without checksum) has a body
            if size < 19 {
                return Err(self.corrupt(format!("event size {size} is below the header size")));
            }
        }
        if size > 1 << 30 {
            return Err(self.corrupt(format!("event size {size} is implausible")));
        }
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(&header);
        buf.resize(size, 0);
        let mut filled = 19;
        while filled < size {
            match self.input.read(&mut buf[filled..]) {
                Ok(0) => return Err(self.corrupt(format!("truncated event: {filled} of {size} bytes"))),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.corrupt(format!("read error: {e}"))),
            }
        }
        Ok(Some(buf))
    }

    fn parse(&mut self, frame: &[u8]) -> Result<Event, ReplayError> {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.esr.read(frame)));
        match r {
            Ok(Ok(Some(ev))) => Ok(ev),
            Ok(Ok(None)) => Err(self.corrupt("empty event")),
            Ok(Err(e)) => Err(self.corrupt(format!("{e}"))),
            Err(_) => Err(self.corrupt("binlog parser panicked on this event")),
        }
    }

    /// The next replication event; `Ok(None)` at the end of the file. After an error the
    /// reader stops (returns `Ok(None)`).
    pub fn next_event(&mut self) -> Result<Option<ReplEvent>, ReplayError> {
        if self.failed {
            return Ok(None);
        }
        let r = self.next_inner();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<ReplEvent>, ReplayError> {
        loop {
            if let Some(cur) = self.inner.as_mut() {
                let has_more = cur.fill_buf().map(|b| !b.is_empty()).unwrap_or(false);
                if has_more {
                    let cur = self.inner.as_mut().map(|c| c as &mut dyn BufRead);
                    let r = match cur {
                        Some(c) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            self.esr.read_decompressed(c)
                        })),
                        None => continue,
                    };
                    let ev = match r {
                        Ok(Ok(Some(ev))) => ev,
                        Ok(Ok(None)) => {
                            self.inner = None;
                            continue;
                        }
                        Ok(Err(e)) => return Err(self.corrupt(format!("transaction payload: {e}"))),
                        Err(_) => {
                            return Err(self.corrupt("binlog parser panicked inside a transaction payload"))
                        }
                    };
                    match self.translator.feed(&ev)? {
                        Some(r) => return Ok(Some(r)),
                        None => continue,
                    }
                }
                self.inner = None;
            }
            let Some(frame) = self.read_frame()? else {
                if self.translator.in_group() {
                    return Err(self.corrupt("the file ends inside a transaction (truncated binlog)"));
                }
                return Ok(None);
            };
            let ev = self.parse(&frame)?;
            self.offset += frame.len() as u64;
            let is_payload = ev.header().event_type_raw() == 40;
            let out = self.translator.feed(&ev)?;
            if is_payload {
                let p = ev
                    .read_event::<TransactionPayloadEvent<'_>>()
                    .map_err(|e| self.corrupt(format!("transaction payload: {e}")))?;
                let mut data = Vec::new();
                p.decompressed()
                    .and_then(|mut r| r.read_to_end(&mut data))
                    .map_err(|e| self.corrupt(format!("transaction payload decompression: {e}")))?;
                if data.len() as u64 != p.uncompressed_size() {
                    return Err(self.corrupt(format!(
                        "transaction payload decompressed to {} bytes, header says {}",
                        data.len(),
                        p.uncompressed_size()
                    )));
                }
                self.inner = Some(Cursor::new(data));
            }
            if let Some(r) = out {
                return Ok(Some(r));
            }
        }
    }
}

impl<R: Read> Iterator for BinlogFileReader<R> {
    type Item = Result<ReplEvent, ReplayError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}
