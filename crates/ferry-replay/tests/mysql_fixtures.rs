//! Decoding tests on real MySQL binlog files (the workplace's `fixtures/mysql-binlogs`, from
//! rust_mysql_common's test data): MySQL GTIDs (plain, anonymous, tagged), transaction payloads,
//! binary JSON, partial JSON, BIT, ENUM/SET, invisible and hidden columns, truncated and corrupt
//! files.
//!
//! The files are not in the repository. They are read from `$FERRY_MYSQL_BINLOGS` or
//! `../shared/fixtures/mysql-binlogs` next to the repository root; when absent, each test prints
//! `skipped: <name>: fixtures folder absent` and passes.

use std::path::{Path, PathBuf};

use ferry_core::{Column, ColumnKind, ErrorKind, TableSchema};
use ferry_replay::translate::Translator;
use ferry_replay::{
    BinlogFileReader, BinlogPos, EventKind, Gtid, ReplEvent, ReplayError, RowsData, RowsKind, TableDecoder,
};
use mysql_async::Value;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::BinlogFile;

fn fixtures(test: &str) -> Option<PathBuf> {
    ferry_testkit::mysql_binlog_fixtures(test)
}

/// Strict reading, as the replayer does: stops at the first error.
fn read(dir: &Path, name: &str) -> (Vec<ReplEvent>, Option<ReplayError>) {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    read_bytes(name, &bytes)
}

