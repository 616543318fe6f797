#!/usr/bin/env bash
# The browser for the console's browser test: Debian's headless-capable Chromium and its WebDriver.
#
#   scripts/browser.sh install   install chromium and chromium-driver with apt when chromedriver is
#                                not on PATH (sudo when not root, as scripts/servers.sh does for
#                                mariadb); idempotent
#   scripts/browser.sh path      print the chromedriver path (exit 1 when there is none)
#
# The test (crates/ferry-cli/tests/console_browser.rs) starts chromedriver itself; it reads
# FERRY_TEST_CHROMEDRIVER, else looks for chromedriver on PATH.
set -euo pipefail

find_driver() {
  if [ -n "${FERRY_TEST_CHROMEDRIVER:-}" ] && [ -x "$FERRY_TEST_CHROMEDRIVER" ]; then
    echo "$FERRY_TEST_CHROMEDRIVER"; return 0
  fi
  for b in chromedriver /usr/bin/chromedriver /usr/lib/chromium/chromedriver; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

case "${1:-}" in
  install)
    if find_driver >/dev/null; then exit 0; fi
    echo "browser.sh: no chromedriver on PATH: installing chromium and chromium-driver with apt" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
    find_driver >/dev/null || { echo "browser.sh: chromium-driver installed but no chromedriver found" >&2; exit 1; }
    ;;
  path)
    find_driver
    ;;
  *)
    echo "usage: scripts/browser.sh install|path" >&2
    exit 2
    ;;
esac
