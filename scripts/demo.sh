#!/usr/bin/env bash
# Sets the project up on Debian 12 (apt + a virtualenv) and runs the whole loop on the embedded Maildir:
# a plan goes out, the prospect asks for a change, version 2 goes back with its redline, both confirm.
# Usage: bash scripts/demo.sh [DIR]   (default DIR: ./demo-home, made afresh)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/setup.sh"
home=${1:-"$root/demo-home"}
exec mutualplan --home "$home" demo --fresh
