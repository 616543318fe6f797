//! DDL replay: classify a statement by its head, decide whether it concerns the selection, and
//! rename its objects by splicing identifier tokens (never re-printing the statement).
//!
//! Recognised heads: CREATE/ALTER/DROP TABLE (and SEQUENCE), RENAME TABLE, TRUNCATE [TABLE],
//! CREATE/ALTER/DROP DATABASE|SCHEMA, CREATE/ALTER/DROP VIEW, TRIGGER, PROCEDURE, FUNCTION,
//! EVENT, CREATE/DROP INDEX. Everything else (BEGIN, SAVEPOINT, GRANT, FLUSH, ANALYZE, …) is not
//! replayed.
//!
//! Selection: table statements apply when one of their tables is selected (a new table in a
//! wholly selected database is selected); database statements when the database is; views and
//! routines when their database is wholly selected. Triggers and events are never replayed
//! during the incremental phase: on the target they would run a second time for changes the
//! binlog already carries; the job creates them at cut-over.
//!
//! Renaming: the statement's object names become fully qualified target names; other dotted
//! `db.table` names are mapped when they name a selected table; the statement runs with the
//! mapped default database (`USE`).

use ferry_core::lexer::{
    name_chains, next_significant, splice, tokenize_mode, LexMode, NameChain, Token, TokenKind,
};
use ferry_core::mapping::DdlKind;
use ferry_core::sql::{qualified, quote_ident};
use ferry_core::Selection;

/// Which DDL the replay applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DdlPolicy {
    /// Every DDL on selected objects.
    #[default]
    All,
    /// No DDL (the target schema is managed by hand; rows must still match it).
    None,
    /// Every DDL but DROP and TRUNCATE.
    AllButDrop,
}

/// The object class of a DDL statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjClass {
    Table,
    Database,
    View,
    Routine,
    Trigger,
    Event,
}

/// What to do with a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DdlAction {
    /// Not replayed, with the reason (for logs).
    Skip(String),
    /// Cannot be replayed through the table's `Ferry.DbList` mapping: the replay stops, with
    /// this reason (naming the table, the column and the fix).
    Refuse(String),
    /// Run `sql` on the target, after `USE use_db` when given.
    Apply {
        sql: String,
        use_db: Option<String>,
        class: ObjClass,
        /// A one-line description for logs and progress.
        summary: String,
        /// The source tables whose rows or shape the statement may change, as (database,
        /// table); an empty table name stands for every table of the database (`DROP
        /// DATABASE`). Continuous verification plans these again (and only these).
        tables: Vec<(String, String)>,
    },
}

#[derive(Debug)]
struct Head {
    verb: String,
    class: ObjClass,
    temporary: bool,
    /// Object name chains: (chain, class of the name).
    objects: Vec<(NameChain, ObjClass)>,
}

struct Cursor<'a> {
    sql: &'a str,
    toks: &'a [Token],
    i: Option<usize>,
}

impl<'a> Cursor<'a> {
    fn new(sql: &'a str, toks: &'a [Token]) -> Self {
        Cursor {
            sql,
            toks,
            i: next_significant(toks, 0),
        }
    }
    fn peek(&self) -> Option<&'a Token> {
        self.i.map(|i| &self.toks[i])
    }
    fn kw(&self, k: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(k))
    }
    fn punct(&self, c: char) -> bool {
        self.peek().is_some_and(|t| t.is_punct(self.sql, c))
    }
    fn bump(&mut self) {
        if let Some(i) = self.i {
            self.i = next_significant(self.toks, i + 1);
        }
    }
    fn eat(&mut self, k: &str) -> bool {
        if self.kw(k) {
            self.bump();
            true
        } else {
            false
        }
    }
    /// Skips `IF [NOT] EXISTS`.
    fn if_exists(&mut self) {
        if self.kw("IF") {
            self.bump();
            self.eat("NOT");
            self.eat("EXISTS");
        }
    }
    /// Takes a dotted name at the cursor, from the precomputed chains.
    fn chain(&mut self, chains: &[NameChain]) -> Option<NameChain> {
        let i = self.i?;
        let c = chains.iter().find(|c| c.parts.first() == Some(&i))?.clone();
        let last = *c.parts.last()?;
        self.i = next_significant(self.toks, last + 1);
        Some(c)
    }
    /// Skips tokens until the keyword `k` (consumed); false at the end.
    fn skip_to(&mut self, k: &str) -> bool {
        while self.peek().is_some() {
            if self.eat(k) {
                return true;
            }
            self.bump();
        }
        false
    }
}

