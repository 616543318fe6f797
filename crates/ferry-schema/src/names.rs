//! Maps source names to target names inside DDL text, by splicing identifier tokens.
//!
//! Knows which source objects (tables and views) exist, so that it can tell `db.table` from
//! `table.column` and `alias.column`. Rewrites object names after `CREATE … TABLE|VIEW|…`, the
//! table of a trigger, `REFERENCES` targets of foreign keys, and table references in bodies:
//! `db.t`, `db.t.col`, `t.col` and bare `t` in a table position (after FROM, JOIN, UPDATE, INTO,
//! TABLE). References to objects outside the selection are left as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use ferry_core::lexer::{name_chains, next_significant, prev_significant, NameChain, Token, TokenKind};
use ferry_core::sql::quote_ident;
use ferry_core::Selection;

use crate::catalog::ObjectDef;

/// A text edit: replace the byte range with the string.
pub type Edit = (Range<usize>, String);

/// Keywords after which a bare name is a table reference.
const TABLE_POSITION: &[&str] = &["FROM", "JOIN", "STRAIGHT_JOIN", "UPDATE", "INTO", "TABLE"];

/// Source objects and the selection's mapping.
pub struct NameMap<'a> {
    sel: &'a Selection,
    /// (source db, object) of every table and view read from the source.
    known: BTreeSet<(String, String)>,
}

impl<'a> NameMap<'a> {
    /// A map over the given source objects.
    pub fn new(sel: &'a Selection, known: impl IntoIterator<Item = (String, String)>) -> Self {
        NameMap {
            sel,
            known: known.into_iter().collect(),
        }
    }

    fn is_known(&self, db: &str, name: &str) -> bool {
        self.known.contains(&(db.to_string(), name.to_string()))
    }

    /// Target name of a source database.
    pub fn target_db(&self, db: &str) -> Option<String> {
        self.sel.target_db(db)
    }

    /// Target (db, name) of a known source object.
    pub fn map(&self, db: &str, name: &str) -> Option<(String, String)> {
        if !self.is_known(db, name) {
            return None;
        }
        self.sel.target_table(db, name)
    }

    /// Edits that rewrite table references in the tokens `from..` of a statement whose unqualified
    /// names resolve in `default_db`.
    pub fn body_edits(&self, sql: &str, tokens: &[Token], from: usize, default_db: &str) -> Vec<Edit> {
        let chains: Vec<NameChain> = name_chains(sql, tokens)
            .into_iter()
            .filter(|c| c.parts[0] >= from)
            .collect();
        let aliases = aliases(tokens, &chains, |c| {
            self.chain_is_table_ref(sql, tokens, c, default_db)
        });
        let mut edits = Vec::new();
        for c in &chains {
            let names = c.names(tokens);
            let n = names.len();
            if n == 0 {
                continue;
            }
            // db.t.col, db.t.*, or db.t when (db, t) is a known object.
            if n >= 3 || (n == 2 && (c.star || self.is_known(names[0], names[1]))) {
                if let Some((td, tt)) = self.map(names[0], names[1]) {
                    if td != names[0] {
                        edits.push((tokens[c.parts[0]].range(), quote_ident(&td)));
                    }
                    if tt != names[1] {
                        edits.push((tokens[c.parts[1]].range(), quote_ident(&tt)));
                    }
                }
                continue;
            }
            // t.col / t.* (a qualifier in the default db), or a bare t in a table position.
            let is_qualifier = n == 2 || c.star;
            if aliases.contains(names[0]) {
                continue;
            }
            if !is_qualifier && !in_table_position(sql, tokens, c.parts[0]) {
                continue;
            }
            if let Some((_, tt)) = self.map(default_db, names[0]) {
                // The target table lives in the default database's target (the statement runs
                // with it as the default database), so only the table name changes.
                if tt != names[0] {
                    edits.push((tokens[c.parts[0]].range(), quote_ident(&tt)));
                }
            }
        }
        edits
    }

