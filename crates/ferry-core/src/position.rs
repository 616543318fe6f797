//! Binlog positions in their three forms (file + offset, MySQL GTID set, MariaDB GTID position),
//! each with a canonical text form: `Display` and `FromStr` round-trip.
//!
//! - file + offset: `mysql-bin.000003:1234`
//! - MySQL GTID set: `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,…` (tags as `uuid:tag:1-5`)
//! - MariaDB GTID position: `0-1-100,1-2-7` (domain-server-sequence, one per domain)

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

/// One MariaDB GTID: `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

/// A MariaDB GTID position: the last GTID of each replication domain, sorted by domain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MariaGtidPos(pub Vec<MariaGtid>);

/// A MySQL GTID set: per source UUID (and tag), closed intervals of transaction numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GtidSet(pub Vec<GtidSetEntry>);

/// One `uuid[:tag]:intervals` member of a MySQL GTID set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtidSetEntry {
    /// Lower-case UUID.
    pub uuid: String,
    /// MySQL 8.4 GTID tag, if any.
    pub tag: Option<String>,
    /// Closed, sorted, non-overlapping intervals.
    pub intervals: Vec<(u64, u64)>,
}

/// A binlog position in one of its three forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// A binlog file and the offset of the next event.
    FilePos { file: String, pos: u64 },
    /// MySQL's executed GTID set.
    MysqlGtidSet { set: GtidSet },
    /// MariaDB's GTID position.
    MariaGtidPos { pos: MariaGtidPos },
}

/// The position a consistent snapshot was taken at: always a file + offset, and the GTID state
/// of the source at that point where GTIDs are in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPosition {
    pub file: String,
    pub pos: u64,
    /// `Position::MysqlGtidSet` or `Position::MariaGtidPos`, when the server has any GTIDs.
    pub gtid: Option<Position>,
}

impl SnapshotPosition {
    /// The file + offset form.
    pub fn file_pos(&self) -> Position {
        Position::FilePos {
            file: self.file.clone(),
            pos: self.pos,
        }
    }
}

impl fmt::Display for SnapshotPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if let Some(g) = &self.gtid {
            write!(f, " (gtid {g})")?;
        }
        Ok(())
    }
}

fn bad(input: &str, message: impl Into<String>) -> CoreError {
    CoreError::InvalidPosition {
        input: input.to_string(),
        message: message.into(),
    }
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl FromStr for MariaGtid {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let mut it = s.trim().split('-');
        let mut next = |what: &str| {
            it.next()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad(s, format!("missing or non-numeric {what}")))
        };
        let g = MariaGtid {
            domain: next("domain")?
                .parse()
                .map_err(|_| bad(s, "domain out of range"))?,
            server: next("server id")?
                .parse()
                .map_err(|_| bad(s, "server id out of range"))?,
            seq: next("sequence")?
                .parse()
                .map_err(|_| bad(s, "sequence out of range"))?,
        };
        if it.next().is_some() {
            return Err(bad(s, "expected domain-server-sequence"));
        }
        Ok(g)
    }
}

