//! Accounts and the protected target, against the test servers:
//!
//! - `Ferry.Accounts = copy` with a renamed database: accounts with database-, table- and
//!   column-level grants and a role (with its default role) are created on the target with their
//!   source password and exactly their grants (renamed); accounts without a grant on the
//!   selection, Ferry's own and the internal ones are not; a copied account logs in to the target
//!   with its source password and is refused what it was not granted;
//! - an account that already exists on the target is refused by name by the pre-check, and so is
//!   an account whose authentication plugin (ed25519, installed on the source only) the target
//!   lacks;
//! - `DstInfo.ReadOnly = 1`: while a MigrateType 3 job runs, a second target account without the
//!   bypass privilege is refused writes (1290); after the cut-over they are accepted and the
//!   target's read_only is back as before;
//! - `IsOverrideRoot = 1` without `Ferry.Accounts`: a `root` account the target has takes the
//!   source's password and grants, one it lacks is created; no other account is copied;
//! - through `ferry serve`: a job with `DstInfo.ReadOnly = 1` that fails after setting the target
//!   read-only keeps it so; DeleteMigrateJob puts it back; StopMigrateJob of a replaying job puts it
//!   back too;
//! - kill -9 of `ferry run` during the full load of a job with both, then resume: the accounts are
//!   not created twice (the pre-check and the job take them as the job's own), the data is exact,
//!   and read_only, still on after the kill, is restored at completion.
//!
//! Databases and accounts are named after the test (`acc_*`, `acr_*`, `ack_*`, `aco_*`; the root
//! test's own `root` accounts are on hosts no other test uses) and dropped at the end. The tests that set the target's read_only run one at a time ([`SERIAL`]).

mod common;

use anyhow::Result;
use common::*;
use ferry_core::{Endpoint, Secret};
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, scalar, source, target, wait_until};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde_json::json;

/// The target's global read_only is shared by every test of this file.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECRET_ID: &str = "AKIDferryaccountstest";
const SECRET_KEY: &str = "ferry-accounts-test-key";

/// Forgets what earlier runs of `job` recorded on the target (accounts, progress), and every
/// read_only protection (only this file's jobs set one; a run killed by a failed test leaves one
/// behind, which would keep the target read-only for the next).
async fn forget(t: &mut Conn, job: &str) {
    for table in [
        "job_account",
        "job_phase",
        "load_chunk",
        "load_job",
        "replay_checkpoint",
    ] {
        let _ = exec(t, &format!("DELETE FROM ferry_meta.{table} WHERE job = '{job}'")).await;
    }
    let _ = exec(t, "DELETE FROM ferry_meta.target_read_only").await;
}

async fn drop_accounts(conn: &mut Conn, users: &[&str], roles: &[&str]) -> Result<()> {
    for u in users {
        exec(conn, &format!("DROP USER IF EXISTS '{u}'@'%'")).await?;
    }
    for r in roles {
        exec(conn, &format!("DROP ROLE IF EXISTS {r}")).await?;
    }
    Ok(())
}

async fn grants(conn: &mut Conn, account: &str) -> Result<Vec<String>> {
    let mut g: Vec<String> = conn.query(format!("SHOW GRANTS FOR {account}")).await?;
    g.sort();
    Ok(g)
}

async fn exists(conn: &mut Conn, user: &str) -> Result<bool> {
    let n: u64 = scalar(
        conn,
        &format!("SELECT COUNT(*) FROM mysql.user WHERE User = '{user}'"),
    )
    .await?;
    Ok(n > 0)
}

