#!/usr/bin/env bash
# Cut-over verification benchmark (continuous verification, `Ferry.ContinuousVerify`), on a pair of
# servers of its own:
#
#   1. sysbench tables on the source; `ferry run` (MigrateType 3, ConsistencyType 2, continuous
#      verification on) copies them, starts replaying, and its background verifier finishes its
#      first full pass (every chunk digested and stored on the target);
#   2. a backlog of BENCH_BACKLOG sysbench oltp_write_only transactions is written on the source
#      while ferry replays (the replay marks the chunks it changes dirty);
#   3. cut-over (SIGUSR1 to `ferry run`): the time from the request to the exit, and the cut-over
#      verification's own time and the chunks it digested again (from `ferry run`'s summary);
#   4. a cold full `ferry verify --mode full` of the same data (source and target now equal);
#   5. the chunked CRC32 floor of both servers over the same tables (crc32_floor.py).
#
#   benches/cutover.sh            4 tables x 100k rows, 50,000-transaction backlog
#   benches/cutover.sh --quick    4 tables x 20k rows, 5,000-transaction backlog
#   benches/cutover.sh --help     options and environment knobs
#
# pt-table-checksum is not run here (`benches/run.sh --verify` times it on its own data set).
# Everything it writes lives under benches/.work/cutover/ (git-ignored); the results are printed
# and written to benches/.work/cutover/results.md. See docs/benchmarks.md, "Cut-over verification".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/benches"
WORK="$BENCH_DIR/.work/cutover"

usage() {
  cat <<'EOF'
usage: benches/cutover.sh [--quick] [--keep] [--help]

  --quick        smoke run: 4 x 20k rows, 5,000-transaction backlog
  --keep         leave the benchmark servers running afterwards (= BENCH_KEEP=1)

environment:
  BENCH_TABLES=4           sysbench tables
  BENCH_TABLE_ROWS=100000  rows per table
  BENCH_BACKLOG=50000      oltp_write_only transactions written while ferry replays
  BENCH_LOAD_THREADS=4     sysbench threads
  BENCH_CHUNK_ROWS=5000    Ferry.ChunkRows (chunks of the verification and of the floor)
  BENCH_THREADS=4          Ferry.Threads (verification sessions per server) and floor sessions
  BENCH_CV_RATE=200000     Ferry.ContinuousVerify.RowsPerSecond
  BENCH_SETTLE=0           1: after the backlog, wait until the background verifier has no dirty chunk
                           left (the writes have stopped, as before a planned cut-over) before the
                           cut-over; 0: cut over as soon as the backlog is written
  BENCH_BUFFER_POOL=1G     innodb_buffer_pool_size of both servers
  BENCH_BUILD=1            run `cargo build --release -p ferry-cli` first (0: use the binary as is)
  BENCH_FERRY=path         ferry binary (default: $CARGO_TARGET_DIR or target/ + release/ferry)
  BENCH_KEEP=0             1: leave the servers running
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) BENCH_TABLE_ROWS="${BENCH_TABLE_ROWS:-20000}"; BENCH_BACKLOG="${BENCH_BACKLOG:-5000}" ;;
    --keep) BENCH_KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cutover.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

TABLES="${BENCH_TABLES:-4}"
TABLE_ROWS="${BENCH_TABLE_ROWS:-100000}"
BACKLOG="${BENCH_BACKLOG:-50000}"
LOAD_THREADS="${BENCH_LOAD_THREADS:-4}"
CHUNK_ROWS="${BENCH_CHUNK_ROWS:-5000}"
THREADS="${BENCH_THREADS:-4}"
CV_RATE="${BENCH_CV_RATE:-200000}"
SETTLE="${BENCH_SETTLE:-0}"
BUILD="${BENCH_BUILD:-1}"
KEEP="${BENCH_KEEP:-0}"
export FERRY_TEST_DIR="$WORK/servers"
export FERRY_TEST_BUFFER_POOL="${BENCH_BUFFER_POOL:-1G}"

for v in TABLES TABLE_ROWS BACKLOG LOAD_THREADS CHUNK_ROWS THREADS CV_RATE; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "cutover.sh: BENCH_$v must be a positive integer (got '${!v}')" >&2; exit 2; }
done

