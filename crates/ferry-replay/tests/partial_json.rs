//! MySQL partial JSON updates (`PARTIAL_UPDATE_ROWS_EVENT`, `binlog_row_value_options=PARTIAL_JSON`)
//! applied to the MariaDB test target (JSON is LONGTEXT there).
//!
//! No fixture holds such an event, so the tests build the binlog bytes
//! (`ferry_testkit::binlog_build`: the diff vector exactly as MySQL's `Json_diff_vector::write_binary`
//! writes it), read them with `BinlogFileReader` (the replayer's translation) and apply the rows
//! event with `apply_rows_event` (the replayer's row applier). The expected document is what the
//! same operations produce through MariaDB's own `JSON_REPLACE` / `JSON_SET` / `JSON_REMOVE` run
//! directly on a copy of the row, and what MySQL's semantics (`apply_json_diffs`) give, modelled
//! here on `serde_json` values. Diffs MySQL would reject stop the apply with a definite error and
//! leave the document as it was.

mod support;

use anyhow::{Context, Result};
use ferry_core::{ErrorKind, Selection};
use ferry_replay::apply::connect_target;
use ferry_replay::{BinlogFileReader, ConflictPolicy, EventKind, ReplayError};
use ferry_testkit::binlog_build::{BinlogFile, Cell, Col, Diff};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use proptest::prelude::*;
use serde_json::{json, Value as Json};

const COLS: [Col; 3] = [Col::Int, Col::Json, Col::Int];

async fn setup(db: &str) -> Result<Conn> {
    let mut c = connect_target(&ferry_testkit::target(), true).await?;
    ferry_testkit::fresh_db(&mut c, db).await?;
    for t in ["t", "expect"] {
        ferry_testkit::exec(
            &mut c,
            &format!("CREATE TABLE `{db}`.{t} (id INT PRIMARY KEY, doc JSON, n INT)"),
        )
        .await?;
    }
    Ok(c)
}

