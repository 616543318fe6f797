#!/usr/bin/env python3
"""The floor of the verification benchmark: pt-table-checksum's chunk query, run directly on both
servers at once with N sessions per server, and nothing else (no tool logic, no bookkeeping).

  crc32_floor.py plan --port P --db DB --chunk-rows N TABLE...  > plan.json   (untimed, on the source)
  crc32_floor.py run --plan plan.json --threads N --port P1 --port P2          (timed)
  crc32_floor.py exprs --port P --db DB --table T [--repeat N]   (per-row digest expressions)

`plan` reads the columns of each table and cuts it into ranges of N rows on its (single-column)
primary key, as pt-table-checksum and ferry chunk. `run` sends, for every range and every server,

  SELECT COUNT(*), COALESCE(LOWER(CONV(BIT_XOR(CAST(CRC32(CONCAT_WS('#', cols…, CONCAT(ISNULL(col)…)))
         AS UNSIGNED)), 10, 16)), 0) FROM t FORCE INDEX(PRIMARY) WHERE pk range

with the column expressions pt-table-checksum 3.2 builds (TIMESTAMP -> UNIX_TIMESTAMP, BLOB/TEXT/
BINARY -> CRC32(col), CHAR/VARCHAR/ENUM/SET/JSON -> CONVERT(col USING utf8mb4)). Each session is one
`mariadb` client process per range; the servers' sessions run concurrently. It prints a summary line
and exits 1 when a range differs between the servers (or a query fails).

Connection: 127.0.0.1, user BENCH_DB_USER (ferry), password from MYSQL_PWD. Python 3 stdlib only.
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time


def client(port, sql):
    """Runs one statement with the mariadb client; returns the rows as lists of strings."""
    out = subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{port}",
         f"-u{os.environ.get('BENCH_DB_USER', 'ferry')}", "--default-character-set=utf8mb4",
         "-N", "-B", "-e", sql],
        check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def q(name):
    return "`" + name.replace("`", "``") + "`"


def col_expr(name, data_type):
    # pt-table-checksum 3.2.1, TableChecksum::get_checksum_columns and make_row_checksum.
    if data_type == "timestamp":
        return f"UNIX_TIMESTAMP({q(name)})"
    if any(s in data_type for s in ("blob", "text", "binary")):
        return f"CRC32({q(name)})"
    if data_type in ("char", "varchar", "enum", "set", "json"):
        return f"convert({q(name)} using utf8mb4)"
    return q(name)


def plan(args):
    tables = []
    for t in args.tables:
        cols = client(args.port, f"""SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM information_schema.COLUMNS
                                     WHERE TABLE_SCHEMA='{args.db}' AND TABLE_NAME='{t}' ORDER BY ORDINAL_POSITION""")
        pk = client(args.port, f"""SELECT COLUMN_NAME FROM information_schema.STATISTICS
                                   WHERE TABLE_SCHEMA='{args.db}' AND TABLE_NAME='{t}' AND INDEX_NAME='PRIMARY'
                                   ORDER BY SEQ_IN_INDEX""")
        if len(pk) != 1:
            sys.exit(f"crc32_floor: {args.db}.{t} needs a single-column primary key")
        pk = pk[0][0]
        exprs = [col_expr(c, ty.lower()) for c, ty, _ in cols]
        nulls = [c for c, _, nullable in cols if nullable == "YES"]
        if nulls:
            exprs.append("CONCAT(" + ", ".join(f"ISNULL({q(c)})" for c in nulls) + ")")
        row = f"CRC32(CONCAT_WS('#', {', '.join(exprs)}))" if len(exprs) > 1 else f"CRC32({exprs[0]})"
        select = (f"SELECT COUNT(*), COALESCE(LOWER(CONV(BIT_XOR(CAST({row} AS UNSIGNED)), 10, 16)), 0) "
                  f"FROM {q(args.db)}.{q(t)} FORCE INDEX(`PRIMARY`)")
        # Range starts: every chunk_rows-th key, in key order (integer keys in this data set).
        bounds = [r[0] for r in client(args.port, f"""
            SELECT {q(pk)} FROM (SELECT {q(pk)}, ROW_NUMBER() OVER (ORDER BY {q(pk)}) AS rn
                                 FROM {q(args.db)}.{q(t)}) x
            WHERE (rn - 1) % {args.chunk_rows} = 0 ORDER BY {q(pk)}""")]
        for i, lo in enumerate(bounds):
            where = [] if i == 0 else [f"{q(pk)} >= {lo}"]
            if i + 1 < len(bounds):
                where.append(f"{q(pk)} < {bounds[i + 1]}")
            sql = select + (" WHERE " + " AND ".join(where) if where else "")
            tables.append({"table": t, "chunk": i, "sql": sql})
    # Round-robin across tables (chunk 0 of every table, then chunk 1, ...), as the other tools spread work.
    tables.sort(key=lambda c: c["chunk"])
    json.dump({"db": args.db, "chunks": tables}, sys.stdout, indent=1)
    sys.stdout.write("\n")


def run(args):
    with open(args.plan, encoding="utf-8") as f:
        chunks = json.load(f)["chunks"]
    results = {p: [None] * len(chunks) for p in args.port}
    errors = []
    threads = []
    t0 = time.monotonic()
    for port in args.port:
        work = queue.Queue()
        for i in range(len(chunks)):
            work.put(i)

        def worker(port=port, work=work):
            while True:
                try:
                    i = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[port][i] = tuple(client(port, chunks[i]["sql"])[0])
                except (subprocess.CalledProcessError, IndexError) as e:
                    errors.append(f"port {port}, {chunks[i]['table']} chunk {chunks[i]['chunk']}: "
                                  f"{getattr(e, 'stderr', '') or e}".strip())

        for _ in range(args.threads):
            th = threading.Thread(target=worker)
            th.start()
            threads.append(th)
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    if errors:
        print(f"crc32 floor: {len(errors)} queries failed; first: {errors[0]}")
        return 1
    first = args.port[0]
    rows = sum(int(r[0]) for r in results[first])
    differ = [f"{c['table']}#{c['chunk']}" for i, c in enumerate(chunks)
              if any(results[p][i] != results[first][i] for p in args.port[1:])]
    print(f"crc32 floor: {len(chunks)} chunks x {len(args.port)} servers, {args.threads} sessions per server, "
          f"{rows} rows per server, {wall:.2f} s; "
          + (f"{len(differ)} chunks differ: {' '.join(differ[:10])}" if differ else "all chunks equal"))
    return 1 if differ else 0


def exprs(args):
    """Times candidate per-row digest expressions over one whole sysbench-like table (id, k, c, pad:
    all NOT NULL, utf8mb4) in one session: best of --repeat runs of each, in seconds."""
    t = f"{q(args.db)}.{q(args.table)}"
    old = ("CONCAT_WS('|', `id`, `k`, LENGTH(`c`), CAST(`c` AS BINARY), LENGTH(`pad`), CAST(`pad` AS BINARY), "
           "CONCAT(ISNULL(`id`), ISNULL(`k`), ISNULL(`c`), ISNULL(`pad`)))")
    new = "CONCAT_WS('|', `id`, `k`, LENGTH(`c`), `c`, `pad`)"
    pt = "CONCAT_WS('#', `id`, `k`, convert(`c` using utf8mb4), convert(`pad` using utf8mb4))"
    cands = [
        ("COUNT(*) only", "COUNT(*)"),
        ("pt-table-checksum: BIT_XOR(CRC32(pt text))", f"COUNT(*), BIT_XOR(CAST(CRC32({pt}) AS UNSIGNED))"),
        ("old text, SUM(CRC32)", f"COUNT(*), SUM(CRC32({old}))"),
        ("old digest: old text, SUM of 64-bit MD5 prefix",
         f"COUNT(*), SUM(CAST(CONV(SUBSTR(MD5({old}), 1, 16), 16, 10) AS UNSIGNED))"),
        ("old text, SUM(CRC32), SUM(CRC32C), text built twice", f"COUNT(*), SUM(CRC32({old})), SUM(CRC32C({old}))"),
        ("new text, SUM(CRC32), SUM(CRC32C), text built twice", f"COUNT(*), SUM(CRC32({new})), SUM(CRC32C({new}))"),
        ("new digest: new text once, SUM(CRC32(@v := text)), SUM(CRC32C(@v))",
         f"COUNT(*), SUM(CRC32(@ferry_row := {new})), SUM(CRC32C(@ferry_row))"),
        ("new text, SUM of 64-bit MD5 prefix (MySQL path)",
         f"COUNT(*), SUM(CAST(CONV(SUBSTR(MD5({new}), 1, 16), 16, 10) AS UNSIGNED))"),
    ]
    for name, expr in cands:
        best = None
        for _ in range(args.repeat):
            t0 = time.monotonic()
            client(args.port, f"SELECT {expr} FROM {t}")
            dt = time.monotonic() - t0
            best = dt if best is None else min(best, dt)
        print(f"{best:6.3f} s  {name}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("plan")
    pp.add_argument("--port", required=True)
    pp.add_argument("--db", required=True)
    pp.add_argument("--chunk-rows", type=int, required=True)
    pp.add_argument("tables", nargs="+")
    pr = sub.add_parser("run")
    pr.add_argument("--plan", required=True)
    pr.add_argument("--threads", type=int, required=True)
    pr.add_argument("--port", action="append", required=True)
    pe = sub.add_parser("exprs")
    pe.add_argument("--port", required=True)
    pe.add_argument("--db", required=True)
    pe.add_argument("--table", required=True)
    pe.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    if args.cmd == "plan":
        plan(args)
        return 0
    if args.cmd == "exprs":
        return exprs(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
