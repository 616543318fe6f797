//! Accounts, the statement text: `SHOW GRANTS` lines parsed into what they grant on which object
//! ([`Grant`]) and written back for the target with names mapped and the authentication clauses
//! dropped; `SHOW CREATE USER` parsed into its authentication methods ([`parse_create_user`]).
//! Pure: [`crate::accounts`] decides which accounts and grants a job copies.

use std::ops::Range;

use ferry_core::lexer::{splice, tokenize, Token, TokenKind};
use ferry_core::sql::quote_ident;

use crate::accounts::AccountName;

/// The object of a privilege grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantObject {
    /// `*.*`.
    Global,
    /// `` `db`.* `` (unescaped name; `pattern`: holds an unescaped `%`).
    Db { name: String, pattern: bool },
    /// `` `db`.`t` `` (a table or view).
    Table { db: String, table: String },
    /// `FUNCTION|PROCEDURE|PACKAGE [BODY] `db`.`r``.
    Routine { db: String, name: String },
    /// Anything else (`*`, a grant Ferry does not understand).
    Other,
}

/// What a `SHOW GRANTS` line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantKind {
    /// `GRANT privs ON object TO grantee`.
    Privileges { object: GrantObject, columns: bool },
    /// `GRANT PROXY ON … TO …`.
    Proxy,
    /// `GRANT role[, role] TO grantee`.
    Roles(Vec<AccountName>),
    /// `SET DEFAULT ROLE role FOR grantee` (MariaDB).
    DefaultRole(Vec<AccountName>),
    /// Not understood.
    Unknown,
}

/// A parsed `SHOW GRANTS` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub kind: GrantKind,
    text: String,
    /// The byte range of the database name, and of the table/routine name (for renaming).
    db_range: Option<Range<usize>>,
    name_range: Option<Range<usize>>,
    /// Where the grantee ends: what follows (authentication, REQUIRE, resource limits) is
    /// dropped; `WITH GRANT OPTION` / `WITH ADMIN OPTION` are written back.
    grantee_end: usize,
    grant_option: bool,
    admin_option: bool,
}

/// Significant (non-trivia) tokens.
fn significant(sql: &str) -> Vec<Token> {
    tokenize(sql).into_iter().filter(|t| !t.is_trivia()).collect()
}

/// The name a token stands for: an identifier or a string.
fn name_of(t: &Token) -> Option<&str> {
    match t.kind {
        TokenKind::Ident | TokenKind::QuotedIdent | TokenKind::String => t.value.as_deref(),
        _ => None,
    }
}

/// An account name at `toks[i]` (`u`, `u`@`h`); returns it and the index after it.
fn account_at(sql: &str, toks: &[Token], i: usize, mariadb_roles: bool) -> Option<(AccountName, usize)> {
    let user = name_of(toks.get(i)?)?;
    if toks.get(i + 1).is_some_and(|t| t.is_punct(sql, '@')) {
        let host = name_of(toks.get(i + 2)?)?;
        return Some((AccountName::new(user, host), i + 3));
    }
    // `u@h` lexed as one word is not produced by SHOW GRANTS; a bare name is a MariaDB role
    // (MySQL would mean `u`@`%`).
    let name = if mariadb_roles {
        AccountName::role(user)
    } else {
        AccountName::new(user, "%")
    };
    Some((name, i + 1))
}

