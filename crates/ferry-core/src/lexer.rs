//! A small hand-written MySQL/MariaDB lexer with byte offsets, and the splice helpers that rename
//! objects in DDL without re-printing it.
//!
//! Every token covers a `start..end` byte range of the original text; the tokens of any input
//! concatenate back to that input exactly. Rewriting is done by replacing ranges ([`splice`]):
//! whatever is not replaced stays byte-identical (comments, version comments, string escapes,
//! spacing). Version comments (`/*!50100 … */`, `/*M!100301 … */`) are lexed as an opener marker,
//! the tokens inside, and a closer marker, so identifiers inside them are seen and can be renamed.
//!
//! The lexer assumes the server's default quoting (backticks for identifiers, `'` and `"` for
//! strings, backslash escapes on), which is what `SHOW CREATE …` prints when `ANSI_QUOTES` is off.

use std::ops::Range;

use crate::sql::quote_ident;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: keyword or unquoted identifier (`CREATE`, `t1`, `utf8mb4_bin`, `_utf8mb4`).
    Ident,
    /// A backtick-quoted identifier (`` `a``b` `` is the name ``a`b``).
    QuotedIdent,
    /// A `'…'` or `"…"` string literal.
    String,
    /// A number (`12`, `1.5`, `1e-3`, `0x1F`).
    Number,
    /// One punctuation character (`.`, `,`, `(`, `)`, `;`, `=`, `@`, …).
    Punct,
    /// `-- …`, `# …` or `/* … */` (including optimizer hints `/*+ … */`).
    Comment,
    /// The opener of a version comment: `/*!50100 ` or `/*M!100301 ` (digits optional).
    VersionOpen,
    /// The `*/` that closes a version comment.
    VersionClose,
    /// Spaces, tabs and line breaks.
    Whitespace,
}

/// One token: its kind, its byte range in the original text, and for identifiers the unquoted
/// name (for strings, the unescaped value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
    /// Identifiers: the name without quotes; strings: the value without quotes and escapes.
    pub value: Option<String>,
}

impl Token {
    /// The byte range of the token.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The original text of the token.
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        sql.get(self.start..self.end).unwrap_or("")
    }

    /// The identifier's name (bare or quoted), `None` for other tokens.
    pub fn ident(&self) -> Option<&str> {
        match self.kind {
            TokenKind::Ident | TokenKind::QuotedIdent => self.value.as_deref(),
            _ => None,
        }
    }

    /// True for a bare word equal (ASCII case-insensitively) to `kw`.
    pub fn is_keyword(&self, kw: &str) -> bool {
        self.kind == TokenKind::Ident && self.value.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(kw))
    }

    /// True for the punctuation character `c`.
    pub fn is_punct(&self, sql: &str, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text(sql).starts_with(c)
    }

    /// True for tokens that carry no meaning: whitespace, comments and version-comment markers.
    pub fn is_trivia(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Whitespace | TokenKind::Comment | TokenKind::VersionOpen | TokenKind::VersionClose
        )
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Splits `sql` into tokens. Never panics; unterminated strings, identifiers and comments run to
/// the end of the input. The tokens always cover the input exactly, in order.
/// How the server reads the text: the two `sql_mode` flags that change tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LexMode {
    /// `ANSI_QUOTES`: `"…"` quotes an identifier, not a string.
    pub ansi_quotes: bool,
    /// `NO_BACKSLASH_ESCAPES`: a backslash in a string is an ordinary character.
    pub no_backslash_escapes: bool,
}

/// Tokens of `sql` under the default `sql_mode` (see [`tokenize_mode`]).
pub fn tokenize(sql: &str) -> Vec<Token> {
    tokenize_mode(sql, LexMode::default())
}