/// MySQL's canonical text of a document (keys by length, then bytes; `", "` and `": "`).
fn mysql_text(v: &Json) -> String {
    match v {
        Json::Object(m) => {
            let mut e: Vec<(&String, &Json)> = m.iter().collect();
            e.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
            let inner: Vec<String> = e
                .iter()
                .map(|(k, v)| format!("{}: {}", Json::String((*k).clone()), mysql_text(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Json::Array(a) => format!("[{}]", a.iter().map(mysql_text).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The statement a MySQL session would have run for one diff, on MariaDB.
fn direct(d: &Diff) -> String {
    match d {
        Diff::Replace(p, v) => format!(
            "JSON_REPLACE(doc, {}, JSON_EXTRACT({}, '$'))",
            lit(p),
            lit(&mysql_text(v))
        ),
        Diff::Insert(p, v) => format!(
            "JSON_SET(doc, {}, JSON_EXTRACT({}, '$'))",
            lit(p),
            lit(&mysql_text(v))
        ),
        Diff::Remove(p) => format!("JSON_REMOVE(doc, {})", lit(p)),
    }
}

/// A file with one partial update of row 1: `doc` as `diffs`, `n` set to `n`.
fn event_file(db: &str, before: &Json, diffs: Vec<Diff>, n: i32) -> Vec<u8> {
    let mut f = BinlogFile::new();
    f.query(db, "BEGIN")
        .table_map(77, db, "t", &COLS)
        .partial_update(
            77,
            &COLS,
            &[(
                vec![Cell::Int(1), Cell::Json(before.clone()), Cell::Int(0)],
                vec![Cell::Int(1), Cell::Diffs(diffs), Cell::Int(n)],
            )],
        )
        .xid(9);
    f.bytes()
}

/// Reads the file and applies its rows events in one transaction (rolled back on error).
async fn apply_file(c: &mut Conn, name: &str, bytes: &[u8]) -> Result<(), ReplayError> {
    let mut r = BinlogFileReader::new(name, bytes)?;
    let sel = Selection::whole_instance();
    c.query_drop("START TRANSACTION")
        .await
        .map_err(|e| ReplayError::mysql("begin", e))?;
    while let Some(ev) = r.next_event()? {
        if let EventKind::Rows(rows) = &ev.kind {
            if let Err(e) = ferry_replay::apply::apply_rows_event(c, &sel, rows, ConflictPolicy::Stop).await {
                let _ = c.query_drop("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    c.query_drop("COMMIT")
        .await
        .map_err(|e| ReplayError::mysql("commit", e))
}

async fn doc(c: &mut Conn, db: &str, table: &str) -> Result<(String, i64)> {
    let r: Option<(String, i64)> = c
        .query_first(format!("SELECT doc, n FROM `{db}`.{table} WHERE id = 1"))
        .await?;
    r.context("row 1")
}

async fn reset(c: &mut Conn, db: &str, start: &Json) -> Result<()> {
    for t in ["t", "expect"] {
        c.query_drop(format!("DELETE FROM `{db}`.{t}")).await?;
        c.exec_drop(
            format!("INSERT INTO `{db}`.{t} VALUES (1, ?, 0)"),
            (mysql_text(start),),
        )
        .await?;
    }
    Ok(())
}

/// Applies `diffs` both ways and checks the documents: equal text, and the value MySQL's
/// semantics give.
async fn check(c: &mut Conn, db: &str, start: &Json, diffs: Vec<Diff>) -> Result<()> {
    reset(c, db, start).await?;
    let model = mysql_apply(start.clone(), &diffs).context("the model rejects a generated diff")?;
    for d in &diffs {
        c.query_drop(format!(
            "UPDATE `{db}`.expect SET doc = {} WHERE id = 1",
            direct(d)
        ))
        .await?;
    }
    c.query_drop(format!("UPDATE `{db}`.expect SET n = 5 WHERE id = 1"))
        .await?;
    apply_file(c, "mysql-bin.000001", &event_file(db, start, diffs.clone(), 5))
        .await
        .with_context(|| format!("diffs {diffs:?} on {start}"))?;
    let (got, n) = doc(c, db, "t").await?;
    let (want, _) = doc(c, db, "expect").await?;
    assert_eq!(got, want, "diffs {diffs:?} on {start}");
    assert_eq!(n, 5, "the columns logged whole are set too");
    let parsed: Json = serde_json::from_str(&got)?;
    assert_eq!(parsed, model, "MySQL's semantics: diffs {diffs:?} on {start}");
    Ok(())
}

#[tokio::test]
async fn partial_json_diffs_apply_like_the_servers_own_functions() -> Result<()> {
    let db = "ferry_pjson_apply";
    let mut c = setup(db).await?;
    let start = json!({"a": 1, "b": [1, 2, 3], "c": {"d": "x", "e": null}, "k y": true, "q\"\\": 2});
    check(
        &mut c,
        db,
        &start,
        vec![
            Diff::Replace("$.a".into(), json!({"n": [1.5, "s'q"]})),
            Diff::Insert("$.c.f".into(), json!([true, false, null])),
            Diff::Remove("$.b[0]".into()),
            Diff::Insert("$.b[5]".into(), json!("appended")),
            Diff::Replace("$.\"k y\"".into(), json!(false)),
            Diff::Remove("$.\"q\\\"\\\\\"".into()),
            Diff::Insert("$.zz".into(), json!(-40000)),
            Diff::Replace("$.c.e".into(), json!(12345678901_i64)),
        ],
    )
    .await?;
    // the diffs' result is the next event's before image: a second update on top
    let next = mysql_apply(start.clone(), &[Diff::Remove("$.c".into())]).unwrap_or_default();
    check(&mut c, db, &next, vec![Diff::Insert("$.c".into(), json!({}))]).await?;
    ferry_testkit::drop_dbs(&mut c, &[db]).await
}

#[tokio::test]
async fn diffs_mysql_rejects_stop_the_apply_by_name_and_change_nothing() -> Result<()> {
    let db = "ferry_pjson_reject";
    let mut c = setup(db).await?;
    let start = json!({"a": 1, "b": [1, 2], "s": "x"});
    let cases = [
        Diff::Replace("$.missing".into(), json!(1)), // JSON_REPLACE would do nothing
        Diff::Replace("$.a[0]".into(), json!(2)),    // JSON_REPLACE would auto-wrap the scalar
        Diff::Remove("$.b[2]".into()),               // out of bounds
        Diff::Insert("$.a".into(), json!(3)),        // the member exists
        Diff::Insert("$.s.t".into(), json!(3)),      // the parent is not an object
        Diff::Insert("$.b.t".into(), json!(3)),      // a member leg on an array
        Diff::Insert("$.nope[0]".into(), json!(3)),  // no parent
        Diff::Replace("$".into(), json!({})),        // the root
    ];
    for d in cases {
        reset(&mut c, db, &start).await?;
        assert!(
            mysql_apply(start.clone(), std::slice::from_ref(&d)).is_none(),
            "the model accepts {d:?}"
        );
        // a valid diff first: nothing of the event may stay
        let diffs = vec![Diff::Replace("$.s".into(), json!("changed")), d.clone()];
        let e = apply_file(&mut c, "mysql-bin.000042", &event_file(db, &start, diffs, 7))
            .await
            .expect_err("a rejected diff is an error");
        assert_eq!(e.kind(), ErrorKind::Definite, "{e}");
        let m = e.to_string();
        assert!(
            m.contains("PARTIAL_UPDATE_ROWS_EVENT")
                && m.contains("mysql-bin.000042:")
                && m.contains("binlog_row_value_options"),
            "{m}"
        );
        let (got, n) = doc(&mut c, db, "t").await?;
        assert_eq!(got, mysql_text(&start), "{d:?}");
        assert_eq!(n, 0);
    }
    ferry_testkit::drop_dbs(&mut c, &[db]).await
}

/// A table without a primary key or NOT NULL unique key: its rows are addressed by all their
/// values, which the diffs change one by one, so the update is refused by name, not guessed.
#[tokio::test]
async fn a_partial_update_of_a_keyless_table_is_refused_by_name() -> Result<()> {
    let db = "ferry_pjson_keyless";
    let mut c = connect_target(&ferry_testkit::target(), true).await?;
    ferry_testkit::fresh_db(&mut c, db).await?;
    ferry_testkit::exec(
        &mut c,
        &format!("CREATE TABLE `{db}`.t (id INT, doc JSON, n INT)"),
    )
    .await?;
    let start = json!({"a": 1});
    c.exec_drop(
        format!("INSERT INTO `{db}`.t VALUES (1, ?, 0)"),
        (mysql_text(&start),),
    )
    .await?;
    let diffs = vec![Diff::Replace("$.a".into(), json!(2))];
    let e = apply_file(&mut c, "mysql-bin.000003", &event_file(db, &start, diffs, 1))
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Definite);
    let m = e.to_string();
    assert!(
        m.contains("no primary key") && m.contains("mysql-bin.000003:") && m.contains(&format!("{db}.t")),
        "{m}"
    );
    let (got, n) = doc(&mut c, db, "t").await?;
    assert_eq!((got, n), (mysql_text(&start), 0));
    ferry_testkit::drop_dbs(&mut c, &[db]).await
}

/// The partial updates a real MySQL 8.0 server wrote (`json.binlog.000001` of the MySQL
/// fixtures: `UPDATE … SET doc = JSON_REPLACE(doc, '$.age', …)` with
/// `binlog_row_value_options=PARTIAL_JSON`), replayed with the file's earlier inserts and
/// updates into a MariaDB table: after each event every row's document is the one MySQL's
/// semantics give from the row's previous document.
#[tokio::test]
async fn a_real_servers_partial_updates_apply() -> Result<()> {
    let Some(dir) = ferry_testkit::mysql_binlog_fixtures("a_real_servers_partial_updates_apply") else {
        return Ok(());
    };
    let db = "ferry_pjson_fixture";
    let mut c = connect_target(&ferry_testkit::target(), true).await?;
    ferry_testkit::fresh_db(&mut c, db).await?;
    ferry_testkit::exec(
        &mut c,
        &format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, doc JSON, name VARCHAR(100), age INT)"),
    )
    .await?;
    // the file's database is `mysql`, a system schema no selection takes: renamed
    let sel = support::selection(&[("fixture_mysql", db)]);
    let bytes = std::fs::read(dir.join("json.binlog.000001"))?;
    let mut r = BinlogFileReader::new("json.binlog.000001", &bytes[..])?;
    let mut partial = 0;
    while let Some(ev) = r.next_event()? {
        let EventKind::Rows(rows) = &ev.kind else { continue };
        assert_eq!(rows.db, "mysql");
        let rows = &ferry_replay::RowsData {
            db: "fixture_mysql".into(),
            ..rows.clone()
        };
        // the documents the partial updates start from: the target's (the file's earlier events,
        // replayed; the before images carry only the key, binlog_row_image=MINIMAL)
        let mut expected = Vec::new();
        for (b, a) in &rows.rows {
            let Some(a) = a.as_ref().filter(|a| ferry_replay::json_diff::has_diffs(a)) else {
                continue;
            };
            let id = match b.as_ref().map(|b| &b[0]) {
                Some(mysql_async::binlog::value::BinlogValue::Value(mysql_async::Value::Int(id))) => *id,
                other => anyhow::bail!("unexpected before image key {other:?}"),
            };
            let before: String =
                ferry_testkit::scalar(&mut c, &format!("SELECT doc FROM `{db}`.t WHERE id = {id}")).await?;
            let mut after = a.clone();
            let diffs: Vec<Diff> = ferry_replay::json_diff::take_diffs(&mut after)
                .map_err(anyhow::Error::msg)?
                .into_iter()
                .flat_map(|cd| cd.diffs)
                .map(|d| {
                    let v = d
                        .value
                        .map(|v| serde_json::from_str::<Json>(&v.text).unwrap_or_default());
                    match (d.op, v) {
                        (ferry_replay::json_diff::Op::Replace, Some(v)) => Diff::Replace(d.path_text, v),
                        (ferry_replay::json_diff::Op::Insert, Some(v)) => Diff::Insert(d.path_text, v),
                        _ => Diff::Remove(d.path_text),
                    }
                })
                .collect();
            let want =
                mysql_apply(serde_json::from_str(&before)?, &diffs).context("MySQL applies its own diffs")?;
            expected.push((id, want, diffs));
        }
        c.query_drop("START TRANSACTION").await?;
        ferry_replay::apply::apply_rows_event(&mut c, &sel, rows, ConflictPolicy::Stop).await?;
        c.query_drop("COMMIT").await?;
        for (id, want, diffs) in expected {
            partial += 1;
            let got: String =
                ferry_testkit::scalar(&mut c, &format!("SELECT doc FROM `{db}`.t WHERE id = {id}")).await?;
            assert_eq!(
                serde_json::from_str::<Json>(&got)?,
                want,
                "row {id} after {diffs:?}"
            );
        }
    }
    assert!(partial >= 6, "{partial} partial updates");
    ferry_testkit::drop_dbs(&mut c, &[db]).await
}

// ---- MySQL's `apply_json_diffs` on serde_json values -------------------------------------

#[derive(Debug, Clone)]
enum Leg {
    Key(String),
    Idx(usize),
}

fn legs(path: &str) -> Option<Vec<Leg>> {
    let legs = ferry_replay::json_diff::parse_path(path).ok()?;
    legs.into_iter()
        .map(|l| match l {
            ferry_replay::json_diff::Leg::Member(m) => Some(Leg::Key(m)),
            ferry_replay::json_diff::Leg::Cell(ferry_replay::json_diff::Index::Start(n)) => {
                Some(Leg::Idx(n as usize))
            }
            _ => None,
        })
        .collect()
}

fn seek<'a>(mut v: &'a mut Json, path: &[Leg]) -> Option<&'a mut Json> {
    for l in path {
        v = match (l, v) {
            (Leg::Key(k), Json::Object(m)) => m.get_mut(k)?,
            (Leg::Idx(i), Json::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// MySQL's semantics; `None` where MySQL rejects the diff.
fn mysql_apply(mut doc: Json, diffs: &[Diff]) -> Option<Json> {
    for d in diffs {
        let (p, v) = match d {
            Diff::Replace(p, v) | Diff::Insert(p, v) => (p, Some(v.clone())),
            Diff::Remove(p) => (p, None),
        };
        let path = legs(p)?;
        let (last, parent) = path.split_last()?;
        let parent = seek(&mut doc, parent)?;
        match (d, last, parent) {
            (Diff::Replace(..), Leg::Key(k), Json::Object(m)) => *m.get_mut(k)? = v?,
            (Diff::Replace(..), Leg::Idx(i), Json::Array(a)) => *a.get_mut(*i)? = v?,
            (Diff::Insert(..), Leg::Key(k), Json::Object(m)) => {
                if m.contains_key(k) {
                    return None;
                }
                m.insert(k.clone(), v?);
            }
            (Diff::Insert(..), Leg::Idx(i), Json::Array(a)) => {
                let at = (*i).min(a.len());
                a.insert(at, v?);
            }
            (Diff::Remove(_), Leg::Key(k), Json::Object(m)) => {
                m.remove(k)?;
            }
            (Diff::Remove(_), Leg::Idx(i), Json::Array(a)) => {
                if *i >= a.len() {
                    return None;
                }
                a.remove(*i);
            }
            _ => return None,
        }
    }
    Some(doc)
}

// ---- random documents and the diffs a MySQL source logs for them ---------------------------

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-70000i64..70000).prop_map(|i| json!(i)),
        "[a-z ']{0,6}".prop_map(Json::String),
        (-1000i32..1000).prop_map(|i| json!(f64::from(i) + 0.5)),
    ]
}

fn document() -> impl Strategy<Value = Json> {
    let leaf = scalar();
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
    .prop_map(|v| json!({"root": v, "arr": [1, 2]}))
}

fn path_text(p: &[Leg]) -> String {
    let mut s = String::from("$");
    for l in p {
        match l {
            Leg::Key(k) => s.push_str(&format!(".{k}")),
            Leg::Idx(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Every path of a document (not the root).
fn paths(v: &Json, at: &mut Vec<Leg>, out: &mut Vec<Vec<Leg>>) {
    match v {
        Json::Object(m) => {
            for (k, x) in m {
                at.push(Leg::Key(k.clone()));
                out.push(at.clone());
                paths(x, at, out);
                at.pop();
            }
        }
        Json::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(Leg::Idx(i));
                out.push(at.clone());
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// A diff a source could log on `doc` (JSON_REPLACE / JSON_SET of a new member or past an
/// array's end / JSON_REMOVE), chosen by `pick`.
fn generated(doc: &Json, pick: (usize, u8, Json)) -> Option<Diff> {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let (k, op, v) = pick;
    match op % 3 {
        0 => {
            let p = all.get(k % all.len().max(1))?;
            Some(Diff::Replace(path_text(p), v))
        }
        1 => {
            let p = all.get(k % all.len().max(1))?;
            Some(Diff::Remove(path_text(p)))
        }
        _ => {
            // a container to grow: an object gets a new key, an array a cell past its end
            let mut containers: Vec<Vec<Leg>> = vec![Vec::new()];
            containers.extend(all);
            let mut d = doc.clone();
            let p = containers.get(k % containers.len())?.clone();
            match seek(&mut d, &p)? {
                Json::Object(m) => {
                    let key = (0..).map(|i| format!("n{i}")).find(|x| !m.contains_key(x))?;
                    let mut q = p.clone();
                    q.push(Leg::Key(key));
                    Some(Diff::Insert(path_text(&q), v))
                }
                Json::Array(a) => {
                    let mut q = p.clone();
                    q.push(Leg::Idx(a.len() + k % 3));
                    Some(Diff::Insert(path_text(&q), v))
                }
                _ => None,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_documents_and_diffs_apply_exactly(
        start in document(),
        picks in prop::collection::vec((any::<usize>(), any::<u8>(), scalar()), 1..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let db = "ferry_pjson_prop";
            let mut c = setup(db).await?;
            let mut cur = start.clone();
            let mut diffs = Vec::new();
            for p in picks {
                if let Some(d) = generated(&cur, p) {
                    if let Some(next) = mysql_apply(cur.clone(), std::slice::from_ref(&d)) {
                        cur = next;
                        diffs.push(d);
                    }
                }
            }
            if !diffs.is_empty() {
                check(&mut c, db, &start, diffs).await?;
            }
            ferry_testkit::drop_dbs(&mut c, &[db]).await
        })
        .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    }
}
