//! The MySQL GTID state through replay, on real MySQL binlog files (the workplace's
//! `fixtures/mysql-binlogs`): the executed set after each transaction, from the start of a file
//! (seeded by PREVIOUS_GTIDS) and from a position inside it (seeded with a given set, as a
//! replay session seeds it from its checkpoint or snapshot), tagged GTIDs included.
//!
//! The files are not in the repository. They are read from `$FERRY_MYSQL_BINLOGS` or
//! `../shared/fixtures/mysql-binlogs` next to the repository root; when absent, each test prints
//! `skipped: <name>: fixtures folder absent` and passes.

use std::path::{Path, PathBuf};

use ferry_core::GtidSet;
use ferry_replay::translate::{previous_gtids_set, Translator};
use ferry_replay::{BinlogFileReader, BinlogPos, EventKind, Gtid, GtidState, ReplEvent};
use mysql_async::binlog::events::{Event, EventData};
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::BinlogFile;

/// The fixtures with MySQL GTID events (plain, 5.6, tagged).
const GTID_FIXTURES: [&str; 9] = [
    "binlog_transaction_with_GTID.000001",
    "binlog_transaction_with_GTID_TAG.000001",
    "binlog_56_gtid_reserved_word.000001",
    "binlog-invisible-columns.000001",
    "mysql-enum-string-set.000001",
    "mysql_type_bit.000001",
    "rpl_atomic_ddl_rollback_full.000001",
    "rpl_atomic_ddl_rollback_table.000001",
    "rpl_atomic_ddl_rollback_view.000001",
];

fn fixtures(test: &str) -> Option<PathBuf> {
    let dir = std::env::var("FERRY_MYSQL_BINLOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/mysql-binlogs")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: {test}: fixtures folder absent");
        None
    }
}

fn events(dir: &Path, name: &str) -> Vec<Event> {
    let f = std::fs::File::open(dir.join(name)).unwrap();
    BinlogFile::new(BinlogVersion::Version4, std::io::BufReader::new(f))
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
}

/// The file's PREVIOUS_GTIDS set, read with mysql_common directly.
fn previous(evs: &[Event]) -> GtidSet {
    evs.iter()
        .find_map(|e| match e.read_data() {
            Ok(Some(EventData::PreviousGtidsEvent(p))) => Some(previous_gtids_set(&p)),
            _ => None,
        })
        .expect("a PREVIOUS_GTIDS event")
}

/// The GTID a group-ending event carries.
fn group_gtid(e: &ReplEvent) -> Option<(String, Option<String>, u64)> {
    let g = match &e.kind {
        EventKind::Commit { gtid, .. } | EventKind::Rollback { gtid } => gtid.as_ref(),
        EventKind::Query(q) if q.ends_group => None,
        _ => None,
    };
    match g {
        Some(Gtid::Mysql { uuid, tag, gno }) => Some((uuid.clone(), tag.clone(), *gno)),
        _ => None,
    }
}

fn state(t: &Translator) -> Option<GtidSet> {
    match t.gtid_state() {
        Some(GtidState::Mysql(s)) => Some(s.clone()),
        _ => None,
    }
}

#[test]
fn gtid_set_after_each_transaction_from_the_file_start() {
    let Some(dir) = fixtures("gtid_set_after_each_transaction_from_the_file_start") else {
        return;
    };
    for name in GTID_FIXTURES {
        let evs = events(&dir, name);
        let mut expected = previous(&evs);
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let mut r = BinlogFileReader::new(name, &bytes[..]).unwrap();
        let mut groups = 0;
        let mut last_gtid = None;
        while let Some(e) = r.next_event().unwrap_or_else(|err| panic!("{name}: {err}")) {
            if let EventKind::Begin {
                gtid: Some(Gtid::Mysql { uuid, tag, gno }),
                ..
            } = &e.kind
            {
                last_gtid = Some((uuid.clone(), tag.clone(), *gno));
            }
            if !e.ends_group() {
                continue;
            }
            groups += 1;
            let g = group_gtid(&e).or(last_gtid.take());
            let (uuid, tag, gno) = g.unwrap_or_else(|| panic!("{name}: a group without GTID at {}", e.pos));
            assert!(
                !expected.contains_gtid(&uuid, tag.as_deref(), gno),
                "{name}: {uuid}:{tag:?}:{gno} already executed"
            );
            expected.add(&uuid, tag.as_deref(), gno);
            assert_eq!(
                state(r.translator()),
                Some(expected.clone()),
                "{name} at {}",
                e.pos
            );
        }
        assert!(groups > 0, "{name}: no group");
        println!("{name}: {groups} groups, set {expected}");
    }
}

#[test]
fn tagged_fixture_set_is_exact() {
    let Some(dir) = fixtures("tagged_fixture_set_is_exact") else {
        return;
    };
    let name = "binlog_transaction_with_GTID_TAG.000001";
    let evs = events(&dir, name);
    assert_eq!(
        previous(&evs).to_string(),
        "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2"
    );
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let mut r = BinlogFileReader::new(name, &bytes[..]).unwrap();
    while r.next_event().unwrap().is_some() {}
    assert_eq!(
        state(r.translator()).unwrap().to_string(),
        "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-3"
    );
}

/// As a replay session does after a checkpoint: the stream starts at a group boundary inside
/// the file (format description first, no PREVIOUS_GTIDS), with the checkpoint's set.
#[test]
fn gtid_set_after_each_transaction_from_a_position_with_a_seed() {
    let Some(dir) = fixtures("gtid_set_after_each_transaction_from_a_position_with_a_seed") else {
        return;
    };
    for name in GTID_FIXTURES {
        let evs = events(&dir, name);
        // the end of the first group is the start position
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let all: Vec<ReplEvent> = BinlogFileReader::new(name, &bytes[..])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let Some(first_end) = all.iter().find(|e| e.ends_group()).map(|e| e.pos.pos) else {
            panic!("{name}: no group")
        };
        if all.iter().filter(|e| e.ends_group()).count() < 2 {
            continue;
        }
        // a seed that has nothing to do with the file, plus the file's history and first group
        let mut seed: GtidSet = "0e11fa47-71ca-11e1-9e33-c80aa9429562:1-100:other:5"
            .parse()
            .unwrap();
        seed.union_with(&previous(&evs));
        let mut t = Translator::new(BinlogPos::new(name, first_end))
            .with_gtid_state(Some(GtidState::Mysql(seed.clone())));
        let mut expected = seed;
        let mut cur = None;
        let mut checked = 0;
        for ev in &evs {
            let h = ev.header();
            let is_fde = h.event_type_raw() == 15;
            if !is_fde && u64::from(h.log_pos()) <= first_end {
                continue;
            }
            let Some(e) = t.feed(ev).unwrap_or_else(|err| panic!("{name}: {err}")) else {
                continue;
            };
            if let EventKind::Begin {
                gtid: Some(Gtid::Mysql { uuid, tag, gno }),
                ..
            } = &e.kind
            {
                cur = Some((uuid.clone(), tag.clone(), *gno));
            }
            if e.ends_group() {
                let (uuid, tag, gno) = cur.take().expect("a GTID before each group");
                expected.add(&uuid, tag.as_deref(), gno);
                assert_eq!(state(&t), Some(expected.clone()), "{name} at {}", e.pos);
                checked += 1;
            }
        }
        assert!(checked > 0, "{name}");
        // the reported position text is the set, parseable back
        let text = t.gtid_state().map(GtidState::to_position).unwrap().to_string();
        assert_eq!(text.parse::<GtidSet>().unwrap(), expected, "{name}");
    }
}
