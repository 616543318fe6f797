//! Named fault points: places where the exactly-once argument depends on what happens if the
//! process dies or the connection fails *exactly there*. Tests name a point in the environment
//! variable `FERRY_FAULTS` of a `ferry` subprocess and the point then ends the process or fails
//! the operation with a transient error at a chosen hit, or freezes the process (a node paused
//! past its lease, for the fencing tests).
//!
//! ```text
//! FERRY_FAULTS=replay.before_commit=exit@3              # exit at the 3rd hit (like kill -9)
//! FERRY_FAULTS=load.chunk_written=error@2,verify.chunk=error   # a transient error, once
//! FERRY_FAULTS=replay.before_commit=stop@5              # freeze (SIGSTOP) at the 5th hit
//! ```
//!
//! Each entry is `NAME=ACTION[@N]`, entries separated by `,` or `;`. `N` (default 1) is the
//! 1-based hit of that point at which the action happens; it happens once.
//!
//! - `exit`: the process ends at once with status [`EXIT_CODE`] (no destructor, no flush, no
//!   orderly close of the server connections beyond what the kernel does): the open target
//!   transactions roll back as after a `kill -9`.
//! - `error`: [`point`] returns an I/O error (`connection reset`), which every engine classifies
//!   as transient: the phase retries from its checkpoint as after a network cut.
//! - `stop`: the process stops itself with SIGSTOP (through `kill(1)`; Unix) and carries on
//!   from here when the test sends SIGCONT: a node frozen at that point, its connections and
//!   open transactions kept, as a paused VM or a long GC pause leaves them.
//!
//! The mechanism is compiled into every build and inert unless `FERRY_FAULTS` is set: the
//! variable is read once, and an unset variable leaves one atomic load and a branch per hit (the
//! points sit at per-chunk, per-batch and per-DDL granularity, never per row). It is not a cargo
//! feature because the tests drive the released binary as a subprocess, exactly as users run it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The process exit status of an `exit` fault.
pub const EXIT_CODE: i32 = 86;

/// The environment variable naming the faults to inject.
pub const ENV: &str = "FERRY_FAULTS";

/// A replayed DDL statement has been applied on the target, its checkpoint not yet written.
pub const REPLAY_DDL_APPLIED: &str = "replay.ddl_applied";
/// A batch of replayed transactions has been executed in its target transaction, before the
/// checkpoint UPDATE and COMMIT are sent.
pub const REPLAY_BEFORE_COMMIT: &str = "replay.before_commit";
/// The checkpoint UPDATE and COMMIT round trip has returned, before anything else learns of it
/// (the closest a client gets to "COMMIT sent, reply lost").
pub const REPLAY_AFTER_COMMIT: &str = "replay.after_commit";
/// A full-load chunk's rows have been written in its target transaction, `done` not yet set.
pub const LOAD_CHUNK_WRITTEN: &str = "load.chunk_written";
/// The full load's consistent snapshot is taken and recorded, no chunk read yet.
pub const LOAD_AFTER_SNAPSHOT: &str = "load.after_snapshot";
/// A verification chunk has been digested on both servers (the comparison is under way).
pub const VERIFY_CHUNK: &str = "verify.chunk";
/// A structure statement (database, table, index, foreign key, view, routine, trigger, event)
/// has been applied on the target.
pub const STRUCTURE_DDL_APPLIED: &str = "structure.ddl_applied";

/// Every fault point, by name.
pub const POINTS: &[&str] = &[
    REPLAY_DDL_APPLIED,
    REPLAY_BEFORE_COMMIT,
    REPLAY_AFTER_COMMIT,
    LOAD_CHUNK_WRITTEN,
    LOAD_AFTER_SNAPSHOT,
    VERIFY_CHUNK,
    STRUCTURE_DDL_APPLIED,
];

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// End the process with [`EXIT_CODE`].
    Exit,
    /// Fail with a transient I/O error.
    Error,
    /// Stop the process (SIGSTOP) until it is continued.
    Stop,
}

/// One entry of `FERRY_FAULTS`.
#[derive(Debug)]
struct Fault {
    name: String,
    action: Action,
    at: u64,
    hits: AtomicU64,
}

static FAULTS: OnceLock<Vec<Fault>> = OnceLock::new();