fn is_ident(t: Option<&Token>) -> bool {
    t.is_some_and(|t| matches!(t.kind, TokenKind::Ident | TokenKind::QuotedIdent))
}

/// Skips CREATE/ALTER options before the object keyword: OR REPLACE, ALGORITHM=…,
/// DEFINER=…, SQL SECURITY …, ONLINE, IGNORE, AGGREGATE, UNIQUE/FULLTEXT/SPATIAL, TEMPORARY.
fn skip_options(c: &mut Cursor<'_>, temporary: &mut bool) {
    loop {
        if c.kw("OR") {
            c.bump();
            c.eat("REPLACE");
        } else if c.kw("ALGORITHM") {
            c.bump();
            if c.punct('=') {
                c.bump();
            }
            c.bump();
        } else if c.kw("DEFINER") {
            c.bump();
            if c.punct('=') {
                c.bump();
            }
            // user[@host] or CURRENT_USER[()]
            c.bump();
            if c.punct('(') {
                c.bump();
                if c.punct(')') {
                    c.bump();
                }
            }
            if c.punct('@') {
                c.bump();
                c.bump();
            }
        } else if c.kw("SQL") {
            c.bump();
            c.eat("SECURITY");
            c.bump();
        } else if c.kw("TEMPORARY") {
            *temporary = true;
            c.bump();
        } else if [
            "ONLINE",
            "OFFLINE",
            "IGNORE",
            "AGGREGATE",
            "UNIQUE",
            "FULLTEXT",
            "SPATIAL",
        ]
        .iter()
        .any(|k| c.kw(k))
        {
            c.bump();
        } else {
            return;
        }
    }
}

fn object_class(c: &Cursor<'_>) -> Option<(ObjClass, &'static str)> {
    let pairs: [(&str, ObjClass); 10] = [
        ("TABLE", ObjClass::Table),
        ("SEQUENCE", ObjClass::Table),
        ("INDEX", ObjClass::Table),
        ("DATABASE", ObjClass::Database),
        ("SCHEMA", ObjClass::Database),
        ("VIEW", ObjClass::View),
        ("PROCEDURE", ObjClass::Routine),
        ("FUNCTION", ObjClass::Routine),
        ("TRIGGER", ObjClass::Trigger),
        ("EVENT", ObjClass::Event),
    ];
    pairs.iter().find(|(k, _)| c.kw(k)).map(|(k, cl)| (*cl, *k))
}

