//! Gathering: everything the judges need, read from the two servers with read-only queries.
//!
//! One connection per server, opened with `SET SESSION TRANSACTION READ ONLY` (session scope
//! only; on a MySQL 8 source also `SET SESSION information_schema_stats_expiry = 0`, so the size
//! estimates are current). The queries are `SHOW GLOBAL VARIABLES`, `SHOW GRANTS`, `SELECT CURRENT_USER()`,
//! `information_schema` reads, `SELECT User, Host FROM mysql.user` on the target (definers) and
//! `SELECT 1 FROM t LIMIT 1` on existing target tables (emptiness); with `Ferry.Accounts` /
//! `IsOverrideRoot` also `mysql.user`, `SHOW GRANTS FOR` and `SHOW CREATE USER` of the source's
//! accounts and the target's accounts and authentication plugins. Nothing is written.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::catalog;
use ferry_core::selection::{is_system_schema, ObjectSelection};
use ferry_core::sql::{qualified, quote_str};
use ferry_core::{Endpoint, Flavor, Selection, TableSchema};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use thiserror::Error;

use crate::connectivity::{classify, ConnectFailure};
use crate::{CheckInput, Skip};
use ferry_core::connect::ConnectFailure as Failure;

/// Progress steps reported by [`gather`]: connections, server facts, source objects, target objects.
pub(crate) const GATHER_STEPS: usize = 4;

/// Internal gathering errors; they end up as the reason of FAILED items, never as an `Err`.
#[derive(Debug, Error)]
pub(crate) enum GatherError {
    #[error("{context}: {source}")]
    Mysql {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("{0}")]
    Catalog(#[from] ferry_core::CoreError),
}

trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, GatherError>;
}

impl<T> Ctx<T> for Result<T, mysql_async::Error> {
    fn ctx(self, what: &str) -> Result<T, GatherError> {
        self.map_err(|source| GatherError::Mysql {
            context: what.to_string(),
            source,
        })
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub millis: u64,
    /// `Ssl_version` and `Ssl_cipher` of the session; `None`: not encrypted (or unreadable).
    pub tls: Option<(String, String)>,
}

/// Facts about one server.
#[derive(Debug, Clone)]
pub(crate) struct ServerFacts {
    pub flavor: Option<Flavor>,
    /// Global variables, lower-case names.
    pub vars: BTreeMap<String, String>,
    /// `CURRENT_USER()`, e.g. `ferry@%`.
    pub account: String,
    /// `SHOW GRANTS` lines, or why they could not be read. Never printed: they may hold hashes.
    pub grants: Result<Vec<String>, String>,
    /// Collation names (lower case) known to the server.
    pub collations: Result<BTreeSet<String>, String>,
    /// Character set names (lower case).
    pub charsets: Result<BTreeSet<String>, String>,
    /// Engines with SUPPORT YES or DEFAULT (upper case).
    pub engines: Result<BTreeSet<String>, String>,
    /// Server clock minus this machine's clock, in milliseconds.
    pub clock_offset_ms: Option<i64>,
    /// Free bytes on the file system of `@@datadir`, or why that is not measurable (remote host).
    pub datadir_free: Result<u64, String>,
}

impl ServerFacts {
    /// Facts for unit tests: a version and some variables; grants, collations and engines empty.
    #[cfg(test)]
    pub(crate) fn for_test(version: &str, vars: &[(&str, &str)]) -> Self {
        let mut map: BTreeMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("version".into(), version.into());
        ServerFacts {
            flavor: Some(Flavor::from_version(version)),
            vars: map,
            account: "ferry@%".into(),
            grants: Ok(Vec::new()),
            collations: Ok(BTreeSet::new()),
            charsets: Ok(BTreeSet::new()),
            engines: Ok(BTreeSet::new()),
            clock_offset_ms: Some(0),
            datadir_free: Err("test".into()),
        }
    }
    /// A variable's value.
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
    /// A numeric variable (`12`, `7.000000`), truncated.
    pub(crate) fn var_u64(&self, name: &str) -> Option<u64> {
        let v = self.var(name)?.trim();
        v.parse::<u64>()
            .ok()
            .or_else(|| v.parse::<f64>().ok().filter(|f| *f >= 0.0).map(|f| f as u64))
    }
    /// The flavor, or a default MySQL one when `@@version` was missing.
    pub(crate) fn flavor(&self) -> Flavor {
        self.flavor
            .clone()
            .unwrap_or_else(|| Flavor::from_version(self.var("version").unwrap_or("")))
    }
    pub(crate) fn is_mariadb(&self) -> bool {
        self.flavor().is_mariadb()
    }
}

/// A selected database.
#[derive(Debug, Clone)]
pub(crate) struct DbInfo {
    pub name: String,
    pub charset: Option<String>,
    pub collation: Option<String>,
}

/// Extra per-table facts not in [`TableSchema`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TableExtra {
    pub collation: Option<String>,
    pub avg_row_length: u64,
    pub index_length: u64,
}

