//! Continuous verification's dirty tracking, shared by the replay (which marks) and the verifier
//! (which clears): the persisted chunk boundaries of each verified table, held in memory, and the
//! batched upsert that marks the chunks a committed target transaction changed.
//!
//! A table's chunks are the verifier's key ranges `(upper[i-1], upper[i]]` (the last one open
//! above). When every column of its chunking key is an integer, a row key is placed in its chunk
//! in memory ([`ChunkMap::locate`], a binary search); otherwise (text keys, whose order is the
//! collation's) every change marks the whole table ([`WHOLE_TABLE`]). A table the tracker does not
//! know is not marked: its first digest is taken after its boundaries are published, and every
//! change the replay holds was committed on the source before, so that digest already covers it.
//!
//! Marks go to `ferry_meta.verify_dirty` (one row per job, table and chunk; `seq` counts the marks)
//! in the same target transaction as the replay checkpoint. The verifier reads a chunk's `seq`
//! before it digests the chunk and deletes the mark only if `seq` is unchanged afterwards, so a
//! mark made while a chunk was being digested survives.
//!
//! A chunk whose key is one integer column and whose two bounds are known is cut into up to
//! [`MAX_PARTS`] parts of equal key span ([`Parts`]); a mark carries a bit mask of the parts its
//! changes touched (`part_mask`, OR-ed by the upsert), so the verifier digests again only those
//! parts of the chunk, not all its rows. Other chunks are marked whole ([`ALL_PARTS`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use mysql_async::Value;

use crate::selection::META_SCHEMA;
use crate::sql::{quote_ident, quote_str};

/// The chunk number of a mark that covers every chunk of a table.
pub const WHOLE_TABLE: i64 = -1;
/// The chunk number of a mark that asks the verifier to plan a table's chunks again (a DDL
/// changed it, or a chunk outgrew its bound).
pub const REPLAN: i64 = -2;

/// The most parts a chunk is cut into (the bits of a mark's `part_mask`).
pub const MAX_PARTS: u32 = 64;
/// The part mask of a mark that covers a whole chunk.
pub const ALL_PARTS: u64 = u64::MAX;

/// How a chunk `(lower, upper]` of a one-column integer key is cut into parts of equal key span:
/// part `i` is `(lower + i·step, min(lower + (i+1)·step, upper)]`. Pure: the replay (which marks)
/// and the verifier (which digests) derive the same parts from the same bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    lower: i128,
    upper: i128,
    step: i128,
    count: u32,
}

impl Parts {
    /// The parts of the chunk `(lower, upper]`; `None` (the chunk is one part) unless both bounds
    /// are single integers with `lower < upper` inside the range of a signed 64-bit integer.
    pub fn of(lower: Option<&[i128]>, upper: Option<&[i128]>) -> Option<Parts> {
        let (&[lo], &[hi]) = (lower?, upper?) else {
            return None;
        };
        let fits = |v: i128| i128::from(i64::MIN) <= v && v <= i128::from(i64::MAX);
        if !(lo < hi && fits(lo) && fits(hi)) {
            return None;
        }
        let span = hi - lo;
        let step = (span + i128::from(MAX_PARTS) - 1) / i128::from(MAX_PARTS);
        let count = ((span + step - 1) / step) as u32;
        Some(Parts {
            lower: lo,
            upper: hi,
            step,
            count,
        })
    }

    /// The number of parts (1 to [`MAX_PARTS`]).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The span of keys of each part.
    pub fn step(&self) -> i128 {
        self.step
    }

    /// The chunk's lower bound (exclusive).
    pub fn lower(&self) -> i128 {
        self.lower
    }

    /// The chunk's upper bound (inclusive).
    pub fn upper(&self) -> i128 {
        self.upper
    }

    /// The part holding `key` (a key outside the chunk is clamped to its first or last part).
    pub fn part(&self, key: i128) -> u32 {
        let i = (key - self.lower - 1).div_euclid(self.step);
        i.clamp(0, i128::from(self.count) - 1) as u32
    }

    /// Part `i`'s key range `(low, high]`.
    pub fn range(&self, i: u32) -> (i128, i128) {
        let low = self.lower + i128::from(i) * self.step;
        (low, (low + self.step).min(self.upper))
    }

    /// The mask of every part.
    pub fn all(&self) -> u64 {
        if self.count >= 64 {
            ALL_PARTS
        } else {
            (1u64 << self.count) - 1
        }
    }
}