/// Parses a `FERRY_FAULTS` value: `(name, action, hit)` per entry.
pub fn parse(spec: &str) -> Result<Vec<(String, Action, u64)>, String> {
    let mut out = Vec::new();
    for entry in spec.split([',', ';']).map(str::trim).filter(|e| !e.is_empty()) {
        let (name, rest) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?}: expected NAME=ACTION[@N]"))?;
        let name = name.trim();
        if !POINTS.contains(&name) {
            return Err(format!(
                "{name:?} is not a fault point (known: {})",
                POINTS.join(", ")
            ));
        }
        let (action, at) = match rest.split_once('@') {
            Some((a, n)) => (
                a.trim(),
                n.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{entry:?}: the hit after @ must be a positive number"))?,
            ),
            None => (rest.trim(), 1),
        };
        let action = match action {
            "exit" | "abort" => Action::Exit,
            "error" => Action::Error,
            "stop" => Action::Stop,
            other => {
                return Err(format!(
                    "{entry:?}: unknown action {other:?} (exit, error or stop)"
                ))
            }
        };
        out.push((name.to_string(), action, at));
    }
    Ok(out)
}

fn faults() -> &'static [Fault] {
    FAULTS.get_or_init(|| {
        let Ok(spec) = std::env::var(ENV) else {
            return Vec::new();
        };
        match parse(&spec) {
            Ok(list) => list
                .into_iter()
                .map(|(name, action, at)| Fault {
                    name,
                    action,
                    at,
                    hits: AtomicU64::new(0),
                })
                .collect(),
            Err(e) => {
                // A test that names a wrong point must not pass silently: say so loudly and stop.
                eprintln!("ferry: {ENV}: {e}");
                std::process::exit(2);
            }
        }
    })
}

/// A fault point. Returns `Ok(())` unless `FERRY_FAULTS` names this point with `error` at this
/// hit; with `exit` at this hit the process ends here.
#[inline]
pub fn point(name: &'static str) -> Result<(), mysql_async::Error> {
    let list = faults();
    if list.is_empty() {
        return Ok(());
    }
    fire(list, name)
}

#[cold]
fn fire(list: &[Fault], name: &'static str) -> Result<(), mysql_async::Error> {
    for f in list.iter().filter(|f| f.name == name) {
        let hit = f.hits.fetch_add(1, Ordering::SeqCst) + 1;
        if hit != f.at {
            continue;
        }
        match f.action {
            Action::Exit => {
                eprintln!("ferry: fault point {name}: exit at hit {hit}");
                std::process::exit(EXIT_CODE);
            }
            Action::Stop => {
                eprintln!("ferry: fault point {name}: stopped (SIGSTOP) at hit {hit}");
                // Blocks this thread until the process is continued (test-only: inert unless
                // FERRY_FAULTS names the point).
                let pid = std::process::id().to_string();
                if let Err(e) = std::process::Command::new("kill").args(["-STOP", &pid]).status() {
                    eprintln!("ferry: fault point {name}: kill -STOP {pid}: {e}");
                }
                eprintln!("ferry: fault point {name}: continued");
            }
            Action::Error => {
                eprintln!("ferry: fault point {name}: transient error at hit {hit}");
                tracing::warn!(point = name, hit, "fault point: injected transient error");
                return Err(mysql_async::Error::Io(mysql_async::IoError::Io(
                    std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        format!("fault point {name} injected a transient error"),
                    ),
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{classify_mysql, ErrorKind};

    #[test]
    fn parses_entries() {
        let p = parse("replay.before_commit=exit@3, load.chunk_written=error;verify.chunk=abort").unwrap();
        assert_eq!(
            p,
            vec![
                ("replay.before_commit".to_string(), Action::Exit, 3),
                ("load.chunk_written".to_string(), Action::Error, 1),
                ("verify.chunk".to_string(), Action::Exit, 1),
            ]
        );
        assert!(parse("").unwrap().is_empty());
        assert!(parse("nope=exit").unwrap_err().contains("not a fault point"));
        assert!(parse("verify.chunk=boom").unwrap_err().contains("unknown action"));
        assert_eq!(parse("verify.chunk=stop@2").unwrap()[0].1, Action::Stop);
        assert!(parse("verify.chunk=exit@0").is_err());
        assert!(parse("verify.chunk").is_err());
    }

    #[test]
    fn error_fires_once_at_its_hit_and_is_transient() {
        let list: Vec<Fault> = vec![Fault {
            name: VERIFY_CHUNK.into(),
            action: Action::Error,
            at: 2,
            hits: AtomicU64::new(0),
        }];
        assert!(fire(&list, VERIFY_CHUNK).is_ok());
        let e = fire(&list, VERIFY_CHUNK).unwrap_err();
        assert_eq!(classify_mysql(&e), ErrorKind::Transient);
        assert!(e.to_string().contains("verify.chunk"));
        assert!(fire(&list, VERIFY_CHUNK).is_ok());
        assert!(fire(&list, LOAD_CHUNK_WRITTEN).is_ok());
    }

    #[test]
    fn inert_without_the_variable() {
        // The test process does not set FERRY_FAULTS.
        if std::env::var(ENV).is_err() {
            for p in POINTS {
                assert!(point(p).is_ok());
            }
        }
    }
}
