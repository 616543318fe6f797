#!/usr/bin/env python3
"""Turns the runs recorded by benches/run.sh into the result table (stdout, plain text) and a
Markdown file.  usage: report.py META_TSV RUNS_TSV OUT_MD  (stdlib only)"""

import csv
import sys

NAMES = {
    "ferry": "ferry",
    "ferry-lockless": "ferry, lock-free",
    "mydumper": "mydumper + myloader",
    "mariadb-dump": "mariadb-dump | mariadb",
    "loaddata": "LOAD DATA ceiling",
}
ORDER = ["ferry", "ferry-lockless", "mydumper", "mariadb-dump", "loaddata"]

# The targets for ferry.
MAX_RATIO_MYDUMPER = 0.8
MAX_RATIO_CEILING = 1.25
MAX_RSS_MB = 200
# Lock-free (one read view per chunk) against the locking snapshot.
MAX_RATIO_LOCKLESS = 1.2


def read_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    return meta


def read_runs(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def pick(runs):
    """Per tool: the successful run with the median wall time, or the reason there is none."""
    chosen = {}
    for tool in ORDER:
        mine = [r for r in runs if r["tool"] == tool]
        if not mine:
            continue
        ok = sorted((r for r in mine if r["status"] == "ok"), key=lambda r: float(r["wall_s"]))
        failed = [r for r in mine if r["status"] == "FAILED"]
        if ok:
            r = dict(ok[(len(ok) - 1) // 2])
            if failed:
                r["note"] = f"{len(failed)} of {len(mine)} runs FAILED; " + r["note"]
            r["runs"] = len(ok)
            # Peak RSS: the highest over all successful runs, not the median run's.
            rss = [int(x["rss_kb"]) for x in ok if x["rss_kb"]]
            r["rss_kb"] = str(max(rss)) if rss else ""
            chosen[tool] = r
        else:
            r = dict(mine[-1])
            chosen[tool] = r
    return chosen


def fmt(x, digits=1):
    if x is None:
        return "—"
    if x >= 1000 and digits <= 1:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def build(meta, runs):
    rows_total = int(meta["rows"])
    data_mb = int(meta["data_bytes"]) / 1e6
    chosen = pick(runs)
    ferry = chosen.get("ferry")
    ferry_wall = float(ferry["wall_s"]) if ferry and ferry["status"] == "ok" else None

    header = ["tool", "wall s", "rows/s", "MB/s", "peak RSS MB", "ferry ratio", "target binlog MB", "notes"]
    table = []
    for tool in ORDER:
        r = chosen.get(tool)
        if r is None:
            continue
        name = NAMES[tool]
        if r["status"] != "ok":
            table.append([name, r["status"], "—", "—", "—", "—", "—", r["note"]])
            continue
        wall = float(r["wall_s"])
        rss = int(r["rss_kb"]) / 1024 if r["rss_kb"] else None
        binlog = int(r["target_binlog_bytes"]) / 1e6 if r["target_binlog_bytes"] else None
        ratio = f"{ferry_wall / wall:.2f}" if ferry_wall is not None else "—"
        note = r["note"]
        if r.get("runs", 1) > 1:
            note = f"median wall of {r['runs']} runs{', highest RSS' if rss is not None else ''}; " + note
        if r.get("loadavg"):
            note += f"; load avg before: {r['loadavg']}"
        table.append([name, f"{wall:.2f}", fmt(rows_total / wall, 0), fmt(data_mb / wall, 1),
                      fmt(rss, 0) if rss is not None else "—", ratio,
                      fmt(binlog, 0) if binlog is not None else "—", note])

    def target(label, value, limit, unit=""):
        if value is None:
            return f"{label}: not measured"
        met = "met" if value <= limit else "NOT MET"
        return f"{label}: {value:.2f}{unit} (target ≤ {limit}{unit}) — {met}"

    def ratio_to(tool):
        r = chosen.get(tool)
        if ferry_wall is None or r is None or r["status"] != "ok":
            return None
        return ferry_wall / float(r["wall_s"])

    ferry_rss = int(ferry["rss_kb"]) / 1024 if ferry_wall is not None and ferry["rss_kb"] else None
    targets = [
        target("ferry / mydumper+myloader wall", ratio_to("mydumper"), MAX_RATIO_MYDUMPER, "×"),
        target("ferry / LOAD DATA ceiling wall", ratio_to("loaddata"), MAX_RATIO_CEILING, "×"),
        (f"ferry peak RSS: {ferry_rss:.0f} MB (target < {MAX_RSS_MB} MB) — "
         + ("met" if ferry_rss < MAX_RSS_MB else "NOT MET")) if ferry_rss is not None
        else "ferry peak RSS: not measured",
    ]
    lockless = chosen.get("ferry-lockless")
    if lockless is not None:
        r = ratio_to("ferry-lockless")
        targets.append(target("ferry lock-free / locking wall", 1 / r if r else None, MAX_RATIO_LOCKLESS, "×"))
    if ferry is not None and ferry["status"] == "SKIPPED":
        targets.append(f"ferry: {ferry['note']}")
    return header, table, targets


def plain(meta, header, table, targets):
    cols = header[:-1]
    width = [max(len(str(x)) for x in [c] + [row[i] for row in table]) for i, c in enumerate(cols)]
    out = [f"Full load, {meta['date']}: {int(meta['rows']):,} rows, {int(meta['data_bytes']) / 1e6:.0f} MB "
           f"(DATA_LENGTH), {meta['threads']} threads, scale {meta['scale']}", ""]
    line = " | ".join(c.ljust(w) for c, w in zip(cols, width))
    out += [line, "-+-".join("-" * w for w in width)]
    for row in table:
        out.append(" | ".join(str(x).ljust(w) for x, w in zip(row, width)))
    out.append("")
    for row in table:
        if row[-1]:
            out.append(f"  {row[0]}: {row[-1]}")
    out.append("")
    out += [f"  {t}" for t in targets]
    return "\n".join(out) + "\n"


def markdown(meta, header, table, targets):
    esc = lambda s: str(s).replace("|", "\\|")
    out = [f"### Full load, {meta['date']}", "",
           f"{int(meta['rows']):,} rows in {meta['tables']}; source DATA_LENGTH "
           f"{int(meta['data_bytes']) / 1e6:.0f} MB (+ {int(meta['index_bytes']) / 1e6:.0f} MB of secondary "
           f"indexes); {meta['threads']} threads, chunks of {meta['chunk_rows']} rows; scale {meta['scale']}.", "",
           "| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * 6 + ["---"]) + "|"]
    for row in table:
        out.append("| " + " | ".join(esc(x) for x in row) + " |")
    out += ["", "Targets:", ""] + [f"- {t}" for t in targets]
    out += ["", f"Machine: {meta['nproc']} CPUs, {meta['memory']} RAM; server {meta['server']} "
            f"(buffer pool {meta['buffer_pool']} on each side); {meta['mydumper']}; {meta['mariadb_dump']}; "
            f"{meta['ferry'] if meta['ferry'].startswith('ferry') else 'ferry ' + meta['ferry']}. Target binlog for the other tools' loading sessions: "
            f"{'on' if meta['target_binlog'] == '1' else 'off (sql_log_bin=0)'}."]
    return "\n".join(out) + "\n"


def main():
    meta_path, runs_path, out_md = sys.argv[1:4]
    meta = read_meta(meta_path)
    runs = read_runs(runs_path)
    header, table, targets = build(meta, runs)
    sys.stdout.write("\n" + plain(meta, header, table, targets))
    with open(out_md, "w", encoding="utf-8") as f:
        f.write(markdown(meta, header, table, targets))


if __name__ == "__main__":
    main()
