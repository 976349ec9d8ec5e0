#!/usr/bin/env bash
# Installed like any Python tool: build a wheel of the tree, install it with its declared dependencies (from the
# package index, pip's cache first) into a new virtualenv outside the clone, and run the demo from there.
# tests/test_install.py checks the same offline, borrowing this venv's dependencies; this run also proves that
# pyproject.toml declares every package the installed tool imports. Usage: bash scripts/wheel-check.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Built from a copy, so nothing of the clone's own builds or virtualenv leaks into the wheel.
mkdir "$work/tree"
tar -C "$root" --exclude=.git --exclude=.venv --exclude=build --exclude=dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude='*-home' -cf - . | tar -C "$work/tree" -xf -
"$root/.venv/bin/pip" wheel -q --no-deps -w "$work/wheels" "$work/tree"
"$py" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$work"/wheels/mutualplan-*.whl
mkdir "$work/elsewhere"
cd "$work/elsewhere"
env -u PYTHONPATH -u MUTUALPLAN_HOME -u MUTUALPLAN_TEMPLATES "$work/venv/bin/mutualplan" --home home demo --fresh \
    --json > demo.json
"$work/venv/bin/python" - <<'PY'
import json, sys
data = json.load(open("demo.json"))
state = data["status"]["state"]
if state != "agreed":
    sys.exit(f"wheel check: the installed demo ended {state!r}, not agreed")
print("wheel check: the installed mutualplan ran the demo to agreement outside the clone")
PY
