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