/// A login to the target as `user` with `password`.
async fn login(user: &str, password: &str) -> Result<Conn> {
    let t = target();
    let ep = Endpoint::new(t.host, t.port, user.to_string(), Secret::new(password));
    connect(&ep).await
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

const USERS: &[&str] = &["acc_db", "acc_tbl", "acc_ru", "acc_other", "acc_admin"];
const ROLES: &[&str] = &["acc_role"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_copied_with_their_grants_and_passwords() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    drop_accounts(&mut s, USERS, ROLES).await?;
    drop_accounts(&mut t, USERS, ROLES).await?;
    fresh_db(&mut s, "acc_src").await?;
    fresh_db(&mut s, "acc_elsewhere").await?;
    drop_dbs(&mut t, &["acc_dst", "acc_src"]).await?;
    exec(
        &mut s,
        "CREATE TABLE acc_src.t1 (id INT PRIMARY KEY, a INT, b INT); \
         CREATE TABLE acc_src.t2 (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO acc_src.t1 VALUES (1, 10, 100), (2, 20, 200); INSERT INTO acc_src.t2 VALUES (1, 'x'); \
         CREATE TABLE acc_elsewhere.t (id INT PRIMARY KEY); \
         CREATE USER 'acc_db'@'%' IDENTIFIED BY 'acc-db-pw'; GRANT SELECT, INSERT ON acc_src.* TO 'acc_db'@'%'; \
         CREATE USER 'acc_tbl'@'%' IDENTIFIED BY 'acc-tbl-pw' WITH MAX_QUERIES_PER_HOUR 1000; \
         GRANT SELECT ON acc_src.t1 TO 'acc_tbl'@'%'; GRANT UPDATE (a) ON acc_src.t1 TO 'acc_tbl'@'%'; \
         CREATE ROLE acc_role; GRANT SELECT ON acc_src.t2 TO acc_role; \
         CREATE USER 'acc_ru'@'%' IDENTIFIED BY 'acc-ru-pw'; GRANT acc_role TO 'acc_ru'@'%'; \
         SET DEFAULT ROLE acc_role FOR 'acc_ru'@'%'; \
         CREATE USER 'acc_other'@'%' IDENTIFIED BY 'x'; GRANT SELECT ON acc_elsewhere.* TO 'acc_other'@'%'; \
         CREATE USER 'acc_admin'@'%' IDENTIFIED BY 'x'; GRANT PROCESS ON *.* TO 'acc_admin'@'%'",
    )
    .await?;
    let ferry_grants = grants(&mut t, "CURRENT_USER()").await?;
    forget(&mut t, "acc-copy").await;
    forget(&mut t, "acc-exists").await;

    let j = job(
        "acc-copy",
        json!([{"Database": "acc_src", "NewDatabase": "acc_dst"}]),
        json!({"Accounts": "copy"}),
        2,
    );
    let out = run(&write_job("acc-copy", &j), &["--restart"]);
    let o = text(&out);
    assert!(out.status.success(), "{o}");

    // Exactly the source's grants, the database renamed (the hash shows the same password).
    for account in ["'acc_db'@'%'", "'acc_tbl'@'%'", "'acc_ru'@'%'", "acc_role"] {
        let want: Vec<String> = grants(&mut s, account)
            .await?
            .into_iter()
            .map(|g| g.replace("`acc_src`", "`acc_dst`"))
            .collect();
        assert_eq!(grants(&mut t, account).await?, want, "{account}\n{o}");
    }
    for user in ["acc_other", "acc_admin"] {
        assert!(
            !exists(&mut t, user).await?,
            "{user} holds nothing on the selection: not copied"
        );
    }
    assert_eq!(
        grants(&mut t, "CURRENT_USER()").await?,
        ferry_grants,
        "Ferry's own account is unchanged (the role's CREATE ROLE grant was taken back)"
    );

    // The copied accounts log in with their source passwords and get what they were granted.
    let mut db = login("acc_db", "acc-db-pw").await?;
    exec(&mut db, "INSERT INTO acc_dst.t2 VALUES (2, 'y')").await?;
    let e = db
        .query_drop("DELETE FROM acc_dst.t2")
        .await
        .expect_err("no DELETE");
    assert_eq!(server_code(&e), Some(1142), "{e}");
    let mut tbl = login("acc_tbl", "acc-tbl-pw").await?;
    let n: u64 = scalar(&mut tbl, "SELECT COUNT(*) FROM acc_dst.t1").await?;
    assert_eq!(n, 2);
    exec(&mut tbl, "UPDATE acc_dst.t1 SET a = 11 WHERE id = 1").await?;
    let e = tbl
        .query_drop("UPDATE acc_dst.t1 SET b = 0")
        .await
        .expect_err("column b not granted");
    assert_eq!(server_code(&e), Some(1143), "{e}");
    let e = tbl
        .query_drop("SELECT * FROM acc_dst.t2")
        .await
        .expect_err("t2 not granted");
    assert_eq!(server_code(&e), Some(1142), "{e}");
    let mut ru = login("acc_ru", "acc-ru-pw").await?;
    let v: String = scalar(&mut ru, "SELECT v FROM acc_dst.t2 WHERE id = 1").await?;
    assert_eq!(v, "x", "through the default role");
    let e = login("acc_db", "wrong")
        .await
        .expect_err("a wrong password is refused");
    assert!(format!("{e:#}").contains("1045"), "{e:#}");
    drop((db, tbl, ru));

    // An account the target already has is refused by name before anything is copied.
    exec(&mut s, "GRANT SELECT ON acc_src.t2 TO 'acc_other'@'%'").await?;
    exec(&mut t, "CREATE USER 'acc_other'@'%' IDENTIFIED BY 'mine'").await?;
    drop_dbs(&mut t, &["acc_dst"]).await?;
    let j = job(
        "acc-exists",
        json!([{"Database": "acc_src", "NewDatabase": "acc_dst"}]),
        json!({"Accounts": "copy"}),
        2,
    );
    let out = run(&write_job("acc-exists", &j), &["--restart"]);
    let o = text(&out);
    assert!(!out.status.success(), "{o}");
    assert!(o.contains("'acc_other'@'%' already exists on the target"), "{o}");
    let n: u64 = scalar(
        &mut t,
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'acc_dst'",
    )
    .await?;
    assert_eq!(n, 0, "nothing was copied");

    drop_accounts(&mut s, USERS, ROLES).await?;
    drop_accounts(&mut t, USERS, ROLES).await?;
    drop_dbs(&mut s, &["acc_src", "acc_elsewhere"]).await?;
    drop_dbs(&mut t, &["acc_dst"]).await?;
    Ok(())
}

/// A target account without the privilege that passes read_only, writing its own database.
async fn writer_try(n: i64) -> Result<Result<(), mysql_async::Error>> {
    let mut w = login("acr_writer", "acr-writer-pw").await?;
    Ok(w.query_drop(format!("INSERT INTO acr_other.t VALUES ({n})"))
        .await)
}

async fn read_only_now(t: &mut Conn) -> Result<i64> {
    scalar(t, "SELECT @@GLOBAL.read_only").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_target_while_the_job_runs() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "acr_src").await?;
    drop_dbs(&mut t, &["acr_src"]).await?;
    fresh_db(&mut t, "acr_other").await?;
    drop_accounts(&mut t, &["acr_writer"], &[]).await?;
    exec(
        &mut s,
        "CREATE TABLE acr_src.t (id INT PRIMARY KEY, v INT); INSERT INTO acr_src.t VALUES (1, 1), (2, 2)",
    )
    .await?;
    exec(
        &mut t,
        "SET GLOBAL read_only = OFF; CREATE TABLE acr_other.t (id INT PRIMARY KEY); \
         CREATE USER 'acr_writer'@'%' IDENTIFIED BY 'acr-writer-pw'; GRANT ALL ON acr_other.* TO 'acr_writer'@'%'",
    )
    .await?;
    writer_try(1).await??;
    forget(&mut t, "acr-ro").await;

    let mut j = job("acr-ro", json!([{"Database": "acr_src"}]), json!({}), 3);
    j["DstInfo"]["ReadOnly"] = json!(1);
    let path = write_job("acr-ro", &j);
    let mut cmd = ferry();
    cmd.arg("run")
        .arg(&path)
        .args(["--restart", "--progress", "plain"]);
    let dir = std::env::temp_dir();
    let mut child = ferry_testkit::child::FerryChild::spawn(cmd, &dir, "acr-ro")?;
    wait_until(120, "the incremental phase", || async {
        let mut t = connect(&target()).await?;
        let n: u64 = scalar(
            &mut t,
            "SELECT COUNT(*) FROM ferry_meta.job_phase WHERE job = 'acr-ro' AND phase = 'post_data'",
        )
        .await
        .unwrap_or(0);
        Ok(n > 0)
    })
    .await?;
    child.assert_running()?;
    assert_eq!(read_only_now(&mut t).await?, 1, "{}", child.output());
    let e = writer_try(2).await?.expect_err("refused while the job runs");
    assert_eq!(server_code(&e), Some(1290), "{e}");
    // Ferry's own writes pass: the source's changes are replayed.
    exec(&mut s, "INSERT INTO acr_src.t VALUES (3, 3)").await?;
    wait_until(60, "the change replayed", || async {
        let mut t = connect(&target()).await?;
        let n: u64 = scalar(&mut t, "SELECT COUNT(*) FROM acr_src.t").await?;
        Ok(n == 3)
    })
    .await?;

    child.signal("USR1")?; // complete (cut over)
    let (st, o) = child.wait(120).await?;
    assert!(st.success(), "{o}");
    assert_eq!(read_only_now(&mut t).await?, 0, "restored as it was\n{o}");
    writer_try(4).await??;
    assert_db_equal("acr_src", "acr_src").await?;

    drop_accounts(&mut t, &["acr_writer"], &[]).await?;
    drop_dbs(&mut s, &["acr_src"]).await?;
    drop_dbs(&mut t, &["acr_src", "acr_other"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_load_then_resume_accounts_once_and_read_only_restored() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    drop_accounts(&mut s, &["ack_app"], &[]).await?;
    drop_accounts(&mut t, &["ack_app"], &[]).await?;
    fresh_db(&mut s, "ack_src").await?;
    drop_dbs(&mut t, &["ack_src"]).await?;
    exec(&mut t, "SET GLOBAL read_only = OFF").await?;
    forget(&mut t, "ack-kill").await;
    exec(
        &mut s,
        "USE ack_src; CREATE TABLE ack_src.t (id INT PRIMARY KEY, v VARCHAR(40)); \
         INSERT INTO ack_src.t SELECT seq, CONCAT('row-', seq) FROM seq_1_to_20000; \
         CREATE USER 'ack_app'@'%' IDENTIFIED BY 'ack-pw'; GRANT SELECT, UPDATE ON ack_src.t TO 'ack_app'@'%'",
    )
    .await?;

    let mut j = job(
        "ack-kill",
        json!([{"Database": "ack_src"}]),
        json!({"Accounts": "copy", "ChunkRows": 1000, "Threads": 1, "RowsPerSecond": 2000}),
        2,
    );
    j["DstInfo"]["ReadOnly"] = json!(1);
    let path = write_job("ack-kill", &j);
    kill_9_mid_load(&path, "ack-kill", 2).await?;
    assert_eq!(read_only_now(&mut t).await?, 1, "still read-only after the kill");
    assert!(exists(&mut t, "ack_app").await?, "created by the structure phase");

    // Resume (pre-check included): the job's own account is not refused nor created again.
    let out = run(&path, &[]);
    let o = text(&out);
    assert!(out.status.success(), "{o}");
    assert_db_equal("ack_src", "ack_src").await?;
    assert_eq!(read_only_now(&mut t).await?, 0, "restored at completion\n{o}");
    assert_eq!(
        grants(&mut t, "'ack_app'@'%'").await?,
        grants(&mut s, "'ack_app'@'%'").await?
    );
    let mut app = login("ack_app", "ack-pw").await?;
    let n: u64 = scalar(&mut app, "SELECT COUNT(*) FROM ack_src.t").await?;
    assert_eq!(n, 20000);
    drop(app);

    drop_accounts(&mut s, &["ack_app"], &[]).await?;
    drop_accounts(&mut t, &["ack_app"], &[]).await?;
    drop_dbs(&mut s, &["ack_src"]).await?;
    drop_dbs(&mut t, &["ack_src"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_root_gives_the_targets_root_the_sources() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    forget(&mut t, "aco-root").await;
    for c in [&mut s, &mut t] {
        exec(
            c,
            "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'aco-host.invalid', 'aco_app'@'%'",
        )
        .await?;
    }
    fresh_db(&mut s, "aco_src").await?;
    drop_dbs(&mut t, &["aco_src"]).await?;
    exec(
        &mut s,
        "CREATE TABLE aco_src.t (id INT PRIMARY KEY); INSERT INTO aco_src.t VALUES (1); \
         CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY 'aco-root-pw'; \
         GRANT SELECT, PROCESS ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
         CREATE USER 'root'@'aco-host.invalid' IDENTIFIED BY 'x'; \
         CREATE USER 'aco_app'@'%' IDENTIFIED BY 'x'; GRANT SELECT ON aco_src.* TO 'aco_app'@'%'",
    )
    .await?;
    exec(
        &mut t,
        "CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY 'the-targets-own'",
    )
    .await?;
    assert!(login("root", "the-targets-own").await.is_ok());

    let mut j = job("aco-root", json!([{"Database": "aco_src"}]), json!({}), 2);
    j["MigrateOption"]["IsOverrideRoot"] = json!(1);
    let out = run(&write_job("aco-root", &j), &["--restart"]);
    let o = text(&out);
    assert!(out.status.success(), "{o}");

    // Overwritten: the source's password and grants.
    assert!(
        login("root", "the-targets-own").await.is_err(),
        "the old password is gone\n{o}"
    );
    let mut r = login("root", "aco-root-pw").await?;
    let n: u64 = scalar(&mut r, "SELECT COUNT(*) FROM aco_src.t").await?;
    assert_eq!(n, 1);
    drop(r);
    assert_eq!(
        grants(&mut t, "'root'@'127.0.0.1'").await?,
        grants(&mut s, "'root'@'127.0.0.1'").await?
    );
    let n: u64 = scalar(
        &mut t,
        "SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Host = 'aco-host.invalid'",
    )
    .await?;
    assert_eq!(n, 1, "a root account the target lacked is created");
    assert!(
        !exists(&mut t, "aco_app").await?,
        "Ferry.Accounts is none: no other account"
    );

    for c in [&mut s, &mut t] {
        exec(
            c,
            "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'aco-host.invalid', 'aco_app'@'%'",
        )
        .await?;
    }
    drop_dbs(&mut s, &["aco_src"]).await?;
    drop_dbs(&mut t, &["aco_src"]).await?;
    Ok(())
}

/// A served job on `acd_src` with `DstInfo.ReadOnly = 1`, created and pre-checked (status 4).
async fn checked_read_only_job(
    c: &ferry_api::Client,
    t: &mut Conn,
    name: &str,
    migrate_type: i64,
) -> Result<String> {
    use common::api::{call, wait_status};
    let mut request = job(name, json!([{"Database": "acd_src"}]), json!({}), migrate_type);
    request["DstInfo"]["ReadOnly"] = json!(1);
    let id = call(c, "CreateMigrateJob", request).await?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    forget(t, &id).await;
    call(c, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
    wait_status(c, &id, 4, 120).await?;
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_jobs_restore_read_only_at_deletion_and_at_stop() -> Result<()> {
    use common::api::{call, wait_status};
    use common::serve::Serve;
    let _serial = SERIAL.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    exec(&mut t, "SET GLOBAL read_only = OFF").await?;
    fresh_db(&mut s, "acd_src").await?;
    drop_dbs(&mut t, &["acd_src"]).await?;
    exec(
        &mut s,
        "CREATE TABLE acd_src.t (id INT PRIMARY KEY); INSERT INTO acd_src.t VALUES (1)",
    )
    .await?;

    let dir = std::env::temp_dir().join(format!("ferry-accounts-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(
        &dir,
        &["--data-dir", data.to_str().unwrap_or_default()],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let c = ferry_api::Client::new(serve.url.clone(), SECRET_ID, SECRET_KEY);
    let id = checked_read_only_job(&c, &mut t, "acd-served", 2).await?;
    // After the check, a table with rows appears on the target: the structure phase, which starts
    // after the target is made read-only, fails on it (ExistingTables fail).
    exec(&mut t, "CREATE DATABASE acd_src; CREATE TABLE acd_src.t (id INT PRIMARY KEY); INSERT INTO acd_src.t VALUES (9)")
        .await?;
    call(&c, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 10, 120).await?;
    assert_eq!(
        read_only_now(&mut t).await?,
        1,
        "a failed job keeps the target read-only"
    );
    call(&c, "DeleteMigrateJob", json!({"JobId": id})).await?;
    assert_eq!(
        read_only_now(&mut t).await?,
        0,
        "restored at deletion\n{}",
        serve.stderr()
    );

    // A MigrateType 3 job keeps the target read-only while it replays; StopMigrateJob restores it.
    drop_dbs(&mut t, &["acd_src"]).await?;
    let id = checked_read_only_job(&c, &mut t, "acd-stop", 3).await?;
    call(&c, "StartMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 8, 120).await?;
    assert_eq!(read_only_now(&mut t).await?, 1, "read-only while the job replays");
    call(&c, "StopMigrateJob", json!({"JobId": id})).await?;
    wait_status(&c, &id, 10, 120).await?;
    assert_eq!(
        read_only_now(&mut t).await?,
        0,
        "restored at stop\n{}",
        serve.stderr()
    );

    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
    drop_dbs(&mut s, &["acd_src"]).await?;
    drop_dbs(&mut t, &["acd_src"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_the_target_lacks_is_named_by_the_pre_check() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    drop_accounts(&mut s, &["acp_ed"], &[]).await?;
    fresh_db(&mut s, "acp_src").await?;
    drop_dbs(&mut t, &["acp_src"]).await?;
    let installed: u64 = scalar(
        &mut s,
        "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'",
    )
    .await?;
    if installed == 0 {
        exec(&mut s, "INSTALL SONAME 'auth_ed25519'").await?;
    }
    let on_target: u64 = scalar(
        &mut t,
        "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'",
    )
    .await?;
    assert_eq!(on_target, 0, "the test needs a target without ed25519");
    exec(
        &mut s,
        "CREATE TABLE acp_src.t (id INT PRIMARY KEY); \
         CREATE USER 'acp_ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('acp-pw'); \
         GRANT SELECT ON acp_src.* TO 'acp_ed'@'%'",
    )
    .await?;
    let j = job(
        "acp-plugin",
        json!([{"Database": "acp_src"}]),
        json!({"Accounts": "copy"}),
        1,
    );
    let out = run(&write_job("acp-plugin", &j), &["--restart"]);
    let o = text(&out);
    assert!(!out.status.success(), "{o}");
    assert!(
        o.contains("'acp_ed'@'%' authenticates with ed25519, which the target does not have"),
        "{o}"
    );
    assert!(!exists(&mut t, "acp_ed").await?);

    drop_accounts(&mut s, &["acp_ed"], &[]).await?;
    if installed == 0 {
        exec(&mut s, "UNINSTALL SONAME 'auth_ed25519'").await?;
    }
    drop_dbs(&mut s, &["acp_src"]).await?;
    Ok(())
}