/// A foreign key of a selected table.
#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    pub db: String,
    pub table: String,
    pub name: String,
    pub ref_db: String,
    pub ref_table: String,
    /// `ON DELETE` rule as information_schema shows it (`RESTRICT`, `CASCADE`, `SET NULL`, ...).
    pub delete_rule: String,
    /// `ON UPDATE` rule.
    pub update_rule: String,
}

/// A view, routine, trigger or event with its DEFINER.
#[derive(Debug, Clone)]
pub(crate) struct Defined {
    /// `view`, `procedure`, `function`, `trigger`, `event`.
    pub kind: String,
    pub db: String,
    pub name: String,
    /// `user@host` as information_schema shows it.
    pub definer: String,
}

/// The selected objects, read from the source.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceObjects {
    /// Explicitly selected objects that do not exist (`database `x``, `table `x`.`y``).
    pub missing: Vec<String>,
    pub dbs: Vec<DbInfo>,
    pub tables: Vec<TableSchema>,
    /// By (db, table).
    pub extra: BTreeMap<(String, String), TableExtra>,
    pub foreign_keys: Vec<ForeignKey>,
    pub defined: Vec<Defined>,
    /// Views of whole selected databases: (db, view).
    pub views: Vec<(String, String)>,
    /// Sequences of whole selected databases (MariaDB `CREATE SEQUENCE`): (db, sequence).
    pub sequences: Vec<(String, String)>,
    /// `SHOW CREATE TABLE` of the selected tables as `(db.table, text)`, read only for a MySQL
    /// source and a MariaDB target (the DDL is applied verbatim, see the `mysql_only_ddl` item).
    pub ddl: Vec<(String, Result<String, String>)>,
    /// Routines of whole selected databases listed by information_schema.ROUTINES without their
    /// body (`ROUTINE_DEFINITION` NULL: the account may not read it), e.g. `procedure d.p`.
    pub routines_without_body: Vec<String>,
    /// Routines `SHOW PROCEDURE/FUNCTION STATUS` names that information_schema.ROUTINES does not
    /// list (the structure phase lists routines from the latter).
    pub routines_unlisted: Vec<String>,
    /// Why `SHOW PROCEDURE/FUNCTION STATUS` could not be read, if so.
    pub routine_status_error: Option<String>,
}

/// A selected table that already exists on the target.
#[derive(Debug, Clone)]
pub(crate) struct ExistingTable {
    /// `db.table` on the target.
    pub target: String,
    /// `Some(true)` when it holds rows, `None` when that could not be read.
    pub non_empty: Result<bool, String>,
}

/// What the target already holds.
#[derive(Debug, Clone)]
pub(crate) struct TargetObjects {
    pub existing: Vec<ExistingTable>,
    /// Views (or tables) on the target with the name of a selected view: `db.view`.
    pub existing_views: Vec<String>,
    /// Accounts (user, host) on the target, or why `mysql.user` could not be read.
    pub accounts: Result<BTreeSet<(String, String)>, String>,
}

/// Everything gathered; an `Err(Skip)` says why a fact is missing.
#[derive(Debug)]
pub(crate) struct Facts {
    pub source_conn: Result<ConnInfo, ConnectFailure>,
    pub target_conn: Result<ConnInfo, ConnectFailure>,
    pub source: Result<ServerFacts, Skip>,
    pub target: Result<ServerFacts, Skip>,
    pub objects: Result<SourceObjects, Skip>,
    pub target_objects: Result<TargetObjects, Skip>,
    /// `Ferry.Accounts` / `IsOverrideRoot`: the accounts planned as the job will (`None`: not
    /// asked for), or why they could not be read.
    pub accounts: Option<Result<ferry_schema::accounts::AccountPlan, String>>,
}