LOGS="$WORK/logs"
mkdir -p "$WORK" "$LOGS"
USER_NAME=ferry
USER_PASS=ferry-test-pw
DB=sbc
JOB=bench-cutover

log() { echo "[cutover-bench $(date +%H:%M:%S)] $*" >&2; }
# shellcheck source=benches/common.sh
source "$BENCH_DIR/common.sh"

FERRY_PID=""
cleanup() {
  [ -n "$FERRY_PID" ] && kill "$FERRY_PID" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then
    log "servers left running (BENCH_KEEP=1); stop them with: FERRY_TEST_DIR=benches/.work/cutover/servers scripts/servers.sh stop"
  else
    "$ROOT/scripts/servers.sh" stop || true
  fi
}

ensure_packages() {
  local missing=()
  command -v sysbench >/dev/null 2>&1 || missing+=(sysbench)
  command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  apt_install "${missing[@]}"
}



ensure_packages
prepare_ferry_or_die
log "starting the benchmark servers under benches/.work/cutover/servers"
trap cleanup EXIT
"$ROOT/scripts/servers.sh" start
eval "$("$ROOT/scripts/servers.sh" env)"
SRC_PORT="${FERRY_TEST_SOURCE_URL##*:}"
DST_PORT="${FERRY_TEST_TARGET_URL##*:}"
src() { mariadb --no-defaults --default-character-set=utf8mb4 --socket="$FERRY_TEST_SOURCE_SOCKET" -uroot -N -B "$@"; }
dst() { mariadb --no-defaults --default-character-set=utf8mb4 --socket="$FERRY_TEST_TARGET_SOCKET" -uroot -N -B "$@"; }
sb() {
  sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC_PORT" \
    --mysql-user="$USER_NAME" --mysql-password="$USER_PASS" --mysql-db="$DB" \
    --tables="$TABLES" --table-size="$TABLE_ROWS" "$@"
}

log "resetting both servers; sysbench prepare: $TABLES tables x $TABLE_ROWS rows"
dst -e "DROP DATABASE IF EXISTS $DB; DROP DATABASE IF EXISTS ferry_meta"
src -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
sb --threads="$TABLES" prepare >"$LOGS/prepare.log" 2>&1 || die "sysbench prepare failed (see the log)"

