"""Checks responses captured by a Rust test against the official SDK's models, with the checker of
`sdk_types.py` (every field declared, every value of its declared type). Reads a JSON list of
`{"version": "2021-12-06", "action": "DescribeMigrationDetail", "response": {...}}` on stdin;
prints one JSON line `{"checked": N, "mismatches": [...]}` and exits 1 when there is a mismatch.
`sdk_types` builds its clients at import: FERRY_ENDPOINT, FERRY_SECRET_ID and FERRY_SECRET_KEY
must be set (any values; nothing is called).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdk_types  # noqa: E402

items = json.load(sys.stdin)
for it in items:
    _, models = sdk_types.CLIENTS[it["version"]]
    sdk_types.check_type(models, f"{it['action']}Response", it["response"], f"{it['version']}:{it['action']}")
print(json.dumps({"checked": len(items), "mismatches": sdk_types.MISMATCHES}), flush=True)
sys.exit(1 if sdk_types.MISMATCHES else 0)
