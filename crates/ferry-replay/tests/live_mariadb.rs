//! Live tests against the MariaDB source test server (`scripts/servers.sh start`): the reader's
//! session preparation, positions and GTIDs, group structure, heartbeats, error kinds, and the
//! decoded values compared with what a binary-protocol SELECT returns for the same rows.
//!
//! Only databases named `fr_*` are touched. Other engineers share the server, so the stream
//! also carries their events: the tests filter by database and never change globals.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_core::catalog;
use ferry_core::{ErrorKind, MariaGtidPos};
use ferry_replay::{
    BinlogPos, BinlogReader, EventKind, Gtid, ReaderOptions, ReplEvent, ReplayError, RowPair, RowsKind,
    StartPosition, TableDecoder,
};
use ferry_testkit as tk;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

static SERVER_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A distinct replica server id per reader (two readers with one id kick each other out).
fn server_id() -> u32 {
    let base = 4_000_000 + (std::process::id() % 10_000) * 100;
    base + SERVER_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

async fn master_pos(conn: &mut Conn) -> Result<(BinlogPos, MariaGtidPos)> {
    let row: Row = conn
        .query_first("SHOW MASTER STATUS")
        .await?
        .context("binlog is off on the source")?;
    let file: String = row.get(0).context("file")?;
    let pos: u64 = row.get(1).context("pos")?;
    let g: String = tk::scalar(conn, "SELECT @@GLOBAL.gtid_binlog_pos").await?;
    Ok((BinlogPos::new(file, pos), g.parse()?))
}

/// The server's GTID of `domain` at a binlog position (`BINLOG_GTID_POS`).
async fn gtid_at(
    conn: &mut Conn,
    pos: &BinlogPos,
    domain: u32,
) -> Result<Option<ferry_core::position::MariaGtid>> {
    let g: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&pos.file, pos.pos))
        .await?;
    let g: MariaGtidPos = g.flatten().context("no GTID at position")?.parse()?;
    Ok(g.0.into_iter().find(|x| x.domain == domain))
}

fn non_blocking() -> ReaderOptions {
    ReaderOptions {
        non_blocking: true,
        ..ReaderOptions::default()
    }
}

/// All events up to the current end of the binlog.
async fn read_to_end(start: StartPosition) -> Result<(Vec<ReplEvent>, BinlogReader)> {
    let mut r = BinlogReader::open_with(&tk::source(), server_id(), start, non_blocking()).await?;
    let mut out = Vec::new();
    while let Some(e) = r.next().await? {
        out.push(e);
    }
    Ok((out, r))
}

/// The events of the groups that touch `db` (Begin … end), in order.
fn groups_of(evs: &[ReplEvent], db: &str) -> Vec<Vec<ReplEvent>> {
    let mut out = Vec::new();
    let mut cur: Vec<ReplEvent> = Vec::new();
    let mut mine = false;
    for e in evs {
        match &e.kind {
            EventKind::Begin { .. } => {
                cur.clear();
                mine = false;
            }
            EventKind::Rows(r) if r.db == db => mine = true,
            EventKind::Query(q) if q.db == db || q.sql_text().contains(db) => mine = true,
            _ => {}
        }
        cur.push(e.clone());
        if e.ends_group() {
            if mine {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            mine = false;
        }
    }
    out
}

const TYPES_DDL: &str = "CREATE TABLE fr_replay_types.t (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dec1 DECIMAL(20,6), dec2 DECIMAL(5,0), dec3 DECIMAL(65,30),
  b1 BIT(1), b13 BIT(13), b64 BIT(64),
  y YEAR, dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP NULL DEFAULT NULL,
  ts3 TIMESTAMP(3) NULL DEFAULT NULL, tm TIME, tm6 TIME(6),
  e ENUM('a','b''c','é',' x'), s SET('x','y','z','w'''),
  c CHAR(5), vc VARCHAR(300), tx TEXT, bn BINARY(4), vb VARBINARY(10), bl BLOB, lt LONGTEXT,
  l1 CHAR(3) CHARACTER SET latin1,
  j JSON, g GEOMETRY, u UUID, ip6 INET6, ip4 INET4,
  gen INT AS (i + 1) VIRTUAL, gens INT AS (ti * 2) STORED
) ENGINE=InnoDB";

