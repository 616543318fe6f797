//! Replayed DDL through a table's column mapping (`Ferry.DbList` `column`): the statement is
//! rewritten to fit the mapped target table, by splicing tokens, or refused by name.
//!
//! `ALTER TABLE` is split into its top-level clauses (commas outside parentheses). Per clause:
//! - its subject column (`ADD [COLUMN]`, `DROP [COLUMN]`, `MODIFY`, `CHANGE`, `ALTER [COLUMN]`)
//!   is a column the mapping drops (any column `column` does not list, a new one too): the
//!   clause is left out; a statement left with no clause (or only `ALGORITHM=`/`LOCK=`) is not
//!   replayed at all;
//! - a `CHANGE` or `RENAME COLUMN` that renames a mapped column, or a dropped column into a
//!   name the mapping lists: refused (the mapping names columns by their source names);
//! - otherwise the subject, the column after `AFTER`, and every identifier inside parentheses
//!   (index column lists, `CHECK`, generated column expressions) are given their target names;
//!   one of those naming a dropped column is refused (an index or expression over it cannot
//!   exist on the target).
//!
//! `CREATE INDEX … ON t (…)` is one clause of the generic kind. `CREATE TABLE` of a
//! column-mapped table is refused (the target would get every column).

use std::ops::Range;

use ferry_core::lexer::{next_significant, splice, Token, TokenKind};
use ferry_core::mapping::TableMapping;
use ferry_core::sql::quote_ident;

/// What the mapping makes of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnDdl {
    /// Apply with these edits (byte ranges of the original text → replacement).
    Apply(Vec<(Range<usize>, String)>),
    /// Not replayed: it only changes columns the mapping drops.
    Skip(String),
}

/// A clause: the indexes of its significant tokens.
type Clause = Vec<usize>;

/// Splits the tokens from `from` into top-level comma-separated clauses.
fn clauses(sql: &str, toks: &[Token], from: usize) -> Vec<Clause> {
    let mut out = vec![Vec::new()];
    let mut depth = 0i32;
    let mut i = next_significant(toks, from);
    while let Some(j) = i {
        let t = &toks[j];
        if t.is_punct(sql, '(') {
            depth += 1;
        } else if t.is_punct(sql, ')') {
            depth -= 1;
        }
        if depth == 0 && t.is_punct(sql, ',') {
            out.push(Vec::new());
        } else if !(depth == 0 && t.is_punct(sql, ';')) {
            if let Some(last) = out.last_mut() {
                last.push(j);
            }
        }
        i = next_significant(toks, j + 1);
    }
    out.retain(|c| !c.is_empty());
    out
}

fn is_kw(toks: &[Token], i: Option<&usize>, kw: &str) -> bool {
    i.is_some_and(|&i| toks[i].is_keyword(kw))
}

fn is_name(t: &Token) -> bool {
    matches!(t.kind, TokenKind::Ident | TokenKind::QuotedIdent)
}

/// The positions (in the clause) of its subject column and, for `CHANGE`/`RENAME COLUMN`, its
/// new name.
fn subject(toks: &[Token], c: &Clause) -> (Option<usize>, Option<usize>) {
    let verb = c
        .first()
        .and_then(|&i| toks[i].ident())
        .map(str::to_ascii_uppercase)
        .unwrap_or_default();
    let mut p = 1;
    let skip_if = |p: &mut usize| {
        if is_kw(toks, c.get(*p), "IF") {
            *p += 1;
            if is_kw(toks, c.get(*p), "NOT") {
                *p += 1;
            }
            if is_kw(toks, c.get(*p), "EXISTS") {
                *p += 1;
            }
        }
    };
    let not_column = [
        "INDEX",
        "KEY",
        "UNIQUE",
        "PRIMARY",
        "CONSTRAINT",
        "FOREIGN",
        "FULLTEXT",
        "SPATIAL",
        "PARTITION",
        "CHECK",
        "PERIOD",
        "SYSTEM",
        "VECTOR",
    ];
    match verb.as_str() {
        "ADD" | "DROP" | "MODIFY" | "ALTER" | "CHANGE" => {
            let explicit = is_kw(toks, c.get(p), "COLUMN");
            if explicit {
                p += 1;
            }
            if !explicit && not_column.iter().any(|k| is_kw(toks, c.get(p), k)) {
                return (None, None);
            }
            skip_if(&mut p);
            let at = c.get(p).filter(|&&i| is_name(&toks[i])).map(|_| p);
            let new = (verb == "CHANGE" && at.is_some())
                .then_some(p + 1)
                .filter(|&q| c.get(q).is_some_and(|&i| is_name(&toks[i])));
            (at, new)
        }
        "RENAME" if is_kw(toks, c.get(1), "COLUMN") => {
            let at = c.get(2).filter(|&&i| is_name(&toks[i])).map(|_| 2);
            let new = is_kw(toks, c.get(3), "TO").then_some(4);
            (at, new)
        }
        _ => (None, None),
    }
}