/// Tokens of `sql` as a server with these `sql_mode` flags reads it.
pub fn tokenize_mode(sql: &str, mode: LexMode) -> Vec<Token> {
    let b = sql.as_bytes();
    let n = b.len();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_version = false;
    while i < n {
        let start = i;
        let c = b[i];
        let (kind, value) = if is_space(c) {
            while i < n && is_space(b[i]) {
                i += 1;
            }
            (TokenKind::Whitespace, None)
        } else if c == b'#'
            || (c == b'-' && i + 1 < n && b[i + 1] == b'-' && (i + 2 >= n || b[i + 2] <= b' '))
        {
            while i < n && b[i] != b'\n' {
                i += 1;
            }
            (TokenKind::Comment, None)
        } else if c == b'*' && in_version && i + 1 < n && b[i + 1] == b'/' {
            i += 2;
            in_version = false;
            (TokenKind::VersionClose, None)
        } else if c == b'/' && i + 1 < n && b[i + 1] == b'*' {
            let bang = if i + 2 < n && b[i + 2] == b'!' {
                Some(3)
            } else if i + 3 < n && b[i + 2] == b'M' && b[i + 3] == b'!' {
                Some(4)
            } else {
                None
            };
            match bang {
                Some(skip) if !in_version => {
                    i += skip;
                    while i < n && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    in_version = true;
                    (TokenKind::VersionOpen, None)
                }
                _ => {
                    i += 2;
                    while i < n && !(b[i] == b'*' && i + 1 < n && b[i + 1] == b'/') {
                        i += 1;
                    }
                    i = (i + 2).min(n);
                    (TokenKind::Comment, None)
                }
            }
        } else if c == b'`' || (c == b'"' && mode.ansi_quotes) {
            let q = c;
            i += 1;
            let mut name = Vec::new();
            while i < n {
                if b[i] == q {
                    if i + 1 < n && b[i + 1] == q {
                        name.push(q);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                name.push(b[i]);
                i += 1;
            }
            (
                TokenKind::QuotedIdent,
                Some(String::from_utf8_lossy(&name).into_owned()),
            )
        } else if c == b'\'' || c == b'"' {
            let q = c;
            i += 1;
            let mut val = Vec::new();
            while i < n {
                let d = b[i];
                if d == b'\\' && i + 1 < n && !mode.no_backslash_escapes {
                    let e = b[i + 1];
                    match e {
                        b'n' => val.push(b'\n'),
                        b't' => val.push(b'\t'),
                        b'r' => val.push(b'\r'),
                        b'0' => val.push(0),
                        b'b' => val.push(8),
                        b'Z' => val.push(26),
                        // `\%` and `\_` keep the backslash (LIKE patterns), as the server does.
                        b'%' | b'_' => val.extend_from_slice(&[b'\\', e]),
                        _ => val.push(e),
                    }
                    i += 2;
                    continue;
                }
                if d == q {
                    if i + 1 < n && b[i + 1] == q {
                        val.push(q);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                val.push(d);
                i += 1;
            }
            (
                TokenKind::String,
                Some(String::from_utf8_lossy(&val).into_owned()),
            )
        } else if is_word_byte(c) {
            while i < n && is_word_byte(b[i]) {
                i += 1;
            }
            let word = &b[start..i];
            let all_digits = word.iter().all(u8::is_ascii_digit);
            if all_digits {
                // Decimal part and exponent.
                if i + 1 < n && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                    i += 1;
                    while i < n && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i + 1 < n && (b[i] == b'e' || b[i] == b'E') {
                    let mut j = i + 1;
                    if j < n && (b[j] == b'+' || b[j] == b'-') {
                        j += 1;
                    }
                    if j < n && b[j].is_ascii_digit() {
                        while j < n && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        i = j;
                    }
                }
                (TokenKind::Number, None)
            } else if is_number_word(word) {
                (TokenKind::Number, None)
            } else {
                (TokenKind::Ident, Some(String::from_utf8_lossy(word).into_owned()))
            }
        } else {
            // ASCII punctuation (non-ASCII bytes are word bytes).
            i += 1;
            (TokenKind::Punct, None)
        };
        out.push(Token {
            kind,
            start,
            end: i,
            value,
        });
    }
    out
}

/// `0x1F`, `0b101`, `1e10`, `1.5e3` style words that are numbers, not identifiers.
fn is_number_word(w: &[u8]) -> bool {
    if w.len() > 2 && w[0] == b'0' && (w[1] == b'x' || w[1] == b'X') {
        return w[2..].iter().all(u8::is_ascii_hexdigit);
    }
    if w.len() > 2 && w[0] == b'0' && (w[1] == b'b' || w[1] == b'B') {
        return w[2..].iter().all(|c| *c == b'0' || *c == b'1');
    }
    if let Some(p) = w.iter().position(|c| *c == b'e' || *c == b'E') {
        return p > 0
            && w[..p].iter().all(u8::is_ascii_digit)
            && p + 1 < w.len()
            && w[p + 1..].iter().all(u8::is_ascii_digit);
    }
    false
}

/// Replaces byte ranges of `sql`; everything outside the ranges stays byte-identical. Edits may
/// come in any order; an edit that overlaps an earlier one (in position order) or falls outside
/// the text or off a character boundary is ignored.
pub fn splice(sql: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut sorted: Vec<&(Range<usize>, String)> = edits.iter().collect();
    sorted.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(sql.len() + 16);
    let mut pos = 0;
    for (r, text) in sorted {
        if r.start < pos || r.end < r.start || r.end > sql.len() {
            continue;
        }
        let (Some(keep), true) = (sql.get(pos..r.start), sql.is_char_boundary(r.end)) else {
            continue;
        };
        out.push_str(keep);
        out.push_str(text);
        pos = r.end;
    }
    out.push_str(sql.get(pos..).unwrap_or(""));
    out
}

/// A dotted name: one to three identifiers separated by `.` (`t`, `db.t`, `db.t.col`), any
/// quoting, optionally followed by `.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameChain {
    /// Index into the token list of each identifier.
    pub parts: Vec<usize>,
    /// True when the chain ends in `.*` (`t.*`, `db.t.*`).
    pub star: bool,
}

impl NameChain {
    /// The byte range from the first identifier to the last (the `.*` excluded).
    pub fn range(&self, tokens: &[Token]) -> Range<usize> {
        match (self.parts.first(), self.parts.last()) {
            (Some(&a), Some(&b)) => tokens[a].start..tokens[b].end,
            _ => 0..0,
        }
    }

    /// The unquoted names of the parts.
    pub fn names<'t>(&self, tokens: &'t [Token]) -> Vec<&'t str> {
        self.parts.iter().filter_map(|&i| tokens[i].ident()).collect()
    }
}

/// Index of the next token at or after `i` that is not trivia.
pub fn next_significant(tokens: &[Token], mut i: usize) -> Option<usize> {
    while i < tokens.len() {
        if !tokens[i].is_trivia() {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Index of the last token before `i` that is not trivia.
pub fn prev_significant(tokens: &[Token], i: usize) -> Option<usize> {
    let mut j = i.min(tokens.len());
    while j > 0 {
        j -= 1;
        if !tokens[j].is_trivia() {
            return Some(j);
        }
    }
    None
}

/// Every dotted name in the token list, in order. Whitespace and comments may sit around the
/// dots. Identifiers are never taken from strings or comments (those are single tokens).
pub fn name_chains(sql: &str, tokens: &[Token]) -> Vec<NameChain> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].ident().is_none() {
            i += 1;
            continue;
        }
        // A name that follows a dot belongs to a chain we already saw (or to `x.5`-like text).
        if let Some(p) = prev_significant(tokens, i) {
            if tokens[p].is_punct(sql, '.') {
                i += 1;
                continue;
            }
        }
        let mut parts = vec![i];
        let mut star = false;
        let mut last = i;
        while let Some(dot) = next_significant(tokens, last + 1) {
            if !tokens[dot].is_punct(sql, '.') {
                break;
            }
            let Some(nx) = next_significant(tokens, dot + 1) else {
                break;
            };
            if tokens[nx].ident().is_some() {
                parts.push(nx);
                last = nx;
            } else {
                if tokens[nx].is_punct(sql, '*') {
                    star = true;
                    last = nx;
                }
                break;
            }
        }
        i = last + 1;
        out.push(NameChain { parts, star });
    }
    out
}

/// Renames `db.table` references: every dotted name of two or more parts (`db.t`, `db.t.col`,
/// `db.t.*`) is offered to `map(db, table)`; when it answers `Some((new_db, new_table))`, the two
/// identifiers are replaced by backtick-quoted names (only the ones that change). Everything else,
/// strings and comments included, is kept byte for byte. The caller decides what a two-part name
/// means: `t.col` is offered too, and `map` should answer `None` for names it does not know.
pub fn rename_qualified(sql: &str, map: impl Fn(&str, &str) -> Option<(String, String)>) -> String {
    let tokens = tokenize(sql);
    let mut edits = Vec::new();
    for chain in name_chains(sql, &tokens) {
        if chain.parts.len() < 2 {
            continue;
        }
        let (d, t) = (&tokens[chain.parts[0]], &tokens[chain.parts[1]]);
        let (Some(db), Some(table)) = (d.ident(), t.ident()) else {
            continue;
        };
        if let Some((nd, nt)) = map(db, table) {
            if nd != db {
                edits.push((d.range(), quote_ident(&nd)));
            }
            if nt != table {
                edits.push((t.range(), quote_ident(&nt)));
            }
        }
    }
    splice(sql, &edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(sql: &str) -> Vec<Token> {
        let toks = tokenize(sql);
        let joined: String = toks.iter().map(|t| t.text(sql)).collect();
        assert_eq!(joined, sql);
        let mut pos = 0;
        for t in &toks {
            assert_eq!(t.start, pos);
            assert!(t.end > t.start);
            pos = t.end;
        }
        toks
    }

    const MYSQL8_TABLE: &str = "CREATE TABLE `orders` (\n  `id` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `note` varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci DEFAULT 'it''s \\\\ \"x\"' COMMENT 'a''b',\n  `total` decimal(10,2) GENERATED ALWAYS AS ((`qty` * `price`)) STORED,\n  `j` json DEFAULT (json_object()),\n  PRIMARY KEY (`id`),\n  KEY `k` (`note`) /*!80000 INVISIBLE */,\n  CONSTRAINT `fk` FOREIGN KEY (`cid`) REFERENCES `shop`.`customers` (`id`) ON DELETE CASCADE,\n  CONSTRAINT `chk` CHECK ((`total` >= 0))\n) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci ROW_FORMAT=DYNAMIC COMMENT='tab''le'\n/*!50100 PARTITION BY RANGE (`id`)\n(PARTITION p0 VALUES LESS THAN (1000) ENGINE = InnoDB,\n PARTITION p1 VALUES LESS THAN MAXVALUE ENGINE = InnoDB) */";

    const MARIADB_TABLE: &str = "CREATE TABLE `p``q` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `select` varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci DEFAULT NULL COMMENT 'it''s',\n  `c` int(11) GENERATED ALWAYS AS (`b` + 1) VIRTUAL,\n  `z` blob /*M!100301 COMPRESSED*/ DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  CONSTRAINT `chk` CHECK (`b` > 0)\n) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci ROW_FORMAT=DYNAMIC COMMENT='tab''le'\n PARTITION BY HASH (`id`)\nPARTITIONS 2";

    const OTHERS: &[&str] = &[
        "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select `shop`.`t`.`id` AS `id`,`shop`.`t`.`n` AS `n` from `shop`.`t` where (`shop`.`t`.`id` > 0.5e3)",
        "CREATE DEFINER=`ferry`@`%` TRIGGER tr BEFORE INSERT ON parent2 FOR EACH ROW SET NEW.id = NEW.id + 1 -- done\n",
        "CREATE DEFINER=`ferry`@`%` FUNCTION `f`(x int) RETURNS int(11)\n    DETERMINISTIC\nRETURN x+1 # trailing",
        "CREATE DEFINER=`ferry`@`%` EVENT `ev` ON SCHEDULE EVERY 1 HOUR STARTS '2026-11-25 09:23:27' ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM parent2 WHERE id<0x1F",
        "CREATE DATABASE `fs_scratch` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */",
        "CREATE PROCEDURE p() BEGIN /* a ' comment */ SELECT 'x\\'y', @a := @@session.sql_mode, _utf8mb4'é', N'ü', X'0A'; END",
        "SELECT 1 -- comment without newline",
        "-- \nSELECT--1",
        "unterminated 'string",
        "unterminated `ident",
        "unterminated /* comment",
        "/*!50100 unterminated version",
        "'\\",
        "é`",
        "",
    ];

    #[test]
    fn round_trips() {
        round_trip(MYSQL8_TABLE);
        round_trip(MARIADB_TABLE);
        for s in OTHERS {
            round_trip(s);
        }
        // Every prefix of real DDL, cut at char boundaries, also round-trips.
        for s in [MYSQL8_TABLE, MARIADB_TABLE] {
            for (i, _) in s.char_indices() {
                round_trip(&s[..i]);
            }
        }
    }

    #[test]
    fn token_values() {
        let sql = MARIADB_TABLE;
        let toks = round_trip(sql);
        let idents: Vec<&str> = toks
            .iter()
            .filter(|t| t.kind == TokenKind::QuotedIdent)
            .filter_map(|t| t.ident())
            .collect();
        assert_eq!(idents[0], "p`q");
        assert!(idents.contains(&"select"));
        let strings: Vec<&str> = toks
            .iter()
            .filter(|t| t.kind == TokenKind::String)
            .filter_map(|t| t.value.as_deref())
            .collect();
        assert_eq!(strings, vec!["it's", "tab'le"]);
        assert!(toks
            .iter()
            .any(|t| t.kind == TokenKind::VersionOpen && t.text(sql) == "/*M!100301"));
        assert!(toks.iter().any(|t| t.kind == TokenKind::VersionClose));
        assert!(toks.iter().any(|t| t.is_keyword("compressed")));
        let t = tokenize("SELECT--1");
        assert!(t.iter().all(|t| t.kind != TokenKind::Comment));
        let t = tokenize("a -- c\nb");
        assert_eq!(t[2].kind, TokenKind::Comment);
        let t = tokenize("1.5e3 0x1F 1abc 12");
        let kinds: Vec<TokenKind> = t.iter().filter(|t| !t.is_trivia()).map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            vec![
                TokenKind::Number,
                TokenKind::Number,
                TokenKind::Ident,
                TokenKind::Number
            ]
        );
        let t = tokenize(r#"'a\'b' "c""d""#);
        assert_eq!(t[0].value.as_deref(), Some("a'b"));
        assert_eq!(t[2].value.as_deref(), Some("c\"d"));
    }

    #[test]
    fn version_comment_contents_are_seen() {
        let sql = MYSQL8_TABLE;
        let out = rename_qualified(sql, |d, t| {
            (d == "shop" && t == "customers").then(|| ("shop2".into(), "clients".into()))
        });
        assert!(out.contains("REFERENCES `shop2`.`clients` (`id`)"));
        assert_eq!(out.replace("`shop2`.`clients`", "`shop`.`customers`"), sql);
        let sql = "/*!50001 CREATE VIEW `v` AS select `a`.`t`.`x` AS `x` from `a`.`t` */";
        let out = rename_qualified(sql, |d, t| (d == "a").then(|| ("b".into(), t.to_string())));
        assert_eq!(
            out,
            "/*!50001 CREATE VIEW `v` AS select `b`.`t`.`x` AS `x` from `b`.`t` */"
        );
    }

    #[test]
    fn renames() {
        let map = |d: &str, t: &str| match (d, t) {
            ("db", "t") => Some(("db2".to_string(), "t2".to_string())),
            ("db", "u") => Some(("db2".to_string(), "u".to_string())),
            ("we`ird", "x") => Some(("n`ew".to_string(), "x".to_string())),
            _ => None,
        };
        assert_eq!(
            rename_qualified("select * from db.t", map),
            "select * from `db2`.`t2`"
        );
        assert_eq!(
            rename_qualified("select db . `t` . c from db.u", map),
            "select `db2` . `t2` . c from `db2`.u"
        );
        assert_eq!(
            rename_qualified("select db.t.* from `we``ird`.`x`", map),
            "select `db2`.`t2`.* from `n``ew`.`x`"
        );
        // Strings and comments are never touched; unknown pairs stay.
        let s = "select 'db.t', \"db.t\" /* db.t */ -- db.t\n, other.t # db.t";
        assert_eq!(rename_qualified(s, map), s);
        // Single names are not qualified references.
        assert_eq!(rename_qualified("select t from db", map), "select t from db");
    }

    #[test]
    fn splice_edits() {
        let s = "abc def ghi";
        assert_eq!(splice(s, &[(8..11, "X".into()), (0..3, "Y".into())]), "Y def X");
        // overlapping and out-of-range edits are ignored
        assert_eq!(
            splice(s, &[(0..5, "Y".into()), (2..4, "Z".into()), (9..99, "Q".into())]),
            "Yef ghi"
        );
        assert_eq!(splice("é", &[(1..2, "x".into())]), "é");
    }

    #[test]
    fn chains() {
        let sql = "select a.b.c, d . e, f.*, g from h";
        let toks = tokenize(sql);
        let ch = name_chains(sql, &toks);
        let names: Vec<(Vec<&str>, bool)> = ch.iter().map(|c| (c.names(&toks), c.star)).collect();
        assert_eq!(
            names,
            vec![
                (vec!["select"], false),
                (vec!["a", "b", "c"], false),
                (vec!["d", "e"], false),
                (vec!["f"], true),
                (vec!["g"], false),
                (vec!["from"], false),
                (vec!["h"], false),
            ]
        );
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        let samples = [
            "\u{0}`\u{0}",
            "'\\é",
            "/*M!",
            "/*!",
            "*/",
            "-- ",
            "--",
            "#",
            "`",
            "\"",
            "0x",
            "1e",
            "1.",
            "é.é",
            "@@x.y",
            "/*!1 /*!2 */ */",
        ];
        for s in samples {
            round_trip(s);
        }
        // All 2-byte combinations of interesting ASCII bytes.
        let alphabet = [
            "`", "'", "\"", "\\", "/", "*", "!", "-", "#", " ", "\n", "M", "1", ".", "é", "x",
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    round_trip(&format!("{a}{b}{c}"));
                }
            }
        }
    }

    #[test]
    fn ansi_quotes_and_no_backslash_escapes() {
        let sql = r#"CREATE TABLE "a""b" ("id" INT DEFAULT 'x\')"#;
        let ansi = LexMode {
            ansi_quotes: true,
            no_backslash_escapes: true,
        };
        let t: Vec<Token> = tokenize_mode(sql, ansi)
            .into_iter()
            .filter(|t| !t.is_trivia())
            .collect();
        assert_eq!(t[2].kind, TokenKind::QuotedIdent);
        assert_eq!(t[2].ident(), Some("a\"b"));
        assert_eq!(t[4].ident(), Some("id"));
        // The backslash is an ordinary character: the string ends at the first lone quote.
        let s = t
            .iter()
            .find(|t| t.kind == TokenKind::String)
            .map(|t| t.value.clone());
        assert_eq!(s, Some(Some("x\\".to_string())));
        // Default mode: "…" is a string.
        let d: Vec<Token> = tokenize(sql).into_iter().filter(|t| !t.is_trivia()).collect();
        assert_eq!(d[2].kind, TokenKind::String);
    }
}