fn parse_head(sql: &str, toks: &[Token], chains: &[NameChain]) -> Option<Head> {
    let mut c = Cursor::new(sql, toks);
    let verb = c.peek()?.ident()?.to_ascii_uppercase();
    let mut temporary = false;
    let mut objects = Vec::new();
    match verb.as_str() {
        "CREATE" | "ALTER" | "DROP" => {
            c.bump();
            skip_options(&mut c, &mut temporary);
            let (class, word) = object_class(&c)?;
            c.bump();
            c.if_exists();
            if word == "INDEX" {
                // CREATE/DROP INDEX idx ON t
                if !c.skip_to("ON") {
                    return None;
                }
                objects.push((c.chain(chains)?, ObjClass::Table));
            } else if class == ObjClass::Trigger {
                let name = c.chain(chains)?;
                objects.push((name, ObjClass::Trigger));
                if verb == "CREATE" && c.skip_to("ON") {
                    if let Some(t) = c.chain(chains) {
                        objects.push((t, ObjClass::Table));
                    }
                }
            } else if verb == "DROP" && matches!(class, ObjClass::Table | ObjClass::View) {
                while let Some(ch) = c.chain(chains) {
                    objects.push((ch, class));
                    if c.punct(',') {
                        c.bump();
                    } else {
                        break;
                    }
                }
            } else if is_ident(c.peek()) {
                let name = c.chain(chains)?;
                objects.push((name, class));
                if verb == "ALTER" && class == ObjClass::Table {
                    // ALTER TABLE t … RENAME [TO|AS] t2 (not RENAME COLUMN/INDEX/KEY)
                    while c.skip_to("RENAME") {
                        if c.kw("COLUMN") || c.kw("INDEX") || c.kw("KEY") {
                            continue;
                        }
                        if !c.eat("TO") {
                            c.eat("AS");
                        }
                        if let Some(t) = c.chain(chains) {
                            objects.push((t, ObjClass::Table));
                        }
                    }
                } else if verb == "CREATE" && class == ObjClass::Table && c.eat("LIKE") {
                    if let Some(t) = c.chain(chains) {
                        objects.push((t, ObjClass::Table));
                    }
                }
            } else if class != ObjClass::Database {
                return None;
            }
            Some(Head {
                verb,
                class,
                temporary,
                objects,
            })
        }
        "RENAME" => {
            c.bump();
            if !c.eat("TABLE") && !c.eat("TABLES") {
                return None;
            }
            while let Some(a) = c.chain(chains) {
                objects.push((a, ObjClass::Table));
                if !c.eat("TO") {
                    break;
                }
                if let Some(b) = c.chain(chains) {
                    objects.push((b, ObjClass::Table));
                }
                if c.punct(',') {
                    c.bump();
                } else {
                    break;
                }
            }
            Some(Head {
                verb,
                class: ObjClass::Table,
                temporary,
                objects,
            })
        }
        "TRUNCATE" => {
            c.bump();
            c.eat("TABLE");
            objects.push((c.chain(chains)?, ObjClass::Table));
            Some(Head {
                verb,
                class: ObjClass::Table,
                temporary,
                objects,
            })
        }
        _ => None,
    }
}

/// Source (db, name) of a name chain, with the statement's default database.
fn resolve(toks: &[Token], chain: &NameChain, class: ObjClass, default_db: &str) -> Option<(String, String)> {
    let names = chain.names(toks);
    match (class, names.as_slice()) {
        (ObjClass::Database, [db]) => Some((db.to_string(), String::new())),
        (_, [n]) => Some((default_db.to_string(), n.to_string())),
        (_, [db, n, ..]) => Some((db.to_string(), n.to_string())),
        _ => None,
    }
}

/// Decides what to do with a statement of the source binlog.
pub fn plan(sql: &str, default_db: &str, sel: &Selection, policy: DdlPolicy) -> DdlAction {
    plan_mode(sql, default_db, sel, policy, LexMode::default())
}

