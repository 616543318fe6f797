#!/usr/bin/env python3
"""Turns benches/replay.sh's recorded runs into the result table (stdout and a Markdown file).

usage: report_replay.py META RUNS LAG_SAMPLES FERRY_LAG OUT.md

META: key<TAB>value lines; RUNS: tool, status, seconds, tps, rows_per_s, loadavg, note;
LAG_SAMPLES: one heartbeat lag per line in microseconds (target clock minus the source time of the
last applied heartbeat); FERRY_LAG: ferry's own reported lag in seconds, one per progress line.
"""

import sys


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def numbers(path):
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                try:
                    out.append(float(line))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def main():
    meta_path, runs_path, samples_path, ferry_lag_path, out_path = sys.argv[1:6]
    meta = {r[0]: (r[1] if len(r) > 1 else "") for r in read_tsv(meta_path)}
    runs = read_tsv(runs_path)[1:]
    native = next((r for r in runs if r[0] == "native" and r[1] == "ok"), None)
    lines = []
    lines.append("Incremental replay benchmark, %s" % meta.get("date", "?"))
    lines.append("")
    lines.append(
        "Backlog: %s oltp_write_only transactions, %s row changes, %.1f MB of binlog; %s tables of %s; "
        "built with %s sysbench threads while nothing replayed."
        % (
            meta.get("backlog_txns", "?"),
            meta.get("backlog_rows", "?"),
            int(meta.get("backlog_bytes", "0") or 0) / 1e6,
            meta.get("tables", "?").split(" x ")[0],
            meta.get("tables", "?").split(" x ")[-1],
            meta.get("load_threads", "?"),
        )
    )
    lines.append("")
    lines.append("| catch-up | status | seconds | transactions/s | rows/s | vs native | load avg | note |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---|")
    for r in runs:
        r = r + [""] * (7 - len(r))
        ratio = ""
        if native and r[1] == "ok" and r[0] != "native":
            try:
                ratio = "%.2f×" % (float(native[2]) / float(r[2]))
            except (ValueError, ZeroDivisionError):
                ratio = ""
        elif r[0] == "native" and r[1] == "ok":
            ratio = "1.00×"
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (r[0], r[1], r[2], r[3], r[4], ratio, r[5], r[6]))
    lines.append("")
    samples = [s / 1e6 for s in numbers(samples_path)]
    ferry_lag = numbers(ferry_lag_path)
    if samples:
        lines.append(
            "Lag under `sysbench oltp_write_only --threads=%s` at full speed for %s s (%s transactions/s on "
            "the source), ferry with %s apply workers:"
            % (meta.get("load_threads", "?"), meta.get("lag_seconds", "?"), meta.get("lag_source_tps", "?"),
               meta.get("lag_workers", "?"))
        )
        lines.append("")
        lines.append("| lag | samples | max | p99 | p50 |")
        lines.append("|---|---:|---:|---:|---:|")
        lines.append(
            "| heartbeat on the target (100 ms writes, 200 ms reads) | %d | %.3f s | %.3f s | %.3f s |"
            % (len(samples), max(samples), pct(samples, 99), pct(samples, 50))
        )
        if ferry_lag:
            lines.append(
                "| ferry's own report (1 s source timestamps) | %d | %.1f s | %.1f s | %.1f s |"
                % (len(ferry_lag), max(ferry_lag), pct(ferry_lag, 99), pct(ferry_lag, 50))
            )
        lines.append("")
        if meta.get("lag_check"):
            lines.append("After the lag run: %s." % meta["lag_check"])
            lines.append("")
    lines.append(
        "Machine: %s cores, buffer pool %s per server, %s; %s; ferry %s."
        % (meta.get("nproc", "?"), meta.get("buffer_pool", "?"), meta.get("server", "?"),
           meta.get("sysbench", "?"), meta.get("ferry", "?"))
    )
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
