//! Splits a `SHOW CREATE TABLE` text: renames the table, and takes out the definitions that are
//! built after the data: secondary indexes (plain, FULLTEXT, SPATIAL; under
//! [`IndexTiming::AfterData`](crate::IndexTiming)) and foreign keys (always). Primary and unique
//! keys, CHECK constraints, columns, table options and partitions stay byte-identical.
//!
//! An index whose first column is the AUTO_INCREMENT column stays inline: the server refuses an
//! AUTO_INCREMENT column without a key.

use std::ops::Range;

use ferry_core::lexer::{next_significant, splice, tokenize, Token, TokenKind};
use ferry_core::sql::quote_ident;

use crate::names::{chain_at, find_keyword, Edit, NameMap};

/// A table definition split for the target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitTable {
    /// The CREATE TABLE statement for the target.
    pub create: String,
    /// Secondary index definitions taken out (not FULLTEXT), e.g. ``KEY `k` (`c`)``.
    pub indexes: Vec<String>,
    /// FULLTEXT index definitions taken out (InnoDB builds one at a time).
    pub fulltext: Vec<String>,
    /// Foreign key definitions, with `REFERENCES` mapped to target names.
    pub foreign_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Keep,
    Secondary,
    Fulltext,
    ForeignKey,
}

struct Element {
    /// Whole element, leading and trailing whitespace included.
    full: Range<usize>,
    /// From the first to the last non-whitespace token.
    core: Range<usize>,
    /// Token indexes of the element.
    toks: Range<usize>,
    class: Class,
}

/// Where the table is and what it becomes.
pub struct TableNames<'a> {
    pub source_db: &'a str,
    pub target_table: &'a str,
    pub names: &'a NameMap<'a>,
}

/// Splits `sql` (a CREATE TABLE text). `strip_indexes`: take out secondary indexes too.
pub fn split_create_table(sql: &str, t: &TableNames<'_>, strip_indexes: bool) -> Result<SplitTable, String> {
    let tokens = tokenize(sql);
    let kw = find_keyword(&tokens, 0, "TABLE").ok_or("no TABLE keyword")?;
    let name = chain_at(sql, &tokens, kw + 1).ok_or("no table name after TABLE")?;
    let mut edits: Vec<Edit> = Vec::new();
    let name_names = name.names(&tokens);
    if name.parts.len() > 1 || name_names.first() != Some(&t.target_table) {
        edits.push((name.range(&tokens), quote_ident(t.target_table)));
    }
    let last = *name.parts.last().ok_or("empty table name")?;
    let open = next_significant(&tokens, last + 1).ok_or("no column list")?;
    if !tokens[open].is_punct(sql, '(') {
        return Err("no column list after the table name (CREATE TABLE … LIKE/SELECT?)".into());
    }
    let (elements, close) = elements(sql, &tokens, open)?;

    // The AUTO_INCREMENT column needs a key: find it.
    let mut auto_col: Option<String> = None;
    for e in &elements {
        let first = next_significant(&tokens, e.toks.start).filter(|&i| i < e.toks.end);
        if let Some(f) = first {
            if tokens[f].kind == TokenKind::QuotedIdent
                && tokens[e.toks.clone()]
                    .iter()
                    .any(|x| x.is_keyword("AUTO_INCREMENT"))
            {
                auto_col = tokens[f].ident().map(str::to_string);
            }
        }
    }

    let mut out = SplitTable::default();
    let mut kept: Vec<&Element> = Vec::new();
    for e in &elements {
        let class = match e.class {
            Class::Secondary | Class::Fulltext if !strip_indexes => Class::Keep,
            Class::Secondary | Class::Fulltext
                if first_key_column(sql, &tokens, e) == auto_col && auto_col.is_some() =>
            {
                Class::Keep
            }
            c => c,
        };
        match class {
            Class::Keep => kept.push(e),
            Class::Secondary => out.indexes.push(sql[e.core.clone()].to_string()),
            Class::Fulltext => out.fulltext.push(sql[e.core.clone()].to_string()),
            Class::ForeignKey => {
                let fk_edits = references_edits(sql, &tokens, e, t);
                out.foreign_keys.push(sub_splice(sql, e.core.clone(), &fk_edits));
            }
        }
    }
    if kept.len() < elements.len() {
        if kept.is_empty() {
            return Err("the table would have no columns left".into());
        }
        let mut inner = kept
            .iter()
            .map(|e| &sql[e.full.start..e.core.end])
            .collect::<Vec<_>>()
            .join(",");
        if let Some(last) = elements.last() {
            inner.push_str(&sql[last.core.end..last.full.end]);
        }
        edits.push((tokens[open].end..tokens[close].start, inner));
    }
    out.create = splice(sql, &edits);
    Ok(out)
}

