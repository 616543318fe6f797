//! Binlog items (source): what the incremental phase needs to read every change exactly.
//!
//! A wrong setting is FAILED when the job is incremental and a WARNING otherwise, except
//! `log_bin`: Ferry's full load records the binlog position of its snapshot and refuses to start
//! without a binary log, so `log_bin = OFF` is FAILED for every job with data.

use ferry_core::Flavor;

use crate::facts::ServerFacts;
use crate::{Ctx, Skip, Verdict};

pub(crate) fn is_on(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_uppercase()).as_deref(),
        Some("ON" | "1" | "YES" | "TRUE" | "FORCE")
    )
}

fn shown(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "(not set)".into(),
    }
}

/// The consequence sentence for a bad setting.
fn scope_note(incremental: bool) -> &'static str {
    if incremental {
        "the incremental phase cannot run"
    } else {
        "this job has no incremental phase, but one added later (MigrateType 3) would not run"
    }
}

/// `log_bin`.
pub(crate) fn judge_log_bin(value: Option<&str>) -> Verdict {
    if is_on(value) {
        Verdict::passed("log_bin = ON")
    } else {
        Verdict::failed(format!(
            "the source writes no binary log (log_bin = {}): Ferry's full load records the binlog \
             position of its snapshot and the incremental phase reads the binlog. Add `log_bin = \
             mysql-bin` (and `binlog_format = ROW`, `server_id = N`) under [mysqld] in the source's \
             configuration and restart it",
            shown(value)
        ))
    }
}

/// `binlog_format`.
pub(crate) fn judge_format(value: Option<&str>, incremental: bool) -> Verdict {
    match value {
        Some(v) if v.eq_ignore_ascii_case("ROW") => Verdict::passed("binlog_format = ROW"),
        _ => Verdict::bad(
            incremental,
            format!(
                "binlog_format = {}: Ferry replays row events only, so {}. Run SET GLOBAL binlog_format = \
                 'ROW' and `binlog_format = ROW` in the configuration; sessions already connected keep \
                 their old format until they reconnect",
                shown(value),
                scope_note(incremental)
            ),
        ),
    }
}

/// `binlog_row_image`.
pub(crate) fn judge_row_image(value: Option<&str>, incremental: bool) -> Verdict {
    match value {
        Some(v) if v.eq_ignore_ascii_case("FULL") => Verdict::passed("binlog_row_image = FULL"),
        _ => Verdict::bad(
            incremental,
            format!(
                "binlog_row_image = {}: row events must carry every column to replay updates and deletes \
                 exactly, so {}. Run SET GLOBAL binlog_row_image = 'FULL' and add `binlog_row_image = \
                 FULL` to the configuration",
                shown(value),
                scope_note(incremental)
            ),
        ),
    }
}

/// `binlog_checksum`.
pub(crate) fn judge_checksum(value: Option<&str>, incremental: bool) -> Verdict {
    match value.map(|v| v.trim().to_ascii_uppercase()).as_deref() {
        Some("NONE" | "CRC32") | None => Verdict::passed(format!("binlog_checksum = {}", shown(value))),
        _ => Verdict::bad(
            incremental,
            format!(
                "binlog_checksum = {}: Ferry reads NONE or CRC32 only, so {}. Run SET GLOBAL \
                 binlog_checksum = 'CRC32' and add `binlog_checksum = CRC32` to the configuration",
                shown(value),
                scope_note(incremental)
            ),
        ),
    }
}

/// MariaDB `log_bin_compress`.
pub(crate) fn judge_log_bin_compress(f: &Flavor, value: Option<&str>, incremental: bool) -> Verdict {
    if !f.is_mariadb() {
        return Verdict::passed("not applicable: log_bin_compress is a MariaDB setting");
    }
    if is_on(value) {
        Verdict::bad(
            incremental,
            format!(
                "log_bin_compress = ON: MariaDB writes compressed row events that Ferry does not decode, so \
                 {}. Run SET GLOBAL log_bin_compress = OFF, add `log_bin_compress = OFF` to the \
                 configuration, and start the job after a FLUSH BINARY LOGS",
                scope_note(incremental)
            ),
        )
    } else {
        Verdict::passed("log_bin_compress = OFF")
    }
}

