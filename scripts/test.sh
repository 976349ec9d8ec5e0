#!/usr/bin/env bash
# The checks CI runs: ruff, mypy, then every test, the real servers included (the tests start them).
# Usage: bash scripts/test.sh [pytest arguments]   e.g.  bash scripts/test.sh -k imap -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh --servers

lint=0
ruff check . || lint=$?
types=0
mypy || types=$?

tests=0
pytest tests/ "$@" || tests=$?
wheel=0
if [ "$#" -eq 0 ]; then
  # The whole run (CI's) also installs a wheel of the tree into a new virtualenv from the package index.
  bash scripts/wheel-check.sh || wheel=$?
fi
if [ "$tests" -eq 5 ]; then
  # Exit code 5 is "no tests collected": a broken collection must not pass as green.
  echo "pytest collected no tests" >&2
  exit 1
fi
if [ "$wheel" -ne 0 ]; then
  echo "the wheel check failed (exit $wheel)" >&2
  [ "$tests" -ne 0 ] || tests=$wheel
fi
if [ "$lint" -ne 0 ]; then
  echo "ruff check failed (exit $lint)" >&2
  [ "$tests" -ne 0 ] || [ "$types" -ne 0 ] || exit "$lint"
fi
if [ "$types" -ne 0 ]; then
  echo "mypy failed (exit $types)" >&2
  [ "$tests" -ne 0 ] || exit "$types"
fi
exit "$tests"
