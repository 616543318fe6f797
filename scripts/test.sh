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
cargo build --workspace --bins
cargo test --workspace -- --test-threads="${FERRY_TEST_THREADS:-2}"