/// Applies edits (absolute offsets) inside `range` and returns that part of the text.
fn sub_splice(sql: &str, range: Range<usize>, edits: &[Edit]) -> String {
    let shifted: Vec<Edit> = edits
        .iter()
        .filter(|(r, _)| r.start >= range.start && r.end <= range.end)
        .map(|(r, s)| (r.start - range.start..r.end - range.start, s.clone()))
        .collect();
    splice(&sql[range], &shifted)
}

/// The elements of the column list that starts at token `open`, and the index of its `)`.
fn elements(sql: &str, tokens: &[Token], open: usize) -> Result<(Vec<Element>, usize), String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut close = None;
    for (i, t) in tokens.iter().enumerate().skip(open + 1) {
        if t.is_punct(sql, '(') {
            depth += 1;
        } else if t.is_punct(sql, ')') {
            if depth == 0 {
                out.push(element(tokens, start..i)?);
                close = Some(i);
                break;
            }
            depth -= 1;
        } else if depth == 0 && t.is_punct(sql, ',') {
            out.push(element(tokens, start..i)?);
            start = i + 1;
        }
    }
    let close = close.ok_or("unbalanced parentheses in the column list")?;
    Ok((out, close))
}

fn element(tokens: &[Token], toks: Range<usize>) -> Result<Element, String> {
    let slice = &tokens[toks.clone()];
    let opens = slice.iter().filter(|t| t.kind == TokenKind::VersionOpen).count();
    let closes = slice.iter().filter(|t| t.kind == TokenKind::VersionClose).count();
    if opens != closes {
        return Err("a version comment spans two definitions of the column list".into());
    }
    let non_ws: Vec<usize> = toks
        .clone()
        .filter(|&i| tokens[i].kind != TokenKind::Whitespace)
        .collect();
    let (Some(&first), Some(&last)) = (non_ws.first(), non_ws.last()) else {
        return Err("empty definition in the column list".into());
    };
    let full = match (slice.first(), slice.last()) {
        (Some(a), Some(b)) => a.start..b.end,
        _ => return Err("empty definition in the column list".into()),
    };
    let sig: Vec<&Token> = slice.iter().filter(|t| !t.is_trivia()).take(3).collect();
    let kw = |i: usize, k: &str| sig.get(i).is_some_and(|t| t.is_keyword(k));
    let class = if kw(0, "KEY") || kw(0, "INDEX") || kw(0, "SPATIAL") {
        Class::Secondary
    } else if kw(0, "FULLTEXT") {
        Class::Fulltext
    } else if kw(0, "FOREIGN") || (kw(0, "CONSTRAINT") && (kw(1, "FOREIGN") || kw(2, "FOREIGN"))) {
        Class::ForeignKey
    } else {
        Class::Keep
    };
    Ok(Element {
        full,
        core: tokens[first].start..tokens[last].end,
        toks,
        class,
    })
}

/// The first column of an index definition (the first name after its `(`).
fn first_key_column(sql: &str, tokens: &[Token], e: &Element) -> Option<String> {
    let open = e.toks.clone().find(|&i| tokens[i].is_punct(sql, '('))?;
    let c = next_significant(tokens, open + 1)?;
    tokens[c].ident().map(str::to_string)
}