/// Upper bounds of a table's chunks, for keys of integers only, with each chunk's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMap {
    uppers: Vec<Vec<i128>>,
    /// The chunk number of each position (chunk numbers are identities: a chunk split in place
    /// gives its pieces new numbers, so numbers need not follow key order).
    ids: Vec<u32>,
    /// The parts of each position's chunk (`None`: marked whole).
    parts: Vec<Option<Parts>>,
}

impl ChunkMap {
    /// The map of chunks `0..=uppers.len()` (chunk `i` ends at `uppers[i]` inclusive; the last one
    /// is open above). `None` unless the bounds increase strictly and have one width.
    pub fn new(uppers: Vec<Vec<i128>>) -> Option<ChunkMap> {
        let ids = (0..=uppers.len() as u32).collect();
        ChunkMap::with_ids(uppers, ids)
    }

    /// [`ChunkMap::new`] with the chunk number of each position (`uppers.len() + 1` of them).
    pub fn with_ids(uppers: Vec<Vec<i128>>, ids: Vec<u32>) -> Option<ChunkMap> {
        let width = uppers.first().map_or(0, Vec::len);
        let ok = uppers.iter().all(|u| u.len() == width)
            && uppers.windows(2).all(|w| w[0] < w[1])
            && ids.len() == uppers.len() + 1;
        let parts = (0..ids.len())
            .map(|i| {
                let lower = i.checked_sub(1).and_then(|p| uppers.get(p)).map(Vec::as_slice);
                Parts::of(lower, uppers.get(i).map(Vec::as_slice))
            })
            .collect();
        ok.then_some(ChunkMap { uppers, ids, parts })
    }

    /// The number of chunks.
    pub fn chunks(&self) -> u32 {
        self.uppers.len() as u32 + 1
    }

    /// The position (in key order) of the chunk holding `key` (compared as a tuple, like SQL's
    /// row comparison).
    pub fn locate(&self, key: &[i128]) -> u32 {
        self.uppers.partition_point(|u| u.as_slice() < key) as u32
    }

    /// The number of the chunk holding `key`.
    pub fn chunk_no(&self, key: &[i128]) -> u32 {
        self.chunk_and_part(key).0
    }

    /// Each chunk number with its parts (`None`: not cut).
    pub fn chunk_parts(&self) -> impl Iterator<Item = (u32, Option<Parts>)> + '_ {
        self.ids.iter().copied().zip(self.parts.iter().copied())
    }

    /// The number of the chunk holding `key` and the mask of its part (the chunk's parts are
    /// those of its bounds in this map, [`Parts::of`]; [`ALL_PARTS`] for a chunk not cut).
    pub fn chunk_and_part(&self, key: &[i128]) -> (u32, u64) {
        let pos = self.locate(key) as usize;
        let no = self.ids.get(pos).copied().unwrap_or(pos as u32);
        let mask = match (self.parts.get(pos).copied().flatten(), key) {
            (Some(p), [k]) => 1u64 << p.part(*k),
            _ => ALL_PARTS,
        };
        (no, mask)
    }
}

/// The exact integer of a key value (`None`: not an integer).
pub fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// How the changes of one table are marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableChunks {
    /// By chunk: `key` holds the positions (in the source table's columns) of the chunking key.
    Ranges { key: Vec<usize>, map: ChunkMap },
    /// Every change marks the whole table.
    Whole,
}

/// One dirty mark: source database, source table, chunk number (or [`WHOLE_TABLE`]), and the
/// mask of the chunk's parts it touches ([`ALL_PARTS`]: the whole chunk).
pub type Mark = (String, String, i64, u64);

/// The chunk maps of the tables under continuous verification, shared by the replay and the
/// verifier of one job (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct DirtyTracker {
    tables: Arc<RwLock<HashMap<(String, String), TableChunks>>>,
}

impl DirtyTracker {
    /// Publishes (or replaces) a table's chunks.
    pub fn set(&self, db: &str, table: &str, chunks: TableChunks) {
        if let Ok(mut g) = self.tables.write() {
            g.insert((db.to_string(), table.to_string()), chunks);
        }
    }

    /// Forgets a table (its chunks are being planned again).
    pub fn remove(&self, db: &str, table: &str) {
        if let Ok(mut g) = self.tables.write() {
            g.remove(&(db.to_string(), table.to_string()));
        }
    }

