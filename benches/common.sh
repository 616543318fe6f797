# Helpers shared by the benchmark scripts (benches/run.sh, replay.sh, cutover.sh), sourced after
# each has set ROOT, LOGS, BUILD and its own `log` function.

die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Installs the given Debian packages with apt (nothing when none is given).
apt_install() {
  [ $# -eq 0 ] && return 0
  log "installing with apt: $*"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "$@" >/dev/null
}

ferry_bin() { echo "${BENCH_FERRY:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ferry}"; }

# Builds ferry in release mode (unless BENCH_FERRY names a binary or BENCH_BUILD=0); a failed
# build, or no binary, ends the benchmark.
prepare_ferry_or_die() {
  if [ -z "${BENCH_FERRY:-}" ] && [ "$BUILD" = 1 ]; then
    log "cargo build --release -p ferry-cli (log: ${LOGS#"$ROOT"/}/ferry-build.log)"
    (cd "$ROOT" && cargo build --release -p ferry-cli) >"$LOGS/ferry-build.log" 2>&1 \
      || { tail -n 15 "$LOGS/ferry-build.log" >&2; die "cargo build --release -p ferry-cli failed"; }
  fi
  [ -x "$(ferry_bin)" ] || die "no ferry binary at $(ferry_bin) (run: cargo build --release -p ferry-cli)"
}

# --- `ferry serve` and its API (benches/run.sh --verify --complete) --------------------------------
# serve_start DIR LOG: starts `ferry serve` on a free loopback port with a throwaway key pair and its
# data under DIR; sets SERVE_PID and SERVE_URL. serve_stop ends it (by its pid).
BENCH_SECRET_ID=AKIDferrybench
BENCH_SECRET_KEY=ferry-bench-secret-key
serve_start() { # dir log
  rm -rf "$1"; mkdir -p "$1"
  (cd "$1" && FERRY_SECRET_ID="$BENCH_SECRET_ID" FERRY_SECRET_KEY="$BENCH_SECRET_KEY" \
     exec "$(ferry_bin)" serve --listen 127.0.0.1:0 --data-dir "$1/data") >"$1/stdout" 2>"$2" &
  SERVE_PID=$!
  local t=0
  SERVE_URL=""
  until [ -n "$SERVE_URL" ]; do
    kill -0 "$SERVE_PID" 2>/dev/null || die "ferry serve did not start; see ${2#"$ROOT"/}"
    SERVE_URL=$(sed -n 's/^ferry serve: listening on \([^ ]*\).*/\1/p' "$1/stdout" | head -n 1)
    sleep 0.2; t=$((t + 1)); [ $t -lt 600 ] || die "ferry serve printed no listening line in 2 minutes"
  done
}
serve_stop() { if [ -n "${SERVE_PID:-}" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""; fi; }

# api ACTION JSON [VERSION]: the call's Response (JSON) on stdout; non-zero when it failed.
api() {
  FERRY_SECRET_ID="$BENCH_SECRET_ID" FERRY_SECRET_KEY="$BENCH_SECRET_KEY" \
    "$(ferry_bin)" api "$1" --endpoint "$SERVE_URL" --api-version "${3:-2018-03-30}" --json - <<<"$2"
}

# jq-like reads with python3: json_get PYTHON-EXPRESSION (of `r`, the JSON on stdin).
json_get() { python3 -c 'import json, sys; r = json.load(sys.stdin); v = eval(sys.argv[1]); print(v if v is not None else "")' "$1"; }