/// Maps the column part of a table statement, from token `from` on (after the table's name).
/// `create_table`: the statement creates the table. The error says what cannot be replayed.
pub fn map_columns(
    sql: &str,
    toks: &[Token],
    from: usize,
    create_table: bool,
    m: &TableMapping,
) -> Result<ColumnDdl, String> {
    if m.columns.is_none() {
        return Ok(ColumnDdl::Apply(Vec::new()));
    }
    if create_table {
        return Err(
            "it creates a table whose Ferry.DbList column mapping selects columns: the target would get \
             every column; create it on the target yourself, or remove its column mapping"
                .into(),
        );
    }
    let name = |i: usize| toks[i].ident().unwrap_or("");
    let target = |n: &str| m.target_column(n).map(str::to_string);
    let all = clauses(sql, toks, from);
    if all.is_empty() {
        return Ok(ColumnDdl::Apply(Vec::new()));
    }
    let mut kept: Vec<String> = Vec::new();
    let mut left_out = Vec::new();
    let mut meaningful = false;
    for c in &all {
        let (at, new) = subject(toks, c);
        let mut edits = Vec::new();
        let subj = at.map(|p| name(c[p]).to_string());
        if let Some(s) = &subj {
            let new_name = new.and_then(|q| c.get(q)).map(|&i| name(i).to_string());
            match target(s) {
                None => {
                    if let Some(n) = new_name.as_deref().filter(|n| target(n).is_some()) {
                        return Err(format!(
                            "it renames {s}, a column the mapping drops, to {n}, a column it lists"
                        ));
                    }
                    left_out.push(s.clone());
                    continue;
                }
                Some(t) => {
                    if let Some(n) = &new_name {
                        if !n.eq_ignore_ascii_case(s) {
                            return Err(format!(
                                "it renames {s}, a column Ferry.DbList column maps (to {t}), to {n}: \
                                 the mapping names columns by their source names; stop the job, rename \
                                 the column in Ferry.DbList and run it again from a new full load"
                            ));
                        }
                        // CHANGE a a …: the same name on both sides
                        if let (Some(q), true) = (new, t != *s) {
                            edits.push((toks[c[q]].range(), quote_ident(&t)));
                        }
                    }
                    if t != *s {
                        if let Some(p) = at {
                            edits.push((toks[c[p]].range(), quote_ident(&t)));
                        }
                    }
                }
            }
        }
        let first = c
            .first()
            .map(|&i| name(i).to_ascii_uppercase())
            .unwrap_or_default();
        if !matches!(first.as_str(), "ALGORITHM" | "LOCK") {
            meaningful = true;
        }
        // identifiers inside parentheses, and after AFTER
        let mut depth = 0i32;
        for (k, &i) in c.iter().enumerate() {
            let t = &toks[i];
            if t.is_punct(sql, '(') {
                depth += 1;
                continue;
            }
            if t.is_punct(sql, ')') {
                depth -= 1;
                continue;
            }
            if Some(k) == at || Some(k) == new {
                continue;
            }
            let after = k > 0 && toks[c[k - 1]].is_keyword("AFTER");
            if !(is_name(t) && (depth > 0 || after)) {
                continue;
            }
            // a function name is followed by `(`; a column with an index prefix length by `(n)`
            let n = name(i);
            let is_call = c.get(k + 1).is_some_and(|&j| toks[j].is_punct(sql, '('))
                && !c.get(k + 2).is_some_and(|&j| toks[j].kind == TokenKind::Number);
            if is_call {
                continue;
            }
            match m.target_column(n) {
                None if t.kind == TokenKind::QuotedIdent || is_dropped_word(m, n) => {
                    return Err(format!(
                        "it uses {n}, a column the Ferry.DbList column mapping drops, in `{}`",
                        clause_text(sql, toks, c)
                    ));
                }
                Some(tn) if tn != n => edits.push((t.range(), quote_ident(tn))),
                _ => {}
            }
        }
        let range = toks[c[0]].start..toks[c[c.len() - 1]].end;
        let local: Vec<(Range<usize>, String)> = edits
            .into_iter()
            .map(|(r, s)| (r.start - range.start..r.end - range.start, s))
            .collect();
        kept.push(splice(&sql[range], &local));
    }
    if !meaningful {
        return Ok(ColumnDdl::Skip(format!(
            "it only changes columns the Ferry.DbList column mapping drops ({})",
            left_out.join(", ")
        )));
    }
    let span = toks[all[0][0]].start..{
        let last = &all[all.len() - 1];
        toks[last[last.len() - 1]].end
    };
    Ok(ColumnDdl::Apply(vec![(span, kept.join(", "))]))
}

