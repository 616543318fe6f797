#!/usr/bin/env python3
"""Turns the runs recorded by `benches/run.sh --verify` into the result table (stdout, plain text) and
a Markdown file.  usage: report_verify.py META_TSV RUNS_TSV OUT_MD  (stdlib only)"""

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
from report import fmt, read_meta, read_runs  # noqa: E402

NAMES = {
    "ferry-verify": "ferry verify --mode full",
    "ferry-verify-md5": "ferry verify, MD5 row hash (before)",
    "pt": "pt-table-checksum (source only)",
    "pt-x2": "pt-table-checksum ×2 (source + target)",
    "floor": "CRC32 floor (both servers)",
    "cutover": "cut-over verification (continuous verification, --cutover)",
    "cutover-request": "cut-over request to exit (--cutover)",
    "complete-now": "CompleteMigrateJob to status 9, right after the load (--complete)",
    "complete-fresh": "CompleteMigrateJob to status 9, once every chunk is current (--complete)",
}
ORDER = ["ferry-verify", "cutover", "cutover-request", "complete-now", "complete-fresh",
         "ferry-verify-md5", "pt", "pt-x2", "floor"]

# The check for --complete: CompleteMigrateJob to status 9 (the verification included)
# under a quarter of a standalone full ferry verify of the same data.
MAX_COMPLETE_SHARE = 0.25

# The goal for --cutover: the cut-over verification under 10% of a full pass.
MAX_CUTOVER_SHARE = 0.10

# The target: ferry verify's wall ≤ 0.5× pt-table-checksum's (the single-server run).
MAX_RATIO_PT = 0.5