const VARIABLES: &[&str] = &[
    "version",
    "version_comment",
    "server_id",
    "server_uuid",
    "log_bin",
    "binlog_format",
    "binlog_row_image",
    "binlog_checksum",
    "log_bin_compress",
    "binlog_row_value_options",
    "binlog_transaction_compression",
    "expire_logs_days",
    "binlog_expire_logs_seconds",
    "gtid_mode",
    "gtid_strict_mode",
    "gtid_binlog_pos",
    "lower_case_table_names",
    "sql_mode",
    "max_allowed_packet",
    "time_zone",
    "system_time_zone",
    "local_infile",
    "datadir",
    "character_set_server",
    "collation_server",
    "innodb_strict_mode",
    "sql_generate_invisible_primary_key",
    "sql_require_primary_key",
    "innodb_force_primary_key",
    "log_bin_trust_function_creators",
    "system_versioning_insert_history",
    "secure_timestamp",
];

/// Session setup of the check connections: session scope only.
fn setup() -> Vec<String> {
    vec!["SET SESSION TRANSACTION READ ONLY".into()]
}

/// Opens one connection with the endpoint's connect timeout.
pub(crate) async fn open(ep: &Endpoint) -> Result<(Conn, ConnInfo), ConnectFailure> {
    let started = Instant::now();
    let timeout = if ep.connect_timeout.is_zero() {
        Duration::from_secs(10)
    } else {
        ep.connect_timeout
    };
    ep.prepare_tls().await;
    // the handshake in a task of its own: a client-library panic is a failed check, not a crash
    match ferry_core::connect::spawn_connect(ep.opts(setup()), timeout).await {
        Ok(mut c) => {
            let millis = started.elapsed().as_millis() as u64;
            let status: Vec<(String, String)> = c
                .query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
                .await
                .unwrap_or_default();
            let get = |n: &str| {
                status
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
            };
            let tls = get("Ssl_version").map(|v| (v, get("Ssl_cipher").unwrap_or_default()));
            Ok((c, ConnInfo { millis, tls }))
        }
        Err(Failure::Client(e)) => Err(match ferry_core::tls::explain(&e, ep.side(), &ep.host, &ep.tls) {
            Some(m) => ConnectFailure::Tls(m),
            None => classify(&e),
        }),
        Err(Failure::Panicked(m)) => Err(ConnectFailure::Other(m)),
        Err(Failure::Timeout(t)) => Err(ConnectFailure::Timeout { secs: t.as_secs() }),
    }
}

fn skip_connect(side: &str) -> Skip {
    Skip(format!("skipped: cannot connect to the {side}"))
}

/// Gathers all facts; `step(done)` after each of the [`GATHER_STEPS`] steps.
pub(crate) async fn gather(input: &CheckInput, step: impl Fn(usize)) -> Facts {
    let (s, t) = tokio::join!(open(&input.source), open(&input.target));
    step(1);
    let (mut sconn, source_conn) = split(s);
    let (mut tconn, target_conn) = split(t);

    let (source, target) = tokio::join!(
        server_facts_opt(sconn.as_mut(), &input.source, "source"),
        server_facts_opt(tconn.as_mut(), &input.target, "target"),
    );
    step(2);

    let mysql_to_mariadb = matches!(
        (&source, &target),
        (Ok(s), Ok(t)) if !s.is_mariadb() && t.is_mariadb()
    );
    if let Some(c) = sconn.as_mut() {
        // MySQL 8: TABLE_ROWS / DATA_LENGTH / AVG_ROW_LENGTH fresh, not a day old (session scope).
        catalog::fresh_statistics(c).await;
    }
    let objects = match sconn.as_mut() {
        None => Err(skip_connect("source")),
        Some(c) => source_objects(c, &input.selection, mysql_to_mariadb)
            .await
            .map_err(|e| Skip(format!("could not read the selected objects on the source: {e}"))),
    };
    step(3);

    let target_lctn = target
        .as_ref()
        .ok()
        .and_then(|t| t.var_u64("lower_case_table_names"));
    let target_objects = match (tconn.as_mut(), &objects) {
        (None, _) => Err(skip_connect("target")),
        (Some(_), Err(_)) => Err(Skip(
            "skipped: the selected objects could not be read on the source".into(),
        )),
        (Some(c), Ok(o)) => Ok(target_objects(c, &input.selection, o, target_lctn.unwrap_or(0)).await),
    };
    let accounts = match &input.accounts {
        None => None,
        Some(a) => Some(match (sconn.as_mut(), tconn.as_mut(), &source, &target) {
            (Some(sc), Some(tc), Ok(sf), Ok(tf)) => {
                crate::accounts::gather(sc, tc, sf, tf, a, &input.selection).await
            }
            _ => Err("skipped: cannot read both servers".into()),
        }),
    };
    step(4);

    for c in [sconn, tconn].into_iter().flatten() {
        let _ = c.disconnect().await;
    }
    Facts {
        source_conn,
        target_conn,
        source,
        target,
        objects,
        target_objects,
        accounts,
    }
}