/// MySQL `binlog_row_value_options`: partial JSON updates are replayed as JSON functions over
/// the target column, except in the cases the replay refuses by name.
pub(crate) fn judge_row_value_options(f: &Flavor, value: Option<&str>, incremental: bool) -> Verdict {
    if f.is_mariadb() {
        return Verdict::passed("not applicable: binlog_row_value_options is a MySQL setting");
    }
    match value.map(str::trim) {
        None | Some("") => Verdict::passed("binlog_row_value_options is empty"),
        Some(v) if !incremental => Verdict::passed(format!(
            "binlog_row_value_options = {v:?}: partial JSON updates only matter to an incremental phase"
        )),
        Some(v) => Verdict::warning(format!(
            "binlog_row_value_options = {v:?}: partial JSON updates are replayed diff by diff, but the \
             replay stops on one for a table without a primary key or NOT NULL unique key, inside an XA \
             transaction, inside the catch-up window of a resumed full load, or with a [last] array \
             index towards MariaDB; on a MariaDB target the changed documents keep MariaDB's member \
             order. To avoid all of it: SET GLOBAL binlog_row_value_options = '' (and in the \
             configuration)"
        )),
    }
}

/// MySQL `binlog_transaction_compression`.
pub(crate) fn judge_transaction_compression(f: &Flavor, value: Option<&str>, incremental: bool) -> Verdict {
    if f.is_mariadb() {
        return Verdict::passed("not applicable: binlog_transaction_compression is a MySQL setting");
    }
    if is_on(value) && incremental {
        Verdict::warning(
            "binlog_transaction_compression = ON: supported (Ferry decompresses Transaction_payload \
             events), at some CPU cost while replaying; SET GLOBAL binlog_transaction_compression = OFF \
             if the replay falls behind",
        )
    } else {
        Verdict::passed(format!("binlog_transaction_compression = {}", shown(value)))
    }
}