impl fmt::Display for MariaGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for MariaGtidPos {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let mut v: Vec<MariaGtid> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(MariaGtid::from_str)
            .collect::<Result<_, _>>()?;
        v.sort_by_key(|g| g.domain);
        if v.windows(2).any(|w| w[0].domain == w[1].domain) {
            return Err(bad(s, "two GTIDs for the same domain"));
        }
        Ok(MariaGtidPos(v))
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&e.uuid)?;
            if let Some(t) = &e.tag {
                write!(f, ":{t}")?;
            }
            for (a, b) in &e.intervals {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

impl FromStr for GtidSet {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let mut entries: Vec<GtidSetEntry> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let uuid = fields.next().unwrap_or_default().to_ascii_lowercase();
            if !is_uuid(&uuid) {
                return Err(bad(s, format!("{uuid:?} is not a UUID")));
            }
            let mut tag = None;
            let mut intervals = Vec::new();
            for f in fields {
                let f = f.trim();
                if f.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                    tag = Some(f.to_ascii_lowercase());
                    continue;
                }
                let (a, b) = f.split_once('-').unwrap_or((f, f));
                let a: u64 = a.parse().map_err(|_| bad(s, format!("bad interval {f:?}")))?;
                let b: u64 = b.parse().map_err(|_| bad(s, format!("bad interval {f:?}")))?;
                if a == 0 || b < a {
                    return Err(bad(s, format!("bad interval {f:?}")));
                }
                intervals.push((a, b));
            }
            if intervals.is_empty() {
                return Err(bad(s, format!("{uuid} has no interval")));
            }
            match entries.iter_mut().find(|e| e.uuid == uuid && e.tag == tag) {
                Some(e) => e.intervals.extend(intervals),
                None => entries.push(GtidSetEntry { uuid, tag, intervals }),
            }
        }
        for e in &mut entries {
            e.intervals.sort();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (a, b) in e.intervals.drain(..) {
                match merged.last_mut() {
                    Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            e.intervals = merged;
        }
        entries.sort_by(|x, y| (&x.uuid, &x.tag).cmp(&(&y.uuid, &y.tag)));
        Ok(GtidSet(entries))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::FilePos { file, pos } => write!(f, "{file}:{pos}"),
            Position::MysqlGtidSet { set } => write!(f, "{set}"),
            Position::MariaGtidPos { pos } => write!(f, "{pos}"),
        }
    }
}

impl FromStr for Position {
    type Err = CoreError;
    /// Recognises the form by shape: a UUID first means a MySQL GTID set, `N-N-N` members mean a
    /// MariaDB GTID position, anything else must be `file:offset`.
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(bad(s, "empty position"));
        }
        if t.len() >= 36 && is_uuid(&t[..36]) {
            return Ok(Position::MysqlGtidSet { set: t.parse()? });
        }
        let looks_maria = t.split(',').all(|p| {
            let p = p.trim();
            p.split('-').count() == 3
                && p.split('-')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        if looks_maria {
            return Ok(Position::MariaGtidPos { pos: t.parse()? });
        }
        let (file, pos) = t.rsplit_once(':').ok_or_else(|| {
            bad(
                s,
                "expected file:offset, a MySQL GTID set or a MariaDB GTID position",
            )
        })?;
        if file.is_empty() {
            return Err(bad(s, "empty file name"));
        }
        let pos = pos.parse().map_err(|_| bad(s, "offset is not a number"))?;
        Ok(Position::FilePos {
            file: file.to_string(),
            pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> Position {
        let p: Position = s.parse().unwrap();
        assert_eq!(p.to_string().parse::<Position>().unwrap(), p, "{s}");
        p
    }

    #[test]
    fn file_pos_round_trip() {
        let p = round_trip("mysql-bin.000003:1234");
        assert_eq!(p.to_string(), "mysql-bin.000003:1234");
        assert!(matches!(p, Position::FilePos { pos: 1234, .. }));
        // offsets beyond 4 GiB survive
        assert_eq!(
            round_trip("b.000001:5000000000").to_string(),
            "b.000001:5000000000"
        );
    }

    #[test]
    fn mysql_gtid_round_trip_and_normalises() {
        let s =
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7:6, 0e11fa47-71ca-11e1-9e33-c80aa9429562:tag_a:1-3";
        let p = round_trip(s);
        assert_eq!(
            p.to_string(),
            "0e11fa47-71ca-11e1-9e33-c80aa9429562:tag_a:1-3,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7"
        );
    }

    #[test]
    fn maria_gtid_round_trip() {
        let p = round_trip("1-2-7,0-1-100");
        assert_eq!(p.to_string(), "0-1-100,1-2-7");
        assert!("0-1-1,0-2-2".parse::<Position>().is_err());
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "nofile",
            "f:x",
            ":12",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:0-1",
        ] {
            assert!(s.parse::<Position>().is_err(), "{s}");
        }
    }
}
