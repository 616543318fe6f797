#!/usr/bin/env bash
# Incremental replay benchmark, on servers of its own (source, ferry's target, and a MariaDB
# native replica):
#
#   1. catch-up: a binlog backlog of sysbench oltp_write_only transactions is built on the source
#      while nothing replays; then ferry replays it from the start position to the end, and the
#      native replica (slave_parallel_threads, slave_parallel_mode=optimistic) does the same from
#      the same position on the same data; transactions/s, rows/s and the ratio;
#   2. lag: sysbench oltp_write_only --threads=4 at full speed on the source for a minute while
#      ferry replays; a heartbeat row written on the source every 100 ms and read on the target
#      every 200 ms gives the lag a reader of the target sees (max, p99, p50), next to the lag
#      ferry itself reports.
#
#   benches/replay.sh            full size (4 tables x 100k rows, 40k-transaction backlog, 60 s lag run)
#   benches/replay.sh --quick    smoke run (small tables, 4k-transaction backlog, 15 s lag run)
#   benches/replay.sh --help     options and environment knobs
#
# Everything it writes lives under benches/.work/replay/ (git-ignored); the results are printed
# and written to benches/.work/replay/results.md. See docs/benchmarks.md, "Incremental replay".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/benches"
WORK="$BENCH_DIR/.work/replay"

usage() {
  cat <<'EOF'
usage: benches/replay.sh [--quick] [--keep] [--help]

  --quick        smoke run: 4 x 20k rows, 4,000-transaction backlog, 15 s lag run
  --keep         leave the benchmark servers running afterwards (= BENCH_KEEP=1)

environment:
  BENCH_TABLES=4           sysbench tables
  BENCH_TABLE_ROWS=100000  rows per table
  BENCH_BACKLOG=40000      oltp_write_only transactions in the catch-up backlog
  BENCH_LOAD_THREADS=4     sysbench threads (backlog and lag run)
  BENCH_WORKERS=4          ferry apply workers (FERRY_REPLAY_WORKERS); a list ("4 1") runs ferry
                           once per value, the target reloaded to the start state in between
  BENCH_NATIVE_THREADS=4   slave_parallel_threads of the native replica
  BENCH_NATIVE_MODE=optimistic  slave_parallel_mode of the native replica
  BENCH_LAG_SECONDS=60     length of the lag run (0: skip it)
  BENCH_BUFFER_POOL=1G     innodb_buffer_pool_size of every benchmark server
  BENCH_BUILD=1            run `cargo build --release -p ferry-cli` first (0: use the binary as is)
  BENCH_FERRY=path         ferry binary (default: $CARGO_TARGET_DIR or target/ + release/ferry)
  BENCH_COMPARE=path       a second ferry binary (an earlier build, say): every ferry run is
                           preceded by the same run with it, recorded as compare-N
  BENCH_ROUNDS=1           the ferry runs (and compare runs) repeated this many times, interleaved,
                           on the same backlog (the native replica runs once)
  BENCH_KEEP=0             1: leave the servers running
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) BENCH_TABLE_ROWS="${BENCH_TABLE_ROWS:-20000}"; BENCH_BACKLOG="${BENCH_BACKLOG:-4000}"
             BENCH_LAG_SECONDS="${BENCH_LAG_SECONDS:-15}" ;;
    --keep) BENCH_KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "replay.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

TABLES="${BENCH_TABLES:-4}"
TABLE_ROWS="${BENCH_TABLE_ROWS:-100000}"
BACKLOG="${BENCH_BACKLOG:-40000}"
LOAD_THREADS="${BENCH_LOAD_THREADS:-4}"
WORKERS_LIST="${BENCH_WORKERS:-4}"
NATIVE_THREADS="${BENCH_NATIVE_THREADS:-4}"
NATIVE_MODE="${BENCH_NATIVE_MODE:-optimistic}"
LAG_SECONDS="${BENCH_LAG_SECONDS:-60}"
BUILD="${BENCH_BUILD:-1}"
KEEP="${BENCH_KEEP:-0}"
COMPARE="${BENCH_COMPARE:-}"
ROUNDS="${BENCH_ROUNDS:-1}"
export FERRY_TEST_DIR="$WORK/servers"
export FERRY_TEST_BUFFER_POOL="${BENCH_BUFFER_POOL:-1G}"
export FERRY_TEST_EXTRA_BUFFER_POOL="$FERRY_TEST_BUFFER_POOL"

