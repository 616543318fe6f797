#!/usr/bin/env bash
# Full-load benchmark: ferry against mydumper+myloader, mariadb-dump | mariadb and the target server's
# own LOAD DATA ceiling, on the same rows, the same thread count and the same pair of servers.
#
#   benches/run.sh            full size (8 tables x 250k sysbench rows + 100k mixed-type rows, ~600 MB)
#   benches/run.sh --quick    smoke run (BENCH_SCALE=0.05)
#   benches/run.sh --verify   verification benchmark instead: ferry verify against pt-table-checksum
#                             and the raw chunked CRC32 query (results in benches/.work/verify-results.md)
#   benches/run.sh --verify --cutover   the same, with the cut-over verification of continuous
#                             verification after a sysbench write backlog in the same table
#   benches/run.sh --verify --complete  the issue's check through the API of `ferry serve`: a job
#                             with continuous verification, a 30 s sysbench load while it replays,
#                             CompleteMigrateJob to status 9, next to a standalone full ferry verify
#   benches/run.sh --help     options and environment knobs
#
# Everything it writes lives under benches/.work/ (git-ignored); the result table is printed and
# written to benches/.work/results.md. See docs/benchmarks.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/benches"
WORK="$BENCH_DIR/.work"

usage() {
  cat <<'EOF'
usage: benches/run.sh [--verify [--cutover | --complete]] [--quick] [--keep] [--tools LIST] [--help]

  --verify       verification benchmark instead of the full load: ferry verify --mode full (its
                 automatic row hash, and FERRY_VERIFY_ROW_HASH=md5) against
                 pt-table-checksum (source, and source + target) and the raw chunked CRC32 query on
                 both servers; the target gets a copy of the data set first (ferry run) if it has none
  --cutover      with --verify: the copy is made by a MigrateType 3 job with continuous verification
                 (Ferry.ContinuousVerify), BENCH_BACKLOG sysbench oltp_write_only transactions are
                 written on the source while it replays, then it cuts over; its cut-over verification
                 is reported next to the full pass, pt-table-checksum and the floor (= BENCH_CUTOVER=1)
  --complete     with --verify, instead of the rounds: the issue's check through the API. `ferry
                 serve` runs a MigrateType 3 / ConsistencyType 2 job with Ferry.ContinuousVerify
                 (created with CreateMigrateJob), a BENCH_LOAD_SECONDS sysbench oltp_write_only load
                 is written on the source while it replays, then CompleteMigrateJob: the time from
                 the request to status 9 (the cut-over verification included), once right after the
                 load and once after DescribeMigrationDetail's freshness says every chunk is current,
                 each next to a standalone `ferry verify --mode full` of the same data, with the
                 chunks digested again at cut-over (= BENCH_COMPLETE=1)
  --quick        smoke run: BENCH_SCALE=0.05 (about 100k rows), one round
  --keep         leave the benchmark servers running afterwards (= BENCH_KEEP=1)
  --tools LIST   comma-separated subset of: ferry,ferry-lockless,mydumper,mariadb-dump,loaddata
                 (= BENCH_TOOLS; ferry-lockless: Ferry.SnapshotMode lockless, one read view per chunk);
                 full load only (--verify rejects --tools and ignores BENCH_TOOLS)

environment:
  BENCH_SCALE=1          scales every table's row count (1 = 8 x 250,000 + 100,000 mixed rows)
  BENCH_TABLES=8         number of sysbench-like tables sbtest1..sbtestN
  BENCH_THREADS=4        thread count given to every tool
  BENCH_CHUNK_ROWS=100000  rows per chunk (ferry Ferry.ChunkRows, mydumper --rows)
  BENCH_REPEAT=3         rounds (every tool once per round); each tool's median run is reported
                         (default 1 with --quick)
  BENCH_TOOLS=ferry,mydumper,mariadb-dump,loaddata
  BENCH_BUFFER_POOL=2G   innodb_buffer_pool_size of both benchmark servers
  BENCH_TARGET_BINLOG=0  0: every tool's loading sessions skip the target's binlog (sql_log_bin=0,
                         myloader's default; ferry's Ferry.TargetBinlog=false); 1: they all write it
  BENCH_LOADDATA_SPLIT=chunk  LOAD DATA files: chunk (key ranges of BENCH_CHUNK_ROWS rows) or table
                         (one file per table)
  BENCH_CHECKSUM=1       after each run also compare CHECKSUM TABLE (not timed; differences are noted)
  BENCH_BUILD=1          run `cargo build --release -p ferry-cli` first (0: use the binary as is)
  BENCH_FERRY=path       ferry binary (default: $CARGO_TARGET_DIR or target/ + release/ferry)
  BENCH_KEEP=0           1: leave the servers running
  with --cutover:
  BENCH_BACKLOG=50000    oltp_write_only transactions written on the source while ferry replays
  BENCH_LOAD_THREADS=4   sysbench threads
  BENCH_CV_CHUNK_ROWS=5000  Ferry.ChunkRows of the continuous-verification job (its stored chunks)
  BENCH_CV_RATE=200000   Ferry.ContinuousVerify.RowsPerSecond
  BENCH_SETTLE=0         1: after the backlog, wait until no chunk is marked dirty before cutting over
  with --complete (and BENCH_LOAD_THREADS, BENCH_CV_CHUNK_ROWS, BENCH_CV_RATE as above):
  BENCH_LOAD_SECONDS=30  seconds of sysbench oltp_write_only load while the job replays
EOF
}

MODE=load
TOOLS_GIVEN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --verify) MODE=verify ;;
    --cutover) BENCH_CUTOVER=1 ;;
    --complete) BENCH_COMPLETE=1 ;;
    --quick) BENCH_SCALE=0.05; BENCH_REPEAT="${BENCH_REPEAT:-1}" ;;
    --keep) BENCH_KEEP=1 ;;
    --tools) shift; BENCH_TOOLS="${1:?--tools needs a list}"; TOOLS_GIVEN=1 ;;
    --tools=*) BENCH_TOOLS="${1#--tools=}"; TOOLS_GIVEN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

SCALE="${BENCH_SCALE:-1}"
TABLES="${BENCH_TABLES:-8}"
THREADS="${BENCH_THREADS:-4}"
CHUNK_ROWS="${BENCH_CHUNK_ROWS:-100000}"
REPEAT="${BENCH_REPEAT:-3}"
TOOLS="${BENCH_TOOLS:-ferry,mydumper,mariadb-dump,loaddata}"
TARGET_BINLOG="${BENCH_TARGET_BINLOG:-0}"
CHECKSUM="${BENCH_CHECKSUM:-1}"
BUILD="${BENCH_BUILD:-1}"
KEEP="${BENCH_KEEP:-0}"
LOADDATA_SPLIT="${BENCH_LOADDATA_SPLIT:-chunk}"
CUTOVER="${BENCH_CUTOVER:-0}"
BACKLOG="${BENCH_BACKLOG:-50000}"
LOAD_THREADS="${BENCH_LOAD_THREADS:-4}"
CV_CHUNK_ROWS="${BENCH_CV_CHUNK_ROWS:-5000}"
CV_RATE="${BENCH_CV_RATE:-200000}"
SETTLE="${BENCH_SETTLE:-0}"
COMPLETE="${BENCH_COMPLETE:-0}"
LOAD_SECONDS="${BENCH_LOAD_SECONDS:-30}"
export FERRY_TEST_DIR="$WORK/servers"
export FERRY_TEST_BUFFER_POOL="${BENCH_BUFFER_POOL:-2G}"

SB_ROWS=$(awk -v s="$SCALE" 'BEGIN { n = int(250000 * s + 0.5); if (n < 1) n = 1; print n }')
MIXED_ROWS=$(awk -v s="$SCALE" 'BEGIN { n = int(100000 * s + 0.5); if (n < 1) n = 1; print n }')

for v in TABLES THREADS CHUNK_ROWS REPEAT BACKLOG LOAD_THREADS CV_CHUNK_ROWS CV_RATE LOAD_SECONDS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: BENCH_$v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
case "$LOADDATA_SPLIT" in chunk|table) ;; *) echo "run.sh: BENCH_LOADDATA_SPLIT must be chunk or table" >&2; exit 2 ;; esac
[ "$MODE" = verify ] && [ -n "$TOOLS_GIVEN" ] && { echo "run.sh: --tools applies to the full load, not to --verify" >&2; exit 2; }
[ "$CUTOVER" = 1 ] && [ "$MODE" != verify ] && { echo "run.sh: --cutover goes with --verify" >&2; exit 2; }
[ "$COMPLETE" = 1 ] && [ "$MODE" != verify ] && { echo "run.sh: --complete goes with --verify" >&2; exit 2; }
[ "$COMPLETE" = 1 ] && [ "$CUTOVER" = 1 ] && { echo "run.sh: --complete and --cutover are two benchmarks: run them one after the other" >&2; exit 2; }
for t in ${TOOLS//,/ }; do
  case "$t" in ferry|ferry-lockless|mydumper|mariadb-dump|loaddata) ;; *) echo "run.sh: unknown tool '$t' in BENCH_TOOLS" >&2; exit 2 ;; esac
done

LOGS="$WORK/logs"
RUNS="$WORK/runs.tsv"
META="$WORK/meta.tsv"
mkdir -p "$WORK" "$LOGS"

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
# shellcheck source=benches/common.sh
source "$BENCH_DIR/common.sh"

# ---------------------------------------------------------------------------------------------------
# 1. Tools
# ---------------------------------------------------------------------------------------------------
ensure_packages() {
  local missing=()
  command -v mydumper >/dev/null 2>&1 && command -v myloader >/dev/null 2>&1 || missing+=(mydumper)
  [ -x /usr/bin/time ] || missing+=(time)
  command -v mariadb >/dev/null 2>&1 && command -v mariadb-dump >/dev/null 2>&1 || missing+=(mariadb-client)
  if [ "$MODE" = verify ]; then
    command -v pt-table-checksum >/dev/null 2>&1 || missing+=(percona-toolkit)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
  fi
  if [ "$CUTOVER" = 1 ] || [ "$COMPLETE" = 1 ]; then command -v sysbench >/dev/null 2>&1 || missing+=(sysbench); fi
  apt_install "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------------
# 2. Servers
# ---------------------------------------------------------------------------------------------------
stop_servers() {
  serve_stop
  if [ "$KEEP" = 1 ]; then
    log "servers left running (BENCH_KEEP=1); stop them with: FERRY_TEST_DIR=benches/.work/servers scripts/servers.sh stop"
  else
    "$ROOT/scripts/servers.sh" stop || true
  fi
}

start_servers() {
  log "starting the benchmark servers (buffer pool $FERRY_TEST_BUFFER_POOL) under benches/.work/servers"
  # The trap first: if only one server comes up, the other is still stopped on exit.
  trap stop_servers EXIT
  "$ROOT/scripts/servers.sh" start
  eval "$("$ROOT/scripts/servers.sh" env)"
  SRC_PORT="${FERRY_TEST_SOURCE_URL##*:}"
  DST_PORT="${FERRY_TEST_TARGET_URL##*:}"
  SRC_SOCK="$FERRY_TEST_SOURCE_SOCKET"
  DST_SOCK="$FERRY_TEST_TARGET_SOCKET"
  log "source 127.0.0.1:$SRC_PORT, target 127.0.0.1:$DST_PORT"
}

USER_NAME=ferry
USER_PASS=ferry-test-pw
src() { mariadb --no-defaults --default-character-set=utf8mb4 --socket="$SRC_SOCK" -uroot -N -B "$@"; }
dst() { mariadb --no-defaults --default-character-set=utf8mb4 --socket="$DST_SOCK" -uroot -N -B "$@"; }

# ---------------------------------------------------------------------------------------------------
# 3. Dataset
# ---------------------------------------------------------------------------------------------------
rnd11="LPAD(FLOOR(RAND()*99999999999),11,'0')"
sb_c="CONCAT_WS('-',$rnd11,$rnd11,$rnd11,$rnd11,$rnd11,$rnd11,$rnd11,$rnd11,$rnd11,$rnd11)"
sb_pad="CONCAT_WS('-',$rnd11,$rnd11,$rnd11,$rnd11,$rnd11)"

gen_sbtest() { # table
  src -e "SET SESSION sql_log_bin=0; USE bench;
    DROP TABLE IF EXISTS bench.$1;
    CREATE TABLE bench.$1 (
      id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      k INT UNSIGNED NOT NULL DEFAULT 0,
      c CHAR(120) NOT NULL DEFAULT '',
      pad CHAR(60) NOT NULL DEFAULT '',
      KEY k_1 (k)
    ) ENGINE=InnoDB;
    INSERT INTO bench.$1 (id, k, c, pad)
      SELECT seq, FLOOR(1 + RAND() * $SB_ROWS), $sb_c, $sb_pad FROM seq_1_to_$SB_ROWS;"
}

gen_mixed() {
  # Every column type a loader must carry exactly; NULLs, quotes, backslashes, tabs, newlines,
  # multi-byte and 4-byte UTF-8, binary bytes 0x00..0xff, sparse BIGINT keys.
  src -e "SET SESSION sql_log_bin=0; USE bench;
    DROP TABLE IF EXISTS bench.mixed;
    CREATE TABLE bench.mixed (
      id BIGINT NOT NULL PRIMARY KEY,
      amount DECIMAL(20,6) NOT NULL,
      f FLOAT NULL,
      d DOUBLE NULL,
      created DATETIME(6) NULL,
      day DATE NULL,
      t TIME NULL,
      name VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL,
      body TEXT NULL,
      data BLOB NULL,
      doc JSON NULL,
      color ENUM('red','green','blue','none') NOT NULL DEFAULT 'none',
      flags BIT(8) NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='$DATASET_VERSION';
    INSERT INTO bench.mixed
      SELECT 10000000000 + seq * 7,
        ROUND((RAND() - 0.5) * 1e13, 6),
        IF(seq % 11 = 0, NULL, ROUND((RAND() - 0.5) * 2e5) / 10),
        IF(seq % 13 = 0, NULL, (RAND() - 0.5) * 1e15),
        IF(seq % 17 = 0, NULL, TIMESTAMPADD(MICROSECOND, FLOOR(RAND() * 9e14), '1990-01-01 00:00:00.000000')),
        IF(seq % 19 = 0, NULL, DATE('1970-01-01') + INTERVAL FLOOR(RAND() * 40000) DAY),
        IF(seq % 23 = 0, NULL, SEC_TO_TIME(FLOOR((RAND() - 0.5) * 6000000))),
        CONCAT('名前 ', seq, ' it''s a \\\\ back\\tslash 😀 ', LPAD(FLOOR(RAND() * 1e9), 9, '0')),
        IF(seq % 29 = 0, NULL, REPEAT(CONCAT('línea ', seq, '\\n\"quoted\"\\t'), 1 + seq % 20)),
        IF(seq % 31 = 0, NULL, RANDOM_BYTES(1024)),
        IF(seq % 37 = 0, NULL, JSON_OBJECT('id', seq, 'name', CONCAT('n', seq), 'tags', JSON_ARRAY('a', 'b', seq % 7),
                                          'ok', seq % 2 = 0, 'v', RAND(), 'nested', JSON_OBJECT('x', 'é\"\\\\'))),
        ELT(1 + seq % 4, 'red', 'green', 'blue', 'none'),
        IF(seq % 41 = 0, NULL, seq % 256)
      FROM seq_1_to_$MIXED_ROWS;"
}

# Changing a generator: bump this, and existing source data is regenerated.
DATASET_VERSION="ferry bench dataset 2"
TABLE_LIST=()
expected_rows() { # table
  if [ "$1" = mixed ]; then echo "$MIXED_ROWS"; else echo "$SB_ROWS"; fi
}

prepare_dataset() {
  local i t have n
  TABLE_LIST=()
  for i in $(seq 1 "$TABLES"); do TABLE_LIST+=("sbtest$i"); done
  TABLE_LIST+=(mixed)
  src -e "CREATE DATABASE IF NOT EXISTS bench"
  # Drop leftovers from an earlier run with more tables.
  for t in $(src -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'"); do
    if [[ " ${TABLE_LIST[*]} " != *" $t "* ]]; then log "dropping leftover source table bench.$t"; src -e "SET SESSION sql_log_bin=0; DROP TABLE bench.\`$t\`"; fi
  done
  local todo=()
  for t in "${TABLE_LIST[@]}"; do
    n=$(expected_rows "$t")
    have=$(src -e "SELECT COUNT(*) FROM bench.\`$t\`" 2>/dev/null || echo missing)
    if [ "$t" = mixed ] && [ "$(src -e "SELECT TABLE_COMMENT FROM information_schema.TABLES
                                       WHERE TABLE_SCHEMA='bench' AND TABLE_NAME='mixed'")" != "$DATASET_VERSION" ]; then
      have=stale
    fi
    [ "$have" = "$n" ] || todo+=("$t")
  done
  if [ ${#todo[@]} -eq 0 ]; then
    log "dataset present: ${#TABLE_LIST[@]} tables, $SB_ROWS rows per sbtest table, $MIXED_ROWS mixed rows"
  else
    log "generating ${#todo[@]} table(s) on the source: ${todo[*]} ($SB_ROWS rows per sbtest table, $MIXED_ROWS mixed rows)"
    local t0 pids=() running=0
    t0=$(now)
    rm -rf "$OUTFILE_DIR"   # the LOAD DATA files no longer match
    for t in "${todo[@]}"; do
      if [ "$t" = mixed ]; then gen_mixed & else gen_sbtest "$t" & fi
      pids+=($!)
      running=$((running + 1))
      if [ "$running" -ge 2 ]; then wait -n || die "dataset generation failed"; running=$((running - 1)); fi
    done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for t in "${todo[@]}"; do
      [ "$(src -e "SELECT COUNT(*) FROM bench.\`$t\`")" = "$(expected_rows "$t")" ] || die "generating bench.$t failed"
    done
    log "dataset generated in $(elapsed "$t0" "$(now)") s"
  fi
  src -e "ANALYZE TABLE $(printf 'bench.`%s`,' "${TABLE_LIST[@]}" | sed 's/,$//')" >/dev/null
  SRC_ROWS=$(count_rows src | awk '{ s += $2 } END { print s }')
  SRC_DATA_BYTES=$(src -e "SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")
  SRC_INDEX_BYTES=$(src -e "SELECT SUM(INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")
  count_rows src >"$WORK/source-counts.tsv"
  if [ "$CHECKSUM" = 1 ]; then checksums src >"$WORK/source-checksums.tsv"; fi
  log "source: $SRC_ROWS rows, DATA_LENGTH $((SRC_DATA_BYTES / 1000000)) MB, INDEX_LENGTH $((SRC_INDEX_BYTES / 1000000)) MB"
}

count_rows() { # src|dst -> "table<TAB>count" lines
  local q="" t
  for t in "${TABLE_LIST[@]}"; do
    [ -n "$q" ] && q="$q UNION ALL "
    q="${q}SELECT '$t', COUNT(*) FROM bench.\`$t\`"
  done
  "$1" -e "$q"
}

checksums() { # src|dst -> "bench.table<TAB>checksum" lines
  "$1" -e "CHECKSUM TABLE $(printf 'bench.`%s`,' "${TABLE_LIST[@]}" | sed 's/,$//') EXTENDED"
}

# ---------------------------------------------------------------------------------------------------
# 4. Runs
# ---------------------------------------------------------------------------------------------------
reset_target() {
  local db
  for db in $(dst -e "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA
                      WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys')"); do
    dst -e "SET SESSION sql_log_bin=0; DROP DATABASE \`$db\`"
  done
  dst -e "RESET MASTER"
}

binlog_bytes() { dst -e "SHOW BINARY LOGS" | awk '{ s += $2 } END { print s + 0 }'; }

time_file_field() { # file field-number  (last line of a GNU time -f '%e %M' -o file)
  tail -n 1 "$1" | awk -v f="$2" '{ print $f }'
}

# Each tool_* sets WALL (s), RSS_KB (peak RSS of the client process(es)), DETAIL (free text) and
# returns non-zero when the tool failed.

FERRY_SKIP=""

prepare_ferry() {
  local bin
  bin=$(ferry_bin)
  if [ -z "${BENCH_FERRY:-}" ] && [ "$BUILD" = 1 ]; then
    if command -v cargo >/dev/null 2>&1; then
      log "cargo build --release -p ferry-cli (log: benches/.work/logs/ferry-build.log)"
      if ! (cd "$ROOT" && cargo build --release -p ferry-cli) >"$LOGS/ferry-build.log" 2>&1; then
        log "cargo build failed; last lines:"; tail -n 15 "$LOGS/ferry-build.log" >&2
        FERRY_SKIP="ferry binary not built (cargo build --release -p ferry-cli failed, see benches/.work/logs/ferry-build.log)"
        return 0
      fi
    else
      log "cargo not found: using the ferry binary as it is"
    fi
  fi
  if [ ! -x "$bin" ]; then
    FERRY_SKIP="ferry binary not built (no ${bin#"$ROOT"/}; run: cargo build --release -p ferry-cli)"
  elif ! "$bin" --help 2>&1 | grep -qw run; then
    FERRY_SKIP="ferry binary not built yet (${bin#"$ROOT"/} has no \`run\` command)"
  fi
  [ -z "$FERRY_SKIP" ] || log "skipping ferry: $FERRY_SKIP"
}

write_job() { # [snapshot-mode]
  cat >"$WORK/job.json" <<EOF
{"JobName":"bench","MigrateOption":{"RunMode":1,"MigrateType":2,"MigrateObject":2,"ConsistencyType":5},
 "SrcDatabaseType":"mysql","SrcAccessType":"extranet","SrcInfo":{"Ip":"127.0.0.1","Port":$SRC_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DstDatabaseType":"mysql","DstAccessType":"extranet","DstInfo":{"Ip":"127.0.0.1","Port":$DST_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DatabaseInfo":"[{\"Database\":\"bench\"}]",
 "Ferry":{"Threads":$THREADS,"ChunkRows":$CHUNK_ROWS,"ExistingTables":"drop","SnapshotMode":"${1:-auto}","TargetBinlog":$([ "$TARGET_BINLOG" = 1 ] && echo true || echo false)}}
EOF
}

tool_ferry() { # log [snapshot-mode]
  local tf="$WORK/time.ferry" rc=0
  write_job "${2:-auto}"
  # Each run starts from scratch: ferry keeps its progress in ferry_meta on the target, which
  # reset_target dropped; it runs in an empty directory of its own in case it writes files there.
  rm -rf "$WORK/ferry-data"
  mkdir -p "$WORK/ferry-data"
  (cd "$WORK/ferry-data" && /usr/bin/time -f '%e %M' -o "$tf" \
      "$(ferry_bin)" run "$WORK/job.json") >"$1" 2>&1 || rc=$?
  WALL=$(time_file_field "$tf" 1); RSS_KB=$(time_file_field "$tf" 2)
  DETAIL=""
  return $rc
}

# The same, lock-free: one read view per chunk; the longest one held goes into the note.
tool_ferry_lockless() { # log
  local rc=0
  tool_ferry "$1" lockless || rc=$?
  DETAIL=$(grep -o 'the longest open [0-9]* ms' "$1" | head -n 1 | sed 's/the longest open/longest read view/')
  return $rc
}

tool_mydumper() { # log
  local dump="$WORK/dump" t1="$WORK/time.mydumper" t2="$WORK/time.myloader" rc=0 binlog_opt=()
  rm -rf "$dump"; mkdir -p "$dump"
  [ "$TARGET_BINLOG" = 1 ] && binlog_opt=(--enable-binlog)
  {
    echo "== mydumper"
    /usr/bin/time -f '%e %M' -o "$t1" mydumper --host=127.0.0.1 --port="$SRC_PORT" --user="$USER_NAME" \
      --password="$USER_PASS" --database=bench --outputdir="$dump" --threads="$THREADS" \
      --rows="$CHUNK_ROWS" --trx-consistency-only --verbose=2 || rc=$?
  } >"$1" 2>&1
  local dump_s dump_kb
  dump_s=$(time_file_field "$t1" 1); dump_kb=$(time_file_field "$t1" 2)
  if [ $rc -ne 0 ]; then WALL=$dump_s; RSS_KB=$dump_kb; DETAIL="mydumper failed"; return $rc; fi
  {
    echo "== myloader"
    /usr/bin/time -f '%e %M' -o "$t2" myloader --host=127.0.0.1 --port="$DST_PORT" --user="$USER_NAME" \
      --password="$USER_PASS" --directory="$dump" --threads="$THREADS" --overwrite-tables \
      "${binlog_opt[@]}" --verbose=2 || rc=$?
  } >>"$1" 2>&1
  local load_s load_kb
  load_s=$(time_file_field "$t2" 1); load_kb=$(time_file_field "$t2" 2)
  WALL=$(awk -v a="$dump_s" -v b="$load_s" 'BEGIN { printf "%.2f", a + b }')
  RSS_KB=$(( dump_kb > load_kb ? dump_kb : load_kb ))
  DETAIL="dump ${dump_s} s + load ${load_s} s; dump files $(du -sm "$dump" | cut -f1) MB"
  return $rc
}

tool_mariadb_dump() { # log
  local t1="$WORK/time.dump" t2="$WORK/time.client" t0 rcs init=()
  [ "$TARGET_BINLOG" = 1 ] || init=(--init-command="SET SESSION sql_log_bin=0")
  t0=$(now)
  set +e
  /usr/bin/time -f '%e %M' -o "$t1" mariadb-dump --no-defaults --host=127.0.0.1 --port="$SRC_PORT" \
      --user="$USER_NAME" --password="$USER_PASS" --single-transaction --quick --extended-insert \
      --databases bench 2>"$1.dump" \
    | /usr/bin/time -f '%e %M' -o "$t2" mariadb --no-defaults --host=127.0.0.1 --port="$DST_PORT" \
      --user="$USER_NAME" --password="$USER_PASS" "${init[@]}" >"$1" 2>&1
  rcs=("${PIPESTATUS[@]}")
  set -e
  WALL=$(elapsed "$t0" "$(now)")
  local k1 k2
  k1=$(time_file_field "$t1" 2); k2=$(time_file_field "$t2" 2)
  RSS_KB=$((k1 + k2))
  DETAIL="RSS = mariadb-dump $((k1 / 1024)) MB + mariadb $((k2 / 1024)) MB (concurrent)"
  cat "$1.dump" >>"$1"; rm -f "$1.dump"
  [ "${rcs[0]}" = 0 ] && [ "${rcs[1]}" = 0 ]
}

# Untimed preparation of the LOAD DATA ceiling: one file per table, written by the source server.
OUTFILE_DIR="$WORK/outfile"
select_list() { # table -> the SELECT list (BIT as a number)
  src -e "SELECT GROUP_CONCAT(IF(DATA_TYPE = 'bit', CONCAT('\`', COLUMN_NAME, '\`+0'), CONCAT('\`', COLUMN_NAME, '\`'))
                 ORDER BY ORDINAL_POSITION SEPARATOR ',')
          FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='bench' AND TABLE_NAME='$1'"
}
load_list() { # table -> "(columns) SET ..." for LOAD DATA (BIT read back from its number)
  local cols sets
  cols=$(src -e "SELECT GROUP_CONCAT(IF(DATA_TYPE = 'bit', CONCAT('@v', ORDINAL_POSITION), CONCAT('\`', COLUMN_NAME, '\`'))
                 ORDER BY ORDINAL_POSITION SEPARATOR ',')
          FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='bench' AND TABLE_NAME='$1'")
  sets=$(src -e "SELECT IFNULL(GROUP_CONCAT(CONCAT('\`', COLUMN_NAME, '\`=CAST(@v', ORDINAL_POSITION, ' AS UNSIGNED)')
                 ORDER BY ORDINAL_POSITION SEPARATOR ','), '')
          FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='bench' AND TABLE_NAME='$1' AND DATA_TYPE = 'bit'")
  if [ -n "$sets" ]; then echo "($cols) SET $sets"; else echo "($cols)"; fi
}

prepare_outfiles() {
  local t pk bounds b i n lo hi where marker="$SB_ROWS $MIXED_ROWS $TABLES $LOADDATA_SPLIT $CHUNK_ROWS $DATASET_VERSION"
  if [ -f "$OUTFILE_DIR/.complete" ] && [ "$(cat "$OUTFILE_DIR/.complete")" = "$marker" ]; then
    log "LOAD DATA files present in benches/.work/outfile"
    return 0
  fi
  log "writing the LOAD DATA files with SELECT … INTO OUTFILE on the source (not timed, split by $LOADDATA_SPLIT)"
  rm -rf "$OUTFILE_DIR"; mkdir -p "$OUTFILE_DIR"
  local lists=()
  for t in "${TABLE_LIST[@]}"; do
    : >"$OUTFILE_DIR/$t.files"
    if [ "$LOADDATA_SPLIT" = table ]; then
      src -e "SELECT $(select_list "$t") INTO OUTFILE '$OUTFILE_DIR/$t.tsv' CHARACTER SET binary FROM bench.\`$t\`"
      echo "$t $t.tsv" >>"$OUTFILE_DIR/$t.files"
    else
      # Key ranges of CHUNK_ROWS rows on the (single-column) primary key, as ferry and mydumper chunk.
      pk=$(src -e "SELECT COLUMN_NAME FROM information_schema.STATISTICS
                   WHERE TABLE_SCHEMA='bench' AND TABLE_NAME='$t' AND INDEX_NAME='PRIMARY' ORDER BY SEQ_IN_INDEX LIMIT 1")
      [ -n "$pk" ] || die "bench.$t has no primary key to split LOAD DATA files by"
      mapfile -t bounds < <(src -e "SELECT \`$pk\` FROM (SELECT \`$pk\`, ROW_NUMBER() OVER (ORDER BY \`$pk\`) AS rn
                                    FROM bench.\`$t\`) x WHERE (rn - 1) % $CHUNK_ROWS = 0 ORDER BY \`$pk\`")
      n=${#bounds[@]}
      for ((i = 0; i < n; i++)); do
        lo=${bounds[$i]}; where="\`$pk\` >= $lo"
        if [ $((i + 1)) -lt "$n" ]; then hi=${bounds[$((i + 1))]}; where="$where AND \`$pk\` < $hi"; fi
        src -e "SELECT $(select_list "$t") INTO OUTFILE '$OUTFILE_DIR/$t.$i.tsv' CHARACTER SET binary
                FROM bench.\`$t\` WHERE $where"
        echo "$t $t.$i.tsv" >>"$OUTFILE_DIR/$t.files"
      done
    fi
    lists+=("$OUTFILE_DIR/$t.files")
  done
  # Work list, round-robin over the tables: chunk 0 of every table, then chunk 1, ...
  awk '{ print FNR "\t" $0 }' "${lists[@]}" | sort -s -n -k1,1 | cut -f2 >"$OUTFILE_DIR/work.list"
  echo "$marker" >"$OUTFILE_DIR/.complete"
}

load_one() { # table file (runs in parallel under xargs)
  local t=$1 f=$2 pre=""
  [ "$TARGET_BINLOG" = 1 ] || pre="SET SESSION sql_log_bin=0;"
  dst -e "$pre LOAD DATA INFILE '$OUTFILE_DIR/$f' INTO TABLE bench.\`$t\` CHARACTER SET binary $(cat "$OUTFILE_DIR/$t.cols")"
}

tool_loaddata() { # log
  local t0 rc=0 t files
  # Untimed: the empty tables with all their indexes, and each table's column list.
  mariadb-dump --no-defaults --socket="$SRC_SOCK" -uroot --no-data --skip-triggers --databases bench 2>>"$1" \
    | dst >>"$1" 2>&1
  for t in "${TABLE_LIST[@]}"; do load_list "$t" >"$OUTFILE_DIR/$t.cols"; done
  files=$(wc -l <"$OUTFILE_DIR/work.list")
  export -f load_one dst
  export OUTFILE_DIR TARGET_BINLOG DST_SOCK
  t0=$(now)
  xargs -P "$THREADS" -L 1 bash -c 'load_one "$@"' _ <"$OUTFILE_DIR/work.list" >>"$1" 2>&1 || rc=$?
  WALL=$(elapsed "$t0" "$(now)")
  RSS_KB=""
  if [ "$LOADDATA_SPLIT" = table ]; then
    DETAIL="server-side LOAD DATA INFILE, one file per table, $THREADS sessions"
  else
    DETAIL="server-side LOAD DATA INFILE, $files files of ≤ $CHUNK_ROWS rows, $THREADS sessions"
  fi
  DETAIL="$DETAIL, indexes in the CREATE TABLE"
  return $rc
}

verify_target() { # -> sets VERIFY_ERR (row counts) and VERIFY_NOTE (checksums)
  VERIFY_ERR=""; VERIFY_NOTE=""
  local got
  if ! got=$(count_rows dst 2>&1); then VERIFY_ERR="row count query failed: $(echo "$got" | tail -n 1)"; return; fi
  if [ "$got" != "$(cat "$WORK/source-counts.tsv")" ]; then
    VERIFY_ERR="row counts differ: $(diff <(echo "$got") "$WORK/source-counts.tsv" | grep '^<' | sed 's/^< //' | tr '\t\n' '= ' | sed 's/ $//' || true) (source: $SRC_ROWS rows)"
    return
  fi
  if [ "$CHECKSUM" = 1 ]; then
    local sums differ
    sums=$(checksums dst)
    differ=$(diff <(echo "$sums") "$WORK/source-checksums.tsv" | grep '^<' | awk '{ sub(/^bench\./, "", $2); print $2 }' | tr '\n' ' ' | sed 's/ $//' || true)
    if [ -n "$differ" ]; then VERIFY_NOTE="CHECKSUM TABLE differs: $differ"; else VERIFY_NOTE="checksums equal"; fi
  fi
}

run_tool() { # tool run#
  local tool=$1 n=$2 fn log status note b0 b1 load
  fn="tool_${tool//-/_}"
  log="$LOGS/$tool.$n.log"
  reset_target
  b0=$(binlog_bytes)
  load=$(cut -d' ' -f1 /proc/loadavg)
  log "run $n/$REPEAT: $tool (log: benches/.work/logs/$tool.$n.log)"
  WALL=""; RSS_KB=""; DETAIL=""
  if "$fn" "$log"; then
    verify_target
    if [ -n "$VERIFY_ERR" ]; then status=FAILED; note="$VERIFY_ERR"
    else status=ok; note="$VERIFY_NOTE"; fi
  else
    status=FAILED
    note="exit status non-zero; last line of the log: $(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-200)"
  fi
  b1=$(binlog_bytes)
  [ -n "$DETAIL" ] && note="${note:+$note; }$DETAIL"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$n" "$status" "${WALL:-}" "${RSS_KB:-}" \
    "$((b1 - b0))" "$load" "${note//[$'\t\n']/ }" >>"$RUNS"
  log "  $tool: $status, wall ${WALL:-?} s${RSS_KB:+, peak RSS $((RSS_KB / 1024)) MB}${note:+ ($note)}"
}

# ---------------------------------------------------------------------------------------------------
# 5. Verification benchmark (--verify)
# ---------------------------------------------------------------------------------------------------
VRUNS="$WORK/verify-runs.tsv"
VMETA="$WORK/verify-meta.tsv"
FLOOR_PLAN="$WORK/floor-plan.json"

same_tables() { # -> true when the target's bench database has exactly the source's tables
  [ "$(src -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' ORDER BY 1")" \
    = "$(dst -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' ORDER BY 1")" ]
}

# The target must hold an identical copy of the source's bench database: same tables, same row counts,
# same CHECKSUM TABLE (with BENCH_CHECKSUM=1). Otherwise it is copied with `ferry run` (not timed).
ensure_target_copy() {
  local why=""
  if [ -z "$(dst -e "SHOW DATABASES LIKE 'bench'")" ]; then why="the target has no bench database"
  elif ! same_tables; then why="the target's bench tables differ from the source's"
  else
    verify_target
    if [ -n "$VERIFY_ERR" ]; then why="$VERIFY_ERR"
    elif [[ "$VERIFY_NOTE" == *differs* ]]; then why="$VERIFY_NOTE"; fi
  fi
  if [ -z "$why" ]; then log "target: identical copy of bench present (row counts${VERIFY_NOTE:+, $VERIFY_NOTE})"; return 0; fi
  log "target: $why; copying bench with ferry run (not timed; log: benches/.work/logs/verify-copy.log)"
  reset_target
  write_job
  rm -rf "$WORK/ferry-data"; mkdir -p "$WORK/ferry-data"
  (cd "$WORK/ferry-data" && "$(ferry_bin)" run "$WORK/job.json") >"$LOGS/verify-copy.log" 2>&1 \
    || die "ferry run failed copying the data set; last line: $(grep -v '^\s*$' "$LOGS/verify-copy.log" | tail -n 1)"
  same_tables || die "after the copy the target's bench tables still differ from the source's"
  verify_target
  [ -z "$VERIFY_ERR" ] || die "after the copy: $VERIFY_ERR"
  [[ "$VERIFY_NOTE" != *differs* ]] || die "after the copy: $VERIFY_NOTE"
  log "target: copy done (row counts equal${VERIFY_NOTE:+, $VERIFY_NOTE})"
}

vtool_ferry_verify() { # log row-hash   (row-hash: auto | md5, as FERRY_VERIFY_ROW_HASH)
  local tf="$WORK/time.verify" rc=0
  (cd "$WORK/ferry-data" && FERRY_VERIFY_ROW_HASH="$2" /usr/bin/time -f '%e %M' -o "$tf" \
      "$(ferry_bin)" verify "$WORK/job.json" --json --mode full) >"$1.json" 2>"$1" || rc=$?
  WALL=$(time_file_field "$tf" 1); RSS_KB=$(time_file_field "$tf" 2)
  DETAIL=$(python3 - "$1.json" 2>/dev/null <<'PY' || echo "no JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["tables"]
print("consistent=%s, %d tables, %d chunks compared, %d different, %d object differences" % (
    str(r["consistent"]).lower(), len(t), sum(x["chunks_compared"] for x in t),
    sum(x["chunks_different"] for x in t), len(r["objects"])))
PY
)
  case $rc in
    0) return 0 ;;
    2) DETAIL="ferry verify reported differences (exit 2): $DETAIL"; return 1 ;;
    *) DETAIL="ferry verify failed (exit $rc): $(grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-200)"; return 1 ;;
  esac
}

pt_checksum() { # log port side   (one server: percona.checksums on that server)
  local tf="$WORK/time.pt-$3" rc=0 errors chunks
  /usr/bin/time -f '%e %M' -o "$tf" pt-table-checksum --no-version-check \
      --recursion-method=none --no-check-binlog-format --no-check-replication-filters \
      --databases=bench --replicate=percona.checksums \
      --chunk-size="$CHUNK_ROWS" --chunk-time=0 \
      --set-vars innodb_lock_wait_timeout=50 \
      "h=127.0.0.1,P=$2,u=$USER_NAME,p=$USER_PASS" >"$1" 2>&1 || rc=$?
  WALL=$(time_file_field "$tf" 1); RSS_KB=$(time_file_field "$tf" 2)
  # The summary: a header line (TS ERRORS DIFFS ROWS … CHUNKS SKIPPED TIME TABLE), one line per table.
  read -r errors chunks < <(awk '
    $1 == "TS" { for (i = 1; i <= NF; i++) col[$i] = i; next }
    ("TABLE" in col) && $col["TABLE"] ~ /^bench\./ { e += $col["ERRORS"] + $col["SKIPPED"]; c += $col["CHUNKS"]; n++ }
    END { print e + 0, c + 0 " chunks, " n + 0 " tables" }' "$1")
  DETAIL="$3 only, one session; $chunks"
  if [ $rc -ne 0 ] || [ "$errors" != 0 ] || [[ "$chunks" == *", 0 tables" ]]; then
    DETAIL="exit $rc, $errors errors/skipped chunks: $(grep -v '^\s*$' "$1" | grep -iv '^ *TS ' | tail -n 1 | cut -c1-200); $DETAIL"
    return 1
  fi
}

vtool_floor() { # log
  local tf="$WORK/time.floor" rc=0
  MYSQL_PWD="$USER_PASS" BENCH_DB_USER="$USER_NAME" /usr/bin/time -f '%e %M' -o "$tf" \
    python3 "$BENCH_DIR/crc32_floor.py" run --plan "$FLOOR_PLAN" --threads "$THREADS" \
      --port "$SRC_PORT" --port "$DST_PORT" >"$1" 2>&1 || rc=$?
  WALL=$(time_file_field "$tf" 1); RSS_KB=""
  DETAIL=$(grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-300)
  return $rc
}

vrecord() { # tool run status note
  printf '%s\t%s\t%s\t%s\t%s\t\t%s\t%s\n' "$1" "$2" "$3" "${WALL:-}" "${RSS_KB:-}" "$LOAD" "${4//[$'\t\n']/ }" >>"$VRUNS"
  log "  $1: $3, wall ${WALL:-?} s${RSS_KB:+, peak RSS $((RSS_KB / 1024)) MB}${4:+ ($4)}"
}

vrun() { # tool run# function args...   -> runs, records, sets LAST_OK
  local tool=$1 n=$2 fn=$3 log="$LOGS/verify-$1.$2.log"
  shift 3
  LOAD=$(cut -d' ' -f1 /proc/loadavg)
  log "run $n/$REPEAT: $tool (log: benches/.work/logs/verify-$tool.$n.log)"
  WALL=""; RSS_KB=""; DETAIL=""
  if "$fn" "$log" "$@"; then LAST_OK=1; vrecord "$tool" "$n" ok "$DETAIL"
  else LAST_OK=0; vrecord "$tool" "$n" FAILED "$DETAIL"; fi
}

# --cutover: the target's copy is made by a MigrateType 3 job with continuous verification; a
# sysbench write backlog is replayed, then the job cuts over. Records `cutover` (the cut-over
# verification's own time, from ferry run's summary) and `cutover-request` (SIGUSR1 to exit:
# the replay's drain, the verification, the triggers). The target is then an identical copy.
cutover_copy() {
  local job="$WORK/cutover-job.json" out="$LOGS/verify-cutover-run.log" pid t rc=0 t0 t1 line dirty
  local meta="ferry_meta.verify_dirty WHERE job = 'bench-cutover'"
  reset_target
  rm -rf "$WORK/ferry-data"; mkdir -p "$WORK/ferry-data"
  cat >"$job" <<EOF
{"JobName":"bench-cutover","MigrateOption":{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":2},
 "SrcDatabaseType":"mysql","SrcAccessType":"extranet","SrcInfo":{"Ip":"127.0.0.1","Port":$SRC_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DstDatabaseType":"mysql","DstAccessType":"extranet","DstInfo":{"Ip":"127.0.0.1","Port":$DST_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DatabaseInfo":"[{\"Database\":\"bench\"}]",
 "Ferry":{"Threads":$THREADS,"ChunkRows":$CV_CHUNK_ROWS,"ContinuousVerify":{"RowsPerSecond":$CV_RATE}}}
EOF
  log "cut-over: ferry run (MigrateType 3, continuous verification, chunks of $CV_CHUNK_ROWS rows; log: benches/.work/logs/verify-cutover-run.log)"
  (cd "$WORK/ferry-data" && exec "$(ferry_bin)" run "$job" --progress plain --skip-check --restart) >"$out" 2>&1 &
  pid=$!
  t=0
  until [ "$(dst -e "SELECT COUNT(*) FROM ferry_meta.verify_pass WHERE job = 'bench-cutover' AND last_full_at IS NOT NULL" 2>/dev/null || echo 0)" = 1 ]; do
    kill -0 "$pid" 2>/dev/null || die "ferry run stopped; see benches/.work/logs/verify-cutover-run.log"
    sleep 0.5; t=$((t + 1)); [ $t -lt 3600 ] || { kill "$pid"; die "the first verification pass did not finish in 30 minutes"; }
  done
  log "cut-over: first full pass stored; $BACKLOG oltp_write_only transactions on the source (log: benches/.work/logs/verify-cutover-backlog.log)"
  sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC_PORT" \
    --mysql-user="$USER_NAME" --mysql-password="$USER_PASS" --mysql-db=bench \
    --tables="$TABLES" --table-size="$SB_ROWS" --threads="$LOAD_THREADS" \
    --events="$BACKLOG" --time=0 --rate=0 --report-interval=0 run >"$LOGS/verify-cutover-backlog.log" 2>&1 \
    || { kill "$pid"; die "sysbench run failed (see benches/.work/logs/verify-cutover-backlog.log)"; }
  dirty="$(dst -e "SELECT COUNT(*) FROM $meta") of $(dst -e "SELECT COUNT(*) FROM ferry_meta.verify_chunk WHERE job = 'bench-cutover' AND status <> 3") chunks marked dirty when the backlog ended"
  if [ "$SETTLE" = 1 ]; then
    log "cut-over: waiting for the background verifier to digest the dirty chunks ($dirty)"
    t=0
    until [ "$(dst -e "SELECT COUNT(*) FROM $meta")" = 0 ]; do
      kill -0 "$pid" 2>/dev/null || die "ferry run stopped; see benches/.work/logs/verify-cutover-run.log"
      sleep 0.2; t=$((t + 1)); [ $t -lt 3000 ] || { kill "$pid"; die "dirty chunks were left after 10 minutes"; }
    done
  fi
  log "cut-over: SIGUSR1 ($dirty)"
  t0=$(now)
  kill -USR1 "$pid"
  wait "$pid" || rc=$?
  t1=$(now)
  [ "$rc" = 0 ] || die "ferry run exited $rc at cut-over; see benches/.work/logs/verify-cutover-run.log"
  line=$(grep "chunks digested again" "$out" || true)
  [ -n "$line" ] || die "no cut-over verification line in benches/.work/logs/verify-cutover-run.log"
  LOAD=$(cut -d' ' -f1 /proc/loadavg); RSS_KB=""
  WALL=$(echo "$line" | awk '{ for (i = 1; i < NF; i++) if ($i == "in") print $(i + 1) }')
  vrecord cutover 1 ok "$(echo "$line" | awk '{ print $2 " of " $4 }') chunks of $CV_CHUNK_ROWS rows digested again ($(echo "$line" | awk '{ for (i = 2; i < NF; i++) if ($i == "rows" && $(i + 1) == "read,") print $(i - 1) }') rows read); $dirty; $([ "$SETTLE" = 1 ] && echo "cut over once the background verifier had caught up (BENCH_SETTLE=1)" || echo "cut over right after the backlog (BENCH_SETTLE=0)")"
  WALL=$(elapsed "$t0" "$t1")
  vrecord cutover-request 1 ok "SIGUSR1 to exit: the replay's drain, the cut-over verification, the triggers; $(grep -m1 'verified  ' "$out" | sed 's/^ *//' | cut -c1-120)"
}

# --complete: the issue's "How it is checked" through the API of `ferry serve`. Per round: an empty
# target; CreateMigrateJob (MigrateType 3, ConsistencyType 2, Ferry.ContinuousVerify), the check,
# StartMigrateJob; the first full pass of the continuous verification (DescribeMigrationDetail's
# `verification` step at 100 %); BENCH_LOAD_SECONDS of sysbench oltp_write_only on the source
# while the job replays; status 8; then CompleteMigrateJob, timed from the request to status 9
# (the replay's drain, the cut-over verification, the triggers). Round `now` completes right after
# the load, round `fresh` once the freshness reports every chunk current. After each round the
# target is an identical copy, verified by a standalone `ferry verify --mode full` (timed).
complete_job_json() {
  cat <<EOF
{"JobName":"bench-complete","MigrateOption":{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":2},
 "SrcDatabaseType":"mysql","SrcAccessType":"extranet","SrcInfo":{"Ip":"127.0.0.1","Port":$SRC_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DstDatabaseType":"mysql","DstAccessType":"extranet","DstInfo":{"Ip":"127.0.0.1","Port":$DST_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DatabaseInfo":"[{\"Database\":\"bench\"}]",
 "Ferry":{"Threads":$THREADS,"ChunkRows":$CV_CHUNK_ROWS,"ContinuousVerify":{"RowsPerSecond":$CV_RATE}}}
EOF
}

job_status() { # id -> the job's Status (DescribeMigrateJobs), "?" when the call failed
  api DescribeMigrateJobs "{\"JobId\":\"$1\"}" 2>/dev/null | json_get 'r["JobList"][0]["Status"]' 2>/dev/null || echo "?"
}

# The `verification` step of DescribeMigrationDetail: "STATUS<TAB>PERCENT<TAB>MESSAGE", and the
# job's BriefMsg after a fourth tab.
verification_step() { # id
  api DescribeMigrationDetail "{\"JobId\":\"$1\"}" 2021-12-06 2>/dev/null \
    | json_get '"\t".join([str(s[k]) for s in r["StepInfo"]["StepInfo"] if s["StepId"] == "verification" for k in ("Status", "Percent", "StepMessage")] + [r["BriefMsg"]])' 2>/dev/null \
    || echo "?"
}

wait_job_status() { # id status seconds what [poll-interval]
  local s deadline
  deadline=$(awk -v a="$(now)" -v b="$3" 'BEGIN { printf "%d", a + b }')
  while :; do
    s=$(job_status "$1")
    [ "$s" = "$2" ] && return 0
    case "$s" in 5|9|10) die "the job ended in status $s while waiting for $4 ($2); see ${LOGS#"$ROOT"/}/complete-serve.log" ;; esac
    [ "$(date +%s)" -lt "$deadline" ] || die "no status $2 ($4) within $3 s (status $s)"
    sleep "${5:-0.5}"
  done
}

wait_fresh() { # id seconds what -> waits for the verification step at 100 % (every chunk current)
  local t=0 step limit=$(($2 * 2))
  while :; do
    step=$(verification_step "$1")
    [ "$(echo "$step" | cut -f1,2)" = "running	100" ] && [[ "$(echo "$step" | cut -f3)" == *"s ago"* ]] && return 0
    case "$(job_status "$1")" in 5|9|10) die "the job ended while waiting for $3" ;; esac
    sleep 0.5; t=$((t + 1)); [ $t -lt $limit ] || die "$3: not within $2 s (last: $step)"
  done
}

complete_round() { # now|fresh
  local kind=$1 id step t0 t1 t_load wait_s at_stop chunks brief client status=ok note
  reset_target
  id=$(api CreateMigrateJob "$(complete_job_json)" | json_get 'r["JobId"]') || die "CreateMigrateJob failed"
  log "complete ($kind): job $id created through the API; check, start, full load"
  api CreateMigrateCheckJob "{\"JobId\":\"$id\"}" >/dev/null || die "CreateMigrateCheckJob failed"
  wait_job_status "$id" 4 600 "the check to pass"
  api StartMigrateJob "{\"JobId\":\"$id\"}" >/dev/null || die "StartMigrateJob failed"
  wait_fresh "$id" 3600 "the full load and the first full pass of the continuous verification"
  log "complete ($kind): first full pass done; ${LOAD_SECONDS} s of sysbench oltp_write_only on the source (log: benches/.work/logs/complete-load-$kind.log)"
  sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC_PORT" \
    --mysql-user="$USER_NAME" --mysql-password="$USER_PASS" --mysql-db=bench \
    --tables="$TABLES" --table-size="$SB_ROWS" --threads="$LOAD_THREADS" \
    --time="$LOAD_SECONDS" --events=0 --rate=0 --report-interval=0 run >"$LOGS/complete-load-$kind.log" 2>&1 \
    || die "sysbench run failed (see benches/.work/logs/complete-load-$kind.log)"
  t_load=$(now)
  at_stop=$(verification_step "$id" | cut -f3 | sed 's/^continuous verification: //')
  wait_job_status "$id" 8 600 "the replay to catch up"
  wait_s=""
  if [ "$kind" = fresh ]; then
    wait_fresh "$id" 1800 "the freshness to report every chunk current"
    wait_s=$(elapsed "$t_load" "$(now)")
  fi
  log "complete ($kind): CompleteMigrateJob (when the load stopped: $at_stop)"
  # What one poll costs (the resolution of the time measured below).
  t0=$(now); job_status "$id" >/dev/null; POLL_MS=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 1000 }')
  t0=$(now)
  api CompleteMigrateJob "{\"JobId\":\"$id\"}" >/dev/null || die "CompleteMigrateJob failed"
  wait_job_status "$id" 9 1800 "the job to complete" 0.02
  t1=$(now)
  step=$(verification_step "$id")
  chunks=$(echo "$step" | cut -f3 | grep -oE '[0-9]+ of [0-9]+ chunks digested again( at cut-over, [0-9]+ rows read)?' || echo "chunks digested again: not reported")
  brief=$(echo "$step" | cut -f4)
  [ -z "$brief" ] || status=FAILED
  LOAD=$(cut -d' ' -f1 /proc/loadavg); RSS_KB=""
  # The time recorded: from the CompleteMigrateJob call to the job's end, as `ferry serve` logged
  # them (its "api call" line, written when the call was answered, and "job finished", after
  # which status 9 is stored); the client's view (a `ferry api` process per call, DescribeMigrateJobs
  # polled back to back) goes into the note.
  client=$(elapsed "$t0" "$t1")
  WALL=$(python3 - "$LOGS/complete-serve.log" "$id" <<'PY2'
import datetime, re, sys
req = fin = None
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    t = line.split(" ", 1)[0]
    if "api call action=CompleteMigrateJob " in line:
        req = t
    elif f"job{{job_id={sys.argv[2]}}}" in line and "job finished" in line:
        fin = t
at = lambda s: datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d*Z$", r"\1+00:00", s))
print(f"{(at(fin) - at(req)).total_seconds():.2f}" if req and fin else "")
PY2
)
  local timed="CompleteMigrateJob answered to job finished (status 9), from ferry serve's log"
  [ -n "$WALL" ] || { WALL=$client; timed="the client's time (no CompleteMigrateJob or job finished line in the serve log)"; }
  note="$timed; the client saw ${client} s (a ferry api process per call, ~$POLL_MS ms each, polling DescribeMigrateJobs); $chunks (chunks of $CV_CHUNK_ROWS rows); when the load stopped: $at_stop; $(grep -o 'transactions: *[0-9]*' "$LOGS/complete-load-$kind.log" | tr -s ' ') in ${LOAD_SECONDS} s"
  [ -z "$wait_s" ] || note="$note; waited $wait_s s after the load for every chunk to be current"
  [ -z "$brief" ] || note="$note; BriefMsg: $brief"
  vrecord "complete-$kind" 1 "$status" "$note"
  # The target is now an identical copy (the job completed consistent): a standalone full pass.
  write_job
  rm -rf "$WORK/ferry-data"; mkdir -p "$WORK/ferry-data"
  vrun ferry-verify "$kind" vtool_ferry_verify auto
}

complete_main() {
  log "starting ferry serve (log: benches/.work/logs/complete-serve.log)"
  serve_start "$WORK/serve" "$LOGS/complete-serve.log"
  log "ferry serve at $SERVE_URL"
  complete_round now
  complete_round fresh
  serve_stop
}

# The rounds of --verify (and --cutover): each verifier BENCH_REPEAT times.
verify_rounds() {
  if [ "$CUTOVER" = 1 ]; then cutover_copy; else ensure_target_copy; fi
  write_job
  rm -rf "$WORK/ferry-data"; mkdir -p "$WORK/ferry-data"
  # Untimed: the floor's key ranges, cut on the source.
  MYSQL_PWD="$USER_PASS" BENCH_DB_USER="$USER_NAME" python3 "$BENCH_DIR/crc32_floor.py" plan --port "$SRC_PORT" \
    --db bench --chunk-rows "$CHUNK_ROWS" "${TABLE_LIST[@]}" >"$FLOOR_PLAN" || die "planning the CRC32 floor failed"
  log "CRC32 floor: $(grep -c '"sql"' "$FLOOR_PLAN") key ranges of ≤ $CHUNK_ROWS rows"

  local n w1 r1 ok1 w2 r2 ok2
  for n in $(seq 1 "$REPEAT"); do
    vrun ferry-verify "$n" vtool_ferry_verify auto
    vrun ferry-verify-md5 "$n" vtool_ferry_verify md5
    vrun pt "$n" pt_checksum "$SRC_PORT" source
    w1=$WALL; r1=$RSS_KB; ok1=$LAST_OK
    vrun pt-target "$n" pt_checksum "$DST_PORT" target
    w2=$WALL; r2=$RSS_KB; ok2=$LAST_OK
    # pt-table-checksum ×2: the source's and the target's run, one after the other.
    WALL=$(awk -v a="${w1:-0}" -v b="${w2:-0}" 'BEGIN { printf "%.2f", a + b }')
    RSS_KB=$(( ${r1:-0} > ${r2:-0} ? ${r1:-0} : ${r2:-0} ))
    if [ "$ok1$ok2" = 11 ]; then
      # Both sides' percona.checksums must agree chunk for chunk (the comparison pt-table-checksum
      # leaves to replication; here it is made directly). Not timed.
      local q="SELECT db, tbl, chunk, this_cnt, this_crc FROM percona.checksums WHERE db='bench' ORDER BY db, tbl, chunk"
      if [ "$(src -e "$q")" = "$(dst -e "$q")" ]; then
        vrecord pt-x2 "$n" ok "pt-table-checksum on the source, then on the target (${w1} s + ${w2} s); percona.checksums equal on both sides"
      else
        vrecord pt-x2 "$n" FAILED "percona.checksums differ between source and target"
      fi
    else
      vrecord pt-x2 "$n" FAILED "a pt-table-checksum run failed"
    fi
    vrun floor "$n" vtool_floor
  done
}

verify_main() {
  prepare_ferry
  [ -z "$FERRY_SKIP" ] || die "$FERRY_SKIP"
  "$(ferry_bin)" --help 2>&1 | grep -qw verify || die "$(ferry_bin) has no verify command"
  printf 'tool\trun\tstatus\twall_s\trss_kb\ttarget_binlog_bytes\tloadavg\tnote\n' >"$VRUNS"
  if [ "$COMPLETE" = 1 ]; then complete_main; else verify_rounds; fi

  {
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'scale\t%s\n' "$SCALE"
    printf 'tables\t%s sbtest x %s rows + mixed x %s rows\n' "$TABLES" "$SB_ROWS" "$MIXED_ROWS"
    printf 'rows\t%s\n' "$SRC_ROWS"
    printf 'data_bytes\t%s\n' "$SRC_DATA_BYTES"
    printf 'threads\t%s\n' "$THREADS"
    printf 'chunk_rows\t%s\n' "$CHUNK_ROWS"
    # --complete: one standalone full pass after each of its two rounds.
    printf 'repeat\t%s\n' "$([ "$COMPLETE" = 1 ] && echo 2 || echo "$REPEAT")"
    printf 'buffer_pool\t%s\n' "$FERRY_TEST_BUFFER_POOL"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'memory\t%s GiB\n' "$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
    printf 'server\t%s\n' "$(dst -e 'SELECT VERSION()')"
    printf 'pt_table_checksum\t%s\n' "$(pt-table-checksum --version 2>&1 | head -n 1)"
    printf 'ferry\t%s\n' "$("$(ferry_bin)" --version 2>/dev/null | head -n 1 || echo unknown)"
  } >"$VMETA"
  python3 "$BENCH_DIR/report_verify.py" "$VMETA" "$VRUNS" "$WORK/verify-results.md"
  log "results written to benches/.work/verify-results.md"
}

# ---------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------
ensure_packages
start_servers
prepare_dataset
if [ "$MODE" = verify ]; then verify_main; exit 0; fi

printf 'tool\trun\tstatus\twall_s\trss_kb\ttarget_binlog_bytes\tloadavg\tnote\n' >"$RUNS"
RUN_TOOLS=()
for tool in ${TOOLS//,/ }; do
  case "$tool" in
    ferry|ferry-lockless)
      prepare_ferry
      if [ -n "$FERRY_SKIP" ]; then
        printf '%s\t0\tSKIPPED\t\t\t\t\t%s\n' "$tool" "$FERRY_SKIP" >>"$RUNS"; continue
      fi ;;
    loaddata) prepare_outfiles ;;
  esac
  RUN_TOOLS+=("$tool")
done
# Rounds: every tool once per round, so that a burst of load from elsewhere on the machine does not
# fall on the runs of one tool only.
for n in $(seq 1 "$REPEAT"); do
  for tool in "${RUN_TOOLS[@]}"; do run_tool "$tool" "$n"; done
done
reset_target

ferry_version=""
[ -z "${FERRY_SKIP:-}" ] && [ -x "$(ferry_bin)" ] && ferry_version=$("$(ferry_bin)" --version 2>/dev/null | head -n 1 || true)
{
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'scale\t%s\n' "$SCALE"
  printf 'tables\t%s sbtest x %s rows + mixed x %s rows\n' "$TABLES" "$SB_ROWS" "$MIXED_ROWS"
  printf 'rows\t%s\n' "$SRC_ROWS"
  printf 'data_bytes\t%s\n' "$SRC_DATA_BYTES"
  printf 'index_bytes\t%s\n' "$SRC_INDEX_BYTES"
  printf 'threads\t%s\n' "$THREADS"
  printf 'chunk_rows\t%s\n' "$CHUNK_ROWS"
  printf 'repeat\t%s\n' "$REPEAT"
  printf 'target_binlog\t%s\n' "$TARGET_BINLOG"
  printf 'loaddata_split\t%s\n' "$LOADDATA_SPLIT"
  printf 'buffer_pool\t%s\n' "$FERRY_TEST_BUFFER_POOL"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'memory\t%s GiB\n' "$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
  printf 'server\t%s\n' "$(dst -e 'SELECT VERSION()')"
  printf 'mydumper\t%s\n' "$(mydumper --version 2>&1 | head -n 1)"
  printf 'mariadb_dump\t%s\n' "$(mariadb-dump --version 2>&1 | head -n 1)"
  printf 'ferry\t%s\n' "${ferry_version:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
} >"$META"

python3 "$BENCH_DIR/report.py" "$META" "$RUNS" "$WORK/results.md"
log "results written to benches/.work/results.md"
