//! Binlog positions in their three forms (file + offset, MySQL GTID set, MariaDB GTID position),
//! each with a canonical text form: `Display` and `FromStr` round-trip.
//!
//! - file + offset: `mysql-bin.000003:1234`
//! - MySQL GTID set: `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,…`; MySQL 8.3+ tags follow a
//!   UUID's untagged intervals, each with its own intervals: `uuid:1-13:mytag:1-2:other:5`
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
    /// MySQL's canonical form: one member per UUID, its untagged intervals first, then each tag
    /// (in order) followed by its intervals; members sorted by UUID, joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let normalized;
        let set = if self.is_normalized() {
            self
        } else {
            normalized = self.clone().normalized();
            &normalized
        };
        let mut prev: Option<&str> = None;
        for e in &set.0 {
            if prev != Some(e.uuid.as_str()) {
                if prev.is_some() {
                    f.write_str(",")?;
                }
                f.write_str(&e.uuid)?;
                prev = Some(&e.uuid);
            }
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

/// MySQL's GTID tag syntax: `[a-z_][a-z0-9_]{0,31}`, case-insensitive (compared in lower case).
pub fn is_gtid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Sorts and merges closed intervals (adjacent ones too).
fn merge_intervals(iv: &mut Vec<(u64, u64)>) {
    iv.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(iv.len());
    for &(a, b) in iv.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *iv = merged;
}

impl GtidSetEntry {
    fn key(&self) -> (&str, Option<&str>) {
        (self.uuid.as_str(), self.tag.as_deref())
    }

    fn contains_gno(&self, gno: u64) -> bool {
        // intervals are sorted and disjoint
        let i = self.intervals.partition_point(|&(_, b)| b < gno);
        self.intervals.get(i).is_some_and(|&(a, _)| a <= gno)
    }
}

impl GtidSet {
    /// The empty set.
    pub fn new() -> Self {
        GtidSet(Vec::new())
    }

    /// True when the set holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|e| e.intervals.is_empty())
    }

    fn is_normalized(&self) -> bool {
        self.0.windows(2).all(|w| w[0].key() < w[1].key())
            && self.0.iter().all(|e| {
                !e.intervals.is_empty()
                    && e.intervals.iter().all(|&(a, b)| a <= b)
                    && e.intervals.windows(2).all(|w| w[0].1.saturating_add(1) < w[1].0)
            })
    }

    /// The canonical form: one entry per (UUID, tag), sorted by UUID then tag (untagged first),
    /// intervals sorted and merged, no empty entries. Sets compare equal (`==`) when their
    /// canonical forms do; `FromStr` and every method here keep sets canonical.
    pub fn normalized(mut self) -> Self {
        self.0.sort_by(|x, y| x.key().cmp(&y.key()));
        let mut out: Vec<GtidSetEntry> = Vec::with_capacity(self.0.len());
        for e in self.0 {
            match out.last_mut() {
                Some(last) if last.key() == e.key() => last.intervals.extend(e.intervals),
                _ => out.push(e),
            }
        }
        for e in &mut out {
            merge_intervals(&mut e.intervals);
        }
        out.retain(|e| !e.intervals.is_empty());
        GtidSet(out)
    }

    /// Whether the transaction `uuid[:tag]:gno` is in the set (`uuid` and `tag` in lower case).
    pub fn contains_gtid(&self, uuid: &str, tag: Option<&str>, gno: u64) -> bool {
        self.0
            .iter()
            .any(|e| e.key() == (uuid, tag) && e.contains_gno(gno))
    }

    /// Adds one transaction (`uuid` and `tag` in lower case), merging intervals.
    pub fn add(&mut self, uuid: &str, tag: Option<&str>, gno: u64) {
        let key = (uuid, tag);
        match self.0.binary_search_by(|e| e.key().cmp(&key)) {
            Ok(i) => {
                let e = &mut self.0[i];
                if !e.contains_gno(gno) {
                    e.intervals.push((gno, gno));
                    merge_intervals(&mut e.intervals);
                }
            }
            Err(i) => self.0.insert(
                i,
                GtidSetEntry {
                    uuid: uuid.to_string(),
                    tag: tag.map(str::to_string),
                    intervals: vec![(gno, gno)],
                },
            ),
        }
    }

    /// Adds every transaction of `other`.
    pub fn union_with(&mut self, other: &GtidSet) {
        let mut all = std::mem::take(&mut self.0);
        all.extend(other.0.iter().cloned());
        *self = GtidSet(all).normalized();
    }

    /// The union of two sets.
    pub fn union(&self, other: &GtidSet) -> GtidSet {
        let mut s = self.clone();
        s.union_with(other);
        s
    }

    /// Whether every transaction of `other` is in `self` (MySQL's `GTID_SUBSET(other, self)`).
    pub fn contains(&self, other: &GtidSet) -> bool {
        other.0.iter().all(|o| {
            let Some(e) = self.0.iter().find(|e| e.key() == o.key()) else {
                return o.intervals.is_empty();
            };
            o.intervals.iter().all(|&(a, b)| {
                let i = e.intervals.partition_point(|&(_, hi)| hi < a);
                e.intervals.get(i).is_some_and(|&(lo, hi)| lo <= a && b <= hi)
            })
        })
    }
}

