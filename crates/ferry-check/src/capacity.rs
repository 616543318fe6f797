//! Capacity items: free disk on the target against the source's data size (measurable only when
//! the target runs on this machine: `df` on its `@@datadir`), and whether the fast load path
//! (`LOAD DATA LOCAL INFILE`) is available on the target.

use crate::{Ctx, Skip, Verdict};

/// Safety factor over the source's data + index size (Huawei DRS asks for 1.5×).
const FACTOR: f64 = 1.5;

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

/// True for host names that mean this machine.
pub(crate) fn is_local(host: &str) -> bool {
    matches!(host.trim(), "127.0.0.1" | "localhost" | "::1" | "[::1]") || host.starts_with("127.")
}

/// Parses the last line of `df -Pk PATH`: the available KiB in the 4th column, in bytes.
pub(crate) fn parse_df(out: &str) -> Option<u64> {
    let line = out.lines().rfind(|l| !l.trim().is_empty())?;
    let avail: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(avail.saturating_mul(1024))
}

/// Free bytes on the file system of `path`, with `df -Pk` (no extra dependency).
pub(crate) async fn free_bytes(path: &str) -> Result<u64, String> {
    let out = tokio::process::Command::new("df")
        .arg("-Pk")
        .arg(path)
        .output()
        .await
        .map_err(|e| format!("cannot run df: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "df {path} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_df(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| "cannot read df's output".into())
}

/// Free space on the target against the source's size.
pub(crate) fn judge_disk(source_bytes: u64, free: &Result<u64, String>) -> Verdict {
    let need = (source_bytes as f64 * FACTOR) as u64;
    let size = format!(
        "the selected source tables hold about {} (data + indexes, information_schema estimates); the \
         target needs about {} free ({FACTOR} ×)",
        gib(source_bytes),
        gib(need)
    );
    match free {
        Err(why) => Verdict::warning(format!(
            "free disk on the target is not measurable ({why}): {size}. Check it on the target host (df on \
             its data directory)"
        )),
        Ok(f) if *f < source_bytes => Verdict::failed(format!(
            "only {} free on the target's data directory: {size}. Free disk space or grow the volume before \
             starting",
            gib(*f)
        )),
        Ok(f) if *f < need => Verdict::warning(format!(
            "{} free on the target's data directory, tight: {size} (binlogs, undo and temporary files of the \
             load also take space)",
            gib(*f)
        )),
        Ok(f) => Verdict::passed(format!("{} free on the target's data directory; {size}", gib(*f))),
    }
}

/// `@@local_infile` on the target.
pub(crate) fn judge_local_infile(value: Option<&str>) -> Verdict {
    if crate::binlog::is_on(value) {
        Verdict::passed("local_infile = ON: the fast path (LOAD DATA LOCAL INFILE) is available")
    } else {
        Verdict::warning(format!(
            "local_infile = {} on the target: multi-row INSERT will be used instead of LOAD DATA LOCAL INFILE \
             (slower). For the fast path run SET GLOBAL local_infile = ON on the target (and local_infile = 1 \
             in its configuration)",
            value.unwrap_or("(not set)")
        ))
    }
}

pub(crate) fn disk_space(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let o = ctx.objects()?;
    let t = ctx.target()?;
    let bytes: u64 = o
        .tables
        .iter()
        .map(|tbl| {
            let idx = o
                .extra
                .get(&(tbl.db.clone(), tbl.name.clone()))
                .map(|e| e.index_length)
                .unwrap_or(0);
            tbl.data_length.saturating_add(idx)
        })
        .sum();
    Ok(judge_disk(bytes, &t.datadir_free))
}

pub(crate) fn local_infile(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    Ok(judge_local_infile(ctx.target()?.var("local_infile")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus::*;

    #[test]
    fn disk() {
        let g = 1u64 << 30;
        assert_eq!(judge_disk(10 * g, &Ok(100 * g)).status, Passed);
        assert_eq!(judge_disk(10 * g, &Ok(12 * g)).status, Warning);
        let v = judge_disk(10 * g, &Ok(5 * g));
        assert_eq!(v.status, Failed);
        assert!(v.message.contains("15.00 GiB"));
        let v = judge_disk(10 * g, &Err("the target is not on this machine".into()));
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("not measurable") && v.message.contains("15.00 GiB"));
    }

    #[test]
    fn df_output_and_locality() {
        let out = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                   /dev/sda1        102400000  51200000  40960000      56% /\n";
        assert_eq!(parse_df(out), Some(40_960_000 * 1024));
        assert_eq!(parse_df("garbage"), None);
        assert!(is_local("127.0.0.1") && is_local("localhost") && is_local("::1"));
        assert!(!is_local("db.example"));
    }

    #[test]
    fn infile() {
        assert_eq!(judge_local_infile(Some("ON")).status, Passed);
        assert_eq!(judge_local_infile(Some("1")).status, Passed);
        let v = judge_local_infile(Some("OFF"));
        assert_eq!(v.status, Warning);
        assert!(v.message.contains("multi-row INSERT"));
    }
}