fn split(r: Result<(Conn, ConnInfo), ConnectFailure>) -> (Option<Conn>, Result<ConnInfo, ConnectFailure>) {
    match r {
        Ok((c, i)) => (Some(c), Ok(i)),
        Err(e) => (None, Err(e)),
    }
}

async fn server_facts_opt(conn: Option<&mut Conn>, ep: &Endpoint, side: &str) -> Result<ServerFacts, Skip> {
    match conn {
        None => Err(skip_connect(side)),
        Some(c) => server_facts(c, ep)
            .await
            .map_err(|e| Skip(format!("could not read the {side}'s settings: {e}"))),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn server_facts(conn: &mut Conn, ep: &Endpoint) -> Result<ServerFacts, GatherError> {
    let list = VARIABLES
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(",");
    let rows: Vec<(String, Option<String>)> = conn
        .query(format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ({list})"))
        .await
        .ctx("reading global variables")?;
    let vars: BTreeMap<String, String> = rows
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.unwrap_or_default()))
        .collect();
    let flavor = vars.get("version").map(|v| Flavor::from_version(v));
    let account: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .ctx("reading CURRENT_USER()")?;
    let grants: Result<Vec<String>, String> = conn.query("SHOW GRANTS").await.map_err(|e| e.to_string());
    let coll: Result<Vec<(String, Option<String>)>, String> = conn
        .query("SELECT COLLATION_NAME, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
        .await
        .map_err(|e| e.to_string());
    // MariaDB 10.10+: charset-specific names of the charset-independent UCA 14 collations.
    let full: Vec<String> = conn
        .query("SELECT FULL_COLLATION_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY")
        .await
        .unwrap_or_default();
    let (collations, charsets) = match coll {
        Ok(rows) => {
            let mut c: BTreeSet<String> = rows.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
            c.extend(full.iter().map(|n| n.to_ascii_lowercase()));
            let s = rows
                .iter()
                .filter_map(|(_, cs)| cs.as_ref().map(|x| x.to_ascii_lowercase()))
                .collect();
            (Ok(c), Ok(s))
        }
        Err(e) => (Err(e.clone()), Err(e)),
    };
    let engines: Result<Vec<(String, String)>, String> = conn
        .query("SELECT ENGINE, SUPPORT FROM information_schema.ENGINES")
        .await
        .map_err(|e| e.to_string());
    let engines = engines.map(|rows| {
        rows.into_iter()
            .filter(|(_, s)| s.eq_ignore_ascii_case("YES") || s.eq_ignore_ascii_case("DEFAULT"))
            .map(|(e, _)| e.to_ascii_uppercase())
            .collect()
    });
    let before = now_ms();
    let server_ms: Option<i64> = conn
        .query_first("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED)")
        .await
        .ok()
        .flatten();
    let after = now_ms();
    let datadir_free = match vars.get("datadir") {
        _ if !crate::capacity::is_local(&ep.host) => {
            Err(format!("the server runs on {}, not on this machine", ep.host))
        }
        None => Err("@@datadir is unknown".to_string()),
        Some(dir) => crate::capacity::free_bytes(dir).await,
    };
    Ok(ServerFacts {
        flavor,
        vars,
        account: account.unwrap_or_default(),
        grants,
        collations,
        charsets,
        engines,
        clock_offset_ms: server_ms.map(|s| s - (before + after) / 2),
        datadir_free,
    })
}

type InfoRow = (String, Option<String>, Option<u64>, Option<u64>);
type FkRow = (String, String, String, String, Option<String>, Option<String>);

async fn source_objects(
    conn: &mut Conn,
    sel: &Selection,
    want_ddl: bool,
) -> Result<SourceObjects, GatherError> {
    let mut o = SourceObjects::default();
    let all = catalog::list_databases(conn).await?;
    let mut chosen: Vec<(String, Vec<String>)> = Vec::new();
    if matches!(sel.objects, ObjectSelection::WholeInstance) {
        for db in all {
            let tables = catalog::list_tables(conn, &db).await?;
            chosen.push((db, tables));
        }
    } else {
        for d in sel.listed_dbs() {
            if is_system_schema(&d.name) {
                o.missing.push(format!(
                    "database `{}` (a system schema: Ferry never migrates it)",
                    d.name
                ));
                continue;
            }
            if !all.contains(&d.name) {
                o.missing.push(format!("database `{}`", d.name));
                continue;
            }
            let tables = catalog::list_tables(conn, &d.name).await?;
            let picked = match &d.tables {
                None => tables,
                Some(ts) => {
                    let mut v = Vec::new();
                    for t in ts {
                        if tables.contains(&t.name) {
                            v.push(t.name.clone());
                        } else {
                            o.missing.push(format!("table `{}`.`{}`", d.name, t.name));
                        }
                    }
                    v
                }
            };
            chosen.push((d.name.clone(), picked));
        }
    }

    let schemata: Vec<(String, Option<String>, Option<String>)> = conn
        .query(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
             FROM information_schema.SCHEMATA",
        )
        .await
        .ctx("reading database defaults")?;
    for (db, tables) in &chosen {
        let (charset, collation) = schemata
            .iter()
            .find(|(n, _, _)| n == db)
            .map(|(_, c, l)| (c.clone(), l.clone()))
            .unwrap_or((None, None));
        o.dbs.push(DbInfo {
            name: db.clone(),
            charset,
            collation,
        });
        if !tables.is_empty() {
            o.tables.extend(read_tables_settled(conn, db, tables).await?);
        }
        if want_ddl {
            for t in tables {
                let ddl = conn
                    .query_first::<(String, String), _>(format!("SHOW CREATE TABLE {}", qualified(db, t)))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map(|(_, text)| text).ok_or_else(|| "no row".to_string()));
                o.ddl.push((format!("{db}.{t}"), ddl));
            }
        }
        let info: Vec<InfoRow> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_COLLATION, AVG_ROW_LENGTH, INDEX_LENGTH \
                 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (db,),
            )
            .await
            .ctx("reading table statistics")?;
        for (t, coll, avg, idx) in info {
            if tables.contains(&t) {
                o.extra.insert(
                    (db.clone(), t),
                    TableExtra {
                        collation: coll,
                        avg_row_length: avg.unwrap_or(0),
                        index_length: idx.unwrap_or(0),
                    },
                );
            }
        }
        let fks: Vec<FkRow> = conn
            .exec(
                "SELECT TABLE_NAME, CONSTRAINT_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME, \
                 DELETE_RULE, UPDATE_RULE \
                 FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?",
                (db,),
            )
            .await
            .ctx("reading foreign keys")?;
        for (t, name, ref_db, ref_table, delete_rule, update_rule) in fks {
            if tables.contains(&t) {
                o.foreign_keys.push(ForeignKey {
                    db: db.clone(),
                    table: t,
                    name,
                    ref_db,
                    ref_table,
                    delete_rule: delete_rule.unwrap_or_default(),
                    update_rule: update_rule.unwrap_or_default(),
                });
            }
        }
        let triggers: Vec<(String, String, String)> = conn
            .exec(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, DEFINER FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = ?",
                (db,),
            )
            .await
            .ctx("reading triggers")?;
        for (name, table, definer) in triggers {
            if tables.contains(&table) {
                o.defined.push(Defined {
                    kind: "trigger".into(),
                    db: db.clone(),
                    name,
                    definer,
                });
            }
        }
        if !sel.whole_db(db) {
            continue;
        }
        let views: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?",
                (db,),
            )
            .await
            .ctx("reading views")?;
        let sequences = catalog::list_sequences(conn, db).await?;
        o.sequences.extend(sequences.into_iter().map(|s| (db.clone(), s)));
        for (name, definer) in views {
            o.views.push((db.clone(), name.clone()));
            o.defined.push(Defined {
                kind: "view".into(),
                db: db.clone(),
                name,
                definer,
            });
        }
        let routines: Vec<(String, String, String, i64)> = conn
            .exec(
                "SELECT ROUTINE_TYPE, ROUTINE_NAME, DEFINER, ROUTINE_DEFINITION IS NULL \
                 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?",
                (db,),
            )
            .await
            .ctx("reading routines")?;
        // SHOW ... STATUS lists names without needing access to the bodies.
        for kind in ["PROCEDURE", "FUNCTION"] {
            let shown: Result<Vec<mysql_async::Row>, _> = conn
                .query(format!("SHOW {kind} STATUS WHERE Db = {}", quote_str(db)))
                .await;
            match shown {
                Ok(rows) => {
                    for row in rows {
                        let Some(name) = row.get_opt::<String, _>(1).and_then(Result::ok) else {
                            continue;
                        };
                        let listed = routines
                            .iter()
                            .any(|(k, n, _, _)| n == &name && k.eq_ignore_ascii_case(kind));
                        if !listed {
                            o.routines_unlisted
                                .push(format!("{} {db}.{name}", kind.to_ascii_lowercase()));
                        }
                    }
                }
                Err(e) => o.routine_status_error = Some(e.to_string()),
            }
        }
        for (kind, name, definer, no_body) in routines {
            if no_body != 0 {
                o.routines_without_body
                    .push(format!("{} {db}.{name}", kind.to_ascii_lowercase()));
            }
            o.defined.push(Defined {
                kind: kind.to_ascii_lowercase(),
                db: db.clone(),
                name,
                definer,
            });
        }
        let events: Vec<(String, String)> = conn
            .exec(
                "SELECT EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
                (db,),
            )
            .await
            .ctx("reading events")?;
        for (name, definer) in events {
            o.defined.push(Defined {
                kind: "event".into(),
                db: db.clone(),
                name,
                definer,
            });
        }
    }
    Ok(o)
}