    /// The tables tracked.
    pub fn tables(&self) -> Vec<(String, String)> {
        self.tables
            .read()
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// True when no table is tracked.
    pub fn is_empty(&self) -> bool {
        self.tables.read().map(|g| g.is_empty()).unwrap_or(true)
    }

    /// Adds to `out` the marks of row images of a source table (`present`: the columns an image
    /// carries, `None` for all; a key column an image lacks is unchanged, so that image is
    /// skipped). Untracked tables give no mark.
    pub fn mark<'a>(
        &self,
        db: &str,
        table: &str,
        images: impl Iterator<Item = (&'a [Value], Option<&'a [bool]>)>,
        out: &mut BTreeSet<Mark>,
    ) {
        let Ok(g) = self.tables.read() else { return };
        let Some(t) = g.get(&(db.to_string(), table.to_string())) else {
            return;
        };
        let whole = || (db.to_string(), table.to_string(), WHOLE_TABLE, ALL_PARTS);
        let (key, map) = match t {
            TableChunks::Whole => {
                out.insert(whole());
                return;
            }
            TableChunks::Ranges { key, map } => (key, map),
        };
        for (row, present) in images {
            if present.is_some_and(|p| key.iter().any(|&i| !p.get(i).copied().unwrap_or(false))) {
                continue;
            }
            let k: Option<Vec<i128>> = key.iter().map(|&i| row.get(i).and_then(int_of)).collect();
            match k {
                Some(k) => {
                    let (no, mask) = map.chunk_and_part(&k);
                    out.insert((db.to_string(), table.to_string(), i64::from(no), mask));
                }
                None => {
                    out.insert(whole());
                }
            }
        }
    }
}

/// The table of dirty marks, quoted.
pub fn dirty_table() -> String {
    format!("{}.{}", quote_ident(META_SCHEMA), quote_ident("verify_dirty"))
}

