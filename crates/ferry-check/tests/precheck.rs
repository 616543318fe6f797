//! End-to-end pre-check against the two test servers (`scripts/servers.sh start`).
//!
//! Only databases `fk_chk_*` and accounts `fchk_*` are created, and dropped at the end. Global
//! variables are never changed: the binlog items' FAILED branches are unit-tested on hand-made
//! facts; here the checks run against what the servers really report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use ferry_check::{run_checks, summary, CheckInput, CheckItem, CheckStatus};
use ferry_core::selection::{DbSelection, ObjectSelection, TableSelection};
use ferry_core::{Endpoint, Secret, Selection};
use ferry_testkit::{connect, exec, fresh_db, source, target};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

fn whole(db: &str) -> DbSelection {
    DbSelection {
        name: db.into(),
        target: db.into(),
        tables: None,
        table_renames: BTreeMap::new(),
    }
}

fn tables(db: &str, names: &[&str]) -> DbSelection {
    DbSelection {
        name: db.into(),
        target: db.into(),
        tables: Some(
            names
                .iter()
                .map(|t| TableSelection {
                    name: t.to_string(),
                    target: t.to_string(),
                })
                .collect(),
        ),
        table_renames: BTreeMap::new(),
    }
}

fn input(src: Endpoint, tgt: Endpoint, dbs: Vec<DbSelection>) -> CheckInput {
    CheckInput {
        source: src,
        target: tgt,
        selection: Selection {
            mapping: Default::default(),
            objects: ObjectSelection::Databases(dbs),
        },
        incremental: true,
        fail_on_nonempty_target_tables: true,
        allow_downgrade: false,
        estimated_load_seconds: Some(600),
        target_binlog: true,
        snapshot_mode: ferry_core::SnapshotMode::Auto,
        accounts: None,
        target_read_only: false,
    }
}

fn item<'a>(items: &'a [CheckItem], id: &str) -> &'a CheckItem {
    items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id}"))
}

