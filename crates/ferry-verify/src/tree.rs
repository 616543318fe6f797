//! The Merkle-style tree over a table's chunk digests (one tree per side): two roots compare in
//! one step, and a differing subtree narrows down to the chunks that differ. Pure: no I/O.
//!
//! A leaf is the 128-bit XXH3 of a chunk's number, row count and digest sum; a parent is the XXH3
//! of its two children (an odd last node is hashed alone). Chunks are leaves in chunk order.

use xxhash_rust::xxh3::xxh3_128;

/// One chunk's leaf hash.
pub fn leaf(chunk_no: u32, rows: u64, sum: &str) -> u128 {
    let mut b = Vec::with_capacity(12 + sum.len());
    b.extend_from_slice(&chunk_no.to_le_bytes());
    b.extend_from_slice(&rows.to_le_bytes());
    b.extend_from_slice(sum.as_bytes());
    xxh3_128(&b)
}

/// A tree: `levels[0]` the leaves, the last level the root alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<u128>>,
}

fn parent(l: u128, r: Option<u128>) -> u128 {
    let mut b = [0u8; 33];
    b[..16].copy_from_slice(&l.to_le_bytes());
    match r {
        Some(r) => {
            b[16..32].copy_from_slice(&r.to_le_bytes());
            b[32] = 2;
        }
        None => b[32] = 1,
    }
    xxh3_128(&b)
}

impl Tree {
    /// The tree over these leaves.
    pub fn new(leaves: Vec<u128>) -> Tree {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up: Vec<u128> = below.chunks(2).map(|p| parent(p[0], p.get(1).copied())).collect();
            levels.push(up);
        }
        Tree { levels }
    }

    /// The root (0 for a tree without leaves).
    pub fn root(&self) -> u128 {
        self.levels.last().and_then(|l| l.first().copied()).unwrap_or(0)
    }

    /// The root as 32 hex digits (as stored).
    pub fn root_hex(&self) -> String {
        format!("{:032x}", self.root())
    }

    /// The number of leaves.
    pub fn leaves(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The leaves (chunk positions) whose hashes differ between two trees, found by descending
    /// only into differing subtrees. Trees of different sizes differ at every position.
    pub fn diff(&self, other: &Tree) -> Vec<usize> {
        if self.leaves() != other.leaves() {
            return (0..self.leaves().max(other.leaves())).collect();
        }
        let mut out = Vec::new();
        let top = self.levels.len().saturating_sub(1);
        let mut stack = vec![(top, 0usize)];
        while let Some((lvl, i)) = stack.pop() {
            let (a, b) = (self.levels[lvl].get(i), other.levels[lvl].get(i));
            if a.is_none() || a == b {
                continue;
            }
            if lvl == 0 {
                out.push(i);
            } else {
                for c in [2 * i + 1, 2 * i] {
                    if c < self.levels[lvl - 1].len() {
                        stack.push((lvl - 1, c));
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn diff_finds_exactly_the_differing_chunks(
            base in proptest::collection::vec(0u64..4, 0..70),
            flips in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let leaves = |v: &[u64]| -> Vec<u128> {
                v.iter().enumerate().map(|(i, r)| leaf(i as u32, *r, "1/2")).collect()
            };
            let mut other = base.clone();
            if !other.is_empty() {
                for f in &flips {
                    let i = f.index(other.len());
                    other[i] += 10;
                }
            }
            let (a, b) = (Tree::new(leaves(&base)), Tree::new(leaves(&other)));
            let want: Vec<usize> = (0..base.len()).filter(|&i| base[i] != other[i]).collect();
            prop_assert_eq!(a.diff(&b), want.clone());
            prop_assert_eq!(a.root() == b.root(), want.is_empty());
        }
    }

    #[test]
    fn sizes_and_leaves_matter() {
        let a = Tree::new(vec![leaf(0, 1, "5"), leaf(1, 1, "6")]);
        let b = Tree::new(vec![leaf(0, 1, "5")]);
        assert_eq!(a.diff(&b), vec![0, 1]);
        assert_ne!(leaf(0, 1, "5"), leaf(1, 1, "5"));
        assert_ne!(leaf(0, 1, "5"), leaf(0, 2, "5"));
        assert_eq!(Tree::new(Vec::new()).root(), 0);
        assert_eq!(a.root_hex().len(), 32);
    }
}