/// [`plan`] for a statement read under `sql_mode` flags that change its tokens (`ANSI_QUOTES`,
/// `NO_BACKSLASH_ESCAPES`), as logged with it.
pub fn plan_mode(
    sql: &str,
    default_db: &str,
    sel: &Selection,
    policy: DdlPolicy,
    mode: LexMode,
) -> DdlAction {
    let toks = tokenize_mode(sql, mode);
    let chains = name_chains(sql, &toks);
    let Some(head) = parse_head(sql, &toks, &chains) else {
        return DdlAction::Skip("not a DDL statement".into());
    };
    let summary = {
        let mut s: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.chars().count() > 120 {
            s = s.chars().take(120).collect::<String>() + "…";
        }
        s
    };
    if head.temporary {
        return DdlAction::Skip("temporary table".into());
    }
    if policy == DdlPolicy::None {
        return DdlAction::Skip("DDL policy None".into());
    }
    if policy == DdlPolicy::AllButDrop && (head.verb == "DROP" || head.verb == "TRUNCATE") {
        return DdlAction::Skip("DDL policy AllButDrop".into());
    }
    if head.objects.is_empty() && head.class != ObjClass::Database {
        return DdlAction::Skip("no object name".into());
    }

    let mut selected = false;
    let mut edits = Vec::new();
    let mut object_parts: Vec<usize> = Vec::new();
    for (chain, class) in &head.objects {
        let Some((db, name)) = resolve(&toks, chain, *class, default_db) else {
            continue;
        };
        object_parts.extend(chain.parts.iter().copied());
        let replacement = match class {
            ObjClass::Database => match sel.target_db(&db) {
                Some(t) => {
                    selected = true;
                    quote_ident(&t)
                }
                None => continue,
            },
            ObjClass::Table => match sel.target_table(&db, &name) {
                Some((tdb, tt)) => {
                    selected = true;
                    qualified(&tdb, &tt)
                }
                None => match sel.target_db(&db) {
                    Some(tdb) => qualified(&tdb, &name),
                    None => qualified(&db, &name),
                },
            },
            ObjClass::View | ObjClass::Routine | ObjClass::Trigger | ObjClass::Event => {
                if !sel.whole_db(&db) {
                    continue;
                }
                selected = true;
                let tdb = sel.target_db(&db).unwrap_or(db);
                qualified(&tdb, &name)
            }
        };
        edits.push((chain.range(&toks), replacement));
    }
    // ALTER/CREATE DATABASE without a name: the default database.
    if head.class == ObjClass::Database && head.objects.is_empty() {
        selected = sel.target_db(default_db).is_some();
    }
    if !selected {
        return DdlAction::Skip("no selected object".into());
    }
    if matches!(head.class, ObjClass::Trigger | ObjClass::Event) {
        return DdlAction::Skip(
            "triggers and events are created at cut-over, not during replay (they would fire on \
             replayed rows)"
                .into(),
        );
    }
    // The tables' Ferry.DbList mappings: the DDL kinds replayed (ddl_op), the column mapping.
    if head.class == ObjClass::Table {
        match map_table_ddl(sql, &toks, &head, default_db, sel, &summary) {
            Ok(Some(more)) => edits.extend(more),
            Ok(None) => {}
            Err(action) => return action,
        }
    }
    // Other qualified names (FK references, view bodies, LIKE, …).
    for chain in &chains {
        if chain.parts.len() < 2 || chain.parts.iter().any(|p| object_parts.contains(p)) {
            continue;
        }
        let (d, t) = (&toks[chain.parts[0]], &toks[chain.parts[1]]);
        let (Some(db), Some(table)) = (d.ident(), t.ident()) else {
            continue;
        };
        if let Some((nd, nt)) = sel.target_table(db, table) {
            if nd != db {
                edits.push((d.range(), quote_ident(&nd)));
            }
            if nt != table {
                edits.push((t.range(), quote_ident(&nt)));
            }
        }
    }
    let use_db = if head.class == ObjClass::Database || default_db.is_empty() {
        None
    } else {
        sel.target_db(default_db)
    };
    DdlAction::Apply {
        sql: splice(sql, &edits),
        use_db,
        class: head.class,
        summary,
        tables: touched_tables(&toks, &head, default_db),
    }
}

/// The source tables a statement may change the rows or shape of: a table statement's tables
/// (both names of a rename), every table of a database an `ALTER`/`DROP DATABASE` names (or the
/// default one); none for views, routines, triggers and events, which hold no rows.
fn touched_tables(toks: &[Token], head: &Head, default_db: &str) -> Vec<(String, String)> {
    match head.class {
        ObjClass::Table => head
            .objects
            .iter()
            .filter(|(_, c)| *c == ObjClass::Table)
            .filter_map(|(chain, c)| resolve(toks, chain, *c, default_db))
            .collect(),
        ObjClass::Database if head.verb != "CREATE" => {
            let mut dbs: Vec<(String, String)> = head
                .objects
                .iter()
                .filter_map(|(chain, c)| resolve(toks, chain, *c, default_db))
                .collect();
            if dbs.is_empty() {
                dbs.push((default_db.to_string(), String::new()));
            }
            dbs
        }
        _ => Vec::new(),
    }
}

/// A splice of the statement's text: a byte range and its replacement.
type Edit = (std::ops::Range<usize>, String);

