//! MySQL → MariaDB JSON: a MySQL source logs JSON columns as binary JSON (MYSQL_TYPE_JSON); on a
//! MariaDB target the column is LONGTEXT (MariaDB's JSON alias), so the decoder works from a
//! text schema column and must render the binary value as MySQL's JSON text, exactly as it does
//! for a JSON target column.
//!
//! The binlogs are the workplace's MySQL fixtures (`$FERRY_MYSQL_BINLOGS` or
//! `../shared/fixtures/mysql-binlogs`); when the folder is absent each test prints
//! `skipped: <name>: fixtures folder absent` and passes.

use std::path::{Path, PathBuf};

use ferry_core::{Column, ColumnKind, TableSchema};
use ferry_replay::translate::Translator;
use ferry_replay::{BinlogFileReader, BinlogPos, EventKind, ReplEvent, RowsData, RowsKind, TableDecoder};
use mysql_async::Value;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::BinlogFile;

fn fixtures(test: &str) -> Option<PathBuf> {
    ferry_testkit::mysql_binlog_fixtures(test)
}

/// Every event that translates (the file ends with partial JSON updates, covered in
/// `mysql_fixtures.rs` and `partial_json.rs`).
fn events_lenient(dir: &Path, name: &str) -> Vec<ReplEvent> {
    let f = std::fs::File::open(dir.join(name)).expect("fixture opens");
    let file = BinlogFile::new(BinlogVersion::Version4, std::io::BufReader::new(f)).expect("binlog file");
    let mut t = Translator::new(BinlogPos::new(name, 4));
    let mut out = Vec::new();
    for ev in file {
        let Ok(ev) = ev else { break };
        if let Ok(Some(e)) = t.feed(&ev) {
            out.push(e);
        }
    }
    out
}

fn events_strict(dir: &Path, name: &str) -> Vec<ReplEvent> {
    let bytes = std::fs::read(dir.join(name)).expect("fixture reads");
    let mut r = BinlogFileReader::new(name, &bytes[..]).expect("binlog header");
    let mut out = Vec::new();
    while let Some(e) = r.next_event().expect("event") {
        out.push(e);
    }
    out
}

/// A column as a MariaDB target describes it.
fn col(name: &str, data_type: &str, column_type: &str, collation: Option<&str>) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
        column_type: column_type.into(),
        kind: ColumnKind::from_types(data_type, column_type),
        nullable: true,
        generated: false,
        charset: collation.map(|_| "utf8mb4".into()),
        collation: collation.map(Into::into),
    }
}

/// MariaDB's `JSON`: `longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`.
fn mariadb_json(name: &str) -> Column {
    col(name, "longtext", "longtext", Some("utf8mb4_bin"))
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

fn b(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

#[test]
fn mysql_binary_json_replays_into_a_mariadb_longtext_column() {
    let Some(dir) = fixtures("mysql_binary_json_replays_into_a_mariadb_longtext_column") else {
        return;
    };
    let evs = events_lenient(&dir, "json.binlog.000001");
    let s = table(
        "mysql",
        "t",
        vec![
            col("id", "int", "int", None),
            mariadb_json("doc"),
            col("name", "varchar", "varchar(100)", Some("utf8mb4_general_ci")),
            col("age", "int", "int", None),
        ],
    );
    assert_eq!(s.columns[1].kind, ColumnKind::Text);
    let dec = TableDecoder::new(&s).expect("decoder");
    let r = rows(&evs);
    assert!(!r.is_empty());
    let first = dec.decode(r[0]).expect("insert decodes against LONGTEXT");
    assert_eq!(
        first[0].1.as_ref().expect("after image")[1],
        b(r#"{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}"#)
    );
    let upd = r.iter().find(|x| x.kind == RowsKind::Update).expect("an update");
    let u = dec.decode(upd).expect("update decodes against LONGTEXT");
    assert_eq!(
        u[0].0.as_ref().expect("before image")[1],
        b(r#"{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}"#)
    );
    assert_eq!(
        u[0].1.as_ref().expect("after image")[1],
        b(r#"{"age": 25, "data": "xxxxxxxxxx", "name": "Joe"}"#)
    );
    // the same text as for a MySQL JSON target column
    let json_schema = table(
        "mysql",
        "t",
        vec![
            col("id", "int", "int", None),
            col("doc", "json", "json", None),
            col("name", "varchar", "varchar(100)", None),
            col("age", "int", "int", None),
        ],
    );
    let as_json = TableDecoder::new(&json_schema).expect("decoder");
    for rd in &r {
        let diffs = rd
            .rows
            .iter()
            .any(|(_, a)| a.as_deref().is_some_and(ferry_replay::json_diff::has_diffs));
        if diffs {
            // a partial JSON update: the applier takes its diffs out first; the plain decoder
            // refuses them rather than decode a placeholder
            let e = dec.decode(rd).expect_err("a diff is not a value");
            assert!(e.to_string().contains("PARTIAL_JSON"), "{e}");
            continue;
        }
        assert_eq!(dec.decode(rd).expect("text"), as_json.decode(rd).expect("json"));
    }
}

#[test]
fn mysql_opaque_json_values_render_into_longtext_as_mysql_prints_them() {
    let Some(dir) = fixtures("mysql_opaque_json_values_render_into_longtext_as_mysql_prints_them") else {
        return;
    };
    let evs = events_strict(&dir, "json-opaque.binlog");
    let s = table("foo", "test", vec![mariadb_json("a")]);
    let dec = TableDecoder::new(&s).expect("decoder");
    let texts: Vec<Value> = rows(&evs)
        .iter()
        .flat_map(|r| dec.decode(r).expect("decodes against LONGTEXT"))
        .filter_map(|(_, a)| a.map(|mut a| a.remove(0)))
        .collect();
    let want = [
        r#"{"a": "base64:type15:VQ=="}"#,
        r#"{"b": "2012-03-18"}"#,
        r#"{"c": "2012-03-18 11:30:45.000000"}"#,
        r#"{"c": "87:31:46.654321"}"#,
        r#"{"d": 123.456}"#,
        r#"{"e": 9.00}"#,
        r#"{"e": [0, 1, true, false]}"#,
        r#"{"e": null}"#,
    ];
    assert_eq!(texts, want.iter().map(|s| b(s)).collect::<Vec<_>>());
}

/// A binary-type column still refuses binary JSON: only text columns take its text form.
#[test]
fn binary_json_into_a_blob_column_is_still_a_schema_mismatch() {
    let Some(dir) = fixtures("binary_json_into_a_blob_column_is_still_a_schema_mismatch") else {
        return;
    };
    let evs = events_strict(&dir, "json-opaque.binlog");
    let s = table("foo", "test", vec![col("a", "longblob", "longblob", None)]);
    let dec = TableDecoder::new(&s).expect("decoder");
    let r = rows(&evs);
    let e = dec.decode(r[0]).expect_err("refused");
    assert!(e.to_string().contains("MYSQL_TYPE_JSON"), "{e}");
}
