//! Digests by parts of a chunk ([`ferry_core::chunkmap::Parts`]), pure: the grouped digest query,
//! the key ranges of some parts, the stored form of a chunk's part digests, and their exact sums.
//!
//! A chunk digest is a row count and exact sums of per-row hashes ([`crate::digest`]), so the
//! digest of a chunk is the sum of its parts' digests. Continuous verification stores each side's
//! part digests of a chunk; when the replay touched only some parts since the chunk's last
//! digest, only those are digested again, and the chunk's digest is the sum of the fresh parts and
//! the stored others.

use ferry_core::chunkmap::Parts;
use ferry_core::sql::quote_ident;

use crate::digest::Digest;

/// The part index expression of a row, `(key - (lower + 1)) DIV step` (the key is inside the
/// chunk by the query's `WHERE`, so the value is a part index, [`Parts::part`]).
fn part_expr(key: &str, p: &Parts) -> String {
    format!("({} - ({})) DIV {}", quote_ident(key), p.lower() + 1, p.step())
}

/// One `SELECT head, COUNT(*), SUM(…)… FROM t WHERE key > low AND key <= high [AND (filter)]`
/// from `select` (`SELECT COUNT(*), SUM(…)… FROM t`, [`crate::digest::digest_select`]).
fn member(select: &str, head: &str, key: &str, low: i128, high: i128, filter: Option<&str>) -> String {
    let rest = select.strip_prefix("SELECT ").unwrap_or(select);
    let k = quote_ident(key);
    let filter = filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
    format!("SELECT {head}, {rest} WHERE {k} > {low} AND {k} <= {high}{filter}")
}

/// The digest of every part of a chunk in one grouped query: a row per part holding rows (part
/// index, then the digest). Bounds are literals (integers), so the text protocol runs it.
pub fn whole_sql(select: &str, key: &str, p: &Parts, filter: Option<&str>) -> String {
    format!(
        "{} GROUP BY 1 ORDER BY NULL",
        member(select, &part_expr(key, p), key, p.lower(), p.upper(), filter)
    )
}

/// The digests of the parts in `mask` (below `p.count()`): one `UNION ALL` member per part, each
/// a plain range read (no grouping, no per-row test of the other ranges). `None` when the mask
/// holds no part.
pub fn only_sql(select: &str, key: &str, p: &Parts, mask: u64, filter: Option<&str>) -> Option<String> {
    let members: Vec<String> = (0..p.count())
        .filter(|&i| mask & (1u64 << i) != 0)
        .map(|i| {
            let (low, high) = p.range(i);
            member(select, &i.to_string(), key, low, high, filter)
        })
        .collect();
    (!members.is_empty()).then(|| members.join(" UNION ALL "))
}

/// Adds two digest sums (`a/b…`, exact decimal integers); a missing component counts as 0.
/// `None` when one is not a sum.
pub fn add_sums(a: &str, b: &str) -> Option<String> {
    let parse = |s: &str| -> Option<Vec<u128>> {
        if s.is_empty() {
            return Some(Vec::new());
        }
        s.split('/').map(|x| x.parse::<u128>().ok()).collect()
    };
    let (x, y) = (parse(a)?, parse(b)?);
    let n = x.len().max(y.len());
    let out: Option<Vec<String>> = (0..n)
        .map(|i| {
            x.get(i)
                .copied()
                .unwrap_or(0)
                .checked_add(y.get(i).copied().unwrap_or(0))
                .map(|v| v.to_string())
        })
        .collect();
    Some(out?.join("/"))
}

/// The zero sum of a run whose sums have `width` components (`0/0` for the CRC pair).
pub fn zero_sum(width: usize) -> String {
    vec!["0"; width.max(1)].join("/")
}

/// The digest of a whole chunk from its parts' digests. `None` when a sum is malformed.
pub fn total(parts: &[Digest], width: usize) -> Option<Digest> {
    let mut rows = 0u64;
    let mut sum = zero_sum(width);
    for d in parts {
        rows = rows.checked_add(d.rows)?;
        sum = add_sums(&sum, &d.sum)?;
    }
    Some(Digest { rows, sum })
}

/// The stored form of a chunk's part digests: `rows:sum` per part, `;`-separated.
pub fn encode(parts: &[Digest]) -> String {
    parts
        .iter()
        .map(|d| format!("{}:{}", d.rows, d.sum))
        .collect::<Vec<_>>()
        .join(";")
}

/// [`encode`]'s inverse; `None` unless the text holds `count` well-formed parts.
pub fn decode(text: &str, count: u32) -> Option<Vec<Digest>> {
    let out: Option<Vec<Digest>> = text
        .split(';')
        .map(|p| {
            let (rows, sum) = p.split_once(':')?;
            add_sums("", sum)?;
            Some(Digest {
                rows: rows.parse().ok()?,
                sum: sum.to_string(),
            })
        })
        .collect();
    out.filter(|v| v.len() == count as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(lo: i128, hi: i128) -> Parts {
        Parts::of(Some(&[lo]), Some(&[hi])).expect("parts")
    }

    #[test]
    fn the_whole_chunk_is_grouped_by_part() {
        let p = parts(1000, 2000);
        assert_eq!(
            whole_sql("SELECT COUNT(*), SUM(x) FROM `d`.`t`", "id", &p, Some("v > 1")),
            "SELECT (`id` - (1001)) DIV 16, COUNT(*), SUM(x) FROM `d`.`t` \
             WHERE `id` > 1000 AND `id` <= 2000 AND (v > 1) GROUP BY 1 ORDER BY NULL"
        );
    }

    #[test]
    fn some_parts_are_one_member_each() {
        let p = parts(1000, 2000);
        let mask = (1 << 0) | (1 << 5) | (1 << 62);
        assert_eq!(
            only_sql("SELECT COUNT(*), SUM(x) FROM t", "id", &p, mask, None).as_deref(),
            Some(
                "SELECT 0, COUNT(*), SUM(x) FROM t WHERE `id` > 1000 AND `id` <= 1016 UNION ALL \
                 SELECT 5, COUNT(*), SUM(x) FROM t WHERE `id` > 1080 AND `id` <= 1096 UNION ALL \
                 SELECT 62, COUNT(*), SUM(x) FROM t WHERE `id` > 1992 AND `id` <= 2000"
            )
        );
        // Bits past the last part are ignored; no part, no query.
        assert_eq!(only_sql("SELECT COUNT(*) FROM t", "id", &p, 1 << 63, None), None);
    }

    #[test]
    fn sums_add_exactly_and_round_trip() {
        assert_eq!(add_sums("1/2", "3/4").as_deref(), Some("4/6"));
        assert_eq!(add_sums("", "7").as_deref(), Some("7"));
        assert_eq!(
            add_sums("340282366920938463463374607431768211455", "1"),
            None,
            "overflow is refused"
        );
        assert_eq!(add_sums("1/x", "1"), None);
        let d = vec![
            Digest {
                rows: 2,
                sum: "10/20".into(),
            },
            Digest {
                rows: 0,
                sum: "0/0".into(),
            },
            Digest {
                rows: 1,
                sum: "5/6".into(),
            },
        ];
        assert_eq!(
            total(&d, 2),
            Some(Digest {
                rows: 3,
                sum: "15/26".into()
            })
        );
        assert_eq!(
            total(&[], 2),
            Some(Digest {
                rows: 0,
                sum: "0/0".into()
            })
        );
        assert_eq!(decode(&encode(&d), 3), Some(d.clone()));
        assert_eq!(decode(&encode(&d), 4), None);
        assert_eq!(decode("1:2;x:3", 2), None);
    }
}