/// Seconds binlogs are kept; `None` means they never expire automatically.
pub(crate) fn retention_seconds(src: &ServerFacts) -> Option<u64> {
    let secs = src.var_u64("binlog_expire_logs_seconds").unwrap_or(0);
    if secs > 0 {
        return Some(secs);
    }
    let days = src
        .var("expire_logs_days")
        .and_then(|d| d.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (days > 0.0).then_some((days * 86_400.0) as u64)
}

fn hours(secs: u64) -> String {
    format!("{:.1} h", secs as f64 / 3600.0)
}

/// Binlog retention against twice the estimated full-load time.
pub(crate) fn judge_retention(
    f: &Flavor,
    retention: Option<u64>,
    estimated_load: Option<u64>,
    incremental: bool,
) -> Verdict {
    if !incremental {
        return Verdict::passed(
            "not needed: the job has no incremental phase, so the binlog is not read after the snapshot",
        );
    }
    let Some(ret) = retention else {
        return Verdict::passed(
            "binlogs never expire automatically (expiry = 0); make sure no cron job or backup tool \
             purges them (PURGE BINARY LOGS) while the job runs",
        );
    };
    let var = if f.is_mariadb() && !f.at_least(10, 6, 0) {
        "expire_logs_days"
    } else {
        "binlog_expire_logs_seconds"
    };
    let fix = |need: u64| {
        if var == "expire_logs_days" {
            format!("SET GLOBAL expire_logs_days = {}", need.div_ceil(86_400))
        } else {
            format!("SET GLOBAL binlog_expire_logs_seconds = {need}")
        }
    };
    match estimated_load {
        Some(load) => {
            let need = load.saturating_mul(2).max(3600);
            if ret < need {
                Verdict::failed(format!(
                    "binlogs are kept {} but the full load is estimated at {}: the binlog from the \
                     snapshot position may be purged before the incremental phase reads it (keep at least \
                     twice the load time). Run {} and set it in the configuration",
                    hours(ret),
                    hours(load),
                    fix(need)
                ))
            } else {
                Verdict::passed(format!(
                    "binlogs are kept {}, at least twice the estimated full load ({})",
                    hours(ret),
                    hours(load)
                ))
            }
        }
        None if ret < 86_400 => Verdict::warning(format!(
            "binlogs are kept only {} and the full-load duration is unknown: if the load takes longer than \
             about half of that, the incremental phase cannot start. Consider {}",
            hours(ret),
            fix(7 * 86_400)
        )),
        None => Verdict::passed(format!("binlogs are kept {}", hours(ret))),
    }
}

/// `server_id` of the source: set, and not the target's.
pub(crate) fn judge_server_id(src: Option<u64>, tgt: Option<u64>, incremental: bool) -> Verdict {
    match (src, tgt) {
        (None | Some(0), _) => Verdict::bad(
            incremental,
            format!(
                "the source has server_id = 0 (or none): a server without a server_id refuses binlog \
                 clients, so {}. Set `server_id = <unique number>` under [mysqld] and restart (SET GLOBAL \
                 server_id also works until the restart)",
                scope_note(incremental)
            ),
        ),
        (Some(s), Some(t)) if s == t => Verdict::bad(
            incremental,
            format!(
                "source and target both have server_id = {s}: changes the target writes would look like the \
                 source's own (a reverse or chained replication would skip them). Give the target another \
                 server_id in its configuration (SET GLOBAL server_id = N until the restart)"
            ),
        ),
        (Some(s), t) => Verdict::passed(format!(
            "source server_id = {s}{}",
            t.map(|t| format!(", target server_id = {t}")).unwrap_or_default()
        )),
    }
}

/// `server_uuid` (MySQL): source and target must differ.
pub(crate) fn judge_server_uuid(src: Option<&str>, tgt: Option<&str>, incremental: bool) -> Verdict {
    match (src.filter(|s| !s.is_empty()), tgt.filter(|s| !s.is_empty())) {
        (Some(s), Some(t)) if s.eq_ignore_ascii_case(t) => Verdict::bad(
            incremental,
            format!(
                "source and target have the same server_uuid {s} (a cloned data directory): their GTIDs \
                 would collide. Stop the target, delete auto.cnf in its data directory and restart it to \
                 get a new server_uuid"
            ),
        ),
        (Some(_), Some(_)) => Verdict::passed("source and target server_uuid differ"),
        _ => Verdict::passed("not applicable: MariaDB has no server_uuid (its GTIDs carry the server_id)"),
    }
}

/// GTID mode: information only.
pub(crate) fn judge_gtid(src: &ServerFacts) -> Verdict {
    if src.is_mariadb() {
        let pos = src.var("gtid_binlog_pos").unwrap_or("");
        let strict = is_on(src.var("gtid_strict_mode"));
        Verdict::passed(format!(
            "MariaDB GTID position {}; gtid_strict_mode = {}; Ferry records both the GTID position and \
             file/offset",
            if pos.is_empty() { "(empty)" } else { pos },
            if strict { "ON" } else { "OFF" }
        ))
    } else {
        let mode = src.var("gtid_mode").unwrap_or("OFF");
        if mode.eq_ignore_ascii_case("ON") {
            Verdict::passed(
                "gtid_mode = ON: the snapshot's GTID set is recorded; replay checkpoints record the binlog \
                 file/offset and the GTID set. Replay reads this source server's binlog by file and offset",
            )
        } else {
            Verdict::passed(format!(
                "gtid_mode = {mode}: positions are recorded as binlog file + offset of this source server"
            ))
        }
    }
}

pub(crate) fn log_bin(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_log_bin(ctx.source()?.var("log_bin")))
}

pub(crate) fn format(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_format(
        ctx.source()?.var("binlog_format"),
        ctx.input.incremental,
    ))
}

pub(crate) fn row_image(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_row_image(
        ctx.source()?.var("binlog_row_image"),
        ctx.input.incremental,
    ))
}

pub(crate) fn checksum(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_checksum(
        ctx.source()?.var("binlog_checksum"),
        ctx.input.incremental,
    ))
}