/// The edits a table statement needs for the `Ferry.DbList` mappings of its tables, or the
/// action that replaces it: skipped when `ddl_op` leaves its kind out for every mapped table it
/// names, or when it only changes columns the mapping drops ([`super::ddl_map`]); refused when
/// it cannot fit the mapped table.
fn map_table_ddl(
    sql: &str,
    toks: &[Token],
    head: &Head,
    default_db: &str,
    sel: &Selection,
    summary: &str,
) -> Result<Option<Vec<Edit>>, DdlAction> {
    let words: Vec<&str> = toks
        .iter()
        .filter(|t| !t.is_trivia())
        .take(6)
        .filter_map(|t| t.ident())
        .collect();
    let kind = DdlKind::of_statement(&words);
    let mut replayed = 0;
    let mut left_out = Vec::new();
    let mut edits = None;
    for (i, (chain, class)) in head.objects.iter().enumerate() {
        if *class != ObjClass::Table {
            continue;
        }
        let Some((db, name)) = resolve(toks, chain, *class, default_db) else {
            continue;
        };
        if sel.target_table(&db, &name).is_none() {
            continue;
        }
        let Some(m) = sel.mapping(&db, &name) else {
            replayed += 1;
            continue;
        };
        if let Some(k) = kind.filter(|k| !m.replays_ddl(*k)) {
            left_out.push(format!("{db}.{name} ({k:?})"));
            continue;
        }
        replayed += 1;
        // The column mapping applies to the statement's own table (the first name).
        if i == 0 && m.columns.is_some() && head.verb != "DROP" && head.verb != "RENAME" {
            let Some(&last) = chain.parts.last() else { continue };
            let create = head.verb == "CREATE" && kind == Some(DdlKind::CreateTable);
            match super::ddl_map::map_columns(sql, toks, last + 1, create, m) {
                Ok(super::ddl_map::ColumnDdl::Apply(e)) => edits = Some(e),
                Ok(super::ddl_map::ColumnDdl::Skip(r)) => {
                    return Err(DdlAction::Skip(format!("{db}.{name}: {r}")))
                }
                Err(e) => {
                    return Err(DdlAction::Refuse(format!(
                        "the DDL `{summary}` on {db}.{name} cannot be replayed through its Ferry.DbList \
                         column mapping: {e}"
                    )))
                }
            }
        }
    }
    match (replayed, left_out.is_empty()) {
        (_, true) => Ok(edits),
        (0, false) => Err(DdlAction::Skip(format!(
            "Ferry.DbList ddl_op does not list this kind for {}",
            left_out.join(", ")
        ))),
        (_, false) => Err(DdlAction::Refuse(format!(
            "the DDL `{summary}` names tables whose Ferry.DbList ddl_op replays it and others whose \
             ddl_op does not ({}): run it on each table separately on the source, or give the tables \
             the same ddl_op",
            left_out.join(", ")
        ))),
    }
}

/// Server errors that mean "this DDL already ran" (table/column/key/database exists, or the
/// object to drop is gone): after a restart at the DDL's own position, the statement is treated
/// as applied.
pub fn already_applied_error(code: u16) -> bool {
    matches!(
        code,
        1007 // database exists
            | 1008 // database doesn't exist (drop)
            | 1050 // table exists
            | 1051 // unknown table (drop)
            | 1054 // unknown column (drop/rename column)
            | 1060 // duplicate column
            | 1061 // duplicate key name
            | 1091 // can't drop, check that it exists
            | 1146 // table doesn't exist
            | 1304 // routine exists
            | 1305 // routine does not exist
            | 1347 // not a view
            | 4092 // unknown view
    )
}