fn report(items: &[CheckItem]) -> String {
    items
        .iter()
        .map(|i| format!("{:?} {}: {}", i.status, i.id, i.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_item(items: &[CheckItem], id: &str, status: CheckStatus, needles: &[&str]) {
    let i = item(items, id);
    assert_eq!(
        i.status,
        status,
        "{id}: {}\n\nall items:\n{}",
        i.message,
        report(items)
    );
    for n in needles {
        assert!(i.message.contains(n), "{id} should mention {n:?}: {}", i.message);
    }
}

/// What the checks must not change: global variables (GTID positions excluded: other tests write
/// to these shared servers), the given databases with their tables and row counts, and the `fchk_*`
/// accounts the test owns. (`ferry_meta` is left out: other engineers' tests write it concurrently.)
async fn state(conn: &mut Conn, dbs: &[&str], users: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = conn
        .query(
            "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES \
             WHERE VARIABLE_NAME NOT LIKE 'GTID%'",
        )
        .await?
        .into_iter()
        .map(|(k, v): (String, String)| (format!("var {k}"), v))
        .collect();
    for db in dbs {
        let s: Option<String> = conn
            .exec_first(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (db,),
            )
            .await?;
        out.insert(format!("db {db}"), s.is_some().to_string());
        let t: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (db,),
            )
            .await?;
        for (name, kind) in t {
            let rows = if kind == "BASE TABLE" {
                let n: Option<u64> = conn
                    .query_first(format!("SELECT COUNT(*) FROM `{db}`.`{name}`"))
                    .await?;
                n.unwrap_or(0).to_string()
            } else {
                kind
            };
            out.insert(format!("table {db}.{name}"), rows);
        }
    }
    for user in users {
        let hosts: Vec<String> = conn
            .exec(
                "SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host",
                (user,),
            )
            .await?;
        out.insert(format!("user {user}"), hosts.join(","));
    }
    Ok(out)
}

/// Panics with the differences between two states.
fn assert_unchanged(side: &str, before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) {
    let mut diff = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            Some(w) if w == v => {}
            other => diff.push(format!("{k}: {v:?} -> {other:?}")),
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        diff.push(format!("{k}: new"));
    }
    assert!(diff.is_empty(), "the checks changed the {side}: {diff:#?}");
}

#[tokio::test]
async fn good_setup_has_no_failed_item_and_changes_nothing() -> Result<()> {
    let db = "fk_chk_good";
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    // MariaDB has no information_schema_stats_expiry: the catalog must not set it there.
    assert!(!ferry_core::catalog::is_mysql8(&s), "{:?}", s.server_version());
    fresh_db(&mut s, db).await?;
    exec(
        &mut s,
        "CREATE TABLE fk_chk_good.parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_good.child (id INT PRIMARY KEY, p INT, at DATETIME, \
           FOREIGN KEY (p) REFERENCES fk_chk_good.parent (id)) ENGINE=InnoDB; \
         INSERT INTO fk_chk_good.parent VALUES (1, 'a'), (2, 'b'); \
         INSERT INTO fk_chk_good.child VALUES (1, 1, NOW()); \
         CREATE VIEW fk_chk_good.v AS SELECT id FROM fk_chk_good.parent; \
         CREATE SEQUENCE fk_chk_good.sq",
    )
    .await?;
    exec(&mut t, "DROP DATABASE IF EXISTS fk_chk_good").await?;
    let before = (state(&mut s, &[db], &[]).await?, state(&mut t, &[db], &[]).await?);

    let calls = AtomicUsize::new(0);
    let last = AtomicUsize::new(0);
    let items = run_checks(&input(source(), target(), vec![whole(db)]), |done, total| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert!(done <= total);
        last.store(done * 1000 + total, Ordering::SeqCst);
    })
    .await;
    println!("{}", report(&items));

    assert_unchanged("source", &before.0, &state(&mut s, &[db], &[]).await?);
    assert_unchanged("target", &before.1, &state(&mut t, &[db], &[]).await?);

    let (passed, warnings, failed) = summary(&items);
    assert_eq!(failed, 0, "{}", report(&items));
    assert_eq!(passed + warnings, items.len());
    assert_eq!(calls.load(Ordering::SeqCst), items.len() + 4);
    let l = last.load(Ordering::SeqCst);
    assert_eq!(l / 1000, l % 1000, "progress ends at done == total");

    for id in [
        "source_connection",
        "target_connection",
        "source_version_supported",
        "version_direction",
        "source_privileges_full",
        "source_privileges_incremental",
        "target_privileges",
        "source_log_bin",
        "source_binlog_format",
        "source_binlog_row_image",
        "source_binlog_checksum",
        "source_log_bin_compress",
        "source_binlog_retention",
        "source_server_id",
        "source_gtid_mode",
        "charsets_collations",
        "source_objects_exist",
        "target_existing_tables",
        "tables_without_key",
        "storage_engines",
        "foreign_keys_to_unselected",
        "definers_on_target",
        "target_local_infile",
        "target_sql_log_bin",
        "system_versioned_tables",
        "sequences_on_target",
        "target_require_primary_key",
        "target_invisible_primary_key",
        "target_function_creators",
        "mysql_only_ddl",
        "source_routine_bodies",
        "accounts",
        "target_read_only",
    ] {
        assert_item(&items, id, CheckStatus::Passed, &[]);
    }
    assert_item(&items, "source_connection", CheckStatus::Passed, &["MariaDB"]);
    assert_item(
        &items,
        "sequences_on_target",
        CheckStatus::Passed,
        &["fk_chk_good.sq"],
    );
    assert_item(
        &items,
        "source_objects_exist",
        CheckStatus::Passed,
        &["2 table(s)"],
    );
    assert_item(
        &items,
        "source_gtid_mode",
        CheckStatus::Passed,
        &["GTID position"],
    );
    assert_ne!(item(&items, "target_disk_space").status, CheckStatus::Failed);

    fresh_db(&mut s, db).await?;
    exec(&mut s, "DROP DATABASE fk_chk_good").await?;
    Ok(())
}