impl FromStr for GtidSet {
    type Err = CoreError;
    /// MySQL's grammar (8.4): `uuid_set[,uuid_set]...`, where
    /// `uuid_set = uuid[:interval]...[:tag:interval[:interval]...]...` and
    /// `interval = n[-m]`. Within a member a tag applies to the intervals after it, up to the
    /// next tag; the untagged intervals come first. A UUID may appear in several members. The
    /// empty string is the empty set.
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let mut entries: Vec<GtidSetEntry> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let uuid = fields.next().unwrap_or_default().trim().to_ascii_lowercase();
            if !is_uuid(&uuid) {
                return Err(bad(s, format!("{uuid:?} is not a UUID")));
            }
            let mut cur = GtidSetEntry {
                uuid: uuid.clone(),
                tag: None,
                intervals: Vec::new(),
            };
            let mut any = false;
            for f in fields {
                let f = f.trim();
                if f.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                    if !is_gtid_tag(f) {
                        return Err(bad(
                            s,
                            format!("{f:?} is not a GTID tag ([a-z_][a-z0-9_]{{0,31}})"),
                        ));
                    }
                    if cur.tag.is_some() && cur.intervals.is_empty() {
                        return Err(bad(s, format!("tag {:?} has no interval", cur.tag)));
                    }
                    let next = GtidSetEntry {
                        uuid: uuid.clone(),
                        tag: Some(f.to_ascii_lowercase()),
                        intervals: Vec::new(),
                    };
                    entries.push(std::mem::replace(&mut cur, next));
                    continue;
                }
                let (a, b) = f.split_once('-').unwrap_or((f, f));
                let num = |x: &str| {
                    let x = x.trim();
                    if x.is_empty() || !x.bytes().all(|c| c.is_ascii_digit()) {
                        return Err(bad(s, format!("bad interval {f:?}")));
                    }
                    x.parse::<u64>()
                        .map_err(|_| bad(s, format!("interval {f:?} out of range")))
                };
                let (a, b) = (num(a)?, num(b)?);
                if a == 0 || b < a {
                    return Err(bad(s, format!("bad interval {f:?}")));
                }
                cur.intervals.push((a, b));
                any = true;
            }
            if cur.tag.is_some() && cur.intervals.is_empty() {
                return Err(bad(s, format!("tag {:?} has no interval", cur.tag)));
            }
            if !any {
                return Err(bad(s, format!("{uuid} has no interval")));
            }
            entries.push(cur);
        }
        Ok(GtidSet(entries).normalized())
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

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const V: &str = "0e11fa47-71ca-11e1-9e33-c80aa9429562";

    fn set(s: &str) -> GtidSet {
        s.parse().unwrap()
    }

    #[test]
    fn tagged_sets_parse_per_mysql_grammar() {
        // a tag applies to the intervals after it, up to the next tag
        let s = set(&format!("{U}:1-5:a:1-3:b:7"));
        assert_eq!(
            s.0,
            vec![
                GtidSetEntry {
                    uuid: U.into(),
                    tag: None,
                    intervals: vec![(1, 5)]
                },
                GtidSetEntry {
                    uuid: U.into(),
                    tag: Some("a".into()),
                    intervals: vec![(1, 3)]
                },
                GtidSetEntry {
                    uuid: U.into(),
                    tag: Some("b".into()),
                    intervals: vec![(7, 7)]
                },
            ]
        );
        assert_eq!(s.to_string(), format!("{U}:1-5:a:1-3:b:7"));
        // the readiness review's example: the untagged intervals stay untagged
        let s = set(&format!("{U}:1-13:mytag:1-2"));
        assert!(s.contains_gtid(U, None, 13));
        assert!(!s.contains_gtid(U, Some("mytag"), 13));
        assert!(s.contains_gtid(U, Some("mytag"), 2));
        assert_eq!(s.to_string(), format!("{U}:1-13:mytag:1-2"));
        // canonical printing: untagged first, tags sorted and lower-cased, intervals merged,
        // one member per UUID
        let s = set(&format!("{U}:Zed:4:ZED:1-3, {U}:7:5-6 ,{V}:_t:9,{U}:1-4:ab:2"));
        assert_eq!(s.to_string(), format!("{V}:_t:9,{U}:1-7:ab:2:zed:1-4"));
        // a tag-only member
        assert_eq!(set(&format!("{U}:t:1-3")).to_string(), format!("{U}:t:1-3"));
        // the empty set
        assert!(set("").is_empty());
        assert_eq!(set(" ").to_string(), "");
    }

    #[test]
    fn previous_gtids_of_the_tagged_fixture() {
        // PREVIOUS_GTIDS of fixture binlog_transaction_with_GTID_TAG.000001 (MySQL 9): untagged
        // 1-13 and tag mytag 1-2 of one server
        let text = "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2";
        let s = set(text);
        assert_eq!(s.to_string(), text);
        assert_eq!(s.0.len(), 2);
        assert_eq!(s.0[0].tag, None);
        assert_eq!(s.0[0].intervals, vec![(1, 13)]);
        assert_eq!(s.0[1].tag.as_deref(), Some("mytag"));
        assert_eq!(s.0[1].intervals, vec![(1, 2)]);
        let mut s = s;
        s.add("55778904-0299-11f1-b1b8-4ef0c4956feb", Some("mytag"), 3);
        assert_eq!(
            s.to_string(),
            "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-3"
        );
    }

    #[test]
    fn bad_tags_and_members_are_refused() {
        for s in [
            format!("{U}:1-5:a"),                // tag without interval
            format!("{U}:a:b:1"),                // tag without interval
            format!("{U}:t-x:1"),                // not a tag
            format!("{U}:{}:1", "t".repeat(33)), // tag too long
            format!("{U}:1-x"),
            format!("{U}:5-3"),
            U.to_string(),
            format!("{U}:"),
            format!("{U}:1--3"),
            format!("{U}:-3"),
        ] {
            assert!(s.parse::<GtidSet>().is_err(), "{s}");
        }
        assert!(format!("{U}:{}:1", "t".repeat(32)).parse::<GtidSet>().is_ok());
    }

    #[test]
    fn set_operations() {
        let a = set(&format!("{U}:1-5:a:1-3"));
        let b = set(&format!("{U}:6-8:a:5,{V}:1"));
        let u = a.union(&b);
        assert_eq!(u.to_string(), format!("{V}:1,{U}:1-8:a:1-3:5"));
        assert!(u.contains(&a) && u.contains(&b) && !a.contains(&u));
        assert!(u.contains(&GtidSet::new()));
        assert!(!a.contains(&set(&format!("{U}:4-6"))));
        assert!(!a.contains(&set(&format!("{U}:b:1"))));
        let mut c = a.clone();
        c.add(U, Some("a"), 4);
        c.add(U, None, 9);
        c.add(U, None, 5);
        assert_eq!(c.to_string(), format!("{U}:1-5:9:a:1-4"));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        const UUIDS: [&str; 3] = [
            "3e11fa47-71ca-11e1-9e33-c80aa9429562",
            "0e11fa47-71ca-11e1-9e33-c80aa9429562",
            "ffffffff-0000-1111-2222-333344445555",
        ];

        fn entry() -> impl Strategy<Value = GtidSetEntry> {
            (
                0..UUIDS.len(),
                prop::option::of(prop::sample::select(vec!["a", "_x", "tag_9", "zz"])),
                prop::collection::vec((1u64..60, 0u64..6), 0..5),
            )
                .prop_map(|(u, tag, iv)| GtidSetEntry {
                    uuid: UUIDS[u].to_string(),
                    tag: tag.map(str::to_string),
                    intervals: iv.into_iter().map(|(a, l)| (a, a + l)).collect(),
                })
        }

        fn gtid_set() -> impl Strategy<Value = GtidSet> {
            prop::collection::vec(entry(), 0..6).prop_map(|v| GtidSet(v).normalized())
        }

        fn members(s: &GtidSet) -> Vec<(String, Option<String>, u64)> {
            let mut out = Vec::new();
            for e in &s.0 {
                for &(a, b) in &e.intervals {
                    for g in a..=b {
                        out.push((e.uuid.clone(), e.tag.clone(), g));
                    }
                }
            }
            out
        }

        proptest! {
            #[test]
            fn display_from_str_round_trip(s in gtid_set()) {
                let text = s.to_string();
                let back: GtidSet = text.parse().unwrap();
                prop_assert_eq!(&back, &s);
                prop_assert_eq!(back.to_string(), text);
                if !s.is_empty() {
                    let p: Position = s.to_string().parse().unwrap();
                    prop_assert_eq!(p, Position::MysqlGtidSet { set: s.clone() });
                }
            }

            #[test]
            fn union_and_contains_laws(a in gtid_set(), b in gtid_set(), c in gtid_set()) {
                let ab = a.union(&b);
                prop_assert_eq!(&ab, &b.union(&a));
                prop_assert_eq!(ab.union(&c), a.union(&b.union(&c)));
                prop_assert_eq!(a.union(&a), a.clone());
                prop_assert!(ab.contains(&a) && ab.contains(&b));
                prop_assert!(a.contains(&a) && a.contains(&GtidSet::new()));
                prop_assert_eq!(a.contains(&b), a.union(&b) == a);
                for (u, t, g) in members(&ab) {
                    prop_assert!(a.contains_gtid(&u, t.as_deref(), g) || b.contains_gtid(&u, t.as_deref(), g));
                }
                // adding one by one gives the union
                let mut x = a.clone();
                for (u, t, g) in members(&b) {
                    x.add(&u, t.as_deref(), g);
                }
                prop_assert_eq!(x, ab);
            }
        }
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