pub(crate) fn log_bin_compress(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let s = ctx.source()?;
    Ok(judge_log_bin_compress(
        &s.flavor(),
        s.var("log_bin_compress"),
        ctx.input.incremental,
    ))
}

pub(crate) fn row_value_options(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let s = ctx.source()?;
    Ok(judge_row_value_options(
        &s.flavor(),
        s.var("binlog_row_value_options"),
        ctx.input.incremental,
    ))
}

pub(crate) fn transaction_compression(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let s = ctx.source()?;
    Ok(judge_transaction_compression(
        &s.flavor(),
        s.var("binlog_transaction_compression"),
        ctx.input.incremental,
    ))
}

pub(crate) fn retention(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    if !ctx.input.incremental {
        return Ok(judge_retention(&Flavor::from_version(""), None, None, false));
    }
    let s = ctx.source()?;
    Ok(judge_retention(
        &s.flavor(),
        retention_seconds(s),
        ctx.input.estimated_load_seconds,
        true,
    ))
}

pub(crate) fn server_id(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let s = ctx.source()?;
    let t = ctx.target().ok().and_then(|t| t.var_u64("server_id"));
    Ok(judge_server_id(s.var_u64("server_id"), t, ctx.input.incremental))
}

pub(crate) fn server_uuid(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let (s, t) = (ctx.source()?, ctx.target()?);
    Ok(judge_server_uuid(
        s.var("server_uuid"),
        t.var("server_uuid"),
        ctx.input.incremental,
    ))
}