#[tokio::test]
async fn low_privilege_account_names_missing_grants() -> Result<()> {
    let db = "fk_chk_db";
    let mut s = connect(&source()).await?;
    fresh_db(&mut s, db).await?;
    exec(
        &mut s,
        "CREATE TABLE fk_chk_db.t (id INT PRIMARY KEY); \
         CREATE USER IF NOT EXISTS 'fchk_low'@'%' IDENTIFIED BY 'fchk-low-pw'; \
         GRANT SELECT ON fk_chk_db.* TO 'fchk_low'@'%'",
    )
    .await?;
    let mut low = source();
    low.user = "fchk_low".into();
    low.password = Secret::new("fchk-low-pw");
    let items = run_checks(&input(low, target(), vec![whole(db)]), |_, _| {}).await;
    println!("{}", report(&items));
    exec(
        &mut s,
        "DROP USER IF EXISTS 'fchk_low'@'%'; DROP DATABASE fk_chk_db",
    )
    .await?;

    assert_item(&items, "source_connection", CheckStatus::Passed, &[]);
    assert_item(
        &items,
        "source_privileges_full",
        CheckStatus::Failed,
        &[
            "SHOW VIEW on `fk_chk_db`.*",
            "TRIGGER on `fk_chk_db`.*",
            "EVENT on `fk_chk_db`.*",
            "REPLICATION CLIENT on *.*",
            "GRANT SHOW VIEW, TRIGGER, EVENT ON `fk_chk_db`.* TO 'fchk_low'@'%';",
            // MariaDB, SnapshotMode auto: lock-free without RELOAD
            "GRANT REPLICATION CLIENT ON *.* TO 'fchk_low'@'%';",
            "RELOAD is not needed",
        ],
    );
    assert!(!item(&items, "source_privileges_full")
        .message
        .contains("SELECT on"));
    assert_item(
        &items,
        "source_privileges_incremental",
        CheckStatus::Failed,
        &[
            "REPLICATION SLAVE",
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'fchk_low'@'%';",
        ],
    );
    // The low account still sees its database and the server's settings.
    assert_item(&items, "source_objects_exist", CheckStatus::Passed, &[]);
    assert_item(&items, "source_binlog_format", CheckStatus::Passed, &[]);
    Ok(())
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn connection_failures_are_told_apart() -> Result<()> {
    let mut bad_pw = source();
    bad_pw.password = Secret::new("definitely-not-the-password");
    let mut closed = target();
    closed.port = closed_port();
    let items = run_checks(&input(bad_pw, closed, vec![whole("fk_chk_none")]), |_, _| {}).await;
    println!("{}", report(&items));
    assert_item(
        &items,
        "source_connection",
        CheckStatus::Failed,
        &["wrong password", "1045"],
    );
    assert!(!item(&items, "source_connection")
        .message
        .contains("definitely-not"));
    assert_item(
        &items,
        "target_connection",
        CheckStatus::Failed,
        &["connection refused", "nothing listens"],
    );
    for id in [
        "source_binlog_format",
        "source_privileges_full",
        "source_objects_exist",
    ] {
        assert_item(
            &items,
            id,
            CheckStatus::Failed,
            &["skipped: cannot connect to the source"],
        );
    }
    assert_item(
        &items,
        "target_privileges",
        CheckStatus::Failed,
        &["skipped: cannot connect to the target"],
    );
    assert_eq!(
        summary(&items).0 + summary(&items).1 + summary(&items).2,
        items.len()
    );

    let mut unknown = source();
    unknown.host = "fchk-no-such-host.invalid".into();
    unknown.connect_timeout = Duration::from_secs(5);
    let items = run_checks(&input(unknown, target(), vec![whole("fk_chk_none")]), |_, _| {}).await;
    println!("{}", report(&items));
    let msg = &item(&items, "source_connection").message;
    assert!(
        msg.contains("unknown host") || msg.contains("no answer"),
        "unknown host: {msg}"
    );
    assert_item(&items, "target_connection", CheckStatus::Passed, &[]);

    // A locked account (MariaDB 4151) and one that REQUIRE SSL (MariaDB answers 1045).
    let mut s = connect(&source()).await?;
    exec(
        &mut s,
        "CREATE USER IF NOT EXISTS 'fchk_locked'@'%' IDENTIFIED BY 'fchk-pw' ACCOUNT LOCK; \
         CREATE USER IF NOT EXISTS 'fchk_ssl'@'%' IDENTIFIED BY 'fchk-pw' REQUIRE SSL",
    )
    .await?;
    let as_user = |user: &str| {
        let mut e = source();
        e.user = user.into();
        e.password = Secret::new("fchk-pw");
        e
    };
    let locked = run_checks(&input(as_user("fchk_locked"), target(), vec![]), |_, _| {}).await;
    // Without TLS (servers.sh gives the test servers TLS, which `preferred` would use).
    let mut plain = as_user("fchk_ssl");
    plain.tls.mode = ferry_core::tls::TlsMode::Disabled;
    let ssl = run_checks(&input(plain, target(), vec![]), |_, _| {}).await;
    exec(
        &mut s,
        "DROP USER IF EXISTS 'fchk_locked'@'%'; DROP USER IF EXISTS 'fchk_ssl'@'%'",
    )
    .await?;
    assert_item(
        &locked,
        "source_connection",
        CheckStatus::Failed,
        &["locked", "ACCOUNT UNLOCK"],
    );
    assert_item(
        &ssl,
        "source_connection",
        CheckStatus::Failed,
        &["set the TLS settings.Mode to required"],
    );
    Ok(())
}

#[tokio::test]
async fn object_problems_are_reported_and_nothing_changes() -> Result<()> {
    let (db, vdb) = ("fk_chk_obj", "fk_chk_view");
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    fresh_db(&mut s, vdb).await?;
    exec(
        &mut s,
        "CREATE TABLE fk_chk_obj.myi (id INT PRIMARY KEY) ENGINE=MyISAM; \
         CREATE TABLE fk_chk_obj.keyless (a INT, b INT, UNIQUE KEY (b)) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_obj.parent (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_obj.child (id INT PRIMARY KEY, p INT, \
           CONSTRAINT fk_child_parent FOREIGN KEY (p) REFERENCES fk_chk_obj.parent (id)) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_obj.existing (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_obj.empty_there (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_view.base (id INT PRIMARY KEY); \
         CREATE USER IF NOT EXISTS 'fchk_definer'@'%'; \
         CREATE DEFINER = 'fchk_definer'@'%' SQL SECURITY DEFINER VIEW fk_chk_view.v AS \
           SELECT id FROM fk_chk_view.base",
    )
    .await?;
    fresh_db(&mut t, db).await?;
    exec(
        &mut t,
        "DROP USER IF EXISTS 'fchk_definer'@'%'; DROP DATABASE IF EXISTS fk_chk_view; \
         CREATE TABLE fk_chk_obj.existing (id INT PRIMARY KEY); \
         INSERT INTO fk_chk_obj.existing VALUES (1); \
         CREATE TABLE fk_chk_obj.empty_there (id INT PRIMARY KEY)",
    )
    .await?;
    let before = (
        state(&mut s, &[db, vdb], &["fchk_definer"]).await?,
        state(&mut t, &[db, vdb], &["fchk_definer"]).await?,
    );

    let selection = vec![
        tables(
            db,
            &[
                "myi",
                "keyless",
                "child",
                "existing",
                "empty_there",
                "no_such_table",
            ],
        ),
        whole(vdb),
        whole("fk_chk_missing"),
    ];
    let mut inp = input(source(), target(), selection);
    let items = run_checks(&inp, |_, _| {}).await;
    println!("{}", report(&items));
    assert_unchanged(
        "source",
        &before.0,
        &state(&mut s, &[db, vdb], &["fchk_definer"]).await?,
    );
    assert_unchanged(
        "target",
        &before.1,
        &state(&mut t, &[db, vdb], &["fchk_definer"]).await?,
    );

    assert_item(
        &items,
        "source_objects_exist",
        CheckStatus::Failed,
        &["database `fk_chk_missing`", "table `fk_chk_obj`.`no_such_table`"],
    );
    assert_item(
        &items,
        "storage_engines",
        CheckStatus::Warning,
        &["fk_chk_obj.myi (MyISAM)"],
    );
    assert_item(
        &items,
        "tables_without_key",
        CheckStatus::Warning,
        &["fk_chk_obj.keyless"],
    );
    assert!(!item(&items, "tables_without_key")
        .message
        .contains("fk_chk_obj.child"));
    assert_item(
        &items,
        "target_existing_tables",
        CheckStatus::Failed,
        &[
            "fk_chk_obj.existing",
            "empty tables: fk_chk_obj.empty_there",
            "ExistingTables",
        ],
    );
    assert_item(
        &items,
        "foreign_keys_to_unselected",
        CheckStatus::Warning,
        &["fk_chk_obj.child (fk_child_parent → fk_chk_obj.parent, ON DELETE RESTRICT, ON UPDATE RESTRICT)"],
    );
    assert_item(
        &items,
        "definers_on_target",
        CheckStatus::Warning,
        &[
            "fchk_definer@%",
            "view fk_chk_view.v",
            "rewrite",
            "CREATE USER 'fchk_definer'@'%';",
        ],
    );

    // ExistingTables other than fail: a non-empty target table is only a warning.
    inp.fail_on_nonempty_target_tables = false;
    let items = run_checks(&inp, |_, _| {}).await;
    assert_item(
        &items,
        "target_existing_tables",
        CheckStatus::Warning,
        &["fk_chk_obj.existing"],
    );

    exec(
        &mut s,
        "DROP DATABASE fk_chk_obj; DROP DATABASE fk_chk_view; DROP USER IF EXISTS 'fchk_definer'@'%'",
    )
    .await?;
    exec(&mut t, "DROP DATABASE fk_chk_obj").await?;
    Ok(())
}

#[tokio::test]
async fn foreign_keys_across_the_selection_boundary() -> Result<()> {
    let db = "fk_chk_fkx";
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    exec(
        &mut s,
        "CREATE TABLE fk_chk_fkx.parent (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_fkx.casc (id INT PRIMARY KEY, p INT, \
           CONSTRAINT fk_casc FOREIGN KEY (p) REFERENCES fk_chk_fkx.parent (id) \
           ON DELETE CASCADE ON UPDATE SET NULL) ENGINE=InnoDB; \
         CREATE TABLE fk_chk_fkx.restr (id INT PRIMARY KEY, p INT, \
           CONSTRAINT fk_restr FOREIGN KEY (p) REFERENCES fk_chk_fkx.parent (id) \
           ON DELETE NO ACTION) ENGINE=InnoDB",
    )
    .await?;
    exec(&mut t, "DROP DATABASE IF EXISTS fk_chk_fkx").await?;

    // Only the restricting child: a WARNING (the target's FK would reference a missing table).
    let inp = input(source(), target(), vec![tables(db, &["restr"])]);
    let items = run_checks(&inp, |_, _| {}).await;
    assert_item(
        &items,
        "foreign_keys_to_unselected",
        CheckStatus::Warning,
        &[
            "fk_chk_fkx.restr (fk_restr → fk_chk_fkx.parent, ON DELETE NO ACTION, ON UPDATE RESTRICT)",
            "Select the parent table(s) too: fk_chk_fkx.parent",
        ],
    );

    // The cascading child in an incremental job: FAILED, naming the rules.
    let mut inp = input(source(), target(), vec![tables(db, &["casc", "restr"])]);
    let items = run_checks(&inp, |_, _| {}).await;
    println!("{}", report(&items));
    assert_item(
        &items,
        "foreign_keys_to_unselected",
        CheckStatus::Failed,
        &[
            "fk_chk_fkx.casc (fk_casc → fk_chk_fkx.parent, ON DELETE CASCADE, ON UPDATE SET NULL)",
            "fk_chk_fkx.restr (fk_restr",
            "not written to the binlog",
            "Select the parent table(s) too: fk_chk_fkx.parent",
        ],
    );
    // The same selection for a full-only job: a WARNING.
    inp.incremental = false;
    let items = run_checks(&inp, |_, _| {}).await;
    assert_item(
        &items,
        "foreign_keys_to_unselected",
        CheckStatus::Warning,
        &["fk_chk_fkx.casc (fk_casc", "one added later"],
    );

    // The parent with its children, or the parent alone: nothing to say.
    for sel in [vec![whole(db)], vec![tables(db, &["parent"])]] {
        let items = run_checks(&input(source(), target(), sel), |_, _| {}).await;
        assert_item(&items, "foreign_keys_to_unselected", CheckStatus::Passed, &[]);
    }

    exec(&mut s, "DROP DATABASE fk_chk_fkx").await?;
    Ok(())
}

/// A target account with database privileges only: on a target that writes a binary log it may
/// not create functions or triggers (1419) nor set sql_log_bin (MariaDB: SUPER or BINLOG ADMIN).
#[tokio::test]
async fn target_account_without_super() -> Result<()> {
    let db = "fk_chk_fn";
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, db).await?;
    exec(
        &mut s,
        "CREATE TABLE fk_chk_fn.t (id INT PRIMARY KEY, n INT) ENGINE=InnoDB; \
         CREATE FUNCTION fk_chk_fn.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2; \
         CREATE TRIGGER fk_chk_fn.t_bi BEFORE INSERT ON fk_chk_fn.t FOR EACH ROW SET NEW.n = 1",
    )
    .await?;
    fresh_db(&mut t, db).await?;
    exec(
        &mut t,
        "DROP USER IF EXISTS 'fchk_tgt'@'%'; \
         CREATE USER 'fchk_tgt'@'%' IDENTIFIED BY 'fchk-tgt-pw'; \
         GRANT ALL PRIVILEGES ON fk_chk_fn.* TO 'fchk_tgt'@'%'; \
         GRANT ALL PRIVILEGES ON ferry_meta.* TO 'fchk_tgt'@'%'",
    )
    .await?;
    let mut low = target();
    low.user = "fchk_tgt".into();
    low.password = Secret::new("fchk-tgt-pw");

    // What the items predict, checked on the server itself.
    let mut lc = connect(&low).await?;
    let binlog_on: Option<u8> = lc.query_first("SELECT @@log_bin").await?;
    let trust: Option<u8> = lc.query_first("SELECT @@log_bin_trust_function_creators").await?;
    assert_eq!(
        (binlog_on, trust),
        (Some(1), Some(0)),
        "the test target writes a binlog"
    );
    let create = lc
        .query_drop("CREATE FUNCTION fk_chk_fn.f2(x INT) RETURNS INT DETERMINISTIC RETURN x")
        .await;
    assert!(
        format!("{create:?}").contains("1419"),
        "CREATE FUNCTION without SUPER: {create:?}"
    );
    let set = lc.query_drop("SET SESSION sql_log_bin = 0").await;
    assert!(set.is_err(), "sql_log_bin without SUPER or BINLOG ADMIN");
    drop(lc);

    let mut inp = input(source(), low.clone(), vec![whole(db)]);
    inp.target_binlog = false;
    let items = run_checks(&inp, |_, _| {}).await;
    println!("{}", report(&items));
    assert_item(
        &items,
        "target_function_creators",
        CheckStatus::Failed,
        &[
            "function fk_chk_fn.twice",
            "trigger fk_chk_fn.t_bi",
            "SET GLOBAL log_bin_trust_function_creators = 1",
            "GRANT SUPER ON *.* TO 'fchk_tgt'@'%'",
        ],
    );
    assert_item(
        &items,
        "target_sql_log_bin",
        CheckStatus::Failed,
        &[
            "BINLOG ADMIN or SUPER",
            "GRANT BINLOG ADMIN ON *.* TO 'fchk_tgt'@'%'",
        ],
    );
    assert_item(&items, "target_require_primary_key", CheckStatus::Passed, &[]);
    assert_item(
        &items,
        "target_invisible_primary_key",
        CheckStatus::Passed,
        &["not applicable"],
    );

    // BINLOG ADMIN is enough for sql_log_bin on MariaDB 10.5.2+.
    exec(&mut t, "GRANT BINLOG ADMIN ON *.* TO 'fchk_tgt'@'%'").await?;
    let mut lc = connect(&low).await?;
    lc.query_drop("SET SESSION sql_log_bin = 0").await?;
    drop(lc);
    let items = run_checks(&inp, |_, _| {}).await;
    assert_item(
        &items,
        "target_sql_log_bin",
        CheckStatus::Passed,
        &["BINLOG ADMIN"],
    );
    // The job's own account (ALL on *.*) passes both.
    let items = run_checks(&input(source(), target(), vec![whole(db)]), |_, _| {}).await;
    assert_item(
        &items,
        "target_function_creators",
        CheckStatus::Passed,
        &["SUPER"],
    );
    assert_item(&items, "target_sql_log_bin", CheckStatus::Passed, &["not needed"]);

    exec(
        &mut t,
        "DROP USER IF EXISTS 'fchk_tgt'@'%'; DROP DATABASE fk_chk_fn",
    )
    .await?;
    exec(&mut s, "DROP DATABASE fk_chk_fn").await?;
    Ok(())
}