/// One statement that records `marks` for a job (a new mark, or `seq + 1` and the parts added
/// on an existing one; the marks of one chunk are merged into one row); `None` when there is
/// nothing to mark.
pub fn marks_sql(job: &str, marks: &BTreeSet<Mark>) -> Option<String> {
    if marks.is_empty() {
        return None;
    }
    let mut merged: BTreeMap<(&str, &str, i64), u64> = BTreeMap::new();
    for (db, t, c, mask) in marks {
        *merged.entry((db.as_str(), t.as_str(), *c)).or_insert(0) |= mask;
    }
    let job = quote_str(job);
    let rows: Vec<String> = merged
        .iter()
        .map(|((db, t, c), mask)| {
            format!(
                "({job}, {}, {}, {c}, 1, {mask}, UTC_TIMESTAMP(6))",
                quote_str(db),
                quote_str(t)
            )
        })
        .collect();
    Some(format!(
        "INSERT INTO {} (job, db, tbl, chunk_no, seq, part_mask, first_marked_at) VALUES {} \
         ON DUPLICATE KEY UPDATE seq = seq + 1, part_mask = part_mask | VALUES(part_mask)",
        dirty_table(),
        rows.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn linear(uppers: &[Vec<i128>], key: &[i128]) -> u32 {
        for (i, u) in uppers.iter().enumerate() {
            if key <= u.as_slice() {
                return i as u32;
            }
        }
        uppers.len() as u32
    }

    proptest! {
        #[test]
        fn locate_is_the_chunk_whose_range_holds_the_key(
            mut bounds in proptest::collection::btree_set((-50i128..50, -3i128..3), 0..20),
            key in (-60i128..60, -4i128..4),
        ) {
            let uppers: Vec<Vec<i128>> = std::mem::take(&mut bounds).into_iter().map(|(a, b)| vec![a, b]).collect();
            let m = ChunkMap::new(uppers.clone()).expect("sorted bounds");
            let k = [key.0, key.1];
            let c = m.locate(&k);
            prop_assert_eq!(c, linear(&uppers, &k));
            // (upper[c-1], upper[c]]
            if c > 0 { prop_assert!(uppers[c as usize - 1].as_slice() < &k[..]); }
            if (c as usize) < uppers.len() { prop_assert!(&k[..] <= uppers[c as usize].as_slice()); }
        }
    }

    #[test]
    fn chunk_numbers_follow_the_positions_given() {
        let m = ChunkMap::with_ids(vec![vec![10], vec![20]], vec![0, 7, 2]).expect("map");
        assert_eq!([5, 15, 25].map(|k| m.chunk_no(&[k])), [0, 7, 2]);
        assert!(ChunkMap::with_ids(vec![vec![10]], vec![0]).is_none());
    }

    #[test]
    fn unsorted_bounds_are_refused() {
        assert!(ChunkMap::new(vec![vec![3], vec![2]]).is_none());
        assert!(ChunkMap::new(vec![vec![1], vec![1, 2]]).is_none());
        assert_eq!(ChunkMap::new(Vec::new()).map(|m| m.chunks()), Some(1));
    }

    #[test]
    fn marks_before_and_after_keys_and_whole_tables() {
        let t = DirtyTracker::default();
        let map = ChunkMap::new(vec![vec![10], vec![20]]).expect("map");
        t.set("d", "t", TableChunks::Ranges { key: vec![0], map });
        t.set("d", "w", TableChunks::Whole);
        let mut out = BTreeSet::new();
        let before = [Value::Int(5), Value::Bytes(b"x".to_vec())];
        let after = [Value::UInt(25), Value::NULL];
        t.mark(
            "d",
            "t",
            [(&before[..], None), (&after[..], None)].into_iter(),
            &mut out,
        );
        // An after image without the key column (partial image): the key did not change.
        let partial = [false, true];
        t.mark("d", "t", [(&after[..], Some(&partial[..]))].into_iter(), &mut out);
        t.mark("d", "w", [(&before[..], None)].into_iter(), &mut out);
        t.mark("d", "untracked", [(&before[..], None)].into_iter(), &mut out);
        let text = [Value::Bytes(b"abc".to_vec())];
        t.mark("d", "t", [(&text[..], None)].into_iter(), &mut out);
        // Keys 12 and 13 fall in the middle chunk (10, 20], cut into 10 parts of one key each.
        let middle = [[Value::Int(12)], [Value::Int(13)]];
        t.mark("d", "t", middle.iter().map(|r| (&r[..], None)), &mut out);
        let want: BTreeSet<Mark> = [
            ("d", "t", 0, ALL_PARTS),
            ("d", "t", 1, 1 << 1),
            ("d", "t", 1, 1 << 2),
            ("d", "t", 2, ALL_PARTS),
            ("d", "t", WHOLE_TABLE, ALL_PARTS),
            ("d", "w", WHOLE_TABLE, ALL_PARTS),
        ]
        .into_iter()
        .map(|(a, b, c, m)| (a.to_string(), b.to_string(), c, m))
        .collect();
        assert_eq!(out, want);
        let sql = marks_sql("j'1", &out).expect("sql");
        assert!(
            sql.contains("('j''1', 'd', 't', 0, 1, 18446744073709551615, UTC_TIMESTAMP(6))"),
            "{sql}"
        );
        // The two marks of chunk 1 are one row with both parts.
        assert!(
            sql.contains("('j''1', 'd', 't', 1, 1, 6, UTC_TIMESTAMP(6))"),
            "{sql}"
        );
        assert!(
            sql.ends_with("ON DUPLICATE KEY UPDATE seq = seq + 1, part_mask = part_mask | VALUES(part_mask)"),
            "{sql}"
        );
        assert!(marks_sql("j", &BTreeSet::new()).is_none());
    }

    proptest! {
        #[test]
        fn parts_cut_a_chunk_into_consecutive_ranges(
            lo in -1_000_000i128..1_000_000,
            span in 1i128..100_000,
            key in 0i128..100_000,
        ) {
            let hi = lo + span;
            let p = Parts::of(Some(&[lo]), Some(&[hi])).expect("parts");
            prop_assert!(p.count() >= 1 && p.count() <= MAX_PARTS);
            // The ranges follow each other from lo to hi, none empty.
            let mut at = lo;
            for i in 0..p.count() {
                let (a, b) = p.range(i);
                prop_assert_eq!(a, at);
                prop_assert!(a < b);
                at = b;
            }
            prop_assert_eq!(at, hi);
            // A key inside the chunk is in the range of its part.
            let k = lo + 1 + key % span;
            let (a, b) = p.range(p.part(k));
            prop_assert!(a < k && k <= b, "key {} part {} range ({}, {}]", k, p.part(k), a, b);
            prop_assert_eq!(p.all().count_ones(), p.count());
        }
    }

    #[test]
    fn chunks_without_two_integer_bounds_are_not_cut() {
        assert!(Parts::of(None, Some(&[5])).is_none());
        assert!(Parts::of(Some(&[5]), None).is_none());
        assert!(Parts::of(Some(&[5]), Some(&[5])).is_none());
        assert!(Parts::of(Some(&[1, 2]), Some(&[3, 4])).is_none());
        assert!(Parts::of(Some(&[0]), Some(&[i128::from(i64::MAX) + 1])).is_none());
        let p = Parts::of(Some(&[0]), Some(&[1000])).expect("parts");
        assert_eq!((p.count(), p.step(), p.range(62)), (63, 16, (992, 1000)));
        assert_eq!(p.all(), (1 << 63) - 1);
    }
}