pub(crate) fn gtid_mode(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_gtid(ctx.source()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;

    fn maria() -> Flavor {
        Flavor::from_version("10.11.6-MariaDB-log")
    }
    fn mysql() -> Flavor {
        Flavor::from_version("8.0.36")
    }

    #[test]
    fn log_bin_branches() {
        assert_eq!(judge_log_bin(Some("ON")).status, Passed);
        assert_eq!(judge_log_bin(Some("1")).status, Passed);
        let v = judge_log_bin(Some("OFF"));
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("log_bin = mysql-bin"));
        assert_eq!(judge_log_bin(None).status, Failed);
    }

    #[test]
    fn format_image_checksum_branches() {
        assert_eq!(judge_format(Some("ROW"), true).status, Passed);
        assert_eq!(judge_format(Some("MIXED"), true).status, Failed);
        let w = judge_format(Some("STATEMENT"), false);
        assert_eq!(w.status, Warning);
        assert!(w.message.contains("SET GLOBAL binlog_format = 'ROW'"));
        assert_eq!(judge_row_image(Some("FULL"), true).status, Passed);
        assert_eq!(judge_row_image(Some("MINIMAL"), true).status, Failed);
        assert_eq!(judge_row_image(Some("NOBLOB"), false).status, Warning);
        assert_eq!(judge_checksum(Some("CRC32"), true).status, Passed);
        assert_eq!(judge_checksum(Some("NONE"), true).status, Passed);
        assert_eq!(judge_checksum(Some("XXH"), true).status, Failed);
        assert_eq!(judge_checksum(Some("XXH"), false).status, Warning);
    }

    #[test]
    fn flavor_specific_branches() {
        assert_eq!(judge_log_bin_compress(&maria(), Some("OFF"), true).status, Passed);
        assert_eq!(judge_log_bin_compress(&maria(), Some("ON"), true).status, Failed);
        assert_eq!(
            judge_log_bin_compress(&maria(), Some("ON"), false).status,
            Warning
        );
        assert_eq!(judge_log_bin_compress(&mysql(), Some("ON"), true).status, Passed);
        assert_eq!(judge_row_value_options(&mysql(), Some(""), true).status, Passed);
        // applied by the replay (refused by name only in the cases the warning lists)
        assert_eq!(
            judge_row_value_options(&mysql(), Some("PARTIAL_JSON"), true).status,
            Warning
        );
        assert_eq!(
            judge_row_value_options(&mysql(), Some("PARTIAL_JSON"), false).status,
            Passed
        );
        assert_eq!(
            judge_row_value_options(&maria(), Some("PARTIAL_JSON"), true).status,
            Passed
        );
        assert_eq!(
            judge_transaction_compression(&mysql(), Some("ON"), true).status,
            Warning
        );
        assert_eq!(
            judge_transaction_compression(&mysql(), Some("OFF"), true).status,
            Passed
        );
        assert_eq!(
            judge_transaction_compression(&mysql(), Some("ON"), false).status,
            Passed
        );
        assert_eq!(
            judge_transaction_compression(&maria(), Some("ON"), true).status,
            Passed
        );
    }

    #[test]
    fn retention_branches() {
        let facts = |secs: &str, days: &str| {
            ServerFacts::for_test(
                "10.11.6-MariaDB",
                &[("binlog_expire_logs_seconds", secs), ("expire_logs_days", days)],
            )
        };
        assert_eq!(retention_seconds(&facts("0", "0.000000")), None);
        assert_eq!(retention_seconds(&facts("0", "2.5")), Some(216_000));
        assert_eq!(retention_seconds(&facts("3600", "0.041667")), Some(3600));
        assert_eq!(
            judge_retention(&maria(), Some(10), Some(10_000), false).status,
            Passed
        );
        assert_eq!(
            judge_retention(&maria(), None, Some(10_000_000), true).status,
            Passed
        );
        let f = judge_retention(&mysql(), Some(7200), Some(10_000), true);
        assert_eq!(f.status, Failed);
        assert!(
            f.message.contains("binlog_expire_logs_seconds = 20000"),
            "{}",
            f.message
        );
        let old = Flavor::from_version("10.5.20-MariaDB");
        let f = judge_retention(&old, Some(7200), Some(100_000), true);
        assert!(f.message.contains("expire_logs_days = 3"), "{}", f.message);
        assert_eq!(
            judge_retention(&mysql(), Some(30 * 86_400), Some(10_000), true).status,
            Passed
        );
        assert_eq!(judge_retention(&mysql(), Some(3600), None, true).status, Warning);
        assert_eq!(
            judge_retention(&mysql(), Some(2 * 86_400), None, true).status,
            Passed
        );
    }

    #[test]
    fn server_id_and_uuid_branches() {
        assert_eq!(judge_server_id(Some(1), Some(2), true).status, Passed);
        assert_eq!(judge_server_id(Some(0), Some(2), true).status, Failed);
        assert_eq!(judge_server_id(None, None, false).status, Warning);
        let v = judge_server_id(Some(5), Some(5), true);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("server_id = 5"));
        assert_eq!(judge_server_id(Some(5), Some(5), false).status, Warning);
        assert_eq!(judge_server_id(Some(5), None, true).status, Passed);
        assert_eq!(judge_server_uuid(Some("a-b"), Some("c-d"), true).status, Passed);
        let v = judge_server_uuid(Some("a-b"), Some("A-B"), true);
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("auto.cnf"));
        assert_eq!(judge_server_uuid(Some("a-b"), Some("a-b"), false).status, Warning);
        assert_eq!(judge_server_uuid(None, None, true).status, Passed);
    }

    #[test]
    fn gtid_is_information() {
        let m = ServerFacts::for_test(
            "10.11.6-MariaDB",
            &[("gtid_binlog_pos", "0-1-18"), ("gtid_strict_mode", "ON")],
        );
        let v = judge_gtid(&m);
        assert_eq!(v.status, Passed);
        assert!(v.message.contains("0-1-18") && v.message.contains("strict_mode = ON"));
        let my = ServerFacts::for_test("8.0.36", &[("gtid_mode", "ON")]);
        let v = judge_gtid(&my).message;
        assert!(v.contains("the snapshot's GTID set is recorded"), "{v}");
        assert!(v.contains("file/offset and the GTID set"), "{v}");
        assert!(!v.contains("failover"), "{v}");
        let off = ServerFacts::for_test("8.0.36", &[("gtid_mode", "OFF")]);
        let v = judge_gtid(&off).message;
        assert!(v.contains("file + offset") && !v.contains("failover"), "{v}");
    }
}