for v in TABLES TABLE_ROWS BACKLOG LOAD_THREADS NATIVE_THREADS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "replay.sh: BENCH_$v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "replay.sh: BENCH_ROUNDS must be a positive integer (got '$ROUNDS')" >&2; exit 2; }
[ -z "$COMPARE" ] || [ -x "$COMPARE" ] || { echo "replay.sh: BENCH_COMPARE: no executable at '$COMPARE'" >&2; exit 2; }
[[ "$LAG_SECONDS" =~ ^[0-9]+$ ]] || { echo "replay.sh: BENCH_LAG_SECONDS must be a number" >&2; exit 2; }
for w in $WORKERS_LIST; do
  [[ "$w" =~ ^[1-9][0-9]*$ ]] && [ "$w" -le 64 ] || { echo "replay.sh: BENCH_WORKERS values must be 1..64 (got '$w')" >&2; exit 2; }
done
case "$NATIVE_MODE" in conservative|optimistic|aggressive|minimal|none) ;;
  *) echo "replay.sh: BENCH_NATIVE_MODE must be a slave_parallel_mode value" >&2; exit 2 ;; esac

LOGS="$WORK/logs"
RUNS="$WORK/runs.tsv"
META="$WORK/meta.tsv"
mkdir -p "$WORK" "$LOGS"
USER_NAME=ferry
USER_PASS=ferry-test-pw
DB=sbr
JOB=bench-replay

log() { echo "[replay-bench $(date +%H:%M:%S)] $*" >&2; }
# shellcheck source=benches/common.sh
source "$BENCH_DIR/common.sh"

# Background processes this script started (ferry, heartbeat writer, sampler): stopped on exit.
BG_PIDS=()
cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then
    log "servers left running (BENCH_KEEP=1); stop them with: FERRY_TEST_DIR=benches/.work/replay/servers scripts/servers.sh stop"
  else
    "$ROOT/scripts/servers.sh" stop || true
  fi
}

ensure_packages() {
  local missing=()
  command -v sysbench >/dev/null 2>&1 || missing+=(sysbench)
  command -v mariadb >/dev/null 2>&1 && command -v mariadb-dump >/dev/null 2>&1 || missing+=(mariadb-client)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  apt_install "${missing[@]}"
}



start_servers() {
  log "starting the benchmark servers (buffer pool $FERRY_TEST_BUFFER_POOL) under benches/.work/replay/servers"
  trap cleanup EXIT
  "$ROOT/scripts/servers.sh" start
  "$ROOT/scripts/servers.sh" start-one replica
  eval "$("$ROOT/scripts/servers.sh" env)"
  SRC_PORT="${FERRY_TEST_SOURCE_URL##*:}"
  DST_PORT="${FERRY_TEST_TARGET_URL##*:}"
  SRC_SOCK="$FERRY_TEST_SOURCE_SOCKET"
  DST_SOCK="$FERRY_TEST_TARGET_SOCKET"
  REP_SOCK="$FERRY_TEST_DIR/replica/mysqld.sock"
  log "source 127.0.0.1:$SRC_PORT, ferry's target 127.0.0.1:$DST_PORT, native replica 127.0.0.1:$(cat "$FERRY_TEST_DIR/replica/port")"
}

src() { mariadb --no-defaults --default-character-set=utf8mb4 --socket="$SRC_SOCK" -uroot -N -B "$@"; }
dst() { mariadb --no-defaults --default-character-set=utf8mb4 --socket="$DST_SOCK" -uroot -N -B "$@"; }
rep() { mariadb --no-defaults --default-character-set=utf8mb4 --socket="$REP_SOCK" -uroot -N -B "$@"; }
rep_status() { mariadb --no-defaults --socket="$REP_SOCK" -uroot -e "SHOW SLAVE STATUS\G"; }

sb() { # sysbench oltp_write_only on the source, extra args
  sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC_PORT" \
    --mysql-user="$USER_NAME" --mysql-password="$USER_PASS" --mysql-db="$DB" \
    --tables="$TABLES" --table-size="$TABLE_ROWS" "$@"
}

master_pos() { src -e "SHOW MASTER STATUS" | awk '{ print $1 ":" $2 }'; }

# pos_ge A B: file:pos A at or after B (by the file's numeric suffix, then the offset)
pos_ge() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    split(a, x, ":"); split(b, y, ":");
    n = split(x[1], fx, "."); m = split(y[1], fy, ".");
    if (fx[n] + 0 != fy[m] + 0) exit !(fx[n] + 0 > fy[m] + 0);
    exit !(x[2] + 0 >= y[2] + 0) }'
}