const COLS: &str = "id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, f, d, dec1, dec2, dec3, b1, b13, b64, \
  y, dt, dtm, dtm6, ts, ts3, tm, tm6, e, s, c, vc, tx, bn, vb, bl, lt, l1, j, g, u, ip6, ip4";

async fn select_all(conn: &mut Conn, db: &str, table: &str) -> Result<BTreeMap<i64, Vec<Value>>> {
    conn.query_drop("SET time_zone = '+00:00', character_set_results = binary")
        .await?;
    let stmt = conn.prep(format!("SELECT * FROM {db}.{table}")).await?;
    let rows: Vec<Row> = conn.exec(&stmt, ()).await?;
    conn.query_drop("SET character_set_results = utf8mb4").await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let v = r.unwrap();
        let id = match v[0] {
            Value::Int(i) => i,
            ref o => bail!("id {o:?}"),
        };
        out.insert(id, v);
    }
    Ok(out)
}

fn key(row: &[Value]) -> i64 {
    match row[0] {
        Value::Int(i) => i,
        _ => -1,
    }
}

/// Replays decoded rows events on an in-memory copy, checking every before image.
fn apply(state: &mut BTreeMap<i64, Vec<Value>>, kind: RowsKind, pairs: Vec<RowPair>) -> Result<()> {
    for (b, a) in pairs {
        match kind {
            RowsKind::Insert => {
                let a = a.context("insert without after image")?;
                if state.insert(key(&a), a).is_some() {
                    bail!("duplicate insert");
                }
            }
            RowsKind::Update => {
                let (b, a) = (b.context("before")?, a.context("after")?);
                let old = state.remove(&key(&b)).context("update of a missing row")?;
                assert_eq!(old, b, "update before image");
                state.insert(key(&a), a);
            }
            RowsKind::Delete => {
                let b = b.context("before")?;
                let old = state.remove(&key(&b)).context("delete of a missing row")?;
                assert_eq!(old, b, "delete before image");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_type_decodes_like_a_select() -> Result<()> {
    let db = "fr_replay_types";
    let mut conn = tk::connect(&tk::source()).await?;
    tk::fresh_db(&mut conn, db).await?;
    tk::exec(&mut conn, TYPES_DDL).await?;
    let schema = catalog::read_tables(&mut conn, db, &["t".to_string()]).await?;
    let decoder = TableDecoder::new(&schema[0])?;
    let (start, _) = master_pos(&mut conn).await?;

    let ins = format!("INSERT INTO {db}.t ({COLS}) VALUES ");
    tk::exec(&mut conn, &format!("{}(1{})", ins, ", NULL".repeat(41))).await?;
    tk::exec(
        &mut conn,
        &format!(
            "SET SESSION sql_mode = ''; {ins}(2, -128, 255, -32768, 65535, -8388608, 16777215, \
             -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, \
             -3.4028235e38, 2.2250738585072014e-308, '-99999999999999.999999', '-99999', \
             '0.000000000000000000000000000001', b'1', b'1010101010101', b'1111111111111111111111111111111111111111111111111111111111111111', \
             0, '0000-00-00', '0000-00-00 00:00:00', '9999-12-31 23:59:59.999999', '0000-00-00 00:00:00', \
             '2038-01-19 03:14:07.999', '-838:59:59', '838:59:59.000001', 'b''c', 'x,y,z,w''', \
             'ab', REPEAT('é', 300), REPEAT('t', 5000), 'ab', X'00ff00', X'000102', \
             REPEAT('L', 70000), X'e9e9', '{{\"b\": [1, 2.5, \"x\"], \"a\": null}}', \
             ST_GeomFromText('POINT(1 2)'), '123e4567-e89b-12d3-a456-426614174000', '::ffff:1.2.3.4', '10.0.0.1'); \
             SET SESSION sql_mode = DEFAULT"
        ),
    )
    .await?;
    tk::exec(
        &mut conn,
        &format!(
            "{ins}(3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.1, 0.1, '1.5', '7', '1.25', b'0', b'1', b'10', \
             2024, '2024-02-29', '2024-02-29 12:34:56', '2024-02-29 12:34:56.000100', \
             '1970-01-01 00:00:01', '2024-02-29 12:34:56.789', '12:34:56', '-00:00:00.5', \
             'é', '', 'é  ', 'v', 't', X'01', X'', X'', '', 'abc', '[]', \
             ST_GeomFromText('LINESTRING(0 0, 1 1)'), '00000000-0000-0000-0000-000000000001', '2001:db8::1', '0.0.0.0'),
             (4, 127, 128, 0, 0, -1, 8388608, 0, 2147483648, 0, 9223372036854775808, \
             1, -1, '0', '0', '0', NULL, b'0', b'0', 1901, '1000-01-01', '1000-01-01 00:00:00', \
             NULL, '2000-01-01', NULL, '00:00:00', NULL, ' x', 'y', NULL, '', '', NULL, NULL, NULL, \
             NULL, NULL, '{{}}', NULL, NULL, '::', NULL)"
        ),
    )
    .await?;
    // updates, deletes, a multi-statement transaction and a rolled back one
    tk::exec(
        &mut conn,
        &format!(
            "UPDATE {db}.t SET tiu = 254, biu = biu - 1, e = 'a', s = 'z', ts = '2001-02-03 04:05:06' WHERE id = 2; \
             DELETE FROM {db}.t WHERE id = 1"
        ),
    )
    .await?;
    tk::exec(
        &mut conn,
        &format!(
            "START TRANSACTION; UPDATE {db}.t SET id = 10, c = 'moved' WHERE id = 4; \
             INSERT INTO {db}.t (id, ti) VALUES (5, 5); DELETE FROM {db}.t WHERE id = 3; COMMIT"
        ),
    )
    .await?;
    tk::exec(
        &mut conn,
        &format!("START TRANSACTION; INSERT INTO {db}.t (id, ti) VALUES (99, 99); ROLLBACK"),
    )
    .await?;
    // a DDL and a row with the new shape
    tk::exec(&mut conn, &format!("ALTER TABLE {db}.t ADD COLUMN extra INT")).await?;
    let schema2 = catalog::read_tables(&mut conn, db, &["t".to_string()]).await?;
    let decoder2 = TableDecoder::new(&schema2[0])?;
    tk::exec(&mut conn, &format!("UPDATE {db}.t SET extra = 42 WHERE id = 5")).await?;
    let expected = select_all(&mut conn, db, "t").await?;

    let (evs, reader) = read_to_end(StartPosition::FilePos(start.clone())).await?;
    let groups = groups_of(&evs, db);
    // 1 insert, 1 insert, 1 multi-row insert, update, delete, the transaction, ALTER, update
    assert_eq!(groups.len(), 8, "{groups:#?}");
    let mut state = BTreeMap::new();
    let mut altered = false;
    let mut prev_pos = start.clone();
    for g in &groups {
        let EventKind::Begin { gtid, .. } = &g[0].kind else {
            panic!("group without Begin: {g:?}")
        };
        assert!(matches!(gtid, Some(Gtid::Maria(_))), "{gtid:?}");
        for e in g {
            // (file, offset) order: a rotation by a concurrent writer keeps it increasing
            assert!(e.pos > prev_pos, "positions advance: {e:?}");
            prev_pos = e.pos.clone();
            match &e.kind {
                EventKind::Rows(r) => {
                    let d = if altered { &decoder2 } else { &decoder };
                    apply(&mut state, r.kind, d.decode(r)?)?;
                }
                EventKind::Query(q) => {
                    assert!(q.ends_group);
                    assert_eq!(q.db, "");
                    assert!(q.sql_text().starts_with("ALTER TABLE"), "{}", q.sql_text());
                    altered = true;
                    // the new column comes last, NULL in the existing rows
                    for row in state.values_mut() {
                        row.push(Value::NULL);
                    }
                }
                EventKind::Rollback { .. } => panic!("rolled back group in the binlog"),
                _ => {}
            }
        }
        assert!(g.last().unwrap().ends_group());
    }
    assert!(!state.contains_key(&99));
    assert_eq!(state.len(), expected.len());
    for (k, v) in &expected {
        assert_eq!(state.get(k), Some(v), "row {k}");
    }
    assert!(reader.gtid_position().is_some());
    tk::drop_dbs(&mut conn, &[db]).await?;
    Ok(())
}

#[tokio::test]
async fn gtid_start_skips_earlier_groups_and_ddl_has_its_db() -> Result<()> {
    let db = "fr_replay_gtid";
    let mut conn = tk::connect(&tk::source()).await?;
    tk::fresh_db(&mut conn, db).await?;
    tk::exec(
        &mut conn,
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"),
    )
    .await?;
    let (start, _) = master_pos(&mut conn).await?;
    tk::exec(&mut conn, &format!("INSERT INTO {db}.t VALUES (1, 1)")).await?;
    let (mid_pos, mid_gtid) = master_pos(&mut conn).await?;
    tk::exec(&mut conn, &format!("INSERT INTO {db}.t VALUES (2, 2)")).await?;
    tk::exec(&mut conn, &format!("USE {db}; CREATE TABLE t2 (a INT)")).await?;
    let (end_pos, end_gtid) = master_pos(&mut conn).await?;

    // from the file position
    let (evs, r) = read_to_end(StartPosition::FilePos(start.clone())).await?;
    let groups = groups_of(&evs, db);
    assert_eq!(groups.len(), 3);
    // each group ends exactly at the position the server maps to its GTID (other engineers
    // write concurrently, so SHOW MASTER STATUS is only a lower bound)
    for g in &groups {
        let Some(Gtid::Maria(gtid)) = g.iter().find_map(|e| match &e.kind {
            EventKind::Begin { gtid, .. } => gtid.clone(),
            _ => None,
        }) else {
            panic!("no GTID")
        };
        assert_eq!(
            gtid_at(&mut conn, &g.last().unwrap().pos, gtid.domain).await?,
            Some(gtid)
        );
    }
    assert!(groups[0].last().unwrap().pos <= mid_pos || groups[0].last().unwrap().pos.file != mid_pos.file);
    assert!(r.position().pos >= end_pos.pos || r.position().file != end_pos.file);
    let ddl = groups[2]
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Query(q) => Some(q.clone()),
            _ => None,
        })
        .context("no DDL")?;
    assert_eq!(ddl.db, db);
    assert!(ddl.ends_group);
    assert_eq!(ddl.sql_text(), "CREATE TABLE t2 (a INT)");
    assert!(ddl.charset.is_some() && ddl.sql_mode.is_some());
    // GTIDs: the Commit of each group carries its GTID, consecutive in domain 0
    let gtids: Vec<Gtid> = groups
        .iter()
        .map(|g| match &g[0].kind {
            EventKind::Begin { gtid: Some(g), .. } => g.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let Gtid::Maria(last) = &gtids[2] else { panic!() };
    let end0 = end_gtid
        .0
        .iter()
        .find(|g| g.domain == 0)
        .copied()
        .context("domain 0")?;
    assert!(last.seq <= end0.seq);
    // the BINLOG_GTID_POS seed advanced with each group
    if let Some(ferry_core::Position::MariaGtidPos { pos }) = r.gtid_position() {
        assert!(pos.0.iter().any(|g| g.domain == 0 && g.seq >= last.seq));
    } else {
        panic!("no GTID position");
    }

    // from the GTID after the first insert: it is skipped
    let (evs, _) = read_to_end(StartPosition::MariaGtid(mid_gtid.clone())).await?;
    let groups = groups_of(&evs, db);
    assert_eq!(groups.len(), 2, "{groups:#?}");
    assert_eq!(
        groups[0].iter().find_map(|e| match &e.kind {
            EventKind::Begin { gtid, .. } => gtid.clone(),
            _ => None,
        }),
        Some(gtids[1].clone())
    );
    let rows: Vec<_> = groups[0]
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Rows(r) => Some(r),
            _ => None,
        })
        .collect();
    let schema = catalog::read_tables(&mut conn, db, &["t".to_string()]).await?;
    let d = TableDecoder::new(&schema[0])?.decode(rows[0])?;
    assert_eq!(d[0].1, Some(vec![Value::Int(2), Value::Int(2)]));
    // positions after a GTID start are real file positions too
    let Gtid::Maria(g1) = &gtids[2] else { panic!() };
    assert_eq!(
        gtid_at(&mut conn, &groups[1].last().unwrap().pos, 0).await?,
        Some(*g1)
    );
    let _ = end_pos;
    tk::drop_dbs(&mut conn, &[db]).await?;
    Ok(())
}

#[tokio::test]
async fn heartbeats_arrive_when_idle() -> Result<()> {
    let mut conn = tk::connect(&tk::source()).await?;
    let (start, _) = master_pos(&mut conn).await?;
    let opts = ReaderOptions {
        heartbeat: Duration::from_millis(200),
        ..ReaderOptions::default()
    };
    let mut r =
        BinlogReader::open_with(&tk::source(), server_id(), StartPosition::FilePos(start), opts).await?;
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match r.next().await? {
                Some(e) if e.kind == EventKind::Heartbeat => return Ok::<_, ReplayError>(e),
                Some(_) => {}
                None => unreachable!(),
            }
        }
    })
    .await
    .context("no heartbeat within 20 s")??;
    // the heartbeat carries the current end of the binlog
    let (now, _) = master_pos(&mut conn).await?;
    assert!(got.pos <= now && got.pos.pos > 4, "{:?} vs {now:?}", got.pos);
    assert_eq!(r.position(), got.pos);
    Ok(())
}