/// True when a bare word inside parentheses names a column the mapping drops. Bare words are
/// also keywords and type names (`INT`, `DESC`, `NULL`): a word is taken for a dropped column
/// only when the mapping's source would have it, which the caller cannot know; Ferry errs on
/// the side of refusing when the word is not a common keyword.
fn is_dropped_word(m: &TableMapping, n: &str) -> bool {
    const WORDS: &[&str] = &[
        "ASC",
        "DESC",
        "NULL",
        "NOT",
        "AND",
        "OR",
        "IS",
        "IN",
        "TRUE",
        "FALSE",
        "LIKE",
        "BETWEEN",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "INT",
        "INTEGER",
        "BIGINT",
        "SMALLINT",
        "TINYINT",
        "MEDIUMINT",
        "UNSIGNED",
        "SIGNED",
        "CHAR",
        "VARCHAR",
        "BINARY",
        "DECIMAL",
        "DATE",
        "DATETIME",
        "TIME",
        "TIMESTAMP",
        "YEAR",
        "DOUBLE",
        "FLOAT",
        "JSON",
        "TEXT",
        "INTERVAL",
        "DAY",
        "HOUR",
        "MINUTE",
        "SECOND",
        "MONTH",
        "WEEK",
        "AS",
        "COLLATE",
        "DIV",
        "MOD",
        "XOR",
        "REGEXP",
        "RLIKE",
        "ESCAPE",
        "VIRTUAL",
        "STORED",
        "PERSISTENT",
        "USING",
        "BTREE",
        "HASH",
        "CHARACTER",
        "SET",
        "CHARSET",
    ];
    m.target_column(n).is_none() && !WORDS.iter().any(|w| w.eq_ignore_ascii_case(n))
}