/// Maps the table after `REFERENCES` to its target name.
fn references_edits(sql: &str, tokens: &[Token], e: &Element, t: &TableNames<'_>) -> Vec<Edit> {
    let mut out = Vec::new();
    let Some(r) = e.toks.clone().find(|&i| tokens[i].is_keyword("REFERENCES")) else {
        return out;
    };
    let Some(chain) = chain_at(sql, tokens, r + 1) else {
        return out;
    };
    let names = chain.names(tokens);
    match names.len() {
        1 => {
            if let Some((td, tt)) = t.names.map(t.source_db, names[0]) {
                let same_db = t.names.target_db(t.source_db).as_deref() == Some(td.as_str());
                let text = if same_db {
                    quote_ident(&tt)
                } else {
                    format!("{}.{}", quote_ident(&td), quote_ident(&tt))
                };
                if text != tokens[chain.parts[0]].text(sql) && (tt != names[0] || !same_db) {
                    out.push((chain.range(tokens), text));
                }
            }
        }
        2 => {
            if let Some((td, tt)) = t.names.map(names[0], names[1]) {
                if td != names[0] {
                    out.push((tokens[chain.parts[0]].range(), quote_ident(&td)));
                }
                if tt != names[1] {
                    out.push((tokens[chain.parts[1]].range(), quote_ident(&tt)));
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::selection::{DbSelection, ObjectSelection};
    use ferry_core::Selection;

    const SRC: &str = "CREATE TABLE `child` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `pid` int(11) DEFAULT NULL,\n  `key` text COMMENT 'KEY, INDEX (x)',\n  `o` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`o`),\n  KEY `fk1` (`pid`) COMMENT 'x, y',\n  FULLTEXT KEY `ft` (`key`),\n  KEY `k2` (`o`,`pid`) /*!80000 INVISIBLE */,\n  CONSTRAINT `fk1` FOREIGN KEY (`pid`) REFERENCES `parent` (`id`) ON DELETE CASCADE,\n  CONSTRAINT `fk2` FOREIGN KEY (`o`) REFERENCES `other`.`t` (`id`),\n  CONSTRAINT `chk` CHECK (`o` > 0)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='a''b'";

    fn sel() -> Selection {
        Selection {
            mapping: Default::default(),
            objects: ObjectSelection::Databases(vec![
                DbSelection {
                    name: "s".into(),
                    target: "s2".into(),
                    tables: None,
                    table_renames: [
                        ("parent".to_string(), "parent2".to_string()),
                        ("child".to_string(), "kid".to_string()),
                    ]
                    .into(),
                },
                DbSelection {
                    name: "other".into(),
                    target: "other".into(),
                    tables: None,
                    table_renames: Default::default(),
                },
            ]),
        }
    }

    #[test]
    fn splits_after_data() {
        let s = sel();
        let names = NameMap::new(
            &s,
            [("s", "parent"), ("s", "child"), ("other", "t")].map(|(a, b)| (a.to_string(), b.to_string())),
        );
        let t = TableNames {
            source_db: "s",
            target_table: "kid",
            names: &names,
        };
        let out = split_create_table(SRC, &t, true).unwrap();
        assert_eq!(
            out.create,
            "CREATE TABLE `kid` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `pid` int(11) DEFAULT NULL,\n  `key` text COMMENT 'KEY, INDEX (x)',\n  `o` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`o`),\n  CONSTRAINT `chk` CHECK (`o` > 0)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='a''b'"
        );
        assert_eq!(
            out.indexes,
            vec![
                "KEY `fk1` (`pid`) COMMENT 'x, y'",
                "KEY `k2` (`o`,`pid`) /*!80000 INVISIBLE */"
            ]
        );
        assert_eq!(out.fulltext, vec!["FULLTEXT KEY `ft` (`key`)"]);
        assert_eq!(
            out.foreign_keys,
            vec![
                "CONSTRAINT `fk1` FOREIGN KEY (`pid`) REFERENCES `parent2` (`id`) ON DELETE CASCADE",
                "CONSTRAINT `fk2` FOREIGN KEY (`o`) REFERENCES `other`.`t` (`id`)"
            ]
        );
        let inline = split_create_table(SRC, &t, false).unwrap();
        assert!(inline.indexes.is_empty() && inline.fulltext.is_empty());
        assert_eq!(inline.foreign_keys.len(), 2);
        assert!(inline.create.contains("  FULLTEXT KEY `ft` (`key`),\n  KEY `k2`"));
        assert!(inline
            .create
            .contains("  KEY `k2` (`o`,`pid`) /*!80000 INVISIBLE */,\n  CONSTRAINT `chk`"));
    }

    #[test]
    fn keeps_auto_increment_key_and_last_element() {
        let s = Selection::whole_instance();
        let names = NameMap::new(&s, []);
        let t = TableNames {
            source_db: "s",
            target_table: "t",
            names: &names,
        };
        let sql = "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `b` int,\n  KEY `id` (`id`),\n  KEY `b` (`b`)\n) ENGINE=InnoDB";
        let out = split_create_table(sql, &t, true).unwrap();
        assert_eq!(out.create, "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `b` int,\n  KEY `id` (`id`)\n) ENGINE=InnoDB");
        assert_eq!(out.indexes, vec!["KEY `b` (`b`)"]);
        assert!(split_create_table("CREATE TABLE `t` LIKE `u`", &t, true).is_err());
    }
}