#[tokio::test]
async fn unknown_file_and_gtid_are_definite() -> Result<()> {
    let e = BinlogReader::open(
        &tk::source(),
        server_id(),
        StartPosition::FilePos(BinlogPos::new("mysql-bin.999999", 4)),
    )
    .await
    .expect_err("file does not exist");
    assert!(matches!(e, ReplayError::PositionUnavailable { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Definite);
    assert!(e.to_string().contains("mysql-bin.999999"), "{e}");

    let e = BinlogReader::open(
        &tk::source(),
        server_id(),
        StartPosition::MariaGtid("77-1-5".parse()?),
    )
    .await
    .expect_err("domain 77 is not in the binlog");
    assert!(matches!(e, ReplayError::PositionUnavailable { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Definite);
    assert!(e.to_string().contains("77-1-5"), "{e}");

    // a sequence number beyond the source's binlog (server error 1236)
    let e = BinlogReader::open(
        &tk::source(),
        server_id(),
        StartPosition::MariaGtid("0-1-999999999".parse()?),
    )
    .await
    .expect_err("GTID beyond the binlog");
    assert!(matches!(e, ReplayError::PositionUnavailable { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Definite);
    assert!(e.to_string().contains("0-1-999999999"), "{e}");

    let e = BinlogReader::open(
        &tk::source(),
        server_id(),
        StartPosition::MysqlGtidSet("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5".parse()?),
    )
    .await
    .expect_err("MySQL GTIDs on MariaDB");
    assert_eq!(e.kind(), ErrorKind::Definite);
    Ok(())
}

#[tokio::test]
async fn killed_connection_is_transient() -> Result<()> {
    let mut conn = tk::connect(&tk::source()).await?;
    let (start, _) = master_pos(&mut conn).await?;
    let mut r = BinlogReader::open(&tk::source(), server_id(), StartPosition::FilePos(start)).await?;
    // the fake Rotate and format description come first
    let first = r.next().await?.context("first event")?;
    assert_eq!(first.kind, EventKind::Rotate { fake: true });
    conn.query_drop(format!("KILL {}", r.connection_id())).await?;
    let err = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Err(e) = r.next().await {
                return e;
            }
        }
    })
    .await
    .context("no error after KILL")?;
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    // the reader stays failed
    assert_eq!(r.next().await.unwrap_err().kind(), ErrorKind::Transient);
    Ok(())
}
