#!/usr/bin/env bash
# Creates .ferry-test/venv with the official Tencent Cloud Python SDK (common + DTS), used by the
# wire-compatibility smoke test of `ferry serve` (crates/ferry-cli/tests/serve_wire.rs).
# Idempotent and quick when the venv already has the pinned versions. Prints the python path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COMMON_VERSION=3.1.195
DTS_VERSION=3.1.193
venv=.ferry-test/venv
python="$venv/bin/python"

wanted() {
  "$python" - "$COMMON_VERSION" "$DTS_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
try:
    ok = (version("tencentcloud-sdk-python-common") == sys.argv[1]
          and version("tencentcloud-sdk-python-dts") == sys.argv[2])
    import tencentcloud.dts.v20180330.dts_client  # noqa: F401
    import tencentcloud.dts.v20211206.dts_client  # noqa: F401
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}

if [ -x "$python" ] && wanted; then
  echo "$python"
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "sdk-venv.sh: python3 not found; install it (apt-get install python3 python3-venv)" >&2
  exit 1
fi
mkdir -p .ferry-test
if [ ! -x "$python" ]; then
  if ! python3 -m venv "$venv" >&2; then
    # Debian's python3 ships without ensurepip; the venv module comes in its own package.
    rm -rf "$venv"
    if command -v apt-get >/dev/null 2>&1; then
      sudo_cmd=""
      [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
      $sudo_cmd apt-get install -y python3-venv >&2 || true
    fi
    if ! python3 -m venv "$venv" >&2; then
      echo "sdk-venv.sh: python3 -m venv failed; install the venv module (apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
"$python" -m pip install --quiet --disable-pip-version-check \
  "tencentcloud-sdk-python-common==$COMMON_VERSION" \
  "tencentcloud-sdk-python-dts==$DTS_VERSION" >&2
if ! wanted; then
  echo "sdk-venv.sh: the SDK was installed but tencentcloud.dts.v20180330/v20211206 cannot be imported" >&2
  exit 1
fi
echo "$python"