cat >"$WORK/job.json" <<EOF
{"JobName":"$JOB","MigrateOption":{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":2},
 "SrcDatabaseType":"mysql","SrcAccessType":"extranet","SrcInfo":{"Ip":"127.0.0.1","Port":$SRC_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DstDatabaseType":"mysql","DstAccessType":"extranet","DstInfo":{"Ip":"127.0.0.1","Port":$DST_PORT,"User":"$USER_NAME","Password":"$USER_PASS"},
 "DatabaseInfo":"[{\"Database\":\"$DB\"}]",
 "Ferry":{"Threads":$THREADS,"ChunkRows":$CHUNK_ROWS,"ContinuousVerify":{"RowsPerSecond":$CV_RATE}}}
EOF

log "ferry run: full load, replay, first full verification pass (log: benches/.work/cutover/logs/ferry-run.log)"
(cd "$WORK" && exec "$(ferry_bin)" run "$WORK/job.json" --progress plain --skip-check --restart) >"$LOGS/ferry-run.log" 2>&1 &
FERRY_PID=$!
t=0
until [ "$(dst -e "SELECT COUNT(*) FROM ferry_meta.verify_pass WHERE job = '$JOB' AND last_full_at IS NOT NULL" 2>/dev/null || echo 0)" = 1 ]; do
  kill -0 "$FERRY_PID" 2>/dev/null || die "ferry stopped; see benches/.work/cutover/logs/ferry-run.log"
  sleep 0.5; t=$((t + 1)); [ $t -lt 2400 ] || die "the first verification pass did not finish in 20 minutes"
done

log "backlog: $BACKLOG oltp_write_only transactions while ferry replays (log: benches/.work/cutover/logs/backlog.log)"
sb --threads="$LOAD_THREADS" --events="$BACKLOG" --time=0 --rate=0 --report-interval=0 run >"$LOGS/backlog.log" 2>&1 \
  || die "sysbench run failed (see the log)"

dirty() { dst -e "SELECT COUNT(*) FROM ferry_meta.verify_dirty WHERE job = '$JOB'"; }
DIRTY_AT_END=$(dirty)
if [ "$SETTLE" = 1 ]; then
  log "waiting for the background verifier to digest the $DIRTY_AT_END dirty chunks"
  t=0
  until [ "$(dirty)" = 0 ]; do
    kill -0 "$FERRY_PID" 2>/dev/null || die "ferry stopped; see benches/.work/cutover/logs/ferry-run.log"
    sleep 0.2; t=$((t + 1)); [ $t -lt 3000 ] || die "dirty chunks were left after 10 minutes"
  done
fi
log "cut-over: SIGUSR1"
T0=$(now)
kill -USR1 "$FERRY_PID"
RC=0; wait "$FERRY_PID" || RC=$?
T1=$(now)
FERRY_PID=""
[ "$RC" = 0 ] || die "ferry run exited $RC at cut-over; see benches/.work/cutover/logs/ferry-run.log"
LINE=$(grep "chunks digested again" "$LOGS/ferry-run.log" || true)
[ -n "$LINE" ] || die "no cut-over verification line in benches/.work/cutover/logs/ferry-run.log"
REHASHED=$(echo "$LINE" | awk '{ print $2 }')
TOTAL=$(echo "$LINE" | awk '{ print $4 }')
CUT_VERIFY=$(echo "$LINE" | awk '{ for (i = 1; i < NF; i++) if ($i == "in") print $(i + 1) }')
CUT_TOTAL=$(elapsed "$T0" "$T1")

log "cold full ferry verify (log: benches/.work/cutover/logs/verify-full.log)"
T0=$(now)
(cd "$WORK" && "$(ferry_bin)" verify "$WORK/job.json" --mode full) >"$LOGS/verify-full.log" 2>&1 \
  || die "ferry verify found differences or failed; see benches/.work/cutover/logs/verify-full.log"
T1=$(now)
FULL=$(elapsed "$T0" "$T1")

log "CRC32 floor of both servers (log: benches/.work/cutover/logs/floor.log)"
TABLE_LIST=$(for i in $(seq 1 "$TABLES"); do printf 'sbtest%s ' "$i"; done)
# shellcheck disable=SC2086
MYSQL_PWD="$USER_PASS" BENCH_DB_USER="$USER_NAME" python3 "$BENCH_DIR/crc32_floor.py" plan --port "$SRC_PORT" \
  --db "$DB" --chunk-rows "$CHUNK_ROWS" $TABLE_LIST >"$WORK/floor-plan.json"
T0=$(now)
MYSQL_PWD="$USER_PASS" BENCH_DB_USER="$USER_NAME" python3 "$BENCH_DIR/crc32_floor.py" run --plan "$WORK/floor-plan.json" \
  --threads "$THREADS" --port "$SRC_PORT" --port "$DST_PORT" >"$LOGS/floor.log" 2>&1 \
  || die "the CRC32 floor failed; see benches/.work/cutover/logs/floor.log"
T1=$(now)
FLOOR=$(elapsed "$T0" "$T1")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
{
  echo "# Cut-over verification: $TABLES tables x $TABLE_ROWS rows, $BACKLOG-transaction backlog"
  echo
  echo "Chunk marks dirty when the backlog ended: $DIRTY_AT_END; cut-over $([ "$SETTLE" = 1 ] && echo "after the background verifier digested them (BENCH_SETTLE=1)" || echo "right after the backlog (BENCH_SETTLE=0)")."
  echo
  echo "| measure | seconds | of a full pass |"
  echo "|---|---:|---:|"
  echo "| full \`ferry verify --mode full\` (cold) | $FULL | 100% |"
  echo "| cut-over verification ($REHASHED of $TOTAL chunks digested again) | $CUT_VERIFY | $(ratio "$CUT_VERIFY" "$FULL") |"
  echo "| cut-over request to exit (drain + verification + triggers) | $CUT_TOTAL | $(ratio "$CUT_TOTAL" "$FULL") |"
  echo "| chunked CRC32 floor, both servers | $FLOOR | $(ratio "$FLOOR" "$FULL") |"
  echo
  echo "ferry: $("$(ferry_bin)" --version 2>&1 | head -n 1); server: $(src -e 'SELECT VERSION()'); $(nproc) cores"
} | tee "$WORK/results.md"