fn read_bytes(name: &str, bytes: &[u8]) -> (Vec<ReplEvent>, Option<ReplayError>) {
    let mut out = Vec::new();
    let mut r = match BinlogFileReader::new(name, bytes) {
        Ok(r) => r,
        Err(e) => return (out, Some(e)),
    };
    loop {
        match r.next_event() {
            Ok(Some(e)) => out.push(e),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Lenient reading through mysql_common's `BinlogFile`: every event is fed to a translator and
/// errors are collected instead of stopping (to reach events after a refused one).
fn read_lenient(dir: &Path, name: &str) -> Vec<Result<ReplEvent, ReplayError>> {
    let f = std::fs::File::open(dir.join(name)).unwrap();
    let file = BinlogFile::new(BinlogVersion::Version4, std::io::BufReader::new(f)).unwrap();
    let mut t = Translator::new(BinlogPos::new(name, 4));
    let mut out = Vec::new();
    for ev in file {
        let Ok(ev) = ev else { break };
        match t.feed(&ev) {
            Ok(Some(e)) => out.push(Ok(e)),
            Ok(None) => {}
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

fn col(name: &str, data_type: &str, column_type: &str) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
        column_type: column_type.into(),
        kind: ColumnKind::from_types(data_type, column_type),
        nullable: true,
        generated: false,
        charset: None,
        collation: None,
    }
}

fn table(db: &str, name: &str, columns: Vec<Column>) -> TableSchema {
    TableSchema {
        db: db.into(),
        name: name.into(),
        columns,
        primary_key: None,
        unique_keys: vec![],
        engine: None,
        estimated_rows: 0,
        data_length: 0,
        system_time: None,
    }
}

fn rows(evs: &[ReplEvent]) -> Vec<&RowsData> {
    evs.iter()
        .filter_map(|e| match &e.kind {
            EventKind::Rows(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn begins(evs: &[ReplEvent]) -> Vec<(Option<Gtid>, u64)> {
    evs.iter()
        .filter_map(|e| match &e.kind {
            EventKind::Begin { gtid, .. } => Some((gtid.clone(), e.pos.pos)),
            _ => None,
        })
        .collect()
}

fn b(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

#[test]
fn mysql_gtid_events_and_positions() {
    let Some(dir) = fixtures("mysql_gtid_events_and_positions") else {
        return;
    };
    let (evs, err) = read(&dir, "binlog_transaction_with_GTID.000001");
    assert!(err.is_none(), "{err:?}");
    let uuid = "006c2cf2-b1ea-11e4-9057-8c705a3d3e78";
    let g = begins(&evs);
    assert_eq!(g.len(), 3);
    for (i, (gtid, _)) in g.iter().enumerate() {
        assert_eq!(gtid.as_ref().unwrap().to_string(), format!("{uuid}:{}", i + 1));
    }
    assert_eq!(g.iter().map(|x| x.1).collect::<Vec<_>>(), [199, 345, 651]);
    // the DML group: GTID, BEGIN (folded), statement, COMMIT carrying the GTID
    let commit = evs
        .iter()
        .find(|e| matches!(e.kind, EventKind::Commit { .. }))
        .unwrap();
    match &commit.kind {
        EventKind::Commit { gtid, .. } => {
            assert_eq!(gtid.as_ref().unwrap().to_string(), format!("{uuid}:2"))
        }
        _ => unreachable!(),
    }
    // every position is strictly increasing within the file
    assert!(evs.windows(2).all(|w| w[0].pos.pos < w[1].pos.pos));

    // anonymous GTIDs: groups without a GTID
    let (evs, err) = read(&dir, "binlog_transaction_with_anonymous_GTID.000001");
    assert!(err.is_none(), "{err:?}");
    let g = begins(&evs);
    assert!(!g.is_empty() && g.iter().all(|x| x.0.is_none()));
    assert!(evs
        .iter()
        .all(|e| !e.ends_group() || matches!(e.kind, EventKind::Commit { .. } | EventKind::Query(_))));

    // MySQL 9 tagged GTID
    let (evs, err) = read(&dir, "binlog_transaction_with_GTID_TAG.000001");
    assert!(err.is_none(), "{err:?}");
    let g = begins(&evs);
    assert_eq!(
        g[0].0.as_ref().unwrap().to_string(),
        "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"
    );
    let r = rows(&evs);
    let s = table(
        "test",
        "orders",
        vec![
            col("id", "int", "int"),
            col("qty", "int", "int"),
            col("amount", "decimal", "decimal(10,2)"),
        ],
    );
    let d = TableDecoder::new(&s).unwrap().decode(r[0]).unwrap();
    assert_eq!(d[0].1, Some(vec![Value::Int(3), Value::Int(100), b("250.00")]));

    // MySQL 5.6 GTIDs
    let (evs, err) = read(&dir, "binlog_56_gtid_reserved_word.000001");
    assert!(err.is_none(), "{err:?}");
    assert!(begins(&evs).iter().all(|x| x.0.is_some()));
}

#[test]
fn transaction_payload_inner_events_decode() {
    let Some(dir) = fixtures("transaction_payload_inner_events_decode") else {
        return;
    };
    let (evs, err) = read(&dir, "transaction_compression.000001");
    assert!(err.is_none(), "{err:?}");
    let r = rows(&evs);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].db.as_str(), r[0].table.as_str()), ("test", "tb1"));
    let s = table("test", "tb1", vec![col("c1", "int", "int")]);
    let d = TableDecoder::new(&s).unwrap().decode(r[0]).unwrap();
    assert_eq!(d, vec![(None, Some(vec![Value::Int(1)]))]);
    // inner events have no position of their own: they report the payload's end, so a
    // checkpoint at the Commit resumes after the whole payload
    let rows_ev = evs.iter().find(|e| matches!(e.kind, EventKind::Rows(_))).unwrap();
    let commit = evs
        .iter()
        .find(|e| matches!(e.kind, EventKind::Commit { .. }))
        .unwrap();
    assert_eq!(rows_ev.pos, commit.pos);
    let begin = evs
        .iter()
        .find(|e| matches!(e.kind, EventKind::Begin { .. }))
        .unwrap();
    assert!(begin.pos.pos < commit.pos.pos);
}

#[test]
fn binary_json_becomes_mysql_json_text() {
    let Some(dir) = fixtures("binary_json_becomes_mysql_json_text") else {
        return;
    };
    let all = read_lenient(&dir, "json.binlog.000001");
    let evs: Vec<ReplEvent> = all.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let s = table(
        "mysql",
        "t",
        vec![
            col("id", "int", "int"),
            col("doc", "json", "json"),
            col("name", "varchar", "varchar(100)"),
            col("age", "int", "int"),
        ],
    );
    let dec = TableDecoder::new(&s).unwrap();
    let r = rows(&evs);
    let first = dec.decode(r[0]).unwrap();
    assert_eq!(
        first[0].1.as_ref().unwrap()[1],
        b(r#"{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}"#)
    );
    // the full-image update decodes too
    let upd = r.iter().find(|x| x.kind == RowsKind::Update).unwrap();
    let u = dec.decode(upd).unwrap();
    assert_eq!(
        u[0].1.as_ref().unwrap()[1],
        b(r#"{"age": 25, "data": "xxxxxxxxxx", "name": "Joe"}"#)
    );
    // then the server switched to PARTIAL_JSON: those events translate too
    // (`partial_json_updates_of_a_real_server_decode`)
    let errors: Vec<&ReplayError> = all.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // opaque values: dates, times, decimals, other types in base64
    let (evs, err) = read(&dir, "json-opaque.binlog");
    assert!(err.is_none(), "{err:?}");
    let s = table("foo", "test", vec![col("a", "json", "json")]);
    let dec = TableDecoder::new(&s).unwrap();
    let values: Vec<(String, Option<String>)> = rows(&evs)
        .iter()
        .flat_map(|r| dec.decode(r).unwrap())
        .map(|(_, a)| match &a.unwrap()[0] {
            Value::Bytes(b) => {
                let (text, expr) = ferry_replay::json_sql::split(b);
                (
                    String::from_utf8(text.to_vec()).unwrap(),
                    expr.map(|e| String::from_utf8(e.to_vec()).unwrap()),
                )
            }
            v => panic!("{v:?}"),
        })
        .collect();
    let texts: Vec<&str> = values.iter().map(|v| v.0.as_str()).collect();
    let exprs: Vec<Option<&str>> = values.iter().map(|v| v.1.as_deref()).collect();
    // the typed scalars keep their types on a MySQL target: written as SQL expressions
    assert_eq!(
        exprs,
        [
            None, // another opaque type: its text, as before
            Some("JSON_OBJECT(_utf8mb4'b',CAST('2012-03-18' AS DATE))"),
            Some("JSON_OBJECT(_utf8mb4'c',CAST('2012-03-18 11:30:45.000000' AS DATETIME(6)))"),
            Some("JSON_OBJECT(_utf8mb4'c',CAST('87:31:46.654321' AS TIME(6)))"),
            Some("JSON_OBJECT(_utf8mb4'd',CAST('123.456' AS DECIMAL(6,3)))"),
            Some("JSON_OBJECT(_utf8mb4'e',CAST('9.00' AS DECIMAL(11,2)))"), // the opaque value's own precision and scale
            None,
            None,
        ]
    );
    assert_eq!(
        texts,
        [
            r#"{"a": "base64:type15:VQ=="}"#,
            r#"{"b": "2012-03-18"}"#,
            r#"{"c": "2012-03-18 11:30:45.000000"}"#,
            r#"{"c": "87:31:46.654321"}"#,
            r#"{"d": 123.456}"#,
            r#"{"e": 9.00}"#, // DECIMAL(11,2) 9.00
            r#"{"e": [0, 1, true, false]}"#,
            r#"{"e": null}"#,
        ]
    );
}

/// `update-partial-row.binlog` is, despite the fixtures README, a *partial row image* file
/// (binlog_row_image=MINIMAL: the update's images lack columns) with no JSON column and no
/// PARTIAL_UPDATE_ROWS event. It decodes with the images' column lists, so the applier sets
/// only the logged columns. (The partial JSON event, type 39, is in `json.binlog.000001`: see
/// `partial_json_updates_of_a_real_server_decode`.)
#[test]
fn minimal_row_images_decode_with_their_column_lists() {
    let Some(dir) = fixtures("minimal_row_images_decode_with_their_column_lists") else {
        return;
    };
    // `update-partial-row.binlog` is binlog_row_image=MINIMAL (not PARTIAL_JSON): the update's
    // images carry columns 1 and 3, the delete's before image only the key
    let (evs, err) = read(&dir, "update-partial-row.binlog");
    assert!(err.is_none(), "{err:?}");
    let r = rows(&evs);
    let upd = r.iter().find(|r| r.kind == RowsKind::Update).expect("an update");
    assert_eq!(upd.before_cols, Some(vec![true, false, true]));
    assert_eq!(upd.after_cols, Some(vec![true, false, true]));
    let s = table(
        "test",
        "ba",
        vec![
            col("a", "int", "int"),
            col("b", "int", "int"),
            col("c", "int", "int"),
        ],
    );
    let dec = TableDecoder::new(&s).unwrap();
    let d = dec.decode(upd).unwrap();
    // absent columns hold NULL placeholders; the column lists tell them apart
    assert_eq!(d[0].0, Some(vec![Value::Int(4), Value::NULL, Value::Int(4)]));
    assert_eq!(d[0].1, Some(vec![Value::Int(4), Value::NULL, Value::Int(40)]));
    let del = r.iter().find(|r| r.kind == RowsKind::Delete).expect("a delete");
    assert_eq!(del.before_cols, Some(vec![true, false, false]));
    assert!(del.partial() && upd.partial());
    // the same statements with a full image: no column lists, but for the minimal delete at
    // its end
    let (evs, err) = read(&dir, "update-full-row.binlog");
    assert!(err.is_none(), "{err:?}");
    let r = rows(&evs);
    let upd = r.iter().find(|r| r.kind == RowsKind::Update).expect("an update");
    assert!(!upd.partial());
}

/// The PARTIAL_UPDATE_ROWS events at the end of `json.binlog.000001` (MySQL 8.0 with
/// `binlog_row_value_options=PARTIAL_JSON`): their after images carry JSON diffs, which
/// `json_diff::take_diffs` turns into the operations the applier translates.
#[test]
fn partial_json_updates_of_a_real_server_decode() {
    let Some(dir) = fixtures("partial_json_updates_of_a_real_server_decode") else {
        return;
    };
    let (evs, err) = read(&dir, "json.binlog.000001");
    assert!(err.is_none(), "{err:?}");
    let mut found = Vec::new();
    for r in rows(&evs) {
        for (before, after) in &r.rows {
            let Some(after) = after else { continue };
            if !ferry_replay::json_diff::has_diffs(after) {
                continue;
            }
            assert_eq!(r.kind, RowsKind::Update);
            assert!(before
                .as_deref()
                .is_some_and(|b| !ferry_replay::json_diff::has_diffs(b)));
            let mut a = after.clone();
            let diffs = ferry_replay::json_diff::take_diffs(&mut a).expect("the diffs convert");
            assert!(!ferry_replay::json_diff::has_diffs(&a));
            assert_eq!(diffs.len(), 1);
            assert_eq!(diffs[0].column, 1, "the doc column");
            for d in &diffs[0].diffs {
                let v = d.value.as_ref().map(|v| v.text.as_str()).unwrap_or_default();
                found.push(format!("{} {v}", d.describe()));
            }
        }
    }
    // the file's `JSON_REPLACE(doc, '$.age', …)` statements, twice over three rows
    assert_eq!(
        found,
        [
            "REPLACE $.age 26",
            "REPLACE $.age 34",
            "REPLACE $.age 42",
            "REPLACE $.age 26",
            "REPLACE $.age 34",
            "REPLACE $.age 42"
        ]
    );
}

#[test]
fn bit_columns_stay_big_endian() {
    let Some(dir) = fixtures("bit_columns_stay_big_endian") else {
        return;
    };
    let (evs, err) = read(&dir, "mysql_type_bit.000001");
    assert!(err.is_none(), "{err:?}");
    let s = table(
        "mysql",
        "foo",
        vec![
            col("a", "bit", "bit(3)"),
            col("b", "text", "text"),
            col("c", "bit", "bit(8)"),
        ],
    );
    let d = TableDecoder::new(&s).unwrap().decode(rows(&evs)[0]).unwrap();
    assert_eq!(
        d[0].1,
        Some(vec![Value::Bytes(vec![4]), b("foo"), Value::Bytes(vec![0x20])])
    );
}

#[test]
fn enum_and_set_become_member_names() {
    let Some(dir) = fixtures("enum_and_set_become_member_names") else {
        return;
    };
    let (evs, err) = read(&dir, "mysql-enum-string-set.000001");
    assert!(err.is_none(), "{err:?}");
    let s = table(
        "mysql",
        "t",
        vec![
            col("f1", "char", "char(128)"),
            col("f2", "varchar", "varchar(300)"),
            col("f3", "enum", "enum('var1','variant2','foo')"),
            col("f4", "set", "set('one','two','three','four')"),
            col("f5", "text", "text"),
        ],
    );
    let dec = TableDecoder::new(&s).unwrap();
    let r = rows(&evs);
    let ins = dec.decode(r[0]).unwrap();
    let a = ins[0].1.as_ref().unwrap();
    assert_eq!((&a[2], &a[3]), (&b("var1"), &b("one,three")));
    let upd = dec.decode(r[1]).unwrap();
    let a = upd[0].1.as_ref().unwrap();
    assert_eq!(a[..4], [b("field1"), b("field_2"), b("variant2"), b("two,four")]);
    let del = dec.decode(r[2]).unwrap();
    assert_eq!(r[2].kind, RowsKind::Delete);
    assert_eq!(del[0].0.as_ref().unwrap()[2], b("variant2"));
    // a schema whose ENUM lost a member is a definite mismatch, not a guess
    let mut short = s.clone();
    short.columns[2].column_type = "enum('var1')".into();
    let e = TableDecoder::new(&short).unwrap().decode(r[1]).unwrap_err();
    assert!(e.to_string().contains("ENUM index 2"), "{e}");
}

#[test]
fn invisible_columns_are_in_the_image() {
    let Some(dir) = fixtures("invisible_columns_are_in_the_image") else {
        return;
    };
    let (evs, err) = read(&dir, "binlog-invisible-columns.000001");
    assert!(err.is_none(), "{err:?}");
    let s = table(
        "mysql",
        "t1",
        vec![
            col("f1", "int", "int unsigned"),
            col("f2", "int", "int unsigned"),
            col("f3", "int", "int"),
            col("f4", "text", "text"),
            col("f5", "blob", "blob"),
            col("f6", "bigint", "bigint unsigned"),
        ],
    );
    let dec = TableDecoder::new(&s).unwrap();
    let r = rows(&evs);
    // FULL metadata here: names and signedness are in the table map
    assert_eq!(r[0].columns[5].name.as_deref(), Some("f6"));
    assert_eq!(r[0].columns[0].unsigned, Some(true));
    let d = dec.decode(r[0]).unwrap();
    assert_eq!(
        d[0].1,
        Some(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(-3),
            b("4"),
            Value::Bytes(vec![5]),
            Value::Int(6_000_000_000)
        ])
    );
    // a schema that forgot the invisible columns does not match
    let mut visible = s.clone();
    visible
        .columns
        .retain(|c| !["f1", "f2", "f6"].contains(&c.name.as_str()));
    let e = TableDecoder::new(&visible).unwrap().decode(r[0]).unwrap_err();
    assert!(matches!(e, ReplayError::SchemaMismatch { .. }), "{e}");
    // signedness in the metadata contradicting the schema is caught too
    let mut signed = s.clone();
    signed.columns[0].kind = ColumnKind::Int { unsigned: false };
    assert!(TableDecoder::new(&signed).unwrap().decode(r[0]).is_err());
}

#[test]
fn hidden_columns_and_minimal_images_decode() {
    let Some(dir) = fixtures("hidden_columns_and_minimal_images_decode") else {
        return;
    };
    for (name, cols) in [
        // a functional index's hidden generated column is never in the image
        ("rpl_unfiltered_hidden_gcol.000001", vec![true, false, true]),
        (
            "minimal_row_metadata.000001",
            vec![true, false, true, false, true],
        ),
        ("write-partial-row.binlog", vec![true, false, true]),
    ] {
        let (evs, err) = read(&dir, name);
        assert!(err.is_none(), "{name}: {err:?}");
        let all = rows(&evs);
        let r = all
            .iter()
            .find(|r| r.partial())
            .unwrap_or_else(|| panic!("{name}: no partial image"));
        assert_eq!(r.kind, RowsKind::Insert, "{name}");
        assert_eq!(r.after_cols.as_ref(), Some(&cols), "{name}");
    }
    // a schema without the hidden column (information_schema does not show it) is a definite
    // mismatch that names the likely cause
    let (evs, _) = read(&dir, "rpl_unfiltered_hidden_gcol.000001");
    let s = table(
        "test",
        "t",
        vec![col("a", "int", "int"), col("b", "text", "text")],
    );
    let r = rows(&evs);
    let e = TableDecoder::new(&s).unwrap().decode(r[0]).unwrap_err();
    assert!(matches!(e, ReplayError::SchemaMismatch { .. }), "{e}");
    assert!(e.to_string().contains("hidden"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Definite);
}

#[test]
fn vector_values_decode_as_their_float_bytes() {
    let Some(dir) = fixtures("vector_values_decode_as_their_float_bytes") else {
        return;
    };
    let (evs, err) = read(&dir, "vector.binlog");
    assert!(err.is_none(), "{err:?}");
    let s = table(
        "dtb",
        "bar",
        vec![
            col("id", "bigint", "bigint unsigned"),
            col("vector_column", "vector", "vector(2)"),
            col("foo", "text", "text"),
            col("vector_column2", "vector", "vector(4)"),
        ],
    );
    let dec = TableDecoder::new(&s).unwrap();
    let r = rows(&evs);
    let bar: Vec<&&RowsData> = r.iter().filter(|r| r.table == "bar").collect();
    assert!(!bar.is_empty());
    for ev in bar {
        for (b, a) in dec.decode(ev).unwrap() {
            let row = a.or(b).unwrap();
            let (Value::Bytes(v2), Value::Bytes(v4)) = (&row[1], &row[3]) else {
                panic!("{row:?}")
            };
            // VECTOR(n) is n little-endian IEEE floats, passed through unchanged
            assert_eq!((v2.len(), v4.len()), (8, 16), "{row:?}");
            for f in v2.chunks(4).chain(v4.chunks(4)) {
                assert!(f32::from_le_bytes([f[0], f[1], f[2], f[3]]).is_finite());
            }
        }
    }
}

#[test]
fn savepoints_stay_inside_their_transaction() {
    let Some(dir) = fixtures("savepoints_stay_inside_their_transaction") else {
        return;
    };
    let (evs, err) = read(&dir, "binlog_savepoint.000001");
    assert!(err.is_none(), "{err:?}");
    let inner: Vec<String> = evs
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Query(q) if !q.ends_group => Some(q.sql_text().into_owned()),
            _ => None,
        })
        .collect();
    assert!(
        inner
            .iter()
            .any(|q| q.to_ascii_uppercase().starts_with("SAVEPOINT")),
        "{inner:?}"
    );
    assert!(inner.iter().any(|q| q.starts_with("ROLLBACK TO")), "{inner:?}");
}

#[test]
fn mariadb_file_with_full_metadata() {
    let Some(dir) = fixtures("mariadb_file_with_full_metadata") else {
        return;
    };
    let (evs, err) = read(&dir, "mariadb-bin.000001");
    assert!(err.is_none(), "{err:?}");
    let g = begins(&evs);
    assert!(g.iter().all(|x| matches!(x.0, Some(Gtid::Maria(_)))));
    let r = rows(&evs);
    assert!(
        r[0].columns.iter().all(|c| c.name.is_some()),
        "{:?}",
        r[0].columns
    );
}

#[test]
fn truncated_and_corrupt_files_error_without_panic() {
    let Some(dir) = fixtures("truncated_and_corrupt_files_error_without_panic") else {
        return;
    };
    for name in [
        "binlog_truncated_event.000001",
        "binlog_truncated_prev_gtid_event.000001",
        "corrupt-relay-bin.000624",
    ] {
        let (_, err) = read(&dir, name);
        let e = err.unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(e.kind(), ErrorKind::Definite, "{name}: {e}");
    }
    // every fixture, cut short and with flipped bytes: errors, never a panic
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "README.md")
        .collect();
    names.sort();
    let mut errors = 0;
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len().saturating_sub(1)] {
            let (_, err) = read_bytes(&name, &bytes[..cut]);
            errors += usize::from(err.is_some());
        }
        for at in (4..bytes.len()).step_by(97).take(40) {
            let mut b = bytes.clone();
            b[at] ^= 0x5a;
            let (_, err) = read_bytes(&name, &b);
            if let Some(e) = err {
                errors += 1;
                assert_eq!(e.kind(), ErrorKind::Definite, "{name}@{at}: {e}");
            }
        }
    }
    assert!(errors > 100, "only {errors} errors");
}