fn clause_text(sql: &str, toks: &[Token], c: &Clause) -> String {
    let (Some(&a), Some(&b)) = (c.first(), c.last()) else {
        return String::new();
    };
    let s: String = sql[toks[a].start..toks[b].end].chars().take(80).collect();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::lexer::tokenize;
    use ferry_core::mapping::ColumnMap;

    /// Source (id, tenant_id, secret, note, qty); the mapping keeps id, tenant_id, qty and note
    /// as remark.
    fn mapping() -> TableMapping {
        let c = |a: &str, b: &str| ColumnMap {
            name: a.into(),
            target: b.into(),
        };
        TableMapping {
            columns: Some(vec![
                c("id", "id"),
                c("tenant_id", "tenant_id"),
                c("note", "remark"),
                c("qty", "qty"),
            ]),
            ..TableMapping::default()
        }
    }

    /// Maps an `ALTER TABLE t …` statement: the rewritten statement, or "skip: …"/"refused: …".
    fn alter(sql: &str) -> String {
        let toks = tokenize(sql);
        // the clauses start after `ALTER TABLE t`
        let from = toks
            .iter()
            .position(|t| t.ident() == Some("t"))
            .map(|i| i + 1)
            .unwrap_or(0);
        match map_columns(sql, &toks, from, false, &mapping()) {
            Ok(ColumnDdl::Apply(e)) => splice(sql, &e),
            Ok(ColumnDdl::Skip(r)) => format!("skip: {r}"),
            Err(e) => format!("refused: {e}"),
        }
    }

    #[test]
    fn clauses_on_kept_columns_get_their_target_names() {
        assert_eq!(
            alter("ALTER TABLE t MODIFY qty BIGINT NOT NULL DEFAULT 0"),
            "ALTER TABLE t MODIFY qty BIGINT NOT NULL DEFAULT 0"
        );
        assert_eq!(
            alter("ALTER TABLE t MODIFY COLUMN note VARCHAR(200) AFTER qty"),
            "ALTER TABLE t MODIFY COLUMN `remark` VARCHAR(200) AFTER qty"
        );
        assert_eq!(
            alter("ALTER TABLE t CHANGE note note TEXT, ADD INDEX k_note (note(10), tenant_id)"),
            "ALTER TABLE t CHANGE `remark` `remark` TEXT, ADD INDEX k_note (`remark`(10), tenant_id)"
        );
        assert_eq!(
            alter("ALTER TABLE t ALTER COLUMN note SET DEFAULT 'x'"),
            "ALTER TABLE t ALTER COLUMN `remark` SET DEFAULT 'x'"
        );
    }

    #[test]
    fn clauses_on_dropped_columns_are_left_out() {
        assert_eq!(
            alter("ALTER TABLE t MODIFY secret VARCHAR(80), MODIFY qty BIGINT"),
            "ALTER TABLE t MODIFY qty BIGINT"
        );
        assert_eq!(
            alter("ALTER TABLE t ADD COLUMN extra INT AFTER note, DROP COLUMN secret"),
            "skip: it only changes columns the Ferry.DbList column mapping drops (extra, secret)"
        );
        assert_eq!(
            alter("ALTER TABLE t DROP secret, ALGORITHM=INPLACE"),
            "skip: it only changes columns the Ferry.DbList column mapping drops (secret)"
        );
        assert_eq!(
            alter("ALTER TABLE t ADD IF NOT EXISTS extra INT, ADD qty2 INT"),
            "skip: it only changes columns the Ferry.DbList column mapping drops (extra, qty2)"
        );
    }

    #[test]
    fn what_cannot_fit_is_refused_by_name() {
        let r = alter("ALTER TABLE t CHANGE note memo TEXT");
        assert!(r.starts_with("refused") && r.contains("renames note"), "{r}");
        let r = alter("ALTER TABLE t RENAME COLUMN qty TO quantity");
        assert!(r.starts_with("refused") && r.contains("renames qty"), "{r}");
        let r = alter("ALTER TABLE t CHANGE secret qty INT");
        assert!(r.starts_with("refused") && r.contains("secret"), "{r}");
        let r = alter("ALTER TABLE t ADD INDEX k (tenant_id, secret)");
        assert!(r.starts_with("refused") && r.contains("secret"), "{r}");
        let r = alter("ALTER TABLE t MODIFY qty INT AFTER secret");
        assert!(r.starts_with("refused") && r.contains("secret"), "{r}");
        let toks = tokenize("CREATE TABLE t (id INT)");
        assert!(map_columns("CREATE TABLE t (id INT)", &toks, 3, true, &mapping()).is_err());
    }

    #[test]
    fn index_and_table_options_are_kept() {
        assert_eq!(
            alter("ALTER TABLE t ADD UNIQUE KEY u (qty), ENGINE=InnoDB"),
            "ALTER TABLE t ADD UNIQUE KEY u (qty), ENGINE=InnoDB"
        );
        assert_eq!(
            alter("ALTER TABLE t ADD COLUMN n2 INT AS (qty * 2) VIRTUAL"),
            "skip: it only changes columns the Ferry.DbList column mapping drops (n2)"
        );
    }

    proptest::proptest! {
        /// Any text: no panic.
        #[test]
        fn arbitrary_clauses_do_not_panic(s in "[ a-z(),`'=0-9]{0,60}") {
            let sql = format!("ALTER TABLE t {s}");
            let _ = alter(&sql);
        }
    }
}
