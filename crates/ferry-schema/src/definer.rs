//! The DEFINER clause of views, routines, triggers and events: find it with the lexer and, under
//! [`DefinerPolicy::RewriteToCurrentUser`], replace it by `DEFINER=CURRENT_USER` (the Huawei DRS
//! "replace_definer" behaviour), leaving the rest of the text byte-identical.

use std::ops::Range;

use ferry_core::lexer::{next_significant, Token, TokenKind};

use crate::names::Edit;
use crate::DefinerPolicy;

/// Keywords that end the statement head: a DEFINER clause comes before them.
const OBJECT_KEYWORDS: &[&str] = &["VIEW", "TRIGGER", "FUNCTION", "PROCEDURE", "EVENT", "TABLE"];

fn is_user_part(t: &Token) -> bool {
    matches!(
        t.kind,
        TokenKind::QuotedIdent | TokenKind::String | TokenKind::Ident
    )
}

/// The byte range of the `DEFINER = user@host` clause in the statement head, if any.
pub fn definer_range(sql: &str, tokens: &[Token]) -> Option<Range<usize>> {
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if OBJECT_KEYWORDS.iter().any(|k| t.is_keyword(k)) {
            return None;
        }
        if t.is_keyword("DEFINER") {
            let eq = next_significant(tokens, i + 1)?;
            if !tokens[eq].is_punct(sql, '=') {
                i += 1;
                continue;
            }
            let user = next_significant(tokens, eq + 1)?;
            if !is_user_part(&tokens[user]) {
                return None;
            }
            let mut end = tokens[user].end;
            if tokens[user].is_keyword("CURRENT_USER") {
                // CURRENT_USER or CURRENT_USER()
                if let Some(p) = next_significant(tokens, user + 1) {
                    if tokens[p].is_punct(sql, '(') {
                        if let Some(q) = next_significant(tokens, p + 1) {
                            if tokens[q].is_punct(sql, ')') {
                                end = tokens[q].end;
                            }
                        }
                    }
                }
                return Some(t.start..end);
            }
            // user@host: the lexer gives `@` as punctuation (and never joins it to the host).
            if let Some(at) = next_significant(tokens, user + 1) {
                if tokens[at].is_punct(sql, '@') {
                    if let Some(host) = next_significant(tokens, at + 1) {
                        if is_user_part(&tokens[host]) {
                            end = tokens[host].end;
                        }
                    }
                }
            }
            return Some(t.start..end);
        }
        i += 1;
    }
    None
}

/// The edit the policy asks for (none for [`DefinerPolicy::Keep`] or without a DEFINER clause).
pub fn definer_edit(sql: &str, tokens: &[Token], policy: DefinerPolicy) -> Option<Edit> {
    match policy {
        DefinerPolicy::Keep => None,
        DefinerPolicy::RewriteToCurrentUser => {
            definer_range(sql, tokens).map(|r| (r, "DEFINER=CURRENT_USER".to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::lexer::{splice, tokenize};

    fn rewrite(sql: &str) -> String {
        let toks = tokenize(sql);
        match definer_edit(sql, &toks, DefinerPolicy::RewriteToCurrentUser) {
            Some(e) => splice(sql, &[e]),
            None => sql.to_string(),
        }
    }

    #[test]
    fn rewrites_definers() {
        assert_eq!(
            rewrite("CREATE ALGORITHM=UNDEFINED DEFINER=`some``one`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1"),
            "CREATE ALGORITHM=UNDEFINED DEFINER=CURRENT_USER SQL SECURITY DEFINER VIEW `v` AS select 1"
        );
        assert_eq!(
            rewrite("CREATE DEFINER = 'u'@'localhost' TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1"),
            "CREATE DEFINER=CURRENT_USER TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1"
        );
        assert_eq!(
            rewrite("/*!50013 DEFINER=`root`@`localhost` */ CREATE VIEW v AS select 1"),
            "/*!50013 DEFINER=CURRENT_USER */ CREATE VIEW v AS select 1"
        );
        assert_eq!(
            rewrite("CREATE DEFINER=`role1` PROCEDURE p() select 1"),
            "CREATE DEFINER=CURRENT_USER PROCEDURE p() select 1"
        );
        assert_eq!(
            rewrite("CREATE DEFINER=CURRENT_USER() EVENT e ON SCHEDULE EVERY 1 DAY DO select 1"),
            "CREATE DEFINER=CURRENT_USER EVENT e ON SCHEDULE EVERY 1 DAY DO select 1"
        );
        // No clause in the head: nothing changes (a DEFINER in the body is not ours).
        let s = "CREATE PROCEDURE p() SELECT 'DEFINER=x' , 1 AS DEFINER";
        assert_eq!(rewrite(s), s);
        let toks = tokenize(s);
        assert!(definer_edit(s, &toks, DefinerPolicy::Keep).is_none());
    }
}
