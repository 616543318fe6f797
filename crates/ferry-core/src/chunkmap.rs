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

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use mysql_async::Value;

use crate::selection::META_SCHEMA;
use crate::sql::{quote_ident, quote_str};

/// The chunk number of a mark that covers every chunk of a table.
pub const WHOLE_TABLE: i64 = -1;
/// The chunk number of a mark that asks the verifier to plan a table's chunks again (a DDL
/// changed it, or a chunk outgrew its bound).
pub const REPLAN: i64 = -2;

/// Upper bounds of a table's chunks, for keys of integers only, with each chunk's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMap {
    uppers: Vec<Vec<i128>>,
    /// The chunk number of each position (chunk numbers are identities: a chunk split in place
    /// gives its pieces new numbers, so numbers need not follow key order).
    ids: Vec<u32>,
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
        ok.then_some(ChunkMap { uppers, ids })
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
        let pos = self.locate(key) as usize;
        self.ids.get(pos).copied().unwrap_or(pos as u32)
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

/// One dirty mark: source database, source table, chunk number (or [`WHOLE_TABLE`]).
pub type Mark = (String, String, i64);

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
        let whole = || (db.to_string(), table.to_string(), WHOLE_TABLE);
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
                    out.insert((db.to_string(), table.to_string(), i64::from(map.chunk_no(&k))));
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

/// One statement that records `marks` for a job (a new mark, or `seq + 1` on an existing one);
/// `None` when there is nothing to mark.
pub fn marks_sql(job: &str, marks: &BTreeSet<Mark>) -> Option<String> {
    if marks.is_empty() {
        return None;
    }
    let job = quote_str(job);
    let rows: Vec<String> = marks
        .iter()
        .map(|(db, t, c)| {
            format!(
                "({job}, {}, {}, {c}, 1, UTC_TIMESTAMP(6))",
                quote_str(db),
                quote_str(t)
            )
        })
        .collect();
    Some(format!(
        "INSERT INTO {} (job, db, tbl, chunk_no, seq, first_marked_at) VALUES {} \
         ON DUPLICATE KEY UPDATE seq = seq + 1",
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
        let want: BTreeSet<Mark> = [
            ("d", "t", 0),
            ("d", "t", 2),
            ("d", "t", WHOLE_TABLE),
            ("d", "w", WHOLE_TABLE),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
        .collect();
        assert_eq!(out, want);
        let sql = marks_sql("j'1", &out).expect("sql");
        assert!(
            sql.contains("('j''1', 'd', 't', 0, 1, UTC_TIMESTAMP(6))"),
            "{sql}"
        );
        assert!(sql.ends_with("ON DUPLICATE KEY UPDATE seq = seq + 1"), "{sql}");
        assert!(marks_sql("j", &BTreeSet::new()).is_none());
    }
}