    fn chain_is_table_ref(&self, sql: &str, tokens: &[Token], c: &NameChain, default_db: &str) -> bool {
        if c.star {
            return false;
        }
        let names = c.names(tokens);
        match names.len() {
            2 => self.is_known(names[0], names[1]),
            1 => in_table_position(sql, tokens, c.parts[0]) || self.is_known(default_db, names[0]),
            _ => false,
        }
    }
}

/// Names introduced as aliases: a quoted name right after a table reference, or any name after
/// `AS` that follows one.
fn aliases(
    tokens: &[Token],
    chains: &[NameChain],
    is_table_ref: impl Fn(&NameChain) -> bool,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in chains {
        if !is_table_ref(c) {
            continue;
        }
        let Some(&last) = c.parts.last() else { continue };
        let Some(mut nx) = next_significant(tokens, last + 1) else {
            continue;
        };
        let explicit = tokens[nx].is_keyword("AS");
        if explicit {
            match next_significant(tokens, nx + 1) {
                Some(i) => nx = i,
                None => continue,
            }
        }
        let t = &tokens[nx];
        if t.kind == TokenKind::QuotedIdent || (explicit && t.kind == TokenKind::Ident) {
            if let Some(name) = t.ident() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// True when the token at `i` follows FROM / JOIN / UPDATE / INTO / TABLE (possibly after `(`s).
pub fn in_table_position(sql: &str, tokens: &[Token], i: usize) -> bool {
    let mut p = prev_significant(tokens, i);
    while let Some(j) = p {
        if tokens[j].is_punct(sql, '(') {
            p = prev_significant(tokens, j);
            continue;
        }
        return TABLE_POSITION.iter().any(|k| tokens[j].is_keyword(k));
    }
    false
}

/// Index of the first significant token equal to the keyword `kw`, at or after `from`.
pub fn find_keyword(tokens: &[Token], from: usize, kw: &str) -> Option<usize> {
    (from..tokens.len()).find(|&i| tokens[i].is_keyword(kw))
}

/// The dotted name that starts at the significant token at or after `i`, skipping `IF NOT EXISTS`.
pub fn chain_at(sql: &str, tokens: &[Token], i: usize) -> Option<NameChain> {
    let mut j = next_significant(tokens, i)?;
    if tokens[j].is_keyword("IF") {
        // IF NOT EXISTS
        for _ in 0..2 {
            j = next_significant(tokens, j + 1)?;
        }
        j = next_significant(tokens, j + 1)?;
    }
    tokens[j].ident()?;
    let mut parts = vec![j];
    let mut last = j;
    while let Some(dot) = next_significant(tokens, last + 1) {
        if !tokens[dot].is_punct(sql, '.') {
            break;
        }
        match next_significant(tokens, dot + 1) {
            Some(nx) if tokens[nx].ident().is_some() => {
                parts.push(nx);
                last = nx;
            }
            _ => break,
        }
    }
    Some(NameChain { parts, star: false })
}

/// Locates the object name after the keyword `kw` (TABLE, VIEW, FUNCTION, …) and returns the chain
/// and an edit replacing it by the unqualified quoted `new_name`.
pub fn object_name_edit(sql: &str, tokens: &[Token], kw: &str, new_name: &str) -> Option<(NameChain, Edit)> {
    let k = find_keyword(tokens, 0, kw)?;
    let chain = chain_at(sql, tokens, k + 1)?;
    let edit = (chain.range(tokens), quote_ident(new_name));
    Some((chain, edit))
}

/// Index of the first token of a view's body (after `VIEW name [(cols)] AS`).
pub fn view_body_start(sql: &str, tokens: &[Token]) -> Option<usize> {
    let k = find_keyword(tokens, 0, "VIEW")?;
    let chain = chain_at(sql, tokens, k + 1)?;
    let last = *chain.parts.last()?;
    let as_kw = find_keyword(tokens, last + 1, "AS")?;
    Some(as_kw + 1)
}

/// Dependency order of views: each view after the views it reads; otherwise the catalog order.
/// Returns indexes into `views`. A cycle (impossible on a real server, but possible when the
/// lexer over-approximates) is broken in catalog order.
pub fn view_order(views: &[ObjectDef]) -> Vec<usize> {
    let index: BTreeMap<(&str, &str), usize> = views
        .iter()
        .enumerate()
        .map(|(i, v)| ((v.db.as_str(), v.name.as_str()), i))
        .collect();
    let mut done = vec![false; views.len()];
    let mut order = Vec::with_capacity(views.len());
    while order.len() < views.len() {
        let mut progressed = false;
        for (i, v) in views.iter().enumerate() {
            if done[i] {
                continue;
            }
            let ready = v.depends_on.iter().all(|(d, n)| {
                index
                    .get(&(d.as_str(), n.as_str()))
                    .is_none_or(|&j| done[j] || j == i)
            });
            if ready {
                done[i] = true;
                order.push(i);
                progressed = true;
            }
        }
        if !progressed {
            if let Some(i) = done.iter().position(|d| !d) {
                done[i] = true;
                order.push(i);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::lexer::{splice, tokenize};
    use ferry_core::selection::{DbSelection, ObjectSelection};

    fn sel() -> Selection {
        Selection {
            mapping: Default::default(),
            objects: ObjectSelection::Databases(vec![DbSelection {
                name: "s".into(),
                target: "s2".into(),
                tables: None,
                table_renames: [("a".to_string(), "a2".to_string())].into(),
            }]),
        }
    }

    fn rewrite(sql: &str) -> String {
        let s = sel();
        let m = NameMap::new(
            &s,
            [("s", "a"), ("s", "b"), ("s", "v")].map(|(d, t)| (d.to_string(), t.to_string())),
        );
        let toks = tokenize(sql);
        let start = view_body_start(sql, &toks).unwrap_or(0);
        splice(sql, &m.body_edits(sql, &toks, start, "s"))
    }

    #[test]
    fn mysql8_view_body() {
        let sql = "CREATE VIEW `v` AS select `s`.`a`.`id` AS `id`,`s`.`b`.`x` AS `x` from (`s`.`a` join `s`.`b` on((`s`.`a`.`id` = `s`.`b`.`id`)))";
        assert_eq!(
            rewrite(sql),
            "CREATE VIEW `v` AS select `s2`.`a2`.`id` AS `id`,`s2`.`b`.`x` AS `x` from (`s2`.`a2` join `s2`.`b` on((`s2`.`a2`.`id` = `s2`.`b`.`id`)))"
        );
    }

    #[test]
    fn mariadb_view_body() {
        let sql = "CREATE VIEW `v` AS select `a`.`id` AS `id`,`a`.`n` AS `a` from `a` where `a`.`id` in (select `v`.`id` from `s`.`v`)";
        assert_eq!(
            rewrite(sql),
            "CREATE VIEW `v` AS select `a2`.`id` AS `id`,`a2`.`n` AS `a` from `a2` where `a2`.`id` in (select `v`.`id` from `s2`.`v`)"
        );
        // An alias named like the renamed table keeps referring to the alias.
        let sql = "CREATE VIEW `v` AS select `a`.`id` AS `id` from `s`.`b` `a` join `s`.`a` `x`";
        assert_eq!(
            rewrite(sql),
            "CREATE VIEW `v` AS select `a`.`id` AS `id` from `s2`.`b` `a` join `s2`.`a2` `x`"
        );
        // Strings and columns that merely share the name are untouched.
        let sql = "CREATE VIEW `v` AS select 'a' AS `a`, count(`a`) from `b`";
        assert_eq!(rewrite(sql), sql);
    }

    #[test]
    fn orders_views() {
        let v = |n: &str, deps: &[&str]| ObjectDef {
            kind: crate::ObjectKind::View,
            db: "d".to_string(),
            name: n.to_string(),
            table: None,
            create_sql: String::new(),
            sql_mode: None,
            time_zone: None,
            depends_on: deps.iter().map(|x| ("d".to_string(), x.to_string())).collect(),
        };
        let views = vec![v("a", &["c"]), v("b", &[]), v("c", &["b"]), v("d", &["x"])];
        assert_eq!(view_order(&views), vec![1, 2, 3, 0]);
        let cyc = vec![v("a", &["b"]), v("b", &["a"])];
        assert_eq!(view_order(&cyc).len(), 2);
    }
}