/// A data change logged as a statement (a QUERY_EVENT from a session with
/// `binlog_format=STATEMENT` or `MIXED`) that writes a selected table: `(db, table)` of the first
/// such table. Ferry replays row events only, so such a statement must stop the replay; one that
/// writes no selected table concerns nobody. Heads: INSERT, REPLACE, UPDATE, DELETE, LOAD
/// (DATA/XML) and WITH (MySQL 8's `WITH … UPDATE/DELETE`). The written tables are the names
/// between the head and the first top-level SET / VALUES / SELECT / WHERE (outside parentheses,
/// keywords left out; bare names in the default database); for WITH every name counts. Read
/// tables (a join's other side) count too: the check over-reports, it never hides a written
/// table.
pub fn dml_on_selection(
    sql: &str,
    default_db: &str,
    sel: &Selection,
    mode: LexMode,
) -> Option<(String, String)> {
    const STOP: [&str; 10] = [
        "SET", "VALUES", "VALUE", "SELECT", "WHERE", "ORDER", "LIMIT", "FIELDS", "COLUMNS", "LINES",
    ];
    const NOT_NAMES: [&str; 26] = [
        "INSERT",
        "REPLACE",
        "UPDATE",
        "DELETE",
        "LOAD",
        "DATA",
        "XML",
        "LOCAL",
        "INFILE",
        "CONCURRENT",
        "LOW_PRIORITY",
        "HIGH_PRIORITY",
        "DELAYED",
        "IGNORE",
        "QUICK",
        "INTO",
        "FROM",
        "TABLE",
        "JOIN",
        "INNER",
        "LEFT",
        "RIGHT",
        "OUTER",
        "CROSS",
        "STRAIGHT_JOIN",
        "USING",
    ];
    const MORE_NOT_NAMES: [&str; 6] = ["NATURAL", "ON", "AS", "PARTITION", "WITH", "RECURSIVE"];
    let toks = tokenize_mode(sql, mode);
    let head_i = next_significant(&toks, 0)?;
    let head = &toks[head_i];
    let with = head.is_keyword("WITH");
    if !with
        && !["INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD"]
            .iter()
            .any(|k| head.is_keyword(k))
    {
        return None;
    }
    // paren depth at each token, and where the table references end
    let mut depth = vec![0i32; toks.len()];
    let mut d = 0i32;
    let mut stop = toks.len();
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct(sql, '(') {
            d += 1;
        } else if t.is_punct(sql, ')') {
            d -= 1;
        }
        depth[i] = d;
        if !with && i > head_i && d == 0 && STOP.iter().any(|k| t.is_keyword(k)) {
            stop = i;
            break;
        }
    }
    for chain in name_chains(sql, &toks) {
        let first = chain.parts[0];
        if first >= stop || (!with && depth[first] != 0) {
            continue;
        }
        let t0 = &toks[first];
        if NOT_NAMES
            .iter()
            .chain(MORE_NOT_NAMES.iter())
            .any(|k| t0.is_keyword(k))
        {
            continue;
        }
        let names = chain.names(&toks);
        let (db, t) = match names.as_slice() {
            [t] => (default_db, *t),
            // `db.table`; the `alias.column` of an ON condition names no selected database
            [a, b, ..] => (*a, *b),
            [] => continue,
        };
        if !db.is_empty() && sel.target_table(db, t).is_some() {
            return Some((db.to_string(), t.to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dml_statements_on_selected_tables_are_found() {
        let s = sel();
        let m = LexMode::default();
        let hit = |sql: &str, db: &str| dml_on_selection(sql, db, &s, m);
        assert_eq!(
            hit("UPDATE t SET v = 1 WHERE id = 2", "p"),
            Some(("p".into(), "t".into()))
        );
        assert_eq!(
            hit("/* c */ insert into p.t values (1)", ""),
            Some(("p".into(), "t".into()))
        );
        assert!(hit("DELETE FROM p.u", "p").is_none());
        assert!(hit("UPDATE x SET t = 1", "nowhere").is_none());
        // a DDL or another statement is not a data change
        assert!(hit("ALTER TABLE t ADD c INT", "p").is_none());
        assert!(hit("SAVEPOINT t", "p").is_none());
        // multi-table and qualified column names
        assert_eq!(
            hit("UPDATE other.x JOIN p.t ON x.id = t.id SET x.v = 1", "other"),
            Some(("p".into(), "t".into()))
        );
        // a wholly selected database: keywords, column lists and values are not tables
        assert_eq!(
            hit("UPDATE t SET v = 'stmt' WHERE id = 1", "a"),
            Some(("a".into(), "t".into()))
        );
        assert!(hit("INSERT INTO other.x (a, b) VALUES (1, 2)", "a").is_none());
        assert!(hit("UPDATE other.x SET v = a.b WHERE c IN (SELECT d FROM e)", "a").is_none());
        assert!(hit("DELETE FROM other.x WHERE id IN (SELECT id FROM a.y)", "zz").is_none());
        assert_eq!(
            hit("DELETE a.q FROM a.q JOIN other.x USING (id)", ""),
            Some(("a".into(), "q".into()))
        );
        assert_eq!(
            hit("WITH c AS (SELECT 1) UPDATE a.q SET v = 1", ""),
            Some(("a".into(), "q".into()))
        );
    }
    use ferry_core::selection::{DbSelection, ObjectSelection, TableSelection};

    fn sel() -> Selection {
        Selection {
            mapping: Default::default(),
            objects: ObjectSelection::Databases(vec![
                DbSelection {
                    name: "a".into(),
                    target: "a2".into(),
                    tables: None,
                    table_renames: [("x".to_string(), "y".to_string())].into(),
                },
                DbSelection {
                    name: "p".into(),
                    target: "p".into(),
                    tables: Some(vec![TableSelection {
                        name: "t".into(),
                        target: "t".into(),
                    }]),
                    table_renames: Default::default(),
                },
            ]),
        }
    }

    fn applied(sql: &str, db: &str) -> (String, Option<String>) {
        match plan(sql, db, &sel(), DdlPolicy::All) {
            DdlAction::Apply { sql, use_db, .. } => (sql, use_db),
            DdlAction::Skip(r) => panic!("skipped {sql}: {r}"),
            DdlAction::Refuse(r) => panic!("refused {sql}: {r}"),
        }
    }

    #[test]
    fn mapped_tables_replay_through_their_mapping() {
        use ferry_core::mapping::{ColumnMap, DdlKind, TableMapping};
        let mut s = sel();
        let cols = ["id", "qty", "note"].map(|c| ColumnMap {
            name: c.into(),
            target: if c == "note" { "remark".into() } else { c.into() },
        });
        s.mapping.tables.insert(
            "p".into(),
            [(
                "t".to_string(),
                TableMapping {
                    columns: Some(cols.to_vec()),
                    ddl: Some([DdlKind::AlterTable, DdlKind::CreateIndex].into()),
                    ..TableMapping::default()
                },
            )]
            .into(),
        );
        let plan_of = |sql: &str| plan(sql, "p", &s, DdlPolicy::All);
        assert_eq!(
            plan_of("ALTER TABLE t MODIFY note VARCHAR(9), MODIFY secret INT"),
            DdlAction::Apply {
                sql: "ALTER TABLE `p`.`t` MODIFY `remark` VARCHAR(9)".into(),
                use_db: Some("p".into()),
                class: ObjClass::Table,
                summary: "ALTER TABLE t MODIFY note VARCHAR(9), MODIFY secret INT".into(),
                tables: vec![("p".into(), "t".into())],
            }
        );
        assert!(matches!(
            plan_of("ALTER TABLE t DROP COLUMN secret"),
            DdlAction::Skip(_)
        ));
        assert!(matches!(
            plan_of("ALTER TABLE t MODIFY qty BIGINT NOT NULL DEFAULT 0"),
            DdlAction::Apply { sql, .. } if sql == "ALTER TABLE `p`.`t` MODIFY qty BIGINT NOT NULL DEFAULT 0"
        ));
        assert!(matches!(plan_of("TRUNCATE TABLE t"), DdlAction::Skip(r) if r.contains("ddl_op")));
        assert!(matches!(plan_of("DROP TABLE t"), DdlAction::Skip(_)));
        assert!(
            matches!(plan_of("ALTER TABLE t CHANGE note memo TEXT"), DdlAction::Refuse(r) if r.contains("renames note"))
        );
        assert!(
            matches!(plan_of("CREATE INDEX k ON t (secret)"), DdlAction::Refuse(r) if r.contains("secret"))
        );
    }

    #[test]
    fn the_tables_a_statement_touches_are_named() {
        let touched = |sql: &str, db: &str| match plan(sql, db, &sel(), DdlPolicy::All) {
            DdlAction::Apply { tables, .. } => tables,
            other => panic!("{sql}: {other:?}"),
        };
        let pair = |d: &str, t: &str| (d.to_string(), t.to_string());
        assert_eq!(
            touched("ALTER TABLE x ADD COLUMN c INT", "a"),
            vec![pair("a", "x")]
        );
        assert_eq!(touched("TRUNCATE a.x", "z"), vec![pair("a", "x")]);
        assert_eq!(
            touched("RENAME TABLE a.x TO a.x2, p.t TO p.t2", "z"),
            vec![pair("a", "x"), pair("a", "x2"), pair("p", "t"), pair("p", "t2")]
        );
        assert_eq!(
            touched("DROP TABLE x, p.t", "a"),
            vec![pair("a", "x"), pair("p", "t")]
        );
        assert_eq!(touched("DROP DATABASE a", "z"), vec![pair("a", "")]);
        assert!(touched("CREATE DATABASE a", "z").is_empty());
        assert!(touched("CREATE VIEW v AS SELECT 1", "a").is_empty());
    }

    fn skipped(sql: &str, db: &str) -> bool {
        matches!(plan(sql, db, &sel(), DdlPolicy::All), DdlAction::Skip(_))
    }

    #[test]
    fn tables() {
        assert_eq!(
            applied("ALTER TABLE x ADD COLUMN c INT", "a"),
            ("ALTER TABLE `a2`.`y` ADD COLUMN c INT".into(), Some("a2".into()))
        );
        assert_eq!(
            applied("CREATE TABLE IF NOT EXISTS `a`.new1 (id int, CONSTRAINT f FOREIGN KEY (id) REFERENCES a.x (id))", "z").0,
            "CREATE TABLE IF NOT EXISTS `a2`.`new1` (id int, CONSTRAINT f FOREIGN KEY (id) REFERENCES `a2`.`y` (id))"
        );
        assert_eq!(
            applied("DROP TABLE IF EXISTS x, `a`.b /* generated by server */", "a").0,
            "DROP TABLE IF EXISTS `a2`.`y`, `a2`.`b` /* generated by server */"
        );
        assert_eq!(
            applied("RENAME TABLE a.b TO a.c, x TO z", "a").0,
            "RENAME TABLE `a2`.`b` TO `a2`.`c`, `a2`.`y` TO `a2`.`z`"
        );
        assert_eq!(applied("TRUNCATE t", "p").0, "TRUNCATE `p`.`t`");
        assert_eq!(applied("truncate table a.b", "").0, "truncate table `a2`.`b`");
        assert_eq!(
            applied("CREATE INDEX i ON x (c)", "a").0,
            "CREATE INDEX i ON `a2`.`y` (c)"
        );
        assert_eq!(
            applied("ALTER TABLE b RENAME TO c", "a").0,
            "ALTER TABLE `a2`.`b` RENAME TO `a2`.`c`"
        );
        // partially selected database: only the listed table
        assert!(skipped("CREATE TABLE u (id int)", "p"));
        assert!(!skipped("ALTER TABLE t ADD c INT", "p"));
        assert!(skipped("CREATE TABLE q.t (id int)", "a"));
        assert!(skipped("CREATE TEMPORARY TABLE tmp (id int)", "a"));
    }

    #[test]
    fn other_objects() {
        assert_eq!(
            applied("CREATE DATABASE a CHARACTER SET utf8mb4", "").0,
            "CREATE DATABASE `a2` CHARACTER SET utf8mb4"
        );
        assert!(skipped("CREATE DATABASE other", ""));
        assert_eq!(
            applied(
                "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v AS select `a`.`x`.`id` AS `id` from `a`.`x`",
                "a"
            )
            .0,
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `a2`.`v` AS select `a2`.`y`.`id` AS `id` from `a2`.`y`"
        );
        assert_eq!(
            applied("DROP VIEW IF EXISTS v1, v2", "a").0,
            "DROP VIEW IF EXISTS `a2`.`v1`, `a2`.`v2`"
        );
        assert!(
            skipped("CREATE VIEW v AS SELECT 1", "p"),
            "views only in whole databases"
        );
        assert!(skipped(
            "CREATE DEFINER=`u`@`%` TRIGGER tr BEFORE INSERT ON x FOR EACH ROW SET @a=1",
            "a"
        ));
        assert!(skipped("BEGIN", "a"));
        assert!(skipped("SAVEPOINT s1", "a"));
        assert!(skipped("GRANT ALL ON a.* TO u", "a"));
        assert!(skipped("CREATE USER u", "a"));
        assert_eq!(
            applied(
                "CREATE DEFINER=`root`@`%` FUNCTION f(x int) RETURNS int RETURN x",
                "a"
            )
            .0,
            "CREATE DEFINER=`root`@`%` FUNCTION `a2`.`f`(x int) RETURNS int RETURN x"
        );
        assert!(matches!(
            plan("DROP TABLE a.b", "", &sel(), DdlPolicy::AllButDrop),
            DdlAction::Skip(_)
        ));
        assert!(matches!(
            plan("ALTER TABLE a.b ADD c INT", "", &sel(), DdlPolicy::None),
            DdlAction::Skip(_)
        ));
    }
}