fn unescape_db(name: &str) -> (String, bool) {
    let mut out = String::with_capacity(name.len());
    let mut pattern = false;
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '%' => {
                pattern = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    (out, pattern)
}

/// The database name as written back: escaped like the source wrote it.
fn db_text(original: &str, new: &str) -> String {
    if original.contains('\\') {
        quote_ident(&new.replace('_', "\\_").replace('%', "\\%"))
    } else {
        quote_ident(new)
    }
}

impl Grant {
    /// Parses one `SHOW GRANTS` line. `mariadb`: a bare role name has no host.
    pub fn parse(line: &str, mariadb: bool) -> Grant {
        let mut g = Grant {
            kind: GrantKind::Unknown,
            text: line.trim().trim_end_matches(';').to_string(),
            db_range: None,
            name_range: None,
            grantee_end: 0,
            grant_option: false,
            admin_option: false,
        };
        let sql = g.text.clone();
        g.grantee_end = sql.len();
        let toks = significant(&sql);
        let kw = |i: usize, k: &str| toks.get(i).is_some_and(|t| t.is_keyword(k));
        if kw(0, "SET") && kw(1, "DEFAULT") && kw(2, "ROLE") {
            let mut roles = Vec::new();
            let mut i = 3;
            while i < toks.len() && !kw(i, "FOR") {
                if let Some((r, next)) = account_at(&sql, &toks, i, mariadb) {
                    if !r.user.eq_ignore_ascii_case("NONE") {
                        roles.push(r);
                    }
                    i = next;
                } else {
                    i += 1;
                }
            }
            g.kind = GrantKind::DefaultRole(roles);
            return g;
        }
        if !kw(0, "GRANT") {
            return g;
        }
        // The privilege list (or role list) runs to the first ON or TO outside parentheses.
        let (mut depth, mut i, mut columns) = (0i32, 1usize, false);
        while i < toks.len() {
            let t = &toks[i];
            if t.is_punct(&sql, '(') {
                depth += 1;
                columns = true;
            } else if t.is_punct(&sql, ')') {
                depth -= 1;
            } else if depth == 0 && (t.is_keyword("ON") || t.is_keyword("TO")) {
                break;
            }
            i += 1;
        }
        if i >= toks.len() {
            return g;
        }
        let to = if kw(i, "TO") {
            let mut roles = Vec::new();
            let mut j = 1;
            while j < i {
                match account_at(&sql, &toks, j, mariadb) {
                    Some((r, next)) => {
                        roles.push(r);
                        j = next;
                    }
                    None => j += 1,
                }
            }
            g.kind = GrantKind::Roles(roles);
            i
        } else {
            let proxy = kw(1, "PROXY");
            let mut j = i + 1;
            if kw(j, "TABLE") {
                j += 1;
            }
            let routine = kw(j, "FUNCTION") || kw(j, "PROCEDURE") || kw(j, "PACKAGE");
            if routine {
                j += 1;
                if kw(j, "BODY") {
                    j += 1;
                }
            }
            let dot = |k: usize| toks.get(k).is_some_and(|t| t.is_punct(&sql, '.'));
            let star = |k: usize| toks.get(k).is_some_and(|t| t.is_punct(&sql, '*'));
            let ident = |k: usize| {
                toks.get(k)
                    .filter(|t| matches!(t.kind, TokenKind::Ident | TokenKind::QuotedIdent))
                    .and_then(|t| t.value.clone())
            };
            let object = if proxy {
                None
            } else if star(j) && dot(j + 1) && star(j + 2) {
                j += 3;
                Some(GrantObject::Global)
            } else if let (Some(db), true) = (ident(j), dot(j + 1)) {
                g.db_range = Some(toks[j].range());
                if star(j + 2) {
                    j += 3;
                    let (name, pattern) = unescape_db(&db);
                    Some(GrantObject::Db { name, pattern })
                } else if let Some(name) = ident(j + 2) {
                    g.name_range = Some(toks[j + 2].range());
                    j += 3;
                    Some(if routine {
                        GrantObject::Routine { db, name }
                    } else {
                        GrantObject::Table { db, table: name }
                    })
                } else {
                    Some(GrantObject::Other)
                }
            } else {
                Some(GrantObject::Other)
            };
            g.kind = match object {
                None => GrantKind::Proxy,
                Some(object) => GrantKind::Privileges { object, columns },
            };
            // PROXY ON 'u'@'h': skip to TO.
            while j < toks.len() && !kw(j, "TO") {
                j += 1;
            }
            j
        };
        // The grantee.
        match account_at(&sql, &toks, to + 1, mariadb) {
            Some((_, next)) => {
                g.grantee_end = toks[next - 1].end;
                for k in next..toks.len() {
                    if kw(k, "OPTION") && kw(k - 1, "GRANT") {
                        g.grant_option = true;
                    }
                    if kw(k, "OPTION") && kw(k - 1, "ADMIN") {
                        g.admin_option = true;
                    }
                }
            }
            None => g.kind = GrantKind::Unknown,
        }
        g
    }

    /// The statement for the target: names mapped (`map(db, name)` for the table/routine, or
    /// the new database name), the authentication and resource clauses dropped.
    pub(crate) fn render(&self, new_db: Option<&str>, new_name: Option<&str>) -> String {
        if matches!(self.kind, GrantKind::DefaultRole(_)) {
            return self.text.clone();
        }
        let head = self.text.get(..self.grantee_end).unwrap_or(&self.text);
        let mut edits = Vec::new();
        if let (Some(r), Some(db)) = (&self.db_range, new_db) {
            let db_level = matches!(
                &self.kind,
                GrantKind::Privileges {
                    object: GrantObject::Db { .. },
                    ..
                }
            );
            let original = if db_level {
                self.text.get(r.clone()).unwrap_or("")
            } else {
                ""
            };
            edits.push((r.clone(), db_text(original, db)));
        }
        if let (Some(r), Some(n)) = (&self.name_range, new_name) {
            edits.push((r.clone(), quote_ident(n)));
        }
        let mut out = splice(head, &edits);
        if self.grant_option {
            out.push_str(" WITH GRANT OPTION");
        }
        if self.admin_option {
            out.push_str(" WITH ADMIN OPTION");
        }
        out
    }
}

/// The authentication of a `SHOW CREATE USER` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// `(plugin, authentication string as written)`, one per method (MariaDB `OR`).
    pub methods: Vec<(String, Option<String>)>,
    /// `REQUIRE …` as written.
    pub require: Option<String>,
    /// `ACCOUNT LOCK`.
    pub locked: bool,
    /// Where the statement's `CREATE` keyword is.
    pub(crate) create_kw: Option<Range<usize>>,
}