/// [`catalog::read_tables`], tolerating tables dropped since they were listed (a live source):
/// on "not found", the still existing ones are read again, once.
async fn read_tables_settled(
    conn: &mut Conn,
    db: &str,
    tables: &[String],
) -> Result<Vec<TableSchema>, GatherError> {
    match catalog::read_tables(conn, db, tables).await {
        Err(ferry_core::CoreError::NotFound { .. }) => {
            let now = catalog::list_tables(conn, db).await?;
            let still: Vec<String> = tables.iter().filter(|t| now.contains(t)).cloned().collect();
            Ok(catalog::read_tables(conn, db, &still).await?)
        }
        r => Ok(r?),
    }
}

/// Names compare case-insensitively on a target with lower_case_table_names ≠ 0.
fn same_name(a: &str, b: &str, lctn: u64) -> bool {
    if lctn == 0 {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

async fn target_objects(conn: &mut Conn, sel: &Selection, o: &SourceObjects, lctn: u64) -> TargetObjects {
    let mut t = TargetObjects {
        existing: Vec::new(),
        existing_views: Vec::new(),
        accounts: Ok(BTreeSet::new()),
    };
    // Target names of the selected tables and views, by target database.
    let mut wanted: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for table in &o.tables {
        if let Some((db, name)) = sel.target_table(&table.db, &table.name) {
            wanted.entry(db).or_default().push((name, false));
        }
    }
    for (db, view) in &o.views {
        if let Some(tdb) = sel.target_db(db) {
            wanted.entry(tdb).or_default().push((view.clone(), true));
        }
    }
    for (db, names) in &wanted {
        let present: Vec<(String, String)> = match conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (db,),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                t.existing.push(ExistingTable {
                    target: format!("{db}.*"),
                    non_empty: Err(format!("cannot list the tables: {e}")),
                });
                continue;
            }
        };
        for (name, is_view) in names {
            let Some((real, kind)) = present.iter().find(|(n, _)| same_name(n, name, lctn)) else {
                continue;
            };
            if *is_view || kind.eq_ignore_ascii_case("VIEW") {
                t.existing_views.push(format!("{db}.{real}"));
                continue;
            }
            let non_empty = conn
                .query_first::<u8, _>(format!("SELECT 1 FROM {} LIMIT 1", qualified(db, real)))
                .await
                .map(|r| r.is_some())
                .map_err(|e| e.to_string());
            t.existing.push(ExistingTable {
                target: format!("{db}.{real}"),
                non_empty,
            });
        }
    }
    t.accounts = conn
        .query::<(String, String), _>("SELECT User, Host FROM mysql.user")
        .await
        .map(|rows| rows.into_iter().collect())
        .map_err(|e| e.to_string());
    t
}
