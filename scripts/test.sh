#!/usr/bin/env bash
# The whole test suite, as a new user or CI runs it: starts the two test servers (installing
# mariadb-server with apt when needed), checks formatting and lints, runs every test against the
# real servers, and stops the servers it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$comp"
  fi
done
echo "== docker-compose demo (static checks)" && python3 scripts/check-compose.py

started_here=0
if ! scripts/servers.sh status >/dev/null 2>&1; then
  scripts/servers.sh start
  started_here=1
fi
cleanup() { if [ "$started_here" = 1 ]; then scripts/servers.sh stop; fi; }
trap cleanup EXIT
eval "$(scripts/servers.sh env)"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
echo "== Tencent Cloud Python SDK for the API tests" && scripts/sdk-venv.sh
echo "== Chromium and chromedriver for the console browser test" && scripts/browser.sh install
cargo build --workspace --bins
log="$(mktemp)"
set +e
cargo test --workspace --no-fail-fast -- --test-threads="${FERRY_TEST_THREADS:-2}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo's own last line is a doc-test run of the last crate).
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
rm -f "$log"
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