const CLAUSES: &[&str] = &[
    "REQUIRE",
    "WITH",
    "PASSWORD",
    "ACCOUNT",
    "DEFAULT",
    "COMMENT",
    "ATTRIBUTE",
    "FAILED_LOGIN_ATTEMPTS",
    "PASSWORD_LOCK_TIME",
];

/// Parses `SHOW CREATE USER` output.
pub fn parse_create_user(sql: &str) -> Authentication {
    let toks = significant(sql);
    let kw = |i: usize, k: &str| toks.get(i).is_some_and(|t| t.is_keyword(k));
    let clause = |i: usize| CLAUSES.iter().any(|c| kw(i, c));
    let mut a = Authentication {
        methods: Vec::new(),
        require: None,
        locked: false,
        create_kw: toks.first().filter(|t| t.is_keyword("CREATE")).map(Token::range),
    };
    let mut i = 0;
    while i < toks.len() {
        if kw(i, "IDENTIFIED") {
            i += 1;
            if kw(i, "BY") && kw(i + 1, "PASSWORD") {
                let hash = toks.get(i + 2).map(|t| t.text(sql).to_string());
                let old = toks
                    .get(i + 2)
                    .and_then(|t| t.value.as_deref())
                    .is_some_and(|v| v.len() == 16);
                let plugin = if old {
                    "mysql_old_password"
                } else {
                    "mysql_native_password"
                };
                a.methods.push((plugin.into(), hash));
                i += 3;
                continue;
            }
            // VIA|WITH plugin [USING|AS|BY 'x'] [OR plugin …]
            while kw(i, "VIA") || kw(i, "WITH") || kw(i, "OR") {
                let Some(plugin) = toks.get(i + 1).and_then(name_of) else {
                    break;
                };
                let plugin = plugin.to_ascii_lowercase();
                i += 2;
                let mut auth = None;
                if kw(i, "USING") || kw(i, "AS") || kw(i, "BY") {
                    auth = toks.get(i + 1).map(|t| t.text(sql).to_string());
                    i += 2;
                }
                a.methods.push((plugin, auth));
            }
            continue;
        }
        if kw(i, "REQUIRE") {
            let start = toks[i].start;
            let mut j = i + 1;
            let mut end = toks[i].end;
            while j < toks.len() && !clause(j) {
                end = toks[j].end;
                j += 1;
            }
            a.require = sql.get(start..end).map(str::to_string);
            i = j;
            continue;
        }
        if kw(i, "ACCOUNT") && kw(i + 1, "LOCK") {
            a.locked = true;
        }
        i += 1;
    }
    if a.methods.is_empty() {
        // MariaDB prints no IDENTIFIED clause for an account without a password.
        a.methods.push(("mysql_native_password".into(), None));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const APP_CREATE: &str = "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*2B602296A79E0A8784ACC5C88D92E46588CCA3C3' REQUIRE SSL";

    #[test]
    fn parses_mariadb_grant_lines() {
        let g = Grant::parse(
            "GRANT SELECT (`a`), INSERT (`a`, `b`), UPDATE ON `shop`.`orders` TO `app`@`%` WITH GRANT OPTION",
            true,
        );
        assert_eq!(
            g.kind,
            GrantKind::Privileges {
                object: GrantObject::Table {
                    db: "shop".into(),
                    table: "orders".into()
                },
                columns: true
            }
        );
        assert_eq!(
            g.render(Some("shop2"), Some("orders2")),
            "GRANT SELECT (`a`), INSERT (`a`, `b`), UPDATE ON `shop2`.`orders2` TO `app`@`%` WITH GRANT OPTION"
        );
        let g = Grant::parse("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2B60' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 10", true);
        assert_eq!(
            g.render(None, None),
            "GRANT USAGE ON *.* TO `app`@`%`",
            "no hash, no limits"
        );
        let g = Grant::parse("GRANT `r1` TO `app`@`%`", true);
        assert_eq!(g.kind, GrantKind::Roles(vec![AccountName::role("r1")]));
        let g = Grant::parse("GRANT `r1`@`%` TO `app`@`%` WITH ADMIN OPTION", false);
        assert_eq!(g.kind, GrantKind::Roles(vec![AccountName::new("r1", "%")]));
        assert!(g.render(None, None).ends_with("WITH ADMIN OPTION"));
        let g = Grant::parse("SET DEFAULT ROLE `r1` FOR `app`@`%`", true);
        assert_eq!(g.kind, GrantKind::DefaultRole(vec![AccountName::role("r1")]));
        let g = Grant::parse("GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `app`@`%`", true);
        assert_eq!(
            g.kind,
            GrantKind::Privileges {
                object: GrantObject::Routine {
                    db: "shop".into(),
                    name: "p".into()
                },
                columns: false
            }
        );
        let g = Grant::parse(
            "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
            true,
        );
        assert_eq!(g.kind, GrantKind::Proxy);
        let g = Grant::parse("GRANT ALL PRIVILEGES ON `app\\_%`.* TO `app`@`%`", true);
        assert_eq!(
            g.kind,
            GrantKind::Privileges {
                object: GrantObject::Db {
                    name: "app_%".into(),
                    pattern: true
                },
                columns: false
            }
        );
        // MySQL 8's dynamic privileges.
        let g = Grant::parse("GRANT BACKUP_ADMIN,CONNECTION_ADMIN ON *.* TO `app`@`%`", false);
        assert_eq!(
            g.kind,
            GrantKind::Privileges {
                object: GrantObject::Global,
                columns: false
            }
        );
    }

    #[test]
    fn escaped_database_names_keep_their_escaping() {
        let g = Grant::parse("GRANT SELECT ON `sh\\_op`.* TO `app`@`%`", true);
        assert_eq!(
            g.kind,
            GrantKind::Privileges {
                object: GrantObject::Db {
                    name: "sh_op".into(),
                    pattern: false
                },
                columns: false
            }
        );
        assert_eq!(
            g.render(Some("new_db"), None),
            "GRANT SELECT ON `new\\_db`.* TO `app`@`%`"
        );
    }

    #[test]
    fn parses_create_user() {
        let a = parse_create_user(APP_CREATE);
        assert_eq!(
            a.methods,
            vec![(
                "mysql_native_password".to_string(),
                Some("'*2B602296A79E0A8784ACC5C88D92E46588CCA3C3'".to_string())
            )]
        );
        assert_eq!(a.require.as_deref(), Some("REQUIRE SSL"));
        let a = parse_create_user(
            "CREATE USER `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket",
        );
        assert_eq!(
            a.methods,
            vec![
                ("mysql_native_password".to_string(), Some("'invalid'".to_string())),
                ("unix_socket".to_string(), None)
            ]
        );
        let a = parse_create_user(
            "CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS 0x24412430 REQUIRE NONE \
             PASSWORD EXPIRE DEFAULT ACCOUNT LOCK PASSWORD HISTORY DEFAULT",
        );
        assert_eq!(
            a.methods,
            vec![(
                "caching_sha2_password".to_string(),
                Some("0x24412430".to_string())
            )]
        );
        assert_eq!(a.require.as_deref(), Some("REQUIRE NONE"));
        assert!(a.locked);
        assert_eq!(
            parse_create_user("CREATE USER `x`@`%`").methods[0].0,
            "mysql_native_password"
        );
    }

    fn ident() -> impl Strategy<Value = String> {
        "[a-z_%\\\\`' ]{1,12}"
    }

    proptest! {
        /// Any name mapping: the rendered grant parses back to the same kind of grant on the new
        /// names, and never carries the authentication clause.
        #[test]
        fn rename_round_trips(db in ident(), t in ident(), ndb in ident(), nt in ident(), go in any::<bool>()) {
            let line = format!(
                "GRANT SELECT, UPDATE (`c`) ON {}.{} TO `u`@`%` IDENTIFIED BY PASSWORD '*X'{}",
                quote_ident(&db), quote_ident(&t), if go { " WITH GRANT OPTION" } else { "" }
            );
            let g = Grant::parse(&line, true);
            let out = g.render(Some(&ndb), Some(&nt));
            prop_assert!(!out.contains("IDENTIFIED"));
            let back = Grant::parse(&out, true);
            prop_assert_eq!(back.kind, GrantKind::Privileges {
                object: GrantObject::Table { db: ndb.clone(), table: nt.clone() },
                columns: true,
            });
            prop_assert_eq!(back.grant_option, go);
        }

        /// Arbitrary text never panics the parsers.
        #[test]
        fn parsers_never_panic(s in "\\PC{0,80}") {
            let _ = Grant::parse(&s, true);
            let _ = Grant::parse(&format!("GRANT {s}"), false);
            let _ = parse_create_user(&s);
            let _ = parse_create_user(&format!("CREATE USER `a`@`%` IDENTIFIED {s}"));
        }
    }
}