write_job() {
  cat >"$WORK/job.json" <<EOF
{"JobName":"$JOB","MigrateOption":{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":5},
 "SrcDatabaseType":"mysql","SrcAccessType":"extranet","SrcInfo":{"Ip":"127.0.0.1","Port":$SRC_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DstDatabaseType":"mysql","DstAccessType":"extranet","DstInfo":{"Ip":"127.0.0.1","Port":$DST_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DatabaseInfo":"[{\"Database\":\"$DB\"}]",
 "Ferry":{"Threads":2,"ChunkRows":50000,"ExistingTables":"drop"}}
EOF
}

FERRY_PID=""
start_ferry() { # workers log [args]
  local w=$1 logf=$2; shift 2
  (cd "$WORK" && exec env FERRY_REPLAY_WORKERS="$w" "${RUN_BIN:-$(ferry_bin)}" run "$WORK/job.json" --progress plain --skip-check "$@") \
    >"$logf" 2>&1 &
  FERRY_PID=$!
  BG_PIDS+=("$FERRY_PID")
}

stop_ferry() { # SIGINT: stops the replay at a transaction boundary with its checkpoint written
  [ -n "$FERRY_PID" ] || return 0
  kill -INT "$FERRY_PID" 2>/dev/null || true
  wait "$FERRY_PID" 2>/dev/null || true
  FERRY_PID=""
}

ferry_applied() { dst -e "SELECT CONCAT(file, ':', pos) FROM ferry_meta.replay_checkpoint WHERE job = '$JOB'" 2>/dev/null || true; }

# ---------------------------------------------------------------------------------------------------
# Start state: sysbench tables on the source (quiescent), copied to ferry's target by ferry itself
# (full load, then its replay is stopped with a checkpoint at the start position) and to the native
# replica by mariadb-dump. START_POS: the source position of that state.
# ---------------------------------------------------------------------------------------------------
prepare_state() {
  log "resetting the three servers"
  rep -e "STOP SLAVE; RESET SLAVE ALL" >/dev/null 2>&1 || true
  rep -e "SET SESSION sql_log_bin=0; DROP DATABASE IF EXISTS $DB; RESET MASTER"
  dst -e "SET SESSION sql_log_bin=0; DROP DATABASE IF EXISTS $DB; DROP DATABASE IF EXISTS ferry_meta; RESET MASTER"
  src -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
  log "sysbench prepare: $TABLES tables x $TABLE_ROWS rows (log: benches/.work/replay/logs/prepare.log)"
  sb --threads="$TABLES" prepare >"$LOGS/prepare.log" 2>&1 || die "sysbench prepare failed (see the log)"
  src -e "CREATE TABLE $DB.hb (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL); INSERT INTO $DB.hb VALUES (1, NOW(6))"
  START_POS=$(master_pos)
  log "start position $START_POS; copying the start state to ferry's target (ferry run, full load)"
  write_job
  start_ferry "${WORKERS_LIST%% *}" "$LOGS/ferry-copy.log" --restart
  local t=0
  until [ -n "$(ferry_applied)" ] && [ "$(dst -e "SELECT COUNT(*) FROM $DB.sbtest$TABLES" 2>/dev/null)" = "$TABLE_ROWS" ] \
        && [ "$(dst -e "SELECT COUNT(*) FROM $DB.hb" 2>/dev/null)" = 1 ]; do
    kill -0 "$FERRY_PID" 2>/dev/null || die "ferry stopped during the copy; see benches/.work/replay/logs/ferry-copy.log"
    sleep 0.5; t=$((t + 1)); [ $t -lt 1200 ] || die "the copy did not finish in 10 minutes"
  done
  stop_ferry
  [ "$(master_pos)" = "$START_POS" ] || die "the source moved during the copy"
  log "copying the start state to the native replica (mariadb-dump)"
  mariadb-dump --no-defaults --socket="$SRC_SOCK" -uroot --single-transaction --quick --databases "$DB" \
    | rep --init-command="SET SESSION sql_log_bin=0" || die "copying to the replica failed"
  # The untimed reference for reloading ferry's target between ferry runs (several worker
  # counts, rounds or a compare binary); never one left by an earlier invocation.
  rm -f "$WORK/target-start.sql"
  if [ "$(echo "$WORKERS_LIST" | wc -w)" -gt 1 ] || [ "$ROUNDS" -gt 1 ] || [ -n "$COMPARE" ]; then
    mariadb-dump --no-defaults --socket="$DST_SOCK" -uroot --single-transaction --quick --databases "$DB" ferry_meta \
      >"$WORK/target-start.sql"
  fi
  dst -e "CHECKSUM TABLE $DB.sbtest1" | awk '{ print $2 }' >"$WORK/start-checksum"
  [ "$(rep -e "CHECKSUM TABLE $DB.sbtest1" | awk '{ print $2 }')" = "$(cat "$WORK/start-checksum")" ] \
    || die "the replica's start state differs from ferry's target"
}

build_backlog() {
  log "backlog: $BACKLOG oltp_write_only transactions, $LOAD_THREADS threads, nothing replaying (log: benches/.work/replay/logs/backlog.log)"
  sb --threads="$LOAD_THREADS" --events="$BACKLOG" --time=0 --rate=0 --report-interval=0 run >"$LOGS/backlog.log" 2>&1 \
    || die "sysbench run failed (see the log)"
  BACKLOG_TXNS=$(awk '/transactions:/ { print $2; exit }' "$LOGS/backlog.log")
  BACKLOG_ROWS=$(awk '/ write:/ { print $2; exit }' "$LOGS/backlog.log")
  END_POS=$(master_pos)
  BACKLOG_BYTES=$(src -e "SHOW BINARY LOGS" | awk -v s="${START_POS%%:*}" -v sp="${START_POS##*:}" -v e="${END_POS%%:*}" -v ep="${END_POS##*:}" '
    $1 == s && $1 == e { b = ep - sp; next }
    $1 == s { b += $2 - sp; on = 1; next }
    on && $1 == e { b += ep; on = 0; next }
    on { b += $2 } END { print b + 0 }')
  log "backlog: $BACKLOG_TXNS transactions, $BACKLOG_ROWS row changes, $((BACKLOG_BYTES / 1000000)) MB of binlog ($START_POS → $END_POS)"
}

record() { # tool status seconds detail
  local tps rps
  tps=$(awk -v n="$BACKLOG_TXNS" -v s="$3" 'BEGIN { if (s > 0) printf "%.0f", n / s }')
  rps=$(awk -v n="$BACKLOG_ROWS" -v s="$3" 'BEGIN { if (s > 0) printf "%.0f", n / s }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$tps" "$rps" "$(cut -d' ' -f1 /proc/loadavg)" "${4//[$'\t\n']/ }" >>"$RUNS"
  log "  $1: $2, $3 s, $tps transactions/s, $rps rows/s${4:+ ($4)}"
}

run_native() {
  log "native replica: slave_parallel_threads=$NATIVE_THREADS, slave_parallel_mode=$NATIVE_MODE, from $START_POS"
  rep -e "SET GLOBAL slave_parallel_threads = $NATIVE_THREADS; SET GLOBAL slave_parallel_mode = '$NATIVE_MODE';
          CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$SRC_PORT, MASTER_USER='$USER_NAME',
            MASTER_PASSWORD='$USER_PASS', MASTER_LOG_FILE='${START_POS%%:*}', MASTER_LOG_POS=${START_POS##*:},
            MASTER_USE_GTID=no"
  local t0 t1 st file pos running n=0
  t0=$(now)
  rep -e "START SLAVE"
  while :; do
    st=$(rep_status 2>/dev/null || true)
    file=$(echo "$st" | awk '$1 == "Relay_Master_Log_File:" { print $2 }')
    pos=$(echo "$st" | awk '$1 == "Exec_Master_Log_Pos:" { print $2 }')
    running=$(echo "$st" | awk '$1 == "Slave_SQL_Running:" { print $2 }')
    if [ -n "$file" ] && pos_ge "$file:$pos" "$END_POS"; then t1=$(now); break; fi
    if [ "$running" = No ]; then
      record native FAILED "" "replica SQL thread stopped: $(echo "$st" | awk -F': ' '$1 ~ /Last_SQL_Error/ { print $2 }')"
      return 0
    fi
    n=$((n + 1)); [ $n -lt 36000 ] || { record native FAILED "" "not caught up after 2 h"; return 0; }
    sleep 0.1
  done
  rep -e "STOP SLAVE"
  record native ok "$(elapsed "$t0" "$t1")" "MariaDB $(rep -e 'SELECT VERSION()'), slave_parallel_threads=$NATIVE_THREADS, $NATIVE_MODE"
  [ "$(rep -e "CHECKSUM TABLE $DB.sbtest1" | awk '{ print $2 }')" = "$(dst_expected_checksum)" ] \
    || log "  note: the replica's sbtest1 checksum differs from the source's at the backlog end"
}

# CHECKSUM TABLE sbtest1 on the source at the backlog end (the source is quiescent until the lag run)
dst_expected_checksum() { cat "$WORK/end-checksum"; }

run_ferry() { # workers keep_running(0|1) [label: ferry|compare; RUN_BIN names the binary]
  local w=$1 keep=$2 label=${3:-ferry} t0 t1 a n=0
  if [ -f "$WORK/target-start.sql" ] && [ "$FERRY_RUNS" -gt 0 ]; then
    log "reloading ferry's target to the start state (not timed)"
    dst -e "SET SESSION sql_log_bin=0; DROP DATABASE IF EXISTS $DB; DROP DATABASE IF EXISTS ferry_meta"
    dst --init-command="SET SESSION sql_log_bin=0" <"$WORK/target-start.sql"
  fi
  FERRY_RUNS=$((FERRY_RUNS + 1))
  log "$label: $w apply worker(s), from $START_POS (log: benches/.work/replay/logs/$label-$w.log)"
  t0=$(now)
  start_ferry "$w" "$LOGS/$label-$w.log"
  while :; do
    a=$(ferry_applied)
    if [ -n "$a" ] && pos_ge "$a" "$END_POS"; then t1=$(now); break; fi
    if ! kill -0 "$FERRY_PID" 2>/dev/null; then
      record "$label-$w" FAILED "" "ferry exited: $(grep -v '^\s*$' "$LOGS/$label-$w.log" | tail -n 1 | cut -c1-200)"
      FERRY_PID=""; return 0
    fi
    n=$((n + 1)); [ $n -lt 72000 ] || { record "$label-$w" FAILED "" "not caught up after 2 h"; return 0; }
    sleep 0.1
  done
  local cpu
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$FERRY_PID/stat" 2>/dev/null || echo "?")
  local rss
  rss=$(awk '$1 == "VmHWM:" { printf "%.0f", $2 / 1024 }' "/proc/$FERRY_PID/status" 2>/dev/null || echo "?")
  local note="ferry $w apply workers, ferry CPU ${cpu} s, peak RSS ${rss} MB"
  [ "$(dst -e "CHECKSUM TABLE $DB.sbtest1" | awk '{ print $2 }')" = "$(dst_expected_checksum)" ] \
    && note="$note; sbtest1 checksum equals the source's" || note="$note; sbtest1 checksum DIFFERS from the source's"
  record "$label-$w" ok "$(elapsed "$t0" "$t1")" "$note"
  [ "$keep" = 1 ] || stop_ferry
}

# ---------------------------------------------------------------------------------------------------
# Lag under load: ferry (still running, caught up) while sysbench writes at full speed.
# ---------------------------------------------------------------------------------------------------
run_lag() {
  local w=$1
  [ -n "$FERRY_PID" ] || { log "lag run skipped: ferry is not running"; return 0; }
  log "lag: sysbench oltp_write_only --threads=$LOAD_THREADS for $LAG_SECONDS s at full speed; heartbeat every 100 ms"
  : >"$WORK/lag-samples.txt"
  # One client connection each, fed by a loop that ends when the flag file goes: the heartbeat
  # writer on the source, the sampler on the target.
  touch "$WORK/lag.on"
  ( while [ -f "$WORK/lag.on" ]; do echo "UPDATE $DB.hb SET ts = NOW(6) WHERE id = 1;"; sleep 0.1; done ) | src >/dev/null 2>&1 &
  local hb=$!
  BG_PIDS+=("$hb")
  # Sample only once a fresh heartbeat has reached the target.
  local n=0
  until [ "$(dst -e "SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) < 1000000 FROM $DB.hb WHERE id = 1")" = 1 ]; do
    sleep 0.1; n=$((n + 1)); [ $n -lt 600 ] || die "the heartbeat does not reach the target"
  done
  ( while [ -f "$WORK/lag.on" ]; do echo "SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM $DB.hb WHERE id = 1;"; sleep 0.2; done ) \
    | dst >"$WORK/lag-samples.txt" 2>/dev/null &
  local sampler=$!
  BG_PIDS+=("$sampler")
  local from_line
  from_line=$(wc -l <"$LOGS/ferry-$w.log")
  sb --threads="$LOAD_THREADS" --time="$LAG_SECONDS" --rate=0 --report-interval=10 run >"$LOGS/lag-load.log" 2>&1 \
    || log "sysbench lag run failed (see benches/.work/replay/logs/lag-load.log)"
  rm -f "$WORK/lag.on"
  wait "$hb" "$sampler" 2>/dev/null || true
  LAG_TPS=$(awk '/transactions:/ { gsub(/[()]/, "", $3); print $3; exit }' "$LOGS/lag-load.log")
  # ferry's own lag figures from its progress lines during the run
  # (lines written after the run started: the last one before it still shows the catch-up)
  tail -n +"$((from_line + 1))" "$LOGS/ferry-$w.log" | grep -o 'lag [0-9.]* s' | awk '{ print $2 }' >"$WORK/lag-ferry.txt" || true
  # Drain, then compare every table (not timed).
  local end n=0
  end=$(master_pos)
  until a=$(ferry_applied); [ -n "$a" ] && pos_ge "$a" "$end"; do
    sleep 0.2; n=$((n + 1)); [ $n -lt 3000 ] || break
  done
  stop_ferry
  local differ=""
  for t in $(seq 1 "$TABLES"); do
    [ "$(src -e "CHECKSUM TABLE $DB.sbtest$t" | awk '{ print $2 }')" = "$(dst -e "CHECKSUM TABLE $DB.sbtest$t" | awk '{ print $2 }')" ] \
      || differ="$differ sbtest$t"
  done
  LAG_CHECK=${differ:+"CHECKSUM TABLE differs:$differ"}
  LAG_CHECK=${LAG_CHECK:-"every table's CHECKSUM TABLE equals the source's after the run"}
  log "lag run: $LAG_TPS transactions/s on the source; $LAG_CHECK"
}

# ---------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------
ensure_packages
prepare_ferry_or_die
start_servers
printf 'tool\tstatus\tseconds\ttps\trows_per_s\tloadavg\tnote\n' >"$RUNS"
prepare_state
build_backlog
src -e "CHECKSUM TABLE $DB.sbtest1" | awk '{ print $2 }' >"$WORK/end-checksum"
run_native
FERRY_RUNS=0
LAST_W=""
for w in $WORKERS_LIST; do LAST_W=$w; done
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKERS_LIST; do
    [ -z "$COMPARE" ] || RUN_BIN="$COMPARE" run_ferry "$w" 0 compare
    if [ "$round" = "$ROUNDS" ] && [ "$w" = "$LAST_W" ] && [ "$LAG_SECONDS" -gt 0 ]; then
      run_ferry "$w" 1
    else
      run_ferry "$w" 0
    fi
  done
done
LAG_TPS=""; LAG_CHECK=""
if [ "$LAG_SECONDS" -gt 0 ]; then run_lag "$LAST_W"; fi

{
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'tables\t%s x %s rows\n' "$TABLES" "$TABLE_ROWS"
  printf 'backlog_txns\t%s\n' "$BACKLOG_TXNS"
  printf 'backlog_rows\t%s\n' "$BACKLOG_ROWS"
  printf 'backlog_bytes\t%s\n' "$BACKLOG_BYTES"
  printf 'load_threads\t%s\n' "$LOAD_THREADS"
  printf 'native\tslave_parallel_threads=%s, slave_parallel_mode=%s\n' "$NATIVE_THREADS" "$NATIVE_MODE"
  printf 'lag_seconds\t%s\n' "$LAG_SECONDS"
  printf 'lag_workers\t%s\n' "$LAST_W"
  printf 'lag_source_tps\t%s\n' "$LAG_TPS"
  printf 'lag_check\t%s\n' "$LAG_CHECK"
  printf 'buffer_pool\t%s\n' "$FERRY_TEST_BUFFER_POOL"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'server\t%s\n' "$(dst -e 'SELECT VERSION()')"
  printf 'sysbench\t%s\n' "$(sysbench --version 2>&1 | head -n 1)"
  printf 'ferry\t%s\n' "$("$(ferry_bin)" --version 2>/dev/null | head -n 1 || echo unknown)"
  [ -z "$COMPARE" ] || printf 'compare\t%s\n' "$COMPARE"
} >"$META"
python3 "$BENCH_DIR/report_replay.py" "$META" "$RUNS" "$WORK/lag-samples.txt" "$WORK/lag-ferry.txt" "$WORK/results.md"
log "results written to benches/.work/replay/results.md"
