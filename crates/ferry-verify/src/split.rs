//! Splitting a grown chunk in place (continuous verification): a stored chunk whose source rows
//! grew past twice the chunk size when it was last digested is cut into pieces of about the chunk
//! size, without planning the rest of its table again. Pure: no I/O (the inner bounds come from
//! the source's key walk, `continuous`, driven by [`walk`]).
//!
//! Every chunking key the loader's planner cuts by is split the same way (integers, strings,
//! dates, decimals, composite keys): the walk never compares keys in Rust. Each query returns the
//! key `chunk_rows` rows above the last cut and strictly below the chunk's upper bound, both
//! comparisons made by the server under the key's own collation and type order (the predicates
//! the chunks are digested with), so each cut lies strictly inside the chunk and the pieces
//! partition its rows. A table without a chunking key is one chunk and is never split.
//!
//! Chunk numbers are stable identities, not positions: the pieces get numbers no chunk of the
//! table ever had, the other chunks keep theirs (and their stored digests), and the split chunk
//! is kept as *retired*. A dirty mark the replay computed with the chunk map from before the split
//! names the retired chunk; it is expanded to the pieces that now cover its key range
//! ([`covering`]), so such a mark is never lost.

/// Whether a chunk of `rows` source rows has outgrown chunks of `chunk_rows` rows.
pub fn outgrown(rows: u64, chunk_rows: u64) -> bool {
    rows > chunk_rows.max(1).saturating_mul(2)
}

/// The most pieces one split makes (bounds the key walk's queries; the last piece takes the rest).
pub const MAX_PIECES: usize = 10_000;

/// The key walk of a chunk `(lower, upper]`: `next(last)` returns the `chunk_rows`-th key above
/// `last` (`None`: above `lower`) and strictly below `upper`, in the server's order, or `None`
/// when there is none. Returns the cuts found, in order (at most [`MAX_PIECES`] - 1).
pub async fn walk<B, E, F, Fut>(lower: Option<B>, mut next: F) -> Result<Vec<B>, E>
where
    B: Clone,
    F: FnMut(Option<B>) -> Fut,
    Fut: std::future::Future<Output = Result<Option<B>, E>>,
{
    let mut out: Vec<B> = Vec::new();
    let mut last = lower;
    while out.len() + 1 < MAX_PIECES {
        match next(last.take()).await? {
            Some(b) => {
                last = Some(b.clone());
                out.push(b);
            }
            None => break,
        }
    }
    Ok(out)
}

/// One piece of a split: `(lower, upper]` (`None`: unbounded) with its new chunk number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<B> {
    pub chunk_no: u32,
    pub lower: Option<B>,
    pub upper: Option<B>,
}

/// The pieces of the chunk `(lower, upper]` cut at `inner` (strictly increasing, strictly inside
/// the chunk), numbered from `first_no`. Empty when there is nothing to cut at.
pub fn pieces<B: Clone>(lower: Option<B>, upper: Option<B>, inner: Vec<B>, first_no: u32) -> Vec<Piece<B>> {
    if inner.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(inner.len() + 1);
    let mut lo = lower;
    for (i, b) in inner.into_iter().enumerate() {
        out.push(Piece {
            chunk_no: first_no + i as u32,
            lower: lo.take(),
            upper: Some(b.clone()),
        });
        lo = Some(b);
    }
    out.push(Piece {
        chunk_no: first_no + out.len() as u32,
        lower: lo,
        upper,
    });
    out
}

/// Whether the ranges `(a_lo, a_up]` and `(b_lo, b_up]` share a key.
fn overlaps<B: Ord>(a: (Option<&B>, Option<&B>), b: (Option<&B>, Option<&B>)) -> bool {
    // a starts below b's end, and b starts below a's end (`None` lower: -inf, `None` upper: +inf).
    let below = |lo: Option<&B>, up: Option<&B>| match (lo, up) {
        (Some(l), Some(u)) => l < u,
        _ => true,
    };
    below(a.0, b.1) && below(b.0, a.1)
}

