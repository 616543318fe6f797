//! Decoding a binlog captured from the local MariaDB 10.11 source (committed under tests/data):
//! the MariaDB GTID/GTID_LIST/BINLOG_CHECKPOINT/ANNOTATE_ROWS events, the group structure, the
//! positions, CRC32 checks, and row decoding without any row metadata.

use ferry_core::{Column, ColumnKind, TableSchema};
use ferry_replay::{decode_rows, BinlogFileReader, EventKind, Gtid, ReplEvent, ReplayError, RowsKind};
use mysql_async::Value;

const SAMPLE: &[u8] = include_bytes!("data/mariadb-10.11-sample.binlog");

fn events(bytes: &[u8]) -> (Vec<ReplEvent>, Option<ReplayError>) {
    let mut r = BinlogFileReader::new("mysql-bin.000001", bytes).unwrap();
    let mut out = Vec::new();
    loop {
        match r.next_event() {
            Ok(Some(e)) => out.push(e),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn schema() -> TableSchema {
    let col = |name: &str, dt: &str, ct: &str, kind| Column {
        name: name.into(),
        data_type: dt.into(),
        column_type: ct.into(),
        kind,
        nullable: true,
        generated: false,
        charset: None,
        collation: None,
    };
    TableSchema {
        db: "fr_capture".into(),
        name: "t".into(),
        columns: vec![
            col("id", "int", "int(11)", ColumnKind::Int { unsigned: false }),
            col("v", "varchar", "varchar(10)", ColumnKind::Text),
        ],
        primary_key: Some(vec![0]),
        unique_keys: vec![],
        engine: None,
        estimated_rows: 0,
        data_length: 0,
        system_time: None,
    }
}

#[test]
fn captured_mariadb_binlog_translates() {
    let (evs, err) = events(SAMPLE);
    assert!(err.is_none(), "{err:?}");
    let kinds: Vec<String> = evs
        .iter()
        .map(|e| match &e.kind {
            EventKind::Begin { gtid, .. } => format!("begin {}", gtid.as_ref().unwrap()),
            EventKind::Query(q) => format!("query {} {}", q.ends_group, q.sql_text()),
            EventKind::Rows(r) => format!("rows {:?} {}", r.kind, r.rows.len()),
            EventKind::Commit { xid, gtid } => format!("commit {xid:?} {}", gtid.as_ref().unwrap()),
            other => format!("{other:?}"),
        })
        .collect();
    let expected = [
        "begin 0-1-19",
        "query true DROP DATABASE IF EXISTS fr_capture",
        "begin 0-1-20",
        "query true CREATE DATABASE fr_capture",
        "begin 0-1-21",
        "query true CREATE TABLE fr_capture.t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
        "begin 0-1-22",
        "rows Insert 1",
        "commit Some(88) 0-1-22",
        "begin 0-1-23",
        "rows Insert 1",
        "rows Update 1",
        "commit Some(90) 0-1-23",
        "Rotate { fake: false }",
    ];
    assert_eq!(kinds, expected);
    // positions: each event ends where the source file's next event starts
    let ends: Vec<u64> = evs.iter().map(|e| e.pos.pos).collect();
    assert_eq!(
        ends,
        [4247, 4366, 4408, 4510, 4552, 4702, 4744, 4899, 4930, 4972, 5127, 5291, 5322, 4]
    );
    assert_eq!(evs.last().unwrap().pos.file, "mysql-bin.000002");
    assert!(evs.iter().all(|e| e.server_id == 1));
    // decoding without metadata
    let s = schema();
    let rows: Vec<_> = evs
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Rows(r) => Some(r),
            _ => None,
        })
        .collect();
    let d = decode_rows(&s, rows[2]).unwrap();
    assert_eq!(rows[2].kind, RowsKind::Update);
    assert_eq!(
        d,
        vec![(
            Some(vec![Value::Int(1), Value::Bytes(b"a".to_vec())]),
            Some(vec![Value::Int(1), Value::Bytes(b"c".to_vec())])
        )]
    );
    // GTID state: seeded by the GTID_LIST (0-1-23 at the start of .000002 in the sample), then
    // each group
    match &evs[8].kind {
        EventKind::Commit {
            gtid: Some(Gtid::Maria(g)),
            ..
        } => assert_eq!(g.seq, 22),
        other => panic!("{other:?}"),
    }
}

#[test]
fn corrupted_byte_fails_crc() {
    let mut bytes = SAMPLE.to_vec();
    // flip a byte inside the CREATE TABLE statement text
    let at = bytes.windows(12).position(|w| w == b"CREATE TABLE").unwrap();
    bytes[at + 1] ^= 0x20;
    let (_, err) = events(&bytes);
    let err = err.expect("a checksum error");
    assert!(matches!(err, ReplayError::Checksum { .. }), "{err}");
    assert_eq!(err.kind(), ferry_core::ErrorKind::Definite);
}

#[test]
fn truncated_file_is_an_error_not_a_panic() {
    for cut in [SAMPLE.len() - 1, SAMPLE.len() - 30, 300, 20] {
        let (_, err) = events(&SAMPLE[..cut]);
        let err = err.unwrap_or_else(|| panic!("no error at cut {cut}"));
        assert_eq!(err.kind(), ferry_core::ErrorKind::Definite, "{err}");
    }
}

#[test]
fn schema_mismatch_is_definite() {
    let (evs, _) = events(SAMPLE);
    let rows = evs
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Rows(r) => Some(r),
            _ => None,
        })
        .unwrap();
    let mut s = schema();
    s.columns.pop();
    let e = decode_rows(&s, rows).unwrap_err();
    assert!(matches!(e, ReplayError::SchemaMismatch { .. }), "{e}");
    assert!(e.to_string().contains("fr_capture.t"), "{e}");
    assert!(e.to_string().contains("mysql-bin.000001:4899"), "{e}");
    let mut s = schema();
    s.columns[0].kind = ColumnKind::Int { unsigned: true };
    s.columns[0].data_type = "bigint".into();
    let e = decode_rows(&s, rows).unwrap_err();
    assert!(e.to_string().contains("MYSQL_TYPE_LONG"), "{e}");
}