/// An account with database grants and EXECUTE on one procedure: information_schema lists that
/// procedure without its body and hides the function entirely.
#[tokio::test]
async fn routines_the_source_account_cannot_read() -> Result<()> {
    let db = "fk_chk_rt";
    let mut s = connect(&source()).await?;
    fresh_db(&mut s, db).await?;
    exec(
        &mut s,
        "CREATE TABLE fk_chk_rt.t (id INT PRIMARY KEY); \
         CREATE PROCEDURE fk_chk_rt.p() SELECT 1; \
         CREATE FUNCTION fk_chk_rt.f() RETURNS INT DETERMINISTIC RETURN 1; \
         DROP USER IF EXISTS 'fchk_rt'@'%'; \
         CREATE USER 'fchk_rt'@'%' IDENTIFIED BY 'fchk-rt-pw'; \
         GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON fk_chk_rt.* TO 'fchk_rt'@'%'; \
         GRANT EXECUTE ON PROCEDURE fk_chk_rt.p TO 'fchk_rt'@'%'",
    )
    .await?;
    let mut low = source();
    low.user = "fchk_rt".into();
    low.password = Secret::new("fchk-rt-pw");
    let items = run_checks(&input(low, target(), vec![whole(db)]), |_, _| {}).await;
    println!("{}", report(&items));
    let ok = run_checks(&input(source(), target(), vec![whole(db)]), |_, _| {}).await;
    exec(
        &mut s,
        "DROP USER IF EXISTS 'fchk_rt'@'%'; DROP DATABASE fk_chk_rt",
    )
    .await?;
    assert_item(
        &items,
        "source_routine_bodies",
        CheckStatus::Failed,
        &["procedure fk_chk_rt.p", "GRANT SELECT ON *.* TO 'fchk_rt'@'%';"],
    );
    assert_item(&ok, "source_routine_bodies", CheckStatus::Passed, &[]);
    Ok(())
}

#[tokio::test]
async fn whole_instance_selection_runs_every_item() -> Result<()> {
    // The shared servers hold other tests' databases: only the shape of the result is asserted.
    let mut inp = input(source(), target(), vec![]);
    inp.selection = Selection::whole_instance();
    inp.incremental = false;
    inp.fail_on_nonempty_target_tables = false;
    let items = run_checks(&inp, |_, _| {}).await;
    println!("{}", report(&items));
    let ids: Vec<&str> = items.iter().map(|i| i.id).collect();
    let catalog: Vec<&str> = ferry_check::catalog().iter().map(|c| c.0).collect();
    assert_eq!(ids, catalog);
    for id in [
        "source_privileges_full",
        "target_privileges",
        "source_binlog_format",
    ] {
        assert_item(&items, id, CheckStatus::Passed, &[]);
    }
    assert_item(
        &items,
        "source_privileges_incremental",
        CheckStatus::Passed,
        &["not needed"],
    );
    assert_item(
        &items,
        "source_binlog_retention",
        CheckStatus::Passed,
        &["not needed"],
    );
    assert!(!item(&items, "source_objects_exist")
        .message
        .contains("could not read"));
    Ok(())
}