/// The chunk numbers among `active` whose ranges share a key with the retired chunk `retired`:
/// the chunks a mark on the retired chunk stands for.
pub fn covering<B: Ord>(retired: &Piece<B>, active: &[Piece<B>]) -> Vec<u32> {
    active
        .iter()
        .filter(|c| {
            overlaps(
                (retired.lower.as_ref(), retired.upper.as_ref()),
                (c.lower.as_ref(), c.upper.as_ref()),
            )
        })
        .map(|c| c.chunk_no)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The chunk of `chunks` holding `k`, by a linear scan of the ranges.
    fn holder(chunks: &[Piece<i64>], k: i64) -> Vec<u32> {
        chunks
            .iter()
            .filter(|c| c.lower.is_none_or(|l| l < k) && c.upper.is_none_or(|u| k <= u))
            .map(|c| c.chunk_no)
            .collect()
    }

    /// A plan of chunks numbered 0.. from sorted bounds.
    fn plan(bounds: &[i64]) -> Vec<Piece<i64>> {
        pieces(None, None, bounds.to_vec(), 0)
    }

    proptest! {
        #[test]
        fn a_split_keeps_every_key_in_one_chunk_and_old_marks_cover_it(
            bounds in proptest::collection::btree_set(-100i64..100, 1..12),
            which in any::<prop::sample::Index>(),
            cuts in proptest::collection::btree_set(-100i64..100, 0..6),
            keys in proptest::collection::vec(-120i64..120, 1..40),
        ) {
            let bounds: Vec<i64> = bounds.into_iter().collect();
            let before = plan(&bounds);
            let i = which.index(before.len());
            let old = before[i].clone();
            // The key walk only returns keys strictly inside the chunk.
            let inner: Vec<i64> = cuts
                .into_iter()
                .filter(|k| old.lower.is_none_or(|l| l < *k) && old.upper.is_none_or(|u| *k < u))
                .collect();
            let next = before.len() as u32 + 7;
            let new = pieces(old.lower, old.upper, inner.clone(), next);
            prop_assert_eq!(new.len(), if inner.is_empty() { 0 } else { inner.len() + 1 });
            let mut after: Vec<Piece<i64>> = before.clone();
            if !new.is_empty() {
                after.remove(i);
                after.extend(new.iter().cloned());
            }
            for k in keys {
                let was = holder(&before, k);
                let now = holder(&after, k);
                // Still a partition: exactly one chunk holds every key.
                prop_assert_eq!(was.len(), 1);
                prop_assert_eq!(now.len(), 1);
                if was[0] as usize != i || new.is_empty() {
                    // Keys of other chunks keep their chunk (and its digests).
                    prop_assert_eq!(&now, &was);
                } else {
                    // A mark made with the old map names the split chunk: it stands for the
                    // piece that holds the key now.
                    prop_assert!(now[0] >= next);
                    prop_assert!(covering(&old, &after).contains(&now[0]));
                }
            }
            if !new.is_empty() {
                // The pieces are exactly what a mark on the split chunk stands for.
                let mut c = covering(&old, &after);
                c.sort_unstable();
                let want: Vec<u32> = new.iter().map(|p| p.chunk_no).collect();
                prop_assert_eq!(c, want);
            }
        }
    }

    /// A case-insensitive collation: the server's order, which Rust's `Ord` on the text is not.
    fn coll(s: &str) -> (String, String) {
        (s.to_lowercase(), String::new())
    }

    /// The server's answer to the walk's query over `rows` (unique under the collation):
    /// the `n`-th key above `last` (or `lower`) and strictly below `upper`.
    fn server_next(
        rows: &[String],
        lower: Option<&String>,
        upper: Option<&String>,
        last: Option<&String>,
        n: usize,
    ) -> Option<String> {
        let above = last.or(lower);
        let mut inside: Vec<&String> = rows
            .iter()
            .filter(|k| above.is_none_or(|l| coll(k) > coll(l)))
            .filter(|k| upper.is_none_or(|u| coll(k) < coll(u)))
            .collect();
        inside.sort_by_key(|k| coll(k));
        inside.get(n - 1).map(|k| (*k).clone())
    }

    proptest! {
        #[test]
        fn a_walk_in_the_servers_order_partitions_the_chunk(
            words in proptest::collection::btree_set("[a-zA-Z]{1,4}", 1..80),
            lo in any::<prop::sample::Index>(),
            up in any::<prop::sample::Index>(),
            bounded in (any::<bool>(), any::<bool>()),
            chunk_rows in 1usize..9,
        ) {
            // Keys unique under the collation (a primary key), in no particular Rust order.
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<String> = words.into_iter().filter(|w| seen.insert(w.to_lowercase())).collect();
            let mut sorted = rows.clone();
            sorted.sort_by_key(|k| coll(k));
            let (a, b) = (lo.index(sorted.len()), up.index(sorted.len()));
            let lower = bounded.0.then(|| sorted[a.min(b)].clone());
            let upper = bounded.1.then(|| sorted[a.max(b)].clone());
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let cuts = rt
                .block_on(walk(lower.clone(), |last: Option<String>| {
                    let next = server_next(&rows, lower.as_ref(), upper.as_ref(), last.as_ref(), chunk_rows);
                    async move { Ok::<_, ()>(next) }
                }))
                .expect("walk");
            let pieces = pieces(lower.clone(), upper.clone(), cuts.clone(), 100);
            // The rows of the chunk (lower, upper] in the server's order.
            let in_range = |k: &String, lo: Option<&String>, up: Option<&String>| {
                lo.is_none_or(|l| coll(k) > coll(l)) && up.is_none_or(|u| coll(k) <= coll(u))
            };
            let chunk: Vec<&String> = rows.iter().filter(|k| in_range(k, lower.as_ref(), upper.as_ref())).collect();
            if cuts.is_empty() {
                prop_assert!(pieces.is_empty());
                prop_assert!(chunk.len() < chunk_rows + usize::from(upper.is_some()));
            } else {
                // Every row of the chunk in exactly one piece; all but the last hold exactly
                // `chunk_rows` rows (the last one holds the rest: none when the chunk is open above
                // and its rows ended at a cut).
                for k in &chunk {
                    let n = pieces.iter().filter(|p| in_range(k, p.lower.as_ref(), p.upper.as_ref())).count();
                    prop_assert_eq!(n, 1);
                }
                for (i, p) in pieces.iter().enumerate() {
                    let n = chunk.iter().filter(|k| in_range(k, p.lower.as_ref(), p.upper.as_ref())).count();
                    if i + 1 < pieces.len() {
                        prop_assert_eq!(n, chunk_rows);
                    } else if upper.is_some() {
                        prop_assert!(n >= 1, "the upper bound's row is in the last piece");
                    }
                }
                prop_assert_eq!(pieces.first().map(|p| p.lower.clone()), Some(lower.clone()));
                prop_assert_eq!(pieces.last().map(|p| p.upper.clone()), Some(upper.clone()));
            }
        }
    }

    #[test]
    fn the_walk_stops_at_max_pieces() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let cuts = rt
            .block_on(walk(Some(0u64), |last: Option<u64>| async move {
                Ok::<_, ()>(last.map(|l| l + 1))
            }))
            .expect("walk");
        assert_eq!(cuts.len(), MAX_PIECES - 1);
    }

    #[test]
    fn pieces_chain_their_bounds() {
        assert!(pieces(Some(1), Some(9), Vec::new(), 5).is_empty());
        let p = pieces(Some(1), None, vec![4, 6], 5);
        let ranges: Vec<_> = p.iter().map(|p| (p.chunk_no, p.lower, p.upper)).collect();
        assert_eq!(
            ranges,
            vec![(5, Some(1), Some(4)), (6, Some(4), Some(6)), (7, Some(6), None)]
        );
        assert!(outgrown(2001, 1000));
        assert!(!outgrown(2000, 1000));
        assert!(outgrown(3, 0));
    }
}