def pick(runs):
    """Per tool: the successful run with the median wall time, or the last failure."""
    chosen = {}
    for tool in ORDER:
        mine = [r for r in runs if r["tool"] == tool]
        if not mine:
            continue
        ok = sorted((r for r in mine if r["status"] == "ok"), key=lambda r: float(r["wall_s"]))
        failed = [r for r in mine if r["status"] != "ok"]
        if failed:
            r = dict(failed[-1])
            r["note"] = f"{len(failed)} of {len(mine)} runs FAILED; last: " + r["note"]
            chosen[tool] = r
            continue
        r = dict(ok[(len(ok) - 1) // 2])
        r["walls"] = [x["wall_s"] for x in mine]
        rss = [int(x["rss_kb"]) for x in ok if x["rss_kb"]]
        r["rss_kb"] = str(max(rss)) if rss else ""
        chosen[tool] = r
    return chosen


def build(meta, runs):
    rows = int(meta["rows"])
    chosen = pick(runs)
    ferry = chosen.get("ferry-verify")
    ferry_wall = float(ferry["wall_s"]) if ferry and ferry["status"] == "ok" else None
    header = ["tool", "wall s", "rows/s (one side)", "peak RSS MB", "ferry ratio", "notes"]
    table = []
    for tool in ORDER:
        r = chosen.get(tool)
        if r is None:
            continue
        if r["status"] != "ok":
            table.append([NAMES[tool], r["status"], "—", "—", "—", r["note"]])
            continue
        wall = float(r["wall_s"])
        rss = int(r["rss_kb"]) / 1024 if r["rss_kb"] else None
        note = r["note"]
        if len(r["walls"]) > 1:
            note = "runs: " + ", ".join(f"{float(w):.2f}" for w in r["walls"]) + " s (median shown); " + note
        if tool == "pt-x2":
            note += "; RSS = the larger run's"
        note += f"; load avg before: {r['loadavg']}"
        if (tool.startswith("cutover") or tool.startswith("complete")) and ferry_wall is not None:
            note = f"{100 * wall / ferry_wall:.0f}% of a full pass; " + note
        # A cut-over digests only some chunks: a rate over every row would mean nothing.
        partial = tool.startswith("cutover") or tool.startswith("complete")
        table.append([NAMES[tool], f"{wall:.2f}", fmt(rows / wall, 0) if wall > 0 and not partial else "—",
                      fmt(rss, 0) if rss is not None else "—",
                      f"{ferry_wall / wall:.2f}" if ferry_wall is not None and wall > 0 else "—", note])

    def ratio(tool):
        r = chosen.get(tool)
        if ferry_wall is None or r is None or r["status"] != "ok":
            return None
        return ferry_wall / float(r["wall_s"])

    strict, fair = ratio("pt"), ratio("pt-x2")
    if "pt" not in chosen:
        target = "pt-table-checksum not run"
    elif strict is None:
        target = f"ferry verify ≤ {MAX_RATIO_PT}× pt-table-checksum — not measured (a run FAILED)"
    else:
        target = (f"ferry verify ≤ {MAX_RATIO_PT}× pt-table-checksum — "
                  f"{'met' if strict <= MAX_RATIO_PT else 'NOT MET'} ({strict:.2f}× the single-server run"
                  + (f"; {fair:.2f}× pt-table-checksum ×2" if fair is not None else "") + ")")
    cut = chosen.get("cutover")
    if cut is not None:
        if ferry_wall is None or cut["status"] != "ok":
            target += f"; cut-over verification < {MAX_CUTOVER_SHARE:.0%} of a full pass — not measured"
        else:
            share = float(cut["wall_s"]) / ferry_wall
            target += (f"; cut-over verification < {MAX_CUTOVER_SHARE:.0%} of a full pass — "
                       f"{'met' if share < MAX_CUTOVER_SHARE else 'NOT MET'} ({share:.0%})")
    for tool in ("complete-now", "complete-fresh"):
        r = chosen.get(tool)
        if r is None:
            continue
        what = NAMES[tool].split(" (")[0]
        if ferry_wall is None or r["status"] != "ok":
            target += f"; {what} < {MAX_COMPLETE_SHARE:.0%} of a standalone full pass — not measured"
        else:
            share = float(r["wall_s"]) / ferry_wall
            target += (f"; {what} < {MAX_COMPLETE_SHARE:.0%} of a standalone full pass — "
                       f"{'met' if share < MAX_COMPLETE_SHARE else 'NOT MET'} ({share:.0%})")
    return header, table, target


def plain(meta, header, table, target):
    cols = header[:-1]
    width = [max(len(str(x)) for x in [c] + [row[i] for row in table]) for i, c in enumerate(cols)]
    out = [f"Verification, {meta['date']}: {int(meta['rows']):,} rows per side, {meta['threads']} threads, "
           f"chunks of {meta['chunk_rows']} rows, scale {meta['scale']}", ""]
    out += [" | ".join(c.ljust(w) for c, w in zip(cols, width)), "-+-".join("-" * w for w in width)]
    for row in table:
        out.append(" | ".join(str(x).ljust(w) for x, w in zip(row, width)))
    out.append("")
    out += [f"  {row[0]}: {row[-1]}" for row in table if row[-1]]
    out += ["", f"  {target}"]
    return "\n".join(out) + "\n"


def markdown(meta, header, table, target):
    esc = lambda s: str(s).replace("|", "\\|")
    out = [f"### Verification, {meta['date']}", "",
           f"{int(meta['rows']):,} rows on each side in {meta['tables']}; source DATA_LENGTH "
           f"{int(meta['data_bytes']) / 1e6:.0f} MB; {meta['threads']} threads, chunks of {meta['chunk_rows']} "
           f"rows; {meta['repeat']} round(s), median wall; scale {meta['scale']}.", "",
           "| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * 4 + ["---"]) + "|"]
    out += ["| " + " | ".join(esc(x) for x in row) + " |" for row in table]
    out += ["", f"Target: {target}", "",
            f"Machine: {meta['nproc']} CPUs, {meta['memory']} RAM; server {meta['server']} (buffer pool "
            f"{meta['buffer_pool']} on each side); {meta['pt_table_checksum']}; {meta['ferry']}."]
    return "\n".join(out) + "\n"


def main():
    meta_path, runs_path, out_md = sys.argv[1:4]
    meta = read_meta(meta_path)
    header, table, target = build(meta, read_runs(runs_path))
    sys.stdout.write("\n" + plain(meta, header, table, target))
    with open(out_md, "w", encoding="utf-8") as f:
        f.write(markdown(meta, header, table, target))


if __name__ == "__main__":
    main()
