#!/usr/bin/env bash
# Rewrites the table of who may include whom in docs/DESIGN.md §8 from the build's link
# graph (BUILD/layers.json, written when CMake configures). Usage: scripts/update_layer_table.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if [[ "${build}" == -h || "${build}" == --help ]]; then sed -n 2,3p "$0" | sed 's/^# //'; exit 0; fi
table=$(python3 scripts/check_layers.py "${build}/layers.json" src --table)
python3 - "$table" <<'PY'
import re, sys
path = "docs/DESIGN.md"
text = open(path, encoding="utf-8").read()
block = "<!-- layers:begin -->\n" + sys.argv[1] + "\n<!-- layers:end -->"
text, n = re.subn(r"<!-- layers:begin -->\n.*?\n<!-- layers:end -->", lambda _: block, text, flags=re.S)
if n != 1:
    sys.exit(f"{path}: no layers:begin/end markers")
open(path, "w", encoding="utf-8").write(text)
PY
