#!/usr/bin/env bash
# The benchmarks: installs what they need (the servers for the IMAP polls, Chromium as the render's
# reference), then prints one table. Usage: bash scripts/bench.sh [--quick] [--large] [--only SECTIONS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh --servers
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # Only the reference row needs it: the benchmarks run without it and say so.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium \
    || echo "chromium could not be installed: its row will be skipped" >&2
fi
exec python -m benchmarks "$@"
